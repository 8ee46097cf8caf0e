/* sluice-config-watcher: config sources -> validated resources in the
 * sluice_config KV. See docs/config-watcher.md. */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <time.h>
#include <unistd.h>

#include "sluice/envelope.h"
#include "sluice/kv.h"
#include "sluice/log.h"
#include "sluice/service.h"
#include "dryrun.h"
#include "api_limits.h"
#include "watcher.h"

static const sl_service_info info = {
    "sluice-config-watcher", "0.1.0",
    "Watches YAML/JSON directories and serves the apply API; writes validated resources to the "
    "sluice_config KV.",
    NULL};

/* The flags' values; strings belong to the service args. */
typedef struct opts {
    sl_flag_list dirs;
    int64_t debounce_ms;
    int64_t resync_ms;
    const char *bucket;
    const char *queue;
    bool no_api;
    cw_limits_config lim;
} opts;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The service's flags and the common ones (see sluice/service.h). */
static sl_status parse_flags(sl_service_args *args, opts *o, int argc, char **argv)
{
    const sl_flag own[] = {
        {.name = "dir", .kind = SL_FLAG_LIST, .target = &o->dirs, .env = "SLUICE_CONFIG_DIRS", .arg = "DIR",
         .help = "directory of YAML/JSON files to watch"},
        {.name = "debounce", .kind = SL_FLAG_DURATION, .target = &o->debounce_ms, .def = "200ms",
         .help = "quiet time after a file change before syncing"},
        {.name = "resync", .kind = SL_FLAG_DURATION, .target = &o->resync_ms, .def = "60s",
         .help = "full re-read of every directory (0 = off)"},
        {.name = "bucket", .kind = SL_FLAG_STRING, .target = &o->bucket, .def = SL_BUCKET_CONFIG, .arg = "NAME",
         .help = "config KV bucket"},
        {.name = "queue", .kind = SL_FLAG_STRING, .target = &o->queue, .def = "sluice-config-watcher",
         .arg = "NAME", .help = "queue group of the apply API"},
        {.name = "no-api", .kind = SL_FLAG_BOOL, .target = &o->no_api,
         .help = "do not serve sluice.api.apply / sluice.api.delete"},
        /* The apply API's limits (api_limits.h); 0 turns one off. */
        {.name = "api-max-body", .kind = SL_FLAG_INT, .target = &o->lim.max_body, .def = "1048576",
         .arg = "BYTES", .min = 0, .max = INT_MAX, .help = "largest apply/delete request body (0 = no limit)"},
        {.name = "api-max-documents", .kind = SL_FLAG_INT, .target = &o->lim.max_documents,
         .def = "500", .arg = "N", .min = 0, .max = INT_MAX,
         .help = "most documents (resources) in one request (0 = no limit)"},
        {.name = "api-max-nodes", .kind = SL_FLAG_INT, .target = &o->lim.max_nodes, .def = "100000",
         .arg = "N", .min = 0, .max = INT_MAX,
         .help = "most YAML/JSON nodes in one request, aliases expanded (0 = no limit)"},
        {.name = "api-max-pending", .kind = SL_FLAG_INT, .target = &o->lim.max_pending, .def = "32",
         .arg = "N", .min = 0, .max = 1000000,
         .help = "requests waiting for the loop; more are answered busy at once (0 = no limit)"},
        {.name = "api-rate", .kind = SL_FLAG_INT, .target = &o->lim.rate, .def = "50", .arg = "N",
         .min = 0, .max = 1000000, .help = "requests per second per client (0 = no limit)"},
        {.name = "api-burst", .kind = SL_FLAG_INT, .target = &o->lim.burst, .def = "100", .arg = "N",
         .min = 1, .max = 1000000, .help = "requests one client may send at once (with --api-rate)"},
    };
    return sl_service_args_parse(args, &info, own, sizeof(own) / sizeof(own[0]), argc, argv);
}

/* ---- inotify: a thread that debounces and posts syncs to the loop ------- */

typedef struct notifier {
    cw *w;
    int fd;
    int64_t debounce_ms, resync_ms;
    atomic_bool stop;
    pthread_t thread;
} notifier;

static void run_sync(void *ud)
{
    cw_dir *d = ud;
    cw_sync_dir(d->w, d);
}

static void *notify_main(void *ud)
{
    notifier *n = ud;
    cw *w = n->w;
    int64_t last_resync = now_ms();
    char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));

    while (!atomic_load(&n->stop)) {
        struct pollfd p = {n->fd, POLLIN, 0};
        int r = poll(&p, 1, 50);
        int64_t t = now_ms();
        if (r > 0) {
            ssize_t len = read(n->fd, buf, sizeof(buf));
            for (char *q = buf; len > 0 && q < buf + len;) {
                const struct inotify_event *ev = (const struct inotify_event *)q;
                for (size_t i = 0; i < w->ndirs; i++)
                    if (w->dirs[i].wd == ev->wd) {
                        w->dirs[i].dirty = true;
                        w->dirs[i].last_event_ms = t;
                    }
                q += sizeof(*ev) + ev->len;
            }
        }
        bool resync = n->resync_ms > 0 && t - last_resync >= n->resync_ms;
        if (resync)
            last_resync = t;
        for (size_t i = 0; i < w->ndirs; i++) {
            cw_dir *d = &w->dirs[i];
            int64_t retry_at = atomic_load(&d->retry_at_ms);
            bool retry = retry_at != 0 && t >= retry_at;
            if (retry)
                atomic_store(&d->retry_at_ms, 0); /* the sync sets it again if need be */
            if (resync || retry || (d->dirty && t - d->last_event_ms >= n->debounce_ms)) {
                d->dirty = false;
                sl_loop_post(w->loop, n, run_sync, NULL, d);
            }
        }
    }
    return NULL;
}

/* ---- start-up ----------------------------------------------------------- */

typedef struct app {
    cw w;
    notifier n;
    opts o;
    sl_subscription *sub_api[CW_LIMITS_SUBS];
    cw_limits *limits;
    bool failed;
} app;

static void start_sources(void *ud)
{
    app *a = ud;
    cw *w = &a->w;
    for (size_t i = 0; i < w->ndirs; i++)
        cw_sync_dir(w, &w->dirs[i]);
    if (!a->o.no_api &&
        (cw_limits_new(&a->limits, &a->o.lim, w, sl_service_metrics(w->svc)) != SL_OK ||
         cw_limits_subscribe(a->limits, a->sub_api, a->o.queue) != SL_OK)) {
        sl_log_error("api", "subscribe failed", "err=%s", sl_log_q(sl_error_msg()));
        sl_service_request_stop(w->svc, SL_EXIT_FAILURE);
        return;
    }
    if (pthread_create(&a->n.thread, NULL, notify_main, &a->n) != 0) {
        sl_log_error("files", "cannot start the inotify thread");
        sl_service_request_stop(w->svc, SL_EXIT_FAILURE);
        return;
    }
    a->n.fd = a->n.fd; /* the thread owns reading it from now on */
    sl_service_set_ready(w->svc, true);
    sl_log_info("svc", "ready", "dirs=%zu api=%s resources=%zu", w->ndirs,
                a->o.no_api ? "off" : "on", w->live);
}

static void on_initial_done(sl_kv_watch *wt, void *ud)
{
    app *a = ud;
    (void)wt;
    a->w.initial_done = true;
    start_sources(a);
}

static void on_watch_failed(sl_kv_watch *wt, sl_status st, const char *msg, void *ud)
{
    app *a = ud;
    (void)wt;
    sl_log_error("kv", "config watch failed", "status=%s err=%s", sl_status_str(st), sl_log_q(msg));
    sl_service_request_stop(a->w.svc, SL_EXIT_FAILURE);
}

int main(int argc, char **argv)
{
    static app a;
    sl_service_args args;
    sl_service *svc = NULL;
    sl_nats *nc = NULL;
    sl_loop *loop = NULL;
    sl_kv *kv = NULL;
    sl_kv_watch *watch = NULL;
    int code = SL_EXIT_FAILURE;
    bool thread_started = false;

    a.n.fd = -1;
    sl_service_args_init(&args);
    if (parse_flags(&args, &a.o, argc, argv) != SL_OK) {
        code = sl_service_usage_error(&info);
        goto out;
    }
    if (args.exit_now) {
        code = args.exit_code;
        goto out;
    }
    if (sl_service_new(&svc, &info, &args) != SL_OK || sl_loop_new(&loop) != SL_OK) {
        fprintf(stderr, "%s: %s\n", info.name, sl_error_msg());
        goto out;
    }
    a.n.fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (a.n.fd < 0) {
        sl_log_error("files", "inotify_init1 failed", "err=%s", sl_log_q(strerror(errno)));
        goto out;
    }
    a.w.dirs = calloc(a.o.dirs.n ? a.o.dirs.n : 1, sizeof(cw_dir));
    for (size_t i = 0; a.w.dirs && i < a.o.dirs.n; i++) {
        char abs[PATH_MAX];
        if (!realpath(a.o.dirs.v[i], abs)) {
            sl_error_set(SL_ERR_INVALID, "--dir %s: %s", a.o.dirs.v[i], strerror(errno));
            code = sl_service_usage_error(&info);
            goto out;
        }
        cw_dir *d = &a.w.dirs[a.w.ndirs];
        d->path = strdup(abs);
        d->w = &a.w;
        d->wd = inotify_add_watch(a.n.fd, abs,
                                  IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE |
                                      IN_CREATE | IN_MODIFY | IN_ATTRIB);
        if (d->wd < 0) {
            sl_error_set(SL_ERR_INVALID, "--dir %s: inotify: %s", abs, strerror(errno));
            free(d->path);
            code = sl_service_usage_error(&info);
            goto out;
        }
        a.w.ndirs++;
        sl_log_info("files", "watching", "dir=%s", sl_log_q(abs));
    }
    if (sl_service_connect(&nc, svc) != SL_OK) {
        sl_log_error("nats", "connect failed", "err=%s", sl_log_q(sl_error_msg()));
        goto out;
    }
    sl_kv_config kc;
    sl_kv_config_init(&kc, a.o.bucket);
    kc.description = "Sluice configuration: <Kind>.<namespace>.<name> -> sluice.v1 resource";
    if (sl_kv_open(&kv, nc, &kc) != SL_OK) {
        sl_log_error("kv", "open failed", "bucket=%s err=%s", a.o.bucket, sl_log_q(sl_error_msg()));
        goto out;
    }
    {
        cw_dir *dirs = a.w.dirs;
        size_t nd = a.w.ndirs;
        if (cw_init(&a.w, svc, nc, loop, kv) != SL_OK)
            goto out;
        a.w.dry_run = cw_translator_dry_run; /* the apply API judges by a dry-run translation */
        a.w.dirs = dirs;
        a.w.ndirs = nd;
        for (size_t i = 0; i < nd; i++)
            dirs[i].w = &a.w;
    }
    a.n.w = &a.w;
    a.n.debounce_ms = a.o.debounce_ms;
    a.n.resync_ms = a.o.resync_ms;
    sl_kv_watch_handlers h = {cw_on_kv_entry, on_initial_done, on_watch_failed};
    if (sl_kv_watch_start(&watch, kv, NULL, loop, &h, &a) != SL_OK) {
        sl_log_error("kv", "watch failed", "err=%s", sl_log_q(sl_error_msg()));
        goto out;
    }
    thread_started = true; /* started by on_initial_done, on the loop */
    code = sl_service_run(svc, loop);
    sl_log_info("svc", "stopping");
out:
    if (thread_started && a.w.initial_done && a.n.thread) {
        atomic_store(&a.n.stop, true);
        pthread_join(a.n.thread, NULL);
    }
    if (loop)
        sl_loop_cancel(loop, &a.n);
    for (int i = 0; i < CW_LIMITS_SUBS; i++)
        sl_subscription_free(a.sub_api[i]);
    cw_limits_free(a.limits);
    sl_kv_watch_free(watch);
    sl_kv_free(kv);
    if (a.n.fd >= 0)
        close(a.n.fd);
    cw_deinit(&a.w);
    for (size_t i = 0; a.w.dirs && i < a.w.ndirs; i++)
        free(a.w.dirs[i].path);
    free(a.w.dirs);
    sl_loop_free(loop);
    sl_service_free(svc);
    sl_service_args_deinit(&args);
    return code;
}
