/* sluice/upstreams.h - what every reader of an Upstream asks of its type.
 *
 * An Upstream's endpoints are inline (static), found by
 * sluice-endpoint-discovery (dns, etcd: the EndpointSet under
 * "<namespace>.<name>" in sluice_endpoints) or a cloud service (aws). The
 * types with endpoints may say what the service offers (serviceSpec: REST
 * or gRPC functions). Part of sluice_types.
 */
#ifndef SLUICE_UPSTREAMS_H
#define SLUICE_UPSTREAMS_H

#include <stdbool.h>
#include <stddef.h>

#include "sluice/resource.h"
#include "sluice/status.h"
#include "sluice/v1/upstream.pb-c.h"

/* Where the serviceSpec of u's type lives (static, dns, etcd), to read or
 * to set; NULL for a type without one (aws, none) or without a spec. */
Sluice__V1__ServiceSpec **sl_upstream_service_spec_slot(Sluice__V1__Upstream *u);

/* The serviceSpec of u's type, or NULL. */
const Sluice__V1__ServiceSpec *sl_upstream_service_spec(const Sluice__V1__Upstream *u);

/* True when s's endpoints come from discovery through sluice_endpoints
 * (dns, etcd). */
bool sl_upstream_spec_discovered(const Sluice__V1__UpstreamSpec *s);

/* The useTls of s's type when set (static, dns, etcd), else NULL. */
const Google__Protobuf__BoolValue *sl_upstream_spec_use_tls(const Sluice__V1__UpstreamSpec *s);

/* ---- names of discovered Upstreams (sluice-upstream-discovery) --------- */

/* The name of the Upstream discovered for service id by source ("etcd",
 * "dnssd"): "<source>-" + id lowercased, every run of characters other
 * than a-z and 0-9 turned into one '-', no '-' at the end
 * ("services/echo" -> "etcd-services-echo", "echo._http._tcp.example.test"
 * -> "dnssd-echo-http-tcp-example-test"). With suffixed (a collision:
 * another service has the plain name), or when the name would be longer
 * than SL_RESOURCE_NAME_MAX, it ends in "-" and the 8 hex digits of
 * FNV-1a-32 over id (cut to fit). The result always passes
 * sl_resource_check_name(). SL_ERR_INVALID when id has no letter or digit
 * or source is not lowercase letters and digits. */
sl_status sl_upstream_discovered_name(char out[SL_RESOURCE_NAME_MAX + 1], const char *source, const char *id,
                                      bool suffixed);

/* The service an etcd registry key belongs to (the naming/endpoints
 * convention "<service>/<addr>"): the key without its last "/<segment>"
 * into out (cap bytes), when the key is under root, the service reaches
 * past root (root "services/": "services/echo/10.0.0.1:80" ->
 * "services/echo"; "services/10.0.0.1:80" has none), has no empty last
 * segment and the last segment is not empty. False otherwise (or it does
 * not fit in cap). */
bool sl_upstream_etcd_service(char *out, size_t cap, const char *root, const char *key);

#endif
