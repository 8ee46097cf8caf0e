/* run.c - sluicectl run: a local nats-server with JetStream and every
 * sluice-* service, in the foreground, supervised (crashed services restart
 * with backoff), all stopped on SIGINT/SIGTERM. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"
#include "sluice/flags.h"
#include "sluice/natsauth.h"
#include "sluice/report_stream.h"

#ifndef SLUICE_SOURCE_DIR
#define SLUICE_SOURCE_DIR "."
#endif

#define MAX_CHILDREN 32

typedef struct child {
    char name[64];
    char path[PATH_MAX];
    char *argv[16];
    int argc;
    pid_t pid;
    int64_t started_ms;
    int64_t restart_at_ms; /* 0: not waiting to restart */
    int64_t backoff_ms;
    int restarts;
} child;

static volatile sig_atomic_t g_stop;

static void on_signal(int s)
{
    (void)s;
    g_stop = 1;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "run: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n");
}

static bool executable(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISREG(sb.st_mode) && access(p, X_OK) == 0;
}

static bool exists(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0;
}

static void child_arg(child *c, const char *a)
{
    if (c->argc < 15) {
        c->argv[c->argc++] = strdup(a);
        c->argv[c->argc] = NULL;
    }
}

static void child_free(child *c)
{
    for (int i = 0; i < c->argc; i++)
        free(c->argv[i]);
    c->argc = 0;
}

/* The services run starts: other sluice-* binaries in the build tree are
 * tools (sluice-translate) that would exit and be restarted forever. */
static const char *const known_services[] = {
    "sluice-config-watcher", "sluice-secret-watcher", "sluice-reporter", "sluice-translator",
    "sluice-xds", "sluice-endpoint-discovery", "sluice-upstream-discovery", "sluice-function-discovery",
};

static bool known_service(const char *name)
{
    for (size_t i = 0; i < sizeof(known_services) / sizeof(known_services[0]); i++)
        if (strcmp(name, known_services[i]) == 0)
            return true;
    return false;
}

/* Adds every known sluice-* service executable of dir (not already found). */
static void scan_dir(child *kids, int *n, const char *dir)
{
    DIR *d = opendir(dir);
    for (struct dirent *de; d && (de = readdir(d));) {
        char p[PATH_MAX];
        if (!known_service(de->d_name) || *n >= MAX_CHILDREN)
            continue;
        snprintf(p, sizeof(p), "%s/%.200s", dir, de->d_name);
        if (!executable(p))
            continue;
        bool dup = false;
        for (int i = 0; i < *n && !dup; i++)
            dup = strcmp(kids[i].name, de->d_name) == 0;
        if (dup)
            continue;
        child *c = &kids[(*n)++];
        memset(c, 0, sizeof(*c));
        snprintf(c->name, sizeof(c->name), "%.63s", de->d_name);
        snprintf(c->path, sizeof(c->path), "%s", p);
    }
    if (d)
        closedir(d);
}

/* build/services/<svc>/ directories under root. */
static void scan_services(child *kids, int *n, const char *root)
{
    DIR *d = opendir(root);
    for (struct dirent *de; d && (de = readdir(d));) {
        char p[PATH_MAX];
        if (de->d_name[0] == '.')
            continue;
        snprintf(p, sizeof(p), "%s/%.200s", root, de->d_name);
        scan_dir(kids, n, p);
    }
    if (d)
        closedir(d);
}

/* --kv-replicas of sluicectl, passed to the services (0 = unset). */
static int g_kv_replicas;
/* The role seeds of the nats-server run started (absolute), passed to the
 * services as SLUICE_NATS_AUTH_DIR; "" without authentication. */
static char g_auth_dir[PATH_MAX];

static pid_t spawn(child *c, const char *nats_url)
{
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        if (nats_url)
            setenv("NATS_URL", nats_url, 1);
        if (nats_url && g_auth_dir[0]) {
            /* each service takes its own role's seed, whatever the caller's environment says */
            setenv("SLUICE_NATS_AUTH_DIR", g_auth_dir, 1);
            unsetenv("NATS_NKEY");
            unsetenv("NATS_CREDS");
        }
        if (nats_url && g_kv_replicas > 0) {
            char r[16];
            snprintf(r, sizeof(r), "%d", g_kv_replicas);
            setenv("SLUICE_KV_REPLICAS", r, 1);
        }
        execv(c->path, c->argv);
        fprintf(stderr, "run: exec %s: %s\n", c->path, strerror(errno));
        _exit(127);
    }
    if (pid > 0) {
        c->pid = pid;
        c->started_ms = now_ms();
        c->restart_at_ms = 0;
    }
    return pid;
}

static bool port_open(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

/* The flags of sluicectl run; strings belong to the sl_flags that parsed them. */
typedef struct run_opts {
    const char *config_dir, *state, *conf, *nats_bin, *xds_listen, *secrets_dir, *xds_certs;
    sl_flag_list bin_dirs, only;
    int port, metrics_base, monitor_port;
    bool no_nats, no_auth, help;
} run_opts;

/* What run starts: the services and nats-server (unless --no-nats). */
typedef struct run_state {
    child kids[MAX_CHILDREN];
    int n;
    child nats;
    char url[128];
    char secrets_dir[PATH_MAX];
} run_state;

static const char run_usage[] =
    "Usage: sluicectl run [flags]\n"
    "Starts nats-server with JetStream (state in --state-dir) and every sluice-* service\n"
    "found next to sluicectl or in build/services/*/, in the foreground. A service that\n"
    "exits is restarted with backoff (1s doubling to 30s). Ctrl-C or SIGTERM stops all.\n";

static const char run_notes[] =
    "\nThe global --kv-replicas N (SLUICE_KV_REPLICAS) is passed to the services; above 1\n"
    "it needs --no-nats and a NATS cluster.\n";

/* sluice-xds' TLS flags and their files under --xds-certs DIR/xds/. */
static const struct {
    const char *flag, *file;
} xds_cert_files[] = {{"--tls-cert", "tls.crt"}, {"--tls-key", "tls.key"}, {"--tls-client-ca", "ca.crt"}};

/* Parses run's flags into o: 0, 1 when --help was printed, or the usage
 * error's exit code (printed). */
static int run_parse(run_opts *o, sl_flags *fs, int argc, char **argv)
{
    const sl_flag table[] = {
        {.name = "config-dir", .kind = SL_FLAG_STRING, .target = &o->config_dir, .arg = "DIR",
         .help = "YAML/JSON directory for sluice-config-watcher (default examples)"},
        {.name = "state-dir", .kind = SL_FLAG_STRING, .target = &o->state, .def = ".state", .arg = "DIR",
         .help = "JetStream store and logs"},
        {.name = "nats-port", .kind = SL_FLAG_INT, .target = &o->port, .def = "4222", .min = 1, .max = 65535,
         .arg = "PORT", .help = "client port of nats-server"},
        {.name = "nats-conf", .kind = SL_FLAG_STRING, .target = &o->conf, .arg = "FILE",
         .help = "nats-server config (default deploy/nats/sluice.conf)"},
        {.name = "nats-monitor-port", .kind = SL_FLAG_INT, .target = &o->monitor_port, .def = "0", .min = 0,
         .max = 65535, .arg = "PORT",
         .help = "nats-server's monitoring port instead of the config's (0: the config's, 8222)"},
        {.name = "nats-server", .kind = SL_FLAG_STRING, .target = &o->nats_bin, .def = "nats-server",
         .arg = "PATH", .help = "nats-server binary (a name is looked up on PATH)"},
        {.name = "no-nats", .kind = SL_FLAG_BOOL, .target = &o->no_nats,
         .help = "use the NATS at --nats-url / NATS_URL instead of starting one"},
        {.name = "no-auth", .kind = SL_FLAG_BOOL, .target = &o->no_auth,
         .help = "start nats-server without authentication (by default every service gets\n"
                 "its own nkey and least privilege, in <state-dir>/nats-auth)"},
        {.name = "bin-dir", .kind = SL_FLAG_LIST, .target = &o->bin_dirs, .arg = "DIR",
         .help = "where the sluice-* binaries are"},
        {.name = "metrics-base-port", .kind = SL_FLAG_INT, .target = &o->metrics_base, .def = "9190", .min = 0,
         .max = 65535, .help = "give service i --metrics-addr 127.0.0.1:N+i (0 = off)"},
        {.name = "secrets-dir", .kind = SL_FLAG_STRING, .target = &o->secrets_dir, .arg = "DIR",
         .help = "directory for sluice-secret-watcher (default <state-dir>/secrets)"},
        {.name = "xds-listen", .kind = SL_FLAG_STRING, .target = &o->xds_listen, .arg = "ADDR",
         .help = "sluice-xds --listen address (default: sluice-xds's, 127.0.0.1:9977)"},
        {.name = "xds-certs", .kind = SL_FLAG_STRING, .target = &o->xds_certs, .arg = "DIR",
         .help = "sluice-xds serves mutual TLS with DIR/xds/{tls.crt,tls.key,ca.crt}, as\n"
                 "`sluicectl certs DIR` makes them: clients present a proxy's certificate"},
        {.name = "only", .kind = SL_FLAG_LIST, .target = &o->only, .arg = "NAME",
         .help = "start only this service"},
        {.name = "help", .shorthand = 'h', .kind = SL_FLAG_BOOL, .target = &o->help, .opts = SL_FLAG_EXIT,
         .help = "this help"},
    };
    static sl_flag saved[sizeof(table) / sizeof(table[0])];

    /* The parser keeps the table for --help: a copy that outlives this call. */
    memcpy(saved, table, sizeof(table));
    if (sl_flags_add(fs, "Flags", saved, sizeof(saved) / sizeof(saved[0])) != SL_OK ||
        sl_flags_parse(fs, &argc, argv, 0) != SL_OK) {
        fputs(run_usage, stderr);
        return ctl_usage_error("run", "%s", sl_error_msg());
    }
    if (o->help) {
        fputs(run_usage, stdout);
        sl_flags_print_help(fs, stdout);
        fputs(run_notes, stdout);
        return 1;
    }
    if (!o->config_dir)
        o->config_dir = exists("examples") ? "examples" : SLUICE_SOURCE_DIR "/examples";
    if (!o->conf)
        o->conf = exists("deploy/nats/sluice.conf") ? "deploy/nats/sluice.conf"
                                                    : SLUICE_SOURCE_DIR "/deploy/nats/sluice.conf";
    if (!exists(o->config_dir)) {
        fprintf(stderr, "error: --config-dir %s does not exist\n", o->config_dir);
        return 1;
    }
    for (size_t i = 0; o->xds_certs && i < sizeof xds_cert_files / sizeof xds_cert_files[0]; i++) {
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/xds/%s", o->xds_certs, xds_cert_files[i].file);
        if (!exists(path)) {
            fprintf(stderr, "error: --xds-certs: %s does not exist (make it with: sluicectl certs %s)\n", path,
                    o->xds_certs);
            return 2;
        }
    }
    return 0;
}

/* kids[]: the service executables of --bin-dir, next to sluicectl, in
 * build/services/<svc>/ around it and under the current directory, kept
 * to --only's when given. */
static void find_services(run_state *rs, const run_opts *o)
{
    char self[PATH_MAX];
    ssize_t sl;

    for (size_t i = 0; i < o->bin_dirs.n; i++) {
        scan_dir(rs->kids, &rs->n, o->bin_dirs.v[i]);
        scan_services(rs->kids, &rs->n, o->bin_dirs.v[i]);
    }
    sl = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (sl > 0) {
        self[sl] = '\0';
        char *slash = strrchr(self, '/');
        if (slash) {
            *slash = '\0';
            scan_dir(rs->kids, &rs->n, self); /* installed side by side */
            slash = strrchr(self, '/');
            if (slash) {
                *slash = '\0';
                scan_services(rs->kids, &rs->n, self); /* build/services/<svc>/ */
            }
        }
    }
    scan_services(rs->kids, &rs->n, "build/services");
    if (o->only.n) {
        int m = 0;
        for (int i = 0; i < rs->n; i++) {
            const char *name = rs->kids[i].name;
            bool keep = false;
            for (size_t j = 0; j < o->only.n && !keep; j++)
                keep = strcmp(name, o->only.v[j]) == 0 ||
                       (strncmp(name, "sluice-", 7) == 0 && strcmp(name + 7, o->only.v[j]) == 0);
            if (keep)
                rs->kids[m++] = rs->kids[i];
        }
        rs->n = m;
    }
    if (rs->n == 0)
        say("warning: no sluice-* service binaries found (build first, or give --bin-dir)");
}

/* nats->path: bin as given when it has a '/', else found on PATH (execv
 * needs a path). */
static void nats_binary(child *nats, const char *bin)
{
    const char *path = getenv("PATH");
    char *dup, *save = NULL;

    snprintf(nats->path, sizeof(nats->path), "%s", bin);
    if (strchr(bin, '/'))
        return;
    dup = strdup(path ? path : "/usr/bin:/usr/sbin");
    for (char *t = dup ? strtok_r(dup, ":", &save) : NULL; t; t = strtok_r(NULL, ":", &save)) {
        char p[PATH_MAX];
        snprintf(p, sizeof(p), "%s/%s", t, bin);
        if (executable(p)) {
            snprintf(nats->path, sizeof(nats->path), "%s", p);
            break;
        }
    }
    free(dup);
    if (!executable(nats->path) && executable("/usr/sbin/nats-server"))
        snprintf(nats->path, sizeof(nats->path), "/usr/sbin/nats-server");
}

/* Waits until nats-server listens on port (10 s at most). 0, or 1 after
 * printing why not. */
static int wait_nats(child *nats, int port, const char *log)
{
    int64_t deadline = now_ms() + 10000;

    while (!port_open(port) && now_ms() < deadline && !g_stop) {
        int st;
        if (waitpid(nats->pid, &st, WNOHANG) == nats->pid) {
            fprintf(stderr, "error: nats-server exited; see %s\n", log);
            return 1;
        }
        usleep(50000);
    }
    if (!port_open(port)) {
        fprintf(stderr, "error: nats-server did not start listening on %d; see %s\n", port, log);
        kill(nats->pid, SIGKILL);
        waitpid(nats->pid, NULL, 0);
        return 1;
    }
    return 0;
}

/* Starts nats-server with JetStream in --state-dir on --nats-port and sets
 * rs->url. 0, or 1 after printing why not. */
/* Authentication for the nats-server run starts: every role's seed and
 * auth.conf in <state>/nats-auth (kept across runs), and a config that is
 * the auth block followed by --nats-conf (a nats-server include cannot
 * take an absolute path) in *conf. 0, or 1 with the reason printed. */
static int run_auth(char *conf, size_t cap, const run_opts *o)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/nats-auth", o->state);
    if (sl_natsauth_provision(dir, false) != SL_OK) {
        fprintf(stderr, "error: NATS credentials in %s: %s\n", dir, sl_error_msg());
        return 1;
    }
    if (!realpath(dir, g_auth_dir)) {
        fprintf(stderr, "error: %s: %s\n", dir, strerror(errno));
        return 1;
    }
    if (snprintf(conf, cap, "%s/nats.conf", g_auth_dir) >= (int)cap) {
        fprintf(stderr, "error: %s: path too long\n", g_auth_dir);
        return 1;
    }
    if (sl_natsauth_server_conf(conf, exists(o->conf) ? o->conf : NULL) != SL_OK) {
        fprintf(stderr, "error: %s\n", sl_error_msg());
        return 1;
    }
    say("NATS authentication on: one nkey per service in %s (sluicectl there picks its own up)", g_auth_dir);
    return 0;
}

/* JetStream keeps each account's streams in <store>/jetstream/<account>:
 * with authentication they are Sluice's account's (sluice/natsauth.h),
 * without it the global account's ($G). A state directory used the other
 * way before has its buckets moved over, so nothing applied is lost. */
static void move_store(const char *jsdir, bool auth)
{
    char from[PATH_MAX + 32], to[PATH_MAX + 32];
    snprintf(from, sizeof from, "%s/jetstream/%s", jsdir, auth ? "$G" : SL_NATSAUTH_ACCOUNT);
    snprintf(to, sizeof to, "%s/jetstream/%s", jsdir, auth ? SL_NATSAUTH_ACCOUNT : "$G");
    if (!exists(from) || exists(to))
        return;
    if (rename(from, to) == 0)
        say("JetStream store of %s moved to %s (NATS authentication %s)", from, to, auth ? "on" : "off");
    else
        say("warning: cannot move %s to %s: %s", from, to, strerror(errno));
}

static int start_nats(run_state *rs, const run_opts *o)
{
    char ps[16], jsdir[PATH_MAX], log[PATH_MAX];
    child *nats = &rs->nats;

    snprintf(jsdir, sizeof(jsdir), "%s/jetstream", o->state);
    snprintf(log, sizeof(log), "%s/nats-server.log", o->state);
    mkdir(o->state, 0755);
    mkdir(jsdir, 0755);
    if (port_open(o->port)) {
        fprintf(stderr, "error: port %d is in use: is another nats-server (or sluicectl run) "
                        "running? Use --nats-port or --no-nats.\n",
                o->port);
        return 1;
    }
    move_store(jsdir, !o->no_auth);
    snprintf(ps, sizeof(ps), "%d", o->port);
    snprintf(nats->name, sizeof(nats->name), "nats-server");
    nats_binary(nats, o->nats_bin);
    child_arg(nats, nats->path);
    const char *conf = o->conf;
    char authed[PATH_MAX + 16];
    if (!o->no_auth) {
        if (run_auth(authed, sizeof authed, o) != 0)
            return 1;
        conf = authed;
    }
    if (exists(conf)) {
        child_arg(nats, "-c");
        child_arg(nats, conf);
    } else {
        say("warning: %s not found; starting nats-server with defaults", conf);
    }
    const char *const args[] = {"-a", "127.0.0.1", "-p", ps, "-js", "-sd", jsdir, "-l", log};
    for (size_t i = 0; i < sizeof(args) / sizeof(args[0]); i++)
        child_arg(nats, args[i]);
    char ms[16];
    if (o->monitor_port > 0) { /* side by side with another nats-server on one host */
        snprintf(ms, sizeof ms, "%d", o->monitor_port);
        child_arg(nats, "-m");
        child_arg(nats, ms);
    }
    if (spawn(nats, NULL) < 0) {
        fprintf(stderr, "error: cannot start nats-server: %s\n", strerror(errno));
        return 1;
    }
    if (wait_nats(nats, o->port, log) != 0)
        return 1;
    snprintf(rs->url, sizeof(rs->url), "nats://127.0.0.1:%d", o->port);
    say("nats-server with JetStream on %s (pid %d, store %s, log %s)", rs->url, (int)nats->pid, jsdir, log);
    return 0;
}

/* The report stream before any service: reports published before
 * sluice-reporter is up are kept for it (it creates the stream too;
 * whoever comes first). */
static void ensure_report_stream(const char *url)
{
    sl_nats_settings ns;
    sl_nats *nc = NULL;

    sl_nats_settings_init(&ns);
    sl_nats_settings_set(&ns, "nats-url", url);
    sl_nats_settings_set(&ns, "nats-name", "sluicectl-run");
    if (g_auth_dir[0]) {
        char seed[PATH_MAX + 16];
        snprintf(seed, sizeof seed, "%s/sluicectl.nk", g_auth_dir);
        sl_nats_settings_set(&ns, "nats-nkey", seed);
    }
    ns.startup_deadline_ms = 5000;
    ns.kv_replicas = g_kv_replicas;
    if (sl_nats_connect(&nc, &ns) != SL_OK ||
        rep_stream_ensure(nc, REP_STREAM_DEFAULT, "sluice.report.>", REP_STREAM_MAX_AGE_MS) != SL_OK)
        say("warning: report stream %s not created (%s); sluice-reporter will create it", REP_STREAM_DEFAULT,
            sl_error_msg());
    sl_nats_close(nc, 1000);
    sl_nats_settings_deinit(&ns);
}

/* Each service's command line, then the service started. */
static void start_services(run_state *rs, const run_opts *o)
{
    for (int i = 0; i < rs->n; i++) {
        child *k = &rs->kids[i];
        child_arg(k, k->path);
        if (strcmp(k->name, "sluice-config-watcher") == 0) {
            child_arg(k, "--dir");
            child_arg(k, o->config_dir);
        }
        if (strcmp(k->name, "sluice-secret-watcher") == 0) {
            const char *dir = o->secrets_dir;
            if (!dir) {
                snprintf(rs->secrets_dir, sizeof(rs->secrets_dir), "%s/secrets", o->state);
                mkdir(o->state, 0755);
                mkdir(rs->secrets_dir, 0700);
                dir = rs->secrets_dir;
            }
            child_arg(k, "--dir");
            child_arg(k, dir);
        }
        if (o->xds_listen && strcmp(k->name, "sluice-xds") == 0) {
            child_arg(k, "--listen");
            child_arg(k, o->xds_listen);
        }
        for (size_t j = 0; o->xds_certs && strcmp(k->name, "sluice-xds") == 0 &&
                           j < sizeof xds_cert_files / sizeof xds_cert_files[0]; j++) {
            char path[PATH_MAX];
            snprintf(path, sizeof path, "%s/xds/%s", o->xds_certs, xds_cert_files[j].file);
            child_arg(k, xds_cert_files[j].flag);
            child_arg(k, path);
        }
        if (o->metrics_base > 0) {
            char m[64];
            snprintf(m, sizeof(m), "127.0.0.1:%d", o->metrics_base + i);
            child_arg(k, "--metrics-addr");
            child_arg(k, m);
        }
        k->backoff_ms = 1000;
        if (spawn(k, rs->url) > 0)
            say("started %s (pid %d)", k->name, (int)k->pid);
        else
            say("cannot start %s: %s", k->name, strerror(errno));
    }
    say("up: %d services; Ctrl-C to stop", rs->n);
}

/* Collects exited children and schedules their restart with backoff; a
 * child that exited 2 (usage or configuration) is not restarted. */
static void reap(run_state *rs, int64_t t)
{
    int st;
    pid_t pid;

    while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
        child *k = pid == rs->nats.pid ? &rs->nats : NULL;
        for (int i = 0; i < rs->n && !k; i++)
            if (rs->kids[i].pid == pid)
                k = &rs->kids[i];
        if (!k)
            continue;
        k->pid = 0;
        if (k != &rs->nats && WIFEXITED(st) && WEXITSTATUS(st) == 2) {
            /* Restarting cannot help (as systemd's RestartPreventExitStatus=2
             * in deploy/). */
            say("%s exited with status 2 (bad flags or configuration); not restarting it", k->name);
            k->restart_at_ms = 0;
            continue;
        }
        if (t - k->started_ms > 30000)
            k->backoff_ms = 1000; /* it ran fine for a while */
        k->restart_at_ms = t + k->backoff_ms;
        if (WIFSIGNALED(st))
            say("%s was killed by signal %d; restarting in %lds", k->name, WTERMSIG(st),
                (long)(k->backoff_ms / 1000));
        else
            say("%s exited with status %d; restarting in %lds", k->name, WEXITSTATUS(st),
                (long)(k->backoff_ms / 1000));
        k->backoff_ms = k->backoff_ms * 2 > 30000 ? 30000 : k->backoff_ms * 2;
    }
}

/* Until SIGINT/SIGTERM: restarts what exited when its backoff is over. */
static void supervise(run_state *rs, bool no_nats)
{
    while (!g_stop) {
        int64_t t = now_ms();
        child *all[MAX_CHILDREN + 1];
        int na = 0;

        reap(rs, t);
        if (!no_nats)
            all[na++] = &rs->nats;
        for (int i = 0; i < rs->n; i++)
            all[na++] = &rs->kids[i];
        for (int i = 0; i < na; i++) {
            child *k = all[i];
            if (k->pid == 0 && k->restart_at_ms && t >= k->restart_at_ms) {
                k->restarts++;
                if (spawn(k, k == &rs->nats ? NULL : rs->url) > 0)
                    say("restarted %s (pid %d, restart %d)", k->name, (int)k->pid, k->restarts);
                else
                    k->restart_at_ms = t + k->backoff_ms;
            }
        }
        usleep(100000);
    }
}

/* SIGTERM to the services (newest first), SIGKILL to those still running
 * after 15 s; then nats-server, last, so that they drain. 1 when one had
 * to be killed. */
/* Says how a service ended after its SIGTERM; true for a clean stop (exit
 * status 0), which is what every Sluice service owes its supervisor. */
static bool stopped_cleanly(const child *k, int st)
{
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
        say("%s stopped (exit status 0)", k->name);
        return true;
    }
    if (WIFEXITED(st))
        say("%s stopped with exit status %d", k->name, WEXITSTATUS(st));
    else
        say("%s ended by signal %d while stopping", k->name, WIFSIGNALED(st) ? WTERMSIG(st) : 0);
    return false;
}

/* SIGTERM to every service (SIGKILL after 15 s), then nats-server. 0 when
 * every service stopped with exit status 0, else 1 (each one said). */
static int stop_all(run_state *rs, bool no_nats)
{
    int64_t deadline = now_ms() + 15000;
    int code = 0;

    for (int i = rs->n - 1; i >= 0; i--)
        if (rs->kids[i].pid > 0)
            kill(rs->kids[i].pid, SIGTERM);
    for (;;) {
        int alive = 0, st;
        for (int i = 0; i < rs->n; i++) {
            if (rs->kids[i].pid > 0 && waitpid(rs->kids[i].pid, &st, WNOHANG) == rs->kids[i].pid) {
                rs->kids[i].pid = 0;
                if (!stopped_cleanly(&rs->kids[i], st))
                    code = 1;
            }
            alive += rs->kids[i].pid > 0;
        }
        if (!alive)
            break;
        if (now_ms() > deadline) {
            for (int i = 0; i < rs->n; i++)
                if (rs->kids[i].pid > 0) {
                    say("%s did not stop; killing it", rs->kids[i].name);
                    kill(rs->kids[i].pid, SIGKILL);
                    waitpid(rs->kids[i].pid, NULL, 0);
                    rs->kids[i].pid = 0;
                    code = 1;
                }
            break;
        }
        usleep(50000);
    }
    if (!no_nats && rs->nats.pid > 0) {
        kill(rs->nats.pid, SIGTERM);
        deadline = now_ms() + 10000;
        while (waitpid(rs->nats.pid, NULL, WNOHANG) != rs->nats.pid) {
            if (now_ms() > deadline) {
                kill(rs->nats.pid, SIGKILL);
                waitpid(rs->nats.pid, NULL, 0);
                break;
            }
            usleep(50000);
        }
    }
    return code;
}

int ctl_cmd_run(ctl *c, int argc, char **argv)
{
    static run_state rs;
    run_opts o = {0};
    sl_flags fs;
    struct sigaction sa;
    int code;

    memset(&rs, 0, sizeof(rs));
    sl_flags_init(&fs);
    code = run_parse(&o, &fs, argc, argv);
    if (code != 0) {
        code = o.help ? 0 : code;
        goto out;
    }
    find_services(&rs, &o);

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    g_kv_replicas = c->nats.kv_replicas;
    if (!o.no_nats && g_kv_replicas > 1) {
        fprintf(stderr, "error: --kv-replicas %d needs a NATS cluster, and sluicectl run starts a "
                        "single nats-server: use --no-nats with --nats-url listing the cluster\n",
                g_kv_replicas);
        code = 1;
        goto out;
    }
    if (o.no_nats)
        snprintf(rs.url, sizeof(rs.url), "%s", c->nats.urls ? c->nats.urls : "nats://127.0.0.1:4222");
    else if ((code = start_nats(&rs, &o)) != 0)
        goto out;
    ensure_report_stream(rs.url);
    start_services(&rs, &o);
    supervise(&rs, o.no_nats);
    say("stopping");
    code = stop_all(&rs, o.no_nats);
    say("stopped");
out:
    for (int i = 0; i < rs.n; i++)
        child_free(&rs.kids[i]);
    child_free(&rs.nats);
    sl_flags_deinit(&fs);
    return code;
}
