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

static pid_t spawn(child *c, const char *nats_url)
{
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        if (nats_url)
            setenv("NATS_URL", nats_url, 1);
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

static const char run_usage[] =
    "Usage: sluicectl run [flags]\n"
    "Starts nats-server with JetStream (state in --state-dir) and every sluice-* service\n"
    "found next to sluicectl or in build/services/*/, in the foreground. A service that\n"
    "exits is restarted with backoff (1s doubling to 30s). Ctrl-C or SIGTERM stops all.\n"
    "\n"
    "  --config-dir DIR        YAML/JSON directory for sluice-config-watcher (default examples)\n"
    "  --state-dir DIR         JetStream store and logs (default .state)\n"
    "  --nats-port PORT        client port of nats-server (default 4222)\n"
    "  --nats-conf FILE        nats-server config (default deploy/nats/sluice.conf)\n"
    "  --nats-server PATH      nats-server binary (default: nats-server on PATH)\n"
    "  --no-nats               use the NATS at --nats-url / NATS_URL instead of starting one\n"
    "  --bin-dir DIR           where the sluice-* binaries are (repeatable)\n"
    "  --metrics-base-port N   give service i --metrics-addr 127.0.0.1:N+i (default 9190, 0 = off)\n"
    "  --secrets-dir DIR       directory for sluice-secret-watcher (default <state-dir>/secrets)\n"
    "  --xds-listen ADDR       sluice-xds --listen address (default: sluice-xds's, 0.0.0.0:9977)\n"
    "  --only NAME             start only this service (repeatable)\n"
    "The global --kv-replicas N (SLUICE_KV_REPLICAS) is passed to the services; above 1\n"
    "it needs --no-nats and a NATS cluster.\n";

int ctl_cmd_run(ctl *c, int argc, char **argv)
{
    const char *config_dir = NULL, *state = ".state", *conf = NULL, *nats_bin = "nats-server";
    const char *xds_listen = NULL, *secrets_dir = NULL;
    char secrets_buf[PATH_MAX];
    const char *bin_dirs[8], *only[16];
    int nbin = 0, nonly = 0, port = 4222, metrics_base = 9190;
    bool no_nats = false;
    static child kids[MAX_CHILDREN];
    child nats;
    int n = 0, code = 0;
    char url[128], jsdir[PATH_MAX], log[PATH_MAX], self[PATH_MAX];

    memset(&nats, 0, sizeof(nats));
    for (int i = 1; i < argc; i++) {
        const char *v = NULL;
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            fputs(run_usage, stdout);
            return 0;
        }
        if (ctl_opt(argc, argv, &i, NULL, "--config-dir", &v) && v)
            config_dir = v;
        else if (ctl_opt(argc, argv, &i, NULL, "--state-dir", &v) && v)
            state = v;
        else if (ctl_opt(argc, argv, &i, NULL, "--nats-port", &v) && v)
            port = atoi(v);
        else if (ctl_opt(argc, argv, &i, NULL, "--nats-conf", &v) && v)
            conf = v;
        else if (ctl_opt(argc, argv, &i, NULL, "--nats-server", &v) && v)
            nats_bin = v;
        else if (ctl_opt(argc, argv, &i, NULL, "--bin-dir", &v) && v && nbin < 8)
            bin_dirs[nbin++] = v;
        else if (ctl_opt(argc, argv, &i, NULL, "--only", &v) && v && nonly < 16)
            only[nonly++] = v;
        else if (ctl_opt(argc, argv, &i, NULL, "--metrics-base-port", &v) && v)
            metrics_base = atoi(v);
        else if (ctl_opt(argc, argv, &i, NULL, "--secrets-dir", &v) && v)
            secrets_dir = v;
        else if (ctl_opt(argc, argv, &i, NULL, "--xds-listen", &v) && v)
            xds_listen = v;
        else if (strcmp(argv[i], "--no-nats") == 0)
            no_nats = true;
        else {
            fputs(run_usage, stderr);
            return ctl_usage_error("run", "unknown or incomplete argument \"%s\"", argv[i]);
        }
    }
    if (port <= 0 || port > 65535)
        return ctl_usage_error("run", "--nats-port: bad port");
    if (!config_dir)
        config_dir = exists("examples") ? "examples" : SLUICE_SOURCE_DIR "/examples";
    if (!conf)
        conf = exists("deploy/nats/sluice.conf") ? "deploy/nats/sluice.conf"
                                                 : SLUICE_SOURCE_DIR "/deploy/nats/sluice.conf";
    if (!exists(config_dir)) {
        fprintf(stderr, "error: --config-dir %s does not exist\n", config_dir);
        return 1;
    }

    /* The services. */
    for (int i = 0; i < nbin; i++) {
        scan_dir(kids, &n, bin_dirs[i]);
        scan_services(kids, &n, bin_dirs[i]);
    }
    ssize_t sl = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (sl > 0) {
        self[sl] = '\0';
        char *slash = strrchr(self, '/');
        if (slash) {
            *slash = '\0';
            scan_dir(kids, &n, self); /* installed side by side */
            slash = strrchr(self, '/');
            if (slash) {
                *slash = '\0';
                scan_services(kids, &n, self); /* build/services/<svc>/ */
            }
        }
    }
    scan_services(kids, &n, "build/services");
    if (nonly) {
        int m = 0;
        for (int i = 0; i < n; i++) {
            bool keep = false;
            for (int j = 0; j < nonly && !keep; j++)
                keep = strcmp(kids[i].name, only[j]) == 0 ||
                       (strncmp(kids[i].name, "sluice-", 7) == 0 && strcmp(kids[i].name + 7, only[j]) == 0);
            if (keep)
                kids[m++] = kids[i];
        }
        n = m;
    }
    if (n == 0)
        say("warning: no sluice-* service binaries found (build first, or give --bin-dir)");

    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    g_kv_replicas = c->nats.kv_replicas;
    if (!no_nats && g_kv_replicas > 1) {
        fprintf(stderr, "error: --kv-replicas %d needs a NATS cluster, and sluicectl run starts a "
                        "single nats-server: use --no-nats with --nats-url listing the cluster\n",
                g_kv_replicas);
        return 1;
    }
    if (no_nats) {
        snprintf(url, sizeof(url), "%s", c->nats.urls ? c->nats.urls : "nats://127.0.0.1:4222");
    } else {
        char ps[16];
        snprintf(jsdir, sizeof(jsdir), "%s/jetstream", state);
        snprintf(log, sizeof(log), "%s/nats-server.log", state);
        mkdir(state, 0755);
        mkdir(jsdir, 0755);
        if (port_open(port)) {
            fprintf(stderr, "error: port %d is in use: is another nats-server (or sluicectl run) "
                            "running? Use --nats-port or --no-nats.\n",
                    port);
            return 1;
        }
        snprintf(ps, sizeof(ps), "%d", port);
        snprintf(nats.name, sizeof(nats.name), "nats-server");
        if (strchr(nats_bin, '/'))
            snprintf(nats.path, sizeof(nats.path), "%s", nats_bin);
        else {
            /* execv needs a path: search PATH. */
            const char *path = getenv("PATH");
            char *dup = strdup(path ? path : "/usr/bin:/usr/sbin"), *save = NULL;
            snprintf(nats.path, sizeof(nats.path), "%s", nats_bin);
            for (char *t = dup ? strtok_r(dup, ":", &save) : NULL; t; t = strtok_r(NULL, ":", &save)) {
                char p[PATH_MAX];
                snprintf(p, sizeof(p), "%s/%s", t, nats_bin);
                if (executable(p)) {
                    snprintf(nats.path, sizeof(nats.path), "%s", p);
                    break;
                }
            }
            free(dup);
            if (!executable(nats.path) && executable("/usr/sbin/nats-server"))
                snprintf(nats.path, sizeof(nats.path), "/usr/sbin/nats-server");
        }
        child_arg(&nats, nats.path);
        if (exists(conf)) {
            child_arg(&nats, "-c");
            child_arg(&nats, conf);
        } else {
            say("warning: %s not found; starting nats-server with defaults", conf);
        }
        child_arg(&nats, "-a");
        child_arg(&nats, "127.0.0.1");
        child_arg(&nats, "-p");
        child_arg(&nats, ps);
        child_arg(&nats, "-js");
        child_arg(&nats, "-sd");
        child_arg(&nats, jsdir);
        child_arg(&nats, "-l");
        child_arg(&nats, log);
        if (spawn(&nats, NULL) < 0) {
            fprintf(stderr, "error: cannot start nats-server: %s\n", strerror(errno));
            child_free(&nats);
            return 1;
        }
        int64_t deadline = now_ms() + 10000;
        while (!port_open(port) && now_ms() < deadline && !g_stop) {
            int st;
            if (waitpid(nats.pid, &st, WNOHANG) == nats.pid) {
                fprintf(stderr, "error: nats-server exited; see %s\n", log);
                child_free(&nats);
                return 1;
            }
            usleep(50000);
        }
        if (!port_open(port)) {
            fprintf(stderr, "error: nats-server did not start listening on %d; see %s\n", port, log);
            kill(nats.pid, SIGKILL);
            waitpid(nats.pid, NULL, 0);
            child_free(&nats);
            return 1;
        }
        snprintf(url, sizeof(url), "nats://127.0.0.1:%d", port);
        say("nats-server with JetStream on %s (pid %d, store %s, log %s)", url, (int)nats.pid, jsdir, log);
    }
    {
        /* The report stream before any service: reports published before
         * sluice-reporter is up are kept for it (it creates the stream too;
         * whoever comes first). */
        sl_nats_settings ns;
        sl_nats *nc = NULL;
        sl_nats_settings_init(&ns);
        sl_nats_settings_set(&ns, "nats-url", url);
        sl_nats_settings_set(&ns, "nats-name", "sluicectl-run");
        ns.startup_deadline_ms = 5000;
        ns.kv_replicas = g_kv_replicas;
        if (sl_nats_connect(&nc, &ns) != SL_OK ||
            rep_stream_ensure(nc, REP_STREAM_DEFAULT, "sluice.report.>", REP_STREAM_MAX_AGE_MS) != SL_OK)
            say("warning: report stream %s not created (%s); sluice-reporter will create it",
                REP_STREAM_DEFAULT, sl_error_msg());
        sl_nats_close(nc, 1000);
        sl_nats_settings_deinit(&ns);
    }

    for (int i = 0; i < n; i++) {
        child *k = &kids[i];
        child_arg(k, k->path);
        if (strcmp(k->name, "sluice-config-watcher") == 0) {
            child_arg(k, "--dir");
            child_arg(k, config_dir);
        }
        if (strcmp(k->name, "sluice-secret-watcher") == 0) {
            if (!secrets_dir) {
                snprintf(secrets_buf, sizeof(secrets_buf), "%s/secrets", state);
                mkdir(state, 0755);
                mkdir(secrets_buf, 0700);
                secrets_dir = secrets_buf;
            }
            child_arg(k, "--dir");
            child_arg(k, secrets_dir);
        }
        if (xds_listen && strcmp(k->name, "sluice-xds") == 0) {
            child_arg(k, "--listen");
            child_arg(k, xds_listen);
        }
        if (metrics_base > 0) {
            char m[64];
            snprintf(m, sizeof(m), "127.0.0.1:%d", metrics_base + i);
            child_arg(k, "--metrics-addr");
            child_arg(k, m);
        }
        k->backoff_ms = 1000;
        if (spawn(k, url) > 0)
            say("started %s (pid %d)", k->name, (int)k->pid);
        else
            say("cannot start %s: %s", k->name, strerror(errno));
    }
    say("up: %d services; Ctrl-C to stop", n);

    while (!g_stop) {
        int st;
        pid_t pid;
        int64_t t = now_ms();
        while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
            child *k = pid == nats.pid ? &nats : NULL;
            for (int i = 0; i < n && !k; i++)
                if (kids[i].pid == pid)
                    k = &kids[i];
            if (!k)
                continue;
            k->pid = 0;
            if (k != &nats && WIFEXITED(st) && WEXITSTATUS(st) == 2) {
                /* A usage or configuration error: restarting cannot help (as
                 * systemd's RestartPreventExitStatus=2 in deploy/). */
                say("%s exited with status 2 (bad flags or configuration); not restarting it",
                    k->name);
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
        child *all[MAX_CHILDREN + 1];
        int na = 0;
        if (!no_nats)
            all[na++] = &nats;
        for (int i = 0; i < n; i++)
            all[na++] = &kids[i];
        for (int i = 0; i < na; i++) {
            child *k = all[i];
            if (k->pid == 0 && k->restart_at_ms && t >= k->restart_at_ms) {
                k->restarts++;
                if (spawn(k, k == &nats ? NULL : url) > 0)
                    say("restarted %s (pid %d, restart %d)", k->name, (int)k->pid, k->restarts);
                else
                    k->restart_at_ms = t + k->backoff_ms;
            }
        }
        usleep(100000);
    }

    say("stopping");
    /* Services first (newest first), nats-server last, so they drain. */
    for (int i = n - 1; i >= 0; i--)
        if (kids[i].pid > 0)
            kill(kids[i].pid, SIGTERM);
    int64_t deadline = now_ms() + 15000;
    for (;;) {
        int alive = 0;
        for (int i = 0; i < n; i++) {
            if (kids[i].pid > 0 && waitpid(kids[i].pid, NULL, WNOHANG) == kids[i].pid)
                kids[i].pid = 0;
            alive += kids[i].pid > 0;
        }
        if (!alive)
            break;
        if (now_ms() > deadline) {
            for (int i = 0; i < n; i++)
                if (kids[i].pid > 0) {
                    say("%s did not stop; killing it", kids[i].name);
                    kill(kids[i].pid, SIGKILL);
                    waitpid(kids[i].pid, NULL, 0);
                    kids[i].pid = 0;
                    code = 1;
                }
            break;
        }
        usleep(50000);
    }
    if (!no_nats && nats.pid > 0) {
        kill(nats.pid, SIGTERM);
        deadline = now_ms() + 10000;
        while (waitpid(nats.pid, NULL, WNOHANG) != nats.pid) {
            if (now_ms() > deadline) {
                kill(nats.pid, SIGKILL);
                waitpid(nats.pid, NULL, 0);
                break;
            }
            usleep(50000);
        }
    }
    for (int i = 0; i < n; i++)
        child_free(&kids[i]);
    child_free(&nats);
    say("stopped");
    return code;
}
