#include "sluice/kv.h"

#include <ctype.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "sluice/log.h"

/* How long a push-mode watch thread asks for at a time, and how long one
 * kvWatcher_Next() call may block before the stop flag is looked at. */
#define WATCH_POLL_MS 60000
#define WATCH_SLICE_MS 100

struct sl_kv {
    sl_nats *nc;
    kvStore *store;
    char *bucket;
    char *stream; /* KV_<bucket> */
    char *prefix; /* $KV.<bucket>. */
    /* sl_kv_put_many(): one subscription on <inbox>.* made at the first
     * batch, kept; replies are <inbox>.<batch>.<index>, so a late one of an
     * earlier batch is told apart. One batch at a time (mu). */
    pthread_mutex_t mu;
    natsSubscription *acks;
    char *inbox; /* <the connection's inbox prefix>.<unique>, malloc'd */
    uint64_t batch;
};

void sl_kv_entry_deinit(sl_kv_entry *e)
{
    kvEntry_Destroy(e->impl_);
    memset(e, 0, sizeof(*e));
}

void sl_kv_config_init(sl_kv_config *c, const char *bucket)
{
    memset(c, 0, sizeof(*c));
    c->bucket = bucket;
    c->history = 1;
    c->storage = SL_KV_FILE;
    c->replicas = 0; /* the connection's --kv-replicas, else 1 */
}

static bool bucket_valid(const char *b)
{
    if (b == NULL || *b == '\0')
        return false;
    for (; *b; b++)
        if (!isalnum((unsigned char)*b) && *b != '_' && *b != '-')
            return false;
    return true;
}

bool sl_kv_key_valid(const char *key)
{
    size_t n;

    if (key == NULL || *key == '\0')
        return false;
    n = strlen(key);
    if (key[0] == '.' || key[n - 1] == '.')
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)key[i];
        if (c == '.' && key[i + 1] == '.')
            return false;
        if (!isalnum(c) && c != '.' && c != '_' && c != '-' && c != '/' && c != '\\' && c != '=')
            return false;
    }
    return true;
}

static sl_status kv_alloc(sl_kv **out, sl_nats *nc, const char *bucket)
{
    sl_kv *kv = calloc(1, sizeof(*kv));
    size_t n = strlen(bucket);

    if (kv == NULL)
        goto nomem;
    kv->nc = nc;
    pthread_mutex_init(&kv->mu, NULL);
    kv->bucket = strdup(bucket);
    kv->stream = malloc(n + sizeof("KV_"));
    kv->prefix = malloc(n + sizeof("$KV.."));
    if (kv->bucket == NULL || kv->stream == NULL || kv->prefix == NULL)
        goto nomem;
    snprintf(kv->stream, n + sizeof("KV_"), "KV_%s", bucket);
    snprintf(kv->prefix, n + sizeof("$KV.."), "$KV.%s.", bucket);
    *out = kv;
    return SL_OK;
nomem:
    sl_kv_free(kv);
    return sl_error_set(SL_ERR_NOMEM, "kv %s", bucket);
}

void sl_kv_free(sl_kv *kv)
{
    if (kv == NULL)
        return;
    kvStore_Destroy(kv->store);
    natsSubscription_Destroy(kv->acks); /* unsubscribes */
    free(kv->inbox);
    pthread_mutex_destroy(&kv->mu);
    free(kv->bucket);
    free(kv->stream);
    free(kv->prefix);
    free(kv);
}

sl_status sl_kv_bind(sl_kv **out, sl_nats *nc, const char *bucket)
{
    sl_status st;
    sl_kv *kv = NULL;
    natsStatus s;

    if (!bucket_valid(bucket))
        return sl_error_set(SL_ERR_INVALID, "kv bucket name '%s': use A-Z a-z 0-9 _ -",
                            bucket != NULL ? bucket : "(null)");
    st = kv_alloc(&kv, nc, bucket);
    if (st != SL_OK)
        goto out;
    s = js_KeyValue(&kv->store, sl_nats_js(nc), bucket);
    /* A JetStream API call times out while a cluster elects its meta
     * leader or is busy: worth two more tries before giving up. */
    for (int i = 0; s == NATS_TIMEOUT && i < 2; i++) {
        sl_log_warn("kv", "bind timed out; retrying", "bucket=%s", bucket);
        s = js_KeyValue(&kv->store, sl_nats_js(nc), bucket);
    }
    if (s != NATS_OK) {
        st = sl_nats_error(s, "kv bind %s", bucket);
        sl_kv_free(kv);
        goto out;
    }
    *out = kv;
out:
    return st;
}

/* The replicas a bucket should have: the caller's config, else the
 * connection's --kv-replicas, else 1. *explicit is false in the last case:
 * then an existing bucket keeps whatever replicas it has. */
static int64_t want_replicas(bool *explicit, sl_nats *nc, const sl_kv_config *cfg)
{
    int conn = sl_nats_kv_replicas(nc);

    *explicit = cfg->replicas > 0 || conn > 0;
    if (cfg->replicas > 0)
        return cfg->replicas;
    return conn > 0 ? conn : 1;
}

sl_status sl_kv_scale_stream(int64_t *had, sl_nats *nc, const char *stream, int64_t replicas)
{
    jsStreamInfo *si = NULL, *up = NULL;
    jsErrCode jerr = 0;
    natsStatus s;
    sl_status st = SL_OK;

    *had = 0;
    s = js_GetStreamInfo(&si, sl_nats_js(nc), stream, NULL, &jerr);
    if (s != NATS_OK) {
        st = sl_nats_error(s, "stream %s info (jetstream error %d)", stream, (int)jerr);
        goto out;
    }
    *had = si->Config->Replicas;
    if (*had == replicas)
        goto out;
    /* A single server takes the update and reports the new number, but
     * has nowhere to put the copies: refuse instead. */
    if (replicas > 1 && (si->Cluster == NULL || si->Cluster->Name == NULL)) {
        st = sl_error_set(SL_ERR_INVALID,
                          "stream %s: %lld replicas need a NATS cluster; this server is not "
                          "clustered",
                          stream, (long long)replicas);
        goto out;
    }
    si->Config->Replicas = replicas;
    jerr = 0;
    s = js_UpdateStream(&up, sl_nats_js(nc), si->Config, NULL, &jerr);
    if (s != NATS_OK)
        st = sl_nats_error(s, "update stream %s to %lld replicas (jetstream error %d)", stream,
                           (long long)replicas, (int)jerr);
out:
    jsStreamInfo_Destroy(up);
    jsStreamInfo_Destroy(si);
    return st;
}

/* Scales the bucket's stream, logging the outcome. */
static void scale_bucket(sl_kv *kv, int64_t have, int64_t want)
{
    char hint[256];
    int64_t had;

    if (sl_kv_scale_stream(&had, kv->nc, kv->stream, want) == SL_OK) {
        sl_log_info("kv", "bucket replicas changed", "bucket=%s stream=%s replicas=%lld/%lld",
                    kv->bucket, kv->stream, (long long)want, (long long)had);
        return;
    }
    snprintf(hint, sizeof(hint),
             "replicas above 1 need a NATS cluster with at least as many JetStream servers; "
             "or: nats stream edit %s --replicas %lld",
             kv->stream, (long long)want);
    sl_log_warn("kv", "could not change the bucket's replicas; keeping them",
                "bucket=%s replicas=%lld/%lld err=%s hint=%s", kv->bucket, (long long)have,
                (long long)want, sl_log_q(sl_error_msg()), sl_log_q(hint));
}

/* Logs where an existing bucket differs from what the caller asked for,
 * and scales its replicas when they were asked for explicitly. */
static void check_config(sl_kv *kv, const sl_kv_config *cfg)
{
    kvStatus *ks = NULL;
    int64_t want_ttl_ns = cfg->ttl_ms * 1000000;
    int64_t want_history = cfg->history > 0 ? cfg->history : 1;
    bool explicit;
    int64_t want_r = want_replicas(&explicit, kv->nc, cfg), have_r;
    char hint[256];

    if (kvStore_Status(&ks, kv->store) != NATS_OK)
        return;
    have_r = kvStatus_Replicas(ks);
    if (kvStatus_History(ks) != want_history || kvStatus_TTL(ks) != want_ttl_ns)
        sl_log_warn("kv", "existing bucket has another configuration; keeping it",
                    "bucket=%s history=%lld/%lld ttl_ns=%lld/%lld", kv->bucket,
                    (long long)kvStatus_History(ks), (long long)want_history,
                    (long long)kvStatus_TTL(ks), (long long)want_ttl_ns);
    if (have_r != want_r && explicit)
        scale_bucket(kv, have_r, want_r);
    else if (have_r != want_r) {
        snprintf(hint, sizeof(hint),
                 "to change them run a service with --kv-replicas N (SLUICE_KV_REPLICAS=N), "
                 "or: nats stream edit %s --replicas N",
                 kv->stream);
        sl_log_warn("kv", "existing bucket has other replicas; keeping them",
                    "bucket=%s replicas=%lld/%lld hint=%s", kv->bucket, (long long)have_r,
                    (long long)want_r, sl_log_q(hint));
    }
    kvStatus_Destroy(ks);
}

sl_status sl_kv_open(sl_kv **out, sl_nats *nc, const sl_kv_config *cfg)
{
    sl_status st;
    sl_kv *kv = NULL;
    kvConfig kc;
    jsRePublish rp;
    char *rp_src = NULL;
    natsStatus s;
    bool explicit;

    if (cfg->history > 64)
        return sl_error_set(SL_ERR_INVALID, "kv %s: history %u, at most 64", cfg->bucket,
                            cfg->history);
    if ((cfg->republish_keys == NULL) != (cfg->republish_subject == NULL))
        return sl_error_set(SL_ERR_INVALID, "kv %s: republish needs both keys and subject",
                            cfg->bucket);
    st = sl_kv_bind(&kv, nc, cfg->bucket);
    if (st == SL_OK) {
        check_config(kv, cfg);
        goto done;
    }
    if (st != SL_ERR_NOT_FOUND)
        goto out;

    st = kv_alloc(&kv, nc, cfg->bucket);
    if (st != SL_OK)
        goto out;
    kvConfig_Init(&kc);
    kc.Bucket = cfg->bucket;
    kc.Description = cfg->description;
    kc.History = cfg->history > 0 ? cfg->history : 1;
    kc.MaxValueSize = cfg->max_value_size;
    kc.MaxBytes = cfg->max_bytes;
    kc.TTL = cfg->ttl_ms * 1000000; /* the stream's max_age, in ns */
    kc.StorageType = cfg->storage == SL_KV_MEMORY ? js_MemoryStorage : js_FileStorage;
    kc.Replicas = want_replicas(&explicit, nc, cfg);
    if (cfg->republish_keys != NULL) {
        if (asprintf(&rp_src, "$KV.%s.%s", cfg->bucket, cfg->republish_keys) < 0) {
            rp_src = NULL;
            st = sl_error_set(SL_ERR_NOMEM, "kv %s", cfg->bucket);
            goto err;
        }
        memset(&rp, 0, sizeof(rp));
        rp.Source = rp_src;
        rp.Destination = cfg->republish_subject;
        rp.HeadersOnly = cfg->republish_headers_only;
        kc.RePublish = &rp;
    }
    s = js_CreateKeyValue(&kv->store, sl_nats_js(nc), &kc);
    if (s != NATS_OK) {
        /* Another replica may have created it in between: bind to that.
         * Keep nats.c's text of the create error (the server's reason,
         * e.g. "replicas > 1 not supported in non-clustered mode") before
         * the bind replaces it. */
        sl_status cst = sl_nats_error(s, "kv create %s (replicas %lld)", cfg->bucket,
                                      (long long)kc.Replicas);
        char why[512];
        snprintf(why, sizeof(why), "%s", sl_error_msg());
        sl_kv_free(kv);
        kv = NULL;
        st = sl_kv_bind(&kv, nc, cfg->bucket);
        if (st != SL_OK) {
            st = sl_error_set(cst, "%s", why);
            goto out;
        }
        check_config(kv, cfg);
        goto done;
    }
    sl_log_info("kv", "bucket created", "bucket=%s history=%u storage=%s replicas=%lld",
                cfg->bucket, (unsigned)kc.History,
                cfg->storage == SL_KV_MEMORY ? "memory" : "file", (long long)kc.Replicas);
done:
    *out = kv;
    goto out;
err:
    sl_kv_free(kv);
out:
    free(rp_src);
    return st;
}

sl_status sl_kv_delete_bucket(sl_nats *nc, const char *bucket)
{
    natsStatus s;

    if (!bucket_valid(bucket))
        return sl_error_set(SL_ERR_INVALID, "kv bucket name '%s'", bucket != NULL ? bucket : "(null)");
    s = js_DeleteKeyValue(sl_nats_js(nc), bucket);
    return s == NATS_OK ? SL_OK : sl_nats_error(s, "kv delete bucket %s", bucket);
}

const char *sl_kv_bucket(sl_kv *kv)
{
    return kv->bucket;
}

static sl_kv_op map_op(kvOperation op)
{
    switch (op) {
    case kvOp_Delete:
        return SL_KV_DELETE;
    case kvOp_Purge:
        return SL_KV_PURGE;
    default:
        return SL_KV_PUT;
    }
}

/* Takes ownership of ne. */
static void fill_entry(sl_kv_entry *e, kvEntry *ne)
{
    int len = kvEntry_ValueLen(ne);

    e->key = kvEntry_Key(ne);
    e->len = len > 0 ? (size_t)len : 0;
    e->value = e->len > 0 ? kvEntry_Value(ne) : NULL;
    e->revision = kvEntry_Revision(ne);
    e->delta = kvEntry_Delta(ne);
    e->created_ns = kvEntry_Created(ne);
    e->op = map_op(kvEntry_Operation(ne));
    e->impl_ = ne;
}

sl_status sl_kv_get(sl_kv_entry *e, sl_kv *kv, const char *key)
{
    kvEntry *ne = NULL;
    natsStatus s;

    memset(e, 0, sizeof(*e));
    if (!sl_kv_key_valid(key))
        return sl_error_set(SL_ERR_INVALID, "kv key '%s'", key != NULL ? key : "(null)");
    s = kvStore_Get(&ne, kv->store, key);
    if (s != NATS_OK)
        return sl_nats_error(s, "kv get %s/%s", kv->bucket, key);
    fill_entry(e, ne);
    return SL_OK;
}

/* Every write is a JetStream publish on $KV.<bucket>.<key>, as nats.c
 * does it, but here the JetStream error code is kept, so that a revision
 * conflict is told apart from other failures. */
static sl_status kv_write(uint64_t *rev, sl_kv *kv, const char *key, const void *value, size_t len,
                          const char *op, uint64_t last, bool expect_none)
{
    sl_status st = SL_OK;
    natsMsg *msg = NULL;
    jsPubAck *ack = NULL;
    jsPubOptions o;
    jsErrCode jerr = 0;
    natsStatus s;
    char *subject = NULL;

    if (!sl_kv_key_valid(key)) {
        st = sl_error_set(SL_ERR_INVALID, "kv key '%s': use tokens of A-Z a-z 0-9 _ - / \\ = "
                                          "separated by single dots",
                          key != NULL ? key : "(null)");
        goto out;
    }
    if (len > INT_MAX) {
        st = sl_error_set(SL_ERR_INVALID, "kv %s/%s: value of %zu bytes is too large", kv->bucket,
                          key, len);
        goto out;
    }
    if (asprintf(&subject, "%s%s", kv->prefix, key) < 0) {
        subject = NULL;
        st = sl_error_set(SL_ERR_NOMEM, "kv %s/%s", kv->bucket, key);
        goto out;
    }
    s = natsMsg_Create(&msg, subject, NULL, value, (int)len);
    /* A purge is a marker only, without "Nats-Rollup: sub": nats-server
     * before 2.9.15 moves every consumer of the stream past its
     * undelivered messages when one subject is rolled up (nats-server
     * PR #3838), so a watch would silently lose updates of other keys. */
    if (s == NATS_OK && op != NULL)
        s = natsMsgHeader_Set(msg, "KV-Operation", op);
    if (s != NATS_OK) {
        st = sl_nats_error(s, "kv %s/%s", kv->bucket, key);
        goto out;
    }
    jsPubOptions_Init(&o);
    o.ExpectLastSubjectSeq = last;
    o.ExpectNoMessage = expect_none;
    s = js_PublishMsg(&ack, sl_nats_js(kv->nc), msg, &o, &jerr);
    if (s != NATS_OK) {
        if (jerr == JSStreamWrongLastSequenceErr) {
            st = sl_error_set(SL_ERR_CONFLICT, "kv %s/%s: revision is not %llu", kv->bucket, key,
                              (unsigned long long)last);
        } else {
            st = sl_nats_error(s, "kv write %s/%s", kv->bucket, key);
            if (jerr != 0)
                st = sl_error_set(st, "kv write %s/%s: %s (jetstream error %d)", kv->bucket, key,
                                  sl_error_msg(), (int)jerr);
        }
        goto out;
    }
    if (rev != NULL)
        *rev = ack->Sequence;
out:
    jsPubAck_Destroy(ack);
    natsMsg_Destroy(msg);
    free(subject);
    return st;
}

sl_status sl_kv_put(uint64_t *rev, sl_kv *kv, const char *key, const void *value, size_t len)
{
    return kv_write(rev, kv, key, value, len, NULL, 0, false);
}

/* The outcome of one put from its JetStream acknowledgement:
 * {"stream":..,"seq":N} or {"error":{"code":..,"err_code":..,"description":..}}. */
static sl_status put_ack(uint64_t *rev, sl_kv *kv, const char *key, const natsMsg *m)
{
    const char *data = natsMsg_GetData(m);
    int len = natsMsg_GetDataLength(m);
    json_t *root = NULL, *err, *seq;
    sl_status st;

    *rev = 0;
    if (len <= 0) /* a status message: 503 no responders (no stream on the subject) */
        return sl_error_set(SL_ERR_NATS, "kv write %s/%s: no JetStream stream answered", kv->bucket, key);
    if (!(root = json_loadb(data, (size_t)len, 0, NULL)) || !json_is_object(root)) {
        st = sl_error_set(SL_ERR_PARSE, "kv write %s/%s: acknowledgement is not JSON: %.*s", kv->bucket, key,
                          len > 200 ? 200 : len, data);
        goto out;
    }
    if ((err = json_object_get(root, "error")) != NULL) {
        const char *d = json_string_value(json_object_get(err, "description"));
        st = sl_error_set(SL_ERR_NATS, "kv write %s/%s: %s (jetstream error %lld)", kv->bucket, key,
                          d ? d : "error", (long long)json_integer_value(json_object_get(err, "err_code")));
        goto out;
    }
    if (!json_is_integer(seq = json_object_get(root, "seq")) || json_integer_value(seq) <= 0) {
        st = sl_error_set(SL_ERR_PARSE, "kv write %s/%s: acknowledgement without a sequence", kv->bucket, key);
        goto out;
    }
    *rev = (uint64_t)json_integer_value(seq);
    st = SL_OK;
out:
    json_decref(root);
    return st;
}

/* Publishes every put with a reply subject <inbox>.<batch>.<index>, then
 * collects the acknowledgements on the handle's subscription: the server
 * stores a connection's messages in the order it receives them, so this is
 * the same as n sl_kv_put() calls in a row, minus n-1 waits. */
sl_status sl_kv_put_many(sl_kv *kv, sl_kv_put_item *items, size_t n, int64_t timeout_ms)
{
    natsConnection *conn = sl_nats_conn(kv->nc);
    natsStatus s;
    sl_status st = SL_OK, first = SL_OK;
    char *subject = NULL, reply[256];
    size_t sent = 0, pending, first_i = 0, plen;
    int64_t max = natsConnection_GetMaxPayload(conn), deadline;
    uint64_t batch;
    char first_msg[512] = "";

    if (n == 0)
        return SL_OK;
    for (size_t i = 0; i < n; i++) {
        items[i].rev = 0;
        items[i].status = SL_ERR_TIMEOUT;
        if (!sl_kv_key_valid(items[i].key))
            return sl_error_set(SL_ERR_INVALID, "kv key '%s': use tokens of A-Z a-z 0-9 _ - / \\ = separated by "
                                "single dots", items[i].key ? items[i].key : "(null)");
        if (items[i].len > INT_MAX || (max > 0 && (int64_t)items[i].len > max))
            return sl_error_set(SL_ERR_INVALID, "kv %s/%s: value of %zu bytes is over the server's max_payload "
                                "(%lld)", kv->bucket, items[i].key, items[i].len, (long long)max);
    }
    if (timeout_ms <= 0)
        timeout_ms = 5000;
    deadline = nats_Now() + timeout_ms;
    pthread_mutex_lock(&kv->mu);
    if (!kv->acks) {
        char wild[256];
        /* under the connection's own inbox prefix, which its NATS user may
         * subscribe to (nats.c's natsInbox_Create() knows only _INBOX) */
        natsInbox *unique = NULL;
        if ((s = natsInbox_Create(&unique)) != NATS_OK) {
            st = sl_nats_error(s, "kv %s: batch inbox", kv->bucket);
            goto out;
        }
        const char *tail = strchr((const char *)unique, '.');
        if (asprintf(&kv->inbox, "%s.%s", sl_nats_inbox_prefix(kv->nc), tail ? tail + 1 : (const char *)unique) < 0)
            kv->inbox = NULL;
        natsInbox_Destroy(unique);
        if (!kv->inbox) {
            st = sl_error_set(SL_ERR_NOMEM, "kv %s: batch inbox", kv->bucket);
            goto out;
        }
        snprintf(wild, sizeof wild, "%s.*.*", kv->inbox);
        if ((s = natsConnection_SubscribeSync(&kv->acks, conn, wild)) != NATS_OK) {
            kv->acks = NULL;
            st = sl_nats_error(s, "kv %s: batch inbox", kv->bucket);
            goto out;
        }
    }
    batch = ++kv->batch;
    plen = (size_t)snprintf(reply, sizeof reply, "%s.%" PRIu64 ".", kv->inbox, batch);
    for (; sent < n; sent++) {
        natsMsg *msg = NULL;
        free(subject);
        if (asprintf(&subject, "%s%s", kv->prefix, items[sent].key) < 0) {
            subject = NULL;
            st = sl_error_set(SL_ERR_NOMEM, "kv %s/%s", kv->bucket, items[sent].key);
            break;
        }
        snprintf(reply + plen, sizeof reply - plen, "%zu", sent);
        s = natsMsg_Create(&msg, subject, reply, items[sent].value, (int)items[sent].len);
        if (s == NATS_OK)
            s = natsConnection_PublishMsg(conn, msg);
        natsMsg_Destroy(msg);
        if (s != NATS_OK) {
            st = sl_nats_error(s, "kv write %s/%s", kv->bucket, items[sent].key);
            break;
        }
    }
    if (st != SL_OK) { /* items[sent..] not sent: they fail with this */
        first = st;
        first_i = sent;
        snprintf(first_msg, sizeof first_msg, "%s", sl_error_msg());
        for (size_t i = sent; i < n; i++)
            items[i].status = st;
    }
    /* Send now: the connection's flusher thread would wait a millisecond
     * to gather more. A flush is a PING answered once the server has read
     * every publish before it, so it overlaps with storing them; its
     * failure shows as missing acknowledgements below. */
    if (sent > 0)
        (void)natsConnection_FlushTimeout(conn, deadline - nats_Now() > 0 ? deadline - nats_Now() : 1);
    for (pending = sent; pending > 0;) {
        natsMsg *m = NULL;
        int64_t left = deadline - nats_Now();
        const char *rs;
        char *end = NULL;
        unsigned long long b = 0, idx = ULLONG_MAX;
        if (left <= 0 || (s = natsSubscription_NextMsg(&m, kv->acks, left)) != NATS_OK)
            break;
        rs = natsMsg_GetSubject(m);
        if (rs) { /* <inbox>.<batch>.<index> */
            const char *p = strrchr(rs, '.'), *q;
            for (q = p ? p - 1 : NULL; q && q > rs && *q != '.'; q--)
                ;
            if (p && q && *q == '.') {
                b = strtoull(q + 1, &end, 10);
                idx = end == p ? strtoull(p + 1, &end, 10) : ULLONG_MAX;
            }
        }
        if (b == batch && idx < sent && items[idx].status == SL_ERR_TIMEOUT) {
            items[idx].status = put_ack(&items[idx].rev, kv, items[idx].key, m);
            if (items[idx].status != SL_OK && (first == SL_OK || idx < first_i)) {
                first = items[idx].status;
                first_i = idx;
                snprintf(first_msg, sizeof first_msg, "%s", sl_error_msg());
            }
            pending--;
        }
        natsMsg_Destroy(m); /* or a late one of an earlier batch */
    }
    for (size_t i = 0; i < sent; i++)
        if (items[i].status == SL_ERR_TIMEOUT && (first == SL_OK || i < first_i)) {
            first = SL_ERR_TIMEOUT;
            first_i = i;
            snprintf(first_msg, sizeof first_msg, "kv write %s/%s: no acknowledgement within %lld ms", kv->bucket,
                     items[i].key, (long long)timeout_ms);
        }
    st = first == SL_OK ? SL_OK : sl_error_set(first, "%s", first_msg);
out:
    pthread_mutex_unlock(&kv->mu);
    free(subject);
    return st;
}

/* The revision and operation of key's last message, deleted or not. */
static sl_status last_raw(uint64_t *seq, bool *live, sl_kv *kv, const char *key)
{
    sl_status st = SL_OK;
    natsMsg *msg = NULL;
    jsErrCode jerr = 0;
    const char *op = NULL;
    char *subject = NULL;
    natsStatus s;

    if (asprintf(&subject, "%s%s", kv->prefix, key) < 0)
        return sl_error_set(SL_ERR_NOMEM, "kv %s/%s", kv->bucket, key);
    s = js_GetLastMsg(&msg, sl_nats_js(kv->nc), kv->stream, subject, NULL, &jerr);
    if (s != NATS_OK) {
        st = sl_nats_error(s, "kv %s/%s", kv->bucket, key);
        goto out;
    }
    *seq = natsMsg_GetSequence(msg);
    *live = natsMsgHeader_Get(msg, "KV-Operation", &op) != NATS_OK ||
            (strcmp(op, "DEL") != 0 && strcmp(op, "PURGE") != 0);
out:
    natsMsg_Destroy(msg);
    free(subject);
    return st;
}

sl_status sl_kv_create(uint64_t *rev, sl_kv *kv, const char *key, const void *value, size_t len)
{
    sl_status st;
    uint64_t seq = 0;
    bool live = true;

    st = kv_write(rev, kv, key, value, len, NULL, 0, true);
    if (st != SL_ERR_CONFLICT)
        goto out;
    /* A delete or purge marker is "no value": write over that revision. */
    st = last_raw(&seq, &live, kv, key);
    if (st == SL_OK && !live)
        st = kv_write(rev, kv, key, value, len, NULL, seq, false);
    else if (st == SL_OK || st == SL_ERR_NOT_FOUND)
        st = SL_ERR_CONFLICT;
    if (st == SL_ERR_CONFLICT)
        st = sl_error_set(SL_ERR_EXISTS, "kv %s/%s already exists", kv->bucket, key);
out:
    return st;
}

sl_status sl_kv_update(uint64_t *rev, sl_kv *kv, const char *key, const void *value, size_t len,
                       uint64_t last)
{
    if (last == 0)
        return sl_error_set(SL_ERR_INVALID, "kv update %s/%s: revision 0", kv->bucket, key);
    return kv_write(rev, kv, key, value, len, NULL, last, false);
}

sl_status sl_kv_delete(uint64_t *rev, sl_kv *kv, const char *key, uint64_t last)
{
    return kv_write(rev, kv, key, NULL, 0, "DEL", last, false);
}

sl_status sl_kv_purge(uint64_t *rev, sl_kv *kv, const char *key, uint64_t last)
{
    return kv_write(rev, kv, key, NULL, 0, "PURGE", last, false);
}

void sl_kv_keys_free(char **keys, size_t count)
{
    for (size_t i = 0; keys != NULL && i < count; i++)
        free(keys[i]);
    free(keys);
}

sl_status sl_kv_keys(char ***keys, size_t *count, sl_kv *kv, int64_t timeout_ms)
{
    sl_status st = SL_OK;
    kvKeysList list = {0};
    kvWatchOptions o;
    char **out = NULL;
    natsStatus s;

    kvWatchOptions_Init(&o);
    o.Timeout = timeout_ms;
    s = kvStore_Keys(&list, kv->store, &o);
    if (s == NATS_NOT_FOUND) {
        /* nats.c reports an empty bucket as "not found". */
        *keys = NULL;
        *count = 0;
        goto out;
    }
    if (s != NATS_OK) {
        st = sl_nats_error(s, "kv keys %s", kv->bucket);
        goto out;
    }
    if (list.Count > 0) {
        out = calloc((size_t)list.Count, sizeof(char *));
        if (out == NULL) {
            st = sl_error_set(SL_ERR_NOMEM, "kv keys %s", kv->bucket);
            goto out;
        }
        /* Take the strings over from the list. */
        for (int i = 0; i < list.Count; i++) {
            out[i] = list.Keys[i];
            list.Keys[i] = NULL;
        }
    }
    *keys = out;
    *count = (size_t)list.Count;
out:
    kvKeysList_Destroy(&list);
    return st;
}

/* ---- watches ---------------------------------------------------------- */

struct sl_kv_watch {
    sl_kv *kv;
    kvWatcher *nw;
    atomic_bool stopped;
    /* push mode */
    sl_loop *loop;
    sl_kv_watch_handlers h;
    void *ud;
    pthread_t thread;
    bool has_thread;
};

enum ev_type { EV_ENTRY, EV_INITIAL_DONE, EV_FAILED };

struct watch_event {
    sl_kv_watch *w;
    enum ev_type type;
    sl_kv_entry entry;
    sl_status st;
    char msg[256];
};

sl_status sl_kv_watch_new(sl_kv_watch **out, sl_kv *kv, const sl_kv_watch_opts *opts)
{
    sl_status st = SL_OK;
    sl_kv_watch *w = calloc(1, sizeof(*w));
    const char *keys = opts != NULL && opts->keys != NULL ? opts->keys : ">";
    kvWatchOptions o;
    natsStatus s;

    if (w == NULL) {
        st = sl_error_set(SL_ERR_NOMEM, "kv watch %s", kv->bucket);
        goto out;
    }
    w->kv = kv;
    atomic_init(&w->stopped, false);
    kvWatchOptions_Init(&o);
    o.IgnoreDeletes = opts != NULL && opts->ignore_deletes;
    s = kvStore_Watch(&w->nw, kv->store, keys, &o);
    if (s != NATS_OK) {
        st = sl_nats_error(s, "kv watch %s/%s", kv->bucket, keys);
        free(w);
        goto out;
    }
    *out = w;
out:
    return st;
}

sl_status sl_kv_watch_next(sl_kv_entry *e, bool *initial_done, sl_kv_watch *w, int64_t timeout_ms)
{
    sl_status st = SL_OK;
    kvEntry *ne = NULL;
    natsStatus s;
    int64_t deadline;

    memset(e, 0, sizeof(*e));
    *initial_done = false;
    if (timeout_ms <= 0) {
        st = sl_error_set(SL_ERR_INVALID, "kv watch: timeout must be > 0");
        goto out;
    }
    deadline = nats_Now() + timeout_ms;
    /* Wait in short slices and look at the stop flag in between, rather
     * than waking the reader with kvWatcher_Stop(): nats.c 3.4.1 leaks a
     * message that arrives while kvWatcher_Next() is being stopped. */
    for (;;) {
        int64_t left = deadline - nats_Now();
        if (atomic_load(&w->stopped)) {
            st = SL_ERR_CLOSED;
            goto out;
        }
        if (left <= 0) {
            st = SL_ERR_TIMEOUT;
            goto out;
        }
        s = kvWatcher_Next(&ne, w->nw, left < WATCH_SLICE_MS ? left : WATCH_SLICE_MS);
        if (s != NATS_TIMEOUT)
            break;
    }
    if (s == NATS_OK && ne == NULL)
        *initial_done = true;
    else if (s == NATS_OK)
        fill_entry(e, ne);
    else
        st = sl_nats_error(s, "kv watch %s", w->kv->bucket);
out:
    return st;
}

void sl_kv_watch_stop(sl_kv_watch *w)
{
    /* The reader notices within WATCH_SLICE_MS (see sl_kv_watch_next()). */
    atomic_store(&w->stopped, true);
    /* Push mode: drop what is queued and wait for a handler running on
     * another thread. Whatever the watch thread still posts is dropped by
     * event_deliver(), which sees the flag. */
    if (w->loop != NULL)
        sl_loop_cancel(w->loop, w);
}

static void event_free(void *ud)
{
    struct watch_event *ev = ud;

    sl_kv_entry_deinit(&ev->entry);
    free(ev);
}

/* Runs on the loop. A stopped watch delivers nothing; the handler may free
 * the watch, so w is not touched after the call. */
static void event_deliver(void *ud)
{
    struct watch_event *ev = ud;
    sl_kv_watch *w = ev->w;

    if (!atomic_load(&w->stopped)) {
        switch (ev->type) {
        case EV_ENTRY:
            w->h.entry(w, &ev->entry, w->ud);
            break;
        case EV_INITIAL_DONE:
            if (w->h.initial_done != NULL)
                w->h.initial_done(w, w->ud);
            break;
        case EV_FAILED:
            if (w->h.failed != NULL)
                w->h.failed(w, ev->st, ev->msg, w->ud);
            break;
        }
    }
    event_free(ev);
}

static void *watch_main(void *arg)
{
    sl_kv_watch *w = arg;

    for (;;) {
        struct watch_event *ev = calloc(1, sizeof(*ev));
        bool init = false;
        sl_status st;

        if (ev == NULL) {
            sl_log_error("kv", "watch out of memory, stopping", "bucket=%s", w->kv->bucket);
            break;
        }
        ev->w = w;
        st = sl_kv_watch_next(&ev->entry, &init, w, WATCH_POLL_MS);
        if (st == SL_ERR_TIMEOUT) {
            free(ev);
            continue;
        }
        if (st == SL_ERR_CLOSED) {
            free(ev);
            break;
        }
        if (st != SL_OK) {
            ev->type = EV_FAILED;
            ev->st = st;
            snprintf(ev->msg, sizeof(ev->msg), "%s", sl_error_msg());
            sl_log_error("kv", "watch failed", "bucket=%s err=%s", w->kv->bucket,
                         sl_log_q(ev->msg));
        } else {
            ev->type = init ? EV_INITIAL_DONE : EV_ENTRY;
        }
        if (sl_loop_post(w->loop, w, event_deliver, event_free, ev) != SL_OK) {
            event_free(ev);
            sl_log_error("kv", "watch cannot queue an event, stopping", "bucket=%s",
                         w->kv->bucket);
            break;
        }
        if (st != SL_OK)
            break;
    }
    return NULL;
}

sl_status sl_kv_watch_start(sl_kv_watch **out, sl_kv *kv, const sl_kv_watch_opts *opts,
                            sl_loop *loop, const sl_kv_watch_handlers *handlers, void *ud)
{
    sl_status st;
    sl_kv_watch *w = NULL;
    int rc;

    if (loop == NULL || handlers == NULL || handlers->entry == NULL)
        return sl_error_set(SL_ERR_INVALID, "kv watch: loop and entry handler required");
    st = sl_kv_watch_new(&w, kv, opts);
    if (st != SL_OK)
        goto out;
    w->loop = loop;
    w->h = *handlers;
    w->ud = ud;
    rc = pthread_create(&w->thread, NULL, watch_main, w);
    if (rc != 0) {
        st = sl_error_set(SL_ERR_IO, "kv watch thread: %s", strerror(rc));
        sl_kv_watch_free(w);
        goto out;
    }
    w->has_thread = true;
    *out = w;
out:
    return st;
}

void sl_kv_watch_free(sl_kv_watch *w)
{
    if (w == NULL)
        return;
    sl_kv_watch_stop(w);
    if (w->has_thread)
        pthread_join(w->thread, NULL);
    /* Drops queued events and waits for one being delivered on another
     * thread; after this no handler of w runs. No thread is inside
     * kvWatcher_Next() any more, so destroying (and stopping) is safe. */
    if (w->loop != NULL)
        sl_loop_cancel(w->loop, w);
    kvWatcher_Destroy(w->nw);
    free(w);
}

sl_status sl_kv_purge_history(sl_kv *kv, const char *key, uint64_t keep)
{
    jsOptions o;
    jsErrCode jerr = 0;
    char *subject = NULL;
    natsStatus s;
    sl_status st = SL_OK;
    if (!sl_kv_key_valid(key))
        return sl_error_set(SL_ERR_INVALID, "kv %s: bad key '%s'", kv->bucket, key ? key : "(null)");
    if (asprintf(&subject, "%s%s", kv->prefix, key) < 0)
        return sl_error_set(SL_ERR_NOMEM, "kv %s/%s", kv->bucket, key);
    jsOptions_Init(&o);
    o.Stream.Purge.Subject = subject;
    o.Stream.Purge.Keep = keep;
    if ((s = js_PurgeStream(sl_nats_js(kv->nc), kv->stream, &o, &jerr)) != NATS_OK)
        st = sl_nats_error(s, "kv %s/%s: purge history (jetstream error %d)", kv->bucket, key, (int)jerr);
    free(subject);
    return st;
}
