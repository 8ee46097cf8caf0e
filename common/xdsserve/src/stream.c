/* stream.c - the xDS protocol state machine (see stream.h and docs/xds.md).
 *
 * Per type, the stream keeps:
 *   subs      the names the client asked for (sorted, owned)
 *   wildcard  the client wants every resource of the type
 *   force     names to send even if the client has that version (newly
 *             subscribed names, and EDS after a CDS change)
 *   have      what the client holds as far as the server knows: the
 *             resources last sent (references into the shared cache) or,
 *             for a delta reconnect, phantoms built from
 *             initial_resource_versions. A NACKed resource stays in `have`,
 *             so the same version is never pushed again (no NACK loop).
 *             When the client is in sync, `have` is the snapshot's own
 *             sorted array of the type, shared by every such stream
 *             (copied on write), not a per-stream copy.
 * A type's state is allocated on its first request: a gateway on ADS never
 * pays for SDS.
 * Invariant: every name in `have` and `force` is of interest (wildcard or
 * in subs). A response is computed by comparing `have` with the proxy's
 * current snapshot only when the transport asks for one.
 */
#include "sluice/xds_stream.h"

#include <inttypes.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sluice/bsearch.h"
#include "sluice/vec.h"
#include "sluice/wire.h"

typedef struct sharedns sharedns;

/* A sorted set of interned names. While `sh` is set, v is a shared,
 * read-only array (cap 0), copied on write (ns_own). */
typedef struct nameset {
    char **v;
    size_t n, cap;
    sharedns *sh;
} nameset;

/* A sorted set of resources. While `snap` is set, v is the snapshot's own
 * array of that type (borrowed, cap 0): a client in sync holds exactly a
 * snapshot's resources, and every stream of the proxy then shares that one
 * array instead of copying it (one reference on the snapshot instead of one
 * per resource). Any change first makes a private copy (rs_own). */
typedef struct resset {
    sl_xds_res **v;
    size_t n, cap;
    sl_xds_snapshot *snap;
} resset;

typedef struct tstate {
    int active;   /* the client requested this type */
    int wildcard; /* wants all */
    int legacy;   /* wildcard by an empty first request (stays while names stay empty) */
    int responded;
    int dirty;
    int moved;    /* SotW: a stale request changed the names */
    int shrunk;   /* SotW LDS/CDS: interest shrank, the client gets the new full set */
    nameset subs, force;
    resset have;
    char nonce[24];   /* last nonce sent for this type */
    char version[40]; /* last version sent */
    uint64_t sent_ns;
    char clean_version[17]; /* snapshot type version when last found up to date */
    /* Revision tracking (sl_xds_stream_synced): sent_rev is the commit
     * revision of the last response (0 while make-before-break removals are
     * still to follow), synced_rev the revision the client has confirmed for
     * this type: by an ACK, or by being up to date with nothing outstanding. */
    uint64_t sent_rev, synced_rev;
    int outstanding; /* a response was sent and not yet ACKed or NACKed */
    int nacked;      /* the last answer was a NACK */
} tstate;

struct sl_xds_stream {
    sl_xds_cache *cache;
    sl_xds_stream_opts o;
    char *proxy;   /* interned; NULL before the first request */
    char *node_id; /* NULL before the first request */
    int have_node;
    uint64_t seq;
    tstate *t[SL_XDS_TYPE_COUNT]; /* allocated on the type's first request (NULL: never requested) */
};

uint64_t sl_xds_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* ---- interned names ----
 * Subscribed names are interned: every gateway of a proxy subscribes to the
 * same names (100 EDS names each), so each stream holds pointers to one
 * shared, reference-counted copy instead of its own strings. The table is
 * only touched when a subscription changes, never on a plain ACK. */
#define INTERN_BUCKETS 4096

typedef struct iname {
    struct iname *next;
    size_t refs;
    uint32_t hash;
    char s[];
} iname;

static pthread_mutex_t intern_mu = PTHREAD_MUTEX_INITIALIZER;
static iname *intern_tab[INTERN_BUCKETS];

static uint32_t name_hash(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

static char *intern_get(const char *name)
{
    uint32_t h = name_hash(name);
    iname **b = &intern_tab[h % INTERN_BUCKETS], *n;
    pthread_mutex_lock(&intern_mu);
    for (n = *b; n; n = n->next)
        if (n->hash == h && strcmp(n->s, name) == 0)
            break;
    if (n) {
        n->refs++;
    } else if ((n = malloc(sizeof *n + strlen(name) + 1))) {
        n->refs = 1;
        n->hash = h;
        strcpy(n->s, name);
        n->next = *b;
        *b = n;
    }
    pthread_mutex_unlock(&intern_mu);
    return n ? n->s : NULL;
}

/* Another reference to an interned name. */
static void intern_ref(char *s)
{
    iname *n = (iname *)(void *)(s - offsetof(iname, s));
    pthread_mutex_lock(&intern_mu);
    n->refs++;
    pthread_mutex_unlock(&intern_mu);
}

static void intern_put(char *s)
{
    iname *n = (iname *)(void *)(s - offsetof(iname, s));
    pthread_mutex_lock(&intern_mu);
    if (--n->refs == 0) {
        iname **p = &intern_tab[n->hash % INTERN_BUCKETS];
        while (*p != n)
            p = &(*p)->next;
        *p = n->next;
        free(n);
    }
    pthread_mutex_unlock(&intern_mu);
}

/* ---- shared subscriptions ----
 * Every gateway of a proxy subscribes to the same EDS names: a SotW
 * subscription of SHARE_MIN names or more is interned as a whole, so those
 * streams hold one reference-counted array of name pointers instead of one
 * each. Looked up only when a subscription changes. */
#define SHARE_MIN 8
#define SHARED_BUCKETS 256

struct sharedns {
    sharedns *next;
    size_t refs;
    uint64_t hash;
    size_t n;
    char *v[]; /* owns a reference to each interned name */
};

static sharedns *shared_tab[SHARED_BUCKETS];

static uint64_t names_hash(char *const *v, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint64_t)(uintptr_t)v[i]) * 0x100000001b3ULL;
    return h;
}

/* Drops a reference to a shared array (under no lock). */
static void shared_put(sharedns *sh)
{
    int last = 0;
    pthread_mutex_lock(&intern_mu);
    if (--sh->refs == 0) {
        sharedns **p = &shared_tab[sh->hash % SHARED_BUCKETS];
        while (*p != sh)
            p = &(*p)->next;
        *p = sh->next;
        last = 1;
    }
    pthread_mutex_unlock(&intern_mu);
    if (last) {
        for (size_t i = 0; i < sh->n; i++)
            intern_put(sh->v[i]);
        free(sh);
    }
}

/* ---- sorted sets ---- */

/* A name against an element of a nameset. */
static int cmp_name(const void *key, const void *elem)
{
    return strcmp(key, *(char *const *)elem);
}

static size_t ns_lower(const nameset *s, const char *name, bool *found)
{
    return sl_bsearch_pos(found, name, s->v, s->n, sizeof *s->v, cmp_name);
}

static int ns_has(const nameset *s, const char *name)
{
    bool f;
    ns_lower(s, name, &f);
    return f;
}

static void ns_clear(nameset *s);

/* Copy on write: makes a shared set private. */
static sl_status ns_own(nameset *s)
{
    if (!s->sh)
        return SL_OK;
    char **v = malloc((s->n ? s->n : 1) * sizeof *v);
    if (!v)
        return sl_error_set(SL_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < s->n; i++) {
        intern_ref(s->v[i]);
        v[i] = s->v[i];
    }
    shared_put(s->sh);
    s->sh = NULL;
    s->v = v;
    s->cap = s->n;
    return SL_OK;
}

/* Replaces a private set of SHARE_MIN names or more by the shared array
 * with the same names (creating it when there is none). On NOMEM the set
 * stays private. */
static void ns_share(nameset *s)
{
    if (s->sh || s->n < SHARE_MIN)
        return;
    uint64_t h = names_hash(s->v, s->n);
    sharedns **b = &shared_tab[h % SHARED_BUCKETS], *sh, *fresh = NULL;
    pthread_mutex_lock(&intern_mu);
    for (sh = *b; sh; sh = sh->next)
        if (sh->hash == h && sh->n == s->n && memcmp(sh->v, s->v, s->n * sizeof *s->v) == 0)
            break;
    if (sh) {
        sh->refs++;
    } else if ((fresh = malloc(sizeof *fresh + s->n * sizeof *s->v))) {
        fresh->refs = 1;
        fresh->hash = h;
        fresh->n = s->n;
        memcpy(fresh->v, s->v, s->n * sizeof *s->v); /* takes over the names' references */
        fresh->next = *b;
        *b = fresh;
        sh = fresh;
    }
    pthread_mutex_unlock(&intern_mu);
    if (!sh)
        return;
    if (fresh)
        free(s->v);
    else
        ns_clear(s);
    s->v = sh->v;
    s->n = sh->n;
    s->cap = 0;
    s->sh = sh;
}

static sl_status ns_add(nameset *s, const char *name)
{
    bool f;
    size_t i = ns_lower(s, name, &f);
    if (f)
        return SL_OK;
    sl_status rc = ns_own(s);
    if (rc != SL_OK)
        return rc;
    if ((rc = SL_VEC_RESERVE(s->v, s->cap, s->n + 1)) != SL_OK)
        return rc;
    char *d = intern_get(name);
    if (!d)
        return sl_error_set(SL_ERR_NOMEM, "out of memory");
    memmove(s->v + i + 1, s->v + i, (s->n - i) * sizeof *s->v);
    s->v[i] = d;
    s->n++;
    return SL_OK;
}

static void ns_del(nameset *s, const char *name)
{
    bool f;
    size_t i = ns_lower(s, name, &f);
    if (!f || ns_own(s) != SL_OK) /* on NOMEM the name stays: the stream keeps a stale interest */
        return;
    intern_put(s->v[i]);
    memmove(s->v + i, s->v + i + 1, (s->n - i - 1) * sizeof *s->v);
    s->n--;
}

static void ns_clear(nameset *s)
{
    if (s->sh) {
        shared_put(s->sh);
    } else {
        for (size_t i = 0; i < s->n; i++)
            intern_put(s->v[i]);
        free(s->v);
    }
    memset(s, 0, sizeof *s);
}

/* A name against an element of a resset. */
static int cmp_key_res(const void *key, const void *elem)
{
    return strcmp(key, (*(sl_xds_res *const *)elem)->name);
}

static size_t rs_lower(const resset *s, const char *name, bool *found)
{
    return sl_bsearch_pos(found, name, s->v, s->n, sizeof *s->v, cmp_key_res);
}

static sl_xds_res *rs_find(const resset *s, const char *name)
{
    bool f;
    size_t i = rs_lower(s, name, &f);
    return f ? s->v[i] : NULL;
}

/* Copy on write: makes a shared set private. */
static sl_status rs_own(resset *s)
{
    if (!s->snap)
        return SL_OK;
    sl_xds_res **v = malloc((s->n ? s->n : 1) * sizeof *v);
    if (!v)
        return sl_error_set(SL_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < s->n; i++)
        v[i] = sl_xds_res_ref(s->v[i]);
    sl_xds_snapshot_unref(s->snap);
    s->snap = NULL;
    s->v = v;
    s->cap = s->n;
    return SL_OK;
}

/* Inserts or replaces; takes a new reference to r. */
static sl_status rs_put(resset *s, sl_xds_res *r)
{
    bool f;
    sl_status rc = rs_own(s);
    if (rc != SL_OK)
        return rc;
    size_t i = rs_lower(s, r->name, &f);
    if (f) {
        sl_xds_res *old = s->v[i];
        s->v[i] = sl_xds_res_ref(r);
        sl_xds_res_unref(old);
        return SL_OK;
    }
    if ((rc = SL_VEC_RESERVE(s->v, s->cap, s->n + 1)) != SL_OK)
        return rc;
    memmove(s->v + i + 1, s->v + i, (s->n - i) * sizeof *s->v);
    s->v[i] = sl_xds_res_ref(r);
    s->n++;
    return SL_OK;
}

static void rs_del(resset *s, const char *name)
{
    bool f;
    size_t i = rs_lower(s, name, &f);
    if (!f || rs_own(s) != SL_OK) /* on NOMEM the client keeps an extra name: harmless */
        return;
    sl_xds_res_unref(s->v[i]);
    memmove(s->v + i, s->v + i + 1, (s->n - i - 1) * sizeof *s->v);
    s->n--;
}

/* Drops unused room (a stream holds its sets for its whole life). */
static void rs_fit(resset *s)
{
    if (!s->snap && s->n && s->cap > s->n + s->n / 8)
        SL_VEC_FIT(s->v, s->cap, s->n);
}

static void rs_clear(resset *s)
{
    if (s->snap) {
        sl_xds_snapshot_unref(s->snap);
    } else {
        for (size_t i = 0; i < s->n; i++)
            sl_xds_res_unref(s->v[i]);
        free(s->v);
    }
    memset(s, 0, sizeof *s);
}

/* Makes the set hold exactly v[0..n) (sorted, of snap's type t). When that
 * is the snapshot's whole set of the type, shares its array. */
static sl_status rs_assign(resset *s, sl_xds_snapshot *snap, sl_xds_type t, sl_xds_res *const *v, size_t n)
{
    const sl_xds_typeset *ts = &snap->types[t];
    resset next = {0};
    if (n && n == ts->n) {
        next.snap = sl_xds_snapshot_ref(snap);
        next.v = ts->v;
        next.n = ts->n;
    } else if (n) {
        if (!(next.v = malloc(n * sizeof *next.v)))
            return sl_error_set(SL_ERR_NOMEM, "out of memory");
        for (size_t i = 0; i < n; i++)
            next.v[i] = sl_xds_res_ref(v[i]);
        next.n = next.cap = n;
    }
    rs_clear(s);
    *s = next;
    return SL_OK;
}

/* A type found up to date: when the client's set is a shared array of an
 * older snapshot with the very same resources, move it to snap's (so old
 * snapshots are not kept alive by idle streams). */
static void rs_follow(resset *s, sl_xds_snapshot *snap, sl_xds_type t)
{
    const sl_xds_typeset *ts = &snap->types[t];
    if (s->snap && s->snap != snap && s->n == ts->n && (!s->n || memcmp(s->v, ts->v, s->n * sizeof *s->v) == 0)) {
        sl_xds_snapshot_unref(s->snap);
        s->snap = sl_xds_snapshot_ref(snap);
        s->v = ts->v;
    }
}

static int interested(const tstate *st, const char *name)
{
    return st->wildcard || ns_has(&st->subs, name);
}

/* Keeps `have` and `force` within the names of interest. */
static sl_status prune(tstate *st)
{
    size_t j = 0;
    for (size_t i = 0; i < st->have.n; i++) {
        if (!interested(st, st->have.v[i]->name)) {
            sl_status rc = rs_own(&st->have); /* a shared array is never written */
            if (rc != SL_OK)
                return rc;
            break;
        }
    }
    if (!st->have.snap) {
        for (size_t i = 0; i < st->have.n; i++) {
            if (interested(st, st->have.v[i]->name))
                st->have.v[j++] = st->have.v[i];
            else
                sl_xds_res_unref(st->have.v[i]);
        }
        if (j < st->have.n)
            st->shrunk = 1;
        st->have.n = j;
    }
    j = 0;
    for (size_t i = 0; i < st->force.n; i++) {
        if (interested(st, st->force.v[i]))
            st->force.v[j++] = st->force.v[i];
        else
            intern_put(st->force.v[i]);
    }
    st->force.n = j;
    return SL_OK;
}

/* ---- lifecycle ---- */

sl_status sl_xds_stream_new(sl_xds_stream **out, sl_xds_cache *cache, const sl_xds_stream_opts *opts)
{
    sl_xds_stream *s = calloc(1, sizeof *s);
    if (!s)
        return sl_error_set(SL_ERR_NOMEM, "out of memory");
    s->cache = cache;
    s->o = *opts;
    if (!s->o.default_proxy)
        s->o.default_proxy = SL_XDS_DEFAULT_PROXY;
    *out = s;
    return SL_OK;
}

void sl_xds_stream_free(sl_xds_stream *s)
{
    if (!s)
        return;
    for (int t = 0; t < SL_XDS_TYPE_COUNT; t++) {
        if (!s->t[t])
            continue;
        ns_clear(&s->t[t]->subs);
        ns_clear(&s->t[t]->force);
        rs_clear(&s->t[t]->have);
        free(s->t[t]);
    }
    if (s->proxy)
        intern_put(s->proxy);
    free(s->node_id);
    free(s);
}

const char *sl_xds_stream_proxy(const sl_xds_stream *s) { return s->proxy ? s->proxy : ""; }
const char *sl_xds_stream_node_id(const sl_xds_stream *s) { return s->node_id ? s->node_id : ""; }

unsigned sl_xds_stream_types(const sl_xds_stream *s)
{
    unsigned m = 0;
    for (int t = 0; t < SL_XDS_TYPE_COUNT; t++)
        if (s->t[t] && s->t[t]->active)
            m |= 1u << t;
    return m;
}

const char *sl_xds_node_proxy(const Envoy__Config__Core__V3__Node *node, const char *def)
{
    if (node && node->metadata)
        for (size_t i = 0; i < node->metadata->n_fields; i++) {
            const Google__Protobuf__Struct__FieldsEntry *e = node->metadata->fields[i];
            if (e && e->key && strcmp(e->key, "role") == 0 && e->value &&
                e->value->kind_case == GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE && e->value->string_value &&
                e->value->string_value[0])
                return e->value->string_value;
        }
    return def;
}

static sl_status set_node(sl_xds_stream *s, const Envoy__Config__Core__V3__Node *node, sl_xds_req_info *info)
{
    if (s->have_node)
        return SL_OK;
    const char *proxy = sl_xds_node_proxy(node, s->o.default_proxy);
    if (strlen(proxy) >= 256)
        return sl_error_set(SL_ERR_INVALID, "node.metadata.role is too long (%zu bytes)", strlen(proxy));
    const char *id = node && node->id ? node->id : "";
    if (!(s->proxy = intern_get(proxy)) || !(s->node_id = strndup(id, 255)))
        return sl_error_set(SL_ERR_NOMEM, "out of memory");
    s->have_node = 1;
    info->first_on_stream = 1;
    return SL_OK;
}

static sl_status resolve_type(sl_xds_stream *s, const char *url, sl_xds_type *t)
{
    if (!url || !url[0]) {
        if (s->o.ads)
            return sl_error_set(SL_ERR_INVALID, "type_url is required on an aggregated (ADS) stream");
        *t = s->o.type;
        return SL_OK;
    }
    if (sl_xds_type_from_url(t, url) != SL_OK)
        return sl_error_set(SL_ERR_UNSUPPORTED, "unsupported type_url \"%.200s\"", url);
    if (!s->o.ads && *t != s->o.type)
        return sl_error_set(SL_ERR_INVALID, "type_url \"%.200s\" on a %s stream", url,
                            sl_xds_type_url(s->o.type));
    return SL_OK;
}

/* ---- requests ---- */

/* The client answered the last response of a type. */
static void answered(tstate *st, int nack)
{
    st->outstanding = 0;
    st->nacked = nack;
    if (!nack && st->sent_rev)
        st->synced_rev = st->sent_rev;
}

/* A request answering the last response (SotW or delta, same rules): a
 * NACK when error_detail is set, an ACK otherwise (XDS-NOTES rule 5). */
static void answer(tstate *st, sl_xds_req_info *info, const Google__Rpc__Status *error_detail)
{
    info->sent_ns = st->sent_ns;
    if (error_detail) {
        info->kind = SL_XDS_REQ_NACK;
        info->version = st->version;
        info->error = error_detail->message ? error_detail->message : "";
        info->error_code = error_detail->code;
    } else {
        info->kind = SL_XDS_REQ_ACK;
    }
    answered(st, info->kind == SL_XDS_REQ_NACK);
}

/* The type was found up to date with snap: unless a response is still
 * unanswered or the client rejected what it has, it is on snap's revision. */
static void settled(tstate *st, const sl_xds_snapshot *snap)
{
    if (!st->outstanding && !st->nacked)
        st->synced_rev = snap->revision;
}

uint64_t sl_xds_stream_synced(const sl_xds_stream *s, int *nacked)
{
    uint64_t rev = 0;
    int any = 0;
    *nacked = 0;
    for (int t = 0; t < SL_XDS_TYPE_COUNT; t++) {
        const tstate *st = s->t[t];
        if (!st || !st->active)
            continue;
        *nacked |= st->nacked;
        if (!any || st->synced_rev < rev)
            rev = st->synced_rev;
        any = 1;
    }
    return rev;
}

/* True when the request's resource_names leave the subscription as it is
 * (the common case: an ACK repeating the names). No allocation: every
 * name is looked up in the sorted `subs`, a bitmap rules out duplicates. */
static int sotw_same(const tstate *st, char **names, size_t n)
{
    uint64_t stackbits[8], *seen = stackbits;
    size_t m = 0, words = (st->subs.n + 63) / 64;
    int star = 0, same = 0;
    if (!st->active)
        return 0;
    if (words > 8 && !(seen = calloc(words, sizeof *seen)))
        return 0;
    if (seen == stackbits)
        memset(stackbits, 0, sizeof stackbits);
    for (size_t i = 0; i < n; i++) {
        if (!names[i] || !names[i][0])
            continue;
        if (names[i][0] == '*' && !names[i][1]) {
            star = 1;
            continue;
        }
        bool f;
        size_t k = ns_lower(&st->subs, names[i], &f);
        if (!f || (seen[k / 64] >> (k % 64) & 1))
            goto out; /* a new name, or a duplicate (let the slow path judge) */
        seen[k / 64] |= 1ull << (k % 64);
        m++;
    }
    if (m != st->subs.n)
        goto out;
    int legacy = n > 0 ? 0 : st->legacy;
    int wildcard = star || (legacy && n == 0);
    same = legacy == st->legacy && wildcard == st->wildcard;
out:
    if (seen != stackbits)
        free(seen);
    return same;
}

/* SotW: the request's resource_names replace the subscription. *changed
 * tells whether the subscription moved. */
static sl_status sotw_names(tstate *st, sl_xds_type t, char **names, size_t n, int *changed)
{
    sl_status rc = SL_OK;
    nameset next = {0};
    int star = 0, first = !st->active;

    *changed = !sotw_same(st, names, n);
    if (!*changed)
        return SL_OK;

    for (size_t i = 0; i < n; i++) {
        if (!names[i] || !names[i][0])
            continue;
        if (strcmp(names[i], "*") == 0)
            star = 1;
        else if ((rc = ns_add(&next, names[i])) != SL_OK)
            goto out;
    }
    if (first)
        st->legacy = n == 0 && sl_xds_type_full_state(t);
    else if (n > 0)
        st->legacy = 0;
    st->active = 1;
    /* Newly subscribed names are sent even if the client had them. */
    for (size_t i = 0; i < next.n; i++)
        if (!ns_has(&st->subs, next.v[i]) && (rc = ns_add(&st->force, next.v[i])) != SL_OK)
            goto out;
    if (next.n) /* exact size: held for the stream's life */
        SL_VEC_FIT(next.v, next.cap, next.n);
    ns_share(&next);
    ns_clear(&st->subs);
    st->subs = next;
    memset(&next, 0, sizeof next);
    st->wildcard = star || (st->legacy && n == 0);
    rc = prune(st);
out:
    ns_clear(&next);
    return rc;
}

sl_status sl_xds_stream_on_sotw(sl_xds_stream *s, const Envoy__Service__Discovery__V3__DiscoveryRequest *req,
                                sl_xds_req_info *info)
{
    sl_status rc;
    sl_xds_type t;
    int changed;

    memset(info, 0, sizeof *info);
    if (s->o.delta)
        return sl_error_set(SL_ERR_INVALID, "state-of-the-world request on an incremental stream");
    if ((rc = resolve_type(s, req->type_url, &t)) != SL_OK)
        return rc;
    if ((rc = set_node(s, req->node, info)) != SL_OK)
        return rc;
    if (!s->t[t] && !(s->t[t] = calloc(1, sizeof *s->t[t])))
        return sl_error_set(SL_ERR_NOMEM, "out of memory");
    tstate *st = s->t[t];
    const char *nonce = req->response_nonce ? req->response_nonce : "";
    info->type = t;
    info->nonce = nonce;
    if (nonce[0] && st->active && strcmp(nonce, st->nonce) != 0) {
        /* Stale: no response, but the subscription change still counts. */
        info->kind = SL_XDS_REQ_STALE;
        rc = sotw_names(st, t, req->resource_names, req->n_resource_names, &changed);
        st->moved |= changed; /* looked at on the next current request */
        return rc;
    }
    if (nonce[0] && st->active) {
        answer(st, info, req->error_detail);
    } else {
        info->kind = SL_XDS_REQ_INITIAL;
    }
    rc = sotw_names(st, t, req->resource_names, req->n_resource_names, &changed);
    /* An ACK or NACK that keeps the names needs no re-evaluation: a newer
     * snapshot is noticed by its version (clean_version) anyway. */
    if (changed || st->moved || info->kind == SL_XDS_REQ_INITIAL)
        st->dirty = 1;
    st->moved = 0;
    return rc;
}

sl_status sl_xds_stream_on_delta(sl_xds_stream *s,
                                 const Envoy__Service__Discovery__V3__DeltaDiscoveryRequest *req,
                                 sl_xds_req_info *info)
{
    sl_status rc;
    sl_xds_type t;

    memset(info, 0, sizeof *info);
    if (!s->o.delta)
        return sl_error_set(SL_ERR_INVALID, "incremental request on a state-of-the-world stream");
    if ((rc = resolve_type(s, req->type_url, &t)) != SL_OK)
        return rc;
    if ((rc = set_node(s, req->node, info)) != SL_OK)
        return rc;
    if (!s->t[t] && !(s->t[t] = calloc(1, sizeof *s->t[t])))
        return sl_error_set(SL_ERR_NOMEM, "out of memory");
    tstate *st = s->t[t];
    int first = !st->active;
    const char *nonce = req->response_nonce ? req->response_nonce : "";
    info->type = t;
    info->nonce = nonce;
    st->active = 1;

    if (first) {
        /* Reconnect: what the client already has. */
        for (size_t i = 0; i < req->n_initial_resource_versions; i++) {
            const Envoy__Service__Discovery__V3__DeltaDiscoveryRequest__InitialResourceVersionsEntry *e =
                req->initial_resource_versions[i];
            sl_xds_res *ph;
            if (!e || !e->key || !e->key[0] || strcmp(e->key, "*") == 0)
                continue;
            if ((rc = sl_xds_res_new(&ph, t, e->key, e->value ? e->value : "", NULL, 0)) != SL_OK)
                return rc;
            rc = rs_put(&st->have, ph);
            sl_xds_res_unref(ph);
            if (rc != SL_OK)
                return rc;
        }
        if (req->n_resource_names_subscribe == 0 && sl_xds_type_full_state(t))
            st->wildcard = 1; /* legacy wildcard */
    }
    for (size_t i = 0; i < req->n_resource_names_subscribe; i++) {
        const char *n = req->resource_names_subscribe[i];
        if (!n || !n[0])
            continue;
        if (strcmp(n, "*") == 0) {
            st->wildcard = 1;
            continue;
        }
        if ((rc = ns_add(&st->subs, n)) != SL_OK)
            return rc;
        /* Every subscribed name is sent, even if the client has it, except
         * what the client declared it has when it (re)connected. */
        if (!(first && rs_find(&st->have, n)) && (rc = ns_add(&st->force, n)) != SL_OK)
            return rc;
    }
    for (size_t i = 0; i < req->n_resource_names_unsubscribe; i++) {
        const char *n = req->resource_names_unsubscribe[i];
        if (!n)
            continue;
        if (strcmp(n, "*") == 0)
            st->wildcard = 0;
        else {
            ns_del(&st->subs, n);
            ns_del(&st->force, n);
        }
    }
    int moved = first || req->n_resource_names_subscribe || req->n_resource_names_unsubscribe;
    if (moved && (rc = prune(st)) != SL_OK)
        return rc;
    if (nonce[0] && !first) {
        answer(st, info, req->error_detail);
    } else {
        info->kind = SL_XDS_REQ_INITIAL;
    }
    /* A plain ACK/NACK needs no re-evaluation (see on_sotw). */
    if (moved || info->kind == SL_XDS_REQ_INITIAL)
        st->dirty = 1;
    return SL_OK;
}

/* ---- responses ---- */

typedef struct plan {
    sl_xds_res **desired; /* what the client should have (of interest, existing) */
    size_t ndesired;
    sl_xds_res **up; /* to send: new, changed or forced */
    size_t nup;
    const char **rm; /* client has (or asked for) it, the snapshot does not */
    size_t nrm;
    int send;    /* has something to add or change (or an initial response) */
    int removes; /* has only removals to send */
} plan;

static void plan_free(plan *p)
{
    free(p->desired);
    free(p->up);
    free(p->rm);
    memset(p, 0, sizeof *p);
}

static sl_status plan_type(sl_xds_stream *s, const sl_xds_snapshot *snap, sl_xds_type t, plan *p)
{
    tstate *st = s->t[t];
    const sl_xds_typeset *ts = &snap->types[t];
    size_t cap = (st->wildcard ? ts->n : st->subs.n) + 1;

    memset(p, 0, sizeof *p);
    p->desired = malloc(cap * sizeof *p->desired);
    p->up = malloc(cap * sizeof *p->up);
    p->rm = malloc((st->have.n + st->force.n + 1) * sizeof *p->rm);
    if (!p->desired || !p->up || !p->rm) {
        plan_free(p);
        return sl_error_set(SL_ERR_NOMEM, "out of memory");
    }
    /* subs, the snapshot's resources and `have` are all sorted by name
     * (strcmp): one merge walk each, and a resource the client holds by the
     * very pointer the snapshot has is unchanged without a comparison. */
    if (st->wildcard) {
        for (size_t i = 0; i < ts->n; i++)
            p->desired[p->ndesired++] = ts->v[i];
    } else {
        for (size_t i = 0, j = 0; i < st->subs.n && j < ts->n;) {
            int c = strcmp(st->subs.v[i], ts->v[j]->name);
            if (c == 0)
                p->desired[p->ndesired++] = ts->v[j++];
            if (c <= 0)
                i++;
            else
                j++;
        }
    }
    for (size_t i = 0, j = 0; i < p->ndesired; i++) {
        sl_xds_res *r = p->desired[i], *h = NULL;
        if (j < st->have.n && st->have.v[j] == r) {
            h = r;
        } else {
            int c = -1;
            while (j < st->have.n && (c = strcmp(st->have.v[j]->name, r->name)) < 0)
                j++;
            if (j < st->have.n && c == 0)
                h = st->have.v[j];
        }
        if (!h || (h != r && strcmp(h->version, r->version) != 0) || (st->force.n && ns_has(&st->force, r->name)))
            p->up[p->nup++] = r;
        if (h)
            j++;
    }
    for (size_t i = 0, j = 0; i < st->have.n; i++) {
        const sl_xds_res *h = st->have.v[i];
        int c = -1;
        while (j < ts->n && ts->v[j] != h && (c = strcmp(ts->v[j]->name, h->name)) < 0)
            j++;
        if (j < ts->n && (ts->v[j] == h || c == 0))
            j++;
        else
            p->rm[p->nrm++] = h->name;
    }
    if (s->o.delta) {
        /* A subscribed name that does not exist is reported as removed. */
        for (size_t i = 0; i < st->force.n; i++)
            if (!sl_xds_snapshot_find(snap, t, st->force.v[i]) && !rs_find(&st->have, st->force.v[i]))
                p->rm[p->nrm++] = st->force.v[i];
    }
    int initial = !st->responded && st->wildcard;
    int shrunk = st->shrunk && !s->o.delta && sl_xds_type_full_state(t);
    p->send = p->nup > 0 || initial || shrunk;
    if (!s->o.delta && !sl_xds_type_full_state(t))
        p->nrm = 0; /* SotW RDS/EDS/SDS cannot express a removal */
    p->removes = p->nrm > 0;
    return SL_OK;
}

static sl_status encode_head(sl_xds_response *r, const char *type_url)
{
    size_t ul = strlen(type_url), vl = strlen(r->version), nl = strlen(r->nonce);
    size_t len = sl_wire_ld_len(vl) + sl_wire_ld_len(ul) + sl_wire_ld_len(nl);
    for (size_t i = 0; i < r->nremoved; i++)
        len += sl_wire_ld_len(strlen(r->removed[i]));
    r->head = malloc(len ? len : 1);
    if (!r->head)
        return sl_error_set(SL_ERR_NOMEM, "out of memory");
    uint8_t *w = r->head;
    w = sl_wire_ld(w, 1, r->version, vl); /* version_info / system_version_info */
    w = sl_wire_ld(w, 4, type_url, ul);
    w = sl_wire_ld(w, 5, r->nonce, nl);
    for (size_t i = 0; i < r->nremoved; i++)
        w = sl_wire_ld(w, 6, r->removed[i], strlen(r->removed[i]));
    r->head_len = (size_t)(w - r->head);
    return SL_OK;
}

void sl_xds_response_free(sl_xds_response *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->nres; i++)
        sl_xds_res_unref(r->res[i]);
    free(r->res);
    for (size_t i = 0; i < r->nremoved; i++)
        free(r->removed[i]);
    free(r->removed);
    free(r->head);
    free(r);
}

size_t sl_xds_response_size(const sl_xds_response *r)
{
    size_t n = r->head_len, l;
    for (size_t i = 0; i < r->nres; i++) {
        sl_xds_response_elem(r, i, &l);
        n += l;
    }
    return n;
}

sl_status sl_xds_response_flatten(const sl_xds_response *r, uint8_t **out, size_t *len)
{
    size_t n = sl_xds_response_size(r), l;
    uint8_t *b = malloc(n ? n : 1), *w = b;
    if (!b)
        return sl_error_set(SL_ERR_NOMEM, "out of memory");
    memcpy(w, r->head, r->head_len);
    w += r->head_len;
    for (size_t i = 0; i < r->nres; i++) {
        const uint8_t *e = sl_xds_response_elem(r, i, &l);
        memcpy(w, e, l);
        w += l;
    }
    *out = b;
    *len = n;
    return SL_OK;
}

static int cmp_res_name(const void *a, const void *b)
{
    return strcmp((*(sl_xds_res *const *)a)->name, (*(sl_xds_res *const *)b)->name);
}

/* Builds the response of type t from its plan and records it as sent.
 * With hold, removals are left for later (make-before-break). */
static sl_status build(sl_xds_stream *s, sl_xds_snapshot *snap, sl_xds_type t, const plan *p, int hold,
                       sl_xds_response **out)
{
    tstate *st = s->t[t];
    int full = !s->o.delta && sl_xds_type_full_state(t);
    sl_xds_response *r = calloc(1, sizeof *r);
    sl_status rc = SL_ERR_NOMEM;
    if (!r)
        goto nomem;
    r->type = t;
    r->delta = s->o.delta;
    snprintf(r->nonce, sizeof r->nonce, "%" PRIu64, ++s->seq);
    if (s->o.delta)
        snprintf(r->version, sizeof r->version, "%" PRIu64, snap->revision);
    else
        snprintf(r->version, sizeof r->version, "%s%s", snap->types[t].version, hold && p->nrm ? "-mbb" : "");

    if (full) {
        /* The full set; while removals are held back, keep the stale ones. */
        size_t n = p->ndesired + (hold ? p->nrm : 0);
        r->res = malloc((n + 1) * sizeof *r->res);
        if (!r->res)
            goto nomem;
        for (size_t i = 0; i < p->ndesired; i++)
            r->res[r->nres++] = sl_xds_res_ref(p->desired[i]);
        if (hold)
            for (size_t i = 0; i < p->nrm; i++)
                r->res[r->nres++] = sl_xds_res_ref(rs_find(&st->have, p->rm[i]));
        qsort(r->res, r->nres, sizeof *r->res, cmp_res_name);
    } else {
        r->res = malloc((p->nup + 1) * sizeof *r->res);
        if (!r->res)
            goto nomem;
        for (size_t i = 0; i < p->nup; i++)
            r->res[r->nres++] = sl_xds_res_ref(p->up[i]);
        if (s->o.delta && !hold && p->nrm) {
            r->removed = calloc(p->nrm, sizeof *r->removed);
            if (!r->removed)
                goto nomem;
            for (size_t i = 0; i < p->nrm; i++) {
                if (!(r->removed[i] = strdup(p->rm[i])))
                    goto nomem;
                r->nremoved++;
            }
        }
    }
    if ((rc = encode_head(r, sl_xds_type_url(t))) != SL_OK)
        goto err;

    /* After a cluster changes, Envoy warms it until its endpoints arrive:
     * send its ClusterLoadAssignment again even if unchanged. */
    if (t == SL_XDS_CLUSTER && s->t[SL_XDS_ENDPOINT] && s->t[SL_XDS_ENDPOINT]->active) {
        tstate *eds = s->t[SL_XDS_ENDPOINT];
        for (size_t i = 0; i < p->nup; i++) {
            const char *en = p->up[i]->eds_name;
            if (en && interested(eds, en) && sl_xds_snapshot_find(snap, SL_XDS_ENDPOINT, en)) {
                if ((rc = ns_add(&eds->force, en)) != SL_OK)
                    goto err;
                eds->dirty = 1;
            }
        }
    }
    /* Record what the client now has. Unless removals are held back, that
     * is exactly the plan's desired set: every desired resource the client
     * lacked or had at another version is in this response, the rest it has
     * at the same version, and whatever else it had is removed (or, SotW
     * RDS/EDS/SDS, forgotten). Usually that is the snapshot's whole set. */
    if (!(hold && p->nrm)) {
        if ((rc = rs_assign(&st->have, snap, t, p->desired, p->ndesired)) != SL_OK)
            goto err;
    } else if (full) {
        resset next = {0};
        for (size_t i = 0; i < r->nres; i++)
            if ((rc = rs_put(&next, r->res[i])) != SL_OK) {
                rs_clear(&next);
                goto err;
            }
        rs_clear(&st->have);
        st->have = next;
        rs_fit(&st->have);
    } else {
        for (size_t i = 0; i < r->nres; i++)
            if ((rc = rs_put(&st->have, r->res[i])) != SL_OK)
                goto err;
        rs_fit(&st->have);
        if (!s->o.delta || !hold)
            for (size_t i = 0; i < p->nrm; i++)
                rs_del(&st->have, p->rm[i]);
        if (!s->o.delta) { /* forget deleted RDS/EDS/SDS resources */
            for (size_t i = 0; i < st->have.n;) {
                if (!sl_xds_snapshot_find(snap, t, st->have.v[i]->name))
                    rs_del(&st->have, st->have.v[i]->name);
                else
                    i++;
            }
        }
    }
    for (size_t i = 0; i < r->nres; i++)
        ns_del(&st->force, r->res[i]->name);
    for (size_t i = 0; i < r->nremoved; i++)
        ns_del(&st->force, r->removed[i]);
    if (!st->force.n)
        ns_clear(&st->force); /* usually empty: keep no room for it per stream */
    st->responded = 1;
    st->shrunk = 0;
    if (hold && p->nrm) {
        st->dirty = 1; /* the held removals are still to be sent */
    } else {
        st->dirty = 0;
        memcpy(st->clean_version, snap->types[t].version, sizeof st->clean_version);
    }
    snprintf(st->nonce, sizeof st->nonce, "%s", r->nonce);
    snprintf(st->version, sizeof st->version, "%s", r->version);
    st->sent_ns = sl_xds_now_ns();
    st->sent_rev = hold && p->nrm ? 0 : snap->revision;
    st->outstanding = 1;
    *out = r;
    return SL_OK;
nomem:
    rc = sl_error_set(SL_ERR_NOMEM, "out of memory");
err:
    sl_xds_response_free(r);
    return rc;
}

sl_status sl_xds_stream_next(sl_xds_stream *s, sl_xds_response **out)
{
    sl_status rc = SL_OK;
    plan p[SL_XDS_TYPE_COUNT];
    int planned[SL_XDS_TYPE_COUNT] = {0};
    sl_xds_snapshot *snap;

    *out = NULL;
    memset(p, 0, sizeof p);
    if (!s->have_node || !(snap = sl_xds_cache_get(s->cache, s->proxy)))
        return SL_OK; /* nothing committed for this proxy yet: wait */
    for (int t = 0; t < SL_XDS_TYPE_COUNT; t++) {
        tstate *st = s->t[t];
        if (!st || !st->active)
            continue;
        if (!st->dirty && strcmp(st->clean_version, snap->types[t].version) == 0) {
            rs_follow(&st->have, snap, (sl_xds_type)t);
            settled(st, snap);
            continue;
        }
        if ((rc = plan_type(s, snap, (sl_xds_type)t, &p[t])) != SL_OK)
            goto out;
        planned[t] = 1;
        if (!p[t].send && !p[t].removes) {
            /* Up to date: the client has every desired resource at its
             * version; with nothing else, share the snapshot's array. */
            if (!st->have.snap && p[t].ndesired == snap->types[t].n && st->have.n == p[t].ndesired &&
                (rc = rs_assign(&st->have, snap, (sl_xds_type)t, p[t].desired, p[t].ndesired)) != SL_OK)
                goto out;
            st->dirty = 0;
            memcpy(st->clean_version, snap->types[t].version, sizeof st->clean_version);
            settled(st, snap);
        }
    }
    /* Make-before-break: additions and changes in type order; removals of
     * secrets, clusters and endpoints wait until later types are sent. */
    for (int t = 0; t < SL_XDS_TYPE_COUNT; t++) {
        if (!planned[t] || !p[t].send)
            continue;
        int hold = 0;
        if (t == SL_XDS_SECRET || t == SL_XDS_CLUSTER || t == SL_XDS_ENDPOINT)
            for (int u = t + 1; u < SL_XDS_TYPE_COUNT; u++)
                hold |= planned[u] && p[u].send;
        rc = build(s, snap, (sl_xds_type)t, &p[t], hold, out);
        goto out;
    }
    for (int t = 0; t < SL_XDS_TYPE_COUNT; t++)
        if (planned[t] && p[t].removes) {
            rc = build(s, snap, (sl_xds_type)t, &p[t], 0, out);
            goto out;
        }
out:
    for (int t = 0; t < SL_XDS_TYPE_COUNT; t++)
        plan_free(&p[t]);
    sl_xds_snapshot_unref(snap);
    return rc;
}
