/* sluice-reporter end to end: the real binary, a real nats-server, reports
 * published as the translator and the xds-server publish them.
 *
 * One scenario, in order (each step depends on the state before it):
 * translator Accepted -> xds NACK -> Rejected with the NACK's reason; a
 * stale report is ignored; the same report twice gives one event; a
 * resource deleted from the config loses its status; kill -9 and restart
 * keep every status and publish nothing new; reports published while it is
 * down are applied when it starts (durable stream); SIGTERM stops it
 * cleanly. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"
#include "sluice/envelope.h"
#include "sluice/kinds.h"
#include "sluice/kv.h"
#include "sluice/log.h"
#include "sluice/report.h"
#include "sluice/v1/core.pb-c.h"
#include "sluice/v1/events.pb-c.h"

static harness_nats *srv;
static sl_nats *nc;
static sl_kv *config_kv, *status_kv;
static natsSubscription *events;
static pid_t reporter = -1;
static int metrics_port;
static char logpath[512];

/* ---- helpers ------------------------------------------------------------ */

static int http_get(const char *path, char *body, size_t n)
{
    return harness_http_get(metrics_port, path, body, n);
}

static void start_reporter(void)
{
    char bin[1024], maddr[64];
    harness_binary(bin, sizeof bin, "services/reporter/sluice-reporter");
    snprintf(maddr, sizeof maddr, "127.0.0.1:%d", metrics_port);
    const char *const argv[] = {bin, "--nats-url", harness_nats_url(srv), "--metrics-addr", maddr,
                                "--log-level", "debug", NULL};
    pid_t pid = harness_spawn(argv, logpath);
    assert_true(pid > 0);
    reporter = pid;
    /* ready when /readyz says so */
    int64_t end = harness_now_ms() + 15000;
    while (harness_now_ms() < end && http_get("/readyz", NULL, 0) != 200)
        usleep(50 * 1000);
    assert_int_equal(http_get("/readyz", NULL, 0), 200);
    assert_int_equal(http_get("/healthz", NULL, 0), 200);
}

static int stop_reporter(int sig)
{
    int st = harness_stop(reporter, sig);
    reporter = -1;
    return st;
}

typedef struct event {
    char subject[512];
    bool deleted;
    Sluice__V1__Status *st;
} event;

/* The next status event within ms; false on timeout. */
static bool next_event(event *ev, int64_t ms)
{
    natsMsg *m = NULL;
    memset(ev, 0, sizeof *ev);
    if (natsSubscription_NextMsg(&m, events, ms) != NATS_OK)
        return false;
    snprintf(ev->subject, sizeof ev->subject, "%s", natsMsg_GetSubject(m));
    const char *op = NULL;
    natsMsgHeader_Get(m, "KV-Operation", &op);
    ev->deleted = op && (!strcmp(op, "DEL") || !strcmp(op, "PURGE"));
    if (!ev->deleted) {
        ev->st = sluice__v1__status__unpack(NULL, (size_t)natsMsg_GetDataLength(m),
                                            (const uint8_t *)natsMsg_GetData(m));
        assert_non_null(ev->st);
    }
    natsMsg_Destroy(m);
    return true;
}

static void event_free(event *ev)
{
    if (ev->st)
        sluice__v1__status__free_unpacked(ev->st, NULL);
    ev->st = NULL;
}

/* Waits for an event on subject; fails on timeout. */
static void expect_event(event *ev, const char *subject)
{
    int64_t end = harness_now_ms() + 10000;
    while (harness_now_ms() < end) {
        if (!next_event(ev, 500))
            continue;
        if (!strcmp(ev->subject, subject))
            return;
        event_free(ev);
    }
    fail_msg("no event on %s", subject);
}

static void expect_quiet(int64_t ms)
{
    event ev;
    if (next_event(&ev, ms)) {
        fail_msg("unexpected event on %s (state %d reason %s)", ev.subject, ev.st ? (int)ev.st->state : -1,
                 ev.st ? ev.st->reason : "(deleted)");
    }
}

static Sluice__V1__Status *stored(const char *key)
{
    return (Sluice__V1__Status *)harness_kv_get_pb(status_kv, key, &sluice__v1__status__descriptor);
}

/* Publishes a report as the translator does (envelope with headers). */
static void translator_report(const char *name, const char *proxy, int state, int64_t gen, const char *xv,
                              int64_t sec, const char *reason)
{
    rep_report rr;
    char subject[256];
    Sluice__V1__Report *r = rep_report_init(&rr, "translator", "VirtualService", "default", name, state, reason);
    rr.ts.seconds = sec;
    rr.ts.nanos = 0;
    r->proxy = (char *)proxy;
    r->generation = gen;
    r->xds_version = (char *)xv;
    snprintf(subject, sizeof subject, "sluice.report.translator.VirtualService.default.%s", name);
    assert_int_equal(sl_envelope_publish_pb(nc, subject, &r->base, NULL), SL_OK);
    natsConnection_Flush(sl_nats_conn(nc));
}

/* Publishes a NACK exactly as services/xds/main.c does: a packed Report on
 * sluice.report.xds-server.Proxy.<ns>.<proxy>, no headers. */
static void xds_nack(const char *proxy_name, int64_t sec, const char *error)
{
    rep_report rr;
    char subject[256], proxy[256];
    snprintf(proxy, sizeof proxy, "default~%s", proxy_name);
    Sluice__V1__Report *r =
        rep_report_init(&rr, "xds-server", "Proxy", "default", proxy_name, SLUICE__V1__STATUS__STATE__Rejected, error);
    rr.ts.seconds = sec;
    rr.ts.nanos = 0;
    r->proxy = proxy;
    r->xds_version = "3f2a9c0d11e4b7a2";
    r->type_url = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration";
    r->node_id = "envoy-1";
    size_t len = sluice__v1__report__get_packed_size(r);
    uint8_t *buf = malloc(len);
    sluice__v1__report__pack(r, buf);
    snprintf(subject, sizeof subject, "sluice.report.xds-server.Proxy.default.%s", proxy_name);
    assert_int_equal(natsConnection_Publish(sl_nats_conn(nc), subject, buf, (int)len), NATS_OK);
    natsConnection_Flush(sl_nats_conn(nc));
    free(buf);
}

static void put_config(const char *key)
{
    assert_int_equal(sl_kv_put(NULL, config_kv, key, "x", 1), SL_OK);
}

/* ---- the scenario ------------------------------------------------------- */

#define VS1 "sluice.status.VirtualService.default.vs1"
#define VS2 "sluice.status.VirtualService.default.vs2"

static void reporter_end_to_end(void **state)
{
    (void)state;
    event ev;
    Sluice__V1__Status *st;

    put_config("VirtualService.default.vs1");
    put_config("VirtualService.default.vs2");
    start_reporter();

    /* New resources are Pending until the translator reports. */
    expect_event(&ev, VS1);
    assert_int_equal(ev.st->state, SLUICE__V1__STATUS__STATE__Pending);
    event_free(&ev);
    expect_event(&ev, VS2);
    event_free(&ev);

    /* translator: Accepted on proxy default~gateway-proxy */
    translator_report("vs1", "default~gateway-proxy", SLUICE__V1__STATUS__STATE__Accepted, 1, "10", 1000, "");
    expect_event(&ev, VS1);
    assert_int_equal(ev.st->state, SLUICE__V1__STATUS__STATE__Accepted);
    assert_string_equal(ev.st->reported_by, "translator");
    assert_int_equal(ev.st->n_subresource_statuses, 1);
    assert_string_equal(ev.st->subresource_statuses[0]->key, "default~gateway-proxy");
    event_free(&ev);
    translator_report("vs2", "default~other-proxy", SLUICE__V1__STATUS__STATE__Accepted, 1, "10", 1000, "");
    expect_event(&ev, VS2);
    event_free(&ev);

    /* Envoy NACKs the proxy's routes: vs1 is not Accepted any more, with
     * the NACK's reason; vs2 (another proxy) is untouched. */
    xds_nack("gateway-proxy", 1001, "Proto constraint validation failed (RouteConfigurationValidationError)");
    expect_event(&ev, VS1);
    assert_int_equal(ev.st->state, SLUICE__V1__STATUS__STATE__Rejected);
    assert_string_equal(ev.st->reported_by, "xds-server");
    assert_non_null(strstr(ev.st->reason, "RouteConfigurationValidationError"));
    assert_non_null(strstr(ev.st->reason, "default~gateway-proxy"));
    event_free(&ev);
    st = stored("Proxy.default.gateway-proxy"); /* its event may come first */
    assert_non_null(st);
    assert_int_equal(st->state, SLUICE__V1__STATUS__STATE__Rejected);
    sluice__v1__status__free_unpacked(st, NULL);
    st = stored("VirtualService.default.vs1");
    assert_non_null(st);
    assert_int_equal(st->state, SLUICE__V1__STATUS__STATE__Rejected);
    sluice__v1__status__free_unpacked(st, NULL);

    /* A stale report (older generation, arriving late) changes nothing. */
    translator_report("vs1", "default~gateway-proxy", SLUICE__V1__STATUS__STATE__Accepted, 0, "9", 999, "");
    expect_quiet(700);

    /* A new translation (generation 2) is Accepted; the same report again
     * gives no second event. It is sent once the first was folded: the
     * reports stream keeps one message per subject, so a second report
     * sent at once may replace the first before the reporter reads it
     * (then nothing is a duplicate). */
    translator_report("vs1", "default~gateway-proxy", SLUICE__V1__STATUS__STATE__Accepted, 2, "11", 1002, "");
    expect_event(&ev, VS1);
    assert_int_equal(ev.st->state, SLUICE__V1__STATUS__STATE__Accepted);
    assert_int_equal(ev.st->observed_generation, 2);
    event_free(&ev);
    translator_report("vs1", "default~gateway-proxy", SLUICE__V1__STATUS__STATE__Accepted, 2, "11", 1002, "");
    expect_quiet(700);

    /* A JSON report from any language works too. */
    const char *json = "{\"resource\":{\"kind\":\"VirtualService\",\"namespace\":\"default\",\"name\":\"vs2\"},"
                       "\"source\":\"translator\",\"state\":\"Warning\",\"reason\":\"unused option\","
                       "\"proxy\":\"default~other-proxy\",\"generation\":\"2\",\"xdsVersion\":\"12\"}";
    assert_int_equal(sl_envelope_publish(nc, "sluice.report.translator.VirtualService.default.vs2", SL_CT_JSON,
                                         NULL, json, strlen(json), NULL),
                     SL_OK);
    expect_event(&ev, VS2);
    assert_int_equal(ev.st->state, SLUICE__V1__STATUS__STATE__Warning);
    assert_string_equal(ev.st->reason, "unused option");
    event_free(&ev);

    /* Deleting vs2 from the config removes its status (and says so). */
    assert_int_equal(sl_kv_delete(NULL, config_kv, "VirtualService.default.vs2", 0), SL_OK);
    expect_event(&ev, VS2);
    assert_true(ev.deleted);
    event_free(&ev);
    assert_null(stored("VirtualService.default.vs2"));

    /* Metrics count what happened: the stale report and the duplicate, once
     * each. The duplicate made no event, so nothing above waited for it to
     * be folded: wait until it is counted (a count of 2 never matches). */
    char body[65536];
    int64_t counted_by = harness_now_ms() + 10000;
    do {
        assert_int_equal(http_get("/metrics", body, sizeof body), 200);
        if (strstr(body, "sluice_reporter_reports_total{source=\"translator\",result=\"duplicate\"} 1\n"))
            break;
        usleep(50 * 1000);
    } while (harness_now_ms() < counted_by);
    assert_non_null(strstr(body, "sluice_reporter_reports_total{source=\"translator\",result=\"stale\"} 1\n"));
    assert_non_null(strstr(body, "sluice_reporter_reports_total{source=\"translator\",result=\"duplicate\"} 1\n"));

    /* kill -9, restart: statuses intact, no event, still ordering. */
    stop_reporter(SIGKILL);
    expect_quiet(300);
    start_reporter();
    expect_quiet(1500);
    st = stored("VirtualService.default.vs1");
    assert_non_null(st);
    assert_int_equal(st->state, SLUICE__V1__STATUS__STATE__Accepted);
    assert_int_equal(st->observed_generation, 2);
    sluice__v1__status__free_unpacked(st, NULL);
    st = stored("Proxy.default.gateway-proxy");
    assert_non_null(st);
    sluice__v1__status__free_unpacked(st, NULL);
    assert_null(stored("VirtualService.default.vs2"));
    /* the report the old process had: a duplicate now; an older one: stale */
    translator_report("vs1", "default~gateway-proxy", SLUICE__V1__STATUS__STATE__Accepted, 2, "11", 1002, "");
    translator_report("vs1", "default~gateway-proxy", SLUICE__V1__STATUS__STATE__Rejected, 1, "10", 1000, "old");
    expect_quiet(700);
    /* and the NACK rule still holds after the restart */
    xds_nack("gateway-proxy", 1003, "listener rejected");
    expect_event(&ev, VS1);
    assert_int_equal(ev.st->state, SLUICE__V1__STATUS__STATE__Rejected);
    event_free(&ev);

    /* A resource deleted while no reporter runs loses its status at start. */
    stop_reporter(SIGKILL);
    assert_int_equal(sl_kv_delete(NULL, config_kv, "VirtualService.default.vs1", 0), SL_OK);
    start_reporter();
    assert_null(stored("VirtualService.default.vs1"));

    /* Durable reports: reports published while no reporter runs are kept
     * by the SLUICE_REPORTS stream (created by the first start above) and
     * applied when it starts; only the latest per subject counts. */
    stop_reporter(SIGKILL);
    put_config("VirtualService.default.vs3");
    translator_report("vs3", "default~gateway-proxy", SLUICE__V1__STATUS__STATE__Rejected, 1, "20", 2000,
                      "superseded");
    translator_report("vs3", "default~gateway-proxy", SLUICE__V1__STATUS__STATE__Accepted, 2, "21", 2001, "");
    start_reporter();
    {
        int64_t end = harness_now_ms() + 10000;
        int state3 = -1;
        while (harness_now_ms() < end && state3 != SLUICE__V1__STATUS__STATE__Accepted) {
            st = stored("VirtualService.default.vs3");
            state3 = st ? (int)st->state : -1;
            if (st)
                sluice__v1__status__free_unpacked(st, NULL);
            if (state3 != SLUICE__V1__STATUS__STATE__Accepted)
                usleep(50 * 1000);
        }
        assert_int_equal(state3, SLUICE__V1__STATUS__STATE__Accepted);
    }
    st = stored("VirtualService.default.vs3");
    assert_non_null(st);
    assert_int_equal(st->observed_generation, 2);
    assert_string_equal(st->reported_by, "translator");
    sluice__v1__status__free_unpacked(st, NULL);
    /* one message per subject: the stream holds vs3's latest report only */
    {
        jsStreamInfo *si = NULL;
        assert_int_equal(js_GetStreamInfo(&si, sl_nats_js(nc), "SLUICE_REPORTS", NULL, NULL), NATS_OK);
        assert_int_equal(si->Config->MaxMsgsPerSubject, 1);
        assert_true(si->Config->MaxAge > 0);
        jsConsumerInfo *ci = NULL;
        assert_int_equal(js_GetConsumerInfo(&ci, sl_nats_js(nc), "SLUICE_REPORTS", "sluice-reporter", NULL, NULL),
                         NATS_OK);
        assert_string_equal(ci->Config->DeliverGroup, "sluice-reporter");
        jsConsumerInfo_Destroy(ci);
        jsStreamInfo_Destroy(si);
    }

    /* SIGTERM: clean exit */
    int ws = stop_reporter(SIGTERM);
    assert_true(WIFEXITED(ws));
    assert_int_equal(WEXITSTATUS(ws), 0);
}

static void reporter_bad_flags(void **state)
{
    (void)state;
    char bin[1024], cmd[1200];
    harness_binary(bin, sizeof bin, "services/reporter/sluice-reporter");
    snprintf(cmd, sizeof cmd, "%s --no-such-flag 2>/dev/null", bin);
    int ws = system(cmd);
    assert_true(WIFEXITED(ws));
    assert_int_equal(WEXITSTATUS(ws), 2);
    snprintf(cmd, sizeof cmd, "%s --help >/dev/null", bin);
    ws = system(cmd);
    assert_int_equal(WEXITSTATUS(ws), 0);
}

static int setup(void **state)
{
    (void)state;
    sl_log_set_level(SL_LOG_WARN);
    if (harness_up(&srv, &nc) != 0)
        return -1;
    snprintf(logpath, sizeof logpath, "%s/reporter.log", harness_nats_dir(srv));
    metrics_port = harness_free_port();
    sl_kv_config c;
    sl_kv_config_init(&c, SL_BUCKET_CONFIG);
    if (sl_kv_open(&config_kv, nc, &c) != SL_OK)
        return -1;
    sl_kv_config_init(&c, SL_BUCKET_STATUS);
    c.republish_keys = ">";
    c.republish_subject = "sluice.status.>";
    if (sl_kv_open(&status_kv, nc, &c) != SL_OK)
        return -1;
    if (natsConnection_SubscribeSync(&events, sl_nats_conn(nc), "sluice.status.>") != NATS_OK)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (reporter > 0)
        stop_reporter(SIGKILL);
    harness_show_log(logpath);
    natsSubscription_Destroy(events);
    sl_kv_free(config_kv);
    sl_kv_free(status_kv);
    harness_down(srv, nc);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(reporter_bad_flags),
        cmocka_unit_test(reporter_end_to_end),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
