/* tlsreload.c - TLS certificate, key and client CA of sluice-xds, taken up
 * again when their files change, through gRPC's certificate config fetcher
 * (called at each handshake, so open connections keep their session). */
#include "tlsreload.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "sluice/file.h"
#include "sluice/log.h"

typedef struct stamp {
    struct timespec mtime;
    off_t size;
    ino_t ino;
} stamp;

struct xds_tls {
    char *path[3]; /* cert, key, ca (NULL without mutual TLS) */
    pthread_mutex_t mu;
    stamp seen[3];
    time_t checked;  /* second of the last look at the files */
    grpc_ssl_server_certificate_config *pending; /* loaded, not handed to gRPC yet */
    unsigned reloads;
};

static void stamp_of(stamp *s, const char *path)
{
    struct stat sb;
    memset(s, 0, sizeof *s);
    if (path && stat(path, &sb) == 0) {
        s->mtime = sb.st_mtim;
        s->size = sb.st_size;
        s->ino = sb.st_ino;
    }
}

/* Reads the three files into a gRPC certificate config (*out). */
static sl_status load(grpc_ssl_server_certificate_config **out, xds_tls *t)
{
    char *pem[3] = {NULL, NULL, NULL};
    sl_status rc = SL_OK;
    for (int i = 0; i < 3 && rc == SL_OK; i++)
        if (t->path[i])
            rc = sl_file_read(&pem[i], NULL, t->path[i]);
    if (rc == SL_OK) {
        grpc_ssl_pem_key_cert_pair pair = {pem[1], pem[0]};
        /* gRPC's fetcher path insists on root certificates even when no
         * client certificate is asked for: the server's own chain then,
         * which nothing verifies against */
        *out = grpc_ssl_server_certificate_config_create(pem[2] ? pem[2] : pem[0], &pair, 1);
        if (!*out)
            rc = sl_error_set(SL_ERR_INVALID, "TLS files %s / %s not usable", t->path[0], t->path[1]);
    }
    for (int i = 0; i < 3; i++) {
        if (pem[i])
            explicit_bzero(pem[i], strlen(pem[i]));
        free(pem[i]);
    }
    return rc;
}

static grpc_ssl_certificate_config_reload_status fetch(void *ud, grpc_ssl_server_certificate_config **config)
{
    xds_tls *t = ud;
    grpc_ssl_certificate_config_reload_status st = GRPC_SSL_CERTIFICATE_CONFIG_RELOAD_UNCHANGED;
    time_t now = time(NULL);
    pthread_mutex_lock(&t->mu);
    if (!t->pending && now != t->checked) {
        stamp cur[3];
        t->checked = now;
        for (int i = 0; i < 3; i++)
            stamp_of(&cur[i], t->path[i]);
        if (memcmp(cur, t->seen, sizeof cur) != 0) {
            if (load(&t->pending, t) == SL_OK) {
                memcpy(t->seen, cur, sizeof cur);
                t->reloads++;
                sl_log_info("tls", "certificate files reloaded", "cert=%s reloads=%u", sl_log_q(t->path[0]),
                            t->reloads);
            } else {
                sl_log_warn("tls", "certificate files changed but do not load; serving the previous ones",
                            "err=%s", sl_log_q(sl_error_msg()));
                memcpy(t->seen, cur, sizeof cur); /* try again when they change again */
            }
        }
    }
    if (t->pending) {
        *config = t->pending; /* gRPC owns it now */
        t->pending = NULL;
        st = GRPC_SSL_CERTIFICATE_CONFIG_RELOAD_NEW;
    }
    pthread_mutex_unlock(&t->mu);
    return st;
}

sl_status xds_tls_new(xds_tls **out, const char *cert, const char *key, const char *ca)
{
    sl_status rc;
    xds_tls *t = calloc(1, sizeof *t);
    if (!t)
        return sl_error_set(SL_ERR_NOMEM, "tls");
    pthread_mutex_init(&t->mu, NULL);
    const char *p[3] = {cert, key, ca};
    for (int i = 0; i < 3; i++)
        if (p[i] && !(t->path[i] = strdup(p[i]))) {
            xds_tls_free(t);
            return sl_error_set(SL_ERR_NOMEM, "tls");
        }
    for (int i = 0; i < 3; i++)
        stamp_of(&t->seen[i], t->path[i]);
    t->checked = time(NULL);
    if ((rc = load(&t->pending, t)) != SL_OK) { /* the first handshake takes it */
        xds_tls_free(t);
        return rc;
    }
    *out = t;
    return SL_OK;
}

grpc_server_credentials *xds_tls_credentials(xds_tls *t)
{
    grpc_ssl_server_credentials_options *o = grpc_ssl_server_credentials_create_options_using_config_fetcher(
        t->path[2] ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
                   : GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE,
        fetch, t);
    return o ? grpc_ssl_server_credentials_create_with_options(o) : NULL;
}

unsigned xds_tls_reloads(const xds_tls *t)
{
    return t->reloads;
}

void xds_tls_free(xds_tls *t)
{
    if (!t)
        return;
    if (t->pending)
        grpc_ssl_server_certificate_config_destroy(t->pending);
    for (int i = 0; i < 3; i++)
        free(t->path[i]);
    pthread_mutex_destroy(&t->mu);
    free(t);
}
