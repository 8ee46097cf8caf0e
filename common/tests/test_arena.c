/* The arena hands out aligned memory, gives big allocations their own
 * chunk, releases everything at reset, and unpacks protobuf messages. */
#include <setjmp.h>
#include <stdalign.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "sluice/arena.h"
#include "envoy/config/endpoint/v3/endpoint.pb-c.h"

static void many_small_allocations_are_aligned_and_distinct(void **state)
{
    sl_arena a;
    unsigned char *prev = NULL;

    sl_arena_init(&a, 1024);
    for (size_t i = 0; i < 10000; i++) {
        size_t n = 1 + i % 37;
        unsigned char *p = sl_arena_alloc(&a, n);
        assert_non_null(p);
        assert_int_equal((uintptr_t)p % alignof(max_align_t), 0);
        assert_ptr_not_equal(p, prev);
        memset(p, (int)(i & 0xff), n); /* ASan catches overlap past the chunk */
        prev = p;
    }
    assert_true(sl_arena_used(&a) > 10000);
    assert_true(sl_arena_reserved(&a) >= sl_arena_used(&a));
    sl_arena_deinit(&a);
}

static void zero_size_gives_unique_pointers(void **state)
{
    sl_arena a;
    sl_arena_init(&a, 0);
    void *p = sl_arena_alloc(&a, 0);
    void *q = sl_arena_alloc(&a, 0);
    assert_non_null(p);
    assert_non_null(q);
    assert_ptr_not_equal(p, q);
    sl_arena_deinit(&a);
}

static void big_allocations_get_their_own_chunk(void **state)
{
    sl_arena a;
    sl_arena_init(&a, 1024);

    char *small1 = sl_arena_alloc(&a, 16);
    char *big = sl_arena_alloc(&a, 100000);
    char *small2 = sl_arena_alloc(&a, 16);
    assert_non_null(big);
    assert_int_equal((uintptr_t)big % alignof(max_align_t), 0);
    memset(big, 0xab, 100000);
    /* The small allocations keep sharing the standard chunk. */
    assert_int_equal(small2 - small1, (ptrdiff_t)alignof(max_align_t));
    assert_true(sl_arena_reserved(&a) >= 100000 + 1024);

    /* Reset frees the big chunk and keeps the standard one. */
    sl_arena_reset(&a);
    assert_int_equal(sl_arena_used(&a), 0);
    assert_true(sl_arena_reserved(&a) < 100000);
    assert_true(sl_arena_reserved(&a) >= 1024);
    sl_arena_deinit(&a);
    assert_int_equal(sl_arena_reserved(&a), 0);
}

static void reset_reuses_and_bounds_spare_chunks(void **state)
{
    sl_arena a;
    sl_arena_init(&a, 256);

    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 200; i++)
            assert_non_null(sl_arena_alloc(&a, 48));
        sl_arena_reset(&a);
        /* At most four spare chunks survive a reset. */
        assert_true(sl_arena_reserved(&a) <= 4 * 256);
    }
    char *s = sl_arena_strdup(&a, "hello");
    assert_string_equal(s, "hello");
    sl_arena_deinit(&a);
}

/* A ClusterLoadAssignment with n endpoints, packed. */
static uint8_t *pack_cla(size_t *len, size_t n)
{
    Envoy__Config__Endpoint__V3__ClusterLoadAssignment cla =
        ENVOY__CONFIG__ENDPOINT__V3__CLUSTER_LOAD_ASSIGNMENT__INIT;
    Envoy__Config__Endpoint__V3__LocalityLbEndpoints loc =
        ENVOY__CONFIG__ENDPOINT__V3__LOCALITY_LB_ENDPOINTS__INIT;
    Envoy__Config__Endpoint__V3__LocalityLbEndpoints *locs[1] = {&loc};
    Envoy__Config__Endpoint__V3__LbEndpoint *lbes = calloc(n, sizeof(*lbes));
    Envoy__Config__Endpoint__V3__LbEndpoint **lbp = calloc(n, sizeof(*lbp));
    Envoy__Config__Endpoint__V3__Endpoint *eps = calloc(n, sizeof(*eps));
    Envoy__Config__Core__V3__Address *addrs = calloc(n, sizeof(*addrs));
    Envoy__Config__Core__V3__SocketAddress *sas = calloc(n, sizeof(*sas));
    char (*names)[32] = calloc(n, sizeof(*names));
    uint8_t *buf;

    for (size_t i = 0; i < n; i++) {
        envoy__config__core__v3__socket_address__init(&sas[i]);
        snprintf(names[i], sizeof(names[i]), "10.0.%zu.%zu", i / 250, i % 250);
        sas[i].address = names[i];
        sas[i].port_specifier_case = ENVOY__CONFIG__CORE__V3__SOCKET_ADDRESS__PORT_SPECIFIER_PORT_VALUE;
        sas[i].port_value = (uint32_t)(8000 + i);
        envoy__config__core__v3__address__init(&addrs[i]);
        addrs[i].address_case = ENVOY__CONFIG__CORE__V3__ADDRESS__ADDRESS_SOCKET_ADDRESS;
        addrs[i].socket_address = &sas[i];
        envoy__config__endpoint__v3__endpoint__init(&eps[i]);
        eps[i].address = &addrs[i];
        envoy__config__endpoint__v3__lb_endpoint__init(&lbes[i]);
        lbes[i].host_identifier_case = ENVOY__CONFIG__ENDPOINT__V3__LB_ENDPOINT__HOST_IDENTIFIER_ENDPOINT;
        lbes[i].endpoint = &eps[i];
        lbp[i] = &lbes[i];
    }
    loc.n_lb_endpoints = n;
    loc.lb_endpoints = lbp;
    cla.cluster_name = "backend_default";
    cla.n_endpoints = 1;
    cla.endpoints = locs;

    *len = envoy__config__endpoint__v3__cluster_load_assignment__get_packed_size(&cla);
    buf = malloc(*len);
    envoy__config__endpoint__v3__cluster_load_assignment__pack(&cla, buf);
    free(lbes);
    free(lbp);
    free(eps);
    free(addrs);
    free(sas);
    free(names);
    return buf;
}

static void unpacks_a_message_and_releases_it_at_reset(void **state)
{
    sl_arena a;
    size_t len;
    uint8_t *buf = pack_cla(&len, 1000);
    ProtobufCMessage *m = NULL;

    sl_arena_init(&a, 4096);
    for (int round = 0; round < 3; round++) {
        assert_int_equal(sl_arena_unpack(&m, &a, &envoy__config__endpoint__v3__cluster_load_assignment__descriptor,
                                         buf, len),
                         SL_OK);
        Envoy__Config__Endpoint__V3__ClusterLoadAssignment *cla = (void *)m;
        assert_string_equal(cla->cluster_name, "backend_default");
        assert_int_equal(cla->n_endpoints, 1);
        assert_int_equal(cla->endpoints[0]->n_lb_endpoints, 1000);
        Envoy__Config__Endpoint__V3__LbEndpoint *last = cla->endpoints[0]->lb_endpoints[999];
        assert_string_equal(last->endpoint->address->socket_address->address, "10.0.3.249");
        assert_int_equal(last->endpoint->address->socket_address->port_value, 8999);
        assert_true(sl_arena_used(&a) > len);
        sl_arena_reset(&a);
        assert_int_equal(sl_arena_used(&a), 0);
    }
    sl_arena_deinit(&a);
    free(buf);
}

static void bad_payload_is_a_parse_error(void **state)
{
    sl_arena a;
    ProtobufCMessage *m = NULL;
    /* field 1 (cluster_name), length-delimited, claims 100 bytes, has 2 */
    static const uint8_t bad[] = {0x0a, 100, 'a', 'b'};

    sl_arena_init(&a, 0);
    assert_int_equal(sl_arena_unpack(&m, &a, &envoy__config__endpoint__v3__cluster_load_assignment__descriptor,
                                     bad, sizeof(bad)),
                     SL_ERR_PARSE);
    assert_null(m);
    assert_non_null(strstr(sl_error_msg(), "envoy.config.endpoint.v3.ClusterLoadAssignment"));
    sl_arena_deinit(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(many_small_allocations_are_aligned_and_distinct),
        cmocka_unit_test(zero_size_gives_unique_pointers),
        cmocka_unit_test(big_allocations_get_their_own_chunk),
        cmocka_unit_test(reset_reuses_and_bounds_spare_chunks),
        cmocka_unit_test(unpacks_a_message_and_releases_it_at_reset),
        cmocka_unit_test(bad_payload_is_a_parse_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
