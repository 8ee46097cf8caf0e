/* source.c - KV -> cache (see source.h and docs/xds.md). */
#include "sluice/pbcheck.h"
#include "sluice/xds_source.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "envoy/config/route/v3/route_components.pb-c.h"
#include "sluice/log.h"
#include "sluice/xds_keys.h"
#include "sluice/v1/xds.pb-c.h"

/* Bytes shared by the key table and the resolved chunks (one thread). */
typedef struct blob {
    unsigned refs;
    size_t len;
    uint8_t data[];
} blob;

static blob *blob_new(const uint8_t *p, size_t len)
{
    blob *b = malloc(sizeof *b + (len ? len : 1));
    if (b) {
        b->refs = 1;
        b->len = len;
        if (len)
            memcpy(b->data, p, len);
    }
    return b;
}

static blob *blob_ref(blob *b)
{
    b->refs++;
    return b;
}

static void blob_unref(blob *b)
{
    if (b && --b->refs == 0)
        free(b);
}

typedef enum { K_RESOURCE, K_MANIFEST, K_VHOST } key_kind;

typedef struct entry {
    struct entry *next;
    char *key;
    uint64_t rev;
    key_kind kind;
    sl_xds_res *res; /* K_RESOURCE: NULL when the value did not decode */
    blob *raw;       /* K_MANIFEST, K_VHOST: the value; NULL for a VirtualHost that did not decode */
} entry;

typedef struct pending_commit {
    struct pending_commit *next;
    char *key;   /* <proxy>.commit */
    char *proxy; /* unescaped */
    uint64_t rev;
    uint8_t *val;
    size_t len;
} pending_commit;

/* One entry of a resolved manifest chunk. */
typedef struct item {
    char *name;
    uint64_t rev;
    uint32_t parts;  /* a route stored in parts: the next `parts` items */
    sl_xds_res *res; /* a resource (for a split route: its head) */
    blob *part;      /* a part: the packed VirtualHost */
} item;

/* A manifest chunk as resolved for a commit; shared by the commits that
 * name it at the same revision (and read with the same context). */
typedef struct rchunk {
    unsigned refs;
    sl_xds_type type;
    char id[64];
    uint64_t rev;
    char *ctx_route;    /* the route whose parts continue into this chunk, or NULL */
    uint32_t ctx_parts; /* how many of them */
    item *items;
    size_t n;
} rchunk;

/* What a proxy's last applied commit was made of. */
typedef struct pstate {
    struct pstate *next;
    char *proxy;
    rchunk **chunks;
    size_t n;
} pstate;

struct sl_xds_source {
    sl_xds_cache *cache;
    sl_xds_fetch_fn fetch;
    void *fetch_ud;
    entry **tab;
    size_t nbuckets, n;
    int initial_done;
    pending_commit *held;
    pstate *proxies;
    uint64_t commits, refused;
    sl_quarantine quarantine; /* values that do not decode (sluice/quarantine.h) */
    const char *bucket;
};

static uint64_t hash(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
    return h;
}

static entry **slot(sl_xds_source *s, const char *key)
{
    entry **e = &s->tab[hash(key) & (s->nbuckets - 1)];
    while (*e && strcmp((*e)->key, key) != 0)
        e = &(*e)->next;
    return e;
}

static void grow(sl_xds_source *s)
{
    size_t nb = s->nbuckets * 2;
    entry **t = calloc(nb, sizeof *t);
    if (!t)
        return;
    for (size_t i = 0; i < s->nbuckets; i++)
        for (entry *e = s->tab[i], *nx; e; e = nx) {
            nx = e->next;
            entry **d = &t[hash(e->key) & (nb - 1)];
            e->next = *d;
            *d = e;
        }
    free(s->tab);
    s->tab = t;
    s->nbuckets = nb;
}

sl_status sl_xds_source_new(sl_xds_source **out, sl_xds_cache *cache, sl_xds_fetch_fn fetch, void *fetch_ud)
{
    sl_xds_source *s = calloc(1, sizeof *s);
    if (!s || !(s->tab = calloc(64, sizeof *s->tab))) {
        free(s);
        return sl_error_set(SL_ERR_NOMEM, "out of memory");
    }
    s->nbuckets = 64;
    s->cache = cache;
    s->fetch = fetch;
    s->fetch_ud = fetch_ud;
    *out = s;
    return SL_OK;
}

static void entry_free(entry *e)
{
    sl_xds_res_unref(e->res);
    blob_unref(e->raw);
    free(e->key);
    free(e);
}

static void rchunk_unref(rchunk *c)
{
    if (!c || --c->refs > 0)
        return;
    for (size_t i = 0; i < c->n; i++) {
        free(c->items[i].name);
        sl_xds_res_unref(c->items[i].res);
        blob_unref(c->items[i].part);
    }
    free(c->items);
    free(c->ctx_route);
    free(c);
}

static void chunks_free(rchunk **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        rchunk_unref(v[i]);
    free(v);
}

void sl_xds_source_free(sl_xds_source *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->nbuckets; i++)
        for (entry *e = s->tab[i], *nx; e; e = nx) {
            nx = e->next;
            entry_free(e);
        }
    for (pending_commit *p = s->held, *nx; p; p = nx) {
        nx = p->next;
        free(p->key);
        free(p->proxy);
        free(p->val);
        free(p);
    }
    for (pstate *p = s->proxies, *nx; p; p = nx) {
        nx = p->next;
        chunks_free(p->chunks, p->n);
        free(p->proxy);
        free(p);
    }
    free(s->tab);
    free(s);
}

void sl_xds_source_quarantine(sl_xds_source *s, const sl_quarantine *q, const char *bucket)
{
    s->quarantine = q ? *q : (sl_quarantine){0};
    s->bucket = bucket;
}

static void quarantine(const sl_xds_source *s, const char *key, uint64_t rev, const char *err)
{
    sl_quarantine_value(&s->quarantine, s->bucket ? s->bucket : "sluice_xds", key, rev, err);
}

uint64_t sl_xds_source_commits(const sl_xds_source *s) { return s->commits; }
uint64_t sl_xds_source_refused(const sl_xds_source *s) { return s->refused; }

static void apply_commit(sl_xds_source *s, const char *key, const char *proxy, uint64_t kvrev, const uint8_t *val,
                         size_t len);

/* A VirtualHost part is checked once, when it arrives. */
static blob *check_vhost(const char *key, uint64_t rev, const uint8_t *val, size_t len)
{
    Envoy__Config__Route__V3__VirtualHost *vh = NULL;
    sl_status st = sl_pb_unpack((ProtobufCMessage **)&vh, &envoy__config__route__v3__virtual_host__descriptor, NULL,
                                val, len);
    if (st != SL_OK || !vh->name[0]) {
        if (vh)
            sl_error_set(SL_ERR_PARSE, "virtual host part without a name");
        sl_log_error("source", "bad virtual host part", "key=%s rev=%" PRIu64 " err=%s", sl_log_q(key), rev,
                     sl_log_q(sl_error_msg()));
        envoy__config__route__v3__virtual_host__free_unpacked(vh, NULL);
        return NULL;
    }
    envoy__config__route__v3__virtual_host__free_unpacked(vh, NULL);
    return blob_new(val, len);
}

/* Holds the latest commit of each proxy until every initial value is in. */
static void hold_commit(sl_xds_source *s, const char *key, const char *proxy, uint64_t rev, const uint8_t *val,
                        size_t len)
{
    pending_commit *p = s->held;
    while (p && strcmp(p->proxy, proxy) != 0)
        p = p->next;
    if (!p) {
        if (!(p = calloc(1, sizeof *p)) || !(p->key = strdup(key)) || !(p->proxy = strdup(proxy))) {
            if (p)
                free(p->key);
            free(p);
            return;
        }
        p->next = s->held;
        s->held = p;
    }
    free(p->val);
    p->val = malloc(len ? len : 1);
    if (p->val)
        memcpy(p->val, val, len);
    p->len = len;
    p->rev = rev;
}

void sl_xds_source_put(sl_xds_source *s, const char *key, uint64_t rev, const uint8_t *val, size_t len)
{
    sl_xds_key k;
    if (sl_xds_key_parse(&k, key) != SL_OK) {
        sl_log_warn("source", "ignoring key", "key=%s err=%s", sl_log_q(key), sl_log_q(sl_error_msg()));
        return;
    }
    if (k.kind == SL_XDS_KEY_COMMIT) {
        if (!s->initial_done)
            hold_commit(s, key, k.proxy, rev, val, len);
        else
            apply_commit(s, key, k.proxy, rev, val, len);
        return;
    }
    key_kind kind;
    sl_xds_res *r = NULL;
    blob *raw = NULL;
    if (k.kind == SL_XDS_KEY_MANIFEST) {
        kind = K_MANIFEST; /* decoded when a commit names it */
        if (!(raw = blob_new(val, len)))
            return;
    } else if (k.kind == SL_XDS_KEY_VHOST) {
        kind = K_VHOST;
        if (!(raw = check_vhost(key, rev, val, len)))
            quarantine(s, key, rev, sl_error_msg());
    } else {
        kind = K_RESOURCE;
        char ver[24];
        snprintf(ver, sizeof ver, "%" PRIu64, rev);
        if (sl_xds_res_new(&r, k.type, k.name, ver, val ? val : (const uint8_t *)"", len) != SL_OK) {
            sl_log_error("source", "bad resource value", "key=%s rev=%" PRIu64 " err=%s", sl_log_q(key), rev,
                         sl_log_q(sl_error_msg()));
            quarantine(s, key, rev, sl_error_msg());
        }
    }
    entry **e = slot(s, key);
    if (!*e) {
        entry *ne = calloc(1, sizeof *ne);
        if (!ne || !(ne->key = strdup(key))) {
            free(ne);
            sl_xds_res_unref(r);
            blob_unref(raw);
            return;
        }
        *e = ne;
        s->n++;
        if (s->n > s->nbuckets)
            grow(s);
        e = slot(s, key);
    }
    sl_xds_res_unref((*e)->res);
    blob_unref((*e)->raw);
    (*e)->kind = kind;
    (*e)->res = r;
    (*e)->raw = raw;
    (*e)->rev = rev;
}

void sl_xds_source_delete(sl_xds_source *s, const char *key)
{
    entry **e = slot(s, key);
    if (*e) {
        entry *d = *e;
        *e = d->next;
        entry_free(d);
        s->n--;
        return;
    }
    if (sl_xds_key_is_commit(key))
        sl_log_warn("source", "commit deleted; the proxy keeps its last revision", "key=%s", sl_log_q(key));
}

void sl_xds_source_initial_done(sl_xds_source *s)
{
    s->initial_done = 1;
    pending_commit *p = s->held;
    s->held = NULL;
    while (p) {
        pending_commit *nx = p->next;
        apply_commit(s, p->key, p->proxy, p->rev, p->val, p->len);
        free(p->key);
        free(p->proxy);
        free(p->val);
        free(p);
        p = nx;
    }
}

/* The resource named by a commit: from the store at that revision, from the
 * proxy's current snapshot, or fetched from the bucket's history. */
static sl_status resolve(sl_xds_source *s, sl_xds_res **out, const sl_xds_snapshot *cur, sl_xds_type t,
                         const char *proxy, const char *name, uint64_t rev)
{
    char key[SL_XDS_KEY_MAX], ver[24];
    sl_status rc;
    if ((rc = sl_xds_key_resource(key, sizeof key, proxy, t, name)) != SL_OK)
        return rc;
    snprintf(ver, sizeof ver, "%" PRIu64, rev);
    entry *e = *slot(s, key);
    if (e && e->rev == rev && e->kind == K_RESOURCE) {
        if (!e->res)
            return sl_error_set(SL_ERR_PARSE, "%s at revision %" PRIu64 " is not a valid resource", key, rev);
        *out = sl_xds_res_ref(e->res);
        return SL_OK;
    }
    sl_xds_res *c = cur ? sl_xds_snapshot_find(cur, t, name) : NULL;
    if (c && strcmp(c->version, ver) == 0) {
        *out = sl_xds_res_ref(c);
        return SL_OK;
    }
    if (s->fetch) {
        uint8_t *val = NULL;
        size_t len = 0;
        if ((rc = s->fetch(s->fetch_ud, key, rev, &val, &len)) != SL_OK)
            return sl_error_set(rc, "%s at revision %" PRIu64 " is not available: %s", key, rev, sl_error_msg());
        rc = sl_xds_res_new(out, t, name, ver, val ? val : (const uint8_t *)"", len);
        free(val);
        return rc;
    }
    return sl_error_set(SL_ERR_NOT_FOUND, "%s at revision %" PRIu64 " is not available (have %" PRIu64 ")", key,
                        rev, e ? e->rev : 0);
}

/* The raw value of a manifest or part key at rev: from the table or the
 * bucket's history. A part is checked as a VirtualHost. */
static sl_status resolve_raw(sl_xds_source *s, blob **out, const char *key, uint64_t rev, key_kind kind)
{
    entry *e = *slot(s, key);
    sl_status rc;
    if (e && e->rev == rev && e->kind == kind) {
        if (!e->raw)
            return sl_error_set(SL_ERR_PARSE, "%s at revision %" PRIu64 " is not a valid virtual host", key, rev);
        *out = blob_ref(e->raw);
        return SL_OK;
    }
    if (!s->fetch)
        return sl_error_set(SL_ERR_NOT_FOUND, "%s at revision %" PRIu64 " is not available (have %" PRIu64 ")", key,
                            rev, e ? e->rev : 0);
    uint8_t *val = NULL;
    size_t len = 0;
    if ((rc = s->fetch(s->fetch_ud, key, rev, &val, &len)) != SL_OK)
        return sl_error_set(rc, "%s at revision %" PRIu64 " is not available: %s", key, rev, sl_error_msg());
    *out = kind == K_VHOST ? check_vhost(key, rev, val, len) : blob_new(val, len);
    free(val);
    if (!*out)
        return sl_error_set(SL_ERR_PARSE, "%s at revision %" PRIu64 " is not a valid virtual host", key, rev);
    return SL_OK;
}

/* Reads and resolves one manifest chunk. route/parts: the split route whose
 * parts continue into it (updated for the next chunk). */
static sl_status read_chunk(sl_xds_source *s, rchunk **out, const sl_xds_snapshot *cur, const char *proxy,
                            sl_xds_type t, const char *id, uint64_t rev, char **route, uint32_t *parts)
{
    char key[SL_XDS_KEY_MAX], pkey[SL_XDS_KEY_MAX];
    blob *raw = NULL;
    Sluice__V1__XdsManifest *m = NULL;
    rchunk *c = NULL;
    sl_status rc;

    if ((rc = sl_xds_key_manifest(key, sizeof key, proxy, t, id)) != SL_OK ||
        (rc = resolve_raw(s, &raw, key, rev, K_MANIFEST)) != SL_OK)
        goto out;
    if (sl_pb_unpack((ProtobufCMessage **)&m, &sluice__v1__xds_manifest__descriptor, NULL, raw->data, raw->len) !=
        SL_OK) {
        rc = sl_error_set(SL_ERR_PARSE, "%s at revision %" PRIu64 " is not a sluice.v1.XdsManifest: %s", key, rev,
                          sl_error_msg());
        goto out;
    }
    if (!(c = calloc(1, sizeof *c)) || (m->n_entries && !(c->items = calloc(m->n_entries, sizeof *c->items))) ||
        (*route && !(c->ctx_route = strdup(*route)))) {
        rc = sl_error_set(SL_ERR_NOMEM, "out of memory");
        goto out;
    }
    c->refs = 1;
    c->type = t;
    snprintf(c->id, sizeof c->id, "%s", id);
    c->rev = rev;
    c->ctx_parts = *parts;
    for (size_t i = 0; i < m->n_entries; i++) {
        const Sluice__V1__XdsEntry *en = m->entries[i];
        item *it = &c->items[c->n];
        if (!en->name[0] || !en->revision) {
            rc = sl_error_set(SL_ERR_PARSE, "%s at revision %" PRIu64 ": entry %zu has no name or revision", key,
                              rev, i);
            goto out;
        }
        if (!(it->name = strdup(en->name))) {
            rc = sl_error_set(SL_ERR_NOMEM, "out of memory");
            goto out;
        }
        it->rev = en->revision;
        c->n++;
        if (*parts) { /* a virtual host of *route */
            if (en->parts) {
                rc = sl_error_set(SL_ERR_PARSE, "%s: part \"%s\" of route \"%s\" has parts itself", key, en->name,
                                  *route);
                goto out;
            }
            if ((rc = sl_xds_key_vhost(pkey, sizeof pkey, proxy, *route, en->name)) != SL_OK ||
                (rc = resolve_raw(s, &it->part, pkey, en->revision, K_VHOST)) != SL_OK)
                goto out;
            if (--*parts == 0) {
                free(*route);
                *route = NULL;
            }
            continue;
        }
        if (en->parts && t != SL_XDS_ROUTE) {
            rc = sl_error_set(SL_ERR_PARSE, "%s: %s \"%s\" has parts (only routes may)", key, sl_xds_type_token(t),
                              en->name);
            goto out;
        }
        if ((rc = resolve(s, &it->res, cur, t, proxy, en->name, en->revision)) != SL_OK)
            goto out;
        if ((it->parts = en->parts)) {
            if (!(*route = strdup(en->name))) {
                rc = sl_error_set(SL_ERR_NOMEM, "out of memory");
                goto out;
            }
            *parts = en->parts;
        }
    }
    *out = c;
    c = NULL;
out:
    rchunk_unref(c);
    sluice__v1__xds_manifest__free_unpacked(m, NULL);
    blob_unref(raw);
    return rc;
}

/* The served RouteConfiguration of a split route: its head followed by its
 * parts; reused from the current snapshot when the same revisions. */
static sl_status assemble(sl_xds_res **out, const sl_xds_snapshot *cur, const item *head, const item *parts)
{
    char ver[48];
    uint64_t h = 0xcbf29ce484222325ULL;
    const uint8_t **pv = NULL;
    size_t *pl = NULL;
    sl_status rc;

    for (uint32_t i = 0; i < head->parts; i++) {
        for (const char *p = parts[i].name;; p++) {
            h = (h ^ (unsigned char)*p) * 0x100000001b3ULL;
            if (!*p)
                break;
        }
        for (int b = 0; b < 64; b += 8)
            h = (h ^ ((parts[i].rev >> b) & 0xff)) * 0x100000001b3ULL;
    }
    /* Every replica computes the same version: the head's revision and a
     * hash of the parts' names and revisions. */
    snprintf(ver, sizeof ver, "%" PRIu64 "-%016" PRIx64, head->rev, h);
    sl_xds_res *c = cur ? sl_xds_snapshot_find(cur, SL_XDS_ROUTE, head->name) : NULL;
    if (c && strcmp(c->version, ver) == 0) {
        *out = sl_xds_res_ref(c);
        return SL_OK;
    }
    if (!(pv = malloc(head->parts * sizeof *pv)) || !(pl = malloc(head->parts * sizeof *pl))) {
        rc = sl_error_set(SL_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (uint32_t i = 0; i < head->parts; i++) {
        pv[i] = parts[i].part->data;
        pl[i] = parts[i].part->len;
    }
    const sl_xds_res *hr = head->res;
    rc = sl_xds_res_new_route_parts(out, head->name, ver, hr->sotw + hr->sotw_len - hr->packed_len, hr->packed_len,
                                    pv, pl, head->parts);
out:
    free(pv);
    free(pl);
    return rc;
}

static pstate *proxy_state(sl_xds_source *s, const char *proxy)
{
    pstate *p;
    for (p = s->proxies; p; p = p->next)
        if (strcmp(p->proxy, proxy) == 0)
            return p;
    if (!(p = calloc(1, sizeof *p)) || !(p->proxy = strdup(proxy))) {
        free(p);
        return NULL;
    }
    p->next = s->proxies;
    s->proxies = p;
    return p;
}

/* The chunks commit cm (at key, KV revision kvrev) names, into chunks
 * (*nch of them): those ps's last commit had at the same revision (and read
 * in the same context) reused as they were resolved, only the others read
 * (*read counts them). */
static sl_status commit_chunks(sl_xds_source *s, rchunk **chunks, size_t *nch, size_t *read, pstate *ps,
                               const sl_xds_snapshot *cur, const char *key, const char *proxy, uint64_t kvrev,
                               const Sluice__V1__XdsCommit *cm)
{
    char *route = NULL;
    uint32_t parts = 0;
    int last_type = -1;
    sl_status rc = SL_OK;

    for (size_t i = 0; i < cm->n_chunks; i++) {
        const Sluice__V1__XdsChunkRef *ref = cm->chunks[i];
        sl_xds_type t;
        if (sl_xds_type_from_token(&t, ref->type) != SL_OK || !ref->id[0] || strlen(ref->id) >= 64 ||
            strchr(ref->id, '.') || !ref->revision || (int)t < last_type) {
            rc = sl_error_set(SL_ERR_PARSE, "%s at revision %" PRIu64 ": chunk %zu (type \"%s\", id \"%s\", "
                              "revision %" PRIu64 ") is not valid or out of type order", key, kvrev, i,
                              ref->type, ref->id, ref->revision);
            goto out;
        }
        if ((int)t != last_type && parts) {
            rc = sl_error_set(SL_ERR_PARSE, "%s at revision %" PRIu64 ": route \"%s\" lacks %" PRIu32
                              " of its parts", key, kvrev, route, parts);
            goto out;
        }
        last_type = (int)t;
        rchunk *c = NULL;
        for (size_t j = 0; j < ps->n && !c; j++) {
            rchunk *o = ps->chunks[j];
            if (o->type == t && o->rev == ref->revision && strcmp(o->id, ref->id) == 0 && o->ctx_parts == parts &&
                (!parts || strcmp(o->ctx_route, route) == 0))
                c = o;
        }
        if (c) {
            chunks[(*nch)++] = c;
            c->refs++;
            /* The context after it, as when it was read. */
            for (size_t k = 0; k < c->n; k++) {
                if (parts) {
                    if (--parts == 0) {
                        free(route);
                        route = NULL;
                    }
                } else if (c->items[k].parts) {
                    free(route);
                    if (!(route = strdup(c->items[k].name))) {
                        rc = sl_error_set(SL_ERR_NOMEM, "out of memory");
                        goto out;
                    }
                    parts = c->items[k].parts;
                }
            }
            continue;
        }
        if ((rc = read_chunk(s, &c, cur, proxy, t, ref->id, ref->revision, &route, &parts)) != SL_OK)
            goto out;
        chunks[(*nch)++] = c;
        (*read)++;
    }
    if (parts)
        rc = sl_error_set(SL_ERR_PARSE, "%s at revision %" PRIu64 ": route \"%s\" lacks %" PRIu32
                          " of its parts", key, kvrev, route, parts);
out:
    free(route);
    return rc;
}

/* Adds every resource the chunks name to snap, routes in parts assembled. */
static sl_status fill_snapshot(sl_xds_snapshot *snap, const sl_xds_snapshot *cur, rchunk **chunks, size_t nch)
{
    sl_status rc;
    for (size_t i = 0; i < nch; i++) {
        rchunk *c = chunks[i];
        for (size_t k = 0; k < c->n; k++) {
            item *it = &c->items[k];
            if (it->part)
                continue; /* taken with its route */
            if (!it->parts) {
                if ((rc = sl_xds_snapshot_add(snap, it->res)) != SL_OK)
                    return rc;
                continue;
            }
            /* Gather the parts (they may continue into later chunks). */
            item *pv = malloc(it->parts * sizeof *pv);
            uint32_t got = 0;
            if (!pv)
                return sl_error_set(SL_ERR_NOMEM, "out of memory");
            for (size_t ci = i, kk = k + 1; got < it->parts && ci < nch; ci++, kk = 0)
                for (; kk < chunks[ci]->n && got < it->parts; kk++)
                    pv[got++] = chunks[ci]->items[kk];
            sl_xds_res *r = NULL;
            rc = got == it->parts ? assemble(&r, cur, it, pv)
                                  : sl_error_set(SL_ERR_PARSE, "route \"%s\" lacks parts", it->name);
            free(pv);
            if (rc != SL_OK)
                return rc;
            rc = sl_xds_snapshot_add(snap, r);
            sl_xds_res_unref(r);
            if (rc != SL_OK)
                return rc;
        }
    }
    return SL_OK;
}

/* Applies the commit under key (proxy's, unescaped) at KV revision kvrev:
 * a new snapshot in the cache, or refused (logged) with the previous one
 * left serving. */
static void apply_commit(sl_xds_source *s, const char *key, const char *proxy, uint64_t kvrev, const uint8_t *val,
                         size_t len)
{
    Sluice__V1__XdsCommit *cm = NULL;
    sl_xds_snapshot *snap = NULL, *cur = NULL;
    rchunk **chunks = NULL;
    size_t nch = 0, read = 0;
    pstate *ps;
    sl_status rc = SL_OK;

    if (sl_pb_unpack((ProtobufCMessage **)&cm, &sluice__v1__xds_commit__descriptor, NULL, val, len) != SL_OK) {
        rc = sl_error_set(SL_ERR_PARSE, "%s at revision %" PRIu64 " is not a sluice.v1.XdsCommit (a "
                          "commit of an older version, or not written by sluice-translator?): %s", key, kvrev,
                          sl_error_msg());
        goto out;
    }
    uint64_t revision = cm->revision ? cm->revision : kvrev;
    if (!(ps = proxy_state(s, proxy)) || (cm->n_chunks && !(chunks = calloc(cm->n_chunks, sizeof *chunks)))) {
        rc = sl_error_set(SL_ERR_NOMEM, "out of memory");
        goto out;
    }
    if ((rc = sl_xds_snapshot_new(&snap, proxy, revision)) != SL_OK)
        goto out;
    cur = sl_xds_cache_get(s->cache, proxy);
    if ((rc = commit_chunks(s, chunks, &nch, &read, ps, cur, key, proxy, kvrev, cm)) != SL_OK ||
        (rc = fill_snapshot(snap, cur, chunks, nch)) != SL_OK || (rc = sl_xds_snapshot_seal(snap)) != SL_OK)
        goto out;
    sl_log_info("source", "commit", "proxy=%s revision=%" PRIu64 " clusters=%zu endpoints=%zu listeners=%zu "
                "routes=%zu secrets=%zu chunks=%zu chunks_read=%zu", sl_log_q(proxy), revision,
                snap->types[SL_XDS_CLUSTER].n, snap->types[SL_XDS_ENDPOINT].n, snap->types[SL_XDS_LISTENER].n,
                snap->types[SL_XDS_ROUTE].n, snap->types[SL_XDS_SECRET].n, nch, read);
    s->commits++;
    sl_xds_cache_commit(s->cache, snap);
    snap = NULL;
    /* The proxy's state is now this commit's chunks. */
    chunks_free(ps->chunks, ps->n);
    ps->chunks = chunks;
    ps->n = nch;
    chunks = NULL;
    nch = 0;
out:
    if (rc != SL_OK) {
        char tok[SL_XDS_TOKEN_MAX];
        snprintf(tok, sizeof tok, "%.*s", (int)strcspn(key, "."), key);
        s->refused++;
        sl_log_error("source", "commit refused; the previous revision keeps serving", "proxy=%s err=%s",
                     sl_log_q(tok), sl_log_q(sl_error_msg()));
        if (rc == SL_ERR_PARSE) /* the commit, or a manifest it names, does not decode */
            quarantine(s, key, kvrev, sl_error_msg());
    }
    chunks_free(chunks, nch);
    sl_xds_snapshot_unref(snap);
    sl_xds_snapshot_unref(cur);
    sluice__v1__xds_commit__free_unpacked(cm, NULL);
}

/* ---- the NATS side ---- */

struct sl_xds_watch {
    sl_xds_source *src;
    sl_kv *kv;
    kvStore *kvs; /* nats.c handle for reads at a revision */
    sl_kv_watch *w;
    void (*ready)(void *);
    void *ud;
};

static sl_status fetch_rev(void *ud, const char *key, uint64_t rev, uint8_t **val, size_t *len)
{
    sl_xds_watch *w = ud;
    kvEntry *e = NULL;
    natsStatus ns = kvStore_GetRevision(&e, w->kvs, key, rev);
    if (ns != NATS_OK)
        return sl_nats_error(ns, "get %s revision %" PRIu64, key, rev);
    int n = kvEntry_ValueLen(e);
    *len = n > 0 ? (size_t)n : 0;
    *val = malloc(*len ? *len : 1);
    if (*val && *len)
        memcpy(*val, kvEntry_Value(e), *len);
    kvEntry_Destroy(e);
    return *val ? SL_OK : sl_error_set(SL_ERR_NOMEM, "out of memory");
}

static void on_entry(sl_kv_watch *kw, const sl_kv_entry *e, void *ud)
{
    (void)kw;
    sl_xds_watch *w = ud;
    if (e->op == SL_KV_PUT)
        sl_xds_source_put(w->src, e->key, e->revision, e->value, e->len);
    else
        sl_xds_source_delete(w->src, e->key);
}

static void on_initial(sl_kv_watch *kw, void *ud)
{
    (void)kw;
    sl_xds_watch *w = ud;
    sl_xds_source_initial_done(w->src);
    sl_log_info("source", "initial values loaded", "commits=%" PRIu64, sl_xds_source_commits(w->src));
    if (w->ready)
        w->ready(w->ud);
}

static void on_failed(sl_kv_watch *kw, sl_status st, const char *msg, void *ud)
{
    (void)kw;
    (void)ud;
    sl_log_error("source", "watch failed", "status=%s err=%s", sl_status_str(st), sl_log_q(msg));
}

sl_status sl_xds_watch_start(sl_xds_watch **out, sl_nats *nc, sl_loop *loop, const char *bucket,
                             sl_xds_cache *cache, const sl_quarantine *q, void (*ready)(void *ud), void *ud)
{
    sl_status rc;
    sl_kv_config cfg;
    sl_xds_watch *w = calloc(1, sizeof *w);
    if (!w)
        return sl_error_set(SL_ERR_NOMEM, "out of memory");
    w->ready = ready;
    w->ud = ud;
    sl_kv_config_init(&cfg, bucket);
    cfg.description = "Envoy resources per proxy, with a commit per proxy (sluice-xds)";
    cfg.history = 5; /* a commit may name a revision the watch has moved past */
    if ((rc = sl_kv_open(&w->kv, nc, &cfg)) != SL_OK)
        goto err;
    natsStatus ns = js_KeyValue(&w->kvs, sl_nats_js(nc), bucket);
    if (ns != NATS_OK) {
        rc = sl_nats_error(ns, "bind %s", bucket);
        goto err;
    }
    if ((rc = sl_xds_source_new(&w->src, cache, fetch_rev, w)) != SL_OK)
        goto err;
    sl_xds_source_quarantine(w->src, q, bucket);
    sl_kv_watch_handlers h = {on_entry, on_initial, on_failed};
    if ((rc = sl_kv_watch_start(&w->w, w->kv, NULL, loop, &h, w)) != SL_OK)
        goto err;
    *out = w;
    return SL_OK;
err:
    sl_xds_watch_free(w);
    return rc;
}

void sl_xds_watch_free(sl_xds_watch *w)
{
    if (!w)
        return;
    sl_kv_watch_free(w->w);
    sl_xds_source_free(w->src);
    if (w->kvs)
        kvStore_Destroy(w->kvs);
    sl_kv_free(w->kv);
    free(w);
}
