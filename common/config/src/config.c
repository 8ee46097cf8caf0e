/* config.c - documents to validated resources (see config.h). */
#include "sluice/config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/codec.h"
#include "sluice/types.h"
#include "sluice/v1/core.pb-c.h"
#include "sluice/vec.h"

void sl_cfg_set_init(sl_cfg_set *s)
{
    memset(s, 0, sizeof(*s));
    sl_diag_init(&s->diag);
}

void sl_cfg_set_deinit(sl_cfg_set *s)
{
    for (size_t i = 0; i < s->n; i++) {
        if (s->items[i].msg)
            protobuf_c_message_free_unpacked(s->items[i].msg, NULL);
        sl_diag_deinit(&s->items[i].diag);
    }
    free(s->items);
    free(s->filename);
    sl_diag_deinit(&s->diag);
    memset(s, 0, sizeof(*s));
}

size_t sl_cfg_set_errors(const sl_cfg_set *s)
{
    size_t n = sl_diag_errors(&s->diag);
    for (size_t i = 0; i < s->n; i++)
        n += sl_diag_errors(&s->items[i].diag);
    return n;
}

static sl_cfg_res *push(sl_cfg_set *s)
{
    if (SL_VEC_RESERVE(s->items, s->cap, s->n + 1) != SL_OK)
        return NULL;
    sl_cfg_res *r = &s->items[s->n++];
    memset(r, 0, sizeof(*r));
    sl_diag_init(&r->diag);
    return r;
}

static void copy_token(char *dst, size_t n, const char *src)
{
    snprintf(dst, n, "%s", src ? src : "");
}

/* A kind of another bucket (Secret, EndpointSet) given to a config source. */
static void not_config_kind(sl_cfg_res *r)
{
    if (strcmp(r->kind->bucket, SL_BUCKET_SECRETS) == 0)
        sl_diag_add(&r->diag, SL_DIAG_ERROR, r->file, r->line, 0, "kind",
                    "Secrets are not stored in %s: send them to the secret-watcher "
                    "(sluice.api.secret.apply; `sluicectl apply` and `sluicectl create secret` do), or put "
                    "them in its directory",
                    SL_BUCKET_CONFIG);
    else
        sl_diag_add(&r->diag, SL_DIAG_ERROR, r->file, r->line, 0, "kind",
                    "%s resources are not stored in %s (they belong to %s); this source takes "
                    "only configuration kinds",
                    r->kind->kind, SL_BUCKET_CONFIG, r->kind->bucket);
}

sl_status sl_cfg_set_decode_text(sl_cfg_set *s, const char *data, size_t len,
                                 const char *filename)
{
    static const char *const skip[] = {"apiVersion", "kind", NULL};
    sl_codec_stream *st = NULL;
    if (!s->filename) {
        s->filename = strdup(filename ? filename : "<input>");
        if (!s->filename)
            return SL_ERR_NOMEM;
    }
    sl_status rc = sl_codec_stream_new(&st, data, len, filename);
    if (rc != SL_OK)
        return rc;
    for (;;) {
        sl_codec_doc *doc = NULL;
        rc = sl_codec_stream_next(st, &doc, &s->diag);
        if (rc == SL_ERR_NOMEM)
            break;
        if (rc != SL_OK) {
            /* After a syntax error the stream has ended, after other errors
             * it goes on; either way later documents may be unknown, so the
             * caller must not treat missing documents as removed. */
            rc = SL_OK;
            s->truncated = true;
            continue;
        }
        if (!doc)
            break;
        if (sl_codec_doc_empty(doc)) {
            sl_codec_doc_free(doc);
            continue;
        }
        sl_cfg_res *r = push(s);
        if (!r) {
            sl_codec_doc_free(doc);
            rc = SL_ERR_NOMEM;
            break;
        }
        r->line = sl_codec_doc_line(doc);
        r->file = s->filename;
        copy_token(r->name, sizeof(r->name), sl_codec_doc_scalar(doc, "metadata.name"));
        copy_token(r->ns, sizeof(r->ns), sl_codec_doc_scalar(doc, "metadata.namespace"));
        if (!r->ns[0])
            copy_token(r->ns, sizeof(r->ns), SL_RESOURCE_DEFAULT_NAMESPACE);
        const char *av = sl_codec_doc_scalar(doc, "apiVersion");
        const char *kd = sl_codec_doc_scalar(doc, "kind");
        if (sl_kind_resolve(&r->kind, av, kd) != SL_OK) {
            sl_diag_add(&r->diag, SL_DIAG_ERROR, filename, r->line, 1, kd ? "kind" : "apiVersion",
                        "%s", sl_error_msg());
        } else if (strcmp(r->kind->bucket, SL_BUCKET_CONFIG) != 0) {
            not_config_kind(r); /* not decoded: a Secret's material stays out of diagnostics */
        } else {
            sl_codec_options o = {0};
            o.root_name = r->kind->kind;
            o.filename = filename;
            o.resolver = sl_types_find_url;
            o.ignore_keys = skip;
            if (sl_codec_decode_doc(&r->msg, r->kind->descriptor, doc, &o, &r->diag) != SL_OK)
                r->msg = NULL;
        }
        sl_codec_doc_free(doc);
        if (r->kind && r->name[0])
            sl_kind_key(r->key, sizeof(r->key), r->kind, r->ns, r->name);
    }
    sl_codec_stream_free(st);
    return rc;
}

sl_status sl_cfg_set_add_msg(sl_cfg_set *s, const sl_kind *k, ProtobufCMessage *msg)
{
    sl_cfg_res *r = push(s);
    if (!r) {
        protobuf_c_message_free_unpacked(msg, NULL);
        return SL_ERR_NOMEM;
    }
    r->kind = k;
    r->msg = msg;
    const Sluice__V1__Metadata *md = sl_kind_metadata(msg);
    if (md) {
        copy_token(r->name, sizeof(r->name), md->name);
        copy_token(r->ns, sizeof(r->ns), md->namespace_);
    }
    if (!r->ns[0])
        copy_token(r->ns, sizeof(r->ns), SL_RESOURCE_DEFAULT_NAMESPACE);
    if (k && r->name[0])
        sl_kind_key(r->key, sizeof(r->key), k, r->ns, r->name);
    return SL_OK;
}

sl_status sl_cfg_set_add_any(sl_cfg_set *s, const char *type_url, const void *data, size_t len,
                             size_t index)
{
    const ProtobufCMessageDescriptor *d = type_url ? sl_types_find_url(type_url) : NULL;
    const sl_kind *k = d ? sl_kind_by_descriptor(d) : NULL;
    if (!k || k->descriptor != d) {
        sl_cfg_res *r = push(s);
        if (!r)
            return SL_ERR_NOMEM;
        sl_diag_add(&r->diag, SL_DIAG_ERROR, NULL, 0, 0, "resources", "resources[%zu]: type %s is not a Sluice resource kind",
                    index, type_url && type_url[0] ? type_url : "(empty)");
        return SL_OK;
    }
    ProtobufCMessage *m = protobuf_c_message_unpack(d, NULL, len, data);
    if (!m) {
        sl_cfg_res *r = push(s);
        if (!r)
            return SL_ERR_NOMEM;
        r->kind = k;
        sl_diag_add(&r->diag, SL_DIAG_ERROR, NULL, 0, 0, "resources",
                    "resources[%zu]: bytes are not a valid %s", index, d->name);
        return SL_OK;
    }
    return sl_cfg_set_add_msg(s, k, m);
}

ProtobufCMessage *sl_cfg_res_take(sl_cfg_res *r)
{
    ProtobufCMessage *m = r->msg;
    r->msg = NULL;
    return m;
}

sl_status sl_cfg_set_string(char **field, const char *value)
{
    char *c = strdup(value ? value : "");
    if (!c)
        return SL_ERR_NOMEM;
    if (*field && *field != protobuf_c_empty_string)
        free(*field);
    *field = c;
    return SL_OK;
}

sl_status sl_cfg_set_annotation(Sluice__V1__Metadata *md, const char *key, const char *value)
{
    for (size_t i = 0; i < md->n_annotations; i++)
        if (md->annotations[i]->key && strcmp(md->annotations[i]->key, key) == 0)
            return sl_cfg_set_string(&md->annotations[i]->value, value);
    Sluice__V1__Metadata__AnnotationsEntry *e = malloc(sizeof(*e));
    Sluice__V1__Metadata__AnnotationsEntry **arr =
        realloc(md->annotations, (md->n_annotations + 1) * sizeof(*arr));
    if (!e || !arr) {
        free(e);
        if (arr)
            md->annotations = arr;
        return SL_ERR_NOMEM;
    }
    md->annotations = arr;
    sluice__v1__metadata__annotations_entry__init(e);
    e->key = strdup(key);
    e->value = strdup(value);
    if (!e->key || !e->value) {
        free(e->key);
        free(e->value);
        free(e);
        return SL_ERR_NOMEM;
    }
    md->annotations[md->n_annotations++] = e;
    return SL_OK;
}

/* ---- references -------------------------------------------------------- */

/* The kind a ResourceRef field refers to, by its name and (where the
 * name alone does not tell) the message holding it. */
static const struct {
    const char *field;
    const char *kind;
    const char *in; /* full name of the holding message; NULL: any */
} ref_fields[] = {
    {"upstream", "Upstream", NULL},
    {"upstream_ref", "Upstream", NULL},
    {"collector_upstream_ref", "Upstream", NULL},
    {"upstream_group", "UpstreamGroup", NULL},
    {"secret_ref", "Secret", NULL},
    {"virtual_services", "VirtualService", NULL},
    {"ref", "MatchableHttpGateway", "sluice.v1.DelegatedHttpGateway"},
    {"ref", "MatchableTcpGateway", "sluice.v1.DelegatedTcpGateway"},
    {"ref", "RouteTable", NULL},
};

static const sl_kind *ref_kind(const char *field, const char *in)
{
    for (size_t i = 0; i < sizeof(ref_fields) / sizeof(ref_fields[0]); i++)
        if (strcmp(field, ref_fields[i].field) == 0 && (!ref_fields[i].in || strcmp(in, ref_fields[i].in) == 0))
            return sl_kind_by_name(ref_fields[i].kind);
    return NULL;
}

static void walk(const ProtobufCMessage *m, const char *own_ns, sl_cfg_ref_fn fn, void *ud,
                 char *path, size_t plen, size_t cap, int depth)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    if (depth > SL_CODEC_MAX_DEPTH)
        return;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (f->type != PROTOBUF_C_TYPE_MESSAGE)
            continue;
        const char *base = (const char *)m;
        if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            uint32_t c = *(const uint32_t *)(base + f->quantifier_offset);
            if (c != f->id)
                continue;
        }
        const ProtobufCMessageDescriptor *fd = f->descriptor;
        const bool is_ref = strcmp(fd->name, "sluice.v1.ResourceRef") == 0;
        const sl_kind *k = is_ref ? ref_kind(f->name, d->name) : NULL;
        char jname[96];
        sl_codec_json_name(jname, sizeof(jname), f->name);
        size_t n = 1;
        ProtobufCMessage *const *arr = NULL;
        const ProtobufCMessage *one = NULL;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            n = *(const size_t *)(base + f->quantifier_offset);
            arr = *(ProtobufCMessage *const *const *)(base + f->offset);
        } else {
            one = *(const ProtobufCMessage *const *)(base + f->offset);
            if (!one)
                continue;
        }
        for (size_t j = 0; j < n; j++) {
            const ProtobufCMessage *sub = arr ? arr[j] : one;
            if (!sub)
                continue;
            int w = arr ? snprintf(path + plen, cap - plen, "%s%s[%zu]", plen ? "." : "", jname, j)
                        : snprintf(path + plen, cap - plen, "%s%s", plen ? "." : "", jname);
            size_t nl = (w < 0 || (size_t)w >= cap - plen) ? plen : plen + (size_t)w;
            if (is_ref) {
                if (k) {
                    const Sluice__V1__ResourceRef *r = (const Sluice__V1__ResourceRef *)sub;
                    fn(ud, k, r->namespace_ && r->namespace_[0] ? r->namespace_ : own_ns,
                       r->name ? r->name : "", path);
                }
            } else {
                walk(sub, own_ns, fn, ud, path, nl, cap, depth + 1);
            }
            path[plen] = '\0';
        }
    }
}

void sl_cfg_refs(const ProtobufCMessage *msg, const char *own_ns, sl_cfg_ref_fn fn, void *ud)
{
    char path[1024] = "";
    if (msg)
        walk(msg, own_ns, fn, ud, path, 0, sizeof(path), 0);
}

/* ---- checks ------------------------------------------------------------ */

typedef struct check_ctx {
    sl_cfg_res *r;
    const char *root;
} check_ctx;

static void check_ref(void *ud, const sl_kind *kind, const char *ns, const char *name,
                      const char *path)
{
    check_ctx *c = ud;
    (void)kind;
    if (sl_resource_check_name(name) != SL_OK)
        sl_diag_add(&c->r->diag, SL_DIAG_ERROR, c->r->file, c->r->line, 0, path, "%s.%s.name: %s",
                    c->root, path, name[0] ? sl_error_msg() : "a reference needs a name");
    else if (sl_resource_check_namespace(ns) != SL_OK)
        sl_diag_add(&c->r->diag, SL_DIAG_ERROR, c->r->file, c->r->line, 0, path, "%s.%s.namespace: %s",
                    c->root, path, sl_error_msg());
}

void sl_cfg_check(sl_cfg_res *r)
{
    if (!r->kind || !r->msg)
        return; /* already has an error */
    const char *root = r->kind->kind;
    if (strcmp(r->kind->bucket, SL_BUCKET_CONFIG) != 0) {
        not_config_kind(r);
        return;
    }
    Sluice__V1__Metadata *md = (Sluice__V1__Metadata *)sl_kind_metadata(r->msg);
    if (!md) {
        sl_diag_add(&r->diag, SL_DIAG_ERROR, r->file, r->line, 0, "metadata",
                    "%s.metadata is required (name, namespace)", root);
        return;
    }
    if (!md->namespace_ || !md->namespace_[0]) {
        if (sl_cfg_set_string(&md->namespace_, SL_RESOURCE_DEFAULT_NAMESPACE) != SL_OK)
            return;
    }
    copy_token(r->ns, sizeof(r->ns), md->namespace_);
    copy_token(r->name, sizeof(r->name), md->name);
    if (!md->name || !md->name[0])
        sl_diag_add(&r->diag, SL_DIAG_ERROR, r->file, r->line, 0, "metadata.name",
                    "%s.metadata.name is required", root);
    else if (sl_resource_check_name(md->name) != SL_OK)
        sl_diag_add(&r->diag, SL_DIAG_ERROR, r->file, r->line, 0, "metadata.name",
                    "%s.metadata.name: %s", root, sl_error_msg());
    if (sl_resource_check_namespace(md->namespace_) != SL_OK)
        sl_diag_add(&r->diag, SL_DIAG_ERROR, r->file, r->line, 0, "metadata.namespace",
                    "%s.metadata.namespace: %s", root, sl_error_msg());
    if (sl_diag_errors(&r->diag) == 0 &&
        sl_kind_key(r->key, sizeof(r->key), r->kind, r->ns, r->name) != SL_OK)
        r->key[0] = '\0';
    if (!sl_kind_spec(r->msg))
        sl_diag_add(&r->diag, SL_DIAG_WARNING, r->file, r->line, 0, "spec", "%s has no spec", root);
    check_ctx c = {r, root};
    sl_cfg_refs(r->msg, r->ns, check_ref, &c);
}

char *sl_cfg_diag_join(const sl_diag *d, sl_diag_severity only, const char *sep)
{
    char *out = NULL;
    size_t len = 0, cap = 0;
    for (size_t i = 0; i < sl_diag_count(d); i++) {
        const sl_diag_item *it = sl_diag_get(d, i);
        if (it->severity != only)
            continue;
        char *line = sl_diag_format_alloc(it);
        if (!line)
            break;
        /* Drop the "error: " / "warning: " word: the caller says which. */
        const char *text = line;
        const char *w = strstr(line, only == SL_DIAG_ERROR ? "error: " : "warning: ");
        char buf[4096];
        if (w) {
            snprintf(buf, sizeof(buf), "%.*s%s", (int)(w - line), line,
                     w + (only == SL_DIAG_ERROR ? 7 : 9));
            text = buf;
        }
        size_t tl = strlen(text), sl = out ? strlen(sep) : 0;
        if (SL_VEC_RESERVE(out, cap, len + sl + tl + 1) != SL_OK) {
            free(line);
            break;
        }
        if (sl)
            memcpy(out + len, sep, sl);
        memcpy(out + len + sl, text, tl + 1);
        len += sl + tl;
        free(line);
    }
    return out;
}
