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

const ProtobufCMessage *tr_merge_options(tr_ctx *tx, const ProtobufCMessage *parent,
                                             const ProtobufCMessage *child)
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
        if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            uint32_t *cc = (uint32_t *)(out + f->quantifier_offset);
            const uint32_t *pc = (const uint32_t *)((const char *)parent + f->quantifier_offset);
            if (*cc == 0 && *pc == f->id) {
                *cc = *pc;
                memcpy(out + f->offset, (const char *)parent + f->offset, sizeof(void *) > 8 ? 16 : 8);
            }
            continue;
        }
        if (field_is_set(child, f) || !field_is_set(parent, f))
            continue;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            memcpy(out + f->quantifier_offset, (const char *)parent + f->quantifier_offset, sizeof(size_t));
            memcpy(out + f->offset, (const char *)parent + f->offset, sizeof(void *));
        } else {
            size_t sz = f->type == PROTOBUF_C_TYPE_MESSAGE || f->type == PROTOBUF_C_TYPE_STRING ? sizeof(void *)
                        : f->type == PROTOBUF_C_TYPE_BYTES                                       ? sizeof(ProtobufCBinaryData)
                        : (f->type == PROTOBUF_C_TYPE_INT64 || f->type == PROTOBUF_C_TYPE_UINT64 ||
                           f->type == PROTOBUF_C_TYPE_DOUBLE || f->type == PROTOBUF_C_TYPE_SINT64 ||
                           f->type == PROTOBUF_C_TYPE_FIXED64 || f->type == PROTOBUF_C_TYPE_SFIXED64)
                            ? 8
                            : 4;
            memcpy(out + f->offset, (const char *)parent + f->offset, sz);
        }
    }
    return (const ProtobufCMessage *)out;
}
