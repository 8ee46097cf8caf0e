/* internal.h - what client.c shares with watch.c inside sluice_etcd (private). */
#ifndef SLUICE_ETCD_INTERNAL_H
#define SLUICE_ETCD_INTERNAL_H

#include <grpc/grpc.h>
#include <stddef.h>
#include <stdint.h>

#include "etcd/api/mvccpb/kv.pb-c.h"
#include "sluice/etcd.h"

/* The client's channel (owned by c). */
grpc_channel *sl_etcd_channel(sl_etcd *c);

/* Copies kv (NULL: an empty one) into *out (key and value malloc'd). */
sl_status sl_etcd_kv_copy(sl_etcd_kv *out, const Mvccpb__KeyValue *kv);

/* Writes into end (strlen(prefix) + 1 bytes) the end of the key range of
 * every key starting with prefix; returns its length. */
size_t sl_etcd_prefix_end(uint8_t *end, const char *prefix);

#endif
