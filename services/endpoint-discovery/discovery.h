/* discovery.h - sluice-endpoint-discovery's NATS glue: dns and etcd Upstreams in sluice_config -> EndpointSets
 * in sluice_endpoints, re-resolved as their TTLs run out or followed as the etcd registry changes, with
 * Warning reports when a source fails. */
#ifndef ED_DISCOVERY_H
#define ED_DISCOVERY_H

#include <stdbool.h>
#include <stdint.h>

#include "sluice/dns.h"
#include "sluice/nats.h"
#include "sluice/service.h"
#include "sluice/status.h"

typedef struct ed_opts {
    const char *config_bucket;    /* watched for Upstreams (default sluice_config) */
    const char *endpoints_bucket; /* written (default sluice_endpoints) */
    sl_dns_opts dns;              /* the resolver's settings (servers, timeout, tries) */
    const char *dns_source;       /* what reports name as the source: the servers, or "resolv.conf" */
    int64_t min_refresh_ms, max_refresh_ms; /* every refresh is clamped to these */
    int64_t default_refresh_ms;   /* respectDnsTtl false and no dnsRefreshRate (Envoy's 5 s) */
    int64_t failure_refresh_ms;   /* retry after a failed source (clamped too) */
    int64_t tick_ms;              /* how often due names are looked for (default 100 ms) */
    const char *etcd_endpoints;   /* "host:port[,...]": the etcd registry; NULL or "": none */
    const char *etcd_prefix;      /* the keys followed (every etcd Upstream's prefix is under it; "" all) */
    int64_t etcd_timeout_ms;      /* connect and Range (default 5 s) */
    /* Fencing: asked before every write; false -> nothing is written. NULL: always. */
    bool (*may_write)(void *ud);
    void *may_write_ud;
} ed_opts;

typedef struct ed_service ed_service;

/* Starts the resolver (o->dns), opens the buckets (creating them when
 * missing), registers the metrics on svc's registry and starts the watches
 * (delivering on loop) and the ticker. o and its strings must outlive the
 * service. Free with ed_service_free() before loop. */
sl_status ed_service_start(ed_service **out, sl_service *svc, sl_nats *nc, sl_loop *loop, const ed_opts *o);

/* Stops the ticker, the watches and the resolver (no handler or result runs
 * after it returns; results not applied are dropped) and frees everything.
 * Not on the loop's thread while the loop runs. NULL is a no-op. */
void ed_service_free(ed_service *s);

#endif
