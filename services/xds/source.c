/* source.c - KV -> cache (see source.h and docs/xds.md). */
#include "source.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/log.h"

typedef struct entry {
    struct entry *next;
    char *key;
    uint64_t rev;
    sl_xds_res *res; /* NULL when the value did not decode */
} entry;

typedef struct pending_commit {
    struct pending_commit *next;
    char *proxy_token;
    uint64_t rev;
    uint8_t *val;
    size_t len;
} pending_commit;

struct sl_xds_source {
    sl_xds_cache *cache;
    sl_xds_fetch_fn fetch;
    void *fetch_ud;
    entry **tab;
    size_t nbuckets, n;
    int initial_done;
    pending_commit *held;
    uint64_t commits, refused;
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
    free(e->key);
    free(e);
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
        free(p->proxy_token);
        free(p->val);
        free(p);
    }
    free(s->tab);
    free(s);
}

uint64_t sl_xds_source_commits(const sl_xds_source *s) { return s->commits; }
uint64_t sl_xds_source_refused(const sl_xds_source *s) { return s->refused; }

/* Splits "<a>.<b>[.<c>]" into tokens; returns their count (0 if > 3). */
static int split(char *buf, char **tok)
{
    int n = 0;
    for (char *p = buf, *t; (t = strsep(&p, "."));) {
        if (n == 3)
            return 0;
        tok[n++] = t;
    }
    return n;
}

static void apply_commit(sl_xds_source *s, const char *proxy_token, uint64_t kvrev, const uint8_t *val,
                         size_t len);

void sl_xds_source_put(sl_xds_source *s, const char *key, uint64_t rev, const uint8_t *val, size_t len)
{
    char buf[1024], *tok[3];
    int n;
    snprintf(buf, sizeof buf, "%s", key);
    if (strlen(key) >= sizeof buf || (n = split(buf, tok)) < 2) {
        sl_log_warn("source", "ignoring key", "key=%s", sl_log_q(key));
        return;
    }
    if (n == 2) {
        if (strcmp(tok[1], "commit") != 0) {
            sl_log_warn("source", "ignoring key", "key=%s", sl_log_q(key));
            return;
        }
        if (!s->initial_done) {
            /* Hold the latest commit of each proxy until every initial value is in. */
            pending_commit *p = s->held;
            while (p && strcmp(p->proxy_token, tok[0]) != 0)
                p = p->next;
            if (!p) {
                if (!(p = calloc(1, sizeof *p)) || !(p->proxy_token = strdup(tok[0]))) {
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
            return;
        }
        apply_commit(s, tok[0], rev, val, len);
        return;
    }
    sl_xds_type t;
    char name[1024];
    if (sl_xds_type_from_token(&t, tok[1]) != SL_OK || sl_xds_key_unescape(name, sizeof name, tok[2]) != SL_OK) {
        sl_log_warn("source", "ignoring key", "key=%s err=%s", sl_log_q(key), sl_log_q(sl_error_msg()));
        return;
    }
    char ver[24];
    snprintf(ver, sizeof ver, "%" PRIu64, rev);
    sl_xds_res *r = NULL;
    if (sl_xds_res_new(&r, t, name, ver, val ? val : (const uint8_t *)"", len) != SL_OK)
        sl_log_error("source", "bad resource value", "key=%s rev=%" PRIu64 " err=%s", sl_log_q(key), rev,
                     sl_log_q(sl_error_msg()));
    entry **e = slot(s, key);
    if (!*e) {
        entry *ne = calloc(1, sizeof *ne);
        if (!ne || !(ne->key = strdup(key))) {
            free(ne);
            sl_xds_res_unref(r);
            return;
        }
        *e = ne;
        s->n++;
        if (s->n > s->nbuckets)
            grow(s);
        e = slot(s, key);
    }
    sl_xds_res_unref((*e)->res);
    (*e)->res = r;
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
    size_t kl = strlen(key);
    if (kl > 7 && strcmp(key + kl - 7, ".commit") == 0)
        sl_log_warn("source", "commit deleted; the proxy keeps its last revision", "key=%s", sl_log_q(key));
}

void sl_xds_source_initial_done(sl_xds_source *s)
{
    s->initial_done = 1;
    pending_commit *p = s->held;
    s->held = NULL;
    while (p) {
        pending_commit *nx = p->next;
        apply_commit(s, p->proxy_token, p->rev, p->val, p->len);
        free(p->proxy_token);
        free(p->val);
        free(p);
        p = nx;
    }
}

/* The resource named by a commit: from the store at that revision, from the
 * proxy's current snapshot, or fetched from the bucket's history. */
static sl_status resolve(sl_xds_source *s, sl_xds_res **out, const sl_xds_snapshot *cur, sl_xds_type t,
                         const char *proxy_token, const char *name, uint64_t rev)
{
    char esc[768], key[1024], ver[24];
    sl_status rc;
    if ((rc = sl_xds_key_escape(esc, sizeof esc, name)) != SL_OK)
        return rc;
    snprintf(key, sizeof key, "%s.%s.%s", proxy_token, sl_xds_type_token(t), esc);
    snprintf(ver, sizeof ver, "%" PRIu64, rev);
    entry *e = *slot(s, key);
    if (e && e->rev == rev) {
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

static void apply_commit(sl_xds_source *s, const char *proxy_token, uint64_t kvrev, const uint8_t *val,
                         size_t len)
{
    char proxy[512];
    json_error_t jerr;
    json_t *root = NULL;
    sl_xds_snapshot *snap = NULL, *cur = NULL;
    sl_status rc = SL_OK;

    if (sl_xds_key_unescape(proxy, sizeof proxy, proxy_token) != SL_OK) {
        rc = SL_ERR_INVALID;
        goto out;
    }
    root = json_loadb((const char *)val, len, 0, &jerr);
    if (!root || !json_is_object(root)) {
        rc = sl_error_set(SL_ERR_PARSE, "commit of %s: %s at line %d column %d", proxy,
                          root ? "not a JSON object" : jerr.text, jerr.line, jerr.column);
        goto out;
    }
    json_t *jrev = json_object_get(root, "revision");
    uint64_t revision = json_is_integer(jrev) ? (uint64_t)json_integer_value(jrev) : kvrev;
    json_t *res = json_object_get(root, "resources");
    if (res && !json_is_object(res)) {
        rc = sl_error_set(SL_ERR_PARSE, "commit of %s: \"resources\" must be an object", proxy);
        goto out;
    }
    if ((rc = sl_xds_snapshot_new(&snap, proxy, revision)) != SL_OK)
        goto out;
    cur = sl_xds_cache_get(s->cache, proxy);
    const char *tname;
    json_t *names;
    json_object_foreach(res, tname, names)
    {
        sl_xds_type t;
        if ((rc = sl_xds_type_from_token(&t, tname)) != SL_OK || !json_is_object(names)) {
            rc = sl_error_set(SL_ERR_PARSE, "commit of %s: bad type \"%s\" (want secret, cluster, endpoint, "
                              "listener or route, each an object of name: revision)", proxy, tname);
            goto out;
        }
        const char *name;
        json_t *jr;
        json_object_foreach(names, name, jr)
        {
            sl_xds_res *r;
            if (!json_is_integer(jr) || json_integer_value(jr) <= 0) {
                rc = sl_error_set(SL_ERR_PARSE, "commit of %s: %s \"%s\": revision must be a positive integer",
                                  proxy, tname, name);
                goto out;
            }
            if ((rc = resolve(s, &r, cur, t, proxy_token, name, (uint64_t)json_integer_value(jr))) != SL_OK)
                goto out;
            rc = sl_xds_snapshot_add(snap, r);
            sl_xds_res_unref(r);
            if (rc != SL_OK)
                goto out;
        }
    }
    if ((rc = sl_xds_snapshot_seal(snap)) != SL_OK)
        goto out;
    sl_log_info("source", "commit", "proxy=%s revision=%" PRIu64 " clusters=%zu endpoints=%zu listeners=%zu "
                "routes=%zu secrets=%zu", sl_log_q(proxy), revision, snap->types[SL_XDS_CLUSTER].n,
                snap->types[SL_XDS_ENDPOINT].n, snap->types[SL_XDS_LISTENER].n, snap->types[SL_XDS_ROUTE].n,
                snap->types[SL_XDS_SECRET].n);
    s->commits++;
    sl_xds_cache_commit(s->cache, snap);
    snap = NULL;
out:
    if (rc != SL_OK) {
        s->refused++;
        sl_log_error("source", "commit refused; the previous revision keeps serving", "proxy=%s err=%s",
                     sl_log_q(proxy_token), sl_log_q(sl_error_msg()));
    }
    sl_xds_snapshot_unref(snap);
    sl_xds_snapshot_unref(cur);
    json_decref(root);
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
                             sl_xds_cache *cache, void (*ready)(void *ud), void *ud)
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
