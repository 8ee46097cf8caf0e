/* identity.c - the proxy an xDS client proves: a SPIFFE URI SAN of its
 * verified client certificate, or a per-proxy bearer token. */
#include "identity.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>

#include "sluice/vec.h"

typedef struct token {
    char *proxy;
    char *secret;
} token;

struct xds_identity {
    char *trust_domain;
    bool mtls;
    token *tokens;
    size_t n_tokens, cap_tokens;
};

static void tokens_free(xds_identity *id)
{
    for (size_t i = 0; i < id->n_tokens; i++) {
        free(id->tokens[i].proxy);
        explicit_bzero(id->tokens[i].secret, strlen(id->tokens[i].secret));
        free(id->tokens[i].secret);
    }
    free(id->tokens);
}

void xds_identity_free(xds_identity *id)
{
    if (!id)
        return;
    tokens_free(id);
    free(id->trust_domain);
    free(id);
}

/* One "<namespace>~<proxy> <token>" line (comments and blank lines are
 * skipped by the caller). */
static sl_status add_token(xds_identity *id, char *line, const char *file, int lineno)
{
    char *save = NULL, *proxy = strtok_r(line, " \t\r\n", &save), *secret = strtok_r(NULL, " \t\r\n", &save);
    if (!proxy || !secret || strtok_r(NULL, " \t\r\n", &save) || !strchr(proxy, '~'))
        return sl_error_set(SL_ERR_INVALID, "%s:%d: want '<namespace>~<proxy> <token>'", file, lineno);
    if (strlen(secret) < 16)
        return sl_error_set(SL_ERR_INVALID, "%s:%d: the token of %s is shorter than 16 characters", file,
                            lineno, proxy);
    if (SL_VEC_RESERVE(id->tokens, id->cap_tokens, id->n_tokens + 1) != SL_OK)
        return SL_ERR_NOMEM;
    token *t = &id->tokens[id->n_tokens];
    if (!(t->proxy = strdup(proxy)) || !(t->secret = strdup(secret))) {
        free(t->proxy);
        return sl_error_set(SL_ERR_NOMEM, "%s", file);
    }
    id->n_tokens++;
    return SL_OK;
}

static sl_status load_tokens(xds_identity *id, const char *file)
{
    char line[1024];
    int lineno = 0;
    sl_status st = SL_OK;
    FILE *f = fopen(file, "re");
    if (!f)
        return sl_error_set(SL_ERR_IO, "token file %s: %s", file, strerror(errno));
    while (st == SL_OK && fgets(line, sizeof line, f)) {
        lineno++;
        char *s = line + strspn(line, " \t");
        if (*s == '#' || *s == '\n' || *s == '\r' || *s == '\0')
            continue;
        st = add_token(id, s, file, lineno);
    }
    explicit_bzero(line, sizeof line);
    fclose(f);
    if (st == SL_OK && id->n_tokens == 0)
        st = sl_error_set(SL_ERR_INVALID, "token file %s holds no tokens", file);
    return st;
}

sl_status xds_identity_new(xds_identity **out, const xds_identity_opts *o)
{
    sl_status st = SL_OK;
    xds_identity *id = calloc(1, sizeof *id);
    if (!id || !(id->trust_domain = strdup(o->trust_domain ? o->trust_domain : "sluice"))) {
        xds_identity_free(id);
        return sl_error_set(SL_ERR_NOMEM, "identity");
    }
    id->mtls = o->mtls;
    if (o->token_file && (st = load_tokens(id, o->token_file)) != SL_OK) {
        xds_identity_free(id);
        return st;
    }
    *out = id;
    return SL_OK;
}

bool xds_identity_required(const xds_identity *id)
{
    return id && (id->mtls || id->n_tokens > 0);
}

/* "spiffe://<td>/ns/<ns>/proxy/<name>" -> "<ns>~<name>", or NULL. */
static char *spiffe_proxy(const xds_identity *id, const char *uri, size_t len)
{
    char buf[512], *out = NULL;
    size_t tdl = strlen(id->trust_domain);
    if (len >= sizeof buf)
        return NULL;
    memcpy(buf, uri, len);
    buf[len] = '\0';
    if (strncmp(buf, "spiffe://", 9) != 0 || strncmp(buf + 9, id->trust_domain, tdl) != 0 ||
        strncmp(buf + 9 + tdl, "/ns/", 4) != 0)
        return NULL;
    char *ns = buf + 9 + tdl + 4, *slash = strchr(ns, '/');
    if (!slash || slash == ns || strncmp(slash, "/proxy/", 7) != 0)
        return NULL;
    char *name = slash + 7;
    if (!*name || strchr(name, '/'))
        return NULL;
    *slash = '\0';
    if (asprintf(&out, "%s~%s", ns, name) < 0)
        out = NULL;
    return out;
}

static char *from_certificate(const xds_identity *id, grpc_call *call)
{
    char *proxy = NULL;
    grpc_auth_context *ctx = grpc_call_auth_context(call);
    if (!ctx)
        return NULL;
    static const char *const props[] = {GRPC_PEER_SPIFFE_ID_PROPERTY_NAME, GRPC_PEER_URI_PROPERTY_NAME,
                                        GRPC_X509_SAN_PROPERTY_NAME};
    for (size_t i = 0; i < sizeof props / sizeof props[0] && !proxy; i++) {
        grpc_auth_property_iterator it = grpc_auth_context_find_properties_by_name(ctx, props[i]);
        const grpc_auth_property *p;
        while (!proxy && (p = grpc_auth_property_iterator_next(&it)))
            proxy = spiffe_proxy(id, p->value, p->value_length);
    }
    grpc_auth_context_release(ctx);
    return proxy;
}

/* Constant time in the secret's length, so a token is not guessed byte by
 * byte from response times. */
static bool same_secret(const char *a, size_t alen, const char *b)
{
    size_t blen = strlen(b);
    unsigned char d = alen != blen;
    for (size_t i = 0; i < blen; i++)
        d |= (unsigned char)(b[i] ^ (i < alen ? a[i] : 0));
    return d == 0;
}

static char *from_token(const xds_identity *id, const grpc_metadata_array *md, const char **why)
{
    for (size_t i = 0; i < md->count; i++) {
        if (grpc_slice_str_cmp(md->metadata[i].key, "authorization") != 0)
            continue;
        const char *v = (const char *)GRPC_SLICE_START_PTR(md->metadata[i].value);
        size_t n = GRPC_SLICE_LENGTH(md->metadata[i].value);
        if (n < 7 || strncasecmp(v, "Bearer ", 7) != 0) {
            *why = "authorization metadata is not 'Bearer <token>'";
            return NULL;
        }
        for (size_t t = 0; t < id->n_tokens; t++)
            if (same_secret(v + 7, n - 7, id->tokens[t].secret))
                return strdup(id->tokens[t].proxy);
        *why = "unknown bearer token";
        return NULL;
    }
    *why = "no authorization metadata";
    return NULL;
}

char *xds_identity_of_call(const xds_identity *id, grpc_call *call, const grpc_metadata_array *md,
                           const char **why)
{
    char *proxy = NULL;
    *why = "no client identity";
    if (!xds_identity_required(id))
        return NULL;
    if (id->mtls && (proxy = from_certificate(id, call)))
        return proxy;
    if (id->mtls && id->n_tokens == 0) {
        *why = "the client certificate has no URI SAN spiffe://<trust domain>/ns/<namespace>/proxy/<name>";
        return NULL;
    }
    if (id->n_tokens > 0)
        proxy = from_token(id, md, why);
    return proxy;
}
