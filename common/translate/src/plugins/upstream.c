/* upstream: the options of an Upstream that shape its cluster:
 * circuitBreakers, outlierDetection, healthChecks, loadBalancerConfig,
 * connectionConfig, useHttp2 (and the HTTP/2 windows and stream limit),
 * protocolSelection, ignoreHealthOnHostRemoval, respectDnsTtl,
 * dnsRefreshRate. Settings gloo.circuitBreakers are the default breakers. */
#include <stdint.h>
#include <string.h>

#include "../plugin.h"
#include "envoy/extensions/upstreams/http/v3/http_protocol_options.pb-c.h"
#include "envoy/extensions/health_check/event_sinks/file/v3/file.pb-c.h"
#include "sluice/upstreams.h"

static const char *const fields[] = {
    "UpstreamSpec.circuit_breakers",       "UpstreamSpec.outlier_detection",
    "UpstreamSpec.health_checks",          "UpstreamSpec.load_balancer_config",
    "UpstreamSpec.connection_config",      "UpstreamSpec.use_http2",
    "UpstreamSpec.protocol_selection",     "UpstreamSpec.initial_stream_window_size",
    "UpstreamSpec.initial_connection_window_size", "UpstreamSpec.max_concurrent_streams",
    "UpstreamSpec.ignore_health_on_host_removal",  "UpstreamSpec.respect_dns_ttl",
    "UpstreamSpec.dns_refresh_rate",       "UpstreamSpec.override_stream_error_on_invalid_http_message",
    "UpstreamSpec.preconnect_policy",      NULL,
};

static Google__Protobuf__UInt32Value *u32(tr_ctx *tx, const Google__Protobuf__UInt32Value *v)
{
    return v ? tr_u32(tx, v->value) : NULL;
}

static bool positive(tr_ctx *tx, const Google__Protobuf__Duration *d, const char *what)
{
    if (d && tr_dur_to_ms(d) <= 0) {
        tr_error(tx, "%s: must be at least 1ms", what);
        return false;
    }
    return true;
}

static void circuit_breakers(tr_ctx *tx, const Sluice__V1__CircuitBreakerConfig *cb, tr_cluster_t *c)
{
    Envoy__Config__Cluster__V3__CircuitBreakers__Thresholds *t =
        TR_NEW(tx, envoy__config__cluster__v3__circuit_breakers__thresholds);
    c->circuit_breakers = TR_NEW(tx, envoy__config__cluster__v3__circuit_breakers);
    t->max_connections = u32(tx, cb->max_connections);
    t->max_pending_requests = u32(tx, cb->max_pending_requests);
    t->max_requests = u32(tx, cb->max_requests);
    t->max_retries = u32(tx, cb->max_retries);
    t->track_remaining = cb->track_remaining;
    TR_PUSH(tx, c->circuit_breakers, thresholds, t);
}

static void outlier(tr_ctx *tx, const Sluice__V1__OutlierDetection *o, tr_cluster_t *c)
{
    Envoy__Config__Cluster__V3__OutlierDetection *d = TR_NEW(tx, envoy__config__cluster__v3__outlier_detection);
    const struct {
        const Google__Protobuf__UInt32Value *v;
        const char *name;
    } pct[] = {{o->max_ejection_percent, "maxEjectionPercent"},
               {o->enforcing_consecutive_5xx, "enforcingConsecutive5xx"},
               {o->enforcing_success_rate, "enforcingSuccessRate"},
               {o->enforcing_consecutive_gateway_failure, "enforcingConsecutiveGatewayFailure"},
               {o->enforcing_consecutive_local_origin_failure, "enforcingConsecutiveLocalOriginFailure"},
               {o->enforcing_local_origin_success_rate, "enforcingLocalOriginSuccessRate"}};
    for (size_t i = 0; i < sizeof pct / sizeof *pct; i++)
        if (pct[i].v && pct[i].v->value > 100)
            tr_error(tx, "spec.outlierDetection.%s: %u is above 100 (percent)", pct[i].name, pct[i].v->value);
    positive(tx, o->interval, "spec.outlierDetection.interval");
    positive(tx, o->base_ejection_time, "spec.outlierDetection.baseEjectionTime");
    d->consecutive_5xx = u32(tx, o->consecutive_5xx);
    d->interval = o->interval ? tr_dur(tx, o->interval) : NULL;
    d->base_ejection_time = o->base_ejection_time ? tr_dur(tx, o->base_ejection_time) : NULL;
    d->max_ejection_percent = u32(tx, o->max_ejection_percent);
    d->enforcing_consecutive_5xx = u32(tx, o->enforcing_consecutive_5xx);
    d->enforcing_success_rate = u32(tx, o->enforcing_success_rate);
    d->success_rate_minimum_hosts = u32(tx, o->success_rate_minimum_hosts);
    d->success_rate_request_volume = u32(tx, o->success_rate_request_volume);
    d->success_rate_stdev_factor = u32(tx, o->success_rate_stdev_factor);
    d->consecutive_gateway_failure = u32(tx, o->consecutive_gateway_failure);
    d->enforcing_consecutive_gateway_failure = u32(tx, o->enforcing_consecutive_gateway_failure);
    d->split_external_local_origin_errors = o->split_external_local_origin_errors;
    d->consecutive_local_origin_failure = u32(tx, o->consecutive_local_origin_failure);
    d->enforcing_consecutive_local_origin_failure = u32(tx, o->enforcing_consecutive_local_origin_failure);
    d->enforcing_local_origin_success_rate = u32(tx, o->enforcing_local_origin_success_rate);
    c->outlier_detection = d;
}

static Envoy__Config__Core__V3__HealthCheck__Payload *payload(tr_ctx *tx, const Sluice__V1__HealthCheck__Payload *p,
                                                              const char *path)
{
    Envoy__Config__Core__V3__HealthCheck__Payload *o = TR_NEW(tx, envoy__config__core__v3__health_check__payload);
    if (p->payload_case == SLUICE__V1__HEALTH_CHECK__PAYLOAD__PAYLOAD_TEXT) {
        size_t n = strlen(p->text);
        for (size_t i = 0; i < n; i++)
            if (!strchr("0123456789abcdefABCDEF", p->text[i])) {
                tr_error(tx, "%s.text: \"%s\" is not hex", path, p->text);
                break;
            }
        if (n == 0 || n % 2)
            tr_error(tx, "%s.text: an even, non-zero number of hex digits is required", path);
        o->payload_case = ENVOY__CONFIG__CORE__V3__HEALTH_CHECK__PAYLOAD__PAYLOAD_TEXT;
        o->text = tr_strdup(tx, p->text);
    } else if (p->payload_case == SLUICE__V1__HEALTH_CHECK__PAYLOAD__PAYLOAD_BINARY) {
        o->payload_case = ENVOY__CONFIG__CORE__V3__HEALTH_CHECK__PAYLOAD__PAYLOAD_BINARY;
        o->binary = p->binary;
    } else {
        tr_error(tx, "%s: text or binary is required", path);
    }
    return o;
}

static int method(const char *m)
{
    static const char *const names[] = {"", "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"};
    if (!m || !m[0])
        return 0;
    for (int i = 1; i < 10; i++)
        if (strcmp(names[i], m) == 0)
            return i;
    return -1;
}

static void health_check(tr_ctx *tx, const Sluice__V1__HealthCheck *h, size_t idx, tr_cluster_t *c, bool http2)
{
    Envoy__Config__Core__V3__HealthCheck *o = TR_NEW(tx, envoy__config__core__v3__health_check);
    const char *path = tr_printf(tx, "spec.healthChecks[%zu]", idx);
    if (!h->timeout || !h->interval || tr_dur_to_ms(h->timeout) <= 0 || tr_dur_to_ms(h->interval) <= 0)
        tr_error(tx, "%s: timeout and interval (positive durations) are required", path);
    if (!h->unhealthy_threshold || !h->healthy_threshold)
        tr_error(tx, "%s: unhealthyThreshold and healthyThreshold are required", path);
    o->timeout = tr_dur(tx, h->timeout);
    o->interval = tr_dur(tx, h->interval);
    if (h->initial_jitter)
        o->initial_jitter = tr_dur(tx, h->initial_jitter);
    if (h->interval_jitter)
        o->interval_jitter = tr_dur(tx, h->interval_jitter);
    o->unhealthy_threshold = tr_u32(tx, h->unhealthy_threshold ? h->unhealthy_threshold->value : 0);
    o->healthy_threshold = tr_u32(tx, h->healthy_threshold ? h->healthy_threshold->value : 0);
    if (h->reuse_connection)
        o->reuse_connection = tr_bool(tx, h->reuse_connection->value);
    if (h->no_traffic_interval && positive(tx, h->no_traffic_interval, tr_printf(tx, "%s.noTrafficInterval", path)))
        o->no_traffic_interval = tr_dur(tx, h->no_traffic_interval);
    if (h->unhealthy_interval && positive(tx, h->unhealthy_interval, tr_printf(tx, "%s.unhealthyInterval", path)))
        o->unhealthy_interval = tr_dur(tx, h->unhealthy_interval);
    if (h->unhealthy_edge_interval &&
        positive(tx, h->unhealthy_edge_interval, tr_printf(tx, "%s.unhealthyEdgeInterval", path)))
        o->unhealthy_edge_interval = tr_dur(tx, h->unhealthy_edge_interval);
    if (h->healthy_edge_interval && positive(tx, h->healthy_edge_interval, tr_printf(tx, "%s.healthyEdgeInterval", path)))
        o->healthy_edge_interval = tr_dur(tx, h->healthy_edge_interval);
    o->interval_jitter_percent = h->interval_jitter_percent;
    if (h->event_log_path[0]) { /* Envoy's event_log_path is deprecated for this sink */
        Envoy__Extensions__HealthCheck__EventSinks__File__V3__HealthCheckEventFileSink *fs =
            TR_NEW(tx, envoy__extensions__health_check__event_sinks__file__v3__health_check_event_file_sink);
        Envoy__Config__Core__V3__TypedExtensionConfig *el = TR_NEW(tx, envoy__config__core__v3__typed_extension_config);
        fs->event_log_path = tr_strdup(tx, h->event_log_path);
        el->name = tr_strdup(tx, "envoy.health_check.event_sinks.file");
        el->typed_config = tr_any(tx, &fs->base);
        TR_PUSH(tx, o, event_logger, el);
    }
    o->always_log_health_check_failures = h->always_log_health_check_failures;
    switch (h->health_checker_case) {
    case SLUICE__V1__HEALTH_CHECK__HEALTH_CHECKER_HTTP_HEALTH_CHECK: {
        const Sluice__V1__HealthCheck__HttpHealthCheck *in = h->http_health_check;
        Envoy__Config__Core__V3__HealthCheck__HttpHealthCheck *hc =
            TR_NEW(tx, envoy__config__core__v3__health_check__http_health_check);
        int m = method(in->method);
        if (!in->path[0] || in->path[0] != '/')
            tr_error(tx, "%s.httpHealthCheck.path: a path starting with '/' is required", path);
        if (m < 0 || m == 2 || m == 6)
            tr_error(tx, "%s.httpHealthCheck.method: \"%s\" is not a method for health checks", path, in->method);
        hc->host = tr_strdup(tx, in->host);
        hc->path = tr_strdup(tx, in->path);
        hc->method = m > 0 ? (Envoy__Config__Core__V3__RequestMethod)m : ENVOY__CONFIG__CORE__V3__REQUEST_METHOD__METHOD_UNSPECIFIED;
        if (http2 || in->use_http2)
            hc->codec_client_type = ENVOY__TYPE__V3__CODEC_CLIENT_TYPE__HTTP2;
        if (in->service_name[0]) { /* Gloo: a prefix of the checked cluster's name */
            hc->service_name_matcher = TR_NEW(tx, envoy__type__matcher__v3__string_matcher);
            hc->service_name_matcher->match_pattern_case = ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_PREFIX;
            hc->service_name_matcher->prefix = tr_strdup(tx, in->service_name);
        }
        for (size_t i = 0; i < in->n_request_headers_to_add; i++)
            TR_PUSH(tx, hc, request_headers_to_add, tr_header_option(tx, in->request_headers_to_add[i]));
        for (size_t i = 0; i < in->n_request_headers_to_remove; i++)
            TR_PUSH(tx, hc, request_headers_to_remove, tr_strdup(tx, in->request_headers_to_remove[i]));
        for (size_t i = 0; i < in->n_expected_statuses; i++) {
            Envoy__Type__V3__Int64Range *r = TR_NEW(tx, envoy__type__v3__int64_range);
            r->start = in->expected_statuses[i]->start;
            r->end = in->expected_statuses[i]->end;
            if (r->start < 100 || r->end > 600 || r->end <= r->start)
                tr_error(tx, "%s.httpHealthCheck.expectedStatuses[%zu]: [%lld, %lld) is not a range of HTTP statuses",
                         path, i, (long long)r->start, (long long)r->end);
            TR_PUSH(tx, hc, expected_statuses, r);
        }
        o->health_checker_case = ENVOY__CONFIG__CORE__V3__HEALTH_CHECK__HEALTH_CHECKER_HTTP_HEALTH_CHECK;
        o->http_health_check = hc;
        break;
    }
    case SLUICE__V1__HEALTH_CHECK__HEALTH_CHECKER_TCP_HEALTH_CHECK: {
        const Sluice__V1__HealthCheck__TcpHealthCheck *in = h->tcp_health_check;
        Envoy__Config__Core__V3__HealthCheck__TcpHealthCheck *tc = TR_NEW(tx, envoy__config__core__v3__health_check__tcp_health_check);
        if (in->send)
            tc->send = payload(tx, in->send, tr_printf(tx, "%s.tcpHealthCheck.send", path));
        for (size_t i = 0; i < in->n_receive; i++)
            TR_PUSH(tx, tc, receive, payload(tx, in->receive[i], tr_printf(tx, "%s.tcpHealthCheck.receive[%zu]", path, i)));
        o->health_checker_case = ENVOY__CONFIG__CORE__V3__HEALTH_CHECK__HEALTH_CHECKER_TCP_HEALTH_CHECK;
        o->tcp_health_check = tc;
        break;
    }
    case SLUICE__V1__HEALTH_CHECK__HEALTH_CHECKER_GRPC_HEALTH_CHECK: {
        Envoy__Config__Core__V3__HealthCheck__GrpcHealthCheck *gc =
            TR_NEW(tx, envoy__config__core__v3__health_check__grpc_health_check);
        gc->service_name = tr_strdup(tx, h->grpc_health_check->service_name);
        gc->authority = tr_strdup(tx, h->grpc_health_check->authority);
        for (size_t i = 0; i < h->grpc_health_check->n_initial_metadata; i++)
            TR_PUSH(tx, gc, initial_metadata, tr_header_option(tx, h->grpc_health_check->initial_metadata[i]));
        if (!http2)
            tr_error(tx, "%s.grpcHealthCheck: needs an HTTP/2 upstream (useHttp2: true)", path);
        o->health_checker_case = ENVOY__CONFIG__CORE__V3__HEALTH_CHECK__HEALTH_CHECKER_GRPC_HEALTH_CHECK;
        o->grpc_health_check = gc;
        break;
    }
    default:
        tr_error(tx, "%s: httpHealthCheck, tcpHealthCheck or grpcHealthCheck is required", path);
        return;
    }
    TR_PUSH(tx, c, health_checks, o);
}

static Envoy__Config__Cluster__V3__Cluster__SlowStartConfig *slow_start(tr_ctx *tx,
                                                                       const Sluice__V1__LoadBalancerConfig__SlowStartConfig *s)
{
    Envoy__Config__Cluster__V3__Cluster__SlowStartConfig *o;
    if (!s)
        return NULL;
    o = TR_NEW(tx, envoy__config__cluster__v3__cluster__slow_start_config);
    if (s->slow_start_window)
        o->slow_start_window = tr_dur(tx, s->slow_start_window);
    if (s->aggression) {
        o->aggression = TR_NEW(tx, envoy__config__core__v3__runtime_double);
        o->aggression->default_value = s->aggression->value;
        o->aggression->runtime_key = tr_strdup(tx, "upstream.slow_start.aggression");
    }
    if (s->min_weight_percent) {
        o->min_weight_percent = TR_NEW(tx, envoy__type__v3__percent);
        o->min_weight_percent->value = s->min_weight_percent->value;
    }
    return o;
}

/* closeConnectionsOnHostSetChange and useHostnameForHashing on the common
 * LB config, as Gloo's loadbalancer plugin. */
static void common_close_hostname(tr_ctx *tx, bool close, bool hostname,
                                  Envoy__Config__Cluster__V3__Cluster__CommonLbConfig *common)
{
    if (close)
        common->close_connections_on_host_set_change = 1;
    if (hostname) {
        common->consistent_hashing_lb_config =
            TR_NEW(tx, envoy__config__cluster__v3__cluster__common_lb_config__consistent_hashing_lb_config);
        common->consistent_hashing_lb_config->use_hostname_for_hashing = 1;
    }
}

static void lb_config(tr_ctx *tx, const Sluice__V1__LoadBalancerConfig *l, tr_cluster_t *c)
{
    Envoy__Config__Cluster__V3__Cluster__CommonLbConfig *common = NULL;
    bool close = l->close_connections_on_host_set_change && l->close_connections_on_host_set_change->value;
    bool hostname = l->use_hostname_for_hashing && l->use_hostname_for_hashing->value;
    if (l->healthy_panic_threshold || l->update_merge_window || l->locality_config_case || close || hostname) {
        common = TR_NEW(tx, envoy__config__cluster__v3__cluster__common_lb_config);
        c->common_lb_config = common;
    }
    if (l->healthy_panic_threshold) {
        if (l->healthy_panic_threshold->value < 0 || l->healthy_panic_threshold->value > 100)
            tr_error(tx, "spec.loadBalancerConfig.healthyPanicThreshold: %g is not between 0 and 100",
                     l->healthy_panic_threshold->value);
        common->healthy_panic_threshold = TR_NEW(tx, envoy__type__v3__percent);
        common->healthy_panic_threshold->value = l->healthy_panic_threshold->value;
    }
    if (l->update_merge_window)
        common->update_merge_window = tr_dur(tx, l->update_merge_window);
    if (l->locality_config_case) {
        common->locality_config_specifier_case =
            ENVOY__CONFIG__CLUSTER__V3__CLUSTER__COMMON_LB_CONFIG__LOCALITY_CONFIG_SPECIFIER_LOCALITY_WEIGHTED_LB_CONFIG;
        common->locality_weighted_lb_config =
            TR_NEW(tx, envoy__config__cluster__v3__cluster__common_lb_config__locality_weighted_lb_config);
    }
    common_close_hostname(tx, close, hostname, common);
    switch (l->type_case) {
    case SLUICE__V1__LOAD_BALANCER_CONFIG__TYPE_ROUND_ROBIN:
        c->lb_policy = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_POLICY__ROUND_ROBIN;
        if (l->round_robin->slow_start_config) {
            c->lb_config_case = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_CONFIG_ROUND_ROBIN_LB_CONFIG;
            c->round_robin_lb_config = TR_NEW(tx, envoy__config__cluster__v3__cluster__round_robin_lb_config);
            c->round_robin_lb_config->slow_start_config = slow_start(tx, l->round_robin->slow_start_config);
        }
        break;
    case SLUICE__V1__LOAD_BALANCER_CONFIG__TYPE_LEAST_REQUEST:
        c->lb_policy = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_POLICY__LEAST_REQUEST;
        c->lb_config_case = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_CONFIG_LEAST_REQUEST_LB_CONFIG;
        c->least_request_lb_config = TR_NEW(tx, envoy__config__cluster__v3__cluster__least_request_lb_config);
        if (l->least_request->choice_count) {
            if (l->least_request->choice_count < 2)
                tr_error(tx, "spec.loadBalancerConfig.leastRequest.choiceCount: at least 2");
            c->least_request_lb_config->choice_count = tr_u32(tx, l->least_request->choice_count);
        }
        c->least_request_lb_config->slow_start_config = slow_start(tx, l->least_request->slow_start_config);
        break;
    case SLUICE__V1__LOAD_BALANCER_CONFIG__TYPE_RANDOM:
        c->lb_policy = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_POLICY__RANDOM;
        break;
    case SLUICE__V1__LOAD_BALANCER_CONFIG__TYPE_RING_HASH: {
        const Sluice__V1__LoadBalancerConfig__RingHashConfig *rh = l->ring_hash->ring_hash_config;
        c->lb_policy = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_POLICY__RING_HASH;
        if (rh) {
            Envoy__Config__Cluster__V3__Cluster__RingHashLbConfig *o =
                TR_NEW(tx, envoy__config__cluster__v3__cluster__ring_hash_lb_config);
            if (rh->maximum_ring_size > 8388608 || (rh->maximum_ring_size && rh->minimum_ring_size > rh->maximum_ring_size))
                tr_error(tx, "spec.loadBalancerConfig.ringHash.ringHashConfig: ring sizes must satisfy minimum <= maximum <= 8M");
            if (rh->minimum_ring_size) {
                o->minimum_ring_size = TR_NEW(tx, google__protobuf__uint64_value);
                o->minimum_ring_size->value = rh->minimum_ring_size;
            }
            if (rh->maximum_ring_size) {
                o->maximum_ring_size = TR_NEW(tx, google__protobuf__uint64_value);
                o->maximum_ring_size->value = rh->maximum_ring_size;
            }
            c->lb_config_case = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_CONFIG_RING_HASH_LB_CONFIG;
            c->ring_hash_lb_config = o;
        }
        break;
    }
    case SLUICE__V1__LOAD_BALANCER_CONFIG__TYPE_MAGLEV:
        c->lb_policy = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_POLICY__MAGLEV;
        break;
    default:
        break;
    }
}


/* Envoy takes TCP keepalive times in whole seconds; Gloo's upstreamconn
 * plugin (roundToSecond) rounds up: math.Round(seconds + 0.4999), so
 * 1.2s is 2, 0.5s is 1, 1s is 1 and anything under 0.1ms is 0. */
static Google__Protobuf__UInt32Value *keepalive_seconds(tr_ctx *tx, const Google__Protobuf__Duration *d,
                                                       const char *field)
{
    int64_t ns = d->seconds * 1000000000 + d->nanos, s;
    if (d->seconds < 0 || d->nanos < 0 || d->seconds > UINT32_MAX - 1) {
        tr_error(tx, "spec.connectionConfig.tcpKeepalive.%s: must be 0 to %us", field, UINT32_MAX - 1);
        return tr_u32(tx, 0);
    }
    s = (ns + 999900000) / 1000000000; /* floor(x + 0.4999 + 0.5) = Go's math.Round(x + 0.4999) */
    return tr_u32(tx, (uint32_t)s);
}
/* Gloo's preconnectPolicy (translator/clusters.go getPreconnectPolicy):
 * each ratio, when set, between 1.0 and 3.0 as Envoy requires. */
static void preconnect(tr_ctx *tx, const Sluice__V1__PreconnectPolicy *p, tr_cluster_t *c)
{
    const Google__Protobuf__DoubleValue *r[] = {p->per_upstream_preconnect_ratio, p->predictive_preconnect_ratio};
    static const char *const names[] = {"perUpstreamPreconnectRatio", "predictivePreconnectRatio"};
    c->preconnect_policy = TR_NEW(tx, envoy__config__cluster__v3__cluster__preconnect_policy);
    for (int i = 0; i < 2; i++) {
        Google__Protobuf__DoubleValue *v;
        if (!r[i])
            continue;
        if (!(r[i]->value >= 1.0 && r[i]->value <= 3.0))
            tr_error(tx, "spec.preconnectPolicy.%s: %g is not between 1.0 and 3.0", names[i], r[i]->value);
        v = TR_NEW(tx, google__protobuf__double_value);
        v->value = r[i]->value;
        *(i ? &c->preconnect_policy->predictive_preconnect_ratio : &c->preconnect_policy->per_upstream_preconnect_ratio) =
            v;
    }
}

static void cluster(tr_ctx *tx, const tr_upstream_in *in, tr_cluster_t *c)
{
    const Sluice__V1__UpstreamSpec *s = in->up->spec;
    const Sluice__V1__SettingsSpec *st = tr_settings(tx);
    const Sluice__V1__ConnectionConfig *cc = s->connection_config;
    const Sluice__V1__ServiceSpec *ss = sl_upstream_service_spec(in->up);
    bool http2 = (s->use_http2 && s->use_http2->value) ||
                 (ss && (ss->plugin_type_case == SLUICE__V1__SERVICE_SPEC__PLUGIN_TYPE_GRPC ||
                         ss->plugin_type_case == SLUICE__V1__SERVICE_SPEC__PLUGIN_TYPE_GRPC_JSON_TRANSCODER));
    Envoy__Config__Core__V3__HttpProtocolOptions *common = NULL;

    if (s->circuit_breakers)
        circuit_breakers(tx, s->circuit_breakers, c);
    else if (st->gloo && st->gloo->circuit_breakers)
        circuit_breakers(tx, st->gloo->circuit_breakers, c);
    if (s->outlier_detection)
        outlier(tx, s->outlier_detection, c);
    for (size_t i = 0; i < s->n_health_checks; i++) {
        health_check(tx, s->health_checks[i], i, c, http2);
    }
    if (s->load_balancer_config)
        lb_config(tx, s->load_balancer_config, c);
    if (s->ignore_health_on_host_removal)
        c->ignore_health_on_host_removal = s->ignore_health_on_host_removal->value;
    if (s->respect_dns_ttl)
        c->respect_dns_ttl = s->respect_dns_ttl->value;
    if (s->preconnect_policy)
        preconnect(tx, s->preconnect_policy, c);
    if (s->dns_refresh_rate) {
        if (tr_dur_to_ms(s->dns_refresh_rate) < 1)
            tr_error(tx, "spec.dnsRefreshRate: must be at least 1ms");
        c->dns_refresh_rate = tr_dur(tx, s->dns_refresh_rate);
    }
    if (cc) {
        if (cc->connect_timeout) {
            if (tr_dur_to_ms(cc->connect_timeout) <= 0)
                tr_error(tx, "spec.connectionConfig.connectTimeout: must be positive");
            else
                c->connect_timeout = tr_dur(tx, cc->connect_timeout);
        }
        if (cc->per_connection_buffer_limit_bytes)
            c->per_connection_buffer_limit_bytes = tr_u32(tx, cc->per_connection_buffer_limit_bytes->value);
        if (cc->tcp_keepalive) {
            Envoy__Config__Core__V3__TcpKeepalive *k = TR_NEW(tx, envoy__config__core__v3__tcp_keepalive);
            if (cc->tcp_keepalive->keepalive_probes)
                k->keepalive_probes = tr_u32(tx, cc->tcp_keepalive->keepalive_probes);
            if (cc->tcp_keepalive->keepalive_time)
                k->keepalive_time = keepalive_seconds(tx, cc->tcp_keepalive->keepalive_time, "keepaliveTime");
            if (cc->tcp_keepalive->keepalive_interval)
                k->keepalive_interval =
                    keepalive_seconds(tx, cc->tcp_keepalive->keepalive_interval, "keepaliveInterval");
            c->upstream_connection_options = TR_NEW(tx, envoy__config__cluster__v3__upstream_connection_options);
            c->upstream_connection_options->tcp_keepalive = k;
        }
        if (cc->max_requests_per_connection || cc->common_http_protocol_options) {
            common = TR_NEW(tx, envoy__config__core__v3__http_protocol_options);
            if (cc->max_requests_per_connection)
                common->max_requests_per_connection = tr_u32(tx, cc->max_requests_per_connection);
            if (cc->common_http_protocol_options) {
                const Sluice__V1__ConnectionConfig__HttpProtocolOptions *h = cc->common_http_protocol_options;
                if (h->idle_timeout)
                    common->idle_timeout = tr_dur(tx, h->idle_timeout);
                if (h->max_headers_count)
                    common->max_headers_count = tr_u32(tx, h->max_headers_count);
                if (h->max_stream_duration)
                    common->max_stream_duration = tr_dur(tx, h->max_stream_duration);
                common->headers_with_underscores_action =
                    (Envoy__Config__Core__V3__HttpProtocolOptions__HeadersWithUnderscoresAction)h->headers_with_underscores_action;
            }
        }
    }
    if (!http2 && (s->initial_stream_window_size || s->initial_connection_window_size || s->max_concurrent_streams))
        tr_warn(tx, "spec: initialStreamWindowSize, initialConnectionWindowSize and maxConcurrentStreams apply only "
                    "with useHttp2");
    if (http2 || common || s->protocol_selection == SLUICE__V1__UPSTREAM_SPEC__CLUSTER_PROTOCOL_SELECTION__USE_DOWNSTREAM_PROTOCOL) {
        Envoy__Extensions__Upstreams__Http__V3__HttpProtocolOptions *po =
            TR_NEW(tx, envoy__extensions__upstreams__http__v3__http_protocol_options);
        Envoy__Config__Cluster__V3__Cluster__TypedExtensionProtocolOptionsEntry *e =
            TR_NEW(tx, envoy__config__cluster__v3__cluster__typed_extension_protocol_options_entry);
        po->common_http_protocol_options = common;
        if (s->protocol_selection == SLUICE__V1__UPSTREAM_SPEC__CLUSTER_PROTOCOL_SELECTION__USE_DOWNSTREAM_PROTOCOL) {
            po->upstream_protocol_options_case =
                ENVOY__EXTENSIONS__UPSTREAMS__HTTP__V3__HTTP_PROTOCOL_OPTIONS__UPSTREAM_PROTOCOL_OPTIONS_USE_DOWNSTREAM_PROTOCOL_CONFIG;
            po->use_downstream_protocol_config =
                TR_NEW(tx, envoy__extensions__upstreams__http__v3__http_protocol_options__use_downstream_http_config);
        } else {
            po->upstream_protocol_options_case =
                ENVOY__EXTENSIONS__UPSTREAMS__HTTP__V3__HTTP_PROTOCOL_OPTIONS__UPSTREAM_PROTOCOL_OPTIONS_EXPLICIT_HTTP_CONFIG;
            po->explicit_http_config =
                TR_NEW(tx, envoy__extensions__upstreams__http__v3__http_protocol_options__explicit_http_config);
            if (http2) {
                Envoy__Config__Core__V3__Http2ProtocolOptions *h2 =
                    tr_http2_options(tx, s->initial_stream_window_size, s->initial_connection_window_size,
                                     s->max_concurrent_streams, "spec");
                if (s->override_stream_error_on_invalid_http_message)
                    h2->override_stream_error_on_invalid_http_message =
                        tr_bool(tx, s->override_stream_error_on_invalid_http_message->value);
                po->explicit_http_config->protocol_config_case =
                    ENVOY__EXTENSIONS__UPSTREAMS__HTTP__V3__HTTP_PROTOCOL_OPTIONS__EXPLICIT_HTTP_CONFIG__PROTOCOL_CONFIG_HTTP2_PROTOCOL_OPTIONS;
                po->explicit_http_config->http2_protocol_options = h2;
            } else {
                po->explicit_http_config->protocol_config_case =
                    ENVOY__EXTENSIONS__UPSTREAMS__HTTP__V3__HTTP_PROTOCOL_OPTIONS__EXPLICIT_HTTP_CONFIG__PROTOCOL_CONFIG_HTTP_PROTOCOL_OPTIONS;
                po->explicit_http_config->http_protocol_options = TR_NEW(tx, envoy__config__core__v3__http1_protocol_options);
            }
        }
        e->key = tr_strdup(tx, "envoy.extensions.upstreams.http.v3.HttpProtocolOptions");
        e->value = tr_any(tx, &po->base);
        TR_PUSH(tx, c, typed_extension_protocol_options, e);
    }
}

const sl_tr_plugin sl_tr_plugin_upstream = {
    .name = "upstream",
    .fields = fields,
    .cluster = cluster,
};
