/* sluice-endpoint-discovery end to end: the real binary, a real nats-server (authentication on), a real
 * dnsmasq on a loopback port as the DNS server and a real etcd-server as the registry.
 *
 * One scenario, in order (each step depends on the state before it): dns
 * Upstreams (A/AAAA and SRV) get their EndpointSets, a static one none; a
 * record changes (hosts file re-read on SIGHUP) and the set follows; the DNS
 * server stops: the set is kept and the Upstream gets a Warning naming the
 * source (report and reporter's status), cleared when it is back; a restart
 * of discovery with nothing changed writes nothing (KV revisions); kill -9
 * in the middle of a change, then a restart, converges; a deleted Upstream
 * loses its set; SIGTERM stops it cleanly.
 *
 * The etcd scenario, likewise: endpoints registered the way
 * go.etcd.io/etcd/client/v3/naming/endpoints writes them get their sets
 * (weights, locality, labels; a neighbour prefix and a value that is not an
 * endpoint left out, the latter with a Warning naming its key); the service
 * scales out and an endpoint deregisters; a restart with nothing changed
 * writes nothing; kill -9, a change, a restart converges; etcd stopped keeps
 * the sets with a Warning, withdrawn when it is back, and the watch resumes;
 * an Upstream turned static loses its set. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

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

#include <cmocka.h>

#include "harness.h"
#include "sluice/etcd.h"
#include "sluice/kv.h"
#include "sluice/nats.h"
#include "sluice/v1/core.pb-c.h"
#include "sluice/v1/endpoints.pb-c.h"
#include "sluice/v1/events.pb-c.h"
#include "sluice/v1/upstream.pb-c.h"

static harness_nats *srv;
static sl_nats *nc;
static sl_kv *config_kv, *endpoints_kv, *status_kv;
static natsSubscription *reports;
static pid_t dnsmasq = -1, discovery = -1, reporter = -1, etcd = -1;
static int dns_port, metrics_port, etcd_port, etcd_peer_port;
static char dir[256], hosts_path[300], log_path[300], etcd_data[300], etcd_endpoint[64];
static sl_etcd *ec;

/* ---- processes ----------------------------------------------------------- */

static pid_t spawn(char *const argv[]) { return harness_spawn((const char *const *)argv, log_path); }

static void write_hosts(const char *text)
{
    FILE *f = fopen(hosts_path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* dnsmasq answers from the hosts file and the records below, TTL 1 s. */
static void start_dnsmasq(void)
{
    const char *const args[] = {"--local-ttl=1", "--local=/test/", "--host-record=a.api.test,127.0.1.1",
                                "--host-record=b.api.test,127.0.1.2,::1",
                                "--srv-host=_http._tcp.api.test,a.api.test,8080,10,60",
                                "--srv-host=_http._tcp.api.test,b.api.test,9090,20,0", NULL};
    dnsmasq = harness_start_dnsmasq(dns_port, hosts_path, args, log_path);
    if (dnsmasq < 0)
        fail_msg("dnsmasq did not start (see %s)", log_path);
}

static void start_discovery(void)
{
    char bin[1024], url[256], dns[64], maddr[64];
    snprintf(bin, sizeof bin, "%s/services/endpoint-discovery/sluice-endpoint-discovery",
             getenv("SLUICE_BINARY_DIR") ? getenv("SLUICE_BINARY_DIR") : "build");
    snprintf(url, sizeof url, "%s", harness_nats_url(srv));
    snprintf(dns, sizeof dns, "127.0.0.1:%d", dns_port);
    snprintf(maddr, sizeof maddr, "127.0.0.1:%d", metrics_port);
    char *argv[] = {bin, "--nats-url", url, "--dns-server", dns, "--metrics-addr", maddr, "--min-refresh", "300ms",
                    "--failure-refresh", "300ms", "--dns-timeout", "500ms", "--dns-tries", "2", "--lease-ttl", "2s",
                    "--log-level", "debug", "--etcd-endpoints", etcd_endpoint, "--etcd-timeout", "1s", NULL};
    discovery = spawn(argv);
    int64_t end = harness_now_ms() + 15000;
    char buf[4096];
    /* up once it has resolved something, or read the registry */
    while (harness_now_ms() < end &&
           harness_metric(metrics_port, etcd_endpoint[0] ? "sluice_endpoint_discovery_etcd_revision"
                                                         : "sluice_endpoint_discovery_resolutions_total") <= 0)
        usleep(50 * 1000);
    assert_int_equal(harness_http(metrics_port, "GET", "/readyz", buf, sizeof buf), 200);
    assert_int_equal(harness_http(metrics_port, "GET", "/healthz", buf, sizeof buf), 200);
}

static void start_reporter(void)
{
    char bin[1024], url[256];
    snprintf(bin, sizeof bin, "%s/services/reporter/sluice-reporter",
             getenv("SLUICE_BINARY_DIR") ? getenv("SLUICE_BINARY_DIR") : "build");
    snprintf(url, sizeof url, "%s", harness_nats_url(srv));
    char *argv[] = {bin, "--nats-url", url, NULL};
    reporter = spawn(argv);
    /* up once its report stream is there (reports before it are lost) */
    jsStreamInfo *si = NULL;
    int64_t end = harness_now_ms() + 10000;
    while (js_GetStreamInfo(&si, sl_nats_js(nc), "SLUICE_REPORTS", NULL, NULL) != NATS_OK &&
           harness_now_ms() < end)
        usleep(50 * 1000);
    assert_non_null(si);
    jsStreamInfo_Destroy(si);
}

/* ---- resources ------------------------------------------------------------- */

/* Upstream.default.<name> with spec sp. */
static void put_upstream_spec(const char *name, Sluice__V1__UpstreamSpec *sp)
{
    Sluice__V1__Upstream u = SLUICE__V1__UPSTREAM__INIT;
    Sluice__V1__Metadata md = SLUICE__V1__METADATA__INIT;
    char key[256];
    md.name = (char *)name;
    md.namespace_ = "default";
    u.metadata = &md;
    u.spec = sp;
    snprintf(key, sizeof key, "Upstream.default.%s", name);
    assert_int_equal(harness_kv_put_pb(config_kv, key, &u.base), SL_OK);
}

static void put_etcd_upstream(const char *name, const char *prefix)
{
    Sluice__V1__UpstreamSpec sp = SLUICE__V1__UPSTREAM_SPEC__INIT;
    Sluice__V1__EtcdUpstreamSpec e = SLUICE__V1__ETCD_UPSTREAM_SPEC__INIT;
    e.prefix = (char *)prefix;
    sp.upstream_type_case = SLUICE__V1__UPSTREAM_SPEC__UPSTREAM_TYPE_ETCD;
    sp.etcd = &e;
    put_upstream_spec(name, &sp);
}

static void put_upstream(const char *name, const char *dns_name, uint32_t port, bool srv_name, bool is_static)
{
    Sluice__V1__UpstreamSpec sp = SLUICE__V1__UPSTREAM_SPEC__INIT;
    Sluice__V1__DnsUpstreamSpec d = SLUICE__V1__DNS_UPSTREAM_SPEC__INIT;
    Sluice__V1__StaticUpstreamSpec st = SLUICE__V1__STATIC_UPSTREAM_SPEC__INIT;
    Sluice__V1__Host h = SLUICE__V1__HOST__INIT, *hp = &h;
    if (is_static) {
        h.addr = "127.0.0.9";
        h.port = port;
        st.hosts = &hp;
        st.n_hosts = 1;
        sp.upstream_type_case = SLUICE__V1__UPSTREAM_SPEC__UPSTREAM_TYPE_STATIC;
        sp.static_ = &st;
    } else {
        d.name = (char *)dns_name;
        d.port = port;
        d.srv = srv_name;
        sp.upstream_type_case = SLUICE__V1__UPSTREAM_SPEC__UPSTREAM_TYPE_DNS;
        sp.dns = &d;
    }
    put_upstream_spec(name, &sp);
}

/* The set stored under key as "addr:port[/w<weight>/p<priority>][/<zone>][/<label>=<value>...] ..." ("-"
 * when none); *rev its revision. */
static void set_text(char *out, size_t n, uint64_t *rev, const char *key)
{
    sl_kv_entry e = {0};
    size_t k = 0;
    *rev = 0;
    if (sl_kv_get(&e, endpoints_kv, key) != SL_OK) {
        snprintf(out, n, "-");
        return;
    }
    *rev = e.revision;
    Sluice__V1__EndpointSet *set = sluice__v1__endpoint_set__unpack(NULL, e.len, e.value);
    assert_non_null(set);
    assert_string_equal(set->spec->source, etcd_endpoint[0] ? "etcd" : "dns");
    assert_string_equal(set->metadata->name, strchr(key, '.') + 1);
    out[0] = 0;
    for (size_t i = 0; i < set->spec->n_endpoints && k < n; i++) {
        const Sluice__V1__Endpoint *ep = set->spec->endpoints[i];
        k += (size_t)snprintf(out + k, n - k, "%s%s:%u", i ? " " : "", ep->address, ep->port);
        if (ep->weight && k < n)
            k += (size_t)snprintf(out + k, n - k, "/w%u/p%u", ep->weight->value, ep->priority);
        if (ep->locality && k < n)
            k += (size_t)snprintf(out + k, n - k, "/%s", ep->locality->zone);
        for (size_t l = 0; l < ep->n_labels && k < n; l++)
            k += (size_t)snprintf(out + k, n - k, "/%s=%s", ep->labels[l]->key, ep->labels[l]->value);
    }
    sluice__v1__endpoint_set__free_unpacked(set, NULL);
    sl_kv_entry_deinit(&e);
}

/* Waits up to ms for the set under key to read want; its revision. */
static uint64_t wait_set(const char *key, const char *want, int64_t ms)
{
    char got[1024];
    uint64_t rev = 0;
    int64_t end = harness_now_ms() + ms;
    do {
        set_text(got, sizeof got, &rev, key);
        if (!strcmp(got, want))
            return rev;
        usleep(50 * 1000);
    } while (harness_now_ms() < end);
    fail_msg("%s: want \"%s\", got \"%s\" (log %s)", key, want, got, log_path);
    return 0;
}

/* The reporter's status of Upstream.default.<name>: its state, reason in reason. */
static int status_state(const char *name, char *reason, size_t n)
{
    char key[256];
    sl_kv_entry e = {0};
    snprintf(key, sizeof key, "Upstream.default.%s", name);
    reason[0] = 0;
    if (sl_kv_get(&e, status_kv, key) != SL_OK)
        return -1;
    Sluice__V1__Status *st = sluice__v1__status__unpack(NULL, e.len, e.value);
    int state = st ? (int)st->state : -1;
    if (st)
        snprintf(reason, n, "%s", st->reason ? st->reason : "");
    sluice__v1__status__free_unpacked(st, NULL);
    sl_kv_entry_deinit(&e);
    return state;
}

/* Restarts discovery (SIGTERM, exit 0) and waits until it found the n sets
 * it follows unchanged: it must have written nothing. */
static void restart_unchanged(int n)
{
    assert_int_equal(harness_stop_pid(&discovery, SIGTERM), 0);
    start_discovery();
    int64_t end = harness_now_ms() + 10000;
    while (harness_now_ms() < end && harness_metric(metrics_port, "sluice_endpoint_discovery_unchanged_total") < n)
        usleep(50 * 1000);
    assert_true(harness_metric(metrics_port, "sluice_endpoint_discovery_unchanged_total") >= n);
    assert_true(harness_metric(metrics_port, "sluice_endpoint_discovery_writes_total") == 0);
}

/* Waits up to 10 s for the reporter's status of Upstream <name> to be a
 * Warning (warning) or not; the reason in reason. */
static void wait_status(const char *name, bool warning, char *reason, size_t n)
{
    int64_t end = harness_now_ms() + 10000;
    while (harness_now_ms() < end &&
           (status_state(name, reason, n) == SLUICE__V1__STATUS__STATE__Warning) != warning)
        usleep(50 * 1000);
    if ((status_state(name, reason, n) == SLUICE__V1__STATUS__STATE__Warning) != warning)
        fail_msg("Upstream %s: want %s, reason \"%s\"", name, warning ? "a Warning" : "no Warning", reason);
}

/* ---- the scenario ------------------------------------------------------------ */

static void test_discovery(void **state)
{
    (void)state;
    char want[512], reason[1024];
    uint64_t rev_web, rev_api, rev_v6;
    const char *api = "127.0.1.1:8080/w60/p0 127.0.1.2:9090/w1/p1 ::1:9090/w1/p1";

    write_hosts("127.0.0.12 web.test\n127.0.0.11 web.test\n::2 v6.test\n");
    start_dnsmasq();
    put_upstream("web", "web.test", 8080, false, false);
    put_upstream("api", "_http._tcp.api.test", 0, true, false);
    put_upstream("v6", "v6.test", 80, false, false);
    put_upstream("fixed", NULL, 8081, false, true);
    put_upstream("ghost", "nothing-here.test", 80, false, false);
    start_discovery();
    start_reporter();

    /* A/AAAA sorted by address; SRV weights, ports and priorities. */
    rev_web = wait_set("default.web", "127.0.0.11:8080 127.0.0.12:8080", 10000);
    rev_api = wait_set("default.api", api, 10000);
    rev_v6 = wait_set("default.v6", "::2:80", 10000);
    /* NXDOMAIN is an answer: an empty set, and a Warning. */
    wait_set("default.ghost", "", 10000);
    /* A static upstream is left alone. */
    wait_set("default.fixed", "-", 10);

    /* A record changes: the set follows (hosts re-read on SIGHUP, TTL 1 s). */
    write_hosts("127.0.0.13 web.test\n127.0.0.11 web.test\n::2 v6.test\n");
    kill(dnsmasq, SIGHUP);
    rev_web = wait_set("default.web", "127.0.0.11:8080 127.0.0.13:8080", 10000);

    /* The DNS server stops: sets kept, a Warning naming the source. */
    assert_int_equal(natsConnection_SubscribeSync(&reports, sl_nats_conn(nc), "sluice.report.endpoint-discovery.>"),
                     NATS_OK);
    harness_stop_pid(&dnsmasq, SIGTERM);
    /* (a report from before the stop may come first: skip to the failure) */
    Sluice__V1__Report *r;
    for (r = harness_next_report(reports, "web", 10000); r && (r->withdrawn || !strstr(r->reason, "failed"));
         r = harness_next_report(reports, "web", 10000))
        sluice__v1__report__free_unpacked(r, NULL);
    assert_non_null(r);
    assert_int_equal(r->state, SLUICE__V1__STATUS__STATE__Warning);
    snprintf(want, sizeof want, "127.0.0.1:%d", dns_port);
    assert_non_null(strstr(r->reason, want));
    assert_non_null(strstr(r->reason, "web.test"));
    assert_string_equal(r->source, "endpoint-discovery");
    sluice__v1__report__free_unpacked(r, NULL);
    usleep(1000 * 1000); /* several failed refreshes */
    assert_int_equal(wait_set("default.web", "127.0.0.11:8080 127.0.0.13:8080", 10), rev_web);
    assert_int_equal(wait_set("default.api", api, 10), rev_api);
    /* The reporter shows it on the Upstream's status. */
    wait_status("web", true, reason, sizeof reason);
    assert_non_null(strstr(reason, want));

    /* Back: the Warning is withdrawn, nothing rewritten. */
    start_dnsmasq();
    for (r = harness_next_report(reports, "web", 10000); r && !r->withdrawn;
         r = harness_next_report(reports, "web", 10000))
        sluice__v1__report__free_unpacked(r, NULL);
    assert_non_null(r);
    sluice__v1__report__free_unpacked(r, NULL);
    wait_status("web", false, reason, sizeof reason);
    assert_int_equal(wait_set("default.web", "127.0.0.11:8080 127.0.0.13:8080", 10), rev_web);

    /* A restart with nothing changed writes nothing. */
    restart_unchanged(4);
    assert_int_equal(wait_set("default.web", "127.0.0.11:8080 127.0.0.13:8080", 10), rev_web);
    assert_int_equal(wait_set("default.api", api, 10), rev_api);
    assert_int_equal(wait_set("default.v6", "::2:80", 10), rev_v6);

    /* kill -9 in the middle of a change, then a restart: it converges. */
    write_hosts("127.0.0.14 web.test\n::2 v6.test\n");
    kill(dnsmasq, SIGHUP);
    usleep(150 * 1000);
    assert_int_equal(WTERMSIG(harness_stop_pid(&discovery, SIGKILL)), SIGKILL);
    start_discovery();
    wait_set("default.web", "127.0.0.14:8080", 10000);

    /* A deleted Upstream loses its set; one turned static too. */
    assert_int_equal(sl_kv_delete(NULL, config_kv, "Upstream.default.v6", 0), SL_OK);
    wait_set("default.v6", "-", 10000);
    put_upstream("api", NULL, 8081, false, true);
    wait_set("default.api", "-", 10000);

    assert_int_equal(harness_stop_pid(&discovery, SIGTERM), 0);
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/sluice-ed-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    chmod(dir, 0755); /* dnsmasq may read the hosts file as another user */
    snprintf(hosts_path, sizeof hosts_path, "%s/hosts", dir);
    snprintf(log_path, sizeof log_path, "%s/processes.log", dir);
    dns_port = harness_free_port_both();
    metrics_port = harness_free_port_both();
    if (harness_nats_start(&srv) != 0 || harness_connect(&nc, srv) != SL_OK)
        return -1;
    sl_kv_config c;
    sl_kv_config_init(&c, "sluice_config");
    if (sl_kv_open(&config_kv, nc, &c) != SL_OK)
        return -1;
    sl_kv_config_init(&c, "sluice_endpoints");
    if (sl_kv_open(&endpoints_kv, nc, &c) != SL_OK)
        return -1;
    sl_kv_config_init(&c, "sluice_status");
    c.republish_keys = ">";
    c.republish_subject = "sluice.status.>";
    return sl_kv_open(&status_kv, nc, &c) == SL_OK ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    harness_stop_pid(&discovery, SIGKILL);
    harness_stop_pid(&reporter, SIGTERM);
    harness_stop_pid(&dnsmasq, SIGTERM);
    if (reports)
        natsSubscription_Destroy(reports);
    reports = NULL;
    sl_kv_free(status_kv);
    sl_kv_free(endpoints_kv);
    sl_kv_free(config_kv);
    sl_nats_close(nc, 1000);
    harness_nats_free(srv);
    return harness_remove_test_dir(dir);
}

/* ---- the etcd scenario ---------------------------------------------------------- */

/* Registers an endpoint the way go.etcd.io/etcd/client/v3/naming/endpoints
 * does (key "<service>/<addr>", its JSON Update value). */
static void register_ep(const char *service, const char *addr, const char *metadata)
{
    char key[256], value[512];
    snprintf(key, sizeof key, "%s/%s", service, addr);
    snprintf(value, sizeof value, "{\"Op\":0,\"Addr\":\"%s\",\"Metadata\":%s}", addr, metadata ? metadata : "null");
    assert_int_equal(sl_etcd_put(ec, key, value, strlen(value), NULL, 5000), SL_OK);
}

static void deregister_ep(const char *service, const char *addr)
{
    char key[256];
    int64_t deleted = 0;
    snprintf(key, sizeof key, "%s/%s", service, addr);
    assert_int_equal(sl_etcd_delete(ec, key, &deleted, 5000), SL_OK);
    assert_int_equal(deleted, 1);
}

static void start_etcd(void)
{
    etcd = harness_start_etcd(etcd_port, etcd_peer_port, etcd_data, log_path);
    if (etcd < 0)
        fail_msg("etcd did not start (see %s)", log_path);
}

/* The next report on Upstream <name> that is (withdrawn) or a Warning whose
 * reason has text; fails after 10 s. */
static void wait_report(const char *name, bool withdrawn, const char *text)
{
    Sluice__V1__Report *r;
    for (r = harness_next_report(reports, name, 10000);
         r && (withdrawn ? !r->withdrawn : r->withdrawn || !strstr(r->reason, text));
         r = harness_next_report(reports, name, 10000))
        sluice__v1__report__free_unpacked(r, NULL);
    if (!r)
        fail_msg("no report on %s (%s %s; log %s)", name, withdrawn ? "withdrawn" : "warning", text ? text : "",
                 log_path);
    if (!withdrawn) {
        assert_int_equal(r->state, SLUICE__V1__STATUS__STATE__Warning);
        assert_string_equal(r->source, "endpoint-discovery");
    }
    sluice__v1__report__free_unpacked(r, NULL);
}

static void test_etcd_discovery(void **state)
{
    (void)state;
    char reason[1024];
    uint64_t rev_echo, rev_grpc;
    const char *echo2 = "127.0.0.1:7001/w3/p0/a/version=v2 127.0.0.1:7002";

    start_etcd();
    int64_t end = harness_now_ms() + 20000;
    while (sl_etcd_connect(&ec, etcd_endpoint, 500) != SL_OK && harness_now_ms() < end)
        ;
    assert_non_null(ec);
    register_ep("services/echo", "127.0.0.1:7002", NULL);
    register_ep("services/echo", "127.0.0.1:7001", "{\"weight\":3,\"zone\":\"a\",\"labels\":{\"version\":\"v2\"}}");
    register_ep("services/echo-admin", "127.0.0.1:7100", NULL); /* a neighbour prefix, not echo's */
    register_ep("services/grpc", "[::1]:50051", NULL);
    assert_int_equal(sl_etcd_put(ec, "services/grpc/broken", "not json", 8, NULL, 5000), SL_OK);
    put_etcd_upstream("echo", "services/echo");
    put_etcd_upstream("grpc", "services/grpc");
    assert_int_equal(natsConnection_SubscribeSync(&reports, sl_nats_conn(nc), "sluice.report.endpoint-discovery.>"),
                     NATS_OK);
    start_reporter(); /* first: the Warnings below go to its report stream */
    start_discovery();

    /* Sets from the registry: sorted by address, weight, zone and labels from Metadata. */
    rev_echo = wait_set("default.echo", echo2, 10000);
    wait_set("default.grpc", "::1:50051", 10000);
    /* A value that is no endpoint: left out, with a Warning naming its key. */
    wait_report("grpc", false, "key \"services/grpc/broken\": registry value is not JSON");
    wait_status("grpc", true, reason, sizeof reason);
    assert_non_null(strstr(reason, "services/grpc/broken"));
    /* fixed: the Warning goes */
    register_ep("services/grpc", "broken", NULL); /* still no endpoint: "broken" has no port */
    wait_report("grpc", false, "Addr 'broken': want host:port");
    deregister_ep("services/grpc", "broken");
    wait_report("grpc", true, NULL);
    rev_grpc = wait_set("default.grpc", "::1:50051", 10);

    /* Scaled out, then one instance deregisters gracefully: the set follows. */
    register_ep("services/echo", "127.0.0.1:7003", "{\"health\":\"draining\"}");
    wait_set("default.echo", "127.0.0.1:7001/w3/p0/a/version=v2 127.0.0.1:7002 127.0.0.1:7003", 10000);
    deregister_ep("services/echo", "127.0.0.1:7002");
    rev_echo = wait_set("default.echo", "127.0.0.1:7001/w3/p0/a/version=v2 127.0.0.1:7003", 10000);

    /* A restart with nothing changed writes nothing. */
    restart_unchanged(2);
    assert_int_equal(wait_set("default.echo", "127.0.0.1:7001/w3/p0/a/version=v2 127.0.0.1:7003", 10), rev_echo);
    assert_int_equal(wait_set("default.grpc", "::1:50051", 10), rev_grpc);

    /* kill -9, a change while it is down, a restart: it converges. */
    assert_int_equal(WTERMSIG(harness_stop_pid(&discovery, SIGKILL)), SIGKILL);
    deregister_ep("services/echo", "127.0.0.1:7003");
    start_discovery();
    rev_echo = wait_set("default.echo", "127.0.0.1:7001/w3/p0/a/version=v2", 10000);

    /* etcd stops: the sets stay, with a Warning naming the source. */
    harness_stop_pid(&etcd, SIGTERM);
    wait_report("echo", false, "etcd source");
    wait_status("echo", true, reason, sizeof reason);
    assert_non_null(strstr(reason, etcd_endpoint));
    assert_non_null(strstr(reason, "keeping the last 1 endpoints"));
    assert_int_equal(wait_set("default.echo", "127.0.0.1:7001/w3/p0/a/version=v2", 10), rev_echo);
    assert_int_equal(wait_set("default.grpc", "::1:50051", 10), rev_grpc);

    /* Back on its data: the Warning is withdrawn, the watch resumes. */
    start_etcd();
    wait_report("echo", true, NULL);
    assert_int_equal(wait_set("default.echo", "127.0.0.1:7001/w3/p0/a/version=v2", 10), rev_echo);
    sl_etcd_close(ec);
    ec = NULL;
    end = harness_now_ms() + 20000;
    while (sl_etcd_connect(&ec, etcd_endpoint, 500) != SL_OK && harness_now_ms() < end)
        ;
    assert_non_null(ec);
    register_ep("services/echo", "127.0.0.1:7004", NULL);
    wait_set("default.echo", "127.0.0.1:7001/w3/p0/a/version=v2 127.0.0.1:7004", 10000);
    assert_int_equal(harness_metric(metrics_port, "sluice_endpoint_discovery_etcd_failures_total") >= 1, 1);

    /* An Upstream turned static loses the set this source wrote. */
    put_upstream("echo", NULL, 8081, false, true);
    wait_set("default.echo", "-", 10000);

    assert_int_equal(harness_stop_pid(&discovery, SIGTERM), 0);
}

static int setup_etcd(void **state)
{
    if (setup(state) != 0)
        return -1;
    etcd_port = harness_free_port();
    etcd_peer_port = harness_free_port();
    snprintf(etcd_endpoint, sizeof etcd_endpoint, "127.0.0.1:%d", etcd_port);
    snprintf(etcd_data, sizeof etcd_data, "%s/etcd", dir);
    return 0;
}

static int teardown_etcd(void **state)
{
    sl_etcd_close(ec);
    ec = NULL;
    harness_stop_pid(&etcd, SIGKILL);
    int rc = teardown(state);
    etcd_endpoint[0] = '\0';
    return rc;
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test_setup_teardown(test_discovery, setup, teardown),
                                       cmocka_unit_test_setup_teardown(test_etcd_discovery, setup_etcd,
                                                                       teardown_etcd)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
