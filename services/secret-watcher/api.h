/* api.h - the secret-watcher's request/reply API: Secrets by NATS
 * (docs/secrets.md "Secrets by API").
 *
 *   sluice.api.secret.apply   body: YAML/JSON Secret documents (Sluice's
 *                             or Gloo's layout; header Sluice-Filename
 *                             names them in errors) or a protobuf
 *                             sluice.v1.ApplyRequest of sluice.v1.Secret;
 *                             reply: sluice.v1.ApplyResponse
 *   sluice.api.secret.delete  body: a protobuf sluice.v1.DeleteRequest;
 *                             reply: sluice.v1.DeleteResponse
 *
 * Header Sluice-Dry-Run: true (or the request's dry_run) checks and
 * stores nothing. Secrets stored this way carry the annotation
 * sluice.io/source "api:<source>" and no sluice.io/source-dir, so the
 * directory sync never prunes them; a secret that a directory holds is
 * refused (change its file). Replies, reports and logs never hold secret
 * material.
 */
#ifndef SW_API_H
#define SW_API_H

#include <pthread.h>

#include "sluice/kv.h"
#include "sluice/metrics.h"
#include "sluice/nats.h"
#include "sluice/status.h"
#include "sluice/v1/core.pb-c.h"

#define SW_SUBJECT_APPLY "sluice.api.secret.apply"
#define SW_SUBJECT_DELETE "sluice.api.secret.delete"

typedef struct sw_api sw_api;

/* The watcher's counters the API adds to (borrowed; any may be NULL):
 * secrets written, deleted, and refused. */
typedef struct sw_api_counters {
    sl_counter *writes, *deletes, *invalid;
} sw_api_counters;

/* Serves both subjects in queue group queue, on a thread of its own.
 * lock (the caller's) is held around each request and around the
 * caller's directory sync: both write kv. ns: the namespace of secrets
 * that name none ("default", as the config API's). Borrowed pointers outlive the API. Stop it with
 * sw_api_free() before kv and nc. */
sl_status sw_api_start(sw_api **out, sl_nats *nc, sl_kv *kv, pthread_mutex_t *lock, const char *ns,
                       const char *queue, const sw_api_counters *counters);

/* Unsubscribes, stops the thread and frees a. NULL is fine. */
void sw_api_free(sw_api *a);

/* Publishes a report about Secret key ("Secret.<ns>.<name>") on
 * sluice.report.secret-watcher.Secret.<ns>.<name>; reason never holds
 * material. withdrawn: the secret is gone (state and reason unused). */
void sw_report_publish(sl_nats *nc, const char *key, Sluice__V1__Status__State state, const char *reason,
                       bool withdrawn);

#endif
