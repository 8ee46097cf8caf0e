/* codec_internal.h - what the codec's files share: the parsed YAML tree,
 * a string builder, and the scalar forms of proto3 JSON. Private to
 * common/src/codec_*.c. */
#ifndef SLUICE_CODEC_INTERNAL_H
#define SLUICE_CODEC_INTERNAL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "sluice/arena.h"
#include "sluice/codec.h"

/* --- The parsed document ------------------------------------------------ */

typedef enum codec_kind {
    CODEC_SCALAR = 0,
    CODEC_SEQ,
    CODEC_MAP,
} codec_kind;

/* One YAML node. Nodes live in their document's arena; an alias is the
 * anchored node itself, so a node may have several parents. */
typedef struct codec_node codec_node;
struct codec_node {
    codec_kind kind;
    bool quoted;     /* scalar: not plain (quoted, block, or tagged !!str) */
    unsigned line;   /* 1-based */
    unsigned col;    /* 1-based */
    size_t n;        /* scalar: bytes of text; seq: items; map: pairs */
    size_t weight;   /* nodes in the subtree with aliases expanded (saturates) */
    char *text;      /* scalar: NUL-terminated (an embedded NUL ends it early) */
    codec_node **items; /* seq: n items; map: 2n, key then value */
    /* map: NULL, or n entries: for pair i whose key repeats an earlier
     * key of the same mapping, that earlier key; else NULL. */
    const codec_node **dups;
};

struct sl_codec_doc {
    sl_arena arena;   /* every node and text */
    codec_node *root; /* NULL: empty document */
    unsigned line;
    char *filename;
    bool json;        /* name JSON's types in messages */
};

/* A plain scalar that YAML's core schema reads as null: "", ~, null. */
bool codec_is_null(const codec_node *n);

/* Parses data as exactly one document (SL_ERR_PARSE with the reasons in
 * diag when it is broken or followed by another). *doc NULL for no
 * document at all. */
sl_status codec_parse_one(sl_codec_doc **doc, const char *data, size_t len, const char *filename,
                          bool json, sl_diag *diag);

/* --- String builder ----------------------------------------------------- */

typedef struct codec_sb {
    char *buf; /* NUL-terminated when not NULL */
    size_t len;
    size_t cap;
    bool oom;  /* an append failed; the content is incomplete */
} codec_sb;

void codec_sb_init(codec_sb *sb);
void codec_sb_deinit(codec_sb *sb);
void codec_sb_putn(codec_sb *sb, const char *s, size_t n);
void codec_sb_puts(codec_sb *sb, const char *s);
void codec_sb_putc(codec_sb *sb, char c);
void codec_sb_printf(codec_sb *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void codec_sb_truncate(codec_sb *sb, size_t len);
/* The text so far ("" when empty), valid until the next change. */
const char *codec_sb_str(const codec_sb *sb);
/* Hands the buffer to the caller (malloc'd; "" allocated when empty). */
char *codec_sb_steal(codec_sb *sb, size_t *len);

/* Appends a path segment for a mapping key: ".key" when the key reads as
 * an identifier, ["key"] otherwise. */
void codec_sb_path_key(codec_sb *sb, const char *key);

/* --- Scalars --------------------------------------------------------------- */

typedef enum codec_num {
    CODEC_NUM_OK = 0,
    CODEC_NUM_SYNTAX,
    CODEC_NUM_RANGE,
} codec_num;

codec_num codec_parse_int64(const char *s, int64_t *out);
codec_num codec_parse_uint64(const char *s, uint64_t *out);
/* Decimal or exponent numbers, and NaN, Infinity, -Infinity, .nan, .inf,
 * -.inf. RANGE for finite text that overflows. *special is set when the text
 * was one of the non-finite spellings. */
codec_num codec_parse_double(const char *s, double *out, bool *special);
/* true/True/TRUE/false/False/FALSE. */
bool codec_parse_bool(const char *s, bool *out);

/* Shortest text that reads back as the same value (finite values only). */
void codec_format_double(char *buf, size_t size, double v);
void codec_format_float(char *buf, size_t size, float v);

/* Base64, standard or URL-safe alphabet, padding optional. *out is
 * allocated with alloc (NULL when the data is empty). */
bool codec_base64_decode(const char *s, size_t len, ProtobufCAllocator *alloc, uint8_t **out,
                         size_t *out_len, bool *nomem);
void codec_base64_encode(codec_sb *sb, const uint8_t *data, size_t len);

/* google.protobuf.Duration: "-1.5s"; validates the range. */
#define CODEC_DURATION_MAX_SECONDS INT64_C(315576000000)
codec_num codec_parse_duration(const char *s, int64_t *seconds, int32_t *nanos);
bool codec_duration_valid(int64_t seconds, int32_t nanos);
/* Writes "1.5s" (fraction without trailing zeros); false when invalid. */
bool codec_format_duration(char *buf, size_t size, int64_t seconds, int32_t nanos);

/* google.protobuf.Timestamp: RFC 3339, years 0001 to 9999. */
#define CODEC_TIMESTAMP_MIN INT64_C(-62135596800)
#define CODEC_TIMESTAMP_MAX INT64_C(253402300799)
codec_num codec_parse_timestamp(const char *s, int64_t *seconds, int32_t *nanos);
bool codec_timestamp_valid(int64_t seconds, int32_t nanos);
/* Writes "2024-01-02T03:04:05.500Z" (0, 3, 6 or 9 fraction digits). */
bool codec_format_timestamp(char *buf, size_t size, int64_t seconds, int32_t nanos);

/* --- Descriptors ------------------------------------------------------------ */

typedef enum codec_wkt {
    CODEC_WKT_NONE = 0,
    CODEC_WKT_ANY,
    CODEC_WKT_DURATION,
    CODEC_WKT_TIMESTAMP,
    CODEC_WKT_STRUCT,
    CODEC_WKT_VALUE,
    CODEC_WKT_LIST,
    CODEC_WKT_WRAPPER, /* google.protobuf.*Value: one field, "value" */
} codec_wkt;

codec_wkt codec_wkt_of(const ProtobufCMessageDescriptor *desc);

/* A repeated field protoc generated for a map<,>: its entry message has
 * "key" (1) and "value" (2) and is named <FieldInCamel>Entry. */
bool codec_is_map(const ProtobufCFieldDescriptor *f);

/* protobuf-c's own test of whether pack() writes a singular field. */
bool codec_field_present(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f);

/* Size of one element of a repeated field of this type. */
size_t codec_elem_size(ProtobufCType type);

/* Compares a key with a proto field name as protoc's json_name would spell
 * it, without building the name. */
bool codec_json_name_eq(const char *proto_name, const char *key);

/* Allocation through a ProtobufCAllocator; NULL means malloc/free, as in
 * protobuf-c. */
void *codec_alloc(ProtobufCAllocator *a, size_t n);
void codec_free(ProtobufCAllocator *a, void *p);

static inline void *codec_member(const void *msg, size_t offset)
{
    return (char *)msg + offset;
}

#endif
