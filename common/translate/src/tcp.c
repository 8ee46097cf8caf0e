/* tcp.c - TCP gateways (Gloo's tcpGateway, also inside hybrid gateways):
 * each host a filter chain with a tcp_proxy to its destination, matched by
 * SNI when it has sniDomains; TLS terminated (a certificate) or passed
 * through (only sniDomains), as Gloo's tcp plugin. */
#include <string.h>

#include "core.h"
#include "envoy/extensions/filters/network/connection_limit/v3/connection_limit.pb-c.h"
#include "envoy/extensions/filters/network/local_ratelimit/v3/local_rate_limit.pb-c.h"
#include "envoy/extensions/filters/network/sni_cluster/v3/sni_cluster.pb-c.h"
#include "envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy.pb-c.h"
#include "translate_internal.h"

typedef Envoy__Extensions__Filters__Network__TcpProxy__V3__TcpProxy tr_tcp_proxy_t;
typedef Envoy__Extensions__Filters__Network__TcpProxy__V3__TcpProxy__WeightedCluster tr_tcp_wc_t;

Envoy__Config__Listener__V3__Filter *tr_network_filter(tr_ctx *tx, const char *name, const ProtobufCMessage *m)
{
    Envoy__Config__Listener__V3__Filter *f = TR_NEW(tx, envoy__config__listener__v3__filter);
    f->name = tr_strdup(tx, name);
    f->config_type_case = ENVOY__CONFIG__LISTENER__V3__FILTER__CONFIG_TYPE_TYPED_CONFIG;
    f->typed_config = tr_any(tx, m);
    return f;
}

/* The upstream of destination d (at path p), reached by the proxy; NULL
 * when missing (a Warning, as Gloo's upstream-not-found: the host is left
 * out). Gloo ignores a TCP destination's destinationSpec and subset. */
static const Sluice__V1__Upstream *tcp_upstream(tr_ctx *tx, const Sluice__V1__Destination *d, const char *def_ns,
                                                const char *p)
{
    const Sluice__V1__Upstream *up;
    const char *ns;
    if (!d || d->destination_type_case != SLUICE__V1__DESTINATION__DESTINATION_TYPE_UPSTREAM) {
        tr_error(tx, "%s.upstream: required", p);
        return NULL;
    }
    if (d->destination_spec)
        tr_warn(tx, "%s.destinationSpec: not used by a TCP destination (ignored, as Gloo)", p);
    if (d->subset)
        tr_warn(tx, "%s.subset: not used by a TCP destination (ignored, as Gloo)", p);
    ns = d->upstream->namespace_ && d->upstream->namespace_[0] ? d->upstream->namespace_ : def_ns;
    if (!(up = tr_find_upstream(tx, d->upstream, def_ns)))
        tr_warn(tx, "%s: upstream not found: Upstream %s.%s not found (the TCP host is not served)", p, ns,
                d->upstream->name);
    return up;
}

/* Weighted destinations ds as tcp_proxy weighted clusters; NULL when one
 * is missing or unusable (reported). */
static tr_tcp_wc_t *tcp_weighted(tr_ctx *tx, Sluice__V1__WeightedDestination *const *ds, size_t n, const char *def_ns,
                                 const char *p)
{
    tr_tcp_wc_t *wc = TR_NEW(tx, envoy__extensions__filters__network__tcp_proxy__v3__tcp_proxy__weighted_cluster);
    bool ok = true;
    if (n == 0) {
        tr_error(tx, "%s: at least one destination is required", p);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        const char *dp = tr_printf(tx, "%s[%zu]", p, i);
        const Sluice__V1__Upstream *up = tcp_upstream(tx, ds[i]->destination, def_ns, tr_printf(tx, "%s.destination", dp));
        Envoy__Extensions__Filters__Network__TcpProxy__V3__TcpProxy__WeightedCluster__ClusterWeight *cw;
        uint32_t w = ds[i]->weight ? ds[i]->weight->value : 0;
        if (ds[i]->options)
            tr_error(tx, "%s.options: not used by a TCP destination", dp);
        if (w == 0) { /* Envoy: a TCP cluster weight is at least 1 */
            tr_error(tx, "%s.weight: a TCP destination needs a weight of at least 1", dp);
            ok = false;
        }
        if (!up) {
            ok = false;
            continue;
        }
        cw = TR_NEW(tx, envoy__extensions__filters__network__tcp_proxy__v3__tcp_proxy__weighted_cluster__cluster_weight);
        cw->name = tr_cluster_name(tx, up->metadata->name, tr_md_ns(up->metadata));
        cw->weight = w;
        TR_PUSH(tx, wc, clusters, cw);
    }
    return ok ? wc : NULL;
}

/* Settings of the tcp_proxy filter (options at path p). */
static void tcp_settings(tr_ctx *tx, const Sluice__V1__TcpListenerOptions *o, const char *p, tr_tcp_proxy_t *tp)
{
    const Sluice__V1__TcpProxySettings *s = o ? o->tcp_proxy_settings : NULL;
    if (!s)
        return;
    if (s->max_connect_attempts) {
        if (s->max_connect_attempts->value < 1)
            tr_error(tx, "%s.tcpProxySettings.maxConnectAttempts: at least 1", p);
        tp->max_connect_attempts = tr_u32(tx, s->max_connect_attempts->value);
    }
    if (s->idle_timeout)
        tp->idle_timeout = tr_dur(tx, s->idle_timeout);
    if (s->tunneling_config) {
        const Sluice__V1__TcpTunnelingConfig *t = s->tunneling_config;
        tp->tunneling_config = TR_NEW(tx, envoy__extensions__filters__network__tcp_proxy__v3__tcp_proxy__tunneling_config);
        if (!t->hostname[0])
            tr_error(tx, "%s.tcpProxySettings.tunnelingConfig.hostname: required", p);
        tp->tunneling_config->hostname = tr_strdup(tx, t->hostname);
        for (size_t i = 0; i < t->n_headers_to_add; i++) {
            const char *err = tr_check_header_name(t->headers_to_add[i]->header ? t->headers_to_add[i]->header->key : "",
                                                   false);
            if (err)
                tr_error(tx, "%s.tcpProxySettings.tunnelingConfig.headersToAdd[%zu].header.key: %s", p, i, err);
            TR_PUSH(tx, tp->tunneling_config, headers_to_add, tr_header_option(tx, t->headers_to_add[i]));
        }
    }
    if (s->access_log_flush_interval) {
        const Google__Protobuf__Duration *d = s->access_log_flush_interval;
        /* Gloo's words; set in Envoy's current field (the top-level one is
         * deprecated) */
        if (d->seconds < 0 || (d->seconds == 0 && d->nanos < 1000000))
            tr_error(tx, "%s.tcpProxySettings.accessLogFlushInterval: access log flush interval must have minimum of "
                         "1ms",
                     p);
        tp->access_log_options = TR_NEW(tx, envoy__extensions__filters__network__tcp_proxy__v3__tcp_proxy__tcp_access_log_options);
        tp->access_log_options->access_log_flush_interval = tr_dur(tx, d);
    }
}

/* The network filters options o (at path p) put before every host's
 * tcp_proxy, in Gloo's stage order: connection_limit, local_ratelimit
 * (Gloo's connection_limit and local_ratelimit plugins, NetworkFiltersTCP). */
static size_t tcp_network_filters(tr_ctx *tx, const Sluice__V1__TcpListenerOptions *o, const char *p,
                                  Envoy__Config__Listener__V3__Filter **v)
{
    size_t n = 0;
    if (o && o->connection_limit && o->connection_limit->max_active_connections) {
        Envoy__Extensions__Filters__Network__ConnectionLimit__V3__ConnectionLimit *cl =
            TR_NEW(tx, envoy__extensions__filters__network__connection_limit__v3__connection_limit);
        if (o->connection_limit->max_active_connections->value < 1)
            tr_error(tx, "%s.connectionLimit.maxActiveConnections: at least 1", p);
        cl->stat_prefix = tr_strdup(tx, "connection_limit");
        cl->max_connections = TR_NEW(tx, google__protobuf__uint64_value);
        cl->max_connections->value = o->connection_limit->max_active_connections->value;
        if (o->connection_limit->delay_before_close)
            cl->delay = tr_dur(tx, o->connection_limit->delay_before_close);
        /* Gloo names the filter by its type */
        v[n++] = tr_network_filter(tx, "envoy.extensions.filters.network.connection_limit.v3.ConnectionLimit", &cl->base);
    }
    if (o && o->local_ratelimit) {
        Envoy__Extensions__Filters__Network__LocalRatelimit__V3__LocalRateLimit *rl =
            TR_NEW(tx, envoy__extensions__filters__network__local_ratelimit__v3__local_rate_limit);
        rl->stat_prefix = tr_strdup(tx, "network_local_ratelimit");
        rl->token_bucket = tr_token_bucket(tx, o->local_ratelimit, tr_printf(tx, "%s.localRatelimit", p));
        v[n++] = tr_network_filter(tx, "envoy.filters.network.local_ratelimit", &rl->base);
    }
    return n;
}

/* The network filters of host h (at path p): sni_cluster for
 * forwardSniClusterName, then the tcp_proxy with the gateway's settings.
 * false: the host cannot be served (reported). */
static bool host_filters(tr_ctx *tx, const tr_gw_item *g, const tr_gateway *gw, const tr_tcp_proxy_t *settings,
                         Envoy__Config__Listener__V3__Filter *const *nf, size_t n_nf, const Sluice__V1__TcpHost *h,
                         const char *p, Envoy__Config__Listener__V3__FilterChain *fc)
{
    tr_tcp_proxy_t *tp = TR_NEW(tx, envoy__extensions__filters__network__tcp_proxy__v3__tcp_proxy);
    const Sluice__V1__TcpAction *a = h->destination;
    const char *dp = tr_printf(tx, "%s.destination", p);
    tp->stat_prefix = tr_strdup(tx, "tcp"); /* Gloo's DefaultTcpStatPrefix */
    for (size_t i = 0; i < n_nf; i++)
        TR_PUSH(tx, fc, filters, nf[i]);
    switch (a ? a->destination_case : SLUICE__V1__TCP_ACTION__DESTINATION__NOT_SET) {
    case SLUICE__V1__TCP_ACTION__DESTINATION_SINGLE: {
        const Sluice__V1__Upstream *up = tcp_upstream(tx, a->single, g->ns, tr_printf(tx, "%s.single", dp));
        if (!up)
            return false;
        tp->cluster_specifier_case = ENVOY__EXTENSIONS__FILTERS__NETWORK__TCP_PROXY__V3__TCP_PROXY__CLUSTER_SPECIFIER_CLUSTER;
        tp->cluster = tr_cluster_name(tx, up->metadata->name, tr_md_ns(up->metadata));
        break;
    }
    case SLUICE__V1__TCP_ACTION__DESTINATION_MULTI:
        tp->weighted_clusters = tcp_weighted(tx, a->multi->destinations, a->multi->n_destinations, g->ns,
                                             tr_printf(tx, "%s.multi.destinations", dp));
        if (!tp->weighted_clusters)
            return false;
        tp->cluster_specifier_case =
            ENVOY__EXTENSIONS__FILTERS__NETWORK__TCP_PROXY__V3__TCP_PROXY__CLUSTER_SPECIFIER_WEIGHTED_CLUSTERS;
        break;
    case SLUICE__V1__TCP_ACTION__DESTINATION_UPSTREAM_GROUP: {
        const Sluice__V1__ResourceRef *ref = a->upstream_group;
        const char *ns = ref->namespace_ && ref->namespace_[0] ? ref->namespace_ : g->ns;
        tr_bucket *ub = tr_bucket_of(tx, tr_kind.ug);
        long pos = tr_bucket_find(ub, ns, ref->name ? ref->name : "");
        const Sluice__V1__UpstreamGroup *ug;
        if (pos < 0) { /* as Gloo: a warning, the host left out */
            tr_warn(tx, "%s.upstreamGroup: UpstreamGroup %s.%s not found (the TCP host is not served)", dp, ns,
                    ref->name ? ref->name : "");
            return false;
        }
        ug = (const Sluice__V1__UpstreamGroup *)ub->v[pos].msg;
        tp->weighted_clusters =
            tcp_weighted(tx, ug->spec ? ug->spec->destinations : NULL, ug->spec ? ug->spec->n_destinations : 0, ns,
                         tr_printf(tx, "%s.upstreamGroup(%s.%s).destinations", dp, ns, ref->name));
        if (!tp->weighted_clusters)
            return false;
        tp->cluster_specifier_case =
            ENVOY__EXTENSIONS__FILTERS__NETWORK__TCP_PROXY__V3__TCP_PROXY__CLUSTER_SPECIFIER_WEIGHTED_CLUSTERS;
        break;
    }
    case SLUICE__V1__TCP_ACTION__DESTINATION_FORWARD_SNI_CLUSTER_NAME: {
        Envoy__Extensions__Filters__Network__SniCluster__V3__SniCluster *sc =
            TR_NEW(tx, envoy__extensions__filters__network__sni_cluster__v3__sni_cluster);
        /* the client's server name is the cluster: the proxy may reach any */
        tr_reach_upstream(tx, TR_REACH_ALL);
        TR_PUSH(tx, fc, filters, tr_network_filter(tx, "envoy.filters.network.sni_cluster", &sc->base));
        tp->cluster_specifier_case = ENVOY__EXTENSIONS__FILTERS__NETWORK__TCP_PROXY__V3__TCP_PROXY__CLUSTER_SPECIFIER_CLUSTER;
        tp->cluster = tr_strdup(tx, ""); /* overwritten by sni_cluster, as Gloo */
        break;
    }
    default:
        tr_error(tx, "%s: one of single, multi, upstreamGroup or forwardSniClusterName is required", dp);
        return false;
    }
    /* the gateway's settings, made once (settings) and shared */
    tp->max_connect_attempts = settings->max_connect_attempts;
    tp->idle_timeout = settings->idle_timeout;
    tp->tunneling_config = settings->tunneling_config;
    tp->access_log_options = settings->access_log_options;
    for (size_t k = 0; k < sl_tr_plugin_count; k++)
        if (sl_tr_plugins[k]->tcp_proxy)
            sl_tr_plugins[k]->tcp_proxy(tx, gw, tp);
    TR_PUSH(tx, fc, filters, tr_network_filter(tx, "envoy.filters.network.tcp_proxy", &tp->base));
    return true;
}

/* Host h's TLS (Gloo's computeTcpFilterChain): none, passthrough (only
 * sniDomains: matched by SNI, not terminated) or terminated (a
 * certificate). false: unusable (reported). */
static bool host_tls(tr_ctx *tx, const tr_gw_item *g, const Sluice__V1__TcpHost *h, const char *p,
                     Envoy__Config__Listener__V3__FilterChain *fc)
{
    const Sluice__V1__SslConfig *ssl = h->ssl_config;
    if (!ssl)
        return true;
    if (ssl->ssl_secrets_case == SLUICE__V1__SSL_CONFIG__SSL_SECRETS__NOT_SET && ssl->n_sni_domains == 0) {
        tr_error(tx, "%s.sslConfig: sniDomains (TLS passthrough) or a certificate (secretRef, sslFiles or sds) is "
                     "required",
                 p);
        return false;
    }
    if (ssl->ssl_secrets_case != SLUICE__V1__SSL_CONFIG__SSL_SECRETS__NOT_SET &&
        !(fc->transport_socket = tr_downstream_tls(tx, ssl, g->ns, tr_printf(tx, "%s.sslConfig", p))))
        return false;
    if (fc->transport_socket)
        tr_tls_chain_timeout(tx, ssl, fc);
    if (ssl->n_sni_domains) {
        fc->filter_chain_match = TR_NEW(tx, envoy__config__listener__v3__filter_chain_match);
        for (size_t d = 0; d < ssl->n_sni_domains; d++)
            TR_PUSH(tx, fc->filter_chain_match, server_names, tr_strdup(tx, ssl->sni_domains[d]));
    }
    return true;
}

/* As Gloo's validateTcpHosts: in a matched gateway whose matcher names
 * sniDomains, a host's sniDomains must be among them. */
static void check_matcher_sni(tr_ctx *tx, const Sluice__V1__TcpGateway *tg, const Sluice__V1__SslConfig *msl,
                              const char *p)
{
    const char *bad = NULL;
    if (!msl || msl->n_sni_domains == 0)
        return;
    for (size_t i = 0; i < tg->n_tcp_hosts; i++) {
        const Sluice__V1__SslConfig *ssl = tg->tcp_hosts[i]->ssl_config;
        for (size_t d = 0; ssl && d < ssl->n_sni_domains; d++) {
            bool found = false;
            for (size_t m = 0; m < msl->n_sni_domains && !found; m++)
                found = strcmp(msl->sni_domains[m], ssl->sni_domains[d]) == 0;
            if (!found)
                bad = tr_printf(tx, "%s%s%s:%s", bad ? bad : "", bad ? " " : "", tg->tcp_hosts[i]->name,
                                ssl->sni_domains[d]);
        }
    }
    if (bad)
        tr_error(tx, "%s: gateway has conflicting sni domains [%s] (not among the matcher's sslConfig.sniDomains)", p,
                 bad);
}

size_t tr_tcp_chains(tr_ctx *tx, const tr_gw_item *g, const tr_gateway *gw, const Sluice__V1__TcpGateway *tg,
                     const Sluice__V1__SslConfig *msl, const char *p, Envoy__Config__Listener__V3__FilterChain ***chains,
                     bool *inspect)
{
    tr_tcp_proxy_t *settings = TR_NEW(tx, envoy__extensions__filters__network__tcp_proxy__v3__tcp_proxy);
    const char *op = tr_printf(tx, "%s.options", p);
    Envoy__Config__Listener__V3__Filter *nf[2];
    size_t n = 0, n_nf = tcp_network_filters(tx, tg->options, op, nf);
    *chains = tr_alloc(tx, (tg->n_tcp_hosts + 1) * sizeof **chains);
    tcp_settings(tx, tg->options, op, settings);
    if (tg->n_tcp_hosts == 0)
        tr_error(tx, "%s.tcpHosts: at least one host is required", p);
    check_matcher_sni(tx, tg, msl, p);
    for (size_t i = 0; i < tg->n_tcp_hosts; i++) {
        const Sluice__V1__TcpHost *h = tg->tcp_hosts[i];
        const char *hp = tr_printf(tx, "%s.tcpHosts[%zu]", p, i);
        Envoy__Config__Listener__V3__FilterChain *fc = TR_NEW(tx, envoy__config__listener__v3__filter_chain);
        if (!host_filters(tx, g, gw, settings, nf, n_nf, h, hp, fc) || !host_tls(tx, g, h, hp, fc))
            continue;
        /* Gloo's tls_inspector plugin: for any host with sslConfig or
         * forwarding by SNI */
        if (h->ssl_config ||
            h->destination->destination_case == SLUICE__V1__TCP_ACTION__DESTINATION_FORWARD_SNI_CLUSTER_NAME)
            *inspect = true;
        /* a matcher's sslConfig: its sniDomains for hosts without any */
        if (msl) {
            if (!fc->filter_chain_match)
                fc->filter_chain_match = TR_NEW(tx, envoy__config__listener__v3__filter_chain_match);
            if (fc->filter_chain_match->n_server_names == 0)
                for (size_t d = 0; d < msl->n_sni_domains; d++)
                    TR_PUSH(tx, fc->filter_chain_match, server_names, tr_strdup(tx, msl->sni_domains[d]));
        }
        (*chains)[n++] = fc;
    }
    return n;
}
