/* codec_decode_wkt.c - the well-known types whose JSON form is not a mapping
 * of their fields: google.protobuf.Value, Duration and Timestamp from their
 * strings, Any with its "@type". */
#include "codec_decode.h"

#include <math.h>
#include <string.h>

/* google.protobuf.Value from any node. */
void codec_dec_struct_value(codec_dec *d, const codec_node *n, ProtobufCMessage *m)
{
    const char *which;
    const ProtobufCFieldDescriptor *f;
    void *dst;

    if (n->kind == CODEC_MAP)
        which = "struct_value";
    else if (n->kind == CODEC_SEQ)
        which = "list_value";
    else if (codec_is_null(n))
        which = "null_value";
    else if (n->quoted)
        which = "string_value";
    else {
        /* A plain scalar reads as YAML's core schema: bool, number, else a
         * string. */
        bool b, special;
        double v;
        codec_num r;
        which = "string_value";
        if (codec_parse_bool(n->text, &b)) {
            which = "bool_value";
        } else if ((r = codec_parse_double(n->text, &v, &special)) != CODEC_NUM_SYNTAX) {
            if (r == CODEC_NUM_RANGE || special || !isfinite(v)) {
                codec_dec_err(d, n,
                              "%s is not a finite number; google.protobuf.Value cannot hold it",
                              n->text);
                return;
            }
            which = "number_value";
        }
    }
    f = codec_dec_field_named(m, which);
    if (!f)
        return;
    dst = codec_member(m, f->offset);
    if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
        if (codec_dec_message(d, n, f->descriptor, dst) != CODEC_V_SET)
            return;
    } else if (f->type == PROTOBUF_C_TYPE_ENUM) {
        *(int32_t *)dst = 0; /* NULL_VALUE */
    } else if (codec_dec_value(d, n, f, dst) != CODEC_V_SET) {
        return;
    }
    codec_dec_set_present(m, f);
}

/* Duration and Timestamp from their string forms. */
static void dec_time(codec_dec *d, const codec_node *n, ProtobufCMessage *m, codec_wkt wkt)
{
    const ProtobufCFieldDescriptor *fs = codec_dec_field_named(m, "seconds");
    const ProtobufCFieldDescriptor *fn = codec_dec_field_named(m, "nanos");
    int64_t secs = 0;
    int32_t nanos = 0;
    codec_num r;

    if (!fs || !fn)
        return;
    if (wkt == CODEC_WKT_DURATION)
        r = codec_parse_duration(n->text, &secs, &nanos);
    else
        r = codec_parse_timestamp(n->text, &secs, &nanos);
    if (r == CODEC_NUM_SYNTAX) {
        char what[64];
        codec_dec_message_noun(d, m->descriptor, false, what, sizeof(what));
        codec_dec_mismatch(d, n, what);
        return;
    }
    if (r == CODEC_NUM_RANGE) {
        if (wkt == CODEC_WKT_DURATION)
            codec_dec_err(d, n, "duration \"%s\" is out of range (at most %llds either way)",
                          n->text, (long long)CODEC_DURATION_MAX_SECONDS);
        else
            codec_dec_err(d, n, "timestamp \"%s\" is out of range (years 0001 to 9999)", n->text);
        return;
    }
    *(int64_t *)codec_member(m, fs->offset) = secs;
    *(int32_t *)codec_member(m, fn->offset) = nanos;
}

/* The message form of a Duration or Timestamp must still be valid. */
static void check_time(codec_dec *d, const codec_node *n, const ProtobufCMessage *m, codec_wkt wkt)
{
    const ProtobufCFieldDescriptor *fs = codec_dec_field_named(m, "seconds");
    const ProtobufCFieldDescriptor *fn = codec_dec_field_named(m, "nanos");
    int64_t secs;
    int32_t nanos;

    if (!fs || !fn)
        return;
    secs = *(const int64_t *)codec_member(m, fs->offset);
    nanos = *(const int32_t *)codec_member(m, fn->offset);
    if (wkt == CODEC_WKT_DURATION && !codec_duration_valid(secs, nanos))
        codec_dec_err(d, n,
                      "invalid duration: seconds must be within +-%lld, nanos within +-999999999, "
                      "both of the same sign",
                      (long long)CODEC_DURATION_MAX_SECONDS);
    else if (wkt == CODEC_WKT_TIMESTAMP && !codec_timestamp_valid(secs, nanos))
        codec_dec_err(d, n,
                      "invalid timestamp: it must lie in years 0001 to 9999, nanos within 0 to "
                      "999999999");
}

/* The pair of mapping m whose key is name (ignoring repeats), or -1. */
static long find_pair(const codec_node *m, const char *name)
{
    for (size_t i = 0; i < m->n; i++) {
        const codec_node *k = m->items[2 * i];
        if (k->kind == CODEC_SCALAR && !(m->dups && m->dups[i]) && strcmp(k->text, name) == 0)
            return (long)i;
    }
    return -1;
}

/* Is this a type whose JSON form is not a mapping of its fields? Such a
 * type packed in an Any goes under "value". */
static bool special_form(const ProtobufCMessageDescriptor *desc)
{
    codec_wkt w = codec_wkt_of(desc);
    return w != CODEC_WKT_NONE;
}

void codec_dec_any(codec_dec *d, const codec_node *n, ProtobufCMessage *any)
{
    const ProtobufCFieldDescriptor *furl = codec_dec_field_named(any, "type_url"),
                                   *fval = codec_dec_field_named(any, "value");
    const ProtobufCMessageDescriptor *idesc;
    ProtobufCAllocator *saved = d->alloc;
    ProtobufCMessage *inner = NULL;
    const codec_node *tnode;
    size_t before = d->errors;
    long t = find_pair(n, "@type");

    if (!furl || !fval)
        return;
    if (t < 0) {
        if (n->n > 0)
            codec_dec_err(d, n,
                          "missing '@type': a google.protobuf.Any names the type of its content");
        return;
    }
    tnode = n->items[2 * t + 1];
    if (tnode->kind != CODEC_SCALAR || codec_is_null(tnode) || tnode->n == 0 ||
        strlen(tnode->text) != tnode->n) {
        size_t mark = codec_dec_push_key(d, "@type", true);
        codec_dec_mismatch(d, tnode, "a type URL");
        codec_dec_pop(d, mark);
        return;
    }
    if (!d->opts->resolver) {
        codec_dec_err(d, tnode, "cannot decode google.protobuf.Any of type '%s': no type resolver",
                      tnode->text);
        return;
    }
    idesc = d->opts->resolver(tnode->text);
    if (!idesc) {
        codec_dec_err(d, tnode, "unknown type '%s' in '@type'", tnode->text);
        return;
    }
    /* The content is packed and thrown away: it lives in malloc'd memory,
     * not in the caller's allocator. */
    d->alloc = NULL;
    inner = codec_dec_new_message(d, idesc);
    if (!inner)
        goto out;
    if (special_form(idesc)) {
        for (size_t i = 0; i < n->n; i++) {
            const codec_node *k = n->items[2 * i];
            if ((long)i == t || (n->dups && n->dups[i]))
                continue;
            if (k->kind == CODEC_SCALAR && strcmp(k->text, "value") == 0) {
                size_t mark = codec_dec_push_key(d, "value", true);
                codec_dec_into(d, n->items[2 * i + 1], inner);
                codec_dec_pop(d, mark);
            } else if (codec_dec_usable_pair(d, n, i)) {
                codec_dec_report(d, d->opts->unknown_fields_warn ? SL_DIAG_WARNING : SL_DIAG_ERROR,
                                 k, codec_sb_str(&d->path),
                                 "unknown field '%s' in %s; an Any of %s holds it in 'value'",
                                 k->text, codec_sb_str(&d->path), idesc->name);
            }
        }
    } else {
        codec_dec_fields(d, n, inner, true);
    }
    if (d->errors == before && !d->stop) {
        size_t size = protobuf_c_message_get_packed_size(inner);
        uint8_t *buf = codec_alloc(saved, size);
        char *url = NULL;
        if (buf) {
            d->alloc = saved;
            url = codec_dec_copy_string(d, tnode->text, tnode->n);
        }
        if (!buf || !url) {
            codec_free(saved, buf);
            codec_dec_oom(d);
            goto out;
        }
        protobuf_c_message_pack(inner, buf);
        *(char **)codec_member(any, furl->offset) = url;
        ((ProtobufCBinaryData *)codec_member(any, fval->offset))->data = size ? buf : NULL;
        ((ProtobufCBinaryData *)codec_member(any, fval->offset))->len = size;
        if (!size)
            codec_free(saved, buf);
    }
out:
    d->alloc = saved;
    protobuf_c_message_free_unpacked(inner, NULL);
}

/* Duration and Timestamp, from a string or from their fields. */
void codec_dec_time(codec_dec *d, const codec_node *n, ProtobufCMessage *m, codec_wkt wkt)
{
    if (n->kind == CODEC_SCALAR) {
        dec_time(d, n, m, wkt);
    } else {
        size_t before = d->errors;
        codec_dec_fields(d, n, m, false);
        if (d->errors == before)
            check_time(d, n, m, wkt);
    }
}
