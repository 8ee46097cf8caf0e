/* memo.c - a gateway's virtual services kept between translations
 * (tr_gw_memo): the unchanged ones are served without being visited. */
#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "sluice/vec.h"
#include "translate_internal.h"

static uint64_t dom_hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h ? h : 1; /* 0 marks a free slot */
}

tr_gw_memo *tr_memo_find(tr_ctx *tx, const char *proxy, const char *listener)
{
    for (tr_gw_memo *m = tx->store->memos; m; m = m->next)
        if (strcmp(m->proxy, proxy) == 0 && strcmp(m->listener, listener) == 0) {
            m->seen = tx->store->translations;
            return m;
        }
    return NULL;
}

/* Forgets m (unlinks and frees it). */
static void memo_drop(tr_ctx *tx, tr_gw_memo *m)
{
    for (tr_gw_memo **pp = &tx->store->memos; *pp; pp = &(*pp)->next)
        if (*pp == m) {
            *pp = m->next;
            m->next = NULL;
            tr_gw_memo_free(m);
            return;
        }
}

/* Whether m holds for this translation: only VirtualServices changed
 * since (changed[i], filled here), none that m serves is rejected by now
 * (another gateway found it bad), and no route table they reached is. */
bool tr_memo_usable(tr_ctx *tx, const tr_gw_memo *m, bool *changed)
{
    const tr_bucket *vb = tr_bucket_of(tx, tr_kind.vs);
    if (m->world != tx->store->world || m->vs_layout != tx->store->vs_layout || m->n != vb->n ||
        strcmp(m->settings_ns, tx->opts.settings_namespace) != 0)
        return false;
    for (size_t i = 0; i < vb->n; i++) {
        changed[i] = m->stamps[i] != vb->v[i].stamp;
        if (!changed[i] && m->c[i] && (*tr_flag(tx, tr_kind.vs, i) & TR_REJECTED))
            return false;
    }
    for (size_t k = 0; k < m->n_con; k++)
        if (m->con[k].rt >= 0 && !changed[m->con[k].vs] &&
            (*tr_flag(tx, tr_kind.rt, (size_t)m->con[k].rt) & TR_REJECTED))
            return false;
    return true;
}

/* Adds domain d of VirtualService vs to m's open-addressing table (a power
 * of two of slots, at most half full). Growing it is a rehash into a new
 * zeroed table, not an array growth: sl_vec_reserve() does not fit. */
static bool dom_add(tr_gw_memo *m, const char *d, uint32_t vs)
{
    size_t i;
    if ((m->n_dom + 1) * 2 > m->cap_dom) {
        size_t cap = m->cap_dom ? m->cap_dom * 2 : 64;
        tr_gw_dom *v = calloc(cap, sizeof *v);
        if (!v)
            return false;
        for (size_t j = 0; j < m->cap_dom; j++)
            if (m->dom[j].h) {
                for (i = m->dom[j].h & (cap - 1); v[i].h; i = (i + 1) & (cap - 1))
                    ;
                v[i] = m->dom[j];
            }
        free(m->dom);
        m->dom = v;
        m->cap_dom = cap;
    }
    for (i = dom_hash(d) & (m->cap_dom - 1); m->dom[i].h; i = (i + 1) & (m->cap_dom - 1))
        if (m->dom[i].h == dom_hash(d) && m->dom[i].vs == vs)
            return true; /* there already */
    m->dom[i].h = dom_hash(d);
    m->dom[i].vs = vs;
    m->n_dom++;
    return true;
}

/* Records what VirtualService i's kept virtual host c does besides its
 * bytes (plugins used, route table flags, upstreams referred to) and its
 * domains. */
static bool memo_add(tr_gw_memo *m, size_t i, const tr_vh_cache *c)
{
    size_t need = m->n_con + c->n_used + c->n_rt + c->n_up;
    m->c[i] = c;
    m->vh[i].bytes = c->bytes;
    m->vh[i].len = c->len;
    m->vh[i].name = c->name;
    m->vh[i].domains = c->domains;
    m->vh[i].n_domains = c->n_domains;
    if (SL_VEC_RESERVE(m->con, m->cap_con, need) != SL_OK)
        return false;
    for (size_t k = 0; k < c->n_used; k++) {
        tr_gw_contrib x = {(uint32_t)i, -1, 0, c->used[k], -1};
        m->con[m->n_con++] = x;
    }
    for (size_t k = 0; k < c->n_rt; k++) {
        tr_gw_contrib x = {(uint32_t)i, c->rt_idx[k], c->rt_flags[k], NULL, -1};
        m->con[m->n_con++] = x;
    }
    for (size_t k = 0; k < c->n_up; k++) {
        tr_gw_contrib x = {(uint32_t)i, -1, 0, NULL, c->up_idx[k]};
        m->con[m->n_con++] = x;
    }
    for (size_t k = 0; k < c->n_domains; k++)
        if (!dom_add(m, c->domains[k], (uint32_t)i))
            return false;
    return true;
}

/* Keeps (or brings up to date) the memo of the gateway being translated.
 * got[i]: the kept virtual host VirtualService i was served from; served[i]:
 * 1 served from got[i] without reports, 2 served otherwise (or left out
 * when selected), 0 not selected. changed: the VirtualServices translated
 * over the memo m, or NULL (m NULL: made anew). */
void tr_memo_keep(tr_ctx *tx, tr_gw_memo *m, const tr_gateway *gw, const tr_vh_cache *const *got,
                      const uint8_t *served, const bool *changed, bool dropped)
{
    const tr_bucket *vb = tr_bucket_of(tx, tr_kind.vs);
    bool ok = !dropped;
    for (size_t i = 0; i < vb->n && ok; i++)
        ok = (!changed || changed[i]) && served[i] == 2 ? false : ok;
    if (!ok) {
        if (m)
            memo_drop(tx, m);
        return;
    }
    if (m && changed) { /* the changed ones only */
        size_t k = 0;
        for (size_t i = 0; i < vb->n && m->rcfg; i++)
            if (changed[i] && (m->c[i] || served[i])) { /* other virtual hosts */
                tr_blob_unref(m->rcfg);
                m->rcfg = NULL;
            }
        for (size_t j = 0; j < m->n_con; j++)
            if (!changed[m->con[j].vs])
                m->con[k++] = m->con[j];
        m->n_con = k;
        for (size_t i = 0; i < vb->n; i++) {
            if (!changed[i])
                continue;
            m->stamps[i] = vb->v[i].stamp;
            m->c[i] = NULL;
            if (served[i] == 1 && !memo_add(m, i, got[i])) {
                memo_drop(tx, m);
                return;
            }
        }
        /* stale domains (of versions gone) are skipped when looked up; let
         * them not pile up */
        if (m->n_dom > 4 * (vb->n + 16)) {
            free(m->dom);
            m->dom = NULL;
            m->n_dom = m->cap_dom = 0;
            for (size_t i = 0; i < vb->n; i++)
                for (size_t d = 0; m->c[i] && d < m->c[i]->n_domains; d++)
                    if (!dom_add(m, m->c[i]->domains[d], (uint32_t)i)) {
                        memo_drop(tx, m);
                        return;
                    }
        }
        return;
    }
    if (m)
        memo_drop(tx, m);
    if (!(m = calloc(1, sizeof *m)))
        return;
    m->next = tx->store->memos;
    tx->store->memos = m; /* linked first: freed with the store whatever happens */
    m->seen = tx->store->translations;
    if (!(m->proxy = strdup(gw->proxy)) || !(m->listener = strdup(gw->listener_name)) ||
        !(m->settings_ns = strdup(tx->opts.settings_namespace)) ||
        !(m->stamps = calloc(vb->n + 1, sizeof *m->stamps)) || !(m->c = calloc(vb->n + 1, sizeof *m->c)) ||
        !(m->vh = calloc(vb->n + 1, sizeof *m->vh))) {
        memo_drop(tx, m);
        return;
    }
    m->world = tx->store->world;
    m->vs_layout = tx->store->vs_layout;
    m->n = vb->n;
    for (size_t i = 0; i < vb->n; i++) {
        m->stamps[i] = vb->v[i].stamp;
        if (served[i] == 1 && !memo_add(m, i, got[i])) {
            memo_drop(tx, m);
            return;
        }
    }
}

/* Whether a changed virtual service's domain may be contested: one of the
 * unchanged ones m serves, or another changed one, has it. */
bool tr_memo_contested(const tr_gw_memo *m, const bool *changed, const tr_vs_item *items, size_t n_items)
{
    size_t n_changed = 0;
    for (size_t k = 0; k < n_items; k++)
        n_changed += changed[items[k].idx];
    if (n_changed > 64)
        return true; /* not worth it: look at all of them */
    for (size_t k = 0; k < n_items; k++) {
        const tr_vhost_t *vh = items[k].vh;
        if (!changed[items[k].idx])
            continue;
        for (size_t d = 0; d < vh->n_domains; d++) {
            uint64_t h = dom_hash(vh->domains[d]);
            for (size_t i = h & (m->cap_dom - 1); m->cap_dom && m->dom[i].h; i = (i + 1) & (m->cap_dom - 1)) {
                const tr_vh_cache *c = m->c[m->dom[i].vs];
                if (m->dom[i].h != h || changed[m->dom[i].vs] || !c)
                    continue;
                for (size_t j = 0; j < c->n_domains; j++)
                    if (strcmp(c->domains[j], vh->domains[d]) == 0)
                        return true;
            }
            for (size_t o = 0; o < n_items; o++)
                if (o != k && changed[items[o].idx])
                    for (size_t j = 0; j < items[o].vh->n_domains; j++)
                        if (strcmp(items[o].vh->domains[j], vh->domains[d]) == 0)
                            return true;
        }
    }
    return false;
}

/* The virtual host of a kept one the memo serves (its bytes are spliced),
 * from the memo's copy of what it needs (not the kept one: one cache miss
 * less for each of thousands). */
tr_vhost_t *tr_vh_of_kept(tr_ctx *tx, const tr_gw_memo *m, size_t i)
{
    const struct tr_gw_vh *k = &m->vh[i];
    tr_vhost_t *vh = TR_NEW(tx, envoy__config__route__v3__virtual_host);
    vh->name = k->name;
    vh->domains = k->domains; /* the kept strings: read only, valid through this translation */
    vh->n_domains = k->n_domains;
    tr_bytes_put(tx, &tx->vh_bytes, vh, k->bytes, k->len);
    return vh;
}

/* The unchanged virtual services' virtual hosts, when tr_gateway_vhosts()
 * left them out (items[k].vh NULL: the route was to be patched). */
void tr_vh_materialize(tr_ctx *tx, const tr_gw_memo *m, tr_vs_item *items, size_t n_items)
{
    tr_bytes_reserve(tx, &tx->vh_bytes, tx->vh_bytes.n + n_items);
    for (size_t k = 0; k < n_items; k++)
        if (!items[k].vh)
            items[k].vh = tr_vh_of_kept(tx, m, (size_t)items[k].idx);
}

void tr_memo_replay(tr_ctx *tx, const tr_gw_memo *m, const bool *changed)
{
    for (size_t k = 0; k < m->n_con; k++) {
        const tr_gw_contrib *x = &m->con[k];
        if (changed[x->vs])
            continue;
        if (x->use)
            tr_use(tx, x->use);
        else if (x->up != -1)
            tr_reach_upstream(tx, x->up);
        else
            *tr_flag(tx, tr_kind.rt, (size_t)x->rt) |= x->flags;
    }
}

const tr_vh_cache *tr_memo_served(const tr_gw_memo *m, size_t i) { return m->c[i]; }

bool tr_memo_patchable(const tr_gw_memo *m) { return m->rcfg && m->rcfg->parts; }

tr_blob *tr_memo_route(tr_ctx *tx, const tr_gw_memo *m, const char *rname)
{
    if (!m || !m->rcfg || strcmp(m->rcfg->name, rname) != 0)
        return NULL;
    return tx->opts.route_parts_only || !m->rcfg->parts || !m->rcfg->parts->no_whole ? m->rcfg : NULL;
}
