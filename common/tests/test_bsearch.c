/* sl_bsearch_pos finds elements and gives the insertion position of those
 * it does not find, at both ends, in empty arrays and among duplicates. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "sluice/bsearch.h"

static int cmp_int(const void *key, const void *elem)
{
    int a = *(const int *)key, b = *(const int *)elem;
    return (a > b) - (a < b);
}

static int cmp_str(const void *key, const void *elem)
{
    return strcmp(key, *(const char *const *)elem);
}

/* The position a linear scan gives: the first element not less than key. */
static size_t linear(const int *v, size_t n, int key)
{
    size_t i = 0;
    while (i < n && v[i] < key)
        i++;
    return i;
}

static void finds_and_gives_insertion_positions(void **state)
{
    static const int v[] = {10, 20, 30, 40, 50};
    static const struct {
        int key;
        size_t pos;
        bool found;
    } cases[] = {
        {5, 0, false}, {10, 0, true}, {35, 3, false}, {50, 4, true}, {51, 5, false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        bool found = !cases[i].found;
        assert_int_equal(sl_bsearch_pos(&found, &cases[i].key, v, 5, sizeof *v, cmp_int), cases[i].pos);
        assert_int_equal(found, cases[i].found);
    }
    int key = 51;
    assert_int_equal(sl_bsearch_pos(NULL, &key, v, 5, sizeof *v, cmp_int), 5); /* found may be NULL */
}

static void empty_array_gives_zero(void **state)
{
    bool found = true;
    int key = 1;
    assert_int_equal(sl_bsearch_pos(&found, &key, NULL, 0, sizeof(int), cmp_int), 0);
    assert_false(found);
}

/* Every key against every length of an array of even numbers. */
static void agrees_with_a_linear_scan(void **state)
{
    int v[65];
    for (int i = 0; i < 65; i++)
        v[i] = 2 * i;
    for (size_t n = 0; n <= 65; n++)
        for (int key = -1; key <= 131; key++) {
            bool found;
            size_t pos = sl_bsearch_pos(&found, &key, v, n, sizeof *v, cmp_int);
            assert_int_equal(pos, linear(v, n, key));
            assert_int_equal(found, pos < n && v[pos] == key);
        }
}

static void duplicates_give_the_first(void **state)
{
    static const int v[] = {1, 2, 2, 2, 2, 3};
    bool found;
    int key = 2;
    assert_int_equal(sl_bsearch_pos(&found, &key, v, 6, sizeof *v, cmp_int), 1);
    assert_true(found);
}

static void arrays_of_strings(void **state)
{
    static const char *const names[] = {"cluster-a", "cluster-b", "listener", "route"};
    bool found;
    assert_int_equal(sl_bsearch_pos(&found, "listener", names, 4, sizeof *names, cmp_str), 2);
    assert_true(found);
    assert_int_equal(sl_bsearch_pos(&found, "cluster-c", names, 4, sizeof *names, cmp_str), 2);
    assert_false(found);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(finds_and_gives_insertion_positions),
        cmocka_unit_test(empty_array_gives_zero),
        cmocka_unit_test(agrees_with_a_linear_scan),
        cmocka_unit_test(duplicates_give_the_first),
        cmocka_unit_test(arrays_of_strings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
