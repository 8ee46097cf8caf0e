/* test_xds_cache.c - resources encoded once, snapshots, key escaping. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "xds_testlib.h"

static void test_escape_roundtrip(void **state)
{
    (void)state;
    char k[256], back[256];
    assert_int_equal(sl_xds_key_escape(k, sizeof k, "listener-::-8080"), SL_OK);
    assert_string_equal(k, "listener-=3A=3A-8080");
    assert_int_equal(sl_xds_key_unescape(back, sizeof back, k), SL_OK);
    assert_string_equal(back, "listener-::-8080");
    assert_int_equal(sl_xds_key_escape(k, sizeof k, "a.b/c=d~e f_g"), SL_OK);
    assert_string_equal(k, "a=2Eb=2Fc=3Dd=7Ee=20f_g");
    assert_int_equal(sl_xds_key_unescape(back, sizeof back, k), SL_OK);
    assert_string_equal(back, "a.b/c=d~e f_g");
    assert_int_equal(sl_xds_key_escape(k, sizeof k, ""), SL_ERR_INVALID);
    assert_int_equal(sl_xds_key_escape(k, 5, "abcdef"), SL_ERR_INVALID);
    assert_int_equal(sl_xds_key_unescape(back, sizeof back, "a=4"), SL_ERR_INVALID);
    assert_int_equal(sl_xds_key_unescape(back, sizeof back, "a=00"), SL_ERR_INVALID);
    assert_int_equal(sl_xds_key_unescape(back, sizeof back, "a.b"), SL_ERR_INVALID);
}

static void test_res_wire_forms(void **state)
{
    (void)state;
    size_t len;
    uint8_t *b = fx_cluster(&len, "c1", "svc");
    sl_xds_res *r;
    assert_int_equal(sl_xds_res_new(&r, SL_XDS_CLUSTER, "c1", "42", b, len), SL_OK);
    assert_string_equal(r->eds_name, "svc");
    /* sotw element: a DiscoveryResponse holding only this resource. */
    Envoy__Service__Discovery__V3__DiscoveryResponse *m =
        envoy__service__discovery__v3__discovery_response__unpack(NULL, r->sotw_len, r->sotw);
    assert_non_null(m);
    assert_int_equal(m->n_resources, 1);
    assert_string_equal(m->resources[0]->type_url, "type.googleapis.com/envoy.config.cluster.v3.Cluster");
    assert_memory_equal(m->resources[0]->value.data, b, len);
    envoy__service__discovery__v3__discovery_response__free_unpacked(m, NULL);
    Envoy__Service__Discovery__V3__DeltaDiscoveryResponse *d =
        envoy__service__discovery__v3__delta_discovery_response__unpack(NULL, r->delta_len, r->delta);
    assert_non_null(d);
    assert_int_equal(d->n_resources, 1);
    assert_string_equal(d->resources[0]->name, "c1");
    assert_string_equal(d->resources[0]->version, "42");
    assert_memory_equal(d->resources[0]->resource->value.data, b, len);
    envoy__service__discovery__v3__delta_discovery_response__free_unpacked(d, NULL);
    sl_xds_res_unref(r);
    /* Garbage is refused with a message naming the resource. */
    uint8_t junk[] = {0xff, 0xff, 0xff};
    assert_int_equal(sl_xds_res_new(&r, SL_XDS_LISTENER, "l1", "1", junk, sizeof junk), SL_ERR_PARSE);
    assert_non_null(strstr(sl_error_msg(), "l1"));
    /* Found by fuzz_xds_stream: bytes of a resource naming itself otherwise
     * than its key (a value written into the xds KV by hand) were served
     * under the key's name: a SotW client never finds what it asked for,
     * a delta Resource.name contradicts its resource. */
    assert_int_equal(sl_xds_res_new(&r, SL_XDS_CLUSTER, "c2", "1", b, len), SL_ERR_INVALID);
    assert_non_null(strstr(sl_error_msg(), "names itself \"c1\""));
    assert_int_equal(sl_xds_res_new(&r, SL_XDS_LISTENER, "l1", "1", (const uint8_t *)"", 0), SL_ERR_INVALID);
    free(b);
}

static int commits;
static void on_commit(void *ud, const char *proxy)
{
    (void)ud;
    (void)proxy;
    commits++;
}

static void test_snapshot_and_cache(void **state)
{
    (void)state;
    sl_xds_cache *c;
    sl_xds_snapshot *s;
    assert_int_equal(sl_xds_cache_new(&c, on_commit, NULL), SL_OK);
    assert_int_equal(sl_xds_snapshot_new(&s, "p", 1), SL_OK);
    sl_xds_res *a = fx_res(SL_XDS_ROUTE, "a", "1", NULL), *b = fx_res(SL_XDS_ROUTE, "b", "2", NULL);
    sl_xds_snapshot_add(s, b);
    sl_xds_snapshot_add(s, a);
    assert_int_equal(sl_xds_snapshot_seal(s), SL_OK);
    assert_ptr_equal(s->types[SL_XDS_ROUTE].v[0], a);
    assert_ptr_equal(sl_xds_snapshot_find(s, SL_XDS_ROUTE, "b"), b);
    assert_null(sl_xds_snapshot_find(s, SL_XDS_ROUTE, "c"));
    char v1[17];
    strcpy(v1, s->types[SL_XDS_ROUTE].version);
    sl_xds_cache_commit(c, s);
    assert_int_equal(commits, 1);
    assert_null(sl_xds_cache_get(c, "other"));
    sl_xds_snapshot *g = sl_xds_cache_get(c, "p");
    assert_ptr_equal(g, s);
    /* Same content -> same version; duplicates are refused. */
    sl_xds_snapshot *s2;
    sl_xds_snapshot_new(&s2, "p", 2);
    sl_xds_snapshot_add(s2, a);
    sl_xds_snapshot_add(s2, b);
    assert_int_equal(sl_xds_snapshot_seal(s2), SL_OK);
    assert_string_equal(s2->types[SL_XDS_ROUTE].version, v1);
    sl_xds_snapshot_add(s2, a);
    assert_int_equal(sl_xds_snapshot_seal(s2), SL_ERR_INVALID);
    sl_xds_snapshot_unref(s2);
    /* A reader keeps its snapshot after a newer commit. */
    sl_xds_snapshot *s3;
    sl_xds_snapshot_new(&s3, "p", 3);
    sl_xds_snapshot_seal(s3);
    sl_xds_cache_commit(c, s3);
    assert_int_equal(g->types[SL_XDS_ROUTE].n, 2);
    sl_xds_snapshot_unref(g);
    assert_int_equal(sl_xds_cache_count(c), 1);
    sl_xds_res_unref(a);
    sl_xds_res_unref(b);
    sl_xds_cache_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_escape_roundtrip),
        cmocka_unit_test(test_res_wire_forms),
        cmocka_unit_test(test_snapshot_and_cache),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
