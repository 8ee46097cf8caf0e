/* libFuzzer target for the gRPC reflection response decoder (sluice/grpc_reflect.h): any bytes as a
 * ServerReflectionResponse; the file descriptors of a FILES answer go into a descriptor set and a
 * result is built from it.
 * Invariants (abort on violation): no crash or leak; every item lies inside the input; a decode
 * error leaves the response zeroed; a result lists no reflection or health service and its
 * descriptor set holds exactly the files added. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/grpc_reflect.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void inside(const sl_reflect_bytes *b, const uint8_t *data, size_t size)
{
    if (b->len && (b->data < data || b->data + b->len > data + size))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sl_reflect_response r;
    sl_reflect_files fs;
    sl_reflect_result res;
    if (size > 1 << 20)
        return 0;
    if (sl_reflect_response_decode(&r, data, size) != SL_OK) {
        if (r.items || r.n_items)
            abort();
        return 0;
    }
    inside(&r.error_message, data, size);
    sl_reflect_files_init(&fs);
    for (size_t i = 0; i < r.n_items; i++) {
        inside(&r.items[i], data, size);
        if (r.kind == SL_REFLECT_FILES)
            sl_reflect_files_add(&fs, r.items[i].data, r.items[i].len);
    }
    (void)sl_reflect_files_missing(&fs);
    if (sl_reflect_files_result(&res, &fs) == SL_OK) {
        if (res.n_files != fs.n)
            abort();
        for (size_t i = 0; i < res.n_services; i++)
            if (!strncmp(res.services[i].package, "grpc.reflection.", 16) ||
                !strcmp(res.services[i].package, "grpc.health.v1"))
                abort();
        sl_reflect_result_deinit(&res);
    }
    sl_reflect_files_deinit(&fs);
    sl_reflect_response_deinit(&r);
    return 0;
}
