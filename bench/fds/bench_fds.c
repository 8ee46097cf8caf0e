/* bench_fds.c - sluice-function-discovery at scale (issue 11): the time to discover every upstream's
 * functions, the service's CPU and RSS, one document changed -> its Upstream rewritten -> the routes
 * using it translated, and an unchanged re-check that must write nothing.
 *
 * bench_fds BUILD [upstreams [operations [changes]]] (default 1000 200 10): a nats-server (auth on,
 * max_payload 8MB as shipped), one real HTTP server on loopback (bench/fds/docs_server.py, python's
 * ThreadingHTTPServer with ETags) serving upstream i's generated OpenAPI 3.0 document of <operations>
 * operations at /doc/<i>.json, <upstreams> static Upstreams "up-<i>" naming their document by
 * swaggerInfo.url, <upstreams>/10 VirtualServices of 10 routes each calling function get0 of one
 * Upstream (bench/translate/bench_gen.c's routes, every Upstream named once). Then:
 *   discover: sluice-function-discovery starts; the time until every Upstream was written with its
 *             functions (seen on a watch of sluice_config), its CPU seconds and peak RSS then;
 *   change:   sluice-translator runs; <changes> times, document k gets a new version (get0 gains a
 *             header parameter): written = change -> Upstream k rewritten (bounded by --resync: the
 *             document is checked again then), translated = that write -> the translator's next commit
 *             of the proxy in sluice_xds (bench/translate-write's commit watch); both times as the NATS
 *             server stamped the KV entries;
 *   recheck:  until every Upstream was checked again (sluice_fds_unchanged_total up by <upstreams>):
 *             writes (the metric), revisions of sluice_config and commits must all be 0.
 * Last line:
 *   RESULT upstreams=.. operations=.. upstream_kb=.. discover_all_ms=.. discover_cpu_s=.. rss_mb=..
 *          change_written_p50_ms=.. change_written_max_ms=.. change_translated_p50_ms=..
 *          change_translated_max_ms=.. resync_s=.. recheck_ms=.. recheck_not_modified=.. recheck_cpu_s=..
 *          recheck_writes=0 recheck_revisions=0 recheck_commits=0 cpu_s=..
 * Exit status 1 when a re-check wrote anything. Knobs: FDS_RESYNC (5s), FDS_WORKERS (4),
 * BENCH_LOG_LEVEL (warn). */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bench_gen.h"
#include "harness.h"
#include "sluice/kv.h"
#include "sluice/resource.h"
#include "sluice/xds.h"
#include "sluice/v1/routing.pb-c.h"
#include "sluice/v1/upstream.pb-c.h"
#include "sluice/v1/virtual_service.pb-c.h"

#define PROXY "gloo-system~gateway-proxy"

static const char *build_dir;
static harness_nats *srv;
static sl_nats *nc;
static sl_kv *config_kv, *xds_kv;
static pid_t docs = -1, discovery = -1, translator = -1;
static int n_up, n_ops, docs_port, metrics_port;
static char dir[256], log_path[300];

#define DIE(...)                                                                                                       \
    do {                                                                                                               \
        fprintf(stderr, "bench_fds: " __VA_ARGS__);                                                                   \
        fprintf(stderr, " (see %s)\n", log_path);                                                                     \
        exit(1);                                                                                                       \
    } while (0)

/* ---- watches: every put of sluice_config, every commit of the proxy --------------------- */

typedef struct counted {
    sl_kv_watch *w;
    pthread_t th;
    uint64_t events;     /* puts and deletes after the initial values */
    int64_t last_ms;     /* when the last one was written (the server's time, realtime ms) */
    char last_key[256];
} counted;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static atomic_int stop_watches;
static counted config_w, commit_w;

static void *watch_main(void *ud)
{
    counted *c = ud;
    bool initial = true;
    while (!atomic_load(&stop_watches)) {
        sl_kv_entry e = {0};
        bool done = false;
        sl_status rc = sl_kv_watch_next(&e, &done, c->w, 200);
        if (rc == SL_ERR_TIMEOUT)
            continue;
        if (rc != SL_OK)
            break;
        if (done) {
            initial = false;
            continue;
        }
        if (!initial) {
            pthread_mutex_lock(&mu);
            c->events++;
            c->last_ms = e.created_ns / 1000000;
            snprintf(c->last_key, sizeof c->last_key, "%s", e.key);
            pthread_mutex_unlock(&mu);
        }
        sl_kv_entry_deinit(&e);
    }
    return NULL;
}

static void watch_start(counted *c, sl_kv *kv, const char *keys)
{
    sl_kv_watch_opts o = {.keys = keys};
    if (sl_kv_watch_new(&c->w, kv, &o) != SL_OK)
        DIE("watch: %s", sl_error_msg());
    pthread_create(&c->th, NULL, watch_main, c);
}

static uint64_t events_of(counted *c)
{
    pthread_mutex_lock(&mu);
    uint64_t n = c->events;
    pthread_mutex_unlock(&mu);
    return n;
}

/* Waits until c has seen more than `after` events, and (key non-NULL) the last one was key; when
 * that event was written (realtime ms), or -1. */
static int64_t wait_events(counted *c, uint64_t after, const char *key, int64_t timeout_ms)
{
    int64_t deadline = harness_now_ms() + timeout_ms, t = -1;
    while (t < 0 && harness_now_ms() < deadline) {
        pthread_mutex_lock(&mu);
        if (c->events > after && (!key || !strcmp(c->last_key, key)))
            t = c->last_ms;
        pthread_mutex_unlock(&mu);
        if (t < 0)
            usleep(2000); /* the times are the server's: polling costs no precision */
    }
    return t;
}

/* ---- the configuration ------------------------------------------------------------------ */

/* Upstream i: static 127.0.0.1:<docs_port>, swaggerInfo.url its document. */
static void put_upstream(int i)
{
    char yaml[512], key[SL_RESOURCE_KEY_MAX];
    snprintf(yaml, sizeof yaml,
             "metadata: {name: up-%d, namespace: default}\n"
             "spec:\n  static:\n    hosts: [{addr: 127.0.0.1, port: %d}]\n"
             "    serviceSpec: {rest: {swaggerInfo: {url: \"http://127.0.0.1:%d/doc/%d.json\"}}}\n",
             i, docs_port, docs_port, i);
    snprintf(key, sizeof key, "Upstream.default.up-%d", i);
    if (harness_kv_put_yaml(config_kv, key, &sluice__v1__upstream__descriptor, yaml, NULL) != SL_OK)
        DIE("put %s: %s", key, sl_error_msg());
}

/* VirtualService i of bench_gen, each route calling function get0 of its Upstream. */
static void put_vs(int i)
{
    char name[32], key[SL_RESOURCE_KEY_MAX];
    Sluice__V1__VirtualService *v = (Sluice__V1__VirtualService *)bench_gen_vs(i, n_up, "/api");
    for (size_t r = 0; r < v->spec->virtual_host->n_routes; r++) {
        Sluice__V1__Destination *d = v->spec->virtual_host->routes[r]->route_action->single;
        Sluice__V1__DestinationSpec *ds = malloc(sizeof *ds);
        Sluice__V1__RestDestinationSpec *rd = malloc(sizeof *rd);
        sluice__v1__destination_spec__init(ds);
        sluice__v1__rest_destination_spec__init(rd);
        rd->function_name = strdup("get0");
        ds->destination_type_case = SLUICE__V1__DESTINATION_SPEC__DESTINATION_TYPE_REST;
        ds->rest = rd;
        d->destination_spec = ds;
    }
    snprintf(name, sizeof name, "vs-%d", i);
    sl_resource_key(key, sizeof key, "VirtualService", "default", name);
    if (harness_kv_put_pb(config_kv, key, &v->base) != SL_OK)
        DIE("put %s: %s", key, sl_error_msg());
    protobuf_c_message_free_unpacked(&v->base, NULL);
}

/* ---- processes ---------------------------------------------------------------------------- */

static const char *log_level(void) { return getenv("BENCH_LOG_LEVEL") ? getenv("BENCH_LOG_LEVEL") : "warn"; }

static void start_docs(const char *src)
{
    char script[1024], port[16], ops[16];
    snprintf(script, sizeof script, "%s/bench/fds/docs_server.py", src);
    snprintf(port, sizeof port, "%d", docs_port);
    snprintf(ops, sizeof ops, "%d", n_ops);
    const char *const argv[] = {"/usr/bin/python3", script, port, ops, NULL};
    if ((docs = harness_spawn(argv, log_path)) < 0 || harness_wait_http(docs_port, "/doc/0.json", 30000) != 0)
        DIE("the document server did not start");
}

static void start_discovery(const char *resync, const char *workers)
{
    char bin[1024], url[256], maddr[64];
    snprintf(bin, sizeof bin, "%s/services/function-discovery/sluice-function-discovery", build_dir);
    snprintf(url, sizeof url, "%s", harness_nats_url(srv));
    snprintf(maddr, sizeof maddr, "127.0.0.1:%d", metrics_port);
    const char *const argv[] = {bin,         "--nats-url", url,       "--metrics-addr", maddr, "--resync", resync,
                                "--workers", workers,      "--log-level", log_level(), NULL};
    if ((discovery = harness_spawn(argv, log_path)) < 0)
        DIE("sluice-function-discovery did not start");
}

static void start_translator(void)
{
    char bin[1024], url[256];
    snprintf(bin, sizeof bin, "%s/services/translator/sluice-translator", build_dir);
    snprintf(url, sizeof url, "%s", harness_nats_url(srv));
    const char *const argv[] = {bin, "--nats-url", url, "--log-level", log_level(), NULL};
    if ((translator = harness_spawn(argv, log_path)) < 0)
        DIE("sluice-translator did not start");
}

static double metric(const char *name)
{
    double v = harness_metric(metrics_port, name);
    return v < 0 ? 0 : v;
}

static int64_t real_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* ---- the run ------------------------------------------------------------------------------ */

int main(int argc, char **argv)
{
    if (argc < 2)
        DIE("usage: bench_fds BUILD [upstreams [operations [changes]]]");
    build_dir = argv[1];
    n_up = argc > 2 ? atoi(argv[2]) : 1000;
    n_ops = argc > 3 ? atoi(argv[3]) : 200;
    int changes = argc > 4 ? atoi(argv[4]) : 10;
    const char *resync = getenv("FDS_RESYNC") ? getenv("FDS_RESYNC") : "5s";
    const char *workers = getenv("FDS_WORKERS") ? getenv("FDS_WORKERS") : "4";
    const char *src = getenv("SLUICE_SOURCE_DIR") ? getenv("SLUICE_SOURCE_DIR") : ".";
    if (n_up < 10 || n_ops < 4 || changes < 1)
        DIE("at least 10 upstreams, 4 operations and 1 change");
    if (harness_bench_setup(dir, sizeof dir, "fds") != 0)
        exit(1);
    snprintf(log_path, sizeof log_path, "%s/processes.log", dir);
    docs_port = harness_free_port();
    metrics_port = harness_free_port();
    if (harness_up(&srv, &nc) != 0)
        DIE("nats-server");
    sl_kv_config c;
    sl_kv_config_init(&c, "sluice_config");
    if (sl_kv_open(&config_kv, nc, &c) != SL_OK)
        DIE("config bucket");
    sl_kv_config_init(&c, "sluice_xds");
    c.history = 5;
    if (sl_kv_open(&xds_kv, nc, &c) != SL_OK)
        DIE("xds bucket");

    start_docs(src);
    for (int i = 0; i < n_up; i++)
        put_upstream(i);
    for (int i = 0; i < n_up / 10; i++)
        put_vs(i);
    char ckey[256];
    sl_xds_key_escape(ckey, sizeof ckey, PROXY);
    strcat(ckey, ".commit");
    watch_start(&config_w, config_kv, NULL);
    watch_start(&commit_w, xds_kv, ckey);

    /* discover: every Upstream written once */
    int64_t t0 = real_ms();
    start_discovery(resync, workers);
    int64_t t_all = wait_events(&config_w, (uint64_t)n_up - 1, NULL, 600000);
    if (t_all < 0)
        DIE("not every Upstream was written within 600 s (%llu)", (unsigned long long)events_of(&config_w));
    int64_t discover_ms = t_all - t0;
    double discover_cpu = harness_cpu_seconds(discovery);
    fprintf(stderr, "bench_fds: %d upstreams of %d operations discovered in %lld ms, %.2f CPU s\n", n_up, n_ops,
            (long long)discover_ms, discover_cpu);
    sl_kv_entry e = {0};
    if (sl_kv_get(&e, config_kv, "Upstream.default.up-0") != SL_OK)
        DIE("no Upstream up-0");
    double upstream_kb = (double)e.len / 1024.0;
    sl_kv_entry_deinit(&e);

    /* change: the translator's first commit, then one document at a time */
    start_translator();
    if (wait_events(&commit_w, 0, NULL, 300000) < 0)
        DIE("no commit from the translator");
    fprintf(stderr, "bench_fds: the translator committed\n");
    int64_t *written = calloc((size_t)changes, sizeof *written), *translated = calloc((size_t)changes, sizeof *translated);
    unsigned seed = 11;
    char *unit;
    long resync_ms = strtol(resync, &unit, 10);
    resync_ms *= !strcmp(unit, "ms") ? 1 : !strcmp(unit, "m") ? 60000 : 1000;
    if (resync_ms < 1)
        DIE("FDS_RESYNC %s: not a duration (e.g. 5s, 500ms)", resync);
    for (int r = 0; r < changes; r++) {
        /* a random upstream at a random moment of the re-check cycle (a fixed stride, or a fixed
         * pause, would keep the same phase from one change to the next) */
        int k = (int)(rand_r(&seed) % (unsigned)n_up);
        usleep((useconds_t)(rand_r(&seed) % (unsigned)resync_ms) * 1000);
        char path[64], key[64], buf[512];
        snprintf(path, sizeof path, "/_change/%d", k);
        snprintf(key, sizeof key, "Upstream.default.up-%d", k);
        uint64_t puts = events_of(&config_w), commits = events_of(&commit_w);
        int64_t t = real_ms();
        if (harness_http(docs_port, "POST", path, buf, sizeof buf) != 200)
            DIE("POST %s", path);
        int64_t tw = wait_events(&config_w, puts, key, 120000);
        if (tw < 0)
            DIE("%s was not rewritten", key);
        int64_t tc = wait_events(&commit_w, commits, NULL, 120000);
        if (tc < 0)
            DIE("no commit after %s was rewritten", key);
        written[r] = tw - t;
        translated[r] = tc - tw;
        fprintf(stderr, "bench_fds: document %d changed: written after %lld ms, translated %lld ms later\n", k,
                (long long)written[r], (long long)translated[r]);
    }
    qsort(written, (size_t)changes, sizeof *written, cmp_i64);
    qsort(translated, (size_t)changes, sizeof *translated, cmp_i64);

    /* recheck: every Upstream checked again with nothing changed */
    uint64_t puts = events_of(&config_w), commits = events_of(&commit_w);
    double unchanged = metric("sluice_fds_unchanged_total"), writes = metric("sluice_fds_writes_total"),
           nm = metric("sluice_fds_not_modified_total"), cpu0 = harness_cpu_seconds(discovery);
    int64_t tr = harness_now_ms();
    while (metric("sluice_fds_unchanged_total") < unchanged + n_up && harness_now_ms() - tr < 600000)
        usleep(20 * 1000);
    int64_t recheck_ms = harness_now_ms() - tr;
    double recheck_cpu = harness_cpu_seconds(discovery) - cpu0;
    double recheck_writes = metric("sluice_fds_writes_total") - writes;
    double recheck_nm = metric("sluice_fds_not_modified_total") - nm;
    usleep(500 * 1000); /* a write would have reached the watches by now */
    uint64_t recheck_revisions = events_of(&config_w) - puts, recheck_commits = events_of(&commit_w) - commits;
    double cpu_s = harness_cpu_seconds(discovery), rss_mb = (double)harness_peak_rss_kb(discovery) / 1024.0;

    printf("RESULT upstreams=%d operations=%d upstream_kb=%.1f discover_all_ms=%lld discover_cpu_s=%.2f "
           "rss_mb=%.1f change_written_p50_ms=%lld change_written_max_ms=%lld change_translated_p50_ms=%lld "
           "change_translated_max_ms=%lld resync=%s recheck_ms=%lld recheck_not_modified=%.0f recheck_cpu_s=%.2f "
           "recheck_writes=%.0f recheck_revisions=%llu recheck_commits=%llu cpu_s=%.2f\n",
           n_up, n_ops, upstream_kb, (long long)discover_ms, discover_cpu, rss_mb,
           (long long)written[changes / 2], (long long)written[changes - 1], (long long)translated[changes / 2],
           (long long)translated[changes - 1], resync, (long long)recheck_ms, recheck_nm, recheck_cpu,
           recheck_writes, (unsigned long long)recheck_revisions, (unsigned long long)recheck_commits, cpu_s);
    fflush(stdout);
    int rc = recheck_writes == 0 && recheck_revisions == 0 && recheck_commits == 0 ? 0 : 1;
    if (rc)
        fprintf(stderr, "bench_fds: FAILED: an unchanged re-check wrote\n");
    free(written);
    free(translated);
    atomic_store(&stop_watches, 1);
    pthread_join(config_w.th, NULL);
    pthread_join(commit_w.th, NULL);
    sl_kv_watch_free(config_w.w);
    sl_kv_watch_free(commit_w.w);
    harness_stop_pid(&translator, SIGTERM);
    harness_stop_pid(&discovery, SIGTERM);
    harness_stop_pid(&docs, SIGTERM);
    sl_kv_free(xds_kv);
    sl_kv_free(config_kv);
    harness_down(srv, nc);
    harness_remove_test_dir(dir);
    return rc;
}
