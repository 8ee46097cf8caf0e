/* lambda.c - AWS Lambda ListFunctions answers (JSON, jansson) into function versions; untrusted input. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "sluice/lambda.h"
#include "sluice/vec.h"

void sl_lambda_list_deinit(sl_lambda_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->fns[i].name);
        free(l->fns[i].version);
    }
    free(l->fns);
    for (size_t i = 0; i < l->n_warnings; i++)
        free(l->warnings[i]);
    free(l->warnings);
    memset(l, 0, sizeof *l);
}

/* AWS's FunctionName of a listed function: [A-Za-z0-9_-], 1 to 64. */
static bool valid_name(const char *s)
{
    size_t n = strlen(s);
    if (!n || n > 64)
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '_' ||
              *s == '-'))
            return false;
    return true;
}

/* "$LATEST" or a published version number. */
static bool valid_version(const char *s)
{
    size_t n = strlen(s);
    if (!strcmp(s, "$LATEST"))
        return true;
    if (!n || n > 20)
        return false;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return false;
    return true;
}

static void warn(sl_lambda_list *l, size_t i, const char *field, const char *what)
{
    char buf[160];
    if (l->n_warnings >= SL_LAMBDA_MAX_WARNINGS ||
        SL_VEC_RESERVE(l->warnings, l->cap_warnings, l->n_warnings + 1) != SL_OK)
        return;
    snprintf(buf, sizeof buf, "Functions[%zu].%s: %s; the function is skipped", i, field, what);
    if ((l->warnings[l->n_warnings] = strdup(buf)))
        l->n_warnings++;
}

/* A marker is handed back in a query string: printable ASCII, bounded. */
static bool valid_marker(const char *s)
{
    size_t n = strlen(s);
    if (!n || n > SL_LAMBDA_MAX_MARKER)
        return false;
    for (; *s; s++)
        if (*s <= ' ' || *s > '~')
            return false;
    return true;
}

sl_status sl_lambda_parse_page(sl_lambda_list *l, char **next_marker, const char *body, size_t len, size_t max)
{
    json_error_t jerr;
    sl_status rc = SL_OK;
    *next_marker = NULL;
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return sl_error_set(SL_ERR_INVALID, "ListFunctions answer: not JSON (line %d column %d: %s)", jerr.line,
                            jerr.column, jerr.text);
    json_t *fns = json_is_object(root) ? json_object_get(root, "Functions") : NULL;
    if (!json_is_array(fns)) {
        rc = sl_error_set(SL_ERR_INVALID, "ListFunctions answer: %s", json_is_object(root) ? "Functions is not a list"
                                                                                          : "not a JSON object");
        goto out;
    }
    size_t i;
    json_t *f;
    json_array_foreach(fns, i, f)
    {
        json_t *name = json_is_object(f) ? json_object_get(f, "FunctionName") : NULL;
        json_t *version = json_is_object(f) ? json_object_get(f, "Version") : NULL;
        if (!json_is_object(f)) {
            warn(l, i, "", "not an object");
            continue;
        }
        if (!json_is_string(name) || !valid_name(json_string_value(name))) {
            warn(l, i, "FunctionName", "not a Lambda function name (1 to 64 of A-Z a-z 0-9 _ -)");
            continue;
        }
        /* a listing without FunctionVersion=ALL has no Version: $LATEST */
        if (version && !json_is_null(version) &&
            (!json_is_string(version) || !valid_version(json_string_value(version)))) {
            warn(l, i, "Version", "neither $LATEST nor a version number");
            continue;
        }
        if (l->n >= max) {
            rc = sl_error_set(SL_ERR_INVALID, "more than %zu function versions: too many for one Upstream", max);
            goto out;
        }
        if (SL_VEC_RESERVE(l->fns, l->cap, l->n + 1) != SL_OK) {
            rc = sl_error_set(SL_ERR_NOMEM, "out of memory");
            goto out;
        }
        sl_lambda_fn *dst = &l->fns[l->n];
        dst->name = strdup(json_string_value(name));
        dst->version = strdup(json_is_string(version) ? json_string_value(version) : "$LATEST");
        l->n++;
        if (!dst->name || !dst->version) {
            rc = sl_error_set(SL_ERR_NOMEM, "out of memory");
            goto out;
        }
    }
    json_t *m = json_object_get(root, "NextMarker");
    if (m && !json_is_null(m)) {
        if (!json_is_string(m) || !valid_marker(json_string_value(m))) {
            rc = sl_error_set(SL_ERR_INVALID, "ListFunctions answer: NextMarker is not a marker (printable, at most "
                                              "%d characters)", SL_LAMBDA_MAX_MARKER);
            goto out;
        }
        if (!(*next_marker = strdup(json_string_value(m))))
            rc = sl_error_set(SL_ERR_NOMEM, "out of memory");
    }
out:
    json_decref(root);
    return rc;
}

/* The text of the first <tag>...</tag> in body (not NUL-terminated), cut to cap-1 bytes; "" when none. */
static void xml_text(char *out, size_t cap, const char *body, size_t len, const char *tag)
{
    char open[32], close[32];
    size_t ol = (size_t)snprintf(open, sizeof open, "<%s>", tag), cl = (size_t)snprintf(close, sizeof close, "</%s>", tag);
    out[0] = 0;
    for (size_t i = 0; i + ol <= len; i++) {
        if (memcmp(body + i, open, ol) != 0)
            continue;
        size_t s = i + ol;
        for (size_t e = s; e + cl <= len; e++)
            if (!memcmp(body + e, close, cl)) {
                snprintf(out, cap, "%.*s", (int)(e - s < cap ? e - s : cap - 1), body + s);
                return;
            }
        return;
    }
}

void sl_lambda_error(char *out, size_t cap, const char *body, size_t len)
{
    json_error_t jerr;
    out[0] = 0;
    if (!body || !len || !cap)
        return;
    json_t *root = json_loadb(body, len, 0, &jerr);
    const char *keys[] = {"message", "Message", "errorMessage"}, *type = NULL, *msg = NULL;
    if (json_is_object(root)) {
        for (size_t k = 0; k < sizeof keys / sizeof keys[0] && !msg; k++)
            msg = json_string_value(json_object_get(root, keys[k]));
        type = json_string_value(json_object_get(root, "__type"));
        if (!type)
            type = json_string_value(json_object_get(root, "Type"));
    }
    if (msg || type)
        snprintf(out, cap, "%.100s%s%.300s", type ? type : "", type && msg ? ": " : "", msg ? msg : "");
    else if (!root) {
        /* the query protocol's XML: <Error><Code>..</Code><Message>..</Message> */
        char code[101], text[301];
        xml_text(code, sizeof code, body, len, "Code");
        xml_text(text, sizeof text, body, len, "Message");
        if (code[0] || text[0])
            snprintf(out, cap, "%s%s%s", code, code[0] && text[0] ? ": " : "", text);
    }
    /* a reason is one line of printable ASCII (a cut never splits a UTF-8 sequence) */
    for (char *p = out; *p; p++)
        if ((unsigned char)*p < ' ' || (unsigned char)*p >= 0x7f)
            *p = (unsigned char)*p < ' ' ? ' ' : '?';
    json_decref(root);
}
