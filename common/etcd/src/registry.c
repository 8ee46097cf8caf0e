/* registry.c - the naming/endpoints registry value ({"Addr": "host:port", "Metadata": ...}), parsed. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/etcd.h"

#define MAX_VALUE (64 * 1024)

void sl_etcd_endpoint_deinit(sl_etcd_endpoint *e)
{
    free(e->metadata);
    memset(e, 0, sizeof *e);
}

/* Splits "host:port" or "[v6]:port" into e->address and e->port. */
static sl_status split_addr(sl_etcd_endpoint *e, const char *addr)
{
    const char *host = addr, *colon;
    size_t hl;
    if (addr[0] == '[') {
        const char *close = strchr(addr, ']');
        if (!close || close[1] != ':')
            return sl_error_set(SL_ERR_PARSE, "Addr '%s': want [IPv6]:port", addr);
        host = addr + 1;
        hl = (size_t)(close - host);
        colon = close + 1;
    } else {
        colon = strrchr(addr, ':');
        if (!colon || strchr(addr, ':') != colon)
            return sl_error_set(SL_ERR_PARSE, "Addr '%s': want host:port", addr);
        hl = (size_t)(colon - host);
    }
    if (!hl || hl >= sizeof e->address)
        return sl_error_set(SL_ERR_PARSE, "Addr '%s': empty or too long a host", addr);
    char *endp;
    long port = strtol(colon + 1, &endp, 10);
    if (!colon[1] || *endp || port < 1 || port > 65535)
        return sl_error_set(SL_ERR_PARSE, "Addr '%s': bad port", addr);
    memcpy(e->address, host, hl);
    e->address[hl] = 0;
    e->port = (uint16_t)port;
    return SL_OK;
}

sl_status sl_etcd_parse_endpoint(sl_etcd_endpoint *out, const uint8_t *value, size_t len)
{
    json_error_t err;
    json_t *root = NULL;
    sl_status rc = SL_OK;

    memset(out, 0, sizeof *out);
    if (len > MAX_VALUE)
        return sl_error_set(SL_ERR_PARSE, "registry value of %zu bytes (at most %d)", len, MAX_VALUE);
    if (!(root = json_loadb((const char *)value, len, JSON_REJECT_DUPLICATES, &err)))
        return sl_error_set(SL_ERR_PARSE, "registry value is not JSON: %s (line %d column %d)", err.text, err.line,
                            err.column);
    const char *addr = json_string_value(json_object_get(root, "Addr"));
    if (!json_is_object(root) || !addr) {
        rc = sl_error_set(SL_ERR_PARSE, "registry value: want an object with a string \"Addr\"");
        goto out;
    }
    if ((rc = split_addr(out, addr)) != SL_OK)
        goto out;
    json_t *md = json_object_get(root, "Metadata");
    if (md && !json_is_null(md) && !(out->metadata = json_dumps(md, JSON_COMPACT | JSON_ENCODE_ANY)))
        rc = SL_ERR_NOMEM;
out:
    json_decref(root);
    if (rc != SL_OK)
        sl_etcd_endpoint_deinit(out);
    return rc;
}
