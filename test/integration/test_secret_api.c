/* Secrets by API (issue 13): `sluicectl create secret tls|aws|header` and
 * `sluicectl apply` of Gloo-format Secret documents go to the real
 * sluice-secret-watcher over NATS (sluice.api.secret.*, with the shipped
 * least-privilege roles), which checks them and stores them in
 * sluice_secrets only; a VirtualService with sslConfig.secretRef to such a
 * secret is then accepted by the real translator and its proxy gets the
 * secret. Bad input names the flag, file or field; nothing of the
 * material reaches sluice_config or a log. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"
#include "sluice/envelope.h"
#include "sluice/kinds.h"
#include "sluice/kv.h"
#include "sluice/secrets.h"
#include "sluice/v1/events.pb-c.h"
#include "sluice/v1/secret.pb-c.h"
#include "test_config_watcher_util.h"

static harness_nats *srv;
static sl_nats *nc;
static sl_kv *secrets, *config;
static pid_t sw = -1, cw = -1, tr = -1;
static int sw_metrics_port;
static char sw_metrics_addr[64];
static char tmp[300], ctl[512], dir[400], sw_log[400], cw_log[400], tr_log[400];

static void sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void sh(const char *fmt, ...)
{
    char cmd[4096], full[4500];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    if (snprintf(full, sizeof full, "cd %s && %s", tmp, cmd) >= (int)sizeof full)
        fail_msg("command too long");
    if (system(full) != 0)
        fail_msg("command failed: %s", cmd);
}

/* The whole text of tmp/name (static storage, one of three). */
static const char *file_text(const char *name)
{
    static char buf[3][16384];
    static int k;
    char path[600];
    char *b = buf[k++ % 3];
    snprintf(path, sizeof path, "%s/%s", tmp, name);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t n = fread(b, 1, sizeof buf[0] - 1, f);
    b[n] = 0;
    fclose(f);
    return b;
}

static Sluice__V1__Secret *get_secret(const char *key)
{
    return (Sluice__V1__Secret *)harness_kv_get_pb(secrets, key, &sluice__v1__secret__descriptor);
}

static int group_setup(void **state)
{
    (void)state;
    char cwexe[512], swexe[512], trexe[512], empty[420];
    if (harness_up(&srv, &nc) != 0)
        return -1;
    snprintf(tmp, sizeof tmp, "%s", harness_nats_dir(srv));
    snprintf(dir, sizeof dir, "%s/secrets", tmp);
    snprintf(empty, sizeof empty, "%s/config", tmp);
    snprintf(sw_log, sizeof sw_log, "%s/secret-watcher.log", tmp);
    snprintf(cw_log, sizeof cw_log, "%s/config-watcher.log", tmp);
    snprintf(tr_log, sizeof tr_log, "%s/translator.log", tmp);
    mkdir(dir, 0700);
    mkdir(empty, 0755);
    /* a certificate with its key, another key, and a CA */
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "cd %s && openssl req -x509 -newkey rsa:2048 -nodes -keyout a.key -out a.crt -days 2 -subj /CN=a "
             ">/dev/null 2>&1 && openssl req -x509 -newkey rsa:2048 -nodes -keyout other.key -out other.crt "
             "-days 2 -subj /CN=o >/dev/null 2>&1 && printf 'not a certificate\\n' > junk.pem",
             tmp);
    if (system(cmd) != 0)
        return -1;
    bin_path(ctl, sizeof ctl, "sluicectl", "sluicectl");
    bin_path(swexe, sizeof swexe, "secret-watcher", "sluice-secret-watcher");
    bin_path(cwexe, sizeof cwexe, "config-watcher", "sluice-config-watcher");
    bin_path(trexe, sizeof trexe, "translator", "sluice-translator");
    sw_metrics_port = harness_free_port();
    snprintf(sw_metrics_addr, sizeof sw_metrics_addr, "127.0.0.1:%d", sw_metrics_port);
    const char *sw_args[] = {"--dir",       dir,   "--namespace",  "default",       "--debounce", "100ms",
                             "--log-level", "trace", "--metrics-addr", sw_metrics_addr, NULL};
    const char *cw_args[] = {"--dir", empty, "--log-level", "debug", NULL};
    const char *tr_args[] = {"--debounce", "50ms", NULL};
    sw = start_proc(swexe, sw_args, harness_nats_url(srv), sw_log);
    cw = start_proc(cwexe, cw_args, harness_nats_url(srv), cw_log);
    tr = start_proc(trexe, tr_args, harness_nats_url(srv), tr_log);
    setenv("NATS_URL", harness_nats_url(srv), 1);
    secrets = open_bucket(nc, SL_BUCKET_SECRETS);
    config = open_bucket(nc, SL_BUCKET_CONFIG);
    /* both APIs answer */
    for (int i = 0; i < 200; i++) {
        char *out = NULL;
        int a = run_cmd(&out, "%s create secret aws probe --access-key A --secret-key B --dry-run", ctl);
        free(out);
        int b = run_cmd(&out, "%s check --expect sluice-config-watcher", ctl);
        bool up = a == 0 && out && strstr(out, "OK    apply API");
        free(out);
        (void)b;
        if (up)
            return secrets && config ? 0 : -1;
        usleep(100000);
    }
    return -1;
}

static int group_teardown(void **state)
{
    (void)state;
    stop_proc(tr);
    stop_proc(cw);
    stop_proc(sw);
    harness_show_log(sw_log);
    sl_kv_free(secrets);
    sl_kv_free(config);
    harness_down(srv, nc);
    return 0;
}

static const char *GATEWAY_AND_VS =
    "apiVersion: gateway.solo.io/v1\nkind: Gateway\nmetadata: {name: gateway-proxy-ssl, namespace: default}\n"
    "spec:\n  bindAddress: '::'\n  bindPort: 8443\n  ssl: true\n  proxyNames: [gateway-proxy]\n"
    "  httpGateway: {}\n"
    "---\napiVersion: gloo.solo.io/v1\nkind: Upstream\nmetadata: {name: web, namespace: default}\n"
    "spec:\n  static:\n    hosts: [{addr: 127.0.0.1, port: 9000}]\n"
    "---\napiVersion: gateway.solo.io/v1\nkind: VirtualService\nmetadata: {name: secure, namespace: default}\n"
    "spec:\n  sslConfig:\n    secretRef: {name: web-tls, namespace: default}\n    sniDomains: [secure.example]\n"
    "  virtualHost:\n    domains: [secure.example]\n    routes:\n    - matchers: [{prefix: /}]\n"
    "      routeAction: {single: {upstream: {name: web, namespace: default}}}\n";

/* The translator's verdict on VirtualService default/name, waiting up to
 * 20 s for one that is not Pending: the state, or -1. */
static int vs_state(natsSubscription *sub, const char *name)
{
    int64_t end = harness_now_ms() + 20000;
    while (harness_now_ms() < end) {
        Sluice__V1__Report *r = harness_next_report(sub, name, 1000);
        if (!r)
            continue;
        int st = r->state;
        sluice__v1__report__free_unpacked(r, NULL);
        if (st != SLUICE__V1__STATUS__STATE__Pending)
            return st;
    }
    return -1;
}

/* glooctl's workflow: create secret tls, then a VirtualService that refers
 * to it is accepted and its proxy is served the secret. */
static void create_tls_then_virtual_service(void **state)
{
    (void)state;
    char *out = NULL, path[500];
    assert_int_equal(run_cmd(&out, "cd %s && %s create secret tls web-tls --certchain a.crt --privatekey a.key "
                                   "--rootca a.crt --namespace default",
                             tmp, ctl),
                     0);
    expect_out(&out, "secret.gloo.solo.io/default/web-tls created", NULL);
    Sluice__V1__Secret *s = get_secret("Secret.default.web-tls");
    assert_non_null(s);
    assert_int_equal(s->spec->kind_case, SLUICE__V1__SECRET_SPEC__KIND_TLS);
    assert_string_equal(s->spec->tls->cert_chain, file_text("a.crt"));
    assert_string_equal(s->spec->tls->private_key, file_text("a.key"));
    assert_string_equal(s->spec->tls->root_ca, file_text("a.crt"));
    assert_string_equal(sec_secret_annotation(s, SEC_SOURCE_ANNOTATION), "api:sluicectl");
    assert_null(sec_secret_annotation(s, SEC_DIR_ANNOTATION)); /* the directory sync leaves it alone */
    sec_secret_free(s);
    /* again: nothing written; glooctl's flag names work too */
    assert_int_equal(run_cmd(&out, "cd %s && %s create secret tls --name web-tls --cert a.crt --key a.key "
                                   "--root-ca a.crt",
                             tmp, ctl),
                     0);
    expect_out(&out, "secret.gloo.solo.io/default/web-tls unchanged", NULL);

    natsSubscription *sub = NULL;
    assert_int_equal(natsConnection_SubscribeSync(&sub, sl_nats_conn(nc),
                                                  "sluice.report.translator.VirtualService.default.secure"),
                     NATS_OK);
    snprintf(path, sizeof path, "%s/secure.yaml", tmp);
    write_file(path, GATEWAY_AND_VS);
    assert_int_equal(run_cmd(&out, "%s apply -f %s", ctl, path), 0);
    expect_out(&out, "virtualservice.gateway.solo.io/default/secure created", NULL);
    assert_int_equal(vs_state(sub, "secure"), SLUICE__V1__STATUS__STATE__Accepted);
    natsSubscription_Destroy(sub);
    /* the proxy is served the secret */
    int64_t end = harness_now_ms() + 20000;
    int rc = 1;
    while (harness_now_ms() < end) {
        rc = run_cmd(&out, "%s xds dump --proxy default~gateway-proxy --type secret", ctl);
        bool ok = rc == 0 && out && strstr(out, "web-tls_default") && strstr(out, "[redacted");
        free(out);
        out = NULL;
        if (ok)
            break;
        rc = 1;
        usleep(200000);
    }
    assert_int_equal(rc, 0);
    /* nothing of it in sluice_config */
    assert_int_equal(wait_key(config, "Secret.default.web-tls", false, 0, 100), 1);
}

/* Bad input: a clear error naming the flag and file, nothing stored. */
static void create_bad_input(void **state)
{
    static const struct {
        const char *args, *want;
    } bad[] = {
        {"tls t1 --certchain nosuch.crt --privatekey a.key",
         "error: --certchain nosuch.crt: cannot read: No such file or directory"},
        {"tls t1 --certchain junk.pem --privatekey a.key",
         "error: --certchain junk.pem: certificate: no PEM certificate found"},
        {"tls t1 --certchain a.crt --privatekey junk.pem", "error: --privatekey junk.pem: private key:"},
        {"tls t1 --certchain a.crt --privatekey other.key",
         "error: --privatekey other.key: private key does not match the certificate in --certchain a.crt"},
        {"tls t1 --certchain a.crt --privatekey a.key --rootca junk.pem",
         "error: --rootca junk.pem: CA bundle: no PEM certificate found"},
        {"tls t1 --certchain a.crt", "needs --certchain FILE and --privatekey FILE"},
        {"aws t1 --access-key AK", "needs --access-key and --secret-key"},
        {"header t1 --headers x-a=1,hiddenvalue", "--headers: entry 2 is not NAME=VALUE"},
        {"header 'Bad Name' --headers x=1", "name"},
        {"kerberos t1", "unknown secret type"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *out = NULL;
        assert_int_equal(run_cmd(&out, "cd %s && %s create secret %s", tmp, ctl, bad[i].args), 1);
        expect_out(&out, bad[i].want, NULL);
    }
    assert_null(get_secret("Secret.default.t1"));
}

/* aws and header secrets, glooctl's flags */
static void create_aws_and_header(void **state)
{
    (void)state;
    char *out = NULL;
    assert_int_equal(run_cmd(&out, "%s create secret aws lambda-creds -n team-a --access-key AKIAEXAMPLE "
                                   "--secret-key awsS3cretMustNotLeak --session-token tok",
                             ctl),
                     0);
    expect_out(&out, "secret.gloo.solo.io/team-a/lambda-creds created", NULL);
    Sluice__V1__Secret *s = get_secret("Secret.team-a.lambda-creds");
    assert_non_null(s);
    assert_int_equal(s->spec->kind_case, SLUICE__V1__SECRET_SPEC__KIND_AWS);
    assert_string_equal(s->spec->aws->access_key, "AKIAEXAMPLE");
    assert_string_equal(s->spec->aws->secret_key, "awsS3cretMustNotLeak");
    assert_string_equal(s->spec->aws->session_token, "tok");
    sec_secret_free(s);
    assert_int_equal(run_cmd(&out, "%s create secret header auth-headers --headers x-api-key=k1,x-tenant=t1 "
                                   "--headers x-more=m",
                             ctl),
                     0);
    expect_out(&out, "secret.gloo.solo.io/default/auth-headers created", NULL);
    s = get_secret("Secret.default.auth-headers");
    assert_non_null(s);
    assert_int_equal(s->spec->kind_case, SLUICE__V1__SECRET_SPEC__KIND_HEADER);
    assert_int_equal(s->spec->header->n_headers, 3);
    sec_secret_free(s);
    /* a dry run checks and stores nothing */
    assert_int_equal(run_cmd(&out, "%s create secret aws dry --access-key A --secret-key B --dry-run", ctl), 0);
    expect_out(&out, "secret.gloo.solo.io/default/dry created (server dry run)", NULL);
    assert_null(get_secret("Secret.default.dry"));
}

/* glooctl's create secret --dry-run -o yaml|json: the document is printed
 * and nothing is sent or stored; applied with sluicectl apply -f, it
 * stores the same secret create would have. */
static void dry_run_document_applies(void **state)
{
    (void)state;
    char *out = NULL;
    Sluice__V1__Secret *s;
    sh("%s create secret tls dry-tls --certchain a.crt --privatekey a.key --rootca a.crt -n default --dry-run "
       "-o yaml > dry-tls.yaml",
       ctl);
    sh("%s create secret aws dry-aws --access-key AKIA3 --secret-key dryS3cret --session-token tok --dry-run "
       "-o json > dry-aws.json",
       ctl);
    sh("%s create secret header dry-hdr --headers x-api-key=k1,x-tenant=t1 --dry-run -o yaml > dry-hdr.yaml", ctl);
    /* the document, in Gloo's format (tls beside metadata) */
    assert_non_null(strstr(file_text("dry-tls.yaml"), "apiVersion: gloo.solo.io/v1\nkind: Secret\nmetadata:\n"
                                                      "  name: dry-tls\n  namespace: default\ntls:\n  certChain: "));
    assert_non_null(strstr(file_text("dry-aws.json"), "\"aws\": {"));
    assert_non_null(strstr(file_text("dry-aws.json"), "\"sessionToken\": \"tok\""));
    /* nothing sent */
    assert_null(get_secret("Secret.default.dry-tls"));
    assert_null(get_secret("Secret.default.dry-aws"));
    assert_null(get_secret("Secret.default.dry-hdr"));
    /* applied: the secrets create stores */
    assert_int_equal(run_cmd(&out, "cd %s && %s apply -f dry-tls.yaml", tmp, ctl), 0);
    expect_out(&out, "secret.gloo.solo.io/default/dry-tls created", NULL);
    assert_int_equal(run_cmd(&out, "cd %s && %s apply -f dry-aws.json", tmp, ctl), 0);
    expect_out(&out, "secret.gloo.solo.io/default/dry-aws created", NULL);
    assert_int_equal(run_cmd(&out, "cd %s && %s apply -f dry-hdr.yaml", tmp, ctl), 0);
    expect_out(&out, "secret.gloo.solo.io/default/dry-hdr created", NULL);
    assert_non_null(s = get_secret("Secret.default.dry-tls"));
    assert_int_equal(s->spec->kind_case, SLUICE__V1__SECRET_SPEC__KIND_TLS);
    assert_string_equal(s->spec->tls->cert_chain, file_text("a.crt"));
    assert_string_equal(s->spec->tls->private_key, file_text("a.key"));
    assert_string_equal(s->spec->tls->root_ca, file_text("a.crt"));
    sec_secret_free(s);
    assert_non_null(s = get_secret("Secret.default.dry-aws"));
    assert_int_equal(s->spec->kind_case, SLUICE__V1__SECRET_SPEC__KIND_AWS);
    assert_string_equal(s->spec->aws->access_key, "AKIA3");
    assert_string_equal(s->spec->aws->secret_key, "dryS3cret");
    assert_string_equal(s->spec->aws->session_token, "tok");
    sec_secret_free(s);
    assert_non_null(s = get_secret("Secret.default.dry-hdr"));
    assert_int_equal(s->spec->kind_case, SLUICE__V1__SECRET_SPEC__KIND_HEADER);
    assert_int_equal(s->spec->header->n_headers, 2);
    sec_secret_free(s);
    /* create of the same secret afterwards: unchanged, so the same one */
    assert_int_equal(run_cmd(&out, "cd %s && %s create secret tls dry-tls --certchain a.crt --privatekey a.key "
                                   "--rootca a.crt",
                             tmp, ctl),
                     0);
    expect_out(&out, "secret.gloo.solo.io/default/dry-tls unchanged", NULL);
    assert_int_equal(run_cmd(&out, "%s create secret aws dry-aws --access-key AKIA3 --secret-key dryS3cret "
                                   "--session-token tok",
                             ctl),
                     0);
    expect_out(&out, "secret.gloo.solo.io/default/dry-aws unchanged", NULL);
    /* a bad -o is a usage error naming it */
    assert_int_equal(run_cmd(&out, "%s create secret aws x --access-key A --secret-key B --dry-run -o table", ctl), 1);
    expect_out(&out, "-o table", NULL);
}

/* src with every line indented by four spaces (a YAML block scalar's body). */
static void indented(char *dst, size_t cap, const char *src)
{
    size_t o = 0;
    for (const char *p = src; *p && o + 6 < cap; p++) {
        if (p == src || p[-1] == '\n')
            o += (size_t)snprintf(dst + o, cap - o, "    ");
        dst[o++] = *p;
    }
    dst[o] = 0;
}

/* sluicectl apply of a file with Gloo-format Secrets among other
 * resources: the secrets go to the secret-watcher, the rest to the apply
 * API, each with its own line numbers. */
static void apply_gloo_format_secrets(void **state)
{
    (void)state;
    char *out = NULL, path[500], text[20000];
    snprintf(path, sizeof path, "%s/mixed.yaml", tmp);
    /* as Gloo's file storage writes a Secret: tls beside metadata */
    char crt[8192], key[8192];
    indented(crt, sizeof crt, file_text("a.crt"));
    indented(key, sizeof key, file_text("a.key"));
    snprintf(text, sizeof text,
             "apiVersion: gateway.solo.io/v1\nkind: VirtualService\nmetadata: {name: plain, namespace: default}\n"
             "spec:\n  virtualHost:\n    domains: [plain.example]\n"
             "---\napiVersion: gloo.solo.io/v1\nkind: Secret\nmetadata:\n  name: gloo-tls\n  namespace: default\n"
             "tls:\n  certChain: |\n%s  privateKey: |\n%s"
             "---\napiVersion: gloo.solo.io/v1\nkind: Secret\nmetadata:\n  name: gloo-aws\n"
             "aws:\n  accessKey: AKIA2\n  secretKey: glooAwsS3cretMustNotLeak\n"
             "---\napiVersion: gateway.solo.io/v1\nkind: VirtualService\nmetadata: {name: plain2, namespace: default}\n"
             "spec:\n  virtualHost:\n    domains: [plain2.example]\n    bogus: 1\n",
             crt, key);
    write_file(path, text);
    assert_int_equal(run_cmd(&out, "%s apply -f %s", ctl, path), 1); /* plain2 is invalid */
    /* the VirtualService after the secrets keeps its own line numbers */
    unsigned bogus_line = 1;
    for (const char *p = text, *b = strstr(text, "bogus"); p < b; p++)
        bogus_line += *p == '\n';
    char want[200];
    snprintf(want, sizeof want, "mixed.yaml:%u:5: unknown field 'bogus'", bogus_line);
    expect_out(&out, "secret.gloo.solo.io/default/gloo-tls created", "secret.gloo.solo.io/default/gloo-aws created",
               "virtualservice.gateway.solo.io/default/plain created", want, NULL);
    Sluice__V1__Secret *s = get_secret("Secret.default.gloo-tls");
    assert_non_null(s);
    assert_string_equal(s->spec->tls->cert_chain, file_text("a.crt"));
    sec_secret_free(s);
    assert_non_null(s = get_secret("Secret.default.gloo-aws"));
    sec_secret_free(s);
    assert_int_equal(wait_key(config, "Secret.default.gloo-tls", false, 0, 100), 1);

    /* delete -f: the Secret documents by name to the secret-watcher, the
     * rest to the delete API */
    char del[500];
    snprintf(del, sizeof del, "%s/del.yaml", tmp);
    write_file(del, "apiVersion: gloo.solo.io/v1\nkind: Secret\nmetadata:\n  name: gloo-aws\n"
                    "aws:\n  accessKey: AKIA2\n  secretKey: glooAwsS3cretMustNotLeak\n"
                    "---\napiVersion: gateway.solo.io/v1\nkind: VirtualService\n"
                    "metadata: {name: plain, namespace: default}\n");
    assert_int_equal(run_cmd(&out, "%s delete -f %s", ctl, del), 0);
    expect_out(&out, "secret.gloo.solo.io/default/gloo-aws deleted", "virtualservice.gateway.solo.io/default/plain deleted",
               NULL);
    assert_null(get_secret("Secret.default.gloo-aws"));

    /* a Gloo-format secret whose key is not the certificate's: refused by
     * the secret-watcher, naming the document; the stored one stays */
    snprintf(text, sizeof text,
             "apiVersion: gloo.solo.io/v1\nkind: Secret\nmetadata: {name: gloo-tls}\ntls:\n  certChain: |\n%s"
             "  privateKey: |\n    -----BEGIN PRIVATE KEY-----\n    AAAA\n    -----END PRIVATE KEY-----\n",
             crt);
    write_file(path, text);
    assert_int_equal(run_cmd(&out, "%s apply -f %s", ctl, path), 1);
    expect_out(&out, "secret.gloo.solo.io/default/gloo-tls is invalid", "mixed.yaml:1: private key:", NULL);
    assert_non_null(s = get_secret("Secret.default.gloo-tls"));
    assert_string_equal(s->spec->tls->private_key, file_text("a.key"));
    sec_secret_free(s);
    /* an unknown field names itself, not its value */
    write_file(path, "apiVersion: gloo.solo.io/v1\nkind: Secret\nmetadata: {name: x}\n"
                     "tls:\n  certChain: abc\n  privKey: 'hidden-material'\n");
    assert_int_equal(run_cmd(&out, "%s apply -f %s", ctl, path), 1);
    expect_lacks(out, "hidden-material", NULL);
    expect_out(&out, "unknown field", NULL);

    /* a client sending a Secret to the config API is told where it goes */
    static const char doc[] = "apiVersion: gloo.solo.io/v1\nkind: Secret\nmetadata: {name: x}\n"
                              "tls:\n  certChain: abc\n  privateKey: hidden-material\n";
    natsMsg *reply = NULL;
    assert_int_equal(sl_envelope_request(&reply, nc, "sluice.api.apply", SL_CT_YAML, NULL, doc, sizeof doc - 1, NULL,
                                         5000),
                     SL_OK);
    Sluice__V1__ApplyResponse *r = sluice__v1__apply_response__unpack(
        NULL, (size_t)natsMsg_GetDataLength(reply), (const uint8_t *)natsMsg_GetData(reply));
    natsMsg_Destroy(reply);
    assert_non_null(r);
    assert_false(r->accepted);
    char *all = NULL;
    if (r->n_results && r->results[0]->n_errors)
        all = r->results[0]->errors[0];
    else
        all = r->error;
    assert_non_null(strstr(all, "Secrets are not stored in sluice_config"));
    assert_non_null(strstr(all, "sluice.api.secret.apply"));
    assert_null(strstr(all, "hidden-material"));
    sluice__v1__apply_response__free_unpacked(r, NULL);
}

/* delete secret NAME; a directory's secret is the directory's */
static void delete_and_ownership(void **state)
{
    (void)state;
    char *out = NULL;
    assert_int_equal(run_cmd(&out, "%s delete secret auth-headers", ctl), 0);
    expect_out(&out, "secret.gloo.solo.io/default/auth-headers deleted", NULL);
    assert_int_equal(wait_key(secrets, "Secret.default.auth-headers", false, 0, 2000), 1);
    assert_int_equal(run_cmd(&out, "%s delete secret auth-headers", ctl), 1);
    expect_out(&out, "Secret default/auth-headers not found", NULL);
    /* a secret from the watcher's directory */
    sh("cp a.crt secrets/from-dir.crt && cp a.key secrets/from-dir.key");
    assert_true(wait_key(secrets, "Secret.default.from-dir", true, 0, 10000) > 0);
    assert_int_equal(run_cmd(&out, "cd %s && %s create secret tls from-dir --certchain a.crt --privatekey a.key",
                             tmp, ctl),
                     1);
    expect_out(&out, "comes from the secret-watcher directory", "change it there", NULL);
    assert_int_equal(run_cmd(&out, "%s delete secret from-dir", ctl), 1);
    expect_out(&out, "comes from the secret-watcher directory", NULL);
    assert_true(wait_key(secrets, "Secret.default.from-dir", true, 0, 100) > 0);
    /* API secrets survive the directory's syncs */
    sh("touch secrets/from-dir.crt");
    sleep(1);
    Sluice__V1__Secret *s = get_secret("Secret.default.web-tls");
    assert_non_null(s);
    sec_secret_free(s);
}

/* Reports follow what the API did: Accepted, Rejected with the reason (no
 * material), Accepted again when the stored secret is applied unchanged,
 * withdrawn when deleted. */
static void reports_follow_the_api(void **state)
{
    (void)state;
    char *out = NULL, path[500], text[20000], crt[8192], key[8192];
    natsSubscription *sub = NULL;
    Sluice__V1__Report *r;
    assert_int_equal(natsConnection_SubscribeSync(&sub, sl_nats_conn(nc),
                                                  "sluice.report.secret-watcher.Secret.default.rep-tls"),
                     NATS_OK);
    assert_int_equal(run_cmd(&out, "cd %s && %s create secret tls rep-tls --certchain a.crt --privatekey a.key", tmp,
                             ctl),
                     0);
    free(out);
    assert_non_null(r = harness_next_report(sub, "rep-tls", 10000));
    assert_int_equal(r->state, SLUICE__V1__STATUS__STATE__Accepted);
    sluice__v1__report__free_unpacked(r, NULL);

    indented(crt, sizeof crt, file_text("a.crt"));
    indented(key, sizeof key, file_text("other.key"));
    snprintf(text, sizeof text,
             "apiVersion: gloo.solo.io/v1\nkind: Secret\nmetadata: {name: rep-tls}\ntls:\n  certChain: |\n%s"
             "  privateKey: |\n%s",
             crt, key);
    snprintf(path, sizeof path, "%s/rep.yaml", tmp);
    write_file(path, text);
    assert_int_equal(run_cmd(&out, "%s apply -f %s", ctl, path), 1);
    free(out);
    assert_non_null(r = harness_next_report(sub, "rep-tls", 10000));
    assert_int_equal(r->state, SLUICE__V1__STATUS__STATE__Rejected);
    assert_non_null(strstr(r->reason, "does not match"));
    assert_null(strstr(r->reason, "PRIVATE KEY"));
    sluice__v1__report__free_unpacked(r, NULL);

    assert_int_equal(run_cmd(&out, "cd %s && %s create secret tls rep-tls --certchain a.crt --privatekey a.key", tmp,
                             ctl),
                     0);
    expect_out(&out, "secret.gloo.solo.io/default/rep-tls unchanged", NULL);
    assert_non_null(r = harness_next_report(sub, "rep-tls", 10000));
    assert_int_equal(r->state, SLUICE__V1__STATUS__STATE__Accepted);
    sluice__v1__report__free_unpacked(r, NULL);

    assert_int_equal(run_cmd(&out, "%s delete secret rep-tls", ctl), 0);
    free(out);
    assert_non_null(r = harness_next_report(sub, "rep-tls", 10000));
    assert_true(r->withdrawn);
    sluice__v1__report__free_unpacked(r, NULL);
    natsSubscription_Destroy(sub);
}

/* No material in any log. */
static void no_material_in_logs(void **state)
{
    (void)state;
    char *out = NULL;
    const char *key = file_text("a.key");
    const char *body = strchr(key, '\n') + 1; /* the first base64 line */
    char line[80];
    snprintf(line, sizeof line, "%.*s", (int)strcspn(body, "\n"), body);
    assert_true(strlen(line) > 40);
    assert_int_equal(run_cmd(&out, "grep -l -F -e '%s' -e awsS3cretMustNotLeak -e glooAwsS3cretMustNotLeak "
                                   "-e hidden-material -e hiddenvalue %s %s %s",
                             line, sw_log, cw_log, tr_log),
                     1);
    free(out);
    assert_int_equal(run_cmd(&out, "grep -c 'secret stored' %s", sw_log), 0);
    free(out);
    /* the API's writes, deletes and refusals count with the directory's */
    double writes = 0, deletes = 0, invalid = 0;
    assert_int_equal(harness_metric_sum(sw_metrics_port, "sluice_secret_watcher_writes_total", &writes), 0);
    assert_int_equal(harness_metric_sum(sw_metrics_port, "sluice_secret_watcher_deletes_total", &deletes), 0);
    assert_int_equal(harness_metric_sum(sw_metrics_port, "sluice_secret_watcher_invalid_total", &invalid), 0);
    assert_true(writes >= 6);  /* web-tls, lambda-creds, auth-headers, gloo-tls, gloo-aws, from-dir */
    assert_true(deletes >= 2); /* auth-headers, gloo-aws */
    assert_true(invalid >= 3); /* a bad key, an unknown field, the directory's secret */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(create_tls_then_virtual_service),
        cmocka_unit_test(create_bad_input),
        cmocka_unit_test(create_aws_and_header),
        cmocka_unit_test(dry_run_document_applies),
        cmocka_unit_test(apply_gloo_format_secrets),
        cmocka_unit_test(delete_and_ownership),
        cmocka_unit_test(reports_follow_the_api),
        cmocka_unit_test(no_material_in_logs),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
