/* Unit tests of sluice_grpcreflect's codec: requests, responses (good, errors, malformed), descriptor sets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "google/protobuf/descriptor.pb-c.h"
#include "sluice/grpc_reflect.h"

static void test_request(void **state)
{
    (void)state;
    uint8_t *p;
    size_t n;
    assert_int_equal(sl_reflect_request_encode(&p, &n, SL_REFLECT_REQ_LIST_SERVICES, "*"), SL_OK);
    assert_int_equal(n, 3);
    assert_memory_equal(p, "\x3a\x01*", 3);
    free(p);
    assert_int_equal(sl_reflect_request_encode(&p, &n, SL_REFLECT_REQ_SYMBOL, "a.B"), SL_OK);
    assert_memory_equal(p, "\x22\x03" "a.B", 5);
    free(p);
}

static void test_responses(void **state)
{
    (void)state;
    sl_reflect_response r;
    /* valid_host, then list_services_response {service {name: "a.B"}, service {name: "c.D"}} */
    const uint8_t list[] = {0x0a, 0x01, 'h', 0x32, 0x0e, 0x0a, 0x05, 0x0a, 0x03, 'a', '.', 'B',
                            0x0a, 0x05, 0x0a, 0x03, 'c', '.', 'D'};
    assert_int_equal(sl_reflect_response_decode(&r, list, sizeof list), SL_OK);
    assert_int_equal(r.kind, SL_REFLECT_LIST);
    assert_int_equal(r.n_items, 2);
    assert_memory_equal(r.items[1].data, "c.D", 3);
    sl_reflect_response_deinit(&r);
    /* file_descriptor_response {file_descriptor_proto: "xy"} */
    const uint8_t files[] = {0x22, 0x04, 0x0a, 0x02, 'x', 'y'};
    assert_int_equal(sl_reflect_response_decode(&r, files, sizeof files), SL_OK);
    assert_int_equal(r.kind, SL_REFLECT_FILES);
    assert_int_equal(r.n_items, 1);
    assert_int_equal(r.items[0].len, 2);
    sl_reflect_response_deinit(&r);
    /* error_response {error_code: 5, error_message: "nf"} */
    const uint8_t err[] = {0x3a, 0x06, 0x08, 0x05, 0x12, 0x02, 'n', 'f'};
    assert_int_equal(sl_reflect_response_decode(&r, err, sizeof err), SL_OK);
    assert_int_equal(r.kind, SL_REFLECT_ERROR);
    assert_int_equal(r.error_code, 5);
    sl_reflect_response_deinit(&r);
    /* malformed: a length past the end, a truncated varint, nested garbage */
    const uint8_t bad1[] = {0x32, 0x7f, 0x0a};
    const uint8_t bad2[] = {0x08, 0xff};
    const uint8_t bad3[] = {0x32, 0x02, 0x0a, 0x09};
    assert_int_equal(sl_reflect_response_decode(&r, bad1, sizeof bad1), SL_ERR_PARSE);
    assert_int_equal(sl_reflect_response_decode(&r, bad2, sizeof bad2), SL_ERR_PARSE);
    assert_int_equal(sl_reflect_response_decode(&r, bad3, sizeof bad3), SL_ERR_PARSE);
    assert_null(r.items);
}

static uint8_t *file(size_t *len, const char *name, const char *package, const char *dep, const char *svc)
{
    Google__Protobuf__FileDescriptorProto f = GOOGLE__PROTOBUF__FILE_DESCRIPTOR_PROTO__INIT;
    Google__Protobuf__ServiceDescriptorProto s = GOOGLE__PROTOBUF__SERVICE_DESCRIPTOR_PROTO__INIT, *sp = &s;
    Google__Protobuf__MethodDescriptorProto m1 = GOOGLE__PROTOBUF__METHOD_DESCRIPTOR_PROTO__INIT,
                                            m2 = GOOGLE__PROTOBUF__METHOD_DESCRIPTOR_PROTO__INIT, *ms[] = {&m1, &m2};
    char *deps[] = {(char *)dep};
    f.name = (char *)name;
    f.package = (char *)package;
    if (dep) {
        f.dependency = deps;
        f.n_dependency = 1;
    }
    if (svc) {
        s.name = (char *)svc;
        m1.name = "GetShelf";
        m2.name = "ListShelves";
        s.method = ms;
        s.n_method = 2;
        f.service = &sp;
        f.n_service = 1;
    }
    *len = protobuf_c_message_get_packed_size(&f.base);
    uint8_t *b = malloc(*len);
    protobuf_c_message_pack(&f.base, b);
    return b;
}

static void test_files(void **state)
{
    (void)state;
    sl_reflect_files fs;
    sl_reflect_result r;
    size_t l1, l2, l3;
    uint8_t *a = file(&l1, "shop/v1/shop.proto", "shop.v1", "google/protobuf/empty.proto", "Shop");
    uint8_t *b = file(&l2, "google/protobuf/empty.proto", "google.protobuf", NULL, NULL);
    uint8_t *c = file(&l3, "grpc/health/v1/health.proto", "grpc.health.v1", NULL, "Health");
    sl_reflect_files_init(&fs);
    assert_int_equal(sl_reflect_files_add(&fs, a, l1), SL_OK);
    assert_int_equal(sl_reflect_files_add(&fs, a, l1), SL_OK); /* once */
    assert_string_equal(sl_reflect_files_missing(&fs), "google/protobuf/empty.proto");
    assert_int_equal(sl_reflect_files_add(&fs, b, l2), SL_OK);
    assert_int_equal(sl_reflect_files_add(&fs, c, l3), SL_OK);
    assert_null(sl_reflect_files_missing(&fs));
    assert_int_equal(sl_reflect_files_add(&fs, (const uint8_t *)"\x0a\x7f", 2), SL_ERR_PARSE);
    assert_int_equal(sl_reflect_files_result(&r, &fs), SL_OK);
    assert_int_equal(r.n_services, 1); /* health left out */
    assert_string_equal(r.services[0].package, "shop.v1");
    assert_string_equal(r.services[0].name, "Shop");
    assert_int_equal(r.services[0].n_methods, 2);
    assert_string_equal(r.services[0].methods[1], "ListShelves");
    assert_int_equal(r.n_files, 3);
    Google__Protobuf__FileDescriptorSet *set = google__protobuf__file_descriptor_set__unpack(NULL, r.len, r.descriptors);
    assert_non_null(set);
    assert_int_equal(set->n_file, 3);
    assert_string_equal(set->file[1]->name, "google/protobuf/empty.proto");
    google__protobuf__file_descriptor_set__free_unpacked(set, NULL);
    sl_reflect_result_deinit(&r);
    sl_reflect_files_deinit(&fs);
    free(a);
    free(b);
    free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request),
        cmocka_unit_test(test_responses),
        cmocka_unit_test(test_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
