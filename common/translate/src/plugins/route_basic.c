/* route_basic: timeout, idleTimeout, prefixRewrite, regexRewrite,
 * hostRewrite, autoHostRewrite, retries (route and virtual host),
 * attempt-count headers. */
#include <string.h>

#include "../plugin.h"

static const char *const fields[] = {
    "RouteOptions.timeout",       "RouteOptions.idle_timeout",   "RouteOptions.prefix_rewrite",
    "RouteOptions.regex_rewrite", "RouteOptions.host_rewrite",   "RouteOptions.auto_host_rewrite",
    "RouteOptions.retries",       "VirtualHostOptions.retries",  "VirtualHostOptions.include_request_attempt_count",
    "VirtualHostOptions.include_attempt_count_in_response",      NULL,
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

static Envoy__Config__Route__V3__RetryPolicy *retry_policy(tr_ctx *tx, const Sluice__V1__RetryPolicy *r,
                                                           const char *path)
{
    Envoy__Config__Route__V3__RetryPolicy *p = TR_NEW(tx, envoy__config__route__v3__retry_policy);
    const char *on = r->retry_on && r->retry_on[0] ? r->retry_on : "5xx";
    if (!valid_retry_on(on))
        tr_error(tx, "%s.retries.retryOn: \"%s\" is not a list of Envoy retry conditions (5xx, gateway-error, reset, "
                 "connect-failure, retriable-4xx, refused-stream, retriable-status-codes, ...)", path, on);
    p->retry_on = tr_strdup(tx, on);
    p->num_retries = tr_u32(tx, r->num_retries ? r->num_retries : 1);
    if (r->per_try_timeout) {
        if (tr_dur_to_ms(r->per_try_timeout) <= 0)
            tr_error(tx, "%s.retries.perTryTimeout: must be positive", path);
        p->per_try_timeout = tr_dur(tx, r->per_try_timeout);
    }
    if (r->retry_back_off) {
        int64_t base = r->retry_back_off->base_interval ? tr_dur_to_ms(r->retry_back_off->base_interval) : 25;
        int64_t max = r->retry_back_off->max_interval ? tr_dur_to_ms(r->retry_back_off->max_interval) : base * 10;
        if (base <= 0)
            tr_error(tx, "%s.retries.retryBackOff.baseInterval: must be at least 1ms", path);
        if (max < base)
            tr_error(tx, "%s.retries.retryBackOff.maxInterval: less than baseInterval", path);
        p->retry_back_off = TR_NEW(tx, envoy__config__route__v3__retry_policy__retry_back_off);
        p->retry_back_off->base_interval = tr_dur_ms(tx, base);
        p->retry_back_off->max_interval = tr_dur_ms(tx, max);
    }
    return p;
}

static void route(tr_ctx *tx, const tr_route_in *in, tr_route_t *r)
{
    const Sluice__V1__RouteOptions *o = in->options;
    Envoy__Config__Route__V3__RouteAction *ra;
    if (!o)
        return;
    if (r->action_case != ENVOY__CONFIG__ROUTE__V3__ROUTE__ACTION_ROUTE) {
        o = in->route->options; /* warn about the route's own options, not inherited ones */
        if (o && (o->timeout || o->idle_timeout || o->prefix_rewrite || o->regex_rewrite || o->retries ||
            o->host_rewrite_type_case))
            tr_warn(tx, "%s: timeout, retries and rewrites apply only to routes with a routeAction", in->path);
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
        int groups = 0;
        const char *re = o->regex_rewrite->pattern ? o->regex_rewrite->pattern->regex : NULL;
        if (!re || !re[0]) {
            tr_error(tx, "%s.regexRewrite.pattern.regex: required", in->path);
        } else if (tr_check_regex(tx, tr_printf(tx, "%s.regexRewrite.pattern.regex", in->path), re, &groups)) {
            const char *s = o->regex_rewrite->substitution;
            for (; s && *s; s++)
                if (s[0] == '\\' && s[1] >= '0' && s[1] <= '9' && s[1] - '0' > groups) {
                    tr_error(tx, "%s.regexRewrite.substitution: \\%c refers to a group the pattern does not have (%d)",
                             in->path, s[1], groups);
                    break;
                }
            ra->regex_rewrite = TR_NEW(tx, envoy__type__matcher__v3__regex_match_and_substitute);
            ra->regex_rewrite->pattern = tr_regex(tx, re);
            ra->regex_rewrite->substitution = tr_strdup(tx, o->regex_rewrite->substitution);
        }
    }
    if (o->host_rewrite_type_case == SLUICE__V1__ROUTE_OPTIONS__HOST_REWRITE_TYPE_HOST_REWRITE) {
        ra->host_rewrite_specifier_case = ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__HOST_REWRITE_SPECIFIER_HOST_REWRITE_LITERAL;
        ra->host_rewrite_literal = tr_strdup(tx, o->host_rewrite);
    } else if (o->host_rewrite_type_case == SLUICE__V1__ROUTE_OPTIONS__HOST_REWRITE_TYPE_AUTO_HOST_REWRITE &&
               o->auto_host_rewrite && o->auto_host_rewrite->value) {
        ra->host_rewrite_specifier_case = ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__HOST_REWRITE_SPECIFIER_AUTO_HOST_REWRITE;
        ra->auto_host_rewrite = tr_bool(tx, true);
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
