/* ratelimit_global: global rate limiting with an external rate-limit server
 * (Gloo's ratelimit plugin, projects/gloo/pkg/plugins/ratelimit).
 *
 * Virtual hosts and routes: options.ratelimit.rateLimits (Gloo's
 * RateLimitActions) become Envoy's rate_limits (each a descriptor built by
 * its actions, at the filter's stage: 1, or 3 with rateLimitBeforeAuth);
 * a route's includeVhRateLimits becomes include_vh_rate_limits. The
 * listener: Settings ratelimitServer (or the HTTP gateway's
 * options.ratelimitServer) puts envoy.filters.http.ratelimit (domain
 * "custom", request_type "both", default timeout 100ms) on every HTTP
 * listener, after ext_authz, or before JWT and ext_authz with
 * rateLimitBeforeAuth, calling the server's upstream over gRPC (V3).
 *
 * The server's own configuration: Settings ratelimit.descriptors become the
 * RateLimitConfig of domain "custom" (envoyproxy/ratelimit's xDS resource),
 * the only resource of the proxy "<settings namespace>~ratelimit", which a
 * rate-limit server started with CONFIG_TYPE=GRPC_XDS_SOTW asks sluice-xds
 * for (node.metadata.role). Descriptors the server would refuse (no key, a
 * limit without unit, a key twice among siblings) are errors on Settings and
 * left out.
 *
 * Refused with a reason, as Gloo's open-source edition refuses them: Gloo
 * Enterprise's ratelimitBasic, rateLimitConfigs, the staged ratelimitEarly
 * and ratelimitRegular, setActions and setDescriptors; and the cel action
 * and TOKEN limits (agentgateway's). */
#include <string.h>

#include "../plugin.h"
#include "envoy/extensions/filters/http/ratelimit/v3/rate_limit.pb-c.h"
#include "ratelimit/config/ratelimit/v3/rls_conf.pb-c.h"
#include "sluice/v1/ratelimit.pb-c.h"

#define RL_FILTER "envoy.filters.http.ratelimit"
#define RL_DOMAIN "custom"       /* Gloo's CustomDomain */
#define RL_STAGE 1               /* Gloo's CustomStage */
#define RL_STAGE_BEFORE_AUTH 3   /* Gloo's CustomStageBeforeAuth */
#define RL_TIMEOUT_MS 100        /* Gloo's DefaultTimeout */
#define RL_ROLE "ratelimit"      /* the server's proxy: "<settings ns>~ratelimit" (Gloo's ServerRole) */

typedef Envoy__Config__Route__V3__RateLimit env_rl;
typedef Envoy__Config__Route__V3__RateLimit__Action env_action;

static const char *const fields[] = {
    "VirtualHostOptions.ratelimit",
    "VirtualHostOptions.ratelimit_basic",
    "VirtualHostOptions.rate_limit_configs",
    "VirtualHostOptions.ratelimit_early",
    "VirtualHostOptions.rate_limit_early_configs",
    "VirtualHostOptions.ratelimit_regular",
    "VirtualHostOptions.rate_limit_regular_configs",
    "RouteOptions.ratelimit",
    "RouteOptions.ratelimit_basic",
    "RouteOptions.rate_limit_configs",
    "RouteOptions.ratelimit_early",
    "RouteOptions.rate_limit_early_configs",
    "RouteOptions.ratelimit_regular",
    "RouteOptions.rate_limit_regular_configs",
    "HttpListenerOptions.ratelimit_server",
    NULL,
};
const sl_tr_plugin sl_tr_plugin_ratelimit_global;

/* The rate-limit server of gateway gw's listener: its own
 * options.ratelimitServer, else the Settings' (NULL: none). *where names
 * it for reports. */
static const Sluice__V1__RateLimitServerSettings *server_of(tr_ctx *tx, const tr_gateway *gw, const char **where)
{
    const Sluice__V1__HttpGateway *hg = gw && gw->gw && gw->gw->spec ? gw->gw->spec->http_gateway : NULL;
    if (hg && hg->options && hg->options->ratelimit_server) {
        *where = "spec.httpGateway.options.ratelimitServer";
        return hg->options->ratelimit_server;
    }
    *where = "Settings ratelimitServer";
    return tr_settings(tx)->ratelimit_server;
}

static bool has_server(const Sluice__V1__RateLimitServerSettings *s)
{
    return s && s->ratelimit_server_ref && s->ratelimit_server_ref->name[0];
}

static uint32_t stage_of(const Sluice__V1__RateLimitServerSettings *s)
{
    return s && s->rate_limit_before_auth ? RL_STAGE_BEFORE_AUTH : RL_STAGE;
}

/* ---- actions --------------------------------------------------------------- */

static Envoy__Type__Metadata__V3__MetadataKey *
metadata_key(tr_ctx *tx, const Sluice__V1__RateLimitMetaData__MetadataKey *k, const char *p)
{
    Envoy__Type__Metadata__V3__MetadataKey *mk;
    if (!k || !k->key[0]) {
        tr_error(tx, "%s.key: required (the metadata namespace, e.g. a filter name)", p);
        return NULL;
    }
    if (!k->n_path) {
        tr_error(tx, "%s.path: at least one segment (Envoy refuses an empty path)", p);
        return NULL;
    }
    mk = TR_NEW(tx, envoy__type__metadata__v3__metadata_key);
    mk->key = tr_strdup(tx, k->key);
    for (size_t i = 0; i < k->n_path; i++) {
        Envoy__Type__Metadata__V3__MetadataKey__PathSegment *ps;
        if (!k->path[i]->key[0]) {
            tr_error(tx, "%s.path[%zu].key: required", p, i);
            return NULL;
        }
        ps = TR_NEW(tx, envoy__type__metadata__v3__metadata_key__path_segment);
        ps->segment_case = ENVOY__TYPE__METADATA__V3__METADATA_KEY__PATH_SEGMENT__SEGMENT_KEY;
        ps->key = tr_strdup(tx, k->path[i]->key);
        TR_PUSH(tx, mk, path, ps);
    }
    return mk;
}

/* A headerValueMatch header condition (Gloo's convertHeader): Gloo's rate
 * limit HeaderMatcher says regexMatch where the route one says
 * safeRegexMatch, else the same; converted by tr_header_matcher() (value
 * matches as a string_match, where Gloo writes Envoy's deprecated
 * exact_match, safe_regex_match, prefix_match and suffix_match: the same
 * match). */
static Envoy__Config__Route__V3__HeaderMatcher *
header_matcher(tr_ctx *tx, const Sluice__V1__RateLimitAction__HeaderValueMatch__HeaderMatcher *h, const char *p)
{
    Sluice__V1__EnvoyHeaderMatcher m = SLUICE__V1__ENVOY_HEADER_MATCHER__INIT;
    Sluice__V1__RegexMatcher re = SLUICE__V1__REGEX_MATCHER__INIT;
    Sluice__V1__Int64Range range = SLUICE__V1__INT64_RANGE__INIT;
    m.name = h->name;
    m.invert_match = h->invert_match;
    switch (h->header_match_specifier_case) {
    case SLUICE__V1__RATE_LIMIT_ACTION__HEADER_VALUE_MATCH__HEADER_MATCHER__HEADER_MATCH_SPECIFIER_EXACT_MATCH:
        m.header_match_specifier_case = SLUICE__V1__ENVOY_HEADER_MATCHER__HEADER_MATCH_SPECIFIER_EXACT_MATCH;
        m.exact_match = h->exact_match;
        break;
    case SLUICE__V1__RATE_LIMIT_ACTION__HEADER_VALUE_MATCH__HEADER_MATCHER__HEADER_MATCH_SPECIFIER_REGEX_MATCH:
        m.header_match_specifier_case = SLUICE__V1__ENVOY_HEADER_MATCHER__HEADER_MATCH_SPECIFIER_SAFE_REGEX_MATCH;
        re.regex = h->regex_match;
        m.safe_regex_match = &re;
        break;
    case SLUICE__V1__RATE_LIMIT_ACTION__HEADER_VALUE_MATCH__HEADER_MATCHER__HEADER_MATCH_SPECIFIER_RANGE_MATCH:
        m.header_match_specifier_case = SLUICE__V1__ENVOY_HEADER_MATCHER__HEADER_MATCH_SPECIFIER_RANGE_MATCH;
        range.start = h->range_match->start;
        range.end = h->range_match->end;
        m.range_match = &range;
        break;
    case SLUICE__V1__RATE_LIMIT_ACTION__HEADER_VALUE_MATCH__HEADER_MATCHER__HEADER_MATCH_SPECIFIER_PRESENT_MATCH:
        m.header_match_specifier_case = SLUICE__V1__ENVOY_HEADER_MATCHER__HEADER_MATCH_SPECIFIER_PRESENT_MATCH;
        m.present_match = h->present_match;
        break;
    case SLUICE__V1__RATE_LIMIT_ACTION__HEADER_VALUE_MATCH__HEADER_MATCHER__HEADER_MATCH_SPECIFIER_PREFIX_MATCH:
        m.header_match_specifier_case = SLUICE__V1__ENVOY_HEADER_MATCHER__HEADER_MATCH_SPECIFIER_PREFIX_MATCH;
        m.prefix_match = h->prefix_match;
        break;
    case SLUICE__V1__RATE_LIMIT_ACTION__HEADER_VALUE_MATCH__HEADER_MATCHER__HEADER_MATCH_SPECIFIER_SUFFIX_MATCH:
        m.header_match_specifier_case = SLUICE__V1__ENVOY_HEADER_MATCHER__HEADER_MATCH_SPECIFIER_SUFFIX_MATCH;
        m.suffix_match = h->suffix_match;
        break;
    default:
        break;
    }
    return tr_header_matcher(tx, &m, p);
}

/* One action (Gloo's convertAction, its required fields checked), or NULL
 * (reported). */
static env_action *action(tr_ctx *tx, const Sluice__V1__RateLimitAction *a, const char *p)
{
    env_action *e = TR_NEW(tx, envoy__config__route__v3__rate_limit__action);
    switch (a->action_specifier_case) {
    case SLUICE__V1__RATE_LIMIT_ACTION__ACTION_SPECIFIER_SOURCE_CLUSTER:
        e->action_specifier_case = ENVOY__CONFIG__ROUTE__V3__RATE_LIMIT__ACTION__ACTION_SPECIFIER_SOURCE_CLUSTER;
        e->source_cluster = TR_NEW(tx, envoy__config__route__v3__rate_limit__action__source_cluster);
        return e;
    case SLUICE__V1__RATE_LIMIT_ACTION__ACTION_SPECIFIER_DESTINATION_CLUSTER:
        e->action_specifier_case = ENVOY__CONFIG__ROUTE__V3__RATE_LIMIT__ACTION__ACTION_SPECIFIER_DESTINATION_CLUSTER;
        e->destination_cluster = TR_NEW(tx, envoy__config__route__v3__rate_limit__action__destination_cluster);
        return e;
    case SLUICE__V1__RATE_LIMIT_ACTION__ACTION_SPECIFIER_REMOTE_ADDRESS:
        e->action_specifier_case = ENVOY__CONFIG__ROUTE__V3__RATE_LIMIT__ACTION__ACTION_SPECIFIER_REMOTE_ADDRESS;
        e->remote_address = TR_NEW(tx, envoy__config__route__v3__rate_limit__action__remote_address);
        return e;
    case SLUICE__V1__RATE_LIMIT_ACTION__ACTION_SPECIFIER_REQUEST_HEADERS: {
        const Sluice__V1__RateLimitAction__RequestHeaders *rh = a->request_headers;
        const char *why = rh->header_name[0] ? tr_check_header_name(rh->header_name, true) : "required";
        if (why) {
            tr_error(tx, "%s.requestHeaders.headerName: %s", p, why);
            return NULL;
        }
        if (!rh->descriptor_key[0]) {
            tr_error(tx, "%s.requestHeaders.descriptorKey: required", p);
            return NULL;
        }
        e->action_specifier_case = ENVOY__CONFIG__ROUTE__V3__RATE_LIMIT__ACTION__ACTION_SPECIFIER_REQUEST_HEADERS;
        e->request_headers = TR_NEW(tx, envoy__config__route__v3__rate_limit__action__request_headers);
        e->request_headers->header_name = tr_strdup(tx, rh->header_name);
        e->request_headers->descriptor_key = tr_strdup(tx, rh->descriptor_key);
        return e;
    }
    case SLUICE__V1__RATE_LIMIT_ACTION__ACTION_SPECIFIER_GENERIC_KEY:
        if (!a->generic_key->descriptor_value[0]) {
            tr_error(tx, "%s.genericKey.descriptorValue: required", p);
            return NULL;
        }
        e->action_specifier_case = ENVOY__CONFIG__ROUTE__V3__RATE_LIMIT__ACTION__ACTION_SPECIFIER_GENERIC_KEY;
        e->generic_key = TR_NEW(tx, envoy__config__route__v3__rate_limit__action__generic_key);
        e->generic_key->descriptor_value = tr_strdup(tx, a->generic_key->descriptor_value);
        return e;
    case SLUICE__V1__RATE_LIMIT_ACTION__ACTION_SPECIFIER_HEADER_VALUE_MATCH: {
        const Sluice__V1__RateLimitAction__HeaderValueMatch *hv = a->header_value_match;
        Envoy__Config__Route__V3__RateLimit__Action__HeaderValueMatch *o;
        if (!hv->descriptor_value[0]) {
            tr_error(tx, "%s.headerValueMatch.descriptorValue: required", p);
            return NULL;
        }
        if (!hv->n_headers) {
            tr_error(tx, "%s.headerValueMatch.headers: at least one (Envoy refuses none)", p);
            return NULL;
        }
        o = TR_NEW(tx, envoy__config__route__v3__rate_limit__action__header_value_match);
        o->descriptor_value = tr_strdup(tx, hv->descriptor_value);
        if (hv->expect_match)
            o->expect_match = tr_bool(tx, hv->expect_match->value);
        for (size_t i = 0; i < hv->n_headers; i++) {
            Envoy__Config__Route__V3__HeaderMatcher *hm =
                header_matcher(tx, hv->headers[i], tr_printf(tx, "%s.headerValueMatch.headers[%zu]", p, i));
            if (!hm)
                return NULL;
            TR_PUSH(tx, o, headers, hm);
        }
        e->action_specifier_case = ENVOY__CONFIG__ROUTE__V3__RATE_LIMIT__ACTION__ACTION_SPECIFIER_HEADER_VALUE_MATCH;
        e->header_value_match = o;
        return e;
    }
    case SLUICE__V1__RATE_LIMIT_ACTION__ACTION_SPECIFIER_METADATA: {
        const Sluice__V1__RateLimitMetaData *md = a->metadata;
        Envoy__Config__Route__V3__RateLimit__Action__MetaData *o;
        Envoy__Type__Metadata__V3__MetadataKey *mk;
        if (!md->descriptor_key[0]) {
            tr_error(tx, "%s.metadata.descriptorKey: required", p);
            return NULL;
        }
        if (!(mk = metadata_key(tx, md->metadata_key, tr_printf(tx, "%s.metadata.metadataKey", p))))
            return NULL;
        o = TR_NEW(tx, envoy__config__route__v3__rate_limit__action__meta_data);
        o->descriptor_key = tr_strdup(tx, md->descriptor_key);
        o->metadata_key = mk;
        o->default_value = tr_strdup(tx, md->default_value);
        o->source = md->source == SLUICE__V1__RATE_LIMIT_META_DATA__SOURCE__ROUTE_ENTRY
                        ? ENVOY__CONFIG__ROUTE__V3__RATE_LIMIT__ACTION__META_DATA__SOURCE__ROUTE_ENTRY
                        : ENVOY__CONFIG__ROUTE__V3__RATE_LIMIT__ACTION__META_DATA__SOURCE__DYNAMIC;
        e->action_specifier_case = ENVOY__CONFIG__ROUTE__V3__RATE_LIMIT__ACTION__ACTION_SPECIFIER_METADATA;
        e->metadata = o;
        return e;
    }
    case SLUICE__V1__RATE_LIMIT_ACTION__ACTION_SPECIFIER_CEL:
        tr_error(tx, "%s.cel: not supported by Sluice (CEL actions are agentgateway's; Envoy's rate limit filter "
                     "has none)", p);
        return NULL;
    default:
        tr_error(tx, "%s: an action needs one of sourceCluster, destinationCluster, requestHeaders, remoteAddress, "
                     "genericKey, headerValueMatch, metadata", p);
        return NULL;
    }
}

/* Envoy's rate_limits of rateLimits at path p (Gloo's toEnvoyRateLimits:
 * an entry without actions is left out); false when one was refused
 * (reported). */
static bool rate_limits(tr_ctx *tx, Sluice__V1__RateLimitActions *const *in, size_t n, uint32_t stage,
                        const char *p, env_rl ***out, size_t *n_out)
{
    bool ok = true;
    for (size_t i = 0; i < n; i++) {
        const Sluice__V1__RateLimitActions *ra = in[i];
        char *q = tr_printf(tx, "%s[%zu]", p, i);
        env_rl *rl;
        if (ra->n_set_actions) {
            tr_error(tx, "%s.setActions: not supported by Sluice (Gloo Enterprise's set-style rate limits; "
                         "envoyproxy/ratelimit matches descriptors in order: use actions)", q);
            ok = false;
            continue;
        }
        if (ra->type == SLUICE__V1__RATE_LIMIT_ACTIONS__LIMIT_TYPE__TOKEN) {
            tr_error(tx, "%s.type: TOKEN is not supported by Sluice (token counts are agentgateway's; Envoy counts "
                         "requests)", q);
            ok = false;
            continue;
        }
        if (!ra->n_actions)
            continue;
        rl = TR_NEW(tx, envoy__config__route__v3__rate_limit);
        rl->stage = tr_u32(tx, stage);
        for (size_t j = 0; j < ra->n_actions; j++) {
            env_action *e = action(tx, ra->actions[j], tr_printf(tx, "%s.actions[%zu]", q, j));
            if (!e) {
                ok = false;
                rl = NULL;
                break;
            }
            TR_PUSH(tx, rl, actions, e);
        }
        if (!rl)
            continue;
        if (ra->limit) {
            Envoy__Type__Metadata__V3__MetadataKey *mk;
            if (!ra->limit->dynamic_metadata) {
                tr_error(tx, "%s.limit.dynamicMetadata: required", q);
                ok = false;
                continue;
            }
            if (!(mk = metadata_key(tx, ra->limit->dynamic_metadata->metadata_key,
                                    tr_printf(tx, "%s.limit.dynamicMetadata.metadataKey", q)))) {
                ok = false;
                continue;
            }
            rl->limit = TR_NEW(tx, envoy__config__route__v3__rate_limit__override);
            rl->limit->override_specifier_case =
                ENVOY__CONFIG__ROUTE__V3__RATE_LIMIT__OVERRIDE__OVERRIDE_SPECIFIER_DYNAMIC_METADATA;
            rl->limit->dynamic_metadata = TR_NEW(tx, envoy__config__route__v3__rate_limit__override__dynamic_metadata);
            rl->limit->dynamic_metadata->metadata_key = mk;
        }
        tr_push_(tx, (void ***)(void *)out, n_out, rl);
    }
    return ok;
}

/* Gloo Enterprise's rate limiting options, refused as Gloo's open-source
 * edition refuses them (its ratelimit translator syncer). */
static void refuse_enterprise(tr_ctx *tx, const char *p, bool basic, bool configs, bool early, bool early_configs,
                              bool regular, bool regular_configs)
{
    static const char why[] = "is Gloo Enterprise's rate-limit API; Sluice configures Envoy's: use ratelimit."
                              "rateLimits with Settings ratelimit.descriptors";
    if (basic)
        tr_error(tx, "%s.ratelimitBasic: not supported by Sluice: it %s (per-client limits: a remoteAddress action)",
                 p, why);
    if (configs)
        tr_error(tx, "%s.rateLimitConfigs: not supported by Sluice: RateLimitConfig %s", p, why);
    if (early || early_configs)
        tr_error(tx, "%s.%s: not supported by Sluice: staged rate limiting %s (rateLimitBeforeAuth places the one "
                     "stage)", p, early ? "ratelimitEarly" : "rateLimitEarlyConfigs", why);
    if (regular || regular_configs)
        tr_error(tx, "%s.%s: not supported by Sluice: staged rate limiting %s", p,
                 regular ? "ratelimitRegular" : "rateLimitRegularConfigs", why);
}

/* Rate limits with no server to ask do nothing: said once per resource. */
static void warn_no_server(tr_ctx *tx, const char *p)
{
    tr_warn(tx, "%s.ratelimit.rateLimits: no effect: Settings has no ratelimitServer.ratelimitServerRef (nor the "
                "gateway an options.ratelimitServer)", p);
}

static void virtual_host(tr_ctx *tx, const tr_vhost_in *in, tr_vhost_t *vh)
{
    const Sluice__V1__VirtualHostOptions *o = in->options;
    const Sluice__V1__RateLimitServerSettings *s;
    const char *where;
    if (!o)
        return;
    refuse_enterprise(tx, in->path, o->ratelimit_basic != NULL, o->rate_limit_configs != NULL,
                      o->ratelimit_early != NULL, o->rate_limit_early_configs != NULL, o->ratelimit_regular != NULL,
                      o->rate_limit_regular_configs != NULL);
    if (!o->ratelimit || !o->ratelimit->n_rate_limits)
        return;
    s = server_of(tx, in->gw, &where);
    if (!has_server(s))
        warn_no_server(tx, in->path);
    rate_limits(tx, o->ratelimit->rate_limits, o->ratelimit->n_rate_limits, stage_of(s),
                tr_printf(tx, "%s.ratelimit.rateLimits", in->path), &vh->rate_limits, &vh->n_rate_limits);
}

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
static void route(tr_ctx *tx, const tr_route_in *in, tr_route_t *r)
{
    const Sluice__V1__RouteOptions *o = in->options;
    const Sluice__V1__RateLimitRouteExtension *e;
    const Sluice__V1__RateLimitServerSettings *s;
    const char *where;
    if (!o)
        return;
    refuse_enterprise(tx, in->path, o->ratelimit_basic != NULL, o->rate_limit_configs != NULL,
                      o->ratelimit_early != NULL, o->rate_limit_early_configs != NULL, o->ratelimit_regular != NULL,
                      o->rate_limit_regular_configs != NULL);
    if (!(e = o->ratelimit) || (!e->n_rate_limits && !e->include_vh_rate_limits))
        return; /* (only a localRatelimit: the local plugin's) */
    if (r->action_case != ENVOY__CONFIG__ROUTE__V3__ROUTE__ACTION_ROUTE) {
        tr_error(tx, "%s.ratelimit: cannot apply rate limits without a route action (a redirect or direct "
                     "response route)", in->path);
        return;
    }
    s = server_of(tx, in->gw, &where);
    if (e->n_rate_limits && !has_server(s))
        warn_no_server(tx, in->path);
    rate_limits(tx, e->rate_limits, e->n_rate_limits, stage_of(s), tr_printf(tx, "%s.ratelimit.rateLimits", in->path),
                &r->route->rate_limits, &r->route->n_rate_limits);
    /* Gloo sets it whenever the route has rate limit options (Envoy's
     * deprecated field, still honoured; RateLimitPerRoute.vh_rate_limits
     * is its successor). */
    r->route->include_vh_rate_limits = tr_bool(tx, e->include_vh_rate_limits);
}
#pragma GCC diagnostic pop

/* ---- the filter -------------------------------------------------------------- */

static void http_filters(tr_ctx *tx, const tr_gateway *gw, tr_hcm_t *hcm, tr_filters *f)
{
    const char *where;
    const Sluice__V1__RateLimitServerSettings *s = server_of(tx, gw, &where);
    Envoy__Extensions__Filters__Http__Ratelimit__V3__RateLimit *rl;
    Envoy__Config__Core__V3__GrpcService *gs;
    const Sluice__V1__Upstream *up;
    const Sluice__V1__ResourceRef *ref;
    const char *ns;
    (void)hcm;
    if (!has_server(s) || gw->proxyless) /* gRPC clients run no rate limit filter */
        return;
    ref = s->ratelimit_server_ref;
    ns = ref->namespace_[0] ? ref->namespace_ : tr_settings_namespace(tx);
    if (!(up = tr_find_upstream(tx, ref, tr_settings_namespace(tx)))) {
        /* as Gloo (ServerNotFound): the listener cannot be built */
        tr_error(tx, "%s.ratelimitServerRef: the rate-limit server upstream %s.%s not found", where, ns, ref->name);
        return;
    }
    rl = TR_NEW(tx, envoy__extensions__filters__http__ratelimit__v3__rate_limit);
    rl->domain = tr_strdup(tx, RL_DOMAIN);
    rl->stage = stage_of(s);
    rl->request_type = tr_strdup(tx, "both");
    rl->timeout = s->request_timeout ? tr_dur(tx, s->request_timeout) : tr_dur_ms(tx, RL_TIMEOUT_MS);
    rl->failure_mode_deny = s->deny_on_fail;
    if (s->enable_x_ratelimit_headers)
        rl->enable_x_ratelimit_headers =
            ENVOY__EXTENSIONS__FILTERS__HTTP__RATELIMIT__V3__RATE_LIMIT__XRATE_LIMIT_HEADERS_RFCVERSION__DRAFT_VERSION_03;
    gs = TR_NEW(tx, envoy__config__core__v3__grpc_service);
    gs->target_specifier_case = ENVOY__CONFIG__CORE__V3__GRPC_SERVICE__TARGET_SPECIFIER_ENVOY_GRPC;
    gs->envoy_grpc = TR_NEW(tx, envoy__config__core__v3__grpc_service__envoy_grpc);
    gs->envoy_grpc->cluster_name =
        tr_cluster_name(tx, up->metadata->name, up->metadata->namespace_[0] ? up->metadata->namespace_ : ns);
    if (s->grpc_service && s->grpc_service->authority[0])
        gs->envoy_grpc->authority = tr_strdup(tx, s->grpc_service->authority);
    rl->rate_limit_service = TR_NEW(tx, envoy__config__ratelimit__v3__rate_limit_service_config);
    rl->rate_limit_service->transport_api_version = ENVOY__CONFIG__CORE__V3__API_VERSION__V3;
    rl->rate_limit_service->grpc_service = gs;
    /* Gloo: before AuthNStage with rateLimitBeforeAuth, else during
     * RateLimitStage (after ext_authz) */
    tr_add_filter(tx, f, s->rate_limit_before_auth ? TR_STAGE_AUTHN - 1 : TR_STAGE_RATELIMIT, RL_FILTER, &rl->base);
}

/* ---- the server's configuration ------------------------------------------- */

typedef Ratelimit__Config__Ratelimit__V3__RateLimitDescriptor rls_desc;

/* descriptors at path p as the server's (what it would refuse is reported
 * and left out); into *out / *n_out. */
static void descriptors(tr_ctx *tx, Sluice__V1__RateLimitDescriptor *const *in, size_t n, const char *p, int depth,
                        rls_desc ***out, size_t *n_out)
{
    if (depth > 32) {
        tr_error(tx, "%s: descriptors nested deeper than 32", p);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const Sluice__V1__RateLimitDescriptor *d = in[i];
        char *q = tr_printf(tx, "%s[%zu]", p, i);
        rls_desc *o;
        bool dup = false;
        if (!d->key[0]) {
            tr_error(tx, "%s.key: required", q);
            continue;
        }
        for (size_t j = 0; j < i && !dup; j++)
            dup = strcmp(in[j]->key, d->key) == 0 && strcmp(in[j]->value, d->value) == 0;
        if (dup) {
            tr_error(tx, "%s: key %s%s%s twice among its siblings (envoyproxy/ratelimit refuses the whole "
                         "configuration)", q, d->key, d->value[0] ? " value " : "", d->value);
            continue;
        }
        if (depth == 0 && d->weight != in[0]->weight) {
            tr_error(tx, "%s.weight: %u differs from %s[0]'s %u: envoyproxy/ratelimit applies every rule, so "
                         "Sluice accepts weights only when all top-level descriptors have the same (Gloo "
                         "Enterprise's rule priority)", q, d->weight, p, in[0]->weight);
            continue;
        }
        o = TR_NEW(tx, ratelimit__config__ratelimit__v3__rate_limit_descriptor);
        o->key = tr_strdup(tx, d->key);
        o->value = tr_strdup(tx, d->value);
        if (d->rate_limit) {
            if (d->rate_limit->unit == SLUICE__V1__RATE_LIMIT_POLICY__UNIT__UNKNOWN) {
                tr_error(tx, "%s.rateLimit.unit: required (SECOND, MINUTE, HOUR, DAY, WEEK, MONTH or YEAR)", q);
                continue;
            }
            o->rate_limit = TR_NEW(tx, ratelimit__config__ratelimit__v3__rate_limit_policy);
            /* the same numbers (envoyproxy/ratelimit's RateLimitUnit) */
            o->rate_limit->unit = (Ratelimit__Config__Ratelimit__V3__RateLimitUnit)d->rate_limit->unit;
            o->rate_limit->requests_per_unit = d->rate_limit->requests_per_unit;
        }
        descriptors(tx, d->descriptors, d->n_descriptors, tr_printf(tx, "%s.descriptors", q), depth + 1,
                    &o->descriptors, &o->n_descriptors);
        tr_push_(tx, (void ***)(void *)out, n_out, o);
    }
}

static const char *server_proxy(tr_ctx *tx)
{
    const Sluice__V1__SettingsSpec *st = tr_settings(tx);
    const Sluice__V1__RateLimitServiceSettings *ss = st->ratelimit;
    Ratelimit__Config__Ratelimit__V3__RateLimitConfig *c;
    if (!ss && !st->ratelimit_server)
        return NULL;
    c = TR_NEW(tx, ratelimit__config__ratelimit__v3__rate_limit_config);
    c->name = tr_strdup(tx, RL_DOMAIN);
    c->domain = tr_strdup(tx, RL_DOMAIN);
    if (ss && ss->n_set_descriptors)
        tr_error(tx, "spec.ratelimit.setDescriptors: not supported by Sluice (Gloo Enterprise's set-style "
                     "descriptors; envoyproxy/ratelimit matches descriptors in order: use descriptors)");
    if (ss)
        descriptors(tx, ss->descriptors, ss->n_descriptors, "spec.ratelimit.descriptors", 0, &c->descriptors,
                    &c->n_descriptors);
    tr_add_resource(tx, SL_XDS_RATELIMIT, c->name, &c->base);
    return tr_printf(tx, "%s~%s", tr_settings_namespace(tx), RL_ROLE);
}

const sl_tr_plugin sl_tr_plugin_ratelimit_global = {
    .name = "ratelimit_global",
    .fields = fields,
    .http_filters = http_filters,
    .virtual_host = virtual_host,
    .route = route,
    .server_proxy = server_proxy,
};
