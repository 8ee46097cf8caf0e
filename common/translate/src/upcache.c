/* upcache.c - upstreams built by earlier translations (tr_up_cache): valid
 * while what they were built from is unchanged. */
#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "translate_internal.h"

uint64_t tr_entry_stamp(tr_ctx *tx, const sl_kind *k, const char *ns, const char *name)
{
    long pos = tr_bucket_find(tr_bucket_of(tx, k), ns, name);
    return pos < 0 ? 0 : tr_bucket_of(tx, k)->v[pos].stamp;
}

/* The stamp of e's endpoint set (0: none), by advancing st's cursor:
 * the endpoint sets and upstreams are both sorted by (namespace, name). */
static uint64_t eps_stamp_next(tr_ctx *tx, tr_up_stamps *st, const tr_entry *e)
{
    const tr_bucket *b = tr_bucket_of(tx, tr_kind.eps);
    while (st->eps_pos < b->n) {
        const tr_entry *x = &b->v[st->eps_pos];
        int c = strcmp(x->ns, e->ns);
        if (!c)
            c = strcmp(x->name, e->name);
        if (c > 0)
            return 0;
        if (!c)
            return x->stamp;
        st->eps_pos++;
    }
    return 0;
}

/* Whether the kept build c of upstream e is still what building it would
 * give. Its endpoint set is looked up only when some endpoint set changed
 * since c was last checked (the store's eps_gen): usually none did. */
static bool cache_valid(tr_ctx *tx, const tr_entry *e, tr_up_cache *c, tr_up_stamps *st)
{
    if (!c || c->up_stamp != e->stamp || c->settings_stamp != st->settings ||
        c->secret_gen != tx->store->secret_gen || strcmp(c->settings_ns, tx->opts.settings_namespace) != 0)
        return false;
    if (c->eps_gen != tx->store->eps_gen) {
        if (c->eps_stamp != eps_stamp_next(tx, st, e))
            return false;
        c->eps_gen = tx->store->eps_gen;
    }
    return true;
}

/* The upstream's cluster from an earlier translation, when nothing it was
 * built from changed: its packed bytes are used as they are. */
bool tr_upstream_cached(tr_ctx *tx, tr_entry *e, tr_up_out *o, tr_up_stamps *st)
{
    if (!cache_valid(tx, e, e->cache, st))
        return false;
    memset(o, 0, sizeof *o);
    o->cached = e->cache;
    o->cluster_name = e->cache->cluster->name;
    return true;
}

/* Keeps a clean build of the upstream for the next translation, and uses
 * its packed bytes in this one. */
sl_status tr_upstream_cache_put(tr_ctx *tx, tr_entry *e, tr_up_out *o, tr_up_stamps *st)
{
    tr_up_cache *c = calloc(1, sizeof *c);
    if (!c || !(c->settings_ns = strdup(tx->opts.settings_namespace)) ||
        !(c->cluster = tr_blob_pack(&o->cluster->base, o->cluster->name)) ||
        (o->cla && !(c->cla = tr_blob_pack(&o->cla->base, o->cla->cluster_name)))) {
        tr_up_cache_free(c);
        return SL_ERR_NOMEM;
    }
    c->up_stamp = e->stamp;
    c->eps_stamp = eps_stamp_next(tx, st, e);
    c->eps_gen = tx->store->eps_gen;
    c->settings_stamp = st->settings;
    c->secret_gen = tx->store->secret_gen;
    tr_up_cache_free(e->cache);
    e->cache = c;
    o->cached = c;
    o->cluster_name = o->cluster->name;
    return SL_OK;
}
