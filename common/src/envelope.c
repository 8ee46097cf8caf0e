#include "sluice/envelope.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "sluice/log.h"

static const struct {
    const char *media;
    sl_content_type ct;
} media_types[] = {
    {"application/x-protobuf", SL_CT_PROTOBUF},
    {"application/protobuf", SL_CT_PROTOBUF},
    {"application/json", SL_CT_JSON},
    {"application/yaml", SL_CT_YAML},
    {"application/x-yaml", SL_CT_YAML},
    {"text/yaml", SL_CT_YAML},
};

const char *sl_content_type_str(sl_content_type ct)
{
    switch (ct) {
    case SL_CT_PROTOBUF:
        return "application/x-protobuf";
    case SL_CT_JSON:
        return "application/json";
    case SL_CT_YAML:
        return "application/yaml";
    case SL_CT_NONE:
        break;
    }
    return "";
}

/* ---- trace ids -------------------------------------------------------- */

bool sl_trace_id_valid(const char *s)
{
    size_t i = 0;

    if (s == NULL)
        return false;
    for (; s[i] != '\0'; i++)
        if (!isxdigit((unsigned char)s[i]))
            return false;
    return i == SL_TRACE_ID_LEN;
}

void sl_trace_id_new(char out[SL_TRACE_ID_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char b[16];

    if (getrandom(b, sizeof(b), GRND_NONBLOCK) != (ssize_t)sizeof(b)) {
        /* Early boot without entropy: time, process and thread are unique
         * enough for tracing. */
        struct timespec ts;
        uint64_t t, id;
        clock_gettime(CLOCK_REALTIME, &ts);
        t = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
        id = ((uint64_t)getpid() << 32) ^ (uint64_t)gettid();
        memcpy(b, &t, 8);
        memcpy(b + 8, &id, 8);
    }
    for (size_t i = 0; i < sizeof(b); i++) {
        out[2 * i] = hex[b[i] >> 4];
        out[2 * i + 1] = hex[b[i] & 0xf];
    }
    out[SL_TRACE_ID_LEN] = '\0';
}

/* ---- parsing ---------------------------------------------------------- */

/* Header lookup by exact name first (what Sluice and Go clients send),
 * then case-insensitively (other clients). */
static const char *header_get(natsMsg *msg, const char *name)
{
    const char *v = NULL;
    const char **keys = NULL;
    int n = 0;

    if (natsMsgHeader_Get(msg, name, &v) == NATS_OK)
        return v;
    if (natsMsgHeader_Keys(msg, &keys, &n) != NATS_OK)
        return NULL;
    for (int i = 0; i < n && v == NULL; i++)
        if (strcasecmp(keys[i], name) == 0 && natsMsgHeader_Get(msg, keys[i], &v) != NATS_OK)
            v = NULL;
    free((void *)keys);
    return v;
}

static const char *skip_ws(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

static bool proto_name_valid(const char *s)
{
    if (*s == '\0' || *s == '.')
        return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '_' && *s != '.')
            return false;
    return true;
}

/* "type/subtype; k=v; k2="v2"" -> content type and the proto= value. */
static sl_status parse_content_type(sl_envelope *env, const char *v)
{
    const char *p = skip_ws(v), *end;
    size_t n, k;

    end = strchr(p, ';');
    n = end != NULL ? (size_t)(end - p) : strlen(p);
    while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
        n--;
    for (k = 0; k < sizeof(media_types) / sizeof(media_types[0]); k++)
        if (strlen(media_types[k].media) == n && strncasecmp(p, media_types[k].media, n) == 0)
            break;
    if (k == sizeof(media_types) / sizeof(media_types[0]))
        return sl_error_set(SL_ERR_UNSUPPORTED,
                            "Content-Type '%s': expected application/x-protobuf, "
                            "application/json or application/yaml",
                            v);
    env->content_type = media_types[k].ct;

    while (end != NULL) {
        const char *name = skip_ws(end + 1), *eq = strchr(name, '='), *val;
        char buf[SL_PROTO_NAME_MAX + 1];
        size_t vlen;

        if (eq == NULL)
            return sl_error_set(SL_ERR_INVALID, "Content-Type '%s': parameter without '='", v);
        val = eq + 1;
        if (*val == '"') {
            const char *close = strchr(val + 1, '"');
            if (close == NULL)
                return sl_error_set(SL_ERR_INVALID, "Content-Type '%s': unterminated quote", v);
            val++;
            vlen = (size_t)(close - val);
            end = strchr(close, ';');
        } else {
            end = strchr(val, ';');
            vlen = end != NULL ? (size_t)(end - val) : strlen(val);
            while (vlen > 0 && (val[vlen - 1] == ' ' || val[vlen - 1] == '\t'))
                vlen--;
        }
        if ((size_t)(eq - name) == 5 && strncasecmp(name, "proto", 5) == 0) {
            if (env->content_type != SL_CT_PROTOBUF)
                return sl_error_set(SL_ERR_INVALID,
                                    "Content-Type '%s': proto= only goes with protobuf", v);
            if (vlen > SL_PROTO_NAME_MAX)
                return sl_error_set(SL_ERR_INVALID, "Content-Type: proto name longer than %d",
                                    SL_PROTO_NAME_MAX);
            memcpy(buf, val, vlen);
            buf[vlen] = '\0';
            if (!proto_name_valid(buf))
                return sl_error_set(SL_ERR_INVALID, "Content-Type: bad proto name '%s'", buf);
            memcpy(env->proto, buf, vlen + 1);
        }
        /* Other parameters (charset=...) are ignored. */
    }
    return SL_OK;
}

sl_status sl_envelope_parse(sl_envelope *env, natsMsg *msg)
{
    sl_status st = SL_OK;
    const char *v;
    int len;

    memset(env, 0, sizeof(*env));
    env->subject = natsMsg_GetSubject(msg);
    env->reply = natsMsg_GetReply(msg);
    env->data = (const uint8_t *)natsMsg_GetData(msg);
    len = natsMsg_GetDataLength(msg);
    env->len = len > 0 ? (size_t)len : 0;

    v = header_get(msg, SL_HDR_TRACE_ID);
    if (v != NULL && sl_trace_id_valid(v)) {
        for (size_t i = 0; i <= SL_TRACE_ID_LEN; i++)
            env->trace_id[i] = (char)tolower((unsigned char)v[i]);
    } else {
        sl_trace_id_new(env->trace_id);
        env->trace_generated = true;
    }

    v = header_get(msg, SL_HDR_SOURCE);
    if (v != NULL) {
        size_t n = strlen(v);
        if (n > SL_SOURCE_MAX) {
            st = sl_error_set(SL_ERR_INVALID, "Sluice-Source longer than %d bytes", SL_SOURCE_MAX);
            goto out;
        }
        memcpy(env->source, v, n + 1);
    }

    v = header_get(msg, SL_HDR_CONTENT_TYPE);
    if (v != NULL)
        st = parse_content_type(env, v);
out:
    return st;
}

sl_status sl_envelope_unpack(ProtobufCMessage **out, const sl_envelope *env,
                             const ProtobufCMessageDescriptor *desc, sl_arena *a)
{
    if (env->content_type != SL_CT_PROTOBUF)
        return sl_error_set(SL_ERR_INVALID, "expected application/x-protobuf for %s, got '%s'",
                            desc->name,
                            env->content_type == SL_CT_NONE ? "no Content-Type"
                                                            : sl_content_type_str(env->content_type));
    if (env->proto[0] != '\0' && strcmp(env->proto, desc->name) != 0)
        return sl_error_set(SL_ERR_INVALID, "expected proto=%s, got proto=%s", desc->name,
                            env->proto);
    return sl_arena_unpack(out, a, desc, env->data, env->len);
}

/* ---- outgoing --------------------------------------------------------- */

sl_status sl_envelope_msg_new(natsMsg **out, const char *subject, sl_content_type ct,
                              const char *proto, const void *data, size_t len,
                              const sl_envelope_opts *opts)
{
    sl_status st = SL_OK;
    natsMsg *msg = NULL;
    natsStatus s;
    char trace[SL_TRACE_ID_LEN + 1];
    char ctype[64 + SL_PROTO_NAME_MAX];
    const sl_envelope_opts none = {0};

    if (opts == NULL)
        opts = &none;
    if (len > INT_MAX)
        return sl_error_set(SL_ERR_INVALID, "publish %s: %zu bytes is too large", subject, len);
    if (ct == SL_CT_PROTOBUF && (proto == NULL || !proto_name_valid(proto) ||
                                 strlen(proto) > SL_PROTO_NAME_MAX))
        return sl_error_set(SL_ERR_INVALID, "publish %s: protobuf needs a valid message name",
                            subject);
    if (ct != SL_CT_PROTOBUF && proto != NULL)
        return sl_error_set(SL_ERR_INVALID, "publish %s: proto name only goes with protobuf",
                            subject);
    if (opts->trace_id != NULL && !sl_trace_id_valid(opts->trace_id))
        return sl_error_set(SL_ERR_INVALID, "publish %s: trace id '%s' is not 32 hex digits",
                            subject, opts->trace_id);
    if (opts->source != NULL && strlen(opts->source) > SL_SOURCE_MAX)
        return sl_error_set(SL_ERR_INVALID, "publish %s: source longer than %d bytes", subject,
                            SL_SOURCE_MAX);

    /* Messages can be built before any connection exists; nats.c's
     * message code needs the library open (idempotent). */
    s = nats_Open(-1);
    if (s == NATS_OK)
        s = natsMsg_Create(&msg, subject, opts->reply, data, (int)len);
    if (s != NATS_OK) {
        st = sl_nats_error(s, "message on '%s'", subject != NULL ? subject : "(null)");
        goto out;
    }
    if (ct != SL_CT_NONE) {
        if (ct == SL_CT_PROTOBUF)
            snprintf(ctype, sizeof(ctype), "%s; proto=%s", sl_content_type_str(ct), proto);
        else
            snprintf(ctype, sizeof(ctype), "%s", sl_content_type_str(ct));
        s = natsMsgHeader_Set(msg, SL_HDR_CONTENT_TYPE, ctype);
    }
    if (opts->trace_id != NULL) {
        for (size_t i = 0; i <= SL_TRACE_ID_LEN; i++)
            trace[i] = (char)tolower((unsigned char)opts->trace_id[i]);
    } else {
        sl_trace_id_new(trace);
    }
    if (s == NATS_OK)
        s = natsMsgHeader_Set(msg, SL_HDR_TRACE_ID, trace);
    if (s == NATS_OK && opts->source != NULL)
        s = natsMsgHeader_Set(msg, SL_HDR_SOURCE, opts->source);
    if (s != NATS_OK) {
        st = sl_nats_error(s, "headers of message on '%s'", subject);
        natsMsg_Destroy(msg);
        goto out;
    }
    *out = msg;
out:
    return st;
}

/* Packs m into a malloc'd buffer. */
static sl_status pack(uint8_t **buf, size_t *len, const ProtobufCMessage *m)
{
    size_t n = protobuf_c_message_get_packed_size(m);

    /* malloc(0) may return NULL; an empty message still needs a buffer. */
    *buf = malloc(n > 0 ? n : 1);
    if (*buf == NULL)
        return sl_error_set(SL_ERR_NOMEM, "packing %s (%zu bytes)", m->descriptor->name, n);
    *len = protobuf_c_message_pack(m, *buf);
    return SL_OK;
}

sl_status sl_envelope_msg_new_pb(natsMsg **out, const char *subject, const ProtobufCMessage *m,
                                 const sl_envelope_opts *opts)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    sl_status st = pack(&buf, &len, m);

    if (st == SL_OK)
        st = sl_envelope_msg_new(out, subject, SL_CT_PROTOBUF, m->descriptor->name, buf, len, opts);
    free(buf);
    return st;
}

static sl_status check_size(sl_nats *nc, const char *subject, size_t len)
{
    int64_t max = sl_nats_max_payload(nc);

    if (max > 0 && (int64_t)len > max)
        return sl_error_set(SL_ERR_INVALID,
                            "publish %s: payload of %zu bytes is over the server's max_payload "
                            "(%lld)",
                            subject, len, (long long)max);
    return SL_OK;
}

static sl_status publish_msg(sl_nats *nc, natsMsg *msg, const char *subject, size_t len)
{
    sl_status st = check_size(nc, subject, len);
    natsStatus s;

    if (st != SL_OK)
        return st;
    s = natsConnection_PublishMsg(sl_nats_conn(nc), msg);
    return s == NATS_OK ? SL_OK : sl_nats_error(s, "publish %s", subject);
}

sl_status sl_envelope_publish(sl_nats *nc, const char *subject, sl_content_type ct,
                              const char *proto, const void *data, size_t len,
                              const sl_envelope_opts *opts)
{
    natsMsg *msg = NULL;
    sl_status st = sl_envelope_msg_new(&msg, subject, ct, proto, data, len, opts);

    if (st == SL_OK)
        st = publish_msg(nc, msg, subject, len);
    natsMsg_Destroy(msg);
    return st;
}

sl_status sl_envelope_publish_pb(sl_nats *nc, const char *subject, const ProtobufCMessage *m,
                                 const sl_envelope_opts *opts)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    sl_status st = pack(&buf, &len, m);

    if (st == SL_OK)
        st = sl_envelope_publish(nc, subject, SL_CT_PROTOBUF, m->descriptor->name, buf, len, opts);
    free(buf);
    return st;
}

sl_status sl_envelope_request(natsMsg **reply, sl_nats *nc, const char *subject,
                              sl_content_type ct, const char *proto, const void *data, size_t len,
                              const sl_envelope_opts *opts, int64_t timeout_ms)
{
    sl_status st;
    natsMsg *msg = NULL;
    natsStatus s;
    sl_envelope_opts o = {0};

    if (opts != NULL)
        o = *opts;
    o.reply = NULL;
    st = sl_envelope_msg_new(&msg, subject, ct, proto, data, len, &o);
    if (st == SL_OK)
        st = check_size(nc, subject, len);
    if (st != SL_OK)
        goto out;
    s = natsConnection_RequestMsg(reply, sl_nats_conn(nc), msg, timeout_ms);
    if (s == NATS_NO_RESPONDERS)
        st = sl_error_set(SL_ERR_NOT_FOUND, "request %s: no responders", subject);
    else if (s == NATS_TIMEOUT)
        st = sl_error_set(SL_ERR_TIMEOUT, "request %s: no reply within %lld ms", subject,
                          (long long)timeout_ms);
    else if (s != NATS_OK)
        st = sl_nats_error(s, "request %s", subject);
out:
    natsMsg_Destroy(msg);
    return st;
}

sl_status sl_envelope_request_pb(natsMsg **reply, sl_nats *nc, const char *subject,
                                 const ProtobufCMessage *m, const sl_envelope_opts *opts,
                                 int64_t timeout_ms)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    sl_status st = pack(&buf, &len, m);

    if (st == SL_OK)
        st = sl_envelope_request(reply, nc, subject, SL_CT_PROTOBUF, m->descriptor->name, buf, len,
                                 opts, timeout_ms);
    free(buf);
    return st;
}

/* A reply to req goes to its reply subject, with its trace id. */
static sl_status reply_opts(sl_envelope_opts *o, const sl_envelope *req, const char *source)
{
    if (req->reply == NULL || req->reply[0] == '\0')
        return sl_error_set(SL_ERR_INVALID, "respond: message on %s has no reply subject",
                            req->subject != NULL ? req->subject : "?");
    *o = (sl_envelope_opts){.trace_id = req->trace_id, .source = source};
    return SL_OK;
}

sl_status sl_envelope_respond(sl_nats *nc, const sl_envelope *req, sl_content_type ct,
                              const char *proto, const void *data, size_t len, const char *source)
{
    sl_envelope_opts o;
    sl_status st = reply_opts(&o, req, source);

    if (st == SL_OK)
        st = sl_envelope_publish(nc, req->reply, ct, proto, data, len, &o);
    return st;
}

sl_status sl_envelope_respond_pb(sl_nats *nc, const sl_envelope *req, const ProtobufCMessage *m,
                                 const char *source)
{
    sl_envelope_opts o;
    sl_status st = reply_opts(&o, req, source);

    if (st == SL_OK)
        st = sl_envelope_publish_pb(nc, req->reply, m, &o);
    return st;
}

/* ---- subscriptions ---------------------------------------------------- */

struct sl_subscription {
    natsSubscription *ns;
    sl_loop *loop;
    sl_envelope_handler fn;
    void *ud;
    char *subject;
    size_t max_pending;
    atomic_size_t *pending; /* own_pending or the caller's shared counter */
    atomic_size_t own_pending;
    sl_envelope_admit_fn admit;
    void *admit_ud;
    atomic_bool closing;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool open;     /* sl_envelope_subscribe() succeeded */
    bool complete; /* nats.c will not call on_msg again */
};

struct sub_msg {
    sl_subscription *sub;
    natsMsg *msg;
    bool counted; /* still in *sub->pending */
};

static void sub_msg_drop(void *ud)
{
    struct sub_msg *m = ud;

    /* Dropped unrun (cancel, or a failed post): sub is still alive then. */
    if (m->counted)
        atomic_fetch_sub(m->sub->pending, 1);
    natsMsg_Destroy(m->msg);
    free(m);
}

/* On the loop: the handler may free the subscription, so sub is not
 * touched after the call. */
static void sub_msg_run(void *ud)
{
    struct sub_msg *m = ud;
    sl_subscription *sub = m->sub;
    sl_envelope env;
    sl_status st;
    bool open;

    /* A message can arrive before sl_envelope_subscribe() has returned;
     * if that call then fails, the handler must never have run. Wait for
     * its outcome (a matter of microseconds). */
    pthread_mutex_lock(&sub->lock);
    while (!sub->open && !atomic_load(&sub->closing))
        pthread_cond_wait(&sub->cond, &sub->lock);
    open = sub->open;
    pthread_mutex_unlock(&sub->lock);

    atomic_fetch_sub(sub->pending, 1);
    m->counted = false;
    if (open && !atomic_load(&sub->closing)) {
        st = sl_envelope_parse(&env, m->msg);
        sub->fn(sub, st, &env, m->msg, sub->ud);
    }
    sub_msg_drop(m);
}

/* Counts msg in *sub->pending and asks the admit hook: true to queue it
 * (counted), false when it was refused (not counted). */
static bool admit(sl_subscription *sub, natsMsg *msg)
{
    size_t n = atomic_fetch_add(sub->pending, 1);
    bool full = sub->max_pending > 0 && n >= sub->max_pending, ok = !full;
    sl_envelope env;

    if (sub->admit != NULL) {
        sl_status st = sl_envelope_parse(&env, msg);
        ok = sub->admit(sub, st, &env, msg, n, full, sub->admit_ud) && !full;
    } else if (full) {
        sl_log_debug("envelope", "queue full, message dropped", "subject=%s pending=%zu",
                     sl_log_q(natsMsg_GetSubject(msg)), n);
    }
    if (!ok)
        atomic_fetch_sub(sub->pending, 1);
    return ok;
}

/* On nats.c's delivery thread: hand the message over to the loop. */
static void on_msg(natsConnection *c, natsSubscription *ns, natsMsg *msg, void *closure)
{
    sl_subscription *sub = closure;
    struct sub_msg *m;

    if (atomic_load(&sub->closing) || !admit(sub, msg)) {
        natsMsg_Destroy(msg);
        return;
    }
    m = malloc(sizeof(*m));
    if (m == NULL) {
        sl_log_error("envelope", "out of memory, message dropped", "subject=%s",
                     sl_log_q(natsMsg_GetSubject(msg)));
        atomic_fetch_sub(sub->pending, 1);
        natsMsg_Destroy(msg);
        return;
    }
    m->sub = sub;
    m->msg = msg;
    m->counted = true;
    if (sl_loop_post(sub->loop, sub, sub_msg_run, sub_msg_drop, m) != SL_OK) {
        sl_log_error("envelope", "out of memory, message dropped", "subject=%s",
                     sl_log_q(natsMsg_GetSubject(msg)));
        sub_msg_drop(m);
    }
}

/* nats.c calls this once the subscription is closed and its last message
 * callback has returned. */
static void on_complete(void *closure)
{
    sl_subscription *sub = closure;

    pthread_mutex_lock(&sub->lock);
    sub->complete = true;
    pthread_cond_broadcast(&sub->cond);
    pthread_mutex_unlock(&sub->lock);
}

static void sub_destroy(sl_subscription *sub)
{
    natsSubscription_Destroy(sub->ns);
    pthread_cond_destroy(&sub->cond);
    pthread_mutex_destroy(&sub->lock);
    free(sub->subject);
    free(sub);
}

sl_status sl_envelope_subscribe(sl_subscription **out, sl_nats *nc, const char *subject,
                                const char *queue, sl_loop *loop, sl_envelope_handler fn, void *ud)
{
    sl_subscribe_opts o = {.queue = queue};

    return sl_envelope_subscribe_opts(out, nc, subject, &o, loop, fn, ud);
}

sl_status sl_envelope_subscribe_opts(sl_subscription **out, sl_nats *nc, const char *subject,
                                     const sl_subscribe_opts *opts, sl_loop *loop,
                                     sl_envelope_handler fn, void *ud)
{
    sl_status st = SL_OK;
    sl_subscription *sub = NULL;
    const sl_subscribe_opts none = {0};
    const char *queue;
    natsStatus s;

    if (loop == NULL || fn == NULL || subject == NULL)
        return sl_error_set(SL_ERR_INVALID, "subscribe: subject, loop and handler required");
    sub = calloc(1, sizeof(*sub));
    if (sub == NULL || (sub->subject = strdup(subject)) == NULL) {
        free(sub);
        return sl_error_set(SL_ERR_NOMEM, "subscribe %s", subject);
    }
    if (opts == NULL)
        opts = &none;
    queue = opts->queue;
    sub->loop = loop;
    sub->fn = fn;
    sub->ud = ud;
    sub->max_pending = opts->max_pending;
    atomic_init(&sub->own_pending, 0);
    sub->pending = opts->pending != NULL ? opts->pending : &sub->own_pending;
    sub->admit = opts->admit;
    sub->admit_ud = opts->admit_ud;
    atomic_init(&sub->closing, false);
    pthread_mutex_init(&sub->lock, NULL);
    pthread_cond_init(&sub->cond, NULL);
    if (queue != NULL)
        s = natsConnection_QueueSubscribe(&sub->ns, sl_nats_conn(nc), subject, queue, on_msg, sub);
    else
        s = natsConnection_Subscribe(&sub->ns, sl_nats_conn(nc), subject, on_msg, sub);
    if (s == NATS_OK)
        s = natsSubscription_SetOnCompleteCB(sub->ns, on_complete, sub);
    if (s == NATS_OK)
        s = natsSubscription_SetPendingLimits(sub->ns, -1, -1);
    if (s != NATS_OK) {
        st = sl_nats_error(s, "subscribe %s", subject);
        if (sub->ns != NULL) {
            /* Nothing was delivered yet: the handler was never called, and
             * on_msg only queues. Close and wait like a free would. */
            sl_subscription_free(sub);
        } else {
            sub_destroy(sub);
        }
        goto out;
    }
    pthread_mutex_lock(&sub->lock);
    sub->open = true;
    pthread_cond_broadcast(&sub->cond);
    pthread_mutex_unlock(&sub->lock);
    *out = sub;
out:
    return st;
}

void sl_subscription_free(sl_subscription *sub)
{
    struct timespec until;
    bool complete;

    if (sub == NULL)
        return;
    pthread_mutex_lock(&sub->lock);
    atomic_store(&sub->closing, true);
    pthread_cond_broadcast(&sub->cond); /* releases a sub_msg_run() waiting for open */
    pthread_mutex_unlock(&sub->lock);
    /* Closing the subscription (or its connection having closed) makes
     * nats.c call on_complete after its last on_msg. Without it, on_msg
     * could still run and touch sub. */
    natsSubscription_Unsubscribe(sub->ns);
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 10;
    pthread_mutex_lock(&sub->lock);
    while (!sub->complete)
        if (pthread_cond_timedwait(&sub->cond, &sub->lock, &until) == ETIMEDOUT)
            break;
    complete = sub->complete;
    pthread_mutex_unlock(&sub->lock);
    sl_loop_cancel(sub->loop, sub);
    if (!complete) {
        /* Freeing would risk a callback on freed memory: keep it. */
        sl_log_error("envelope", "subscription did not complete, leaking it", "subject=%s",
                     sl_log_q(sub->subject));
        return;
    }
    sub_destroy(sub);
}
