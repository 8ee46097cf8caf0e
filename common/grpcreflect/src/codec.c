/* codec.c - ServerReflection requests and responses by hand (sluice/wire.h), and descriptor sets. */
#include <stdio.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "google/protobuf/descriptor.pb-c.h"
#include "sluice/grpc_reflect.h"
#include "sluice/pbcheck.h"
#include "sluice/vec.h"
#include "sluice/wire.h"

sl_status sl_reflect_request_encode(uint8_t **out, size_t *len, int what, const char *arg)
{
    size_t n = strlen(arg);
    uint8_t *p = malloc(sl_wire_ld_len(n));
    if (!p)
        return sl_error_set(SL_ERR_NOMEM, "out of memory");
    *len = (size_t)(sl_wire_ld(p, (unsigned)what, arg, n) - p);
    *out = p;
    return SL_OK;
}

/* Reads a tag and, for a length-delimited field, its bytes. */
static sl_status next_field(const uint8_t *p, size_t len, size_t *pos, unsigned *field, unsigned *wt,
                            sl_reflect_bytes *ld, uint64_t *varint)
{
    uint64_t tag, n;
    if (sl_wire_varint_get(&tag, p, len, pos) != SL_OK)
        return SL_ERR_PARSE;
    *field = (unsigned)(tag >> 3);
    *wt = (unsigned)(tag & 7);
    if (*wt == SL_WIRE_LEN) {
        if (sl_wire_varint_get(&n, p, len, pos) != SL_OK || n > len - *pos)
            return SL_ERR_PARSE;
        ld->data = p + *pos;
        ld->len = (size_t)n;
        *pos += (size_t)n;
        return SL_OK;
    }
    if (*wt == SL_WIRE_VARINT)
        return sl_wire_varint_get(varint, p, len, pos);
    return sl_wire_skip(p, len, pos, *wt);
}

static sl_status add_item(sl_reflect_response *r, size_t *cap, sl_reflect_bytes b)
{
    if (SL_VEC_RESERVE(r->items, *cap, r->n_items + 1) != SL_OK)
        return SL_ERR_NOMEM;
    r->items[r->n_items++] = b;
    return SL_OK;
}

/* The repeated field 1 of a nested message: each value as an item; for the
 * service list, field 1 of each ServiceResponse. */
static sl_status items_of(sl_reflect_response *r, size_t *cap, sl_reflect_bytes m, int nested)
{
    size_t pos = 0;
    while (pos < m.len) {
        unsigned f, wt;
        sl_reflect_bytes b = {0}, name = {0};
        uint64_t v;
        if (next_field(m.data, m.len, &pos, &f, &wt, &b, &v) != SL_OK)
            return SL_ERR_PARSE;
        if (f != 1 || wt != SL_WIRE_LEN)
            continue;
        if (nested) {
            size_t q = 0;
            while (q < b.len) {
                unsigned f2, wt2;
                sl_reflect_bytes b2 = {0};
                if (next_field(b.data, b.len, &q, &f2, &wt2, &b2, &v) != SL_OK)
                    return SL_ERR_PARSE;
                if (f2 == 1 && wt2 == SL_WIRE_LEN)
                    name = b2;
            }
            b = name;
        }
        if (add_item(r, cap, b) != SL_OK)
            return SL_ERR_NOMEM;
    }
    return SL_OK;
}

static sl_status error_of(sl_reflect_response *r, sl_reflect_bytes m)
{
    size_t pos = 0;
    while (pos < m.len) {
        unsigned f, wt;
        sl_reflect_bytes b = {0};
        uint64_t v = 0;
        if (next_field(m.data, m.len, &pos, &f, &wt, &b, &v) != SL_OK)
            return SL_ERR_PARSE;
        if (f == 1 && wt == SL_WIRE_VARINT)
            r->error_code = (int32_t)v;
        else if (f == 2 && wt == SL_WIRE_LEN)
            r->error_message = b;
    }
    return SL_OK;
}

sl_status sl_reflect_response_decode(sl_reflect_response *out, const uint8_t *data, size_t len)
{
    size_t pos = 0, cap = 0;
    sl_status rc = SL_OK;
    memset(out, 0, sizeof *out);
    while (pos < len && rc == SL_OK) {
        unsigned f, wt;
        sl_reflect_bytes b = {0};
        uint64_t v;
        if (next_field(data, len, &pos, &f, &wt, &b, &v) != SL_OK) {
            rc = sl_error_set(SL_ERR_PARSE, "ServerReflectionResponse: malformed field at byte %zu", pos);
            break;
        }
        if (wt != SL_WIRE_LEN)
            continue;
        if (f == 4 || f == 6) {
            out->kind = f == 4 ? SL_REFLECT_FILES : SL_REFLECT_LIST;
            out->n_items = 0;
            rc = items_of(out, &cap, b, f == 6);
        } else if (f == 7) {
            out->kind = SL_REFLECT_ERROR;
            rc = error_of(out, b);
        }
        if (rc == SL_ERR_PARSE)
            rc = sl_error_set(SL_ERR_PARSE, "ServerReflectionResponse: malformed field %u", f);
        else if (rc == SL_ERR_NOMEM)
            rc = sl_error_set(SL_ERR_NOMEM, "out of memory");
    }
    if (rc != SL_OK)
        sl_reflect_response_deinit(out);
    return rc;
}

void sl_reflect_response_deinit(sl_reflect_response *r)
{
    free(r->items);
    memset(r, 0, sizeof *r);
}

void sl_reflect_files_init(sl_reflect_files *f)
{
    memset(f, 0, sizeof *f);
}

void sl_reflect_files_deinit(sl_reflect_files *f)
{
    for (size_t i = 0; i < f->n; i++) {
        free(f->names[i]);
        free(f->data[i]);
    }
    free(f->names);
    free(f->data);
    free(f->len);
    memset(f, 0, sizeof *f);
}

static Google__Protobuf__FileDescriptorProto *unpack_file(const uint8_t *data, size_t len)
{
    ProtobufCMessage *m = NULL;
    if (sl_pb_unpack(&m, &google__protobuf__file_descriptor_proto__descriptor, NULL, data, len) != SL_OK)
        return NULL;
    return (Google__Protobuf__FileDescriptorProto *)m;
}

static bool has_file(const sl_reflect_files *f, const char *name)
{
    for (size_t i = 0; i < f->n; i++)
        if (!strcmp(f->names[i], name))
            return true;
    return false;
}

sl_status sl_reflect_files_add(sl_reflect_files *f, const uint8_t *data, size_t len)
{
    Google__Protobuf__FileDescriptorProto *fd = unpack_file(data, len);
    sl_status rc = SL_OK;
    size_t c1 = f->cap, c2 = f->cap, c3 = f->cap;
    if (!fd)
        return sl_error_set(SL_ERR_PARSE, "not a FileDescriptorProto: %s", sl_error_msg());
    const char *name = fd->name ? fd->name : "";
    if (has_file(f, name))
        goto out;
    if (f->n >= SL_REFLECT_MAX_FILES || f->total + len > SL_REFLECT_MAX_BYTES) {
        rc = sl_error_set(SL_ERR_INVALID, "more than %d files or %u bytes of descriptors", SL_REFLECT_MAX_FILES,
                          SL_REFLECT_MAX_BYTES);
        goto out;
    }
    if (SL_VEC_RESERVE(f->names, c1, f->n + 1) != SL_OK || SL_VEC_RESERVE(f->data, c2, f->n + 1) != SL_OK ||
        SL_VEC_RESERVE(f->len, c3, f->n + 1) != SL_OK) {
        rc = sl_error_set(SL_ERR_NOMEM, "out of memory");
        goto out;
    }
    f->cap = c1; /* the three grew alike */
    f->names[f->n] = strdup(name);
    f->data[f->n] = malloc(len ? len : 1);
    if (!f->names[f->n] || !f->data[f->n]) {
        free(f->names[f->n]);
        free(f->data[f->n]);
        rc = sl_error_set(SL_ERR_NOMEM, "out of memory");
        goto out;
    }
    memcpy(f->data[f->n], data, len);
    f->len[f->n++] = len;
    f->total += len;
out:
    protobuf_c_message_free_unpacked(&fd->base, NULL);
    return rc;
}

const char *sl_reflect_files_missing(const sl_reflect_files *f)
{
    static _Thread_local char missing[1024];
    for (size_t i = 0; i < f->n; i++) {
        Google__Protobuf__FileDescriptorProto *fd = unpack_file(f->data[i], f->len[i]);
        const char *found = NULL;
        for (size_t d = 0; fd && d < fd->n_dependency && !found; d++)
            if (!has_file(f, fd->dependency[d])) {
                snprintf(missing, sizeof missing, "%s", fd->dependency[d]);
                found = missing;
            }
        if (fd)
            protobuf_c_message_free_unpacked(&fd->base, NULL);
        if (found)
            return found;
    }
    return NULL;
}
