/* transcoder: gRPC-JSON transcoding with Envoy's grpc_json_transcoder.
 *
 * An upstream whose serviceSpec is grpcJsonTranscoder (static or dns) gets
 * the transcoder on every route to it: the filter is in the chain disabled,
 * and each such route enables it with the upstream's configuration
 * (FilterConfig). A gateway's httpGateway.options.grpcJsonTranscoder
 * enables it for the whole listener instead. */
#include <string.h>

#include "../plugin.h"
#include "envoy/extensions/filters/http/grpc_json_transcoder/v3/transcoder.pb-c.h"
#include "sluice/upstreams.h"

#define TRANSCODER "envoy.filters.http.grpc_json_transcoder"

static const char *const fields[] = {"HttpListenerOptions.grpc_json_transcoder", NULL};
const sl_tr_plugin sl_tr_plugin_transcoder;

static Envoy__Extensions__Filters__Http__GrpcJsonTranscoder__V3__GrpcJsonTranscoder *
config(tr_ctx *tx, const Sluice__V1__GrpcJsonTranscoder *g, const char *path)
{
    Envoy__Extensions__Filters__Http__GrpcJsonTranscoder__V3__GrpcJsonTranscoder *t =
        TR_NEW(tx, envoy__extensions__filters__http__grpc_json_transcoder__v3__grpc_json_transcoder);
    switch (g->descriptor_set_case) {
    case SLUICE__V1__GRPC_JSON_TRANSCODER__DESCRIPTOR_SET_PROTO_DESCRIPTOR:
        t->descriptor_set_case = ENVOY__EXTENSIONS__FILTERS__HTTP__GRPC_JSON_TRANSCODER__V3__GRPC_JSON_TRANSCODER__DESCRIPTOR_SET_PROTO_DESCRIPTOR;
        t->proto_descriptor = tr_strdup(tx, g->proto_descriptor);
        break;
    case SLUICE__V1__GRPC_JSON_TRANSCODER__DESCRIPTOR_SET_PROTO_DESCRIPTOR_BIN:
        t->descriptor_set_case =
            ENVOY__EXTENSIONS__FILTERS__HTTP__GRPC_JSON_TRANSCODER__V3__GRPC_JSON_TRANSCODER__DESCRIPTOR_SET_PROTO_DESCRIPTOR_BIN;
        t->proto_descriptor_bin = g->proto_descriptor_bin;
        break;
    default:
        tr_error(tx, "%s: protoDescriptor or protoDescriptorBin is required", path);
        break;
    }
    if (g->n_services == 0)
        tr_error(tx, "%s.services: at least one service (package.Service) is required", path);
    for (size_t i = 0; i < g->n_services; i++) {
        if (!strchr(g->services[i], '.'))
            tr_error(tx, "%s.services[%zu]: \"%s\" is not a fully qualified service (package.Service)", path, i,
                     g->services[i]);
        TR_PUSH(tx, t, services, tr_strdup(tx, g->services[i]));
    }
    if (g->print_options) {
        t->print_options =
            TR_NEW(tx, envoy__extensions__filters__http__grpc_json_transcoder__v3__grpc_json_transcoder__print_options);
        t->print_options->add_whitespace = g->print_options->add_whitespace;
        t->print_options->always_print_primitive_fields = g->print_options->always_print_primitive_fields;
        t->print_options->always_print_enums_as_ints = g->print_options->always_print_enums_as_ints;
        t->print_options->preserve_proto_field_names = g->print_options->preserve_proto_field_names;
    }
    t->match_incoming_request_route = g->match_incoming_request_route;
    for (size_t i = 0; i < g->n_ignored_query_parameters; i++)
        TR_PUSH(tx, t, ignored_query_parameters, tr_strdup(tx, g->ignored_query_parameters[i]));
    t->auto_mapping = g->auto_mapping;
    t->ignore_unknown_query_parameters = g->ignore_unknown_query_parameters;
    t->convert_grpc_status = g->convert_grpc_status;
    return t;
}

static const Sluice__V1__GrpcJsonTranscoder *upstream_transcoder(const Sluice__V1__Upstream *up)
{
    const Sluice__V1__ServiceSpec *ss = sl_upstream_service_spec(up);
    return ss && ss->plugin_type_case == SLUICE__V1__SERVICE_SPEC__PLUGIN_TYPE_GRPC_JSON_TRANSCODER
               ? ss->grpc_json_transcoder
               : NULL;
}

static void route(tr_ctx *tx, const tr_route_in *in, tr_route_t *r)
{
    const Sluice__V1__GrpcJsonTranscoder *g = upstream_transcoder(in->upstream);
    Envoy__Config__Route__V3__FilterConfig *fc;
    if (!g || r->action_case != ENVOY__CONFIG__ROUTE__V3__ROUTE__ACTION_ROUTE)
        return;
    if (in->gw->proxyless)
        return; /* gRPC clients speak gRPC already */
    fc = TR_NEW(tx, envoy__config__route__v3__filter_config);
    fc->config = tr_any(tx, &config(tx, g,
                                    tr_printf(tx, "Upstream %s.%s spec.serviceSpec.grpcJsonTranscoder",
                                              in->upstream->metadata->namespace_, in->upstream->metadata->name))
                                 ->base);
    tr_route_filter_config(tx, r, TRANSCODER, &fc->base);
    tr_use(tx, &sl_tr_plugin_transcoder);
}

static void http_filters(tr_ctx *tx, const tr_gateway *gw, tr_hcm_t *hcm, tr_filters *f)
{
    const Sluice__V1__HttpGateway *hg = gw->gw->spec->http_gateway;
    const Sluice__V1__GrpcJsonTranscoder *g = hg && hg->options ? hg->options->grpc_json_transcoder : NULL;
    (void)hcm;
    if (g) {
        tr_add_filter(tx, f, TR_STAGE_TRANSFORM, TRANSCODER,
                      &config(tx, g, "spec.httpGateway.options.grpcJsonTranscoder")->base);
    } else if (tr_used(tx, &sl_tr_plugin_transcoder)) {
        /* Disabled by default; routes to transcoded upstreams enable it.
         * Envoy's rules still want a valid listener-level config. */
        Envoy__Extensions__Filters__Http__GrpcJsonTranscoder__V3__GrpcJsonTranscoder *t =
            TR_NEW(tx, envoy__extensions__filters__http__grpc_json_transcoder__v3__grpc_json_transcoder);
        t->descriptor_set_case =
            ENVOY__EXTENSIONS__FILTERS__HTTP__GRPC_JSON_TRANSCODER__V3__GRPC_JSON_TRANSCODER__DESCRIPTOR_SET_PROTO_DESCRIPTOR_BIN;
        t->proto_descriptor_bin.data = (uint8_t *)"";
        t->proto_descriptor_bin.len = 0;
        TR_PUSH(tx, t, services, tr_strdup(tx, "sluice.Disabled"));
        tr_add_filter(tx, f, TR_STAGE_TRANSFORM, TRANSCODER, &t->base);
        tr_disable_filter(f, TRANSCODER);
    }
}

const sl_tr_plugin sl_tr_plugin_transcoder = {
    .name = "transcoder",
    .fields = fields,
    .http_filters = http_filters,
    .route = route,
};
