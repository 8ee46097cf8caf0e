/* sluice/diag.h - a list of diagnostics: errors and warnings with positions.
 *
 * Parsers and validators add every problem of a document to one list instead
 * of stopping at the first, then the caller prints them, counts the errors
 * or hands them to a report:
 *
 *   sl_diag d;
 *   sl_diag_init(&d);
 *   ... sl_codec_decode_yaml(&msg, desc, data, len, &opts, &d) ...
 *   for (size_t i = 0; i < sl_diag_count(&d); i++) {
 *       char line[512];
 *       sl_diag_format(line, sizeof(line), sl_diag_get(&d, i));
 *       fprintf(stderr, "%s\n", line);
 *   }
 *   sl_diag_deinit(&d);
 *
 * A list owns copies of every string added to it; an item returned by
 * sl_diag_get() stays valid until the next add, clear or deinit. A list is
 * not thread safe: one per document being checked.
 */
#ifndef SLUICE_DIAG_H
#define SLUICE_DIAG_H

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

#include "sluice/status.h"

typedef enum sl_diag_severity {
    SL_DIAG_ERROR = 0,
    SL_DIAG_WARNING,
} sl_diag_severity;

typedef struct sl_diag_item {
    sl_diag_severity severity;
    char *file;    /* "" when unknown */
    unsigned line; /* 1-based; 0 when unknown */
    unsigned column; /* 1-based; 0 when unknown */
    char *path;    /* field path ("Listener.address.socketAddress"), "" when none */
    char *message; /* the full sentence, path included where it reads well */
} sl_diag_item;

typedef struct sl_diag {
    /* private: use the functions below */
    sl_diag_item *items;
    size_t count;
    size_t cap;
    size_t errors;
    int oom; /* an add failed for lack of memory */
} sl_diag;

/* Prepares a caller-owned, empty list; allocates nothing. */
void sl_diag_init(sl_diag *d);

/* Frees every item. The list may be initialised again afterwards. */
void sl_diag_deinit(sl_diag *d);

/* Removes every item; the list stays usable. */
void sl_diag_clear(sl_diag *d);

/* Appends an item. file and path may be NULL (stored as ""); line and column
 * are 1-based, 0 when unknown. The message is formatted printf-style.
 * SL_ERR_NOMEM when the item could not be stored; the list then remembers
 * that it is incomplete (sl_diag_incomplete()), and errors are still counted. */
sl_status sl_diag_add(sl_diag *d, sl_diag_severity sev, const char *file, unsigned line,
                      unsigned column, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));

/* sl_diag_add() with a va_list. */
sl_status sl_diag_addv(sl_diag *d, sl_diag_severity sev, const char *file, unsigned line,
                       unsigned column, const char *path, const char *fmt, va_list ap)
    __attribute__((format(printf, 7, 0)));

/* Appends copies of every item of src to d. */
sl_status sl_diag_append(sl_diag *d, const sl_diag *src);

/* Number of items, of errors, of warnings. */
size_t sl_diag_count(const sl_diag *d);
size_t sl_diag_errors(const sl_diag *d);
size_t sl_diag_warnings(const sl_diag *d);

/* Nonzero when an add failed for lack of memory (items are missing). */
int sl_diag_incomplete(const sl_diag *d);

/* Item i (0 <= i < count), or NULL. Valid until the list changes. */
const sl_diag_item *sl_diag_get(const sl_diag *d, size_t i);

/* Formats one item as "file:line:col: error: message" ("warning: " for
 * warnings; the position parts that are unknown are left out). Writes at most
 * size bytes including the NUL, like snprintf, and returns the length the
 * full text has. */
size_t sl_diag_format(char *buf, size_t size, const sl_diag_item *item);

/* The same as a malloc'd string the caller frees; NULL when out of memory. */
char *sl_diag_format_alloc(const sl_diag_item *item);

/* Writes every item, one formatted line each, to f. */
void sl_diag_print(const sl_diag *d, FILE *f);

#endif
