/* core.h - private to the translation engine: the store, the context, the
 * caches kept between translations (store.c, ctx.c and the rules; see
 * translate_internal.h for what the rule files share). */
#ifndef SLUICE_TR_CORE_H
#define SLUICE_TR_CORE_H

#include <setjmp.h>

#include "plugin.h"
#include "sluice/arena.h"
#include "sluice/translate.h"

/* ---- store ---- */

/* Packed bytes shared by reference: kept in the store (tr_up_cache) and
 * lent to every result that serves them (sl_tr_resource.shared), so a
 * translation that keeps an upstream's cluster copies no bytes. Reference
 * counted without atomics: like everything here, a store and the results
 * translated from it belong to one thread. Freed with the last reference,
 * whichever goes first, the store's entry or a result. */
typedef struct tr_blob {
    size_t refs;
    size_t len;
    char *name; /* the resource's name, after the bytes */
    struct tr_rparts *parts; /* a RouteConfiguration spliced from virtual hosts: its parts (owned), or NULL */
    uint8_t data[];
} tr_blob;

/* The parts of a RouteConfiguration spliced from packed virtual hosts
 * (sl_tr_route_parts, its public view, first): the head (every field but
 * the virtual hosts) and one reference to each virtual host's blob, whose
 * bytes and name the parts point at. Owned by the route's blob; freed with
 * it. The virtual hosts' blobs are never changed once made, so while a
 * result holds the route, a part pointer seen again is the same bytes. */
typedef struct tr_rparts {
    sl_tr_route_parts pub;
    bool no_whole; /* the blob holds no bytes (options.route_parts_only); its len is the whole's */
    uint8_t *head;
    sl_tr_part *v;
    struct tr_blob **vh;
} tr_rparts;

/* Frees p and lets go of its virtual hosts. NULL is a no-op. */
void tr_rparts_free(tr_rparts *p);

/* The blob whose data is bytes (bytes must be a blob's data). */
static inline tr_blob *tr_blob_of(const uint8_t *bytes)
{
    return (tr_blob *)(void *)((char *)(uintptr_t)bytes - offsetof(tr_blob, data));
}

/* m packed (as tr_pack_heap) into a new blob named name, with one
 * reference; NULL when out of memory. */
tr_blob *tr_blob_pack(const ProtobufCMessage *m, const char *name);
/* One more reference to b; returns b. */
tr_blob *tr_blob_ref(tr_blob *b);
/* Drops a reference; frees b with the last one. NULL is a no-op. */
void tr_blob_unref(tr_blob *b);

/* What a translation built from an Upstream, kept for the next one: the
 * packed Cluster and ClusterLoadAssignment, valid while the upstream, its
 * endpoint set, the Settings and the secrets are the versions it was built
 * from (store stamps). Only clean builds are kept: no errors, no warnings,
 * no secrets referred to. */
typedef struct tr_up_cache {
    uint64_t up_stamp, eps_stamp, settings_stamp, secret_gen;
    uint64_t eps_gen; /* the store's eps_gen when eps_stamp was last checked */
    char *settings_ns;
    tr_blob *cluster, *cla; /* one reference each; cla NULL when not EDS */
} tr_up_cache;

/* A VirtualService's virtual host as one gateway of one proxy got it,
 * kept for the next translation: valid while the VirtualService and
 * everything but VirtualServices (the store's world stamp) are unchanged.
 * Replaying it gives what translating it again would: the packed
 * VirtualHost, its name and domains (for conflicts), the plugins it used,
 * the reports it made (about itself and the route tables it delegates to)
 * and the route table flags it set. Only accepted virtual hosts whose
 * plugins keep no per-listener state are kept. */
typedef struct tr_vh_rep {
    int kind; /* index in the store */
    char *ns, *name, *msg;
    bool error;
} tr_vh_rep;

typedef struct tr_vh_cache {
    struct tr_vh_cache *next;
    uint64_t vs_stamp, world;
    char *settings_ns, *proxy, *listener;
    tr_blob *blob;        /* packed VirtualHost, named as it (one reference) */
    const uint8_t *bytes; /* blob->data */
    size_t len;
    char *name;
    char **domains;
    size_t n_domains;
    const struct sl_tr_plugin **used;
    size_t n_used;
    tr_vh_rep *reps;
    size_t n_reps;
    long *rt_idx; /* route tables touched, and the flags set on them */
    uint8_t *rt_flags;
    size_t n_rt;
    long *up_idx; /* upstreams it refers to (their clusters go to the proxy) */
    size_t n_up;
} tr_vh_cache;

/* What the virtual services of one gateway (proxy and listener) gave in
 * the last translation, when every one it serves came from a kept virtual
 * host (tr_vh_cache) without reports, and no domain was contested: while
 * only VirtualServices change (the store's world, and the bucket's
 * layout, are the same), the next translation takes the unchanged ones
 * from here, without visiting them, and translates only the changed ones;
 * domain conflicts are looked for only around those. */
typedef struct tr_gw_contrib {
    uint32_t vs;                    /* index of the VirtualService */
    long rt;                        /* a route table reached (flags), or -1: */
    uint8_t flags;
    const struct sl_tr_plugin *use; /* a plugin used */
    long up;                        /* an upstream referred to (or TR_REACH_ALL), or -1 */
} tr_gw_contrib;

typedef struct tr_gw_dom {
    uint64_t h; /* hash of a domain of VirtualService vs; 0: free slot */
    uint32_t vs;
} tr_gw_dom;

typedef struct tr_gw_memo {
    struct tr_gw_memo *next;
    char *proxy, *listener, *settings_ns;
    uint64_t world, vs_layout;
    size_t n;                  /* VirtualServices in the store */
    uint64_t *stamps;          /* each one's stamp then */
    const struct tr_vh_cache **c; /* each one's kept virtual host, or NULL: not served */
    struct tr_gw_vh {             /* and what of it the replay reads, side by side */
        const uint8_t *bytes;
        size_t len;
        char *name;
        char **domains;
        size_t n_domains;
    } *vh;
    tr_gw_contrib *con;        /* what replaying them does besides */
    size_t n_con, cap_con;
    tr_gw_dom *dom;            /* the served domains, by hash (may hold stale entries) */
    size_t n_dom, cap_dom;
    /* The gateway's packed RouteConfiguration, made of the virtual hosts
     * the memo serves (one reference), or NULL: reused as it is while no
     * changed VirtualService is served, or was. */
    tr_blob *rcfg;
    uint64_t seen; /* the last translation that used it (store's translations) */
} tr_gw_memo;

void tr_gw_memo_free(tr_gw_memo *m); /* the whole list */

/* A report kept for the next translation and shared with results
 * (sl_tr_report.shared): an Accepted one, all in one allocation, valid
 * while the entry's stamp is the same. Reference counted like tr_blob. */
typedef struct tr_rblob {
    size_t refs;
    uint64_t stamp;
    sl_tr_report rep;
    char *no_warnings[1];
    char strings[];
} tr_rblob;

/* The Accepted reports with nothing to say of a translation, by position
 * (the result's order: kinds, then each bucket in order), shared by the
 * store and results: while the store's layout (no resource added or
 * removed) is the same, a translation takes entry i as it is when the
 * resource there has the same stamp, and the result borrows it (its
 * sl_tr_report.shared equals v[i].shared: the list holds the reference).
 * Never changed once made; reference counted like tr_blob. */
typedef struct tr_replist {
    size_t refs;
    size_t n;
    uint64_t layout;  /* the store's layout stamp when made */
    uint64_t *stamps; /* each entry's resource stamp (0: none) */
    sl_tr_report v[]; /* v[i].shared: one reference, or NULL (not one) */
} tr_replist;

/* One more reference to l; returns l. */
tr_replist *tr_replist_ref(tr_replist *l);
/* Drops a reference; frees l with the last one. NULL is a no-op. */
void tr_replist_unref(tr_replist *l);

/* One more reference to b; returns b. */
tr_rblob *tr_rblob_ref(tr_rblob *b);
/* Drops a reference; frees b with the last one. NULL is a no-op. */
void tr_rblob_unref(tr_rblob *b);

/* A proxy's whole list of clusters (or endpoints), every one a kept blob,
 * in name order: shared by reference between the store (tr_sort_cache)
 * and every result that serves it (sl_tr_proxy.lists). It owns a
 * reference to each resource's blob; a result that must change an entry
 * (sl_tr_translate_endpoints) copies the array first. Reference counted
 * like tr_blob. */
typedef struct tr_rlist {
    size_t refs;
    size_t n;
    sl_tr_resource v[];
} tr_rlist;

/* One more reference to l; returns l. */
tr_rlist *tr_rlist_ref(tr_rlist *l);
/* Drops a reference; frees l (and its blob references) with the last one.
 * NULL is a no-op. */
void tr_rlist_unref(tr_rlist *l);

/* The name order of a proxy's kept clusters (or endpoints) from the last
 * translation: when the next one adds the same blobs in the same order,
 * perm (positions in that order, duplicates left out) is their name order.
 * in[] holds a reference to each blob, so a pointer compared is never one
 * freed and given again. */
typedef struct tr_sort_cache {
    struct tr_sort_cache *next;
    char *proxy;
    int type; /* sl_xds_type */
    tr_blob **in;
    size_t n_in;
    size_t *perm;
    size_t n_perm;
    /* in[] is the proxy's whole list of this type as the translation at
     * up_world (the store's) made it, for settings_ns and proxyless: while
     * those are the same, the next translation takes the list as it is
     * (no upstream visited). settings_ns NULL: not known whole. */
    uint64_t up_world;
    char *settings_ns;
    bool proxyless;
    tr_rlist *list; /* the whole list as resources, or NULL: one reference */
    uint64_t seen;  /* the last translation that used it (store's translations) */
    /* The upstreams the proxy reached then (tr_ctx.reach, one byte per
     * upstream): the whole list holds only while they are the same. */
    uint8_t *reach;
    size_t n_reach;
} tr_sort_cache;

/* Empties c (its references, arrays, settings_ns), leaving proxy, type and next. */
void tr_sort_cache_clear(tr_sort_cache *c);

typedef struct tr_entry {
    char *ns;
    char *name;
    ProtobufCMessage *msg;  /* current version */
    ProtobufCMessage *good; /* last accepted version (may equal msg), or NULL */
    uint64_t rev;
    uint64_t stamp;      /* store sequence number of msg: changes on every put */
    tr_up_cache *cache;  /* Upstreams only; NULL when none */
    tr_vh_cache *vcache; /* VirtualServices only; NULL when none */
    tr_rblob *rcache;    /* the last Accepted report about it, or NULL */
} tr_entry;

typedef struct tr_bucket {
    tr_entry *v; /* sorted by (ns, name) */
    size_t n, cap;
} tr_bucket;

#define TR_MAX_KINDS 16

struct sl_tr_store {
    tr_bucket b[TR_MAX_KINDS]; /* indexed like sl_kind_at() */
    uint64_t seq;        /* last stamp given */
    uint64_t secret_gen; /* stamp of the last change to any Secret */
    uint64_t eps_gen;    /* stamp of the last change to any EndpointSet */
    uint64_t world;      /* stamp of the last change to anything but a VirtualService */
    uint64_t up_world;   /* stamp of the last change to an Upstream, EndpointSet, Settings or Secret */
    /* The last translation found every upstream's kept build valid (or
     * kept a clean one), at up_world up_clean_world, for settings
     * namespace up_clean_ns: while those hold, every upstream is accepted
     * and kept, and the next translation need not check them one by one. */
    bool up_clean;
    uint64_t up_clean_world;
    char *up_clean_ns;
    tr_sort_cache *sorted; /* per proxy and type, of every proxy translated */
    uint64_t vs_layout;    /* stamp of the last VirtualService added or removed */
    uint64_t layout;       /* stamp of the last resource added or removed */
    tr_replist *replist;   /* the last translation's shared reports (one reference) */
    tr_gw_memo *memos;     /* per proxy and listener */
    uint64_t translations; /* translations begun: memos and kept lists not used
                            * by the last one are let go */
    /* A translation with options.defer_reports not finished yet (its
     * sl_tr_result_finish() not called), or NULL: finished before anything
     * changes the store (tr_store_settle()). Not a reference. */
    sl_tr_result *pending;
};

/* Finishes the store's pending translation, if any (sl_tr_result_finish();
 * a failure leaves that result's reports incomplete). */
static inline void tr_store_settle(sl_tr_store *s)
{
    if (s->pending)
        (void)sl_tr_result_finish(s->pending);
}

void tr_up_cache_free(tr_up_cache *c);
void tr_vh_cache_free(tr_vh_cache *c); /* the whole list */

/* Index of kind k in the store (sl_kind_at order), or -1. */
int tr_kind_index(const sl_kind *k);
/* Position of ns/name in bucket, or -1. */
long tr_bucket_find(const tr_bucket *b, const char *ns, const char *name);

/* ---- string map (arena backed) ---- */

typedef struct tr_map {
    char **keys;
    void **vals;
    size_t cap, n;
} tr_map;

void *tr_map_get(const tr_map *m, const char *key);
void tr_map_put(tr_ctx *tx, tr_map *m, const char *key, void *val);

/* ---- translation context ---- */

/* The resource tr_error()/tr_warn() report about. */
typedef struct tr_cur {
    const sl_kind *kind;
    const char *ns;
    const char *name;
    int errors;
} tr_cur;

/* Accumulated report of one resource. */
typedef struct tr_rep {
    const sl_kind *kind;
    const char *ns, *name;
    char **errors;
    size_t n_errors;
    char **warnings;
    size_t n_warnings;
    int used_good; /* rejected; the last good version was used */
} tr_rep;

/* A packed output resource in the arena. */
typedef struct tr_out {
    const char *name;
    const ProtobufCMessage *msg; /* NULL when bytes are given */
    const uint8_t *bytes;        /* already packed (cached), or NULL */
    size_t len;
    tr_blob *blob; /* bytes are blob's, shared with the result: or NULL */
    size_t seq;    /* order added, among resources of its type */
    struct tr_gw_memo *keep_in; /* a route configuration: its packed bytes go to this memo too */
} tr_out;

struct tr_filters {
    struct tr_filter_item {
        int stage;
        Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpFilter *f;
    } *v;
    size_t n, cap;
};

/* Per-entry flags of this translation, parallel to the store's buckets. */
enum { TR_SEEN = 1, TR_REJECTED = 2, TR_USED_GOOD = 4, TR_CHECKED = 8, TR_REPORTED = 16 };

/* What translating one virtual host did, recorded for tr_vh_cache. */
typedef struct tr_rec {
    tr_vh_rep *reps;
    size_t n_reps, cap_reps;
    long *rt_idx;
    uint8_t *rt_flags;
    size_t n_rt, cap_rt;
    const struct sl_tr_plugin *used[64];
    size_t n_used;
    bool stateful; /* a plugin used per-listener state: not kept */
    long *up_idx; /* upstreams referred to (tr_reach_upstream) */
    size_t n_up, cap_up;
} tr_rec;

/* Packed bytes by message (pointer), within one translation: kept virtual
 * hosts' bytes, and each cluster and endpoint packed once for all proxies. */
typedef struct tr_bytes_map {
    const void **keys;
    const uint8_t **data;
    size_t *len;
    size_t cap, n;
} tr_bytes_map;

struct tr_ctx {
    sl_arena arena;
    jmp_buf oom;
    sl_tr_store *store;
    sl_tr_options opts;
    const Sluice__V1__SettingsSpec *settings;
    tr_cur *cur;
    /* Settings gloo.invalidConfigPolicy.replaceInvalidRoutes, while a
     * route's action and options are translated: their errors are
     * reported as warnings (demote_errors) and the route is replaced
     * (demoted says one was). */
    bool demote_errors, demoted;
    tr_map reports;   /* "Kind/ns/name" -> tr_rep* */
    tr_map supported; /* "RouteOptions.retries" -> plugin, from every plugin's fields */
    uint8_t *flags[TR_MAX_KINDS];
    /* The proxy being built. */
    tr_map out_names[SL_XDS_TYPE_COUNT];
    tr_out **out[SL_XDS_TYPE_COUNT];
    size_t n_out[SL_XDS_TYPE_COUNT];
    /* The HTTP listener being built: plugins marked used. */
    const sl_tr_plugin *used[64];
    void *state[64]; /* per plugin in used[], reset with it */
    size_t n_used;
    /* Recording a virtual host for the cache (NULL when not). */
    tr_rec *rec;
    /* Packed VirtualHosts (kept or fresh) to splice into route configurations. */
    tr_bytes_map vh_bytes;
    /* The proxy being built: which upstreams its listeners and routes
     * refer to (one byte per upstream, by bucket position), so that only
     * their clusters (and the secrets those name) go to it; NULL outside
     * a proxy's gateways. reach_all: Settings allClustersToEveryProxy. */
    uint8_t *reach;
    size_t n_reach;
    bool reach_all;
    /* After the proxy's gateways: the upstreams whose clusters it gets
     * (every one with reach_all), n_reach bytes. */
    const uint8_t *reached;
    /* Blobs held until the translation ends (patched routes). */
    struct tr_blob **held;
    size_t n_held, cap_held;
};

/* ctx.c: the recorder hooks. */
void tr_rec_rt(tr_ctx *tx, long idx, uint8_t flags);
/* The proxy being built refers to upstream idx (bucket position), or to
 * any (TR_REACH_ALL: a clusterHeader route): marked in tx->reach (when
 * set) and recorded for a kept virtual host. */
#define TR_REACH_ALL (-2L)
void tr_reach_upstream(tr_ctx *tx, long idx);

/* pack.c: m packed exactly as protobuf_c_message_pack() does, with each
 * nested message sized once; malloc'ed, NULL when out of memory. */
uint8_t *tr_pack_heap(const ProtobufCMessage *m, size_t *len);

/* Adds an Envoy resource to the proxy being built; false (and nothing
 * added) when one of the same type and name is there already. */
bool tr_out_add(tr_ctx *tx, sl_xds_type t, const char *name, const ProtobufCMessage *m);

/* The same with bytes already packed (valid until the proxy is packed). */
bool tr_out_add_bytes(tr_ctx *tx, sl_xds_type t, const char *name, const uint8_t *bytes, size_t len);

/* The same with a blob named b->name, shared with the proxy's result (a
 * reference), looked up by name like tr_out_add(). */
bool tr_out_add_shared(tr_ctx *tx, sl_xds_type t, tr_blob *b);

/* The same with a blob named b->name, which the proxy's result shares (a
 * reference each). Not looked up: when the name is there already, or comes
 * again, the first one added is kept (when the proxy is packed). Only for
 * clusters and endpoints. */
void tr_out_add_blob(tr_ctx *tx, sl_xds_type t, tr_blob *b);

/* The report accumulator of a resource (created on first use). */
tr_rep *tr_rep_get(tr_ctx *tx, const sl_kind *k, const char *ns, const char *name);
void tr_rep_add(tr_ctx *tx, tr_rep *r, bool error, const char *msg);
/* The report accumulator of a resource, or NULL when nothing was reported
 * about it (and nothing is created). */
const tr_rep *tr_rep_find(tr_ctx *tx, const sl_kind *k, const char *ns, const char *name);

#endif
