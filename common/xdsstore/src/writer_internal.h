/* writer_internal.h - the sluice_xds writer's state, shared by its files:
 * writer.c (the API, puts, commits, deletions), write_type.c (a proxy's
 * resources and manifest chunks of one type), write_route.c (routes in
 * parts and the per-proxy write cache), wmap.c (what was written). */
#ifndef SLUICE_XDSW_INTERNAL_H
#define SLUICE_XDSW_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sluice/v1/xds.pb-c.h"
#include "sluice/vec.h"
#include "sluice/xds.h"
#include "sluice/xds_keys.h"
#include "sluice/xds_writer.h"

/* ---- what we wrote to the bucket: key -> bytes, revision (wmap.c) ---- */

typedef struct written {
    char *key;
    uint8_t *data;
    size_t len;     /* SIZE_MAX: a put that failed or was never sent (never matches) */
    uint64_t rev;
    int live;       /* named, while sl_xdsw_delete_stale() looks */
    uint64_t fp;    /* manifest chunks: fingerprint of the entries packed (0: unknown) */
    uint64_t first; /* manifest chunks: hash of the first entry (the id) */
    int commit;     /* a <proxy>.commit key: never stale */
    struct written *next;
} written;

typedef struct wmap {
    written **b;
    size_t cap, n;
} wmap;

written *xdsw_map_get(wmap *m, const char *key);
/* key's entry, added (zeroed) when missing; NULL when out of memory. */
written *xdsw_map_put(wmap *m, const char *key);
void xdsw_map_del(wmap *m, const char *key);
void xdsw_map_free(wmap *m);

/* ---- the per-proxy write cache (write_route.c) ----
 *
 * What the last write of a proxy wrote, in the order it wrote it, so the
 * next write finds each resource's key without building it: per type the
 * resources (sorted by name, as the result has them), and for a route in
 * parts its virtual hosts in order.
 *
 * rname/rdata are the result's pointers at that write, compared as values
 * only (never followed): the translator's resource bytes are read only and
 * a resource that changes gets a new buffer while the previous result (or,
 * on the endpoint path, the previous bytes) still lives, so the same
 * (name, data, len) as last time means the same bytes. An unchanged
 * resource then costs a few comparisons in two sequential arrays, not a
 * look at its key or bytes. */
typedef struct wc_list wc_list;
typedef struct wc_item {
    char *name;
    const void *rname, *rdata; /* the result's pointers last time (values only) */
    size_t rlen;
    uint64_t rev;   /* its KV revision (a split route: the head's) */
    written *w;     /* its key as written (a split route: the head) */
    uint64_t hash;  /* sl_xds_entry_hash() */
    wc_list *parts; /* a split route: its virtual hosts */
    uint8_t *whole; /* a split route: the bytes it was split from (whole_len of whole_cap) */
    size_t whole_len, whole_cap;
    size_t off;     /* a part: where its bytes are in the route's whole */
} wc_item;
struct wc_list {
    wc_item *v;
    size_t n;
};

typedef struct wcache {
    struct wcache *next;
    char *proxy;
    wc_list types[SL_XDS_TYPE_COUNT];
    written **chunks; /* the manifest chunks named by the last write, in order */
    size_t n_chunks, cap_chunks;
    written **prev_chunks; /* during a write: the previous write's */
    size_t n_prev_chunks, cap_prev_chunks;
    /* per type: where its chunks are in chunks (t0, tn) and in prev_chunks
     * (prev_t0, prev_tn), and how many entries it named */
    size_t t0[SL_XDS_TYPE_COUNT], tn[SL_XDS_TYPE_COUNT];
    size_t prev_t0[SL_XDS_TYPE_COUNT], prev_tn[SL_XDS_TYPE_COUNT];
    size_t named[SL_XDS_TYPE_COUNT];
    const void *list[SL_XDS_TYPE_COUNT]; /* the result's res[t] last written, when a shared list (values only) */
} wcache;

/* ---- what a proxy's write builds: the manifest entries of one type, and
 * the chunk references of the commit; reused between calls ---- */

typedef struct mf_entry {
    const char *name; /* borrowed from the result or the cache */
    uint64_t rev, hash;
    uint32_t parts;
} mf_entry;

typedef struct write_buf {
    mf_entry *e;
    size_t n, cap;
    Sluice__V1__XdsChunkRef *refs; /* n_refs of them, with refp and ids alike */
    Sluice__V1__XdsChunkRef **refp;
    char (*ids)[17];
    size_t n_refs, cap_refs, cap_refp, cap_ids;
    Sluice__V1__XdsEntry *me; /* the entries of the chunk being packed, and pointers to them */
    Sluice__V1__XdsEntry **mep;
    size_t cap_me, cap_mep;
    uint8_t *buf;
    size_t buf_cap;
} write_buf;

struct sl_xdsw {
    sl_kv *kv;
    const char *comp; /* log component */
    sl_counter *c_writes, *c_deletes;
    wmap xds;       /* <proxy>.<type>.<name> and <proxy>.commit as written */
    write_buf wb;   /* a write's buffers, kept between calls */
    wcache *wc;     /* per proxy: what its last write wrote */
    size_t n_named;   /* keys of xds (not commits) named by this round's writes */
    size_t n_commits; /* commit keys in xds */
    sl_xdsw_stats st;
    /* Pipelined writes: the bucket's last sequence as our own
     * acknowledgements told it (0: unknown), and the puts of the proxy
     * being written, published together before its commit. */
    uint64_t seq;
    int batching;
    written **batch;
    size_t n_batch, cap_batch;
    sl_kv_put_item *items;
    size_t cap_items;
    char **purge;   /* secret keys replaced since the last commit: older values purged after it */
    size_t n_purge, cap_purge;
    char **proxies; /* proxies of the last round (or with a commit in the bucket) */
    size_t n_proxies, cap_proxies;
};

/* ---- writer.c ---- */

/* Puts data under key unless the bucket holds those bytes already; *rev is
 * its KV revision, *wout (may be NULL) what the writer remembers of it.
 * known: key's entry, when the caller has it (saves the lookup). */
sl_status xdsw_put(sl_xdsw *w, written *known, const char *key, const uint8_t *data, size_t len, uint64_t *rev,
                   written **wout);
double xdsw_now_us(void);

/* ---- write_buf (write_type.c) ---- */

sl_status xdsw_wb_entry(write_buf *b, const char *name, uint64_t rev, uint64_t hash, uint32_t parts);
sl_status xdsw_wb_ref(write_buf *b, const char *type, uint64_t hash, uint64_t rev);
/* Packs m into b->buf (grown as needed); its length, or SIZE_MAX. */
size_t xdsw_wb_pack(write_buf *b, const ProtobufCMessage *m);
void xdsw_wb_free(write_buf *b);

/* Writes p's resources and manifest chunks of type t (write_type.c); *pc
 * is the cursor in the cache's previous chunks. On an error the cache is
 * dropped. */
sl_status xdsw_write_type(sl_xdsw *w, wcache *wc, const sl_tr_proxy *p, int t, size_t *pc, size_t *n_res);

/* ---- routes in parts, the write cache (write_route.c) ---- */

/* The route r stored in parts (its head under key, each virtual host under
 * its vhost key, their manifest entries appended to w->wb); *done false
 * (nothing written) when r is not worth splitting or does not split.
 * prev_route: the route as written last time (parts matched by position);
 * *now gets this time's parts. */
sl_status xdsw_put_route_parts(sl_xdsw *w, const char *proxy, const char *key, const sl_tr_resource *r,
                               written *known, wc_item *prev_route, wc_list **now, written **head_w,
                               uint64_t *head_rev, bool *done);
void xdsw_wc_list_clear(wc_list *l);
/* The cache of proxy, created empty when missing; NULL when out of memory. */
wcache *xdsw_wcache_of(sl_xdsw *w, const char *proxy);
void xdsw_wcache_free_all(sl_xdsw *w);
/* Forgets what the last write of c's proxy wrote (its next write looks
 * every key up and compares bytes). */
void xdsw_wcache_drop(wcache *c);
/* Whether p's resources of type t are the ones last written, in the same
 * order, by pointers. */
bool xdsw_wc_same_list(const wc_list *l, const sl_tr_proxy *p, int t);
/* Whether item it (as last written) and resource r have the same manifest
 * entries but revisions. */
bool xdsw_same_entries(const wc_item *it, const sl_tr_resource *r, int t);

/* A resource's identity for the write cache (translate.h): its bytes
 * pointer, or, for a route given in parts only, its parts. */
static inline const void *xdsw_res_id(const sl_tr_resource *r)
{
    return r->data ? (const void *)r->data : (const void *)r->parts;
}

/* The fingerprint of a chunk of manifest entries of type t (what makes its
 * bytes, bar the names, which its first hash and position pin). */
static inline uint64_t xdsw_chunk_fp(int t, const mf_entry *e, size_t n)
{
    uint64_t fp = (0xcbf29ce484222325ULL ^ (uint64_t)t) * 0x100000001b3ULL;
    for (size_t k = 0; k < n; k++) {
        fp = (fp ^ e[k].hash) * 0x100000001b3ULL;
        fp = (fp ^ e[k].rev) * 0x100000001b3ULL;
        fp = (fp ^ e[k].parts) * 0x100000001b3ULL;
    }
    return fp | 1; /* never 0 ("unknown") */
}

#endif
