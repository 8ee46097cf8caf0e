/* vec.c - growable arrays (sluice/vec.h). */
#include "sluice/vec.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

sl_status sl_vec_grow(void *items, size_t elem, size_t *cap, size_t want)
{
    void *old, *p;
    size_t n;

    if (elem == 0)
        return sl_error_set(SL_ERR_INVALID, "array of zero-sized elements");
    if (want <= *cap)
        return SL_OK;
    n = *cap ? *cap : SL_VEC_MIN_CAP;
    while (n < want)
        n = n > SIZE_MAX / 2 ? want : n * 2;
    if (n > SIZE_MAX / elem)
        n = want; /* doubling past what fits: take only what was asked */
    if (n > SIZE_MAX / elem)
        return sl_error_set(SL_ERR_NOMEM, "array of %zu elements of %zu bytes is too large", want, elem);
    memcpy(&old, items, sizeof old);
    if (!(p = realloc(old, n * elem)))
        return sl_error_set(SL_ERR_NOMEM, "out of memory (array of %zu elements of %zu bytes)", n, elem);
    memcpy(items, &p, sizeof p);
    *cap = n;
    return SL_OK;
}

void sl_vec_fit(void *items, size_t elem, size_t *cap, size_t n)
{
    void *old, *p;

    if (n >= *cap || elem == 0)
        return;
    memcpy(&old, items, sizeof old);
    if (n == 0) {
        free(old);
        p = NULL;
    } else if (!(p = realloc(old, n * elem))) {
        return;
    }
    memcpy(items, &p, sizeof p);
    *cap = n;
}
