/* discover.c - the worker: which upstreams, their documents (URL, inline, probing), writes and reports. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fds.h"
#include "sluice/backoff.h"
#include "sluice/envelope.h"
#include "sluice/lambda.h"
#include "sluice/kinds.h"
#include "sluice/log.h"
#include "sluice/pbcheck.h"
#include "sluice/resource.h"
#include "sluice/secrets.h"
#include "sluice/upstreams.h"
#include "sluice/v1/endpoints.pb-c.h"
#include "sluice/v1/events.pb-c.h"
#include "sluice/v1/secret.pb-c.h"
#include "sluice/v1/settings.pb-c.h"

#define COMP "fds"
#define MAX_BASES 3

/* Gloo's well-known document paths, then OpenAPI 3's usual ones. */
static const char *const probe_paths[] = {"/swagger.json", "/swagger/docs/v1", "/swagger/docs/v2", "/v1/swagger",
                                          "/v2/swagger", "/openapi.json", "/openapi.yaml"};

int64_t fd_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Gloo's selection (projects/discovery/pkg/fds/syncer): BLACKLIST takes
 * every upstream but those labelled disabled (and those in kube-system or
 * kube-public unless labelled enabled), WHITELIST only those labelled
 * enabled. Sluice has no Namespace resources, so namespace labels do not
 * count. */
bool fd_selected(int mode, const Sluice__V1__Upstream *u)
{
    const char *v = sl_kind_label(u->metadata, FD_LABEL), *ns = u->metadata ? u->metadata->namespace_ : "";
    bool enabled = v && !strcmp(v, "enabled"), disabled = v && !strcmp(v, "disabled");
    switch (mode) {
    case SLUICE__V1__DISCOVERY_OPTIONS__FDS_MODE__BLACKLIST: {
        bool kube = ns && (!strcmp(ns, "kube-system") || !strcmp(ns, "kube-public"));
        return (!kube || enabled) && !disabled;
    }
    case SLUICE__V1__DISCOVERY_OPTIONS__FDS_MODE__WHITELIST:
        return enabled;
    default:
        return false;
    }
}

/* Base URLs to probe: a static upstream's hosts, else the endpoints that
 * endpoint discovery stored for it. */
static size_t base_urls(fd *s, const Sluice__V1__Upstream *u, char out[MAX_BASES][512])
{
    size_t n = 0;
    const Sluice__V1__UpstreamSpec *sp = u->spec;
    if (sp->upstream_type_case == SLUICE__V1__UPSTREAM_SPEC__UPSTREAM_TYPE_STATIC && sp->static_) {
        const Sluice__V1__StaticUpstreamSpec *st = sp->static_;
        for (size_t i = 0; i < st->n_hosts && n < MAX_BASES; i++) {
            const Sluice__V1__Host *h = st->hosts[i];
            bool tls = sp->ssl_config || (st->use_tls ? st->use_tls->value : h->port == 443);
            bool v6 = strchr(h->addr, ':') != NULL;
            snprintf(out[n++], 512, "%s://%s%s%s:%u", tls ? "https" : "http", v6 ? "[" : "", h->addr, v6 ? "]" : "",
                     h->port);
        }
        return n;
    }
    /* dns and etcd: the endpoints discovery found */
    if (!sl_upstream_spec_discovered(sp) || !u->metadata)
        return 0;
    const Google__Protobuf__BoolValue *use_tls = sl_upstream_spec_use_tls(sp);
    bool tls = sp->ssl_config || (use_tls && use_tls->value);
    char key[600];
    sl_kv_entry e = {0};
    ProtobufCMessage *m = NULL;
    pthread_mutex_lock(&s->bind_mu);
    if (!s->endpoints_kv)
        sl_kv_bind(&s->endpoints_kv, s->nc, s->endpoints_bucket);
    pthread_mutex_unlock(&s->bind_mu);
    if (!s->endpoints_kv)
        return 0;
    snprintf(key, sizeof key, "%s.%s", u->metadata->namespace_, u->metadata->name);
    if (sl_kv_get(&e, s->endpoints_kv, key) != SL_OK) {
        sl_kv_entry_deinit(&e);
        return 0;
    }
    if (sl_pb_unpack(&m, &sluice__v1__endpoint_set__descriptor, NULL, e.value, e.len) != SL_OK) {
        fd_quarantine(s, s->endpoints_bucket, key, e.revision);
    } else {
        const Sluice__V1__EndpointSet *es = (const Sluice__V1__EndpointSet *)m;
        for (size_t i = 0; es->spec && i < es->spec->n_endpoints && n < MAX_BASES; i++) {
            const Sluice__V1__Endpoint *ep = es->spec->endpoints[i];
            bool v6 = strchr(ep->address, ':') != NULL;
            snprintf(out[n++], 512, "%s://%s%s%s:%u", tls ? "https" : "http", v6 ? "[" : "", ep->address,
                     v6 ? "]" : "", ep->port);
        }
        protobuf_c_message_free_unpacked(m, NULL);
    }
    sl_kv_entry_deinit(&e);
    return n;
}

typedef struct doc_result {
    sl_openapi_doc doc;
    char url[1024];   /* where it came from, "" for inline */
    bool probed;      /* found by probing (not named by the upstream) */
    bool not_found;   /* probing found nothing (not an error for an upstream that never had one) */
    uint64_t ok_rev;  /* in: the revision checked, when the cached document was good for it (else 0) */
    bool unchanged;   /* the server said 304 for that revision: nothing to parse, merge or write */
    char error[1100]; /* why there is no document */
} doc_result;

static sl_status fetch_parse(fd *s, fd_upstream *e, doc_result *r, const char *url, const fd_tls *t)
{
    fd_fetch_opts o = {.connect_timeout_ms = s->connect_timeout_ms, .timeout_ms = s->timeout_ms,
                       .max_bytes = (size_t)s->max_doc_kb * 1024, .ca_pem = t->ca, .cert_pem = t->cert,
                       .key_pem = t->key, .sni = t->sni};
    sl_openapi_limits lim = {.max_bytes = o.max_bytes};
    char *body;
    size_t len;
    bool nm;
    sl_status rc = fd_fetch(&body, &len, &nm, url, &e->cache, &o);
    if (rc == SL_OK) {
        if (nm)
            sl_counter_inc(s->c_not_modified);
        if (nm && r->ok_rev) {
            r->unchanged = true;
            free(body);
            snprintf(r->url, sizeof r->url, "%s", url);
            return SL_OK;
        }
        rc = sl_openapi_parse(&r->doc, body, len, &lim);
        if (rc != SL_OK)
            sl_error_set(rc, "%s: %s", url, sl_error_msg());
        free(body);
    }
    if (rc == SL_OK)
        snprintf(r->url, sizeof r->url, "%s", url);
    return rc;
}

/* The upstream's document: swaggerInfo.url or inline, else probing. */
static void get_document(fd *s, fd_upstream *e, const Sluice__V1__Upstream *u, const Sluice__V1__ServiceSpec *ss,
                         const fd_tls *t, const char *tls_why, doc_result *r)
{
    const Sluice__V1__RestServiceSpec__SwaggerInfo *si =
        ss && ss->plugin_type_case == SLUICE__V1__SERVICE_SPEC__PLUGIN_TYPE_REST && ss->rest ? ss->rest->swagger_info
                                                                                            : NULL;
    char bases[MAX_BASES][512], url[1100];
    if (si && si->swagger_spec_case == SLUICE__V1__REST_SERVICE_SPEC__SWAGGER_INFO__SWAGGER_SPEC_INLINE) {
        sl_openapi_limits lim = {.max_bytes = (size_t)s->max_doc_kb * 1024};
        if (sl_openapi_parse(&r->doc, si->inline_, strlen(si->inline_), &lim) != SL_OK)
            snprintf(r->error, sizeof r->error, "swaggerInfo.inline: %s", sl_error_msg());
        return;
    }
    if (si && si->swagger_spec_case == SLUICE__V1__REST_SERVICE_SPEC__SWAGGER_INFO__SWAGGER_SPEC_URL) {
        if (tls_why && !strncmp(si->url, "https:", 6))
            snprintf(r->error, sizeof r->error, "GET %s: %s", si->url, tls_why);
        else if (fetch_parse(s, e, r, si->url, t) != SL_OK)
            snprintf(r->error, sizeof r->error, "%s", sl_error_msg());
        return;
    }
    /* probing: where it was found last time first */
    r->probed = true;
    if (tls_why && t->on) {
        r->not_found = true; /* a plain upstream says nothing; one whose functions were found, a Warning */
        snprintf(r->error, sizeof r->error, "probing for a document: %s", tls_why);
        return;
    }
    if (e->found_url && fetch_parse(s, e, r, e->found_url, t) == SL_OK)
        return;
    size_t nb = base_urls(s, u, bases);
    for (size_t b = 0; b < nb; b++)
        for (size_t p = 0; p < sizeof probe_paths / sizeof probe_paths[0]; p++) {
            snprintf(url, sizeof url, "%.511s%.63s", bases[b], probe_paths[p]);
            if (e->found_url && !strcmp(url, e->found_url))
                continue;
            if (fetch_parse(s, e, r, url, t) == SL_OK) {
                free(e->found_url);
                e->found_url = strdup(url);
                return;
            }
            sl_log_debug(COMP, "probe failed", "key=%s url=%s err=%s", e->key, url, sl_log_q(sl_error_msg()));
        }
    r->not_found = true;
    snprintf(r->error, sizeof r->error, "no OpenAPI/Swagger document at the well-known paths of %zu endpoint(s)",
             nb);
}

/* Publishes a report on the upstream when it differs from the last one;
 * true when it did. */
static bool report(fd *s, fd_upstream *e, const Sluice__V1__Upstream *u, uint64_t rev, int state, const char *reason,
                   char **warnings, size_t n_warnings)
{
    Sluice__V1__Report m = SLUICE__V1__REPORT__INIT;
    Sluice__V1__ObjectRef ref = SLUICE__V1__OBJECT_REF__INIT;
    Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
    char subject[600], rv[32];
    struct timespec now;
    snprintf(rv, sizeof rv, "%" PRIu64, rev);
    ref.kind = "Upstream";
    ref.namespace_ = u->metadata->namespace_;
    ref.name = u->metadata->name;
    m.resource = &ref;
    m.source = "function-discovery";
    m.state = (Sluice__V1__Status__State)state;
    m.reason = (char *)(reason ? reason : "");
    m.warnings = warnings;
    m.n_warnings = n_warnings;
    m.resource_version = rv;
    m.generation = u->metadata->generation;
    m.reporter_id = s->reporter_id;
    size_t len = protobuf_c_message_get_packed_size(&m.base);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf)
        return false;
    protobuf_c_message_pack(&m.base, buf);
    if (e->report && e->report_len == len && !memcmp(e->report, buf, len)) {
        free(buf);
        return false;
    }
    clock_gettime(CLOCK_REALTIME, &now);
    ts.seconds = now.tv_sec;
    ts.nanos = (int32_t)now.tv_nsec;
    m.time = &ts;
    if (sl_resource_subject(subject, sizeof subject, "sluice.report.function-discovery", "Upstream",
                            u->metadata->namespace_, u->metadata->name) != SL_OK ||
        sl_envelope_publish_pb(s->nc, subject, &m.base, NULL) != SL_OK) {
        sl_log_warn(COMP, "could not publish a report", "key=%s err=%s", e->key, sl_log_q(sl_error_msg()));
        free(buf);
        return false;
    }
    sl_counter_inc(s->c_reports);
    free(e->report);
    e->report = buf;
    e->report_len = len;
    return true;
}

static uint8_t *pack(const ProtobufCMessage *m, size_t *len)
{
    *len = protobuf_c_message_get_packed_size(m);
    uint8_t *b = malloc(*len ? *len : 1);
    if (b)
        protobuf_c_message_pack(m, b);
    return b;
}

/* How one source's functions go into an Upstream (fd_merge, fd_merge_grpc, fd_merge_lambda). */
typedef sl_status (*merge_fn)(Sluice__V1__Upstream *u, const void *found, const char *source, char **clashes);

static sl_status merge_rest(Sluice__V1__Upstream *u, const void *found, const char *source, char **clashes)
{
    const doc_result *r = found;
    (void)source;
    return fd_merge(u, &r->doc, r->probed ? r->url : NULL, r->url[0] ? r->url : "inline", clashes);
}

static sl_status merge_grpc(Sluice__V1__Upstream *u, const void *found, const char *source, char **clashes)
{
    (void)clashes;
    return fd_merge_grpc(u, found, source);
}

static sl_status merge_lambda(Sluice__V1__Upstream *u, const void *found, const char *source, char **clashes)
{
    return fd_merge_lambda(u, found, source, clashes);
}

/* Writes the functions found (n of them, from source) into the upstream
 * when they changed; *wrote_rev is the revision written (0: none needed or
 * failed). */
static sl_status write_functions(fd *s, fd_upstream *e, const uint8_t *val, size_t len, uint64_t rev, merge_fn merge,
                                 const void *found, size_t n, const char *source, char **clashes, uint64_t *wrote_rev)
{
    ProtobufCMessage *m = NULL;
    uint8_t *before = NULL, *after = NULL;
    size_t lb, la;
    sl_status rc;
    *wrote_rev = 0;
    if ((rc = sl_pb_unpack(&m, &sluice__v1__upstream__descriptor, NULL, val, len)) != SL_OK)
        return rc;
    Sluice__V1__Upstream *u = (Sluice__V1__Upstream *)m;
    before = pack(m, &lb);
    rc = merge(u, found, source, clashes);
    if (rc == SL_OK && before && (after = pack(m, &la)) && la == lb && !memcmp(before, after, la)) {
        sl_counter_inc(s->c_unchanged);
        goto out; /* the same functions: no write */
    }
    if (rc != SL_OK || !before || !after)
        goto out;
    free(after);
    u->metadata->generation = u->metadata->generation > 0 ? u->metadata->generation + 1 : 2;
    if (!(after = pack(m, &la))) {
        rc = sl_error_set(SL_ERR_NOMEM, "out of memory");
        goto out;
    }
    rc = sl_kv_update(wrote_rev, s->config_kv, e->key, after, la, rev);
    if (rc == SL_OK) {
        sl_counter_inc(s->c_writes);
        sl_log_info(COMP, "functions written", "key=%s rev=%" PRIu64 " functions=%zu source=%s", e->key,
                    *wrote_rev, n, sl_log_q(source));
    } else if (rc == SL_ERR_CONFLICT) {
        sl_counter_inc(s->c_conflicts);
    }
out:
    free(before);
    free(after);
    protobuf_c_message_free_unpacked(m, NULL);
    return rc;
}

/* Reports the outcome of a check that found functions: Accepted, or a
 * Warning listing the nw parts (warnings w) of the source that could not
 * be mapped ("<nw> <unmapped> could not be mapped to functions"), or the
 * functions not written because a person's have their names. */
static void report_found(fd *s, fd_upstream *e, const Sluice__V1__Upstream *u, uint64_t rev, char **w, size_t nw,
                         const char *unmapped, const char *clashes)
{
    char reason[1400] = "";
    char *extra[1] = {reason};
    if (clashes) {
        snprintf(reason, sizeof reason, "functions defined by hand are kept, the discovered ones of the same "
                                        "name are not written: %s", clashes);
        if (!nw)
            w = extra, nw = 1;
    } else if (nw)
        snprintf(reason, sizeof reason, "%zu %s could not be mapped to functions", nw, unmapped);
    report(s, e, u, rev, nw ? SLUICE__V1__STATUS__STATE__Warning : SLUICE__V1__STATUS__STATE__Accepted,
           reason, w, nw);
}

/* gRPC functions from server reflection on the upstream's first endpoint,
 * over TLS when the upstream speaks it (t; tls_why: why its TLS settings
 * could not be read, or NULL). had_spec: the upstream asks for them
 * (serviceSpec.grpc); else it only speaks HTTP/2 and a server without
 * reflection is no news. Descriptors a person wrote (no discovery
 * annotation) are left alone. */
static uint64_t check_grpc(fd *s, fd_upstream *e, const uint8_t *val, size_t len, uint64_t rev,
                           Sluice__V1__Upstream *u, bool had_spec, const fd_tls *t, const char *tls_why,
                           fd_outcome *out)
{
    char bases[MAX_BASES][512], target[600], src[700], reason[1800], why[1100] = "";
    sl_reflect_result res;
    uint64_t wrote = 0;
    Sluice__V1__GrpcServiceSpec *g = had_spec ? (*sl_upstream_service_spec_slot(u))->grpc : NULL;
    if (g && g->descriptors.len && !sl_kind_annotation(u->metadata, FD_ANN_SOURCE))
        return 0;
    size_t nb = base_urls(s, u, bases);
    const char *sep = nb ? strstr(bases[0], "://") : NULL;
    bool tls = t->on || (nb && !strncmp(bases[0], "https", 5));
    sl_reflect_tls rt = {.root_ca = t->ca, .cert_chain = t->cert, .private_key = t->key,
                         .server_name = t->sni[0] ? t->sni : NULL};
    snprintf(target, sizeof target, "%s", sep ? sep + 3 : "");
    sl_counter_inc(s->c_checks);
    if (!nb || tls_why)
        snprintf(why, sizeof why, "%s", !nb ? "no endpoint to ask" : tls_why);
    else if (sl_reflect_discover(&res, target, s->timeout_ms, tls ? &rt : NULL) != SL_OK)
        snprintf(why, sizeof why, "%s", sl_error_msg());
    if (why[0]) {
        if (!had_spec)
            return 0;
        snprintf(reason, sizeof reason, "gRPC reflection at %s%s: %s; the last functions are kept",
                 nb ? target : "(no endpoints)", tls ? " over TLS" : "", why);
        sl_counter_inc(s->c_failures);
        *out = FD_FAILED;
        if (report(s, e, u, rev, SLUICE__V1__STATUS__STATE__Warning, reason, NULL, 0))
            sl_log_warn(COMP, "reflection unavailable", "key=%s reason=%s", e->key, sl_log_q(reason));
        return 0;
    }
    snprintf(src, sizeof src, "grpc-reflection:%s", target);
    sl_status rc = write_functions(s, e, val, len, rev, merge_grpc, &res, res.n_services, src, NULL, &wrote);
    if (rc != SL_OK && rc != SL_ERR_CONFLICT) {
        sl_counter_inc(s->c_failures);
        *out = FD_FAILED;
        report(s, e, u, rev, SLUICE__V1__STATUS__STATE__Warning, sl_error_msg(), NULL, 0);
    } else if (rc == SL_OK) {
        *out = FD_OK;
        if (wrote)
            u->metadata->generation = u->metadata->generation > 0 ? u->metadata->generation + 1 : 2;
        report(s, e, u, wrote ? wrote : rev, SLUICE__V1__STATUS__STATE__Accepted, NULL, NULL, 0);
    }
    sl_reflect_result_deinit(&res);
    return wrote;
}

/* AWS credentials for a listing; wiped by creds_wipe(). */
typedef struct aws_creds {
    char access_key[257], secret_key[257], session_token[2049];
} aws_creds;

static void creds_wipe(aws_creds *c) { sec_wipe(c, sizeof *c); }

static bool creds_copy(aws_creds *c, const char *ak, const char *sk, const char *tok)
{
    size_t la = strlen(ak), ls = strlen(sk), lt = tok ? strlen(tok) : 0;
    if (la >= sizeof c->access_key || ls >= sizeof c->secret_key || lt >= sizeof c->session_token)
        return false;
    memcpy(c->access_key, ak, la + 1);
    memcpy(c->secret_key, sk, ls + 1);
    memcpy(c->session_token, tok ? tok : "", lt + 1);
    return true;
}

/* The credentials of an aws upstream: its secretRef's Secret (spec.aws) in
 * the secrets bucket, in its own namespace or one that grants it; without
 * secretRef the service's own AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY /
 * AWS_SESSION_TOKEN (the environment part of the credential chain Gloo's
 * discovery uses then). false with the reason in why. */
static bool aws_credentials(fd *s, const Sluice__V1__Upstream *u, aws_creds *c, char *why, size_t cap)
{
    const Sluice__V1__ResourceRef *ref = u->spec->aws->secret_ref;
    bool ok = false;
    if (!ref || !ref->name[0]) {
        const char *ak = getenv("AWS_ACCESS_KEY_ID"), *sk = getenv("AWS_SECRET_ACCESS_KEY");
        if (ak && sk && ak[0] && sk[0] && creds_copy(c, ak, sk, getenv("AWS_SESSION_TOKEN")))
            return true;
        snprintf(why, cap, "Lambda discovery needs credentials: spec.aws.secretRef names no Secret (and "
                           "sluice-function-discovery has no AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)");
        return false;
    }
    const char *ns = ref->namespace_[0] ? ref->namespace_ : u->metadata->namespace_;
    Sluice__V1__Secret *sec = fd_secret_get(s, ref, u->metadata->namespace_, "spec.aws.secretRef", why, cap);
    if (!sec)
        return false;
    const Sluice__V1__AwsSecret *a =
        sec->spec && sec->spec->kind_case == SLUICE__V1__SECRET_SPEC__KIND_AWS ? sec->spec->aws : NULL;
    if (!a)
        snprintf(why, cap, "Secret %s.%s (spec.aws.secretRef) is not an aws secret", ns, ref->name);
    else if (!a->access_key[0] || !a->secret_key[0])
        snprintf(why, cap, "Secret %s.%s (spec.aws.secretRef) needs accessKey and secretKey", ns, ref->name);
    else if (!(ok = creds_copy(c, a->access_key, a->secret_key, a->session_token)))
        snprintf(why, cap, "Secret %s.%s (spec.aws.secretRef): a key or token is too long", ns, ref->name);
    fd_secret_free(sec);
    return ok;
}

/* Lambda functions of an aws upstream: ListFunctions with its
 * credentials. Any failure is a Warning that keeps the last functions. */
static uint64_t check_aws(fd *s, fd_upstream *e, const uint8_t *val, size_t len, uint64_t rev,
                          Sluice__V1__Upstream *u, fd_outcome *outcome)
{
    const Sluice__V1__AwsUpstreamSpec *aws = u->spec->aws;
    const char *env_region = getenv("AWS_REGION");
    sl_lambda_list l = {0};
    fd_lambda_query q = {.endpoint = s->aws_endpoint, .page_size = s->aws_page_size};
    fd_fetch_opts o = {.connect_timeout_ms = s->connect_timeout_ms, .timeout_ms = s->timeout_ms,
                       .max_bytes = (size_t)s->max_doc_kb * 1024};
    aws_creds cr;
    char reason[1600] = "", base[600], src[700], *clashes = NULL;
    uint64_t wrote = 0;
    sl_status rc = SL_ERR_INVALID;
    memset(&cr, 0, sizeof cr);
    sl_counter_inc(s->c_checks);
    q.region = aws->region[0] ? aws->region : env_region ? env_region : "";
    fd_lambda_endpoint(base, sizeof base, s->aws_endpoint, q.region);
    if (!q.region[0])
        snprintf(reason, sizeof reason, "spec.aws.region is empty (and sluice-function-discovery has no AWS_REGION)");
    else if (aws_credentials(s, u, &cr, reason, sizeof reason)) {
        q.access_key = cr.access_key;
        q.secret_key = cr.secret_key;
        q.session_token = cr.session_token;
        if ((rc = fd_lambda_list_all(&l, &q, &o)) != SL_OK)
            snprintf(reason, sizeof reason, "Lambda ListFunctions in %s: %s", q.region, sl_error_msg());
    }
    creds_wipe(&cr);
    snprintf(src, sizeof src, "aws-lambda:%s", base);
    if (rc == SL_OK) {
        rc = write_functions(s, e, val, len, rev, merge_lambda, &l, l.n, src, &clashes, &wrote);
        if (rc == SL_ERR_CONFLICT)
            goto out; /* the new value is on its way: checked again then */
        if (rc != SL_OK)
            snprintf(reason, sizeof reason, "cannot write the functions: %s", sl_error_msg());
    }
    if (rc != SL_OK) {
        char full[1700];
        snprintf(full, sizeof full, "%s; the last functions are kept", reason);
        sl_counter_inc(s->c_failures);
        *outcome = FD_FAILED;
        if (report(s, e, u, rev, SLUICE__V1__STATUS__STATE__Warning, full, NULL, 0))
            sl_log_warn(COMP, "lambda discovery failed", "key=%s reason=%s", e->key, sl_log_q(reason));
        goto out;
    }
    *outcome = FD_OK;
    if (wrote)
        u->metadata->generation = u->metadata->generation > 0 ? u->metadata->generation + 1 : 2;
    report_found(s, e, u, wrote ? wrote : rev, l.warnings, l.n_warnings, "entries of the ListFunctions answers",
                 clashes);
out:
    free(clashes);
    sl_lambda_list_deinit(&l);
    return wrote;
}

/* One check of one upstream (worker thread; e is busy). Returns the
 * revision written, or 0; *outcome says whether it failed (back-off). */
static uint64_t check_one(fd *s, fd_upstream *e, const uint8_t *val, size_t len, uint64_t rev, int mode,
                          fd_outcome *outcome)
{
    ProtobufCMessage *m = NULL;
    doc_result r;
    fd_tls t;
    char *clashes = NULL, tls_why[1000] = "";
    uint64_t wrote = 0;
    memset(&r, 0, sizeof r);
    memset(&t, 0, sizeof t);
    *outcome = FD_IDLE;
    r.ok_rev = e->ok_rev == rev ? rev : 0;
    e->ok_rev = 0; /* set again by a check that succeeds */
    if (sl_pb_unpack(&m, &sluice__v1__upstream__descriptor, NULL, val, len) != SL_OK)
        return 0; /* the config-watcher reports undecodable values */
    Sluice__V1__Upstream *u = (Sluice__V1__Upstream *)m;
    Sluice__V1__ServiceSpec **slot = sl_upstream_service_spec_slot(u);
    if (u->metadata && u->spec && u->spec->upstream_type_case == SLUICE__V1__UPSTREAM_SPEC__UPSTREAM_TYPE_AWS &&
        u->spec->aws && fd_selected(mode, u)) {
        wrote = check_aws(s, e, val, len, rev, u, outcome);
        goto out;
    }
    if (!u->metadata || !fd_selected(mode, u) || !slot)
        goto out; /* not ours: other types, not selected */
    bool grpc = *slot && (*slot)->plugin_type_case == SLUICE__V1__SERVICE_SPEC__PLUGIN_TYPE_GRPC;
    bool tls_ok = fd_tls_of(s, u, &t, tls_why, sizeof tls_why);
    if (grpc || (!*slot && u->spec->use_http2 && u->spec->use_http2->value)) {
        wrote = check_grpc(s, e, val, len, rev, u, grpc, &t, tls_ok ? NULL : tls_why, outcome);
        goto out;
    }
    if (*slot && (*slot)->plugin_type_case != SLUICE__V1__SERVICE_SPEC__PLUGIN_TYPE__NOT_SET &&
        (*slot)->plugin_type_case != SLUICE__V1__SERVICE_SPEC__PLUGIN_TYPE_REST)
        goto out; /* the transcoder's spec is a person's */
    sl_counter_inc(s->c_checks);
    get_document(s, e, u, *slot, &t, tls_ok ? NULL : tls_why, &r);
    if (r.error[0]) {
        const char *owned = sl_kind_annotation(u->metadata, FD_ANN_FUNCTIONS);
        if (r.not_found && !(owned && owned[0])) {
            sl_log_debug(COMP, "no document", "key=%s reason=%s", e->key, sl_log_q(r.error));
            goto out; /* a plain upstream: nothing to discover */
        }
        char reason[1300];
        snprintf(reason, sizeof reason, "%s; the last functions are kept", r.error);
        sl_counter_inc(s->c_failures);
        *outcome = FD_FAILED;
        /* logged when it becomes a new Warning, not at every re-check */
        if (report(s, e, u, rev, SLUICE__V1__STATUS__STATE__Warning, reason, NULL, 0))
            sl_log_warn(COMP, "document unavailable", "key=%s reason=%s", e->key, sl_log_q(r.error));
        else
            sl_log_debug(COMP, "document still unavailable", "key=%s reason=%s", e->key, sl_log_q(r.error));
        goto out;
    }
    if (r.unchanged) {
        sl_counter_inc(s->c_unchanged); /* the same document for the same Upstream: the same functions */
        *outcome = FD_OK;
        e->ok_rev = rev;
        goto out;
    }
    sl_status rc = write_functions(s, e, val, len, rev, merge_rest, &r, r.doc.n_functions,
                                   r.url[0] ? r.url : "inline", &clashes, &wrote);
    if (rc == SL_ERR_CONFLICT)
        goto out; /* the new value is on its way: checked again then */
    if (rc != SL_OK) {
        sl_counter_inc(s->c_failures);
        *outcome = FD_FAILED;
        sl_log_warn(COMP, "cannot write functions", "key=%s err=%s", e->key, sl_log_q(sl_error_msg()));
        report(s, e, u, rev, SLUICE__V1__STATUS__STATE__Warning, sl_error_msg(), NULL, 0);
        goto out;
    }
    *outcome = FD_OK;
    e->ok_rev = r.url[0] ? (wrote ? wrote : rev) : 0;
    if (wrote)
        u->metadata->generation = u->metadata->generation > 0 ? u->metadata->generation + 1 : 2;
    char what[1100];
    snprintf(what, sizeof what, "part(s) of %s", r.url[0] ? r.url : "the inline document");
    report_found(s, e, u, wrote ? wrote : rev, r.doc.warnings, r.doc.n_warnings, what, clashes);
out:
    free(clashes);
    fd_tls_deinit(&t);
    sl_openapi_doc_deinit(&r.doc);
    protobuf_c_message_free_unpacked(m, NULL);
    return wrote;
}

void fd_upstream_free(fd_upstream *e)
{
    free(e->key);
    free(e->val);
    fd_cache_deinit(&e->cache);
    free(e->found_url);
    free(e->report);
    free(e);
}

/* The upstream due the longest (so that none starves when the workers
 * fall behind), marked busy with a copy of its value; NULL (and *wait_ms)
 * when none is due. Under s->mu. */
static fd_upstream *next_due(fd *s, uint8_t **val, size_t *len, uint64_t *rev, int64_t *wait_ms)
{
    int64_t now = fd_now_ms(), soonest = now + 1000;
    fd_upstream *best = NULL;
    for (size_t i = 0; i < s->n_ups; i++) {
        fd_upstream *e = s->ups[i];
        if (e->busy || e->gone)
            continue;
        if (e->due_ms <= now && (!best || e->due_ms < best->due_ms))
            best = e;
        if (e->due_ms < soonest)
            soonest = e->due_ms;
    }
    if (best && (*val = malloc(best->len ? best->len : 1))) {
        memcpy(*val, best->val, best->len);
        *len = best->len;
        *rev = best->rev;
        best->busy = true;
        return best;
    }
    *wait_ms = soonest - now;
    return NULL;
}

void fd_backoff_clear(fd *s, fd_upstream *e)
{
    if (e->failures && s->n_backing_off > 0)
        s->n_backing_off--;
    e->failures = 0;
    sl_gauge_set(s->g_backing_off, (double)s->n_backing_off);
}

/* When the upstream is checked next, after a check with this outcome. Under s->mu. */
static int64_t next_check_in(fd *s, fd_upstream *e, fd_outcome oc)
{
    if (oc != FD_FAILED) {
        if (e->failures)
            sl_log_info(COMP, "back-off reset", "key=%s failures=%d", e->key, e->failures);
        fd_backoff_clear(s, e);
        return s->resync_ms;
    }
    if (e->failures++ == 0)
        s->n_backing_off++;
    sl_gauge_set(s->g_backing_off, (double)s->n_backing_off);
    sl_counter_inc(s->c_backoffs);
    int64_t d = sl_backoff_ms(s->backoff_initial_ms ? s->backoff_initial_ms : s->resync_ms, s->backoff_max_ms,
                              e->failures, 25, &s->seed);
    sl_log_info(COMP, "backing off", "key=%s failures=%d delay_ms=%" PRId64, e->key, e->failures, d);
    return d;
}

static void drop_gone(fd *s)
{
    size_t k = 0;
    for (size_t i = 0; i < s->n_ups; i++) {
        if (s->ups[i]->gone && !s->ups[i]->busy) {
            fd_backoff_clear(s, s->ups[i]);
            fd_upstream_free(s->ups[i]);
        }
        else
            s->ups[k++] = s->ups[i];
    }
    s->n_ups = k;
}

void *fd_worker_main(void *ud)
{
    fd *s = ud;
    pthread_mutex_lock(&s->mu);
    while (!s->stop) {
        uint8_t *val = NULL;
        size_t len = 0;
        uint64_t rev = 0;
        int64_t wait_ms = 1000;
        fd_upstream *e = s->loaded && s->leader ? next_due(s, &val, &len, &rev, &wait_ms) : NULL;
        if (!e) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            wait_ms = wait_ms < 10 ? 10 : wait_ms > 1000 ? 1000 : wait_ms;
            ts.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
            ts.tv_sec += wait_ms / 1000 + ts.tv_nsec / 1000000000L;
            ts.tv_nsec %= 1000000000L;
            pthread_cond_timedwait(&s->cv, &s->mu, &ts);
            continue;
        }
        int mode = s->settings_mode;
        if (!strcmp(s->mode, "blacklist"))
            mode = SLUICE__V1__DISCOVERY_OPTIONS__FDS_MODE__BLACKLIST;
        else if (!strcmp(s->mode, "whitelist"))
            mode = SLUICE__V1__DISCOVERY_OPTIONS__FDS_MODE__WHITELIST;
        else if (!strcmp(s->mode, "disabled"))
            mode = SLUICE__V1__DISCOVERY_OPTIONS__FDS_MODE__DISABLED;
        pthread_mutex_unlock(&s->mu);
        fd_outcome oc;
        uint64_t wrote = check_one(s, e, val, len, rev, mode, &oc);
        free(val);
        pthread_mutex_lock(&s->mu);
        e->busy = false;
        if (wrote && wrote > e->self_rev)
            e->self_rev = wrote;
        /* a newer value that arrived meanwhile (not our own write) is checked at once; a failing
         * upstream waits longer each time (back-off) */
        int64_t next = next_check_in(s, e, oc);
        e->due_ms = (e->rev != rev && e->rev != e->self_rev) || e->recheck ? 0 : fd_now_ms() + next;
        e->recheck = false;
        drop_gone(s);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}
