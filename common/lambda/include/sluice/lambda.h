/* lambda.h - AWS Lambda ListFunctions answers (JSON) -> function versions, and AWS's error reasons.
 * Untrusted input: function discovery (services/function-discovery) asks AWS; this reads the answers. */
#ifndef SLUICE_LAMBDA_H
#define SLUICE_LAMBDA_H

#include <stdbool.h>
#include <stddef.h>

#include "sluice/status.h"

/* Function versions one Upstream may hold (its value must fit a NATS
 * message), pages of one listing, a marker's length, warnings kept. */
#define SL_LAMBDA_MAX_FUNCTIONS 5000
#define SL_LAMBDA_MAX_PAGES 1000
#define SL_LAMBDA_MAX_MARKER 1024
#define SL_LAMBDA_MAX_WARNINGS 20

/* One function version as ListFunctions with FunctionVersion=ALL lists it. */
typedef struct sl_lambda_fn {
    char *name;    /* FunctionName */
    char *version; /* "$LATEST" or a version number */
} sl_lambda_fn;

/* What a listing found. Owned by the caller: sl_lambda_list_deinit(). */
typedef struct sl_lambda_list {
    sl_lambda_fn *fns;
    size_t n, cap;
    char **warnings; /* entries skipped, by JSON path ("Functions[3].FunctionName: ...") */
    size_t n_warnings, cap_warnings;
} sl_lambda_list;

void sl_lambda_list_deinit(sl_lambda_list *l);

/* Appends the functions of one ListFunctions answer (JSON, len bytes) to
 * l; an entry that is not a function (bad name or version) is skipped
 * with a warning. *next_marker: NextMarker (malloc'd), NULL on the last
 * page. SL_ERR_INVALID: not JSON, not a ListFunctions answer, a bad
 * NextMarker, or more than max functions in l; the message says which. */
sl_status sl_lambda_parse_page(sl_lambda_list *l, char **next_marker, const char *body, size_t len, size_t max);

/* AWS's reason in an error answer's JSON body ("<type>: <message>",
 * printable ASCII, at most cap-1 bytes) into out; "" when it has none. */
void sl_lambda_error(char *out, size_t cap, const char *body, size_t len);

#endif
