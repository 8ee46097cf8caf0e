/* xds_fixtures.h - small valid Envoy resources built with protobuf-c, the
 * shape a gRPC proxyless client accepts (see XDS notes). Each returns the
 * packed bytes (malloc'd, *len set) or NULL on allocation failure. */
#ifndef SLUICE_XDS_FIXTURES_H
#define SLUICE_XDS_FIXTURES_H

#include <stddef.h>
#include <stdint.h>

#include "envoy/config/core/v3/base.pb-c.h"
#include "google/protobuf/struct.pb-c.h"
#include "sluice/xds_cache.h"

/* A Node for a discovery request, with the storage of its metadata. */
typedef struct fx_node {
    Envoy__Config__Core__V3__Node node;
    Google__Protobuf__Struct md;
    Google__Protobuf__Struct__FieldsEntry e, *ep;
    Google__Protobuf__Value v;
} fx_node;

/* Sets n up as node id with metadata {"role": role} (none when role is
 * NULL), the way a proxy names itself, and returns &n->node: valid while n
 * is, pointing at id and role (not copied). */
Envoy__Config__Core__V3__Node *fx_node_init(fx_node *n, const char *id, const char *role);

/* EDS cluster (eds_config: ads), ROUND_ROBIN; eds_service NULL = name. */
uint8_t *fx_cluster(size_t *len, const char *name, const char *eds_service);
/* ClusterLoadAssignment with one weighted locality of n endpoints. */
uint8_t *fx_cla(size_t *len, const char *name, int n, const char *const *addrs, const unsigned *ports);
/* Listener with an api_listener HttpConnectionManager taking its routes
 * from rds_name over ADS; http_filters = [router]. */
uint8_t *fx_listener(size_t *len, const char *name, const char *rds_name);
/* The same with an RDS config source that is neither ads nor self: valid
 * protobuf, but gRPC clients NACK it (and Envoy's validation fails). */
uint8_t *fx_listener_bad(size_t *len, const char *name, const char *rds_name);
/* RouteConfiguration: one virtual host "*" with prefix "" routed to the
 * clusters, weighted when n > 1 (weights may be NULL for n == 1). */
uint8_t *fx_route(size_t *len, const char *name, int n, const char *const *clusters, const unsigned *weights);
/* RouteConfiguration with nroutes prefix routes "/r<i>/" -> cluster
 * "c<i % nclusters>" in one virtual host "*". */
uint8_t *fx_route_many(size_t *len, const char *name, int nroutes, int nclusters);
/* A secret with a (fake) PEM certificate chain inline. */
uint8_t *fx_secret(size_t *len, const char *name);
/* A RateLimitConfig named name, of domain name. */
uint8_t *fx_ratelimit(size_t *len, const char *name);

/* A resource for tests: fixture of type t named name, with version ver.
 * Uses a per-type default shape (cluster -> EDS of same name, endpoint ->
 * 127.0.0.1:<port>, listener -> rds "<name>-routes", route -> cluster
 * "<arg>"). arg may be NULL. Aborts on failure. */
sl_xds_res *fx_res(sl_xds_type t, const char *name, const char *ver, const char *arg);

/* Field 1 (a string: the name of every xDS resource) of the packed message
 * p[0..n), NUL-terminated into out[0..cap), cut to what p holds; "" when
 * the bytes end or turn malformed before it. */
void fx_wire_name(const uint8_t *p, size_t n, char *out, size_t cap);

#endif
