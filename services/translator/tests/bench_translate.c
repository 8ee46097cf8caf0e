/* bench_translate: generated configuration of U upstreams (10 endpoints
 * each, over EDS) and V virtual services of 10 routes; measures a full
 * translation, a re-translation after one VirtualService changes and after
 * one endpoint set changes (incremental: sl_tr_translate_endpoints), and
 * peak RSS; medians of RUNS runs. Last line:
 *   RESULT upstreams=U vs=V full_ms=.. one_vs_ms=.. one_eds_ms=.. rss_mb=..
 * Usage: bench_translate [U V] (default 1000 1000). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "sluice/kinds.h"
#include "sluice/v1/endpoints.pb-c.h"
#include "sluice/v1/upstream.pb-c.h"
#include "sluice/v1/virtual_service.pb-c.h"
#include "translator.h"

#ifndef RUNS
#define RUNS 5
#endif

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static Sluice__V1__Metadata *md(const char *name)
{
    Sluice__V1__Metadata *m = malloc(sizeof *m);
    sluice__v1__metadata__init(m);
    m->name = strdup(name);
    m->namespace_ = strdup("default");
    return m;
}

static ProtobufCMessage *upstream(int i)
{
    char name[64];
    Sluice__V1__Upstream *u = malloc(sizeof *u);
    sluice__v1__upstream__init(u);
    snprintf(name, sizeof name, "up-%d", i);
    u->metadata = md(name);
    u->spec = malloc(sizeof *u->spec);
    sluice__v1__upstream_spec__init(u->spec);
    u->spec->upstream_type_case = SLUICE__V1__UPSTREAM_SPEC__UPSTREAM_TYPE_DNS;
    u->spec->dns = malloc(sizeof *u->spec->dns);
    sluice__v1__dns_upstream_spec__init(u->spec->dns);
    u->spec->dns->name = strdup("svc.internal");
    u->spec->dns->port = 8080;
    return &u->base;
}

static ProtobufCMessage *endpoints(int i, int salt)
{
    char name[64];
    Sluice__V1__EndpointSet *e = malloc(sizeof *e);
    sluice__v1__endpoint_set__init(e);
    snprintf(name, sizeof name, "up-%d", i);
    e->metadata = md(name);
    e->spec = malloc(sizeof *e->spec);
    sluice__v1__endpoint_set_spec__init(e->spec);
    e->spec->n_endpoints = 10;
    e->spec->endpoints = malloc(10 * sizeof *e->spec->endpoints);
    for (int j = 0; j < 10; j++) {
        char addr[32];
        Sluice__V1__Endpoint *ep = malloc(sizeof *ep);
        sluice__v1__endpoint__init(ep);
        snprintf(addr, sizeof addr, "10.%d.%d.%d", (i >> 8) & 255, i & 255, j + 1 + salt);
        ep->address = strdup(addr);
        ep->port = 8080;
        e->spec->endpoints[j] = ep;
    }
    return &e->base;
}

static ProtobufCMessage *vs(int i, int n_up, const char *prefix)
{
    char name[64], dom[96];
    Sluice__V1__VirtualService *v = malloc(sizeof *v);
    sluice__v1__virtual_service__init(v);
    snprintf(name, sizeof name, "vs-%d", i);
    v->metadata = md(name);
    v->spec = malloc(sizeof *v->spec);
    sluice__v1__virtual_service_spec__init(v->spec);
    v->spec->virtual_host = malloc(sizeof *v->spec->virtual_host);
    sluice__v1__virtual_host__init(v->spec->virtual_host);
    snprintf(dom, sizeof dom, "vs-%d.example.com", i);
    v->spec->virtual_host->n_domains = 1;
    v->spec->virtual_host->domains = malloc(sizeof(char *));
    v->spec->virtual_host->domains[0] = strdup(dom);
    v->spec->virtual_host->n_routes = 10;
    v->spec->virtual_host->routes = malloc(10 * sizeof(void *));
    for (int r = 0; r < 10; r++) {
        Sluice__V1__Route *rt = malloc(sizeof *rt);
        Sluice__V1__Matcher *m = malloc(sizeof *m);
        char p[64], up[64];
        sluice__v1__route__init(rt);
        sluice__v1__matcher__init(m);
        snprintf(p, sizeof p, "%s/%d", prefix, r);
        m->path_specifier_case = SLUICE__V1__MATCHER__PATH_SPECIFIER_PREFIX;
        m->prefix = strdup(p);
        rt->n_matchers = 1;
        rt->matchers = malloc(sizeof(void *));
        rt->matchers[0] = m;
        rt->action_case = SLUICE__V1__ROUTE__ACTION_ROUTE_ACTION;
        rt->route_action = malloc(sizeof *rt->route_action);
        sluice__v1__route_action__init(rt->route_action);
        rt->route_action->destination_case = SLUICE__V1__ROUTE_ACTION__DESTINATION_SINGLE;
        rt->route_action->single = malloc(sizeof *rt->route_action->single);
        sluice__v1__destination__init(rt->route_action->single);
        rt->route_action->single->destination_type_case = SLUICE__V1__DESTINATION__DESTINATION_TYPE_UPSTREAM;
        rt->route_action->single->upstream = malloc(sizeof(Sluice__V1__ResourceRef));
        sluice__v1__resource_ref__init(rt->route_action->single->upstream);
        snprintf(up, sizeof up, "up-%d", (i * 10 + r) % n_up);
        rt->route_action->single->upstream->name = strdup(up);
        rt->route_action->single->upstream->namespace_ = strdup("");
        v->spec->virtual_host->routes[r] = rt;
    }
    return &v->base;
}

/* A full translation; the result replaces *last (for the incremental path). */
static double run(sl_tr_store *st, sl_tr_result **last)
{
    sl_tr_result *r;
    double t0 = now_ms();
    if (sl_tr_translate(&r, st, NULL) != SL_OK) {
        fprintf(stderr, "translate failed\n");
        exit(1);
    }
    t0 = now_ms() - t0;
    sl_tr_result_free(*last);
    *last = r;
    return t0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char **argv)
{
    int nu = argc > 2 ? atoi(argv[1]) : 1000, nv = argc > 2 ? atoi(argv[2]) : 1000;
    sl_tr_store *st;
    const sl_kind *ku = sl_kind_by_name("Upstream"), *kv = sl_kind_by_name("VirtualService"),
                  *ke = sl_kind_by_name("EndpointSet");
    double full, one_vs, one_eds;
    sl_tr_result *last = NULL;
    struct rusage ru;
    /* RUNS of each; medians. A full translation starts from a new store
     * (nothing kept from an earlier translation). A VirtualService change
     * re-translates its proxy, reusing the clusters of unchanged upstreams.
     * An endpoint set change goes through the incremental path (only the
     * ClusterLoadAssignment is rebuilt), as the service does. */
    {
        double f[RUNS], v[RUNS], e[RUNS];
        for (int r = 0; r < RUNS; r++) {
            sl_tr_store_new(&st);
            for (int i = 0; i < nu; i++) {
                sl_tr_store_put(st, ku, upstream(i), (uint64_t)i + 1);
                sl_tr_store_put(st, ke, endpoints(i, 0), (uint64_t)i + 1);
            }
            for (int i = 0; i < nv; i++)
                sl_tr_store_put(st, kv, vs(i, nu, "/api"), (uint64_t)(nu + i + 1));
            f[r] = run(st, &last);
            if (r < RUNS - 1)
                sl_tr_store_free(st);
        }
        /* TRANSLATE_BENCH_PROFILE=N: N more VirtualService changes first
         * (to profile that path: perf record bench_translate ...) */
        for (int r = 0, extra = getenv("TRANSLATE_BENCH_PROFILE") ? atoi(getenv("TRANSLATE_BENCH_PROFILE")) : 0;
             r < extra; r++) {
            sl_tr_store_put(st, kv, vs(0, nu, r % 2 ? "/api" : "/v2"), 900000 + (uint64_t)r);
            run(st, &last);
        }
        for (int r = 0; r < RUNS; r++) {
            sl_tr_store_put(st, kv, vs(0, nu, r % 2 ? "/api" : "/v2"), 1000000 + (uint64_t)r);
            v[r] = run(st, &last);
        }
        for (int r = 0; r < RUNS; r++) {
            const char *ns = "default";
            char name[32];
            bool done = false;
            double t0;
            snprintf(name, sizeof name, "up-%d", (r * 7919) % nu);
            sl_tr_store_put(st, ke, endpoints((r * 7919) % nu, 100 + r), 2000000 + (uint64_t)r);
            t0 = now_ms();
            {
                const char *nm = name;
                if (sl_tr_translate_endpoints(last, st, &ns, &nm, 1, NULL, &done, NULL) != SL_OK) {
                    fprintf(stderr, "translate_endpoints failed\n");
                    return 1;
                }
            }
            if (!done)
                run(st, &last);
            e[r] = now_ms() - t0;
            if (!done)
                fprintf(stderr, "endpoint change fell back to a full translation\n");
        }
        full = median(f, RUNS);
        one_vs = median(v, RUNS);
        one_eds = median(e, RUNS);
    }
    sl_tr_result_free(last);
    getrusage(RUSAGE_SELF, &ru);
    printf("RESULT upstreams=%d vs=%d full_ms=%.1f one_vs_ms=%.1f one_eds_ms=%.3f rss_mb=%.1f\n", nu, nv, full, one_vs,
           one_eds, ru.ru_maxrss / 1024.0);
    sl_tr_store_free(st);
    return 0;
}
