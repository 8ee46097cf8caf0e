/* sluice-schemagen - JSON Schema (draft 2020-12) for Sluice's resources.
 *
 *   sluice-schemagen [--descriptor-set FILE] [--check] OUTDIR
 *
 * Writes into OUTDIR one schema per resource kind of sluice/kinds.h, named
 * <apiVersion with '/' as '_'>_<Kind>.json
 * ("gateway.solo.io_v1_VirtualService.json"), one schema for any resource
 * (sluice.json: dispatches on kind), and a Markdown field reference
 * (reference.md). With --check it writes nothing and exits 1 when OUTDIR
 * differs from what it would write, naming each stale file.
 *
 * The structure comes from the protobuf-c descriptors linked into the
 * program (the same ones the codec decodes with), so the schemas describe
 * exactly what Sluice reads: proto3 JSON with protoc's lowerCamelCase names.
 * protobuf-c keeps no comments and no oneof names, so those come from a
 * FileDescriptorSet of proto/sluice/v1 with source info (protoc
 * --include_source_info), built next to the program; --descriptor-set
 * overrides its path.
 *
 * The schemas are the canonical subset of what the decoder accepts: enums by
 * name only, no nulls, camelCase names only (the decoder also takes numbers,
 * nulls and proto field names). Output is deterministic: keys sorted, two
 * spaces of indentation, a final newline.
 */
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <protobuf-c/protobuf-c.h>

#include "google/protobuf/descriptor.pb-c.h"
#include "sluice/file.h"
#include "sluice/kinds.h"
#include "sluice/resource.h"

#ifndef SCHEMAGEN_DESCRIPTOR_SET
#define SCHEMAGEN_DESCRIPTOR_SET "sluice_api.desc"
#endif

#define SCHEMA_DIALECT "https://json-schema.org/draft/2020-12/schema"
#define DEFS_PREFIX "#/$defs/"

/* What the descriptor set adds to protobuf-c's descriptors. */
typedef struct docs {
    json_t *comments; /* full name -> cleaned leading (or trailing) comment */
    json_t *oneofs;   /* full field name -> name of its oneof */
} docs;

/* One output file, in memory until written or compared. */
typedef struct output {
    char name[128];
    char *text;
} output;

typedef struct outputs {
    output items[32];
    size_t n;
} outputs;

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void die(const char *fmt, ...)
{
    va_list ap;

    fputs("sluice-schemagen: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(2);
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        die("out of memory");
    return p;
}

static json_t *xnew(json_t *j)
{
    if (!j)
        die("out of memory");
    return j;
}

static void set(json_t *obj, const char *key, json_t *val)
{
    if (json_object_set_new(obj, key, xnew(val)) != 0)
        die("out of memory");
}

/* --- comments from the descriptor set --------------------------------- */

/* A comment as one paragraph per blank-line-separated block: each line
 * trimmed, lines of a block joined by spaces. Returns a malloc'd string. */
static char *clean_comment(const char *c)
{
    size_t n = strlen(c);
    char *out = xmalloc(n + 1);
    size_t o = 0;
    int blank_run = 0;

    while (*c) {
        const char *eol = strchr(c, '\n');
        const char *end = eol ? eol : c + strlen(c);
        const char *b = c, *e = end;
        while (b < e && (*b == ' ' || *b == '\t'))
            b++;
        while (e > b && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
            e--;
        if (b == e) {
            blank_run = o > 0;
        } else {
            if (o > 0) {
                if (blank_run) {
                    out[o++] = '\n';
                    out[o++] = '\n';
                } else {
                    out[o++] = ' ';
                }
            }
            /* A paragraph break needs two bytes where the source had at
             * least "\n\n" between the lines: the buffer is large enough. */
            memcpy(out + o, b, (size_t)(e - b));
            o += (size_t)(e - b);
            blank_run = 0;
        }
        c = eol ? eol + 1 : end;
    }
    out[o] = '\0';
    return out;
}

static void put_comment(docs *d, const char *name, const Google__Protobuf__SourceCodeInfo__Location *l)
{
    const char *c = l->leading_comments && *l->leading_comments ? l->leading_comments
                                                                 : l->trailing_comments;
    char *clean;

    if (!c || !*c)
        return;
    clean = clean_comment(c);
    set(d->comments, name, json_string(clean));
    free(clean);
}

/* The full name a source location path designates in file f, or "" when it
 * designates nothing we document. Paths follow descriptor.proto's field
 * numbers: FileDescriptorProto.message_type = 4, enum_type = 5;
 * DescriptorProto.field = 2, nested_type = 3, enum_type = 4,
 * oneof_decl = 8; EnumDescriptorProto.value = 2. */
static void path_name(char *out, size_t size, const Google__Protobuf__FileDescriptorProto *f,
                      const int32_t *p, size_t n)
{
    const Google__Protobuf__DescriptorProto *m = NULL;
    const Google__Protobuf__EnumDescriptorProto *e = NULL;
    size_t i = 2;
    size_t o;

    out[0] = '\0';
    if (n < 2)
        return;
    o = (size_t)snprintf(out, size, "%s", f->package ? f->package : "");
    if (p[0] == 4 && (size_t)p[1] < f->n_message_type)
        m = f->message_type[p[1]];
    else if (p[0] == 5 && (size_t)p[1] < f->n_enum_type)
        e = f->enum_type[p[1]];
    else
        goto none;
    o += (size_t)snprintf(out + o, size > o ? size - o : 0, ".%s", m ? m->name : e->name);
    while (m && i < n) {
        size_t k;
        if (i + 2 > n)
            goto none;
        k = (size_t)p[i + 1];
        if (p[i] == 3 && k < m->n_nested_type) {
            m = m->nested_type[k];
            o += (size_t)snprintf(out + o, size > o ? size - o : 0, ".%s", m->name);
        } else if (p[i] == 4 && k < m->n_enum_type) {
            e = m->enum_type[k];
            m = NULL;
            o += (size_t)snprintf(out + o, size > o ? size - o : 0, ".%s", e->name);
        } else if (p[i] == 2 && k < m->n_field && i + 2 == n) {
            snprintf(out + o, size > o ? size - o : 0, ".%s", m->field[k]->name);
            return;
        } else if (p[i] == 8 && k < m->n_oneof_decl && i + 2 == n) {
            snprintf(out + o, size > o ? size - o : 0, ".%s", m->oneof_decl[k]->name);
            return;
        } else {
            goto none;
        }
        i += 2;
    }
    if (e && i < n) {
        if (i + 2 == n && p[i] == 2 && (size_t)p[i + 1] < e->n_value) {
            snprintf(out + o, size > o ? size - o : 0, ".%s", e->value[p[i + 1]]->name);
            return;
        }
        goto none;
    }
    return;
none:
    out[0] = '\0';
}

/* Records, for every field of m (full name prefix), the oneof it is in. */
static void record_oneofs(docs *d, const char *prefix, const Google__Protobuf__DescriptorProto *m)
{
    char name[512];

    for (size_t i = 0; i < m->n_field; i++) {
        const Google__Protobuf__FieldDescriptorProto *fd = m->field[i];
        if (!fd->has_oneof_index || (size_t)fd->oneof_index >= m->n_oneof_decl)
            continue;
        snprintf(name, sizeof(name), "%s.%s", prefix, fd->name);
        set(d->oneofs, name, json_string(m->oneof_decl[fd->oneof_index]->name));
    }
    for (size_t i = 0; i < m->n_nested_type; i++) {
        snprintf(name, sizeof(name), "%s.%s", prefix, m->nested_type[i]->name);
        record_oneofs(d, name, m->nested_type[i]);
    }
}

static void load_docs(docs *d, const char *path)
{
    char *buf = NULL;
    size_t len = 0;
    Google__Protobuf__FileDescriptorSet *set_msg;
    char name[512];

    if (sl_file_read(&buf, &len, path) != SL_OK)
        die("%s (build the schemagen target, or pass --descriptor-set)", sl_error_msg());
    set_msg = google__protobuf__file_descriptor_set__unpack(NULL, len, (const uint8_t *)buf);
    free(buf);
    if (!set_msg)
        die("%s: not a FileDescriptorSet", path);

    d->comments = xnew(json_object());
    d->oneofs = xnew(json_object());
    for (size_t i = 0; i < set_msg->n_file; i++) {
        const Google__Protobuf__FileDescriptorProto *f = set_msg->file[i];
        if (!f->source_code_info)
            die("%s: %s has no source info (protoc --include_source_info)", path, f->name);
        for (size_t j = 0; j < f->source_code_info->n_location; j++) {
            const Google__Protobuf__SourceCodeInfo__Location *l = f->source_code_info->location[j];
            path_name(name, sizeof(name), f, l->path, l->n_path);
            if (name[0])
                put_comment(d, name, l);
        }
        for (size_t j = 0; j < f->n_message_type; j++) {
            snprintf(name, sizeof(name), "%s.%s", f->package, f->message_type[j]->name);
            record_oneofs(d, name, f->message_type[j]);
        }
    }
    google__protobuf__file_descriptor_set__free_unpacked(set_msg, NULL);
}

static const char *comment(const docs *d, const char *full_name)
{
    return json_string_value(json_object_get(d->comments, full_name));
}

static const char *comment2(const docs *d, const char *scope, const char *name)
{
    char key[512];
    snprintf(key, sizeof(key), "%s.%s", scope, name);
    return comment(d, key);
}

/* --- descriptors to schemas -------------------------------------------- */

/* protoc's json_name: drop '_' and uppercase the letter after it. */
static void json_name(char *out, size_t size, const char *name)
{
    size_t o = 0;
    bool up = false;

    for (; *name && o + 1 < size; name++) {
        if (*name == '_') {
            up = true;
            continue;
        }
        out[o++] = up && *name >= 'a' && *name <= 'z' ? (char)(*name - 'a' + 'A') : *name;
        up = false;
    }
    out[o] = '\0';
}

/* A field protoc generated for map<K, V>: a repeated <FieldInCamel>Entry
 * with key = 1 and value = 2. */
static bool is_map(const ProtobufCFieldDescriptor *f)
{
    const ProtobufCMessageDescriptor *e;
    char want[256];
    size_t o = 0;
    bool up = true;

    if (f->type != PROTOBUF_C_TYPE_MESSAGE || f->label != PROTOBUF_C_LABEL_REPEATED)
        return false;
    e = f->descriptor;
    if (e->n_fields != 2 || e->fields[0].id != 1 || e->fields[1].id != 2 ||
        strcmp(e->fields[0].name, "key") != 0 || strcmp(e->fields[1].name, "value") != 0)
        return false;
    for (const char *c = f->name; *c && o + 7 < sizeof(want); c++) {
        if (*c == '_') {
            up = true;
            continue;
        }
        want[o++] = up && *c >= 'a' && *c <= 'z' ? (char)(*c - 'a' + 'A') : *c;
        up = false;
    }
    memcpy(want + o, "Entry", 6);
    return strcmp(e->short_name, want) == 0;
}

typedef struct gen {
    const docs *docs;
    json_t *defs; /* full name -> schema of every message and enum reached */
} gen;

static json_t *message_ref(gen *g, const ProtobufCMessageDescriptor *m);
static json_t *field_schema(gen *g, const ProtobufCFieldDescriptor *f, bool element);

static json_t *obj(void)
{
    return xnew(json_object());
}

static json_t *typed(const char *type)
{
    json_t *o = obj();
    set(o, "type", json_string(type));
    return o;
}

static json_t *int_range(json_int_t min, json_int_t max)
{
    json_t *o = typed("integer");
    set(o, "minimum", json_integer(min));
    set(o, "maximum", json_integer(max));
    return o;
}

/* 64-bit integers: proto3 JSON writes them as strings and reads either. */
static json_t *int64_schema(bool is_unsigned)
{
    json_t *o = obj();
    json_t *types = xnew(json_array());

    json_array_append_new(types, json_string("integer"));
    json_array_append_new(types, json_string("string"));
    set(o, "type", types);
    set(o, "pattern", json_string(is_unsigned ? "^[0-9]+$" : "^-?[0-9]+$"));
    if (is_unsigned)
        set(o, "minimum", json_integer(0));
    return o;
}

static json_t *bytes_schema(void)
{
    json_t *o = typed("string");
    set(o, "contentEncoding", json_string("base64"));
    set(o, "pattern", json_string("^[A-Za-z0-9+/_-]*={0,2}$"));
    return o;
}

static json_t *scalar_schema(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        return int_range(INT32_MIN, INT32_MAX);
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        return int_range(0, UINT32_MAX);
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        return int64_schema(false);
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return int64_schema(true);
    case PROTOBUF_C_TYPE_FLOAT:
    case PROTOBUF_C_TYPE_DOUBLE:
        return typed("number");
    case PROTOBUF_C_TYPE_BOOL:
        return typed("boolean");
    case PROTOBUF_C_TYPE_STRING:
        return typed("string");
    case PROTOBUF_C_TYPE_BYTES:
        return bytes_schema();
    case PROTOBUF_C_TYPE_ENUM:
    case PROTOBUF_C_TYPE_MESSAGE:
        break;
    }
    die("unexpected scalar type %d", (int)t);
}

/* Well-known types have their own JSON form; NULL for other messages. */
static json_t *wkt_schema(const ProtobufCMessageDescriptor *m)
{
    const char *n = m->name;
    json_t *o;

    if (strncmp(n, "google.protobuf.", 16) != 0)
        return NULL;
    n += 16;
    if (strcmp(n, "Duration") == 0) {
        o = typed("string");
        set(o, "pattern", json_string("^-?[0-9]+(\\.[0-9]{1,9})?s$"));
        set(o, "description",
            json_string("A duration in seconds with an 's' suffix: \"10s\", \"0.25s\"."));
        return o;
    }
    if (strcmp(n, "Timestamp") == 0) {
        o = typed("string");
        set(o, "format", json_string("date-time"));
        set(o, "description", json_string("An RFC 3339 time: \"2024-05-01T12:00:00Z\"."));
        return o;
    }
    if (strcmp(n, "Struct") == 0)
        return typed("object");
    if (strcmp(n, "Value") == 0)
        return obj();
    if (strcmp(n, "ListValue") == 0)
        return typed("array");
    if (strcmp(n, "Empty") == 0) {
        o = typed("object");
        set(o, "additionalProperties", json_false());
        return o;
    }
    if (strcmp(n, "Any") == 0) {
        json_t *props = obj(), *req = xnew(json_array());
        o = typed("object");
        set(props, "@type", typed("string"));
        set(o, "properties", props);
        json_array_append_new(req, json_string("@type"));
        set(o, "required", req);
        set(o, "description",
            json_string("Any message: \"@type\" is \"type.googleapis.com/<full message name>\", "
                        "the message's fields beside it."));
        return o;
    }
    if (strcmp(n, "FieldMask") == 0)
        return typed("string");
    /* Wrappers: the bare value of their single field. */
    if (m->n_fields == 1 && strcmp(m->fields[0].name, "value") == 0 &&
        strlen(n) > 5 && strcmp(n + strlen(n) - 5, "Value") == 0)
        return scalar_schema(m->fields[0].type);
    die("well-known type %s has no JSON Schema mapping", m->name);
}

static json_t *ref_string(const char *full_name)
{
    char ref[512];

    snprintf(ref, sizeof(ref), DEFS_PREFIX "%s", full_name);
    return xnew(json_string(ref));
}

static json_t *ref_to(const char *full_name)
{
    json_t *o = obj();

    set(o, "$ref", ref_string(full_name));
    return o;
}

/* A name without the package: "HealthCheck.HttpHealthCheck". */
static const char *local_name(const char *full, const char *package)
{
    size_t n = strlen(package);
    if (n && strncmp(full, package, n) == 0 && full[n] == '.')
        return full + n + 1;
    return full;
}

static json_t *enum_ref(gen *g, const ProtobufCEnumDescriptor *e)
{
    if (!json_object_get(g->defs, e->name)) {
        json_t *o = typed("string");
        json_t *vals = xnew(json_array());
        const char *c = comment(g->docs, e->name);
        size_t cap = 256, len;
        char *desc;

        for (unsigned i = 0; i < e->n_values; i++) {
            const char *vc = comment2(g->docs, e->name, e->values[i].name);
            json_array_append_new(vals, json_string(e->values[i].name));
            cap += strlen(e->values[i].name) + (vc ? strlen(vc) : 0) + 16;
        }
        cap += c ? strlen(c) : 0;
        desc = xmalloc(cap);
        len = (size_t)snprintf(desc, cap, "%s", c ? c : "");
        for (unsigned i = 0; i < e->n_values; i++) {
            const char *vc = comment2(g->docs, e->name, e->values[i].name);
            len += (size_t)snprintf(desc + len, cap - len, "%s- %s%s%s",
                                    len == 0 ? "" : i == 0 ? "\n\n" : "\n",
                                    e->values[i].name, vc ? ": " : "", vc ? vc : "");
        }
        set(o, "enum", vals);
        set(o, "title", json_string(local_name(e->name, e->package_name)));
        set(o, "description", json_string(desc));
        free(desc);
        set(g->defs, e->name, o);
    }
    return ref_to(e->name);
}

/* Oneof groups share a quantifier_offset (the *_case member). */
static size_t oneof_members(const ProtobufCMessageDescriptor *m, const ProtobufCFieldDescriptor *f,
                            const ProtobufCFieldDescriptor **out, size_t max)
{
    size_t n = 0;

    for (unsigned i = 0; i < m->n_fields && n < max; i++)
        if ((m->fields[i].flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
            m->fields[i].quantifier_offset == f->quantifier_offset)
            out[n++] = &m->fields[i];
    return n;
}

static const char *oneof_name(const gen *g, const ProtobufCMessageDescriptor *m,
                              const ProtobufCFieldDescriptor *f)
{
    char key[512];
    const char *n;

    snprintf(key, sizeof(key), "%s.%s", m->name, f->name);
    n = json_string_value(json_object_get(g->docs->oneofs, key));
    return n ? n : "oneof";
}

/* The description of field f of m: its comment, plus for a oneof member
 * which others exclude it. */
static void describe_field(gen *g, json_t *schema, const ProtobufCMessageDescriptor *m,
                           const ProtobufCFieldDescriptor *f)
{
    const char *c = comment2(g->docs, m->name, f->name);
    char buf[4096];
    size_t len = (size_t)snprintf(buf, sizeof(buf), "%s", c ? c : "");

    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
        const ProtobufCFieldDescriptor *mem[64];
        size_t n = oneof_members(m, f, mem, 64);
        if (n > 1) {
            len += (size_t)snprintf(buf + len, sizeof(buf) > len ? sizeof(buf) - len : 0,
                                    "%sOne of %s:", len ? "\n\n" : "", oneof_name(g, m, f));
            for (size_t i = 0; i < n && len < sizeof(buf); i++) {
                char jn[128];
                json_name(jn, sizeof(jn), mem[i]->name);
                len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%s %s", i ? "," : "", jn);
            }
            if (len < sizeof(buf))
                snprintf(buf + len, sizeof(buf) - len, " (at most one may be set).");
        }
    }
    if (buf[0]) {
        json_t *old = json_object_get(schema, "description");
        /* Keep a type's own description (Duration's format) after the
         * field's. */
        if (old && json_is_string(old)) {
            char both[4608];
            snprintf(both, sizeof(both), "%s\n\n%s", buf, json_string_value(old));
            set(schema, "description", json_string(both));
        } else {
            set(schema, "description", json_string(buf));
        }
    }
    if (f->flags & PROTOBUF_C_FIELD_FLAG_DEPRECATED)
        set(schema, "deprecated", json_true());
}

/* The schema of one value of field f (element: ignore repeated). */
static json_t *field_schema(gen *g, const ProtobufCFieldDescriptor *f, bool element)
{
    json_t *s;

    if (!element && is_map(f)) {
        const ProtobufCMessageDescriptor *e = f->descriptor;
        const ProtobufCFieldDescriptor *k = &e->fields[0];
        s = typed("object");
        set(s, "additionalProperties", field_schema(g, &e->fields[1], true));
        if (k->type != PROTOBUF_C_TYPE_STRING) {
            json_t *names = typed("string");
            set(names, "pattern",
                json_string(k->type == PROTOBUF_C_TYPE_BOOL ? "^(true|false)$" : "^-?[0-9]+$"));
            set(s, "propertyNames", names);
        }
        return s;
    }
    if (!element && f->label == PROTOBUF_C_LABEL_REPEATED) {
        s = typed("array");
        set(s, "items", field_schema(g, f, true));
        return s;
    }
    if (f->type == PROTOBUF_C_TYPE_ENUM)
        return enum_ref(g, f->descriptor);
    if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
        const ProtobufCMessageDescriptor *m = f->descriptor;
        json_t *w = wkt_schema(m);
        return w ? w : message_ref(g, m);
    }
    return scalar_schema(f->type);
}

/* Names and namespaces are NATS subject tokens: see sluice/resource.h. */
static void constrain_metadata(json_t *props, json_t *def)
{
    json_t *name = json_object_get(props, "name");
    json_t *ns = json_object_get(props, "namespace");
    json_t *req = xnew(json_array());

    set(name, "pattern", json_string(SL_RESOURCE_NAME_PATTERN));
    set(name, "minLength", json_integer(1));
    set(name, "maxLength", json_integer(SL_RESOURCE_NAME_MAX));
    set(ns, "pattern", json_string(SL_RESOURCE_NAME_PATTERN));
    set(ns, "minLength", json_integer(1));
    set(ns, "maxLength", json_integer(SL_RESOURCE_NAMESPACE_MAX));
    set(ns, "default", json_string(SL_RESOURCE_DEFAULT_NAMESPACE));
    json_array_append_new(req, json_string("name"));
    set(def, "required", req);
}

static json_t *message_ref(gen *g, const ProtobufCMessageDescriptor *m)
{
    json_t *def, *props, *dep;
    const char *c;

    if (json_object_get(g->defs, m->name))
        return ref_to(m->name);
    /* Insert first: recursive messages (Status) refer to themselves. */
    def = typed("object");
    set(g->defs, m->name, def);
    props = obj();
    dep = obj();
    c = comment(g->docs, m->name);
    set(def, "title", json_string(local_name(m->name, m->package_name)));
    if (c)
        set(def, "description", json_string(c));
    for (unsigned i = 0; i < m->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &m->fields[i];
        char jn[128];
        json_t *fs = field_schema(g, f, false);
        describe_field(g, fs, m, f);
        json_name(jn, sizeof(jn), f->name);
        set(props, jn, fs);
        if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            /* Setting one member forbids the others. */
            const ProtobufCFieldDescriptor *mem[64];
            size_t n = oneof_members(m, f, mem, 64);
            json_t *others = obj(), *wrap = obj();
            for (size_t j = 0; j < n; j++) {
                char on[128];
                if (mem[j] == f)
                    continue;
                json_name(on, sizeof(on), mem[j]->name);
                set(others, on, json_false());
            }
            if (json_object_size(others)) {
                set(wrap, "properties", others);
                set(dep, jn, wrap);
            } else {
                json_decref(others);
                json_decref(wrap);
            }
        }
    }
    if (strcmp(m->name, "sluice.v1.Metadata") == 0)
        constrain_metadata(props, def);
    set(def, "properties", props);
    set(def, "additionalProperties", json_false());
    if (json_object_size(dep))
        set(def, "dependentSchemas", dep);
    else
        json_decref(dep);
    return ref_to(m->name);
}

/* The resource message of kind k with apiVersion and kind added, as the
 * definition of its full name. */
static void kind_def(gen *g, const sl_kind *k)
{
    json_t *def, *props, *req, *av, *kd;
    char desc[256];

    json_decref(message_ref(g, k->descriptor));
    def = json_object_get(g->defs, k->descriptor->name);
    props = json_object_get(def, "properties");
    av = obj();
    set(av, "const", json_string(k->api_version));
    snprintf(desc, sizeof(desc), "Always %s.", k->api_version);
    set(av, "description", json_string(desc));
    set(props, "apiVersion", av);
    kd = obj();
    set(kd, "const", json_string(k->kind));
    snprintf(desc, sizeof(desc), "Always %s.", k->kind);
    set(kd, "description", json_string(desc));
    set(props, "kind", kd);
    req = xnew(json_array());
    json_array_append_new(req, json_string("apiVersion"));
    json_array_append_new(req, json_string("kind"));
    json_array_append_new(req, json_string("metadata"));
    set(def, "required", req);
}

static char *dump(json_t *j)
{
    char *s = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);
    size_t n;
    char *out;

    if (!s)
        die("cannot serialize a schema");
    n = strlen(s);
    out = xmalloc(n + 2);
    memcpy(out, s, n);
    out[n] = '\n';
    out[n + 1] = '\0';
    free(s);
    return out;
}

static void add_output(outputs *o, const char *name, char *text)
{
    if (o->n == sizeof(o->items) / sizeof(o->items[0]))
        die("too many output files");
    snprintf(o->items[o->n].name, sizeof(o->items[o->n].name), "%s", name);
    o->items[o->n].text = text;
    o->n++;
}

static void file_name(char *out, size_t size, const sl_kind *k, const char *ext)
{
    size_t o = 0;

    for (const char *c = k->api_version; *c && o + 1 < size; c++)
        out[o++] = *c == '/' ? '_' : *c;
    snprintf(out + o, size - o, "_%s.%s", k->kind, ext);
}

/* One schema per kind, each with only the definitions it reaches. */
static void kind_schemas(outputs *out, const docs *d)
{
    for (size_t i = 0; i < sl_kind_count(); i++) {
        const sl_kind *k = sl_kind_at(i);
        gen g = {d, obj()};
        json_t *root = obj();
        char title[128], name[128];
        const char *c = comment(d, k->descriptor->name);

        kind_def(&g, k);
        set(root, "$schema", json_string(SCHEMA_DIALECT));
        snprintf(title, sizeof(title), "%s (%s)", k->kind, k->api_version);
        set(root, "title", json_string(title));
        if (c)
            set(root, "description", json_string(c));
        set(root, "$ref", ref_string(k->descriptor->name));
        set(root, "$defs", g.defs);
        file_name(name, sizeof(name), k, "json");
        add_output(out, name, dump(root));
        json_decref(root);
    }
}

/* One schema for any resource: kind selects the definition. */
static void any_schema(outputs *out, const docs *d)
{
    gen g = {d, obj()};
    json_t *root = obj(), *props = obj(), *kinds = xnew(json_array());
    json_t *versions = xnew(json_array()), *all = xnew(json_array());
    json_t *req = xnew(json_array()), *p;

    for (size_t i = 0; i < sl_kind_count(); i++) {
        const sl_kind *k = sl_kind_at(i);
        json_t *branch = obj(), *cond = obj(), *cprops = obj(), *ckind = obj();
        json_t *creq = xnew(json_array());
        bool seen = false;

        kind_def(&g, k);
        json_array_append_new(kinds, json_string(k->kind));
        for (size_t j = 0; j < json_array_size(versions); j++)
            seen |= strcmp(json_string_value(json_array_get(versions, j)), k->api_version) == 0;
        if (!seen)
            json_array_append_new(versions, json_string(k->api_version));
        set(ckind, "const", json_string(k->kind));
        set(cprops, "kind", ckind);
        set(cond, "properties", cprops);
        json_array_append_new(creq, json_string("kind"));
        set(cond, "required", creq);
        set(branch, "if", cond);
        set(branch, "then", ref_to(k->descriptor->name));
        json_array_append_new(all, branch);
    }
    set(root, "$schema", json_string(SCHEMA_DIALECT));
    set(root, "title", json_string("Any Sluice resource"));
    set(root, "description",
        json_string("A Sluice resource document (Gloo-compatible YAML or JSON); its kind selects "
                    "the schema. The per-kind schemas beside this file hold the same "
                    "definitions."));
    set(root, "type", json_string("object"));
    p = obj();
    set(p, "enum", kinds);
    set(props, "kind", p);
    p = obj();
    set(p, "enum", versions);
    set(props, "apiVersion", p);
    set(root, "properties", props);
    json_array_append_new(req, json_string("apiVersion"));
    json_array_append_new(req, json_string("kind"));
    set(root, "required", req);
    set(root, "allOf", all);
    set(root, "$defs", g.defs);
    add_output(out, "sluice.json", dump(root));
    json_decref(root);
}

/* --- the Markdown reference ------------------------------------------- */

typedef struct buf {
    char *p;
    size_t len, cap;
} buf;

static void bprintf(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void bprintf(buf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    for (;;) {
        va_start(ap, fmt);
        n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0)
            die("formatting failed");
        if (b->p && b->len + (size_t)n < b->cap)
            break;
        b->cap = (b->cap + (size_t)n + 1) * 2;
        b->p = realloc(b->p, b->cap);
        if (!b->p)
            die("out of memory");
    }
    b->len += (size_t)n;
}

/* Comment text as Markdown: outside `code spans`, '<' and '>' as entities
 * (comments write <namespace>, which would read as HTML) and '*', '_' and
 * '|' escaped. In a table cell (in_cell) line breaks become <br>. */
static void md_text(buf *b, const char *s, bool in_cell)
{
    bool code = false;

    for (; s && *s; s++) {
        if (*s == '`')
            code = !code;
        if (*s == '\n' && in_cell)
            bprintf(b, "<br>");
        else if (*s == '|' && in_cell)
            bprintf(b, "\\|");
        else if (code)
            bprintf(b, "%c", *s);
        else if (*s == '<')
            bprintf(b, "&lt;");
        else if (*s == '>')
            bprintf(b, "&gt;");
        else if (*s == '*' || *s == '_')
            bprintf(b, "\\%c", *s);
        else
            bprintf(b, "%c", *s);
    }
}

static void cell(buf *b, const char *s)
{
    md_text(b, s, true);
}

static void paragraph(buf *b, const char *s)
{
    if (s && *s) {
        md_text(b, s, false);
        bprintf(b, "\n\n");
    }
}

/* GitHub's heading anchor of a local name ("HealthCheck.HttpHealthCheck"
 * -> "healthcheckhttphealthcheck"). */
static void anchor(char *out, size_t size, const char *local)
{
    size_t o = 0;

    for (; *local && o + 1 < size; local++) {
        char c = *local;
        if (c >= 'A' && c <= 'Z')
            out[o++] = (char)(c - 'A' + 'a');
        else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_')
            out[o++] = c;
    }
    out[o] = '\0';
}

static void type_link(buf *b, const char *full, const char *package)
{
    char a[256];
    const char *local = local_name(full, package);

    anchor(a, sizeof(a), local);
    bprintf(b, "[%s](#%s)", local, a);
}

static const char *scalar_name(ProtobufCType t)
{
    static const char *const names[] = {
        [PROTOBUF_C_TYPE_INT32] = "int32",       [PROTOBUF_C_TYPE_SINT32] = "int32",
        [PROTOBUF_C_TYPE_SFIXED32] = "int32",    [PROTOBUF_C_TYPE_INT64] = "int64",
        [PROTOBUF_C_TYPE_SINT64] = "int64",      [PROTOBUF_C_TYPE_SFIXED64] = "int64",
        [PROTOBUF_C_TYPE_UINT32] = "uint32",     [PROTOBUF_C_TYPE_FIXED32] = "uint32",
        [PROTOBUF_C_TYPE_UINT64] = "uint64",     [PROTOBUF_C_TYPE_FIXED64] = "uint64",
        [PROTOBUF_C_TYPE_FLOAT] = "float",       [PROTOBUF_C_TYPE_DOUBLE] = "double",
        [PROTOBUF_C_TYPE_BOOL] = "bool",         [PROTOBUF_C_TYPE_ENUM] = "enum",
        [PROTOBUF_C_TYPE_STRING] = "string",     [PROTOBUF_C_TYPE_BYTES] = "bytes (base64)",
        [PROTOBUF_C_TYPE_MESSAGE] = "message",
    };
    return (unsigned)t < sizeof(names) / sizeof(names[0]) && names[t] ? names[t] : "?";
}

static void md_type(buf *b, const ProtobufCFieldDescriptor *f, bool element)
{
    if (!element && is_map(f)) {
        const ProtobufCMessageDescriptor *e = f->descriptor;
        bprintf(b, "map&lt;%s, ", scalar_name(e->fields[0].type));
        md_type(b, &e->fields[1], true);
        bprintf(b, "&gt;");
        return;
    }
    if (!element && f->label == PROTOBUF_C_LABEL_REPEATED) {
        bprintf(b, "list of ");
        md_type(b, f, true);
        return;
    }
    if (f->type == PROTOBUF_C_TYPE_ENUM) {
        const ProtobufCEnumDescriptor *e = f->descriptor;
        type_link(b, e->name, e->package_name);
        bprintf(b, " (enum)");
    } else if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
        const ProtobufCMessageDescriptor *m = f->descriptor;
        if (strncmp(m->name, "google.protobuf.", 16) != 0) {
            type_link(b, m->name, m->package_name);
        } else if (strcmp(m->name, "google.protobuf.Duration") == 0) {
            bprintf(b, "duration (\"10s\")");
        } else if (strcmp(m->name, "google.protobuf.Timestamp") == 0) {
            bprintf(b, "timestamp (RFC 3339)");
        } else if (strcmp(m->name, "google.protobuf.Struct") == 0) {
            bprintf(b, "object (any JSON)");
        } else if (strcmp(m->name, "google.protobuf.Empty") == 0) {
            bprintf(b, "empty object (`{}`)");
        } else if (strcmp(m->name, "google.protobuf.Any") == 0) {
            bprintf(b, "object with `@type`");
        } else if (m->n_fields == 1) {
            bprintf(b, "%s (optional)", scalar_name(m->fields[0].type));
        } else {
            bprintf(b, "%s", m->short_name);
        }
    } else {
        bprintf(b, "%s", scalar_name(f->type));
    }
}

typedef struct md {
    const docs *docs;
    json_t *seen; /* full names already queued */
    const void *queue[512];
    bool queue_is_enum[512];
    size_t n;
} md;

static void md_queue(md *m, const char *name, const void *desc, bool is_enum)
{
    if (json_object_get(m->seen, name))
        return;
    if (m->n == sizeof(m->queue) / sizeof(m->queue[0]))
        die("too many types for the reference");
    set(m->seen, name, json_true());
    m->queue[m->n] = desc;
    m->queue_is_enum[m->n] = is_enum;
    m->n++;
}

static void md_enum(buf *b, md *m, const ProtobufCEnumDescriptor *e)
{
    const char *c = comment(m->docs, e->name);

    bprintf(b, "### %s\n\n", local_name(e->name, e->package_name));
    paragraph(b, c);
    bprintf(b, "| value | meaning |\n|---|---|\n");
    for (unsigned i = 0; i < e->n_values; i++) {
        bprintf(b, "| `%s` | ", e->values[i].name);
        cell(b, comment2(m->docs, e->name, e->values[i].name));
        bprintf(b, " |\n");
    }
    bprintf(b, "\n");
}

static void md_message(buf *b, md *m, const ProtobufCMessageDescriptor *d)
{
    const char *c = comment(m->docs, d->name);
    gen g = {m->docs, NULL};

    bprintf(b, "### %s\n\n", local_name(d->name, d->package_name));
    paragraph(b, c);
    if (d->n_fields == 0) {
        bprintf(b, "No fields: write `{}`.\n\n");
        return;
    }
    bprintf(b, "| field | type | description |\n|---|---|---|\n");
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        const ProtobufCFieldDescriptor *elem = f;
        char jn[128];

        json_name(jn, sizeof(jn), f->name);
        bprintf(b, "| `%s` | ", jn);
        md_type(b, f, false);
        bprintf(b, " | ");
        cell(b, comment2(m->docs, d->name, f->name));
        if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            const ProtobufCFieldDescriptor *mem[64];
            size_t n = oneof_members(d, f, mem, 64);
            if (n > 1)
                bprintf(b, "<br>*One of `%s`.*", oneof_name(&g, d, f));
        }
        if (f->flags & PROTOBUF_C_FIELD_FLAG_DEPRECATED)
            bprintf(b, "<br>*Deprecated.*");
        bprintf(b, " |\n");
        if (is_map(f))
            elem = &((const ProtobufCMessageDescriptor *)f->descriptor)->fields[1];
        if (elem->type == PROTOBUF_C_TYPE_ENUM) {
            const ProtobufCEnumDescriptor *e = elem->descriptor;
            md_queue(m, e->name, e, true);
        } else if (elem->type == PROTOBUF_C_TYPE_MESSAGE) {
            const ProtobufCMessageDescriptor *sub = elem->descriptor;
            if (strncmp(sub->name, "google.protobuf.", 16) != 0)
                md_queue(m, sub->name, sub, false);
        }
    }
    bprintf(b, "\n");
}

static void reference(outputs *out, const docs *d)
{
    buf b = {0};
    md m = {d, obj(), {0}, {0}, 0};

    bprintf(&b, "# Sluice API reference\n\n"
                "<!-- Generated by tools/schemagen from proto/sluice/v1; do not edit. "
                "Run `make schemas`. -->\n\n"
                "Every field of every resource, by its YAML/JSON name. "
                "See [docs/api.md](../docs/api.md) for the resource model, and the JSON "
                "Schemas beside this file to validate documents.\n\n"
                "| kind | apiVersion | KV bucket | key | schema |\n|---|---|---|---|---|\n");
    for (size_t i = 0; i < sl_kind_count(); i++) {
        const sl_kind *k = sl_kind_at(i);
        char a[128], file[128];
        anchor(a, sizeof(a), k->kind);
        file_name(file, sizeof(file), k, "json");
        bprintf(&b, "| [%s](#%s) | `%s` | `%s` | `%s%s<namespace>.<name>` | [%s](%s) |\n", k->kind,
                a, k->api_version, k->bucket, k->key_prefix ? k->key_prefix : "",
                k->key_prefix ? "." : "", file, file);
    }
    bprintf(&b, "\n");
    for (size_t i = 0; i < sl_kind_count(); i++) {
        const sl_kind *k = sl_kind_at(i);
        size_t start;

        bprintf(&b, "## %s\n\n```yaml\napiVersion: %s\nkind: %s\nmetadata: {name: ..., "
                    "namespace: ...}   # Metadata\nspec: {...}                          # %s\n```\n\n",
                k->kind, k->api_version, k->kind, k->spec_descriptor->short_name);
        /* The resource message itself is documented by its spec; shared
         * types (Metadata, Status) appear once, under the first kind. */
        set(m.seen, k->descriptor->name, json_true());
        start = m.n;
        paragraph(&b, comment(d, k->descriptor->name));
        md_queue(&m, k->spec_descriptor->name, k->spec_descriptor, false);
        md_queue(&m, "sluice.v1.Metadata", &sluice__v1__metadata__descriptor, false);
        md_queue(&m, "sluice.v1.Status", &sluice__v1__status__descriptor, false);
        for (size_t j = start; j < m.n; j++) {
            if (m.queue_is_enum[j])
                md_enum(&b, &m, m.queue[j]);
            else
                md_message(&b, &m, m.queue[j]);
        }
    }
    json_decref(m.seen);
    /* One trailing newline. */
    while (b.len > 1 && b.p[b.len - 1] == '\n' && b.p[b.len - 2] == '\n')
        b.p[--b.len] = '\0';
    add_output(out, "reference.md", b.p);
}

/* --- writing and checking --------------------------------------------- */

/* The first line where two texts differ (1-based). */
static size_t first_diff_line(const char *a, const char *b)
{
    size_t line = 1;

    for (; *a && *a == *b; a++, b++)
        line += *a == '\n';
    return line;
}

static bool generated(const outputs *o, const char *name)
{
    for (size_t i = 0; i < o->n; i++)
        if (strcmp(o->items[i].name, name) == 0)
            return true;
    return false;
}

static int check(const outputs *o, const char *dir)
{
    char path[4096];
    int stale = 0;
    DIR *dp;
    struct dirent *de;

    for (size_t i = 0; i < o->n; i++) {
        char *have;
        snprintf(path, sizeof(path), "%s/%s", dir, o->items[i].name);
        if (sl_file_read(&have, NULL, path) != SL_OK) {
            fprintf(stderr, "%s: missing\n", path);
            stale = 1;
        } else if (strcmp(have, o->items[i].text) != 0) {
            fprintf(stderr, "%s: differs from the protos from line %zu\n", path,
                    first_diff_line(have, o->items[i].text));
            stale = 1;
        }
        free(have);
    }
    if ((dp = opendir(dir))) {
        while ((de = readdir(dp))) {
            size_t n = strlen(de->d_name);
            if (n > 5 && strcmp(de->d_name + n - 5, ".json") == 0 && !generated(o, de->d_name)) {
                fprintf(stderr, "%s/%s: not generated any more; remove it\n", dir, de->d_name);
                stale = 1;
            }
        }
        closedir(dp);
    }
    if (stale)
        fprintf(stderr, "schemas/ is stale: run make schemas\n");
    return stale;
}

static void write_all(const outputs *o, const char *dir)
{
    char path[4096], tmp[4200];

    for (size_t i = 0; i < o->n; i++) {
        FILE *fp;
        size_t n = strlen(o->items[i].text);
        snprintf(path, sizeof(path), "%s/%s", dir, o->items[i].name);
        snprintf(tmp, sizeof(tmp), "%s.tmp", path);
        fp = fopen(tmp, "wb");
        if (!fp)
            die("%s: %s", tmp, strerror(errno));
        if (fwrite(o->items[i].text, 1, n, fp) != n || fclose(fp) != 0)
            die("%s: write failed", tmp);
        if (rename(tmp, path) != 0)
            die("%s: %s", path, strerror(errno));
    }
}

static void usage(void)
{
    fprintf(stderr, "usage: sluice-schemagen [--descriptor-set FILE] [--check] OUTDIR\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *set_path = SCHEMAGEN_DESCRIPTOR_SET;
    const char *dir = NULL;
    bool do_check = false;
    docs d = {0};
    outputs out = {0};
    int rc = 0;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--check") == 0)
            do_check = true;
        else if (strcmp(argv[i], "--descriptor-set") == 0 && i + 1 < argc)
            set_path = argv[++i];
        else if (argv[i][0] == '-' || dir)
            usage();
        else
            dir = argv[i];
    }
    if (!dir)
        usage();
    json_object_seed(1); /* hash order must not vary between runs */
    load_docs(&d, set_path);
    kind_schemas(&out, &d);
    any_schema(&out, &d);
    reference(&out, &d);
    if (do_check)
        rc = check(&out, dir);
    else
        write_all(&out, dir);
    for (size_t i = 0; i < out.n; i++)
        free(out.items[i].text);
    json_decref(d.comments);
    json_decref(d.oneofs);
    return rc;
}
