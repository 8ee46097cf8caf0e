/* cache.h - encoded xDS resources, immutable snapshots, per-proxy cache.
 *
 * sl_xds_res: one Envoy resource, encoded once when it is loaded and shared,
 * read-only, by every snapshot and stream that holds a reference. It carries
 * its two wire forms, ready to be placed in a response without copying:
 *   sotw  = field 2 of DiscoveryResponse      (tag, length, Any)
 *   delta = field 2 of DeltaDiscoveryResponse (tag, length, Resource{name,
 *           version, Any})
 * A "phantom" resource has a name and version but no bytes: it stands for
 * what a delta client says it already has (initial_resource_versions).
 *
 * sl_xds_snapshot: one committed revision of one proxy. Built with _new/_add,
 * then _seal()ed; after sealing it is immutable and reference counted, so a
 * reader holding a reference never sees a half-applied revision.
 *
 * sl_xds_cache: proxy -> current snapshot. Thread safe. Commit swaps the
 * pointer under a mutex and then calls the commit callback (outside the
 * lock) so the server can wake the streams of that proxy.
 */
#ifndef SLUICE_XDS_CACHE_H
#define SLUICE_XDS_CACHE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "sluice/status.h"
#include "sluice/xds.h"

typedef struct sl_xds_res {
    atomic_uint refs;
    sl_xds_type type;
    const char *name;     /* points into this allocation */
    const char *version;  /* points into this allocation */
    const char *eds_name; /* clusters of type EDS: the ClusterLoadAssignment they need; else NULL */
    uint8_t *sotw;        /* NULL for phantoms */
    size_t sotw_len;
    uint8_t *delta;
    size_t delta_len;
    size_t packed_len; /* length of the packed resource inside the Any */
} sl_xds_res;

/* Creates a resource from the packed bytes of the message of type t (e.g. a
 * serialized envoy.config.cluster.v3.Cluster). The bytes are parsed once to
 * check them (SL_ERR_PARSE when they are not a valid message of that type,
 * SL_ERR_INVALID when the name inside them, field 1, is not name) and, for
 * clusters, to find the EDS service name; they are copied. With
 * packed == NULL a phantom is made. The result has one reference. */
sl_status sl_xds_res_new(sl_xds_res **out, sl_xds_type t, const char *name, const char *version,
                         const uint8_t *packed, size_t len);

/* A RouteConfiguration stored in parts: the packed resource is head (every
 * field but virtual_hosts) followed by each part (a packed VirtualHost) as
 * field 2, written straight into the two wire forms (no copy of the whole
 * in between). The head and parts must have been checked; not parsed. */
sl_status sl_xds_res_new_route_parts(sl_xds_res **out, const char *name, const char *version, const uint8_t *head,
                                     size_t head_len, const uint8_t *const *part, const size_t *part_len,
                                     size_t n_parts);

static inline sl_xds_res *sl_xds_res_ref(sl_xds_res *r)
{
    atomic_fetch_add_explicit(&r->refs, 1, memory_order_relaxed);
    return r;
}
void sl_xds_res_unref(sl_xds_res *r);

typedef struct sl_xds_typeset {
    sl_xds_res **v; /* sorted by name, unique */
    size_t n, cap;
    char version[17]; /* hash of the (name, version) pairs: the SotW version_info */
} sl_xds_typeset;

typedef struct sl_xds_snapshot {
    atomic_uint refs;
    uint64_t revision; /* the commit's revision, informational */
    char *proxy;
    sl_xds_typeset types[SL_XDS_TYPE_COUNT];
} sl_xds_snapshot;

sl_status sl_xds_snapshot_new(sl_xds_snapshot **out, const char *proxy, uint64_t revision);
/* Adds a reference to r. Before _seal() only. */
sl_status sl_xds_snapshot_add(sl_xds_snapshot *s, sl_xds_res *r);
/* Sorts, computes the type versions. SL_ERR_INVALID on a duplicate name
 * within a type (the snapshot must then be released). */
sl_status sl_xds_snapshot_seal(sl_xds_snapshot *s);
/* The resource of that name, or NULL. The pointer is valid while s is. */
sl_xds_res *sl_xds_snapshot_find(const sl_xds_snapshot *s, sl_xds_type t, const char *name);
static inline sl_xds_snapshot *sl_xds_snapshot_ref(sl_xds_snapshot *s)
{
    atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
    return s;
}
void sl_xds_snapshot_unref(sl_xds_snapshot *s);

typedef struct sl_xds_cache sl_xds_cache;
/* Called after a commit, outside the cache lock, on the committing thread. */
typedef void (*sl_xds_cache_cb)(void *ud, const char *proxy);

sl_status sl_xds_cache_new(sl_xds_cache **out, sl_xds_cache_cb cb, void *ud);
void sl_xds_cache_free(sl_xds_cache *c);
/* Makes s (sealed) the current snapshot of s->proxy; takes over the
 * caller's reference. */
void sl_xds_cache_commit(sl_xds_cache *c, sl_xds_snapshot *s);
/* The current snapshot of proxy (a new reference) or NULL. */
sl_xds_snapshot *sl_xds_cache_get(sl_xds_cache *c, const char *proxy);
/* Number of proxies with a snapshot. */
size_t sl_xds_cache_count(sl_xds_cache *c);

#endif
