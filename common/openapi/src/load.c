/* load.c - JSON (jansson) and YAML (libyaml) text to one bounded json_t tree. */
#include "openapi_int.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

/* Depth of a jansson tree, giving up past max (so the walk is bounded). */
static int tree_depth(const json_t *v, int max)
{
    int d = 0, sub;
    if (max < 0)
        return 1;
    if (json_is_object(v)) {
        const char *k;
        json_t *c;
        json_object_foreach((json_t *)v, k, c) {
            if ((sub = tree_depth(c, max - 1)) > d)
                d = sub;
            if (d > max)
                break;
        }
        return d + 1;
    }
    if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v) && d <= max; i++)
            if ((sub = tree_depth(json_array_get(v, i), max - 1)) > d)
                d = sub;
        return d + 1;
    }
    return 0;
}

static sl_status load_json(json_t **out, const char *data, size_t len, int max_depth)
{
    json_error_t err;
    json_t *root = json_loadb(data, len, JSON_DECODE_ANY, &err);
    if (!root)
        return sl_error_set(SL_ERR_PARSE, "JSON:%d:%d: %s", err.line, err.column, err.text);
    if (tree_depth(root, max_depth) > max_depth) {
        json_decref(root);
        return sl_error_set(SL_ERR_PARSE, "document nested deeper than %d levels", max_depth);
    }
    *out = root;
    return SL_OK;
}

/* A plain YAML scalar as YAML 1.2's core schema reads it. */
static json_t *yaml_scalar(const yaml_event_t *ev)
{
    const char *s = (const char *)ev->data.scalar.value;
    size_t n = ev->data.scalar.length;
    if (ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE || (ev->data.scalar.tag &&
                                                             !strcmp((const char *)ev->data.scalar.tag, "!!str")))
        return json_stringn(s, n);
    if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE"))
        return json_true();
    if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE"))
        return json_false();
    if (!n || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") || !strcmp(s, "NULL"))
        return json_null();
    if (strlen(s) == n && n < 64) {
        char *end;
        errno = 0;
        long long ll = strtoll(s, &end, 10);
        if (!*end && !errno && (s[0] == '-' || (s[0] >= '0' && s[0] <= '9')))
            return json_integer(ll);
        errno = 0;
        double d = strtod(s, &end);
        if (!*end && !errno && isfinite(d) && ((s[0] >= '0' && s[0] <= '9') || s[0] == '-' || s[0] == '.'))
            return json_real(d);
    }
    return json_stringn(s, n);
}

typedef struct ystack {
    json_t *node[SL_OPENAPI_DEPTH_HARD + 1];
    char *key[SL_OPENAPI_DEPTH_HARD + 1]; /* pending mapping key, per level */
    int n;
} ystack;

/* Adds v to the container on top (or makes it the root). Steals v. */
static sl_status ypush_value(ystack *st, json_t **root, json_t *v, const yaml_event_t *ev)
{
    if (!v)
        return sl_error_set(SL_ERR_NOMEM, "out of memory");
    if (st->n == 0) {
        if (*root) {
            json_decref(v);
            return SL_OK;
        }
        *root = v;
        return SL_OK;
    }
    json_t *top = st->node[st->n - 1];
    if (json_is_array(top))
        return json_array_append_new(top, v) ? sl_error_set(SL_ERR_NOMEM, "out of memory") : SL_OK;
    char **key = &st->key[st->n - 1];
    if (!*key) {
        if (!json_is_string(v)) {
            json_decref(v);
            return sl_error_set(SL_ERR_PARSE, "YAML:%zu:%zu: mapping keys must be strings",
                                ev->start_mark.line + 1, ev->start_mark.column + 1);
        }
        *key = strdup(json_string_value(v));
        json_decref(v);
        return *key ? SL_OK : sl_error_set(SL_ERR_NOMEM, "out of memory");
    }
    int rc = json_object_set_new(top, *key, v);
    free(*key);
    *key = NULL;
    return rc ? sl_error_set(SL_ERR_NOMEM, "out of memory") : SL_OK;
}

static sl_status yaml_event_apply(ystack *st, json_t **root, yaml_event_t *ev, int max_depth, bool *done)
{
    json_t *c;
    sl_status rc;
    switch (ev->type) {
    case YAML_ALIAS_EVENT:
        return sl_error_set(SL_ERR_PARSE, "YAML:%zu:%zu: aliases (*%s) are not supported",
                            ev->start_mark.line + 1, ev->start_mark.column + 1, (const char *)ev->data.alias.anchor);
    case YAML_SCALAR_EVENT:
        return ypush_value(st, root, yaml_scalar(ev), ev);
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT:
        if (st->n >= max_depth)
            return sl_error_set(SL_ERR_PARSE, "YAML:%zu:%zu: document nested deeper than %d levels",
                                ev->start_mark.line + 1, ev->start_mark.column + 1, max_depth);
        c = ev->type == YAML_SEQUENCE_START_EVENT ? json_array() : json_object();
        if (!c)
            return sl_error_set(SL_ERR_NOMEM, "out of memory");
        json_incref(c);
        rc = ypush_value(st, root, c, ev);
        if (rc != SL_OK) {
            json_decref(c);
            return rc;
        }
        st->node[st->n] = c;
        st->key[st->n] = NULL;
        st->n++;
        return SL_OK;
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT:
        st->n--;
        json_decref(st->node[st->n]);
        free(st->key[st->n]);
        st->key[st->n] = NULL;
        return SL_OK;
    case YAML_DOCUMENT_END_EVENT:
    case YAML_STREAM_END_EVENT:
        *done = true;
        return SL_OK;
    default:
        return SL_OK;
    }
}

static sl_status load_yaml(json_t **out, const char *data, size_t len, int max_depth)
{
    yaml_parser_t p;
    yaml_event_t ev;
    ystack st = {.n = 0};
    json_t *root = NULL;
    sl_status rc = SL_OK;
    bool done = false;

    if (!yaml_parser_initialize(&p))
        return sl_error_set(SL_ERR_NOMEM, "out of memory");
    yaml_parser_set_input_string(&p, (const unsigned char *)data, len);
    while (!done && rc == SL_OK) {
        if (!yaml_parser_parse(&p, &ev)) {
            rc = sl_error_set(SL_ERR_PARSE, "YAML:%zu:%zu: %s", p.problem_mark.line + 1,
                              p.problem_mark.column + 1, p.problem ? p.problem : "syntax error");
            break;
        }
        rc = yaml_event_apply(&st, &root, &ev, max_depth, &done);
        yaml_event_delete(&ev);
    }
    while (st.n > 0) {
        st.n--;
        json_decref(st.node[st.n]);
        free(st.key[st.n]);
    }
    yaml_parser_delete(&p);
    if (rc == SL_OK && !root)
        rc = sl_error_set(SL_ERR_PARSE, "empty document");
    if (rc != SL_OK) {
        json_decref(root);
        return rc;
    }
    *out = root;
    return SL_OK;
}

sl_status oa_load(json_t **out, const char *data, size_t len, int max_depth)
{
    size_t i = 0;
    *out = NULL;
    if (max_depth > SL_OPENAPI_DEPTH_HARD)
        max_depth = SL_OPENAPI_DEPTH_HARD;
    while (i < len && (data[i] == ' ' || data[i] == '\t' || data[i] == '\r' || data[i] == '\n'))
        i++;
    if (i == len)
        return sl_error_set(SL_ERR_PARSE, "empty document");
    if (data[i] == '{')
        return load_json(out, data, len, max_depth);
    return load_yaml(out, data, len, max_depth);
}
