/* Delegated hybrid gateways, the merge of the parent's settings into the
 * children, as Gloo's hybrid_translator_test.go tests it: its 36-entry
 * table of a parent's and a child's sslConfig (nil, zero: oneWayTls false,
 * empty: {}, set: oneWayTls true) with and without preventChildOverrides,
 * here read from what Envoy gets (a one-way TLS context does not require a
 * client certificate), and its httpConnectionManagerSettings merge. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "envoy/config/listener/v3/listener.pb-c.h"
#include "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.pb-c.h"
#include "envoy/extensions/transport_sockets/tls/v3/tls.pb-c.h"
#include "sluice/translate.h"
#include "translate_test.h"

#define WARNING 3

/* A virtual service with TLS (a certificate with a root CA: a client
 * certificate is required unless oneWayTls) for the children to serve. */
static const char *const BASE =
    "apiVersion: gloo.solo.io/v1\nkind: Secret\nmetadata: {name: tls, namespace: default}\n"
    "spec: {tls: {certChain: \"-----BEGIN CERTIFICATE-----\\nMIIH\\n-----END CERTIFICATE-----\\n\", "
    "privateKey: \"-----BEGIN PRIVATE KEY-----\\nMIIY\\n-----END PRIVATE KEY-----\\n\", "
    "rootCa: \"-----BEGIN CERTIFICATE-----\\nMIIC\\n-----END CERTIFICATE-----\\n\"}}\n---\n"
    "apiVersion: gloo.solo.io/v1\nkind: Upstream\nmetadata: {name: up, namespace: default}\n"
    "spec: {static: {hosts: [{addr: 10.0.0.1, port: 80}]}}\n---\n"
    "apiVersion: gateway.solo.io/v1\nkind: VirtualService\nmetadata: {name: vs, namespace: default}\n"
    "spec: {sslConfig: {secretRef: {name: tls}, sniDomains: [a.example.com]}, virtualHost: {domains: ['*'], "
    "routes: [{matchers: [{prefix: /}], routeAction: {single: {upstream: {name: up}}}}]}}\n---\n"
    "apiVersion: gateway.solo.io/v1\nkind: VirtualService\nmetadata: {name: plain, namespace: default}\n"
    "spec: {virtualHost: {domains: ['*'], "
    "routes: [{matchers: [{prefix: /}], routeAction: {single: {upstream: {name: up}}}}]}}\n";

/* Loads BASE, a Gateway delegating to MatchableHttpGateway child with
 * parent's fields (delegatedHttpGateways) and child's (its spec), and
 * translates. */
static sl_tr_result *translate(sl_tr_store **st, const char *parent, const char *child)
{
    char yaml[4096];
    sl_tr_result *res = NULL;
    assert_int_equal(sl_tr_store_new(st), SL_OK);
    tr_test_load(*st, BASE);
    snprintf(yaml, sizeof yaml,
             "apiVersion: gateway.solo.io/v1\nkind: Gateway\nmetadata: {name: gw, namespace: default}\n"
             "spec: {bindPort: 8443, hybridGateway: {delegatedHttpGateways: {ref: {name: child}%s%s}}}\n---\n"
             "apiVersion: gateway.solo.io/v1\nkind: MatchableHttpGateway\n"
             "metadata: {name: child, namespace: default}\nspec: {%s}\n",
             parent[0] ? ", " : "", parent, child);
    tr_test_load(*st, yaml);
    assert_int_equal(sl_tr_translate(&res, *st, NULL), SL_OK);
    return res;
}

/* The listener of the gateway, unpacked (free it), or NULL. */
static Envoy__Config__Listener__V3__Listener *listener(const sl_tr_result *res)
{
    const sl_tr_resource *r =
        sl_tr_proxy_find(sl_tr_result_proxy(res, "default~gateway-proxy"), SL_XDS_LISTENER, "listener-::-8443");
    return r ? envoy__config__listener__v3__listener__unpack(NULL, r->len, r->data) : NULL;
}

/* Whether the TLS filter chain of l requires a client certificate. */
static bool requires_client_cert(const Envoy__Config__Listener__V3__Listener *l)
{
    for (size_t i = 0; i < l->n_filter_chains; i++) {
        const Envoy__Config__Core__V3__TransportSocket *ts = l->filter_chains[i]->transport_socket;
        Envoy__Extensions__TransportSockets__Tls__V3__DownstreamTlsContext *ctx;
        bool req;
        if (!ts || !ts->typed_config)
            continue;
        ctx = envoy__extensions__transport_sockets__tls__v3__downstream_tls_context__unpack(
            NULL, ts->typed_config->value.len, ts->typed_config->value.data);
        assert_non_null(ctx);
        req = ctx->require_client_certificate && ctx->require_client_certificate->value;
        envoy__extensions__transport_sockets__tls__v3__downstream_tls_context__free_unpacked(ctx, NULL);
        return req;
    }
    fail_msg("no TLS filter chain");
    return false;
}

enum { RESULT_FALSE, RESULT_TRUE, RESULT_NIL, RESULT_NOT_TAKEN };

static void ssl_case(const char *child, const char *parent, int prevent, int want)
{
    char p[256], c[256];
    sl_tr_store *st;
    sl_tr_result *res;
    Envoy__Config__Listener__V3__Listener *l;
    const sl_tr_report *gw;
    snprintf(p, sizeof p, "preventChildOverrides: %s%s%s", prevent ? "true" : "false", parent ? ", sslConfig: " : "",
             parent ? parent : "");
    snprintf(c, sizeof c, "httpGateway: {}%s%s", child ? ", matcher: {sslConfig: " : "", child ? child : "");
    if (child)
        strcat(c, "}");
    res = translate(&st, p, c);
    l = listener(res);
    gw = sl_tr_result_report(res, "Gateway", "default", "gw");
    assert_non_null(gw);
    if (want == RESULT_NOT_TAKEN) {
        /* parent XOR child has sslConfig: the child is not taken, the
         * Gateway has nothing to serve (a Warning, as Gloo) */
        if (l)
            fail_msg("child %s parent %s prevent %d: a listener", child, parent, prevent);
        assert_int_equal(gw->state, WARNING);
    } else {
        if (!l)
            fail_msg("child %s parent %s prevent %d: no listener (%s)", child, parent, prevent, gw->reason);
        assert_int_equal(gw->state, 1);
        if (child || parent) {
            /* one-way (true) needs no client certificate; nil and false do */
            if (requires_client_cert(l) != (want != RESULT_TRUE))
                fail_msg("child %s parent %s prevent %d: oneWayTls should be %s", child, parent, prevent,
                         want == RESULT_TRUE ? "true" : "unset or false");
        } else {
            assert_null(l->filter_chains[0]->transport_socket);
        }
        envoy__config__listener__v3__listener__free_unpacked(l, NULL);
    }
    sl_tr_result_free(res);
    sl_tr_store_free(st);
}

static void ssl_config_table(void **state)
{
    const char *NIL = NULL, *ZERO = "{oneWayTls: false}", *EMPTY = "{}", *SET = "{oneWayTls: true}";
    static const int F = RESULT_FALSE, T = RESULT_TRUE, N = RESULT_NIL, E = RESULT_NOT_TAKEN;
    const struct {
        const char *child, *parent;
        int prevent, want;
    } rows[] = {
        {NIL, NIL, 1, N},     {NIL, NIL, 0, N},     {NIL, ZERO, 1, E},    {NIL, ZERO, 0, E},
        {NIL, EMPTY, 1, E},   {NIL, EMPTY, 0, E},   {NIL, SET, 1, E},     {NIL, SET, 0, E},
        {ZERO, NIL, 1, E},    {ZERO, NIL, 0, E},    {ZERO, ZERO, 1, F},   {ZERO, ZERO, 0, F},
        {ZERO, EMPTY, 1, F},  {ZERO, EMPTY, 0, F},  {ZERO, SET, 1, T},    {ZERO, SET, 0, F},
        {EMPTY, NIL, 1, E},   {EMPTY, NIL, 0, E},   {EMPTY, ZERO, 1, F},  {EMPTY, ZERO, 0, F},
        {EMPTY, EMPTY, 1, N}, {EMPTY, EMPTY, 0, N}, {EMPTY, SET, 1, T},   {EMPTY, SET, 0, T},
        {SET, NIL, 1, E},     {SET, NIL, 0, E},     {SET, ZERO, 1, F},    {SET, ZERO, 0, T},
        {SET, EMPTY, 1, T},   {SET, EMPTY, 0, T},   {SET, SET, 1, T},     {SET, SET, 0, T},
    };
    (void)state;
    for (size_t i = 0; i < sizeof rows / sizeof *rows; i++)
        ssl_case(rows[i].child, rows[i].parent, rows[i].prevent, rows[i].want);
}

/* The HTTP connection manager of the listener's first filter chain. */
static Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpConnectionManager *
hcm(const Envoy__Config__Listener__V3__Listener *l)
{
    const Envoy__Config__Listener__V3__Filter *f = l->filter_chains[0]->filters[0];
    return envoy__extensions__filters__network__http_connection_manager__v3__http_connection_manager__unpack(
        NULL, f->typed_config->value.len, f->typed_config->value.data);
}

/* Gloo's "Should merge complicated config of various object types": a
 * child's setting wins (also a zero duration, which is set), the ones it
 * leaves unset come from the parent; with preventChildOverrides the
 * parent's win. */
static void hcm_settings_merge(void **state)
{
    static const char parent[] =
        "httpConnectionManagerSettings: {via: parent-via, useRemoteAddress: true, xffNumTrustedHops: 32, "
        "streamIdleTimeout: 10s, maxRequestHeadersKb: 31, serverName: parent}";
    static const char child[] = "httpGateway: {options: {httpConnectionManagerSettings: {streamIdleTimeout: 0s, "
                                "maxRequestHeadersKb: 32, serverName: child}}}";
    for (int prevent = 0; prevent < 2; prevent++) {
        char p[512];
        sl_tr_store *st;
        sl_tr_result *res;
        Envoy__Config__Listener__V3__Listener *l;
        Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpConnectionManager *h;
        (void)state;
        snprintf(p, sizeof p, "preventChildOverrides: %s, %s", prevent ? "true" : "false", parent);
        res = translate(&st, p, child);
        assert_non_null(l = listener(res));
        assert_non_null(h = hcm(l));
        /* unset in the child: the parent's */
        assert_string_equal(h->via, "parent-via");
        assert_true(h->use_remote_address && h->use_remote_address->value);
        assert_int_equal(h->xff_num_trusted_hops, 32);
        /* set in both: the child's, or with preventChildOverrides the parent's */
        assert_non_null(h->stream_idle_timeout);
        assert_int_equal(h->stream_idle_timeout->seconds, prevent ? 10 : 0);
        assert_int_equal(h->max_request_headers_kb->value, prevent ? 31 : 32);
        assert_string_equal(h->server_name, prevent ? "parent" : "child");
        envoy__extensions__filters__network__http_connection_manager__v3__http_connection_manager__free_unpacked(h,
                                                                                                              NULL);
        envoy__config__listener__v3__listener__free_unpacked(l, NULL);
        sl_tr_result_free(res);
        sl_tr_store_free(st);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ssl_config_table),
        cmocka_unit_test(hcm_settings_merge),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
