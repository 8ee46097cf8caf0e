/* xds-bench - load generator for sluice-xds (issue 3's benchmark, own server
 * only for now; the go-control-plane peer is not written yet).
 *
 *   xds-bench [--streams N] [--changes K] [--workers W]
 *
 * Starts a nats-server (test harness) and the sluice-xds next to this
 * binary, writes a gateway-like snapshot (100 EDS clusters, 100 endpoint
 * sets, 1 listener, 1 route configuration of 1,000 routes), opens N ADS
 * streams subscribed like an Envoy gateway (CDS and LDS wildcard, EDS of the
 * 100 clusters, RDS of the route) that ACK every response, then K times
 * changes one endpoint set and K times one route, measuring per change the
 * time until every stream has received the new version and sent its ACK.
 * Last line:
 *   RESULT streams=N p50_ms=.. p99_ms=.. max_ms=.. cpu_s=.. rss_per_stream_kb=..
 */
#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "envoy/service/discovery/v3/discovery.pb-c.h"
#include "harness.h"
#include "sluice/kv.h"
#include "sluice/log.h"
#include "xds.h"
#include "xds_apply.h"

#define ADS "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources"
#define NCL 100
#define QMAX 8

typedef struct bstream bstream;
typedef struct btag {
    int kind; /* 0 recv, 1 send, 2 meta, 3 status */
    bstream *s;
} btag;

struct bstream {
    grpc_call *call;
    btag t_recv, t_send, t_meta;
    grpc_byte_buffer *rbuf, *sbuf;
    grpc_metadata_array md;
    int sending;
    grpc_slice q[QMAX];
    int qn;
    int got[SL_XDS_TYPE_COUNT];
    char eds_ver[40], rds_ver[40];
    int acked_change; /* the current change reached this stream and its ACK went out */
};

static grpc_completion_queue *cq;
static char *eds_names[NCL];
static int nstreams, changing_type = -1, pending_acks;
static char want_ver[40];

static grpc_slice request(const char *type_url, const char *nonce, const char *version, int n, char **names)
{
    Envoy__Service__Discovery__V3__DiscoveryRequest r = ENVOY__SERVICE__DISCOVERY__V3__DISCOVERY_REQUEST__INIT;
    Envoy__Config__Core__V3__Node node = ENVOY__CONFIG__CORE__V3__NODE__INIT;
    node.id = "bench";
    r.node = &node;
    r.type_url = (char *)type_url;
    r.response_nonce = (char *)nonce;
    r.version_info = (char *)version;
    r.n_resource_names = (size_t)n;
    r.resource_names = names;
    size_t len = envoy__service__discovery__v3__discovery_request__get_packed_size(&r);
    grpc_slice s = grpc_slice_malloc(len);
    envoy__service__discovery__v3__discovery_request__pack(&r, GRPC_SLICE_START_PTR(s));
    return s;
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
    grpc_call_start_batch(s->call, &op, 1, &s->t_send, NULL);
}

static void enqueue(bstream *s, grpc_slice m)
{
    if (s->qn == QMAX) {
        fprintf(stderr, "send queue full\n");
        exit(1);
    }
    s->q[s->qn++] = m;
    pump(s);
}

static void post_recv(bstream *s)
{
    grpc_op op = {0};
    op.op = GRPC_OP_RECV_MESSAGE;
    op.data.recv_message.recv_message = &s->rbuf;
    grpc_call_start_batch(s->call, &op, 1, &s->t_recv, NULL);
}

static char rds_name[] = "listener-8080-routes";

static void on_response(bstream *s)
{
    grpc_byte_buffer_reader rd;
    grpc_byte_buffer_reader_init(&rd, s->rbuf);
    grpc_slice d = grpc_byte_buffer_reader_readall(&rd);
    grpc_byte_buffer_reader_destroy(&rd);
    grpc_byte_buffer_destroy(s->rbuf);
    s->rbuf = NULL;
    Envoy__Service__Discovery__V3__DiscoveryResponse *r =
        envoy__service__discovery__v3__discovery_response__unpack(NULL, GRPC_SLICE_LENGTH(d), GRPC_SLICE_START_PTR(d));
    grpc_slice_unref(d);
    if (!r) {
        fprintf(stderr, "bad response\n");
        exit(1);
    }
    sl_xds_type t;
    if (sl_xds_type_from_url(&t, r->type_url) != SL_OK)
        exit(1);
    s->got[t]++;
    char *rn[1] = {rds_name};
    switch (t) {
    case SL_XDS_CLUSTER: enqueue(s, request(r->type_url, r->nonce, r->version_info, 0, NULL)); break;
    case SL_XDS_LISTENER: enqueue(s, request(r->type_url, r->nonce, r->version_info, 0, NULL)); break;
    case SL_XDS_ENDPOINT:
        snprintf(s->eds_ver, sizeof s->eds_ver, "%s", r->version_info);
        enqueue(s, request(r->type_url, r->nonce, r->version_info, NCL, eds_names));
        break;
    case SL_XDS_ROUTE:
        snprintf(s->rds_ver, sizeof s->rds_ver, "%s", r->version_info);
        enqueue(s, request(r->type_url, r->nonce, r->version_info, 1, rn));
        break;
    default: break;
    }
    if ((int)t == changing_type && !s->acked_change && strcmp(r->version_info, want_ver) != 0)
        s->acked_change = 1; /* counted when the ACK's send completes */
    envoy__service__discovery__v3__discovery_response__free_unpacked(r, NULL);
    post_recv(s);
}

static int step(int ms)
{
    grpc_event ev = grpc_completion_queue_next(
        cq, gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(ms, GPR_TIMESPAN)), NULL);
    if (ev.type != GRPC_OP_COMPLETE)
        return 0;
    btag *t = ev.tag;
    bstream *s = t->s;
    if (!ev.success && t->kind != 2) {
        fprintf(stderr, "stream failed (kind %d)\n", t->kind);
        exit(1);
    }
    if (t->kind == 0) {
        if (!s->rbuf) {
            fprintf(stderr, "stream ended\n");
            exit(1);
        }
        on_response(s);
    } else if (t->kind == 1) {
        grpc_byte_buffer_destroy(s->sbuf);
        s->sbuf = NULL;
        s->sending = 0;
        if (s->acked_change == 1 && !s->qn) {
            s->acked_change = 2;
            pending_acks--;
        }
        pump(s);
    }
    return 1;
}

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

int main(int argc, char **argv)
{
    int changes = 20;
    const char *workers = "2";
    nstreams = 1000;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--streams"))
            nstreams = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--changes"))
            changes = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--workers"))
            workers = argv[i + 1];
    }
    sl_log_set_level(SL_LOG_WARN);
    harness_nats *h;
    sl_nats *nc;
    sl_kv *kv;
    sl_kv_config cfg;
    if (harness_nats_start(&h) || harness_connect(&nc, h) != SL_OK)
        return 1;
    sl_kv_config_init(&cfg, "sluice_xds");
    cfg.history = 5;
    if (sl_kv_open(&kv, nc, &cfg) != SL_OK)
        return 1;

    /* The snapshot. */
    static char specs[2 * NCL + 2][96];
    char *sp[2 * NCL + 2];
    int n = 0;
    for (int i = 0; i < NCL; i++) {
        snprintf(specs[n], sizeof specs[n], "cluster:c%d", i);
        sp[n] = specs[n];
        n++;
        snprintf(specs[n], sizeof specs[n], "endpoint:c%d:127.0.0.1:%d", i, 10000 + i);
        sp[n] = specs[n];
        n++;
        eds_names[i] = strdup(specs[n - 2] + 8);
    }
    snprintf(specs[n], sizeof specs[n], "listener:listener-8080:%s", rds_name);
    sp[n] = specs[n];
    n++;
    snprintf(specs[n], sizeof specs[n], "bigroute:%s:1000:%d", rds_name, NCL);
    sp[n] = specs[n];
    n++;
    uint64_t rev;
    if (fx_apply(&rev, kv, "gateway-proxy", n, sp) != SL_OK)
        return 1;

    /* The server. */
    int fds[2];
    if (pipe(fds))
        return 1;
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(fds[1], 1);
        char bin[4096];
        ssize_t l = readlink("/proc/self/exe", bin, sizeof bin - 32);
        bin[l > 0 ? l : 0] = 0;
        strcpy(strrchr(bin, '/') + 1, "sluice-xds");
        execl(bin, bin, "--nats-url", harness_nats_url(h), "--listen", "127.0.0.1:0", "--workers", workers,
              "--log-level", "warn", (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    FILE *pf = fdopen(fds[0], "r");
    char line[256];
    int port = 0;
    if (!fgets(line, sizeof line, pf) || sscanf(line, "sluice-xds listening on port %d", &port) != 1)
        return 1;
    if (getenv("XDS_BENCH_DEBUG"))
        fprintf(stderr, "server on port %d\n", port);
    usleep(300000);
    long rss0 = proc_val(pid, "status");

    grpc_init();
    cq = grpc_completion_queue_create_for_next(NULL);
    int nch = (nstreams + 99) / 100;
    grpc_channel **ch = calloc((size_t)nch, sizeof *ch);
    char target[64];
    snprintf(target, sizeof target, "127.0.0.1:%d", port);
    for (int i = 0; i < nch; i++) {
        grpc_arg a = {.type = GRPC_ARG_INTEGER, .key = "sluice.bench.channel", .value.integer = i};
        grpc_channel_args args = {1, &a};
        grpc_channel_credentials *cr = grpc_insecure_credentials_create();
        ch[i] = grpc_channel_create(target, cr, &args);
        grpc_channel_credentials_release(cr);
    }
    bstream *ss = calloc((size_t)nstreams, sizeof *ss);
    grpc_slice method = grpc_slice_from_static_string(ADS);
    char *rn[1] = {rds_name};
    for (int i = 0; i < nstreams; i++) {
        bstream *s = &ss[i];
        s->t_recv = (btag){0, s};
        s->t_send = (btag){1, s};
        s->t_meta = (btag){2, s};
        s->call = grpc_channel_create_call(ch[i / 100], NULL, GRPC_PROPAGATE_DEFAULTS, cq, method, NULL,
                                           gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
        grpc_metadata_array_init(&s->md);
        grpc_op ops[2];
        memset(ops, 0, sizeof ops);
        ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
        ops[1].op = GRPC_OP_RECV_INITIAL_METADATA;
        ops[1].data.recv_initial_metadata.recv_initial_metadata = &s->md;
        grpc_call_start_batch(s->call, ops, 2, &s->t_meta, NULL);
        post_recv(s);
        enqueue(s, request(sl_xds_type_url(SL_XDS_CLUSTER), "", "", 0, NULL));
        enqueue(s, request(sl_xds_type_url(SL_XDS_ENDPOINT), "", "", NCL, eds_names));
        enqueue(s, request(sl_xds_type_url(SL_XDS_LISTENER), "", "", 0, NULL));
        enqueue(s, request(sl_xds_type_url(SL_XDS_ROUTE), "", "", 1, rn));
    }
    /* Initial sync. */
    int64_t t0 = harness_now_ms();
    for (;;) {
        int done = 0;
        for (int i = 0; i < nstreams; i++)
            done += ss[i].got[SL_XDS_CLUSTER] && ss[i].got[SL_XDS_ENDPOINT] && ss[i].got[SL_XDS_LISTENER] &&
                    ss[i].got[SL_XDS_ROUTE] && !ss[i].qn && !ss[i].sending;
        if (done == nstreams)
            break;
        if (getenv("XDS_BENCH_DEBUG"))
            fprintf(stderr, "sync %d/%d s0: got %d %d %d %d %d qn=%d sending=%d\n", done, nstreams, ss[0].got[0],
                    ss[0].got[1], ss[0].got[2], ss[0].got[3], ss[0].got[4], ss[0].qn, ss[0].sending);
        if (harness_now_ms() - t0 > 300000) {
            fprintf(stderr, "initial sync timed out (%d/%d)\n", done, nstreams);
            return 1;
        }
        while (step(5))
            ;
    }
    int64_t sync_ms = harness_now_ms() - t0;
    long rss1 = proc_val(pid, "status");
    long cpu0 = proc_val(pid, "stat");

    double *lat = calloc((size_t)(2 * changes), sizeof *lat);
    for (int k = 0; k < 2 * changes; k++) {
        int eds = k < changes;
        changing_type = eds ? SL_XDS_ENDPOINT : SL_XDS_ROUTE;
        snprintf(want_ver, sizeof want_ver, "%s", eds ? ss[0].eds_ver : ss[0].rds_ver);
        for (int i = 0; i < nstreams; i++)
            ss[i].acked_change = 0;
        pending_acks = nstreams;
        if (eds)
            snprintf(specs[2 * (k % NCL) + 1], sizeof specs[0], "endpoint:c%d:127.0.0.1:%d", k % NCL, 20000 + k);
        else
            snprintf(specs[n - 1], sizeof specs[0], "bigroute:%s:%d:%d", rds_name, 999 - (k % 2), NCL);
        int64_t start = harness_now_ms();
        if (fx_apply(&rev, kv, "gateway-proxy", n, sp) != SL_OK)
            return 1;
        while (pending_acks > 0) {
            step(50);
            if (harness_now_ms() - start > 60000) {
                fprintf(stderr, "change %d timed out: %d streams pending\n", k, pending_acks);
                return 1;
            }
        }
        lat[k] = (double)(harness_now_ms() - start);
        while (step(1))
            ;
    }
    long cpu1 = proc_val(pid, "stat");
    qsort(lat, (size_t)(2 * changes), sizeof *lat, cmp_d);
    double p50 = lat[changes], p99 = lat[(int)(0.99 * (2 * changes - 1))], mx = lat[2 * changes - 1];
    double cpu_s = (double)(cpu1 - cpu0) / (double)sysconf(_SC_CLK_TCK);
    printf("initial sync of %d streams: %lld ms; server RSS %ld kB -> %ld kB\n", nstreams, (long long)sync_ms,
           rss0, rss1);
    printf("RESULT streams=%d p50_ms=%.0f p99_ms=%.0f max_ms=%.0f cpu_s=%.2f rss_per_stream_kb=%.1f\n", nstreams,
           p50, p99, mx, cpu_s, (double)(rss1 - rss0) / nstreams);
    fflush(stdout);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    _exit(0); /* skip the orderly teardown of thousands of calls */
}
