#include "sluice/report_stream.h"

#include <nats/nats.h>
#include <string.h>

#include "sluice/kv.h"
#include "sluice/log.h"

/* JetStream API error codes (nats-server's errors.json). */
#define JS_ERR_STREAM_NOT_FOUND 10059
#define JS_ERR_CONSUMER_NOT_FOUND 10014

sl_status rep_stream_ensure(sl_nats *nc, const char *stream, const char *subject, int64_t max_age_ms)
{
    jsCtx *js = sl_nats_js(nc);
    jsStreamInfo *si = NULL;
    jsStreamConfig cfg;
    jsErrCode jerr = 0;
    natsStatus s;
    sl_status st = SL_OK;
    const char *subjects[1] = {subject};
    /* --kv-replicas covers this stream too; unset: 1, and an existing
     * stream keeps its replicas. */
    int64_t replicas = sl_nats_kv_replicas(nc) > 0 ? sl_nats_kv_replicas(nc) : 1;

    s = js_GetStreamInfo(&si, js, stream, NULL, &jerr);
    if (s == NATS_OK) {
        jsStreamConfig *c = si->Config;
        if (c->MaxMsgsPerSubject != 1 || c->MaxAge != max_age_ms * 1000000 || c->SubjectsLen != 1 ||
            strcmp(c->Subjects[0], subject) != 0)
            sl_log_warn("report", "stream exists with other settings; using it as it is",
                        "stream=%s subjects=%d max_msgs_per_subject=%lld max_age_ms=%lld", stream,
                        c->SubjectsLen, (long long)c->MaxMsgsPerSubject,
                        (long long)(c->MaxAge / 1000000));
        if (c->Replicas != replicas && sl_nats_kv_replicas(nc) > 0) {
            int64_t have = c->Replicas, had;
            if (sl_kv_scale_stream(&had, nc, stream, replicas) == SL_OK)
                sl_log_info("report", "stream replicas changed", "stream=%s replicas=%lld/%lld",
                            stream, (long long)replicas, (long long)had);
            else
                sl_log_warn("report", "could not change the stream's replicas; keeping them",
                            "stream=%s replicas=%lld/%lld err=%s", stream, (long long)have,
                            (long long)replicas, sl_log_q(sl_error_msg()));
        } else if (c->Replicas != replicas) {
            sl_log_warn("report", "stream has other replicas; keeping them",
                        "stream=%s replicas=%lld/%lld hint=%s", stream, (long long)c->Replicas,
                        (long long)replicas,
                        sl_log_q("to change them run sluice-reporter with --kv-replicas N "
                                 "(SLUICE_KV_REPLICAS=N), or: nats stream edit <stream> "
                                 "--replicas N"));
        }
        goto out;
    }
    if (s != NATS_NOT_FOUND && jerr != JS_ERR_STREAM_NOT_FOUND) {
        st = sl_nats_error(s, "stream %s info", stream);
        goto out;
    }
    jsStreamConfig_Init(&cfg);
    cfg.Name = stream;
    cfg.Description = "Sluice reports: the latest per resource and source, for sluice-reporter";
    cfg.Subjects = subjects;
    cfg.SubjectsLen = 1;
    cfg.Storage = js_FileStorage;
    cfg.MaxMsgsPerSubject = 1;
    cfg.MaxAge = max_age_ms * 1000000;
    cfg.Discard = js_DiscardOld;
    cfg.Replicas = replicas;
    jerr = 0;
    s = js_AddStream(&si, js, &cfg, NULL, &jerr);
    if (s != NATS_OK) {
        /* Another process may have created it meanwhile: then it exists. */
        jsStreamInfo_Destroy(si);
        si = NULL;
        if (js_GetStreamInfo(&si, js, stream, NULL, NULL) != NATS_OK)
            st = sl_nats_error(s, "stream %s create, replicas %lld (jetstream error %d)", stream,
                               (long long)replicas, (int)jerr);
        goto out;
    }
    sl_log_info("report", "stream created", "stream=%s subject=%s max_age_ms=%lld replicas=%lld",
                stream, subject, (long long)max_age_ms, (long long)replicas);
out:
    jsStreamInfo_Destroy(si);
    return st;
}

sl_status rep_consumer_ensure(sl_nats *nc, const char *stream, const char *durable,
                              const char *deliver_subject, const char *group)
{
    jsCtx *js = sl_nats_js(nc);
    jsConsumerInfo *ci = NULL;
    jsConsumerConfig cfg;
    jsErrCode jerr = 0;
    natsStatus s;
    sl_status st = SL_OK;

    s = js_GetConsumerInfo(&ci, js, stream, durable, NULL, &jerr);
    if (s == NATS_OK) {
        const jsConsumerConfig *c = ci->Config;
        if (c->DeliverSubject == NULL || strcmp(c->DeliverSubject, deliver_subject) != 0 ||
            (c->DeliverGroup ? strcmp(c->DeliverGroup, group) != 0 : group[0] != '\0'))
            st = sl_error_set(SL_ERR_EXISTS,
                              "consumer %s of stream %s exists with deliver subject %s group %s "
                              "(want %s %s): delete it or use another --queue",
                              durable, stream, c->DeliverSubject ? c->DeliverSubject : "(pull)",
                              c->DeliverGroup ? c->DeliverGroup : "(none)", deliver_subject, group);
        goto out;
    }
    if (s != NATS_NOT_FOUND && jerr != JS_ERR_CONSUMER_NOT_FOUND) {
        st = sl_nats_error(s, "consumer %s/%s info", stream, durable);
        goto out;
    }
    jsConsumerConfig_Init(&cfg);
    cfg.Durable = durable;
    cfg.Description = "sluice-reporter (queue group shared by replicas)";
    cfg.DeliverSubject = deliver_subject;
    cfg.DeliverGroup = group[0] ? group : NULL;
    cfg.DeliverPolicy = js_DeliverAll;
    cfg.AckPolicy = js_AckExplicit;
    cfg.AckWait = 30LL * 1000000000;
    cfg.MaxAckPending = 20000;
    jerr = 0;
    s = js_AddConsumer(&ci, js, stream, &cfg, NULL, &jerr);
    if (s != NATS_OK) {
        jsConsumerInfo_Destroy(ci);
        ci = NULL;
        if (js_GetConsumerInfo(&ci, js, stream, durable, NULL, NULL) != NATS_OK)
            st = sl_nats_error(s, "consumer %s/%s create (jetstream error %d)", stream, durable, (int)jerr);
        goto out;
    }
    sl_log_info("report", "consumer created", "stream=%s durable=%s deliver=%s group=%s", stream, durable,
                deliver_subject, group);
out:
    jsConsumerInfo_Destroy(ci);
    return st;
}
