/* sluice-translator: Gloo-compatible configuration -> Envoy resources per
 * proxy in the sluice_xds bucket, with reports. See docs/translator.md. */
#include <stdlib.h>
#include <string.h>

#include "service.h"
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
    "  --xds-bucket NAME          KV bucket to write (default sluice_xds)\n"};

static int own_flags(tr_service_opts *o, int argc, char **argv)
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
    sl_nats *nc = NULL;
    sl_loop *loop = NULL;
    tr_service *tr = NULL;
    tr_service_opts o = {0, 0, "gloo-system", "sluice_xds"}; /* 0: the service's defaults */
    int code = SL_EXIT_FAILURE;

    sl_service_args_init(&args);
    if (sl_service_args_parse(&args, &info, &argc, argv) != SL_OK || own_flags(&o, argc, argv) != 0) {
        code = sl_service_usage_error(&info);
        goto out;
    }
    if (args.exit_now) {
        code = args.exit_code;
        goto out;
    }
    if (sl_service_new(&svc, &info, &args) != SL_OK || sl_loop_new(&loop) != SL_OK ||
        sl_service_connect(&nc, svc) != SL_OK)
        goto fail;
    if (tr_service_start(&tr, svc, nc, loop, &o) != SL_OK)
        goto fail;
    sl_service_set_ready(svc, true);
    sl_log_info("translator", "started", "settings_namespace=%s", o.settings_namespace);
    code = sl_service_run(svc, loop);
    goto out;
fail:
    sl_log_error("translator", "cannot start", "err=%s", sl_log_q(sl_error_msg()));
out:
    tr_service_free(tr);
    sl_loop_free(loop);
    sl_service_free(svc);
    sl_service_args_deinit(&args);
    return code;
}
