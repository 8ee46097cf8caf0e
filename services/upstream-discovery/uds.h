/* uds.h - sluice-upstream-discovery's modules: the NATS glue (uds.c: sources -> Upstreams in sluice_config,
 * created, left alone when a person holds them, removed after a grace period) and DNS-SD browsing
 * (dnssd.c). */
#ifndef UD_UDS_H
#define UD_UDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sluice/dns.h"
#include "sluice/nats.h"
#include "sluice/service.h"
#include "sluice/status.h"

/* The annotation that marks an Upstream as discovery's, and its value. */
#define UD_ANN_BY "discovered-by"
#define UD_ANN_BY_VALUE "upstream-discovery"
/* The service an Upstream was discovered for, and by which source ("etcd", "dnssd"). */
#define UD_ANN_SERVICE "discovery.sluice.io/service"
#define UD_ANN_SOURCE "discovery.sluice.io/service-source"
/* Gloo's label: the plugin that discovered the Upstream ("etcdplugin", "dnssdplugin"). */
#define UD_LABEL_BY "discovered_by"

typedef struct ud_opts {
    const char *config_bucket;      /* read and written (default sluice_config) */
    const char *settings_ns, *settings_name; /* the Settings read (gloo-system/default) */
    const char *namespace_;         /* the discovery namespace; "" or NULL: Settings.discoveryNamespace, else gloo-system */
    int64_t grace_ms;               /* a service gone this long loses its Upstream */
    const char *etcd_endpoints;     /* "host:port[,...]"; "" none */
    const char *etcd_roots;         /* "services/[,...]": the registry roots followed (one watch each) */
    int64_t etcd_timeout_ms;
    const char *dnssd_domains;      /* "example.test[,...]" browsed with _services._dns-sd._udp */
    const char *dnssd_types;        /* "_http._tcp[,...]" browsed under every domain */
    sl_dns_opts dns;
    int64_t dnssd_refresh_ms;       /* DNS-SD browsed again after */
    int64_t retry_ms;               /* a failed source asked again after */
    int64_t tick_ms;                /* grace and changes checked every (default 200 ms) */
    /* Fencing: asked before every write; false -> nothing is written. NULL: always. */
    bool (*may_write)(void *ud);
    void *may_write_ud;
} ud_opts;

typedef struct ud_service ud_service;

/* Opens the config bucket, registers the metrics, starts the watches, the
 * sources and the ticker (delivering on loop). o and its strings must
 * outlive the service. Free with ud_service_free() before loop. */
sl_status ud_service_start(ud_service **out, sl_service *svc, sl_nats *nc, sl_loop *loop, const ud_opts *o);

/* Stops everything (no handler runs after it returns) and frees it. Not
 * on the loop's thread while the loop runs. NULL is a no-op. */
void ud_service_free(ud_service *s);

/* ---- dnssd.c: DNS-SD browsing ------------------------------------------ */

/* One browse: every service instance name found (sorted, unique), and
 * the PTR names whose query failed (a type "_http._tcp.<domain>": its
 * instances are unknown; an enumeration "_services._dns-sd._udp.<domain>":
 * the domain's types are); none: the browse is complete. */
typedef struct ud_dnssd_result {
    char **names;
    size_t n;
    char **failed;
    size_t n_failed;
    char error[384]; /* the first failure */
    void *owner;     /* the consumer's */
} ud_dnssd_result;

/* Called on the browser's thread; the callee owns r (ud_dnssd_result_free()). */
typedef void (*ud_dnssd_cb)(ud_dnssd_result *r, void *ud);

typedef struct ud_dnssd_opts {
    sl_dns_opts dns;
    const char *domains; /* comma-separated; each browsed with PTR _services._dns-sd._udp.<domain> */
    const char *types;   /* comma-separated service types ("_http._tcp"), browsed under every domain */
    int64_t refresh_ms, retry_ms;
    ud_dnssd_cb cb;
    void *ud;
} ud_dnssd_opts;

typedef struct ud_dnssd ud_dnssd;

/* Starts the browser's thread: a browse at once, then every refresh_ms
 * (retry_ms after a failed one). o's strings are copied. */
sl_status ud_dnssd_start(ud_dnssd **out, const ud_dnssd_opts *o);

/* Stops the thread; no callback runs after it returns. NULL is a no-op. */
void ud_dnssd_free(ud_dnssd *d);

void ud_dnssd_result_free(ud_dnssd_result *r);

#endif
