/* sluice-function-discovery towards upstreams that speak TLS, and its back-off: the real binary, a real
 * nats-server (authentication on: the service reads sluice_secrets with its own role), python's
 * http.server over TLS and a grpcio server with grpcio-reflection over TLS, both asking for a client
 * certificate signed by the test's CA (openssl makes the certificates here).
 *
 * One scenario, in order: an Upstream whose sslConfig.secretRef names a tls Secret (client
 * certificate, key, rootCa) gets its functions from an https swaggerInfo.url; a gRPC one with such a
 * Secret gets its services by reflection over TLS; one with sslConfig.sslFiles and sni "localhost"
 * and no document named is probed over https and its document found; one whose Secret has a rootCa
 * and no client certificate is refused by the server: a Warning. The two Secrets' rootCa becomes
 * another CA: Warnings naming the TLS error, the functions kept (no write); the failing upstreams
 * are checked again with back-off (delays doubling from --resync to --backoff-max, as the log and
 * sluice_fds_backing_off show); the right CA again: the reports of a good check (the Petstore's
 * formData parameters stay a Warning), back-off reset; SIGTERM. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "fds_fixture.h"
#include "harness.h"
#include "sluice/codec.h"
#include "sluice/kinds.h"
#include "sluice/kv.h"
#include "sluice/nats.h"
#include "sluice/v1/events.pb-c.h"
#include "sluice/v1/secret.pb-c.h"
#include "sluice/v1/upstream.pb-c.h"

#define RESYNC_MS 300
#define BACKOFF_MAX_MS 2000

enum { REST, GRPC, PROBE, NOCERT, N_UPS };
static const char *const names[N_UPS] = {"rest-tls", "grpc-tls", "probe-files", "no-cert"};
static fds_fixture fx;
static natsSubscription *reports[N_UPS];
static pid_t https = -1, grpcs = -1;
static int https_port, grpc_port;

/* ---- certificates and servers ------------------------------------------------ */

/* A CA, another CA, a server certificate for localhost and 127.0.0.1 and a client certificate,
 * both signed by the first CA (EC P-256, openssl). */
static void make_certs(void)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "cd %s && K='-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes' && "
             "openssl req -x509 $K -keyout ca.key -out ca.crt -days 2 -subj /CN=fds-test-ca && "
             "openssl req -x509 $K -keyout wrong.key -out wrong.crt -days 2 -subj /CN=another-ca && "
             "printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' > server.ext && "
             "printf 'extendedKeyUsage=clientAuth\\n' > client.ext && "
             "for n in server client; do openssl req $K -keyout $n.key -out $n.csr -subj /CN=fds-$n && "
             "openssl x509 -req -in $n.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out $n.crt -days 2 "
             "-extfile $n.ext || exit 1; done >> %s 2>&1",
             fx.dir, fx.log_path);
    if (system(cmd) != 0)
        fail_msg("openssl could not make the certificates (log %s)", fx.log_path);
}

static void start_servers(void)
{
    char py[1024], script[1024], port[16], cert[300], key[300], ca[300];
    snprintf(py, sizeof py, "%s/.venv/bin/python", fx.src);
    snprintf(cert, sizeof cert, "%s/server.crt", fx.dir);
    snprintf(key, sizeof key, "%s/server.key", fx.dir);
    snprintf(ca, sizeof ca, "%s/ca.crt", fx.dir);
    snprintf(script, sizeof script, "%s/test/integration/fds/tls_http_server.py", fx.src);
    snprintf(port, sizeof port, "%d", https_port);
    const char *hargv[] = {py, script, port, fx.dir, cert, key, ca, NULL};
    https = harness_spawn(hargv, fx.log_path);
    snprintf(script, sizeof script, "%s/test/integration/fds/grpc_server.py", fx.src);
    snprintf(port, sizeof port, "%d", grpc_port);
    const char *gargv[] = {py, script, port, cert, key, ca, NULL};
    grpcs = harness_spawn(gargv, fx.log_path);
    if (https < 0 || grpcs < 0 || harness_wait_tcp(https_port, 30000) != 0 || harness_wait_tcp(grpc_port, 30000) != 0)
        fail_msg("the TLS servers did not start (log %s)", fx.log_path);
}

static void start_discovery(void)
{
    char resync[32], max[32];
    snprintf(resync, sizeof resync, "%dms", RESYNC_MS);
    snprintf(max, sizeof max, "%dms", BACKOFF_MAX_MS);
    const char *args[] = {"--resync", resync, "--backoff-max", max, "--fetch-timeout", "5s", "--connect-timeout", "2s",
                          NULL};
    fds_fixture_start(&fx, args);
}

/* ---- resources --------------------------------------------------------------- */

/* The PEM file <dir>/<file> as a YAML double-quoted string's content (newlines as \n). */
static void pem_quoted(char *out, size_t cap, const char *file)
{
    char path[400], line[256];
    size_t k = 0;
    snprintf(path, sizeof path, "%s/%s", fx.dir, file);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    while (fgets(line, sizeof line, f) && k < cap) {
        line[strcspn(line, "\n")] = 0;
        k += (size_t)snprintf(out + k, cap - k, "%s\\n", line);
    }
    fclose(f);
}

/* A tls Secret default/<name> with rootCa from ca_file, and the client certificate unless !client. */
static void put_secret(const char *name, const char *ca_file, bool client)
{
    static char yaml[16384], ca[4096], cert[4096], key[4096];
    char k[256];
    sl_codec_options o = {.root_name = "Secret"};
    pem_quoted(ca, sizeof ca, ca_file);
    pem_quoted(cert, sizeof cert, "client.crt");
    pem_quoted(key, sizeof key, "client.key");
    snprintf(yaml, sizeof yaml, "metadata: {name: %s, namespace: default}\nspec:\n  tls:\n    rootCa: \"%s\"\n%s%s%s%s%s",
             name, ca, client ? "    certChain: \"" : "", client ? cert : "", client ? "\"\n    privateKey: \"" : "",
             client ? key : "", client ? "\"\n" : "");
    snprintf(k, sizeof k, "Secret.default.%s", name);
    assert_int_equal(harness_kv_put_yaml(fx.secrets_kv, k, &sluice__v1__secret__descriptor, yaml, &o), SL_OK);
}

/* A static upstream default/<name> on 127.0.0.1:port with sslConfig ssl and, as spec.static's last
 * line, service ("" none). */
static void put_upstream(const char *name, int port, const char *ssl, const char *service)
{
    char yaml[2048], k[256];
    sl_codec_options o = {.root_name = "Upstream"};
    snprintf(yaml, sizeof yaml,
             "metadata: {name: %s, namespace: default}\nspec:\n  sslConfig: %s\n  static:\n"
             "    hosts: [{addr: 127.0.0.1, port: %d}]\n%s",
             name, ssl, port, service);
    snprintf(k, sizeof k, "Upstream.default.%s", name);
    assert_int_equal(harness_kv_put_yaml(fx.config_kv, k, &sluice__v1__upstream__descriptor, yaml, &o), SL_OK);
}

/* The number of functions (REST transformations, or gRPC methods) of upstream i once it has some,
 * waiting up to 20 s; its revision in *rev and its swaggerInfo.url in url. */
static size_t wait_functions(int i, uint64_t *rev, char *url, size_t cap)
{
    char key[256];
    size_t n = 0;
    int64_t end = harness_now_ms() + 20000;
    snprintf(key, sizeof key, "Upstream.default.%s", names[i]);
    do {
        Sluice__V1__Upstream *u =
            (Sluice__V1__Upstream *)harness_kv_get_pb_rev(fx.config_kv, key, &sluice__v1__upstream__descriptor, rev);
        assert_non_null(u);
        const Sluice__V1__ServiceSpec *ss = u->spec->static_->service_spec;
        if (ss && ss->plugin_type_case == SLUICE__V1__SERVICE_SPEC__PLUGIN_TYPE_REST) {
            n = ss->rest->n_transformations;
            snprintf(url, cap, "%s", ss->rest->swagger_info ? ss->rest->swagger_info->url : "");
        } else if (ss && ss->plugin_type_case == SLUICE__V1__SERVICE_SPEC__PLUGIN_TYPE_GRPC) {
            n = 0;
            for (size_t s = 0; s < ss->grpc->n_grpc_services; s++)
                n += ss->grpc->grpc_services[s]->n_function_names;
        }
        sluice__v1__upstream__free_unpacked(u, NULL);
        if (n)
            return n;
        usleep(100 * 1000);
    } while (harness_now_ms() < end);
    fail_msg("%s has no functions (log %s)", names[i], fx.log_path);
    return 0;
}

/* The next report on upstream i in state whose reason holds text (and text2, when not NULL). */
static void wait_report(int i, int state, const char *text, const char *text2)
{
    Sluice__V1__Report *r;
    for (r = harness_next_report(reports[i], names[i], 20000);
         r && ((int)r->state != state || !strstr(r->reason, text) || (text2 && !strstr(r->reason, text2)));
         r = harness_next_report(reports[i], names[i], 20000))
        sluice__v1__report__free_unpacked(r, NULL);
    if (!r)
        fail_msg("%s: no report in state %d with \"%s\" (log %s)", names[i], state, text, fx.log_path);
    sluice__v1__report__free_unpacked(r, NULL);
}

/* The delay_ms the log gave upstream i's back-off after `failures` failures, or -1. */
static long backoff_delay(int i, int failures)
{
    char cmd[1024], out[64] = "";
    snprintf(cmd, sizeof cmd,
             "grep -o 'msg=\"backing off\" key=Upstream.default.%s failures=%d delay_ms=[0-9]*' %s | head -1 | "
             "sed 's/.*delay_ms=//'",
             names[i], failures, fx.log_path);
    harness_run_output(cmd, out, sizeof out);
    return out[0] ? atol(out) : -1;
}

static void wait_metric(const char *name, double want)
{
    int64_t end = harness_now_ms() + 20000;
    while (harness_metric(fx.metrics_port, name) != want && harness_now_ms() < end)
        usleep(100 * 1000);
    if (harness_metric(fx.metrics_port, name) != want)
        fail_msg("%s is %g, not %g (log %s)", name, harness_metric(fx.metrics_port, name), want, fx.log_path);
}

/* ---- the scenario ------------------------------------------------------------- */

static void test_tls(void **state)
{
    char ssl[1024], svc[512], url[512], want[512], subj[256];
    uint64_t rev_rest, rev_grpc, rev;
    (void)state;
    make_certs();
    start_servers();
    put_secret("rest-tls", "ca.crt", true);
    put_secret("grpc-tls", "ca.crt", true);
    put_secret("ca-only", "ca.crt", false);
    for (int i = 0; i < N_UPS; i++) {
        snprintf(subj, sizeof subj, "sluice.report.function-discovery.Upstream.default.%s", names[i]);
        assert_int_equal(natsConnection_SubscribeSync(&reports[i], sl_nats_conn(fx.nc), subj), NATS_OK);
    }
    snprintf(svc, sizeof svc, "    serviceSpec: {rest: {swaggerInfo: {url: \"https://127.0.0.1:%d/petstore.json\"}}}\n",
             https_port);
    put_upstream("rest-tls", https_port, "{secretRef: {name: rest-tls, namespace: default}}", svc);
    put_upstream("no-cert", https_port, "{secretRef: {name: ca-only}}", svc);
    put_upstream("grpc-tls", grpc_port, "{secretRef: {name: grpc-tls}}", "    serviceSpec: {grpc: {}}\n");
    snprintf(ssl, sizeof ssl, "{sni: localhost, sslFiles: {tlsCert: %s/client.crt, tlsKey: %s/client.key, rootCa: %s/ca.crt}}",
             fx.dir, fx.dir, fx.dir);
    put_upstream("probe-files", https_port, ssl, "");
    start_discovery();

    /* the client certificate, the CA and the name reach both servers */
    assert_int_equal(wait_functions(REST, &rev_rest, url, sizeof url), 20);
    assert_int_equal(wait_functions(GRPC, &rev_grpc, url, sizeof url), 2);
    wait_report(GRPC, SLUICE__V1__STATUS__STATE__Accepted, "", NULL);
    assert_int_equal(wait_functions(PROBE, &rev, url, sizeof url), 20);
    snprintf(want, sizeof want, "https://127.0.0.1:%d/swagger.json", https_port);
    assert_string_equal(url, want);
    /* no client certificate: the server refuses the handshake */
    snprintf(want, sizeof want, "GET https://127.0.0.1:%d/petstore.json", https_port);
    wait_report(NOCERT, SLUICE__V1__STATUS__STATE__Warning, want, "the last functions are kept");

    /* another CA: Warnings naming the TLS error, the functions kept */
    put_secret("rest-tls", "wrong.crt", true);
    put_secret("grpc-tls", "wrong.crt", true);
    wait_report(REST, SLUICE__V1__STATUS__STATE__Warning, "SSL certificate problem", "the last functions are kept");
    snprintf(want, sizeof want, "gRPC reflection at 127.0.0.1:%d over TLS", grpc_port);
    wait_report(GRPC, SLUICE__V1__STATUS__STATE__Warning, want, "certificate verify failed");
    assert_int_equal(wait_functions(REST, &rev, url, sizeof url), 20);
    assert_int_equal(rev, rev_rest);
    assert_int_equal(wait_functions(GRPC, &rev, url, sizeof url), 2);
    assert_int_equal(rev, rev_grpc);

    /* back-off: each failure waits twice as long, from --resync up to --backoff-max (+ up to 25%) */
    int64_t end = harness_now_ms() + 30000;
    while (backoff_delay(REST, 5) < 0 && harness_now_ms() < end)
        usleep(200 * 1000);
    for (int f = 1, d = RESYNC_MS; f <= 5; f++, d = d * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : d * 2) {
        long got = backoff_delay(REST, f);
        if (got < d || got > d + d / 4)
            fail_msg("rest-tls: back-off after %d failures: %ld ms, not %d..%d (log %s)", f, got, d, d + d / 4,
                     fx.log_path);
    }
    assert_true(harness_metric(fx.metrics_port, "sluice_fds_backing_off") >= 3); /* rest, grpc, no-cert */
    assert_true(harness_metric(fx.metrics_port, "sluice_fds_backoffs_total") >= 5);

    /* the right CA again: Accepted at the next check, back-off reset */
    put_secret("rest-tls", "ca.crt", true);
    put_secret("grpc-tls", "ca.crt", true);
    wait_report(REST, SLUICE__V1__STATUS__STATE__Warning, "could not be mapped", NULL); /* the Petstore's formData */
    wait_report(GRPC, SLUICE__V1__STATUS__STATE__Accepted, "", NULL);
    wait_metric("sluice_fds_backing_off", 1); /* no-cert only */
    assert_int_equal(wait_functions(REST, &rev, url, sizeof url), 20);
    assert_int_equal(rev, rev_rest);

    assert_int_equal(harness_stop_pid(&fx.discovery, SIGTERM), 0);
}

static int setup(void **state)
{
    char cmd[1200];
    (void)state;
    if (fds_fixture_up(&fx, "fds-tls") != 0)
        return -1;
    snprintf(cmd, sizeof cmd, "cp %s/test/data/openapi/petstore-swagger2.json %s/petstore.json && cp %s/petstore.json "
             "%s/swagger.json", fx.src, fx.dir, fx.dir, fx.dir);
    https_port = harness_free_port();
    grpc_port = harness_free_port();
    return system(cmd) == 0 ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    harness_stop_pid(&https, SIGKILL);
    harness_stop_pid(&grpcs, SIGKILL);
    harness_subs_free(reports, N_UPS);
    return fds_fixture_down(&fx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test_setup_teardown(test_tls, setup, teardown)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
