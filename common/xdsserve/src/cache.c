/* cache.c - resources, snapshots and the per-proxy cache (see cache.h). */
#include "sluice/pbcheck.h"
#include "sluice/xds_cache.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "envoy/config/cluster/v3/cluster.pb-c.h"
#include "envoy/config/endpoint/v3/endpoint.pb-c.h"
#include "envoy/config/listener/v3/listener.pb-c.h"
#include "envoy/config/route/v3/route.pb-c.h"
#include "envoy/extensions/transport_sockets/tls/v3/secret.pb-c.h"
#include "ratelimit/config/ratelimit/v3/rls_conf.pb-c.h"
#include "sluice/bsearch.h"
#include "sluice/vec.h"
#include "sluice/wire.h"

static const ProtobufCMessageDescriptor *type_desc(sl_xds_type t)
{
    switch (t) {
    case SL_XDS_SECRET: return &envoy__extensions__transport_sockets__tls__v3__secret__descriptor;
    case SL_XDS_CLUSTER: return &envoy__config__cluster__v3__cluster__descriptor;
    case SL_XDS_ENDPOINT: return &envoy__config__endpoint__v3__cluster_load_assignment__descriptor;
    case SL_XDS_LISTENER: return &envoy__config__listener__v3__listener__descriptor;
    case SL_XDS_ROUTE: return &envoy__config__route__v3__route_configuration__descriptor;
    case SL_XDS_RATELIMIT: return &ratelimit__config__ratelimit__v3__rate_limit_config__descriptor;
    default: return NULL;
    }
}

/* For a cluster: its EDS service name (malloc'd) when it is an EDS cluster. */
static sl_status inspect(char **eds_name, sl_xds_type t, const char *name, const uint8_t *packed, size_t len)
{
    ProtobufCMessage *m = NULL;
    *eds_name = NULL;
    if (sl_pb_unpack(&m, type_desc(t), NULL, packed, len) != SL_OK)
        return sl_error_set(SL_ERR_PARSE, "%s \"%.200s\": bytes are not a valid %s: %s", sl_xds_type_token(t),
                            name, type_desc(t)->name, sl_error_msg());
    /* Clients know a resource by the name inside it (field 1 of all six
     * types: name, or cluster_name); the stream matches subscriptions by
     * the name it was stored under. They must agree. */
    const ProtobufCFieldDescriptor *nf = protobuf_c_message_descriptor_get_field(type_desc(t), 1);
    const char *own = nf && nf->type == PROTOBUF_C_TYPE_STRING ? *(char *const *)((const char *)m + nf->offset) : NULL;
    if (own && strcmp(own, name) != 0) {
        sl_status st = sl_error_set(SL_ERR_INVALID, "%s \"%.200s\": the resource names itself \"%.200s\"",
                                    sl_xds_type_token(t), name, own);
        protobuf_c_message_free_unpacked(m, NULL);
        return st;
    }
    if (t == SL_XDS_CLUSTER) {
        Envoy__Config__Cluster__V3__Cluster *c = (Envoy__Config__Cluster__V3__Cluster *)m;
        if (c->cluster_discovery_type_case == ENVOY__CONFIG__CLUSTER__V3__CLUSTER__CLUSTER_DISCOVERY_TYPE_TYPE &&
            c->type == ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__EDS) {
            const char *sn = c->eds_cluster_config && c->eds_cluster_config->service_name[0]
                                 ? c->eds_cluster_config->service_name
                                 : name;
            *eds_name = strdup(sn);
        }
    }
    protobuf_c_message_free_unpacked(m, NULL);
    return SL_OK;
}

/* The packed resource as a head followed by parts framed as field 2 (a
 * RouteConfiguration in parts), or one buffer (n_parts 0). */
typedef struct segs {
    const uint8_t *head;
    size_t head_len;
    const uint8_t *const *part;
    const size_t *part_len;
    size_t n_parts;
} segs;

static uint8_t *put_segs(uint8_t *w, const segs *g)
{
    memcpy(w, g->head, g->head_len);
    w += g->head_len;
    for (size_t i = 0; i < g->n_parts; i++)
        w = sl_wire_ld(w, 2, g->part[i], g->part_len[i]);
    return w;
}

static sl_status res_new_segs(sl_xds_res **out, sl_xds_type t, const char *name, const char *version,
                              const segs *g, int check);

static sl_status res_new(sl_xds_res **out, sl_xds_type t, const char *name, const char *version,
                         const uint8_t *packed, size_t len, int check)
{
    segs g = {packed, len, NULL, NULL, 0};
    return res_new_segs(out, t, name, version, packed ? &g : NULL, check);
}

static sl_status res_new_segs(sl_xds_res **out, sl_xds_type t, const char *name, const char *version,
                              const segs *g, int check)
{
    const uint8_t *packed = g ? g->head : NULL;
    size_t len = g ? g->head_len : 0;
    sl_status st = SL_OK;
    char *eds = NULL;
    sl_xds_res *r = NULL;
    size_t nl = strlen(name), vl = strlen(version);

    *out = NULL;
    for (size_t i = 0; g && i < g->n_parts; i++)
        len += sl_wire_ld_len(g->part_len[i]);
    if (g && check && (st = inspect(&eds, t, name, packed, len)) != SL_OK) /* check: one buffer only */
        return st;
    size_t el = eds ? strlen(eds) + 1 : 0;
    r = calloc(1, sizeof *r + nl + 1 + vl + 1 + el);
    if (!r) {
        st = SL_ERR_NOMEM;
        goto err;
    }
    char *p = (char *)(r + 1);
    memcpy(p, name, nl + 1);
    r->name = p;
    p += nl + 1;
    memcpy(p, version, vl + 1);
    r->version = p;
    p += vl + 1;
    if (eds) {
        memcpy(p, eds, el);
        r->eds_name = p;
    }
    atomic_init(&r->refs, 1);
    r->type = t;
    if (g) {
        /* Any { type_url = 1; value = 2; } */
        const char *url = sl_xds_type_url(t);
        size_t ul = strlen(url);
        size_t any_len = sl_wire_ld_len(ul) + sl_wire_ld_len(len);
        r->sotw_len = sl_wire_ld_len(any_len);
        /* Resource { version = 1; resource = 2 (Any); name = 3; } */
        size_t res_len = sl_wire_ld_len(vl) + sl_wire_ld_len(any_len) + sl_wire_ld_len(nl);
        r->delta_len = sl_wire_ld_len(res_len);
        r->sotw = malloc(r->sotw_len + r->delta_len);
        if (!r->sotw) {
            st = SL_ERR_NOMEM;
            goto err;
        }
        uint8_t *w = sl_wire_ld_head(r->sotw, 2, any_len);
        w = sl_wire_ld(w, 1, url, ul);
        w = put_segs(sl_wire_ld_head(w, 2, len), g);
        r->delta = w;
        w = sl_wire_ld_head(w, 2, res_len);
        w = sl_wire_ld(w, 3, name, nl);
        w = sl_wire_ld(w, 1, version, vl);
        w = sl_wire_ld_head(w, 2, any_len);
        w = sl_wire_ld(w, 1, url, ul);
        put_segs(sl_wire_ld_head(w, 2, len), g);
        r->packed_len = len;
    }
    free(eds);
    *out = r;
    return SL_OK;
err:
    free(eds);
    free(r);
    return sl_error_set(st, "out of memory");
}

sl_status sl_xds_res_new(sl_xds_res **out, sl_xds_type t, const char *name, const char *version,
                         const uint8_t *packed, size_t len)
{
    return res_new(out, t, name, version, packed, len, 1);
}

sl_status sl_xds_res_new_route_parts(sl_xds_res **out, const char *name, const char *version, const uint8_t *head,
                                     size_t head_len, const uint8_t *const *part, const size_t *part_len,
                                     size_t n_parts)
{
    segs g = {head, head_len, part, part_len, n_parts};
    return res_new_segs(out, SL_XDS_ROUTE, name, version, &g, 0);
}

void sl_xds_res_unref(sl_xds_res *r)
{
    if (!r || atomic_fetch_sub_explicit(&r->refs, 1, memory_order_acq_rel) != 1)
        return;
    free(r->sotw);
    free(r);
}

sl_status sl_xds_snapshot_new(sl_xds_snapshot **out, const char *proxy, uint64_t revision)
{
    sl_xds_snapshot *s = calloc(1, sizeof *s);
    if (!s || !(s->proxy = strdup(proxy))) {
        free(s);
        return sl_error_set(SL_ERR_NOMEM, "out of memory");
    }
    atomic_init(&s->refs, 1);
    s->revision = revision;
    *out = s;
    return SL_OK;
}

sl_status sl_xds_snapshot_add(sl_xds_snapshot *s, sl_xds_res *r)
{
    sl_xds_typeset *ts = &s->types[r->type];
    sl_status rc = SL_VEC_RESERVE(ts->v, ts->cap, ts->n + 1);
    if (rc != SL_OK)
        return rc;
    ts->v[ts->n++] = sl_xds_res_ref(r);
    return SL_OK;
}

static int cmp_res(const void *a, const void *b)
{
    return strcmp((*(sl_xds_res *const *)a)->name, (*(sl_xds_res *const *)b)->name);
}

/* A name against a resource (for the search). */
static int cmp_name(const void *key, const void *elem)
{
    return strcmp(key, (*(sl_xds_res *const *)elem)->name);
}

static uint64_t fnv(uint64_t h, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s;; p++) {
        h ^= *p;
        h *= 0x100000001b3ULL;
        if (!*p)
            return h;
    }
}

sl_status sl_xds_snapshot_seal(sl_xds_snapshot *s)
{
    for (int t = 0; t < SL_XDS_TYPE_COUNT; t++) {
        sl_xds_typeset *ts = &s->types[t];
        uint64_t h = 0xcbf29ce484222325ULL;
        size_t sorted = 1;
        while (sorted < ts->n && strcmp(ts->v[sorted - 1]->name, ts->v[sorted]->name) < 0)
            sorted++;
        if (sorted < ts->n) /* a commit's resources come sorted: no sort then */
            qsort(ts->v, ts->n, sizeof *ts->v, cmp_res);
        for (size_t i = 0; i < ts->n; i++) {
            if (i && strcmp(ts->v[i - 1]->name, ts->v[i]->name) == 0)
                return sl_error_set(SL_ERR_INVALID, "duplicate %s \"%.200s\" in revision %" PRIu64 " of %s",
                                    sl_xds_type_token((sl_xds_type)t), ts->v[i]->name, s->revision, s->proxy);
            h = fnv(fnv(h, ts->v[i]->name), ts->v[i]->version);
        }
        snprintf(ts->version, sizeof ts->version, "%016" PRIx64, h);
    }
    return SL_OK;
}

sl_xds_res *sl_xds_snapshot_find(const sl_xds_snapshot *s, sl_xds_type t, const char *name)
{
    const sl_xds_typeset *ts = &s->types[t];
    bool found;
    size_t i = sl_bsearch_pos(&found, name, ts->v, ts->n, sizeof *ts->v, cmp_name);
    return found ? ts->v[i] : NULL;
}

void sl_xds_snapshot_unref(sl_xds_snapshot *s)
{
    if (!s || atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) != 1)
        return;
    for (int t = 0; t < SL_XDS_TYPE_COUNT; t++) {
        for (size_t i = 0; i < s->types[t].n; i++)
            sl_xds_res_unref(s->types[t].v[i]);
        free(s->types[t].v);
    }
    free(s->proxy);
    free(s);
}

struct sl_xds_cache {
    pthread_mutex_t mu;
    sl_xds_snapshot **v; /* one per proxy */
    size_t n, cap;
    sl_xds_cache_cb cb;
    void *ud;
};

sl_status sl_xds_cache_new(sl_xds_cache **out, sl_xds_cache_cb cb, void *ud)
{
    sl_xds_cache *c = calloc(1, sizeof *c);
    if (!c)
        return sl_error_set(SL_ERR_NOMEM, "out of memory");
    pthread_mutex_init(&c->mu, NULL);
    c->cb = cb;
    c->ud = ud;
    *out = c;
    return SL_OK;
}

void sl_xds_cache_free(sl_xds_cache *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n; i++)
        sl_xds_snapshot_unref(c->v[i]);
    free(c->v);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

void sl_xds_cache_commit(sl_xds_cache *c, sl_xds_snapshot *s)
{
    sl_xds_snapshot *old = NULL;
    pthread_mutex_lock(&c->mu);
    size_t i;
    for (i = 0; i < c->n; i++)
        if (strcmp(c->v[i]->proxy, s->proxy) == 0)
            break;
    if (i < c->n) {
        old = c->v[i];
        c->v[i] = s;
    } else {
        if (SL_VEC_RESERVE(c->v, c->cap, c->n + 1) != SL_OK) { /* keep serving the previous state */
            pthread_mutex_unlock(&c->mu);
            sl_xds_snapshot_unref(s);
            return;
        }
        c->v[c->n++] = s;
    }
    sl_xds_snapshot_ref(s); /* keeps s->proxy alive through the callback */
    pthread_mutex_unlock(&c->mu);
    sl_xds_snapshot_unref(old);
    if (c->cb)
        c->cb(c->ud, s->proxy);
    sl_xds_snapshot_unref(s);
}

sl_xds_snapshot *sl_xds_cache_get(sl_xds_cache *c, const char *proxy)
{
    sl_xds_snapshot *s = NULL;
    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; i < c->n; i++)
        if (strcmp(c->v[i]->proxy, proxy) == 0) {
            s = sl_xds_snapshot_ref(c->v[i]);
            break;
        }
    pthread_mutex_unlock(&c->mu);
    return s;
}

size_t sl_xds_cache_count(sl_xds_cache *c)
{
    pthread_mutex_lock(&c->mu);
    size_t n = c->n;
    pthread_mutex_unlock(&c->mu);
    return n;
}
