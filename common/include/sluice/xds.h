/* sluice/xds.h - the xDS resource types and the sluice_xds key escaping,
 * shared by the translator (which writes the sluice_xds KV) and the xDS
 * server (which reads it); layout in docs/xds.md.
 *
 * The enum order is the ADS push order (make-before-break): secrets, then
 * clusters, endpoints, listeners, routes. Removals of the first three are
 * held back until every later type has been sent (services/xds/stream.c).
 * Last, the rate-limit server's configuration (envoyproxy/ratelimit's
 * RateLimitConfig), which only the rate-limit server's proxy holds.
 */
#ifndef SLUICE_XDS_H
#define SLUICE_XDS_H

#include <stddef.h>
#include <stdint.h>

#include "sluice/status.h"

typedef enum sl_xds_type {
    SL_XDS_SECRET = 0,
    SL_XDS_CLUSTER,
    SL_XDS_ENDPOINT,
    SL_XDS_LISTENER,
    SL_XDS_ROUTE,
    SL_XDS_RATELIMIT,
    SL_XDS_TYPE_COUNT
} sl_xds_type;

#define SL_XDS_TYPE_PREFIX "type.googleapis.com/"

/* The proxy of nodes without node.metadata.role: the translator's default
 * Gateway (Gloo's gateway-proxy in gloo-system) when none is configured. */
#define SL_XDS_DEFAULT_PROXY "gloo-system~gateway-proxy"

/* "type.googleapis.com/envoy.config.cluster.v3.Cluster". Static. */
const char *sl_xds_type_url(sl_xds_type t);

/* The KV key token of a type: "secret", "cluster", "endpoint", "listener",
 * "route", "ratelimit". Static. */
const char *sl_xds_type_token(sl_xds_type t);

/* Short name for logs and metrics: "sds", "cds", "eds", "lds", "rds",
 * "rls". */
const char *sl_xds_type_short(sl_xds_type t);

/* Looks a type up by URL (*out) or by KV token. SL_ERR_NOT_FOUND when
 * unknown. */
sl_status sl_xds_type_from_url(sl_xds_type *out, const char *url);
sl_status sl_xds_type_from_token(sl_xds_type *out, const char *token);

/* True for the types whose SotW responses carry the full set (LDS, CDS,
 * and the rate-limit server's RateLimitConfigs: it replaces its whole
 * configuration with each response). */
int sl_xds_type_full_state(sl_xds_type t);

/* Escapes a resource or proxy name into one NATS KV key token: bytes in
 * [-_a-zA-Z0-9] stay, every other byte becomes "=XX" (upper-case hex), so
 * "listener-::-8080" is "listener-=3A=3A-8080". Writes at most cap bytes
 * including the NUL; SL_ERR_INVALID when it does not fit or name is "". */
sl_status sl_xds_key_escape(char *out, size_t cap, const char *name);

/* The inverse of sl_xds_key_escape(). SL_ERR_INVALID on a malformed token
 * (a bad "=XX", an unescaped byte outside the set, or a NUL byte). */
sl_status sl_xds_key_unescape(char *out, size_t cap, const char *token);

/* ---- the sluice_xds store format (docs/xds.md, proto/sluice/v1/xds.proto) */

/* RouteConfigurations whose packed size is at least this are stored in
 * parts: a head without virtual hosts plus one part per virtual host. */
#define SL_XDS_SPLIT_MIN (64 * 1024)

/* A manifest chunk ends after an entry whose id hash is 0 modulo this, or
 * after SL_XDS_CHUNK_MAX entries. */
#define SL_XDS_CHUNK_MOD 64
#define SL_XDS_CHUNK_MAX 256

/* One virtual host of a packed RouteConfiguration: the VirtualHost's own
 * bytes are data[off, off+len) of the buffer split; name (not NUL
 * terminated, name_len bytes) points into it. */
typedef struct sl_xds_part {
    size_t off, len;
    const char *name;
    size_t name_len;
} sl_xds_part;

/* Splits a packed RouteConfiguration at the top level of its wire format:
 * *head (malloc'd, *head_len bytes) gets every field but virtual_hosts (2),
 * in order; *parts (malloc'd, *n_parts) the virtual hosts, in order.
 * Nothing is decoded beyond the top level and each virtual host's name.
 * SL_ERR_PARSE (naming the offset) when the bytes are not well formed or a
 * virtual host has no name; nothing is allocated then. */
sl_status sl_xds_route_split(uint8_t **head, size_t *head_len, sl_xds_part **parts, size_t *n_parts,
                             const uint8_t *data, size_t len);

/* The inverse: head followed by each part as field 2. The result, malloc'd
 * (*len bytes), decodes as the RouteConfiguration that was split (the same
 * fields and virtual hosts in the same order; only the position of
 * virtual_hosts among the fields may differ). */
sl_status sl_xds_route_join(uint8_t **out, size_t *len, const uint8_t *head, size_t head_len,
                            const uint8_t *const *part, const size_t *part_len, size_t n_parts);

/* The identity hash of a manifest entry: of name, or, for a part, of the
 * route configuration's name and the virtual host's (route != NULL).
 * Chunks are cut and named by it. */
uint64_t sl_xds_entry_hash(const char *route, const char *name);

/* Whether a chunk ends after an entry of this hash. */
static inline int sl_xds_chunk_cut(uint64_t h) { return (h >> 17) % SL_XDS_CHUNK_MOD == 0; }

/* The id of a chunk whose first entry has hash h: 16 lower-case hex digits
 * (a key token). out holds at least 17 bytes. */
void sl_xds_chunk_id(char *out, uint64_t h);

#endif
