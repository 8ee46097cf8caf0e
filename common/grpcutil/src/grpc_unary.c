/* grpc_unary.c - one unary call over gRPC core (sluice/grpc_unary.h). */
#include <stdlib.h>
#include <string.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>

#include "sluice/grpc_unary.h"

grpc_byte_buffer *sl_grpc_buffer(const void *data, size_t len)
{
    grpc_slice s = grpc_slice_from_copied_buffer((const char *)data, len);
    grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&s, 1);
    grpc_slice_unref(s);
    return bb;
}

grpc_byte_buffer *sl_grpc_pack(const ProtobufCMessage *m)
{
    size_t len = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = malloc(len ? len : 1);
    grpc_byte_buffer *bb;
    if (!buf)
        return NULL;
    protobuf_c_message_pack(m, buf);
    bb = sl_grpc_buffer(buf, len);
    free(buf);
    return bb;
}

sl_status sl_grpc_unary(sl_grpc_reply *out, grpc_channel *ch, grpc_completion_queue *cq, const char *method,
                        grpc_byte_buffer *req, gpr_timespec deadline)
{
    grpc_metadata_array init_md, trail_md;
    grpc_byte_buffer *rbuf = NULL;
    grpc_status_code status = GRPC_STATUS_UNKNOWN;
    grpc_slice details = grpc_empty_slice();
    grpc_op ops[6];
    sl_status rc = SL_OK;
    grpc_slice m = grpc_slice_from_static_string(method);
    grpc_call *call = grpc_channel_create_call(ch, NULL, GRPC_PROPAGATE_DEFAULTS, cq, m, NULL, deadline, NULL);

    grpc_metadata_array_init(&init_md);
    grpc_metadata_array_init(&trail_md);
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = req;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &init_md;
    ops[4].op = GRPC_OP_RECV_MESSAGE;
    ops[4].data.recv_message.recv_message = &rbuf;
    ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[5].data.recv_status_on_client.trailing_metadata = &trail_md;
    ops[5].data.recv_status_on_client.status = &status;
    ops[5].data.recv_status_on_client.status_details = &details;
    if (!call || grpc_call_start_batch(call, ops, 6, call, NULL) != GRPC_CALL_OK) {
        rc = sl_error_set(SL_ERR_IO, "%s: cannot start the call", method);
        goto out;
    }
    /* the deadline ends the call; the queue answers by then */
    grpc_completion_queue_pluck(cq, call, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    out->status = status;
    out->details = grpc_slice_to_c_string(details);
    out->has_answer = rbuf != NULL;
    out->answer = grpc_empty_slice();
    if (rbuf) {
        grpc_byte_buffer_reader rd;
        grpc_byte_buffer_reader_init(&rd, rbuf);
        out->answer = grpc_byte_buffer_reader_readall(&rd);
        grpc_byte_buffer_reader_destroy(&rd);
    }
out:
    if (rbuf)
        grpc_byte_buffer_destroy(rbuf);
    grpc_slice_unref(details);
    grpc_metadata_array_destroy(&init_md);
    grpc_metadata_array_destroy(&trail_md);
    if (call)
        grpc_call_unref(call);
    return rc;
}

void sl_grpc_reply_deinit(sl_grpc_reply *r)
{
    gpr_free(r->details);
    r->details = NULL;
    grpc_slice_unref(r->answer);
    r->answer = grpc_empty_slice();
    r->has_answer = false;
}
