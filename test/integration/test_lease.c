/* Leases (sluice/lease.h) against a real nats-server: one holder at a
 * time, a release taken over at once, a dead holder after its TTL, a value
 * left by a dead process of this host at once, a lost lease reported; and
 * two real sluice-translator replicas: one translates, the other takes
 * over when it is killed. */
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
#include "sluice/codec.h"
#include "sluice/kinds.h"
#include "sluice/kv.h"
#include "sluice/lease.h"
#include "sluice/v1/upstream.pb-c.h"
#include "sluice/v1/virtual_service.pb-c.h"
#include "test_config_watcher_util.h"

static harness_nats *srv;
static sl_nats *nc;

static int group_setup(void **state)
{
    (void)state;
    return harness_nats_start(&srv) == 0 && harness_connect(&nc, srv) == SL_OK ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    sl_nats_close(nc, 1000);
    harness_nats_free(srv);
    return 0;
}

/* Polls sl_lease_held(l) == want for at most ms; returns the time it took
 * (ms) or -1. */
static int64_t until_held(sl_lease *l, bool want, int64_t ms)
{
    int64_t t0 = harness_now_ms();
    while (harness_now_ms() - t0 <= ms) {
        if (sl_lease_held(l) == want)
            return harness_now_ms() - t0;
        usleep(20000);
    }
    return -1;
}

typedef struct events {
    int acquired, lost;
} events;

static void on_acquired(void *ud) { __atomic_add_fetch(&((events *)ud)->acquired, 1, __ATOMIC_SEQ_CST); }
static void on_lost(void *ud) { __atomic_add_fetch(&((events *)ud)->lost, 1, __ATOMIC_SEQ_CST); }

/* e's acquisitions once they reach want (up to 2 s): the callback runs on
 * the lease's thread just after sl_lease_held() turns true. */
static int acquired(events *e, int want)
{
    for (int i = 0; i < 200 && __atomic_load_n(&e->acquired, __ATOMIC_SEQ_CST) < want; i++)
        usleep(10000);
    return __atomic_load_n(&e->acquired, __ATOMIC_SEQ_CST);
}

static sl_lease *start(const char *name, events *ev)
{
    sl_lease *l = NULL;
    sl_lease_opts o = {.name = name, .service = "test", .ttl_ms = 2000, .on_acquired = on_acquired,
                       .on_lost = on_lost, .ud = ev};
    assert_int_equal(sl_lease_start(&l, nc, &o), SL_OK);
    return l;
}

/* A pid of this host that no longer runs. */
static pid_t dead_pid(void)
{
    pid_t p = fork();
    if (p == 0)
        _exit(0);
    waitpid(p, NULL, 0);
    return p;
}

/* Waits until the lease key has been written n more times (renewals of
 * its holder), as a positive signal in place of a fixed sleep. */
static void wait_renewals(const char *key, int n)
{
    sl_kv *kv = NULL;
    uint64_t last = 0;
    int seen = -1;
    assert_int_equal(sl_kv_bind(&kv, nc, SL_LEASES_BUCKET), SL_OK);
    for (int64_t end = harness_now_ms() + 15000; seen < n && harness_now_ms() < end; usleep(20000)) {
        sl_kv_entry e = {0};
        if (sl_kv_get(&e, kv, key) != SL_OK)
            continue;
        if (e.revision != last) {
            last = e.revision;
            seen++;
        }
        sl_kv_entry_deinit(&e);
    }
    sl_kv_free(kv);
    assert_true(seen >= n);
}

static void one_holder_and_takeovers(void **state)
{
    (void)state;
    events e1 = {0}, e2 = {0}, e3 = {0}, e4 = {0};
    sl_lease *a = start("t.one", &e1);
    assert_true(until_held(a, true, 3000) >= 0);
    assert_int_equal(acquired(&e1, 1), 1);
    sl_lease *b = start("t.one", &e2);
    /* a renews every TTL/3: b never gets it. Proof after a positive
     * signal: three renewals by a (longer than a TTL) seen in the KV. */
    wait_renewals("t.one", 3);
    assert_false(sl_lease_held(b));
    assert_true(sl_lease_held(a));
    assert_int_equal(e2.acquired, 0);

    /* Released: taken over at once (b watches the key), not after a poll. */
    sl_lease_free(a);
    int64_t took = until_held(b, true, 3000);
    assert_true(took >= 0);
    assert_true(took < 400);
    assert_int_equal(acquired(&e2, 1), 1);

    /* Someone else writes the key: b loses it at its next renewal. */
    sl_kv *kv = NULL;
    assert_int_equal(sl_kv_bind(&kv, nc, SL_LEASES_BUCKET), SL_OK);
    assert_int_equal(sl_kv_put(NULL, kv, "t.one", "{}", 2), SL_OK);
    assert_true(until_held(b, false, 2000) >= 0);
    for (int i = 0; i < 100 && !e2.lost; i++)
        usleep(20000);
    assert_int_equal(e2.lost, 1);
    sl_lease_free(b);

    /* Left by a process of this host that is gone: taken over at once. */
    char host[256] = "", v[512];
    gethostname(host, sizeof host - 1);
    snprintf(v, sizeof v,
             "{\"host\":\"%s\",\"instance\":\"old\",\"pid\":%d,\"processStart\":12345,\"service\":\"test\"}",
             host, (int)dead_pid());
    assert_int_equal(sl_kv_put(NULL, kv, "t.two", v, strlen(v)), SL_OK);
    sl_lease *c = start("t.two", &e3);
    took = until_held(c, true, 3000);
    assert_true(took >= 0 && took < 1000);
    sl_lease_free(c);

    /* Held by another host that stopped renewing: taken after its TTL. */
    snprintf(v, sizeof v, "{\"host\":\"elsewhere\",\"instance\":\"x\",\"pid\":1,\"service\":\"test\"}");
    assert_int_equal(sl_kv_put(NULL, kv, "t.three", v, strlen(v)), SL_OK);
    int64_t t0 = harness_now_ms();
    sl_lease *d = start("t.three", &e4);
    assert_true(until_held(d, true, 6000) >= 0);
    int64_t waited = harness_now_ms() - t0;
    assert_true(waited >= 1000); /* not before its value expired (TTL 2 s) */
    sl_lease_free(d);
    sl_kv_free(kv);
}

/* Whether log contains text. */
static bool log_has(const char *log, const char *text)
{
    size_t len = 0;
    char *s = NULL;
    FILE *f = fopen(log, "r");
    if (!f)
        return false;
    s = malloc(1 << 20);
    if (s)
        len = fread(s, 1, (1 << 20) - 1, f);
    fclose(f);
    if (!s)
        return false;
    s[len] = '\0';
    bool found = strstr(s, text) != NULL;
    free(s);
    return found;
}

static bool wait_log(const char *log, const char *text, int64_t ms)
{
    for (int64_t t0 = harness_now_ms(); harness_now_ms() - t0 <= ms; usleep(50000))
        if (log_has(log, text))
            return true;
    return false;
}

/* Puts the resource of kind (its message desc) default/<name>, given as
 * YAML, into the config bucket. */
static void put_yaml(const ProtobufCMessageDescriptor *desc, const char *kind, const char *name, const char *yaml)
{
    sl_codec_options o = {.root_name = kind};
    sl_kv *kv = NULL;
    sl_kv_config cfg;
    sl_kv_config_init(&cfg, SL_BUCKET_CONFIG);
    assert_int_equal(sl_kv_open(&kv, nc, &cfg), SL_OK);
    char key[128];
    snprintf(key, sizeof key, "%s.default.%s", kind, name);
    assert_int_equal(harness_kv_put_yaml(kv, key, desc, yaml, &o), SL_OK);
    sl_kv_free(kv);
}

/* Puts Upstream default/<name> and a VirtualService routing to it: a
 * change to what every proxy is served (an upstream no route reaches is
 * in no proxy), so every translator commits it. */
static void put_routed_upstream(const char *name, int port)
{
    char yaml[512];
    snprintf(yaml, sizeof yaml,
             "metadata: {name: %s, namespace: default}\nspec: {static: {hosts: [{addr: 127.0.0.1, port: %d}]}}\n",
             name, port);
    put_yaml(&sluice__v1__upstream__descriptor, "Upstream", name, yaml);
    snprintf(yaml, sizeof yaml,
             "metadata: {name: %s, namespace: default}\nspec:\n  virtualHost:\n    domains: [%s.example]\n"
             "    routes:\n    - matchers: [{prefix: /}]\n      routeAction: {single: {upstream: {name: %s}}}\n",
             name, name, name);
    put_yaml(&sluice__v1__virtual_service__descriptor, "VirtualService", name, yaml);
}

/* A holder that stalls (SIGSTOP) past its TTL loses the lease to the
 * other replica; when it resumes with a change to translate, it writes
 * nothing and exits 1 (fencing), while the new holder translates. */
static void stalled_holder_is_fenced(void **state)
{
    (void)state;
    char exe[512], la[400], lb[400];
    bin_path(exe, sizeof exe, "translator", "sluice-translator");
    snprintf(la, sizeof la, "%s/fence-a.log", harness_nats_dir(srv));
    snprintf(lb, sizeof lb, "%s/fence-b.log", harness_nats_dir(srv));
    /* a bucket of its own, outside the translator role's permissions: admin */
    char admin[200] = "";
    if (harness_auth_dir())
        snprintf(admin, sizeof admin, "%s/admin.nk", harness_auth_dir());
    const char *args[] = {"--lease-ttl", "2s", "--xds-bucket", "fence_xds", "--log-level", "debug",
                          admin[0] ? "--nats-nkey" : NULL, admin, NULL};
    pid_t a = start_proc(exe, args, harness_nats_url(srv), la);
    assert_true(wait_log(la, "msg=\"started\"", 10000));
    assert_true(wait_log(la, "msg=\"committed\"", 10000));
    pid_t b = start_proc(exe, args, harness_nats_url(srv), lb);
    assert_true(wait_log(lb, "waiting for the lease", 10000));

    kill(a, SIGSTOP); /* a's process still exists: b waits for the TTL */
    assert_true(wait_log(lb, "msg=\"started\"", 8000));
    put_routed_upstream("fenced", 8081); /* b translates it; a will see it on resume */
    assert_true(wait_log(lb, "msg=\"committed\"", 5000));
    kill(a, SIGCONT);
    int st = 0;
    for (int i = 0; i < 100 && waitpid(a, &st, WNOHANG) == 0; i++)
        usleep(50000);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 1);
    assert_true(log_has(la, "lease lost") || log_has(la, "not writing: this replica does not hold the lease"));
    /* a committed exactly once: before it stalled. */
    size_t len = 0;
    char *text = NULL;
    FILE *f = fopen(la, "r");
    assert_non_null(f);
    text = calloc(1, 1 << 20);
    len = fread(text, 1, (1 << 20) - 1, f);
    fclose(f);
    (void)len;
    int commits = 0;
    for (const char *p = text; (p = strstr(p, "msg=\"committed\"")); p++)
        commits++;
    free(text);
    assert_int_equal(commits, 1);
    assert_int_equal(stop_proc(b), 0);
}

static void translator_replicas(void **state)
{
    (void)state;
    char exe[512], la[400], lb[400], lc[400];
    bin_path(exe, sizeof exe, "translator", "sluice-translator");
    snprintf(la, sizeof la, "%s/tr-a.log", harness_nats_dir(srv));
    snprintf(lb, sizeof lb, "%s/tr-b.log", harness_nats_dir(srv));
    snprintf(lc, sizeof lc, "%s/tr-c.log", harness_nats_dir(srv));
    const char *args[] = {"--lease-ttl", "2s", "--log-level", "debug", NULL};
    const char *args10[] = {"--lease-ttl", "10s", "--log-level", "debug", NULL};

    pid_t a = start_proc(exe, args, harness_nats_url(srv), la);
    assert_true(wait_log(la, "msg=\"started\"", 10000));
    pid_t b = start_proc(exe, args, harness_nats_url(srv), lb);
    assert_true(wait_log(lb, "waiting for the lease", 10000));
    wait_renewals("translator.sluice_xds", 3); /* a holds on, longer than a TTL */
    assert_false(log_has(lb, "msg=\"started\""));

    /* kill -9 the one translating: the other, on the same host, sees at
     * its next poll (every TTL/4) that the holder's process is gone and
     * starts without waiting for the value to expire. */
    kill(a, SIGKILL);
    waitpid(a, NULL, 0);
    int64_t t0 = harness_now_ms();
    assert_true(wait_log(lb, "msg=\"started\"", 8000));
    int64_t took = harness_now_ms() - t0;
    print_message("takeover after kill -9 of the holder: %lld ms (TTL 2 s)\n", (long long)took);
    assert_true(took < 2000);

    /* Graceful stop: released, the next one starts at once. */
    pid_t c = start_proc(exe, args10, harness_nats_url(srv), lc);
    assert_true(wait_log(lc, "waiting for the lease", 10000));
    /* The bucket's values live 2 s (the first lease made it): that counts. */
    assert_true(log_has(lc, "the leases bucket has another TTL"));
    assert_int_equal(stop_proc(b), 0);
    assert_true(log_has(lb, "lease released"));
    t0 = harness_now_ms();
    assert_true(wait_log(lc, "msg=\"started\"", 3000));
    print_message("takeover after a graceful stop: %lld ms\n", (long long)(harness_now_ms() - t0));

    /* kill -9 and start again on this host (as a supervisor does): the
     * value its dead predecessor left is taken over at once, not after the
     * 10 s TTL. */
    kill(c, SIGKILL);
    waitpid(c, NULL, 0);
    t0 = harness_now_ms();
    pid_t d = start_proc(exe, args10, harness_nats_url(srv), lc);
    assert_true(wait_log(lc, "taking over the lease a dead process of this host left", 5000));
    took = harness_now_ms() - t0;
    print_message("restart after kill -9: translating after %lld ms (TTL 10 s)\n", (long long)took);
    assert_true(took < 5000);
    assert_int_equal(stop_proc(d), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(one_holder_and_takeovers),
        cmocka_unit_test(translator_replicas),
        cmocka_unit_test(stalled_holder_is_fenced),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
