/* route_basic: timeout, idleTimeout, prefixRewrite, regexRewrite, the host
 * rewrites (hostRewrite, autoHostRewrite, hostRewriteHeader,
 * hostRewritePathRegex; appendXForwardedHost), maxStreamDuration,
 * envoyMetadata, retries (route and virtual host), attempt-count headers;
 * as Gloo's basicroute and metadata plugins. */
#include <stdint.h>
#include <string.h>

#include "../plugin.h"
#include "envoy/extensions/retry/priority/previous_priorities/v3/previous_priorities_config.pb-c.h"

static const char *const fields[] = {
    "RouteOptions.timeout",       "RouteOptions.idle_timeout",   "RouteOptions.prefix_rewrite",
    "RouteOptions.regex_rewrite", "RouteOptions.host_rewrite",   "RouteOptions.auto_host_rewrite",
    "RouteOptions.retries",       "VirtualHostOptions.retries",  "VirtualHostOptions.include_request_attempt_count",
    "VirtualHostOptions.include_attempt_count_in_response",      "RouteOptions.host_rewrite_header",
    "RouteOptions.host_rewrite_path_regex", "RouteOptions.append_x_forwarded_host", "RouteOptions.envoy_metadata",
    "RouteOptions.max_stream_duration", NULL,
};

static bool valid_retry_on(const char *s)
{
    static const char *const known[] = {"5xx", "gateway-error", "reset", "reset-before-request", "connect-failure",
                                        "envoy-ratelimited", "retriable-4xx", "refused-stream", "retriable-status-codes",
                                        "retriable-headers", "http3-post-connect-failure", "cancelled",
                                        "deadline-exceeded", "internal", "resource-exhausted", "unavailable", NULL};
    const char *p = s;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        bool ok = false;
        while (n && *p == ' ') {
            p++;
            n--;
        }
        while (n && p[n - 1] == ' ')
            n--;
        for (int i = 0; known[i]; i++)
            if (strlen(known[i]) == n && strncmp(known[i], p, n) == 0)
                ok = true;
        if (!ok)
            return false;
        p = e ? e + 1 : p + strlen(p);
    }
    return true;
}

static bool has_token(const char *list, const char *tok)
{
    size_t n = strlen(tok);
    for (const char *p = list; (p = strstr(p, tok)) != NULL; p += n) {
        const char *e = p + n;
        bool start = p == list || p[-1] == ',' || p[-1] == ' ';
        if (start && (*e == '\0' || *e == ',' || *e == ' '))
            return true;
    }
    return false;
}

/* Gloo's convertPolicy (basicroute/plugin.go): a base interval is required
 * once retryBackOff is given; a missing max is left to Envoy (10 x base). */
static void retry_back_off(tr_ctx *tx, Envoy__Config__Route__V3__RetryPolicy *p, const Sluice__V1__RetryBackOff *b,
                           const char *path)
{
    int64_t base = tr_dur_to_ms(b->base_interval), max = tr_dur_to_ms(b->max_interval);
    if (!b->base_interval)
        tr_error(tx, "%s.retries.retryBackOff.baseInterval: required%s", path,
                 b->max_interval ? " when maxInterval is set (as Gloo)" : "");
    else if (base <= 0)
        tr_error(tx, "%s.retries.retryBackOff.baseInterval: must be at least 1ms", path);
    if (b->max_interval && max <= 0)
        tr_error(tx, "%s.retries.retryBackOff.maxInterval: must be at least 1ms", path);
    else if (b->base_interval && b->max_interval && max < base)
        tr_error(tx, "%s.retries.retryBackOff.maxInterval: less than baseInterval", path);
    p->retry_back_off = TR_NEW(tx, envoy__config__route__v3__retry_policy__retry_back_off);
    if (b->base_interval)
        p->retry_back_off->base_interval = tr_dur(tx, b->base_interval);
    if (b->max_interval)
        p->retry_back_off->max_interval = tr_dur(tx, b->max_interval);
}

static void rate_limited_back_off(tr_ctx *tx, Envoy__Config__Route__V3__RetryPolicy *p,
                                  const Sluice__V1__RateLimitedRetryBackOff *b, const char *path)
{
    Envoy__Config__Route__V3__RetryPolicy__RateLimitedRetryBackOff *o =
        TR_NEW(tx, envoy__config__route__v3__retry_policy__rate_limited_retry_back_off);
    if (!b->n_reset_headers)
        tr_error(tx, "%s.retries.rateLimitedRetryBackOff.resetHeaders: at least one header is required", path);
    for (size_t i = 0; i < b->n_reset_headers; i++) {
        const Sluice__V1__ResetHeader *h = b->reset_headers[i];
        Envoy__Config__Route__V3__RetryPolicy__ResetHeader *e =
            TR_NEW(tx, envoy__config__route__v3__retry_policy__reset_header);
        const char *why = h->name && h->name[0] ? tr_check_header_name(h->name, false) : "required";
        if (why)
            tr_error(tx, "%s.retries.rateLimitedRetryBackOff.resetHeaders[%zu].name: %s", path, i, why);
        e->name = tr_strdup(tx, h->name);
        e->format = h->format == SLUICE__V1__RESET_HEADER__HEADER_FORMAT__UNIX_TIMESTAMP
                        ? ENVOY__CONFIG__ROUTE__V3__RETRY_POLICY__RESET_HEADER_FORMAT__UNIX_TIMESTAMP
                        : ENVOY__CONFIG__ROUTE__V3__RETRY_POLICY__RESET_HEADER_FORMAT__SECONDS;
        TR_PUSH(tx, o, reset_headers, e);
    }
    if (b->max_interval) {
        if (tr_dur_to_ms(b->max_interval) <= 0)
            tr_error(tx, "%s.retries.rateLimitedRetryBackOff.maxInterval: must be at least 1ms", path);
        o->max_interval = tr_dur(tx, b->max_interval);
    }
    p->rate_limited_retry_back_off = o;
}

/* As Gloo's convertPolicy: retryOn copied as written (empty: Envoy retries
 * only what a request's x-envoy-retry-on asks for), numRetries default 1,
 * retriableStatusCodes copied (Gloo does not add retriable-status-codes to
 * retryOn), previousPriorities as Envoy's previous_priorities extension. */
static Envoy__Config__Route__V3__RetryPolicy *retry_policy(tr_ctx *tx, const Sluice__V1__RetryPolicy *r,
                                                           const char *path)
{
    Envoy__Config__Route__V3__RetryPolicy *p = TR_NEW(tx, envoy__config__route__v3__retry_policy);
    const char *on = r->retry_on ? r->retry_on : "";
    if (!valid_retry_on(on))
        tr_error(tx, "%s.retries.retryOn: \"%s\" is not a list of Envoy retry conditions (5xx, gateway-error, reset, "
                 "connect-failure, retriable-4xx, refused-stream, retriable-status-codes, ...)", path, on);
    else if (!on[0])
        tr_warn(tx, "%s.retries.retryOn: empty, so Envoy retries only requests whose x-envoy-retry-on header asks "
                "(as Gloo); write the conditions, e.g. 5xx", path);
    p->retry_on = tr_strdup(tx, on);
    p->num_retries = tr_u32(tx, r->num_retries ? r->num_retries : 1);
    if (r->per_try_timeout) {
        if (tr_dur_to_ms(r->per_try_timeout) <= 0)
            tr_error(tx, "%s.retries.perTryTimeout: must be positive", path);
        p->per_try_timeout = tr_dur(tx, r->per_try_timeout);
    }
    if (r->retry_back_off)
        retry_back_off(tx, p, r->retry_back_off, path);
    for (size_t i = 0; i < r->n_retriable_status_codes; i++) {
        uint32_t c = r->retriable_status_codes[i];
        if (c < 100 || c > 599)
            tr_error(tx, "%s.retries.retriableStatusCodes[%zu]: %u is not an HTTP status (100-599)", path, i, c);
    }
    if (r->n_retriable_status_codes) {
        p->n_retriable_status_codes = r->n_retriable_status_codes;
        p->retriable_status_codes = tr_alloc(tx, r->n_retriable_status_codes * sizeof(uint32_t));
        memcpy(p->retriable_status_codes, r->retriable_status_codes, r->n_retriable_status_codes * sizeof(uint32_t));
        if (!has_token(on, "retriable-status-codes"))
            tr_warn(tx, "%s.retries.retriableStatusCodes: Envoy uses them only when retryOn includes "
                    "retriable-status-codes (retryOn is \"%s\")", path, on);
    }
    if (r->priority_predicate_case == SLUICE__V1__RETRY_POLICY__PRIORITY_PREDICATE_PREVIOUS_PRIORITIES) {
        const Google__Protobuf__UInt32Value *f =
            r->previous_priorities ? r->previous_priorities->update_frequency : NULL;
        Envoy__Extensions__Retry__Priority__PreviousPriorities__V3__PreviousPrioritiesConfig *pp =
            TR_NEW(tx, envoy__extensions__retry__priority__previous_priorities__v3__previous_priorities_config);
        if (f && (f->value == 0 || f->value > INT32_MAX))
            tr_error(tx, "%s.retries.previousPriorities.updateFrequency: must be 1 to %d", path, INT32_MAX);
        pp->update_frequency = f ? (int32_t)f->value : 1;
        p->retry_priority = TR_NEW(tx, envoy__config__route__v3__retry_policy__retry_priority);
        p->retry_priority->name = tr_strdup(tx, "envoy.retry_priorities.previous_priorities");
        p->retry_priority->config_type_case =
            ENVOY__CONFIG__ROUTE__V3__RETRY_POLICY__RETRY_PRIORITY__CONFIG_TYPE_TYPED_CONFIG;
        p->retry_priority->typed_config = tr_any(tx, &pp->base);
    }
    if (r->rate_limited_retry_back_off)
        rate_limited_back_off(tx, p, r->rate_limited_retry_back_off, path);
    return p;
}

/* Envoy's RegexMatchAndSubstitute of rr (at p): the pattern checked with
 * RE2 and every \\N of the substitution naming one of its groups; NULL
 * when unusable (reported). */
static Envoy__Type__Matcher__V3__RegexMatchAndSubstitute *regex_substitute(tr_ctx *tx,
                                                                           const Sluice__V1__RegexMatchAndSubstitute *rr,
                                                                           const char *p)
{
    Envoy__Type__Matcher__V3__RegexMatchAndSubstitute *o;
    int groups = 0;
    const char *re = rr->pattern ? rr->pattern->regex : NULL;
    if (!re || !re[0]) {
        tr_error(tx, "%s.pattern.regex: required", p);
        return NULL;
    }
    if (!tr_check_regex(tx, tr_printf(tx, "%s.pattern.regex", p), re, &groups))
        return NULL;
    for (const char *s = rr->substitution; s && *s; s++)
        if (s[0] == '\\' && s[1] >= '0' && s[1] <= '9' && s[1] - '0' > groups) {
            tr_error(tx, "%s.substitution: \\%c refers to a group the pattern does not have (%d)", p, s[1], groups);
            return NULL;
        }
    o = TR_NEW(tx, envoy__type__matcher__v3__regex_match_and_substitute);
    o->pattern = tr_regex(tx, re);
    o->substitution = tr_strdup(tx, rr->substitution);
    return o;
}

/* The host rewrite of options o (at p) on route action ra, as Gloo's
 * basicroute applyHostRewrite (appendXForwardedHost only with one). */
static void host_rewrite(tr_ctx *tx, const Sluice__V1__RouteOptions *o, const char *p,
                         Envoy__Config__Route__V3__RouteAction *ra)
{
    const char *err;
    switch (o->host_rewrite_type_case) {
    case SLUICE__V1__ROUTE_OPTIONS__HOST_REWRITE_TYPE_HOST_REWRITE:
        ra->host_rewrite_specifier_case = ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__HOST_REWRITE_SPECIFIER_HOST_REWRITE_LITERAL;
        ra->host_rewrite_literal = tr_strdup(tx, o->host_rewrite);
        break;
    case SLUICE__V1__ROUTE_OPTIONS__HOST_REWRITE_TYPE_AUTO_HOST_REWRITE:
        if (!o->auto_host_rewrite || !o->auto_host_rewrite->value)
            return;
        ra->host_rewrite_specifier_case = ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__HOST_REWRITE_SPECIFIER_AUTO_HOST_REWRITE;
        ra->auto_host_rewrite = tr_bool(tx, true);
        break;
    case SLUICE__V1__ROUTE_OPTIONS__HOST_REWRITE_TYPE_HOST_REWRITE_HEADER:
        if ((err = tr_check_header_name(o->host_rewrite_header->value, false))) {
            tr_error(tx, "%s.hostRewriteHeader: %s", p, err);
            return;
        }
        ra->host_rewrite_specifier_case = ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__HOST_REWRITE_SPECIFIER_HOST_REWRITE_HEADER;
        ra->host_rewrite_header = tr_strdup(tx, o->host_rewrite_header->value);
        break;
    case SLUICE__V1__ROUTE_OPTIONS__HOST_REWRITE_TYPE_HOST_REWRITE_PATH_REGEX:
        if (!(ra->host_rewrite_path_regex =
                  regex_substitute(tx, o->host_rewrite_path_regex, tr_printf(tx, "%s.hostRewritePathRegex", p))))
            return;
        ra->host_rewrite_specifier_case =
            ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__HOST_REWRITE_SPECIFIER_HOST_REWRITE_PATH_REGEX;
        break;
    default:
        return;
    }
    if (o->append_x_forwarded_host)
        ra->append_x_forwarded_host = o->append_x_forwarded_host->value;
}

/* Gloo's envoyMetadata (metadata plugin) on route r: each filter's Struct
 * copied (the route's own arrays: plugins may add keys later). */
static void envoy_metadata(tr_ctx *tx, const Sluice__V1__RouteOptions *o, tr_route_t *r)
{
    for (size_t i = 0; i < o->n_envoy_metadata; i++) {
        const Sluice__V1__RouteOptions__EnvoyMetadataEntry *e = o->envoy_metadata[i];
        for (size_t k = 0; e->value && k < e->value->n_fields; k++)
            tr_metadata_put(tx, &r->metadata, e->key, e->value->fields[k]->key, e->value->fields[k]->value);
    }
}

static void route(tr_ctx *tx, const tr_route_in *in, tr_route_t *r)
{
    const Sluice__V1__RouteOptions *o = in->options;
    Envoy__Config__Route__V3__RouteAction *ra;
    if (!o)
        return;
    envoy_metadata(tx, o, r);
    if (r->action_case != ENVOY__CONFIG__ROUTE__V3__ROUTE__ACTION_ROUTE) {
        o = in->route->options; /* warn about the route's own options, not inherited ones */
        if (o && (o->timeout || o->idle_timeout || o->prefix_rewrite || o->regex_rewrite || o->retries ||
                  o->host_rewrite_type_case || o->max_stream_duration))
            tr_warn(tx, "%s: timeout, retries, maxStreamDuration and rewrites apply only to routes with a routeAction",
                    in->path);
        return;
    }
    ra = r->route;
    if (o->timeout) {
        if (tr_dur_to_ms(o->timeout) < 0)
            tr_error(tx, "%s.timeout: must not be negative", in->path);
        ra->timeout = tr_dur(tx, o->timeout);
    }
    if (o->idle_timeout) {
        if (tr_dur_to_ms(o->idle_timeout) < 0)
            tr_error(tx, "%s.idleTimeout: must not be negative", in->path);
        ra->idle_timeout = tr_dur(tx, o->idle_timeout);
    }
    if (o->prefix_rewrite && o->regex_rewrite)
        tr_error(tx, "%s: use only one of prefixRewrite and regexRewrite", in->path);
    else if (o->prefix_rewrite) {
        if (r->match->path_specifier_case == ENVOY__CONFIG__ROUTE__V3__ROUTE_MATCH__PATH_SPECIFIER_SAFE_REGEX)
            tr_error(tx, "%s.prefixRewrite: cannot be used with a regex matcher (use regexRewrite)", in->path);
        ra->prefix_rewrite = tr_strdup(tx, o->prefix_rewrite->value);
    } else if (o->regex_rewrite) {
        ra->regex_rewrite = regex_substitute(tx, o->regex_rewrite, tr_printf(tx, "%s.regexRewrite", in->path));
    }
    host_rewrite(tx, o, in->path, ra);
    if (o->max_stream_duration) {
        const Sluice__V1__RouteOptions__MaxStreamDuration *m = o->max_stream_duration;
        const Google__Protobuf__Duration *d[] = {m->max_stream_duration, m->grpc_timeout_header_max,
                                                 m->grpc_timeout_header_offset};
        static const char *const names[] = {"maxStreamDuration", "grpcTimeoutHeaderMax", "grpcTimeoutHeaderOffset"};
        for (int i = 0; i < 3; i++)
            if (d[i] && tr_dur_to_ms(d[i]) < 0)
                tr_error(tx, "%s.maxStreamDuration.%s: must not be negative", in->path, names[i]);
        ra->max_stream_duration = TR_NEW(tx, envoy__config__route__v3__route_action__max_stream_duration);
        if (d[0])
            ra->max_stream_duration->max_stream_duration = tr_dur(tx, d[0]);
        if (d[1])
            ra->max_stream_duration->grpc_timeout_header_max = tr_dur(tx, d[1]);
        if (d[2])
            ra->max_stream_duration->grpc_timeout_header_offset = tr_dur(tx, d[2]);
    }
    if (o->retries)
        ra->retry_policy = retry_policy(tx, o->retries, in->path);
}

static void virtual_host(tr_ctx *tx, const tr_vhost_in *in, tr_vhost_t *vh)
{
    const Sluice__V1__VirtualHostOptions *o = in->options;
    if (!o)
        return;
    if (o->retries)
        vh->retry_policy = retry_policy(tx, o->retries, in->path);
    if (o->include_request_attempt_count)
        vh->include_request_attempt_count = o->include_request_attempt_count->value;
    if (o->include_attempt_count_in_response)
        vh->include_attempt_count_in_response = o->include_attempt_count_in_response->value;
}

const sl_tr_plugin sl_tr_plugin_route_basic = {
    .name = "route_basic",
    .fields = fields,
    .virtual_host = virtual_host,
    .route = route,
};
