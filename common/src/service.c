#include "sluice/service.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "sluice/kv.h"

/* ---- durations -------------------------------------------------------- */

sl_status sl_parse_duration_ms(int64_t *out, const char *s)
{
    static const struct {
        const char *unit;
        int64_t ms;
    } units[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}};
    int64_t v = 0;
    const char *p = s;

    if (s == NULL || *s == '\0')
        return sl_error_set(SL_ERR_INVALID, "duration: empty");
    for (; *p >= '0' && *p <= '9'; p++) {
        if (v > (INT64_MAX - 9) / 10)
            return sl_error_set(SL_ERR_INVALID, "duration '%s': too large", s);
        v = v * 10 + (*p - '0');
    }
    if (p == s)
        return sl_error_set(SL_ERR_INVALID, "duration '%s': expected a number and a unit", s);
    if (*p == '\0') {
        if (v != 0)
            return sl_error_set(SL_ERR_INVALID, "duration '%s': missing unit (ms, s, m, h)", s);
        *out = 0;
        return SL_OK;
    }
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcmp(p, units[i].unit) == 0) {
            if (v > INT64_MAX / units[i].ms)
                return sl_error_set(SL_ERR_INVALID, "duration '%s': too large", s);
            *out = v * units[i].ms;
            return SL_OK;
        }
    }
    return sl_error_set(SL_ERR_INVALID, "duration '%s': unknown unit (ms, s, m, h)", s);
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- loop ------------------------------------------------------------- */

struct task {
    struct task *next;
    const void *owner;
    sl_loop_fn run;
    sl_loop_fn drop;
    void *ud;
};

struct sl_loop {
    pthread_mutex_t lock;
    pthread_cond_t wake; /* a task was queued, or stop */
    pthread_cond_t idle; /* the running task returned */
    struct task *head;
    struct task **tail;
    bool running;
    bool stop;
    pthread_t thread;
    bool in_task;
    const void *cur_owner;
};

sl_status sl_loop_new(sl_loop **out)
{
    sl_loop *l = calloc(1, sizeof(*l));

    if (l == NULL)
        return sl_error_set(SL_ERR_NOMEM, "loop");
    pthread_mutex_init(&l->lock, NULL);
    pthread_cond_init(&l->wake, NULL);
    pthread_cond_init(&l->idle, NULL);
    l->tail = &l->head;
    *out = l;
    return SL_OK;
}

static void drop_list(struct task *t)
{
    while (t != NULL) {
        struct task *next = t->next;
        if (t->drop != NULL)
            t->drop(t->ud);
        free(t);
        t = next;
    }
}

void sl_loop_free(sl_loop *l)
{
    if (l == NULL)
        return;
    drop_list(l->head);
    pthread_cond_destroy(&l->idle);
    pthread_cond_destroy(&l->wake);
    pthread_mutex_destroy(&l->lock);
    free(l);
}

sl_status sl_loop_post(sl_loop *l, const void *owner, sl_loop_fn run, sl_loop_fn drop, void *ud)
{
    struct task *t = malloc(sizeof(*t));

    if (t == NULL)
        return sl_error_set(SL_ERR_NOMEM, "loop task");
    t->next = NULL;
    t->owner = owner;
    t->run = run;
    t->drop = drop;
    t->ud = ud;
    pthread_mutex_lock(&l->lock);
    *l->tail = t;
    l->tail = &t->next;
    pthread_cond_signal(&l->wake);
    pthread_mutex_unlock(&l->lock);
    return SL_OK;
}

void sl_loop_cancel(sl_loop *l, const void *owner)
{
    struct task *dropped = NULL, **dtail = &dropped;
    struct task **pp;

    pthread_mutex_lock(&l->lock);
    pp = &l->head;
    while (*pp != NULL) {
        struct task *t = *pp;
        if (t->owner == owner) {
            *pp = t->next;
            t->next = NULL;
            *dtail = t;
            dtail = &t->next;
        } else {
            pp = &t->next;
        }
    }
    l->tail = pp;
    if (!(l->running && pthread_equal(l->thread, pthread_self()))) {
        while (l->in_task && l->cur_owner == owner)
            pthread_cond_wait(&l->idle, &l->lock);
    }
    pthread_mutex_unlock(&l->lock);
    /* Outside the lock: a drop function may post or cancel. */
    drop_list(dropped);
}

sl_status sl_loop_run(sl_loop *l)
{
    sl_status st = SL_OK;

    pthread_mutex_lock(&l->lock);
    if (l->running) {
        st = sl_error_set(SL_ERR_INVALID, "loop already running");
        goto out;
    }
    l->running = true;
    l->thread = pthread_self();
    while (!l->stop) {
        struct task *t = l->head;
        if (t == NULL) {
            pthread_cond_wait(&l->wake, &l->lock);
            continue;
        }
        l->head = t->next;
        if (l->head == NULL)
            l->tail = &l->head;
        l->in_task = true;
        l->cur_owner = t->owner;
        pthread_mutex_unlock(&l->lock);
        t->run(t->ud);
        free(t);
        pthread_mutex_lock(&l->lock);
        l->in_task = false;
        l->cur_owner = NULL;
        pthread_cond_broadcast(&l->idle);
    }
    /* A stop requested before run() started still counts: it is cleared
     * only here. */
    l->stop = false;
    l->running = false;
out:
    pthread_mutex_unlock(&l->lock);
    return st;
}

void sl_loop_stop(sl_loop *l)
{
    pthread_mutex_lock(&l->lock);
    l->stop = true;
    pthread_cond_broadcast(&l->wake);
    pthread_mutex_unlock(&l->lock);
}

bool sl_loop_is_current(sl_loop *l)
{
    bool cur;

    pthread_mutex_lock(&l->lock);
    cur = l->running && pthread_equal(l->thread, pthread_self());
    pthread_mutex_unlock(&l->lock);
    return cur;
}

/* ---- common flags ------------------------------------------------------ */

void sl_nats_flags_table(sl_flag t[SL_NATS_FLAGS_N], sl_nats_flags *v, const char *connect_timeout)
{
    memset(v, 0, sizeof(*v));
    v->connect_timeout_ms = -1;
    t[0] = (sl_flag){.name = "nats-url", .kind = SL_FLAG_STRING, .target = &v->url, .env = "NATS_URL",
                     .arg = "URL[,URL...]", .def = SL_NATS_DEFAULT_URL, .help = "NATS server(s)"};
    t[1] = (sl_flag){.name = "nats-creds", .kind = SL_FLAG_STRING, .target = &v->creds, .env = "NATS_CREDS",
                     .arg = "FILE", .help = "NATS credentials file"};
    t[2] = (sl_flag){.name = "nats-tls-cert", .kind = SL_FLAG_STRING, .target = &v->tls_cert,
                     .env = "NATS_TLS_CERT", .arg = "FILE", .help = "client certificate, PEM"};
    t[3] = (sl_flag){.name = "nats-tls-key", .kind = SL_FLAG_STRING, .target = &v->tls_key,
                     .env = "NATS_TLS_KEY", .arg = "FILE", .help = "client key, PEM"};
    t[4] = (sl_flag){.name = "nats-tls-ca", .kind = SL_FLAG_STRING, .target = &v->tls_ca, .env = "NATS_TLS_CA",
                     .arg = "FILE", .help = "CA bundle to verify the server, PEM"};
    t[5] = (sl_flag){.name = "nats-name", .kind = SL_FLAG_STRING, .target = &v->name, .arg = "NAME",
                     .help = "connection name (default: the program's name)"};
    t[6] = (sl_flag){.name = "nats-connect-timeout", .kind = SL_FLAG_DURATION, .target = &v->connect_timeout_ms,
                     .def = connect_timeout, .help = "keep trying to connect at start-up this long"};
    t[7] = (sl_flag){.name = "nats-nkey", .kind = SL_FLAG_STRING, .target = &v->nkey, .env = "NATS_NKEY",
                     .arg = "FILE", .help = "NATS user nkey seed file, mode 0600 (sluicectl nats-auth)"};
    t[8] = (sl_flag){.name = "nats-auth-dir", .kind = SL_FLAG_STRING, .target = &v->auth_dir,
                     .env = "SLUICE_NATS_AUTH_DIR", .arg = "DIR",
                     .help = "role seeds made by sluicectl nats-auth: this program's, by its\n"
                             "connection name (when --nats-nkey is not given)"};
    t[9] = (sl_flag){.name = "kv-replicas", .kind = SL_FLAG_INT, .target = &v->kv_replicas,
                     .env = "SLUICE_KV_REPLICAS", .min = 1, .max = SL_KV_REPLICAS_MAX,
                     .help = "replicas of the KV buckets and streams Sluice creates; existing ones\n"
                             "are scaled to N (default: 1 for new ones, existing ones left as they are)"};
}

sl_status sl_nats_flags_apply(sl_nats_settings *s, const sl_nats_flags *v)
{
    static const struct {
        const char *name;
        size_t off;
    } strs[] = {
        {"nats-url", offsetof(sl_nats_flags, url)},
        {"nats-creds", offsetof(sl_nats_flags, creds)},
        {"nats-nkey", offsetof(sl_nats_flags, nkey)},
        {"nats-auth-dir", offsetof(sl_nats_flags, auth_dir)},
        {"nats-tls-cert", offsetof(sl_nats_flags, tls_cert)},
        {"nats-tls-key", offsetof(sl_nats_flags, tls_key)},
        {"nats-tls-ca", offsetof(sl_nats_flags, tls_ca)},
        {"nats-name", offsetof(sl_nats_flags, name)},
    };
    sl_status st = SL_OK;

    for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]) && st == SL_OK; i++) {
        const char *value = *(const char *const *)((const char *)v + strs[i].off);
        if (value != NULL)
            st = sl_nats_settings_set(s, strs[i].name, value);
    }
    if (v->connect_timeout_ms >= 0)
        s->startup_deadline_ms = v->connect_timeout_ms;
    if (v->kv_replicas > 0)
        s->kv_replicas = v->kv_replicas;
    return st;
}

void sl_service_args_init(sl_service_args *a)
{
    memset(a, 0, sizeof(*a));
    a->log_level = SL_LOG_INFO;
    a->drain_timeout_ms = SL_SERVICE_DRAIN_DEFAULT_MS;
    sl_nats_settings_init(&a->nats);
    sl_flags_init(&a->flags_);
}

void sl_service_args_deinit(sl_service_args *a)
{
    free(a->metrics_addr);
    a->metrics_addr = NULL;
    sl_nats_settings_deinit(&a->nats);
    sl_flags_deinit(&a->flags_);
}

/* The common flags' table, writing into a's private fields. */
static void common_table(sl_service_args *a, const sl_service_info *info)
{
    sl_flag *t = a->common_;
    size_t n = 0;
    char *e;

    /* "sluice-config-watcher" -> SLUICE_CONFIG_WATCHER_CONFIG */
    snprintf(a->config_env_, sizeof(a->config_env_), "%s_CONFIG", info->name);
    for (e = a->config_env_; *e != '\0'; e++)
        *e = *e == '-' ? '_' : (char)(*e >= 'a' && *e <= 'z' ? *e - 32 : *e);
    t[n++] = (sl_flag){.name = "config", .kind = SL_FLAG_STRING, .target = &a->config_file,
                       .env = a->config_env_, .arg = "FILE", .opts = SL_FLAG_CONFIG,
                       .help = "read flags from FILE: one \"flag value\" or \"flag = value\" a line,\n"
                               "'#' comments; the environment and the command line win"};
    t[n++] = (sl_flag){.name = "log-level", .kind = SL_FLAG_CHOICE, .target = &a->log_level_,
                       .env = "SLUICE_LOG_LEVEL", .def = "info", .choices = "error|warn|info|debug|trace",
                       .arg = "LEVEL", .help = "error, warn, info, debug or trace"};
    t[n++] = (sl_flag){.name = "metrics-addr", .kind = SL_FLAG_STRING, .target = &a->metrics_addr_,
                       .env = "SLUICE_METRICS_ADDR", .arg = "HOST:PORT",
                       .help = "serve /metrics, /healthz, /readyz; off when not set\n"
                               "(:PORT: every address; port 0 picks one)"};
    t[n++] = (sl_flag){.name = "drain-timeout", .kind = SL_FLAG_DURATION, .target = &a->drain_timeout_ms,
                       .def = SL_SERVICE_DRAIN_DEFAULT, .help = "graceful stop deadline: after SIGTERM the process exits within\n"
                       "this long, NATS reachable or not (waits for NATS at most half of it)"};
    sl_nats_flags_table(t + n, &a->nats_, "30s");
    n += SL_NATS_FLAGS_N;
    t[n++] = (sl_flag){.name = "help", .shorthand = 'h', .kind = SL_FLAG_BOOL, .target = &a->help_,
                       .opts = SL_FLAG_EXIT, .help = "show this help"};
    t[n++] = (sl_flag){.name = "version", .kind = SL_FLAG_BOOL, .target = &a->version_,
                       .opts = SL_FLAG_EXIT, .help = "print the version"};
}

void sl_service_print_help(FILE *f, const sl_service_args *a)
{
    const sl_service_info *info = a->info_;

    fprintf(f, "Usage: %s [flags]\n", info->name);
    if (info->summary != NULL)
        fprintf(f, "%s\n", info->summary);
    sl_flags_print_help(&a->flags_, f);
    if (info->usage != NULL)
        fprintf(f, "\n%s", info->usage);
    fprintf(f, "\nEach flag comes from the command line (--flag value or --flag=value), else its\n"
               "environment variable, else the config file (--config), else its default.\n"
               "Exit status: 0 stopped cleanly, 1 runtime error, 2 usage or configuration error.\n");
}

int sl_service_usage_error(const sl_service_info *info)
{
    fprintf(stderr, "%s: %s\nTry '%s --help'.\n", info->name, sl_error_msg(), info->name);
    return SL_EXIT_USAGE;
}

sl_status sl_service_args_parse(sl_service_args *a, const sl_service_info *info, const sl_flag *own,
                                size_t n_own, int argc, char **argv)
{
    sl_status st;

    a->info_ = info;
    common_table(a, info);
    snprintf(a->own_title_, sizeof(a->own_title_), "%s flags", info->name);
    if ((own != NULL && (st = sl_flags_add(&a->flags_, a->own_title_, own, n_own)) != SL_OK) ||
        (st = sl_flags_add(&a->flags_, "Common flags", a->common_, SL_SERVICE_COMMON_FLAGS)) != SL_OK ||
        (st = sl_flags_parse(&a->flags_, &argc, argv, 0)) != SL_OK)
        return st;
    if (a->help_ || a->version_) {
        if (a->help_)
            sl_service_print_help(stdout, a);
        else
            printf("%s %s\n", info->name, info->version != NULL ? info->version : "unknown");
        a->exit_now = true;
        a->exit_code = SL_EXIT_OK;
        return SL_OK;
    }
    if (a->log_level_ != NULL && sl_log_level_parse(&a->log_level, a->log_level_) == SL_OK)
        a->log_level_set = true;
    free(a->metrics_addr);
    a->metrics_addr = NULL;
    if (a->metrics_addr_ != NULL && (a->metrics_addr = strdup(a->metrics_addr_)) == NULL)
        return sl_error_set(SL_ERR_NOMEM, "--metrics-addr");
    return sl_nats_flags_apply(&a->nats, &a->nats_);
}

/* ---- the service ------------------------------------------------------- */

/* The self-pipe is the signal flag: the handler writes the signal number,
 * the service's signal thread reads it. Byte 0 stops that thread; byte 255
 * makes it re-read the drain deadline. */
#define SIGBYTE_QUIT 0
#define SIGBYTE_WAKE 255

static int sig_pipe[2] = {-1, -1};
static atomic_bool service_exists;

struct sl_service {
    sl_service_info info;
    char *name;
    char *version;
    sl_service_args args; /* copy; nats settings copied too */
    sl_metrics *metrics;
    sl_metrics_server *server;
    atomic_bool ready;
    sl_nats *nats;

    pthread_t sig_thread;
    struct sigaction old_int, old_term, old_hup, old_pipe;

    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool stopping;
    int exit_code;
    int64_t deadline; /* drain deadline (monotonic ms), 0 = not armed */
    int64_t stop_at;  /* when the stop was requested (monotonic ms), 0 = not yet */
    /* The connection as the signal thread may abandon it: set by
     * sl_service_connect(), taken back by sl_service_free() before it
     * closes it (nats_lock; never held while waiting on anything else). */
    pthread_mutex_t nats_lock;
    sl_nats *nats_live;
    bool nats_given_up;
    sl_loop *loop;    /* set while sl_service_run() runs it */
    sl_service_reload_fn reload;
    void *reload_ud;

    /* Heartbeat (started by sl_service_connect()): its own lock, so a put
     * blocked on NATS never holds up signals or readiness. */
    pthread_mutex_t hb_lock;
    pthread_cond_t hb_cond; /* CLOCK_MONOTONIC */
    pthread_t hb_thread;
    bool hb_running;
    bool hb_stop;
    bool hb_kick; /* readiness changed: put now */
    int64_t hb_interval_ms;
    int64_t started_s; /* wall clock */
    char hb_key[128];
};

static void on_signal(int signo)
{
    int saved = errno;
    unsigned char b = (unsigned char)signo;
    ssize_t n = write(sig_pipe[1], &b, 1);

    (void)n; /* a full pipe already holds a pending signal */
    errno = saved;
}

static void wake_signal_thread(unsigned char b)
{
    ssize_t n;

    do
        n = write(sig_pipe[1], &b, 1);
    while (n < 0 && errno == EINTR);
}

static void reload_task(void *ud)
{
    sl_service *svc = ud;
    sl_service_reload_fn fn;
    void *fud;

    pthread_mutex_lock(&svc->lock);
    fn = svc->reload;
    fud = svc->reload_ud;
    pthread_mutex_unlock(&svc->lock);
    if (fn != NULL)
        fn(svc, fud);
}

static void handle_signal(sl_service *svc, int signo)
{
    bool stopping;
    sl_loop *loop;

    pthread_mutex_lock(&svc->lock);
    stopping = svc->stopping;
    loop = svc->loop;
    pthread_mutex_unlock(&svc->lock);

    if (signo == SIGHUP) {
        sl_log_info("service", "SIGHUP received");
        /* On the loop the hook is serialised with the service's other
         * callbacks; sl_service_run() cancels it with the loop. */
        if (loop == NULL || sl_loop_post(loop, svc, reload_task, NULL, svc) != SL_OK)
            reload_task(svc);
        return;
    }
    if (stopping) {
        sl_log_error("service", "second signal while stopping, exiting now", "signal=%s",
                     sigabbrev_np(signo));
        _exit(SL_EXIT_FAILURE);
    }
    sl_log_info("service", "stopping", "signal=%s", sigabbrev_np(signo));
    sl_service_request_stop(svc, SL_EXIT_OK);
}

/* While stopping: gives up on NATS when it is unreachable after half the
 * drain timeout, or in any case shortly before the deadline, so that
 * whatever waits on it (KV writes, JetStream requests, reconnects) returns
 * and the process can finish its stop in order. Returns how long to sleep
 * before checking again (-1: no need). */
static int64_t maybe_abandon_nats(sl_service *svc, int64_t stop_at, int64_t deadline)
{
    int64_t now = mono_ms(), drain = svc->args.drain_timeout_ms;
    int64_t wait_for_nats = stop_at + drain / 2;
    int64_t last_call = deadline - SL_SERVICE_EXIT_MARGIN_MS - (drain < 2000 ? drain / 4 : 500);
    int64_t next = -1;

    pthread_mutex_lock(&svc->nats_lock);
    if (svc->nats_live != NULL && !svc->nats_given_up) {
        bool up = sl_nats_is_connected(svc->nats_live);
        if ((!up && now >= wait_for_nats) || now >= last_call) {
            sl_log_warn("service", up ? "drain running late: giving up on NATS"
                                      : "NATS unreachable while stopping: giving up on it",
                        "waited_ms=%lld drain_timeout_ms=%lld", (long long)(now - stop_at), (long long)drain);
            sl_nats_abandon(svc->nats_live, up ? "drain deadline near" : "unreachable while stopping");
            svc->nats_given_up = true;
        } else {
            next = 100;
        }
    }
    pthread_mutex_unlock(&svc->nats_lock);
    return next;
}

static void *signal_main(void *arg)
{
    sl_service *svc = arg;

    for (;;) {
        struct pollfd p = {.fd = sig_pipe[0], .events = POLLIN};
        unsigned char buf[16];
        int64_t deadline, stop_at, timeout = -1;
        ssize_t n;

        pthread_mutex_lock(&svc->lock);
        deadline = svc->deadline;
        stop_at = svc->stop_at;
        pthread_mutex_unlock(&svc->lock);
        if (deadline != 0) {
            int64_t check = maybe_abandon_nats(svc, stop_at, deadline);
            timeout = deadline - mono_ms();
            if (timeout <= 0) {
                sl_log_error("service", "drain deadline passed, exiting", "drain_timeout_ms=%lld",
                             (long long)svc->args.drain_timeout_ms);
                _exit(SL_EXIT_FAILURE);
            }
            if (check >= 0 && check < timeout)
                timeout = check;
        }
        if (poll(&p, 1, timeout > INT32_MAX ? INT32_MAX : (int)timeout) <= 0)
            continue;
        n = read(sig_pipe[0], buf, sizeof(buf));
        for (ssize_t i = 0; i < n; i++) {
            if (buf[i] == SIGBYTE_QUIT)
                return NULL;
            if (buf[i] != SIGBYTE_WAKE)
                handle_signal(svc, buf[i]);
        }
    }
}

static sl_status install_signals(sl_service *svc)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    if (sigaction(SIGINT, &sa, &svc->old_int) != 0 || sigaction(SIGTERM, &sa, &svc->old_term) != 0 ||
        sigaction(SIGHUP, &sa, &svc->old_hup) != 0)
        return sl_error_set(SL_ERR_IO, "sigaction: %s", strerror(errno));
    sa.sa_handler = SIG_IGN;
    if (sigaction(SIGPIPE, &sa, &svc->old_pipe) != 0)
        return sl_error_set(SL_ERR_IO, "sigaction: %s", strerror(errno));
    return SL_OK;
}

static void restore_signals(sl_service *svc)
{
    sigaction(SIGINT, &svc->old_int, NULL);
    sigaction(SIGTERM, &svc->old_term, NULL);
    sigaction(SIGHUP, &svc->old_hup, NULL);
    sigaction(SIGPIPE, &svc->old_pipe, NULL);
}

/* ---- heartbeat -------------------------------------------------------- */

static void hb_init(sl_service *svc)
{
    pthread_condattr_t ca;
    const char *env = getenv("SLUICE_HEARTBEAT_INTERVAL");
    int64_t iv = SL_SERVICE_HEARTBEAT_MS;

    pthread_mutex_init(&svc->hb_lock, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&svc->hb_cond, &ca);
    pthread_condattr_destroy(&ca);
    if (env != NULL && *env != '\0' && (sl_parse_duration_ms(&iv, env) != SL_OK || iv < 100)) {
        sl_log_warn("service", "ignoring SLUICE_HEARTBEAT_INTERVAL", "value=%s", sl_log_q(env));
        iv = SL_SERVICE_HEARTBEAT_MS;
    }
    svc->hb_interval_ms = iv;
    svc->started_s = (int64_t)time(NULL);
}

/* The value: a small JSON object (documented in service.h). NULL on OOM. */
static char *hb_value(sl_service *svc)
{
    char host[256] = "", started[32] = "", now[32] = "";
    time_t t0 = (time_t)svc->started_s, t1 = time(NULL);
    struct tm tm;
    json_t *o;
    char *text;

    gethostname(host, sizeof(host) - 1);
    strftime(started, sizeof(started), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t0, &tm));
    strftime(now, sizeof(now), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t1, &tm));
    o = json_pack("{s:s, s:s, s:s, s:i, s:s, s:s, s:s, s:b, s:i, s:I}", "service", svc->name,
                  "instance", strchr(svc->hb_key, '.') + 1, "version", svc->version, "pid",
                  (int)getpid(), "host", host, "startedAt", started, "updatedAt", now, "ready",
                  (int)sl_service_is_ready(svc), "metricsPort", sl_service_metrics_port(svc),
                  "intervalMs", (json_int_t)svc->hb_interval_ms);
    text = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    return text;
}

static void *hb_main(void *arg)
{
    sl_service *svc = arg;
    sl_kv *kv = NULL;
    bool failing = false;

    pthread_mutex_lock(&svc->hb_lock);
    while (!svc->hb_stop) {
        struct timespec ts;
        sl_status st = SL_OK;
        char *v;

        svc->hb_kick = false;
        pthread_mutex_unlock(&svc->hb_lock);
        if (kv == NULL) {
            sl_kv_config cfg;
            sl_kv_config_init(&cfg, SL_SERVICES_BUCKET);
            cfg.description = "Sluice service heartbeats: <service>.<instance>";
            cfg.ttl_ms = 3 * svc->hb_interval_ms;
            st = sl_kv_open(&kv, svc->nats, &cfg);
        }
        if (st == SL_OK && (v = hb_value(svc)) != NULL) {
            st = sl_kv_put(NULL, kv, svc->hb_key, v, strlen(v));
            free(v);
        }
        if (st != SL_OK && !failing)
            sl_log_warn("service", "heartbeat failed", "bucket=%s err=%s", SL_SERVICES_BUCKET,
                        sl_log_q(sl_error_msg()));
        else if (st == SL_OK && failing)
            sl_log_info("service", "heartbeat ok again", "bucket=%s", SL_SERVICES_BUCKET);
        failing = st != SL_OK;

        pthread_mutex_lock(&svc->hb_lock);
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += svc->hb_interval_ms / 1000;
        ts.tv_nsec += (svc->hb_interval_ms % 1000) * 1000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        while (!svc->hb_stop && !svc->hb_kick &&
               pthread_cond_timedwait(&svc->hb_cond, &svc->hb_lock, &ts) != ETIMEDOUT)
            ;
    }
    pthread_mutex_unlock(&svc->hb_lock);
    /* Graceful stop: the entry goes now rather than when its TTL ends. */
    if (kv != NULL && !sl_nats_is_connected(svc->nats))
        sl_log_info("service", "NATS unreachable: heartbeat entry left to expire with its TTL", "key=%s",
                    sl_log_q(svc->hb_key));
    else if (kv != NULL && sl_kv_delete(NULL, kv, svc->hb_key, 0) != SL_OK)
        sl_log_debug("service", "heartbeat delete failed", "err=%s", sl_log_q(sl_error_msg()));
    sl_kv_free(kv);
    return NULL;
}

static void hb_start(sl_service *svc)
{
    unsigned rnd = 0;
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    int rc;

    if (fd < 0 || read(fd, &rnd, sizeof(rnd)) != (ssize_t)sizeof(rnd))
        rnd = (unsigned)mono_ms() ^ (unsigned)getpid() << 16;
    if (fd >= 0)
        close(fd);
    /* Service names are [a-z-]; an instance is <pid>-<random>. */
    snprintf(svc->hb_key, sizeof(svc->hb_key), "%.80s.%d-%08x", svc->name, (int)getpid(), rnd);
    rc = pthread_create(&svc->hb_thread, NULL, hb_main, svc);
    if (rc != 0)
        sl_log_warn("service", "no heartbeat thread", "err=%s", sl_log_q(strerror(rc)));
    svc->hb_running = rc == 0;
}

static void hb_stop(sl_service *svc)
{
    if (!svc->hb_running)
        return;
    pthread_mutex_lock(&svc->hb_lock);
    svc->hb_stop = true;
    pthread_cond_signal(&svc->hb_cond);
    pthread_mutex_unlock(&svc->hb_lock);
    pthread_join(svc->hb_thread, NULL);
    svc->hb_running = false;
}

/* Frees what sl_service_new allocated in svc, and svc. */
static void service_release(sl_service *svc)
{
    sl_nats_settings_deinit(&svc->args.nats);
    free(svc->args.metrics_addr);
    free(svc->name);
    free(svc->version);
    pthread_cond_destroy(&svc->hb_cond);
    pthread_mutex_destroy(&svc->hb_lock);
    pthread_cond_destroy(&svc->cond);
    pthread_mutex_destroy(&svc->nats_lock);
    pthread_mutex_destroy(&svc->lock);
    free(svc);
}

sl_status sl_service_new(sl_service **out, const sl_service_info *info, const sl_service_args *args)
{
    sl_status st = SL_OK;
    sl_service *svc = NULL;
    bool expected = false;
    bool signals = false;
    int rc;

    if (!atomic_compare_exchange_strong(&service_exists, &expected, true))
        return sl_error_set(SL_ERR_EXISTS, "a service already exists in this process");
    svc = calloc(1, sizeof(*svc));
    if (svc == NULL) {
        st = sl_error_set(SL_ERR_NOMEM, "service");
        goto err;
    }
    pthread_mutex_init(&svc->lock, NULL);
    pthread_cond_init(&svc->cond, NULL);
    pthread_mutex_init(&svc->nats_lock, NULL);
    hb_init(svc);
    atomic_init(&svc->ready, false);
    svc->name = strdup(info->name);
    svc->version = strdup(info->version != NULL ? info->version : "unknown");
    svc->args = *args;
    /* The parser's strings stay with args: the service keeps none of them. */
    memset(&svc->args.flags_, 0, sizeof(svc->args.flags_));
    svc->args.config_file = NULL;
    svc->args.metrics_addr = args->metrics_addr != NULL ? strdup(args->metrics_addr) : NULL;
    sl_nats_settings_init(&svc->args.nats);
    if (svc->name == NULL || svc->version == NULL ||
        (args->metrics_addr != NULL && svc->args.metrics_addr == NULL)) {
        st = sl_error_set(SL_ERR_NOMEM, "service");
        goto err;
    }
    st = sl_nats_settings_copy(&svc->args.nats, &args->nats);
    if (st == SL_OK && svc->args.nats.name == NULL)
        st = sl_nats_settings_set(&svc->args.nats, "nats-name", svc->name);
    if (st != SL_OK)
        goto err;
    svc->info = *info;
    svc->info.name = svc->name;
    svc->info.version = svc->version;
    svc->info.summary = NULL;
    svc->info.usage = NULL;

    if (sl_log_init(svc->name) != SL_OK)
        sl_log_warn("service", "ignoring SLUICE_LOG_LEVEL", "err=%s", sl_log_q(sl_error_msg()));
    if (args->log_level_set)
        sl_log_set_level(args->log_level);

    st = sl_metrics_new(&svc->metrics);
    if (st != SL_OK)
        goto err;
    if (svc->args.metrics_addr != NULL) {
        st = sl_metrics_server_start(&svc->server, svc->metrics, svc->args.metrics_addr);
        if (st != SL_OK)
            goto err;
    }
    if (pipe2(sig_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
        st = sl_error_set(SL_ERR_IO, "pipe: %s", strerror(errno));
        goto err;
    }
    /* The reading end blocks in poll() anyway; keep reads simple. */
    fcntl(sig_pipe[0], F_SETFL, 0);
    st = install_signals(svc);
    signals = true;
    if (st != SL_OK)
        goto err;
    rc = pthread_create(&svc->sig_thread, NULL, signal_main, svc);
    if (rc != 0) {
        st = sl_error_set(SL_ERR_IO, "signal thread: %s", strerror(rc));
        goto err;
    }
    sl_log_info("service", "starting", "version=%s pid=%d", sl_log_q(svc->version), (int)getpid());
    *out = svc;
    goto out;

err:
    if (signals)
        restore_signals(svc);
    if (sig_pipe[0] >= 0) {
        close(sig_pipe[0]);
        close(sig_pipe[1]);
        sig_pipe[0] = sig_pipe[1] = -1;
    }
    if (svc != NULL) {
        sl_metrics_server_stop(svc->server);
        sl_metrics_free(svc->metrics);
        service_release(svc);
    }
    atomic_store(&service_exists, false);
out:
    return st;
}

void sl_service_free(sl_service *svc)
{
    if (svc == NULL)
        return;
    hb_stop(svc);
    if (svc->nats != NULL) {
        int64_t budget = svc->args.drain_timeout_ms, deadline;
        /* Past this point the signal thread no longer touches it. */
        pthread_mutex_lock(&svc->nats_lock);
        svc->nats_live = NULL;
        pthread_mutex_unlock(&svc->nats_lock);
        pthread_mutex_lock(&svc->lock);
        deadline = svc->deadline;
        pthread_mutex_unlock(&svc->lock);
        /* What is left of the drain timeout, keeping the exit margin. */
        if (deadline != 0)
            budget = deadline - SL_SERVICE_EXIT_MARGIN_MS - mono_ms();
        if (budget < 1 || !sl_nats_is_connected(svc->nats))
            budget = 0; /* nothing can be flushed: close at once */
        sl_nats_close(svc->nats, budget);
        svc->nats = NULL;
    }
    wake_signal_thread(SIGBYTE_QUIT);
    pthread_join(svc->sig_thread, NULL);
    restore_signals(svc);
    close(sig_pipe[0]);
    close(sig_pipe[1]);
    sig_pipe[0] = sig_pipe[1] = -1;
    sl_metrics_server_stop(svc->server);
    sl_metrics_free(svc->metrics);
    sl_log_info("service", "stopped", "exit_code=%d", svc->exit_code);
    service_release(svc);
    atomic_store(&service_exists, false);
}

static bool connect_cancelled(void *ud)
{
    return sl_service_stopping(ud);
}

sl_status sl_service_connect(sl_nats **out, sl_service *svc)
{
    sl_status st = SL_OK;

    if (svc->nats == NULL) {
        svc->args.nats.cancelled = connect_cancelled;
        svc->args.nats.cancelled_ud = svc;
        st = sl_nats_connect(&svc->nats, &svc->args.nats);
        if (st == SL_OK) {
            pthread_mutex_lock(&svc->nats_lock);
            svc->nats_live = svc->nats;
            pthread_mutex_unlock(&svc->nats_lock);
            hb_start(svc);
        }
    }
    if (st == SL_OK)
        *out = svc->nats;
    return st;
}

sl_metrics *sl_service_metrics(sl_service *svc)
{
    return svc->metrics;
}

int sl_service_metrics_port(sl_service *svc)
{
    return svc->server != NULL ? sl_metrics_server_port(svc->server) : 0;
}

void sl_service_set_ready(sl_service *svc, bool ready)
{
    bool was = atomic_exchange(&svc->ready, ready);

    if (svc->server != NULL)
        sl_metrics_server_set_ready(svc->server, ready);
    if (was != ready) {
        sl_log_info("service", ready ? "ready" : "not ready");
        pthread_mutex_lock(&svc->hb_lock);
        svc->hb_kick = true;
        pthread_cond_signal(&svc->hb_cond);
        pthread_mutex_unlock(&svc->hb_lock);
    }
}

bool sl_service_is_ready(sl_service *svc)
{
    return atomic_load(&svc->ready);
}

void sl_service_on_reload(sl_service *svc, sl_service_reload_fn fn, void *ud)
{
    pthread_mutex_lock(&svc->lock);
    svc->reload = fn;
    svc->reload_ud = ud;
    pthread_mutex_unlock(&svc->lock);
}

/* Starts the drain deadline (once) and returns the exit code. Lock held. */
static int arm_deadline_locked(sl_service *svc)
{
    if (svc->deadline == 0) {
        svc->stop_at = mono_ms();
        svc->deadline = svc->stop_at + svc->args.drain_timeout_ms + SL_SERVICE_EXIT_MARGIN_MS;
        wake_signal_thread(SIGBYTE_WAKE);
    }
    return svc->exit_code;
}

void sl_service_request_stop(sl_service *svc, int exit_code)
{
    pthread_mutex_lock(&svc->lock);
    if (!svc->stopping) {
        svc->stopping = true;
        svc->exit_code = exit_code;
        if (svc->loop != NULL)
            sl_loop_stop(svc->loop);
        pthread_cond_broadcast(&svc->cond);
        /* The drain deadline runs from the request, wherever the main
         * thread is (starting up, in a blocking call, or in the loop). */
        arm_deadline_locked(svc);
    }
    pthread_mutex_unlock(&svc->lock);
}

bool sl_service_stopping(sl_service *svc)
{
    bool s;

    pthread_mutex_lock(&svc->lock);
    s = svc->stopping;
    pthread_mutex_unlock(&svc->lock);
    return s;
}


int sl_service_wait_stop(sl_service *svc)
{
    int code;

    pthread_mutex_lock(&svc->lock);
    while (!svc->stopping)
        pthread_cond_wait(&svc->cond, &svc->lock);
    code = arm_deadline_locked(svc);
    pthread_mutex_unlock(&svc->lock);
    return code;
}

int sl_service_run(sl_service *svc, sl_loop *loop)
{
    int code;
    bool stopping;

    pthread_mutex_lock(&svc->lock);
    svc->loop = loop;
    stopping = svc->stopping;
    pthread_mutex_unlock(&svc->lock);

    if (!stopping && sl_loop_run(loop) != SL_OK)
        sl_service_request_stop(svc, SL_EXIT_FAILURE);

    pthread_mutex_lock(&svc->lock);
    svc->loop = NULL;
    /* The loop stopped for another reason than a stop request: that ends
     * the service all the same. */
    if (!svc->stopping) {
        svc->stopping = true;
        pthread_cond_broadcast(&svc->cond);
    }
    code = arm_deadline_locked(svc);
    pthread_mutex_unlock(&svc->lock);
    /* A SIGHUP queued but not run must not run later. */
    sl_loop_cancel(loop, svc);
    return code;
}

int sl_service_exit_code(sl_service *svc)
{
    int code;

    pthread_mutex_lock(&svc->lock);
    code = svc->exit_code;
    pthread_mutex_unlock(&svc->lock);
    return code;
}
