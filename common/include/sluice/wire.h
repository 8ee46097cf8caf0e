/* wire.h - the few protobuf wire-format writers the xDS server needs to
 * frame pre-encoded resources by hand. */
#ifndef SLUICE_XDS_WIRE_H
#define SLUICE_XDS_WIRE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline size_t wire_varint_len(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static inline uint8_t *wire_varint(uint8_t *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}

/* Length of a length-delimited field with a one-byte tag. */
static inline size_t wire_ld_len(size_t len) { return 1 + wire_varint_len(len) + len; }

/* Writes the tag and length of a length-delimited field (field < 16). */
static inline uint8_t *wire_ld_head(uint8_t *p, unsigned field, size_t len)
{
    *p++ = (uint8_t)(field << 3 | 2);
    return wire_varint(p, len);
}

static inline uint8_t *wire_ld(uint8_t *p, unsigned field, const void *data, size_t len)
{
    p = wire_ld_head(p, field, len);
    memcpy(p, data, len);
    return p + len;
}

#endif
