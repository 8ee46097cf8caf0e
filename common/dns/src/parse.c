/* parse.c - the pure half of sluice/dns.h: outcome codes, SRV and PTR answers, record and name order. */
#include <arpa/inet.h>
#include <ares.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/dns.h"
#include "sluice/vec.h"

const char *sl_dns_rcode_str(sl_dns_rcode rc)
{
    switch (rc) {
    case SL_DNS_OK: return "ok";
    case SL_DNS_NXDOMAIN: return "NXDOMAIN";
    case SL_DNS_NODATA: return "NODATA";
    case SL_DNS_TIMEOUT: return "timeout";
    case SL_DNS_SERVFAIL: return "SERVFAIL";
    case SL_DNS_REFUSED: return "REFUSED";
    case SL_DNS_UNREACHABLE: return "unreachable";
    case SL_DNS_BADRESP: return "bad response";
    case SL_DNS_CANCELLED: return "cancelled";
    case SL_DNS_ERROR: break;
    }
    return "error";
}

bool sl_dns_rcode_answered(sl_dns_rcode rc)
{
    return rc == SL_DNS_OK || rc == SL_DNS_NXDOMAIN || rc == SL_DNS_NODATA;
}

sl_dns_rcode sl_dns_rcode_from_ares(int s)
{
    switch (s) {
    case ARES_SUCCESS: return SL_DNS_OK;
    case ARES_ENOTFOUND: return SL_DNS_NXDOMAIN;
    case ARES_ENODATA: return SL_DNS_NODATA;
    case ARES_ETIMEOUT: return SL_DNS_TIMEOUT;
    case ARES_ESERVFAIL: return SL_DNS_SERVFAIL;
    case ARES_EREFUSED:
    case ARES_ENOTIMP: return SL_DNS_REFUSED;
    case ARES_ECONNREFUSED:
    case ARES_EOF: return SL_DNS_UNREACHABLE;
    case ARES_EBADRESP:
    case ARES_EFORMERR: return SL_DNS_BADRESP;
    case ARES_EDESTRUCTION:
    case ARES_ECANCELLED: return SL_DNS_CANCELLED;
    default: return SL_DNS_ERROR;
    }
}

void sl_dns_result_free(sl_dns_result *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n_records; i++)
        free(r->records[i].hostname);
    free(r->records);
    sl_dns_names_free(r->names, r->n_names);
    free(r);
}

void sl_dns_srv_free(sl_dns_srv *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        free(v[i].target);
    free(v);
}

static uint16_t rd16(const uint8_t *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}

static uint32_t rd32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* Skips the (possibly compressed) name at *pos; false when it runs past alen. */
static bool skip_name(const uint8_t *abuf, size_t alen, size_t *pos)
{
    char *s = NULL;
    long enclen = 0;
    if (*pos >= alen || ares_expand_name(abuf + *pos, abuf, (int)alen, &s, &enclen) != ARES_SUCCESS)
        return false;
    ares_free_string(s);
    if (enclen <= 0 || (size_t)enclen > alen - *pos)
        return false;
    *pos += (size_t)enclen;
    return true;
}

/* One SRV rdata of rdlen bytes at abuf[pos] into *r. */
static sl_status parse_srv_rdata(sl_dns_srv *r, const uint8_t *abuf, size_t alen, size_t pos, size_t rdlen)
{
    char *s = NULL;
    long enclen = 0;
    if (rdlen < 7)
        return sl_error_set(SL_ERR_PARSE, "SRV record of %zu bytes at offset %zu", rdlen, pos);
    r->priority = rd16(abuf + pos);
    r->weight = rd16(abuf + pos + 2);
    r->port = rd16(abuf + pos + 4);
    if (ares_expand_name(abuf + pos + 6, abuf, (int)alen, &s, &enclen) != ARES_SUCCESS)
        return sl_error_set(SL_ERR_PARSE, "bad SRV target name at offset %zu", pos + 6);
    if (enclen <= 0 || (size_t)enclen > rdlen - 6 || !s[0]) {
        ares_free_string(s);
        return sl_error_set(SL_ERR_PARSE, "bad SRV target name at offset %zu", pos + 6);
    }
    r->target = strdup(s);
    ares_free_string(s);
    return r->target ? SL_OK : SL_ERR_NOMEM;
}

static sl_dns_rcode header_rcode(unsigned code, unsigned ancount)
{
    switch (code) {
    case 0: return ancount ? SL_DNS_OK : SL_DNS_NODATA;
    case 2: return SL_DNS_SERVFAIL;
    case 3: return SL_DNS_NXDOMAIN;
    case 4:
    case 5: return SL_DNS_REFUSED;
    default: return SL_DNS_BADRESP;
    }
}

/* Called for each answer record of the type walked: rdlen bytes at abuf[pos]. */
typedef sl_status (*rdata_fn)(void *ud, const uint8_t *abuf, size_t alen, size_t pos, size_t rdlen, uint32_t ttl);

/* Walks the answer section of a response, calling fn for every IN record
 * of type (others are skipped); *answers gets the answer count the header
 * claims. SL_ERR_PARSE for a truncated or malformed message, never read
 * beyond alen; fn's errors end the walk. */
static sl_status walk_answers(const uint8_t *abuf, size_t alen, uint16_t want, rdata_fn fn, void *ud)
{
    size_t pos = 12;
    if (!abuf || alen < 12 || alen > 65535)
        return sl_error_set(SL_ERR_PARSE, "DNS message of %zu bytes", alen);
    unsigned qd = rd16(abuf + 4), an = rd16(abuf + 6);
    for (unsigned i = 0; i < qd; i++) {
        if (!skip_name(abuf, alen, &pos) || alen - pos < 4)
            return sl_error_set(SL_ERR_PARSE, "truncated question %u at offset %zu", i, pos);
        pos += 4;
    }
    for (unsigned i = 0; i < an; i++) {
        if (!skip_name(abuf, alen, &pos) || alen - pos < 10)
            return sl_error_set(SL_ERR_PARSE, "truncated answer %u at offset %zu", i, pos);
        uint16_t type = rd16(abuf + pos), cls = rd16(abuf + pos + 2);
        uint32_t ttl = rd32(abuf + pos + 4);
        size_t rdlen = rd16(abuf + pos + 8);
        pos += 10;
        if (rdlen > alen - pos)
            return sl_error_set(SL_ERR_PARSE, "answer %u: %zu bytes of data past the end", i, rdlen);
        if (type == want && cls == 1 /* IN */) {
            sl_status rc = fn(ud, abuf, alen, pos, rdlen, ttl > 0x7fffffffu ? 0 : ttl); /* RFC 2181: top bit set is 0 */
            if (rc != SL_OK)
                return rc;
        }
        pos += rdlen;
    }
    return SL_OK;
}

typedef struct srv_acc {
    sl_dns_srv *v;
    size_t n, cap;
} srv_acc;

static sl_status add_srv(void *ud, const uint8_t *abuf, size_t alen, size_t pos, size_t rdlen, uint32_t ttl)
{
    srv_acc *a = ud;
    sl_status rc;
    if (SL_VEC_RESERVE(a->v, a->cap, a->n + 1) != SL_OK)
        return SL_ERR_NOMEM;
    memset(&a->v[a->n], 0, sizeof a->v[a->n]);
    if ((rc = parse_srv_rdata(&a->v[a->n], abuf, alen, pos, rdlen)) == SL_OK)
        a->v[a->n++].ttl = ttl;
    return rc;
}

sl_status sl_dns_parse_srv(sl_dns_srv **out, size_t *n, sl_dns_rcode *rcode, const uint8_t *abuf, size_t alen)
{
    srv_acc a = {0};
    sl_status rc = walk_answers(abuf, alen, 33 /* SRV */, add_srv, &a);

    *out = NULL;
    *n = 0;
    *rcode = SL_DNS_BADRESP;
    if (rc != SL_OK) {
        sl_dns_srv_free(a.v, a.n);
        return rc;
    }
    *rcode = header_rcode(abuf[3] & 0x0f, (unsigned)a.n);
    if (*rcode != SL_DNS_OK) {
        /* an error response's answer section is not an answer (found by
         * fuzz_dns: records came back with a failure code) */
        sl_dns_srv_free(a.v, a.n);
        return SL_OK;
    }
    *out = a.v;
    *n = a.n;
    return SL_OK;
}

typedef struct ptr_acc {
    char **v;
    size_t n, cap;
    uint32_t ttl;
} ptr_acc;

static sl_status add_ptr(void *ud, const uint8_t *abuf, size_t alen, size_t pos, size_t rdlen, uint32_t ttl)
{
    ptr_acc *a = ud;
    char *s = NULL;
    long enclen = 0;
    if (ares_expand_name(abuf + pos, abuf, (int)alen, &s, &enclen) != ARES_SUCCESS)
        return sl_error_set(SL_ERR_PARSE, "bad PTR name at offset %zu", pos);
    if (enclen <= 0 || (size_t)enclen > rdlen || !s[0]) {
        ares_free_string(s);
        return sl_error_set(SL_ERR_PARSE, "bad PTR name at offset %zu", pos);
    }
    if (SL_VEC_RESERVE(a->v, a->cap, a->n + 1) != SL_OK || !(a->v[a->n] = strdup(s))) {
        ares_free_string(s);
        return SL_ERR_NOMEM;
    }
    ares_free_string(s);
    a->n++;
    if (a->n == 1 || ttl < a->ttl)
        a->ttl = ttl;
    return SL_OK;
}

void sl_dns_names_free(char **v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        free(v[i]);
    free(v);
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

void sl_dns_names_sort(char **v, size_t *n)
{
    size_t k = 0;
    if (!v || *n < 2)
        return;
    qsort(v, *n, sizeof *v, name_cmp);
    for (size_t i = 1; i < *n; i++) {
        if (!strcmp(v[i], v[k])) {
            free(v[i]);
            continue;
        }
        v[++k] = v[i];
    }
    *n = k + 1;
}

sl_status sl_dns_parse_ptr(char ***out, size_t *n, uint32_t *ttl, sl_dns_rcode *rcode, const uint8_t *abuf,
                           size_t alen)
{
    ptr_acc a = {0};
    sl_status rc = walk_answers(abuf, alen, 12 /* PTR */, add_ptr, &a);

    *out = NULL;
    *n = 0;
    *ttl = 0;
    *rcode = SL_DNS_BADRESP;
    if (rc != SL_OK) {
        sl_dns_names_free(a.v, a.n);
        return rc;
    }
    *rcode = header_rcode(abuf[3] & 0x0f, (unsigned)a.n);
    if (*rcode != SL_DNS_OK) {
        sl_dns_names_free(a.v, a.n);
        return SL_OK;
    }
    sl_dns_names_sort(a.v, &a.n);
    *out = a.v;
    *n = a.n;
    *ttl = a.ttl;
    return SL_OK;
}

/* Family rank and address bytes of a textual address, for ordering. */
static int addr_key(const char *a, uint8_t bytes[16])
{
    memset(bytes, 0, 16);
    if (inet_pton(AF_INET, a, bytes) == 1)
        return 4;
    if (inet_pton(AF_INET6, a, bytes) == 1)
        return 6;
    return 9; /* not an address: last, by text */
}

static int addr_cmp(const char *a, const char *b)
{
    uint8_t ka[16], kb[16];
    int fa = addr_key(a, ka), fb = addr_key(b, kb);
    if (fa != fb)
        return fa < fb ? -1 : 1;
    int c = fa == 9 ? 0 : memcmp(ka, kb, 16);
    return c ? c : strcmp(a, b);
}

static int record_cmp(const void *pa, const void *pb)
{
    const sl_dns_record *a = pa, *b = pb;
    int c = addr_cmp(a->address, b->address);
    if (c)
        return c;
    if (a->port != b->port)
        return a->port < b->port ? -1 : 1;
    if (a->priority != b->priority)
        return a->priority < b->priority ? -1 : 1;
    if (a->weight != b->weight)
        return a->weight > b->weight ? -1 : 1;
    return strcmp(a->hostname ? a->hostname : "", b->hostname ? b->hostname : "");
}

void sl_dns_records_sort(sl_dns_record *v, size_t *n)
{
    size_t k = 0;
    if (!v || *n < 2)
        return;
    qsort(v, *n, sizeof *v, record_cmp);
    for (size_t i = 1; i < *n; i++) {
        if (!strcmp(v[i].address, v[k].address) && v[i].port == v[k].port) {
            if (v[i].ttl < v[k].ttl)
                v[k].ttl = v[i].ttl;
            free(v[i].hostname);
            continue;
        }
        v[++k] = v[i];
    }
    *n = k + 1;
}
