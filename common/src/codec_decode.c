/* A parsed document plus a message descriptor to a protobuf-c message.
 *
 * The walk never stops at the first problem: each one becomes a diagnostic
 * and decoding goes on with the next field, so a user sees every mistake of
 * a document at once. Whatever was decoded stays consistent enough for
 * protobuf_c_message_free_unpacked(), which is how a failed decode is
 * undone. */
#include "codec_internal.h"

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

typedef enum vres {
    V_ERR = 0, /* nothing stored; the problem was reported */
    V_SET,     /* stored (perhaps partially: problems inside were reported) */
    V_NULL,    /* null: nothing stored, the field stays unset */
} vres;

typedef struct dec {
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
} dec;

static vres dec_value(dec *d, const codec_node *n, const ProtobufCFieldDescriptor *f, void *dst);
static vres dec_message(dec *d, const codec_node *n, const ProtobufCMessageDescriptor *desc,
                        ProtobufCMessage **out);
static void dec_into(dec *d, const codec_node *n, ProtobufCMessage *m);

/* --- Reporting -------------------------------------------------------------- */

static void out_of_memory(dec *d)
{
    d->nomem = true;
    d->stop = true;
}

static void vreport(dec *d, sl_diag_severity sev, const codec_node *at, const char *path,
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
        out_of_memory(d);
}

/* A diagnostic whose message is exactly fmt (the path goes where the
 * sentence wants it). */
static void report(dec *d, sl_diag_severity sev, const codec_node *at, const char *path,
                   const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void report(dec *d, sl_diag_severity sev, const codec_node *at, const char *path,
                   const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vreport(d, sev, at, path, fmt, ap);
    va_end(ap);
}

/* An error about the value at the current path: "<path>: <message>". */
static void err(dec *d, const codec_node *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void err(dec *d, const codec_node *at, const char *fmt, ...)
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
        out_of_memory(d);
    else
        report(d, SL_DIAG_ERROR, at, codec_sb_str(&d->path), "%s: %s", codec_sb_str(&d->path),
               text);
    free(text);
}

/* --- Describing what was found and what was expected ---------------------- */

/* "a mapping", "a list", "null", or the scalar quoted (shortened). */
static void describe(const dec *d, const codec_node *n, char *buf, size_t size)
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

static const char *map_noun(const dec *d, bool plural)
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

static void message_noun(const dec *d, const ProtobufCMessageDescriptor *desc, bool plural,
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
        s = map_noun(d, plural);
        break;
    }
    snprintf(buf, size, "%s", s);
}

static void field_noun(const dec *d, const ProtobufCFieldDescriptor *f, bool plural, char *buf,
                       size_t size)
{
    if (f->type == PROTOBUF_C_TYPE_MESSAGE)
        message_noun(d, f->descriptor, plural, buf, size);
    else if (f->type == PROTOBUF_C_TYPE_ENUM)
        snprintf(buf, size, "%s of enum %s", plural ? "values" : "a value",
                 ((const ProtobufCEnumDescriptor *)f->descriptor)->name);
    else
        snprintf(buf, size, "%s", scalar_noun(f->type, plural));
}

/* "<path>: expected <what>, got <found>". */
static vres mismatch(dec *d, const codec_node *n, const char *what)
{
    char got[128];

    describe(d, n, got, sizeof(got));
    err(d, n, "expected %s, got %s", what, got);
    return V_ERR;
}

static vres field_mismatch(dec *d, const codec_node *n, const ProtobufCFieldDescriptor *f)
{
    char what[256];

    field_noun(d, f, false, what, sizeof(what));
    return mismatch(d, n, what);
}

static void list_mismatch(dec *d, const codec_node *n, const ProtobufCFieldDescriptor *f)
{
    char what[256], list[300];

    field_noun(d, f, true, what, sizeof(what));
    snprintf(list, sizeof(list), "%s of %s", d->json ? "an array" : "a list", what);
    mismatch(d, n, list);
}

/* --- Paths and nesting ------------------------------------------------------ */

static size_t push_key(dec *d, const char *key, bool field)
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

static size_t push_index(dec *d, size_t i)
{
    size_t mark = d->path.len;

    codec_sb_printf(&d->path, "[%zu]", i);
    return mark;
}

static void pop(dec *d, size_t mark)
{
    codec_sb_truncate(&d->path, mark);
}

/* Entering a mapping or list; false (reported) past the depth limit. */
static bool enter(dec *d, const codec_node *n)
{
    if (d->depth >= SL_CODEC_MAX_DEPTH) {
        err(d, n, "nesting deeper than %d levels", SL_CODEC_MAX_DEPTH);
        return false;
    }
    d->depth++;
    return true;
}

static void leave(dec *d)
{
    d->depth--;
}

/* --- Allocation --------------------------------------------------------------- */

static ProtobufCMessage *new_message(dec *d, const ProtobufCMessageDescriptor *desc)
{
    ProtobufCMessage *m = codec_alloc(d->alloc, desc->sizeof_message);

    if (!m) {
        out_of_memory(d);
        return NULL;
    }
    protobuf_c_message_init(desc, m);
    return m;
}

static char *copy_string(dec *d, const char *s, size_t n)
{
    char *c = codec_alloc(d->alloc, n + 1);

    if (!c) {
        out_of_memory(d);
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

static vres out_of_range(dec *d, const codec_node *n, ProtobufCType t)
{
    err(d, n, "value %s is out of range for %s", n->text, type_name(t));
    return V_ERR;
}

static vres dec_signed(dec *d, const codec_node *n, const ProtobufCFieldDescriptor *f, void *dst)
{
    bool is32 = codec_elem_size(f->type) == 4;
    int64_t v;

    switch (codec_parse_int64(n->text, &v)) {
    case CODEC_NUM_SYNTAX:
        return field_mismatch(d, n, f);
    case CODEC_NUM_RANGE:
        return out_of_range(d, n, f->type);
    case CODEC_NUM_OK:
        break;
    }
    if (is32 && (v < INT32_MIN || v > INT32_MAX))
        return out_of_range(d, n, f->type);
    if (is32)
        *(int32_t *)dst = (int32_t)v;
    else
        *(int64_t *)dst = v;
    return V_SET;
}

static vres dec_unsigned(dec *d, const codec_node *n, const ProtobufCFieldDescriptor *f, void *dst)
{
    bool is32 = codec_elem_size(f->type) == 4;
    uint64_t v;

    switch (codec_parse_uint64(n->text, &v)) {
    case CODEC_NUM_SYNTAX:
        return field_mismatch(d, n, f);
    case CODEC_NUM_RANGE:
        return out_of_range(d, n, f->type);
    case CODEC_NUM_OK:
        break;
    }
    if (is32 && v > UINT32_MAX)
        return out_of_range(d, n, f->type);
    if (is32)
        *(uint32_t *)dst = (uint32_t)v;
    else
        *(uint64_t *)dst = v;
    return V_SET;
}

static vres dec_floating(dec *d, const codec_node *n, const ProtobufCFieldDescriptor *f, void *dst)
{
    double v;
    bool special;

    switch (codec_parse_double(n->text, &v, &special)) {
    case CODEC_NUM_SYNTAX:
        return field_mismatch(d, n, f);
    case CODEC_NUM_RANGE:
        return out_of_range(d, n, f->type);
    case CODEC_NUM_OK:
        break;
    }
    if (f->type == PROTOBUF_C_TYPE_FLOAT) {
        /* Values up to half a unit in the last place past FLT_MAX still
         * round to it ("3.40282347e+38", as FLT_MAX prints, is one). */
        if (!special && fabs(v) >= (double)FLT_MAX + 0x1p103)
            return out_of_range(d, n, f->type);
        *(float *)dst = (float)v;
    } else {
        *(double *)dst = v;
    }
    return V_SET;
}

static vres dec_enum(dec *d, const codec_node *n, const ProtobufCFieldDescriptor *f, void *dst)
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
        return V_SET;
    case CODEC_NUM_RANGE:
        return out_of_range(d, n, f->type);
    case CODEC_NUM_SYNTAX:
        break;
    }
    ev = protobuf_c_enum_descriptor_get_value_by_name(ed, n->text);
    if (ev) {
        *(int32_t *)dst = ev->value;
        return V_SET;
    }
    for (unsigned i = 0; i < ed->n_values; i++) {
        size_t dist = sl_codec_distance(n->text, ed->values[i].name);
        if (dist < best_dist) {
            best_dist = dist;
            best = ed->values[i].name;
        }
    }
    if (best && best_dist <= suggest_limit(strlen(n->text)))
        err(d, n, "unknown value '%s' for enum %s; did you mean '%s'?", n->text, ed->name, best);
    else
        err(d, n, "unknown value '%s' for enum %s", n->text, ed->name);
    return V_ERR;
}

static vres dec_string(dec *d, const codec_node *n, void *dst)
{
    char *s;

    if (strlen(n->text) != n->n) {
        err(d, n, "strings must not contain NUL characters");
        return V_ERR;
    }
    s = copy_string(d, n->text, n->n);
    if (!s)
        return V_ERR;
    *(char **)dst = s;
    return V_SET;
}

static vres dec_bytes(dec *d, const codec_node *n, const ProtobufCFieldDescriptor *f, void *dst)
{
    ProtobufCBinaryData *b = dst;
    uint8_t *data;
    size_t len;
    bool nomem;

    if (!codec_base64_decode(n->text, n->n, d->alloc, &data, &len, &nomem)) {
        if (nomem) {
            out_of_memory(d);
            return V_ERR;
        }
        return field_mismatch(d, n, f);
    }
    b->data = data;
    b->len = len;
    return V_SET;
}

/* One value of field f (a singular field, or one element of a repeated
 * one) into dst, which points at its storage. */
static vres dec_value(dec *d, const codec_node *n, const ProtobufCFieldDescriptor *f, void *dst)
{
    if (d->stop)
        return V_ERR;
    if (codec_is_null(n) &&
        !(f->type == PROTOBUF_C_TYPE_MESSAGE && codec_wkt_of(f->descriptor) == CODEC_WKT_VALUE))
        return V_NULL;
    if (f->type == PROTOBUF_C_TYPE_MESSAGE)
        return dec_message(d, n, f->descriptor, dst);
    if (n->kind != CODEC_SCALAR)
        return field_mismatch(d, n, f);
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
            return field_mismatch(d, n, f);
        *(protobuf_c_boolean *)dst = b;
        return V_SET;
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
    return V_ERR;
}

/* --- Repeated fields and maps ----------------------------------------------- */

static void dec_repeated(dec *d, const codec_node *n, const ProtobufCFieldDescriptor *f,
                         ProtobufCMessage *msg)
{
    size_t esz = codec_elem_size(f->type), k = 0;
    char *arr = NULL;

    if (codec_is_null(n))
        return;
    if (n->kind != CODEC_SEQ) {
        list_mismatch(d, n, f);
        return;
    }
    if (!enter(d, n))
        return;
    if (n->n == 0)
        goto out;
    arr = codec_alloc(d->alloc, n->n * esz);
    if (!arr) {
        out_of_memory(d);
        goto out;
    }
    memset(arr, 0, n->n * esz);
    for (size_t i = 0; i < n->n && !d->stop; i++) {
        size_t mark = push_index(d, i);
        vres r = dec_value(d, n->items[i], f, arr + k * esz);
        if (r == V_SET)
            k++;
        else if (r == V_NULL)
            field_mismatch(d, n->items[i], f);
        pop(d, mark);
    }
    if (k == 0) {
        codec_free(d->alloc, arr);
        arr = NULL;
    }
    *(size_t *)codec_member(msg, f->quantifier_offset) = k;
    *(void **)codec_member(msg, f->offset) = arr;
out:
    leave(d);
}

static void report_dup(dec *d, const codec_node *key, const codec_node *first)
{
    codec_sb path;

    codec_sb_init(&path);
    codec_sb_puts(&path, codec_sb_str(&d->path));
    codec_sb_path_key(&path, key->text);
    report(d, SL_DIAG_ERROR, key, codec_sb_str(&path), "duplicate key '%s' in %s (first at %u:%u)",
           key->text, codec_sb_str(&d->path), first->line, first->col);
    codec_sb_deinit(&path);
}

/* Checks one pair of a mapping: false (reported) when it must be skipped. */
static bool usable_pair(dec *d, const codec_node *m, size_t i)
{
    const codec_node *key = m->items[2 * i];

    if (m->dups && m->dups[i]) {
        report_dup(d, key, m->dups[i]);
        return false;
    }
    if (key->kind != CODEC_SCALAR) {
        char got[64];
        describe(d, key, got, sizeof(got));
        err(d, key, "keys must be strings, got %s", got);
        return false;
    }
    return true;
}

static void dec_map(dec *d, const codec_node *n, const ProtobufCFieldDescriptor *f,
                    ProtobufCMessage *msg)
{
    const ProtobufCMessageDescriptor *ed = f->descriptor;
    const ProtobufCFieldDescriptor *kf = &ed->fields[0], *vf = &ed->fields[1];
    ProtobufCMessage **arr = NULL;
    size_t k = 0;

    if (codec_is_null(n))
        return;
    if (n->kind != CODEC_MAP) {
        mismatch(d, n, map_noun(d, false));
        return;
    }
    if (!enter(d, n))
        return;
    if (n->n == 0)
        goto out;
    arr = codec_alloc(d->alloc, n->n * sizeof(*arr));
    if (!arr) {
        out_of_memory(d);
        goto out;
    }
    for (size_t i = 0; i < n->n && !d->stop; i++) {
        const codec_node *key = n->items[2 * i], *val = n->items[2 * i + 1];
        ProtobufCMessage *entry;
        size_t mark;
        vres r;

        if (!usable_pair(d, n, i))
            continue;
        entry = new_message(d, ed);
        if (!entry)
            break;
        arr[k++] = entry;
        mark = push_key(d, key->text, false);
        if (kf->type == PROTOBUF_C_TYPE_STRING)
            r = dec_string(d, key, codec_member(entry, kf->offset));
        else
            r = dec_value(d, key, kf, codec_member(entry, kf->offset));
        if (r == V_NULL) /* a null key of a non-string map */
            field_mismatch(d, key, kf);
        r = dec_value(d, val, vf, codec_member(entry, vf->offset));
        if (r == V_NULL)
            field_mismatch(d, val, vf); /* proto3 JSON: no null map values */
        pop(d, mark);
    }
    if (k == 0) {
        codec_free(d->alloc, arr);
        arr = NULL;
    }
    *(size_t *)codec_member(msg, f->quantifier_offset) = k;
    *(void **)codec_member(msg, f->offset) = arr;
out:
    leave(d);
}

/* --- Messages ------------------------------------------------------------------ */

static bool ignored_key(const dec *d, const char *key)
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

static void unknown_field(dec *d, const codec_node *key, const ProtobufCMessageDescriptor *desc)
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
        report(d, sev, key, codec_sb_str(&path), "unknown field '%s' in %s; did you mean '%s'?",
               key->text, codec_sb_str(&d->path), snake ? best : best_json);
    else
        report(d, sev, key, codec_sb_str(&path), "unknown field '%s' in %s", key->text,
               codec_sb_str(&d->path));
    codec_sb_deinit(&path);
}

static void set_present(ProtobufCMessage *msg, const ProtobufCFieldDescriptor *f)
{
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
        *(uint32_t *)codec_member(msg, f->quantifier_offset) = f->id;
    else if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->type != PROTOBUF_C_TYPE_MESSAGE &&
             f->type != PROTOBUF_C_TYPE_STRING)
        *(protobuf_c_boolean *)codec_member(msg, f->quantifier_offset) = 1;
}

/* The fields of msg from mapping m. seen[i] is the key that set field i.
 * skip_type: the mapping is an Any's, whose "@type" is not a field. */
static void dec_fields(dec *d, const codec_node *m, ProtobufCMessage *msg, bool skip_type)
{
    const ProtobufCMessageDescriptor *desc = msg->descriptor;
    const codec_node **seen = calloc(desc->n_fields ? desc->n_fields : 1, sizeof(*seen));

    if (!seen) {
        out_of_memory(d);
        return;
    }
    for (size_t i = 0; i < m->n && !d->stop; i++) {
        const codec_node *key = m->items[2 * i], *val = m->items[2 * i + 1];
        const ProtobufCFieldDescriptor *f;
        size_t idx, mark;

        if (!usable_pair(d, m, i))
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
            report(d, SL_DIAG_ERROR, key, codec_sb_str(&d->path),
                   "duplicate field '%s' in %s (already set as '%s' at %u:%u)", key->text,
                   codec_sb_str(&d->path), seen[idx]->text, seen[idx]->line, seen[idx]->col);
            continue;
        }
        seen[idx] = key;
        if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) && !codec_is_null(val)) {
            uint32_t set = *(const uint32_t *)codec_member(msg, f->quantifier_offset);
            const ProtobufCFieldDescriptor *other =
                set ? protobuf_c_message_descriptor_get_field(desc, set) : NULL;
            if (other) {
                const codec_node *ok = seen[other - desc->fields];
                report(d, SL_DIAG_ERROR, key, codec_sb_str(&d->path),
                       "only one of '%s' and '%s' may be set in %s (members of the same oneof)",
                       ok ? ok->text : other->name, key->text, codec_sb_str(&d->path));
                continue;
            }
        }
        mark = push_key(d, key->text, true);
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            if (codec_is_map(f))
                dec_map(d, val, f, msg);
            else
                dec_repeated(d, val, f, msg);
        } else if (dec_value(d, val, f, codec_member(msg, f->offset)) == V_SET) {
            set_present(msg, f);
        }
        pop(d, mark);
    }
    free(seen);
}

static const ProtobufCFieldDescriptor *field_named(const ProtobufCMessage *m, const char *name)
{
    return protobuf_c_message_descriptor_get_field_by_name(m->descriptor, name);
}

/* google.protobuf.Value from any node. */
static void dec_struct_value(dec *d, const codec_node *n, ProtobufCMessage *m)
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
                err(d, n, "%s is not a finite number; google.protobuf.Value cannot hold it",
                    n->text);
                return;
            }
            which = "number_value";
        }
    }
    f = field_named(m, which);
    if (!f)
        return;
    dst = codec_member(m, f->offset);
    if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
        if (dec_message(d, n, f->descriptor, dst) != V_SET)
            return;
    } else if (f->type == PROTOBUF_C_TYPE_ENUM) {
        *(int32_t *)dst = 0; /* NULL_VALUE */
    } else if (dec_value(d, n, f, dst) != V_SET) {
        return;
    }
    set_present(m, f);
}

/* Duration and Timestamp from their string forms. */
static void dec_time(dec *d, const codec_node *n, ProtobufCMessage *m, codec_wkt wkt)
{
    const ProtobufCFieldDescriptor *fs = field_named(m, "seconds"), *fn = field_named(m, "nanos");
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
        message_noun(d, m->descriptor, false, what, sizeof(what));
        mismatch(d, n, what);
        return;
    }
    if (r == CODEC_NUM_RANGE) {
        if (wkt == CODEC_WKT_DURATION)
            err(d, n, "duration \"%s\" is out of range (at most %llds either way)", n->text,
                (long long)CODEC_DURATION_MAX_SECONDS);
        else
            err(d, n, "timestamp \"%s\" is out of range (years 0001 to 9999)", n->text);
        return;
    }
    *(int64_t *)codec_member(m, fs->offset) = secs;
    *(int32_t *)codec_member(m, fn->offset) = nanos;
}

/* The message form of a Duration or Timestamp must still be valid. */
static void check_time(dec *d, const codec_node *n, const ProtobufCMessage *m, codec_wkt wkt)
{
    const ProtobufCFieldDescriptor *fs = field_named(m, "seconds"), *fn = field_named(m, "nanos");
    int64_t secs;
    int32_t nanos;

    if (!fs || !fn)
        return;
    secs = *(const int64_t *)codec_member(m, fs->offset);
    nanos = *(const int32_t *)codec_member(m, fn->offset);
    if (wkt == CODEC_WKT_DURATION && !codec_duration_valid(secs, nanos))
        err(d, n, "invalid duration: seconds must be within +-%lld, nanos within +-999999999, "
                  "both of the same sign", (long long)CODEC_DURATION_MAX_SECONDS);
    else if (wkt == CODEC_WKT_TIMESTAMP && !codec_timestamp_valid(secs, nanos))
        err(d, n, "invalid timestamp: it must lie in years 0001 to 9999, nanos within 0 to "
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

static void dec_any(dec *d, const codec_node *n, ProtobufCMessage *any)
{
    const ProtobufCFieldDescriptor *furl = field_named(any, "type_url"),
                                   *fval = field_named(any, "value");
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
            err(d, n, "missing '@type': a google.protobuf.Any names the type of its content");
        return;
    }
    tnode = n->items[2 * t + 1];
    if (tnode->kind != CODEC_SCALAR || codec_is_null(tnode) || tnode->n == 0 ||
        strlen(tnode->text) != tnode->n) {
        size_t mark = push_key(d, "@type", true);
        mismatch(d, tnode, "a type URL");
        pop(d, mark);
        return;
    }
    if (!d->opts->resolver) {
        err(d, tnode, "cannot decode google.protobuf.Any of type '%s': no type resolver",
            tnode->text);
        return;
    }
    idesc = d->opts->resolver(tnode->text);
    if (!idesc) {
        err(d, tnode, "unknown type '%s' in '@type'", tnode->text);
        return;
    }
    /* The content is packed and thrown away: it lives in malloc'd memory,
     * not in the caller's allocator. */
    d->alloc = NULL;
    inner = new_message(d, idesc);
    if (!inner)
        goto out;
    if (special_form(idesc)) {
        for (size_t i = 0; i < n->n; i++) {
            const codec_node *k = n->items[2 * i];
            if ((long)i == t || (n->dups && n->dups[i]))
                continue;
            if (k->kind == CODEC_SCALAR && strcmp(k->text, "value") == 0) {
                size_t mark = push_key(d, "value", true);
                dec_into(d, n->items[2 * i + 1], inner);
                pop(d, mark);
            } else if (usable_pair(d, n, i)) {
                report(d, d->opts->unknown_fields_warn ? SL_DIAG_WARNING : SL_DIAG_ERROR, k,
                       codec_sb_str(&d->path),
                       "unknown field '%s' in %s; an Any of %s holds it in 'value'", k->text,
                       codec_sb_str(&d->path), idesc->name);
            }
        }
    } else {
        dec_fields(d, n, inner, true);
    }
    if (d->errors == before && !d->stop) {
        size_t size = protobuf_c_message_get_packed_size(inner);
        uint8_t *buf = codec_alloc(saved, size);
        char *url = NULL;
        if (buf) {
            d->alloc = saved;
            url = copy_string(d, tnode->text, tnode->n);
        }
        if (!buf || !url) {
            codec_free(saved, buf);
            out_of_memory(d);
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
static void dec_into(dec *d, const codec_node *n, ProtobufCMessage *m)
{
    codec_wkt wkt = codec_wkt_of(m->descriptor);
    /* One level per mapping or list: a Value is not one, and a Struct's
     * map and a ListValue's list count themselves. */
    bool nested = n->kind != CODEC_SCALAR && wkt != CODEC_WKT_VALUE && wkt != CODEC_WKT_STRUCT &&
                  wkt != CODEC_WKT_LIST;

    if (!shape_ok(n, m->descriptor)) {
        char what[64];
        message_noun(d, m->descriptor, false, what, sizeof(what));
        mismatch(d, n, what);
        return;
    }
    if (codec_is_null(n) && wkt != CODEC_WKT_VALUE)
        return;
    if (nested && !enter(d, n))
        return;
    switch (wkt) {
    case CODEC_WKT_VALUE:
        dec_struct_value(d, n, m);
        break;
    case CODEC_WKT_STRUCT: {
        const ProtobufCFieldDescriptor *f = field_named(m, "fields");
        if (f)
            dec_map(d, n, f, m);
        break;
    }
    case CODEC_WKT_LIST: {
        const ProtobufCFieldDescriptor *f = field_named(m, "values");
        if (f)
            dec_repeated(d, n, f, m);
        break;
    }
    case CODEC_WKT_DURATION:
    case CODEC_WKT_TIMESTAMP:
        if (n->kind == CODEC_SCALAR) {
            dec_time(d, n, m, wkt);
        } else {
            size_t before = d->errors;
            dec_fields(d, n, m, false);
            if (d->errors == before)
                check_time(d, n, m, wkt);
        }
        break;
    case CODEC_WKT_WRAPPER:
        if (n->kind == CODEC_SCALAR)
            dec_value(d, n, &m->descriptor->fields[0], codec_member(m, m->descriptor->fields[0].offset));
        else
            dec_fields(d, n, m, false);
        break;
    case CODEC_WKT_ANY:
        dec_any(d, n, m);
        break;
    case CODEC_WKT_NONE:
        dec_fields(d, n, m, false);
        break;
    }
    if (nested)
        leave(d);
}

static vres dec_message(dec *d, const codec_node *n, const ProtobufCMessageDescriptor *desc,
                        ProtobufCMessage **out)
{
    ProtobufCMessage *m;

    if (!shape_ok(n, desc)) {
        char what[64];
        message_noun(d, desc, false, what, sizeof(what));
        return mismatch(d, n, what);
    }
    m = new_message(d, desc);
    if (!m)
        return V_ERR;
    dec_into(d, n, m);
    *out = m;
    return V_SET;
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
    dec d = {
        .opts = opts ? opts : &defaults,
        .diag = diag,
        .json = json,
    };

    d.alloc = d.opts->allocator;
    d.file = d.opts->filename ? d.opts->filename : doc_file;
    codec_sb_init(&d.path);
    codec_sb_puts(&d.path, d.opts->root_name ? d.opts->root_name : desc->short_name);
    m = new_message(&d, desc);
    if (!m)
        goto out;
    if (json && !root) {
        char what[64];
        message_noun(&d, desc, false, what, sizeof(what));
        report(&d, SL_DIAG_ERROR, NULL, codec_sb_str(&d.path), "%s: expected %s, got an empty document",
               codec_sb_str(&d.path), what);
    } else if (root) {
        d.root_map = root->kind == CODEC_MAP ? root : NULL;
        dec_into(&d, root, m);
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
