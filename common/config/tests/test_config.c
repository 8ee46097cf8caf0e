/* The config model with the delegated hybrid gateway kinds:
 * MatchableHttpGateway and MatchableTcpGateway documents decode and check,
 * a Gateway's delegatedHttpGateways.ref and delegatedTcpGateways.ref are
 * references to them (not to RouteTables, as a delegateAction.ref), and
 * what Gloo's MatchableHttpGateway does not have is refused by name. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "sluice/config.h"
#include "sluice/v1/gateway.pb-c.h"

static const char docs[] = "apiVersion: gateway.solo.io/v1\n"
                           "kind: Gateway\n"
                           "metadata: {name: gw, namespace: gloo-system}\n"
                           "spec:\n"
                           "  bindPort: 8080\n"
                           "  hybridGateway:\n"
                           "    delegatedHttpGateways:\n"
                           "      ref: {name: web}\n"
                           "      preventChildOverrides: true\n"
                           "      httpConnectionManagerSettings: {via: parent}\n"
                           "    delegatedTcpGateways:\n"
                           "      ref: {name: db, namespace: team-b}\n"
                           "---\n"
                           "apiVersion: gateway.solo.io/v1\n"
                           "kind: MatchableHttpGateway\n"
                           "metadata: {name: web, namespace: gloo-system, labels: {team: a}}\n"
                           "spec:\n"
                           "  matcher:\n"
                           "    sourcePrefixRanges: [{addressPrefix: 10.0.0.0, prefixLen: 8}]\n"
                           "    sslConfig: {sniDomains: [a.example.com]}\n"
                           "  httpGateway:\n"
                           "    virtualServices: [{name: shop}]\n"
                           "---\n"
                           "apiVersion: gateway.solo.io/v1\n"
                           "kind: MatchableTcpGateway\n"
                           "metadata: {name: db, namespace: team-b}\n"
                           "spec:\n"
                           "  matcher: {passthroughCipherSuites: [AES256-SHA256]}\n"
                           "  tcpGateway:\n"
                           "    tcpHosts:\n"
                           "    - name: db\n"
                           "      destination: {single: {upstream: {name: db}}}\n";

static void decodes_and_checks(void **state)
{
    sl_cfg_set set;
    (void)state;
    sl_cfg_set_init(&set);
    assert_int_equal(sl_cfg_set_decode_text(&set, docs, strlen(docs), "hybrid.yaml"), SL_OK);
    assert_int_equal(set.n, 3);
    for (size_t i = 0; i < set.n; i++)
        sl_cfg_check(&set.items[i]);
    assert_int_equal(sl_cfg_set_errors(&set), 0);
    assert_string_equal(set.items[1].key, "MatchableHttpGateway.gloo-system.web");
    assert_string_equal(set.items[2].key, "MatchableTcpGateway.team-b.db");
    {
        const Sluice__V1__MatchableHttpGateway *h = (const Sluice__V1__MatchableHttpGateway *)set.items[1].msg;
        const Sluice__V1__Gateway *g = (const Sluice__V1__Gateway *)set.items[0].msg;
        assert_int_equal(h->spec->matcher->n_source_prefix_ranges, 1);
        assert_string_equal(h->spec->matcher->ssl_config->sni_domains[0], "a.example.com");
        assert_true(g->spec->hybrid_gateway->delegated_http_gateways->prevent_child_overrides);
        assert_string_equal(g->spec->hybrid_gateway->delegated_http_gateways->http_connection_manager_settings->via,
                            "parent");
    }
    sl_cfg_set_deinit(&set);
}

typedef struct seen {
    char lines[8][160];
    size_t n;
} seen;

static void collect(void *ud, const sl_kind *kind, const char *ns, const char *name, const char *path)
{
    seen *s = ud;
    if (s->n < 8)
        snprintf(s->lines[s->n++], sizeof s->lines[0], "%s %s.%s %s", kind->kind, ns, name, path);
}

static void delegated_refs_name_their_kinds(void **state)
{
    static const char vs[] = "apiVersion: gateway.solo.io/v1\n"
                             "kind: VirtualService\n"
                             "metadata: {name: vs, namespace: default}\n"
                             "spec:\n"
                             "  virtualHost:\n"
                             "    routes:\n"
                             "    - matchers: [{prefix: /a}]\n"
                             "      delegateAction: {ref: {name: rt}}\n";
    sl_cfg_set set;
    seen s = {0};
    (void)state;
    sl_cfg_set_init(&set);
    assert_int_equal(sl_cfg_set_decode_text(&set, docs, strlen(docs), "hybrid.yaml"), SL_OK);
    assert_int_equal(sl_cfg_set_decode_text(&set, vs, strlen(vs), "vs.yaml"), SL_OK);
    assert_int_equal(set.n, 4);
    sl_cfg_refs(set.items[0].msg, "gloo-system", collect, &s);
    assert_int_equal(s.n, 2);
    assert_string_equal(s.lines[0], "MatchableHttpGateway gloo-system.web spec.hybridGateway.delegatedHttpGateways.ref");
    assert_string_equal(s.lines[1], "MatchableTcpGateway team-b.db spec.hybridGateway.delegatedTcpGateways.ref");
    /* a MatchableHttpGateway's own references resolve in its namespace */
    s.n = 0;
    sl_cfg_refs(set.items[1].msg, "gloo-system", collect, &s);
    assert_int_equal(s.n, 1);
    assert_string_equal(s.lines[0], "VirtualService gloo-system.shop spec.httpGateway.virtualServices[0]");
    /* a delegateAction's ref is still a RouteTable */
    s.n = 0;
    sl_cfg_refs(set.items[3].msg, "default", collect, &s);
    assert_int_equal(s.n, 1);
    assert_string_equal(s.lines[0], "RouteTable default.rt spec.virtualHost.routes[0].delegateAction.ref");
    sl_cfg_set_deinit(&set);
}

/* Gloo's MatchableHttpGateway matcher has no passthroughCipherSuites (only
 * the TCP one has): an error naming the field and where it is. */
static void http_matcher_refuses_cipher_suites(void **state)
{
    static const char doc[] = "apiVersion: gateway.solo.io/v1\n"
                              "kind: MatchableHttpGateway\n"
                              "metadata: {name: web}\n"
                              "spec:\n"
                              "  matcher:\n"
                              "    passthroughCipherSuites: [AES256-SHA256]\n";
    sl_cfg_set set;
    char line[512];
    (void)state;
    sl_cfg_set_init(&set);
    assert_int_equal(sl_cfg_set_decode_text(&set, doc, strlen(doc), "hgw.yaml"), SL_OK);
    assert_int_equal(set.n, 1);
    assert_int_equal(sl_diag_errors(&set.items[0].diag), 1);
    sl_diag_format(line, sizeof line, sl_diag_get(&set.items[0].diag, 0));
    assert_non_null(strstr(line, "hgw.yaml:6"));
    assert_non_null(strstr(line, "passthroughCipherSuites"));
    sl_cfg_set_deinit(&set);
}

/* The command line finds the kinds by glooctl's and Kubernetes' names. */
static void cli_names(void **state)
{
    (void)state;
    assert_ptr_equal(sl_kind_lookup("hgw"), sl_kind_by_name("MatchableHttpGateway"));
    assert_ptr_equal(sl_kind_lookup("httpgateways"), sl_kind_by_name("MatchableHttpGateway"));
    assert_ptr_equal(sl_kind_lookup("tgw"), sl_kind_by_name("MatchableTcpGateway"));
    assert_ptr_equal(sl_kind_lookup("MatchableTcpGateway"), sl_kind_by_name("MatchableTcpGateway"));
    assert_string_equal(sl_kind_by_name("MatchableTcpGateway")->bucket, SL_BUCKET_CONFIG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(decodes_and_checks),
        cmocka_unit_test(delegated_refs_name_their_kinds),
        cmocka_unit_test(http_matcher_refuses_cipher_suites),
        cmocka_unit_test(cli_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
