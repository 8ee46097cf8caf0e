/* traffic: shadowing (request_mirror_policies), lbHash (hash_policy) and
 * websocket upgrades (upgrade_configs) of a route. */
#include <string.h>

#include "../plugin.h"

static const char *const fields[] = {"RouteOptions.shadowing", "RouteOptions.lb_hash", "RouteOptions.upgrades", NULL};

static void route(tr_ctx *tx, const tr_route_in *in, tr_route_t *r)
{
    const Sluice__V1__RouteOptions *o = in->options;
    Envoy__Config__Route__V3__RouteAction *ra;
    if (!o || (!o->shadowing && !o->lb_hash && !o->n_upgrades))
        return;
    if (r->action_case != ENVOY__CONFIG__ROUTE__V3__ROUTE__ACTION_ROUTE) {
        if (in->route->options && (in->route->options->shadowing || in->route->options->lb_hash ||
                                   in->route->options->n_upgrades))
            tr_warn(tx, "%s: shadowing, lbHash and upgrades apply only to routes with a routeAction", in->path);
        return;
    }
    ra = r->route;
    if (o->shadowing) {
        const Sluice__V1__RouteShadowing *s = o->shadowing;
        const char *def_ns = in->vs && in->vs->metadata && in->vs->metadata->namespace_[0] ? in->vs->metadata->namespace_
                                                                                             : "default";
        const Sluice__V1__Upstream *up = tr_find_upstream(tx, s->upstream, def_ns);
        if (s->percentage < 0 || s->percentage > 100)
            tr_error(tx, "%s.shadowing.percentage: %g is not between 0 and 100", in->path, s->percentage);
        if (!up) {
            tr_warn(tx, "Route Warning: InvalidDestinationWarning. Reason: shadowing Upstream %s.%s not found",
                    s->upstream && s->upstream->namespace_[0] ? s->upstream->namespace_ : def_ns,
                    s->upstream ? s->upstream->name : "");
        } else {
            Envoy__Config__Route__V3__RouteAction__RequestMirrorPolicy *m =
                TR_NEW(tx, envoy__config__route__v3__route_action__request_mirror_policy);
            m->cluster = tr_cluster_name(tx, up->metadata->name, up->metadata->namespace_);
            m->runtime_fraction = TR_NEW(tx, envoy__config__core__v3__runtime_fractional_percent);
            m->runtime_fraction->default_value = TR_NEW(tx, envoy__type__v3__fractional_percent);
            m->runtime_fraction->default_value->numerator = (uint32_t)(s->percentage * 10000.0f + 0.5f);
            m->runtime_fraction->default_value->denominator = ENVOY__TYPE__V3__FRACTIONAL_PERCENT__DENOMINATOR_TYPE__MILLION;
            m->disable_shadow_host_suffix_append = s->disable_shadow_host_suffix_append;
            TR_PUSH(tx, ra, request_mirror_policies, m);
        }
    }
    if (o->lb_hash) {
        for (size_t i = 0; i < o->lb_hash->n_hash_policies; i++) {
            const Sluice__V1__HashPolicy *h = o->lb_hash->hash_policies[i];
            Envoy__Config__Route__V3__RouteAction__HashPolicy *hp =
                TR_NEW(tx, envoy__config__route__v3__route_action__hash_policy);
            hp->terminal = h->terminal;
            switch (h->key_type_case) {
            case SLUICE__V1__HASH_POLICY__KEY_TYPE_HEADER: {
                const char *err = tr_check_header_name(h->header, true);
                if (err)
                    tr_error(tx, "%s.lbHash.hashPolicies[%zu].header: %s", in->path, i, err);
                hp->policy_specifier_case = ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__HASH_POLICY__POLICY_SPECIFIER_HEADER;
                hp->header = TR_NEW(tx, envoy__config__route__v3__route_action__hash_policy__header);
                hp->header->header_name = tr_strdup(tx, h->header);
                break;
            }
            case SLUICE__V1__HASH_POLICY__KEY_TYPE_COOKIE:
                if (!h->cookie->name[0])
                    tr_error(tx, "%s.lbHash.hashPolicies[%zu].cookie.name: required", in->path, i);
                hp->policy_specifier_case = ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__HASH_POLICY__POLICY_SPECIFIER_COOKIE;
                hp->cookie = TR_NEW(tx, envoy__config__route__v3__route_action__hash_policy__cookie);
                hp->cookie->name = tr_strdup(tx, h->cookie->name);
                hp->cookie->path = tr_strdup(tx, h->cookie->path);
                if (h->cookie->ttl)
                    hp->cookie->ttl = tr_dur(tx, h->cookie->ttl);
                break;
            case SLUICE__V1__HASH_POLICY__KEY_TYPE_SOURCE_IP:
                hp->policy_specifier_case =
                    ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__HASH_POLICY__POLICY_SPECIFIER_CONNECTION_PROPERTIES;
                hp->connection_properties =
                    TR_NEW(tx, envoy__config__route__v3__route_action__hash_policy__connection_properties);
                hp->connection_properties->source_ip = h->source_ip;
                break;
            default:
                tr_error(tx, "%s.lbHash.hashPolicies[%zu]: header, cookie or sourceIp is required", in->path, i);
                continue;
            }
            TR_PUSH(tx, ra, hash_policy, hp);
        }
    }
    for (size_t i = 0; i < o->n_upgrades; i++) {
        const Sluice__V1__ProtocolUpgradeConfig *u = o->upgrades[i];
        Envoy__Config__Route__V3__RouteAction__UpgradeConfig *uc;
        if (u->upgrade_type_case != SLUICE__V1__PROTOCOL_UPGRADE_CONFIG__UPGRADE_TYPE_WEBSOCKET) {
            tr_error(tx, "%s.upgrades[%zu]: websocket is required", in->path, i);
            continue;
        }
        uc = TR_NEW(tx, envoy__config__route__v3__route_action__upgrade_config);
        uc->upgrade_type = tr_strdup(tx, "websocket");
        uc->enabled = tr_bool(tx, !u->websocket->enabled || u->websocket->enabled->value);
        TR_PUSH(tx, ra, upgrade_configs, uc);
    }
}

const sl_tr_plugin sl_tr_plugin_traffic = {
    .name = "traffic",
    .fields = fields,
    .route = route,
};
