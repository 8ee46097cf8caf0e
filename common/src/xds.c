/* xds.c - xDS resource types and the sluice_xds key escaping (see sluice/xds.h). */
#include "sluice/xds.h"

#include <string.h>

static const struct {
    const char *url, *token, *shortname;
} types[SL_XDS_TYPE_COUNT] = {
    [SL_XDS_SECRET] = {SL_XDS_TYPE_PREFIX "envoy.extensions.transport_sockets.tls.v3.Secret", "secret", "sds"},
    [SL_XDS_CLUSTER] = {SL_XDS_TYPE_PREFIX "envoy.config.cluster.v3.Cluster", "cluster", "cds"},
    [SL_XDS_ENDPOINT] = {SL_XDS_TYPE_PREFIX "envoy.config.endpoint.v3.ClusterLoadAssignment", "endpoint", "eds"},
    [SL_XDS_LISTENER] = {SL_XDS_TYPE_PREFIX "envoy.config.listener.v3.Listener", "listener", "lds"},
    [SL_XDS_ROUTE] = {SL_XDS_TYPE_PREFIX "envoy.config.route.v3.RouteConfiguration", "route", "rds"},
};

const char *sl_xds_type_url(sl_xds_type t) { return types[t].url; }
const char *sl_xds_type_token(sl_xds_type t) { return types[t].token; }
const char *sl_xds_type_short(sl_xds_type t) { return types[t].shortname; }

int sl_xds_type_full_state(sl_xds_type t) { return t == SL_XDS_LISTENER || t == SL_XDS_CLUSTER; }

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
