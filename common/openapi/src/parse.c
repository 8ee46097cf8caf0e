/* parse.c - a loaded OpenAPI/Swagger tree to functions, warnings for what does not map. */
#include "openapi_int.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/vec.h"

typedef struct oa_ctx {
    json_t *root;
    sl_openapi_limits lim;
    sl_openapi_doc *doc;
    size_t cap_fn, cap_warn, left_out;
    char base[1024]; /* base path, no trailing '/' */
    bool nomem;
} oa_ctx;

static const char *const methods[] = {"get", "put", "post", "delete", "options", "head", "patch", "trace"};

static char *xstrdup(oa_ctx *c, const char *s)
{
    char *d = strdup(s ? s : "");
    if (!d)
        c->nomem = true;
    return d;
}

static void warn(oa_ctx *c, const char *ptr, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void warn(oa_ctx *c, const char *ptr, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    if (c->doc->n_warnings >= c->lim.max_warnings) {
        c->left_out++;
        return;
    }
    int n = snprintf(msg, sizeof msg, "%s: ", ptr[0] ? ptr : "/");
    va_start(ap, fmt);
    vsnprintf(msg + (n > 0 && (size_t)n < sizeof msg ? n : 0), sizeof msg - (size_t)(n > 0 ? n : 0), fmt, ap);
    va_end(ap);
    if (SL_VEC_RESERVE(c->doc->warnings, c->cap_warn, c->doc->n_warnings + 1) != SL_OK) {
        c->nomem = true;
        return;
    }
    char *w = xstrdup(c, msg);
    if (w)
        c->doc->warnings[c->doc->n_warnings++] = w;
}

/* dst = ptr + "/" + escaped token (RFC 6901). */
static void ptr_join(char *dst, size_t n, const char *ptr, const char *tok)
{
    size_t o = (size_t)snprintf(dst, n, "%s/", ptr);
    for (; *tok && o + 3 < n; tok++) {
        if (*tok == '~' || *tok == '/') {
            dst[o++] = '~';
            dst[o++] = *tok == '~' ? '0' : '1';
        } else {
            dst[o++] = *tok;
        }
    }
    if (o < n)
        dst[o] = 0;
}

static void ptr_idx(char *dst, size_t n, const char *ptr, size_t i)
{
    snprintf(dst, n, "%s/%zu", ptr, i);
}

/* Resolves a local "#/a/b" reference in the root; NULL when absent. */
static json_t *pointer_get(oa_ctx *c, const char *ref)
{
    json_t *v = c->root;
    const char *p = ref + 1; /* after '#' */
    char tok[512];
    while (*p == '/' && v) {
        size_t o = 0;
        p++;
        while (*p && *p != '/' && o + 1 < sizeof tok) {
            if (p[0] == '~' && (p[1] == '0' || p[1] == '1')) {
                tok[o++] = p[1] == '0' ? '~' : '/';
                p += 2;
            } else if (p[0] == '%' && isxdigit((unsigned char)p[1]) && isxdigit((unsigned char)p[2])) {
                char hex[3] = {p[1], p[2], 0};
                tok[o++] = (char)strtol(hex, NULL, 16);
                p += 3;
            } else {
                tok[o++] = *p++;
            }
        }
        tok[o] = 0;
        if (json_is_object(v))
            v = json_object_get(v, tok);
        else if (json_is_array(v)) {
            char *end;
            unsigned long i = strtoul(tok, &end, 10);
            v = *end || !tok[0] ? NULL : json_array_get(v, i);
        } else
            v = NULL;
    }
    return *p ? NULL : v;
}

/* Follows $refs from v (at ptr) to a value; NULL with a warning when a
 * reference is external, dangling, cyclic or the chain is too long. */
static json_t *deref(oa_ctx *c, json_t *v, const char *ptr)
{
    json_t *seen[64];
    int hops = 0, max = c->lim.max_ref_hops < 64 ? c->lim.max_ref_hops : 64;
    while (json_is_object(v) && json_object_get(v, "$ref")) {
        json_t *r = json_object_get(v, "$ref");
        const char *ref = json_string_value(r);
        if (!ref) {
            warn(c, ptr, "$ref is not a string");
            return NULL;
        }
        if (ref[0] != '#') {
            warn(c, ptr, "$ref \"%s\" names another document (only local references are read)", ref);
            return NULL;
        }
        for (int i = 0; i < hops; i++)
            if (seen[i] == v) {
                warn(c, ptr, "$ref \"%s\" is part of a reference cycle", ref);
                return NULL;
            }
        if (hops >= max) {
            warn(c, ptr, "$ref \"%s\": more than %d references to follow", ref, max);
            return NULL;
        }
        seen[hops++] = v;
        json_t *next = pointer_get(c, ref);
        if (!next) {
            warn(c, ptr, "$ref \"%s\" points at nothing in this document", ref);
            return NULL;
        }
        v = next;
    }
    return v;
}

/* A schema's type: "type" (3.1 may list several: the first but "null"),
 * else "object" when it has properties. */
static const char *schema_type(json_t *s)
{
    json_t *t = json_object_get(s, "type");
    if (json_is_string(t))
        return json_string_value(t);
    if (json_is_array(t))
        for (size_t i = 0; i < json_array_size(t); i++) {
            const char *x = json_string_value(json_array_get(t, i));
            if (x && strcmp(x, "null") != 0)
                return x;
        }
    if (json_is_object(json_object_get(s, "properties")))
        return "object";
    return "";
}

static sl_openapi_param *add_param(oa_ctx *c, sl_openapi_function *f, size_t *cap, const char *name,
                                   sl_openapi_in in, bool required, const char *type)
{
    for (size_t i = 0; i < f->n_params; i++)
        if (f->params[i].in == in && !strcmp(f->params[i].name, name)) {
            /* an operation's parameter overrides its path item's */
            f->params[i].required = required;
            free(f->params[i].type);
            f->params[i].type = xstrdup(c, type);
            return &f->params[i];
        }
    if (SL_VEC_RESERVE(f->params, *cap, f->n_params + 1) != SL_OK) {
        c->nomem = true;
        return NULL;
    }
    sl_openapi_param *p = &f->params[f->n_params++];
    p->name = xstrdup(c, name);
    p->in = in;
    p->required = required;
    p->type = xstrdup(c, type);
    return p;
}

/* The top-level properties of a JSON body schema (allOf parts merged) as
 * body parameters. depth bounds allOf nesting. */
static void body_props(oa_ctx *c, sl_openapi_function *f, size_t *cap, json_t *schema, const char *ptr,
                       int depth)
{
    char sub[2048];
    schema = deref(c, schema, ptr);
    if (!schema)
        return;
    if (!json_is_object(schema)) {
        warn(c, ptr, "schema is not an object");
        return;
    }
    if (depth > 8) {
        warn(c, ptr, "allOf nested deeper than 8 levels");
        return;
    }
    json_t *all = json_object_get(schema, "allOf");
    if (json_is_array(all)) {
        ptr_join(sub, sizeof sub, ptr, "allOf");
        for (size_t i = 0; i < json_array_size(all); i++) {
            char el[2100];
            ptr_idx(el, sizeof el, sub, i);
            body_props(c, f, cap, json_array_get(all, i), el, depth + 1);
        }
    }
    json_t *props = json_object_get(schema, "properties");
    if (!props)
        return;
    ptr_join(sub, sizeof sub, ptr, "properties");
    if (!json_is_object(props)) {
        warn(c, sub, "properties is not an object");
        return;
    }
    json_t *req = json_object_get(schema, "required");
    const char *k;
    json_t *pv;
    json_object_foreach(props, k, pv) {
        char pp[2100];
        ptr_join(pp, sizeof pp, sub, k);
        json_t *ps = deref(c, pv, pp);
        bool required = false;
        for (size_t i = 0; json_is_array(req) && i < json_array_size(req); i++)
            required |= json_is_string(json_array_get(req, i)) && !strcmp(json_string_value(json_array_get(req, i)), k);
        if (ps && !json_is_object(ps))
            warn(c, pp, "property schema is not an object; its type is unknown");
        add_param(c, f, cap, k, SL_OPENAPI_IN_BODY, required, json_is_object(ps) ? schema_type(ps) : "");
        f->body_object = true;
    }
}

/* Swagger 2.0 media types the operation consumes allow JSON. */
static bool consumes_json(json_t *op, json_t *root)
{
    json_t *cons = json_object_get(op, "consumes");
    if (!json_is_array(cons))
        cons = json_object_get(root, "consumes");
    if (!json_is_array(cons) || json_array_size(cons) == 0)
        return true;
    for (size_t i = 0; i < json_array_size(cons); i++) {
        const char *t = json_string_value(json_array_get(cons, i));
        if (t && (!strncmp(t, "application/json", 16) || strstr(t, "+json")))
            return true;
    }
    return false;
}

/* One parameter object (already dereferenced) of an operation. */
static void one_param(oa_ctx *c, sl_openapi_function *f, size_t *cap, json_t *op, json_t *p, const char *ptr)
{
    const char *name = json_string_value(json_object_get(p, "name"));
    const char *in = json_string_value(json_object_get(p, "in"));
    json_t *schema = json_object_get(p, "schema");
    bool required = json_is_true(json_object_get(p, "required"));
    if (!name || !in) {
        warn(c, ptr, "parameter without a string \"name\" and \"in\"");
        return;
    }
    const char *type = json_string_value(json_object_get(p, "type"));
    if (!type && json_is_object(schema)) {
        json_t *s = deref(c, schema, ptr);
        type = json_is_object(s) ? schema_type(s) : "";
    }
    if (!strcmp(in, "path"))
        add_param(c, f, cap, name, SL_OPENAPI_IN_PATH, true, type ? type : "");
    else if (!strcmp(in, "query"))
        add_param(c, f, cap, name, SL_OPENAPI_IN_QUERY, required, type ? type : "");
    else if (!strcmp(in, "header"))
        add_param(c, f, cap, name, SL_OPENAPI_IN_HEADER, required, type ? type : "");
    else if (!strcmp(in, "body")) {
        char sp[2100];
        ptr_join(sp, sizeof sp, ptr, "schema");
        if (!consumes_json(op, c->root))
            warn(c, ptr, "body parameter \"%s\": the operation does not consume application/json; "
                         "its body is passed through", name);
        else {
            f->has_body = true;
            if (schema)
                body_props(c, f, cap, schema, sp, 0);
        }
    } else if (!strcmp(in, "formData"))
        warn(c, ptr, "formData parameter \"%s\" cannot be mapped (function templates build JSON bodies)", name);
    else if (!strcmp(in, "cookie"))
        warn(c, ptr, "cookie parameter \"%s\" cannot be mapped (templates set headers, not cookies)", name);
    else
        warn(c, ptr, "parameter \"%s\" is in \"%s\", which is not path, query, header or body", name, in);
}

static void params_of(oa_ctx *c, sl_openapi_function *f, size_t *cap, json_t *op, json_t *list, const char *ptr)
{
    char pp[2100];
    if (!list)
        return;
    if (!json_is_array(list)) {
        warn(c, ptr, "parameters is not an array");
        return;
    }
    for (size_t i = 0; i < json_array_size(list); i++) {
        ptr_idx(pp, sizeof pp, ptr, i);
        json_t *p = deref(c, json_array_get(list, i), pp);
        if (!p)
            continue;
        if (!json_is_object(p)) {
            warn(c, pp, "parameter is not an object");
            continue;
        }
        one_param(c, f, cap, op, p, pp);
    }
}

/* OpenAPI 3 requestBody: the JSON media type's schema. */
static void request_body(oa_ctx *c, sl_openapi_function *f, size_t *cap, json_t *rb, const char *ptr)
{
    char cp[2100], mp[2200], sp[2300];
    rb = deref(c, rb, ptr);
    if (!rb)
        return;
    json_t *content = json_object_get(rb, "content");
    ptr_join(cp, sizeof cp, ptr, "content");
    if (!json_is_object(content)) {
        warn(c, cp, "requestBody has no content object");
        return;
    }
    const char *k, *json_key = NULL;
    json_t *mv;
    json_object_foreach(content, k, mv) {
        if (!strncmp(k, "application/json", 16) || strstr(k, "+json")) {
            json_key = k;
            break;
        }
    }
    if (!json_key) {
        const char *first = json_object_size(content) ? json_object_iter_key(json_object_iter(content)) : "none";
        warn(c, cp, "no JSON media type (%s); the body is passed through as it is", first);
        return;
    }
    f->has_body = true;
    ptr_join(mp, sizeof mp, cp, json_key);
    mv = json_object_get(content, json_key);
    if (!json_is_object(mv)) {
        warn(c, mp, "media type is not an object");
        return;
    }
    json_t *schema = json_object_get(mv, "schema");
    ptr_join(sp, sizeof sp, mp, "schema");
    if (schema)
        body_props(c, f, cap, schema, sp, 0);
}

static int fn_cmp(const void *a, const void *b)
{
    return strcmp(((const sl_openapi_function *)a)->name, ((const sl_openapi_function *)b)->name);
}

static void fn_free(sl_openapi_function *f)
{
    for (size_t i = 0; i < f->n_params; i++) {
        free(f->params[i].name);
        free(f->params[i].type);
    }
    free(f->params);
    free(f->name);
    free(f->method);
    free(f->path);
    free(f->pointer);
    memset(f, 0, sizeof *f);
}

/* Gloo's name for an operation without an operationId. */
static char *gloo_name(oa_ctx *c, const char *method, const char *path)
{
    size_t n = strlen(method) + strlen(path) + 1;
    char *s = malloc(n);
    if (!s) {
        c->nomem = true;
        return NULL;
    }
    size_t o = 0;
    for (const char *m = method; *m; m++)
        s[o++] = (char)tolower((unsigned char)*m);
    for (const char *p = path; *p; p++)
        s[o++] = *p == '/' ? '.' : *p;
    s[o] = 0;
    return s;
}

static sl_status one_operation(oa_ctx *c, json_t *item, json_t *op, const char *path, const char *method,
                               const char *ptr)
{
    sl_openapi_function f = {0};
    size_t cap = 0;
    char up[16], pp[2100];
    if (!json_is_object(op)) {
        warn(c, ptr, "operation is not an object");
        return SL_OK;
    }
    if (c->doc->n_functions >= c->lim.max_functions)
        return sl_error_set(SL_ERR_INVALID, "%s: more than %zu operations", ptr, c->lim.max_functions);
    for (size_t i = 0; i < sizeof up - 1 && method[i]; i++)
        up[i] = (char)toupper((unsigned char)method[i]), up[i + 1] = 0;
    const char *id = json_string_value(json_object_get(op, "operationId"));
    f.name = id && id[0] ? xstrdup(c, id) : gloo_name(c, method, path);
    f.method = xstrdup(c, up);
    f.pointer = xstrdup(c, ptr);
    size_t bl = strlen(c->base), pl = strlen(path);
    if ((f.path = malloc(bl + pl + 1))) {
        memcpy(f.path, c->base, bl);
        memcpy(f.path + bl, path, pl + 1);
    } else
        c->nomem = true;
    if (c->nomem)
        goto done;
    ptr_join(pp, sizeof pp, ptr, "parameters");
    char item_ptr[2100], ipp[2200];
    snprintf(item_ptr, sizeof item_ptr, "%s", ptr); /* the path item's: ptr without the method */
    char *slash = strrchr(item_ptr, '/');
    if (slash)
        *slash = 0;
    ptr_join(ipp, sizeof ipp, item_ptr, "parameters");
    params_of(c, &f, &cap, op, json_object_get(item, "parameters"), ipp);
    params_of(c, &f, &cap, op, json_object_get(op, "parameters"), pp);
    if (json_object_get(op, "requestBody")) {
        ptr_join(pp, sizeof pp, ptr, "requestBody");
        request_body(c, &f, &cap, json_object_get(op, "requestBody"), pp);
    }
    for (size_t i = 0; i < c->doc->n_functions; i++)
        if (!strcmp(c->doc->functions[i].name, f.name)) {
            warn(c, ptr, "function name \"%s\" is already used by %s; this operation is left out", f.name,
                 c->doc->functions[i].pointer);
            goto done;
        }
    if (SL_VEC_RESERVE(c->doc->functions, c->cap_fn, c->doc->n_functions + 1) != SL_OK) {
        c->nomem = true;
        goto done;
    }
    c->doc->functions[c->doc->n_functions++] = f;
    return SL_OK;
done:
    fn_free(&f);
    return c->nomem ? sl_error_set(SL_ERR_NOMEM, "out of memory") : SL_OK;
}

static sl_status path_item(oa_ctx *c, const char *path, json_t *item, const char *ptr)
{
    char op_ptr[2100];
    item = deref(c, item, ptr);
    if (!item)
        return SL_OK;
    if (!json_is_object(item)) {
        warn(c, ptr, "path item is not an object");
        return SL_OK;
    }
    for (size_t m = 0; m < sizeof methods / sizeof methods[0]; m++) {
        json_t *op = json_object_get(item, methods[m]);
        if (!op)
            continue;
        ptr_join(op_ptr, sizeof op_ptr, ptr, methods[m]);
        sl_status rc = one_operation(c, item, op, path, methods[m], op_ptr);
        if (rc != SL_OK)
            return rc;
    }
    return SL_OK;
}

/* The base path: Swagger's basePath, or the path of OpenAPI's first server
 * URL (its variables replaced by their defaults). */
static void base_path(oa_ctx *c, int major)
{
    const char *b = NULL;
    char tmp[1024];
    if (major == 2) {
        json_t *bp = json_object_get(c->root, "basePath");
        if (bp && !json_is_string(bp))
            warn(c, "/basePath", "basePath is not a string; using \"/\"");
        b = json_string_value(bp);
    } else {
        json_t *s0 = json_array_get(json_object_get(c->root, "servers"), 0);
        const char *url = json_string_value(json_object_get(s0, "url"));
        if (url) {
            const char *sch = strstr(url, "://");
            b = sch ? strchr(sch + 3, '/') : url;
            if (!b)
                b = "";
            json_t *vars = json_object_get(s0, "variables");
            size_t o = 0;
            for (const char *p = b; *p && o + 1 < sizeof tmp;) {
                const char *end = *p == '{' ? strchr(p, '}') : NULL;
                if (end) {
                    char name[256];
                    snprintf(name, sizeof name, "%.*s", (int)(end - p - 1), p + 1);
                    const char *def = json_string_value(json_object_get(json_object_get(vars, name), "default"));
                    if (!def) {
                        warn(c, "/servers/0/url", "server variable {%s} has no default; left in the path", name);
                        def = "";
                    }
                    o += (size_t)snprintf(tmp + o, sizeof tmp - o, "%s", def);
                    if (o >= sizeof tmp)
                        o = sizeof tmp - 1;
                    p = end + 1;
                } else
                    tmp[o++] = *p++;
            }
            tmp[o] = 0;
            b = tmp;
        }
    }
    snprintf(c->base, sizeof c->base, "%s", b && b[0] == '/' ? b : "");
    size_t n = strlen(c->base);
    while (n > 0 && c->base[n - 1] == '/')
        c->base[--n] = 0;
}

static sl_status read_version(oa_ctx *c, int *major)
{
    json_t *sw = json_object_get(c->root, "swagger"), *oa = json_object_get(c->root, "openapi");
    char v[64];
    if (json_is_string(oa) || json_is_string(sw))
        snprintf(v, sizeof v, "%s", json_string_value(json_is_string(oa) ? oa : sw));
    else if (json_is_number(sw))
        snprintf(v, sizeof v, "%.1f", json_number_value(sw)); /* YAML swagger: 2.0 unquoted */
    else if (oa || sw)
        return sl_error_set(SL_ERR_INVALID, "/%s: the version is not a string", oa ? "openapi" : "swagger");
    else
        return sl_error_set(SL_ERR_INVALID, "not an OpenAPI or Swagger document (no \"openapi\" or \"swagger\" "
                                            "field at the top)");
    if (json_is_string(oa) || (!sw && oa)) {
        if (strncmp(v, "3.0", 3) && strncmp(v, "3.1", 3))
            return sl_error_set(SL_ERR_UNSUPPORTED, "/openapi: version \"%s\" is not supported (3.0 and 3.1 are)", v);
        *major = 3;
    } else {
        if (strcmp(v, "2.0") != 0)
            return sl_error_set(SL_ERR_UNSUPPORTED, "/swagger: version \"%s\" is not supported (2.0 is)", v);
        *major = 2;
    }
    c->doc->version = xstrdup(c, v);
    c->doc->major = *major;
    return SL_OK;
}

static sl_status walk(oa_ctx *c)
{
    int major = 0;
    sl_status rc;
    char ptr[2100];
    if (!json_is_object(c->root))
        return sl_error_set(SL_ERR_INVALID, "the document is not an object");
    if ((rc = read_version(c, &major)) != SL_OK)
        return rc;
    c->doc->title = xstrdup(c, json_string_value(json_object_get(json_object_get(c->root, "info"), "title")));
    base_path(c, major);
    json_t *paths = json_object_get(c->root, "paths");
    if (!paths) {
        if (major == 2)
            return sl_error_set(SL_ERR_INVALID, "/paths: missing (Swagger 2.0 requires it)");
        return SL_OK; /* OpenAPI 3.1: webhooks or components only */
    }
    if (!json_is_object(paths))
        return sl_error_set(SL_ERR_INVALID, "/paths: not an object");
    const char *k;
    json_t *item;
    json_object_foreach(paths, k, item) {
        ptr_join(ptr, sizeof ptr, "/paths", k);
        if (!strncmp(k, "x-", 2))
            continue; /* extensions are not paths */
        if (k[0] != '/') {
            warn(c, ptr, "path \"%s\" does not start with '/'", k);
            continue;
        }
        if ((rc = path_item(c, k, item, ptr)) != SL_OK)
            return rc;
    }
    return c->nomem ? sl_error_set(SL_ERR_NOMEM, "out of memory") : SL_OK;
}

void sl_openapi_doc_deinit(sl_openapi_doc *d)
{
    for (size_t i = 0; i < d->n_functions; i++)
        fn_free(&d->functions[i]);
    for (size_t i = 0; i < d->n_warnings; i++)
        free(d->warnings[i]);
    free(d->functions);
    free(d->warnings);
    free(d->version);
    free(d->title);
    memset(d, 0, sizeof *d);
}

sl_status sl_openapi_parse(sl_openapi_doc *out, const char *data, size_t len, const sl_openapi_limits *lim)
{
    oa_ctx c = {0};
    sl_status rc;
    memset(out, 0, sizeof *out);
    if (lim)
        c.lim = *lim;
    if (!c.lim.max_bytes)
        c.lim.max_bytes = 8u << 20;
    if (c.lim.max_depth <= 0)
        c.lim.max_depth = 64;
    if (c.lim.max_ref_hops <= 0)
        c.lim.max_ref_hops = 16;
    if (!c.lim.max_functions)
        c.lim.max_functions = 5000;
    if (!c.lim.max_warnings)
        c.lim.max_warnings = 100;
    if (len > c.lim.max_bytes)
        return sl_error_set(SL_ERR_INVALID, "document of %zu bytes is over the limit of %zu", len, c.lim.max_bytes);
    if ((rc = oa_load(&c.root, data, len, c.lim.max_depth)) != SL_OK)
        return rc;
    c.doc = out;
    rc = walk(&c);
    json_decref(c.root);
    if (rc == SL_OK && c.left_out) {
        c.lim.max_warnings++;
        warn(&c, "", "%zu more warnings left out", c.left_out);
        rc = c.nomem ? sl_error_set(SL_ERR_NOMEM, "out of memory") : SL_OK;
    }
    if (rc != SL_OK) {
        sl_openapi_doc_deinit(out);
        return rc;
    }
    if (out->n_functions > 1)
        qsort(out->functions, out->n_functions, sizeof *out->functions, fn_cmp);
    return SL_OK;
}
