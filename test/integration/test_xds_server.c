/* itest_xds_server.c - the real sluice-xds binary against a real
 * nats-server, driven by the project's own gRPC protocol client: ADS and
 * per-type streams, SotW and delta, NACK reports on NATS, bad input, a
 * connect/disconnect storm, and a restart that rebuilds from KV. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <errno.h>
#include <inttypes.h>
#include <grpc/grpc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "envoy/config/listener/v3/listener.pb-c.h"
#include "envoy/service/discovery/v3/discovery.pb-c.h"
#include "harness.h"
#include "sluice/kv.h"
#include "sluice/log.h"
#include "sluice/v1/events.pb-c.h"
#include "sluice/xds.h"
#include "xds_apply.h"
#include "xds_client.h"
#include "xds_fixtures.h"

#define ADS "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources"
#define DADS "/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources"
#define CDS_URL "type.googleapis.com/envoy.config.cluster.v3.Cluster"
#define EDS_URL "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"

static harness_nats *srv;
static sl_nats *nc;
static sl_kv *kv;
static pid_t xds_pid;
static int xds_port, metrics_port;

static void start_xds(void)
{
    const char *const args[] = {"--default-proxy", "gateway-proxy", "--log-level", "warn", NULL};
    xds_pid = harness_start_xds(srv, args, &xds_port, &metrics_port);
    assert_true(xds_pid > 0);
}

static void stop_xds(int sig)
{
    if (xds_pid <= 0) /* a failed start; harness_stop would not signal it either */
        return;
    int st = harness_stop(xds_pid, sig);
    if (sig == SIGTERM)
        assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/* Sum of every series of a metric on the server's /metrics. */
static double metric_sum(const char *name)
{
    double sum;
    assert_int_equal(harness_metric_sum(metrics_port, name, &sum), 0);
    return sum;
}

static int setup(void **state)
{
    (void)state;
    sl_log_set_level(SL_LOG_WARN);
    if (harness_up(&srv, &nc) != 0)
        return -1;
    sl_kv_config cfg;
    sl_kv_config_init(&cfg, "sluice_xds");
    cfg.history = 5;
    if (sl_kv_open(&kv, nc, &cfg) != SL_OK)
        return -1;
    grpc_init();
    start_xds();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    stop_xds(SIGTERM);
    grpc_shutdown();
    sl_kv_free(kv);
    harness_down(srv, nc);
    return 0;
}

static void apply(const char *proxy, ...)
{
    char *specs[32];
    int n = 0;
    va_list ap;
    va_start(ap, proxy);
    for (char *s; n < 32 && (s = va_arg(ap, char *));)
        specs[n++] = s;
    va_end(ap);
    uint64_t rev;
    if (fx_apply(&rev, kv, proxy, n, specs) != SL_OK)
        fail_msg("apply: %s", sl_error_msg());
}

static void send_sotw(xc *c, const char *type_url, const char *nonce, const char *error, const char *role,
                      int n, char **names)
{
    Envoy__Service__Discovery__V3__DiscoveryRequest r = ENVOY__SERVICE__DISCOVERY__V3__DISCOVERY_REQUEST__INIT;
    Google__Rpc__Status st = GOOGLE__RPC__STATUS__INIT;
    fx_node node;
    r.node = fx_node_init(&node, "itest-node", role);
    r.type_url = (char *)type_url;
    r.response_nonce = (char *)(nonce ? nonce : "");
    if (error) {
        st.code = 3;
        st.message = (char *)error;
        r.error_detail = &st;
    }
    r.n_resource_names = (size_t)n;
    r.resource_names = names;
    uint8_t buf[4096];
    size_t len = envoy__service__discovery__v3__discovery_request__pack(&r, buf);
    assert_int_equal(xc_send(c, buf, len), 0);
}

static Envoy__Service__Discovery__V3__DiscoveryResponse *recv_sotw(xc *c, int ms)
{
    size_t len;
    int ended;
    uint8_t *b = xc_recv(c, ms, &len, &ended);
    if (!b)
        return NULL;
    Envoy__Service__Discovery__V3__DiscoveryResponse *r =
        envoy__service__discovery__v3__discovery_response__unpack(NULL, len, b);
    free(b);
    assert_non_null(r);
    for (size_t i = 0; i < r->n_resources; i++)
        assert_string_equal(r->resources[i]->type_url, r->type_url);
    return r;
}

static void free_sotw(Envoy__Service__Discovery__V3__DiscoveryResponse *r)
{
    envoy__service__discovery__v3__discovery_response__free_unpacked(r, NULL);
}

/* The next response on c (within 5 s) is of type_url with n resources, at
 * a version other than old. */
static void expect_new_version(xc *c, const char *type_url, size_t n, const char *old)
{
    Envoy__Service__Discovery__V3__DiscoveryResponse *r = recv_sotw(c, 5000);
    assert_non_null(r);
    assert_string_equal(r->type_url, type_url);
    assert_int_equal(r->n_resources, n);
    assert_string_not_equal(r->version_info, old);
    free_sotw(r);
}

/* SotW ADS: wildcard CDS, named EDS, ACKs, then only what changed moves. */
static void test_sotw_ads(void **state)
{
    (void)state;
    apply("gateway-proxy", "cluster:a", "cluster:b", "endpoint:a:127.0.0.1:1001", "endpoint:b:127.0.0.1:1002",
          "listener:l:r", "route:r:a", NULL);
    xc *c = xc_open(xds_port, ADS);
    assert_non_null(c);
    send_sotw(c, CDS_URL, NULL, NULL, NULL, 0, NULL);
    Envoy__Service__Discovery__V3__DiscoveryResponse *r = recv_sotw(c, 5000);
    assert_non_null(r);
    assert_string_equal(r->type_url, CDS_URL);
    assert_int_equal(r->n_resources, 2);
    char nonce[64], ver[64];
    snprintf(nonce, sizeof nonce, "%s", r->nonce);
    snprintf(ver, sizeof ver, "%s", r->version_info);
    free_sotw(r);
    send_sotw(c, CDS_URL, nonce, NULL, NULL, 0, NULL); /* ACK */
    char *names[] = {"a", "b"};
    send_sotw(c, EDS_URL, NULL, NULL, NULL, 2, names);
    r = recv_sotw(c, 5000);
    assert_non_null(r);
    assert_string_equal(r->type_url, EDS_URL);
    assert_int_equal(r->n_resources, 2);
    snprintf(nonce, sizeof nonce, "%s", r->nonce);
    free_sotw(r);
    send_sotw(c, EDS_URL, nonce, NULL, NULL, 2, names);
    assert_null(recv_sotw(c, 300)); /* nothing after ACKs */
    /* Only endpoint b changes. */
    apply("gateway-proxy", "cluster:a", "cluster:b", "endpoint:a:127.0.0.1:1001", "endpoint:b:127.0.0.1:2002",
          "listener:l:r", "route:r:a", NULL);
    r = recv_sotw(c, 5000);
    assert_non_null(r);
    assert_string_equal(r->type_url, EDS_URL);
    assert_int_equal(r->n_resources, 1);
    snprintf(nonce, sizeof nonce, "%s", r->nonce);
    snprintf(ver, sizeof ver, "%s", r->version_info);
    free_sotw(r);
    send_sotw(c, EDS_URL, nonce, NULL, NULL, 2, names);
    /* Nothing after that ACK: the next message is the answer to the next
     * change (endpoint a), not a re-send (a positive signal, no timeout). */
    apply("gateway-proxy", "cluster:a", "cluster:b", "endpoint:a:127.0.0.1:1003", "endpoint:b:127.0.0.1:2002",
          "listener:l:r", "route:r:a", NULL);
    expect_new_version(c, EDS_URL, 1, ver);
    xc_close(c);
}

/* A NACK becomes a sluice.v1.Report on NATS; the version is not re-sent. */
static void test_nack_report(void **state)
{
    (void)state;
    natsSubscription *sub = NULL;
    assert_int_equal(natsConnection_SubscribeSync(&sub, sl_nats_conn(nc), "sluice.report.xds-server.>"), NATS_OK);
    natsConnection_Flush(sl_nats_conn(nc));
    /* The proxy is the whole role: a commit for "edge" is not served to
     * "gloo-system~edge". */
    apply("edge", "cluster:x", NULL);
    xc *c = xc_open(xds_port, ADS);
    send_sotw(c, CDS_URL, NULL, NULL, "gloo-system~edge", 0, NULL);
    Envoy__Service__Discovery__V3__DiscoveryResponse *r = recv_sotw(c, 500);
    assert_null(r);
    xc_close(c);
    char nonce[64], ver[64];

    apply("gloo-system~edge", "cluster:x", NULL);
    c = xc_open(xds_port, ADS);
    send_sotw(c, CDS_URL, NULL, NULL, "gloo-system~edge", 0, NULL);
    r = recv_sotw(c, 5000);
    assert_non_null(r);
    snprintf(nonce, sizeof nonce, "%s", r->nonce);
    snprintf(ver, sizeof ver, "%s", r->version_info);
    free_sotw(r);
    send_sotw(c, CDS_URL, nonce, "cluster x: unsupported lb_policy", NULL, 0, NULL);
    natsMsg *m = NULL;
    assert_int_equal(natsSubscription_NextMsg(&m, sub, 5000), NATS_OK);
    assert_string_equal(natsMsg_GetSubject(m), "sluice.report.xds-server.Proxy.gloo-system.edge");
    Sluice__V1__Report *rep = sluice__v1__report__unpack(NULL, (size_t)natsMsg_GetDataLength(m),
                                                          (const uint8_t *)natsMsg_GetData(m));
    assert_non_null(rep);
    assert_int_equal(rep->state, SLUICE__V1__STATUS__STATE__Rejected);
    assert_string_equal(rep->reason, "cluster x: unsupported lb_policy");
    assert_string_equal(rep->type_url, CDS_URL);
    assert_string_equal(rep->xds_version, ver);
    assert_string_equal(rep->node_id, "itest-node");
    assert_string_equal(rep->proxy, "gloo-system~edge");
    sluice__v1__report__free_unpacked(rep, NULL);
    natsMsg_Destroy(m);
    /* No re-push of the NACKed version: the next message is the next
     * commit's (a positive signal, no timeout). */
    apply("gloo-system~edge", "cluster:x", "cluster:y", NULL);
    expect_new_version(c, CDS_URL, 2, ver);
    xc_close(c);
    natsSubscription_Destroy(sub);
}

/* Delta ADS: versions per resource, removals, reconnect with versions. */
/* The per-proxy state in KV sluice_proxies (services/xds/proxies.h) of
 * proxy, polled until it contains want (or, with want NULL, until it is
 * gone). The value is compact JSON, so substrings are exact enough. */
static int proxy_state_has(const char *proxy, const char *want)
{
    sl_kv *pk = NULL;
    char esc[256], suffix[300];
    int ok = 0;
    assert_int_equal(sl_xds_key_escape(esc, sizeof esc, proxy), SL_OK);
    snprintf(suffix, sizeof suffix, ".%s", esc);
    for (int i = 0; i < 100 && !ok; i++) {
        char **keys = NULL;
        size_t n = 0;
        int found = 0;
        if (!pk && sl_kv_bind(&pk, nc, "sluice_proxies") != SL_OK)
            pk = NULL;
        if (pk && sl_kv_keys(&keys, &n, pk, 1000) == SL_OK)
            for (size_t k = 0; k < n; k++) {
                size_t kl = strlen(keys[k]), sl = strlen(suffix);
                sl_kv_entry e = {0};
                if (kl <= sl || strcmp(keys[k] + kl - sl, suffix) != 0 || sl_kv_get(&e, pk, keys[k]) != SL_OK)
                    continue;
                found = 1;
                char *v = strndup((const char *)e.value, e.len);
                if (want && v && strstr(v, want))
                    ok = 1;
                free(v);
                sl_kv_entry_deinit(&e);
            }
        sl_kv_keys_free(keys, n);
        if (!want && pk && !found)
            ok = 1;
        if (!ok)
            usleep(100000);
    }
    sl_kv_free(pk);
    return ok;
}

/* sluice_proxies: after an ACK the stream is on the latest commit
 * revision; after a NACK of the next one it shows the NACK (and stays on
 * the revision it ACKed); when the stream goes, so does the key. */
static void test_proxy_state(void **state)
{
    (void)state;
    char want[512], nonce[64];
    uint64_t rev1, rev2;
    char *s1[] = {"cluster:p1"}, *s2[] = {"cluster:p1", "cluster:p2"};
    assert_int_equal(fx_apply(&rev1, kv, "ns~state-proxy", 1, s1), SL_OK);
    xc *c = xc_open(xds_port, ADS);
    assert_non_null(c);
    send_sotw(c, CDS_URL, NULL, NULL, "ns~state-proxy", 0, NULL);
    Envoy__Service__Discovery__V3__DiscoveryResponse *r = recv_sotw(c, 5000);
    assert_non_null(r);
    snprintf(nonce, sizeof nonce, "%s", r->nonce);
    free_sotw(r);
    send_sotw(c, CDS_URL, nonce, NULL, NULL, 0, NULL); /* ACK */
    snprintf(want, sizeof want,
             "\"commit_revision_served\":%" PRIu64 ",\"streams\":[{\"node_id\":\"itest-node\",\"acked_revision\":%" PRIu64
             ",\"nacked\":false,\"last_error\":\"\"}]}", rev1, rev1);
    assert_true(proxy_state_has("ns~state-proxy", want));

    assert_int_equal(fx_apply(&rev2, kv, "ns~state-proxy", 2, s2), SL_OK);
    r = recv_sotw(c, 5000);
    assert_non_null(r);
    assert_int_equal(r->n_resources, 2);
    snprintf(nonce, sizeof nonce, "%s", r->nonce);
    free_sotw(r);
    send_sotw(c, CDS_URL, nonce, "cluster p2: bad", NULL, 0, NULL); /* NACK */
    snprintf(want, sizeof want,
             "\"commit_revision_served\":%" PRIu64 ",\"streams\":[{\"node_id\":\"itest-node\",\"acked_revision\":%" PRIu64
             ",\"nacked\":true,\"last_error\":\"cds: cluster p2: bad\"}]}", rev2, rev1);
    assert_true(proxy_state_has("ns~state-proxy", want));

    xc_close(c);
    assert_true(proxy_state_has("ns~state-proxy", NULL));
}

/* The next DeltaDiscoveryResponse on c within 5 s (free it). */
static Envoy__Service__Discovery__V3__DeltaDiscoveryResponse *recv_delta(xc *c)
{
    size_t len;
    int ended;
    uint8_t *b = xc_recv(c, 5000, &len, &ended);
    assert_non_null(b);
    Envoy__Service__Discovery__V3__DeltaDiscoveryResponse *r =
        envoy__service__discovery__v3__delta_discovery_response__unpack(NULL, len, b);
    free(b);
    assert_non_null(r);
    return r;
}

/* The next delta response on c removes name and nothing else. */
static void expect_delta_removal(xc *c, const char *name)
{
    Envoy__Service__Discovery__V3__DeltaDiscoveryResponse *r = recv_delta(c);
    assert_int_equal(r->n_resources, 0);
    assert_int_equal(r->n_removed_resources, 1);
    assert_string_equal(r->removed_resources[0], name);
    envoy__service__discovery__v3__delta_discovery_response__free_unpacked(r, NULL);
}

static void test_delta_ads(void **state)
{
    (void)state;
    apply("delta-proxy", "cluster:d1", "cluster:d2", NULL);
    xc *c = xc_open(xds_port, DADS);
    Envoy__Service__Discovery__V3__DeltaDiscoveryRequest q = ENVOY__SERVICE__DISCOVERY__V3__DELTA_DISCOVERY_REQUEST__INIT;
    fx_node node;
    char *star[] = {"*"};
    q.node = fx_node_init(&node, "delta-node", "delta-proxy");
    q.type_url = CDS_URL;
    q.n_resource_names_subscribe = 1;
    q.resource_names_subscribe = star;
    uint8_t buf[4096];
    size_t len = envoy__service__discovery__v3__delta_discovery_request__pack(&q, buf);
    assert_int_equal(xc_send(c, buf, len), 0);
    Envoy__Service__Discovery__V3__DeltaDiscoveryResponse *r = recv_delta(c);
    assert_int_equal(r->n_resources, 2);
    assert_string_equal(r->resources[0]->name, "d1");
    char v1[32];
    snprintf(v1, sizeof v1, "%s", r->resources[0]->version);
    envoy__service__discovery__v3__delta_discovery_response__free_unpacked(r, NULL);
    apply("delta-proxy", "cluster:d1", NULL);
    expect_delta_removal(c, "d2");
    xc_close(c);

    /* Reconnect saying it has d1 at v1 and a stale d9: only d9's removal. */
    c = xc_open(xds_port, DADS);
    Envoy__Service__Discovery__V3__DeltaDiscoveryRequest__InitialResourceVersionsEntry i1 =
        ENVOY__SERVICE__DISCOVERY__V3__DELTA_DISCOVERY_REQUEST__INITIAL_RESOURCE_VERSIONS_ENTRY__INIT, i2 = i1;
    Envoy__Service__Discovery__V3__DeltaDiscoveryRequest__InitialResourceVersionsEntry *iv[] = {&i1, &i2};
    i1.key = "d1";
    i1.value = v1;
    i2.key = "d9";
    i2.value = "1";
    q.n_initial_resource_versions = 2;
    q.initial_resource_versions = iv;
    len = envoy__service__discovery__v3__delta_discovery_request__pack(&q, buf);
    assert_int_equal(xc_send(c, buf, len), 0);
    expect_delta_removal(c, "d9");
    xc_close(c);
}

/* Per-type services: StreamClusters answers clusters; another type is refused. */
static void test_per_type(void **state)
{
    (void)state;
    /* A name with ':' (escaped in its key) arrives intact. */
    apply("gateway-proxy", "listener:listener-=3A=3A-8080:listener-=3A=3A-8080-routes", NULL);
    xc *l = xc_open(xds_port, "/envoy.service.listener.v3.ListenerDiscoveryService/StreamListeners");
    char *ln[] = {"listener-::-8080"};
    send_sotw(l, "", NULL, NULL, NULL, 1, ln);
    Envoy__Service__Discovery__V3__DiscoveryResponse *lr = recv_sotw(l, 5000);
    assert_non_null(lr);
    assert_int_equal(lr->n_resources, 1);
    Envoy__Config__Listener__V3__Listener *lis = envoy__config__listener__v3__listener__unpack(
        NULL, lr->resources[0]->value.len, lr->resources[0]->value.data);
    assert_non_null(lis);
    assert_string_equal(lis->name, "listener-::-8080");
    envoy__config__listener__v3__listener__free_unpacked(lis, NULL);
    free_sotw(lr);
    xc_close(l);

    apply("gateway-proxy", "cluster:a", "endpoint:a:127.0.0.1:1001", NULL);
    xc *c = xc_open(xds_port, "/envoy.service.cluster.v3.ClusterDiscoveryService/StreamClusters");
    send_sotw(c, "", NULL, NULL, NULL, 0, NULL);
    Envoy__Service__Discovery__V3__DiscoveryResponse *r = recv_sotw(c, 5000);
    assert_non_null(r);
    assert_string_equal(r->type_url, CDS_URL);
    free_sotw(r);
    send_sotw(c, EDS_URL, NULL, NULL, NULL, 0, NULL);
    char msg[256];
    assert_int_equal(xc_status(c, msg, sizeof msg, 5000), GRPC_STATUS_INVALID_ARGUMENT);
    xc_close(c);
    c = xc_open(xds_port, "/envoy.service.endpoint.v3.EndpointDiscoveryService/StreamEndpoints");
    char *names[] = {"a"};
    send_sotw(c, EDS_URL, NULL, NULL, NULL, 1, names);
    r = recv_sotw(c, 5000);
    assert_non_null(r);
    assert_int_equal(r->n_resources, 1);
    free_sotw(r);
    xc_close(c);
}

/* Bad input gets proper status codes; the server stays up. */
static void test_bad_input(void **state)
{
    (void)state;
    char msg[256];
    xc *c = xc_open(xds_port, ADS);
    send_sotw(c, "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig", NULL, NULL, NULL, 0, NULL);
    assert_int_equal(xc_status(c, msg, sizeof msg, 5000), GRPC_STATUS_UNIMPLEMENTED);
    assert_non_null(strstr(msg, "TypedExtensionConfig"));
    xc_close(c);
    c = xc_open(xds_port, ADS);
    send_sotw(c, "", NULL, NULL, NULL, 0, NULL);
    assert_int_equal(xc_status(c, msg, sizeof msg, 5000), GRPC_STATUS_INVALID_ARGUMENT);
    xc_close(c);
    c = xc_open(xds_port, ADS);
    assert_int_equal(xc_send(c, "\xff\xff\xff\xff", 4), 0);
    assert_int_equal(xc_status(c, msg, sizeof msg, 5000), GRPC_STATUS_INVALID_ARGUMENT);
    xc_close(c);
    c = xc_open(xds_port, "/envoy.service.discovery.v3.Nope/Stream");
    assert_int_equal(xc_status(c, msg, sizeof msg, 5000), GRPC_STATUS_UNIMPLEMENTED);
    xc_close(c);
    /* Storms of connects and disconnects, some mid-push: every stream is
     * freed (the gauge returns to 0) and memory does not keep growing. */
    long rss[3];
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 400; i++) {
            c = xc_open(xds_port, i % 3 ? ADS : DADS);
            assert_non_null(c);
            if (i % 2)
                send_sotw(c, CDS_URL, NULL, NULL, NULL, 0, NULL);
            xc_close(c);
        }
        double open = 1;
        for (int i = 0; i < 100 && (open = metric_sum("sluice_xds_streams")) > 0; i++)
            usleep(20000);
        assert_true(open == 0);
        rss[round] = harness_rss_kb(xds_pid);
    }
    fprintf(stderr, "sluice-xds RSS after storms: %ld %ld %ld kB\n", rss[0], rss[1], rss[2]);
#if !defined(__SANITIZE_ADDRESS__)
    assert_true(rss[2] - rss[1] < 4096); /* back to baseline, not growing per connection */
#endif
    c = xc_open(xds_port, ADS);
    send_sotw(c, CDS_URL, NULL, NULL, NULL, 0, NULL);
    Envoy__Service__Discovery__V3__DiscoveryResponse *r = recv_sotw(c, 5000);
    assert_non_null(r);
    free_sotw(r);
    xc_close(c);
}

/* kill -9 and start again: everything is rebuilt from KV. */
static void test_restart_rebuilds(void **state)
{
    (void)state;
    apply("gateway-proxy", "cluster:after-restart", NULL);
    stop_xds(SIGKILL);
    start_xds();
    xc *c = xc_open(xds_port, ADS);
    send_sotw(c, CDS_URL, NULL, NULL, NULL, 0, NULL);
    Envoy__Service__Discovery__V3__DiscoveryResponse *r = recv_sotw(c, 5000);
    assert_non_null(r);
    assert_int_equal(r->n_resources, 1);
    free_sotw(r);
    xc_close(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sotw_ads), cmocka_unit_test(test_nack_report), cmocka_unit_test(test_proxy_state),
        cmocka_unit_test(test_delta_ads),
        cmocka_unit_test(test_per_type), cmocka_unit_test(test_bad_input), cmocka_unit_test(test_restart_rebuilds),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
