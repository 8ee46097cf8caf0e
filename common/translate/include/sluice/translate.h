/* translator.h - Sluice's Gloo-compatible configuration -> Envoy v3
 * resources per proxy, with reports. No NATS here: the service
 * (main.c, service.c) feeds a store from the KV buckets and writes the
 * result; tests and a dry-run of the apply API call the same functions.
 *
 *   sl_tr_store *st;  sl_tr_result *res;
 *   sl_tr_store_new(&st);
 *   sl_tr_store_load_yaml(st, text, len, "petstore.yaml", &diag);  (or _put)
 *   sl_tr_translate(&res, st, NULL);
 *   for each res->proxies[i]: packed Listeners, RouteConfigurations,
 *                             Clusters, ClusterLoadAssignments, Secrets
 *   for each res->reports[i]: Accepted / Warning / Rejected and reasons
 *   sl_tr_result_free(res);  sl_tr_store_free(st);
 *
 * Translations are incremental by themselves: the store keeps what each
 * translation built (packed clusters, virtual hosts, a gateway's virtual
 * services, a proxy's cluster list, reports) with the stamps of what it was
 * built from, and the next sl_tr_translate() reuses what did not change
 * since (no change set to pass). The result is the same, byte for byte, as
 * translating everything again (sl_tr_store_drop_kept(); tested over series
 * of random changes). docs/translator.md, "Incremental re-translation".
 *
 * The store remembers, per resource, the last version a translation
 * accepted ("last good"). When a resource is rejected, its last good version
 * is translated in its place (or, when it never was accepted, it is left
 * out), so one bad resource never takes down what others declared. A
 * dry run (options.dry_run) leaves the last good versions alone.
 *
 * Naming (as Gloo): proxy "<gateway namespace>~<proxyName>" (Envoy's
 * node.metadata.role), listener "listener-<bindAddress>-<port>", route
 * configuration "<listener>-routes", virtual host "<namespace>_<vs>",
 * cluster "<upstream>_<namespace>", secret "<secret>_<namespace>".
 * docs/translator.md describes every mapping and the plugins.
 *
 * Nothing here is thread safe: one store per thread, or a lock around it.
 */
#ifndef SLUICE_TRANSLATOR_H
#define SLUICE_TRANSLATOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "sluice/diag.h"
#include "sluice/kinds.h"
#include "sluice/status.h"
#include "sluice/xds.h"

/* ---- the input: a store of sluice.v1 resources ------------------------- */

typedef struct sl_tr_store sl_tr_store;

sl_status sl_tr_store_new(sl_tr_store **out);

/* Frees the store and every message in it. NULL is a no-op. */
void sl_tr_store_free(sl_tr_store *s);

/* Adds or replaces the resource of kind k named by msg's metadata (namespace
 * "default" when empty). Takes ownership of msg, which must have been
 * allocated with protobuf-c's default allocator (unpack(NULL, ...) or the
 * codec without an arena); it is freed on error too. revision is the KV
 * revision (0 when unknown): among resources in conflict, the older one
 * wins. SL_ERR_INVALID when msg has no metadata or an invalid name. */
sl_status sl_tr_store_put(sl_tr_store *s, const sl_kind *k, ProtobufCMessage *msg,
                          uint64_t revision);

/* The same from packed bytes (a KV value). SL_ERR_PARSE for bad bytes. */
sl_status sl_tr_store_put_packed(sl_tr_store *s, const sl_kind *k, const void *data, size_t len,
                                 uint64_t revision);

/* Removes a resource (and its last good version). False when absent. */
bool sl_tr_store_remove(sl_tr_store *s, const sl_kind *k, const char *ns, const char *name);

/* Decodes a multi-document YAML stream of Gloo-style resources (apiVersion,
 * kind, metadata, spec) into the store. Every problem goes to diag (may be
 * NULL); documents that decode are stored even when others do not.
 * SL_ERR_PARSE when any document failed. */
sl_status sl_tr_store_load_yaml(sl_tr_store *s, const char *text, size_t len,
                                const char *filename, sl_diag *diag);

/* Drops everything translations kept in the store to reuse (packed
 * clusters, virtual hosts, reports, proxies' lists), keeping the resources
 * and their last good versions: the next translation builds everything
 * again. For tests (an incremental translation must equal this) and to
 * let go of memory. */
void sl_tr_store_drop_kept(sl_tr_store *s);

/* Number of resources of kind k in the store. */
size_t sl_tr_store_count(const sl_tr_store *s, const sl_kind *k);

/* ---- the output -------------------------------------------------------- */

/* One virtual host of a RouteConfiguration in parts: its packed
 * VirtualHost bytes and its name (NUL terminated). */
typedef struct sl_tr_part {
    const uint8_t *data;
    size_t len;
    const char *name;
} sl_tr_part;

/* A RouteConfiguration as the translator spliced it from its virtual
 * hosts: head holds every field but virtual_hosts, in order, and v[] each
 * virtual host, in order: exactly what sl_xds_route_split() of the whole
 * bytes gives (so sl_xds_route_join() of them is what the xds server
 * serves either way), without the whole being cut again. */
typedef struct sl_tr_route_parts {
    const uint8_t *head;
    size_t head_len;
    const sl_tr_part *v;
    size_t n;
} sl_tr_route_parts;

/* One packed Envoy resource. Its bytes belong to the result (valid until
 * sl_tr_result_free()); they may be shared with the store and other
 * results, so they are read only.
 *
 * What a writer may rely on to skip comparing bytes: result bytes are
 * never changed, and a resource whose bytes change gets a new buffer (and
 * a virtual host that changes, a new part) while the results holding the
 * old one live. So between two results of the same store, both alive, a
 * resource with the same data pointer and len (a part with the same data
 * pointer) has the same bytes. */
struct tr_blob;
typedef struct sl_tr_resource {
    char *name;    /* the Envoy resource name */
    uint8_t *data; /* packed bytes of the resource message */
    size_t len;
    /* A RouteConfiguration spliced from virtual hosts: the same bytes in
     * parts (owned with data; the parts of a kept virtual host are the
     * same pointers in every result that has it), or NULL. With
     * options.route_parts_only, data is NULL when parts are given, len of
     * at least SL_XDS_SPLIT_MIN and n >= 2 (len is still the whole's), so
     * the identity of such a resource is parts, not data. */
    const sl_tr_route_parts *parts;
    struct tr_blob *shared; /* private: data's reference-counted owner, or NULL */
} sl_tr_resource;

/* Everything one proxy serves, by type (sl_xds_type order), each list
 * sorted by name. */
struct tr_rlist;
typedef struct sl_tr_proxy {
    char *name; /* "<namespace>~<proxy>" */
    bool proxyless; /* serves gRPC proxyless clients (Gateway grpcApiListeners) */
    sl_tr_resource *res[SL_XDS_TYPE_COUNT];
    size_t n[SL_XDS_TYPE_COUNT];
    /* private: when set, res[t] is (or was copied from) a whole list shared
     * with the store and other results, which owns its resources */
    struct tr_rlist *lists[SL_XDS_TYPE_COUNT];
} sl_tr_proxy;

/* What the translation found about one input resource. Its strings belong
 * to the result (valid until sl_tr_result_free()), and may be shared with
 * the store and other results: read only. */
typedef struct sl_tr_report {
    const sl_kind *kind;
    char *ns;
    char *name;
    int state;        /* Sluice__V1__Status__State: Accepted, Warning, Rejected */
    char *reason;     /* errors, "; "-joined ("" when Accepted) */
    char **warnings;  /* each warning once */
    size_t n_warnings;
    char *resource_version; /* metadata.resourceVersion of the input */
    int64_t generation;
    uint64_t revision; /* KV revision of the input */
    bool serving_last_good; /* rejected, and its last good version is served */
    struct tr_rblob *shared; /* private: owner of the strings when shared, or NULL */
} sl_tr_report;

struct tr_replist;
typedef struct sl_tr_result {
    sl_tr_proxy *proxies; /* sorted by name */
    size_t n_proxies;
    sl_tr_report *reports; /* sorted by kind, namespace, name */
    size_t n_reports;
    struct tr_replist *replist; /* private: owner of the reports equal to its own */
    struct tr_ctx *pending;     /* private: options.defer_reports, not finished yet */
} sl_tr_result;

typedef struct sl_tr_options {
    /* Namespace of the Settings named "default" and of the default gateways
     * (used when no Gateway exists). NULL: "gloo-system". */
    const char *settings_namespace;
    /* Validate only: do not record accepted resources as last good. */
    bool dry_run;
    /* A writer that stores RouteConfigurations in parts (the service):
     * a big RouteConfiguration spliced from virtual hosts comes as parts
     * only, its whole bytes never assembled (see sl_tr_resource.parts). */
    bool route_parts_only;
    /* The result comes without its reports (n_reports 0), its proxies
     * complete: sl_tr_result_finish() adds them (and records the last good
     * versions), so a writer can store the resources first. Finished by
     * itself before anything changes the store or translates again, and
     * when the result is freed. */
    bool defer_reports;
} sl_tr_options;

/* Translates the store. opts may be NULL. On SL_OK free *out with
 * sl_tr_result_free(); SL_ERR_NOMEM or SL_ERR_INTERNAL otherwise (problems
 * of the configuration are reports, never a failed call). */
sl_status sl_tr_translate(sl_tr_result **out, sl_tr_store *s, const sl_tr_options *opts);

/* Frees r (finishing it first when it is pending). NULL is a no-op. */
void sl_tr_result_free(sl_tr_result *r);

/* Finishes a translation made with options.defer_reports: its reports,
 * the last good versions, what the translation did not use let go. A
 * no-op (SL_OK) for a result that is not pending. SL_ERR_NOMEM leaves r's
 * resources as they are and its reports incomplete. */
sl_status sl_tr_result_finish(sl_tr_result *r);

/* Incremental re-translation after only endpoint sets changed (ns[i]/names[i],
 * already put in or removed from s): rebuilds the ClusterLoadAssignment of
 * each such upstream and replaces its bytes in every proxy of res that serves
 * it, without translating listeners, routes or other clusters. *done is false
 * (and res untouched) when that would not equal a full translation: the
 * upstream is missing, rejected or not served from that endpoint set over
 * EDS, or its Cluster itself changed (an endpoint set appeared or went away);
 * then call sl_tr_translate(). *changed (may be NULL) counts the resources
 * whose bytes changed. Reports do not change. */
sl_status sl_tr_translate_endpoints(sl_tr_result *res, sl_tr_store *s, const char *const *ns,
                                    const char *const *names, size_t n, const sl_tr_options *opts, bool *done,
                                    size_t *changed);

/* The proxy named name in r, or NULL. */
const sl_tr_proxy *sl_tr_result_proxy(const sl_tr_result *r, const char *name);

/* Whether p's resources of type t are a list shared with the store and
 * other results that is never changed (neither the array nor anything in
 * it): while a result holding it lives, another result's p->res[t] equal
 * to it (and p->n[t] equal) is the same resources, bytes and all. */
bool sl_tr_proxy_list_shared(const sl_tr_proxy *p, sl_xds_type t);

/* The resource of type t named name in p, or NULL. */
const sl_tr_resource *sl_tr_proxy_find(const sl_tr_proxy *p, sl_xds_type t, const char *name);

/* The report about kind/ns/name in r, or NULL. */
const sl_tr_report *sl_tr_result_report(const sl_tr_result *r, const char *kind, const char *ns,
                                        const char *name);

/* The Envoy message descriptor of type t (Listener, Cluster, ...). */
const ProtobufCMessageDescriptor *sl_tr_type_descriptor(sl_xds_type t);

#endif
