/* KV helpers against a real nats-server: buckets, revisions, conflicts,
 * TTL, RePublish, and watches (pull and push) including across a server
 * restart. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "harness.h"
#include "sluice/kv.h"
#include "sluice/log.h"
#include "sluice/service.h"

static harness_nats *srv;
static sl_nats *nc;

static int group_setup(void **state) { return harness_up(&srv, &nc); }

static int group_teardown(void **state)
{
    harness_down(srv, nc);
    return 0;
}

static sl_kv *open_bucket(const char *name)
{
    sl_kv_config cfg;
    sl_kv *kv = NULL;

    sl_kv_config_init(&cfg, name);
    cfg.history = 5;
    if (sl_kv_open(&kv, nc, &cfg) != SL_OK)
        fail_msg("open %s: %s", name, sl_error_msg());
    return kv;
}

static void create_then_bind(void **state)
{
    sl_kv_config cfg;
    sl_kv *a = NULL, *b = NULL, *c = NULL;

    assert_int_equal(sl_kv_bind(&c, nc, "kv_open"), SL_ERR_NOT_FOUND);
    sl_kv_config_init(&cfg, "kv_open");
    cfg.history = 3;
    cfg.storage = SL_KV_MEMORY;
    assert_int_equal(sl_kv_open(&a, nc, &cfg), SL_OK);
    assert_string_equal(sl_kv_bucket(a), "kv_open");
    /* Open again (another replica): binds to the same bucket, even with a
     * different configuration (logged, not applied). */
    cfg.history = 7;
    assert_int_equal(sl_kv_open(&b, nc, &cfg), SL_OK);
    assert_int_equal(sl_kv_bind(&c, nc, "kv_open"), SL_OK);
    assert_int_equal(sl_kv_put(NULL, a, "k", "v", 1), SL_OK);
    {
        sl_kv_entry e;
        assert_int_equal(sl_kv_get(&e, c, "k"), SL_OK);
        assert_int_equal(e.len, 1);
        sl_kv_entry_deinit(&e);
    }
    sl_kv_free(a);
    sl_kv_free(b);
    sl_kv_free(c);
    assert_int_equal(sl_kv_delete_bucket(nc, "kv_open"), SL_OK);
    assert_int_equal(sl_kv_bind(&c, nc, "kv_open"), SL_ERR_NOT_FOUND);

    cfg.bucket = "bad.name";
    assert_int_equal(sl_kv_open(&a, nc, &cfg), SL_ERR_INVALID);
}

static void put_get_delete_purge(void **state)
{
    sl_kv *kv = open_bucket("kv_basic");
    sl_kv_entry e;
    uint64_t r1 = 0, r2 = 0, r3 = 0, r4 = 0;

    assert_int_equal(sl_kv_get(&e, kv, "Upstream.default.petstore"), SL_ERR_NOT_FOUND);
    assert_int_equal(sl_kv_put(&r1, kv, "Upstream.default.petstore", "one", 3), SL_OK);
    assert_int_equal(sl_kv_put(&r2, kv, "Upstream.default.petstore", "two!", 4), SL_OK);
    assert_true(r1 > 0 && r2 > r1);

    assert_int_equal(sl_kv_get(&e, kv, "Upstream.default.petstore"), SL_OK);
    assert_string_equal(e.key, "Upstream.default.petstore");
    assert_int_equal(e.len, 4);
    assert_memory_equal(e.value, "two!", 4);
    assert_int_equal(e.revision, r2);
    assert_int_equal(e.op, SL_KV_PUT);
    assert_true(e.created_ns > 0);
    sl_kv_entry_deinit(&e);
    assert_null(e.impl_);

    /* empty values are values */
    assert_int_equal(sl_kv_put(NULL, kv, "empty", "", 0), SL_OK);
    assert_int_equal(sl_kv_get(&e, kv, "empty"), SL_OK);
    assert_int_equal(e.len, 0);
    assert_null(e.value);
    sl_kv_entry_deinit(&e);

    assert_int_equal(sl_kv_delete(&r3, kv, "Upstream.default.petstore", 0), SL_OK);
    assert_true(r3 > r2);
    assert_int_equal(sl_kv_get(&e, kv, "Upstream.default.petstore"), SL_ERR_NOT_FOUND);

    assert_int_equal(sl_kv_put(NULL, kv, "p", "x", 1), SL_OK);
    assert_int_equal(sl_kv_purge(&r4, kv, "p", 0), SL_OK);
    assert_true(r4 > r3);
    assert_int_equal(sl_kv_get(&e, kv, "p"), SL_ERR_NOT_FOUND);

    /* bad keys never reach the server */
    assert_int_equal(sl_kv_put(NULL, kv, "a..b", "x", 1), SL_ERR_INVALID);
    assert_int_equal(sl_kv_put(NULL, kv, ".a", "x", 1), SL_ERR_INVALID);
    assert_int_equal(sl_kv_put(NULL, kv, "a b", "x", 1), SL_ERR_INVALID);
    assert_int_equal(sl_kv_put(NULL, kv, "a.*", "x", 1), SL_ERR_INVALID);
    assert_int_equal(sl_kv_get(&e, kv, ""), SL_ERR_INVALID);
    sl_kv_free(kv);
}

static void create_and_compare_and_set(void **state)
{
    sl_kv *kv = open_bucket("kv_cas");
    uint64_t r1 = 0, r2 = 0, r3 = 0, rd = 0, rc = 0;

    assert_int_equal(sl_kv_create(&r1, kv, "k", "a", 1), SL_OK);
    assert_int_equal(sl_kv_create(NULL, kv, "k", "b", 1), SL_ERR_EXISTS);
    assert_int_equal(sl_kv_update(&r2, kv, "k", "b", 1, r1), SL_OK);
    assert_true(r2 > r1);
    /* a stale writer loses */
    assert_int_equal(sl_kv_update(&r3, kv, "k", "c", 1, r1), SL_ERR_CONFLICT);
    assert_int_equal(r3, 0);
    assert_int_equal(sl_kv_update(NULL, kv, "k", "c", 1, 0), SL_ERR_INVALID);
    assert_int_equal(sl_kv_update(NULL, kv, "nokey", "c", 1, r2), SL_ERR_CONFLICT);
    /* a conditional delete too */
    assert_int_equal(sl_kv_delete(NULL, kv, "k", r1), SL_ERR_CONFLICT);
    assert_int_equal(sl_kv_delete(&rd, kv, "k", r2), SL_OK);
    /* create over a delete marker works */
    assert_int_equal(sl_kv_create(&rc, kv, "k", "d", 1), SL_OK);
    assert_true(rc > rd);
    /* and over a purge marker */
    assert_int_equal(sl_kv_purge(NULL, kv, "k", 0), SL_OK);
    assert_int_equal(sl_kv_create(NULL, kv, "k", "e", 1), SL_OK);
    sl_kv_free(kv);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void lists_keys(void **state)
{
    sl_kv *kv = open_bucket("kv_keys");
    char **keys = NULL;
    size_t n = 99;

    assert_int_equal(sl_kv_keys(&keys, &n, kv, 5000), SL_OK);
    assert_int_equal(n, 0);
    assert_null(keys);
    assert_int_equal(sl_kv_put(NULL, kv, "b", "1", 1), SL_OK);
    assert_int_equal(sl_kv_put(NULL, kv, "a", "1", 1), SL_OK);
    assert_int_equal(sl_kv_put(NULL, kv, "c", "1", 1), SL_OK);
    assert_int_equal(sl_kv_delete(NULL, kv, "c", 0), SL_OK);
    assert_int_equal(sl_kv_keys(&keys, &n, kv, 5000), SL_OK);
    assert_int_equal(n, 2);
    qsort(keys, n, sizeof(char *), cmp_str);
    assert_string_equal(keys[0], "a");
    assert_string_equal(keys[1], "b");
    sl_kv_keys_free(keys, n);
    sl_kv_free(kv);
}

static void ttl_expires_values(void **state)
{
    sl_kv_config cfg;
    sl_kv *kv;
    sl_kv_entry e;
    int64_t deadline;
    sl_status st = SL_OK;

    sl_kv_config_init(&cfg, "kv_ttl");
    cfg.ttl_ms = 1000;
    assert_int_equal(sl_kv_open(&kv, nc, &cfg), SL_OK);
    assert_int_equal(sl_kv_put(NULL, kv, "k", "v", 1), SL_OK);
    assert_int_equal(sl_kv_get(&e, kv, "k"), SL_OK);
    sl_kv_entry_deinit(&e);
    deadline = harness_now_ms() + 5000;
    while (harness_now_ms() < deadline) {
        st = sl_kv_get(&e, kv, "k");
        if (st != SL_OK)
            break;
        sl_kv_entry_deinit(&e);
        usleep(100000);
    }
    assert_int_equal(st, SL_ERR_NOT_FOUND);
    sl_kv_free(kv);
}

static void republishes_changes(void **state)
{
    sl_kv_config cfg;
    sl_kv *kv;
    natsSubscription *sub = NULL;
    natsMsg *m = NULL;
    const char *op = NULL;

    assert_int_equal(natsConnection_SubscribeSync(&sub, sl_nats_conn(nc), "test.status.>"),
                     NATS_OK);
    assert_int_equal(natsConnection_Flush(sl_nats_conn(nc)), NATS_OK);
    sl_kv_config_init(&cfg, "kv_repub");
    cfg.republish_keys = ">";
    cfg.republish_subject = "test.status.>";
    assert_int_equal(sl_kv_open(&kv, nc, &cfg), SL_OK);
    assert_int_equal(sl_kv_put(NULL, kv, "Upstream.ns.name", "hello", 5), SL_OK);
    assert_int_equal(natsSubscription_NextMsg(&m, sub, 5000), NATS_OK);
    assert_string_equal(natsMsg_GetSubject(m), "test.status.Upstream.ns.name");
    assert_int_equal(natsMsg_GetDataLength(m), 5);
    assert_memory_equal(natsMsg_GetData(m), "hello", 5);
    natsMsg_Destroy(m);
    assert_int_equal(sl_kv_delete(NULL, kv, "Upstream.ns.name", 0), SL_OK);
    assert_int_equal(natsSubscription_NextMsg(&m, sub, 5000), NATS_OK);
    assert_int_equal(natsMsgHeader_Get(m, "KV-Operation", &op), NATS_OK);
    assert_string_equal(op, "DEL");
    natsMsg_Destroy(m);
    natsSubscription_Destroy(sub);

    /* half a republish config is an error */
    cfg.bucket = "kv_repub2";
    cfg.republish_subject = NULL;
    assert_int_equal(sl_kv_open(&kv, nc, &cfg), SL_ERR_INVALID);
    cfg.republish_subject = "test.status.>";
    sl_kv_free(kv);
}

/* Reads the next watch event, failing the test on a timeout. */
static int next(sl_kv_watch *w, sl_kv_entry *e)
{
    bool init = false;
    sl_status st = sl_kv_watch_next(e, &init, w, 5000);
    if (st != SL_OK)
        fail_msg("watch next: %s (%s)", sl_status_str(st), sl_error_msg());
    return init;
}

/* Reads the next watch event (not the end of the initial values) into e
 * and checks its key and operation; deinit e. */
static void expect_next(sl_kv_watch *w, sl_kv_entry *e, const char *key, sl_kv_op op)
{
    assert_false(next(w, e));
    assert_string_equal(e->key, key);
    assert_int_equal(e->op, op);
}

static void watch_delivers_initial_values_marker_then_updates(void **state)
{
    sl_kv *kv = open_bucket("kv_watch");
    sl_kv_watch *w = NULL;
    sl_kv_watch_opts opts = {.keys = "cfg.>"};
    sl_kv_entry e;
    uint64_t ra = 0, rb = 0;
    bool init = false;

    assert_int_equal(sl_kv_put(NULL, kv, "cfg.a", "a0", 2), SL_OK);
    assert_int_equal(sl_kv_put(&ra, kv, "cfg.a", "a1", 2), SL_OK); /* only the latest shows */
    assert_int_equal(sl_kv_put(&rb, kv, "cfg.b", "b1", 2), SL_OK);
    assert_int_equal(sl_kv_put(NULL, kv, "other.x", "x", 1), SL_OK); /* not matched */
    assert_int_equal(sl_kv_watch_new(&w, kv, &opts), SL_OK);

    expect_next(w, &e, "cfg.a", SL_KV_PUT);
    assert_memory_equal(e.value, "a1", 2);
    assert_int_equal(e.revision, ra);
    assert_int_equal(e.delta, 1);
    sl_kv_entry_deinit(&e);
    assert_false(next(w, &e));
    assert_string_equal(e.key, "cfg.b");
    assert_int_equal(e.revision, rb);
    assert_int_equal(e.delta, 0);
    sl_kv_entry_deinit(&e);
    assert_true(next(w, &e));
    assert_null(e.key);

    /* nothing more for now */
    assert_int_equal(sl_kv_watch_next(&e, &init, w, 200), SL_ERR_TIMEOUT);

    assert_int_equal(sl_kv_put(NULL, kv, "cfg.c", "c1", 2), SL_OK);
    assert_int_equal(sl_kv_delete(NULL, kv, "cfg.a", 0), SL_OK);
    assert_int_equal(sl_kv_purge(NULL, kv, "cfg.b", 0), SL_OK);
    expect_next(w, &e, "cfg.c", SL_KV_PUT);
    sl_kv_entry_deinit(&e);
    expect_next(w, &e, "cfg.a", SL_KV_DELETE);
    assert_int_equal(e.len, 0);
    sl_kv_entry_deinit(&e);
    expect_next(w, &e, "cfg.b", SL_KV_PURGE);
    sl_kv_entry_deinit(&e);

    sl_kv_watch_stop(w);
    assert_int_equal(sl_kv_watch_next(&e, &init, w, 100), SL_ERR_CLOSED);
    sl_kv_watch_free(w);

    /* An empty match gives the marker at once. */
    opts.keys = "nothing.>";
    assert_int_equal(sl_kv_watch_new(&w, kv, &opts), SL_OK);
    assert_true(next(w, &e));
    sl_kv_watch_free(w);
    sl_kv_free(kv);
}

/* Every write reaches the watch, in revision order, even with purges in
 * between (a server-side rollup would make nats-server 2.9.10 skip
 * undelivered updates of other keys). */
static void watch_sees_every_write_around_purges(void **state)
{
    sl_kv *kv = open_bucket("kv_purge_race");
    sl_kv_watch *w = NULL;
    sl_kv_entry e;
    char key[32];
    uint64_t last = 0;
    int writes = 0, seen = 0;

    assert_int_equal(sl_kv_put(NULL, kv, "seed", "s", 1), SL_OK);
    assert_int_equal(sl_kv_watch_new(&w, kv, NULL), SL_OK);
    assert_false(next(w, &e));
    sl_kv_entry_deinit(&e);
    assert_true(next(w, &e));
    for (int i = 0; i < 40; i++) {
        snprintf(key, sizeof(key), "k.%d", i);
        assert_int_equal(sl_kv_put(NULL, kv, key, "v", 1), SL_OK);
        snprintf(key, sizeof(key), "p.%d", i);
        assert_int_equal(sl_kv_put(NULL, kv, key, "v", 1), SL_OK);
        assert_int_equal(sl_kv_purge(NULL, kv, key, 0), SL_OK);
        if (i > 0) {
            snprintf(key, sizeof(key), "k.%d", i - 1);
            assert_int_equal(sl_kv_delete(NULL, kv, key, 0), SL_OK);
            writes++;
        }
        writes += 3;
    }
    while (seen < writes) {
        assert_false(next(w, &e));
        assert_true(e.revision > last);
        last = e.revision;
        seen++;
        sl_kv_entry_deinit(&e);
    }
    sl_kv_watch_free(w);
    sl_kv_free(kv);
}

struct blocked {
    sl_kv_watch *w;
    sl_status st;
};

static void *blocked_next(void *arg)
{
    struct blocked *b = arg;
    sl_kv_entry e;
    bool init;

    /* drain the marker, then block */
    b->st = sl_kv_watch_next(&e, &init, b->w, 5000);
    if (b->st == SL_OK)
        b->st = sl_kv_watch_next(&e, &init, b->w, 30000);
    return NULL;
}

static void watch_stop_wakes_a_blocked_reader(void **state)
{
    sl_kv *kv = open_bucket("kv_wake");
    struct blocked b = {0};
    pthread_t t;
    int64_t start;

    assert_int_equal(sl_kv_watch_new(&b.w, kv, NULL), SL_OK);
    pthread_create(&t, NULL, blocked_next, &b);
    usleep(300000);
    start = harness_now_ms();
    sl_kv_watch_stop(b.w);
    pthread_join(t, NULL);
    assert_true(harness_now_ms() - start < 5000);
    assert_int_equal(b.st, SL_ERR_CLOSED);
    sl_kv_watch_free(b.w);
    sl_kv_free(kv);
}

/* ---- push mode ---- */

struct recorder {
    pthread_mutex_t lock;
    char log[4096];
    int entries;
    int initial_done;
    sl_kv_watch *free_me_on_key; /* free this watch from its own handler */
    const char *free_key;
    sl_loop *loop;
    pthread_t loop_thread;
};

static void rec_append(struct recorder *r, const char *s)
{
    pthread_mutex_lock(&r->lock);
    strncat(r->log, s, sizeof(r->log) - strlen(r->log) - 1);
    pthread_mutex_unlock(&r->lock);
}

static void on_entry(sl_kv_watch *w, const sl_kv_entry *e, void *ud)
{
    struct recorder *r = ud;
    char buf[128];

    snprintf(buf, sizeof(buf), "%s%s=%.*s;", e->op == SL_KV_PUT ? "" : "-", e->key, (int)e->len,
             e->value != NULL ? (const char *)e->value : "");
    rec_append(r, buf);
    pthread_mutex_lock(&r->lock);
    r->entries++;
    pthread_mutex_unlock(&r->lock);
    if (r->free_key != NULL && strcmp(e->key, r->free_key) == 0) {
        sl_kv_watch_free(w);
        rec_append(r, "freed;");
    }
}

static void on_initial_done(sl_kv_watch *w, void *ud)
{
    struct recorder *r = ud;
    rec_append(r, "|;");
    pthread_mutex_lock(&r->lock);
    r->initial_done++;
    pthread_mutex_unlock(&r->lock);
}

static void *loop_main(void *arg)
{
    sl_loop_run(arg);
    return NULL;
}

static void recorder_init(struct recorder *r)
{
    memset(r, 0, sizeof(*r));
    pthread_mutex_init(&r->lock, NULL);
    assert_int_equal(sl_loop_new(&r->loop), SL_OK);
    pthread_create(&r->loop_thread, NULL, loop_main, r->loop);
}

static void recorder_deinit(struct recorder *r)
{
    sl_loop_stop(r->loop);
    pthread_join(r->loop_thread, NULL);
    sl_loop_free(r->loop);
    pthread_mutex_destroy(&r->lock);
}

/* A recorder sharing first's loop (freed with first's). */
static void second_recorder(struct recorder *r, const struct recorder *first)
{
    memset(r, 0, sizeof(*r));
    pthread_mutex_init(&r->lock, NULL);
    r->loop = first->loop;
}

/* Waits until the log contains want. */
static void wait_log(struct recorder *r, const char *want)
{
    int64_t deadline = harness_now_ms() + 15000;
    int found = 0;

    while (!found && harness_now_ms() < deadline) {
        pthread_mutex_lock(&r->lock);
        found = strstr(r->log, want) != NULL;
        pthread_mutex_unlock(&r->lock);
        if (!found)
            usleep(20000);
    }
    if (!found)
        fail_msg("log '%s' lacks '%s'", r->log, want);
}

static void push_watch_runs_handlers_on_the_loop(void **state)
{
    sl_kv *kv = open_bucket("kv_push");
    struct recorder r;
    sl_kv_watch *w = NULL;
    const sl_kv_watch_handlers h = {.entry = on_entry, .initial_done = on_initial_done};

    recorder_init(&r);
    assert_int_equal(sl_kv_put(NULL, kv, "a", "1", 1), SL_OK);
    assert_int_equal(sl_kv_watch_start(&w, kv, NULL, r.loop, &h, &r), SL_OK);
    wait_log(&r, "a=1;|;");
    assert_int_equal(sl_kv_put(NULL, kv, "b", "2", 1), SL_OK);
    assert_int_equal(sl_kv_delete(NULL, kv, "a", 0), SL_OK);
    wait_log(&r, "a=1;|;b=2;-a=;");

    /* After stop returns, nothing more is delivered; free is still due.
     * The proof is a positive signal first: a second watch on the same loop
     * delivers c=3 and a later d=4 there, so a delivery of c=3 to the
     * stopped watch would have run by then. */
    struct recorder r2;
    sl_kv_watch *w2 = NULL;
    second_recorder(&r2, &r);
    assert_int_equal(sl_kv_watch_start(&w2, kv, NULL, r.loop, &h, &r2), SL_OK);
    wait_log(&r2, "|;");
    sl_kv_watch_stop(w);
    assert_int_equal(sl_kv_put(NULL, kv, "c", "3", 1), SL_OK);
    assert_int_equal(sl_kv_put(NULL, kv, "d", "4", 1), SL_OK);
    wait_log(&r2, "|;c=3;d=4;");
    pthread_mutex_lock(&r.lock);
    assert_null(strstr(r.log, "c=3"));
    assert_int_equal(r.initial_done, 1);
    pthread_mutex_unlock(&r.lock);
    sl_kv_watch_free(w);

    /* A handler may free its own watch; nothing runs after that. */
    r.free_key = "stop";
    r.log[0] = '\0';
    assert_int_equal(sl_kv_watch_start(&w, kv, NULL, r.loop, &h, &r), SL_OK);
    wait_log(&r, "|;");
    assert_int_equal(sl_kv_put(NULL, kv, "stop", "x", 1), SL_OK);
    assert_int_equal(sl_kv_put(NULL, kv, "after", "y", 1), SL_OK);
    assert_int_equal(sl_kv_put(NULL, kv, "later", "z", 1), SL_OK);
    wait_log(&r, "stop=x;freed;");
    wait_log(&r2, "stop=x;after=y;later=z;"); /* the same loop got past "after" */
    pthread_mutex_lock(&r.lock);
    assert_null(strstr(r.log, "after"));
    pthread_mutex_unlock(&r.lock);
    sl_kv_watch_stop(w2);
    sl_kv_watch_free(w2);
    pthread_mutex_destroy(&r2.lock);

    /* Errors at start call nothing. */
    assert_int_equal(sl_kv_watch_start(&w, kv, NULL, NULL, &h, &r), SL_ERR_INVALID);
    recorder_deinit(&r);
    sl_kv_free(kv);
}

static void watch_survives_a_server_restart(void **state)
{
    sl_kv *kv = open_bucket("kv_restart");
    struct recorder r;
    sl_kv_watch *w = NULL;
    const sl_kv_watch_handlers h = {.entry = on_entry, .initial_done = on_initial_done};
    int64_t deadline;
    sl_status st = SL_ERR_INTERNAL;

    recorder_init(&r);
    assert_int_equal(sl_kv_put(NULL, kv, "before", "1", 1), SL_OK);
    assert_int_equal(sl_kv_watch_start(&w, kv, NULL, r.loop, &h, &r), SL_OK);
    wait_log(&r, "before=1;|;");

    /* Down for a while (longer than a reconnect round), then back on the
     * same port and store. */
    assert_int_equal(harness_nats_stop(srv), 0);
    usleep(2500000);
    assert_int_equal(harness_nats_start_again(srv), 0);
    /* Writes fail while the client reconnects; keep trying. */
    deadline = harness_now_ms() + 20000;
    while (harness_now_ms() < deadline) {
        st = sl_kv_put(NULL, kv, "after", "2", 1);
        if (st == SL_OK)
            break;
        usleep(100000);
    }
    assert_int_equal(st, SL_OK);
    wait_log(&r, "before=1;|;after=2;");
    /* The stored value survived too. */
    {
        sl_kv_entry e;
        assert_int_equal(sl_kv_get(&e, kv, "before"), SL_OK);
        sl_kv_entry_deinit(&e);
    }
    pthread_mutex_lock(&r.lock);
    assert_int_equal(r.initial_done, 1);
    pthread_mutex_unlock(&r.lock);
    sl_kv_watch_free(w);
    recorder_deinit(&r);
    sl_kv_free(kv);
}

/* A pipelined batch: stored in order, one revision each, readable; a bad
 * key or an oversized value sends nothing; a failed put is named. */
static void put_many_pipelines_in_order(void **state)
{
    sl_kv *kv = open_bucket("kv_many");
    sl_kv_put_item it[50];
    char keys[50][32], vals[50][32];
    sl_kv_entry e;
    uint64_t before = 0;

    assert_int_equal(sl_kv_put_many(kv, NULL, 0, 0), SL_OK);
    assert_int_equal(sl_kv_put(&before, kv, "first", "x", 1), SL_OK);
    for (int i = 0; i < 50; i++) {
        snprintf(keys[i], sizeof keys[i], "p.k%d", i % 40); /* some keys twice */
        snprintf(vals[i], sizeof vals[i], "value %d", i);
        it[i] = (sl_kv_put_item){keys[i], vals[i], strlen(vals[i]), 0, SL_OK};
    }
    assert_int_equal(sl_kv_put_many(kv, it, 50, 0), SL_OK);
    for (int i = 0; i < 50; i++) {
        assert_int_equal(it[i].status, SL_OK);
        assert_int_equal(it[i].rev, before + 1 + (uint64_t)i); /* nobody else writes this bucket */
    }
    for (int i = 10; i < 50; i++) {
        assert_int_equal(sl_kv_get(&e, kv, keys[i]), SL_OK);
        assert_int_equal(e.revision, it[i].rev);
        assert_int_equal(e.len, strlen(vals[i]));
        assert_memory_equal(e.value, vals[i], e.len);
        sl_kv_entry_deinit(&e);
    }

    /* an invalid key: nothing sent */
    it[1].key = "bad..key";
    assert_int_equal(sl_kv_put_many(kv, it, 3, 0), SL_ERR_INVALID);
    assert_non_null(strstr(sl_error_msg(), "bad..key"));
    assert_int_equal(sl_kv_get(&e, kv, "p.k0"), SL_OK);
    assert_int_equal(e.revision, it[40].rev);
    sl_kv_entry_deinit(&e);
    it[1].key = keys[1];

    /* a put the server refuses (the bucket's max value size) is named; the
     * others are stored */
    {
        sl_kv_config cfg;
        sl_kv *small = NULL;
        static char big[200];
        sl_kv_put_item b[3] = {{"a", "1", 1, 0, SL_OK}, {"b", big, sizeof big, 0, SL_OK}, {"c", "3", 1, 0, SL_OK}};
        memset(big, 'x', sizeof big);
        sl_kv_config_init(&cfg, "kv_many_small");
        cfg.max_value_size = 100;
        assert_int_equal(sl_kv_open(&small, nc, &cfg), SL_OK);
        assert_int_not_equal(sl_kv_put_many(small, b, 3, 0), SL_OK);
        assert_non_null(strstr(sl_error_msg(), "kv_many_small/b"));
        assert_int_equal(b[0].status, SL_OK);
        assert_int_not_equal(b[1].status, SL_OK);
        assert_int_equal(b[1].rev, 0);
        assert_int_equal(b[2].status, SL_OK);
        assert_true(b[2].rev > b[0].rev);
        sl_kv_free(small);
    }
    sl_kv_free(kv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(create_then_bind),
        cmocka_unit_test(put_get_delete_purge),
        cmocka_unit_test(put_many_pipelines_in_order),
        cmocka_unit_test(create_and_compare_and_set),
        cmocka_unit_test(lists_keys),
        cmocka_unit_test(ttl_expires_values),
        cmocka_unit_test(republishes_changes),
        cmocka_unit_test(watch_delivers_initial_values_marker_then_updates),
        cmocka_unit_test(watch_sees_every_write_around_purges),
        cmocka_unit_test(watch_stop_wakes_a_blocked_reader),
        cmocka_unit_test(push_watch_runs_handlers_on_the_loop),
        cmocka_unit_test(watch_survives_a_server_restart),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
