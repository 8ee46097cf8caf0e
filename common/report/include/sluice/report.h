/* report.h - a sluice.v1.Report as a reporter (translator, xds-server,
 * secret-watcher, ...) fills it: the resource it is about, who reports,
 * the state and reason, and when. */
#ifndef SLUICE_REPORT_H
#define SLUICE_REPORT_H

#include "sluice/v1/events.pb-c.h"

/* A report with the storage of what it points at. */
typedef struct rep_report {
    Sluice__V1__Report r;
    Sluice__V1__ObjectRef ref;
    Google__Protobuf__Timestamp ts;
} rep_report;

/* Sets rr up as source's report on kind ns/name: state, reason (NULL is
 * ""), and the time now (CLOCK_REALTIME). The strings are pointed at, not
 * copied: they must outlive rr. Returns &rr->r, for the other fields. */
Sluice__V1__Report *rep_report_init(rep_report *rr, const char *source, const char *kind, const char *ns,
                                    const char *name, Sluice__V1__Status__State state, const char *reason);

#endif
