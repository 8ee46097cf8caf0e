/* sluice/log.h - level-gated, structured (logfmt) logging to stderr.
 *
 * One record is one line, written with a single write(2):
 *
 *   ts=2026-11-27T11:30:00.123Z level=info svc=sluice-xds comp=nats msg="connected" url=nats://127.0.0.1:4222
 *
 * Usage:
 *
 *   sl_log_info("nats", "connected", "url=%s servers=%d", url, n);
 *   sl_log_warn("kv", "put failed", "key=%s err=%s", sl_log_q(key), sl_log_q(sl_error_msg()));
 *   sl_log_debug("svc", "draining");
 *
 * - comp and msg are plain strings (msg is a constant phrase: it is quoted
 *   and escaped, never formatted).
 * - The optional third argument is a printf format for the key=value tail;
 *   it must be a string literal (checked by the compiler together with its
 *   arguments). Wrap string values that may hold spaces, quotes or '=' in
 *   sl_log_q().
 * - Below the current level nothing is formatted and the arguments are not
 *   evaluated: the macros test one atomic integer and skip the call.
 * - Control characters anywhere in a record are escaped, so a record is
 *   always exactly one line. Records longer than 4 KiB are truncated and
 *   end with "...".
 *
 * The logger's configuration (level, service name, output fd) is the only
 * process-wide mutable state in libsluice besides the signal flag; all of it
 * may be changed at any time from any thread.
 */
#ifndef SLUICE_LOG_H
#define SLUICE_LOG_H

#include <stdatomic.h>

#include "sluice/status.h"

typedef enum sl_log_level {
    SL_LOG_ERROR = 0,
    SL_LOG_WARN,
    SL_LOG_INFO,
    SL_LOG_DEBUG,
    SL_LOG_TRACE,
} sl_log_level;

/* The current level; use sl_log_enabled(), not this variable. */
extern _Atomic int sl_log_level_;

/* True when records at this level are written. */
static inline int sl_log_enabled(sl_log_level level)
{
    return (int)level <= atomic_load_explicit(&sl_log_level_, memory_order_relaxed);
}

/* Sets the level (default SL_LOG_INFO). */
void sl_log_set_level(sl_log_level level);

/* The current level. */
sl_log_level sl_log_get_level(void);

/* Parses "error", "warn" (or "warning"), "info", "debug", "trace"
 * (case-insensitive) into *out. SL_ERR_INVALID (with an error message) for
 * anything else; *out is then unchanged. */
sl_status sl_log_level_parse(sl_log_level *out, const char *name);

/* The lower-case name of a level ("info"). Static string. */
const char *sl_log_level_name(sl_log_level level);

/* Sets the svc= field of every record. The string is copied (at most 63
 * bytes are kept); NULL or "" removes the field. */
void sl_log_set_service(const char *name);

/* Sets the file descriptor records are written to (default 2, stderr).
 * The logger never closes it. Meant for tests and for daemons that
 * redirect their logs. */
void sl_log_set_fd(int fd);

/* Sets the service name and the level from the SLUICE_LOG_LEVEL environment
 * variable when set. On a bad value, the level stays unchanged and
 * SL_ERR_INVALID is returned (the service name is set either way). */
sl_status sl_log_init(const char *service);

/* A logfmt-safe rendering of s for a key=value tail: s itself when it needs
 * no quoting, otherwise a double-quoted copy with '"', '\\' and control
 * characters escaped (NULL gives "(null)"). The copy lives in a small
 * per-thread ring of 8 buffers of 1 KiB (longer values are truncated), so
 * up to 8 sl_log_q() results may be used in one record. */
const char *sl_log_q(const char *s);

/* Writes one record; use the macros below, which check the level first. */
void sl_log_write_(sl_log_level level, const char *comp, const char *msg, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* sl_log(level, comp, msg[, "k=%d ...", args...]). The leading " " glued to
 * the optional format makes a missing tail a valid (non-empty) format and
 * forces the tail to be a string literal. */
#define sl_log(level, comp, msg, ...)                                           \
    do {                                                                        \
        if (sl_log_enabled(level))                                              \
            sl_log_write_((level), (comp), (msg), " " __VA_ARGS__);             \
    } while (0)

#define sl_log_error(comp, msg, ...) sl_log(SL_LOG_ERROR, comp, msg, __VA_ARGS__)
#define sl_log_warn(comp, msg, ...) sl_log(SL_LOG_WARN, comp, msg, __VA_ARGS__)
#define sl_log_info(comp, msg, ...) sl_log(SL_LOG_INFO, comp, msg, __VA_ARGS__)
#define sl_log_debug(comp, msg, ...) sl_log(SL_LOG_DEBUG, comp, msg, __VA_ARGS__)
#define sl_log_trace(comp, msg, ...) sl_log(SL_LOG_TRACE, comp, msg, __VA_ARGS__)

#endif
