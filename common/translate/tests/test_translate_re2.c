/* The RE2 syntax check: what RE2 accepts passes, what it rejects fails
 * with a reason (cases from RE2's own parse tests and Perl features RE2
 * lacks). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

#include "plugin.h"

static void valid(void **state)
{
    static const char *const ok[] = {
        "", "a", "abc", "a|b", "a*", "a+?", "a??", "(a)", "(?:a)", "(?P<n>a)", "(?<n>a)", "(?i)abc", "(?i:a)b",
        "(?-s:.)", "[a-z]", "[^a-z0-9_]", "[]a]", "[a-]", "[[:alpha:]]", "[[:^digit:]x]", "\\d+\\.\\d+",
        "\\pL", "\\p{Greek}", "\\PN", "\\x41", "\\x{10FFFF}", "\\101", "\\0", "a{2}", "a{2,}", "a{2,5}",
        "a{,5}", "x{1000}", "^/api/v[0-9]+/.*$", "\\Qa.b\\E", "\\bword\\B", "\\A\\z", "a{", "{", "a{b}",
        "/petstore(/.*)?", "^/petstore(/.*)?$", "(a|b|)", ".*", "[\\d\\s]", "[\\-]", NULL,
    };
    (void)state;
    for (int i = 0; ok[i]; i++) {
        const char *err = tr_re2_check(NULL, ok[i], NULL);
        if (err)
            fail_msg("\"%s\" should be valid: %s", ok[i], err);
    }
}

static void invalid(void **state)
{
    static const char *const bad[] = {
        "(", ")", "a)", "(a", "[a", "[z-a]", "*", "+a", "a**", "a*+", "a++", "a?*", "(?=a)", "(?!a)", "(?<=a)",
        "(?<!a)", "\\1", "(a)\\1", "(?P=n)", "\\Z", "\\G", "\\", "a{1001}", "a{2,1}", "(?P<n>a)(?P<n>b)",
        "[[:foo:]]", "\\x4", "\\x{}", "\\p{}", "(?z)", "[\\d-z]", "(a{100}){100}", "\\8", NULL,
    };
    (void)state;
    for (int i = 0; bad[i]; i++)
        if (!tr_re2_check(NULL, bad[i], NULL))
            fail_msg("\"%s\" should be invalid", bad[i]);
}

static void groups(void **state)
{
    int g = -1;
    (void)state;
    assert_null(tr_re2_check(NULL, "^/a(/b)(?:c)(?P<x>d)$", &g));
    assert_int_equal(g, 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(valid), cmocka_unit_test(invalid), cmocka_unit_test(groups)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
