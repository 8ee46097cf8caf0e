/* svcconf.c - see svcconf.h. */
#include "svcconf.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void svcconf_free(int argc, char **argv)
{
    if (!argv)
        return;
    for (int i = 0; i < argc; i++)
        free(argv[i]);
    free(argv);
}

const char *svcconf_flag(int argc, char **argv, int *i, const char *name, int *missing)
{
    const char *a = argv[*i];
    size_t n = strlen(name);
    *missing = 0;
    if (strncmp(a, "--", 2) != 0 || strncmp(a + 2, name, n) != 0)
        return NULL;
    if (a[2 + n] == '=') {
        return a + 3 + n;
    }
    if (a[2 + n] != 0)
        return NULL;
    if (*i + 1 >= argc) {
        *missing = 1;
        return NULL;
    }
    *i += 1;
    return argv[*i];
}

static sl_status push(char ***v, int *n, int *cap, const char *s, size_t len)
{
    if (*n + 2 > *cap) {
        int nc = *cap ? *cap * 2 : 16;
        char **nv = realloc(*v, (size_t)nc * sizeof *nv);
        if (!nv)
            return SL_ERR_NOMEM;
        *v = nv;
        *cap = nc;
    }
    char *c = strndup(s, len);
    if (!c)
        return SL_ERR_NOMEM;
    (*v)[(*n)++] = c;
    (*v)[*n] = NULL;
    return SL_OK;
}

static sl_status read_file(char ***v, int *n, int *cap, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return sl_error_set(SL_ERR_IO, "config file %s: %s", path, strerror(errno));
    char line[4096];
    int lineno = 0;
    sl_status rc = SL_OK;
    while (rc == SL_OK && fgets(line, sizeof line, f)) {
        lineno++;
        char *p = line, *hash = strchr(p, '#');
        if (hash)
            *hash = 0;
        while (isspace((unsigned char)*p))
            p++;
        size_t l = strlen(p);
        while (l && isspace((unsigned char)p[l - 1]))
            p[--l] = 0;
        if (!*p)
            continue;
        size_t k = strcspn(p, " \t=");
        if (k == 0 || strncmp(p, "--", 2) == 0) {
            rc = sl_error_set(SL_ERR_PARSE, "%s:%d: expected 'flag = value'", path, lineno);
            break;
        }
        char flag[256];
        if (k + 3 > sizeof flag) {
            rc = sl_error_set(SL_ERR_PARSE, "%s:%d: flag name too long", path, lineno);
            break;
        }
        snprintf(flag, sizeof flag, "--%.*s", (int)k, p);
        if (!strcmp(flag, "--config")) {
            rc = sl_error_set(SL_ERR_PARSE, "%s:%d: a config file cannot name another", path, lineno);
            break;
        }
        char *val = p + k;
        while (isspace((unsigned char)*val))
            val++;
        if (*val == '=') {
            val++;
            while (isspace((unsigned char)*val))
                val++;
        }
        size_t vl = strlen(val);
        if (vl >= 2 && (val[0] == '"' || val[0] == '\'') && val[vl - 1] == val[0]) {
            val++;
            vl -= 2;
        }
        if ((rc = push(v, n, cap, flag, strlen(flag))) == SL_OK && (*val || p[k] == '='))
            rc = push(v, n, cap, val, vl);
    }
    fclose(f);
    return rc;
}

sl_status svcconf_load(int *out_argc, char ***out_argv, int argc, char **argv, const char *env)
{
    const char *file = env ? getenv(env) : NULL;
    char **v = NULL;
    int n = 0, cap = 0;
    sl_status rc;
    if (file && !*file)
        file = NULL;
    for (int i = 1; i < argc; i++) {
        int missing;
        if (!strcmp(argv[i], "--"))
            break;
        const char *f = svcconf_flag(argc, argv, &i, "config", &missing);
        if (missing)
            return sl_error_set(SL_ERR_INVALID, "--config needs a file");
        if (f)
            file = f;
    }
    if ((rc = push(&v, &n, &cap, argv[0], strlen(argv[0]))) != SL_OK)
        goto err;
    if (file && (rc = read_file(&v, &n, &cap, file)) != SL_OK)
        goto err;
    for (int i = 1; i < argc; i++) {
        int j = i, missing;
        if (strcmp(argv[i], "--") && svcconf_flag(argc, argv, &j, "config", &missing)) {
            i = j;
            continue;
        }
        if ((rc = push(&v, &n, &cap, argv[i], strlen(argv[i]))) != SL_OK)
            goto err;
    }
    *out_argc = n;
    *out_argv = v;
    return SL_OK;
err:
    svcconf_free(n, v);
    return rc;
}
