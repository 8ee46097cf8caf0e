/* The one varint writer and reader round-trip at the boundaries and write
 * protobuf-c's bytes; length-delimited fields and skipping read back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "sluice/wire.h"
#include "google/protobuf/wrappers.pb-c.h"

static const uint64_t boundaries[] = {
    0, 1, 127, 128, 300, 16383, 16384, UINT32_MAX, (uint64_t)1 << 32, ((uint64_t)1 << 63) - 1,
    (uint64_t)1 << 63, UINT64_MAX,
};

static void varints_round_trip_at_the_boundaries(void **state)
{
    for (size_t i = 0; i < sizeof boundaries / sizeof *boundaries; i++) {
        uint64_t v = boundaries[i], back = 0;
        uint8_t buf[16];
        size_t pos = 0;
        uint8_t *end = sl_wire_varint_put(buf, v);
        assert_int_equal((size_t)(end - buf), sl_wire_varint_len(v));
        assert_int_equal(sl_wire_varint_get(&back, buf, (size_t)(end - buf), &pos), SL_OK);
        assert_int_equal(pos, (size_t)(end - buf));
        assert_true(back == v);
    }
}

static void varint_lengths(void **state)
{
    assert_int_equal(sl_wire_varint_len(0), 1);
    assert_int_equal(sl_wire_varint_len(127), 1);
    assert_int_equal(sl_wire_varint_len(128), 2);
    assert_int_equal(sl_wire_varint_len((uint64_t)1 << 32), 5);
    assert_int_equal(sl_wire_varint_len(UINT64_MAX), 10);
}

/* The bytes are protobuf-c's: field 1 of UInt64Value is a plain varint. */
static void varints_are_protobuf_c_bytes(void **state)
{
    for (size_t i = 0; i < sizeof boundaries / sizeof *boundaries; i++) {
        Google__Protobuf__UInt64Value m = GOOGLE__PROTOBUF__UINT64_VALUE__INIT;
        uint8_t want[16], got[16];
        m.value = boundaries[i];
        size_t n = google__protobuf__uint64_value__pack(&m, want);
        if (boundaries[i] == 0) {
            assert_int_equal(n, 0); /* proto3 skips zero */
            continue;
        }
        got[0] = 1 << 3 | SL_WIRE_VARINT;
        uint8_t *end = sl_wire_varint_put(got + 1, boundaries[i]);
        assert_int_equal((size_t)(end - got), n);
        assert_memory_equal(got, want, n);
    }
    static const uint8_t three_hundred[] = {0xac, 0x02};
    uint8_t b[2];
    sl_wire_varint_put(b, 300);
    assert_memory_equal(b, three_hundred, 2);
}

static void malformed_varints_are_refused(void **state)
{
    static const uint8_t cut[] = {0x80, 0x80};
    static const uint8_t eleven[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
    uint64_t v;
    size_t pos = 0;
    assert_int_equal(sl_wire_varint_get(&v, cut, sizeof cut, &pos), SL_ERR_PARSE);
    pos = 0;
    assert_int_equal(sl_wire_varint_get(&v, eleven, sizeof eleven, &pos), SL_ERR_PARSE);
    pos = 0;
    assert_int_equal(sl_wire_varint_get(&v, cut, 0, &pos), SL_ERR_PARSE);
    /* Reading goes on from *pos. */
    static const uint8_t two[] = {0x05, 0x96, 0x01};
    pos = 0;
    assert_int_equal(sl_wire_varint_get(&v, two, sizeof two, &pos), SL_OK);
    assert_true(v == 5);
    assert_int_equal(sl_wire_varint_get(&v, two, sizeof two, &pos), SL_OK);
    assert_true(v == 150);
    assert_int_equal(pos, 3);
}

static void length_delimited_fields_are_protobuf_c_bytes(void **state)
{
    static const size_t lens[] = {0, 1, 127, 128, 300};
    for (size_t i = 0; i < sizeof lens / sizeof *lens; i++) {
        size_t len = lens[i];
        uint8_t *data = malloc(len + 1), *want = malloc(len + 8), *got = malloc(len + 8);
        assert_non_null(data);
        assert_non_null(want);
        assert_non_null(got);
        memset(data, 'x', len);
        Google__Protobuf__BytesValue m = GOOGLE__PROTOBUF__BYTES_VALUE__INIT;
        m.value.data = data;
        m.value.len = len;
        size_t n = google__protobuf__bytes_value__pack(&m, want);
        if (len) {
            assert_int_equal(sl_wire_ld_len(len), n);
            assert_int_equal((size_t)(sl_wire_ld(got, 1, data, len) - got), n);
            assert_memory_equal(got, want, n);
        }
        free(data);
        free(want);
        free(got);
    }
}

static void skip_passes_each_wire_type(void **state)
{
    uint8_t buf[64], *w = buf;
    *w++ = 1 << 3 | SL_WIRE_VARINT;
    w = sl_wire_varint_put(w, UINT64_MAX);
    *w++ = 2 << 3 | SL_WIRE_64BIT;
    memset(w, 0xee, 8);
    w += 8;
    *w++ = 3 << 3 | SL_WIRE_32BIT;
    memset(w, 0xee, 4);
    w += 4;
    w = sl_wire_ld(w, 4, "hello", 5);
    size_t len = (size_t)(w - buf), pos = 0, fields = 0;
    while (pos < len) {
        uint64_t tag = 0;
        assert_int_equal(sl_wire_varint_get(&tag, buf, len, &pos), SL_OK);
        assert_int_equal(sl_wire_skip(buf, len, &pos, (unsigned)(tag & 7)), SL_OK);
        fields++;
    }
    assert_int_equal(pos, len);
    assert_int_equal(fields, 4);

    /* Each one cut short, and groups, are refused. */
    pos = 0;
    assert_int_equal(sl_wire_skip(buf, 3, &pos, SL_WIRE_64BIT), SL_ERR_PARSE);
    pos = 0;
    assert_int_equal(sl_wire_skip(buf, 3, &pos, SL_WIRE_32BIT), SL_ERR_PARSE);
    uint8_t ld[] = {4 << 3 | SL_WIRE_LEN, 5, 'h', 'e'};
    pos = 1;
    assert_int_equal(sl_wire_skip(ld, sizeof ld, &pos, SL_WIRE_LEN), SL_ERR_PARSE);
    pos = 0;
    assert_int_equal(sl_wire_skip(ld, sizeof ld, &pos, 3), SL_ERR_PARSE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(varints_round_trip_at_the_boundaries),
        cmocka_unit_test(varint_lengths),
        cmocka_unit_test(varints_are_protobuf_c_bytes),
        cmocka_unit_test(malformed_varints_are_refused),
        cmocka_unit_test(length_delimited_fields_are_protobuf_c_bytes),
        cmocka_unit_test(skip_passes_each_wire_type),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
