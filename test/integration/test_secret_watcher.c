/* sluice-secret-watcher end to end: the real binary, a real nats-server, a
 * directory of PEM files made with the openssl CLI.
 *
 * PEM pair -> KV; rotating the certificate -> KV updated; an invalid
 * rewrite -> the old secret stays and a Rejected report names the file;
 * deleting the files -> the secret is deleted; no key material in the logs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"
#include "sluice/kinds.h"
#include "sluice/kv.h"
#include "sluice/log.h"
#include "sluice/v1/events.pb-c.h"
#include "sluice/v1/secret.pb-c.h"

static harness_nats *srv;
static sl_nats *nc;
static sl_kv *kv;
static natsSubscription *reports;
static pid_t watcher = -1;
static char dir[512], logpath[600];

static void sh(const char *cmd)
{
    char full[4096];
    snprintf(full, sizeof full, "cd %s && %s", dir, cmd);
    if (system(full) != 0)
        fail_msg("command failed: %s", cmd);
}

static void start_watcher(void)
{
    char bin[1024];
    harness_binary(bin, sizeof bin, "services/secret-watcher/sluice-secret-watcher");
    const char *const argv[] = {bin, "--nats-url", harness_nats_url(srv), "--dir", dir, "--namespace", "gw",
                                "--debounce", "200ms", "--log-level", "trace", NULL};
    pid_t pid = harness_spawn(argv, logpath);
    assert_true(pid > 0);
    watcher = pid;
}

/* The stored secret, or NULL. */
static Sluice__V1__Secret *get_secret(const char *key)
{
    return (Sluice__V1__Secret *)harness_kv_get_pb(kv, key, &sluice__v1__secret__descriptor);
}

static char *file_text(const char *name)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    static char buf[3][16384];
    static int k;
    char *b = buf[k++ % 3];
    size_t n = fread(b, 1, sizeof buf[0] - 1, f);
    b[n] = 0;
    fclose(f);
    return b;
}

/* Waits until the stored cert chain equals the file's content. */
static void wait_cert(const char *key, const char *crt_file)
{
    const char *want = file_text(crt_file);
    int64_t end = harness_now_ms() + 10000;
    while (harness_now_ms() < end) {
        Sluice__V1__Secret *s = get_secret(key);
        bool ok = s && s->spec && s->spec->kind_case == SLUICE__V1__SECRET_SPEC__KIND_TLS &&
                  !strcmp(s->spec->tls->cert_chain, want);
        if (s)
            sluice__v1__secret__free_unpacked(s, NULL);
        if (ok)
            return;
        usleep(50 * 1000);
    }
    fail_msg("%s never held %s", key, crt_file);
}

/* Waits until key is no longer stored. */
static void wait_gone(const char *key)
{
    Sluice__V1__Secret *s;
    int64_t end = harness_now_ms() + 10000;
    while ((s = get_secret(key)) != NULL && harness_now_ms() < end) {
        sluice__v1__secret__free_unpacked(s, NULL);
        usleep(50 * 1000);
    }
    if (s)
        sluice__v1__secret__free_unpacked(s, NULL);
    assert_null(s);
}

/* The next Rejected report on Secret name (whose reason contains want,
 * when not NULL), skipping the others; fails after 10 s. Free it. */
static Sluice__V1__Report *wait_rejected(const char *name, const char *want)
{
    int64_t end = harness_now_ms() + 10000;
    while (harness_now_ms() < end) {
        natsMsg *m = NULL;
        if (natsSubscription_NextMsg(&m, reports, 500) != NATS_OK)
            continue;
        Sluice__V1__Report *x = sluice__v1__report__unpack(NULL, (size_t)natsMsg_GetDataLength(m),
                                                           (const uint8_t *)natsMsg_GetData(m));
        natsMsg_Destroy(m);
        if (x && x->state == SLUICE__V1__STATUS__STATE__Rejected && x->resource &&
            !strcmp(x->resource->name, name) && (!want || strstr(x->reason, want)))
            return x;
        if (x)
            sluice__v1__report__free_unpacked(x, NULL);
    }
    fail_msg("no Rejected report on Secret %s%s%s", name, want ? " with " : "", want ? want : "");
    return NULL;
}

static void make_cert(const char *name, const char *cn)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "openssl req -x509 -newkey rsa:2048 -nodes -keyout %s.key.new -out %s.crt.new -days 2 -subj /CN=%s "
             ">/dev/null 2>&1",
             name, name, cn);
    sh(cmd);
}

/* The key material lines (base64 body) of a PEM file. */
static bool log_contains_pem_body(const char *pem)
{
    FILE *f = fopen(logpath, "r");
    if (!f)
        return false;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *log = calloc(1, (size_t)sz + 1);
    if (!log || fread(log, 1, (size_t)sz, f) != (size_t)sz) {
        fclose(f);
        free(log);
        return false;
    }
    fclose(f);
    bool found = false;
    char line[256];
    const char *p = pem;
    while (*p && !found) {
        size_t n = strcspn(p, "\n");
        snprintf(line, sizeof line, "%.*s", (int)(n < 255 ? n : 255), p);
        if (strlen(line) >= 40 && strncmp(line, "-----", 5) != 0 && strstr(log, line))
            found = true;
        p += n + (p[n] ? 1 : 0);
    }
    free(log);
    return found;
}

static void secret_watcher_end_to_end(void **state)
{
    (void)state;
    /* a pair before start */
    make_cert("web", "web-1");
    sh("mv web.key.new web.key && mv web.crt.new web.crt");
    start_watcher();
    wait_cert("Secret.gw.web", "web.crt");
    char *key1 = strdup(file_text("web.key"));
    Sluice__V1__Secret *s = get_secret("Secret.gw.web");
    assert_string_equal(s->spec->tls->private_key, key1);
    assert_string_equal(s->metadata->name, "web");
    assert_string_equal(s->metadata->namespace_, "gw");
    sluice__v1__secret__free_unpacked(s, NULL);

    /* the bucket keeps one value per key: a rotated key does not linger */
    {
        jsStreamInfo *si = NULL;
        assert_int_equal(js_GetStreamInfo(&si, sl_nats_js(nc), "KV_" SL_BUCKET_SECRETS, NULL, NULL), NATS_OK);
        assert_int_equal(si->Config->MaxMsgsPerSubject, 1);
        jsStreamInfo_Destroy(si);
    }

    /* rotation: key then cert, as a rotation tool writes them */
    make_cert("web", "web-2");
    sh("mv web.key.new web.key && sleep 0.05 && mv web.crt.new web.crt");
    wait_cert("Secret.gw.web", "web.crt");
    char *key2 = strdup(file_text("web.key"));
    s = get_secret("Secret.gw.web");
    assert_string_equal(s->spec->tls->private_key, key2);
    sluice__v1__secret__free_unpacked(s, NULL);
    { /* the first key is gone from the bucket's history: one value per key */
        jsStreamInfo *si = NULL;
        assert_int_equal(js_GetStreamInfo(&si, sl_nats_js(nc), "KV_" SL_BUCKET_SECRETS, NULL, NULL), NATS_OK);
        assert_int_equal(si->State.Msgs, si->State.NumSubjects);
        jsStreamInfo_Destroy(si);
    }

    /* the same bytes again: no new revision */
    sl_kv_entry e = {0};
    assert_int_equal(sl_kv_get(&e, kv, "Secret.gw.web"), SL_OK);
    uint64_t rev = e.revision;
    sl_kv_entry_deinit(&e);
    sh("touch web.crt web.key");
    /* First a positive signal: a new pair (probe) is stored by a sync that
     * started after the touch, and its removal is seen by a later sync, so
     * by then every sync that saw the touch has finished. */
    make_cert("probe", "probe");
    sh("mv probe.key.new probe.key && mv probe.crt.new probe.crt");
    wait_cert("Secret.gw.probe", "probe.crt");
    sh("rm -f probe.crt probe.key");
    wait_gone("Secret.gw.probe");
    assert_int_equal(sl_kv_get(&e, kv, "Secret.gw.web"), SL_OK);
    assert_int_equal(e.revision, rev);
    sl_kv_entry_deinit(&e);

    /* a broken certificate: the stored one stays, a report names the file */
    sh("cp web.crt web.crt.good && printf -- '-----BEGIN CERTIFICATE-----\\ngarbage\\n-----END "
       "CERTIFICATE-----\\n' > web.crt");
    Sluice__V1__Report *r = wait_rejected("web", NULL);
    assert_string_equal(r->resource->kind, "Secret");
    assert_non_null(strstr(r->reason, "web.crt"));
    assert_non_null(strstr(r->reason, "certificate"));
    sluice__v1__report__free_unpacked(r, NULL);
    wait_cert("Secret.gw.web", "web.crt.good");

    /* a key that does not match: also kept */
    make_cert("x", "x");
    sh("cp web.crt.good web.crt && cp x.key.new web.key");
    /* the sync that saw it reported it */
    sluice__v1__report__free_unpacked(wait_rejected("web", "does not match"), NULL);
    s = get_secret("Secret.gw.web");
    assert_non_null(s);
    assert_string_equal(s->spec->tls->private_key, key2);
    sluice__v1__secret__free_unpacked(s, NULL);

    /* deleting the files deletes the secret */
    sh("rm -f web.crt web.key web.crt.good x.key.new x.crt.new");
    int64_t end = harness_now_ms() + 10000;
    while (harness_now_ms() < end && (s = get_secret("Secret.gw.web")) != NULL) {
        sluice__v1__secret__free_unpacked(s, NULL);
        usleep(50 * 1000);
    }
    assert_null(get_secret("Secret.gw.web"));

    /* a YAML secret (Gloo's layout) */
    sh("printf 'apiVersion: gloo.solo.io/v1\\nkind: Secret\\nmetadata:\\n  name: creds\\n"
       "aws:\\n  accessKey: AKIAEXAMPLE\\n  secretKey: s3cr3tValueThatMustNotLeak0123456789abcdef\\n' > creds.yaml");
    end = harness_now_ms() + 10000;
    while (harness_now_ms() < end && !(s = get_secret("Secret.gw.creds")))
        usleep(50 * 1000);
    assert_non_null(s);
    assert_int_equal(s->spec->kind_case, SLUICE__V1__SECRET_SPEC__KIND_AWS);
    sluice__v1__secret__free_unpacked(s, NULL);

    /* graceful stop */
    int ws = harness_stop(watcher, SIGTERM);
    watcher = -1;
    assert_true(WIFEXITED(ws));
    assert_int_equal(WEXITSTATUS(ws), 0);

    /* no secret material anywhere in the logs (trace level) */
    assert_false(log_contains_pem_body(key1));
    assert_false(log_contains_pem_body(key2));
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "grep -q -e s3cr3tValue -e 'PRIVATE KEY' %s", logpath);
    assert_int_not_equal(system(cmd), 0);
    snprintf(cmd, sizeof cmd, "grep -q 'secret stored' %s", logpath);
    assert_int_equal(system(cmd), 0); /* the log is not empty */
    free(key1);
    free(key2);
}

static int setup(void **state)
{
    (void)state;
    sl_log_set_level(SL_LOG_WARN);
    if (harness_up(&srv, &nc) != 0)
        return -1;
    snprintf(dir, sizeof dir, "%s/secrets", harness_nats_dir(srv));
    snprintf(logpath, sizeof logpath, "%s/secret-watcher.log", harness_nats_dir(srv));
    char cmd[600];
    snprintf(cmd, sizeof cmd, "mkdir -p %s", dir);
    if (system(cmd) != 0)
        return -1;
    sl_kv_config c;
    sl_kv_config_init(&c, SL_BUCKET_SECRETS);
    c.history = 5; /* as an older Sluice made it: the watcher brings it to 1 */
    if (sl_kv_open(&kv, nc, &c) != SL_OK)
        return -1;
    if (natsConnection_SubscribeSync(&reports, sl_nats_conn(nc), "sluice.report.secret-watcher.>") != NATS_OK)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (watcher > 0)
        harness_stop(watcher, SIGKILL);
    harness_show_log(logpath);
    natsSubscription_Destroy(reports);
    sl_kv_free(kv);
    harness_down(srv, nc);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(secret_watcher_end_to_end),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
