/* write_route.c - routes stored in parts, and the writer's per-proxy cache (see writer_internal.h). */
#include <stdlib.h>
#include <string.h>

#include "writer_internal.h"

/* One virtual host of a route being written: its bytes, and its name
 * (name_len bytes; SIZE_MAX: NUL terminated). */
typedef struct wpart {
    const uint8_t *data;
    size_t len;
    const char *name;
    size_t name_len;
} wpart;

static bool wpart_named(const wpart *p, const char *name)
{
    if (p->name_len == SIZE_MAX)
        return strcmp(p->name, name) == 0;
    return strncmp(name, p->name, p->name_len) == 0 && !name[p->name_len];
}

/* The parts of r: the translator's (r->parts), or else r split again
 * (*split_head, *split: the caller frees them). *parts NULL (and SL_OK)
 * when r does not split or a virtual host has no name. */
static sl_status route_parts(wpart **parts, size_t *np, const uint8_t **head, size_t *hl, uint8_t **split_head,
                             sl_xds_part **split, const sl_tr_resource *r)
{
    *parts = NULL;
    if (r->parts) {
        *np = r->parts->n;
        *head = r->parts->head;
        *hl = r->parts->head_len;
        for (size_t i = 0; i < *np; i++)
            if (!r->parts->v[i].name[0])
                return SL_OK; /* a virtual host without a name: the route stays whole */
        if (!(*parts = malloc((*np ? *np : 1) * sizeof **parts)))
            return sl_error_set(SL_ERR_NOMEM, "out of memory");
        for (size_t i = 0; i < *np; i++)
            (*parts)[i] = (wpart){r->parts->v[i].data, r->parts->v[i].len, r->parts->v[i].name, SIZE_MAX};
        return SL_OK;
    }
    if (sl_xds_route_split(split_head, hl, split, np, r->data, r->len) != SL_OK)
        return SL_OK;
    *head = *split_head;
    if (!(*parts = malloc((*np ? *np : 1) * sizeof **parts)))
        return sl_error_set(SL_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < *np; i++)
        (*parts)[i] = (wpart){r->data + (*split)[i].off, (*split)[i].len, (*split)[i].name, (*split)[i].name_len};
    return SL_OK;
}

/* Virtual host pt of route r, the next item it of the route's part list:
 * matched with last time's parts prev (by position, cursor *k), put when
 * not as last time, its manifest entry appended. */
static sl_status put_part(sl_xdsw *w, const char *proxy, const sl_tr_resource *r, const wpart *pt, wc_item *it,
                          wc_list *prev, size_t *k, const wc_item *prev_route, bool by_whole)
{
    char pkey[SL_XDS_KEY_MAX];
    wc_item *pi = NULL;
    bool same = false;
    uint64_t rev;
    sl_status rc;
    /* The same virtual host as last time at this place, or one further (one
     * removed before it): by its bytes pointer, else by name; else look its
     * key up. */
    for (size_t d = 0; d < 2 && prev && !pi; d++) {
        wc_item *c = *k + d < prev->n ? &prev->v[*k + d] : NULL;
        if (c && c->name && ((same = c->rdata == (const void *)pt->data && c->rlen == pt->len) ||
                             wpart_named(pt, c->name))) {
            pi = c;
            *k += d + 1;
        }
    }
    if (pi) { /* the name moves over */
        it->name = pi->name;
        pi->name = NULL;
    } else if (!(it->name = pt->name_len == SIZE_MAX ? strdup(pt->name) : strndup(pt->name, pt->name_len))) {
        return sl_error_set(SL_ERR_NOMEM, "out of memory");
    }
    it->hash = pi ? pi->hash : sl_xds_entry_hash(r->name, it->name);
    it->off = r->parts ? 0 : (size_t)(pt->data - r->data); /* in the whole: a split route's only */
    it->rdata = pt->data;
    it->rlen = pt->len;
    w->n_named++;
    if (pi && (same || (by_whole && pi->rlen == pt->len &&
                        memcmp(prev_route->whole + pi->off, pt->data, pt->len) == 0))) {
        /* as last time */
        it->w = pi->w;
        rev = pi->rev;
    } else {
        const char *key = pkey;
        if (pi)
            key = pi->w->key;
        else if ((rc = sl_xds_key_vhost(pkey, sizeof pkey, proxy, r->name, it->name)) != SL_OK)
            return rc;
        if ((rc = xdsw_put(w, pi ? pi->w : NULL, key, pt->data, pt->len, &rev, &it->w)) != SL_OK)
            return rc;
    }
    it->rev = rev;
    /* it->name lives in the cache until the next write: the entry may
     * point at it */
    return xdsw_wb_entry(&w->wb, it->name, rev, it->hash, 0);
}

sl_status xdsw_put_route_parts(sl_xdsw *w, const char *proxy, const char *key, const sl_tr_resource *r,
                               written *known, wc_item *prev_route, wc_list **now, written **head_w,
                               uint64_t *head_rev, bool *done)
{
    const uint8_t *head = NULL;
    uint8_t *split_head = NULL;
    sl_xds_part *split = NULL;
    wpart *parts = NULL;
    size_t hl = 0, np = 0, k = 0;
    uint64_t rev;
    wc_list *l = NULL;
    wc_list *prev = prev_route ? prev_route->parts : NULL;
    bool by_whole = prev_route && prev_route->whole && !r->parts; /* compare in the previous bytes */
    sl_status rc;

    *done = false;
    *now = NULL;
    if (r->len < SL_XDS_SPLIT_MIN)
        return SL_OK;
    if ((rc = route_parts(&parts, &np, &head, &hl, &split_head, &split, r)) != SL_OK || !parts || np < 2)
        goto out;
    if (!(l = calloc(1, sizeof *l)) || !(l->v = calloc(np, sizeof *l->v))) {
        rc = sl_error_set(SL_ERR_NOMEM, "out of memory");
        goto out;
    }
    if ((rc = xdsw_put(w, known, key, head, hl, &rev, head_w)) != SL_OK ||
        (rc = xdsw_wb_entry(&w->wb, r->name, rev, sl_xds_entry_hash(NULL, r->name), (uint32_t)np)) != SL_OK)
        goto out;
    *head_rev = rev;
    w->n_named++;
    for (size_t i = 0; i < np; i++) {
        rc = put_part(w, proxy, r, &parts[i], &l->v[l->n], prev, &k, prev_route, by_whole);
        if (l->v[l->n].name)
            l->n++; /* cleared with the list even when it failed */
        if (rc != SL_OK)
            goto out;
    }
    *done = true;
    *now = l;
    l = NULL;
out:
    xdsw_wc_list_clear(l);
    free(l);
    free(split_head);
    free(split);
    free(parts);
    return rc;
}

void xdsw_wc_list_clear(wc_list *l)
{
    for (size_t i = 0; l && i < l->n; i++) {
        free(l->v[i].name);
        free(l->v[i].whole);
        if (l->v[i].parts) {
            xdsw_wc_list_clear(l->v[i].parts);
            free(l->v[i].parts);
        }
    }
    if (l) {
        free(l->v);
        l->v = NULL;
        l->n = 0;
    }
}

wcache *xdsw_wcache_of(sl_xdsw *w, const char *proxy)
{
    wcache *c;
    for (c = w->wc; c; c = c->next)
        if (strcmp(c->proxy, proxy) == 0)
            return c;
    if (!(c = calloc(1, sizeof *c)) || !(c->proxy = strdup(proxy))) {
        free(c);
        return NULL;
    }
    c->next = w->wc;
    w->wc = c;
    return c;
}

void xdsw_wcache_free_all(sl_xdsw *w)
{
    for (wcache *c = w->wc, *nx; c; c = nx) {
        nx = c->next;
        for (int t = 0; t < SL_XDS_TYPE_COUNT; t++)
            xdsw_wc_list_clear(&c->types[t]);
        free(c->chunks);
        free(c->prev_chunks);
        free(c->proxy);
        free(c);
    }
    w->wc = NULL;
}

void xdsw_wcache_drop(wcache *c)
{
    for (int t = 0; t < SL_XDS_TYPE_COUNT; t++)
        xdsw_wc_list_clear(&c->types[t]);
    c->n_chunks = 0;
    c->n_prev_chunks = 0;
    memset(c->t0, 0, sizeof c->t0);
    memset(c->tn, 0, sizeof c->tn);
    memset(c->named, 0, sizeof c->named);
    memset(c->list, 0, sizeof c->list);
}

bool xdsw_wc_same_list(const wc_list *l, const sl_tr_proxy *p, int t)
{
    if (l->n != p->n[t])
        return false;
    for (size_t i = 0; i < l->n; i++) {
        const sl_tr_resource *r = &p->res[t][i];
        if (l->v[i].rname != (const void *)r->name || l->v[i].rdata != xdsw_res_id(r) || l->v[i].rlen != r->len)
            return false;
    }
    return true;
}

/* The same name, and the same parts by name when it was stored in parts
 * (then r must come in parts too, big enough to be split again); a
 * resource not in parts stays whole. */
bool xdsw_same_entries(const wc_item *it, const sl_tr_resource *r, int t)
{
    if (!it->name || !it->w || (it->rname != (const void *)r->name && strcmp(it->name, r->name) != 0))
        return false;
    if (!it->parts) /* whole last time, and whole now */
        return r->data && (t != SL_XDS_ROUTE || r->len < SL_XDS_SPLIT_MIN);
    if (!r->parts || r->len < SL_XDS_SPLIT_MIN || r->parts->n != it->parts->n || it->whole)
        return false;
    for (size_t q = 0; q < it->parts->n; q++) {
        const wc_item *pq = &it->parts->v[q];
        const sl_tr_part *pt = &r->parts->v[q];
        if (!pq->name || !pq->w || !pt->name[0] ||
            (pq->rdata != (const void *)pt->data && strcmp(pq->name, pt->name) != 0))
            return false;
    }
    return true;
}
