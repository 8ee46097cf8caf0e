/* A service's --config file: its flags come before the command line's,
 * errors name the file and line, and every string is freed even after a
 * flag parser removed some from argv. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "sluice/conffile.h"
#include "conf_test.h"

static void file_flags_come_first(void **state)
{
    sl_conffile c;
    char arg[80];
    write_conf_arg("# comment\nnats-url = nats://10.0.0.1:4222\nlog-level debug   # trailing\n"
                   "no-api\nqueue = \"a b\"\n", arg, sizeof(arg));
    char *argv[] = {"svc", "--dir", "x", arg, "--log-level", "warn", NULL};
    assert_int_equal(sl_conffile_load(&c, 6, argv, NULL), SL_OK);
    const char *want[] = {"svc", "--nats-url", "nats://10.0.0.1:4222", "--log-level", "debug", "--no-api",
                          "--queue", "a b", "--dir", "x", "--log-level", "warn"};
    assert_int_equal(c.argc, 12);
    for (int i = 0; i < 12; i++)
        assert_string_equal(c.argv[i], want[i]);
    assert_null(c.argv[12]);
    /* A flag parser removes entries; deinit still frees every string
     * (LeakSanitizer checks it under make asan). */
    c.argv[1] = c.argv[11];
    c.argv[2] = NULL;
    c.argc = 2;
    sl_conffile_deinit(&c);
    assert_null(c.argv);
    unlink(path);
}

static void env_names_the_file(void **state)
{
    sl_conffile c;
    write_conf("bucket = other\n");
    setenv("SLUICE_TEST_CONFFILE", path, 1);
    char *argv[] = {"svc", NULL};
    assert_int_equal(sl_conffile_load(&c, 1, argv, "SLUICE_TEST_CONFFILE"), SL_OK);
    assert_int_equal(c.argc, 3);
    assert_string_equal(c.argv[1], "--bucket");
    assert_string_equal(c.argv[2], "other");
    sl_conffile_deinit(&c);
    unsetenv("SLUICE_TEST_CONFFILE");
    unlink(path);
}

static void errors_name_file_and_line(void **state)
{
    sl_conffile c;
    char msg[300];
    write_conf("queue = q\n--bucket = x\n");
    char *argv[] = {"svc", "--config", path, NULL};
    assert_int_equal(sl_conffile_load(&c, 3, argv, NULL), SL_ERR_PARSE);
    snprintf(msg, sizeof(msg), "%s:2: expected 'flag = value'", path);
    assert_string_equal(sl_error_msg(), msg);
    sl_conffile_deinit(&c);

    write_conf("config = other.conf\n");
    assert_int_equal(sl_conffile_load(&c, 3, argv, NULL), SL_ERR_PARSE);
    snprintf(msg, sizeof(msg), "%s:1: a config file cannot name another", path);
    assert_string_equal(sl_error_msg(), msg);
    sl_conffile_deinit(&c);
    unlink(path);

    assert_int_equal(sl_conffile_load(&c, 3, argv, NULL), SL_ERR_IO);
    assert_non_null(strstr(sl_error_msg(), "No such file"));
    sl_conffile_deinit(&c);

    char *missing[] = {"svc", "--config", NULL};
    assert_int_equal(sl_conffile_load(&c, 2, missing, NULL), SL_ERR_INVALID);
    assert_string_equal(sl_error_msg(), "--config needs a file");
    sl_conffile_deinit(&c);
}

/* Found with fuzz_conffile: a line longer than the 4 KiB read buffer was
 * read as two lines (its tail became a flag of its own, with a wrong line
 * number in errors after it), and a NUL byte silently cut a line short. */
static void long_lines_and_nul_bytes(void **state)
{
    sl_conffile c;
    char msg[300];
    size_t n = 6000;
    char *text = malloc(n + 64);
    assert_non_null(text);
    memcpy(text, "header = ", 9);
    memset(text + 9, 'x', n);
    snprintf(text + 9 + n, 64, "\nqueue = q\n");
    write_conf(text);
    char *argv[] = {"svc", "--config", path, NULL};
    assert_int_equal(sl_conffile_load(&c, 3, argv, NULL), SL_OK);
    assert_int_equal(c.argc, 5);
    assert_string_equal(c.argv[1], "--header");
    assert_int_equal(strlen(c.argv[2]), n);
    assert_string_equal(c.argv[3], "--queue");
    assert_string_equal(c.argv[4], "q");
    sl_conffile_deinit(&c);
    free(text);

    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fwrite("queue = q\nbucket = a\0b\n", 1, 23, f);
    fclose(f);
    assert_int_equal(sl_conffile_load(&c, 3, argv, NULL), SL_ERR_PARSE);
    snprintf(msg, sizeof(msg), "%s:2: NUL byte in the line", path);
    assert_string_equal(sl_error_msg(), msg);
    sl_conffile_deinit(&c);
    unlink(path);
}

/* sl_conffile_read(): the settings in file order, with their lines; a
 * flag alone has no value, "flag = \"\"" an empty one. */
static void read_gives_settings_and_lines(void **state)
{
    sl_conffile c;
    write_conf("# comment\n\nnats-url = nats://10.0.0.1:4222\nno-api\nqueue = \"a b\"\nlabel = \"\"\n");
    assert_int_equal(sl_conffile_read(&c, path), SL_OK);
    assert_int_equal(c.n_settings, 4);
    assert_string_equal(c.settings[0].name, "nats-url");
    assert_string_equal(c.settings[0].value, "nats://10.0.0.1:4222");
    assert_int_equal(c.settings[0].line, 3);
    assert_string_equal(c.settings[1].name, "no-api");
    assert_null(c.settings[1].value);
    assert_int_equal(c.settings[1].line, 4);
    assert_string_equal(c.settings[2].value, "a b");
    assert_string_equal(c.settings[3].name, "label");
    assert_string_equal(c.settings[3].value, "");
    assert_int_equal(c.argc, 0);
    sl_conffile_deinit(&c);
    assert_null(c.settings);

    write_conf("queue = q\nconfig = other.conf\n");
    assert_int_equal(sl_conffile_read(&c, path), SL_ERR_PARSE);
    sl_conffile_deinit(&c);
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(file_flags_come_first),
        cmocka_unit_test(env_names_the_file),
        cmocka_unit_test(errors_name_file_and_line),
        cmocka_unit_test(long_lines_and_nul_bytes),
        cmocka_unit_test(read_gives_settings_and_lines),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
