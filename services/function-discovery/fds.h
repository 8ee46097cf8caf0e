/* fds.h - sluice-function-discovery's own modules: fetching documents, merging functions into Upstreams. */
#ifndef SLUICE_FDS_H
#define SLUICE_FDS_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sluice/grpc_reflect.h"
#include "sluice/kv.h"
#include "sluice/lambda.h"
#include "sluice/lease.h"
#include "sluice/metrics.h"
#include "sluice/service.h"

#include "sluice/openapi.h"
#include "sluice/status.h"
#include "sluice/v1/secret.pb-c.h"
#include "sluice/v1/upstream.pb-c.h"

/* The label that selects upstreams (Gloo's) and its values. */
#define FD_LABEL "discovery.solo.io/function_discovery"
/* Annotations discovery keeps on an Upstream it wrote: the function names
 * it owns (comma-separated, sorted; others are a person's) and the
 * document they came from. */
#define FD_ANN_FUNCTIONS "discovery.sluice.io/functions"
#define FD_ANN_SOURCE "discovery.sluice.io/functions-source"

/* ---- fetch.c: HTTP(S) GET with libcurl -------------------------------- */

typedef struct fd_fetch_opts {
    int64_t connect_timeout_ms, timeout_ms;
    size_t max_bytes;
    const char *const *headers; /* more request header lines (NULL-terminated), or NULL */
    const char *aws_sigv4;      /* CURLOPT_AWS_SIGV4 ("aws:amz:<region>:<service>"): sign, no redirects; or NULL */
    const char *userpwd;        /* with aws_sigv4: "<access key>:<secret key>" */
    bool error_body;            /* an HTTP error status returns its body too */
    /* https: CAs that verify the server (PEM; NULL: the system's), a client certificate and its key
     * (PEM, both or neither), the name sent as SNI and checked in the server's certificate (NULL or
     * "": the URL's host; else the request goes to the URL's address with this name as its host) */
    const char *ca_pem, *cert_pem, *key_pem, *sni;
} fd_fetch_opts;

/* What the last good answer for one URL was, for conditional requests.
 * Owned by the caller; fd_cache_deinit() frees it. */
typedef struct fd_cache {
    char *url, *etag, *last_modified;
    char *body; /* the last document */
    size_t len;
} fd_cache;

void fd_cache_deinit(fd_cache *c);

/* GETs url. SL_OK: *body (malloc'd, NUL-terminated, *len bytes) is the
 * document; when c holds this url's validators they are sent
 * (If-None-Match / If-Modified-Since) and a 304 answers with c's body
 * (*not_modified true). A 200 updates c. SL_ERR_IO (unreachable, timeout,
 * TLS), SL_ERR_NOT_FOUND (an HTTP status other than 200/304; with
 * o->error_body *body is the answer's body, or NULL when it had none),
 * SL_ERR_INVALID (over max_bytes): the message says which. c may be NULL. */
sl_status fd_fetch(char **body, size_t *len, bool *not_modified, const char *url, fd_cache *c,
                   const fd_fetch_opts *o);

/* ---- tls.c: Secrets, and TLS towards an upstream's document and reflection servers ---- */

struct fd;

/* How to speak TLS to an upstream (PEM strings malloc'd; fd_tls_deinit() wipes the key and frees). */
typedef struct fd_tls {
    bool on;                /* sslConfig, useTls, or a static host on port 443 */
    char *ca, *cert, *key;  /* rootCa (NULL: the system's CAs), client certificate and key (NULL: none) */
    char sni[256];          /* sslConfig.sni, else a static host's sniAddr; "" none */
} fd_tls;

void fd_tls_deinit(fd_tls *t);

/* The TLS settings of u (a static or dns upstream): sslConfig's secretRef (a tls Secret of
 * sluice_secrets, with the grant rule of another namespace's) or sslFiles (PEM files of this
 * process's file system), sni; useTls. false with the reason in why (Secret missing, not tls, not
 * granted, a file unreadable, a certificate without its key); *t is then empty. */
bool fd_tls_of(struct fd *s, const Sluice__V1__Upstream *u, fd_tls *t, char *why, size_t cap);

/* The Secret ref names (namespace defaulting to uns, the upstream's) from the secrets bucket, when
 * it is in uns or grants uns (sl_kind_secret_grants); field names the reference in reasons
 * ("spec.aws.secretRef"). NULL with the reason in why. Free with fd_secret_free(). */
Sluice__V1__Secret *fd_secret_get(struct fd *s, const Sluice__V1__ResourceRef *ref, const char *uns,
                                  const char *field, char *why, size_t cap);

/* Wipes the key material of sec (aws secret key and token, tls private key), frees it. NULL: no-op. */
void fd_secret_free(Sluice__V1__Secret *sec);

/* ---- lambda.c: AWS Lambda ListFunctions (sluice/lambda.h reads the answers) */

/* What to list and with which credentials (strings belong to the caller). */
typedef struct fd_lambda_query {
    const char *endpoint; /* e.g. "http://127.0.0.1:5000"; NULL or "": https://lambda.<region>.amazonaws.com */
    const char *region;
    const char *access_key, *secret_key, *session_token; /* session_token "" when none */
    int page_size;                                       /* MaxItems */
} fd_lambda_query;

/* The base URL of the Lambda API (endpoint without a trailing '/', or AWS's
 * for region) into out. */
void fd_lambda_endpoint(char *out, size_t cap, const char *endpoint, const char *region);

/* Every function and version (ListFunctions, FunctionVersion=ALL, Marker
 * pagination) into l, requests signed with SigV4 (libcurl). SL_ERR_INVALID
 * (bad region or credentials, a broken answer, too many functions),
 * SL_ERR_IO (unreachable, timeout), SL_ERR_NOT_FOUND (an HTTP error
 * status, with AWS's reason): the message says which. */
sl_status fd_lambda_list_all(sl_lambda_list *l, const fd_lambda_query *q, const fd_fetch_opts *o);

/* ---- merge.c: functions into an Upstream ------------------------------ */

/* Sets the discovered functions of u (malloc'd, as protobuf-c unpacks with
 * the default allocator) to doc's: the names in FD_ANN_FUNCTIONS are
 * replaced, every other transformation is a person's and stays (a
 * discovered function of the same name is not written: its name goes to
 * *clashes, a malloc'd comma-separated list, NULL when none). url (NULL:
 * keep) becomes swaggerInfo.url when the upstream named none. */
sl_status fd_merge(Sluice__V1__Upstream *u, const sl_openapi_doc *doc, const char *url, const char *source,
                   char **clashes);

/* Sets the upstream's serviceSpec.grpc (created when there is none) to
 * what reflection found: descriptors and services; the annotations name
 * them and the source. SL_ERR_UNSUPPORTED for an upstream without a place
 * for a service spec or with a REST one. */
sl_status fd_merge_grpc(Sluice__V1__Upstream *u, const sl_reflect_result *res, const char *source);

/* Sets the discovered Lambda functions of an aws upstream to l's, named
 * as Gloo names them (logicalName "<name>" for $LATEST, "<name>:<version>"
 * for a version; qualifier the version) and sorted by logical name; the
 * names in FD_ANN_FUNCTIONS are replaced, every other entry is a person's
 * and stays first (a discovered function of the same name is not written:
 * its name goes to *clashes, malloc'd, NULL when none).
 * SL_ERR_UNSUPPORTED for an upstream of another type. */
sl_status fd_merge_lambda(Sluice__V1__Upstream *u, const sl_lambda_list *l, const char *source, char **clashes);

/* ---- discover.c: the worker that checks upstreams --------------------- */

#define FD_MAX_WORKERS 64

/* One Upstream of the config bucket. The loop thread owns key/val/rev
 * (under fd->mu); the worker owns the rest while busy. */
typedef struct fd_upstream {
    char *key;       /* "Upstream.<ns>.<name>" */
    uint8_t *val;    /* the latest stored value */
    size_t len;
    uint64_t rev, self_rev; /* latest revision; our own last write */
    int64_t due_ms;  /* next check (monotonic ms) */
    bool busy, gone; /* being checked; deleted meanwhile (the worker frees it) */
    bool recheck;    /* its endpoints changed while it was being checked: check again at once */
    fd_cache cache;  /* the document's last answer (conditional requests) */
    char *found_url; /* where probing found the document */
    uint8_t *report; /* the last report published (packed, without time) */
    size_t report_len;
    int failures;     /* consecutive failed checks: the next is delayed by back-off */
    uint64_t ok_rev;  /* the revision whose last check succeeded with the cached document, 0 none: a 304 for
                       * it is no change and needs no parsing */
} fd_upstream;

/* What one check found, for back-off: nothing to say, a success, a failure. */
typedef enum fd_outcome { FD_IDLE, FD_OK, FD_FAILED } fd_outcome;

typedef struct fd {
    sl_service *svc;
    sl_nats *nc;
    sl_kv *config_kv, *endpoints_kv, *secrets_kv; /* secrets: aws upstreams' credentials, bound on first use */
    sl_kv_watch *endpoints_w; /* endpoint changes make their upstream due */
    sl_kv *endpoints_w_kv;    /* the watch's own handle of the bucket */
    sl_ticker *endpoints_ticker; /* tries the watch every second until endpoint discovery made the bucket */
    sl_loop *loop;
    sl_lease *lease;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_mutex_t bind_mu; /* binding endpoints_kv and secrets_kv on first use */
    pthread_t workers[FD_MAX_WORKERS];
    int n_workers_started;
    bool stop, loaded, leader;
    fd_upstream **ups;
    size_t n_ups, cap_ups;
    int settings_mode; /* Settings' fdsMode (BLACKLIST when there is none) */
    char reporter_id[64];
    /* flags */
    const char *config_bucket, *endpoints_bucket, *secrets_bucket, *settings_ns, *settings_name, *mode;
    const char *aws_endpoint; /* "" : AWS's own https://lambda.<region>.amazonaws.com */
    int64_t resync_ms, connect_timeout_ms, timeout_ms, lease_ttl_ms, backoff_initial_ms, backoff_max_ms;
    int max_doc_kb, n_workers, aws_page_size;
    /* metrics */
    sl_counter *c_checks, *c_writes, *c_unchanged, *c_not_modified, *c_failures, *c_conflicts, *c_reports;
    sl_counter *c_backoffs;
    sl_gauge *g_upstreams, *g_backing_off;
    int n_backing_off; /* upstreams whose last check failed (under mu) */
    unsigned seed;     /* back-off jitter (under mu) */
} fd;

/* main.c: the value of key at revision in bucket does not decode (the
 * error is sl_error_msg()): quarantined as sluice/quarantine.h says, the
 * last good state kept. */
void fd_quarantine(fd *s, const char *bucket, const char *key, uint64_t revision);

/* Forgets e's failures (it no longer counts as backing off). Under fd->mu. */
void fd_backoff_clear(fd *s, fd_upstream *e);

/* Frees an upstream entry and what it holds. */
void fd_upstream_free(fd_upstream *e);

/* Milliseconds of the monotonic clock. */
int64_t fd_now_ms(void);

/* A worker thread (--workers of them): checks due upstreams, one each at
 * a time, while this replica holds the lease, until fd->stop. A slow
 * server holds one worker, not the others. */
void *fd_worker_main(void *ud);

/* Whether Gloo's rules select u for discovery in mode (a
 * Sluice__V1__DiscoveryOptions__FdsMode). */
bool fd_selected(int mode, const Sluice__V1__Upstream *u);

#endif
