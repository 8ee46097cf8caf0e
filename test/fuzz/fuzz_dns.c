/* libFuzzer target for what endpoint discovery decodes from DNS: a response message as c-ares hands it
 * over (sl_dns_parse_srv), then the records it gives put in order (sl_dns_records_sort).
 *
 * Input: the DNS message, as received. Invariants (abort on violation): no
 * crash or read past the input; SL_OK or SL_ERR_PARSE only; with records,
 * the outcome is SL_DNS_OK and every target is a non-empty string; the
 * sorted list has no two records with the same address and port, and
 * sorting it again changes nothing. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/dns.h"

#define FUZZ_MAX_INPUT 65535

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sl_dns_srv *v = NULL;
    size_t n = 0;
    sl_dns_rcode rc;
    if (size > FUZZ_MAX_INPUT)
        return 0;
    /* An exact-size copy, so that a read past the end is caught. */
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy)
        return 0;
    memcpy(copy, data, size);
    sl_status st = sl_dns_parse_srv(&v, &n, &rc, copy, size);
    if (st != SL_OK && st != SL_ERR_PARSE)
        abort();
    if (st == SL_OK && n && rc != SL_DNS_OK)
        abort();
    /* Records as an SRV answer would give them: addresses made from the
     * targets' bytes, so that duplicates and both families occur. */
    sl_dns_record *recs = calloc(n ? n : 1, sizeof *recs);
    for (size_t i = 0; recs && i < n; i++) {
        if (!v[i].target || !v[i].target[0])
            abort();
        unsigned char h = (unsigned char)v[i].target[0];
        if (h & 1)
            snprintf(recs[i].address, sizeof recs[i].address, "10.0.%u.%u", h >> 4, h & 7);
        else
            snprintf(recs[i].address, sizeof recs[i].address, "2001:db8::%x", h & 7);
        recs[i].port = v[i].port;
        recs[i].priority = v[i].priority;
        recs[i].weight = v[i].weight;
        recs[i].ttl = v[i].ttl;
        recs[i].hostname = strdup(v[i].target);
    }
    size_t m = n;
    if (recs) {
        sl_dns_records_sort(recs, &m);
        for (size_t i = 1; i < m; i++)
            if (!strcmp(recs[i].address, recs[i - 1].address) && recs[i].port == recs[i - 1].port)
                abort();
        size_t again = m;
        sl_dns_records_sort(recs, &again);
        if (again != m)
            abort();
        for (size_t i = 0; i < m; i++)
            free(recs[i].hostname);
    }
    free(recs);
    sl_dns_srv_free(v, n);
    free(copy);
    return 0;
}
