/* --kv-replicas / SLUICE_KV_REPLICAS against a real three-node nats-server
 * cluster: bad values are usage errors (exit 2); sluice-config-watcher
 * (flag) and sluice-reporter (environment) create their buckets and the
 * report stream with three replicas, and the reporter scales an existing
 * one-replica bucket up; a resource survives kill -9 of its stream's
 * leader (read through the other two, and `sluicectl apply` still works);
 * the killed server comes back, catches up, and then carries the bucket
 * when another server is killed. */
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
#include "sluice/kinds.h"
#include "sluice/kv.h"
#include "test_config_watcher_util.h"

static harness_cluster *cl;
static sl_nats *nc;
static char dir[300], cw_exe[512], rep_exe[512], ctl_exe[512], cw_log[320], rep_log[320];
static pid_t cw, rep;

static const char u1_doc[] =
    "apiVersion: gloo.solo.io/v1\nkind: Upstream\nmetadata:\n  name: u1\nspec:\n"
    "  static:\n    hosts:\n    - addr: 127.0.0.1\n      port: 8080\n";

static const char *const u_fmt =
    "apiVersion: gloo.solo.io/v1\nkind: Upstream\nmetadata:\n  name: %s\nspec:\n"
    "  static:\n    hosts:\n    - addr: 127.0.0.1\n      port: 8081\n";

/* Connects to the listed servers only. */
static sl_nats *connect_urls(const char *urls)
{
    sl_nats_settings s;
    sl_nats *c = NULL;

    sl_nats_settings_init(&s);
    harness_settings(&s, urls);
    sl_nats_settings_set(&s, "nats-name", "sluice-test");
    s.startup_deadline_ms = 10000;
    s.reconnect_min_ms = 50;
    s.reconnect_max_ms = 250;
    if (sl_nats_connect(&c, &s) != SL_OK)
        c = NULL;
    sl_nats_settings_deinit(&s);
    return c;
}

/* The URLs of every node but skip (-1: all). */
static void urls_but(char *buf, size_t n, int skip)
{
    size_t len = 0;

    buf[0] = '\0';
    for (int i = 0; i < 3; i++)
        if (i != skip)
            len += (size_t)snprintf(buf + len, n - len, "%s%s", len ? "," : "",
                                    harness_nats_url(harness_cluster_node(cl, i)));
}

/* Stream info of stream through c; NULL while there is none (or no
 * leader to answer). Free with jsStreamInfo_Destroy(). */
static jsStreamInfo *stream_info(sl_nats *c, const char *stream)
{
    jsStreamInfo *si = NULL;
    jsOptions o;

    jsOptions_Init(&o);
    o.Wait = 2000;
    if (js_GetStreamInfo(&si, sl_nats_js(c), stream, &o, NULL) != NATS_OK)
        return NULL;
    return si;
}

/* Waits until stream has want replicas, a leader and every other peer
 * current; returns the leader's node index, or -1 on timeout. */
static int wait_stream_replicas(sl_nats *c, const char *stream, int64_t want, int64_t timeout_ms)
{
    int64_t end = harness_now_ms() + timeout_ms;
    int leader = -1;

    do {
        jsStreamInfo *si = stream_info(c, stream);
        if (si != NULL && si->Config->Replicas == want && si->Cluster != NULL &&
            si->Cluster->Leader != NULL && si->Cluster->ReplicasLen == want - 1) {
            bool current = true;
            for (int i = 0; i < si->Cluster->ReplicasLen; i++)
                current = current && si->Cluster->Replicas[i]->Current &&
                          !si->Cluster->Replicas[i]->Offline;
            if (current)
                leader = harness_cluster_find(cl, si->Cluster->Leader);
        }
        jsStreamInfo_Destroy(si);
        if (leader >= 0)
            return leader;
        usleep(100000);
    } while (harness_now_ms() < end);
    return -1;
}

/* Waits until node `who` is a current peer of stream (or its leader) with
 * nothing left to catch up. */
static bool wait_caught_up(sl_nats *c, const char *stream, int who, int64_t timeout_ms)
{
    const char *name = harness_nats_server_name(harness_cluster_node(cl, who));
    int64_t end = harness_now_ms() + timeout_ms;

    do {
        jsStreamInfo *si = stream_info(c, stream);
        bool ok = false;
        if (si != NULL && si->Cluster != NULL && si->Cluster->Leader != NULL) {
            ok = strcmp(si->Cluster->Leader, name) == 0;
            for (int i = 0; !ok && i < si->Cluster->ReplicasLen; i++) {
                const jsPeerInfo *p = si->Cluster->Replicas[i];
                ok = strcmp(p->Name, name) == 0 && p->Current && !p->Offline && p->Lag == 0;
            }
        }
        jsStreamInfo_Destroy(si);
        if (ok)
            return true;
        usleep(100000);
    } while (harness_now_ms() < end);
    return false;
}

/* Binds to bucket, retrying while it does not exist yet. */
static sl_kv *bind_bucket(sl_nats *c, const char *bucket, int64_t timeout_ms)
{
    int64_t end = harness_now_ms() + timeout_ms;
    sl_kv *kv = NULL;

    do {
        if (sl_kv_bind(&kv, c, bucket) == SL_OK)
            return kv;
        usleep(100000);
    } while (harness_now_ms() < end);
    return NULL;
}

/* Connects through urls only (*two, to close) and binds the config bucket
 * there, waiting up to 20 s for it to have a leader. */
static sl_kv *config_through(sl_nats **two, const char *urls)
{
    *two = connect_urls(urls);
    assert_non_null(*two);
    sl_kv *b = bind_bucket(*two, SL_BUCKET_CONFIG, 20000);
    assert_non_null(b);
    return b;
}

/* `sluicectl apply` of one upstream through the servers in urls, retried
 * while the cluster and the config-watcher recover. */
static bool apply_upstream(const char *urls, const char *name, int64_t timeout_ms)
{
    char path[400], text[512];
    int64_t end = harness_now_ms() + timeout_ms;

    snprintf(path, sizeof(path), "%s/../%s.yaml", dir, name);
    snprintf(text, sizeof(text), u_fmt, name);
    write_file(path, text);
    do {
        char *out = NULL;
        int rc = run_cmd(&out, "%s --nats-url %s --request-timeout 5s apply -f %s", ctl_exe, urls,
                         path);
        bool ok = rc == 0 && out != NULL && strstr(out, name) != NULL;
        if (!ok)
            fprintf(stderr, "apply %s: rc=%d %s", name, rc, out != NULL ? out : "");
        free(out);
        if (ok)
            return true;
        usleep(500000);
    } while (harness_now_ms() < end);
    return false;
}

static int group_setup(void **state)
{
    (void)state;
    bin_path(cw_exe, sizeof(cw_exe), "config-watcher", "sluice-config-watcher");
    bin_path(rep_exe, sizeof(rep_exe), "reporter", "sluice-reporter");
    bin_path(ctl_exe, sizeof(ctl_exe), "sluicectl", "sluicectl");
    if (harness_cluster_start(&cl, 3) != 0)
        return -1;
    nc = connect_urls(harness_cluster_urls(cl));
    if (nc == NULL)
        return -1;
    snprintf(dir, sizeof(dir), "%s/config", harness_nats_dir(harness_cluster_node(cl, 0)));
    snprintf(cw_log, sizeof(cw_log), "%s/config-watcher.log",
             harness_nats_dir(harness_cluster_node(cl, 0)));
    snprintf(rep_log, sizeof(rep_log), "%s/reporter.log",
             harness_nats_dir(harness_cluster_node(cl, 0)));
    mkdir(dir, 0755);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    if (cw > 0)
        stop_proc(cw);
    if (rep > 0)
        stop_proc(rep);
    sl_nats_close(nc, 1000);
    if (getenv("SLUICE_TEST_KEEP_LOGS") == NULL) {
        char *out = NULL;
        run_cmd(&out, "tail -n 30 %s %s", cw_log, rep_log);
        if (out != NULL)
            fprintf(stderr, "%s", out);
        free(out);
    }
    harness_cluster_free(cl);
    sl_nats_shutdown(5000);
    return 0;
}

/* Out of range and non-numbers: exit 2, naming the flag or variable and
 * the value. */
static void bad_values(void **state)
{
    (void)state;
    char *out = NULL;

    assert_int_equal(run_cmd(&out, "%s --kv-replicas 6 --dir %s", cw_exe, dir), 2);
    expect_out(&out, "--kv-replicas: bad value '6'", NULL);
    assert_int_equal(run_cmd(&out, "%s --kv-replicas=0", rep_exe), 2);
    expect_out(&out, "--kv-replicas: bad value '0'", NULL);
    assert_int_equal(run_cmd(&out, "SLUICE_KV_REPLICAS=three %s", rep_exe), 2);
    expect_out(&out, "SLUICE_KV_REPLICAS: bad value 'three'", NULL);
    assert_int_equal(run_cmd(&out, "%s --kv-replicas 9 get vs", ctl_exe), 1);
    expect_out(&out, "--kv-replicas: bad value '9'", NULL);
}

static void replicated_buckets_survive_a_server(void **state)
{
    (void)state;
    char a[400], urls[256];
    sl_kv *kv = NULL, *status = NULL;
    sl_kv_config kc;
    int leader, other;

    /* An existing one-replica bucket, as Sluice made them before the flag:
     * the reporter scales it up. */
    sl_kv_config_init(&kc, SL_BUCKET_STATUS);
    kc.replicas = 1;
    kc.republish_keys = ">";
    kc.republish_subject = "sluice.status.>";
    assert_int_equal(sl_kv_open(&status, nc, &kc), SL_OK);
    sl_kv_free(status);
    assert_true(wait_stream_replicas(nc, "KV_sluice_status", 1, 5000) >= 0);

    snprintf(a, sizeof(a), "%s/a.yaml", dir);
    write_file(a, u1_doc);
    {
        const char *args[] = {"--dir", dir, "--debounce", "50ms", "--kv-replicas", "3",
                              "--log-level", "debug", NULL};
        cw = start_proc(cw_exe, args, harness_cluster_urls(cl), cw_log);
    }
    setenv("SLUICE_KV_REPLICAS", "3", 1);
    rep = start_proc(rep_exe, NULL, harness_cluster_urls(cl), rep_log);
    unsetenv("SLUICE_KV_REPLICAS");

    kv = bind_bucket(nc, SL_BUCKET_CONFIG, 20000);
    assert_non_null(kv);
    assert_true(wait_key(kv, "Upstream.default.u1", true, 0, 20000) > 0);
    sl_kv_free(kv);
    kv = NULL;

    /* Every bucket and stream the services made or found has 3 replicas,
     * all current. */
    leader = wait_stream_replicas(nc, "KV_sluice_config", 3, 20000);
    assert_true(leader >= 0);
    assert_true(wait_stream_replicas(nc, "KV_" SL_SERVICES_BUCKET, 3, 20000) >= 0);
    assert_true(wait_stream_replicas(nc, "KV_sluice_status", 3, 20000) >= 0);
    assert_true(wait_stream_replicas(nc, "SLUICE_REPORTS", 3, 20000) >= 0);

    /* kill -9 the server leading the config bucket's stream. */
    fprintf(stderr, "killing %s (leader of KV_sluice_config)\n",
            harness_nats_server_name(harness_cluster_node(cl, leader)));
    assert_int_equal(harness_nats_kill(harness_cluster_node(cl, leader)), 0);
    urls_but(urls, sizeof(urls), leader);
    {
        /* The resource, through the other two only. */
        sl_nats *two = NULL;
        kv = config_through(&two, urls);
        assert_true(wait_key(kv, "Upstream.default.u1", true, 0, 20000) > 0);
        /* A new apply goes through the config-watcher (reconnected if it
         * was on the killed server) into the bucket. */
        assert_true(apply_upstream(urls, "u2", 30000));
        assert_true(wait_key(kv, "Upstream.default.u2", true, 0, 10000) > 0);
        sl_kv_free(kv);
        kv = NULL;

        /* The killed server comes back with its store and catches up. */
        assert_int_equal(harness_nats_start_again(harness_cluster_node(cl, leader)), 0);
        assert_true(wait_caught_up(two, "KV_sluice_config", leader, 30000));
        sl_nats_close(two, 0);
    }

    /* Now it carries the bucket: kill another one, and both values (one
     * written while it was down) are there and writable. */
    other = (leader + 1) % 3;
    assert_int_equal(harness_nats_kill(harness_cluster_node(cl, other)), 0);
    urls_but(urls, sizeof(urls), other);
    {
        sl_nats *two = NULL;
        kv = config_through(&two, urls);
        assert_true(wait_key(kv, "Upstream.default.u1", true, 0, 20000) > 0);
        assert_true(wait_key(kv, "Upstream.default.u2", true, 0, 20000) > 0);
        assert_true(apply_upstream(urls, "u3", 30000));
        assert_true(wait_key(kv, "Upstream.default.u3", true, 0, 10000) > 0);
        sl_kv_free(kv);
        sl_nats_close(two, 0);
    }
    assert_int_equal(harness_nats_start_again(harness_cluster_node(cl, other)), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(bad_values),
        cmocka_unit_test(replicated_buckets_survive_a_server),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
