/* discovery.c - dns Upstreams -> resolutions, etcd Upstreams -> the registry's keys under their prefix ->
 * EndpointSets written only when they change; Warning reports. */
#include "discovery.h"

#include "sluice/etcd_follow.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <pthread.h>
#include <search.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sluice/arena.h"
#include "sluice/envelope.h"
#include "sluice/kinds.h"
#include "sluice/kv.h"
#include "sluice/log.h"
#include "sluice/quarantine.h"
#include "sluice/resource.h"
#include "sluice/upstreams.h"
#include "sluice/v1/endpoints.pb-c.h"
#include "sluice/v1/events.pb-c.h"
#include "sluice/v1/upstream.pb-c.h"

#define COMP "discovery"
#define SOURCE "endpoint-discovery"

/* One key of the endpoints bucket, "<ns>.<name>": a dns or etcd Upstream of
 * that name, the EndpointSet stored under it, or both. */
typedef struct ed_entry {
    char *key, *ns, *name;
    /* the Upstream (valid when dns) */
    bool dns;
    char *host;       /* the DNS name */
    uint16_t port;
    bool srv;
    int respect_ttl;  /* -1 unset, 0 false, 1 true */
    int64_t refresh_ms; /* dnsRefreshRate; 0 unset */
    uint64_t epoch;   /* bumped when what to resolve changes: older results are dropped */
    bool inflight;
    int64_t due_ms;   /* monotonic: next resolution */
    /* the Upstream (valid when etcd) */
    bool etcd;
    char *prefix;     /* "<spec.etcd.prefix>/" */
    bool resolved;    /* answered once since this process started */
    char *warning;    /* the Warning reported now, or NULL */
    /* the stored EndpointSet */
    bool stored;
    uint64_t rev;
    uint8_t *content; /* packed without observed_time: what "changed" compares */
    size_t content_len;
    bool stored_ours; /* written by this service (source dns or etcd) */
    size_t n_stored;  /* endpoints in it */
    struct ed_entry *prev, *next; /* the list of every entry */
} ed_entry;

struct ed_service {
    sl_service *svc;
    sl_nats *nc;
    sl_loop *loop;
    ed_opts o;
    sl_dns_resolver *dns;
    sl_kv *kv_config, *kv_endpoints;
    sl_kv_watch *w_config, *w_endpoints;
    void *tree; /* ed_entry by key */
    ed_entry *head;
    int initial_pending;
    bool loaded;
    sl_arena arena;
    sl_ticker *ticker;
    atomic_bool stop;
    char reporter_id[64];
    size_t n_dns, n_etcd;
    /* the etcd registry (when --etcd-endpoints is set) */
    sl_etcd_follow *etcd;
    sl_etcd_reg reg;
    bool etcd_synced;        /* reg holds the registry (a Range came) */
    char etcd_error[512];    /* the source failed: how ("" while it answers) */
    char etcd_server[128];   /* the server that answered or failed last */
    uint64_t epochs; /* epochs are unique across entries: a result outlives its entry */
    sl_metric_family *f_resolutions;
    sl_counter *c_failures, *c_writes, *c_deletes, *c_unchanged, *c_errors, *c_reports;
    sl_gauge *g_upstreams;
    sl_counter *c_etcd_events, *c_etcd_failures;
    sl_gauge *g_etcd_revision;
};

/* A resolution's result on its way to the loop. */
typedef struct ed_result {
    ed_service *s;
    char *key;
    uint64_t epoch;
    sl_dns_result *res;
} ed_result;

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void xfree(char **p)
{
    free(*p);
    *p = NULL;
}

/* ---- entries ------------------------------------------------------------- */

static int entry_cmp(const void *a, const void *b)
{
    return strcmp(((const ed_entry *)a)->key, ((const ed_entry *)b)->key);
}

static ed_entry *entry_find(ed_service *s, const char *key)
{
    ed_entry probe = {.key = (char *)key};
    void *n = tfind(&probe, &s->tree, entry_cmp);
    return n ? *(ed_entry **)n : NULL;
}

static ed_entry *entry_get(ed_service *s, const char *ns, const char *name)
{
    char key[SL_RESOURCE_KEY_MAX];
    snprintf(key, sizeof key, "%s.%s", ns, name);
    ed_entry *e = entry_find(s, key);
    if (e)
        return e;
    if (!(e = calloc(1, sizeof *e)) || !(e->key = strdup(key)) || !(e->ns = strdup(ns)) ||
        !(e->name = strdup(name)) || !tsearch(e, &s->tree, entry_cmp)) {
        if (e) {
            free(e->key);
            free(e->ns);
            free(e->name);
        }
        free(e);
        return NULL;
    }
    e->respect_ttl = -1;
    e->next = s->head;
    if (s->head)
        s->head->prev = e;
    s->head = e;
    return e;
}

static void entry_free(void *p)
{
    ed_entry *e = p;
    free(e->key);
    free(e->ns);
    free(e->name);
    free(e->host);
    free(e->prefix);
    free(e->warning);
    free(e->content);
    free(e);
}

/* Forgets e when neither an Upstream nor a stored set needs it. */
static void entry_maybe_drop(ed_service *s, ed_entry *e)
{
    if (e->dns || e->etcd || e->stored || e->inflight || e->warning)
        return;
    tdelete(e, &s->tree, entry_cmp);
    if (e->prev)
        e->prev->next = e->next;
    else
        s->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    entry_free(e);
}

/* ---- reports --------------------------------------------------------------- */

/* Publishes a Warning on the Upstream (reason, once per distinct reason), or
 * withdraws this source's reports (reason NULL) when one may be standing. */
static void report(ed_service *s, ed_entry *e, const char *reason)
{
    Sluice__V1__Report m = SLUICE__V1__REPORT__INIT;
    Sluice__V1__ObjectRef ref = SLUICE__V1__OBJECT_REF__INIT;
    Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
    char subject[SL_RESOURCE_KEY_MAX + 64];
    struct timespec now;

    if (reason ? e->warning && !strcmp(e->warning, reason) : !e->warning && e->resolved)
        return; /* nothing new to say */
    clock_gettime(CLOCK_REALTIME, &now);
    ts.seconds = now.tv_sec;
    ts.nanos = (int32_t)now.tv_nsec;
    ref.kind = "Upstream";
    ref.namespace_ = e->ns;
    ref.name = e->name;
    m.resource = &ref;
    m.source = SOURCE;
    m.reporter_id = s->reporter_id;
    m.time = &ts;
    if (reason) {
        m.state = SLUICE__V1__STATUS__STATE__Warning;
        m.reason = (char *)reason;
        m.n_warnings = 1;
        m.warnings = (char **)&reason;
    } else {
        m.state = SLUICE__V1__STATUS__STATE__Accepted;
        m.withdrawn = true; /* this source has nothing to say any more */
    }
    if (sl_resource_subject(subject, sizeof subject, "sluice.report." SOURCE, "Upstream", e->ns, e->name) != SL_OK ||
        sl_envelope_publish_pb(s->nc, subject, &m.base, NULL) != SL_OK) {
        sl_log_warn(COMP, "could not publish a report", "upstream=%s err=%s", e->key, sl_log_q(sl_error_msg()));
        return;
    }
    sl_counter_inc(s->c_reports);
    xfree(&e->warning);
    if (reason) {
        e->warning = strdup(reason);
        sl_log_warn(COMP, "warning", "upstream=%s reason=%s", e->key, sl_log_q(reason));
    } else {
        sl_log_info(COMP, "warning cleared", "upstream=%s", e->key);
    }
}

/* ---- the endpoints bucket --------------------------------------------------- */

/* The set as stored by its content: the packed EndpointSet without
 * observed_time (NULL ok). */
static sl_status pack_content(uint8_t **out, size_t *len, Sluice__V1__EndpointSet *set)
{
    Google__Protobuf__Timestamp *t = set->spec ? set->spec->observed_time : NULL;
    if (set->spec)
        set->spec->observed_time = NULL;
    *len = protobuf_c_message_get_packed_size(&set->base);
    *out = malloc(*len ? *len : 1);
    if (*out)
        protobuf_c_message_pack(&set->base, *out);
    if (set->spec)
        set->spec->observed_time = t;
    return *out ? SL_OK : SL_ERR_NOMEM;
}

static void stored_forget(ed_entry *e)
{
    e->stored = false;
    e->rev = 0;
    free(e->content);
    e->content = NULL;
    e->content_len = 0;
    e->stored_ours = false;
    e->n_stored = 0;
}

/* A value that does not decode (sluice/quarantine.h); sl_error_msg() says why. */
static void quarantine(ed_service *s, const char *bucket, const char *key, uint64_t rev)
{
    sl_quarantine q = {s->nc, "endpoint-discovery", sl_service_metrics(s->svc)};
    sl_quarantine_value(&q, bucket, key, rev, sl_error_msg());
}

/* Records what the bucket holds under e->key (value NULL: nothing). */
static void stored_set(ed_service *s, ed_entry *e, const uint8_t *value, size_t len, uint64_t rev)
{
    ProtobufCMessage *pm = NULL;
    stored_forget(e);
    if (!value)
        return;
    e->stored = true;
    e->rev = rev;
    if (sl_arena_unpack(&pm, &s->arena, &sluice__v1__endpoint_set__descriptor, value, len) != SL_OK) {
        /* ours to write: replaced by the next resolution */
        quarantine(s, SL_BUCKET_ENDPOINTS, e->key, rev);
    } else {
        Sluice__V1__EndpointSet *set = (Sluice__V1__EndpointSet *)pm;
        e->stored_ours = set->spec && set->spec->source &&
                         (!strcmp(set->spec->source, "dns") || !strcmp(set->spec->source, "etcd"));
        e->n_stored = set->spec ? set->spec->n_endpoints : 0;
        if (pack_content(&e->content, &e->content_len, set) != SL_OK)
            e->content_len = 0;
    }
    sl_arena_reset(&s->arena);
}

static bool may_write(ed_service *s)
{
    if (!s->o.may_write || s->o.may_write(s->o.may_write_ud))
        return true;
    sl_log_error(COMP, "not writing: this replica does not hold the lease", "");
    return false;
}

/* Writes value under e->key against the revision known (create when none);
 * after a conflict, reads the key again and retries once. */
static sl_status kv_write(ed_service *s, ed_entry *e, const uint8_t *value, size_t len, uint64_t *rev)
{
    sl_status rc = SL_OK;
    for (int attempt = 0; attempt < 2; attempt++) {
        rc = e->stored ? sl_kv_update(rev, s->kv_endpoints, e->key, value, len, e->rev)
                       : sl_kv_create(rev, s->kv_endpoints, e->key, value, len);
        if (rc != SL_ERR_CONFLICT && rc != SL_ERR_EXISTS)
            return rc;
        sl_kv_entry cur = {0};
        sl_status g = sl_kv_get(&cur, s->kv_endpoints, e->key);
        if (g == SL_OK)
            stored_set(s, e, cur.value, cur.len, cur.revision);
        else if (g == SL_ERR_NOT_FOUND)
            stored_forget(e);
        sl_kv_entry_deinit(&cur);
        if (g != SL_OK && g != SL_ERR_NOT_FOUND)
            return g;
    }
    return rc;
}

/* The EndpointSet of these endpoints (source "dns" or "etcd"), written when
 * its content differs from the stored one. */
static void write_endpoints(ed_service *s, ed_entry *e, Sluice__V1__Endpoint **ptrs, size_t n, const char *source)
{
    Sluice__V1__EndpointSet set = SLUICE__V1__ENDPOINT_SET__INIT;
    Sluice__V1__Metadata md = SLUICE__V1__METADATA__INIT;
    Sluice__V1__EndpointSetSpec spec = SLUICE__V1__ENDPOINT_SET_SPEC__INIT;
    Sluice__V1__ResourceRef ref = SLUICE__V1__RESOURCE_REF__INIT;
    Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
    uint8_t *content = NULL, *value = NULL;
    size_t content_len = 0, value_len = 0;
    struct timespec now;

    md.name = e->name;
    md.namespace_ = e->ns;
    ref.name = e->name;
    ref.namespace_ = e->ns;
    spec.upstream = &ref;
    spec.endpoints = ptrs;
    spec.n_endpoints = n;
    spec.source = (char *)source;
    set.metadata = &md;
    set.spec = &spec;
    if (pack_content(&content, &content_len, &set) != SL_OK)
        goto out;
    if (e->stored && e->content && e->content_len == content_len && !memcmp(e->content, content, content_len)) {
        sl_counter_inc(s->c_unchanged);
        goto out;
    }
    if (!may_write(s))
        goto out;
    clock_gettime(CLOCK_REALTIME, &now);
    ts.seconds = now.tv_sec;
    ts.nanos = (int32_t)now.tv_nsec;
    spec.observed_time = &ts;
    value_len = protobuf_c_message_get_packed_size(&set.base);
    if (!(value = malloc(value_len)))
        goto out;
    protobuf_c_message_pack(&set.base, value);
    uint64_t rev = 0;
    size_t before = e->n_stored;
    if (kv_write(s, e, value, value_len, &rev) != SL_OK) {
        sl_counter_inc(s->c_errors);
        sl_log_warn(COMP, "write failed", "key=%s err=%s", e->key, sl_log_q(sl_error_msg()));
        goto out;
    }
    sl_counter_inc(s->c_writes);
    free(e->content);
    e->content = content;
    e->content_len = content_len;
    content = NULL;
    e->stored = true;
    e->rev = rev;
    e->stored_ours = true;
    e->n_stored = n;
    sl_log_info(COMP, "endpoints written", "key=%s source=%s endpoints=%zu before=%zu rev=%" PRIu64, e->key,
                source, n, before, rev);
out:
    free(value);
    free(content);
}

/* The EndpointSet of a DNS result. */
static void write_set(ed_service *s, ed_entry *e, const sl_dns_result *res)
{
    size_t n = res->n_records, n_prio = 0;
    Sluice__V1__Endpoint *eps = calloc(n ? n : 1, sizeof *eps);
    Sluice__V1__Endpoint **ptrs = calloc(n ? n : 1, sizeof *ptrs);
    Google__Protobuf__UInt32Value *weights = calloc(n ? n : 1, sizeof *weights);
    uint16_t prios[64];

    if (!eps || !ptrs || !weights)
        goto out;
    /* SRV priorities become endpoint priorities 0, 1, ... in their order. */
    for (size_t i = 0; i < n && e->srv; i++) {
        size_t k = 0;
        while (k < n_prio && prios[k] != res->records[i].priority)
            k++;
        if (k == n_prio && n_prio < 64)
            prios[n_prio++] = res->records[i].priority;
    }
    for (size_t i = 0; i < n; i++) {
        const sl_dns_record *r = &res->records[i];
        sluice__v1__endpoint__init(&eps[i]);
        eps[i].address = (char *)r->address;
        eps[i].port = r->port;
        eps[i].hostname = r->hostname;
        if (e->srv) {
            google__protobuf__uint32_value__init(&weights[i]);
            weights[i].value = r->weight ? r->weight : 1; /* Envoy's weights start at 1 */
            eps[i].weight = &weights[i];
            for (size_t k = 0; k < n_prio; k++)
                eps[i].priority += prios[k] < r->priority;
        }
        ptrs[i] = &eps[i];
    }
    write_endpoints(s, e, ptrs, n, "dns");
out:
    free(weights);
    free(ptrs);
    free(eps);
}

/* Deletes the set this source wrote for an Upstream that is gone or no
 * longer of type dns. */
static void delete_set(ed_service *s, ed_entry *e)
{
    if (!e->stored || !e->stored_ours || !may_write(s))
        return;
    sl_status rc = sl_kv_delete(NULL, s->kv_endpoints, e->key, e->rev);
    if (rc != SL_OK && rc != SL_ERR_NOT_FOUND) {
        sl_counter_inc(s->c_errors);
        sl_log_warn(COMP, "delete failed", "key=%s err=%s", e->key, sl_log_q(sl_error_msg()));
        return;
    }
    sl_counter_inc(s->c_deletes);
    sl_log_info(COMP, "endpoints removed", "key=%s", e->key);
    stored_forget(e);
}

/* ---- results ----------------------------------------------------------------- */

static int64_t clamp_ms(const ed_service *s, int64_t ms)
{
    if (ms < s->o.min_refresh_ms)
        ms = s->o.min_refresh_ms;
    if (ms > s->o.max_refresh_ms)
        ms = s->o.max_refresh_ms;
    return ms;
}

/* When to ask again after an answer: the TTL, or dnsRefreshRate unless
 * respectDnsTtl, or the default when respectDnsTtl is false; clamped. */
static int64_t next_refresh_ms(const ed_service *s, const ed_entry *e, uint32_t ttl)
{
    if (e->respect_ttl != 1 && e->refresh_ms > 0)
        return clamp_ms(s, e->refresh_ms);
    if (e->respect_ttl == 0)
        return clamp_ms(s, s->o.default_refresh_ms);
    return clamp_ms(s, (int64_t)ttl * 1000);
}

static const char *rcode_label(sl_dns_rcode rc)
{
    static const char *const names[] = {"ok",          "nxdomain",     "nodata",    "timeout", "servfail", "refused",
                                        "unreachable", "bad_response", "cancelled", "error"};
    return (size_t)rc < sizeof names / sizeof names[0] ? names[rc] : "error";
}

static void count_resolution(ed_service *s, sl_dns_rcode rc)
{
    sl_counter *c;
    if (sl_metric_family_counter(&c, s->f_resolutions, (const char *[]){rcode_label(rc)}) == SL_OK)
        sl_counter_inc(c);
    if (!sl_dns_rcode_answered(rc))
        sl_counter_inc(s->c_failures);
}

static void apply_result(void *ud)
{
    ed_result *r = ud;
    ed_service *s = r->s;
    sl_dns_result *res = r->res;
    ed_entry *e = entry_find(s, r->key);
    char reason[768];

    if (!e || r->epoch != e->epoch || !e->dns) {
        if (e && r->epoch == e->epoch) {
            e->inflight = false;
            entry_maybe_drop(s, e);
        }
        goto out;
    }
    e->inflight = false;
    count_resolution(s, res->rcode);
    if (sl_dns_rcode_answered(res->rcode)) {
        write_set(s, e, res);
        if (res->rcode == SL_DNS_OK) {
            report(s, e, NULL);
        } else {
            snprintf(reason, sizeof reason, "endpoint discovery: dns (%s): %s: the upstream has no endpoints",
                     s->o.dns_source, res->message);
            report(s, e, reason);
        }
        e->resolved = true;
        e->due_ms = mono_ms() + next_refresh_ms(s, e, res->ttl);
        sl_log_debug(COMP, "resolved", "upstream=%s result=%s ttl=%" PRIu32 " next_ms=%" PRId64 " ms=%" PRId64,
                     e->key, sl_log_q(res->message), res->ttl, e->due_ms - mono_ms(), res->elapsed_ms);
    } else {
        /* The source failed: the endpoints known stay. */
        snprintf(reason, sizeof reason, "endpoint discovery: dns source %s failed: %s; keeping the last %zu endpoints",
                 s->o.dns_source, res->message, e->stored ? e->n_stored : 0);
        report(s, e, reason);
        e->due_ms = mono_ms() + clamp_ms(s, s->o.failure_refresh_ms);
    }
out:
    sl_dns_result_free(res);
    free(r->key);
    free(r);
}

static void drop_result(void *ud)
{
    ed_result *r = ud;
    sl_dns_result_free(r->res);
    free(r->key);
    free(r);
}

/* On the resolver's thread: hand the result to the loop. */
static void on_resolved(sl_dns_result *res, void *ud)
{
    ed_result *r = ud;
    r->res = res;
    if (atomic_load(&r->s->stop) || sl_loop_post(r->s->loop, r->s, apply_result, drop_result, r) != SL_OK)
        drop_result(r);
}

static void resolve(ed_service *s, ed_entry *e)
{
    ed_result *r = calloc(1, sizeof *r);
    sl_dns_query q = {.name = e->host, .port = e->port, .srv = e->srv};
    if (!r || !(r->key = strdup(e->key))) {
        free(r);
        return;
    }
    r->s = s;
    r->epoch = e->epoch;
    if (sl_dns_resolve(s->dns, &q, on_resolved, r) != SL_OK) {
        sl_log_warn(COMP, "cannot resolve", "upstream=%s name=%s err=%s", e->key, sl_log_q(e->host),
                    sl_log_q(sl_error_msg()));
        e->due_ms = mono_ms() + clamp_ms(s, s->o.failure_refresh_ms);
        free(r->key);
        free(r);
        return;
    }
    e->inflight = true;
}

/* On the loop: every dns Upstream whose time has come is resolved. */
static void tick(void *ud)
{
    ed_service *s = ud;
    int64_t now = mono_ms();
    if (!s->loaded)
        return;
    for (ed_entry *e = s->head; e; e = e->next)
        if (e->dns && !e->inflight && e->due_ms <= now)
            resolve(s, e);
}

/* ---- etcd Upstreams ---------------------------------------------------------------- */

/* One registry endpoint as an EndpointSet endpoint, with what it points to. */
typedef struct etcd_ep {
    Sluice__V1__Endpoint ep;
    Google__Protobuf__UInt32Value weight;
    Sluice__V1__Locality locality;
    Sluice__V1__Endpoint__LabelsEntry labels[SL_ETCD_MAX_LABELS];
    Sluice__V1__Endpoint__LabelsEntry *label_ptrs[SL_ETCD_MAX_LABELS];
    int family;       /* AF_INET before AF_INET6 */
    uint8_t addr[16]; /* the address's bytes: the order of a set */
} etcd_ep;

static int etcd_ep_cmp(const void *a, const void *b)
{
    const etcd_ep *x = *(etcd_ep *const *)a, *y = *(etcd_ep *const *)b;
    int c;
    if (x->family != y->family)
        return x->family == AF_INET ? -1 : 1;
    if ((c = memcmp(x->addr, y->addr, sizeof x->addr)) != 0)
        return c;
    return (x->ep.port > y->ep.port) - (x->ep.port < y->ep.port);
}

/* Fills out from a registry entry; false (with why) when it is no endpoint. */
static bool etcd_ep_from(etcd_ep *out, const sl_etcd_reg_entry *r, char *why, size_t n)
{
    const sl_etcd_endpoint *p = &r->ep;
    if (r->error) {
        snprintf(why, n, "key \"%s\": %s", r->key, r->error);
        return false;
    }
    memset(out, 0, sizeof *out);
    out->family = inet_pton(AF_INET, p->address, out->addr) == 1 ? AF_INET : AF_INET6;
    if (out->family == AF_INET6 && inet_pton(AF_INET6, p->address, out->addr) != 1) {
        snprintf(why, n, "key \"%s\": Addr \"%s\" is not an IP address (EDS sends addresses to the proxies)",
                 r->key, p->address);
        return false;
    }
    sluice__v1__endpoint__init(&out->ep);
    out->ep.address = (char *)p->address;
    out->ep.port = p->port;
    if (p->weight) {
        google__protobuf__uint32_value__init(&out->weight);
        out->weight.value = p->weight;
        out->ep.weight = &out->weight;
    }
    out->ep.priority = p->priority;
    out->ep.health_status = (Sluice__V1__Endpoint__HealthStatus)p->health;
    if (p->region || p->zone || p->sub_zone) {
        sluice__v1__locality__init(&out->locality);
        out->locality.region = p->region ? p->region : "";
        out->locality.zone = p->zone ? p->zone : "";
        out->locality.sub_zone = p->sub_zone ? p->sub_zone : "";
        out->ep.locality = &out->locality;
    }
    for (size_t i = 0; i < p->n_labels; i++) {
        sluice__v1__endpoint__labels_entry__init(&out->labels[i]);
        out->labels[i].key = p->label_keys[i];
        out->labels[i].value = p->label_values[i];
        out->label_ptrs[i] = &out->labels[i];
    }
    out->ep.labels = out->label_ptrs;
    out->ep.n_labels = p->n_labels;
    if (p->warning[0])
        snprintf(why, n, "key \"%s\": %s (the endpoint is used without it)", r->key, p->warning);
    return true;
}

/* The registry's endpoints under e's prefix: the set (written if changed)
 * and the status; while the source fails, nothing but a Warning. */
static void etcd_refresh(ed_service *s, ed_entry *e)
{
    char reason[1024], first[640] = "";
    size_t at = 0, n, used = 0, problems = 0;
    etcd_ep *v = NULL;
    Sluice__V1__Endpoint **ptrs = NULL;
    etcd_ep **order = NULL;

    if (!s->loaded || !e->etcd)
        return;
    if (!s->etcd) {
        report(s, e, "endpoint discovery: etcd: no etcd server is configured (--etcd-endpoints); the upstream "
                     "has no endpoints from it");
        return;
    }
    if (strncmp(e->prefix, s->o.etcd_prefix, strlen(s->o.etcd_prefix)) != 0) {
        snprintf(reason, sizeof reason,
                 "endpoint discovery: etcd: spec.etcd.prefix \"%s\" is outside the keys followed "
                 "(--etcd-prefix \"%s\")",
                 e->prefix, s->o.etcd_prefix);
        report(s, e, reason);
        return;
    }
    if (s->etcd_error[0]) {
        snprintf(reason, sizeof reason, "endpoint discovery: etcd source %s failed: %s; keeping the last %zu endpoints",
                 s->etcd_server, s->etcd_error, e->stored ? e->n_stored : 0);
        report(s, e, reason);
        return;
    }
    if (!s->etcd_synced)
        return;
    n = sl_etcd_reg_range(&s->reg, e->prefix, &at);
    if (!(v = calloc(n ? n : 1, sizeof *v)) || !(ptrs = calloc(n ? n : 1, sizeof *ptrs)) ||
        !(order = calloc(n ? n : 1, sizeof *order)))
        goto out;
    for (size_t i = 0; i < n; i++) {
        char why[640] = "";
        if (etcd_ep_from(&v[used], &s->reg.v[at + i], why, sizeof why)) {
            order[used] = &v[used];
            used++;
        }
        if (why[0] && !problems++)
            snprintf(first, sizeof first, "%s", why);
    }
    qsort(order, used, sizeof *order, etcd_ep_cmp);
    size_t k = 0;
    for (size_t i = 0; i < used; i++) /* one endpoint per address and port: the first key's */
        if (!k || etcd_ep_cmp(&order[i], &order[i - 1]) != 0)
            ptrs[k++] = &order[i]->ep;
    write_endpoints(s, e, ptrs, k, "etcd");
    if (problems > 1)
        snprintf(reason, sizeof reason, "endpoint discovery: etcd (%s): %s (and %zu more)", s->etcd_server, first,
                 problems - 1);
    else if (problems)
        snprintf(reason, sizeof reason, "endpoint discovery: etcd (%s): %s", s->etcd_server, first);
    else if (!k)
        snprintf(reason, sizeof reason,
                 "endpoint discovery: etcd (%s): no endpoints registered under \"%s\": the upstream has no endpoints",
                 s->etcd_server, e->prefix);
    report(s, e, problems || !k ? reason : NULL);
    e->resolved = true;
out:
    free(order);
    free(ptrs);
    free(v);
}

static void etcd_refresh_all(ed_service *s)
{
    for (ed_entry *e = s->head; e; e = e->next)
        if (e->etcd)
            etcd_refresh(s, e);
}

/* Whether key is one of e's endpoints. */
static bool etcd_under(const ed_entry *e, const char *key)
{
    return e->etcd && !strncmp(key, e->prefix, strlen(e->prefix));
}

/* On the loop: a step of the etcd source applied to the registry, then the
 * Upstreams it touched refreshed. */
static void apply_etcd(void *ud)
{
    sl_etcd_batch *b = ud;
    ed_service *s = b->owner;
    bool was_failed = s->etcd_error[0] != '\0';

    snprintf(s->etcd_server, sizeof s->etcd_server, "%s", b->server);
    switch (b->step) {
    case SL_ETCD_FAILED:
        sl_counter_inc(s->c_etcd_failures);
        snprintf(s->etcd_error, sizeof s->etcd_error, "%s", b->error);
        etcd_refresh_all(s); /* Warnings; the sets stay */
        break;
    case SL_ETCD_RESET:
        if (sl_etcd_reg_apply(&s->reg, b) != SL_OK)
            sl_log_error(COMP, "out of memory applying the registry", "revision=%lld", (long long)b->revision);
        s->etcd_synced = true;
        s->etcd_error[0] = '\0';
        sl_gauge_set(s->g_etcd_revision, (double)b->revision);
        etcd_refresh_all(s);
        break;
    case SL_ETCD_EVENTS:
        s->etcd_error[0] = '\0';
        if (sl_etcd_reg_apply(&s->reg, b) != SL_OK)
            sl_log_error(COMP, "out of memory applying etcd events", "revision=%lld", (long long)b->revision);
        sl_counter_add(s->c_etcd_events, b->n_events);
        sl_gauge_set(s->g_etcd_revision, (double)b->revision);
        for (ed_entry *e = s->head; e; e = e->next) {
            bool touched = was_failed;
            for (size_t i = 0; i < b->n_events && !touched; i++)
                touched = etcd_under(e, b->events[i].kv.key);
            if (touched)
                etcd_refresh(s, e);
        }
        break;
    }
    sl_etcd_batch_free(b);
}

static void drop_etcd(void *ud)
{
    sl_etcd_batch_free(ud);
}

/* On the etcd thread: hand the step to the loop. */
static void on_etcd(sl_etcd_batch *b, void *ud)
{
    ed_service *s = ud;
    b->owner = s;
    if (atomic_load(&s->stop) || sl_loop_post(s->loop, s, apply_etcd, drop_etcd, b) != SL_OK)
        sl_etcd_batch_free(b);
}

/* ---- the config bucket: dns and etcd Upstreams ------------------------------------ */

static int64_t duration_ms(const Google__Protobuf__Duration *d)
{
    return d ? d->seconds * 1000 + d->nanos / 1000000 : 0;
}

/* e is followed in etcd under prefix (a change of prefix reads it again). */
static void etcd_set(ed_service *s, ed_entry *e, const char *prefix)
{
    size_t len = strlen(prefix);
    char *p;
    if (e->etcd && strlen(e->prefix) == len + 1 && !strncmp(e->prefix, prefix, len))
        return;
    if (asprintf(&p, "%s/", prefix) < 0)
        return;
    free(e->prefix);
    e->prefix = p;
    if (!e->etcd)
        s->n_etcd++;
    e->etcd = true;
    sl_log_info(COMP, "upstream followed in etcd", "upstream=%s prefix=%s", e->key, sl_log_q(p));
    etcd_refresh(s, e);
}

/* The Upstream is of type dns or etcd now (u), or not (u NULL: deleted, or
 * another type). */
static void upstream_set(ed_service *s, const char *ns, const char *name, const Sluice__V1__Upstream *u)
{
    const Sluice__V1__UpstreamSpec *sp = u ? u->spec : NULL;
    const Sluice__V1__DnsUpstreamSpec *d =
        sp && sp->upstream_type_case == SLUICE__V1__UPSTREAM_SPEC__UPSTREAM_TYPE_DNS && sp->dns->name[0] ? sp->dns
                                                                                                          : NULL;
    const Sluice__V1__EtcdUpstreamSpec *et =
        sp && sp->upstream_type_case == SLUICE__V1__UPSTREAM_SPEC__UPSTREAM_TYPE_ETCD && sp->etcd->prefix[0] &&
                sp->etcd->prefix[strlen(sp->etcd->prefix) - 1] != '/' /* the translator refuses it */
            ? sp->etcd
            : NULL;
    char key[SL_RESOURCE_KEY_MAX];
    snprintf(key, sizeof key, "%s.%s", ns, name);
    ed_entry *e = d || et ? entry_get(s, ns, name) : entry_find(s, key);
    if (!e)
        return;
    bool followed = e->dns || e->etcd;
    if (!d && e->dns) {
        e->dns = false;
        e->epoch = ++s->epochs;
        e->inflight = false; /* its result will find another epoch */
        s->n_dns--;
        sl_log_info(COMP, "upstream no longer resolved", "upstream=%s", e->key);
    }
    if (!et && e->etcd) {
        e->etcd = false;
        xfree(&e->prefix);
        s->n_etcd--;
        sl_log_info(COMP, "upstream no longer followed in etcd", "upstream=%s", e->key);
    }
    if (!d && !et) {
        if (followed && s->loaded)
            delete_set(s, e);
        if (followed && e->warning)
            report(s, e, NULL);
        entry_maybe_drop(s, e);
        return;
    }
    if (et) {
        etcd_set(s, e, et->prefix);
        return;
    }
    int respect = sp->respect_dns_ttl ? (sp->respect_dns_ttl->value ? 1 : 0) : -1;
    int64_t refresh = duration_ms(sp->dns_refresh_rate);
    bool same = e->dns && e->host && !strcmp(e->host, d->name) && e->port == d->port && e->srv == d->srv;
    if (!e->dns)
        s->n_dns++;
    if (!same) {
        char *h = strdup(d->name);
        if (!h)
            return;
        free(e->host);
        e->host = h;
        e->port = (uint16_t)d->port;
        e->srv = d->srv;
        e->dns = true;
        e->epoch = ++s->epochs;
        e->inflight = false; /* a result for the old name is dropped */
        e->due_ms = 0;       /* now */
        sl_log_info(COMP, "upstream resolved from dns", "upstream=%s name=%s port=%u srv=%d", e->key, d->name,
                    d->port, d->srv);
    } else if (respect != e->respect_ttl || refresh != e->refresh_ms) {
        e->due_ms = 0;
    }
    e->respect_ttl = respect;
    e->refresh_ms = refresh;
}

static void on_config_entry(sl_kv_watch *w, const sl_kv_entry *ke, void *ud)
{
    ed_service *s = ud;
    sl_resource_id id;
    ProtobufCMessage *pm = NULL;
    (void)w;
    if (sl_resource_key_parse(&id, ke->key, 1) != SL_OK || strcmp(id.kind, "Upstream") != 0)
        return;
    if (ke->op == SL_KV_PUT &&
        sl_arena_unpack(&pm, &s->arena, &sluice__v1__upstream__descriptor, ke->value, ke->len) != SL_OK) {
        quarantine(s, SL_BUCKET_CONFIG, ke->key, ke->revision); /* the last good one stays in use */
        sl_arena_reset(&s->arena);
        return;
    }
    upstream_set(s, id.ns, id.name, (const Sluice__V1__Upstream *)pm);
    sl_arena_reset(&s->arena);
    sl_gauge_set(s->g_upstreams, (double)(s->n_dns + s->n_etcd));
}

static void on_endpoints_entry(sl_kv_watch *w, const sl_kv_entry *ke, void *ud)
{
    ed_service *s = ud;
    sl_resource_id id;
    (void)w;
    if (sl_resource_key_parse(&id, ke->key, 0) != SL_OK)
        return;
    ed_entry *e = entry_get(s, id.ns, id.name);
    if (!e || (ke->op == SL_KV_PUT && ke->revision <= e->rev))
        return; /* our own write, known already */
    stored_set(s, e, ke->op == SL_KV_PUT ? ke->value : NULL, ke->len, ke->revision);
    entry_maybe_drop(s, e);
}

/* Both buckets are in: sets this source wrote for Upstreams that are gone go too. */
static void on_initial(sl_kv_watch *w, void *ud)
{
    ed_service *s = ud;
    size_t removed = 0;
    (void)w;
    if (--s->initial_pending > 0)
        return;
    s->loaded = true;
    for (ed_entry *e = s->head, *nx; e; e = nx) {
        nx = e->next;
        if (!e->dns && !e->etcd && e->stored && e->stored_ours) {
            delete_set(s, e);
            removed++;
            entry_maybe_drop(s, e);
        }
    }
    sl_log_info(COMP, "initial values loaded", "dns_upstreams=%zu etcd_upstreams=%zu orphans_removed=%zu", s->n_dns,
                s->n_etcd, removed);
    sl_service_set_ready(s->svc, true);
    etcd_refresh_all(s);
    tick(s);
}

static void on_watch_failed(sl_kv_watch *w, sl_status st, const char *msg, void *ud)
{
    ed_service *s = ud;
    (void)w;
    sl_log_error(COMP, "watch failed", "err=%s status=%s", sl_log_q(msg), sl_status_str(st));
    sl_service_request_stop(s->svc, SL_EXIT_FAILURE);
}

/* ---- start and stop --------------------------------------------------------------- */

static sl_status register_metrics(ed_service *s)
{
    sl_metrics *reg = sl_service_metrics(s->svc);
    sl_status rc;
    if ((rc = sl_metrics_family_new(&s->f_resolutions, reg, SL_METRIC_COUNTER,
                                    "sluice_endpoint_discovery_resolutions_total",
                                    "DNS resolutions by result (ok, nxdomain, nodata, timeout, servfail, refused, "
                                    "unreachable, bad_response, cancelled, error).",
                                    (const char *[]){"result"}, 1, NULL, 0)) != SL_OK ||
        (rc = sl_metrics_counter(&s->c_failures, reg, "sluice_endpoint_discovery_failures_total",
                                 "Resolutions where the source failed (endpoints kept).")) != SL_OK ||
        (rc = sl_metrics_counter(&s->c_writes, reg, "sluice_endpoint_discovery_writes_total",
                                 "EndpointSets written (the set changed).")) != SL_OK ||
        (rc = sl_metrics_counter(&s->c_unchanged, reg, "sluice_endpoint_discovery_unchanged_total",
                                 "Resolutions whose set was already stored (no write).")) != SL_OK ||
        (rc = sl_metrics_counter(&s->c_deletes, reg, "sluice_endpoint_discovery_deletes_total",
                                 "EndpointSets removed with their dns Upstream.")) != SL_OK ||
        (rc = sl_metrics_counter(&s->c_errors, reg, "sluice_endpoint_discovery_write_errors_total",
                                 "Failed KV writes and deletes.")) != SL_OK ||
        (rc = sl_metrics_counter(&s->c_reports, reg, "sluice_endpoint_discovery_reports_total",
                                 "Warning reports published and withdrawn.")) != SL_OK ||
        (rc = sl_metrics_gauge(&s->g_upstreams, reg, "sluice_endpoint_discovery_upstreams",
                               "Upstreams of type dns and etcd followed.")) != SL_OK ||
        (rc = sl_metrics_counter(&s->c_etcd_events, reg, "sluice_endpoint_discovery_etcd_events_total",
                                 "etcd registry changes applied (puts and deletes).")) != SL_OK ||
        (rc = sl_metrics_counter(&s->c_etcd_failures, reg, "sluice_endpoint_discovery_etcd_failures_total",
                                 "Times the etcd source failed (endpoints kept).")) != SL_OK ||
        (rc = sl_metrics_gauge(&s->g_etcd_revision, reg, "sluice_endpoint_discovery_etcd_revision",
                               "The etcd revision the registry copy is at.")) != SL_OK)
        return rc;
    return SL_OK;
}

sl_status ed_service_start(ed_service **out, sl_service *svc, sl_nats *nc, sl_loop *loop, const ed_opts *o)
{
    ed_service *s = calloc(1, sizeof *s);
    sl_kv_config cfg;
    sl_status rc;
    sl_kv_watch_handlers hc = {.entry = on_config_entry, .initial_done = on_initial, .failed = on_watch_failed};
    sl_kv_watch_handlers he = {.entry = on_endpoints_entry, .initial_done = on_initial, .failed = on_watch_failed};
    sl_kv_watch_opts wo = {.keys = "Upstream.>"};

    *out = NULL;
    if (!s)
        return SL_ERR_NOMEM;
    s->svc = svc;
    s->nc = nc;
    s->loop = loop;
    s->o = *o;
    if (s->o.tick_ms <= 0)
        s->o.tick_ms = 100;
    if (!s->o.etcd_prefix)
        s->o.etcd_prefix = "";
    if (s->o.etcd_timeout_ms <= 0)
        s->o.etcd_timeout_ms = 5000;
    sl_arena_init(&s->arena, 0);
    snprintf(s->reporter_id, sizeof s->reporter_id, "sluice-endpoint-discovery-%ld", (long)getpid());
    if ((rc = register_metrics(s)) != SL_OK || (rc = sl_dns_resolver_new(&s->dns, &s->o.dns)) != SL_OK)
        goto err;
    sl_kv_config_init(&cfg, s->o.config_bucket);
    if ((rc = sl_kv_open(&s->kv_config, nc, &cfg)) != SL_OK)
        goto err;
    sl_kv_config_init(&cfg, s->o.endpoints_bucket);
    cfg.description = "Sluice: endpoints per upstream (sluice-endpoint-discovery)";
    if ((rc = sl_kv_open(&s->kv_endpoints, nc, &cfg)) != SL_OK)
        goto err;
    s->initial_pending = 2;
    /* The stored sets first, so that the first answers compare with them. */
    if ((rc = sl_kv_watch_start(&s->w_endpoints, s->kv_endpoints, NULL, loop, &he, s)) != SL_OK ||
        (rc = sl_kv_watch_start(&s->w_config, s->kv_config, &wo, loop, &hc, s)) != SL_OK)
        goto err;
    if (s->o.etcd_endpoints && s->o.etcd_endpoints[0]) {
        sl_etcd_follow_opts eo = {.endpoints = s->o.etcd_endpoints, .prefix = s->o.etcd_prefix,
                           .timeout_ms = s->o.etcd_timeout_ms, .retry_ms = s->o.failure_refresh_ms,
                           .cb = on_etcd, .ud = s};
        if ((rc = sl_etcd_follow_start(&s->etcd, &eo)) != SL_OK)
            goto err;
    }
    if ((rc = sl_ticker_start(&s->ticker, loop, s->o.tick_ms, tick, s)) != SL_OK)
        goto err;
    *out = s;
    return SL_OK;
err:
    ed_service_free(s);
    return rc;
}

void ed_service_free(ed_service *s)
{
    if (!s)
        return;
    atomic_store(&s->stop, true);
    sl_ticker_free(s->ticker);
    sl_etcd_follow_free(s->etcd); /* steps not applied are dropped (stop is set) */
    sl_kv_watch_free(s->w_config);
    sl_kv_watch_free(s->w_endpoints);
    sl_dns_resolver_free(s->dns); /* pending results are dropped (stop is set) */
    sl_loop_cancel(s->loop, s);
    sl_kv_free(s->kv_config);
    sl_kv_free(s->kv_endpoints);
    tdestroy(s->tree, entry_free);
    sl_etcd_reg_free(&s->reg);
    sl_arena_deinit(&s->arena);
    free(s);
}
