/* sluice/backoff.h - exponential back-off with jitter, for retries (NATS reconnects, function
 * discovery's failing upstreams).
 *
 *   unsigned seed = (unsigned)getpid();
 *   int64_t wait = sl_backoff_ms(1000, 60000, failures, 25, &seed);
 */
#ifndef SLUICE_BACKOFF_H
#define SLUICE_BACKOFF_H

#include <stdint.h>

/* The delay before retry number attempt (1: after the first failure):
 * min_ms doubled attempt-1 times, capped at max_ms (max_ms below min_ms
 * counts as min_ms; min_ms below 1 as 1), plus a random 0..jitter_pct
 * percent of it (rand_r on *seed, the caller's; one thread per seed), so
 * that retries of many callers spread. */
int64_t sl_backoff_ms(int64_t min_ms, int64_t max_ms, int attempt, int jitter_pct, unsigned *seed);

#endif
