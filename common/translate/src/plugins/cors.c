/* cors: CorsPolicy on virtual hosts and routes -> the cors filter and its
 * per-route / per-virtual-host config. A route's policy replaces the
 * virtual host's, except what corsPolicyMergeSettings merges (Gloo's
 * mergeCors: exposeHeaders UNION); disableForRoute turns it off for the
 * route. */
#include <string.h>

#include "../plugin.h"
#include "envoy/extensions/filters/http/cors/v3/cors.pb-c.h"

#define CORS_FILTER "envoy.filters.http.cors"

static const char *const fields[] = {"RouteOptions.cors", "VirtualHostOptions.cors",
                                     "VirtualHostOptions.cors_policy_merge_settings", NULL};
const sl_tr_plugin sl_tr_plugin_cors;

static char *join(tr_ctx *tx, char **v, size_t n)
{
    char *s = tr_strdup(tx, "");
    for (size_t i = 0; i < n; i++)
        s = tr_printf(tx, "%s%s%s", s, i ? "," : "", v[i]);
    return s;
}

static Envoy__Extensions__Filters__Http__Cors__V3__CorsPolicy *policy(tr_ctx *tx, const Sluice__V1__CorsPolicy *c,
                                                                      const char *path)
{
    Envoy__Extensions__Filters__Http__Cors__V3__CorsPolicy *p = TR_NEW(tx, envoy__extensions__filters__http__cors__v3__cors_policy);
    for (size_t i = 0; i < c->n_allow_origin; i++) {
        Envoy__Type__Matcher__V3__StringMatcher *m = TR_NEW(tx, envoy__type__matcher__v3__string_matcher);
        m->match_pattern_case = ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_EXACT;
        m->exact = tr_strdup(tx, c->allow_origin[i]);
        TR_PUSH(tx, p, allow_origin_string_match, m);
    }
    for (size_t i = 0; i < c->n_allow_origin_regex; i++) {
        Envoy__Type__Matcher__V3__StringMatcher *m = TR_NEW(tx, envoy__type__matcher__v3__string_matcher);
        if (!tr_check_regex(tx, tr_printf(tx, "%s.cors.allowOriginRegex[%zu]", path, i), c->allow_origin_regex[i], NULL))
            continue;
        m->match_pattern_case = ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_SAFE_REGEX;
        m->safe_regex = tr_regex(tx, c->allow_origin_regex[i]);
        TR_PUSH(tx, p, allow_origin_string_match, m);
    }
    if (c->n_allow_methods)
        p->allow_methods = join(tx, c->allow_methods, c->n_allow_methods);
    if (c->n_allow_headers)
        p->allow_headers = join(tx, c->allow_headers, c->n_allow_headers);
    if (c->n_expose_headers)
        p->expose_headers = join(tx, c->expose_headers, c->n_expose_headers);
    if (c->max_age && c->max_age[0]) {
        for (const char *d = c->max_age; *d; d++)
            if (*d < '0' || *d > '9') {
                tr_error(tx, "%s.cors.maxAge: \"%s\" is not a number of seconds", path, c->max_age);
                break;
            }
        p->max_age = tr_strdup(tx, c->max_age);
    }
    if (c->allow_credentials)
        p->allow_credentials = tr_bool(tx, true);
    return p;
}

/* The route's policy c merged with its virtual host's vc as Gloo's
 * mergeCors does: the route's fields, exposeHeaders the union (virtual
 * host's first, no duplicates) when both have some and the strategy is
 * UNION. */
static const Sluice__V1__CorsPolicy *merge(tr_ctx *tx, const Sluice__V1__CorsPolicy *c, const tr_route_in *in)
{
    const Sluice__V1__VirtualHostOptions *vo = /* no vs: a route table validated alone */
        in->vs && in->vs->spec && in->vs->spec->virtual_host ? in->vs->spec->virtual_host->options : NULL;
    const Sluice__V1__CorsPolicy *vc = vo ? vo->cors : NULL;
    Sluice__V1__CorsPolicy *m;
    if (!vc || !vo->cors_policy_merge_settings || !vc->n_expose_headers || !c->n_expose_headers ||
        vo->cors_policy_merge_settings->expose_headers != SLUICE__V1__CORS_POLICY_MERGE_SETTINGS__MERGE_STRATEGY__UNION)
        return c;
    m = tr_alloc(tx, sizeof *m);
    *m = *c;
    m->expose_headers = tr_alloc(tx, (vc->n_expose_headers + c->n_expose_headers) * sizeof *m->expose_headers);
    m->n_expose_headers = 0;
    for (size_t i = 0; i < vc->n_expose_headers + c->n_expose_headers; i++) {
        char *h = i < vc->n_expose_headers ? vc->expose_headers[i] : c->expose_headers[i - vc->n_expose_headers];
        size_t k = 0;
        while (k < m->n_expose_headers && strcmp(m->expose_headers[k], h) != 0)
            k++;
        if (k == m->n_expose_headers)
            m->expose_headers[m->n_expose_headers++] = h;
    }
    return m;
}

static void route(tr_ctx *tx, const tr_route_in *in, tr_route_t *r)
{
    const Sluice__V1__CorsPolicy *c = in->route->options ? in->route->options->cors : NULL;
    if (!c)
        return; /* the virtual host's policy applies */
    c = merge(tx, c, in);
    if (c->disable_for_route) {
        Envoy__Extensions__Filters__Http__Cors__V3__CorsPolicy *p =
            TR_NEW(tx, envoy__extensions__filters__http__cors__v3__cors_policy);
        Envoy__Type__V3__FractionalPercent *zero = TR_NEW(tx, envoy__type__v3__fractional_percent);
        p->filter_enabled = TR_NEW(tx, envoy__config__core__v3__runtime_fractional_percent);
        p->filter_enabled->default_value = zero;
        tr_route_filter_config(tx, r, CORS_FILTER, &p->base);
    } else {
        tr_route_filter_config(tx, r, CORS_FILTER, &policy(tx, c, in->path)->base);
    }
    tr_use(tx, &sl_tr_plugin_cors);
}

static void virtual_host(tr_ctx *tx, const tr_vhost_in *in, tr_vhost_t *vh)
{
    if (!in->options || !in->options->cors)
        return;
    if (in->options->cors->disable_for_route)
        tr_warn(tx, "%s.cors.disableForRoute: has no effect on a virtual host", in->path);
    tr_vhost_filter_config(tx, vh, CORS_FILTER, &policy(tx, in->options->cors, in->path)->base);
    tr_use(tx, &sl_tr_plugin_cors);
}

static void http_filters(tr_ctx *tx, const tr_gateway *gw, tr_hcm_t *hcm, tr_filters *f)
{
    (void)gw;
    (void)hcm;
    if (tr_used(tx, &sl_tr_plugin_cors)) {
        Envoy__Extensions__Filters__Http__Cors__V3__Cors *c = TR_NEW(tx, envoy__extensions__filters__http__cors__v3__cors);
        tr_add_filter(tx, f, TR_STAGE_CORS, CORS_FILTER, &c->base);
    }
}

const sl_tr_plugin sl_tr_plugin_cors = {
    .name = "cors",
    .fields = fields,
    .http_filters = http_filters,
    .virtual_host = virtual_host,
    .route = route,
};
