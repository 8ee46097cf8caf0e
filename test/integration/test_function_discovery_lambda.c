/* sluice-function-discovery and AWS Lambda: the real binary, a real nats-server (authentication on:
 * the service reads the secrets bucket with its own role) and moto's server (PyPI moto[server])
 * checking every SigV4 signature against its IAM users, paged as AWS pages ListFunctions
 * (test/integration/fds/moto_lambda.py).
 *
 * One scenario, in order: moto holds functions alpha (with version 1 and alias live), beta and
 * gamma; an aws Upstream whose secretRef names the IAM user's key, listing 2 per page, gets
 * alpha, alpha:1, beta and gamma as Gloo names them, after a function of its own (kept); the
 * second page was asked for with the escaped marker; an upstream without secretRef and one whose
 * Secret is another namespace's (no grant) get a Warning and nothing else; one whose Secret holds
 * temporary credentials (a role assumed through STS) gets the functions with its session token; one
 * with its own "beta" keeps it, with a Warning naming the discovered one not written; a re-check writes
 * nothing; a route to the discovered alpha:1 translates; gamma is deleted in moto and goes; a
 * wrong secret key is a Warning with AWS's reason (403 SignatureDoesNotMatch) that keeps the
 * functions; moto stops: a Warning (cannot connect) that keeps them too; SIGTERM. */
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

#define N_WATCHED 4
static natsSubscription *reports[N_WATCHED]; /* the reports on each of names */
static const char *const names[N_WATCHED] = {"lambdas", "nocreds", "borrowed", "clash"};
static fds_fixture fx;
static pid_t moto = -1;
static int moto_port;
static char endpoint[64], py[1024], helper[1024];
static char access_key[128], secret_key[128], tmp_key[128], tmp_secret[128], tmp_token[2048];

static void start_moto(void)
{
    char port[16];
    snprintf(port, sizeof port, "%d", moto_port);
    const char *argv[] = {py, helper, "serve", port, NULL};
    moto = harness_spawn(argv, fx.log_path);
    if (moto < 0 || harness_wait_tcp(moto_port, 30000) != 0)
        fail_msg("moto did not start (log %s)", fx.log_path);
}

/* The IAM user's key, temporary credentials, and the functions (moto_lambda.py setup). */
static void setup_lambda(void)
{
    char cmd[4096];
    char out[4096];
    snprintf(cmd, sizeof cmd, "%s %s setup %s 2>>%s", py, helper, endpoint, fx.log_path);
    harness_run_output(cmd, out, sizeof out);
    if (sscanf(out, "%127s %127s %127s %127s %2047s", access_key, secret_key, tmp_key, tmp_secret, tmp_token) != 5)
        fail_msg("moto_lambda.py setup: \"%s\" (log %s)", out, fx.log_path);
}

static void start_discovery(void)
{
    /* a failing upstream is checked again within 2 s (back-off), not minutes later */
    const char *args[] = {"--resync", "500ms", "--backoff-max", "2s", "--fetch-timeout", "5s", "--connect-timeout", "1s",
                          "--aws-endpoint", endpoint, "--aws-page-size", "2", NULL};
    char buf[512];
    fds_fixture_start(&fx, args);
    assert_int_equal(harness_http(fx.metrics_port, "GET", "/healthz", buf, sizeof buf), 200);
}

/* ---- resources ------------------------------------------------------------- */

/* An aws Secret ns/name; token: its sessionToken, or NULL. */
static void put_secret(const char *ns, const char *name, const char *key, const char *secret, const char *token)
{
    char yaml[4096], k[256];
    sl_codec_options o = {.root_name = "Secret"};
    snprintf(yaml, sizeof yaml,
             "metadata: {name: %s, namespace: %s}\nspec:\n  aws: {accessKey: \"%s\", secretKey: \"%s\"%s%s%s}\n", name,
             ns, key, secret, token ? ", sessionToken: \"" : "", token ? token : "", token ? "\"" : "");
    snprintf(k, sizeof k, "Secret.%s.%s", ns, name);
    assert_int_equal(harness_kv_put_yaml(fx.secrets_kv, k, &sluice__v1__secret__descriptor, yaml, &o), SL_OK);
}

/* An aws upstream default/<name>; secret_ref: "{name: .., namespace: ..}" or NULL. */
static void put_upstream(const char *name, const char *secret_ref, const char *own_functions)
{
    char yaml[1024], k[256];
    sl_codec_options o = {.root_name = "Upstream"};
    snprintf(yaml, sizeof yaml,
             "metadata: {name: %s, namespace: default}\nspec:\n  aws:\n    region: us-east-1\n"
             "    awsAccountId: \"123456789012\"\n%s%s%s%s",
             name, secret_ref ? "    secretRef: " : "", secret_ref ? secret_ref : "", secret_ref ? "\n" : "",
             own_functions ? own_functions : "");
    snprintf(k, sizeof k, "Upstream.default.%s", name);
    assert_int_equal(harness_kv_put_yaml(fx.config_kv, k, &sluice__v1__upstream__descriptor, yaml, &o), SL_OK);
}

/* " logical=name@qualifier ... " of the upstream's Lambda functions, in order; its revision in *rev. */
static void functions(char *out, size_t n, const char *name, uint64_t *rev)
{
    char key[256];
    snprintf(key, sizeof key, "Upstream.default.%s", name);
    Sluice__V1__Upstream *u =
        (Sluice__V1__Upstream *)harness_kv_get_pb_rev(fx.config_kv, key, &sluice__v1__upstream__descriptor, rev);
    assert_non_null(u);
    size_t k = (size_t)snprintf(out, n, " ");
    for (size_t i = 0; i < u->spec->aws->n_lambda_functions && k < n; i++) {
        const Sluice__V1__LambdaFunctionSpec *f = u->spec->aws->lambda_functions[i];
        k += (size_t)snprintf(out + k, n - k, "%s=%s@%s ", f->logical_name, f->lambda_function_name, f->qualifier);
    }
    sluice__v1__upstream__free_unpacked(u, NULL);
}

static uint64_t wait_functions(const char *name, const char *want)
{
    char got[4096];
    uint64_t rev = 0;
    int64_t end = harness_now_ms() + 20000;
    do {
        functions(got, sizeof got, name, &rev);
        if (!strcmp(got, want))
            return rev;
        usleep(100 * 1000);
    } while (harness_now_ms() < end);
    fail_msg("%s: want \"%s\", got \"%s\" (log %s)", name, want, got, fx.log_path);
    return 0;
}

/* The next report on upstream names[i] in state whose reason holds text, or a failure. */
static void wait_report(int i, int state, const char *text)
{
    Sluice__V1__Report *r;
    const char *name = names[i];
    for (r = harness_next_report(reports[i], name, 15000); r && (!strstr(r->reason, text) || (int)r->state != state);
         r = harness_next_report(reports[i], name, 15000))
        sluice__v1__report__free_unpacked(r, NULL);
    if (!r)
        fail_msg("%s: no report in state %d with \"%s\" (log %s)", name, state, text, fx.log_path);
    assert_string_equal(r->source, "function-discovery");
    sluice__v1__report__free_unpacked(r, NULL);
}

/* A VirtualService routing to the discovered alpha:1, with the stored Upstream and its Secret,
 * through the translator (sluice-translate): nothing Rejected. */
static void check_route(void)
{
    char up[600], rest[600], cmd[3000];
    snprintf(up, sizeof up, "%s/lambdas-upstream.yaml", fx.dir);
    snprintf(rest, sizeof rest, "%s/route-and-secret.yaml", fx.dir);
    FILE *f = fopen(rest, "w");
    assert_non_null(f);
    fprintf(f,
            "apiVersion: gateway.solo.io/v1\nkind: VirtualService\nmetadata: {name: fns, namespace: default}\n"
            "spec:\n  virtualHost:\n    domains: [fns.example.com]\n    routes:\n"
            "    - matchers: [{prefix: /alpha}]\n      routeAction:\n        single:\n"
            "          upstream: {name: lambdas, namespace: default}\n"
            "          destinationSpec: {aws: {logicalName: \"alpha:1\"}}\n---\n"
            "apiVersion: gloo.solo.io/v1\nkind: Secret\nmetadata: {name: aws-creds, namespace: default}\n"
            "spec:\n  aws: {accessKey: \"%s\", secretKey: \"%s\"}\n",
            access_key, secret_key);
    fclose(f);
    snprintf(cmd, sizeof cmd, "%s/services/sluicectl/sluicectl get upstream lambdas -o yaml > %s", fx.bin_dir, up);
    assert_int_equal(system(cmd), 0);
    snprintf(cmd, sizeof cmd, "%s/test/tools/sluice-translate %s %s 2>&1 >/dev/null", fx.bin_dir, up, rest);
    static char out[65536];
    harness_run_output(cmd, out, sizeof out);
    if (!strstr(out, "Upstream default.lambdas: Accepted") || strstr(out, "Rejected") ||
        !strstr(out, "VirtualService default.fns: Accepted"))
        fail_msg("sluice-translate:\n%s", out);
}

/* ---- the scenario ------------------------------------------------------------ */

static void test_lambda_discovery(void **state)
{
    (void)state;
    char cmd[4096];
    const char *all = " mine=alpha@live alpha=alpha@$LATEST alpha:1=alpha@1 beta=beta@$LATEST gamma=gamma@$LATEST ";
    start_moto();
    setup_lambda();
    put_secret("default", "aws-creds", access_key, secret_key, NULL);
    put_secret("ops", "aws-creds", access_key, secret_key, NULL); /* grants no other namespace */
    for (int i = 0; i < N_WATCHED; i++) {
        char subject[200];
        snprintf(subject, sizeof subject, "sluice.report.function-discovery.Upstream.default.%s", names[i]);
        assert_int_equal(natsConnection_SubscribeSync(&reports[i], sl_nats_conn(fx.nc), subject), NATS_OK);
    }
    /* a function of its own: an alias, which ListFunctions does not list (nor Gloo) */
    put_upstream("lambdas", "{name: aws-creds, namespace: default}",
                 "    lambdaFunctions: [{logicalName: mine, lambdaFunctionName: alpha, qualifier: live}]\n");
    put_upstream("nocreds", NULL, NULL);
    put_upstream("borrowed", "{name: aws-creds, namespace: ops}", NULL);
    /* temporary credentials: the session token is sent (moto checks it) */
    put_secret("default", "temp-creds", tmp_key, tmp_secret, tmp_token);
    put_upstream("temporary", "{name: temp-creds}", NULL);
    /* a person's own "beta": the discovered one of that name is not written */
    put_upstream("clash", "{name: aws-creds}",
                 "    lambdaFunctions: [{logicalName: beta, lambdaFunctionName: beta, qualifier: \"7\"}]\n");
    start_discovery();

    uint64_t rev = wait_functions("lambdas", all);
    wait_functions("temporary", " alpha=alpha@$LATEST alpha:1=alpha@1 beta=beta@$LATEST gamma=gamma@$LATEST ");
    wait_functions("clash", " beta=beta@7 alpha=alpha@$LATEST alpha:1=alpha@1 gamma=gamma@$LATEST ");
    wait_report(3, SLUICE__V1__STATUS__STATE__Warning, "the discovered ones of the same name are not written: beta");
    wait_report(0, SLUICE__V1__STATUS__STATE__Accepted, "");
    /* 4 versions 2 a page: the second page was asked for with the marker escaped ('+' '/' '=';
     * werkzeug logs %2F as '/'), and moto checked the signature of each (a 403 would be a Warning) */
    snprintf(cmd, sizeof cmd, "grep -c 'GET /2015-03-31/functions/?FunctionVersion=ALL&Marker=%%2B.*%%3D&MaxItems=2 "
                              "HTTP/1.1\" 200' %s", fx.log_path);
    char count[32];
    harness_run_output(cmd, count, sizeof count);
    if (atoi(count) < 1)
        fail_msg("no second page asked for with the escaped marker (log %s)", fx.log_path);
    wait_report(1, SLUICE__V1__STATUS__STATE__Warning, "Lambda discovery needs credentials");
    wait_report(2, SLUICE__V1__STATUS__STATE__Warning, "does not grant access to namespace default");
    char got[4096];
    functions(got, sizeof got, "nocreds", NULL);
    assert_string_equal(got, " ");

    /* Re-checks with nothing changed write nothing. */
    double unchanged = harness_metric(fx.metrics_port, "sluice_fds_unchanged_total");
    int64_t end = harness_now_ms() + 10000;
    while (harness_now_ms() < end && harness_metric(fx.metrics_port, "sluice_fds_unchanged_total") < unchanged + 2)
        usleep(100 * 1000);
    assert_true(harness_metric(fx.metrics_port, "sluice_fds_unchanged_total") >= unchanged + 2);
    assert_int_equal(wait_functions("lambdas", all), rev);

    check_route();

    /* gamma is deleted in AWS: it goes, the rest stays. */
    snprintf(cmd, sizeof cmd, "%s %s delete %s %s %s gamma >>%s 2>&1", py, helper, endpoint, access_key, secret_key,
             fx.log_path);
    assert_int_equal(system(cmd), 0);
    rev = wait_functions("lambdas", " mine=alpha@live alpha=alpha@$LATEST alpha:1=alpha@1 beta=beta@$LATEST ");

    /* A wrong secret key: AWS's reason in a Warning, the functions kept. */
    put_secret("default", "aws-creds", access_key, "not-the-secret", NULL);
    wait_report(0, SLUICE__V1__STATUS__STATE__Warning, "SignatureDoesNotMatch");
    put_secret("default", "aws-creds", access_key, "still-not-the-secret", NULL);
    usleep(1000 * 1000);
    assert_int_equal(wait_functions("lambdas", " mine=alpha@live alpha=alpha@$LATEST alpha:1=alpha@1 beta=beta@$LATEST "),
                     rev);
    snprintf(cmd, sizeof cmd, "grep -c 'not-the-secret' %s", fx.log_path);
    harness_run_output(cmd, count, sizeof count);
    assert_int_equal(atoi(count), 0); /* never logged */

    /* AWS unreachable: a Warning saying so, the functions kept. */
    put_secret("default", "aws-creds", access_key, secret_key, NULL);
    harness_stop_pid(&moto, SIGTERM);
    wait_report(0, SLUICE__V1__STATUS__STATE__Warning, "Failed to connect"); /* "...; the last functions are kept" */
    assert_int_equal(wait_functions("lambdas", " mine=alpha@live alpha=alpha@$LATEST alpha:1=alpha@1 beta=beta@$LATEST "),
                     rev);

    assert_int_equal(harness_stop_pid(&fx.discovery, SIGTERM), 0);
}

static int setup(void **state)
{
    (void)state;
    if (fds_fixture_up(&fx, "fds-lambda") != 0)
        return -1;
    snprintf(py, sizeof py, "%s/.venv/bin/python", fx.src);
    snprintf(helper, sizeof helper, "%s/test/integration/fds/moto_lambda.py", fx.src);
    /* the credentials are the Secret's only: none from this environment */
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    unsetenv("AWS_SESSION_TOKEN");
    unsetenv("AWS_REGION");
    moto_port = harness_free_port();
    snprintf(endpoint, sizeof endpoint, "http://127.0.0.1:%d", moto_port);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    harness_stop_pid(&moto, SIGTERM);
    harness_subs_free(reports, N_WATCHED);
    return fds_fixture_down(&fx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test_setup_teardown(test_lambda_discovery, setup, teardown)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
