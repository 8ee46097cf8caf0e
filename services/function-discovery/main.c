/* sluice-function-discovery: REST functions of Upstreams from their OpenAPI/Swagger documents, gRPC
 * functions from server reflection, Lambda functions from AWS, written into the Upstreams in
 * sluice_config. See docs/discovery.md. */
#include <curl/curl.h>
#include <grpc/grpc.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fds.h"
#include "sluice/kinds.h"
#include "sluice/log.h"
#include "sluice/quarantine.h"
#include "sluice/pbcheck.h"
#include "sluice/resource.h"
#include "sluice/vec.h"
#include "sluice/v1/settings.pb-c.h"

static const sl_service_info info = {
    "sluice-function-discovery", "0.1.0",
    "Discovers the functions of upstreams: REST (OpenAPI/Swagger), gRPC (reflection), AWS Lambda.",
    "Upstreams are chosen by --mode (default: the Settings' discovery.fdsMode) and the label\n"
    "discovery.solo.io/function_discovery: enabled|disabled, as Gloo does. The document is\n"
    "serviceSpec.rest.swaggerInfo (url or inline), else found on the upstream's endpoints at\n"
    "/swagger.json, /swagger/docs/v1, /swagger/docs/v2, /v1/swagger, /v2/swagger,\n"
    "/openapi.json and /openapi.yaml. aws upstreams get their Lambda functions and versions\n"
    "(ListFunctions, signed with their secretRef's credentials). Functions are written into\n"
    "the Upstream only when they changed; a person's own functions are never touched.\n"
    "See docs/discovery.md."};

static fd_upstream *find(fd *s, const char *key)
{
    for (size_t i = 0; i < s->n_ups; i++)
        if (!s->ups[i]->gone && !strcmp(s->ups[i]->key, key))
            return s->ups[i];
    return NULL;
}

static void make_all_due(fd *s)
{
    for (size_t i = 0; i < s->n_ups; i++)
        s->ups[i]->due_ms = 0;
    pthread_cond_broadcast(&s->cv);
}

static void on_settings(fd *s, ProtobufCMessage *m)
{
    int mode = SLUICE__V1__DISCOVERY_OPTIONS__FDS_MODE__BLACKLIST; /* Gloo's default */
    if (m) {
        const Sluice__V1__Settings *st = (const Sluice__V1__Settings *)m;
        if (st->spec && st->spec->discovery)
            mode = (int)st->spec->discovery->fds_mode;
        protobuf_c_message_free_unpacked(m, NULL);
    }
    pthread_mutex_lock(&s->mu);
    if (mode != s->settings_mode) {
        sl_log_info("settings", "fdsMode", "mode=%d", mode);
        s->settings_mode = mode;
        make_all_due(s);
    }
    pthread_mutex_unlock(&s->mu);
}

static void on_upstream(fd *s, const sl_kv_entry *e)
{
    pthread_mutex_lock(&s->mu);
    fd_upstream *u = find(s, e->key);
    if (e->op != SL_KV_PUT) {
        if (u && u->busy)
            u->gone = true;
        else if (u) {
            u->gone = true;
            for (size_t i = 0; i < s->n_ups; i++)
                if (s->ups[i] == u) {
                    s->ups[i] = s->ups[--s->n_ups];
                    break;
                }
            fd_backoff_clear(s, u);
            fd_upstream_free(u);
        }
        goto out;
    }
    if (!u) {
        if (!(u = calloc(1, sizeof *u)) || !(u->key = strdup(e->key)) ||
            SL_VEC_RESERVE(s->ups, s->cap_ups, s->n_ups + 1) != SL_OK) {
            if (u)
                free(u->key);
            free(u);
            sl_log_error("config", "out of memory", "key=%s", e->key);
            goto out;
        }
        s->ups[s->n_ups++] = u;
    }
    uint8_t *v = malloc(e->len ? e->len : 1);
    if (!v)
        goto out;
    memcpy(v, e->value ? e->value : (const uint8_t *)"", e->len);
    free(u->val);
    u->val = v;
    u->len = e->len;
    u->rev = e->revision;
    if (!u->busy && e->revision != u->self_rev) {
        u->due_ms = 0; /* changed by someone else: check now */
        pthread_cond_signal(&s->cv);
    }
out:
    sl_gauge_set(s->g_upstreams, (double)s->n_ups);
    pthread_mutex_unlock(&s->mu);
}

void fd_quarantine(fd *s, const char *bucket, const char *key, uint64_t revision)
{
    sl_quarantine q = {s->nc, "function-discovery", sl_service_metrics(s->svc)};
    sl_quarantine_value(&q, bucket, key, revision, sl_error_msg());
}

static void on_config_entry(sl_kv_watch *w, const sl_kv_entry *e, void *ud)
{
    fd *s = ud;
    char settings_key[SL_RESOURCE_KEY_MAX];
    (void)w;
    snprintf(settings_key, sizeof settings_key, "Settings.%s.%s", s->settings_ns, s->settings_name);
    bool upstream = !strncmp(e->key, "Upstream.", 9), settings = !strcmp(e->key, settings_key);
    ProtobufCMessage *m = NULL;
    if ((upstream || settings) && e->op == SL_KV_PUT &&
        sl_pb_unpack(&m, settings ? &sluice__v1__settings__descriptor : &sluice__v1__upstream__descriptor, NULL,
                     e->value, e->len) != SL_OK) {
        fd_quarantine(s, s->config_bucket, e->key, e->revision); /* the last good value stays in use */
        return;
    }
    if (upstream) {
        on_upstream(s, e); /* keeps the bytes: decoded again when checked */
        protobuf_c_message_free_unpacked(m, NULL);
    } else if (settings) {
        on_settings(s, m); /* frees m (NULL: deleted, the default) */
    }
}

/* An endpoint set changed: its upstream ("<ns>.<name>") is checked now. */
static void on_endpoints_entry(sl_kv_watch *w, const sl_kv_entry *e, void *ud)
{
    fd *s = ud;
    char key[SL_RESOURCE_KEY_MAX];
    (void)w;
    snprintf(key, sizeof key, "Upstream.%s", e->key);
    pthread_mutex_lock(&s->mu);
    fd_upstream *u = find(s, key);
    if (u && u->busy) {
        u->recheck = true; /* the check running may have read the endpoints before */
    } else if (u && s->loaded) {
        u->due_ms = 0;
        pthread_cond_signal(&s->cv);
    }
    pthread_mutex_unlock(&s->mu);
}

static void on_endpoints_failed(sl_kv_watch *w, sl_status st, const char *msg, void *ud)
{
    (void)w;
    (void)ud;
    sl_log_warn("kv", "endpoint watch failed: re-checks only", "err=%s status=%s", sl_log_q(msg), sl_status_str(st));
}

static void on_initial(sl_kv_watch *w, void *ud)
{
    fd *s = ud;
    (void)w;
    pthread_mutex_lock(&s->mu);
    s->loaded = true;
    sl_log_info("config", "initial values loaded", "upstreams=%zu", s->n_ups);
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    sl_service_set_ready(s->svc, true);
}

static void on_watch_failed(sl_kv_watch *w, sl_status st, const char *msg, void *ud)
{
    fd *s = ud;
    (void)w;
    sl_log_error("kv", "watch failed", "err=%s status=%s", sl_log_q(msg), sl_status_str(st));
    sl_service_request_stop(s->svc, SL_EXIT_FAILURE);
}

static void on_acquired(void *ud)
{
    fd *s = ud;
    pthread_mutex_lock(&s->mu);
    s->leader = true;
    make_all_due(s);
    pthread_mutex_unlock(&s->mu);
    sl_log_info("lease", "acquired: discovering", "");
}

static void on_lost(void *ud)
{
    fd *s = ud;
    pthread_mutex_lock(&s->mu);
    s->leader = false;
    pthread_mutex_unlock(&s->mu);
    sl_log_warn("lease", "lost: another replica discovers", "");
}

static sl_status parse_flags(sl_service_args *args, fd *s, int argc, char **argv)
{
    const sl_flag own[] = {
        {.name = "config-bucket", .kind = SL_FLAG_STRING, .target = &s->config_bucket, .def = SL_BUCKET_CONFIG,
         .env = "SLUICE_CONFIG_BUCKET", .arg = "NAME", .help = "config KV bucket: Upstreams are read and written here"},
        {.name = "endpoints-bucket", .kind = SL_FLAG_STRING, .target = &s->endpoints_bucket,
         .def = SL_BUCKET_ENDPOINTS, .env = "SLUICE_ENDPOINTS_BUCKET", .arg = "NAME",
         .help = "endpoints KV bucket (the endpoints of dns upstreams, for probing)"},
        {.name = "secrets-bucket", .kind = SL_FLAG_STRING, .target = &s->secrets_bucket, .def = SL_BUCKET_SECRETS,
         .env = "SLUICE_SECRETS_BUCKET", .arg = "NAME",
         .help = "secrets KV bucket (read only: the credentials of aws upstreams' secretRef)"},
        {.name = "aws-endpoint", .kind = SL_FLAG_STRING, .target = &s->aws_endpoint, .def = "",
         .env = "SLUICE_FDS_AWS_ENDPOINT", .arg = "URL", .opts = SL_FLAG_EMPTY_OK,
         .help = "the Lambda API to list functions at (e.g. a local moto server);\n"
                 "default AWS's own, https://lambda.<region>.amazonaws.com"},
        {.name = "aws-page-size", .kind = SL_FLAG_INT, .target = &s->aws_page_size, .def = "50", .min = 1,
         .max = 10000, .help = "functions per ListFunctions page (MaxItems; AWS answers at most 50)"},
        {.name = "settings-namespace", .kind = SL_FLAG_STRING, .target = &s->settings_ns, .def = "gloo-system",
         .env = "SLUICE_SETTINGS_NAMESPACE", .arg = "NS", .help = "namespace of the Settings whose fdsMode applies"},
        {.name = "settings-name", .kind = SL_FLAG_STRING, .target = &s->settings_name, .def = "default",
         .arg = "NAME", .help = "name of that Settings"},
        {.name = "mode", .kind = SL_FLAG_CHOICE, .target = &s->mode, .def = "settings",
         .choices = "settings|blacklist|whitelist|disabled", .env = "SLUICE_FDS_MODE",
         .help = "which upstreams: the Settings' discovery.fdsMode (BLACKLIST when none),\n"
                 "or this mode whatever the Settings say"},
        {.name = "resync", .kind = SL_FLAG_DURATION, .target = &s->resync_ms, .def = "60s", .min = 100,
         .max = 86400000, .env = "SLUICE_FDS_RESYNC", .help = "how often each upstream's document is checked again"},
        {.name = "backoff-initial", .kind = SL_FLAG_DURATION, .target = &s->backoff_initial_ms, .def = "0s",
         .min = 0, .max = 86400000, .env = "SLUICE_FDS_BACKOFF_INITIAL",
         .help = "an upstream whose check failed is checked again after this, doubled at each\n"
                 "further failure (up to --backoff-max, plus up to 25% at random); 0s: --resync"},
        {.name = "backoff-max", .kind = SL_FLAG_DURATION, .target = &s->backoff_max_ms, .def = "15m", .min = 100,
         .max = 86400000, .env = "SLUICE_FDS_BACKOFF_MAX", .help = "the longest back-off of a failing upstream"},
        {.name = "connect-timeout", .kind = SL_FLAG_DURATION, .target = &s->connect_timeout_ms, .def = "3s",
         .min = 1, .max = 600000, .help = "connecting to a document's server"},
        {.name = "fetch-timeout", .kind = SL_FLAG_DURATION, .target = &s->timeout_ms, .def = "10s", .min = 1,
         .max = 600000, .help = "a whole document fetch"},
        {.name = "max-document-kb", .kind = SL_FLAG_INT, .target = &s->max_doc_kb, .def = "8192", .min = 1,
         .max = 1048576, .help = "documents larger than this are refused (a Warning)"},
        {.name = "workers", .kind = SL_FLAG_INT, .target = &s->n_workers, .def = "4", .min = 1, .max = FD_MAX_WORKERS,
         .env = "SLUICE_FDS_WORKERS", .help = "upstreams checked at the same time (a slow server holds one)"},
        {.name = "lease-ttl", .kind = SL_FLAG_DURATION, .target = &s->lease_ttl_ms, .def = "10s", .min = 1000,
         .max = 600000, .help = "lease among replicas: one discovers, the others wait"},
    };
    return sl_service_args_parse(args, &info, own, sizeof(own) / sizeof(own[0]), argc, argv);
}

static sl_status register_metrics(fd *s)
{
    sl_metrics *reg = sl_service_metrics(s->svc);
    sl_status st;
    if ((st = sl_metrics_counter(&s->c_checks, reg, "sluice_fds_checks_total",
                                 "Upstream checks (selected upstreams with a REST or no service spec).")) != SL_OK ||
        (st = sl_metrics_counter(&s->c_writes, reg, "sluice_fds_writes_total",
                                 "Upstreams written because their functions changed.")) != SL_OK ||
        (st = sl_metrics_counter(&s->c_unchanged, reg, "sluice_fds_unchanged_total",
                                 "Checks whose functions were already written (no write).")) != SL_OK ||
        (st = sl_metrics_counter(&s->c_not_modified, reg, "sluice_fds_not_modified_total",
                                 "Document fetches answered 304 Not Modified.")) != SL_OK ||
        (st = sl_metrics_counter(&s->c_failures, reg, "sluice_fds_failures_total",
                                 "Checks that found no usable document (unreachable, broken, too large).")) !=
            SL_OK ||
        (st = sl_metrics_counter(&s->c_conflicts, reg, "sluice_fds_write_conflicts_total",
                                 "Writes that lost a compare-and-set (the Upstream changed meanwhile).")) != SL_OK ||
        (st = sl_metrics_counter(&s->c_reports, reg, "sluice_fds_reports_total", "Reports published.")) !=
            SL_OK ||
        (st = sl_metrics_counter(&s->c_backoffs, reg, "sluice_fds_backoffs_total",
                                 "Failed checks after which the upstream waits longer (back-off).")) != SL_OK ||
        (st = sl_metrics_gauge(&s->g_backing_off, reg, "sluice_fds_backing_off",
                               "Upstreams whose last check failed, checked again with back-off.")) != SL_OK ||
        (st = sl_metrics_gauge(&s->g_upstreams, reg, "sluice_fds_upstreams", "Upstreams known.")) != SL_OK)
        sl_log_error("main", "metrics", "err=%s", sl_log_q(sl_error_msg()));
    return st;
}

/* Binds the config bucket (the config-watcher creates it), waiting for it. */
static sl_status bind_config(fd *s)
{
    sl_status rc;
    int64_t waited = 0;
    while (((rc = sl_kv_bind(&s->config_kv, s->nc, s->config_bucket)) == SL_ERR_NOT_FOUND ||
            rc == SL_ERR_TIMEOUT) &&
           !sl_service_stopping(s->svc)) {
        if (waited % 10000 == 0)
            sl_log_info("main", "waiting for the config bucket", "bucket=%s", s->config_bucket);
        usleep(200 * 1000);
        waited += 200;
    }
    if (sl_service_stopping(s->svc))
        return SL_ERR_CLOSED;
    if (rc != SL_OK)
        sl_log_error("main", "config bucket", "bucket=%s err=%s", s->config_bucket, sl_log_q(sl_error_msg()));
    return rc;
}

/* On the loop: the watch of the endpoint sets, once the bucket is there
 * (endpoint discovery makes it, and may start after this service): tried at
 * start and every second until it works. Upstreams whose endpoints arrived
 * before it are checked again. */
static void endpoints_watch_try(void *ud)
{
    fd *s = ud;
    sl_kv_watch_handlers eh = {.entry = on_endpoints_entry, .failed = on_endpoints_failed};
    if (s->endpoints_w || sl_kv_bind(&s->endpoints_w_kv, s->nc, s->endpoints_bucket) != SL_OK)
        return;
    if (sl_kv_watch_start(&s->endpoints_w, s->endpoints_w_kv, NULL, s->loop, &eh, s) != SL_OK) {
        sl_log_warn("main", "no endpoint watch", "bucket=%s err=%s", s->endpoints_bucket, sl_log_q(sl_error_msg()));
        sl_kv_free(s->endpoints_w_kv);
        s->endpoints_w_kv = NULL;
        return;
    }
    sl_log_info("main", "following endpoint sets", "bucket=%s", s->endpoints_bucket);
    pthread_mutex_lock(&s->mu);
    make_all_due(s);
    pthread_mutex_unlock(&s->mu);
}

static sl_status start(fd *s, sl_loop *loop, sl_kv_watch **w)
{
    char lease_name[300];
    sl_kv_watch_handlers h = {.entry = on_config_entry, .initial_done = on_initial, .failed = on_watch_failed};
    snprintf(lease_name, sizeof lease_name, "function-discovery.%s", s->config_bucket);
    sl_lease_opts lo = {.name = lease_name, .service = info.name, .ttl_ms = s->lease_ttl_ms,
                        .on_acquired = on_acquired, .on_lost = on_lost, .ud = s};
    for (int i = 0; i < s->n_workers; i++) {
        if (pthread_create(&s->workers[i], NULL, fd_worker_main, s) != 0)
            return sl_error_set(SL_ERR_INTERNAL, "cannot start a worker thread");
        s->n_workers_started++;
    }
    if (sl_kv_watch_start(w, s->config_kv, NULL, loop, &h, s) != SL_OK)
        return SL_ERR_NATS;
    /* endpoint sets: the bucket belongs to endpoint discovery, which may
     * not have made it yet */
    s->loop = loop;
    endpoints_watch_try(s);
    if (!s->endpoints_w && sl_ticker_start(&s->endpoints_ticker, loop, 1000, endpoints_watch_try, s) != SL_OK)
        return SL_ERR_INTERNAL;
    return sl_lease_start(&s->lease, s->nc, &lo);
}

int main(int argc, char **argv)
{
    sl_service_args args;
    fd s = {.settings_mode = SLUICE__V1__DISCOVERY_OPTIONS__FDS_MODE__BLACKLIST};
    sl_loop *loop = NULL;
    sl_kv_watch *w = NULL;
    int code = SL_EXIT_FAILURE;
    sl_status rc;

    pthread_mutex_init(&s.mu, NULL);
    pthread_mutex_init(&s.bind_mu, NULL);
    pthread_cond_init(&s.cv, NULL);
    sl_service_args_init(&args);
    if (parse_flags(&args, &s, argc, argv) != SL_OK) {
        code = sl_service_usage_error(&info);
        goto out;
    }
    if (args.exit_now) {
        code = args.exit_code;
        goto out;
    }
    grpc_init();
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || sl_service_new(&s.svc, &info, &args) != SL_OK ||
        sl_loop_new(&loop) != SL_OK || register_metrics(&s) != SL_OK || sl_service_connect(&s.nc, s.svc) != SL_OK) {
        sl_log_error("main", "start failed", "err=%s", sl_log_q(sl_error_msg()));
        goto out;
    }
    snprintf(s.reporter_id, sizeof s.reporter_id, "function-discovery-%ld", (long)getpid());
    s.seed = (unsigned)getpid() ^ (unsigned)fd_now_ms();
    if ((rc = bind_config(&s)) != SL_OK) {
        if (rc == SL_ERR_CLOSED)
            code = sl_service_exit_code(s.svc);
        goto out;
    }
    if (start(&s, loop, &w) != SL_OK) {
        sl_log_error("main", "start failed", "err=%s", sl_log_q(sl_error_msg()));
        goto out;
    }
    sl_log_info("main", "started", "bucket=%s mode=%s resync_ms=%" PRId64, s.config_bucket, s.mode, s.resync_ms);
    code = sl_service_run(s.svc, loop);
    sl_service_set_ready(s.svc, false);

out:
    sl_kv_watch_free(w);
    sl_ticker_free(s.endpoints_ticker);
    sl_kv_watch_free(s.endpoints_w);
    sl_kv_free(s.endpoints_w_kv);
    pthread_mutex_lock(&s.mu);
    s.stop = true;
    pthread_cond_broadcast(&s.cv);
    pthread_mutex_unlock(&s.mu);
    for (int i = 0; i < s.n_workers_started; i++)
        pthread_join(s.workers[i], NULL);
    sl_lease_free(s.lease);
    for (size_t i = 0; i < s.n_ups; i++)
        fd_upstream_free(s.ups[i]);
    free(s.ups);
    sl_kv_free(s.endpoints_kv);
    sl_kv_free(s.secrets_kv);
    sl_kv_free(s.config_kv);
    sl_loop_free(loop);
    sl_service_free(s.svc);
    sl_service_args_deinit(&args);
    curl_global_cleanup();
    if (grpc_is_initialized())
        grpc_shutdown();
    pthread_cond_destroy(&s.cv);
    pthread_mutex_destroy(&s.bind_mu);
    pthread_mutex_destroy(&s.mu);
    return code;
}
