/* client.c - sluice/etcd.h's gRPC client: unary KV calls and the Watch stream over gRPC core. */
#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "etcd/api/etcdserverpb/rpc.pb-c.h"
#include "internal.h"
#include "sluice/etcd.h"
#include "sluice/grpc_unary.h"

#define TAG(n) ((void *)(uintptr_t)(n))
#define MAX_RECV (64 * 1024 * 1024)

struct sl_etcd {
    grpc_channel *ch;
};

static pthread_once_t grpc_once = PTHREAD_ONCE_INIT;

static void grpc_start(void)
{
    grpc_init(); /* once per process; gRPC's own shutdown at exit is left to it */
}

static gpr_timespec in_ms(int64_t ms)
{
    return gpr_time_add(gpr_now(GPR_CLOCK_REALTIME), gpr_time_from_millis(ms, GPR_TIMESPAN));
}

void sl_etcd_kvs_free(sl_etcd_kv *kvs, size_t n)
{
    for (size_t i = 0; kvs && i < n; i++) {
        free(kvs[i].key);
        free(kvs[i].value);
    }
    free(kvs);
}

void sl_etcd_events_free(sl_etcd_event *ev, size_t n)
{
    for (size_t i = 0; ev && i < n; i++) {
        free(ev[i].kv.key);
        free(ev[i].kv.value);
    }
    free(ev);
}

sl_status sl_etcd_kv_copy(sl_etcd_kv *out, const Mvccpb__KeyValue *kv)
{
    memset(out, 0, sizeof *out);
    size_t kl = kv ? kv->key.len : 0, vl = kv ? kv->value.len : 0;
    if (!(out->key = malloc(kl + 1)) || !(out->value = malloc(vl + 1))) {
        free(out->key);
        out->key = NULL;
        return SL_ERR_NOMEM;
    }
    if (kl)
        memcpy(out->key, kv->key.data, kl);
    out->key[kl] = 0;
    if (vl)
        memcpy(out->value, kv->value.data, vl);
    out->value[vl] = 0;
    out->len = vl;
    if (kv) {
        out->create_revision = kv->create_revision;
        out->mod_revision = kv->mod_revision;
        out->version = kv->version;
        out->lease = kv->lease;
    }
    return SL_OK;
}

/* prefix with its last byte below 0xff incremented (etcd's
 * clientv3.GetPrefixRangeEnd), or "\0": every key from prefix on. */
size_t sl_etcd_prefix_end(uint8_t *end, const char *prefix)
{
    size_t l = strlen(prefix);
    memcpy(end, prefix, l);
    while (l > 0) {
        if (end[l - 1] < 0xff) {
            end[l - 1]++;
            return l;
        }
        l--;
    }
    end[0] = 0;
    return 1;
}

sl_status sl_etcd_connect(sl_etcd **out, const char *endpoint, int64_t timeout_ms)
{
    sl_etcd *c;
    *out = NULL;
    pthread_once(&grpc_once, grpc_start);
    if (!(c = calloc(1, sizeof *c)))
        return SL_ERR_NOMEM;
    grpc_channel_credentials *cr = grpc_insecure_credentials_create();
    grpc_arg arg = {.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, .value.integer = MAX_RECV};
    grpc_channel_args args = {.num_args = 1, .args = &arg};
    c->ch = grpc_channel_create(endpoint, cr, &args);
    grpc_channel_credentials_release(cr);
    /* Wait for the channel to be ready (try to connect, watch the state). */
    grpc_completion_queue *cq = grpc_completion_queue_create_for_pluck(NULL);
    gpr_timespec deadline = in_ms(timeout_ms);
    grpc_connectivity_state st = grpc_channel_check_connectivity_state(c->ch, 1);
    while (st != GRPC_CHANNEL_READY && gpr_time_cmp(gpr_now(GPR_CLOCK_REALTIME), deadline) < 0) {
        grpc_channel_watch_connectivity_state(c->ch, st, deadline, cq, TAG(1));
        grpc_completion_queue_pluck(cq, TAG(1), gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
        st = grpc_channel_check_connectivity_state(c->ch, 1);
    }
    grpc_completion_queue_shutdown(cq);
    while (grpc_completion_queue_pluck(cq, NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
           GRPC_QUEUE_SHUTDOWN)
        ;
    grpc_completion_queue_destroy(cq);
    if (st != GRPC_CHANNEL_READY) {
        sl_etcd_close(c);
        return sl_error_set(SL_ERR_TIMEOUT, "etcd %s: not reachable within %lldms", endpoint, (long long)timeout_ms);
    }
    *out = c;
    return SL_OK;
}

grpc_channel *sl_etcd_channel(sl_etcd *c)
{
    return c->ch;
}

void sl_etcd_close(sl_etcd *c)
{
    if (!c)
        return;
    grpc_channel_destroy(c->ch);
    free(c);
}

/* ---- unary calls ----------------------------------------------------------- */

/* Sends req on method and unpacks the answer with desc into *resp (free
 * with protobuf_c_message_free_unpacked()). */
static sl_status unary(ProtobufCMessage **resp, sl_etcd *c, const char *method, const ProtobufCMessage *req,
                       const ProtobufCMessageDescriptor *desc, int64_t timeout_ms)
{
    grpc_completion_queue *cq = grpc_completion_queue_create_for_pluck(NULL);
    grpc_byte_buffer *sbuf = sl_grpc_pack(req);
    sl_grpc_reply r;
    sl_status rc = SL_OK;

    *resp = NULL;
    if (!sbuf) {
        rc = SL_ERR_NOMEM;
        goto out;
    }
    if (sl_grpc_unary(&r, c->ch, cq, method, sbuf, in_ms(timeout_ms)) != SL_OK) {
        rc = sl_error_set(SL_ERR_IO, "etcd %s: cannot start the call", method);
        goto out;
    }
    if (r.status != GRPC_STATUS_OK || !r.has_answer) {
        rc = sl_error_set(r.status == GRPC_STATUS_DEADLINE_EXCEEDED ? SL_ERR_TIMEOUT : SL_ERR_IO,
                          "etcd %s: gRPC status %d: %s", method, (int)r.status, r.details);
    } else {
        *resp = protobuf_c_message_unpack(desc, NULL, GRPC_SLICE_LENGTH(r.answer), GRPC_SLICE_START_PTR(r.answer));
        if (!*resp)
            rc = sl_error_set(SL_ERR_PARSE, "etcd %s: the answer does not decode", method);
    }
    sl_grpc_reply_deinit(&r);
out:
    if (sbuf)
        grpc_byte_buffer_destroy(sbuf);
    grpc_completion_queue_shutdown(cq);
    while (grpc_completion_queue_pluck(cq, NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
           GRPC_QUEUE_SHUTDOWN)
        ;
    grpc_completion_queue_destroy(cq);
    return rc;
}

sl_status sl_etcd_range_prefix(sl_etcd *c, const char *prefix, sl_etcd_kv **kvs, size_t *n, int64_t *revision,
                               int64_t timeout_ms)
{
    Etcdserverpb__RangeRequest rq = ETCDSERVERPB__RANGE_REQUEST__INIT;
    ProtobufCMessage *pm;
    size_t pl = strlen(prefix);
    uint8_t *end = malloc(pl + 1), zero = 0;
    sl_status rc;

    *kvs = NULL;
    *n = 0;
    *revision = 0;
    if (!end)
        return SL_ERR_NOMEM;
    rq.key.data = pl ? (uint8_t *)prefix : &zero;
    rq.key.len = pl ? pl : 1;
    rq.range_end.data = end;
    rq.range_end.len = sl_etcd_prefix_end(end, prefix);
    rq.sort_order = ETCDSERVERPB__RANGE_REQUEST__SORT_ORDER__ASCEND;
    rq.sort_target = ETCDSERVERPB__RANGE_REQUEST__SORT_TARGET__KEY;
    rc = unary(&pm, c, "/etcdserverpb.KV/Range", &rq.base, &etcdserverpb__range_response__descriptor, timeout_ms);
    free(end);
    if (rc != SL_OK)
        return rc;
    const Etcdserverpb__RangeResponse *r = (const Etcdserverpb__RangeResponse *)pm;
    *revision = r->header ? r->header->revision : 0;
    if (r->n_kvs && !(*kvs = calloc(r->n_kvs, sizeof **kvs)))
        rc = SL_ERR_NOMEM;
    for (size_t i = 0; rc == SL_OK && i < r->n_kvs; i++) {
        if ((rc = sl_etcd_kv_copy(&(*kvs)[i], r->kvs[i])) == SL_OK)
            (*n)++;
    }
    protobuf_c_message_free_unpacked(pm, NULL);
    if (rc != SL_OK) {
        sl_etcd_kvs_free(*kvs, *n);
        *kvs = NULL;
        *n = 0;
    }
    return rc;
}

sl_status sl_etcd_put(sl_etcd *c, const char *key, const void *value, size_t len, int64_t *revision,
                      int64_t timeout_ms)
{
    Etcdserverpb__PutRequest rq = ETCDSERVERPB__PUT_REQUEST__INIT;
    ProtobufCMessage *pm;
    rq.key.data = (uint8_t *)key;
    rq.key.len = strlen(key);
    rq.value.data = (uint8_t *)value;
    rq.value.len = len;
    sl_status rc = unary(&pm, c, "/etcdserverpb.KV/Put", &rq.base, &etcdserverpb__put_response__descriptor,
                         timeout_ms);
    if (rc != SL_OK)
        return rc;
    const Etcdserverpb__PutResponse *r = (const Etcdserverpb__PutResponse *)pm;
    if (revision)
        *revision = r->header ? r->header->revision : 0;
    protobuf_c_message_free_unpacked(pm, NULL);
    return SL_OK;
}

sl_status sl_etcd_delete(sl_etcd *c, const char *key, int64_t *deleted, int64_t timeout_ms)
{
    Etcdserverpb__DeleteRangeRequest rq = ETCDSERVERPB__DELETE_RANGE_REQUEST__INIT;
    ProtobufCMessage *pm;
    rq.key.data = (uint8_t *)key;
    rq.key.len = strlen(key);
    sl_status rc = unary(&pm, c, "/etcdserverpb.KV/DeleteRange", &rq.base,
                         &etcdserverpb__delete_range_response__descriptor, timeout_ms);
    if (rc != SL_OK)
        return rc;
    if (deleted)
        *deleted = ((const Etcdserverpb__DeleteRangeResponse *)pm)->deleted;
    protobuf_c_message_free_unpacked(pm, NULL);
    return SL_OK;
}
