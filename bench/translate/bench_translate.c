/* bench_translate: generated configuration of U upstreams (10 endpoints
 * each, over EDS) and V virtual services of 10 routes; measures a full
 * translation, a re-translation after one VirtualService changes and after
 * one endpoint set changes (incremental: sl_tr_translate_endpoints), and
 * peak RSS; medians of RUNS runs. Last line:
 *   RESULT upstreams=U vs=V full_ms=.. one_vs_ms=.. one_eds_ms=.. rss_mb=.. full_cpu_ms=.. one_vs_cpu_ms=..
 * (*_cpu_ms: the thread's CPU time, which other processes sharing the
 * cores do not inflate as they do the wall clock).
 * The last incremental result is checked (untimed) against a translation
 * of everything again: exit 1 when they differ.
 * Usage: bench_translate [U V] (default 1000 1000). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "bench_gen.h"
#include "sluice/kinds.h"
#include "sluice/translate.h"

#ifndef RUNS
#define RUNS 5
#endif

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static double cpu_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* A full translation; the result replaces *last (for the incremental path).
 * *cpu (may be NULL): its CPU time. */
static double run(sl_tr_store *st, sl_tr_result **last, double *cpu)
{
    sl_tr_result *r;
    /* TRANSLATE_BENCH_PARTS=1: as the service translates (routes in parts only) */
    sl_tr_options o = {.route_parts_only = getenv("TRANSLATE_BENCH_PARTS") != NULL};
    double c0 = cpu_ms(), t0 = now_ms();
    if (sl_tr_translate(&r, st, &o) != SL_OK) {
        fprintf(stderr, "translate failed\n");
        exit(1);
    }
    t0 = now_ms() - t0;
    if (cpu)
        *cpu = cpu_ms() - c0;
    sl_tr_result_free(*last);
    *last = r;
    return t0;
}

/* Whether a and b hold the same proxies, resource bytes and reports. */
static bool same_result(const sl_tr_result *a, const sl_tr_result *b)
{
    if (a->n_proxies != b->n_proxies || a->n_reports != b->n_reports)
        return false;
    for (size_t p = 0; p < a->n_proxies; p++) {
        if (strcmp(a->proxies[p].name, b->proxies[p].name) != 0)
            return false;
        for (int t = 0; t < SL_XDS_TYPE_COUNT; t++) {
            if (a->proxies[p].n[t] != b->proxies[p].n[t])
                return false;
            for (size_t i = 0; i < a->proxies[p].n[t]; i++) {
                const sl_tr_resource *x = &a->proxies[p].res[t][i], *y = &b->proxies[p].res[t][i];
                if (strcmp(x->name, y->name) != 0 || x->len != y->len || !x->data != !y->data ||
                    !x->parts != !y->parts || (x->data && memcmp(x->data, y->data, x->len) != 0))
                    return false;
                if (x->parts) { /* routes in parts (TRANSLATE_BENCH_PARTS) */
                    const sl_tr_route_parts *xp = x->parts, *yp = y->parts;
                    if (xp->head_len != yp->head_len || memcmp(xp->head, yp->head, xp->head_len) != 0 || xp->n != yp->n)
                        return false;
                    for (size_t k = 0; k < xp->n; k++)
                        if (xp->v[k].len != yp->v[k].len || memcmp(xp->v[k].data, yp->v[k].data, xp->v[k].len) != 0)
                            return false;
                }
            }
        }
    }
    for (size_t i = 0; i < a->n_reports; i++) {
        const sl_tr_report *x = &a->reports[i], *y = &b->reports[i];
        if (x->kind != y->kind || strcmp(x->ns, y->ns) != 0 || strcmp(x->name, y->name) != 0 ||
            x->state != y->state || strcmp(x->reason, y->reason) != 0 || x->n_warnings != y->n_warnings)
            return false;
    }
    return true;
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
    double full, one_vs, one_eds, full_cpu, one_vs_cpu;
    sl_tr_result *last = NULL;
    struct rusage ru;
    /* RUNS of each; medians. A full translation starts from a new store
     * (nothing kept from an earlier translation). A VirtualService change
     * re-translates its proxy, reusing the clusters of unchanged upstreams.
     * An endpoint set change goes through the incremental path (only the
     * ClusterLoadAssignment is rebuilt), as the service does. */
    {
        double f[RUNS], v[RUNS], e[RUNS], fc[RUNS], vc[RUNS];
        for (int r = 0; r < RUNS; r++) {
            sl_tr_store_new(&st);
            for (int i = 0; i < nu; i++) {
                sl_tr_store_put(st, ku, bench_gen_upstream(i), (uint64_t)i + 1);
                sl_tr_store_put(st, ke, bench_gen_endpoints(i, 0), (uint64_t)i + 1);
            }
            for (int i = 0; i < nv; i++)
                sl_tr_store_put(st, kv, bench_gen_vs(i, nu, "/api"), (uint64_t)(nu + i + 1));
            f[r] = run(st, &last, &fc[r]);
            if (r < RUNS - 1)
                sl_tr_store_free(st);
        }
        /* TRANSLATE_BENCH_PROFILE=N: N more VirtualService changes first
         * (to profile that path: perf record bench_translate ...) */
        for (int r = 0, extra = getenv("TRANSLATE_BENCH_PROFILE") ? atoi(getenv("TRANSLATE_BENCH_PROFILE")) : 0;
             r < extra; r++) {
            sl_tr_store_put(st, kv, bench_gen_vs(0, nu, r % 2 ? "/api" : "/v2"), 900000 + (uint64_t)r);
            run(st, &last, NULL);
        }
        for (int r = 0; r < RUNS; r++) {
            sl_tr_store_put(st, kv, bench_gen_vs(0, nu, r % 2 ? "/api" : "/v2"), 1000000 + (uint64_t)r);
            v[r] = run(st, &last, &vc[r]);
        }
        /* not timed: the last incremental result equals a translation of
         * everything again (what the store kept dropped) */
        {
            sl_tr_result *incremental = last;
            last = NULL;
            sl_tr_store_drop_kept(st);
            run(st, &last, NULL);
            if (!same_result(incremental, last)) {
                fprintf(stderr, "the incremental translation differs from a full one\n");
                return 1;
            }
            sl_tr_result_free(incremental);
        }
        for (int r = 0; r < RUNS; r++) {
            const char *ns = "default";
            char name[32];
            bool done = false;
            double t0;
            snprintf(name, sizeof name, "up-%d", (r * 7919) % nu);
            sl_tr_store_put(st, ke, bench_gen_endpoints((r * 7919) % nu, 100 + r), 2000000 + (uint64_t)r);
            t0 = now_ms();
            {
                const char *nm = name;
                if (sl_tr_translate_endpoints(last, st, &ns, &nm, 1, NULL, &done, NULL) != SL_OK) {
                    fprintf(stderr, "translate_endpoints failed\n");
                    return 1;
                }
            }
            if (!done)
                run(st, &last, NULL);
            e[r] = now_ms() - t0;
            if (!done)
                fprintf(stderr, "endpoint change fell back to a full translation\n");
        }
        full = median(f, RUNS);
        one_vs = median(v, RUNS);
        one_eds = median(e, RUNS);
        full_cpu = median(fc, RUNS);
        one_vs_cpu = median(vc, RUNS);
    }
    sl_tr_result_free(last);
    getrusage(RUSAGE_SELF, &ru);
    printf("RESULT upstreams=%d vs=%d full_ms=%.1f one_vs_ms=%.1f one_eds_ms=%.3f rss_mb=%.1f full_cpu_ms=%.1f "
           "one_vs_cpu_ms=%.2f\n",
           nu, nv, full, one_vs, one_eds, ru.ru_maxrss / 1024.0, full_cpu, one_vs_cpu);
    sl_tr_store_free(st);
    return 0;
}
