/* fetch.c - GET a document with libcurl: timeouts, a size limit, ETag / If-Modified-Since. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "fds.h"

typedef struct fetch_buf {
    char *data;
    size_t len, cap, max;
    bool over;
    char etag[512], last_modified[128];
} fetch_buf;

void fd_cache_deinit(fd_cache *c)
{
    free(c->url);
    free(c->etag);
    free(c->last_modified);
    free(c->body);
    memset(c, 0, sizeof *c);
}

static size_t on_data(char *p, size_t size, size_t n, void *ud)
{
    fetch_buf *b = ud;
    size_t add = size * n;
    if (b->len + add > b->max) {
        b->over = true;
        return 0; /* aborts the transfer */
    }
    if (b->len + add + 1 > b->cap) {
        size_t nc = (b->cap ? b->cap * 2 : 16384) + add;
        char *nd = realloc(b->data, nc);
        if (!nd)
            return 0;
        b->data = nd;
        b->cap = nc;
    }
    memcpy(b->data + b->len, p, add);
    b->len += add;
    b->data[b->len] = 0;
    return add;
}

/* Keeps the ETag and Last-Modified response headers. */
static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
    fetch_buf *b = ud;
    size_t len = size * n;
    char *dst = NULL;
    size_t cap = 0, skip = 0;
    if (len > 5 && !strncasecmp(p, "etag:", 5)) {
        dst = b->etag, cap = sizeof b->etag, skip = 5;
    } else if (len > 14 && !strncasecmp(p, "last-modified:", 14)) {
        dst = b->last_modified, cap = sizeof b->last_modified, skip = 14;
    }
    if (dst) {
        size_t s = skip, e = len;
        while (s < e && (p[s] == ' ' || p[s] == '\t'))
            s++;
        while (e > s && (p[e - 1] == '\r' || p[e - 1] == '\n' || p[e - 1] == ' '))
            e--;
        snprintf(dst, cap, "%.*s", (int)(e - s), p + s);
    }
    return len;
}

static void cache_store(fd_cache *c, const char *url, fetch_buf *b)
{
    fd_cache_deinit(c);
    c->url = strdup(url);
    c->etag = b->etag[0] ? strdup(b->etag) : NULL;
    c->last_modified = b->last_modified[0] ? strdup(b->last_modified) : NULL;
    if ((c->body = malloc(b->len + 1))) {
        memcpy(c->body, b->data ? b->data : "", b->len);
        c->body[b->len] = 0;
        c->len = b->len;
    }
}

static struct curl_slist *request_headers(const char *url, const fd_cache *c, const char *const *extra)
{
    struct curl_slist *h = NULL, *t;
    char line[700];
    h = curl_slist_append(NULL, "Accept: application/json, application/yaml;q=0.9, */*;q=0.5");
    if (h && (t = curl_slist_append(h, "X-Sluice-Discovery: function-discovery")))
        h = t;
    for (size_t i = 0; h && extra && extra[i]; i++) {
        if (!(t = curl_slist_append(h, extra[i]))) {
            curl_slist_free_all(h);
            return NULL;
        }
        h = t;
    }
    if (h && c && c->url && !strcmp(c->url, url) && c->body) {
        if (c->etag) {
            snprintf(line, sizeof line, "If-None-Match: %s", c->etag);
            if ((t = curl_slist_append(h, line)))
                h = t;
        }
        if (c->last_modified) {
            snprintf(line, sizeof line, "If-Modified-Since: %s", c->last_modified);
            if ((t = curl_slist_append(h, line)))
                h = t;
        }
    }
    return h;
}

static void set_blob(CURL *h, CURLoption opt, const char *pem)
{
    struct curl_blob b = {.data = (void *)pem, .len = strlen(pem), .flags = CURL_BLOB_COPY};
    curl_easy_setopt(h, opt, &b);
}

/* The TLS options of o. With a server name (SNI) the request's URL names it and libcurl connects to
 * the URL's own host and port (CURLOPT_CONNECT_TO), so that the name is both sent and verified;
 * *named is that URL (curl_free), or NULL. */
static sl_status set_tls(CURL *h, const char *url, const fd_fetch_opts *o, char **named, struct curl_slist **connect_to)
{
    char *host = NULL, *port = NULL, line[700];
    CURLU *u = NULL;
    sl_status rc = SL_OK;
    *named = NULL;
    if (o->ca_pem)
        set_blob(h, CURLOPT_CAINFO_BLOB, o->ca_pem);
    if (o->cert_pem && o->key_pem) {
        curl_easy_setopt(h, CURLOPT_SSLCERTTYPE, "PEM");
        set_blob(h, CURLOPT_SSLCERT_BLOB, o->cert_pem);
        curl_easy_setopt(h, CURLOPT_SSLKEYTYPE, "PEM");
        set_blob(h, CURLOPT_SSLKEY_BLOB, o->key_pem);
    }
    if (!o->sni || !o->sni[0] || strncmp(url, "https:", 6) != 0)
        return SL_OK;
    if (!(u = curl_url()) || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK ||
        curl_url_set(u, CURLUPART_HOST, o->sni, 0) != CURLUE_OK || curl_url_get(u, CURLUPART_URL, named, 0) != CURLUE_OK) {
        rc = sl_error_set(SL_ERR_INVALID, "GET %s: cannot use the server name \"%.200s\"", url, o->sni);
        goto out;
    }
    /* a redirect elsewhere is not the upstream: only the name itself goes to its address */
    snprintf(line, sizeof line, "%s::%s:%s", o->sni, host, port);
    if (!(*connect_to = curl_slist_append(NULL, line))) {
        rc = sl_error_set(SL_ERR_NOMEM, "out of memory");
        goto out;
    }
    curl_easy_setopt(h, CURLOPT_URL, *named);
    curl_easy_setopt(h, CURLOPT_CONNECT_TO, *connect_to);
out:
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
    return rc;
}

sl_status fd_fetch(char **body, size_t *len, bool *not_modified, const char *url, fd_cache *c,
                   const fd_fetch_opts *o)
{
    fetch_buf b = {.max = o->max_bytes};
    char err[CURL_ERROR_SIZE] = "";
    long code = 0;
    sl_status rc = SL_OK;
    CURL *h = curl_easy_init();
    struct curl_slist *hdr = request_headers(url, c, o->headers), *connect_to = NULL;
    char *named = NULL;

    *body = NULL;
    *len = 0;
    *not_modified = false;
    if (!h || !hdr) {
        rc = sl_error_set(SL_ERR_NOMEM, "out of memory");
        goto out;
    }
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(h, CURLOPT_MAXREDIRS, 3L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)o->connect_timeout_ms);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)o->timeout_ms);
    curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)o->max_bytes);
    curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(h, CURLOPT_USERAGENT, "sluice-function-discovery");
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &b);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, err);
    if (o->aws_sigv4) {
        curl_easy_setopt(h, CURLOPT_AWS_SIGV4, o->aws_sigv4);
        curl_easy_setopt(h, CURLOPT_USERPWD, o->userpwd);
        /* a redirect would carry the signature to another host */
        curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    }
    if ((rc = set_tls(h, url, o, &named, &connect_to)) != SL_OK)
        goto out;
    CURLcode cc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    if (b.over || cc == CURLE_FILESIZE_EXCEEDED) {
        rc = sl_error_set(SL_ERR_INVALID, "GET %s: the document is larger than %zu bytes", url, o->max_bytes);
        goto out;
    }
    if (cc != CURLE_OK) {
        rc = sl_error_set(SL_ERR_IO, "GET %s: %s", url, err[0] ? err : curl_easy_strerror(cc));
        goto out;
    }
    if (code == 304 && c && c->body && c->url && !strcmp(c->url, url)) {
        if (!(*body = malloc(c->len + 1))) {
            rc = sl_error_set(SL_ERR_NOMEM, "out of memory");
            goto out;
        }
        memcpy(*body, c->body, c->len + 1);
        *len = c->len;
        *not_modified = true;
        goto out;
    }
    if (code != 200) {
        rc = sl_error_set(SL_ERR_NOT_FOUND, "GET %s: HTTP status %ld", url, code);
        if (o->error_body && b.data) {
            *body = b.data;
            *len = b.len;
            b.data = NULL;
        }
        goto out;
    }
    if (c)
        cache_store(c, url, &b);
    if (!b.data && !(b.data = calloc(1, 1))) {
        rc = sl_error_set(SL_ERR_NOMEM, "out of memory");
        goto out;
    }
    *body = b.data;
    *len = b.len;
    b.data = NULL;
out:
    free(b.data);
    curl_free(named);
    curl_slist_free_all(connect_to);
    curl_slist_free_all(hdr);
    if (h)
        curl_easy_cleanup(h);
    return rc;
}
