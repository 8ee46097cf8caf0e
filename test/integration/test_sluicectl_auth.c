/* test_sluicectl_auth.c - sluicectl certs and nats-auth with the real tools: openssl verifies the chain and SANs, sluice-xds serves mutual TLS with the certificates, nats-server runs deploy/compose/nats.conf (users, TLS) with the generated files. */
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "harness.h"
#include "test_config_watcher_util.h"

static char ctl[512], dir[512];
static const char *src;

static int group_setup(void **state)
{
    (void)state;
    src = getenv("SLUICE_SOURCE_DIR") ? getenv("SLUICE_SOURCE_DIR") : ".";
    bin_path(ctl, sizeof ctl, "sluicectl", "sluicectl");
    snprintf(dir, sizeof dir, "/tmp/sluice-auth-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int group_teardown(void **state)
{
    char *out = NULL;
    (void)state;
    run_cmd(&out, "rm -rf %s", dir);
    free(out);
    return 0;
}

static unsigned mode_of(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static unsigned mode_of(const char *fmt, ...)
{
    char path[1024];
    struct stat sb;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(path, sizeof path, fmt, ap);
    va_end(ap);
    return stat(path, &sb) == 0 ? (unsigned)(sb.st_mode & 0777) : 01000;
}

static void certs_made_verified_kept(void **state)
{
    char *out = NULL, *again = NULL, *before = NULL, *after = NULL;
    const char *proxy = "proxies/default~gateway-proxy";
    (void)state;
    assert_int_equal(run_cmd(&out, "%s certs %s/tls --server-name xds.example --nats-host localhost "
                                   "--proxy default~gateway-proxy --trust-domain example.org",
                             ctl, dir),
                     0);
    expect_out(&out, "created  ", "spiffe://example.org/ns/default/proxy/gateway-proxy", NULL);
    /* keys 0600, directories 0700 */
    assert_int_equal(mode_of("%s/tls/ca.key", dir), 0600);
    assert_int_equal(mode_of("%s/tls/xds/tls.key", dir), 0600);
    assert_int_equal(mode_of("%s/tls/nats/tls.key", dir), 0600);
    assert_int_equal(mode_of("%s/tls/%s/tls.key", dir, proxy), 0600);
    assert_int_equal(mode_of("%s/tls", dir), 0700);
    /* openssl: every leaf chains to the CA, for its purpose */
    assert_int_equal(run_cmd(&out, "openssl verify -CAfile %s/tls/ca.crt -purpose sslserver %s/tls/xds/tls.crt "
                                   "%s/tls/nats/tls.crt && openssl verify -CAfile %s/tls/ca.crt -purpose sslclient "
                                   "%s/tls/%s/tls.crt %s/tls/nats/tls.crt",
                             dir, dir, dir, dir, dir, proxy, dir),
                     0);
    free(out);
    assert_int_equal(run_cmd(&out, "openssl x509 -noout -text -in %s/tls/%s/tls.crt", dir, proxy), 0);
    expect_out(&out, "URI:spiffe://example.org/ns/default/proxy/gateway-proxy", "TLS Web Client Authentication",
               "CA:FALSE", NULL);
    assert_int_equal(run_cmd(&out, "openssl x509 -noout -text -in %s/tls/xds/tls.crt", dir), 0);
    expect_out(&out, "DNS:sluice-xds", "DNS:xds.example", "IP Address:127.0.0.1", NULL);
    /* a second run keeps everything */
    assert_int_equal(run_cmd(&before, "cat %s/tls/ca.crt %s/tls/%s/tls.crt", dir, dir, proxy), 0);
    assert_int_equal(run_cmd(&again, "%s certs %s/tls --proxy default~gateway-proxy --trust-domain example.org",
                             ctl, dir),
                     0);
    assert_null(strstr(again, "created"));
    assert_non_null(strstr(again, "kept"));
    assert_int_equal(run_cmd(&after, "cat %s/tls/ca.crt %s/tls/%s/tls.crt", dir, dir, proxy), 0);
    assert_string_equal(before, after);
    free(before);
    free(after);
    free(again);
    /* clear errors naming the file */
    assert_int_equal(run_cmd(&out, "%s certs %s/tls --proxy nonamespace", ctl, dir), 1);
    expect_out(&out, "NAMESPACE~NAME", NULL);
    assert_int_equal(run_cmd(&out, "cp -r %s/tls %s/broken && rm %s/broken/xds/tls.key && %s certs %s/broken", dir,
                             dir, dir, ctl, dir),
                     1);
    expect_out(&out, "broken/xds/tls.crt exists without", NULL);
    /* a leaf of another CA is refused, not silently kept */
    assert_int_equal(run_cmd(&out, "%s certs %s/other >/dev/null && cp %s/other/xds/tls.* %s/broken/xds/ && %s certs %s/broken",
                             ctl, dir, dir, dir, ctl, dir),
                     1);
    expect_out(&out, "is not signed by", NULL);
}

/* The real sluice-xds with the generated pair and CA: openssl s_client,
 * with the proxy's certificate, verifies the server as sluice-xds. */
static void xds_serves_mutual_tls(void **state)
{
    harness_nats *srv = NULL;
    char cert[700], key[700], ca[700], *out = NULL;
    int port = 0;
    (void)state;
    assert_int_equal(harness_nats_start(&srv), 0);
    snprintf(cert, sizeof cert, "%s/tls/xds/tls.crt", dir);
    snprintf(key, sizeof key, "%s/tls/xds/tls.key", dir);
    snprintf(ca, sizeof ca, "%s/tls/xds/ca.crt", dir);
    const char *args[] = {"--tls-cert", cert, "--tls-key", key, "--tls-client-ca", ca,
                          "--trust-domain", "example.org", NULL};
    pid_t xds = harness_start_xds(srv, args, &port, NULL);
    assert_true(xds > 0);
    assert_int_equal(run_cmd(&out, "openssl s_client -connect 127.0.0.1:%d -alpn h2 -servername sluice-xds "
                                   "-verify_hostname sluice-xds -verify_return_error -CAfile %s/tls/ca.crt "
                                   "-cert %s/tls/proxies/default~gateway-proxy/tls.crt "
                                   "-key %s/tls/proxies/default~gateway-proxy/tls.key </dev/null",
                             port, dir, dir, dir),
                     0);
    expect_out(&out, "Verify return code: 0 (ok)", "ALPN protocol: h2", NULL);
    /* a server certificate another CA signed is refused by the client */
    assert_int_not_equal(run_cmd(&out, "openssl s_client -connect 127.0.0.1:%d -verify_return_error "
                                       "-CAfile %s/other/ca.crt </dev/null",
                                 port, dir),
                         0);
    free(out);
    stop_proc(xds);
    harness_nats_free(srv);
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    char *buf = calloc(1, 65536);
    if (f && buf)
        buf[fread(buf, 1, 65535, f)] = '\0';
    if (f)
        fclose(f);
    return buf;
}

/* nats-server with the shipped compose configuration (deploy/compose/
 * nats.conf: the users of sluicectl nats-auth, TLS required), the files
 * where the compose volume would hold them: a role's seed over TLS gets in,
 * no seed or no TLS does not. */
static void nats_runs_generated_auth(void **state)
{
    char path[1024], *out = NULL, *conf = NULL, *p;
    const char *server = getenv("SLUICE_NATS_SERVER") ? getenv("SLUICE_NATS_SERVER") : "nats-server";
    int port = harness_free_port();
    (void)state;
    assert_true(port > 0);
    assert_int_equal(run_cmd(&out, "mkdir -p %s/nats && %s nats-auth %s/nats/creds", dir, ctl, dir), 0);
    expect_lacks(out, "admin", NULL);
    expect_out(&out, "auth.conf", "translator", "created", NULL);
    assert_int_equal(mode_of("%s/nats/creds/translator.nk", dir), 0600);
    assert_int_equal(mode_of("%s/nats/creds", dir), 0700);
    assert_int_equal(run_cmd(&out, "cp %s/deploy/nats/sluice.conf %s/nats/ && cp %s/tls/nats/tls.crt "
                                   "%s/tls/nats/tls.key %s/nats/creds/",
                             src, dir, dir, dir, dir),
                     0);
    free(out);
    /* deploy/compose/nats.conf, its /etc/nats/ paths moved here */
    snprintf(path, sizeof path, "%s/deploy/compose/nats.conf", src);
    conf = slurp(path);
    assert_non_null(conf);
    snprintf(path, sizeof path, "%s/nats/nats.conf", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    for (char *s = conf; (p = strstr(s, "/etc/nats/")) || *s; s = p + 10) {
        if (!p) {
            fputs(s, f);
            break;
        }
        fprintf(f, "%.*s%s/nats/", (int)(p - s), s, dir);
    }
    fclose(f);
    free(conf);
    char ps[16], ms[16], js[700], log[700];
    snprintf(ps, sizeof ps, "%d", port);
    /* the shipped config's monitoring port (8222) moved to a free one:
     * tests run side by side, sluicectl run's too */
    int mport = harness_free_port();
    assert_true(mport > 0);
    snprintf(ms, sizeof ms, "%d", mport);
    snprintf(js, sizeof js, "%s/nats/js", dir);
    snprintf(log, sizeof log, "%s/nats/nats.log", dir);
    const char *args[] = {"-c", path, "-p", ps, "-m", ms, "-js", "-sd", js, NULL};
    char exe[512];
    if (strchr(server, '/'))
        snprintf(exe, sizeof exe, "%s", server);
    else
        snprintf(exe, sizeof exe, "/usr/sbin/%s", server);
    pid_t nats = start_proc(exe, args, NULL, log);
    assert_true(nats > 0);
    int ok = 0;
    for (int i = 0; i < 100 && !ok; i++) {
        char *o = NULL;
        run_cmd(&o, "cd %s && %s --nats-url nats://localhost:%d --nats-nkey %s/nats/creds/sluicectl.nk "
                    "--nats-tls-ca %s/tls/ca.crt --nats-connect-timeout 2s check",
                dir, ctl, port, dir, dir);
        ok = o && strstr(o, "OK    nats: connected");
        free(o);
        if (!ok)
            usleep(100000);
    }
    assert_true(ok);
    /* no seed: refused; a seed without TLS: refused */
    run_cmd(&out, "cd %s && %s --nats-url nats://localhost:%d --nats-tls-ca %s/tls/ca.crt "
                  "--nats-connect-timeout 2s check",
            dir, ctl, port, dir);
    expect_out(&out, "FAIL  nats: unreachable", NULL);
    run_cmd(&out, "cd %s && %s --nats-url nats://localhost:%d --nats-nkey %s/nats/creds/sluicectl.nk "
                  "--nats-connect-timeout 2s check",
            dir, ctl, port, dir);
    expect_out(&out, "FAIL  nats: unreachable", NULL);
    stop_proc(nats);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(certs_made_verified_kept),
        cmocka_unit_test(xds_serves_mutual_tls),
        cmocka_unit_test(nats_runs_generated_auth),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
