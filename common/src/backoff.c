/* backoff.c - exponential back-off with jitter (sluice/backoff.h). */
#include <stdlib.h>

#include "sluice/backoff.h"

int64_t sl_backoff_ms(int64_t min_ms, int64_t max_ms, int attempt, int jitter_pct, unsigned *seed)
{
    int64_t d = min_ms > 0 ? min_ms : 1;
    int64_t cap = max_ms > d ? max_ms : d;
    for (int i = 1; i < attempt && d < cap; i++)
        d = d > cap / 2 ? cap : d * 2;
    if (jitter_pct <= 0)
        return d;
    int64_t span = d / 100 * jitter_pct + d % 100 * jitter_pct / 100;
    if (span > INT64_MAX - d)
        span = INT64_MAX - d;
    return d + (int64_t)((uint64_t)rand_r(seed) % (uint64_t)(span + 1));
}
