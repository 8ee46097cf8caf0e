/* A parsed document plus a message descriptor to a protobuf-c message.
 *
 * The walk never stops at the first problem: each one becomes a diagnostic
 * and decoding goes on with the next field, so a user sees every mistake of
 * a document at once. Whatever was decoded stays consistent enough for
 * protobuf_c_message_free_unpacked(), which is how a failed decode is
 * undone. This file walks scalars, lists, maps and messages; what is said
 * about a value is in codec_decode_diag.c, the well-known types in
 * codec_decode_wkt.c (codec_decode.h). */
#include "codec_decode.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Largest distance at which an unknown name gets a "did you mean". */
static size_t suggest_limit(size_t len)
{
    return len <= 3 ? 1 : len <= 8 ? 2 : 3;
}

/* --- Allocation --------------------------------------------------------------- */

ProtobufCMessage *codec_dec_new_message(codec_dec *d, const ProtobufCMessageDescriptor *desc)
{
    ProtobufCMessage *m = codec_alloc(d->alloc, desc->sizeof_message);

    if (!m) {
        codec_dec_oom(d);
        return NULL;
    }
    protobuf_c_message_init(desc, m);
    return m;
}

char *codec_dec_copy_string(codec_dec *d, const char *s, size_t n)
{
    char *c = codec_alloc(d->alloc, n + 1);

    if (!c) {
        codec_dec_oom(d);
        return NULL;
    }
    memcpy(c, s, n);
    c[n] = '\0';
    return c;
}

/* --- Scalars ------------------------------------------------------------------ */

static const char *type_name(ProtobufCType t)
{
    static const char *const names[] = {
        [PROTOBUF_C_TYPE_INT32] = "int32",       [PROTOBUF_C_TYPE_SINT32] = "sint32",
        [PROTOBUF_C_TYPE_SFIXED32] = "sfixed32", [PROTOBUF_C_TYPE_INT64] = "int64",
        [PROTOBUF_C_TYPE_SINT64] = "sint64",     [PROTOBUF_C_TYPE_SFIXED64] = "sfixed64",
        [PROTOBUF_C_TYPE_UINT32] = "uint32",     [PROTOBUF_C_TYPE_FIXED32] = "fixed32",
        [PROTOBUF_C_TYPE_UINT64] = "uint64",     [PROTOBUF_C_TYPE_FIXED64] = "fixed64",
        [PROTOBUF_C_TYPE_FLOAT] = "float",       [PROTOBUF_C_TYPE_DOUBLE] = "double",
        [PROTOBUF_C_TYPE_BOOL] = "bool",         [PROTOBUF_C_TYPE_ENUM] = "enum",
        [PROTOBUF_C_TYPE_STRING] = "string",     [PROTOBUF_C_TYPE_BYTES] = "bytes",
        [PROTOBUF_C_TYPE_MESSAGE] = "message",
    };

    return (unsigned)t < sizeof(names) / sizeof(names[0]) && names[t] ? names[t] : "value";
}

static codec_vres out_of_range(codec_dec *d, const codec_node *n, ProtobufCType t)
{
    codec_dec_err(d, n, "value %s is out of range for %s", n->text, type_name(t));
    return CODEC_V_ERR;
}

/* What a number's parse means for field f: CODEC_V_SET when it parsed, else
 * CODEC_V_ERR with the problem (not a number, or out of range) reported. */
static codec_vres parsed(codec_dec *d, const codec_node *n, const ProtobufCFieldDescriptor *f,
                         codec_num r)
{
    switch (r) {
    case CODEC_NUM_SYNTAX:
        return codec_dec_field_mismatch(d, n, f);
    case CODEC_NUM_RANGE:
        return out_of_range(d, n, f->type);
    case CODEC_NUM_OK:
        break;
    }
    return CODEC_V_SET;
}

static codec_vres dec_signed(codec_dec *d, const codec_node *n,
                             const ProtobufCFieldDescriptor *f, void *dst)
{
    bool is32 = codec_elem_size(f->type) == 4;
    int64_t v;
    codec_vres r = parsed(d, n, f, codec_parse_int64(n->text, &v));

    if (r != CODEC_V_SET)
        return r;
    if (is32 && (v < INT32_MIN || v > INT32_MAX))
        return out_of_range(d, n, f->type);
    if (is32)
        *(int32_t *)dst = (int32_t)v;
    else
        *(int64_t *)dst = v;
    return CODEC_V_SET;
}

static codec_vres dec_unsigned(codec_dec *d, const codec_node *n,
                               const ProtobufCFieldDescriptor *f, void *dst)
{
    bool is32 = codec_elem_size(f->type) == 4;
    uint64_t v;
    codec_vres r = parsed(d, n, f, codec_parse_uint64(n->text, &v));

    if (r != CODEC_V_SET)
        return r;
    if (is32 && v > UINT32_MAX)
        return out_of_range(d, n, f->type);
    if (is32)
        *(uint32_t *)dst = (uint32_t)v;
    else
        *(uint64_t *)dst = v;
    return CODEC_V_SET;
}

static codec_vres dec_floating(codec_dec *d, const codec_node *n,
                               const ProtobufCFieldDescriptor *f, void *dst)
{
    double v;
    bool special;
    codec_vres r = parsed(d, n, f, codec_parse_double(n->text, &v, &special));

    if (r != CODEC_V_SET)
        return r;
    if (f->type == PROTOBUF_C_TYPE_FLOAT) {
        /* Values up to half a unit in the last place past FLT_MAX still
         * round to it ("3.40282347e+38", as FLT_MAX prints, is one). */
        if (!special && fabs(v) >= (double)FLT_MAX + 0x1p103)
            return out_of_range(d, n, f->type);
        *(float *)dst = (float)v;
    } else {
        *(double *)dst = v;
    }
    return CODEC_V_SET;
}

static codec_vres dec_enum(codec_dec *d, const codec_node *n,
                           const ProtobufCFieldDescriptor *f, void *dst)
{
    const ProtobufCEnumDescriptor *ed = f->descriptor;
    const ProtobufCEnumValue *ev;
    const char *best = NULL;
    size_t best_dist = SIZE_MAX;
    int64_t v;

    /* proto3 enums are open: any int32 number is a value. */
    switch (codec_parse_int64(n->text, &v)) {
    case CODEC_NUM_OK:
        if (v < INT32_MIN || v > INT32_MAX)
            return out_of_range(d, n, f->type);
        *(int32_t *)dst = (int32_t)v;
        return CODEC_V_SET;
    case CODEC_NUM_RANGE:
        return out_of_range(d, n, f->type);
    case CODEC_NUM_SYNTAX:
        break;
    }
    ev = protobuf_c_enum_descriptor_get_value_by_name(ed, n->text);
    if (ev) {
        *(int32_t *)dst = ev->value;
        return CODEC_V_SET;
    }
    for (unsigned i = 0; i < ed->n_values; i++) {
        size_t dist = sl_codec_distance(n->text, ed->values[i].name);
        if (dist < best_dist) {
            best_dist = dist;
            best = ed->values[i].name;
        }
    }
    if (best && best_dist <= suggest_limit(strlen(n->text)))
        codec_dec_err(d, n, "unknown value '%s' for enum %s; did you mean '%s'?", n->text, ed->name,
                      best);
    else
        codec_dec_err(d, n, "unknown value '%s' for enum %s", n->text, ed->name);
    return CODEC_V_ERR;
}

static codec_vres dec_string(codec_dec *d, const codec_node *n, void *dst)
{
    char *s;

    if (strlen(n->text) != n->n) {
        codec_dec_err(d, n, "strings must not contain NUL characters");
        return CODEC_V_ERR;
    }
    s = codec_dec_copy_string(d, n->text, n->n);
    if (!s)
        return CODEC_V_ERR;
    *(char **)dst = s;
    return CODEC_V_SET;
}

static codec_vres dec_bytes(codec_dec *d, const codec_node *n,
                            const ProtobufCFieldDescriptor *f, void *dst)
{
    ProtobufCBinaryData *b = dst;
    uint8_t *data;
    size_t len;
    bool nomem;

    if (!codec_base64_decode(n->text, n->n, d->alloc, &data, &len, &nomem)) {
        if (nomem) {
            codec_dec_oom(d);
            return CODEC_V_ERR;
        }
        return codec_dec_field_mismatch(d, n, f);
    }
    b->data = data;
    b->len = len;
    return CODEC_V_SET;
}

/* One value of field f (a singular field, or one element of a repeated
 * one) into dst, which points at its storage. */
codec_vres codec_dec_value(codec_dec *d, const codec_node *n, const ProtobufCFieldDescriptor *f,
                           void *dst)
{
    if (d->stop)
        return CODEC_V_ERR;
    if (codec_is_null(n) &&
        !(f->type == PROTOBUF_C_TYPE_MESSAGE && codec_wkt_of(f->descriptor) == CODEC_WKT_VALUE))
        return CODEC_V_NULL;
    if (f->type == PROTOBUF_C_TYPE_MESSAGE)
        return codec_dec_message(d, n, f->descriptor, dst);
    if (n->kind != CODEC_SCALAR)
        return codec_dec_field_mismatch(d, n, f);
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        return dec_signed(d, n, f, dst);
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return dec_unsigned(d, n, f, dst);
    case PROTOBUF_C_TYPE_FLOAT:
    case PROTOBUF_C_TYPE_DOUBLE:
        return dec_floating(d, n, f, dst);
    case PROTOBUF_C_TYPE_BOOL: {
        bool b;
        if (!codec_parse_bool(n->text, &b))
            return codec_dec_field_mismatch(d, n, f);
        *(protobuf_c_boolean *)dst = b;
        return CODEC_V_SET;
    }
    case PROTOBUF_C_TYPE_ENUM:
        return dec_enum(d, n, f, dst);
    case PROTOBUF_C_TYPE_STRING:
        return dec_string(d, n, dst);
    case PROTOBUF_C_TYPE_BYTES:
        return dec_bytes(d, n, f, dst);
    case PROTOBUF_C_TYPE_MESSAGE:
        break;
    }
    return CODEC_V_ERR;
}

/* --- Repeated fields and maps ----------------------------------------------- */

static void dec_repeated(codec_dec *d, const codec_node *n, const ProtobufCFieldDescriptor *f,
                         ProtobufCMessage *msg)
{
    size_t esz = codec_elem_size(f->type), k = 0;
    char *arr = NULL;

    if (codec_is_null(n))
        return;
    if (n->kind != CODEC_SEQ) {
        codec_dec_list_mismatch(d, n, f);
        return;
    }
    if (!codec_dec_enter(d, n))
        return;
    if (n->n == 0)
        goto out;
    arr = codec_alloc(d->alloc, n->n * esz);
    if (!arr) {
        codec_dec_oom(d);
        goto out;
    }
    memset(arr, 0, n->n * esz);
    for (size_t i = 0; i < n->n && !d->stop; i++) {
        size_t mark = codec_dec_push_index(d, i);
        codec_vres r = codec_dec_value(d, n->items[i], f, arr + k * esz);
        if (r == CODEC_V_SET)
            k++;
        else if (r == CODEC_V_NULL)
            codec_dec_field_mismatch(d, n->items[i], f);
        codec_dec_pop(d, mark);
    }
    if (k == 0) {
        codec_free(d->alloc, arr);
        arr = NULL;
    }
    *(size_t *)codec_member(msg, f->quantifier_offset) = k;
    *(void **)codec_member(msg, f->offset) = arr;
out:
    codec_dec_leave(d);
}

static void report_dup(codec_dec *d, const codec_node *key, const codec_node *first)
{
    codec_sb path;

    codec_sb_init(&path);
    codec_sb_puts(&path, codec_sb_str(&d->path));
    codec_sb_path_key(&path, key->text);
    codec_dec_report(d, SL_DIAG_ERROR, key, codec_sb_str(&path),
                     "duplicate key '%s' in %s (first at %u:%u)", key->text,
                     codec_sb_str(&d->path), first->line, first->col);
    codec_sb_deinit(&path);
}

/* Checks one pair of a mapping: false (reported) when it must be skipped. */
bool codec_dec_usable_pair(codec_dec *d, const codec_node *m, size_t i)
{
    const codec_node *key = m->items[2 * i];

    if (m->dups && m->dups[i]) {
        report_dup(d, key, m->dups[i]);
        return false;
    }
    if (key->kind != CODEC_SCALAR) {
        char got[64];
        codec_dec_describe(d, key, got, sizeof(got));
        codec_dec_err(d, key, "keys must be strings, got %s", got);
        return false;
    }
    return true;
}

static void dec_map(codec_dec *d, const codec_node *n, const ProtobufCFieldDescriptor *f,
                    ProtobufCMessage *msg)
{
    const ProtobufCMessageDescriptor *ed = f->descriptor;
    const ProtobufCFieldDescriptor *kf = &ed->fields[0], *vf = &ed->fields[1];
    ProtobufCMessage **arr = NULL;
    size_t k = 0;

    if (codec_is_null(n))
        return;
    if (n->kind != CODEC_MAP) {
        codec_dec_mismatch(d, n, codec_dec_map_noun(d, false));
        return;
    }
    if (!codec_dec_enter(d, n))
        return;
    if (n->n == 0)
        goto out;
    arr = codec_alloc(d->alloc, n->n * sizeof(*arr));
    if (!arr) {
        codec_dec_oom(d);
        goto out;
    }
    for (size_t i = 0; i < n->n && !d->stop; i++) {
        const codec_node *key = n->items[2 * i], *val = n->items[2 * i + 1];
        ProtobufCMessage *entry;
        size_t mark;
        codec_vres r;

        if (!codec_dec_usable_pair(d, n, i))
            continue;
        entry = codec_dec_new_message(d, ed);
        if (!entry)
            break;
        arr[k++] = entry;
        mark = codec_dec_push_key(d, key->text, false);
        if (kf->type == PROTOBUF_C_TYPE_STRING)
            r = dec_string(d, key, codec_member(entry, kf->offset));
        else
            r = codec_dec_value(d, key, kf, codec_member(entry, kf->offset));
        if (r == CODEC_V_NULL) /* a null key of a non-string map */
            codec_dec_field_mismatch(d, key, kf);
        r = codec_dec_value(d, val, vf, codec_member(entry, vf->offset));
        if (r == CODEC_V_NULL)
            codec_dec_field_mismatch(d, val, vf); /* proto3 JSON: no null map values */
        codec_dec_pop(d, mark);
    }
    if (k == 0) {
        codec_free(d->alloc, arr);
        arr = NULL;
    }
    *(size_t *)codec_member(msg, f->quantifier_offset) = k;
    *(void **)codec_member(msg, f->offset) = arr;
out:
    codec_dec_leave(d);
}

/* --- Messages ------------------------------------------------------------------ */

static bool ignored_key(const codec_dec *d, const char *key)
{
    for (const char *const *k = d->opts->ignore_keys; k && *k; k++)
        if (strcmp(*k, key) == 0)
            return true;
    return false;
}

static const ProtobufCFieldDescriptor *find_field(const ProtobufCMessageDescriptor *desc,
                                                  const char *key)
{
    const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field_by_name(desc, key);

    for (unsigned i = 0; !f && i < desc->n_fields; i++)
        if (codec_json_name_eq(desc->fields[i].name, key))
            f = &desc->fields[i];
    return f;
}

static void unknown_field(codec_dec *d, const codec_node *key,
                          const ProtobufCMessageDescriptor *desc)
{
    sl_diag_severity sev = d->opts->unknown_fields_warn ? SL_DIAG_WARNING : SL_DIAG_ERROR;
    bool snake = strchr(key->text, '_') != NULL;
    const char *best = NULL;
    size_t best_dist = SIZE_MAX;
    char json[256], best_json[256] = "";
    codec_sb path;

    /* Both spellings of every field compete; the suggestion is written the
     * way the user writes names (snake_case if the key has an underscore). */
    for (unsigned i = 0; i < desc->n_fields; i++) {
        const char *name = desc->fields[i].name;
        size_t dp = sl_codec_distance(key->text, name), dj;
        sl_codec_json_name(json, sizeof(json), name);
        dj = sl_codec_distance(key->text, json);
        if (dp < best_dist || dj < best_dist) {
            best_dist = dp < dj ? dp : dj;
            best = name;
            memcpy(best_json, json, sizeof(json));
        }
    }
    codec_sb_init(&path);
    codec_sb_puts(&path, codec_sb_str(&d->path));
    codec_sb_path_key(&path, key->text);
    if (best && best_dist <= suggest_limit(strlen(key->text)))
        codec_dec_report(d, sev, key, codec_sb_str(&path),
                         "unknown field '%s' in %s; did you mean '%s'?", key->text,
                         codec_sb_str(&d->path), snake ? best : best_json);
    else
        codec_dec_report(d, sev, key, codec_sb_str(&path), "unknown field '%s' in %s", key->text,
                         codec_sb_str(&d->path));
    codec_sb_deinit(&path);
}

void codec_dec_set_present(ProtobufCMessage *msg, const ProtobufCFieldDescriptor *f)
{
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
        *(uint32_t *)codec_member(msg, f->quantifier_offset) = f->id;
    else if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->type != PROTOBUF_C_TYPE_MESSAGE &&
             f->type != PROTOBUF_C_TYPE_STRING)
        *(protobuf_c_boolean *)codec_member(msg, f->quantifier_offset) = 1;
}

/* The fields of msg from mapping m. seen[i] is the key that set field i.
 * skip_type: the mapping is an Any's, whose "@type" is not a field. */
void codec_dec_fields(codec_dec *d, const codec_node *m, ProtobufCMessage *msg, bool skip_type)
{
    const ProtobufCMessageDescriptor *desc = msg->descriptor;
    const codec_node **seen = calloc(desc->n_fields ? desc->n_fields : 1, sizeof(*seen));

    if (!seen) {
        codec_dec_oom(d);
        return;
    }
    for (size_t i = 0; i < m->n && !d->stop; i++) {
        const codec_node *key = m->items[2 * i], *val = m->items[2 * i + 1];
        const ProtobufCFieldDescriptor *f;
        size_t idx, mark;

        if (!codec_dec_usable_pair(d, m, i))
            continue;
        if ((skip_type && strcmp(key->text, "@type") == 0) ||
            (m == d->root_map && ignored_key(d, key->text)))
            continue;
        f = find_field(desc, key->text);
        if (!f) {
            unknown_field(d, key, desc);
            continue;
        }
        idx = (size_t)(f - desc->fields);
        if (seen[idx]) {
            codec_dec_report(d, SL_DIAG_ERROR, key, codec_sb_str(&d->path),
                             "duplicate field '%s' in %s (already set as '%s' at %u:%u)", key->text,
                             codec_sb_str(&d->path), seen[idx]->text, seen[idx]->line,
                             seen[idx]->col);
            continue;
        }
        seen[idx] = key;
        if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) && !codec_is_null(val)) {
            uint32_t set = *(const uint32_t *)codec_member(msg, f->quantifier_offset);
            const ProtobufCFieldDescriptor *other =
                set ? protobuf_c_message_descriptor_get_field(desc, set) : NULL;
            if (other) {
                const codec_node *ok = seen[other - desc->fields];
                codec_dec_report(d, SL_DIAG_ERROR, key, codec_sb_str(&d->path),
                                 "only one of '%s' and '%s' may be set in %s "
                                 "(members of the same oneof)",
                                 ok ? ok->text : other->name, key->text, codec_sb_str(&d->path));
                continue;
            }
        }
        mark = codec_dec_push_key(d, key->text, true);
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            if (codec_is_map(f))
                dec_map(d, val, f, msg);
            else
                dec_repeated(d, val, f, msg);
        } else if (codec_dec_value(d, val, f, codec_member(msg, f->offset)) == CODEC_V_SET) {
            codec_dec_set_present(msg, f);
        }
        codec_dec_pop(d, mark);
    }
    free(seen);
}


/* Is node n of a shape message type desc can be read from? */
static bool shape_ok(const codec_node *n, const ProtobufCMessageDescriptor *desc)
{
    switch (codec_wkt_of(desc)) {
    case CODEC_WKT_VALUE:
        return true;
    case CODEC_WKT_LIST:
        return n->kind == CODEC_SEQ;
    case CODEC_WKT_DURATION:
    case CODEC_WKT_TIMESTAMP:
    case CODEC_WKT_WRAPPER:
        return n->kind != CODEC_SEQ;
    default:
        return n->kind == CODEC_MAP;
    }
}

/* Node n (of a fitting shape) into the initialised message m. */
void codec_dec_into(codec_dec *d, const codec_node *n, ProtobufCMessage *m)
{
    codec_wkt wkt = codec_wkt_of(m->descriptor);
    /* One level per mapping or list: a Value is not one, and a Struct's
     * map and a ListValue's list count themselves. */
    bool nested = n->kind != CODEC_SCALAR && wkt != CODEC_WKT_VALUE && wkt != CODEC_WKT_STRUCT &&
                  wkt != CODEC_WKT_LIST;

    if (!shape_ok(n, m->descriptor)) {
        char what[64];
        codec_dec_message_noun(d, m->descriptor, false, what, sizeof(what));
        codec_dec_mismatch(d, n, what);
        return;
    }
    if (codec_is_null(n) && wkt != CODEC_WKT_VALUE)
        return;
    if (nested && !codec_dec_enter(d, n))
        return;
    switch (wkt) {
    case CODEC_WKT_VALUE:
        codec_dec_struct_value(d, n, m);
        break;
    case CODEC_WKT_STRUCT: {
        const ProtobufCFieldDescriptor *f = codec_dec_field_named(m, "fields");
        if (f)
            dec_map(d, n, f, m);
        break;
    }
    case CODEC_WKT_LIST: {
        const ProtobufCFieldDescriptor *f = codec_dec_field_named(m, "values");
        if (f)
            dec_repeated(d, n, f, m);
        break;
    }
    case CODEC_WKT_DURATION:
    case CODEC_WKT_TIMESTAMP:
        codec_dec_time(d, n, m, wkt);
        break;
    case CODEC_WKT_WRAPPER:
        if (n->kind == CODEC_SCALAR)
            codec_dec_value(d, n, &m->descriptor->fields[0],
                            codec_member(m, m->descriptor->fields[0].offset));
        else
            codec_dec_fields(d, n, m, false);
        break;
    case CODEC_WKT_ANY:
        codec_dec_any(d, n, m);
        break;
    case CODEC_WKT_NONE:
        codec_dec_fields(d, n, m, false);
        break;
    }
    if (nested)
        codec_dec_leave(d);
}

codec_vres codec_dec_message(codec_dec *d, const codec_node *n,
                             const ProtobufCMessageDescriptor *desc, ProtobufCMessage **out)
{
    ProtobufCMessage *m;

    if (!shape_ok(n, desc)) {
        char what[64];
        codec_dec_message_noun(d, desc, false, what, sizeof(what));
        return codec_dec_mismatch(d, n, what);
    }
    m = codec_dec_new_message(d, desc);
    if (!m)
        return CODEC_V_ERR;
    codec_dec_into(d, n, m);
    *out = m;
    return CODEC_V_SET;
}

/* --- Entry points ------------------------------------------------------------- */

static sl_status check_args(ProtobufCMessage **out, const ProtobufCMessageDescriptor *desc)
{
    if (!out)
        return sl_error_set(SL_ERR_INVALID, "codec: out is NULL");
    *out = NULL;
    if (!desc || desc->magic != PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC)
        return sl_error_set(SL_ERR_INVALID, "codec: not a message descriptor");
    return SL_OK;
}

/* Puts the first error diag got since item `from` in the error context. */
static sl_status first_error(sl_status st, const sl_diag *diag, size_t from, const char *file)
{
    for (size_t i = from; i < sl_diag_count(diag); i++) {
        const sl_diag_item *it = sl_diag_get(diag, i);
        if (it->severity == SL_DIAG_ERROR) {
            char line[1024];
            sl_diag_format(line, sizeof(line), it);
            return sl_error_set(st, "%s", line);
        }
    }
    return sl_error_set(st, "codec: %s could not be decoded", file);
}

static sl_status decode_doc(ProtobufCMessage **out, const ProtobufCMessageDescriptor *desc,
                            const sl_codec_doc *doc, bool json, const char *doc_file,
                            const sl_codec_options *opts, sl_diag *diag)
{
    static const sl_codec_options defaults;
    const codec_node *root = doc ? doc->root : NULL;
    size_t from = sl_diag_count(diag);
    ProtobufCMessage *m = NULL;
    sl_status st = SL_OK;
    codec_dec d = {
        .opts = opts ? opts : &defaults,
        .diag = diag,
        .json = json,
    };

    d.alloc = d.opts->allocator;
    d.file = d.opts->filename ? d.opts->filename : doc_file;
    codec_sb_init(&d.path);
    codec_sb_puts(&d.path, d.opts->root_name ? d.opts->root_name : desc->short_name);
    m = codec_dec_new_message(&d, desc);
    if (!m)
        goto out;
    if (json && !root) {
        char what[64];
        codec_dec_message_noun(&d, desc, false, what, sizeof(what));
        codec_dec_report(&d, SL_DIAG_ERROR, NULL, codec_sb_str(&d.path),
                         "%s: expected %s, got an empty document", codec_sb_str(&d.path), what);
    } else if (root) {
        d.root_map = root->kind == CODEC_MAP ? root : NULL;
        codec_dec_into(&d, root, m);
    }
out:
    if (d.nomem || d.path.oom) {
        st = sl_error_set(SL_ERR_NOMEM, "codec: out of memory decoding %s", d.file);
    } else if (d.errors) {
        st = first_error(SL_ERR_PARSE, diag, from, d.file);
    } else {
        *out = m;
        m = NULL;
    }
    if (m)
        protobuf_c_message_free_unpacked(m, d.alloc);
    codec_sb_deinit(&d.path);
    return st;
}

/* Parses and decodes one document; diag may be NULL. */
static sl_status decode_text(ProtobufCMessage **out, const ProtobufCMessageDescriptor *desc,
                             const char *data, size_t len, const sl_codec_options *opts,
                             sl_diag *diag, bool json)
{
    const char *file = opts && opts->filename ? opts->filename : "<input>";
    sl_codec_doc *doc = NULL;
    sl_diag local;
    size_t from;
    sl_status st;

    sl_diag_init(&local);
    if (!diag)
        diag = &local;
    from = sl_diag_count(diag);
    st = check_args(out, desc);
    if (st != SL_OK)
        goto out;
    st = codec_parse_one(&doc, data, len, file, json, diag);
    if (st == SL_ERR_PARSE)
        st = first_error(st, diag, from, file);
    if (st != SL_OK)
        goto out;
    st = decode_doc(out, desc, doc, json, file, opts, diag);
out:
    sl_codec_doc_free(doc);
    sl_diag_deinit(&local);
    return st;
}

sl_status sl_codec_decode_yaml(ProtobufCMessage **out, const ProtobufCMessageDescriptor *desc,
                               const char *data, size_t len, const sl_codec_options *opts,
                               sl_diag *diag)
{
    return decode_text(out, desc, data, len, opts, diag, false);
}

sl_status sl_codec_decode_json(ProtobufCMessage **out, const ProtobufCMessageDescriptor *desc,
                               const char *data, size_t len, const sl_codec_options *opts,
                               sl_diag *diag)
{
    return decode_text(out, desc, data, len, opts, diag, true);
}

sl_status sl_codec_decode_doc(ProtobufCMessage **out, const ProtobufCMessageDescriptor *desc,
                              const sl_codec_doc *doc, const sl_codec_options *opts,
                              sl_diag *diag)
{
    sl_diag local;
    sl_status st;

    sl_diag_init(&local);
    st = check_args(out, desc);
    if (st == SL_OK && !doc)
        st = sl_error_set(SL_ERR_INVALID, "codec: doc is NULL");
    if (st == SL_OK)
        st = decode_doc(out, desc, doc, doc->json, doc->filename, opts, diag ? diag : &local);
    sl_diag_deinit(&local);
    return st;
}
