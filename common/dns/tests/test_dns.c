/* test_dns.c - sluice/dns.h without a DNS server: SRV and PTR answers from bytes, record order, outcome codes,
 * and the resolver's plumbing (numeric names, bad servers, a silent or closed port, cancellation). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <arpa/inet.h>
#include <ares.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "sluice/dns.h"

/* ---- a DNS response, built by hand --------------------------------------- */

typedef struct msg {
    uint8_t b[1024];
    size_t n;
} msg;

static void put16(msg *m, unsigned v)
{
    m->b[m->n++] = (uint8_t)(v >> 8);
    m->b[m->n++] = (uint8_t)v;
}

static void put32(msg *m, uint32_t v)
{
    put16(m, v >> 16);
    put16(m, v & 0xffff);
}

static void put_name(msg *m, const char *name)
{
    while (*name) {
        const char *dot = strchr(name, '.');
        size_t l = dot ? (size_t)(dot - name) : strlen(name);
        m->b[m->n++] = (uint8_t)l;
        memcpy(m->b + m->n, name, l);
        m->n += l;
        name += l + (dot ? 1 : 0);
    }
    m->b[m->n++] = 0;
}

/* A response header and the question "_http._tcp.svc.test <qtype>". */
static void header(msg *m, unsigned rcode, unsigned answers, unsigned qtype)
{
    memset(m, 0, sizeof *m);
    put16(m, 0x1234);
    put16(m, 0x8180 | rcode);
    put16(m, 1);
    put16(m, answers);
    put16(m, 0);
    put16(m, 0);
    put_name(m, "_http._tcp.svc.test");
    put16(m, qtype);
    put16(m, 1);
}

/* Starts an answer record (owner: the question's name) of type with ttl;
 * returns where its rdlength goes (rdata_end() fills it in). */
static size_t rdata_begin(msg *m, unsigned type, uint32_t ttl)
{
    put16(m, 0xc00c); /* pointer to the question's name */
    put16(m, type);
    put16(m, 1);
    put32(m, ttl);
    put16(m, 0);
    return m->n - 2;
}

static void rdata_end(msg *m, size_t at)
{
    size_t len = m->n - at - 2;
    m->b[at] = (uint8_t)(len >> 8);
    m->b[at + 1] = (uint8_t)len;
}

/* A response to "_http._tcp.svc.test SRV" with rcode and the SRV answers
 * (target names written in full, the owner compressed to the question). */
static void build(msg *m, unsigned rcode, unsigned n, const uint16_t (*srv)[3], const char *const *targets,
                  const uint32_t *ttls)
{
    header(m, rcode, n, 33);
    for (unsigned i = 0; i < n; i++) {
        size_t at = rdata_begin(m, 33, ttls[i]);
        put16(m, srv[i][0]);
        put16(m, srv[i][1]);
        put16(m, srv[i][2]);
        put_name(m, targets[i]);
        rdata_end(m, at);
    }
}

static void test_parse_srv(void **state)
{
    (void)state;
    msg m;
    const uint16_t srv[2][3] = {{10, 60, 8080}, {20, 0, 9090}};
    const char *targets[] = {"a.svc.test", "b.svc.test"};
    const uint32_t ttls[] = {30, 0x80000001u};
    sl_dns_srv *v;
    size_t n;
    sl_dns_rcode rc;

    build(&m, 0, 2, srv, targets, ttls);
    assert_int_equal(sl_dns_parse_srv(&v, &n, &rc, m.b, m.n), SL_OK);
    assert_int_equal(rc, SL_DNS_OK);
    assert_int_equal(n, 2);
    assert_int_equal(v[0].priority, 10);
    assert_int_equal(v[0].weight, 60);
    assert_int_equal(v[0].port, 8080);
    assert_int_equal(v[0].ttl, 30);
    assert_string_equal(v[0].target, "a.svc.test");
    assert_string_equal(v[1].target, "b.svc.test");
    assert_int_equal(v[1].ttl, 0); /* top bit set: 0 (RFC 2181) */
    sl_dns_srv_free(v, n);

    /* Every truncation is an error or a shorter answer, never a read past the end. */
    for (size_t cut = 0; cut < m.n; cut++) {
        uint8_t *copy = malloc(cut ? cut : 1);
        memcpy(copy, m.b, cut);
        sl_status st = sl_dns_parse_srv(&v, &n, &rc, copy, cut);
        assert_true(st == SL_ERR_PARSE || st == SL_OK);
        if (st == SL_OK)
            sl_dns_srv_free(v, n);
        free(copy);
    }
}

/* A response to "_http._tcp.svc.test PTR" with the names given (each in
 * full), an SRV record among them (skipped), and rcode. */
static void build_ptr(msg *m, unsigned rcode, unsigned n, const char *const *names, const uint32_t *ttls)
{
    header(m, rcode, n + 1, 12);
    for (unsigned i = 0; i < n; i++) {
        size_t at = rdata_begin(m, 12, ttls[i]);
        put_name(m, names[i]);
        rdata_end(m, at);
    }
    size_t at = rdata_begin(m, 33, 1); /* an SRV record: not a PTR, skipped */
    put16(m, 0);
    put16(m, 0);
    put16(m, 80);
    put_name(m, "x.");
    rdata_end(m, at);
}

static void test_parse_ptr(void **state)
{
    (void)state;
    msg m;
    const char *names[] = {"web._http._tcp.svc.test", "api._http._tcp.svc.test", "web._http._tcp.svc.test"};
    const uint32_t ttls[] = {30, 7, 0x80000001u};
    char **v;
    size_t n;
    uint32_t ttl;
    sl_dns_rcode rc;

    build_ptr(&m, 0, 3, names, ttls);
    assert_int_equal(sl_dns_parse_ptr(&v, &n, &ttl, &rc, m.b, m.n), SL_OK);
    assert_int_equal(rc, SL_DNS_OK);
    assert_int_equal(n, 2); /* sorted, the duplicate dropped */
    assert_string_equal(v[0], "api._http._tcp.svc.test");
    assert_string_equal(v[1], "web._http._tcp.svc.test");
    assert_int_equal(ttl, 0); /* the smallest; top bit set is 0 */
    sl_dns_names_free(v, n);

    /* No PTR records (only the SRV): NODATA; error codes carry no names. */
    build_ptr(&m, 0, 0, NULL, NULL);
    assert_int_equal(sl_dns_parse_ptr(&v, &n, &ttl, &rc, m.b, m.n), SL_OK);
    assert_int_equal(rc, SL_DNS_NODATA);
    assert_null(v);
    build_ptr(&m, 3, 1, names, ttls);
    assert_int_equal(sl_dns_parse_ptr(&v, &n, &ttl, &rc, m.b, m.n), SL_OK);
    assert_int_equal(rc, SL_DNS_NXDOMAIN);
    assert_int_equal(n, 0);
    assert_null(v);

    /* An empty name (the root) is not a service instance. */
    const char *root[] = {""};
    build_ptr(&m, 0, 1, root, ttls);
    assert_int_equal(sl_dns_parse_ptr(&v, &n, &ttl, &rc, m.b, m.n), SL_ERR_PARSE);

    /* Every truncation is an error or a shorter answer, never a read past the end. */
    build_ptr(&m, 0, 2, names, ttls);
    for (size_t cut = 0; cut < m.n; cut++) {
        uint8_t *copy = malloc(cut ? cut : 1);
        memcpy(copy, m.b, cut);
        sl_status st = sl_dns_parse_ptr(&v, &n, &ttl, &rc, copy, cut);
        assert_true(st == SL_ERR_PARSE || st == SL_OK);
        if (st == SL_OK)
            sl_dns_names_free(v, n);
        free(copy);
    }
    /* A PTR name that points at itself. */
    build_ptr(&m, 0, 1, names, ttls);
    m.b[37] = 0xc0;
    m.b[38] = 37;
    assert_int_equal(sl_dns_parse_ptr(&v, &n, &ttl, &rc, m.b, m.n), SL_ERR_PARSE);
}

static void test_parse_rcodes(void **state)
{
    (void)state;
    msg m;
    sl_dns_srv *v;
    size_t n;
    sl_dns_rcode rc;
    static const struct {
        unsigned code;
        sl_dns_rcode want;
    } cases[] = {{0, SL_DNS_NODATA}, {2, SL_DNS_SERVFAIL}, {3, SL_DNS_NXDOMAIN}, {5, SL_DNS_REFUSED}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        build(&m, cases[i].code, 0, NULL, NULL, NULL);
        assert_int_equal(sl_dns_parse_srv(&v, &n, &rc, m.b, m.n), SL_OK);
        assert_int_equal(rc, cases[i].want);
        assert_int_equal(n, 0);
        assert_null(v);
    }
    /* An answer whose data length runs past the end. */
    const uint16_t srv[1][3] = {{1, 1, 1}};
    const char *t[] = {"x.test"};
    const uint32_t ttl[] = {5};
    build(&m, 0, 1, srv, t, ttl);
    m.b[m.n - 16] = 0xff; /* rdlength's high byte (rdata: 6 + 8 bytes) */
    assert_int_equal(sl_dns_parse_srv(&v, &n, &rc, m.b, m.n), SL_ERR_PARSE);
    /* A compression loop. */
    build(&m, 0, 0, NULL, NULL, NULL);
    m.b[12] = 0xc0;
    m.b[13] = 12;
    assert_int_equal(sl_dns_parse_srv(&v, &n, &rc, m.b, m.n), SL_ERR_PARSE);
}

static void test_rcode_map(void **state)
{
    (void)state;
    assert_int_equal(sl_dns_rcode_from_ares(ARES_SUCCESS), SL_DNS_OK);
    assert_int_equal(sl_dns_rcode_from_ares(ARES_ENOTFOUND), SL_DNS_NXDOMAIN);
    assert_int_equal(sl_dns_rcode_from_ares(ARES_ENODATA), SL_DNS_NODATA);
    assert_int_equal(sl_dns_rcode_from_ares(ARES_ETIMEOUT), SL_DNS_TIMEOUT);
    assert_int_equal(sl_dns_rcode_from_ares(ARES_ESERVFAIL), SL_DNS_SERVFAIL);
    assert_int_equal(sl_dns_rcode_from_ares(ARES_EREFUSED), SL_DNS_REFUSED);
    assert_int_equal(sl_dns_rcode_from_ares(ARES_ECONNREFUSED), SL_DNS_UNREACHABLE);
    assert_int_equal(sl_dns_rcode_from_ares(ARES_EDESTRUCTION), SL_DNS_CANCELLED);
    assert_true(sl_dns_rcode_answered(SL_DNS_NXDOMAIN));
    assert_true(sl_dns_rcode_answered(SL_DNS_NODATA));
    assert_false(sl_dns_rcode_answered(SL_DNS_TIMEOUT));
    assert_false(sl_dns_rcode_answered(SL_DNS_SERVFAIL));
    assert_string_equal(sl_dns_rcode_str(SL_DNS_NXDOMAIN), "NXDOMAIN");
    assert_string_equal(sl_dns_rcode_str(SL_DNS_TIMEOUT), "timeout");
}

static sl_dns_record rec(const char *addr, uint16_t port, uint16_t prio, uint32_t ttl)
{
    sl_dns_record r;
    memset(&r, 0, sizeof r);
    snprintf(r.address, sizeof r.address, "%s", addr);
    r.port = port;
    r.priority = prio;
    r.ttl = ttl;
    r.hostname = strdup("h.test");
    return r;
}

static void test_sort(void **state)
{
    (void)state;
    sl_dns_record v[6] = {rec("10.0.0.10", 80, 0, 30), rec("::1", 80, 0, 30),    rec("10.0.0.9", 80, 0, 30),
                          rec("10.0.0.9", 81, 0, 30),  rec("10.0.0.9", 80, 5, 7), rec("2001:db8::1", 80, 0, 30)};
    size_t n = 6;
    sl_dns_records_sort(v, &n);
    assert_int_equal(n, 5);
    assert_string_equal(v[0].address, "10.0.0.9"); /* numeric order: 9 before 10 */
    assert_int_equal(v[0].port, 80);
    assert_int_equal(v[0].priority, 0); /* the preferred duplicate stays */
    assert_int_equal(v[0].ttl, 7);      /* with the smallest TTL seen */
    assert_int_equal(v[1].port, 81);
    assert_string_equal(v[2].address, "10.0.0.10");
    assert_string_equal(v[3].address, "::1");
    assert_string_equal(v[4].address, "2001:db8::1");
    for (size_t i = 0; i < n; i++)
        free(v[i].hostname);
}

/* ---- the resolver, without a DNS server ---------------------------------- */

typedef struct waiter {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    sl_dns_result *res;
    int calls;
} waiter;

static void done(sl_dns_result *res, void *ud)
{
    waiter *w = ud;
    pthread_mutex_lock(&w->mu);
    w->res = res;
    w->calls++;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

static sl_dns_result *wait_result(waiter *w)
{
    pthread_mutex_lock(&w->mu);
    while (!w->res)
        pthread_cond_wait(&w->cv, &w->mu);
    sl_dns_result *r = w->res;
    w->res = NULL;
    pthread_mutex_unlock(&w->mu);
    return r;
}

/* A bound UDP socket on loopback that never answers; *port gets its port. */
static int silent_udp(int *port)
{
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t l = sizeof a;
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    getsockname(fd, (struct sockaddr *)&a, &l);
    *port = ntohs(a.sin_port);
    return fd;
}

static void test_resolver(void **state)
{
    (void)state;
    sl_dns_resolver *r;
    waiter w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL, 0};
    char servers[64];
    int port, fd = silent_udp(&port);

    sl_dns_opts bad = {.servers = "not an address:x"};
    assert_int_equal(sl_dns_resolver_new(&r, &bad), SL_ERR_INVALID);

    snprintf(servers, sizeof servers, "127.0.0.1:%d", port);
    sl_dns_opts o = {.servers = servers, .timeout_ms = 200, .tries = 1};
    assert_int_equal(sl_dns_resolver_new(&r, &o), SL_OK);

    /* A numeric name needs no server. */
    sl_dns_query q = {.name = "192.0.2.7", .port = 8080};
    assert_int_equal(sl_dns_resolve(r, &q, done, &w), SL_OK);
    sl_dns_result *res = wait_result(&w);
    assert_int_equal(res->rcode, SL_DNS_OK);
    assert_int_equal(res->n_records, 1);
    assert_string_equal(res->records[0].address, "192.0.2.7");
    assert_int_equal(res->records[0].port, 8080);
    sl_dns_result_free(res);

    /* A server that never answers: a timeout, not NXDOMAIN. */
    q = (sl_dns_query){.name = "svc.test", .port = 80};
    assert_int_equal(sl_dns_resolve(r, &q, done, &w), SL_OK);
    res = wait_result(&w);
    assert_int_equal(res->rcode, SL_DNS_TIMEOUT);
    assert_false(sl_dns_rcode_answered(res->rcode));
    assert_non_null(strstr(res->message, "svc.test"));
    sl_dns_result_free(res);

    q = (sl_dns_query){.name = "_http._tcp.svc.test", .srv = true};
    assert_int_equal(sl_dns_resolve(r, &q, done, &w), SL_OK);
    res = wait_result(&w);
    assert_int_equal(res->rcode, SL_DNS_TIMEOUT);
    assert_non_null(strstr(res->message, "SRV"));
    sl_dns_result_free(res);

    q = (sl_dns_query){.name = "_http._tcp.svc.test", .ptr = true};
    assert_int_equal(sl_dns_resolve(r, &q, done, &w), SL_OK);
    res = wait_result(&w);
    assert_int_equal(res->rcode, SL_DNS_TIMEOUT);
    assert_non_null(strstr(res->message, "PTR"));
    assert_int_equal(res->n_names, 0);
    sl_dns_result_free(res);

    q.name = "";
    assert_int_equal(sl_dns_resolve(r, &q, done, &w), SL_ERR_INVALID);

    /* Freed with a query pending: its callback runs, cancelled, before free returns. */
    w.calls = 0;
    q = (sl_dns_query){.name = "slow.test", .port = 80};
    assert_int_equal(sl_dns_resolve(r, &q, done, &w), SL_OK);
    sl_dns_resolver_free(r);
    assert_int_equal(w.calls, 1);
    res = wait_result(&w);
    assert_int_equal(res->rcode, SL_DNS_CANCELLED);
    sl_dns_result_free(res);
    close(fd);

    /* A closed port: nobody there (or no answer): never an answer. */
    snprintf(servers, sizeof servers, "127.0.0.1:%d", port);
    assert_int_equal(sl_dns_resolver_new(&r, &o), SL_OK);
    q = (sl_dns_query){.name = "svc.test", .port = 80};
    assert_int_equal(sl_dns_resolve(r, &q, done, &w), SL_OK);
    res = wait_result(&w);
    assert_true(res->rcode == SL_DNS_UNREACHABLE || res->rcode == SL_DNS_TIMEOUT);
    sl_dns_result_free(res);
    sl_dns_resolver_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_srv), cmocka_unit_test(test_parse_ptr), cmocka_unit_test(test_parse_rcodes), cmocka_unit_test(test_rcode_map),
        cmocka_unit_test(test_sort),      cmocka_unit_test(test_resolver),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
