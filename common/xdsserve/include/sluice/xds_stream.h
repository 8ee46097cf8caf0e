/* stream.h - the xDS protocol state machine of one stream, free of gRPC.
 *
 * Feed it the decoded requests of a stream (_on_sotw / _on_delta) and pull
 * responses with _next() whenever the transport can send: _next() compares
 * what the client has (as far as the server knows) with the proxy's current
 * committed snapshot and returns the next response to send, in ADS
 * make-before-break order, or NULL when the client is up to date. Because
 * responses are computed only when the transport is ready to send, a slow
 * stream never queues stale responses: it gets the latest state when it
 * catches up.
 *
 * Threading: one stream is used by one thread at a time.
 */
#ifndef SLUICE_XDS_STREAM_H
#define SLUICE_XDS_STREAM_H

#include <stdint.h>

#include "sluice/xds_cache.h"
#include "envoy/service/discovery/v3/discovery.pb-c.h"

typedef struct sl_xds_stream sl_xds_stream;

typedef struct sl_xds_stream_opts {
    int delta;                 /* incremental protocol */
    int ads;                   /* aggregated: any type on one stream */
    sl_xds_type type;          /* the type of a per-type stream */
    const char *default_proxy; /* proxy of nodes without metadata.role */
} sl_xds_stream_opts;

/* What a request was, for metrics and NACK reports. */
typedef enum sl_xds_req_kind {
    SL_XDS_REQ_INITIAL = 0, /* first request of a type (or a request without nonce) */
    SL_XDS_REQ_ACK,
    SL_XDS_REQ_NACK,
    SL_XDS_REQ_STALE, /* SotW: nonce is not the latest sent; names still applied */
} sl_xds_req_kind;

typedef struct sl_xds_req_info {
    sl_xds_req_kind kind;
    sl_xds_type type;
    int first_on_stream;      /* this request fixed the stream's node/proxy */
    const char *version;      /* NACK: the rejected version (the one last sent); borrowed */
    const char *nonce;        /* the request's response_nonce; borrowed from the request */
    const char *error;        /* NACK: error_detail.message; borrowed from the request */
    int error_code;           /* NACK: error_detail.code */
    uint64_t sent_ns;         /* ACK/NACK: when the acknowledged response was built (monotonic ns) */
} sl_xds_req_info;

/* A response ready to be encoded. Holds references to its resources. */
typedef struct sl_xds_response {
    sl_xds_type type;
    int delta;
    char version[40];       /* SotW version_info / delta system_version_info */
    char nonce[24];
    sl_xds_res **res;
    size_t nres;
    char **removed;         /* delta: removed_resources (owned) */
    size_t nremoved;
    uint8_t *head;          /* the non-resource fields, encoded (see _encode_head) */
    size_t head_len;
} sl_xds_response;

sl_status sl_xds_stream_new(sl_xds_stream **out, sl_xds_cache *cache, const sl_xds_stream_opts *opts);
void sl_xds_stream_free(sl_xds_stream *s);

/* Applies a SotW / delta request. On a protocol error (empty or unknown type
 * URL on ADS, a type other than the stream's, delta request on a SotW
 * stream...) returns SL_ERR_INVALID or SL_ERR_UNSUPPORTED with the error
 * context set: the transport ends the stream with INVALID_ARGUMENT. */
sl_status sl_xds_stream_on_sotw(sl_xds_stream *s, const Envoy__Service__Discovery__V3__DiscoveryRequest *req,
                                sl_xds_req_info *info);
sl_status sl_xds_stream_on_delta(sl_xds_stream *s,
                                 const Envoy__Service__Discovery__V3__DeltaDiscoveryRequest *req,
                                 sl_xds_req_info *info);

/* The next response to send (*out, owned by the caller, free with
 * sl_xds_response_free) or *out = NULL when there is nothing to send.
 * The response's head is already encoded. SL_ERR_NOMEM only. */
sl_status sl_xds_stream_next(sl_xds_stream *s, sl_xds_response **out);

/* The proxy this stream serves ("" before the first request). */
const char *sl_xds_stream_proxy(const sl_xds_stream *s);
/* The node id of the first request ("" when none). */
const char *sl_xds_stream_node_id(const sl_xds_stream *s);
/* Bit t set when the client has requested type t. */
unsigned sl_xds_stream_types(const sl_xds_stream *s);
/* The commit revision the client is on: the lowest, over the types it
 * requested, of the revision it ACKed or was found up to date with (a type
 * unchanged by a commit counts as on it once nothing is unanswered). 0 when
 * nothing is confirmed yet. *nacked is set when the client's last answer
 * for some type was a NACK (that type then stays on its older revision). */
uint64_t sl_xds_stream_synced(const sl_xds_stream *s, int *nacked);

void sl_xds_response_free(sl_xds_response *r);
/* Total encoded size of the response message. */
size_t sl_xds_response_size(const sl_xds_response *r);
/* The element bytes of resource i (shared, do not free). */
static inline const uint8_t *sl_xds_response_elem(const sl_xds_response *r, size_t i, size_t *len)
{
    *len = r->delta ? r->res[i]->delta_len : r->res[i]->sotw_len;
    return r->delta ? r->res[i]->delta : r->res[i]->sotw;
}
/* The whole message in one malloc'd buffer (tests, debugging). */
sl_status sl_xds_response_flatten(const sl_xds_response *r, uint8_t **out, size_t *len);

/* The proxy named by a node: metadata.role when it is a non-empty string,
 * else def. Borrowed pointer. */
const char *sl_xds_node_proxy(const Envoy__Config__Core__V3__Node *node, const char *def);

/* Monotonic clock in ns. */
uint64_t sl_xds_now_ns(void);

#endif
