/* Back-off delays double from the minimum, stop at the cap, and their jitter stays within its share:
 * the function discovery's failing upstreams and NATS reconnects wait this long. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "sluice/backoff.h"

static void doubles_then_caps(void **state)
{
    unsigned seed = 1;
    (void)state;
    assert_int_equal(sl_backoff_ms(1000, 60000, 1, 0, &seed), 1000);
    assert_int_equal(sl_backoff_ms(1000, 60000, 2, 0, &seed), 2000);
    assert_int_equal(sl_backoff_ms(1000, 60000, 6, 0, &seed), 32000);
    assert_int_equal(sl_backoff_ms(1000, 60000, 7, 0, &seed), 60000);
    assert_int_equal(sl_backoff_ms(1000, 60000, 1000000, 0, &seed), 60000);
    /* attempt 0 or less: the minimum; a cap below the minimum: the minimum; no minimum: 1 ms */
    assert_int_equal(sl_backoff_ms(1000, 60000, 0, 0, &seed), 1000);
    assert_int_equal(sl_backoff_ms(1000, 10, 5, 0, &seed), 1000);
    assert_int_equal(sl_backoff_ms(0, 0, 3, 0, &seed), 1);
    /* no overflow near the top of the range */
    assert_int_equal(sl_backoff_ms(INT64_MAX / 2, INT64_MAX, 70, 0, &seed), INT64_MAX);
    assert_int_equal(sl_backoff_ms(INT64_MAX / 2, INT64_MAX, 70, 25, &seed) > 0, 1);
}

static void jitter_within_its_share(void **state)
{
    unsigned seed = 7;
    int64_t lo = INT64_MAX, hi = 0;
    (void)state;
    for (int i = 0; i < 10000; i++) {
        int64_t d = sl_backoff_ms(1000, 8000, 3, 25, &seed);
        assert_in_range(d, 4000, 5000);
        lo = d < lo ? d : lo;
        hi = d > hi ? d : hi;
    }
    /* it does spread */
    assert_true(lo < 4100);
    assert_true(hi > 4900);
    for (int i = 0; i < 1000; i++)
        assert_in_range(sl_backoff_ms(1000, 8000, 50, 25, &seed), 8000, 10000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(doubles_then_caps), cmocka_unit_test(jitter_within_its_share)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
