/* buffer: request buffering, as Gloo's buffer plugin: the Gateway's
 * httpGateway.options.buffer -> Envoy's buffer filter (max_request_bytes);
 * bufferPerRoute on a virtual host, route or weighted destination -> its
 * BufferPerRoute
 * (disabled, or other settings). As in Gloo the filter is in the chain only
 * when the Gateway sets buffer: a bufferPerRoute served by a gateway that
 * does not has no effect, which Sluice reports (Warning) where Gloo is
 * silent. */
#include "../plugin.h"
#include "envoy/extensions/filters/http/buffer/v3/buffer.pb-c.h"

#define BUFFER_FILTER "envoy.filters.http.buffer"

static const char *const fields[] = {"HttpListenerOptions.buffer", "VirtualHostOptions.buffer_per_route",
                                     "RouteOptions.buffer_per_route", "WeightedDestinationOptions.buffer_per_route", NULL};

/* Envoy's Buffer of b; NULL (reported) without maxRequestBytes, which
 * Envoy requires. */
static Envoy__Extensions__Filters__Http__Buffer__V3__Buffer *buffer(tr_ctx *tx, const Sluice__V1__Buffer *b,
                                                                    const char *p)
{
    Envoy__Extensions__Filters__Http__Buffer__V3__Buffer *o;
    if (!b->max_request_bytes) {
        tr_error(tx, "%s.maxRequestBytes: required", p);
        return NULL;
    }
    o = TR_NEW(tx, envoy__extensions__filters__http__buffer__v3__buffer);
    o->max_request_bytes = tr_u32(tx, b->max_request_bytes->value);
    return o;
}

static const Sluice__V1__Buffer *listener_buffer(const tr_gateway *gw)
{
    const Sluice__V1__HttpGateway *hg = gw->gw->spec->http_gateway;
    return hg && hg->options ? hg->options->buffer : NULL;
}

/* The BufferPerRoute of b (at p, e.g. "spec.virtualHost.options"); NULL
 * when unusable (reported). */
static Envoy__Extensions__Filters__Http__Buffer__V3__BufferPerRoute *per_route(tr_ctx *tx, const tr_gateway *gw,
                                                                               const Sluice__V1__BufferPerRoute *b,
                                                                               const char *p)
{
    Envoy__Extensions__Filters__Http__Buffer__V3__BufferPerRoute *o =
        TR_NEW(tx, envoy__extensions__filters__http__buffer__v3__buffer_per_route);
    switch (b->override_case) {
    case SLUICE__V1__BUFFER_PER_ROUTE__OVERRIDE_DISABLED:
        if (!b->disabled) {
            tr_error(tx, "%s.bufferPerRoute.disabled: must be true (or set buffer)", p);
            return NULL;
        }
        o->override_case = ENVOY__EXTENSIONS__FILTERS__HTTP__BUFFER__V3__BUFFER_PER_ROUTE__OVERRIDE_DISABLED;
        o->disabled = 1;
        break;
    case SLUICE__V1__BUFFER_PER_ROUTE__OVERRIDE_BUFFER:
        if (!(o->buffer = buffer(tx, b->buffer, tr_printf(tx, "%s.bufferPerRoute.buffer", p))))
            return NULL;
        o->override_case = ENVOY__EXTENSIONS__FILTERS__HTTP__BUFFER__V3__BUFFER_PER_ROUTE__OVERRIDE_BUFFER;
        break;
    default:
        tr_error(tx, "%s.bufferPerRoute: disabled or buffer is required", p);
        return NULL;
    }
    /* (not for the validation of virtual services no gateway selects,
     * whose pseudo-gateway has no metadata) */
    if (!listener_buffer(gw) && gw->gw->metadata)
        tr_warn(tx, "%s.bufferPerRoute: no effect on Gateway %s (as in Gloo): it sets no httpGateway.options.buffer, "
                    "so its listener has no buffer filter",
                p, gw->gw->metadata->name);
    return o;
}

static void virtual_host(tr_ctx *tx, const tr_vhost_in *in, tr_vhost_t *vh)
{
    Envoy__Extensions__Filters__Http__Buffer__V3__BufferPerRoute *b;
    if (in->options && in->options->buffer_per_route &&
        (b = per_route(tx, in->gw, in->options->buffer_per_route, in->path)) != NULL)
        tr_vhost_filter_config(tx, vh, BUFFER_FILTER, &b->base);
}

static void route(tr_ctx *tx, const tr_route_in *in, tr_route_t *r)
{
    Envoy__Extensions__Filters__Http__Buffer__V3__BufferPerRoute *b;
    if (in->options && in->options->buffer_per_route &&
        (b = per_route(tx, in->gw, in->options->buffer_per_route, in->path)) != NULL)
        tr_route_filter_config(tx, r, BUFFER_FILTER, &b->base);
}

static void weighted_destination(tr_ctx *tx, const tr_route_in *in, const Sluice__V1__WeightedDestinationOptions *o,
                                 const char *path, Envoy__Config__Route__V3__WeightedCluster__ClusterWeight *cw)
{
    Envoy__Extensions__Filters__Http__Buffer__V3__BufferPerRoute *b;
    if (o && o->buffer_per_route && (b = per_route(tx, in->gw, o->buffer_per_route, path)) != NULL)
        tr_cluster_weight_filter_config(tx, cw, BUFFER_FILTER, &b->base);
}

static void http_filters(tr_ctx *tx, const tr_gateway *gw, tr_hcm_t *hcm, tr_filters *f)
{
    const Sluice__V1__Buffer *b = listener_buffer(gw);
    Envoy__Extensions__Filters__Http__Buffer__V3__Buffer *o;
    (void)hcm;
    if (b && (o = buffer(tx, b, "spec.httpGateway.options.buffer")) != NULL)
        tr_add_filter(tx, f, TR_STAGE_ROUTE, BUFFER_FILTER, &o->base);
}

const sl_tr_plugin sl_tr_plugin_buffer = {
    .name = "buffer",
    .fields = fields,
    .http_filters = http_filters,
    .virtual_host = virtual_host,
    .route = route,
    .weighted_destination = weighted_destination,
};
