#include "sluice/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX 4096
#define LOG_Q_SLOTS 8
#define LOG_Q_SIZE 1024

_Atomic int sl_log_level_ = SL_LOG_INFO;

/* The service name and the fd change rarely; a mutex keeps a record from
 * seeing a half-copied name. The level is read lock-free by the macros. */
static pthread_mutex_t cfg_lock = PTHREAD_MUTEX_INITIALIZER;
static char cfg_service[64];
static int cfg_fd = 2;

static const char *const level_names[] = {
    [SL_LOG_ERROR] = "error",
    [SL_LOG_WARN] = "warn",
    [SL_LOG_INFO] = "info",
    [SL_LOG_DEBUG] = "debug",
    [SL_LOG_TRACE] = "trace",
};

void sl_log_set_level(sl_log_level level)
{
    if (level < SL_LOG_ERROR)
        level = SL_LOG_ERROR;
    if (level > SL_LOG_TRACE)
        level = SL_LOG_TRACE;
    atomic_store_explicit(&sl_log_level_, (int)level, memory_order_relaxed);
}

sl_log_level sl_log_get_level(void)
{
    return (sl_log_level)atomic_load_explicit(&sl_log_level_, memory_order_relaxed);
}

sl_status sl_log_level_parse(sl_log_level *out, const char *name)
{
    if (name == NULL)
        return sl_error_set(SL_ERR_INVALID, "log level: missing");
    for (int i = SL_LOG_ERROR; i <= SL_LOG_TRACE; i++) {
        if (strcasecmp(name, level_names[i]) == 0) {
            *out = (sl_log_level)i;
            return SL_OK;
        }
    }
    if (strcasecmp(name, "warning") == 0) {
        *out = SL_LOG_WARN;
        return SL_OK;
    }
    return sl_error_set(SL_ERR_INVALID,
                        "log level '%s': expected error, warn, info, debug or trace", name);
}

const char *sl_log_level_name(sl_log_level level)
{
    if (level < SL_LOG_ERROR || level > SL_LOG_TRACE)
        return "unknown";
    return level_names[level];
}

void sl_log_set_service(const char *name)
{
    pthread_mutex_lock(&cfg_lock);
    if (name == NULL)
        name = "";
    snprintf(cfg_service, sizeof(cfg_service), "%s", name);
    pthread_mutex_unlock(&cfg_lock);
}

void sl_log_set_fd(int fd)
{
    pthread_mutex_lock(&cfg_lock);
    cfg_fd = fd;
    pthread_mutex_unlock(&cfg_lock);
}

sl_status sl_log_init(const char *service)
{
    sl_status st = SL_OK;
    const char *env;
    sl_log_level level;

    sl_log_set_service(service);
    env = getenv("SLUICE_LOG_LEVEL");
    if (env != NULL && env[0] != '\0') {
        st = sl_log_level_parse(&level, env);
        if (st == SL_OK)
            sl_log_set_level(level);
        else
            sl_error_set(st, "SLUICE_LOG_LEVEL='%s': expected error, warn, info, debug or trace",
                         env);
    }
    return st;
}

static int needs_quote(const char *s)
{
    if (*s == '\0')
        return 1;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c <= ' ' || c == '"' || c == '=' || c == '\\' || c == 0x7f)
            return 1;
    }
    return 0;
}

/* Appends c to buf (at *len, capacity cap), escaping '"', '\\' when quoted
 * and every control character; returns 0 when it did not fit. */
static int put_escaped(char *buf, size_t cap, size_t *len, unsigned char c, int quoted)
{
    char tmp[8];
    size_t n;

    if (c == '\n') {
        memcpy(tmp, "\\n", 2);
        n = 2;
    } else if (c == '\r') {
        memcpy(tmp, "\\r", 2);
        n = 2;
    } else if (c == '\t') {
        memcpy(tmp, "\\t", 2);
        n = 2;
    } else if (c < 0x20 || c == 0x7f) {
        n = (size_t)snprintf(tmp, sizeof(tmp), "\\x%02x", c);
    } else if (quoted && (c == '"' || c == '\\')) {
        tmp[0] = '\\';
        tmp[1] = (char)c;
        n = 2;
    } else {
        tmp[0] = (char)c;
        n = 1;
    }
    if (*len + n >= cap)
        return 0;
    memcpy(buf + *len, tmp, n);
    *len += n;
    return 1;
}

const char *sl_log_q(const char *s)
{
    static _Thread_local char ring[LOG_Q_SLOTS][LOG_Q_SIZE];
    static _Thread_local unsigned next;
    char *buf;
    size_t len = 0;

    if (s == NULL)
        return "(null)";
    if (!needs_quote(s))
        return s;
    buf = ring[next++ % LOG_Q_SLOTS];
    buf[len++] = '"';
    /* Leave room for the closing quote and the terminator. */
    for (; *s; s++) {
        if (!put_escaped(buf, LOG_Q_SIZE - 1, &len, (unsigned char)*s, 1))
            break;
    }
    buf[len++] = '"';
    buf[len] = '\0';
    return buf;
}

/* Appends a formatted piece; stops at the limit (the record is then marked
 * truncated by the caller). */
static void append_raw(char *buf, size_t cap, size_t *len, const char *s)
{
    for (; *s && *len + 1 < cap; s++)
        put_escaped(buf, cap, len, (unsigned char)*s, 0);
}

/* Appends s as a logfmt value, quoted when needed. Written straight into
 * the line: the sl_log_q() ring may hold the caller's arguments. */
static void append_value(char *buf, size_t cap, size_t *len, const char *s)
{
    int quote = needs_quote(s);

    if (quote)
        append_raw(buf, cap, len, "\"");
    for (; *s && *len + 2 < cap; s++)
        put_escaped(buf, cap - 1, len, (unsigned char)*s, quote);
    if (quote)
        append_raw(buf, cap, len, "\"");
}

void sl_log_write_(sl_log_level level, const char *comp, const char *msg, const char *fmt, ...)
{
    char line[LOG_LINE_MAX];
    char tail[LOG_LINE_MAX];
    char svc[sizeof(cfg_service)];
    struct timespec ts;
    struct tm tm;
    size_t len = 0;
    size_t cap = sizeof(line) - 4; /* room for "...\n" */
    int fd, n, saved_errno = errno;
    va_list ap;

    pthread_mutex_lock(&cfg_lock);
    memcpy(svc, cfg_service, sizeof(svc));
    fd = cfg_fd;
    pthread_mutex_unlock(&cfg_lock);

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    n = snprintf(line, cap, "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                 ts.tv_nsec / 1000000L, sl_log_level_name(level));
    len = n > 0 ? (size_t)n : 0;
    if (svc[0] != '\0') {
        append_raw(line, cap, &len, " svc=");
        append_value(line, cap, &len, svc);
    }
    if (comp != NULL && comp[0] != '\0') {
        append_raw(line, cap, &len, " comp=");
        append_value(line, cap, &len, comp);
    }
    /* msg is always quoted so that readers find it at a fixed shape. */
    append_raw(line, cap, &len, " msg=\"");
    for (const char *p = msg != NULL ? msg : ""; *p && len + 2 < cap; p++)
        put_escaped(line, cap - 1, &len, (unsigned char)*p, 1);
    append_raw(line, cap, &len, "\"");

    va_start(ap, fmt);
    n = vsnprintf(tail, sizeof(tail), fmt, ap);
    va_end(ap);
    /* fmt always starts with the " " glued on by the macro; a bare " " is
     * an empty tail. */
    if (n > 1)
        append_raw(line, cap, &len, tail);
    if (len + 1 >= cap || (n > 0 && (size_t)n >= sizeof(tail))) {
        memcpy(line + len, "...", 3);
        len += 3;
    }
    line[len++] = '\n';

    /* One write per record keeps concurrent records from interleaving
     * (atomic for pipes up to PIPE_BUF, and for O_APPEND files). */
    while (write(fd, line, len) < 0 && errno == EINTR)
        ;
    errno = saved_errno;
}
