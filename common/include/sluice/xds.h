/* sluice/xds.h - the xDS resource types and the sluice_xds key escaping,
 * shared by the translator (which writes the sluice_xds KV) and the xDS
 * server (which reads it); layout in docs/xds.md.
 *
 * The enum order is the ADS push order (make-before-break): secrets, then
 * clusters, endpoints, listeners, routes. Removals of the first three are
 * held back until every later type has been sent (services/xds/stream.c).
 */
#ifndef SLUICE_XDS_H
#define SLUICE_XDS_H

#include <stddef.h>

#include "sluice/status.h"

typedef enum sl_xds_type {
    SL_XDS_SECRET = 0,
    SL_XDS_CLUSTER,
    SL_XDS_ENDPOINT,
    SL_XDS_LISTENER,
    SL_XDS_ROUTE,
    SL_XDS_TYPE_COUNT
} sl_xds_type;

#define SL_XDS_TYPE_PREFIX "type.googleapis.com/"

/* The proxy of nodes without node.metadata.role: the translator's default
 * Gateway (Gloo's gateway-proxy in gloo-system) when none is configured. */
#define SL_XDS_DEFAULT_PROXY "gloo-system~gateway-proxy"

/* "type.googleapis.com/envoy.config.cluster.v3.Cluster". Static. */
const char *sl_xds_type_url(sl_xds_type t);

/* The KV key token of a type: "secret", "cluster", "endpoint", "listener",
 * "route". Static. */
const char *sl_xds_type_token(sl_xds_type t);

/* Short name for logs and metrics: "sds", "cds", "eds", "lds", "rds". */
const char *sl_xds_type_short(sl_xds_type t);

/* Looks a type up by URL (*out) or by KV token. SL_ERR_NOT_FOUND when
 * unknown. */
sl_status sl_xds_type_from_url(sl_xds_type *out, const char *url);
sl_status sl_xds_type_from_token(sl_xds_type *out, const char *token);

/* True for the types whose SotW responses carry the full set (LDS, CDS). */
int sl_xds_type_full_state(sl_xds_type t);

/* Escapes a resource or proxy name into one NATS KV key token: bytes in
 * [-_a-zA-Z0-9] stay, every other byte becomes "=XX" (upper-case hex), so
 * "listener-::-8080" is "listener-=3A=3A-8080". Writes at most cap bytes
 * including the NUL; SL_ERR_INVALID when it does not fit or name is "". */
sl_status sl_xds_key_escape(char *out, size_t cap, const char *name);

/* The inverse of sl_xds_key_escape(). SL_ERR_INVALID on a malformed token
 * (a bad "=XX", an unescaped byte outside the set, or a NUL byte). */
sl_status sl_xds_key_unescape(char *out, size_t cap, const char *token);

#endif
