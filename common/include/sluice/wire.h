/* sluice/wire.h - protobuf wire format by hand: the one varint writer and
 * reader, length-delimited fields, and skipping a field.
 *
 * For code that frames pre-encoded bytes (the xDS server's responses, the
 * translator's packer, the store's split route configurations) without a
 * protobuf-c message. Writers write into a buffer the caller sized with the
 * matching _len function and return the position after what they wrote.
 * Readers take the buffer, its length and a position (*pos), advance *pos
 * past what they read and return SL_ERR_PARSE, without recording an error
 * context, when the bytes end early or are malformed: the caller says what
 * it was reading. All functions are pure and thread safe.
 */
#ifndef SLUICE_WIRE_H
#define SLUICE_WIRE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "sluice/status.h"

/* Wire types (the low three bits of a tag). */
enum {
    SL_WIRE_VARINT = 0,
    SL_WIRE_64BIT = 1,
    SL_WIRE_LEN = 2, /* length-delimited: bytes, strings, messages */
    SL_WIRE_32BIT = 5,
};

/* Bytes of v as a varint: 1 (v < 128) to 10 (v >= 2^63). */
static inline size_t sl_wire_varint_len(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

/* Writes v as a varint at p (sl_wire_varint_len(v) bytes). */
static inline uint8_t *sl_wire_varint_put(uint8_t *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}

/* Reads the varint at p[*pos] into *v. SL_ERR_PARSE when p[0..len) ends
 * inside it or it is longer than ten bytes; *v is then unset and *pos is
 * past the bytes looked at. Bits past the 64th are dropped, as protobuf
 * does. */
static inline sl_status sl_wire_varint_get(uint64_t *v, const uint8_t *p, size_t len, size_t *pos)
{
    uint64_t x = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (*pos >= len)
            return SL_ERR_PARSE;
        uint8_t b = p[(*pos)++];
        x |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = x;
            return SL_OK;
        }
    }
    return SL_ERR_PARSE;
}

/* Skips the value of one field of wire type wt at p[*pos] (the tag already
 * read). SL_ERR_PARSE when it runs past len, or for groups (wire types 3
 * and 4, not in Envoy's API) and unknown wire types. */
static inline sl_status sl_wire_skip(const uint8_t *p, size_t len, size_t *pos, unsigned wt)
{
    uint64_t v;
    switch (wt) {
    case SL_WIRE_VARINT:
        return sl_wire_varint_get(&v, p, len, pos);
    case SL_WIRE_64BIT:
    case SL_WIRE_32BIT: {
        size_t n = wt == SL_WIRE_64BIT ? 8 : 4;
        if (*pos > len || len - *pos < n)
            return SL_ERR_PARSE;
        *pos += n;
        return SL_OK;
    }
    case SL_WIRE_LEN:
        if (sl_wire_varint_get(&v, p, len, pos) != SL_OK || v > len - *pos)
            return SL_ERR_PARSE;
        *pos += (size_t)v;
        return SL_OK;
    default:
        return SL_ERR_PARSE;
    }
}

/* Bytes of a length-delimited field with a one-byte tag (field < 16) and
 * len bytes of data. */
static inline size_t sl_wire_ld_len(size_t len) { return 1 + sl_wire_varint_len(len) + len; }

/* Writes the tag and length of a length-delimited field (field < 16); the
 * caller writes the len bytes of data next. */
static inline uint8_t *sl_wire_ld_head(uint8_t *p, unsigned field, size_t len)
{
    *p++ = (uint8_t)(field << 3 | SL_WIRE_LEN);
    return sl_wire_varint_put(p, len);
}

/* Writes a whole length-delimited field (field < 16): tag, length, data. */
static inline uint8_t *sl_wire_ld(uint8_t *p, unsigned field, const void *data, size_t len)
{
    p = sl_wire_ld_head(p, field, len);
    memcpy(p, data, len);
    return p + len;
}

#endif
