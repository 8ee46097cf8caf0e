/* sluice/grpc_unary.h - one unary call over gRPC core, for the libraries that speak gRPC.
 *
 *   grpc_byte_buffer *req = sl_grpc_pack(&msg.base);
 *   sl_grpc_reply r;
 *   if (req && sl_grpc_unary(&r, ch, cq, "/pkg.Service/Method", req, deadline) == SL_OK) {
 *       ... r.status, r.details, r.answer ...
 *       sl_grpc_reply_deinit(&r);
 *   }
 *   grpc_byte_buffer_destroy(req);
 *
 * Ownership: the caller keeps the request buffer; a reply owns its details
 * and answer until sl_grpc_reply_deinit(). gRPC core must be initialised
 * (grpc_init()) by the caller.
 */
#ifndef SLUICE_GRPC_UNARY_H
#define SLUICE_GRPC_UNARY_H

#include <stdbool.h>
#include <stddef.h>

#include <grpc/grpc.h>
#include <protobuf-c/protobuf-c.h>

#include "sluice/status.h"

/* The outcome of a call that ran. */
typedef struct sl_grpc_reply {
    grpc_status_code status; /* the call's gRPC status */
    char *details;           /* its message, "" when none (owned) */
    grpc_slice answer;       /* the bytes of the one answer (owned), when has_answer */
    bool has_answer;
} sl_grpc_reply;

/* A byte buffer holding m packed (free with grpc_byte_buffer_destroy()),
 * or NULL when out of memory. */
grpc_byte_buffer *sl_grpc_pack(const ProtobufCMessage *m);

/* A byte buffer holding a copy of the len bytes at data (free with
 * grpc_byte_buffer_destroy()). */
grpc_byte_buffer *sl_grpc_buffer(const void *data, size_t len);

/* Calls method on ch: sends the initial metadata and req (not consumed),
 * half-closes, and waits on cq (a pluck queue; the call's tag is its own)
 * for the initial metadata, one answer and the status; the deadline ends
 * the call. SL_OK when it ran, whatever its status (*out set: release with
 * sl_grpc_reply_deinit()); SL_ERR_IO (recorded, *out untouched) when it
 * could not start. */
sl_status sl_grpc_unary(sl_grpc_reply *out, grpc_channel *ch, grpc_completion_queue *cq, const char *method,
                        grpc_byte_buffer *req, gpr_timespec deadline);

/* Frees what a reply owns. */
void sl_grpc_reply_deinit(sl_grpc_reply *r);

#endif
