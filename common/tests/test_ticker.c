/* test_ticker.c - sl_ticker (sluice/service.h): ticks reach the loop, none after free. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#include <cmocka.h>

#include "sluice/service.h"

static atomic_int ticks;
static atomic_bool sentinel_ran;

static void on_tick(void *ud)
{
    (void)ud;
    atomic_fetch_add(&ticks, 1);
}

static void sentinel(void *ud)
{
    (void)ud;
    atomic_store(&sentinel_ran, true);
}

static void *run_loop(void *arg)
{
    sl_loop_run(arg);
    return NULL;
}

static void test_ticker(void **state)
{
    (void)state;
    sl_loop *l;
    sl_ticker *t;
    pthread_t th;

    assert_int_equal(sl_loop_new(&l), SL_OK);
    assert_int_equal(sl_ticker_start(&t, l, 0, on_tick, NULL), SL_ERR_INVALID);
    assert_int_equal(sl_ticker_start(&t, l, 5, on_tick, NULL), SL_OK);
    assert_int_equal(pthread_create(&th, NULL, run_loop, l), 0);
    while (atomic_load(&ticks) < 3)
        usleep(1000);
    sl_ticker_free(t);
    int at_free = atomic_load(&ticks);
    /* A task posted after the free runs after anything the ticker queued. */
    assert_int_equal(sl_loop_post(l, NULL, sentinel, NULL, NULL), SL_OK);
    while (!atomic_load(&sentinel_ran))
        usleep(1000);
    assert_int_equal(atomic_load(&ticks), at_free);
    sl_loop_stop(l);
    pthread_join(th, NULL);
    sl_loop_free(l);
    sl_ticker_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_ticker)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
