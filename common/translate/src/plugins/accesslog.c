/* accesslog: Gloo's accessLoggingService (its als plugin's converter):
 * file sinks (text or JSON format), gRPC access log services
 * (envoy.access_loggers.http_grpc), and each log's filter (status code,
 * duration, health checks, traced, runtime sampling, and/or, header,
 * response flags, gRPC status) as Envoy's AccessLogFilter, on
 * HttpConnectionManagers and TCP hosts' tcp_proxy alike. */
#include "accesslog.h"

#include <string.h>

#include "envoy/extensions/access_loggers/file/v3/file.pb-c.h"
#include "envoy/extensions/access_loggers/grpc/v3/als.pb-c.h"

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

/* Envoy's response flags Gloo accepts in a responseFlagFilter. */
static const char *const response_flags[] = {
    "LH", "UH", "UT", "LR", "UR", "UF", "UC", "UO", "NR",  "DI", "FI", "RL", "UAEX",
    "RLSE", "DC", "URX", "SI", "IH", "DPE", "UMSDR", "RFCF", "NFCF", "DT", "UPE", "NC", "OM", NULL,
};

static bool response_flag(const char *flag)
{
    for (const char *const *f = response_flags; *f; f++)
        if (strcmp(*f, flag) == 0)
            return true;
    return false;
}

/* and/or filters nest at most this deep. */
#define MAX_FILTER_DEPTH 8

/* Envoy's ComparisonFilter of a statusCodeFilter or durationFilter (at p);
 * NULL when unusable (reported). Envoy requires the runtime key. */
static Envoy__Config__Accesslog__V3__ComparisonFilter *comparison(tr_ctx *tx, const Sluice__V1__ComparisonFilter *c,
                                                                  const char *p)
{
    Envoy__Config__Accesslog__V3__ComparisonFilter *o;
    if (!c || !c->value || !c->value->runtime_key[0]) {
        tr_error(tx, "%s.comparison.value.runtimeKey: required (Envoy's RuntimeUInt32 needs a runtime key)", p);
        return NULL;
    }
    o = TR_NEW(tx, envoy__config__accesslog__v3__comparison_filter);
    o->op = c->op == SLUICE__V1__COMPARISON_FILTER__OP__GE   ? ENVOY__CONFIG__ACCESSLOG__V3__COMPARISON_FILTER__OP__GE
            : c->op == SLUICE__V1__COMPARISON_FILTER__OP__LE ? ENVOY__CONFIG__ACCESSLOG__V3__COMPARISON_FILTER__OP__LE
                                                             : ENVOY__CONFIG__ACCESSLOG__V3__COMPARISON_FILTER__OP__EQ;
    o->value = TR_NEW(tx, envoy__config__core__v3__runtime_uint32);
    o->value->default_value = c->value->default_value;
    o->value->runtime_key = tr_strdup(tx, c->value->runtime_key);
    return o;
}

static Envoy__Config__Accesslog__V3__AccessLogFilter *log_filter(tr_ctx *tx, const Sluice__V1__AccessLogFilter *f,
                                                                 const char *p, int depth);

/* The filters of an andFilter or orFilter (at p), at least two; false
 * when unusable (reported). */
static bool sub_filters(tr_ctx *tx, Sluice__V1__AccessLogFilter *const *in, size_t n, const char *p, int depth,
                        Envoy__Config__Accesslog__V3__AccessLogFilter ***out, size_t *n_out)
{
    bool ok = true;
    if (n < 2) {
        tr_error(tx, "%s.filters: at least two are required", p);
        return false;
    }
    if (depth == MAX_FILTER_DEPTH) {
        tr_error(tx, "%s: and/or filters nest more than %d deep", p, MAX_FILTER_DEPTH);
        return false;
    }
    *out = tr_alloc(tx, n * sizeof **out);
    *n_out = n;
    for (size_t i = 0; i < n; i++)
        ok &= ((*out)[i] = log_filter(tx, in[i], tr_printf(tx, "%s.filters[%zu]", p, i), depth + 1)) != NULL;
    return ok;
}

/* Envoy's AccessLogFilter of Gloo's filter f (at p), as Gloo's als
 * converter (translateFilter, validateFilterEnums); NULL when unusable
 * (reported). */
static Envoy__Config__Accesslog__V3__AccessLogFilter *log_filter(tr_ctx *tx, const Sluice__V1__AccessLogFilter *f,
                                                                 const char *p, int depth)
{
    Envoy__Config__Accesslog__V3__AccessLogFilter *o = TR_NEW(tx, envoy__config__accesslog__v3__access_log_filter);
    switch (f->filter_specifier_case) {
    case SLUICE__V1__ACCESS_LOG_FILTER__FILTER_SPECIFIER_STATUS_CODE_FILTER:
        o->filter_specifier_case = ENVOY__CONFIG__ACCESSLOG__V3__ACCESS_LOG_FILTER__FILTER_SPECIFIER_STATUS_CODE_FILTER;
        o->status_code_filter = TR_NEW(tx, envoy__config__accesslog__v3__status_code_filter);
        if (!(o->status_code_filter->comparison =
                  comparison(tx, f->status_code_filter->comparison, tr_printf(tx, "%s.statusCodeFilter", p))))
            return NULL;
        return o;
    case SLUICE__V1__ACCESS_LOG_FILTER__FILTER_SPECIFIER_DURATION_FILTER:
        o->filter_specifier_case = ENVOY__CONFIG__ACCESSLOG__V3__ACCESS_LOG_FILTER__FILTER_SPECIFIER_DURATION_FILTER;
        o->duration_filter = TR_NEW(tx, envoy__config__accesslog__v3__duration_filter);
        if (!(o->duration_filter->comparison =
                  comparison(tx, f->duration_filter->comparison, tr_printf(tx, "%s.durationFilter", p))))
            return NULL;
        return o;
    case SLUICE__V1__ACCESS_LOG_FILTER__FILTER_SPECIFIER_NOT_HEALTH_CHECK_FILTER:
        o->filter_specifier_case =
            ENVOY__CONFIG__ACCESSLOG__V3__ACCESS_LOG_FILTER__FILTER_SPECIFIER_NOT_HEALTH_CHECK_FILTER;
        o->not_health_check_filter = TR_NEW(tx, envoy__config__accesslog__v3__not_health_check_filter);
        return o;
    case SLUICE__V1__ACCESS_LOG_FILTER__FILTER_SPECIFIER_TRACEABLE_FILTER:
        o->filter_specifier_case = ENVOY__CONFIG__ACCESSLOG__V3__ACCESS_LOG_FILTER__FILTER_SPECIFIER_TRACEABLE_FILTER;
        o->traceable_filter = TR_NEW(tx, envoy__config__accesslog__v3__traceable_filter);
        return o;
    case SLUICE__V1__ACCESS_LOG_FILTER__FILTER_SPECIFIER_RUNTIME_FILTER: {
        const Sluice__V1__RuntimeFilter *r = f->runtime_filter;
        if (!r->runtime_key[0]) {
            tr_error(tx, "%s.runtimeFilter.runtimeKey: required", p);
            return NULL;
        }
        o->filter_specifier_case = ENVOY__CONFIG__ACCESSLOG__V3__ACCESS_LOG_FILTER__FILTER_SPECIFIER_RUNTIME_FILTER;
        o->runtime_filter = TR_NEW(tx, envoy__config__accesslog__v3__runtime_filter);
        o->runtime_filter->runtime_key = tr_strdup(tx, r->runtime_key);
        o->runtime_filter->use_independent_randomness = r->use_independent_randomness;
        if (r->percent_sampled) {
            o->runtime_filter->percent_sampled = TR_NEW(tx, envoy__type__v3__fractional_percent);
            o->runtime_filter->percent_sampled->numerator = r->percent_sampled->numerator;
            o->runtime_filter->percent_sampled->denominator =
                (Envoy__Type__V3__FractionalPercent__DenominatorType)r->percent_sampled->denominator;
        }
        return o;
    }
    case SLUICE__V1__ACCESS_LOG_FILTER__FILTER_SPECIFIER_AND_FILTER:
        o->filter_specifier_case = ENVOY__CONFIG__ACCESSLOG__V3__ACCESS_LOG_FILTER__FILTER_SPECIFIER_AND_FILTER;
        o->and_filter = TR_NEW(tx, envoy__config__accesslog__v3__and_filter);
        if (!sub_filters(tx, f->and_filter->filters, f->and_filter->n_filters, tr_printf(tx, "%s.andFilter", p), depth,
                         &o->and_filter->filters, &o->and_filter->n_filters))
            return NULL;
        return o;
    case SLUICE__V1__ACCESS_LOG_FILTER__FILTER_SPECIFIER_OR_FILTER:
        o->filter_specifier_case = ENVOY__CONFIG__ACCESSLOG__V3__ACCESS_LOG_FILTER__FILTER_SPECIFIER_OR_FILTER;
        o->or_filter = TR_NEW(tx, envoy__config__accesslog__v3__or_filter);
        if (!sub_filters(tx, f->or_filter->filters, f->or_filter->n_filters, tr_printf(tx, "%s.orFilter", p), depth,
                         &o->or_filter->filters, &o->or_filter->n_filters))
            return NULL;
        return o;
    case SLUICE__V1__ACCESS_LOG_FILTER__FILTER_SPECIFIER_HEADER_FILTER:
        if (!f->header_filter->header) {
            tr_error(tx, "%s.headerFilter.header: required", p);
            return NULL;
        }
        o->filter_specifier_case = ENVOY__CONFIG__ACCESSLOG__V3__ACCESS_LOG_FILTER__FILTER_SPECIFIER_HEADER_FILTER;
        o->header_filter = TR_NEW(tx, envoy__config__accesslog__v3__header_filter);
        if (!(o->header_filter->header =
                  tr_header_matcher(tx, f->header_filter->header, tr_printf(tx, "%s.headerFilter.header", p))))
            return NULL;
        return o;
    case SLUICE__V1__ACCESS_LOG_FILTER__FILTER_SPECIFIER_RESPONSE_FLAG_FILTER: {
        const Sluice__V1__ResponseFlagFilter *r = f->response_flag_filter;
        for (size_t i = 0; i < r->n_flags; i++)
            if (!response_flag(r->flags[i])) {
                tr_error(tx, "%s.responseFlagFilter.flags[%zu]: '%s' is not one of Envoy's response flags (UH, UF, "
                             "NR, ...)", p, i, r->flags[i]);
                return NULL;
            }
        o->filter_specifier_case =
            ENVOY__CONFIG__ACCESSLOG__V3__ACCESS_LOG_FILTER__FILTER_SPECIFIER_RESPONSE_FLAG_FILTER;
        o->response_flag_filter = TR_NEW(tx, envoy__config__accesslog__v3__response_flag_filter);
        o->response_flag_filter->n_flags = r->n_flags;
        o->response_flag_filter->flags = r->flags;
        return o;
    }
    case SLUICE__V1__ACCESS_LOG_FILTER__FILTER_SPECIFIER_GRPC_STATUS_FILTER: {
        const Sluice__V1__GrpcStatusFilter *g = f->grpc_status_filter;
        o->filter_specifier_case = ENVOY__CONFIG__ACCESSLOG__V3__ACCESS_LOG_FILTER__FILTER_SPECIFIER_GRPC_STATUS_FILTER;
        o->grpc_status_filter = TR_NEW(tx, envoy__config__accesslog__v3__grpc_status_filter);
        o->grpc_status_filter->exclude = g->exclude;
        o->grpc_status_filter->n_statuses = g->n_statuses;
        o->grpc_status_filter->statuses = tr_alloc(tx, g->n_statuses * sizeof *o->grpc_status_filter->statuses);
        for (size_t i = 0; i < g->n_statuses; i++) /* the same numbers: gRPC's codes */
            o->grpc_status_filter->statuses[i] = (Envoy__Config__Accesslog__V3__GrpcStatusFilter__Status)g->statuses[i];
        return o;
    }
    default:
        tr_error(tx, "%s: one of statusCodeFilter, durationFilter, notHealthCheckFilter, traceableFilter, "
                     "runtimeFilter, andFilter, orFilter, headerFilter, responseFlagFilter, grpcStatusFilter is "
                     "required", p);
        return NULL;
    }
}

/* One access log of an HCM or a tcp_proxy (accessLoggingService.accessLog[i]
 * at p); NULL when unusable (reported). Gloo gives TCP the same loggers
 * (als ProcessAccessLogPlugins). */
static Envoy__Config__Accesslog__V3__AccessLog *access_log(tr_ctx *tx, const Sluice__V1__AccessLog *al, const char *p)
{
    Envoy__Config__Accesslog__V3__AccessLog *o = NULL;
    if (al->output_destination_case == SLUICE__V1__ACCESS_LOG__OUTPUT_DESTINATION_FILE_SINK)
        o = file_log(tx, al->file_sink, p);
    else if (al->output_destination_case == SLUICE__V1__ACCESS_LOG__OUTPUT_DESTINATION_GRPC_SERVICE)
        o = grpc_log(tx, al->grpc_service, p);
    else
        tr_error(tx, "%s: fileSink or grpcService is required", p);
    if (o && al->filter && !(o->filter = log_filter(tx, al->filter, tr_printf(tx, "%s.filter", p), 0)))
        return NULL;
    return o;
}

void tr_access_logs(tr_ctx *tx, const Sluice__V1__AccessLoggingService *als, const char *p, void ***v, size_t *n)
{
    for (size_t i = 0; als && i < als->n_access_log; i++) {
        Envoy__Config__Accesslog__V3__AccessLog *o =
            access_log(tx, als->access_log[i], tr_printf(tx, "%s.accessLog[%zu]", p, i));
        if (o)
            tr_push_(tx, v, n, o);
    }
}
