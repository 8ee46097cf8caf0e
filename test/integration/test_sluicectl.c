/* sluicectl against a real nats-server and a real sluice-config-watcher:
 * apply (created/unchanged/configured, rejected with file:line:col, dry
 * run), get -o yaml round trip, delete, xds dump of a KV we populate, and
 * `sluicectl run` starting and stopping everything. */
#include <dirent.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "harness.h"
#include "sluice/codec.h"
#include "sluice/kinds.h"
#include "sluice/kv.h"
#include "sluice/types.h"
#include "sluice/v1/core.pb-c.h"
#include "test_config_watcher_util.h"

static harness_nats *srv;
static sl_nats *nc;
static sl_kv *kv;
static char ctl[512], cwexe[512], tmp[300], empty_dir[400], log_path[400];
static pid_t cw;
static const char *src;

static int group_setup(void **state)
{
    (void)state;
    if (harness_up(&srv, &nc) != 0)
        return -1;
    src = getenv("SLUICE_SOURCE_DIR") ? getenv("SLUICE_SOURCE_DIR") : ".";
    snprintf(tmp, sizeof(tmp), "%s", harness_nats_dir(srv));
    snprintf(empty_dir, sizeof(empty_dir), "%s/empty", tmp);
    snprintf(log_path, sizeof(log_path), "%s/config-watcher.log", tmp);
    mkdir(empty_dir, 0755);
    bin_path(ctl, sizeof(ctl), "sluicectl", "sluicectl");
    bin_path(cwexe, sizeof(cwexe), "config-watcher", "sluice-config-watcher");
    const char *args[] = {"--dir", empty_dir, NULL};
    cw = start_proc(cwexe, args, harness_nats_url(srv), log_path);
    kv = open_bucket(nc, SL_BUCKET_CONFIG);
    setenv("NATS_URL", harness_nats_url(srv), 1);
    /* Wait for the apply API. */
    for (int i = 0; i < 100; i++) {
        char *out = NULL;
        int rc = run_cmd(&out, "%s check", ctl);
        bool up = out && strstr(out, "OK    apply API");
        free(out);
        (void)rc;
        if (up)
            return kv ? 0 : -1;
        usleep(100000);
    }
    return -1;
}

static int group_teardown(void **state)
{
    (void)state;
    stop_proc(cw);
    sl_kv_free(kv);
    harness_down(srv, nc);
    return 0;
}

static void apply_examples(void **state)
{
    (void)state;
    char *out = NULL;
    assert_int_equal(run_cmd(&out, "%s apply -f %s/examples", ctl, src), 0);
    expect_out(&out, "upstream.gloo.solo.io/default/petstore created",
               "virtualservice.gateway.solo.io/default/petstore created",
               "gateway.gateway.solo.io/default/gateway-proxy created", NULL);
    assert_true(wait_key(kv, "Upstream.default.echo-grpc", true, 0, 1000) > 0);
    assert_int_equal(run_cmd(&out, "%s apply -f %s/examples/gateway.yaml", ctl, src), 0);
    expect_out(&out, "gateway.gateway.solo.io/default/gateway-proxy unchanged", NULL);
    assert_int_equal(run_cmd(&out, "%s get vs", ctl), 0);
    expect_out(&out, "VIRTUAL SERVICE", "petstore.example.com", NULL);
    assert_int_equal(run_cmd(&out, "%s get upstreams -A", ctl), 0);
    expect_out(&out, "hosts: 127.0.0.1:8081,127.0.0.1:8082", NULL);
}

static void apply_rejected_and_dry_run(void **state)
{
    (void)state;
    char path[500], *out = NULL;
    snprintf(path, sizeof(path), "%s/bad.yaml", tmp);
    write_file(path, "apiVersion: gateway.solo.io/v1\nkind: VirtualService\nmetadata:\n"
                     "  name: bad\nspec:\n  virtualHost:\n    domains: ['*']\n    routes:\n"
                     "    - matchers:\n      - prefix: /\n      options:\n        retris: 3\n");
    assert_int_equal(run_cmd(&out, "%s apply -f %s", ctl, path), 1);
    expect_out(&out, "virtualservice.gateway.solo.io/default/bad is invalid", "bad.yaml:12:9: unknown field 'retris'",
               "did you mean 'retries'?", NULL);
    assert_int_equal(wait_key(kv, "VirtualService.default.bad", false, 0, 100), 1);

    snprintf(path, sizeof(path), "%s/dry.yaml", tmp);
    write_file(path, "apiVersion: gateway.solo.io/v1\nkind: VirtualService\nmetadata:\n"
                     "  name: dry\nspec:\n  virtualHost:\n    domains: [dry]\n");
    assert_int_equal(run_cmd(&out, "%s apply --dry-run -f %s", ctl, path), 0);
    expect_out(&out, "virtualservice.gateway.solo.io/default/dry created (server dry run)", NULL);
    assert_int_equal(wait_key(kv, "VirtualService.default.dry", false, 0, 100), 1);
    /* From stdin too: "created", not "configured", so the dry run stored
     * nothing (the server answers after its writes). */
    assert_int_equal(run_cmd(&out, "cat %s | %s apply -f -", path, ctl), 0);
    expect_lacks(out, "configured", NULL);
    expect_out(&out, "default/dry created", NULL);
}

static void get_yaml_round_trip(void **state)
{
    (void)state;
    char path[500], *out = NULL;
    snprintf(path, sizeof(path), "%s/petstore-out.yaml", tmp);
    assert_int_equal(run_cmd(&out, "%s get vs petstore -o yaml > %s", ctl, path), 0);
    free(out);
    assert_int_equal(run_cmd(&out, "cat %s", path), 0);
    expect_out(&out, "apiVersion: gateway.solo.io/v1\nkind: VirtualService\n", "resourceVersion:",
               "functionName: findPetById", NULL);
    assert_int_equal(run_cmd(&out, "%s apply -f %s", ctl, path), 0);
    expect_out(&out, "virtualservice.gateway.solo.io/default/petstore unchanged", NULL);
    /* A change to what was read: configured, generation 2. */
    assert_int_equal(run_cmd(&out, "sed -i 's/displayName: Pet store/displayName: Pets/' %s && "
                                   "sed -i '/resourceVersion/d' %s && %s apply -f %s",
                             path, path, ctl, path),
                     0);
    expect_out(&out, "default/petstore configured", NULL);
    assert_int_equal(run_cmd(&out, "%s get vs petstore -o json", ctl), 0);
    expect_out(&out, "\"displayName\": \"Pets\"", "\"generation\": \"2\"", NULL);
    assert_int_equal(run_cmd(&out, "%s get vs nosuch", ctl), 1);
    expect_out(&out, "NotFound", NULL);
    assert_int_equal(run_cmd(&out, "%s get nosuchkind", ctl), 1);
    free(out);
}

static void delete_resources(void **state)
{
    (void)state;
    char *out = NULL;
    assert_int_equal(run_cmd(&out, "%s delete us static-web", ctl), 1);
    expect_out(&out, "still referenced by VirtualService default/web", NULL);
    assert_int_equal(run_cmd(&out, "%s delete vs web", ctl), 0);
    expect_out(&out, "virtualservice.gateway.solo.io/default/web deleted", NULL);
    assert_int_equal(wait_key(kv, "VirtualService.default.web", false, 0, 1000), 1);
    assert_int_equal(run_cmd(&out, "%s delete vs web", ctl), 1);
    expect_out(&out, "not found", NULL);
    assert_int_equal(run_cmd(&out, "%s delete -f %s/examples/gateway.yaml", ctl, src), 0);
    expect_out(&out, "gateway.gateway.solo.io/default/gateway-proxy deleted", NULL);
    assert_int_equal(run_cmd(&out, "%s delete", ctl), 1);
    free(out);
}

/* A document the translator's dry run accepts with a Warning (retries
 * without retryOn): apply and delete print each warning on a line of its
 * own, after the line of the resource it is about, even with stdout and
 * stderr in one pipe. */
static const char WARN_DOC[] =
    "apiVersion: gateway.solo.io/v1\nkind: VirtualService\nmetadata: {name: warned, namespace: default}\n"
    "spec: {virtualHost: {domains: [warned.example.com], routes: [{matchers: [{prefix: /}], "
    "routeAction: {single: {upstream: {name: petstore}}}, options: {retries: {numRetries: 2}}}]}}\n";

static void warnings_on_their_own_lines(void **state)
{
    (void)state;
    char *out = NULL, path[400];
    const char *w;
    snprintf(path, sizeof(path), "%s/warned.yaml", tmp);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(WARN_DOC, f);
    fclose(f);
    assert_int_equal(run_cmd(&out, "%s apply -f %s", ctl, path), 0);
    w = strstr(out, "virtualservice.gateway.solo.io/default/warned created\nWarning: ");
    assert_non_null(w);
    assert_non_null(strstr(w, "retryOn: empty"));
    assert_int_equal(out[strlen(out) - 1], '\n');
    free(out);

    /* status: a Warning's messages are its REASON; -o json and -o yaml */
    Sluice__V1__Status st = SLUICE__V1__STATUS__INIT;
    char *msgs[] = {"first warning", "second warning"};
    uint8_t buf[256];
    sl_kv *skv = open_bucket(nc, SL_BUCKET_STATUS);
    assert_non_null(skv);
    st.state = SLUICE__V1__STATUS__STATE__Warning;
    st.reported_by = "translator";
    st.messages = msgs;
    st.n_messages = 2;
    assert_true(sluice__v1__status__get_packed_size(&st) <= sizeof(buf));
    assert_int_equal(sl_kv_put(NULL, skv, "VirtualService.default.warned", buf, sluice__v1__status__pack(&st, buf)),
                     SL_OK);
    sl_kv_free(skv);
    assert_int_equal(run_cmd(&out, "%s status vs warned", ctl), 0);
    w = strstr(out, "\nVirtualService   default         warned");
    assert_non_null(w);
    assert_non_null(strstr(w, "Warning    translator     first warning; second warning\n"));
    free(out);
    assert_int_equal(run_cmd(&out, "%s status vs warned -o json", ctl), 0);
    assert_true(out[0] == '[');
    expect_out(&out, "\"kind\": \"VirtualService\"", "\"name\": \"warned\"", "\"state\": \"Warning\"",
               "\"first warning\",\n", "]\n", NULL);
    assert_int_equal(run_cmd(&out, "%s status vs warned -o yaml", ctl), 0);
    expect_out(&out, "kind: VirtualService\nnamespace: default\nname: warned\nstatus:\n  state: Warning\n",
               "  messages:\n  - first warning\n  - second warning\n", NULL);
    assert_int_equal(run_cmd(&out, "%s status -o wide", ctl), 1);
    free(out);

    assert_int_equal(run_cmd(&out, "%s delete -f %s", ctl, path), 0);
    expect_out(&out, "virtualservice.gateway.solo.io/default/warned deleted\n", NULL);
}

static void xds_dump(void **state)
{
    (void)state;
    sl_kv *xkv = open_bucket(nc, "sluice_xds");
    assert_non_null(xkv);
    const ProtobufCMessageDescriptor *d = sl_types_find("envoy.config.cluster.v3.Cluster");
    assert_non_null(d);
    static const char yaml[] = "name: petstore_default\nconnectTimeout: 2s\ntype: STATIC\n";
    sl_codec_options o = {0};
    o.resolver = sl_types_find_url;
    assert_int_equal(harness_kv_put_yaml(xkv, "default=7Egateway-proxy.cluster.petstore_default", d, yaml, &o), SL_OK);
    assert_int_equal(harness_kv_put_yaml(xkv, "default=7Eother.cluster.x", d, yaml, &o), SL_OK);
    char *out = NULL;
    assert_int_equal(run_cmd(&out, "%s xds dump --proxy default~gateway-proxy -o yaml", ctl), 0);
    expect_lacks(out, "cluster x", NULL);
    expect_out(&out, "name: petstore_default", "connectTimeout: 2s",
               "type.googleapis.com/envoy.config.cluster.v3.Cluster", NULL);
    assert_int_equal(run_cmd(&out, "%s xds dump --proxy gateway-proxy --type lds", ctl), 0);
    expect_out(&out, "No xDS resources", NULL);
    assert_int_equal(run_cmd(&out, "%s xds dump --proxy gateway-proxy --type cds -o json", ctl), 0);
    expect_out(&out, "\"name\": \"petstore_default\"", NULL);
    /* a Secret's private key is redacted unless --show-secrets */
    static const char sec[] = "name: client_default\ntlsCertificate:\n  certificateChain: {inlineString: CERT-PEM}\n"
                              "  privateKey: {inlineBytes: S0VZLVBFTQ==}\n";
    d = sl_types_find("envoy.extensions.transport_sockets.tls.v3.Secret");
    assert_non_null(d);
    assert_int_equal(harness_kv_put_yaml(xkv, "default=7Egateway-proxy.secret.client_default", d, sec, &o), SL_OK);
    for (int json = 0; json < 2; json++) {
        assert_int_equal(run_cmd(&out, "%s xds dump --proxy gateway-proxy --type sds -o %s", ctl, json ? "json" : "yaml"), 0);
        expect_lacks(out, "S0VZLVBFTQ", "KEY-PEM", NULL);
        expect_out(&out, "CERT-PEM", "redacted", NULL);
    }
    assert_int_equal(run_cmd(&out, "%s xds dump --proxy gateway-proxy --type sds --show-secrets", ctl), 0);
    expect_lacks(out, "redacted", NULL);
    expect_out(&out, "S0VZLVBFTQ==", NULL);
    sl_kv_free(xkv);
}

/* Children of pid, from /proc. */
static int children_of(pid_t pid, pid_t *out, int max)
{
    int n = 0;
    DIR *d = opendir("/proc");
    for (struct dirent *de; d && (de = readdir(d)) && n < max;) {
        char path[300], line[256];
        int p = atoi(de->d_name);
        if (p <= 0)
            continue;
        snprintf(path, sizeof(path), "/proc/%d/status", p);
        FILE *f = fopen(path, "r");
        while (f && fgets(line, sizeof(line), f))
            if (strncmp(line, "PPid:", 5) == 0 && atoi(line + 5) == pid)
                out[n++] = p;
        if (f)
            fclose(f);
    }
    if (d)
        closedir(d);
    return n;
}

static void run_starts_and_stops(void **state)
{
    (void)state;
    char conf[500], sd[500], port_s[16], url[64], examples[500], bins[600], *out = NULL;
    int port = harness_free_port();
    snprintf(conf, sizeof(conf), "%s/run.conf", tmp);
    snprintf(sd, sizeof(sd), "%s/run-state", tmp);
    snprintf(port_s, sizeof(port_s), "%d", port);
    snprintf(url, sizeof(url), "nats://127.0.0.1:%d", port);
    snprintf(examples, sizeof(examples), "%s/examples", src);
    snprintf(bins, sizeof(bins), "%s/services", bin_dir());
    write_file(conf, "max_payload: 8MB\njetstream {\n  max_memory_store: 64MB\n"
                     "  max_file_store: 256MB\n}\n");
    const char *args[] = {"run", "--config-dir", examples, "--state-dir", sd, "--nats-port",
                          port_s, "--nats-conf", conf, "--metrics-base-port", "0",
                          "--only", "config-watcher", "--bin-dir", bins, NULL};
    char runlog[500];
    snprintf(runlog, sizeof(runlog), "%s/run.log", tmp);
    pid_t run = start_proc(ctl, args, NULL, runlog);
    bool up = false;
    for (int i = 0; i < 100 && !up; i++) {
        usleep(100000);
        /* run's nats-server has authentication on: its own role seeds */
        if (run_cmd(&out, "%s --nats-url %s --nats-auth-dir %s/nats-auth get vs petstore", ctl, url, sd) == 0)
            up = strstr(out, "petstore.example.com") != NULL;
        free(out);
    }
    assert_true(up);
    /* the same server, up and serving, refuses sluicectl without credentials */
    assert_int_not_equal(run_cmd(&out, "SLUICE_NATS_AUTH_DIR= %s --nats-url %s --nats-connect-timeout 0 get vs petstore",
                                 ctl, url), 0);
    expect_out(&out, "Authorization Violation", NULL);
    pid_t kids[16];
    int n = children_of(run, kids, 16);
    assert_true(n >= 2); /* nats-server and sluice-config-watcher */
    /* It said so in its log. */
    assert_int_equal(run_cmd(&out, "grep -c 'started sluice-config-watcher' %s", runlog), 0);
    free(out);
    assert_int_equal(stop_proc(run), 0);
    for (int i = 0; i < n; i++)
        assert_true(kill(kids[i], 0) != 0);
    assert_int_equal(run_cmd(&out, "cat %s", runlog), 0);
    expect_out(&out, "run: stopped", "NATS authentication on", NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(apply_examples),
        cmocka_unit_test(apply_rejected_and_dry_run),
        cmocka_unit_test(get_yaml_round_trip),
        cmocka_unit_test(warnings_on_their_own_lines),
        cmocka_unit_test(delete_resources),
        cmocka_unit_test(xds_dump),
        cmocka_unit_test(run_starts_and_stops),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
