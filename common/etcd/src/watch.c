/* watch.c - sluice/etcd.h's watches: one Watch stream per watch, read with a pluck completion queue. */
#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "etcd/api/etcdserverpb/rpc.pb-c.h"
#include "internal.h"
#include "sluice/etcd.h"
#include "sluice/grpc_unary.h"

#define TAG(n) ((void *)(uintptr_t)(n))

enum { TAG_START = 1, TAG_RECV = 3, TAG_STATUS = 4 };

struct sl_etcd_watch {
    grpc_completion_queue *cq;
    grpc_call *call;
    grpc_metadata_array init_md, trail_md;
    grpc_byte_buffer *rbuf;
    grpc_status_code status;
    grpc_slice details;
    bool recv_pending, status_pending, ended;
    int64_t watch_id;
};

static gpr_timespec in_ms(int64_t ms)
{
    return gpr_time_add(gpr_now(GPR_CLOCK_REALTIME), gpr_time_from_millis(ms, GPR_TIMESPAN));
}

/* 1 done, 0 failed, -1 timed out. */
static int wait_tag(sl_etcd_watch *w, int tag, int64_t ms)
{
    grpc_event ev = grpc_completion_queue_pluck(w->cq, TAG(tag), in_ms(ms), NULL);
    if (ev.type == GRPC_QUEUE_TIMEOUT)
        return -1;
    return ev.success ? 1 : 0;
}

/* Receives one WatchResponse within ms: SL_OK (*resp set), SL_ERR_TIMEOUT, SL_ERR_CLOSED. */
static sl_status recv_response(Etcdserverpb__WatchResponse **resp, sl_etcd_watch *w, int64_t ms)
{
    *resp = NULL;
    if (w->ended)
        return sl_error_set(SL_ERR_CLOSED, "etcd watch: the stream ended");
    if (!w->recv_pending) {
        grpc_op op;
        memset(&op, 0, sizeof op);
        op.op = GRPC_OP_RECV_MESSAGE;
        op.data.recv_message.recv_message = &w->rbuf;
        if (grpc_call_start_batch(w->call, &op, 1, TAG(TAG_RECV), NULL) != GRPC_CALL_OK) {
            w->ended = true;
            return sl_error_set(SL_ERR_CLOSED, "etcd watch: cannot read the stream");
        }
        w->recv_pending = true;
    }
    int r = wait_tag(w, TAG_RECV, ms);
    if (r < 0)
        return SL_ERR_TIMEOUT;
    w->recv_pending = false;
    if (r == 0 || !w->rbuf) {
        w->ended = true;
        return sl_error_set(SL_ERR_CLOSED, "etcd watch: the stream ended");
    }
    grpc_byte_buffer_reader rd;
    grpc_byte_buffer_reader_init(&rd, w->rbuf);
    grpc_slice all = grpc_byte_buffer_reader_readall(&rd);
    grpc_byte_buffer_reader_destroy(&rd);
    grpc_byte_buffer_destroy(w->rbuf);
    w->rbuf = NULL;
    *resp = etcdserverpb__watch_response__unpack(NULL, GRPC_SLICE_LENGTH(all), GRPC_SLICE_START_PTR(all));
    grpc_slice_unref(all);
    return *resp ? SL_OK : sl_error_set(SL_ERR_PARSE, "etcd watch: a response does not decode");
}

/* Sends the create request and starts collecting the final status. */
static sl_status send_create(sl_etcd_watch *w, const char *prefix, int64_t start_revision)
{
    Etcdserverpb__WatchRequest rq = ETCDSERVERPB__WATCH_REQUEST__INIT;
    Etcdserverpb__WatchCreateRequest cr = ETCDSERVERPB__WATCH_CREATE_REQUEST__INIT;
    size_t pl = strlen(prefix);
    uint8_t *end = malloc(pl + 1), zero = 0;
    sl_status rc = SL_OK;
    if (!end)
        return SL_ERR_NOMEM;
    cr.key.data = pl ? (uint8_t *)prefix : &zero;
    cr.key.len = pl ? pl : 1;
    cr.range_end.data = end;
    cr.range_end.len = sl_etcd_prefix_end(end, prefix);
    cr.start_revision = start_revision > 0 ? start_revision : 0;
    cr.progress_notify = 1;
    rq.request_union_case = ETCDSERVERPB__WATCH_REQUEST__REQUEST_UNION_CREATE_REQUEST;
    rq.create_request = &cr;
    grpc_byte_buffer *sbuf = sl_grpc_pack(&rq.base);
    if (!sbuf) {
        free(end);
        return SL_ERR_NOMEM;
    }
    grpc_op ops[3];
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = sbuf;
    ops[2].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[2].data.recv_initial_metadata.recv_initial_metadata = &w->init_md;
    if (grpc_call_start_batch(w->call, ops, 3, TAG(TAG_START), NULL) != GRPC_CALL_OK ||
        wait_tag(w, TAG_START, 5000) != 1)
        rc = sl_error_set(SL_ERR_IO, "etcd watch %s: the stream did not start", prefix);
    grpc_byte_buffer_destroy(sbuf);
    free(end);
    if (rc != SL_OK)
        return rc;
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[0].data.recv_status_on_client.trailing_metadata = &w->trail_md;
    ops[0].data.recv_status_on_client.status = &w->status;
    ops[0].data.recv_status_on_client.status_details = &w->details;
    if (grpc_call_start_batch(w->call, ops, 1, TAG(TAG_STATUS), NULL) == GRPC_CALL_OK)
        w->status_pending = true;
    return SL_OK;
}

/* The error a canceled watch response means. */
static sl_status canceled_error(const Etcdserverpb__WatchResponse *r)
{
    if (r->compact_revision > 0)
        return sl_error_set(SL_ERR_CONFLICT, "etcd watch: revisions up to %lld were compacted: range again",
                            (long long)r->compact_revision);
    return sl_error_set(SL_ERR_CLOSED, "etcd watch canceled: %s", r->cancel_reason ? r->cancel_reason : "");
}

sl_status sl_etcd_watch_start(sl_etcd_watch **out, sl_etcd *c, const char *prefix, int64_t start_revision)
{
    sl_etcd_watch *w = calloc(1, sizeof *w);
    Etcdserverpb__WatchResponse *r = NULL;
    sl_status rc;

    *out = NULL;
    if (!w)
        return SL_ERR_NOMEM;
    w->details = grpc_empty_slice();
    grpc_metadata_array_init(&w->init_md);
    grpc_metadata_array_init(&w->trail_md);
    w->cq = grpc_completion_queue_create_for_pluck(NULL);
    w->call = grpc_channel_create_call(sl_etcd_channel(c), NULL, GRPC_PROPAGATE_DEFAULTS, w->cq,
                                       grpc_slice_from_static_string("/etcdserverpb.Watch/Watch"), NULL,
                                       gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    if ((rc = send_create(w, prefix, start_revision)) != SL_OK)
        goto fail;
    if ((rc = recv_response(&r, w, 5000)) != SL_OK) {
        if (rc == SL_ERR_TIMEOUT)
            sl_error_set(rc, "etcd watch %s: not confirmed within 5 s", prefix);
        goto fail;
    }
    if (!r->created || r->canceled) {
        rc = r->canceled ? canceled_error(r) : sl_error_set(SL_ERR_IO, "etcd watch %s: not created", prefix);
        goto fail;
    }
    w->watch_id = r->watch_id;
    etcdserverpb__watch_response__free_unpacked(r, NULL);
    *out = w;
    return SL_OK;
fail:
    if (r)
        etcdserverpb__watch_response__free_unpacked(r, NULL);
    sl_etcd_watch_free(w);
    return rc;
}

sl_status sl_etcd_watch_next(sl_etcd_watch *w, sl_etcd_event **ev, size_t *n, int64_t *revision,
                             int64_t timeout_ms)
{
    Etcdserverpb__WatchResponse *r;
    sl_status rc;

    *ev = NULL;
    *n = 0;
    if ((rc = recv_response(&r, w, timeout_ms)) != SL_OK)
        return rc;
    if (r->canceled) {
        rc = canceled_error(r);
        etcdserverpb__watch_response__free_unpacked(r, NULL);
        return rc;
    }
    *revision = r->header ? r->header->revision : 0;
    if (r->n_events && !(*ev = calloc(r->n_events, sizeof **ev)))
        rc = SL_ERR_NOMEM;
    for (size_t i = 0; rc == SL_OK && i < r->n_events; i++) {
        const Mvccpb__Event *e = r->events[i];
        if ((rc = sl_etcd_kv_copy(&(*ev)[i].kv, e->kv)) == SL_OK) {
            (*ev)[i].type = e->type == MVCCPB__EVENT__EVENT_TYPE__DELETE ? SL_ETCD_DELETE : SL_ETCD_PUT;
            (*n)++;
        }
    }
    etcdserverpb__watch_response__free_unpacked(r, NULL);
    if (rc != SL_OK) {
        sl_etcd_events_free(*ev, *n);
        *ev = NULL;
        *n = 0;
    }
    return rc;
}

void sl_etcd_watch_free(sl_etcd_watch *w)
{
    if (!w)
        return;
    if (w->call) {
        grpc_call_cancel(w->call, NULL);
        if (w->recv_pending)
            wait_tag(w, TAG_RECV, 5000);
        if (w->status_pending)
            wait_tag(w, TAG_STATUS, 5000);
        if (w->rbuf)
            grpc_byte_buffer_destroy(w->rbuf);
        grpc_call_unref(w->call);
    }
    grpc_slice_unref(w->details);
    grpc_metadata_array_destroy(&w->init_md);
    grpc_metadata_array_destroy(&w->trail_md);
    grpc_completion_queue_shutdown(w->cq);
    while (grpc_completion_queue_pluck(w->cq, NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
           GRPC_QUEUE_SHUTDOWN)
        ;
    grpc_completion_queue_destroy(w->cq);
    free(w);
}
