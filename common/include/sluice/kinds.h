/* sluice/kinds.h - the resource kinds of Sluice's API.
 *
 * A YAML or JSON document names its type with apiVersion and kind, as in
 * Gloo ("gateway.solo.io/v1", "VirtualService"); this table maps them to the
 * protobuf-c descriptor of the resource message (sluice.v1.VirtualService),
 * says which KV bucket stores it and how its keys start. The kind is also
 * the first token of keys and subjects ("VirtualService.default.petstore").
 *
 *   kind            apiVersion          bucket            key
 *   Gateway         gateway.solo.io/v1  sluice_config     Gateway.<ns>.<name>
 *   VirtualService  gateway.solo.io/v1  sluice_config     VirtualService.<ns>.<name>
 *   RouteTable      gateway.solo.io/v1  sluice_config     RouteTable.<ns>.<name>
 *   MatchableHttpGateway, MatchableTcpGateway (gateway.solo.io/v1): as RouteTable
 *   Upstream        gloo.solo.io/v1     sluice_config     Upstream.<ns>.<name>
 *   UpstreamGroup   gloo.solo.io/v1     sluice_config     UpstreamGroup.<ns>.<name>
 *   Settings        gloo.solo.io/v1     sluice_config     Settings.<ns>.<name>
 *   Secret          gloo.solo.io/v1     sluice_secrets    Secret.<ns>.<name>
 *   EndpointSet     sluice.io/v1        sluice_endpoints  <ns>.<upstream>
 *
 * The table is static and read-only: every function is thread safe and
 * every returned pointer stays valid for the life of the process. This
 * module is part of sluice_types (it needs the generated descriptors);
 * libsluice itself knows only the shape of keys (sluice/resource.h).
 */
#ifndef SLUICE_KINDS_H
#define SLUICE_KINDS_H

#include <stdbool.h>
#include <stddef.h>

#include <protobuf-c/protobuf-c.h>

#include "sluice/status.h"
#include "sluice/v1/core.pb-c.h"

#define SL_BUCKET_CONFIG "sluice_config"
#define SL_BUCKET_SECRETS "sluice_secrets"
#define SL_BUCKET_ENDPOINTS "sluice_endpoints"
#define SL_BUCKET_STATUS "sluice_status"

typedef struct sl_kind {
    const char *api_version; /* "gateway.solo.io/v1" */
    const char *kind;        /* "VirtualService" */
    /* First token of KV keys and of status and report subjects: the kind;
     * NULL when keys are <namespace>.<name> only (EndpointSet). */
    const char *key_prefix;
    const char *bucket;     /* KV bucket holding resources of this kind */
    const char *short_name; /* glooctl's abbreviation ("vs"), for the CLI */
    const char *plural;     /* lowercase plural ("virtualservices"), for the CLI */
    /* The resource message ({ metadata = 1; spec = 2; status = 3 }) and
     * the message of its spec. */
    const ProtobufCMessageDescriptor *descriptor;
    const ProtobufCMessageDescriptor *spec_descriptor;
    int namespaced; /* 1: keys carry a namespace (every kind today) */
} sl_kind;

/* Field numbers every resource message shares. */
enum {
    SL_KIND_FIELD_METADATA = 1,
    SL_KIND_FIELD_SPEC = 2,
    SL_KIND_FIELD_STATUS = 3,
};

/* The kind with this apiVersion and kind (both exact, case-sensitive), or
 * NULL. */
const sl_kind *sl_kind_find(const char *api_version, const char *kind);

/* The same, with an error message for documents: SL_ERR_NOT_FOUND for an
 * unknown kind ("unknown kind \"VirtualServce\"; did you mean
 * \"VirtualService\"?"), SL_ERR_INVALID for a known kind under another
 * apiVersion ("kind VirtualService has apiVersion gateway.solo.io/v1, not
 * gloo.solo.io/v1") or a missing one. *out is NULL on failure. */
sl_status sl_kind_resolve(const sl_kind **out, const char *api_version, const char *kind);

/* The kind with this kind name (exact), or NULL. */
const sl_kind *sl_kind_by_name(const char *kind);

/* The kind a user typed on a command line: the kind, its plural or its short
 * name, case-insensitively ("vs", "virtualservices", "VirtualService"), or
 * NULL. */
const sl_kind *sl_kind_lookup(const char *word);

/* The kind whose resource message (or spec message) has this descriptor,
 * compared by full name; NULL when none. */
const sl_kind *sl_kind_by_descriptor(const ProtobufCMessageDescriptor *desc);

/* Number of kinds, and the i-th (0 <= i < count; NULL past the end), in a
 * fixed order: the gateway.solo.io kinds, the gloo.solo.io kinds, then
 * Sluice's own. */
size_t sl_kind_count(void);
const sl_kind *sl_kind_at(size_t i);

/* The KV key of a resource of kind k: "<Kind>.<ns>.<name>", or
 * "<ns>.<name>" when k->key_prefix is NULL. As sl_resource_key(). */
sl_status sl_kind_key(char *buf, size_t n, const sl_kind *k, const char *ns, const char *name);

/* The metadata, spec and status of a resource message (any kind: they are
 * fields 1, 2 and 3 of every resource), or NULL when unset or when msg is
 * not a resource message. The pointers belong to msg; cast away const to
 * change them in a message you own. */
const Sluice__V1__Metadata *sl_kind_metadata(const ProtobufCMessage *msg);
const ProtobufCMessage *sl_kind_spec(const ProtobufCMessage *msg);
const Sluice__V1__Status *sl_kind_status(const ProtobufCMessage *msg);

/* The value of the label (metadata.labels) or annotation
 * (metadata.annotations) key in md, or NULL when md is NULL or has no such
 * key. The string belongs to md. */
const char *sl_kind_label(const Sluice__V1__Metadata *md, const char *key);
const char *sl_kind_annotation(const Sluice__V1__Metadata *md, const char *key);

/* The grant a Secret gives to resources of other namespaces (as Gateway
 * API's ReferenceGrant): an annotation or label whose value is a comma
 * separated list of namespaces, or "*". */
#define SL_SECRET_GRANT "sluice.io/allow-from-namespaces"

/* Whether a Secret with metadata md grants ns (its SL_SECRET_GRANT
 * annotation or label lists ns, or "*"). The translator and function
 * discovery use a Secret of another namespace only then. */
bool sl_kind_secret_grants(const Sluice__V1__Metadata *md, const char *ns);

#endif
