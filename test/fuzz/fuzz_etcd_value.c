/* libFuzzer target for the etcd registry values endpoint discovery decodes (sl_etcd_parse_endpoint:
 * {"Addr": "host:port", "Metadata": ...}, the go.etcd.io/etcd/client/v3/naming/endpoints convention).
 *
 * Input: the value bytes. Invariants (abort on violation): no crash; SL_OK
 * or SL_ERR_PARSE only; on SL_OK a non-empty address without '[' and a
 * port from 1 to 65535; on error nothing is left allocated. */
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
    if (st != SL_OK && e.metadata)
        abort();
    sl_etcd_endpoint_deinit(&e);
    return 0;
}
