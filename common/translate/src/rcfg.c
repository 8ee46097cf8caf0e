/* rcfg.c - packed RouteConfigurations: spliced from their virtual hosts' bytes
 * (in parts), or patched from a gateway memo's last one. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "sluice/vec.h"
#include "sluice/wire.h"
#include "translate_internal.h"

/* The blob of a route configuration from its parts: rp with v[], vh[] and
 * pub.n set (taken: owned by the blob, or freed on failure), and rest, the
 * route packed without its virtual hosts (taken too). The whole is spliced
 * (field 2 follows the name), or with options.route_parts_only only its
 * length kept. NULL when out of memory. */
static tr_blob *route_blob(tr_ctx *tx, tr_rparts *rp, uint8_t *rest, size_t rest_len, const char *name)
{
    tr_blob *b = NULL;
    size_t nlen = strlen(name) + 1, head = 0, total = rest_len, n = rp->pub.n, pos = 1;
    uint8_t *out;
    for (size_t i = 0; i < n; i++)
        total += sl_wire_ld_len(rp->v[i].len); /* field 2 (virtual_hosts) */
    /* field 1 (name), when set, is first: the parts go after it */
    if (rest_len && rest[0] == (1 << 3 | SL_WIRE_LEN) && sl_wire_skip(rest, rest_len, &pos, SL_WIRE_LEN) == SL_OK)
        head = pos;
    if (tx->opts.route_parts_only && n >= 2) {
        /* The writer stores it in parts (SL_XDS_SPLIT_MIN and up): no
         * whole bytes, only their length, unless a part has no name (the
         * writer keeps such a route whole). */
        bool named = true;
        for (size_t i = 0; i < n; i++)
            named = named && rp->v[i].name[0];
        if (named && total >= SL_XDS_SPLIT_MIN) {
            if (!(b = malloc(offsetof(tr_blob, data) + nlen)))
                goto done;
            b->refs = 1;
            b->len = total;
            b->name = (char *)b->data;
            memcpy(b->name, name, nlen);
            rp->no_whole = true;
            goto parts;
        }
    }
    if (!(b = malloc(offsetof(tr_blob, data) + total + nlen)))
        goto done;
    memcpy(b->data, rest, head);
    out = b->data + head;
    for (size_t i = 0; i < n; i++)
        out = sl_wire_ld(out, 2, rp->v[i].data, rp->v[i].len);
    memcpy(out, rest + head, rest_len - head);
    b->refs = 1;
    b->len = total;
    b->name = (char *)b->data + total; /* after the bytes */
    memcpy(b->name, name, nlen);
parts:
    /* the head is every field but the virtual hosts, in order: rest */
    rp->head = rest;
    rp->pub.head = rest;
    rp->pub.head_len = rest_len;
    rp->pub.v = rp->v;
    b->parts = rp;
    rest = NULL;
    rp = NULL;
done:
    tr_rparts_free(rp);
    free(rest);
    return b;
}

/* One more part of a route in parts: vb (a reference taken) at rp->pub.n. */
static void rparts_push(tr_rparts *rp, tr_blob *vb)
{
    size_t i = rp->pub.n;
    rp->vh[i] = tr_blob_ref(vb);
    rp->v[i].data = vb->data;
    rp->v[i].len = vb->len;
    rp->v[i].name = vb->name;
    rp->pub.n = i + 1; /* freed with rp from here */
}

/* The packed virtual host vh as a blob (a new reference): its kept bytes'
 * blob (vh_bytes holds blobs' bytes only, tr_vh_keep), or packed now. NULL
 * when out of memory. */
static tr_blob *vh_blob(tr_ctx *tx, const tr_vhost_t *vh)
{
    size_t len = 0;
    const uint8_t *kept = tr_bytes_get(&tx->vh_bytes, vh, &len);
    if (kept)
        return tr_blob_ref(tr_blob_of(kept));
    return tr_blob_pack(&vh->base, vh->name ? vh->name : "");
}

/* A RouteConfiguration packed with its virtual hosts' bytes spliced in
 * (kept or packed now): the same bytes as packing it whole, as field 2
 * (virtual_hosts) comes right after the name. A new blob named name, with
 * one reference, carrying the same bytes in parts (tr_rparts: the head and
 * a reference to each virtual host's blob, so a kept virtual host is the
 * same part in every route spliced from it); NULL: no memory. */
tr_blob *tr_pack_route_config(tr_ctx *tx, const Envoy__Config__Route__V3__RouteConfiguration *rc,
                                  const char *name)
{
    Envoy__Config__Route__V3__RouteConfiguration copy = *rc;
    size_t rest_len, n = rc->n_virtual_hosts;
    tr_rparts *rp = calloc(1, sizeof *rp);
    uint8_t *rest = NULL;
    if (!rp || !(rp->v = calloc(n ? n : 1, sizeof *rp->v)) || !(rp->vh = calloc(n ? n : 1, sizeof *rp->vh)))
        goto fail;
    copy.n_virtual_hosts = 0;
    copy.virtual_hosts = NULL;
    if (!(rest = tr_pack_heap(&copy.base, &rest_len)))
        goto fail;
    /* The kept virtual hosts' blobs first, each asked for ahead (thousands
     * of them, scattered: one cache miss at a time would be most of the
     * cost). */
    for (size_t i = 0; i < n; i++) {
        size_t len = 0;
        const uint8_t *kept = tr_bytes_get(&tx->vh_bytes, rc->virtual_hosts[i], &len);
        if (kept)
            __builtin_prefetch(tr_blob_of(kept), 1);
    }
    for (size_t i = 0; i < n; i++) {
        tr_blob *vb = vh_blob(tx, rc->virtual_hosts[i]);
        if (!vb)
            goto fail;
        rparts_push(rp, vb);
        tr_blob_unref(vb);
    }
    return route_blob(tx, rp, rest, rest_len, name);
fail:
    tr_rparts_free(rp);
    free(rest);
    return NULL;
}

/* Holds a reference to b until the translation ends (tr_ctx_free). */
static bool tr_hold(tr_ctx *tx, tr_blob *b)
{
    if (SL_VEC_RESERVE(tx->held, tx->cap_held, tx->n_held + 1) != SL_OK)
        return false;
    tx->held[tx->n_held++] = b;
    return true;
}

/* The gateway's route configuration as the memo's last one (m->rcfg, in
 * parts) with only the changed virtual services' parts replaced, taken
 * out or put in: the same bytes as packing items (in order, none dropped)
 * again, without visiting the unchanged ones' virtual hosts. items[k].vh
 * is NULL for an unchanged one, which the memo serves. Called before the
 * memo is brought up to date (m->c and m->vh as the last route had them).
 * A new reference, held by tx until the translation ends; NULL when the
 * last route is not what the memo says (every part is checked by pointer),
 * or out of memory: then pack items as usual. */
tr_blob *tr_route_patched(tr_ctx *tx, const tr_gw_memo *m, const bool *changed, const tr_vs_item *items,
                              size_t n_items, const char *rname)
{
    const tr_blob *old = m->rcfg;
    const tr_rparts *op = old->parts;
    const tr_bucket *vb = tr_bucket_of(tx, tr_kind.vs);
    size_t *cold, n_cold = 0, ci = 0, k = 0, moved = 0, n_new = 0;
    tr_rparts *rp = NULL;
    uint8_t *rest = NULL;
    tr_blob *b = NULL;

    if (!op || strcmp(old->name, rname) != 0)
        return NULL;
    /* the changed ones the last route served (their parts go or are replaced) */
    cold = tr_alloc(tx, 65 * sizeof *cold);
    for (size_t i = 0; i < vb->n; i++)
        if (changed[i] && m->c[i]) {
            if (n_cold == 64)
                return NULL;
            cold[n_cold++] = i;
        }
    for (size_t j = 0; j < n_items; j++) {
        if (items[j].dropped)
            return NULL;
        if (items[j].vh)
            moved++;
    }
    n_new = n_items;
    if (!(rp = calloc(1, sizeof *rp)) || !(rp->v = calloc(n_new + 1, sizeof *rp->v)) ||
        !(rp->vh = calloc(n_new + 1, sizeof *rp->vh)))
        goto fail;
    for (size_t j = 0; j < n_items; j++) {
        size_t x = (size_t)items[j].idx;
        tr_blob *vh;
        while (ci < n_cold && cold[ci] <= x) { /* a changed one's old part: gone or replaced */
            if (k >= op->pub.n || op->v[k].data != m->vh[cold[ci]].bytes)
                goto fail;
            k++;
            ci++;
        }
        if (items[j].vh) { /* changed: its virtual host now */
            if (!(vh = vh_blob(tx, items[j].vh)))
                goto fail;
            rparts_push(rp, vh);
            tr_blob_unref(vh);
            continue;
        }
        if (k + 8 < op->pub.n)
            __builtin_prefetch(op->vh[k + 8], 1);
        if (changed[x] || k >= op->pub.n || op->v[k].data != m->vh[x].bytes)
            goto fail; /* not the part the memo says */
        rparts_push(rp, op->vh[k++]);
    }
    for (; ci < n_cold; ci++, k++)
        if (k >= op->pub.n || op->v[k].data != m->vh[cold[ci]].bytes)
            goto fail;
    if (k != op->pub.n)
        goto fail;
    if (!moved && !n_cold && (tx->opts.route_parts_only || !op->no_whole)) {
        /* nothing of it changed: the last one itself */
        tr_rparts_free(rp);
        b = tr_blob_ref((tr_blob *)old);
    } else {
        if (!(rest = malloc(op->pub.head_len ? op->pub.head_len : 1)))
            goto fail;
        memcpy(rest, op->pub.head, op->pub.head_len);
        b = route_blob(tx, rp, rest, op->pub.head_len, rname); /* takes rp and rest */
    }
    rp = NULL;
    if (b && !tr_hold(tx, b)) {
        tr_blob_unref(b);
        b = NULL;
    }
    return b;
fail:
    tr_rparts_free(rp);
    return NULL;
}
