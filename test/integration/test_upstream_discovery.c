/* test_upstream_discovery.c - sluice-upstream-discovery against real servers: nats-server with
 * authentication on (the service connects with its own role), a real etcd-server as the registry and
 * dnsmasq answering DNS-SD (PTR and SRV records) on a loopback port.
 *
 * Services registered in etcd under the root, and DNS-SD instances (by service type enumeration and by a
 * configured type), become Upstreams in the Settings' discoveryNamespace, labelled and annotated; a
 * person's Upstream of a discovered name is untouched; a DNS-SD type that does not answer keeps its
 * instances' Upstreams while the answered part is followed; a discovered Upstream whose spec a person changed,
 * or whose annotation a person removed, is theirs (kept when its service goes); a service gone loses its
 * Upstream once the grace period has passed (etcd deregistration, an instance dropped from DNS-SD); a
 * restart with nothing changed writes nothing; kill -9, changes while down, a restart converges; a second
 * replica waits for the lease and takes over when the holder is killed.
 * Settings.discovery.udsOptions: enabled false writes nothing, watchLabels select etcd services; with
 * etcd down at a restart nothing is removed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"
#include "sluice/codec.h"
#include "sluice/etcd.h"
#include "sluice/kinds.h"
#include "sluice/kv.h"
#include "sluice/nats.h"
#include "sluice/v1/settings.pb-c.h"
#include "sluice/v1/upstream.pb-c.h"

#define NS "disc"

static harness_nats *srv;
static sl_nats *nc;
static sl_kv *config_kv;
static pid_t dnsmasq = -1, uds = -1, etcd = -1;
static int dns_port, metrics_port, etcd_port, etcd_peer_port;
static char dir[256], hosts_path[300], log_path[300], etcd_data[300], etcd_endpoint[64];
static sl_etcd *ec;

/* ---- processes ----------------------------------------------------------- */

/* DNS-SD: example.test lists the type _http._tcp (one instance, web, and
 * api when with_api); _grpc._tcp (a type given by flag) has rpc, or with
 * silent_port its queries go to a server that never answers. */
static void start_dnsmasq(bool with_api, int silent_port)
{
    char silent[128];
    snprintf(silent, sizeof silent, "--server=/_grpc._tcp.example.test/127.0.0.1#%d", silent_port);
    const char *const args[] = {
        "--local-ttl=1",
        "--local=/example.test/",
        "--ptr-record=_services._dns-sd._udp.example.test,_http._tcp.example.test",
        "--ptr-record=_http._tcp.example.test,web._http._tcp.example.test",
        "--srv-host=web._http._tcp.example.test,localhost,8080",
        "--srv-host=rpc._grpc._tcp.example.test,localhost,9090",
        silent_port ? silent : "--ptr-record=_grpc._tcp.example.test,rpc._grpc._tcp.example.test",
        with_api ? "--ptr-record=_http._tcp.example.test,api._http._tcp.example.test" : NULL,
        NULL};
    FILE *f = fopen(hosts_path, "w");
    assert_non_null(f);
    fclose(f);
    dnsmasq = harness_start_dnsmasq(dns_port, hosts_path, args, log_path);
    if (dnsmasq < 0)
        fail_msg("dnsmasq did not start (see %s)", log_path);
}

static void start_etcd(void)
{
    etcd = harness_start_etcd(etcd_port, etcd_peer_port, etcd_data, log_path);
    if (etcd < 0)
        fail_msg("etcd did not start (see %s)", log_path);
    int64_t end = harness_now_ms() + 15000;
    while (sl_etcd_connect(&ec, etcd_endpoint, 500) != SL_OK && harness_now_ms() < end)
        ;
    assert_non_null(ec);
}

/* Starts a replica serving metrics on mport; returns once it is ready (the
 * config bucket loaded, or waiting for the lease). */
static pid_t start_replica(int mport)
{
    char bin[1024], url[256], dns[64], maddr[64];
    snprintf(bin, sizeof bin, "%s/services/upstream-discovery/sluice-upstream-discovery",
             getenv("SLUICE_BINARY_DIR") ? getenv("SLUICE_BINARY_DIR") : "build");
    snprintf(url, sizeof url, "%s", harness_nats_url(srv));
    snprintf(dns, sizeof dns, "127.0.0.1:%d", dns_port);
    snprintf(maddr, sizeof maddr, "127.0.0.1:%d", mport);
    const char *argv[] = {bin, "--nats-url", url, "--metrics-addr", maddr, "--etcd-endpoints", etcd_endpoint,
                          "--etcd-roots", "services/", "--etcd-timeout", "1s", "--dns-server", dns,
                          "--dns-sd-domains", "example.test", "--dns-sd-types", "_grpc._tcp", "--dns-sd-refresh",
                          "300ms", "--dns-timeout", "500ms", "--retry", "300ms", "--removal-grace", "2s",
                          "--lease-ttl", "2s", "--log-level", "debug", NULL};
    pid_t pid = harness_spawn(argv, log_path);
    char buf[4096];
    int64_t end = harness_now_ms() + 15000;
    while (harness_now_ms() < end && harness_http(mport, "GET", "/readyz", buf, sizeof buf) != 200)
        usleep(50 * 1000);
    if (harness_http(mport, "GET", "/readyz", buf, sizeof buf) != 200) {
        harness_show_log(log_path);
        fail_msg("sluice-upstream-discovery is not ready");
    }
    return pid;
}

static void start_uds(void)
{
    uds = start_replica(metrics_port);
}

/* A UDP socket on a loopback port that never answers. */
static int silent_udp(int *port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t l = sizeof a;
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &l), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

/* ---- resources ------------------------------------------------------------- */

/* Registers an endpoint the way go.etcd.io/etcd/client/v3/naming/endpoints
 * does (key "<service>/<addr>", its JSON value), with metadata (JSON) or null. */
static void register_ep_md(const char *service, const char *addr, const char *metadata)
{
    char key[256], value[512];
    snprintf(key, sizeof key, "%s/%s", service, addr);
    snprintf(value, sizeof value, "{\"Addr\":\"%s\",\"Metadata\":%s}", addr, metadata ? metadata : "null");
    assert_int_equal(sl_etcd_put(ec, key, value, strlen(value), NULL, 5000), SL_OK);
}

static void register_ep(const char *service, const char *addr)
{
    register_ep_md(service, addr, NULL);
}

static void deregister_ep(const char *service, const char *addr)
{
    char key[256];
    snprintf(key, sizeof key, "%s/%s", service, addr);
    assert_int_equal(sl_etcd_delete(ec, key, NULL, 5000), SL_OK);
}

/* Upstream.disc.<name> as stored (NULL: none); its revision in *rev. */
static Sluice__V1__Upstream *get_upstream(const char *name, uint64_t *rev)
{
    char key[256];
    sl_kv_entry e = {0};
    snprintf(key, sizeof key, "Upstream." NS ".%s", name);
    *rev = 0;
    if (sl_kv_get(&e, config_kv, key) != SL_OK)
        return NULL;
    Sluice__V1__Upstream *u = sluice__v1__upstream__unpack(NULL, e.len, e.value);
    *rev = e.revision;
    sl_kv_entry_deinit(&e);
    assert_non_null(u);
    return u;
}

/* Waits up to 15 s for Upstream.disc.<name> to exist (present) or not; its revision. */
static uint64_t wait_upstream(const char *name, bool present)
{
    uint64_t rev = 0;
    int64_t end = harness_now_ms() + 15000;
    for (;;) {
        Sluice__V1__Upstream *u = get_upstream(name, &rev);
        sluice__v1__upstream__free_unpacked(u, NULL);
        if ((u != NULL) == present)
            return rev;
        if (harness_now_ms() > end) {
            harness_show_log(log_path);
            fail_msg("Upstream " NS "/%s: want %s", name, present ? "present" : "gone");
        }
        usleep(50 * 1000);
    }
}

/* A discovered Upstream as discovery writes it. */
static void check_discovered(const char *name, const char *label, const char *service, bool etcd_type)
{
    uint64_t rev;
    Sluice__V1__Upstream *u = get_upstream(name, &rev);
    assert_non_null(u);
    assert_string_equal(sl_kind_label(u->metadata, "discovered_by"), label);
    assert_string_equal(sl_kind_annotation(u->metadata, "discovered-by"), "upstream-discovery");
    assert_string_equal(sl_kind_annotation(u->metadata, "discovery.sluice.io/service"), service);
    if (etcd_type) {
        assert_int_equal(u->spec->upstream_type_case, SLUICE__V1__UPSTREAM_SPEC__UPSTREAM_TYPE_ETCD);
        assert_string_equal(u->spec->etcd->prefix, service);
    } else {
        assert_int_equal(u->spec->upstream_type_case, SLUICE__V1__UPSTREAM_SPEC__UPSTREAM_TYPE_DNS);
        assert_string_equal(u->spec->dns->name, service);
        assert_true(u->spec->dns->srv);
    }
    sluice__v1__upstream__free_unpacked(u, NULL);
}

static void put_yaml(const char *kind, const ProtobufCMessageDescriptor *desc, const char *ns, const char *name,
                     const char *yaml)
{
    char key[256];
    sl_codec_options o = {.root_name = kind};
    snprintf(key, sizeof key, "%s.%s.%s", kind, ns, name);
    assert_int_equal(harness_kv_put_yaml(config_kv, key, desc, yaml, &o), SL_OK);
}

static double metric(const char *name)
{
    return harness_metric(metrics_port, name);
}

/* Waits up to 15 s for a metric to reach want. */
static void wait_metric(const char *name, double want)
{
    int64_t end = harness_now_ms() + 15000;
    while (harness_now_ms() < end && metric(name) != want)
        usleep(50 * 1000);
    if (metric(name) != want) {
        harness_show_log(log_path);
        fail_msg("%s: %g, want %g", name, metric(name), want);
    }
}

/* Waits up to 15 s for discovery's passes to go above passes. */
static void wait_passes_above(double passes)
{
    int64_t end = harness_now_ms() + 15000;
    while (harness_now_ms() < end && metric("sluice_upstream_discovery_passes_total") <= passes)
        usleep(50 * 1000);
    assert_true(metric("sluice_upstream_discovery_passes_total") > passes);
}

/* Waits for a pass of discovery that ends after this call. */
static void wait_pass(void)
{
    wait_passes_above(metric("sluice_upstream_discovery_passes_total"));
}

/* The config bucket's last sequence: moves with every write. */
static uint64_t config_seq(void)
{
    jsStreamInfo *si = NULL;
    assert_int_equal(js_GetStreamInfo(&si, sl_nats_js(nc), "KV_sluice_config", NULL, NULL), NATS_OK);
    uint64_t seq = si->State.LastSeq;
    jsStreamInfo_Destroy(si);
    return seq;
}

/* ---- the scenario ---------------------------------------------------------- */

static void test_upstream_discovery(void **state)
{
    (void)state;
    uint64_t rev;

    start_etcd();
    start_dnsmasq(true, 0);
    put_yaml("Settings", &sluice__v1__settings__descriptor, "gloo-system", "default",
             "metadata: {name: default, namespace: gloo-system}\nspec:\n  discoveryNamespace: " NS "\n");
    /* A person's Upstream with the name billing's would get. */
    put_yaml("Upstream", &sluice__v1__upstream__descriptor, NS, "etcd-services-billing",
             "metadata: {name: etcd-services-billing, namespace: " NS "}\n"
             "spec:\n  static:\n    hosts: [{addr: 127.0.0.1, port: 8080}]\n");
    uint64_t person_rev = wait_upstream("etcd-services-billing", true);
    register_ep("services/echo", "10.0.0.1:80");
    register_ep("services/echo", "10.0.0.2:80");
    register_ep("services/billing", "10.0.0.3:80");
    register_ep("services/cart", "10.0.0.4:80");
    register_ep("services/gone", "10.0.0.5:80");
    register_ep("services/deep/v2", "10.0.0.6:80");
    register_ep("other/outside", "10.0.0.7:80"); /* not under the root */
    assert_int_equal(sl_etcd_put(ec, "services/junk/x", "not json", 8, NULL, 5000), SL_OK);

    start_uds();
    wait_upstream("etcd-services-echo", true);
    check_discovered("etcd-services-echo", "etcdplugin", "services/echo", true);
    check_discovered("etcd-services-cart", "etcdplugin", "services/cart", true);
    check_discovered("etcd-services-gone", "etcdplugin", "services/gone", true);
    wait_upstream("etcd-services-deep-v2", true);
    check_discovered("etcd-services-deep-v2", "etcdplugin", "services/deep/v2", true);
    wait_upstream("dnssd-web-http-tcp-example-test", true);
    check_discovered("dnssd-web-http-tcp-example-test", "dnssdplugin", "web._http._tcp.example.test", false);
    wait_upstream("dnssd-api-http-tcp-example-test", true);
    wait_upstream("dnssd-rpc-grpc-tcp-example-test", true); /* by --dns-sd-types */
    check_discovered("dnssd-rpc-grpc-tcp-example-test", "dnssdplugin", "rpc._grpc._tcp.example.test", false);
    /* Every service is handled: the person's billing left alone, nothing else. */
    wait_metric("sluice_upstream_discovery_services", 8);
    wait_metric("sluice_upstream_discovery_left_alone", 1);
    wait_metric("sluice_upstream_discovery_upstreams", 7);
    assert_int_equal(metric("sluice_upstream_discovery_creates_total"), 7);
    Sluice__V1__Upstream *u = get_upstream("etcd-services-billing", &rev);
    assert_int_equal(rev, person_rev);
    assert_int_equal(u->spec->upstream_type_case, SLUICE__V1__UPSTREAM_SPEC__UPSTREAM_TYPE_STATIC);
    assert_null(sl_kind_annotation(u->metadata, "discovered-by"));
    sluice__v1__upstream__free_unpacked(u, NULL);
    get_upstream("etcd-outside", &rev);
    assert_int_equal(rev, 0);
    get_upstream("etcd-services-junk", &rev);
    assert_int_equal(rev, 0);

    /* Takeover: echo's spec edited (useTls), cart's annotation removed. */
    put_yaml("Upstream", &sluice__v1__upstream__descriptor, NS, "etcd-services-echo",
             "metadata:\n  name: etcd-services-echo\n  namespace: " NS "\n  labels: {discovered_by: etcdplugin}\n"
             "  annotations: {discovered-by: upstream-discovery, discovery.sluice.io/service: services/echo,\n"
             "                discovery.sluice.io/service-source: etcd}\n"
             "spec:\n  etcd: {prefix: services/echo, useTls: true}\n");
    put_yaml("Upstream", &sluice__v1__upstream__descriptor, NS, "etcd-services-cart",
             "metadata: {name: etcd-services-cart, namespace: " NS ", labels: {discovered_by: etcdplugin}}\n"
             "spec:\n  etcd: {prefix: services/cart}\n");
    wait_metric("sluice_upstream_discovery_left_alone", 3);
    uint64_t echo_rev, cart_rev;
    sluice__v1__upstream__free_unpacked(get_upstream("etcd-services-echo", &echo_rev), NULL);
    sluice__v1__upstream__free_unpacked(get_upstream("etcd-services-cart", &cart_rev), NULL);

    /* Services gone: echo, cart (taken over) and gone (discovery's). Only
     * gone's Upstream goes, once the grace has passed. */
    deregister_ep("services/echo", "10.0.0.1:80");
    deregister_ep("services/echo", "10.0.0.2:80");
    deregister_ep("services/cart", "10.0.0.4:80");
    deregister_ep("services/gone", "10.0.0.5:80");
    wait_metric("sluice_upstream_discovery_pending_removal", 1);
    wait_upstream("etcd-services-gone", false);
    assert_int_equal(metric("sluice_upstream_discovery_deletes_total"), 1);
    sluice__v1__upstream__free_unpacked(get_upstream("etcd-services-echo", &rev), NULL);
    assert_int_equal(rev, echo_rev);
    sluice__v1__upstream__free_unpacked(get_upstream("etcd-services-cart", &rev), NULL);
    assert_int_equal(rev, cart_rev);

    /* A service that comes back within the grace keeps its Upstream. */
    deregister_ep("services/deep/v2", "10.0.0.6:80");
    wait_metric("sluice_upstream_discovery_pending_removal", 1);
    uint64_t deep_rev = wait_upstream("etcd-services-deep-v2", true);
    register_ep("services/deep/v2", "10.0.0.6:80");
    wait_metric("sluice_upstream_discovery_pending_removal", 0);
    sluice__v1__upstream__free_unpacked(get_upstream("etcd-services-deep-v2", &rev), NULL);
    assert_int_equal(rev, deep_rev);

    /* DNS-SD: api leaves the type _http._tcp while the queries of _grpc._tcp
     * time out: api's Upstream goes after the grace, rpc's stays (what did
     * not answer is kept). */
    uint64_t rpc_rev = wait_upstream("dnssd-rpc-grpc-tcp-example-test", true);
    int silent_port;
    int silent = silent_udp(&silent_port);
    harness_stop_pid(&dnsmasq, SIGTERM);
    start_dnsmasq(false, silent_port);
    wait_upstream("dnssd-api-http-tcp-example-test", false);
    wait_pass(); /* the pass that removed api is over: rpc would have gone with it */
    assert_true(metric("sluice_upstream_discovery_source_failures_total") >= 1);
    sluice__v1__upstream__free_unpacked(get_upstream("dnssd-rpc-grpc-tcp-example-test", &rev), NULL);
    assert_int_equal(rev, rpc_rev);
    wait_upstream("dnssd-web-http-tcp-example-test", true);
    harness_stop_pid(&dnsmasq, SIGTERM);
    close(silent);
    start_dnsmasq(false, 0);

    /* A restart with nothing changed writes nothing. */
    wait_metric("sluice_upstream_discovery_pending_removal", 0);
    uint64_t seq = config_seq();
    assert_int_equal(harness_stop_pid(&uds, SIGTERM), 0);
    start_uds();
    wait_metric("sluice_upstream_discovery_services", 4);   /* billing, deep/v2, web, rpc */
    wait_metric("sluice_upstream_discovery_left_alone", 1); /* billing; echo and cart are gone from etcd */
    wait_metric("sluice_upstream_discovery_upstreams", 3);
    assert_int_equal(metric("sluice_upstream_discovery_creates_total"), 0);
    assert_int_equal(metric("sluice_upstream_discovery_deletes_total"), 0);
    assert_int_equal(metric("sluice_upstream_discovery_pending_removal"), 0);
    assert_int_equal(config_seq(), seq);

    /* kill -9; a service registered and one gone while it is down; a restart converges. */
    assert_int_equal(WTERMSIG(harness_stop_pid(&uds, SIGKILL)), SIGKILL);
    register_ep("services/late", "10.0.0.8:80");
    deregister_ep("services/deep/v2", "10.0.0.6:80");
    start_uds();
    wait_upstream("etcd-services-late", true);
    check_discovered("etcd-services-late", "etcdplugin", "services/late", true);
    wait_upstream("etcd-services-deep-v2", false);
    wait_metric("sluice_upstream_discovery_upstreams", 3);

    /* A collision: "services/late-x" and "services/late/x" share a plain name; the later gets a suffix. */
    register_ep("services/late/x", "10.0.0.9:80");
    wait_upstream("etcd-services-late-x", true);
    register_ep("services/late-x", "10.0.0.10:80");
    wait_metric("sluice_upstream_discovery_upstreams", 5);
    check_discovered("etcd-services-late-x", "etcdplugin", "services/late/x", true);

    /* A second replica waits for the lease; kill -9 of the holder: it takes over. */
    int port2 = harness_free_port_both();
    pid_t second = start_replica(port2);
    assert_int_equal(harness_metric(port2, "sluice_upstream_discovery_leader"), 0);
    assert_int_equal(WTERMSIG(harness_stop_pid(&uds, SIGKILL)), SIGKILL);
    register_ep("services/after", "10.0.0.11:80");
    wait_upstream("etcd-services-after", true);
    assert_int_equal(harness_metric(port2, "sluice_upstream_discovery_leader"), 1);
    assert_int_equal(harness_stop_pid(&second, SIGTERM), 0);
}

/* Settings.discovery.udsOptions: disabled writes nothing; watchLabels select
 * etcd services by their endpoints' labels (and no DNS-SD instance). */
static void test_settings(void **state)
{
    (void)state;
    const char *settings = "metadata: {name: default, namespace: gloo-system}\n"
                           "spec:\n  discoveryNamespace: " NS "\n"
                           "  discovery:\n    udsOptions:\n      enabled: %s\n      watchLabels: {team: a}\n";
    char yaml[512];

    start_etcd();
    start_dnsmasq(true, 0);
    snprintf(yaml, sizeof yaml, settings, "false");
    put_yaml("Settings", &sluice__v1__settings__descriptor, "gloo-system", "default", yaml);
    register_ep_md("services/a", "10.0.1.1:80", "{\"labels\": {\"team\": \"a\", \"tier\": \"web\"}}");
    register_ep_md("services/b", "10.0.1.2:80", "{\"labels\": {\"team\": \"b\"}}");
    register_ep("services/c", "10.0.1.3:80");
    uint64_t seq = config_seq();
    start_uds();
    wait_metric("sluice_upstream_discovery_services", 1); /* services/a only */
    assert_int_equal(metric("sluice_upstream_discovery_creates_total"), 0);
    assert_int_equal(config_seq(), seq);

    snprintf(yaml, sizeof yaml, settings, "true");
    put_yaml("Settings", &sluice__v1__settings__descriptor, "gloo-system", "default", yaml);
    wait_upstream("etcd-services-a", true);
    check_discovered("etcd-services-a", "etcdplugin", "services/a", true);
    wait_metric("sluice_upstream_discovery_upstreams", 1);
    assert_int_equal(metric("sluice_upstream_discovery_creates_total"), 1);
    uint64_t rev;
    get_upstream("etcd-services-b", &rev);
    assert_int_equal(rev, 0);
    get_upstream("dnssd-web-http-tcp-example-test", &rev);
    assert_int_equal(rev, 0);

    /* etcd stopped, then a restart that cannot read the registry: a source
     * that cannot answer removes nothing, and no grace starts. */
    harness_stop_pid(&etcd, SIGTERM);
    assert_int_equal(harness_stop_pid(&uds, SIGTERM), 0);
    start_uds();
    wait_metric("sluice_upstream_discovery_source_failures_total", 1);
    double passes = metric("sluice_upstream_discovery_passes_total");
    put_yaml("Settings", &sluice__v1__settings__descriptor, "gloo-system", "default", yaml); /* a pass */
    wait_passes_above(passes);
    assert_int_equal(metric("sluice_upstream_discovery_pending_removal"), 0);
    assert_int_equal(metric("sluice_upstream_discovery_upstreams"), 1);
    assert_int_equal(metric("sluice_upstream_discovery_deletes_total"), 0);
    wait_upstream("etcd-services-a", true);
    assert_int_equal(harness_stop_pid(&uds, SIGTERM), 0);
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/sluice-uds-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    chmod(dir, 0755); /* dnsmasq may read the hosts file as another user */
    snprintf(hosts_path, sizeof hosts_path, "%s/hosts", dir);
    snprintf(log_path, sizeof log_path, "%s/processes.log", dir);
    snprintf(etcd_data, sizeof etcd_data, "%s/etcd", dir);
    dns_port = harness_free_port_both();
    metrics_port = harness_free_port_both();
    etcd_port = harness_free_port();
    etcd_peer_port = harness_free_port();
    snprintf(etcd_endpoint, sizeof etcd_endpoint, "127.0.0.1:%d", etcd_port);
    if (harness_nats_start(&srv) != 0 || harness_connect(&nc, srv) != SL_OK)
        return -1;
    sl_kv_config c;
    sl_kv_config_init(&c, "sluice_config");
    return sl_kv_open(&config_kv, nc, &c) == SL_OK ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    sl_etcd_close(ec);
    ec = NULL;
    harness_stop_pid(&uds, SIGKILL);
    harness_stop_pid(&dnsmasq, SIGTERM);
    harness_stop_pid(&etcd, SIGKILL);
    sl_kv_free(config_kv);
    sl_nats_close(nc, 1000);
    harness_nats_free(srv);
    return harness_remove_test_dir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_upstream_discovery, setup, teardown),
        cmocka_unit_test_setup_teardown(test_settings, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
