/* sluice-upstream-discovery: services found in the etcd registry and by DNS-SD -> Upstreams in sluice_config,
 * so that routes can name them without anyone writing one. See docs/discovery.md. */
#include <stdio.h>
#include <string.h>

#include "sluice/kinds.h"
#include "sluice/lease.h"
#include "sluice/nats.h"
#include "sluice/resource.h"
#include "sluice/service.h"
#include "uds.h"

#ifndef SLUICE_VERSION
#define SLUICE_VERSION "0.1.0"
#endif

static const sl_service_info info = {
    "sluice-upstream-discovery", SLUICE_VERSION,
    "Creates an Upstream in the config bucket for each service it finds: each service\n"
    "prefix registered in etcd under --etcd-roots (type etcd), and each DNS-SD instance\n"
    "under --dns-sd-domains (type dns, srv: true).",
    "Discovered Upstreams are labelled discovered_by (etcdplugin, dnssdplugin), annotated\n"
    "discovered-by: upstream-discovery, and written to Settings.discoveryNamespace\n"
    "(gloo-system). An Upstream a person wrote is never written over; one a person edited\n"
    "(its spec changed, or the annotation removed) is theirs from then on. An Upstream\n"
    "whose service is gone is removed after --removal-grace; a source that fails removes\n"
    "nothing. Settings.discovery.udsOptions.enabled false stops all writes."};

static ud_opts opts;
static const char *dns_servers;
static int64_t dns_timeout_ms, lease_ttl_ms;
static int dns_tries;

static const sl_flag own_flags[] = {
    {.name = "etcd-endpoints", .kind = SL_FLAG_STRING, .target = &opts.etcd_endpoints, .def = "",
     .env = "SLUICE_ETCD_ENDPOINTS", .arg = "HOST:PORT[,...]", .opts = SL_FLAG_EMPTY_OK,
     .help = "etcd servers holding the registry (\"\": no etcd source)"},
    {.name = "etcd-roots", .kind = SL_FLAG_STRING, .target = &opts.etcd_roots, .def = "",
     .env = "SLUICE_UDS_ETCD_ROOTS", .arg = "PREFIX[,...]", .opts = SL_FLAG_EMPTY_OK,
     .help = "registry roots (one watch each): every key <root><service>/<addr> makes\n"
             "<root><service> a service (\"\": every key)"},
    {.name = "etcd-timeout", .kind = SL_FLAG_DURATION, .target = &opts.etcd_timeout_ms, .def = "5s", .min = 100,
     .max = 600000, .help = "connecting to etcd and reading the registry"},
    {.name = "dns-sd-domains", .kind = SL_FLAG_STRING, .target = &opts.dnssd_domains, .def = "",
     .env = "SLUICE_UDS_DNS_SD_DOMAINS", .arg = "DOMAIN[,...]", .opts = SL_FLAG_EMPTY_OK,
     .help = "domains browsed with DNS-SD (PTR _services._dns-sd._udp.<domain>, then\n"
             "PTR <type>.<domain>; \"\": no DNS-SD source)"},
    {.name = "dns-sd-types", .kind = SL_FLAG_STRING, .target = &opts.dnssd_types, .def = "",
     .env = "SLUICE_UDS_DNS_SD_TYPES", .arg = "TYPE[,...]", .opts = SL_FLAG_EMPTY_OK,
     .help = "service types browsed under every domain as well (\"_http._tcp\")"},
    {.name = "dns-sd-refresh", .kind = SL_FLAG_DURATION, .target = &opts.dnssd_refresh_ms, .def = "30s",
     .min = 100, .max = 86400000, .help = "DNS-SD is browsed again after"},
    {.name = "dns-server", .kind = SL_FLAG_STRING, .target = &dns_servers, .def = "", .env = "SLUICE_DNS_SERVER",
     .arg = "HOST:PORT[,...]", .opts = SL_FLAG_EMPTY_OK,
     .help = "DNS servers to ask (\"\": those of /etc/resolv.conf)"},
    {.name = "dns-timeout", .kind = SL_FLAG_DURATION, .target = &dns_timeout_ms, .def = "2s", .min = 10,
     .max = 60000, .help = "timeout of a query's first try"},
    {.name = "dns-tries", .kind = SL_FLAG_INT, .target = &dns_tries, .def = "2", .min = 1, .max = 10,
     .help = "tries per server before a query times out"},
    {.name = "retry", .kind = SL_FLAG_DURATION, .target = &opts.retry_ms, .def = "5s", .min = 100,
     .max = 86400000, .help = "a failed source is asked again after"},
    {.name = "removal-grace", .kind = SL_FLAG_DURATION, .target = &opts.grace_ms, .def = "60s", .min = 0,
     .max = 604800000, .help = "a discovered Upstream whose service is gone this long is removed"},
    {.name = "discovery-namespace", .kind = SL_FLAG_STRING, .target = &opts.namespace_, .def = "",
     .env = "SLUICE_DISCOVERY_NAMESPACE", .arg = "NS", .opts = SL_FLAG_EMPTY_OK,
     .help = "namespace of the Upstreams written (\"\": Settings.discoveryNamespace, else\n"
             "gloo-system)"},
    {.name = "settings-namespace", .kind = SL_FLAG_STRING, .target = &opts.settings_ns, .def = "gloo-system",
     .env = "SLUICE_SETTINGS_NAMESPACE", .arg = "NS", .help = "namespace of the Settings read"},
    {.name = "settings-name", .kind = SL_FLAG_STRING, .target = &opts.settings_name, .def = "default",
     .env = "SLUICE_SETTINGS_NAME", .arg = "NAME", .help = "name of the Settings read"},
    {.name = "config-bucket", .kind = SL_FLAG_STRING, .target = &opts.config_bucket, .def = SL_BUCKET_CONFIG,
     .env = "SLUICE_CONFIG_BUCKET", .arg = "NAME", .help = "KV bucket of the Upstreams and Settings"},
    {.name = "lease-ttl", .kind = SL_FLAG_DURATION, .target = &lease_ttl_ms, .def = "10s",
     .help = "one replica writes: replicas wait for the lease\n"
             "\"upstream-discovery.<config-bucket>\" in KV sluice_leases and take over\n"
             "within this TTL when the holder dies (0: no lease; else at least 1s)"},
};

/* On the loop: this replica holds the lease (or there is none). */
static sl_status start(void **work, const sl_leased_ctx *ctx)
{
    ud_service *u = NULL;
    opts.may_write = ctx->may_write;
    opts.may_write_ud = ctx->may_write_ud;
    sl_status rc = ud_service_start(&u, ctx->svc, ctx->nc, ctx->loop, &opts);
    *work = u;
    if (rc == SL_OK)
        sl_log_info("uds", "started", "etcd=%s roots=%s dns_sd_domains=%s dns_sd_types=%s grace_ms=%lld",
                    sl_log_q(opts.etcd_endpoints), sl_log_q(opts.etcd_roots), sl_log_q(opts.dnssd_domains),
                    sl_log_q(opts.dnssd_types), (long long)opts.grace_ms);
    return rc;
}

static void stop(void *work)
{
    ud_service_free(work);
}

/* Checks what the flag table cannot; a usage error otherwise. */
static sl_status check_flags(void)
{
    if (opts.namespace_ && opts.namespace_[0] && sl_resource_check_namespace(opts.namespace_) != SL_OK)
        return sl_error_set(SL_ERR_INVALID, "--discovery-namespace: %s", sl_error_msg());
    if (sl_resource_check_namespace(opts.settings_ns) != SL_OK ||
        sl_resource_check_name(opts.settings_name) != SL_OK)
        return sl_error_set(SL_ERR_INVALID, "--settings-namespace/--settings-name: %s", sl_error_msg());
    if (opts.dnssd_types && opts.dnssd_types[0] && !(opts.dnssd_domains && opts.dnssd_domains[0]))
        return sl_error_set(SL_ERR_INVALID, "--dns-sd-types needs --dns-sd-domains to browse them under");
    opts.dns.servers = dns_servers;
    opts.dns.timeout_ms = (int)dns_timeout_ms;
    opts.dns.tries = dns_tries;
    return SL_OK;
}

int main(int argc, char **argv)
{
    const sl_leased d = {.info = &info, .flags = own_flags, .n_flags = sizeof own_flags / sizeof own_flags[0],
                         .comp = "uds", .lease_prefix = "upstream-discovery", .lease_bucket = &opts.config_bucket,
                         .lease_ttl_ms = &lease_ttl_ms, .leader_metric = "sluice_upstream_discovery_leader",
                         .leader_help = "1 while this replica holds the lease and writes.",
                         .check = check_flags, .start = start, .stop = stop};
    return sl_lease_main(&d, argc, argv);
}
