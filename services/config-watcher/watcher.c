/* watcher.c - the cache of sluice_config, writes, deletes, directory syncs,
 * the apply API and the validation of direct KV writes (see watcher.h). */
#include "watcher.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "sluice/pbcheck.h"
#include "sluice/file.h"
#include "sluice/log.h"
#include "sluice/quarantine.h"
#include "sluice/types.h"
#include "sluice/v1/events.pb-c.h"
#include "sluice/vec.h"

struct cw_entry {
    char *key;
    uint8_t *val; /* NULL when deleted (a tombstone keeps the revision) */
    size_t len;
    uint64_t rev;
    uint64_t self_rev; /* revision this process wrote last */
    char *source;      /* the source annotation, NULL when none */
    cw_entry *next;
};

typedef struct cw_file {
    char *path;
    uint64_t hash;
    bool seen;
    char **rejected; /* keys of its documents last rejected */
    size_t n_rejected;
} cw_file;

/* ---- cache ----------------------------------------------------------- */

static uint64_t fnv1a(const void *p, size_t n)
{
    const unsigned char *b = p;
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 1099511628211ULL;
    }
    return h;
}

static cw_entry *cache_find(cw *w, const char *key)
{
    for (cw_entry *e = w->tab[fnv1a(key, strlen(key)) % w->nbuckets]; e; e = e->next)
        if (strcmp(e->key, key) == 0)
            return e;
    return NULL;
}

static cw_entry *cache_live(cw *w, const char *key)
{
    cw_entry *e = cache_find(w, key);
    return e && e->val ? e : NULL;
}

static char *source_of(const sl_kind *k, const uint8_t *val, size_t len)
{
    char *src = NULL;
    if (!k)
        return NULL;
    ProtobufCMessage *m = NULL;
    if (sl_pb_unpack(&m, k->descriptor, NULL, val, len) != SL_OK)
        return NULL;
    const char *s = sl_kind_annotation(sl_kind_metadata(m), SL_CFG_SOURCE_ANNOTATION);
    if (s)
        src = strdup(s);
    protobuf_c_message_free_unpacked(m, NULL);
    return src;
}

static const sl_kind *kind_of_key(const char *key, sl_resource_id *id)
{
    if (sl_resource_key_parse(id, key, 1) != SL_OK)
        return NULL;
    const sl_kind *k = sl_kind_by_name(id->kind);
    return k && strcmp(k->bucket, SL_BUCKET_CONFIG) == 0 ? k : NULL;
}

/* Records a put (val != NULL) or a delete of key at rev, unless the cache
 * already knows a newer revision. */
static void cache_set(cw *w, const char *key, const uint8_t *val, size_t len, uint64_t rev,
                      bool self)
{
    cw_entry *e = cache_find(w, key);
    if (e && rev && e->rev > rev)
        return; /* a stale event: our own later write is already recorded */
    if (!e) {
        if (!val)
            return;
        e = calloc(1, sizeof(*e));
        if (!e || !(e->key = strdup(key))) {
            free(e);
            return;
        }
        size_t b = fnv1a(key, strlen(key)) % w->nbuckets;
        e->next = w->tab[b];
        w->tab[b] = e;
    }
    if (e->val)
        w->live--;
    free(e->val);
    free(e->source);
    e->val = NULL;
    e->source = NULL;
    e->len = 0;
    e->rev = rev;
    if (val) {
        e->val = malloc(len ? len : 1);
        if (e->val) {
            memcpy(e->val, val, len);
            e->len = len;
            w->live++;
            sl_resource_id id;
            e->source = source_of(kind_of_key(key, &id), val, len);
        }
    }
    if (self)
        e->self_rev = rev;
    sl_gauge_set(w->m_resources, (double)w->live);
}

sl_status cw_init(cw *w, sl_service *svc, sl_nats *nc, sl_loop *loop, sl_kv *kv)
{
    sl_status rc = cw_init_offline(w, sl_service_metrics(svc));
    w->svc = svc;
    w->nc = nc;
    w->loop = loop;
    w->kv = kv;
    return rc;
}

sl_status cw_init_offline(cw *w, sl_metrics *m)
{
    memset(w, 0, sizeof(*w));
    w->nbuckets = 4096;
    w->tab = calloc(w->nbuckets, sizeof(*w->tab));
    if (!w->tab)
        return SL_ERR_NOMEM;
    sl_arena_init(&w->arena, 0);
    const struct {
        sl_counter **c;
        const char *name, *help;
    } counters[] = {
        {&w->m_written, "sluice_config_watcher_writes_total", "Resources written to the config KV."},
        {&w->m_unchanged, "sluice_config_watcher_unchanged_total", "Resources already stored with the same bytes."},
        {&w->m_deleted, "sluice_config_watcher_deletes_total", "Resources deleted from the config KV."},
        {&w->m_rejected, "sluice_config_watcher_rejected_total", "Resources rejected (files and apply API)."},
        {&w->m_api, "sluice_config_watcher_api_requests_total", "Apply and delete API requests."},
        {&w->m_syncs, "sluice_config_watcher_dir_syncs_total", "Directory syncs."},
        {&w->m_kv_invalid, "sluice_config_watcher_kv_invalid_total",
         "Invalid values written directly into the config KV."},
    };
    for (size_t i = 0; i < sizeof counters / sizeof counters[0]; i++)
        if (sl_metrics_counter(counters[i].c, m, counters[i].name, counters[i].help) != SL_OK)
            return SL_ERR_NOMEM;
    if (sl_metrics_gauge(&w->m_resources, m, "sluice_config_watcher_resources", "Resources in the config KV.") !=
        SL_OK)
        return SL_ERR_NOMEM;
    return SL_OK;
}

static void file_free(cw_file *f)
{
    for (size_t i = 0; i < f->n_rejected; i++)
        free(f->rejected[i]);
    free(f->rejected);
    free(f->path);
}

void cw_deinit(cw *w)
{
    for (size_t i = 0; w->tab && i < w->nbuckets; i++) {
        for (cw_entry *e = w->tab[i], *n; e; e = n) {
            n = e->next;
            free(e->key);
            free(e->val);
            free(e->source);
            free(e);
        }
    }
    free(w->tab);
    for (size_t i = 0; i < w->nfiles; i++)
        file_free(&w->files[i]);
    free(w->files);
    sl_arena_deinit(&w->arena);
    w->tab = NULL;
}

/* ---- reports ------------------------------------------------------------ */

static void withdraw_rejected(cw *w, cw_file *f, const sl_cfg_set *set);

/* Publishes r about kind/ns/name (or, without a name, about a file) on
 * sluice.report.config-watcher.<kind>.<ns>.<name>, stamped with the time. */
static void send_report(cw *w, Sluice__V1__Report *r, const char *kind, const char *ns, const char *name)
{
    Sluice__V1__ObjectRef ref = SLUICE__V1__OBJECT_REF__INIT;
    Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
    struct timespec now;
    char subject[512];

    if (!w->nc)
        return; /* offline (cw_init_offline) */
    clock_gettime(CLOCK_REALTIME, &now);
    ts.seconds = now.tv_sec;
    ts.nanos = (int32_t)now.tv_nsec;
    r->source = CW_REPORT_SOURCE;
    r->time = &ts;
    if (kind && ns && name && name[0] &&
        sl_resource_subject(subject, sizeof(subject), "sluice.report." CW_REPORT_SOURCE, kind, ns,
                            name) == SL_OK) {
        ref.kind = (char *)kind;
        ref.namespace_ = (char *)ns;
        ref.name = (char *)name;
        r->resource = &ref;
    } else {
        snprintf(subject, sizeof(subject), "%s", CW_FILE_REPORT_SUBJECT);
    }
    if (sl_envelope_publish_pb(w->nc, subject, &r->base, NULL) != SL_OK)
        sl_log_warn("report", "publish failed", "subject=%s err=%s", subject,
                    sl_log_q(sl_error_msg()));
}

/* A report about the stored revision config_rev of a resource, or about a
 * proposal that failed to replace it (0: nothing stored). */
static void publish_report(cw *w, const char *kind, const char *ns, const char *name, int state,
                           const char *reason, char **warnings, size_t nwarn, uint64_t config_rev)
{
    Sluice__V1__Report r = SLUICE__V1__REPORT__INIT;
    char rv[24];

    snprintf(rv, sizeof(rv), "%" PRIu64, config_rev);
    r.state = state;
    r.reason = (char *)(reason ? reason : "");
    r.warnings = warnings;
    r.n_warnings = nwarn;
    r.resource_version = rv;
    send_report(w, &r, kind, ns, name);
}

/* Takes back what this service reported on a resource: a rejected
 * proposal is void once the resource is deleted or its stored version is
 * applied again. */
static void withdraw_report(cw *w, const char *kind, const char *ns, const char *name)
{
    Sluice__V1__Report r = SLUICE__V1__REPORT__INIT;
    r.withdrawn = true;
    send_report(w, &r, kind, ns, name);
}

/* The revision stored under key, 0 when none. */
static uint64_t stored_rev(cw *w, const char *key)
{
    cw_entry *e = key && key[0] ? cache_live(w, key) : NULL;
    return e ? e->rev : 0;
}

/* Reports a resource of r rejected: the reasons, and what keeps serving. */
static void report_rejected(cw *w, const sl_cfg_res *r)
{
    uint64_t rev = stored_rev(w, r->key);
    char *reason = sl_cfg_diag_join(&r->diag, SL_DIAG_ERROR, "; ");
    char *full = NULL;
    if (rev && reason && (full = malloc(strlen(reason) + 64)))
        sprintf(full, "%s (not stored; revision %" PRIu64 " keeps serving)", reason, rev);
    publish_report(w, r->kind ? r->kind->kind : NULL, r->ns, r->key[0] ? r->name : NULL,
                   SLUICE__V1__STATUS__STATE__Rejected, full ? full : reason, NULL, 0, rev);
    free(full);
    free(reason);
}

/* Withdraws the rejections of f's documents that set (NULL: the file is
 * gone) no longer rejects, and remembers those it does. */
static void withdraw_rejected(cw *w, cw_file *f, const sl_cfg_set *set)
{
    char **now = NULL;
    size_t n = 0, cap = 0;
    for (size_t i = 0; set && i < set->n; i++) {
        const sl_cfg_res *r = &set->items[i];
        if (!r->key[0] || !sl_diag_errors(&r->diag) || SL_VEC_RESERVE(now, cap, n + 1) != SL_OK)
            continue;
        if ((now[n] = strdup(r->key)))
            n++;
    }
    for (size_t i = 0; i < f->n_rejected; i++) {
        bool still = false;
        sl_resource_id id;
        for (size_t j = 0; j < n && !still; j++)
            still = strcmp(now[j], f->rejected[i]) == 0;
        if (!still && kind_of_key(f->rejected[i], &id))
            withdraw_report(w, id.kind, id.ns, id.name);
        free(f->rejected[i]);
    }
    free(f->rejected);
    f->rejected = now;
    f->n_rejected = n;
}

/* Each item of d with severity sev as a string in the arena. */
static char **diag_strings(sl_arena *a, const sl_diag *d, sl_diag_severity sev, size_t *n)
{
    size_t cnt = sev == SL_DIAG_ERROR ? sl_diag_errors(d) : sl_diag_warnings(d);
    char **out = sl_arena_alloc(a, (cnt ? cnt : 1) * sizeof(char *));
    *n = 0;
    if (!out)
        return NULL;
    for (size_t i = 0; i < sl_diag_count(d) && *n < cnt; i++) {
        const sl_diag_item *it = sl_diag_get(d, i);
        if (it->severity != sev)
            continue;
        sl_diag one;
        sl_diag_init(&one);
        sl_diag_add(&one, sev, it->file, it->line, it->column, it->path, "%s", it->message);
        char *s = sl_cfg_diag_join(&one, sev, "");
        sl_diag_deinit(&one);
        if (s) {
            out[(*n)++] = sl_arena_strdup(a, s);
            free(s);
        }
    }
    return out;
}

static void log_diag(const char *what, const sl_diag *d)
{
    for (size_t i = 0; i < sl_diag_count(d); i++) {
        char line[2048];
        const sl_diag_item *it = sl_diag_get(d, i);
        sl_diag_format(line, sizeof(line), it);
        if (it->severity == SL_DIAG_ERROR)
            sl_log_warn("config", "invalid resource", "source=%s diag=%s", sl_log_q(what),
                        sl_log_q(line));
        else
            sl_log_info("config", "warning", "source=%s diag=%s", sl_log_q(what), sl_log_q(line));
    }
}

/* ---- validation against the store --------------------------------------- */

typedef struct refs_ctx {
    cw *w;
    sl_cfg_set *set;
    sl_cfg_res *r;
} refs_ctx;

static bool set_has(const sl_cfg_set *s, const char *key)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->items[i].msg && strcmp(s->items[i].key, key) == 0)
            return true;
    return false;
}

static void ref_exists(void *ud, const sl_kind *kind, const char *ns, const char *name,
                       const char *path)
{
    refs_ctx *c = ud;
    char key[SL_RESOURCE_KEY_MAX];
    if (strcmp(kind->bucket, SL_BUCKET_CONFIG) != 0)
        return; /* secrets live in another bucket, checked by the translator */
    if (sl_kind_key(key, sizeof(key), kind, ns, name) != SL_OK)
        return; /* sl_cfg_check() reported the bad name */
    if (!cache_live(c->w, key) && !set_has(c->set, key))
        sl_diag_add(&c->r->diag, SL_DIAG_WARNING, c->r->file, c->r->line, 0, path,
                    "%s.%s references %s %s/%s, which does not exist (yet)", c->r->kind->kind,
                    path, kind->kind, ns, name);
}

void cw_cache_foreach(cw *w, void (*fn)(const char *key, const uint8_t *val, size_t len, uint64_t rev, void *ud),
                      void *ud)
{
    for (size_t b = 0; b < w->nbuckets; b++)
        for (cw_entry *e = w->tab[b]; e; e = e->next)
            if (e->val)
                fn(e->key, e->val, e->len, e->rev, ud);
}

/* Checks every item of set: shape, references, then the dry-run hook. */
static void validate_set(cw *w, sl_cfg_set *set)
{
    for (size_t i = 0; i < set->n; i++)
        sl_cfg_check(&set->items[i]);
    for (size_t i = 0; i < set->n; i++) {
        sl_cfg_res *r = &set->items[i];
        if (r->msg && sl_diag_errors(&r->diag) == 0) {
            refs_ctx c = {w, set, r};
            sl_cfg_refs(r->msg, r->ns, ref_exists, &c);
        }
    }
    if (w->dry_run)
        w->dry_run(w, set, w->dry_run_ud);
}

/* ---- writes --------------------------------------------------------------- */

typedef struct cw_result {
    bool unchanged;
    bool created;
    bool store_failed; /* valid, but the KV write failed: retry later */
    uint64_t rev;
    int64_t generation;
} cw_result;

static ProtobufCMessage **status_slot(ProtobufCMessage *m)
{
    const ProtobufCFieldDescriptor *f =
        protobuf_c_message_descriptor_get_field(m->descriptor, SL_KIND_FIELD_STATUS);
    return f ? (ProtobufCMessage **)((char *)m + f->offset) : NULL;
}

static uint8_t *pack(const ProtobufCMessage *m, size_t *len)
{
    *len = m ? protobuf_c_message_get_packed_size(m) : 0;
    uint8_t *b = malloc(*len ? *len : 1);
    if (b && m)
        protobuf_c_message_pack(m, b);
    return b;
}

/* Offline (cw_init_offline: no KV), the cache stands for the bucket: a
 * write or delete gets the next revision, or SL_ERR_CONFLICT when want is
 * set and is not the key's revision. */
static sl_status offline_write(cw *w, uint64_t *rev, const char *key, uint64_t want)
{
    cw_entry *e = cache_find(w, key);
    if (want && (!e || e->rev != want))
        return sl_error_set(SL_ERR_CONFLICT, "wrong last sequence");
    *rev = ++w->offline_rev;
    return SL_OK;
}

/* Stores one checked, error-free resource with the source annotation.
 * Errors (CAS conflict, KV failure) go to r->diag. */
static void write_res(cw *w, sl_cfg_res *r, const char *source, bool dry_run, cw_result *out)
{
    ProtobufCMessage *m = r->msg;
    Sluice__V1__Metadata *md = (Sluice__V1__Metadata *)sl_kind_metadata(m);
    uint64_t want = 0;
    uint8_t *buf = NULL, *spec_new = NULL, *spec_old = NULL;
    size_t len, ln, lo;
    sl_arena a;

    sl_arena_init(&a, 0);
    memset(out, 0, sizeof(*out));
    if (md->resource_version && md->resource_version[0]) {
        char *end;
        errno = 0;
        want = strtoull(md->resource_version, &end, 10);
        if (errno || *end || want == 0) {
            sl_diag_add(&r->diag, SL_DIAG_ERROR, r->file, r->line, 0, "metadata.resourceVersion",
                        "%s.metadata.resourceVersion: \"%s\" is not a revision (leave it empty "
                        "to overwrite)",
                        r->kind->kind, md->resource_version);
            goto out;
        }
    }
    /* What Sluice owns in a stored resource: resourceVersion comes from the
     * KV revision, generation from spec changes, status from the reporter. */
    if (sl_cfg_set_string(&md->resource_version, "") != SL_OK ||
        sl_cfg_set_annotation(md, SL_CFG_SOURCE_ANNOTATION, source) != SL_OK)
        goto nomem;
    ProtobufCMessage **st = status_slot(m);
    if (st && *st) {
        protobuf_c_message_free_unpacked(*st, NULL);
        *st = NULL;
    }
    cw_entry *e = cache_live(w, r->key);
    int64_t gen = 1;
    if (e) {
        ProtobufCMessage *old = NULL;
        if (sl_arena_unpack(&old, &a, r->kind->descriptor, e->val, e->len) == SL_OK) {
            const Sluice__V1__Metadata *omd = sl_kind_metadata(old);
            gen = omd && omd->generation > 0 ? omd->generation : 1;
            spec_new = pack(sl_kind_spec(m), &ln);
            spec_old = pack(sl_kind_spec(old), &lo);
            if (!spec_new || !spec_old)
                goto nomem;
            if (ln != lo || memcmp(spec_new, spec_old, ln) != 0)
                gen++;
        }
        if (want && e->rev != want) {
            sl_diag_add(&r->diag, SL_DIAG_ERROR, r->file, r->line, 0, "metadata.resourceVersion",
                        "%s %s/%s has been modified: resourceVersion is %" PRIu64
                        ", not %" PRIu64 "; get it again and retry",
                        r->kind->kind, r->ns, r->name, e->rev, want);
            goto out;
        }
    } else if (want) {
        sl_diag_add(&r->diag, SL_DIAG_ERROR, r->file, r->line, 0, "metadata.resourceVersion",
                    "%s %s/%s does not exist, so resourceVersion %" PRIu64 " cannot match",
                    r->kind->kind, r->ns, r->name, want);
        goto out;
    }
    md->generation = gen;
    out->generation = gen;
    /* Identical content under another source stays as it is: applying
     * what `sluicectl get -o yaml` printed is "unchanged", and a file keeps
     * owning what it declares. */
    if (e && e->source) {
        if (sl_cfg_set_annotation(md, SL_CFG_SOURCE_ANNOTATION, e->source) != SL_OK ||
            !(buf = pack(m, &len)))
            goto nomem;
        if (e->len == len && memcmp(e->val, buf, len) == 0) {
            out->unchanged = true;
            out->rev = e->rev;
            sl_counter_inc(w->m_unchanged);
            goto out;
        }
        free(buf);
        buf = NULL;
        if (sl_cfg_set_annotation(md, SL_CFG_SOURCE_ANNOTATION, source) != SL_OK)
            goto nomem;
    }
    if (!(buf = pack(m, &len)))
        goto nomem;
    if (e && e->len == len && memcmp(e->val, buf, len) == 0) {
        out->unchanged = true;
        out->rev = e->rev;
        sl_counter_inc(w->m_unchanged);
        goto out;
    }
    out->created = !e;
    if (dry_run)
        goto out;
    if (w->kv && !sl_nats_is_connected(w->nc)) {
        /* Fail at once rather than wait a request timeout per resource. */
        out->store_failed = true;
        sl_diag_add(&r->diag, SL_DIAG_ERROR, r->file, r->line, 0, "",
                    "storing %s failed: NATS is unreachable; nothing was stored, retry later", r->key);
        goto out;
    }
    sl_status rc = !w->kv ? offline_write(w, &out->rev, r->key, want)
                   : want ? sl_kv_update(&out->rev, w->kv, r->key, buf, len, want)
                          : sl_kv_put(&out->rev, w->kv, r->key, buf, len);
    if (rc != SL_OK) {
        out->store_failed = rc != SL_ERR_CONFLICT;
        sl_diag_add(&r->diag, SL_DIAG_ERROR, r->file, r->line, 0, "",
                    "storing %s failed: %s", r->key,
                    rc == SL_ERR_CONFLICT ? "it was modified meanwhile; retry" : sl_error_msg());
        goto out;
    }
    cache_set(w, r->key, buf, len, out->rev, true);
    sl_counter_inc(w->m_written);
    sl_log_info("config", out->created ? "created" : "configured", "key=%s rev=%" PRIu64
                " generation=%" PRId64 " source=%s", r->key, out->rev, gen, sl_log_q(source));
    goto out;
nomem:
    sl_diag_add(&r->diag, SL_DIAG_ERROR, r->file, r->line, 0, "", "out of memory");
out:
    /* What is stored was applied again: a proposal rejected meanwhile is void. */
    if (out->unchanged && !dry_run)
        withdraw_report(w, r->kind->kind, r->ns, r->name);
    free(buf);
    free(spec_new);
    free(spec_old);
    sl_arena_deinit(&a);
}

/* Deletes key when its entry's source is only_source (NULL: any). */
static sl_status remove_key(cw *w, const char *key, const char *only_source, bool dry_run)
{
    cw_entry *e = cache_live(w, key);
    uint64_t rev = 0;
    if (!e)
        return SL_ERR_NOT_FOUND;
    if (only_source && (!e->source || strcmp(e->source, only_source) != 0))
        return SL_ERR_CONFLICT;
    if (dry_run)
        return SL_OK;
    if (w->kv && !sl_nats_is_connected(w->nc)) {
        sl_log_warn("config", "delete failed", "key=%s err=%s", key, sl_log_q("NATS is unreachable"));
        return sl_error_set(SL_ERR_CLOSED, "deleting %s: NATS is unreachable; nothing was deleted, retry later",
                            key);
    }
    sl_status rc = w->kv ? sl_kv_delete(&rev, w->kv, key, e->rev) : offline_write(w, &rev, key, e->rev);
    if (rc != SL_OK) {
        sl_log_warn("config", "delete failed", "key=%s err=%s", key, sl_log_q(sl_error_msg()));
        return rc;
    }
    sl_counter_inc(w->m_deleted);
    sl_log_info("config", "deleted", "key=%s rev=%" PRIu64 " source=%s", key, rev,
                sl_log_q(only_source ? only_source : "api"));
    cache_set(w, key, NULL, 0, rev, true);
    return SL_OK;
}

/* ---- directories --------------------------------------------------------- */

static cw_file *file_find(cw *w, const char *path)
{
    for (size_t i = 0; i < w->nfiles; i++)
        if (strcmp(w->files[i].path, path) == 0)
            return &w->files[i];
    return NULL;
}

static cw_file *file_add(cw *w, const char *path)
{
    cw_file *f = file_find(w, path);
    if (f)
        return f;
    if (SL_VEC_RESERVE(w->files, w->capfiles, w->nfiles + 1) != SL_OK)
        return NULL;
    f = &w->files[w->nfiles];
    f->path = strdup(path);
    if (!f->path)
        return NULL;
    f->hash = 0;
    f->seen = false;
    f->rejected = NULL;
    f->n_rejected = 0;
    w->nfiles++;
    return f;
}

static bool config_file_name(const char *n)
{
    size_t l = strlen(n);
    if (n[0] == '.' || n[0] == '#' || (l && n[l - 1] == '~'))
        return false; /* hidden files and editor temporaries */
    return (l > 5 && strcmp(n + l - 5, ".yaml") == 0) || (l > 4 && strcmp(n + l - 4, ".yml") == 0) ||
           (l > 5 && strcmp(n + l - 5, ".json") == 0);
}

/* Applies one file: every valid document is stored; resources the file
 * owned and no longer declares are deleted (unless a syntax error hid part
 * of the file). The file counts as synced (its hash recorded) only when
 * every KV write and delete of it succeeded; false otherwise, and the next
 * sync (cw_sync_dir's retry) applies it again. */
static bool sync_file(cw *w, cw_file *f)
{
    bool landed = true;
    size_t len;
    char *text;
    char source[4200 + 300];
    sl_cfg_set set;

    if (sl_file_read(&text, &len, f->path) != SL_OK) {
        sl_log_warn("files", "cannot read", "path=%s err=%s", sl_log_q(f->path), sl_log_q(sl_error_msg()));
        return true;
    }
    uint64_t h = fnv1a(text, len);
    if (f->hash == h) {
        free(text);
        return true; /* unchanged since the last sync */
    }
    snprintf(source, sizeof(source), "file:%s", f->path);
    sl_cfg_set_init(&set);
    sl_cfg_set_decode_text(&set, text, len, f->path);
    free(text);
    validate_set(w, &set);
    if (sl_diag_count(&set.diag)) {
        log_diag(f->path, &set.diag);
        char *reason = sl_cfg_diag_join(&set.diag, SL_DIAG_ERROR, "; ");
        publish_report(w, NULL, NULL, NULL, SLUICE__V1__STATUS__STATE__Rejected, reason, NULL, 0, 0);
        free(reason);
    }
    for (size_t i = 0; i < set.n; i++) {
        sl_cfg_res *r = &set.items[i];
        cw_result res;
        memset(&res, 0, sizeof res);
        if (sl_diag_errors(&r->diag) == 0 && r->msg)
            write_res(w, r, source, false, &res);
        if (res.store_failed) {
            landed = false;
            if (sl_diag_count(&r->diag))
                log_diag(f->path, &r->diag);
            continue; /* not a rejection: it is retried */
        }
        if (sl_diag_count(&r->diag))
            log_diag(f->path, &r->diag);
        if (sl_diag_errors(&r->diag)) {
            sl_counter_inc(w->m_rejected);
            report_rejected(w, r);
        }
    }
    if (!set.truncated) /* else some documents are not known: keep what was */
        withdraw_rejected(w, f, &set);
    if (!set.truncated) {
        /* Keys of this file that no document claims any more. */
        char **gone = NULL;
        size_t ngone = 0, capgone = 0;
        for (size_t b = 0; b < w->nbuckets; b++)
            for (cw_entry *e = w->tab[b]; e; e = e->next) {
                if (!e->val || !e->source || strcmp(e->source, source) != 0)
                    continue;
                bool claimed = false;
                for (size_t i = 0; i < set.n && !claimed; i++)
                    claimed = strcmp(set.items[i].key, e->key) == 0;
                if (!claimed) {
                    if (SL_VEC_RESERVE(gone, capgone, ngone + 1) != SL_OK)
                        break;
                    gone[ngone++] = strdup(e->key);
                }
            }
        for (size_t i = 0; i < ngone; i++) {
            if (gone[i] && remove_key(w, gone[i], source, false) == SL_ERR_CLOSED)
                landed = false;
            free(gone[i]);
        }
        free(gone);
    }
    sl_cfg_set_deinit(&set);
    if (landed)
        f->hash = h;
    else
        sl_log_warn("files", "not synced: will retry", "path=%s", sl_log_q(f->path));
    return landed;
}

/* After a sync that could not store everything: the next one after a
 * backoff (CW_RETRY_MIN_MS doubling to CW_RETRY_MAX_MS), which the
 * inotify thread posts; a complete sync resets it. */
static void schedule_retry(cw_dir *d, bool landed)
{
    struct timespec ts;
    int64_t now;

    if (landed) {
        d->retry_backoff_ms = 0;
        atomic_store(&d->retry_at_ms, 0);
        return;
    }
    clock_gettime(CLOCK_MONOTONIC, &ts);
    now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    d->retry_backoff_ms = d->retry_backoff_ms ? d->retry_backoff_ms * 2 : CW_RETRY_MIN_MS;
    if (d->retry_backoff_ms > CW_RETRY_MAX_MS)
        d->retry_backoff_ms = CW_RETRY_MAX_MS;
    atomic_store(&d->retry_at_ms, now + d->retry_backoff_ms);
    sl_log_info("files", "sync incomplete: retrying", "dir=%s retry_ms=%lld", sl_log_q(d->path),
                (long long)d->retry_backoff_ms);
}

void cw_sync_dir(cw *w, cw_dir *d)
{
    DIR *dp = opendir(d->path);
    char prefix[4200];
    size_t plen;
    bool landed = true;

    sl_counter_inc(w->m_syncs);
    if (!dp) {
        sl_log_warn("files", "cannot open directory", "dir=%s err=%s", sl_log_q(d->path),
                    sl_log_q(strerror(errno)));
        return; /* keep what is stored: a vanished mount must not wipe the config */
    }
    plen = (size_t)snprintf(prefix, sizeof(prefix), "%s/", d->path);
    for (size_t i = 0; i < w->nfiles; i++)
        if (strncmp(w->files[i].path, prefix, plen) == 0)
            w->files[i].seen = false;
    for (struct dirent *de; (de = readdir(dp));) {
        char path[4200 + 256];
        struct stat sb;
        if (!config_file_name(de->d_name))
            continue;
        snprintf(path, sizeof(path), "%s%s", prefix, de->d_name);
        if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode))
            continue;
        cw_file *f = file_add(w, path);
        if (!f)
            continue;
        f->seen = true;
        if (!sync_file(w, f))
            landed = false;
    }
    closedir(dp);

    /* Resources of files that are gone: from the KV state, so that a file
     * deleted while the service was down is noticed too. */
    char **gone = NULL;
    size_t ngone = 0, capgone = 0;
    for (size_t b = 0; b < w->nbuckets; b++)
        for (cw_entry *e = w->tab[b]; e; e = e->next) {
            if (!e->val || !e->source || strncmp(e->source, "file:", 5) != 0)
                continue;
            const char *p = e->source + 5;
            if (strncmp(p, prefix, plen) != 0 || strchr(p + plen, '/'))
                continue;
            cw_file *f = file_find(w, p);
            if (f && f->seen)
                continue;
            if (SL_VEC_RESERVE(gone, capgone, ngone + 1) != SL_OK)
                break;
            gone[ngone++] = strdup(e->key);
        }
    for (size_t i = 0; i < ngone; i++) {
        cw_entry *e = gone[i] ? cache_live(w, gone[i]) : NULL;
        if (e && e->source) {
            char src[4200];
            snprintf(src, sizeof(src), "%s", e->source);
            if (remove_key(w, gone[i], src, false) == SL_ERR_CLOSED)
                landed = false;
        }
        free(gone[i]);
    }
    free(gone);
    schedule_retry(d, landed);
    /* Forget files that are gone, so a file created again is read again. */
    for (size_t i = 0; i < w->nfiles;) {
        if (strncmp(w->files[i].path, prefix, plen) == 0 && !w->files[i].seen) {
            withdraw_rejected(w, &w->files[i], NULL);
            file_free(&w->files[i]);
            w->files[i] = w->files[--w->nfiles];
        } else {
            i++;
        }
    }
}

/* ---- direct KV writes ------------------------------------------------------ */

void cw_on_kv_entry(sl_kv_watch *wt, const sl_kv_entry *e, void *ud)
{
    cw *w = ud;
    (void)wt;
    if (e->op != SL_KV_PUT) {
        cache_set(w, e->key, NULL, 0, e->revision, false);
        return;
    }
    cw_entry *old = cache_find(w, e->key);
    bool ours = old && old->self_rev == e->revision;
    cache_set(w, e->key, e->value ? e->value : (const uint8_t *)"", e->len, e->revision, false);
    if (ours)
        return;

    /* Someone wrote the KV directly: validate what they wrote. */
    sl_resource_id id;
    sl_cfg_set set;
    const sl_kind *k = kind_of_key(e->key, &id);
    const char *bad = NULL;
    char why[600];

    sl_cfg_set_init(&set);
    if (!k) {
        snprintf(why, sizeof(why), "key %s is not <Kind>.<namespace>.<name> of a configuration kind",
                 e->key);
        bad = why;
    } else {
        ProtobufCMessage *m = NULL;
        if (sl_pb_unpack(&m, k->descriptor, NULL, e->value, e->len) != SL_OK) {
            snprintf(why, sizeof(why), "value of %s is not a packed %s: %s", e->key,
                     k->descriptor->name, sl_error_msg());
            bad = why;
        } else if (sl_cfg_set_add_msg(&set, k, m) == SL_OK) {
            sl_cfg_res *r = &set.items[0];
            validate_set(w, &set);
            if (sl_diag_errors(&r->diag) == 0 &&
                (strcmp(r->ns, id.ns) != 0 || strcmp(r->name, id.name) != 0))
                sl_diag_add(&r->diag, SL_DIAG_ERROR, NULL, 0, 0, "metadata",
                            "%s: metadata names %s/%s but the key names %s/%s", e->key, r->ns,
                            r->name, id.ns, id.name);
        }
    }
    if (bad && k) {
        /* does not decode: quarantined as every service does (sluice/quarantine.h) */
        sl_quarantine q = {w->nc, CW_REPORT_SOURCE, w->svc ? sl_service_metrics(w->svc) : NULL};
        sl_counter_inc(w->m_kv_invalid);
        sl_quarantine_value(&q, SL_BUCKET_CONFIG, e->key, e->revision, bad);
    } else if (bad) {
        sl_counter_inc(w->m_kv_invalid);
        sl_log_warn("kv", "invalid value", "key=%s rev=%" PRIu64 " reason=%s", sl_log_q(e->key),
                    e->revision, sl_log_q(bad));
        publish_report(w, NULL, id.ns, NULL, SLUICE__V1__STATUS__STATE__Rejected, bad, NULL, 0, e->revision);
    } else if (set.n) {
        sl_cfg_res *r = &set.items[0];
        size_t nw = 0;
        char **warn = diag_strings(&w->arena, &r->diag, SL_DIAG_WARNING, &nw);
        char *reason = sl_cfg_diag_join(&r->diag, SL_DIAG_ERROR, "; ");
        int state = reason ? SLUICE__V1__STATUS__STATE__Rejected
                    : nw   ? SLUICE__V1__STATUS__STATE__Warning
                           : SLUICE__V1__STATUS__STATE__Accepted;
        if (reason) {
            sl_counter_inc(w->m_kv_invalid);
            sl_log_warn("kv", "invalid value", "key=%s rev=%" PRIu64 " reason=%s",
                        sl_log_q(e->key), e->revision, sl_log_q(reason));
        }
        /* While loading what was stored before we started, only problems
         * are worth a report. */
        if (w->initial_done || reason)
            publish_report(w, id.kind, id.ns, id.name, state, reason, warn, nw, e->revision);
        free(reason);
    }
    sl_cfg_set_deinit(&set);
    sl_arena_reset(&w->arena);
}

/* ---- the apply API ---------------------------------------------------------- */

static bool header_true(natsMsg *msg, const char *name)
{
    const char *v = NULL;
    return natsMsgHeader_Get(msg, name, &v) == NATS_OK && v &&
           (strcmp(v, "true") == 0 || strcmp(v, "1") == 0);
}

static void respond(cw *w, const sl_envelope *env, const ProtobufCMessage *m)
{
    if (w->reply_hook) {
        w->reply_hook(w, m);
        return;
    }
    if (!env->reply || !w->nc)
        return;
    if (sl_envelope_respond_pb(w->nc, env, m, "sluice-config-watcher") != SL_OK)
        sl_log_warn("api", "reply failed", "err=%s", sl_log_q(sl_error_msg()));
}

static Sluice__V1__ObjectRef *obj_ref(sl_arena *a, const char *kind, const char *ns,
                                      const char *name)
{
    Sluice__V1__ObjectRef *o = sl_arena_alloc(a, sizeof(*o));
    if (!o)
        return NULL;
    sluice__v1__object_ref__init(o);
    o->kind = sl_arena_strdup(a, kind ? kind : "");
    o->namespace_ = sl_arena_strdup(a, ns ? ns : "");
    o->name = sl_arena_strdup(a, name ? name : "");
    return o;
}

/* The start of an apply or delete request: counted, set initialised;
 * false (why says it) when its headers were bad. */
static bool api_begin(cw *w, sl_cfg_set *set, sl_status st, char *why, size_t cap)
{
    sl_counter_inc(w->m_api);
    sl_cfg_set_init(set);
    if (st != SL_OK) {
        snprintf(why, cap, "bad request headers: %s", sl_error_msg());
        return false;
    }
    return true;
}

/* Decodes the request body into set; SL_OK or a request-level error in why. */
static sl_status decode_apply(cw *w, const sl_envelope *env, natsMsg *msg, sl_cfg_set *set,
                              bool *dry_run, char *source, size_t ns, char *why, size_t nwhy)
{
    *dry_run = header_true(msg, CW_HDR_DRY_RUN);
    snprintf(source, ns, "api:%s", env->source[0] ? env->source : "unknown");
    if (env->content_type == SL_CT_YAML || env->content_type == SL_CT_JSON) {
        const char *fname = NULL;
        if (natsMsgHeader_Get(msg, CW_HDR_FILENAME, &fname) != NATS_OK || !fname || !fname[0])
            fname = "<request>";
        if (sl_cfg_set_decode_text(set, (const char *)env->data, env->len, fname) != SL_OK) {
            snprintf(why, nwhy, "out of memory");
            return SL_ERR_NOMEM;
        }
        return SL_OK;
    }
    ProtobufCMessage *m = NULL;
    sl_envelope e2 = *env;
    e2.content_type = SL_CT_PROTOBUF;
    if (sl_envelope_unpack(&m, &e2, &sluice__v1__apply_request__descriptor, &w->arena) != SL_OK) {
        snprintf(why, nwhy, "request is not a sluice.v1.ApplyRequest: %s", sl_error_msg());
        return SL_ERR_PARSE;
    }
    Sluice__V1__ApplyRequest *req = (Sluice__V1__ApplyRequest *)m;
    *dry_run = *dry_run || req->dry_run;
    if (req->source && req->source[0])
        snprintf(source, ns, "api:%s", req->source);
    for (size_t i = 0; i < req->n_resources; i++) {
        Google__Protobuf__Any *a = req->resources[i];
        if (sl_cfg_set_add_any(set, a->type_url, a->value.data, a->value.len, i) != SL_OK)
            return SL_ERR_NOMEM;
    }
    return SL_OK;
}

void cw_on_apply(sl_subscription *sub, sl_status st, const sl_envelope *env, natsMsg *msg,
                 void *ud)
{
    cw *w = ud;
    Sluice__V1__ApplyResponse resp = SLUICE__V1__APPLY_RESPONSE__INIT;
    sl_cfg_set set;
    char source[600], why[1200] = "";
    bool dry_run = false;
    (void)sub;

    if (!api_begin(w, &set, st, why, sizeof(why)))
        goto reply;
    if (decode_apply(w, env, msg, &set, &dry_run, source, sizeof(source), why, sizeof(why)) != SL_OK)
        goto reply;
    validate_set(w, &set);
    if (sl_diag_errors(&set.diag)) {
        /* Syntax errors: the documents are not all known; store nothing. */
        char *r = sl_cfg_diag_join(&set.diag, SL_DIAG_ERROR, "; ");
        snprintf(why, sizeof(why), "%s", r ? r : "syntax error");
        free(r);
        goto reply;
    }
    resp.accepted = true;
    resp.n_results = set.n;
    resp.results = sl_arena_alloc(&w->arena, (set.n ? set.n : 1) * sizeof(*resp.results));
    for (size_t i = 0; i < set.n && resp.results; i++) {
        sl_cfg_res *r = &set.items[i];
        Sluice__V1__ResourceResult *rr = sl_arena_alloc(&w->arena, sizeof(*rr));
        cw_result res = {0};
        if (!rr)
            break;
        sluice__v1__resource_result__init(rr);
        resp.results[i] = rr;
        if (r->msg && sl_diag_errors(&r->diag) == 0) {
            write_res(w, r, source, dry_run, &res);
        }
        rr->resource = obj_ref(&w->arena, r->kind ? r->kind->kind : "", r->ns, r->name);
        rr->errors = diag_strings(&w->arena, &r->diag, SL_DIAG_ERROR, &rr->n_errors);
        rr->warnings = diag_strings(&w->arena, &r->diag, SL_DIAG_WARNING, &rr->n_warnings);
        if (rr->n_errors) {
            rr->state = SLUICE__V1__STATUS__STATE__Rejected;
            resp.accepted = false;
            sl_counter_inc(w->m_rejected);
            log_diag(source, &r->diag);
            if (!dry_run && r->key[0])
                report_rejected(w, r);
            continue;
        }
        rr->state = rr->n_warnings ? SLUICE__V1__STATUS__STATE__Warning
                                   : SLUICE__V1__STATUS__STATE__Accepted;
        rr->unchanged = res.unchanged;
        rr->generation = res.generation;
        if (res.rev && !dry_run) {
            char v[32];
            snprintf(v, sizeof(v), "%" PRIu64, res.rev);
            rr->resource_version = sl_arena_strdup(&w->arena, v);
        }
        rr->created = res.created && !res.unchanged;
    }
reply:
    if (why[0]) {
        resp.accepted = false;
        resp.error = why;
        resp.n_results = 0;
        sl_log_warn("api", "apply failed", "reason=%s", sl_log_q(why));
    }
    respond(w, env, &resp.base);
    sl_cfg_set_deinit(&set);
    sl_arena_reset(&w->arena);
}

typedef struct referrer_ctx {
    const char *kind, *ns, *name;
    char *found; /* first referrer "Kind ns/name (path)", malloc'd */
    const char *from;
} referrer_ctx;

static void find_ref(void *ud, const sl_kind *kind, const char *ns, const char *name,
                     const char *path)
{
    referrer_ctx *c = ud;
    if (c->found || strcmp(kind->kind, c->kind) != 0 || strcmp(ns, c->ns) != 0 ||
        strcmp(name, c->name) != 0)
        return;
    size_t n = strlen(c->from) + strlen(path) + 8;
    c->found = malloc(n);
    if (c->found)
        snprintf(c->found, n, "%s (%s)", c->from, path);
}

/* The first stored resource (outside the deleted ones) that references
 * kind/ns/name, as a malloc'd description, or NULL. */
static char *referrer(cw *w, const char *kind, const char *ns, const char *name,
                      const Sluice__V1__DeleteRequest *req)
{
    referrer_ctx c = {kind, ns, name, NULL, NULL};
    for (size_t b = 0; b < w->nbuckets && !c.found; b++)
        for (cw_entry *e = w->tab[b]; e && !c.found; e = e->next) {
            sl_resource_id id;
            const sl_kind *k;
            ProtobufCMessage *m = NULL;
            bool deleting = false;
            if (!e->val || !(k = kind_of_key(e->key, &id)))
                continue;
            for (size_t i = 0; i < req->n_resources && !deleting; i++) {
                const Sluice__V1__ObjectRef *o = req->resources[i];
                deleting = strcmp(o->kind, id.kind) == 0 && strcmp(o->name, id.name) == 0 &&
                           strcmp(o->namespace_[0] ? o->namespace_ : SL_RESOURCE_DEFAULT_NAMESPACE,
                                  id.ns) == 0;
            }
            if (deleting)
                continue;
            if (sl_pb_unpack(&m, k->descriptor, NULL, e->val, e->len) != SL_OK)
                continue;
            char from[SL_RESOURCE_KEY_MAX + 8];
            snprintf(from, sizeof(from), "%s %s/%s", id.kind, id.ns, id.name);
            c.from = from;
            sl_cfg_refs(m, id.ns, find_ref, &c);
            protobuf_c_message_free_unpacked(m, NULL);
        }
    return c.found;
}

void cw_on_delete(sl_subscription *sub, sl_status st, const sl_envelope *env, natsMsg *msg,
                  void *ud)
{
    cw *w = ud;
    Sluice__V1__DeleteResponse resp = SLUICE__V1__DELETE_RESPONSE__INIT;
    Sluice__V1__DeleteRequest *req = NULL;
    Sluice__V1__DeleteRequest yreq = SLUICE__V1__DELETE_REQUEST__INIT;
    sl_cfg_set set;
    char why[1200] = "";
    bool dry_run;
    (void)sub;

    if (!api_begin(w, &set, st, why, sizeof(why)))
        goto reply;
    dry_run = header_true(msg, CW_HDR_DRY_RUN);
    if (env->content_type == SL_CT_YAML || env->content_type == SL_CT_JSON) {
        /* Documents: only kind, metadata.name and metadata.namespace count. */
        const char *fname = NULL;
        if (natsMsgHeader_Get(msg, CW_HDR_FILENAME, &fname) != NATS_OK || !fname)
            fname = "<request>";
        sl_cfg_set_decode_text(&set, (const char *)env->data, env->len, fname);
        yreq.dry_run = dry_run;
        yreq.resources = sl_arena_alloc(&w->arena, (set.n ? set.n : 1) * sizeof(*yreq.resources));
        for (size_t i = 0; i < set.n && yreq.resources; i++) {
            sl_cfg_res *r = &set.items[i];
            yreq.resources[yreq.n_resources++] =
                obj_ref(&w->arena, r->kind ? r->kind->kind : "", r->ns, r->name);
        }
        req = &yreq;
    } else {
        ProtobufCMessage *m = NULL;
        sl_envelope e2 = *env;
        e2.content_type = SL_CT_PROTOBUF;
        if (sl_envelope_unpack(&m, &e2, &sluice__v1__delete_request__descriptor, &w->arena) !=
            SL_OK) {
            snprintf(why, sizeof(why), "request is not a sluice.v1.DeleteRequest: %s",
                     sl_error_msg());
            goto reply;
        }
        req = (Sluice__V1__DeleteRequest *)m;
        dry_run = dry_run || req->dry_run;
    }
    resp.accepted = true;
    resp.n_results = req->n_resources;
    resp.results = sl_arena_alloc(&w->arena, (req->n_resources ? req->n_resources : 1) *
                                                 sizeof(*resp.results));
    for (size_t i = 0; i < req->n_resources && resp.results; i++) {
        const Sluice__V1__ObjectRef *o = req->resources[i];
        const char *ns = o->namespace_ && o->namespace_[0] ? o->namespace_
                                                           : SL_RESOURCE_DEFAULT_NAMESPACE;
        Sluice__V1__ResourceResult *rr = sl_arena_alloc(&w->arena, sizeof(*rr));
        char key[SL_RESOURCE_KEY_MAX], err[1400] = "";
        if (!rr)
            break;
        sluice__v1__resource_result__init(rr);
        resp.results[i] = rr;
        rr->resource = obj_ref(&w->arena, o->kind, ns, o->name);
        const sl_kind *k = sl_kind_by_name(o->kind);
        if (!k || strcmp(k->bucket, SL_BUCKET_CONFIG) != 0) {
            snprintf(err, sizeof(err), "unknown configuration kind \"%s\"", o->kind);
        } else if (sl_kind_key(key, sizeof(key), k, ns, o->name) != SL_OK) {
            snprintf(err, sizeof(err), "%s", sl_error_msg());
        } else if (!cache_live(w, key)) {
            snprintf(err, sizeof(err), "%s %s/%s not found", k->kind, ns, o->name);
            if (!dry_run) /* a rejected proposal of it may have a status */
                withdraw_report(w, k->kind, ns, o->name);
        } else {
            char *by = referrer(w, k->kind, ns, o->name, req);
            if (by) {
                snprintf(err, sizeof(err), "%s %s/%s is still referenced by %s", k->kind, ns,
                         o->name, by);
                free(by);
            } else if (remove_key(w, key, NULL, dry_run) != SL_OK) {
                snprintf(err, sizeof(err), "deleting %s failed: %s", key, sl_error_msg());
            }
        }
        if (err[0]) {
            rr->state = SLUICE__V1__STATUS__STATE__Rejected;
            rr->n_errors = 1;
            rr->errors = sl_arena_alloc(&w->arena, sizeof(char *));
            if (rr->errors)
                rr->errors[0] = sl_arena_strdup(&w->arena, err);
            else
                rr->n_errors = 0;
            resp.accepted = false;
        } else {
            rr->state = SLUICE__V1__STATUS__STATE__Accepted;
        }
    }
reply:
    if (why[0]) {
        resp.accepted = false;
        resp.error = why;
        resp.n_results = 0;
    }
    respond(w, env, &resp.base);
    sl_cfg_set_deinit(&set);
    sl_arena_reset(&w->arena);
}
