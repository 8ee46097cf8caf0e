/* The logger gates by level without evaluating arguments, writes one
 * logfmt line per record, and escapes whatever could break a line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "sluice/log.h"

static int pipe_fds[2];

static int setup(void **state)
{
    if (pipe(pipe_fds) != 0)
        return -1;
    sl_log_set_fd(pipe_fds[1]);
    sl_log_set_service("test-svc");
    sl_log_set_level(SL_LOG_INFO);
    return 0;
}

static int teardown(void **state)
{
    sl_log_set_fd(2);
    close(pipe_fds[0]);
    close(pipe_fds[1]);
    return 0;
}

/* Reads what has been logged so far (records are small: one read does). */
static char *drain(void)
{
    static char buf[8192];
    ssize_t n;
    /* Write a sentinel so that the read never blocks on an empty pipe. */
    if (write(pipe_fds[1], "\x01", 1) != 1)
        return NULL;
    n = read(pipe_fds[0], buf, sizeof(buf) - 1);
    if (n <= 0)
        return NULL;
    buf[n - 1] = '\0'; /* drop the sentinel */
    return buf;
}

static int evaluated;
static int side_effect(void)
{
    evaluated++;
    return 42;
}

static void gates_by_level_without_evaluating(void **state)
{
    evaluated = 0;
    sl_log_debug("comp", "hidden", "x=%d", side_effect());
    sl_log_trace("comp", "hidden", "x=%d", side_effect());
    assert_int_equal(evaluated, 0);
    assert_string_equal(drain(), "");

    sl_log_info("comp", "shown", "x=%d", side_effect());
    assert_int_equal(evaluated, 1);
    assert_non_null(strstr(drain(), "msg=\"shown\" x=42\n"));

    sl_log_set_level(SL_LOG_TRACE);
    sl_log_trace("comp", "now shown");
    assert_non_null(strstr(drain(), "level=trace"));
    sl_log_set_level(SL_LOG_ERROR);
    sl_log_warn("comp", "hidden");
    assert_string_equal(drain(), "");
    sl_log_error("comp", "shown");
    assert_non_null(strstr(drain(), "level=error"));
    sl_log_set_level(SL_LOG_INFO);
}

static void line_format(void **state)
{
    char *line;
    int y, mo, d, h, mi, s, ms;
    char rest[256];

    sl_log_info("nats", "connected", "url=%s n=%d", "nats://127.0.0.1:4222", 3);
    line = drain();
    assert_int_equal(sscanf(line, "ts=%4d-%2d-%2dT%2d:%2d:%2d.%3dZ %255[^\n]", &y, &mo, &d, &h,
                            &mi, &s, &ms, rest),
                     8);
    assert_true(y >= 2024 && mo >= 1 && mo <= 12 && ms >= 0 && ms < 1000);
    assert_string_equal(rest, "level=info svc=test-svc comp=nats msg=\"connected\" "
                              "url=nats://127.0.0.1:4222 n=3");
    /* exactly one line */
    assert_ptr_equal(strchr(line, '\n'), line + strlen(line) - 1);

    /* no tail, no component, no service */
    sl_log_set_service(NULL);
    sl_log_warn("", "bare");
    line = drain();
    assert_non_null(strstr(line, "Z level=warn msg=\"bare\"\n"));
    sl_log_set_service("test-svc");
}

static void escapes_everything_that_breaks_a_line(void **state)
{
    char *line;

    sl_log_info("c", "multi\nline \"quoted\"", "err=%s raw=%s", sl_log_q("a b=\"c\"\n"),
                "x\ny");
    line = drain();
    assert_non_null(strstr(line, "msg=\"multi\\nline \\\"quoted\\\"\" "
                                 "err=\"a b=\\\"c\\\"\\n\" raw=x\\ny\n"));
    assert_ptr_equal(strchr(line, '\n'), line + strlen(line) - 1);
}

static void quote_helper(void **state)
{
    const char *plain = "abc.def";
    assert_ptr_equal(sl_log_q(plain), plain);
    assert_string_equal(sl_log_q(""), "\"\"");
    assert_string_equal(sl_log_q(NULL), "(null)");
    assert_string_equal(sl_log_q("a\\b"), "\"a\\\\b\"");
    assert_string_equal(sl_log_q("\x02"), "\"\\x02\"");
}

static void eight_quoted_values_survive_quoted_fields(void **state)
{
    sl_log_set_service("my svc");
    sl_log_info("a comp", "m", "a=%s b=%s c=%s d=%s e=%s f=%s g=%s h=%s", sl_log_q("1 1"),
                sl_log_q("2 2"), sl_log_q("3 3"), sl_log_q("4 4"), sl_log_q("5 5"), sl_log_q("6 6"),
                sl_log_q("7 7"), sl_log_q("8 8"));
    assert_non_null(strstr(drain(), "svc=\"my svc\" comp=\"a comp\" msg=\"m\" a=\"1 1\" b=\"2 2\" "
                                    "c=\"3 3\" d=\"4 4\" e=\"5 5\" f=\"6 6\" g=\"7 7\" h=\"8 8\"\n"));
    sl_log_set_service("test-svc");
}

static void long_records_are_truncated(void **state)
{
    char big[6000];
    char *line;

    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    sl_log_info("c", "big", "v=%s", big);
    line = drain();
    assert_true(strlen(line) <= 4096);
    assert_non_null(strstr(line, "xxx...\n"));
}

static void parses_levels(void **state)
{
    sl_log_level l = SL_LOG_INFO;
    assert_int_equal(sl_log_level_parse(&l, "DEBUG"), SL_OK);
    assert_int_equal(l, SL_LOG_DEBUG);
    assert_int_equal(sl_log_level_parse(&l, "warning"), SL_OK);
    assert_int_equal(l, SL_LOG_WARN);
    assert_int_equal(sl_log_level_parse(&l, "loud"), SL_ERR_INVALID);
    assert_int_equal(l, SL_LOG_WARN);
    assert_non_null(strstr(sl_error_msg(), "loud"));
    assert_string_equal(sl_log_level_name(SL_LOG_TRACE), "trace");
}

static void init_reads_env(void **state)
{
    setenv("SLUICE_LOG_LEVEL", "debug", 1);
    assert_int_equal(sl_log_init("from-env"), SL_OK);
    assert_int_equal(sl_log_get_level(), SL_LOG_DEBUG);
    setenv("SLUICE_LOG_LEVEL", "bogus", 1);
    assert_int_equal(sl_log_init("from-env"), SL_ERR_INVALID);
    assert_int_equal(sl_log_get_level(), SL_LOG_DEBUG);
    unsetenv("SLUICE_LOG_LEVEL");
    sl_log_info("c", "m");
    assert_non_null(strstr(drain(), "svc=from-env"));
    sl_log_set_level(SL_LOG_INFO);
    sl_log_set_service("test-svc");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(gates_by_level_without_evaluating),
        cmocka_unit_test(line_format),
        cmocka_unit_test(escapes_everything_that_breaks_a_line),
        cmocka_unit_test(quote_helper),
        cmocka_unit_test(eight_quoted_values_survive_quoted_fields),
        cmocka_unit_test(long_records_are_truncated),
        cmocka_unit_test(parses_levels),
        cmocka_unit_test(init_reads_env),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
