/* upstreams.c - what every reader of an Upstream asks of its type (sluice/upstreams.h). */
#include "sluice/upstreams.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

Sluice__V1__ServiceSpec **sl_upstream_service_spec_slot(Sluice__V1__Upstream *u)
{
    Sluice__V1__UpstreamSpec *s = u ? u->spec : NULL;
    if (!s)
        return NULL;
    switch (s->upstream_type_case) {
    case SLUICE__V1__UPSTREAM_SPEC__UPSTREAM_TYPE_STATIC:
        return s->static_ ? &s->static_->service_spec : NULL;
    case SLUICE__V1__UPSTREAM_SPEC__UPSTREAM_TYPE_DNS:
        return s->dns ? &s->dns->service_spec : NULL;
    case SLUICE__V1__UPSTREAM_SPEC__UPSTREAM_TYPE_ETCD:
        return s->etcd ? &s->etcd->service_spec : NULL;
    default:
        return NULL;
    }
}

const Sluice__V1__ServiceSpec *sl_upstream_service_spec(const Sluice__V1__Upstream *u)
{
    Sluice__V1__ServiceSpec **slot = sl_upstream_service_spec_slot((Sluice__V1__Upstream *)u);
    return slot ? *slot : NULL;
}

bool sl_upstream_spec_discovered(const Sluice__V1__UpstreamSpec *s)
{
    return s && (s->upstream_type_case == SLUICE__V1__UPSTREAM_SPEC__UPSTREAM_TYPE_DNS ||
                 s->upstream_type_case == SLUICE__V1__UPSTREAM_SPEC__UPSTREAM_TYPE_ETCD);
}

const Google__Protobuf__BoolValue *sl_upstream_spec_use_tls(const Sluice__V1__UpstreamSpec *s)
{
    if (!s)
        return NULL;
    switch (s->upstream_type_case) {
    case SLUICE__V1__UPSTREAM_SPEC__UPSTREAM_TYPE_STATIC:
        return s->static_ ? s->static_->use_tls : NULL;
    case SLUICE__V1__UPSTREAM_SPEC__UPSTREAM_TYPE_DNS:
        return s->dns ? s->dns->use_tls : NULL;
    case SLUICE__V1__UPSTREAM_SPEC__UPSTREAM_TYPE_ETCD:
        return s->etcd ? s->etcd->use_tls : NULL;
    default:
        return NULL;
    }
}

static uint32_t fnv1a32(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 16777619u;
    return h;
}

sl_status sl_upstream_discovered_name(char out[SL_RESOURCE_NAME_MAX + 1], const char *source, const char *id,
                                      bool suffixed)
{
    size_t n = 0;
    bool dash = false;
    out[0] = '\0';
    if (!source || !source[0] || strlen(source) > 32 || !id)
        return sl_error_set(SL_ERR_INVALID, "discovered name: bad source");
    for (const char *p = source; *p; p++)
        if (!(*p >= 'a' && *p <= 'z') && !(*p >= '0' && *p <= '9'))
            return sl_error_set(SL_ERR_INVALID, "discovered name: source \"%s\" is not lowercase letters and digits",
                                source);
    n = (size_t)snprintf(out, SL_RESOURCE_NAME_MAX + 1, "%s", source);
    size_t start = n;
    for (const char *p = id; *p; p++) {
        char c = *p >= 'A' && *p <= 'Z' ? (char)(*p - 'A' + 'a') : *p;
        if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) {
            if (n + 1 + (size_t)(dash || n == start) > SL_RESOURCE_NAME_MAX) {
                suffixed = true; /* too long: cut, and the hash keeps it apart */
                break;
            }
            if (dash || n == start)
                out[n++] = '-';
            out[n++] = c;
            dash = false;
        } else {
            dash = true;
        }
    }
    if (n == start) {
        out[0] = '\0';
        return sl_error_set(SL_ERR_INVALID, "discovered name: \"%.64s\" has no letter or digit", id);
    }
    if (suffixed) {
        if (n > SL_RESOURCE_NAME_MAX - 9)
            n = SL_RESOURCE_NAME_MAX - 9;
        while (out[n - 1] == '-')
            n--;
        n += (size_t)snprintf(out + n, SL_RESOURCE_NAME_MAX + 1 - n, "-%08x", fnv1a32(id));
    }
    out[n] = '\0';
    return SL_OK;
}

bool sl_upstream_etcd_service(char *out, size_t cap, const char *root, const char *key)
{
    size_t rl = root ? strlen(root) : 0, kl = key ? strlen(key) : 0;
    const char *slash = key ? strrchr(key, '/') : NULL;
    if (!slash || (rl && strncmp(key, root, rl) != 0))
        return false;
    size_t p = (size_t)(slash - key);
    while (rl && root[rl - 1] == '/')
        rl--;
    /* past root, no empty last segment of the service, an address after it */
    if (p == 0 || p <= rl || key[p - 1] == '/' || p + 1 >= kl || p >= cap)
        return false;
    memcpy(out, key, p);
    out[p] = '\0';
    return true;
}
