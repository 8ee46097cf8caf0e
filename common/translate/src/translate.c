/* translate.c - a translation, in order: upstreams, upstream groups, gateways
 * grouped by proxy (listeners, routes, clusters), packing, reports.
 * docs/translator.md is the map. */
#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "translate_internal.h"

#define DEFAULT_SETTINGS_NS "gloo-system"
#define DEFAULT_PROXY "gateway-proxy"

struct tr_kinds tr_kind;
struct tr_kind_idx tr_kind_idx[10];

void tr_init_kinds(void)
{
    if (tr_kind.gateway)
        return;
    tr_kind.vs = sl_kind_by_name("VirtualService");
    tr_kind.rt = sl_kind_by_name("RouteTable");
    tr_kind.upstream = sl_kind_by_name("Upstream");
    tr_kind.ug = sl_kind_by_name("UpstreamGroup");
    tr_kind.secret = sl_kind_by_name("Secret");
    tr_kind.settings = sl_kind_by_name("Settings");
    tr_kind.eps = sl_kind_by_name("EndpointSet");
    tr_kind.hgw = sl_kind_by_name("MatchableHttpGateway");
    tr_kind.tgw = sl_kind_by_name("MatchableTcpGateway");
    {
        const sl_kind *ks[] = {tr_kind.vs,     tr_kind.rt,       tr_kind.upstream, tr_kind.ug,
                               tr_kind.secret, tr_kind.settings, tr_kind.eps,      sl_kind_by_name("Gateway"),
                               tr_kind.hgw,    tr_kind.tgw};
        for (size_t i = 0; i < sizeof ks / sizeof *ks; i++) {
            tr_kind_idx[i].k = ks[i];
            tr_kind_idx[i].idx = tr_kind_index(ks[i]);
        }
    }
    tr_kind.gateway = sl_kind_by_name("Gateway"); /* last: tr_init_kinds() is done */
}

/* Frees a translation's context: its arena and what it held. */
void tr_ctx_free(tr_ctx *tx)
{
    for (size_t i = 0; i < tx->n_held; i++)
        tr_blob_unref(tx->held[i]);
    free(tx->held);
    sl_arena_deinit(&tx->arena);
    free(tx);
}

/* A translation's context over store s (after its arena and out-of-memory
 * jump are set): options, per-entry flags, the supported fields of every
 * plugin, the Settings. Returns the Settings' position in its bucket, or -1
 * when the defaults apply. */
long tr_ctx_setup(tr_ctx *tx, sl_tr_store *s, const sl_tr_options *opts)
{
    static const Sluice__V1__SettingsSpec default_settings = SLUICE__V1__SETTINGS_SPEC__INIT;
    tx->store = s;
    if (opts)
        tx->opts = *opts;
    if (!tx->opts.settings_namespace)
        tx->opts.settings_namespace = DEFAULT_SETTINGS_NS;
    for (size_t k = 0; k < sl_kind_count() && k < TR_MAX_KINDS; k++) {
        tx->flags[k] = tr_alloc(tx, s->b[k].n + 1);
        memset(tx->flags[k], 0, s->b[k].n + 1);
    }
    for (size_t p = 0; p < sl_tr_plugin_count; p++)
        for (const char *const *f = sl_tr_plugins[p]->fields; f && *f; f++)
            tr_map_put(tx, &tx->supported, *f, (void *)sl_tr_plugins[p]);
    long pos = tr_bucket_find(tr_bucket_of(tx, tr_kind.settings), tx->opts.settings_namespace, "default");
    const Sluice__V1__Settings *st = pos >= 0 ? (const Sluice__V1__Settings *)tr_bucket_of(tx, tr_kind.settings)->v[pos].msg : NULL;
    tx->settings = st && st->spec ? st->spec : &default_settings;
    return pos;
}

/* The proxies of gateways gws, "<namespace>~<proxy name>" (DEFAULT_PROXY
 * when a gateway names none), each once, in order of appearance; *n. */
static char **proxy_names(tr_ctx *tx, const tr_gw_item *gws, size_t n_gws, size_t *n)
{
    tr_map proxies = {0};
    char **pnames = tr_alloc(tx, (n_gws * 8 + 1) * sizeof *pnames);
    size_t n_p = 0;
    for (size_t i = 0; i < n_gws; i++) {
        const Sluice__V1__GatewaySpec *sp = gws[i].gw->spec;
        size_t np = sp->n_proxy_names ? sp->n_proxy_names : 1;
        for (size_t j = 0; j < np; j++) {
            const char *pn = sp->n_proxy_names ? sp->proxy_names[j] : DEFAULT_PROXY;
            char *key = tr_printf(tx, "%s~%s", gws[i].ns, pn);
            if (!tr_map_get(&proxies, key)) {
                tr_map_put(tx, &proxies, key, key);
                if (n_p < n_gws * 8)
                    pnames[n_p++] = key;
            }
        }
    }
    *n = n_p;
    return pnames;
}

/* Whether gateway g is one of proxy's ("<namespace>~<proxy name>"). */
static bool gateway_of(const tr_gw_item *g, const char *proxy)
{
    const Sluice__V1__GatewaySpec *sp = g->gw->spec;
    size_t np = sp->n_proxy_names ? sp->n_proxy_names : 1;
    bool mine = false;
    for (size_t j = 0; j < np; j++) {
        const char *pn = sp->n_proxy_names ? sp->proxy_names[j] : DEFAULT_PROXY;
        if (strlen(proxy) == strlen(g->ns) + 1 + strlen(pn) && strncmp(proxy, g->ns, strlen(g->ns)) == 0 &&
            proxy[strlen(g->ns)] == '~' && strcmp(proxy + strlen(g->ns) + 1, pn) == 0)
            mine = true;
    }
    return mine;
}

/* Translates proxy into op: its gateways' listeners and routes, then
 * every usable upstream they refer to as its cluster (every one with
 * Settings allClustersToEveryProxy; the kept lists as they are when
 * nothing they came from changed), packed. packed: bytes packed by
 * message, shared by the proxies of this translation; reach: room for a
 * byte per upstream. */
static sl_status translate_proxy(tr_ctx *tx, sl_tr_proxy *op, const char *proxy, const tr_gw_item *gws,
                                 size_t n_gws, const tr_up_out *built, bool up_fast, tr_bytes_map *packed,
                                 uint8_t *reach)
{
    tr_sort_cache *whole[SL_XDS_TYPE_COUNT];
    tr_map ports = {0};
    bool proxyless = false;
    tr_reset_out(tx);
    if (!(op->name = strdup(proxy)))
        return SL_ERR_NOMEM;
    /* what its listeners and routes refer to: only those clusters go to it */
    tx->n_reach = tr_bucket_of(tx, tr_kind.upstream)->n;
    tx->reach = reach;
    memset(reach, 0, tx->n_reach + 1);
    for (size_t i = 0; i < n_gws; i++) {
        if (!gateway_of(&gws[i], proxy))
            continue;
        if (tr_gw_proxyless(gws[i].gw))
            proxyless = true;
        tr_translate_gateway(tx, &gws[i], proxy, &ports);
        if (gws[i].idx >= 0 && tr_rep_get(tx, tr_kind.gateway, gws[i].ns, gws[i].name)->n_errors)
            *tr_flag(tx, tr_kind.gateway, (size_t)gws[i].idx) |= TR_REJECTED;
    }
    tx->reach = NULL; /* clusters are built below: no more references */
    if (tx->reach_all)
        memset(reach, 1, tx->n_reach);
    tx->reached = reach;
    memset(whole, 0, sizeof whole);
    if (!tx->n_out[SL_XDS_CLUSTER] && !tx->n_out[SL_XDS_ENDPOINT] &&
        (whole[SL_XDS_CLUSTER] = tr_whole_list(tx, proxy, proxyless, SL_XDS_CLUSTER)) != NULL &&
        !(whole[SL_XDS_ENDPOINT] = tr_whole_list(tx, proxy, proxyless, SL_XDS_ENDPOINT)))
        whole[SL_XDS_CLUSTER] = NULL;
    if (!whole[SL_XDS_CLUSTER])
        tr_proxy_clusters(tx, proxyless, built, up_fast, reach);
    op->proxyless = proxyless;
    return tr_pack_proxy(tx, op, packed, whole);
}

void tr_add_resource(tr_ctx *tx, sl_xds_type t, const char *name, const ProtobufCMessage *m)
{
    (void)tr_out_add(tx, t, name, m);
}

/* The proxies that serve no gateway (plugins' server_proxy hooks: the
 * rate-limit server's configuration) after the n gateway proxies of res,
 * reports about the Settings. One that is also a gateway's proxy is left
 * out, an error on those gateways. */
static sl_status server_proxies(tr_ctx *tx, sl_tr_result *res, size_t n, tr_bytes_map *packed,
                                const tr_gw_item *gws, size_t n_gws)
{
    tr_sort_cache *none[SL_XDS_TYPE_COUNT] = {0};
    long pos = tr_bucket_find(tr_bucket_of(tx, tr_kind.settings), tx->opts.settings_namespace, "default");
    tr_cur cur = {tr_kind.settings, tx->opts.settings_namespace, "default", 0};
    tr_cur *saved = tx->cur;
    sl_status rc = SL_OK;
    for (size_t p = 0; p < sl_tr_plugin_count && rc == SL_OK; p++) {
        const char *name;
        bool taken = false;
        if (!sl_tr_plugins[p]->server_proxy)
            continue;
        tr_reset_out(tx);
        tx->cur = pos >= 0 ? &cur : NULL; /* the defaults: nothing to report about */
        name = sl_tr_plugins[p]->server_proxy(tx);
        for (size_t i = 0; name && i < res->n_proxies && !taken; i++)
            taken = strcmp(res->proxies[i].name, name) == 0;
        for (size_t g = 0; taken && g < n_gws; g++) {
            tr_cur gcur = {tr_kind.gateway, gws[g].ns, gws[g].name, 0};
            if (gws[g].idx < 0 || !gateway_of(&gws[g], name))
                continue;
            tx->cur = &gcur;
            tr_error(tx, "spec.proxyNames: proxy %s is the xDS role of the rate-limit server's configuration "
                         "(%s plugin), which is then not served: name the proxy otherwise", name,
                     sl_tr_plugins[p]->name);
            *tr_flag(tx, tr_kind.gateway, (size_t)gws[g].idx) |= TR_REJECTED;
        }
        tx->cur = saved;
        if (!name || taken || res->n_proxies >= n + sl_tr_plugin_count)
            continue;
        sl_tr_proxy *op = &res->proxies[res->n_proxies++];
        if (!(op->name = strdup(name)))
            return SL_ERR_NOMEM;
        rc = tr_pack_proxy(tx, op, packed, none);
    }
    tr_reset_out(tx);
    return rc;
}

/* The proxies of every gateway into res, in name order. */
static sl_status translate_proxies(tr_ctx *tx, sl_tr_result *res, const tr_up_out *built, bool up_fast)
{
    tr_bytes_map packed = {0};
    size_t n_gws, n_p;
    tr_gw_item *gws = tr_gateways(tx, &n_gws);
    char **pnames = proxy_names(tx, gws, n_gws, &n_p);
    uint8_t *reach = tr_alloc(tx, tr_bucket_of(tx, tr_kind.upstream)->n + 1);
    sl_status rc;
    tx->reach_all = tx->settings->all_clusters_to_every_proxy;
    res->proxies = calloc(n_p + sl_tr_plugin_count, sizeof *res->proxies);
    if (!res->proxies)
        return SL_ERR_NOMEM;
    for (size_t p = 0; p < n_p; p++) {
        sl_tr_proxy *op = &res->proxies[res->n_proxies++];
        if ((rc = translate_proxy(tx, op, pnames[p], gws, n_gws, built, up_fast, &packed, reach)) != SL_OK)
            return rc;
    }
    if ((rc = server_proxies(tx, res, n_p, &packed, gws, n_gws)) != SL_OK)
        return rc;
    tr_sort_proxies(res);
    return SL_OK;
}

sl_status sl_tr_translate(sl_tr_result **out, sl_tr_store *s, const sl_tr_options *opts)
{
    tr_ctx *tx = calloc(1, sizeof *tx);
    sl_tr_result *res = calloc(1, sizeof *res);
    volatile sl_status rc = SL_OK;
    tr_up_out *volatile built = NULL;
    bool up_fast = false;
    long pos;

    *out = NULL;
    if (!tx || !res) {
        free(tx);
        free(res);
        return SL_ERR_NOMEM;
    }
    tr_store_settle(s); /* the last one finished first: it reads the store as it was */
    tr_init_kinds();
    sl_arena_init(&tx->arena, 64 * 1024);
    if (setjmp(tx->oom)) {
        rc = sl_error_set(SL_ERR_NOMEM, "out of memory translating");
        goto out;
    }
    s->translations++;
    if ((pos = tr_ctx_setup(tx, s, opts)) >= 0)
        *tr_flag(tx, tr_kind.settings, (size_t)pos) |= TR_SEEN;
    /* Upstreams first: routes need to know which ones are usable. Their
     * clusters are kept for every proxy that is not proxyless. Upstream
     * groups: their destinations must exist. */
    built = tr_alloc(tx, (tr_bucket_of(tx, tr_kind.upstream)->n + 1) * sizeof *built);
    if ((rc = tr_translate_upstreams(tx, built, &up_fast)) != SL_OK)
        goto out;
    tr_check_upstream_groups(tx);
    /* Gateways, grouped by proxy. */
    if ((rc = translate_proxies(tx, res, built, up_fast)) != SL_OK)
        goto out;
    tr_validate_unselected(tx);
    if (tx->opts.defer_reports) { /* finished by sl_tr_result_finish() */
        res->pending = tx;
        s->pending = res;
        *out = res;
        return SL_OK;
    }
    rc = tr_finish(tx, res);
out:
    tr_ctx_free(tx);
    if (rc != SL_OK) {
        sl_tr_result_free(res);
        return rc;
    }
    *out = res;
    return SL_OK;
}
