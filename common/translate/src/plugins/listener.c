/* listener: Gateway options of the listener and its HTTP connection
 * manager: Gloo's defaults and httpConnectionManagerSettings, healthCheck
 * (the health_check filter answering on a path), accessLoggingService
 * (file and gRPC access logs, also of TCP hosts' tcp_proxy), perConnectionBufferLimitBytes, tracing
 * (zipkin, OpenTelemetry) with route decorators, useProxyProto (the proxy_protocol
 * listener filter, first). */
#include <string.h>

#include "../plugin.h"
#include "envoy/config/trace/v3/opentelemetry.pb-c.h"
#include "envoy/config/trace/v3/zipkin.pb-c.h"
#include "envoy/extensions/access_loggers/file/v3/file.pb-c.h"
#include "envoy/extensions/access_loggers/grpc/v3/als.pb-c.h"
#include "envoy/extensions/filters/http/health_check/v3/health_check.pb-c.h"
#include "envoy/extensions/filters/listener/proxy_protocol/v3/proxy_protocol.pb-c.h"

static const char *const fields[] = {
    "ListenerOptions.access_logging_service", "ListenerOptions.per_connection_buffer_limit_bytes",
    "HttpListenerOptions.http_connection_manager_settings", "HttpListenerOptions.health_check",
    "RouteOptions.tracing", NULL,
};

static const Sluice__V1__HttpConnectionManagerSettings *hcm_settings(const tr_gateway *gw)
{
    const Sluice__V1__HttpGateway *hg = gw->gw->spec->http_gateway;
    return hg && hg->options ? hg->options->http_connection_manager_settings : NULL;
}

/* A sampling percentage; Gloo's default 100 when v is not set. */
static Envoy__Type__V3__Percent *pct(tr_ctx *tx, const Google__Protobuf__FloatValue *v, const char *what)
{
    Envoy__Type__V3__Percent *p = TR_NEW(tx, envoy__type__v3__percent);
    p->value = v ? v->value : 100;
    if (p->value < 0 || p->value > 100)
        tr_error(tx, "%s: %g is not between 0 and 100", what, p->value);
    return p;
}

/* The cluster of a tracing collector (path p names the provider): the
 * Upstream's (reached by the proxy) or the cluster named; NULL when the
 * Upstream is missing or neither is set (reported). */
static const char *collector_cluster(tr_ctx *tx, const tr_gateway *gw, const Sluice__V1__ResourceRef *ref,
                                     const char *name, const char *p)
{
    const char *ns = gw->gw->metadata && gw->gw->metadata->namespace_[0] ? gw->gw->metadata->namespace_ : "default";
    const Sluice__V1__Upstream *up;
    if (!ref) {
        if (!name || !name[0])
            tr_error(tx, "%s: collectorUpstreamRef or clusterName is required", p);
        return name && name[0] ? tr_strdup(tx, name) : NULL;
    }
    if (!(up = tr_find_upstream(tx, ref, ns))) {
        tr_error(tx, "%s.collectorUpstreamRef: Upstream %s.%s not found", p, ref->namespace_[0] ? ref->namespace_ : ns,
                 ref->name);
        return NULL;
    }
    return tr_cluster_name(tx, up->metadata->name, up->metadata->namespace_);
}

static Envoy__Config__Trace__V3__Tracing__Http *provider(tr_ctx *tx, const char *name, const ProtobufCMessage *config)
{
    Envoy__Config__Trace__V3__Tracing__Http *h = TR_NEW(tx, envoy__config__trace__v3__tracing__http);
    h->name = tr_strdup(tx, name);
    h->config_type_case = ENVOY__CONFIG__TRACE__V3__TRACING__HTTP__CONFIG_TYPE_TYPED_CONFIG;
    h->typed_config = tr_any(tx, config);
    return h;
}

static Envoy__Config__Trace__V3__Tracing__Http *zipkin(tr_ctx *tx, const tr_gateway *gw, const Sluice__V1__ZipkinConfig *z,
                                                      const char *p)
{
    Envoy__Config__Trace__V3__ZipkinConfig *zc = TR_NEW(tx, envoy__config__trace__v3__zipkin_config);
    p = tr_printf(tx, "%s.zipkinConfig", p);
    zc->collector_cluster = (char *)collector_cluster(
        tx, gw, z->collector_cluster_case == SLUICE__V1__ZIPKIN_CONFIG__COLLECTOR_CLUSTER_COLLECTOR_UPSTREAM_REF ? z->collector_upstream_ref : NULL,
        z->collector_cluster_case == SLUICE__V1__ZIPKIN_CONFIG__COLLECTOR_CLUSTER_CLUSTER_NAME ? z->cluster_name : NULL, p);
    if (!zc->collector_cluster)
        return NULL;
    if (!z->collector_endpoint[0]) {
        tr_error(tx, "%s.collectorEndpoint: required", p);
        return NULL;
    }
    zc->collector_endpoint = tr_strdup(tx, z->collector_endpoint);
    if (z->trace_id_128bit)
        zc->trace_id_128bit = z->trace_id_128bit->value;
    if (z->shared_span_context)
        zc->shared_span_context = tr_bool(tx, z->shared_span_context->value);
    zc->collector_endpoint_version = z->collector_endpoint_version == SLUICE__V1__ZIPKIN_CONFIG__COLLECTOR_ENDPOINT_VERSION__HTTP_PROTO
                                         ? ENVOY__CONFIG__TRACE__V3__ZIPKIN_CONFIG__COLLECTOR_ENDPOINT_VERSION__HTTP_PROTO
                                         : ENVOY__CONFIG__TRACE__V3__ZIPKIN_CONFIG__COLLECTOR_ENDPOINT_VERSION__HTTP_JSON;
    return provider(tx, "envoy.tracers.zipkin", &zc->base);
}

/* Gloo's tracing plugin processEnvoyOpenTelemetryTracing: OTLP over Envoy
 * gRPC to the collector's cluster, service name default the Gateway's. */
static Envoy__Config__Trace__V3__Tracing__Http *opentelemetry(tr_ctx *tx, const tr_gateway *gw,
                                                             const Sluice__V1__OpenTelemetryConfig *c, const char *p)
{
    Envoy__Config__Trace__V3__OpenTelemetryConfig *oc = TR_NEW(tx, envoy__config__trace__v3__open_telemetry_config);
    const char *cluster;
    p = tr_printf(tx, "%s.openTelemetryConfig", p);
    cluster = collector_cluster(
        tx, gw, c->collector_cluster_case == SLUICE__V1__OPEN_TELEMETRY_CONFIG__COLLECTOR_CLUSTER_COLLECTOR_UPSTREAM_REF ? c->collector_upstream_ref : NULL,
        c->collector_cluster_case == SLUICE__V1__OPEN_TELEMETRY_CONFIG__COLLECTOR_CLUSTER_CLUSTER_NAME ? c->cluster_name : NULL, p);
    if (!cluster)
        return NULL;
    if (c->max_cache_size)
        tr_warn(tx, "%s.maxCacheSize: not used: stock Envoy's OpenTelemetry tracer has no span cache limit", p);
    oc->grpc_service = TR_NEW(tx, envoy__config__core__v3__grpc_service);
    oc->grpc_service->target_specifier_case = ENVOY__CONFIG__CORE__V3__GRPC_SERVICE__TARGET_SPECIFIER_ENVOY_GRPC;
    oc->grpc_service->envoy_grpc = TR_NEW(tx, envoy__config__core__v3__grpc_service__envoy_grpc);
    oc->grpc_service->envoy_grpc->cluster_name = tr_strdup(tx, cluster);
    if (c->service_type_case == SLUICE__V1__OPEN_TELEMETRY_CONFIG__SERVICE_TYPE_GRPC_SERVICE)
        oc->grpc_service->envoy_grpc->authority = tr_strdup(tx, c->grpc_service->authority);
    oc->service_name = tr_strdup(tx, c->service_name[0] ? c->service_name : gw->gw->metadata->name);
    return provider(tx, "envoy.tracers.opentelemetry", &oc->base);
}

/* The HCM's tracing, as Gloo's tracing plugin: sampling 100% unless set,
 * spawn_upstream_span false, the provider. */
static void tracing(tr_ctx *tx, const tr_gateway *gw, const Sluice__V1__ListenerTracingSettings *t, tr_hcm_t *hcm)
{
    Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpConnectionManager__Tracing *o =
        TR_NEW(tx, envoy__extensions__filters__network__http_connection_manager__v3__http_connection_manager__tracing);
    const Sluice__V1__TracePercentages *tp = t->trace_percentages;
    const char *p = "spec.httpGateway.options.httpConnectionManagerSettings.tracing";
    o->verbose = t->verbose;
    if (t->n_request_headers_for_tags)
        tr_error(tx, "%s.requestHeadersForTags: not supported by Sluice yet", p);
    o->client_sampling = pct(tx, tp ? tp->client_sample_percentage : NULL, p);
    o->random_sampling = pct(tx, tp ? tp->random_sample_percentage : NULL, p);
    o->overall_sampling = pct(tx, tp ? tp->overall_sample_percentage : NULL, p);
    o->spawn_upstream_span = tr_bool(tx, false);
    if (t->provider_config_case == SLUICE__V1__LISTENER_TRACING_SETTINGS__PROVIDER_CONFIG_ZIPKIN_CONFIG &&
        !(o->provider = zipkin(tx, gw, t->zipkin_config, p)))
        return;
    if (t->provider_config_case == SLUICE__V1__LISTENER_TRACING_SETTINGS__PROVIDER_CONFIG_OPEN_TELEMETRY_CONFIG &&
        !(o->provider = opentelemetry(tx, gw, t->open_telemetry_config, p)))
        return;
    hcm->tracing = o;
}

/* A file access log (fileSink at p); NULL when unusable (reported). */
static Envoy__Config__Accesslog__V3__AccessLog *file_log(tr_ctx *tx, const Sluice__V1__FileSink *fs, const char *p)
{
    Envoy__Extensions__AccessLoggers__File__V3__FileAccessLog *fl;
    Envoy__Config__Accesslog__V3__AccessLog *o;
    if (!fs->path[0]) {
        tr_error(tx, "%s.fileSink.path: required", p);
        return NULL;
    }
    fl = TR_NEW(tx, envoy__extensions__access_loggers__file__v3__file_access_log);
    fl->path = tr_strdup(tx, fs->path);
    if (fs->output_format_case == SLUICE__V1__FILE_SINK__OUTPUT_FORMAT_STRING_FORMAT) {
        fl->access_log_format_case = ENVOY__EXTENSIONS__ACCESS_LOGGERS__FILE__V3__FILE_ACCESS_LOG__ACCESS_LOG_FORMAT_LOG_FORMAT;
        fl->log_format = TR_NEW(tx, envoy__config__core__v3__substitution_format_string);
        fl->log_format->format_case = ENVOY__CONFIG__CORE__V3__SUBSTITUTION_FORMAT_STRING__FORMAT_TEXT_FORMAT_SOURCE;
        fl->log_format->text_format_source = tr_inline_string(tx, fs->string_format);
    } else if (fs->output_format_case == SLUICE__V1__FILE_SINK__OUTPUT_FORMAT_JSON_FORMAT) {
        fl->access_log_format_case = ENVOY__EXTENSIONS__ACCESS_LOGGERS__FILE__V3__FILE_ACCESS_LOG__ACCESS_LOG_FORMAT_LOG_FORMAT;
        fl->log_format = TR_NEW(tx, envoy__config__core__v3__substitution_format_string);
        fl->log_format->format_case = ENVOY__CONFIG__CORE__V3__SUBSTITUTION_FORMAT_STRING__FORMAT_JSON_FORMAT;
        fl->log_format->json_format = fs->json_format;
    }
    o = TR_NEW(tx, envoy__config__accesslog__v3__access_log);
    o->name = tr_strdup(tx, "envoy.access_loggers.file");
    o->config_type_case = ENVOY__CONFIG__ACCESSLOG__V3__ACCESS_LOG__CONFIG_TYPE_TYPED_CONFIG;
    o->typed_config = tr_any(tx, &fl->base);
    return o;
}

/* The Upstream whose cluster is named cluster ("<name>_<namespace>";
 * Sluice names have no '_'), reached by the proxy; NULL when none. */
static const Sluice__V1__Upstream *upstream_of_cluster(tr_ctx *tx, const char *cluster)
{
    Sluice__V1__ResourceRef ref = SLUICE__V1__RESOURCE_REF__INIT;
    const char *us = strrchr(cluster, '_');
    if (!us || us == cluster || !us[1])
        return NULL;
    ref.name = tr_printf(tx, "%.*s", (int)(us - cluster), cluster);
    ref.namespace_ = (char *)us + 1;
    return tr_find_upstream(tx, &ref, ref.namespace_);
}

/* A gRPC access log (grpcService at p, as Gloo's als converter
 * copyGrpcSettings); NULL when unusable (reported). */
static Envoy__Config__Accesslog__V3__AccessLog *grpc_log(tr_ctx *tx, const Sluice__V1__GrpcService *g, const char *p)
{
    Envoy__Extensions__AccessLoggers__Grpc__V3__HttpGrpcAccessLogConfig *c;
    Envoy__Extensions__AccessLoggers__Grpc__V3__CommonGrpcAccessLogConfig *cc;
    Envoy__Config__Core__V3__GrpcService *svc;
    Envoy__Config__Accesslog__V3__AccessLog *o;
    const Sluice__V1__Upstream *up;
    const char *cluster = g->service_ref_case == SLUICE__V1__GRPC_SERVICE__SERVICE_REF_STATIC_CLUSTER_NAME
                              ? g->static_cluster_name
                              : "";
    if (!g->log_name[0] || !cluster[0]) {
        tr_error(tx, "%s.grpcService: logName and staticClusterName are required", p);
        return NULL;
    }
    if (!(up = upstream_of_cluster(tx, cluster)))
        tr_warn(tx, "%s.grpcService.staticClusterName: %s is the cluster of no Upstream; the proxy's bootstrap must "
                    "define it (as Gloo's access_log_cluster), or Envoy rejects the listener",
                p, cluster);
    else if (!up->spec->use_http2 || !up->spec->use_http2->value)
        tr_warn(tx, "%s.grpcService.staticClusterName: Upstream %s.%s does not set useHttp2; gRPC needs HTTP/2", p,
                up->metadata->namespace_, up->metadata->name);
    svc = TR_NEW(tx, envoy__config__core__v3__grpc_service);
    svc->target_specifier_case = ENVOY__CONFIG__CORE__V3__GRPC_SERVICE__TARGET_SPECIFIER_ENVOY_GRPC;
    svc->envoy_grpc = TR_NEW(tx, envoy__config__core__v3__grpc_service__envoy_grpc);
    svc->envoy_grpc->cluster_name = tr_strdup(tx, cluster);
    cc = TR_NEW(tx, envoy__extensions__access_loggers__grpc__v3__common_grpc_access_log_config);
    cc->log_name = tr_strdup(tx, g->log_name);
    cc->grpc_service = svc;
    cc->transport_api_version = ENVOY__CONFIG__CORE__V3__API_VERSION__V3;
    cc->n_filter_state_objects_to_log = g->n_filter_state_objects_to_log;
    cc->filter_state_objects_to_log = g->filter_state_objects_to_log;
    c = TR_NEW(tx, envoy__extensions__access_loggers__grpc__v3__http_grpc_access_log_config);
    c->common_config = cc;
    c->n_additional_request_headers_to_log = g->n_additional_request_headers_to_log;
    c->additional_request_headers_to_log = g->additional_request_headers_to_log;
    c->n_additional_response_headers_to_log = g->n_additional_response_headers_to_log;
    c->additional_response_headers_to_log = g->additional_response_headers_to_log;
    c->n_additional_response_trailers_to_log = g->n_additional_response_trailers_to_log;
    c->additional_response_trailers_to_log = g->additional_response_trailers_to_log;
    o = TR_NEW(tx, envoy__config__accesslog__v3__access_log);
    o->name = tr_strdup(tx, "envoy.access_loggers.http_grpc");
    o->config_type_case = ENVOY__CONFIG__ACCESSLOG__V3__ACCESS_LOG__CONFIG_TYPE_TYPED_CONFIG;
    o->typed_config = tr_any(tx, &c->base);
    return o;
}

/* One access log of an HCM or a tcp_proxy (accessLoggingService.accessLog[i]
 * at p); NULL when unusable (reported). Gloo gives TCP the same loggers
 * (als ProcessAccessLogPlugins). */
static Envoy__Config__Accesslog__V3__AccessLog *access_log(tr_ctx *tx, const Sluice__V1__AccessLog *al, const char *p)
{
    if (al->output_destination_case == SLUICE__V1__ACCESS_LOG__OUTPUT_DESTINATION_FILE_SINK)
        return file_log(tx, al->file_sink, p);
    if (al->output_destination_case == SLUICE__V1__ACCESS_LOG__OUTPUT_DESTINATION_GRPC_SERVICE)
        return grpc_log(tx, al->grpc_service, p);
    tr_error(tx, "%s: fileSink or grpcService is required", p);
    return NULL;
}

/* The access logs of listener options lo appended to the repeated field
 * (v, n) of an HCM or a tcp_proxy. */
static void access_logs(tr_ctx *tx, const Sluice__V1__ListenerOptions *lo, void ***v, size_t *n)
{
    for (size_t i = 0; lo && lo->access_logging_service && i < lo->access_logging_service->n_access_log; i++) {
        Envoy__Config__Accesslog__V3__AccessLog *o = access_log(
            tx, lo->access_logging_service->access_log[i], tr_printf(tx, "spec.options.accessLoggingService.accessLog[%zu]", i));
        if (o)
            tr_push_(tx, v, n, o);
    }
}

/* What Gloo sets on every HttpConnectionManager whatever the settings s
 * (hcm/plugin.go ProcessHcmNetworkFilter): normalize_path true (RFC 3986;
 * settings may turn it off) and, unless the settings name websocket
 * upgrades, a websocket upgrade config without `enabled`, so websocket
 * upgrades are allowed on every route. */
static void hcm_defaults(tr_ctx *tx, const Sluice__V1__HttpConnectionManagerSettings *s, tr_hcm_t *hcm)
{
    bool websocket = false;
    hcm->normalize_path = tr_bool(tx, true);
    for (size_t i = 0; s && i < s->n_upgrades; i++)
        websocket |= s->upgrades[i]->upgrade_type_case == SLUICE__V1__PROTOCOL_UPGRADE_CONFIG__UPGRADE_TYPE_WEBSOCKET;
    if (!websocket) {
        Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpConnectionManager__UpgradeConfig *u =
            TR_NEW(tx, envoy__extensions__filters__network__http_connection_manager__v3__http_connection_manager__upgrade_config);
        u->upgrade_type = tr_strdup(tx, "websocket");
        TR_PUSH(tx, hcm, upgrade_configs, u);
    }
}

static void http_filters(tr_ctx *tx, const tr_gateway *gw, tr_hcm_t *hcm, tr_filters *f)
{
    const Sluice__V1__HttpConnectionManagerSettings *s = hcm_settings(gw);
    const Sluice__V1__HttpGateway *hg = gw->gw->spec->http_gateway;
    const Sluice__V1__ListenerOptions *lo = gw->gw->spec->options;
    const char *p = "spec.httpGateway.options.httpConnectionManagerSettings";
    hcm_defaults(tx, s, hcm);
    if (s) {
        hcm->skip_xff_append = s->skip_xff_append;
        hcm->via = tr_strdup(tx, s->via);
        hcm->xff_num_trusted_hops = s->xff_num_trusted_hops;
        if (s->use_remote_address)
            hcm->use_remote_address = tr_bool(tx, s->use_remote_address->value);
        if (s->generate_request_id)
            hcm->generate_request_id = tr_bool(tx, s->generate_request_id->value);
        hcm->proxy_100_continue = s->proxy_100_continue;
        if (s->stream_idle_timeout)
            hcm->stream_idle_timeout = tr_dur(tx, s->stream_idle_timeout);
        if (s->max_request_headers_kb) {
            if (s->max_request_headers_kb->value < 1 || s->max_request_headers_kb->value > 8192)
                tr_error(tx, "%s.maxRequestHeadersKb: %u is not between 1 and 8192", p, s->max_request_headers_kb->value);
            hcm->max_request_headers_kb = tr_u32(tx, s->max_request_headers_kb->value);
        }
        if (s->request_timeout)
            hcm->request_timeout = tr_dur(tx, s->request_timeout);
        if (s->drain_timeout)
            hcm->drain_timeout = tr_dur(tx, s->drain_timeout);
        hcm->server_name = tr_strdup(tx, s->server_name);
        hcm->server_header_transformation =
            (Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpConnectionManager__ServerHeaderTransformation)
                s->server_header_transformation;
        if (s->idle_timeout || s->max_connection_duration) {
            hcm->common_http_protocol_options = TR_NEW(tx, envoy__config__core__v3__http_protocol_options);
            if (s->idle_timeout)
                hcm->common_http_protocol_options->idle_timeout = tr_dur(tx, s->idle_timeout);
            if (s->max_connection_duration)
                hcm->common_http_protocol_options->max_connection_duration = tr_dur(tx, s->max_connection_duration);
        }
        if (s->accept_http_10 || s->default_host_for_http_10[0]) {
            hcm->http_protocol_options = TR_NEW(tx, envoy__config__core__v3__http1_protocol_options);
            hcm->http_protocol_options->accept_http_10 = s->accept_http_10;
            hcm->http_protocol_options->default_host_for_http_10 = tr_strdup(tx, s->default_host_for_http_10);
        }
        if (s->normalize_path)
            hcm->normalize_path->value = s->normalize_path->value;
        if (s->merge_slashes)
            hcm->merge_slashes = s->merge_slashes->value;
        for (size_t i = 0; i < s->n_upgrades; i++) {
            Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpConnectionManager__UpgradeConfig *u =
                TR_NEW(tx, envoy__extensions__filters__network__http_connection_manager__v3__http_connection_manager__upgrade_config);
            if (s->upgrades[i]->upgrade_type_case != SLUICE__V1__PROTOCOL_UPGRADE_CONFIG__UPGRADE_TYPE_WEBSOCKET) {
                tr_error(tx, "%s.upgrades[%zu]: websocket is required", p, i);
                continue;
            }
            u->upgrade_type = tr_strdup(tx, "websocket");
            if (s->upgrades[i]->websocket->enabled)
                u->enabled = tr_bool(tx, s->upgrades[i]->websocket->enabled->value);
            TR_PUSH(tx, hcm, upgrade_configs, u);
        }
        if (s->tracing)
            tracing(tx, gw, s->tracing, hcm);
    }
    if (hg && hg->options && hg->options->health_check) {
        Envoy__Extensions__Filters__Http__HealthCheck__V3__HealthCheck *hc =
            TR_NEW(tx, envoy__extensions__filters__http__health_check__v3__health_check);
        Envoy__Config__Route__V3__HeaderMatcher *hm = TR_NEW(tx, envoy__config__route__v3__header_matcher);
        const char *path = hg->options->health_check->path;
        if (!path[0] || path[0] != '/')
            tr_error(tx, "spec.httpGateway.options.healthCheck.path: a path starting with '/' is required");
        hc->pass_through_mode = tr_bool(tx, false);
        hm->name = tr_strdup(tx, ":path");
        hm->header_match_specifier_case = ENVOY__CONFIG__ROUTE__V3__HEADER_MATCHER__HEADER_MATCH_SPECIFIER_STRING_MATCH;
        hm->string_match = TR_NEW(tx, envoy__type__matcher__v3__string_matcher);
        hm->string_match->match_pattern_case = ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_EXACT;
        hm->string_match->exact = tr_strdup(tx, path);
        TR_PUSH(tx, hc, headers, hm);
        tr_add_filter(tx, f, TR_STAGE_HEALTH, "envoy.filters.http.health_check", &hc->base);
    }
    access_logs(tx, lo, (void ***)(void *)&hcm->access_log, &hcm->n_access_log);
}

static void tcp_proxy(tr_ctx *tx, const tr_gateway *gw, Envoy__Extensions__Filters__Network__TcpProxy__V3__TcpProxy *tp)
{
    const Sluice__V1__ListenerOptions *lo = gw->gw->spec->options;
    access_logs(tx, lo, (void ***)(void *)&tp->access_log, &tp->n_access_log);
}

static void listener(tr_ctx *tx, const tr_gateway *gw, tr_listener_t *l)
{
    const Sluice__V1__ListenerOptions *lo = gw->gw->spec->options;
    if (lo && lo->per_connection_buffer_limit_bytes)
        l->per_connection_buffer_limit_bytes = tr_u32(tx, lo->per_connection_buffer_limit_bytes->value);
    if (gw->gw->spec->use_proxy_proto && gw->gw->spec->use_proxy_proto->value) {
        /* The PROXY header comes before anything else on the connection,
         * TLS included: the filter goes first, before tls_inspector. */
        Envoy__Config__Listener__V3__ListenerFilter *lf = TR_NEW(tx, envoy__config__listener__v3__listener_filter);
        Envoy__Extensions__Filters__Listener__ProxyProtocol__V3__ProxyProtocol *pp =
            TR_NEW(tx, envoy__extensions__filters__listener__proxy_protocol__v3__proxy_protocol);
        lf->name = tr_strdup(tx, "envoy.filters.listener.proxy_protocol");
        lf->config_type_case = ENVOY__CONFIG__LISTENER__V3__LISTENER_FILTER__CONFIG_TYPE_TYPED_CONFIG;
        lf->typed_config = tr_any(tx, &pp->base);
        TR_PUSH(tx, l, listener_filters, lf);
        for (size_t i = l->n_listener_filters - 1; i > 0; i--)
            l->listener_filters[i] = l->listener_filters[i - 1];
        l->listener_filters[0] = lf;
    }
}

static void route(tr_ctx *tx, const tr_route_in *in, tr_route_t *r)
{
    const Sluice__V1__RouteTracingSettings *t = in->options ? in->options->tracing : NULL;
    if (!t)
        return;
    if (t->trace_percentages)
        tr_error(tx, "%s.tracing.tracePercentages: not supported by Sluice yet", in->path);
    if (t->route_descriptor[0] || t->propagate) {
        r->decorator = TR_NEW(tx, envoy__config__route__v3__decorator);
        r->decorator->operation = tr_strdup(tx, t->route_descriptor[0] ? t->route_descriptor : r->name);
        if (t->propagate)
            r->decorator->propagate = tr_bool(tx, t->propagate->value);
    }
}

const sl_tr_plugin sl_tr_plugin_listener = {
    .name = "listener",
    .fields = fields,
    .listener = listener,
    .http_filters = http_filters,
    .tcp_proxy = tcp_proxy,
    .route = route,
};
