/* sluice-secret-watcher: directories of PEM files and secret YAML, and the
 * secret API (api.h) -> the sluice_secrets KV. Never logs secret material.
 * See docs/secrets.md. */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "api.h"
#include "sluice/secrets.h"
#include "sluice/envelope.h"
#include "sluice/kinds.h"
#include "sluice/kv.h"
#include "sluice/log.h"
#include "sluice/pbcheck.h"
#include "sluice/quarantine.h"
#include "sluice/nats.h"
#include "sluice/resource.h"
#include "sluice/service.h"
#include "sluice/v1/events.pb-c.h"
#include "sluice/v1/secret.pb-c.h"

static const sl_service_info info = {"sluice-secret-watcher", "0.1.0",
                                     "Watches PEM files and secret YAML; stores them in the secrets KV.", NULL};

typedef struct stored {
    char key[400];
    uint8_t *value;
    size_t len;
    int reported; /* last reported state + 1 (0: none) */
    char *reason;
} stored;

typedef struct watcher {
    sl_service *svc;
    sl_nats *nc;
    sl_kv *kv;
    const char **dirs;
    size_t n_dirs;
    const char *ns;
    stored *st;
    size_t n_st, cap_st;
    sl_counter *c_writes, *c_deletes, *c_invalid, *c_syncs;
    sl_gauge *g_secrets;
    pthread_mutex_t lock; /* the sync and the API's requests, one at a time */
} watcher;

static stored *find_stored(watcher *w, const char *key, bool create)
{
    for (size_t i = 0; i < w->n_st; i++)
        if (!strcmp(w->st[i].key, key))
            return &w->st[i];
    if (!create)
        return NULL;
    if (w->n_st == w->cap_st) {
        size_t nc = w->cap_st ? w->cap_st * 2 : 16;
        stored *ns = realloc(w->st, nc * sizeof *ns);
        if (!ns)
            return NULL;
        w->st = ns;
        w->cap_st = nc;
    }
    stored *s = &w->st[w->n_st++];
    memset(s, 0, sizeof *s);
    snprintf(s->key, sizeof s->key, "%s", key);
    return s;
}

static void stored_set(stored *s, const uint8_t *v, size_t len)
{
    if (s->value) {
        sec_wipe(s->value, s->len);
        free(s->value);
    }
    s->value = NULL;
    s->len = 0;
    if (v && (s->value = malloc(len ? len : 1))) {
        memcpy(s->value, v, len);
        s->len = len;
    }
}

static void drop_stored(watcher *w, stored *s)
{
    stored_set(s, NULL, 0);
    free(s->reason);
    *s = w->st[--w->n_st];
}

/* Reports a secret's state (never its material) when it changed. */
static void report(watcher *w, const char *key, Sluice__V1__Status__State state, const char *reason)
{
    sl_resource_id id;
    if (!key[0] || sl_resource_key_parse(&id, key, 1) != SL_OK)
        return;
    stored *s = find_stored(w, key, true);
    if (!s)
        return;
    if (s->reported == (int)state + 1 && !strcmp(s->reason ? s->reason : "", reason ? reason : ""))
        return;
    s->reported = (int)state + 1;
    free(s->reason);
    s->reason = reason ? strdup(reason) : NULL;
    sw_report_publish(w->nc, key, state, reason, false);
}

static bool our_dir(watcher *w, const char *dir)
{
    for (size_t i = 0; i < w->n_dirs; i++)
        if (!strcmp(w->dirs[i], dir))
            return true;
    return false;
}

/* The secrets this watcher wrote before (annotated with one of its dirs). */
static sl_status load_stored(watcher *w)
{
    char **keys = NULL;
    size_t n = 0;
    sl_status rc = sl_kv_keys(&keys, &n, w->kv, 5000);
    if (rc != SL_OK)
        return rc;
    for (size_t i = 0; i < n; i++) {
        sl_kv_entry e = {0};
        if (strncmp(keys[i], "Secret.", 7) || sl_kv_get(&e, w->kv, keys[i]) != SL_OK)
            continue;
        ProtobufCMessage *m = NULL;
        if (sl_pb_unpack(&m, &sluice__v1__secret__descriptor, NULL, e.value, e.len) != SL_OK) {
            /* not ours to judge, nor to overwrite: left, and said */
            sl_quarantine q = {w->nc, "secret-watcher", sl_service_metrics(w->svc)};
            sl_quarantine_value(&q, sl_kv_bucket(w->kv), keys[i], e.revision, sl_error_msg());
        }
        Sluice__V1__Secret *s = (Sluice__V1__Secret *)m;
        const char *dir = sec_secret_annotation(s, SEC_DIR_ANNOTATION);
        if (dir && our_dir(w, dir)) {
            stored *st = find_stored(w, keys[i], true);
            if (st)
                stored_set(st, e.value, e.len);
        }
        sec_secret_free(s);
        if (e.value)
            sec_wipe((void *)e.value, e.len);
        sl_kv_entry_deinit(&e);
    }
    sl_kv_keys_free(keys, n);
    return SL_OK;
}

static void sync_all(watcher *w)
{
    sec_set want;
    sec_set_init(&want);
    sl_counter_inc(w->c_syncs);
    bool scan_failed = false;
    for (size_t i = 0; i < w->n_dirs; i++)
        if (sec_scan_dir(&want, w->dirs[i], w->ns) != SL_OK) {
            sl_log_warn("scan", "cannot read directory", "dir=%s err=%s", sl_log_q(w->dirs[i]),
                        sl_log_q(sl_error_msg()));
            scan_failed = true;
        }
    /* Problems first: those keys keep what is stored. */
    for (size_t i = 0; i < want.n; i++) {
        sec_item *it = &want.items[i];
        if (!it->error)
            continue;
        sl_counter_inc(w->c_invalid);
        sl_log_warn("scan", "invalid secret; the stored one stays", "key=%s file=%s reason=%s",
                    it->key[0] ? it->key : "-", sl_log_q(it->file), sl_log_q(it->error));
        report(w, it->key, SLUICE__V1__STATUS__STATE__Rejected, it->error);
    }
    for (size_t i = 0; i < want.n; i++) {
        sec_item *it = &want.items[i];
        if (it->error || !it->value)
            continue;
        bool bad_elsewhere = false;
        for (size_t j = 0; j < want.n; j++)
            if (want.items[j].error && !strcmp(want.items[j].key, it->key))
                bad_elsewhere = true;
        if (bad_elsewhere)
            continue;
        stored *s = find_stored(w, it->key, true);
        if (!s)
            continue;
        if (s->value && s->len == it->len && !memcmp(s->value, it->value, it->len)) {
            report(w, it->key, SLUICE__V1__STATUS__STATE__Accepted, "");
            continue; /* unchanged: no write */
        }
        uint64_t rev = 0;
        if (sl_kv_put(&rev, w->kv, it->key, it->value, it->len) != SL_OK) {
            sl_log_warn("kv", "put failed", "key=%s err=%s", it->key, sl_log_q(sl_error_msg()));
            continue;
        }
        stored_set(s, it->value, it->len);
        sl_counter_inc(w->c_writes);
        sl_log_info("kv", "secret stored", "key=%s file=%s rev=%" PRIu64 " bytes=%zu", it->key, sl_log_q(it->file),
                    rev, it->len);
        report(w, it->key, SLUICE__V1__STATUS__STATE__Accepted, "");
    }
    /* Gone from disk: delete (not when a directory could not be read). */
    for (size_t i = 0; !scan_failed && i < w->n_st;) {
        stored *s = &w->st[i];
        if (sec_set_find(&want, s->key)) {
            i++;
            continue;
        }
        if (s->value) {
            if (sl_kv_delete(NULL, w->kv, s->key, 0) != SL_OK) {
                sl_log_warn("kv", "delete failed", "key=%s err=%s", s->key, sl_log_q(sl_error_msg()));
                i++;
                continue;
            }
            sl_counter_inc(w->c_deletes);
            sl_log_info("kv", "secret deleted", "key=%s", s->key);
        }
        drop_stored(w, s);
    }
    size_t live = 0;
    for (size_t i = 0; i < w->n_st; i++)
        live += w->st[i].value != NULL;
    sl_gauge_set(w->g_secrets, (double)live);
    sec_set_deinit(&want);
}

static void add_watches(int ifd, watcher *w)
{
    const uint32_t mask = IN_CREATE | IN_DELETE | IN_MODIFY | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO |
                          IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF;
    for (size_t i = 0; i < w->n_dirs; i++) {
        if (inotify_add_watch(ifd, w->dirs[i], mask) < 0)
            sl_log_warn("watch", "cannot watch directory", "dir=%s err=%s", sl_log_q(w->dirs[i]),
                        sl_log_q(strerror(errno)));
    }
}

/* <name>/ secret directories (Kubernetes mounts swap a ..data symlink). */
static void add_subdir_watches(int ifd, const char *dir)
{
    const uint32_t mask = IN_CREATE | IN_DELETE | IN_MODIFY | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO |
                          IN_ATTRIB;
    char path[1200];
    DIR *d = opendir(dir);
    struct dirent *de;
    if (!d)
        return;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.' && (!de->d_name[1] || (de->d_name[1] == '.' && !de->d_name[2])))
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        struct stat sb;
        if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode))
            inotify_add_watch(ifd, path, mask);
    }
    closedir(d);
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The flags' values; strings belong to the service args. */
typedef struct sw_opts {
    sl_flag_list dirs;
    const char *ns, *bucket, *queue;
    int64_t debounce_ms, resync_ms;
    bool no_api;
} sw_opts;

/* The service's flags and the common ones (see sluice/service.h). */
static sl_status parse_flags(sl_service_args *args, sw_opts *o, int argc, char **argv)
{
    const sl_flag own[] = {
        {.name = "dir", .kind = SL_FLAG_LIST, .target = &o->dirs, .env = "SLUICE_SECRETS_DIR", .arg = "DIR",
         .help = "directory of PEM files and secret YAML"},
        {.name = "namespace", .kind = SL_FLAG_STRING, .target = &o->ns, .def = SL_RESOURCE_DEFAULT_NAMESPACE,
         .env = "SLUICE_SECRETS_NAMESPACE", .arg = "NS",
         .help = "namespace of secrets from PEM files and of YAML without one"},
        {.name = "bucket", .kind = SL_FLAG_STRING, .target = &o->bucket, .def = SL_BUCKET_SECRETS, .arg = "NAME",
         .help = "secrets KV bucket"},
        {.name = "debounce", .kind = SL_FLAG_DURATION, .target = &o->debounce_ms, .def = "250ms",
         .help = "wait this long after the last file event before syncing"},
        {.name = "resync", .kind = SL_FLAG_DURATION, .target = &o->resync_ms, .def = "60s",
         .help = "full rescan period even without events, 0 = never"},
        {.name = "queue", .kind = SL_FLAG_STRING, .target = &o->queue, .def = "sluice-secret-watcher",
         .arg = "NAME", .help = "queue group of the secret API"},
        {.name = "no-api", .kind = SL_FLAG_BOOL, .target = &o->no_api,
         .help = "do not serve " SW_SUBJECT_APPLY " / " SW_SUBJECT_DELETE},
    };
    return sl_service_args_parse(args, &info, own, sizeof(own) / sizeof(own[0]), argc, argv);
}

/* The secrets bucket keeps one value per key (history 1), so a rotated
 * key does not linger in the bucket's history. A bucket made earlier with
 * more is updated (a stream update; nats-server then drops the older
 * values of every key at once). */
static sl_status history_one(sl_nats *nc, const char *bucket)
{
    char stream[300];
    jsStreamInfo *si = NULL, *now = NULL;
    jsErrCode jerr = 0;
    sl_status rc = SL_OK;
    snprintf(stream, sizeof stream, "KV_%s", bucket);
    if (js_GetStreamInfo(&si, sl_nats_js(nc), stream, NULL, &jerr) != NATS_OK || !si || !si->Config)
        rc = sl_error_set(SL_ERR_INTERNAL, "stream %s: no information (jerr %d)", stream, (int)jerr);
    else if (si->Config->MaxMsgsPerSubject != 1) {
        jsStreamConfig cfg = *si->Config; /* borrowed strings: for the call only */
        int64_t had = cfg.MaxMsgsPerSubject;
        cfg.MaxMsgsPerSubject = 1;
        if (js_UpdateStream(&now, sl_nats_js(nc), &cfg, NULL, &jerr) != NATS_OK)
            rc = sl_error_set(SL_ERR_INTERNAL, "stream %s: cannot keep one value per key (jerr %d)", stream,
                              (int)jerr);
        else
            sl_log_info("main", "secrets bucket now keeps one value per key (older values dropped)",
                        "bucket=%s history_was=%lld", bucket, (long long)had);
    }
    jsStreamInfo_Destroy(now);
    jsStreamInfo_Destroy(si);
    return rc;
}

int main(int argc, char **argv)
{
    sl_service_args args;
    watcher w = {0};
    sw_opts o = {0};
    sw_api *api = NULL;
    int code = SL_EXIT_FAILURE, ifd = -1;

    pthread_mutex_init(&w.lock, NULL);

    sl_service_args_init(&args);
    if (parse_flags(&args, &o, argc, argv) != SL_OK) {
        code = sl_service_usage_error(&info);
        goto out;
    }
    if (args.exit_now) {
        code = args.exit_code;
        goto out;
    }
    w.dirs = o.dirs.v;
    w.n_dirs = o.dirs.n;
    w.ns = o.ns;
    if (!w.n_dirs) {
        sl_error_set(SL_ERR_INVALID, "no --dir given");
        code = sl_service_usage_error(&info);
        goto out;
    }
    if (sl_resource_check_namespace(w.ns) != SL_OK) {
        code = sl_service_usage_error(&info);
        goto out;
    }

    if (sl_service_new(&w.svc, &info, &args) != SL_OK || sl_service_connect(&w.nc, w.svc) != SL_OK) {
        sl_log_error("main", "start failed", "err=%s", sl_log_q(sl_error_msg()));
        goto out;
    }
    sl_metrics *reg = sl_service_metrics(w.svc);
    if (sl_metrics_counter(&w.c_writes, reg, "sluice_secret_watcher_writes_total", "Secrets written to the KV.") !=
            SL_OK ||
        sl_metrics_counter(&w.c_deletes, reg, "sluice_secret_watcher_deletes_total",
                           "Secrets deleted from the KV.") != SL_OK ||
        sl_metrics_counter(&w.c_invalid, reg, "sluice_secret_watcher_invalid_total",
                           "Invalid secret files seen (the stored secret stays).") != SL_OK ||
        sl_metrics_counter(&w.c_syncs, reg, "sluice_secret_watcher_syncs_total", "Directory scans.") != SL_OK ||
        sl_metrics_gauge(&w.g_secrets, reg, "sluice_secret_watcher_secrets", "Secrets this watcher stores.") !=
            SL_OK)
        goto out;
    sl_kv_config kc;
    sl_kv_config_init(&kc, o.bucket);
    kc.description = "Sluice: secrets (written by sluice-secret-watcher, read by the translator)";
    if (sl_kv_open(&w.kv, w.nc, &kc) != SL_OK || history_one(w.nc, o.bucket) != SL_OK ||
        load_stored(&w) != SL_OK) {
        sl_log_error("main", "secrets bucket", "bucket=%s err=%s", o.bucket, sl_log_q(sl_error_msg()));
        goto out;
    }
    if ((ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) < 0) {
        sl_log_error("main", "inotify", "err=%s", sl_log_q(strerror(errno)));
        goto out;
    }
    add_watches(ifd, &w);
    for (size_t i = 0; i < w.n_dirs; i++)
        add_subdir_watches(ifd, w.dirs[i]);
    pthread_mutex_lock(&w.lock);
    sync_all(&w);
    pthread_mutex_unlock(&w.lock);
    /* secrets without a namespace: "default", as the config API's */
    const sw_api_counters ac = {w.c_writes, w.c_deletes, w.c_invalid};
    if (!o.no_api && sw_api_start(&api, w.nc, w.kv, &w.lock, SL_RESOURCE_DEFAULT_NAMESPACE, o.queue, &ac) != SL_OK) {
        sl_log_error("main", "secret API", "err=%s", sl_log_q(sl_error_msg()));
        goto out;
    }
    sl_service_set_ready(w.svc, true);
    sl_log_info("main", "watching", "dirs=%zu namespace=%s debounce_ms=%" PRId64, w.n_dirs, w.ns, o.debounce_ms);

    int64_t due = -1, next_resync = o.resync_ms > 0 ? mono_ms() + o.resync_ms : -1;
    while (!sl_service_stopping(w.svc)) {
        struct pollfd p = {.fd = ifd, .events = POLLIN};
        int r = poll(&p, 1, 100);
        if (r > 0 && (p.revents & POLLIN)) {
            char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
            while (read(ifd, buf, sizeof buf) > 0) {
            }
            due = mono_ms() + o.debounce_ms; /* rotation writes several files: wait for quiet */
        }
        int64_t now = mono_ms();
        if ((due >= 0 && now >= due) || (next_resync >= 0 && now >= next_resync)) {
            due = -1;
            if (o.resync_ms > 0)
                next_resync = now + o.resync_ms;
            add_watches(ifd, &w); /* a directory may have been re-created */
            for (size_t i = 0; i < w.n_dirs; i++)
                add_subdir_watches(ifd, w.dirs[i]);
            pthread_mutex_lock(&w.lock);
            sync_all(&w);
            pthread_mutex_unlock(&w.lock);
        }
    }
    code = sl_service_wait_stop(w.svc);
    sl_service_set_ready(w.svc, false);

out:
    sw_api_free(api);
    if (ifd >= 0)
        close(ifd);
    for (size_t i = 0; i < w.n_st; i++) {
        stored_set(&w.st[i], NULL, 0);
        free(w.st[i].reason);
    }
    free(w.st);
    sl_kv_free(w.kv);
    sl_service_free(w.svc);
    sl_service_args_deinit(&args);
    pthread_mutex_destroy(&w.lock);
    return code;
}
