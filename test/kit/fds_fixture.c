/* fds_fixture.c - see fds_fixture.h. */
#include "fds_fixture.h"

#include "sluice/kinds.h"

#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

int fds_fixture_up(fds_fixture *f, const char *name)
{
    memset(f, 0, sizeof *f);
    f->discovery = -1;
    f->src = getenv("SLUICE_SOURCE_DIR") ? getenv("SLUICE_SOURCE_DIR") : ".";
    f->bin_dir = getenv("SLUICE_BINARY_DIR") ? getenv("SLUICE_BINARY_DIR") : "build";
    f->metrics_port = harness_free_port();
    if (harness_test_dir(f->dir, sizeof f->dir, name, f->log_path, sizeof f->log_path) != 0 ||
        harness_up(&f->srv, &f->nc) != 0)
        return -1;
    setenv("NATS_URL", harness_nats_url(f->srv), 1);
    return harness_open_kv(&f->config_kv, f->nc, SL_BUCKET_CONFIG) == SL_OK &&
                   harness_open_kv(&f->secrets_kv, f->nc, SL_BUCKET_SECRETS) == SL_OK
               ? 0
               : -1;
}

void fds_fixture_start(fds_fixture *f, const char *const *args)
{
    char bin[1024], url[256], maddr[64];
    const char *argv[64] = {bin, "--nats-url", url, "--metrics-addr", maddr, "--lease-ttl", "2s", "--log-level", "debug"};
    size_t n = 9;
    snprintf(bin, sizeof bin, "%s/services/function-discovery/sluice-function-discovery", f->bin_dir);
    snprintf(url, sizeof url, "%s", harness_nats_url(f->srv));
    snprintf(maddr, sizeof maddr, "127.0.0.1:%d", f->metrics_port);
    for (size_t i = 0; args && args[i] && n < 63; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    f->discovery = harness_spawn(argv, f->log_path);
    if (f->discovery < 0 || harness_wait_http(f->metrics_port, "/readyz", 15000) != 0)
        fail_msg("sluice-function-discovery did not start (log %s)", f->log_path);
}

int fds_fixture_down(fds_fixture *f)
{
    harness_stop_pid(&f->discovery, SIGKILL);
    sl_kv_free(f->secrets_kv);
    sl_kv_free(f->config_kv);
    harness_down(f->srv, f->nc);
    harness_show_log(f->log_path);
    return harness_remove_test_dir(f->dir);
}
