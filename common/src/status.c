#include "sluice/status.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *const names[SL_STATUS_COUNT_] = {
    [SL_OK] = "ok",
    [SL_ERR_NOMEM] = "out of memory",
    [SL_ERR_INVALID] = "invalid input",
    [SL_ERR_PARSE] = "parse error",
    [SL_ERR_NOT_FOUND] = "not found",
    [SL_ERR_EXISTS] = "already exists",
    [SL_ERR_CONFLICT] = "conflict",
    [SL_ERR_IO] = "i/o error",
    [SL_ERR_NATS] = "nats error",
    [SL_ERR_TIMEOUT] = "timeout",
    [SL_ERR_CLOSED] = "closed",
    [SL_ERR_UNSUPPORTED] = "unsupported",
    [SL_ERR_INTERNAL] = "internal error",
};

static _Thread_local struct {
    sl_status status;
    char msg[1024];
    char where[256];
} ctx;

const char *sl_status_str(sl_status s)
{
    if ((unsigned)s >= SL_STATUS_COUNT_)
        return "unknown status";
    return names[s];
}

sl_status sl_error_set_(sl_status s, const char *file, const char *func, int line,
                        const char *fmt, ...)
{
    va_list ap;

    char msg[sizeof(ctx.msg)];

    ctx.status = s;
    /* formatted aside first: a caller may pass sl_error_msg() itself
     * ("...: %s", sl_error_msg()) to wrap the error it got */
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    memcpy(ctx.msg, msg, sizeof(msg));
    snprintf(ctx.where, sizeof(ctx.where), "%s:%d (%s)", file, line, func);
    return s;
}

const char *sl_error_msg(void) { return ctx.msg; }
const char *sl_error_where(void) { return ctx.where; }
sl_status sl_error_status(void) { return ctx.status; }

void sl_error_clear(void)
{
    ctx.status = SL_OK;
    ctx.msg[0] = '\0';
    ctx.where[0] = '\0';
}
