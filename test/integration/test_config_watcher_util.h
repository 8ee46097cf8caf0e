/* test_config_watcher_util.h - helpers of the config-watcher and sluicectl
 * integration tests: real binaries from $SLUICE_BINARY_DIR, files, waits. */
#ifndef SLUICE_TEST_CW_UTIL_H
#define SLUICE_TEST_CW_UTIL_H

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "sluice/kv.h"

static inline const char *bin_dir(void)
{
    const char *b = getenv("SLUICE_BINARY_DIR");
    return b ? b : "build";
}

static inline void bin_path(char *buf, size_t n, const char *svc, const char *exe)
{
    snprintf(buf, n, "%s/services/%s/%s", bin_dir(), svc, exe);
}

/* Starts exe with args (NULL-terminated) and NATS_URL=url; logs to log. */
static inline pid_t start_proc(const char *exe, const char *const *args, const char *url,
                               const char *log)
{
    pid_t pid = fork();
    if (pid == 0) {
        const char *argv[32];
        int n = 0;
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        argv[n++] = exe;
        for (int i = 0; args && args[i] && n < 31; i++)
            argv[n++] = args[i];
        argv[n] = NULL;
        if (url)
            setenv("NATS_URL", url, 1);
        if (log) {
            FILE *f = freopen(log, "a", stderr);
            (void)f;
        }
        execv(exe, (char *const *)argv);
        _exit(127);
    }
    return pid;
}

/* SIGTERM, then waits up to 10 s; returns the exit status or -1. */
static inline int stop_proc(pid_t pid)
{
    int st = 0;
    if (pid <= 0)
        return -1;
    kill(pid, SIGTERM);
    for (int i = 0; i < 200; i++) {
        if (waitpid(pid, &st, WNOHANG) == pid)
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        usleep(50000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
    return -1;
}

static inline void write_file(const char *path, const char *text)
{
    char tmp[1024];
    snprintf(tmp, sizeof(tmp), "%s.tmp~", path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return;
    fputs(text, f);
    fclose(f);
    rename(tmp, path); /* atomic, as editors and config management do */
}

/* Checks that *out (run_cmd's output) holds every one of the strings that
 * follow (NULL terminated), then frees it and sets it to NULL. */
static inline void expect_out(char **out, ...)
{
    va_list ap;
    va_start(ap, out);
    for (const char *want; (want = va_arg(ap, const char *)) != NULL;)
        if (!*out || !strstr(*out, want))
            fail_msg("output does not hold \"%s\":\n%s", want, *out ? *out : "(none)");
    va_end(ap);
    free(*out);
    *out = NULL;
}

/* Checks that out holds none of the strings that follow (NULL terminated). */
static inline void expect_lacks(const char *out, ...)
{
    va_list ap;
    va_start(ap, out);
    for (const char *bad; (bad = va_arg(ap, const char *)) != NULL;)
        if (out && strstr(out, bad))
            fail_msg("output holds \"%s\":\n%s", bad, out);
    va_end(ap);
}

/* Runs a shell command; *out gets stdout+stderr (malloc'd). Returns the
 * exit code. */
static inline int run_cmd(char **out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static inline int run_cmd(char **out, const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    char full[4200];
    snprintf(full, sizeof(full), "(%s) 2>&1", cmd);
    FILE *p = popen(full, "r");
    size_t cap = 65536, n = 0;
    char *buf = malloc(cap);
    if (!p || !buf) {
        free(buf);
        *out = NULL;
        return -1;
    }
    size_t r;
    while ((r = fread(buf + n, 1, cap - n - 1, p)) > 0) {
        n += r;
        if (cap - n < 1024) {
            cap *= 2;
            buf = realloc(buf, cap);
        }
    }
    buf[n] = '\0';
    int st = pclose(p);
    *out = buf;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Waits until key exists (want_present) or not; returns the revision (or 1
 * for absence), 0 on timeout. min_rev: the value must be newer than it. */
static inline uint64_t wait_key(sl_kv *kv, const char *key, bool want_present, uint64_t min_rev,
                                int64_t timeout_ms)
{
    int64_t end = harness_now_ms() + timeout_ms;
    do {
        sl_kv_entry e = {0};
        sl_status st = sl_kv_get(&e, kv, key);
        if (st == SL_OK) {
            uint64_t rev = e.revision;
            sl_kv_entry_deinit(&e);
            if (want_present && rev > min_rev)
                return rev;
        } else if (st == SL_ERR_NOT_FOUND && !want_present) {
            return 1;
        }
        usleep(50000);
    } while (harness_now_ms() < end);
    return 0;
}

/* Opens (creating) a bucket, retrying until the service created it. */
static inline sl_kv *open_bucket(sl_nats *nc, const char *name)
{
    sl_kv *kv = NULL;
    sl_kv_config c;
    sl_kv_config_init(&c, name);
    if (sl_kv_open(&kv, nc, &c) != SL_OK)
        return NULL;
    return kv;
}

#endif
