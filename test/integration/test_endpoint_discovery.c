/* sluice-endpoint-discovery end to end: the real binary, a real nats-server (authentication on) and a
 * real dnsmasq on a loopback port as the DNS server.
 *
 * One scenario, in order (each step depends on the state before it): dns
 * Upstreams (A/AAAA and SRV) get their EndpointSets, a static one none; a
 * record changes (hosts file re-read on SIGHUP) and the set follows; the DNS
 * server stops: the set is kept and the Upstream gets a Warning naming the
 * source (report and reporter's status), cleared when it is back; a restart
 * of discovery with nothing changed writes nothing (KV revisions); kill -9
 * in the middle of a change, then a restart, converges; a deleted Upstream
 * loses its set; SIGTERM stops it cleanly. */
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
static pid_t dnsmasq = -1, discovery = -1, reporter = -1;
static int dns_port, metrics_port;
static char dir[256], hosts_path[300], log_path[300];

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
                    "--log-level", "debug", NULL};
    discovery = spawn(argv);
    int64_t end = harness_now_ms() + 15000;
    char buf[4096];
    /* up once it has resolved something */
    while (harness_now_ms() < end &&
           harness_metric(metrics_port, "sluice_endpoint_discovery_resolutions_total") <= 0)
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
}

/* ---- resources ------------------------------------------------------------- */

static void put_upstream(const char *name, const char *dns_name, uint32_t port, bool srv_name, bool is_static)
{
    Sluice__V1__Upstream u = SLUICE__V1__UPSTREAM__INIT;
    Sluice__V1__Metadata md = SLUICE__V1__METADATA__INIT;
    Sluice__V1__UpstreamSpec sp = SLUICE__V1__UPSTREAM_SPEC__INIT;
    Sluice__V1__DnsUpstreamSpec d = SLUICE__V1__DNS_UPSTREAM_SPEC__INIT;
    Sluice__V1__StaticUpstreamSpec st = SLUICE__V1__STATIC_UPSTREAM_SPEC__INIT;
    Sluice__V1__Host h = SLUICE__V1__HOST__INIT, *hp = &h;
    char key[256];
    md.name = (char *)name;
    md.namespace_ = "default";
    u.metadata = &md;
    u.spec = &sp;
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
    snprintf(key, sizeof key, "Upstream.default.%s", name);
    assert_int_equal(harness_kv_put_pb(config_kv, key, &u.base), SL_OK);
}

/* The set stored under key as "addr:port[/w<weight>/p<priority>] ..." ("-" when none); *rev its revision. */
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
    assert_string_equal(set->spec->source, "dns");
    assert_string_equal(set->metadata->name, strchr(key, '.') + 1);
    out[0] = 0;
    for (size_t i = 0; i < set->spec->n_endpoints && k < n; i++) {
        const Sluice__V1__Endpoint *ep = set->spec->endpoints[i];
        k += (size_t)snprintf(out + k, n - k, "%s%s:%u", i ? " " : "", ep->address, ep->port);
        if (ep->weight && k < n)
            k += (size_t)snprintf(out + k, n - k, "/w%u/p%u", ep->weight->value, ep->priority);
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
    int64_t end = harness_now_ms() + 10000;
    while (harness_now_ms() < end && status_state("web", reason, sizeof reason) != SLUICE__V1__STATUS__STATE__Warning)
        usleep(50 * 1000);
    assert_int_equal(status_state("web", reason, sizeof reason), SLUICE__V1__STATUS__STATE__Warning);
    assert_non_null(strstr(reason, want));

    /* Back: the Warning is withdrawn, nothing rewritten. */
    start_dnsmasq();
    for (r = harness_next_report(reports, "web", 10000); r && !r->withdrawn;
         r = harness_next_report(reports, "web", 10000))
        sluice__v1__report__free_unpacked(r, NULL);
    assert_non_null(r);
    sluice__v1__report__free_unpacked(r, NULL);
    end = harness_now_ms() + 10000;
    while (harness_now_ms() < end && status_state("web", reason, sizeof reason) == SLUICE__V1__STATUS__STATE__Warning)
        usleep(50 * 1000);
    assert_int_not_equal(status_state("web", reason, sizeof reason), SLUICE__V1__STATUS__STATE__Warning);
    assert_int_equal(wait_set("default.web", "127.0.0.11:8080 127.0.0.13:8080", 10), rev_web);

    /* A restart with nothing changed writes nothing. */
    assert_int_equal(harness_stop_pid(&discovery, SIGTERM), 0);
    start_discovery();
    end = harness_now_ms() + 10000;
    while (harness_now_ms() < end && harness_metric(metrics_port, "sluice_endpoint_discovery_unchanged_total") < 4)
        usleep(50 * 1000);
    assert_true(harness_metric(metrics_port, "sluice_endpoint_discovery_unchanged_total") >= 4);
    assert_true(harness_metric(metrics_port, "sluice_endpoint_discovery_writes_total") == 0);
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
    sl_kv_free(status_kv);
    sl_kv_free(endpoints_kv);
    sl_kv_free(config_kv);
    sl_nats_close(nc, 1000);
    harness_nats_free(srv);
    return harness_remove_test_dir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test_setup_teardown(test_discovery, setup, teardown)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
