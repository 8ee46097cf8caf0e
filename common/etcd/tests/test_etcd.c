/* test_etcd.c - sluice/etcd.h without a server: registry values and key ranges. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "internal.h"
#include "sluice/etcd.h"

static sl_status parse(sl_etcd_endpoint *e, const char *s)
{
    return sl_etcd_parse_endpoint(e, (const uint8_t *)s, strlen(s));
}

static void test_registry_values(void **state)
{
    (void)state;
    sl_etcd_endpoint e;
    assert_int_equal(parse(&e, "{\"Addr\":\"10.0.0.1:8080\",\"Metadata\":{\"weight\":3,\"zone\":\"a\"}}"), SL_OK);
    assert_string_equal(e.address, "10.0.0.1");
    assert_int_equal(e.port, 8080);
    assert_string_equal(e.metadata, "{\"weight\":3,\"zone\":\"a\"}");
    sl_etcd_endpoint_deinit(&e);

    assert_int_equal(parse(&e, "{\"Addr\":\"[2001:db8::1]:443\",\"Metadata\":null}"), SL_OK);
    assert_string_equal(e.address, "2001:db8::1");
    assert_int_equal(e.port, 443);
    assert_null(e.metadata);
    sl_etcd_endpoint_deinit(&e);

    assert_int_equal(parse(&e, "{\"Addr\":\"backend.local:9000\"}"), SL_OK);
    assert_string_equal(e.address, "backend.local");
    sl_etcd_endpoint_deinit(&e);

    static const char *const bad[] = {"",
                                      "not json",
                                      "[]",
                                      "{\"Metadata\":{}}",
                                      "{\"Addr\":7}",
                                      "{\"Addr\":\"10.0.0.1\"}",
                                      "{\"Addr\":\"10.0.0.1:0\"}",
                                      "{\"Addr\":\"10.0.0.1:70000\"}",
                                      "{\"Addr\":\"10.0.0.1:80x\"}",
                                      "{\"Addr\":\":80\"}",
                                      "{\"Addr\":\"2001:db8::1:80\"}",
                                      "{\"Addr\":\"[::1]80\"}",
                                      "{\"Addr\":\"a:1\",\"Addr\":\"b:2\"}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(parse(&e, bad[i]), SL_ERR_PARSE);
        assert_null(e.metadata);
    }
}

static void test_prefix_end(void **state)
{
    (void)state;
    uint8_t end[16];
    assert_int_equal(sl_etcd_prefix_end(end, "svc/"), 4);
    assert_memory_equal(end, "svc0", 4);
    assert_int_equal(sl_etcd_prefix_end(end, "a\xff"), 1);
    assert_memory_equal(end, "b", 1);
    assert_int_equal(sl_etcd_prefix_end(end, "\xff\xff"), 1);
    assert_int_equal(end[0], 0);
    assert_int_equal(sl_etcd_prefix_end(end, ""), 1);
    assert_int_equal(end[0], 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_registry_values), cmocka_unit_test(test_prefix_end)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
