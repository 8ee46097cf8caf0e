/* bench_write: one change through the real write path (issue 4).
 *
 * Starts a nats-server with JetStream (max_payload 8MB, as
 * deploy/nats/sluice.conf), loads U upstreams (10 endpoints each, EDS) and
 * V virtual services of 10 routes (the bench_gen.h configuration) into the
 * KV buckets, runs the real sluice-translator and sluice-xds, holds an ADS
 * stream with the project's protocol client (services/xds/tests/xds_client.c)
 * subscribed to the gateway's RouteConfiguration and to N
 * ClusterLoadAssignments, then changes one VirtualService N times and one
 * endpoint set N times, one change at a time, and measures from the KV put
 * to
 *   written: the translator's new commit of the proxy seen on a KV watch;
 *   served:  the stream receiving the changed resource (its new bytes).
 * Prints p50/p99/max of each, the commit's size, and last
 *   RESULT upstreams=U vs=V one_vs_written_ms=.. one_vs_served_ms=..
 *          one_eds_written_ms=.. one_eds_served_ms=.. commit_bytes=..
 * Usage: bench_translate_write BUILD_DIR [U V N] (default 10000 5000 20). */
#include <errno.h>
#include <grpc/grpc.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_gen.h"
#include "envoy/service/discovery/v3/discovery.pb-c.h"
#include "harness.h"
#include "sluice/kinds.h"
#include "sluice/kv.h"
#include "sluice/log.h"
#include "sluice/resource.h"
#include "sluice/xds.h"
#include "xds_client.h"
#include "xds_fixtures.h"

#define ADS "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources"
#define RDS_URL "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
#define EDS_URL "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
#define PROXY "gloo-system~gateway-proxy"
#define RC_NAME "listener-::-8080-routes"

static const char *build;
static harness_nats *srv;
static sl_kv *kv_xds;
static pid_t pids[2];

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void die(const char *what)
{
    fprintf(stderr, "bench_write: %s: %s\n", what, sl_error_msg());
    for (int i = 0; i < 2; i++)
        if (pids[i] > 0)
            kill(pids[i], SIGKILL);
    harness_nats_free(srv);
    exit(1);
}

/* ---- the commit watch: the time of every new commit of PROXY ---- */

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static double last_commit_ms;
static uint64_t commits;
static size_t last_commit_bytes;
static atomic_int stop_watch;

static void *watch_main(void *ud)
{
    sl_kv_watch *w = ud;
    while (!atomic_load(&stop_watch)) {
        sl_kv_entry e = {0};
        bool done = false;
        sl_status rc = sl_kv_watch_next(&e, &done, w, 200);
        if (rc == SL_ERR_TIMEOUT || (rc == SL_OK && done))
            continue;
        if (rc != SL_OK)
            break;
        if (e.op == SL_KV_PUT) {
            pthread_mutex_lock(&mu);
            last_commit_ms = now_ms();
            last_commit_bytes = e.len;
            commits++;
            pthread_cond_broadcast(&cv);
            pthread_mutex_unlock(&mu);
        }
        sl_kv_entry_deinit(&e);
    }
    return NULL;
}

/* Waits for a commit after `after` commits; its time, or -1. */
static double wait_commit(uint64_t after, int timeout_ms)
{
    double deadline = now_ms() + timeout_ms, t = -1;
    pthread_mutex_lock(&mu);
    while (commits <= after && now_ms() < deadline) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 20 * 1000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&cv, &mu, &ts);
    }
    if (commits > after)
        t = last_commit_ms;
    pthread_mutex_unlock(&mu);
    return t;
}

static uint64_t commit_count(void)
{
    pthread_mutex_lock(&mu);
    uint64_t n = commits;
    pthread_mutex_unlock(&mu);
    return n;
}

/* ---- processes ---- */

static pid_t spawn(const char *bin, int *port, const char *a1, const char *a2)
{
    int fds[2];
    char path[1024];
    if (pipe(fds) != 0)
        return -1;
    snprintf(path, sizeof path, "%s/%s", build, bin);
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(fds[1], 1);
        close(fds[0]);
        const char *lvl = getenv("BENCH_LOG_LEVEL"); /* e.g. debug: the services' timings on stderr */
        execl(path, path, "--nats-url", harness_nats_url(srv), "--log-level", lvl ? lvl : "warn", a1, a2,
              (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    if (port) {
        FILE *f = fdopen(fds[0], "r");
        char line[256] = "";
        int mp;
        if (!f || !fgets(line, sizeof line, f) ||
            sscanf(line, "sluice-xds listening on port %d metrics port %d", port, &mp) < 1)
            pid = -1;
        if (f)
            fclose(f);
    } else {
        close(fds[0]);
    }
    return pid;
}

/* ---- the xDS client ---- */

static void send_req(xc *c, const char *type_url, const char *nonce, int n, char **names)
{
    if (xc_request(c, "bench-write", PROXY, type_url, nonce, (size_t)n, names) != 0)
        die("send");
}

/* Receives responses (ACKing each) until one of type_url holds `needle` in
 * its bytes; returns the time it arrived, or -1 on timeout. */
static double recv_until(xc *c, const char *type_url, const char *needle, int n, char **names, int timeout_ms)
{
    double deadline = now_ms() + timeout_ms;
    while (now_ms() < deadline) {
        size_t len;
        int ended;
        uint8_t *b = xc_recv(c, (int)(deadline - now_ms()) + 1, &len, &ended);
        double t = now_ms();
        if (!b) {
            if (ended)
                die("the stream ended");
            continue;
        }
        Envoy__Service__Discovery__V3__DiscoveryResponse *r =
            envoy__service__discovery__v3__discovery_response__unpack(NULL, len, b);
        if (!r)
            die("a response that does not decode");
        int hit = strcmp(r->type_url, type_url) == 0 && (!needle || memmem(b, len, needle, strlen(needle)));
        int is_rds = strcmp(r->type_url, RDS_URL) == 0;
        static char *rc_names[] = {RC_NAME};
        send_req(c, r->type_url, r->nonce, is_rds ? 1 : n, is_rds ? rc_names : names); /* ACK */
        envoy__service__discovery__v3__discovery_response__free_unpacked(r, NULL);
        free(b);
        if (hit)
            return t;
    }
    return -1;
}

/* Puts m (then freed) at key of kv and times the change from the put:
 * *written until the translator's next commit, *served until a type_url
 * response on c (subscribed to names) holds needle. Dies after 30 s. */
static void timed_change(double *written, double *served, sl_kv *kv, const char *key, ProtobufCMessage *m, xc *c,
                         const char *type_url, const char *needle, int n, char **names, const char *what)
{
    uint64_t before = commit_count();
    size_t len = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = malloc(len);
    protobuf_c_message_pack(m, buf);
    protobuf_c_message_free_unpacked(m, NULL);
    double t0 = now_ms();
    if (sl_kv_put(NULL, kv, key, buf, len) != SL_OK)
        die("put");
    free(buf);
    double s = recv_until(c, type_url, needle, n, names, 30000);
    double w = wait_commit(before, 30000);
    if (s < 0 || w < 0) {
        char msg[128];
        snprintf(msg, sizeof msg, "%s was not written or served within 30 s", what);
        die(msg);
    }
    *written = w - t0;
    *served = s - t0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(double *v, int n, double p)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    int i = (int)(p / 100.0 * (n - 1) + 0.5);
    return v[i < n ? i : n - 1];
}

static void put_msg(sl_kv *kv, const char *key, ProtobufCMessage *m)
{
    size_t len = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = malloc(len ? len : 1);
    protobuf_c_message_pack(m, buf);
    if (sl_kv_put(NULL, kv, key, buf, len) != SL_OK)
        die(key);
    free(buf);
    protobuf_c_message_free_unpacked(m, NULL);
}

int main(int argc, char **argv)
{
    int nu = argc > 3 ? atoi(argv[2]) : 10000, nv = argc > 3 ? atoi(argv[3]) : 5000;
    int n = argc > 4 ? atoi(argv[4]) : 20;
    sl_nats *nc;
    sl_kv *kv_config, *kv_eps;
    sl_kv_config cfg;
    char key[256], conf[256];
    double t0;

    if (argc < 2) {
        fprintf(stderr, "usage: bench_translate_write BUILD_DIR [UPSTREAMS VS CHANGES]\n");
        return 2;
    }
    build = argv[1];
    signal(SIGPIPE, SIG_IGN);
    sl_log_set_level(SL_LOG_WARN);
    /* max_payload as Sluice ships it (harness: SLUICE_NATS_CONFIG). */
    snprintf(conf, sizeof conf, "/tmp/sluice-bench-write-%d.conf", (int)getpid());
    FILE *f = fopen(conf, "w");
    if (!f)
        return 1;
    fputs("max_payload: 8MB\nmax_pending: 64MB\n", f);
    fclose(f);
    setenv("SLUICE_NATS_CONFIG", conf, 1);
    if (harness_nats_start(&srv) != 0)
        return 1;
    unlink(conf);
    if (harness_connect(&nc, srv) != SL_OK)
        die("connect");
    sl_kv_config_init(&cfg, SL_BUCKET_CONFIG);
    if (sl_kv_open(&kv_config, nc, &cfg) != SL_OK)
        die("config bucket");
    sl_kv_config_init(&cfg, SL_BUCKET_ENDPOINTS);
    if (sl_kv_open(&kv_eps, nc, &cfg) != SL_OK)
        die("endpoints bucket");
    sl_kv_config_init(&cfg, "sluice_xds");
    cfg.history = 5;
    if (sl_kv_open(&kv_xds, nc, &cfg) != SL_OK)
        die("xds bucket");

    t0 = now_ms();
    for (int i = 0; i < nu; i++) {
        char name[32];
        snprintf(name, sizeof name, "up-%d", i);
        sl_resource_key(key, sizeof key, "Upstream", "default", name);
        put_msg(kv_config, key, bench_gen_upstream(i));
        sl_resource_key(key, sizeof key, NULL, "default", name);
        put_msg(kv_eps, key, bench_gen_endpoints(i, 0));
    }
    for (int i = 0; i < nv; i++) {
        char name[32];
        snprintf(name, sizeof name, "vs-%d", i);
        sl_resource_key(key, sizeof key, "VirtualService", "default", name);
        put_msg(kv_config, key, bench_gen_vs(i, nu, "/api"));
    }
    printf("loaded %d upstreams, %d endpoint sets, %d virtual services in %.1f s\n", nu, nu, nv,
           (now_ms() - t0) / 1e3);

    /* The commit watch, then the translator. */
    char ckey[256];
    sl_kv_watch *w;
    sl_kv_watch_opts wo = {0};
    pthread_t th;
    sl_xds_key_escape(ckey, sizeof ckey, PROXY);
    strcat(ckey, ".commit");
    wo.keys = ckey;
    if (sl_kv_watch_new(&w, kv_xds, &wo) != SL_OK)
        die("watch");
    pthread_create(&th, NULL, watch_main, w);
    t0 = now_ms();
    if ((pids[0] = spawn("services/translator/sluice-translator", NULL, "--debounce", "1ms")) < 0)
        die("start sluice-translator");
    if (wait_commit(0, 120000) < 0)
        die("no first commit");
    printf("first commit after %.1f s (%zu bytes)\n", (now_ms() - t0) / 1e3, last_commit_bytes);

    int port = 0;
    grpc_init();
    t0 = now_ms();
    if ((pids[1] = spawn("services/xds/sluice-xds", &port, "--listen", "127.0.0.1:0")) < 0)
        die("start sluice-xds");
    xc *c = xc_open(port, ADS);
    if (!c)
        die("xds stream");
    char **eds = calloc((size_t)n, sizeof *eds);
    for (int i = 0; i < n; i++) {
        eds[i] = malloc(32);
        snprintf(eds[i], 32, "up-%d_default", (i * 7919) % nu);
    }
    static char *rc_names[] = {RC_NAME};
    send_req(c, RDS_URL, NULL, 1, rc_names);
    if (recv_until(c, RDS_URL, NULL, n, eds, 120000) < 0)
        die("no RouteConfiguration");
    send_req(c, EDS_URL, NULL, n, eds);
    if (recv_until(c, EDS_URL, NULL, n, eds, 60000) < 0)
        die("no ClusterLoadAssignments");
    printf("xds serving after %.1f s\n", (now_ms() - t0) / 1e3);
    usleep(500 * 1000);

    double *vw = calloc((size_t)n, sizeof(double)), *vsv = calloc((size_t)n, sizeof(double));
    double *ew = calloc((size_t)n, sizeof(double)), *esv = calloc((size_t)n, sizeof(double));
    size_t commit_bytes = 0;
    for (int r = 0; r < n; r++) {
        char prefix[32], needle[48];
        int vi = (r * 4099) % nv;
        snprintf(prefix, sizeof prefix, "/c%d", r);
        snprintf(needle, sizeof needle, "/c%d/9", r);
        snprintf(key, sizeof key, "VirtualService.default.vs-%d", vi);
        timed_change(&vw[r], &vsv[r], kv_config, key, bench_gen_vs(vi, nu, prefix), c, RDS_URL, needle, n, eds,
                     "a VirtualService change");
        commit_bytes = last_commit_bytes;
        usleep(50 * 1000);
    }
    for (int r = 0; r < n; r++) {
        int ui = (r * 7919) % nu;
        char needle[32];
        snprintf(needle, sizeof needle, "10.%d.%d.%d", (ui >> 8) & 255, ui & 255, 1 + 100 + r);
        snprintf(key, sizeof key, "default.up-%d", ui);
        timed_change(&ew[r], &esv[r], kv_eps, key, bench_gen_endpoints(ui, 100 + r), c, EDS_URL, needle, n, eds,
                     "an endpoint change");
        usleep(50 * 1000);
    }
    printf("one VirtualService: written p50 %.2f ms p99 %.2f ms max %.2f ms; served p50 %.2f ms p99 %.2f ms "
           "max %.2f ms (%d changes)\n",
           pct(vw, n, 50), pct(vw, n, 99), pct(vw, n, 100), pct(vsv, n, 50), pct(vsv, n, 99), pct(vsv, n, 100), n);
    printf("one endpoint set: written p50 %.2f ms p99 %.2f ms max %.2f ms; served p50 %.2f ms p99 %.2f ms "
           "max %.2f ms (%d changes)\n",
           pct(ew, n, 50), pct(ew, n, 99), pct(ew, n, 100), pct(esv, n, 50), pct(esv, n, 99), pct(esv, n, 100), n);
    printf("RESULT upstreams=%d vs=%d one_vs_written_ms=%.2f one_vs_served_ms=%.2f one_eds_written_ms=%.2f "
           "one_eds_served_ms=%.2f commit_bytes=%zu\n",
           nu, nv, pct(vw, n, 50), pct(vsv, n, 50), pct(ew, n, 50), pct(esv, n, 50), commit_bytes);
    fflush(stdout);

    xc_close(c);
    for (int i = 0; i < 2; i++) {
        kill(pids[i], SIGTERM);
        waitpid(pids[i], NULL, 0);
    }
    atomic_store(&stop_watch, 1);
    pthread_join(th, NULL);
    sl_kv_watch_free(w);
    for (int i = 0; i < n; i++)
        free(eds[i]);
    free(eds);
    free(vw);
    free(vsv);
    free(ew);
    free(esv);
    sl_kv_free(kv_config);
    sl_kv_free(kv_eps);
    sl_kv_free(kv_xds);
    sl_nats_close(nc, 1000);
    harness_nats_free(srv);
    grpc_shutdown();
    return 0;
}
