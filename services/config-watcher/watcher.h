/* watcher.h - the state and operations of sluice-config-watcher.
 *
 * All of it runs on the service's loop thread: the KV watch, the apply API
 * subscriptions and directory syncs (posted by the inotify thread) are
 * serialised there, so the cache needs no lock. The cache mirrors the
 * sluice_config bucket (rebuilt from the watch on start: the service keeps
 * no state of its own).
 */
#ifndef SLUICE_CW_WATCHER_H
#define SLUICE_CW_WATCHER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "sluice/config.h"
#include "sluice/arena.h"
#include "sluice/envelope.h"
#include "sluice/kv.h"
#include "sluice/metrics.h"
#include "sluice/service.h"

#define CW_REPORT_SOURCE "config-watcher"
#define CW_FILE_REPORT_SUBJECT "sluice.report.config-watcher.file"
/* Optional request headers of the apply API with YAML/JSON bodies. */
#define CW_HDR_FILENAME "Sluice-Filename" /* file name used in diagnostics */
#define CW_HDR_DRY_RUN "Sluice-Dry-Run"   /* "true": validate only */
/* Reply header of sluice.api.apply: indices of the results that created a
 * resource, comma-separated (absent: none). */

typedef struct cw_entry cw_entry;
typedef struct cw cw;

/* The dry-run translation of the apply API: given the stored configuration
 * (the cache) and the proposed resources of set (checked, error-free ones
 * have r->msg), add errors and warnings to each item's diag. sluice-config-
 * watcher sets cw_translator_dry_run (dryrun.h); NULL skips the dry run. */
typedef void (*cw_dry_run_fn)(cw *w, sl_cfg_set *set, void *ud);

/* Backoff of a directory's sync that could not store everything. */
#define CW_RETRY_MIN_MS 200
#define CW_RETRY_MAX_MS 2000

typedef struct cw_dir {
    char *path; /* absolute */
    int wd;
    int64_t last_event_ms; /* inotify thread only */
    bool dirty;            /* inotify thread only */
    /* Set by the loop after an incomplete sync: sync again at this
     * monotonic time (0: no retry due); read by the inotify thread. */
    _Atomic int64_t retry_at_ms;
    int64_t retry_backoff_ms; /* loop thread only */
    cw *w;
} cw_dir;

struct cw {
    sl_service *svc;
    sl_nats *nc;
    sl_loop *loop;
    sl_kv *kv;
    sl_arena arena;
    cw_entry **tab;
    size_t nbuckets, live;
    cw_dir *dirs;
    size_t ndirs;
    struct cw_file *files;
    size_t nfiles, capfiles;
    bool initial_done;
    cw_dry_run_fn dry_run;
    void *dry_run_ud;
    /* Offline only (cw_init_offline): replies of the apply API go here
     * instead of NATS; the last revision written. */
    void (*reply_hook)(cw *w, const ProtobufCMessage *reply);
    uint64_t offline_rev;
    sl_counter *m_written, *m_unchanged, *m_deleted, *m_rejected, *m_api, *m_syncs, *m_kv_invalid;
    sl_gauge *m_resources;
};

sl_status cw_init(cw *w, sl_service *svc, sl_nats *nc, sl_loop *loop, sl_kv *kv);
/* A watcher without NATS (no service, connection, loop or KV), for tests
 * and fuzzing: the cache stands for the config bucket (writes and deletes
 * go to it, with revisions counted in offline_rev), reports are dropped and
 * apply/delete replies go to reply_hook when set. The handlers below then
 * run the same decoding and validation as in the service. m: the registry
 * the metrics are created in. */
sl_status cw_init_offline(cw *w, sl_metrics *m);
void cw_deinit(cw *w);

/* Calls fn for every stored (not deleted) key of the cache, with its value
 * and KV revision (loop thread). */
void cw_cache_foreach(cw *w, void (*fn)(const char *key, const uint8_t *val, size_t len, uint64_t rev, void *ud),
                      void *ud);

/* KV watch handlers (push mode). */
void cw_on_kv_entry(sl_kv_watch *wt, const sl_kv_entry *e, void *ud);

/* Syncs one directory with the KV (loop thread). */
void cw_sync_dir(cw *w, cw_dir *d);

/* Apply API handlers (sluice.api.apply / sluice.api.delete). */
void cw_on_apply(sl_subscription *sub, sl_status st, const sl_envelope *env, natsMsg *msg, void *ud);
void cw_on_delete(sl_subscription *sub, sl_status st, const sl_envelope *env, natsMsg *msg, void *ud);

#endif
