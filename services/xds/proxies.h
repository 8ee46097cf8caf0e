/* proxies.h - publishes what each connected proxy is on (KV sluice_proxies).
 *
 * One key per (xDS instance, proxy): "<instance>.<proxy>", both escaped with
 * sl_xds_key_escape(). Value, JSON:
 *   {"proxy": "gloo-system~gateway-proxy", "instance": "host-123",
 *    "commit_revision_served": 12,
 *    "streams": [{"node_id": "n1", "acked_revision": 12, "nacked": false,
 *                 "last_error": ""}, ...]}
 * commit_revision_served is the revision of the snapshot this instance
 * serves the proxy; acked_revision is sl_xds_stream_synced(). A thread looks
 * at the server's state once a second and puts the keys that changed (so at
 * most one put per proxy per second), refreshes every key each interval (the
 * bucket's TTL is 3 intervals, so a crashed instance's keys expire), deletes
 * the key of a proxy whose last stream went away, and deletes all of its
 * keys when stopped. The server's streams are never waited on: the state is
 * gathered from counters and atomics under the registry lock, the KV writes
 * happen outside it.
 */
#ifndef SLUICE_XDS_PROXIES_H
#define SLUICE_XDS_PROXIES_H

#include <stdint.h>

#include "sluice/xds_cache.h"
#include "server.h"
#include "sluice/nats.h"

#define XDS_PROXIES_BUCKET "sluice_proxies"

typedef struct xds_proxies xds_proxies;

/* Opens (or creates) the bucket and starts the publishing thread. instance
 * names this xDS server (copied); interval_ms <= 0 means 5000. srv and
 * cache must outlive the publisher. */
sl_status xds_proxies_start(xds_proxies **out, sl_nats *nc, xds_server *srv, sl_xds_cache *cache,
                               const char *instance, int64_t interval_ms);
/* Stops the thread, deletes this instance's keys and frees. NULL is a no-op. */
void xds_proxies_stop(xds_proxies *p);

#endif
