/* codec_decode_diag.c - what the decoder says and where: diagnostics, the
 * names of what was found and what was expected, the field path and the
 * nesting depth. */
#include "codec_decode.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --- Reporting -------------------------------------------------------------- */

void codec_dec_oom(codec_dec *d)
{
    d->nomem = true;
    d->stop = true;
}

static void vreport(codec_dec *d, sl_diag_severity sev, const codec_node *at, const char *path,
                    const char *fmt, va_list ap)
{
    if (d->stop)
        return;
    if (sev == SL_DIAG_ERROR && ++d->errors > SL_CODEC_MAX_ERRORS) {
        sl_diag_add(d->diag, SL_DIAG_ERROR, d->file, at ? at->line : 0, at ? at->col : 0, path,
                    "too many errors (more than %d); stopping", SL_CODEC_MAX_ERRORS);
        d->stop = true;
        return;
    }
    if (sl_diag_addv(d->diag, sev, d->file, at ? at->line : 0, at ? at->col : 0, path, fmt, ap) ==
        SL_ERR_NOMEM)
        codec_dec_oom(d);
}

/* A diagnostic whose message is exactly fmt (the path goes where the
 * sentence wants it). */
void codec_dec_report(codec_dec *d, sl_diag_severity sev, const codec_node *at, const char *path,
                             const char *fmt, ...) __attribute__((format(printf, 5, 6)));

void codec_dec_report(codec_dec *d, sl_diag_severity sev, const codec_node *at, const char *path,
                             const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vreport(d, sev, at, path, fmt, ap);
    va_end(ap);
}

void codec_dec_err(codec_dec *d, const codec_node *at, const char *fmt, ...)
{
    va_list ap;
    char *text = NULL;

    if (d->stop)
        return;
    va_start(ap, fmt);
    if (vasprintf(&text, fmt, ap) < 0)
        text = NULL;
    va_end(ap);
    if (!text)
        codec_dec_oom(d);
    else
        codec_dec_report(d, SL_DIAG_ERROR, at, codec_sb_str(&d->path), "%s: %s",
                         codec_sb_str(&d->path), text);
    free(text);
}

/* --- Describing what was found and what was expected ---------------------- */

/* "a mapping", "a list", "null", or the scalar quoted (shortened). */
void codec_dec_describe(const codec_dec *d, const codec_node *n, char *buf, size_t size)
{
    enum { MAX_SHOWN = 40 };
    size_t len, o = 0;
    bool cut;

    if (n->kind == CODEC_MAP) {
        snprintf(buf, size, "%s", d->json ? "an object" : "a mapping");
        return;
    }
    if (n->kind == CODEC_SEQ) {
        snprintf(buf, size, "%s", d->json ? "an array" : "a list");
        return;
    }
    if (codec_is_null(n)) {
        snprintf(buf, size, "null");
        return;
    }
    if (d->json && !n->quoted) { /* a JSON number or boolean, as written */
        snprintf(buf, size, "%.*s", MAX_SHOWN, n->text);
        return;
    }
    len = strlen(n->text);
    cut = len > MAX_SHOWN;
    if (cut) { /* never in the middle of a UTF-8 sequence */
        len = MAX_SHOWN;
        while (len > 0 && ((unsigned char)n->text[len] & 0xc0) == 0x80)
            len--;
    }
    buf[o++] = '"';
    for (size_t i = 0; i < len && o + 8 < size; i++) {
        unsigned char c = (unsigned char)n->text[i];
        if (c == '"' || c == '\\')
            o += (size_t)snprintf(buf + o, size - o, "\\%c", c);
        else if (c < 0x20 || c == 0x7f)
            o += (size_t)snprintf(buf + o, size - o, "\\x%02x", c);
        else
            buf[o++] = (char)c;
    }
    snprintf(buf + o, size - o, "%s\"", cut ? "..." : "");
}

const char *codec_dec_map_noun(const codec_dec *d, bool plural)
{
    if (d->json)
        return plural ? "objects" : "an object";
    return plural ? "mappings" : "a mapping";
}

static const char *scalar_noun(ProtobufCType t, bool plural)
{
    switch (t) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT32: /* the sign is checked with the range */
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return plural ? "integers" : "an integer";
    case PROTOBUF_C_TYPE_FLOAT:
    case PROTOBUF_C_TYPE_DOUBLE:
        return plural ? "numbers" : "a number";
    case PROTOBUF_C_TYPE_BOOL:
        return plural ? "booleans" : "a boolean";
    case PROTOBUF_C_TYPE_STRING:
        return plural ? "strings" : "a string";
    case PROTOBUF_C_TYPE_BYTES:
        return plural ? "base64 strings" : "a base64 string";
    default:
        return plural ? "values" : "a value";
    }
}

void codec_dec_message_noun(const codec_dec *d, const ProtobufCMessageDescriptor *desc, bool plural,
                                   char *buf, size_t size)
{
    const char *s;

    switch (codec_wkt_of(desc)) {
    case CODEC_WKT_DURATION:
        s = plural ? "durations such as \"1.5s\"" : "a duration such as \"1.5s\"";
        break;
    case CODEC_WKT_TIMESTAMP:
        s = plural ? "RFC 3339 timestamps" : "an RFC 3339 timestamp";
        break;
    case CODEC_WKT_WRAPPER:
        s = scalar_noun(desc->fields[0].type, plural);
        break;
    case CODEC_WKT_VALUE:
        s = plural ? "values" : "a value";
        break;
    case CODEC_WKT_LIST:
        s = d->json ? (plural ? "arrays" : "an array") : (plural ? "lists" : "a list");
        break;
    default:
        s = codec_dec_map_noun(d, plural);
        break;
    }
    snprintf(buf, size, "%s", s);
}

static void field_noun(const codec_dec *d, const ProtobufCFieldDescriptor *f, bool plural,
                       char *buf, size_t size)
{
    if (f->type == PROTOBUF_C_TYPE_MESSAGE)
        codec_dec_message_noun(d, f->descriptor, plural, buf, size);
    else if (f->type == PROTOBUF_C_TYPE_ENUM)
        snprintf(buf, size, "%s of enum %s", plural ? "values" : "a value",
                 ((const ProtobufCEnumDescriptor *)f->descriptor)->name);
    else
        snprintf(buf, size, "%s", scalar_noun(f->type, plural));
}

/* "<path>: expected <what>, got <found>". */
codec_vres codec_dec_mismatch(codec_dec *d, const codec_node *n, const char *what)
{
    char got[128];

    codec_dec_describe(d, n, got, sizeof(got));
    codec_dec_err(d, n, "expected %s, got %s", what, got);
    return CODEC_V_ERR;
}

codec_vres codec_dec_field_mismatch(codec_dec *d, const codec_node *n,
                                    const ProtobufCFieldDescriptor *f)
{
    char what[256];

    field_noun(d, f, false, what, sizeof(what));
    return codec_dec_mismatch(d, n, what);
}

void codec_dec_list_mismatch(codec_dec *d, const codec_node *n, const ProtobufCFieldDescriptor *f)
{
    char what[256], list[300];

    field_noun(d, f, true, what, sizeof(what));
    snprintf(list, sizeof(list), "%s of %s", d->json ? "an array" : "a list", what);
    codec_dec_mismatch(d, n, list);
}

/* --- Paths and nesting ------------------------------------------------------ */

size_t codec_dec_push_key(codec_dec *d, const char *key, bool field)
{
    size_t mark = d->path.len;

    if (field) {
        codec_sb_putc(&d->path, '.');
        codec_sb_puts(&d->path, key);
    } else {
        codec_sb_path_key(&d->path, key);
    }
    return mark;
}

size_t codec_dec_push_index(codec_dec *d, size_t i)
{
    size_t mark = d->path.len;

    codec_sb_printf(&d->path, "[%zu]", i);
    return mark;
}

void codec_dec_pop(codec_dec *d, size_t mark)
{
    codec_sb_truncate(&d->path, mark);
}

/* Entering a mapping or list; false (reported) past the depth limit. */
bool codec_dec_enter(codec_dec *d, const codec_node *n)
{
    if (d->depth >= SL_CODEC_MAX_DEPTH) {
        codec_dec_err(d, n, "nesting deeper than %d levels", SL_CODEC_MAX_DEPTH);
        return false;
    }
    d->depth++;
    return true;
}

void codec_dec_leave(codec_dec *d)
{
    d->depth--;
}
