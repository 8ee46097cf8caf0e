/* sluice/envelope.h - events on NATS subjects: payload plus headers.
 *
 * Every Sluice message carries NATS headers:
 *   Content-Type     application/x-protobuf; proto=<full message name>
 *                    application/json | application/yaml (users who cannot
 *                    run protoc; the receiver decides what it accepts)
 *   Sluice-Trace-Id  32 lowercase hex digits (128 bits); generated when the
 *                    sender gives none, propagated into replies
 *   Sluice-Source    optional: who sent it ("sluice-translator", a user name)
 *
 * Parsing is lenient about case (of header names and media types) and
 * strict about content: an unknown media type is SL_ERR_UNSUPPORTED, a
 * malformed one SL_ERR_INVALID, both naming what was wrong.
 */
#ifndef SLUICE_ENVELOPE_H
#define SLUICE_ENVELOPE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <nats/nats.h>
#include <protobuf-c/protobuf-c.h>

#include "sluice/arena.h"
#include "sluice/nats.h"
#include "sluice/service.h"
#include "sluice/status.h"

#define SL_HDR_CONTENT_TYPE "Content-Type"
#define SL_HDR_TRACE_ID "Sluice-Trace-Id"
#define SL_HDR_SOURCE "Sluice-Source"

#define SL_TRACE_ID_LEN 32
#define SL_PROTO_NAME_MAX 255
#define SL_SOURCE_MAX 127

typedef enum sl_content_type {
    SL_CT_NONE = 0, /* no Content-Type header */
    SL_CT_PROTOBUF,
    SL_CT_JSON,
    SL_CT_YAML,
} sl_content_type;

/* The media type of ct ("application/x-protobuf"; "" for SL_CT_NONE). */
const char *sl_content_type_str(sl_content_type ct);

/* A parsed incoming message. Caller-owned storage; subject, reply and data
 * point into the natsMsg and are valid while it lives; the rest is copied. */
typedef struct sl_envelope {
    sl_content_type content_type;
    char proto[SL_PROTO_NAME_MAX + 1];  /* proto= parameter; "" when absent */
    char trace_id[SL_TRACE_ID_LEN + 1]; /* always set (generated when missing) */
    bool trace_generated;               /* the message had no valid trace id */
    char source[SL_SOURCE_MAX + 1];     /* "" when absent */
    const char *subject;
    const char *reply; /* NULL when none */
    const uint8_t *data;
    size_t len;
} sl_envelope;

/* Parses msg's headers and payload into env. On error env is still filled
 * as far as possible (subject, reply, data, trace id), so that a request
 * can be answered with a reason. */
sl_status sl_envelope_parse(sl_envelope *env, natsMsg *msg);

/* Unpacks env's payload as desc into arena a (see arena.h). SL_ERR_INVALID
 * when the content type is not protobuf or the proto= name is given and is
 * not desc's; SL_ERR_PARSE for bad bytes. *out lives until the arena is
 * reset. */
sl_status sl_envelope_unpack(ProtobufCMessage **out, const sl_envelope *env,
                             const ProtobufCMessageDescriptor *desc, sl_arena *a);

/* A fresh random trace id: 32 lowercase hex digits and a NUL. */
void sl_trace_id_new(char out[SL_TRACE_ID_LEN + 1]);

/* True when s is 32 hex digits. */
bool sl_trace_id_valid(const char *s);

/* Optional settings of an outgoing message; borrowed for the call. */
typedef struct sl_envelope_opts {
    const char *trace_id; /* NULL: generate one; else must be valid */
    const char *source;   /* NULL: no Sluice-Source */
    const char *reply;    /* reply subject for a plain publish */
} sl_envelope_opts;

/* A message with payload (copied) and headers. proto is the full message
 * name for SL_CT_PROTOBUF (required there, NULL otherwise). opts may be
 * NULL. Free *out with natsMsg_Destroy(). */
sl_status sl_envelope_msg_new(natsMsg **out, const char *subject, sl_content_type ct,
                              const char *proto, const void *data, size_t len,
                              const sl_envelope_opts *opts);

/* The same for a protobuf-c message: packed, proto = its descriptor's name. */
sl_status sl_envelope_msg_new_pb(natsMsg **out, const char *subject, const ProtobufCMessage *m,
                                 const sl_envelope_opts *opts);

/* Publishes (fire and forget). SL_ERR_INVALID when the payload is over
 * the server's max_payload. */
sl_status sl_envelope_publish(sl_nats *nc, const char *subject, sl_content_type ct,
                              const char *proto, const void *data, size_t len,
                              const sl_envelope_opts *opts);
sl_status sl_envelope_publish_pb(sl_nats *nc, const char *subject, const ProtobufCMessage *m,
                                 const sl_envelope_opts *opts);

/* Sends a request and waits up to timeout_ms for the reply (opts->reply is
 * ignored). SL_ERR_TIMEOUT when none came, SL_ERR_NOT_FOUND when nobody
 * listens on subject. On success free *reply with natsMsg_Destroy() (parse
 * it with sl_envelope_parse()). */
sl_status sl_envelope_request(natsMsg **reply, sl_nats *nc, const char *subject,
                              sl_content_type ct, const char *proto, const void *data, size_t len,
                              const sl_envelope_opts *opts, int64_t timeout_ms);
sl_status sl_envelope_request_pb(natsMsg **reply, sl_nats *nc, const char *subject,
                                 const ProtobufCMessage *m, const sl_envelope_opts *opts,
                                 int64_t timeout_ms);

/* Answers req on its reply subject with req's trace id. source may be
 * NULL. SL_ERR_INVALID when req has no reply subject. */
sl_status sl_envelope_respond(sl_nats *nc, const sl_envelope *req, sl_content_type ct,
                              const char *proto, const void *data, size_t len, const char *source);
sl_status sl_envelope_respond_pb(sl_nats *nc, const sl_envelope *req, const ProtobufCMessage *m,
                                 const char *source);

/* ---- subscriptions delivering on a loop ------------------------------- */

typedef struct sl_subscription sl_subscription;

/* One message. st is the result of sl_envelope_parse() (env is filled as
 * far as it could be); msg belongs to the subscription and is destroyed
 * after the call. */
typedef void (*sl_envelope_handler)(sl_subscription *sub, sl_status st, const sl_envelope *env,
                                    natsMsg *msg, void *ud);

/* Subscribes to subject (wildcards allowed), in queue group queue when not
 * NULL, and runs fn for every message on loop's thread. On error fn is
 * never called. Free with sl_subscription_free() before the loop and the
 * connection. */
sl_status sl_envelope_subscribe(sl_subscription **out, sl_nats *nc, const char *subject,
                                const char *queue, sl_loop *loop, sl_envelope_handler fn,
                                void *ud);

/* Called on nats.c's delivery thread (never the loop) for each message of
 * a subscription that has one, before the message is queued for the loop.
 * st and env as for the handler (the error context is this thread's).
 * pending: messages of the subscription's counter waiting for the loop,
 * this one not counted. full: max_pending is set and pending >=
 * max_pending: the message is not queued whatever the function returns,
 * and it may answer it at once ("busy"). Otherwise return true to queue
 * the message, false when the function answered it or it is to be dropped.
 * msg belongs to the subscription. Must be thread safe and quick: the next
 * message of the subscription waits for it. Unlike the handler, it may run
 * before sl_envelope_subscribe_opts() returns (and, should that call then
 * fail, for a message that never reaches the handler). */
typedef bool (*sl_envelope_admit_fn)(sl_subscription *sub, sl_status st, const sl_envelope *env,
                                     natsMsg *msg, size_t pending, bool full, void *ud);

/* Optional settings of a subscription; a zeroed struct is the default and
 * is only read during the call. */
typedef struct sl_subscribe_opts {
    const char *queue; /* queue group; NULL: none */
    /* > 0: at most this many messages wait for the loop; more are not
     * queued (admit sees full; without admit they are dropped). 0: no
     * bound. */
    size_t max_pending;
    /* The count of waiting messages max_pending bounds, shared by every
     * subscription given the same counter (caller storage, zero before the
     * first subscribe, outliving the subscriptions). NULL: the
     * subscription's own. A message counts from its arrival until its
     * handler starts (or it is refused or dropped). */
    atomic_size_t *pending;
    sl_envelope_admit_fn admit; /* NULL: none */
    void *admit_ud;
} sl_subscribe_opts;

/* sl_envelope_subscribe() with options (opts may be NULL). */
sl_status sl_envelope_subscribe_opts(sl_subscription **out, sl_nats *nc, const char *subject,
                                     const sl_subscribe_opts *opts, sl_loop *loop,
                                     sl_envelope_handler fn, void *ud);

/* Unsubscribes and frees; no handler runs after it returns and queued
 * messages are dropped. May be called from the subscription's own handler.
 * NULL is a no-op. */
void sl_subscription_free(sl_subscription *sub);

#endif
