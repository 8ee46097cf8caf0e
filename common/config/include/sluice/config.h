/* config.h - documents to validated Sluice resources: the config layer that
 * sluice-config-watcher (files, apply API, KV) and sluicectl share.
 *
 *   sl_cfg_set set;
 *   sl_cfg_set_init(&set);
 *   sl_cfg_set_decode_text(&set, text, len, "vs.yaml");   // YAML/JSON, multi-document
 *   for (size_t i = 0; i < set.n; i++) {
 *       sl_cfg_res *r = &set.items[i];
 *       sl_cfg_check(r);                 // names, kind bucket, reference shapes
 *       if (sl_diag_errors(&r->diag) == 0) ... r->msg is a valid resource ...
 *   }
 *   sl_cfg_set_deinit(&set);
 *
 * Ownership: every message in a set is allocated with protobuf-c's default
 * allocator and belongs to the set; take it with sl_cfg_res_take(). Strings
 * in a result are copies owned by the set. Nothing here is thread safe, and
 * nothing here talks to NATS.
 */
#ifndef SLUICE_CFG_CONFIG_H
#define SLUICE_CFG_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include <protobuf-c/protobuf-c.h>

#include "sluice/diag.h"
#include "sluice/kinds.h"
#include "sluice/resource.h"
#include "sluice/status.h"

/* The annotation naming who last wrote a resource: "file:<absolute path>",
 * "api:<source>" (apply API), set by sluice-config-watcher on every write.
 * A file owns the resources whose annotation names it: when the file (or a
 * document in it) goes away, they are deleted. */
#define SL_CFG_SOURCE_ANNOTATION "sluice.io/source"

/* One document or message and what was found about it. */
typedef struct sl_cfg_res {
    const sl_kind *kind;   /* NULL when the document names no known kind */
    ProtobufCMessage *msg; /* the decoded resource, NULL when it did not decode */
    char ns[SL_RESOURCE_NAMESPACE_MAX + 1]; /* "" when unknown */
    char name[SL_RESOURCE_NAME_MAX + 1];    /* "" when unknown */
    char key[SL_RESOURCE_KEY_MAX];          /* "<Kind>.<ns>.<name>", "" when unknown */
    const char *file; /* the document's file (owned by the set), NULL for protobuf */
    unsigned line; /* the document's first line; 0 for protobuf input */
    sl_diag diag;  /* errors and warnings about this resource */
} sl_cfg_res;

typedef struct sl_cfg_set {
    sl_cfg_res *items;
    size_t n, cap;
    /* Problems that belong to no document (YAML syntax errors). */
    sl_diag diag;
    /* A syntax error ended the stream early: documents after it are unknown. */
    bool truncated;
    char *filename; /* of the text decoded (first call), NULL before */
} sl_cfg_set;

void sl_cfg_set_init(sl_cfg_set *s);
void sl_cfg_set_deinit(sl_cfg_set *s);

/* Total errors in the set (document and stream level). */
size_t sl_cfg_set_errors(const sl_cfg_set *s);

/* Decodes a YAML or JSON stream ("---"-separated documents; JSON is one
 * document) of Gloo-style resources {apiVersion, kind, metadata, spec,
 * status}. Every non-empty document becomes one item, decoded or not; the
 * namespace defaults to SL_RESOURCE_DEFAULT_NAMESPACE. Problems go to the
 * items' and the set's diag lists. SL_ERR_NOMEM only. */
sl_status sl_cfg_set_decode_text(sl_cfg_set *s, const char *data, size_t len,
                                 const char *filename);

/* Adds an already decoded message of kind k (ownership moves to the set,
 * also on error). SL_ERR_NOMEM only. */
sl_status sl_cfg_set_add_msg(sl_cfg_set *s, const sl_kind *k, ProtobufCMessage *msg);

/* Adds the resource packed in a google.protobuf.Any (type URL
 * "type.googleapis.com/sluice.v1.<Kind>"). A bad type or bad bytes become
 * an item with an error. SL_ERR_NOMEM only. */
sl_status sl_cfg_set_add_any(sl_cfg_set *s, const char *type_url, const void *data,
                             size_t len, size_t index);

/* Checks one decoded item: the kind is stored in sluice_config, metadata
 * is present with a valid name and namespace (an empty namespace becomes
 * the default), references have valid names. Adds errors to r->diag and
 * fills r->ns, r->name and r->key. */
void sl_cfg_check(sl_cfg_res *r);

/* Takes the message out of the item (the caller frees it with
 * protobuf_c_message_free_unpacked(msg, NULL)). */
ProtobufCMessage *sl_cfg_res_take(sl_cfg_res *r);

/* Calls fn for every reference (ResourceRef) in msg whose kind is implied
 * by its field (upstream, upstreamGroup, secretRef, delegateAction.ref,
 * virtualServices, delegatedHttpGateways.ref, delegatedTcpGateways.ref). An empty namespace is resolved to own_ns. path is the
 * field path ("spec.virtualHost.routes[0].routeAction.single.upstream"). */
typedef void (*sl_cfg_ref_fn)(void *ud, const sl_kind *kind, const char *ns, const char *name,
                              const char *path);
void sl_cfg_refs(const ProtobufCMessage *msg, const char *own_ns, sl_cfg_ref_fn fn, void *ud);

/* Sets (adds or replaces) an annotation in a message allocated with
 * protobuf-c's default allocator. SL_ERR_NOMEM only. sl_kind_annotation()
 * (sluice/kinds.h) reads one. */
sl_status sl_cfg_set_annotation(Sluice__V1__Metadata *md, const char *key, const char *value);

/* Replaces a string field of a malloc'd message with a copy of value. */
sl_status sl_cfg_set_string(char **field, const char *value);

/* Formats every item of d as lines "file:line:col: error: message" joined
 * by "\n" into a malloc'd string; NULL when d is empty or out of memory. */
char *sl_cfg_diag_join(const sl_diag *d, sl_diag_severity only, const char *sep);

#endif
