/* test_expect.h - checks shared by the libsluice unit tests. */
#ifndef SLUICE_TEST_EXPECT_H
#define SLUICE_TEST_EXPECT_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

/* Checks that text holds every one of the strings that follow (NULL
 * terminated); a failure names the missing one and prints text. */
static inline void expect_has(const char *text, ...)
{
    va_list ap;
    va_start(ap, text);
    for (const char *want; (want = va_arg(ap, const char *)) != NULL;)
        if (!text || !strstr(text, want))
            fail_msg("text does not hold \"%s\":\n%s", want, text ? text : "(none)");
    va_end(ap);
}

#endif
