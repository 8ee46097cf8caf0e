/* cmds_secret.c - Secrets through the secret-watcher's API
 * (sluice.api.secret.apply / .delete): `create secret tls|aws|header`,
 * the Secret documents of `apply -f`, and `delete secret NAME`. Secrets
 * never pass through the config API or sluice_config. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "sluice/codec.h"
#include "sluice/file.h"
#include "sluice/secrets.h"
#include "sluice/types.h"
#include "sluice/vec.h"
#include "sluice/v1/secret.pb-c.h"

#define SUBJECT_APPLY "sluice.api.secret.apply"

void ctl_wipe_free(void *p, size_t n)
{
    if (p)
        sec_wipe(p, n);
    free(p);
}

/* ---- apply -f: the Secret documents of a file --------------------------- */

/* A YAML document marker line ("---" or "..." then a blank or the end). */
static bool doc_marker(const char *p, const char *end)
{
    if (end - p < 3 || (strncmp(p, "---", 3) != 0 && strncmp(p, "...", 3) != 0))
        return false;
    return end - p == 3 || p[3] == ' ' || p[3] == '\t' || p[3] == '\n' || p[3] == '\r';
}

/* A document of a file: its start line, whether it is a Secret. */
typedef struct doc_kind {
    unsigned line;
    bool secret;
} doc_kind;

/* Blanks in dst (a copy of the text) the lines of the documents whose
 * secret differs from keep_secrets; docs[] ascend by line. */
static void blank_docs(char *dst, size_t len, const doc_kind *docs, size_t n, bool keep_secrets)
{
    unsigned ln = 1;
    size_t d = 0;
    bool cur_drop = false, in_doc = false;
    for (char *p = dst, *end = dst + len; p < end; ln++) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        char *eol = nl ? nl : end;
        while (d < n && docs[d].line <= ln) {
            cur_drop = docs[d].secret != keep_secrets;
            in_doc = true;
            d++;
        }
        if (in_doc && cur_drop && !doc_marker(p, eol))
            memset(p, ' ', (size_t)(eol - p));
        p = nl ? nl + 1 : end;
    }
}

/* Calls fn for each non-empty document of text (YAML or JSON); fn returns
 * false to stop. SL_ERR_PARSE when a document does not parse (fn has seen
 * those before it), SL_ERR_NOMEM. */
static sl_status each_doc(const char *text, size_t len, const char *fname, bool (*fn)(sl_codec_doc *, void *),
                          void *ud)
{
    sl_codec_stream *st = NULL;
    sl_status rc = sl_codec_stream_new(&st, text, len, fname);
    for (bool go = true; rc == SL_OK && go;) {
        sl_codec_doc *doc = NULL;
        sl_diag d;
        sl_diag_init(&d);
        rc = sl_codec_stream_next(st, &doc, &d);
        sl_diag_deinit(&d);
        if (rc != SL_OK || !doc)
            break;
        if (!sl_codec_doc_empty(doc))
            go = fn(doc, ud);
        sl_codec_doc_free(doc);
    }
    sl_codec_stream_free(st);
    return rc;
}

/* The documents of a file. */
typedef struct doc_kinds {
    doc_kind *v;
    size_t n, cap, n_secret;
    bool oom;
} doc_kinds;

static bool note_kind(sl_codec_doc *doc, void *ud)
{
    doc_kinds *k = ud;
    const char *kind = sl_codec_doc_scalar(doc, "kind");
    if (SL_VEC_RESERVE(k->v, k->cap, k->n + 1) != SL_OK)
        return !(k->oom = true);
    k->v[k->n].line = sl_codec_doc_line(doc);
    k->v[k->n].secret = kind && strcmp(kind, "Secret") == 0;
    k->n_secret += k->v[k->n].secret;
    k->n++;
    return true;
}

sl_status ctl_split_secrets(ctl_split *out, const char *text, size_t len, const char *fname)
{
    doc_kinds k = {0};
    sl_status rc = SL_OK;
    memset(out, 0, sizeof *out);
    out->len = len;
    sl_status parsed = each_doc(text, len, fname, note_kind, &k);
    if (k.oom || parsed == SL_ERR_NOMEM)
        rc = SL_ERR_NOMEM;
    else if (parsed != SL_OK)
        k.n_secret = 0; /* goes whole to the config API, which says why */
    if (rc == SL_OK && k.n_secret) {
        if (!(out->secrets = malloc(len + 1)) || (k.n_secret < k.n && !(out->config = malloc(len + 1)))) {
            ctl_split_deinit(out);
            rc = SL_ERR_NOMEM;
        } else {
            memcpy(out->secrets, text, len);
            out->secrets[len] = 0;
            blank_docs(out->secrets, len, k.v, k.n, true);
            if (out->config) {
                memcpy(out->config, text, len);
                out->config[len] = 0;
                blank_docs(out->config, len, k.v, k.n, false);
            }
        }
    }
    free(k.v);
    return rc;
}

void ctl_split_deinit(ctl_split *s)
{
    ctl_wipe_free(s->secrets, s->len);
    ctl_wipe_free(s->config, s->len);
    memset(s, 0, sizeof *s);
}

/* The Secret documents' names, for a DeleteRequest. */
typedef struct secret_refs {
    Sluice__V1__ObjectRef refs[256], *rp[256];
    size_t n;
} secret_refs;

static bool note_secret(sl_codec_doc *doc, void *ud)
{
    secret_refs *s = ud;
    const char *kind = sl_codec_doc_scalar(doc, "kind");
    if (!kind || strcmp(kind, "Secret") != 0)
        return true;
    if (s->n == sizeof s->refs / sizeof s->refs[0])
        return false;
    const char *name = sl_codec_doc_scalar(doc, "metadata.name");
    const char *ns = sl_codec_doc_scalar(doc, "metadata.namespace");
    Sluice__V1__ObjectRef *o = &s->refs[s->n];
    sluice__v1__object_ref__init(o);
    o->kind = "Secret";
    o->name = strdup(name ? name : "");
    o->namespace_ = strdup(ns && ns[0] ? ns : SL_RESOURCE_DEFAULT_NAMESPACE);
    s->rp[s->n++] = o;
    return o->name && o->namespace_;
}

int ctl_delete_secret_docs(ctl *c, sl_nats *nc, const char *text, size_t len, const char *fname, bool dry_run)
{
    secret_refs *s = calloc(1, sizeof *s);
    int code = 1;
    if (!s)
        return 1;
    each_doc(text, len, fname, note_secret, s);
    natsMsg *reply = s->n ? ctl_delete_request(c, nc, CTL_SECRET_DELETE, s->rp, s->n, dry_run) : NULL;
    if (reply) {
        code = ctl_delete_reply(reply, dry_run);
        natsMsg_Destroy(reply);
    }
    for (size_t i = 0; i < s->n; i++) {
        free(s->refs[i].name);
        free(s->refs[i].namespace_);
    }
    free(s);
    return code;
}

int ctl_apply_secret_text(ctl *c, sl_nats *nc, const char *text, size_t len, sl_content_type ct, const char *fname,
                          bool dry_run)
{
    natsMsg *reply = ctl_api_request(c, nc, SUBJECT_APPLY, ct, NULL, text, len, fname, dry_run);
    return reply ? ctl_apply_reply(reply, fname, dry_run) : 1;
}

/* ---- create secret tls|aws|header --------------------------------------- */

static const char create_usage[] =
    "Usage: sluicectl create secret tls NAME --certchain FILE --privatekey FILE [--rootca FILE]\n"
    "                                        [--ocspstaple FILE] [-n NS] [--dry-run]\n"
    "       sluicectl create secret aws NAME --access-key ID --secret-key KEY [--session-token T]\n"
    "                                        [-n NS] [--dry-run]\n"
    "       sluicectl create secret header NAME --headers NAME=VALUE[,NAME=VALUE...] [-n NS] [--dry-run]\n"
    "       ... [-o yaml|json]\n"
    "Creates or replaces a Gloo Secret (gloo.solo.io/v1) through the secret-watcher\n"
    "(sluice.api.secret.apply), which checks it and stores it in sluice_secrets.\n"
    "--dry-run: the secret-watcher checks it and stores nothing; with -o yaml|json\n"
    "nothing is sent: the Secret document (Gloo's format, what apply -f takes) is\n"
    "printed instead, as glooctl's create secret --dry-run -o yaml. Without\n"
    "--dry-run, -o prints the document once it is stored.\n"
    "As glooctl: NAME may be given as --name; --cert, --key and --root-ca are\n"
    "--certchain, --privatekey and --rootca. Files are PEM; the key must match the\n"
    "first certificate of the chain.\n";

/* The flags of create secret; strings are argv's. */
typedef struct create_opts {
    const char *type, *name, *ns;
    const char *certchain, *privatekey, *rootca, *ocsp;
    const char *access_key, *secret_key, *session_token;
    const char *headers[64];
    size_t n_headers;
    bool dry_run;
    const char *output; /* -o yaml|json, or NULL */
} create_opts;

static int parse_create(create_opts *o, int argc, char **argv)
{
    static const struct {
        const char *shrt, *lng, *alias;
        size_t off;
    } flags[] = {
        {"-n", "--namespace", NULL, offsetof(create_opts, ns)},
        {NULL, "--name", NULL, offsetof(create_opts, name)},
        {NULL, "--certchain", "--cert", offsetof(create_opts, certchain)},
        {NULL, "--privatekey", "--key", offsetof(create_opts, privatekey)},
        {NULL, "--rootca", "--root-ca", offsetof(create_opts, rootca)},
        {NULL, "--ocspstaple", NULL, offsetof(create_opts, ocsp)},
        {NULL, "--access-key", NULL, offsetof(create_opts, access_key)},
        {NULL, "--secret-key", NULL, offsetof(create_opts, secret_key)},
        {NULL, "--session-token", NULL, offsetof(create_opts, session_token)},
        {"-o", "--output", NULL, offsetof(create_opts, output)},
    };
    memset(o, 0, sizeof *o);
    for (int i = 2; i < argc; i++) { /* argv[0] "create", argv[1] "secret" */
        const char *v = NULL;
        bool known = false;
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            fputs(create_usage, stdout);
            return -1;
        }
        if (!strcmp(argv[i], "--dry-run")) {
            o->dry_run = true;
            continue;
        }
        if (ctl_opt(argc, argv, &i, NULL, "--headers", &v)) {
            if (!v)
                return ctl_usage_error("create", "flag needs an argument: --headers");
            if (o->n_headers == sizeof o->headers / sizeof o->headers[0])
                return ctl_usage_error("create", "too many --headers");
            o->headers[o->n_headers++] = v;
            continue;
        }
        for (size_t f = 0; f < sizeof flags / sizeof flags[0] && !known; f++) {
            if (ctl_opt(argc, argv, &i, flags[f].shrt, flags[f].lng, &v) ||
                (flags[f].alias && ctl_opt(argc, argv, &i, NULL, flags[f].alias, &v))) {
                if (!v)
                    return ctl_usage_error("create", "flag needs an argument: %s", flags[f].lng);
                *(const char **)((char *)o + flags[f].off) = v;
                known = true;
            }
        }
        if (known)
            continue;
        if (argv[i][0] == '-')
            return ctl_usage_error("create", "unknown flag %s", argv[i]);
        if (!o->type)
            o->type = argv[i];
        else if (!o->name)
            o->name = argv[i];
        else
            return ctl_usage_error("create", "too many arguments");
    }
    if (!o->type)
        return ctl_usage_error("create", "give the type of secret: tls, aws or header");
    if (!o->name)
        return ctl_usage_error("create", "give the secret's NAME (or --name)");
    if (!o->ns)
        o->ns = SL_RESOURCE_DEFAULT_NAMESPACE;
    if (o->output && strcmp(o->output, "yaml") != 0 && strcmp(o->output, "json") != 0)
        return ctl_usage_error("create", "-o %s: the output is yaml or json", o->output);
    if (sl_resource_check_name(o->name) != SL_OK || sl_resource_check_namespace(o->ns) != SL_OK)
        return ctl_usage_error("create", "%s", sl_error_msg());
    return 0;
}

/* The tls material from files; on failure prints the flag, file and reason. */
static int tls_spec(Sluice__V1__TlsSecret *tls, sec_tls_text *t, uint8_t **ocsp, size_t *ocsp_len,
                    const create_opts *o)
{
    char why[512];
    const char *bad = NULL;
    if (!o->certchain || !o->privatekey) {
        ctl_usage_error("create", "a tls secret needs --certchain FILE and --privatekey FILE");
        return 1;
    }
    if (sec_tls_read(t, o->certchain, o->privatekey, o->rootca, false, &bad, why, sizeof why) != SL_OK) {
        const char *flag = bad == o->privatekey ? "--privatekey" : bad == o->rootca ? "--rootca" : "--certchain";
        if (strstr(why, "does not match")) /* the pair is at fault: name both */
            fprintf(stderr, "error: --privatekey %s: %s in --certchain %s\n", o->privatekey, why, o->certchain);
        else
            fprintf(stderr, "error: %s %s: %s\n", flag, bad ? bad : "", why);
        return 1;
    }
    tls->cert_chain = t->cert;
    tls->private_key = t->key;
    tls->root_ca = t->ca ? t->ca : "";
    if (o->ocsp) {
        char *b = NULL;
        if (sl_file_read(&b, ocsp_len, o->ocsp) != SL_OK) {
            fprintf(stderr, "error: --ocspstaple %s: %s\n", o->ocsp, sl_error_msg());
            return 1;
        }
        *ocsp = (uint8_t *)b;
        tls->ocsp_staple.data = *ocsp;
        tls->ocsp_staple.len = *ocsp_len;
    }
    return 0;
}

/* --headers NAME=VALUE,...: the entries, in e (n of them at most cap). */
static int header_spec(Sluice__V1__HeaderSecret *h, Sluice__V1__HeaderSecret__HeadersEntry *e,
                       Sluice__V1__HeaderSecret__HeadersEntry **ep, char *buf, size_t cap, const create_opts *o)
{
    size_t n = 0, k = 0;
    for (size_t i = 0; i < o->n_headers; i++) {
        const char *p = o->headers[i];
        while (*p) {
            size_t l = strcspn(p, ",");
            const char *eq = memchr(p, '=', l);
            k++;
            if (l && (!eq || eq == p)) {
                /* the entry may hold a value: name only its place */
                fprintf(stderr, "error: --headers: entry %zu is not NAME=VALUE\n", k);
                return 1;
            }
            if (l && n == cap) {
                fprintf(stderr, "error: --headers: more than %zu headers\n", cap);
                return 1;
            }
            if (l) {
                sluice__v1__header_secret__headers_entry__init(&e[n]);
                e[n].key = buf;
                buf += sprintf(buf, "%.*s", (int)(eq - p), p) + 1;
                e[n].value = buf;
                buf += sprintf(buf, "%.*s", (int)(l - (size_t)(eq - p) - 1), eq + 1) + 1;
                ep[n] = &e[n];
                n++;
            }
            p += l + (p[l] == ',');
        }
    }
    if (!n) {
        ctl_usage_error("create", "a header secret needs --headers NAME=VALUE[,NAME=VALUE...]");
        return 1;
    }
    h->headers = ep;
    h->n_headers = n;
    return 0;
}

/* Sends secret to the secret API and prints the result: the exit code. */
static int send_secret(ctl *c, const Sluice__V1__Secret *secret, bool dry_run)
{
    Sluice__V1__ApplyRequest req = SLUICE__V1__APPLY_REQUEST__INIT;
    Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT, *anys[] = {&any};
    size_t slen = sluice__v1__secret__get_packed_size(secret), rlen = 0;
    uint8_t *sbuf = malloc(slen ? slen : 1), *rbuf = NULL;
    sl_nats *nc = NULL;
    int code = 1;
    if (!sbuf)
        goto out;
    sluice__v1__secret__pack(secret, sbuf);
    any.type_url = "type.googleapis.com/sluice.v1.Secret";
    any.value.data = sbuf;
    any.value.len = slen;
    req.resources = anys;
    req.n_resources = 1;
    req.dry_run = dry_run;
    req.source = "sluicectl";
    rlen = sluice__v1__apply_request__get_packed_size(&req);
    if (!(rbuf = malloc(rlen ? rlen : 1)))
        goto out;
    sluice__v1__apply_request__pack(&req, rbuf);
    if (!(nc = ctl_connect(c)))
        goto out;
    natsMsg *reply = ctl_api_request(c, nc, SUBJECT_APPLY, SL_CT_PROTOBUF, sluice__v1__apply_request__descriptor.name,
                                     rbuf, rlen, NULL, dry_run);
    code = reply ? ctl_apply_reply(reply, "sluicectl create secret", dry_run) : 1;
out:
    ctl_close(nc);
    ctl_wipe_free(sbuf, slen);
    ctl_wipe_free(rbuf, rlen);
    return code;
}

/* text with every line but the first indented by two more spaces, into a
 * new buffer (NULL when out of memory). */
static char *indent_json(const char *text, size_t *len)
{
    size_t n = 0, o = 0;
    char *out;
    for (const char *p = text; *p; p++)
        n += *p == '\n';
    if (!(out = malloc(strlen(text) + 2 * n + 1)))
        return NULL;
    for (const char *p = text; *p; p++) {
        out[o++] = *p;
        if (*p == '\n' && p[1])
            o += (size_t)sprintf(out + o, "  ");
    }
    out[o] = '\0';
    *len = o;
    return out;
}

/* Prints secret as the document sluicectl apply -f takes, in Gloo's
 * format (its file and Vault storage): apiVersion, kind, metadata and the
 * secret's tls, aws or header beside them. Buffers that held material are
 * wiped. 0, or 1 with the reason on stderr. */
static int print_secret(const Sluice__V1__Secret *secret, bool json)
{
    sl_codec_options o = {0};
    char *md = NULL, *spec = NULL, *mdi = NULL;
    size_t md_len = 0, spec_len = 0, mdi_len = 0;
    int code = 1;
    o.resolver = sl_types_find_url;
    if ((json ? sl_codec_encode_json(&md, &md_len, &secret->metadata->base, &o)
              : sl_codec_encode_yaml(&md, &md_len, &secret->metadata->base, &o)) != SL_OK ||
        (json ? sl_codec_encode_json(&spec, &spec_len, &secret->spec->base, &o)
              : sl_codec_encode_yaml(&spec, &spec_len, &secret->spec->base, &o)) != SL_OK) {
        fprintf(stderr, "error: encoding the secret: %s\n", sl_error_msg());
        goto out;
    }
    if (json) {
        /* {"apiVersion", "kind", "metadata": {...}, then the spec's members} */
        const char *members = strchr(spec, '{');
        if (!(mdi = indent_json(md, &mdi_len)))
            goto out;
        while (mdi_len && mdi[mdi_len - 1] == '\n')
            mdi[--mdi_len] = '\0';
        printf("{\n  \"apiVersion\": \"gloo.solo.io/v1\",\n  \"kind\": \"Secret\",\n  \"metadata\": %s,%s",
               mdi, members ? members + 1 : "\n}\n");
    } else {
        /* metadata: its fields indented under it */
        printf("apiVersion: gloo.solo.io/v1\nkind: Secret\nmetadata:\n");
        for (const char *p = md; *p;) {
            size_t l = strcspn(p, "\n");
            printf("  %.*s\n", (int)l, p);
            p += l + (p[l] == '\n');
        }
        fputs(spec, stdout);
    }
    code = fflush(stdout) == 0 ? 0 : 1;
out:
    ctl_wipe_free(md, md_len);
    ctl_wipe_free(mdi, mdi_len);
    ctl_wipe_free(spec, spec_len);
    return code;
}

int ctl_cmd_create(ctl *c, int argc, char **argv)
{
    create_opts o;
    if (argc < 2 || (strcmp(argv[1], "secret") != 0 && strcmp(argv[1], "secrets") != 0 &&
                     strcmp(argv[1], "sec") != 0)) {
        if (argc >= 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
            fputs(create_usage, stdout);
            return 0;
        }
        return ctl_usage_error("create", "sluicectl creates secrets only: create secret tls|aws|header NAME ...");
    }
    int r = parse_create(&o, argc, argv);
    if (r != 0)
        return r < 0 ? 0 : r;

    Sluice__V1__Secret secret = SLUICE__V1__SECRET__INIT;
    Sluice__V1__Metadata md = SLUICE__V1__METADATA__INIT;
    Sluice__V1__SecretSpec spec = SLUICE__V1__SECRET_SPEC__INIT;
    Sluice__V1__TlsSecret tls = SLUICE__V1__TLS_SECRET__INIT;
    Sluice__V1__AwsSecret aws = SLUICE__V1__AWS_SECRET__INIT;
    Sluice__V1__HeaderSecret hdr = SLUICE__V1__HEADER_SECRET__INIT;
    Sluice__V1__HeaderSecret__HeadersEntry e[128], *ep[128];
    sec_tls_text t = {0};
    uint8_t *ocsp = NULL;
    size_t ocsp_len = 0, hbuf_len = 0;
    char *hbuf = NULL;
    int code = 1;
    md.name = (char *)o.name;
    md.namespace_ = (char *)o.ns;
    secret.metadata = &md;
    secret.spec = &spec;
    if (!strcmp(o.type, "tls")) {
        if (tls_spec(&tls, &t, &ocsp, &ocsp_len, &o) != 0)
            goto out;
        spec.kind_case = SLUICE__V1__SECRET_SPEC__KIND_TLS;
        spec.tls = &tls;
    } else if (!strcmp(o.type, "aws")) {
        if (!o.access_key || !o.access_key[0] || !o.secret_key || !o.secret_key[0]) {
            ctl_usage_error("create", "an aws secret needs --access-key and --secret-key");
            goto out;
        }
        aws.access_key = (char *)o.access_key;
        aws.secret_key = (char *)o.secret_key;
        aws.session_token = (char *)(o.session_token ? o.session_token : "");
        spec.kind_case = SLUICE__V1__SECRET_SPEC__KIND_AWS;
        spec.aws = &aws;
    } else if (!strcmp(o.type, "header")) {
        for (size_t i = 0; i < o.n_headers; i++)
            hbuf_len += strlen(o.headers[i]) + 2;
        if (!(hbuf = malloc(hbuf_len + 2 * 128 + 1)) ||
            header_spec(&hdr, e, ep, hbuf, sizeof e / sizeof e[0], &o) != 0)
            goto out;
        spec.kind_case = SLUICE__V1__SECRET_SPEC__KIND_HEADER;
        spec.header = &hdr;
    } else {
        ctl_usage_error("create", "unknown secret type \"%s\": tls, aws or header", o.type);
        goto out;
    }
    if (o.output && o.dry_run) /* glooctl's dry run: the document, nothing sent */
        code = print_secret(&secret, !strcmp(o.output, "json"));
    else if ((code = send_secret(c, &secret, o.dry_run)) == 0 && o.output)
        code = print_secret(&secret, !strcmp(o.output, "json"));
out:
    sec_tls_text_deinit(&t);
    ctl_wipe_free(ocsp, ocsp_len);
    ctl_wipe_free(hbuf, hbuf_len);
    return code;
}
