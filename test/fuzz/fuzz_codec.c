/* libFuzzer target for the config codec.
 *
 * Arbitrary bytes are decoded as YAML (as JSON when they look like an
 * object) into a Listener, a Cluster or a RouteConfiguration, or read as a
 * multi-document stream. Whatever decodes is encoded to JSON and to YAML
 * and decoded again: the copy must pack to the same bytes, and encoding
 * must not fail. Any crash, sanitizer report, leak or abort() is a finding.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/arena.h"
#include "sluice/codec.h"
#include "sluice/diag.h"
#include "sluice/types.h"

/* Inputs past this size only slow the fuzzer down. */
#define FUZZ_MAX_INPUT (64 * 1024)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const types[] = {
    "envoy.config.listener.v3.Listener",
    "envoy.config.cluster.v3.Cluster",
    "envoy.config.route.v3.RouteConfiguration",
};

static void die(const char *what, const ProtobufCMessage *m, const char *text)
{
    fprintf(stderr, "fuzz_codec: %s (%s): %s\n", what, m->descriptor->name, sl_error_msg());
    if (text)
        fprintf(stderr, "--- text ---\n%s\n------------\n", text);
    abort();
}

static uint8_t *pack(const ProtobufCMessage *m, size_t *len)
{
    uint8_t *buf;

    *len = protobuf_c_message_get_packed_size(m);
    buf = malloc(*len ? *len : 1);
    if (!buf)
        abort();
    protobuf_c_message_pack(m, buf);
    return buf;
}

/* encode(m) as JSON or YAML, decode it again, compare the packed bytes. */
static void round_trip(const ProtobufCMessage *m, bool yaml, unsigned flags)
{
    sl_codec_options o = {.resolver = sl_types_find_url, .flags = flags};
    ProtobufCMessage *copy = NULL;
    uint8_t *a, *b;
    size_t la, lb, len;
    char *text = NULL;
    sl_diag d;
    sl_status st;

    st = yaml ? sl_codec_encode_yaml(&text, &len, m, &o) : sl_codec_encode_json(&text, &len, m, &o);
    if (st != SL_OK)
        die(yaml ? "encoding YAML failed" : "encoding JSON failed", m, NULL);
    sl_diag_init(&d);
    st = yaml ? sl_codec_decode_yaml(&copy, m->descriptor, text, len, &o, &d)
              : sl_codec_decode_json(&copy, m->descriptor, text, len, &o, &d);
    if (st != SL_OK) {
        sl_diag_print(&d, stderr);
        die("decoding the encoded text failed", m, text);
    }
    a = pack(m, &la);
    b = pack(copy, &lb);
    if (la != lb || memcmp(a, b, la) != 0)
        die("the round trip changed the message", m, text);
    free(a);
    free(b);
    protobuf_c_message_free_unpacked(copy, NULL);
    sl_diag_deinit(&d);
    free(text);
}

static void decode_as(const char *type, const char *text, size_t size, bool json, sl_arena *arena)
{
    static const char *const ignore[] = {"apiVersion", "kind", NULL};
    sl_codec_options o = {
        .resolver = sl_types_find_url,
        .ignore_keys = ignore,
        .allocator = arena ? &arena->allocator : NULL,
        .unknown_fields_warn = arena != NULL,
    };
    const ProtobufCMessageDescriptor *desc = sl_types_find(type);
    ProtobufCMessage *m = NULL;
    sl_diag d;
    sl_status st;

    if (!desc)
        abort();
    sl_diag_init(&d);
    st = json ? sl_codec_decode_json(&m, desc, text, size, &o, &d)
              : sl_codec_decode_yaml(&m, desc, text, size, &o, &d);
    if ((st == SL_OK) != (m != NULL) || (st == SL_OK && sl_diag_errors(&d)) ||
        (st == SL_ERR_PARSE && !sl_diag_errors(&d)))
        abort();
    for (size_t i = 0; i < sl_diag_count(&d); i++) {
        char line[256];
        sl_diag_format(line, sizeof(line), sl_diag_get(&d, i));
    }
    if (m) {
        round_trip(m, false, size % 2 ? SL_CODEC_JSON_COMPACT : 0);
        round_trip(m, true, 0);
        if (!arena)
            protobuf_c_message_free_unpacked(m, NULL);
    }
    sl_diag_deinit(&d);
}

/* Every document of the stream, as a Cluster. */
static void read_stream(const char *text, size_t size)
{
    sl_codec_stream *s = NULL;
    sl_codec_doc *doc;
    sl_diag d;
    int docs = 0;

    sl_diag_init(&d);
    if (sl_codec_stream_new(&s, text, size, "fuzz.yaml") != SL_OK)
        abort();
    for (;;) {
        sl_status st = sl_codec_stream_next(s, &doc, &d);
        ProtobufCMessage *m = NULL;
        if (st == SL_OK && !doc)
            break;
        if (st != SL_OK) {
            if (st != SL_ERR_PARSE || ++docs > 1000)
                break;
            continue;
        }
        (void)sl_codec_doc_line(doc);
        (void)sl_codec_doc_empty(doc);
        (void)sl_codec_doc_scalar(doc, "metadata.name");
        if (sl_codec_decode_doc(&m, sl_types_find(types[1]), doc, NULL, &d) == SL_OK)
            protobuf_c_message_free_unpacked(m, NULL);
        sl_codec_doc_free(doc);
        if (++docs > 1000)
            break;
    }
    sl_codec_stream_free(s);
    sl_diag_deinit(&d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    uint32_t h = 2166136261u;
    size_t i = 0, ntypes = sizeof(types) / sizeof(types[0]);
    sl_arena arena;

    if (size > FUZZ_MAX_INPUT)
        return 0;
    /* One way of reading per input, chosen by a hash of it, keeps the
     * executions per second up; mutations move an input between them. */
    for (size_t k = 0; k < size; k++)
        h = (h ^ data[k]) * 16777619u;
    while (i < size && (text[i] == ' ' || text[i] == '\n' || text[i] == '\t' || text[i] == '\r'))
        i++;
    switch (h % 5) {
    case 0:
    case 1:
    case 2:
        decode_as(types[h % 5], text, size, i < size && text[i] == '{', NULL);
        break;
    case 3:
        /* Into an arena, with unknown fields as warnings. */
        sl_arena_init(&arena, 0);
        decode_as(types[(h / 5) % ntypes], text, size, false, &arena);
        sl_arena_deinit(&arena);
        break;
    default:
        read_stream(text, size);
        break;
    }
    return 0;
}
