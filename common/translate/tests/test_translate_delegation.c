/* A delegated route outside its parent's prefix, as Gloo's gateway
 * translator handles it (converter.go validateAndMergeParentRoute and its
 * converter_test.go): the route is left out with a Warning on the
 * RouteTable and on the VirtualService, its siblings are served, and the
 * apply API's dry run accepts the RouteTable. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "envoy/config/route/v3/route.pb-c.h"
#include "sluice/translate.h"
#include "translate_test.h"

#define WARNING 3

static const char *const UPSTREAM = "apiVersion: gloo.solo.io/v1\nkind: Upstream\n"
                                    "metadata: {name: up, namespace: default}\n"
                                    "spec: {static: {hosts: [{addr: 10.0.0.1, port: 80}]}}\n---\n"
                                    "apiVersion: gateway.solo.io/v1\nkind: VirtualService\n"
                                    "metadata: {name: vs, namespace: default}\n"
                                    "spec: {virtualHost: {domains: ['*'], routes: [{matchers: [{prefix: /foo, "
                                    "caseSensitive: false}], delegateAction: {ref: {name: rt}}}]}}\n";

static void load_rt(sl_tr_store *st, const char *routes)
{
    char yaml[2048];
    snprintf(yaml, sizeof yaml,
             "apiVersion: gateway.solo.io/v1\nkind: RouteTable\nmetadata: {name: rt, namespace: default}\n"
             "spec: {routes: [%s]}\n",
             routes);
    tr_test_load(st, yaml);
}

/* The paths of the routes of the gateway's route configuration, each
 * followed by ' ' (prefix p, exact =p, regex ~p; case-insensitive adds i). */
static char *route_paths(const sl_tr_result *res)
{
    const sl_tr_resource *r =
        sl_tr_proxy_find(sl_tr_result_proxy(res, "gloo-system~gateway-proxy"), SL_XDS_ROUTE, "listener-::-8080-routes");
    Envoy__Config__Route__V3__RouteConfiguration *rc;
    char *out = calloc(1, 1024);
    size_t o = 0;
    assert_non_null(r);
    rc = envoy__config__route__v3__route_configuration__unpack(NULL, r->len, r->data);
    assert_non_null(rc);
    assert_int_equal(rc->n_virtual_hosts, 1);
    for (size_t i = 0; i < rc->virtual_hosts[0]->n_routes; i++) {
        const Envoy__Config__Route__V3__RouteMatch *m = rc->virtual_hosts[0]->routes[i]->match;
        const char *p = m->path_specifier_case == ENVOY__CONFIG__ROUTE__V3__ROUTE_MATCH__PATH_SPECIFIER_PATH ? m->path
                                                                                                              : m->prefix;
        o += (size_t)snprintf(out + o, 1024 - o, "%s%s%s ",
                              m->path_specifier_case == ENVOY__CONFIG__ROUTE__V3__ROUTE_MATCH__PATH_SPECIFIER_PATH ? "="
                                                                                                                  : "",
                              p, m->case_sensitive && !m->case_sensitive->value ? "i" : "");
    }
    envoy__config__route__v3__route_configuration__free_unpacked(rc, NULL);
    return out;
}

static bool has_warning(const sl_tr_report *rep, const char *text)
{
    for (size_t i = 0; rep && i < rep->n_warnings; i++)
        if (strstr(rep->warnings[i], text))
            return true;
    return false;
}

static const char *const GLOO_TEXT = "invalid route: route table matchers must begin with the prefix of their "
                                     "parent route's matcher";

/* converter_test.go: one matcher of two outside /foo leaves that route
 * out; the sibling is served; Warning (not Rejected), also in a dry run. */
static void route_outside_prefix_is_left_out(void **state)
{
    sl_tr_store *st;
    sl_tr_result *res;
    sl_tr_options o = {0};
    const sl_tr_report *rt, *vs;
    char *paths;
    (void)state;
    for (int dry = 0; dry < 2; dry++) {
        assert_int_equal(sl_tr_store_new(&st), SL_OK);
        tr_test_load(st, UPSTREAM);
        load_rt(st, "{matchers: [{prefix: /foo/bar}, {prefix: /invalid}], directResponseAction: {status: 200}}, "
                    "{matchers: [{exact: /foo/ok}], routeAction: {single: {upstream: {name: up}}}}");
        o.dry_run = dry;
        assert_int_equal(sl_tr_translate(&res, st, &o), SL_OK);
        rt = sl_tr_result_report(res, "RouteTable", "default", "rt");
        vs = sl_tr_result_report(res, "VirtualService", "default", "vs");
        assert_non_null(rt);
        assert_non_null(vs);
        assert_int_equal(rt->state, WARNING);
        assert_int_equal(vs->state, WARNING);
        assert_true(has_warning(rt, "required prefix: /foo, prefix: /invalid"));
        assert_true(has_warning(rt, GLOO_TEXT));
        assert_true(has_warning(vs, "on sub route table default.rt: required prefix: /foo, prefix: /invalid"));
        if (!dry) {
            paths = route_paths(res);
            assert_string_equal(paths, "=/foo/ok ");
            free(paths);
        }
        sl_tr_result_free(res);
        sl_tr_store_free(st);
    }
}

/* converter_test.go: a route without matchers is Gloo's default matcher
 * "/" (outside /foo), unless inheritablePathMatchers gives it the parent's
 * path and case sensitivity. */
static void route_without_matchers(void **state)
{
    sl_tr_store *st;
    sl_tr_result *res;
    char *paths;
    (void)state;
    assert_int_equal(sl_tr_store_new(&st), SL_OK);
    tr_test_load(st, UPSTREAM);
    load_rt(st, "{directResponseAction: {status: 200, body: foo}}, "
                "{inheritablePathMatchers: true, matchers: [{prefix: /other, headers: [{name: x-a}]}], "
                "directResponseAction: {status: 200}}, "
                "{inheritablePathMatchers: true, directResponseAction: {status: 204}}");
    assert_int_equal(sl_tr_translate(&res, st, NULL), SL_OK);
    assert_true(has_warning(sl_tr_result_report(res, "RouteTable", "default", "rt"), "required prefix: /foo, prefix: /:"));
    assert_int_equal(sl_tr_result_report(res, "RouteTable", "default", "rt")->n_warnings, 1);
    paths = route_paths(res);
    assert_string_equal(paths, "/fooi /fooi ");
    free(paths);
    sl_tr_result_free(res);
    sl_tr_store_free(st);
}

/* A table that was accepted and then gains a route outside the prefix
 * serves its new version's valid routes (not its last good version). */
static void new_version_served_without_the_bad_route(void **state)
{
    sl_tr_store *st;
    sl_tr_result *r1, *r2;
    char *paths;
    (void)state;
    assert_int_equal(sl_tr_store_new(&st), SL_OK);
    tr_test_load(st, UPSTREAM);
    load_rt(st, "{matchers: [{prefix: /foo/a}], directResponseAction: {status: 200}}");
    assert_int_equal(sl_tr_translate(&r1, st, NULL), SL_OK);
    load_rt(st, "{matchers: [{prefix: /foo/a}], directResponseAction: {status: 200}}, "
                "{matchers: [{prefix: /bar}], directResponseAction: {status: 200}}, "
                "{matchers: [{prefix: /foo/b}], directResponseAction: {status: 200}}");
    assert_int_equal(sl_tr_translate(&r2, st, NULL), SL_OK);
    assert_int_equal(sl_tr_result_report(r2, "RouteTable", "default", "rt")->state, WARNING);
    assert_false(sl_tr_result_report(r2, "RouteTable", "default", "rt")->serving_last_good);
    paths = route_paths(r2);
    assert_string_equal(paths, "/foo/a /foo/b ");
    free(paths);
    sl_tr_result_free(r1);
    sl_tr_result_free(r2);
    sl_tr_store_free(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(route_outside_prefix_is_left_out),
        cmocka_unit_test(route_without_matchers),
        cmocka_unit_test(new_version_served_without_the_bad_route),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
