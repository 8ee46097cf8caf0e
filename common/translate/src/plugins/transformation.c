/* transformation: Gloo's transformations and stagedTransformations options
 * of virtual hosts, routes and weighted destinations, on stock Envoy (Gloo
 * needs its own Envoy build with the transformation filter).
 *
 * A route's own options replace its virtual host's, a weighted
 * destination's its route's (as the per-filter configs of Gloo's filter
 * do); inheritTransformation adds the parent's after the own. What a route
 * ends up with is compiled in one of two ways:
 *
 *  - header mutation, when it is one unconditional request and/or response
 *    template that only sets, appends and removes ordinary headers, with
 *    values made of literal text and {{ header("x") }} (request_header() in
 *    responses): the route's request/response_headers_to_add with Envoy's
 *    %REQ(x)% / %RESP(x)% formatters, and *_headers_to_remove.
 *  - otherwise a Lua program for Envoy's stock Lua filter (plugins/lua.c),
 *    in the route's metadata, run by the source the filter shares among its
 *    routes (the runtime of transformation_lua.c: JSON, an RE2-subset regex
 *    matcher, S.apply; loaded once per filter, not per route). A program is
 *    what this file writes for the route:
 *    each template compiled to a Lua function, each transformation a table
 *    (extractors in all three modes, headers, dynamicMetadataValues, body
 *    template, mergeExtractorsToBody, mergeJsonKeys; or a
 *    headerBodyTransform), the request matches as conditions. Inja's
 *    {{ expr }}, {% if %} / {% else if %} / {% else %} / {% endif %},
 *    {# #} and the functions header, request_header, extraction, body,
 *    context, env, base64_encode, base64_decode, base64url_encode,
 *    base64url_decode, substring, replace_with_random, raw_string,
 *    default, upper, lower,
 *    length, exists, and variables of the JSON body ("a.b", "a/b" with
 *    advancedTemplates) or extractors' names are supported; everything
 *    else is an error naming the field. User text reaches the script only
 *    as quoted Lua literals (luatext.h), and what the parser accepts is
 *    valid Lua: a bad template can never make Envoy refuse the routes.
 *
 * The early stage's program runs in a second Lua filter, first in the
 * chain (EARLY_FILTER); the regular stage's in plugins/lua.c's, after
 * authorization, before the router.
 *
 * Not expressible on stock Envoy, so refused: the postRouting stage (no
 * upstream Lua filter), clearRouteCache, escapeCharacters, '$'
 * substitutions in replacementText, query parameter matchers and
 * responseCodeDetails. gRPC proxyless clients run no filters: a Warning,
 * nothing applied. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "../plugin.h"
#include "luatext.h"
#include "transformation.h"

#define MAX_MATCHES 32
#define MAX_SAVED 32
#define EARLY_FILTER "sluice.filters.http.transformation_early" /* a Lua filter */

const sl_tr_plugin sl_tr_plugin_transformation;
const sl_tr_plugin sl_tr_plugin_transformation_regular;

static const char *const fields[] = {
    "RouteOptions.transformations", "RouteOptions.staged_transformations",
    "VirtualHostOptions.transformations", "VirtualHostOptions.staged_transformations",
    "WeightedDestinationOptions.transformations", "WeightedDestinationOptions.staged_transformations", NULL,
};

/* ---- what a route gets -------------------------------------------------- */

typedef struct req_match {
    const Sluice__V1__Matcher *matcher; /* NULL: every request */
    const Sluice__V1__Transformation *req, *resp;
    const char *path; /* the RequestMatch (or transformations), in reports */
} req_match;

typedef struct resp_match {
    const Sluice__V1__ResponseMatch *m;
    const char *path;
} resp_match;

/* The transformations of one stage of a route. */
typedef struct stage {
    req_match req[MAX_MATCHES];
    size_t n_req;
    resp_match resp[MAX_MATCHES];
    size_t n_resp;
} stage;

typedef struct plan {
    stage regular, early;
    int errors;
    bool quiet; /* already reported (a weighted destination's parent) */
} plan;

static void plan_error(tr_ctx *tx, plan *p, const char *path, const char *what)
{
    if (!p->quiet)
        tr_error(tx, "%s: %s", path, what);
    p->errors++;
}

static void add_req(tr_ctx *tx, plan *p, stage *sg, const Sluice__V1__Matcher *m,
                    const Sluice__V1__Transformation *req, const Sluice__V1__Transformation *resp, bool clear,
                    const char *path)
{
    if (clear)
        plan_error(tx, p, tr_printf(tx, "%s.clearRouteCache", path),
                   "not supported by Sluice (transformations run in Envoy's Lua filter, after the route was chosen)");
    if (sg->n_req == MAX_MATCHES) {
        plan_error(tx, p, path, "at most 32 request transformations per route and stage");
        return;
    }
    sg->req[sg->n_req++] = (req_match){m, req, resp, path};
}

/* The request and response transforms of rrt (path "...regular") into sg. */
static void collect_stage(tr_ctx *tx, plan *p, stage *sg, const Sluice__V1__RequestResponseTransformations *rrt,
                          const char *path)
{
    for (size_t i = 0; i < rrt->n_request_transforms; i++) {
        const Sluice__V1__RequestMatch *rm = rrt->request_transforms[i];
        add_req(tx, p, sg, rm->matcher, rm->request_transformation, rm->response_transformation,
                rm->clear_route_cache, tr_printf(tx, "%s.requestTransforms[%zu]", path, i));
    }
    for (size_t i = 0; i < rrt->n_response_transforms; i++) {
        if (sg->n_resp == MAX_MATCHES) {
            plan_error(tx, p, path, "at most 32 response transformations per route and stage");
            break;
        }
        sg->resp[sg->n_resp].m = rrt->response_transforms[i];
        sg->resp[sg->n_resp++].path = tr_printf(tx, "%s.responseTransforms[%zu]", path, i);
    }
}

/* The transformations of one options level (path "...options") into p. */
static void collect(tr_ctx *tx, plan *p, const Sluice__V1__Transformations *t,
                    const Sluice__V1__TransformationStages *st, const char *path)
{
    const Sluice__V1__RequestResponseTransformations *reg = st ? st->regular : NULL;
    const char *sp = tr_printf(tx, "%s.stagedTransformations", path);
    if (t && !reg)
        add_req(tx, p, &p->regular, NULL, t->request_transformation, t->response_transformation,
                t->clear_route_cache, tr_printf(tx, "%s.transformations", path));
    if (!st)
        return;
    if (st->post_routing)
        plan_error(tx, p, tr_printf(tx, "%s.postRouting", sp),
                   "not supported by Sluice (stock Envoy has no upstream Lua filter; use regular)");
    if (st->escape_characters && st->escape_characters->value)
        plan_error(tx, p, tr_printf(tx, "%s.escapeCharacters", sp), "not supported by Sluice");
    if (st->log_request_response_info && st->log_request_response_info->value && !p->quiet)
        tr_warn(tx, "%s.logRequestResponseInfo: not applied by Sluice", sp);
    if (st->early)
        collect_stage(tx, p, &p->early, st->early, tr_printf(tx, "%s.early", sp));
    if (reg)
        collect_stage(tx, p, &p->regular, reg, tr_printf(tx, "%s.regular", sp));
}

/* ---- header mutation ------------------------------------------------------ */

/* text as an Envoy header formatter string (literal text, %REQ(x)% and
 * %RESP(x)%), or NULL when it has anything else. The output is never
 * longer than twice the text ({{header("x")}} is longer than %RESP(x)%). */
static const char *envoy_format(tr_ctx *tx, const char *text, bool response)
{
    size_t n = 0;
    char *out = tr_alloc(tx, strlen(text) * 2 + 1);
    for (const char *s = text; *s;) {
        const char *e, *name, *close;
        size_t len;
        bool req;
        if (s[0] == '{' && (s[1] == '%' || s[1] == '#'))
            return NULL;
        if (!(s[0] == '{' && s[1] == '{')) {
            if (*s == '%')
                out[n++] = '%';
            out[n++] = *s++;
            continue;
        }
        for (e = s + 2; isspace((unsigned char)*e); e++)
            ;
        if (strncmp(e, "header(", 7) == 0)
            req = !response, e += 7;
        else if (response && strncmp(e, "request_header(", 15) == 0)
            req = true, e += 15;
        else
            return NULL;
        while (isspace((unsigned char)*e))
            e++;
        if (*e != '"' || !(close = strchr(e + 1, '"')))
            return NULL;
        name = e + 1;
        len = (size_t)(close - name);
        for (e = close + 1; isspace((unsigned char)*e); e++)
            ;
        if (*e++ != ')')
            return NULL;
        while (isspace((unsigned char)*e))
            e++;
        if (strncmp(e, "}}", 2) != 0 || len == 0 || tr_check_header_name(tr_printf(tx, "%.*s", (int)len, name), true))
            return NULL;
        n += (size_t)sprintf(out + n, "%%%s(%.*s)%%", req ? "REQ" : "RESP", (int)len, name);
        s = e + 2;
    }
    out[n] = '\0';
    return out;
}

/* Whether transformation t can be header mutation (nothing reported). */
static bool mutation_ok(tr_ctx *tx, const Sluice__V1__Transformation *t, bool response)
{
    const Sluice__V1__TransformationTemplate *tt;
    if (!t)
        return true;
    if (t->transformation_type_case != SLUICE__V1__TRANSFORMATION__TRANSFORMATION_TYPE_TRANSFORMATION_TEMPLATE)
        return false;
    tt = t->transformation_template;
    if (tt->n_extractors || tt->n_dynamic_metadata_values ||
        (tt->escape_characters && tt->escape_characters->value) ||
        (tt->body_transformation_case != SLUICE__V1__TRANSFORMATION_TEMPLATE__BODY_TRANSFORMATION_PASSTHROUGH &&
         tt->body_transformation_case != SLUICE__V1__TRANSFORMATION_TEMPLATE__BODY_TRANSFORMATION__NOT_SET))
        return false;
    for (size_t i = 0; i < tt->n_headers; i++) {
        const char *v = tt->headers[i]->value ? tt->headers[i]->value->text : "";
        if (tt->headers[i]->key[0] == ':' || tr_check_header_name(tt->headers[i]->key, false) ||
            !envoy_format(tx, v, response))
            return false;
    }
    for (size_t i = 0; i < tt->n_headers_to_append; i++) {
        const Sluice__V1__TransformationTemplate__HeaderToAppend *h = tt->headers_to_append[i];
        if (h->key[0] == ':' || tr_check_header_name(h->key, false) ||
            !envoy_format(tx, h->value ? h->value->text : "", response))
            return false;
    }
    for (size_t i = 0; i < tt->n_headers_to_remove; i++)
        if (tt->headers_to_remove[i][0] == ':' || tr_check_header_name(tt->headers_to_remove[i], false))
            return false;
    return true;
}

static void push_header(tr_ctx *tx, tr_route_t *r, bool response, const char *k, const char *v, bool append)
{
    Envoy__Config__Core__V3__HeaderValueOption *o = TR_NEW(tx, envoy__config__core__v3__header_value_option);
    o->header = TR_NEW(tx, envoy__config__core__v3__header_value);
    o->header->key = tr_strdup(tx, k);
    o->header->value = tr_strdup(tx, v);
    o->append_action =
        append ? ENVOY__CONFIG__CORE__V3__HEADER_VALUE_OPTION__HEADER_APPEND_ACTION__APPEND_IF_EXISTS_OR_ADD
               : ENVOY__CONFIG__CORE__V3__HEADER_VALUE_OPTION__HEADER_APPEND_ACTION__OVERWRITE_IF_EXISTS_OR_ADD;
    if (response)
        TR_PUSH(tx, r, response_headers_to_add, o);
    else
        TR_PUSH(tx, r, request_headers_to_add, o);
}

static void push_remove(tr_ctx *tx, tr_route_t *r, bool response, const char *k)
{
    if (response)
        TR_PUSH(tx, r, response_headers_to_remove, tr_strdup(tx, k));
    else
        TR_PUSH(tx, r, request_headers_to_remove, tr_strdup(tx, k));
}

/* t (mutation_ok) as the route's header mutation. A template rendering
 * literally nothing removes the header, as Gloo's filter does. */
static void mutation(tr_ctx *tx, tr_route_t *r, const Sluice__V1__Transformation *t, bool response)
{
    const Sluice__V1__TransformationTemplate *tt = t ? t->transformation_template : NULL;
    for (size_t i = 0; tt && i < tt->n_headers; i++) {
        const char *v = tt->headers[i]->value ? tt->headers[i]->value->text : "";
        if (!v[0])
            push_remove(tx, r, response, tt->headers[i]->key);
        else
            push_header(tx, r, response, tt->headers[i]->key, envoy_format(tx, v, response), false);
    }
    for (size_t i = 0; tt && i < tt->n_headers_to_append; i++) {
        const Sluice__V1__TransformationTemplate__HeaderToAppend *h = tt->headers_to_append[i];
        if (h->value && h->value->text[0])
            push_header(tx, r, response, h->key, envoy_format(tx, h->value->text, response), true);
    }
    for (size_t i = 0; tt && i < tt->n_headers_to_remove; i++)
        push_remove(tx, r, response, tt->headers_to_remove[i]);
}

/* ---- Inja templates as Lua -------------------------------------------------- */

/* The Lua script of a route being written. */
typedef struct script {
    tr_ctx *tx;
    const char *defs; /* local definitions: regexes, templates, transformations */
    int n;            /* names given so far */
    const char *saved[MAX_SAVED]; /* request headers response templates read */
    size_t n_saved;
    int errors;
} script;

/* One Inja expression being compiled. */
typedef struct expr {
    script *sc;
    const char *s, *end; /* what is left of it */
    const char *where;   /* the template's field, in reports */
    bool response;       /* a response template */
    bool advanced;       /* advancedTemplates: "a/b" variables */
    bool reads_body;     /* body(), context(), a variable */
    bool failed;
    const Sluice__V1__TransformationTemplate *tt; /* its extractors are variables too */
} expr;

/* A new name for a definition: a field of the script's table L, as a
 * Lua function may have at most 200 locals. */
static const char *name(script *sc, char kind)
{
    return tr_printf(sc->tx, "L.%c%d", kind, ++sc->n);
}

static void define(script *sc, const char *code)
{
    sc->defs = tr_printf(sc->tx, "%s%s", sc->defs, code);
}

static void expr_fail(expr *e, const char *fmt, const char *arg)
{
    if (!e->failed)
        tr_error(e->sc->tx, "%s: %s", e->where, tr_printf(e->sc->tx, fmt, arg));
    e->failed = true;
}

static void ws(expr *e)
{
    while (e->s < e->end && isspace((unsigned char)*e->s))
        e->s++;
}

static bool ident_char(char c) { return isalnum((unsigned char)c) || c == '_'; }

/* Consumes tok (a word only when whole) after blanks. */
static bool eat(expr *e, const char *tok)
{
    size_t n = strlen(tok);
    ws(e);
    if ((size_t)(e->end - e->s) < n || memcmp(e->s, tok, n) != 0)
        return false;
    if (ident_char(tok[0]) && e->s + n < e->end && ident_char(e->s[n]))
        return false;
    e->s += n;
    return true;
}

static const char *parse_or(expr *e);

/* A JSON string literal ("..." or '...') as a Lua literal. */
static const char *string_lit(expr *e, const char **raw)
{
    char q = *e->s, *out = tr_alloc(e->sc->tx, (size_t)(e->end - e->s) + 1);
    size_t n = 0;
    for (e->s++; e->s < e->end && *e->s != q; e->s++) {
        if (*e->s == '\\' && e->s + 1 < e->end) {
            static const char from[] = "\"'\\/nrtbf", to[] = "\"'\\/\n\r\t\b\f";
            const char *c = strchr(from, e->s[1]);
            if (!c) {
                expr_fail(e, "the escape \\%s is not supported by Sluice", tr_printf(e->sc->tx, "%c", e->s[1]));
                return "nil";
            }
            out[n++] = to[c - from];
            e->s++;
        } else {
            out[n++] = *e->s;
        }
    }
    if (e->s >= e->end) {
        expr_fail(e, "%s", "a string is not closed");
        return "nil";
    }
    e->s++;
    out[n] = '\0';
    if (raw)
        *raw = out;
    return tr_lua_quote_n(e->sc->tx, out, n);
}

/* The arguments of a function call after its "(": at least min, at most
 * max expressions (the first a string literal when raw0, its text there);
 * a[] past those given are "nil". False when reported. */
static bool args_range(expr *e, const char *fn, size_t min, size_t max, const char **a, const char **raw0)
{
    size_t n = 0;
    for (size_t i = 0; i < max; i++)
        a[i] = "nil";
    if (!eat(e, ")"))
        for (;;) {
            if (n == max) {
                expr_fail(e, "%s() takes fewer arguments", fn);
                return false;
            }
            ws(e);
            if (n == 0 && raw0) {
                if (e->s >= e->end || (*e->s != '"' && *e->s != '\'')) {
                    expr_fail(e, "the argument of %s() must be a string literal", fn);
                    return false;
                }
                a[n++] = string_lit(e, raw0);
            } else {
                a[n++] = parse_or(e);
            }
            if (e->failed || eat(e, ")"))
                break;
            if (!eat(e, ",")) {
                expr_fail(e, "%s(): a ',' or ')' is missing", fn);
                return false;
            }
        }
    if (!e->failed && n < min)
        expr_fail(e, "%s() takes more arguments", fn);
    return !e->failed;
}

static bool args(expr *e, const char *fn, size_t n, const char **a, const char **raw0)
{
    return args_range(e, fn, n, n, a, raw0);
}

static void save_header(expr *e, const char *h)
{
    script *sc = e->sc;
    for (size_t i = 0; i < sc->n_saved; i++)
        if (strcmp(sc->saved[i], h) == 0)
            return;
    if (sc->n_saved == MAX_SAVED)
        expr_fail(e, "%s", "at most 32 request headers in response templates");
    else
        sc->saved[sc->n_saved++] = h;
}

/* A function call fn( ... ). */
static const char *call(expr *e, const char *fn)
{
    tr_ctx *tx = e->sc->tx;
    const char *a[3], *raw = NULL;
    if (strcmp(fn, "header") == 0 || strcmp(fn, "request_header") == 0) {
        if (!args(e, fn, 1, a, &raw))
            return "nil";
        if (tr_check_header_name(raw, true))
            expr_fail(e, "%s", tr_printf(tx, "%s(\"%s\"): %s", fn, raw, tr_check_header_name(raw, true)));
        if (fn[0] == 'h' || !e->response)
            return tr_printf(tx, "c:header(%s)", a[0]);
        save_header(e, raw);
        return tr_printf(tx, "c:request_header(%s)", a[0]);
    }
    if (strcmp(fn, "extraction") == 0) {
        if (!args(e, fn, 1, a, &raw))
            return "nil";
        if (!e->advanced)
            tr_warn(tx, "%s: extraction(\"%s\") is always empty without advancedTemplates, as in Gloo: name the "
                        "extractor as a variable ({{ %s }})", e->where, raw, raw);
        return e->advanced ? tr_printf(tx, "(c.ex[%s] or \"\")", a[0]) : "\"\"";
    }
    if (strcmp(fn, "env") == 0)
        return args(e, fn, 1, a, &raw) ? tr_printf(tx, "(os.getenv(%s) or \"\")", a[0]) : "nil";
    if (strcmp(fn, "exists") == 0) {
        e->reads_body = true;
        return args(e, fn, 1, a, &raw) ? tr_printf(tx, "c:exists(%s, \"%s\")", a[0], e->advanced ? "/" : ".")
                                       : "nil";
    }
    if (strcmp(fn, "body") == 0 || strcmp(fn, "context") == 0) {
        e->reads_body = true;
        return args(e, fn, 0, a, NULL) ? (fn[0] == 'b' ? "c:body()" : "c:json()") : "nil";
    }
    if (strcmp(fn, "default") == 0)
        return args(e, fn, 2, a, NULL) ? tr_printf(tx, "S.default(%s, %s)", a[0], a[1]) : "nil";
    if (strcmp(fn, "upper") == 0 || strcmp(fn, "lower") == 0)
        return args(e, fn, 1, a, NULL) ? tr_printf(tx, "string.%s(S.str(%s))", fn, a[0]) : "nil";
    if (strcmp(fn, "length") == 0)
        return args(e, fn, 1, a, NULL) ? tr_printf(tx, "S.length(%s)", a[0]) : "nil";
    if (strcmp(fn, "raw_string") == 0)
        return args(e, fn, 1, a, NULL) ? tr_printf(tx, "S.str(%s)", a[0]) : "nil";
    if (strcmp(fn, "base64_encode") == 0 || strcmp(fn, "base64url_encode") == 0)
        return args(e, fn, 1, a, NULL) ? tr_printf(tx, "S.b64enc(%s, %s)", a[0], fn[6] == 'u' ? "true" : "false")
                                       : "nil";
    if (strcmp(fn, "base64_decode") == 0 || strcmp(fn, "base64url_decode") == 0)
        return args(e, fn, 1, a, NULL) ? tr_printf(tx, "S.b64dec(%s, %s)", a[0], fn[6] == 'u' ? "true" : "false")
                                       : "nil";
    if (strcmp(fn, "replace_with_random") == 0)
        return args(e, fn, 2, a, NULL) ? tr_printf(tx, "S.replace_with_random(c, %s, %s)", a[0], a[1]) : "nil";
    if (strcmp(fn, "substring") == 0) /* the length is optional */
        return args_range(e, fn, 2, 3, a, NULL) ? tr_printf(tx, "S.substring(%s, %s, %s)", a[0], a[1], a[2])
                                                : "nil";
    expr_fail(e, "the function %s() is not supported by Sluice (header, request_header, extraction, body, context, "
                 "env, base64_encode, base64_decode, base64url_encode, base64url_decode, substring, "
                 "replace_with_random, raw_string, default, upper, lower, length and exists are)", fn);
    return "nil";
}

/* A JSON number at e->s (start): -?digits(.digits)?([eE][+-]?digits)?, so
 * the Lua literal is valid. */
static const char *number(expr *e, const char *start)
{
    e->s++;
    while (e->s < e->end && isdigit((unsigned char)*e->s))
        e->s++;
    if (e->s + 1 < e->end && *e->s == '.' && isdigit((unsigned char)e->s[1]))
        for (e->s++; e->s < e->end && isdigit((unsigned char)*e->s);)
            e->s++;
    if (e->s < e->end && (*e->s == 'e' || *e->s == 'E')) {
        const char *x = e->s + 1;
        if (x < e->end && (*x == '+' || *x == '-'))
            x++;
        if (x < e->end && isdigit((unsigned char)*x))
            for (e->s = x; e->s < e->end && isdigit((unsigned char)*e->s);)
                e->s++;
    }
    if (e->s < e->end && (ident_char(*e->s) || *e->s == '.')) {
        while (e->s < e->end && (ident_char(*e->s) || *e->s == '.'))
            e->s++;
        expr_fail(e, "\"%s\" is not a number", tr_printf(e->sc->tx, "%.*s", (int)(e->s - start), start));
        return "nil";
    }
    return tr_printf(e->sc->tx, "(%.*s)", (int)(e->s - start), start);
}

/* The variable starting at start: an extractor's name (without
 * advancedTemplates), else a path in the JSON body, a.b.0.c (or a/b/0/c). */
static const char *variable(expr *e, const char *start)
{
    tr_ctx *tx = e->sc->tx;
    const char *keys = "", *k = start, *v;
    char sep = e->advanced ? '/' : '.';
    while (e->s < e->end && (ident_char(*e->s) || *e->s == sep || *e->s == '-'))
        e->s++;
    v = tr_printf(tx, "%.*s", (int)(e->s - start), start);
    for (size_t i = 0; !e->advanced && i < e->tt->n_extractors; i++)
        if (strcmp(e->tt->extractors[i]->key, v) == 0)
            return tr_printf(tx, "c:extracted(%s)", tr_lua_quote(tx, v));
    for (const char *p = start;; p++)
        if (p == e->s || *p == sep) {
            if (p == k) {
                expr_fail(e, "the variable %s has an empty part", v);
                return "nil";
            }
            keys = tr_printf(tx, "%s%s%s", keys, keys[0] ? ", " : "", tr_lua_quote_n(tx, k, (size_t)(p - k)));
            k = p + 1;
            if (p == e->s)
                break;
        }
    e->reads_body = true;
    return tr_printf(tx, "c:var({%s})", keys);
}

static const char *primary(expr *e)
{
    tr_ctx *tx = e->sc->tx;
    const char *start, *v, *after;
    ws(e);
    if (e->s >= e->end) {
        expr_fail(e, "%s", "an expression is missing");
        return "nil";
    }
    if (eat(e, "(")) {
        v = parse_or(e);
        if (!eat(e, ")"))
            expr_fail(e, "%s", "a ')' is missing");
        return tr_printf(tx, "(%s)", v);
    }
    if (*e->s == '"' || *e->s == '\'')
        return string_lit(e, NULL);
    start = e->s;
    if (isdigit((unsigned char)*e->s) || (*e->s == '-' && e->s + 1 < e->end && isdigit((unsigned char)e->s[1])))
        return number(e, start);
    if (!isalpha((unsigned char)*e->s) && *e->s != '_') {
        expr_fail(e, "'%s' is not supported by Sluice", tr_printf(tx, "%c", *e->s));
        return "nil";
    }
    while (e->s < e->end && ident_char(*e->s))
        e->s++;
    v = tr_printf(tx, "%.*s", (int)(e->s - start), start);
    if (strcmp(v, "true") == 0 || strcmp(v, "false") == 0)
        return v;
    if (strcmp(v, "null") == 0)
        return "S.null";
    after = e->s;
    if (eat(e, "("))
        return call(e, v);
    e->s = after;
    return variable(e, start);
}

static const char *comparison(expr *e)
{
    static const char *const ops[][2] = {
        {"==", "=="}, {"!=", "~="}, {"<=", "<="}, {">=", ">="}, {"<", "<"}, {">", ">"},
    };
    const char *a = primary(e);
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
        if (eat(e, ops[i][0]))
            return tr_printf(e->sc->tx, "S.cmp(%s, \"%s\", %s)", a, ops[i][1], primary(e));
    return a;
}

static const char *parse_not(expr *e)
{
    if (eat(e, "not"))
        return tr_printf(e->sc->tx, "(not S.truth(%s))", parse_not(e));
    return comparison(e);
}

static const char *parse_and(expr *e)
{
    const char *a = parse_not(e);
    while (eat(e, "and"))
        a = tr_printf(e->sc->tx, "(S.truth(%s) and S.truth(%s))", a, parse_not(e));
    return a;
}

static const char *parse_or(expr *e)
{
    const char *a = parse_and(e);
    while (eat(e, "or"))
        a = tr_printf(e->sc->tx, "(S.truth(%s) or S.truth(%s))", a, parse_and(e));
    return a;
}

/* The whole expression [s, end) as Lua; NULL when reported. */
static const char *expression(expr *e, const char *s, const char *end)
{
    const char *v;
    e->s = s;
    e->end = end;
    v = parse_or(e);
    ws(e);
    if (!e->failed && e->s < e->end)
        expr_fail(e, "unexpected \"%s\"", tr_printf(e->sc->tx, "%.*s", (int)(e->end - e->s), e->s));
    return e->failed ? NULL : v;
}

/* Template text as a Lua function of the transformation's context c,
 * defined in the script; its name, or NULL (reported). *reads_body: it
 * reads the body. */
static const char *compile_template(script *sc, const char *text, const char *where, bool response,
                                    const Sluice__V1__TransformationTemplate *tt, bool *reads_body)
{
    tr_ctx *tx = sc->tx;
    expr e = {.sc = sc, .where = tr_printf(tx, "%s \"%s\"", where, text), .response = response,
              .advanced = tt->advanced_templates, .tt = tt};
    const char *code = "", *fn = name(sc, 'T');
    const char *lit = text;
    int depth = 0;
    bool trim_next = false;
    unsigned long long had_else = 0; /* bit d: the if at depth d+1 had its else */
    for (const char *s = text;;) {
        const char *open = s;
        const char *close, *in, *in_end;
        char kind;
        while (*open && !(open[0] == '{' && (open[1] == '{' || open[1] == '%' || open[1] == '#')))
            open++;
        /* the literal before it, trimmed as {{- / -}} say */
        {
            const char *a = lit, *b = open;
            if (trim_next)
                while (a < b && isspace((unsigned char)*a))
                    a++;
            if (*open && open[2] == '-')
                while (b > a && isspace((unsigned char)b[-1]))
                    b--;
            if (b > a)
                code = tr_printf(tx, "%s  o[#o + 1] = %s\n", code, tr_lua_quote_n(tx, a, (size_t)(b - a)));
        }
        if (!*open)
            break;
        kind = open[1];
        close = strstr(open + 2, kind == '{' ? "}}" : kind == '%' ? "%}" : "#}");
        if (!close) {
            expr_fail(&e, "%s", "a tag is not closed");
            break;
        }
        in = open + 2 + (open[2] == '-');
        in_end = close;
        trim_next = close > in && close[-1] == '-';
        if (trim_next)
            in_end--;
        s = lit = close + 2;
        if (kind == '#')
            continue;
        if (kind == '{') {
            const char *v = expression(&e, in, in_end);
            if (!v)
                break;
            code = tr_printf(tx, "%s  o[#o + 1] = S.str(%s)\n", code, v);
            continue;
        }
        e.s = in;
        e.end = in_end;
        if (eat(&e, "if") || (depth && eat(&e, "else") && eat(&e, "if"))) {
            bool elif = !strncmp(in + strspn(in, " \t\r\n-"), "else", 4);
            const char *v = expression(&e, e.s, e.end);
            if (!v)
                break;
            if ((elif && (had_else >> (depth - 1) & 1)) || (!elif && depth == 64)) {
                expr_fail(&e, "%s", elif ? "{% else if %} after {% else %}" : "{% if %} nested too deeply");
                break;
            }
            code = tr_printf(tx, "%s  %s S.truth(%s) then\n", code, elif ? "elseif" : "if", v);
            if (!elif)
                had_else &= ~(1ULL << depth++);
        } else if (e.s = in, depth && eat(&e, "else") && (ws(&e), e.s == e.end)) {
            if (had_else >> (depth - 1) & 1) {
                expr_fail(&e, "%s", "an {% if %} has two {% else %}");
                break;
            }
            had_else |= 1ULL << (depth - 1);
            code = tr_printf(tx, "%s  else\n", code);
        } else if (e.s = in, depth && eat(&e, "endif") && (ws(&e), e.s == e.end)) {
            code = tr_printf(tx, "%s  end\n", code);
            depth--;
        } else {
            while (in < in_end && isspace((unsigned char)*in))
                in++;
            while (in_end > in && isspace((unsigned char)in_end[-1]))
                in_end--;
            expr_fail(&e, "the statement {%% %s %%} is not supported by Sluice (if, else if, else and endif are)",
                      tr_printf(tx, "%.*s", (int)(in_end - in), in));
            break;
        }
    }
    if (!e.failed && depth)
        expr_fail(&e, "%s", "an {% if %} has no {% endif %}");
    if (e.failed) {
        sc->errors++;
        return NULL;
    }
    *reads_body |= e.reads_body;
    define(sc, tr_printf(tx, "function %s(c)\n  local o = {}\n%s  return table.concat(o)\nend\n", fn, code));
    return fn;
}

/* ---- transformations as Lua ------------------------------------------------ */

/* Why Sluice's Lua matcher cannot run RE2 expression re (valid RE2), or NULL. */
static const char *lua_regex_unsupported(const char *re)
{
    for (const char *p = re; *p; p++) {
        if (*p == '\\') {
            if (!*++p)
                return "a trailing \\";
            if (isalpha((unsigned char)*p) && !strchr("dDwWsSntr", *p))
                return "escapes other than \\d \\w \\s \\D \\W \\S \\n \\t \\r";
            if (isdigit((unsigned char)*p))
                return "octal escapes";
        } else if (p[0] == '(' && p[1] == '?' && p[2] != ':') {
            return "flags and named groups";
        } else if (p[0] == '[' && p[1] == ':') {
            return "POSIX classes";
        }
    }
    return NULL;
}

/* A regex for the script: its name, or NULL (reported); *groups its
 * number of capture groups. */
static const char *regex(script *sc, const char *re, const char *where, int *groups)
{
    const char *err = tr_re2_check(sc->tx, re, groups), *lua = err ? NULL : lua_regex_unsupported(re), *n;
    if (err || lua) {
        tr_error(sc->tx, "%s: \"%s\": %s%s", where, re, lua ? "not supported by Sluice's Lua regex matcher: " : "",
                 err ? err : lua);
        sc->errors++;
        return NULL;
    }
    n = name(sc, 'R');
    define(sc, tr_printf(sc->tx, "%s = S.rx(%s)\n", n, tr_lua_quote(sc->tx, re)));
    return n;
}

/* Extractor x's mode as fields of its Lua table ("" for EXTRACT), checked
 * as Gloo's translateExtractor does; NULL (reported) when unusable. */
static const char *extractor_mode(script *sc, const Sluice__V1__Extraction *x, const char *w)
{
    const char *why = NULL;
    if (x->mode == SLUICE__V1__EXTRACTION__MODE__EXTRACT && x->replacement_text && x->replacement_text->value[0])
        why = "replacementText: replacement text should not be set";
    else if (x->mode == SLUICE__V1__EXTRACTION__MODE__EXTRACT)
        return "";
    else if (!x->replacement_text)
        why = "replacementText: replacement text must be set";
    else if (x->mode == SLUICE__V1__EXTRACTION__MODE__REPLACE_ALL && x->subgroup)
        why = "subgroup: subgroup should not be set";
    else if (strchr(x->replacement_text->value, '$'))
        why = "replacementText: '$' substitutions are not supported by Sluice";
    if (why) {
        tr_error(sc->tx, "%s.%s (mode %s)", w, why,
                 x->mode == SLUICE__V1__EXTRACTION__MODE__REPLACE_ALL ? "REPLACE_ALL"
                 : x->mode == SLUICE__V1__EXTRACTION__MODE__SINGLE_REPLACE ? "SINGLE_REPLACE"
                                                                         : "EXTRACT");
        sc->errors++;
        return NULL;
    }
    return tr_printf(sc->tx, ", mode = \"%s\", rep = %s",
                     x->mode == SLUICE__V1__EXTRACTION__MODE__REPLACE_ALL ? "all" : "single",
                     tr_lua_quote(sc->tx, x->replacement_text->value));
}

static const char *extractors(script *sc, const Sluice__V1__TransformationTemplate *tt, const char *where,
                              bool *reads_body)
{
    tr_ctx *tx = sc->tx;
    const char *out = "";
    for (size_t i = 0; i < tt->n_extractors; i++) {
        const Sluice__V1__Extraction *x = tt->extractors[i]->value;
        const char *w = tr_printf(tx, "%s.extractors[%s]", where, tt->extractors[i]->key), *re, *src, *mode;
        int groups = 0;
        if (!x || x->source_case == SLUICE__V1__EXTRACTION__SOURCE__NOT_SET) {
            tr_error(tx, "%s: a header or body source is required", w);
            sc->errors++;
            continue;
        }
        if (!(mode = extractor_mode(sc, x, w)))
            continue;
        if (x->source_case == SLUICE__V1__EXTRACTION__SOURCE_HEADER && tr_check_header_name(x->header, true)) {
            tr_error(tx, "%s.header: %s", w, tr_check_header_name(x->header, true));
            sc->errors++;
            continue;
        }
        if (!(re = regex(sc, x->regex, tr_printf(tx, "%s.regex", w), &groups)))
            continue;
        if (x->mode != SLUICE__V1__EXTRACTION__MODE__REPLACE_ALL && (int)x->subgroup > groups) {
            tr_error(tx, "%s.subgroup: group %u requested for a regex with only %d subgroups", w, x->subgroup, groups);
            sc->errors++;
            continue;
        }
        if (x->source_case == SLUICE__V1__EXTRACTION__SOURCE_BODY) {
            *reads_body = true;
            src = "body = true";
        } else {
            src = tr_printf(tx, "header = %s", tr_lua_quote(tx, x->header));
        }
        out = tr_printf(tx, "%s    {name = %s, %s, re = %s, sub = %u%s},\n", out,
                        tr_lua_quote(tx, tt->extractors[i]->key), src, re, x->subgroup, mode);
    }
    return out;
}

/* A header list {name, template} for S.apply. */
static const char *header_list(script *sc, const char *k, const Sluice__V1__InjaTemplate *v, const char *where,
                               const Sluice__V1__TransformationTemplate *tt, bool response, bool *reads_body)
{
    const char *w = tr_printf(sc->tx, "%s[%s]", where, k), *fn;
    const char *bad = tr_check_header_name(k, true);
    if (bad || (k[0] == ':' && strcmp(k, response ? ":status" : ":path") != 0 &&
                !(!response && (strcmp(k, ":method") == 0 || strcmp(k, ":authority") == 0)))) {
        tr_error(sc->tx, "%s: %s", w, bad ? bad : "this pseudo-header cannot be set");
        sc->errors++;
        return "";
    }
    fn = compile_template(sc, v ? v->text : "", w, response, tt, reads_body);
    return fn ? tr_printf(sc->tx, "{%s, %s}, ", tr_lua_quote(sc->tx, k), fn) : "";
}

/* The template's dynamicMetadataValues as a Lua list of {namespace, key,
 * template, json_to_proto} ("" when reported). */
static const char *dynamic_metadata(script *sc, const Sluice__V1__TransformationTemplate *tt, const char *where,
                                    bool response, bool *reads_body)
{
    const char *out = "";
    for (size_t i = 0; i < tt->n_dynamic_metadata_values; i++) {
        const Sluice__V1__TransformationTemplate__DynamicMetadataValue *d = tt->dynamic_metadata_values[i];
        const char *w = tr_printf(sc->tx, "%s.dynamicMetadataValues[%zu]", where, i);
        const char *fn = compile_template(sc, d->value ? d->value->text : "", tr_printf(sc->tx, "%s.value", w),
                                          response, tt, reads_body);
        if (!d->key[0]) {
            tr_error(sc->tx, "%s.key: required", w);
            sc->errors++;
        }
        if (fn)
            out = tr_printf(sc->tx, "%s{%s, %s, %s, %s}, ", out,
                            tr_lua_quote(sc->tx, d->metadata_namespace[0] ? d->metadata_namespace
                                                                          : "io.solo.transformation"),
                            tr_lua_quote(sc->tx, d->key), fn, d->json_to_proto ? "true" : "false");
    }
    return out;
}

/* mergeJsonKeys as a Lua list of {key, template, override_empty}, checked
 * as Gloo's translateTransformationTemplate does; NULL when reported. */
static const char *merge_json_keys(script *sc, const Sluice__V1__TransformationTemplate *tt, const char *where,
                                   bool response, bool *reads_body)
{
    const Sluice__V1__MergeJsonKeys *mk = tt->merge_json_keys;
    const char *w = tr_printf(sc->tx, "%s.mergeJsonKeys", where), *out = "{";
    if (tt->advanced_templates || tt->parse_body_behavior !=
                                      SLUICE__V1__TRANSFORMATION_TEMPLATE__REQUEST_BODY_PARSE__ParseAsJson) {
        tr_error(sc->tx, "%s: %s", w,
                 tt->advanced_templates ? "merge_json_keys is not supported with advanced templates"
                                        : "merge_json_keys is only supported with parse_body_behavior set to "
                                          "PARSE_AS_JSON");
        sc->errors++;
        return NULL;
    }
    for (size_t i = 0; mk && i < mk->n_json_keys; i++) {
        const char *k = mk->json_keys[i]->key, *fn;
        const Sluice__V1__MergeJsonKeys__OverridableTemplate *t = mk->json_keys[i]->value;
        if (strchr(k, '.')) {
            tr_error(sc->tx, "%s: merge_json_keys key %s contains a period, which is not currently supported", w, k);
            sc->errors++;
            continue;
        }
        fn = compile_template(sc, t && t->tmpl ? t->tmpl->text : "", tr_printf(sc->tx, "%s.jsonKeys[%s]", w, k),
                              response, tt, reads_body);
        if (fn)
            out = tr_printf(sc->tx, "%s{%s, %s, %s}, ", out, tr_lua_quote(sc->tx, k), fn,
                            t && t->override_empty ? "true" : "false");
    }
    return tr_printf(sc->tx, "%s}", out);
}

/* Transformation t as a table for S.apply, defined in the script: its
 * name, or NULL (reported). */
static const char *compile_xform(script *sc, const Sluice__V1__Transformation *t, const char *where, bool response)
{
    tr_ctx *tx = sc->tx;
    const Sluice__V1__TransformationTemplate *tt;
    const char *ex, *hs = "", *ha = "", *hr = "", *body = NULL, *md, *x;
    bool reads_body = false, sets_body = false, json;
    int errors = sc->errors;
    if (t->transformation_type_case == SLUICE__V1__TRANSFORMATION__TRANSFORMATION_TYPE_HEADER_BODY_TRANSFORM) {
        x = name(sc, 'X');
        define(sc, tr_printf(tx, "%s = {hb = {meta = %s}, nb = true}\n", x,
                             t->header_body_transform->add_request_metadata ? "true" : "false"));
        return x;
    }
    if (t->transformation_type_case != SLUICE__V1__TRANSFORMATION__TRANSFORMATION_TYPE_TRANSFORMATION_TEMPLATE)
        return "false";
    if (t->log_request_response_info)
        tr_warn(tx, "%s.logRequestResponseInfo: not applied by Sluice", where);
    tt = t->transformation_template;
    where = tr_printf(tx, "%s.transformationTemplate", where);
    if (tt->escape_characters && tt->escape_characters->value) {
        tr_error(tx, "%s.escapeCharacters: not supported by Sluice", where);
        sc->errors++;
    }
    ex = extractors(sc, tt, where, &reads_body);
    for (size_t i = 0; i < tt->n_headers; i++)
        hs = tr_printf(tx, "%s%s", hs,
                       header_list(sc, tt->headers[i]->key, tt->headers[i]->value, tr_printf(tx, "%s.headers", where),
                                   tt, response, &reads_body));
    for (size_t i = 0; i < tt->n_headers_to_append; i++)
        ha = tr_printf(tx, "%s%s", ha,
                       header_list(sc, tt->headers_to_append[i]->key, tt->headers_to_append[i]->value,
                                   tr_printf(tx, "%s.headersToAppend", where), tt, response, &reads_body));
    for (size_t i = 0; i < tt->n_headers_to_remove; i++)
        hr = tr_printf(tx, "%s%s, ", hr, tr_lua_quote(tx, tt->headers_to_remove[i]));
    md = dynamic_metadata(sc, tt, where, response, &reads_body);
    if (tt->body_transformation_case == SLUICE__V1__TRANSFORMATION_TEMPLATE__BODY_TRANSFORMATION_MERGE_JSON_KEYS) {
        body = merge_json_keys(sc, tt, where, response, &reads_body);
        sets_body = true;
    } else if (tt->body_transformation_case == SLUICE__V1__TRANSFORMATION_TEMPLATE__BODY_TRANSFORMATION_BODY) {
        body = compile_template(sc, tt->body ? tt->body->text : "", tr_printf(tx, "%s.body", where), response, tt,
                                &reads_body);
        sets_body = true;
    } else if (tt->body_transformation_case ==
               SLUICE__V1__TRANSFORMATION_TEMPLATE__BODY_TRANSFORMATION_MERGE_EXTRACTORS_TO_BODY) {
        body = "\"merge\"";
        sets_body = true;
    }
    if (sc->errors != errors)
        return NULL;
    json = tt->parse_body_behavior == SLUICE__V1__TRANSFORMATION_TEMPLATE__REQUEST_BODY_PARSE__ParseAsJson &&
           tt->body_transformation_case != SLUICE__V1__TRANSFORMATION_TEMPLATE__BODY_TRANSFORMATION_PASSTHROUGH &&
           (reads_body || sets_body);
    x = name(sc, 'X');
    define(sc, tr_printf(tx,
                         "%s = {\n  ex = {\n%s  },\n  hs = {%s},\n  ha = {%s},\n  hr = {%s},\n  md = {%s},\n"
                         "  body = %s,\n  parse = %s, json = %s, ignore = %s, nb = %s, adv = %s,\n}\n",
                         x, ex, hs, ha, hr, md, body ? body : "nil",
                         tt->parse_body_behavior == SLUICE__V1__TRANSFORMATION_TEMPLATE__REQUEST_BODY_PARSE__ParseAsJson
                             ? "true"
                             : "false",
                         json ? "true" : "false", tt->ignore_error_on_parse ? "true" : "false",
                         reads_body || sets_body ? "true" : "false", tt->advanced_templates ? "true" : "false"));
    return x;
}

/* A header condition of a matcher as a Lua expression, or NULL (reported). */
static const char *header_cond(script *sc, const Sluice__V1__HeaderMatcher *h, const char *where)
{
    const char *re = "nil", *bad = tr_check_header_name(h->name, true);
    int groups;
    if (bad) {
        tr_error(sc->tx, "%s.name: %s", where, bad);
        sc->errors++;
        return NULL;
    }
    if (h->regex && !(re = regex(sc, h->value, tr_printf(sc->tx, "%s.value", where), &groups)))
        return NULL;
    return tr_printf(sc->tx, "c:hmatch(%s, %s, %s, %s)", tr_lua_quote(sc->tx, h->name),
                     h->value[0] && !h->regex ? tr_lua_quote(sc->tx, h->value) : "nil", re,
                     h->invert_match ? "true" : "false");
}

/* Matcher m of a request transformation as a Lua condition, or NULL. */
static const char *request_cond(script *sc, const Sluice__V1__Matcher *m, const char *where)
{
    tr_ctx *tx = sc->tx;
    const char *cond = "true", *ci;
    int groups;
    if (!m)
        return cond;
    ci = m->case_sensitive && !m->case_sensitive->value ? "true" : "false";
    if (m->path_specifier_case == SLUICE__V1__MATCHER__PATH_SPECIFIER_PREFIX && strcmp(m->prefix, "/") != 0)
        cond = tr_printf(tx, "c:prefix(%s, %s)", tr_lua_quote(tx, m->prefix), ci);
    else if (m->path_specifier_case == SLUICE__V1__MATCHER__PATH_SPECIFIER_EXACT)
        cond = tr_printf(tx, "c:exact(%s, %s)", tr_lua_quote(tx, m->exact), ci);
    else if (m->path_specifier_case == SLUICE__V1__MATCHER__PATH_SPECIFIER_REGEX) {
        const char *re = regex(sc, m->regex, tr_printf(tx, "%s.regex", where), &groups);
        if (!re)
            return NULL;
        cond = tr_printf(tx, "S.match(%s, c:path()) ~= nil", re);
    }
    if (m->n_query_parameters) {
        tr_error(tx, "%s.queryParameters: not supported by Sluice in transformation matchers", where);
        sc->errors++;
        return NULL;
    }
    for (size_t i = 0; i < m->n_headers; i++) {
        const char *h = header_cond(sc, m->headers[i], tr_printf(tx, "%s.headers[%zu]", where, i));
        if (!h)
            return NULL;
        cond = tr_printf(tx, "%s and %s", cond, h);
    }
    if (m->n_methods) {
        const char *l = "";
        for (size_t i = 0; i < m->n_methods; i++)
            l = tr_printf(tx, "%s%s%s", l, i ? ", " : "", tr_lua_quote(tx, m->methods[i]));
        cond = tr_printf(tx, "%s and c:method({%s})", cond, l);
    }
    return cond;
}

/* The route's Lua script for stage p (early or regular), or NULL
 * (reported). */
static const char *lua_script(tr_ctx *tx, const stage *p, const char *route_name, bool early)
{
    const char *ns = early ? "\"sluice.transformation.early\"" : "\"sluice.transformation\"";
    script sc = {.tx = tx, .defs = ""};
    const char *req = "", *resp = "", *save = "nil";
    bool any_resp = p->n_resp > 0;
    for (size_t i = 0; i < p->n_req; i++) {
        const req_match *m = &p->req[i];
        const char *cond = request_cond(&sc, m->matcher, tr_printf(tx, "%s.matcher", m->path));
        const char *rq = m->req ? compile_xform(&sc, m->req, tr_printf(tx, "%s.requestTransformation", m->path), false)
                                : "false";
        const char *rs = m->resp ? compile_xform(&sc, m->resp, tr_printf(tx, "%s.responseTransformation", m->path),
                                                 true)
                                 : "false";
        any_resp |= m->resp != NULL;
        if (cond && rq && rs)
            req = tr_printf(tx, "%s  {function(c) return %s end, %s, %s},\n", req, cond, rq, rs);
    }
    for (size_t i = 0; i < p->n_resp; i++) {
        const Sluice__V1__ResponseMatch *m = p->resp[i].m;
        const char *cond = NULL, *x;
        if (m->response_code_details[0]) {
            tr_error(tx, "%s.responseCodeDetails: not supported by Sluice (Envoy's Lua filter cannot read them)",
                     p->resp[i].path);
            sc.errors++;
        }
        for (size_t j = 0; j < m->n_matchers; j++) {
            const char *h = header_cond(&sc, m->matchers[j], tr_printf(tx, "%s.matchers[%zu]", p->resp[i].path, j));
            if (h)
                cond = cond ? tr_printf(tx, "%s and %s", cond, h) : h;
        }
        if (!m->response_transformation)
            continue;
        x = compile_xform(&sc, m->response_transformation,
                          tr_printf(tx, "%s.responseTransformation", p->resp[i].path), true);
        if (x)
            resp = tr_printf(tx, "%s  {function(c) return %s end, %s},\n", resp, cond ? cond : "true", x);
    }
    if (sc.errors)
        return NULL;
    if (any_resp) {
        save = "{";
        for (size_t i = 0; i < sc.n_saved; i++)
            save = tr_printf(tx, "%s%s%s", save, i ? ", " : "", tr_lua_quote(tx, sc.saved[i]));
        save = tr_printf(tx, "%s}", save);
    }
    return tr_printf(tx,
                     "-- Sluice: %stransformations of route %s\nlocal S = ...\nlocal L = {}\n%s"
                     "local REQ = {\n%s}\nlocal RESP = %s%s%s\n"
                     "return {req = REQ, resp = RESP, save = %s, ns = %s}\n",
                     early ? "early " : "", tr_lua_comment_safe(tx, route_name), sc.defs, req,
                     any_resp ? "{\n" : "nil", any_resp ? resp : "", any_resp ? "}" : "", save, ns);
}

/* Where a route's programs run: in the source its stage's Lua filter
 * shares (the runtime and the dispatcher), found through the route's
 * metadata; weighted destinations, whose metadata Envoy's Lua filter
 * cannot see, carry a script of their own (standalone()). */
#define SHARED_SOURCE "sluice.transformation"

static const char *shared_source(tr_ctx *tx)
{
    return tr_printf(tx, "-- Sluice: the transformation runtime the routes' programs run in\n%s%s",
                     tr_transformation_lua, tr_transformation_dispatch_lua);
}

static void route_program(tr_ctx *tx, tr_route_t *r, const char *filter, const char *program)
{
    tr_metadata_put_string(tx, &r->metadata, filter, "program", program);
    tr_route_filter_config(tx, r, filter, tr_lua_named_config(tx, SHARED_SOURCE));
}

/* A script that runs one program on its own: its first line (what it is),
 * the runtime, then the program. */
static const char *standalone(tr_ctx *tx, const char *program)
{
    int title = (int)(strchr(program, '\n') - program) + 1;
    return tr_printf(tx, "%.*s%slocal P = (function(...)\n%send)(S)\nS.serve(function() return P end)\n", title,
                     program, tr_transformation_lua, program);
}

/* ---- the route ------------------------------------------------------------ */

/* The transformations of route in (its own, else its virtual host's;
 * inheritTransformation adds the virtual host's after its own) into p.
 * False when it has none. */
static bool route_plan(tr_ctx *tx, const tr_route_in *in, plan *p)
{
    /* no VirtualService when a RouteTable is checked on its own */
    const Sluice__V1__VirtualHostOptions *vo =
        in->vs && in->vs->spec && in->vs->spec->virtual_host ? in->vs->spec->virtual_host->options : NULL;
    const Sluice__V1__RouteOptions *ro = in->options;
    if (ro && (ro->transformations || ro->staged_transformations)) {
        collect(tx, p, ro->transformations, ro->staged_transformations, in->path);
        if (ro->staged_transformations && ro->staged_transformations->inherit_transformation && vo)
            collect(tx, p, vo->transformations, vo->staged_transformations, "spec.virtualHost.options");
        return true;
    }
    if (vo && (vo->transformations || vo->staged_transformations)) {
        collect(tx, p, vo->transformations, vo->staged_transformations, "spec.virtualHost.options");
        return true;
    }
    return false;
}

static bool plan_empty(const plan *p)
{
    return !p->regular.n_req && !p->regular.n_resp && !p->early.n_req && !p->early.n_resp;
}

/* Whether p is one unconditional template that header mutation can do. */
static bool plan_mutation(tr_ctx *tx, const plan *p)
{
    const stage *sg = &p->regular;
    return !p->early.n_req && !p->early.n_resp && sg->n_req == 1 && !sg->req[0].matcher && sg->n_resp == 0 &&
           mutation_ok(tx, sg->req[0].req, false) && mutation_ok(tx, sg->req[0].resp, true);
}

/* Whether a weighted destination of the route has transformations of its
 * own (then the route's cannot be header mutation, which Envoy would apply
 * to every destination). */
static bool weighted_transformations(const tr_route_in *in)
{
    const Sluice__V1__RouteAction *a = in->route ? in->route->route_action : NULL;
    if (!a || a->destination_case != SLUICE__V1__ROUTE_ACTION__DESTINATION_MULTI || !a->multi)
        return false;
    for (size_t i = 0; i < a->multi->n_destinations; i++) {
        const Sluice__V1__WeightedDestinationOptions *o = a->multi->destinations[i]->options;
        if (o && (o->transformations || o->staged_transformations))
            return true;
    }
    return false;
}

static void route(tr_ctx *tx, const tr_route_in *in, tr_route_t *r)
{
    plan *p = tr_alloc(tx, sizeof *p);
    const stage *sg = &p->regular;
    const char *code;
    memset(p, 0, sizeof *p);
    if (!route_plan(tx, in, p) || p->errors || plan_empty(p))
        return;
    if (in->gw->proxyless) {
        tr_warn(tx, "%s: transformations are not applied for gRPC proxyless clients (they run no filters)",
                in->route_path);
        return;
    }
    if (plan_mutation(tx, p) && !weighted_transformations(in)) {
        mutation(tx, r, sg->req[0].req, false);
        mutation(tx, r, sg->req[0].resp, true);
        return;
    }
    if ((p->early.n_req || p->early.n_resp) && (code = lua_script(tx, &p->early, r->name ? r->name : "", true))) {
        route_program(tx, r, EARLY_FILTER, code);
        tr_use(tx, &sl_tr_plugin_transformation);
    }
    if (!sg->n_req && !sg->n_resp)
        return;
    if (in->dest_spec && in->dest_spec->destination_type_case == SLUICE__V1__DESTINATION_SPEC__DESTINATION_TYPE_REST) {
        tr_error(tx, "%s: these transformations need Envoy's Lua filter, which the route's REST function "
                     "(routeAction.single.destinationSpec.rest) already uses; Sluice cannot combine them "
                     "(stagedTransformations.early can)",
                 in->route_path);
        return;
    }
    if ((code = lua_script(tx, sg, r->name ? r->name : "", false))) {
        route_program(tx, r, TR_LUA_FILTER, code);
        tr_use(tx, &sl_tr_plugin_transformation_regular);
        tr_lua_use(tx);
    }
}

/* A weighted destination's transformations replace its route's (most
 * specific per-filter config wins in Envoy, as in Gloo's filter): its own
 * scripts on the weighted cluster, and where the route has a script of a
 * stage the destination lacks, that filter disabled for it. */
static void weighted_destination(tr_ctx *tx, const tr_route_in *in, const Sluice__V1__WeightedDestinationOptions *o,
                                 const char *path, Envoy__Config__Route__V3__WeightedCluster__ClusterWeight *cw)
{
    plan *own, *parent;
    const char *name;
    if (!o || (!o->transformations && !o->staged_transformations))
        return;
    own = tr_alloc(tx, sizeof *own);
    parent = tr_alloc(tx, sizeof *parent);
    memset(own, 0, sizeof *own);
    memset(parent, 0, sizeof *parent);
    parent->quiet = true;
    route_plan(tx, in, parent);
    collect(tx, own, o->transformations, o->staged_transformations, path);
    if (o->staged_transformations && o->staged_transformations->inherit_transformation) {
        own->quiet = true;
        route_plan(tx, in, own);
    }
    if (own->errors || in->gw->proxyless)
        return;
    if (!plan_empty(parent) && !parent->errors && plan_mutation(tx, parent) && !weighted_transformations(in)) {
        tr_error(tx, "%s: the route's transformations are header mutation, which applies to every destination of "
                     "its upstream group; Sluice cannot replace them for one (give the route a matcher-based "
                     "stagedTransformations, or the group's destinations their own)", path);
        return;
    }
    name = tr_printf(tx, "%s-%s", in->route_path, cw->name);
    if (own->early.n_req || own->early.n_resp) {
        const char *code = lua_script(tx, &own->early, name, true);
        if (!code)
            return;
        tr_cluster_weight_filter_config(tx, cw, EARLY_FILTER, tr_lua_config(tx, standalone(tx, code)));
        tr_use(tx, &sl_tr_plugin_transformation);
    } else if (parent->early.n_req || parent->early.n_resp) {
        tr_cluster_weight_filter_config(tx, cw, EARLY_FILTER, tr_lua_config(tx, NULL));
    }
    if (own->regular.n_req || own->regular.n_resp) {
        const char *code = lua_script(tx, &own->regular, name, false);
        if (!code)
            return;
        tr_cluster_weight_filter_config(tx, cw, TR_LUA_FILTER, tr_lua_config(tx, standalone(tx, code)));
        tr_lua_use(tx);
    } else if (parent->regular.n_req || parent->regular.n_resp) {
        tr_cluster_weight_filter_config(tx, cw, TR_LUA_FILTER, tr_lua_config(tx, NULL));
    }
}

/* The early stage's Lua filter: before every other filter of the chain
 * (Gloo's early stage is before its fault stage), disabled, enabled per
 * route with the early program. */
static void http_filters(tr_ctx *tx, const tr_gateway *gw, tr_hcm_t *hcm, tr_filters *f)
{
    (void)gw;
    (void)hcm;
    if (tr_used(tx, &sl_tr_plugin_transformation))
        tr_lua_filter_shared(tx, f, TR_STAGE_COMPRESS - 10, EARLY_FILTER, SHARED_SOURCE, shared_source(tx));
}

/* The regular stage's: lua's own filter (plugins/lua.c), added here with
 * the shared source when a route has a regular program (this plugin comes
 * before lua's in the table, and the first filter of a name wins). */
static void regular_filter(tr_ctx *tx, const tr_gateway *gw, tr_hcm_t *hcm, tr_filters *f)
{
    (void)gw;
    (void)hcm;
    if (tr_used(tx, &sl_tr_plugin_transformation_regular))
        tr_lua_filter_shared(tx, f, TR_STAGE_LUA, TR_LUA_FILTER, SHARED_SOURCE, shared_source(tx));
}

const sl_tr_plugin sl_tr_plugin_transformation_regular = {
    .name = "transformation_regular",
    .http_filters = regular_filter,
};

const sl_tr_plugin sl_tr_plugin_transformation = {
    .name = "transformation",
    .fields = fields,
    .http_filters = http_filters,
    .route = route,
    .weighted_destination = weighted_destination,
};
