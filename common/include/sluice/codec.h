/* sluice/codec.h - YAML and JSON to any protobuf-c message, and back.
 *
 * Everything is driven by protobuf-c descriptors, so the same code reads
 * Sluice's resources and Envoy's. The mapping is proto3 JSON
 * (https://protobuf.dev/programming-guides/proto3/#json):
 *
 *   - field names as lowerCamelCase (protoc's json_name: drop '_' and
 *     uppercase the next letter) or as written in the .proto;
 *   - enums by name or number; 64-bit integers as numbers or strings;
 *     bytes as base64 (standard or URL-safe, padding optional); floats also
 *     as "NaN", "Infinity", "-Infinity" (and YAML's .nan, .inf, -.inf);
 *   - null (and YAML's ~ or an empty value) leaves a field unset;
 *   - maps as mappings; oneofs accept one member only;
 *   - well-known types: wrappers as bare scalars, Duration as "1.5s",
 *     Timestamp as RFC 3339, Struct/Value/ListValue as any YAML, Any as a
 *     mapping with "@type" (and "value" when the packed type is itself a
 *     well-known type with a special form). Duration, Timestamp and the
 *     wrappers also accept their plain message form ({seconds: 1}).
 *
 * In YAML, a plain scalar is accepted for a string field as its text
 * (`name: 8080` is the string "8080"); a quoted scalar is always a string.
 * Anchors and aliases work (an alias is not copied; the nodes aliases add
 * are capped at a million per document), and so do merge keys
 * (`<<: *defaults`, or a list of sources: the mapping's own keys win, then
 * earlier sources). Tags are ignored except !!str, which makes a string.
 * JSON is read through the same YAML 1.1 parser (JSON is valid flow YAML),
 * which keeps a line:column for every node; tabs between tokens and UTF-16
 * surrogate pair escapes (\ud83d\ude00), which YAML lacks, are rewritten
 * first without moving reported positions. Limits that follow from YAML: an
 * object key longer than 1024 characters is a syntax error, and the parser
 * is lenient about some non-JSON (unquoted strings).
 *
 * Decoding reports every problem of a document in one pass into an sl_diag
 * list, each item with file:line:column, the field path as the user wrote it
 * (rooted at options.root_name) and what was expected:
 *
 *   unknown field 'retris' in VirtualService.spec.virtualHost.routes[0].options; did you mean 'retries'?
 *   VirtualService.spec.virtualHost.domains: expected a list of strings, got a mapping
 *
 * Nothing here keeps global mutable state: every call may run concurrently
 * with any other on different data.
 */
#ifndef SLUICE_CODEC_H
#define SLUICE_CODEC_H

#include <stdbool.h>
#include <stddef.h>

#include <protobuf-c/protobuf-c.h>

#include "sluice/diag.h"
#include "sluice/status.h"

/* Deepest nesting of mappings and lists (the top-level mapping is level 1)
 * a document or an encoded message may have; deeper input is an error, not
 * a stack overflow. */
#define SL_CODEC_MAX_DEPTH 100

/* Most errors one decode reports; past that it stops with "too many errors". */
#define SL_CODEC_MAX_ERRORS 200

/* Finds the descriptor of the message a google.protobuf.Any type URL names
 * ("type.googleapis.com/envoy.config.listener.v3.Listener"), or NULL.
 * sl_types_find_url() from sluice/types.h fits. Must be thread safe if the
 * codec is used from several threads. */
typedef const ProtobufCMessageDescriptor *(*sl_codec_resolver)(const char *type_url);

/* Encoding flags. */
enum {
    SL_CODEC_JSON_COMPACT = 1 << 0, /* JSON on one line, no spaces */
};

/* Options of every call. A zeroed struct is the default; it is only read
 * during the call. */
typedef struct sl_codec_options {
    /* Decoding: the first element of field paths in diagnostics
     * ("VirtualService"). NULL: the message's short name ("Listener"). */
    const char *root_name;
    /* Decoding: the file name diagnostics carry. NULL: "<input>". */
    const char *filename;
    /* Decoding: where every part of the decoded message is allocated.
     * NULL: malloc. Without an arena, free the result with
     * protobuf_c_message_free_unpacked(msg, allocator). */
    ProtobufCAllocator *allocator;
    /* Decoding and encoding of google.protobuf.Any. NULL: an Any with a
     * type is an error ("no type resolver"). */
    sl_codec_resolver resolver;
    /* Decoding: NULL-terminated list of keys of the top-level mapping to
     * skip ("apiVersion", "kind", "metadata"); NULL for none. */
    const char *const *ignore_keys;
    /* Decoding: report unknown fields as warnings (and skip them) instead
     * of errors. */
    bool unknown_fields_warn;
    /* Encoding: SL_CODEC_* flags. */
    unsigned flags;
} sl_codec_options;

/* --- Decoding one document --------------------------------------------- */

/* Decodes a YAML document (one; a stream with more is an error) into a new
 * message of type desc. On SL_OK *out is the message (warnings may be in
 * diag); on failure *out is NULL, every problem found is in diag (which may
 * be NULL: the first error is then only in the error context), and the
 * status is SL_ERR_PARSE (bad input), SL_ERR_NOMEM or SL_ERR_INVALID (bad
 * arguments). An empty document decodes to a message with every field unset.
 * The input need not be NUL-terminated and is not referenced afterwards. */
sl_status sl_codec_decode_yaml(ProtobufCMessage **out, const ProtobufCMessageDescriptor *desc,
                               const char *data, size_t len, const sl_codec_options *opts,
                               sl_diag *diag);

/* The same for JSON text: an empty text is an error, and messages name
 * JSON's types ("expected an object, got an array"). */
sl_status sl_codec_decode_json(ProtobufCMessage **out, const ProtobufCMessageDescriptor *desc,
                               const char *data, size_t len, const sl_codec_options *opts,
                               sl_diag *diag);

/* --- Multi-document YAML streams --------------------------------------- */

typedef struct sl_codec_stream sl_codec_stream;
typedef struct sl_codec_doc sl_codec_doc;

/* Starts reading a YAML stream ("---"-separated documents). The stream keeps
 * its own copy of data; filename (NULL: "<input>") is used in diagnostics.
 * Free with sl_codec_stream_free(). */
sl_status sl_codec_stream_new(sl_codec_stream **out, const char *data, size_t len,
                              const char *filename);

/* Parses the next document. SL_OK with *doc set: a document, owned by the
 * caller (sl_codec_doc_free()); SL_OK with *doc NULL: the end of the stream.
 * SL_ERR_PARSE: this document is broken, the reasons are in diag (may be
 * NULL) and *doc is NULL; after a YAML syntax error the stream ends, after
 * other errors (nesting too deep, an unknown alias) reading goes on with the
 * next document. */
sl_status sl_codec_stream_next(sl_codec_stream *s, sl_codec_doc **doc, sl_diag *diag);

/* Frees the stream; documents already returned stay valid. NULL is fine. */
void sl_codec_stream_free(sl_codec_stream *s);

/* The 1-based line where the document starts (its "---" when it has one). */
unsigned sl_codec_doc_line(const sl_codec_doc *doc);

/* True when the document has no content (only comments, or a bare "---"). */
bool sl_codec_doc_empty(const sl_codec_doc *doc);

/* The document's nodes (scalars, mapping keys among them, lists and
 * mappings), each alias counted as the nodes it stands for (saturating at
 * SIZE_MAX): a measure of the work decoding it takes. 0 when the document
 * has no content at all. */
size_t sl_codec_doc_nodes(const sl_codec_doc *doc);

/* The text of a scalar in the document reached by a dotted path of mapping
 * keys ("kind", "metadata.name"), or NULL when there is no such scalar (or
 * it is null). Valid as long as the document. */
const char *sl_codec_doc_scalar(const sl_codec_doc *doc, const char *dotted_path);

/* Decodes a document into a new message; as sl_codec_decode_yaml(). The
 * file name comes from the stream unless opts->filename is set. A document
 * may be decoded any number of times, into different types. */
sl_status sl_codec_decode_doc(ProtobufCMessage **out, const ProtobufCMessageDescriptor *desc,
                              const sl_codec_doc *doc, const sl_codec_options *opts,
                              sl_diag *diag);

void sl_codec_doc_free(sl_codec_doc *doc);

/* --- Encoding ---------------------------------------------------------- */

/* Writes msg as proto3 JSON: lowerCamelCase names in descriptor order,
 * fields with default values left out (except oneof members and present
 * sub-messages), enums by name, 64-bit integers as strings, Any with "@type"
 * through opts->resolver. Pretty-printed with two-space indentation and a
 * final newline unless SL_CODEC_JSON_COMPACT. *out is a NUL-terminated
 * malloc'd string the caller frees, *len (may be NULL) its length.
 * SL_ERR_NOT_FOUND for an Any whose type cannot be resolved, SL_ERR_INVALID
 * for a message proto3 JSON cannot express (a Value with no kind, or a
 * non-finite number in a Value), with the field path in the error context. */
sl_status sl_codec_encode_json(char **out, size_t *len, const ProtobufCMessage *msg,
                               const sl_codec_options *opts);

/* The same content as block-style YAML (64-bit integers as plain numbers,
 * strings quoted only where YAML needs it). */
sl_status sl_codec_encode_yaml(char **out, size_t *len, const ProtobufCMessage *msg,
                               const sl_codec_options *opts);

/* --- Helpers shared with other validators ------------------------------ */

/* protoc's json_name of a proto field name ("per_try_timeout" ->
 * "perTryTimeout") into buf (size bytes, NUL-terminated, truncated). */
void sl_codec_json_name(char *buf, size_t size, const char *proto_name);

/* Optimal string alignment (Damerau-Levenshtein) distance, ASCII case
 * folded; SIZE_MAX when either string is longer than 128 bytes. */
size_t sl_codec_distance(const char *a, const char *b);

#endif
