/* sluice-reporter: reports from the translator and the xds-server ->
 * the status of every resource, in the sluice_status KV and on
 * sluice.status.<Kind>.<ns>.<name>. See docs/reporter.md. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sluice/report_model.h"
#include "sluice/arena.h"
#include "sluice/codec.h"
#include "sluice/envelope.h"
#include "sluice/kinds.h"
#include "sluice/kv.h"
#include "sluice/log.h"
#include "sluice/quarantine.h"
#include "sluice/resource.h"
#include "sluice/service.h"
#include "sluice/types.h"
#include "sluice/v1/core.pb-c.h"
#include "sluice/v1/events.pb-c.h"
#include "sluice/report_stream.h"

static const sl_service_info info = {"sluice-reporter", "0.1.0",
                                     "Folds translator and xDS reports into resource statuses.", NULL};

typedef struct reporter {
    sl_service *svc;
    sl_nats *nc;
    sl_loop *loop;
    sl_kv *status_kv, *config_kv;
    sl_kv_watch *status_w, *config_w;
    sl_subscription *sub;
    rep_model *model;
    sl_arena arena;
    const char *reports_subject, *status_prefix, *queue, *config_bucket;
    const char *reports_stream; /* "" = core subscription */
    const char *status_bucket;
    const char *republish_mode; /* auto, on or off */
    int64_t reports_max_age_ms;
    bool republish;     /* the bucket republishes: one write */
    bool status_loaded; /* status watch delivered its initial values */
    bool config_loaded;
    sl_metric_family *f_reports;
    sl_counter *c_writes, *c_deletes, *c_conflicts, *c_errors, *c_unchanged;
    sl_gauge *g_resources;
    sl_quarantine quarantine; /* stored statuses that do not decode */
} reporter;

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void count_report(reporter *r, const char *source, const char *result)
{
    sl_counter *c;
    if (sl_metric_family_counter(&c, r->f_reports, (const char *[]){source, result}) == SL_OK)
        sl_counter_inc(c);
}

/* Publishes what the bucket would republish, when it does not. */
static void publish_status(reporter *r, const char *key, const uint8_t *data, size_t len, bool deleted)
{
    char subject[SL_RESOURCE_KEY_MAX + 128];
    if (r->republish)
        return;
    snprintf(subject, sizeof subject, "%s.%s", r->status_prefix, key);
    natsMsg *msg = NULL;
    sl_status rc;
    if (deleted) {
        natsStatus s = natsMsg_Create(&msg, subject, NULL, NULL, 0);
        if (s == NATS_OK)
            s = natsMsgHeader_Set(msg, "KV-Operation", "DEL");
        if (s == NATS_OK)
            s = natsConnection_PublishMsg(sl_nats_conn(r->nc), msg);
        rc = s == NATS_OK ? SL_OK : sl_nats_error(s, "publish %s", subject);
        natsMsg_Destroy(msg);
    } else {
        sl_envelope_opts o = {.source = info.name};
        rc = sl_envelope_publish(r->nc, subject, SL_CT_PROTOBUF, "sluice.v1.Status", data, len, &o);
    }
    if (rc != SL_OK) {
        sl_counter_inc(r->c_errors);
        sl_log_warn("status", "publish failed", "subject=%s err=%s", subject, sl_log_q(sl_error_msg()));
    }
}

static void delete_status(reporter *r, const char *key)
{
    sl_status rc = sl_kv_delete(NULL, r->status_kv, key, 0);
    if (rc != SL_OK && rc != SL_ERR_NOT_FOUND) {
        sl_counter_inc(r->c_errors);
        sl_log_warn("status", "delete failed", "key=%s err=%s", key, sl_log_q(sl_error_msg()));
        return;
    }
    sl_counter_inc(r->c_deletes);
    publish_status(r, key, NULL, 0, true);
    sl_log_info("status", "removed", "key=%s", key);
}

/* Writes one status if what users see changed. Compare-and-set on the
 * revision we know, so replicas never overwrite each other blindly: on a
 * conflict the stored status is merged in and the write retried. */
static void flush_key(reporter *r, const char *key)
{
    if (!rep_model_publishable(r->model, key)) {
        /* It had a status and has none now: a rejected proposal of a
         * resource never stored was withdrawn. */
        if (r->config_loaded && rep_model_revision(r->model, key)) {
            delete_status(r, key);
            rep_model_committed(r->model, key, 0);
        }
        return;
    }
    for (int attempt = 0; attempt < 4; attempt++) {
        uint8_t *buf;
        size_t len;
        bool changed;
        if (rep_model_render(r->model, &buf, &len, &changed, key) != SL_OK) {
            sl_counter_inc(r->c_errors);
            return;
        }
        if (!changed) {
            sl_counter_inc(r->c_unchanged);
            free(buf);
            return;
        }
        uint64_t last = rep_model_revision(r->model, key), rev = 0;
        sl_status rc = last ? sl_kv_update(&rev, r->status_kv, key, buf, len, last)
                            : sl_kv_create(&rev, r->status_kv, key, buf, len);
        if (rc == SL_OK) {
            rep_model_committed(r->model, key, rev);
            sl_counter_inc(r->c_writes);
            publish_status(r, key, buf, len, false);
            if (sl_log_enabled(SL_LOG_INFO)) {
                ProtobufCMessage *pm;
                if (sl_arena_unpack(&pm, &r->arena, &sluice__v1__status__descriptor, buf, len) == SL_OK) {
                    const Sluice__V1__Status *st = (const Sluice__V1__Status *)pm;
                    sl_log_info("status", "updated", "key=%s state=%s reported_by=%s rev=%" PRIu64 " reason=%s",
                                key, protobuf_c_enum_descriptor_get_value(&sluice__v1__status__state__descriptor,
                                                                          (int)st->state)
                                         ? protobuf_c_enum_descriptor_get_value(
                                               &sluice__v1__status__state__descriptor, (int)st->state)
                                               ->name
                                         : "?",
                                sl_log_q(st->reported_by), rev, sl_log_q(st->reason));
                }
                sl_arena_reset(&r->arena);
            }
            free(buf);
            return;
        }
        free(buf);
        if (rc != SL_ERR_CONFLICT && rc != SL_ERR_EXISTS) {
            sl_counter_inc(r->c_errors);
            sl_log_warn("status", "write failed", "key=%s err=%s", key, sl_log_q(sl_error_msg()));
            return;
        }
        /* Someone else wrote: merge theirs, try again. */
        sl_counter_inc(r->c_conflicts);
        sl_kv_entry e = {0};
        rc = sl_kv_get(&e, r->status_kv, key);
        if (rc == SL_OK && rep_model_load(r->model, key, e.value, e.len, e.revision) != SL_OK) {
            sl_quarantine_value(&r->quarantine, r->status_bucket, key, e.revision, sl_error_msg());
            rep_model_committed(r->model, key, e.revision);
        }
        else if (rc == SL_ERR_NOT_FOUND)
            rep_model_committed(r->model, key, 0);
        sl_kv_entry_deinit(&e);
        if (rc != SL_OK && rc != SL_ERR_NOT_FOUND)
            return;
    }
    sl_log_warn("status", "gave up after conflicts", "key=%s", key);
}

static void flush(reporter *r)
{
    char key[SL_RESOURCE_KEY_MAX];
    if (!r->status_loaded)
        return;
    while (rep_model_next_dirty(r->model, key, sizeof key))
        flush_key(r, key);
    sl_gauge_set(r->g_resources, (double)rep_model_count(r->model));
}

/* ---- reports ------------------------------------------------------------ */

static void on_report(sl_subscription *sub, sl_status st, const sl_envelope *env, natsMsg *msg, void *ud)
{
    reporter *r = ud;
    (void)sub;
    const char *prefix = "sluice.report.";
    char src[128] = "", key[SL_RESOURCE_KEY_MAX] = "";
    const char *subj = env->subject ? env->subject : "";
    if (!strncmp(subj, prefix, strlen(prefix))) {
        const char *s = subj + strlen(prefix), *dot = strchr(s, '.');
        if (dot && (size_t)(dot - s) < sizeof src) {
            snprintf(src, sizeof src, "%.*s", (int)(dot - s), s);
            snprintf(key, sizeof key, "%s", dot + 1);
        }
    }
    ProtobufCMessage *pm = NULL;
    sl_status rc = st;
    if (rc == SL_OK) {
        switch (env->content_type) {
        case SL_CT_NONE:
        case SL_CT_PROTOBUF:
            /* The xds-server publishes packed Reports without headers. */
            if (env->proto[0] && strcmp(env->proto, "sluice.v1.Report") != 0) {
                rc = sl_error_set(SL_ERR_INVALID, "expected sluice.v1.Report, got %s", env->proto);
                break;
            }
            rc = sl_arena_unpack(&pm, &r->arena, &sluice__v1__report__descriptor, env->data, env->len);
            break;
        case SL_CT_JSON:
        case SL_CT_YAML: {
            sl_codec_options o = {.root_name = "Report", .allocator = &r->arena.allocator,
                                  .resolver = sl_types_find_url};
            rc = (env->content_type == SL_CT_JSON ? sl_codec_decode_json : sl_codec_decode_yaml)(
                &pm, &sluice__v1__report__descriptor, (const char *)env->data, env->len, &o, NULL);
            break;
        }
        }
    }
    rep_result res = REP_IGNORED;
    bool quarantine = rc == SL_OK && !strcmp(key, SL_QUARANTINE_SUBJECT_KEY);
    if (quarantine) {
        /* a KV value quarantined that names no resource (sluice/quarantine.h):
         * nothing to fold into a status; logged and counted */
        const Sluice__V1__Report *q = (const Sluice__V1__Report *)pm;
        count_report(r, src[0] ? src : "unknown", "quarantine");
        sl_log_warn("report", "quarantine", "source=%s reason=%s", sl_log_q(src), sl_log_q(q->reason));
    } else if (rc == SL_OK) {
        rc = rep_model_report(r->model, &res, (const Sluice__V1__Report *)pm, src, key[0] ? key : NULL, now_ns());
    }
    if (quarantine) {
        /* counted above: neither folded nor invalid */
    } else if (rc != SL_OK) {
        count_report(r, src[0] ? src : "unknown", "invalid");
        sl_log_warn("report", "bad report", "subject=%s trace=%s err=%s", sl_log_q(subj), env->trace_id,
                    sl_log_q(sl_error_msg()));
    } else {
        static const char *const names[] = {"applied", "stale", "duplicate", "ignored"};
        const Sluice__V1__Report *rep = (const Sluice__V1__Report *)pm;
        count_report(r, rep->source && rep->source[0] ? rep->source : src, names[res]);
        sl_log_debug("report", "folded", "subject=%s result=%s gen=%" PRId64 " proxy=%s", sl_log_q(subj),
                     names[res], rep->generation, sl_log_q(rep->proxy));
        if (res == REP_STALE)
            sl_log_info("report", "stale report ignored", "subject=%s gen=%" PRId64 " xds_version=%s",
                        sl_log_q(subj), rep->generation, sl_log_q(rep->xds_version));
    }
    sl_arena_reset(&r->arena);
    flush(r);
    /* From the durable consumer: acknowledge once folded (invalid ones too,
     * or they would come back every ack wait). The status is written by
     * then; a crash before this line redelivers, and the model drops the
     * duplicate. */
    const char *reply = natsMsg_GetReply(msg);
    if (reply && !strncmp(reply, "$JS.ACK.", 8))
        natsConnection_Publish(sl_nats_conn(r->nc), reply, NULL, 0);
}

/* ---- config and status watches ------------------------------------------ */

static bool config_kind_key(const char *key)
{
    sl_resource_id id;
    if (sl_resource_key_parse(&id, key, 1) != SL_OK)
        return false;
    const sl_kind *k = sl_kind_by_name(id.kind);
    return k && !strcmp(k->bucket, SL_BUCKET_CONFIG);
}

static void start_reports(reporter *r)
{
    char deliver[256];
    const char *subject = r->reports_subject, *durable = r->queue[0] ? r->queue : "sluice-reporter";

    if (r->sub)
        return;
    if (r->reports_stream[0]) {
        /* Durable: the stream keeps reports published while no reporter
         * runs; the push consumer delivers them to a queue group. */
        snprintf(deliver, sizeof(deliver), "_SLUICE.reports.%s", durable);
        if (rep_stream_ensure(r->nc, r->reports_stream, r->reports_subject, r->reports_max_age_ms) != SL_OK ||
            rep_consumer_ensure(r->nc, r->reports_stream, durable, deliver, r->queue) != SL_OK) {
            sl_log_error("report", "report stream failed", "stream=%s err=%s", r->reports_stream,
                         sl_log_q(sl_error_msg()));
            sl_service_request_stop(r->svc, SL_EXIT_FAILURE);
            return;
        }
        subject = deliver;
    }
    if (sl_envelope_subscribe(&r->sub, r->nc, subject, r->queue[0] ? r->queue : NULL, r->loop, on_report,
                              r) != SL_OK) {
        sl_log_error("report", "subscribe failed", "subject=%s err=%s", subject, sl_log_q(sl_error_msg()));
        sl_service_request_stop(r->svc, SL_EXIT_FAILURE);
        return;
    }
    sl_log_info("report", "subscribed", "subject=%s queue=%s stream=%s", subject, r->queue,
                r->reports_stream[0] ? r->reports_stream : "(none)");
    sl_service_set_ready(r->svc, true);
}

typedef struct gc_list {
    char **keys;
    size_t n, cap;
    reporter *r;
} gc_list;

static void gc_collect(void *ud, const char *key)
{
    gc_list *g = ud;
    if (!config_kind_key(key) || rep_model_publishable(g->r->model, key) || !rep_model_revision(g->r->model, key))
        return;
    if (g->n == g->cap) {
        size_t nc = g->cap ? g->cap * 2 : 16;
        char **nk = realloc(g->keys, nc * sizeof *nk);
        if (!nk)
            return;
        g->keys = nk;
        g->cap = nc;
    }
    if ((g->keys[g->n] = strdup(key)))
        g->n++;
}

static void on_config_entry(sl_kv_watch *w, const sl_kv_entry *e, void *ud)
{
    reporter *r = ud;
    (void)w;
    if (!config_kind_key(e->key))
        return;
    if (e->op == SL_KV_PUT) {
        if (rep_model_set_config(r->model, e->key, true, e->revision) != SL_OK)
            sl_log_warn("config", "bad key", "key=%s err=%s", sl_log_q(e->key), sl_log_q(sl_error_msg()));
    } else {
        bool had = rep_model_revision(r->model, e->key) != 0;
        rep_model_set_config(r->model, e->key, false, 0);
        if (had || r->config_loaded)
            delete_status(r, e->key);
    }
    if (r->config_loaded)
        flush(r);
}

static void on_config_initial(sl_kv_watch *w, void *ud)
{
    reporter *r = ud;
    (void)w;
    r->config_loaded = true;
    /* Statuses of resources deleted while no reporter ran. */
    gc_list g = {.r = r};
    rep_model_each(r->model, gc_collect, &g);
    for (size_t i = 0; i < g.n; i++) {
        delete_status(r, g.keys[i]);
        rep_model_forget(r->model, g.keys[i]);
        free(g.keys[i]);
    }
    free(g.keys);
    sl_log_info("config", "initial values loaded", "resources=%zu removed=%zu", rep_model_count(r->model), g.n);
    flush(r);
    start_reports(r);
}

static void on_watch_failed(sl_kv_watch *w, sl_status st, const char *msg, void *ud)
{
    reporter *r = ud;
    (void)w;
    sl_log_error("kv", "watch failed", "err=%s status=%s", sl_log_q(msg), sl_status_str(st));
    sl_service_request_stop(r->svc, SL_EXIT_FAILURE);
}

static void start_config(reporter *r)
{
    if (!r->config_kv) {
        r->config_loaded = true;
        flush(r);
        start_reports(r);
        return;
    }
    sl_kv_watch_handlers h = {.entry = on_config_entry, .initial_done = on_config_initial,
                              .failed = on_watch_failed};
    if (sl_kv_watch_start(&r->config_w, r->config_kv, NULL, r->loop, &h, r) != SL_OK) {
        sl_log_error("config", "watch failed", "err=%s", sl_log_q(sl_error_msg()));
        sl_service_request_stop(r->svc, SL_EXIT_FAILURE);
    }
}

/* The status bucket: its initial values rebuild the model; later writes by
 * other replicas are merged. */
static void on_status_entry(sl_kv_watch *w, const sl_kv_entry *e, void *ud)
{
    reporter *r = ud;
    (void)w;
    if (e->op == SL_KV_PUT) {
        if (e->revision <= rep_model_revision(r->model, e->key))
            return; /* our own write */
        if (rep_model_load(r->model, e->key, e->value, e->len, e->revision) != SL_OK) {
            /* the model keeps its last good state, written over the bad value */
            sl_quarantine_value(&r->quarantine, r->status_bucket, e->key, e->revision, sl_error_msg());
            rep_model_committed(r->model, e->key, e->revision);
        }
    } else if (rep_model_revision(r->model, e->key) && e->revision > rep_model_revision(r->model, e->key)) {
        rep_model_forget(r->model, e->key);
    }
    if (r->config_loaded)
        flush(r);
}

static void on_status_initial(sl_kv_watch *w, void *ud)
{
    reporter *r = ud;
    (void)w;
    r->status_loaded = true;
    sl_log_info("status", "rebuilt from KV", "statuses=%zu", rep_model_count(r->model));
    start_config(r);
}

/* Whether the bucket's stream republishes to prefix.> */
static bool bucket_republishes(reporter *r, const char *bucket)
{
    char stream[256];
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    bool ok = false;
    snprintf(stream, sizeof stream, "KV_%s", bucket);
    if (js_GetStreamInfo(&si, sl_nats_js(r->nc), stream, NULL, &jerr) != NATS_OK || !si)
        return false;
    if (si->Config && si->Config->RePublish && si->Config->RePublish->Destination) {
        char want[300];
        snprintf(want, sizeof want, "%s.>", r->status_prefix);
        ok = !strcmp(si->Config->RePublish->Destination, want) && !si->Config->RePublish->HeadersOnly;
    }
    jsStreamInfo_Destroy(si);
    return ok;
}

/* ---- start-up ----------------------------------------------------------- */

/* The service's flags and the common ones (see sluice/service.h); string
 * values belong to args. */
static sl_status parse_flags(sl_service_args *args, reporter *r, int argc, char **argv)
{
    const sl_flag own[] = {
        {.name = "status-bucket", .kind = SL_FLAG_STRING, .target = &r->status_bucket, .def = SL_BUCKET_STATUS,
         .env = "SLUICE_STATUS_BUCKET", .arg = "NAME", .help = "status KV bucket"},
        {.name = "config-bucket", .kind = SL_FLAG_STRING, .target = &r->config_bucket, .def = SL_BUCKET_CONFIG,
         .env = "SLUICE_CONFIG_BUCKET", .arg = "NAME", .opts = SL_FLAG_EMPTY_OK,
         .help = "config KV bucket watched for deletes (\"\" = do not watch, publish every status)"},
        {.name = "reports", .kind = SL_FLAG_STRING, .target = &r->reports_subject, .def = "sluice.report.>",
         .arg = "SUBJECT", .help = "report subjects"},
        {.name = "status-prefix", .kind = SL_FLAG_STRING, .target = &r->status_prefix, .def = "sluice.status",
         .arg = "P", .help = "status subject prefix"},
        {.name = "queue", .kind = SL_FLAG_STRING, .target = &r->queue, .def = "sluice-reporter", .arg = "NAME",
         .opts = SL_FLAG_EMPTY_OK,
         .help = "queue group of the report subscription, also the durable consumer's name"},
        {.name = "reports-stream", .kind = SL_FLAG_STRING, .target = &r->reports_stream, .def = REP_STREAM_DEFAULT,
         .arg = "NAME", .opts = SL_FLAG_EMPTY_OK,
         .help = "JetStream stream keeping the latest report per subject while no\n"
                 "reporter runs (\"\" = core NATS, lost when down)"},
        {.name = "reports-max-age", .kind = SL_FLAG_DURATION, .target = &r->reports_max_age_ms, .def = "24h",
         .min = 1, .max = 8760LL * 3600000, .help = "how long the stream keeps a report"},
        {.name = "republish", .kind = SL_FLAG_CHOICE, .target = &r->republish_mode, .def = "auto",
         .choices = "auto|on|off",
         .help = "store and publish in one write through the bucket's RePublish\n"
                 "(auto: when the bucket has it), else put + publish"},
    };
    return sl_service_args_parse(args, &info, own, sizeof(own) / sizeof(own[0]), argc, argv);
}

static sl_status register_metrics(reporter *r)
{
    sl_metrics *reg = sl_service_metrics(r->svc);
    sl_status st;

    if ((st = sl_metrics_family_new(&r->f_reports, reg, SL_METRIC_COUNTER, "sluice_reporter_reports_total",
                                    "Reports received, by source and result (applied, stale, duplicate, ignored, "
                                    "invalid).",
                                    (const char *[]){"source", "result"}, 2, NULL, 0)) != SL_OK ||
        (st = sl_metrics_counter(&r->c_writes, reg, "sluice_reporter_status_writes_total",
                                 "Statuses written (each one event on the status subject).")) != SL_OK ||
        (st = sl_metrics_counter(&r->c_deletes, reg, "sluice_reporter_status_deletes_total",
                                 "Statuses removed with their resource.")) != SL_OK ||
        (st = sl_metrics_counter(&r->c_unchanged, reg, "sluice_reporter_status_unchanged_total",
                                 "Recomputed statuses that did not change (no write, no event).")) != SL_OK ||
        (st = sl_metrics_counter(&r->c_conflicts, reg, "sluice_reporter_write_conflicts_total",
                                 "Status writes that lost a compare-and-set to another replica.")) != SL_OK ||
        (st = sl_metrics_counter(&r->c_errors, reg, "sluice_reporter_errors_total",
                                 "Failed KV writes and publishes.")) != SL_OK ||
        (st = sl_metrics_gauge(&r->g_resources, reg, "sluice_reporter_resources", "Resources with a status.")) !=
            SL_OK)
        sl_log_error("main", "metrics", "err=%s", sl_log_q(sl_error_msg()));
    return st;
}

/* Opens (or creates) the status bucket, with RePublish to the status
 * prefix unless --republish off, and finds out whether it republishes. */
static sl_status open_status_bucket(reporter *r)
{
    char rp_subject[256];
    bool off = strcmp(r->republish_mode, "off") == 0;
    sl_kv_config kc;

    snprintf(rp_subject, sizeof rp_subject, "%s.>", r->status_prefix);
    sl_kv_config_init(&kc, r->status_bucket);
    kc.description = "Sluice: status of every resource (sluice-reporter)";
    if (!off) {
        kc.republish_keys = ">";
        kc.republish_subject = rp_subject;
    }
    if (sl_kv_open(&r->status_kv, r->nc, &kc) != SL_OK) {
        sl_log_error("main", "status bucket", "bucket=%s err=%s", r->status_bucket, sl_log_q(sl_error_msg()));
        return SL_ERR_NATS;
    }
    r->republish = !off && bucket_republishes(r, r->status_bucket);
    if (!strcmp(r->republish_mode, "on") && !r->republish) {
        sl_log_error("main", "status bucket does not republish", "bucket=%s subject=%s", r->status_bucket,
                     rp_subject);
        return SL_ERR_INVALID;
    }
    sl_log_info("main", "status bucket", "bucket=%s republish=%d", r->status_bucket, r->republish);
    return SL_OK;
}

/* Binds the config bucket, waiting while it does not exist yet: it belongs
 * to the config-watcher (bind, never create). SL_ERR_CLOSED when a stop
 * was requested meanwhile. */
static sl_status bind_config_bucket(reporter *r)
{
    int64_t waited_ms = 0;
    sl_status rc;

    while (((rc = sl_kv_bind(&r->config_kv, r->nc, r->config_bucket)) == SL_ERR_NOT_FOUND ||
            rc == SL_ERR_TIMEOUT) &&
           !sl_service_stopping(r->svc)) {
        if (waited_ms % 10000 == 0)
            sl_log_info("main", "waiting for the config bucket", "bucket=%s err=%s", r->config_bucket,
                        sl_log_q(sl_error_msg()));
        usleep(200 * 1000);
        waited_ms += 200;
    }
    if (sl_service_stopping(r->svc))
        return SL_ERR_CLOSED;
    if (rc != SL_OK)
        sl_log_error("main", "config bucket", "bucket=%s err=%s", r->config_bucket, sl_log_q(sl_error_msg()));
    return rc;
}

int main(int argc, char **argv)
{
    sl_service_args args;
    reporter r = {0};
    int code = SL_EXIT_FAILURE;
    sl_status rc;

    sl_arena_init(&r.arena, 0);
    sl_service_args_init(&args);
    if (parse_flags(&args, &r, argc, argv) != SL_OK) {
        code = sl_service_usage_error(&info);
        goto out;
    }
    if (args.exit_now) {
        code = args.exit_code;
        goto out;
    }
    if (sl_service_new(&r.svc, &info, &args) != SL_OK || sl_loop_new(&r.loop) != SL_OK ||
        rep_model_new(&r.model) != SL_OK || sl_service_connect(&r.nc, r.svc) != SL_OK) {
        sl_log_error("main", "start failed", "err=%s", sl_log_q(sl_error_msg()));
        goto out;
    }
    r.quarantine = (sl_quarantine){r.nc, "reporter", sl_service_metrics(r.svc)};
    if (register_metrics(&r) != SL_OK || open_status_bucket(&r) != SL_OK)
        goto out;
    rep_model_set_gating(r.model, r.config_bucket[0] != 0);
    if (r.config_bucket[0] && (rc = bind_config_bucket(&r)) != SL_OK) {
        if (rc == SL_ERR_CLOSED)
            code = sl_service_exit_code(r.svc);
        goto out;
    }
    sl_kv_watch_handlers sh = {.entry = on_status_entry, .initial_done = on_status_initial,
                               .failed = on_watch_failed};
    if (sl_kv_watch_start(&r.status_w, r.status_kv, NULL, r.loop, &sh, &r) != SL_OK) {
        sl_log_error("main", "status watch", "err=%s", sl_log_q(sl_error_msg()));
        goto out;
    }
    code = sl_service_run(r.svc, r.loop);
    sl_service_set_ready(r.svc, false);

out:
    sl_subscription_free(r.sub);
    sl_kv_watch_free(r.config_w);
    sl_kv_watch_free(r.status_w);
    sl_kv_free(r.config_kv);
    sl_kv_free(r.status_kv);
    sl_loop_free(r.loop);
    rep_model_free(r.model);
    sl_service_free(r.svc);
    sl_service_args_deinit(&args);
    sl_arena_deinit(&r.arena);
    return code;
}
