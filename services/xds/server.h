/* server.h - the gRPC transport of sluice-xds (gRPC core C API).
 *
 * Serves ADS (SotW and delta) and the per-type SotW/delta services of
 * Listener, Route, Cluster, Endpoint and Secret, each stream driven by an
 * sl_xds_stream. Worker threads each own a completion queue; a stream lives
 * on one worker, so its state needs no lock. A commit wakes the streams of
 * the proxy by a zero-op batch on their call (it completes at once on the
 * stream's own queue); the stream then pulls its next response. At most one
 * message is being sent per stream; what to send is computed when the
 * previous send completes, so a slow stream coalesces to the latest state
 * and never holds up the others.
 */
#ifndef SLUICE_XDS_SERVER_H
#define SLUICE_XDS_SERVER_H

#include "identity.h"
#include "limits.h"
#include "sluice/xds_cache.h"
#include "sluice/metrics.h"
#include "sluice/xds_stream.h"

typedef struct xds_server xds_server;

/* A NACK, for reports. All strings valid during the callback only. */
typedef struct xds_nack {
    const char *node_id;
    const char *proxy;
    sl_xds_type type;
    const char *version; /* the rejected version */
    const char *nonce;
    const char *error;
    int code;
} xds_nack;

typedef struct xds_server_opts {
    const char *listen;        /* "0.0.0.0:9977" */
    const char *default_proxy; /* NULL: SL_XDS_DEFAULT_PROXY */
    int workers;               /* completion-queue threads; 0 = 2 */
    const char *tls_cert;      /* PEM files; cert+key enable TLS */
    const char *tls_key;
    const char *tls_client_ca; /* with TLS: require and verify client certs */
    const xds_identity *identity; /* when it requires one, every stream proves its proxy; must outlive the server */
    sl_xds_cache *cache;       /* required; must outlive the server */
    sl_metrics *metrics;       /* optional */
    const xds_limits *limits;  /* copied; NULL: xds_limits_defaults() */
    /* Called on a worker thread for every NACK; must not block long. */
    void (*on_nack)(void *ud, const xds_nack *n);
    void *ud;
} xds_server_opts;

/* Binds, starts the workers and serves. opts strings are copied. */
sl_status xds_server_start(xds_server **out, const xds_server_opts *opts);
/* The bound port. */
int xds_server_port(const xds_server *s);
/* Wakes every stream of proxy (a commit happened). Any thread; never blocks
 * on a stream. Use as the cache's commit callback. */
void xds_server_notify(xds_server *s, const char *proxy);
/* Number of open streams. */
int xds_server_streams(xds_server *s);

/* What one stream reports for the per-proxy state (sluice_proxies). All
 * strings valid during the callback only. */
typedef struct xds_stream_state {
    const char *proxy;
    const char *node_id;
    uint64_t synced;   /* sl_xds_stream_synced(): the commit revision the client is on; 0 = none yet */
    int nacked;        /* its last answer for some type was a NACK */
    const char *error; /* "<type>: <message>" of the last NACK when nacked, else "" */
} xds_stream_state;

/* Calls fn for every stream whose proxy is known, under the registry lock:
 * fn must be quick and must not block (no I/O). Any thread. */
void xds_server_each(xds_server *s, void (*fn)(void *ud, const xds_stream_state *st), void *ud);
/* A counter that changes whenever what _each reports (or a proxy's served
 * revision) may have changed. */
unsigned xds_server_state_gen(xds_server *s);
/* Cancels every stream, stops the workers and frees the server. */
void xds_server_stop(xds_server *s);

#endif
