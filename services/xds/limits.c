/* limits.c - the per-client limits of sluice-xds (see limits.h). */
#include "limits.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "envoy/service/discovery/v3/discovery.pb-c.h"

void xds_limits_flags(sl_flag t[XDS_LIMITS_NFLAGS], xds_limits *l)
{
    size_t n = 0;
    t[n++] = (sl_flag){.name = "max-recv-bytes", .kind = SL_FLAG_INT, .target = &l->max_recv_bytes,
                       .def = "4194304", .min = 1024, .max = 1 << 30,
                       .help = "largest request message; larger ones end the stream RESOURCE_EXHAUSTED"};
    t[n++] = (sl_flag){.name = "max-streams-per-conn", .kind = SL_FLAG_INT, .target = &l->max_streams_per_conn,
                       .def = "100", .min = 1, .max = 1 << 20,
                       .help = "concurrent streams per HTTP/2 connection (SETTINGS_MAX_CONCURRENT_STREAMS)"};
    t[n++] = (sl_flag){.name = "max-streams-per-peer", .kind = SL_FLAG_INT, .target = &l->max_streams_per_peer,
                       .def = "1000", .min = 0, .max = 1 << 24,
                       .help = "open streams per client address (all its connections); more are refused\n"
                               "RESOURCE_EXHAUSTED; 0: no limit"};
    t[n++] = (sl_flag){.name = "max-names-per-request", .kind = SL_FLAG_INT, .target = &l->max_names,
                       .def = "10000", .min = 0, .max = 1 << 24,
                       .help = "resource names in one request; more are refused INVALID_ARGUMENT; 0: no limit"};
    t[n++] = (sl_flag){.name = "keepalive-min-time", .kind = SL_FLAG_DURATION, .target = &l->keepalive_min_ms,
                       .def = "10s", .help = "clients may ping no more often than this (without data)"};
    t[n++] = (sl_flag){.name = "keepalive-max-strikes", .kind = SL_FLAG_INT, .target = &l->max_ping_strikes,
                       .def = "2", .min = 0, .max = 1000,
                       .help = "pings too early before the connection is closed (GOAWAY ENHANCE_YOUR_CALM)"};
    t[n++] = (sl_flag){.name = "keepalive-time", .kind = SL_FLAG_DURATION, .target = &l->keepalive_time_ms,
                       .def = "60s", .help = "the server pings an idle connection this often"};
    t[n++] = (sl_flag){.name = "keepalive-timeout", .kind = SL_FLAG_DURATION, .target = &l->keepalive_timeout_ms,
                       .def = "20s", .help = "a connection whose ping is not answered this long is closed"};
    t[n++] = (sl_flag){.name = "max-connection-age", .kind = SL_FLAG_DURATION, .target = &l->max_conn_age_ms,
                       .def = "30m", .help = "connections are asked to reconnect (GOAWAY) after this; 0: never"};
    t[n++] = (sl_flag){.name = "max-connection-age-grace", .kind = SL_FLAG_DURATION,
                       .target = &l->max_conn_age_grace_ms, .def = "1m",
                       .help = "then closed this long after the GOAWAY"};
}

void xds_limits_defaults(xds_limits *l)
{
    *l = (xds_limits){.max_recv_bytes = 4194304,
                      .max_streams_per_conn = 100,
                      .max_streams_per_peer = 1000,
                      .max_names = 10000,
                      .keepalive_min_ms = 10000,
                      .max_ping_strikes = 2,
                      .keepalive_time_ms = 60000,
                      .keepalive_timeout_ms = 20000,
                      .max_conn_age_ms = 1800000,
                      .max_conn_age_grace_ms = 60000};
}

static int clamp_ms(int64_t v)
{
    return v > INT32_MAX ? INT32_MAX : (int)v;
}

void xds_limits_channel_args(const xds_limits *l, grpc_arg a[XDS_LIMITS_NARGS], grpc_channel_args *ca)
{
    size_t n = 0;
    const struct {
        const char *key;
        int v;
    } ints[] = {
        {GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, l->max_recv_bytes},
        {GRPC_ARG_MAX_CONCURRENT_STREAMS, l->max_streams_per_conn},
        {GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, clamp_ms(l->keepalive_min_ms)},
        {GRPC_ARG_HTTP2_MAX_PING_STRIKES, l->max_ping_strikes},
        {GRPC_ARG_KEEPALIVE_TIME_MS, clamp_ms(l->keepalive_time_ms)},
        {GRPC_ARG_KEEPALIVE_TIMEOUT_MS, clamp_ms(l->keepalive_timeout_ms)},
        /* Without this the server's own pings stop once no call is open. */
        {GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 0},
        {GRPC_ARG_MAX_CONNECTION_AGE_MS, l->max_conn_age_ms > 0 ? clamp_ms(l->max_conn_age_ms) : INT32_MAX},
        {GRPC_ARG_MAX_CONNECTION_AGE_GRACE_MS, clamp_ms(l->max_conn_age_grace_ms)},
    };
    for (size_t i = 0; i < sizeof ints / sizeof ints[0] && n < XDS_LIMITS_NARGS; i++) {
        a[n].type = GRPC_ARG_INTEGER;
        a[n].key = (char *)ints[i].key;
        a[n].value.integer = ints[i].v;
        n++;
    }
    ca->num_args = n;
    ca->args = a;
}

size_t xds_request_names(const ProtobufCMessage *req, bool delta)
{
    if (delta) {
        const Envoy__Service__Discovery__V3__DeltaDiscoveryRequest *d = (const void *)req;
        return d->n_resource_names_subscribe + d->n_resource_names_unsubscribe + d->n_initial_resource_versions;
    }
    return ((const Envoy__Service__Discovery__V3__DiscoveryRequest *)req)->n_resource_names;
}

/* ---- streams per peer ---- */

#define PEER_BUCKETS 1024

typedef struct peer_ent {
    struct peer_ent *next;
    int n;
    char addr[];
} peer_ent;

struct xds_peers {
    pthread_mutex_t mu;
    int limit;
    size_t count;
    peer_ent *tab[PEER_BUCKETS];
};

xds_peers *xds_peers_new(int limit)
{
    xds_peers *p = calloc(1, sizeof *p);
    if (p) {
        pthread_mutex_init(&p->mu, NULL);
        p->limit = limit;
    }
    return p;
}

void xds_peers_free(xds_peers *p)
{
    if (!p)
        return;
    for (size_t b = 0; b < PEER_BUCKETS; b++)
        while (p->tab[b]) {
            peer_ent *e = p->tab[b];
            p->tab[b] = e->next;
            free(e);
        }
    pthread_mutex_destroy(&p->mu);
    free(p);
}

/* "ipv4:10.0.0.1:5555" -> length of "ipv4:10.0.0.1" ("ipv6:[::1]:5555" -> "ipv6:[::1]"). */
static size_t addr_len(const char *peer)
{
    const char *colon = strrchr(peer, ':');
    if (!colon || colon == strchr(peer, ':') || colon[1] == '\0' || colon[-1] == ':')
        return strlen(peer); /* no port (unix:...) */
    for (const char *c = colon + 1; *c; c++)
        if (*c < '0' || *c > '9')
            return strlen(peer);
    return (size_t)(colon - peer);
}

static size_t bucket_of(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
    return (size_t)(h % PEER_BUCKETS);
}

const char *xds_peers_acquire(xds_peers *p, const char *peer_str, bool *over)
{
    size_t n = addr_len(peer_str), b = bucket_of(peer_str, n);
    peer_ent *e;
    const char *out = NULL;

    *over = false;
    pthread_mutex_lock(&p->mu);
    for (e = p->tab[b]; e; e = e->next)
        if (strlen(e->addr) == n && memcmp(e->addr, peer_str, n) == 0)
            break;
    if (!e && (e = malloc(sizeof *e + n + 1)) != NULL) {
        memcpy(e->addr, peer_str, n);
        e->addr[n] = '\0';
        e->n = 0;
        e->next = p->tab[b];
        p->tab[b] = e;
        p->count++;
    }
    if (e && p->limit > 0 && e->n >= p->limit) {
        *over = true;
    } else if (e) {
        e->n++;
        out = e->addr;
    }
    pthread_mutex_unlock(&p->mu);
    return out;
}

void xds_peers_release(xds_peers *p, const char *addr)
{
    if (!addr)
        return;
    size_t n = strlen(addr), b = bucket_of(addr, n);
    pthread_mutex_lock(&p->mu);
    for (peer_ent **pp = &p->tab[b]; *pp; pp = &(*pp)->next) {
        peer_ent *e = *pp;
        if (e->addr != addr)
            continue;
        if (--e->n == 0) {
            *pp = e->next;
            free(e);
            p->count--;
        }
        break;
    }
    pthread_mutex_unlock(&p->mu);
}

size_t xds_peers_count(xds_peers *p)
{
    pthread_mutex_lock(&p->mu);
    size_t n = p->count;
    pthread_mutex_unlock(&p->mu);
    return n;
}
