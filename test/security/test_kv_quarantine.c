/* test_kv_quarantine.c - a KV value that does not decode is quarantined by
 * every service that reads it (issue 12, item 4; sluice/quarantine.h):
 * with the test's own (admin) credentials garbage is written into each
 * bucket a service reads (sluice_config, sluice_secrets, sluice_endpoints,
 * sluice_status, sluice_xds) while the eight services run against an
 * authenticated nats-server. Each service that reads the value reports
 * the quarantine (a Rejected report from its own source naming bucket, key
 * and revision), counts it (sluice_kv_quarantined_total), keeps running,
 * and sluice-xds keeps serving the last good revision (the cluster of the
 * Upstream, which the translator keeps too); every service then exits 0 on
 * SIGTERM. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>
#include <grpc/grpc.h>

#include "envoy/service/discovery/v3/discovery.pb-c.h"
#include "harness.h"
#include "xds_client.h"
#include "sluice/envelope.h"
#include "sluice/kv.h"
#include "sluice/v1/events.pb-c.h"
#include "sluice/xds_keys.h"
#include "sluice/v1/upstream.pb-c.h"
#include "sluice/v1/virtual_service.pb-c.h"

#define ADS "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources"
#define CDS_URL "type.googleapis.com/envoy.config.cluster.v3.Cluster"
#define NSVC 7
#define GARBAGE "\xff\xfe not a protobuf message"

typedef struct svc {
    const char *dir, *exe;
    const char *args[6];
    pid_t pid;
    int metrics_port;
    char log[512];
} svc;

/* A quarantine each service must report: by source, of bucket/key. */
typedef struct expect {
    const char *source, *bucket, *key;
    bool seen;
} expect;

static harness_nats *srv;
static sl_nats *nc;
static char tmp[256];

static pid_t spawn(svc *s)
{
    char exe[512], maddr[64];
    const char *argv[16];
    int n = 0;
    harness_binary(exe, sizeof exe, s->dir);
    s->metrics_port = harness_free_port();
    snprintf(maddr, sizeof maddr, "127.0.0.1:%d", s->metrics_port);
    snprintf(s->log, sizeof s->log, "%s/%s.log", tmp, s->exe);
    argv[n++] = exe;
    for (int i = 0; s->args[i]; i++)
        argv[n++] = s->args[i];
    argv[n++] = "--metrics-addr";
    argv[n++] = maddr;
    argv[n] = NULL;
    return s->pid = harness_spawn(argv, s->log);
}

static void put(sl_kv *kv, const char *key, uint64_t *rev)
{
    assert_int_equal(sl_kv_put(rev, kv, key, GARBAGE, sizeof GARBAGE - 1), SL_OK);
}

/* The clusters sluice-xds serves the gateway proxy (-1: no answer). */
static int xds_clusters(int port)
{
    size_t len;
    int n = -1;
    uint8_t *b = xc_ask(port, ADS, CDS_URL, 5000, &len);
    Envoy__Service__Discovery__V3__DiscoveryResponse *r =
        b ? envoy__service__discovery__v3__discovery_response__unpack(NULL, len, b) : NULL;
    if (r)
        n = (int)r->n_resources;
    envoy__service__discovery__v3__discovery_response__free_unpacked(r, NULL);
    free(b);
    return n;
}

static void every_reader_quarantines(void **state)
{
    sl_kv *config = NULL, *secrets = NULL, *endpoints = NULL, *status = NULL, *xds = NULL;
    natsSubscription *reports = NULL;
    char cfg[300], sec[300];
    uint64_t rev;
    char commit_key[256];
    int xds_port = 0, xds_metrics = 0;
    (void)state;

    snprintf(tmp, sizeof tmp, "/tmp/sluice-quarantine-XXXXXX");
    assert_non_null(mkdtemp(tmp));
    snprintf(cfg, sizeof cfg, "%s/config", tmp);
    snprintf(sec, sizeof sec, "%s/secrets", tmp);
    assert_int_equal(mkdir(cfg, 0700), 0);
    assert_int_equal(mkdir(sec, 0700), 0);
    assert_int_equal(sl_xds_key_commit(commit_key, sizeof commit_key, "gloo-system~gateway-proxy"), SL_OK);
    grpc_init();
    assert_int_equal(harness_up(&srv, &nc), 0);
    setenv("NATS_URL", harness_nats_url(srv), 1);
    assert_int_equal(natsConnection_SubscribeSync(&reports, sl_nats_conn(nc), "sluice.report.>"), NATS_OK);
    assert_int_equal(natsConnection_Flush(sl_nats_conn(nc)), NATS_OK);

    /* The last good state: an Upstream a VirtualService routes to (so the
     * translator gives the gateway proxy its cluster); and a secret that is
     * garbage from the start (read when the services start). */
    assert_int_equal(harness_open_kv(&config, nc, "sluice_config"), SL_OK);
    assert_int_equal(harness_open_kv(&secrets, nc, "sluice_secrets"), SL_OK);
    assert_int_equal(harness_open_kv(&endpoints, nc, "sluice_endpoints"), SL_OK);
    assert_int_equal(harness_open_kv(&status, nc, "sluice_status"), SL_OK);
    assert_int_equal(harness_open_kv(&xds, nc, "sluice_xds"), SL_OK);
    assert_int_equal(harness_kv_put_yaml(config, "Upstream.default.u", &sluice__v1__upstream__descriptor,
                                         "metadata: {name: u, namespace: default}\n"
                                         "spec: {static: {hosts: [{addr: 127.0.0.1, port: 1001}]}}\n",
                                         NULL),
                     SL_OK);
    assert_int_equal(harness_kv_put_yaml(config, "VirtualService.default.vs", &sluice__v1__virtual_service__descriptor,
                                         "metadata: {name: vs, namespace: default}\n"
                                         "spec: {virtualHost: {domains: ['*'], routes: [{matchers: [{prefix: /}], "
                                         "routeAction: {single: {upstream: {name: u, namespace: default}}}}]}}\n",
                                         NULL),
                     SL_OK);
    /* a dns Upstream: function discovery reads its endpoint set to probe it */
    assert_int_equal(harness_kv_put_yaml(config, "Upstream.default.d", &sluice__v1__upstream__descriptor,
                                         "metadata: {name: d, namespace: default}\n"
                                         "spec: {dns: {name: quarantine.invalid, port: 80}}\n",
                                         NULL),
                     SL_OK);
    put(secrets, "Secret.gw.s", &rev);

    svc s[NSVC] = {
        {"services/config-watcher/sluice-config-watcher", "config-watcher", {"--dir", cfg, NULL}, 0, 0, ""},
        {"services/translator/sluice-translator", "translator", {NULL}, 0, 0, ""},
        {"services/reporter/sluice-reporter", "reporter", {NULL}, 0, 0, ""},
        {"services/secret-watcher/sluice-secret-watcher", "secret-watcher", {"--dir", sec, "--namespace", "gw", NULL},
         0, 0, ""},
        {"services/endpoint-discovery/sluice-endpoint-discovery", "endpoint-discovery", {NULL}, 0, 0, ""},
        {"services/function-discovery/sluice-function-discovery", "function-discovery", {NULL}, 0, 0, ""},
        {"services/upstream-discovery/sluice-upstream-discovery", "upstream-discovery", {NULL}, 0, 0, ""},
    };
    for (int i = 0; i < NSVC; i++)
        assert_true(spawn(&s[i]) > 0);
    const char *const xargs[] = {"--default-proxy", "gloo-system~gateway-proxy", NULL};
    pid_t xds_pid = harness_start_xds(srv, xargs, &xds_port, &xds_metrics);
    assert_true(xds_pid > 0);
    int64_t end = harness_now_ms() + 30000;
    for (int i = 0; i < NSVC; i++) {
        while (!harness_log_has(s[i].log, "msg=\"ready\"") && harness_now_ms() < end)
            usleep(50000);
        if (!harness_log_has(s[i].log, "msg=\"ready\""))
            fail_msg("%s never became ready (see %s)", s[i].exe, s[i].log);
    }
    int clusters = -1;
    end = harness_now_ms() + 30000;
    while ((clusters = xds_clusters(xds_port)) < 1 && harness_now_ms() < end)
        usleep(100000);
    if (clusters < 1)
        fail_msg("the gateway proxy never got the Upstream's cluster");

    /* Garbage in every bucket a service reads. */
    put(config, "Upstream.default.u", &rev);
    put(endpoints, "default.u", &rev);
    put(endpoints, "default.d", &rev);
    put(status, "Upstream.default.u", &rev);
    put(xds, commit_key, &rev);

    expect want[] = {
        {"config-watcher", "sluice_config", "Upstream.default.u", false},
        {"translator", "sluice_config", "Upstream.default.u", false},
        {"translator", "sluice_secrets", "Secret.gw.s", false},
        {"translator", "sluice_endpoints", "default.u", false},
        {"endpoint-discovery", "sluice_config", "Upstream.default.u", false},
        {"function-discovery", "sluice_config", "Upstream.default.u", false},
        {"function-discovery", "sluice_endpoints", "default.d", false},
        {"upstream-discovery", "sluice_config", "Upstream.default.u", false},
        {"reporter", "sluice_status", "Upstream.default.u", false},
        {"secret-watcher", "sluice_secrets", "Secret.gw.s", false},
        {"xds-server", "sluice_xds", commit_key, false},
    };
    size_t nwant = sizeof want / sizeof want[0], seen = 0;
    end = harness_now_ms() + 30000;
    while (seen < nwant && harness_now_ms() < end) {
        natsMsg *m = NULL;
        if (natsSubscription_NextMsg(&m, reports, 500) != NATS_OK)
            continue;
        Sluice__V1__Report *r = sluice__v1__report__unpack(NULL, (size_t)natsMsg_GetDataLength(m),
                                                            (const uint8_t *)natsMsg_GetData(m));
        for (size_t i = 0; r && r->reason && i < nwant; i++) {
            char what[256];
            snprintf(what, sizeof what, "quarantined: %s key %s revision ", want[i].bucket, want[i].key);
            if (!want[i].seen && r->source && !strcmp(r->source, want[i].source) && strstr(r->reason, what) &&
                strstr(r->reason, "does not decode") && r->state == SLUICE__V1__STATUS__STATE__Rejected) {
                want[i].seen = true;
                seen++;
                printf("# %s: %s\n", r->source, r->reason);
            }
        }
        sluice__v1__report__free_unpacked(r, NULL);
        natsMsg_Destroy(m);
    }
    for (size_t i = 0; i < nwant; i++)
        if (!want[i].seen)
            fail_msg("%s did not report the quarantine of %s %s", want[i].source, want[i].bucket, want[i].key);

    /* Every service counted it, and still runs; sluice-xds serves the
     * last good revision. */
    for (int i = 0; i < NSVC; i++) {
        double v = 0;
        int st;
        assert_int_equal(waitpid(s[i].pid, &st, WNOHANG), 0);
        assert_int_equal(harness_metric_sum(s[i].metrics_port, "sluice_kv_quarantined_total", &v), 0);
        if (v < 1)
            fail_msg("%s: sluice_kv_quarantined_total is %g", s[i].exe, v);
    }
    double xv = 0;
    assert_int_equal(harness_metric_sum(xds_metrics, "sluice_kv_quarantined_total{bucket=\"sluice_xds\"}", &xv), 0);
    assert_true(xv >= 1);
    assert_int_equal(xds_clusters(xds_port), clusters);

    for (int i = 0; i < NSVC; i++) {
        int st = harness_stop(s[i].pid, SIGTERM);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            harness_show_log(s[i].log);
            fail_msg("%s did not exit 0 on SIGTERM", s[i].exe);
        }
    }
    int st = harness_stop(xds_pid, SIGTERM);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    natsSubscription_Destroy(reports);
    sl_kv_free(config);
    sl_kv_free(secrets);
    sl_kv_free(endpoints);
    sl_kv_free(status);
    sl_kv_free(xds);
    harness_down(srv, nc);
    grpc_shutdown();
    harness_remove_test_dir(tmp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_reader_quarantines),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
