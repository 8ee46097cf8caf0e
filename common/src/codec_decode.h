/* codec_decode.h - what the decoder's files share: the state of one decode
 * and the functions one file calls in another. Private to
 * common/src/codec_decode*.c:
 *   codec_decode.c       scalars, lists, maps and messages; the entry points
 *   codec_decode_diag.c  diagnostics, names of what was found and expected,
 *                        the field path and the nesting depth
 *   codec_decode_wkt.c   google.protobuf.Value, Duration, Timestamp and Any */
#ifndef SLUICE_CODEC_DECODE_H
#define SLUICE_CODEC_DECODE_H

#include "codec_internal.h"

#include "sluice/diag.h"

typedef enum codec_vres {
    CODEC_V_ERR = 0, /* nothing stored; the problem was reported */
    CODEC_V_SET,     /* stored (perhaps partially: problems inside were reported) */
    CODEC_V_NULL,    /* null: nothing stored, the field stays unset */
} codec_vres;

/* One decode: lives on sl_codec_decode_*'s stack. */
typedef struct codec_dec {
    const sl_codec_options *opts;
    ProtobufCAllocator *alloc; /* where the result goes; NULL: malloc */
    sl_diag *diag;
    const char *file;
    bool json;
    const codec_node *root_map; /* the mapping ignore_keys apply to */
    codec_sb path;
    unsigned depth;
    size_t errors;
    bool stop;  /* too many errors, or out of memory */
    bool nomem;
} codec_dec;

static inline const ProtobufCFieldDescriptor *codec_dec_field_named(const ProtobufCMessage *m,
                                                                    const char *name)
{
    return protobuf_c_message_descriptor_get_field_by_name(m->descriptor, name);
}

/* --- codec_decode_diag.c ------------------------------------------------------ */

/* Out of memory: the decode stops. */
void codec_dec_oom(codec_dec *d);

/* A diagnostic whose message is exactly fmt (the path goes where the
 * sentence wants it). */
void codec_dec_report(codec_dec *d, sl_diag_severity sev, const codec_node *at, const char *path,
                      const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* An error about the value at the current path: "<path>: <message>". */
void codec_dec_err(codec_dec *d, const codec_node *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* "a mapping", "a list", "null", or the scalar quoted (shortened). */
void codec_dec_describe(const codec_dec *d, const codec_node *n, char *buf, size_t size);

/* "a mapping" / "mappings", or "an object" / "objects" in JSON. */
const char *codec_dec_map_noun(const codec_dec *d, bool plural);

/* What a value of message type desc is written as ("a duration such as ..."). */
void codec_dec_message_noun(const codec_dec *d, const ProtobufCMessageDescriptor *desc,
                            bool plural, char *buf, size_t size);

/* "<path>: expected <what>, got <found>"; CODEC_V_ERR. */
codec_vres codec_dec_mismatch(codec_dec *d, const codec_node *n, const char *what);

/* The same with what a value of field f is written as. */
codec_vres codec_dec_field_mismatch(codec_dec *d, const codec_node *n,
                                    const ProtobufCFieldDescriptor *f);

/* The same for a repeated field: "a list of ...". */
void codec_dec_list_mismatch(codec_dec *d, const codec_node *n, const ProtobufCFieldDescriptor *f);

/* Appends a key (".key" for a field, else as codec_sb_path_key) or an
 * index to the path; returns the mark codec_dec_pop takes back to. */
size_t codec_dec_push_key(codec_dec *d, const char *key, bool field);
size_t codec_dec_push_index(codec_dec *d, size_t i);
void codec_dec_pop(codec_dec *d, size_t mark);

/* Entering a mapping or list; false (reported) past the depth limit. */
bool codec_dec_enter(codec_dec *d, const codec_node *n);
void codec_dec_leave(codec_dec *d);

/* --- codec_decode.c --------------------------------------------------------- */

/* A message or string in d->alloc; NULL when out of memory (noted in d). */
ProtobufCMessage *codec_dec_new_message(codec_dec *d, const ProtobufCMessageDescriptor *desc);
char *codec_dec_copy_string(codec_dec *d, const char *s, size_t n);

/* One value of field f (a singular field, or one element of a repeated
 * one) into dst, which points at its storage. */
codec_vres codec_dec_value(codec_dec *d, const codec_node *n, const ProtobufCFieldDescriptor *f,
                           void *dst);

/* A new message of type desc from n into *out. */
codec_vres codec_dec_message(codec_dec *d, const codec_node *n,
                             const ProtobufCMessageDescriptor *desc, ProtobufCMessage **out);

/* Node n (of a fitting shape) into the initialised message m. */
void codec_dec_into(codec_dec *d, const codec_node *n, ProtobufCMessage *m);

/* The fields of msg from mapping m. skip_type: the mapping is an Any's,
 * whose "@type" is not a field. */
void codec_dec_fields(codec_dec *d, const codec_node *m, ProtobufCMessage *msg, bool skip_type);

/* Checks pair i of mapping m: false (reported) when it must be skipped. */
bool codec_dec_usable_pair(codec_dec *d, const codec_node *m, size_t i);

/* Marks singular field f of msg as set (its oneof case or has_ flag). */
void codec_dec_set_present(ProtobufCMessage *msg, const ProtobufCFieldDescriptor *f);

/* --- codec_decode_wkt.c ----------------------------------------------------- */

/* google.protobuf.Value from any node. */
void codec_dec_struct_value(codec_dec *d, const codec_node *n, ProtobufCMessage *m);

/* Duration and Timestamp (wkt says which), from a string or their fields. */
void codec_dec_time(codec_dec *d, const codec_node *n, ProtobufCMessage *m, codec_wkt wkt);

/* google.protobuf.Any from its mapping: "@type" and the content. */
void codec_dec_any(codec_dec *d, const codec_node *n, ProtobufCMessage *any);

#endif
