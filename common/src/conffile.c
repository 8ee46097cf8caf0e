/* conffile.c - see sluice/conffile.h. */
#include "sluice/conffile.h"

#include <ctype.h>
#include <stdbool.h>
#include <errno.h>
#include <sys/types.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sl_conffile_deinit(sl_conffile *c)
{
    for (int i = 0; i < c->n_own_; i++)
        free(c->own_[i]);
    free(c->own_);
    free(c->argv);
    for (size_t i = 0; i < c->n_settings; i++) {
        free(c->settings[i].name);
        free(c->settings[i].value);
    }
    free(c->settings);
    memset(c, 0, sizeof(*c));
}

const char *sl_conffile_flag(int argc, char **argv, int *i, const char *name, int *missing)
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

static sl_status push(sl_conffile *c, const char *s, size_t len)
{
    if (c->argc + 2 > c->cap_) {
        int nc = c->cap_ ? c->cap_ * 2 : 16;
        char **nv = realloc(c->argv, (size_t)nc * sizeof *nv);
        if (!nv)
            return SL_ERR_NOMEM;
        c->argv = nv;
        char **no = realloc(c->own_, (size_t)nc * sizeof *no);
        if (!no)
            return SL_ERR_NOMEM;
        c->own_ = no;
        c->cap_ = nc;
    }
    char *d = strndup(s, len);
    if (!d)
        return SL_ERR_NOMEM;
    c->own_[c->n_own_++] = d;
    c->argv[c->argc++] = d;
    c->argv[c->argc] = NULL;
    return SL_OK;
}

/* One line of the file: a setting for sl_conffile_read() (as_settings),
 * else "--flag" [value] appended to c->argv. */
static sl_status emit(sl_conffile *c, bool as_settings, const char *flag, const char *val, size_t vl,
                      bool has_val, int line)
{
    sl_status rc;
    sl_conffile_setting *s;

    if (!as_settings) {
        if ((rc = push(c, flag, strlen(flag))) == SL_OK && has_val)
            rc = push(c, val, vl);
        return rc;
    }
    if (c->n_settings == c->cap_settings_) {
        size_t nc = c->cap_settings_ ? c->cap_settings_ * 2 : 16;
        sl_conffile_setting *ns = realloc(c->settings, nc * sizeof *ns);
        if (!ns)
            return SL_ERR_NOMEM;
        c->settings = ns;
        c->cap_settings_ = nc;
    }
    s = &c->settings[c->n_settings];
    s->name = strdup(flag + 2);
    s->value = has_val ? strndup(val, vl) : NULL;
    s->line = line;
    c->n_settings++; /* counted before the check: deinit frees what was made */
    if (!s->name || (has_val && !s->value))
        return SL_ERR_NOMEM;
    return SL_OK;
}

static sl_status read_file(sl_conffile *c, const char *path, bool as_settings)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return sl_error_set(SL_ERR_IO, "config file %s: %s", path, strerror(errno));
    /* Whole lines, however long (a fixed buffer would cut a long one in
     * two and read its tail as another setting). */
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    int lineno = 0;
    sl_status rc = SL_OK;
    while (rc == SL_OK && (got = getline(&line, &cap, f)) >= 0) {
        lineno++;
        if (memchr(line, 0, (size_t)got)) {
            rc = sl_error_set(SL_ERR_PARSE, "%s:%d: NUL byte in the line", path, lineno);
            break;
        }
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
        rc = emit(c, as_settings, flag, val, vl, *val || p[k] == '=', lineno);
    }
    free(line);
    fclose(f);
    return rc;
}

sl_status sl_conffile_load(sl_conffile *c, int argc, char **argv, const char *env)
{
    const char *file = env ? getenv(env) : NULL;
    sl_status rc;
    memset(c, 0, sizeof(*c));
    if (file && !*file)
        file = NULL;
    for (int i = 1; i < argc; i++) {
        int missing;
        if (!strcmp(argv[i], "--"))
            break;
        const char *f = sl_conffile_flag(argc, argv, &i, "config", &missing);
        if (missing)
            return sl_error_set(SL_ERR_INVALID, "--config needs a file");
        if (f)
            file = f;
    }
    if ((rc = push(c, argv[0], strlen(argv[0]))) != SL_OK)
        return rc;
    if (file && (rc = read_file(c, file, false)) != SL_OK)
        return rc;
    for (int i = 1; i < argc; i++) {
        int j = i, missing;
        if (strcmp(argv[i], "--") && sl_conffile_flag(argc, argv, &j, "config", &missing)) {
            i = j;
            continue;
        }
        if ((rc = push(c, argv[i], strlen(argv[i]))) != SL_OK)
            return rc;
    }
    return SL_OK;
}

sl_status sl_conffile_read(sl_conffile *c, const char *path)
{
    memset(c, 0, sizeof(*c));
    return read_file(c, path, true);
}
