/* api_limits.c - the apply API's limits: body size, queue and per-client rate
 * before a request is queued, documents and nodes before it is decoded
 * (see api_limits.h). */
#include "api_limits.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sluice/codec.h"
#include "sluice/log.h"
#include "sluice/natsauth.h"
#include "sluice/v1/events.pb-c.h"

#define KEY_MAX 96
#define SOURCE "sluice-config-watcher"

typedef enum api_kind { API_APPLY, API_DELETE } api_kind;

/* The limits, in the order they are checked; the metric's label values. */
typedef enum limit_id { LIM_BODY, LIM_PENDING, LIM_IDENTITY, LIM_RATE, LIM_DOCUMENTS, LIM_NODES, LIM_N } limit_id;
static const char *const limit_names[LIM_N] = {"body", "pending", "identity", "rate", "documents", "nodes"};

/* The rate bucket of every request from Sluice's own account (operators). */
#define OPERATORS_KEY SL_NATSAUTH_ACCOUNT " (operators)"

typedef struct bucket {
    char key[KEY_MAX]; /* "" : free (the table) */
    double tokens;
    int64_t last_ms;
} bucket;

/* What a subscription's admit hook and handler are given. */
typedef struct api_ctx {
    cw_limits *l;
    api_kind kind;
    bool clients; /* arrived through the CLIENTS account's import */
} api_ctx;

struct cw_limits {
    cw_limits_config c;
    cw *w;
    api_ctx apply, del, client_apply, client_del;
    atomic_size_t pending; /* apply and delete requests waiting for the loop */
    pthread_mutex_t lock;  /* the buckets: both delivery threads use them */
    bucket clients[CW_LIMITS_CLIENTS];
    bucket shared;
    sl_counter *refused[LIM_N];
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

sl_status cw_limits_new(cw_limits **out, const cw_limits_config *c, cw *w, sl_metrics *m)
{
    static const char *const label[] = {"limit"};
    sl_metric_family *f = NULL;
    cw_limits *l = calloc(1, sizeof(*l));
    sl_status st = SL_OK;

    if (l == NULL)
        return sl_error_set(SL_ERR_NOMEM, "apply API limits");
    l->c = *c;
    l->w = w;
    l->apply = (api_ctx){l, API_APPLY, false};
    l->del = (api_ctx){l, API_DELETE, false};
    l->client_apply = (api_ctx){l, API_APPLY, true};
    l->client_del = (api_ctx){l, API_DELETE, true};
    atomic_init(&l->pending, 0);
    pthread_mutex_init(&l->lock, NULL);
    l->shared.tokens = c->burst;
    l->shared.last_ms = now_ms();
    st = sl_metrics_family_new(&f, m, SL_METRIC_COUNTER, "sluice_config_watcher_api_refused_total",
                               "Apply and delete API requests refused by a limit (docs/config-watcher.md).",
                               label, 1, NULL, 0);
    for (int i = 0; st == SL_OK && i < LIM_N; i++)
        st = sl_metric_family_counter(&l->refused[i], f, (const char *const[]){limit_names[i]});
    if (st != SL_OK) {
        cw_limits_free(l);
        return st;
    }
    *out = l;
    return SL_OK;
}

void cw_limits_free(cw_limits *l)
{
    if (l == NULL)
        return;
    pthread_mutex_destroy(&l->lock);
    free(l);
}

/* ---- refusals ------------------------------------------------------------ */

/* Answers the request with the API's error reply and counts it. Any thread. */
static void refuse(cw_limits *l, api_kind kind, limit_id id, const sl_envelope *env,
                   const char *why)
{
    sl_status st = SL_OK;

    sl_counter_inc(l->refused[id]);
    /* Floods end here: one line per refusal only at debug for them. */
    if (id == LIM_PENDING || id == LIM_RATE)
        sl_log_debug("api", "request refused", "limit=%s reason=%s", limit_names[id],
                     sl_log_q(why));
    else
        sl_log_warn("api", "request refused", "limit=%s reason=%s", limit_names[id],
                    sl_log_q(why));
    if (env->reply == NULL || env->reply[0] == '\0' || l->w->nc == NULL)
        return;
    if (kind == API_APPLY) {
        Sluice__V1__ApplyResponse r = SLUICE__V1__APPLY_RESPONSE__INIT;
        r.error = (char *)why;
        st = sl_envelope_respond_pb(l->w->nc, env, &r.base, SOURCE);
    } else {
        Sluice__V1__DeleteResponse r = SLUICE__V1__DELETE_RESPONSE__INIT;
        r.error = (char *)why;
        st = sl_envelope_respond_pb(l->w->nc, env, &r.base, SOURCE);
    }
    if (st != SL_OK)
        sl_log_warn("api", "reply failed", "err=%s", sl_log_q(sl_error_msg()));
}

/* ---- per-client rate ------------------------------------------------------ */

/* The client of a request (api_limits.h): the account and user nats-server
 * named for a client's request, one bucket for Sluice's own account. false
 * with the refusal in why when a client's request names nobody. */
static bool client_key(char *out, size_t n, const api_ctx *c, natsMsg *msg, char *why, size_t why_n)
{
    if (!c->clients) {
        snprintf(out, n, "%s", OPERATORS_KEY);
        return true;
    }
    if (sl_natsauth_requester(out, n, msg) == SL_OK)
        return true;
    snprintf(why, why_n, "no client identity: %s", sl_error_msg());
    return false;
}

static void refill(const cw_limits *l, bucket *b, int64_t now)
{
    b->tokens = fmin((double)l->c.burst, b->tokens + (double)(now - b->last_ms) * l->c.rate / 1000.0);
    b->last_ms = now;
}

/* The bucket of key: its own, a free or idle (refilled) slot taken over,
 * or the shared one when every slot is in use. Under l->lock. */
static bucket *find_bucket(cw_limits *l, const char *key, int64_t now)
{
    bucket *spare = NULL;

    if (key[0] == '\0')
        return &l->shared;
    for (size_t i = 0; i < CW_LIMITS_CLIENTS; i++) {
        bucket *b = &l->clients[i];
        if (b->key[0] != '\0' && strcmp(b->key, key) == 0)
            return b;
        if (spare == NULL &&
            (b->key[0] == '\0' ||
             b->tokens + (double)(now - b->last_ms) * l->c.rate / 1000.0 >= l->c.burst))
            spare = b;
    }
    if (spare == NULL)
        return &l->shared;
    snprintf(spare->key, sizeof(spare->key), "%s", key);
    spare->tokens = l->c.burst;
    spare->last_ms = now;
    return spare;
}

/* Takes a token of the request's client key: true, or false with the
 * refusal in why. */
static bool take_token(cw_limits *l, const char *key, char *why, size_t n)
{
    int64_t now = now_ms();
    bucket *b;
    bool ok;
    double wait_ms = 0;

    pthread_mutex_lock(&l->lock);
    b = find_bucket(l, key, now);
    refill(l, b, now);
    ok = b->tokens >= 1.0;
    if (ok)
        b->tokens -= 1.0;
    else
        wait_ms = ceil((1.0 - b->tokens) * 1000.0 / l->c.rate);
    pthread_mutex_unlock(&l->lock);
    if (!ok)
        snprintf(why, n,
                 "rate limited: client '%s' is over %d requests/s (--api-rate, bursts of "
                 "--api-burst %d), retry in %.0f ms",
                 b == &l->shared ? "(shared)" : key, l->c.rate, l->c.burst, wait_ms);
    return ok;
}

/* ---- on the delivery thread ------------------------------------------------ */

static bool admit(sl_subscription *sub, sl_status st, const sl_envelope *env, natsMsg *msg,
                  size_t pending, bool full, void *ud)
{
    api_ctx *c = ud;
    cw_limits *l = c->l;
    char why[512], key[KEY_MAX];
    (void)sub;
    (void)st;

    if (l->c.max_body > 0 && env->len > (size_t)l->c.max_body) {
        snprintf(why, sizeof(why),
                 "request body of %zu bytes is over the limit of %d bytes (--api-max-body)",
                 env->len, l->c.max_body);
        refuse(l, c->kind, LIM_BODY, env, why);
        return false;
    }
    if (full) {
        snprintf(why, sizeof(why), "busy: %zu requests pending, retry (--api-max-pending %d)",
                 pending, l->c.max_pending);
        refuse(l, c->kind, LIM_PENDING, env, why);
        return false;
    }
    if (!client_key(key, sizeof(key), c, msg, why, sizeof(why))) {
        refuse(l, c->kind, LIM_IDENTITY, env, why);
        return false;
    }
    if (l->c.rate > 0 && !take_token(l, key, why, sizeof(why))) {
        refuse(l, c->kind, LIM_RATE, env, why);
        return false;
    }
    return true;
}

/* ---- on the loop, before decoding ------------------------------------------ */

static size_t add_sat(size_t a, size_t b)
{
    return a > SIZE_MAX - b ? SIZE_MAX : a + b;
}

/* Documents and nodes of a YAML/JSON body, counting until a limit is
 * passed: LIM_N when within both. Broken documents count for nothing:
 * decoding reports them. */
static limit_id count_text(const cw_limits *l, const sl_envelope *env)
{
    sl_codec_stream *s = NULL;
    size_t docs = 0, nodes = 0;
    limit_id over = LIM_N;

    if (sl_codec_stream_new(&s, (const char *)env->data, env->len, "<request>") != SL_OK)
        return LIM_N; /* out of memory: decoding will say so */
    while (over == LIM_N) {
        sl_codec_doc *doc = NULL;
        sl_status st = sl_codec_stream_next(s, &doc, NULL);
        if (st == SL_ERR_NOMEM || (st == SL_OK && doc == NULL))
            break;
        if (doc == NULL)
            continue;
        if (!sl_codec_doc_empty(doc))
            docs++;
        nodes = add_sat(nodes, sl_codec_doc_nodes(doc));
        sl_codec_doc_free(doc);
        if (l->c.max_documents > 0 && docs > (size_t)l->c.max_documents)
            over = LIM_DOCUMENTS;
        else if (l->c.max_nodes > 0 && nodes > (size_t)l->c.max_nodes)
            over = LIM_NODES;
    }
    sl_codec_stream_free(s);
    return over;
}

static bool varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    *v = 0;
    for (int shift = 0; *p < end && shift < 64; shift += 7) {
        uint8_t b = *(*p)++;
        *v |= (uint64_t)(b & 0x7f) << shift;
        if ((b & 0x80) == 0)
            return true;
    }
    return false;
}

/* Top-level occurrences of field 1 (resources, in ApplyRequest and
 * DeleteRequest) in protobuf bytes, up to stop; bad bytes end the count
 * (the decoder reports them). */
static size_t count_pb_resources(const uint8_t *p, size_t len, size_t stop)
{
    const uint8_t *end = p + len;
    size_t n = 0;
    uint64_t tag, v;

    while (p < end && n < stop && varint(&p, end, &tag)) {
        switch (tag & 7) {
        case 0:
            if (!varint(&p, end, &v))
                return n;
            break;
        case 1:
        case 5:
            v = (tag & 7) == 1 ? 8 : 4;
            if ((uint64_t)(end - p) < v)
                return n;
            p += v;
            break;
        case 2:
            if (!varint(&p, end, &v) || (uint64_t)(end - p) < v)
                return n;
            p += v;
            if ((tag >> 3) == 1)
                n++;
            break;
        default:
            return n;
        }
    }
    return n;
}

static void on_request(sl_subscription *sub, sl_status st, const sl_envelope *env, natsMsg *msg,
                       void *ud)
{
    api_ctx *c = ud;
    cw_limits *l = c->l;
    limit_id over = LIM_N;
    char why[512];

    if (st == SL_OK && (env->content_type == SL_CT_YAML || env->content_type == SL_CT_JSON))
        over = count_text(l, env);
    else if (st == SL_OK && l->c.max_documents > 0 &&
             count_pb_resources(env->data, env->len, (size_t)l->c.max_documents + 1) >
                 (size_t)l->c.max_documents)
        over = LIM_DOCUMENTS;
    if (over == LIM_DOCUMENTS) {
        snprintf(why, sizeof(why), "request has more than %d documents (--api-max-documents)",
                 l->c.max_documents);
        refuse(l, c->kind, over, env, why);
    } else if (over == LIM_NODES) {
        snprintf(why, sizeof(why), "request has more than %d YAML/JSON nodes (--api-max-nodes)",
                 l->c.max_nodes);
        refuse(l, c->kind, over, env, why);
    } else if (c->kind == API_APPLY) {
        cw_on_apply(sub, st, env, msg, l->w);
    } else {
        cw_on_delete(sub, st, env, msg, l->w);
    }
}

sl_status cw_limits_subscribe(cw_limits *l, sl_subscription *subs[CW_LIMITS_SUBS], const char *queue)
{
    const struct {
        const char *subject;
        api_ctx *ctx;
    } apis[CW_LIMITS_SUBS] = {
        {"sluice.api.apply", &l->apply},
        {"sluice.api.delete", &l->del},
        {SL_NATSAUTH_CLIENT_API_PREFIX "apply", &l->client_apply},
        {SL_NATSAUTH_CLIENT_API_PREFIX "delete", &l->client_del},
    };
    sl_subscribe_opts o = {.queue = queue,
                           .max_pending = l->c.max_pending > 0 ? (size_t)l->c.max_pending : 0,
                           .pending = &l->pending,
                           .admit = admit};
    sl_status st = SL_OK;

    for (int i = 0; i < CW_LIMITS_SUBS; i++)
        subs[i] = NULL;
    for (int i = 0; i < CW_LIMITS_SUBS && st == SL_OK; i++) {
        o.admit_ud = apis[i].ctx;
        st = sl_envelope_subscribe_opts(&subs[i], l->w->nc, apis[i].subject, &o, l->w->loop, on_request,
                                        apis[i].ctx);
    }
    if (st != SL_OK)
        for (int i = 0; i < CW_LIMITS_SUBS; i++) {
            sl_subscription_free(subs[i]);
            subs[i] = NULL;
        }
    return st;
}
