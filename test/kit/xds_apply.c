/* xds_apply.c - see xds_apply.h. */
#include "xds_apply.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/v1/xds.pb-c.h"
#include "sluice/xds_keys.h"
#include "xds_fixtures.h"

uint8_t *fx_build(const char *spec, sl_xds_type *t, char *name, size_t *len)
{
    char buf[1024], *type, *rest, *arg;
    snprintf(buf, sizeof buf, "%s", spec);
    rest = buf;
    type = strsep(&rest, ":");
    char *nm = strsep(&rest, ":");
    arg = rest;
    if (!nm || !*nm)
        return NULL;
    /* Names may be given escaped ("listener-=3A=3A-8080") to hold ':'. */
    char un[512];
    if (strchr(nm, '=') && sl_xds_key_unescape(un, sizeof un, nm) == SL_OK)
        nm = un;
    if (arg && strchr(arg, '=') && !strchr(arg, '+') && strncmp(type, "route", 5) != 0) {
        static char ua[512];
        if (sl_xds_key_unescape(ua, sizeof ua, arg) == SL_OK)
            arg = ua;
    }
    snprintf(name, 512, "%s", nm);
    if (!strcmp(type, "listener") || !strcmp(type, "badlistener")) {
        *t = SL_XDS_LISTENER;
        char def[600];
        snprintf(def, sizeof def, "%s-routes", nm);
        return (type[0] == 'b' ? fx_listener_bad : fx_listener)(len, nm, arg && *arg ? arg : def);
    }
    if (!strcmp(type, "route")) {
        const char *cl[8];
        unsigned w[8];
        int n = 0;
        *t = SL_XDS_ROUTE;
        for (char *p = arg, *it; p && n < 8 && (it = strsep(&p, "+"));) {
            char *eq = strchr(it, '=');
            w[n] = eq ? (unsigned)atoi(eq + 1) : 1;
            if (eq)
                *eq = 0;
            cl[n++] = it;
        }
        return n ? fx_route(len, nm, n, cl, w) : NULL;
    }
    if (!strcmp(type, "bigroute")) { /* bigroute:NAME:NROUTES:NCLUSTERS */
        *t = SL_XDS_ROUTE;
        char *nc = arg ? strchr(arg, ':') : NULL;
        return fx_route_many(len, nm, arg ? atoi(arg) : 1000, nc ? atoi(nc + 1) : 100);
    }
    if (!strcmp(type, "cluster")) {
        *t = SL_XDS_CLUSTER;
        return fx_cluster(len, nm, NULL);
    }
    if (!strcmp(type, "endpoint")) {
        const char *ad[16];
        unsigned port[16];
        int n = 0;
        *t = SL_XDS_ENDPOINT;
        for (char *p = arg, *it; p && n < 16 && (it = strsep(&p, "+"));) {
            char *c = strrchr(it, ':');
            if (!c)
                return NULL;
            *c = 0;
            ad[n] = it;
            port[n++] = (unsigned)atoi(c + 1);
        }
        return fx_cla(len, nm, n, ad, port);
    }
    if (!strcmp(type, "secret")) {
        *t = SL_XDS_SECRET;
        return fx_secret(len, nm);
    }
    return NULL;
}

sl_status fx_commit(uint64_t *commit_rev, sl_kv *kv, const char *proxy, int n, const sl_xds_type *types,
                    const char *const *names, const uint64_t *revs)
{
    char key[SL_XDS_KEY_MAX], ids[SL_XDS_TYPE_COUNT][17];
    Sluice__V1__XdsEntry *e = calloc((size_t)n + 1, sizeof *e), **ep = calloc((size_t)n + 1, sizeof *ep);
    Sluice__V1__XdsChunkRef refs[SL_XDS_TYPE_COUNT], *refp[SL_XDS_TYPE_COUNT];
    Sluice__V1__XdsCommit c = SLUICE__V1__XDS_COMMIT__INIT;
    uint8_t *buf = NULL;
    sl_status rc = SL_OK;

    if (!e || !ep) {
        rc = SL_ERR_NOMEM;
        goto out;
    }
    /* One manifest chunk per type, named after its first entry. */
    for (int t = 0; t < SL_XDS_TYPE_COUNT; t++) {
        Sluice__V1__XdsManifest m = SLUICE__V1__XDS_MANIFEST__INIT;
        m.entries = ep;
        for (int i = 0; i < n; i++) {
            if ((int)types[i] != t)
                continue;
            sluice__v1__xds_entry__init(&e[m.n_entries]);
            e[m.n_entries].name = (char *)names[i];
            e[m.n_entries].revision = revs[i];
            ep[m.n_entries] = &e[m.n_entries];
            m.n_entries++;
        }
        if (!m.n_entries)
            continue;
        sl_xds_chunk_id(ids[t], sl_xds_entry_hash(NULL, names[0]));
        if ((rc = sl_xds_key_manifest(key, sizeof key, proxy, (sl_xds_type)t, ids[t])) != SL_OK)
            goto out;
        size_t len = sluice__v1__xds_manifest__get_packed_size(&m);
        free(buf);
        if (!(buf = malloc(len + 1))) {
            rc = SL_ERR_NOMEM;
            goto out;
        }
        sluice__v1__xds_manifest__pack(&m, buf);
        sluice__v1__xds_chunk_ref__init(&refs[c.n_chunks]);
        refs[c.n_chunks].type = (char *)sl_xds_type_token((sl_xds_type)t);
        refs[c.n_chunks].id = ids[t];
        if ((rc = sl_kv_put(&refs[c.n_chunks].revision, kv, key, buf, len)) != SL_OK)
            goto out;
        refp[c.n_chunks] = &refs[c.n_chunks];
        c.n_chunks++;
    }
    c.chunks = refp;
    {
        size_t len = sluice__v1__xds_commit__get_packed_size(&c);
        free(buf);
        if (!(buf = malloc(len + 1))) {
            rc = SL_ERR_NOMEM;
            goto out;
        }
        sluice__v1__xds_commit__pack(&c, buf);
        if ((rc = sl_xds_key_commit(key, sizeof key, proxy)) == SL_OK)
            rc = sl_kv_put(commit_rev, kv, key, buf, len);
    }
out:
    free(buf);
    free(e);
    free(ep);
    return rc;
}

sl_status fx_apply(uint64_t *commit_rev, sl_kv *kv, const char *proxy, int n, char *const *specs)
{
    static char names[256][512];
    const char *namep[256];
    sl_xds_type types[256];
    uint64_t revs[256];
    sl_status rc;
    if (n > 256)
        return sl_error_set(SL_ERR_INVALID, "too many specs");
    for (int i = 0; i < n; i++) {
        char key[SL_XDS_KEY_MAX];
        size_t len;
        uint8_t *b = fx_build(specs[i], &types[i], names[i], &len);
        if (!b)
            return sl_error_set(SL_ERR_INVALID, "bad spec %s", specs[i]);
        if ((rc = sl_xds_key_resource(key, sizeof key, proxy, types[i], names[i])) != SL_OK) {
            free(b);
            return rc;
        }
        uint64_t rev = 0;
        sl_kv_entry e = {0};
        if (sl_kv_get(&e, kv, key) == SL_OK && e.len == len && memcmp(e.value, b, len) == 0)
            rev = e.revision; /* unchanged: keeps its version */
        sl_kv_entry_deinit(&e);
        if (!rev && (rc = sl_kv_put(&rev, kv, key, b, len)) != SL_OK) {
            free(b);
            return rc;
        }
        free(b);
        revs[i] = rev;
        namep[i] = names[i];
    }
    return fx_commit(commit_rev, kv, proxy, n, types, namep, revs);
}

sl_status fx_apply_nats(sl_nats *nc, const char *proxy, int n, char *const *specs)
{
    sl_kv *kv = NULL;
    sl_kv_config cfg;
    sl_kv_config_init(&cfg, "sluice_xds");
    sl_status st = sl_kv_open(&kv, nc, &cfg);
    if (st == SL_OK)
        st = fx_apply(NULL, kv, proxy, n, specs);
    sl_kv_free(kv);
    return st;
}
