/* test_xds_stream.c - the xDS protocol state machine, rule by rule
 * (numbers refer to the checklist in XDS-NOTES / docs/xds.md). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "xds_testlib.h"

#define CDS SL_XDS_CLUSTER
#define EDS SL_XDS_ENDPOINT
#define LDS SL_XDS_LISTENER
#define RDS SL_XDS_ROUTE
#define SDS SL_XDS_SECRET
#define RLS SL_XDS_RATELIMIT

static int setup_ads(void **state)
{
    tctx *c = malloc(sizeof *c);
    tctx_init(c, 0, 1, 0);
    *state = c;
    return 0;
}

static int setup_delta(void **state)
{
    tctx *c = malloc(sizeof *c);
    tctx_init(c, 1, 1, 0);
    *state = c;
    return 0;
}

static int teardown(void **state)
{
    tctx_deinit(*state);
    free(*state);
    return 0;
}

/* A gateway-like snapshot: 2 clusters with endpoints, 1 listener, 1 route. */
static void gateway(tctx *c, unsigned long long rev)
{
    tcommit(c, rev, "cluster:a:1", "cluster:b:2", "endpoint:a:3", "endpoint:b:4", "listener:l:5:r",
            "route:r:6:a", NULL);
}

/* The gateway snapshot at revision 1, CDS (wildcard) and EDS of a and b
 * subscribed, answered and ACKed. */
static void gateway_cds_eds_acked(tctx *c)
{
    gateway(c, 1);
    tsotw(c, NULL, CDS, NULL, NULL, NULL);
    tsotw(c, NULL, EDS, NULL, NULL, "a", "b", NULL);
    assert_string_equal(tdrain(c), "cds a b | eds a b");
    tsotw(c, NULL, CDS, T_ACK, NULL, NULL);
    tsotw(c, NULL, EDS, T_ACK, NULL, "a", "b", NULL);
}

/* ---- SotW ---- */

/* 1: node on the first request picks the proxy; later requests need none. */
static void test_node_selects_proxy(void **state)
{
    (void)state;
    tctx c;
    tctx_init(&c, 0, 1, 0);
    Envoy__Service__Discovery__V3__DiscoveryRequest req = ENVOY__SERVICE__DISCOVERY__V3__DISCOVERY_REQUEST__INIT;
    fx_node node;
    req.node = fx_node_init(&node, "n1", "gloo-system~edge");
    req.type_url = (char *)sl_xds_type_url(CDS);
    sl_xds_req_info info;
    assert_int_equal(sl_xds_stream_on_sotw(c.s, &req, &info), SL_OK);
    assert_true(info.first_on_stream);
    assert_string_equal(sl_xds_stream_proxy(c.s), "gloo-system~edge");
    assert_string_equal(sl_xds_stream_node_id(c.s), "n1");
    /* Snapshot of another proxy: nothing. */
    gateway(&c, 1);
    assert_string_equal(tpull(&c), "");
    c.proxy = "gloo-system~edge";
    gateway(&c, 2);
    assert_string_equal(tpull(&c), "cds a b");
    /* A later request without node keeps the proxy. */
    req.node = NULL;
    req.response_nonce = c.nonce[CDS];
    assert_int_equal(sl_xds_stream_on_sotw(c.s, &req, &info), SL_OK);
    assert_false(info.first_on_stream);
    assert_string_equal(sl_xds_stream_proxy(c.s), "gloo-system~edge");
    tctx_deinit(&c);
}

static void test_default_proxy(void **state)
{
    tctx *c = *state;
    gateway(c, 1);
    assert_int_equal(tsotw(c, NULL, CDS, NULL, NULL, NULL), SL_OK);
    assert_string_equal(sl_xds_stream_proxy(c->s), "gateway-proxy");
    assert_string_equal(tpull(c), "cds a b");
}

/* 2: empty type_url is invalid on ADS, means the stream's type otherwise. */
static void test_type_url_rules(void **state)
{
    tctx *c = *state;
    Envoy__Service__Discovery__V3__DiscoveryRequest req = ENVOY__SERVICE__DISCOVERY__V3__DISCOVERY_REQUEST__INIT;
    sl_xds_req_info info;
    assert_int_equal(sl_xds_stream_on_sotw(c->s, &req, &info), SL_ERR_INVALID);
    req.type_url = "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig";
    assert_int_equal(sl_xds_stream_on_sotw(c->s, &req, &info), SL_ERR_UNSUPPORTED);
    assert_non_null(strstr(sl_error_msg(), "TypedExtensionConfig"));

    tctx p;
    tctx_init(&p, 0, 0, EDS);
    tcommit(&p, 1, "endpoint:a:1", NULL);
    req.type_url = "";
    char *names[] = {"a"};
    req.n_resource_names = 1;
    req.resource_names = names;
    assert_int_equal(sl_xds_stream_on_sotw(p.s, &req, &info), SL_OK);
    assert_int_equal(info.type, EDS);
    assert_string_equal(tpull(&p), "eds a");
    req.type_url = (char *)sl_xds_type_url(CDS);
    assert_int_equal(sl_xds_stream_on_sotw(p.s, &req, &info), SL_ERR_INVALID);
    /* A delta request on a SotW stream is refused. */
    Envoy__Service__Discovery__V3__DeltaDiscoveryRequest d = ENVOY__SERVICE__DISCOVERY__V3__DELTA_DISCOVERY_REQUEST__INIT;
    assert_int_equal(sl_xds_stream_on_delta(p.s, &d, &info), SL_ERR_INVALID);
    tctx_deinit(&p);
}

/* 3, 4: nonces unique within the stream; versions tracked per type. */
static void test_nonce_and_version_per_type(void **state)
{
    tctx *c = *state;
    gateway(c, 1);
    tsotw(c, NULL, CDS, NULL, NULL, NULL);
    assert_string_equal(tpull(c), "cds a b");
    tsotw(c, NULL, EDS, NULL, NULL, "a", "b", NULL);
    assert_string_equal(tpull(c), "eds a b");
    assert_string_not_equal(c->nonce[CDS], c->nonce[EDS]);
    assert_string_not_equal(c->version[CDS], c->version[EDS]);
    char cds_version[40];
    strcpy(cds_version, c->version[CDS]);
    /* Only endpoints change: the CDS version stays, EDS moves. */
    tcommit(c, 2, "cluster:a:1", "cluster:b:2", "endpoint:a:3", "endpoint:b:40", "listener:l:5:r", "route:r:6:a",
            NULL);
    tsotw(c, NULL, CDS, T_ACK, NULL, NULL);
    tsotw(c, NULL, EDS, T_ACK, NULL, "a", "b", NULL);
    assert_string_equal(tdrain(c), "eds b");
    assert_string_equal(c->version[CDS], cds_version);
}

/* 5, 6: ACK vs NACK by error_detail only; a NACKed version is not pushed
 * again, the next change is. */
static void test_ack_nack_no_loop(void **state)
{
    tctx *c = *state;
    sl_xds_req_info info;
    gateway(c, 1);
    tsotw(c, &info, CDS, NULL, NULL, NULL);
    assert_int_equal(info.kind, SL_XDS_REQ_INITIAL);
    assert_string_equal(tpull(c), "cds a b");
    tsotw(c, &info, CDS, T_ACK, NULL, NULL);
    assert_int_equal(info.kind, SL_XDS_REQ_ACK);
    assert_string_equal(tpull(c), "");
    tcommit(c, 2, "cluster:a:1", "cluster:b:99", NULL);
    assert_string_equal(tpull(c), "cds a b");
    char bad[40];
    strcpy(bad, c->version[CDS]);
    tsotw(c, &info, CDS, T_ACK, "cluster b: bad lb policy", NULL);
    assert_int_equal(info.kind, SL_XDS_REQ_NACK);
    assert_string_equal(info.version, bad);
    assert_string_equal(info.error, "cluster b: bad lb policy");
    assert_string_equal(tpull(c), ""); /* no NACK loop */
    tsotw(c, &info, CDS, T_ACK, "cluster b: bad lb policy", NULL);
    assert_string_equal(tpull(c), "");
    /* Same content committed again: still nothing. */
    tcommit(c, 3, "cluster:a:1", "cluster:b:99", NULL);
    assert_string_equal(tpull(c), "");
    /* Fixed: sent. */
    tcommit(c, 4, "cluster:a:1", "cluster:b:100", NULL);
    assert_string_equal(tpull(c), "cds a b");
}

/* 7: a stale nonce gets no response, but its subscription change counts. */
static void test_stale_nonce_keeps_names(void **state)
{
    tctx *c = *state;
    sl_xds_req_info info;
    tcommit(c, 1, "route:r1:1", "route:r2:2", NULL);
    tsotw(c, NULL, RDS, NULL, NULL, "r1", NULL);
    assert_string_equal(tpull(c), "rds r1");
    char old[24];
    strcpy(old, c->nonce[RDS]);
    tcommit(c, 2, "route:r1:10", "route:r2:2", NULL);
    assert_string_equal(tpull(c), "rds r1");
    /* The client, not having seen the second response, adds r2. */
    tsotw(c, &info, RDS, old, NULL, "r1", "r2", NULL);
    assert_int_equal(info.kind, SL_XDS_REQ_STALE);
    assert_string_equal(tpull(c), "");
    /* Its ACK of the latest response carries the same names: r2 still comes. */
    tsotw(c, &info, RDS, T_ACK, NULL, "r1", "r2", NULL);
    assert_int_equal(info.kind, SL_XDS_REQ_ACK);
    assert_string_equal(tpull(c), "rds r2");
}

/* 8: respond only on change; an ACK never brings the same set again. */
static void test_respond_only_on_change(void **state)
{
    tctx *c = *state;
    gateway(c, 1);
    tsotw(c, NULL, LDS, NULL, NULL, NULL);
    assert_string_equal(tpull(c), "lds l");
    tsotw(c, NULL, LDS, T_ACK, NULL, NULL);
    assert_string_equal(tpull(c), "");
    gateway(c, 2); /* same content, new revision */
    assert_string_equal(tpull(c), "");
    tsotw(c, NULL, LDS, T_ACK, NULL, NULL);
    assert_string_equal(tpull(c), "");
}

/* 9: a subscription to a missing name is remembered. */
static void test_remember_missing(void **state)
{
    tctx *c = *state;
    tcommit(c, 1, "endpoint:a:1", NULL);
    tsotw(c, NULL, EDS, NULL, NULL, "x", NULL);
    assert_string_equal(tpull(c), "");
    tcommit(c, 2, "endpoint:a:1", "endpoint:x:2", NULL);
    assert_string_equal(tpull(c), "eds x");
}

/* 10: a newly added name is sent even if the client had it before. */
static void test_resubscribe_resends(void **state)
{
    tctx *c = *state;
    tcommit(c, 1, "endpoint:a:1", "endpoint:b:2", NULL);
    tsotw(c, NULL, EDS, NULL, NULL, "a", "b", NULL);
    assert_string_equal(tpull(c), "eds a b");
    tsotw(c, NULL, EDS, T_ACK, NULL, "a", NULL);
    assert_string_equal(tpull(c), "");
    tsotw(c, NULL, EDS, T_ACK, NULL, "a", "b", NULL);
    assert_string_equal(tpull(c), "eds b");
}

/* Streams in sync share the snapshot's arrays and identical subscriptions
 * (copied on write): one stream's changes must not leak into another's. */
#define NINE "a", "b", "c", "d", "e", "f", "g", "h", "i"
static void test_shared_state_copy_on_write(void **state)
{
    tctx *c = *state, c2;
    memset(&c2, 0, sizeof c2);
    c2.cache = c->cache;
    c2.proxy = c->proxy;
    sl_xds_stream_opts o = {.ads = 1, .default_proxy = "gateway-proxy"};
    assert_int_equal(sl_xds_stream_new(&c2.s, c2.cache, &o), SL_OK);
    tcommit(c, 1, "endpoint:a:1", "endpoint:b:1", "endpoint:c:1", "endpoint:d:1", "endpoint:e:1", "endpoint:f:1",
            "endpoint:g:1", "endpoint:h:1", "endpoint:i:1", "cluster:a:1", "cluster:b:1", NULL);
    tsotw(c, NULL, EDS, NULL, NULL, NINE, NULL);
    tsotw(&c2, NULL, EDS, NULL, NULL, NINE, NULL);
    tsotw(c, NULL, CDS, NULL, NULL, NULL);
    tsotw(&c2, NULL, CDS, NULL, NULL, NULL);
    assert_string_equal(tpull(c), "cds a b");
    assert_string_equal(tpull(c), "eds a b c d e f g h i");
    assert_string_equal(tpull(&c2), "cds a b");
    assert_string_equal(tpull(&c2), "eds a b c d e f g h i");
    tsotw(c, NULL, CDS, T_ACK, NULL, NULL);
    tsotw(&c2, NULL, CDS, T_ACK, NULL, NULL);
    tsotw(c, NULL, EDS, T_ACK, NULL, NINE, NULL);
    tsotw(&c2, NULL, EDS, T_ACK, NULL, NINE, NULL);
    assert_string_equal(tpull(c), "");
    assert_string_equal(tpull(&c2), "");
    /* One endpoint set and one cluster change: only those move. */
    tcommit(c, 2, "endpoint:a:1", "endpoint:b:1", "endpoint:c:2", "endpoint:d:1", "endpoint:e:1", "endpoint:f:1",
            "endpoint:g:1", "endpoint:h:1", "endpoint:i:1", "cluster:a:1", "cluster:b:1", "cluster:z:1", NULL);
    assert_string_equal(tpull(c), "cds a b z");
    assert_string_equal(tpull(c), "eds c");
    tsotw(c, NULL, CDS, T_ACK, NULL, NULL);
    tsotw(c, NULL, EDS, T_ACK, NULL, NINE, NULL);
    assert_string_equal(tpull(c), "");
    /* The second stream drops a name and takes it back: it alone gets it. */
    tsotw(&c2, NULL, EDS, NULL, NULL, "a", "b", "c", "d", "e", "f", "g", "h", NULL);
    tsotw(&c2, NULL, EDS, NULL, NULL, NINE, NULL);
    assert_string_equal(tpull(&c2), "cds a b z");
    assert_string_equal(tpull(&c2), "eds c i");
    assert_string_equal(tpull(c), "");
    /* Nothing changes for the first after the second moved on. */
    tcommit(c, 3, "endpoint:a:1", "endpoint:b:1", "endpoint:c:2", "endpoint:d:1", "endpoint:e:1", "endpoint:f:1",
            "endpoint:g:1", "endpoint:h:1", "endpoint:i:1", "cluster:a:1", "cluster:b:1", "cluster:z:1", NULL);
    assert_string_equal(tpull(c), "");
    sl_xds_stream_free(c2.s);
}

/* 11: wildcard "*", legacy wildcard, and empty names meaning nothing. */
static void test_wildcards(void **state)
{
    tctx *c = *state;
    gateway(c, 1);
    /* Legacy: empty first request on CDS. */
    tsotw(c, NULL, CDS, NULL, NULL, NULL);
    assert_string_equal(tpull(c), "cds a b");
    /* "*" plus a name (LDS): both. */
    tsotw(c, NULL, LDS, NULL, NULL, "*", "l", NULL);
    assert_string_equal(tpull(c), "lds l");
    tsotw(c, NULL, LDS, T_ACK, NULL, "*", "l", NULL);
    /* CDS: once names were sent, an empty list means nothing. */
    tsotw(c, NULL, CDS, T_ACK, NULL, "a", NULL);
    assert_string_equal(tpull(c), "cds a");
    tsotw(c, NULL, CDS, T_ACK, NULL, NULL);
    assert_string_equal(tpull(c), "cds");
    tsotw(c, NULL, CDS, T_ACK, NULL, NULL);
    assert_string_equal(tpull(c), "");
    /* An empty first request for RDS is not a wildcard. */
    tsotw(c, NULL, RDS, NULL, NULL, NULL);
    assert_string_equal(tpull(c), "");
    /* Wildcard with nothing to serve still answers once (Envoy's init). */
    tctx e;
    tctx_init(&e, 0, 1, 0);
    tcommit(&e, 1, "route:r:1", NULL);
    tsotw(&e, NULL, CDS, NULL, NULL, "*", NULL);
    assert_string_equal(tpull(&e), "cds");
    assert_string_equal(tpull(&e), "");
    tctx_deinit(&e);
}

/* 12: LDS/CDS carry the full set (removal by omission); EDS only changes. */
static void test_full_state(void **state)
{
    tctx *c = *state;
    gateway_cds_eds_acked(c);
    tcommit(c, 2, "cluster:a:1", "cluster:b:2", "cluster:c:7", "endpoint:a:3", "endpoint:b:44", NULL);
    assert_string_equal(tdrain(c), "cds a b c | eds b");
    tcommit(c, 3, "cluster:b:2", "cluster:c:7", "endpoint:a:3", "endpoint:b:44", NULL);
    assert_string_equal(tdrain(c), "cds b c");
}

/* 12 for envoyproxy/ratelimit's RateLimitConfig (ADS, wildcard, as its
 * xDS client asks): every response carries every config, since the server
 * replaces its whole configuration with each, and the last one removed is
 * an empty response, not silence; its proxy has no other type. */
static void test_ratelimit_full_state(void **state)
{
    tctx *c = *state;
    Envoy__Service__Discovery__V3__DiscoveryRequest req = ENVOY__SERVICE__DISCOVERY__V3__DISCOVERY_REQUEST__INIT;
    sl_xds_req_info info;
    fx_node node;
    c->proxy = "gloo-system~ratelimit";
    tcommit(c, 1, "ratelimit:custom:1", NULL);
    req.node = fx_node_init(&node, "ratelimit-1", "gloo-system~ratelimit");
    req.type_url = (char *)sl_xds_type_url(RLS);
    assert_int_equal(sl_xds_stream_on_sotw(c->s, &req, &info), SL_OK);
    assert_string_equal(tdrain(c), "rls custom");
    tsotw(c, NULL, RLS, T_ACK, NULL, NULL);
    tcommit(c, 2, "ratelimit:custom:2", "ratelimit:other:3", NULL);
    assert_string_equal(tdrain(c), "rls custom other");
    tsotw(c, NULL, RLS, T_ACK, NULL, NULL);
    tcommit(c, 3, "ratelimit:other:3", NULL);
    assert_string_equal(tdrain(c), "rls other");
    tsotw(c, NULL, RLS, T_ACK, NULL, NULL);
    tcommit(c, 4, NULL);
    assert_string_equal(tdrain(c), "rls");
    /* the gateway proxy's resources never reach the rate-limit server's stream */
    c->proxy = "gateway-proxy";
    gateway(c, 5);
    assert_string_equal(tdrain(c), "");
}

/* 14: ADS make-before-break: CDS, EDS, LDS, RDS; removals last. */
static void test_make_before_break(void **state)
{
    tctx *c = *state;
    gateway(c, 1);
    tsotw(c, NULL, RDS, NULL, NULL, "r", NULL);
    tsotw(c, NULL, LDS, NULL, NULL, NULL);
    tsotw(c, NULL, EDS, NULL, NULL, "a", "b", NULL);
    tsotw(c, NULL, CDS, NULL, NULL, NULL);
    assert_string_equal(tdrain(c), "cds a b | eds a b | lds l | rds r");
    tsotw(c, NULL, CDS, T_ACK, NULL, NULL);
    tsotw(c, NULL, EDS, T_ACK, NULL, "a", "b", NULL);
    tsotw(c, NULL, LDS, T_ACK, NULL, NULL);
    tsotw(c, NULL, RDS, T_ACK, NULL, "r", NULL);
    /* The route moves from a to new cluster n; a goes away. */
    tcommit(c, 2, "cluster:b:2", "cluster:n:8", "endpoint:b:4", "endpoint:n:9", "listener:l:5:r", "route:r:10:n",
            NULL);
    /* n is added while a stays (held), then the route, then a is removed. */
    assert_string_equal(tpull(c), "cds a b n");
    tsotw(c, NULL, EDS, T_ACK, NULL, "a", "b", "n", NULL);
    assert_string_equal(tdrain(c), "eds n | rds r | cds b n");
}

/* 15: after a CDS change, the unchanged ClusterLoadAssignment is re-sent. */
static void test_eds_after_cds_change(void **state)
{
    tctx *c = *state;
    gateway_cds_eds_acked(c);
    tcommit(c, 2, "cluster:a:11", "cluster:b:2", "endpoint:a:3", "endpoint:b:4", NULL);
    assert_string_equal(tdrain(c), "cds a b | eds a");
    /* Envoy re-requests EDS for the warming cluster: nothing changed since. */
    tsotw(c, NULL, EDS, T_ACK, NULL, "a", "b", NULL);
    assert_string_equal(tpull(c), "");
}

/* 13 on full sets with many names, and no response before any commit. */
static void test_no_snapshot_waits(void **state)
{
    tctx *c = *state;
    tsotw(c, NULL, CDS, NULL, NULL, NULL);
    assert_string_equal(tpull(c), "");
    gateway(c, 1);
    assert_string_equal(tpull(c), "cds a b");
}

/* Per-type SotW stream (LDS without ADS). */
static void test_per_type_stream(void **state)
{
    (void)state;
    tctx c;
    tctx_init(&c, 0, 0, LDS);
    gateway(&c, 1);
    tsotw(&c, NULL, LDS, NULL, NULL, "l", NULL);
    assert_string_equal(tpull(&c), "lds l");
    tsotw(&c, NULL, LDS, T_ACK, NULL, "l", NULL);
    assert_string_equal(tpull(&c), "");
    tctx_deinit(&c);
}

/* ---- delta ---- */

/* 16: per-resource versions, changed resources only, removed_resources. */
static void test_delta_basic(void **state)
{
    tctx *c = *state;
    gateway(c, 1);
    tdelta(c, NULL, CDS, NULL, NULL, "*", NULL, NULL);
    assert_string_equal(tpull(c), "cds +a@1 +b@2");
    assert_string_equal(c->version[CDS], "1");
    tdelta(c, NULL, CDS, T_ACK, NULL, NULL, NULL, NULL);
    assert_string_equal(tpull(c), "");
    tcommit(c, 2, "cluster:a:1", "cluster:b:20", "cluster:c:21", NULL);
    assert_string_equal(tpull(c), "cds +b@20 +c@21");
    tcommit(c, 3, "cluster:b:20", "cluster:c:21", NULL);
    assert_string_equal(tpull(c), "cds -a");
    assert_string_equal(tpull(c), "");
}

/* 17: response_nonce only on ACK/NACK; subscription changes count even
 * with a stale nonce; NACKed versions are not re-pushed. */
static void test_delta_nonce_and_nack(void **state)
{
    tctx *c = *state;
    sl_xds_req_info info;
    tcommit(c, 1, "endpoint:a:1", "endpoint:b:2", NULL);
    tdelta(c, &info, EDS, NULL, NULL, "a", NULL, NULL);
    assert_int_equal(info.kind, SL_XDS_REQ_INITIAL);
    assert_string_equal(tpull(c), "eds +a@1");
    tdelta(c, &info, EDS, "bogus-old-nonce", NULL, "b", NULL, NULL);
    assert_string_equal(tpull(c), "eds +b@2");
    tcommit(c, 2, "endpoint:a:10", "endpoint:b:2", NULL);
    assert_string_equal(tpull(c), "eds +a@10");
    tdelta(c, &info, EDS, T_ACK, "bad endpoint", NULL, NULL, NULL);
    assert_int_equal(info.kind, SL_XDS_REQ_NACK);
    assert_string_equal(info.error, "bad endpoint");
    assert_string_equal(tpull(c), "");
    tdelta(c, &info, EDS, T_ACK, NULL, NULL, NULL, NULL);
    assert_int_equal(info.kind, SL_XDS_REQ_ACK);
}

/* 18: every subscribed name is sent, even if the client has it; a missing
 * one goes into removed_resources. */
static void test_delta_subscribe(void **state)
{
    tctx *c = *state;
    tcommit(c, 1, "route:r:1", NULL);
    tdelta(c, NULL, RDS, NULL, NULL, "r", NULL, NULL);
    assert_string_equal(tpull(c), "rds +r@1");
    tdelta(c, NULL, RDS, T_ACK, NULL, "r", NULL, NULL);
    assert_string_equal(tpull(c), "rds +r@1");
    tdelta(c, NULL, RDS, T_ACK, NULL, "nope", NULL, NULL);
    assert_string_equal(tpull(c), "rds -nope");
    assert_string_equal(tpull(c), "");
    /* ... and is sent when it appears. */
    tcommit(c, 2, "route:r:1", "route:nope:3", NULL);
    assert_string_equal(tpull(c), "rds +nope@3");
    /* Unsubscribed names are forgotten: no removal sent later. */
    tdelta(c, NULL, RDS, T_ACK, NULL, NULL, "nope", NULL);
    tcommit(c, 3, "route:r:1", NULL);
    assert_string_equal(tpull(c), "");
}

/* 19: reconnect with initial_resource_versions. */
static void test_delta_reconnect(void **state)
{
    tctx *c = *state;
    tcommit(c, 5, "cluster:a:1", "cluster:b:7", "cluster:d:9", NULL);
    tdelta(c, NULL, CDS, NULL, NULL, "*", NULL, "a=1,b=2,gone=3");
    assert_string_equal(tpull(c), "cds +b@7 +d@9 -gone");
    assert_string_equal(tpull(c), "");
}

/* 20: delta wildcard and its end. */
static void test_delta_wildcard(void **state)
{
    tctx *c = *state;
    tcommit(c, 1, "listener:l1:1", "listener:l2:2", NULL);
    tdelta(c, NULL, LDS, NULL, NULL, NULL, NULL, NULL); /* legacy */
    assert_string_equal(tpull(c), "lds +l1@1 +l2@2");
    tdelta(c, NULL, LDS, T_ACK, NULL, "l1", "*", NULL);
    assert_string_equal(tpull(c), "lds +l1@1");
    tcommit(c, 2, "listener:l1:1", "listener:l2:22", "listener:l3:3", NULL);
    assert_string_equal(tpull(c), "");
}

/* 14 on delta: cluster removals wait for the routes. */
static void test_delta_make_before_break(void **state)
{
    tctx *c = *state;
    gateway(c, 1);
    tdelta(c, NULL, CDS, NULL, NULL, "*", NULL, NULL);
    tdelta(c, NULL, EDS, NULL, NULL, "a,b", NULL, NULL);
    tdelta(c, NULL, LDS, NULL, NULL, "*", NULL, NULL);
    tdelta(c, NULL, RDS, NULL, NULL, "r", NULL, NULL);
    assert_string_equal(tdrain(c), "cds +a@1 +b@2 | eds +a@3 +b@4 | lds +l@5 | rds +r@6");
    tcommit(c, 2, "cluster:b:2", "cluster:n:8", "endpoint:b:4", "endpoint:n:9", "listener:l:5:r", "route:r:10:n",
            NULL);
    tdelta(c, NULL, EDS, T_ACK, NULL, "n", NULL, NULL);
    assert_string_equal(tdrain(c), "cds +n@8 | eds +n@9 | rds +r@10 | cds -a | eds -a");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_node_selects_proxy),
        cmocka_unit_test_setup_teardown(test_default_proxy, setup_ads, teardown),
        cmocka_unit_test_setup_teardown(test_type_url_rules, setup_ads, teardown),
        cmocka_unit_test_setup_teardown(test_nonce_and_version_per_type, setup_ads, teardown),
        cmocka_unit_test_setup_teardown(test_ack_nack_no_loop, setup_ads, teardown),
        cmocka_unit_test_setup_teardown(test_stale_nonce_keeps_names, setup_ads, teardown),
        cmocka_unit_test_setup_teardown(test_respond_only_on_change, setup_ads, teardown),
        cmocka_unit_test_setup_teardown(test_remember_missing, setup_ads, teardown),
        cmocka_unit_test_setup_teardown(test_resubscribe_resends, setup_ads, teardown),
        cmocka_unit_test_setup_teardown(test_shared_state_copy_on_write, setup_ads, teardown),
        cmocka_unit_test_setup_teardown(test_wildcards, setup_ads, teardown),
        cmocka_unit_test_setup_teardown(test_full_state, setup_ads, teardown),
        cmocka_unit_test_setup_teardown(test_make_before_break, setup_ads, teardown),
        cmocka_unit_test_setup_teardown(test_eds_after_cds_change, setup_ads, teardown),
        cmocka_unit_test_setup_teardown(test_no_snapshot_waits, setup_ads, teardown),
        cmocka_unit_test(test_per_type_stream),
        cmocka_unit_test_setup_teardown(test_delta_basic, setup_delta, teardown),
        cmocka_unit_test_setup_teardown(test_delta_nonce_and_nack, setup_delta, teardown),
        cmocka_unit_test_setup_teardown(test_delta_subscribe, setup_delta, teardown),
        cmocka_unit_test_setup_teardown(test_delta_reconnect, setup_delta, teardown),
        cmocka_unit_test_setup_teardown(test_delta_wildcard, setup_delta, teardown),
        cmocka_unit_test_setup_teardown(test_delta_make_before_break, setup_delta, teardown),
        cmocka_unit_test_setup_teardown(test_ratelimit_full_state, setup_ads, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
