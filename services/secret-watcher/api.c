/* api.c - sluice.api.secret.apply / .delete: Secrets by NATS (see api.h). */
#include "api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/arena.h"
#include "sluice/envelope.h"
#include "sluice/kinds.h"
#include "sluice/log.h"
#include "sluice/quarantine.h"
#include "sluice/pbcheck.h"
#include "sluice/report.h"
#include "sluice/resource.h"
#include "sluice/secrets.h"
#include "sluice/service.h"
#include "sluice/v1/events.pb-c.h"

#define HDR_FILENAME "Sluice-Filename"
#define HDR_DRY_RUN "Sluice-Dry-Run"
#define SW_SOURCE "sluice-secret-watcher"
/* Resources one request may carry. */
#define MAX_RESOURCES 256

struct sw_api {
    sl_nats *nc;
    sl_kv *kv;
    pthread_mutex_t *lock;
    const char *ns;
    sw_api_counters counters;
    sl_loop *loop;
    pthread_t thread;
    bool running;
    sl_subscription *sub_apply, *sub_delete;
    sl_arena arena; /* one request's reply; reset after it */
};

void sw_report_publish(sl_nats *nc, const char *key, Sluice__V1__Status__State state, const char *reason,
                       bool withdrawn)
{
    sl_resource_id id;
    if (!key[0] || sl_resource_key_parse(&id, key, 1) != SL_OK)
        return;
    rep_report rr;
    Sluice__V1__Report *r = rep_report_init(&rr, "secret-watcher", "Secret", id.ns, id.name, state, reason);
    r->withdrawn = withdrawn;
    char subject[SL_RESOURCE_KEY_MAX + 64];
    sl_envelope_opts o = {.source = SW_SOURCE};
    if (sl_resource_subject(subject, sizeof subject, "sluice.report.secret-watcher", "Secret", id.ns, id.name) !=
            SL_OK ||
        sl_envelope_publish_pb(nc, subject, &r->base, &o) != SL_OK)
        sl_log_warn("report", "publish failed", "key=%s err=%s", key, sl_log_q(sl_error_msg()));
}

/* Counts one in c when there is one. */
static void count(sl_counter *c)
{
    if (c)
        sl_counter_inc(c);
}

static bool header_true(natsMsg *msg, const char *name)
{
    const char *v = NULL;
    return natsMsgHeader_Get(msg, name, &v) == NATS_OK && v && (!strcmp(v, "true") || !strcmp(v, "1"));
}

/* A result about key (or about an unnamed resource when key is ""). */
static Sluice__V1__ResourceResult *result_new(sw_api *a, const char *key)
{
    Sluice__V1__ResourceResult *r = sl_arena_alloc(&a->arena, sizeof *r);
    Sluice__V1__ObjectRef *o = sl_arena_alloc(&a->arena, sizeof *o);
    sl_resource_id id;
    if (!r || !o)
        return NULL;
    sluice__v1__resource_result__init(r);
    sluice__v1__object_ref__init(o);
    o->kind = "Secret";
    if (key[0] && sl_resource_key_parse(&id, key, 1) == SL_OK) {
        o->namespace_ = sl_arena_strdup(&a->arena, id.ns);
        o->name = sl_arena_strdup(&a->arena, id.name);
    }
    r->resource = o;
    r->state = SLUICE__V1__STATUS__STATE__Accepted;
    return r;
}

static void result_error(sw_api *a, Sluice__V1__ResourceResult *r, const char *msg)
{
    r->state = SLUICE__V1__STATUS__STATE__Rejected;
    r->errors = sl_arena_alloc(&a->arena, sizeof *r->errors);
    if (r->errors && (r->errors[0] = sl_arena_strdup(&a->arena, msg)))
        r->n_errors = 1;
}

/* The stored secret at key (NULL: none or not decodable), its revision,
 * whether there is one, and whether its bytes are same_as's (when given). */
static Sluice__V1__Secret *stored_secret(sw_api *a, const char *key, uint64_t *rev, bool *exists,
                                         const sec_item *same_as, bool *same)
{
    sl_kv_entry e = {0};
    *exists = false;
    *rev = 0;
    if (sl_kv_get(&e, a->kv, key) != SL_OK)
        return NULL;
    *exists = true;
    *rev = e.revision;
    if (same_as)
        *same = e.len == same_as->len && !memcmp(e.value, same_as->value, e.len);
    ProtobufCMessage *m = NULL;
    if (sl_pb_unpack(&m, &sluice__v1__secret__descriptor, NULL, e.value, e.len) != SL_OK) {
        sl_quarantine q = {a->nc, "secret-watcher", NULL};
        sl_quarantine_value(&q, sl_kv_bucket(a->kv), key, e.revision, sl_error_msg());
        m = NULL;
    }
    sec_wipe((void *)e.value, e.len);
    sl_kv_entry_deinit(&e);
    return (Sluice__V1__Secret *)m;
}

/* Why key may not be changed through the API ("" when it may): the
 * secret-watcher directory that holds it. */
static void owned_by_dir(char *why, size_t n, const Sluice__V1__Secret *s, const char *key)
{
    const char *dir = sec_secret_annotation(s, SEC_DIR_ANNOTATION);
    const char *file = sec_secret_annotation(s, SEC_SOURCE_ANNOTATION);
    sl_resource_id id;
    why[0] = 0;
    if (dir && sl_resource_key_parse(&id, key, 1) == SL_OK)
        snprintf(why, n,
                 "Secret %s/%s comes from the secret-watcher directory %s (file %s): change it there, not "
                 "through the API",
                 id.ns, id.name, dir, file ? file : "?");
}

/* Stores one checked item (unless dry run) and fills r. */
static void apply_item(sw_api *a, const sec_item *it, Sluice__V1__ResourceResult *r, bool dry_run)
{
    uint64_t rev = 0;
    bool exists = false;
    char why[1400];
    bool same = false;
    Sluice__V1__Secret *old = stored_secret(a, it->key, &rev, &exists, it, &same);
    owned_by_dir(why, sizeof why, old, it->key);
    sec_secret_free(old);
    if (why[0]) {
        result_error(a, r, why);
        return;
    }
    r->created = !exists;
    r->unchanged = same;
    if (dry_run)
        return;
    if (r->unchanged) { /* a refused attempt since may have reported Rejected */
        sw_report_publish(a->nc, it->key, SLUICE__V1__STATUS__STATE__Accepted, "", false);
        return;
    }
    sl_status st = exists ? sl_kv_update(&rev, a->kv, it->key, it->value, it->len, rev)
                          : sl_kv_create(&rev, a->kv, it->key, it->value, it->len);
    if (st != SL_OK) {
        snprintf(why, sizeof why, "%s: not stored (%s)", it->key,
                 st == SL_ERR_CONFLICT || st == SL_ERR_EXISTS ? "changed meanwhile, retry" : sl_status_str(st));
        result_error(a, r, why);
        return;
    }
    char rv[32];
    snprintf(rv, sizeof rv, "%llu", (unsigned long long)rev);
    r->resource_version = sl_arena_strdup(&a->arena, rv);
    sl_log_info("api", "secret stored", "key=%s rev=%s bytes=%zu", it->key, rv, it->len);
    count(a->counters.writes);
    sw_report_publish(a->nc, it->key, SLUICE__V1__STATUS__STATE__Accepted, "", false);
}

/* The request's documents or resources, checked, into set; a
 * request-level error in why. */
static sl_status decode_apply(sw_api *a, const sl_envelope *env, natsMsg *msg, sec_set *set, bool *dry_run,
                              char *why, size_t nwhy)
{
    char source[200];
    snprintf(source, sizeof source, "api:%s", env->source[0] ? env->source : "unknown");
    sec_source src = {.label = "<request>", .ns = a->ns, .dir = NULL, .source = source, .only_secrets = true};
    *dry_run = header_true(msg, HDR_DRY_RUN);
    if (env->content_type == SL_CT_YAML || env->content_type == SL_CT_JSON) {
        const char *fname = NULL;
        if (natsMsgHeader_Get(msg, HDR_FILENAME, &fname) == NATS_OK && fname && fname[0])
            src.label = fname;
        sec_parse_text(set, (const char *)env->data, env->len, &src);
        return SL_OK;
    }
    ProtobufCMessage *m = NULL;
    if (env->proto[0] && strcmp(env->proto, sluice__v1__apply_request__descriptor.name) != 0) {
        snprintf(why, nwhy, "request is not a sluice.v1.ApplyRequest (proto=%s)", env->proto);
        return SL_ERR_INVALID;
    }
    if (sl_pb_unpack(&m, &sluice__v1__apply_request__descriptor, NULL, env->data, env->len) != SL_OK) {
        snprintf(why, nwhy, "request is not a sluice.v1.ApplyRequest: %s", sl_error_msg());
        return SL_ERR_PARSE;
    }
    Sluice__V1__ApplyRequest *req = (Sluice__V1__ApplyRequest *)m;
    *dry_run = *dry_run || req->dry_run;
    if (req->source && req->source[0])
        snprintf(source, sizeof source, "api:%s", req->source);
    sl_status rc = SL_OK;
    if (req->n_resources > MAX_RESOURCES) {
        snprintf(why, nwhy, "%zu resources in one request; at most %d", req->n_resources, MAX_RESOURCES);
        rc = SL_ERR_INVALID;
    }
    for (size_t i = 0; rc == SL_OK && i < req->n_resources; i++) {
        Google__Protobuf__Any *any = req->resources[i];
        char where[64];
        snprintf(where, sizeof where, "resources[%zu]", i);
        ProtobufCMessage *sm = NULL;
        if (strcmp(any->type_url, "type.googleapis.com/sluice.v1.Secret") != 0) {
            snprintf(why, nwhy, "%s: only sluice.v1.Secret resources are taken here", where);
            rc = SL_ERR_INVALID;
        } else if (sl_pb_unpack(&sm, &sluice__v1__secret__descriptor, NULL, any->value.data, any->value.len) !=
                   SL_OK) {
            snprintf(why, nwhy, "%s: not a sluice.v1.Secret", where);
            rc = SL_ERR_PARSE;
        } else {
            sec_add_message(set, (Sluice__V1__Secret *)sm, where, &src);
            sec_secret_free((Sluice__V1__Secret *)sm);
        }
    }
    for (size_t i = 0; i < req->n_resources; i++)
        sec_wipe(req->resources[i]->value.data, req->resources[i]->value.len);
    protobuf_c_message_free_unpacked(m, NULL);
    return rc;
}

static void respond(sw_api *a, const sl_envelope *env, const ProtobufCMessage *m)
{
    if (env->reply && sl_envelope_respond_pb(a->nc, env, m, SW_SOURCE) != SL_OK)
        sl_log_warn("api", "reply failed", "err=%s", sl_log_q(sl_error_msg()));
}

static void on_apply(sl_subscription *sub, sl_status st, const sl_envelope *env, natsMsg *msg, void *ud)
{
    sw_api *a = ud;
    Sluice__V1__ApplyResponse resp = SLUICE__V1__APPLY_RESPONSE__INIT;
    char why[1200] = "";
    bool dry_run = false;
    sec_set set;
    (void)sub;
    sec_set_init(&set);
    pthread_mutex_lock(a->lock);
    if (st != SL_OK)
        snprintf(why, sizeof why, "bad request headers: %s", sl_error_msg());
    else if (decode_apply(a, env, msg, &set, &dry_run, why, sizeof why) == SL_OK && set.n > MAX_RESOURCES)
        snprintf(why, sizeof why, "%zu documents in one request; at most %d", set.n, MAX_RESOURCES);
    if (why[0]) {
        resp.error = why;
        goto reply;
    }
    resp.results = sl_arena_alloc(&a->arena, (set.n ? set.n : 1) * sizeof *resp.results);
    resp.accepted = resp.results != NULL;
    for (size_t i = 0; resp.results && i < set.n; i++) {
        const sec_item *it = &set.items[i];
        Sluice__V1__ResourceResult *r = result_new(a, it->key);
        if (!r)
            break;
        resp.results[resp.n_results++] = r;
        if (it->error)
            result_error(a, r, it->error);
        else
            apply_item(a, it, r, dry_run);
        if (r->state == SLUICE__V1__STATUS__STATE__Rejected) {
            resp.accepted = false;
            count(a->counters.invalid);
            sl_log_warn("api", "secret refused", "key=%s reason=%s dry_run=%d", it->key[0] ? it->key : "-",
                        sl_log_q(r->errors && r->n_errors ? r->errors[0] : ""), dry_run);
            if (!dry_run)
                sw_report_publish(a->nc, it->key, SLUICE__V1__STATUS__STATE__Rejected,
                                  r->n_errors ? r->errors[0] : "", false);
        }
    }
    if (!set.n) {
        snprintf(why, sizeof why, "no Secret in the request");
        resp.error = why;
        resp.accepted = false;
    }
reply:
    respond(a, env, &resp.base);
    pthread_mutex_unlock(a->lock);
    sec_set_deinit(&set);
    sl_arena_reset(&a->arena);
}

/* Deletes one secret the API may delete (unless dry run); fills r. */
static void delete_one(sw_api *a, const Sluice__V1__ObjectRef *o, Sluice__V1__ResourceResult *r, bool dry_run)
{
    char key[SL_RESOURCE_KEY_MAX], why[1400];
    const char *ns = o->namespace_ && o->namespace_[0] ? o->namespace_ : a->ns;
    uint64_t rev = 0;
    bool exists = false;
    if (strcmp(o->kind, "Secret") != 0) {
        snprintf(why, sizeof why, "only Secrets are deleted here, not %s (sluice.api.delete takes those)",
                 o->kind[0] ? o->kind : "(no kind)");
        result_error(a, r, why);
        return;
    }
    if (sl_kind_key(key, sizeof key, sl_kind_by_name("Secret"), ns, o->name) != SL_OK) {
        result_error(a, r, sl_error_msg());
        return;
    }
    r->resource->namespace_ = sl_arena_strdup(&a->arena, ns);
    r->resource->name = sl_arena_strdup(&a->arena, o->name);
    Sluice__V1__Secret *old = stored_secret(a, key, &rev, &exists, NULL, NULL);
    owned_by_dir(why, sizeof why, old, key);
    sec_secret_free(old);
    if (!exists)
        snprintf(why, sizeof why, "Secret %s/%s not found", ns, o->name);
    if (why[0]) {
        result_error(a, r, why);
        return;
    }
    if (dry_run)
        return;
    if (sl_kv_delete(NULL, a->kv, key, rev) != SL_OK) {
        snprintf(why, sizeof why, "Secret %s/%s: not deleted (%s)", ns, o->name, sl_error_msg());
        result_error(a, r, why);
        return;
    }
    sl_log_info("api", "secret deleted", "key=%s", key);
    count(a->counters.deletes);
    sw_report_publish(a->nc, key, SLUICE__V1__STATUS__STATE__Pending, NULL, true);
}

static void on_delete(sl_subscription *sub, sl_status st, const sl_envelope *env, natsMsg *msg, void *ud)
{
    sw_api *a = ud;
    Sluice__V1__DeleteResponse resp = SLUICE__V1__DELETE_RESPONSE__INIT;
    ProtobufCMessage *m = NULL;
    char why[600] = "";
    (void)sub;
    pthread_mutex_lock(a->lock);
    if (st != SL_OK)
        snprintf(why, sizeof why, "bad request headers: %s", sl_error_msg());
    else if (env->content_type != SL_CT_PROTOBUF && env->content_type != SL_CT_NONE)
        snprintf(why, sizeof why, "send a protobuf sluice.v1.DeleteRequest");
    else if (sl_pb_unpack(&m, &sluice__v1__delete_request__descriptor, NULL, env->data, env->len) != SL_OK)
        snprintf(why, sizeof why, "request is not a sluice.v1.DeleteRequest: %s", sl_error_msg());
    else if (((Sluice__V1__DeleteRequest *)m)->n_resources > MAX_RESOURCES)
        snprintf(why, sizeof why, "more than %d resources in one request", MAX_RESOURCES);
    if (why[0]) {
        resp.error = why;
        goto reply;
    }
    Sluice__V1__DeleteRequest *req = (Sluice__V1__DeleteRequest *)m;
    bool dry_run = req->dry_run || header_true(msg, HDR_DRY_RUN);
    resp.results = sl_arena_alloc(&a->arena, (req->n_resources ? req->n_resources : 1) * sizeof *resp.results);
    resp.accepted = resp.results != NULL;
    for (size_t i = 0; resp.results && i < req->n_resources; i++) {
        Sluice__V1__ResourceResult *r = result_new(a, "");
        if (!r)
            break;
        resp.results[resp.n_results++] = r;
        delete_one(a, req->resources[i], r, dry_run);
        resp.accepted = resp.accepted && r->state != SLUICE__V1__STATUS__STATE__Rejected;
    }
reply:
    respond(a, env, &resp.base);
    pthread_mutex_unlock(a->lock);
    if (m)
        protobuf_c_message_free_unpacked(m, NULL);
    sl_arena_reset(&a->arena);
}

static void *api_main(void *ud)
{
    sl_loop_run(ud);
    return NULL;
}

sl_status sw_api_start(sw_api **out, sl_nats *nc, sl_kv *kv, pthread_mutex_t *lock, const char *ns,
                       const char *queue, const sw_api_counters *counters)
{
    sw_api *a = calloc(1, sizeof *a);
    *out = NULL;
    if (!a)
        return sl_error_set(SL_ERR_NOMEM, "secret API");
    a->nc = nc;
    a->kv = kv;
    a->lock = lock;
    a->ns = ns;
    if (counters)
        a->counters = *counters;
    sl_arena_init(&a->arena, 0);
    sl_status rc = sl_loop_new(&a->loop);
    if (rc == SL_OK && pthread_create(&a->thread, NULL, api_main, a->loop) != 0)
        rc = sl_error_set(SL_ERR_INTERNAL, "secret API: cannot start its thread");
    a->running = rc == SL_OK;
    if (rc == SL_OK)
        rc = sl_envelope_subscribe(&a->sub_apply, nc, SW_SUBJECT_APPLY, queue, a->loop, on_apply, a);
    if (rc == SL_OK)
        rc = sl_envelope_subscribe(&a->sub_delete, nc, SW_SUBJECT_DELETE, queue, a->loop, on_delete, a);
    if (rc != SL_OK) {
        sw_api_free(a);
        return rc;
    }
    *out = a;
    return SL_OK;
}

void sw_api_free(sw_api *a)
{
    if (!a)
        return;
    sl_subscription_free(a->sub_apply);
    sl_subscription_free(a->sub_delete);
    if (a->running) {
        sl_loop_stop(a->loop);
        pthread_join(a->thread, NULL);
    }
    sl_loop_free(a->loop);
    sl_arena_deinit(&a->arena);
    free(a);
}
