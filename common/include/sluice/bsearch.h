/* sluice/bsearch.h - binary search of a sorted array that also gives the
 * insertion position (plain bsearch() gives only a match).
 *
 * Header-only (static inline), so that a static comparison function is
 * inlined into the search as a hand-written loop would be. Pure and thread
 * safe for arrays nobody changes meanwhile.
 */
#ifndef SLUICE_BSEARCH_H
#define SLUICE_BSEARCH_H

#include <stdbool.h>
#include <stddef.h>

/* Searches base[0..n) (elements of size bytes, sorted ascending by cmp)
 * for key. Returns the index of the first element not less than key: where
 * key is, or where to insert it to keep the order (n when every element is
 * less). *found (may be NULL) says whether that element equals key.
 * cmp(key, elem) is as bsearch()'s: negative, zero or positive as key is
 * less than, equal to or greater than *elem. */
static inline size_t sl_bsearch_pos(bool *found, const void *key, const void *base, size_t n, size_t size,
                                    int (*cmp)(const void *key, const void *elem))
{
    size_t lo = 0, hi = n;
    int at_hi = 1; /* cmp(key, base[hi]) for the last hi set below: 0 means equal */

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = cmp(key, (const char *)base + mid * size);
        if (c > 0) {
            lo = mid + 1;
        } else {
            hi = mid;
            at_hi = c;
        }
    }
    if (found)
        *found = lo < n && at_hi == 0;
    return lo;
}

#endif
