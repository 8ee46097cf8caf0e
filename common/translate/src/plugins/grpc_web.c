/* grpc_web: gRPC-Web clients, as Gloo serves them. Every HTTP listener
 * gets Envoy's grpc_web filter (after authorization, before rate limits)
 * unless the gateway's httpGateway.options.grpcWeb.disable is true, or,
 * when the gateway says nothing, Settings gloo.disableGrpcWeb is true.
 * The api_listeners of gRPC proxyless clients are not HTTP listeners of
 * this kind (the core gives them the router only): they never get it. */
#include "../plugin.h"
#include "envoy/extensions/filters/http/grpc_web/v3/grpc_web.pb-c.h"

static const char *const fields[] = {"HttpListenerOptions.grpc_web", NULL};

static void http_filters(tr_ctx *tx, const tr_gateway *gw, tr_hcm_t *hcm, tr_filters *f)
{
    const Sluice__V1__HttpGateway *hg = gw->gw->spec->http_gateway;
    const Sluice__V1__SettingsSpec *s = tr_settings(tx);
    bool disabled = s->gloo && s->gloo->disable_grpc_web && s->gloo->disable_grpc_web->value;
    Envoy__Extensions__Filters__Http__GrpcWeb__V3__GrpcWeb *gwf;
    (void)hcm;
    if (hg && hg->options && hg->options->grpc_web)
        disabled = hg->options->grpc_web->disable;
    if (disabled)
        return;
    gwf = TR_NEW(tx, envoy__extensions__filters__http__grpc_web__v3__grpc_web);
    tr_add_filter(tx, f, TR_STAGE_GRPC_WEB, "envoy.filters.http.grpc_web", &gwf->base);
}

const sl_tr_plugin sl_tr_plugin_grpc_web = {
    .name = "grpc_web",
    .fields = fields,
    .http_filters = http_filters,
};
