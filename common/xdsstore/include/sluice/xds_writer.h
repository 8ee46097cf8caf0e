/* xds_writer.h - writes translations into the sluice_xds KV bucket.
 *
 * Per proxy: every changed resource, route part (a RouteConfiguration of at
 * least SL_XDS_SPLIT_MIN bytes is stored in parts) and manifest chunk is
 * put, then, once every put is acknowledged, the proxy's commit naming the
 * chunks at their revisions (layout and protocol in docs/xds.md; keys by
 * sluice/xds_keys.h). Bytes the bucket holds already are never put again,
 * so a resource that does not change keeps its KV revision (its version).
 *
 * The writer remembers what it wrote (key -> bytes, revision) and, per
 * proxy, the translator's pointers of the last write: a resource with the
 * same name, bytes and length pointers as last time is the same bytes
 * (the pointer-identity contract of sluice/translate.h), so an unchanged
 * resource costs a few comparisons. The sl_tr_proxy written last must stay
 * alive (or its pointers never be reused) until the next write of that
 * proxy: the translator keeps its previous result while writing the next.
 *
 * While the bucket's last revision is known from its own acknowledgements,
 * a proxy's puts are pipelined (one round trip), their revisions predicted;
 * when another writer came between, the proxy is written once more without
 * pipelining. Not thread-safe: one thread at a time.
 */
#ifndef SLUICE_XDS_WRITER_H
#define SLUICE_XDS_WRITER_H

#include <stddef.h>
#include <stdint.h>

#include "sluice/kv.h"
#include "sluice/metrics.h"
#include "sluice/translate.h"

typedef struct sl_xdsw sl_xdsw;

typedef struct sl_xdsw_opts {
    const char *log_component; /* the log lines' component (NULL: "xds-writer") */
    sl_counter *writes;        /* optional: counts every put (resources, parts, chunks, commits) */
    sl_counter *deletes;       /* optional: counts every stale key deleted */
} sl_xdsw_opts;

/* What the writes since sl_xdsw_round_begin() did. */
typedef struct sl_xdsw_stats {
    size_t same;         /* resources found unchanged by their pointers */
    size_t compared;     /* resources (or parts) whose bytes were compared */
    size_t batches;      /* pipelined batches sent */
    size_t mispredicted; /* proxies written again: another writer moved the bucket */
    double flush_us;     /* time waiting for the batches' acknowledgements */
    double commit_us;    /* time waiting for the commits' acknowledgements */
} sl_xdsw_stats;

/* A writer over kv (an open sluice_xds bucket; the caller's, which must
 * outlive the writer). Reads what the bucket holds (so nothing unchanged is
 * written again after a restart, and the proxies with a commit are known to
 * sl_xdsw_write_gone()). opts may be NULL; the counters must outlive it. */
sl_status sl_xdsw_new(sl_xdsw **out, sl_kv *kv, const sl_xdsw_opts *opts);

/* Frees the writer (not the bucket). NULL is a no-op. */
void sl_xdsw_free(sl_xdsw *w);

/* Starts a round (one translation's writes): forgets which keys were named
 * and zeroes the stats. sl_xdsw_delete_stale() looks at the round's writes. */
void sl_xdsw_round_begin(sl_xdsw *w);

/* Writes proxy p (its resources, parts, chunks, then its commit unless it
 * names the same chunks as the stored one); *n_res grows by p's resource
 * count. On an error nothing is committed, what was not acknowledged counts
 * as not written, and the next write of p compares every byte again. */
sl_status sl_xdsw_write_proxy(sl_xdsw *w, const sl_tr_proxy *p, size_t *n_res);

/* Writes an empty commit for each proxy that had a commit (written, or in
 * the bucket at sl_xdsw_new()) and is not in r; then remembers r's proxies
 * as the ones to look at next time. Failures are logged. */
void sl_xdsw_write_gone(sl_xdsw *w, const sl_tr_result *r);

/* Deletes every key (but commits) that no write of this round named, after
 * the commits that stopped naming them. Call only when every write of the
 * round succeeded. Failures are logged (the key is tried again next round). */
void sl_xdsw_delete_stale(sl_xdsw *w);

/* The round's stats. */
sl_xdsw_stats sl_xdsw_stats_get(const sl_xdsw *w);

#endif
