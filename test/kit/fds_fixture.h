/* fds_fixture.h - what the sluice-function-discovery tests share: a temp dir and the log of the
 * processes they start, a nats-server (authentication on) with the config and secrets buckets,
 * and the service started with the tests' flags.
 *
 *   static fds_fixture fx;
 *   setup:    return fds_fixture_up(&fx, "fds-tls");
 *   the test: const char *args[] = {"--resync", "300ms", NULL}; fds_fixture_start(&fx, args);
 *   teardown: return fds_fixture_down(&fx);
 */
#ifndef SLUICE_TEST_FDS_FIXTURE_H
#define SLUICE_TEST_FDS_FIXTURE_H

#include <sys/types.h>

#include "harness.h"
#include "sluice/kv.h"
#include "sluice/nats.h"

typedef struct fds_fixture {
    harness_nats *srv;
    sl_nats *nc;                   /* the test's own connection (admin) */
    sl_kv *config_kv, *secrets_kv; /* sluice_config, sluice_secrets */
    char dir[256], log_path[300];  /* /tmp/sluice-<name>-XXXXXX, <dir>/processes.log */
    const char *src, *bin_dir;     /* $SLUICE_SOURCE_DIR (else "."), $SLUICE_BINARY_DIR (else "build") */
    int metrics_port;              /* the service's /metrics, /readyz */
    pid_t discovery;               /* -1 when not running */
} fds_fixture;

/* The dir, the server (NATS_URL set to it) and both buckets. 0, or -1. */
int fds_fixture_up(fds_fixture *f, const char *name);

/* Starts sluice-function-discovery with --nats-url, --metrics-addr, --lease-ttl 2s, --log-level
 * debug and args (NULL terminated), its output into the log, and waits for /readyz; the test fails
 * otherwise. */
void fds_fixture_start(fds_fixture *f, const char *const *args);

/* Kills the service if it runs, closes the buckets, stops the server, shows the log
 * ($SLUICE_TEST_SHOW_LOGS) and removes the dir. 0, or -1. */
int fds_fixture_down(fds_fixture *f);

#endif
