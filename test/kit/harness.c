#include "harness.h"

#include <sys/stat.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <netinet/in.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sluice/natsauth.h"
#include "sluice/nkey.h"

struct harness_nats {
    pid_t pid; /* 0 when not running */
    char conf[300]; /* the -c file of this server: auth plus $SLUICE_NATS_CONFIG ("" without) */
    int port;
    char url[64];
    char dir[256];
    char store[300];
    char log[300];
    const char *server;
    /* Cluster node only (cluster_port > 0). */
    int cluster_port;
    char server_name[32];
    char routes[400];
};

struct harness_cluster {
    int n;
    harness_nats *nodes[HARNESS_CLUSTER_MAX];
    char urls[HARNESS_CLUSTER_MAX * 64];
};

/* ---- authentication (sluice/natsauth.h), on unless SLUICE_TEST_NATS_AUTH=0 ---- */

static char g_auth_dir[64];

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw);

static void auth_cleanup(void)
{
    if (g_auth_dir[0])
        nftw(g_auth_dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

const char *harness_auth_dir(void)
{
    const char *off = getenv("SLUICE_TEST_NATS_AUTH");
    if (off && !strcmp(off, "0"))
        return NULL;
    if (!g_auth_dir[0]) {
        snprintf(g_auth_dir, sizeof g_auth_dir, "/tmp/sluice-auth-XXXXXX");
        if (!mkdtemp(g_auth_dir) || sl_natsauth_provision(g_auth_dir, true) != SL_OK) {
            fprintf(stderr, "harness: nats auth: %s\n", sl_error_msg());
            g_auth_dir[0] = '\0';
            return NULL;
        }
        atexit(auth_cleanup);
        /* every process the test starts finds its role's seed by its name */
        setenv("SLUICE_NATS_AUTH_DIR", g_auth_dir, 1);
    }
    return g_auth_dir;
}

/* Writes h->conf: the auth block, then $SLUICE_NATS_CONFIG's content (a
 * nats-server include cannot take an absolute path). */
static int write_conf(harness_nats *h)
{
    const char *auth = harness_auth_dir(), *extra = getenv("SLUICE_NATS_CONFIG");
    h->conf[0] = '\0';
    if (!auth && !(extra && extra[0]))
        return 0;
    if (!auth) {
        snprintf(h->conf, sizeof h->conf, "%s", extra);
        return 0;
    }
    snprintf(h->conf, sizeof h->conf, "%s/nats-%d.conf", auth, h->port);
    if (sl_natsauth_server_conf(h->conf, extra && extra[0] ? extra : NULL) != SL_OK) {
        fprintf(stderr, "harness: %s\n", sl_error_msg());
        return -1;
    }
    return 0;
}

sl_status harness_settings(sl_nats_settings *s, const char *url)
{
    const char *auth = harness_auth_dir();
    char path[128];
    sl_status st = sl_nats_settings_set(s, "nats-url", url);
    if (st == SL_OK && auth) {
        snprintf(path, sizeof path, "%s/admin.nk", auth);
        st = sl_nats_settings_set(s, "nats-nkey", path);
    }
    return st;
}

int64_t harness_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int harness_up(harness_nats **srv, sl_nats **nc)
{
    if (harness_nats_start(srv) != 0)
        return -1;
    if (harness_connect(nc, *srv) != SL_OK) {
        fprintf(stderr, "connect: %s\n", sl_error_msg());
        return -1;
    }
    return 0;
}

void harness_down(harness_nats *srv, sl_nats *nc)
{
    if (nc)
        sl_nats_close(nc, 1000);
    harness_nats_free(srv);
    sl_nats_shutdown(5000);
}

void harness_binary(char *buf, size_t cap, const char *rel)
{
    const char *dir = getenv("SLUICE_BINARY_DIR");
    snprintf(buf, cap, "%s/%s", dir && dir[0] ? dir : "build", rel);
}

/* Forks argv: env ("K=V", NULL terminated; may be NULL) set in the child,
 * its stdout and stderr to log when given, else its stdout to a pipe read
 * through *out when out is given. */
static pid_t spawn_child(const char *const *argv, const char *const *env, const char *log, FILE **out)
{
    int fds[2] = {-1, -1};
    pid_t parent = getpid();
    if (out && pipe(fds) != 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) /* the test died before the line above */
            _exit(127);
        for (size_t i = 0; env && env[i]; i++)
            putenv((char *)env[i]);
        if (log) {
            int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
            if (fd >= 0) {
                dup2(fd, 2);
                dup2(fd, 1);
            }
        } else if (out) {
            dup2(fds[1], 1);
            close(fds[0]);
        }
        execvp(argv[0], (char *const *)argv);
        _exit(127);
    }
    if (out) {
        close(fds[1]);
        *out = pid > 0 ? fdopen(fds[0], "r") : NULL;
        if (pid <= 0 || !*out)
            close(fds[0]);
    }
    return pid < 0 ? -1 : pid;
}

pid_t harness_spawn(const char *const *argv, const char *log)
{
    return spawn_child(argv, NULL, log, NULL);
}

pid_t harness_spawn_piped(const char *const *argv, const char *const *env, FILE **out)
{
    return spawn_child(argv, env, NULL, out);
}

void harness_show_log(const char *path)
{
    char cmd[1100];
    if (!getenv("SLUICE_TEST_SHOW_LOGS"))
        return;
    snprintf(cmd, sizeof cmd, "cat %s >&2", path);
    if (system(cmd) != 0)
        perror("cat");
}

/* The request of harness_http; -1 when the port does not answer, else 0
 * with the status (-1 when there is none) in *code. */
static int http_request(int port, const char *method, const char *path, char *buf, size_t n, int *code)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    size_t got = 0;
    ssize_t r;
    *code = -1;
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    dprintf(fd, "%s %s HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", method, path);
    while (got < n - 1 && (r = read(fd, buf + got, n - 1 - got)) > 0)
        got += (size_t)r;
    buf[got] = 0;
    close(fd);
    sscanf(buf, "HTTP/1.%*d %d", code);
    return 0;
}

int harness_http(int port, const char *method, const char *path, char *buf, size_t n)
{
    int code;
    http_request(port, method, path, buf, n, &code);
    return code;
}

int harness_http_get(int port, const char *path, char *body, size_t cap)
{
    char buf[65536];
    int code;
    if (http_request(port, "GET", path, buf, sizeof buf, &code) != 0)
        return -1;
    if (body)
        snprintf(body, cap, "%s", buf);
    return code;
}

int harness_wait_http(int port, const char *path, int64_t ms)
{
    char buf[512];
    int64_t end = harness_now_ms() + ms;
    while (harness_http(port, "GET", path, buf, sizeof buf) != 200) {
        if (harness_now_ms() >= end)
            return -1;
        usleep(50 * 1000);
    }
    return 0;
}

int harness_run_output(const char *cmd, char *out, size_t cap)
{
    size_t got = 0, r;
    FILE *p = popen(cmd, "r");
    if (cap)
        out[0] = 0;
    if (!p)
        return -1;
    while (cap && got < cap - 1 && (r = fread(out + got, 1, cap - 1 - got, p)) > 0)
        got += r;
    if (cap)
        out[got] = 0;
    char drop[4096]; /* the rest, so that cmd never blocks on a full pipe */
    while (fread(drop, 1, sizeof drop, p) > 0)
        ;
    return pclose(p);
}

ProtobufCMessage *harness_kv_get_pb_rev(sl_kv *kv, const char *key, const ProtobufCMessageDescriptor *desc,
                                        uint64_t *rev)
{
    sl_kv_entry e = {0};
    if (sl_kv_get(&e, kv, key) != SL_OK)
        return NULL;
    ProtobufCMessage *m = protobuf_c_message_unpack(desc, NULL, e.len, e.value);
    if (rev)
        *rev = e.revision;
    sl_kv_entry_deinit(&e);
    return m;
}

ProtobufCMessage *harness_kv_get_pb(sl_kv *kv, const char *key, const ProtobufCMessageDescriptor *desc)
{
    return harness_kv_get_pb_rev(kv, key, desc, NULL);
}

sl_status harness_kv_put_yaml(sl_kv *kv, const char *key, const ProtobufCMessageDescriptor *desc, const char *yaml,
                              const sl_codec_options *o)
{
    ProtobufCMessage *m = NULL;
    sl_status st = sl_codec_decode_yaml(&m, desc, yaml, strlen(yaml), o, NULL);
    if (st != SL_OK)
        return st;
    size_t len = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = malloc(len + 1);
    if (!buf) {
        protobuf_c_message_free_unpacked(m, NULL);
        return sl_error_set(SL_ERR_NOMEM, "out of memory");
    }
    protobuf_c_message_pack(m, buf);
    protobuf_c_message_free_unpacked(m, NULL);
    st = sl_kv_put(NULL, kv, key, buf, len);
    free(buf);
    return st;
}

int harness_stop(pid_t pid, int sig)
{
    int st = 0;
    if (pid <= 0)
        return -1;
    kill(pid, sig);
    return waitpid(pid, &st, 0) == pid ? st : -1;
}

int harness_stop_pid(pid_t *pid, int sig)
{
    int st = harness_stop(*pid, sig);
    *pid = -1;
    return st < 0 ? 0 : st;
}

/* The body of GET /metrics on metrics_port in buf, or NULL when it does not answer. */
static char *metrics_body(int metrics_port, char *buf, size_t cap)
{
    int code;
    if (http_request(metrics_port, "GET", "/metrics", buf, cap, &code) != 0)
        return NULL;
    return buf;
}

int harness_metric_sum(int metrics_port, const char *name, double *sum)
{
    static char buf[1 << 17];
    size_t nl = strlen(name);

    *sum = 0;
    if (!metrics_body(metrics_port, buf, sizeof buf))
        return -1;
    for (char *p = buf; (p = strstr(p, name)); p += nl)
        if ((p == buf || p[-1] == '\n') && (p[nl] == '{' || p[nl] == ' ')) {
            char *sp = strchr(p, ' ');
            if (sp)
                *sum += atof(sp + 1);
        }
    return 0;
}

double harness_metric(int metrics_port, const char *name)
{
    static char buf[1 << 18];
    size_t l = strlen(name);
    if (!metrics_body(metrics_port, buf, sizeof buf))
        return -1;
    for (char *p = buf; (p = strstr(p, name)); p += l)
        if ((p == buf || p[-1] == '\n') && (p[l] == ' ' || p[l] == '{'))
            return atof(strchr(p + l, ' ') + 1);
    return -1;
}

int harness_wait_tcp(int port, int64_t ms)
{
    int64_t end = harness_now_ms() + ms;
    while (harness_now_ms() < end) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        int ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
        if (fd >= 0)
            close(fd);
        if (ok)
            return 0;
        usleep(20 * 1000);
    }
    return -1;
}

sl_status harness_kv_put_pb(sl_kv *kv, const char *key, const ProtobufCMessage *m)
{
    size_t len = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = malloc(len ? len : 1);
    sl_status rc;
    if (!buf)
        return SL_ERR_NOMEM;
    protobuf_c_message_pack(m, buf);
    rc = sl_kv_put(NULL, kv, key, buf, len);
    free(buf);
    return rc;
}

Sluice__V1__Report *harness_next_report(natsSubscription *sub, const char *name, int64_t ms)
{
    int64_t end = harness_now_ms() + ms;
    while (harness_now_ms() < end) {
        natsMsg *m = NULL;
        if (natsSubscription_NextMsg(&m, sub, 100) != NATS_OK)
            continue;
        Sluice__V1__Report *r = sluice__v1__report__unpack(NULL, (size_t)natsMsg_GetDataLength(m),
                                                         (const uint8_t *)natsMsg_GetData(m));
        natsMsg_Destroy(m);
        if (r && r->resource && !strcmp(r->resource->name, name))
            return r;
        if (r)
            sluice__v1__report__free_unpacked(r, NULL);
    }
    return NULL;
}

/* A "<field>: <n> kB" line of /proc/<pid>/status, or -1. */
static long status_kb(pid_t pid, const char *field)
{
    char path[64], line[256];
    size_t n = strlen(field);
    long kb = -1;
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, field, n) && line[n] == ':' && sscanf(line + n + 1, "%ld", &kb) == 1)
            break;
    if (f)
        fclose(f);
    return kb;
}

long harness_rss_kb(pid_t pid) { return status_kb(pid, "VmRSS"); }

long harness_peak_rss_kb(pid_t pid) { return status_kb(pid, "VmHWM"); }

int harness_nats_config(const char *dir, const char *text)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/nats.conf", dir);
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    int rc = fputs(text, f) < 0 ? -1 : 0;
    if (fclose(f) != 0)
        rc = -1;
    if (rc == 0)
        setenv("SLUICE_NATS_CONFIG", path, 1);
    return rc;
}

double harness_cpu_seconds(pid_t pid)
{
    char path[64], buf[4096];
    unsigned long ut = 0, st = 0;
    double s = -1;
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (f && fgets(buf, sizeof buf, f)) {
        char *p = strrchr(buf, ')'); /* the command may hold spaces and parentheses */
        if (p && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) == 2)
            s = (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
    }
    if (f)
        fclose(f);
    return s;
}


int harness_test_dir(char *dir, size_t cap, const char *name, char *log, size_t log_cap)
{
    snprintf(dir, cap, "/tmp/sluice-%s-XXXXXX", name);
    if (!mkdtemp(dir))
        return -1;
    snprintf(log, log_cap, "%s/processes.log", dir);
    return 0;
}

sl_status harness_open_kv(sl_kv **out, sl_nats *nc, const char *bucket)
{
    sl_kv_config c;
    sl_kv_config_init(&c, bucket);
    return sl_kv_open(out, nc, &c);
}

void harness_subs_free(natsSubscription **subs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (subs[i])
            natsSubscription_Destroy(subs[i]);
        subs[i] = NULL;
    }
}

int harness_bench_setup(char *dir, size_t cap, const char *name)
{
    signal(SIGPIPE, SIG_IGN);
    snprintf(dir, cap, "/tmp/sluice-bench-%s-XXXXXX", name);
    if (!mkdtemp(dir) || chmod(dir, 0755) != 0 ||
        harness_nats_config(dir, "max_payload: 8MB\nmax_pending: 64MB\n") != 0) {
        fprintf(stderr, "harness: cannot set up %s\n", dir);
        return -1;
    }
    return 0;
}

/* A port the kernel just handed out, released again for the server. */
int harness_free_port(void)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

    if (fd < 0)
        return -1;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
        getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
        port = ntohs(sa.sin_port);
    close(fd);
    return port;
}

int harness_free_port_both(void)
{
    for (int i = 0; i < 50; i++) {
        int u = socket(AF_INET, SOCK_DGRAM, 0), t = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t l = sizeof a;
        int ok = u >= 0 && t >= 0 && bind(u, (struct sockaddr *)&a, sizeof a) == 0 &&
                 getsockname(u, (struct sockaddr *)&a, &l) == 0 && bind(t, (struct sockaddr *)&a, sizeof a) == 0;
        if (u >= 0)
            close(u);
        if (t >= 0)
            close(t);
        if (ok)
            return ntohs(a.sin_port);
    }
    return -1;
}

/* True once the server has sent its INFO line on a fresh connection. */
static int server_answers(int port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    struct pollfd p;
    char buf[5] = {0};
    int fd = socket(AF_INET, SOCK_STREAM, 0), ok = 0;

    if (fd < 0)
        return 0;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
        p = (struct pollfd){.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 1000) == 1 && read(fd, buf, 4) == 4 && memcmp(buf, "INFO", 4) == 0)
            ok = 1;
    }
    close(fd);
    return ok;
}

static int spawn(harness_nats *h)
{
    char port[16];
    pid_t parent = getpid(), pid;

    snprintf(port, sizeof(port), "%d", h->port);
    pid = fork();
    if (pid < 0) {
        fprintf(stderr, "harness: fork: %s\n", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        int fd;
        /* Die with the test, even if it is killed. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        fd = open(h->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        {
            /* h->conf: the auth block and $SLUICE_NATS_CONFIG, a config
             * file for what has no flag (max_payload); the flags here win
             * over it. */
            const char *conf = h->conf;
            const char *argv[24];
            char cluster[64];
            int n = 0;

            argv[n++] = h->server;
            if (conf && conf[0]) {
                argv[n++] = "-c";
                argv[n++] = conf;
            }
            argv[n++] = "-js";
            argv[n++] = "-a";
            argv[n++] = "127.0.0.1";
            argv[n++] = "-p";
            argv[n++] = port;
            argv[n++] = "-sd";
            argv[n++] = h->store;
            if (h->cluster_port > 0) {
                snprintf(cluster, sizeof(cluster), "nats://127.0.0.1:%d", h->cluster_port);
                argv[n++] = "--server_name";
                argv[n++] = h->server_name;
                argv[n++] = "--cluster_name";
                argv[n++] = "sluice-test";
                argv[n++] = "--cluster";
                argv[n++] = cluster;
                argv[n++] = "--routes";
                argv[n++] = h->routes;
            }
            argv[n] = NULL;
            execvp(h->server, (char *const *)argv);
        }
        _exit(127);
    }
    h->pid = pid;
    return 0;
}

static int wait_ready(harness_nats *h)
{
    int64_t deadline = harness_now_ms() + 15000;
    int status;

    while (harness_now_ms() < deadline) {
        if (waitpid(h->pid, &status, WNOHANG) == h->pid) {
            fprintf(stderr, "harness: nats-server exited early (status %d); see %s\n", status,
                    h->log);
            h->pid = 0;
            return -1;
        }
        if (server_answers(h->port))
            return 0;
        usleep(20000);
    }
    fprintf(stderr, "harness: nats-server not ready on port %d; see %s\n", h->port, h->log);
    return -1;
}

int harness_nats_start_again(harness_nats *h)
{
    if (h->pid != 0)
        return 0;
    if (write_conf(h) != 0 || spawn(h) != 0)
        return -1;
    return wait_ready(h);
}

/* A node with its temp dir, not started. */
static harness_nats *node_new(void)
{
    harness_nats *h = calloc(1, sizeof(*h));
    const char *server = getenv("SLUICE_NATS_SERVER");

    if (h == NULL)
        return NULL;
    h->server = server != NULL && server[0] != '\0' ? server : "nats-server";
    snprintf(h->dir, sizeof(h->dir), "/tmp/sluice-test-XXXXXX");
    if (mkdtemp(h->dir) == NULL) {
        fprintf(stderr, "harness: mkdtemp: %s\n", strerror(errno));
        free(h);
        return NULL;
    }
    snprintf(h->store, sizeof(h->store), "%s/js", h->dir);
    snprintf(h->log, sizeof(h->log), "%s/nats.log", h->dir);
    return h;
}

int harness_nats_start(harness_nats **out)
{
    harness_nats *h = node_new();

    if (h == NULL)
        return -1;
    /* Another process may grab the port between harness_free_port() and the
     * server's bind; try a few. */
    for (int attempt = 0; attempt < 5; attempt++) {
        h->port = harness_free_port();
        snprintf(h->url, sizeof(h->url), "nats://127.0.0.1:%d", h->port);
        if (h->port > 0 && harness_nats_start_again(h) == 0) {
            *out = h;
            return 0;
        }
        harness_nats_stop(h);
    }
    harness_nats_free(h);
    return -1;
}

int harness_nats_stop(harness_nats *h)
{
    int64_t deadline;
    int status;

    if (h->pid == 0)
        return 0;
    kill(h->pid, SIGTERM);
    deadline = harness_now_ms() + 5000;
    while (harness_now_ms() < deadline) {
        if (waitpid(h->pid, &status, WNOHANG) == h->pid) {
            h->pid = 0;
            return 0;
        }
        usleep(10000);
    }
    kill(h->pid, SIGKILL);
    waitpid(h->pid, &status, 0);
    h->pid = 0;
    return 0;
}

int harness_nats_restart(harness_nats *h)
{
    if (harness_nats_stop(h) != 0)
        return -1;
    return harness_nats_start_again(h);
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

void harness_nats_free(harness_nats *h)
{
    if (h == NULL)
        return;
    harness_nats_stop(h);
    if (getenv("SLUICE_KEEP_TEST_DIRS") == NULL)
        nftw(h->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(h);
}

int harness_remove_test_dir(const char *dir)
{
    if (getenv("SLUICE_KEEP_TEST_DIR"))
        return 0;
    return nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS) == 0 ? 0 : -1;
}

pid_t harness_start_dnsmasq(int port, const char *hosts_path, const char *const *args, const char *log)
{
    char port_arg[32], addn[1100], user[300], group[300];
    const char *argv[64];
    size_t n = 0;
    struct passwd *pw = getpwuid(getuid());
    struct group *gr = getgrgid(getgid());
    pid_t pid;
    snprintf(port_arg, sizeof port_arg, "--port=%d", port);
    snprintf(addn, sizeof addn, "--addn-hosts=%s", hosts_path);
    snprintf(user, sizeof user, "--user=%s", pw ? pw->pw_name : "root");
    snprintf(group, sizeof group, "--group=%s", gr ? gr->gr_name : "root");
    const char *const fixed[] = {access("/usr/sbin/dnsmasq", X_OK) == 0 ? "/usr/sbin/dnsmasq" : "dnsmasq",
                                 "--keep-in-foreground", "--conf-file=/dev/null", "--pid-file=", port_arg,
                                 "--listen-address=127.0.0.1", "--bind-interfaces", "--no-resolv", "--no-hosts", addn,
                                 user, group};
    for (size_t i = 0; i < sizeof fixed / sizeof *fixed; i++)
        argv[n++] = fixed[i];
    for (size_t i = 0; args && args[i] && n < sizeof argv / sizeof *argv - 1; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    pid = harness_spawn(argv, log);
    /* ready when it answers on TCP */
    if (pid > 0 && harness_wait_tcp(port, 10000) != 0) {
        harness_stop(pid, SIGTERM);
        pid = -1;
    }
    return pid;
}

pid_t harness_start_etcd(int client_port, int peer_port, const char *data_dir, const char *log)
{
    char data[1100], curl[64], purl[64], cluster[96];
    pid_t pid;
    snprintf(data, sizeof data, "--data-dir=%s", data_dir);
    snprintf(curl, sizeof curl, "http://127.0.0.1:%d", client_port);
    snprintf(purl, sizeof purl, "http://127.0.0.1:%d", peer_port);
    snprintf(cluster, sizeof cluster, "--initial-cluster=t=%s", purl);
    const char *const argv[] = {"etcd", "--name=t", data, "--listen-client-urls", curl, "--advertise-client-urls",
                                curl, "--listen-peer-urls", purl, "--initial-advertise-peer-urls", purl, cluster,
                                NULL};
    pid = harness_spawn(argv, log);
    if (pid > 0 && harness_wait_tcp(client_port, 20000) != 0) {
        harness_stop(pid, SIGKILL);
        pid = -1;
    }
    return pid;
}

const char *harness_nats_url(const harness_nats *h)
{
    return h->url;
}

int harness_nats_port(const harness_nats *h)
{
    return h->port;
}

const char *harness_nats_dir(const harness_nats *h)
{
    return h->dir;
}

sl_status harness_connect(sl_nats **out, const harness_nats *h)
{
    sl_nats_settings s;
    sl_status st;

    sl_nats_settings_init(&s);
    st = harness_settings(&s, h->url);
    if (st == SL_OK)
        st = sl_nats_settings_set(&s, "nats-name", "sluice-test");
    s.startup_deadline_ms = 5000;
    s.reconnect_min_ms = 50;
    s.reconnect_max_ms = 250;
    if (st == SL_OK)
        st = sl_nats_connect(out, &s);
    sl_nats_settings_deinit(&s);
    return st;
}

/* ---- a cluster -------------------------------------------------------- */

void harness_cluster_free(harness_cluster *c)
{
    if (c == NULL)
        return;
    for (int i = 0; i < c->n; i++)
        harness_nats_free(c->nodes[i]);
    free(c);
}

/* Every node's client port answers. */
static int cluster_spawn(harness_cluster *c)
{
    for (int i = 0; i < c->n; i++)
        if (write_conf(c->nodes[i]) != 0 || spawn(c->nodes[i]) != 0)
            return -1;
    for (int i = 0; i < c->n; i++)
        if (wait_ready(c->nodes[i]) != 0)
            return -1;
    return 0;
}

int harness_cluster_start(harness_cluster **out, int n)
{
    harness_cluster *c;

    if (n < 1 || n > HARNESS_CLUSTER_MAX)
        return -1;
    /* Ports are picked before any server binds; another process may grab
     * one meanwhile: try again with new ones. */
    for (int attempt = 0; attempt < 3; attempt++) {
        char routes[400] = "";
        size_t len = 0;

        c = calloc(1, sizeof(*c));
        if (c == NULL)
            return -1;
        for (int i = 0; i < n; i++) {
            harness_nats *h = node_new();
            if (h == NULL)
                goto retry;
            c->nodes[c->n++] = h;
            h->port = harness_free_port();
            h->cluster_port = harness_free_port();
            if (h->port <= 0 || h->cluster_port <= 0)
                goto retry;
            snprintf(h->url, sizeof(h->url), "nats://127.0.0.1:%d", h->port);
            snprintf(h->server_name, sizeof(h->server_name), "sluice-test-%d", i);
            len += (size_t)snprintf(routes + len, sizeof(routes) - len, "%snats://127.0.0.1:%d",
                                    i > 0 ? "," : "", h->cluster_port);
            len += (size_t)snprintf(c->urls + strlen(c->urls), sizeof(c->urls) - strlen(c->urls),
                                    "%s%s", i > 0 ? "," : "", h->url);
        }
        for (int i = 0; i < n; i++)
            snprintf(c->nodes[i]->routes, sizeof(c->nodes[i]->routes), "%s", routes);
        if (cluster_spawn(c) == 0 && harness_cluster_wait_js(c, 30000) == 0) {
            *out = c;
            return 0;
        }
    retry:
        harness_cluster_free(c);
    }
    return -1;
}

/* The admin credentials on raw nats.c options (when auth is on). */
static int admin_nkey(natsOptions *o)
{
    const char *auth = harness_auth_dir();
    char path[128], seed[SL_NKEY_SEED_LEN + 1], pub[SL_NKEY_PUBLIC_LEN + 1];
    if (!auth)
        return 0;
    snprintf(path, sizeof path, "%s/admin.nk", auth);
    if (sl_nkey_read_seed(seed, path) != SL_OK || sl_nkey_public(pub, seed) != SL_OK) {
        fprintf(stderr, "harness: %s\n", sl_error_msg());
        return -1;
    }
    return natsOptions_SetNKeyFromSeed(o, pub, path) == NATS_OK ? 0 : -1;
}

int harness_cluster_wait_js(harness_cluster *c, int64_t timeout_ms)
{
    int64_t deadline = harness_now_ms() + timeout_ms;
    natsConnection *conn = NULL;
    natsOptions *o = NULL;
    jsCtx *js = NULL;
    jsOptions jo;
    int rc = -1;
    const char *servers[HARNESS_CLUSTER_MAX];
    int up = 0;

    for (int i = 0; i < c->n; i++)
        if (c->nodes[i]->pid != 0)
            servers[up++] = c->nodes[i]->url;
    if (natsOptions_Create(&o) != NATS_OK || natsOptions_SetServers(o, servers, up) != NATS_OK ||
        admin_nkey(o) != 0)
        goto out;
    jsOptions_Init(&jo);
    jo.Wait = 2000;
    /* The meta leader is elected and knows enough servers once a stream
     * with one replica per running server can be created. */
    while (harness_now_ms() < deadline) {
        jsStreamConfig sc;
        jsStreamInfo *si = NULL;
        const char *subj[1] = {"harness.probe"};

        if (conn == NULL && natsConnection_Connect(&conn, o) != NATS_OK) {
            conn = NULL;
            usleep(100000);
            continue;
        }
        if (js == NULL && natsConnection_JetStream(&js, conn, &jo) != NATS_OK)
            goto out;
        jsStreamConfig_Init(&sc);
        sc.Name = "HARNESS_PROBE";
        sc.Subjects = subj;
        sc.SubjectsLen = 1;
        sc.Storage = js_MemoryStorage;
        sc.Replicas = up;
        if (js_AddStream(&si, js, &sc, NULL, NULL) == NATS_OK) {
            jsStreamInfo_Destroy(si);
            js_DeleteStream(js, "HARNESS_PROBE", NULL, NULL);
            rc = 0;
            goto out;
        }
        usleep(200000);
    }
    fprintf(stderr, "harness: JetStream cluster not ready within %lld ms; see %s\n",
            (long long)timeout_ms, c->nodes[0]->log);
out:
    jsCtx_Destroy(js);
    natsConnection_Destroy(conn);
    natsOptions_Destroy(o);
    return rc;
}

const char *harness_cluster_urls(const harness_cluster *c)
{
    return c->urls;
}

harness_nats *harness_cluster_node(const harness_cluster *c, int i)
{
    return i >= 0 && i < c->n ? c->nodes[i] : NULL;
}

int harness_cluster_find(const harness_cluster *c, const char *server_name)
{
    for (int i = 0; server_name != NULL && i < c->n; i++)
        if (strcmp(c->nodes[i]->server_name, server_name) == 0)
            return i;
    return -1;
}

const char *harness_nats_server_name(const harness_nats *h)
{
    return h->server_name;
}

int harness_nats_kill(harness_nats *h)
{
    int status;

    if (h->pid == 0)
        return 0;
    kill(h->pid, SIGKILL);
    waitpid(h->pid, &status, 0);
    h->pid = 0;
    return 0;
}

pid_t harness_start_xds(const harness_nats *h, const char *const *args, int *port, int *metrics_port)
{
    const char *argv[32];
    char bin[1024], line[256] = "";
    int n = 0, p = 0, m = 0;
    FILE *f = NULL;

    harness_binary(bin, sizeof bin, "services/xds/sluice-xds");
    argv[n++] = bin;
    argv[n++] = "--nats-url";
    argv[n++] = h->url;
    argv[n++] = "--listen";
    argv[n++] = "127.0.0.1:0";
    argv[n++] = "--metrics-addr";
    argv[n++] = "127.0.0.1:0";
    for (size_t i = 0; args && args[i] && n < 31; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    pid_t pid = harness_spawn_piped(argv, NULL, &f);
    if (pid < 0 || !f || !fgets(line, sizeof line, f) ||
        sscanf(line, "sluice-xds listening on port %d metrics port %d", &p, &m) != 2) {
        fprintf(stderr, "harness: %s did not start (%s)\n", bin, line);
        if (f)
            fclose(f);
        return -1;
    }
    fclose(f);
    if (port)
        *port = p;
    if (metrics_port)
        *metrics_port = m;
    return pid;
}

bool harness_log_has(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    char line[4096];
    bool found = false;
    while (f && !found && fgets(line, sizeof line, f))
        found = strstr(line, needle) != NULL;
    if (f)
        fclose(f);
    return found;
}
