/* quarantine.c - see sluice/quarantine.h. */
#include "sluice/quarantine.h"

#include <inttypes.h>
#include <stdio.h>

#include "sluice/envelope.h"
#include "sluice/log.h"
#include "sluice/report.h"
#include "sluice/resource.h"

static void count(const sl_quarantine *q, const char *bucket)
{
    static const char *const label[] = {"bucket"};
    sl_metric_family *f = NULL;
    sl_counter *c = NULL;
    if (!q || !q->metrics)
        return;
    if (sl_metrics_family_new(&f, q->metrics, SL_METRIC_COUNTER, "sluice_kv_quarantined_total",
                              "KV values skipped because they do not decode (docs/security.md).", label, 1, NULL,
                              0) == SL_OK &&
        sl_metric_family_counter(&c, f, (const char *const[]){bucket}) == SL_OK)
        sl_counter_inc(c);
}

void sl_quarantine_value(const sl_quarantine *q, const char *bucket, const char *key, uint64_t revision,
                         const char *error)
{
    char reason[1024], prefix[128], subject[512];
    sl_resource_id id;
    rep_report rr;
    Sluice__V1__Report *r;

    snprintf(reason, sizeof reason,
             "quarantined: %s key %s revision %" PRIu64 " does not decode: %s; the last good value stays in use",
             bucket, key, revision, error && error[0] ? error : "(no reason given)");
    sl_log_warn("kv", "value quarantined", "bucket=%s key=%s rev=%" PRIu64 " err=%s source=%s", bucket,
                sl_log_q(key), revision, sl_log_q(error), q && q->source ? q->source : "-");
    count(q, bucket);
    if (!q || !q->nc || !q->source)
        return;
    snprintf(prefix, sizeof prefix, "sluice.report.%s", q->source);
    if (sl_resource_key_parse(&id, key, 1) == SL_OK &&
        sl_resource_subject(subject, sizeof subject, prefix, id.kind, id.ns, id.name) == SL_OK) {
        r = rep_report_init(&rr, q->source, id.kind, id.ns, id.name, SLUICE__V1__STATUS__STATE__Rejected, reason);
    } else {
        snprintf(subject, sizeof subject, "%s.%s", prefix, SL_QUARANTINE_SUBJECT_KEY);
        r = rep_report_init(&rr, q->source, NULL, NULL, NULL, SLUICE__V1__STATUS__STATE__Rejected, reason);
        r->resource = NULL;
    }
    if (sl_envelope_publish_pb(q->nc, subject, &r->base, NULL) != SL_OK)
        sl_log_warn("kv", "quarantine report not published", "subject=%s err=%s", subject,
                    sl_log_q(sl_error_msg()));
}
