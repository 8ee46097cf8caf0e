#include "sluice/diag.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/vec.h"

static void free_and_null(char **p)
{
    free(*p);
    *p = NULL;
}

static void item_deinit(sl_diag_item *it)
{
    free_and_null(&it->file);
    free_and_null(&it->path);
    free_and_null(&it->message);
}

void sl_diag_init(sl_diag *d)
{
    memset(d, 0, sizeof(*d));
}

void sl_diag_clear(sl_diag *d)
{
    for (size_t i = 0; i < d->count; i++)
        item_deinit(&d->items[i]);
    d->count = 0;
    d->errors = 0;
    d->oom = 0;
}

void sl_diag_deinit(sl_diag *d)
{
    sl_diag_clear(d);
    free(d->items);
    sl_diag_init(d);
}

static char *dup_or_empty(const char *s)
{
    return strdup(s ? s : "");
}

/* Takes ownership of msg (even on failure). */
static sl_status push(sl_diag *d, sl_diag_severity sev, const char *file, unsigned line,
                      unsigned column, const char *path, char *msg)
{
    sl_status st = SL_OK;
    sl_diag_item it = {.severity = sev, .line = line, .column = column, .message = msg};

    if (sev == SL_DIAG_ERROR)
        d->errors++;
    if (!msg)
        goto nomem;
    if (SL_VEC_RESERVE(d->items, d->cap, d->count + 1) != SL_OK)
        goto nomem;
    it.file = dup_or_empty(file);
    it.path = dup_or_empty(path);
    if (!it.file || !it.path)
        goto nomem;
    d->items[d->count++] = it;
    goto out;
nomem:
    item_deinit(&it);
    d->oom = 1;
    st = SL_ERR_NOMEM;
out:
    return st;
}

sl_status sl_diag_addv(sl_diag *d, sl_diag_severity sev, const char *file, unsigned line,
                       unsigned column, const char *path, const char *fmt, va_list ap)
{
    char *msg = NULL;

    if (vasprintf(&msg, fmt, ap) < 0)
        msg = NULL;
    return push(d, sev, file, line, column, path, msg);
}

sl_status sl_diag_add(sl_diag *d, sl_diag_severity sev, const char *file, unsigned line,
                      unsigned column, const char *path, const char *fmt, ...)
{
    va_list ap;
    sl_status st;

    va_start(ap, fmt);
    st = sl_diag_addv(d, sev, file, line, column, path, fmt, ap);
    va_end(ap);
    return st;
}

sl_status sl_diag_append(sl_diag *d, const sl_diag *src)
{
    sl_status st = SL_OK;

    for (size_t i = 0; i < src->count; i++) {
        const sl_diag_item *it = &src->items[i];
        sl_status s = push(d, it->severity, it->file, it->line, it->column, it->path,
                           strdup(it->message));
        if (s != SL_OK)
            st = s;
    }
    if (src->oom)
        d->oom = 1;
    return st;
}

size_t sl_diag_count(const sl_diag *d) { return d->count; }
size_t sl_diag_errors(const sl_diag *d) { return d->errors; }

size_t sl_diag_warnings(const sl_diag *d)
{
    size_t n = 0;

    for (size_t i = 0; i < d->count; i++)
        n += d->items[i].severity == SL_DIAG_WARNING;
    return n;
}

int sl_diag_incomplete(const sl_diag *d) { return d->oom; }

const sl_diag_item *sl_diag_get(const sl_diag *d, size_t i)
{
    return i < d->count ? &d->items[i] : NULL;
}

size_t sl_diag_format(char *buf, size_t size, const sl_diag_item *item)
{
    char where[1024] = "";
    const char *sev = item->severity == SL_DIAG_ERROR ? "error" : "warning";
    const char *file = item->file ? item->file : "";
    int n;

    /* "file:line:col: ", "file: ", "line:col: " or nothing. */
    if (item->line && item->column)
        snprintf(where, sizeof(where), "%s%s%u:%u: ", file, *file ? ":" : "", item->line,
                 item->column);
    else if (item->line)
        snprintf(where, sizeof(where), "%s%s%u: ", file, *file ? ":" : "", item->line);
    else if (*file)
        snprintf(where, sizeof(where), "%s: ", file);
    n = snprintf(buf, size, "%s%s: %s", where, sev, item->message ? item->message : "");
    return n < 0 ? 0 : (size_t)n;
}

char *sl_diag_format_alloc(const sl_diag_item *item)
{
    size_t n = sl_diag_format(NULL, 0, item);
    char *s = malloc(n + 1);

    if (s)
        sl_diag_format(s, n + 1, item);
    return s;
}

void sl_diag_print(const sl_diag *d, FILE *f)
{
    for (size_t i = 0; i < d->count; i++) {
        char *line = sl_diag_format_alloc(&d->items[i]);
        if (line)
            fprintf(f, "%s\n", line);
        free(line);
    }
}
