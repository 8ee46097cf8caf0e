/* listener.c - Gateways -> Listeners: validation, the route configuration
 * they name, the HTTP connection manager and its filters, gRPC API listeners. */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "envoy/extensions/filters/http/router/v3/router.pb-c.h"
#include "envoy/extensions/filters/listener/tls_inspector/v3/tls_inspector.pb-c.h"
#include "sluice/kinds.h"
#include "translate_internal.h"

static Envoy__Config__Listener__V3__Filter *hcm_filter(tr_ctx *tx, tr_hcm_t *hcm)
{
    Envoy__Config__Listener__V3__Filter *f = TR_NEW(tx, envoy__config__listener__v3__filter);
    f->name = tr_strdup(tx, "envoy.filters.network.http_connection_manager");
    f->config_type_case = ENVOY__CONFIG__LISTENER__V3__FILTER__CONFIG_TYPE_TYPED_CONFIG;
    f->typed_config = tr_any(tx, &hcm->base);
    return f;
}

static tr_hcm_t *new_hcm(tr_ctx *tx, const char *stat_prefix, const char *route_name)
{
    tr_hcm_t *hcm = TR_NEW(tx, envoy__extensions__filters__network__http_connection_manager__v3__http_connection_manager);
    hcm->stat_prefix = tr_strdup(tx, stat_prefix);
    hcm->route_specifier_case =
        ENVOY__EXTENSIONS__FILTERS__NETWORK__HTTP_CONNECTION_MANAGER__V3__HTTP_CONNECTION_MANAGER__ROUTE_SPECIFIER_RDS;
    hcm->rds = TR_NEW(tx, envoy__extensions__filters__network__http_connection_manager__v3__rds);
    hcm->rds->config_source = tr_ads(tx);
    hcm->rds->route_config_name = tr_strdup(tx, route_name);
    return hcm;
}

static void add_router(tr_ctx *tx, tr_hcm_t *hcm)
{
    Envoy__Extensions__Filters__Http__Router__V3__Router *router = TR_NEW(tx, envoy__extensions__filters__http__router__v3__router);
    Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpFilter *hf =
        TR_NEW(tx, envoy__extensions__filters__network__http_connection_manager__v3__http_filter);
    hf->name = tr_strdup(tx, "envoy.filters.http.router");
    hf->config_type_case =
        ENVOY__EXTENSIONS__FILTERS__NETWORK__HTTP_CONNECTION_MANAGER__V3__HTTP_FILTER__CONFIG_TYPE_TYPED_CONFIG;
    hf->typed_config = tr_any(tx, &router->base);
    TR_PUSH(tx, hcm, http_filters, hf);
}

static int cmp_vhost(const void *a, const void *b)
{
    const tr_vs_item *x = a, *y = b;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* spec.grpcApiListeners: the gateway also serves gRPC proxyless clients. */
bool tr_gw_proxyless(const Sluice__V1__Gateway *g)
{
    return g->spec && g->spec->grpc_api_listeners && g->spec->grpc_api_listeners->value;
}
/* Checks gateway g (bound to bind) before anything is made of it, and
 * claims its port among the proxy's (ports); false when it cannot be
 * served (reported). */
static bool gateway_valid(tr_ctx *tx, const tr_gw_item *g, const char *bind, const char *proxy, tr_map *ports)
{
    const Sluice__V1__GatewaySpec *spec = g->gw->spec;
    const Sluice__V1__HttpGateway *hg;
    tr_bucket *vb = tr_bucket_of(tx, tr_kind.vs);
    unsigned char addr[16];
    const char *port_key;
    const tr_gw_item *other;
    int ways;

    if (sl_kind_annotation(g->gw->metadata, "sluice.io/grpc-api-listeners"))
        tr_warn(tx, "metadata.annotations[sluice.io/grpc-api-listeners]: ignored; set spec.grpcApiListeners: true");
    if (spec->bind_port == 0 || spec->bind_port > 65535) {
        tr_error(tx, "spec.bindPort: %u is not a port (1-65535)", spec->bind_port);
        return false;
    }
    if (inet_pton(AF_INET6, bind, addr) != 1 && inet_pton(AF_INET, bind, addr) != 1) {
        tr_error(tx, "spec.bindAddress: \"%s\" is not an IP address", bind);
        return false;
    }
    if (spec->gateway_type_case != SLUICE__V1__GATEWAY_SPEC__GATEWAY_TYPE_HTTP_GATEWAY) {
        tr_error(tx, "spec.httpGateway: required (the only gateway type Sluice supports)");
        return false;
    }
    port_key = tr_printf(tx, "%u", spec->bind_port);
    if ((other = tr_map_get(ports, port_key)) != NULL) {
        tr_error(tx, "spec.bindPort: port %u of proxy %s is already used by Gateway %s.%s", spec->bind_port, proxy,
                 other->ns, other->name);
        return false;
    }
    tr_map_put(tx, ports, port_key, (void *)g);
    /* spec.useProxyProto: plugins/listener.c */
    if (spec->options)
        tr_check_fields(tx, &tx->supported, &spec->options->base, "spec.options");
    if (spec->http_gateway->options)
        tr_check_fields(tx, &tx->supported, &spec->http_gateway->options->base, "spec.httpGateway.options");
    hg = spec->http_gateway;
    ways = (hg->n_virtual_services > 0) + (hg->n_virtual_service_selector > 0) + (hg->virtual_service_expressions != NULL);
    if (ways > 1)
        tr_error(tx, "spec.httpGateway: use at most one of virtualServices, virtualServiceSelector and "
                     "virtualServiceExpressions");
    for (size_t i = 0; i < hg->n_virtual_services; i++) {
        const Sluice__V1__ResourceRef *r = hg->virtual_services[i];
        const char *ns = r->namespace_ && r->namespace_[0] ? r->namespace_ : g->ns;
        if (tr_bucket_find(vb, ns, r->name) < 0)
            tr_warn(tx, "spec.httpGateway.virtualServices[%zu]: VirtualService %s.%s not found", i, ns, r->name);
    }
    return true;
}

/* Brings the gateway's memo up to date with what its virtual services
 * gave (v), after the route was patched from it, or not (*patched NULL:
 * then the virtual hosts it left out are made now). */
static void memo_update(tr_ctx *tx, const tr_gateway *gw, tr_gw_vhosts *v, const char *rname, tr_blob **patched)
{
    bool dropped = false;
    if (v->lazy && !(*patched = tr_route_patched(tx, v->memo, v->changed, v->items, v->n_items, rname))) {
        tr_vh_materialize(tx, v->memo, v->items, v->n_items);
        v->lazy = false;
    }
    for (size_t k = 0; k < v->n_items && !dropped; k++)
        dropped = v->items[k].dropped;
    tr_memo_keep(tx, v->changed ? v->memo : tr_memo_find(tx, gw->proxy, gw->listener_name), gw, v->got, v->served,
                 v->changed, dropped);
}

/* The gateway's RouteConfiguration named rname: the virtual hosts of v
 * not dropped, in VirtualService order (none when patched). NULL when
 * there is nothing to serve: as Gloo, no virtual service, no listener. */
static Envoy__Config__Route__V3__RouteConfiguration *route_config(tr_ctx *tx, tr_gw_vhosts *v, const char *rname,
                                                                  const tr_blob *patched)
{
    Envoy__Config__Route__V3__RouteConfiguration *rcfg = TR_NEW(tx, envoy__config__route__v3__route_configuration);
    size_t k = 1;
    rcfg->name = tr_strdup(tx, rname);
    while (k < v->n_items && cmp_vhost(&v->items[k - 1], &v->items[k]) <= 0)
        k++;
    if (k < v->n_items) /* usually in order already */
        qsort(v->items, v->n_items, sizeof *v->items, cmp_vhost);
    for (k = 0; k < v->n_items && !patched; k++)
        if (!v->items[k].dropped)
            TR_PUSH(tx, rcfg, virtual_hosts, v->items[k].vh);
    if (!patched && rcfg->n_virtual_hosts == 0 &&
        !(tx->settings->gateway && tx->settings->gateway->translate_empty_gateways &&
          tx->settings->gateway->translate_empty_gateways->value))
        return NULL;
    return rcfg;
}

/* Adds the gateway's route configuration to the proxy: the one patched
 * from the memo's, the memo's own when it serves the same virtual hosts,
 * or rcfg, packed later (and kept in the memo then). */
static void route_config_add(tr_ctx *tx, const tr_gateway *gw, const tr_gw_vhosts *v, tr_blob *patched,
                             Envoy__Config__Route__V3__RouteConfiguration *rcfg)
{
    tr_gw_memo *memo = v->changed ? tr_memo_find(tx, gw->proxy, gw->listener_name) : NULL;
    tr_blob *last;
    if (patched) {
        if (tr_out_add_shared(tx, SL_XDS_ROUTE, patched) && memo)
            tx->out[SL_XDS_ROUTE][tx->n_out[SL_XDS_ROUTE] - 1]->keep_in = memo;
    } else if ((last = tr_memo_route(tx, memo, rcfg->name)) != NULL) {
        tr_out_add_shared(tx, SL_XDS_ROUTE, last);
    } else if (tr_out_add(tx, SL_XDS_ROUTE, rcfg->name, &rcfg->base) &&
               (memo = tr_memo_find(tx, gw->proxy, gw->listener_name)) != NULL) {
        tx->out[SL_XDS_ROUTE][tx->n_out[SL_XDS_ROUTE] - 1]->keep_in = memo;
    }
}

/* The HTTP connection manager of the gateway (routes from rname): the
 * plugins' filters by stage, then the router. */
static tr_hcm_t *http_connection_manager(tr_ctx *tx, const tr_gateway *gw, const char *rname)
{
    tr_hcm_t *hcm = new_hcm(tx, "http", rname);
    tr_filters filters = {0};
    for (size_t p = 0; p < sl_tr_plugin_count; p++)
        if (sl_tr_plugins[p]->http_filters)
            sl_tr_plugins[p]->http_filters(tx, gw, hcm, &filters);
    for (size_t i = 1; i < filters.n; i++) /* stable insertion sort by stage */
        for (size_t j = i; j > 0 && filters.v[j - 1].stage > filters.v[j].stage; j--) {
            struct tr_filter_item t = filters.v[j - 1];
            filters.v[j - 1] = filters.v[j];
            filters.v[j] = t;
        }
    for (size_t i = 0; i < filters.n; i++)
        TR_PUSH(tx, hcm, http_filters, filters.v[i].f);
    add_router(tx, hcm);
    return hcm;
}

/* The gateway's Listener on bind and its port: one filter chain (or, with
 * ssl, the n SNI chains behind a TLS inspector) holding hcm; then the
 * plugins' listener hooks. */
static void gateway_listener(tr_ctx *tx, const tr_gateway *gw, const char *bind, tr_hcm_t *hcm,
                             Envoy__Config__Listener__V3__FilterChain **chains, size_t n)
{
    const Sluice__V1__GatewaySpec *spec = gw->gw->spec;
    tr_listener_t *l = TR_NEW(tx, envoy__config__listener__v3__listener);
    l->name = tr_strdup(tx, gw->listener_name);
    l->address = TR_NEW(tx, envoy__config__core__v3__address);
    l->address->address_case = ENVOY__CONFIG__CORE__V3__ADDRESS__ADDRESS_SOCKET_ADDRESS;
    l->address->socket_address = TR_NEW(tx, envoy__config__core__v3__socket_address);
    l->address->socket_address->address = tr_strdup(tx, bind);
    l->address->socket_address->port_specifier_case = ENVOY__CONFIG__CORE__V3__SOCKET_ADDRESS__PORT_SPECIFIER_PORT_VALUE;
    l->address->socket_address->port_value = spec->bind_port;
    if (strcmp(bind, "::") == 0)
        l->address->socket_address->ipv4_compat = 1;
    if (spec->ssl) {
        Envoy__Config__Listener__V3__ListenerFilter *lf = TR_NEW(tx, envoy__config__listener__v3__listener_filter);
        Envoy__Extensions__Filters__Listener__TlsInspector__V3__TlsInspector *ti =
            TR_NEW(tx, envoy__extensions__filters__listener__tls_inspector__v3__tls_inspector);
        Envoy__Config__Listener__V3__Filter *f = hcm_filter(tx, hcm);
        lf->name = tr_strdup(tx, "envoy.filters.listener.tls_inspector");
        lf->config_type_case = ENVOY__CONFIG__LISTENER__V3__LISTENER_FILTER__CONFIG_TYPE_TYPED_CONFIG;
        lf->typed_config = tr_any(tx, &ti->base);
        TR_PUSH(tx, l, listener_filters, lf);
        for (size_t c = 0; c < n; c++) {
            TR_PUSH(tx, chains[c], filters, f);
            TR_PUSH(tx, l, filter_chains, chains[c]);
        }
    } else {
        Envoy__Config__Listener__V3__FilterChain *fc = TR_NEW(tx, envoy__config__listener__v3__filter_chain);
        TR_PUSH(tx, fc, filters, hcm_filter(tx, hcm));
        TR_PUSH(tx, l, filter_chains, fc);
    }
    for (size_t p = 0; p < sl_tr_plugin_count; p++)
        if (sl_tr_plugins[p]->listener)
            sl_tr_plugins[p]->listener(tx, gw, l);
    if (!tr_out_add(tx, SL_XDS_LISTENER, gw->listener_name, &l->base))
        tr_error(tx, "listener %s of proxy %s is defined twice", gw->listener_name, gw->proxy);
}

/* gRPC proxyless clients: a listener named as each domain of v's virtual
 * hosts, holding an api_listener HTTP connection manager with only the
 * router. */
static void grpc_api_listeners(tr_ctx *tx, const tr_gateway *gw, const char *rname, const tr_gw_vhosts *v)
{
    tr_hcm_t *ah = new_hcm(tx, tr_printf(tx, "grpc-%s", gw->listener_name), rname);
    add_router(tx, ah);
    for (size_t k = 0; k < v->n_items; k++) {
        if (v->items[k].dropped)
            continue;
        for (size_t d = 0; d < v->items[k].vh->n_domains; d++) {
            const char *dom = v->items[k].vh->domains[d];
            tr_listener_t *al;
            if (strchr(dom, '*'))
                continue;
            al = TR_NEW(tx, envoy__config__listener__v3__listener);
            al->name = tr_strdup(tx, dom);
            al->api_listener = TR_NEW(tx, envoy__config__listener__v3__api_listener);
            al->api_listener->api_listener = tr_any(tx, &ah->base);
            if (!tr_out_add(tx, SL_XDS_LISTENER, dom, &al->base))
                tr_warn(tx, "gRPC listener %s is defined by more than one gateway of proxy %s; the first is served",
                        dom, gw->proxy);
        }
    }
}

void tr_translate_gateway(tr_ctx *tx, const tr_gw_item *g, const char *proxy, tr_map *ports)
{
    const Sluice__V1__GatewaySpec *spec = g->gw->spec;
    tr_cur gcur = {tr_kind.gateway, g->ns, g->name, 0};
    tr_cur *saved = tx->cur;
    const char *bind = spec->bind_address && spec->bind_address[0] ? spec->bind_address : "::";
    const char *lname = tr_printf(tx, "listener-%s-%u", bind, spec->bind_port);
    const char *rname = tr_printf(tx, "%s-routes", lname);
    tr_gateway gw = {g->gw, proxy, lname, tr_gw_proxyless(g->gw)};
    tr_gw_vhosts v = {0};
    Envoy__Config__Route__V3__RouteConfiguration *rcfg;
    Envoy__Config__Listener__V3__FilterChain **chains = NULL;
    size_t n_chains = 0;
    tr_blob *patched = NULL;
    tr_hcm_t *hcm;

    tx->cur = g->idx >= 0 ? &gcur : NULL;
    if (!gateway_valid(tx, g, bind, proxy, ports) || gcur.errors)
        goto out;
    /* Virtual services -> virtual hosts (the unchanged ones from the
     * gateway's memo when only virtual services changed since); domains
     * are unique per gateway. */
    tr_gateway_vhosts(tx, g, &gw, &v);
    tr_domain_conflicts(tx, g, &v);
    memo_update(tx, &gw, &v, rname, &patched);
    /* TLS: one filter chain per SNI set. */
    if (spec->ssl)
        n_chains = tr_sni_chains(tx, g, lname, &v, &chains);
    if (!(rcfg = route_config(tx, &v, rname, patched)) || (spec->ssl && n_chains == 0))
        goto out;
    /* The gateway's own options may still fail in the plugins' HTTP
     * filters: then nothing of it is served (as when it is invalid). */
    tx->cur = g->idx >= 0 ? &gcur : NULL;
    hcm = http_connection_manager(tx, &gw, rname);
    if (gcur.errors)
        goto out;
    route_config_add(tx, &gw, &v, patched, rcfg);
    tx->cur = g->idx >= 0 ? &gcur : NULL;
    gateway_listener(tx, &gw, bind, hcm, chains, n_chains);
    if (gw.proxyless)
        grpc_api_listeners(tx, &gw, rname, &v);
out:
    tx->cur = saved;
}

/* Gloo's default gateways (when none is stored), in the settings
 * namespace, into gws. Static: they outlive the translation's arena, as
 * the stored ones do. */
static size_t default_gateways(tr_ctx *tx, tr_gw_item *gws)
{
    static Sluice__V1__GatewaySpec dspec[2];
    static Sluice__V1__HttpGateway dhttp[2];
    static Sluice__V1__Metadata dmd[2];
    static Sluice__V1__Gateway dgw[2];
    for (int d = 0; d < 2; d++) {
        Sluice__V1__GatewaySpec sp = SLUICE__V1__GATEWAY_SPEC__INIT;
        Sluice__V1__HttpGateway hg = SLUICE__V1__HTTP_GATEWAY__INIT;
        Sluice__V1__Metadata md = SLUICE__V1__METADATA__INIT;
        Sluice__V1__Gateway g = SLUICE__V1__GATEWAY__INIT;
        dspec[d] = sp;
        dhttp[d] = hg;
        dmd[d] = md;
        dgw[d] = g;
        dmd[d].name = d ? "gateway-proxy-ssl" : "gateway-proxy";
        dmd[d].namespace_ = (char *)tx->opts.settings_namespace;
        dspec[d].bind_address = "::";
        dspec[d].bind_port = d ? 8443 : 8080;
        dspec[d].ssl = d == 1;
        dspec[d].gateway_type_case = SLUICE__V1__GATEWAY_SPEC__GATEWAY_TYPE_HTTP_GATEWAY;
        dspec[d].http_gateway = &dhttp[d];
        dgw[d].metadata = &dmd[d];
        dgw[d].spec = &dspec[d];
        gws[d].gw = &dgw[d];
        gws[d].ns = tx->opts.settings_namespace;
        gws[d].name = dmd[d].name;
        gws[d].idx = -1;
        gws[d].rev = 0;
    }
    return 2;
}

tr_gw_item *tr_gateways(tr_ctx *tx, size_t *n)
{
    tr_bucket *b = tr_bucket_of(tx, tr_kind.gateway);
    tr_gw_item *gws = tr_alloc(tx, (b->n + 2) * sizeof *gws);
    size_t n_gws = 0;
    for (size_t i = 0; i < b->n; i++) {
        gws[n_gws].gw = (const Sluice__V1__Gateway *)b->v[i].msg;
        gws[n_gws].ns = b->v[i].ns;
        gws[n_gws].name = b->v[i].name;
        gws[n_gws].idx = (long)i;
        gws[n_gws].rev = b->v[i].rev;
        *tr_flag(tx, tr_kind.gateway, i) |= TR_SEEN;
        if (!gws[n_gws].gw->spec) {
            tr_cur cur = tr_cur_of(tr_kind.gateway, &b->v[i]);
            tx->cur = &cur;
            tr_error(tx, "spec: required");
            tx->cur = NULL;
            *tr_flag(tx, tr_kind.gateway, i) |= TR_REJECTED;
            continue;
        }
        n_gws++;
    }
    if (b->n == 0)
        n_gws += default_gateways(tx, gws + n_gws);
    *n = n_gws;
    return gws;
}
