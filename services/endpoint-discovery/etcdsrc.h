/* etcdsrc.h - the etcd source of sluice-endpoint-discovery: a thread that reads every key under a prefix
 * (Range), then follows it (Watch from the next revision), and hands each step to a callback, in revision
 * order. A watch that ends resumes from the last revision applied (nothing missed, nothing replayed); one
 * that etcd compacted away reads the whole prefix again; a server that fails is said once, then tried again
 * (the next endpoint of the list) every retry interval. */
#ifndef ED_ETCDSRC_H
#define ED_ETCDSRC_H

#include <stddef.h>
#include <stdint.h>

#include "sluice/etcd.h"
#include "sluice/status.h"

typedef enum ed_etcd_step {
    ED_ETCD_RESET,  /* kvs: every key under the prefix at revision (replaces what came before) */
    ED_ETCD_EVENTS, /* events after the last step, up to revision (none: the source answers again) */
    ED_ETCD_FAILED, /* the source failed: error says how; what came before still stands */
} ed_etcd_step;

typedef struct ed_etcd_batch {
    ed_etcd_step step;
    sl_etcd_kv *kvs;
    size_t n_kvs;
    sl_etcd_event *events;
    size_t n_events;
    int64_t revision;
    char server[128]; /* the endpoint that answered or failed */
    char error[384];
    void *owner; /* the consumer's, e.g. to carry itself to another thread */
} ed_etcd_batch;

/* Called on the source's thread; the callee owns b (ed_etcd_batch_free()). */
typedef void (*ed_etcd_cb)(ed_etcd_batch *b, void *ud);

typedef struct ed_etcd_opts {
    const char *endpoints; /* "host:port[,host:port...]" */
    const char *prefix;    /* the keys followed ("" every key) */
    int64_t timeout_ms;    /* connect and Range */
    int64_t retry_ms;      /* after a failure */
    ed_etcd_cb cb;
    void *ud;
} ed_etcd_opts;

typedef struct ed_etcd ed_etcd;

/* Starts the thread. o's strings are copied. */
sl_status ed_etcd_start(ed_etcd **out, const ed_etcd_opts *o);

/* Stops the thread (within about a quarter second plus a call in flight)
 * and frees everything. NULL is a no-op. */
void ed_etcd_free(ed_etcd *s);

void ed_etcd_batch_free(ed_etcd_batch *b);

#endif
