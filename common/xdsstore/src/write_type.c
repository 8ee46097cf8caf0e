/* write_type.c - a proxy's resources of one xDS type and their manifest chunks (see writer_internal.h). */
#include <stdlib.h>
#include <string.h>

#include "writer_internal.h"

sl_status xdsw_wb_entry(write_buf *b, const char *name, uint64_t rev, uint64_t hash, uint32_t parts)
{
    sl_status rc = SL_VEC_RESERVE(b->e, b->cap, b->n + 1);
    if (rc != SL_OK)
        return rc;
    b->e[b->n++] = (mf_entry){name, rev, hash, parts};
    return SL_OK;
}

sl_status xdsw_wb_ref(write_buf *b, const char *type, uint64_t hash, uint64_t rev)
{
    sl_status rc;
    if ((rc = SL_VEC_RESERVE(b->refs, b->cap_refs, b->n_refs + 1)) != SL_OK ||
        (rc = SL_VEC_RESERVE(b->refp, b->cap_refp, b->n_refs + 1)) != SL_OK ||
        (rc = SL_VEC_RESERVE(b->ids, b->cap_ids, b->n_refs + 1)) != SL_OK)
        return rc;
    size_t i = b->n_refs++;
    sluice__v1__xds_chunk_ref__init(&b->refs[i]);
    sl_xds_chunk_id(b->ids[i], hash);
    b->refs[i].type = (char *)type;
    b->refs[i].revision = rev;
    return SL_OK;
}

size_t xdsw_wb_pack(write_buf *b, const ProtobufCMessage *m)
{
    size_t len = protobuf_c_message_get_packed_size(m);
    if (SL_VEC_RESERVE(b->buf, b->buf_cap, len) != SL_OK)
        return SIZE_MAX;
    return protobuf_c_message_pack(m, b->buf);
}

void xdsw_wb_free(write_buf *b)
{
    free(b->e);
    free(b->refs);
    free(b->refp);
    free(b->ids);
    free(b->me);
    free(b->mep);
    free(b->buf);
    memset(b, 0, sizeof *b);
}

/* Room for n manifest entries in the message arrays. */
static sl_status wb_me_reserve(write_buf *b, size_t n)
{
    sl_status rc = SL_VEC_RESERVE(b->me, b->cap_me, n);
    return rc != SL_OK ? rc : SL_VEC_RESERVE(b->mep, b->cap_mep, n);
}

/* Packs the manifest chunk of entries b->e[i0, i1) into b->buf; its length,
 * or SIZE_MAX. */
static size_t pack_chunk(write_buf *b, size_t i0, size_t i1)
{
    Sluice__V1__XdsManifest m = SLUICE__V1__XDS_MANIFEST__INIT;
    for (size_t k = i0; k < i1; k++) {
        sluice__v1__xds_entry__init(&b->me[k]);
        b->me[k].name = (char *)b->e[k].name;
        b->me[k].revision = b->e[k].rev;
        b->me[k].parts = b->e[k].parts;
        b->mep[k] = &b->me[k];
    }
    m.n_entries = i1 - i0;
    m.entries = b->mep + i0;
    return xdsw_wb_pack(b, &m.base);
}

/* Every resource of type t as last written: its chunks are too; nothing
 * else looked at. */
static sl_status type_reuse(sl_xdsw *w, wcache *wc, const sl_tr_proxy *p, int t, size_t *n_res)
{
    const char *tt = sl_xds_type_token((sl_xds_type)t);
    sl_status rc;
    if ((rc = SL_VEC_RESERVE(wc->chunks, wc->cap_chunks, wc->n_chunks + wc->prev_tn[t])) != SL_OK)
        return rc;
    for (size_t k = 0; k < wc->prev_tn[t]; k++) {
        written *cw = wc->prev_chunks[wc->prev_t0[t] + k];
        wc->chunks[wc->n_chunks++] = cw;
        if ((rc = xdsw_wb_ref(&w->wb, tt, cw->first, cw->rev)) != SL_OK)
            return rc;
    }
    wc->tn[t] = wc->prev_tn[t];
    w->n_named += wc->named[t] + wc->tn[t];
    w->st.same += p->n[t];
    *n_res += p->n[t];
    return SL_OK;
}

/* Whether type t of p has the same manifest entries, in the same order, as
 * last written, cut into as many chunks; *ne gets the entry count. */
static bool same_shape(wcache *wc, const sl_tr_proxy *p, int t, size_t *ne)
{
    wc_list *l = &wc->types[t];
    size_t n = p->n[t], nc = 0, c = 0;
    *ne = 0;
    if (l->n != n || !n || wc->prev_t0[t] + wc->prev_tn[t] > wc->n_prev_chunks)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!xdsw_same_entries(&l->v[i], &p->res[t][i], t))
            return false;
    for (size_t i = 0; i < n; i++) {
        const wc_item *it = &l->v[i];
        size_t np = it->parts ? it->parts->n : 0;
        for (size_t q = 0; q <= np; q++) { /* q 0: the item, q > 0: its part q-1 */
            uint64_t h = q ? it->parts->v[q - 1].hash : it->hash;
            (*ne)++;
            if (++c >= SL_XDS_CHUNK_MAX || sl_xds_chunk_cut(h) || (i + 1 == n && q == np)) {
                nc++;
                c = 0;
            }
        }
    }
    return nc == wc->prev_tn[t];
}

/* In place: the chunk of b->e[0, c) that replaces the previous write's
 * chunk cw: packed and put again only when a revision in it moved. */
static sl_status in_place_chunk(sl_xdsw *w, wcache *wc, int t, written *cw, size_t c, size_t changed)
{
    write_buf *b = &w->wb;
    uint64_t fp = changed ? xdsw_chunk_fp(t, b->e, c) : cw->fp, rev;
    sl_status rc;
    w->n_named++;
    if (changed && fp != cw->fp) {
        size_t plen;
        written *nw = NULL;
        if ((plen = pack_chunk(b, 0, c)) == SIZE_MAX)
            return sl_error_set(SL_ERR_NOMEM, "out of memory");
        if ((rc = xdsw_put(w, cw, cw->key, b->buf, plen, &rev, &nw)) != SL_OK)
            return rc;
        nw->fp = fp;
        nw->first = b->e[0].hash;
        cw = nw;
    }
    wc->chunks[wc->n_chunks++] = cw;
    return xdsw_wb_ref(b, sl_xds_type_token((sl_xds_type)t), cw->first, cw->rev);
}

/* Writes type t of p where it has the same manifest entries, in the same
 * order, as last written, but revisions (the usual change of an endpoint
 * set, a cluster, or a virtual host of a route in parts): the changed
 * resources and parts put, and only the chunks holding them packed again;
 * the cache updated in place, nothing else built. *done false (nothing
 * changed) when that does not hold: type_merge() then. */
static sl_status write_type_in_place(sl_xdsw *w, wcache *wc, const sl_tr_proxy *p, int t, size_t *n_res,
                                     bool *done)
{
    wc_list *l = &wc->types[t];
    write_buf *b = &w->wb;
    size_t n = p->n[t], ne, changed = 0, k = 0, c = 0;
    sl_status rc;

    *done = false;
    if (!same_shape(wc, p, t, &ne))
        return SL_OK;
    *done = true;
    if ((rc = SL_VEC_RESERVE(b->e, b->cap, SL_XDS_CHUNK_MAX)) != SL_OK || /* the entries of one chunk */
        (rc = wb_me_reserve(b, SL_XDS_CHUNK_MAX)) != SL_OK ||
        (rc = SL_VEC_RESERVE(wc->chunks, wc->cap_chunks, wc->n_chunks + wc->prev_tn[t])) != SL_OK)
        return rc;
    for (size_t i = 0; i < n; i++) {
        wc_item *it = &l->v[i];
        const sl_tr_resource *r = &p->res[t][i];
        size_t np = it->parts ? it->parts->n : 0;
        bool item_same = it->rdata == xdsw_res_id(r) && it->rlen == r->len;
        for (size_t q = 0; q <= np; q++) {
            wc_item *e = q ? &it->parts->v[q - 1] : it;
            const uint8_t *data = NULL;
            size_t len = 0;
            uint64_t rev;
            if (item_same) {
                /* as last written, parts and all */
            } else if (!q && !np) { /* a whole resource */
                data = r->data;
                len = r->len;
            } else if (!q) { /* a route's head: small, compared */
                data = r->parts->head;
                len = r->parts->head_len;
            } else if (e->rdata != (const void *)r->parts->v[q - 1].data || e->rlen != r->parts->v[q - 1].len) {
                data = r->parts->v[q - 1].data; /* a virtual host not as last time */
                len = r->parts->v[q - 1].len;
            }
            if (data) {
                w->st.compared++;
                if ((rc = xdsw_put(w, e->w, e->w->key, data, len, &rev, &e->w)) != SL_OK)
                    return rc;
                if (rev != e->rev)
                    changed++;
                e->rev = rev;
                if (q) {
                    e->rdata = data;
                    e->rlen = len;
                }
            }
            b->e[c++] = (mf_entry){e->name, e->rev, e->hash, q ? 0 : (uint32_t)np};
            w->n_named++;
            if (!(c >= SL_XDS_CHUNK_MAX || sl_xds_chunk_cut(e->hash) || (i + 1 == n && q == np)))
                continue;
            if ((rc = in_place_chunk(w, wc, t, wc->prev_chunks[wc->prev_t0[t] + k++], c, changed)) != SL_OK)
                return rc;
            changed = 0;
            c = 0;
        }
        if (item_same)
            w->st.same++;
        it->rname = r->name;
        it->rdata = xdsw_res_id(r);
        it->rlen = r->len;
        (*n_res)++;
    }
    wc->tn[t] = wc->prev_tn[t];
    wc->named[t] = ne;
    return SL_OK;
}

/* Resource r as it was (pi; a split route: its head and parts stay): its
 * entries from the cache into b, it moved over to *it. */
static sl_status keep_item(sl_xdsw *w, wc_item *it, wc_item *pi, const sl_tr_resource *r)
{
    write_buf *b = &w->wb;
    sl_status rc;
    if ((rc = xdsw_wb_entry(b, r->name, pi->rev, pi->hash, pi->parts ? (uint32_t)pi->parts->n : 0)) != SL_OK)
        return rc;
    w->n_named++;
    for (size_t q = 0; pi->parts && q < pi->parts->n; q++) {
        const wc_item *pq = &pi->parts->v[q];
        if ((rc = xdsw_wb_entry(b, pq->name, pq->rev, pq->hash, 0)) != SL_OK)
            return rc;
        w->n_named++;
    }
    w->st.same++;
    *it = *pi;
    it->rname = r->name;
    it->rdata = xdsw_res_id(r);
    pi->parts = NULL;
    pi->whole = NULL;
    pi->name = NULL;
    return SL_OK;
}

/* The bytes of a route stored in parts from its whole, to compare with
 * next time: in last time's buffer if it fits. */
static void keep_whole(wc_item *it, wc_item *pi, const sl_tr_resource *r)
{
    if (pi && pi->whole && pi->whole_cap >= r->len) {
        it->whole = pi->whole;
        it->whole_cap = pi->whole_cap;
        pi->whole = NULL;
    } else if ((it->whole = malloc(r->len)) != NULL) {
        it->whole_cap = r->len;
    }
    if (it->whole) {
        memcpy(it->whole, r->data, r->len);
        it->whole_len = r->len;
    }
}

/* Resource r of type t, changed or new (pi: as last written, or NULL): put
 * (a big route in parts), its entries appended, *it filled. */
static sl_status put_item(sl_xdsw *w, const char *proxy, int t, wc_item *it, wc_item *pi, const sl_tr_resource *r)
{
    char key[SL_XDS_KEY_MAX];
    const char *k = key;
    wc_list *parts_now = NULL;
    bool split = false;
    uint64_t rev;
    sl_status rc;

    w->st.compared++;
    if (pi)
        k = pi->w->key;
    else if ((rc = sl_xds_key_resource(key, sizeof key, proxy, (sl_xds_type)t, r->name)) != SL_OK)
        return rc;
    it->hash = pi ? pi->hash : sl_xds_entry_hash(NULL, r->name);
    if (t == SL_XDS_ROUTE && r->len >= SL_XDS_SPLIT_MIN &&
        (rc = xdsw_put_route_parts(w, proxy, k, r, pi ? pi->w : NULL, pi && pi->parts ? pi : NULL, &parts_now,
                                   &it->w, &it->rev, &split)) != SL_OK)
        return rc;
    if (!split) {
        if (!r->data) /* given in parts only, yet not split: translate.h says it cannot be */
            return sl_error_set(SL_ERR_INTERNAL, "route %s: neither whole nor in parts", r->name);
        if ((rc = xdsw_put(w, pi ? pi->w : NULL, k, r->data, r->len, &rev, &it->w)) != SL_OK ||
            (rc = xdsw_wb_entry(&w->wb, r->name, rev, it->hash, 0)) != SL_OK)
            return rc;
        it->rev = rev;
        w->n_named++;
    }
    it->rname = r->name;
    it->rdata = xdsw_res_id(r);
    it->rlen = r->len;
    it->parts = parts_now;
    if (parts_now && !r->parts)
        keep_whole(it, pi, r);
    if (pi) { /* the name moves over */
        it->name = pi->name;
        pi->name = NULL;
    } else if (!(it->name = strdup(r->name))) {
        xdsw_wc_list_clear(parts_now);
        free(parts_now);
        it->parts = NULL;
        return sl_error_set(SL_ERR_NOMEM, "out of memory");
    }
    return SL_OK;
}

/* The resources of type t, each put when its bytes changed, their entries
 * in w->wb; *now (allocated here) what was written. Both lists are sorted
 * by name: a merge finds what was written. */
static sl_status type_merge(sl_xdsw *w, wcache *wc, const sl_tr_proxy *p, int t, wc_list *now, size_t *n_res)
{
    wc_list *prev = &wc->types[t];
    size_t j = 0;
    sl_status rc;

    if (p->n[t] && !(now->v = calloc(p->n[t], sizeof *now->v)))
        return sl_error_set(SL_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < p->n[t]; i++) {
        const sl_tr_resource *r = &p->res[t][i];
        wc_item *pi = NULL, *it = &now->v[now->n];
        int c = 1;
        if (j < prev->n && prev->v[j].rname == (const void *)r->name) {
            pi = &prev->v[j++]; /* the same name object: no need to compare */
        } else {
            while (j < prev->n && (c = strcmp(prev->v[j].name, r->name)) < 0)
                j++;
            if (j < prev->n && c == 0)
                pi = &prev->v[j++];
        }
        if (pi && ((pi->rdata == xdsw_res_id(r) && pi->rlen == r->len) ||
                   (r->data && !r->parts && pi->parts && pi->whole && pi->whole_len == r->len &&
                    memcmp(pi->whole, r->data, r->len) == 0)))
            rc = keep_item(w, it, pi, r);
        else
            rc = put_item(w, p->name, t, it, pi, r);
        if (rc != SL_OK)
            return rc;
        now->n++;
        (*n_res)++;
    }
    return SL_OK;
}

/* The manifest chunks of the entries in w->wb: cut where the content says
 * (so an added or removed entry moves one chunk), each put when its bytes
 * changed. A chunk whose entries are as last time is not even packed:
 * found by the cursor *pc in last time's chunks (no key built), or else by
 * its key. */
static sl_status write_chunks(sl_xdsw *w, wcache *wc, const char *proxy, int t, size_t *pc)
{
    write_buf *b = &w->wb;
    const char *tt = sl_xds_type_token((sl_xds_type)t);
    char key[SL_XDS_KEY_MAX], id[17];
    uint64_t rev;
    size_t len;
    sl_status rc;

    if ((rc = wb_me_reserve(b, b->n)) != SL_OK)
        return rc;
    for (size_t i0 = 0, i = 0; i < b->n; i++) {
        if (i + 1 < b->n && i + 1 - i0 < SL_XDS_CHUNK_MAX && !sl_xds_chunk_cut(b->e[i].hash))
            continue;
        uint64_t fp = xdsw_chunk_fp(t, b->e + i0, i + 1 - i0);
        written *cw = NULL;
        if ((rc = SL_VEC_RESERVE(wc->chunks, wc->cap_chunks, wc->n_chunks + 1)) != SL_OK)
            return rc;
        w->n_named++;
        for (size_t d = 0; d < 4 && *pc + d < wc->n_prev_chunks && !cw; d++)
            if (wc->prev_chunks[*pc + d]->fp == fp && wc->prev_chunks[*pc + d]->first == b->e[i0].hash) {
                cw = wc->prev_chunks[*pc + d];
                *pc += d + 1;
            }
        sl_xds_chunk_id(id, b->e[i0].hash);
        if (!cw) {
            if ((rc = sl_xds_key_manifest(key, sizeof key, proxy, (sl_xds_type)t, id)) != SL_OK)
                return rc;
            if ((cw = xdsw_map_get(&w->xds, key)) && cw->fp != fp)
                cw = NULL;
        }
        if (cw) {
            wc->chunks[wc->n_chunks++] = cw;
            if ((rc = xdsw_wb_ref(b, tt, b->e[i0].hash, cw->rev)) != SL_OK)
                return rc;
            i0 = i + 1;
            continue;
        }
        if ((len = pack_chunk(b, i0, i + 1)) == SIZE_MAX)
            return sl_error_set(SL_ERR_NOMEM, "out of memory");
        if ((rc = xdsw_put(w, NULL, key, b->buf, len, &rev, &cw)) != SL_OK ||
            (rc = xdsw_wb_ref(b, tt, b->e[i0].hash, rev)))
            return rc;
        cw->fp = fp;
        cw->first = b->e[i0].hash;
        wc->chunks[wc->n_chunks++] = cw;
        i0 = i + 1;
    }
    return SL_OK;
}

sl_status xdsw_write_type(sl_xdsw *w, wcache *wc, const sl_tr_proxy *p, int t, size_t *pc, size_t *n_res)
{
    wc_list *prev = &wc->types[t], now = {0};
    const void *shared = sl_tr_proxy_list_shared(p, (sl_xds_type)t) ? p->res[t] : NULL;
    write_buf *b = &w->wb;
    bool done = false;
    sl_status rc;

    b->n = 0;
    wc->t0[t] = wc->n_chunks;
    if (wc->prev_t0[t] + wc->prev_tn[t] <= wc->n_prev_chunks &&
        ((shared && shared == wc->list[t] && prev->n == p->n[t]) || xdsw_wc_same_list(prev, p, t))) {
        if ((rc = type_reuse(w, wc, p, t, n_res)) != SL_OK)
            goto err;
        done = true;
    } else if ((rc = write_type_in_place(w, wc, p, t, n_res, &done)) != SL_OK) {
        goto err;
    }
    if (done) {
        *pc = wc->prev_t0[t] + wc->prev_tn[t];
        wc->list[t] = shared;
        return SL_OK;
    }
    rc = type_merge(w, wc, p, t, &now, n_res);
    /* Names moved over are NULL in prev: sorted order is kept for the
     * merge only until here. */
    xdsw_wc_list_clear(prev);
    if (rc != SL_OK)
        goto err;
    *prev = now;
    now = (wc_list){0};
    wc->named[t] = b->n;
    if ((rc = write_chunks(w, wc, p->name, t, pc)) != SL_OK)
        return rc;
    wc->tn[t] = wc->n_chunks - wc->t0[t];
    wc->list[t] = shared;
    return SL_OK;
err: /* the cache is dropped */
    xdsw_wc_list_clear(&now);
    for (int u = 0; u < SL_XDS_TYPE_COUNT; u++)
        xdsw_wc_list_clear(&wc->types[u]);
    wc->n_chunks = 0;
    wc->n_prev_chunks = 0;
    return rc;
}
