/* limits.h - what one client may ask of sluice-xds (issue 12, docs/xds.md
 * "Limits"): the gRPC server's channel arguments, the count of streams per
 * peer address, and the count of resource names per request. */
#ifndef SLUICE_XDS_LIMITS_H
#define SLUICE_XDS_LIMITS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <grpc/grpc.h>
#include <protobuf-c/protobuf-c.h>

#include "sluice/flags.h"
#include "sluice/status.h"

typedef struct xds_limits {
    int max_recv_bytes;         /* GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH */
    int max_streams_per_conn;   /* GRPC_ARG_MAX_CONCURRENT_STREAMS */
    int max_streams_per_peer;   /* counted by xds_peers; 0: no limit */
    int max_names;              /* resource names in one request; 0: no limit */
    int64_t keepalive_min_ms;   /* GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS */
    int max_ping_strikes;       /* GRPC_ARG_HTTP2_MAX_PING_STRIKES */
    int64_t keepalive_time_ms;  /* GRPC_ARG_KEEPALIVE_TIME_MS: the server's own pings */
    int64_t keepalive_timeout_ms; /* GRPC_ARG_KEEPALIVE_TIMEOUT_MS */
    int64_t max_conn_age_ms;    /* GRPC_ARG_MAX_CONNECTION_AGE_MS; 0: none */
    int64_t max_conn_age_grace_ms; /* GRPC_ARG_MAX_CONNECTION_AGE_GRACE_MS */
} xds_limits;

#define XDS_LIMITS_NFLAGS 10
#define XDS_LIMITS_NARGS 9

/* Fills t with the limits' flags (--max-recv-bytes, ...), writing into l;
 * their defaults are the safe ones documented in docs/xds.md. */
void xds_limits_flags(sl_flag t[XDS_LIMITS_NFLAGS], xds_limits *l);

/* The defaults, for a server started without flags (tests). */
void xds_limits_defaults(xds_limits *l);

/* The server's channel arguments from l; args is the storage of ca's
 * entries (both caller-owned, valid while ca is used). */
void xds_limits_channel_args(const xds_limits *l, grpc_arg args[XDS_LIMITS_NARGS], grpc_channel_args *ca);

/* The number of resource names a DiscoveryRequest (delta: a
 * DeltaDiscoveryRequest: subscribe + unsubscribe + initial versions) carries. */
size_t xds_request_names(const ProtobufCMessage *req, bool delta);

/* Streams per peer address (the peer without its port). Thread-safe. */
typedef struct xds_peers xds_peers;

/* limit 0: count only. NULL on out of memory. */
xds_peers *xds_peers_new(int limit);
/* Every key must have been released. NULL is a no-op. */
void xds_peers_free(xds_peers *p);

/* Counts one more stream of peer (as grpc_call_get_peer() gives it:
 * "ipv4:10.0.0.1:5555"). Returns the counted address, to give back to
 * xds_peers_release(), or NULL when the peer is at its limit (*over set) or
 * out of memory (*over clear). */
const char *xds_peers_acquire(xds_peers *p, const char *peer, bool *over);

/* Counts one stream less of the address acquire returned; frees the entry
 * at zero (so the table shrinks back after a storm). NULL is a no-op. */
void xds_peers_release(xds_peers *p, const char *addr);

/* Addresses currently counted (for tests and metrics). */
size_t xds_peers_count(xds_peers *p);

#endif
