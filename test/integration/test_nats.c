/* The NATS connection and envelopes against a real nats-server: start-up
 * retry and deadline, reconnect events, publish/subscribe with headers,
 * request/reply (answered, timed out, no responders), subscriptions on a
 * loop, and the payload limit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "envoy/config/endpoint/v3/endpoint.pb-c.h"
#include "harness.h"
#include "sluice/envelope.h"
#include "sluice/nats.h"
#include "sluice/service.h"

static harness_nats *srv;
static sl_nats *nc;

static int group_setup(void **state) { return harness_up(&srv, &nc); }

static int group_teardown(void **state)
{
    harness_down(srv, nc);
    return 0;
}

/* ---- connection ---- */

static void gives_up_at_the_startup_deadline(void **state)
{
    sl_nats_settings s;
    sl_nats *c = NULL;
    int64_t start;

    sl_nats_settings_init(&s);
    /* A port where nothing listens: the harness's, while it is stopped
     * would race with other tests; a closed loopback port will do. */
    assert_int_equal(sl_nats_settings_set(&s, "nats-url", "nats://127.0.0.1:1"), SL_OK);
    s.startup_deadline_ms = 700;
    s.reconnect_min_ms = 50;
    start = harness_now_ms();
    assert_int_equal(sl_nats_connect(&c, &s), SL_ERR_TIMEOUT);
    assert_true(harness_now_ms() - start >= 600);
    assert_true(harness_now_ms() - start < 5000);
    assert_non_null(strstr(sl_error_msg(), "127.0.0.1:1"));
    assert_null(c);
    sl_nats_settings_deinit(&s);
}

struct late {
    const char *url;
    sl_nats *c;
    sl_status st;
};

static void *connect_main(void *arg)
{
    struct late *l = arg;
    sl_nats_settings s;

    sl_nats_settings_init(&s);
    harness_settings(&s, l->url);
    s.startup_deadline_ms = 15000;
    s.reconnect_min_ms = 50;
    s.reconnect_max_ms = 200;
    l->st = sl_nats_connect(&l->c, &s);
    sl_nats_settings_deinit(&s);
    return NULL;
}

struct events {
    atomic_int disconnected;
    atomic_int reconnected;
    atomic_int closed;
};

static void on_event(sl_nats *c, sl_nats_event ev, void *ud)
{
    struct events *e = ud;
    if (ev == SL_NATS_DISCONNECTED)
        atomic_fetch_add(&e->disconnected, 1);
    else if (ev == SL_NATS_RECONNECTED)
        atomic_fetch_add(&e->reconnected, 1);
    else
        atomic_fetch_add(&e->closed, 1);
}

static void waits_for_a_late_server_and_reconnects(void **state)
{
    harness_nats *h = NULL;
    struct late l = {0};
    pthread_t t;
    sl_nats_settings s;
    sl_nats *c = NULL;
    struct events ev = {0};
    int64_t deadline;

    /* A server that is down when the client starts. */
    assert_int_equal(harness_nats_start(&h), 0);
    assert_int_equal(harness_nats_stop(h), 0);
    l.url = harness_nats_url(h);
    pthread_create(&t, NULL, connect_main, &l);
    usleep(800000);
    assert_int_equal(harness_nats_start_again(h), 0);
    pthread_join(t, NULL);
    assert_int_equal(l.st, SL_OK);
    assert_true(sl_nats_is_connected(l.c));
    assert_non_null(sl_nats_js(l.c));
    assert_true(sl_nats_max_payload(l.c) > 0);
    sl_nats_close(l.c, 1000);

    /* Reconnect events after a restart. */
    sl_nats_settings_init(&s);
    harness_settings(&s, harness_nats_url(h));
    s.reconnect_min_ms = 50;
    s.on_event = on_event;
    s.on_event_ud = &ev;
    assert_int_equal(sl_nats_connect(&c, &s), SL_OK);
    sl_nats_settings_deinit(&s); /* the connection keeps its own copy */
    assert_int_equal(harness_nats_restart(h), 0);
    deadline = harness_now_ms() + 15000;
    while (atomic_load(&ev.reconnected) == 0 && harness_now_ms() < deadline)
        usleep(20000);
    assert_int_equal(atomic_load(&ev.disconnected), 1);
    assert_int_equal(atomic_load(&ev.reconnected), 1);
    assert_true(sl_nats_is_connected(c));
    sl_nats_close(c, 1000);
    assert_int_equal(atomic_load(&ev.closed), 1);
    harness_nats_free(h);
}

static void bad_tls_files_are_a_usage_error(void **state)
{
    sl_nats_settings s;
    sl_nats *c = NULL;

    sl_nats_settings_init(&s);
    harness_settings(&s, harness_nats_url(srv));
    sl_nats_settings_set(&s, "nats-tls-ca", "/nonexistent/ca.pem");
    assert_int_equal(sl_nats_connect(&c, &s), SL_ERR_INVALID);
    sl_nats_settings_set(&s, "nats-tls-cert", "/nonexistent/cert.pem");
    assert_int_equal(sl_nats_connect(&c, &s), SL_ERR_INVALID); /* cert without key */
    sl_nats_settings_deinit(&s);
}

/* ---- envelopes over the wire ---- */

static void publish_subscribe_with_headers(void **state)
{
    Envoy__Config__Endpoint__V3__ClusterLoadAssignment cla =
        ENVOY__CONFIG__ENDPOINT__V3__CLUSTER_LOAD_ASSIGNMENT__INIT;
    natsSubscription *sub = NULL;
    natsMsg *m = NULL;
    sl_envelope env;
    ProtobufCMessage *pm = NULL;
    sl_arena a;
    const sl_envelope_opts opts = {.source = "test-src",
                                   .trace_id = "00112233445566778899aabbccddeeff"};

    assert_int_equal(natsConnection_SubscribeSync(&sub, sl_nats_conn(nc), "ev.>"), NATS_OK);
    cla.cluster_name = "svc_ns";
    assert_int_equal(sl_envelope_publish_pb(nc, "ev.cla", &cla.base, &opts), SL_OK);
    assert_int_equal(sl_envelope_publish(nc, "ev.json", SL_CT_JSON, NULL, "{\"a\":1}", 7, NULL), SL_OK);

    assert_int_equal(natsSubscription_NextMsg(&m, sub, 5000), NATS_OK);
    assert_int_equal(sl_envelope_parse(&env, m), SL_OK);
    assert_string_equal(env.subject, "ev.cla");
    assert_int_equal(env.content_type, SL_CT_PROTOBUF);
    assert_string_equal(env.proto, "envoy.config.endpoint.v3.ClusterLoadAssignment");
    assert_string_equal(env.trace_id, "00112233445566778899aabbccddeeff");
    assert_string_equal(env.source, "test-src");
    sl_arena_init(&a, 0);
    assert_int_equal(sl_envelope_unpack(&pm, &env, &envoy__config__endpoint__v3__cluster_load_assignment__descriptor, &a),
                     SL_OK);
    assert_string_equal(((Envoy__Config__Endpoint__V3__ClusterLoadAssignment *)pm)->cluster_name, "svc_ns");
    sl_arena_deinit(&a);
    natsMsg_Destroy(m);

    assert_int_equal(natsSubscription_NextMsg(&m, sub, 5000), NATS_OK);
    assert_int_equal(sl_envelope_parse(&env, m), SL_OK);
    assert_int_equal(env.content_type, SL_CT_JSON);
    assert_false(env.trace_generated);
    assert_true(sl_trace_id_valid(env.trace_id));
    assert_memory_equal(env.data, "{\"a\":1}", 7);
    natsMsg_Destroy(m);
    natsSubscription_Destroy(sub);
}

/* A responder on a loop thread: echoes the payload as JSON, or frees its
 * own subscription when asked to. */
struct responder {
    sl_loop *loop;
    pthread_t thread;
    sl_subscription *sub;
    atomic_int handled;
    atomic_int after_free;
    atomic_bool freed;
};

static void on_request(sl_subscription *sub, sl_status st, const sl_envelope *env, natsMsg *msg,
                       void *ud)
{
    struct responder *r = ud;

    if (atomic_load(&r->freed))
        atomic_fetch_add(&r->after_free, 1);
    atomic_fetch_add(&r->handled, 1);
    if (st != SL_OK) {
        const char *why = sl_error_msg();
        sl_envelope_respond(nc, env, SL_CT_JSON, NULL, why, strlen(why), "responder");
        return;
    }
    if (env->len == 4 && memcmp(env->data, "quit", 4) == 0) {
        sl_subscription_free(sub);
        atomic_store(&r->freed, true);
        return;
    }
    if (env->len == 6 && memcmp(env->data, "silent", 6) == 0)
        return;
    sl_envelope_respond(nc, env, SL_CT_JSON, NULL, env->data, env->len, "responder");
}

static void *run_loop(void *arg)
{
    sl_loop_run(arg);
    return NULL;
}

static void request_reply_timeout_and_no_responders(void **state)
{
    struct responder r = {0};
    natsMsg *reply = NULL;
    sl_envelope env;
    const sl_envelope_opts opts = {.trace_id = "abcdefabcdefabcdefabcdefabcdef01"};
    natsMsg *bad = NULL;
    int64_t start;

    assert_int_equal(sl_loop_new(&r.loop), SL_OK);
    pthread_create(&r.thread, NULL, run_loop, r.loop);
    assert_int_equal(sl_envelope_subscribe(&r.sub, nc, "api.echo", "echoers", r.loop, on_request, &r),
                     SL_OK);
    assert_int_equal(natsConnection_Flush(sl_nats_conn(nc)), NATS_OK);

    /* answered, with the trace id carried back */
    assert_int_equal(sl_envelope_request(&reply, nc, "api.echo", SL_CT_YAML, NULL, "a: 1", 4, &opts, 5000),
                     SL_OK);
    assert_int_equal(sl_envelope_parse(&env, reply), SL_OK);
    assert_string_equal(env.trace_id, "abcdefabcdefabcdefabcdefabcdef01");
    assert_string_equal(env.source, "responder");
    assert_int_equal(env.content_type, SL_CT_JSON);
    assert_memory_equal(env.data, "a: 1", 4);
    natsMsg_Destroy(reply);

    /* a bad request still gets a reasoned answer */
    assert_int_equal(natsMsg_Create(&bad, "api.echo", NULL, "x", 1), NATS_OK);
    assert_int_equal(natsMsgHeader_Set(bad, "Content-Type", "text/html"), NATS_OK);
    assert_int_equal(natsConnection_RequestMsg(&reply, sl_nats_conn(nc), bad, 5000), NATS_OK);
    assert_int_equal(sl_envelope_parse(&env, reply), SL_OK);
    assert_non_null(memmem(env.data, env.len, "text/html", 9));
    natsMsg_Destroy(reply);
    natsMsg_Destroy(bad);

    /* a responder that says nothing: timeout */
    start = harness_now_ms();
    assert_int_equal(sl_envelope_request(&reply, nc, "api.echo", SL_CT_JSON, NULL, "silent", 6, NULL, 300),
                     SL_ERR_TIMEOUT);
    assert_true(harness_now_ms() - start >= 250);

    /* nobody listening: told at once */
    start = harness_now_ms();
    assert_int_equal(sl_envelope_request(&reply, nc, "api.nobody", SL_CT_JSON, NULL, "{}", 2, NULL, 5000),
                     SL_ERR_NOT_FOUND);
    assert_true(harness_now_ms() - start < 4000);

    /* the handler frees its own subscription; nothing is delivered after */
    assert_int_equal(sl_envelope_publish(nc, "api.echo", SL_CT_JSON, NULL, "quit", 4, NULL), SL_OK);
    for (int i = 0; i < 20; i++)
        sl_envelope_publish(nc, "api.echo", SL_CT_JSON, NULL, "silent", 6, NULL);
    natsConnection_Flush(sl_nats_conn(nc));
    usleep(300000);
    assert_true(atomic_load(&r.freed));
    assert_int_equal(atomic_load(&r.after_free), 0);

    sl_loop_stop(r.loop);
    pthread_join(r.thread, NULL);
    sl_loop_free(r.loop);
}

static void free_stops_delivery(void **state)
{
    struct responder r = {0};

    assert_int_equal(sl_loop_new(&r.loop), SL_OK);
    pthread_create(&r.thread, NULL, run_loop, r.loop);
    assert_int_equal(sl_envelope_subscribe(&r.sub, nc, "flood", NULL, r.loop, on_request, &r), SL_OK);
    natsConnection_Flush(sl_nats_conn(nc));
    for (int i = 0; i < 2000; i++)
        sl_envelope_publish(nc, "flood", SL_CT_JSON, NULL, "silent", 6, NULL);
    natsConnection_Flush(sl_nats_conn(nc));
    sl_subscription_free(r.sub); /* while messages are still queued */
    atomic_store(&r.freed, true);
    usleep(200000);
    assert_int_equal(atomic_load(&r.after_free), 0);
    sl_loop_stop(r.loop);
    pthread_join(r.thread, NULL);
    sl_loop_free(r.loop);

    /* errors at subscribe time call nothing */
    assert_int_equal(sl_envelope_subscribe(&r.sub, nc, "x", NULL, NULL, on_request, &r), SL_ERR_INVALID);
}

static void payload_over_max_is_refused(void **state)
{
    int64_t max = sl_nats_max_payload(nc);
    char *big = calloc(1, (size_t)max + 1);
    natsMsg *reply = NULL;

    assert_non_null(big);
    assert_int_equal(sl_envelope_publish(nc, "big", SL_CT_JSON, NULL, big, (size_t)max + 1, NULL),
                     SL_ERR_INVALID);
    assert_non_null(strstr(sl_error_msg(), "max_payload"));
    assert_int_equal(sl_envelope_request(&reply, nc, "big", SL_CT_JSON, NULL, big, (size_t)max + 1, NULL, 100),
                     SL_ERR_INVALID);
    free(big);
}

static void service_owns_and_drains_its_connection(void **state)
{
    static const sl_service_info info = {"sluice-test-svc", "0", NULL, NULL};
    sl_service_args a;
    sl_service *svc = NULL;
    sl_nats *c1 = NULL, *c2 = NULL;

    sl_service_args_init(&a);
    assert_int_equal(harness_settings(&a.nats, harness_nats_url(srv)), SL_OK);
    a.drain_timeout_ms = 1000;
    assert_int_equal(sl_service_new(&svc, &info, &a), SL_OK);
    sl_service_args_deinit(&a); /* the service keeps its own copy */
    assert_int_equal(sl_service_connect(&c1, svc), SL_OK);
    assert_int_equal(sl_service_connect(&c2, svc), SL_OK);
    assert_ptr_equal(c1, c2);
    assert_int_equal(sl_envelope_publish(c1, "svc.hello", SL_CT_JSON, NULL, "{}", 2, NULL), SL_OK);
    sl_service_request_stop(svc, SL_EXIT_OK);
    assert_int_equal(sl_service_wait_stop(svc), SL_EXIT_OK);
    sl_service_free(svc); /* drains and closes c1 */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(gives_up_at_the_startup_deadline),
        cmocka_unit_test(waits_for_a_late_server_and_reconnects),
        cmocka_unit_test(bad_tls_files_are_a_usage_error),
        cmocka_unit_test(publish_subscribe_with_headers),
        cmocka_unit_test(request_reply_timeout_and_no_responders),
        cmocka_unit_test(free_stops_delivery),
        cmocka_unit_test(payload_over_max_is_refused),
        cmocka_unit_test(service_owns_and_drains_its_connection),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
