/* xds_testlib.h - drives an sl_xds_stream like a client would, for the
 * state machine's unit tests. Header-only (static functions). */
#ifndef SLUICE_XDS_TESTLIB_H
#define SLUICE_XDS_TESTLIB_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/xds_stream.h"
#include "xds_fixtures.h"

typedef struct tctx {
    sl_xds_cache *cache;
    sl_xds_stream *s;
    const char *proxy;
    char nonce[SL_XDS_TYPE_COUNT][24];
    char version[SL_XDS_TYPE_COUNT][40];
    char out[8192];
    char err[512];
} tctx;

static inline void tctx_fail(tctx *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, sizeof c->err, fmt, ap);
    va_end(ap);
    fprintf(stderr, "testlib: %s\n", c->err);
    abort();
}

/* Commits a snapshot from specs "type:name:version[:arg]" (NULL-terminated). */
static inline void tcommit(tctx *c, unsigned long long rev, ...)
{
    sl_xds_snapshot *snap;
    va_list ap;
    if (sl_xds_snapshot_new(&snap, c->proxy, rev) != SL_OK)
        abort();
    va_start(ap, rev);
    for (const char *spec; (spec = va_arg(ap, const char *));) {
        char buf[256], *f[4] = {0};
        int nf = 0;
        snprintf(buf, sizeof buf, "%s", spec);
        for (char *p = buf, *tok; nf < 4 && (tok = strsep(&p, ":"));)
            f[nf++] = tok;
        sl_xds_type t = SL_XDS_SECRET;
        if (nf < 3 || sl_xds_type_from_token(&t, f[0]) != SL_OK)
            tctx_fail(c, "bad spec %s", spec);
        sl_xds_res *r = fx_res(t, f[1], f[2], f[3]);
        sl_xds_snapshot_add(snap, r);
        sl_xds_res_unref(r);
    }
    va_end(ap);
    if (sl_xds_snapshot_seal(snap) != SL_OK)
        tctx_fail(c, "seal: %s", sl_error_msg());
    sl_xds_cache_commit(c->cache, snap);
}

static inline void tctx_init(tctx *c, int delta, int ads, sl_xds_type type)
{
    memset(c, 0, sizeof *c);
    c->proxy = "gateway-proxy";
    if (sl_xds_cache_new(&c->cache, NULL, NULL) != SL_OK)
        abort();
    sl_xds_stream_opts o = {.delta = delta, .ads = ads, .type = type, .default_proxy = "gateway-proxy"};
    if (sl_xds_stream_new(&c->s, c->cache, &o) != SL_OK)
        abort();
}

static inline void tctx_deinit(tctx *c)
{
    sl_xds_stream_free(c->s);
    sl_xds_cache_free(c->cache);
}

/* Pulls the next response; returns a summary:
 *   SotW:  "<sds|cds|..> name name ..."
 *   delta: "<type> +name@version ... -removed ..."
 * or "" when there is nothing to send. The wire bytes are decoded with
 * protobuf-c and checked: each Any's type_url equals the response's, no
 * duplicate names, a nonce that was never used before. */
static inline const char *tpull(tctx *c)
{
    sl_xds_response *r;
    uint8_t *buf;
    size_t len;
    char seen[64][128];
    int nseen = 0;
    if (sl_xds_stream_next(c->s, &r) != SL_OK)
        tctx_fail(c, "next failed: %s", sl_error_msg());
    c->out[0] = 0;
    if (!r)
        return c->out;
    if (sl_xds_response_flatten(r, &buf, &len) != SL_OK)
        abort();
    size_t o = (size_t)snprintf(c->out, sizeof c->out, "%s", sl_xds_type_short(r->type));
    if (!r->delta) {
        Envoy__Service__Discovery__V3__DiscoveryResponse *m =
            envoy__service__discovery__v3__discovery_response__unpack(NULL, len, buf);
        if (!m)
            tctx_fail(c, "response does not decode");
        if (strcmp(m->type_url, sl_xds_type_url(r->type)) || !m->nonce[0] || !m->version_info[0])
            tctx_fail(c, "bad type_url/nonce/version");
        for (size_t i = 0; i < m->n_resources; i++) {
            char name[128];
            if (strcmp(m->resources[i]->type_url, m->type_url))
                tctx_fail(c, "Any type_url %s in %s response", m->resources[i]->type_url, m->type_url);
            fx_wire_name(m->resources[i]->value.data, m->resources[i]->value.len, name, sizeof name);
            for (int j = 0; j < nseen; j++)
                if (!strcmp(seen[j], name))
                    tctx_fail(c, "duplicate %s", name);
            if (nseen < 64)
                snprintf(seen[nseen++], sizeof seen[0], "%s", name);
            o += (size_t)snprintf(c->out + o, sizeof c->out - o, " %s", name);
        }
        snprintf(c->nonce[r->type], sizeof c->nonce[0], "%s", m->nonce);
        snprintf(c->version[r->type], sizeof c->version[0], "%s", m->version_info);
        envoy__service__discovery__v3__discovery_response__free_unpacked(m, NULL);
    } else {
        Envoy__Service__Discovery__V3__DeltaDiscoveryResponse *m =
            envoy__service__discovery__v3__delta_discovery_response__unpack(NULL, len, buf);
        if (!m)
            tctx_fail(c, "delta response does not decode");
        if (strcmp(m->type_url, sl_xds_type_url(r->type)) || !m->nonce[0])
            tctx_fail(c, "bad type_url/nonce");
        for (size_t i = 0; i < m->n_resources; i++) {
            Envoy__Service__Discovery__V3__Resource *res = m->resources[i];
            char name[128];
            if (!res->resource || strcmp(res->resource->type_url, m->type_url))
                tctx_fail(c, "resource Any type_url mismatch");
            fx_wire_name(res->resource->value.data, res->resource->value.len, name, sizeof name);
            if (strcmp(name, res->name))
                tctx_fail(c, "Resource.name %s != %s", res->name, name);
            for (int j = 0; j < nseen; j++)
                if (!strcmp(seen[j], name))
                    tctx_fail(c, "duplicate %s", name);
            if (nseen < 64)
                snprintf(seen[nseen++], sizeof seen[0], "%s", name);
            o += (size_t)snprintf(c->out + o, sizeof c->out - o, " +%s@%s", res->name, res->version);
        }
        for (size_t i = 0; i < m->n_removed_resources; i++)
            o += (size_t)snprintf(c->out + o, sizeof c->out - o, " -%s", m->removed_resources[i]);
        snprintf(c->nonce[r->type], sizeof c->nonce[0], "%s", m->nonce);
        snprintf(c->version[r->type], sizeof c->version[0], "%s", m->system_version_info);
        envoy__service__discovery__v3__delta_discovery_response__free_unpacked(m, NULL);
    }
    free(buf);
    sl_xds_response_free(r);
    return c->out;
}

/* Pulls everything, joined by " | ". */
static inline const char *tdrain(tctx *c)
{
    static char all[16384];
    all[0] = 0;
    for (;;) {
        const char *s = tpull(c);
        if (!s[0])
            break;
        if (all[0])
            strncat(all, " | ", sizeof all - strlen(all) - 1);
        strncat(all, s, sizeof all - strlen(all) - 1);
    }
    return all;
}

#define T_ACK ((const char *)1) /* nonce: the last one received for the type */

/* Sends a SotW request. nonce: NULL = none, T_ACK = the last received,
 * else that string. err != NULL makes it a NACK. Names end with NULL. */
static inline sl_status tsotw(tctx *c, sl_xds_req_info *info, sl_xds_type t, const char *nonce, const char *err, ...)
{
    Envoy__Service__Discovery__V3__DiscoveryRequest req = ENVOY__SERVICE__DISCOVERY__V3__DISCOVERY_REQUEST__INIT;
    Envoy__Config__Core__V3__Node node = ENVOY__CONFIG__CORE__V3__NODE__INIT;
    Google__Rpc__Status st = GOOGLE__RPC__STATUS__INIT;
    char *names[64];
    sl_xds_req_info tmp;
    va_list ap;
    size_t n = 0;
    va_start(ap, err);
    for (char *nm; n < 64 && (nm = va_arg(ap, char *));)
        names[n++] = nm;
    va_end(ap);
    node.id = "test-node";
    req.node = &node;
    req.type_url = (char *)sl_xds_type_url(t);
    req.version_info = c->version[t];
    req.response_nonce = nonce == T_ACK ? c->nonce[t] : nonce ? (char *)nonce : "";
    if (err) {
        st.code = 3;
        st.message = (char *)err;
        req.error_detail = &st;
    }
    req.n_resource_names = n;
    req.resource_names = names;
    return sl_xds_stream_on_sotw(c->s, &req, info ? info : &tmp);
}

/* Sends a delta request. subs/unsubs: comma-separated lists ("" = none);
 * irv: "name=version,..." initial_resource_versions. */
static inline sl_status tdelta(tctx *c, sl_xds_req_info *info, sl_xds_type t, const char *nonce, const char *err,
                        const char *subs, const char *unsubs, const char *irv)
{
    Envoy__Service__Discovery__V3__DeltaDiscoveryRequest req = ENVOY__SERVICE__DISCOVERY__V3__DELTA_DISCOVERY_REQUEST__INIT;
    Envoy__Config__Core__V3__Node node = ENVOY__CONFIG__CORE__V3__NODE__INIT;
    Google__Rpc__Status st = GOOGLE__RPC__STATUS__INIT;
    Envoy__Service__Discovery__V3__DeltaDiscoveryRequest__InitialResourceVersionsEntry ent[16], *entp[16];
    char b1[512], b2[512], b3[512], *sv[32], *uv[32];
    sl_xds_req_info tmp;
    size_t ns = 0, nu = 0, ni = 0;
    snprintf(b1, sizeof b1, "%s", subs ? subs : "");
    snprintf(b2, sizeof b2, "%s", unsubs ? unsubs : "");
    snprintf(b3, sizeof b3, "%s", irv ? irv : "");
    for (char *p = b1, *tok; (tok = strsep(&p, ","));)
        if (*tok && ns < 32)
            sv[ns++] = tok;
    for (char *p = b2, *tok; (tok = strsep(&p, ","));)
        if (*tok && nu < 32)
            uv[nu++] = tok;
    for (char *p = b3, *tok; (tok = strsep(&p, ","));) {
        char *eq = strchr(tok, '=');
        if (!*tok || !eq || ni >= 16)
            continue;
        *eq = 0;
        envoy__service__discovery__v3__delta_discovery_request__initial_resource_versions_entry__init(&ent[ni]);
        ent[ni].key = tok;
        ent[ni].value = eq + 1;
        entp[ni] = &ent[ni];
        ni++;
    }
    node.id = "test-node";
    req.node = &node;
    req.type_url = (char *)sl_xds_type_url(t);
    req.response_nonce = nonce == T_ACK ? c->nonce[t] : nonce ? (char *)nonce : "";
    if (err) {
        st.code = 3;
        st.message = (char *)err;
        req.error_detail = &st;
    }
    req.n_resource_names_subscribe = ns;
    req.resource_names_subscribe = sv;
    req.n_resource_names_unsubscribe = nu;
    req.resource_names_unsubscribe = uv;
    req.n_initial_resource_versions = ni;
    req.initial_resource_versions = entp;
    return sl_xds_stream_on_delta(c->s, &req, info ? info : &tmp);
}

#endif
