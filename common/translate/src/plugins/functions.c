/* functions: routes that call a REST or gRPC function of an upstream
 * (destinationSpec.rest, destinationSpec.grpc), with stock Envoy only.
 *
 * REST (serviceSpec.rest.transformations[functionName], Gloo's request
 * templates): the template's ":path" becomes a regex_rewrite of the path,
 * its other headers request_headers_to_add, ":authority"/"host" a literal
 * host rewrite. Path parameters (parameters.path, or parameters.headers
 * ":path", e.g. "/pets/{id}") turn the route's prefix into a safe_regex
 * matcher whose groups feed the rewrite ("/api/pets/{{ id }}" -> "\1");
 * header parameters ("x-user-id: {userId}") feed headers as %REQ(x-user-id)%.
 * Route headers_to_add and the header_mutation filter both refuse
 * ':'-prefixed headers at load time, so a function's ":method" is set by
 * Envoy's Lua filter (plugins/lua.c), enabled on the route with a script
 * replacing :method. A body template whose variables are all route
 * parameters is rendered by the same script (path captures, header
 * values); one that uses variables of the request's JSON body (which
 * stock Envoy cannot parse) is not applied: a Warning, the body passes.
 * gRPC proxyless clients run no filters: there the route is restricted to
 * requests already using the method (a ":method" header matcher) with a
 * Warning saying so.
 *
 * gRPC (serviceSpec.grpc descriptors + destinationSpec.grpc {package,
 * service, function}): Envoy's grpc_json_transcoder, enabled on the route
 * with the upstream's descriptor set in which the called method gets a
 * google.api.http binding for the route's path (the parameters' path
 * template, else the exact path, else the prefix and everything under it)
 * and method (POST unless the matcher names one), so HTTP/JSON clients call
 * the gRPC method; match_incoming_request_route keeps the route Envoy chose. */
#include <ctype.h>
#include <string.h>

#include "../plugin.h"
#include "luatext.h"
#include "envoy/extensions/filters/http/grpc_json_transcoder/v3/transcoder.pb-c.h"
#include "google/api/http.pb-c.h"
#include "google/protobuf/descriptor.pb-c.h"
#include "sluice/upstreams.h"

#define TRANSCODER "envoy.filters.http.grpc_json_transcoder"
#define HTTP_RULE_EXTENSION 72295728u /* google.api.http on MethodOptions */
#define MAX_VARS 9                    /* RE2 substitutions name groups \1..\9 */

static const char *const fields[] = {"DestinationSpec.rest", "DestinationSpec.grpc", NULL};
extern const sl_tr_plugin sl_tr_plugin_transcoder;


/* ---- parameters --------------------------------------------------------- */

typedef struct params {
    const char *path;   /* the path pattern ("/pets/{id}"), or NULL */
    const char *regex;  /* the pattern as RE2 (a group per variable) */
    const char *vars[MAX_VARS];
    size_t n_vars;
    struct {
        const char *var, *header;
    } hdr[16];
    size_t n_hdr;
} params;

static bool ident_char(char c, bool first)
{
    return isalpha((unsigned char)c) || c == '_' || (!first && (isdigit((unsigned char)c) || c == '.' || c == '-'));
}

/* Reads "{name}" at *s; returns the name (arena) and advances, or NULL. */
static const char *brace_var(tr_ctx *tx, const char **s)
{
    const char *p = *s + 1, *start = p;
    char *name;
    while (*p && ident_char(*p, p == start))
        p++;
    if (*p != '}' || p == start)
        return NULL;
    name = tr_alloc(tx, (size_t)(p - start) + 1);
    memcpy(name, start, (size_t)(p - start));
    name[p - start] = '\0';
    *s = p + 1;
    return name;
}

static bool parse_path_pattern(tr_ctx *tx, params *pp, const char *pat, const char *where)
{
    char *re = tr_alloc(tx, strlen(pat) * 2 + 16 * MAX_VARS + 1), *o = re;
    if (pat[0] != '/') {
        tr_error(tx, "%s: \"%s\" must start with '/'", where, pat);
        return false;
    }
    for (const char *s = pat; *s;) {
        if (*s == '{') {
            const char *v = brace_var(tx, &s);
            if (!v) {
                tr_error(tx, "%s: \"%s\": a parameter is {name} (letters, digits, '_', '.', '-')", where, pat);
                return false;
            }
            if (pp->n_vars == MAX_VARS) {
                tr_error(tx, "%s: \"%s\": at most %d path parameters", where, pat, MAX_VARS);
                return false;
            }
            for (size_t i = 0; i < pp->n_vars; i++)
                if (strcmp(pp->vars[i], v) == 0) {
                    tr_error(tx, "%s: \"%s\": parameter {%s} appears twice", where, pat, v);
                    return false;
                }
            pp->vars[pp->n_vars++] = v;
            memcpy(o, "([^/]+)", 7);
            o += 7;
            continue;
        }
        if ((unsigned char)*s <= 32 || *s == '}' || *s == '?' || *s == '#' || (unsigned char)*s == 127) {
            tr_error(tx, "%s: \"%s\": '%c' is not allowed in a path pattern", where, pat, *s > 32 ? *s : '?');
            return false;
        }
        if (!isalnum((unsigned char)*s) && *s != '/' && (unsigned char)*s < 128)
            *o++ = '\\';
        *o++ = *s++;
    }
    *o = '\0';
    pp->path = pat;
    pp->regex = re;
    return true;
}

static bool parse_params(tr_ctx *tx, params *pp, const Sluice__V1__Parameters *p, const char *where)
{
    memset(pp, 0, sizeof *pp);
    if (!p)
        return true;
    if (p->path && !parse_path_pattern(tx, pp, p->path->value, tr_printf(tx, "%s.path", where)))
        return false;
    for (size_t i = 0; i < p->n_headers; i++) {
        const char *k = p->headers[i]->key, *v = p->headers[i]->value;
        const char *hw = tr_printf(tx, "%s.headers[%s]", where, k);
        const char *s = v, *var;
        if (strcmp(k, ":path") == 0) {
            if (pp->path) {
                tr_error(tx, "%s: the path pattern is given twice (also in parameters.path)", hw);
                return false;
            }
            if (!parse_path_pattern(tx, pp, v, hw))
                return false;
            continue;
        }
        if (tr_check_header_name(k, false)) {
            tr_error(tx, "%s: %s", hw, tr_check_header_name(k, false));
            return false;
        }
        if (*s != '{' || !(var = brace_var(tx, &s)) || *s) {
            tr_error(tx, "%s: \"%s\": stock Envoy can take only a whole header value as a parameter (\"{name}\")",
                     hw, v);
            return false;
        }
        if (pp->n_hdr == sizeof pp->hdr / sizeof pp->hdr[0]) {
            tr_error(tx, "%s: at most 16 header parameters", hw);
            return false;
        }
        pp->hdr[pp->n_hdr].var = var;
        pp->hdr[pp->n_hdr].header = k;
        pp->n_hdr++;
    }
    return true;
}

/* ---- templates ---------------------------------------------------------- */

enum render_mode { RENDER_PATH, RENDER_HEADER };

/* The variable an Inja expression names: "id", "default(id, \"\")". */
static const char *expr_var(tr_ctx *tx, const char *e, size_t n)
{
    char *s = tr_alloc(tx, n + 1), *end;
    memcpy(s, e, n);
    s[n] = '\0';
    while (isspace((unsigned char)*s))
        s++;
    end = s + strlen(s);
    while (end > s && isspace((unsigned char)end[-1]))
        *--end = '\0';
    if (strncmp(s, "default(", 8) == 0 && end > s && end[-1] == ')') {
        char *comma = strchr(s, ',');
        s += 8;
        if (comma)
            *comma = '\0';
        else
            end[-1] = '\0';
        while (isspace((unsigned char)*s))
            s++;
        end = s + strlen(s);
        while (end > s && isspace((unsigned char)end[-1]))
            *--end = '\0';
    }
    for (const char *c = s; *c; c++)
        if (!ident_char(*c, c == s))
            return NULL;
    return s[0] ? s : NULL;
}

/* The variable of the {{ ... }} template expression at s ("{{" there),
 * *close at its "}}"; NULL, with the error reported, when it is not one
 * Sluice can render. */
static const char *template_var(tr_ctx *tx, const char *s, const char **close, const char *where, const char *text)
{
    const char *var = NULL;
    *close = strstr(s + 2, "}}");
    if (!*close || !(var = expr_var(tx, s + 2, (size_t)(*close - s - 2))))
        tr_error(tx, "%s: \"%s\": only {{ name }} and {{ default(name, ...) }} are supported by Sluice", where, text);
    return var;
}

/* Renders an Inja template as an RE2 substitution (path) or an Envoy header
 * formatter string; NULL (reported) when stock Envoy cannot. */
static const char *render(tr_ctx *tx, const char *text, const params *pp, enum render_mode mode, const char *where)
{
    size_t cap = strlen(text) * 2 + 64, n = 0;
    char *out = tr_alloc(tx, cap);
    for (const char *s = text; *s;) {
        if (s[0] == '{' && (s[1] == '%' || s[1] == '#')) {
            tr_error(tx, "%s: \"%s\": Inja statements and comments are not supported by Sluice (stock Envoy has "
                         "no templates; only {{ parameter }} is)", where, text);
            return NULL;
        }
        if (s[0] == '{' && s[1] == '{') {
            const char *close, *piece = NULL;
            const char *var = template_var(tx, s, &close, where, text);
            if (!var)
                return NULL;
            for (size_t i = 0; i < pp->n_vars && !piece; i++)
                if (strcmp(pp->vars[i], var) == 0) {
                    if (mode == RENDER_HEADER) {
                        tr_error(tx, "%s: path parameter {%s}: stock Envoy cannot put path parameters into headers",
                                 where, var);
                        return NULL;
                    }
                    piece = tr_printf(tx, "\\%zu", i + 1);
                }
            for (size_t i = 0; i < pp->n_hdr && !piece; i++)
                if (strcmp(pp->hdr[i].var, var) == 0) {
                    if (mode == RENDER_PATH) {
                        tr_error(tx, "%s: header parameter {%s}: stock Envoy cannot put header values into the path",
                                 where, var);
                        return NULL;
                    }
                    piece = tr_printf(tx, "%%REQ(%s)%%", pp->hdr[i].header);
                }
            if (!piece) {
                tr_error(tx, "%s: \"%s\": {{ %s }} is not a parameter of the route (destinationSpec parameters)", where,
                         text, var);
                return NULL;
            }
            if (n + strlen(piece) + 2 >= cap) {
                char *bigger = tr_alloc(tx, cap = cap * 2 + strlen(piece));
                memcpy(bigger, out, n);
                out = bigger;
            }
            memcpy(out + n, piece, strlen(piece));
            n += strlen(piece);
            s = close + 2;
            continue;
        }
        if (n + 4 >= cap) {
            char *bigger = tr_alloc(tx, cap *= 2);
            memcpy(bigger, out, n);
            out = bigger;
        }
        if ((mode == RENDER_PATH && *s == '\\') || (mode == RENDER_HEADER && *s == '%'))
            out[n++] = *s;
        out[n++] = *s++;
    }
    out[n] = '\0';
    return out;
}

static bool literal(const char *s) { return !strstr(s, "{{") && !strstr(s, "{%"); }

/* ---- Lua (plugins/lua.c runs it) ----------------------------------------- */

/* The anchored Lua pattern of a path pattern ("/pets/{id}" ->
 * "^/pets/([^/]+)$"): other characters are literal (%-escaped). */
static const char *lua_path_pattern(tr_ctx *tx, const char *pat)
{
    char *o = tr_alloc(tx, strlen(pat) * 7 + 3), *p = o;
    *p++ = '^';
    for (const char *s = pat; *s;) {
        if (*s == '{') {
            s = strchr(s, '}') + 1; /* checked by parse_path_pattern() */
            memcpy(p, "([^/]+)", 7);
            p += 7;
            continue;
        }
        if (!isalnum((unsigned char)*s) && *s != '/')
            *p++ = '%';
        *p++ = *s++;
    }
    *p++ = '$';
    *p = '\0';
    return o;
}

/* Whether template text names a path parameter ({{ id }}). */
static bool uses_path_vars(tr_ctx *tx, const char *text, const params *pp)
{
    for (const char *s = strstr(text, "{{"); s; s = strstr(s + 2, "{{")) {
        const char *close = strstr(s + 2, "}}"), *var;
        if (!close)
            return false;
        if ((var = expr_var(tx, s + 2, (size_t)(close - s - 2))))
            for (size_t i = 0; i < pp->n_vars; i++)
                if (strcmp(pp->vars[i], var) == 0)
                    return true;
    }
    return false;
}

/* An Inja template as a Lua expression over the route's parameters: path
 * parameters are the captures pv[i] of the path, header parameters the
 * request's headers. NULL with *unknown set when a variable is not a
 * parameter (nothing reported), NULL on other errors (reported). */
static const char *render_lua(tr_ctx *tx, const char *text, const params *pp, bool *path_vars, const char **unknown,
                              const char *where)
{
    const char *out = NULL;
    for (const char *s = text; *s;) {
        const char *piece = NULL;
        if (s[0] == '{' && (s[1] == '%' || s[1] == '#')) {
            tr_error(tx, "%s: \"%s\": Inja statements and comments are not supported by Sluice (only {{ parameter }} "
                         "is)", where, text);
            return NULL;
        }
        if (s[0] == '{' && s[1] == '{') {
            const char *close;
            const char *var = template_var(tx, s, &close, where, text);
            if (!var)
                return NULL;
            for (size_t i = 0; i < pp->n_vars && !piece; i++)
                if (strcmp(pp->vars[i], var) == 0) {
                    piece = tr_printf(tx, "(pv[%zu] or \"\")", i + 1);
                    *path_vars = true;
                }
            for (size_t i = 0; i < pp->n_hdr && !piece; i++)
                if (strcmp(pp->hdr[i].var, var) == 0)
                    piece = tr_printf(tx, "(headers:get(%s) or \"\")", tr_lua_quote(tx, pp->hdr[i].header));
            if (!piece) {
                *unknown = var;
                return NULL;
            }
            s = close + 2;
        } else {
            const char *e = s + 1;
            while (*e && !(e[0] == '{' && (e[1] == '{' || e[1] == '%' || e[1] == '#')))
                e++;
            piece = tr_lua_quote_n(tx, s, (size_t)(e - s));
            s = e;
        }
        out = out ? tr_printf(tx, "%s .. %s", out, piece) : piece;
    }
    return out ? out : "\"\"";
}

/* ---- REST --------------------------------------------------------------- */

static void add_method_matcher(tr_ctx *tx, tr_route_t *r, const char *method)
{
    Envoy__Config__Route__V3__HeaderMatcher *hm = TR_NEW(tx, envoy__config__route__v3__header_matcher);
    hm->name = tr_strdup(tx, ":method");
    hm->header_match_specifier_case = ENVOY__CONFIG__ROUTE__V3__HEADER_MATCHER__HEADER_MATCH_SPECIFIER_STRING_MATCH;
    hm->string_match = TR_NEW(tx, envoy__type__matcher__v3__string_matcher);
    hm->string_match->match_pattern_case = ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_EXACT;
    hm->string_match->exact = tr_strdup(tx, method);
    TR_PUSH(tx, r->match, headers, hm);
}

/* A REST function call being translated: what its template gives. */
typedef struct rest_call {
    const Sluice__V1__RestDestinationSpec *d;
    const Sluice__V1__Upstream *up;
    const char *path;  /* the destinationSpec, in reports */
    const char *fpath; /* the function's template, in reports */
    params pp;
    const char *subst;       /* the path rewrite, or NULL */
    const char *method;      /* the :method set, or NULL */
    const char *lua_body;    /* the body as a Lua expression, or NULL */
    const char *lua_headers; /* Lua statements setting headers */
    bool lua_path_vars;      /* the Lua code reads path captures (pv) */
    int errors;
} rest_call;

/* The template of the function the route calls, or NULL (reported). */
static const Sluice__V1__TransformationTemplate *rest_template(tr_ctx *tx, const tr_route_in *in, rest_call *c)
{
    const Sluice__V1__ServiceSpec *ss = sl_upstream_service_spec(in->upstream);
    const Sluice__V1__TransformationTemplate *t = NULL;
    if (!ss || ss->plugin_type_case != SLUICE__V1__SERVICE_SPEC__PLUGIN_TYPE_REST) {
        tr_error(tx, "%s: upstream %s.%s has no REST functions (spec.static.serviceSpec.rest or "
                     "spec.dns.serviceSpec.rest or spec.etcd.serviceSpec.rest)",
                 c->path, c->up->metadata->namespace_, c->up->metadata->name);
        return NULL;
    }
    for (size_t i = 0; i < ss->rest->n_transformations; i++)
        if (strcmp(ss->rest->transformations[i]->key, c->d->function_name) == 0)
            t = ss->rest->transformations[i]->value;
    if (!t)
        tr_error(tx, "%s.functionName: upstream %s.%s has no REST function \"%s\"", c->path, c->up->metadata->namespace_,
                 c->up->metadata->name, c->d->function_name);
    return t;
}

/* The template's body: rendered by the route's Lua script when made of
 * route parameters; else not applied (a Warning). */
static void rest_body(tr_ctx *tx, const tr_route_in *in, const Sluice__V1__TransformationTemplate *t, rest_call *c)
{
    if (t->n_extractors)
        tr_error(tx, "%s.extractors: not supported by Sluice (stock Envoy has no extractors)", c->fpath);
    if (t->body_transformation_case == SLUICE__V1__TRANSFORMATION_TEMPLATE__BODY_TRANSFORMATION_MERGE_EXTRACTORS_TO_BODY)
        tr_error(tx, "%s.mergeExtractorsToBody: not supported by Sluice (stock Envoy has no body templates)", c->fpath);
    else if (t->body_transformation_case == SLUICE__V1__TRANSFORMATION_TEMPLATE__BODY_TRANSFORMATION_BODY && t->body &&
             t->body->text[0]) {
        const char *bw = tr_printf(tx, "%s.body", c->fpath), *unknown = NULL;
        if (in->gw->proxyless)
            tr_warn(tx, "%s: not applied (gRPC proxyless clients run no filters); the request body is sent as the "
                        "client sent it", bw);
        else if (!(c->lua_body = render_lua(tx, t->body->text, &c->pp, &c->lua_path_vars, &unknown, bw)) && unknown)
            tr_warn(tx, "%s: not applied: {{ %s }} is not a parameter of the route (Gloo takes it from the request's "
                        "JSON body, which stock Envoy cannot parse); the request body is sent as the client sent it",
                    bw, unknown);
        else if (!c->lua_body)
            c->errors++;
    }
}

/* A pseudo-header of the template (k: v): the path rewrite, the method,
 * or a literal host rewrite; false when k is no pseudo-header it sets. */
static bool rest_pseudo_header(tr_ctx *tx, tr_route_t *r, rest_call *c, const char *k, const char *v, const char *hw)
{
    Envoy__Config__Route__V3__RouteAction *ra = r->route;
    if (strcmp(k, ":path") == 0) {
        c->subst = render(tx, v, &c->pp, RENDER_PATH, hw);
        if (c->subst && (c->subst[0] != '/' || strchr(c->subst, '?'))) {
            tr_error(tx, "%s: \"%s\" must start with '/' and have no query string", hw, v);
            c->subst = NULL;
        }
        if (!c->subst)
            c->errors++;
    } else if (strcmp(k, ":method") == 0) {
        bool ok = literal(v) && v[0];
        for (const char *ch = v; ok && *ch; ch++)
            ok = isupper((unsigned char)*ch) || *ch == '-' || *ch == '_';
        if (!ok) {
            tr_error(tx, "%s: \"%s\" is not an HTTP method (a literal such as GET or POST)", hw, v);
            c->errors++;
        }
        c->method = v;
    } else if (strcmp(k, ":authority") == 0 || strcasecmp(k, "host") == 0) {
        if (!literal(v) || !v[0]) {
            tr_error(tx, "%s: stock Envoy can only rewrite the host to a literal", hw);
            c->errors++;
            return true;
        }
        ra->host_rewrite_specifier_case = ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__HOST_REWRITE_SPECIFIER_HOST_REWRITE_LITERAL;
        ra->host_rewrite_literal = tr_strdup(tx, v);
    } else if (k[0] == ':') {
        tr_error(tx, "%s: stock Envoy cannot set the %s pseudo-header", hw, k);
        c->errors++;
    } else {
        return false;
    }
    return true;
}

/* A header of the template (k: v) on route r: removed when empty, set by
 * the route's Lua script when it uses path captures, else added with
 * Envoy's header formatters. */
static void rest_header(tr_ctx *tx, const tr_route_in *in, tr_route_t *r, rest_call *c, const char *k, const char *v)
{
    const char *hw = tr_printf(tx, "%s.headers[%s]", c->fpath, k);
    if (rest_pseudo_header(tx, r, c, k, v, hw)) {
        return;
    } else if (tr_check_header_name(k, false)) {
        tr_error(tx, "%s: %s", hw, tr_check_header_name(k, false));
        c->errors++;
    } else if (!v[0]) {
        TR_PUSH(tx, r, request_headers_to_remove, tr_strdup(tx, k));
    } else if (!in->gw->proxyless && uses_path_vars(tx, v, &c->pp)) {
        /* Envoy's header formatters cannot reach path captures: the
         * route's Lua script sets the header */
        const char *unknown = NULL, *e = render_lua(tx, v, &c->pp, &c->lua_path_vars, &unknown, hw);
        if (!e) {
            if (unknown)
                tr_error(tx, "%s: \"%s\": {{ %s }} is not a parameter of the route (destinationSpec parameters)", hw,
                         v, unknown);
            c->errors++;
            return;
        }
        c->lua_headers = tr_printf(tx, "%s  headers:replace(%s, %s)\n", c->lua_headers, tr_lua_quote(tx, k), e);
    } else {
        const char *val = render(tx, v, &c->pp, RENDER_HEADER, hw);
        Envoy__Config__Core__V3__HeaderValueOption *o;
        if (!val) {
            c->errors++;
            return;
        }
        o = TR_NEW(tx, envoy__config__core__v3__header_value_option);
        o->header = TR_NEW(tx, envoy__config__core__v3__header_value);
        o->header->key = tr_strdup(tx, k);
        o->header->value = tr_strdup(tx, val);
        o->append_action = ENVOY__CONFIG__CORE__V3__HEADER_VALUE_OPTION__HEADER_APPEND_ACTION__OVERWRITE_IF_EXISTS_OR_ADD;
        TR_PUSH(tx, r, request_headers_to_add, o);
    }
}

/* The path: parameters make the matcher a regex whose groups feed the
 * rewrite. False when the route cannot call the function (reported). */
static bool rest_path(tr_ctx *tx, tr_route_t *r, const rest_call *c)
{
    Envoy__Config__Route__V3__RouteAction *ra = r->route;
    const params *pp = &c->pp;
    if ((c->subst || pp->path) && (ra->prefix_rewrite && ra->prefix_rewrite[0]))
        tr_error(tx, "%s: the function sets the path; options.prefixRewrite cannot be used with it", c->path);
    else if ((c->subst || pp->path) && ra->regex_rewrite)
        tr_error(tx, "%s: the function sets the path; options.regexRewrite cannot be used with it", c->path);
    else if (pp->path) {
        Envoy__Config__Route__V3__RouteMatch *rm = r->match;
        if (rm->path_specifier_case == ENVOY__CONFIG__ROUTE__V3__ROUTE_MATCH__PATH_SPECIFIER_PREFIX &&
            strncmp(pp->path, rm->prefix, strlen(rm->prefix)) == 0) {
            if (tr_check_regex(tx, tr_printf(tx, "%s.parameters.path", c->path), pp->regex, NULL)) {
                rm->path_specifier_case = ENVOY__CONFIG__ROUTE__V3__ROUTE_MATCH__PATH_SPECIFIER_SAFE_REGEX;
                rm->safe_regex = tr_regex(tx, pp->regex);
            }
        } else if (rm->path_specifier_case == ENVOY__CONFIG__ROUTE__V3__ROUTE_MATCH__PATH_SPECIFIER_PATH &&
                   pp->n_vars == 0 && strcmp(rm->path, pp->path) == 0) {
            /* the exact path is the pattern */
        } else {
            tr_error(tx, "%s.parameters: the path pattern \"%s\" must lie under the route's prefix matcher (\"%s\")",
                     c->path, pp->path,
                     rm->path_specifier_case == ENVOY__CONFIG__ROUTE__V3__ROUTE_MATCH__PATH_SPECIFIER_PREFIX
                         ? rm->prefix
                         : "not a prefix");
            return false;
        }
    }
    if (c->subst) {
        ra->regex_rewrite = TR_NEW(tx, envoy__type__matcher__v3__regex_match_and_substitute);
        ra->regex_rewrite->pattern = tr_regex(tx, pp->path ? tr_printf(tx, "^%s$", pp->regex) : "^.*$");
        ra->regex_rewrite->substitution = tr_strdup(tx, c->subst);
    }
    return true;
}

/* The method, headers using path captures and the body: Envoy's Lua
 * filter sets them on the route. The method is checked (A-Z, '-', '_'),
 * lua_body is made of quoted literals; names go into a Lua comment only
 * as safe characters: no input becomes code. */
static void rest_lua(tr_ctx *tx, const tr_route_in *in, tr_route_t *r, const rest_call *c)
{
    const Sluice__V1__Matcher *m = in->matcher;
    const char *code = "";
    if (c->method && !(m && m->n_methods == 1 && strcmp(m->methods[0], c->method) == 0))
        code = tr_printf(tx, "  headers:replace(\":method\", \"%s\")\n", c->method);
    if (c->lua_path_vars)
        code = tr_printf(tx,
                         "%s  local path = string.match(headers:get(\":path\") or \"\", \"^[^?]*\")\n"
                         "  local pv = {string.match(path, %s)}\n",
                         code, tr_lua_quote(tx, lua_path_pattern(tx, c->pp.path)));
    code = tr_printf(tx, "%s%s", code, c->lua_headers);
    if (c->lua_body)
        code = tr_printf(tx, "%s  request_handle:body(true):setBytes(%s)\n", code, c->lua_body);
    if (code[0])
        tr_lua_route(tx, r,
                     tr_printf(tx,
                               "-- Sluice: function %s of upstream %s.%s\n"
                               "function envoy_on_request(request_handle)\n"
                               "  local headers = request_handle:headers()\n"
                               "%s"
                               "end\n",
                               tr_lua_comment_safe(tx, c->d->function_name),
                               tr_lua_comment_safe(tx, c->up->metadata->namespace_),
                               tr_lua_comment_safe(tx, c->up->metadata->name), code));
}

/* gRPC proxyless clients run no filters: the route is restricted to
 * requests already using the method. False when the route's methods
 * exclude it (reported). */
static bool rest_proxyless_method(tr_ctx *tx, const tr_route_in *in, tr_route_t *r, const rest_call *c)
{
    const Sluice__V1__Matcher *m = in->matcher;
    bool listed = false;
    for (size_t i = 0; m && i < m->n_methods; i++)
        listed |= strcmp(m->methods[i], c->method) == 0;
    if (m && m->n_methods && !listed) {
        tr_error(tx, "%s: function %s is called with %s, which the route's methods do not include (stock Envoy "
                     "cannot rewrite :method)", c->path, c->d->function_name, c->method);
        return false;
    }
    if (!(m && m->n_methods == 1)) {
        add_method_matcher(tx, r, c->method);
        tr_warn(tx, "Route Warning: FunctionMethodWarning. Reason: function %s of upstream %s.%s is called with "
                    "%s; gRPC proxyless clients run no filter that could rewrite :method, so %s matches only %s "
                    "requests",
                c->d->function_name, c->up->metadata->namespace_, c->up->metadata->name, c->method, in->route_path,
                c->method);
    }
    return true;
}

static void rest(tr_ctx *tx, const tr_route_in *in, tr_route_t *r)
{
    const Sluice__V1__TransformationTemplate *t;
    rest_call c = {0};
    c.d = in->dest_spec->rest;
    c.up = in->upstream;
    c.path = tr_printf(tx, "%s.routeAction.single.destinationSpec.rest", in->route_path);
    c.lua_headers = "";
    if (!(t = rest_template(tx, in, &c)))
        return;
    c.fpath = tr_printf(tx, "%s: Upstream %s.%s serviceSpec.rest.transformations[%s]", c.path,
                        c.up->metadata->namespace_, c.up->metadata->name, c.d->function_name);
    if (c.d->response_transformation)
        tr_error(tx, "%s.responseTransformation: not supported by Sluice (stock Envoy has no response templates)",
                 c.path);
    if (!parse_params(tx, &c.pp, c.d->parameters, tr_printf(tx, "%s.parameters", c.path)))
        return;
    rest_body(tx, in, t, &c);
    for (size_t i = 0; i < t->n_headers; i++)
        rest_header(tx, in, r, &c, t->headers[i]->key, t->headers[i]->value ? t->headers[i]->value->text : "");
    if (c.errors || !rest_path(tx, r, &c))
        return;
    if (!in->gw->proxyless)
        rest_lua(tx, in, r, &c);
    else if (c.method && !rest_proxyless_method(tx, in, r, &c))
        return;
    if (in->gw->proxyless)
        tr_warn(tx, "%s: gRPC proxyless clients do not apply REST functions", c.path);
}

/* ---- gRPC --------------------------------------------------------------- */

static Google__Protobuf__MethodDescriptorProto *find_method(Google__Protobuf__FileDescriptorSet *set, const char *pkg,
                                                            const char *svc, const char *fn)
{
    for (size_t i = 0; i < set->n_file; i++) {
        Google__Protobuf__FileDescriptorProto *f = set->file[i];
        if (strcmp(f->package ? f->package : "", pkg) != 0)
            continue;
        for (size_t j = 0; j < f->n_service; j++) {
            if (strcmp(f->service[j]->name ? f->service[j]->name : "", svc) != 0)
                continue;
            for (size_t k = 0; k < f->service[j]->n_method; k++)
                if (strcmp(f->service[j]->method[k]->name ? f->service[j]->method[k]->name : "", fn) == 0)
                    return f->service[j]->method[k];
        }
    }
    return NULL;
}

static void set_pattern(tr_ctx *tx, Google__Api__HttpRule *rule, const char *verb, const char *p)
{
    static const struct {
        const char *verb;
        Google__Api__HttpRule__PatternCase pattern;
        size_t field;
    } verbs[] = {
        {"GET", GOOGLE__API__HTTP_RULE__PATTERN_GET, offsetof(Google__Api__HttpRule, get)},
        {"PUT", GOOGLE__API__HTTP_RULE__PATTERN_PUT, offsetof(Google__Api__HttpRule, put)},
        {"DELETE", GOOGLE__API__HTTP_RULE__PATTERN_DELETE, offsetof(Google__Api__HttpRule, delete_)},
        {"PATCH", GOOGLE__API__HTTP_RULE__PATTERN_PATCH, offsetof(Google__Api__HttpRule, patch)},
        {"POST", GOOGLE__API__HTTP_RULE__PATTERN_POST, offsetof(Google__Api__HttpRule, post)},
    };
    char *s = tr_strdup(tx, p);
    size_t v = 0;
    while (v < sizeof verbs / sizeof verbs[0] && strcmp(verb, verbs[v].verb) != 0)
        v++;
    if (v < sizeof verbs / sizeof verbs[0]) {
        rule->pattern_case = verbs[v].pattern;
        *(char **)((char *)rule + verbs[v].field) = s;
    } else {
        rule->pattern_case = GOOGLE__API__HTTP_RULE__PATTERN_CUSTOM;
        rule->custom = TR_NEW(tx, google__api__custom_http_pattern);
        rule->custom->kind = tr_strdup(tx, verb);
        rule->custom->path = s;
    }
    rule->body = tr_strdup(tx, strcmp(verb, "GET") == 0 ? "" : "*");
}

/* Sets the method's google.api.http option (an extension, which protobuf-c
 * keeps as an unknown field) to rule, dropping any binding it had. */
static void set_http_option(tr_ctx *tx, Google__Protobuf__MethodDescriptorProto *md, const Google__Api__HttpRule *rule)
{
    Google__Protobuf__MethodOptions *o = md->options;
    ProtobufCMessageUnknownField *uf;
    size_t n = 0, len = protobuf_c_message_get_packed_size(&rule->base), pre = 0;
    uint8_t *data = tr_alloc(tx, len + 10);
    /* protobuf-c keeps the bytes after the tag: the length, then the value */
    for (size_t v = len; ; v >>= 7) {
        data[pre++] = (uint8_t)((v & 0x7f) | (v >= 0x80 ? 0x80 : 0));
        if (v < 0x80)
            break;
    }
    protobuf_c_message_pack(&rule->base, data + pre);
    len += pre;
    if (!o)
        o = md->options = TR_NEW(tx, google__protobuf__method_options);
    uf = tr_alloc(tx, (o->base.n_unknown_fields + 1) * sizeof *uf);
    for (unsigned i = 0; i < o->base.n_unknown_fields; i++)
        if (o->base.unknown_fields[i].tag != HTTP_RULE_EXTENSION)
            uf[n++] = o->base.unknown_fields[i];
    uf[n].tag = HTTP_RULE_EXTENSION;
    uf[n].wire_type = PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED;
    uf[n].len = len;
    uf[n].data = data;
    o->base.unknown_fields = uf;
    o->base.n_unknown_fields = (unsigned)n + 1;
}

static void grpc(tr_ctx *tx, const tr_route_in *in, tr_route_t *r)
{
    const Sluice__V1__GrpcDestinationSpec *d = in->dest_spec->grpc;
    const Sluice__V1__ServiceSpec *ss = sl_upstream_service_spec(in->upstream);
    const Sluice__V1__Upstream *up = in->upstream;
    const Sluice__V1__Matcher *m = in->matcher;
    const char *path = tr_printf(tx, "%s.routeAction.single.destinationSpec.grpc", in->route_path);
    const char *svc, *verb = "POST", *http_path = NULL, *more = NULL;
    Google__Protobuf__FileDescriptorSet *set;
    Google__Protobuf__MethodDescriptorProto *md;
    Google__Api__HttpRule *rule;
    Envoy__Extensions__Filters__Http__GrpcJsonTranscoder__V3__GrpcJsonTranscoder *tc;
    Envoy__Config__Route__V3__FilterConfig *fc;
    params pp;

    if (!ss || ss->plugin_type_case != SLUICE__V1__SERVICE_SPEC__PLUGIN_TYPE_GRPC) {
        tr_error(tx, "%s: upstream %s.%s has no gRPC functions (serviceSpec.grpc)", path, up->metadata->namespace_,
                 up->metadata->name);
        return;
    }
    if (!d->service[0] || !d->function[0]) {
        tr_error(tx, "%s: service and function are required", path);
        return;
    }
    svc = d->package[0] ? tr_printf(tx, "%s.%s", d->package, d->service) : d->service;
    if (ss->grpc->n_grpc_services) {
        const Sluice__V1__GrpcServiceSpec__GrpcService *gs = NULL;
        bool fn_ok = false;
        for (size_t i = 0; i < ss->grpc->n_grpc_services && !gs; i++)
            if (strcmp(ss->grpc->grpc_services[i]->package_name, d->package) == 0 &&
                strcmp(ss->grpc->grpc_services[i]->service_name, d->service) == 0)
                gs = ss->grpc->grpc_services[i];
        for (size_t i = 0; gs && i < gs->n_function_names; i++)
            fn_ok |= strcmp(gs->function_names[i], d->function) == 0;
        if (!gs || (gs->n_function_names && !fn_ok)) {
            tr_error(tx, "%s: upstream %s.%s has no gRPC function %s/%s (serviceSpec.grpc.grpcServices)", path,
                     up->metadata->namespace_, up->metadata->name, svc, d->function);
            return;
        }
    }
    if (!ss->grpc->descriptors.len) {
        tr_error(tx, "%s: upstream %s.%s needs serviceSpec.grpc.descriptors (a FileDescriptorSet) for HTTP/JSON "
                     "clients to call its functions", path, up->metadata->namespace_, up->metadata->name);
        return;
    }
    set = (Google__Protobuf__FileDescriptorSet *)tr_unpack(tx, &google__protobuf__file_descriptor_set__descriptor,
                                                           ss->grpc->descriptors.data, ss->grpc->descriptors.len);
    if (!set) {
        tr_error(tx, "Upstream %s.%s serviceSpec.grpc.descriptors: not a serialized google.protobuf.FileDescriptorSet",
                 up->metadata->namespace_, up->metadata->name);
        return;
    }
    md = find_method(set, d->package, d->service, d->function);
    if (!md) {
        tr_error(tx, "%s: the descriptors of upstream %s.%s have no method %s/%s", path, up->metadata->namespace_,
                 up->metadata->name, svc, d->function);
        return;
    }
    if (!parse_params(tx, &pp, d->parameters, tr_printf(tx, "%s.parameters", path)))
        return;
    if (pp.n_hdr) {
        tr_error(tx, "%s.parameters.headers: the transcoder takes request fields from the path, query and body only",
                 path);
        return;
    }
    if (m && m->n_methods > 1) {
        tr_error(tx, "%s: a route calling a gRPC function matches one method at most (methods)", path);
        return;
    }
    if (m && m->n_methods == 1)
        verb = m->methods[0];
    if (pp.path) {
        if (r->match->path_specifier_case == ENVOY__CONFIG__ROUTE__V3__ROUTE_MATCH__PATH_SPECIFIER_PREFIX &&
            strncmp(pp.path, r->match->prefix, strlen(r->match->prefix)) != 0) {
            tr_error(tx, "%s.parameters: the path pattern \"%s\" must lie under the route's prefix matcher (\"%s\")",
                     path, pp.path, r->match->prefix);
            return;
        }
        http_path = pp.path; /* {field} bindings are the transcoder's own syntax */
    }
    else if (r->match->path_specifier_case == ENVOY__CONFIG__ROUTE__V3__ROUTE_MATCH__PATH_SPECIFIER_PATH)
        http_path = r->match->path;
    else if (r->match->path_specifier_case == ENVOY__CONFIG__ROUTE__V3__ROUTE_MATCH__PATH_SPECIFIER_PREFIX) {
        size_t n = strlen(r->match->prefix);
        char *p = tr_strdup(tx, r->match->prefix);
        if (n > 1 && p[n - 1] == '/')
            p[n - 1] = '\0';
        for (const char *c = p; *c; c++)
            if (*c == '{' || *c == '}' || *c == '*' || *c == ':' || (unsigned char)*c <= 32) {
                tr_error(tx, "%s: the prefix \"%s\" cannot be an HTTP binding; give parameters.path", path, p);
                return;
            }
        http_path = strcmp(p, "/") == 0 ? "/**" : p;
        more = strcmp(p, "/") == 0 ? NULL : tr_printf(tx, "%s/**", p);
    } else {
        tr_error(tx, "%s: a regex matcher needs parameters.path (the HTTP binding of the function)", path);
        return;
    }
    if (in->gw->proxyless) {
        /* gRPC proxyless clients run no filters, and grpc-go NACKs a route
         * naming one it does not implement: the method is checked above,
         * the client calls it directly. */
        tr_warn(tx, "%s: gRPC proxyless clients call the gRPC method directly; the HTTP binding does not apply", path);
        return;
    }
    rule = TR_NEW(tx, google__api__http_rule);
    set_pattern(tx, rule, verb, http_path);
    if (more) {
        Google__Api__HttpRule *b = TR_NEW(tx, google__api__http_rule);
        set_pattern(tx, b, verb, more);
        TR_PUSH(tx, rule, additional_bindings, b);
    }
    set_http_option(tx, md, rule);

    tc = TR_NEW(tx, envoy__extensions__filters__http__grpc_json_transcoder__v3__grpc_json_transcoder);
    tc->descriptor_set_case =
        ENVOY__EXTENSIONS__FILTERS__HTTP__GRPC_JSON_TRANSCODER__V3__GRPC_JSON_TRANSCODER__DESCRIPTOR_SET_PROTO_DESCRIPTOR_BIN;
    tc->proto_descriptor_bin.len = protobuf_c_message_get_packed_size(&set->base);
    tc->proto_descriptor_bin.data = tr_alloc(tx, tc->proto_descriptor_bin.len + 1);
    protobuf_c_message_pack(&set->base, tc->proto_descriptor_bin.data);
    TR_PUSH(tx, tc, services, tr_strdup(tx, svc));
    tc->match_incoming_request_route = 1;
    fc = TR_NEW(tx, envoy__config__route__v3__filter_config);
    fc->config = tr_any(tx, &tc->base);
    tr_route_filter_config(tx, r, TRANSCODER, &fc->base);
    tr_use(tx, &sl_tr_plugin_transcoder);
}

static void route(tr_ctx *tx, const tr_route_in *in, tr_route_t *r)
{
    if (!in->dest_spec || !in->upstream || r->action_case != ENVOY__CONFIG__ROUTE__V3__ROUTE__ACTION_ROUTE)
        return;
    if (in->dest_spec->destination_type_case == SLUICE__V1__DESTINATION_SPEC__DESTINATION_TYPE_REST)
        rest(tx, in, r);
    else if (in->dest_spec->destination_type_case == SLUICE__V1__DESTINATION_SPEC__DESTINATION_TYPE_GRPC)
        grpc(tx, in, r);
}

const sl_tr_plugin sl_tr_plugin_functions = {
    .name = "functions",
    .fields = fields,
    .route = route,
};
