/* sluice/etcd_follow.h - following a key prefix of etcd (what every discovery source over the etcd registry
 * needs), part of sluice_etcd:
 *
 *   - sl_etcd_follow: a thread that reads every key under a prefix (Range), then follows it (Watch from the
 *     next revision), and hands each step to a callback, in revision order. A watch that ends resumes from
 *     the last revision applied (nothing missed, nothing replayed); one that etcd compacted away reads the
 *     whole prefix again; a server that fails is said once, then tried again (the next endpoint of the
 *     list) every retry interval.
 *   - sl_etcd_reg: a copy of the registry those steps describe: every key with its value parsed
 *     (sl_etcd_parse_endpoint), sorted by key, so that a service prefix's endpoints are one range.
 *
 * Used by sluice-endpoint-discovery (endpoints per etcd Upstream) and sluice-upstream-discovery (one
 * Upstream per service prefix).
 */
#ifndef SLUICE_ETCD_FOLLOW_H
#define SLUICE_ETCD_FOLLOW_H

#include <stddef.h>
#include <stdint.h>

#include "sluice/etcd.h"
#include "sluice/status.h"

typedef enum sl_etcd_step {
    SL_ETCD_RESET,  /* kvs: every key under the prefix at revision (replaces what came before) */
    SL_ETCD_EVENTS, /* events after the last step, up to revision (none: the source answers again) */
    SL_ETCD_FAILED, /* the source failed: error says how; what came before still stands */
} sl_etcd_step;

typedef struct sl_etcd_batch {
    sl_etcd_step step;
    sl_etcd_kv *kvs;
    size_t n_kvs;
    sl_etcd_event *events;
    size_t n_events;
    int64_t revision;
    char server[128]; /* the endpoint that answered or failed */
    char error[384];
    void *owner; /* the consumer's, e.g. to carry itself to another thread */
} sl_etcd_batch;

/* Called on the follower's thread; the callee owns b (sl_etcd_batch_free()). */
typedef void (*sl_etcd_follow_cb)(sl_etcd_batch *b, void *ud);

typedef struct sl_etcd_follow_opts {
    const char *endpoints; /* "host:port[,host:port...]" */
    const char *prefix;    /* the keys followed ("" every key) */
    int64_t timeout_ms;    /* connect and Range */
    int64_t retry_ms;      /* after a failure */
    sl_etcd_follow_cb cb;
    void *ud;
} sl_etcd_follow_opts;

typedef struct sl_etcd_follow sl_etcd_follow;

/* Starts the thread. o's strings are copied. SL_ERR_INVALID without an
 * endpoint. Free with sl_etcd_follow_free(). */
sl_status sl_etcd_follow_start(sl_etcd_follow **out, const sl_etcd_follow_opts *o);

/* Stops the thread (within about a quarter second plus a call in flight)
 * and frees everything; no callback runs after it returns. NULL is a no-op. */
void sl_etcd_follow_free(sl_etcd_follow *s);

/* Frees a batch and what it holds. NULL is a no-op. */
void sl_etcd_batch_free(sl_etcd_batch *b);

/* ---- a copy of the registry -------------------------------------------- */

typedef struct sl_etcd_reg_entry {
    char *key;
    int64_t mod_revision;
    char *error;         /* the value is not an endpoint: why (malloc'd); NULL when ep is valid */
    sl_etcd_endpoint ep; /* the parsed value (valid when error is NULL) */
} sl_etcd_reg_entry;

/* Zero-initialise; owned by the caller, one thread at a time. */
typedef struct sl_etcd_reg {
    sl_etcd_reg_entry *v; /* sorted by key */
    size_t n, cap;
} sl_etcd_reg;

/* Sets key's value (added or replaced, parsed; a value that does not parse
 * is kept with its error). SL_ERR_NOMEM only. */
sl_status sl_etcd_reg_put(sl_etcd_reg *r, const sl_etcd_kv *kv);

/* Removes key (nothing when absent). */
void sl_etcd_reg_delete(sl_etcd_reg *r, const char *key);

/* The entries whose key starts with prefix: *first and the count. */
size_t sl_etcd_reg_range(const sl_etcd_reg *r, const char *prefix, size_t *first);

/* Applies a RESET or EVENTS step (a FAILED one changes nothing).
 * SL_ERR_NOMEM when a value could not be stored (the others are). */
sl_status sl_etcd_reg_apply(sl_etcd_reg *r, const sl_etcd_batch *b);

/* Empties r (kept usable). */
void sl_etcd_reg_clear(sl_etcd_reg *r);

/* Empties r and frees its array. */
void sl_etcd_reg_free(sl_etcd_reg *r);

#endif
