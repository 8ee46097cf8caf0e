/* bench_discovery.c - sluice-endpoint-discovery at scale against a real dnsmasq: initial sync, one DNS
 * change -> EndpointSet written, CPU and RSS, writes after a restart with nothing changed.
 *
 * bench_discovery BUILD [upstreams [changes [ttl_s]]]: a nats-server (auth
 * on) and a dnsmasq on loopback ports answering <n> names of 3 addresses
 * each (TTL ttl_s), <n> Upstreams of type dns, then sluice-endpoint-discovery
 * (min refresh 1 s). Last line:
 *   RESULT upstreams=.. initial_sync_ms=.. change_written_p50_ms=.. change_written_p99_ms=.. ttl_s=..
 *          cpu_s=.. rss_mb=.. restart_writes=.. restart_sync_ms=..
 * A change's time runs from the SIGHUP that makes dnsmasq read the changed
 * hosts file to the new set in the bucket; it includes waiting for the TTL
 * (discovery asks when the answer expires), so its floor is about ttl_s/2. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "sluice/kv.h"
#include "sluice/v1/endpoints.pb-c.h"
#include "sluice/v1/upstream.pb-c.h"

static const char *build_dir;
static harness_nats *srv;
static sl_nats *nc;
static sl_kv *config_kv, *endpoints_kv;
static sl_kv_watch *watch;
static pid_t dnsmasq = -1, discovery = -1;
static int dns_port, metrics_port, n_up, ttl_s;
static char dir[256], hosts_path[300], log_path[300];
static char *changed; /* changed[i]: name i has .4 instead of .3 */

#define DIE(...)                                                                                                       \
    do {                                                                                                               \
        fprintf(stderr, "bench_discovery: " __VA_ARGS__);                                                             \
        fputc('\n', stderr);                                                                                           \
        exit(1);                                                                                                       \
    } while (0)

static pid_t spawn(char *const argv[]) { return harness_spawn((const char *const *)argv, log_path); }

/* Name i has 10.<i/250>.<i%250>.{1,2,3}; changed names get .4 for .3. */
static void write_hosts(void)
{
    FILE *f = fopen(hosts_path, "w");
    if (!f)
        DIE("%s", hosts_path);
    for (int i = 0; i < n_up; i++)
        fprintf(f, "10.%d.%d.1 s%d.bench\n10.%d.%d.2 s%d.bench\n10.%d.%d.%d s%d.bench\n", i / 250, i % 250, i,
                i / 250, i % 250, i, i / 250, i % 250, changed[i] ? 4 : 3, i);
    fclose(f);
}

static void start_dnsmasq(void)
{
    char ttl[32];
    snprintf(ttl, sizeof ttl, "--local-ttl=%d", ttl_s);
    const char *const args[] = {ttl, "--local=/bench/", "--dns-forward-max=10000", NULL};
    dnsmasq = harness_start_dnsmasq(dns_port, hosts_path, args, log_path);
    if (dnsmasq < 0)
        DIE("dnsmasq did not start (see %s)", log_path);
}

static void start_discovery(void)
{
    char bin[1024], url[256], dns[64], maddr[64];
    snprintf(bin, sizeof bin, "%s/services/endpoint-discovery/sluice-endpoint-discovery", build_dir);
    snprintf(url, sizeof url, "%s", harness_nats_url(srv));
    snprintf(dns, sizeof dns, "127.0.0.1:%d", dns_port);
    snprintf(maddr, sizeof maddr, "127.0.0.1:%d", metrics_port);
    char *inflight = getenv("DISCOVERY_MAX_INFLIGHT") ? getenv("DISCOVERY_MAX_INFLIGHT") : "64";
    char *argv[] = {bin, "--nats-url", url, "--dns-server", dns, "--metrics-addr", maddr, "--min-refresh", "1s",
                    "--max-inflight", inflight, "--log-level",
                    getenv("BENCH_LOG_LEVEL") ? getenv("BENCH_LOG_LEVEL") : "warn", NULL};
    discovery = spawn(argv);
}

static void put_upstreams(void)
{
    sl_kv_put_item *items = calloc((size_t)n_up, sizeof *items);
    char **keys = calloc((size_t)n_up, sizeof *keys);
    uint8_t **vals = calloc((size_t)n_up, sizeof *vals);
    for (int i = 0; i < n_up; i++) {
        char name[32], host[48];
        Sluice__V1__Upstream u = SLUICE__V1__UPSTREAM__INIT;
        Sluice__V1__Metadata md = SLUICE__V1__METADATA__INIT;
        Sluice__V1__UpstreamSpec sp = SLUICE__V1__UPSTREAM_SPEC__INIT;
        Sluice__V1__DnsUpstreamSpec d = SLUICE__V1__DNS_UPSTREAM_SPEC__INIT;
        snprintf(name, sizeof name, "s%d", i);
        snprintf(host, sizeof host, "s%d.bench", i);
        md.name = name;
        md.namespace_ = "default";
        d.name = host;
        d.port = 8080;
        sp.upstream_type_case = SLUICE__V1__UPSTREAM_SPEC__UPSTREAM_TYPE_DNS;
        sp.dns = &d;
        u.metadata = &md;
        u.spec = &sp;
        items[i].len = protobuf_c_message_get_packed_size(&u.base);
        vals[i] = malloc(items[i].len);
        protobuf_c_message_pack(&u.base, vals[i]);
        items[i].value = vals[i];
        keys[i] = malloc(48);
        snprintf(keys[i], 48, "Upstream.default.s%d", i);
        items[i].key = keys[i];
    }
    for (int off = 0; off < n_up; off += 1000) {
        int n = n_up - off < 1000 ? n_up - off : 1000;
        if (sl_kv_put_many(config_kv, items + off, (size_t)n, 30000) != SL_OK)
            DIE("put upstreams: %s", sl_error_msg());
    }
    for (int i = 0; i < n_up; i++) {
        free(keys[i]);
        free(vals[i]);
    }
    free(keys);
    free(vals);
    free(items);
}

/* Waits for sets on the watch: until count distinct keys were put since
 * the call, or (key non-NULL) key's set holds want_addr. */
static int64_t wait_sets(int count, const char *key, const char *want_addr, int64_t timeout_ms)
{
    int64_t t0 = harness_now_ms(), end = t0 + timeout_ms;
    int seen = 0;
    while (harness_now_ms() < end) {
        sl_kv_entry e = {0};
        bool initial = false;
        sl_status st = sl_kv_watch_next(&e, &initial, watch, 200);
        if (st == SL_ERR_TIMEOUT || (st == SL_OK && initial))
            continue;
        if (st != SL_OK)
            DIE("watch: %s", sl_error_msg());
        bool hit = false;
        if (e.op == SL_KV_PUT) {
            if (!key) {
                hit = ++seen >= count;
            } else if (!strcmp(e.key, key)) {
                Sluice__V1__EndpointSet *s = sluice__v1__endpoint_set__unpack(NULL, e.len, e.value);
                for (size_t i = 0; s && s->spec && i < s->spec->n_endpoints; i++)
                    hit = hit || !strcmp(s->spec->endpoints[i]->address, want_addr);
                sluice__v1__endpoint_set__free_unpacked(s, NULL);
            }
        }
        sl_kv_entry_deinit(&e);
        if (hit)
            return harness_now_ms() - t0;
    }
    DIE("timed out waiting for %s (see %s)", key ? key : "the initial sets", log_path);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* CPU seconds and peak RSS (MB) of pid. */
static void usage_of(pid_t pid, double *cpu_s, double *rss_mb)
{
    char path[64], buf[4096];
    unsigned long ut = 0, st = 0;
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (f && fgets(buf, sizeof buf, f)) {
        char *p = strrchr(buf, ')');
        if (p)
            sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st);
    }
    if (f)
        fclose(f);
    *cpu_s = (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    *rss_mb = 0;
    if ((f = fopen(path, "r"))) {
        while (fgets(buf, sizeof buf, f))
            if (!strncmp(buf, "VmHWM:", 6))
                *rss_mb = atof(buf + 6) / 1024.0;
        fclose(f);
    }
}

int main(int argc, char **argv)
{
    if (argc < 2)
        DIE("usage: bench_discovery BUILD [upstreams [changes [ttl_s]]]");
    build_dir = argv[1];
    n_up = argc > 2 ? atoi(argv[2]) : 10000;
    int changes = argc > 3 ? atoi(argv[3]) : 10;
    ttl_s = argc > 4 ? atoi(argv[4]) : 2;
    snprintf(dir, sizeof dir, "/tmp/sluice-bench-ed-XXXXXX");
    if (!mkdtemp(dir))
        DIE("mkdtemp");
    chmod(dir, 0755);
    snprintf(hosts_path, sizeof hosts_path, "%s/hosts", dir);
    snprintf(log_path, sizeof log_path, "%s/processes.log", dir);
    dns_port = harness_free_port_both();
    metrics_port = harness_free_port_both();
    if (harness_nats_start(&srv) != 0 || harness_connect(&nc, srv) != SL_OK)
        DIE("nats-server");
    sl_kv_config c;
    sl_kv_config_init(&c, "sluice_config");
    if (sl_kv_open(&config_kv, nc, &c) != SL_OK)
        DIE("config bucket");
    sl_kv_config_init(&c, "sluice_endpoints");
    if (sl_kv_open(&endpoints_kv, nc, &c) != SL_OK || sl_kv_watch_new(&watch, endpoints_kv, NULL) != SL_OK)
        DIE("endpoints bucket");
    changed = calloc((size_t)n_up, 1);
    write_hosts();
    start_dnsmasq();
    put_upstreams();

    start_discovery();
    int64_t initial_ms = wait_sets(n_up, NULL, NULL, 300000);
    fprintf(stderr, "bench_discovery: %d sets in %lld ms\n", n_up, (long long)initial_ms);

    int64_t *lat = calloc((size_t)changes, sizeof *lat);
    for (int i = 0; i < changes; i++) {
        char key[48], addr[32];
        int k = i * (n_up / (changes ? changes : 1));
        changed[k] = 1; /* one name changes */
        write_hosts();
        snprintf(key, sizeof key, "default.s%d", k);
        snprintf(addr, sizeof addr, "10.%d.%d.4", k / 250, k % 250);
        kill(dnsmasq, SIGHUP);
        lat[i] = wait_sets(0, key, addr, 60000);
    }
    qsort(lat, (size_t)changes, sizeof *lat, cmp_i64);
    double cpu_s, rss_mb;
    usage_of(discovery, &cpu_s, &rss_mb);

    /* A restart with nothing changed (dnsmasq's records as they are). */
    if (harness_stop_pid(&discovery, SIGTERM) != 0)
        DIE("sluice-endpoint-discovery did not exit 0 on SIGTERM");
    int64_t t0 = harness_now_ms();
    start_discovery();
    while (harness_metric(metrics_port, "sluice_endpoint_discovery_unchanged_total") < n_up &&
           harness_now_ms() - t0 < 300000)
        usleep(50 * 1000);
    int64_t restart_ms = harness_now_ms() - t0;
    double restart_writes = harness_metric(metrics_port, "sluice_endpoint_discovery_writes_total");

    printf("RESULT upstreams=%d initial_sync_ms=%lld change_written_p50_ms=%lld change_written_p99_ms=%lld "
           "ttl_s=%d cpu_s=%.2f rss_mb=%.1f restart_writes=%.0f restart_sync_ms=%lld\n",
           n_up, (long long)initial_ms, (long long)(changes ? lat[changes / 2] : 0),
           (long long)(changes ? lat[(changes * 99) / 100 < changes ? (changes * 99) / 100 : changes - 1] : 0),
           ttl_s, cpu_s, rss_mb, restart_writes, (long long)restart_ms);
    free(lat);
    harness_stop_pid(&discovery, SIGTERM);
    harness_stop_pid(&dnsmasq, SIGTERM);
    sl_kv_watch_free(watch);
    sl_kv_free(endpoints_kv);
    sl_kv_free(config_kv);
    sl_nats_close(nc, 1000);
    harness_nats_free(srv);
    return restart_writes == 0 ? 0 : 1;
}
