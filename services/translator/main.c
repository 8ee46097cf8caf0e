/* sluice-translator: Gloo-compatible configuration -> Envoy resources per
 * proxy in the sluice_xds bucket, with reports. See docs/translator.md. */
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
    NULL};

/* The flags' values (0: tr_service's defaults). */
static tr_service_opts opts;
static int64_t lease_ttl_ms;

static const sl_flag own_flags[] = {
    {.name = "debounce", .kind = SL_FLAG_DURATION, .target = &opts.debounce_ms, .def = "10ms",
     .help = "quiet time after a change before translating"},
    {.name = "max-delay", .kind = SL_FLAG_DURATION, .target = &opts.max_delay_ms, .def = "1s",
     .help = "longest a change waits while changes keep coming"},
    {.name = "settings-namespace", .kind = SL_FLAG_STRING, .target = &opts.settings_namespace,
     .def = "gloo-system", .arg = "NS", .help = "namespace of the Settings \"default\" and the default gateways"},
    {.name = "xds-bucket", .kind = SL_FLAG_STRING, .target = &opts.xds_bucket, .def = "sluice_xds",
     .arg = "NAME", .help = "KV bucket to write"},
    {.name = "lease-ttl", .kind = SL_FLAG_DURATION, .target = &lease_ttl_ms, .def = "10s",
     .help = "one translator per xds bucket writes: replicas wait for the lease\n"
             "\"translator.<xds-bucket>\" in KV sluice_leases and take over within this\n"
             "TTL when the holder dies (0: no lease, always translate; else at least 1s)"},
};

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

int main(int argc, char **argv)
{
    sl_service_args args;
    sl_service *svc = NULL;
    tr_main m = {0};
    int code = SL_EXIT_FAILURE;

    sl_service_args_init(&args);
    if (sl_service_args_parse(&args, &info, own_flags, sizeof(own_flags) / sizeof(own_flags[0]), argc, argv) !=
        SL_OK) {
        code = sl_service_usage_error(&info);
        goto out;
    }
    if (args.exit_now) {
        code = args.exit_code;
        goto out;
    }
    if (lease_ttl_ms > 0 && lease_ttl_ms < 1000) { /* renewals every TTL/3 need room */
        sl_error_set(SL_ERR_INVALID, "--lease-ttl: %lldms is too short (0, or at least 1s)", (long long)lease_ttl_ms);
        code = sl_service_usage_error(&info);
        goto out;
    }
    m.o = &opts;
    opts.may_write = lease_held;
    opts.may_write_ud = &m;
    if (sl_service_new(&svc, &info, &args) != SL_OK || sl_loop_new(&m.loop) != SL_OK ||
        sl_service_connect(&m.nc, svc) != SL_OK ||
        sl_metrics_gauge(&m.leader, sl_service_metrics(svc), "sluice_translator_leader",
                         "1 while this replica holds the lease and translates.") != SL_OK)
        goto fail;
    m.svc = svc;
    char name[300];
    snprintf(name, sizeof name, "translator.%s", opts.xds_bucket);
    sl_lease_opts lo = {.name = name, .service = info.name, .ttl_ms = lease_ttl_ms,
                        .on_acquired = on_lease_acquired, .on_lost = on_lease_lost, .ud = &m};
    if (sl_lease_start_service(&m.lease, m.nc, svc, "translator", &lo) != SL_OK)
        goto fail;
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
