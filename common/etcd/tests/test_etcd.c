/* test_etcd.c - sluice/etcd.h without a server: registry values and key ranges. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <stdio.h>
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

/* What Sluice reads from Metadata; what it does not understand is a
 * warning naming the member, and the endpoint stays usable. */
static void test_registry_metadata(void **state)
{
    (void)state;
    sl_etcd_endpoint e;
    assert_int_equal(parse(&e, "{\"Addr\":\"10.0.0.1:80\",\"Metadata\":{\"weight\":3,\"priority\":1,"
                               "\"health\":\"Draining\",\"locality\":{\"region\":\"eu\",\"zone\":\"a\","
                               "\"subZone\":\"r1\"},\"labels\":{\"version\":\"v2\",\"app\":\"echo\"},"
                               "\"owner\":{\"team\":1}}}"),
                     SL_OK);
    assert_int_equal(e.weight, 3);
    assert_int_equal(e.priority, 1);
    assert_int_equal(e.health, SL_ETCD_HEALTH_DRAINING);
    assert_string_equal(e.region, "eu");
    assert_string_equal(e.zone, "a");
    assert_string_equal(e.sub_zone, "r1");
    assert_int_equal(e.n_labels, 2);
    assert_string_equal(e.label_keys[0], "app"); /* sorted */
    assert_string_equal(e.label_values[0], "echo");
    assert_string_equal(e.label_keys[1], "version");
    assert_string_equal(e.label_values[1], "v2");
    assert_string_equal(e.warning, "");
    sl_etcd_endpoint_deinit(&e);

    /* gRPC-Go's Metadata is any value: not an object is the application's */
    assert_int_equal(parse(&e, "{\"Addr\":\"10.0.0.1:80\",\"Metadata\":\"v1\"}"), SL_OK);
    assert_int_equal(e.weight, 0);
    assert_string_equal(e.warning, "");
    sl_etcd_endpoint_deinit(&e);

    static const struct {
        const char *md, *warning;
    } bad[] = {
        {"{\"weight\":0}", "Metadata.weight: want an integer from 1 to 4294967295"},
        {"{\"weight\":\"3\"}", "Metadata.weight: want an integer from 1 to 4294967295"},
        {"{\"priority\":128}", "Metadata.priority: want an integer from 0 to 127"},
        {"{\"health\":\"fine\"}", "Metadata.health: want \"healthy\", \"unhealthy\", \"draining\" or \"unknown\""},
        {"{\"zone\":7}", "Metadata.zone: want a string of at most 128 bytes"},
        {"{\"locality\":{\"subZone\":[]}}", "Metadata.locality.subZone: want a string of at most 128 bytes"},
        {"{\"locality\":\"eu\"}", "Metadata.locality: want an object {region, zone, subZone}"},
        {"{\"labels\":{\"v\":2}}", "Metadata.labels: want string keys and values of at most 128 bytes"},
        {"{\"labels\":[]}", "Metadata.labels: want an object of at most 64 string values"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char v[256];
        snprintf(v, sizeof v, "{\"Addr\":\"10.0.0.1:80\",\"Metadata\":%s}", bad[i].md);
        assert_int_equal(parse(&e, v), SL_OK);
        assert_string_equal(e.warning, bad[i].warning);
        assert_int_equal(e.weight, 0);
        assert_int_equal(e.n_labels, 0);
        sl_etcd_endpoint_deinit(&e);
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
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_registry_values), cmocka_unit_test(test_registry_metadata),
                                       cmocka_unit_test(test_prefix_end)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
