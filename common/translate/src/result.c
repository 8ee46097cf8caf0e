/* result.c - a translation's result: each proxy's resources packed in name
 * order (kept lists shared), look-ups, and freeing it. */
#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "ratelimit/config/ratelimit/v3/rls_conf.pb-c.h"
#include "sluice/bsearch.h"
#include "translate_internal.h"

static int cmp_out(const void *a, const void *b)
{
    return strcmp((*(tr_out *const *)a)->name, (*(tr_out *const *)b)->name);
}

static int cmp_proxy(const void *a, const void *b)
{
    return strcmp(((const sl_tr_proxy *)a)->name, ((const sl_tr_proxy *)b)->name);
}

/* Kept clusters and endpoints are added without a look-up by name
 * (tr_out_add_blob): a name given twice keeps the first one added, here,
 * after sorting by name and then by order added. */
static int cmp_out_seq(const void *a, const void *b)
{
    const tr_out *x = *(tr_out *const *)a, *y = *(tr_out *const *)b;
    int c = strcmp(x->name, y->name);
    return c ? c : (x->seq > y->seq) - (x->seq < y->seq);
}

/* Marks sc, just made (or found again) from every resource of its type of
 * a proxy, as that proxy's whole list (tr_whole_list()). Its list, when made
 * already, still holds: it is made of in[] in the order perm, which were
 * found the same. */
static tr_sort_cache *keep_whole(tr_ctx *tx, tr_sort_cache *sc, bool proxyless)
{
    if (!sc->settings_ns || strcmp(sc->settings_ns, tx->opts.settings_namespace) != 0) {
        free(sc->settings_ns);
        sc->settings_ns = strdup(tx->opts.settings_namespace);
    }
    sc->up_world = tx->store->up_world;
    sc->proxyless = proxyless;
    if (!sc->reach || sc->n_reach != tx->n_reach || memcmp(sc->reach, tx->reached, tx->n_reach) != 0) {
        free(sc->reach);
        sc->n_reach = tx->n_reach;
        if ((sc->reach = malloc(tx->n_reach + 1)) != NULL)
            memcpy(sc->reach, tx->reached, tx->n_reach);
    }
    return sc->settings_ns && sc->reach ? sc : NULL;
}

/* p's resources of type t are sc's whole list, shared (made on first use). */
static sl_status use_list(tr_sort_cache *sc, sl_tr_proxy *p, int t)
{
    if (!sc->list) {
        tr_rlist *l = malloc(sizeof *l + (sc->n_perm + 1) * sizeof l->v[0]);
        if (!l)
            return SL_ERR_NOMEM;
        l->refs = 1;
        l->n = sc->n_perm;
        for (size_t i = 0; i < sc->n_perm; i++) {
            sl_tr_resource *r = &l->v[i];
            r->shared = tr_blob_ref(sc->in[sc->perm[i]]);
            r->data = r->shared->data;
            r->len = r->shared->len;
            r->name = r->shared->name;
            r->parts = NULL;
        }
        sc->list = l;
    }
    p->lists[t] = tr_rlist_ref(sc->list);
    p->res[t] = sc->list->v;
    p->n[t] = sc->list->n;
    return SL_OK;
}

/* The proxy's resources of type t in name order, duplicates left out:
 * *n_out of them in v. When every one is kept in the store and they are
 * the ones of the last translation in the same order (the same blobs),
 * the order is the one kept with them (tr_sort_cache), not sorted again. */
static tr_out **sorted_out(tr_ctx *tx, const char *proxy, bool proxyless, sl_xds_type t, size_t *n_out,
                           tr_sort_cache **whole)
{
    size_t n = tx->n_out[t], k = 0;
    tr_out **in = tx->out[t], **v;
    tr_sort_cache *sc;
    bool all_kept = true;

    if (t != SL_XDS_CLUSTER && t != SL_XDS_ENDPOINT) { /* unique names (tr_out_add) */
        if (n > 1)
            qsort(in, n, sizeof *in, cmp_out);
        *n_out = n;
        return in;
    }
    for (sc = tx->store->sorted; sc; sc = sc->next)
        if (sc->type == (int)t && strcmp(sc->proxy, proxy) == 0) {
            sc->seen = tx->store->translations;
            break;
        }
    for (size_t i = 0; i < n && all_kept; i++)
        all_kept = in[i]->blob != NULL;
    if (sc && all_kept && sc->n_in == n) {
        size_t i = 0;
        while (i < n && sc->in[i] == in[i]->blob)
            i++;
        if (i == n) {
            v = tr_alloc(tx, (sc->n_perm + 1) * sizeof *v);
            for (size_t j = 0; j < sc->n_perm; j++)
                v[j] = in[sc->perm[j]];
            *n_out = sc->n_perm;
            *whole = keep_whole(tx, sc, proxyless);
            return v;
        }
    }
    v = tr_alloc(tx, (n + 1) * sizeof *v);
    if (n)
        memcpy(v, in, n * sizeof *v);
    if (n > 1)
        qsort(v, n, sizeof *v, cmp_out_seq);
    for (size_t i = 0; i < n; i++)
        if (!k || strcmp(v[k - 1]->name, v[i]->name) != 0)
            v[k++] = v[i];
    *n_out = k;
    /* keep the order for the next translation (only an order of kept
     * blobs: their references keep the comparison by pointer sound) */
    if (sc) {
        tr_sort_cache_clear(sc);
    } else if (all_kept && (sc = calloc(1, sizeof *sc)) != NULL) {
        if (!(sc->proxy = strdup(proxy))) {
            free(sc);
            return v;
        }
        sc->type = (int)t;
        sc->seen = tx->store->translations;
        sc->next = tx->store->sorted;
        tx->store->sorted = sc;
    }
    if (sc && all_kept) {
        sc->in = malloc((n + 1) * sizeof *sc->in);
        sc->perm = malloc((k + 1) * sizeof *sc->perm);
        if (!sc->in || !sc->perm) {
            tr_sort_cache_clear(sc);
            return v;
        }
        for (size_t i = 0; i < n; i++)
            sc->in[i] = tr_blob_ref(in[i]->blob);
        for (size_t i = 0; i < k; i++)
            sc->perm[i] = v[i]->seq;
        sc->n_in = n;
        sc->n_perm = k;
        *whole = keep_whole(tx, sc, proxyless);
    }
    return v;
}

/* The kept whole list of the proxy's resources of type t (clusters or
 * endpoints), when the translation that made it saw what this one sees:
 * no Upstream, EndpointSet, Settings or Secret changed since, the same
 * settings namespace, the proxy as proxyless as it was, and the same
 * upstreams reached by its listeners and routes (tx->reached). Only the
 * upstreams add clusters and endpoints, so that list is what visiting
 * them again would give. */
tr_sort_cache *tr_whole_list(tr_ctx *tx, const char *proxy, bool proxyless, sl_xds_type t)
{
    for (tr_sort_cache *sc = tx->store->sorted; sc; sc = sc->next) {
        if (sc->type != (int)t || strcmp(sc->proxy, proxy) != 0)
            continue;
        sc->seen = tx->store->translations;
        return sc->settings_ns && sc->up_world == tx->store->up_world && sc->proxyless == proxyless &&
                       strcmp(sc->settings_ns, tx->opts.settings_namespace) == 0 && sc->reach &&
                       sc->n_reach == tx->n_reach && memcmp(sc->reach, tx->reached, tx->n_reach) == 0
                   ? sc
                   : NULL;
    }
    return NULL;
}

/* memo: packed bytes by message, within one translation: every proxy shares
 * the clusters and endpoints built once per upstream, so each is packed once. */
sl_status tr_pack_proxy(tr_ctx *tx, sl_tr_proxy *p, tr_bytes_map *memo, tr_sort_cache *const *whole)
{
    for (int t = 0; t < SL_XDS_TYPE_COUNT; t++) {
        size_t n;
        tr_out **outs;
        tr_sort_cache *now = NULL;
        if (whole[t]) { /* the kept whole list, shared as it is */
            if (use_list(whole[t], p, t) != SL_OK)
                return SL_ERR_NOMEM;
            continue;
        }
        outs = sorted_out(tx, p->name, p->proxyless, (sl_xds_type)t, &n, &now);
        if (now) { /* every one kept: share the list from now on */
            if (use_list(now, p, t) != SL_OK)
                return SL_ERR_NOMEM;
            continue;
        }
        p->res[t] = calloc(n ? n : 1, sizeof *p->res[t]);
        if (!p->res[t])
            return SL_ERR_NOMEM;
        for (size_t i = 0; i < n; i++) {
            sl_tr_resource *r = &p->res[t][i];
            const tr_out *o = outs[i];
            const ProtobufCMessage *m = o->msg;
            size_t known_len = 0;
            const uint8_t *known = m ? tr_bytes_get(memo, m, &known_len) : NULL;
            if (!m && o->blob) { /* kept in the store: shared, not copied */
                r->shared = tr_blob_ref(o->blob);
                r->data = r->shared->parts && r->shared->parts->no_whole ? NULL : r->shared->data;
                r->len = r->shared->len;
                r->name = r->shared->name;
                r->parts = r->shared->parts ? &r->shared->parts->pub : NULL;
                if (o->keep_in) { /* a patched route (tr_route_patched) */
                    tr_blob *was = o->keep_in->rcfg;
                    o->keep_in->rcfg = tr_blob_ref(o->blob);
                    tr_blob_unref(was);
                }
            } else if (!(r->name = strdup(o->name))) {
                /* out of memory: below */
            } else if (!m) { /* packed already (a kept virtual host's bytes) */
                r->len = o->len;
                if ((r->data = malloc(r->len ? r->len : 1)) != NULL)
                    memcpy(r->data, o->bytes, r->len);
            } else if (t == SL_XDS_ROUTE) { /* a blob: the gateway's memo may keep it too */
                tr_blob *b = tr_pack_route_config(tx, (const Envoy__Config__Route__V3__RouteConfiguration *)m, o->name);
                if (b) {
                    free(r->name);
                    r->shared = b;
                    r->name = b->name;
                    r->data = b->parts->no_whole ? NULL : b->data;
                    r->len = b->len;
                    r->parts = &b->parts->pub;
                    if (o->keep_in) {
                        tr_blob_unref(o->keep_in->rcfg);
                        o->keep_in->rcfg = tr_blob_ref(b);
                    }
                }
            } else if (known) {
                r->len = known_len;
                if ((r->data = malloc(r->len ? r->len : 1)) != NULL)
                    memcpy(r->data, known, r->len);
            } else {
                r->data = tr_pack_heap(m, &r->len);
                if (r->data && (t == SL_XDS_CLUSTER || t == SL_XDS_ENDPOINT))
                    tr_bytes_put(tx, memo, m, r->data, r->len);
            }
            p->n[t] = i + 1; /* freed with the result, even when incomplete */
            if (!r->name || (!r->data && !r->parts))
                return SL_ERR_NOMEM;
        }
    }
    return SL_OK;
}

void tr_reset_out(tr_ctx *tx)
{
    memset(tx->out_names, 0, sizeof tx->out_names);
    memset(tx->out, 0, sizeof tx->out);
    memset(tx->n_out, 0, sizeof tx->n_out);
}

/* Frees (or, when shared, lets go of) a resource's name and bytes. A
 * shared resource's name is the blob's, and so are its bytes unless
 * sl_tr_translate_endpoints() replaced them. */
static void resource_data_free(sl_tr_resource *r)
{
    if (r->shared) {
        if (r->data != r->shared->data)
            free(r->data);
        tr_blob_unref(r->shared);
    } else {
        free(r->name);
        free(r->data);
    }
    r->shared = NULL;
    r->name = NULL;
    r->data = NULL;
}

void sl_tr_result_free(sl_tr_result *r)
{
    if (!r)
        return;
    sl_tr_result_finish(r); /* a pending one: what it decided about the store still applies */
    for (size_t i = 0; i < r->n_proxies; i++) {
        sl_tr_proxy *p = &r->proxies[i];
        for (int t = 0; t < SL_XDS_TYPE_COUNT; t++) {
            if (p->lists[t]) { /* the list owns the resources, bar bytes replaced in a copy */
                if (p->res[t] != p->lists[t]->v) {
                    for (size_t j = 0; j < p->n[t]; j++)
                        if (p->res[t][j].data != p->res[t][j].shared->data)
                            free(p->res[t][j].data);
                    free(p->res[t]);
                }
                tr_rlist_unref(p->lists[t]);
                continue;
            }
            for (size_t j = 0; j < p->n[t]; j++)
                resource_data_free(&p->res[t][j]);
            free(p->res[t]);
        }
        free(p->name);
    }
    free(r->proxies);
    for (size_t i = 0; i < r->n_reports; i++) {
        sl_tr_report *rp = &r->reports[i];
        if (rp->shared) {
            if (!tr_report_borrowed(r, i))
                tr_rblob_unref(rp->shared);
            continue;
        }
        free(rp->ns);
        free(rp->name);
        free(rp->reason);
        free(rp->resource_version);
        for (size_t j = 0; j < rp->n_warnings; j++)
            free(rp->warnings[j]);
        free(rp->warnings);
    }
    free(r->reports);
    tr_replist_unref(r->replist);
    free(r);
}

const sl_tr_proxy *sl_tr_result_proxy(const sl_tr_result *r, const char *name)
{
    for (size_t i = 0; i < r->n_proxies; i++)
        if (strcmp(r->proxies[i].name, name) == 0)
            return &r->proxies[i];
    return NULL;
}

bool sl_tr_proxy_list_shared(const sl_tr_proxy *p, sl_xds_type t)
{
    return (unsigned)t < SL_XDS_TYPE_COUNT && p->lists[t] && p->res[t] == p->lists[t]->v;
}

static int cmp_res_name(const void *key, const void *elem)
{
    return strcmp(key, ((const sl_tr_resource *)elem)->name);
}

const sl_tr_resource *sl_tr_proxy_find(const sl_tr_proxy *p, sl_xds_type t, const char *name)
{
    bool found = false; /* each list is sorted by name */
    size_t i = p ? sl_bsearch_pos(&found, name, p->res[t], p->n[t], sizeof *p->res[t], cmp_res_name) : 0;
    return found ? &p->res[t][i] : NULL;
}

const sl_tr_report *sl_tr_result_report(const sl_tr_result *r, const char *kind, const char *ns, const char *name)
{
    for (size_t i = 0; i < r->n_reports; i++)
        if (strcmp(r->reports[i].kind->kind, kind) == 0 && strcmp(r->reports[i].ns, ns) == 0 &&
            strcmp(r->reports[i].name, name) == 0)
            return &r->reports[i];
    return NULL;
}

const ProtobufCMessageDescriptor *sl_tr_type_descriptor(sl_xds_type t)
{
    switch (t) {
    case SL_XDS_SECRET:
        return &envoy__extensions__transport_sockets__tls__v3__secret__descriptor;
    case SL_XDS_CLUSTER:
        return &envoy__config__cluster__v3__cluster__descriptor;
    case SL_XDS_ENDPOINT:
        return &envoy__config__endpoint__v3__cluster_load_assignment__descriptor;
    case SL_XDS_LISTENER:
        return &envoy__config__listener__v3__listener__descriptor;
    case SL_XDS_ROUTE:
        return &envoy__config__route__v3__route_configuration__descriptor;
    case SL_XDS_RATELIMIT:
        return &ratelimit__config__ratelimit__v3__rate_limit_config__descriptor;
    default:
        return NULL;
    }
}

void tr_sort_proxies(sl_tr_result *res)
{
    qsort(res->proxies, res->n_proxies, sizeof *res->proxies, cmp_proxy);
}
