/* sluice/pbcheck.h - bounds on untrusted protobuf bytes before decoding.
 *
 * protobuf-c unpacks recursively with no depth limit: a 74 KB request of
 * google.protobuf.Value lists nested 10,000 deep overflows the stack. Every
 * decode of bytes that came from outside the process (xDS requests, apply
 * bodies, NATS messages, KV values) goes through sl_pb_check() first, or
 * through sl_pb_unpack(), which checks and then unpacks.
 *
 * The check walks the wire format with the message's descriptor, without
 * allocating and without recursion: a length-delimited field whose type is
 * a message (map entries included) is entered, anything else is skipped.
 * It also refuses what protobuf-c would refuse (truncated fields, bad wire
 * types), with the byte offset and the field path in the message.
 */
#ifndef SLUICE_PBCHECK_H
#define SLUICE_PBCHECK_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "sluice/status.h"

/* Nesting Sluice accepts in any message it decodes: Envoy's own resources
 * nest about 20 deep; a node's metadata a few more. */
#define SL_PB_MAX_DEPTH 64

/* Checks that data (len bytes, a packed desc message) nests messages at
 * most max_depth deep (desc itself is depth 1) and is well-formed at the
 * wire level. SL_OK, or SL_ERR_PARSE with a message naming the offset, the
 * field path ("node.metadata.fields.value.list_value...") and the limit. */
sl_status sl_pb_check(const ProtobufCMessageDescriptor *desc, const uint8_t *data, size_t len,
                      unsigned max_depth);

/* sl_pb_check() with SL_PB_MAX_DEPTH, then protobuf_c_message_unpack()
 * with alloc (NULL: malloc). On SL_OK *out is the message, freed with
 * protobuf_c_message_free_unpacked(*out, alloc); SL_ERR_PARSE (with the
 * reason) or SL_ERR_NOMEM otherwise, *out NULL. */
sl_status sl_pb_unpack(ProtobufCMessage **out, const ProtobufCMessageDescriptor *desc,
                       ProtobufCAllocator *alloc, const uint8_t *data, size_t len);

#endif
