/* listener: Gateway options of the listener and its HTTP connection
 * manager: Gloo's defaults and httpConnectionManagerSettings, healthCheck
 * (the health_check filter answering on a path), accessLoggingService
 * (plugins/accesslog.c; also of TCP hosts' tcp_proxy), listenerAccessLoggingService,
 * perConnectionBufferLimitBytes, socketOptions, connectionBalanceConfig, tcpStats, tracing
 * (zipkin, OpenTelemetry) with route decorators, useProxyProto (the proxy_protocol
 * listener filter, first). */
#include <string.h>

#include "../plugin.h"
#include "accesslog.h"
#include "envoy/config/trace/v3/opentelemetry.pb-c.h"
#include "envoy/config/trace/v3/zipkin.pb-c.h"
#include "envoy/extensions/filters/http/health_check/v3/health_check.pb-c.h"
#include "envoy/extensions/filters/listener/proxy_protocol/v3/proxy_protocol.pb-c.h"
#include "envoy/extensions/http/early_header_mutation/header_mutation/v3/header_mutation.pb-c.h"
#include "envoy/extensions/http/header_formatters/preserve_case/v3/preserve_case.pb-c.h"
#include "envoy/extensions/request_id/uuid/v3/uuid.pb-c.h"
#include "envoy/extensions/transport_sockets/raw_buffer/v3/raw_buffer.pb-c.h"
#include "envoy/extensions/transport_sockets/tcp_stats/v3/tcp_stats.pb-c.h"

static const char *const fields[] = {
    "ListenerOptions.access_logging_service", "ListenerOptions.per_connection_buffer_limit_bytes",
    "ListenerOptions.socket_options", "ListenerOptions.connection_balance_config",
    "ListenerOptions.listener_access_logging_service", "ListenerOptions.tcp_stats",
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
/* A custom tag named tag (NULL when it has no name: reported at p). */
static Envoy__Type__Tracing__V3__CustomTag *custom_tag(tr_ctx *tx, const char *tag, const char *p)
{
    Envoy__Type__Tracing__V3__CustomTag *c;
    if (!tag || !tag[0]) {
        tr_error(tx, "%s.tag: required", p);
        return NULL;
    }
    c = TR_NEW(tx, envoy__type__tracing__v3__custom_tag);
    c->tag = tr_strdup(tx, tag);
    return c;
}

/* The span tags of settings t (at p) on o, as Gloo's tracing plugin
 * customTags: request headers (tagged by their name), environment
 * variables, literals, then request or endpoint metadata. */
static void custom_tags(tr_ctx *tx, const Sluice__V1__ListenerTracingSettings *t, const char *p,
                        Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpConnectionManager__Tracing *o)
{
    Envoy__Type__Tracing__V3__CustomTag *c;
    const char *err;
    for (size_t i = 0; i < t->n_request_headers_for_tags; i++) {
        const char *where = tr_printf(tx, "%s.requestHeadersForTags[%zu]", p, i);
        if ((err = tr_check_header_name(t->request_headers_for_tags[i], true))) {
            tr_error(tx, "%s: %s", where, err);
            continue;
        }
        c = custom_tag(tx, t->request_headers_for_tags[i], where);
        c->type_case = ENVOY__TYPE__TRACING__V3__CUSTOM_TAG__TYPE_REQUEST_HEADER;
        c->request_header = TR_NEW(tx, envoy__type__tracing__v3__custom_tag__header);
        c->request_header->name = tr_strdup(tx, t->request_headers_for_tags[i]);
        TR_PUSH(tx, o, custom_tags, c);
    }
    for (size_t i = 0; i < t->n_environment_variables_for_tags; i++) {
        const Sluice__V1__TracingTagEnvironmentVariable *e = t->environment_variables_for_tags[i];
        const char *where = tr_printf(tx, "%s.environmentVariablesForTags[%zu]", p, i);
        if (!(c = custom_tag(tx, e->tag ? e->tag->value : NULL, where)))
            continue;
        if (!e->name || !e->name->value[0]) {
            tr_error(tx, "%s.name: required", where);
            continue;
        }
        c->type_case = ENVOY__TYPE__TRACING__V3__CUSTOM_TAG__TYPE_ENVIRONMENT;
        c->environment = TR_NEW(tx, envoy__type__tracing__v3__custom_tag__environment);
        c->environment->name = tr_strdup(tx, e->name->value);
        c->environment->default_value = tr_strdup(tx, e->default_value ? e->default_value->value : "");
        TR_PUSH(tx, o, custom_tags, c);
    }
    for (size_t i = 0; i < t->n_literals_for_tags; i++) {
        const Sluice__V1__TracingTagLiteral *l = t->literals_for_tags[i];
        const char *where = tr_printf(tx, "%s.literalsForTags[%zu]", p, i);
        if (!(c = custom_tag(tx, l->tag ? l->tag->value : NULL, where)))
            continue;
        if (!l->value || !l->value->value[0]) {
            tr_error(tx, "%s.value: required", where);
            continue;
        }
        c->type_case = ENVOY__TYPE__TRACING__V3__CUSTOM_TAG__TYPE_LITERAL;
        c->literal = TR_NEW(tx, envoy__type__tracing__v3__custom_tag__literal);
        c->literal->value = tr_strdup(tx, l->value->value);
        TR_PUSH(tx, o, custom_tags, c);
    }
    for (size_t i = 0; i < t->n_metadata_for_tags; i++) {
        const Sluice__V1__TracingTagMetadata *m = t->metadata_for_tags[i];
        const char *where = tr_printf(tx, "%s.metadataForTags[%zu]", p, i);
        const char *delim, *key, *end;
        Envoy__Type__Tracing__V3__CustomTag__Metadata *md;
        if (!(c = custom_tag(tx, m->tag, where)))
            continue;
        if (!m->value || !m->value->namespace_[0] || !m->value->key[0]) {
            tr_error(tx, "%s.value: namespace and key are required", where);
            continue;
        }
        delim = m->value->nested_field_delimiter[0] ? m->value->nested_field_delimiter : ".";
        md = TR_NEW(tx, envoy__type__tracing__v3__custom_tag__metadata);
        md->kind = TR_NEW(tx, envoy__type__metadata__v3__metadata_kind);
        if (m->kind == SLUICE__V1__TRACING_TAG_METADATA__KIND__ENDPOINT) {
            md->kind->kind_case = ENVOY__TYPE__METADATA__V3__METADATA_KIND__KIND_HOST;
            md->kind->host = TR_NEW(tx, envoy__type__metadata__v3__metadata_kind__host);
        } else {
            md->kind->kind_case = ENVOY__TYPE__METADATA__V3__METADATA_KIND__KIND_REQUEST;
            md->kind->request = TR_NEW(tx, envoy__type__metadata__v3__metadata_kind__request);
        }
        md->metadata_key = TR_NEW(tx, envoy__type__metadata__v3__metadata_key);
        md->metadata_key->key = tr_strdup(tx, m->value->namespace_);
        for (key = m->value->key;; key = end + strlen(delim)) { /* Gloo's strings.Split */
            Envoy__Type__Metadata__V3__MetadataKey__PathSegment *seg =
                TR_NEW(tx, envoy__type__metadata__v3__metadata_key__path_segment);
            end = strstr(key, delim);
            seg->segment_case = ENVOY__TYPE__METADATA__V3__METADATA_KEY__PATH_SEGMENT__SEGMENT_KEY;
            seg->key = end ? tr_printf(tx, "%.*s", (int)(end - key), key) : tr_strdup(tx, key);
            if (!seg->key[0]) {
                tr_error(tx, "%s.value.key: \"%s\" has an empty segment", where, m->value->key);
                md = NULL;
                break;
            }
            TR_PUSH(tx, md->metadata_key, path, seg);
            if (!end)
                break;
        }
        if (!md)
            continue;
        md->default_value = tr_strdup(tx, m->default_value);
        c->type_case = ENVOY__TYPE__TRACING__V3__CUSTOM_TAG__TYPE_METADATA;
        c->metadata = md;
        TR_PUSH(tx, o, custom_tags, c);
    }
}

static void tracing(tr_ctx *tx, const tr_gateway *gw, const Sluice__V1__ListenerTracingSettings *t, tr_hcm_t *hcm)
{
    Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpConnectionManager__Tracing *o =
        TR_NEW(tx, envoy__extensions__filters__network__http_connection_manager__v3__http_connection_manager__tracing);
    const Sluice__V1__TracePercentages *tp = t->trace_percentages;
    const char *p = "spec.httpGateway.options.httpConnectionManagerSettings.tracing";
    o->verbose = t->verbose;
    custom_tags(tx, t, p, o);
    o->client_sampling = pct(tx, tp ? tp->client_sample_percentage : NULL, p);
    o->random_sampling = pct(tx, tp ? tp->random_sample_percentage : NULL, p);
    o->overall_sampling = pct(tx, tp ? tp->overall_sample_percentage : NULL, p);
    o->spawn_upstream_span = tr_bool(tx, t->spawn_upstream_span);
    if (t->provider_config_case == SLUICE__V1__LISTENER_TRACING_SETTINGS__PROVIDER_CONFIG_ZIPKIN_CONFIG &&
        !(o->provider = zipkin(tx, gw, t->zipkin_config, p)))
        return;
    if (t->provider_config_case == SLUICE__V1__LISTENER_TRACING_SETTINGS__PROVIDER_CONFIG_OPEN_TELEMETRY_CONFIG &&
        !(o->provider = opentelemetry(tx, gw, t->open_telemetry_config, p)))
        return;
    hcm->tracing = o;
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

/* The HTTP/1, HTTP/2 and common protocol options of settings s (at p),
 * as Gloo's hcm plugin: each created only when a setting needs it. */
static void protocol_options(tr_ctx *tx, const Sluice__V1__HttpConnectionManagerSettings *s, const char *p,
                             tr_hcm_t *hcm)
{
    const Sluice__V1__HttpConnectionManagerSettings__Http2ProtocolOptions *h2 = s->http2_protocol_options;
    Envoy__Config__Core__V3__Http1ProtocolOptions *h1 = NULL;
    Envoy__Config__Core__V3__HttpProtocolOptions *common = NULL;
    bool proper = s->header_format_case ==
                      SLUICE__V1__HTTP_CONNECTION_MANAGER_SETTINGS__HEADER_FORMAT_PROPER_CASE_HEADER_KEY_FORMAT &&
                  s->proper_case_header_key_format->value;
    bool preserve = s->header_format_case ==
                        SLUICE__V1__HTTP_CONNECTION_MANAGER_SETTINGS__HEADER_FORMAT_PRESERVE_CASE_HEADER_KEY_FORMAT &&
                    s->preserve_case_header_key_format->value;
    bool chunked = s->allow_chunked_length && s->allow_chunked_length->value;
    bool trailers = s->enable_trailers && s->enable_trailers->value;
    if (s->accept_http_10 || s->default_host_for_http_10[0] || proper || preserve || chunked || trailers) {
        h1 = hcm->http_protocol_options = TR_NEW(tx, envoy__config__core__v3__http1_protocol_options);
        h1->accept_http_10 = s->accept_http_10;
        h1->default_host_for_http_10 = tr_strdup(tx, s->default_host_for_http_10);
        h1->allow_chunked_length = chunked;
        h1->enable_trailers = trailers;
    }
    if (proper || preserve) {
        h1->header_key_format = TR_NEW(tx, envoy__config__core__v3__http1_protocol_options__header_key_format);
        if (proper) {
            h1->header_key_format->header_format_case =
                ENVOY__CONFIG__CORE__V3__HTTP1_PROTOCOL_OPTIONS__HEADER_KEY_FORMAT__HEADER_FORMAT_PROPER_CASE_WORDS;
            h1->header_key_format->proper_case_words =
                TR_NEW(tx, envoy__config__core__v3__http1_protocol_options__header_key_format__proper_case_words);
        } else {
            Envoy__Extensions__Http__HeaderFormatters__PreserveCase__V3__PreserveCaseFormatterConfig *pc =
                TR_NEW(tx, envoy__extensions__http__header_formatters__preserve_case__v3__preserve_case_formatter_config);
            h1->header_key_format->header_format_case =
                ENVOY__CONFIG__CORE__V3__HTTP1_PROTOCOL_OPTIONS__HEADER_KEY_FORMAT__HEADER_FORMAT_STATEFUL_FORMATTER;
            h1->header_key_format->stateful_formatter = TR_NEW(tx, envoy__config__core__v3__typed_extension_config);
            h1->header_key_format->stateful_formatter->name =
                tr_strdup(tx, "envoy.http.stateful_header_formatters.preserve_case");
            h1->header_key_format->stateful_formatter->typed_config = tr_any(tx, &pc->base);
        }
    }
    if (s->idle_timeout || s->max_connection_duration || s->max_stream_duration || s->max_headers_count ||
        s->max_requests_per_connection ||
        s->headers_with_underscores_action != SLUICE__V1__HTTP_CONNECTION_MANAGER_SETTINGS__HEADERS_WITH_UNDERSCORE_ACTION__ALLOW) {
        common = hcm->common_http_protocol_options = TR_NEW(tx, envoy__config__core__v3__http_protocol_options);
        if (s->idle_timeout)
            common->idle_timeout = tr_dur(tx, s->idle_timeout);
        if (s->max_connection_duration)
            common->max_connection_duration = tr_dur(tx, s->max_connection_duration);
        if (s->max_stream_duration)
            common->max_stream_duration = tr_dur(tx, s->max_stream_duration);
        if (s->max_headers_count) {
            if (s->max_headers_count->value < 1)
                tr_error(tx, "%s.maxHeadersCount: must be at least 1", p);
            common->max_headers_count = tr_u32(tx, s->max_headers_count->value);
        }
        if (s->max_requests_per_connection)
            common->max_requests_per_connection = tr_u32(tx, s->max_requests_per_connection->value);
        common->headers_with_underscores_action =
            (Envoy__Config__Core__V3__HttpProtocolOptions__HeadersWithUnderscoresAction)s->headers_with_underscores_action;
    }
    if (h2)
        hcm->http2_protocol_options =
            tr_http2_options(tx, h2->initial_stream_window_size, h2->initial_connection_window_size,
                             h2->max_concurrent_streams, tr_printf(tx, "%s.http2ProtocolOptions", p));
    if (h2 && h2->override_stream_error_on_invalid_http_message)
        hcm->http2_protocol_options->override_stream_error_on_invalid_http_message =
            tr_bool(tx, h2->override_stream_error_on_invalid_http_message->value);
}

/* Gloo's earlyHeaderManipulation (headers/plugin.go ProcessHcmNetworkFilter):
 * one header_mutation early extension appending headersToAdd, then
 * removing headersToRemove. */
static void early_headers(tr_ctx *tx, const Sluice__V1__EarlyHeaderManipulation *e, const char *p, tr_hcm_t *hcm)
{
    Envoy__Extensions__Http__EarlyHeaderMutation__HeaderMutation__V3__HeaderMutation *hm =
        TR_NEW(tx, envoy__extensions__http__early_header_mutation__header_mutation__v3__header_mutation);
    Envoy__Config__Core__V3__TypedExtensionConfig *ext;
    const char *err;
    for (size_t i = 0; i < e->n_headers_to_add; i++) {
        Envoy__Config__Common__MutationRules__V3__HeaderMutation *m =
            TR_NEW(tx, envoy__config__common__mutation_rules__v3__header_mutation);
        const Sluice__V1__HeaderValueOption *h = e->headers_to_add[i];
        if ((err = h->header ? tr_check_header_name(h->header->key, false) : "required")) {
            tr_error(tx, "%s.headersToAdd[%zu].header.key: %s", p, i, err);
            continue;
        }
        m->action_case = ENVOY__CONFIG__COMMON__MUTATION_RULES__V3__HEADER_MUTATION__ACTION_APPEND;
        m->append = tr_header_option(tx, h);
        TR_PUSH(tx, hm, mutations, m);
    }
    for (size_t i = 0; i < e->n_headers_to_remove; i++) {
        Envoy__Config__Common__MutationRules__V3__HeaderMutation *m =
            TR_NEW(tx, envoy__config__common__mutation_rules__v3__header_mutation);
        if ((err = tr_check_header_name(e->headers_to_remove[i], false))) {
            tr_error(tx, "%s.headersToRemove[%zu]: %s", p, i, err);
            continue;
        }
        m->action_case = ENVOY__CONFIG__COMMON__MUTATION_RULES__V3__HEADER_MUTATION__ACTION_REMOVE;
        m->remove = tr_strdup(tx, e->headers_to_remove[i]);
        TR_PUSH(tx, hm, mutations, m);
    }
    ext = TR_NEW(tx, envoy__config__core__v3__typed_extension_config);
    ext->name = tr_strdup(tx, "http.early_header_mutation.header_mutation");
    ext->typed_config = tr_any(tx, &hm->base);
    TR_PUSH(tx, hcm, early_header_mutation_extensions, ext);
}

/* What settings s (at p) say about clients: their certificate's details,
 * request ids, internal addresses, headers; as Gloo's hcm plugin. */
static void client_settings(tr_ctx *tx, const Sluice__V1__HttpConnectionManagerSettings *s, const char *p,
                            tr_hcm_t *hcm)
{
    const Sluice__V1__HttpConnectionManagerSettings__SetCurrentClientCertDetails *cc =
        s->set_current_client_cert_details;
    const Sluice__V1__HttpConnectionManagerSettings__InternalAddressConfig *ia = s->internal_address_config;
    if (s->request_headers_timeout)
        hcm->request_headers_timeout = tr_dur(tx, s->request_headers_timeout);
    if (s->delayed_close_timeout)
        hcm->delayed_close_timeout = tr_dur(tx, s->delayed_close_timeout);
    if (s->strip_any_host_port && s->strip_any_host_port->value) {
        hcm->strip_port_mode_case =
            ENVOY__EXTENSIONS__FILTERS__NETWORK__HTTP_CONNECTION_MANAGER__V3__HTTP_CONNECTION_MANAGER__STRIP_PORT_MODE_STRIP_ANY_HOST_PORT;
        hcm->strip_any_host_port = 1;
    }
    hcm->forward_client_cert_details =
        (Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpConnectionManager__ForwardClientCertDetails)
            s->forward_client_cert_details;
    if (cc) {
        hcm->set_current_client_cert_details = TR_NEW(
            tx, envoy__extensions__filters__network__http_connection_manager__v3__http_connection_manager__set_current_client_cert_details);
        if (cc->subject)
            hcm->set_current_client_cert_details->subject = tr_bool(tx, cc->subject->value);
        hcm->set_current_client_cert_details->cert = cc->cert && cc->cert->value;
        hcm->set_current_client_cert_details->chain = cc->chain && cc->chain->value;
        hcm->set_current_client_cert_details->dns = cc->dns && cc->dns->value;
        hcm->set_current_client_cert_details->uri = cc->uri && cc->uri->value;
    }
    hcm->preserve_external_request_id = s->preserve_external_request_id && s->preserve_external_request_id->value;
    hcm->append_x_forwarded_port = s->append_x_forwarded_port && s->append_x_forwarded_port->value;
    hcm->path_with_escaped_slashes_action =
        (Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpConnectionManager__PathWithEscapedSlashesAction)
            s->path_with_escaped_slashes_action;
    hcm->codec_type =
        (Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpConnectionManager__CodecType)s->codec_type;
    if (s->uuid_request_id_config) {
        Envoy__Extensions__RequestId__Uuid__V3__UuidRequestIdConfig *u =
            TR_NEW(tx, envoy__extensions__request_id__uuid__v3__uuid_request_id_config);
        if (s->uuid_request_id_config->pack_trace_reason)
            u->pack_trace_reason = tr_bool(tx, s->uuid_request_id_config->pack_trace_reason->value);
        if (s->uuid_request_id_config->use_request_id_for_trace_sampling)
            u->use_request_id_for_trace_sampling =
                tr_bool(tx, s->uuid_request_id_config->use_request_id_for_trace_sampling->value);
        hcm->request_id_extension =
            TR_NEW(tx, envoy__extensions__filters__network__http_connection_manager__v3__request_idextension);
        hcm->request_id_extension->typed_config = tr_any(tx, &u->base);
    }
    if (s->early_header_manipulation)
        early_headers(tx, s->early_header_manipulation, tr_printf(tx, "%s.earlyHeaderManipulation", p), hcm);
    if (ia) {
        hcm->internal_address_config = TR_NEW(
            tx, envoy__extensions__filters__network__http_connection_manager__v3__http_connection_manager__internal_address_config);
        hcm->internal_address_config->unix_sockets = ia->unix_sockets && ia->unix_sockets->value;
        for (size_t i = 0; i < ia->n_cidr_ranges; i++) {
            Envoy__Config__Core__V3__CidrRange *r =
                tr_cidr_range(tx, ia->cidr_ranges[i]->address_prefix, ia->cidr_ranges[i]->prefix_len,
                              tr_printf(tx, "%s.internalAddressConfig.cidrRanges[%zu]", p, i));
            if (r)
                TR_PUSH(tx, hcm->internal_address_config, cidr_ranges, r);
        }
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
        protocol_options(tx, s, p, hcm);
        client_settings(tx, s, p, hcm);
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
    tr_access_logs(tx, lo ? lo->access_logging_service : NULL, "spec.options.accessLoggingService",
                   (void ***)(void *)&hcm->access_log, &hcm->n_access_log);
}

static void tcp_proxy(tr_ctx *tx, const tr_gateway *gw, Envoy__Extensions__Filters__Network__TcpProxy__V3__TcpProxy *tp)
{
    const Sluice__V1__ListenerOptions *lo = gw->gw->spec->options;
    tr_access_logs(tx, lo ? lo->access_logging_service : NULL, "spec.options.accessLoggingService",
                   (void ***)(void *)&tp->access_log, &tp->n_access_log);
}

/* Gloo's socketOptions (listener/plugin.go translateSocketOptions) on l. */
static void socket_options(tr_ctx *tx, const Sluice__V1__ListenerOptions *lo, tr_listener_t *l)
{
    for (size_t i = 0; i < lo->n_socket_options; i++) {
        const Sluice__V1__SocketOption *in = lo->socket_options[i];
        Envoy__Config__Core__V3__SocketOption *o = TR_NEW(tx, envoy__config__core__v3__socket_option);
        o->description = tr_strdup(tx, in->description);
        o->level = in->level;
        o->name = in->name;
        o->state = (Envoy__Config__Core__V3__SocketOption__SocketState)in->state;
        if (in->value_case == SLUICE__V1__SOCKET_OPTION__VALUE_INT_VALUE) {
            o->value_case = ENVOY__CONFIG__CORE__V3__SOCKET_OPTION__VALUE_INT_VALUE;
            o->int_value = in->int_value;
        } else if (in->value_case == SLUICE__V1__SOCKET_OPTION__VALUE_BUF_VALUE) {
            o->value_case = ENVOY__CONFIG__CORE__V3__SOCKET_OPTION__VALUE_BUF_VALUE;
            o->buf_value = in->buf_value;
        } else {
            tr_error(tx, "spec.options.socketOptions[%zu]: intValue or bufValue is required", i);
            continue;
        }
        TR_PUSH(tx, l, socket_options, o);
    }
}

/* Gloo's tcpStats (listener/plugin.go wrapWithTcpStats): every chain's
 * transport socket (raw_buffer when it has none, as Envoy's default)
 * inside Envoy's tcp_stats socket. */
static void tcp_stats(tr_ctx *tx, tr_listener_t *l)
{
    for (size_t i = 0; i < l->n_filter_chains; i++) {
        Envoy__Config__Listener__V3__FilterChain *fc = l->filter_chains[i];
        Envoy__Extensions__TransportSockets__TcpStats__V3__Config *c =
            TR_NEW(tx, envoy__extensions__transport_sockets__tcp_stats__v3__config);
        Envoy__Config__Core__V3__TransportSocket *ts = TR_NEW(tx, envoy__config__core__v3__transport_socket);
        c->transport_socket = fc->transport_socket;
        if (!c->transport_socket) {
            Envoy__Extensions__TransportSockets__RawBuffer__V3__RawBuffer *rb =
                TR_NEW(tx, envoy__extensions__transport_sockets__raw_buffer__v3__raw_buffer);
            c->transport_socket = TR_NEW(tx, envoy__config__core__v3__transport_socket);
            c->transport_socket->name = tr_strdup(tx, "envoy.transport_sockets.raw_buffer");
            c->transport_socket->config_type_case = ENVOY__CONFIG__CORE__V3__TRANSPORT_SOCKET__CONFIG_TYPE_TYPED_CONFIG;
            c->transport_socket->typed_config = tr_any(tx, &rb->base);
        }
        ts->name = tr_strdup(tx, "envoy.transport_sockets.tcp_stats");
        ts->config_type_case = ENVOY__CONFIG__CORE__V3__TRANSPORT_SOCKET__CONFIG_TYPE_TYPED_CONFIG;
        ts->typed_config = tr_any(tx, &c->base);
        fc->transport_socket = ts;
    }
}

static void listener(tr_ctx *tx, const tr_gateway *gw, tr_listener_t *l)
{
    const Sluice__V1__ListenerOptions *lo = gw->gw->spec->options;
    if (lo && lo->per_connection_buffer_limit_bytes)
        l->per_connection_buffer_limit_bytes = tr_u32(tx, lo->per_connection_buffer_limit_bytes->value);
    if (lo) {
        socket_options(tx, lo, l);
        if (lo->connection_balance_config && !lo->connection_balance_config->exact_balance)
            tr_error(tx, "spec.options.connectionBalanceConfig: exactBalance is required (the only balancer)");
        else if (lo->connection_balance_config) {
            l->connection_balance_config =
                TR_NEW(tx, envoy__config__listener__v3__listener__connection_balance_config);
            l->connection_balance_config->balance_type_case =
                ENVOY__CONFIG__LISTENER__V3__LISTENER__CONNECTION_BALANCE_CONFIG__BALANCE_TYPE_EXACT_BALANCE;
            l->connection_balance_config->exact_balance =
                TR_NEW(tx, envoy__config__listener__v3__listener__connection_balance_config__exact_balance);
        }
        tr_access_logs(tx, lo->listener_access_logging_service, "spec.options.listenerAccessLoggingService",
                       (void ***)(void *)&l->access_log, &l->n_access_log);
        if (lo->tcp_stats && lo->tcp_stats->value)
            tcp_stats(tx, l);
    }
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
