/* service.h - sluice-translator's NATS side: watches the config, secrets
 * and endpoints buckets into a store, translates after a quiet period
 * (debounce), writes the sluice_xds bucket through the xDS store's writer
 * (sluice/xds_writer.h: changed resources, then the commit, then deletions)
 * and publishes reports.
 *
 * Everything runs on the service loop's thread except the debounce timer,
 * which only posts tasks to the loop.
 */
#ifndef SLUICE_TR_SERVICE_H
#define SLUICE_TR_SERVICE_H

#include <stdint.h>

#include "sluice/kv.h"
#include "sluice/service.h"

typedef struct tr_service_opts {
    int64_t debounce_ms;  /* quiet time after a change before translating (0: 10) */
    int64_t max_delay_ms; /* longest a change waits under a constant stream (0: 1000) */
    const char *settings_namespace; /* default "gloo-system" */
    const char *xds_bucket;         /* default "sluice_xds" */
    /* Asked before every write (NULL: always): false means another replica
     * may be writing now (the lease is gone), so nothing is written and the
     * service stops with exit status 1. */
    bool (*may_write)(void *ud);
    void *may_write_ud;
} tr_service_opts;

typedef struct tr_service tr_service;

/* Opens the buckets and starts the watches on loop. Translation starts
 * once every watch delivered its initial values. */
sl_status tr_service_start(tr_service **out, sl_service *svc, sl_nats *nc, sl_loop *loop,
                           const tr_service_opts *opts);

/* Stops the watches and the timer; no task of the service runs after it
 * returns. NULL is a no-op. */
void tr_service_free(tr_service *s);

#endif
