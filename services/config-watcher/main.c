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

#include "sluice/conffile.h"
#include "sluice/envelope.h"
#include "sluice/kv.h"
#include "sluice/log.h"
#include "sluice/service.h"
#include "dryrun.h"
#include "watcher.h"

static const char usage[] =
    "  --dir DIR              directory of YAML/JSON files to watch (repeatable;\n"
    "                         env SLUICE_CONFIG_DIRS, ':'-separated)\n"
    "  --debounce DURATION    quiet time after a file change before syncing (default 200ms)\n"
    "  --resync DURATION      full re-read of every directory (default 60s, 0 = off)\n"
    "  --bucket NAME          config KV bucket (default sluice_config)\n"
    "  --queue NAME           queue group of the apply API (default sluice-config-watcher)\n"
    "  --no-api               do not serve sluice.api.apply / sluice.api.delete\n"
    "  --config FILE          read flags from FILE: one \"flag value\" (or flag = value)\n"
    "                         per line, '#' comments; command-line flags win\n"
    "                         (env SLUICE_CONFIG_WATCHER_CONFIG)\n";

static const sl_service_info info = {
    "sluice-config-watcher", "0.1.0",
    "Watches YAML/JSON directories and serves the apply API; writes validated resources to the "
    "sluice_config KV.",
    usage};

typedef struct opts {
    char **dirs;
    size_t ndirs;
    int64_t debounce_ms;
    int64_t resync_ms;
    const char *bucket;
    const char *queue;
    bool no_api;
} opts;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int add_dir(opts *o, const char *d)
{
    char **p = realloc(o->dirs, (o->ndirs + 1) * sizeof(*p));
    if (!p)
        return -1;
    o->dirs = p;
    o->dirs[o->ndirs] = strdup(d);
    return o->dirs[o->ndirs++] ? 0 : -1;
}

static int parse_own(opts *o, int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        char name[64];
        const char *eq = strchr(a, '=');
        if (strncmp(a, "--", 2) != 0) {
            sl_error_set(SL_ERR_INVALID, "unexpected argument \"%s\"", a);
            return -1;
        }
        snprintf(name, sizeof(name), "%.*s", (int)(eq ? (size_t)(eq - a) : strlen(a)), a);
        if (strcmp(name, "--no-api") == 0) {
            o->no_api = true;
            continue;
        }
        if (eq)
            v = eq + 1;
        else if (i + 1 < argc)
            v = argv[++i];
        else {
            sl_error_set(SL_ERR_INVALID, "%s needs a value", name);
            return -1;
        }
        if (strcmp(name, "--dir") == 0) {
            if (add_dir(o, v) != 0)
                return -1;
        } else if (strcmp(name, "--debounce") == 0 || strcmp(name, "--resync") == 0) {
            int64_t *dst = name[2] == 'd' ? &o->debounce_ms : &o->resync_ms;
            if (sl_parse_duration_ms(dst, v) != SL_OK) {
                sl_error_set(SL_ERR_INVALID, "%s: bad duration \"%s\" (e.g. 200ms, 5s)", name, v);
                return -1;
            }
        } else if (strcmp(name, "--bucket") == 0) {
            o->bucket = v;
        } else if (strcmp(name, "--queue") == 0) {
            o->queue = v;
        } else {
            sl_error_set(SL_ERR_INVALID, "unknown flag %s", name);
            return -1;
        }
    }
    return 0;
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
            if (resync || (d->dirty && t - d->last_event_ms >= n->debounce_ms)) {
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
    sl_subscription *sub_apply, *sub_delete;
    bool failed;
} app;

static void start_sources(void *ud)
{
    app *a = ud;
    cw *w = &a->w;
    for (size_t i = 0; i < w->ndirs; i++)
        cw_sync_dir(w, &w->dirs[i]);
    if (!a->o.no_api &&
        (sl_envelope_subscribe(&a->sub_apply, w->nc, "sluice.api.apply", a->o.queue, w->loop,
                               cw_on_apply, w) != SL_OK ||
         sl_envelope_subscribe(&a->sub_delete, w->nc, "sluice.api.delete", a->o.queue, w->loop,
                               cw_on_delete, w) != SL_OK)) {
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
    sl_conffile conf = {0};
    int code = SL_EXIT_FAILURE;
    bool thread_started = false;

    a.o.debounce_ms = 200;
    a.o.resync_ms = 60000;
    a.o.bucket = SL_BUCKET_CONFIG;
    a.o.queue = "sluice-config-watcher";
    a.n.fd = -1;
    sl_service_args_init(&args);
    if (sl_conffile_load(&conf, argc, argv, "SLUICE_CONFIG_WATCHER_CONFIG") != SL_OK) {
        code = sl_service_usage_error(&info);
        goto out;
    }
    if (sl_service_args_parse(&args, &info, &conf.argc, conf.argv) != SL_OK) {
        code = sl_service_usage_error(&info);
        goto out;
    }
    if (args.exit_now) {
        code = args.exit_code;
        goto out;
    }
    if (parse_own(&a.o, conf.argc, conf.argv) != 0) {
        code = sl_service_usage_error(&info);
        goto out;
    }
    if (a.o.ndirs == 0 && getenv("SLUICE_CONFIG_DIRS")) {
        char *env = strdup(getenv("SLUICE_CONFIG_DIRS")), *save = NULL;
        for (char *t = env ? strtok_r(env, ":", &save) : NULL; t; t = strtok_r(NULL, ":", &save))
            if (*t && add_dir(&a.o, t) != 0)
                break;
        free(env);
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
    a.w.dirs = calloc(a.o.ndirs ? a.o.ndirs : 1, sizeof(cw_dir));
    for (size_t i = 0; a.w.dirs && i < a.o.ndirs; i++) {
        char abs[PATH_MAX];
        if (!realpath(a.o.dirs[i], abs)) {
            sl_error_set(SL_ERR_INVALID, "--dir %s: %s", a.o.dirs[i], strerror(errno));
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
    sl_subscription_free(a.sub_apply);
    sl_subscription_free(a.sub_delete);
    sl_kv_watch_free(watch);
    sl_kv_free(kv);
    if (a.n.fd >= 0)
        close(a.n.fd);
    cw_deinit(&a.w);
    for (size_t i = 0; a.w.dirs && i < a.w.ndirs; i++)
        free(a.w.dirs[i].path);
    free(a.w.dirs);
    for (size_t i = 0; i < a.o.ndirs; i++)
        free(a.o.dirs[i]);
    free(a.o.dirs);
    sl_loop_free(loop);
    sl_service_free(svc);
    sl_service_args_deinit(&args);
    sl_conffile_deinit(&conf);
    return code;
}
