/* The flag table parser: --flag value and --flag=value, environment
 * variables, the config file, precedence (command line > environment >
 * config file > default), every error message, and --help generated from
 * the tables (also a service's, with the common flags). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "test_expect.h"

#include "sluice/flags.h"
#include "sluice/service.h"
#include "conf_test.h"

/* The variables of a test program and its table. */
static const char *name, *mode, *conf;
static int workers;
static int64_t debounce_ms;
static bool no_api, help;
static sl_flag_list dirs;
static const char *label;

static const sl_flag table[] = {
    {.name = "name", .kind = SL_FLAG_STRING, .target = &name, .def = "sluice", .env = "TF_NAME",
     .help = "a name"},
    {.name = "workers", .kind = SL_FLAG_INT, .target = &workers, .def = "2", .env = "TF_WORKERS", .min = 1,
     .max = 64, .help = "threads"},
    {.name = "debounce", .kind = SL_FLAG_DURATION, .target = &debounce_ms, .def = "10ms", .env = "TF_DEBOUNCE",
     .help = "quiet time\nbefore acting"},
    {.name = "no-api", .kind = SL_FLAG_BOOL, .target = &no_api, .env = "TF_NO_API", .help = "no API"},
    {.name = "mode", .kind = SL_FLAG_CHOICE, .target = &mode, .def = "auto", .choices = "auto|on|off",
     .help = "how"},
    {.name = "dir", .kind = SL_FLAG_LIST, .target = &dirs, .env = "TF_DIRS", .arg = "DIR",
     .help = "a directory"},
    {.name = "label", .kind = SL_FLAG_STRING, .target = &label, .def = "x", .env = "TF_LABEL",
     .opts = SL_FLAG_EMPTY_OK, .help = "may be empty"},
    {.name = "config", .kind = SL_FLAG_STRING, .target = &conf, .env = "TF_CONFIG", .arg = "FILE",
     .opts = SL_FLAG_CONFIG, .help = "flags from FILE"},
    {.name = "help", .shorthand = 'h', .kind = SL_FLAG_BOOL, .target = &help, .opts = SL_FLAG_EXIT,
     .help = "show this help"},
};

static const char *const env_names[] = {"TF_NAME", "TF_WORKERS", "TF_DEBOUNCE", "TF_NO_API",
                                        "TF_DIRS", "TF_LABEL",   "TF_CONFIG"};

static int setup(void **state)
{
    for (size_t i = 0; i < sizeof(env_names) / sizeof(env_names[0]); i++)
        unsetenv(env_names[i]);
    name = mode = conf = label = NULL;
    workers = -1;
    debounce_ms = -1;
    no_api = help = false;
    snprintf(path, sizeof(path), "/tmp/sluice-flags-%d.conf", (int)getpid());
    return 0;
}

static int teardown(void **state)
{
    unlink(path);
    return setup(state);
}

/* Parses argv (NULL-terminated) with the test table; fs must be deinit. */
static sl_status parse(sl_flags *fs, char **argv, unsigned mode_bits)
{
    int argc = 0;
    while (argv[argc] != NULL)
        argc++;
    sl_flags_init(fs);
    assert_int_equal(sl_flags_add(fs, "Test flags", table, sizeof(table) / sizeof(table[0])), SL_OK);
    return sl_flags_parse(fs, &argc, argv, mode_bits);
}

/* Expects parse(argv) to fail with SL_ERR_INVALID and exactly msg. */
static void expect_error(char **argv, const char *msg)
{
    sl_flags fs;
    sl_status st = parse(&fs, argv, 0);
    if (st != SL_ERR_INVALID)
        fail_msg("%s: status %d, wanted: %s", argv[1] ? argv[1] : "-", (int)st, msg);
    assert_string_equal(sl_error_msg(), msg);
    sl_flags_deinit(&fs);
}

static void defaults(void **state)
{
    sl_flags fs;
    char *argv[] = {"prog", NULL};
    assert_int_equal(parse(&fs, argv, 0), SL_OK);
    assert_string_equal(name, "sluice");
    assert_int_equal(workers, 2);
    assert_int_equal(debounce_ms, 10);
    assert_false(no_api);
    assert_string_equal(mode, "auto");
    assert_int_equal(dirs.n, 0);
    assert_string_equal(label, "x");
    assert_null(conf);
    assert_false(help);
    sl_flags_deinit(&fs);
}

static void both_forms(void **state)
{
    sl_flags fs;
    char *argv[] = {"prog", "--name", "a b", "--workers=8", "--debounce", "2s", "--no-api", "--mode=off",
                    "--dir", "/a", "--dir=/b", "--label=", NULL};
    assert_int_equal(parse(&fs, argv, 0), SL_OK);
    assert_string_equal(name, "a b");
    assert_int_equal(workers, 8);
    assert_int_equal(debounce_ms, 2000);
    assert_true(no_api);
    assert_string_equal(mode, "off");
    assert_int_equal(dirs.n, 2);
    assert_string_equal(dirs.v[0], "/a");
    assert_string_equal(dirs.v[1], "/b");
    assert_string_equal(label, ""); /* SL_FLAG_EMPTY_OK */
    sl_flags_deinit(&fs);

    char *argv2[] = {"prog", "--no-api=false", "--name=x=y", NULL};
    assert_int_equal(parse(&fs, argv2, 0), SL_OK);
    assert_false(no_api);
    assert_string_equal(name, "x=y");
    sl_flags_deinit(&fs);
}

static void environment(void **state)
{
    sl_flags fs;
    char *argv[] = {"prog", NULL};
    setenv("TF_NAME", "from-env", 1);
    setenv("TF_WORKERS", "3", 1);
    setenv("TF_DEBOUNCE", "1m", 1);
    setenv("TF_NO_API", "yes", 1);
    setenv("TF_DIRS", "/x::/y", 1);
    setenv("TF_LABEL", "", 1);
    assert_int_equal(parse(&fs, argv, 0), SL_OK);
    assert_string_equal(name, "from-env");
    assert_int_equal(workers, 3);
    assert_int_equal(debounce_ms, 60000);
    assert_true(no_api);
    assert_int_equal(dirs.n, 2);
    assert_string_equal(dirs.v[0], "/x");
    assert_string_equal(dirs.v[1], "/y");
    assert_string_equal(label, ""); /* an empty variable counts for SL_FLAG_EMPTY_OK */
    sl_flags_deinit(&fs);

    /* an empty variable is unset otherwise */
    setenv("TF_NAME", "", 1);
    assert_int_equal(parse(&fs, argv, 0), SL_OK);
    assert_string_equal(name, "sluice");
    sl_flags_deinit(&fs);
}

static void config_file(void **state)
{
    sl_flags fs;
    char arg[96];
    write_conf_arg("# settings\nname = from-file\nworkers 5\ndebounce=250ms   # trailing\nno-api\n"
                   "dir = /f1\ndir '/f 2'\nmode = on\n", arg, sizeof(arg));
    char *argv[] = {"prog", arg, NULL};
    assert_int_equal(parse(&fs, argv, 0), SL_OK);
    assert_string_equal(conf, path);
    assert_string_equal(name, "from-file");
    assert_int_equal(workers, 5);
    assert_int_equal(debounce_ms, 250);
    assert_true(no_api);
    assert_string_equal(mode, "on");
    assert_int_equal(dirs.n, 2);
    assert_string_equal(dirs.v[1], "/f 2");
    sl_flags_deinit(&fs);

    /* the config flag's variable names the file too */
    setenv("TF_CONFIG", path, 1);
    char *argv2[] = {"prog", NULL};
    assert_int_equal(parse(&fs, argv2, 0), SL_OK);
    assert_string_equal(name, "from-file");
    assert_string_equal(conf, path);
    sl_flags_deinit(&fs);
}

/* command line > environment > config file > default, for a single value
 * and a list; a lower source's bad value is not looked at. */
static void precedence(void **state)
{
    sl_flags fs;
    write_conf("name = file\nworkers = 5\ndebounce = 5s\ndir = /file\nmode = off\n");
    setenv("TF_CONFIG", path, 1);
    setenv("TF_WORKERS", "6", 1);
    setenv("TF_DEBOUNCE", "6s", 1);
    setenv("TF_DIRS", "/env1:/env2", 1);
    {
        char *argv[] = {"prog", "--debounce", "7s", NULL};
        assert_int_equal(parse(&fs, argv, 0), SL_OK);
        assert_string_equal(name, "file");  /* file > default */
        assert_int_equal(workers, 6);       /* env > file */
        assert_int_equal(debounce_ms, 7000); /* flag > env */
        assert_string_equal(mode, "off");
        assert_int_equal(dirs.n, 2); /* the environment's list replaces the file's */
        assert_string_equal(dirs.v[0], "/env1");
        sl_flags_deinit(&fs);
    }
    {
        char *argv[] = {"prog", "--dir", "/arg", NULL};
        assert_int_equal(parse(&fs, argv, 0), SL_OK);
        assert_int_equal(dirs.n, 1); /* the command line's list replaces the others */
        assert_string_equal(dirs.v[0], "/arg");
        sl_flags_deinit(&fs);
    }
    /* a bad variable overridden by the command line is no error */
    setenv("TF_WORKERS", "many", 1);
    {
        char *argv[] = {"prog", "--workers", "4", NULL};
        assert_int_equal(parse(&fs, argv, 0), SL_OK);
        assert_int_equal(workers, 4);
        sl_flags_deinit(&fs);
    }
    {
        char *argv[] = {"prog", NULL};
        assert_int_equal(parse(&fs, argv, 0), SL_ERR_INVALID);
        assert_string_equal(sl_error_msg(), "TF_WORKERS: bad value 'many' (an integer from 1 to 64)");
        sl_flags_deinit(&fs);
    }
    /* --config on the command line beats its variable */
    {
        char other[96];
        snprintf(other, sizeof(other), "%s.2", path);
        FILE *f = fopen(other, "w");
        assert_non_null(f);
        fputs("name = other\n", f);
        fclose(f);
        char *argv[] = {"prog", "--config", other, "--workers", "1", NULL};
        assert_int_equal(parse(&fs, argv, 0), SL_OK);
        assert_string_equal(name, "other");
        sl_flags_deinit(&fs);
        unlink(other);
    }
}

static void command_line_errors(void **state)
{
    {
        char *argv[] = {"prog", "--workrs", "6", NULL};
        expect_error(argv, "unknown flag --workrs (did you mean --workers?)");
    }
    {
        char *argv[] = {"prog", "--debouncee=1s", NULL};
        expect_error(argv, "unknown flag --debouncee (did you mean --debounce?)");
    }
    {
        char *argv[] = {"prog", "--bogus", NULL};
        expect_error(argv, "unknown flag --bogus");
    }
    {
        char *argv[] = {"prog", "-x", NULL};
        expect_error(argv, "unknown flag -x");
    }
    {
        char *argv[] = {"prog", "--debounce", NULL};
        expect_error(argv, "--debounce: missing value");
    }
    {
        char *argv[] = {"prog", "--name=", NULL};
        expect_error(argv, "--name: missing value");
    }
    {
        char *argv[] = {"prog", "--debounce", "soon", NULL};
        expect_error(argv, "--debounce: bad duration 'soon' (a number and a unit: 500ms, 10s, 2m, 1h; or 0)");
    }
    {
        char *argv[] = {"prog", "--debounce=10", NULL};
        expect_error(argv, "--debounce: bad duration '10' (a number and a unit: 500ms, 10s, 2m, 1h; or 0)");
    }
    {
        char *argv[] = {"prog", "--workers", "65", NULL};
        expect_error(argv, "--workers: bad value '65' (an integer from 1 to 64)");
    }
    {
        char *argv[] = {"prog", "--workers", "04", NULL};
        expect_error(argv, "--workers: bad value '04' (an integer from 1 to 64)");
    }
    {
        char *argv[] = {"prog", "--mode", "maybe", NULL};
        expect_error(argv, "--mode: bad value 'maybe' (auto, on or off)");
    }
    {
        char *argv[] = {"prog", "--no-api=perhaps", NULL};
        expect_error(argv, "--no-api: bad value 'perhaps' (true or false)");
    }
    {
        char *argv[] = {"prog", "stray", NULL};
        expect_error(argv, "unexpected argument 'stray' (this program takes flags only)");
    }
    {
        char *argv[] = {"prog", "--", "--name", NULL};
        expect_error(argv, "unexpected argument '--name' (this program takes flags only)");
    }
    /* the first error is the one reported */
    {
        char *argv[] = {"prog", "--bogus", "--workers", "0", NULL};
        expect_error(argv, "unknown flag --bogus");
    }
}

static void environment_and_file_errors(void **state)
{
    char msg[256];
    {
        setenv("TF_DEBOUNCE", "soon", 1);
        char *argv[] = {"prog", NULL};
        expect_error(argv, "TF_DEBOUNCE: bad duration 'soon' (a number and a unit: 500ms, 10s, 2m, 1h; or 0)");
        unsetenv("TF_DEBOUNCE");
    }
    char *argv[] = {"prog", "--config", path, NULL};
    {
        write_conf("name = a\ndebonce = 60s\n");
        snprintf(msg, sizeof(msg), "%s:2: unknown flag 'debonce' (did you mean 'debounce'?)", path);
        expect_error(argv, msg);
    }
    {
        write_conf("\n\nworkers\n");
        snprintf(msg, sizeof(msg), "%s:3: workers: missing value", path);
        expect_error(argv, msg);
    }
    {
        write_conf("debounce = soon\n");
        snprintf(msg, sizeof(msg),
                 "%s:1: debounce: bad duration 'soon' (a number and a unit: 500ms, 10s, 2m, 1h; or 0)", path);
        expect_error(argv, msg);
    }
    {
        write_conf("help\n");
        snprintf(msg, sizeof(msg), "%s:1: help cannot be set in a config file", path);
        expect_error(argv, msg);
    }
    {
        sl_flags fs;
        unlink(path);
        assert_int_equal(parse(&fs, argv, 0), SL_ERR_IO);
        snprintf(msg, sizeof(msg), "config file %s: No such file or directory", path);
        assert_string_equal(sl_error_msg(), msg);
        sl_flags_deinit(&fs);
    }
    {
        char *argv2[] = {"prog", "--config", NULL};
        expect_error(argv2, "--config: missing value");
    }
}

/* --help is applied alone, whatever else is wrong. */
static void exit_flags_win(void **state)
{
    sl_flags fs;
    char *argv[] = {"prog", "--bogus", "--workers", "0", "-h", NULL};
    assert_int_equal(parse(&fs, argv, 0), SL_OK);
    assert_true(help);
    sl_flags_deinit(&fs);
}

/* sluicectl: flags of the table anywhere, everything else stays. */
static void keep_unknown(void **state)
{
    sl_flags fs;
    char *argv[] = {"prog", "get", "--workers", "3", "vs", "-n", "ns", "--output=yaml", "--", "--name", "z",
                    NULL};
    int argc = 11;
    sl_flags_init(&fs);
    assert_int_equal(sl_flags_add(&fs, NULL, table, sizeof(table) / sizeof(table[0])), SL_OK);
    assert_int_equal(sl_flags_parse(&fs, &argc, argv, SL_FLAGS_KEEP_UNKNOWN), SL_OK);
    assert_int_equal(workers, 3);
    assert_string_equal(name, "sluice");
    const char *want[] = {"prog", "get", "vs", "-n", "ns", "--output=yaml", "--", "--name", "z"};
    assert_int_equal(argc, 9);
    for (int i = 0; i < argc; i++)
        assert_string_equal(argv[i], want[i]);
    assert_null(argv[argc]);
    sl_flags_deinit(&fs);
}

static char *help_text(const sl_flags *fs)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    sl_flags_print_help(fs, f);
    fclose(f);
    return buf;
}

static void help_lists_every_flag(void **state)
{
    sl_flags fs;
    char *argv[] = {"prog", NULL};
    assert_int_equal(parse(&fs, argv, 0), SL_OK);
    char *h = help_text(&fs);
    assert_non_null(strstr(h, "\nTest flags:\n"));
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
        char want[64];
        snprintf(want, sizeof(want), "--%s", table[i].name);
        assert_non_null(strstr(h, want));
        if (table[i].env != NULL)
            assert_non_null(strstr(h, table[i].env));
    }
    expect_has(h, "  -h, --help ", "  --workers N ", "  --mode auto|on|off ", "threads (env TF_WORKERS; default 2)\n",
               "quiet time\n", "before acting (env TF_DEBOUNCE; default 10ms)\n",
               "a directory (repeatable; env TF_DIRS, ':'-separated)\n", NULL);
    free(h);
    sl_flags_deinit(&fs);
}

/* A service: its own flags and the common ones in one table, one --help. */
static void service_help_has_every_flag(void **state)
{
    static const sl_service_info info = {"sluice-test", "1.0", "A test.", NULL};
    sl_service_args a;
    char *argv[] = {"sluice-test", "--help", NULL};
    char *buf = NULL;
    size_t len = 0;

    sl_service_args_init(&a);
    FILE *saved = stdout;
    stdout = open_memstream(&buf, &len);
    assert_int_equal(sl_service_args_parse(&a, &info, table, sizeof(table) / sizeof(table[0]) - 2, 2, argv),
                     SL_OK);
    fclose(stdout);
    stdout = saved;
    assert_true(a.exit_now);
    assert_int_equal(a.exit_code, SL_EXIT_OK);
    for (size_t i = 0; i < SL_SERVICE_COMMON_FLAGS; i++) {
        char want[64];
        snprintf(want, sizeof(want), "--%s", a.common_[i].name);
        assert_non_null(strstr(buf, want));
    }
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]) - 2; i++) {
        char want[64];
        snprintf(want, sizeof(want), "--%s", table[i].name);
        assert_non_null(strstr(buf, want));
    }
    expect_has(buf, "\nsluice-test flags:\n", "\nCommon flags:\n", "SLUICE_TEST_CONFIG", "NATS_URL",
               "SLUICE_KV_REPLICAS", NULL);
    free(buf);
    sl_service_args_deinit(&a);
}

/* nats.c names the NATS settings (sl_nats_settings_usage()); the flag
 * table must offer every one of them, with the variable nats.c documents. */
static void nats_table_covers_nats_settings(void **state)
{
    sl_flag t[SL_NATS_FLAGS_N];
    sl_nats_flags v;
    const char *u = sl_nats_settings_usage();
    size_t seen = 0;

    sl_nats_flags_table(t, &v, "30s");
    for (const char *p = strstr(u, "  --"); p != NULL; p = strstr(p, "\n  --")) {
        const char *fl = strstr(p, "--") + 2, *next = strstr(fl, "\n  --"), *env = strstr(fl, "(env ");
        size_t len = strcspn(fl, " \n"), i;
        for (i = 0; i < SL_NATS_FLAGS_N; i++)
            if (strlen(t[i].name) == len && strncmp(t[i].name, fl, len) == 0)
                break;
        if (i == SL_NATS_FLAGS_N)
            fail_msg("--%.*s of sl_nats_settings_usage() is not in sl_nats_flags_table()", (int)len, fl);
        if (env != NULL && (next == NULL || env < next)) {
            assert_non_null(t[i].env);
            assert_int_equal(strncmp(env + 5, t[i].env, strlen(t[i].env)), 0);
        }
        seen++;
        p = fl;
    }
    assert_int_equal(seen, SL_NATS_FLAGS_N);
}

/* A comma separated list names an item exactly: no prefix, no suffix. */
static void list_has_exact_items(void **state)
{
    (void)state;
    assert_true(sl_list_has("a,bb,c", "bb"));
    assert_true(sl_list_has("a,bb,c", "a"));
    assert_true(sl_list_has("a,bb,c", "c"));
    assert_true(sl_list_has("bb", "bb"));
    assert_false(sl_list_has("a,bbb,c", "bb"));
    assert_false(sl_list_has("abb,c", "bb"));
    assert_false(sl_list_has("a,bb,c", "b"));
    assert_false(sl_list_has("", "a"));
    assert_false(sl_list_has(NULL, "a"));
    assert_false(sl_list_has("a,,b", ""));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(defaults, setup, teardown),
        cmocka_unit_test_setup_teardown(both_forms, setup, teardown),
        cmocka_unit_test_setup_teardown(environment, setup, teardown),
        cmocka_unit_test_setup_teardown(config_file, setup, teardown),
        cmocka_unit_test_setup_teardown(precedence, setup, teardown),
        cmocka_unit_test_setup_teardown(command_line_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(environment_and_file_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(exit_flags_win, setup, teardown),
        cmocka_unit_test_setup_teardown(keep_unknown, setup, teardown),
        cmocka_unit_test_setup_teardown(help_lists_every_flag, setup, teardown),
        cmocka_unit_test_setup_teardown(service_help_has_every_flag, setup, teardown),
        cmocka_unit_test(nats_table_covers_nats_settings),
        cmocka_unit_test(list_has_exact_items),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
