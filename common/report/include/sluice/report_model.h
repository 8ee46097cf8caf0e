/* model.h - the reporter's state: reports folded into resource statuses.
 *
 * NATS-free and single-threaded (the service runs it on its loop), so it is
 * unit tested on its own (services/reporter/tests/test_reporter_model.c).
 *
 * A resource's status is built from slots, one per (source, proxy) that
 * reported on it: the translator's report for proxy "<ns>~<proxy>" (or for
 * every proxy, proxy ""), reports of other sources ("secret-watcher", ...).
 * An xds-server report is not a slot of its own: it is a NACK overlaid on
 * the translator slots of the proxy it names (the resource's config was
 * rejected by that proxy) until a newer translation of the resource
 * replaces the slot, or the xds-server reports the proxy Accepted again.
 *
 * Ordering (no flip-flop): a slot is replaced only by a report that is
 * newer by (generation, xds revision when both are numbers, report time);
 * an older one is counted as stale and ignored, an equal one as a
 * duplicate. A NACK applies to a slot only if it is not older than the
 * slot's report.
 *
 * Every slot is persisted inside the status itself (a subresource status
 * keyed by the proxy, with the bookkeeping in its `details`), so the model
 * is rebuilt exactly from the status KV on start (rep_model_load), and
 * several replicas converge by loading each other's writes.
 *
 * Statuses are compared without their bookkeeping: a status is written
 * (and so published) only when what a user sees changed.
 */
#ifndef SLUICE_REPORTER_MODEL_H
#define SLUICE_REPORTER_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sluice/status.h"
#include "sluice/v1/events.pb-c.h"

typedef struct rep_model rep_model;

typedef enum rep_result {
    REP_APPLIED = 0, /* the report changed the model */
    REP_STALE,       /* older than what is known: ignored */
    REP_DUPLICATE,   /* the same as what is known */
    REP_IGNORED,     /* nothing it applies to (a NACK for a proxy with no resources) */
} rep_result;

/* Kind of the pseudo-resource the xds-server reports NACKs on. */
#define REP_KIND_PROXY "Proxy"

sl_status rep_model_new(rep_model **out);
/* NULL is a no-op. */
void rep_model_free(rep_model *m);

/* Folds a report in. source/resource missing from r are taken from the
 * subject's tokens (src, key "<Kind>.<ns>.<name>"; both may be NULL).
 * recv_ns is the local receive time, used when r carries no time.
 * Resources whose status may have changed are marked dirty. */
sl_status rep_model_report(rep_model *m, rep_result *res, const Sluice__V1__Report *r,
                           const char *src, const char *key, int64_t recv_ns);

/* Merges a stored status (packed sluice.v1.Status at KV revision rev):
 * every slot it carries replaces ours unless ours is newer. Marks the key
 * dirty when the merged status differs from the stored one. */
sl_status rep_model_load(rep_model *m, const char *key, const uint8_t *data, size_t len,
                         uint64_t rev);

/* The resource exists in the config KV at revision rev (true) or was
 * deleted (false: its entry is dropped). Only resources of kinds stored in
 * sluice_config are gated on this; others (Proxy, Secret) are published as
 * reported. A stored revision makes the config-watcher's reports about
 * older revisions (rejected proposals) obsolete. */
sl_status rep_model_set_config(rep_model *m, const char *key, bool present, uint64_t rev);

/* With gating off (no config bucket watched), every known key is
 * publishable. Default on. */
void rep_model_set_gating(rep_model *m, bool on);

/* Whether key should have a status: it is known, and it is in the config
 * KV when its kind lives there, or the config-watcher reported on it (a
 * rejected proposal of a resource that was never stored). */
bool rep_model_publishable(rep_model *m, const char *key);

/* Drops a key entirely (status deleted elsewhere). */
void rep_model_forget(rep_model *m, const char *key);

/* Pops the next dirty key into buf (n bytes); false when none. */
bool rep_model_next_dirty(rep_model *m, char *buf, size_t n);

/* Computes key's status. *out (malloc'd, packed sluice.v1.Status with
 * bookkeeping, free it) and *changed: whether it differs, bookkeeping
 * aside, from the last committed one. SL_ERR_NOT_FOUND for unknown keys. */
sl_status rep_model_render(rep_model *m, uint8_t **out, size_t *len, bool *changed,
                           const char *key);

/* The rendered status was written at revision rev (or, rev == 0, the key
 * was deleted from the KV). */
void rep_model_committed(rep_model *m, const char *key, uint64_t rev);

/* The KV revision last written or loaded for key (0: none). */
uint64_t rep_model_revision(rep_model *m, const char *key);

/* Number of resources known. */
size_t rep_model_count(rep_model *m);

/* Calls fn for every known key (the model must not change meanwhile). */
void rep_model_each(rep_model *m, void (*fn)(void *ud, const char *key), void *ud);

/* Orders two xDS version strings: numbers numerically, otherwise 0
 * (incomparable). Exposed for tests. */
int rep_version_cmp(const char *a, const char *b);

#endif
