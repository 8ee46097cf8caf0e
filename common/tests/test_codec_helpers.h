/* Helpers shared by the codec's unit tests (test_codec*.c). Include after
 * <cmocka.h>. */
#ifndef SLUICE_TEST_CODEC_HELPERS_H
#define SLUICE_TEST_CODEC_HELPERS_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/codec.h"
#include "sluice/diag.h"
#include "sluice/types.h"

static inline const ProtobufCMessageDescriptor *type_of(const char *name)
{
    const ProtobufCMessageDescriptor *d = sl_types_find(name);

    if (!d)
        fail_msg("no message type %s", name);
    return d;
}

/* A file of the source tree, NUL-terminated; the caller frees it. */
static inline char *read_source(const char *rel, size_t *len)
{
    const char *root = getenv("SLUICE_SOURCE_DIR");
    char path[1024];
    FILE *f;
    char *buf;
    long n;

    snprintf(path, sizeof(path), "%s/%s", root ? root : ".", rel);
    f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot open %s", path);
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    if (len)
        *len = (size_t)n;
    return buf;
}

static inline void print_diag(const sl_diag *d)
{
    sl_diag_print(d, stderr);
}

/* Decodes text (YAML, or JSON when json) and fails the test on any error. */
static inline ProtobufCMessage *decode_ok(const char *type, const char *text, size_t len, bool json,
                                          const sl_codec_options *opts)
{
    sl_codec_options defaults = {.resolver = sl_types_find_url};
    ProtobufCMessage *m = NULL;
    sl_diag d;
    sl_status st;

    sl_diag_init(&d);
    if (!opts)
        opts = &defaults;
    st = json ? sl_codec_decode_json(&m, type_of(type), text, len, opts, &d)
              : sl_codec_decode_yaml(&m, type_of(type), text, len, opts, &d);
    if (st != SL_OK || sl_diag_errors(&d)) {
        print_diag(&d);
        fail_msg("decoding %s failed: %s (%s)", type, sl_status_str(st), sl_error_msg());
    }
    assert_non_null(m);
    sl_diag_deinit(&d);
    return m;
}

static inline ProtobufCMessage *decode_str(const char *type, const char *yaml)
{
    return decode_ok(type, yaml, strlen(yaml), false, NULL);
}

static inline ProtobufCMessage *decode_file(const char *type, const char *rel)
{
    size_t len;
    char *text = read_source(rel, &len);
    size_t n = strlen(rel);
    bool json = n > 5 && strcmp(rel + n - 5, ".json") == 0;
    ProtobufCMessage *m = decode_ok(type, text, len, json, NULL);

    free(text);
    return m;
}

/* The packed bytes of m (caller frees). */
static inline uint8_t *pack(const ProtobufCMessage *m, size_t *len)
{
    uint8_t *buf;

    *len = protobuf_c_message_get_packed_size(m);
    buf = malloc(*len + 1);
    assert_non_null(buf);
    assert_int_equal(protobuf_c_message_pack(m, buf), *len);
    return buf;
}

static inline void assert_same_message(const ProtobufCMessage *a, const ProtobufCMessage *b)
{
    size_t la, lb;
    uint8_t *pa = pack(a, &la), *pb = pack(b, &lb);

    assert_ptr_equal(a->descriptor, b->descriptor);
    assert_int_equal(la, lb);
    assert_memory_equal(pa, pb, la);
    free(pa);
    free(pb);
}

/* encode(m) then decode again gives the same bytes, through JSON (pretty and
 * compact) and YAML; encoding the copy gives the same text. */
static inline void assert_roundtrip(const ProtobufCMessage *m)
{
    for (int form = 0; form < 3; form++) {
        sl_codec_options o = {.resolver = sl_types_find_url,
                              .flags = form == 1 ? SL_CODEC_JSON_COMPACT : 0};
        bool yaml = form == 2;
        char *text = NULL, *again = NULL;
        size_t len, len2;
        ProtobufCMessage *copy;
        sl_status st = yaml ? sl_codec_encode_yaml(&text, &len, m, &o)
                            : sl_codec_encode_json(&text, &len, m, &o);
        if (st != SL_OK)
            fail_msg("encoding %s: %s", m->descriptor->name, sl_error_msg());
        assert_int_equal(strlen(text), len);
        copy = decode_ok(m->descriptor->name, text, len, !yaml, &o);
        assert_same_message(m, copy);
        st = yaml ? sl_codec_encode_yaml(&again, &len2, copy, &o)
                  : sl_codec_encode_json(&again, &len2, copy, &o);
        assert_int_equal(st, SL_OK);
        assert_string_equal(text, again);
        protobuf_c_message_free_unpacked(copy, NULL);
        free(text);
        free(again);
    }
}

static inline char *encode_json(const ProtobufCMessage *m, unsigned flags)
{
    sl_codec_options o = {.resolver = sl_types_find_url, .flags = flags};
    char *text = NULL;

    if (sl_codec_encode_json(&text, NULL, m, &o) != SL_OK)
        fail_msg("encoding %s: %s", m->descriptor->name, sl_error_msg());
    return text;
}

static inline char *encode_yaml(const ProtobufCMessage *m)
{
    sl_codec_options o = {.resolver = sl_types_find_url};
    char *text = NULL;

    if (sl_codec_encode_yaml(&text, NULL, m, &o) != SL_OK)
        fail_msg("encoding %s: %s", m->descriptor->name, sl_error_msg());
    return text;
}

/* Decodes text, expecting failure (or success when `ok`), and compares every
 * diagnostic, formatted, with `want` (NULL-terminated). The file name is
 * "t.yaml" unless opts says otherwise. */
static inline void expect_diags_desc(const ProtobufCMessageDescriptor *desc, bool json,
                                     const char *text, const sl_codec_options *opts, bool ok,
                                     const char *const *want)
{
    sl_codec_options o = {.resolver = sl_types_find_url, .filename = "t.yaml"};
    ProtobufCMessage *m = NULL;
    sl_diag d;
    sl_status st;
    size_t n = 0;

    if (opts)
        o = *opts;
    if (!o.filename)
        o.filename = "t.yaml";
    sl_diag_init(&d);
    st = json ? sl_codec_decode_json(&m, desc, text, strlen(text), &o, &d)
              : sl_codec_decode_yaml(&m, desc, text, strlen(text), &o, &d);
    while (want[n])
        n++;
    for (size_t i = 0; i < sl_diag_count(&d); i++) {
        char line[1024];
        sl_diag_format(line, sizeof(line), sl_diag_get(&d, i));
        if (i >= n || strcmp(line, want[i]) != 0) {
            print_diag(&d);
            break;
        }
    }
    assert_int_equal(sl_diag_count(&d), n);
    for (size_t i = 0; i < n; i++) {
        char line[1024];
        sl_diag_format(line, sizeof(line), sl_diag_get(&d, i));
        assert_string_equal(line, want[i]);
    }
    if (ok) {
        assert_int_equal(st, SL_OK);
        assert_non_null(m);
        protobuf_c_message_free_unpacked(m, NULL);
    } else {
        assert_int_equal(st, SL_ERR_PARSE);
        assert_null(m);
        /* The first error is also in the error context. */
        for (size_t i = 0; i < n; i++) {
            const sl_diag_item *it = sl_diag_get(&d, i);
            if (it->severity == SL_DIAG_ERROR) {
                char line[1024];
                sl_diag_format(line, sizeof(line), it);
                assert_string_equal(sl_error_msg(), line);
                break;
            }
        }
    }
    sl_diag_deinit(&d);
}

static inline void expect_diags_opts(const char *type, bool json, const char *text,
                                     const sl_codec_options *opts, bool ok,
                                     const char *const *want)
{
    expect_diags_desc(type_of(type), json, text, opts, ok, want);
}

static inline void expect_diags(const char *type, const char *yaml, const char *const *want)
{
    expect_diags_opts(type, false, yaml, NULL, false, want);
}

/* One expected error. */
static inline void expect_error(const char *type, const char *yaml, const char *want)
{
    const char *const list[] = {want, NULL};
    expect_diags(type, yaml, list);
}

#endif
