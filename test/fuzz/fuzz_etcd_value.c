/* libFuzzer target for the etcd registry values endpoint discovery decodes (sl_etcd_parse_endpoint:
 * {"Addr": "host:port", "Metadata": ...}, the go.etcd.io/etcd/client/v3/naming/endpoints convention).
 *
 * Input: the value bytes. Invariants (abort on violation): no crash; SL_OK
 * or SL_ERR_PARSE only; on SL_OK a non-empty address without '[' and a
 * port from 1 to 65535, and the Metadata read within its ranges (priority
 * 0-127, a known health, at most 64 labels sorted by key); on error
 * nothing is left allocated. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/etcd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sl_etcd_endpoint e;
    sl_status st = sl_etcd_parse_endpoint(&e, data, size);
    if (st != SL_OK && st != SL_ERR_PARSE)
        abort();
    if (st == SL_OK && (!e.address[0] || strchr(e.address, '[') || e.port == 0))
        abort();
    if (st == SL_OK && (e.priority > 127 || e.health > SL_ETCD_HEALTH_DRAINING || e.n_labels > SL_ETCD_MAX_LABELS))
        abort();
    for (size_t i = 1; st == SL_OK && i < e.n_labels; i++)
        if (strcmp(e.label_keys[i - 1], e.label_keys[i]) >= 0)
            abort();
    if (st != SL_OK && (e.metadata || e.label_keys || e.region || e.zone || e.sub_zone))
        abort();
    sl_etcd_endpoint_deinit(&e);
    return 0;
}
