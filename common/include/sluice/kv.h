/* sluice/kv.h - JetStream key-value buckets: open, read, write, watch.
 *
 * Keys follow NATS KV rules: [A-Za-z0-9_=/\\-] tokens separated by single
 * dots, not starting or ending with a dot. Values are bytes (at most the
 * bucket's max value size and the server's max_payload).
 *
 * Every write returns the entry's revision (the stream sequence). Writes
 * that take an expected revision fail with SL_ERR_CONFLICT when the key has
 * moved on; create fails with SL_ERR_EXISTS when the key has a live value.
 *
 * Watches deliver the current value of every matching key first, then an
 * "initial values done" marker, then every change as it happens (puts,
 * deletes, purges), across reconnects and server restarts (nats.c's
 * ordered consumer re-creates itself from the last revision seen). Two
 * ways to consume them:
 *   - pull: sl_kv_watch_new() then sl_kv_watch_next() in your own loop;
 *   - push: sl_kv_watch_start() delivers to handlers on an sl_loop
 *     (service.h), so all of a service's watches and subscriptions run on
 *     one thread.
 */
#ifndef SLUICE_KV_H
#define SLUICE_KV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sluice/nats.h"
#include "sluice/service.h"
#include "sluice/status.h"

typedef enum sl_kv_storage {
    SL_KV_FILE = 0,
    SL_KV_MEMORY,
} sl_kv_storage;

/* Bucket settings for sl_kv_open(). Strings are borrowed for the call. */
typedef struct sl_kv_config {
    const char *bucket;         /* [A-Za-z0-9_-]+ */
    const char *description;    /* optional */
    uint8_t history;            /* values kept per key, 1..64; default 1 */
    int32_t max_value_size;     /* bytes; 0 = the server's limit */
    int64_t max_bytes;          /* bucket size; 0 = unlimited */
    int64_t ttl_ms;             /* value lifetime; 0 = forever */
    sl_kv_storage storage;      /* default SL_KV_FILE */
    int replicas;               /* 1..5; default 0: the connection's --kv-replicas
                                 * (SLUICE_KV_REPLICAS), else 1 */
    /* RePublish every change to a subject (so stored state and its event
     * are one write). republish_keys is a key pattern in the bucket (e.g.
     * ">" or "status.>"), republish_subject the destination with the same
     * wildcards (e.g. "sluice.status.>"). Both NULL: no republish. */
    const char *republish_keys;
    const char *republish_subject;
    bool republish_headers_only;
} sl_kv_config;

typedef enum sl_kv_op {
    SL_KV_PUT = 1,
    SL_KV_DELETE,
    SL_KV_PURGE,
} sl_kv_op;

/* One entry. Caller-owned storage, filled by sl_kv_get() or
 * sl_kv_watch_next(); release with sl_kv_entry_deinit(). key and value
 * point into the entry and stay valid until then. Entries delivered to
 * watch handlers belong to the watch and are valid during the call only. */
typedef struct sl_kv_entry {
    const char *key;
    const uint8_t *value; /* NULL when len == 0 (always for deletes and purges) */
    size_t len;
    uint64_t revision;
    uint64_t delta;     /* watch: entries still pending behind this one */
    int64_t created_ns; /* when it was written, ns since the epoch (UTC) */
    sl_kv_op op;
    void *impl_; /* private */
} sl_kv_entry;

/* Releases what the entry holds and zeroes it. Safe on a zeroed entry. */
void sl_kv_entry_deinit(sl_kv_entry *e);

typedef struct sl_kv sl_kv;

/* Fills c with the defaults for bucket. */
void sl_kv_config_init(sl_kv_config *c, const char *bucket);

/* Binds to the bucket, creating it with cfg when it does not exist (safe
 * when several replicas race). An existing bucket keeps its configuration;
 * a difference in history or TTL is logged as a warning. Replicas: when
 * cfg or the connection (--kv-replicas) asks for a number, an existing
 * bucket with another is scaled to it (a stream update, logged; a failure
 * is a warning, not an error); otherwise a difference is a warning saying
 * how to change it. Creating a bucket with more than one replica needs a
 * NATS cluster (a single server answers an error). Free with sl_kv_free()
 * before closing nc. */
sl_status sl_kv_open(sl_kv **out, sl_nats *nc, const sl_kv_config *cfg);

/* Sets the replicas of a JetStream stream (a bucket's is KV_<bucket>) with
 * a stream update; nats-server 2.9 scales a clustered stream up or down
 * while it serves. *had receives the replicas it had (0 when unknown); SL_OK
 * also when it had them already. SL_ERR_INVALID for more than one replica
 * on a server that is not clustered. */
sl_status sl_kv_scale_stream(int64_t *had, sl_nats *nc, const char *stream, int64_t replicas);

/* Binds to an existing bucket; SL_ERR_NOT_FOUND when there is none. */
sl_status sl_kv_bind(sl_kv **out, sl_nats *nc, const char *bucket);

/* Frees the handle (not the bucket). Watches on it must be freed first.
 * NULL is a no-op. */
void sl_kv_free(sl_kv *kv);

/* Deletes a bucket and everything in it from the server. */
sl_status sl_kv_delete_bucket(sl_nats *nc, const char *bucket);

/* The bucket's name (valid while kv lives). */
const char *sl_kv_bucket(sl_kv *kv);

/* True when key is a valid key (see the top of this file). */
bool sl_kv_key_valid(const char *key);

/* The latest value of key. SL_ERR_NOT_FOUND when there is none or it was
 * deleted or purged. On success release *e with sl_kv_entry_deinit(). */
sl_status sl_kv_get(sl_kv_entry *e, sl_kv *kv, const char *key);

/* Writes value (len may be 0). rev may be NULL. */
sl_status sl_kv_put(uint64_t *rev, sl_kv *kv, const char *key, const void *value, size_t len);

/* One write of sl_kv_put_many(): key, value and len are the caller's (read
 * during the call only); rev and status are filled in. */
typedef struct sl_kv_put_item {
    const char *key;
    const void *value;
    size_t len;
    uint64_t rev;     /* out: the revision stored, 0 when not stored */
    sl_status status; /* out: SL_OK, or why this key was not stored */
} sl_kv_put_item;

/* Writes n values pipelined: every put is published before the first
 * acknowledgement is awaited, so the batch costs about one round trip to
 * the server instead of n. They are stored in order (revisions increase
 * with the index; other writers' values may come between). Returns when
 * every put is acknowledged, failed or timed out (timeout_ms for the
 * batch; <= 0: 5 s): SL_OK when all were stored, else the status of the
 * first that was not, with sl_error_msg() naming its key; each item's
 * status says which ones. An invalid key or a value over the connection's
 * max_payload is found before anything is sent (SL_ERR_INVALID, nothing
 * written). n == 0 is a no-op. The acknowledgements come on one
 * subscription the handle makes at its first batch and keeps; batches on
 * one handle run one at a time (any thread). */
sl_status sl_kv_put_many(sl_kv *kv, sl_kv_put_item *items, size_t n, int64_t timeout_ms);

/* Writes only when key has no live value (never written, deleted or
 * purged); SL_ERR_EXISTS otherwise. */
sl_status sl_kv_create(uint64_t *rev, sl_kv *kv, const char *key, const void *value, size_t len);

/* Writes only when key's latest revision is last (> 0); SL_ERR_CONFLICT
 * otherwise (someone wrote since, or the key is gone). */
sl_status sl_kv_update(uint64_t *rev, sl_kv *kv, const char *key, const void *value, size_t len,
                       uint64_t last);

/* Places a delete marker (history is kept). last == 0 deletes whatever is
 * there; last > 0 only if key's latest revision is last (SL_ERR_CONFLICT).
 * rev receives the marker's revision; may be NULL. */
sl_status sl_kv_delete(uint64_t *rev, sl_kv *kv, const char *key, uint64_t last);

/* Places a purge marker: readers and watches see the key as gone
 * (SL_KV_PURGE), like a delete. Unlike nats.c's purge it does not roll up
 * the key's history on the server (older values go with the bucket's
 * history limit): on nats-server before 2.9.15 a rollup moves every watch
 * on the bucket past updates it has not delivered yet (nats-server
 * PR #3838). */
sl_status sl_kv_purge(uint64_t *rev, sl_kv *kv, const char *key, uint64_t last);

/* Drops the older values of key from the bucket's history, keeping its
 * latest keep (1: only the current value, or the delete marker). For
 * values that must not linger after a rotation (private keys). */
sl_status sl_kv_purge_history(sl_kv *kv, const char *key, uint64_t keep);

/* Every key with a live value, waiting at most timeout_ms. *keys is a
 * malloc'd array of *count malloc'd strings (NULL when empty): free with
 * sl_kv_keys_free(). */
sl_status sl_kv_keys(char ***keys, size_t *count, sl_kv *kv, int64_t timeout_ms);
void sl_kv_keys_free(char **keys, size_t count);

/* ---- watches ---------------------------------------------------------- */

typedef struct sl_kv_watch sl_kv_watch;

typedef struct sl_kv_watch_opts {
    const char *keys;    /* key pattern with * and > wildcards; NULL = all keys */
    bool ignore_deletes; /* skip delete and purge entries */
} sl_kv_watch_opts;

/* Pull mode. Starts a watch; free with sl_kv_watch_free(). opts may be
 * NULL. */
sl_status sl_kv_watch_new(sl_kv_watch **out, sl_kv *kv, const sl_kv_watch_opts *opts);

/* The next event, waiting at most timeout_ms (> 0):
 *   SL_OK with *initial_done false: *e holds an entry (release it with
 *     sl_kv_entry_deinit());
 *   SL_OK with *initial_done true: every value that existed when the watch
 *     started has been delivered (once per watch; e is left zeroed);
 *   SL_ERR_TIMEOUT: nothing yet;
 *   SL_ERR_CLOSED: the watch was stopped (sl_kv_watch_stop());
 *   other errors: the watch failed and delivers nothing more.
 * One thread at a time. */
sl_status sl_kv_watch_next(sl_kv_entry *e, bool *initial_done, sl_kv_watch *w, int64_t timeout_ms);

/* Callbacks of push mode; entry is required, the others optional. They run
 * on the loop's thread, one at a time, in the order of the watch. */
typedef struct sl_kv_watch_handlers {
    /* One entry; e belongs to the watch and is valid during the call. */
    void (*entry)(sl_kv_watch *w, const sl_kv_entry *e, void *ud);
    /* Every initial value has been delivered (exactly once). */
    void (*initial_done)(sl_kv_watch *w, void *ud);
    /* The watch failed for good (st, with sl_error_msg() text in msg) and
     * delivers nothing more; the watch must still be freed. */
    void (*failed)(sl_kv_watch *w, sl_status st, const char *msg, void *ud);
} sl_kv_watch_handlers;

/* Push mode: starts a watch whose events are posted to loop (see
 * service.h). handlers is copied. On error nothing is ever called. Free
 * with sl_kv_watch_free() before freeing loop. */
sl_status sl_kv_watch_start(sl_kv_watch **out, sl_kv *kv, const sl_kv_watch_opts *opts,
                            sl_loop *loop, const sl_kv_watch_handlers *handlers, void *ud);

/* Pull mode: a sl_kv_watch_next() blocked on another thread returns
 * SL_ERR_CLOSED within 100 ms. Push mode: no handler runs after it returns
 * (called from a handler, none runs after that handler). Any thread; the
 * watch must still be freed. */
void sl_kv_watch_stop(sl_kv_watch *w);

/* Stops (if needed) and frees the watch. In push mode no handler runs
 * after it returns, and events not delivered yet are dropped; it may be
 * called from one of the watch's own handlers. NULL is a no-op. */
void sl_kv_watch_free(sl_kv_watch *w);

#endif
