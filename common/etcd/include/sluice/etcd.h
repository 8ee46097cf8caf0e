/* sluice/etcd.h - a client of etcd's v3 gRPC API (KV Range/Put/DeleteRange and Watch, over gRPC
 * core with etcd's own protos generated at build time), and the registry convention gRPC-Go services
 * use with etcd (go.etcd.io/etcd/client/v3/naming/endpoints: key "<service>/<addr>", JSON value
 * {"Addr": "...", "Metadata": ...}).
 *
 *   sl_etcd *c;
 *   sl_etcd_connect(&c, "127.0.0.1:2379", 5000);
 *   sl_etcd_range_prefix(c, "svc/", &kvs, &n, &rev, 5000);   // the state at revision rev
 *   sl_etcd_watch_start(&w, c, "svc/", rev + 1);             // every change after it
 *   while (sl_etcd_watch_next(w, &ev, &nev, &rev, 1000) ...)  // in order, with revisions
 *
 * A consumer that stores the last revision it applied resumes with
 * sl_etcd_watch_start(..., rev + 1) and misses and replays nothing, as long
 * as etcd has not compacted past it (then SL_ERR_CONFLICT: range again).
 * Calls block the calling thread (each call has its own completion queue);
 * one sl_etcd may be used from several threads, one watch from one thread.
 */
#ifndef SLUICE_ETCD_H
#define SLUICE_ETCD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sluice/status.h"

typedef struct sl_etcd sl_etcd;

/* One key-value as etcd holds it. key is NUL-terminated; value is len
 * bytes (NUL-terminated too, for convenience). Owned by the array they come
 * in (sl_etcd_kvs_free()). */
typedef struct sl_etcd_kv {
    char *key;
    uint8_t *value;
    size_t len;
    int64_t create_revision, mod_revision, version, lease;
} sl_etcd_kv;

/* Frees n key-values and the array. NULL is a no-op. */
void sl_etcd_kvs_free(sl_etcd_kv *kvs, size_t n);

/* Opens a channel to endpoint ("host:port", plaintext) and waits up to
 * timeout_ms for it to connect. SL_ERR_TIMEOUT (nobody answers),
 * SL_ERR_NOMEM. Free with sl_etcd_close(). */
sl_status sl_etcd_connect(sl_etcd **out, const char *endpoint, int64_t timeout_ms);

/* Closes the channel. Watches on it must be freed first. NULL is a no-op. */
void sl_etcd_close(sl_etcd *c);

/* Every key starting with prefix ("" = every key), sorted by key, into
 * *kvs (malloc'd array of *n; NULL when none); *revision gets the store's
 * revision the answer is at (the point to watch from, + 1). SL_ERR_TIMEOUT,
 * SL_ERR_IO (the call failed; the context has gRPC's status and message),
 * SL_ERR_PARSE (an answer that does not decode). */
sl_status sl_etcd_range_prefix(sl_etcd *c, const char *prefix, sl_etcd_kv **kvs, size_t *n, int64_t *revision,
                               int64_t timeout_ms);

/* Puts key = value (len bytes); *revision (may be NULL) gets the revision
 * of the write. Errors as sl_etcd_range_prefix(). */
sl_status sl_etcd_put(sl_etcd *c, const char *key, const void *value, size_t len, int64_t *revision,
                      int64_t timeout_ms);

/* Deletes key; *deleted (may be NULL) gets how many keys went (0 or 1). */
sl_status sl_etcd_delete(sl_etcd *c, const char *key, int64_t *deleted, int64_t timeout_ms);

/* ---- watches ---------------------------------------------------------- */

typedef enum sl_etcd_event_type {
    SL_ETCD_PUT = 0,
    SL_ETCD_DELETE = 1,
} sl_etcd_event_type;

/* One change. For a delete, kv.value is empty and kv.mod_revision is the
 * delete's revision. */
typedef struct sl_etcd_event {
    sl_etcd_event_type type;
    sl_etcd_kv kv;
} sl_etcd_event;

/* Frees n events and the array. NULL is a no-op. */
void sl_etcd_events_free(sl_etcd_event *ev, size_t n);

typedef struct sl_etcd_watch sl_etcd_watch;

/* Watches every key under prefix from start_revision (<= 0: from now on),
 * waiting up to 5 s for etcd to confirm it. SL_ERR_CONFLICT when start_revision
 * was compacted away (range again); other errors as the calls above. Free
 * with sl_etcd_watch_free(). */
sl_status sl_etcd_watch_start(sl_etcd_watch **out, sl_etcd *c, const char *prefix, int64_t start_revision);

/* The next batch of changes, in revision order, waiting up to timeout_ms:
 * SL_OK with *ev (malloc'd, *n entries, free with sl_etcd_events_free();
 * *n may be 0 for a progress notification) and *revision the store's
 * revision after them; SL_ERR_TIMEOUT: nothing yet; SL_ERR_CLOSED: the
 * stream ended (etcd went away: start again from the last revision + 1);
 * SL_ERR_CONFLICT: compacted. One thread at a time. */
sl_status sl_etcd_watch_next(sl_etcd_watch *w, sl_etcd_event **ev, size_t *n, int64_t *revision,
                             int64_t timeout_ms);

/* Cancels the stream and frees w. NULL is a no-op. */
void sl_etcd_watch_free(sl_etcd_watch *w);

/* ---- the naming/endpoints registry convention (pure, no network) ------ */

/* Health an endpoint declares in its Metadata ("health"). */
typedef enum sl_etcd_health {
    SL_ETCD_HEALTH_UNKNOWN = 0, /* not said: the proxy's own checks decide */
    SL_ETCD_HEALTH_HEALTHY = 1,
    SL_ETCD_HEALTH_UNHEALTHY = 2,
    SL_ETCD_HEALTH_DRAINING = 3,
} sl_etcd_health;

#define SL_ETCD_MAX_LABELS 64

/* One endpoint of a registry value. */
typedef struct sl_etcd_endpoint {
    char address[256]; /* host or IP address, without brackets */
    uint16_t port;
    char *metadata;    /* the Metadata value as compact JSON (malloc'd), or NULL when absent or null */
    /* What Sluice reads from a Metadata object (every member optional):
     *   {"weight": 1..4294967295, "priority": 0..127,
     *    "health": "healthy" | "unhealthy" | "draining" | "unknown",
     *    "region": "...", "zone": "...", "subZone": "..."
     *      (or the same three inside "locality": {...}),
     *    "labels": {"version": "v2", ...}}
     * Other members are the application's and are left alone; so is a
     * Metadata that is not an object (gRPC-Go's is any value). */
    uint32_t weight;   /* 0: not given */
    uint32_t priority;
    sl_etcd_health health;
    char *region, *zone, *sub_zone; /* malloc'd, or NULL */
    size_t n_labels;
    char **label_keys, **label_values; /* malloc'd, n_labels each, sorted by key */
    /* A member above with the wrong type or range: what and where
     * ("Metadata.weight: want an integer from 1 to 4294967295"), the first
     * one found (the member is then not used; the endpoint still is).
     * Empty when everything was understood. */
    char warning[256];
} sl_etcd_endpoint;

/* Parses a registry value: a JSON object {"Addr": "host:port" (or
 * "[v6]:port"), "Metadata": any}. The key's last segment is not used.
 * SL_ERR_PARSE with context naming what is wrong (not JSON, no Addr, a bad
 * port). Free with sl_etcd_endpoint_deinit(). At most 64 KiB. */
sl_status sl_etcd_parse_endpoint(sl_etcd_endpoint *out, const uint8_t *value, size_t len);

/* Frees what out holds and zeroes it. */
void sl_etcd_endpoint_deinit(sl_etcd_endpoint *e);

#endif
