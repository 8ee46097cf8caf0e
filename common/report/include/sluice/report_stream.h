/* stream.h - the durable report stream (JetStream) and the reporter's
 * consumer of it. Shared with sluicectl run, which creates the stream as
 * soon as nats-server is up so reports published before the reporter
 * starts are kept. Both calls are idempotent (bind when it exists). */
#ifndef SLUICE_REPORTER_STREAM_H
#define SLUICE_REPORTER_STREAM_H

#include <stdint.h>

#include "sluice/nats.h"
#include "sluice/status.h"

#define REP_STREAM_DEFAULT "SLUICE_REPORTS"
#define REP_STREAM_MAX_AGE_MS (24LL * 3600 * 1000)

/* Makes sure stream exists, capturing subject (e.g. "sluice.report.>")
 * with one message per subject (the latest report of a resource) kept at
 * most max_age_ms, on file storage, with nc's --kv-replicas replicas (1
 * when unset). An existing stream is used as it is (a difference in those
 * settings is logged as a warning), except that it is scaled to
 * --kv-replicas when that is set. */
sl_status rep_stream_ensure(sl_nats *nc, const char *stream, const char *subject, int64_t max_age_ms);

/* Makes sure the durable push consumer `durable` of stream exists,
 * delivering every retained message (explicit acks, 30 s ack wait) to
 * deliver_subject in queue group `group` (replicas share it). Messages
 * arrive on deliver_subject with their original subject and the ack
 * subject as reply: acknowledge by publishing an empty message to it. */
sl_status rep_consumer_ensure(sl_nats *nc, const char *stream, const char *durable,
                              const char *deliver_subject, const char *group);

#endif
