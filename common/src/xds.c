/* xds.c - xDS resource types and the sluice_xds key escaping (see sluice/xds.h). */
#include "sluice/xds.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/vec.h"
#include "sluice/wire.h"

static const struct {
    const char *url, *token, *shortname;
} types[SL_XDS_TYPE_COUNT] = {
    [SL_XDS_SECRET] = {SL_XDS_TYPE_PREFIX "envoy.extensions.transport_sockets.tls.v3.Secret", "secret", "sds"},
    [SL_XDS_CLUSTER] = {SL_XDS_TYPE_PREFIX "envoy.config.cluster.v3.Cluster", "cluster", "cds"},
    [SL_XDS_ENDPOINT] = {SL_XDS_TYPE_PREFIX "envoy.config.endpoint.v3.ClusterLoadAssignment", "endpoint", "eds"},
    [SL_XDS_LISTENER] = {SL_XDS_TYPE_PREFIX "envoy.config.listener.v3.Listener", "listener", "lds"},
    [SL_XDS_ROUTE] = {SL_XDS_TYPE_PREFIX "envoy.config.route.v3.RouteConfiguration", "route", "rds"},
    [SL_XDS_RATELIMIT] = {SL_XDS_TYPE_PREFIX "ratelimit.config.ratelimit.v3.RateLimitConfig", "ratelimit", "rls"},
};

const char *sl_xds_type_url(sl_xds_type t) { return types[t].url; }
const char *sl_xds_type_token(sl_xds_type t) { return types[t].token; }
const char *sl_xds_type_short(sl_xds_type t) { return types[t].shortname; }

int sl_xds_type_full_state(sl_xds_type t)
{
    return t == SL_XDS_LISTENER || t == SL_XDS_CLUSTER || t == SL_XDS_RATELIMIT;
}

sl_status sl_xds_type_from_url(sl_xds_type *out, const char *url)
{
    for (int i = 0; i < SL_XDS_TYPE_COUNT; i++)
        if (strcmp(url, types[i].url) == 0) {
            *out = (sl_xds_type)i;
            return SL_OK;
        }
    return sl_error_set(SL_ERR_NOT_FOUND, "unknown xDS type URL \"%.200s\"", url);
}

sl_status sl_xds_type_from_token(sl_xds_type *out, const char *token)
{
    for (int i = 0; i < SL_XDS_TYPE_COUNT; i++)
        if (strcmp(token, types[i].token) == 0) {
            *out = (sl_xds_type)i;
            return SL_OK;
        }
    return sl_error_set(SL_ERR_NOT_FOUND, "unknown xDS type token \"%.200s\"", token);
}

static int plain(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
}

sl_status sl_xds_key_escape(char *out, size_t cap, const char *name)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    if (!name[0])
        return sl_error_set(SL_ERR_INVALID, "empty name cannot be a key token");
    for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
        if (plain(*p)) {
            if (o + 1 >= cap)
                goto toolong;
            out[o++] = (char)*p;
        } else {
            if (o + 3 >= cap)
                goto toolong;
            out[o++] = '=';
            out[o++] = hex[*p >> 4];
            out[o++] = hex[*p & 15];
        }
    }
    out[o] = 0;
    return SL_OK;
toolong:
    return sl_error_set(SL_ERR_INVALID, "name \"%.100s\" too long for a key token", name);
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

sl_status sl_xds_key_unescape(char *out, size_t cap, const char *token)
{
    size_t o = 0;
    if (!token[0])
        return sl_error_set(SL_ERR_INVALID, "empty key token");
    for (const char *p = token; *p; p++) {
        int c = (unsigned char)*p;
        if (c == '=') {
            int h = hexval(p[1]), l = h < 0 ? -1 : hexval(p[2]);
            if (h < 0 || l < 0 || (h | l) == 0)
                return sl_error_set(SL_ERR_INVALID, "bad escape in key token \"%.100s\"", token);
            c = h * 16 + l;
            p += 2;
        } else if (!plain((unsigned char)c)) {
            return sl_error_set(SL_ERR_INVALID, "byte 0x%02x not allowed in key token \"%.100s\"", c, token);
        }
        if (o + 1 >= cap)
            return sl_error_set(SL_ERR_INVALID, "key token \"%.100s\" too long", token);
        out[o++] = (char)c;
    }
    out[o] = 0;
    return SL_OK;
}

/* ---- store format: split route configurations, chunk ids ---- */

/* The name (field 1, a string) of a packed VirtualHost. */
static int vhost_name(const uint8_t *p, size_t len, const char **name, size_t *nl)
{
    size_t pos = 0;
    while (pos < len) {
        uint64_t tag, l;
        if (sl_wire_varint_get(&tag, p, len, &pos) != SL_OK)
            return -1;
        if (tag == (1 << 3 | 2)) {
            if (sl_wire_varint_get(&l, p, len, &pos) != SL_OK || l > len - pos)
                return -1;
            *name = (const char *)p + pos;
            *nl = (size_t)l;
            pos += (size_t)l; /* the last one wins, as protobuf merges */
            continue;
        }
        if ((tag >> 3) == 0 || sl_wire_skip(p, len, &pos, (unsigned)(tag & 7)) != SL_OK)
            return -1;
    }
    return *name && *nl ? 0 : -1;
}

sl_status sl_xds_route_split(uint8_t **head, size_t *head_len, sl_xds_part **parts, size_t *n_parts,
                             const uint8_t *data, size_t len)
{
    size_t pos = 0, hl = 0, n = 0, cap = 0;
    uint8_t *h = malloc(len ? len : 1);
    sl_xds_part *v = NULL;
    if (!h)
        return sl_error_set(SL_ERR_NOMEM, "out of memory");
    while (pos < len) {
        size_t start = pos;
        uint64_t tag, l;
        if (sl_wire_varint_get(&tag, data, len, &pos) != SL_OK || (tag >> 3) == 0)
            goto bad;
        if (tag == (2 << 3 | 2)) {
            if (sl_wire_varint_get(&l, data, len, &pos) != SL_OK || l > len - pos)
                goto bad;
            if (SL_VEC_RESERVE(v, cap, n + 1) != SL_OK) {
                free(h);
                free(v);
                return SL_ERR_NOMEM;
            }
            v[n].off = pos;
            v[n].len = (size_t)l;
            v[n].name = NULL;
            v[n].name_len = 0;
            if (vhost_name(data + pos, (size_t)l, &v[n].name, &v[n].name_len) != 0) {
                pos = start;
                goto bad;
            }
            n++;
            pos += (size_t)l;
            continue;
        }
        if (sl_wire_skip(data, len, &pos, (unsigned)(tag & 7)) != SL_OK)
            goto bad;
        memcpy(h + hl, data + start, pos - start);
        hl += pos - start;
    }
    *head = h;
    *head_len = hl;
    *parts = v;
    *n_parts = n;
    return SL_OK;
bad:
    free(h);
    free(v);
    return sl_error_set(SL_ERR_PARSE, "RouteConfiguration bytes are not well formed at offset %zu of %zu (or a "
                        "virtual host has no name)", pos, len);
}

sl_status sl_xds_route_join(uint8_t **out, size_t *len, const uint8_t *head, size_t head_len,
                            const uint8_t *const *part, const size_t *part_len, size_t n_parts)
{
    size_t total = head_len;
    for (size_t i = 0; i < n_parts; i++)
        total += sl_wire_ld_len(part_len[i]);
    uint8_t *b = malloc(total ? total : 1), *w = b;
    if (!b)
        return sl_error_set(SL_ERR_NOMEM, "out of memory");
    memcpy(w, head, head_len);
    w += head_len;
    for (size_t i = 0; i < n_parts; i++)
        w = sl_wire_ld(w, 2, part[i], part_len[i]); /* virtual_hosts = 2 */
    *out = b;
    *len = total;
    return SL_OK;
}

uint64_t sl_xds_entry_hash(const char *route, const char *name)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    if (route) {
        for (const unsigned char *p = (const unsigned char *)route; *p; p++)
            h = (h ^ *p) * 0x100000001b3ULL;
        h = (h ^ 0xff) * 0x100000001b3ULL; /* a byte no name holds after "=XX" escaping */
    }
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        h = (h ^ *p) * 0x100000001b3ULL;
    /* FNV's low bits mix poorly: finish like splitmix64. */
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return h;
}

void sl_xds_chunk_id(char *out, uint64_t h) { snprintf(out, 17, "%016" PRIx64, h); }
