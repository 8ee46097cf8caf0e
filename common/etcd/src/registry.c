/* registry.c - the naming/endpoints registry value ({"Addr": "host:port", "Metadata": ...}), parsed. */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sluice/etcd.h"

#define MAX_VALUE (64 * 1024)

void sl_etcd_endpoint_deinit(sl_etcd_endpoint *e)
{
    free(e->metadata);
    free(e->region);
    free(e->zone);
    free(e->sub_zone);
    for (size_t i = 0; i < e->n_labels; i++) {
        free(e->label_keys[i]);
        free(e->label_values[i]);
    }
    free(e->label_keys);
    free(e->label_values);
    memset(e, 0, sizeof *e);
}

/* Records the first thing of the Metadata not understood. */
static void warn(sl_etcd_endpoint *e, const char *member, const char *want)
{
    if (!e->warning[0])
        snprintf(e->warning, sizeof e->warning, "Metadata.%s: want %s", member, want);
}

/* An integer member in [lo, hi] into *out; a warning otherwise. */
static void md_uint(sl_etcd_endpoint *e, json_t *md, const char *member, json_int_t lo, json_int_t hi,
                    uint32_t *out)
{
    json_t *v = json_object_get(md, member);
    char want[96];
    if (!v)
        return;
    if (json_is_integer(v) && json_integer_value(v) >= lo && json_integer_value(v) <= hi) {
        *out = (uint32_t)json_integer_value(v);
        return;
    }
    snprintf(want, sizeof want, "an integer from %lld to %lld", (long long)lo, (long long)hi);
    warn(e, member, want);
}

/* A string member of obj into *out (malloc'd); a warning otherwise. */
static sl_status md_string(sl_etcd_endpoint *e, json_t *obj, const char *path, const char *member, char **out)
{
    json_t *v = json_object_get(obj, member);
    char name[64];
    if (!v)
        return SL_OK;
    snprintf(name, sizeof name, "%s%s", path, member);
    if (!json_is_string(v) || json_string_length(v) > 128) {
        warn(e, name, "a string of at most 128 bytes");
        return SL_OK;
    }
    free(*out);
    return (*out = strdup(json_string_value(v))) ? SL_OK : SL_ERR_NOMEM;
}

static sl_status md_locality(sl_etcd_endpoint *e, json_t *obj, const char *path)
{
    sl_status rc;
    if ((rc = md_string(e, obj, path, "region", &e->region)) != SL_OK ||
        (rc = md_string(e, obj, path, "zone", &e->zone)) != SL_OK)
        return rc;
    return md_string(e, obj, path, "subZone", &e->sub_zone);
}

static void md_health(sl_etcd_endpoint *e, json_t *md)
{
    static const char *const names[] = {"unknown", "healthy", "unhealthy", "draining"};
    json_t *v = json_object_get(md, "health");
    if (!v)
        return;
    for (size_t i = 0; json_is_string(v) && i < sizeof names / sizeof names[0]; i++)
        if (!strcasecmp(json_string_value(v), names[i])) {
            e->health = (sl_etcd_health)i;
            return;
        }
    warn(e, "health", "\"healthy\", \"unhealthy\", \"draining\" or \"unknown\"");
}

static int label_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* "labels": an object of strings, sorted by key (json objects keep no
 * order), values alongside. */
static sl_status md_labels(sl_etcd_endpoint *e, json_t *md)
{
    json_t *labels = json_object_get(md, "labels"), *v;
    const char *k;
    size_t n;
    if (!labels)
        return SL_OK;
    n = json_object_size(labels);
    if (!json_is_object(labels) || n > SL_ETCD_MAX_LABELS) {
        warn(e, "labels", "an object of at most 64 string values");
        return SL_OK;
    }
    json_object_foreach (labels, k, v) {
        if (!json_is_string(v) || strlen(k) > 128 || json_string_length(v) > 128) {
            warn(e, "labels", "string keys and values of at most 128 bytes");
            return SL_OK;
        }
    }
    if (!n)
        return SL_OK;
    /* keys sorted first, then each value looked up */
    char **keys = calloc(n, sizeof *keys), **vals = calloc(n, sizeof *vals);
    size_t i = 0;
    e->label_keys = keys;
    e->label_values = vals;
    if (!keys || !vals)
        return SL_ERR_NOMEM;
    json_object_foreach (labels, k, v) {
        if (!(keys[i] = strdup(k)))
            return SL_ERR_NOMEM;
        e->n_labels = ++i;
    }
    qsort(keys, n, sizeof *keys, label_cmp);
    for (i = 0; i < n; i++)
        if (!(vals[i] = strdup(json_string_value(json_object_get(labels, keys[i])))))
            return SL_ERR_NOMEM;
    return SL_OK;
}

/* The members of a Metadata object Sluice reads. */
static sl_status parse_metadata(sl_etcd_endpoint *e, json_t *md)
{
    json_t *loc = json_object_get(md, "locality");
    sl_status rc;
    if (!json_is_object(md))
        return SL_OK; /* the application's own value */
    md_uint(e, md, "weight", 1, UINT32_MAX, &e->weight);
    md_uint(e, md, "priority", 0, 127, &e->priority);
    md_health(e, md);
    if ((rc = md_locality(e, md, "")) != SL_OK)
        return rc;
    if (loc && !json_is_object(loc))
        warn(e, "locality", "an object {region, zone, subZone}");
    else if (loc && (rc = md_locality(e, loc, "locality.")) != SL_OK)
        return rc;
    return md_labels(e, md);
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
    else if (md)
        rc = parse_metadata(out, md);
    if (rc == SL_ERR_NOMEM)
        sl_error_set(rc, "registry value: out of memory");
out:
    json_decref(root);
    if (rc != SL_OK)
        sl_etcd_endpoint_deinit(out);
    return rc;
}
