/* service.c - see service.h. */
#include <inttypes.h>
#include <pthread.h>
#include <search.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "service.h"
#include "sluice/envelope.h"
#include "sluice/kinds.h"
#include "sluice/log.h"
#include "sluice/quarantine.h"
#include "sluice/resource.h"
#include "sluice/v1/events.pb-c.h"
#include "sluice/translate.h"
#include "sluice/vec.h"
#include "sluice/xds_writer.h"

#define COMP "translator"

/* ---- the reports as last published: Kind.ns.name -> bytes, in a tsearch tree ---- */

typedef struct tr_report_entry {
    char *key;
    uint8_t *data;
    size_t len;
} tr_report_entry;

static int tr_report_cmp(const void *a, const void *b)
{
    return strcmp(((const tr_report_entry *)a)->key, ((const tr_report_entry *)b)->key);
}

static tr_report_entry *tr_report_get(void *const *tree, const char *key)
{
    tr_report_entry probe = {(char *)key, NULL, 0};
    void *n = tfind(&probe, tree, tr_report_cmp);
    return n ? *(tr_report_entry **)n : NULL;
}

/* key's entry, added (empty) when missing; NULL when out of memory. */
static tr_report_entry *tr_report_put(void **tree, const char *key)
{
    tr_report_entry *e = tr_report_get(tree, key);
    if (e)
        return e;
    if (!(e = calloc(1, sizeof *e)) || !(e->key = strdup(key)) || !tsearch(e, tree, tr_report_cmp)) {
        if (e)
            free(e->key);
        free(e);
        return NULL;
    }
    return e;
}

static void tr_report_free(void *p)
{
    tr_report_entry *e = p;
    free(e->key);
    free(e->data);
    free(e);
}

/* ---- the service ---- */

struct tr_service {
    sl_service *svc;
    sl_nats *nc;
    sl_quarantine quarantine; /* values that do not decode */
    sl_loop *loop;
    tr_service_opts o;
    sl_kv *kv_config, *kv_secrets, *kv_endpoints, *kv_xds;
    sl_kv_watch *w_config, *w_secrets, *w_endpoints;
    int initial_pending; /* watches that have not delivered their initial values */
    sl_tr_store *store;
    sl_xdsw *xw;   /* the sluice_xds writer */
    void *reports;          /* tr_report_entry by Kind.ns.name: the last published report bytes */
    struct rc_item *rcache; /* the reports of the last publish_reports(), by pointers */
    size_t n_rcache;
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
    size_t n_eps, cap_eps_ns, cap_eps_name;
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
        if (SL_VEC_RESERVE(s->eps_ns, s->cap_eps_ns, s->n_eps + 1) != SL_OK ||
            SL_VEC_RESERVE(s->eps_name, s->cap_eps_name, s->n_eps + 1) != SL_OK) {
            s->full_needed = 1;
            goto out;
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
            sl_quarantine_value(&s->quarantine,
                                endpoints ? SL_BUCKET_ENDPOINTS : w == s->w_config ? SL_BUCKET_CONFIG : SL_BUCKET_SECRETS,
                                e->key, e->revision, sl_error_msg());
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
        tr_report_entry *w;
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
        w = tr_report_get(&s->reports, key);
        if (w && w->len == len && memcmp(w->data, buf, len) == 0) {
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
        if ((w = tr_report_put(&s->reports, key))) {
            free(w->data);
            w->data = buf;
            w->len = len;
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
    sl_xdsw_stats st;

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
    sl_xdsw_round_begin(s->xw);
    for (size_t i = 0; i < r->n_proxies; i++)
        if (sl_xdsw_write_proxy(s->xw, &r->proxies[i], &n_res) != SL_OK) {
            sl_log_error(COMP, "writing the xds bucket failed; retrying", "proxy=%s err=%s",
                         sl_log_q(r->proxies[i].name), sl_log_q(sl_error_msg()));
            failed = true;
        }
    sl_xdsw_write_gone(s->xw, r);
    u2 = now_us();
    if (!failed)
        sl_xdsw_delete_stale(s->xw);
    u3 = now_us();
    if (!incremental) {
        if (sl_tr_result_finish(r) != SL_OK) /* its reports, now the commit is out */
            sl_log_warn(COMP, "reports incomplete", "err=%s", sl_log_q(sl_error_msg()));
        publish_reports(s, r); /* an endpoint set changes no report */
    }
    u4 = now_us();
    st = sl_xdsw_stats_get(s->xw);
    sl_counter_inc(s->m_translations);
    sl_histogram_observe(s->m_duration, (double)(now_ms() - t0) / 1000.0);
    sl_gauge_set(s->m_resources, (double)n_res);
    sl_log_debug(COMP, "translated", "proxies=%zu resources=%zu incremental=%d ms=%" PRId64 " translate_ms=%.2f "
                 "write_ms=%.2f delete_ms=%.2f reports_ms=%.2f same=%zu compared=%zu batches=%zu mispredicted=%zu flush_ms=%.2f commit_ms=%.2f waited_ms=%.2f", r->n_proxies,
                 n_res, incremental, now_ms() - t0, (u1 - u0) / 1e3, (u2 - u1) / 1e3, (u3 - u2) / 1e3,
                 (u4 - u3) / 1e3, st.same, st.compared, st.batches, st.mispredicted, st.flush_us / 1e3,
                 st.commit_us / 1e3, waited / 1e3);
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

sl_status tr_service_start(tr_service **out, sl_service *svc, sl_nats *nc, sl_loop *loop, const tr_service_opts *opts)
{
    tr_service *s = calloc(1, sizeof *s);
    sl_kv_config cfg;
    sl_xdsw_opts xo = {0};
    sl_kv_watch_handlers h = {on_entry, on_initial_done, on_failed};
    sl_metrics *reg = sl_service_metrics(svc);
    static const double bounds[] = {0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5};
    sl_status rc;

    *out = NULL;
    if (!s)
        return SL_ERR_NOMEM;
    s->svc = svc;
    s->nc = nc;
    s->quarantine = (sl_quarantine){nc, "translator", sl_service_metrics(svc)};
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
    xo.log_component = COMP;
    xo.writes = s->m_writes;
    xo.deletes = s->m_deletes;
    if ((rc = sl_kv_open(&s->kv_xds, nc, &cfg)) != SL_OK || (rc = sl_xdsw_new(&s->xw, s->kv_xds, &xo)) != SL_OK)
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
    sl_xdsw_free(s->xw);
    sl_kv_free(s->kv_xds);
    sl_tr_store_free(s->store);
    sl_tr_result_free(s->last);
    clear_changes(s);
    free(s->eps_ns);
    free(s->eps_name);
    tdestroy(s->reports, tr_report_free);
    free(s->rcache);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s);
}
