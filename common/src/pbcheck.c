/* pbcheck.c - a bounded, non-recursive walk of protobuf wire bytes before
 * protobuf-c's recursive unpack sees them. */
#include "sluice/pbcheck.h"

#include <stdio.h>
#include <string.h>

#include "sluice/wire.h"

/* The deepest max_depth callers may ask for: the walk keeps one frame per
 * level on the stack. */
#define PB_DEPTH_CAP 256

typedef struct frame {
    const ProtobufCMessageDescriptor *desc;
    const char *field; /* the field of the parent this message is in (NULL at the top) */
    size_t end;        /* offset just past this message's bytes */
} frame;

/* "a.b.c" of the frames' fields (and last, when not NULL) into buf. */
static const char *path_of(char *buf, size_t cap, const frame *st, size_t n, const char *last)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 1; i <= n; i++) {
        const char *f = i < n ? st[i].field : last;
        if (!f)
            continue;
        int w = snprintf(buf + used, cap - used, "%s%s", used ? "." : "", f);
        if (w < 0 || (size_t)w >= cap - used)
            break;
        used += (size_t)w;
    }
    return buf[0] ? buf : "(top level)";
}

static sl_status fail(const frame *st, size_t n, const char *last, size_t off, const char *what)
{
    char path[512];
    return sl_error_set(SL_ERR_PARSE, "%s: %s at byte %zu (in %s)", st[0].desc->name, what, off,
                        path_of(path, sizeof path, st, n, last));
}

/* Skips the value of a field of wire type wt (not 2) at *pos; what names
 * the problem when it cannot. */
static int skip_value(const uint8_t *data, size_t end, size_t *pos, unsigned wt, const char **what)
{
    if (sl_wire_skip(data, end, pos, wt) == SL_OK)
        return 1;
    *what = wt == SL_WIRE_VARINT                         ? "truncated varint"
            : wt == SL_WIRE_64BIT || wt == SL_WIRE_32BIT ? "truncated fixed-width field"
            : wt == 3 || wt == 4                         ? "groups are not supported"
                                                         : "invalid wire type";
    return 0;
}

sl_status sl_pb_check(const ProtobufCMessageDescriptor *desc, const uint8_t *data, size_t len,
                      unsigned max_depth)
{
    frame st[PB_DEPTH_CAP];
    size_t n = 1, pos = 0;
    const char *what = NULL;

    if (!desc || (!data && len))
        return sl_error_set(SL_ERR_INVALID, "sl_pb_check: no descriptor or no data");
    if (max_depth == 0 || max_depth > PB_DEPTH_CAP)
        max_depth = max_depth ? PB_DEPTH_CAP : 1;
    st[0] = (frame){desc, NULL, len};
    while (n > 0) {
        frame *f = &st[n - 1];
        uint64_t tag, l;
        size_t at = pos;
        if (pos == f->end) {
            n--;
            continue;
        }
        if (sl_wire_varint_get(&tag, data, f->end, &pos) != SL_OK || tag >> 3 == 0 || tag >> 3 > 0x1fffffff)
            return fail(st, n, NULL, at, "invalid field tag");
        unsigned wt = (unsigned)(tag & 7);
        const ProtobufCFieldDescriptor *fd =
            protobuf_c_message_descriptor_get_field(f->desc, (unsigned)(tag >> 3));
        if (wt != 2) {
            if (!skip_value(data, f->end, &pos, wt, &what))
                return fail(st, n, fd ? fd->name : NULL, at, what);
            continue;
        }
        if (sl_wire_varint_get(&l, data, f->end, &pos) != SL_OK || l > f->end - pos)
            return fail(st, n, fd ? fd->name : NULL, at, "length-delimited field runs past its message");
        if (!fd || fd->type != PROTOBUF_C_TYPE_MESSAGE) {
            pos += (size_t)l; /* bytes, strings, packed scalars, unknown fields */
            continue;
        }
        if (n >= max_depth) {
            char why[96];
            snprintf(why, sizeof why, "messages nested deeper than %u levels", max_depth);
            return fail(st, n, fd->name, at, why);
        }
        st[n++] = (frame){(const ProtobufCMessageDescriptor *)fd->descriptor, fd->name, pos + (size_t)l};
    }
    return SL_OK;
}

sl_status sl_pb_unpack(ProtobufCMessage **out, const ProtobufCMessageDescriptor *desc,
                       ProtobufCAllocator *alloc, const uint8_t *data, size_t len)
{
    sl_status st;
    *out = NULL;
    if ((st = sl_pb_check(desc, data, len, SL_PB_MAX_DEPTH)) != SL_OK)
        return st;
    *out = protobuf_c_message_unpack(desc, alloc, len, data ? data : (const uint8_t *)"");
    if (!*out)
        return sl_error_set(SL_ERR_PARSE, "%s: %zu bytes do not decode (bad field values)", desc->name, len);
    return SL_OK;
}
