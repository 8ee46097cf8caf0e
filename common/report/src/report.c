/* report.c - see sluice/report.h. */
#include "sluice/report.h"

#include <stdint.h>
#include <time.h>

Sluice__V1__Report *rep_report_init(rep_report *rr, const char *source, const char *kind, const char *ns,
                                    const char *name, Sluice__V1__Status__State state, const char *reason)
{
    struct timespec now;
    sluice__v1__report__init(&rr->r);
    sluice__v1__object_ref__init(&rr->ref);
    google__protobuf__timestamp__init(&rr->ts);
    clock_gettime(CLOCK_REALTIME, &now);
    rr->ts.seconds = now.tv_sec;
    rr->ts.nanos = (int32_t)now.tv_nsec;
    rr->ref.kind = (char *)kind;
    rr->ref.namespace_ = (char *)ns;
    rr->ref.name = (char *)name;
    rr->r.resource = &rr->ref;
    rr->r.source = (char *)source;
    rr->r.state = state;
    rr->r.reason = (char *)(reason ? reason : "");
    rr->r.time = &rr->ts;
    return &rr->r;
}
