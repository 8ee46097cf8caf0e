/* pack.c - protobuf packing with each nested message's size computed once.
 *
 * protobuf_c_message_pack() asks every sub-message for its size before
 * packing it, and that size walks the whole sub-tree again: a message at
 * depth d is sized d times. A RouteConfiguration of 50,000 routes spent more
 * time in those sizes than in anything else. Here one pre-order pass sizes
 * every message into an array of slots, and the packing pass, visiting the
 * messages in the same order, reads each size from its slot. The bytes are
 * protobuf-c's own (same field order, same zero-skipping rules, unknown
 * fields last); unit_test_translator compares them for every golden
 * resource. */
#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "sluice/vec.h"
#include "sluice/wire.h"

typedef struct sizes {
    size_t *v;
    size_t n, cap;
    bool oom;
} sizes;

static uint8_t *put_fixed(uint8_t *o, uint64_t v, int bytes)
{
    for (int i = 0; i < bytes; i++)
        *o++ = (uint8_t)(v >> (8 * i));
    return o;
}

static int wire_type(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_FIXED64: case PROTOBUF_C_TYPE_SFIXED64: case PROTOBUF_C_TYPE_DOUBLE:
        return PROTOBUF_C_WIRE_TYPE_64BIT;
    case PROTOBUF_C_TYPE_FIXED32: case PROTOBUF_C_TYPE_SFIXED32: case PROTOBUF_C_TYPE_FLOAT:
        return PROTOBUF_C_WIRE_TYPE_32BIT;
    case PROTOBUF_C_TYPE_STRING: case PROTOBUF_C_TYPE_BYTES: case PROTOBUF_C_TYPE_MESSAGE:
        return PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED;
    default:
        return PROTOBUF_C_WIRE_TYPE_VARINT;
    }
}

/* A scalar's value as the varint or fixed-width integer it is sent as. */
static uint64_t scalar_bits(ProtobufCType t, const void *p)
{
    switch (t) {
    case PROTOBUF_C_TYPE_INT32: case PROTOBUF_C_TYPE_ENUM:
        return (uint64_t)(int64_t) * (const int32_t *)p; /* negative: 10 bytes */
    case PROTOBUF_C_TYPE_SINT32: {
        int32_t v = *(const int32_t *)p;
        return (uint32_t)(((uint32_t)v << 1) ^ (uint32_t)(v >> 31));
    }
    case PROTOBUF_C_TYPE_UINT32: case PROTOBUF_C_TYPE_FIXED32: case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_FLOAT:
        return *(const uint32_t *)p;
    case PROTOBUF_C_TYPE_SINT64: {
        int64_t v = *(const int64_t *)p;
        return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
    }
    case PROTOBUF_C_TYPE_BOOL:
        return *(const protobuf_c_boolean *)p ? 1 : 0;
    default: /* INT64, UINT64, FIXED64, SFIXED64, DOUBLE */
        return *(const uint64_t *)p;
    }
}

static size_t scalar_size(ProtobufCType t, const void *p)
{
    int w = wire_type(t);
    if (w == PROTOBUF_C_WIRE_TYPE_64BIT)
        return 8;
    if (w == PROTOBUF_C_WIRE_TYPE_32BIT)
        return 4;
    return sl_wire_varint_len(scalar_bits(t, p));
}

static size_t elem_bytes(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_INT64: case PROTOBUF_C_TYPE_UINT64: case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_FIXED64: case PROTOBUF_C_TYPE_SFIXED64: case PROTOBUF_C_TYPE_DOUBLE:
        return 8;
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_STRING: case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(void *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    default:
        return 4;
    }
}

/* Whether a non-repeated field is sent, as protobuf-c decides. */
static bool present(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
    const char *base = (const char *)m;
    const void *member = base + f->offset;
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
        if (*(const uint32_t *)(base + f->quantifier_offset) != f->id)
            return false;
        if (f->type == PROTOBUF_C_TYPE_MESSAGE || f->type == PROTOBUF_C_TYPE_STRING) {
            const void *ptr = *(const void *const *)member;
            return ptr && ptr != f->default_value;
        }
        return true;
    }
    if (f->label == PROTOBUF_C_LABEL_REQUIRED)
        return true;
    if (f->label == PROTOBUF_C_LABEL_OPTIONAL) {
        if (f->type == PROTOBUF_C_TYPE_MESSAGE || f->type == PROTOBUF_C_TYPE_STRING) {
            const void *ptr = *(const void *const *)member;
            return ptr && ptr != f->default_value;
        }
        return *(const protobuf_c_boolean *)(base + f->quantifier_offset);
    }
    /* proto3: zero values are not sent */
    switch (f->type) {
    case PROTOBUF_C_TYPE_MESSAGE:
        return *(const void *const *)member != NULL;
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(const char *const *)member;
        return s && s[0];
    }
    case PROTOBUF_C_TYPE_BYTES:
        return ((const ProtobufCBinaryData *)member)->len != 0;
    case PROTOBUF_C_TYPE_BOOL:
        return *(const protobuf_c_boolean *)member != 0;
    default:
        return elem_bytes(f->type) == 8 ? *(const uint64_t *)member != 0 : *(const uint32_t *)member != 0;
    }
}

/* A repeated field's elements: their count, and their array through *arr. */
static size_t repeated(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f, const char **arr)
{
    *arr = *(const char *const *)((const char *)m + f->offset);
    return *(const size_t *)((const char *)m + f->quantifier_offset);
}

/* The payload of a packed field: n scalars of type t at arr. */
static size_t packed_size(ProtobufCType t, const char *arr, size_t n)
{
    size_t eb = elem_bytes(t), payload = 0;
    for (size_t j = 0; j < n; j++)
        payload += scalar_size(t, arr + j * eb);
    return payload;
}

static size_t msg_size(sizes *S, const ProtobufCMessage *m);

/* Size of one value (no tag) of field type t at p. */
static size_t value_size(sizes *S, ProtobufCType t, const void *p)
{
    switch (t) {
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(const char *const *)p;
        size_t n = s ? strlen(s) : 0;
        return sl_wire_varint_len(n) + n;
    }
    case PROTOBUF_C_TYPE_BYTES: {
        size_t n = ((const ProtobufCBinaryData *)p)->len;
        return sl_wire_varint_len(n) + n;
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *sub = *(const ProtobufCMessage *const *)p;
        size_t n = sub ? msg_size(S, sub) : 0;
        return sl_wire_varint_len(n) + n;
    }
    default:
        return scalar_size(t, p);
    }
}

static size_t msg_size(sizes *S, const ProtobufCMessage *m)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    size_t slot = S->n, total = 0;
    if (SL_VEC_RESERVE(S->v, S->cap, S->n + 1) != SL_OK) {
        S->oom = true;
        return 0;
    }
    S->n++;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        const char *member = (const char *)m + f->offset;
        size_t tag = sl_wire_varint_len((uint64_t)f->id << 3);
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            const char *arr;
            size_t n = repeated(m, f, &arr), eb = elem_bytes(f->type);
            if (!n)
                continue;
            if (f->flags & PROTOBUF_C_FIELD_FLAG_PACKED) {
                size_t payload = packed_size(f->type, arr, n);
                total += tag + sl_wire_varint_len(payload) + payload;
            } else {
                for (size_t j = 0; j < n; j++)
                    total += tag + value_size(S, f->type, arr + j * eb);
            }
        } else if (present(m, f)) {
            total += tag + value_size(S, f->type, member);
        }
    }
    for (unsigned i = 0; i < m->n_unknown_fields; i++)
        total += sl_wire_varint_len((uint64_t)m->unknown_fields[i].tag << 3) + m->unknown_fields[i].len;
    if (!S->oom)
        S->v[slot] = total;
    return total;
}

static uint8_t *msg_pack(const sizes *S, size_t *idx, const ProtobufCMessage *m, uint8_t *o);

static uint8_t *value_pack(const sizes *S, size_t *idx, ProtobufCType t, const void *p, uint8_t *o)
{
    switch (t) {
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(const char *const *)p;
        size_t n = s ? strlen(s) : 0;
        o = sl_wire_varint_put(o, n);
        memcpy(o, s ? s : "", n);
        return o + n;
    }
    case PROTOBUF_C_TYPE_BYTES: {
        const ProtobufCBinaryData *b = p;
        o = sl_wire_varint_put(o, b->len);
        if (b->len)
            memcpy(o, b->data, b->len);
        return o + b->len;
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *sub = *(const ProtobufCMessage *const *)p;
        if (!sub)
            return sl_wire_varint_put(o, 0);
        o = sl_wire_varint_put(o, S->v[*idx]); /* the next slot is sub's */
        return msg_pack(S, idx, sub, o);
    }
    default: {
        int w = wire_type(t);
        uint64_t bits = scalar_bits(t, p);
        if (w == PROTOBUF_C_WIRE_TYPE_64BIT)
            return put_fixed(o, bits, 8);
        if (w == PROTOBUF_C_WIRE_TYPE_32BIT)
            return put_fixed(o, bits, 4);
        return sl_wire_varint_put(o, bits);
    }
    }
}

static uint8_t *msg_pack(const sizes *S, size_t *idx, const ProtobufCMessage *m, uint8_t *o)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    (*idx)++; /* this message's slot (its size was written by the parent) */
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        const char *member = (const char *)m + f->offset;
        uint64_t tag = (uint64_t)f->id << 3;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            const char *arr;
            size_t n = repeated(m, f, &arr), eb = elem_bytes(f->type);
            if (!n)
                continue;
            if (f->flags & PROTOBUF_C_FIELD_FLAG_PACKED) {
                size_t payload = packed_size(f->type, arr, n);
                o = sl_wire_varint_put(o, tag | PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED);
                o = sl_wire_varint_put(o, payload);
                for (size_t j = 0; j < n; j++)
                    o = value_pack(S, idx, f->type, arr + j * eb, o);
            } else {
                for (size_t j = 0; j < n; j++) {
                    o = sl_wire_varint_put(o, tag | (uint64_t)wire_type(f->type));
                    o = value_pack(S, idx, f->type, arr + j * eb, o);
                }
            }
        } else if (present(m, f)) {
            o = sl_wire_varint_put(o, tag | (uint64_t)wire_type(f->type));
            o = value_pack(S, idx, f->type, member, o);
        }
    }
    for (unsigned i = 0; i < m->n_unknown_fields; i++) {
        const ProtobufCMessageUnknownField *u = &m->unknown_fields[i];
        o = sl_wire_varint_put(o, ((uint64_t)u->tag << 3) | (uint64_t)u->wire_type);
        memcpy(o, u->data, u->len);
        o += u->len;
    }
    return o;
}

/* m packed after head bytes of a malloc'ed buffer with tail bytes more. */
static uint8_t *pack_after(const ProtobufCMessage *m, size_t head, size_t tail, size_t *len)
{
    sizes S = {0};
    size_t idx = 0, n;
    uint8_t *out = NULL, *end;
    if (SL_VEC_RESERVE(S.v, S.cap, 256) != SL_OK) /* most resources have fewer messages */
        goto out;
    n = msg_size(&S, m);
    if (S.oom)
        goto out;
    out = malloc(head + (n ? n : 1) + tail);
    if (!out)
        goto out;
    end = msg_pack(&S, &idx, m, out + head);
    *len = (size_t)(end - (out + head));
out:
    free(S.v);
    return out;
}

uint8_t *tr_pack_heap(const ProtobufCMessage *m, size_t *len) { return pack_after(m, 0, 0, len); }

tr_blob *tr_blob_pack(const ProtobufCMessage *m, const char *name)
{
    size_t len = 0, nlen = strlen(name) + 1;
    tr_blob *b = (tr_blob *)pack_after(m, offsetof(tr_blob, data), nlen, &len);
    if (b) {
        b->refs = 1;
        b->len = len;
        b->parts = NULL;
        b->name = (char *)b->data + len;
        memcpy(b->name, name, nlen);
    }
    return b;
}

tr_blob *tr_blob_ref(tr_blob *b)
{
    b->refs++;
    return b;
}

void tr_blob_unref(tr_blob *b)
{
    if (b && --b->refs == 0) {
        tr_rparts_free(b->parts);
        free(b);
    }
}

void tr_rparts_free(tr_rparts *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->pub.n; i++)
        tr_blob_unref(p->vh[i]);
    free(p->vh);
    free(p->v);
    free(p->head);
    free(p);
}
