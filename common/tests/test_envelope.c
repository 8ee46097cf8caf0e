/* Envelope headers round-trip through a natsMsg: content types, proto
 * names, trace ids and sources, and clear errors for bad ones. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "envoy/config/endpoint/v3/endpoint.pb-c.h"
#include "sluice/envelope.h"

static void protobuf_round_trip(void **state)
{
    Envoy__Config__Endpoint__V3__ClusterLoadAssignment cla =
        ENVOY__CONFIG__ENDPOINT__V3__CLUSTER_LOAD_ASSIGNMENT__INIT;
    const sl_envelope_opts opts = {.source = "sluice-test"};
    natsMsg *msg = NULL;
    sl_envelope env;
    const char *ct = NULL;
    ProtobufCMessage *m = NULL;
    sl_arena a;

    cla.cluster_name = "petstore_default";
    assert_int_equal(sl_envelope_msg_new_pb(&msg, "sluice.test", &cla.base, &opts), SL_OK);
    assert_int_equal(natsMsgHeader_Get(msg, "Content-Type", &ct), NATS_OK);
    assert_string_equal(ct, "application/x-protobuf; proto=envoy.config.endpoint.v3.ClusterLoadAssignment");

    assert_int_equal(sl_envelope_parse(&env, msg), SL_OK);
    assert_int_equal(env.content_type, SL_CT_PROTOBUF);
    assert_string_equal(env.proto, "envoy.config.endpoint.v3.ClusterLoadAssignment");
    assert_true(sl_trace_id_valid(env.trace_id));
    assert_false(env.trace_generated);
    assert_string_equal(env.source, "sluice-test");
    assert_string_equal(env.subject, "sluice.test");
    assert_null(env.reply);

    sl_arena_init(&a, 0);
    assert_int_equal(sl_envelope_unpack(&m, &env, &envoy__config__endpoint__v3__cluster_load_assignment__descriptor, &a),
                     SL_OK);
    assert_string_equal(((Envoy__Config__Endpoint__V3__ClusterLoadAssignment *)m)->cluster_name,
                        "petstore_default");
    /* The wrong type is refused before decoding. */
    assert_int_equal(sl_envelope_unpack(&m, &env, &envoy__config__endpoint__v3__lb_endpoint__descriptor, &a),
                     SL_ERR_INVALID);
    assert_non_null(strstr(sl_error_msg(), "proto=envoy.config.endpoint.v3.ClusterLoadAssignment"));
    sl_arena_deinit(&a);
    natsMsg_Destroy(msg);
}

static void json_yaml_and_given_trace_ids(void **state)
{
    const sl_envelope_opts opts = {.trace_id = "0123456789ABCDEF0123456789abcdef", .reply = "inbox.1"};
    natsMsg *msg = NULL;
    sl_envelope env;
    const char *v = NULL;

    assert_int_equal(sl_envelope_msg_new(&msg, "s", SL_CT_JSON, NULL, "{}", 2, &opts), SL_OK);
    assert_int_equal(natsMsgHeader_Get(msg, "Sluice-Trace-Id", &v), NATS_OK);
    assert_string_equal(v, "0123456789abcdef0123456789abcdef"); /* normalised */
    assert_int_equal(natsMsgHeader_Get(msg, "Sluice-Source", &v), NATS_NOT_FOUND);
    assert_int_equal(sl_envelope_parse(&env, msg), SL_OK);
    assert_int_equal(env.content_type, SL_CT_JSON);
    assert_string_equal(env.proto, "");
    assert_string_equal(env.trace_id, "0123456789abcdef0123456789abcdef");
    assert_string_equal(env.reply, "inbox.1");
    assert_int_equal(env.len, 2);
    assert_memory_equal(env.data, "{}", 2);
    assert_string_equal(env.source, "");
    natsMsg_Destroy(msg);

    assert_int_equal(sl_envelope_msg_new(&msg, "s", SL_CT_YAML, NULL, "a: 1", 4, NULL), SL_OK);
    assert_int_equal(sl_envelope_parse(&env, msg), SL_OK);
    assert_int_equal(env.content_type, SL_CT_YAML);
    natsMsg_Destroy(msg);

    /* Bad outgoing settings are refused. */
    assert_int_equal(sl_envelope_msg_new(&msg, "s", SL_CT_PROTOBUF, NULL, "", 0, NULL), SL_ERR_INVALID);
    assert_int_equal(sl_envelope_msg_new(&msg, "s", SL_CT_JSON, "a.B", "", 0, NULL), SL_ERR_INVALID);
    assert_int_equal(sl_envelope_msg_new(&msg, "s", SL_CT_PROTOBUF, "bad name", "", 0, NULL),
                     SL_ERR_INVALID);
    const sl_envelope_opts bad = {.trace_id = "xyz"};
    assert_int_equal(sl_envelope_msg_new(&msg, "s", SL_CT_JSON, NULL, "", 0, &bad), SL_ERR_INVALID);
}

/* A message as another client would send it: raw headers. */
static natsMsg *raw(const char *ctype, const char *ctype_key, const char *trace)
{
    natsMsg *msg = NULL;
    assert_int_equal(natsMsg_Create(&msg, "s", NULL, "x", 1), NATS_OK);
    if (ctype != NULL)
        assert_int_equal(natsMsgHeader_Set(msg, ctype_key, ctype), NATS_OK);
    if (trace != NULL)
        assert_int_equal(natsMsgHeader_Set(msg, "sluice-trace-id", trace), NATS_OK);
    return msg;
}

static void parses_what_other_clients_send(void **state)
{
    static const struct {
        const char *ctype;
        sl_status st;
        sl_content_type ct;
        const char *proto;
    } cases[] = {
        {"application/x-protobuf; proto=sluice.v1.Upstream", SL_OK, SL_CT_PROTOBUF, "sluice.v1.Upstream"},
        {"Application/X-Protobuf;proto=\"sluice.v1.Upstream\"", SL_OK, SL_CT_PROTOBUF, "sluice.v1.Upstream"},
        {"application/protobuf", SL_OK, SL_CT_PROTOBUF, ""},
        {"application/json; charset=utf-8", SL_OK, SL_CT_JSON, ""},
        {"application/x-yaml", SL_OK, SL_CT_YAML, ""},
        {"text/yaml ; charset=utf-8 ", SL_OK, SL_CT_YAML, ""},
        {"text/plain", SL_ERR_UNSUPPORTED, SL_CT_NONE, ""},
        {"application/json; proto=a.B", SL_ERR_INVALID, SL_CT_JSON, ""},
        {"application/x-protobuf; proto=", SL_ERR_INVALID, SL_CT_PROTOBUF, ""},
        {"application/x-protobuf; proto=a b", SL_ERR_INVALID, SL_CT_PROTOBUF, ""},
        {"application/x-protobuf; proto=\"a.B", SL_ERR_INVALID, SL_CT_PROTOBUF, ""},
        {"application/x-protobuf; junk", SL_ERR_INVALID, SL_CT_PROTOBUF, ""},
    };
    sl_envelope env;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        natsMsg *msg = raw(cases[i].ctype, "content-type", NULL);
        sl_status st = sl_envelope_parse(&env, msg);
        if (st != cases[i].st)
            fail_msg("'%s': got %s, want %s", cases[i].ctype, sl_status_str(st),
                     sl_status_str(cases[i].st));
        assert_int_equal(env.content_type, cases[i].ct);
        assert_string_equal(env.proto, cases[i].proto);
        /* even a bad message has what is needed to answer it */
        assert_true(sl_trace_id_valid(env.trace_id));
        assert_string_equal(env.subject, "s");
        assert_int_equal(env.len, 1);
        if (st != SL_OK)
            assert_non_null(strstr(sl_error_msg(), "Content-Type"));
        natsMsg_Destroy(msg);
    }

    /* No headers at all: no content type, a fresh trace id. */
    natsMsg *msg = raw(NULL, NULL, NULL);
    assert_int_equal(sl_envelope_parse(&env, msg), SL_OK);
    assert_int_equal(env.content_type, SL_CT_NONE);
    assert_true(env.trace_generated);
    assert_true(sl_trace_id_valid(env.trace_id));
    natsMsg_Destroy(msg);

    /* A lower-case trace header is found; an invalid one is replaced. */
    msg = raw("application/json", "Content-Type", "ffffffffffffffffffffffffffffffff");
    assert_int_equal(sl_envelope_parse(&env, msg), SL_OK);
    assert_string_equal(env.trace_id, "ffffffffffffffffffffffffffffffff");
    assert_false(env.trace_generated);
    natsMsg_Destroy(msg);
    msg = raw("application/json", "Content-Type", "not-a-trace");
    assert_int_equal(sl_envelope_parse(&env, msg), SL_OK);
    assert_true(env.trace_generated);
    assert_string_not_equal(env.trace_id, "not-a-trace");
    natsMsg_Destroy(msg);
}

static void trace_ids_are_fresh(void **state)
{
    char a[SL_TRACE_ID_LEN + 1], b[SL_TRACE_ID_LEN + 1];

    sl_trace_id_new(a);
    sl_trace_id_new(b);
    assert_true(sl_trace_id_valid(a));
    assert_string_not_equal(a, b);
    for (size_t i = 0; i < SL_TRACE_ID_LEN; i++)
        assert_true((a[i] >= '0' && a[i] <= '9') || (a[i] >= 'a' && a[i] <= 'f'));
    assert_false(sl_trace_id_valid("abc"));
    assert_false(sl_trace_id_valid(NULL));
    assert_string_equal(sl_content_type_str(SL_CT_YAML), "application/yaml");
}

static void json_payload_is_not_unpacked(void **state)
{
    natsMsg *msg = NULL;
    sl_envelope env;
    ProtobufCMessage *m = NULL;
    sl_arena a;

    assert_int_equal(sl_envelope_msg_new(&msg, "s", SL_CT_JSON, NULL, "{}", 2, NULL), SL_OK);
    assert_int_equal(sl_envelope_parse(&env, msg), SL_OK);
    sl_arena_init(&a, 0);
    assert_int_equal(sl_envelope_unpack(&m, &env, &envoy__config__endpoint__v3__cluster_load_assignment__descriptor, &a),
                     SL_ERR_INVALID);
    assert_non_null(strstr(sl_error_msg(), "application/json"));
    sl_arena_deinit(&a);
    natsMsg_Destroy(msg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(protobuf_round_trip),
        cmocka_unit_test(json_yaml_and_given_trace_ids),
        cmocka_unit_test(parses_what_other_clients_send),
        cmocka_unit_test(trace_ids_are_fresh),
        cmocka_unit_test(json_payload_is_not_unpacked),
    };
    int rc;

    nats_Open(-1); /* raw() builds messages directly */
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    nats_Close();
    return rc;
}
