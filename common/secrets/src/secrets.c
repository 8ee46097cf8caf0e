/* secrets.c - see secrets.h. */
#include "sluice/secrets.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "sluice/codec.h"
#include "sluice/diag.h"
#include "sluice/kinds.h"
#include "sluice/resource.h"
#include "sluice/v1/secret.pb-c.h"
#include "sluice/vec.h"

#define MAX_FILE (1024 * 1024)

void sec_wipe(void *p, size_t n)
{
    volatile uint8_t *v = p;
    while (n--)
        *v++ = 0;
}

void sec_set_init(sec_set *s)
{
    memset(s, 0, sizeof *s);
}

void sec_set_deinit(sec_set *s)
{
    for (size_t i = 0; i < s->n; i++) {
        if (s->items[i].value)
            sec_wipe(s->items[i].value, s->items[i].len);
        free(s->items[i].value);
        free(s->items[i].error);
    }
    free(s->items);
    memset(s, 0, sizeof *s);
}

sec_item *sec_set_find(sec_set *s, const char *key)
{
    for (size_t i = 0; i < s->n; i++)
        if (key[0] && !strcmp(s->items[i].key, key))
            return &s->items[i];
    return NULL;
}

static sec_item *add_item(sec_set *s, const char *key, const char *file)
{
    if (SL_VEC_RESERVE(s->items, s->cap, s->n + 1) != SL_OK)
        return NULL;
    sec_item *it = &s->items[s->n++];
    memset(it, 0, sizeof *it);
    snprintf(it->key, sizeof it->key, "%s", key);
    snprintf(it->file, sizeof it->file, "%s", file);
    return it;
}

static void item_error(sec_set *s, const char *key, const char *file, const char *fmt, const char *detail)
{
    sec_item *it = add_item(s, key, file);
    if (!it)
        return;
    char buf[1400];
    snprintf(buf, sizeof buf, fmt, detail);
    if (asprintf(&it->error, "%s: %s", file, buf) < 0)
        it->error = NULL;
}

/* Reads a whole file (at most 1 MiB). *out is malloc'd and NUL-terminated. */
static sl_status read_all(char **out, size_t *len, const char *path, char *why, size_t wn)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat sb;
    *out = NULL;
    if (fd < 0 || fstat(fd, &sb) != 0) {
        snprintf(why, wn, "cannot read: %s", strerror(errno));
        if (fd >= 0)
            close(fd);
        return SL_ERR_IO;
    }
    if (sb.st_size > MAX_FILE) {
        snprintf(why, wn, "larger than %d bytes", MAX_FILE);
        close(fd);
        return SL_ERR_INVALID;
    }
    char *b = malloc((size_t)sb.st_size + 1);
    size_t got = 0;
    ssize_t r = 0;
    while (b && got < (size_t)sb.st_size && (r = read(fd, b + got, (size_t)sb.st_size - got)) > 0)
        got += (size_t)r;
    close(fd);
    if (!b || r < 0) {
        snprintf(why, wn, "cannot read: %s", b ? strerror(errno) : "out of memory");
        free(b);
        return SL_ERR_IO;
    }
    b[got] = 0;
    *out = b;
    *len = got;
    return SL_OK;
}

static void free_secret_text(char *p, size_t n)
{
    if (p) {
        sec_wipe(p, n);
        free(p);
    }
}

/* The first OpenSSL error's reason (never data). */
static const char *ossl_reason(void)
{
    unsigned long e = ERR_peek_last_error();
    const char *r = e ? ERR_reason_error_string(e) : NULL;
    return r ? r : "malformed PEM";
}

static int count_certs(const char *pem, size_t len, X509 **leaf)
{
    BIO *b = BIO_new_mem_buf(pem, (int)len);
    int n = 0;
    X509 *x;
    if (!b)
        return -1;
    while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
        if (n == 0 && leaf)
            *leaf = x;
        else
            X509_free(x);
        n++;
    }
    /* The loop ends with "no start line" at the end of the text: an error
     * only when nothing was read, or when a later block is broken. */
    unsigned long e = ERR_peek_last_error();
    if (n > 0 && e && ERR_GET_REASON(e) != PEM_R_NO_START_LINE)
        n = -1;
    BIO_free(b);
    return n;
}

sl_status sec_check_tls(const char *cert, size_t cert_len, const char *key, size_t key_len, const char *ca,
                        size_t ca_len, char *why, size_t wn)
{
    X509 *leaf = NULL;
    EVP_PKEY *pk = NULL;
    BIO *b = NULL;
    sl_status rc = SL_ERR_INVALID;
    ERR_clear_error();
    if (!cert || !cert_len) {
        snprintf(why, wn, "certificate: empty");
        goto out;
    }
    int n = count_certs(cert, cert_len, &leaf);
    if (n <= 0) {
        snprintf(why, wn, "certificate: %s", n == 0 ? "no PEM certificate found" : ossl_reason());
        goto out;
    }
    ERR_clear_error();
    if (!key || !key_len) {
        snprintf(why, wn, "private key: empty");
        goto out;
    }
    if (!(b = BIO_new_mem_buf(key, (int)key_len)) || !(pk = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL))) {
        snprintf(why, wn, "private key: %s", ossl_reason());
        goto out;
    }
    if (X509_check_private_key(leaf, pk) != 1) {
        snprintf(why, wn, "private key does not match the certificate");
        goto out;
    }
    if (ca && ca_len) {
        ERR_clear_error();
        n = count_certs(ca, ca_len, NULL);
        if (n <= 0) {
            snprintf(why, wn, "CA bundle: %s", n == 0 ? "no PEM certificate found" : ossl_reason());
            goto out;
        }
    }
    rc = SL_OK;
out:
    ERR_clear_error();
    BIO_free(b);
    EVP_PKEY_free(pk);
    X509_free(leaf);
    return rc;
}

/* Packs a Secret with our metadata around spec. */
static sl_status pack_secret(sec_item *it, const char *name, const char *ns, const char *dir, const char *file,
                             Sluice__V1__SecretSpec *spec, const Sluice__V1__Metadata *from)
{
    Sluice__V1__Secret s = SLUICE__V1__SECRET__INIT;
    Sluice__V1__Metadata md = SLUICE__V1__METADATA__INIT;
    Sluice__V1__Metadata__AnnotationsEntry a[2], *ap[2 + 32];
    size_t na = 0;
    if (from) {
        md = *from;
        md.base.descriptor = &sluice__v1__metadata__descriptor;
    }
    md.name = (char *)name;
    md.namespace_ = (char *)ns;
    md.resource_version = "";
    md.generation = 0;
    sluice__v1__metadata__annotations_entry__init(&a[0]);
    sluice__v1__metadata__annotations_entry__init(&a[1]);
    a[0].key = SEC_SOURCE_ANNOTATION;
    a[0].value = (char *)file;
    a[1].key = SEC_DIR_ANNOTATION;
    a[1].value = (char *)dir;
    ap[na++] = &a[0];
    if (dir)
        ap[na++] = &a[1];
    for (size_t i = 0; from && i < from->n_annotations && na < 34; i++)
        if (strcmp(from->annotations[i]->key, SEC_SOURCE_ANNOTATION) &&
            strcmp(from->annotations[i]->key, SEC_DIR_ANNOTATION))
            ap[na++] = from->annotations[i];
    md.n_annotations = na;
    md.annotations = ap;
    s.metadata = &md;
    s.spec = spec;
    it->len = sluice__v1__secret__get_packed_size(&s);
    if (!(it->value = malloc(it->len ? it->len : 1)))
        return SL_ERR_NOMEM;
    sluice__v1__secret__pack(&s, it->value);
    return SL_OK;
}

static bool has_suffix(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

void sec_tls_text_deinit(sec_tls_text *t)
{
    free_secret_text(t->cert, t->cert_len);
    free_secret_text(t->key, t->key_len);
    free_secret_text(t->ca, t->ca_len);
    memset(t, 0, sizeof *t);
}

sl_status sec_tls_read(sec_tls_text *t, const char *crt, const char *keyf, const char *caf, bool ca_if_exists,
                       const char **bad, char *why, size_t wn)
{
    memset(t, 0, sizeof *t);
    *bad = crt;
    if (read_all(&t->cert, &t->cert_len, crt, why, wn) != SL_OK)
        goto err;
    *bad = keyf;
    if (read_all(&t->key, &t->key_len, keyf, why, wn) != SL_OK)
        goto err;
    *bad = caf;
    if (caf && (!ca_if_exists || access(caf, F_OK) == 0) && read_all(&t->ca, &t->ca_len, caf, why, wn) != SL_OK)
        goto err;
    if (sec_check_tls(t->cert, t->cert_len, t->key, t->key_len, t->ca, t->ca_len, why, wn) != SL_OK) {
        *bad = strstr(why, "private key:") == why ? keyf : strstr(why, "CA") == why ? caf : crt;
        goto err;
    }
    *bad = NULL;
    return SL_OK;
err:
    sec_tls_text_deinit(t);
    return SL_ERR_INVALID;
}

/* A tls Secret from cert, key and optional CA files. */
static void tls_from_files(sec_set *out, const char *dir, const char *ns, const char *name, const char *label,
                           const char *crt, const char *keyf, const char *caf)
{
    char key[SL_RESOURCE_KEY_MAX], why[512];
    const char *bad = NULL;
    sec_tls_text t;
    if (sl_kind_key(key, sizeof key, sl_kind_by_name("Secret"), ns, name) != SL_OK) {
        item_error(out, "", label, "%s", sl_error_msg());
        return;
    }
    if (access(crt, F_OK) == 0 && access(keyf, F_OK) != 0) {
        item_error(out, key, crt, "no matching key file %s", keyf);
        return;
    }
    if (sec_tls_read(&t, crt, keyf, caf, true, &bad, why, sizeof why) != SL_OK) {
        item_error(out, key, bad, "%s", why);
        return;
    }
    Sluice__V1__SecretSpec spec = SLUICE__V1__SECRET_SPEC__INIT;
    Sluice__V1__TlsSecret tls = SLUICE__V1__TLS_SECRET__INIT;
    tls.cert_chain = t.cert;
    tls.private_key = t.key;
    tls.root_ca = t.ca ? t.ca : "";
    spec.kind_case = SLUICE__V1__SECRET_SPEC__KIND_TLS;
    spec.tls = &tls;
    sec_item *it = add_item(out, key, label);
    if (it && pack_secret(it, name, ns, dir, label, &spec, NULL) != SL_OK)
        it->error = strdup("out of memory");
    sec_tls_text_deinit(&t);
}

sl_status sec_check_spec(const Sluice__V1__SecretSpec *spec, char *why, size_t wn)
{
    if (!spec || spec->kind_case == SLUICE__V1__SECRET_SPEC__KIND__NOT_SET) {
        snprintf(why, wn, "secret has no tls, aws or header material");
        return SL_ERR_INVALID;
    }
    switch (spec->kind_case) {
    case SLUICE__V1__SECRET_SPEC__KIND_TLS: {
        const Sluice__V1__TlsSecret *t = spec->tls;
        return sec_check_tls(t->cert_chain, strlen(t->cert_chain), t->private_key, strlen(t->private_key),
                             t->root_ca, strlen(t->root_ca), why, wn);
    }
    case SLUICE__V1__SECRET_SPEC__KIND_AWS:
        if (!spec->aws->access_key[0] || !spec->aws->secret_key[0]) {
            snprintf(why, wn, "aws: accessKey and secretKey are required");
            return SL_ERR_INVALID;
        }
        return SL_OK;
    case SLUICE__V1__SECRET_SPEC__KIND_HEADER:
        if (!spec->header->n_headers) {
            snprintf(why, wn, "header: no headers");
            return SL_ERR_INVALID;
        }
        return SL_OK;
    default: return SL_ERR_INVALID;
    }
}

/* A diagnostic without the value it may quote. */
static void diag_text(char *buf, size_t n, const sl_diag *d)
{
    for (size_t i = 0; i < sl_diag_count(d); i++) {
        const sl_diag_item *x = sl_diag_get(d, i);
        if (x->severity != SL_DIAG_ERROR)
            continue;
        char msg[256];
        snprintf(msg, sizeof msg, "%s", x->message);
        msg[strcspn(msg, "\"'")] = 0; /* values are quoted: cut before them */
        snprintf(buf, n, "line %u column %u: %s%s", x->line, x->column, msg,
                 strlen(msg) < strlen(x->message) ? "..." : "");
        return;
    }
    snprintf(buf, n, "invalid document");
}

/* msg with every double-quoted value replaced by "...": a value read from
 * a secret file may hold key material (a quote left open swallows the
 * lines after it, private key included, into the name it started). */
static void redact_quoted(char *buf, size_t n, const char *msg)
{
    size_t o = 0;
    bool in = false;
    for (const char *p = msg; *p && o + 4 < n; p++) {
        if (*p == '"') {
            if (!in) {
                memcpy(buf + o, "\"...", 4);
                o += 4;
            } else {
                buf[o++] = '"';
            }
            in = !in;
        } else if (!in) {
            buf[o++] = *p;
        }
    }
    buf[o < n ? o : n - 1] = 0;
}

/* Stores a decoded spec (checked) as the secret name/ns of src. */
static void add_spec(sec_set *out, const char *key, const char *where, const char *name, const char *ns,
                     const Sluice__V1__SecretSpec *spec, const Sluice__V1__Metadata *md, const sec_source *src)
{
    char why[512];
    if (sec_check_spec(spec, why, sizeof why) != SL_OK) {
        item_error(out, key, where, "%s", why);
        return;
    }
    sec_item *it = add_item(out, key, src->source);
    if (it && pack_secret(it, name, ns, src->dir, src->source, (Sluice__V1__SecretSpec *)spec, md) != SL_OK)
        it->error = strdup("out of memory");
}

/* Wipes the key material of a decoded spec before it is freed. */
static void wipe_spec(Sluice__V1__SecretSpec *spec)
{
    if (spec && spec->kind_case == SLUICE__V1__SECRET_SPEC__KIND_TLS)
        sec_wipe(spec->tls->private_key, strlen(spec->tls->private_key));
    else if (spec && spec->kind_case == SLUICE__V1__SECRET_SPEC__KIND_AWS)
        sec_wipe(spec->aws->secret_key, strlen(spec->aws->secret_key));
}

void sec_secret_free(Sluice__V1__Secret *s)
{
    if (!s)
        return;
    wipe_spec(s->spec);
    sluice__v1__secret__free_unpacked(s, NULL);
}

const char *sec_secret_annotation(const Sluice__V1__Secret *s, const char *key)
{
    for (size_t i = 0; s && s->metadata && i < s->metadata->n_annotations; i++)
        if (!strcmp(s->metadata->annotations[i]->key, key))
            return s->metadata->annotations[i]->value;
    return NULL;
}

/* One Secret document, in Sluice's layout (spec: {tls: ...}) or Gloo's
 * (tls: ... beside metadata). */
static void secret_doc(sec_set *out, const sl_codec_doc *doc, const char *where, const sec_source *src)
{
    char why[512], key[SL_RESOURCE_KEY_MAX];
    const char *name = sl_codec_doc_scalar(doc, "metadata.name");
    const char *dns = sl_codec_doc_scalar(doc, "metadata.namespace");
    if (!dns || !dns[0])
        dns = src->ns;
    if (sl_kind_key(key, sizeof key, sl_kind_by_name("Secret"), dns, name ? name : "") != SL_OK) {
        redact_quoted(why, sizeof why, sl_error_msg());
        item_error(out, "", where, "%s", why);
        return;
    }
    static const char *const ign[] = {"apiVersion", "kind", NULL};
    static const char *const ign_gloo[] = {"apiVersion", "kind", "metadata", NULL};
    sl_codec_options o = {.root_name = "Secret", .ignore_keys = ign};
    ProtobufCMessage *m = NULL, *spec_m = NULL;
    sl_diag d1, d2;
    sl_diag_init(&d1);
    sl_diag_init(&d2);
    Sluice__V1__SecretSpec *spec = NULL;
    const Sluice__V1__Metadata *md = NULL;
    if (sl_codec_decode_doc(&m, &sluice__v1__secret__descriptor, doc, &o, &d1) == SL_OK) {
        spec = ((Sluice__V1__Secret *)m)->spec;
        md = ((Sluice__V1__Secret *)m)->metadata;
    } else {
        sl_codec_options o2 = {.root_name = "Secret", .ignore_keys = ign_gloo};
        if (sl_codec_decode_doc(&spec_m, &sluice__v1__secret_spec__descriptor, doc, &o2, &d2) == SL_OK)
            spec = (Sluice__V1__SecretSpec *)spec_m;
    }
    if (!m && !spec_m) {
        bool gloo = sl_codec_doc_scalar(doc, "tls.certChain") || sl_codec_doc_scalar(doc, "aws.accessKey");
        diag_text(why, sizeof why, gloo ? &d2 : &d1);
        item_error(out, key, where, "%s", why);
    } else {
        add_spec(out, key, where, name, dns, spec, md, src);
    }
    sl_diag_deinit(&d1);
    sl_diag_deinit(&d2);
    wipe_spec(spec); /* decoded material: wipe before freeing */
    if (m)
        protobuf_c_message_free_unpacked(m, NULL);
    if (spec_m)
        protobuf_c_message_free_unpacked(spec_m, NULL);
}

sl_status sec_parse_text(sec_set *out, const char *text, size_t len, const sec_source *src)
{
    char why[512];
    sl_codec_stream *st = NULL;
    if (sl_codec_stream_new(&st, text, len, src->label) != SL_OK) {
        item_error(out, "", src->label, "%s", "cannot parse");
        return SL_ERR_PARSE;
    }
    for (;;) {
        sl_codec_doc *doc = NULL;
        sl_diag d;
        sl_diag_init(&d);
        sl_status rc = sl_codec_stream_next(st, &doc, &d);
        if (rc != SL_OK) {
            diag_text(why, sizeof why, &d);
            item_error(out, "", src->label, "%s", why);
            sl_diag_deinit(&d);
            if (rc == SL_ERR_PARSE && !doc)
                continue; /* the stream ends by itself after a syntax error */
            break;
        }
        sl_diag_deinit(&d);
        if (!doc)
            break;
        if (sl_codec_doc_empty(doc)) {
            sl_codec_doc_free(doc);
            continue;
        }
        const char *kind = sl_codec_doc_scalar(doc, "kind");
        char where[1100];
        snprintf(where, sizeof where, "%s:%u", src->label, sl_codec_doc_line(doc));
        if (kind && !strcmp(kind, "Secret"))
            secret_doc(out, doc, where, src);
        else if (src->only_secrets) /* the kind is a scalar the user wrote: no material */
            item_error(out, "", where, "%s", "only Secret documents are taken here");
        sl_codec_doc_free(doc);
    }
    sl_codec_stream_free(st);
    return SL_OK;
}

void sec_add_message(sec_set *out, const Sluice__V1__Secret *s, const char *where, const sec_source *src)
{
    char key[SL_RESOURCE_KEY_MAX], why[512];
    const Sluice__V1__Metadata *md = s->metadata;
    const char *name = md && md->name ? md->name : "";
    const char *ns = md && md->namespace_ && md->namespace_[0] ? md->namespace_ : src->ns;
    if (sl_kind_key(key, sizeof key, sl_kind_by_name("Secret"), ns, name) != SL_OK) {
        redact_quoted(why, sizeof why, sl_error_msg());
        item_error(out, "", where, "%s", why);
        return;
    }
    add_spec(out, key, where, name, ns, s->spec, md, src);
}

static void yaml_file(sec_set *out, const char *dir, const char *ns, const char *path)
{
    char *text = NULL, why[512];
    size_t len = 0;
    if (read_all(&text, &len, path, why, sizeof why) != SL_OK) {
        item_error(out, "", path, "%s", why);
        return;
    }
    const sec_source src = {.label = path, .ns = ns, .dir = dir, .source = path};
    sec_parse_text(out, text, len, &src);
    free_secret_text(text, len);
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

sl_status sec_scan_dir(sec_set *out, const char *dir, const char *ns)
{
    DIR *d = opendir(dir);
    if (!d)
        return sl_error_set(SL_ERR_IO, "directory %s: %s", dir, strerror(errno));
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        if (SL_VEC_RESERVE(names, cap, n + 1) != SL_OK)
            break;
        if ((names[n] = strdup(de->d_name)))
            n++;
    }
    closedir(d);
    if (n)
        qsort(names, n, sizeof *names, cmp_names); /* deterministic order */
    for (size_t i = 0; i < n; i++) {
        const char *nm = names[i];
        char path[1024], a[1100], b[1100], c[1100], base[512];
        struct stat sb;
        snprintf(path, sizeof path, "%s/%s", dir, nm);
        if (stat(path, &sb) != 0)
            continue;
        if (S_ISDIR(sb.st_mode)) {
            snprintf(a, sizeof a, "%s/tls.crt", path);
            snprintf(b, sizeof b, "%s/tls.key", path);
            snprintf(c, sizeof c, "%s/ca.crt", path);
            if (access(a, F_OK) == 0 || access(b, F_OK) == 0)
                tls_from_files(out, dir, ns, nm, path, a, b, c);
            continue;
        }
        if (has_suffix(nm, ".ca.crt"))
            continue;
        if (has_suffix(nm, ".crt")) {
            snprintf(base, sizeof base, "%.*s", (int)(strlen(nm) - 4), nm);
            snprintf(b, sizeof b, "%s/%s.key", dir, base);
            snprintf(c, sizeof c, "%s/%s.ca.crt", dir, base);
            tls_from_files(out, dir, ns, base, path, path, b, c);
        } else if (has_suffix(nm, ".key")) {
            snprintf(base, sizeof base, "%.*s", (int)(strlen(nm) - 4), nm);
            snprintf(a, sizeof a, "%s/%s.crt", dir, base);
            if (access(a, F_OK) != 0) {
                char key[SL_RESOURCE_KEY_MAX];
                if (sl_kind_key(key, sizeof key, sl_kind_by_name("Secret"), ns, base) != SL_OK)
                    key[0] = 0;
                item_error(out, key, path, "no matching certificate file %s", a);
            }
        } else if (has_suffix(nm, ".yaml") || has_suffix(nm, ".yml") || has_suffix(nm, ".json")) {
            yaml_file(out, dir, ns, path);
        }
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return SL_OK;
}
