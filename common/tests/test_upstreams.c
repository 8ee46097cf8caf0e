/* test_upstreams.c - sluice/upstreams.h: the names upstream discovery gives Upstreams, and the service of an
 * etcd registry key. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "sluice/resource.h"
#include "sluice/upstreams.h"

static void test_discovered_name(void **state)
{
    (void)state;
    char name[SL_RESOURCE_NAME_MAX + 1], other[SL_RESOURCE_NAME_MAX + 1];

    assert_int_equal(sl_upstream_discovered_name(name, "etcd", "services/echo", false), SL_OK);
    assert_string_equal(name, "etcd-services-echo");
    assert_int_equal(sl_upstream_discovered_name(name, "dnssd", "echo._http._tcp.example.test", false), SL_OK);
    assert_string_equal(name, "dnssd-echo-http-tcp-example-test");
    /* Upper case, spaces and UTF-8 of a DNS-SD instance; ends trimmed. */
    assert_int_equal(sl_upstream_discovered_name(name, "dnssd", "/My Printer\xc3\xa9._ipp._tcp.local./", false),
                     SL_OK);
    assert_string_equal(name, "dnssd-my-printer-ipp-tcp-local");
    assert_int_equal(sl_resource_check_name(name), SL_OK);

    /* Two ids with one plain name: the suffix (FNV-1a of the id) tells them apart. */
    assert_int_equal(sl_upstream_discovered_name(name, "etcd", "services/echo", true), SL_OK);
    assert_int_equal(sl_upstream_discovered_name(other, "etcd", "services-echo", true), SL_OK);
    assert_int_equal(strlen(name), strlen("etcd-services-echo") + 9);
    assert_memory_equal(name, "etcd-services-echo-", 19);
    assert_string_not_equal(name, other);
    assert_int_equal(sl_resource_check_name(name), SL_OK);

    /* Too long: cut, with the suffix, still a valid name. */
    char id[600];
    memset(id, 'a', sizeof id - 1);
    id[sizeof id - 1] = '\0';
    id[300] = '/';
    assert_int_equal(sl_upstream_discovered_name(name, "etcd", id, false), SL_OK);
    assert_int_equal(strlen(name), SL_RESOURCE_NAME_MAX);
    assert_int_equal(sl_resource_check_name(name), SL_OK);
    id[100] = 'b';
    assert_int_equal(sl_upstream_discovered_name(other, "etcd", id, false), SL_OK);
    assert_string_not_equal(name, other);

    /* Nothing to name; a bad source. */
    assert_int_equal(sl_upstream_discovered_name(name, "etcd", "/_./", false), SL_ERR_INVALID);
    assert_int_equal(sl_upstream_discovered_name(name, "Etcd", "x", false), SL_ERR_INVALID);
    assert_int_equal(sl_upstream_discovered_name(name, "", "x", false), SL_ERR_INVALID);
}

static void test_etcd_service(void **state)
{
    (void)state;
    char out[64];
    assert_true(sl_upstream_etcd_service(out, sizeof out, "services/", "services/echo/10.0.0.1:80"));
    assert_string_equal(out, "services/echo");
    assert_true(sl_upstream_etcd_service(out, sizeof out, "services/", "services/a/b/10.0.0.1:80"));
    assert_string_equal(out, "services/a/b");
    assert_true(sl_upstream_etcd_service(out, sizeof out, "", "echo/10.0.0.1:80"));
    assert_string_equal(out, "echo");
    assert_true(sl_upstream_etcd_service(out, sizeof out, "services", "services/echo/x"));
    assert_string_equal(out, "services/echo");
    /* The root itself is no service; nor is an empty segment or address. */
    assert_false(sl_upstream_etcd_service(out, sizeof out, "services/", "services/10.0.0.1:80"));
    assert_false(sl_upstream_etcd_service(out, sizeof out, "services", "services/10.0.0.1:80"));
    assert_false(sl_upstream_etcd_service(out, sizeof out, "services/", "services//x"));
    assert_false(sl_upstream_etcd_service(out, sizeof out, "services/", "services/echo/"));
    assert_false(sl_upstream_etcd_service(out, sizeof out, "services/", "other/echo/x"));
    assert_false(sl_upstream_etcd_service(out, sizeof out, "", "no-slash"));
    assert_false(sl_upstream_etcd_service(out, sizeof out, "", "/x"));
    assert_false(sl_upstream_etcd_service(out, 4, "", "services/echo/x")); /* does not fit */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_discovered_name),
        cmocka_unit_test(test_etcd_service),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
