/* sluice/status.h - the one status type, and error context where it happens.
 *
 * Every function that can fail returns sl_status (SL_OK == 0) and puts its
 * results in out-parameters placed first. When it fails it may record a
 * message with sl_error_set(); the context is per thread and stays until the
 * next sl_error_set() or sl_error_clear() on that thread.
 */
#ifndef SLUICE_STATUS_H
#define SLUICE_STATUS_H

#include <stddef.h>

typedef enum sl_status {
    SL_OK = 0,
    SL_ERR_NOMEM,       /* allocation failed */
    SL_ERR_INVALID,     /* bad argument or bad input (see the error context) */
    SL_ERR_PARSE,       /* a document could not be parsed or decoded */
    SL_ERR_NOT_FOUND,   /* no such key, resource, type or file */
    SL_ERR_EXISTS,      /* already exists */
    SL_ERR_CONFLICT,    /* revision or ownership conflict */
    SL_ERR_IO,          /* system call failed (errno in the message) */
    SL_ERR_NATS,        /* NATS or JetStream failed */
    SL_ERR_TIMEOUT,     /* deadline passed */
    SL_ERR_CLOSED,      /* the object is shut down or the peer went away */
    SL_ERR_UNSUPPORTED, /* valid but not supported by Sluice (yet) */
    SL_ERR_INTERNAL,    /* a bug: an invariant did not hold */
    SL_STATUS_COUNT_
} sl_status;

/* A static, human readable name for a status ("invalid input"). */
const char *sl_status_str(sl_status s);

/* Records the error context of this thread and returns s, so that a
 * function can write `return sl_error_set(SL_ERR_INVALID, "bad port %d", p);`.
 * The message is formatted printf-style and truncated at 1 KiB. */
#define sl_error_set(s, ...) sl_error_set_((s), __FILE__, __func__, __LINE__, __VA_ARGS__)
sl_status sl_error_set_(sl_status s, const char *file, const char *func, int line,
                        const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* The last message recorded on this thread ("" when none). Valid until the
 * next sl_error_set()/sl_error_clear() on this thread. */
const char *sl_error_msg(void);

/* Where the last error was recorded: "file.c:123 (function)" or "". */
const char *sl_error_where(void);

/* The status recorded with the last message (SL_OK when none). */
sl_status sl_error_status(void);

void sl_error_clear(void);

#endif
