/* The registry renders the exact Prometheus text format, updates are
 * atomic across threads, and the HTTP endpoint answers over a real socket
 * (also to clients that misbehave). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "sluice/metrics.h"

static void renders_exact_text(void **state)
{
    sl_metrics *reg;
    sl_counter *c, *c2, *ca, *cb;
    sl_gauge *g;
    sl_histogram *h, *hl;
    sl_metric_family *fam, *hfam;
    char *text;
    size_t len;
    static const double bounds[] = {0.005, 0.1, 1, 2.5};

    assert_int_equal(sl_metrics_new(&reg), SL_OK);
    assert_int_equal(sl_metrics_counter(&c, reg, "sluice_msgs_total", "Messages handled."), SL_OK);
    assert_int_equal(sl_metrics_gauge(&g, reg, "sluice_watchers", "Active watchers,\nper bucket \\ now."),
                     SL_OK);
    assert_int_equal(sl_metrics_histogram(&h, reg, "sluice_latency_seconds", "Latency.", bounds, 4),
                     SL_OK);
    assert_int_equal(sl_metrics_family_new(&fam, reg, SL_METRIC_COUNTER, "sluice_resources_total",
                                           "Resources by kind.", (const char *[]){"kind", "ns"}, 2,
                                           NULL, 0),
                     SL_OK);
    assert_int_equal(sl_metric_family_counter(&ca, fam, (const char *[]){"Upstream", "default"}), SL_OK);
    assert_int_equal(sl_metric_family_counter(&cb, fam, (const char *[]){"Vs \"x\"\n", "a\\b"}), SL_OK);
    assert_int_equal(sl_metrics_family_new(&hfam, reg, SL_METRIC_HISTOGRAM, "sluice_size_bytes",
                                           "Sizes.", (const char *[]){"bucket"}, 1,
                                           (const double[]){1024}, 1),
                     SL_OK);
    assert_int_equal(sl_metric_family_histogram(&hl, hfam, (const char *[]){"config"}), SL_OK);

    /* Registering again returns the same series. */
    assert_int_equal(sl_metrics_counter(&c2, reg, "sluice_msgs_total", "Messages handled."), SL_OK);
    assert_ptr_equal(c, c2);

    sl_counter_inc(c);
    sl_counter_add(c, 41);
    sl_gauge_set(g, 3);
    sl_gauge_add(g, -0.5);
    sl_histogram_observe(h, 0.001);
    sl_histogram_observe(h, 0.1);  /* le is inclusive */
    sl_histogram_observe(h, 0.25);
    sl_histogram_observe(h, 100);
    sl_counter_inc(ca);
    sl_counter_add(cb, 7);
    sl_histogram_observe(hl, 2048);

    assert_int_equal(sl_metrics_render(&text, &len, reg), SL_OK);
    assert_int_equal(len, strlen(text));
    assert_string_equal(text,
                        "# HELP sluice_msgs_total Messages handled.\n"
                        "# TYPE sluice_msgs_total counter\n"
                        "sluice_msgs_total 42\n"
                        "# HELP sluice_watchers Active watchers,\\nper bucket \\\\ now.\n"
                        "# TYPE sluice_watchers gauge\n"
                        "sluice_watchers 2.5\n"
                        "# HELP sluice_latency_seconds Latency.\n"
                        "# TYPE sluice_latency_seconds histogram\n"
                        "sluice_latency_seconds_bucket{le=\"0.005\"} 1\n"
                        "sluice_latency_seconds_bucket{le=\"0.1\"} 2\n"
                        "sluice_latency_seconds_bucket{le=\"1\"} 3\n"
                        "sluice_latency_seconds_bucket{le=\"2.5\"} 3\n"
                        "sluice_latency_seconds_bucket{le=\"+Inf\"} 4\n"
                        "sluice_latency_seconds_sum 100.351\n"
                        "sluice_latency_seconds_count 4\n"
                        "# HELP sluice_resources_total Resources by kind.\n"
                        "# TYPE sluice_resources_total counter\n"
                        "sluice_resources_total{kind=\"Upstream\",ns=\"default\"} 1\n"
                        "sluice_resources_total{kind=\"Vs \\\"x\\\"\\n\",ns=\"a\\\\b\"} 7\n"
                        "# HELP sluice_size_bytes Sizes.\n"
                        "# TYPE sluice_size_bytes histogram\n"
                        "sluice_size_bytes_bucket{bucket=\"config\",le=\"1024\"} 0\n"
                        "sluice_size_bytes_bucket{bucket=\"config\",le=\"+Inf\"} 1\n"
                        "sluice_size_bytes_sum{bucket=\"config\"} 2048\n"
                        "sluice_size_bytes_count{bucket=\"config\"} 1\n");
    free(text);

    sl_gauge_set(g, INFINITY);
    assert_true(isinf(sl_gauge_get(g)));
    sl_metrics_free(reg);
}

static void rejects_bad_definitions(void **state)
{
    sl_metrics *reg;
    sl_metric_family *f;
    sl_counter *c;
    sl_gauge *g;

    assert_int_equal(sl_metrics_new(&reg), SL_OK);
    assert_int_equal(sl_metrics_counter(&c, reg, "9bad", "x"), SL_ERR_INVALID);
    assert_int_equal(sl_metrics_counter(&c, reg, "bad-name", "x"), SL_ERR_INVALID);
    assert_int_equal(sl_metrics_family_new(&f, reg, SL_METRIC_HISTOGRAM, "h", "x",
                                           (const char *[]){"le"}, 1, (const double[]){1}, 1),
                     SL_ERR_INVALID);
    assert_int_equal(sl_metrics_family_new(&f, reg, SL_METRIC_HISTOGRAM, "h", "x", NULL, 0,
                                           (const double[]){2, 1}, 2),
                     SL_ERR_INVALID);
    assert_int_equal(sl_metrics_family_new(&f, reg, SL_METRIC_GAUGE, "g", "x",
                                           (const char *[]){"a", "a"}, 2, NULL, 0),
                     SL_ERR_INVALID);
    assert_int_equal(sl_metrics_family_new(&f, reg, SL_METRIC_GAUGE, "g", "x",
                                           (const char *[]){"__a"}, 1, NULL, 0),
                     SL_ERR_INVALID);
    assert_int_equal(sl_metrics_counter(&c, reg, "same", "x"), SL_OK);
    assert_int_equal(sl_metrics_gauge(&g, reg, "same", "x"), SL_ERR_EXISTS);
    assert_int_equal(sl_metrics_family_new(&f, reg, SL_METRIC_GAUGE, "lab", "x",
                                           (const char *[]){"a"}, 1, NULL, 0),
                     SL_OK);
    assert_int_equal(sl_metric_family_counter(&c, f, (const char *[]){"v"}), SL_ERR_INVALID);
    assert_int_equal(sl_metric_family_gauge(&g, f, NULL), SL_ERR_INVALID);
    sl_metrics_free(reg);
}

struct hammer {
    sl_counter *c;
    sl_gauge *g;
    sl_histogram *h;
};

static void *hammer_main(void *arg)
{
    struct hammer *hm = arg;
    for (int i = 0; i < 100000; i++) {
        sl_counter_inc(hm->c);
        sl_gauge_add(hm->g, 1);
        sl_histogram_observe(hm->h, 0.5);
    }
    return NULL;
}

static void updates_are_atomic(void **state)
{
    sl_metrics *reg;
    struct hammer hm;
    pthread_t t[4];
    char *text;
    size_t len;

    assert_int_equal(sl_metrics_new(&reg), SL_OK);
    assert_int_equal(sl_metrics_counter(&hm.c, reg, "c", "c"), SL_OK);
    assert_int_equal(sl_metrics_gauge(&hm.g, reg, "g", "g"), SL_OK);
    assert_int_equal(sl_metrics_histogram(&hm.h, reg, "h", "h", (const double[]){1}, 1), SL_OK);
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, hammer_main, &hm);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(sl_counter_get(hm.c), 400000);
    assert_true(sl_gauge_get(hm.g) == 400000.0);
    assert_int_equal(sl_metrics_render(&text, &len, reg), SL_OK);
    assert_non_null(strstr(text, "h_bucket{le=\"1\"} 400000\nh_bucket{le=\"+Inf\"} 400000\n"
                                 "h_sum 200000\nh_count 400000\n"));
    free(text);
    sl_metrics_free(reg);
}

/* ---- HTTP over a real socket ---- */

static int connect_to(int port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Sends req and reads the whole answer (the server closes after it). */
static char *http(int port, const char *req)
{
    static char buf[65536];
    size_t len = 0;
    ssize_t n;
    int fd = connect_to(port);

    if (fd < 0)
        return NULL;
    if (write(fd, req, strlen(req)) != (ssize_t)strlen(req)) {
        close(fd);
        return NULL;
    }
    while ((n = read(fd, buf + len, sizeof(buf) - 1 - len)) > 0)
        len += (size_t)n;
    buf[len] = '\0';
    close(fd);
    return buf;
}

static void serves_metrics_health_and_readiness(void **state)
{
    sl_metrics *reg;
    sl_metrics_server *srv;
    sl_counter *c;
    char *r;
    int port;

    assert_int_equal(sl_metrics_new(&reg), SL_OK);
    assert_int_equal(sl_metrics_counter(&c, reg, "sluice_up_total", "Up."), SL_OK);
    sl_counter_add(c, 5);
    assert_int_equal(sl_metrics_server_start(&srv, reg, "127.0.0.1:0"), SL_OK);
    port = sl_metrics_server_port(srv);
    assert_true(port > 0);

    r = http(port, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_non_null(r);
    assert_true(strncmp(r, "HTTP/1.1 200 OK\r\n", 17) == 0);
    assert_non_null(strstr(r, "Content-Type: text/plain; version=0.0.4"));
    assert_non_null(strstr(r, "\r\n\r\n# HELP sluice_up_total Up.\n# TYPE sluice_up_total counter\n"
                              "sluice_up_total 5\n"));

    r = http(port, "GET /healthz HTTP/1.1\r\n\r\n");
    assert_true(strncmp(r, "HTTP/1.1 200 OK\r\n", 17) == 0);
    assert_non_null(strstr(r, "\r\n\r\nok\n"));

    r = http(port, "GET /readyz HTTP/1.1\r\n\r\n");
    assert_true(strncmp(r, "HTTP/1.1 503 ", 13) == 0);
    sl_metrics_server_set_ready(srv, true);
    r = http(port, "GET /readyz?verbose HTTP/1.1\r\n\r\n");
    assert_true(strncmp(r, "HTTP/1.1 200 OK\r\n", 17) == 0);

    r = http(port, "HEAD /metrics HTTP/1.1\r\n\r\n");
    assert_true(strncmp(r, "HTTP/1.1 200 OK\r\n", 17) == 0);
    assert_non_null(strstr(r, "\r\n\r\n"));
    assert_string_equal(strstr(r, "\r\n\r\n"), "\r\n\r\n"); /* no body */

    r = http(port, "GET /nope HTTP/1.1\r\n\r\n");
    assert_true(strncmp(r, "HTTP/1.1 404 ", 13) == 0);
    r = http(port, "POST /metrics HTTP/1.1\r\n\r\n");
    assert_true(strncmp(r, "HTTP/1.1 405 ", 13) == 0);
    r = http(port, "garbage\r\n\r\n");
    assert_true(strncmp(r, "HTTP/1.1 400 ", 13) == 0);

    sl_metrics_server_stop(srv);
    sl_metrics_free(reg);
}

static void survives_bad_clients(void **state)
{
    sl_metrics *reg;
    sl_metrics_server *srv;
    char big[10000];
    char *r;
    int port, idle[70];

    assert_int_equal(sl_metrics_new(&reg), SL_OK);
    assert_int_equal(sl_metrics_server_start(&srv, reg, ":0"), SL_OK);
    port = sl_metrics_server_port(srv);

    /* An oversized request head gets 431. */
    memset(big, 'a', sizeof(big) - 5);
    memcpy(big, "GET /", 5);
    big[sizeof(big) - 1] = '\0';
    r = http(port, big);
    assert_non_null(r);
    assert_true(strncmp(r, "HTTP/1.1 431 ", 13) == 0);

    /* More idle connections than slots: the server sheds the excess and
     * still answers once they are gone. */
    for (int i = 0; i < 70; i++)
        idle[i] = connect_to(port);
    /* A client that connects and says nothing is dropped after 5 s; the
     * shed ones are closed at once. Check one of the latter. */
    {
        struct pollfd p = {.fd = idle[69], .events = POLLIN};
        char b;
        assert_int_equal(poll(&p, 1, 3000), 1);
        assert_true(read(idle[69], &b, 1) <= 0);
    }
    for (int i = 0; i < 70; i++)
        close(idle[i]);
    /* The server frees the slots as it sees the closes; soon it answers. */
    for (int i = 0; i < 100; i++) {
        r = http(port, "GET /healthz HTTP/1.0\r\n\r\n");
        if (r != NULL && strncmp(r, "HTTP/1.1 200 OK\r\n", 17) == 0)
            break;
        usleep(20000);
    }
    assert_non_null(r);
    assert_true(strncmp(r, "HTTP/1.1 200 OK\r\n", 17) == 0);

    /* A silent client is timed out. */
    {
        int fd = connect_to(port);
        struct pollfd p = {.fd = fd, .events = POLLIN};
        char b;
        assert_int_equal(poll(&p, 1, 8000), 1);
        assert_true(read(fd, &b, 1) <= 0);
        close(fd);
    }

    sl_metrics_server_stop(srv);
    sl_metrics_free(reg);
}

static void rejects_bad_addresses(void **state)
{
    sl_metrics *reg;
    sl_metrics_server *srv;

    assert_int_equal(sl_metrics_new(&reg), SL_OK);
    assert_int_equal(sl_metrics_server_start(&srv, reg, "9090"), SL_ERR_INVALID);
    assert_int_equal(sl_metrics_server_start(&srv, reg, "127.0.0.1:http"), SL_ERR_INVALID);
    assert_int_equal(sl_metrics_server_start(&srv, reg, "127.0.0.1:70000"), SL_ERR_INVALID);
    assert_int_equal(sl_metrics_server_start(&srv, reg, "[::1"), SL_ERR_INVALID);
    sl_metrics_free(reg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(renders_exact_text),
        cmocka_unit_test(rejects_bad_definitions),
        cmocka_unit_test(updates_are_atomic),
        cmocka_unit_test(serves_metrics_health_and_readiness),
        cmocka_unit_test(survives_bad_clients),
        cmocka_unit_test(rejects_bad_addresses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
