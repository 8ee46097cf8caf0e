/* sluice-translator: Gloo-compatible configuration -> Envoy resources per
 * proxy in the sluice_xds bucket, with reports. See docs/translator.md. */
#include <stdlib.h>
#include <string.h>

#include <stdio.h>

#include "service.h"
#include "sluice/lease.h"
#include "sluice/metrics.h"
#include "sluice/nats.h"
#include "sluice/service.h"

#ifndef SLUICE_VERSION
#define SLUICE_VERSION "0.1.0"
#endif

static const sl_service_info info = {
    "sluice-translator", SLUICE_VERSION,
    "Translates Gateways, VirtualServices, RouteTables, Upstreams and Secrets into Envoy resources per proxy.",
    "  --debounce DURATION        quiet time after a change before translating (default 10ms)\n"
    "  --max-delay DURATION       longest a change waits while changes keep coming (default 1s)\n"
    "  --settings-namespace NS    namespace of the Settings \"default\" and the default gateways (default gloo-system)\n"
    "  --xds-bucket NAME          KV bucket to write (default sluice_xds)\n"
    "  --lease-ttl DURATION       one translator per xds bucket writes: replicas wait for the lease\n"
    "                             \"translator.<xds-bucket>\" in KV sluice_leases and take over within this\n"
    "                             TTL when the holder dies (default 10s; 0: no lease, always translate)\n"};

/* What the lease callbacks start and stop. */
typedef struct tr_main {
    sl_service *svc;
    sl_nats *nc;
    sl_loop *loop;
    const tr_service_opts *o;
    tr_service *tr;
    sl_gauge *leader;
    sl_lease *lease; /* NULL: no lease (--lease-ttl 0) */
} tr_main;

/* Fencing: write only while the lease is held and renewed within its TTL. */
static bool lease_held(void *ud)
{
    tr_main *m = ud;
    return !m->lease || sl_lease_held(m->lease);
}

/* On the loop: this replica holds the lease (or there is none). */
static void start_translating(void *ud)
{
    tr_main *m = ud;
    if (m->tr)
        return;
    if (tr_service_start(&m->tr, m->svc, m->nc, m->loop, m->o) != SL_OK) {
        sl_log_error("translator", "cannot start", "err=%s", sl_log_q(sl_error_msg()));
        sl_service_request_stop(m->svc, SL_EXIT_FAILURE);
        return;
    }
    sl_gauge_set(m->leader, 1);
    sl_service_set_ready(m->svc, true);
    sl_log_info("translator", "started", "settings_namespace=%s xds_bucket=%s", m->o->settings_namespace,
                m->o->xds_bucket);
}

static void on_lease_acquired(void *ud)
{
    tr_main *m = ud;
    if (sl_loop_post(m->loop, m, start_translating, NULL, m) != SL_OK)
        sl_service_request_stop(m->svc, SL_EXIT_FAILURE);
}

/* Another replica may be writing now: stop at once (a supervisor restarts
 * this one, which then waits for the lease). */
static void on_lease_lost(void *ud)
{
    tr_main *m = ud;
    sl_gauge_set(m->leader, 0);
    sl_service_request_stop(m->svc, SL_EXIT_FAILURE);
}

static int own_flags(tr_service_opts *o, int64_t *lease_ttl_ms, int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = NULL, *eq = strchr(a, '=');
        char name[64];
        size_t n = eq ? (size_t)(eq - a) : strlen(a);
        if (n >= sizeof name)
            goto bad;
        memcpy(name, a, n);
        name[n] = '\0';
        if (eq)
            v = eq + 1;
        else if (i + 1 < argc)
            v = argv[++i];
        if (!v)
            goto bad;
        if (strcmp(name, "--debounce") == 0) {
            if (sl_parse_duration_ms(&o->debounce_ms, v) != SL_OK)
                goto bad;
        } else if (strcmp(name, "--max-delay") == 0) {
            if (sl_parse_duration_ms(&o->max_delay_ms, v) != SL_OK)
                goto bad;
        } else if (strcmp(name, "--settings-namespace") == 0) {
            o->settings_namespace = v;
        } else if (strcmp(name, "--xds-bucket") == 0) {
            o->xds_bucket = v;
        } else if (strcmp(name, "--lease-ttl") == 0) {
            if (sl_parse_duration_ms(lease_ttl_ms, v) != SL_OK || *lease_ttl_ms < 0 ||
                (*lease_ttl_ms > 0 && *lease_ttl_ms < 1000))
                goto bad; /* renewals every TTL/3 need room */
        } else {
            sl_error_set(SL_ERR_INVALID, "unknown flag %s", a);
            return -1;
        }
        continue;
    bad:
        sl_error_set(SL_ERR_INVALID, "bad or missing value for %s", a);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    sl_service_args args;
    sl_service *svc = NULL;
    tr_service_opts o = {.settings_namespace = "gloo-system", .xds_bucket = "sluice_xds"}; /* 0: the defaults */
    tr_main m = {0};
    int64_t lease_ttl_ms = 10000;
    int code = SL_EXIT_FAILURE;

    sl_service_args_init(&args);
    if (sl_service_args_parse(&args, &info, &argc, argv) != SL_OK || own_flags(&o, &lease_ttl_ms, argc, argv) != 0) {
        code = sl_service_usage_error(&info);
        goto out;
    }
    if (args.exit_now) {
        code = args.exit_code;
        goto out;
    }
    m.o = &o;
    o.may_write = lease_held;
    o.may_write_ud = &m;
    if (sl_service_new(&svc, &info, &args) != SL_OK || sl_loop_new(&m.loop) != SL_OK ||
        sl_service_connect(&m.nc, svc) != SL_OK ||
        sl_metrics_gauge(&m.leader, sl_service_metrics(svc), "sluice_translator_leader",
                         "1 while this replica holds the lease and translates.") != SL_OK)
        goto fail;
    m.svc = svc;
    if (lease_ttl_ms > 0) {
        char name[300];
        snprintf(name, sizeof name, "translator.%s", o.xds_bucket);
        sl_lease_opts lo = {.name = name, .service = info.name, .ttl_ms = lease_ttl_ms,
                            .on_acquired = on_lease_acquired, .on_lost = on_lease_lost, .ud = &m};
        if (sl_lease_start(&m.lease, m.nc, &lo) != SL_OK)
            goto fail;
        /* A waiting replica is healthy: ready, so that a rolling update can
         * start the new one before the holder stops (and releases). */
        sl_service_set_ready(svc, true);
        sl_log_info("translator", "waiting for the lease", "lease=%s ttl_ms=%lld", name, (long long)lease_ttl_ms);
    } else {
        start_translating(&m);
    }
    code = sl_service_run(svc, m.loop);
    goto out;
fail:
    sl_log_error("translator", "cannot start", "err=%s", sl_log_q(sl_error_msg()));
out:
    /* Stop writing before another replica may take the lease over. */
    tr_service_free(m.tr);
    sl_lease_free(m.lease);
    sl_loop_free(m.loop);
    sl_service_free(svc);
    sl_service_args_deinit(&args);
    return code;
}
