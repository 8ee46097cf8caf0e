/* Common flags and a service's own in one table; the loop serialises and cancels tasks;
 * signals stop the service (SIGHUP runs the hook on the loop); readiness
 * shows on /readyz; a missed drain deadline or a second signal exits 1. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "test_expect.h"

#include "sluice/service.h"

static const sl_service_info info = {"sluice-test", "1.2.3", "A test service.", NULL};

static const char *own_value;
static const sl_flag own[] = {
    {.name = "own", .kind = SL_FLAG_STRING, .target = &own_value, .arg = "X", .help = "a flag of the service"},
};

/* sl_service_args_parse() with the table above; argv NULL-terminated. */
static sl_status parse_args(sl_service_args *a, char **argv)
{
    int argc = 0;
    while (argv[argc] != NULL)
        argc++;
    own_value = NULL;
    return sl_service_args_parse(a, &info, own, 1, argc, argv);
}

static void durations(void **state)
{
    int64_t ms = -1;
    assert_int_equal(sl_parse_duration_ms(&ms, "500ms"), SL_OK);
    assert_int_equal(ms, 500);
    assert_int_equal(sl_parse_duration_ms(&ms, "30s"), SL_OK);
    assert_int_equal(ms, 30000);
    assert_int_equal(sl_parse_duration_ms(&ms, "2m"), SL_OK);
    assert_int_equal(ms, 120000);
    assert_int_equal(sl_parse_duration_ms(&ms, "1h"), SL_OK);
    assert_int_equal(ms, 3600000);
    assert_int_equal(sl_parse_duration_ms(&ms, "0"), SL_OK);
    assert_int_equal(ms, 0);
    assert_int_equal(sl_parse_duration_ms(&ms, "10"), SL_ERR_INVALID);
    assert_int_equal(sl_parse_duration_ms(&ms, "-1s"), SL_ERR_INVALID);
    assert_int_equal(sl_parse_duration_ms(&ms, "1d"), SL_ERR_INVALID);
    assert_int_equal(sl_parse_duration_ms(&ms, ""), SL_ERR_INVALID);
    assert_int_equal(sl_parse_duration_ms(&ms, "99999999999999999999s"), SL_ERR_INVALID);
}

static void common_and_own_flags(void **state)
{
    char *argv[] = {"prog", "--own", "x", "--log-level=debug", "--nats-url", "nats://a:1,nats://b:2",
                    "--metrics-addr", ":0", "--nats-creds=/c", "--drain-timeout", "3s",
                    "--nats-connect-timeout", "5s", NULL};
    sl_service_args a;

    unsetenv("NATS_URL");
    setenv("NATS_TLS_CA", "/env/ca.pem", 1);
    setenv("NATS_CREDS", "/env/creds", 1);
    sl_service_args_init(&a);
    assert_int_equal(parse_args(&a, argv), SL_OK);
    assert_false(a.exit_now);
    assert_true(a.log_level_set);
    assert_int_equal(a.log_level, SL_LOG_DEBUG);
    assert_string_equal(a.metrics_addr, ":0");
    assert_int_equal(a.drain_timeout_ms, 3000);
    assert_string_equal(a.nats.urls, "nats://a:1,nats://b:2");
    assert_string_equal(a.nats.creds_file, "/c"); /* flag beats env */
    assert_string_equal(a.nats.tls_ca, "/env/ca.pem");
    assert_int_equal(a.nats.startup_deadline_ms, 5000);
    assert_string_equal(own_value, "x");
    assert_null(a.config_file);
    sl_service_args_deinit(&a);
    unsetenv("NATS_TLS_CA");
    unsetenv("NATS_CREDS");
}

/* --config FILE or SLUICE_<NAME>_CONFIG: the common flags and the
 * service's own, below the environment and the command line. */
static void config_file(void **state)
{
    char path[64], msg[128];
    sl_service_args a;
    FILE *f;

    snprintf(path, sizeof(path), "/tmp/sluice-service-%d.conf", (int)getpid());
    f = fopen(path, "w");
    assert_non_null(f);
    fputs("own = from-file\nnats-url = nats://file:4222\ndrain-timeout 4s\nlog-level = warn\n", f);
    fclose(f);
    setenv("SLUICE_TEST_CONFIG", path, 1);
    setenv("SLUICE_LOG_LEVEL", "error", 1);
    {
        char *argv[] = {"prog", "--drain-timeout=5s", NULL};
        sl_service_args_init(&a);
        assert_int_equal(parse_args(&a, argv), SL_OK);
        assert_string_equal(a.config_file, path);
        assert_string_equal(own_value, "from-file");
        assert_string_equal(a.nats.urls, "nats://file:4222");
        assert_int_equal(a.drain_timeout_ms, 5000);   /* flag > file */
        assert_int_equal(a.log_level, SL_LOG_ERROR); /* env > file */
        sl_service_args_deinit(&a);
    }
    unsetenv("SLUICE_LOG_LEVEL");
    unsetenv("SLUICE_TEST_CONFIG");
    f = fopen(path, "w");
    assert_non_null(f);
    fputs("own = x\nnats-ulr = nats://file:4222\n", f);
    fclose(f);
    {
        char *argv[] = {"prog", "--config", path, NULL};
        sl_service_args_init(&a);
        assert_int_equal(parse_args(&a, argv), SL_ERR_INVALID);
        snprintf(msg, sizeof(msg), "%s:2: unknown flag 'nats-ulr' (did you mean 'nats-url'?)", path);
        assert_string_equal(sl_error_msg(), msg);
        sl_service_args_deinit(&a);
    }
    unlink(path);
}

static void bad_flags_are_usage_errors(void **state)
{
    static const char *const bad[][3] = {
        {"prog", "--log-level", "loud"},
        {"prog", "--drain-timeout", "soon"},
        {"prog", "--nats-connect-timeout", "5"},
        {"prog", "--nats-url", NULL},
        {"prog", "--metrics-addr", NULL},
        {"prog", "--nats-bogus", "1"},
    };
    sl_service_args a;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char *argv[4] = {(char *)bad[i][0], (char *)bad[i][1], (char *)bad[i][2], NULL};
        sl_service_args_init(&a);
        assert_int_equal(parse_args(&a, argv), SL_ERR_INVALID);
        assert_non_null(strstr(sl_error_msg(), bad[i][1]));
        sl_service_args_deinit(&a);
    }
    sl_service_args_init(&a);
    {
        char *argv[] = {"prog", "--log-level", "loud", NULL};
        assert_int_equal(parse_args(&a, argv), SL_ERR_INVALID);
        assert_string_equal(sl_error_msg(),
                            "--log-level: bad value 'loud' (error, warn, info, debug or trace)");
    }
    sl_service_args_deinit(&a);
}

/* --kv-replicas / SLUICE_KV_REPLICAS: 1..5, flag beats env, unset is 0;
 * a bad value (flag or env) is a usage error naming it and the value. */
static void kv_replicas(void **state)
{
    static const char *const bad[] = {"0", "6", "-1", "3x", "", "three", "03"};
    sl_service_args a;

    unsetenv("SLUICE_KV_REPLICAS");
    {
        char *argv[] = {"prog", NULL};
        sl_service_args_init(&a);
        assert_int_equal(parse_args(&a, argv), SL_OK);
        assert_int_equal(a.nats.kv_replicas, 0);
        sl_service_args_deinit(&a);
    }
    setenv("SLUICE_KV_REPLICAS", "5", 1);
    {
        char *argv[] = {"prog", "--own", "x", NULL};
        sl_service_args_init(&a);
        assert_int_equal(parse_args(&a, argv), SL_OK);
        assert_int_equal(a.nats.kv_replicas, 5);
        sl_service_args_deinit(&a);
    }
    {
        char *argv[] = {"prog", "--kv-replicas", "3", NULL};
        sl_service_args_init(&a);
        assert_int_equal(parse_args(&a, argv), SL_OK);
        assert_int_equal(a.nats.kv_replicas, 3); /* flag beats env */
        sl_service_args_deinit(&a);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char *argv[] = {"prog", "--kv-replicas", (char *)bad[i], NULL};
        char want[64];
        sl_service_args_init(&a);
        assert_int_equal(parse_args(&a, argv), SL_ERR_INVALID);
        snprintf(want, sizeof(want), "--kv-replicas: %s", bad[i][0] ? "bad value" : "missing");
        assert_non_null(strstr(sl_error_msg(), want));
        sl_service_args_deinit(&a);
    }
    setenv("SLUICE_KV_REPLICAS", "7", 1);
    {
        char *argv[] = {"prog", NULL}, *hargv[] = {"prog", "--help", NULL};
        sl_service_args_init(&a);
        assert_int_equal(parse_args(&a, argv), SL_ERR_INVALID);
        assert_string_equal(sl_error_msg(), "SLUICE_KV_REPLICAS: bad value '7' (an integer from 1 to 5)");
        sl_service_args_deinit(&a);
        /* --help still works */
        sl_service_args_init(&a);
        FILE *saved = stdout;
        stdout = fopen("/dev/null", "w");
        assert_int_equal(parse_args(&a, hargv), SL_OK);
        fclose(stdout);
        stdout = saved;
        assert_true(a.exit_now);
        sl_service_args_deinit(&a);
    }
    unsetenv("SLUICE_KV_REPLICAS");
}

static void help_and_version_exit_zero(void **state)
{
    char *argv[] = {"prog", "--version", NULL};
    sl_service_args a;
    FILE *saved = stdout;

    stdout = fopen("/dev/null", "w");
    sl_service_args_init(&a);
    assert_int_equal(parse_args(&a, argv), SL_OK);
    assert_true(a.exit_now);
    assert_int_equal(a.exit_code, SL_EXIT_OK);
    sl_service_args_deinit(&a);

    {
        char *hargv[] = {"prog", "-h", NULL};
        sl_service_args_init(&a);
        assert_int_equal(parse_args(&a, hargv), SL_OK);
        assert_true(a.exit_now);
        sl_service_args_deinit(&a);
    }
    fclose(stdout);
    stdout = saved;
    {
        char *buf = NULL, *nargv[] = {"prog", NULL};
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        sl_service_args_init(&a);
        assert_int_equal(parse_args(&a, nargv), SL_OK);
        sl_service_print_help(f, &a);
        fclose(f);
        expect_has(buf, "Usage: sluice-test", "--own X", "--nats-tls-cert", "--metrics-addr", "--config FILE",
                   "Exit status: 0", NULL);
        free(buf);
        sl_service_args_deinit(&a);
    }
}

/* ---- loop ---- */

struct counter {
    pthread_mutex_t lock;
    char order[64];
    int dropped;
};

static struct counter ctr = {PTHREAD_MUTEX_INITIALIZER, "", 0};

static void append_task(void *ud)
{
    pthread_mutex_lock(&ctr.lock);
    strncat(ctr.order, ud, sizeof(ctr.order) - strlen(ctr.order) - 1);
    pthread_mutex_unlock(&ctr.lock);
}

static void drop_task(void *ud)
{
    pthread_mutex_lock(&ctr.lock);
    ctr.dropped++;
    pthread_mutex_unlock(&ctr.lock);
}

static void stop_task(void *ud)
{
    sl_loop_stop(ud);
}

static void loop_runs_in_order_and_cancels(void **state)
{
    sl_loop *l;
    int owner_a, owner_b;

    ctr.order[0] = '\0';
    ctr.dropped = 0;
    assert_int_equal(sl_loop_new(&l), SL_OK);
    assert_false(sl_loop_is_current(l));
    assert_int_equal(sl_loop_post(l, &owner_a, append_task, drop_task, "1"), SL_OK);
    assert_int_equal(sl_loop_post(l, &owner_b, append_task, drop_task, "2"), SL_OK);
    assert_int_equal(sl_loop_post(l, &owner_a, append_task, drop_task, "3"), SL_OK);
    assert_int_equal(sl_loop_post(l, NULL, append_task, drop_task, "4"), SL_OK);
    sl_loop_cancel(l, &owner_a);
    assert_int_equal(ctr.dropped, 2);
    assert_int_equal(sl_loop_post(l, NULL, stop_task, NULL, l), SL_OK);
    assert_int_equal(sl_loop_post(l, NULL, append_task, drop_task, "5"), SL_OK);
    assert_int_equal(sl_loop_run(l), SL_OK);
    assert_string_equal(ctr.order, "24");
    /* a stop before run still returns at once; queued tasks stay */
    sl_loop_stop(l);
    assert_int_equal(sl_loop_run(l), SL_OK);
    assert_string_equal(ctr.order, "24");
    /* freeing drops what is left */
    sl_loop_free(l);
    assert_int_equal(ctr.dropped, 3);
}

struct slow {
    sl_loop *loop;
    atomic_bool started;
    atomic_bool finished;
};

static void slow_task(void *ud)
{
    struct slow *s = ud;
    atomic_store(&s->started, true);
    usleep(300000);
    atomic_store(&s->finished, true);
}

static void *loop_thread(void *arg)
{
    sl_loop_run(arg);
    return NULL;
}

static void cancel_waits_for_a_running_task(void **state)
{
    struct slow s = {0};
    pthread_t t;

    assert_int_equal(sl_loop_new(&s.loop), SL_OK);
    pthread_create(&t, NULL, loop_thread, s.loop);
    assert_int_equal(sl_loop_post(s.loop, &s, slow_task, NULL, &s), SL_OK);
    while (!atomic_load(&s.started))
        usleep(1000);
    sl_loop_cancel(s.loop, &s);
    assert_true(atomic_load(&s.finished));
    sl_loop_stop(s.loop);
    pthread_join(t, NULL);
    sl_loop_free(s.loop);
}

/* ---- the service ---- */

static int http_status(int port, const char *path)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    char req[128], buf[256] = {0};
    int fd = socket(AF_INET, SOCK_STREAM, 0), code = -1;

    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
        snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path);
        if (write(fd, req, strlen(req)) > 0 && read(fd, buf, sizeof(buf) - 1) > 12)
            code = atoi(buf + 9);
    }
    close(fd);
    return code;
}

struct hup {
    sl_loop *loop;
    atomic_int calls;
    atomic_bool on_loop;
};

static void on_reload(sl_service *svc, void *ud)
{
    struct hup *h = ud;
    atomic_fetch_add(&h->calls, 1);
    atomic_store(&h->on_loop, sl_loop_is_current(h->loop));
}

struct raiser {
    sl_service *svc;
    struct hup *hup;
};

static void *raise_main(void *arg)
{
    struct raiser *r = arg;
    usleep(100000);
    kill(getpid(), SIGHUP);
    for (int i = 0; i < 200 && atomic_load(&r->hup->calls) == 0; i++)
        usleep(10000);
    kill(getpid(), SIGTERM);
    return NULL;
}

static void signals_readiness_and_exit_codes(void **state)
{
    sl_service_args a;
    sl_service *svc = NULL, *second = NULL;
    struct hup h = {0};
    struct raiser r;
    pthread_t t;
    int port;

    sl_service_args_init(&a);
    free(a.metrics_addr);
    a.metrics_addr = strdup("127.0.0.1:0");
    assert_int_equal(sl_service_new(&svc, &info, &a), SL_OK);
    assert_int_equal(sl_service_new(&second, &info, &a), SL_ERR_EXISTS);
    assert_non_null(sl_service_metrics(svc));
    port = sl_service_metrics_port(svc);
    assert_true(port > 0);

    assert_int_equal(http_status(port, "/healthz"), 200);
    assert_int_equal(http_status(port, "/readyz"), 503);
    sl_service_set_ready(svc, true);
    assert_true(sl_service_is_ready(svc));
    assert_int_equal(http_status(port, "/readyz"), 200);
    assert_int_equal(http_status(port, "/metrics"), 200);

    assert_int_equal(sl_loop_new(&h.loop), SL_OK);
    sl_service_on_reload(svc, on_reload, &h);
    r.svc = svc;
    r.hup = &h;
    pthread_create(&t, NULL, raise_main, &r);
    assert_int_equal(sl_service_run(svc, h.loop), SL_EXIT_OK);
    pthread_join(t, NULL);
    assert_int_equal(atomic_load(&h.calls), 1);
    assert_true(atomic_load(&h.on_loop));
    assert_true(sl_service_stopping(svc));
    /* a later request does not change the first code */
    sl_service_request_stop(svc, SL_EXIT_FAILURE);
    assert_int_equal(sl_service_exit_code(svc), SL_EXIT_OK);
    assert_int_equal(sl_service_wait_stop(svc), SL_EXIT_OK);
    sl_service_free(svc);
    sl_loop_free(h.loop);

    /* request_stop from another thread ends wait_stop with that code */
    a.drain_timeout_ms = 5000;
    free(a.metrics_addr);
    a.metrics_addr = NULL;
    assert_int_equal(sl_service_new(&svc, &info, &a), SL_OK);
    assert_int_equal(sl_service_metrics_port(svc), 0);
    assert_false(sl_service_stopping(svc));
    sl_service_request_stop(svc, SL_EXIT_FAILURE);
    assert_int_equal(sl_service_wait_stop(svc), SL_EXIT_FAILURE);
    sl_service_free(svc);
    sl_service_args_deinit(&a);

    /* a bad metrics address fails cleanly and allows another try */
    sl_service_args_init(&a);
    free(a.metrics_addr);
    a.metrics_addr = strdup("nowhere");
    assert_int_equal(sl_service_new(&svc, &info, &a), SL_ERR_INVALID);
    free(a.metrics_addr);
    a.metrics_addr = NULL;
    assert_int_equal(sl_service_new(&svc, &info, &a), SL_OK);
    sl_service_free(svc);
    sl_service_args_deinit(&a);
}

/* Runs fn in a child process and returns its exit status and how long it
 * took. */
static int in_child(void (*fn)(void), int64_t *took_ms)
{
    struct timespec t0, t1;
    int status = -1;
    pid_t pid;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    pid = fork();
    if (pid == 0) {
        fn();
        _exit(99);
    }
    waitpid(pid, &status, 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    *took_ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void child_hangs_while_draining(void)
{
    sl_service_args a;
    sl_service *svc;

    sl_service_args_init(&a);
    a.drain_timeout_ms = 100;
    if (sl_service_new(&svc, &info, &a) != SL_OK)
        _exit(98);
    kill(getpid(), SIGTERM);
    sl_service_wait_stop(svc);
    sleep(20); /* a drain that never ends */
}

static void child_gets_two_signals(void)
{
    sl_service_args a;
    sl_service *svc;

    sl_service_args_init(&a);
    a.drain_timeout_ms = 60000;
    if (sl_service_new(&svc, &info, &a) != SL_OK)
        _exit(98);
    kill(getpid(), SIGINT);
    sl_service_wait_stop(svc);
    kill(getpid(), SIGTERM);
    sleep(20);
}

static void drain_deadline_and_second_signal_exit_1(void **state)
{
    int64_t took;

    assert_int_equal(in_child(child_hangs_while_draining, &took), SL_EXIT_FAILURE);
    assert_true(took >= 2000 && took < 10000); /* drain timeout + 2 s grace */
    assert_int_equal(in_child(child_gets_two_signals, &took), SL_EXIT_FAILURE);
    assert_true(took < 5000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(durations),
        cmocka_unit_test(common_and_own_flags),
        cmocka_unit_test(config_file),
        cmocka_unit_test(bad_flags_are_usage_errors),
        cmocka_unit_test(kv_replicas),
        cmocka_unit_test(help_and_version_exit_zero),
        cmocka_unit_test(loop_runs_in_order_and_cancels),
        cmocka_unit_test(cancel_waits_for_a_running_task),
        cmocka_unit_test(signals_readiness_and_exit_codes),
        cmocka_unit_test(drain_deadline_and_second_signal_exit_1),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
