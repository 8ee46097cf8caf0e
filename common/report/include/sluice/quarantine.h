/* quarantine.h - what a service does with a KV value it cannot decode
 * (issue 12, "hostile input"): it skips it and keeps serving the last good
 * state, and says so once, here, the same way in every service:
 *
 *   - a warning log line (comp=kv msg="value quarantined") naming bucket,
 *     key, revision and the decode error;
 *   - the counter sluice_kv_quarantined_total{bucket="..."} of the
 *     service's metrics;
 *   - a sluice.v1.Report, state Rejected, reason "quarantined: <bucket>
 *     key <key> revision <n> does not decode: <error>; ...", from the
 *     service's report source: about the resource when the key names one
 *     ("<Kind>.<ns>.<name>", on sluice.report.<source>.<Kind>.<ns>.<name>),
 *     else on sluice.report.<source>.quarantine (sluice-reporter logs and
 *     counts those: they have no resource to fold into).
 *
 * Usage: fill an sl_quarantine when the service starts and call
 * sl_quarantine_value() where a decode of a watched or read value fails.
 */
#ifndef SLUICE_QUARANTINE_H
#define SLUICE_QUARANTINE_H

#include <stdint.h>

#include "sluice/metrics.h"
#include "sluice/nats.h"

/* The report subject token of quarantines about no resource. */
#define SL_QUARANTINE_SUBJECT_KEY "quarantine"

typedef struct sl_quarantine {
    sl_nats *nc;         /* where reports go; NULL: no report (offline tools) */
    const char *source;  /* the service's report source, sluice.report.<source>.> */
    sl_metrics *metrics; /* NULL: no counter */
} sl_quarantine;

/* Quarantines the value of key at revision in bucket: error says why it
 * does not decode (the caller's sl_error_msg(), say). Any thread; q may be
 * NULL (log only). Failing to publish the report is logged, not returned. */
void sl_quarantine_value(const sl_quarantine *q, const char *bucket, const char *key, uint64_t revision,
                         const char *error);

#endif
