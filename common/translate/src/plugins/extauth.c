/* extauth: external authorization with Envoy's ext_authz filter (gRPC).
 *
 * The server is the Settings' extauth.extauthzServerRef upstream. A virtual
 * host or route with options.extauth.customAuth turns the check on (an
 * ExtAuthzPerRoute with its contextExtensions); the filter is in the chain
 * disabled, so everything else is not checked; extauth.disable turns it off
 * again on a route. configRef (Gloo Enterprise's AuthConfig) and named
 * servers are not supported. */
#include <string.h>

#include "../plugin.h"
#include "envoy/extensions/filters/http/ext_authz/v3/ext_authz.pb-c.h"
#include "envoy/type/v3/http_status.pb-c.h"

#define EXT_AUTHZ "envoy.filters.http.ext_authz"

static const char *const fields[] = {"VirtualHostOptions.extauth", "RouteOptions.extauth", NULL};
const sl_tr_plugin sl_tr_plugin_extauth;

static const Sluice__V1__ExtAuthSettings *server(tr_ctx *tx) { return tr_settings(tx)->extauth; }

/* The per-filter config for opt (NULL when there is nothing to set). */
static const ProtobufCMessage *per_route(tr_ctx *tx, const Sluice__V1__ExtAuthExtension *e, const char *path)
{
    Envoy__Extensions__Filters__Http__ExtAuthz__V3__ExtAuthzPerRoute *pr;
    const Sluice__V1__ExtAuthSettings *s = server(tx);
    switch (e->spec_case) {
    case SLUICE__V1__EXT_AUTH_EXTENSION__SPEC_DISABLE:
        if (!e->disable)
            return NULL;
        pr = TR_NEW(tx, envoy__extensions__filters__http__ext_authz__v3__ext_authz_per_route);
        pr->override_case = ENVOY__EXTENSIONS__FILTERS__HTTP__EXT_AUTHZ__V3__EXT_AUTHZ_PER_ROUTE__OVERRIDE_DISABLED;
        pr->disabled = 1;
        return &pr->base;
    case SLUICE__V1__EXT_AUTH_EXTENSION__SPEC_CONFIG_REF:
        tr_error(tx, "%s.extauth.configRef: not supported by Sluice (AuthConfig resources are Gloo Enterprise's); "
                     "use customAuth with Settings extauth", path);
        return NULL;
    case SLUICE__V1__EXT_AUTH_EXTENSION__SPEC_CUSTOM_AUTH:
        break;
    default:
        return NULL;
    }
    if (e->custom_auth->name[0]) {
        tr_error(tx, "%s.extauth.customAuth.name: named servers are not supported by Sluice (one server: Settings "
                     "extauth)", path);
        return NULL;
    }
    if (!s || !s->extauthz_server_ref || !s->extauthz_server_ref->name[0]) {
        tr_error(tx, "%s.extauth.customAuth: Settings %s.default has no extauth server (spec.extauth."
                     "extauthzServerRef)", path, tr_settings_namespace(tx));
        return NULL;
    }
    if (!tr_find_upstream(tx, s->extauthz_server_ref, tr_settings_namespace(tx))) {
        tr_error(tx, "%s.extauth.customAuth: the extauth server upstream %s.%s (Settings extauth.extauthzServerRef) "
                     "not found", path,
                 s->extauthz_server_ref->namespace_[0] ? s->extauthz_server_ref->namespace_ : tr_settings_namespace(tx),
                 s->extauthz_server_ref->name);
        return NULL;
    }
    pr = TR_NEW(tx, envoy__extensions__filters__http__ext_authz__v3__ext_authz_per_route);
    pr->override_case = ENVOY__EXTENSIONS__FILTERS__HTTP__EXT_AUTHZ__V3__EXT_AUTHZ_PER_ROUTE__OVERRIDE_CHECK_SETTINGS;
    pr->check_settings = TR_NEW(tx, envoy__extensions__filters__http__ext_authz__v3__check_settings);
    for (size_t i = 0; i < e->custom_auth->n_context_extensions; i++) {
        Envoy__Extensions__Filters__Http__ExtAuthz__V3__CheckSettings__ContextExtensionsEntry *ce =
            TR_NEW(tx, envoy__extensions__filters__http__ext_authz__v3__check_settings__context_extensions_entry);
        ce->key = tr_strdup(tx, e->custom_auth->context_extensions[i]->key);
        ce->value = tr_strdup(tx, e->custom_auth->context_extensions[i]->value);
        TR_PUSH(tx, pr->check_settings, context_extensions, ce);
    }
    tr_use(tx, &sl_tr_plugin_extauth);
    return &pr->base;
}

static void virtual_host(tr_ctx *tx, const tr_vhost_in *in, tr_vhost_t *vh)
{
    const ProtobufCMessage *m;
    if (!in->options || !in->options->extauth)
        return;
    if ((m = per_route(tx, in->options->extauth, in->path)) != NULL)
        tr_vhost_filter_config(tx, vh, EXT_AUTHZ, m);
}

static void route(tr_ctx *tx, const tr_route_in *in, tr_route_t *r)
{
    const ProtobufCMessage *m;
    if (!in->options || !in->options->extauth)
        return;
    if ((m = per_route(tx, in->options->extauth, in->path)) != NULL)
        tr_route_filter_config(tx, r, EXT_AUTHZ, m);
}

static void http_filters(tr_ctx *tx, const tr_gateway *gw, tr_hcm_t *hcm, tr_filters *f)
{
    const Sluice__V1__ExtAuthSettings *s = server(tx);
    Envoy__Extensions__Filters__Http__ExtAuthz__V3__ExtAuthz *ea;
    Envoy__Config__Core__V3__GrpcService *gs;
    const Sluice__V1__Upstream *up;
    (void)hcm;
    if (!tr_used(tx, &sl_tr_plugin_extauth) || !s || !s->extauthz_server_ref ||
        !(up = tr_find_upstream(tx, s->extauthz_server_ref, tr_settings_namespace(tx))))
        return;
    ea = TR_NEW(tx, envoy__extensions__filters__http__ext_authz__v3__ext_authz);
    ea->transport_api_version = ENVOY__CONFIG__CORE__V3__API_VERSION__V3;
    ea->failure_mode_allow = s->failure_mode_allow;
    ea->clear_route_cache = s->clear_route_cache;
    gs = TR_NEW(tx, envoy__config__core__v3__grpc_service);
    gs->target_specifier_case = ENVOY__CONFIG__CORE__V3__GRPC_SERVICE__TARGET_SPECIFIER_ENVOY_GRPC;
    gs->envoy_grpc = TR_NEW(tx, envoy__config__core__v3__grpc_service__envoy_grpc);
    gs->envoy_grpc->cluster_name =
        tr_cluster_name(tx, up->metadata->name, up->metadata->namespace_[0] ? up->metadata->namespace_ : "default");
    gs->timeout = s->request_timeout ? tr_dur(tx, s->request_timeout) : tr_dur_ms(tx, 200);
    ea->services_case = ENVOY__EXTENSIONS__FILTERS__HTTP__EXT_AUTHZ__V3__EXT_AUTHZ__SERVICES_GRPC_SERVICE;
    ea->grpc_service = gs;
    if (s->request_body) {
        ea->with_request_body = TR_NEW(tx, envoy__extensions__filters__http__ext_authz__v3__buffer_settings);
        ea->with_request_body->max_request_bytes = s->request_body->max_request_bytes;
        ea->with_request_body->allow_partial_message = s->request_body->allow_partial_message;
        ea->with_request_body->pack_as_bytes = s->request_body->pack_as_bytes;
        if (!s->request_body->max_request_bytes)
            tr_warn(tx, "Settings extauth.requestBody.maxRequestBytes: 0 sends no body");
    }
    if (s->status_on_error) {
        if (!protobuf_c_enum_descriptor_get_value(&envoy__type__v3__status_code__descriptor, (int)s->status_on_error)) {
            tr_warn(tx, "Settings extauth.statusOnError: %u is not an HTTP status Envoy knows; 403 is used",
                    s->status_on_error);
        } else {
            ea->status_on_error = TR_NEW(tx, envoy__type__v3__http_status);
            ea->status_on_error->code = (Envoy__Type__V3__StatusCode)s->status_on_error;
        }
    }
    if (gw->proxyless)
        return; /* gRPC clients run no ext_authz */
    tr_add_filter(tx, f, TR_STAGE_AUTHZ, EXT_AUTHZ, &ea->base);
    tr_disable_filter(f, EXT_AUTHZ);
}

const sl_tr_plugin sl_tr_plugin_extauth = {
    .name = "extauth",
    .fields = fields,
    .http_filters = http_filters,
    .virtual_host = virtual_host,
    .route = route,
};
