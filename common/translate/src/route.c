/* route.c - Sluice routes -> Envoy routes: matchers, route, redirect and
 * direct-response actions, destinations (single, weighted, upstream groups). */
#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "translate_internal.h"

#define INVALID_ROUTE_BODY \
    "Gloo Gateway has invalid configuration. Administrators should run `glooctl check` to find and fix config errors."

static Envoy__Type__Matcher__V3__StringMatcher *string_matcher(tr_ctx *tx, const char *value, bool regex)
{
    Envoy__Type__Matcher__V3__StringMatcher *sm = TR_NEW(tx, envoy__type__matcher__v3__string_matcher);
    if (regex) {
        sm->match_pattern_case = ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_SAFE_REGEX;
        sm->safe_regex = tr_regex(tx, value);
    } else {
        sm->match_pattern_case = ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_EXACT;
        sm->exact = tr_strdup(tx, value);
    }
    return sm;
}

Envoy__Config__Route__V3__HeaderMatcher *tr_header_matcher(tr_ctx *tx, const Sluice__V1__EnvoyHeaderMatcher *h,
                                                           const char *path)
{
    Envoy__Config__Route__V3__HeaderMatcher *hm = TR_NEW(tx, envoy__config__route__v3__header_matcher);
    Envoy__Type__Matcher__V3__StringMatcher *sm = NULL;
    const char *err = tr_check_header_name(h->name, true);
    if (err) {
        tr_error(tx, "%s.name: %s", path, err);
        return NULL;
    }
    hm->name = tr_strdup(tx, h->name);
    hm->invert_match = h->invert_match;
    switch (h->header_match_specifier_case) {
    case SLUICE__V1__ENVOY_HEADER_MATCHER__HEADER_MATCH_SPECIFIER_EXACT_MATCH:
        sm = string_matcher(tx, h->exact_match, false);
        break;
    case SLUICE__V1__ENVOY_HEADER_MATCHER__HEADER_MATCH_SPECIFIER_SAFE_REGEX_MATCH:
        if (!tr_check_regex(tx, tr_printf(tx, "%s.safeRegexMatch.regex", path), h->safe_regex_match->regex, NULL))
            return NULL;
        sm = string_matcher(tx, h->safe_regex_match->regex, true);
        break;
    case SLUICE__V1__ENVOY_HEADER_MATCHER__HEADER_MATCH_SPECIFIER_PREFIX_MATCH:
    case SLUICE__V1__ENVOY_HEADER_MATCHER__HEADER_MATCH_SPECIFIER_SUFFIX_MATCH: {
        bool prefix = h->header_match_specifier_case ==
                      SLUICE__V1__ENVOY_HEADER_MATCHER__HEADER_MATCH_SPECIFIER_PREFIX_MATCH;
        const char *v = prefix ? h->prefix_match : h->suffix_match;
        if (!v[0]) {
            tr_error(tx, "%s.%s: must not be empty", path, prefix ? "prefixMatch" : "suffixMatch");
            return NULL;
        }
        sm = TR_NEW(tx, envoy__type__matcher__v3__string_matcher);
        sm->match_pattern_case = prefix ? ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_PREFIX
                                        : ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_SUFFIX;
        *(prefix ? &sm->prefix : &sm->suffix) = tr_strdup(tx, v);
        break;
    }
    case SLUICE__V1__ENVOY_HEADER_MATCHER__HEADER_MATCH_SPECIFIER_RANGE_MATCH:
        if (h->range_match->end <= h->range_match->start) {
            tr_error(tx, "%s.rangeMatch: end must be greater than start (the range is [start, end))", path);
            return NULL;
        }
        hm->header_match_specifier_case = ENVOY__CONFIG__ROUTE__V3__HEADER_MATCHER__HEADER_MATCH_SPECIFIER_RANGE_MATCH;
        hm->range_match = TR_NEW(tx, envoy__type__v3__int64_range);
        hm->range_match->start = h->range_match->start;
        hm->range_match->end = h->range_match->end;
        return hm;
    default: /* presentMatch (false: the header is absent), or none: present */
        hm->header_match_specifier_case = ENVOY__CONFIG__ROUTE__V3__HEADER_MATCHER__HEADER_MATCH_SPECIFIER_PRESENT_MATCH;
        hm->present_match = h->header_match_specifier_case ==
                                    SLUICE__V1__ENVOY_HEADER_MATCHER__HEADER_MATCH_SPECIFIER_PRESENT_MATCH
                                ? h->present_match
                                : 1;
        return hm;
    }
    hm->header_match_specifier_case = ENVOY__CONFIG__ROUTE__V3__HEADER_MATCHER__HEADER_MATCH_SPECIFIER_STRING_MATCH;
    hm->string_match = sm;
    return hm;
}

static void add_header_matchers(tr_ctx *tx, Envoy__Config__Route__V3__RouteMatch *rm, const Sluice__V1__Matcher *m,
                                const char *path)
{
    for (size_t i = 0; i < m->n_headers; i++) {
        const Sluice__V1__HeaderMatcher *h = m->headers[i];
        Envoy__Config__Route__V3__HeaderMatcher *hm = TR_NEW(tx, envoy__config__route__v3__header_matcher);
        const char *err = tr_check_header_name(h->name, true);
        if (err) {
            tr_error(tx, "%s.headers[%zu].name: %s", path, i, err);
            continue;
        }
        hm->name = tr_strdup(tx, h->name);
        hm->invert_match = h->invert_match;
        if (!h->value || !h->value[0]) {
            if (h->regex)
                tr_error(tx, "%s.headers[%zu]: regex needs a value", path, i);
            hm->header_match_specifier_case = ENVOY__CONFIG__ROUTE__V3__HEADER_MATCHER__HEADER_MATCH_SPECIFIER_PRESENT_MATCH;
            hm->present_match = 1;
        } else {
            if (h->regex &&
                !tr_check_regex(tx, tr_printf(tx, "%s.headers[%zu].value", path, i), h->value, NULL))
                continue;
            hm->header_match_specifier_case = ENVOY__CONFIG__ROUTE__V3__HEADER_MATCHER__HEADER_MATCH_SPECIFIER_STRING_MATCH;
            hm->string_match = string_matcher(tx, h->value, h->regex);
        }
        TR_PUSH(tx, rm, headers, hm);
    }
    for (size_t i = 0; i < m->n_query_parameters; i++) {
        const Sluice__V1__QueryParameterMatcher *q = m->query_parameters[i];
        Envoy__Config__Route__V3__QueryParameterMatcher *qm = TR_NEW(tx, envoy__config__route__v3__query_parameter_matcher);
        if (!q->name || !q->name[0]) {
            tr_error(tx, "%s.queryParameters[%zu].name: required", path, i);
            continue;
        }
        qm->name = tr_strdup(tx, q->name);
        if (!q->value || !q->value[0]) {
            qm->query_parameter_match_specifier_case =
                ENVOY__CONFIG__ROUTE__V3__QUERY_PARAMETER_MATCHER__QUERY_PARAMETER_MATCH_SPECIFIER_PRESENT_MATCH;
            qm->present_match = 1;
        } else {
            if (q->regex &&
                !tr_check_regex(tx, tr_printf(tx, "%s.queryParameters[%zu].value", path, i), q->value, NULL))
                continue;
            qm->query_parameter_match_specifier_case =
                ENVOY__CONFIG__ROUTE__V3__QUERY_PARAMETER_MATCHER__QUERY_PARAMETER_MATCH_SPECIFIER_STRING_MATCH;
            qm->string_match = string_matcher(tx, q->value, q->regex);
        }
        TR_PUSH(tx, rm, query_parameters, qm);
    }
    if (m->n_methods) {
        Envoy__Config__Route__V3__HeaderMatcher *hm = TR_NEW(tx, envoy__config__route__v3__header_matcher);
        char *re = tr_strdup(tx, "");
        for (size_t i = 0; i < m->n_methods; i++) {
            const char *meth = m->methods[i];
            for (const char *c = meth; *c; c++)
                if (!((*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') || *c == '-' || *c == '_')) {
                    tr_error(tx, "%s.methods[%zu]: \"%s\" is not an HTTP method", path, i, meth);
                    return;
                }
            if (!meth[0]) {
                tr_error(tx, "%s.methods[%zu]: empty", path, i);
                return;
            }
            re = tr_printf(tx, "%s%s%s", re, i ? "|" : "", meth);
        }
        hm->name = tr_strdup(tx, ":method");
        hm->header_match_specifier_case = ENVOY__CONFIG__ROUTE__V3__HEADER_MATCHER__HEADER_MATCH_SPECIFIER_STRING_MATCH;
        hm->string_match = string_matcher(tx, m->n_methods == 1 ? m->methods[0] : re, m->n_methods > 1);
        TR_PUSH(tx, rm, headers, hm);
    }
}

void tr_invalid_route(tr_ctx *tx, tr_route_t *r)
{
    const Sluice__V1__GlooOptions__InvalidConfigPolicy *p =
        tx->settings->gloo ? tx->settings->gloo->invalid_config_policy : NULL;
    Envoy__Config__Route__V3__DirectResponseAction *d = TR_NEW(tx, envoy__config__route__v3__direct_response_action);
    if (!p || !p->replace_invalid_routes) {
        /* Gloo leaves the route to the missing cluster, which Envoy answers
         * 503 without a body (cluster_not_found_response_code): the same
         * answer, without naming a cluster the proxy does not have */
        d->status = 503;
    } else {
        d->status = p->invalid_route_response_code ? p->invalid_route_response_code : 404;
        d->body = tr_inline_string(tx, p->invalid_route_response_body && p->invalid_route_response_body[0]
                                           ? p->invalid_route_response_body
                                           : INVALID_ROUTE_BODY);
    }
    r->action_case = ENVOY__CONFIG__ROUTE__V3__ROUTE__ACTION_DIRECT_RESPONSE;
    r->direct_response = d;
}

/* Settings gloo.invalidConfigPolicy.replaceInvalidRoutes. */
static bool replace_invalid_routes(tr_ctx *tx)
{
    const Sluice__V1__GlooOptions *g = tx->settings->gloo;
    return g && g->invalid_config_policy && g->invalid_config_policy->replace_invalid_routes;
}

/* r's match and name, answering the invalid-route response. */
static tr_route_t *replaced_route(tr_ctx *tx, const tr_route_t *r)
{
    tr_route_t *n = TR_NEW(tx, envoy__config__route__v3__route);
    n->match = r->match;
    n->name = r->name;
    tr_invalid_route(tx, n);
    return n;
}

/* The namespace a destination's upstream reference names (def_ns when
 * it names none). */
static const char *dest_ns(const Sluice__V1__Destination *d, const char *def_ns)
{
    return d->upstream->namespace_ && d->upstream->namespace_[0] ? d->upstream->namespace_ : def_ns;
}

/* Resolves a destination's upstream; NULL when missing (a route's
 * InvalidDestinationWarning when warn; *named whether d names an upstream
 * at all, may be NULL). */
/* d names an upstream (else it is an error, and no cluster is made of it). */
static bool dest_named(const Sluice__V1__Destination *d)
{
    return d && d->destination_type_case == SLUICE__V1__DESTINATION__DESTINATION_TYPE_UPSTREAM && d->upstream &&
           d->upstream->name && d->upstream->name[0];
}

static const Sluice__V1__Upstream *dest_upstream_(tr_ctx *tx, const Sluice__V1__Destination *d, const char *def_ns,
                                                  const char *path, bool warn, bool *named)
{
    const Sluice__V1__Upstream *up;
    if (!dest_named(d)) {
        tr_error(tx, "%s: a destination needs upstream.name", path);
        return NULL;
    }
    if (named)
        *named = true;
    up = tr_find_upstream(tx, d->upstream, def_ns);
    if (!up && warn)
        tr_warn(tx, "Route Warning: InvalidDestinationWarning. Reason: Upstream %s.%s not found", dest_ns(d, def_ns),
                d->upstream->name);
    return up;
}

static const Sluice__V1__Upstream *dest_upstream(tr_ctx *tx, const Sluice__V1__Destination *d, const char *def_ns,
                                                 const char *path)
{
    return dest_upstream_(tx, d, def_ns, path, true, NULL);
}

/* The metadata_match of a destination's subset (NULL without one): the
 * endpoints whose labels have these values, among the upstream's
 * subsetSpec selectors. */
static Envoy__Config__Core__V3__Metadata *subset_match(tr_ctx *tx, const Sluice__V1__Destination *d,
                                                       const Sluice__V1__Upstream *up, const char *path)
{
    const Sluice__V1__Subset *sub = d ? d->subset : NULL;
    const Sluice__V1__SubsetSpec *spec = up && up->spec ? up->spec->subset_spec : NULL;
    const char **keys, **vals;
    bool matches = false;
    if (!sub)
        return NULL;
    if (!sub->n_values) {
        tr_error(tx, "%s.subset.values: at least one label is required", path);
        return NULL;
    }
    keys = tr_alloc(tx, sub->n_values * sizeof *keys);
    vals = tr_alloc(tx, sub->n_values * sizeof *vals);
    for (size_t i = 0; i < sub->n_values; i++) {
        keys[i] = sub->values[i]->key;
        vals[i] = sub->values[i]->value;
    }
    if (!spec) {
        tr_warn(tx, "%s.subset: upstream %s.%s has no subsetSpec; Envoy sends to any endpoint", path,
                tr_md_ns(up->metadata), up->metadata->name);
    } else {
        /* a selector with exactly these keys */
        const char **sorted = tr_alloc(tx, sub->n_values * sizeof *sorted);
        memcpy(sorted, keys, sub->n_values * sizeof *sorted);
        qsort(sorted, sub->n_values, sizeof *sorted, tr_cmp_strp);
        for (size_t i = 0; i < spec->n_selectors && !matches; i++) {
            const Sluice__V1__SubsetSpec__Selector *sel = spec->selectors[i];
            size_t found = 0;
            if (sel->n_keys != sub->n_values)
                continue;
            for (size_t k = 0; k < sel->n_keys; k++)
                found += bsearch(&sel->keys[k], sorted, sub->n_values, sizeof *sorted, tr_cmp_strp) != NULL;
            matches = found == sel->n_keys;
        }
        if (!matches)
            tr_warn(tx, "%s.subset.values: no selector of upstream %s.%s subsetSpec has exactly these keys; Envoy "
                        "sends to any endpoint", path, tr_md_ns(up->metadata), up->metadata->name);
    }
    return tr_lb_metadata(tx, sub->n_values, keys, vals);
}

Envoy__Config__Route__V3__WeightedCluster *tr_weighted(tr_ctx *tx, Sluice__V1__WeightedDestination *const *ds,
                                                          size_t n, const char *def_ns, const char *path, bool group,
                                                          bool *missing)
{
    Envoy__Config__Route__V3__WeightedCluster *wc = TR_NEW(tx, envoy__config__route__v3__weighted_cluster);
    uint64_t total = 0;
    if (n == 0) {
        tr_error(tx, "%s: at least one destination is required", path);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        const char *p = tr_printf(tx, "%s[%zu].destination", path, i);
        const Sluice__V1__Destination *d = ds[i]->destination;
        bool named = false;
        const Sluice__V1__Upstream *up = dest_upstream_(tx, d, def_ns, p, !group, &named);
        Envoy__Config__Route__V3__WeightedCluster__ClusterWeight *cw =
            TR_NEW(tx, envoy__config__route__v3__weighted_cluster__cluster_weight);
        uint32_t w = ds[i]->weight ? ds[i]->weight->value : 0;
        if (!named) {
            *missing = true;
            continue;
        }
        if (d->destination_spec)
            tr_error(tx, "%s.destinationSpec: functions on weighted destinations are not supported by Sluice", p);
        if (up) {
            cw->name = tr_cluster_name(tx, up->metadata->name, tr_md_ns(up->metadata));
            cw->metadata_match = subset_match(tx, d, up, p);
        } else {
            /* As Gloo (verifyUpstreamGroups, setWeightedClusters): the
             * group is in error, and routes keep the missing upstream's
             * cluster with its weight, whose share Envoy answers 503
             * (cluster not found); the other members keep theirs. */
            if (group)
                tr_error(tx, "%s: destination # %zu: upstream not found: Upstream %s.%s not found", p, i + 1,
                         dest_ns(d, def_ns), d->upstream->name);
            *missing = true;
            cw->name = tr_cluster_name(tx, d->upstream->name, dest_ns(d, def_ns));
        }
        cw->weight = tr_u32(tx, w);
        total += w;
        if (ds[i]->options) {
            const Sluice__V1__WeightedDestinationOptions *o = ds[i]->options;
            if (o->header_manipulation) {
                const Sluice__V1__HeaderManipulation *h = o->header_manipulation;
                for (size_t j = 0; j < h->n_request_headers_to_add; j++)
                    TR_PUSH(tx, cw, request_headers_to_add, tr_header_option(tx, h->request_headers_to_add[j]));
                for (size_t j = 0; j < h->n_request_headers_to_remove; j++)
                    TR_PUSH(tx, cw, request_headers_to_remove, tr_strdup(tx, h->request_headers_to_remove[j]));
                for (size_t j = 0; j < h->n_response_headers_to_add; j++)
                    TR_PUSH(tx, cw, response_headers_to_add, tr_header_option(tx, h->response_headers_to_add[j]));
                for (size_t j = 0; j < h->n_response_headers_to_remove; j++)
                    TR_PUSH(tx, cw, response_headers_to_remove, tr_strdup(tx, h->response_headers_to_remove[j]));
            }
            if (o->extauth)
                tr_error(tx, "%s[%zu].options.extauth: not supported by Sluice on weighted destinations", path, i);
        }
        TR_PUSH(tx, wc, clusters, cw);
    }
    if (total == 0) {
        tr_error(tx, "%s: at least one destination needs a weight above zero", path);
        return NULL;
    }
    if (total > 0xffffffffULL) {
        tr_error(tx, "%s: the weights add up to more than 4294967295", path);
        return NULL;
    }
    /* Deprecated in Envoy (which derives the sum) but read by gRPC 1.51's
     * xDS client, which otherwise expects the weights to add up to 100. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    if (total > 0)
        wc->total_weight = tr_u32(tx, (uint32_t)total);
#pragma GCC diagnostic pop
    return wc;
}

/* Weighted clusters wc (NULL: unusable) with a missing member (missing)
 * are replaced by the invalid-route response only under Settings
 * replaceInvalidRoutes: true (Gloo sends that member's share to its
 * fallback cluster; Sluice has none, so the whole route answers).
 * Otherwise they are served as Gloo serves them (tr_weighted). */
static bool weighted_unusable(tr_ctx *tx, const Envoy__Config__Route__V3__WeightedCluster *wc, bool missing)
{
    return !wc || (missing && replace_invalid_routes(tx));
}

/* The UpstreamGroup ref names (its namespace in *ns: the reference's, else
 * owner_ns), or NULL. */
static const Sluice__V1__UpstreamGroup *find_group(tr_ctx *tx, const Sluice__V1__ResourceRef *ref, const char *owner_ns,
                                                   const char **ns)
{
    long pos;
    *ns = ref->namespace_ && ref->namespace_[0] ? ref->namespace_ : owner_ns;
    pos = tr_bucket_find(tr_bucket_of(tx, tr_kind.ug), *ns, ref->name ? ref->name : "");
    return pos >= 0 ? (const Sluice__V1__UpstreamGroup *)tr_bucket_of(tx, tr_kind.ug)->v[pos].msg : NULL;
}

/* The plugins' weighted_destination hooks for each of r's weighted
 * clusters, with the destination (of a, the route's action) it was made
 * of: the ones naming an upstream, in order (tr_weighted). */
static void weighted_destinations(tr_ctx *tx, const tr_route_in *in, const tr_route_ctx *rc,
                                  const Sluice__V1__RouteAction *a, tr_route_t *r, const char *path)
{
    Sluice__V1__WeightedDestination *const *ds = NULL;
    const Envoy__Config__Route__V3__WeightedCluster *wc;
    const char *dpath = NULL;
    size_t n = 0, k = 0;
    if (r->action_case != ENVOY__CONFIG__ROUTE__V3__ROUTE__ACTION_ROUTE || !(wc = r->route->weighted_clusters))
        return;
    if (a->destination_case == SLUICE__V1__ROUTE_ACTION__DESTINATION_MULTI && a->multi) {
        ds = a->multi->destinations;
        n = a->multi->n_destinations;
        dpath = tr_printf(tx, "%s.routeAction.multi.destinations", path);
    } else if (a->destination_case == SLUICE__V1__ROUTE_ACTION__DESTINATION_UPSTREAM_GROUP) {
        const Sluice__V1__ResourceRef *ref = a->upstream_group;
        const char *ns;
        const Sluice__V1__UpstreamGroup *ug = find_group(tx, ref, rc->owner_ns, &ns);
        if (ug && ug->spec) {
            ds = ug->spec->destinations;
            n = ug->spec->n_destinations;
            dpath = tr_printf(tx, "%s.routeAction.upstreamGroup(%s.%s).destinations", path, ns, ref->name);
        }
    }
    for (size_t i = 0; i < n && k < wc->n_clusters; i++) {
        if (!dest_named(ds[i]->destination))
            continue;
        for (size_t p = 0; p < sl_tr_plugin_count; p++)
            if (sl_tr_plugins[p]->weighted_destination)
                sl_tr_plugins[p]->weighted_destination(tx, in, ds[i]->options, tr_printf(tx, "%s[%zu].options", dpath, i),
                                                       wc->clusters[k]);
        k++;
    }
}

/* Sets r's action from a Sluice route action; returns the single
 * destination's upstream for the plugins. *invalid: replaced by the
 * invalid-route response. */
static const Sluice__V1__Upstream *route_action(tr_ctx *tx, const tr_route_ctx *rc, const Sluice__V1__RouteAction *a,
                                                tr_route_t *r, const char *path, bool *invalid)
{
    Envoy__Config__Route__V3__RouteAction *ra = TR_NEW(tx, envoy__config__route__v3__route_action);
    const Sluice__V1__Upstream *single = NULL;
    bool missing = false;
    switch (a->destination_case) {
    case SLUICE__V1__ROUTE_ACTION__DESTINATION_SINGLE:
        single = dest_upstream(tx, a->single, rc->owner_ns, tr_printf(tx, "%s.routeAction.single", path));
        if (!single) {
            missing = true;
            break;
        }
        ra->cluster_specifier_case = ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__CLUSTER_SPECIFIER_CLUSTER;
        ra->cluster = tr_cluster_name(tx, single->metadata->name, tr_md_ns(single->metadata));
        ra->metadata_match = subset_match(tx, a->single, single, tr_printf(tx, "%s.routeAction.single", path));
        break;
    case SLUICE__V1__ROUTE_ACTION__DESTINATION_MULTI:
        ra->weighted_clusters = tr_weighted(tx, a->multi ? a->multi->destinations : NULL, a->multi ? a->multi->n_destinations : 0,
                                         rc->owner_ns, tr_printf(tx, "%s.routeAction.multi.destinations", path), false,
                                         &missing);
        ra->cluster_specifier_case = ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__CLUSTER_SPECIFIER_WEIGHTED_CLUSTERS;
        missing = weighted_unusable(tx, ra->weighted_clusters, missing);
        break;
    case SLUICE__V1__ROUTE_ACTION__DESTINATION_UPSTREAM_GROUP: {
        const Sluice__V1__ResourceRef *ref = a->upstream_group;
        const char *ns;
        const Sluice__V1__UpstreamGroup *ug = find_group(tx, ref, rc->owner_ns, &ns);
        if (!ug) {
            tr_warn(tx, "Route Warning: InvalidDestinationWarning. Reason: UpstreamGroup %s.%s not found", ns,
                    ref->name ? ref->name : "");
            missing = true;
            break;
        }
        ra->weighted_clusters =
            tr_weighted(tx, ug->spec ? ug->spec->destinations : NULL, ug->spec ? ug->spec->n_destinations : 0, ns,
                     tr_printf(tx, "%s.routeAction.upstreamGroup(%s.%s).destinations", path, ns, ref->name), false,
                     &missing);
        ra->cluster_specifier_case = ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__CLUSTER_SPECIFIER_WEIGHTED_CLUSTERS;
        missing = weighted_unusable(tx, ra->weighted_clusters, missing);
        break;
    }
    case SLUICE__V1__ROUTE_ACTION__DESTINATION_CLUSTER_HEADER: {
        const char *err = tr_check_header_name(a->cluster_header, false);
        if (err) {
            tr_error(tx, "%s.routeAction.clusterHeader: %s", path, err);
            missing = true;
            break;
        }
        /* a request header names the cluster: the proxy may reach any */
        tr_reach_upstream(tx, TR_REACH_ALL);
        ra->cluster_specifier_case = ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__CLUSTER_SPECIFIER_CLUSTER_HEADER;
        ra->cluster_header = tr_strdup(tx, a->cluster_header);
        break;
    }
    default:
        tr_error(tx, "%s.routeAction: a destination (single, multi, upstreamGroup or clusterHeader) is required", path);
        missing = true;
    }
    if (missing) {
        tr_invalid_route(tx, r);
        *invalid = true;
        return NULL;
    }
    r->action_case = ENVOY__CONFIG__ROUTE__V3__ROUTE__ACTION_ROUTE;
    r->route = ra;
    return single;
}

static void redirect_action(tr_ctx *tx, const Sluice__V1__RedirectAction *a, tr_route_t *r, const char *path)
{
    Envoy__Config__Route__V3__RedirectAction *ra = TR_NEW(tx, envoy__config__route__v3__redirect_action);
    ra->host_redirect = tr_strdup(tx, a->host_redirect);
    ra->response_code = (Envoy__Config__Route__V3__RedirectAction__RedirectResponseCode)a->response_code;
    ra->strip_query = a->strip_query;
    if (a->https_redirect) {
        ra->scheme_rewrite_specifier_case = ENVOY__CONFIG__ROUTE__V3__REDIRECT_ACTION__SCHEME_REWRITE_SPECIFIER_HTTPS_REDIRECT;
        ra->https_redirect = 1;
    }
    if (a->port_redirect) {
        if (a->port_redirect->value > 65535)
            tr_error(tx, "%s.redirectAction.portRedirect: %u is not a port", path, a->port_redirect->value);
        ra->port_redirect = a->port_redirect->value;
    }
    switch (a->path_rewrite_specifier_case) {
    case SLUICE__V1__REDIRECT_ACTION__PATH_REWRITE_SPECIFIER_PATH_REDIRECT:
        ra->path_rewrite_specifier_case = ENVOY__CONFIG__ROUTE__V3__REDIRECT_ACTION__PATH_REWRITE_SPECIFIER_PATH_REDIRECT;
        ra->path_redirect = tr_strdup(tx, a->path_redirect);
        break;
    case SLUICE__V1__REDIRECT_ACTION__PATH_REWRITE_SPECIFIER_PREFIX_REWRITE:
        ra->path_rewrite_specifier_case = ENVOY__CONFIG__ROUTE__V3__REDIRECT_ACTION__PATH_REWRITE_SPECIFIER_PREFIX_REWRITE;
        ra->prefix_rewrite = tr_strdup(tx, a->prefix_rewrite);
        break;
    case SLUICE__V1__REDIRECT_ACTION__PATH_REWRITE_SPECIFIER_REGEX_REWRITE: {
        const Sluice__V1__RegexMatchAndSubstitute *rr = a->regex_rewrite;
        if (!rr->pattern || !rr->pattern->regex ||
            !tr_check_regex(tx, tr_printf(tx, "%s.redirectAction.regexRewrite.pattern", path), rr->pattern->regex, NULL))
            break;
        ra->path_rewrite_specifier_case = ENVOY__CONFIG__ROUTE__V3__REDIRECT_ACTION__PATH_REWRITE_SPECIFIER_REGEX_REWRITE;
        ra->regex_rewrite = TR_NEW(tx, envoy__type__matcher__v3__regex_match_and_substitute);
        ra->regex_rewrite->pattern = tr_regex(tx, rr->pattern->regex);
        ra->regex_rewrite->substitution = tr_strdup(tx, rr->substitution);
        break;
    }
    default:
        break;
    }
    for (const char *c = a->host_redirect; c && *c; c++)
        if (*c == '/' || *c == ' ') {
            tr_error(tx, "%s.redirectAction.hostRedirect: \"%s\" is not a host", path, a->host_redirect);
            break;
        }
    r->action_case = ENVOY__CONFIG__ROUTE__V3__ROUTE__ACTION_REDIRECT;
    r->redirect = ra;
}

static void direct_action(tr_ctx *tx, const Sluice__V1__DirectResponseAction *a, tr_route_t *r, const char *path)
{
    Envoy__Config__Route__V3__DirectResponseAction *d = TR_NEW(tx, envoy__config__route__v3__direct_response_action);
    if (a->status < 200 || a->status > 599)
        tr_error(tx, "%s.directResponseAction.status: %u is not an HTTP status Envoy can answer with (200-599)", path,
                 a->status);
    d->status = a->status;
    if (a->body && a->body[0]) {
        d->body = tr_inline_string(tx, a->body);
    }
    r->action_case = ENVOY__CONFIG__ROUTE__V3__ROUTE__ACTION_DIRECT_RESPONSE;
    r->direct_response = d;
}

/* The path a matcher matches, as Gloo's PathAsString compares it with the
 * parent's prefix (no path: "/", as Sluice translates it). */
static const char *matcher_path(const Sluice__V1__Matcher *m)
{
    switch (m->path_specifier_case) {
    case SLUICE__V1__MATCHER__PATH_SPECIFIER_EXACT: return m->exact;
    case SLUICE__V1__MATCHER__PATH_SPECIFIER_REGEX: return m->regex;
    case SLUICE__V1__MATCHER__PATH_SPECIFIER_PREFIX: return m->prefix[0] ? m->prefix : "/";
    default: return "/";
    }
}

/* Gloo (gateway translator, validateAndMergeParentRoute): a delegated route
 * with a matcher outside its parent's prefix is left out, all of it, with a
 * Warning on its route table and on the virtual service (an error would
 * strip the whole virtual host); its siblings are served. */
static bool outside_parent_prefix(tr_ctx *tx, const tr_route_ctx *rc, const Sluice__V1__Route *route,
                                  const char *path)
{
    tr_cur *saved = tx->cur;
    const char *p = NULL, *why;
    size_t j;
    if (!rc->prefix)
        return false;
    for (j = 0; j < route->n_matchers && !p; j++)
        if (!tr_starts_with(matcher_path(route->matchers[j]), rc->prefix))
            p = matcher_path(route->matchers[j]);
    if (!p)
        return false;
    if (!saved) /* a rejected table's last good version, served quietly */
        return true;
    /* Gloo's words (InvalidRouteTableForDelegatePrefixWarning), then where */
    why = tr_printf(tx, "required prefix: %s, prefix: %s: invalid route: route table matchers must begin with the "
                    "prefix of their parent route's matcher (%s.matchers[%zu]; the route is left out)",
                    rc->prefix, p, path, j - 1);
    tr_warn(tx, "%s", why);
    if (rc->vs && rc->vs->metadata && saved->kind == tr_kind.rt) {
        tr_cur vc = {tr_kind.vs, tr_md_ns(rc->vs->metadata), rc->vs->metadata->name, 0};
        tx->cur = &vc;
        tr_warn(tx, "on sub route table %s.%s: %s", saved->ns, saved->name, why);
        tx->cur = saved;
    }
    return true;
}

/* A delegated route as Gloo's validateAndMergeParentRoute sees it: with
 * inheritablePathMatchers (the route's own, else its parent's), every
 * matcher, or one when it has none, takes the parent's path and case
 * sensitivity; otherwise a route without matchers matches "/" (Gloo's
 * default matcher), which must then be within the parent's prefix too. */
static const Sluice__V1__Route *delegated_route(tr_ctx *tx, const tr_route_ctx *rc, const Sluice__V1__Route *route)
{
    bool inherit = route->inheritable_path_matchers ? route->inheritable_path_matchers->value : rc->inherit_path;
    size_t n = route->n_matchers ? route->n_matchers : 1;
    Sluice__V1__Route *r;
    if (!rc->prefix || (!inherit && route->n_matchers))
        return route;
    r = tr_alloc(tx, sizeof *r);
    *r = *route;
    r->n_matchers = n;
    r->matchers = tr_alloc(tx, n * sizeof *r->matchers);
    for (size_t j = 0; j < n; j++) {
        Sluice__V1__Matcher *m = TR_NEW(tx, sluice__v1__matcher);
        if (route->n_matchers)
            *m = *route->matchers[j];
        m->path_specifier_case = SLUICE__V1__MATCHER__PATH_SPECIFIER_PREFIX;
        m->prefix = (char *)(inherit ? rc->prefix : "/");
        if (inherit)
            m->case_sensitive = rc->parent_matcher ? rc->parent_matcher->case_sensitive : NULL;
        r->matchers[j] = m;
    }
    return r;
}

static void translate_route(tr_ctx *tx, tr_route_ctx *rc, const Sluice__V1__Route *route, size_t idx)
{
    const char *path = tr_printf(tx, "%s[%zu]", rc->path, idx);
    const Sluice__V1__RouteOptions *opts =
        (const Sluice__V1__RouteOptions *)tr_merge_options(tx, (const ProtobufCMessage *)rc->options,
                                                        (const ProtobufCMessage *)route->options);
    Sluice__V1__Matcher def = SLUICE__V1__MATCHER__INIT;
    const Sluice__V1__Matcher *defp = &def;
    const Sluice__V1__Matcher *const *ms;
    size_t nm;

    route = delegated_route(tx, rc, route);
    if (outside_parent_prefix(tx, rc, route, path))
        return;
    if (route->options)
        tr_check_fields(tx, &tx->supported, &route->options->base, tr_printf(tx, "%s.options", path));
    if (route->action_case == SLUICE__V1__ROUTE__ACTION_DELEGATE_ACTION) {
        tr_delegate(tx, rc, route, path, opts);
        return;
    }
    def.path_specifier_case = SLUICE__V1__MATCHER__PATH_SPECIFIER_PREFIX;
    def.prefix = "/";
    ms = route->n_matchers ? (const Sluice__V1__Matcher *const *)route->matchers : &defp;
    nm = route->n_matchers ? route->n_matchers : 1;
    if (route->action_case == SLUICE__V1__ROUTE__ACTION__NOT_SET) {
        tr_error(tx, "%s: an action (routeAction, redirectAction, directResponseAction or delegateAction) is required",
                 path);
        return;
    }
    for (size_t j = 0; j < nm; j++) {
        const Sluice__V1__Matcher *m = ms[j];
        const char *mpath = tr_printf(tx, "%s.matchers[%zu]", path, j);
        tr_route_t *r = TR_NEW(tx, envoy__config__route__v3__route);
        Envoy__Config__Route__V3__RouteMatch *rm = TR_NEW(tx, envoy__config__route__v3__route_match);
        const Sluice__V1__Upstream *up = NULL;
        bool invalid = false;
        int errors_before = tx->cur ? tx->cur->errors : 0;

        r->match = rm;
        switch (m->path_specifier_case) {
        case SLUICE__V1__MATCHER__PATH_SPECIFIER_EXACT:
            if (!m->exact[0] || m->exact[0] != '/')
                tr_error(tx, "%s.exact: \"%s\" must start with '/'", mpath, m->exact);
            rm->path_specifier_case = ENVOY__CONFIG__ROUTE__V3__ROUTE_MATCH__PATH_SPECIFIER_PATH;
            rm->path = tr_strdup(tx, m->exact);
            break;
        case SLUICE__V1__MATCHER__PATH_SPECIFIER_REGEX:
            if (!tr_check_regex(tx, tr_printf(tx, "%s.regex", mpath), m->regex, NULL))
                continue;
            rm->path_specifier_case = ENVOY__CONFIG__ROUTE__V3__ROUTE_MATCH__PATH_SPECIFIER_SAFE_REGEX;
            rm->safe_regex = tr_regex(tx, m->regex);
            break;
        case SLUICE__V1__MATCHER__PATH_SPECIFIER_PREFIX:
            if (m->prefix[0] && m->prefix[0] != '/')
                tr_error(tx, "%s.prefix: \"%s\" must start with '/'", mpath, m->prefix);
            /* fallthrough */
        default:
            rm->path_specifier_case = ENVOY__CONFIG__ROUTE__V3__ROUTE_MATCH__PATH_SPECIFIER_PREFIX;
            rm->prefix = tr_strdup(tx, m->path_specifier_case == SLUICE__V1__MATCHER__PATH_SPECIFIER_PREFIX && m->prefix[0]
                                           ? m->prefix
                                           : "/");
            break;
        }
        if (m->case_sensitive)
            rm->case_sensitive = tr_bool(tx, m->case_sensitive->value);
        add_header_matchers(tx, rm, m, mpath);
        if (rc->inherit_matchers && rc->parent_matcher && rc->parent_matcher != m)
            add_header_matchers(tx, rm, rc->parent_matcher, tr_printf(tx, "%s (inherited)", mpath));

        /* Gloo's replaceInvalidRoutes: a route whose action or options
         * fail is replaced, its errors are warnings (its matchers' are the
         * virtual service's, as Gloo's gateway translation reports them) */
        tx->demote_errors = replace_invalid_routes(tx);
        tx->demoted = false;
        switch (route->action_case) {
        case SLUICE__V1__ROUTE__ACTION_ROUTE_ACTION:
            up = route_action(tx, rc, route->route_action, r, path, &invalid);
            break;
        case SLUICE__V1__ROUTE__ACTION_REDIRECT_ACTION:
            redirect_action(tx, route->redirect_action, r, path);
            break;
        case SLUICE__V1__ROUTE__ACTION_DIRECT_RESPONSE_ACTION:
            direct_action(tx, route->direct_response_action, r, path);
            break;
        default:
            break;
        }
        if (route->name && route->name[0])
            r->name = nm > 1 ? tr_printf(tx, "%s-%zu", route->name, j) : tr_strdup(tx, route->name);
        else
            r->name = tr_printf(tx, "%s-route-%zu", rc->vh->name, rc->vh->n_routes);
        if (!invalid) {
            tr_route_in in = {0};
            in.gw = rc->gw;
            in.vs = rc->vs;
            in.route = route;
            in.options = opts;
            in.matcher = m;
            in.upstream = up;
            in.dest_spec = route->action_case == SLUICE__V1__ROUTE__ACTION_ROUTE_ACTION &&
                                   route->route_action->destination_case == SLUICE__V1__ROUTE_ACTION__DESTINATION_SINGLE
                               ? route->route_action->single->destination_spec
                               : NULL;
            in.path = tr_printf(tx, "%s.options", path);
            in.route_path = path;
            if (in.dest_spec && j == 0)
                tr_check_fields(tx, &tx->supported, &in.dest_spec->base,
                             tr_printf(tx, "%s.routeAction.single.destinationSpec", path));
            for (size_t p = 0; p < sl_tr_plugin_count; p++)
                if (sl_tr_plugins[p]->route)
                    sl_tr_plugins[p]->route(tx, &in, r);
            if (route->action_case == SLUICE__V1__ROUTE__ACTION_ROUTE_ACTION)
                weighted_destinations(tx, &in, rc, route->route_action, r, path);
        }
        tx->demote_errors = false;
        if (tx->demoted) /* a fresh route: what the plugins set may be half done */
            r = replaced_route(tx, r);
        if (tx->cur && tx->cur->errors > errors_before)
            continue;
        TR_PUSH(tx, rc->vh, routes, r);
    }
}

void tr_translate_routes(tr_ctx *tx, tr_route_ctx *rc, Sluice__V1__Route *const *routes, size_t n)
{
    for (size_t i = 0; i < n; i++)
        translate_route(tx, rc, routes[i], i);
}

void tr_check_upstream_groups(tr_ctx *tx)
{
    tr_bucket *b = tr_bucket_of(tx, tr_kind.ug);
    for (size_t i = 0; i < b->n; i++) {
        const Sluice__V1__UpstreamGroup *ug = (const Sluice__V1__UpstreamGroup *)b->v[i].msg;
        tr_cur cur = tr_cur_of(tr_kind.ug, &b->v[i]);
        bool missing = false;
        tx->cur = &cur;
        tr_weighted(tx, ug->spec ? ug->spec->destinations : NULL, ug->spec ? ug->spec->n_destinations : 0, b->v[i].ns,
                    "spec.destinations", true, &missing);
        *tr_flag(tx, tr_kind.ug, i) |= TR_SEEN | (cur.errors ? TR_REJECTED : 0);
    }
    tx->cur = NULL;
}
