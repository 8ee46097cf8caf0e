/* sluice-translator: Gloo-compatible configuration -> Envoy resources per
 * proxy in the sluice_xds bucket, with reports. See docs/translator.md. */
#include <stdio.h>

#include "service.h"
#include "sluice/lease.h"
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

/* On the loop: this replica holds the lease (or there is none). */
static sl_status start(void **work, const sl_leased_ctx *ctx)
{
    tr_service *t = NULL;
    opts.may_write = ctx->may_write;
    opts.may_write_ud = ctx->may_write_ud;
    sl_status rc = tr_service_start(&t, ctx->svc, ctx->nc, ctx->loop, &opts);
    *work = t;
    if (rc != SL_OK)
        return rc;
    sl_service_set_ready(ctx->svc, true);
    sl_log_info("translator", "started", "settings_namespace=%s xds_bucket=%s", opts.settings_namespace,
                opts.xds_bucket);
    return SL_OK;
}

static void stop(void *work)
{
    tr_service_free(work);
}

int main(int argc, char **argv)
{
    const sl_leased d = {.info = &info, .flags = own_flags, .n_flags = sizeof own_flags / sizeof own_flags[0],
                         .comp = "translator", .lease_prefix = "translator", .lease_bucket = &opts.xds_bucket,
                         .lease_ttl_ms = &lease_ttl_ms, .leader_metric = "sluice_translator_leader",
                         .leader_help = "1 while this replica holds the lease and translates.", .start = start,
                         .stop = stop};
    return sl_lease_main(&d, argc, argv);
}
