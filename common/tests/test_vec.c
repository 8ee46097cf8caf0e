/* Growable arrays grow by doubling, keep their contents, refuse sizes that
 * overflow without touching the array, and trim to size. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "sluice/vec.h"

typedef struct item {
    int a;
    char name[20];
} item;

static void grows_by_doubling_and_keeps_contents(void **state)
{
    item *v = NULL;
    size_t n = 0, cap = 0;

    assert_int_equal(SL_VEC_RESERVE(v, cap, 1), SL_OK);
    assert_non_null(v);
    assert_int_equal(cap, SL_VEC_MIN_CAP);
    for (int i = 0; i < 1000; i++) {
        size_t before = cap;
        assert_int_equal(SL_VEC_RESERVE(v, cap, n + 1), SL_OK);
        assert_true(cap >= n + 1);
        assert_true(cap == before || cap == 2 * before);
        v[n].a = i;
        n++;
    }
    assert_int_equal(cap, 1024);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(v[i].a, i);
    free(v);
}

static void reserve_within_capacity_changes_nothing(void **state)
{
    int *v = NULL;
    size_t cap = 0;
    assert_int_equal(SL_VEC_RESERVE(v, cap, SL_VEC_MIN_CAP - 1), SL_OK);
    int *before = v;
    assert_int_equal(SL_VEC_RESERVE(v, cap, cap), SL_OK);
    assert_int_equal(SL_VEC_RESERVE(v, cap, 0), SL_OK);
    assert_ptr_equal(v, before);
    assert_int_equal(cap, SL_VEC_MIN_CAP);
    free(v);
}

static void a_big_want_jumps_to_the_next_doubling(void **state)
{
    char *v = NULL;
    size_t cap = 0;
    assert_int_equal(SL_VEC_RESERVE(v, cap, 100), SL_OK);
    assert_int_equal(cap, 128);
    assert_int_equal(SL_VEC_RESERVE(v, cap, 129), SL_OK);
    assert_int_equal(cap, 256);
    assert_int_equal(SL_VEC_RESERVE(v, cap, 5000), SL_OK);
    assert_int_equal(cap, 8192);
    memset(v, 1, cap); /* ASan: all of it is there */
    free(v);
}

static void overflow_is_refused_and_leaves_the_array(void **state)
{
    int *v = NULL;
    size_t cap = 0;
    assert_int_equal(SL_VEC_RESERVE(v, cap, 3), SL_OK);
    int *before = v;
    size_t before_cap = cap;

    /* want * elem overflows */
    assert_int_equal(SL_VEC_RESERVE(v, cap, SIZE_MAX / sizeof *v + 1), SL_ERR_NOMEM);
    assert_ptr_equal(v, before);
    assert_int_equal(cap, before_cap);
    assert_non_null(strstr(sl_error_msg(), "too large"));
    assert_int_equal(SL_VEC_RESERVE(v, cap, SIZE_MAX), SL_ERR_NOMEM);
    assert_ptr_equal(v, before);

    /* huge elements: even the first capacity overflows */
    void *w = NULL;
    size_t wcap = 0;
    assert_int_equal(sl_vec_reserve(&w, SIZE_MAX / 2, &wcap, 3), SL_ERR_NOMEM);
    assert_null(w);
    assert_int_equal(wcap, 0);
    assert_int_equal(sl_vec_reserve(&w, 0, &wcap, 3), SL_ERR_INVALID);
    assert_null(w);
    free(v);
}

static void macro_evaluates_each_argument_once(void **state)
{
    int *arrs[2] = {NULL, NULL};
    size_t caps[2] = {0, 0};
    int i = 0, j = 0, k = 0;
    assert_int_equal(SL_VEC_RESERVE(arrs[i++], caps[j++], (k++, 3)), SL_OK);
    assert_int_equal(i, 1);
    assert_int_equal(j, 1);
    assert_int_equal(k, 1);
    assert_non_null(arrs[0]);
    assert_null(arrs[1]);
    assert_int_equal(caps[0], SL_VEC_MIN_CAP);
    free(arrs[0]);
}

static void fit_trims_to_size(void **state)
{
    item *v = NULL;
    size_t cap = 0;
    assert_int_equal(SL_VEC_RESERVE(v, cap, 100), SL_OK);
    for (int i = 0; i < 3; i++)
        v[i].a = i;
    SL_VEC_FIT(v, cap, 3);
    assert_int_equal(cap, 3);
    for (int i = 0; i < 3; i++)
        assert_int_equal(v[i].a, i);
    SL_VEC_FIT(v, cap, 5); /* never grows */
    assert_int_equal(cap, 3);
    SL_VEC_FIT(v, cap, 0);
    assert_null(v);
    assert_int_equal(cap, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(grows_by_doubling_and_keeps_contents),
        cmocka_unit_test(reserve_within_capacity_changes_nothing),
        cmocka_unit_test(a_big_want_jumps_to_the_next_doubling),
        cmocka_unit_test(overflow_is_refused_and_leaves_the_array),
        cmocka_unit_test(macro_evaluates_each_argument_once),
        cmocka_unit_test(fit_trims_to_size),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
