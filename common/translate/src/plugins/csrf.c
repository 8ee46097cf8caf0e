/* csrf: Cross-Site Request Forgery protection, as Gloo's csrf plugin: the
 * Gateway's httpGateway.options.csrf is the csrf filter's own policy, a
 * virtual host's, route's or weighted destination's csrf its per-filter
 * config. filterEnabled
 * defaults to 0% (Gloo's default: nothing refused unless asked). The
 * filter is added when the Gateway or any of its virtual hosts, routes or
 * weighted destinations sets csrf; Gloo (with Settings removeUnusedFilters false, its default)
 * also adds it, at 0%, to listeners that do not, with the same effect. */
#include "../plugin.h"
#include "envoy/extensions/filters/http/csrf/v3/csrf.pb-c.h"

#define CSRF_FILTER "envoy.filters.http.csrf"

static const char *const fields[] = {"HttpListenerOptions.csrf", "VirtualHostOptions.csrf", "RouteOptions.csrf",
                                     "WeightedDestinationOptions.csrf", NULL};
const sl_tr_plugin sl_tr_plugin_csrf;

static Envoy__Config__Core__V3__RuntimeFractionalPercent *fraction(tr_ctx *tx,
                                                                   const Sluice__V1__RuntimeFractionalPercent *in)
{
    Envoy__Config__Core__V3__RuntimeFractionalPercent *o = TR_NEW(tx, envoy__config__core__v3__runtime_fractional_percent);
    o->default_value = TR_NEW(tx, envoy__type__v3__fractional_percent);
    if (in && in->default_value) {
        o->default_value->numerator = in->default_value->numerator;
        o->default_value->denominator = (Envoy__Type__V3__FractionalPercent__DenominatorType)in->default_value->denominator;
    }
    o->runtime_key = tr_strdup(tx, in ? in->runtime_key : "");
    return o;
}

/* Envoy's StringMatcher of m; NULL (reported) when it matches nothing
 * Envoy accepts. */
static Envoy__Type__Matcher__V3__StringMatcher *origin(tr_ctx *tx, const Sluice__V1__StringMatcher *m, const char *p)
{
    Envoy__Type__Matcher__V3__StringMatcher *o = TR_NEW(tx, envoy__type__matcher__v3__string_matcher);
    o->ignore_case = m->ignore_case;
    switch (m->match_pattern_case) {
    case SLUICE__V1__STRING_MATCHER__MATCH_PATTERN_EXACT:
        o->match_pattern_case = ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_EXACT;
        o->exact = tr_strdup(tx, m->exact);
        return o;
    case SLUICE__V1__STRING_MATCHER__MATCH_PATTERN_PREFIX:
    case SLUICE__V1__STRING_MATCHER__MATCH_PATTERN_SUFFIX: {
        bool prefix = m->match_pattern_case == SLUICE__V1__STRING_MATCHER__MATCH_PATTERN_PREFIX;
        const char *v = prefix ? m->prefix : m->suffix;
        if (!v[0]) {
            tr_error(tx, "%s.%s: must not be empty", p, prefix ? "prefix" : "suffix");
            return NULL;
        }
        o->match_pattern_case = prefix ? ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_PREFIX
                                       : ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_SUFFIX;
        if (prefix)
            o->prefix = tr_strdup(tx, v);
        else
            o->suffix = tr_strdup(tx, v);
        return o;
    }
    case SLUICE__V1__STRING_MATCHER__MATCH_PATTERN_SAFE_REGEX:
        if (!m->safe_regex || !tr_check_regex(tx, tr_printf(tx, "%s.safeRegex.regex", p), m->safe_regex->regex, NULL))
            return NULL;
        o->ignore_case = 0; /* as Gloo: Envoy ignores it for regular expressions */
        o->match_pattern_case = ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_SAFE_REGEX;
        o->safe_regex = tr_regex(tx, m->safe_regex->regex);
        return o;
    default:
        tr_error(tx, "%s: exact, prefix, suffix or safeRegex is required", p);
        return NULL;
    }
}

/* Envoy's CsrfPolicy of c (NULL: Gloo's default policy, 0% enabled) at
 * path p (e.g. "spec.virtualHost.options.csrf"). */
static Envoy__Extensions__Filters__Http__Csrf__V3__CsrfPolicy *policy(tr_ctx *tx, const Sluice__V1__CsrfPolicy *c,
                                                                      const char *p)
{
    Envoy__Extensions__Filters__Http__Csrf__V3__CsrfPolicy *o = TR_NEW(tx, envoy__extensions__filters__http__csrf__v3__csrf_policy);
    o->filter_enabled = fraction(tx, c ? c->filter_enabled : NULL);
    if (c && c->shadow_enabled)
        o->shadow_enabled = fraction(tx, c->shadow_enabled);
    for (size_t i = 0; c && i < c->n_additional_origins; i++) {
        Envoy__Type__Matcher__V3__StringMatcher *m =
            origin(tx, c->additional_origins[i], tr_printf(tx, "%s.additionalOrigins[%zu]", p, i));
        if (m)
            TR_PUSH(tx, o, additional_origins, m);
    }
    return o;
}

static void virtual_host(tr_ctx *tx, const tr_vhost_in *in, tr_vhost_t *vh)
{
    if (!in->options || !in->options->csrf)
        return;
    tr_vhost_filter_config(tx, vh, CSRF_FILTER, &policy(tx, in->options->csrf, tr_printf(tx, "%s.csrf", in->path))->base);
    tr_use(tx, &sl_tr_plugin_csrf);
}

static void route(tr_ctx *tx, const tr_route_in *in, tr_route_t *r)
{
    if (!in->options || !in->options->csrf)
        return;
    tr_route_filter_config(tx, r, CSRF_FILTER, &policy(tx, in->options->csrf, tr_printf(tx, "%s.csrf", in->path))->base);
    tr_use(tx, &sl_tr_plugin_csrf);
}

static void weighted_destination(tr_ctx *tx, const tr_route_in *in, const Sluice__V1__WeightedDestinationOptions *o,
                                 const char *path, Envoy__Config__Route__V3__WeightedCluster__ClusterWeight *cw)
{
    (void)in;
    if (!o || !o->csrf)
        return;
    tr_cluster_weight_filter_config(tx, cw, CSRF_FILTER, &policy(tx, o->csrf, tr_printf(tx, "%s.csrf", path))->base);
    tr_use(tx, &sl_tr_plugin_csrf);
}

static void http_filters(tr_ctx *tx, const tr_gateway *gw, tr_hcm_t *hcm, tr_filters *f)
{
    const Sluice__V1__HttpGateway *hg = gw->gw->spec->http_gateway;
    const Sluice__V1__CsrfPolicy *c = hg && hg->options ? hg->options->csrf : NULL;
    (void)hcm;
    if (c || tr_used(tx, &sl_tr_plugin_csrf))
        tr_add_filter(tx, f, TR_STAGE_ROUTE, CSRF_FILTER, &policy(tx, c, "spec.httpGateway.options.csrf")->base);
}

const sl_tr_plugin sl_tr_plugin_csrf = {
    .name = "csrf",
    .fields = fields,
    .http_filters = http_filters,
    .virtual_host = virtual_host,
    .route = route,
    .weighted_destination = weighted_destination,
};
