/* template.c - Gloo's request templates for a function, and the digest of a document's functions. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/openapi.h"

typedef struct sbuf {
    char *s;
    size_t n, cap;
    bool bad;
} sbuf;

static void sb_add(sbuf *b, const char *t, size_t n)
{
    if (b->bad)
        return;
    if (b->n + n + 1 > b->cap) {
        size_t nc = (b->cap ? b->cap * 2 : 128) + n;
        char *ns = realloc(b->s, nc);
        if (!ns) {
            b->bad = true;
            return;
        }
        b->s = ns;
        b->cap = nc;
    }
    memcpy(b->s + b->n, t, n);
    b->n += n;
    b->s[b->n] = 0;
}

static void sb_str(sbuf *b, const char *t)
{
    sb_add(b, t, strlen(t));
}

static char *sb_take(sbuf *b)
{
    if (b->bad || !b->s) {
        free(b->s);
        return NULL;
    }
    return b->s;
}

static void sb_default(sbuf *b, const char *name)
{
    sb_str(b, "{{ default(");
    sb_str(b, name);
    sb_str(b, ", \"\") }}");
}

char *sl_openapi_path_template(const sl_openapi_function *f)
{
    sbuf b = {0};
    bool first = true;
    for (const char *p = f->path; *p;) {
        const char *end = *p == '{' ? strchr(p, '}') : NULL;
        if (end) {
            char name[256];
            snprintf(name, sizeof name, "%.*s", (int)(end - p - 1), p + 1);
            sb_default(&b, name);
            p = end + 1;
        } else {
            sb_add(&b, p, 1);
            p++;
        }
    }
    for (size_t i = 0; i < f->n_params; i++) {
        if (f->params[i].in != SL_OPENAPI_IN_QUERY)
            continue;
        sb_str(&b, first ? "?" : "&");
        sb_str(&b, f->params[i].name);
        sb_str(&b, "=");
        sb_default(&b, f->params[i].name);
        first = false;
    }
    if (!b.s)
        sb_str(&b, "");
    return sb_take(&b);
}

static int param_cmp(const void *a, const void *b)
{
    return strcmp((*(const sl_openapi_param *const *)a)->name, (*(const sl_openapi_param *const *)b)->name);
}

char *sl_openapi_body_template(const sl_openapi_function *f)
{
    sbuf b = {0};
    const sl_openapi_param **v;
    size_t n = 0;
    if (!f->has_body || !f->body_object)
        return NULL;
    if (!(v = calloc(f->n_params + 1, sizeof *v)))
        return NULL;
    for (size_t i = 0; i < f->n_params; i++)
        if (f->params[i].in == SL_OPENAPI_IN_BODY)
            v[n++] = &f->params[i];
    qsort(v, n, sizeof *v, param_cmp); /* Gloo sorts the fields */
    sb_str(&b, "{");
    for (size_t i = 0; i < n; i++) {
        bool str = !strcmp(v[i]->type, "string");
        sb_str(&b, i ? ", \"" : "\"");
        sb_str(&b, v[i]->name);
        sb_str(&b, str ? "\": \"" : "\": ");
        sb_default(&b, v[i]->name);
        if (str)
            sb_str(&b, "\"");
    }
    sb_str(&b, "}");
    free(v);
    return sb_take(&b);
}

static void fnv(uint64_t *h, const char *s)
{
    for (; *s; s++) {
        *h ^= (unsigned char)*s;
        *h *= 1099511628211ULL;
    }
    *h ^= 0xff; /* separator */
    *h *= 1099511628211ULL;
}

void sl_openapi_digest(char out[17], const sl_openapi_doc *d)
{
    uint64_t h = 14695981039346656037ULL;
    for (size_t i = 0; i < d->n_functions; i++) {
        const sl_openapi_function *f = &d->functions[i];
        fnv(&h, f->name);
        fnv(&h, f->method);
        fnv(&h, f->path);
        fnv(&h, f->has_body ? (f->body_object ? "o" : "b") : "-");
        for (size_t j = 0; j < f->n_params; j++) {
            char in[2] = {(char)('0' + f->params[j].in), 0};
            fnv(&h, in);
            fnv(&h, f->params[j].name);
            fnv(&h, f->params[j].type);
            fnv(&h, f->params[j].required ? "r" : "o");
        }
    }
    snprintf(out, 17, "%016llx", (unsigned long long)h);
}
