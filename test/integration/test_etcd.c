/* sluice/etcd.h against a real etcd-server on loopback ports: registry values put, ranged and parsed;
 * a watch from a revision sees every change in order; a watch resumed from the last revision seen
 * misses and replays nothing; etcd stopped ends the stream and refuses connections; restarted on its
 * data dir, a watch resumed from the stored revision goes on. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"
#include "sluice/etcd.h"

static pid_t etcd = -1;
static int client_port, peer_port;
static char dir[256], endpoint[64];

static void start_etcd(void)
{
    char data[300], logp[300];
    snprintf(data, sizeof data, "%s/data", dir);
    snprintf(logp, sizeof logp, "%s/etcd.log", dir);
    etcd = harness_start_etcd(client_port, peer_port, data, logp);
    assert_true(etcd > 0);
}

static void stop_etcd(int sig)
{
    if (etcd > 0) {
        kill(etcd, sig);
        waitpid(etcd, NULL, 0);
    }
    etcd = -1;
}

static void put_endpoint(sl_etcd *c, const char *svc, const char *addr, int64_t *rev)
{
    char key[128], val[256];
    snprintf(key, sizeof key, "%s/%s", svc, addr);
    snprintf(val, sizeof val, "{\"Addr\":\"%s\",\"Metadata\":{\"weight\":2}}", addr);
    assert_int_equal(sl_etcd_put(c, key, val, strlen(val), rev, 5000), SL_OK);
}

/* The next non-empty batch of events within 10 s. */
static sl_etcd_event *next_events(sl_etcd_watch *w, size_t *n, int64_t *rev)
{
    sl_etcd_event *ev = NULL;
    int64_t end = harness_now_ms() + 10000;
    *n = 0;
    while (harness_now_ms() < end) {
        sl_status st = sl_etcd_watch_next(w, &ev, n, rev, 200);
        if (st == SL_ERR_TIMEOUT || (st == SL_OK && *n == 0)) {
            sl_etcd_events_free(ev, *n);
            continue;
        }
        assert_int_equal(st, SL_OK);
        return ev;
    }
    fail_msg("no events within 10 s");
    return NULL;
}

static void test_etcd(void **state)
{
    (void)state;
    sl_etcd *c = NULL;
    sl_etcd_kv *kvs;
    sl_etcd_event *ev;
    sl_etcd_watch *w;
    size_t n;
    int64_t rev, r1, r2, last;

    /* Nobody there yet: a timeout, not a hang. */
    assert_int_equal(sl_etcd_connect(&c, endpoint, 300), SL_ERR_TIMEOUT);
    start_etcd();
    int64_t end = harness_now_ms() + 20000;
    while (sl_etcd_connect(&c, endpoint, 500) != SL_OK && harness_now_ms() < end)
        ;
    assert_non_null(c);

    /* Back-ends register (naming/endpoints convention); a range sees them sorted. */
    put_endpoint(c, "svc", "10.0.0.2:8080", NULL);
    put_endpoint(c, "svc", "10.0.0.1:8080", NULL);
    put_endpoint(c, "other", "10.9.9.9:1", NULL);
    assert_int_equal(sl_etcd_range_prefix(c, "svc/", &kvs, &n, &rev, 5000), SL_OK);
    assert_int_equal(n, 2);
    assert_string_equal(kvs[0].key, "svc/10.0.0.1:8080");
    assert_string_equal(kvs[1].key, "svc/10.0.0.2:8080");
    assert_true(rev >= kvs[1].mod_revision);
    sl_etcd_endpoint e;
    assert_int_equal(sl_etcd_parse_endpoint(&e, kvs[0].value, kvs[0].len), SL_OK);
    assert_string_equal(e.address, "10.0.0.1");
    assert_int_equal(e.port, 8080);
    assert_string_equal(e.metadata, "{\"weight\":2}");
    sl_etcd_endpoint_deinit(&e);
    sl_etcd_kvs_free(kvs, n);

    /* A watch from the range's revision + 1 sees every later change in order. */
    assert_int_equal(sl_etcd_watch_start(&w, c, "svc/", rev + 1), SL_OK);
    put_endpoint(c, "svc", "10.0.0.3:8080", &r1);
    put_endpoint(c, "other", "10.9.9.8:1", NULL); /* not under the prefix */
    int64_t deleted = 0;
    assert_int_equal(sl_etcd_delete(c, "svc/10.0.0.2:8080", &deleted, 5000), SL_OK);
    assert_int_equal(deleted, 1);
    size_t seen = 0;
    while (seen < 2) {
        ev = next_events(w, &n, &last);
        for (size_t i = 0; i < n; i++, seen++) {
            if (seen == 0) {
                assert_int_equal(ev[i].type, SL_ETCD_PUT);
                assert_string_equal(ev[i].kv.key, "svc/10.0.0.3:8080");
                assert_int_equal(ev[i].kv.mod_revision, r1);
            } else {
                assert_int_equal(ev[i].type, SL_ETCD_DELETE);
                assert_string_equal(ev[i].kv.key, "svc/10.0.0.2:8080");
                assert_true(ev[i].kv.mod_revision > r1 + 1);
                last = ev[i].kv.mod_revision;
            }
        }
        sl_etcd_events_free(ev, n);
    }
    sl_etcd_watch_free(w);

    /* Resumed from the last revision seen + 1: the change made meanwhile,
     * and nothing before it. */
    put_endpoint(c, "svc", "10.0.0.4:8080", &r2);
    assert_int_equal(sl_etcd_watch_start(&w, c, "svc/", last + 1), SL_OK);
    ev = next_events(w, &n, &rev);
    assert_int_equal(n, 1);
    assert_string_equal(ev[0].kv.key, "svc/10.0.0.4:8080");
    assert_int_equal(ev[0].kv.mod_revision, r2);
    sl_etcd_events_free(ev, n);

    /* etcd stopped: the stream ends, calls fail rather than hang. */
    stop_etcd(SIGTERM);
    sl_status st = SL_ERR_TIMEOUT;
    end = harness_now_ms() + 10000;
    while (st == SL_ERR_TIMEOUT && harness_now_ms() < end) {
        st = sl_etcd_watch_next(w, &ev, &n, &rev, 200);
        sl_etcd_events_free(ev, n);
    }
    assert_int_equal(st, SL_ERR_CLOSED);
    sl_etcd_watch_free(w);
    assert_int_not_equal(sl_etcd_range_prefix(c, "svc/", &kvs, &n, &rev, 500), SL_OK);

    /* Restarted on its data: the watch resumes from the stored revision. */
    start_etcd();
    end = harness_now_ms() + 20000;
    while ((st = sl_etcd_watch_start(&w, c, "svc/", r2 + 1)) != SL_OK && harness_now_ms() < end)
        usleep(100 * 1000);
    assert_int_equal(st, SL_OK);
    put_endpoint(c, "svc", "10.0.0.5:8080", &r1);
    ev = next_events(w, &n, &rev);
    assert_int_equal(n, 1);
    assert_string_equal(ev[0].kv.key, "svc/10.0.0.5:8080");
    sl_etcd_events_free(ev, n);
    sl_etcd_watch_free(w);
    assert_int_equal(sl_etcd_range_prefix(c, "svc/", &kvs, &n, &rev, 5000), SL_OK);
    assert_int_equal(n, 4); /* .1 .3 .4 .5 */
    sl_etcd_kvs_free(kvs, n);
    sl_etcd_close(c);
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/sluice-etcd-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    client_port = harness_free_port();
    peer_port = harness_free_port();
    snprintf(endpoint, sizeof endpoint, "127.0.0.1:%d", client_port);
    return 0;
}

static int teardown(void **state)
{
    char cmd[300];
    (void)state;
    stop_etcd(SIGKILL);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test_setup_teardown(test_etcd, setup, teardown)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
