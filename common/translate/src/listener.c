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
    return tr_network_filter(tx, "envoy.filters.network.http_connection_manager", &hcm->base);
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
void tr_http_gateway_valid(tr_ctx *tx, const char *ns, const Sluice__V1__HttpGateway *hg, const char *p)
{
    tr_bucket *vb = tr_bucket_of(tx, tr_kind.vs);
    int ways = (hg->n_virtual_services > 0) + (hg->n_virtual_service_selector > 0) + (hg->virtual_service_expressions != NULL);
    if (hg->options)
        tr_check_fields(tx, &tx->supported, &hg->options->base, tr_printf(tx, "%s.options", p));
    if (ways > 1)
        tr_error(tx, "%s: use at most one of virtualServices, virtualServiceSelector and virtualServiceExpressions", p);
    for (size_t i = 0; i < hg->n_virtual_services; i++) {
        const Sluice__V1__ResourceRef *r = hg->virtual_services[i];
        const char *rns = r->namespace_ && r->namespace_[0] ? r->namespace_ : ns;
        if (tr_bucket_find(vb, rns, r->name) < 0)
            tr_warn(tx, "%s.virtualServices[%zu]: VirtualService %s.%s not found", p, i, rns, r->name);
    }
}

void tr_ranges_valid(tr_ctx *tx, Sluice__V1__CidrRange *const *ranges, size_t n, const char *p)
{
    for (size_t i = 0; i < n; i++)
        tr_cidr_range(tx, ranges[i]->address_prefix, ranges[i]->prefix_len,
                      tr_printf(tx, "%s.matcher.sourcePrefixRanges[%zu]", p, i));
}

/* Checks the gateway type of g: its HTTP, TCP or hybrid part. */
static void gateway_types_valid(tr_ctx *tx, const tr_gw_item *g)
{
    const Sluice__V1__GatewaySpec *spec = g->gw->spec;
    const Sluice__V1__HybridGateway *hy = spec->hybrid_gateway;
    switch (spec->gateway_type_case) {
    case SLUICE__V1__GATEWAY_SPEC__GATEWAY_TYPE_HTTP_GATEWAY:
        tr_http_gateway_valid(tx, g->ns, spec->http_gateway, "spec.httpGateway");
        return;
    case SLUICE__V1__GATEWAY_SPEC__GATEWAY_TYPE_TCP_GATEWAY:
        break;
    case SLUICE__V1__GATEWAY_SPEC__GATEWAY_TYPE_HYBRID_GATEWAY:
        if (hy->n_matched_gateways == 0 && !hy->delegated_http_gateways && !hy->delegated_tcp_gateways)
            /* Gloo's EmptyHybridGatewayMessage */
            tr_error(tx, "spec.hybridGateway.matchedGateways: hybrid gateway does not have any populated matched gateways");
        for (size_t i = 0; i < hy->n_matched_gateways; i++) {
            const Sluice__V1__MatchedGateway *mg = hy->matched_gateways[i];
            const char *p = tr_printf(tx, "spec.hybridGateway.matchedGateways[%zu]", i);
            if (mg->matcher)
                tr_ranges_valid(tx, mg->matcher->source_prefix_ranges, mg->matcher->n_source_prefix_ranges, p);
            if (mg->matcher && mg->matcher->n_passthrough_cipher_suites)
                tr_error(tx, "%s.matcher.passthroughCipherSuites: not supported by Sluice (Gloo Enterprise matches "
                             "TLS passthrough by cipher suite with a filter stock Envoy does not have)",
                         p);
            if (mg->gateway_type_case == SLUICE__V1__MATCHED_GATEWAY__GATEWAY_TYPE_HTTP_GATEWAY)
                tr_http_gateway_valid(tx, g->ns, mg->http_gateway, tr_printf(tx, "%s.httpGateway", p));
            else if (mg->gateway_type_case != SLUICE__V1__MATCHED_GATEWAY__GATEWAY_TYPE_TCP_GATEWAY)
                tr_error(tx, "%s: httpGateway or tcpGateway is required", p);
        }
        break;
    default:
        tr_error(tx, "spec: one of httpGateway, tcpGateway and hybridGateway is required");
        return;
    }
    if (tr_gw_proxyless(g->gw))
        tr_error(tx, "spec.grpcApiListeners: only for an httpGateway");
    if (spec->ssl) /* Gloo reads it only for an httpGateway */
        tr_warn(tx, "spec.ssl: not used by a tcpGateway or hybridGateway (the hosts' and matchers' sslConfig say "
                    "TLS); ignored, as Gloo");
}

/* Checks gateway g (bound to bind) before anything is made of it, and
 * claims its port among the proxy's (ports); false when it cannot be
 * served (reported). */
static bool gateway_valid(tr_ctx *tx, const tr_gw_item *g, const char *bind, const char *proxy, tr_map *ports)
{
    const Sluice__V1__GatewaySpec *spec = g->gw->spec;
    unsigned char addr[16];
    const char *port_key;
    const tr_gw_item *other;

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
    gateway_types_valid(tx, g);
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

/* The filter chains of a gateway's listener, and whether they need the
 * tls_inspector (some match or terminate TLS). */
typedef struct gw_chains {
    Envoy__Config__Listener__V3__FilterChain **v;
    size_t n;
    bool inspect;
} gw_chains;

static void chains_add(tr_ctx *tx, gw_chains *c, Envoy__Config__Listener__V3__FilterChain **v, size_t n)
{
    Envoy__Config__Listener__V3__FilterChain **all = tr_alloc(tx, (c->n + n + 1) * sizeof *all);
    if (c->n)
        memcpy(all, c->v, c->n * sizeof *all);
    if (n)
        memcpy(all + c->n, v, n * sizeof *all);
    c->v = all;
    c->n += n;
}

/* The packed match of filter chain fc (empty when none). */
static const uint8_t *match_bytes(tr_ctx *tx, const Envoy__Config__Listener__V3__FilterChain *fc, size_t *len)
{
    uint8_t *b;
    *len = fc->filter_chain_match ? protobuf_c_message_get_packed_size(&fc->filter_chain_match->base) : 0;
    b = tr_alloc(tx, *len + 1);
    if (*len)
        protobuf_c_message_pack(&fc->filter_chain_match->base, b);
    return b;
}

/* As Gloo's CheckForFilterChainConsistency: Envoy rejects a listener two
 * of whose filter chains have the same match. */
static bool chains_distinct(tr_ctx *tx, const gw_chains *c)
{
    const uint8_t **b = tr_alloc(tx, (c->n + 1) * sizeof *b);
    size_t *len = tr_alloc(tx, (c->n + 1) * sizeof *len);
    for (size_t i = 0; i < c->n; i++) {
        b[i] = match_bytes(tx, c->v[i], &len[i]);
        for (size_t j = 0; j < i; j++)
            if (len[i] == len[j] && memcmp(b[i], b[j], len[i]) == 0) {
                tr_error(tx, "spec: filter chains %zu and %zu of the listener have the same match (server names, "
                             "source ranges), which Envoy rejects: overlapping sniDomains, or more than one host or "
                             "matched gateway without any",
                         j, i);
                return false;
            }
    }
    return true;
}

/* A hybrid matcher m's sourcePrefixRanges (checked) on chains v. */
static void match_sources(tr_ctx *tx, const Sluice__V1__GatewayMatcher *m, Envoy__Config__Listener__V3__FilterChain **v,
                          size_t n)
{
    Envoy__Config__Core__V3__CidrRange **r;
    size_t n_r = 0;
    if (!m || m->n_source_prefix_ranges == 0)
        return;
    r = tr_alloc(tx, m->n_source_prefix_ranges * sizeof *r);
    for (size_t i = 0; i < m->n_source_prefix_ranges; i++)
        if ((r[n_r] = tr_cidr_range(tx, m->source_prefix_ranges[i]->address_prefix,
                                    m->source_prefix_ranges[i]->prefix_len,
                                    tr_printf(tx, "matcher.sourcePrefixRanges[%zu]", i))))
            n_r++;
    for (size_t k = 0; k < n; k++) {
        if (!v[k]->filter_chain_match)
            v[k]->filter_chain_match = TR_NEW(tx, envoy__config__listener__v3__filter_chain_match);
        v[k]->filter_chain_match->n_source_prefix_ranges = n_r;
        v[k]->filter_chain_match->source_prefix_ranges = r;
    }
}

/* The gateway's Listener on bind and its port holding chains c (behind a
 * tls_inspector when they need it); then the plugins' listener hooks.
 * False (nothing added) when a hook reported an error. */
static bool gateway_listener(tr_ctx *tx, const tr_gateway *gw, const char *bind, const gw_chains *c)
{
    int before = tx->cur ? tx->cur->errors : 0;
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
    if (c->inspect) {
        Envoy__Config__Listener__V3__ListenerFilter *lf = TR_NEW(tx, envoy__config__listener__v3__listener_filter);
        Envoy__Extensions__Filters__Listener__TlsInspector__V3__TlsInspector *ti =
            TR_NEW(tx, envoy__extensions__filters__listener__tls_inspector__v3__tls_inspector);
        lf->name = tr_strdup(tx, "envoy.filters.listener.tls_inspector");
        lf->config_type_case = ENVOY__CONFIG__LISTENER__V3__LISTENER_FILTER__CONFIG_TYPE_TYPED_CONFIG;
        lf->typed_config = tr_any(tx, &ti->base);
        TR_PUSH(tx, l, listener_filters, lf);
    }
    for (size_t i = 0; i < c->n; i++)
        TR_PUSH(tx, l, filter_chains, c->v[i]);
    for (size_t p = 0; p < sl_tr_plugin_count; p++)
        if (sl_tr_plugins[p]->listener)
            sl_tr_plugins[p]->listener(tx, gw, l);
    if (tx->cur && tx->cur->errors > before)
        return false;
    if (!tr_out_add(tx, SL_XDS_LISTENER, gw->listener_name, &l->base))
        tr_error(tx, "listener %s of proxy %s is defined twice", gw->listener_name, gw->proxy);
    return true;
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

/* An HTTP gateway of a listener: the gateway it is translated as, its
 * virtual hosts and its route configuration (added to the proxy once the
 * whole listener is known to be served). */
typedef struct http_part {
    tr_gateway gw;
    tr_gw_vhosts v;
    tr_blob *patched;
    Envoy__Config__Route__V3__RouteConfiguration *rcfg;
} http_part;

/* The filter chains of HTTP gateway g (hp->gw; its spec's httpGateway and
 * ssl) into *chains: one per SNI set with ssl (named after cname, each
 * sslConfig completed by dflt), else one, each holding its connection
 * manager with routes rname. 0: nothing to serve (errors on gcur). */
static size_t http_chains(tr_ctx *tx, const tr_gw_item *g, http_part *hp, const char *rname, const char *cname,
                          const Sluice__V1__SslConfig *dflt, tr_cur *gcur,
                          Envoy__Config__Listener__V3__FilterChain ***chains)
{
    const Sluice__V1__GatewaySpec *spec = g->gw->spec;
    int before = gcur->errors;
    Envoy__Config__Listener__V3__Filter *f;
    size_t n = 0;
    /* Virtual services -> virtual hosts (the unchanged ones from the
     * gateway's memo when only virtual services changed since); domains
     * are unique per gateway. */
    tr_gateway_vhosts(tx, g, &hp->gw, &hp->v);
    tr_domain_conflicts(tx, g, &hp->v);
    memo_update(tx, &hp->gw, &hp->v, rname, &hp->patched);
    /* TLS: one filter chain per SNI set. */
    if (spec->ssl)
        n = tr_sni_chains(tx, g, cname, dflt, &hp->v, chains);
    if (!(hp->rcfg = route_config(tx, &hp->v, rname, hp->patched)) || (spec->ssl && n == 0))
        return 0;
    /* The gateway's own options may still fail in the plugins' HTTP
     * filters: then nothing of it is served (as when it is invalid). */
    tx->cur = g->idx >= 0 ? gcur : NULL;
    f = hcm_filter(tx, http_connection_manager(tx, &hp->gw, rname));
    if (gcur->errors > before)
        return 0;
    if (!spec->ssl) {
        *chains = tr_alloc(tx, sizeof **chains);
        (*chains)[n++] = TR_NEW(tx, envoy__config__listener__v3__filter_chain);
    }
    for (size_t c = 0; c < n; c++)
        TR_PUSH(tx, (*chains)[c], filters, f);
    return n;
}

/* The chains of hybrid gateway g (gw, routes rname-<i>) into c, each of
 * its matched gateways m[0..n) behind its matcher; the HTTP ones into
 * parts. A delegated gateway's problems are its own: then its chains
 * are left out. */
static void hybrid_chains(tr_ctx *tx, const tr_gw_item *g, const tr_gateway *gw, const char *rname, tr_cur *gcur,
                          const tr_matched *m, size_t n_m, gw_chains *c, http_part *parts, size_t *n_parts)
{
    for (size_t i = 0; i < n_m; i++) {
        const Sluice__V1__MatchedGateway *mg = m[i].mg;
        const Sluice__V1__SslConfig *msl = mg->matcher ? mg->matcher->ssl_config : NULL;
        tr_cur *cur = m[i].cur ? m[i].cur : gcur;
        int before = cur->errors;
        tr_gw_item sgi = *g;
        Envoy__Config__Listener__V3__FilterChain **v = NULL;
        bool inspect = false;
        size_t n = 0;
        sgi.ns = m[i].ns; /* what its references default to */
        tx->cur = g->idx >= 0 ? cur : NULL;
        if (mg->gateway_type_case == SLUICE__V1__MATCHED_GATEWAY__GATEWAY_TYPE_TCP_GATEWAY) {
            n = tr_tcp_chains(tx, &sgi, gw, mg->tcp_gateway, msl, tr_printf(tx, "%s.tcpGateway", m[i].path), &v,
                              &inspect);
        } else {
            /* translated as an httpGateway of its own (ssl: the matcher
             * has sslConfig), with its own memo */
            Sluice__V1__Gateway *sg = tr_alloc(tx, sizeof *sg);
            Sluice__V1__GatewaySpec *ss = tr_alloc(tx, sizeof *ss);
            http_part *hp = &parts[*n_parts];
            *sg = *g->gw;
            *ss = *g->gw->spec;
            ss->ssl = msl != NULL;
            ss->gateway_type_case = SLUICE__V1__GATEWAY_SPEC__GATEWAY_TYPE_HTTP_GATEWAY;
            ss->http_gateway = mg->http_gateway;
            sg->spec = ss;
            sgi.gw = sg;
            memset(hp, 0, sizeof *hp);
            hp->gw = (tr_gateway){sg, gw->proxy, tr_printf(tx, "%s~%zu", gw->listener_name, i), false};
            n = http_chains(tx, &sgi, hp, tr_printf(tx, "%s-%zu", rname, i), tr_printf(tx, "%s-%zu", gw->listener_name, i),
                            msl, cur, &v);
            *n_parts += n > 0;
        }
        tx->cur = g->idx >= 0 ? gcur : NULL;
        if (m[i].cur && cur->errors > before) {
            *tr_flag(tx, cur->kind, (size_t)m[i].idx) |= TR_REJECTED;
            tr_warn(tx, "spec.hybridGateway: %s %s.%s is rejected; its filter chains are left out", cur->kind->kind,
                    cur->ns, cur->name);
            if (mg->gateway_type_case != SLUICE__V1__MATCHED_GATEWAY__GATEWAY_TYPE_TCP_GATEWAY && n)
                (*n_parts)--;
            continue;
        }
        /* Gloo's tls_inspector plugin: any matcher with sslConfig */
        c->inspect = c->inspect || inspect || (msl && n);
        match_sources(tx, mg->matcher, v, n);
        chains_add(tx, c, v, n);
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
    Envoy__Config__Listener__V3__FilterChain **v = NULL;
    http_part *parts = NULL;
    size_t n = 0, n_parts = 0;
    gw_chains c = {0};

    tx->cur = g->idx >= 0 ? &gcur : NULL;
    if (!gateway_valid(tx, g, bind, proxy, ports) || gcur.errors)
        goto out;
    switch (spec->gateway_type_case) {
    case SLUICE__V1__GATEWAY_SPEC__GATEWAY_TYPE_HTTP_GATEWAY:
        parts = tr_alloc(tx, sizeof *parts);
        memset(parts, 0, sizeof *parts);
        parts[0].gw = gw;
        n = http_chains(tx, g, &parts[0], rname, lname, NULL, &gcur, &v);
        n_parts = n > 0;
        c.inspect = spec->ssl;
        break;
    case SLUICE__V1__GATEWAY_SPEC__GATEWAY_TYPE_TCP_GATEWAY:
        n = tr_tcp_chains(tx, g, &gw, spec->tcp_gateway, NULL, "spec.tcpGateway", &v, &c.inspect);
        break;
    default: {
        tr_matched *m;
        size_t n_m = tr_hybrid_matched(tx, g, &m);
        if (n_m == 0 && !gcur.errors) {
            /* as Gloo: a delegated gateway may come later; a Warning */
            tr_warn(tx, "spec.hybridGateway: hybrid gateway does not have any populated matched gateways");
            goto out;
        }
        parts = tr_alloc(tx, (n_m + 1) * sizeof *parts);
        hybrid_chains(tx, g, &gw, rname, &gcur, m, n_m, &c, parts, &n_parts);
    }
    }
    tx->cur = g->idx >= 0 ? &gcur : NULL;
    chains_add(tx, &c, v, n);
    if (gcur.errors || !chains_distinct(tx, &c))
        goto out;
    if (c.n == 0) {
        /* as Gloo: an httpGateway without virtual services has no listener */
        if (spec->gateway_type_case != SLUICE__V1__GATEWAY_SPEC__GATEWAY_TYPE_HTTP_GATEWAY)
            tr_warn(tx, "spec: nothing to serve (no TCP host or matched gateway could be served): no listener");
        goto out;
    }
    if (!gateway_listener(tx, &gw, bind, &c))
        goto out;
    for (size_t k = 0; k < n_parts; k++)
        route_config_add(tx, &parts[k].gw, &parts[k].v, parts[k].patched, parts[k].rcfg);
    if (gw.proxyless)
        grpc_api_listeners(tx, &gw, rname, &parts[0].v);
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
