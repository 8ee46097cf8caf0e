/* xds-kvtool - writes a proxy's Envoy resources and a commit to the
 * sluice_xds bucket, the way the translator does (a test tool).
 *
 *   xds-kvtool [--nats-url URL] [--bucket B] [--proxy P] apply SPEC...
 *
 * Each `apply` describes the proxy's complete revision; unchanged resources
 * keep their KV revision (only what changed moves). SPEC:
 *   listener:NAME:ROUTE          api_listener, HCM with RDS over ADS, router
 *   badlistener:NAME:ROUTE       RDS config source unset (gRPC NACKs it)
 *   route:NAME:C1[=W1][+C2=W2]   one virtual host "*", prefix "" -> cluster(s)
 *   cluster:NAME                 EDS cluster over ADS
 *   endpoint:NAME:H:P[+H:P]      ClusterLoadAssignment, one locality
 *   secret:NAME
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/kv.h"
#include "sluice/log.h"
#include "xds_fixtures.h"

static uint8_t *build(const char *spec, sl_xds_type *t, char *name, size_t *len)
{
    char buf[1024], *type, *rest, *arg;
    snprintf(buf, sizeof buf, "%s", spec);
    rest = buf;
    type = strsep(&rest, ":");
    char *nm = strsep(&rest, ":");
    arg = rest;
    if (!nm || !*nm)
        return NULL;
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

int main(int argc, char **argv)
{
    sl_nats_settings ns;
    sl_nats *nc = NULL;
    sl_kv *kv = NULL;
    const char *bucket = "sluice_xds", *proxy = "gateway-proxy";
    int i = 1, rc = 1;
    sl_log_set_level(SL_LOG_WARN);
    sl_nats_settings_init(&ns);
    sl_nats_settings_from_env(&ns);
    ns.startup_deadline_ms = 10000;
    while (i < argc && strncmp(argv[i], "--", 2) == 0) {
        bool matched;
        if (sl_nats_settings_parse_arg(&matched, &ns, argc, argv, &i) != SL_OK)
            goto usage;
        if (matched)
            continue;
        if (!strcmp(argv[i], "--bucket") && i + 1 < argc)
            bucket = argv[i + 1];
        else if (!strcmp(argv[i], "--proxy") && i + 1 < argc)
            proxy = argv[i + 1];
        else
            goto usage;
        i += 2;
    }
    if (i >= argc || strcmp(argv[i], "apply") != 0)
        goto usage;
    i++;
    sl_kv_config cfg;
    sl_kv_config_init(&cfg, bucket);
    cfg.history = 5;
    if (sl_nats_connect(&nc, &ns) != SL_OK || sl_kv_open(&kv, nc, &cfg) != SL_OK) {
        fprintf(stderr, "xds-kvtool: %s\n", sl_error_msg());
        goto out;
    }
    char ptok[512];
    if (sl_xds_key_escape(ptok, sizeof ptok, proxy) != SL_OK)
        goto out;
    /* commit: {"resources": {type: {name: rev}}} */
    char commit[65536];
    size_t cl = 0;
    const char *sep[SL_XDS_TYPE_COUNT] = {0};
    char parts[SL_XDS_TYPE_COUNT][16384];
    for (int t = 0; t < SL_XDS_TYPE_COUNT; t++)
        parts[t][0] = 0;
    for (; i < argc; i++) {
        sl_xds_type t;
        char name[512], esc[1024], key[1600];
        size_t len;
        uint8_t *b = build(argv[i], &t, name, &len);
        if (!b) {
            fprintf(stderr, "xds-kvtool: bad spec %s\n", argv[i]);
            goto out;
        }
        sl_xds_key_escape(esc, sizeof esc, name);
        snprintf(key, sizeof key, "%s.%s.%s", ptok, sl_xds_type_token(t), esc);
        uint64_t rev = 0;
        sl_kv_entry e = {0};
        if (sl_kv_get(&e, kv, key) == SL_OK && e.len == len && memcmp(e.value, b, len) == 0)
            rev = e.revision;
        sl_kv_entry_deinit(&e);
        if (!rev && sl_kv_put(&rev, kv, key, b, len) != SL_OK) {
            fprintf(stderr, "xds-kvtool: put %s: %s\n", key, sl_error_msg());
            free(b);
            goto out;
        }
        free(b);
        size_t pl = strlen(parts[t]);
        snprintf(parts[t] + pl, sizeof parts[t] - pl, "%s\"%s\": %" PRIu64, sep[t] ? ", " : "", name, rev);
        sep[t] = ",";
    }
    cl = (size_t)snprintf(commit, sizeof commit, "{\"resources\": {");
    int first = 1;
    for (int t = 0; t < SL_XDS_TYPE_COUNT; t++) {
        if (!sep[t])
            continue;
        cl += (size_t)snprintf(commit + cl, sizeof commit - cl, "%s\"%s\": {%s}", first ? "" : ", ",
                               sl_xds_type_token((sl_xds_type)t), parts[t]);
        first = 0;
    }
    cl += (size_t)snprintf(commit + cl, sizeof commit - cl, "}}");
    char ckey[600];
    snprintf(ckey, sizeof ckey, "%s.commit", ptok);
    uint64_t crev;
    if (sl_kv_put(&crev, kv, ckey, commit, cl) != SL_OK) {
        fprintf(stderr, "xds-kvtool: put %s: %s\n", ckey, sl_error_msg());
        goto out;
    }
    printf("committed %s revision %" PRIu64 ": %s\n", proxy, crev, commit);
    rc = 0;
out:
    sl_kv_free(kv);
    sl_nats_close(nc, 1000);
    sl_nats_settings_deinit(&ns);
    return rc;
usage:
    fprintf(stderr, "usage: xds-kvtool [--nats-url URL] [--bucket B] [--proxy P] apply SPEC...\n");
    sl_nats_settings_deinit(&ns);
    return 2;
}
