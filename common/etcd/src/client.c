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
    grpc_slice m = grpc_slice_from_static_string(method);
    grpc_call *call = grpc_channel_create_call(c->ch, NULL, GRPC_PROPAGATE_DEFAULTS, cq, m, NULL,
                                               in_ms(timeout_ms), NULL);
    grpc_metadata_array init_md, trail_md;
    grpc_byte_buffer *rbuf = NULL;
    grpc_status_code status = GRPC_STATUS_UNKNOWN;
    grpc_slice details = grpc_empty_slice();
    size_t len = protobuf_c_message_get_packed_size(req);
    uint8_t *buf = malloc(len ? len : 1);
    sl_status rc = SL_OK;

    *resp = NULL;
    grpc_metadata_array_init(&init_md);
    grpc_metadata_array_init(&trail_md);
    if (!buf) {
        rc = SL_ERR_NOMEM;
        goto out;
    }
    protobuf_c_message_pack(req, buf);
    grpc_slice s = grpc_slice_from_copied_buffer((const char *)buf, len);
    grpc_byte_buffer *sbuf = grpc_raw_byte_buffer_create(&s, 1);
    grpc_slice_unref(s);
    grpc_op ops[6];
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = sbuf;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &init_md;
    ops[4].op = GRPC_OP_RECV_MESSAGE;
    ops[4].data.recv_message.recv_message = &rbuf;
    ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[5].data.recv_status_on_client.trailing_metadata = &trail_md;
    ops[5].data.recv_status_on_client.status = &status;
    ops[5].data.recv_status_on_client.status_details = &details;
    if (grpc_call_start_batch(call, ops, 6, TAG(1), NULL) != GRPC_CALL_OK) {
        rc = sl_error_set(SL_ERR_IO, "etcd %s: cannot start the call", method);
    } else {
        grpc_completion_queue_pluck(cq, TAG(1), gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
        if (status != GRPC_STATUS_OK || !rbuf) {
            char *d = grpc_slice_to_c_string(details);
            rc = sl_error_set(status == GRPC_STATUS_DEADLINE_EXCEEDED ? SL_ERR_TIMEOUT : SL_ERR_IO,
                              "etcd %s: gRPC status %d: %s", method, (int)status, d);
            gpr_free(d);
        } else {
            grpc_byte_buffer_reader rd;
            grpc_byte_buffer_reader_init(&rd, rbuf);
            grpc_slice all = grpc_byte_buffer_reader_readall(&rd);
            grpc_byte_buffer_reader_destroy(&rd);
            *resp = protobuf_c_message_unpack(desc, NULL, GRPC_SLICE_LENGTH(all), GRPC_SLICE_START_PTR(all));
            grpc_slice_unref(all);
            if (!*resp)
                rc = sl_error_set(SL_ERR_PARSE, "etcd %s: the answer does not decode", method);
        }
    }
    grpc_byte_buffer_destroy(sbuf);
out:
    if (rbuf)
        grpc_byte_buffer_destroy(rbuf);
    grpc_slice_unref(details);
    grpc_metadata_array_destroy(&init_md);
    grpc_metadata_array_destroy(&trail_md);
    grpc_call_unref(call);
    grpc_completion_queue_shutdown(cq);
    while (grpc_completion_queue_pluck(cq, NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
           GRPC_QUEUE_SHUTDOWN)
        ;
    grpc_completion_queue_destroy(cq);
    free(buf);
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
