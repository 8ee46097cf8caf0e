/* tls.c - Secrets for discovery (aws credentials, TLS towards upstreams) and an upstream's TLS settings:
 * sslConfig's secretRef or sslFiles, sni; useTls. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fds.h"
#include "sluice/kinds.h"
#include "sluice/pbcheck.h"
#include "sluice/resource.h"
#include "sluice/secrets.h"
#include "sluice/upstreams.h"
#include "sluice/v1/secret.pb-c.h"

/* PEM files and documents are small; a bigger "certificate" is a mistake. */
#define MAX_PEM (1u << 20)

static void wipe_str(char *p)
{
    if (p)
        sec_wipe(p, strlen(p));
}

void fd_secret_free(Sluice__V1__Secret *sec)
{
    if (!sec)
        return;
    if (sec->spec && sec->spec->kind_case == SLUICE__V1__SECRET_SPEC__KIND_AWS && sec->spec->aws) {
        wipe_str(sec->spec->aws->secret_key);
        wipe_str(sec->spec->aws->session_token);
    } else if (sec->spec && sec->spec->kind_case == SLUICE__V1__SECRET_SPEC__KIND_TLS && sec->spec->tls)
        wipe_str(sec->spec->tls->private_key);
    protobuf_c_message_free_unpacked(&sec->base, NULL);
}

Sluice__V1__Secret *fd_secret_get(fd *s, const Sluice__V1__ResourceRef *ref, const char *uns, const char *field,
                                  char *why, size_t cap)
{
    const char *ns = ref->namespace_[0] ? ref->namespace_ : uns;
    char key[SL_RESOURCE_KEY_MAX];
    sl_kv_entry e = {0};
    ProtobufCMessage *m = NULL;
    if (sl_resource_key(key, sizeof key, "Secret", ns, ref->name) != SL_OK) {
        snprintf(why, cap, "%s: %s", field, sl_error_msg());
        return NULL;
    }
    pthread_mutex_lock(&s->bind_mu);
    if (!s->secrets_kv && sl_kv_bind(&s->secrets_kv, s->nc, s->secrets_bucket) != SL_OK)
        snprintf(why, cap, "cannot read the secrets bucket %s: %s", s->secrets_bucket, sl_error_msg());
    pthread_mutex_unlock(&s->bind_mu);
    if (!s->secrets_kv)
        return NULL;
    sl_status rc = sl_kv_get(&e, s->secrets_kv, key);
    if (rc != SL_OK) {
        if (rc == SL_ERR_NOT_FOUND)
            snprintf(why, cap, "Secret %s.%s (%s) not found", ns, ref->name, field);
        else
            snprintf(why, cap, "Secret %s.%s (%s): %s", ns, ref->name, field, sl_error_msg());
        return NULL;
    }
    if (sl_pb_unpack(&m, &sluice__v1__secret__descriptor, NULL, e.value, e.len) != SL_OK) {
        fd_quarantine(s, s->secrets_bucket, key, e.revision);
        snprintf(why, cap, "Secret %s.%s (%s) does not decode (quarantined)", ns, ref->name, field);
    }
    if (e.value)
        sec_wipe((void *)e.value, e.len);
    sl_kv_entry_deinit(&e);
    Sluice__V1__Secret *sec = (Sluice__V1__Secret *)m;
    /* the translator's rule: another namespace's Secret only when it grants this one */
    if (sec && strcmp(ns, uns) != 0 && !sl_kind_secret_grants(sec->metadata, uns)) {
        snprintf(why, cap, "Secret %s.%s is in another namespace and does not grant access to namespace %s "
                           "(annotation %s)", ns, ref->name, uns, SL_SECRET_GRANT);
        fd_secret_free(sec);
        return NULL;
    }
    return sec;
}

void fd_tls_deinit(fd_tls *t)
{
    wipe_str(t->key);
    free(t->ca);
    free(t->cert);
    free(t->key);
    memset(t, 0, sizeof *t);
}

/* A PEM file of the discovery's own file system (sslFiles), malloc'd into *out; false with the
 * reason. */
static bool read_pem(char **out, const char *path, const char *field, char *why, size_t cap)
{
    FILE *f = fopen(path, "r");
    char *buf = NULL;
    size_t n = 0;
    if (!f) {
        snprintf(why, cap, "sslConfig.sslFiles.%s: cannot open %s", field, path);
        return false;
    }
    if (!(buf = malloc(MAX_PEM + 1)) || (n = fread(buf, 1, MAX_PEM + 1, f)) > MAX_PEM || ferror(f)) {
        snprintf(why, cap, "sslConfig.sslFiles.%s: cannot read %s (or larger than %u bytes)", field, path, MAX_PEM);
        if (buf)
            sec_wipe(buf, MAX_PEM + 1);
        free(buf);
        fclose(f);
        return false;
    }
    fclose(f);
    buf[n] = 0;
    *out = buf;
    return true;
}

static bool dup_pem(char **out, const char *pem)
{
    if (!pem || !pem[0])
        return true;
    return (*out = strdup(pem)) != NULL;
}

bool fd_tls_of(fd *s, const Sluice__V1__Upstream *u, fd_tls *t, char *why, size_t cap)
{
    const Sluice__V1__UpstreamSpec *sp = u->spec;
    const Sluice__V1__UpstreamSslConfig *sc = sp->ssl_config;
    memset(t, 0, sizeof *t);
    if (sp->upstream_type_case == SLUICE__V1__UPSTREAM_SPEC__UPSTREAM_TYPE_STATIC && sp->static_) {
        const Sluice__V1__StaticUpstreamSpec *st = sp->static_;
        t->on = st->use_tls ? st->use_tls->value : st->n_hosts && st->hosts[0]->port == 443;
        if (st->n_hosts && st->hosts[0]->sni_addr[0])
            snprintf(t->sni, sizeof t->sni, "%s", st->hosts[0]->sni_addr);
    } else if (sl_upstream_spec_use_tls(sp)) { /* dns, etcd */
        t->on = sl_upstream_spec_use_tls(sp)->value;
    }
    if (!sc)
        return true;
    t->on = true; /* sslConfig originates TLS, as in Gloo */
    if (sc->sni[0])
        snprintf(t->sni, sizeof t->sni, "%s", sc->sni);
    switch (sc->ssl_secrets_case) {
    case SLUICE__V1__UPSTREAM_SSL_CONFIG__SSL_SECRETS_SECRET_REF: {
        Sluice__V1__Secret *sec =
            fd_secret_get(s, sc->secret_ref, u->metadata->namespace_, "sslConfig.secretRef", why, cap);
        if (!sec)
            return false;
        const Sluice__V1__TlsSecret *tls =
            sec->spec && sec->spec->kind_case == SLUICE__V1__SECRET_SPEC__KIND_TLS ? sec->spec->tls : NULL;
        bool ok = tls != NULL;
        if (!tls)
            snprintf(why, cap, "Secret %s (sslConfig.secretRef) is not a tls secret", sc->secret_ref->name);
        else if (!(ok = dup_pem(&t->ca, tls->root_ca) && dup_pem(&t->cert, tls->cert_chain) &&
                        dup_pem(&t->key, tls->private_key)))
            snprintf(why, cap, "out of memory");
        fd_secret_free(sec);
        if (!ok) {
            fd_tls_deinit(t);
            return false;
        }
        break;
    }
    case SLUICE__V1__UPSTREAM_SSL_CONFIG__SSL_SECRETS_SSL_FILES: {
        const Sluice__V1__SslFiles *f = sc->ssl_files;
        if ((f->root_ca[0] && !read_pem(&t->ca, f->root_ca, "rootCa", why, cap)) ||
            (f->tls_cert[0] && !read_pem(&t->cert, f->tls_cert, "tlsCert", why, cap)) ||
            (f->tls_key[0] && !read_pem(&t->key, f->tls_key, "tlsKey", why, cap))) {
            fd_tls_deinit(t);
            return false;
        }
        break;
    }
    default:
        break; /* sds: the proxy's own secrets; discovery verifies with the system's CAs, no client certificate */
    }
    if (t->on && (!t->cert) != (!t->key)) {
        snprintf(why, cap, "sslConfig: a client certificate needs both the certificate chain and the private key");
        fd_tls_deinit(t);
        return false;
    }
    return true;
}
