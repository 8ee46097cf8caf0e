/* sluice/dns.h - asynchronous DNS resolution (c-ares) of the names discovery follows.
 *
 * A resolver owns one c-ares channel and one thread that drives it. Any
 * thread asks for a name; the answer comes back to a callback on the
 * resolver's thread, as a result the callback owns:
 *
 *   sl_dns_opts o = {.servers = "127.0.0.1:5353"};   // NULL: /etc/resolv.conf
 *   sl_dns_resolver_new(&r, &o);
 *   sl_dns_query q = {.name = "petstore.example.com", .port = 8080};
 *   sl_dns_resolve(r, &q, done, ud);     // done(res, ud) later, on r's thread
 *   ...
 *   sl_dns_resolver_free(r);             // pending queries end SL_DNS_CANCELLED first
 *
 * A query is either an address name (A and AAAA, every record's TTL kept),
 * an SRV name: its records' priorities, weights and ports, then the A and
 * AAAA records of each target, or a PTR name (DNS-SD browsing: the names
 * the records point to, e.g. "_http._tcp.example.test" ->
 * "echo._http._tcp.example.test"). The outcome tells a name that does not exist
 * (NXDOMAIN) and a name without such records (NODATA), which are answers,
 * from a server that did not answer (timeout), answered a failure
 * (SERVFAIL, REFUSED) or could not be reached. The records come sorted by
 * address, then port, without duplicates, so an unchanged answer gives an
 * equal list.
 *
 * The parsing helpers at the end are pure functions over bytes (unit tests
 * and fuzz targets call them without a network).
 */
#ifndef SLUICE_DNS_H
#define SLUICE_DNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sluice/status.h"

/* How a query ended. */
typedef enum sl_dns_rcode {
    SL_DNS_OK = 0,      /* records found */
    SL_DNS_NXDOMAIN,    /* answer: the name does not exist */
    SL_DNS_NODATA,      /* answer: the name exists, without records of the type asked */
    SL_DNS_TIMEOUT,     /* no answer within the timeout and tries */
    SL_DNS_SERVFAIL,    /* the server answered SERVFAIL */
    SL_DNS_REFUSED,     /* the server refused the query */
    SL_DNS_UNREACHABLE, /* connection refused or network error: no server answered */
    SL_DNS_BADRESP,     /* a malformed answer */
    SL_DNS_CANCELLED,   /* the resolver was freed first */
    SL_DNS_ERROR,       /* anything else (bad name, out of memory) */
} sl_dns_rcode;

/* "ok", "NXDOMAIN", "NODATA", "timeout", "SERVFAIL", "REFUSED",
 * "unreachable", "bad response", "cancelled", "error". Static strings. */
const char *sl_dns_rcode_str(sl_dns_rcode rc);

/* True when a server answered (OK, NXDOMAIN, NODATA): the answer is the
 * truth about the name. False when the source failed (timeout, SERVFAIL,
 * REFUSED, unreachable, bad response, ...): what was known before still
 * holds. */
bool sl_dns_rcode_answered(sl_dns_rcode rc);

/* The outcome of a c-ares status code (ARES_SUCCESS, ARES_ENOTFOUND, ...). */
sl_dns_rcode sl_dns_rcode_from_ares(int ares_status);

/* One endpoint found. */
typedef struct sl_dns_record {
    char address[46];  /* textual IPv4 or IPv6 address */
    uint16_t port;     /* the query's port, or the SRV record's */
    uint16_t priority; /* SRV priority (lower is preferred); 0 for A/AAAA */
    uint16_t weight;   /* SRV weight; 0 for A/AAAA */
    uint32_t ttl;      /* seconds: smallest TTL of the records that gave it */
    char *hostname;    /* the name the address belongs to (the SRV target, or the query's name) */
} sl_dns_record;

/* A query's result. Owned by whoever the callback hands it to; freed with
 * sl_dns_result_free() (which frees the records and their hostnames). */
typedef struct sl_dns_result {
    sl_dns_rcode rcode;
    char message[384];      /* what happened, for logs and warnings: "_x._tcp.a: SRV: timeout" */
    sl_dns_record *records; /* sorted by address, port (sl_dns_records_sort()) */
    size_t n_records;
    uint32_t ttl;           /* seconds: smallest TTL of every answer used; 0 when none */
    char **names;           /* a PTR query's names, sorted, without duplicates (malloc'd) */
    size_t n_names;
    int64_t elapsed_ms;     /* from the request to the result */
} sl_dns_result;

/* Frees r, its records and their hostnames, its names. NULL is a no-op. */
void sl_dns_result_free(sl_dns_result *r);

/* What to resolve. Strings are copied by sl_dns_resolve(). */
typedef struct sl_dns_query {
    const char *name; /* an address name, or an SRV name ("_http._tcp.petstore.example.com") */
    uint16_t port;    /* the endpoints' port for an address name; unused for SRV */
    bool srv;         /* name is an SRV name */
    bool ptr;         /* name is a PTR name: the result has names, no records */
} sl_dns_query;

/* Resolver settings. */
typedef struct sl_dns_opts {
    /* Servers "HOST[:PORT]" separated by commas ("127.0.0.1:5353",
     * "[::1]:53"); NULL or "": those of /etc/resolv.conf (and its search
     * domains and /etc/hosts). With servers given, names are asked as they
     * are (no search domains, no hosts file). */
    const char *servers;
    int timeout_ms;   /* first try's timeout; <= 0: 2000 */
    int tries;        /* tries per server; <= 0: 2 */
    int max_inflight; /* queries running at once, more wait in order; <= 0: 64 */
} sl_dns_opts;

typedef struct sl_dns_resolver sl_dns_resolver;

/* Called once per query on the resolver's thread; res belongs to the
 * callback (free it, or hand it on). Keep it short: post the work. */
typedef void (*sl_dns_done_fn)(sl_dns_result *res, void *ud);

/* Makes the channel and starts the thread. SL_ERR_INVALID for bad
 * servers (the context names them), SL_ERR_IO when c-ares cannot start. */
sl_status sl_dns_resolver_new(sl_dns_resolver **out, const sl_dns_opts *o);

/* Queues q (any thread, never blocks on the network). done(res, ud) runs
 * exactly once on the resolver's thread, unless this returns an error
 * (SL_ERR_INVALID: empty or over-long name; SL_ERR_NOMEM; SL_ERR_CLOSED
 * while the resolver is being freed), in which case it never runs. */
sl_status sl_dns_resolve(sl_dns_resolver *r, const sl_dns_query *q, sl_dns_done_fn done, void *ud);

/* Queries queued or running (any thread). */
size_t sl_dns_pending(sl_dns_resolver *r);

/* Ends every pending query (its callback runs with SL_DNS_CANCELLED, on the
 * resolver's thread, before this returns), stops the thread and frees r.
 * Not from a callback. NULL is a no-op. */
void sl_dns_resolver_free(sl_dns_resolver *r);

/* ---- pure helpers (no network) --------------------------------------- */

/* One SRV record of an answer. target is malloc'd. */
typedef struct sl_dns_srv {
    uint16_t priority, weight, port;
    uint32_t ttl;
    char *target;
} sl_dns_srv;

/* Parses the SRV records of the answer section of a DNS response (alen
 * bytes at abuf; other record types are skipped) into *out (malloc'd,
 * *n entries; free with sl_dns_srv_free()). *rcode gets the response's
 * code: SL_DNS_OK with records, SL_DNS_NODATA without, SL_DNS_NXDOMAIN,
 * SL_DNS_SERVFAIL, SL_DNS_REFUSED from the header. SL_ERR_PARSE (context:
 * where) for a truncated or malformed message, which is never read
 * beyond alen. */
sl_status sl_dns_parse_srv(sl_dns_srv **out, size_t *n, sl_dns_rcode *rcode, const uint8_t *abuf, size_t alen);

/* Frees n records of sl_dns_parse_srv() and the array. */
void sl_dns_srv_free(sl_dns_srv *v, size_t n);

/* Parses the PTR records of the answer section (other types skipped) into
 * *out (malloc'd names, sorted, without duplicates, *n of them; free with
 * sl_dns_names_free()); *ttl gets the smallest of their TTLs. Outcomes and
 * errors as sl_dns_parse_srv(). */
sl_status sl_dns_parse_ptr(char ***out, size_t *n, uint32_t *ttl, sl_dns_rcode *rcode, const uint8_t *abuf,
                           size_t alen);

/* Sorts n names (strcmp) and drops (frees) later duplicates; *n is updated. */
void sl_dns_names_sort(char **v, size_t *n);

/* Frees n names and the array. NULL is a no-op. */
void sl_dns_names_free(char **v, size_t n);

/* Sorts records by address (IPv4 before IPv6, numerically), then port,
 * and drops later duplicates of an address and port (keeping the most
 * preferred: lowest priority, then highest weight, smallest TTL seen).
 * *n is updated; dropped records' hostnames are freed. */
void sl_dns_records_sort(sl_dns_record *v, size_t *n);

#endif
