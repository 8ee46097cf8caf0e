/* The wire-level pre-scan refuses deep nesting (the 10,000-deep Value list
 * of an xDS request that overflowed protobuf-c's stack) and malformed
 * bytes, names where, and lets real messages through unchanged. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "test_expect.h"

#include "envoy/service/discovery/v3/discovery.pb-c.h"
#include "google/protobuf/struct.pb-c.h"
#include "sluice/pbcheck.h"
#include "sluice/wire.h"

/* Writes a varint ending just before *p (building right to left). */
static void put_varint_before(uint8_t **p, uint64_t v)
{
    *p -= sl_wire_varint_len(v);
    sl_wire_varint_put(*p, v);
}

/* A length-delimited field (number f) around the bytes at *p..end. */
static void wrap(uint8_t **p, const uint8_t *end, unsigned f)
{
    put_varint_before(p, (uint64_t)(end - *p));
    put_varint_before(p, (uint64_t)f << 3 | 2);
}

/* A DiscoveryRequest whose node.metadata holds a Value nested `lists`
 * list_values deep: Request > Node > Struct > entry > Value (> ListValue >
 * Value) * lists. Returns the bytes (malloc'd) and their length. */
static uint8_t *nested_request(size_t lists, size_t *len)
{
    size_t cap = 64 + lists * 16;
    uint8_t *buf = malloc(cap), *end = buf + cap, *p = end;
    assert_non_null(buf);
    *--p = 0; /* Value.null_value = 0 */
    *--p = 1 << 3;
    for (size_t i = 0; i < lists; i++) {
        wrap(&p, end, 1); /* ListValue.values */
        wrap(&p, end, 6); /* Value.list_value */
    }
    wrap(&p, end, 2); /* entry.value */
    *--p = 'k';
    *--p = 1;
    *--p = 1 << 3 | 2; /* entry.key = "k" */
    wrap(&p, end, 1); /* Struct.fields */
    wrap(&p, end, 3); /* Node.metadata */
    wrap(&p, end, 2); /* DiscoveryRequest.node */
    *len = (size_t)(end - p);
    memmove(buf, p, *len);
    return buf;
}

static void deep_request_refused_with_path(void **state)
{
    (void)state;
    size_t len;
    uint8_t *b = nested_request(10000, &len);
    ProtobufCMessage *m = (ProtobufCMessage *)b; /* must be reset */
    assert_true(len < 100 * 1024);
    assert_int_equal(sl_pb_unpack(&m, &envoy__service__discovery__v3__discovery_request__descriptor, NULL, b, len),
                     SL_ERR_PARSE);
    assert_null(m);
    const char *msg = sl_error_msg();
    expect_has(msg, "nested deeper than 64 levels", "node.metadata.fields.value.list_value.values", NULL);
    free(b);
}

static void depth_limit_is_exact(void **state)
{
    (void)state;
    /* Request(1) Node(2) Struct(3) entry(4) Value(5), then 2 per list. */
    size_t len;
    uint8_t *b = nested_request(10, &len); /* depth 25 */
    const ProtobufCMessageDescriptor *d = &envoy__service__discovery__v3__discovery_request__descriptor;
    assert_int_equal(sl_pb_check(d, b, len, 25), SL_OK);
    assert_int_equal(sl_pb_check(d, b, len, 24), SL_ERR_PARSE);
    ProtobufCMessage *m;
    assert_int_equal(sl_pb_unpack(&m, d, NULL, b, len), SL_OK);
    Envoy__Service__Discovery__V3__DiscoveryRequest *r = (Envoy__Service__Discovery__V3__DiscoveryRequest *)m;
    assert_non_null(r->node);
    assert_non_null(r->node->metadata);
    assert_int_equal(r->node->metadata->n_fields, 1);
    assert_string_equal(r->node->metadata->fields[0]->key, "k");
    protobuf_c_message_free_unpacked(m, NULL);
    free(b);
}

static void real_message_passes(void **state)
{
    (void)state;
    Envoy__Service__Discovery__V3__DiscoveryRequest r = ENVOY__SERVICE__DISCOVERY__V3__DISCOVERY_REQUEST__INIT;
    Envoy__Config__Core__V3__Node node = ENVOY__CONFIG__CORE__V3__NODE__INIT;
    char *names[] = {"a", "b"};
    r.version_info = "7";
    r.type_url = "type.googleapis.com/envoy.config.cluster.v3.Cluster";
    r.resource_names = names;
    r.n_resource_names = 2;
    node.id = "envoy-1";
    r.node = &node;
    size_t len = protobuf_c_message_get_packed_size(&r.base);
    uint8_t *b = malloc(len);
    protobuf_c_message_pack(&r.base, b);
    assert_int_equal(sl_pb_check(r.base.descriptor, b, len, SL_PB_MAX_DEPTH), SL_OK);
    /* every truncation is refused by the scan or by the unpack, never a crash */
    for (size_t cut = 1; cut < len; cut++) {
        ProtobufCMessage *m = NULL;
        if (sl_pb_unpack(&m, r.base.descriptor, NULL, b, cut) == SL_OK)
            protobuf_c_message_free_unpacked(m, NULL);
    }
    assert_int_equal(sl_pb_check(r.base.descriptor, b, len - 1, SL_PB_MAX_DEPTH), SL_ERR_PARSE);
    free(b);
}

static void malformed_bytes_named(void **state)
{
    (void)state;
    const ProtobufCMessageDescriptor *d = &google__protobuf__value__descriptor;
    const uint8_t group[] = {6 << 3 | 3};       /* a group start */
    const uint8_t zero_field[] = {0x00, 0x01};  /* field number 0 */
    const uint8_t long_len[] = {6 << 3 | 2, 5}; /* list_value of 5 bytes, none there */
    const uint8_t empty[] = {0};
    assert_int_equal(sl_pb_check(d, group, sizeof group, 8), SL_ERR_PARSE);
    assert_non_null(strstr(sl_error_msg(), "groups are not supported"));
    assert_int_equal(sl_pb_check(d, zero_field, sizeof zero_field, 8), SL_ERR_PARSE);
    assert_non_null(strstr(sl_error_msg(), "invalid field tag at byte 0"));
    assert_int_equal(sl_pb_check(d, long_len, sizeof long_len, 8), SL_ERR_PARSE);
    assert_non_null(strstr(sl_error_msg(), "runs past its message"));
    assert_non_null(strstr(sl_error_msg(), "list_value"));
    assert_int_equal(sl_pb_check(d, empty, 0, 8), SL_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(deep_request_refused_with_path),
        cmocka_unit_test(depth_limit_is_exact),
        cmocka_unit_test(real_message_passes),
        cmocka_unit_test(malformed_bytes_named),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
