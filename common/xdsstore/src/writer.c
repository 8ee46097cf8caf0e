/* writer.c - the sluice_xds writer: puts, pipelined batches, commits, deletions (see sluice/xds_writer.h). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sluice/log.h"
#include "writer_internal.h"

double xdsw_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

/* Whether key holds a Secret (private keys: no older value may linger). */
static bool secret_key(const char *key)
{
    sl_xds_key k;
    return sl_xds_key_parse(&k, key) == SL_OK && k.kind == SL_XDS_KEY_RESOURCE && k.type == SL_XDS_SECRET;
}

/* A secret key whose value is being replaced: its older values are purged
 * once the commit that stops naming them is written (purge_secrets). */
static void remember_secret(sl_xdsw *w, const char *key)
{
    char *copy;
    if (!secret_key(key) || SL_VEC_RESERVE(w->purge, w->cap_purge, w->n_purge + 1) != SL_OK || !(copy = strdup(key)))
        return; /* best effort: the value then stays in history until it rolls out */
    w->purge[w->n_purge++] = copy;
}

/* Keeps only the current value of every secret key replaced since the
 * last commit: a rotated private key does not stay in the bucket's
 * history. After the commit, so no reader is left naming a purged one. */
static void purge_secrets(sl_xdsw *w)
{
    for (size_t i = 0; i < w->n_purge; i++) {
        if (sl_kv_purge_history(w->kv, w->purge[i], 1) != SL_OK)
            sl_log_warn(w->comp, "older values of a secret not purged", "key=%s err=%s", sl_log_q(w->purge[i]),
                        sl_log_q(sl_error_msg()));
        free(w->purge[i]);
    }
    w->n_purge = 0;
}

sl_status xdsw_put(sl_xdsw *w, written *known, const char *key, const uint8_t *data, size_t len, uint64_t *rev,
                   written **wout)
{
    written *x = known ? known : xdsw_map_get(&w->xds, key);
    sl_status rc;
    if (x && x->len == len && memcmp(x->data, data, len) == 0) {
        *rev = x->rev;
        if (wout)
            *wout = x;
        return SL_OK;
    }
    if (w->batching) {
        /* Published with the rest of the proxy's puts before its commit
         * (flush_batch); the revision it will get, if nobody else writes
         * the bucket meanwhile, is the next one: flush_batch checks. */
        if ((rc = SL_VEC_RESERVE(w->batch, w->cap_batch, w->n_batch + 1)) != SL_OK)
            return rc;
        *rev = ++w->seq;
    } else {
        if ((rc = sl_kv_put(rev, w->kv, key, data, len)) != SL_OK)
            return rc;
        if (*rev > w->seq)
            w->seq = *rev;
    }
    if (w->c_writes)
        sl_counter_inc(w->c_writes);
    if (x && x->rev)
        remember_secret(w, key);
    if (!x) {
        if (!(x = xdsw_map_put(&w->xds, key)))
            return SL_ERR_NOMEM;
        x->commit = sl_xds_key_is_commit(key);
        w->n_commits += (size_t)x->commit;
    }
    free(x->data);
    x->data = malloc(len ? len : 1);
    if (!x->data)
        return SL_ERR_NOMEM;
    memcpy(x->data, data, len);
    x->len = len;
    x->rev = *rev;
    x->fp = 0;
    if (w->batching)
        w->batch[w->n_batch++] = x;
    if (wout)
        *wout = x;
    return SL_OK;
}

/* Publishes the batched puts, pipelined (one round trip), and waits for
 * every acknowledgement. *predicted false when a revision differs from the
 * one xdsw_put() gave out (another writer came between): the manifest
 * chunks then name wrong revisions, and the proxy must be written again
 * (its keys' revisions are the true ones now). A put that failed leaves
 * its key never matching, so the next write puts it again. */
static sl_status flush_batch(sl_xdsw *w, bool *predicted)
{
    sl_status rc;
    *predicted = true;
    if (!w->n_batch)
        return SL_OK;
    if ((rc = SL_VEC_RESERVE(w->items, w->cap_items, w->n_batch)) != SL_OK) {
        for (size_t i = 0; i < w->n_batch; i++)
            w->batch[i]->len = SIZE_MAX;
        goto out;
    }
    for (size_t i = 0; i < w->n_batch; i++)
        w->items[i] = (sl_kv_put_item){w->batch[i]->key, w->batch[i]->data, w->batch[i]->len, 0, SL_OK};
    rc = sl_kv_put_many(w->kv, w->items, w->n_batch, 5000 + (int64_t)w->n_batch); /* big batches: more time */
    w->st.batches++;
    for (size_t i = 0; i < w->n_batch; i++) {
        written *x = w->batch[i];
        if (w->items[i].status != SL_OK) {
            x->len = SIZE_MAX; /* never "as written": put again next time */
            x->rev = 0;
            continue;
        }
        if (w->items[i].rev != x->rev)
            *predicted = false;
        x->rev = w->items[i].rev;
        if (x->rev > w->seq)
            w->seq = x->rev;
    }
    if (rc != SL_OK)
        w->seq = 0; /* not known any more: the next write learns it */
out:
    w->n_batch = 0;
    return rc;
}

/* The revision of the commit stored under commit_key (0: none, or a value
 * that does not decode, e.g. the JSON commit of an older version). */
static uint64_t commit_revision(sl_xdsw *w, const char *commit_key)
{
    written *x = xdsw_map_get(&w->xds, commit_key);
    uint64_t r = 0;
    if (x && x->data) {
        Sluice__V1__XdsCommit *c = sluice__v1__xds_commit__unpack(NULL, x->len, x->data);
        if (c)
            r = c->revision;
        sluice__v1__xds_commit__free_unpacked(c, NULL);
    }
    return r;
}

/* The commit of proxy naming the chunk references in w->wb: not written
 * again when it names the same chunks as the stored one. */
static sl_status write_commit(sl_xdsw *w, const char *proxy)
{
    char commit_key[SL_XDS_KEY_MAX];
    Sluice__V1__XdsCommit commit = SLUICE__V1__XDS_COMMIT__INIT;
    write_buf *b = &w->wb;
    uint64_t rev, old_revision;
    size_t len;
    sl_status rc;

    if ((rc = sl_xds_key_commit(commit_key, sizeof commit_key, proxy)) != SL_OK)
        return rc;
    old_revision = commit_revision(w, commit_key);
    commit.n_chunks = b->n_refs;
    for (size_t i = 0; i < b->n_refs; i++) { /* the arrays are final now */
        b->refs[i].id = b->ids[i];
        b->refp[i] = &b->refs[i];
    }
    commit.chunks = b->refp;
    commit.revision = old_revision;
    if ((len = xdsw_wb_pack(b, &commit.base)) == SIZE_MAX)
        return sl_error_set(SL_ERR_NOMEM, "out of memory");
    {
        written *x = xdsw_map_get(&w->xds, commit_key);
        if (x && x->len == len && memcmp(x->data, b->buf, len) == 0)
            return SL_OK;
    }
    commit.revision = old_revision + 1;
    if ((len = xdsw_wb_pack(b, &commit.base)) == SIZE_MAX)
        return sl_error_set(SL_ERR_NOMEM, "out of memory");
    {
        double t = xdsw_now_us();
        rc = xdsw_put(w, NULL, commit_key, b->buf, len, &rev, NULL);
        w->st.commit_us += xdsw_now_us() - t;
        if (rc != SL_OK)
            return rc;
    }
    sl_log_info(w->comp, "committed", "proxy=%s revision=%" PRIu64 " kv_revision=%" PRIu64 " chunks=%zu bytes=%zu",
                sl_log_q(proxy), old_revision + 1, rev, b->n_refs, len);
    purge_secrets(w);
    return SL_OK;
}

/* The last write's chunks become the ones to match; the list refills. */
static void rotate_chunks(wcache *wc)
{
    written **v = wc->prev_chunks;
    size_t cap = wc->cap_prev_chunks;
    wc->prev_chunks = wc->chunks;
    wc->n_prev_chunks = wc->n_chunks;
    wc->cap_prev_chunks = wc->cap_chunks;
    wc->chunks = v;
    wc->cap_chunks = cap;
    wc->n_chunks = 0;
    memcpy(wc->prev_t0, wc->t0, sizeof wc->t0);
    memcpy(wc->prev_tn, wc->tn, sizeof wc->tn);
}

/* One write of proxy p: every changed resource, part and manifest chunk
 * put (pipelined when batch: one round trip for all, their revisions
 * given out ahead and checked), then the commit. *again: the revisions
 * given out were not the ones stored; nothing was committed, write the
 * proxy again. */
static sl_status write_proxy_once(sl_xdsw *w, const sl_tr_proxy *p, size_t *n_res, bool batch, bool *again)
{
    sl_status rc;
    size_t pc = 0; /* cursor in prev_chunks */
    wcache *wc;

    *again = false;
    w->batching = batch;
    w->n_batch = 0;
    if (!(wc = xdsw_wcache_of(w, p->name)))
        return sl_error_set(SL_ERR_NOMEM, "out of memory");
    w->wb.n_refs = 0;
    rotate_chunks(wc);
    for (int t = 0; t < SL_XDS_TYPE_COUNT; t++)
        if ((rc = xdsw_write_type(w, wc, p, t, &pc, n_res)) != SL_OK)
            return rc;
    /* Everything the commit names is stored (acknowledged) before it. */
    if (w->batching) {
        bool predicted;
        double t = xdsw_now_us();
        w->batching = 0;
        rc = flush_batch(w, &predicted);
        w->st.flush_us += xdsw_now_us() - t;
        if (rc != SL_OK)
            return rc;
        if (!predicted) {
            *again = true;
            return SL_OK;
        }
    }
    return write_commit(w, p->name);
}

sl_status sl_xdsw_write_proxy(sl_xdsw *w, const sl_tr_proxy *p, size_t *n_res)
{
    size_t n_named = w->n_named, n0 = *n_res;
    bool again = false;
    sl_status rc = write_proxy_once(w, p, n_res, w->seq != 0, &again);
    if (rc == SL_OK && again) {
        wcache *c = xdsw_wcache_of(w, p->name);
        w->st.mispredicted++;
        if (c)
            xdsw_wcache_drop(c);
        w->n_named = n_named;
        *n_res = n0;
        rc = write_proxy_once(w, p, n_res, false, &again);
    }
    if (rc != SL_OK) {
        wcache *c = xdsw_wcache_of(w, p->name);
        for (size_t i = 0; i < w->n_batch; i++)
            w->batch[i]->len = SIZE_MAX; /* given a revision, never sent */
        if (w->n_batch)
            w->seq = 0;
        w->n_batch = 0;
        w->batching = 0;
        if (c)
            xdsw_wcache_drop(c);
    }
    return rc;
}

void sl_xdsw_write_gone(sl_xdsw *w, const sl_tr_result *r)
{
    for (size_t i = 0; i < w->n_proxies; i++) {
        sl_tr_proxy empty;
        size_t n = 0;
        if (sl_tr_result_proxy(r, w->proxies[i]))
            continue;
        memset(&empty, 0, sizeof empty);
        empty.name = w->proxies[i];
        if (sl_xdsw_write_proxy(w, &empty, &n) != SL_OK)
            sl_log_warn(w->comp, "could not write the empty commit of a removed proxy", "proxy=%s err=%s",
                        sl_log_q(w->proxies[i]), sl_log_q(sl_error_msg()));
    }
    for (size_t i = 0; i < w->n_proxies; i++)
        free(w->proxies[i]);
    free(w->proxies);
    w->proxies = calloc(r->n_proxies + 1, sizeof *w->proxies);
    w->n_proxies = 0;
    w->cap_proxies = w->proxies ? r->n_proxies + 1 : 0;
    for (size_t i = 0; w->proxies && i < r->n_proxies; i++)
        if ((w->proxies[w->n_proxies] = strdup(r->proxies[i].name)))
            w->n_proxies++;
}

/* Marks live every key the last writes of the proxies named. */
static void mark_named(sl_xdsw *w)
{
    for (size_t i = 0; i < w->xds.cap; i++)
        for (written *x = w->xds.b[i]; x; x = x->next)
            x->live = 0;
    for (wcache *c = w->wc; c; c = c->next) {
        for (int t = 0; t < SL_XDS_TYPE_COUNT; t++)
            for (size_t k = 0; k < c->types[t].n; k++) {
                const wc_item *it = &c->types[t].v[k];
                it->w->live = 1;
                for (size_t q = 0; it->parts && q < it->parts->n; q++)
                    it->parts->v[q].w->live = 1;
            }
        for (size_t k = 0; k < c->n_chunks; k++)
            c->chunks[k]->live = 1;
    }
}

void sl_xdsw_delete_stale(sl_xdsw *w)
{
    char **stale = NULL;
    size_t n = 0, cap = 0;
    if (w->n_named + w->n_commits == w->xds.n)
        return; /* every key was named (or is a commit): nothing to look for */
    /* Some key went unnamed: mark what the writes named, then look. */
    mark_named(w);
    for (size_t i = 0; i < w->xds.cap; i++)
        for (written *x = w->xds.b[i]; x; x = x->next) {
            if (x->live || x->commit)
                continue;
            if (SL_VEC_RESERVE(stale, cap, n + 1) != SL_OK)
                break;
            stale[n++] = x->key;
        }
    for (size_t i = 0; i < n; i++) {
        char *key = strdup(stale[i]);
        if (!key)
            continue;
        uint64_t drev = 0;
        if (sl_kv_delete(&drev, w->kv, key, 0) == SL_OK) {
            if (drev > w->seq)
                w->seq = drev;
            /* a secret no commit names any more: only its delete marker stays */
            if (secret_key(key) && sl_kv_purge_history(w->kv, key, 1) != SL_OK)
                sl_log_warn(w->comp, "older values of a deleted secret not purged", "key=%s err=%s",
                            sl_log_q(key), sl_log_q(sl_error_msg()));
            if (w->c_deletes)
                sl_counter_inc(w->c_deletes);
            xdsw_map_del(&w->xds, key);
        } else {
            sl_log_warn(w->comp, "could not delete a stale resource", "key=%s err=%s", sl_log_q(key),
                        sl_log_q(sl_error_msg()));
        }
        free(key);
    }
    free(stale);
}

/* Remembers one key as the bucket holds it; a proxy with a commit is one
 * sl_xdsw_write_gone() may have to empty later. */
static void load_entry(sl_xdsw *w, const sl_kv_entry *e)
{
    written *x = xdsw_map_put(&w->xds, e->key);
    sl_xds_key k;
    if (!x)
        return;
    free(x->data);
    x->data = malloc(e->len ? e->len : 1);
    if (x->data)
        memcpy(x->data, e->value, e->len);
    x->len = x->data ? e->len : 0;
    x->rev = e->revision;
    if (!x->commit && (x->commit = sl_xds_key_is_commit(e->key)))
        w->n_commits++;
    if (e->len && x->commit && sl_xds_key_parse(&k, e->key) == SL_OK &&
        SL_VEC_RESERVE(w->proxies, w->cap_proxies, w->n_proxies + 1) == SL_OK &&
        (w->proxies[w->n_proxies] = strdup(k.proxy)))
        w->n_proxies++;
}

/* Reads what the bucket holds so an unchanged resource is not rewritten
 * after a restart. */
static sl_status load(sl_xdsw *w)
{
    sl_kv_watch *kw = NULL;
    sl_status rc;
    if ((rc = sl_kv_watch_new(&kw, w->kv, NULL)) != SL_OK)
        return rc;
    for (;;) {
        sl_kv_entry e = {0};
        bool done = false;
        rc = sl_kv_watch_next(&e, &done, kw, 10000);
        if (rc != SL_OK || done)
            break;
        if (e.op == SL_KV_PUT)
            load_entry(w, &e);
        sl_kv_entry_deinit(&e);
    }
    sl_kv_watch_free(kw);
    return rc == SL_ERR_TIMEOUT ? sl_error_set(SL_ERR_TIMEOUT, "reading the xds bucket timed out") : rc;
}

sl_status sl_xdsw_new(sl_xdsw **out, sl_kv *kv, const sl_xdsw_opts *opts)
{
    sl_xdsw *w = calloc(1, sizeof *w);
    sl_status rc;
    *out = NULL;
    if (!w)
        return sl_error_set(SL_ERR_NOMEM, "out of memory");
    w->kv = kv;
    w->comp = opts && opts->log_component ? opts->log_component : "xds-writer";
    w->c_writes = opts ? opts->writes : NULL;
    w->c_deletes = opts ? opts->deletes : NULL;
    if ((rc = load(w)) != SL_OK) {
        sl_xdsw_free(w);
        return rc;
    }
    *out = w;
    return SL_OK;
}

void sl_xdsw_free(sl_xdsw *w)
{
    if (!w)
        return;
    xdsw_map_free(&w->xds);
    xdsw_wb_free(&w->wb);
    xdsw_wcache_free_all(w);
    free(w->batch);
    free(w->items);
    for (size_t i = 0; i < w->n_purge; i++)
        free(w->purge[i]);
    free(w->purge);
    for (size_t i = 0; i < w->n_proxies; i++)
        free(w->proxies[i]);
    free(w->proxies);
    free(w);
}

void sl_xdsw_round_begin(sl_xdsw *w)
{
    w->n_named = 0;
    memset(&w->st, 0, sizeof w->st);
}

sl_xdsw_stats sl_xdsw_stats_get(const sl_xdsw *w) { return w->st; }
