/* libFuzzer target for the AWS Lambda ListFunctions answers function discovery reads
 * (services/function-discovery/lambda_parse.c: sl_lambda_parse_page, sl_lambda_error).
 *
 * Input: one answer body, parsed twice into one list (pages append) with a limit of 8 functions.
 * Invariants (abort on violation): no crash; SL_OK, SL_ERR_INVALID or SL_ERR_NOMEM only; every
 * function listed has a Lambda name (1 to 64 of A-Z a-z 0-9 _ -) and a version ("$LATEST" or
 * digits); never more than the limit, nor more warnings than SL_LAMBDA_MAX_WARNINGS; a
 * NextMarker is printable ASCII of at most SL_LAMBDA_MAX_MARKER bytes and only on SL_OK; the
 * error reason is printable ASCII within its buffer; nothing leaks (LeakSanitizer). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/lambda.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool printable(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n > max)
        return false;
    for (; *s; s++)
        if (*s < ' ' || *s > '~')
            return false;
    return true;
}

static void check_fn(const sl_lambda_fn *f)
{
    size_t n = strlen(f->name), v = strlen(f->version);
    if (!n || n > 64 || strspn(f->name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") != n)
        abort();
    if (strcmp(f->version, "$LATEST") != 0 && (!v || v > 20 || strspn(f->version, "0123456789") != v))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sl_lambda_list l = {0};
    char reason[200];
    for (int round = 0; round < 2; round++) {
        char *next = NULL;
        sl_status st = sl_lambda_parse_page(&l, &next, (const char *)data, size, 8);
        if (st != SL_OK && st != SL_ERR_INVALID && st != SL_ERR_NOMEM)
            abort();
        if (next && (st != SL_OK || !printable(next, SL_LAMBDA_MAX_MARKER) || !next[0]))
            abort();
        free(next);
    }
    if (l.n > 8 || l.n_warnings > SL_LAMBDA_MAX_WARNINGS)
        abort();
    for (size_t i = 0; i < l.n; i++)
        check_fn(&l.fns[i]);
    sl_lambda_list_deinit(&l);
    sl_lambda_error(reason, sizeof reason, (const char *)data, size);
    if (!printable(reason, sizeof reason - 1))
        abort();
    return 0;
}
