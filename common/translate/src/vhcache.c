/* vhcache.c - virtual hosts kept between translations (tr_vh_cache): the
 * packed VirtualHost and what translating it did, replayed while unchanged. */
#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "translate_internal.h"

static bool vh_cache_matches(const tr_ctx *tx, const tr_entry *e, const tr_gateway *gw, const tr_vh_cache *c)
{
    return c->vs_stamp == e->stamp && c->world == tx->store->world &&
           strcmp(c->settings_ns, tx->opts.settings_namespace) == 0 && strcmp(c->proxy, gw->proxy) == 0 &&
           strcmp(c->listener, gw->listener_name) == 0;
}

/* The virtual host of e for gw from an earlier translation, replayed (its
 * reports, plugins, route table flags, upstreams referred to), or NULL. The VirtualHost
 * returned holds only the name and domains; its packed bytes are spliced
 * into the route configuration. */
tr_vhost_t *tr_vh_cached(tr_ctx *tx, const tr_entry *e, const tr_gateway *gw, const tr_vh_cache **used)
{
    const tr_vh_cache *c = e->vcache;
    tr_vhost_t *vh;
    while (c && !vh_cache_matches(tx, e, gw, c))
        c = c->next;
    if (!c)
        return NULL;
    /* kept only when every route table it reached was accepted; one found
     * rejected earlier in this translation would be used quietly (last good
     * version or nothing) instead: translate it again */
    for (size_t i = 0; i < c->n_rt; i++)
        if (c->rt_idx[i] >= 0 && (size_t)c->rt_idx[i] < tr_bucket_of(tx, tr_kind.rt)->n &&
            (*tr_flag(tx, tr_kind.rt, (size_t)c->rt_idx[i]) & TR_REJECTED))
            return NULL;
    vh = TR_NEW(tx, envoy__config__route__v3__virtual_host);
    vh->name = tr_strdup(tx, c->name);
    for (size_t i = 0; i < c->n_domains; i++)
        TR_PUSH(tx, vh, domains, tr_strdup(tx, c->domains[i]));
    for (size_t i = 0; i < c->n_used; i++)
        tr_use(tx, c->used[i]);
    for (size_t i = 0; i < c->n_reps; i++) {
        const tr_vh_rep *r = &c->reps[i];
        tr_rep_add(tx, tr_rep_get(tx, sl_kind_at((size_t)r->kind), r->ns, r->name), r->error, r->msg);
    }
    for (size_t i = 0; i < c->n_rt; i++)
        if (c->rt_idx[i] >= 0 && (size_t)c->rt_idx[i] < tr_bucket_of(tx, tr_kind.rt)->n)
            *tr_flag(tx, tr_kind.rt, (size_t)c->rt_idx[i]) |= c->rt_flags[i];
    for (size_t i = 0; i < c->n_up; i++)
        tr_reach_upstream(tx, c->up_idx[i]);
    tr_bytes_put(tx, &tx->vh_bytes, vh, c->bytes, c->len);
    *used = c;
    return vh;
}

static char *xstrdup(tr_ctx *tx, const char *s)
{
    char *p = strdup(s ? s : "");
    if (!p)
        longjmp(tx->oom, 1);
    return p;
}

static void *xcalloc(tr_ctx *tx, size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size);
    if (!p)
        longjmp(tx->oom, 1);
    return p;
}

/* Keeps what translating e for gw gave (vh, and what rec recorded) for the
 * next translation, replacing what was kept for the same proxy and
 * listener, and registers vh's packed bytes for this one. */
const tr_vh_cache *tr_vh_keep(tr_ctx *tx, tr_entry *e, const tr_gateway *gw, const tr_vhost_t *vh,
                                  const tr_rec *rec)
{
    tr_vh_cache *c = xcalloc(tx, 1, sizeof *c), **pp;
    /* linked first, so a failure below frees it with the entry; its stamps
     * stay 0 (never matching) until it is complete */
    c->next = e->vcache;
    e->vcache = c;
    c->settings_ns = xstrdup(tx, tx->opts.settings_namespace);
    c->proxy = xstrdup(tx, gw->proxy);
    c->listener = xstrdup(tx, gw->listener_name);
    c->name = xstrdup(tx, vh->name);
    c->domains = xcalloc(tx, vh->n_domains, sizeof *c->domains);
    for (; c->n_domains < vh->n_domains; c->n_domains++)
        c->domains[c->n_domains] = xstrdup(tx, vh->domains[c->n_domains]);
    c->used = xcalloc(tx, rec->n_used, sizeof *c->used);
    for (; c->n_used < rec->n_used; c->n_used++)
        c->used[c->n_used] = rec->used[c->n_used];
    c->reps = xcalloc(tx, rec->n_reps, sizeof *c->reps);
    for (; c->n_reps < rec->n_reps; c->n_reps++) {
        tr_vh_rep *r = &c->reps[c->n_reps];
        r->kind = rec->reps[c->n_reps].kind;
        r->error = rec->reps[c->n_reps].error;
        r->ns = xstrdup(tx, rec->reps[c->n_reps].ns);
        r->name = xstrdup(tx, rec->reps[c->n_reps].name);
        r->msg = xstrdup(tx, rec->reps[c->n_reps].msg);
    }
    c->rt_idx = xcalloc(tx, rec->n_rt, sizeof *c->rt_idx);
    c->rt_flags = xcalloc(tx, rec->n_rt, sizeof *c->rt_flags);
    for (; c->n_rt < rec->n_rt; c->n_rt++) {
        c->rt_idx[c->n_rt] = rec->rt_idx[c->n_rt];
        c->rt_flags[c->n_rt] = rec->rt_flags[c->n_rt];
    }
    c->up_idx = xcalloc(tx, rec->n_up, sizeof *c->up_idx);
    for (; c->n_up < rec->n_up; c->n_up++)
        c->up_idx[c->n_up] = rec->up_idx[c->n_up];
    if (!(c->blob = tr_blob_pack(&vh->base, vh->name ? vh->name : "")))
        longjmp(tx->oom, 1);
    c->bytes = c->blob->data; /* vh_bytes holds blobs' bytes only (tr_pack_route_config) */
    c->len = c->blob->len;
    c->vs_stamp = e->stamp;
    c->world = tx->store->world;
    /* drop what was kept for the same proxy and listener (and stale ones) */
    for (pp = &c->next; *pp;) {
        tr_vh_cache *o = *pp;
        if (o->vs_stamp != c->vs_stamp || o->world != c->world ||
            (strcmp(o->proxy, c->proxy) == 0 && strcmp(o->listener, c->listener) == 0)) {
            *pp = o->next;
            o->next = NULL;
            tr_vh_cache_free(o);
        } else {
            pp = &o->next;
        }
    }
    tr_bytes_put(tx, &tx->vh_bytes, vh, c->bytes, c->len);
    return c;
}
