/* resolver.c - sluice/dns.h's resolver: one c-ares channel driven by one thread (poll over its sockets). */
#include <ares.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sluice/dns.h"

typedef struct job job;

struct job {
    sl_dns_resolver *r;
    char *name;
    uint16_t port;
    bool srv, ptr;
    sl_dns_done_fn done;
    void *ud;
    sl_dns_result *res;
    size_t cap;
    int pending;          /* c-ares lookups not called back yet */
    sl_dns_rcode failure; /* the first source failure (SL_DNS_OK: none) */
    sl_dns_rcode answer;  /* NXDOMAIN / NODATA seen for a lookup */
    char what[300];       /* the lookup that failed or found nothing */
    int64_t t0_ms;
    job *next;
};

/* One A/AAAA lookup of a job: the query's name, or one SRV target. */
typedef struct lookup {
    job *j;
    uint16_t port, priority, weight;
    uint32_t ttl_cap; /* the SRV record's TTL (UINT32_MAX for an address query) */
    char *host;
} lookup;

struct sl_dns_resolver {
    ares_channel channel;
    pthread_t thread;
    pthread_mutex_t mu;
    int wake[2];
    bool stop;          /* under mu */
    job *head, *tail;   /* queued, not started (under mu) */
    int inflight;       /* started, not finished (resolver thread only) */
    int max_inflight;
    atomic_size_t pending;
    ares_socket_t socks[64]; /* what c-ares asks us to poll */
    unsigned char sock_rw[64];
    size_t n_socks;
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static pthread_once_t lib_once = PTHREAD_ONCE_INIT;
static int lib_status = ARES_SUCCESS;

static void lib_init(void)
{
    lib_status = ares_library_init(ARES_LIB_INIT_ALL);
}

/* c-ares tells which sockets to watch for reading / writing. */
static void sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
    sl_dns_resolver *r = data;
    size_t i;
    for (i = 0; i < r->n_socks && r->socks[i] != fd; i++)
        ;
    if (!readable && !writable) {
        if (i < r->n_socks) {
            r->socks[i] = r->socks[r->n_socks - 1];
            r->sock_rw[i] = r->sock_rw[r->n_socks - 1];
            r->n_socks--;
        }
        return;
    }
    if (i == r->n_socks) {
        if (r->n_socks == sizeof r->socks / sizeof r->socks[0])
            return; /* more than 64 sockets: c-ares times those queries out */
        r->socks[r->n_socks++] = fd;
    }
    r->sock_rw[i] = (unsigned char)((readable ? 1 : 0) | (writable ? 2 : 0));
}

/* ---- finishing a job ---------------------------------------------------- */

static void job_finish(job *j)
{
    sl_dns_resolver *r = j->r;
    sl_dns_result *res = j->res;
    const char *type = j->ptr ? "PTR" : j->srv ? "SRV" : "A/AAAA";

    res->elapsed_ms = mono_ms() - j->t0_ms;
    if (j->failure != SL_DNS_OK) {
        for (size_t i = 0; i < res->n_records; i++)
            free(res->records[i].hostname);
        res->n_records = 0;
        res->ttl = 0;
        res->rcode = j->failure;
        snprintf(res->message, sizeof res->message, "%s: %s: %s", j->what, type, sl_dns_rcode_str(j->failure));
    } else if (res->n_names) {
        res->rcode = SL_DNS_OK;
        snprintf(res->message, sizeof res->message, "%s: %s: %zu name%s", j->name, type, res->n_names,
                 res->n_names == 1 ? "" : "s");
    } else if (res->n_records) {
        sl_dns_records_sort(res->records, &res->n_records);
        res->rcode = SL_DNS_OK;
        snprintf(res->message, sizeof res->message, "%s: %s: %zu address%s", j->name, type, res->n_records,
                 res->n_records == 1 ? "" : "es");
    } else {
        res->rcode = j->answer != SL_DNS_OK ? j->answer : SL_DNS_NODATA;
        res->ttl = 0;
        snprintf(res->message, sizeof res->message, "%s: %s: %s", j->what[0] ? j->what : j->name, type,
                 sl_dns_rcode_str(res->rcode));
    }
    j->done(res, j->ud);
    free(j->name);
    free(j);
    r->inflight--;
    atomic_fetch_sub(&r->pending, 1);
}

static void job_step_done(job *j)
{
    if (--j->pending == 0)
        job_finish(j);
}

/* A lookup of the job did not give addresses. */
static void job_note(job *j, sl_dns_rcode rc, const char *name)
{
    if (sl_dns_rcode_answered(rc)) {
        if (j->answer == SL_DNS_OK || rc == SL_DNS_NXDOMAIN)
            j->answer = rc;
        if (!j->what[0])
            snprintf(j->what, sizeof j->what, "%s", name);
    } else if (j->failure == SL_DNS_OK) {
        j->failure = rc;
        snprintf(j->what, sizeof j->what, "%s", name);
    }
}

static sl_status job_add(job *j, const lookup *lk, const struct ares_addrinfo_node *nd)
{
    sl_dns_result *res = j->res;
    char buf[INET6_ADDRSTRLEN] = "";
    const void *src = nd->ai_family == AF_INET ? (const void *)&((const struct sockaddr_in *)nd->ai_addr)->sin_addr
                                               : (const void *)&((const struct sockaddr_in6 *)nd->ai_addr)->sin6_addr;
    if ((nd->ai_family != AF_INET && nd->ai_family != AF_INET6) || !inet_ntop(nd->ai_family, src, buf, sizeof buf))
        return SL_OK;
    if (res->n_records == j->cap) {
        size_t nc = j->cap ? j->cap * 2 : 4;
        sl_dns_record *nv = realloc(res->records, nc * sizeof *nv);
        if (!nv)
            return SL_ERR_NOMEM;
        res->records = nv;
        j->cap = nc;
    }
    sl_dns_record *rec = &res->records[res->n_records];
    memset(rec, 0, sizeof *rec);
    snprintf(rec->address, sizeof rec->address, "%s", buf);
    rec->port = lk->port;
    rec->priority = lk->priority;
    rec->weight = lk->weight;
    rec->ttl = nd->ai_ttl < 0 ? 0 : (uint32_t)nd->ai_ttl;
    if (rec->ttl > lk->ttl_cap)
        rec->ttl = lk->ttl_cap;
    if (!(rec->hostname = strdup(lk->host)))
        return SL_ERR_NOMEM;
    if (res->n_records == 0 || rec->ttl < res->ttl)
        res->ttl = rec->ttl;
    res->n_records++;
    return SL_OK;
}

/* ---- c-ares callbacks --------------------------------------------------- */

static void addr_cb(void *arg, int status, int timeouts, struct ares_addrinfo *ai)
{
    lookup *lk = arg;
    job *j = lk->j;
    (void)timeouts;
    if (status == ARES_SUCCESS && ai) {
        for (const struct ares_addrinfo_node *nd = ai->nodes; nd; nd = nd->ai_next)
            if (job_add(j, lk, nd) != SL_OK) {
                job_note(j, SL_DNS_ERROR, lk->host);
                break;
            }
        if (!ai->nodes)
            job_note(j, SL_DNS_NODATA, lk->host);
    } else {
        job_note(j, status == ARES_SUCCESS ? SL_DNS_NODATA : sl_dns_rcode_from_ares(status), lk->host);
    }
    if (ai)
        ares_freeaddrinfo(ai);
    free(lk->host);
    free(lk);
    job_step_done(j);
}

/* Starts one A/AAAA lookup of j; on failure to start, notes it. */
static void start_lookup(job *j, const char *host, uint16_t port, uint16_t prio, uint16_t weight, uint32_t ttl_cap)
{
    struct ares_addrinfo_hints hints;
    lookup *lk = calloc(1, sizeof *lk);
    if (!lk || !(lk->host = strdup(host))) {
        free(lk);
        job_note(j, SL_DNS_ERROR, host);
        return;
    }
    lk->j = j;
    lk->port = port;
    lk->priority = prio;
    lk->weight = weight;
    lk->ttl_cap = ttl_cap;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_flags = ARES_AI_NOSORT;
    j->pending++;
    ares_getaddrinfo(j->r->channel, host, NULL, &hints, addr_cb, lk); /* may call back at once */
}

static void srv_cb(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    job *j = arg;
    sl_dns_srv *v = NULL;
    size_t n = 0;
    sl_dns_rcode rc = sl_dns_rcode_from_ares(status);
    (void)timeouts;
    if (status == ARES_SUCCESS) {
        if (sl_dns_parse_srv(&v, &n, &rc, abuf, alen > 0 ? (size_t)alen : 0) != SL_OK)
            rc = SL_DNS_BADRESP;
    }
    if (rc != SL_DNS_OK) {
        job_note(j, rc, j->name);
    } else {
        for (size_t i = 0; i < n; i++)
            if (strcmp(v[i].target, ".") != 0) /* "." : the service is not offered there (RFC 2782) */
                start_lookup(j, v[i].target, v[i].port, v[i].priority, v[i].weight, v[i].ttl);
    }
    sl_dns_srv_free(v, n);
    job_step_done(j);
}

/* A PTR answer: its names are the result. */
static void ptr_cb(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    job *j = arg;
    sl_dns_rcode rc = sl_dns_rcode_from_ares(status);
    (void)timeouts;
    if (status == ARES_SUCCESS &&
        sl_dns_parse_ptr(&j->res->names, &j->res->n_names, &j->res->ttl, &rc, abuf, alen > 0 ? (size_t)alen : 0) !=
            SL_OK)
        rc = SL_DNS_BADRESP;
    if (rc != SL_DNS_OK)
        job_note(j, rc, j->name);
    job_step_done(j);
}

static void job_start(job *j)
{
    j->r->inflight++;
    j->pending = 1; /* held while starting, so a synchronous callback cannot finish it */
    if (j->ptr) {
        j->pending++;
        ares_query(j->r->channel, j->name, 1 /* IN */, 12 /* PTR */, ptr_cb, j);
    } else if (j->srv) {
        j->pending++;
        ares_query(j->r->channel, j->name, 1 /* IN */, 33 /* SRV */, srv_cb, j);
    } else {
        start_lookup(j, j->name, j->port, 0, 0, UINT32_MAX);
    }
    job_step_done(j);
}

/* ---- the thread ---------------------------------------------------------- */

/* Starts queued jobs while fewer than max_inflight run. */
static void start_queued(sl_dns_resolver *r)
{
    pthread_mutex_lock(&r->mu);
    while (r->head && r->inflight < r->max_inflight) {
        job *j = r->head;
        r->head = j->next;
        if (!r->head)
            r->tail = NULL;
        pthread_mutex_unlock(&r->mu);
        job_start(j);
        pthread_mutex_lock(&r->mu);
    }
    pthread_mutex_unlock(&r->mu);
}

static void poll_once(sl_dns_resolver *r)
{
    struct pollfd pf[65];
    size_t n = 0;
    struct timeval maxtv = {0, 500 * 1000}, tv, *tp;
    pf[n++] = (struct pollfd){.fd = r->wake[0], .events = POLLIN};
    for (size_t i = 0; i < r->n_socks; i++)
        pf[n++] = (struct pollfd){.fd = r->socks[i],
                                  .events = (short)(((r->sock_rw[i] & 1) ? POLLIN : 0) |
                                                    ((r->sock_rw[i] & 2) ? POLLOUT : 0))};
    tp = ares_timeout(r->channel, &maxtv, &tv);
    int ms = (int)(tp->tv_sec * 1000 + tp->tv_usec / 1000);
    if (poll(pf, n, ms < 0 ? 0 : ms) < 0 && errno != EINTR)
        usleep(1000);
    if (pf[0].revents & POLLIN) {
        char buf[256];
        while (read(r->wake[0], buf, sizeof buf) > 0)
            ;
    }
    for (size_t i = 1; i < n; i++) {
        if (!pf[i].revents)
            continue;
        ares_socket_t rd = (pf[i].revents & (POLLIN | POLLERR | POLLHUP)) ? pf[i].fd : ARES_SOCKET_BAD;
        ares_socket_t wr = (pf[i].revents & (POLLOUT | POLLERR)) ? pf[i].fd : ARES_SOCKET_BAD;
        ares_process_fd(r->channel, rd, wr);
    }
    ares_process_fd(r->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD); /* timeouts */
}

static void *resolver_main(void *arg)
{
    sl_dns_resolver *r = arg;
    for (;;) {
        pthread_mutex_lock(&r->mu);
        bool stop = r->stop;
        pthread_mutex_unlock(&r->mu);
        if (stop)
            break;
        start_queued(r);
        poll_once(r);
    }
    /* Cancel what runs (callbacks with ARES_EDESTRUCTION), then what waits. */
    ares_destroy(r->channel);
    r->channel = NULL;
    pthread_mutex_lock(&r->mu);
    job *q = r->head;
    r->head = r->tail = NULL;
    pthread_mutex_unlock(&r->mu);
    while (q) {
        job *nx = q->next;
        q->r->inflight++;
        job_note(q, SL_DNS_CANCELLED, q->name);
        job_finish(q);
        q = nx;
    }
    return NULL;
}

/* ---- public -------------------------------------------------------------- */

static sl_status channel_init(sl_dns_resolver *r, const sl_dns_opts *o)
{
    struct ares_options ao;
    int mask = ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_SOCK_STATE_CB;
    bool own_servers = o && o->servers && o->servers[0];
    char lookups[] = "b";

    memset(&ao, 0, sizeof ao);
    /* Hand SERVFAIL and REFUSED answers to us instead of trying the next
     * server, so that the outcome says what the server said. */
    ao.flags = ARES_FLAG_NOCHECKRESP;
    ao.timeout = o && o->timeout_ms > 0 ? o->timeout_ms : 2000;
    ao.tries = o && o->tries > 0 ? o->tries : 2;
    ao.sock_state_cb = sock_state;
    ao.sock_state_cb_data = r;
    if (own_servers) {
        ao.ndomains = 0; /* no search domains: names are asked as they are */
        ao.lookups = lookups;
        mask |= ARES_OPT_DOMAINS | ARES_OPT_LOOKUPS;
    }
    int s = ares_init_options(&r->channel, &ao, mask);
    if (s != ARES_SUCCESS)
        return sl_error_set(SL_ERR_IO, "c-ares: %s", ares_strerror(s));
    if (own_servers && (s = ares_set_servers_ports_csv(r->channel, o->servers)) != ARES_SUCCESS) {
        ares_destroy(r->channel);
        r->channel = NULL;
        return sl_error_set(SL_ERR_INVALID, "DNS servers '%s': %s (want HOST[:PORT],...)", o->servers,
                            ares_strerror(s));
    }
    return SL_OK;
}

sl_status sl_dns_resolver_new(sl_dns_resolver **out, const sl_dns_opts *o)
{
    sl_dns_resolver *r;
    sl_status rc;

    *out = NULL;
    pthread_once(&lib_once, lib_init);
    if (lib_status != ARES_SUCCESS)
        return sl_error_set(SL_ERR_IO, "c-ares: %s", ares_strerror(lib_status));
    if (!(r = calloc(1, sizeof *r)))
        return SL_ERR_NOMEM;
    r->wake[0] = r->wake[1] = -1;
    r->max_inflight = o && o->max_inflight > 0 ? o->max_inflight : 64;
    pthread_mutex_init(&r->mu, NULL);
    if ((rc = channel_init(r, o)) != SL_OK)
        goto fail;
    if (pipe(r->wake) != 0 || fcntl(r->wake[0], F_SETFL, O_NONBLOCK) != 0 ||
        fcntl(r->wake[1], F_SETFL, O_NONBLOCK) != 0 || fcntl(r->wake[0], F_SETFD, FD_CLOEXEC) != 0 ||
        fcntl(r->wake[1], F_SETFD, FD_CLOEXEC) != 0) {
        rc = sl_error_set(SL_ERR_IO, "pipe: %s", strerror(errno));
        goto fail;
    }
    if (pthread_create(&r->thread, NULL, resolver_main, r) != 0) {
        rc = sl_error_set(SL_ERR_IO, "cannot start the resolver thread");
        goto fail;
    }
    *out = r;
    return SL_OK;
fail:
    if (r->channel)
        ares_destroy(r->channel);
    if (r->wake[0] >= 0)
        close(r->wake[0]);
    if (r->wake[1] >= 0)
        close(r->wake[1]);
    pthread_mutex_destroy(&r->mu);
    free(r);
    return rc;
}

static void wake(sl_dns_resolver *r)
{
    char c = 1;
    ssize_t w = write(r->wake[1], &c, 1); /* a full pipe already wakes it */
    (void)w;
}

sl_status sl_dns_resolve(sl_dns_resolver *r, const sl_dns_query *q, sl_dns_done_fn done, void *ud)
{
    job *j;
    size_t len = q && q->name ? strlen(q->name) : 0;
    if (!len || len > 253 || !done)
        return sl_error_set(SL_ERR_INVALID, "DNS name '%s': empty or longer than 253", q && q->name ? q->name : "");
    if (!(j = calloc(1, sizeof *j)) || !(j->name = strdup(q->name)) || !(j->res = calloc(1, sizeof *j->res))) {
        if (j)
            free(j->name);
        free(j);
        return SL_ERR_NOMEM;
    }
    j->r = r;
    j->port = q->port;
    j->srv = q->srv;
    j->ptr = q->ptr;
    j->done = done;
    j->ud = ud;
    j->t0_ms = mono_ms();
    pthread_mutex_lock(&r->mu);
    if (r->stop) {
        pthread_mutex_unlock(&r->mu);
        free(j->res);
        free(j->name);
        free(j);
        return sl_error_set(SL_ERR_CLOSED, "the resolver is stopping");
    }
    if (r->tail)
        r->tail->next = j;
    else
        r->head = j;
    r->tail = j;
    atomic_fetch_add(&r->pending, 1);
    pthread_mutex_unlock(&r->mu);
    wake(r);
    return SL_OK;
}

size_t sl_dns_pending(sl_dns_resolver *r)
{
    return atomic_load(&r->pending);
}

void sl_dns_resolver_free(sl_dns_resolver *r)
{
    if (!r)
        return;
    pthread_mutex_lock(&r->mu);
    r->stop = true;
    pthread_mutex_unlock(&r->mu);
    wake(r);
    pthread_join(r->thread, NULL);
    close(r->wake[0]);
    close(r->wake[1]);
    pthread_mutex_destroy(&r->mu);
    free(r);
}
