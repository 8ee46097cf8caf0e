/* sluice-endpoint-discovery: Upstreams of type dns and etcd -> their endpoints in the sluice_endpoints
 * bucket, kept current as DNS answers and the etcd registry change. See docs/discovery.md. */
#include <stdio.h>
#include <string.h>

#include "discovery.h"
#include "sluice/kinds.h"
#include "sluice/lease.h"
#include "sluice/nats.h"
#include "sluice/service.h"

#ifndef SLUICE_VERSION
#define SLUICE_VERSION "0.1.0"
#endif

static const sl_service_info info = {
    "sluice-endpoint-discovery", SLUICE_VERSION,
    "Resolves Upstreams of type dns (A/AAAA, SRV) and follows Upstreams of type etcd\n"
    "(the naming/endpoints registry under a key prefix) into EndpointSets in the\n"
    "endpoints bucket.",
    "Each answer is asked again when its TTL runs out (an Upstream's dnsRefreshRate\n"
    "wins unless respectDnsTtl is true), within --min-refresh and --max-refresh. A set\n"
    "is written only when it changed. A DNS server that fails (timeout, SERVFAIL,\n"
    "REFUSED, unreachable) never empties a set: the last endpoints stay and the\n"
    "Upstream gets a Warning, cleared when the server answers again. NXDOMAIN and\n"
    "NODATA are answers: the set becomes empty, with a Warning. The etcd registry is\n"
    "read once and then watched from the next revision; an etcd that cannot be\n"
    "reached keeps the sets as they are, with a Warning."};

static ed_opts opts;
static const char *dns_servers;
static int64_t dns_timeout_ms, lease_ttl_ms;
static int dns_tries, max_inflight;

static const sl_flag own_flags[] = {
    {.name = "dns-server", .kind = SL_FLAG_STRING, .target = &dns_servers, .def = "", .env = "SLUICE_DNS_SERVER",
     .arg = "HOST:PORT[,...]", .opts = SL_FLAG_EMPTY_OK,
     .help = "DNS servers to ask (\"\": those of /etc/resolv.conf, with its search\n"
             "domains and /etc/hosts)"},
    {.name = "dns-timeout", .kind = SL_FLAG_DURATION, .target = &dns_timeout_ms, .def = "2s", .min = 10,
     .max = 60000, .help = "timeout of a query's first try (later tries wait longer)"},
    {.name = "dns-tries", .kind = SL_FLAG_INT, .target = &dns_tries, .def = "2", .min = 1, .max = 10,
     .help = "tries per server before a query times out"},
    {.name = "max-inflight", .kind = SL_FLAG_INT, .target = &max_inflight, .def = "64", .min = 1, .max = 100000,
     .help = "resolutions running at once (more wait their turn; a burst larger than\n"
             "the server's socket buffer is dropped and costs a timeout)"},
    {.name = "min-refresh", .kind = SL_FLAG_DURATION, .target = &opts.min_refresh_ms, .def = "1s", .min = 100,
     .max = 86400000, .help = "shortest time between two resolutions of a name"},
    {.name = "max-refresh", .kind = SL_FLAG_DURATION, .target = &opts.max_refresh_ms, .def = "5m", .min = 100,
     .max = 86400000, .help = "longest time between two resolutions of a name (whatever the TTL)"},
    {.name = "default-refresh", .kind = SL_FLAG_DURATION, .target = &opts.default_refresh_ms, .def = "5s",
     .min = 100, .max = 86400000,
     .help = "refresh of an Upstream with respectDnsTtl false and no dnsRefreshRate"},
    {.name = "failure-refresh", .kind = SL_FLAG_DURATION, .target = &opts.failure_refresh_ms, .def = "5s",
     .min = 100, .max = 86400000, .help = "retry after the DNS server failed"},
    {.name = "etcd-endpoints", .kind = SL_FLAG_STRING, .target = &opts.etcd_endpoints, .def = "",
     .env = "SLUICE_ETCD_ENDPOINTS", .arg = "HOST:PORT[,...]", .opts = SL_FLAG_EMPTY_OK,
     .help = "etcd servers holding the registry of etcd Upstreams (\"\": none; such\n"
             "Upstreams then get a Warning)"},
    {.name = "etcd-prefix", .kind = SL_FLAG_STRING, .target = &opts.etcd_prefix, .def = "",
     .env = "SLUICE_ETCD_PREFIX", .arg = "PREFIX", .opts = SL_FLAG_EMPTY_OK,
     .help = "the keys watched (one watch); every etcd Upstream's prefix must be under it\n"
             "(\"\": every key)"},
    {.name = "etcd-timeout", .kind = SL_FLAG_DURATION, .target = &opts.etcd_timeout_ms, .def = "5s", .min = 100,
     .max = 600000, .help = "connecting to etcd and reading the registry"},
    {.name = "config-bucket", .kind = SL_FLAG_STRING, .target = &opts.config_bucket, .def = SL_BUCKET_CONFIG,
     .env = "SLUICE_CONFIG_BUCKET", .arg = "NAME", .help = "KV bucket of the Upstreams"},
    {.name = "endpoints-bucket", .kind = SL_FLAG_STRING, .target = &opts.endpoints_bucket,
     .def = SL_BUCKET_ENDPOINTS, .env = "SLUICE_ENDPOINTS_BUCKET", .arg = "NAME",
     .help = "KV bucket the EndpointSets are written to"},
    {.name = "lease-ttl", .kind = SL_FLAG_DURATION, .target = &lease_ttl_ms, .def = "10s",
     .help = "one replica resolves and writes: replicas wait for the lease\n"
             "\"endpoint-discovery.<endpoints-bucket>\" in KV sluice_leases and take over\n"
             "within this TTL when the holder dies (0: no lease; else at least 1s)"},
};

/* On the loop: this replica holds the lease (or there is none). */
static sl_status start(void **work, const sl_leased_ctx *ctx)
{
    ed_service *e = NULL;
    opts.may_write = ctx->may_write;
    opts.may_write_ud = ctx->may_write_ud;
    sl_status rc = ed_service_start(&e, ctx->svc, ctx->nc, ctx->loop, &opts);
    *work = e;
    if (rc == SL_OK)
        sl_log_info("discovery", "started", "dns=%s etcd=%s min_refresh_ms=%lld max_refresh_ms=%lld",
                    opts.dns_source, sl_log_q(opts.etcd_endpoints), (long long)opts.min_refresh_ms,
                    (long long)opts.max_refresh_ms);
    return rc;
}

static void stop(void *work)
{
    ed_service_free(work);
}

/* Checks what the flag table cannot; a usage error otherwise. */
static sl_status check_flags(void)
{
    if (opts.min_refresh_ms > opts.max_refresh_ms)
        return sl_error_set(SL_ERR_INVALID, "--min-refresh (%lldms) is above --max-refresh (%lldms)",
                            (long long)opts.min_refresh_ms, (long long)opts.max_refresh_ms);
    opts.dns.servers = dns_servers;
    opts.dns.timeout_ms = (int)dns_timeout_ms;
    opts.dns.tries = dns_tries;
    opts.dns.max_inflight = max_inflight;
    opts.dns_source = dns_servers && dns_servers[0] ? dns_servers : "resolv.conf";
    return SL_OK;
}

int main(int argc, char **argv)
{
    const sl_leased d = {.info = &info, .flags = own_flags, .n_flags = sizeof own_flags / sizeof own_flags[0],
                         .comp = "discovery", .lease_prefix = "endpoint-discovery",
                         .lease_bucket = &opts.endpoints_bucket, .lease_ttl_ms = &lease_ttl_ms,
                         .leader_metric = "sluice_endpoint_discovery_leader",
                         .leader_help = "1 while this replica holds the lease and resolves.", .check = check_flags,
                         .start = start, .stop = stop};
    return sl_lease_main(&d, argc, argv);
}
