/* ctx.c - the helpers plugins and the core build Envoy messages with. All
 * memory comes from the translation's arena; an allocation failure jumps
 * back to sl_tr_translate(), which fails with SL_ERR_NOMEM. */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "translate_internal.h"
#include "envoy/extensions/transport_sockets/tls/v3/secret.pb-c.h"
#include "google/protobuf/any.pb-c.h"
#include "google/protobuf/struct.pb-c.h"

#define TYPE_PREFIX "type.googleapis.com/"

void *tr_alloc(tr_ctx *tx, size_t n)
{
    void *p = sl_arena_alloc(&tx->arena, n);
    if (!p)
        longjmp(tx->oom, 1);
    return p;
}

void *tr_new(tr_ctx *tx, const ProtobufCMessageDescriptor *desc)
{
    void *m = tr_alloc(tx, desc->sizeof_message);
    protobuf_c_message_init(desc, m);
    return m;
}

char *tr_strdup(tr_ctx *tx, const char *s)
{
    size_t n = strlen(s ? s : "") + 1;
    char *p = tr_alloc(tx, n);
    memcpy(p, s ? s : "", n);
    return p;
}

/* Formats with only %s, %zu, %u, %d and %% (what almost every path and
 * name uses) without vsnprintf, which dominated translation profiles; NULL
 * when fmt has anything else. */
static char *fast_format(tr_ctx *tx, const char *fmt, va_list ap0)
{
    size_t n = 0;
    char *out = NULL, *o = NULL, num[24];
    va_list ap;
    for (int pass = 0; pass < 2; pass++) {
        va_copy(ap, ap0);
        o = pass ? out : NULL;
        for (const char *f = fmt; *f; f++) {
            const char *piece;
            size_t len;
            if (*f != '%') {
                if (pass)
                    *o++ = *f;
                else
                    n++;
                continue;
            }
            f++;
            if (*f == 's') {
                piece = va_arg(ap, const char *);
                if (!piece)
                    piece = "(null)";
            } else if ((*f == 'z' && f[1] == 'u') || *f == 'u') {
                size_t v = *f == 'u' ? va_arg(ap, unsigned) : va_arg(ap, size_t);
                char *e = num + sizeof num;
                f += *f == 'z';
                *--e = '\0';
                do
                    *--e = (char)('0' + v % 10);
                while (v /= 10);
                piece = e;
            } else if (*f == 'd') {
                snprintf(num, sizeof num, "%d", va_arg(ap, int));
                piece = num;
            } else if (*f == '%') {
                piece = "%";
            } else {
                va_end(ap);
                return NULL;
            }
            len = strlen(piece);
            if (pass) {
                memcpy(o, piece, len);
                o += len;
            } else {
                n += len;
            }
        }
        va_end(ap);
        if (!pass)
            out = tr_alloc(tx, n + 1);
    }
    *o = '\0';
    return out;
}

char *tr_printf(tr_ctx *tx, const char *fmt, ...)
{
    va_list ap;
    int n;
    char *p;
    va_start(ap, fmt);
    p = fast_format(tx, fmt, ap);
    va_end(ap);
    if (p)
        return p;
    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    p = tr_alloc(tx, (size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}

/* Capacity is implied by n: the array grows to the next power of two (at
 * least 4) when n reaches one, so no capacity field is needed. */
void tr_push_(tr_ctx *tx, void ***arr, size_t *n, void *item)
{
    size_t cur = *n;
    if (cur == 0 || (cur >= 4 && (cur & (cur - 1)) == 0)) {
        size_t cap = cur ? cur * 2 : 4;
        void **v = tr_alloc(tx, cap * sizeof *v);
        if (cur)
            memcpy(v, *arr, cur * sizeof *v);
        *arr = v;
    }
    (*arr)[cur] = item;
    *n = cur + 1;
}

Google__Protobuf__UInt32Value *tr_u32(tr_ctx *tx, uint32_t v)
{
    Google__Protobuf__UInt32Value *w = TR_NEW(tx, google__protobuf__uint32_value);
    w->value = v;
    return w;
}

Google__Protobuf__BoolValue *tr_bool(tr_ctx *tx, bool v)
{
    Google__Protobuf__BoolValue *w = TR_NEW(tx, google__protobuf__bool_value);
    w->value = v;
    return w;
}

Google__Protobuf__Duration *tr_dur(tr_ctx *tx, const Google__Protobuf__Duration *d)
{
    Google__Protobuf__Duration *w = TR_NEW(tx, google__protobuf__duration);
    if (d) {
        w->seconds = d->seconds;
        w->nanos = d->nanos;
    }
    return w;
}

Google__Protobuf__Duration *tr_dur_ms(tr_ctx *tx, int64_t ms)
{
    Google__Protobuf__Duration *w = TR_NEW(tx, google__protobuf__duration);
    w->seconds = ms / 1000;
    w->nanos = (int32_t)(ms % 1000) * 1000000;
    return w;
}

int64_t tr_dur_to_ms(const Google__Protobuf__Duration *d)
{
    if (!d)
        return -1;
    return d->seconds * 1000 + d->nanos / 1000000;
}

Google__Protobuf__Any *tr_any(tr_ctx *tx, const ProtobufCMessage *m)
{
    Google__Protobuf__Any *a = TR_NEW(tx, google__protobuf__any);
    size_t len = protobuf_c_message_get_packed_size(m);
    a->type_url = tr_printf(tx, TYPE_PREFIX "%s", m->descriptor->name);
    a->value.data = tr_alloc(tx, len ? len : 1);
    a->value.len = protobuf_c_message_pack(m, a->value.data);
    return a;
}

Envoy__Config__Core__V3__ConfigSource *tr_ads(tr_ctx *tx)
{
    Envoy__Config__Core__V3__ConfigSource *cs = TR_NEW(tx, envoy__config__core__v3__config_source);
    cs->resource_api_version = ENVOY__CONFIG__CORE__V3__API_VERSION__V3;
    cs->config_source_specifier_case = ENVOY__CONFIG__CORE__V3__CONFIG_SOURCE__CONFIG_SOURCE_SPECIFIER_ADS;
    cs->ads = TR_NEW(tx, envoy__config__core__v3__aggregated_config_source);
    return cs;
}

Envoy__Type__Matcher__V3__RegexMatcher *tr_regex(tr_ctx *tx, const char *re)
{
    Envoy__Type__Matcher__V3__RegexMatcher *m = TR_NEW(tx, envoy__type__matcher__v3__regex_matcher);
    m->regex = tr_strdup(tx, re);
    return m;
}

void tr_route_filter_config(tr_ctx *tx, tr_route_t *r, const char *filter, const ProtobufCMessage *m)
{
    Envoy__Config__Route__V3__Route__TypedPerFilterConfigEntry *e =
        TR_NEW(tx, envoy__config__route__v3__route__typed_per_filter_config_entry);
    e->key = tr_strdup(tx, filter);
    e->value = tr_any(tx, m);
    TR_PUSH(tx, r, typed_per_filter_config, e);
}

void tr_cluster_weight_filter_config(tr_ctx *tx, Envoy__Config__Route__V3__WeightedCluster__ClusterWeight *cw,
                                     const char *filter, const ProtobufCMessage *m)
{
    Envoy__Config__Route__V3__WeightedCluster__ClusterWeight__TypedPerFilterConfigEntry *e =
        TR_NEW(tx, envoy__config__route__v3__weighted_cluster__cluster_weight__typed_per_filter_config_entry);
    e->key = tr_strdup(tx, filter);
    e->value = tr_any(tx, m);
    TR_PUSH(tx, cw, typed_per_filter_config, e);
}

void tr_vhost_filter_config(tr_ctx *tx, tr_vhost_t *vh, const char *filter, const ProtobufCMessage *m)
{
    Envoy__Config__Route__V3__VirtualHost__TypedPerFilterConfigEntry *e =
        TR_NEW(tx, envoy__config__route__v3__virtual_host__typed_per_filter_config_entry);
    e->key = tr_strdup(tx, filter);
    e->value = tr_any(tx, m);
    TR_PUSH(tx, vh, typed_per_filter_config, e);
}

void tr_add_filter(tr_ctx *tx, tr_filters *f, int stage, const char *name, const ProtobufCMessage *config)
{
    Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpFilter *hf;
    for (size_t i = 0; i < f->n; i++)
        if (strcmp(f->v[i].f->name, name) == 0)
            return;
    if (f->n == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 8;
        struct tr_filter_item *v = tr_alloc(tx, cap * sizeof *v);
        if (f->n)
            memcpy(v, f->v, f->n * sizeof *v);
        f->v = v;
        f->cap = cap;
    }
    hf = TR_NEW(tx, envoy__extensions__filters__network__http_connection_manager__v3__http_filter);
    hf->name = tr_strdup(tx, name);
    hf->config_type_case =
        ENVOY__EXTENSIONS__FILTERS__NETWORK__HTTP_CONNECTION_MANAGER__V3__HTTP_FILTER__CONFIG_TYPE_TYPED_CONFIG;
    hf->typed_config = tr_any(tx, config);
    f->v[f->n].stage = stage;
    f->v[f->n].f = hf;
    f->n++;
}

void tr_disable_filter(tr_filters *f, const char *name)
{
    for (size_t i = 0; i < f->n; i++)
        if (strcmp(f->v[i].f->name, name) == 0)
            f->v[i].f->disabled = 1;
}

void tr_rec_rt(tr_ctx *tx, long idx, uint8_t flags)
{
    tr_rec *r = tx->rec;
    if (!r)
        return;
    for (size_t i = 0; i < r->n_rt; i++)
        if (r->rt_idx[i] == idx) {
            r->rt_flags[i] |= flags;
            return;
        }
    if (r->n_rt == r->cap_rt) {
        size_t cap = r->cap_rt ? r->cap_rt * 2 : 8;
        long *a = tr_alloc(tx, cap * sizeof *a);
        uint8_t *b = tr_alloc(tx, cap);
        if (r->n_rt) {
            memcpy(a, r->rt_idx, r->n_rt * sizeof *a);
            memcpy(b, r->rt_flags, r->n_rt);
        }
        r->rt_idx = a;
        r->rt_flags = b;
        r->cap_rt = cap;
    }
    r->rt_idx[r->n_rt] = idx;
    r->rt_flags[r->n_rt++] = flags;
}

static void rec_use(tr_ctx *tx, const sl_tr_plugin *p)
{
    tr_rec *r = tx->rec;
    if (!r)
        return;
    for (size_t i = 0; i < r->n_used; i++)
        if (r->used[i] == p)
            return;
    if (r->n_used < sizeof r->used / sizeof r->used[0])
        r->used[r->n_used++] = p;
    else
        r->stateful = true; /* cannot replay it: do not keep */
}

void tr_use(tr_ctx *tx, const sl_tr_plugin *p)
{
    rec_use(tx, p);
    if (tr_used(tx, p) || tx->n_used == sizeof tx->used / sizeof tx->used[0])
        return;
    tx->state[tx->n_used] = NULL;
    tx->used[tx->n_used++] = p;
}

void *tr_state(tr_ctx *tx, const sl_tr_plugin *p)
{
    if (tx->rec)
        tx->rec->stateful = true;
    for (size_t i = 0; i < tx->n_used; i++)
        if (tx->used[i] == p)
            return tx->state[i];
    return NULL;
}

void tr_set_state(tr_ctx *tx, const sl_tr_plugin *p, void *state)
{
    if (tx->rec)
        tx->rec->stateful = true;
    tr_use(tx, p);
    for (size_t i = 0; i < tx->n_used; i++)
        if (tx->used[i] == p)
            tx->state[i] = state;
}

void tr_forget_vhost(tr_ctx *tx, const char *vhost)
{
    for (size_t i = 0; i < tx->n_used; i++)
        if (tx->used[i]->forget)
            tx->used[i]->forget(tx, vhost);
}

bool tr_used(tr_ctx *tx, const sl_tr_plugin *p)
{
    for (size_t i = 0; i < tx->n_used; i++)
        if (tx->used[i] == p)
            return true;
    return false;
}

/* ---- string map: open addressing, FNV-1a ---- */

static size_t hash(const char *s)
{
    size_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

void *tr_map_get(const tr_map *m, const char *key)
{
    if (!m->cap)
        return NULL;
    for (size_t i = hash(key) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        if (!m->keys[i])
            return NULL;
        if (strcmp(m->keys[i], key) == 0)
            return m->vals[i];
    }
}

void tr_map_put(tr_ctx *tx, tr_map *m, const char *key, void *val)
{
    if ((m->n + 1) * 2 > m->cap) {
        tr_map old = *m;
        m->cap = old.cap ? old.cap * 2 : 64;
        m->keys = tr_alloc(tx, m->cap * sizeof *m->keys);
        m->vals = tr_alloc(tx, m->cap * sizeof *m->vals);
        memset(m->keys, 0, m->cap * sizeof *m->keys);
        m->n = 0;
        for (size_t i = 0; i < old.cap; i++)
            if (old.keys[i])
                tr_map_put(tx, m, old.keys[i], old.vals[i]);
    }
    for (size_t i = hash(key) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        if (!m->keys[i]) {
            m->keys[i] = tr_strdup(tx, key);
            m->vals[i] = val;
            m->n++;
            return;
        }
        if (strcmp(m->keys[i], key) == 0) {
            m->vals[i] = val;
            return;
        }
    }
}

/* ---- reports ---- */

tr_rep *tr_rep_get(tr_ctx *tx, const sl_kind *k, const char *ns, const char *name)
{
    char *key = tr_printf(tx, "%s/%s/%s", k->kind, ns, name);
    tr_rep *r = tr_map_get(&tx->reports, key);
    if (!r) {
        r = tr_alloc(tx, sizeof *r);
        memset(r, 0, sizeof *r);
        r->kind = k;
        r->ns = tr_strdup(tx, ns);
        r->name = tr_strdup(tx, name);
        tr_map_put(tx, &tx->reports, key, r);
    }
    return r;
}

const tr_rep *tr_rep_find(tr_ctx *tx, const sl_kind *k, const char *ns, const char *name)
{
    char buf[512];
    size_t lk = strlen(k->kind), ln = strlen(ns), lm = strlen(name);
    char *key = buf;
    if (lk + ln + lm + 3 > sizeof buf)
        return tr_map_get(&tx->reports, tr_printf(tx, "%s/%s/%s", k->kind, ns, name));
    memcpy(key, k->kind, lk);
    key[lk] = '/';
    memcpy(key + lk + 1, ns, ln);
    key[lk + 1 + ln] = '/';
    memcpy(key + lk + 2 + ln, name, lm + 1);
    return tr_map_get(&tx->reports, key);
}

void tr_rep_add(tr_ctx *tx, tr_rep *r, bool error, const char *msg)
{
    char ***v = error ? &r->errors : &r->warnings;
    size_t *n = error ? &r->n_errors : &r->n_warnings;
    for (size_t i = 0; i < *n; i++)
        if (strcmp((*v)[i], msg) == 0)
            return;
    tr_push_(tx, (void ***)(void *)v, n, tr_strdup(tx, msg));
}

static void report(tr_ctx *tx, bool error, const char *fmt, va_list ap)
{
    char buf[2048];
    if (!tx->cur)
        return;
    vsnprintf(buf, sizeof buf, fmt, ap);
    if (error && tx->demote_errors) {
        error = false;
        tx->demoted = true;
    }
    if (error)
        tx->cur->errors++;
    tr_rep_add(tx, tr_rep_get(tx, tx->cur->kind, tx->cur->ns, tx->cur->name), error, buf);
    if (tx->rec) {
        tr_rec *r = tx->rec;
        if (r->n_reps == r->cap_reps) {
            size_t cap = r->cap_reps ? r->cap_reps * 2 : 8;
            tr_vh_rep *v = tr_alloc(tx, cap * sizeof *v);
            if (r->n_reps)
                memcpy(v, r->reps, r->n_reps * sizeof *v);
            r->reps = v;
            r->cap_reps = cap;
        }
        r->reps[r->n_reps].kind = tr_kind_index(tx->cur->kind);
        r->reps[r->n_reps].ns = (char *)tx->cur->ns;
        r->reps[r->n_reps].name = (char *)tx->cur->name;
        r->reps[r->n_reps].msg = tr_strdup(tx, buf);
        r->reps[r->n_reps].error = error;
        r->n_reps++;
    }
}

void tr_error(tr_ctx *tx, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    report(tx, true, fmt, ap);
    va_end(ap);
}

void tr_warn(tr_ctx *tx, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    report(tx, false, fmt, ap);
    va_end(ap);
}

const Sluice__V1__SettingsSpec *tr_settings(tr_ctx *tx) { return tx->settings; }

const char *tr_settings_namespace(tr_ctx *tx) { return tx->opts.settings_namespace; }

/* ---- lookups ---- */

static const ProtobufCMessage *find_eff(tr_ctx *tx, const char *kind, const char *ns, const char *name)
{
    const sl_kind *k = sl_kind_by_name(kind);
    int ki = tr_kind_index(k);
    long pos;
    const tr_entry *e;
    if (ki < 0 || !name || !name[0])
        return NULL;
    pos = tr_bucket_find(&tx->store->b[ki], ns, name);
    if (pos < 0)
        return NULL;
    e = &tx->store->b[ki].v[pos];
    if (tx->flags[ki] && (tx->flags[ki][pos] & TR_REJECTED))
        return (tx->flags[ki][pos] & TR_USED_GOOD) ? e->good : NULL;
    return e->msg;
}

static const char *ref_ns(const Sluice__V1__ResourceRef *ref, const char *def_ns)
{
    return ref->namespace_ && ref->namespace_[0] ? ref->namespace_ : def_ns;
}

void tr_reach_upstream(tr_ctx *tx, long idx)
{
    tr_rec *r = tx->rec;
    if (idx < 0 && idx != TR_REACH_ALL)
        return;
    if (tx->reach && idx == TR_REACH_ALL)
        memset(tx->reach, 1, tx->n_reach);
    else if (tx->reach && (size_t)idx < tx->n_reach)
        tx->reach[idx] = 1;
    if (!r || (r->n_up && r->up_idx[r->n_up - 1] == idx))
        return;
    if (r->n_up == r->cap_up) {
        size_t cap = r->cap_up ? r->cap_up * 2 : 8;
        long *a = tr_alloc(tx, cap * sizeof *a);
        if (r->n_up)
            memcpy(a, r->up_idx, r->n_up * sizeof *a);
        r->up_idx = a;
        r->cap_up = cap;
    }
    r->up_idx[r->n_up++] = idx;
}

/* Every look-up of an upstream for a proxy is a reference: its cluster
 * (and the secrets the cluster names) goes to that proxy. */
const Sluice__V1__Upstream *tr_find_upstream(tr_ctx *tx, const Sluice__V1__ResourceRef *ref, const char *def_ns)
{
    const Sluice__V1__Upstream *up;
    if (!ref)
        return NULL;
    up = (const Sluice__V1__Upstream *)find_eff(tx, "Upstream", ref_ns(ref, def_ns), ref->name);
    if (up && (tx->reach || tx->rec))
        tr_reach_upstream(tx, tr_bucket_find(tr_bucket_of(tx, tr_kind.upstream), ref_ns(ref, def_ns), ref->name));
    return up;
}

const Sluice__V1__Secret *tr_find_secret(tr_ctx *tx, const Sluice__V1__ResourceRef *ref, const char *def_ns)
{
    if (!ref)
        return NULL;
    return (const Sluice__V1__Secret *)find_eff(tx, "Secret", ref_ns(ref, def_ns), ref->name);
}

const Sluice__V1__Secret *tr_find_secret_granted(tr_ctx *tx, const Sluice__V1__ResourceRef *ref, const char *def_ns,
                                                 const char **why)
{
    const Sluice__V1__Secret *sec = tr_find_secret(tx, ref, def_ns);
    const char *sns = ref ? ref_ns(ref, def_ns) : def_ns;
    *why = NULL;
    if (!sec || strcmp(sns, def_ns) == 0 || sl_kind_secret_grants(sec->metadata, def_ns))
        return sec;
    *why = tr_printf(tx, "Secret %s.%s is in another namespace and does not grant access to namespace %s "
                         "(annotation %s on the Secret lists the namespaces that may refer to it, or \"*\")",
                     sns, ref->name, def_ns, TR_SECRET_GRANT);
    return NULL;
}

char *tr_cluster_name(tr_ctx *tx, const char *name, const char *ns) { return tr_printf(tx, "%s_%s", name, ns); }

/* ---- output ---- */

bool tr_out_add(tr_ctx *tx, sl_xds_type t, const char *name, const ProtobufCMessage *m)
{
    tr_out *o;
    if (tr_map_get(&tx->out_names[t], name))
        return false;
    o = tr_alloc(tx, sizeof *o);
    memset(o, 0, sizeof *o);
    o->name = tr_strdup(tx, name);
    o->msg = m;
    o->seq = tx->n_out[t];
    tr_map_put(tx, &tx->out_names[t], name, o);
    tr_push_(tx, (void ***)(void *)&tx->out[t], &tx->n_out[t], o);
    return true;
}

bool tr_out_add_bytes(tr_ctx *tx, sl_xds_type t, const char *name, const uint8_t *bytes, size_t len)
{
    tr_out *o;
    if (tr_map_get(&tx->out_names[t], name))
        return false;
    o = tr_alloc(tx, sizeof *o);
    memset(o, 0, sizeof *o);
    o->name = tr_strdup(tx, name);
    o->seq = tx->n_out[t];
    o->bytes = bytes;
    o->len = len;
    tr_map_put(tx, &tx->out_names[t], name, o);
    tr_push_(tx, (void ***)(void *)&tx->out[t], &tx->n_out[t], o);
    return true;
}

bool tr_out_add_shared(tr_ctx *tx, sl_xds_type t, tr_blob *b)
{
    tr_out *o;
    if (!tr_out_add_bytes(tx, t, b->name, b->data, b->len))
        return false;
    o = tx->out[t][tx->n_out[t] - 1];
    o->name = b->name;
    o->blob = b;
    return true;
}

void tr_out_add_blob(tr_ctx *tx, sl_xds_type t, tr_blob *b)
{
    tr_out *o = tr_alloc(tx, sizeof *o);
    memset(o, 0, sizeof *o);
    o->name = b->name;
    o->bytes = b->data;
    o->len = b->len;
    o->blob = b;
    o->seq = tx->n_out[t];
    tr_push_(tx, (void ***)(void *)&tx->out[t], &tx->n_out[t], o);
}

/* A DataSource of specifier c (a file name or an inline string), s. */
static Envoy__Config__Core__V3__DataSource *data_source(tr_ctx *tx, Envoy__Config__Core__V3__DataSource__SpecifierCase c,
                                                        const char *s)
{
    Envoy__Config__Core__V3__DataSource *d = TR_NEW(tx, envoy__config__core__v3__data_source);
    d->specifier_case = c;
    if (c == ENVOY__CONFIG__CORE__V3__DATA_SOURCE__SPECIFIER_FILENAME)
        d->filename = tr_strdup(tx, s);
    else
        d->inline_string = tr_strdup(tx, s);
    return d;
}

Envoy__Config__Core__V3__DataSource *tr_inline_string(tr_ctx *tx, const char *s)
{
    return data_source(tx, ENVOY__CONFIG__CORE__V3__DATA_SOURCE__SPECIFIER_INLINE_STRING, s);
}

Envoy__Config__Core__V3__DataSource *tr_file_source(tr_ctx *tx, const char *path)
{
    return data_source(tx, ENVOY__CONFIG__CORE__V3__DATA_SOURCE__SPECIFIER_FILENAME, path);
}

Envoy__Extensions__TransportSockets__Tls__V3__SdsSecretConfig *tr_sds_secret(tr_ctx *tx, const Sluice__V1__Secret *sec,
                                                                            bool validation)
{
    const Sluice__V1__TlsSecret *tls;
    Envoy__Extensions__TransportSockets__Tls__V3__SdsSecretConfig *sds;
    Envoy__Extensions__TransportSockets__Tls__V3__Secret *s;
    const char *name;

    if (!sec || !sec->spec || sec->spec->kind_case != SLUICE__V1__SECRET_SPEC__KIND_TLS)
        return NULL;
    tls = sec->spec->tls;
    if (validation && (!tls->root_ca || !tls->root_ca[0]))
        return NULL;
    name = tr_printf(tx, "%s_%s%s", sec->metadata->name, sec->metadata->namespace_, validation ? "-ca" : "");
    if (!tr_map_get(&tx->out_names[SL_XDS_SECRET], name)) {
        s = TR_NEW(tx, envoy__extensions__transport_sockets__tls__v3__secret);
        s->name = tr_strdup(tx, name);
        if (validation) {
            s->type_case = ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__SECRET__TYPE_VALIDATION_CONTEXT;
            s->validation_context = TR_NEW(tx, envoy__extensions__transport_sockets__tls__v3__certificate_validation_context);
            s->validation_context->trusted_ca = tr_inline_string(tx, tls->root_ca);
        } else {
            s->type_case = ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__SECRET__TYPE_TLS_CERTIFICATE;
            s->tls_certificate = TR_NEW(tx, envoy__extensions__transport_sockets__tls__v3__tls_certificate);
            s->tls_certificate->certificate_chain = tr_inline_string(tx, tls->cert_chain);
            s->tls_certificate->private_key = tr_inline_string(tx, tls->private_key);
            if (tls->ocsp_staple.len) {
                Envoy__Config__Core__V3__DataSource *d = TR_NEW(tx, envoy__config__core__v3__data_source);
                d->specifier_case = ENVOY__CONFIG__CORE__V3__DATA_SOURCE__SPECIFIER_INLINE_BYTES;
                d->inline_bytes = tls->ocsp_staple;
                s->tls_certificate->ocsp_staple = d;
            }
        }
        tr_out_add(tx, SL_XDS_SECRET, name, &s->base);
    }
    sds = TR_NEW(tx, envoy__extensions__transport_sockets__tls__v3__sds_secret_config);
    sds->name = tr_strdup(tx, name);
    sds->sds_config = tr_ads(tx);
    return sds;
}

Envoy__Type__V3__TokenBucket *tr_token_bucket(tr_ctx *tx, const Sluice__V1__TokenBucket *b, const char *p)
{
    Envoy__Type__V3__TokenBucket *t = TR_NEW(tx, envoy__type__v3__token_bucket);
    int64_t ms = b->fill_interval ? tr_dur_to_ms(b->fill_interval) : 1000;
    if (b->max_tokens < 1)
        tr_error(tx, "%s.maxTokens: at least 1", p);
    if (ms < 50)
        tr_error(tx, "%s.fillInterval: at least 50ms", p);
    if (b->tokens_per_fill && b->tokens_per_fill->value < 1)
        tr_error(tx, "%s.tokensPerFill: at least 1", p);
    t->max_tokens = b->max_tokens;
    t->tokens_per_fill = tr_u32(tx, b->tokens_per_fill ? b->tokens_per_fill->value : 1);
    t->fill_interval = tr_dur_ms(tx, ms);
    return t;
}

Envoy__Config__Core__V3__HeaderValueOption *tr_header_option(tr_ctx *tx, const Sluice__V1__HeaderValueOption *h)
{
    Envoy__Config__Core__V3__HeaderValueOption *o = TR_NEW(tx, envoy__config__core__v3__header_value_option);
    o->header = TR_NEW(tx, envoy__config__core__v3__header_value);
    o->header->key = tr_strdup(tx, h->header ? h->header->key : "");
    o->header->value = tr_strdup(tx, h->header ? h->header->value : "");
    o->append_action = (h->append && !h->append->value)
                           ? ENVOY__CONFIG__CORE__V3__HEADER_VALUE_OPTION__HEADER_APPEND_ACTION__OVERWRITE_IF_EXISTS_OR_ADD
                           : ENVOY__CONFIG__CORE__V3__HEADER_VALUE_OPTION__HEADER_APPEND_ACTION__APPEND_IF_EXISTS_OR_ADD;
    return o;
}

const char *tr_check_header_name(const char *name, bool allow_pseudo)
{
    const char *p = name;
    if (!name || !name[0])
        return "a header name is required";
    if (*p == ':') {
        if (!allow_pseudo)
            return "pseudo-headers (':...') cannot be set here";
        p++;
        if (!*p)
            return "':' is not a header name";
    }
    for (; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c <= 32 || c >= 127 || strchr("\"(),/;<=>?@[\\]{}:", c))
            return "a header name is a token: letters, digits and !#$%&'*+-.^_`|~";
    }
    return NULL;
}

ProtobufCMessage *tr_unpack(tr_ctx *tx, const ProtobufCMessageDescriptor *desc, const void *data, size_t len)
{
    ProtobufCMessage *m = protobuf_c_message_unpack(desc, &tx->arena.allocator, len, data);
    if (!m && tx->arena.oom)
        longjmp(tx->oom, 1);
    return m;
}

/* The Struct of namespace ns in the metadata *md, added when missing. */
static Google__Protobuf__Struct *metadata_ns(tr_ctx *tx, Envoy__Config__Core__V3__Metadata **md, const char *ns)
{
    Envoy__Config__Core__V3__Metadata__FilterMetadataEntry *fe;
    if (!*md)
        *md = TR_NEW(tx, envoy__config__core__v3__metadata);
    for (size_t i = 0; i < (*md)->n_filter_metadata; i++)
        if (strcmp((*md)->filter_metadata[i]->key, ns) == 0)
            return (*md)->filter_metadata[i]->value;
    fe = TR_NEW(tx, envoy__config__core__v3__metadata__filter_metadata_entry);
    fe->key = tr_strdup(tx, ns);
    fe->value = TR_NEW(tx, google__protobuf__struct);
    TR_PUSH(tx, *md, filter_metadata, fe);
    return fe->value;
}

void tr_metadata_put(tr_ctx *tx, Envoy__Config__Core__V3__Metadata **md, const char *ns, const char *key,
                     Google__Protobuf__Value *value)
{
    Google__Protobuf__Struct *st = metadata_ns(tx, md, ns);
    Google__Protobuf__Struct__FieldsEntry *e;
    size_t at;
    for (size_t i = 0; i < st->n_fields; i++)
        if (strcmp(st->fields[i]->key, key) == 0) {
            st->fields[i]->value = value;
            return;
        }
    e = TR_NEW(tx, google__protobuf__struct__fields_entry);
    e->key = tr_strdup(tx, key);
    e->value = value;
    TR_PUSH(tx, st, fields, e);
    /* sorted by key: the same labels give the same bytes whatever the order
     * of the map in the input */
    for (at = st->n_fields - 1; at > 0 && strcmp(st->fields[at - 1]->key, e->key) > 0; at--)
        st->fields[at] = st->fields[at - 1];
    st->fields[at] = e;
}

void tr_metadata_put_string(tr_ctx *tx, Envoy__Config__Core__V3__Metadata **md, const char *ns, const char *key,
                            const char *value)
{
    Google__Protobuf__Value *v = TR_NEW(tx, google__protobuf__value);
    v->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE;
    v->string_value = tr_strdup(tx, value);
    tr_metadata_put(tx, md, ns, key, v);
}

Envoy__Config__Core__V3__Metadata *tr_lb_metadata(tr_ctx *tx, size_t n, const char *const *keys,
                                                  const char *const *values)
{
    Envoy__Config__Core__V3__Metadata *md = NULL;
    metadata_ns(tx, &md, "envoy.lb"); /* there when n is 0 too */
    for (size_t i = 0; i < n; i++)
        tr_metadata_put_string(tx, &md, "envoy.lb", keys[i], values[i]);
    return md;
}

Envoy__Config__Core__V3__Http2ProtocolOptions *tr_http2_options(tr_ctx *tx, const Google__Protobuf__UInt32Value *stream_window,
                                                                const Google__Protobuf__UInt32Value *conn_window,
                                                                const Google__Protobuf__UInt32Value *max_streams,
                                                                const char *p)
{
    Envoy__Config__Core__V3__Http2ProtocolOptions *h2 = TR_NEW(tx, envoy__config__core__v3__http2_protocol_options);
    const Google__Protobuf__UInt32Value *w[] = {stream_window, conn_window};
    for (int i = 0; i < 2; i++)
        if (w[i] && (w[i]->value < 65535 || w[i]->value > 2147483647u))
            tr_error(tx, "%s.%s: %u is not between 65535 and 2147483647", p,
                     i ? "initialConnectionWindowSize" : "initialStreamWindowSize", w[i]->value);
    if (max_streams && (max_streams->value < 1 || max_streams->value > 2147483647u))
        tr_error(tx, "%s.maxConcurrentStreams: %u is not between 1 and 2147483647", p, max_streams->value);
    if (stream_window)
        h2->initial_stream_window_size = tr_u32(tx, stream_window->value);
    if (conn_window)
        h2->initial_connection_window_size = tr_u32(tx, conn_window->value);
    if (max_streams)
        h2->max_concurrent_streams = tr_u32(tx, max_streams->value);
    return h2;
}

Envoy__Config__Core__V3__CidrRange *tr_cidr_range(tr_ctx *tx, const char *address, const Google__Protobuf__UInt32Value *len,
                                                  const char *p)
{
    Envoy__Config__Core__V3__CidrRange *r;
    unsigned char a[16];
    bool v6 = inet_pton(AF_INET6, address, a) == 1;
    if (!v6 && inet_pton(AF_INET, address, a) != 1) {
        tr_error(tx, "%s.addressPrefix: \"%s\" is not an IP address", p, address);
        return NULL;
    }
    if (len && len->value > (v6 ? 128u : 32u)) {
        tr_error(tx, "%s.prefixLen: %u is longer than the address", p, len->value);
        return NULL;
    }
    r = TR_NEW(tx, envoy__config__core__v3__cidr_range);
    r->address_prefix = tr_strdup(tx, address);
    if (len)
        r->prefix_len = tr_u32(tx, len->value);
    return r;
}
