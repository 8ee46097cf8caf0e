#include "sluice/kinds.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "sluice/resource.h"
#include "sluice/v1/endpoints.pb-c.h"
#include "sluice/v1/gateway.pb-c.h"
#include "sluice/v1/secret.pb-c.h"
#include "sluice/v1/settings.pb-c.h"
#include "sluice/v1/upstream.pb-c.h"
#include "sluice/v1/virtual_service.pb-c.h"

#define GATEWAY_V1 "gateway.solo.io/v1"
#define GLOO_V1 "gloo.solo.io/v1"
#define SLUICE_V1 "sluice.io/v1"

/* Short names are glooctl's where it has one. */
static const sl_kind kinds[] = {
    {GATEWAY_V1, "Gateway", "Gateway", SL_BUCKET_CONFIG, "gw", "gateways",
     &sluice__v1__gateway__descriptor, &sluice__v1__gateway_spec__descriptor, 1},
    {GATEWAY_V1, "VirtualService", "VirtualService", SL_BUCKET_CONFIG, "vs", "virtualservices",
     &sluice__v1__virtual_service__descriptor, &sluice__v1__virtual_service_spec__descriptor, 1},
    {GATEWAY_V1, "RouteTable", "RouteTable", SL_BUCKET_CONFIG, "rt", "routetables",
     &sluice__v1__route_table__descriptor, &sluice__v1__route_table_spec__descriptor, 1},
    {GATEWAY_V1, "MatchableHttpGateway", "MatchableHttpGateway", SL_BUCKET_CONFIG, "hgw", "httpgateways",
     &sluice__v1__matchable_http_gateway__descriptor, &sluice__v1__matchable_http_gateway_spec__descriptor, 1},
    {GATEWAY_V1, "MatchableTcpGateway", "MatchableTcpGateway", SL_BUCKET_CONFIG, "tgw", "tcpgateways",
     &sluice__v1__matchable_tcp_gateway__descriptor, &sluice__v1__matchable_tcp_gateway_spec__descriptor, 1},
    {GLOO_V1, "Upstream", "Upstream", SL_BUCKET_CONFIG, "us", "upstreams",
     &sluice__v1__upstream__descriptor, &sluice__v1__upstream_spec__descriptor, 1},
    {GLOO_V1, "UpstreamGroup", "UpstreamGroup", SL_BUCKET_CONFIG, "ug", "upstreamgroups",
     &sluice__v1__upstream_group__descriptor, &sluice__v1__upstream_group_spec__descriptor, 1},
    {GLOO_V1, "Settings", "Settings", SL_BUCKET_CONFIG, "st", "settings",
     &sluice__v1__settings__descriptor, &sluice__v1__settings_spec__descriptor, 1},
    {GLOO_V1, "Secret", "Secret", SL_BUCKET_SECRETS, "sec", "secrets",
     &sluice__v1__secret__descriptor, &sluice__v1__secret_spec__descriptor, 1},
    {SLUICE_V1, "EndpointSet", NULL, SL_BUCKET_ENDPOINTS, "eps", "endpointsets",
     &sluice__v1__endpoint_set__descriptor, &sluice__v1__endpoint_set_spec__descriptor, 1},
};

#define NKINDS (sizeof(kinds) / sizeof(kinds[0]))

size_t sl_kind_count(void)
{
    return NKINDS;
}

const sl_kind *sl_kind_at(size_t i)
{
    return i < NKINDS ? &kinds[i] : NULL;
}

/* The first kind in the table that match(k, arg) accepts; NULL for a NULL
 * arg. */
static const sl_kind *find(bool (*match)(const sl_kind *k, const void *arg), const void *arg)
{
    if (!arg)
        return NULL;
    for (size_t i = 0; i < NKINDS; i++)
        if (match(&kinds[i], arg))
            return &kinds[i];
    return NULL;
}

static bool has_name(const sl_kind *k, const void *kind)
{
    return strcmp(k->kind, kind) == 0;
}

static bool is_called(const sl_kind *k, const void *word)
{
    return strcasecmp(k->kind, word) == 0 || strcasecmp(k->plural, word) == 0 ||
           strcasecmp(k->short_name, word) == 0;
}

/* By name: a descriptor from another copy of the generated code (a plugin,
 * a test) describes the same type. */
static bool is_described_by(const sl_kind *k, const void *desc)
{
    const char *name = ((const ProtobufCMessageDescriptor *)desc)->name;

    return strcmp(k->descriptor->name, name) == 0 || strcmp(k->spec_descriptor->name, name) == 0;
}

const sl_kind *sl_kind_by_name(const char *kind)
{
    return find(has_name, kind);
}

const sl_kind *sl_kind_find(const char *api_version, const char *kind)
{
    const sl_kind *k = sl_kind_by_name(kind);

    if (!k || !api_version || strcmp(k->api_version, api_version) != 0)
        return NULL;
    return k;
}

const sl_kind *sl_kind_lookup(const char *word)
{
    return find(is_called, word);
}

const sl_kind *sl_kind_by_descriptor(const ProtobufCMessageDescriptor *desc)
{
    return find(is_described_by, desc);
}

/* Edit distance (insert, delete, substitute), case folded; large for long
 * words. Enough to suggest a kind for a typo. */
static size_t distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    size_t row[64];

    if (la >= 64 || lb >= 64)
        return (size_t)-1;
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            int same = (a[i - 1] | 0x20) == (b[j - 1] | 0x20);
            size_t best = diag + (same ? 0 : 1);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

static const sl_kind *closest(const char *kind)
{
    const sl_kind *best = NULL;
    size_t best_d = 3; /* suggest only within two edits */

    for (size_t i = 0; i < NKINDS; i++) {
        size_t d = distance(kind, kinds[i].kind);
        if (d < best_d) {
            best = &kinds[i];
            best_d = d;
        }
    }
    return best ? best : sl_kind_lookup(kind);
}

sl_status sl_kind_resolve(const sl_kind **out, const char *api_version, const char *kind)
{
    const sl_kind *k;

    *out = NULL;
    if (!kind || !*kind)
        return sl_error_set(SL_ERR_INVALID, "the document has no kind");
    k = sl_kind_by_name(kind);
    if (!k) {
        const sl_kind *guess = closest(kind);
        if (guess)
            return sl_error_set(SL_ERR_NOT_FOUND, "unknown kind \"%s\"; did you mean \"%s\"?", kind,
                                guess->kind);
        return sl_error_set(SL_ERR_NOT_FOUND,
                            "unknown kind \"%s\"; known kinds: Gateway, VirtualService, "
                            "RouteTable, Upstream, UpstreamGroup, Settings, Secret, EndpointSet",
                            kind);
    }
    if (!api_version || !*api_version)
        return sl_error_set(SL_ERR_INVALID, "the %s document has no apiVersion (expected %s)", kind,
                            k->api_version);
    if (strcmp(api_version, k->api_version) != 0)
        return sl_error_set(SL_ERR_INVALID, "kind %s has apiVersion %s, not %s", kind,
                            k->api_version, api_version);
    *out = k;
    return SL_OK;
}

sl_status sl_kind_key(char *buf, size_t n, const sl_kind *k, const char *ns, const char *name)
{
    if (!k) {
        if (buf && n)
            buf[0] = '\0';
        return sl_error_set(SL_ERR_INVALID, "no kind for the key");
    }
    return sl_resource_key(buf, n, k->key_prefix, ns, name);
}

/* Field number f of a resource message, which must be a message field. */
static const ProtobufCMessage *member(const ProtobufCMessage *msg, unsigned f,
                                      const ProtobufCMessageDescriptor *type)
{
    const ProtobufCFieldDescriptor *fd;
    const sl_kind *k;

    if (!msg || !(k = sl_kind_by_descriptor(msg->descriptor)) ||
        strcmp(k->descriptor->name, msg->descriptor->name) != 0)
        return NULL;
    fd = protobuf_c_message_descriptor_get_field(msg->descriptor, f);
    if (!fd || fd->type != PROTOBUF_C_TYPE_MESSAGE || fd->label == PROTOBUF_C_LABEL_REPEATED)
        return NULL;
    if (type && strcmp(((const ProtobufCMessageDescriptor *)fd->descriptor)->name, type->name) != 0)
        return NULL;
    return *(ProtobufCMessage *const *)((const char *)msg + fd->offset);
}

const Sluice__V1__Metadata *sl_kind_metadata(const ProtobufCMessage *msg)
{
    return (const Sluice__V1__Metadata *)member(msg, SL_KIND_FIELD_METADATA,
                                                &sluice__v1__metadata__descriptor);
}

const ProtobufCMessage *sl_kind_spec(const ProtobufCMessage *msg)
{
    return member(msg, SL_KIND_FIELD_SPEC, NULL);
}

const Sluice__V1__Status *sl_kind_status(const ProtobufCMessage *msg)
{
    return (const Sluice__V1__Status *)member(msg, SL_KIND_FIELD_STATUS,
                                              &sluice__v1__status__descriptor);
}

const char *sl_kind_label(const Sluice__V1__Metadata *md, const char *key)
{
    for (size_t i = 0; md && i < md->n_labels; i++)
        if (md->labels[i]->key && strcmp(md->labels[i]->key, key) == 0)
            return md->labels[i]->value;
    return NULL;
}

const char *sl_kind_annotation(const Sluice__V1__Metadata *md, const char *key)
{
    for (size_t i = 0; md && i < md->n_annotations; i++)
        if (md->annotations[i]->key && strcmp(md->annotations[i]->key, key) == 0)
            return md->annotations[i]->value;
    return NULL;
}

/* Whether list (namespaces separated by commas, blanks around them
 * ignored, or "*") names ns. */
static bool ns_listed(const char *list, const char *ns)
{
    size_t nl = strlen(ns);
    for (const char *p = list; *p;) {
        const char *end;
        size_t len;
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        for (end = p; *end && *end != ','; end++)
            ;
        for (len = (size_t)(end - p); len && (p[len - 1] == ' ' || p[len - 1] == '\t'); len--)
            ;
        if ((len == 1 && *p == '*') || (len == nl && len && strncmp(p, ns, nl) == 0))
            return true;
        p = end;
    }
    return false;
}

bool sl_kind_secret_grants(const Sluice__V1__Metadata *md, const char *ns)
{
    for (size_t i = 0; md && i < md->n_annotations; i++)
        if (md->annotations[i]->key && strcmp(md->annotations[i]->key, SL_SECRET_GRANT) == 0 &&
            md->annotations[i]->value && ns_listed(md->annotations[i]->value, ns))
            return true;
    for (size_t i = 0; md && i < md->n_labels; i++)
        if (md->labels[i]->key && strcmp(md->labels[i]->key, SL_SECRET_GRANT) == 0 && md->labels[i]->value &&
            ns_listed(md->labels[i]->value, ns))
            return true;
    return false;
}
