/* leased.c - the main of a service whose replicas take turns through a lease (sl_lease_main, sluice/lease.h):
 * what sluice-translator, sluice-endpoint-discovery and sluice-upstream-discovery share. */
#include <stdio.h>

#include "sluice/lease.h"
#include "sluice/metrics.h"
#include "sluice/service.h"

typedef struct leased_main {
    const sl_leased *d;
    sl_leased_ctx ctx;
    void *work;
    sl_gauge *leader;
    sl_lease *lease; /* NULL: no lease (--lease-ttl 0) */
} leased_main;

/* Fencing: write only while the lease is held and renewed within its TTL. */
static bool lease_held(void *ud)
{
    leased_main *m = ud;
    return !m->lease || sl_lease_held(m->lease);
}

/* On the loop: this replica holds the lease (or there is none). */
static void start_work(void *ud)
{
    leased_main *m = ud;
    if (m->work)
        return;
    if (m->d->start(&m->work, &m->ctx) != SL_OK) {
        sl_log_error(m->d->comp, "cannot start", "err=%s", sl_log_q(sl_error_msg()));
        sl_service_request_stop(m->ctx.svc, SL_EXIT_FAILURE);
        return;
    }
    sl_gauge_set(m->leader, 1);
}

static void on_lease_acquired(void *ud)
{
    leased_main *m = ud;
    if (sl_loop_post(m->ctx.loop, m, start_work, NULL, m) != SL_OK)
        sl_service_request_stop(m->ctx.svc, SL_EXIT_FAILURE);
}

/* Another replica may be writing now: stop at once (a supervisor restarts
 * this one, which then waits for the lease). */
static void on_lease_lost(void *ud)
{
    leased_main *m = ud;
    sl_gauge_set(m->leader, 0);
    sl_service_request_stop(m->ctx.svc, SL_EXIT_FAILURE);
}

int sl_lease_main(const sl_leased *d, int argc, char **argv)
{
    sl_service_args args;
    sl_service *svc = NULL;
    leased_main m = {.d = d};
    int code = SL_EXIT_FAILURE;

    sl_service_args_init(&args);
    if (sl_service_args_parse(&args, d->info, d->flags, d->n_flags, argc, argv) != SL_OK) {
        code = sl_service_usage_error(d->info);
        goto out;
    }
    if (args.exit_now) {
        code = args.exit_code;
        goto out;
    }
    if (*d->lease_ttl_ms > 0 && *d->lease_ttl_ms < 1000) { /* renewals every TTL/3 need room */
        sl_error_set(SL_ERR_INVALID, "--lease-ttl: %lldms is too short (0, or at least 1s)",
                     (long long)*d->lease_ttl_ms);
        code = sl_service_usage_error(d->info);
        goto out;
    }
    if (d->check && d->check() != SL_OK) {
        code = sl_service_usage_error(d->info);
        goto out;
    }
    m.ctx.may_write = lease_held;
    m.ctx.may_write_ud = &m;
    if (sl_service_new(&svc, d->info, &args) != SL_OK || sl_loop_new(&m.ctx.loop) != SL_OK ||
        sl_service_connect(&m.ctx.nc, svc) != SL_OK ||
        sl_metrics_gauge(&m.leader, sl_service_metrics(svc), d->leader_metric, d->leader_help) != SL_OK)
        goto fail;
    m.ctx.svc = svc;
    char name[300];
    snprintf(name, sizeof name, "%s.%s", d->lease_prefix, *d->lease_bucket);
    sl_lease_opts lo = {.name = name, .service = d->info->name, .ttl_ms = *d->lease_ttl_ms,
                        .on_acquired = on_lease_acquired, .on_lost = on_lease_lost, .ud = &m};
    if (sl_lease_start_service(&m.lease, m.ctx.nc, svc, d->comp, &lo) != SL_OK)
        goto fail;
    code = sl_service_run(svc, m.ctx.loop);
    goto out;
fail:
    sl_log_error(d->comp, "cannot start", "err=%s", sl_log_q(sl_error_msg()));
out:
    /* Stop writing before another replica may take the lease over. */
    if (m.work)
        d->stop(m.work);
    sl_lease_free(m.lease);
    sl_loop_free(m.ctx.loop);
    sl_service_free(svc);
    sl_service_args_deinit(&args);
    return code;
}
