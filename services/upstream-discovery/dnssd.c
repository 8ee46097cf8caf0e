/* dnssd.c - DNS-SD browsing (RFC 6763) with sluice_dns: PTR _services._dns-sd._udp.<domain> gives the service
 * types of a domain, PTR <type>.<domain> the instances of a type; one browse asks them all and hands over
 * every instance name found, with the queries that failed (uds.h). */
#include "uds.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sluice/log.h"
#include "sluice/vec.h"

#define COMP "dnssd"

struct ud_dnssd {
    ud_dnssd_opts o;
    char *domains, *types; /* copies, split in place */
    char **dl, **tl;
    size_t n_dl, n_tl;
    sl_dns_resolver *r;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;             /* under mu */
    /* the browse running (under mu) */
    int pending;
    char error[384];       /* the first failure */
    char **failed;         /* the PTR names whose query failed (copies) */
    size_t n_failed, cap_failed;
    char **asked;          /* PTR names asked in this browse */
    size_t n_asked, cap_asked;
    char **found;          /* instance names */
    size_t n_found, cap_found;
};

/* A query's kind, carried to its callback. */
typedef struct ask {
    ud_dnssd *d;
    const char *name; /* in d->asked (valid while the browse runs) */
    bool enumerate;   /* _services._dns-sd._udp: the answers are types */
} ask;

void ud_dnssd_result_free(ud_dnssd_result *r)
{
    if (!r)
        return;
    sl_dns_names_free(r->names, r->n);
    sl_dns_names_free(r->failed, r->n_failed);
    free(r);
}

/* Notes that the query of name failed, and why (under mu). */
static void note_failed(ud_dnssd *d, const char *name, const char *why)
{
    char *copy = strdup(name);
    if (!d->n_failed)
        snprintf(d->error, sizeof d->error, "%s", why);
    if (copy && SL_VEC_RESERVE(d->failed, d->cap_failed, d->n_failed + 1) == SL_OK)
        d->failed[d->n_failed++] = copy;
    else
        free(copy);
}

static size_t split(char *s, char ***out)
{
    size_t n = 0, cap = 0;
    char *save = NULL;
    *out = NULL;
    for (char *t = strtok_r(s, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        while (*t == ' ')
            t++;
        if (!*t || SL_VEC_RESERVE(*out, cap, n + 1) != SL_OK)
            continue;
        (*out)[n++] = t;
    }
    return n;
}

static void done(sl_dns_result *res, void *ud);

/* Asks for name's PTR records once per browse (under mu). */
static void ask_ptr(ud_dnssd *d, const char *name, bool enumerate)
{
    for (size_t i = 0; i < d->n_asked; i++)
        if (!strcmp(d->asked[i], name))
            return;
    ask *a = malloc(sizeof *a);
    char *copy = strdup(name);
    sl_dns_query q = {.name = name, .ptr = true};
    if (!a || !copy || SL_VEC_RESERVE(d->asked, d->cap_asked, d->n_asked + 1) != SL_OK) {
        free(a);
        free(copy);
        note_failed(d, name, "out of memory");
        return;
    }
    d->asked[d->n_asked++] = copy;
    *a = (ask){d, copy, enumerate};
    d->pending++;
    if (sl_dns_resolve(d->r, &q, done, a) != SL_OK) {
        char why[400];
        d->pending--;
        free(a);
        snprintf(why, sizeof why, "%s: %s", name, sl_error_msg());
        note_failed(d, name, why);
    }
}

/* On the resolver's thread. */
static void done(sl_dns_result *res, void *ud)
{
    ask *a = ud;
    ud_dnssd *d = a->d;
    pthread_mutex_lock(&d->mu);
    if (d->stop) {
        /* the browse is over: nothing of it is used */
    } else if (!sl_dns_rcode_answered(res->rcode)) {
        note_failed(d, a->name, res->message);
    } else {
        for (size_t i = 0; i < res->n_names; i++) {
            if (a->enumerate) {
                ask_ptr(d, res->names[i], false);
            } else if (SL_VEC_RESERVE(d->found, d->cap_found, d->n_found + 1) == SL_OK) {
                d->found[d->n_found++] = res->names[i];
                res->names[i] = NULL; /* taken */
            }
        }
    }
    if (--d->pending == 0)
        pthread_cond_broadcast(&d->cv);
    pthread_mutex_unlock(&d->mu);
    for (size_t i = 0; i < res->n_names; i++)
        free(res->names[i]);
    res->n_names = 0;
    sl_dns_result_free(res);
    free(a);
}

/* One browse, to the end (or until stopped); NULL when stopped. */
static ud_dnssd_result *browse(ud_dnssd *d)
{
    char name[512];
    ud_dnssd_result *r = calloc(1, sizeof *r);
    pthread_mutex_lock(&d->mu);
    d->error[0] = '\0';
    d->pending = 1; /* held while asking */
    for (size_t i = 0; i < d->n_dl; i++) {
        snprintf(name, sizeof name, "_services._dns-sd._udp.%s", d->dl[i]);
        ask_ptr(d, name, true);
        for (size_t k = 0; k < d->n_tl; k++) {
            snprintf(name, sizeof name, "%s.%s", d->tl[k], d->dl[i]);
            ask_ptr(d, name, false);
        }
    }
    d->pending--;
    while (d->pending > 0 && !d->stop)
        pthread_cond_wait(&d->cv, &d->mu);
    if (r && !d->stop) {
        snprintf(r->error, sizeof r->error, "%s", d->error);
        r->names = d->found;
        r->n = d->n_found;
        sl_dns_names_sort(r->names, &r->n);
        r->failed = d->failed;
        r->n_failed = d->n_failed;
        d->found = NULL;
        d->n_found = d->cap_found = 0;
        d->failed = NULL;
        d->n_failed = d->cap_failed = 0;
    }
    sl_dns_names_free(d->failed, d->n_failed);
    d->failed = NULL;
    d->n_failed = d->cap_failed = 0;
    sl_dns_names_free(d->found, d->n_found);
    d->found = NULL;
    d->n_found = d->cap_found = 0;
    sl_dns_names_free(d->asked, d->n_asked);
    d->asked = NULL;
    d->n_asked = d->cap_asked = 0;
    bool stopped = d->stop;
    pthread_mutex_unlock(&d->mu);
    if (stopped) {
        ud_dnssd_result_free(r);
        return NULL;
    }
    return r;
}

static void *run(void *arg)
{
    ud_dnssd *d = arg;
    for (;;) {
        ud_dnssd_result *r = browse(d);
        if (!r)
            break;
        int64_t wait_ms = !r->n_failed ? d->o.refresh_ms : d->o.retry_ms;
        if (!r->n_failed)
            sl_log_debug(COMP, "browsed", "instances=%zu", r->n);
        else
            sl_log_warn(COMP, "browse incomplete", "instances=%zu failed_queries=%zu err=%s", r->n, r->n_failed,
                        sl_log_q(r->error));
        d->o.cb(r, d->o.ud);
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += wait_ms / 1000;
        until.tv_nsec += (wait_ms % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_mutex_lock(&d->mu);
        while (!d->stop && pthread_cond_timedwait(&d->cv, &d->mu, &until) == 0)
            ;
        bool stop = d->stop;
        pthread_mutex_unlock(&d->mu);
        if (stop)
            break;
    }
    return NULL;
}

static void dnssd_free_fields(ud_dnssd *d)
{
    sl_dns_resolver_free(d->r); /* pending queries are cancelled: their callbacks run first */
    pthread_mutex_destroy(&d->mu);
    pthread_cond_destroy(&d->cv);
    free(d->dl);
    free(d->tl);
    free(d->domains);
    free(d->types);
    free(d);
}

sl_status ud_dnssd_start(ud_dnssd **out, const ud_dnssd_opts *o)
{
    ud_dnssd *d = calloc(1, sizeof *d);
    sl_status rc;
    *out = NULL;
    if (!d)
        return sl_error_set(SL_ERR_NOMEM, "out of memory");
    d->o = *o;
    pthread_mutex_init(&d->mu, NULL);
    pthread_cond_init(&d->cv, NULL);
    if (!(d->domains = strdup(o->domains ? o->domains : "")) || !(d->types = strdup(o->types ? o->types : ""))) {
        dnssd_free_fields(d);
        return sl_error_set(SL_ERR_NOMEM, "out of memory");
    }
    d->n_dl = split(d->domains, &d->dl);
    d->n_tl = split(d->types, &d->tl);
    if (!d->n_dl) {
        dnssd_free_fields(d);
        return sl_error_set(SL_ERR_INVALID, "DNS-SD: no domain to browse");
    }
    if ((rc = sl_dns_resolver_new(&d->r, &o->dns)) != SL_OK) {
        dnssd_free_fields(d);
        return rc;
    }
    if (pthread_create(&d->thread, NULL, run, d) != 0) {
        dnssd_free_fields(d);
        return sl_error_set(SL_ERR_INTERNAL, "cannot start the DNS-SD thread");
    }
    *out = d;
    return SL_OK;
}

void ud_dnssd_free(ud_dnssd *d)
{
    if (!d)
        return;
    pthread_mutex_lock(&d->mu);
    d->stop = true;
    pthread_cond_broadcast(&d->cv);
    pthread_mutex_unlock(&d->mu);
    pthread_join(d->thread, NULL);
    dnssd_free_fields(d);
}
