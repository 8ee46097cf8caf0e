/* test_lambda.c - sluice_lambda: ListFunctions pages, skipped entries, limits, AWS's error reasons. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/lambda.h"

static sl_status parse(sl_lambda_list *l, char **next, const char *json, size_t max)
{
    return sl_lambda_parse_page(l, next, json, strlen(json), max);
}

/* Two pages append; $LATEST and versions; a missing Version is $LATEST; the last page has no marker. */
static void test_pages(void **state)
{
    (void)state;
    sl_lambda_list l = {0};
    char *next = NULL;
    assert_int_equal(parse(&l, &next,
                           "{\"Functions\": [{\"FunctionName\": \"alpha\", \"Version\": \"$LATEST\"},"
                           "{\"FunctionName\": \"alpha\", \"Version\": \"1\"}], \"NextMarker\": \"+/9w=\"}",
                           100),
                     SL_OK);
    assert_string_equal(next, "+/9w=");
    free(next);
    assert_int_equal(parse(&l, &next, "{\"Functions\": [{\"FunctionName\": \"beta\"}], \"NextMarker\": null}", 100),
                     SL_OK);
    assert_null(next);
    assert_int_equal(l.n, 3);
    assert_string_equal(l.fns[1].name, "alpha");
    assert_string_equal(l.fns[1].version, "1");
    assert_string_equal(l.fns[2].name, "beta");
    assert_string_equal(l.fns[2].version, "$LATEST");
    assert_int_equal(l.n_warnings, 0);
    sl_lambda_list_deinit(&l);
}

/* Entries that are not functions are skipped with a warning naming them; others stay. */
static void test_skipped(void **state)
{
    (void)state;
    sl_lambda_list l = {0};
    char *next = NULL;
    assert_int_equal(parse(&l, &next,
                           "{\"Functions\": [{\"FunctionName\": \"has space\"}, 7, {\"FunctionName\": \"ok\", "
                           "\"Version\": \"v2\"}, {\"FunctionName\": \"ok\", \"Version\": \"2\"}]}",
                           100),
                     SL_OK);
    assert_int_equal(l.n, 1);
    assert_int_equal(l.n_warnings, 3);
    assert_non_null(strstr(l.warnings[0], "Functions[0].FunctionName"));
    assert_non_null(strstr(l.warnings[2], "Functions[2].Version"));
    sl_lambda_list_deinit(&l);
}

/* Not JSON, not an answer, a bad marker, too many functions: SL_ERR_INVALID and no marker. */
static void test_invalid(void **state)
{
    (void)state;
    const char *bad[] = {"{", "[]", "{\"Functions\": {}}", "{\"Functions\": [], \"NextMarker\": \"a b\"}",
                         "{\"Functions\": [], \"NextMarker\": 3}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        sl_lambda_list l = {0};
        char *next = NULL;
        assert_int_equal(parse(&l, &next, bad[i], 100), SL_ERR_INVALID);
        assert_null(next);
        sl_lambda_list_deinit(&l);
    }
    sl_lambda_list l = {0};
    char *next = NULL;
    assert_int_equal(parse(&l, &next, "{\"Functions\": [{\"FunctionName\": \"a\"}, {\"FunctionName\": \"b\"}]}", 1),
                     SL_ERR_INVALID);
    sl_lambda_list_deinit(&l);
}

/* AWS's reasons: REST JSON (Lambda), the query protocol's XML, nothing. */
static void test_errors(void **state)
{
    (void)state;
    char r[200];
    const char *json = "{\"Type\": \"User\", \"message\": \"The security token included in the request is invalid.\"}";
    sl_lambda_error(r, sizeof r, json, strlen(json));
    assert_string_equal(r, "User: The security token included in the request is invalid.");
    const char *xml = "<ErrorResponse><Errors><Error><Code>SignatureDoesNotMatch</Code><Message>no\nmatch</Message>"
                      "</Error></Errors></ErrorResponse>";
    sl_lambda_error(r, sizeof r, xml, strlen(xml));
    assert_string_equal(r, "SignatureDoesNotMatch: no match");
    sl_lambda_error(r, sizeof r, "plain text", 10);
    assert_string_equal(r, "");
    sl_lambda_error(r, sizeof r, NULL, 0);
    assert_string_equal(r, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_pages), cmocka_unit_test(test_skipped),
                                       cmocka_unit_test(test_invalid), cmocka_unit_test(test_errors)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
