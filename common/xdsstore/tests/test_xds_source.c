/* test_xds_source.c - the sluice_xds store format as sluice-xds reads it
 * (services/xds/source.c): commits naming manifest chunks, routes stored in
 * parts, and the commits that must be refused (the previous revision keeps
 * serving). No NATS: KV events are fed to the source by hand. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/xds_cache.h"
#include "envoy/config/route/v3/route.pb-c.h"
#include "sluice/log.h"
#include "sluice/v1/xds.pb-c.h"
#include "sluice/xds.h"
#include "sluice/xds_keys.h"
#include "sluice/xds_source.h"
#include "xds_fixtures.h"
#include "xds_testkeys.h"

#define PROXY "p"

/* Whether the error message names key at a revision. */
static bool error_names(const char *key)
{
    char want[SL_XDS_KEY_MAX + 16];
    snprintf(want, sizeof want, "%s at revision", key);
    return strstr(sl_error_msg(), want) != NULL;
}

static sl_xds_cache *cache;
static sl_xds_source *src;
static uint64_t next_rev = 1;

static int setup(void **state)
{
    (void)state;
    sl_log_set_level(SL_LOG_ERROR);
    next_rev = 1;
    if (sl_xds_cache_new(&cache, NULL, NULL) != SL_OK ||
        sl_xds_source_new(&src, cache, NULL, NULL) != SL_OK)
        return -1;
    sl_xds_source_initial_done(src);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    sl_xds_source_free(src);
    sl_xds_cache_free(cache);
    return 0;
}

static uint64_t put(const char *key, const void *val, size_t len)
{
    uint64_t rev = next_rev++;
    sl_xds_source_put(src, key, rev, val, len);
    return rev;
}

/* A manifest entry as the writer lists it. */
typedef struct ent {
    const char *name;
    uint64_t rev;
    uint32_t parts;
} ent;

/* Writes one manifest chunk of type tt holding es[0..n), named id; its
 * revision. */
static uint64_t put_chunk(const char *tt, const char *id, const ent *es, size_t n)
{
    Sluice__V1__XdsManifest m = SLUICE__V1__XDS_MANIFEST__INIT;
    Sluice__V1__XdsEntry *e = calloc(n + 1, sizeof *e), **ep = calloc(n + 1, sizeof *ep);
    for (size_t i = 0; i < n; i++) {
        sluice__v1__xds_entry__init(&e[i]);
        e[i].name = (char *)es[i].name;
        e[i].revision = es[i].rev;
        e[i].parts = es[i].parts;
        ep[i] = &e[i];
    }
    m.n_entries = n;
    m.entries = ep;
    size_t len = sluice__v1__xds_manifest__get_packed_size(&m);
    uint8_t *b = malloc(len + 1);
    sluice__v1__xds_manifest__pack(&m, b);
    uint64_t rev = put(tk_key_manifest(PROXY, tk_xds_type(tt), id), b, len);
    free(b);
    free(e);
    free(ep);
    return rev;
}

typedef struct ref {
    const char *type, *id;
    uint64_t rev;
} ref;

static void put_commit(uint64_t revision, const ref *refs, size_t n)
{
    Sluice__V1__XdsCommit c = SLUICE__V1__XDS_COMMIT__INIT;
    Sluice__V1__XdsChunkRef r[16], *rp[16];
    for (size_t i = 0; i < n; i++) {
        sluice__v1__xds_chunk_ref__init(&r[i]);
        r[i].type = (char *)refs[i].type;
        r[i].id = (char *)refs[i].id;
        r[i].revision = refs[i].rev;
        rp[i] = &r[i];
    }
    c.revision = revision;
    c.n_chunks = n;
    c.chunks = rp;
    uint8_t buf[4096];
    size_t len = sluice__v1__xds_commit__pack(&c, buf);
    put(tk_key_commit(PROXY), buf, len);
}

static sl_xds_snapshot *current(void) { return sl_xds_cache_get(cache, PROXY); }

/* A RouteConfiguration of nv virtual hosts "vh<i>" with nr routes each. */
static uint8_t *big_route(size_t *len, const char *name, int nv, int nr, const char *tag)
{
    Envoy__Config__Route__V3__RouteConfiguration rc = ENVOY__CONFIG__ROUTE__V3__ROUTE_CONFIGURATION__INIT;
    Envoy__Config__Route__V3__VirtualHost *vh = calloc((size_t)nv, sizeof *vh);
    Envoy__Config__Route__V3__VirtualHost **vhp = calloc((size_t)nv, sizeof *vhp);
    Envoy__Config__Route__V3__Route *rt = calloc((size_t)nv * (size_t)nr, sizeof *rt);
    Envoy__Config__Route__V3__Route **rtp = calloc((size_t)nv * (size_t)nr, sizeof *rtp);
    Envoy__Config__Route__V3__RouteMatch *mt = calloc((size_t)nv * (size_t)nr, sizeof *mt);
    Envoy__Config__Route__V3__RouteAction act = ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__INIT;
    char (*names)[32] = calloc((size_t)nv, 32), (*doms)[48] = calloc((size_t)nv, 48);
    char (*pre)[48] = calloc((size_t)nv * (size_t)nr, 48);
    char *domp[1024];
    act.cluster_specifier_case = ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__CLUSTER_SPECIFIER_CLUSTER;
    act.cluster = "c1";
    rc.name = (char *)name;
    rc.n_virtual_hosts = (size_t)nv;
    rc.virtual_hosts = vhp;
    rc.validate_clusters = NULL;
    for (int i = 0; i < nv; i++) {
        envoy__config__route__v3__virtual_host__init(&vh[i]);
        snprintf(names[i], 32, "vh%d", i);
        snprintf(doms[i], 48, "vh%d.example.com", i);
        vh[i].name = names[i];
        domp[i % 1024] = doms[i];
        vh[i].n_domains = 1;
        vh[i].domains = &domp[i % 1024];
        vh[i].n_routes = (size_t)nr;
        vh[i].routes = rtp + (size_t)i * (size_t)nr;
        for (int r = 0; r < nr; r++) {
            size_t k = (size_t)i * (size_t)nr + (size_t)r;
            envoy__config__route__v3__route__init(&rt[k]);
            envoy__config__route__v3__route_match__init(&mt[k]);
            snprintf(pre[k], 48, "/%s/%d/%d", tag, i, r);
            mt[k].path_specifier_case = ENVOY__CONFIG__ROUTE__V3__ROUTE_MATCH__PATH_SPECIFIER_PREFIX;
            mt[k].prefix = pre[k];
            rt[k].match = &mt[k];
            rt[k].action_case = ENVOY__CONFIG__ROUTE__V3__ROUTE__ACTION_ROUTE;
            rt[k].route = &act;
            rtp[k] = &rt[k];
        }
        vhp[i] = &vh[i];
    }
    *len = envoy__config__route__v3__route_configuration__get_packed_size(&rc);
    uint8_t *b = malloc(*len);
    envoy__config__route__v3__route_configuration__pack(&rc, b);
    free(vh);
    free(vhp);
    free(rt);
    free(rtp);
    free(mt);
    free(names);
    free(doms);
    free(pre);
    return b;
}

/* Protobuf-c packs fields in number order: unpack + pack is a canonical
 * form, so equal results mean the same message. */
static void assert_same_route(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
    Envoy__Config__Route__V3__RouteConfiguration *x, *y;
    x = envoy__config__route__v3__route_configuration__unpack(NULL, al, a);
    y = envoy__config__route__v3__route_configuration__unpack(NULL, bl, b);
    assert_non_null(x);
    assert_non_null(y);
    assert_int_equal(x->n_virtual_hosts, y->n_virtual_hosts);
    size_t xl = envoy__config__route__v3__route_configuration__get_packed_size(x);
    size_t yl = envoy__config__route__v3__route_configuration__get_packed_size(y);
    assert_int_equal(xl, yl);
    uint8_t *xb = malloc(xl), *yb = malloc(yl);
    envoy__config__route__v3__route_configuration__pack(x, xb);
    envoy__config__route__v3__route_configuration__pack(y, yb);
    assert_memory_equal(xb, yb, xl);
    free(xb);
    free(yb);
    envoy__config__route__v3__route_configuration__free_unpacked(x, NULL);
    envoy__config__route__v3__route_configuration__free_unpacked(y, NULL);
}

/* The packed resource inside a served resource's SotW form. */
static const uint8_t *packed_of(const sl_xds_res *r) { return r->sotw + r->sotw_len - r->packed_len; }

/* Writes a route split the way the translator does: the head, one part per
 * virtual host; returns the manifest entries (names point into data). */
static size_t put_split(const char *name, const uint8_t *data, size_t len, ent *es, char (*vn)[64])
{
    uint8_t *head;
    size_t hl, np;
    sl_xds_part *parts;
    assert_int_equal(sl_xds_route_split(&head, &hl, &parts, &np, data, len), SL_OK);
    es[0] = (ent){name, put(tk_key_resource(PROXY, SL_XDS_ROUTE, name), head, hl), (uint32_t)np};
    for (size_t i = 0; i < np; i++) {
        snprintf(vn[i], 64, "%.*s", (int)parts[i].name_len, parts[i].name);
        es[1 + i] = (ent){vn[i], put(tk_key_vhost(PROXY, name, vn[i]), data + parts[i].off, parts[i].len), 0};
    }
    free(head);
    free(parts);
    return np + 1;
}

/* A route above NATS' default max_payload (1 MB) is split, the parts are
 * spread over chunks, and what is served decodes as the unsplit route. */
static void test_split_route_served(void **state)
{
    (void)state;
    size_t len, cl;
    uint8_t *whole = big_route(&len, "r", 250, 200, "api");
    assert_true(len > 1024 * 1024);
    static ent es[256];
    static char vn[256][64];
    size_t n = put_split("r", whole, len, es, vn);
    uint8_t *c = fx_cluster(&cl, "c1", NULL);
    uint64_t crev = put(tk_key_resource(PROXY, SL_XDS_CLUSTER, "c1"), c, cl);
    free(c);
    ent ce = {"c1", crev, 0};
    /* The route's entries over three chunks: parts cross chunk borders. */
    ref refs[4] = {{"cluster", "c", put_chunk("cluster", "c", &ce, 1)},
                   {"route", "a", put_chunk("route", "a", es, 50)},
                   {"route", "b", put_chunk("route", "b", es + 50, 100)},
                   {"route", "d", put_chunk("route", "d", es + 150, n - 150)}};
    put_commit(7, refs, 4);
    assert_int_equal(sl_xds_source_commits(src), 1);
    sl_xds_snapshot *s = current();
    assert_non_null(s);
    assert_int_equal(s->revision, 7);
    assert_int_equal(s->types[SL_XDS_ROUTE].n, 1);
    assert_int_equal(s->types[SL_XDS_CLUSTER].n, 1);
    sl_xds_res *r = sl_xds_snapshot_find(s, SL_XDS_ROUTE, "r");
    assert_non_null(r);
    assert_int_equal(r->packed_len, len); /* same fields, only reordered */
    assert_same_route(packed_of(r), r->packed_len, whole, len);
    char ver1[48];
    snprintf(ver1, sizeof ver1, "%s", r->version);
    sl_xds_snapshot_unref(s);

    /* One virtual host changes: its part and the chunk naming it move; the
     * route is assembled again with a new version, the cluster is the same
     * object. */
    size_t len2;
    uint8_t *whole2 = big_route(&len2, "r", 250, 200, "api");
    {
        /* vh120 gets the routes of another tag */
        size_t l3;
        uint8_t *other = big_route(&l3, "r", 250, 200, "v2");
        uint8_t *h;
        size_t hl, np;
        sl_xds_part *p, *p3;
        assert_int_equal(sl_xds_route_split(&h, &hl, &p, &np, whole2, len2), SL_OK);
        free(h);
        assert_int_equal(sl_xds_route_split(&h, &hl, &p3, &np, other, l3), SL_OK);
        free(h);
        es[121].rev = put(tk_key_vhost(PROXY, "r", "vh120"), other + p3[120].off, p3[120].len);
        /* the expected whole: parts of whole2 with vh120 from other */
        const uint8_t *pv[250];
        size_t pl[250];
        for (int i = 0; i < 250; i++) {
            pv[i] = i == 120 ? other + p3[i].off : whole2 + p[i].off;
            pl[i] = i == 120 ? p3[i].len : p[i].len;
        }
        uint8_t *hd;
        size_t hdl, np2;
        sl_xds_part *pp;
        assert_int_equal(sl_xds_route_split(&hd, &hdl, &pp, &np2, whole2, len2), SL_OK);
        uint8_t *joined;
        assert_int_equal(sl_xds_route_join(&joined, &len2, hd, hdl, pv, pl, 250), SL_OK);
        free(whole2);
        whole2 = joined;
        free(hd);
        free(pp);
        free(p);
        free(p3);
        free(other);
    }
    refs[2].rev = put_chunk("route", "b", es + 50, 100);
    put_commit(8, refs, 4);
    assert_int_equal(sl_xds_source_commits(src), 2);
    s = current();
    r = sl_xds_snapshot_find(s, SL_XDS_ROUTE, "r");
    assert_string_not_equal(r->version, ver1);
    assert_same_route(packed_of(r), r->packed_len, whole2, len2);
    sl_xds_snapshot_unref(s);
    free(whole);
    free(whole2);
}

/* Commits that cannot be served are refused, naming the key; the previous
 * revision keeps serving. */
static void test_refused(void **state)
{
    (void)state;
    size_t cl;
    uint8_t *c = fx_cluster(&cl, "c1", NULL);
    ent ce = {"c1", put(tk_key_resource(PROXY, SL_XDS_CLUSTER, "c1"), c, cl), 0};
    free(c);
    ref good = {"cluster", "c", put_chunk("cluster", "c", &ce, 1)};
    put_commit(1, &good, 1);
    assert_int_equal(sl_xds_source_commits(src), 1);

    /* A commit that is not a sluice.v1.XdsCommit (an old JSON commit). */
    put(tk_key_commit(PROXY), "{\"revision\": 2, \"resources\": {}}", 32);
    assert_int_equal(sl_xds_source_refused(src), 1);
    assert_true(error_names(tk_key_commit(PROXY)));
    /* A manifest chunk that is not a manifest. */
    ref bad = {"cluster", "x", put(tk_key_manifest(PROXY, SL_XDS_CLUSTER, "x"), "\xff\xff\xff", 3)};
    put_commit(3, &bad, 1);
    assert_int_equal(sl_xds_source_refused(src), 2);
    assert_true(error_names(tk_key_manifest(PROXY, SL_XDS_CLUSTER, "x")));
    /* A chunk at a revision that is not there (no history here). */
    ref gone = {"cluster", "c", good.rev + 100};
    put_commit(4, &gone, 1);
    assert_int_equal(sl_xds_source_refused(src), 3);
    assert_non_null(strstr(sl_error_msg(), "is not available"));
    /* A split route whose parts are missing. */
    size_t len;
    uint8_t *whole = big_route(&len, "r", 4, 2, "api");
    static ent es[8];
    static char vn[8][64];
    size_t n = put_split("r", whole, len, es, vn);
    ref rr[2] = {good, {"route", "r", put_chunk("route", "r", es, n - 2)}};
    put_commit(5, rr, 2);
    assert_int_equal(sl_xds_source_refused(src), 4);
    assert_non_null(strstr(sl_error_msg(), "lacks 2 of its parts"));
    /* A part that is not a VirtualHost. */
    put(tk_key_vhost(PROXY, "r", "vh3"), "\x0a", 1);
    es[4].rev = next_rev - 1;
    rr[1].rev = put_chunk("route", "r", es, n);
    put_commit(6, rr, 2);
    assert_int_equal(sl_xds_source_refused(src), 5);
    assert_true(error_names(tk_key_vhost(PROXY, "r", "vh3")));
    /* Through all of it the first revision kept serving. */
    sl_xds_snapshot *s = current();
    assert_int_equal(s->revision, 1);
    assert_int_equal(s->types[SL_XDS_CLUSTER].n, 1);
    sl_xds_snapshot_unref(s);
    free(whole);
}

/* Split and join, and what split refuses. */
static void test_split_join(void **state)
{
    (void)state;
    size_t len, hl, np, jl;
    uint8_t *whole = big_route(&len, "r", 3, 2, "api"), *head, *joined;
    sl_xds_part *parts;
    assert_int_equal(sl_xds_route_split(&head, &hl, &parts, &np, whole, len), SL_OK);
    assert_int_equal(np, 3);
    assert_int_equal(parts[1].name_len, 3);
    assert_memory_equal(parts[1].name, "vh1", 3);
    const uint8_t *pv[3] = {whole + parts[0].off, whole + parts[1].off, whole + parts[2].off};
    size_t pl[3] = {parts[0].len, parts[1].len, parts[2].len};
    assert_int_equal(sl_xds_route_join(&joined, &jl, head, hl, pv, pl, 3), SL_OK);
    assert_same_route(joined, jl, whole, len);
    free(joined);
    free(head);
    free(parts);
    /* truncated */
    assert_int_equal(sl_xds_route_split(&head, &hl, &parts, &np, whole, len - 1), SL_ERR_PARSE);
    /* a virtual host without a name */
    static const uint8_t noname[] = {0x12, 0x02, 0x10, 0x01};
    assert_int_equal(sl_xds_route_split(&head, &hl, &parts, &np, noname, sizeof noname), SL_ERR_PARSE);
    free(whole);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_split_join, setup, teardown),
        cmocka_unit_test_setup_teardown(test_split_route_served, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
