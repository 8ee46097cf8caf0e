/* server.c - gRPC core plumbing for sluice-xds (see server.h).
 *
 * Every call is an `xstream`. Its completion-queue tags are embedded in it;
 * `pending` counts the batches in flight (a stream is freed when the call
 * has closed and nothing is pending). The registry (a list under a mutex)
 * lets xds_server_notify() find the streams of a proxy; it only ever
 * starts a zero-op batch on them, which posts the stream's wake tag to the
 * stream's own queue, so all protocol work happens on the stream's worker.
 */
#include "server.h"
#include "tlsreload.h"

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sluice/file.h"
#include "sluice/log.h"
#include "sluice/pbcheck.h"

#define ACCEPTS_PER_WORKER 16

static const struct method {
    const char *path;
    int delta, ads;
    sl_xds_type type;
    const char *label;
} methods[] = {
    {"/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources", 0, 1, 0, "ads"},
    {"/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources", 1, 1, 0, "ads"},
    {"/envoy.service.listener.v3.ListenerDiscoveryService/StreamListeners", 0, 0, SL_XDS_LISTENER, "lds"},
    {"/envoy.service.listener.v3.ListenerDiscoveryService/DeltaListeners", 1, 0, SL_XDS_LISTENER, "lds"},
    {"/envoy.service.route.v3.RouteDiscoveryService/StreamRoutes", 0, 0, SL_XDS_ROUTE, "rds"},
    {"/envoy.service.route.v3.RouteDiscoveryService/DeltaRoutes", 1, 0, SL_XDS_ROUTE, "rds"},
    {"/envoy.service.cluster.v3.ClusterDiscoveryService/StreamClusters", 0, 0, SL_XDS_CLUSTER, "cds"},
    {"/envoy.service.cluster.v3.ClusterDiscoveryService/DeltaClusters", 1, 0, SL_XDS_CLUSTER, "cds"},
    {"/envoy.service.endpoint.v3.EndpointDiscoveryService/StreamEndpoints", 0, 0, SL_XDS_ENDPOINT, "eds"},
    {"/envoy.service.endpoint.v3.EndpointDiscoveryService/DeltaEndpoints", 1, 0, SL_XDS_ENDPOINT, "eds"},
    {"/envoy.service.secret.v3.SecretDiscoveryService/StreamSecrets", 0, 0, SL_XDS_SECRET, "sds"},
    {"/envoy.service.secret.v3.SecretDiscoveryService/DeltaSecrets", 1, 0, SL_XDS_SECRET, "sds"},
};
#define NMETHODS (sizeof methods / sizeof methods[0])

typedef enum tag_kind { TAG_ACCEPT, TAG_META, TAG_RECV, TAG_SEND, TAG_WAKE, TAG_STATUS } tag_kind;

struct xstream;
struct worker;

typedef struct tag {
    tag_kind kind;
    void *owner;
} tag;

typedef struct acceptor {
    tag t;
    struct worker *w;
    grpc_call *call;
    grpc_call_details details;
    grpc_metadata_array md;
} acceptor;

/* The resources of a response, concatenated: streams that get the same
 * resources (every gateway of a proxy, after a change) share one body
 * slice instead of one slice per resource each. Holding references to the
 * resources keeps their addresses from being reused while the entry lives,
 * so comparing pointers is enough to find a body. */
#define BODY_CACHE 8

typedef struct body {
    sl_xds_res **res; /* NULL: free slot */
    size_t n;
    int delta;
    uint64_t hash;
    unsigned long used;
    grpc_slice s;
} body;

typedef struct worker {
    struct xds_server *srv;
    grpc_completion_queue *cq;
    pthread_t thread;
    acceptor acc[ACCEPTS_PER_WORKER];
    body bodies[BODY_CACHE]; /* touched by this worker's thread only */
    unsigned long tick;
} worker;

typedef struct xstream {
    tag t_meta, t_recv, t_send, t_wake, t_status;
    struct xds_server *srv;
    worker *w;
    grpc_call *call;
    const struct method *m; /* NULL: unknown method, only a status is sent */
    sl_xds_stream *sm;
    grpc_byte_buffer *recv_buf;
    grpc_byte_buffer *send_buf;
    int cancelled; /* from RECV_CLOSE_ON_SERVER (started with the status) */
    int send_inflight, closed, finishing, status_started;
    grpc_status_code code;
    char *msg; /* the final status message (malloc'd) */
    atomic_int pending;
    atomic_int wake_pending;
    int registered;
    const char *proxy; /* the stream state's (interned) proxy; set under the registry lock once known */
    const char *node_id; /* the stream state's node id; set with proxy */
    char *identity;      /* the proxy the client proved (identity.h), or NULL when none is required */
    const char *peer;    /* its address as counted by the server's xds_peers, or NULL */
    /* Published per-proxy state (xds_server_each): written by the
     * stream's worker, read by the publisher. err under the registry lock
     * (written on a NACK only). */
    _Atomic uint64_t synced;
    atomic_int nacked;
    char err[256];
    struct xstream *prev, *next;
} xstream;

struct xds_server {
    xds_tls *tls; /* TLS files taken up again when they change (NULL: plaintext) */
    xds_server_opts o;
    char *listen, *default_proxy;
    grpc_server *server;
    int port;
    int nworkers;
    worker *workers;
    pthread_mutex_t mu; /* the registry */
    xstream *head;
    int stopping;
    atomic_int live;
    xds_limits limits;
    xds_peers *peers;
    atomic_uint gen; /* bumped whenever something xds_server_each reports changes */
    /* metrics (NULL without a registry) */
    sl_gauge *g_streams[NMETHODS];
    sl_counter *c_push[SL_XDS_TYPE_COUNT], *c_ack[SL_XDS_TYPE_COUNT], *c_nack[SL_XDS_TYPE_COUNT];
    sl_counter *c_push_bytes[SL_XDS_TYPE_COUNT], *c_bad, *c_denied, *c_limited;
    sl_histogram *h_latency[SL_XDS_TYPE_COUNT];
};

static void stream_event(xstream *x, tag_kind k, int ok);

static inline const char *xproxy(const xstream *x) { return x->proxy ? x->proxy : ""; }

/* ---- registry ---- */

static void reg_add(xstream *x)
{
    xds_server *s = x->srv;
    pthread_mutex_lock(&s->mu);
    x->next = s->head;
    if (s->head)
        s->head->prev = x;
    s->head = x;
    x->registered = 1;
    pthread_mutex_unlock(&s->mu);
}

static void reg_del(xstream *x)
{
    xds_server *s = x->srv;
    pthread_mutex_lock(&s->mu);
    if (x->registered) {
        if (x->prev)
            x->prev->next = x->next;
        else
            s->head = x->next;
        if (x->next)
            x->next->prev = x->prev;
        x->registered = 0;
        atomic_fetch_add_explicit(&s->gen, 1, memory_order_relaxed);
    }
    pthread_mutex_unlock(&s->mu);
}

void xds_server_notify(xds_server *s, const char *proxy)
{
    atomic_fetch_add_explicit(&s->gen, 1, memory_order_relaxed); /* the served revision moved */
    pthread_mutex_lock(&s->mu);
    if (!s->stopping)
        for (xstream *x = s->head; x; x = x->next) {
            if (!x->proxy || (proxy && strcmp(x->proxy, proxy) != 0))
                continue;
            int expect = 0;
            if (!atomic_compare_exchange_strong(&x->wake_pending, &expect, 1))
                continue; /* a wake is already queued */
            atomic_fetch_add(&x->pending, 1);
            if (grpc_call_start_batch(x->call, NULL, 0, &x->t_wake, NULL) != GRPC_CALL_OK) {
                atomic_fetch_sub(&x->pending, 1);
                atomic_store(&x->wake_pending, 0);
            }
        }
    pthread_mutex_unlock(&s->mu);
}

int xds_server_streams(xds_server *s) { return atomic_load(&s->live); }

unsigned xds_server_state_gen(xds_server *s) { return atomic_load_explicit(&s->gen, memory_order_relaxed); }

void xds_server_each(xds_server *s, void (*fn)(void *ud, const xds_stream_state *st), void *ud)
{
    pthread_mutex_lock(&s->mu);
    for (xstream *x = s->head; x; x = x->next) {
        if (!x->proxy)
            continue;
        int nacked = atomic_load_explicit(&x->nacked, memory_order_relaxed);
        xds_stream_state st = {x->proxy, x->node_id, atomic_load_explicit(&x->synced, memory_order_relaxed),
                                  nacked, nacked ? x->err : ""};
        fn(ud, &st);
    }
    pthread_mutex_unlock(&s->mu);
}

/* Mirrors the stream's confirmed revision into the atomics the publisher
 * reads: a few loads, and a store and a counter bump only on a change. */
static void note_synced(xstream *x)
{
    int nacked;
    uint64_t rev = sl_xds_stream_synced(x->sm, &nacked);
    if (rev != atomic_load_explicit(&x->synced, memory_order_relaxed) ||
        nacked != atomic_load_explicit(&x->nacked, memory_order_relaxed)) {
        atomic_store_explicit(&x->synced, rev, memory_order_relaxed);
        atomic_store_explicit(&x->nacked, nacked, memory_order_relaxed);
        atomic_fetch_add_explicit(&x->srv->gen, 1, memory_order_relaxed);
    }
}

/* ---- streams ---- */

static int start(xstream *x, const grpc_op *ops, size_t n, tag *t)
{
    atomic_fetch_add(&x->pending, 1);
    grpc_call_error e = grpc_call_start_batch(x->call, ops, n, t, NULL);
    if (e != GRPC_CALL_OK) {
        atomic_fetch_sub(&x->pending, 1);
        sl_log_warn("xds", "start batch failed", "err=%d proxy=%s", (int)e, sl_log_q(xproxy(x)));
        return -1;
    }
    return 0;
}

static void finish(xstream *x, grpc_status_code code, const char *msg)
{
    if (x->finishing)
        return;
    x->finishing = 1;
    x->code = code;
    x->msg = strndup(msg ? msg : "", 255); /* NULL (no message) when out of memory */
}

static void stream_free(xstream *x)
{
    xds_server *s = x->srv;
    reg_del(x);
    xds_peers_release(s->peers, x->peer);
    if (x->m && s->g_streams[x->m - methods])
        sl_gauge_add(s->g_streams[x->m - methods], -1);
    if (x->recv_buf)
        grpc_byte_buffer_destroy(x->recv_buf);
    if (x->send_buf)
        grpc_byte_buffer_destroy(x->send_buf);
    sl_xds_stream_free(x->sm);
    grpc_call_unref(x->call);
    free(x->identity);
    free(x->msg);
    free(x);
    atomic_fetch_sub(&s->live, 1);
}

static void post_recv(xstream *x)
{
    grpc_op op = {0};
    op.op = GRPC_OP_RECV_MESSAGE;
    op.data.recv_message.recv_message = &x->recv_buf;
    if (start(x, &op, 1, &x->t_recv))
        finish(x, GRPC_STATUS_INTERNAL, "cannot receive");
}

static void unref_res(void *p) { sl_xds_res_unref(p); }

/* Requests are decoded into a per-thread arena, reset after each request:
 * an Envoy ACK carries every subscribed name (100 EDS names for a gateway),
 * which would otherwise be as many mallocs and frees per ACK. */
#define ARENA_SIZE 65536

typedef struct arena {
    uint8_t *buf;
    size_t used;
    void *big; /* overflow blocks, a list through their first word */
} arena;

static _Thread_local arena tl_arena;

static void *arena_alloc(void *ud, size_t n)
{
    arena *a = ud;
    n = (n + 15) & ~(size_t)15;
    if (!a->buf)
        a->buf = malloc(ARENA_SIZE);
    if (a->buf && a->used + n <= ARENA_SIZE) {
        void *p = a->buf + a->used;
        a->used += n;
        return p;
    }
    void **b = malloc(16 + n);
    if (!b)
        return NULL;
    b[0] = a->big;
    a->big = b;
    return (uint8_t *)b + 16;
}

static void arena_free(void *ud, void *p)
{
    (void)ud;
    (void)p; /* everything goes at arena_reset */
}

static void arena_reset(arena *a)
{
    while (a->big) {
        void **b = a->big;
        a->big = b[0];
        free(b);
    }
    a->used = 0;
}

static void body_clear(body *b)
{
    for (size_t i = 0; i < b->n; i++)
        sl_xds_res_unref(b->res[i]);
    free(b->res);
    if (b->res)
        grpc_slice_unref(b->s);
    memset(b, 0, sizeof *b);
}

/* The body of r (a new slice reference), from the worker's cache or built
 * and cached. 0 when out of memory. */
static int body_get(worker *w, const sl_xds_response *r, grpc_slice *out)
{
    uint64_t h = 0xcbf29ce484222325ULL ^ (uint64_t)r->delta;
    for (size_t i = 0; i < r->nres; i++)
        h = (h ^ (uint64_t)(uintptr_t)r->res[i]) * 0x100000001b3ULL;
    body *victim = &w->bodies[0];
    w->tick++;
    for (int i = 0; i < BODY_CACHE; i++) {
        body *b = &w->bodies[i];
        if (b->res && b->hash == h && b->n == r->nres && b->delta == r->delta &&
            memcmp(b->res, r->res, r->nres * sizeof *r->res) == 0) {
            b->used = w->tick;
            *out = grpc_slice_ref(b->s);
            return 1;
        }
        if (!b->res || (victim->res && b->used < victim->used))
            victim = b;
    }
    size_t len = 0, l;
    for (size_t i = 0; i < r->nres; i++) {
        sl_xds_response_elem(r, i, &l);
        len += l;
    }
    sl_xds_res **res = malloc(r->nres * sizeof *res);
    if (!res)
        return 0;
    grpc_slice s = grpc_slice_malloc(len);
    uint8_t *p = GRPC_SLICE_START_PTR(s);
    for (size_t i = 0; i < r->nres; i++) {
        const uint8_t *e = sl_xds_response_elem(r, i, &l);
        memcpy(p, e, l);
        p += l;
        res[i] = sl_xds_res_ref(r->res[i]);
    }
    body_clear(victim);
    *victim = (body){res, r->nres, r->delta, h, w->tick, s};
    *out = grpc_slice_ref(s);
    return 1;
}

static void try_send(xstream *x)
{
    xds_server *s = x->srv;
    sl_xds_response *r;
    if (x->finishing || x->send_inflight || !x->sm)
        return;
    if (sl_xds_stream_next(x->sm, &r) != SL_OK) {
        finish(x, GRPC_STATUS_RESOURCE_EXHAUSTED, sl_error_msg());
        return;
    }
    note_synced(x); /* types found up to date move to the snapshot's revision */
    if (!r)
        return;
    /* The head is copied. One resource is sent from the cache's bytes by a
     * slice holding a reference; several go as one body slice shared by
     * every stream of this worker that gets the same resources (a slice per
     * resource would cost each stream's HTTP/2 buffers room for as many). */
    grpc_slice sl[2];
    size_t nsl = 1;
    sl[0] = grpc_slice_from_copied_buffer((const char *)r->head, r->head_len);
    if (r->nres == 1) {
        size_t len;
        const uint8_t *e = sl_xds_response_elem(r, 0, &len);
        sl[nsl++] = grpc_slice_new_with_user_data((void *)e, len, unref_res, sl_xds_res_ref(r->res[0]));
    } else if (r->nres > 1) {
        if (!body_get(x->w, r, &sl[nsl])) {
            grpc_slice_unref(sl[0]);
            sl_xds_response_free(r);
            finish(x, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
            return;
        }
        nsl++;
    }
    x->send_buf = grpc_raw_byte_buffer_create(sl, nsl);
    for (size_t i = 0; i < nsl; i++)
        grpc_slice_unref(sl[i]);
    size_t bytes = sl_xds_response_size(r);
    sl_xds_type t = r->type;
    sl_log_debug("xds", "push", "proxy=%s type=%s version=%s nonce=%s resources=%zu removed=%zu bytes=%zu",
                 sl_log_q(xproxy(x)), sl_xds_type_short(t), r->version, r->nonce, r->nres, r->nremoved, bytes);
    sl_xds_response_free(r);

    grpc_op op = {0};
    op.op = GRPC_OP_SEND_MESSAGE;
    op.data.send_message.send_message = x->send_buf;
    if (start(x, &op, 1, &x->t_send)) {
        finish(x, GRPC_STATUS_INTERNAL, "cannot send");
        return;
    }
    x->send_inflight = 1;
    if (s->c_push[t]) {
        sl_counter_inc(s->c_push[t]);
        sl_counter_add(s->c_push_bytes[t], bytes);
    }
}

static void on_request(xstream *x)
{
    xds_server *s = x->srv;
    grpc_byte_buffer_reader rd;
    grpc_slice data;
    sl_xds_req_info info;
    sl_status rc;
    ProtobufCMessage *msg = NULL;

    if (!grpc_byte_buffer_reader_init(&rd, x->recv_buf)) {
        finish(x, GRPC_STATUS_INTERNAL, "cannot read message");
        return;
    }
    data = grpc_byte_buffer_reader_readall(&rd);
    grpc_byte_buffer_reader_destroy(&rd);
    grpc_byte_buffer_destroy(x->recv_buf);
    x->recv_buf = NULL;
    const uint8_t *p = GRPC_SLICE_START_PTR(data);
    size_t n = GRPC_SLICE_LENGTH(data);
    ProtobufCAllocator al = {arena_alloc, arena_free, &tl_arena};
    const ProtobufCMessageDescriptor *desc = x->m->delta
                                                 ? &envoy__service__discovery__v3__delta_discovery_request__descriptor
                                                 : &envoy__service__discovery__v3__discovery_request__descriptor;
    /* untrusted bytes: protobuf-c recurses without a depth limit */
    if (sl_pb_check(desc, p, n, SL_PB_MAX_DEPTH) != SL_OK) {
        grpc_slice_unref(data);
        if (s->c_bad)
            sl_counter_inc(s->c_bad);
        sl_log_warn("xds", "request refused", "proxy=%s bytes=%zu err=%s", sl_log_q(xproxy(x)), n,
                    sl_log_q(sl_error_msg()));
        finish(x, GRPC_STATUS_INVALID_ARGUMENT, sl_error_msg());
        return;
    }
    msg = protobuf_c_message_unpack(desc, &al, n, p);
    grpc_slice_unref(data);
    if (!msg) {
        arena_reset(&tl_arena);
        if (s->c_bad)
            sl_counter_inc(s->c_bad);
        sl_log_warn("xds", "malformed request", "proxy=%s bytes=%zu", sl_log_q(xproxy(x)), n);
        finish(x, GRPC_STATUS_INVALID_ARGUMENT,
               x->m->delta ? "malformed DeltaDiscoveryRequest" : "malformed DiscoveryRequest");
        return;
    }
    size_t names = xds_request_names(msg, x->m->delta);
    if (s->limits.max_names > 0 && names > (size_t)s->limits.max_names) {
        char why[200];
        snprintf(why, sizeof why, "request names %zu resources; the limit is %d (--max-names-per-request)", names,
                 s->limits.max_names);
        if (s->c_limited)
            sl_counter_inc(s->c_limited);
        sl_log_warn("xds", "request refused", "proxy=%s err=%s", sl_log_q(xproxy(x)), sl_log_q(why));
        finish(x, GRPC_STATUS_INVALID_ARGUMENT, why);
        goto out;
    }
    if (x->m->delta)
        rc = sl_xds_stream_on_delta(x->sm, (void *)msg, &info);
    else
        rc = sl_xds_stream_on_sotw(x->sm, (void *)msg, &info);
    if (rc != SL_OK) {
        if (s->c_bad)
            sl_counter_inc(s->c_bad);
        sl_log_warn("xds", "bad request", "proxy=%s err=%s", sl_log_q(xproxy(x)), sl_log_q(sl_error_msg()));
        finish(x, rc == SL_ERR_UNSUPPORTED ? GRPC_STATUS_UNIMPLEMENTED
                  : rc == SL_ERR_NOMEM     ? GRPC_STATUS_RESOURCE_EXHAUSTED
                                           : GRPC_STATUS_INVALID_ARGUMENT,
               sl_error_msg());
        goto out;
    }
    if (info.first_on_stream && x->identity && strcmp(x->identity, sl_xds_stream_proxy(x->sm)) != 0) {
        char why[600];
        snprintf(why, sizeof why, "node.metadata.role asks for proxy %.250s; this client is %.250s",
                 sl_xds_stream_proxy(x->sm), x->identity);
        if (s->c_denied)
            sl_counter_inc(s->c_denied);
        sl_log_warn("xds", "stream refused", "node=%s err=%s", sl_log_q(sl_xds_stream_node_id(x->sm)), sl_log_q(why));
        finish(x, GRPC_STATUS_PERMISSION_DENIED, why);
        goto out;
    }
    if (info.first_on_stream) {
        pthread_mutex_lock(&s->mu);
        x->proxy = sl_xds_stream_proxy(x->sm);
        x->node_id = sl_xds_stream_node_id(x->sm);
        pthread_mutex_unlock(&s->mu);
        atomic_fetch_add_explicit(&s->gen, 1, memory_order_relaxed);
        sl_log_info("xds", "stream opened", "method=%s delta=%d node=%s proxy=%s", x->m->label, x->m->delta,
                    sl_log_q(sl_xds_stream_node_id(x->sm)), sl_log_q(xproxy(x)));
    }
    if (info.kind == SL_XDS_REQ_ACK || info.kind == SL_XDS_REQ_NACK) {
        double lat = info.sent_ns ? (double)(sl_xds_now_ns() - info.sent_ns) / 1e9 : 0;
        if (info.kind == SL_XDS_REQ_ACK) {
            if (s->c_ack[info.type]) {
                sl_counter_inc(s->c_ack[info.type]);
                sl_histogram_observe(s->h_latency[info.type], lat);
            }
        } else {
            if (s->c_nack[info.type])
                sl_counter_inc(s->c_nack[info.type]);
            pthread_mutex_lock(&s->mu);
            snprintf(x->err, sizeof x->err, "%s: %s", sl_xds_type_short(info.type), info.error ? info.error : "");
            pthread_mutex_unlock(&s->mu);
            sl_log_warn("xds", "NACK", "node=%s proxy=%s type=%s version=%s error=%s",
                        sl_log_q(sl_xds_stream_node_id(x->sm)), sl_log_q(xproxy(x)), sl_xds_type_short(info.type),
                        sl_log_q(info.version), sl_log_q(info.error));
            if (s->o.on_nack) {
                xds_nack nk = {sl_xds_stream_node_id(x->sm), xproxy(x), info.type, info.version,
                                  info.nonce,                   info.error, info.error_code};
                s->o.on_nack(s->o.ud, &nk);
            }
        }
    }
    note_synced(x);
    post_recv(x);
    try_send(x);
out:
    arena_reset(&tl_arena);
}

/* Sends the final status once nothing else is being sent, with
 * RECV_CLOSE_ON_SERVER: its completion closes the stream. That op is not
 * kept pending for the stream's whole life: a client that goes away fails
 * the RECV_MESSAGE that is always pending, which finishes the stream. (Each
 * pending op is an entry in its completion queue's list of outstanding tags,
 * which Debian's libgrpc scans linearly at every completion.) */
static void maybe_status(xstream *x)
{
    if (!x->finishing || x->status_started || x->send_inflight || x->closed)
        return;
    grpc_op ops[3];
    memset(ops, 0, sizeof ops);
    size_t n = 0;
    grpc_slice details = grpc_slice_from_copied_string(x->msg ? x->msg : "");
    if (!x->m) { /* unknown method: initial metadata was never sent */
        ops[n].op = GRPC_OP_SEND_INITIAL_METADATA;
        n++;
    }
    ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[n].data.send_status_from_server.status = x->code;
    ops[n].data.send_status_from_server.status_details = &details;
    n++;
    ops[n].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    ops[n].data.recv_close_on_server.cancelled = &x->cancelled;
    n++;
    x->status_started = 1;
    if (start(x, ops, n, &x->t_status)) {
        grpc_call_cancel(x->call, NULL);
        x->closed = 1; /* nothing more can complete on this call */
        reg_del(x);
    }
    grpc_slice_unref(details);
}

static void stream_event(xstream *x, tag_kind k, int ok)
{
    switch (k) {
    case TAG_META:
        break;
    case TAG_RECV:
        if (!ok || !x->recv_buf)
            finish(x, GRPC_STATUS_OK, ""); /* client half-closed or went away */
        else
            on_request(x);
        break;
    case TAG_SEND:
        x->send_inflight = 0;
        grpc_byte_buffer_destroy(x->send_buf);
        x->send_buf = NULL;
        if (!ok)
            finish(x, GRPC_STATUS_UNAVAILABLE, "send failed");
        else
            try_send(x);
        break;
    case TAG_WAKE:
        atomic_store(&x->wake_pending, 0);
        try_send(x);
        break;
    case TAG_STATUS:
        x->closed = 1;
        reg_del(x);
        break;
    case TAG_ACCEPT:
        break;
    }
    maybe_status(x);
    if (atomic_fetch_sub(&x->pending, 1) == 1 && x->closed)
        stream_free(x);
}

static void request_call(acceptor *a);

/* Counts the stream against its peer address (--max-streams-per-peer);
 * false, with the stream finishing RESOURCE_EXHAUSTED, beyond the limit. */
static int admit_peer(xstream *x)
{
    xds_server *s = x->srv;
    bool over = false;
    char *peer = grpc_call_get_peer(x->call);

    x->peer = xds_peers_acquire(s->peers, peer ? peer : "unknown", &over);
    if (!x->peer) {
        char why[300];
        if (over)
            snprintf(why, sizeof why, "too many streams from %.200s: the limit is %d (--max-streams-per-peer)",
                     peer ? peer : "unknown", s->limits.max_streams_per_peer);
        else
            snprintf(why, sizeof why, "out of memory");
        if (s->c_limited)
            sl_counter_inc(s->c_limited);
        sl_log_debug("xds", "stream refused", "peer=%s err=%s", sl_log_q(peer ? peer : "-"), sl_log_q(why));
        finish(x, GRPC_STATUS_RESOURCE_EXHAUSTED, why);
    }
    gpr_free(peer);
    return x->peer != NULL;
}

static void on_accept(acceptor *a, int ok)
{
    worker *w = a->w;
    xds_server *s = w->srv;
    if (!ok) { /* shutting down */
        grpc_call_details_destroy(&a->details);
        grpc_metadata_array_destroy(&a->md);
        a->call = NULL;
        return;
    }
    xstream *x = calloc(1, sizeof *x);
    grpc_call *call = a->call;
    const struct method *m = NULL;
    for (size_t i = 0; i < NMETHODS; i++)
        if (grpc_slice_str_cmp(a->details.method, methods[i].path) == 0)
            m = &methods[i];
    char *path = grpc_slice_to_c_string(a->details.method);
    const char *no_identity = NULL;
    char *identity = xds_identity_required(s->o.identity)
                         ? xds_identity_of_call(s->o.identity, call, &a->md, &no_identity)
                         : NULL;
    grpc_call_details_destroy(&a->details);
    grpc_metadata_array_destroy(&a->md);
    request_call(a);
    if (!x) {
        grpc_call_cancel_with_status(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory", NULL);
        grpc_call_unref(call);
        gpr_free(path);
        free(identity);
        return;
    }
    x->identity = identity;
    x->t_meta = (tag){TAG_META, x};
    x->t_recv = (tag){TAG_RECV, x};
    x->t_send = (tag){TAG_SEND, x};
    x->t_wake = (tag){TAG_WAKE, x};
    x->t_status = (tag){TAG_STATUS, x};
    x->srv = s;
    x->w = w;
    x->call = call;
    x->m = m;
    atomic_fetch_add(&s->live, 1);
    atomic_init(&x->pending, 1); /* held until setup is done */

    grpc_op op = {0};
    if (xds_identity_required(s->o.identity) && !identity) {
        if (s->c_denied)
            sl_counter_inc(s->c_denied);
        sl_log_warn("xds", "stream refused", "method=%s err=%s", sl_log_q(path), sl_log_q(no_identity));
        x->m = NULL; /* as for an unknown method: no stream state, initial metadata still to send */
        finish(x, GRPC_STATUS_UNAUTHENTICATED, no_identity);
    } else if (!m) {
        sl_log_warn("xds", "unknown method", "method=%s", sl_log_q(path));
        char msg[300];
        snprintf(msg, sizeof msg, "unknown method %.250s", path);
        finish(x, GRPC_STATUS_UNIMPLEMENTED, msg);
    } else if (!admit_peer(x)) {
        x->m = NULL; /* refused: no stream state, as for an unknown method */
    } else {
        sl_xds_stream_opts so = {m->delta, m->ads, m->type, s->default_proxy};
        if (sl_xds_stream_new(&x->sm, s->o.cache, &so) != SL_OK) {
            finish(x, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
        } else {
            memset(&op, 0, sizeof op);
            op.op = GRPC_OP_SEND_INITIAL_METADATA;
            start(x, &op, 1, &x->t_meta);
            reg_add(x);
            if (s->g_streams[m - methods])
                sl_gauge_add(s->g_streams[m - methods], 1);
            post_recv(x);
        }
    }
    gpr_free(path);
    maybe_status(x);
    if (atomic_fetch_sub(&x->pending, 1) == 1 && x->closed)
        stream_free(x);
}

static void request_call(acceptor *a)
{
    xds_server *s = a->w->srv;
    grpc_call_details_init(&a->details);
    grpc_metadata_array_init(&a->md);
    a->call = NULL;
    if (grpc_server_request_call(s->server, &a->call, &a->details, &a->md, a->w->cq, a->w->cq, &a->t) !=
        GRPC_CALL_OK) {
        grpc_call_details_destroy(&a->details);
        grpc_metadata_array_destroy(&a->md);
    }
}

/* A burst of work (an initial sync of thousands of streams, a fan-out)
 * leaves freed heap behind: the responses, plans and request buffers of the
 * burst, interleaved with the streams' long-lived state, which glibc keeps
 * rather than returning to the system (~1.2 kB per stream after a sync of
 * 1,000). Once a worker has been idle this long after some work it hands
 * the free pages back. An idle worker that has trimmed waits without a
 * deadline. */
#define IDLE_TRIM_MS 100

static void release_free_heap(void)
{
#if defined(__GLIBC__)
    malloc_trim(0);
#endif
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    int busy = 0;
    for (;;) {
        gpr_timespec deadline = busy ? gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                                                    gpr_time_from_millis(IDLE_TRIM_MS, GPR_TIMESPAN))
                                     : gpr_inf_future(GPR_CLOCK_MONOTONIC);
        grpc_event ev = grpc_completion_queue_next(w->cq, deadline, NULL);
        if (ev.type == GRPC_QUEUE_SHUTDOWN)
            break;
        if (ev.type == GRPC_QUEUE_TIMEOUT) {
            release_free_heap();
            busy = 0;
            continue;
        }
        if (ev.type != GRPC_OP_COMPLETE)
            continue;
        busy = 1;
        tag *t = ev.tag;
        if (t->kind == TAG_ACCEPT)
            on_accept(t->owner, ev.success);
        else
            stream_event(t->owner, t->kind, ev.success);
    }
    arena_reset(&tl_arena);
    free(tl_arena.buf);
    tl_arena.buf = NULL;
    for (int i = 0; i < BODY_CACHE; i++)
        body_clear(&w->bodies[i]);
    return NULL;
}

/* ---- lifecycle ---- */

/* Plaintext, or TLS whose files are taken up again when they change
 * (tlsreload.h); *tls is kept for the server's life. */
static sl_status make_creds(grpc_server_credentials **out, xds_tls **tls, const xds_server_opts *o)
{
    sl_status rc;
    if (!o->tls_cert && !o->tls_key) {
        *out = grpc_insecure_server_credentials_create();
        return SL_OK;
    }
    if (!o->tls_cert || !o->tls_key)
        return sl_error_set(SL_ERR_INVALID, "TLS needs both a certificate and a key");
    if ((rc = xds_tls_new(tls, o->tls_cert, o->tls_key, o->tls_client_ca)) != SL_OK)
        return rc;
    if (!(*out = xds_tls_credentials(*tls)))
        return sl_error_set(SL_ERR_INVALID, "unusable TLS certificate or key");
    return SL_OK;
}

static void init_metrics(xds_server *s)
{
    sl_metrics *reg = s->o.metrics;
    sl_metric_family *f;
    if (!reg)
        return;
    static const double lat_bounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
    if (sl_metrics_family_new(&f, reg, SL_METRIC_GAUGE, "sluice_xds_streams", "Open xDS streams.",
                              (const char *[]){"service", "protocol"}, 2, NULL, 0) == SL_OK)
        for (size_t i = 0; i < NMETHODS; i++)
            sl_metric_family_gauge(&s->g_streams[i], f,
                                   (const char *[]){methods[i].label, methods[i].delta ? "delta" : "sotw"});
    struct {
        const char *name, *help;
        sl_counter **v;
    } cs[] = {
        {"sluice_xds_pushes_total", "xDS responses sent.", s->c_push},
        {"sluice_xds_push_bytes_total", "Bytes of xDS responses sent.", s->c_push_bytes},
        {"sluice_xds_acks_total", "xDS ACKs received.", s->c_ack},
        {"sluice_xds_nacks_total", "xDS NACKs received.", s->c_nack},
    };
    for (size_t k = 0; k < sizeof cs / sizeof cs[0]; k++)
        if (sl_metrics_family_new(&f, reg, SL_METRIC_COUNTER, cs[k].name, cs[k].help, (const char *[]){"type"}, 1,
                                  NULL, 0) == SL_OK)
            for (int t = 0; t < SL_XDS_TYPE_COUNT; t++)
                sl_metric_family_counter(&cs[k].v[t], f, (const char *[]){sl_xds_type_short((sl_xds_type)t)});
    if (sl_metrics_family_new(&f, reg, SL_METRIC_HISTOGRAM, "sluice_xds_push_latency_seconds",
                              "Time from sending an xDS response to its ACK.", (const char *[]){"type"}, 1,
                              lat_bounds, sizeof lat_bounds / sizeof lat_bounds[0]) == SL_OK)
        for (int t = 0; t < SL_XDS_TYPE_COUNT; t++)
            sl_metric_family_histogram(&s->h_latency[t], f, (const char *[]){sl_xds_type_short((sl_xds_type)t)});
    sl_metrics_counter(&s->c_bad, reg, "sluice_xds_bad_requests_total",
                       "xDS requests refused (malformed, unknown type, protocol error).");
    sl_metrics_counter(&s->c_denied, reg, "sluice_xds_denied_total",
                       "xDS streams refused: no client identity, or a proxy other than the client's own.");
    sl_metrics_counter(&s->c_limited, reg, "sluice_xds_limited_total",
                       "xDS streams or requests refused by a limit (streams per peer, names per request).");
}

/* Frees what xds_server_start allocated in s, and s, after its workers
 * have stopped; ends this server's use of gRPC. */
static void server_release(xds_server *s)
{
    free(s->workers);
    free(s->listen);
    free(s->default_proxy);
    xds_peers_free(s->peers);
    xds_tls_free(s->tls); /* no handshake after the server is gone */
    pthread_mutex_destroy(&s->mu);
    free(s);
    grpc_shutdown();
}

sl_status xds_server_start(xds_server **out, const xds_server_opts *o)
{
    sl_status rc;
    grpc_server_credentials *creds = NULL;
    xds_server *s = calloc(1, sizeof *s);
    if (!s)
        return sl_error_set(SL_ERR_NOMEM, "out of memory");
    s->o = *o;
    s->listen = strdup(o->listen ? o->listen : "0.0.0.0:9977");
    s->default_proxy = strdup(o->default_proxy ? o->default_proxy : SL_XDS_DEFAULT_PROXY);
    s->o.tls_cert = s->o.tls_key = s->o.tls_client_ca = NULL;
    s->nworkers = o->workers > 0 ? o->workers : 2;
    if (o->limits)
        s->limits = *o->limits;
    else
        xds_limits_defaults(&s->limits);
    s->o.limits = NULL;
    pthread_mutex_init(&s->mu, NULL);
    init_metrics(s);
    grpc_init();
    if ((rc = make_creds(&creds, &s->tls, o)) != SL_OK)
        goto err;
    grpc_arg args[XDS_LIMITS_NARGS];
    grpc_channel_args ca;
    xds_limits_channel_args(&s->limits, args, &ca);
    s->server = grpc_server_create(&ca, NULL);
    s->peers = xds_peers_new(s->limits.max_streams_per_peer);
    s->workers = calloc((size_t)s->nworkers, sizeof *s->workers);
    if (!s->workers || !s->listen || !s->default_proxy || !s->peers) {
        rc = sl_error_set(SL_ERR_NOMEM, "out of memory");
        goto err;
    }
    for (int i = 0; i < s->nworkers; i++) {
        s->workers[i].srv = s;
        s->workers[i].cq = grpc_completion_queue_create_for_next(NULL);
        grpc_server_register_completion_queue(s->server, s->workers[i].cq, NULL);
    }
    s->port = grpc_server_add_http2_port(s->server, s->listen, creds);
    grpc_server_credentials_release(creds);
    creds = NULL;
    if (!s->port) {
        rc = sl_error_set(SL_ERR_IO, "cannot listen on %s", s->listen);
        goto err;
    }
    grpc_server_start(s->server);
    for (int i = 0; i < s->nworkers; i++) {
        worker *w = &s->workers[i];
        for (int k = 0; k < ACCEPTS_PER_WORKER; k++) {
            w->acc[k].t = (tag){TAG_ACCEPT, &w->acc[k]};
            w->acc[k].w = w;
            request_call(&w->acc[k]);
        }
        pthread_create(&w->thread, NULL, worker_main, w);
    }
    sl_log_info("xds", "listening", "addr=%s port=%d tls=%d mtls=%d workers=%d", s->listen, s->port,
                o->tls_cert != NULL, o->tls_client_ca != NULL, s->nworkers);
    *out = s;
    return SL_OK;
err:
    if (creds)
        grpc_server_credentials_release(creds);
    if (s->server) {
        grpc_server_destroy(s->server); /* never started */
        for (int i = 0; s->workers && i < s->nworkers; i++) {
            grpc_completion_queue_shutdown(s->workers[i].cq);
            while (grpc_completion_queue_next(s->workers[i].cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
                   GRPC_QUEUE_SHUTDOWN)
                ;
            grpc_completion_queue_destroy(s->workers[i].cq);
        }
    }
    server_release(s);
    return rc;
}

int xds_server_port(const xds_server *s) { return s->port; }

void xds_server_stop(xds_server *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    s->stopping = 1;
    pthread_mutex_unlock(&s->mu);
    grpc_completion_queue *scq = grpc_completion_queue_create_for_pluck(NULL);
    int done_tag;
    grpc_server_shutdown_and_notify(s->server, scq, &done_tag);
    grpc_server_cancel_all_calls(s->server);
    grpc_completion_queue_pluck(scq, &done_tag, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    /* Workers finish the cancelled streams; wait until all are freed. */
    for (int i = 0; i < 500 && atomic_load(&s->live) > 0; i++)
        usleep(10000);
    if (atomic_load(&s->live) > 0)
        sl_log_warn("xds", "streams still open at shutdown", "n=%d", atomic_load(&s->live));
    for (int i = 0; i < s->nworkers; i++)
        grpc_completion_queue_shutdown(s->workers[i].cq);
    for (int i = 0; i < s->nworkers; i++)
        pthread_join(s->workers[i].thread, NULL);
    grpc_server_destroy(s->server);
    for (int i = 0; i < s->nworkers; i++)
        grpc_completion_queue_destroy(s->workers[i].cq);
    grpc_completion_queue_shutdown(scq);
    grpc_completion_queue_destroy(scq);
    server_release(s);
}
