/* A protobuf-c message to proto3 JSON or to YAML.
 *
 * One walk over the message drives a writer with two implementations: a
 * hand-written JSON printer and libyaml's emitter. Fields come out in
 * descriptor order and are left out exactly when protobuf-c's pack() would
 * leave them out, so decoding the text packs to the same bytes. */
#include "codec_internal.h"
#include "sluice/pbcheck.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

typedef enum skind {
    SK_STRING,
    SK_NUMBER,
    SK_INT64, /* a string in JSON (proto3), a number in YAML */
    SK_BOOL,
    SK_NULL,
    SK_NAN,
    SK_INF,
    SK_NINF,
} skind;

typedef struct writer writer;
struct writer {
    bool (*begin)(writer *w, bool map);
    bool (*end)(writer *w, bool map);
    bool (*key)(writer *w, const char *key);
    bool (*scalar)(writer *w, skind kind, const char *text);
};

/* --- UTF-8 --------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at s, or 0. */
static size_t utf8_seq(const unsigned char *s)
{
    unsigned c = s[0];
    size_t n;
    unsigned min, cp;

    if (c < 0x80)
        return 1;
    if ((c & 0xe0) == 0xc0) {
        n = 2;
        min = 0x80;
        cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
        n = 3;
        min = 0x800;
        cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
        n = 4;
        min = 0x10000;
        cp = c & 0x07;
    } else {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

/* s with every invalid byte replaced by U+FFFD (strings from the wire need
 * not be UTF-8; text output must be). */
static void utf8_clean(codec_sb *out, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;

    while (*p) {
        size_t n = utf8_seq(p);
        if (n) {
            codec_sb_putn(out, (const char *)p, n);
            p += n;
        } else {
            codec_sb_puts(out, "\xef\xbf\xbd");
            p++;
        }
    }
}

/* The code point of the valid UTF-8 sequence at s (n bytes). */
static unsigned utf8_decode(const unsigned char *s, size_t n)
{
    unsigned cp = n == 1 ? s[0] : n == 2 ? s[0] & 0x1fu : n == 3 ? s[0] & 0x0fu : s[0] & 0x07u;

    for (size_t i = 1; i < n; i++)
        cp = (cp << 6) | (s[i] & 0x3fu);
    return cp;
}

/* Characters YAML does not take raw inside a quoted scalar: C0 and C1
 * controls, DEL, the Unicode line breaks (folded like newlines) and the
 * non-characters and BOM its reader refuses. They must be escaped. */
static bool must_escape(unsigned cp)
{
    return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || cp == 0x2028 || cp == 0x2029 ||
           cp == 0xfeff || cp == 0xfffe || cp == 0xffff;
}

/* --- JSON writer ------------------------------------------------------------ */

typedef struct json_writer {
    writer base;
    codec_sb sb;
    bool pretty;
    bool after_key;
    unsigned depth;
    bool first[SL_CODEC_MAX_DEPTH + 2]; /* no element yet at this level */
} json_writer;

static void jw_indent(json_writer *w)
{
    if (!w->pretty)
        return;
    codec_sb_putc(&w->sb, '\n');
    for (unsigned i = 0; i < w->depth; i++)
        codec_sb_puts(&w->sb, "  ");
}

/* Separator and indentation before a value or a key. */
static void jw_prefix(json_writer *w)
{
    if (w->after_key) {
        w->after_key = false;
        return;
    }
    if (w->depth == 0)
        return;
    if (!w->first[w->depth])
        codec_sb_putc(&w->sb, ',');
    w->first[w->depth] = false;
    jw_indent(w);
}

static void jw_string(json_writer *w, const char *s)
{
    codec_sb clean;
    const unsigned char *p;

    codec_sb_init(&clean);
    utf8_clean(&clean, s);
    codec_sb_putc(&w->sb, '"');
    for (p = (const unsigned char *)codec_sb_str(&clean); *p;) {
        size_t n = utf8_seq(p);
        unsigned cp = utf8_decode(p, n);
        if (cp == '"')
            codec_sb_puts(&w->sb, "\\\"");
        else if (cp == '\\')
            codec_sb_puts(&w->sb, "\\\\");
        else if (cp == '\n')
            codec_sb_puts(&w->sb, "\\n");
        else if (cp == '\r')
            codec_sb_puts(&w->sb, "\\r");
        else if (cp == '\t')
            codec_sb_puts(&w->sb, "\\t");
        else if (must_escape(cp))
            codec_sb_printf(&w->sb, "\\u%04x", cp);
        else
            codec_sb_putn(&w->sb, (const char *)p, n);
        p += n;
    }
    codec_sb_putc(&w->sb, '"');
    if (clean.oom)
        w->sb.oom = true;
    codec_sb_deinit(&clean);
}

static bool jw_begin(writer *base, bool map)
{
    json_writer *w = (json_writer *)base;

    jw_prefix(w);
    codec_sb_putc(&w->sb, map ? '{' : '[');
    w->depth++;
    w->first[w->depth] = true;
    return !w->sb.oom;
}

static bool jw_end(writer *base, bool map)
{
    json_writer *w = (json_writer *)base;
    bool empty = w->first[w->depth];

    w->depth--;
    if (!empty)
        jw_indent(w);
    codec_sb_putc(&w->sb, map ? '}' : ']');
    return !w->sb.oom;
}

static bool jw_key(writer *base, const char *key)
{
    json_writer *w = (json_writer *)base;

    jw_prefix(w);
    jw_string(w, key);
    codec_sb_puts(&w->sb, w->pretty ? ": " : ":");
    w->after_key = true;
    return !w->sb.oom;
}

static bool jw_scalar(writer *base, skind kind, const char *text)
{
    json_writer *w = (json_writer *)base;

    jw_prefix(w);
    switch (kind) {
    case SK_STRING:
    case SK_INT64:
        jw_string(w, text);
        break;
    case SK_NAN:
        codec_sb_puts(&w->sb, "\"NaN\"");
        break;
    case SK_INF:
        codec_sb_puts(&w->sb, "\"Infinity\"");
        break;
    case SK_NINF:
        codec_sb_puts(&w->sb, "\"-Infinity\"");
        break;
    default:
        codec_sb_puts(&w->sb, text);
        break;
    }
    return !w->sb.oom;
}

/* --- YAML writer ------------------------------------------------------------ */

typedef struct yaml_writer {
    writer base;
    yaml_emitter_t em;
    codec_sb sb;
} yaml_writer;

static int yw_output(void *data, unsigned char *buf, size_t size)
{
    codec_sb *sb = data;

    codec_sb_putn(sb, (const char *)buf, size);
    return !sb->oom;
}

static bool yw_emit(yaml_writer *w, yaml_event_t *ev)
{
    return yaml_emitter_emit(&w->em, ev) != 0;
}

static bool yw_begin(writer *base, bool map)
{
    yaml_writer *w = (yaml_writer *)base;
    yaml_event_t ev;

    if (map)
        yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_MAPPING_STYLE);
    else
        yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_SEQUENCE_STYLE);
    return yw_emit(w, &ev);
}

static bool yw_end(writer *base, bool map)
{
    yaml_writer *w = (yaml_writer *)base;
    yaml_event_t ev;

    if (map)
        yaml_mapping_end_event_initialize(&ev);
    else
        yaml_sequence_end_event_initialize(&ev);
    return yw_emit(w, &ev);
}

/* Would a plain scalar with this text read as something other than a
 * string (here, or in YAML 1.1 readers)? Then it is quoted. */
static bool needs_quotes(const char *s)
{
    static const char *const words[] = {"~", "null", "Null", "NULL", "y", "Y", "yes", "Yes",
                                        "YES", "n", "N", "no", "No", "NO", "on", "On", "ON",
                                        "off", "Off", "OFF", "<<", "=", NULL};
    double v;
    bool b, special;

    if (*s == '\0' || codec_parse_bool(s, &b) ||
        codec_parse_double(s, &v, &special) != CODEC_NUM_SYNTAX)
        return true;
    for (const char *const *w = words; *w; w++)
        if (strcmp(s, *w) == 0)
            return true;
    return false;
}

static bool yw_text(yaml_writer *w, const char *text, bool quote)
{
    yaml_event_t ev;
    codec_sb clean;
    bool ok;

    codec_sb_init(&clean);
    utf8_clean(&clean, text);
    if (clean.oom) {
        codec_sb_deinit(&clean);
        return false;
    }
    yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)codec_sb_str(&clean),
                                 (int)clean.len, 1, 1,
                                 quote ? YAML_DOUBLE_QUOTED_SCALAR_STYLE : YAML_ANY_SCALAR_STYLE);
    ok = yw_emit(w, &ev);
    codec_sb_deinit(&clean);
    return ok;
}

/* Strings with characters that need escapes go in double quotes, where
 * libyaml escapes them (other styles would fold or refuse them). */
static bool has_control(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;

    while (*p) {
        size_t n = utf8_seq(p);
        if (!n || must_escape(utf8_decode(p, n)))
            return true;
        p += n;
    }
    return false;
}

static bool yw_key(writer *base, const char *key)
{
    return yw_text((yaml_writer *)base, key, needs_quotes(key) || has_control(key));
}

static bool yw_scalar(writer *base, skind kind, const char *text)
{
    yaml_writer *w = (yaml_writer *)base;
    yaml_event_t ev;
    const char *plain = text;

    switch (kind) {
    case SK_STRING:
        return yw_text(w, text, needs_quotes(text) || has_control(text));
    case SK_NULL:
        plain = "null";
        break;
    case SK_NAN:
        plain = ".nan";
        break;
    case SK_INF:
        plain = ".inf";
        break;
    case SK_NINF:
        plain = "-.inf";
        break;
    default:
        break;
    }
    yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)plain, (int)strlen(plain), 1, 1,
                                 YAML_PLAIN_SCALAR_STYLE);
    return yw_emit(w, &ev);
}

/* --- The walk ------------------------------------------------------------- */

typedef struct enc {
    const sl_codec_options *opts;
    writer *w;
    codec_sb path;
    unsigned depth;
    sl_status st;
} enc;

static bool enc_message(enc *e, const ProtobufCMessage *m);
static bool enc_fields(enc *e, const ProtobufCMessage *m);

static bool fail(enc *e, sl_status st, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static bool fail(enc *e, sl_status st, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    e->st = sl_error_set(st, "%s: %s", codec_sb_str(&e->path), msg);
    return false;
}

/* A writer call failed: out of memory, or libyaml refused. */
static bool writer_failed(enc *e)
{
    if (e->st == SL_OK)
        fail(e, SL_ERR_NOMEM, "could not write the output");
    return false;
}

static bool begin(enc *e, bool map)
{
    if (e->depth >= SL_CODEC_MAX_DEPTH)
        return fail(e, SL_ERR_INVALID, "nesting deeper than %d levels", SL_CODEC_MAX_DEPTH);
    e->depth++;
    return e->w->begin(e->w, map) || writer_failed(e);
}

static bool end(enc *e, bool map)
{
    e->depth--;
    return e->w->end(e->w, map) || writer_failed(e);
}

static bool key(enc *e, const char *k)
{
    return e->w->key(e->w, k) || writer_failed(e);
}

static bool scalar(enc *e, skind kind, const char *text)
{
    return e->w->scalar(e->w, kind, text) || writer_failed(e);
}

static bool enc_double(enc *e, double v, bool is_float)
{
    char buf[64];

    if (isnan(v))
        return scalar(e, SK_NAN, "");
    if (isinf(v))
        return scalar(e, v > 0 ? SK_INF : SK_NINF, "");
    if (is_float)
        codec_format_float(buf, sizeof(buf), (float)v);
    else
        codec_format_double(buf, sizeof(buf), v);
    return scalar(e, SK_NUMBER, buf);
}

/* An unset sub-message (an entry of a map or a list always has one). */
static bool enc_empty(enc *e, const ProtobufCMessageDescriptor *desc)
{
    ProtobufCMessage *m;
    bool ok;

    if (codec_wkt_of(desc) == CODEC_WKT_VALUE)
        return scalar(e, SK_NULL, "null");
    m = malloc(desc->sizeof_message);
    if (!m)
        return fail(e, SL_ERR_NOMEM, "out of memory");
    protobuf_c_message_init(desc, m);
    ok = enc_message(e, m);
    free(m);
    return ok;
}

/* One value of field f (singular, or an element) stored at p. */
static bool enc_value(enc *e, const ProtobufCFieldDescriptor *f, const void *p)
{
    char buf[64];

    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        snprintf(buf, sizeof(buf), "%d", (int)*(const int32_t *)p);
        return scalar(e, SK_NUMBER, buf);
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        snprintf(buf, sizeof(buf), "%u", (unsigned)*(const uint32_t *)p);
        return scalar(e, SK_NUMBER, buf);
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        snprintf(buf, sizeof(buf), "%lld", (long long)*(const int64_t *)p);
        return scalar(e, SK_INT64, buf);
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        snprintf(buf, sizeof(buf), "%llu", (unsigned long long)*(const uint64_t *)p);
        return scalar(e, SK_INT64, buf);
    case PROTOBUF_C_TYPE_FLOAT:
        return enc_double(e, *(const float *)p, true);
    case PROTOBUF_C_TYPE_DOUBLE:
        return enc_double(e, *(const double *)p, false);
    case PROTOBUF_C_TYPE_BOOL:
        return scalar(e, SK_BOOL, *(const protobuf_c_boolean *)p ? "true" : "false");
    case PROTOBUF_C_TYPE_ENUM: {
        int32_t v = *(const int32_t *)p;
        const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(f->descriptor, v);
        if (ev)
            return scalar(e, SK_STRING, ev->name);
        snprintf(buf, sizeof(buf), "%d", (int)v);
        return scalar(e, SK_NUMBER, buf);
    }
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)p;
        return scalar(e, SK_STRING, s ? s : "");
    }
    case PROTOBUF_C_TYPE_BYTES: {
        const ProtobufCBinaryData *b = p;
        codec_sb sb;
        bool ok;
        codec_sb_init(&sb);
        codec_base64_encode(&sb, b->data, b->len);
        ok = !sb.oom ? scalar(e, SK_STRING, codec_sb_str(&sb)) : fail(e, SL_ERR_NOMEM, "out of memory");
        codec_sb_deinit(&sb);
        return ok;
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *m = *(ProtobufCMessage *const *)p;
        return m ? enc_message(e, m) : enc_empty(e, f->descriptor);
    }
    }
    return fail(e, SL_ERR_INTERNAL, "field '%s' has an unknown type", f->name);
}

/* The key of a map entry as JSON text. */
static void map_key(const ProtobufCFieldDescriptor *kf, const void *p, char *buf, size_t size)
{
    switch (kf->type) {
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)p;
        snprintf(buf, size, "%s", s ? s : "");
        break;
    }
    case PROTOBUF_C_TYPE_BOOL:
        snprintf(buf, size, "%s", *(const protobuf_c_boolean *)p ? "true" : "false");
        break;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        snprintf(buf, size, "%lld", (long long)*(const int64_t *)p);
        break;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        snprintf(buf, size, "%llu", (unsigned long long)*(const uint64_t *)p);
        break;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        snprintf(buf, size, "%u", (unsigned)*(const uint32_t *)p);
        break;
    default:
        snprintf(buf, size, "%d", (int)*(const int32_t *)p);
        break;
    }
}

static bool enc_map(enc *e, const ProtobufCFieldDescriptor *f, const ProtobufCMessage *m)
{
    const ProtobufCMessageDescriptor *ed = f->descriptor;
    const ProtobufCFieldDescriptor *kf = &ed->fields[0], *vf = &ed->fields[1];
    size_t n = *(const size_t *)codec_member(m, f->quantifier_offset);
    ProtobufCMessage *const *entries = *(ProtobufCMessage *const *const *)codec_member(m, f->offset);
    bool ok = begin(e, true);

    for (size_t i = 0; ok && i < n; i++) {
        const ProtobufCMessage *entry = entries[i];
        size_t mark = e->path.len;
        char *k;
        if (!entry)
            continue;
        if (kf->type == PROTOBUF_C_TYPE_STRING) {
            const char *s = *(char *const *)codec_member(entry, kf->offset);
            k = strdup(s ? s : "");
        } else {
            char buf[32];
            map_key(kf, codec_member(entry, kf->offset), buf, sizeof(buf));
            k = strdup(buf);
        }
        if (!k)
            return fail(e, SL_ERR_NOMEM, "out of memory");
        codec_sb_path_key(&e->path, k);
        ok = key(e, k) && enc_value(e, vf, codec_member(entry, vf->offset));
        free(k);
        codec_sb_truncate(&e->path, mark);
    }
    return ok && end(e, true);
}

static bool enc_repeated(enc *e, const ProtobufCFieldDescriptor *f, const ProtobufCMessage *m)
{
    size_t n = *(const size_t *)codec_member(m, f->quantifier_offset);
    const char *arr = *(const char *const *)codec_member(m, f->offset);
    size_t esz = codec_elem_size(f->type);
    bool ok = begin(e, false);

    for (size_t i = 0; ok && i < n; i++) {
        size_t mark = e->path.len;
        codec_sb_printf(&e->path, "[%zu]", i);
        ok = enc_value(e, f, arr + i * esz);
        codec_sb_truncate(&e->path, mark);
    }
    return ok && end(e, false);
}

static bool enc_fields(enc *e, const ProtobufCMessage *m)
{
    const ProtobufCMessageDescriptor *desc = m->descriptor;
    bool ok = true;

    for (unsigned i = 0; ok && i < desc->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &desc->fields[i];
        size_t mark = e->path.len;
        char name[256];

        if (!codec_field_present(m, f))
            continue;
        sl_codec_json_name(name, sizeof(name), f->name);
        codec_sb_printf(&e->path, ".%s", name);
        ok = key(e, name);
        if (ok && f->label == PROTOBUF_C_LABEL_REPEATED)
            ok = codec_is_map(f) ? enc_map(e, f, m) : enc_repeated(e, f, m);
        else if (ok)
            ok = enc_value(e, f, codec_member(m, f->offset));
        codec_sb_truncate(&e->path, mark);
    }
    return ok;
}

static const ProtobufCFieldDescriptor *field_named(const ProtobufCMessage *m, const char *name)
{
    return protobuf_c_message_descriptor_get_field_by_name(m->descriptor, name);
}

static bool enc_time(enc *e, const ProtobufCMessage *m, codec_wkt wkt)
{
    const ProtobufCFieldDescriptor *fs = field_named(m, "seconds"), *fn = field_named(m, "nanos");
    int64_t secs;
    int32_t nanos;
    char buf[64];

    if (!fs || !fn)
        return fail(e, SL_ERR_INTERNAL, "%s has no seconds/nanos", m->descriptor->name);
    secs = *(const int64_t *)codec_member(m, fs->offset);
    nanos = *(const int32_t *)codec_member(m, fn->offset);
    if (wkt == CODEC_WKT_DURATION ? !codec_format_duration(buf, sizeof(buf), secs, nanos)
                                  : !codec_format_timestamp(buf, sizeof(buf), secs, nanos))
        return fail(e, SL_ERR_INVALID, "invalid %s (seconds %lld, nanos %d)", m->descriptor->name,
                    (long long)secs, (int)nanos);
    return scalar(e, SK_STRING, buf);
}

/* The member of a google.protobuf.Value's kind oneof that is set, or NULL. */
static const ProtobufCFieldDescriptor *value_kind(const ProtobufCMessage *m)
{
    const ProtobufCMessageDescriptor *desc = m->descriptor;

    for (unsigned i = 0; i < desc->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &desc->fields[i];
        if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
            *(const uint32_t *)codec_member(m, f->quantifier_offset) == f->id)
            return f;
    }
    return NULL;
}

static bool enc_struct_value(enc *e, const ProtobufCMessage *m)
{
    const ProtobufCFieldDescriptor *f = value_kind(m);
    const void *p;

    if (!f)
        return fail(e, SL_ERR_INVALID, "google.protobuf.Value has no kind set");
    p = codec_member(m, f->offset);
    if (f->type == PROTOBUF_C_TYPE_ENUM)
        return scalar(e, SK_NULL, "null");
    if (f->type == PROTOBUF_C_TYPE_DOUBLE && !isfinite(*(const double *)p))
        return fail(e, SL_ERR_INVALID, "google.protobuf.Value cannot hold a non-finite number");
    return enc_value(e, f, p);
}

static bool enc_any(enc *e, const ProtobufCMessage *m)
{
    const ProtobufCFieldDescriptor *furl = field_named(m, "type_url"), *fval = field_named(m, "value");
    const ProtobufCMessageDescriptor *idesc;
    ProtobufCMessage *inner = NULL;
    const ProtobufCBinaryData *val;
    const char *url;
    bool ok = false;

    if (!furl || !fval)
        return fail(e, SL_ERR_INTERNAL, "google.protobuf.Any without type_url/value");
    url = *(char *const *)codec_member(m, furl->offset);
    val = codec_member(m, fval->offset);
    if (!url || !*url) {
        if (val->len)
            return fail(e, SL_ERR_INVALID, "google.protobuf.Any has a value but no type_url");
        return begin(e, true) && end(e, true);
    }
    if (!e->opts->resolver)
        return fail(e, SL_ERR_NOT_FOUND, "cannot encode google.protobuf.Any of type '%s': no type resolver",
                    url);
    idesc = e->opts->resolver(url);
    if (!idesc)
        return fail(e, SL_ERR_NOT_FOUND, "unknown type '%s' in google.protobuf.Any", url);
    if (sl_pb_unpack(&inner, idesc, NULL, val->data, val->len) != SL_OK)
        return fail(e, SL_ERR_PARSE, "the value of google.protobuf.Any is not a valid %s: %s", idesc->name,
                    sl_error_msg());
    if (!begin(e, true) || !key(e, "@type") || !scalar(e, SK_STRING, url))
        goto out;
    if (codec_wkt_of(idesc) == CODEC_WKT_NONE) {
        ok = enc_fields(e, inner);
    } else if (codec_wkt_of(idesc) == CODEC_WKT_VALUE && value_kind(inner) == NULL) {
        ok = true; /* an empty Value has no JSON form: leave "value" out */
    } else {
        size_t mark = e->path.len;
        codec_sb_puts(&e->path, ".value");
        ok = key(e, "value") && enc_message(e, inner);
        codec_sb_truncate(&e->path, mark);
    }
    ok = ok && end(e, true);
out:
    protobuf_c_message_free_unpacked(inner, NULL);
    return ok;
}

static bool enc_message(enc *e, const ProtobufCMessage *m)
{
    const ProtobufCMessageDescriptor *desc = m->descriptor;
    codec_wkt wkt = codec_wkt_of(desc);

    switch (wkt) {
    case CODEC_WKT_DURATION:
    case CODEC_WKT_TIMESTAMP:
        return enc_time(e, m, wkt);
    case CODEC_WKT_WRAPPER:
        return enc_value(e, &desc->fields[0], codec_member(m, desc->fields[0].offset));
    case CODEC_WKT_VALUE:
        return enc_struct_value(e, m);
    case CODEC_WKT_STRUCT: {
        const ProtobufCFieldDescriptor *f = field_named(m, "fields");
        return f && codec_is_map(f) ? enc_map(e, f, m)
                                   : fail(e, SL_ERR_INTERNAL, "Struct without a fields map");
    }
    case CODEC_WKT_LIST: {
        const ProtobufCFieldDescriptor *f = field_named(m, "values");
        return f ? enc_repeated(e, f, m) : fail(e, SL_ERR_INTERNAL, "ListValue without values");
    }
    case CODEC_WKT_ANY:
        return enc_any(e, m);
    case CODEC_WKT_NONE:
        break;
    }
    return begin(e, true) && enc_fields(e, m) && end(e, true);
}

/* --- Entry points ------------------------------------------------------------- */

static sl_status check_args(char **out, const ProtobufCMessage *msg)
{
    if (!out)
        return sl_error_set(SL_ERR_INVALID, "codec: out is NULL");
    *out = NULL;
    if (!msg || !msg->descriptor || msg->descriptor->magic != PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC)
        return sl_error_set(SL_ERR_INVALID, "codec: not a message");
    return SL_OK;
}

static void enc_init(enc *e, writer *w, const ProtobufCMessage *msg, const sl_codec_options *opts)
{
    static const sl_codec_options defaults;

    memset(e, 0, sizeof(*e));
    e->opts = opts ? opts : &defaults;
    e->w = w;
    codec_sb_init(&e->path);
    codec_sb_puts(&e->path, msg->descriptor->short_name);
}

sl_status sl_codec_encode_json(char **out, size_t *len, const ProtobufCMessage *msg,
                               const sl_codec_options *opts)
{
    json_writer w = {
        .base = {jw_begin, jw_end, jw_key, jw_scalar},
        .pretty = !(opts && (opts->flags & SL_CODEC_JSON_COMPACT)),
    };
    sl_status st = check_args(out, msg);
    enc e;

    if (st != SL_OK)
        return st;
    codec_sb_init(&w.sb);
    enc_init(&e, &w.base, msg, opts);
    if (enc_message(&e, msg)) {
        if (w.pretty)
            codec_sb_putc(&w.sb, '\n');
        *out = codec_sb_steal(&w.sb, len);
        if (!*out)
            st = sl_error_set(SL_ERR_NOMEM, "codec: out of memory encoding JSON");
    } else {
        st = e.st;
    }
    codec_sb_deinit(&w.sb);
    codec_sb_deinit(&e.path);
    return st;
}

sl_status sl_codec_encode_yaml(char **out, size_t *len, const ProtobufCMessage *msg,
                               const sl_codec_options *opts)
{
    yaml_writer w = {.base = {yw_begin, yw_end, yw_key, yw_scalar}};
    sl_status st = check_args(out, msg);
    yaml_event_t ev;
    bool ok;
    enc e;

    if (st != SL_OK)
        return st;
    codec_sb_init(&w.sb);
    enc_init(&e, &w.base, msg, opts);
    if (!yaml_emitter_initialize(&w.em)) {
        st = sl_error_set(SL_ERR_NOMEM, "codec: out of memory starting the YAML emitter");
        goto out_sb;
    }
    yaml_emitter_set_output(&w.em, yw_output, &w.sb);
    yaml_emitter_set_unicode(&w.em, 1);
    yaml_emitter_set_indent(&w.em, 2);
    yaml_emitter_set_width(&w.em, -1);
    yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING);
    ok = yw_emit(&w, &ev);
    yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1);
    ok = ok && yw_emit(&w, &ev);
    ok = ok && enc_message(&e, msg);
    if (ok) {
        yaml_document_end_event_initialize(&ev, 1);
        ok = yw_emit(&w, &ev);
        yaml_stream_end_event_initialize(&ev);
        ok = ok && yw_emit(&w, &ev) && yaml_emitter_flush(&w.em);
    }
    if (!ok && e.st == SL_OK)
        st = sl_error_set(w.sb.oom ? SL_ERR_NOMEM : SL_ERR_INTERNAL, "codec: YAML emitter: %s",
                          w.em.problem ? w.em.problem : "output failed");
    else if (!ok)
        st = e.st;
    if (st == SL_OK) {
        *out = codec_sb_steal(&w.sb, len);
        if (!*out)
            st = sl_error_set(SL_ERR_NOMEM, "codec: out of memory encoding YAML");
    }
    yaml_emitter_delete(&w.em);
out_sb:
    codec_sb_deinit(&w.sb);
    codec_sb_deinit(&e.path);
    return st;
}
