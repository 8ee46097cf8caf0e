/* test_xds_keys.c - the sluice_xds key layout: builders, parser, and that one undoes the other. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <string.h>

#include "sluice/xds_keys.h"

static sl_xds_key k; /* big: off the stack */

static void test_builders(void **state)
{
    (void)state;
    char key[SL_XDS_KEY_MAX];
    assert_int_equal(sl_xds_key_commit(key, sizeof key, "gloo-system~gateway-proxy"), SL_OK);
    assert_string_equal(key, "gloo-system=7Egateway-proxy.commit");
    assert_int_equal(sl_xds_key_manifest(key, sizeof key, "p", SL_XDS_CLUSTER, "00ff00ff00ff00ff"), SL_OK);
    assert_string_equal(key, "p.manifest.cluster.00ff00ff00ff00ff");
    assert_int_equal(sl_xds_key_vhost(key, sizeof key, "p", "listener-::-8080-routes", "default_vs.1"), SL_OK);
    assert_string_equal(key, "p.vhost.listener-=3A=3A-8080-routes.default_vs=2E1");
    assert_int_equal(sl_xds_key_resource(key, sizeof key, "a.b", SL_XDS_LISTENER, "listener-::-8080"), SL_OK);
    assert_string_equal(key, "a=2Eb.listener.listener-=3A=3A-8080");
    /* "" is no token; a name too long for one, or a key too long for the buffer, is refused */
    assert_int_equal(sl_xds_key_commit(key, sizeof key, ""), SL_ERR_INVALID);
    assert_int_equal(sl_xds_key_resource(key, sizeof key, "p", SL_XDS_ROUTE, ""), SL_ERR_INVALID);
    char big[SL_XDS_TOKEN_MAX + 1];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = 0;
    assert_int_equal(sl_xds_key_resource(key, sizeof key, "p", SL_XDS_ROUTE, big), SL_ERR_INVALID);
    assert_int_equal(sl_xds_key_resource(key, 12, "p", SL_XDS_ROUTE, "name"), SL_ERR_INVALID);
}

static void test_parse(void **state)
{
    (void)state;
    char key[SL_XDS_KEY_MAX];
    assert_int_equal(sl_xds_key_parse(&k, "gloo-system=7Egateway-proxy.commit"), SL_OK);
    assert_int_equal(k.kind, SL_XDS_KEY_COMMIT);
    assert_string_equal(k.proxy, "gloo-system~gateway-proxy");
    assert_int_equal(k.proxy_token_len, strlen("gloo-system=7Egateway-proxy"));
    assert_int_equal(sl_xds_key_parse(&k, "p.vhost.listener-=3A=3A-8080-routes.default_vs=2E1"), SL_OK);
    assert_int_equal(k.kind, SL_XDS_KEY_VHOST);
    assert_string_equal(k.route, "listener-::-8080-routes");
    assert_string_equal(k.name, "default_vs.1");
    assert_int_equal(sl_xds_key_parse(&k, "p.manifest.endpoint.0123"), SL_OK);
    assert_int_equal(k.kind, SL_XDS_KEY_MANIFEST);
    assert_int_equal(k.type, SL_XDS_ENDPOINT);
    assert_string_equal(k.name, "0123");
    assert_int_equal(sl_xds_key_parse(&k, "p.secret.s=7E1"), SL_OK);
    assert_int_equal(k.kind, SL_XDS_KEY_RESOURCE);
    assert_int_equal(k.type, SL_XDS_SECRET);
    assert_string_equal(k.name, "s~1");
    /* built again from its parts: the same key */
    assert_int_equal(sl_xds_key_resource(key, sizeof key, k.proxy, k.type, k.name), SL_OK);
    assert_string_equal(key, "p.secret.s=7E1");

    static const char *const bad[] = {
        "p",                      /* one token */
        "p.route",                /* a type without a name */
        "p.commit.x",             /* not a type */
        "p.clusters.x",           /* not a type token */
        "p.manifest.clusters.x",  /* not a type token */
        "p.other.a.b",            /* four tokens, neither manifest nor vhost */
        "p.vhost.r.v.w",          /* five tokens */
        "p.cluster.",             /* an empty token */
        ".commit",                /* an empty proxy */
        "p.cluster.a=3ab",        /* lower-case hex: not as escaping makes it */
        "p.cluster.=41",          /* a byte escaping keeps */
        "p.cluster.a=4",          /* a cut escape */
        "p.cluster.a=00",         /* NUL */
        "p.cluster.a~b",          /* a byte escaping changes */
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        if (sl_xds_key_parse(&k, bad[i]) != SL_ERR_INVALID)
            fail_msg("parsed \"%s\"", bad[i]);
}

static void test_is_commit(void **state)
{
    (void)state;
    assert_true(sl_xds_key_is_commit("p.commit"));
    assert_false(sl_xds_key_is_commit("p.cluster.commit")); /* a cluster named "commit" */
    assert_false(sl_xds_key_is_commit(".commit"));
    assert_false(sl_xds_key_is_commit("p.commits"));
    assert_false(sl_xds_key_is_commit("commit"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_builders),
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_is_commit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
