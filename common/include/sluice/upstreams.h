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

#endif
