/* libFuzzer target for the xDS server's per-stream state machine
 * (services/xds/stream.c), without gRPC.
 *
 * The input is a little program: its first byte picks the stream (SotW or
 * delta, ADS or one type), then each step commits a new snapshot to the
 * cache (resources from a small pool of names, versions changing), sends a
 * request built from the bytes (random nonces, versions, type URLs,
 * resource names, error_detail, node; delta subscriptions, unsubscriptions
 * and initial_resource_versions), sends bytes unpacked as a
 * DiscoveryRequest / DeltaDiscoveryRequest the way the server does,
 * commits a resource made from arbitrary bytes (as the xds KV's values
 * reach sl_xds_res_new), or pulls the responses the stream has to send. Invariants (XDS notes rules
 * 2, 3, 13; abort on violation):
 *   - an ADS request with an empty type_url is refused;
 *   - every response decodes, has the stream's type (per-type streams) and
 *     a type URL matching its resources' Any type URLs;
 *   - no name twice in one response;
 *   - no nonce twice in one stream.
 * A refused request ends the stream, as the transport does; the program
 * goes on with a new stream on the same cache.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/vec.h"
#include "sluice/xds_stream.h"
#include "xds_fixtures.h"
#include "fuzz_reader.h"

#define FUZZ_MAX_INPUT 4096
#define MAX_STEPS 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Resource names the snapshots draw from (requests use them too, plus
 * arbitrary strings). */
static const char *const pool[] = {"a", "b", "c", "l"};
#define NPOOL (sizeof(pool) / sizeof(pool[0]))
#define NVERS 4
static const char *const proxies[] = {"gateway-proxy", "gloo-system~edge"};

/* Every (type, name, version) resource, built once. */
static sl_xds_res *prebuilt[SL_XDS_TYPE_COUNT][NPOOL][NVERS];

static void build_pool(void)
{
    static int done;
    if (done)
        return;
    done = 1;
    for (int t = 0; t < SL_XDS_TYPE_COUNT; t++)
        for (size_t n = 0; n < NPOOL; n++)
            for (int v = 0; v < NVERS; v++) {
                char ver[16];
                const char *arg = NULL;
                snprintf(ver, sizeof ver, "%d", v + 1);
                if (t == SL_XDS_LISTENER)
                    arg = v % 2 ? "r" : "a";
                else if (t == SL_XDS_ROUTE)
                    arg = pool[(size_t)v % NPOOL];
                else if (t == SL_XDS_CLUSTER && v == 3)
                    arg = "b"; /* an EDS service name other than its own */
                prebuilt[t][n][v] = fx_res((sl_xds_type)t, pool[n], ver, arg);
            }
}

static char *rstr(reader *r, char *buf, size_t cap) { return rstr_max(r, buf, cap, 16); }

typedef struct fz {
    sl_xds_cache *cache;
    sl_xds_stream *s;
    sl_xds_stream_opts o;
    uint64_t rev;
    /* what the client received last, per type */
    char nonce[SL_XDS_TYPE_COUNT][24];
    char version[SL_XDS_TYPE_COUNT][40];
    /* every nonce of the current stream */
    char (*nonces)[24];
    size_t nnonces, capnonces;
} fz;

static void fail(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz_xds_stream: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    abort();
}

static void new_stream(fz *f)
{
    sl_xds_stream_free(f->s);
    f->s = NULL;
    if (sl_xds_stream_new(&f->s, f->cache, &f->o) != SL_OK)
        fail("stream_new failed", NULL);
    memset(f->nonce, 0, sizeof f->nonce);
    memset(f->version, 0, sizeof f->version);
    f->nnonces = 0;
}

static void commit(fz *f, reader *r)
{
    const char *proxy = proxies[next(r) % 4 == 3];
    sl_xds_snapshot *snap;
    if (sl_xds_snapshot_new(&snap, proxy, ++f->rev) != SL_OK)
        fail("snapshot_new", NULL);
    for (int t = 0; t < SL_XDS_TYPE_COUNT; t++) {
        unsigned mask = next(r), vers = next(r);
        for (size_t n = 0; n < NPOOL; n++)
            if (mask & (1u << n))
                sl_xds_snapshot_add(snap, prebuilt[t][n][(vers >> (2 * n)) % NVERS]);
    }
    if (sl_xds_snapshot_seal(snap) != SL_OK)
        fail("seal refused a snapshot of unique names", sl_error_msg());
    sl_xds_cache_commit(f->cache, snap);
}

/* A snapshot with one resource made from bytes of the input, as the
 * xds KV's values reach sl_xds_res_new (services/xds/source.c): the bytes
 * are refused or become a resource served like any other. */
static void commit_raw(fz *f, reader *r)
{
    sl_xds_type t = (sl_xds_type)(next(r) % SL_XDS_TYPE_COUNT);
    const char *nm = pool[next(r) % NPOOL];
    size_t len = next(r);
    sl_xds_snapshot *snap;
    sl_xds_res *res;
    if (len > r->n)
        len = r->n;
    if (sl_xds_res_new(&res, t, nm, "raw", r->p, len) == SL_OK) {
        if (res->packed_len != len)
            fail("a resource's packed length is not its bytes'", nm);
        if (sl_xds_snapshot_new(&snap, proxies[0], ++f->rev) != SL_OK)
            fail("snapshot_new", NULL);
        sl_xds_snapshot_add(snap, res);
        sl_xds_snapshot_add(snap, prebuilt[SL_XDS_CLUSTER][(size_t)(nm[0] == 'a')][0]);
        if (sl_xds_snapshot_seal(snap) != SL_OK)
            fail("seal refused a snapshot of unique names", sl_error_msg());
        sl_xds_cache_commit(f->cache, snap);
        sl_xds_res_unref(res);
    }
    r->p += len;
    r->n -= len;
}

static const char *type_url(fz *f, reader *r, char *buf, size_t cap)
{
    unsigned c = next(r) % (SL_XDS_TYPE_COUNT + 3);
    (void)f;
    if (c < SL_XDS_TYPE_COUNT)
        return sl_xds_type_url((sl_xds_type)c);
    if (c == SL_XDS_TYPE_COUNT)
        return "";
    if (c == SL_XDS_TYPE_COUNT + 1)
        return "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig";
    return rstr(r, buf, cap);
}

static char *name(reader *r, char *buf, size_t cap)
{
    unsigned c = next(r) % (NPOOL + 3);
    if (c < NPOOL)
        snprintf(buf, cap, "%s", pool[c]);
    else if (c == NPOOL)
        snprintf(buf, cap, "*");
    else if (c == NPOOL + 1)
        snprintf(buf, cap, "a-routes");
    else
        rstr(r, buf, cap);
    return buf;
}

/* The nonce field: none, the last received for some type, or arbitrary. */
static char *nonce(fz *f, reader *r, char *buf, size_t cap)
{
    unsigned c = next(r) % 8;
    if (c < 2)
        return "";
    if (c < 7) {
        snprintf(buf, cap, "%s", f->nonce[(c + next(r)) % SL_XDS_TYPE_COUNT]);
        return buf;
    }
    return rstr(r, buf, cap);
}

typedef struct reqbufs {
    Envoy__Config__Core__V3__Node node;
    Google__Protobuf__Struct md;
    Google__Protobuf__Struct__FieldsEntry e, *ep;
    Google__Protobuf__Value v;
    Google__Rpc__Status st;
    char url[32], nonce[32], ver[48], node_id[32], role[32], msg[32];
    char names[8][32];
    char *namep[8];
} reqbufs;

static Envoy__Config__Core__V3__Node *node(reader *r, reqbufs *b)
{
    unsigned c = next(r);
    if (!(c & 1))
        return NULL;
    envoy__config__core__v3__node__init(&b->node);
    google__protobuf__struct__init(&b->md);
    google__protobuf__struct__fields_entry__init(&b->e);
    google__protobuf__value__init(&b->v);
    b->node.id = rstr(r, b->node_id, sizeof b->node_id);
    if (c & 2) {
        b->e.key = c & 4 ? "role" : "other";
        b->e.value = &b->v;
        if (c & 8) {
            b->v.kind_case = GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE;
            b->v.string_value = c & 16 ? (char *)proxies[(c >> 5) & 1] : rstr(r, b->role, sizeof b->role);
        } else {
            b->v.kind_case = GOOGLE__PROTOBUF__VALUE__KIND_NUMBER_VALUE;
            b->v.number_value = 1;
        }
        b->ep = &b->e;
        b->md.n_fields = 1;
        b->md.fields = &b->ep;
        b->node.metadata = &b->md;
    }
    return &b->node;
}

static Google__Rpc__Status *error_detail(reader *r, reqbufs *b)
{
    unsigned c = next(r);
    if (c % 4 != 3)
        return NULL;
    google__rpc__status__init(&b->st);
    b->st.code = (int32_t)(c >> 2);
    b->st.message = rstr(r, b->msg, sizeof b->msg);
    return &b->st;
}

static size_t names(reader *r, reqbufs *b, size_t first)
{
    size_t n = next(r) % 4;
    for (size_t i = 0; i < n && first + i < 8; i++)
        b->namep[first + i] = name(r, b->names[first + i], sizeof b->names[0]);
    return first + n > 8 ? 8 - first : n;
}

/* Rule 2: on ADS an empty type_url is refused. */
static void check_result(fz *f, sl_status rc, const char *url)
{
    if (f->o.ads && (!url || !url[0]) && rc == SL_OK)
        fail("ADS request with an empty type_url was accepted", NULL);
    if (rc != SL_OK)
        new_stream(f); /* the transport ends the stream */
}

static void send_sotw(fz *f, reader *r)
{
    Envoy__Service__Discovery__V3__DiscoveryRequest req = ENVOY__SERVICE__DISCOVERY__V3__DISCOVERY_REQUEST__INIT;
    reqbufs b;
    sl_xds_req_info info;
    unsigned vc;
    req.type_url = (char *)type_url(f, r, b.url, sizeof b.url);
    req.response_nonce = nonce(f, r, b.nonce, sizeof b.nonce);
    vc = next(r) % 4;
    req.version_info = vc == 0 ? "" : vc < 3 ? f->version[next(r) % SL_XDS_TYPE_COUNT] : rstr(r, b.ver, sizeof b.ver);
    req.node = node(r, &b);
    req.error_detail = error_detail(r, &b);
    req.n_resource_names = names(r, &b, 0);
    req.resource_names = b.namep;
    check_result(f, sl_xds_stream_on_sotw(f->s, &req, &info), req.type_url);
}

static void send_delta(fz *f, reader *r)
{
    Envoy__Service__Discovery__V3__DeltaDiscoveryRequest req =
        ENVOY__SERVICE__DISCOVERY__V3__DELTA_DISCOVERY_REQUEST__INIT;
    Envoy__Service__Discovery__V3__DeltaDiscoveryRequest__InitialResourceVersionsEntry irv[2], *irvp[2];
    char irvk[2][32], irvv[2][32];
    reqbufs b;
    sl_xds_req_info info;
    size_t ns, nu, ni;
    req.type_url = (char *)type_url(f, r, b.url, sizeof b.url);
    req.response_nonce = nonce(f, r, b.nonce, sizeof b.nonce);
    req.node = node(r, &b);
    req.error_detail = error_detail(r, &b);
    ns = names(r, &b, 0);
    nu = names(r, &b, ns);
    req.n_resource_names_subscribe = ns;
    req.resource_names_subscribe = b.namep;
    req.n_resource_names_unsubscribe = nu;
    req.resource_names_unsubscribe = b.namep + ns;
    ni = next(r) % 3;
    for (size_t i = 0; i < ni; i++) {
        envoy__service__discovery__v3__delta_discovery_request__initial_resource_versions_entry__init(&irv[i]);
        irv[i].key = name(r, irvk[i], sizeof irvk[i]);
        snprintf(irvv[i], sizeof irvv[i], "%u", next(r) % (NVERS + 1));
        irv[i].value = irvv[i];
        irvp[i] = &irv[i];
    }
    req.n_initial_resource_versions = ni;
    req.initial_resource_versions = irvp;
    check_result(f, sl_xds_stream_on_delta(f->s, &req, &info), req.type_url);
}

/* Bytes unpacked as the request message, as server.c does. */
static void send_raw(fz *f, reader *r)
{
    size_t len = next(r);
    ProtobufCMessage *m;
    sl_xds_req_info info;
    if (len > r->n)
        len = r->n;
    if (f->o.delta) {
        Envoy__Service__Discovery__V3__DeltaDiscoveryRequest *d =
            envoy__service__discovery__v3__delta_discovery_request__unpack(NULL, len, r->p);
        m = (ProtobufCMessage *)d;
        if (d)
            check_result(f, sl_xds_stream_on_delta(f->s, d, &info), d->type_url);
    } else {
        Envoy__Service__Discovery__V3__DiscoveryRequest *d =
            envoy__service__discovery__v3__discovery_request__unpack(NULL, len, r->p);
        m = (ProtobufCMessage *)d;
        if (d)
            check_result(f, sl_xds_stream_on_sotw(f->s, d, &info), d->type_url);
    }
    if (m)
        protobuf_c_message_free_unpacked(m, NULL);
    r->p += len;
    r->n -= len;
}

static void seen_nonce(fz *f, const char *n)
{
    for (size_t i = 0; i < f->nnonces; i++)
        if (strcmp(f->nonces[i], n) == 0)
            fail("nonce used twice in one stream", n);
    if (SL_VEC_RESERVE(f->nonces, f->capnonces, f->nnonces + 1) != SL_OK)
        abort();
    snprintf(f->nonces[f->nnonces++], sizeof f->nonces[0], "%s", n);
}

static void dup_check(char (*seen)[128], size_t *nseen, const char *nm)
{
    for (size_t j = 0; j < *nseen; j++)
        if (strcmp(seen[j], nm) == 0)
            fail("a name twice in one response", nm);
    snprintf(seen[(*nseen)++], 128, "%s", nm);
}

/* One response: decoded from its wire bytes and checked. 0 when none. */
static int pull(fz *f)
{
    sl_xds_response *resp;
    uint8_t *buf;
    size_t len;
    char(*seen)[128];
    size_t nseen = 0;
    if (sl_xds_stream_next(f->s, &resp) != SL_OK)
        fail("next failed", sl_error_msg());
    if (!resp)
        return 0;
    if (!f->o.ads && resp->type != f->o.type)
        fail("response of another type on a per-type stream", sl_xds_type_short(resp->type));
    if (sl_xds_response_flatten(resp, &buf, &len) != SL_OK)
        abort();
    if (len != sl_xds_response_size(resp))
        fail("flattened size differs from response_size", NULL);
    seen = malloc((resp->nres ? resp->nres : 1) * sizeof *seen);
    if (!seen)
        abort();
    const char *url = sl_xds_type_url(resp->type);
    if (!resp->delta) {
        Envoy__Service__Discovery__V3__DiscoveryResponse *m =
            envoy__service__discovery__v3__discovery_response__unpack(NULL, len, buf);
        if (!m)
            fail("response does not decode", NULL);
        if (strcmp(m->type_url, url) || !m->nonce[0] || !m->version_info[0])
            fail("bad type_url, nonce or version_info", m->type_url);
        if (m->n_resources != resp->nres)
            fail("resource count differs", NULL);
        for (size_t i = 0; i < m->n_resources; i++) {
            char nm[128];
            if (strcmp(m->resources[i]->type_url, url))
                fail("Any type_url differs from the response's", m->resources[i]->type_url);
            fx_wire_name(m->resources[i]->value.data, m->resources[i]->value.len, nm, sizeof nm);
            dup_check(seen, &nseen, nm);
        }
        seen_nonce(f, m->nonce);
        snprintf(f->nonce[resp->type], sizeof f->nonce[0], "%s", m->nonce);
        snprintf(f->version[resp->type], sizeof f->version[0], "%s", m->version_info);
        envoy__service__discovery__v3__discovery_response__free_unpacked(m, NULL);
    } else {
        Envoy__Service__Discovery__V3__DeltaDiscoveryResponse *m =
            envoy__service__discovery__v3__delta_discovery_response__unpack(NULL, len, buf);
        if (!m)
            fail("delta response does not decode", NULL);
        if (strcmp(m->type_url, url) || !m->nonce[0])
            fail("bad type_url or nonce", m->type_url);
        for (size_t i = 0; i < m->n_resources; i++) {
            Envoy__Service__Discovery__V3__Resource *res = m->resources[i];
            char nm[128];
            if (!res->resource || strcmp(res->resource->type_url, url))
                fail("Resource's Any type_url differs from the response's", res->name);
            fx_wire_name(res->resource->value.data, res->resource->value.len, nm, sizeof nm);
            if (strcmp(nm, res->name))
                fail("Resource.name is not the resource's name", res->name);
            dup_check(seen, &nseen, nm);
        }
        for (size_t i = 0; i < m->n_removed_resources; i++)
            for (size_t j = 0; j < m->n_resources; j++)
                if (strcmp(m->removed_resources[i], m->resources[j]->name) == 0)
                    fail("a name both sent and removed", m->removed_resources[i]);
        seen_nonce(f, m->nonce);
        snprintf(f->nonce[resp->type], sizeof f->nonce[0], "%s", m->nonce);
        snprintf(f->version[resp->type], sizeof f->version[0], "%s", m->system_version_info);
        envoy__service__discovery__v3__delta_discovery_response__free_unpacked(m, NULL);
    }
    free(seen);
    free(buf);
    sl_xds_response_free(resp);
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    reader r = {data, size};
    fz f;
    unsigned mode;
    int nacked;

    if (size > FUZZ_MAX_INPUT)
        return 0;
    build_pool();
    memset(&f, 0, sizeof f);
    mode = next(&r);
    f.o.delta = mode & 1;
    f.o.ads = !(mode & 2);
    f.o.type = (sl_xds_type)((mode >> 2) % SL_XDS_TYPE_COUNT);
    f.o.default_proxy = "gateway-proxy";
    if (sl_xds_cache_new(&f.cache, NULL, NULL) != SL_OK)
        abort();
    new_stream(&f);
    for (int step = 0; step < MAX_STEPS && r.n; step++) {
        switch (next(&r) % 7) {
        case 0: commit(&f, &r); break;
        case 6: commit_raw(&f, &r); break;
        case 1:
        case 2:
            if (f.o.delta)
                send_delta(&f, &r);
            else
                send_sotw(&f, &r);
            break;
        case 3: send_raw(&f, &r); break;
        case 4:
            /* the wrong protocol for the stream is refused */
            if (f.o.delta) {
                Envoy__Service__Discovery__V3__DiscoveryRequest q =
                    ENVOY__SERVICE__DISCOVERY__V3__DISCOVERY_REQUEST__INIT;
                sl_xds_req_info info;
                q.type_url = (char *)sl_xds_type_url(SL_XDS_CLUSTER);
                if (sl_xds_stream_on_sotw(f.s, &q, &info) == SL_OK)
                    fail("SotW request accepted on a delta stream", NULL);
            } else {
                Envoy__Service__Discovery__V3__DeltaDiscoveryRequest q =
                    ENVOY__SERVICE__DISCOVERY__V3__DELTA_DISCOVERY_REQUEST__INIT;
                sl_xds_req_info info;
                q.type_url = (char *)sl_xds_type_url(SL_XDS_CLUSTER);
                if (sl_xds_stream_on_delta(f.s, &q, &info) == SL_OK)
                    fail("delta request accepted on a SotW stream", NULL);
            }
            new_stream(&f);
            break;
        case 5:
            for (int i = 0; i < 16 && pull(&f); i++)
                ;
            break;
        }
        (void)sl_xds_stream_synced(f.s, &nacked);
        (void)sl_xds_stream_types(f.s);
        (void)sl_xds_stream_proxy(f.s);
    }
    for (int i = 0; i < 64 && pull(&f); i++)
        ;
    sl_xds_stream_free(f.s);
    sl_xds_cache_free(f.cache);
    free(f.nonces);
    return 0;
}
