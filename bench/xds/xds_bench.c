/* xds-bench - load generator for sluice-xds and the go-control-plane peer
 * (issue 3's benchmark; bench/xds/run drives it, docs/benchmarks.md).
 *
 *   xds-bench [--streams N] [--changes K] [--server sluice|peer|both]
 *             [--order sluice,peer|peer,sluice] [--workers W] [--threads T]
 *             [--per-conn P] [--sluice-bin PATH] [--peer-bin PATH]
 *
 * Starts a nats-server (test harness) and creates the sluice_xds bucket.
 * Then, for each server under test in turn (--order; bench/xds/run
 * alternates it between runs), in a forked child per server (so
 * every phase starts from a fresh gRPC state): writes a gateway-like
 * snapshot (100 EDS clusters, 100 endpoint sets, 1 listener, 1 route
 * configuration of 1,000 routes) and its commit, starts the server (which
 * loads it from the bucket), opens N ADS streams (P per HTTP/2 connection)
 * subscribed like an Envoy gateway (CDS and LDS wildcard, EDS of the 100
 * clusters, RDS of the route) that ACK every response, waits until every
 * stream holds all four types, then K times changes one endpoint set and K
 * times the route configuration, timing each change from the first KV put
 * until every stream has received the new version and its ACK has been
 * written to the connection. Both servers get each change the same way:
 * from the bucket.
 *
 * The generator does not decode resources: it scans each response for its
 * version, type URL and nonce only, and writes ACKs from pre-encoded parts,
 * so that it costs far less CPU than the servers it drives. Streams are
 * spread over T threads, each with its own completion queue.
 *
 * Per server it prints
 *   RUN server=S streams=N changes=K position=1|2
 *       eds_p50_ms=.. eds_p99_ms=.. eds_max_ms=.. eds_cpu_s=..
 *       rds_p50_ms=.. rds_p99_ms=.. rds_max_ms=.. rds_cpu_s=..
 *       p50_ms=.. p99_ms=.. max_ms=.. cpu_s=.. rss_per_stream_kb=.. sync_ms=.. gen_cpu_s=..
 * eds_* over the K endpoint-set changes, rds_* over the K route changes,
 * the rest over all 2K; percentiles by nearest rank (p99 is below the
 * maximum only from K = 100). cpu_s is the server's user+system CPU
 * (/proc/<pid>/stat) over those changes. rss_per_stream_kb is (RSS with
 * N synced streams - RSS before any stream) / N, each sampled 0.5 s after
 * a clean-up: the peer gets SIGUSR1 (runtime.GC + debug.FreeOSMemory),
 * sluice-xds trims its heap by itself when idle (malloc_trim). The peer
 * runs with GOMAXPROCS = --workers (sluice-xds's worker threads).
 */
#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "sluice/xds_keys.h"
#include "xds_client.h"
#include "sluice/kv.h"
#include "sluice/log.h"
#include "sluice/wire.h"
#include "sluice/xds.h"
#include "xds_apply.h"

#define ADS "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources"
#define NCL 100
#define QMAX 8
#define PROXY "gateway-proxy"
#define RDS_NAME "listener-8080-routes"
#define WANT_TYPES (1u << SL_XDS_CLUSTER | 1u << SL_XDS_ENDPOINT | 1u << SL_XDS_LISTENER | 1u << SL_XDS_ROUTE)

typedef struct bstream bstream;
typedef struct btag {
    int kind; /* 0 recv, 1 send, 2 meta */
    bstream *s;
} btag;

struct bstream {
    grpc_call *call;
    btag t_recv, t_send, t_meta;
    grpc_byte_buffer *rbuf, *sbuf;
    grpc_metadata_array md;
    int sending, qn, node_sent, synced;
    grpc_slice q[QMAX];
    unsigned got; /* types received */
    char ver[SL_XDS_TYPE_COUNT][48];
    int seen_epoch;    /* the change of this epoch reached the stream */
    int counted_epoch; /* ... and its ACK was written */
};

/* ---- the change being timed (written by main between changes) ---- */
static atomic_int epoch;
static int changing_type = -1;
static char want_old[48];
static atomic_int pending;
static atomic_int nsynced;
static pthread_mutex_t done_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t done_cv = PTHREAD_COND_INITIALIZER;
static atomic_int stop_threads; /* the run is over: streams may now fail */

/* Pre-encoded request parts: resource_names (field 3) per type. */
static uint8_t *names_blob[SL_XDS_TYPE_COUNT];
static size_t names_len[SL_XDS_TYPE_COUNT];

static void die(const char *what)
{
    fprintf(stderr, "xds-bench: %s\n", what);
    exit(1);
}

static void build_names(void)
{
    static char eds[NCL][16];
    for (int t = 0; t < SL_XDS_TYPE_COUNT; t++) {
        size_t len = 0;
        int n = t == SL_XDS_ENDPOINT ? NCL : t == SL_XDS_ROUTE ? 1 : 0;
        for (int i = 0; i < n; i++) {
            if (t == SL_XDS_ENDPOINT)
                snprintf(eds[i], sizeof eds[i], "c%d", i);
            len += sl_wire_ld_len(strlen(t == SL_XDS_ENDPOINT ? eds[i] : RDS_NAME));
        }
        uint8_t *b = malloc(len + 1), *w = b;
        for (int i = 0; i < n; i++) {
            const char *nm = t == SL_XDS_ENDPOINT ? eds[i] : RDS_NAME;
            w = sl_wire_ld(w, 3, nm, strlen(nm));
        }
        names_blob[t] = b;
        names_len[t] = len;
    }
}

/* DiscoveryRequest{version_info=1, node=2, resource_names=3, type_url=4, response_nonce=5}. */
static grpc_slice request(bstream *s, sl_xds_type t, const char *ver, const char *nonce)
{
    static const uint8_t node[] = {0x0a, 5, 'b', 'e', 'n', 'c', 'h'}; /* Node{id="bench"} */
    const char *url = sl_xds_type_url(t);
    size_t vl = strlen(ver), nl = strlen(nonce), ul = strlen(url);
    size_t len = (vl ? sl_wire_ld_len(vl) : 0) + (s->node_sent ? 0 : sl_wire_ld_len(sizeof node)) + names_len[t] +
                 sl_wire_ld_len(ul) + (nl ? sl_wire_ld_len(nl) : 0);
    grpc_slice sl = grpc_slice_malloc(len);
    uint8_t *w = GRPC_SLICE_START_PTR(sl);
    if (vl)
        w = sl_wire_ld(w, 1, ver, vl);
    if (!s->node_sent)
        w = sl_wire_ld(w, 2, node, sizeof node);
    s->node_sent = 1;
    memcpy(w, names_blob[t], names_len[t]);
    w += names_len[t];
    w = sl_wire_ld(w, 4, url, ul);
    if (nl)
        w = sl_wire_ld(w, 5, nonce, nl);
    return sl;
}

static void pump(bstream *s)
{
    if (s->sending || !s->qn)
        return;
    s->sbuf = grpc_raw_byte_buffer_create(&s->q[0], 1);
    grpc_slice_unref(s->q[0]);
    memmove(s->q, s->q + 1, (size_t)(s->qn - 1) * sizeof s->q[0]);
    s->qn--;
    grpc_op op = {0};
    op.op = GRPC_OP_SEND_MESSAGE;
    op.data.send_message.send_message = s->sbuf;
    s->sending = 1;
    if (grpc_call_start_batch(s->call, &op, 1, &s->t_send, NULL) != GRPC_CALL_OK)
        die("cannot send");
}

static void enqueue(bstream *s, grpc_slice m)
{
    if (s->qn == QMAX)
        die("send queue full");
    s->q[s->qn++] = m;
    pump(s);
}

static void post_recv(bstream *s)
{
    grpc_op op = {0};
    op.op = GRPC_OP_RECV_MESSAGE;
    op.data.recv_message.recv_message = &s->rbuf;
    if (grpc_call_start_batch(s->call, &op, 1, &s->t_recv, NULL) != GRPC_CALL_OK)
        die("cannot receive");
}

/* ---- a cursor over the slices of a received message ---- */
typedef struct cursor {
    const uint8_t **p;
    size_t *len;
    size_t n, i, off;
} cursor;

static int cur_byte(cursor *c, uint8_t *b)
{
    while (c->i < c->n && c->off == c->len[c->i]) {
        c->i++;
        c->off = 0;
    }
    if (c->i == c->n)
        return 0;
    *b = c->p[c->i][c->off++];
    return 1;
}

/* The varint's bytes (they may span slices) gathered, then decoded. */
static int cur_varint(cursor *c, uint64_t *v)
{
    uint8_t b[10];
    size_t n = 0, pos = 0;
    do {
        if (n == sizeof b || !cur_byte(c, &b[n]))
            return 0;
    } while (b[n++] & 0x80);
    return sl_wire_varint_get(v, b, n, &pos) == SL_OK;
}

/* Copies (up to cap-1 bytes, NUL-terminated) or skips (dst NULL) n bytes. */
static int cur_take(cursor *c, char *dst, size_t cap, uint64_t n)
{
    size_t k = 0;
    while (n > 0) {
        while (c->i < c->n && c->off == c->len[c->i]) {
            c->i++;
            c->off = 0;
        }
        if (c->i == c->n)
            return 0;
        size_t a = c->len[c->i] - c->off;
        if (a > n)
            a = (size_t)n;
        if (dst && k + 1 < cap) {
            size_t m = a < cap - 1 - k ? a : cap - 1 - k;
            memcpy(dst + k, c->p[c->i] + c->off, m);
            k += m;
        }
        c->off += a;
        n -= a;
    }
    if (dst)
        dst[k] = 0;
    return 1;
}

/* Scans a DiscoveryResponse for version_info (1), type_url (4), nonce (5). */
static int scan_response(grpc_byte_buffer *bb, char *ver, char *url, char *nonce)
{
    grpc_byte_buffer_reader rd;
    const uint8_t *pv[256];
    size_t lv[256];
    cursor c = {pv, lv, 0, 0, 0};
    grpc_slice *sl;
    int ok = 1;
    ver[0] = url[0] = nonce[0] = 0;
    if (!grpc_byte_buffer_reader_init(&rd, bb))
        return 0;
    const uint8_t **hp = pv;
    size_t *hl = lv, cap = 256;
    while (grpc_byte_buffer_reader_peek(&rd, &sl)) {
        if (c.n == cap) {
            cap *= 2;
            const uint8_t **np = malloc(cap * sizeof *np);
            size_t *nl = malloc(cap * sizeof *nl);
            memcpy(np, c.p, c.n * sizeof *np);
            memcpy(nl, c.len, c.n * sizeof *nl);
            if (c.p != pv) {
                free(c.p);
                free(c.len);
            }
            c.p = np;
            c.len = nl;
            hp = np;
            hl = nl;
        }
        hp[c.n] = GRPC_SLICE_START_PTR(*sl);
        hl[c.n] = GRPC_SLICE_LENGTH(*sl);
        c.n++;
    }
    uint64_t key, len;
    while (cur_varint(&c, &key)) {
        if ((key & 7) == 0) {
            if (!cur_varint(&c, &len))
                ok = 0;
            continue;
        }
        if ((key & 7) != 2 || !cur_varint(&c, &len)) {
            ok = 0;
            break;
        }
        unsigned f = (unsigned)(key >> 3);
        char *dst = f == 1 ? ver : f == 4 ? url : f == 5 ? nonce : NULL;
        if (!cur_take(&c, dst, f == 4 ? 128 : 48, len)) {
            ok = 0;
            break;
        }
    }
    if (c.p != pv) {
        free(c.p);
        free(c.len);
    }
    grpc_byte_buffer_reader_destroy(&rd);
    return ok && url[0];
}

static void on_response(bstream *s)
{
    char ver[48], url[128], nonce[48];
    if (!scan_response(s->rbuf, ver, url, nonce))
        die("bad response");
    grpc_byte_buffer_destroy(s->rbuf);
    s->rbuf = NULL;
    sl_xds_type t;
    if (sl_xds_type_from_url(&t, url) != SL_OK)
        die("unknown type in response");
    s->got |= 1u << t;
    snprintf(s->ver[t], sizeof s->ver[t], "%s", ver);
    int e = atomic_load_explicit(&epoch, memory_order_acquire);
    if ((int)t == changing_type && s->seen_epoch < e && strcmp(ver, want_old) != 0)
        s->seen_epoch = e; /* counted when its ACK has been written */
    enqueue(s, request(s, t, ver, nonce));
    post_recv(s);
}

static void on_sent(bstream *s)
{
    grpc_byte_buffer_destroy(s->sbuf);
    s->sbuf = NULL;
    s->sending = 0;
    pump(s);
    if (s->sending)
        return;
    if (!s->synced && (s->got & WANT_TYPES) == WANT_TYPES) {
        s->synced = 1;
        atomic_fetch_add(&nsynced, 1);
    }
    if (s->seen_epoch > s->counted_epoch) {
        s->counted_epoch = s->seen_epoch;
        if (atomic_fetch_sub(&pending, 1) == 1) {
            pthread_mutex_lock(&done_mu);
            pthread_cond_signal(&done_cv);
            pthread_mutex_unlock(&done_mu);
        }
    }
}

static void *poller(void *arg)
{
    grpc_completion_queue *cq = arg;
    while (!atomic_load(&stop_threads)) {
        grpc_event ev = grpc_completion_queue_next(
            cq, gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(100, GPR_TIMESPAN)), NULL);
        if (ev.type != GRPC_OP_COMPLETE || atomic_load(&stop_threads))
            continue;
        btag *t = ev.tag;
        bstream *s = t->s;
        if (!ev.success && t->kind != 2)
            die(t->kind == 0 ? "stream failed (recv)" : "stream failed (send)");
        if (t->kind == 0) {
            if (!s->rbuf)
                die("stream ended");
            on_response(s);
        } else if (t->kind == 1) {
            on_sent(s);
        }
    }
    return NULL;
}

/* ---- server process stats ---- */
static long proc_val(pid_t pid, const char *what)
{
    char path[64], line[512];
    snprintf(path, sizeof path, "/proc/%d/%s", (int)pid, what);
    FILE *f = fopen(path, "r");
    long v = 0;
    if (!f)
        return 0;
    if (!strcmp(what, "status")) {
        while (fgets(line, sizeof line, f))
            if (sscanf(line, "VmRSS: %ld", &v) == 1)
                break;
    } else if (fgets(line, sizeof line, f)) { /* stat: utime stime are fields 14, 15 */
        char *p = strrchr(line, ')');
        long ut = 0, st = 0;
        if (p && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %ld %ld", &ut, &st) == 2)
            v = ut + st;
    }
    fclose(f);
    return v;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The p-th percentile (0 < p <= 100) of n sorted values, by nearest rank. */
static double pct(const double *v, int n, double p)
{
    int r = (int)(p / 100.0 * n + 0.999999);
    return v[(r < 1 ? 1 : r > n ? n : r) - 1];
}

/* RSS (kB) after the same clean-up for both servers: SIGUSR1 makes the
 * peer collect and return memory; sluice-xds trims by itself when idle. */
static long settled_rss(pid_t pid, int peer)
{
    if (peer)
        kill(pid, SIGUSR1);
    usleep(500000);
    return proc_val(pid, "status");
}

static double gen_cpu(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
           ((double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_usec) / 1e6;
}

/* ---- the snapshot in the bucket ---- */
#define NRES (2 * NCL + 2)
static char specs[NRES][96];
static uint64_t revs[NRES];
static sl_xds_type rtype[NRES];
static char rname[NRES][64];

static sl_status put_spec(sl_kv *kv, int i)
{
    char key[SL_XDS_KEY_MAX];
    size_t len;
    uint8_t *b = fx_build(specs[i], &rtype[i], rname[i], &len);
    if (!b)
        return sl_error_set(SL_ERR_INVALID, "bad spec %s", specs[i]);
    sl_status rc = sl_xds_key_resource(key, sizeof key, PROXY, rtype[i], rname[i]);
    if (rc == SL_OK)
        rc = sl_kv_put(&revs[i], kv, key, b, len);
    free(b);
    return rc;
}

static sl_status put_commit(sl_kv *kv)
{
    const char *names[NRES];
    uint64_t rev;
    for (int i = 0; i < NRES; i++)
        names[i] = rname[i];
    return fx_commit(&rev, kv, PROXY, NRES, rtype, names, revs);
}

static void init_specs(void)
{
    int n = 0;
    for (int i = 0; i < NCL; i++) {
        snprintf(specs[n++], sizeof specs[0], "cluster:c%d", i);
        snprintf(specs[n++], sizeof specs[0], "endpoint:c%d:127.0.0.1:%d", i, 10000 + i);
    }
    snprintf(specs[n++], sizeof specs[0], "listener:listener-8080:%s", RDS_NAME);
    snprintf(specs[n++], sizeof specs[0], "bigroute:%s:1000:%d", RDS_NAME, NCL);
}

static pid_t spawn_server(const char *bin, int peer, const char *nats_url, const char *workers, int *port)
{
    char maxprocs[64], line[256];
    const char *p;
    FILE *pf = NULL;
    /* The Go peer: as many threads as sluice-xds's workers. */
    snprintf(maxprocs, sizeof maxprocs, "GOMAXPROCS=%s", workers);
    const char *const peer_argv[] = {bin, "--nats-url", nats_url, "--listen", "127.0.0.1:0", NULL};
    /* Every stream comes from 127.0.0.1 (one generator standing for many
     * proxies): no per-address stream limit, which would refuse all but
     * 1,000 (the peer has none). */
    const char *const xds_argv[] = {bin, "--nats-url", nats_url, "--listen", "127.0.0.1:0", "--workers", workers,
                                    "--log-level", "warn", "--default-proxy", PROXY, "--max-streams-per-peer", "0",
                                    NULL};
    const char *const peer_env[] = {maxprocs, NULL};
    pid_t pid = harness_spawn_piped(peer ? peer_argv : xds_argv, peer ? peer_env : NULL, &pf);
    if (pid < 0)
        return -1;
    if (!pf || !fgets(line, sizeof line, pf) || !(p = strstr(line, "port ")) || sscanf(p, "port %d", port) != 1) {
        fprintf(stderr, "xds-bench: %s did not start\n", bin);
        kill(pid, SIGKILL);
        return -1;
    }
    return pid; /* the pipe stays open: the server may print more */
}

typedef struct opts {
    int streams, changes, threads, per_conn;
    const char *workers, *bin;
    harness_nats *h;
    int peer, position;
} opts;

/* One server: fresh snapshot, server, streams, changes. Runs in a child. */
static int phase(const opts *o)
{
    sl_nats *nc;
    sl_kv *kv;
    sl_kv_config cfg;
    sl_kv_config_init(&cfg, "sluice_xds");
    cfg.history = 5;
    if (harness_connect(&nc, o->h) != SL_OK || sl_kv_open(&kv, nc, &cfg) != SL_OK)
        die("cannot reach the bucket");
    for (int i = 0; i < NRES; i++)
        if (put_spec(kv, i) != SL_OK)
            die("cannot write the snapshot");
    if (put_commit(kv) != SL_OK)
        die("cannot write the commit");

    int port;
    pid_t pid = spawn_server(o->bin, o->peer, harness_nats_url(o->h), o->workers, &port);
    if (pid < 0)
        return 1;
    long rss0 = settled_rss(pid, o->peer); /* it has loaded the bucket */

    grpc_init();
    int nth = o->threads;
    grpc_completion_queue **cqs = calloc((size_t)nth, sizeof *cqs);
    pthread_t *th = calloc((size_t)nth, sizeof *th);
    for (int i = 0; i < nth; i++)
        cqs[i] = grpc_completion_queue_create_for_next(NULL);
    int nch = (o->streams + o->per_conn - 1) / o->per_conn;
    grpc_channel **ch = calloc((size_t)nch, sizeof *ch);
    char target[64];
    snprintf(target, sizeof target, "127.0.0.1:%d", port);
    for (int i = 0; i < nch; i++) {
        /* a distinct arg per channel: each gets its own connection */
        grpc_arg a[2] = {{.type = GRPC_ARG_INTEGER, .key = "sluice.bench.channel", .value.integer = i},
                         {.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, .value.integer = -1}};
        grpc_channel_args args = {2, a};
        grpc_channel_credentials *cr = grpc_insecure_credentials_create();
        ch[i] = grpc_channel_create(target, cr, &args);
        grpc_channel_credentials_release(cr);
    }
    bstream *ss = calloc((size_t)o->streams, sizeof *ss);
    grpc_slice method = grpc_slice_from_static_string(ADS);
    int64_t t0 = harness_now_ms();
    /* Streams are set up before the pollers run, so no stream is touched by
     * two threads; each stream's events come to its thread's queue. */
    for (int i = 0; i < o->streams; i++) {
        bstream *s = &ss[i];
        int c = i / o->per_conn;
        s->t_recv = (btag){0, s};
        s->t_send = (btag){1, s};
        s->t_meta = (btag){2, s};
        s->call = grpc_channel_create_call(ch[c], NULL, GRPC_PROPAGATE_DEFAULTS, cqs[c % nth], method, NULL,
                                           gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
        grpc_metadata_array_init(&s->md);
        xc_start_metadata(s->call, &s->md, &s->t_meta);
        post_recv(s);
        /* As an Envoy does: CDS and LDS first (wildcard), EDS and RDS names. */
        enqueue(s, request(s, SL_XDS_CLUSTER, "", ""));
        enqueue(s, request(s, SL_XDS_ENDPOINT, "", ""));
        enqueue(s, request(s, SL_XDS_LISTENER, "", ""));
        enqueue(s, request(s, SL_XDS_ROUTE, "", ""));
    }
    for (int i = 0; i < nth; i++)
        pthread_create(&th[i], NULL, poller, cqs[i]);
    while (atomic_load(&nsynced) < o->streams) {
        if (harness_now_ms() - t0 > 240000) {
            fprintf(stderr, "xds-bench: initial sync timed out (%d/%d)\n", atomic_load(&nsynced), o->streams);
            kill(pid, SIGKILL);
            return 1;
        }
        usleep(5000);
    }
    int64_t sync_ms = harness_now_ms() - t0;
    long rss1 = settled_rss(pid, o->peer); /* the server finishes its post-ACK work */
    long cpu0 = proc_val(pid, "stat"), cpu_mid = 0;
    double g0 = gen_cpu();

    int nch_total = 2 * o->changes;
    double *lat = calloc((size_t)nch_total, sizeof *lat);
    for (int k = 0; k < nch_total; k++) {
        int eds = k < o->changes, idx;
        if (k == o->changes)
            cpu_mid = proc_val(pid, "stat");
        changing_type = eds ? SL_XDS_ENDPOINT : SL_XDS_ROUTE;
        snprintf(want_old, sizeof want_old, "%s", ss[0].ver[changing_type]);
        atomic_store(&pending, o->streams);
        atomic_fetch_add_explicit(&epoch, 1, memory_order_release);
        if (eds) {
            idx = 2 * (k % NCL) + 1;
            snprintf(specs[idx], sizeof specs[0], "endpoint:c%d:127.0.0.1:%d", k % NCL, 20000 + k);
        } else {
            idx = NRES - 1;
            snprintf(specs[idx], sizeof specs[0], "bigroute:%s:%d:%d", RDS_NAME, 999 - (k % 2), NCL);
        }
        int64_t start = harness_now_ms();
        if (put_spec(kv, idx) != SL_OK || put_commit(kv) != SL_OK)
            die("cannot write a change");
        struct timespec dl;
        clock_gettime(CLOCK_REALTIME, &dl);
        dl.tv_sec += 60;
        pthread_mutex_lock(&done_mu);
        while (atomic_load(&pending) > 0)
            if (pthread_cond_timedwait(&done_cv, &done_mu, &dl) != 0 && atomic_load(&pending) > 0) {
                fprintf(stderr, "xds-bench: change %d timed out: %d streams pending\n", k, atomic_load(&pending));
                kill(pid, SIGKILL);
                return 1;
            }
        pthread_mutex_unlock(&done_mu);
        lat[k] = (double)(harness_now_ms() - start);
        usleep(20000);
    }
    long cpu1 = proc_val(pid, "stat");
    double g1 = gen_cpu(), tck = (double)sysconf(_SC_CLK_TCK);
    int K = o->changes;
    qsort(lat, (size_t)K, sizeof *lat, cmp_d);          /* the endpoint-set changes */
    qsort(lat + K, (size_t)K, sizeof *lat, cmp_d);      /* the route changes */
    double *all = malloc((size_t)nch_total * sizeof *all);
    memcpy(all, lat, (size_t)nch_total * sizeof *all);
    qsort(all, (size_t)nch_total, sizeof *all, cmp_d);
    printf("RUN server=%s streams=%d changes=%d position=%d "
           "eds_p50_ms=%.0f eds_p99_ms=%.0f eds_max_ms=%.0f eds_cpu_s=%.2f "
           "rds_p50_ms=%.0f rds_p99_ms=%.0f rds_max_ms=%.0f rds_cpu_s=%.2f "
           "p50_ms=%.0f p99_ms=%.0f max_ms=%.0f cpu_s=%.2f rss_per_stream_kb=%.1f "
           "sync_ms=%lld gen_cpu_s=%.2f rss0_kb=%ld rss1_kb=%ld\n",
           o->peer ? "peer" : "sluice", o->streams, K, o->position, pct(lat, K, 50), pct(lat, K, 99), lat[K - 1],
           (double)(cpu_mid - cpu0) / tck, pct(lat + K, K, 50), pct(lat + K, K, 99), lat[2 * K - 1],
           (double)(cpu1 - cpu_mid) / tck, pct(all, nch_total, 50), pct(all, nch_total, 99), all[nch_total - 1],
           (double)(cpu1 - cpu0) / tck, (double)(rss1 - rss0) / o->streams, (long long)sync_ms, g1 - g0, rss0,
           rss1);
    free(all);
    fflush(stdout);
    atomic_store(&stop_threads, 1);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return 0;
}

int main(int argc, char **argv)
{
    opts o = {.streams = 1000, .changes = 20, .threads = 1, .per_conn = 100, .workers = "2"};
    const char *which = "both", *sluice_bin = NULL, *peer_bin = NULL, *order = "sluice,peer";
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--streams"))
            o.streams = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--changes"))
            o.changes = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--workers"))
            o.workers = argv[i + 1];
        else if (!strcmp(argv[i], "--threads"))
            o.threads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--per-conn"))
            o.per_conn = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--server"))
            which = argv[i + 1];
        else if (!strcmp(argv[i], "--order"))
            order = argv[i + 1];
        else if (!strcmp(argv[i], "--sluice-bin"))
            sluice_bin = argv[i + 1];
        else if (!strcmp(argv[i], "--peer-bin"))
            peer_bin = argv[i + 1];
        else {
            fprintf(stderr, "usage: xds-bench [--streams N] [--changes K] [--server sluice|peer|both] "
                            "[--order sluice,peer|peer,sluice] [--workers W] [--threads T] [--per-conn P] "
                            "[--sluice-bin F] [--peer-bin F]\n");
            return 2;
        }
    }
    if (o.streams < 1 || o.changes < 1 || o.threads < 1 || o.per_conn < 1 ||
        (strcmp(order, "sluice,peer") && strcmp(order, "peer,sluice")))
        die("bad arguments");
    char self[4096], def_sluice[4200];
    ssize_t l = readlink("/proc/self/exe", self, sizeof self - 1);
    self[l > 0 ? l : 0] = 0;
    /* BUILD/bench/xds-bench -> BUILD/services/xds/sluice-xds */
    snprintf(def_sluice, sizeof def_sluice, "%.*s/../services/xds/sluice-xds", (int)(strrchr(self, '/') - self),
             self);
    if (!sluice_bin)
        sluice_bin = def_sluice;

    /* No NATS or gRPC client in this process: each phase is a fork. */
    sl_log_set_level(SL_LOG_WARN);
    harness_nats *h;
    if (harness_nats_start(&h))
        return 1;
    build_names();
    init_specs();
    o.h = h;

    int rc = 0, position = 0, peer_first = !strcmp(order, "peer,sluice");
    for (int i = 0; i < 2; i++) {
        int p = peer_first ? !i : i;
        if ((p == 0 && !strcmp(which, "peer")) || (p == 1 && !strcmp(which, "sluice")))
            continue;
        o.peer = p;
        o.position = ++position;
        o.bin = p ? peer_bin : sluice_bin;
        if (!o.bin)
            die("--peer-bin is required to run the peer");
        fflush(stdout);
        pid_t c = fork();
        if (c == 0)
            _exit(phase(&o)); /* skips the teardown of thousands of calls */
        int st;
        waitpid(c, &st, 0);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
            rc = 1;
    }
    harness_nats_free(h);
    return rc;
}
