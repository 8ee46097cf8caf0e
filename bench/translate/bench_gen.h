/* bench_gen.h - the generated configuration of the translator benchmarks
 * (bench_translate, bench_translate_write): upstream i ("up-<i>", dns, in
 * namespace default), its endpoint set (10 endpoints; salt shifts the
 * addresses, so a different salt is a changed set) and virtual service i
 * ("vs-<i>", domain vs-<i>.example.com, 10 prefix routes "<prefix>/<r>" to
 * upstreams (10i + r) mod n_up). Each message is allocated with malloc and
 * the default protobuf-c layout: free with protobuf_c_message_free_unpacked
 * (NULL allocator), or hand it to sl_tr_store_put(). */
#ifndef SLUICE_BENCH_GEN_H
#define SLUICE_BENCH_GEN_H

#include <protobuf-c/protobuf-c.h>

ProtobufCMessage *bench_gen_upstream(int i);
ProtobufCMessage *bench_gen_endpoints(int i, int salt);
ProtobufCMessage *bench_gen_vs(int i, int n_up, const char *prefix);

#endif
