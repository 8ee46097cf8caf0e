/* source.h - the sluice_xds KV bucket -> the snapshot cache.
 *
 * Key layout (docs/xds.md, "KV layout"; messages in proto/sluice/v1/xds.proto):
 *   <proxy>.<type>.<name>          the packed Envoy resource (e.g. a serialized
 *                                  envoy.config.cluster.v3.Cluster); for a
 *                                  RouteConfiguration stored in parts, its head
 *                                  (every field but virtual_hosts)
 *   <proxy>.vhost.<route>.<vhost>  one part: a packed VirtualHost of <route>
 *   <proxy>.manifest.<type>.<id>   a sluice.v1.XdsManifest: a run of the type's
 *                                  entries (name, KV revision, parts)
 *   <proxy>.commit                 a sluice.v1.XdsCommit: the revision to serve,
 *                                  naming every manifest chunk at a KV revision
 * Keys are built and parsed by sluice/xds_keys.h (which escapes <proxy>,
 * <name>, <route> and <vhost>); a key it does not parse is ignored. A resource's version is the KV
 * revision of its key (of a route in parts: its head's revision and a hash of
 * its parts' revisions), so every replica computes the same versions. A
 * commit is applied only when every chunk, resource and part it names is
 * available at exactly that revision and decodes; otherwise it is refused
 * (logged with the key and revision) and the previous revision keeps
 * serving. Only the chunks whose revision moved since the proxy's last
 * commit are read; the others are reused as they were resolved.
 *
 * Everything but sl_xds_watch_start/free is independent of NATS and runs on
 * one thread (the watch's loop).
 */
#ifndef SLUICE_XDS_SOURCE_H
#define SLUICE_XDS_SOURCE_H

#include <stdint.h>

#include "sluice/xds_cache.h"
#include "sluice/kv.h"
#include "sluice/quarantine.h"

typedef struct sl_xds_source sl_xds_source;

/* Fetches the value of key at an older revision (for a commit that names a
 * revision the watch has already moved past). Returns malloc'd bytes. */
typedef sl_status (*sl_xds_fetch_fn)(void *ud, const char *key, uint64_t rev, uint8_t **val, size_t *len);

sl_status sl_xds_source_new(sl_xds_source **out, sl_xds_cache *cache, sl_xds_fetch_fn fetch, void *fetch_ud);
void sl_xds_source_free(sl_xds_source *s);

/* One KV event. While `initial` (before the end-of-initial-values marker),
 * commits are held and applied by sl_xds_source_initial_done(). */
void sl_xds_source_put(sl_xds_source *s, const char *key, uint64_t rev, const uint8_t *val, size_t len);
void sl_xds_source_delete(sl_xds_source *s, const char *key);
void sl_xds_source_initial_done(sl_xds_source *s);
/* Number of commits applied / refused so far. */
/* Values that do not decode (a commit, a manifest it names, a resource, a
 * virtual host part) are quarantined through q (copied; NULL: logged only)
 * as values of bucket (kept pointed at). */
void sl_xds_source_quarantine(sl_xds_source *s, const sl_quarantine *q, const char *bucket);

uint64_t sl_xds_source_commits(const sl_xds_source *s);
uint64_t sl_xds_source_refused(const sl_xds_source *s);

/* Watches bucket (created if missing) on loop. ready(ud) is called once on
 * the loop after the initial values were applied. q (copied; may be NULL):
 * where values that do not decode are quarantined. */
typedef struct sl_xds_watch sl_xds_watch;
sl_status sl_xds_watch_start(sl_xds_watch **out, sl_nats *nc, sl_loop *loop, const char *bucket,
                             sl_xds_cache *cache, const sl_quarantine *q, void (*ready)(void *ud), void *ud);
void sl_xds_watch_free(sl_xds_watch *w);

#endif
