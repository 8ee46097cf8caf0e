/* bench_discovery.c - sluice-endpoint-discovery at scale: initial sync, one change -> EndpointSet written
 * (and, for etcd, -> a subscribed ADS client holding the new ClusterLoadAssignment), CPU and RSS, writes
 * after a restart with nothing changed.
 *
 * bench_discovery BUILD dns [upstreams [changes [ttl_s]]]: a nats-server
 * (auth on) and a dnsmasq on loopback ports answering <n> names of 3
 * addresses each (TTL ttl_s), <n> Upstreams of type dns, then
 * sluice-endpoint-discovery (min refresh 1 s). Last line:
 *   RESULT source=dns upstreams=.. initial_sync_ms=.. change_written_p50_ms=.. change_written_p99_ms=..
 *          ttl_s=.. cpu_s=.. rss_mb=.. restart_writes=.. restart_sync_ms=..
 * A change's time runs from the SIGHUP that makes dnsmasq read the changed
 * hosts file to the new set in the bucket; it includes waiting for the TTL
 * (discovery asks when the answer expires), so its floor is about ttl_s/2.
 *
 * bench_discovery BUILD etcd [upstreams [changes]]: a nats-server and an
 * etcd-server; <n> Upstreams of type etcd ("up-<i>", prefix "svc/up-<i>")
 * with 3 endpoints each registered as naming/endpoints writes them, <n>/10
 * VirtualServices of 10 routes naming every Upstream once
 * (bench/translate/bench_gen.c), sluice-endpoint-discovery, then
 * sluice-translator and sluice-xds with an ADS client (the test kit's)
 * subscribed to all <n> ClusterLoadAssignments. Each change registers one
 * more endpoint of one Upstream; its times run from the etcd Put to the
 * EndpointSet written (its observed_time) and to the ADS client receiving
 * the ClusterLoadAssignment that holds it. Last line:
 *   RESULT source=etcd upstreams=.. initial_sync_ms=.. change_written_p50_ms=.. change_written_p99_ms=..
 *          change_served_p50_ms=.. change_served_p99_ms=.. change_served_max_ms=.. changes=.. cpu_s=..
 *          rss_mb=.. restart_writes=.. restart_sync_ms=.. */
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

#include "bench_gen.h"
#include "envoy/service/discovery/v3/discovery.pb-c.h"
#include "harness.h"
#include "sluice/etcd.h"
#include "sluice/kv.h"
#include "sluice/resource.h"
#include "xds_client.h"
#include "sluice/v1/endpoints.pb-c.h"
#include "sluice/v1/upstream.pb-c.h"

static const char *build_dir;
static harness_nats *srv;
static sl_nats *nc;
static sl_kv *config_kv, *endpoints_kv;
static sl_kv_watch *watch;
static pid_t dnsmasq = -1, discovery = -1, etcd = -1, translator = -1, xds = -1;
static int dns_port, metrics_port, n_up, ttl_s, etcd_port;
static bool use_etcd;
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
    char etcd_ep[64] = "";
    if (use_etcd)
        snprintf(etcd_ep, sizeof etcd_ep, "127.0.0.1:%d", etcd_port);
    char *argv[] = {bin, "--nats-url", url, "--dns-server", dns, "--metrics-addr", maddr, "--min-refresh", "1s",
                    "--max-inflight", inflight, "--etcd-endpoints", etcd_ep, "--etcd-prefix", "svc/", "--log-level",
                    getenv("BENCH_LOG_LEVEL") ? getenv("BENCH_LOG_LEVEL") : "warn", NULL};
    discovery = spawn(argv);
}

/* Upstream i: "s<i>" of type dns (name s<i>.bench), or "up-<i>" of type
 * etcd (prefix svc/up-<i>); *key its KV key. */
static ProtobufCMessage *make_upstream(int i, char *key, size_t cap)
{
    Sluice__V1__Upstream *u = calloc(1, sizeof *u);
    Sluice__V1__Metadata *md = calloc(1, sizeof *md);
    Sluice__V1__UpstreamSpec *sp = calloc(1, sizeof *sp);
    char name[32], host[48];
    sluice__v1__upstream__init(u);
    sluice__v1__metadata__init(md);
    sluice__v1__upstream_spec__init(sp);
    snprintf(name, sizeof name, use_etcd ? "up-%d" : "s%d", i);
    md->name = strdup(name);
    md->namespace_ = strdup("default");
    if (use_etcd) {
        Sluice__V1__EtcdUpstreamSpec *e = calloc(1, sizeof *e);
        sluice__v1__etcd_upstream_spec__init(e);
        snprintf(host, sizeof host, "svc/up-%d", i);
        e->prefix = strdup(host);
        sp->upstream_type_case = SLUICE__V1__UPSTREAM_SPEC__UPSTREAM_TYPE_ETCD;
        sp->etcd = e;
    } else {
        Sluice__V1__DnsUpstreamSpec *d = calloc(1, sizeof *d);
        sluice__v1__dns_upstream_spec__init(d);
        snprintf(host, sizeof host, "s%d.bench", i);
        d->name = strdup(host);
        d->port = 8080;
        sp->upstream_type_case = SLUICE__V1__UPSTREAM_SPEC__UPSTREAM_TYPE_DNS;
        sp->dns = d;
    }
    u->metadata = md;
    u->spec = sp;
    sl_resource_key(key, cap, "Upstream", "default", name);
    return &u->base;
}

/* VirtualService i of bench_gen (10 routes naming Upstreams up-<10i..10i+9>). */
static ProtobufCMessage *make_vs(int i, char *key, size_t cap)
{
    char name[32];
    snprintf(name, sizeof name, "vs-%d", i);
    sl_resource_key(key, cap, "VirtualService", "default", name);
    return bench_gen_vs(i, n_up, "/api");
}

/* Puts make(0..n-1) into kv, 1,000 per batch. */
static void put_all(sl_kv *kv, int n, ProtobufCMessage *(*make)(int i, char *key, size_t cap))
{
    sl_kv_put_item *items = calloc((size_t)n, sizeof *items);
    char **keys = calloc((size_t)n, sizeof *keys);
    uint8_t **vals = calloc((size_t)n, sizeof *vals);
    for (int i = 0; i < n; i++) {
        keys[i] = malloc(SL_RESOURCE_KEY_MAX);
        ProtobufCMessage *m = make(i, keys[i], SL_RESOURCE_KEY_MAX);
        items[i].len = protobuf_c_message_get_packed_size(m);
        vals[i] = malloc(items[i].len ? items[i].len : 1);
        protobuf_c_message_pack(m, vals[i]);
        protobuf_c_message_free_unpacked(m, NULL);
        items[i].value = vals[i];
        items[i].key = keys[i];
    }
    for (int off = 0; off < n; off += 1000) {
        int k = n - off < 1000 ? n - off : 1000;
        if (sl_kv_put_many(kv, items + off, (size_t)k, 30000) != SL_OK)
            DIE("put: %s", sl_error_msg());
    }
    for (int i = 0; i < n; i++) {
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

/* A restart with nothing changed: the time until every set was found
 * unchanged, and the writes it made (must be 0). */
static double restart_unchanged(int64_t *ms)
{
    if (harness_stop_pid(&discovery, SIGTERM) != 0)
        DIE("sluice-endpoint-discovery did not exit 0 on SIGTERM");
    int64_t t0 = harness_now_ms();
    start_discovery();
    while (harness_metric(metrics_port, "sluice_endpoint_discovery_unchanged_total") < n_up &&
           harness_now_ms() - t0 < 300000)
        usleep(50 * 1000);
    *ms = harness_now_ms() - t0;
    return harness_metric(metrics_port, "sluice_endpoint_discovery_writes_total");
}

/* Discovery's CPU seconds and peak RSS so far, then restart_unchanged(). */
static double usage_then_restart(double *cpu_s, double *rss_mb, int64_t *restart_ms)
{
    *cpu_s = harness_cpu_seconds(discovery);
    *rss_mb = (double)harness_peak_rss_kb(discovery) / 1024.0;
    return restart_unchanged(restart_ms);
}

static int64_t pct_of(const int64_t *sorted, int n, int p)
{
    int i = (n * p) / 100;
    return n ? sorted[i < n ? i : n - 1] : 0;
}

static int run_dns(int changes)
{
    changed = calloc((size_t)n_up, 1);
    write_hosts();
    start_dnsmasq();
    put_all(config_kv, n_up, make_upstream);

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
    int64_t restart_ms;
    double restart_writes = usage_then_restart(&cpu_s, &rss_mb, &restart_ms);

    printf("RESULT source=dns upstreams=%d initial_sync_ms=%lld change_written_p50_ms=%lld "
           "change_written_p99_ms=%lld ttl_s=%d cpu_s=%.2f rss_mb=%.1f restart_writes=%.0f restart_sync_ms=%lld\n",
           n_up, (long long)initial_ms, (long long)pct_of(lat, changes, 50), (long long)pct_of(lat, changes, 99),
           ttl_s, cpu_s, rss_mb, restart_writes, (long long)restart_ms);
    free(lat);
    free(changed);
    harness_stop_pid(&dnsmasq, SIGTERM);
    return restart_writes == 0 ? 0 : 1;
}

/* ---- etcd, through the translator and sluice-xds to an ADS client ---------------- */

#define ADS "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources"
#define EDS_URL "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
#define PROXY "gloo-system~gateway-proxy"

static int64_t real_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void register_ep(sl_etcd *ec, int up, const char *addr)
{
    char key[96], val[160];
    snprintf(key, sizeof key, "svc/up-%d/%s:8080", up, addr);
    snprintf(val, sizeof val, "{\"Op\":0,\"Addr\":\"%s:8080\",\"Metadata\":null}", addr);
    if (sl_etcd_put(ec, key, val, strlen(val), NULL, 10000) != SL_OK)
        DIE("etcd put: %s", sl_error_msg());
}

/* Receives EDS responses (ACKing each) until one holds needle (NULL: any);
 * the realtime ms it arrived. */
static int64_t recv_until(xc *c, const char *needle, int n, char **names, int timeout_ms)
{
    int64_t deadline = harness_now_ms() + timeout_ms;
    while (harness_now_ms() < deadline) {
        size_t len;
        int ended;
        uint8_t *b = xc_recv(c, (int)(deadline - harness_now_ms()) + 1, &len, &ended);
        int64_t t = real_ms();
        if (!b) {
            if (ended)
                DIE("the ADS stream ended (see %s)", log_path);
            continue;
        }
        Envoy__Service__Discovery__V3__DiscoveryResponse *r =
            envoy__service__discovery__v3__discovery_response__unpack(NULL, len, b);
        if (!r)
            DIE("an ADS response that does not decode");
        bool hit = !strcmp(r->type_url, EDS_URL) && (!needle || memmem(b, len, needle, strlen(needle)));
        if (xc_request(c, "bench-discovery", PROXY, r->type_url, r->nonce, (size_t)n, names) != 0)
            DIE("ADS ack");
        envoy__service__discovery__v3__discovery_response__free_unpacked(r, NULL);
        free(b);
        if (hit)
            return t;
    }
    DIE("no ClusterLoadAssignment %s within %d ms (see %s)", needle ? needle : "at all", timeout_ms, log_path);
}

/* When the EndpointSet under key was written (its observed_time), realtime ms. */
static int64_t observed_ms(const char *key)
{
    sl_kv_entry e = {0};
    int64_t t = -1;
    if (sl_kv_get(&e, endpoints_kv, key) != SL_OK)
        DIE("no EndpointSet %s", key);
    Sluice__V1__EndpointSet *set = sluice__v1__endpoint_set__unpack(NULL, e.len, e.value);
    if (set && set->spec && set->spec->observed_time)
        t = set->spec->observed_time->seconds * 1000 + set->spec->observed_time->nanos / 1000000;
    sluice__v1__endpoint_set__free_unpacked(set, NULL);
    sl_kv_entry_deinit(&e);
    return t;
}

static pid_t start_translator(void)
{
    char bin[1024], url[256];
    snprintf(bin, sizeof bin, "%s/services/translator/sluice-translator", build_dir);
    snprintf(url, sizeof url, "%s", harness_nats_url(srv));
    char *argv[] = {bin, "--nats-url", url, "--log-level", getenv("BENCH_LOG_LEVEL") ? getenv("BENCH_LOG_LEVEL") : "warn",
                    NULL};
    return spawn(argv);
}

static int run_etcd(int changes)
{
    char data[300], ep[64];
    sl_etcd *ec = NULL;
    int peer = harness_free_port();
    etcd_port = harness_free_port();
    snprintf(data, sizeof data, "%s/etcd", dir);
    snprintf(ep, sizeof ep, "127.0.0.1:%d", etcd_port);
    if ((etcd = harness_start_etcd(etcd_port, peer, data, log_path)) < 0 || sl_etcd_connect(&ec, ep, 10000) != SL_OK)
        DIE("etcd did not start (see %s)", log_path);
    int64_t t0 = harness_now_ms();
    for (int i = 0; i < n_up; i++)
        for (int j = 1; j <= 3; j++) {
            char addr[32];
            snprintf(addr, sizeof addr, "10.%d.%d.%d", i / 250, i % 250, j);
            register_ep(ec, i, addr);
        }
    fprintf(stderr, "bench_discovery: %d endpoints registered in etcd in %lld ms\n", n_up * 3,
            (long long)(harness_now_ms() - t0));
    put_all(config_kv, n_up, make_upstream);
    put_all(config_kv, (n_up + 9) / 10, make_vs);

    start_discovery();
    int64_t initial_ms = wait_sets(n_up, NULL, NULL, 300000);
    fprintf(stderr, "bench_discovery: %d sets in %lld ms\n", n_up, (long long)initial_ms);

    /* The translator, sluice-xds and an ADS client holding every ClusterLoadAssignment. */
    int xds_port = 0;
    const char *const xargs[] = {"--max-names-per-request", "100000", "--log-level",
                                 getenv("BENCH_LOG_LEVEL") ? getenv("BENCH_LOG_LEVEL") : "warn", NULL};
    if ((translator = start_translator()) < 0 || (xds = harness_start_xds(srv, xargs, &xds_port, NULL)) < 0)
        DIE("translator or sluice-xds did not start (see %s)", log_path);
    xc *c = xc_open(xds_port, ADS);
    char **names = calloc((size_t)n_up, sizeof *names);
    for (int i = 0; i < n_up; i++) {
        names[i] = malloc(32);
        snprintf(names[i], 32, "up-%d_default", i);
    }
    if (!c || xc_request(c, "bench-discovery", PROXY, EDS_URL, NULL, (size_t)n_up, names) != 0)
        DIE("ADS stream");
    char first[48];
    snprintf(first, sizeof first, "up-%d_default", n_up - 1);
    recv_until(c, first, n_up, names, 300000);
    fprintf(stderr, "bench_discovery: the ADS client holds the ClusterLoadAssignments\n");

    int64_t *written = calloc((size_t)changes, sizeof *written), *served = calloc((size_t)changes, sizeof *served);
    for (int r = 0; r < changes; r++) {
        int k = (int)(((int64_t)r * 7919) % n_up);
        char addr[32], key[48];
        snprintf(addr, sizeof addr, "10.%d.%d.%d", k / 250, k % 250, 100 + r % 150);
        snprintf(key, sizeof key, "default.up-%d", k);
        int64_t t = real_ms();
        register_ep(ec, k, addr);
        served[r] = recv_until(c, addr, n_up, names, 60000) - t;
        written[r] = observed_ms(key) - t;
    }
    qsort(written, (size_t)changes, sizeof *written, cmp_i64);
    qsort(served, (size_t)changes, sizeof *served, cmp_i64);
    double cpu_s, rss_mb;
    int64_t restart_ms;
    double restart_writes = usage_then_restart(&cpu_s, &rss_mb, &restart_ms);

    printf("RESULT source=etcd upstreams=%d initial_sync_ms=%lld change_written_p50_ms=%lld "
           "change_written_p99_ms=%lld change_served_p50_ms=%lld change_served_p99_ms=%lld "
           "change_served_max_ms=%lld changes=%d cpu_s=%.2f rss_mb=%.1f restart_writes=%.0f restart_sync_ms=%lld\n",
           n_up, (long long)initial_ms, (long long)pct_of(written, changes, 50),
           (long long)pct_of(written, changes, 99), (long long)pct_of(served, changes, 50),
           (long long)pct_of(served, changes, 99), (long long)pct_of(served, changes, 100), changes, cpu_s, rss_mb,
           restart_writes, (long long)restart_ms);
    xc_close(c);
    for (int i = 0; i < n_up; i++)
        free(names[i]);
    free(names);
    free(written);
    free(served);
    sl_etcd_close(ec);
    harness_stop_pid(&xds, SIGTERM);
    harness_stop_pid(&translator, SIGTERM);
    harness_stop_pid(&etcd, SIGTERM);
    return restart_writes == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc < 3 || (strcmp(argv[2], "dns") != 0 && strcmp(argv[2], "etcd") != 0))
        DIE("usage: bench_discovery BUILD dns|etcd [upstreams [changes [ttl_s]]]");
    build_dir = argv[1];
    use_etcd = !strcmp(argv[2], "etcd");
    n_up = argc > 3 ? atoi(argv[3]) : 10000;
    int changes = argc > 4 ? atoi(argv[4]) : use_etcd ? 200 : 10;
    ttl_s = argc > 5 ? atoi(argv[5]) : 2;
    if (n_up < 1 || changes < 1)
        DIE("upstreams and changes must be at least 1");
    /* max_payload as Sluice ships it (the translator's commits of 10,000 clusters) */
    if (harness_bench_setup(dir, sizeof dir, "ed") != 0)
        exit(1);
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

    int rc = use_etcd ? run_etcd(changes) : run_dns(changes);
    harness_stop_pid(&discovery, SIGTERM);
    sl_kv_watch_free(watch);
    sl_kv_free(endpoints_kv);
    sl_kv_free(config_kv);
    sl_nats_close(nc, 1000);
    harness_nats_free(srv);
    harness_remove_test_dir(dir);
    return rc;
}
