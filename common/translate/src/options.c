/* options.c - option fields: the ones set that no plugin implements, and
 * inheritance of route options from delegating routes. */
#include <stdio.h>
#include <string.h>

#include "core.h"
#include "sluice/codec.h"
#include "translate_internal.h"

static bool field_is_set(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
    const char *base = (const char *)m;
    if (f->label == PROTOBUF_C_LABEL_REPEATED)
        return *(const size_t *)(base + f->quantifier_offset) != 0;
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
        return *(const uint32_t *)(base + f->quantifier_offset) == f->id;
    switch (f->type) {
    case PROTOBUF_C_TYPE_MESSAGE:
        return *(void *const *)(base + f->offset) != NULL;
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)(base + f->offset);
        return s && s[0];
    }
    case PROTOBUF_C_TYPE_BYTES:
        return ((const ProtobufCBinaryData *)(base + f->offset))->len != 0;
    case PROTOBUF_C_TYPE_BOOL:
        return *(const protobuf_c_boolean *)(base + f->offset) != 0;
    case PROTOBUF_C_TYPE_INT64: case PROTOBUF_C_TYPE_UINT64: case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_FIXED64: case PROTOBUF_C_TYPE_SFIXED64: case PROTOBUF_C_TYPE_DOUBLE:
        return *(const uint64_t *)(base + f->offset) != 0;
    default:
        return *(const uint32_t *)(base + f->offset) != 0;
    }
}

/* Reports every set field of m that no plugin implements. */
void tr_check_fields(tr_ctx *tx, tr_map *supported, const ProtobufCMessage *m, const char *path)
{
    const ProtobufCMessageDescriptor *d;
    if (!m)
        return;
    d = m->descriptor;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        char key[256], json[128];
        if (!field_is_set(m, f))
            continue;
        snprintf(key, sizeof key, "%s.%s", d->short_name, f->name);
        if (tr_map_get(supported, key))
            continue;
        sl_codec_json_name(json, sizeof json, f->name);
        tr_error(tx, "%s.%s: not supported by Sluice (no plugin implements %s)", path, json, key);
    }
}

/* Size of the value of singular field f in its message. */
static size_t value_size(const ProtobufCFieldDescriptor *f)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_MESSAGE: case PROTOBUF_C_TYPE_STRING: return sizeof(void *);
    case PROTOBUF_C_TYPE_BYTES: return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_INT64: case PROTOBUF_C_TYPE_UINT64: case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_FIXED64: case PROTOBUF_C_TYPE_SFIXED64: case PROTOBUF_C_TYPE_DOUBLE: return 8;
    default: return 4;
    }
}

/* Field f of from into out (its oneof case or count too). */
static void copy_field(char *out, const ProtobufCMessage *from, const ProtobufCFieldDescriptor *f)
{
    const char *base = (const char *)from;
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
        memcpy(out + f->quantifier_offset, base + f->quantifier_offset, sizeof(size_t));
        memcpy(out + f->offset, base + f->offset, sizeof(void *));
        return;
    }
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
        memcpy(out + f->quantifier_offset, base + f->quantifier_offset, sizeof(uint32_t));
    memcpy(out + f->offset, base + f->offset, value_size(f));
}

/* Whether a singular message field f merges field by field: not a
 * well-known type (wrappers, Duration) or a reference, which are values. */
static bool merges_inside(const ProtobufCFieldDescriptor *f)
{
    const ProtobufCMessageDescriptor *d = f->descriptor;
    return f->type == PROTOBUF_C_TYPE_MESSAGE && f->label != PROTOBUF_C_LABEL_REPEATED &&
           strncmp(d->name, "google.protobuf.", 16) != 0 && strcmp(d->name, "sluice.v1.ResourceRef") != 0;
}

const ProtobufCMessage *tr_merge_fields(tr_ctx *tx, const ProtobufCMessage *parent, const ProtobufCMessage *child,
                                        bool parent_wins, bool deep, int depth)
{
    const ProtobufCMessageDescriptor *d;
    char *out;
    if (!parent)
        return child;
    if (!child)
        return parent;
    d = child->descriptor;
    out = tr_alloc(tx, d->sizeof_message);
    memcpy(out, child, d->sizeof_message);
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        bool in_child = field_is_set(child, f);
        if (!field_is_set(parent, f))
            continue;
        if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            /* another member of the oneof set in the child is the child's
             * choice of it */
            uint32_t cc = *(const uint32_t *)((const char *)child + f->quantifier_offset);
            if (cc != 0 && !in_child && !parent_wins)
                continue;
        }
        if (in_child && deep && merges_inside(f) && depth < SL_CODEC_MAX_DEPTH) {
            const ProtobufCMessage *const *pm = (const void *)((const char *)parent + f->offset);
            const ProtobufCMessage *const *cm = (const void *)((const char *)child + f->offset);
            const ProtobufCMessage *m = tr_merge_fields(tx, *pm, *cm, parent_wins, deep, depth + 1);
            memcpy(out + f->offset, &m, sizeof m);
        } else if (!in_child || parent_wins) {
            copy_field(out, parent, f);
        }
    }
    return (const ProtobufCMessage *)out;
}

const ProtobufCMessage *tr_merge_options(tr_ctx *tx, const ProtobufCMessage *parent,
                                             const ProtobufCMessage *child)
{
    return tr_merge_fields(tx, parent, child, false, false, 0);
}
