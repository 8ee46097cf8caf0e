/* lambda.c - AWS Lambda ListFunctions with every version (FunctionVersion=ALL), page by page, signed with
 * libcurl's SigV4. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "fds.h"
#include "sluice/lambda.h"

/* SigV4 hash of an empty body: sent (and signed) so that servers which
 * recompute the signature from the body they parsed (moto) agree. */
#define EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

/* Header values and the region go into a request: no control characters, bounded. */
static bool plain(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n > max)
        return false;
    for (; *s; s++)
        if ((unsigned char)*s < ' ' || *s == 0x7f)
            return false;
    return true;
}

static bool valid_region(const char *r)
{
    size_t n = strlen(r);
    if (!n || n > 32)
        return false;
    for (; *r; r++)
        if (!((*r >= 'a' && *r <= 'z') || (*r >= '0' && *r <= '9') || *r == '-'))
            return false;
    return true;
}

void fd_lambda_endpoint(char *out, size_t cap, const char *endpoint, const char *region)
{
    if (endpoint && endpoint[0]) {
        size_t n = strlen(endpoint);
        snprintf(out, cap, "%.*s", (int)(n && endpoint[n - 1] == '/' ? n - 1 : n), endpoint);
    } else
        snprintf(out, cap, "https://lambda.%s.amazonaws.com", region);
}

/* One page: GET <base>/2015-03-31/functions/ with the query in the
 * canonical (sorted) order SigV4 signs it in, whatever libcurl's version. */
static sl_status list_page(sl_lambda_list *l, char **next, const char *base, const char *marker,
                           const fd_lambda_query *q, const fd_fetch_opts *o)
{
    char url[4800], reason[420]; /* a marker escapes to at most 3 x SL_LAMBDA_MAX_MARKER */
    char *body = NULL, *m = NULL;
    size_t len = 0;
    bool nm;
    sl_status rc;
    if (marker && !(m = curl_easy_escape(NULL, marker, 0)))
        return sl_error_set(SL_ERR_NOMEM, "out of memory");
    snprintf(url, sizeof url, "%s/2015-03-31/functions/?FunctionVersion=ALL%s%s&MaxItems=%d", base,
             m ? "&Marker=" : "", m ? m : "", q->page_size);
    curl_free(m);
    rc = fd_fetch(&body, &len, &nm, url, NULL, o);
    if (rc == SL_OK)
        rc = sl_lambda_parse_page(l, next, body, len, SL_LAMBDA_MAX_FUNCTIONS);
    else if (rc == SL_ERR_NOT_FOUND) {
        /* AWS's reason (bad credentials, no permission) says more than the status */
        char status[600];
        snprintf(status, sizeof status, "%s", sl_error_msg());
        sl_lambda_error(reason, sizeof reason, body, len);
        rc = sl_error_set(rc, "%s%s%s", status, reason[0] ? ": " : "", reason);
    }
    free(body);
    return rc;
}

sl_status fd_lambda_list_all(sl_lambda_list *l, const fd_lambda_query *q, const fd_fetch_opts *base_opts)
{
    char base[600], sigv4[100], userpwd[600], token[2200];
    char *marker = NULL, *next = NULL;
    fd_fetch_opts o = *base_opts;
    sl_status rc = SL_OK;
    if (!valid_region(q->region))
        return sl_error_set(SL_ERR_INVALID, "region \"%.40s\" is not an AWS region name", q->region);
    if (!q->access_key[0] || !q->secret_key[0] || strchr(q->access_key, ':') || !plain(q->access_key, 256) ||
        !plain(q->secret_key, 256) || !plain(q->session_token, 2048))
        return sl_error_set(SL_ERR_INVALID, "the credentials need an accessKey (without ':') and a secretKey of "
                                            "printable characters");
    fd_lambda_endpoint(base, sizeof base, q->endpoint, q->region);
    snprintf(sigv4, sizeof sigv4, "aws:amz:%s:lambda", q->region);
    snprintf(userpwd, sizeof userpwd, "%s:%s", q->access_key, q->secret_key);
    o.aws_sigv4 = sigv4;
    o.userpwd = userpwd;
    o.error_body = true;
    /* temporary credentials: the session token is one more (signed) header */
    const char *headers[] = {"x-amz-content-sha256: " EMPTY_SHA256, q->session_token[0] ? token : NULL, NULL};
    snprintf(token, sizeof token, "x-amz-security-token: %s", q->session_token);
    o.headers = headers;
    for (int page = 0; rc == SL_OK; page++) {
        if (page >= SL_LAMBDA_MAX_PAGES) {
            rc = sl_error_set(SL_ERR_INVALID, "ListFunctions: more than %d pages", SL_LAMBDA_MAX_PAGES);
            break;
        }
        rc = list_page(l, &next, base, marker, q, &o);
        if (rc == SL_OK && next && marker && !strcmp(next, marker))
            rc = sl_error_set(SL_ERR_INVALID, "ListFunctions: NextMarker repeats the marker asked for");
        free(marker);
        marker = next;
        next = NULL;
        if (!marker)
            break;
    }
    free(marker);
    /* the secret key does not outlive the listing in this frame */
    memset(userpwd, 0, sizeof userpwd);
    memset(token, 0, sizeof token);
    return rc;
}
