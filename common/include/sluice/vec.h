/* sluice/vec.h - growable arrays: one overflow-checked reserve instead of
 * a hand-written doubling realloc at every array (as h2o_vector_reserve).
 *
 * An array is a pointer, a count and a capacity (in elements) that the
 * caller keeps wherever it likes; this module only grows or trims the
 * memory:
 *
 *   item *v = NULL;
 *   size_t n = 0, cap = 0;
 *   if (SL_VEC_RESERVE(v, cap, n + 1) != SL_OK)
 *       goto err;               // v, n and cap are as they were
 *   v[n++] = x;
 *   ...
 *   free(v);                    // the array is plain malloc'd memory
 *
 * The array pointer is passed by address (T **) as a void *, and read and
 * written with memcpy, so any object pointer type works without a cast
 * (every platform Sluice builds on gives all object pointers void *'s
 * representation). New room is not zeroed. Not thread safe for the same
 * array; pointers into the array are invalid after a call that moved it.
 */
#ifndef SLUICE_VEC_H
#define SLUICE_VEC_H

#include <stddef.h>

#include "sluice/status.h"

/* Capacity of an array's first allocation when want is smaller. */
#define SL_VEC_MIN_CAP 4

/* The growing half of sl_vec_reserve(), out of line; call that instead. */
sl_status sl_vec_grow(void *items, size_t elem, size_t *cap, size_t want);

/* Makes the array at *items (a T ** passed as void *) of *cap elements of
 * elem bytes hold at least want. When *cap < want the new capacity is
 * SL_VEC_MIN_CAP (for an empty array) or *cap, doubled until it holds want
 * (exactly want when doubling would overflow); the array is reallocated
 * to it and *items and *cap are updated. SL_ERR_NOMEM (with a message) when the
 * allocation fails or want * elem overflows size_t, SL_ERR_INVALID when
 * growing with elem 0; *items and *cap are then unchanged. The check for
 * room is inline: a loop that appends pays a call only when it grows. */
static inline sl_status sl_vec_reserve(void *items, size_t elem, size_t *cap, size_t want)
{
    return want <= *cap ? SL_OK : sl_vec_grow(items, elem, cap, want);
}

/* Drops unused room: reallocates the array to exactly n elements when
 * *cap > n (frees it and sets it NULL when n is 0) and sets *cap. Best
 * effort: when the allocator fails the array stays as it was. */
void sl_vec_fit(void *items, size_t elem, size_t *cap, size_t n);

/* The typed front: arr is the array pointer (an lvalue of type T *), cap
 * its size_t capacity. Each argument is evaluated once (sizeof does not
 * evaluate arr). */
#define SL_VEC_RESERVE(arr, cap, want) sl_vec_reserve(&(arr), sizeof *(arr), &(cap), (want))
#define SL_VEC_FIT(arr, cap, n) sl_vec_fit(&(arr), sizeof *(arr), &(cap), (n))

#endif
