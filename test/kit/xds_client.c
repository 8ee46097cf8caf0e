/* xds_client.c - see xds_client.h. */
#include "xds_client.h"

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "envoy/service/discovery/v3/discovery.pb-c.h"
#include "xds_fixtures.h"

struct xc {
    grpc_channel *ch;
    grpc_completion_queue *cq;
    grpc_call *call;
    grpc_metadata_array init_md, trail_md;
    grpc_byte_buffer *rbuf;
    int recv_pending, status_pending, ended;
    grpc_status_code status;
    grpc_slice details;
};

static gpr_timespec in_ms(int ms)
{
    return gpr_time_add(gpr_now(GPR_CLOCK_REALTIME), gpr_time_from_millis(ms, GPR_TIMESPAN));
}

static int wait_tag(xc *c, void *tag, int ms)
{
    grpc_event ev = grpc_completion_queue_pluck(c->cq, tag, in_ms(ms), NULL);
    if (ev.type == GRPC_QUEUE_TIMEOUT)
        return -1;
    return ev.success ? 1 : 0;
}

#define TAG(n) ((void *)(uintptr_t)(n))

grpc_call_error xc_start_metadata(grpc_call *call, grpc_metadata_array *md, void *tag)
{
    grpc_op ops[2];
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[1].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[1].data.recv_initial_metadata.recv_initial_metadata = md;
    return grpc_call_start_batch(call, ops, 2, tag, NULL);
}

xc *xc_open(int port, const char *method)
{
    char target[64];
    xc *c = calloc(1, sizeof *c);
    snprintf(target, sizeof target, "127.0.0.1:%d", port);
    grpc_channel_credentials *cr = grpc_insecure_credentials_create();
    /* No receive limit: a RouteConfiguration of 50,000 routes is > 4 MB. */
    grpc_arg arg = {.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, .value.integer = -1};
    grpc_channel_args args = {.num_args = 1, .args = &arg};
    c->ch = grpc_channel_create(target, cr, &args);
    grpc_channel_credentials_release(cr);
    c->cq = grpc_completion_queue_create_for_pluck(NULL);
    grpc_slice m = grpc_slice_from_copied_string(method);
    c->call = grpc_channel_create_call(c->ch, NULL, GRPC_PROPAGATE_DEFAULTS, c->cq, m, NULL,
                                       gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    grpc_slice_unref(m);
    grpc_metadata_array_init(&c->init_md);
    grpc_metadata_array_init(&c->trail_md);
    if (xc_start_metadata(c->call, &c->init_md, TAG(1)) != GRPC_CALL_OK || wait_tag(c, TAG(1), 5000) < 0) {
        xc_close(c);
        return NULL;
    }
    /* The final status is collected whenever the stream ends. */
    grpc_op ops[1];
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[0].data.recv_status_on_client.trailing_metadata = &c->trail_md;
    ops[0].data.recv_status_on_client.status = &c->status;
    ops[0].data.recv_status_on_client.status_details = &c->details;
    grpc_call_start_batch(c->call, ops, 1, TAG(4), NULL);
    c->status_pending = 1;
    return c;
}

int xc_send(xc *c, const void *data, size_t len)
{
    grpc_slice s = grpc_slice_from_copied_buffer(data, len);
    grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&s, 1);
    grpc_slice_unref(s);
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_SEND_MESSAGE;
    op.data.send_message.send_message = bb;
    int rc = grpc_call_start_batch(c->call, &op, 1, TAG(2), NULL) == GRPC_CALL_OK && wait_tag(c, TAG(2), 5000) == 1
                 ? 0
                 : -1;
    grpc_byte_buffer_destroy(bb);
    return rc;
}

uint8_t *xc_recv(xc *c, int timeout_ms, size_t *len, int *ended)
{
    *ended = 0;
    *len = 0;
    if (c->ended) {
        *ended = 1;
        return NULL;
    }
    if (!c->recv_pending) {
        grpc_op op;
        memset(&op, 0, sizeof op);
        op.op = GRPC_OP_RECV_MESSAGE;
        op.data.recv_message.recv_message = &c->rbuf;
        if (grpc_call_start_batch(c->call, &op, 1, TAG(3), NULL) != GRPC_CALL_OK) {
            *ended = c->ended = 1;
            return NULL;
        }
        c->recv_pending = 1;
    }
    int r = wait_tag(c, TAG(3), timeout_ms);
    if (r < 0)
        return NULL;
    c->recv_pending = 0;
    if (r == 0 || !c->rbuf) {
        *ended = c->ended = 1;
        return NULL;
    }
    grpc_byte_buffer_reader rd;
    grpc_byte_buffer_reader_init(&rd, c->rbuf);
    grpc_slice s = grpc_byte_buffer_reader_readall(&rd);
    grpc_byte_buffer_reader_destroy(&rd);
    grpc_byte_buffer_destroy(c->rbuf);
    c->rbuf = NULL;
    *len = GRPC_SLICE_LENGTH(s);
    uint8_t *out = malloc(*len ? *len : 1);
    memcpy(out, GRPC_SLICE_START_PTR(s), *len);
    grpc_slice_unref(s);
    return out;
}

grpc_status_code xc_status(xc *c, char *msg, size_t cap, int timeout_ms)
{
    if (c->status_pending) {
        if (wait_tag(c, TAG(4), timeout_ms) < 0)
            return GRPC_STATUS__DO_NOT_USE;
        c->status_pending = 0;
    }
    if (msg) {
        char *d = grpc_slice_to_c_string(c->details);
        snprintf(msg, cap, "%s", d);
        gpr_free(d);
    }
    return c->status;
}

void xc_close(xc *c)
{
    if (!c)
        return;
    if (c->call) {
        grpc_call_cancel(c->call, NULL);
        if (c->recv_pending)
            wait_tag(c, TAG(3), 5000);
        if (c->status_pending)
            wait_tag(c, TAG(4), 5000);
        if (c->rbuf)
            grpc_byte_buffer_destroy(c->rbuf);
        grpc_call_unref(c->call);
    }
    grpc_slice_unref(c->details);
    grpc_metadata_array_destroy(&c->init_md);
    grpc_metadata_array_destroy(&c->trail_md);
    grpc_completion_queue_shutdown(c->cq);
    while (grpc_completion_queue_pluck(c->cq, NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
           GRPC_QUEUE_SHUTDOWN)
        ;
    grpc_completion_queue_destroy(c->cq);
    grpc_channel_destroy(c->ch);
    free(c);
}

int xc_request(xc *c, const char *node_id, const char *role, const char *type_url, const char *nonce, size_t n,
               char **names)
{
    Envoy__Service__Discovery__V3__DiscoveryRequest r = ENVOY__SERVICE__DISCOVERY__V3__DISCOVERY_REQUEST__INIT;
    fx_node node;
    r.node = fx_node_init(&node, node_id, role);
    r.type_url = (char *)type_url;
    r.response_nonce = (char *)(nonce ? nonce : "");
    r.n_resource_names = n;
    r.resource_names = names;
    size_t len = protobuf_c_message_get_packed_size(&r.base);
    uint8_t *buf = malloc(len ? len : 1);
    int rc = buf ? xc_send(c, buf, protobuf_c_message_pack(&r.base, buf)) : -1;
    free(buf);
    return rc;
}

uint8_t *xc_ask(int port, const char *method, const char *type_url, int timeout_ms, size_t *len)
{
    Envoy__Service__Discovery__V3__DiscoveryRequest rq = ENVOY__SERVICE__DISCOVERY__V3__DISCOVERY_REQUEST__INIT;
    uint8_t buf[256], *b = NULL;
    int ended = 0;
    xc *c = xc_open(port, method);

    rq.type_url = (char *)type_url;
    if (c && protobuf_c_message_get_packed_size(&rq.base) <= sizeof buf &&
        xc_send(c, buf, protobuf_c_message_pack(&rq.base, buf)) == 0)
        b = xc_recv(c, timeout_ms, len, &ended);
    if (c)
        xc_close(c);
    return b;
}
