/* service.c - see service.h. */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "service.h"
#include "sluice/envelope.h"
#include "sluice/kinds.h"
#include "sluice/log.h"
#include "sluice/resource.h"
#include "sluice/v1/events.pb-c.h"
#include "sluice/v1/xds.pb-c.h"
#include "sluice/translate.h"
#include "sluice/xds.h"

#define COMP "translator"

/* ---- what we wrote to the xds bucket: key -> bytes, revision ---- */

typedef struct written {
    char *key;
    uint8_t *data;
    size_t len;
    uint64_t rev;
    int live; /* reports: published this time; xds: named, while delete_stale() looks */
    uint64_t fp;    /* manifest chunks: fingerprint of the entries packed (0: unknown) */
    uint64_t first; /* manifest chunks: hash of the first entry (the id) */
    int commit;  /* a <proxy>.commit key: never stale */
    struct written *next;
} written;

typedef struct wmap {
    written **b;
    size_t cap, n;
} wmap;

static size_t hstr(const char *s)
{
    size_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static written *wmap_get(wmap *m, const char *key)
{
    if (!m->cap)
        return NULL;
    for (written *w = m->b[hstr(key) % m->cap]; w; w = w->next)
        if (strcmp(w->key, key) == 0)
            return w;
    return NULL;
}

static written *wmap_put(wmap *m, const char *key)
{
    written *w = wmap_get(m, key);
    if (w)
        return w;
    if (m->n + 1 > m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 1024;
        written **b = calloc(cap, sizeof *b);
        if (!b)
            return NULL;
        for (size_t i = 0; i < m->cap; i++)
            for (written *x = m->b[i], *nx; x; x = nx) {
                nx = x->next;
                x->next = b[hstr(x->key) % cap];
                b[hstr(x->key) % cap] = x;
            }
        free(m->b);
        m->b = b;
        m->cap = cap;
    }
    if (!(w = calloc(1, sizeof *w)) || !(w->key = strdup(key))) {
        free(w);
        return NULL;
    }
    w->next = m->b[hstr(key) % m->cap];
    m->b[hstr(key) % m->cap] = w;
    m->n++;
    return w;
}

static void wmap_del(wmap *m, const char *key)
{
    written **pp;
    if (!m->cap)
        return;
    for (pp = &m->b[hstr(key) % m->cap]; *pp; pp = &(*pp)->next)
        if (strcmp((*pp)->key, key) == 0) {
            written *w = *pp;
            *pp = w->next;
            free(w->key);
            free(w->data);
            free(w);
            m->n--;
            return;
        }
}

static void wmap_free(wmap *m)
{
    for (size_t i = 0; i < m->cap; i++)
        for (written *w = m->b[i], *nx; w; w = nx) {
            nx = w->next;
            free(w->key);
            free(w->data);
            free(w);
        }
    free(m->b);
    memset(m, 0, sizeof *m);
}

/* What write_proxy wrote for a proxy, in the order it wrote it, so the next
 * write finds each resource's key without building it: per type the
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

static void wc_list_clear(wc_list *l)
{
    for (size_t i = 0; l && i < l->n; i++) {
        free(l->v[i].name);
        free(l->v[i].whole);
        if (l->v[i].parts) {
            wc_list_clear(l->v[i].parts);
            free(l->v[i].parts);
        }
    }
    if (l) {
        free(l->v);
        l->v = NULL;
        l->n = 0;
    }
}

/* A resource's identity for the write cache (translator.h): its bytes
 * pointer, or, for a route given in parts only, its parts. */
static inline const void *res_id(const sl_tr_resource *r)
{
    return r->data ? (const void *)r->data : (const void *)r->parts;
}

/* What write_proxy builds: the manifest entries of one type, and the chunk
 * references of the commit. Reused between calls (no per-call malloc). */
typedef struct mf_entry {
    const char *name; /* borrowed from the result; NULL for a part: names + name_off */
    size_t name_off;
    uint64_t rev, hash;
    uint32_t parts;
} mf_entry;

typedef struct write_buf {
    mf_entry *e;
    size_t n, cap;
    char *names; /* the parts' names, NUL separated */
    size_t names_len, names_cap;
    Sluice__V1__XdsChunkRef *refs;
    Sluice__V1__XdsChunkRef **refp;
    char (*ids)[17];
    size_t n_refs, cap_refs;
    Sluice__V1__XdsEntry *me;
    Sluice__V1__XdsEntry **mep;
    size_t cap_me;
    uint8_t *buf;
    size_t buf_cap;
} write_buf;

static void write_buf_free(write_buf *b)
{
    free(b->e);
    free(b->names);
    free(b->refs);
    free(b->refp);
    free(b->ids);
    free(b->me);
    free(b->mep);
    free(b->buf);
    memset(b, 0, sizeof *b);
}

/* ---- the service ---- */

struct tr_service {
    sl_service *svc;
    sl_nats *nc;
    sl_loop *loop;
    tr_service_opts o;
    sl_kv *kv_config, *kv_secrets, *kv_endpoints, *kv_xds;
    sl_kv_watch *w_config, *w_secrets, *w_endpoints;
    int initial_pending; /* watches that have not delivered their initial values */
    sl_tr_store *store;
    wmap xds;      /* <proxy>.<type>.<name> and <proxy>.commit as written */
    wmap reports;  /* Kind.ns.name -> last published report bytes */
    struct rc_item *rcache; /* the reports of the last publish_reports(), by pointers */
    size_t n_rcache;
    write_buf wb;  /* write_proxy's buffers, kept between calls */
    wcache *wc;    /* per proxy: what the last write_proxy wrote */
    size_t n_named;   /* keys of xds (not commits) named by this translation's writes */
    size_t n_commits; /* commit keys in xds */
    size_t n_same, n_compared; /* this translation's resources found unchanged by pointer, compared by bytes */
    /* Pipelined writes (write_proxy): the xds bucket's last sequence as our
     * own acknowledgements told it (0: unknown), and the puts of the proxy
     * being written, published together before its commit. */
    uint64_t seq;
    int batching;
    written **batch;
    size_t n_batch, cap_batch;
    sl_kv_put_item *items;
    size_t cap_items;
    size_t n_batches, n_mispredicted; /* this translation's */
    double us_flush, us_commit;       /* this translation's time waiting for acknowledgements */
    char **proxies; /* proxies of the last translation */
    size_t n_proxies;
    /* debounce */
    pthread_t timer;
    int timer_started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop;
    int dirty;
    int posted;
    int64_t first_change_ms, last_change_ms;
    double first_change_us; /* for the debug line: from the first change to the translation */
    /* incremental: the last full result, and what changed since */
    sl_tr_result *last;
    int full_needed;          /* a change other than an endpoint set */
    char **eps_ns, **eps_name; /* endpoint sets changed since the last translation */
    size_t n_eps, cap_eps;
    char reporter_id[64];
    /* metrics */
    sl_counter *m_translations, *m_writes, *m_deletes, *m_reports, *m_bad_input, *m_errors;
    sl_histogram *m_duration;
    sl_gauge *m_resources;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static void translate_task(void *ud);

/* The timer thread: posts one translation when the changes have been quiet
 * for debounce_ms, or waited max_delay_ms. */
static void *timer_main(void *ud)
{
    tr_service *s = ud;
    pthread_mutex_lock(&s->mu);
    while (!s->stop) {
        int64_t now = now_ms(), due;
        if (!s->dirty || s->posted) {
            pthread_cond_wait(&s->cv, &s->mu);
            continue;
        }
        due = s->last_change_ms + s->o.debounce_ms;
        if (s->first_change_ms + s->o.max_delay_ms < due)
            due = s->first_change_ms + s->o.max_delay_ms;
        if (now >= due) {
            s->posted = 1;
            s->dirty = 0;
            pthread_mutex_unlock(&s->mu);
            if (sl_loop_post(s->loop, s, translate_task, NULL, s) != SL_OK) {
                pthread_mutex_lock(&s->mu);
                s->posted = 0;
                s->dirty = 1;
                continue;
            }
            pthread_mutex_lock(&s->mu);
            continue;
        }
        {
            struct timespec ts;
            int64_t wait = due - now;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += wait / 1000;
            ts.tv_nsec += (wait % 1000) * 1000000;
            if (ts.tv_nsec >= 1000000000) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000;
            }
            pthread_cond_timedwait(&s->cv, &s->mu, &ts);
        }
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

static void mark_dirty(tr_service *s)
{
    int64_t now = now_ms();
    if (s->initial_pending > 0)
        return; /* the first translation runs when every initial value is in */
    pthread_mutex_lock(&s->mu);
    if (!s->dirty) {
        s->first_change_ms = now;
        s->first_change_us = now_us();
    }
    s->dirty = 1;
    s->last_change_ms = now;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

/* ---- input ---- */

/* Remembers what changed since the last translation: an endpoint set
 * (id), or anything else (NULL), which needs a full translation. */
static void note_change(tr_service *s, const sl_resource_id *id)
{
    pthread_mutex_lock(&s->mu);
    if (!id || s->full_needed) {
        s->full_needed = 1;
    } else {
        if (s->n_eps == s->cap_eps) {
            size_t cap = s->cap_eps ? s->cap_eps * 2 : 16;
            char **a = realloc(s->eps_ns, cap * sizeof *a), **b;
            if (a)
                s->eps_ns = a;
            b = realloc(s->eps_name, cap * sizeof *b);
            if (b)
                s->eps_name = b;
            if (!a || !b) {
                s->full_needed = 1;
                goto out;
            }
            s->cap_eps = cap;
        }
        s->eps_ns[s->n_eps] = strdup(id->ns);
        s->eps_name[s->n_eps] = strdup(id->name);
        if (!s->eps_ns[s->n_eps] || !s->eps_name[s->n_eps]) {
            free(s->eps_ns[s->n_eps]);
            free(s->eps_name[s->n_eps]);
            s->full_needed = 1;
            goto out;
        }
        s->n_eps++;
    }
out:
    pthread_mutex_unlock(&s->mu);
}

/* Forgets the noted changes (caller holds s->mu). */
static void clear_changes(tr_service *s)
{
    for (size_t i = 0; i < s->n_eps; i++) {
        free(s->eps_ns[i]);
        free(s->eps_name[i]);
    }
    s->n_eps = 0;
    s->full_needed = 0;
}

static void on_entry(sl_kv_watch *w, const sl_kv_entry *e, void *ud)
{
    tr_service *s = ud;
    sl_resource_id id;
    const sl_kind *k;
    bool endpoints = w == s->w_endpoints;

    if (sl_resource_key_parse(&id, e->key, !endpoints) != SL_OK) {
        sl_log_warn(COMP, "ignoring a key that is not a resource key", "key=%s err=%s", sl_log_q(e->key),
                    sl_log_q(sl_error_msg()));
        sl_counter_inc(s->m_bad_input);
        return;
    }
    k = endpoints ? sl_kind_by_name("EndpointSet") : sl_kind_by_name(id.kind);
    if (!k || (!endpoints && strcmp(k->bucket, w == s->w_config ? SL_BUCKET_CONFIG : SL_BUCKET_SECRETS) != 0)) {
        sl_log_warn(COMP, "ignoring a key of an unknown kind", "key=%s", sl_log_q(e->key));
        sl_counter_inc(s->m_bad_input);
        return;
    }
    if (e->op == SL_KV_PUT) {
        if (sl_tr_store_put_packed(s->store, k, e->value, e->len, e->revision) != SL_OK) {
            /* Bad bytes: keep the previous version (if any) serving. */
            sl_log_warn(COMP, "ignoring a value that does not decode; the previous version stays", "key=%s err=%s",
                        sl_log_q(e->key), sl_log_q(sl_error_msg()));
            sl_counter_inc(s->m_bad_input);
            return;
        }
    } else {
        sl_tr_store_remove(s->store, k, id.ns, id.name);
    }
    note_change(s, endpoints ? &id : NULL);
    mark_dirty(s);
}

static void on_initial_done(sl_kv_watch *w, void *ud)
{
    tr_service *s = ud;
    (void)w;
    if (--s->initial_pending == 0) {
        sl_log_info(COMP, "initial values loaded; translating");
        mark_dirty(s);
    }
}

static void on_failed(sl_kv_watch *w, sl_status st, const char *msg, void *ud)
{
    tr_service *s = ud;
    (void)w;
    sl_log_error(COMP, "watch failed; stopping", "status=%s err=%s", sl_status_str(st), sl_log_q(msg));
    sl_service_request_stop(s->svc, SL_EXIT_FAILURE);
}

/* ---- output ---- */

/* Puts data under key unless the bucket holds those bytes already; *rev is
 * its KV revision, *wout (may be NULL) what the writer remembers of it.
 * known: key's entry, when the caller has it (saves the lookup). */
static sl_status put_resource_w(tr_service *s, written *known, const char *key, const uint8_t *data, size_t len,
                                uint64_t *rev, written **wout)
{
    written *w = known ? known : wmap_get(&s->xds, key);
    sl_status rc;
    if (w && w->len == len && memcmp(w->data, data, len) == 0) {
        *rev = w->rev;
        if (wout)
            *wout = w;
        return SL_OK;
    }
    if (s->batching) {
        /* Published with the rest of the proxy's puts before its commit
         * (flush_batch); the revision it will get, if nobody else writes
         * the bucket meanwhile, is the next one: flush_batch checks. */
        if (s->n_batch == s->cap_batch) {
            size_t cap = s->cap_batch ? s->cap_batch * 2 : 64;
            written **v = realloc(s->batch, cap * sizeof *v);
            if (!v)
                return sl_error_set(SL_ERR_NOMEM, "out of memory");
            s->batch = v;
            s->cap_batch = cap;
        }
        *rev = ++s->seq;
    } else {
        if ((rc = sl_kv_put(rev, s->kv_xds, key, data, len)) != SL_OK)
            return rc;
        if (*rev > s->seq)
            s->seq = *rev;
    }
    sl_counter_inc(s->m_writes);
    if (!w) {
        size_t kl = strlen(key);
        if (!(w = wmap_put(&s->xds, key)))
            return SL_ERR_NOMEM;
        w->commit = kl > 7 && strcmp(key + kl - 7, ".commit") == 0;
        s->n_commits += (size_t)w->commit;
    }
    free(w->data);
    w->data = malloc(len ? len : 1);
    if (!w->data)
        return SL_ERR_NOMEM;
    memcpy(w->data, data, len);
    w->len = len;
    w->rev = *rev;
    w->fp = 0;
    if (s->batching)
        s->batch[s->n_batch++] = w;
    if (wout)
        *wout = w;
    return SL_OK;
}

/* Publishes the batched puts, pipelined (one round trip), and waits for
 * every acknowledgement. *predicted false when a revision differs from the
 * one put_resource_w() gave out (another writer came between): the
 * manifest chunks then name wrong revisions, and the proxy must be written
 * again (its keys' revisions are the true ones now). A put that failed
 * leaves its key never matching, so the next write puts it again. */
static sl_status flush_batch(tr_service *s, bool *predicted)
{
    sl_status rc;
    *predicted = true;
    if (!s->n_batch)
        return SL_OK;
    if (s->n_batch > s->cap_items) {
        sl_kv_put_item *v = realloc(s->items, s->n_batch * sizeof *v);
        if (!v) {
            rc = sl_error_set(SL_ERR_NOMEM, "out of memory");
            for (size_t i = 0; i < s->n_batch; i++)
                s->batch[i]->len = SIZE_MAX;
            goto out;
        }
        s->items = v;
        s->cap_items = s->n_batch;
    }
    for (size_t i = 0; i < s->n_batch; i++)
        s->items[i] = (sl_kv_put_item){s->batch[i]->key, s->batch[i]->data, s->batch[i]->len, 0, SL_OK};
    rc = sl_kv_put_many(s->kv_xds, s->items, s->n_batch, 5000 + (int64_t)s->n_batch); /* big batches: more time */
    s->n_batches++;
    for (size_t i = 0; i < s->n_batch; i++) {
        written *w = s->batch[i];
        if (s->items[i].status != SL_OK) {
            w->len = SIZE_MAX; /* never "as written": put again next time */
            w->rev = 0;
            continue;
        }
        if (s->items[i].rev != w->rev)
            *predicted = false;
        w->rev = s->items[i].rev;
        if (w->rev > s->seq)
            s->seq = w->rev;
    }
    if (rc != SL_OK)
        s->seq = 0; /* not known any more: the next write learns it */
out:
    s->n_batch = 0;
    return rc;
}

static sl_status put_resource(tr_service *s, const char *key, const uint8_t *data, size_t len, uint64_t *rev)
{
    return put_resource_w(s, NULL, key, data, len, rev, NULL);
}

/* The revision of the commit stored under commit_key (0: none, or a value
 * that does not decode, e.g. the JSON commit of an older version). */
static uint64_t commit_revision(tr_service *s, const char *commit_key)
{
    written *w = wmap_get(&s->xds, commit_key);
    uint64_t r = 0;
    if (w && w->data) {
        Sluice__V1__XdsCommit *c = sluice__v1__xds_commit__unpack(NULL, w->len, w->data);
        if (c)
            r = c->revision;
        sluice__v1__xds_commit__free_unpacked(c, NULL);
    }
    return r;
}

static sl_status wb_entry(write_buf *b, const char *name, size_t name_off, uint64_t rev, uint64_t hash,
                          uint32_t parts)
{
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 1024;
        mf_entry *e = realloc(b->e, cap * sizeof *e);
        if (!e)
            return sl_error_set(SL_ERR_NOMEM, "out of memory");
        b->e = e;
        b->cap = cap;
    }
    b->e[b->n++] = (mf_entry){name, name_off, rev, hash, parts};
    return SL_OK;
}

static sl_status wb_ref(write_buf *b, const char *type, uint64_t hash, uint64_t rev)
{
    if (b->n_refs == b->cap_refs) {
        size_t cap = b->cap_refs ? b->cap_refs * 2 : 256;
        Sluice__V1__XdsChunkRef *r = realloc(b->refs, cap * sizeof *r);
        Sluice__V1__XdsChunkRef **rp = r ? realloc(b->refp, cap * sizeof *rp) : NULL;
        char(*ids)[17] = rp ? realloc(b->ids, cap * sizeof *ids) : NULL;
        if (r)
            b->refs = r;
        if (rp)
            b->refp = rp;
        if (!ids)
            return sl_error_set(SL_ERR_NOMEM, "out of memory");
        b->ids = ids;
        b->cap_refs = cap;
    }
    size_t i = b->n_refs++;
    sluice__v1__xds_chunk_ref__init(&b->refs[i]);
    sl_xds_chunk_id(b->ids[i], hash);
    b->refs[i].type = (char *)type;
    b->refs[i].revision = rev;
    return SL_OK;
}

/* Packs m into b->buf (grown as needed); its length, or SIZE_MAX. */
static size_t wb_pack(write_buf *b, const ProtobufCMessage *m)
{
    size_t len = protobuf_c_message_get_packed_size(m);
    if (len > b->buf_cap) {
        uint8_t *nb = realloc(b->buf, len);
        if (!nb)
            return SIZE_MAX;
        b->buf = nb;
        b->buf_cap = len;
    }
    return protobuf_c_message_pack(m, b->buf);
}

/* One virtual host of a route being written: its bytes, and its name
 * (name_len bytes; SIZE_MAX: NUL terminated). */
typedef struct wpart {
    const uint8_t *data;
    size_t len;
    const char *name;
    size_t name_len;
} wpart;

static bool wpart_named(const wpart *p, const char *name)
{
    if (p->name_len == SIZE_MAX)
        return strcmp(p->name, name) == 0;
    return strncmp(name, p->name, p->name_len) == 0 && !name[p->name_len];
}

/* The route configuration r stored in parts (docs/xds.md): its head under
 * key, each virtual host under <proxy>.vhost.<route>.<vhost>; their
 * manifest entries appended. The parts are the translator's (r->parts),
 * or else r split again. prev_route: the route as written last time, its
 * parts matched by position: a part with the same bytes pointer as last
 * time is the same bytes (translator.h), with another its bytes are
 * compared (in the route's previous bytes when it was split, else in what
 * was written); *now gets this time's. *done false (nothing written) when
 * r is not worth splitting or does not split. */
static sl_status put_route_parts(tr_service *s, const char *ptok, const char *ntok, const char *key,
                                 const sl_tr_resource *r, written *known, wc_item *prev_route,
                                 wc_list **now, written **head_w, uint64_t *head_rev, bool *done)
{
    write_buf *b = &s->wb;
    const uint8_t *head;
    uint8_t *split_head = NULL;
    sl_xds_part *split = NULL;
    wpart *parts = NULL;
    size_t hl, np, k = 0;
    char vtok[1024], pkey[2600];
    uint64_t rev;
    wc_list *l = NULL;
    wc_list *prev = prev_route ? prev_route->parts : NULL;
    bool by_whole = prev_route && prev_route->whole && !r->parts; /* compare in the previous bytes */
    sl_status rc = SL_OK;

    *done = false;
    *now = NULL;
    if (r->len < SL_XDS_SPLIT_MIN)
        return SL_OK;
    if (r->parts) {
        np = r->parts->n;
        head = r->parts->head;
        hl = r->parts->head_len;
        for (size_t i = 0; i < np; i++)
            if (!r->parts->v[i].name[0])
                return SL_OK; /* a virtual host without a name: the route stays whole */
        if (!(parts = malloc((np ? np : 1) * sizeof *parts)))
            return sl_error_set(SL_ERR_NOMEM, "out of memory");
        for (size_t i = 0; i < np; i++)
            parts[i] = (wpart){r->parts->v[i].data, r->parts->v[i].len, r->parts->v[i].name, SIZE_MAX};
    } else {
        if (sl_xds_route_split(&split_head, &hl, &split, &np, r->data, r->len) != SL_OK)
            return SL_OK;
        head = split_head;
        if (!(parts = malloc((np ? np : 1) * sizeof *parts))) {
            rc = sl_error_set(SL_ERR_NOMEM, "out of memory");
            goto out;
        }
        for (size_t i = 0; i < np; i++)
            parts[i] = (wpart){r->data + split[i].off, split[i].len, split[i].name, split[i].name_len};
    }
    if (np < 2)
        goto out;
    if (!(l = calloc(1, sizeof *l)) || !(l->v = calloc(np, sizeof *l->v))) {
        rc = sl_error_set(SL_ERR_NOMEM, "out of memory");
        goto out;
    }
    if ((rc = put_resource_w(s, known, key, head, hl, &rev, head_w)) != SL_OK ||
        (rc = wb_entry(b, r->name, 0, rev, sl_xds_entry_hash(NULL, r->name), (uint32_t)np)) != SL_OK)
        goto out;
    *head_rev = rev;
    s->n_named++;
    for (size_t i = 0; i < np; i++) {
        const wpart *pt = &parts[i];
        wc_item *pi = NULL;
        wc_item *it = &l->v[l->n];
        bool same = false;
        /* The same virtual host as last time at this place, or one further
         * (one removed before it): by its bytes pointer, else by name;
         * else look its key up. */
        for (size_t d = 0; d < 2 && prev && !pi; d++) {
            wc_item *c = k + d < prev->n ? &prev->v[k + d] : NULL;
            if (c && c->name && ((same = c->rdata == (const void *)pt->data && c->rlen == pt->len) ||
                                 wpart_named(pt, c->name))) {
                pi = c;
                k += d + 1;
            }
        }
        if (pi) { /* the name moves over */
            it->name = pi->name;
            pi->name = NULL;
        } else if (!(it->name = pt->name_len == SIZE_MAX ? strdup(pt->name) : strndup(pt->name, pt->name_len))) {
            rc = sl_error_set(SL_ERR_NOMEM, "out of memory");
            goto out;
        }
        l->n++;
        it->hash = pi ? pi->hash : sl_xds_entry_hash(r->name, it->name);
        it->off = r->parts ? 0 : (size_t)(pt->data - r->data); /* in the whole: a split route's only */
        it->rdata = pt->data;
        it->rlen = pt->len;
        s->n_named++;
        if (pi && (same || (by_whole && pi->rlen == pt->len &&
                            memcmp(prev_route->whole + pi->off, pt->data, pt->len) == 0))) {
            /* as last time */
            it->w = pi->w;
            rev = pi->rev;
        } else {
            if (pi) {
                snprintf(pkey, sizeof pkey, "%s", pi->w->key);
            } else {
                if ((rc = sl_xds_key_escape(vtok, sizeof vtok, it->name)) != SL_OK)
                    goto out;
                snprintf(pkey, sizeof pkey, "%s.vhost.%s.%s", ptok, ntok, vtok);
            }
            if ((rc = put_resource_w(s, pi ? pi->w : NULL, pkey, pt->data, pt->len, &rev, &it->w)) != SL_OK)
                goto out;
        }
        it->rev = rev;
        /* it->name lives in the cache until the next write: the entry may
         * point at it */
        if ((rc = wb_entry(b, it->name, 0, rev, it->hash, 0)) != SL_OK)
            goto out;
    }
    *done = true;
    *now = l;
    l = NULL;
out:
    wc_list_clear(l);
    free(l);
    free(split_head);
    free(split);
    free(parts);
    return rc;
}

static wcache *wcache_of(tr_service *s, const char *proxy)
{
    wcache *c;
    for (c = s->wc; c; c = c->next)
        if (strcmp(c->proxy, proxy) == 0)
            return c;
    if (!(c = calloc(1, sizeof *c)) || !(c->proxy = strdup(proxy))) {
        free(c);
        return NULL;
    }
    c->next = s->wc;
    s->wc = c;
    return c;
}

static void wcache_free_all(tr_service *s)
{
    for (wcache *c = s->wc, *nx; c; c = nx) {
        nx = c->next;
        for (int t = 0; t < SL_XDS_TYPE_COUNT; t++)
            wc_list_clear(&c->types[t]);
        free(c->chunks);
        free(c->prev_chunks);
        free(c->proxy);
        free(c);
    }
    s->wc = NULL;
}

/* Forgets what the last write of c's proxy wrote (its next write looks
 * every key up and compares bytes). */
static void wcache_drop(wcache *c)
{
    for (int t = 0; t < SL_XDS_TYPE_COUNT; t++)
        wc_list_clear(&c->types[t]);
    c->n_chunks = 0;
    c->n_prev_chunks = 0;
    memset(c->t0, 0, sizeof c->t0);
    memset(c->tn, 0, sizeof c->tn);
    memset(c->named, 0, sizeof c->named);
    memset(c->list, 0, sizeof c->list);
}

/* Whether p's resources of type t are the ones last written, in the same
 * order, by pointers (translator.h: the same pointers, the same bytes). */
static bool wc_same_list(const wc_list *l, const sl_tr_proxy *p, int t)
{
    if (l->n != p->n[t])
        return false;
    for (size_t i = 0; i < l->n; i++) {
        const sl_tr_resource *r = &p->res[t][i];
        if (l->v[i].rname != (const void *)r->name || l->v[i].rdata != res_id(r) ||
            l->v[i].rlen != r->len)
            return false;
    }
    return true;
}

/* The fingerprint of a chunk of manifest entries of type t (what makes
 * its bytes, bar the names, which its first hash and position pin). */
static uint64_t chunk_fp(int t, const mf_entry *e, size_t n)
{
    uint64_t fp = (0xcbf29ce484222325ULL ^ (uint64_t)t) * 0x100000001b3ULL;
    for (size_t k = 0; k < n; k++) {
        fp = (fp ^ e[k].hash) * 0x100000001b3ULL;
        fp = (fp ^ e[k].rev) * 0x100000001b3ULL;
        fp = (fp ^ e[k].parts) * 0x100000001b3ULL;
    }
    return fp | 1; /* never 0 ("unknown") */
}

/* Whether item it (as last written) and resource r have the same
 * manifest entries but revisions: the same name, and the same parts by
 * name when it was stored in parts (then r must come in parts too, big
 * enough to be split again); a resource not in parts stays whole. */
static bool same_entries(const wc_item *it, const sl_tr_resource *r, int t)
{
    if (!it->name || !it->w || (it->rname != (const void *)r->name && strcmp(it->name, r->name) != 0))
        return false;
    if (!it->parts) /* whole last time, and whole now */
        return r->data && (t != SL_XDS_ROUTE || r->len < SL_XDS_SPLIT_MIN);
    if (!r->parts || r->len < SL_XDS_SPLIT_MIN || r->parts->n != it->parts->n || it->whole)
        return false;
    for (size_t q = 0; q < it->parts->n; q++) {
        const wc_item *pq = &it->parts->v[q];
        const sl_tr_part *pt = &r->parts->v[q];
        if (!pq->name || !pq->w || !pt->name[0] ||
            (pq->rdata != (const void *)pt->data && strcmp(pq->name, pt->name) != 0))
            return false;
    }
    return true;
}

/* Writes type t of p where it has the same manifest entries, in the same
 * order, as last written, but revisions (the usual change of an endpoint
 * set, a cluster, or a virtual host of a route in parts): the changed
 * resources and parts put, and only the chunks holding them packed again;
 * the cache updated in place, nothing else built. *done false (nothing
 * changed) when that does not hold: write_proxy_once's merge then. */
static sl_status write_type_in_place(tr_service *s, wcache *wc, const sl_tr_proxy *p, int t, size_t *n_res,
                                     bool *done)
{
    wc_list *l = &wc->types[t];
    write_buf *b = &s->wb;
    const char *tt = sl_xds_type_token((sl_xds_type)t);
    size_t n = p->n[t], nc = 0, ne = 0, changed = 0, k = 0, c = 0;
    sl_status rc = SL_OK;

    *done = false;
    if (l->n != n || !n || wc->prev_t0[t] + wc->prev_tn[t] > wc->n_prev_chunks)
        return SL_OK;
    for (size_t i = 0; i < n; i++)
        if (!same_entries(&l->v[i], &p->res[t][i], t))
            return SL_OK;
    /* the chunks cut as last time (the same entries)? */
    for (size_t i = 0; i < n; i++) {
        const wc_item *it = &l->v[i];
        size_t np = it->parts ? it->parts->n : 0;
        for (size_t q = 0; q <= np; q++) { /* q 0: the item, q > 0: its part q-1 */
            uint64_t h = q ? it->parts->v[q - 1].hash : it->hash;
            ne++;
            if (++c >= SL_XDS_CHUNK_MAX || sl_xds_chunk_cut(h) || (i + 1 == n && q == np)) {
                nc++;
                c = 0;
            }
        }
    }
    if (nc != wc->prev_tn[t])
        return SL_OK;
    *done = true;
    if (b->cap < SL_XDS_CHUNK_MAX) { /* the entries of one chunk */
        mf_entry *e = realloc(b->e, SL_XDS_CHUNK_MAX * sizeof *e);
        if (!e)
            return sl_error_set(SL_ERR_NOMEM, "out of memory");
        b->e = e;
        b->cap = SL_XDS_CHUNK_MAX;
    }
    if (b->cap_me < SL_XDS_CHUNK_MAX) {
        Sluice__V1__XdsEntry *me = realloc(b->me, SL_XDS_CHUNK_MAX * sizeof *me);
        Sluice__V1__XdsEntry **mep = me ? realloc(b->mep, SL_XDS_CHUNK_MAX * sizeof *mep) : NULL;
        if (me)
            b->me = me;
        if (!mep)
            return sl_error_set(SL_ERR_NOMEM, "out of memory");
        b->mep = mep;
        b->cap_me = SL_XDS_CHUNK_MAX;
    }
    if (wc->n_chunks + nc > wc->cap_chunks) {
        size_t cap = wc->cap_chunks ? wc->cap_chunks : 64;
        written **v;
        while (cap < wc->n_chunks + nc)
            cap *= 2;
        if (!(v = realloc(wc->chunks, cap * sizeof *v)))
            return sl_error_set(SL_ERR_NOMEM, "out of memory");
        wc->chunks = v;
        wc->cap_chunks = cap;
    }
    c = 0;
    for (size_t i = 0; i < n; i++) {
        wc_item *it = &l->v[i];
        const sl_tr_resource *r = &p->res[t][i];
        size_t np = it->parts ? it->parts->n : 0;
        bool item_same = it->rdata == res_id(r) && it->rlen == r->len;
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
                s->n_compared++;
                if ((rc = put_resource_w(s, e->w, e->w->key, data, len, &rev, &e->w)) != SL_OK)
                    return rc;
                if (rev != e->rev)
                    changed++;
                e->rev = rev;
                if (q) {
                    e->rdata = data;
                    e->rlen = len;
                }
            }
            b->e[c++] = (mf_entry){e->name, 0, e->rev, e->hash, q ? 0 : (uint32_t)np};
            s->n_named++;
            if (!(c >= SL_XDS_CHUNK_MAX || sl_xds_chunk_cut(e->hash) || (i + 1 == n && q == np)))
                continue;
            written *cw = wc->prev_chunks[wc->prev_t0[t] + k++];
            uint64_t fp = changed ? chunk_fp(t, b->e, c) : cw->fp;
            s->n_named++;
            if (changed && fp != cw->fp) { /* a revision in it moved: packed again */
                Sluice__V1__XdsManifest m = SLUICE__V1__XDS_MANIFEST__INIT;
                size_t plen;
                written *nw = NULL;
                for (size_t x = 0; x < c; x++) {
                    sluice__v1__xds_entry__init(&b->me[x]);
                    b->me[x].name = (char *)b->e[x].name;
                    b->me[x].revision = b->e[x].rev;
                    b->me[x].parts = b->e[x].parts;
                    b->mep[x] = &b->me[x];
                }
                m.n_entries = c;
                m.entries = b->mep;
                if ((plen = wb_pack(b, &m.base)) == SIZE_MAX)
                    return sl_error_set(SL_ERR_NOMEM, "out of memory");
                if ((rc = put_resource_w(s, cw, cw->key, b->buf, plen, &rev, &nw)) != SL_OK)
                    return rc;
                nw->fp = fp;
                nw->first = b->e[0].hash;
                cw = nw;
            }
            wc->chunks[wc->n_chunks++] = cw;
            if ((rc = wb_ref(b, tt, cw->first, cw->rev)) != SL_OK)
                return rc;
            changed = 0;
            c = 0;
        }
        if (item_same)
            s->n_same++;
        it->rname = r->name;
        it->rdata = res_id(r);
        it->rlen = r->len;
        (*n_res)++;
    }
    wc->tn[t] = nc;
    wc->named[t] = ne;
    return SL_OK;
}

/* One write of proxy p: every changed resource, part and manifest chunk
 * put (pipelined when batch: one round trip for all, their revisions
 * given out ahead and checked), then the commit. *again: the revisions
 * given out were not the ones stored; nothing was committed, write the
 * proxy again. */
static sl_status write_proxy_once(tr_service *s, const sl_tr_proxy *p, size_t *n_res, bool batch, bool *again)
{
    char ptok[512], ntok[1024], key[1600], commit_key[600];
    Sluice__V1__XdsCommit commit = SLUICE__V1__XDS_COMMIT__INIT;
    sl_status rc = SL_OK;
    uint64_t rev, old_revision;
    size_t len;

    *again = false;
    if ((rc = sl_xds_key_escape(ptok, sizeof ptok, p->name)) != SL_OK)
        return rc;
    snprintf(commit_key, sizeof commit_key, "%s.commit", ptok);
    s->batching = batch;
    s->n_batch = 0;
    write_buf *b = &s->wb;
    wcache *wc = wcache_of(s, p->name);
    if (!wc)
        return sl_error_set(SL_ERR_NOMEM, "out of memory");
    b->n_refs = 0;
    { /* last write's chunks become the ones to match; the list refills */
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
    size_t pc = 0; /* cursor in prev_chunks */
    for (int t = 0; t < SL_XDS_TYPE_COUNT; t++) {
        const char *tt = sl_xds_type_token((sl_xds_type)t);
        wc_list *prev = &wc->types[t], now = {0};
        size_t j = 0;
        const void *shared;
        b->n = 0;
        b->names_len = 0;
        wc->t0[t] = wc->n_chunks;
        shared = sl_tr_proxy_list_shared(p, (sl_xds_type)t) ? p->res[t] : NULL;
        if (wc->prev_t0[t] + wc->prev_tn[t] <= wc->n_prev_chunks &&
            ((shared && shared == wc->list[t] && prev->n == p->n[t]) || wc_same_list(prev, p, t))) {
            /* Every resource of the type as last written: its chunks are
             * too; nothing else looked at. */
            if (wc->n_chunks + wc->prev_tn[t] > wc->cap_chunks) {
                size_t cap = wc->cap_chunks ? wc->cap_chunks : 64;
                written **v;
                while (cap < wc->n_chunks + wc->prev_tn[t])
                    cap *= 2;
                if (!(v = realloc(wc->chunks, cap * sizeof *v))) {
                    rc = sl_error_set(SL_ERR_NOMEM, "out of memory");
                    goto type_out;
                }
                wc->chunks = v;
                wc->cap_chunks = cap;
            }
            for (size_t k = 0; k < wc->prev_tn[t]; k++) {
                written *cw = wc->prev_chunks[wc->prev_t0[t] + k];
                wc->chunks[wc->n_chunks++] = cw;
                if ((rc = wb_ref(b, tt, cw->first, cw->rev)) != SL_OK)
                    goto type_out;
            }
            pc = wc->prev_t0[t] + wc->prev_tn[t];
            wc->tn[t] = wc->prev_tn[t];
            s->n_named += wc->named[t] + wc->tn[t];
            s->n_same += p->n[t];
            *n_res += p->n[t];
            wc->list[t] = shared;
            continue;
        }
        {
            bool done = false;
            if ((rc = write_type_in_place(s, wc, p, t, n_res, &done)) != SL_OK)
                goto type_out;
            if (done) {
                pc = wc->prev_t0[t] + wc->prev_tn[t];
                wc->list[t] = shared;
                continue;
            }
        }
        if (p->n[t] && !(now.v = calloc(p->n[t], sizeof *now.v))) {
            rc = sl_error_set(SL_ERR_NOMEM, "out of memory");
            goto type_out;
        }
        /* The resources, each put when its bytes changed; their entries.
         * Both lists are sorted by name: a merge finds what was written. */
        for (size_t i = 0; i < p->n[t]; i++) {
            const sl_tr_resource *r = &p->res[t][i];
            wc_item *pi = NULL, *it = &now.v[now.n];
            wc_list *parts_now = NULL;
            bool split = false;
            int c = 1;
            if (j < prev->n && prev->v[j].rname == (const void *)r->name) {
                pi = &prev->v[j++]; /* the same name object: no need to compare */
            } else {
                while (j < prev->n && (c = strcmp(prev->v[j].name, r->name)) < 0)
                    j++;
                if (j < prev->n && c == 0)
                    pi = &prev->v[j++];
            }
            if (pi && ((pi->rdata == res_id(r) && pi->rlen == r->len) ||
                       (r->data && !r->parts && pi->parts && pi->whole && pi->whole_len == r->len &&
                        memcmp(pi->whole, r->data, r->len) == 0))) {
                /* As it was (a split route: its head and parts stay): its
                 * entries from the cache, nothing else looked at. */
                if ((rc = wb_entry(b, r->name, 0, pi->rev, pi->hash, pi->parts ? (uint32_t)pi->parts->n : 0)) !=
                    SL_OK)
                    goto type_out;
                s->n_named++;
                for (size_t q = 0; pi->parts && q < pi->parts->n; q++) {
                    const wc_item *pq = &pi->parts->v[q];
                    if ((rc = wb_entry(b, pq->name, 0, pq->rev, pq->hash, 0)) != SL_OK)
                        goto type_out;
                    s->n_named++;
                }
                s->n_same++;
                *it = *pi;
                it->rname = r->name;
                it->rdata = res_id(r);
                pi->parts = NULL;
                pi->whole = NULL;
                pi->name = NULL;
                now.n++;
                (*n_res)++;
                continue;
            }
            const char *k = key;
            s->n_compared++;
            if (pi) {
                k = pi->w->key;
            } else {
                if ((rc = sl_xds_key_escape(ntok, sizeof ntok, r->name)) != SL_OK)
                    goto type_out;
                snprintf(key, sizeof key, "%s.%s.%s", ptok, tt, ntok);
            }
            it->hash = pi ? pi->hash : sl_xds_entry_hash(NULL, r->name);
            if (t == SL_XDS_ROUTE && r->len >= SL_XDS_SPLIT_MIN) {
                if ((rc = sl_xds_key_escape(ntok, sizeof ntok, r->name)) != SL_OK ||
                    (rc = put_route_parts(s, ptok, ntok, k, r, pi ? pi->w : NULL, pi && pi->parts ? pi : NULL,
                                          &parts_now, &it->w, &it->rev, &split)) != SL_OK)
                    goto type_out;
            }
            if (!split) {
                if (!r->data) { /* given in parts only, yet not split: translator.h says it cannot be */
                    rc = sl_error_set(SL_ERR_INTERNAL, "route %s: neither whole nor in parts", r->name);
                    goto type_out;
                }
                if ((rc = put_resource_w(s, pi ? pi->w : NULL, k, r->data, r->len, &rev, &it->w)) != SL_OK ||
                    (rc = wb_entry(b, r->name, 0, rev, it->hash, 0)) != SL_OK)
                    goto type_out;
                it->rev = rev;
                s->n_named++;
            }
            it->rname = r->name;
            it->rdata = res_id(r);
            it->rlen = r->len;
            it->parts = parts_now;
            if (parts_now && !r->parts) { /* the bytes to compare with next time, in last time's buffer if it fits */
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
            if (pi) { /* the name moves over */
                it->name = pi->name;
                pi->name = NULL;
            } else if (!(it->name = strdup(r->name))) {
                wc_list_clear(parts_now);
                free(parts_now);
                rc = sl_error_set(SL_ERR_NOMEM, "out of memory");
                goto type_out;
            }
            now.n++;
            (*n_res)++;
        }
    type_out:
        /* Names moved over are NULL in prev: sorted order is kept for the
         * merge only until here. On an error the cache is dropped. */
        wc_list_clear(prev);
        if (rc != SL_OK) {
            wc_list_clear(&now);
            for (int u = 0; u < SL_XDS_TYPE_COUNT; u++)
                wc_list_clear(&wc->types[u]);
            wc->n_chunks = 0;
            wc->n_prev_chunks = 0;
            return rc;
        }
        *prev = now;
        wc->named[t] = b->n;
        for (size_t i = 0; i < b->n; i++)
            if (!b->e[i].name)
                b->e[i].name = b->names + b->e[i].name_off; /* names is final now */
        /* The manifest chunks: cut where the content says (so an added or
         * removed entry moves one chunk), each put when its bytes changed. */
        if (b->n > b->cap_me) {
            Sluice__V1__XdsEntry *me = realloc(b->me, b->n * sizeof *me);
            Sluice__V1__XdsEntry **mep = me ? realloc(b->mep, b->n * sizeof *mep) : NULL;
            if (me)
                b->me = me;
            if (!mep)
                return sl_error_set(SL_ERR_NOMEM, "out of memory");
            b->mep = mep;
            b->cap_me = b->n;
        }
        for (size_t i0 = 0, i = 0; i < b->n; i++) {
            if (i + 1 < b->n && i + 1 - i0 < SL_XDS_CHUNK_MAX && !sl_xds_chunk_cut(b->e[i].hash))
                continue;
            Sluice__V1__XdsManifest m = SLUICE__V1__XDS_MANIFEST__INIT;
            char id[17];
            written *cw;
            /* A chunk whose entries are as last time is not even packed:
             * found by the cursor in last time's chunks (no key built), or
             * else by its key. */
            uint64_t fp = (0xcbf29ce484222325ULL ^ (uint64_t)t) * 0x100000001b3ULL;
            for (size_t k = i0; k <= i; k++) {
                fp = (fp ^ b->e[k].hash) * 0x100000001b3ULL;
                fp = (fp ^ b->e[k].rev) * 0x100000001b3ULL;
                fp = (fp ^ b->e[k].parts) * 0x100000001b3ULL;
            }
            fp |= 1; /* never 0 ("unknown") */
            if (wc->n_chunks == wc->cap_chunks) {
                size_t cap = wc->cap_chunks ? wc->cap_chunks * 2 : 64;
                written **v = realloc(wc->chunks, cap * sizeof *v);
                if (!v)
                    return sl_error_set(SL_ERR_NOMEM, "out of memory");
                wc->chunks = v;
                wc->cap_chunks = cap;
            }
            s->n_named++;
            cw = NULL;
            for (size_t d = 0; d < 4 && pc + d < wc->n_prev_chunks && !cw; d++)
                if (wc->prev_chunks[pc + d]->fp == fp && wc->prev_chunks[pc + d]->first == b->e[i0].hash) {
                    cw = wc->prev_chunks[pc + d];
                    pc += d + 1;
                }
            if (!cw) {
                sl_xds_chunk_id(id, b->e[i0].hash);
                snprintf(key, sizeof key, "%s.manifest.%s.%s", ptok, tt, id);
                if ((cw = wmap_get(&s->xds, key)) && cw->fp != fp)
                    cw = NULL;
            }
            if (cw) {
                wc->chunks[wc->n_chunks++] = cw;
                if ((rc = wb_ref(b, tt, b->e[i0].hash, cw->rev)) != SL_OK)
                    return rc;
                i0 = i + 1;
                continue;
            }
            for (size_t k = i0; k <= i; k++) {
                sluice__v1__xds_entry__init(&b->me[k]);
                b->me[k].name = (char *)b->e[k].name;
                b->me[k].revision = b->e[k].rev;
                b->me[k].parts = b->e[k].parts;
                b->mep[k] = &b->me[k];
            }
            m.n_entries = i + 1 - i0;
            m.entries = b->mep + i0;
            if ((len = wb_pack(b, &m.base)) == SIZE_MAX)
                return sl_error_set(SL_ERR_NOMEM, "out of memory");
            sl_xds_chunk_id(id, b->e[i0].hash);
            snprintf(key, sizeof key, "%s.manifest.%s.%s", ptok, tt, id);
            if ((rc = put_resource_w(s, NULL, key, b->buf, len, &rev, &cw)) != SL_OK ||
                (rc = wb_ref(b, tt, b->e[i0].hash, rev)))
                return rc;
            cw->fp = fp;
            cw->first = b->e[i0].hash;
            wc->chunks[wc->n_chunks++] = cw;
            i0 = i + 1;
        }
        wc->tn[t] = wc->n_chunks - wc->t0[t];
        wc->list[t] = shared;
    }
    /* Everything the commit names is stored (acknowledged) before it. */
    if (s->batching) {
        bool predicted;
        double t = now_us();
        s->batching = 0;
        rc = flush_batch(s, &predicted);
        s->us_flush += now_us() - t;
        if (rc != SL_OK)
            return rc;
        if (!predicted) {
            *again = true;
            return SL_OK;
        }
    }
    /* The commit: not written again when it names the same chunks. */
    old_revision = commit_revision(s, commit_key);
    commit.n_chunks = b->n_refs;
    for (size_t i = 0; i < b->n_refs; i++) { /* the arrays are final now */
        b->refs[i].id = b->ids[i];
        b->refp[i] = &b->refs[i];
    }
    commit.chunks = b->refp;
    commit.revision = old_revision;
    if ((len = wb_pack(b, &commit.base)) == SIZE_MAX)
        return sl_error_set(SL_ERR_NOMEM, "out of memory");
    {
        written *w = wmap_get(&s->xds, commit_key);
        if (w && w->len == len && memcmp(w->data, b->buf, len) == 0)
            return SL_OK;
    }
    commit.revision = old_revision + 1;
    if ((len = wb_pack(b, &commit.base)) == SIZE_MAX)
        return sl_error_set(SL_ERR_NOMEM, "out of memory");
    {
        double t = now_us();
        rc = put_resource(s, commit_key, b->buf, len, &rev);
        s->us_commit += now_us() - t;
        if (rc != SL_OK)
            return rc;
    }
    sl_log_info(COMP, "committed", "proxy=%s revision=%" PRIu64 " kv_revision=%" PRIu64 " chunks=%zu bytes=%zu",
                sl_log_q(p->name), old_revision + 1, rev, b->n_refs, len);
    return SL_OK;
}

/* Writes proxy p (write_proxy_once), pipelined while the bucket's last
 * revision is known; when another writer moved it meanwhile, once more
 * without pipelining. On an error the proxy's write cache is dropped and
 * any put not acknowledged counts as not written. */
static sl_status write_proxy(tr_service *s, const sl_tr_proxy *p, size_t *n_res)
{
    size_t n_named = s->n_named, n0 = *n_res;
    bool again = false;
    sl_status rc = write_proxy_once(s, p, n_res, s->seq != 0, &again);
    if (rc == SL_OK && again) {
        wcache *c = wcache_of(s, p->name);
        s->n_mispredicted++;
        if (c)
            wcache_drop(c);
        s->n_named = n_named;
        *n_res = n0;
        rc = write_proxy_once(s, p, n_res, false, &again);
    }
    if (rc != SL_OK) {
        wcache *c = wcache_of(s, p->name);
        for (size_t i = 0; i < s->n_batch; i++)
            s->batch[i]->len = SIZE_MAX; /* given a revision, never sent */
        if (s->n_batch)
            s->seq = 0;
        s->n_batch = 0;
        s->batching = 0;
        if (c)
            wcache_drop(c);
    }
    return rc;
}

/* Proxies that had resources before and have none now get an empty commit. */
static void write_gone_proxies(tr_service *s, const sl_tr_result *r)
{
    for (size_t i = 0; i < s->n_proxies; i++) {
        sl_tr_proxy empty;
        size_t n = 0;
        if (sl_tr_result_proxy(r, s->proxies[i]))
            continue;
        memset(&empty, 0, sizeof empty);
        empty.name = s->proxies[i];
        if (write_proxy(s, &empty, &n) != SL_OK)
            sl_log_warn(COMP, "could not write the empty commit of a removed proxy", "proxy=%s err=%s",
                        sl_log_q(s->proxies[i]), sl_log_q(sl_error_msg()));
    }
    for (size_t i = 0; i < s->n_proxies; i++)
        free(s->proxies[i]);
    free(s->proxies);
    s->proxies = calloc(r->n_proxies + 1, sizeof *s->proxies);
    s->n_proxies = 0;
    for (size_t i = 0; s->proxies && i < r->n_proxies; i++)
        if ((s->proxies[s->n_proxies] = strdup(r->proxies[i].name)))
            s->n_proxies++;
}

/* Deletes the resource keys no commit names any more (after the commits). */
static void delete_stale(tr_service *s)
{
    char **stale = NULL;
    size_t n = 0, cap = 0;
    if (s->n_named + s->n_commits == s->xds.n)
        return; /* every key was named (or is a commit): nothing to look for */
    /* Some key went unnamed: mark what the writes named, then look. */
    for (size_t i = 0; i < s->xds.cap; i++)
        for (written *w = s->xds.b[i]; w; w = w->next)
            w->live = 0;
    for (wcache *c = s->wc; c; c = c->next) {
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
    for (size_t i = 0; i < s->xds.cap; i++)
        for (written *w = s->xds.b[i]; w; w = w->next) {
            if (w->live || w->commit)
                continue;
            if (n == cap) {
                char **v = realloc(stale, (cap = cap ? cap * 2 : 64) * sizeof *v);
                if (!v)
                    break;
                stale = v;
            }
            stale[n++] = w->key;
        }
    for (size_t i = 0; i < n; i++) {
        char *key = strdup(stale[i]);
        if (!key)
            continue;
        uint64_t drev = 0;
        if (sl_kv_delete(&drev, s->kv_xds, key, 0) == SL_OK) {
            if (drev > s->seq)
                s->seq = drev;
            sl_counter_inc(s->m_deletes);
            wmap_del(&s->xds, key);
        } else {
            sl_log_warn(COMP, "could not delete a stale resource", "key=%s err=%s", sl_log_q(key),
                        sl_log_q(sl_error_msg()));
        }
        free(key);
    }
    free(stale);
}

/* A report as last published (or found unchanged), by the result's
 * pointers and values: the same pointers as last time are the same
 * strings (the previous result still lives while the next one is
 * published; kept reports share their strings between results), so an
 * unchanged report is not even packed. */
typedef struct rc_item {
    const sl_kind *kind;
    const char *ns, *name, *reason, *rv;
    char *const *warnings;
    size_t n_warnings;
    int state;
    int64_t generation;
    uint64_t revision;
} rc_item;

static rc_item rc_of(const sl_tr_report *rp)
{
    rc_item c;
    memset(&c, 0, sizeof c);
    c.kind = rp->kind;
    c.ns = rp->ns;
    c.name = rp->name;
    c.reason = rp->reason;
    c.rv = rp->resource_version;
    c.warnings = rp->warnings;
    c.n_warnings = rp->n_warnings;
    c.state = rp->state;
    c.generation = rp->generation;
    c.revision = rp->revision;
    return c;
}

static bool rc_same(const rc_item *a, const rc_item *b)
{
    return a->kind == b->kind && a->ns == b->ns && a->name == b->name && a->reason == b->reason && a->rv == b->rv &&
           a->warnings == b->warnings && a->n_warnings == b->n_warnings && a->state == b->state &&
           a->generation == b->generation && a->revision == b->revision;
}

static void publish_reports(tr_service *s, const sl_tr_result *r)
{
    rc_item *seen = calloc(r->n_reports + 1, sizeof *seen);
    size_t k = 0; /* cursor in s->rcache */
    for (size_t i = 0; i < r->n_reports; i++) {
        const sl_tr_report *rp = &r->reports[i];
        rc_item c = rc_of(rp);
        bool same = false;
        /* as last time at this place, or one further (one went) */
        for (size_t d = 0; d < 2 && !same && k + d < s->n_rcache; d++)
            if (rc_same(&s->rcache[k + d], &c)) {
                same = true;
                k += d + 1;
            }
        if (same) {
            if (seen)
                seen[i] = c;
            continue;
        }
        Sluice__V1__Report m = SLUICE__V1__REPORT__INIT;
        Sluice__V1__ObjectRef ref = SLUICE__V1__OBJECT_REF__INIT;
        Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
        char subject[512], key[512], rv[32];
        uint8_t *buf;
        size_t len;
        written *w;
        struct timespec now;

        ref.kind = (char *)rp->kind->kind;
        ref.namespace_ = rp->ns;
        ref.name = rp->name;
        m.resource = &ref;
        m.source = "translator";
        m.state = (Sluice__V1__Status__State)rp->state;
        m.reason = rp->reason;
        m.warnings = rp->warnings;
        m.n_warnings = rp->n_warnings;
        m.resource_version = rp->resource_version[0] ? rp->resource_version : rv;
        snprintf(rv, sizeof rv, "%" PRIu64, rp->revision);
        m.generation = rp->generation;
        m.reporter_id = s->reporter_id;
        /* Unchanged reports are not sent again (no time in the comparison). */
        len = protobuf_c_message_get_packed_size(&m.base);
        if (!(buf = malloc(len ? len : 1)))
            continue;
        protobuf_c_message_pack(&m.base, buf);
        snprintf(key, sizeof key, "%s.%s.%s", rp->kind->kind, rp->ns, rp->name);
        w = wmap_get(&s->reports, key);
        if (w && w->len == len && memcmp(w->data, buf, len) == 0) {
            w->live = 1;
            free(buf);
            if (seen)
                seen[i] = c;
            continue;
        }
        clock_gettime(CLOCK_REALTIME, &now);
        ts.seconds = now.tv_sec;
        ts.nanos = (int32_t)now.tv_nsec;
        m.time = &ts;
        if (sl_resource_subject(subject, sizeof subject, "sluice.report.translator", rp->kind->kind, rp->ns,
                                rp->name) != SL_OK ||
            sl_envelope_publish_pb(s->nc, subject, &m.base, NULL) != SL_OK) {
            sl_log_warn(COMP, "could not publish a report", "resource=%s err=%s", sl_log_q(key),
                        sl_log_q(sl_error_msg()));
            free(buf);
            continue;
        }
        sl_counter_inc(s->m_reports);
        if ((w = wmap_put(&s->reports, key))) {
            free(w->data);
            w->data = buf;
            w->len = len;
            w->live = 1;
            if (seen)
                seen[i] = c;
        } else {
            free(buf);
        }
    }
    free(s->rcache);
    s->rcache = seen; /* a report not published stays zero: it never matches */
    s->n_rcache = seen ? r->n_reports : 0;
}

static void translate_task(void *ud)
{
    tr_service *s = ud;
    sl_tr_result *r = NULL;
    sl_tr_options to = {0};
    int64_t t0 = now_ms();
    double u0 = now_us(), u1, u2, u3, u4, waited;
    size_t n_res = 0;
    bool failed = false;

    bool incremental = false;

    to.settings_namespace = s->o.settings_namespace;
    to.route_parts_only = true; /* written in parts: the whole is never needed */
    to.defer_reports = true;    /* reports after the write: they do not gate the commit */
    pthread_mutex_lock(&s->mu);
    s->posted = 0;
    waited = u0 - s->first_change_us;
    /* Only endpoint sets changed: rebuild their ClusterLoadAssignments in
     * the last result, leaving listeners, routes and clusters alone. */
    if (s->last && !s->full_needed && s->n_eps > 0) {
        bool done = false;
        if (sl_tr_translate_endpoints(s->last, s->store, (const char *const *)s->eps_ns,
                                      (const char *const *)s->eps_name, s->n_eps, &to, &done, NULL) == SL_OK &&
            done)
            incremental = true;
    }
    clear_changes(s);
    pthread_mutex_unlock(&s->mu);
    if (incremental) {
        r = s->last;
    } else if (sl_tr_translate(&r, s->store, &to) != SL_OK) {
        sl_log_error(COMP, "translation failed", "err=%s", sl_log_q(sl_error_msg()));
        sl_counter_inc(s->m_errors);
        pthread_mutex_lock(&s->mu);
        s->full_needed = 1;
        pthread_mutex_unlock(&s->mu);
        mark_dirty(s);
        return;
    }
    u1 = now_us();
    if (s->o.may_write && !s->o.may_write(s->o.may_write_ud)) {
        sl_log_error(COMP, "not writing: this replica does not hold the lease any more", "proxies=%zu",
                     r->n_proxies);
        if (!incremental)
            sl_tr_result_free(r);
        sl_service_request_stop(s->svc, SL_EXIT_FAILURE);
        return;
    }
    s->n_named = 0;
    s->n_same = s->n_compared = 0;
    s->n_batches = s->n_mispredicted = 0;
    s->us_flush = s->us_commit = 0;
    for (size_t i = 0; i < r->n_proxies; i++)
        if (write_proxy(s, &r->proxies[i], &n_res) != SL_OK) {
            sl_log_error(COMP, "writing the xds bucket failed; retrying", "proxy=%s err=%s",
                         sl_log_q(r->proxies[i].name), sl_log_q(sl_error_msg()));
            failed = true;
        }
    write_gone_proxies(s, r);
    u2 = now_us();
    if (!failed)
        delete_stale(s);
    u3 = now_us();
    if (!incremental) {
        if (sl_tr_result_finish(r) != SL_OK) /* its reports, now the commit is out */
            sl_log_warn(COMP, "reports incomplete", "err=%s", sl_log_q(sl_error_msg()));
        publish_reports(s, r); /* an endpoint set changes no report */
    }
    u4 = now_us();
    sl_counter_inc(s->m_translations);
    sl_histogram_observe(s->m_duration, (double)(now_ms() - t0) / 1000.0);
    sl_gauge_set(s->m_resources, (double)n_res);
    sl_log_debug(COMP, "translated", "proxies=%zu resources=%zu incremental=%d ms=%" PRId64 " translate_ms=%.2f "
                 "write_ms=%.2f delete_ms=%.2f reports_ms=%.2f same=%zu compared=%zu batches=%zu mispredicted=%zu flush_ms=%.2f commit_ms=%.2f waited_ms=%.2f", r->n_proxies,
                 n_res, incremental, now_ms() - t0, (u1 - u0) / 1e3, (u2 - u1) / 1e3, (u3 - u2) / 1e3,
                 (u4 - u3) / 1e3, s->n_same, s->n_compared, s->n_batches, s->n_mispredicted, s->us_flush / 1e3,
                 s->us_commit / 1e3, waited / 1e3);
    if (!incremental) {
        sl_tr_result_free(s->last);
        s->last = r;
    }
    if (failed) {
        pthread_mutex_lock(&s->mu);
        s->full_needed = 1;
        pthread_mutex_unlock(&s->mu);
        sl_counter_inc(s->m_errors);
        mark_dirty(s);
    }
}

/* Reads what the xds bucket holds so an unchanged resource is not
 * rewritten after a restart. */
static sl_status load_xds(tr_service *s)
{
    sl_kv_watch *w = NULL;
    sl_status rc;
    if ((rc = sl_kv_watch_new(&w, s->kv_xds, NULL)) != SL_OK)
        return rc;
    for (;;) {
        sl_kv_entry e = {0};
        bool done = false;
        rc = sl_kv_watch_next(&e, &done, w, 10000);
        if (rc != SL_OK || done)
            break;
        if (e.op == SL_KV_PUT) {
            written *x = wmap_put(&s->xds, e.key);
            if (x) {
                free(x->data);
                x->data = malloc(e.len ? e.len : 1);
                if (x->data)
                    memcpy(x->data, e.value, e.len);
                x->len = x->data ? e.len : 0;
                x->rev = e.revision;
                if (!x->commit && (x->commit = strlen(e.key) > 7 &&
                                                strcmp(e.key + strlen(e.key) - 7, ".commit") == 0))
                    s->n_commits++;
                /* A proxy with a commit is one we may have to empty later. */
                if (e.len && x->commit) {
                    char tok[512], name[512];
                    snprintf(tok, sizeof tok, "%.*s", (int)(strlen(e.key) - 7), e.key);
                    if (sl_xds_key_unescape(name, sizeof name, tok) == SL_OK) {
                        char **v = realloc(s->proxies, (s->n_proxies + 1) * sizeof *v);
                        if (v) {
                            s->proxies = v;
                            if ((v[s->n_proxies] = strdup(name)))
                                s->n_proxies++;
                        }
                    }
                }
            }
        }
        sl_kv_entry_deinit(&e);
    }
    sl_kv_watch_free(w);
    return rc == SL_ERR_TIMEOUT ? sl_error_set(SL_ERR_TIMEOUT, "reading the xds bucket timed out") : rc;
}

sl_status tr_service_start(tr_service **out, sl_service *svc, sl_nats *nc, sl_loop *loop, const tr_service_opts *opts)
{
    tr_service *s = calloc(1, sizeof *s);
    sl_kv_config cfg;
    sl_kv_watch_handlers h = {on_entry, on_initial_done, on_failed};
    sl_metrics *reg = sl_service_metrics(svc);
    static const double bounds[] = {0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5};
    sl_status rc;

    *out = NULL;
    if (!s)
        return SL_ERR_NOMEM;
    s->svc = svc;
    s->nc = nc;
    s->loop = loop;
    s->o = *opts;
    /* The writes of one apply or one file reach the watch within a few ms
     * of each other: 10 ms of quiet still makes them one revision, and
     * adds 10 ms, not 100, to every change's way to Envoy. */
    if (s->o.debounce_ms <= 0)
        s->o.debounce_ms = 10;
    if (s->o.max_delay_ms <= 0)
        s->o.max_delay_ms = 1000;
    if (s->o.max_delay_ms < s->o.debounce_ms)
        s->o.max_delay_ms = s->o.debounce_ms * 10;
    if (!s->o.xds_bucket)
        s->o.xds_bucket = "sluice_xds";
    snprintf(s->reporter_id, sizeof s->reporter_id, "sluice-translator-%ld", (long)getpid());
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    if ((rc = sl_tr_store_new(&s->store)) != SL_OK)
        goto err;
    sl_metrics_counter(&s->m_translations, reg, "sluice_translator_translations_total", "Translations run.");
    sl_metrics_counter(&s->m_writes, reg, "sluice_translator_xds_writes_total", "Resources and commits written.");
    sl_metrics_counter(&s->m_deletes, reg, "sluice_translator_xds_deletes_total", "Stale resources deleted.");
    sl_metrics_counter(&s->m_reports, reg, "sluice_translator_reports_total", "Reports published.");
    sl_metrics_counter(&s->m_bad_input, reg, "sluice_translator_bad_input_total", "KV entries ignored as invalid.");
    sl_metrics_counter(&s->m_errors, reg, "sluice_translator_errors_total", "Translations or writes that failed.");
    sl_metrics_histogram(&s->m_duration, reg, "sluice_translator_duration_seconds", "Time to translate and write.",
                         bounds, sizeof bounds / sizeof *bounds);
    sl_metrics_gauge(&s->m_resources, reg, "sluice_translator_resources", "Envoy resources of the last translation.");

    sl_kv_config_init(&cfg, s->o.xds_bucket);
    cfg.history = 5; /* the xds server may fetch a revision a commit names */
    cfg.description = "Envoy resources per proxy, with a commit per proxy (sluice-translator)";
    if ((rc = sl_kv_open(&s->kv_xds, nc, &cfg)) != SL_OK || (rc = load_xds(s)) != SL_OK)
        goto err;
    sl_kv_config_init(&cfg, SL_BUCKET_CONFIG);
    if ((rc = sl_kv_open(&s->kv_config, nc, &cfg)) != SL_OK)
        goto err;
    sl_kv_config_init(&cfg, SL_BUCKET_SECRETS);
    if ((rc = sl_kv_open(&s->kv_secrets, nc, &cfg)) != SL_OK)
        goto err;
    sl_kv_config_init(&cfg, SL_BUCKET_ENDPOINTS);
    if ((rc = sl_kv_open(&s->kv_endpoints, nc, &cfg)) != SL_OK)
        goto err;
    if (pthread_create(&s->timer, NULL, timer_main, s) != 0) {
        rc = sl_error_set(SL_ERR_INTERNAL, "cannot start the debounce thread");
        goto err;
    }
    s->timer_started = 1;
    s->initial_pending = 3;
    if ((rc = sl_kv_watch_start(&s->w_config, s->kv_config, NULL, loop, &h, s)) != SL_OK ||
        (rc = sl_kv_watch_start(&s->w_secrets, s->kv_secrets, NULL, loop, &h, s)) != SL_OK ||
        (rc = sl_kv_watch_start(&s->w_endpoints, s->kv_endpoints, NULL, loop, &h, s)) != SL_OK)
        goto err;
    *out = s;
    return SL_OK;
err:
    tr_service_free(s);
    return rc;
}

void tr_service_free(tr_service *s)
{
    if (!s)
        return;
    sl_kv_watch_free(s->w_config);
    sl_kv_watch_free(s->w_secrets);
    sl_kv_watch_free(s->w_endpoints);
    if (s->timer_started) {
        pthread_mutex_lock(&s->mu);
        s->stop = 1;
        pthread_cond_signal(&s->cv);
        pthread_mutex_unlock(&s->mu);
        pthread_join(s->timer, NULL);
    }
    sl_loop_cancel(s->loop, s);
    sl_kv_free(s->kv_config);
    sl_kv_free(s->kv_secrets);
    sl_kv_free(s->kv_endpoints);
    sl_kv_free(s->kv_xds);
    sl_tr_store_free(s->store);
    sl_tr_result_free(s->last);
    clear_changes(s);
    free(s->eps_ns);
    free(s->eps_name);
    wmap_free(&s->xds);
    wmap_free(&s->reports);
    free(s->rcache);
    write_buf_free(&s->wb);
    wcache_free_all(s);
    free(s->batch);
    free(s->items);
    for (size_t i = 0; i < s->n_proxies; i++)
        free(s->proxies[i]);
    free(s->proxies);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s);
}
