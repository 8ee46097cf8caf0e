/* test_stop_bounded.c - a stop is bounded whether NATS is reachable or not
 * (issue 12, item 5): the five services run against an authenticated
 * nats-server, the server is killed with SIGKILL, and ONE SIGTERM to each
 * makes each exit within its --drain-timeout plus a small margin, with
 * status 0 (docs/operations.md, "Stopping"), saying that it gave up on
 * NATS. A service stopped while still trying to make its first connection
 * exits just as promptly (status 1: it never started). */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "harness.h"

#define DRAIN_MS 3000
#define DRAIN "3s"
#define MARGIN_MS 1500 /* SL_SERVICE_EXIT_MARGIN_MS (1 s) and scheduling */
#define NSVC 5

typedef struct svc {
    const char *dir, *exe;
    const char *args[8];
    pid_t pid;
    char log[512];
} svc;

static char tmp[256];

static const char *bin_dir(void)
{
    const char *b = getenv("SLUICE_BINARY_DIR");
    return b ? b : "build";
}

static pid_t spawn(svc *s, const char *url)
{
    char exe[512];
    snprintf(exe, sizeof exe, "%s/services/%s/%s", bin_dir(), s->dir, s->exe);
    snprintf(s->log, sizeof s->log, "%s/%s.log", tmp, s->dir);
    pid_t pid = fork();
    if (pid == 0) {
        const char *argv[16];
        int n = 0;
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        argv[n++] = exe;
        for (int i = 0; s->args[i] && n < 12; i++)
            argv[n++] = s->args[i];
        argv[n++] = "--drain-timeout";
        argv[n++] = DRAIN;
        argv[n] = NULL;
        setenv("NATS_URL", url, 1);
        setenv("SLUICE_HEARTBEAT_INTERVAL", "1s", 1);
        if (!freopen(s->log, "w", stderr) || !freopen("/dev/null", "w", stdout))
            _exit(126);
        execv(exe, (char *const *)argv);
        _exit(127);
    }
    s->pid = pid;
    return pid;
}

static bool log_has(const svc *s, const char *needle)
{
    return harness_log_has(s->log, needle);
}

/* Waits until every process exited or deadline; fills ms and status (-1:
 * still running) for each, counting from t0. */
static void wait_all(svc *s, int n, int64_t t0, int64_t deadline, int64_t *ms, int *status)
{
    int left = n;
    for (int i = 0; i < n; i++)
        status[i] = -1, ms[i] = -1;
    while (left > 0 && harness_now_ms() < deadline) {
        for (int i = 0; i < n; i++) {
            int st;
            if (status[i] != -1 || waitpid(s[i].pid, &st, WNOHANG) != s[i].pid)
                continue;
            ms[i] = harness_now_ms() - t0;
            status[i] = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
            left--;
        }
        usleep(20000);
    }
}

static void make_dirs(void)
{
    snprintf(tmp, sizeof tmp, "/tmp/sluice-stop-XXXXXX");
    assert_non_null(mkdtemp(tmp));
    char p[300];
    snprintf(p, sizeof p, "%s/config", tmp);
    assert_int_equal(mkdir(p, 0700), 0);
    snprintf(p, sizeof p, "%s/secrets", tmp);
    assert_int_equal(mkdir(p, 0700), 0);
}

static void one_sigterm_each_with_nats_killed(void **state)
{
    (void)state;
    harness_nats *h;
    char cfg[300], sec[300];
    int64_t ms[NSVC];
    int status[NSVC];

    make_dirs();
    snprintf(cfg, sizeof cfg, "%s/config", tmp);
    snprintf(sec, sizeof sec, "%s/secrets", tmp);
    svc s[NSVC] = {
        {"translator", "sluice-translator", {NULL}, 0, ""},
        {"reporter", "sluice-reporter", {NULL}, 0, ""},
        {"secret-watcher", "sluice-secret-watcher", {"--dir", sec, "--namespace", "gw", NULL}, 0, ""},
        {"xds", "sluice-xds", {"--listen", "127.0.0.1:0", NULL}, 0, ""},
        {"config-watcher", "sluice-config-watcher", {"--dir", cfg, NULL}, 0, ""},
    };
    assert_int_equal(harness_nats_start(&h), 0);
    for (int i = 0; i < NSVC; i++)
        assert_true(spawn(&s[i], harness_nats_url(h)) > 0);
    /* Each is up: ready, and its heartbeat has been written. */
    int64_t end = harness_now_ms() + 30000;
    for (int i = 0; i < NSVC; i++) {
        while (!log_has(&s[i], "msg=\"ready\"") && harness_now_ms() < end)
            usleep(50000);
        if (!log_has(&s[i], "msg=\"ready\""))
            fail_msg("%s never became ready (see %s)", s[i].exe, s[i].log);
    }

    assert_int_equal(harness_nats_kill(h), 0);
    usleep(300000); /* each has noticed the disconnection */
    int64_t t0 = harness_now_ms();
    for (int i = 0; i < NSVC; i++)
        assert_int_equal(kill(s[i].pid, SIGTERM), 0);
    wait_all(s, NSVC, t0, t0 + DRAIN_MS + 15000, ms, status);

    bool ok = true;
    for (int i = 0; i < NSVC; i++) {
        printf("%-24s exit status %d after %lld ms (drain timeout %d ms)\n", s[i].exe, status[i],
               (long long)ms[i], DRAIN_MS);
        if (status[i] == -1) {
            kill(s[i].pid, SIGKILL);
            waitpid(s[i].pid, NULL, 0);
        }
        /* one that waited on NATS says what it gave up on; one with nothing
         * left to flush may stop at once (seen under ASan: 125 ms) */
        if (status[i] != 0 || ms[i] > DRAIN_MS + MARGIN_MS ||
            (ms[i] >= DRAIN_MS / 2 && !log_has(&s[i], "giving up on")))
            ok = false;
    }
    harness_nats_free(h); /* before a failure's longjmp: nothing leaks */
    if (!ok)
        fail_msg("a service did not stop cleanly within its drain timeout (logs in %s)", tmp);
}

/* NATS never reachable: the service is still in its start-up connect loop
 * (--nats-connect-timeout 30s) when SIGTERM comes. */
static void sigterm_while_connecting(void **state)
{
    (void)state;
    harness_nats *h;
    int64_t ms[1];
    int status[1];
    svc s = {"translator", "sluice-translator", {"--nats-connect-timeout", "30s", NULL}, 0, ""};

    make_dirs();
    assert_int_equal(harness_nats_start(&h), 0);
    assert_int_equal(harness_nats_kill(h), 0);
    assert_true(spawn(&s, harness_nats_url(h)) > 0);
    int64_t end = harness_now_ms() + 10000;
    while (!log_has(&s, "connect failed, retrying") && harness_now_ms() < end)
        usleep(50000);
    assert_true(log_has(&s, "connect failed, retrying"));
    int64_t t0 = harness_now_ms();
    assert_int_equal(kill(s.pid, SIGTERM), 0);
    wait_all(&s, 1, t0, t0 + DRAIN_MS + 15000, ms, status);
    printf("%-24s exit status %d after %lld ms while connecting\n", s.exe, status[0], (long long)ms[0]);
    if (status[0] == -1) {
        kill(s.pid, SIGKILL);
        waitpid(s.pid, NULL, 0);
    }
    assert_int_equal(status[0], 1);
    assert_true(ms[0] <= 1000); /* noticed between two attempts, not at the deadline */
    harness_nats_free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(one_sigterm_each_with_nats_killed),
        cmocka_unit_test(sigterm_while_connecting),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
