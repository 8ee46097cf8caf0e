/* vhost.c - VirtualServices -> virtual hosts of a gateway: which ones it
 * serves (kept, replayed or translated), and domain conflicts between them. */
#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "translate_internal.h"

static bool domain_ok(const char *d)
{
    if (!d || !d[0])
        return false;
    for (const char *c = d; *c; c++)
        if ((unsigned char)*c <= 32 || *c == '/' || (unsigned char)*c >= 127)
            return false;
    /* a wildcard is '*' alone, or at the start or end */
    for (const char *c = d + 1; c[0] && c[1]; c++)
        if (*c == '*')
            return false;
    return true;
}

tr_vhost_t *tr_translate_vs(tr_ctx *tx, const tr_gateway *gw, const Sluice__V1__VirtualService *vs)
{
    tr_vhost_t *vh = TR_NEW(tx, envoy__config__route__v3__virtual_host);
    const Sluice__V1__VirtualHost *in = vs->spec ? vs->spec->virtual_host : NULL;
    tr_route_ctx rc;
    const char *ns = tr_md_ns(vs->metadata);

    vh->name = tr_printf(tx, "%s_%s", ns, vs->metadata->name);
    for (char *c = vh->name; *c; c++)
        if (*c == '.')
            *c = '_';
    if (!in) {
        tr_error(tx, "spec.virtualHost: required");
        return vh;
    }
    if (in->n_domains == 0)
        TR_PUSH(tx, vh, domains, tr_strdup(tx, "*"));
    for (size_t i = 0; i < in->n_domains; i++) {
        bool dup = false;
        if (!domain_ok(in->domains[i])) {
            tr_error(tx, "spec.virtualHost.domains[%zu]: \"%s\" is not a domain (a host name, optionally with a port; "
                     "'*' only as a whole label at the start or end)", i, in->domains[i]);
            continue;
        }
        for (size_t j = 0; j < vh->n_domains; j++)
            if (strcmp(vh->domains[j], in->domains[i]) == 0)
                dup = true;
        if (dup) {
            tr_error(tx, "spec.virtualHost.domains[%zu]: \"%s\" is listed twice", i, in->domains[i]);
            continue;
        }
        TR_PUSH(tx, vh, domains, tr_strdup(tx, in->domains[i]));
    }
    memset(&rc, 0, sizeof rc);
    rc.gw = gw;
    rc.vs = vs;
    rc.vs_cur = tx->cur;
    rc.vh = vh;
    rc.owner_ns = ns;
    rc.path = "spec.virtualHost.routes";
    tr_translate_routes(tx, &rc, in->routes, in->n_routes);
    if (in->options)
        tr_check_fields(tx, &tx->supported, &in->options->base, "spec.virtualHost.options");
    {
        tr_vhost_in vin = {gw, vs, in->options, "spec.virtualHost.options"};
        for (size_t p = 0; p < sl_tr_plugin_count; p++)
            if (sl_tr_plugins[p]->virtual_host)
                sl_tr_plugins[p]->virtual_host(tx, &vin, vh);
    }
    return vh;
}

typedef struct rev_order {
    uint64_t rev;
    long idx;
    size_t item;
} rev_order;

static int cmp_rev_order(const void *a, const void *b)
{
    const rev_order *x = a, *y = b;
    if (x->rev != y->rev)
        return x->rev < y->rev ? -1 : 1;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* Starts the gateway's virtual hosts from its memo when only virtual
 * services changed since (v->changed), the unchanged ones replayed. */
static void vhosts_from_memo(tr_ctx *tx, const tr_gateway *gw, tr_gw_vhosts *v)
{
    tr_bucket *vb = tr_bucket_of(tx, tr_kind.vs);
    if ((v->memo = tr_memo_find(tx, gw->proxy, gw->listener_name)) != NULL) {
        v->changed = tr_alloc(tx, (vb->n + 1) * sizeof *v->changed);
        if (!tr_memo_usable(tx, v->memo, v->changed))
            v->changed = NULL;
    }
    /* The route patched from the memo's last one (tr_route_patched): the
     * unchanged ones' virtual hosts are not even made, unless needed. */
    v->lazy = v->changed && !gw->gw->spec->ssl && !gw->proxyless && tr_memo_patchable(v->memo);
    if (v->changed && !v->lazy) /* the kept bytes of every one */
        tr_bytes_reserve(tx, &tx->vh_bytes, tx->vh_bytes.n + vb->n);
    if (v->changed)
        tr_memo_replay(tx, v->memo, v->changed);
}

/* VirtualService i (e) translated for gw now, recorded and kept when
 * clean; rejected, its last good version is translated instead when it
 * is for this gateway (ssl or not), quietly. *vs: the version used. NULL:
 * none served. */
static tr_vhost_t *vhost_translated(tr_ctx *tx, const tr_gateway *gw, tr_gw_vhosts *v, size_t i,
                                    const Sluice__V1__VirtualService **vs)
{
    const tr_entry *e = &tr_bucket_of(tx, tr_kind.vs)->v[i];
    uint8_t *fl = tr_flag(tx, tr_kind.vs, i);
    tr_cur vcur = tr_cur_of(tr_kind.vs, e);
    tr_vhost_t *vh;
    tr_rec rec;
    memset(&rec, 0, sizeof rec);
    tx->cur = &vcur;
    tx->rec = &rec;
    vh = tr_translate_vs(tx, gw, *vs);
    tx->rec = NULL;
    if (!vcur.errors && !rec.stateful) {
        v->got[i] = tr_vh_keep(tx, (tr_entry *)e, gw, vh, &rec);
        v->served[i] = rec.n_reps ? 2 : 1;
    }
    if (vcur.errors) {
        *fl |= TR_REJECTED;
        if (vh)
            tr_forget_vhost(tx, vh->name);
        vh = NULL;
        /* the last good version may be this one, rejected now for what it
         * reaches (a delegation cycle): served quietly, with the route
         * tables' last good versions */
        if (e->good) {
            *fl |= TR_USED_GOOD;
            *vs = (const Sluice__V1__VirtualService *)e->good;
            tx->cur = NULL; /* its problems were reported when it was current */
            if (((*vs)->spec && (*vs)->spec->ssl_config) == (bool)gw->gw->spec->ssl)
                vh = tr_translate_vs(tx, gw, *vs);
        }
    }
    tx->cur = NULL; /* vcur ends here */
    return vh;
}

static void push_item(tr_gw_vhosts *v, size_t i, const Sluice__V1__VirtualService *vs, tr_vhost_t *vh)
{
    tr_vs_item *it = &v->items[v->n_items++];
    it->idx = (long)i;
    it->vs = vs;
    it->vh = vh;
    it->dropped = false;
}

/* VirtualService i as a virtual host of gateway g (gw), when it serves it:
 * from the memo when unchanged since, a kept one replayed, or translated. */
static void gateway_vhost(tr_ctx *tx, const tr_gw_item *g, const tr_gateway *gw, tr_gw_vhosts *v, size_t i)
{
    const Sluice__V1__GatewaySpec *spec = g->gw->spec;
    const tr_entry *e = &tr_bucket_of(tx, tr_kind.vs)->v[i];
    const Sluice__V1__VirtualService *vs = (const Sluice__V1__VirtualService *)e->msg;
    uint8_t *fl = tr_flag(tx, tr_kind.vs, i);
    tr_vhost_t *vh;
    bool has_ssl;
    if (v->changed && !v->changed[i]) {
        if (!(v->got[i] = tr_memo_served(v->memo, i)))
            return;
        *fl |= TR_SEEN;
        v->served[i] = 1;
        push_item(v, i, vs, v->lazy ? NULL : tr_vh_of_kept(tx, v->memo, i));
        return;
    }
    has_ssl = vs->spec && vs->spec->ssl_config;
    if (!tr_vs_selected(spec->http_gateway, g->ns, e))
        return;
    if (has_ssl != (bool)spec->ssl)
        return;
    *fl |= TR_SEEN;
    v->served[i] = 2;
    if (*fl & TR_REJECTED) {
        if (!(*fl & TR_USED_GOOD))
            return;
        vs = (const Sluice__V1__VirtualService *)e->good;
        if ((vs->spec && vs->spec->ssl_config) != (bool)spec->ssl)
            return; /* the version served is not for this gateway */
        tx->cur = NULL;
        vh = tr_translate_vs(tx, gw, vs);
    } else if ((vh = tr_vh_cached(tx, e, gw, &v->got[i])) != NULL) {
        /* unchanged since an earlier translation: replayed */
        v->served[i] = v->got[i]->n_reps ? 2 : 1;
    } else {
        vh = vhost_translated(tx, gw, v, i, &vs);
    }
    if (vh)
        push_item(v, i, vs, vh);
}

void tr_gateway_vhosts(tr_ctx *tx, const tr_gw_item *g, const tr_gateway *gw, tr_gw_vhosts *v)
{
    tr_bucket *vb = tr_bucket_of(tx, tr_kind.vs);
    v->items = tr_alloc(tx, (vb->n + 1) * sizeof *v->items);
    v->n_items = 0;
    tx->n_used = 0;
    v->got = tr_alloc(tx, (vb->n + 1) * sizeof *v->got);
    v->served = tr_alloc(tx, vb->n + 1);
    memset(v->got, 0, (vb->n + 1) * sizeof *v->got);
    memset(v->served, 0, vb->n + 1);
    vhosts_from_memo(tx, gw, v);
    for (size_t i = 0; i < vb->n; i++)
        gateway_vhost(tx, g, gw, v, i);
    tx->cur = NULL;
}

void tr_domain_conflicts(tr_ctx *tx, const tr_gw_item *g, tr_gw_vhosts *v)
{
    tr_bucket *vb = tr_bucket_of(tx, tr_kind.vs);
    tr_map domains = {0};
    rev_order *order;
    /* None are contested when the memo's were not and no changed one's are. */
    bool contested = !v->changed || tr_memo_contested(v->memo, v->changed, v->items, v->n_items);
    if (v->lazy && (contested || v->n_items < 2)) {
        tr_vh_materialize(tx, v->memo, v->items, v->n_items);
        v->lazy = false;
    }
    if (!contested)
        return;
    /* the older virtual service keeps a contested domain, the newer one is
     * rejected: oldest first (KV revision, position) */
    order = tr_alloc(tx, (v->n_items + 1) * sizeof *order);
    for (size_t i = 0; i < v->n_items; i++) {
        order[i].rev = vb->v[v->items[i].idx].rev;
        order[i].idx = v->items[i].idx;
        order[i].item = i;
    }
    qsort(order, v->n_items, sizeof *order, cmp_rev_order);
    for (size_t k = 0; k < v->n_items; k++) {
        tr_vs_item *it = &v->items[order[k].item];
        const tr_entry *e = &vb->v[it->idx];
        const char *conflict = NULL, *with = NULL;
        for (size_t d = 0; d < it->vh->n_domains && !conflict; d++) {
            const tr_vs_item *o = tr_map_get(&domains, it->vh->domains[d]);
            if (o) {
                conflict = it->vh->domains[d];
                with = tr_printf(tx, "%s.%s", vb->v[o->idx].ns, vb->v[o->idx].name);
            }
        }
        if (conflict) {
            tr_cur vcur = tr_cur_of(tr_kind.vs, e);
            tx->cur = &vcur;
            tr_error(tx, "domain conflict: the domain \"%s\" is present in other virtual services that belong to "
                         "the same Gateway as this one (%s.%s): [%s]",
                     conflict, g->ns, g->name, with);
            tx->cur = NULL;
            *tr_flag(tx, tr_kind.vs, (size_t)it->idx) |= TR_REJECTED;
            it->dropped = true;
            tr_forget_vhost(tx, it->vh->name);
            continue;
        }
        for (size_t d = 0; d < it->vh->n_domains; d++)
            tr_map_put(tx, &domains, it->vh->domains[d], it);
    }
}
