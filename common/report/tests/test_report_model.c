/* Unit tests of the reporter's model: ordering, NACK overlay, rebuild. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sluice/report_model.h"
#include "sluice/v1/core.pb-c.h"

#define ACC SLUICE__V1__STATUS__STATE__Accepted
#define REJ SLUICE__V1__STATUS__STATE__Rejected
#define WRN SLUICE__V1__STATUS__STATE__Warning

typedef struct rep {
    Sluice__V1__Report r;
    Sluice__V1__ObjectRef ref;
    Google__Protobuf__Timestamp ts;
} rep;

static Sluice__V1__Report *mk(rep *x, const char *source, const char *kind, const char *name, const char *proxy,
                              int state, int64_t gen, const char *xv, int64_t sec, const char *reason)
{
    sluice__v1__report__init(&x->r);
    sluice__v1__object_ref__init(&x->ref);
    google__protobuf__timestamp__init(&x->ts);
    x->ref.kind = (char *)kind;
    x->ref.namespace_ = "default";
    x->ref.name = (char *)name;
    x->ts.seconds = sec;
    x->r.resource = &x->ref;
    x->r.source = (char *)source;
    x->r.proxy = (char *)proxy;
    x->r.state = state;
    x->r.generation = gen;
    x->r.xds_version = (char *)xv;
    x->r.reason = (char *)reason;
    x->r.time = &x->ts;
    return &x->r;
}

/* Renders key; returns the status (free with free_unpacked) and whether
 * it changed; commits it at rev. */
/* A new model with gating off (reports apply without a stored config). */
static rep_model *ungated_model(void)
{
    rep_model *m;
    assert_int_equal(rep_model_new(&m), SL_OK);
    rep_model_set_gating(m, false);
    return m;
}

static Sluice__V1__Status *render(rep_model *m, const char *key, bool *changed, uint64_t rev, uint8_t **raw,
                                  size_t *raw_len)
{
    uint8_t *buf;
    size_t len;
    assert_int_equal(rep_model_render(m, &buf, &len, changed, key), SL_OK);
    Sluice__V1__Status *st = sluice__v1__status__unpack(NULL, len, buf);
    assert_non_null(st);
    if (*changed && rev)
        rep_model_committed(m, key, rev);
    if (raw) {
        *raw = buf;
        *raw_len = len;
    } else {
        free(buf);
    }
    return st;
}

/* Renders key in m (nothing committed) and checks its state. */
static void expect_state(rep_model *m, const char *key, int state)
{
    bool ch;
    Sluice__V1__Status *st = render(m, key, &ch, 0, NULL, NULL);
    assert_int_equal(st->state, state);
    sluice__v1__status__free_unpacked(st, NULL);
}

static int drain(rep_model *m)
{
    char k[512];
    int n = 0;
    while (rep_model_next_dirty(m, k, sizeof k))
        n++;
    return n;
}

static void test_version_cmp(void **state)
{
    (void)state;
    assert_int_equal(rep_version_cmp("9", "10"), -1);
    assert_int_equal(rep_version_cmp("010", "10"), 0);
    assert_int_equal(rep_version_cmp("11", "10"), 1);
    assert_int_equal(rep_version_cmp("abc", "10"), 0);
    assert_int_equal(rep_version_cmp("", "10"), 0);
}

static void test_accept_duplicate_stale(void **state)
{
    (void)state;
    rep_model *m;
    rep x;
    rep_result res;
    bool ch;
    const char *key = "VirtualService.default.vs1";
    assert_int_equal(rep_model_new(&m), SL_OK);
    assert_int_equal(rep_model_set_config(m, key, true, 1), SL_OK);
    assert_int_equal(rep_model_report(m, &res, mk(&x, "translator", "VirtualService", "vs1", "default~gw", ACC, 2,
                                                  "5", 100, ""),
                                      NULL, NULL, 0),
                     SL_OK);
    assert_int_equal(res, REP_APPLIED);
    Sluice__V1__Status *st = render(m, key, &ch, 1, NULL, NULL);
    assert_true(ch);
    assert_int_equal(st->state, ACC);
    assert_string_equal(st->reported_by, "translator");
    assert_int_equal(st->observed_generation, 2);
    assert_int_equal(st->n_subresource_statuses, 1);
    assert_string_equal(st->subresource_statuses[0]->key, "default~gw");
    sluice__v1__status__free_unpacked(st, NULL);
    drain(m);

    /* the same report again: nothing to do */
    assert_int_equal(rep_model_report(m, &res, mk(&x, "translator", "VirtualService", "vs1", "default~gw", ACC, 2,
                                                  "5", 100, ""),
                                      NULL, NULL, 0),
                     SL_OK);
    assert_int_equal(res, REP_DUPLICATE);
    assert_int_equal(drain(m), 0);

    /* an older generation never overrides */
    assert_int_equal(rep_model_report(m, &res, mk(&x, "translator", "VirtualService", "vs1", "default~gw", REJ, 1,
                                                  "9", 200, "bad"),
                                      NULL, NULL, 0),
                     SL_OK);
    assert_int_equal(res, REP_STALE);
    /* same generation, older xds revision: stale too, whatever its time */
    assert_int_equal(rep_model_report(m, &res, mk(&x, "translator", "VirtualService", "vs1", "default~gw", REJ, 2,
                                                  "4", 300, "bad"),
                                      NULL, NULL, 0),
                     SL_OK);
    assert_int_equal(res, REP_STALE);
    /* a re-report with only a newer time: applied, but the status is the same */
    assert_int_equal(rep_model_report(m, &res, mk(&x, "translator", "VirtualService", "vs1", "default~gw", ACC, 2,
                                                  "5", 400, ""),
                                      NULL, NULL, 0),
                     SL_OK);
    assert_int_equal(res, REP_APPLIED);
    st = render(m, key, &ch, 2, NULL, NULL);
    assert_false(ch);
    sluice__v1__status__free_unpacked(st, NULL);
    rep_model_free(m);
}

static void test_nack_overlay(void **state)
{
    (void)state;
    rep_model *m;
    rep x;
    rep_result res;
    bool ch;
    m = ungated_model();
    rep_model_report(m, &res, mk(&x, "translator", "VirtualService", "vs1", "default~gw", ACC, 1, "5", 100, ""),
                     NULL, NULL, 0);
    rep_model_report(m, &res, mk(&x, "translator", "VirtualService", "vs2", "default~gw", ACC, 1, "5", 100, ""),
                     NULL, NULL, 0);
    rep_model_report(m, &res, mk(&x, "translator", "Upstream", "up1", "default~gw", ACC, 1, "5", 100, ""), NULL,
                     NULL, 0);
    rep_model_report(m, &res, mk(&x, "translator", "VirtualService", "other", "default~other", ACC, 1, "5", 100, ""),
                     NULL, NULL, 0);
    drain(m);

    /* The xds-server's NACK: a route config, naming vs2's virtual host. */
    Sluice__V1__Report *n = mk(&x, "xds-server", "Proxy", "gw", "default~gw", REJ, 0, "abcd", 150,
                               "Proto constraint validation failed: virtual host default_vs2: bad domain");
    n->type_url = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration";
    assert_int_equal(rep_model_report(m, &res, n, NULL, NULL, 0), SL_OK);
    assert_int_equal(res, REP_APPLIED);

    Sluice__V1__Status *st = render(m, "VirtualService.default.vs2", &ch, 3, NULL, NULL);
    assert_true(ch);
    assert_int_equal(st->state, REJ);
    assert_string_equal(st->reported_by, "xds-server");
    assert_non_null(strstr(st->reason, "bad domain"));
    assert_non_null(strstr(st->reason, "default~gw"));
    sluice__v1__status__free_unpacked(st, NULL);
    /* vs1 was not named: still Accepted; other proxy untouched */
    expect_state(m, "VirtualService.default.vs1", ACC);
    expect_state(m, "VirtualService.default.other", ACC);
    /* the proxy itself has a status */
    expect_state(m, "Proxy.default.gw", REJ);

    /* A NACK naming nothing known, of type cluster: the Upstreams. */
    n = mk(&x, "xds-server", "Proxy", "gw", "default~gw", REJ, 0, "abce", 160, "something failed");
    n->type_url = "type.googleapis.com/envoy.config.cluster.v3.Cluster";
    assert_int_equal(rep_model_report(m, &res, n, NULL, NULL, 0), SL_OK);
    expect_state(m, "Upstream.default.up1", REJ);
    expect_state(m, "VirtualService.default.vs1", ACC);

    /* An older NACK arriving late is stale. */
    n = mk(&x, "xds-server", "Proxy", "gw", "default~gw", REJ, 0, "x", 120, "old");
    assert_int_equal(rep_model_report(m, &res, n, NULL, NULL, 0), SL_OK);
    assert_int_equal(res, REP_STALE);

    /* A newer translation of vs2 replaces the NACK. */
    rep_model_report(m, &res, mk(&x, "translator", "VirtualService", "vs2", "default~gw", ACC, 2, "6", 200, ""),
                     NULL, NULL, 0);
    assert_int_equal(res, REP_APPLIED);
    st = render(m, "VirtualService.default.vs2", &ch, 4, NULL, NULL);
    assert_true(ch);
    assert_int_equal(st->state, ACC);
    sluice__v1__status__free_unpacked(st, NULL);
    rep_model_free(m);
}

/* Statuses of the delegated hybrid gateway kinds: the translator's reports
 * give them theirs, and a listener NACK naming nothing known reaches them
 * (they are filter chains of it) as it does the Gateway, not the virtual
 * services. */
static void test_matchable_gateways(void **state)
{
    (void)state;
    rep_model *m = ungated_model();
    rep x;
    rep_result res;
    bool ch;
    Sluice__V1__Status *st;
    rep_model_report(m, &res, mk(&x, "translator", "Gateway", "gw", "default~gw", ACC, 1, "5", 100, ""), NULL, NULL,
                     0);
    rep_model_report(m, &res,
                     mk(&x, "translator", "MatchableHttpGateway", "web", "default~gw", WRN, 1, "5", 100,
                        "spec.httpGateway.virtualServices[0]: VirtualService default.shop not found"),
                     NULL, NULL, 0);
    assert_int_equal(res, REP_APPLIED);
    rep_model_report(m, &res, mk(&x, "translator", "MatchableTcpGateway", "db", "default~gw", ACC, 1, "5", 100, ""),
                     NULL, NULL, 0);
    rep_model_report(m, &res, mk(&x, "translator", "VirtualService", "vs1", "default~gw", ACC, 1, "5", 100, ""),
                     NULL, NULL, 0);
    drain(m);
    st = render(m, "MatchableHttpGateway.default.web", &ch, 2, NULL, NULL);
    assert_int_equal(st->state, WRN);
    assert_string_equal(st->reported_by, "translator");
    sluice__v1__status__free_unpacked(st, NULL);
    expect_state(m, "MatchableTcpGateway.default.db", ACC);

    Sluice__V1__Report *n = mk(&x, "xds-server", "Proxy", "gw", "default~gw", REJ, 0, "abcd", 150,
                               "Proto constraint validation failed: filter chain match");
    n->type_url = "type.googleapis.com/envoy.config.listener.v3.Listener";
    assert_int_equal(rep_model_report(m, &res, n, NULL, NULL, 0), SL_OK);
    assert_int_equal(res, REP_APPLIED);
    expect_state(m, "Gateway.default.gw", REJ);
    expect_state(m, "MatchableHttpGateway.default.web", REJ);
    expect_state(m, "MatchableTcpGateway.default.db", REJ);
    expect_state(m, "VirtualService.default.vs1", ACC);
    rep_model_free(m);
}

static void test_nack_all_and_rebuild(void **state)
{
    (void)state;
    rep_model *m, *m2;
    rep x;
    rep_result res;
    bool ch;
    uint8_t *raw;
    size_t raw_len;
    const char *key = "VirtualService.default.vs1";
    m = ungated_model();
    rep_model_report(m, &res, mk(&x, "translator", "VirtualService", "vs1", "default~gw", WRN, 3, "7", 100, "w"),
                     NULL, NULL, 0);
    rep_model_report(m, &res, mk(&x, "translator", "VirtualService", "vs1", "default~gw2", ACC, 3, "7", 100, ""),
                     NULL, NULL, 0);
    Sluice__V1__Report *n = mk(&x, "xds-server", "Proxy", "gw", "default~gw", REJ, 0, "v1", 150, "listener broken");
    assert_int_equal(rep_model_report(m, &res, n, NULL, NULL, 0), SL_OK);
    Sluice__V1__Status *st = render(m, key, &ch, 7, &raw, &raw_len);
    assert_int_equal(st->state, REJ);
    assert_int_equal(st->n_subresource_statuses, 2);
    assert_int_equal(st->subresource_statuses[0]->value->state, REJ);
    assert_int_equal(st->subresource_statuses[1]->value->state, ACC);
    assert_non_null(strstr(st->reason, "listener broken"));
    sluice__v1__status__free_unpacked(st, NULL);

    /* A new reporter rebuilds the same state from the stored status. */
    m2 = ungated_model();
    assert_int_equal(rep_model_load(m2, key, raw, raw_len, 7), SL_OK);
    assert_int_equal(drain(m2), 0);
    st = render(m2, key, &ch, 0, NULL, NULL);
    assert_false(ch);
    sluice__v1__status__free_unpacked(st, NULL);
    /* and still orders reports: an older generation is stale */
    rep_model_report(m2, &res, mk(&x, "translator", "VirtualService", "vs1", "default~gw", ACC, 2, "9", 999, ""),
                     NULL, NULL, 0);
    assert_int_equal(res, REP_STALE);
    /* the same report as before the restart is a duplicate */
    rep_model_report(m2, &res, mk(&x, "translator", "VirtualService", "vs1", "default~gw2", ACC, 3, "7", 100, ""),
                     NULL, NULL, 0);
    assert_int_equal(res, REP_DUPLICATE);
    free(raw);
    rep_model_free(m);
    rep_model_free(m2);
}

/* The translator reports VirtualService default/vs1 Accepted for
 * default~gw (generation 1, xDS version 5), then xds-server a NACK of
 * version 5 on kind/name for proxy: the status is Rejected (committed at
 * revision 3), and a restarted reporter (a new model loading the stored
 * bytes) renders it back to the same bytes, Rejected, reported by
 * reported_by when that is not NULL. The result of the NACK's report. */
static rep_result nack_survives_load(const char *kind, const char *name, const char *proxy, const char *reason,
                                     const char *reported_by)
{
    const char *key = "VirtualService.default.vs1";
    rep_model *m, *m2;
    rep x;
    rep_result res, nack_res;
    bool ch;
    uint8_t *raw, *raw2;
    size_t raw_len, raw2_len;
    m = ungated_model();
    rep_model_report(m, &res, mk(&x, "translator", "VirtualService", "vs1", "default~gw", ACC, 1, "5", 100, ""),
                     NULL, NULL, 0);
    Sluice__V1__Report *n = mk(&x, "xds-server", kind, name, proxy, REJ, 0, "5", 150, reason);
    assert_int_equal(rep_model_report(m, &nack_res, n, NULL, NULL, 0), SL_OK);
    Sluice__V1__Status *st = render(m, key, &ch, 3, &raw, &raw_len);
    assert_int_equal(st->state, REJ);
    sluice__v1__status__free_unpacked(st, NULL);

    m2 = ungated_model();
    assert_int_equal(rep_model_load(m2, key, raw, raw_len, 3), SL_OK);
    st = render(m2, key, &ch, 0, &raw2, &raw2_len);
    assert_int_equal(st->state, REJ);
    if (reported_by)
        assert_string_equal(st->reported_by, reported_by);
    assert_int_equal(raw2_len, raw_len);
    assert_memory_equal(raw2, raw, raw_len);
    sluice__v1__status__free_unpacked(st, NULL);
    free(raw);
    free(raw2);
    rep_model_free(m);
    rep_model_free(m2);
    return nack_res;
}

/* Found by fuzz_reporter: a NACK whose error_detail had no message was
 * stored (nackTime, nackVersion) but dropped on load, so a restarted
 * reporter turned the Rejected status back to Accepted. */
static void test_nack_without_message_survives_load(void **state)
{
    (void)state;
    nack_survives_load("Proxy", "gw", "default~gw", "", "xds-server");
}

/* Found by fuzz_reporter: an xds-server NACK on a resource for a proxy the
 * translator had not reported on yet made a placeholder slot of
 * generation 0 beside the resource's generation-1 slots; a reload dropped
 * it as older, and the status flipped from Rejected to Accepted. */
static void test_nack_placeholder_survives_load(void **state)
{
    (void)state;
    assert_int_equal(nack_survives_load("VirtualService", "vs1", "default~gw2", "bad", NULL), REP_APPLIED);
}

static void test_gating_and_delete(void **state)
{
    (void)state;
    rep_model *m;
    rep x;
    rep_result res;
    bool ch;
    assert_int_equal(rep_model_new(&m), SL_OK);
    rep_model_report(m, &res, mk(&x, "translator", "Upstream", "u", "", ACC, 1, "1", 1, ""), NULL, NULL, 0);
    assert_false(rep_model_publishable(m, "Upstream.default.u"));
    rep_model_set_config(m, "Upstream.default.u", true, 1);
    assert_true(rep_model_publishable(m, "Upstream.default.u"));
    Sluice__V1__Status *st = render(m, "Upstream.default.u", &ch, 1, NULL, NULL);
    assert_int_equal(st->state, ACC);
    assert_int_equal(st->n_subresource_statuses, 0); /* one slot for every proxy: top level */
    sluice__v1__status__free_unpacked(st, NULL);
    rep_model_set_config(m, "Upstream.default.u", false, 0);
    assert_false(rep_model_publishable(m, "Upstream.default.u"));
    assert_int_equal(rep_model_count(m), 0);
    /* Subject-derived key and source */
    Sluice__V1__Report r = SLUICE__V1__REPORT__INIT;
    r.state = ACC;
    assert_int_equal(rep_model_report(m, &res, &r, "translator", "Gateway.default.gw", 1), SL_OK);
    assert_int_equal(res, REP_APPLIED);
    assert_int_not_equal(rep_model_report(m, &res, &r, "translator", "bad key", 1), SL_OK);
    rep_model_free(m);
}

/* The config-watcher's report on a proposal it rejected: a status of its
 * own while nothing is stored, over the stored one's while that keeps
 * serving; obsolete once a newer revision is stored; withdrawn on delete. */
static void test_rejected_proposal(void **state)
{
    (void)state;
    rep_model *m;
    rep x;
    rep_result res;
    bool ch;
    const char *key = "VirtualService.default.bad";
    assert_int_equal(rep_model_new(&m), SL_OK);

    /* Never stored: the rejection alone is the status. */
    Sluice__V1__Report *r = mk(&x, "config-watcher", "VirtualService", "bad", "", REJ, 0, "", 10, "regex: bad");
    r->resource_version = "0";
    assert_int_equal(rep_model_report(m, &res, r, NULL, NULL, 0), SL_OK);
    assert_int_equal(res, REP_APPLIED);
    assert_true(rep_model_publishable(m, key));
    Sluice__V1__Status *st = render(m, key, &ch, 7, NULL, NULL);
    assert_true(ch);
    assert_int_equal(st->state, REJ);
    assert_string_equal(st->reason, "regex: bad");
    assert_string_equal(st->reported_by, "config-watcher");
    sluice__v1__status__free_unpacked(st, NULL);

    /* Stored at 20 (a good apply): the rejection about "0" is obsolete. */
    rep_model_set_config(m, key, true, 20);
    assert_int_equal(rep_model_report(m, &res, mk(&x, "translator", "VirtualService", "bad", "default~gw", ACC, 1,
                                                  "3", 30, ""),
                                      NULL, NULL, 0),
                     SL_OK);
    st = render(m, key, &ch, 8, NULL, NULL);
    assert_int_equal(st->state, ACC);
    sluice__v1__status__free_unpacked(st, NULL);
    /* ... and when it arrives late, it is stale. */
    r = mk(&x, "config-watcher", "VirtualService", "bad", "", REJ, 0, "", 10, "regex: bad");
    r->resource_version = "0";
    assert_int_equal(rep_model_report(m, &res, r, NULL, NULL, 0), SL_OK);
    assert_int_equal(res, REP_STALE);

    /* An update rejected while 20 keeps serving: Rejected over Accepted,
     * persisted, and rebuilt from the stored status by another replica. */
    r = mk(&x, "config-watcher", "VirtualService", "bad", "", REJ, 0, "", 40,
           "regex: worse (not stored; revision 20 keeps serving)");
    r->resource_version = "20";
    assert_int_equal(rep_model_report(m, &res, r, NULL, NULL, 0), SL_OK);
    assert_int_equal(res, REP_APPLIED);
    uint8_t *raw;
    size_t raw_len;
    st = render(m, key, &ch, 9, &raw, &raw_len);
    assert_true(ch);
    assert_int_equal(st->state, REJ);
    assert_string_equal(st->reason, "regex: worse (not stored; revision 20 keeps serving)");
    sluice__v1__status__free_unpacked(st, NULL);
    rep_model *m2;
    assert_int_equal(rep_model_new(&m2), SL_OK);
    assert_int_equal(rep_model_load(m2, key, raw, raw_len, 9), SL_OK);
    free(raw);
    rep_model_set_config(m2, key, true, 20);
    st = render(m2, key, &ch, 0, NULL, NULL);
    assert_false(ch);
    assert_int_equal(st->state, REJ);
    sluice__v1__status__free_unpacked(st, NULL);
    /* The stored version applied again: the proposal is withdrawn. */
    Sluice__V1__Report *wd = mk(&x, "config-watcher", "VirtualService", "bad", "", SLUICE__V1__STATUS__STATE__Pending,
                                0, "", 50, "");
    wd->withdrawn = true;
    assert_int_equal(rep_model_report(m2, &res, wd, NULL, NULL, 0), SL_OK);
    assert_int_equal(res, REP_APPLIED);
    st = render(m2, key, &ch, 0, NULL, NULL);
    assert_true(ch);
    assert_int_equal(st->state, ACC);
    sluice__v1__status__free_unpacked(st, NULL);
    rep_model_free(m2);

    /* Rejected again, then the resource is stored at 21: obsolete. */
    r = mk(&x, "config-watcher", "VirtualService", "bad", "", REJ, 0, "", 60, "regex: again");
    r->resource_version = "20";
    rep_model_report(m, &res, r, NULL, NULL, 0);
    rep_model_set_config(m, key, true, 21);
    st = render(m, key, &ch, 10, NULL, NULL);
    assert_int_equal(st->state, ACC);
    sluice__v1__status__free_unpacked(st, NULL);

    /* A never stored one, withdrawn (deleted): no status any more; a
     * withdrawal about an unknown resource creates nothing. */
    const char *k2 = "VirtualService.default.gone";
    r = mk(&x, "config-watcher", "VirtualService", "gone", "", REJ, 0, "", 70, "bad");
    r->resource_version = "0";
    rep_model_report(m, &res, r, NULL, NULL, 0);
    assert_true(rep_model_publishable(m, k2));
    wd = mk(&x, "config-watcher", "VirtualService", "gone", "", SLUICE__V1__STATUS__STATE__Pending, 0, "", 80, "");
    wd->withdrawn = true;
    assert_int_equal(rep_model_report(m, &res, wd, NULL, NULL, 0), SL_OK);
    assert_int_equal(res, REP_APPLIED);
    assert_false(rep_model_publishable(m, k2));
    size_t n = rep_model_count(m);
    wd = mk(&x, "config-watcher", "VirtualService", "never", "", SLUICE__V1__STATUS__STATE__Pending, 0, "", 90, "");
    wd->withdrawn = true;
    assert_int_equal(rep_model_report(m, &res, wd, NULL, NULL, 0), SL_OK);
    assert_int_equal(res, REP_IGNORED);
    assert_int_equal(rep_model_count(m), n);
    rep_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_version_cmp),
        cmocka_unit_test(test_accept_duplicate_stale),
        cmocka_unit_test(test_nack_overlay),
        cmocka_unit_test(test_matchable_gateways),
        cmocka_unit_test(test_nack_all_and_rebuild),
        cmocka_unit_test(test_nack_without_message_survives_load),
        cmocka_unit_test(test_nack_placeholder_survives_load),
        cmocka_unit_test(test_gating_and_delete),
        cmocka_unit_test(test_rejected_proposal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
