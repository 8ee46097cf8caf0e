/* jwt: JSON Web Token verification with Envoy's stock jwt_authn filter
 * (Gloo keeps JWT for its enterprise edition; Sluice offers it).
 *
 * A virtual host's providers become providers of the listener's filter,
 * named "<virtual host>_<provider>", and a requirement named after the
 * virtual host (any of its providers; allowMissingOrFailedJwt adds
 * allow_missing_or_failed). The virtual host selects its requirement with a
 * per-filter config; a route with jwt.disable turns verification off. */
#include <string.h>

#include "../plugin.h"
#include "envoy/extensions/filters/http/jwt_authn/v3/config.pb-c.h"
#include "google/protobuf/empty.pb-c.h"

#define JWT_FILTER "envoy.filters.http.jwt_authn"

static const char *const fields[] = {"VirtualHostOptions.jwt", "RouteOptions.jwt", NULL};
const sl_tr_plugin sl_tr_plugin_jwt;

typedef Envoy__Extensions__Filters__Http__JwtAuthn__V3__JwtAuthentication jwt_auth_t;

static jwt_auth_t *state(tr_ctx *tx)
{
    jwt_auth_t *a = tr_state(tx, &sl_tr_plugin_jwt);
    if (!a) {
        a = TR_NEW(tx, envoy__extensions__filters__http__jwt_authn__v3__jwt_authentication);
        tr_set_state(tx, &sl_tr_plugin_jwt, a);
    }
    return a;
}

static Envoy__Extensions__Filters__Http__JwtAuthn__V3__JwtProvider *provider(tr_ctx *tx, const tr_vhost_in *in,
                                                                           const Sluice__V1__JwtProvider *p,
                                                                           const char *path)
{
    Envoy__Extensions__Filters__Http__JwtAuthn__V3__JwtProvider *o =
        TR_NEW(tx, envoy__extensions__filters__http__jwt_authn__v3__jwt_provider);
    o->issuer = tr_strdup(tx, p->issuer);
    for (size_t i = 0; i < p->n_audiences; i++)
        TR_PUSH(tx, o, audiences, tr_strdup(tx, p->audiences[i]));
    o->forward = p->keep_token;
    if (p->token_source) {
        for (size_t i = 0; i < p->token_source->n_headers; i++) {
            Envoy__Extensions__Filters__Http__JwtAuthn__V3__JwtHeader *h =
                TR_NEW(tx, envoy__extensions__filters__http__jwt_authn__v3__jwt_header);
            const char *err = tr_check_header_name(p->token_source->headers[i]->header, false);
            if (err)
                tr_error(tx, "%s.tokenSource.headers[%zu].header: %s", path, i, err);
            h->name = tr_strdup(tx, p->token_source->headers[i]->header);
            h->value_prefix = tr_strdup(tx, p->token_source->headers[i]->prefix);
            TR_PUSH(tx, o, from_headers, h);
        }
        for (size_t i = 0; i < p->token_source->n_query_params; i++)
            TR_PUSH(tx, o, from_params, tr_strdup(tx, p->token_source->query_params[i]));
    }
    for (size_t i = 0; i < p->n_claims_to_headers; i++) {
        Envoy__Extensions__Filters__Http__JwtAuthn__V3__JwtClaimToHeader *c =
            TR_NEW(tx, envoy__extensions__filters__http__jwt_authn__v3__jwt_claim_to_header);
        const char *err = tr_check_header_name(p->claims_to_headers[i]->header, false);
        if (err)
            tr_error(tx, "%s.claimsToHeaders[%zu].header: %s", path, i, err);
        if (!p->claims_to_headers[i]->claim[0])
            tr_error(tx, "%s.claimsToHeaders[%zu].claim: required", path, i);
        if (p->claims_to_headers[i]->append)
            tr_error(tx, "%s.claimsToHeaders[%zu].append: not supported by Envoy's jwt_authn filter", path, i);
        c->claim_name = tr_strdup(tx, p->claims_to_headers[i]->claim);
        c->header_name = tr_strdup(tx, p->claims_to_headers[i]->header);
        TR_PUSH(tx, o, claim_to_headers, c);
    }
    if (!p->jwks) {
        tr_error(tx, "%s.jwks: remote or local is required", path);
        return o;
    }
    if (p->jwks->jwks_case == SLUICE__V1__JWKS__JWKS_REMOTE) {
        const Sluice__V1__RemoteJwks *r = p->jwks->remote;
        const char *ns = in->vs->metadata->namespace_[0] ? in->vs->metadata->namespace_ : "default";
        const Sluice__V1__Upstream *up = tr_find_upstream(tx, r->upstream_ref, ns);
        Envoy__Extensions__Filters__Http__JwtAuthn__V3__RemoteJwks *rj =
            TR_NEW(tx, envoy__extensions__filters__http__jwt_authn__v3__remote_jwks);
        if (strncmp(r->url, "http://", 7) != 0 && strncmp(r->url, "https://", 8) != 0)
            tr_error(tx, "%s.jwks.remote.url: \"%s\" is not an http(s) URL", path, r->url);
        if (!up)
            tr_error(tx, "%s.jwks.remote.upstreamRef: Upstream %s.%s not found", path,
                     r->upstream_ref && r->upstream_ref->namespace_[0] ? r->upstream_ref->namespace_ : ns,
                     r->upstream_ref ? r->upstream_ref->name : "");
        rj->http_uri = TR_NEW(tx, envoy__config__core__v3__http_uri);
        rj->http_uri->uri = tr_strdup(tx, r->url);
        rj->http_uri->http_upstream_type_case = ENVOY__CONFIG__CORE__V3__HTTP_URI__HTTP_UPSTREAM_TYPE_CLUSTER;
        rj->http_uri->cluster = up ? tr_cluster_name(tx, up->metadata->name, up->metadata->namespace_) : "";
        rj->http_uri->timeout = tr_dur_ms(tx, 5000);
        if (r->cache_duration)
            rj->cache_duration = tr_dur(tx, r->cache_duration);
        o->jwks_source_specifier_case = ENVOY__EXTENSIONS__FILTERS__HTTP__JWT_AUTHN__V3__JWT_PROVIDER__JWKS_SOURCE_SPECIFIER_REMOTE_JWKS;
        o->remote_jwks = rj;
    } else if (p->jwks->jwks_case == SLUICE__V1__JWKS__JWKS_LOCAL) {
        if (!p->jwks->local->key[0])
            tr_error(tx, "%s.jwks.local.key: required", path);
        o->jwks_source_specifier_case = ENVOY__EXTENSIONS__FILTERS__HTTP__JWT_AUTHN__V3__JWT_PROVIDER__JWKS_SOURCE_SPECIFIER_LOCAL_JWKS;
        o->local_jwks = tr_inline_string(tx, p->jwks->local->key);
    } else {
        tr_error(tx, "%s.jwks: remote or local is required", path);
    }
    return o;
}

static void virtual_host(tr_ctx *tx, const tr_vhost_in *in, tr_vhost_t *vh)
{
    const Sluice__V1__JwtVhostExtension *j = in->options ? in->options->jwt : NULL;
    jwt_auth_t *a;
    Envoy__Extensions__Filters__Http__JwtAuthn__V3__JwtRequirement *req, *any;
    Envoy__Extensions__Filters__Http__JwtAuthn__V3__JwtAuthentication__RequirementMapEntry *re;
    Envoy__Extensions__Filters__Http__JwtAuthn__V3__PerRouteConfig *pr;
    if (!j)
        return;
    if (j->n_providers == 0) {
        tr_error(tx, "%s.jwt.providers: at least one provider is required", in->path);
        return;
    }
    if (in->gw->proxyless)
        tr_warn(tx, "%s.jwt: gRPC proxyless clients do not run HTTP filters", in->path);
    a = state(tx);
    any = TR_NEW(tx, envoy__extensions__filters__http__jwt_authn__v3__jwt_requirement);
    any->requires_type_case = ENVOY__EXTENSIONS__FILTERS__HTTP__JWT_AUTHN__V3__JWT_REQUIREMENT__REQUIRES_TYPE_REQUIRES_ANY;
    any->requires_any = TR_NEW(tx, envoy__extensions__filters__http__jwt_authn__v3__jwt_requirement_or_list);
    for (size_t i = 0; i < j->n_providers; i++) {
        Envoy__Extensions__Filters__Http__JwtAuthn__V3__JwtAuthentication__ProvidersEntry *pe =
            TR_NEW(tx, envoy__extensions__filters__http__jwt_authn__v3__jwt_authentication__providers_entry);
        const char *name = tr_printf(tx, "%s_%s", vh->name, j->providers[i]->key);
        pe->key = tr_strdup(tx, name);
        pe->value = provider(tx, in, j->providers[i]->value, tr_printf(tx, "%s.jwt.providers.%s", in->path, j->providers[i]->key));
        TR_PUSH(tx, a, providers, pe);
        req = TR_NEW(tx, envoy__extensions__filters__http__jwt_authn__v3__jwt_requirement);
        req->requires_type_case = ENVOY__EXTENSIONS__FILTERS__HTTP__JWT_AUTHN__V3__JWT_REQUIREMENT__REQUIRES_TYPE_PROVIDER_NAME;
        req->provider_name = tr_strdup(tx, name);
        TR_PUSH(tx, any->requires_any, requirements, req);
    }
    if (j->allow_missing_or_failed_jwt) {
        req = TR_NEW(tx, envoy__extensions__filters__http__jwt_authn__v3__jwt_requirement);
        req->requires_type_case =
            ENVOY__EXTENSIONS__FILTERS__HTTP__JWT_AUTHN__V3__JWT_REQUIREMENT__REQUIRES_TYPE_ALLOW_MISSING_OR_FAILED;
        req->allow_missing_or_failed = TR_NEW(tx, google__protobuf__empty);
        TR_PUSH(tx, any->requires_any, requirements, req);
    }
    if (any->requires_any->n_requirements == 1)
        any = any->requires_any->requirements[0]; /* requires_any needs two or more */
    re = TR_NEW(tx, envoy__extensions__filters__http__jwt_authn__v3__jwt_authentication__requirement_map_entry);
    re->key = tr_strdup(tx, vh->name);
    re->value = any;
    TR_PUSH(tx, a, requirement_map, re);
    pr = TR_NEW(tx, envoy__extensions__filters__http__jwt_authn__v3__per_route_config);
    pr->requirement_specifier_case =
        ENVOY__EXTENSIONS__FILTERS__HTTP__JWT_AUTHN__V3__PER_ROUTE_CONFIG__REQUIREMENT_SPECIFIER_REQUIREMENT_NAME;
    pr->requirement_name = tr_strdup(tx, vh->name);
    tr_vhost_filter_config(tx, vh, JWT_FILTER, &pr->base);
}

static void route(tr_ctx *tx, const tr_route_in *in, tr_route_t *r)
{
    Envoy__Extensions__Filters__Http__JwtAuthn__V3__PerRouteConfig *pr;
    if (!in->options || !in->options->jwt || !in->options->jwt->disable)
        return;
    pr = TR_NEW(tx, envoy__extensions__filters__http__jwt_authn__v3__per_route_config);
    pr->requirement_specifier_case = ENVOY__EXTENSIONS__FILTERS__HTTP__JWT_AUTHN__V3__PER_ROUTE_CONFIG__REQUIREMENT_SPECIFIER_DISABLED;
    pr->disabled = 1;
    tr_route_filter_config(tx, r, JWT_FILTER, &pr->base);
}

/* Whether the requirement r names the provider called name. */
static bool requires_provider(const Envoy__Extensions__Filters__Http__JwtAuthn__V3__JwtRequirement *r,
                              const char *name)
{
    if (r->requires_type_case == ENVOY__EXTENSIONS__FILTERS__HTTP__JWT_AUTHN__V3__JWT_REQUIREMENT__REQUIRES_TYPE_PROVIDER_NAME)
        return strcmp(r->provider_name, name) == 0;
    if (r->requires_type_case == ENVOY__EXTENSIONS__FILTERS__HTTP__JWT_AUTHN__V3__JWT_REQUIREMENT__REQUIRES_TYPE_REQUIRES_ANY)
        for (size_t i = 0; i < r->requires_any->n_requirements; i++)
            if (requires_provider(r->requires_any->requirements[i], name))
                return true;
    return false;
}

/* The virtual host's requirement and the providers it names go. */
static void forget(tr_ctx *tx, const char *vhost)
{
    jwt_auth_t *a = tr_state(tx, &sl_tr_plugin_jwt);
    size_t k = 0;
    if (!a)
        return;
    for (size_t i = 0; i < a->n_requirement_map; i++) {
        const Envoy__Extensions__Filters__Http__JwtAuthn__V3__JwtAuthentication__RequirementMapEntry *re =
            a->requirement_map[i];
        if (strcmp(re->key, vhost) != 0) {
            a->requirement_map[k++] = a->requirement_map[i];
            continue;
        }
        size_t n = 0;
        for (size_t p = 0; p < a->n_providers; p++)
            if (!requires_provider(re->value, a->providers[p]->key))
                a->providers[n++] = a->providers[p];
        a->n_providers = n;
    }
    a->n_requirement_map = k;
}

static void http_filters(tr_ctx *tx, const tr_gateway *gw, tr_hcm_t *hcm, tr_filters *f)
{
    jwt_auth_t *a = tr_state(tx, &sl_tr_plugin_jwt);
    (void)gw;
    (void)hcm;
    if (a && a->n_providers)
        tr_add_filter(tx, f, TR_STAGE_AUTHN, JWT_FILTER, &a->base);
}

const sl_tr_plugin sl_tr_plugin_jwt = {
    .name = "jwt",
    .fields = fields,
    .http_filters = http_filters,
    .virtual_host = virtual_host,
    .route = route,
    .forget = forget,
};
