/* libFuzzer target for what discovery decodes from DNS: a response message as c-ares hands it over, read
 * as an SRV answer (sl_dns_parse_srv, endpoint discovery) and its records put in order
 * (sl_dns_records_sort), and read as a PTR answer (sl_dns_parse_ptr, upstream discovery's DNS-SD).
 *
 * Input: the DNS message, as received. Invariants (abort on violation): no
 * crash or read past the input; SL_OK or SL_ERR_PARSE only; with records,
 * the outcome is SL_DNS_OK and every target is a non-empty string; the
 * sorted list has no two records with the same address and port, and
 * sorting it again changes nothing. As PTR: SL_OK or SL_ERR_PARSE; names
 * only with SL_DNS_OK, each non-empty, strictly increasing, and sorting
 * them again changes nothing. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/dns.h"

#define FUZZ_MAX_INPUT 65535

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_ptr(const uint8_t *msg, size_t size)
{
    char **names = NULL;
    size_t n = 0;
    uint32_t ttl;
    sl_dns_rcode rc;
    sl_status st = sl_dns_parse_ptr(&names, &n, &ttl, &rc, msg, size);
    if (st != SL_OK && st != SL_ERR_PARSE)
        abort();
    if (st != SL_OK && (names || n))
        abort();
    if (n && rc != SL_DNS_OK)
        abort();
    for (size_t i = 0; i < n; i++)
        if (!names[i] || !names[i][0] || (i && strcmp(names[i - 1], names[i]) >= 0))
            abort();
    size_t again = n;
    sl_dns_names_sort(names, &again);
    if (again != n)
        abort();
    sl_dns_names_free(names, n);
}

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
    check_ptr(copy, size);
    free(copy);
    return 0;
}
