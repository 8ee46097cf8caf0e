/* xds_apply.c - see xds_apply.h. */
#include "xds_apply.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

sl_status fx_apply(uint64_t *commit_rev, sl_kv *kv, const char *proxy, int n, char *const *specs)
{
    char ptok[512];
    static char parts[SL_XDS_TYPE_COUNT][16384];
    static char commit[65536];
    int have[SL_XDS_TYPE_COUNT] = {0};
    sl_status rc;
    if ((rc = sl_xds_key_escape(ptok, sizeof ptok, proxy)) != SL_OK)
        return rc;
    for (int t = 0; t < SL_XDS_TYPE_COUNT; t++)
        parts[t][0] = 0;
    for (int i = 0; i < n; i++) {
        sl_xds_type t;
        char name[512], esc[1024], key[1600];
        size_t len;
        uint8_t *b = fx_build(specs[i], &t, name, &len);
        if (!b)
            return sl_error_set(SL_ERR_INVALID, "bad spec %s", specs[i]);
        sl_xds_key_escape(esc, sizeof esc, name);
        snprintf(key, sizeof key, "%s.%s.%s", ptok, sl_xds_type_token(t), esc);
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
        size_t pl = strlen(parts[t]);
        snprintf(parts[t] + pl, sizeof parts[t] - pl, "%s\"%s\": %" PRIu64, have[t] ? ", " : "", name, rev);
        have[t] = 1;
    }
    size_t cl = (size_t)snprintf(commit, sizeof commit, "{\"resources\": {");
    int first = 1;
    for (int t = 0; t < SL_XDS_TYPE_COUNT; t++) {
        if (!have[t])
            continue;
        cl += (size_t)snprintf(commit + cl, sizeof commit - cl, "%s\"%s\": {%s}", first ? "" : ", ",
                               sl_xds_type_token((sl_xds_type)t), parts[t]);
        first = 0;
    }
    cl += (size_t)snprintf(commit + cl, sizeof commit - cl, "}}");
    char ckey[600];
    snprintf(ckey, sizeof ckey, "%s.commit", ptok);
    return sl_kv_put(commit_rev, kv, ckey, commit, cl);
}
