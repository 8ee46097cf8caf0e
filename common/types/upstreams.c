/* upstreams.c - what every reader of an Upstream asks of its type (sluice/upstreams.h). */
#include "sluice/upstreams.h"

#include <stddef.h>

Sluice__V1__ServiceSpec **sl_upstream_service_spec_slot(Sluice__V1__Upstream *u)
{
    Sluice__V1__UpstreamSpec *s = u ? u->spec : NULL;
    if (!s)
        return NULL;
    switch (s->upstream_type_case) {
    case SLUICE__V1__UPSTREAM_SPEC__UPSTREAM_TYPE_STATIC:
        return s->static_ ? &s->static_->service_spec : NULL;
    case SLUICE__V1__UPSTREAM_SPEC__UPSTREAM_TYPE_DNS:
        return s->dns ? &s->dns->service_spec : NULL;
    case SLUICE__V1__UPSTREAM_SPEC__UPSTREAM_TYPE_ETCD:
        return s->etcd ? &s->etcd->service_spec : NULL;
    default:
        return NULL;
    }
}

const Sluice__V1__ServiceSpec *sl_upstream_service_spec(const Sluice__V1__Upstream *u)
{
    Sluice__V1__ServiceSpec **slot = sl_upstream_service_spec_slot((Sluice__V1__Upstream *)u);
    return slot ? *slot : NULL;
}

bool sl_upstream_spec_discovered(const Sluice__V1__UpstreamSpec *s)
{
    return s && (s->upstream_type_case == SLUICE__V1__UPSTREAM_SPEC__UPSTREAM_TYPE_DNS ||
                 s->upstream_type_case == SLUICE__V1__UPSTREAM_SPEC__UPSTREAM_TYPE_ETCD);
}

const Google__Protobuf__BoolValue *sl_upstream_spec_use_tls(const Sluice__V1__UpstreamSpec *s)
{
    if (!s)
        return NULL;
    switch (s->upstream_type_case) {
    case SLUICE__V1__UPSTREAM_SPEC__UPSTREAM_TYPE_STATIC:
        return s->static_ ? s->static_->use_tls : NULL;
    case SLUICE__V1__UPSTREAM_SPEC__UPSTREAM_TYPE_DNS:
        return s->dns ? s->dns->use_tls : NULL;
    case SLUICE__V1__UPSTREAM_SPEC__UPSTREAM_TYPE_ETCD:
        return s->etcd ? s->etcd->use_tls : NULL;
    default:
        return NULL;
    }
}
