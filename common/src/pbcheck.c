/* pbcheck.c - a bounded, non-recursive walk of protobuf wire bytes before
 * protobuf-c's recursive unpack sees them. */
#include "sluice/pbcheck.h"

#include <stdio.h>
#include <string.h>

/* The deepest max_depth callers may ask for: the walk keeps one frame per
 * level on the stack. */
#define PB_DEPTH_CAP 256

typedef struct frame {
    const ProtobufCMessageDescriptor *desc;
    const char *field; /* the field of the parent this message is in (NULL at the top) */
    size_t end;        /* offset just past this message's bytes */
} frame;

/* Reads a varint at *pos (< end); false when it is truncated or too long. */
static int read_varint(const uint8_t *p, size_t end, size_t *pos, uint64_t *v)
{
    uint64_t r = 0;
    for (unsigned shift = 0; shift < 64 && *pos < end; shift += 7) {
        uint8_t b = p[(*pos)++];
        r |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = r;
            return 1;
        }
    }
    return 0;
}

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

/* Skips the value of a field of wire type wt at *pos; what names the
 * problem when it cannot. */
static int skip_value(const uint8_t *data, size_t end, size_t *pos, unsigned wt, const char **what)
{
    uint64_t v;
    switch (wt) {
    case 0:
        if (!read_varint(data, end, pos, &v)) {
            *what = "truncated varint";
            return 0;
        }
        return 1;
    case 1:
    case 5: {
        size_t w = wt == 1 ? 8 : 4;
        if (end - *pos < w) {
            *what = "truncated fixed-width field";
            return 0;
        }
        *pos += w;
        return 1;
    }
    default:
        *what = wt == 3 || wt == 4 ? "groups are not supported" : "invalid wire type";
        return 0;
    }
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
        if (!read_varint(data, f->end, &pos, &tag) || tag >> 3 == 0 || tag >> 3 > 0x1fffffff)
            return fail(st, n, NULL, at, "invalid field tag");
        unsigned wt = (unsigned)(tag & 7);
        const ProtobufCFieldDescriptor *fd =
            protobuf_c_message_descriptor_get_field(f->desc, (unsigned)(tag >> 3));
        if (wt != 2) {
            if (!skip_value(data, f->end, &pos, wt, &what))
                return fail(st, n, fd ? fd->name : NULL, at, what);
            continue;
        }
        if (!read_varint(data, f->end, &pos, &l) || l > f->end - pos)
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
