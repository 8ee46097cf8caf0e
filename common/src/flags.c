/* flags.c - the flag parser: command line, environment, config file and
 * defaults into a table's targets; --help from the table. See sluice/flags.h. */
#include "sluice/flags.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sluice/conffile.h"
#include "sluice/service.h"

/* Where a value came from, lowest precedence first. */
enum src { SRC_NONE, SRC_DEFAULT, SRC_FILE, SRC_ENV, SRC_ARGS };

/* A value from the command line, applied once every source is known. */
typedef struct arg_value {
    size_t flag;
    const char *value; /* NULL: a boolean given without one */
} arg_value;

/* One sl_flags_parse() call. */
typedef struct parse {
    sl_flags *fs;
    const sl_flag **all; /* every flag of every group */
    size_t n;
    unsigned char *top; /* per flag: the highest source that has it */
    arg_value *args;
    size_t n_args;
    sl_conffile conf;
    const char *conf_path;
} parse;

/* ---- storage ------------------------------------------------------------ */

void sl_flags_init(sl_flags *fs)
{
    memset(fs, 0, sizeof(*fs));
}

void sl_flags_deinit(sl_flags *fs)
{
    for (size_t i = 0; i < fs->n_own_; i++)
        free(fs->own_[i]);
    free(fs->own_);
    memset(fs, 0, sizeof(*fs));
}

sl_status sl_flags_add(sl_flags *fs, const char *title, const sl_flag *table, size_t n)
{
    if (fs->n_groups_ == SL_FLAGS_MAX_GROUPS)
        return sl_error_set(SL_ERR_INVALID, "flags: more than %d tables", SL_FLAGS_MAX_GROUPS);
    fs->groups_[fs->n_groups_].title = title;
    fs->groups_[fs->n_groups_].v = table;
    fs->groups_[fs->n_groups_].n = n;
    fs->n_groups_++;
    return SL_OK;
}

/* Takes ownership of p (freed by sl_flags_deinit()). SL_ERR_NOMEM frees p. */
static sl_status own(sl_flags *fs, void *p)
{
    if (fs->n_own_ == fs->cap_own_) {
        size_t nc = fs->cap_own_ ? fs->cap_own_ * 2 : 16;
        void **nv = realloc(fs->own_, nc * sizeof(*nv));
        if (nv == NULL) {
            free(p);
            return sl_error_set(SL_ERR_NOMEM, "flags");
        }
        fs->own_ = nv;
        fs->cap_own_ = nc;
    }
    fs->own_[fs->n_own_++] = p;
    return SL_OK;
}

static sl_status own_str(const char **out, sl_flags *fs, const char *s, size_t len)
{
    char *copy = strndup(s, len);

    if (copy == NULL)
        return sl_error_set(SL_ERR_NOMEM, "flags");
    *out = copy;
    return own(fs, copy);
}

/* ---- values ------------------------------------------------------------- */

/* Milliseconds as the shortest duration text ("1s", "250ms", "2m"). */
static void fmt_ms(char *buf, size_t n, int64_t ms)
{
    if (ms != 0 && ms % 3600000 == 0)
        snprintf(buf, n, "%lldh", (long long)(ms / 3600000));
    else if (ms != 0 && ms % 60000 == 0)
        snprintf(buf, n, "%lldm", (long long)(ms / 60000));
    else if (ms != 0 && ms % 1000 == 0)
        snprintf(buf, n, "%llds", (long long)(ms / 1000));
    else
        snprintf(buf, n, "%lldms", (long long)ms);
}

/* A decimal integer, nothing else: no sign but '-', no leading zeros. */
static bool parse_int(int64_t *out, const char *s)
{
    const char *p = s + (*s == '-');
    int64_t v = 0;

    if (*p < '0' || *p > '9' || (p[0] == '0' && p[1] != '\0'))
        return false;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (v > (INT32_MAX - (*p - '0')) / 10)
            return false;
        v = v * 10 + (*p - '0');
    }
    if (*p != '\0')
        return false;
    *out = *s == '-' ? -v : v;
    return true;
}

static bool parse_bool(bool *out, const char *s)
{
    static const char *const yes[] = {"true", "1", "yes", "on"}, *const no[] = {"false", "0", "no", "off"};

    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(s, yes[i]) == 0 || strcasecmp(s, no[i]) == 0) {
            *out = strcasecmp(s, yes[i]) == 0;
            return true;
        }
    }
    return false;
}

/* The word of f->choices equal to s, or false. */
static bool parse_choice(const sl_flag *f, const char *s)
{
    size_t len = strlen(s);

    for (const char *c = f->choices; c != NULL && *c != '\0';) {
        size_t wl = strcspn(c, "|");
        if (wl == len && strncmp(c, s, len) == 0)
            return true;
        c += wl + (c[wl] == '|');
    }
    return false;
}

/* "auto, on or off" for an error message. */
static void choices_text(char *buf, size_t n, const char *choices)
{
    size_t words = 1, k = 0;
    char *o = buf;

    for (const char *c = choices; *c != '\0'; c++)
        words += *c == '|';
    for (const char *c = choices; *c != '\0' && (size_t)(o - buf) + 8 < n; c++) {
        if (*c != '|') {
            *o++ = *c;
            continue;
        }
        k++;
        o += snprintf(o, n - (size_t)(o - buf), k + 1 == words ? " or " : ", ");
    }
    *o = '\0';
}

/* Appends a copy of s (len bytes). The list's arrays are owned by fs; a
 * grown one replaces the old in l, which stays owned until deinit (lists
 * hold a few values). */
static sl_status list_append(sl_flags *fs, sl_flag_list *l, const char *s, size_t len)
{
    const char **nv = malloc((l->n + 1) * sizeof(*nv));
    const char *copy = NULL;
    sl_status st;

    if (nv == NULL)
        return sl_error_set(SL_ERR_NOMEM, "flags");
    if (l->n > 0)
        memcpy(nv, l->v, l->n * sizeof(*nv));
    if ((st = own(fs, (void *)nv)) != SL_OK)
        return st;
    l->v = nv;
    if ((st = own_str(&copy, fs, s, len)) != SL_OK)
        return st;
    l->v[l->n++] = copy;
    return SL_OK;
}

static sl_status set_number(const sl_flag *f, const char *value, const char *where)
{
    char lo[32], hi[32];
    int64_t v;

    if (f->kind == SL_FLAG_INT) {
        if (!parse_int(&v, value) || (f->min < f->max && (v < f->min || v > f->max))) {
            if (f->min < f->max)
                return sl_error_set(SL_ERR_INVALID, "%s: bad value '%s' (an integer from %lld to %lld)",
                                    where, value, (long long)f->min, (long long)f->max);
            return sl_error_set(SL_ERR_INVALID, "%s: bad value '%s' (an integer)", where, value);
        }
        *(int *)f->target = (int)v;
        return SL_OK;
    }
    if (sl_parse_duration_ms(&v, value) != SL_OK)
        return sl_error_set(SL_ERR_INVALID,
                            "%s: bad duration '%s' (a number and a unit: 500ms, 10s, 2m, 1h; or 0)", where,
                            value);
    if (f->min < f->max && (v < f->min || v > f->max)) {
        fmt_ms(lo, sizeof(lo), f->min);
        fmt_ms(hi, sizeof(hi), f->max);
        return sl_error_set(SL_ERR_INVALID, "%s: '%s' is out of range (%s to %s)", where, value, lo, hi);
    }
    *(int64_t *)f->target = v;
    return SL_OK;
}

/* Sets f's target from value (NULL: a boolean given alone). where names
 * the source for errors: "--name", a variable, "FILE:LINE: name". */
static sl_status set_value(sl_flags *fs, const sl_flag *f, const char *value, const char *where)
{
    char words[128];
    bool b;

    if (value == NULL && f->kind != SL_FLAG_BOOL)
        return sl_error_set(SL_ERR_INVALID, "%s: missing value", where);
    if (value != NULL && value[0] == '\0' &&
        !(f->opts & SL_FLAG_EMPTY_OK && (f->kind == SL_FLAG_STRING || f->kind == SL_FLAG_LIST)))
        return sl_error_set(SL_ERR_INVALID, "%s: missing value", where);
    switch (f->kind) {
    case SL_FLAG_STRING:
        return own_str((const char **)f->target, fs, value, strlen(value));
    case SL_FLAG_LIST:
        return list_append(fs, f->target, value, strlen(value));
    case SL_FLAG_INT:
    case SL_FLAG_DURATION:
        return set_number(f, value, where);
    case SL_FLAG_BOOL:
        if (value != NULL && !parse_bool(&b, value))
            return sl_error_set(SL_ERR_INVALID, "%s: bad value '%s' (true or false)", where, value);
        *(bool *)f->target = value == NULL || b;
        return SL_OK;
    case SL_FLAG_CHOICE:
        if (!parse_choice(f, value)) {
            choices_text(words, sizeof(words), f->choices != NULL ? f->choices : "");
            return sl_error_set(SL_ERR_INVALID, "%s: bad value '%s' (%s)", where, value, words);
        }
        return own_str((const char **)f->target, fs, value, strlen(value));
    }
    return sl_error_set(SL_ERR_INTERNAL, "%s: unknown flag kind", where);
}

/* ---- lookup ------------------------------------------------------------- */

/* The flag named name (len bytes; a long name, or the shorthand when
 * shorthand), or SIZE_MAX. */
static size_t find(const parse *p, const char *name, size_t len, bool shorthand)
{
    for (size_t i = 0; i < p->n; i++) {
        const sl_flag *f = p->all[i];
        if (shorthand ? f->shorthand != '\0' && len == 1 && f->shorthand == name[0]
                      : strlen(f->name) == len && strncmp(f->name, name, len) == 0)
            return i;
    }
    return SIZE_MAX;
}

/* Edit distance of a (alen bytes) and b, for did-you-mean. */
static size_t distance(const char *a, size_t alen, const char *b)
{
    size_t blen = strlen(b), row[64], prev, tmp;

    if (alen >= 63 || blen >= 63)
        return SIZE_MAX;
    for (size_t j = 0; j <= blen; j++)
        row[j] = j;
    for (size_t i = 1; i <= alen; i++) {
        prev = row[0];
        row[0] = i;
        for (size_t j = 1; j <= blen; j++) {
            size_t best = prev + (a[i - 1] != b[j - 1]);
            if (row[j] + 1 < best)
                best = row[j] + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            tmp = row[j];
            row[j] = best;
            prev = tmp;
        }
    }
    return row[blen];
}

/* The closest flag name to name, when it is close enough to be a typo. */
static const char *suggest(const parse *p, const char *name, size_t len)
{
    const char *best = NULL;
    size_t best_d = len < 6 ? 1 : len < 12 ? 2 : 3;

    for (size_t i = 0; i < p->n; i++) {
        size_t d = distance(name, len, p->all[i]->name);
        if (d <= best_d) {
            best = p->all[i]->name;
            best_d = d;
        }
    }
    return best;
}

/* "unknown flag --resinc (did you mean --resync?)"; from a config file
 * (prefix "FILE:LINE: ") the name is quoted as written there, without "--". */
static sl_status unknown_flag(const parse *p, const char *arg, size_t len, const char *prefix)
{
    const char *name = arg + strspn(arg, "-");
    const char *s = suggest(p, name, len - (size_t)(name - arg));
    const char *q = prefix[0] ? "'" : "", *dashes = prefix[0] ? "" : "--";

    if (s != NULL)
        return sl_error_set(SL_ERR_INVALID, "%sunknown flag %s%.*s%s (did you mean %s%s%s%s?)", prefix, q,
                            (int)len, arg, q, q, dashes, s, q);
    return sl_error_set(SL_ERR_INVALID, "%sunknown flag %s%.*s%s", prefix, q, (int)len, arg, q);
}

/* ---- sources ------------------------------------------------------------ */

static void raise_top(parse *p, size_t i, enum src s)
{
    if (p->top[i] < s)
        p->top[i] = (unsigned char)s;
}

/* One command-line argument at argv[*i] (advanced past its value). *kept
 * is set when it is not ours and mode keeps it. */
static sl_status scan_one(parse *p, int argc, char **argv, int *i, unsigned mode, bool *kept)
{
    const char *a = argv[*i], *eq = NULL, *value = NULL;
    bool is_long = a[0] == '-' && a[1] == '-' && a[2] != '\0';
    bool is_short = a[0] == '-' && a[1] != '-' && a[1] != '\0' && a[2] == '\0';
    size_t len, k;

    *kept = false;
    if (!is_long && !is_short) {
        if (mode & SL_FLAGS_KEEP_UNKNOWN) {
            *kept = true;
            return SL_OK;
        }
        return sl_error_set(SL_ERR_INVALID, "unexpected argument '%s' (this program takes flags only)", a);
    }
    if (is_long)
        eq = strchr(a, '=');
    len = eq != NULL ? (size_t)(eq - a) : strlen(a);
    k = is_long ? find(p, a + 2, len - 2, false) : find(p, a + 1, 1, true);
    if (k == SIZE_MAX) {
        if (mode & SL_FLAGS_KEEP_UNKNOWN) {
            *kept = true;
            return SL_OK;
        }
        return unknown_flag(p, a, len, "");
    }
    if (eq != NULL)
        value = eq + 1;
    else if (p->all[k]->kind != SL_FLAG_BOOL && *i + 1 < argc)
        value = argv[++*i];
    else if (p->all[k]->kind != SL_FLAG_BOOL)
        return sl_error_set(SL_ERR_INVALID, "--%s: missing value", p->all[k]->name);
    p->args[p->n_args].flag = k;
    p->args[p->n_args].value = value;
    p->n_args++;
    raise_top(p, k, SRC_ARGS);
    return SL_OK;
}

/* The command line: values into p->args, what is not ours compacted in
 * argv. Goes on after an error (the first one is returned) so that --help
 * is seen wherever it is. *exit_flag: an SL_FLAG_EXIT flag was given. */
static sl_status scan_args(parse *p, int *argc, char **argv, unsigned mode, size_t *exit_flag)
{
    sl_status first = SL_OK;
    char msg[512] = "";
    int i, j = 1;

    *exit_flag = SIZE_MAX;
    for (i = 1; i < *argc; i++) {
        bool kept;
        sl_status st;
        if (strcmp(argv[i], "--") == 0)
            break;
        st = scan_one(p, *argc, argv, &i, mode, &kept);
        if (kept) /* only with SL_FLAGS_KEEP_UNKNOWN */
            argv[j++] = argv[i];
        if (st != SL_OK && first == SL_OK) {
            first = st;
            snprintf(msg, sizeof(msg), "%s", sl_error_msg());
        }
    }
    if (i < *argc && !(mode & SL_FLAGS_KEEP_UNKNOWN) && i + 1 < *argc && first == SL_OK) {
        first = sl_error_set(SL_ERR_INVALID, "unexpected argument '%s' (this program takes flags only)",
                             argv[i + 1]);
        snprintf(msg, sizeof(msg), "%s", sl_error_msg());
    }
    if (mode & SL_FLAGS_KEEP_UNKNOWN) {
        while (i < *argc)
            argv[j++] = argv[i++];
        *argc = j;
        argv[j] = NULL;
    }
    for (size_t k = 0; k < p->n_args; k++)
        if (p->all[p->args[k].flag]->opts & SL_FLAG_EXIT)
            *exit_flag = p->args[k].flag;
    if (first != SL_OK)
        sl_error_set(first, "%s", msg);
    return first;
}

/* The config file named by the SL_FLAG_CONFIG flag (command line, then its
 * variable), read into p->conf; every setting must be a flag. */
static sl_status read_config(parse *p)
{
    size_t c = SIZE_MAX;
    sl_status st;

    for (size_t i = 0; i < p->n && c == SIZE_MAX; i++)
        if (p->all[i]->opts & SL_FLAG_CONFIG)
            c = i;
    if (c == SIZE_MAX)
        return SL_OK;
    for (size_t k = 0; k < p->n_args; k++)
        if (p->args[k].flag == c)
            p->conf_path = p->args[k].value;
    if (p->conf_path == NULL && p->all[c]->env != NULL) {
        const char *e = getenv(p->all[c]->env);
        if (e != NULL && e[0] != '\0')
            p->conf_path = e;
    }
    if (p->conf_path == NULL)
        return SL_OK;
    if (p->conf_path[0] == '\0')
        return sl_error_set(SL_ERR_INVALID, "--%s: missing value", p->all[c]->name);
    if ((st = sl_conffile_read(&p->conf, p->conf_path)) != SL_OK)
        return st;
    for (size_t k = 0; k < p->conf.n_settings; k++) {
        const sl_conffile_setting *s = &p->conf.settings[k];
        char where[300];
        size_t i = find(p, s->name, strlen(s->name), false);
        snprintf(where, sizeof(where), "%s:%d: ", p->conf_path, s->line);
        if (i == SIZE_MAX)
            return unknown_flag(p, s->name, strlen(s->name), where);
        if (p->all[i]->opts & (SL_FLAG_EXIT | SL_FLAG_CONFIG))
            return sl_error_set(SL_ERR_INVALID, "%s%s cannot be set in a config file", where, s->name);
        raise_top(p, i, SRC_FILE);
    }
    return SL_OK;
}

static const char *env_value(const sl_flag *f)
{
    const char *v = f->env != NULL ? getenv(f->env) : NULL;

    if (v == NULL || (v[0] == '\0' && !(f->opts & SL_FLAG_EMPTY_OK)))
        return NULL;
    return v;
}

/* A variable's value; a list's is ':'-separated (empty parts skipped). */
static sl_status apply_env(parse *p, const sl_flag *f, const char *v)
{
    sl_status st = SL_OK;

    if (f->kind != SL_FLAG_LIST)
        return set_value(p->fs, f, v, f->env);
    for (const char *s = v; *s != '\0' && st == SL_OK;) {
        size_t len = strcspn(s, ":");
        if (len > 0)
            st = list_append(p->fs, f->target, s, len);
        s += len + (s[len] == ':');
    }
    return st;
}

/* Defaults, then every flag from its highest source, in the order of
 * that source (the file's lines, the command line's arguments). */
static sl_status apply(parse *p)
{
    sl_status st = SL_OK;
    char where[600];

    for (size_t i = 0; i < p->n && st == SL_OK; i++) {
        const sl_flag *f = p->all[i];
        if (f->def != NULL && p->top[i] == SRC_NONE) {
            snprintf(where, sizeof(where), "default of --%s", f->name);
            st = f->kind == SL_FLAG_LIST ? list_append(p->fs, f->target, f->def, strlen(f->def))
                                         : set_value(p->fs, f, f->def, where);
        }
    }
    for (size_t k = 0; k < p->conf.n_settings && st == SL_OK; k++) {
        const sl_conffile_setting *s = &p->conf.settings[k];
        size_t i = find(p, s->name, strlen(s->name), false);
        if (p->top[i] != SRC_FILE)
            continue;
        snprintf(where, sizeof(where), "%s:%d: %s", p->conf_path, s->line, s->name);
        st = set_value(p->fs, p->all[i], s->value, where);
    }
    for (size_t i = 0; i < p->n && st == SL_OK; i++) {
        const char *v = env_value(p->all[i]);
        if (v != NULL && p->top[i] == SRC_ENV)
            st = apply_env(p, p->all[i], v);
    }
    for (size_t k = 0; k < p->n_args && st == SL_OK; k++) {
        const sl_flag *f = p->all[p->args[k].flag];
        snprintf(where, sizeof(where), "--%s", f->name);
        st = set_value(p->fs, f, p->args[k].value, where);
    }
    return st;
}

sl_status sl_flags_parse(sl_flags *fs, int *argc, char **argv, unsigned mode)
{
    parse p = {.fs = fs};
    size_t exit_flag;
    sl_status st;

    for (size_t g = 0; g < fs->n_groups_; g++)
        p.n += fs->groups_[g].n;
    p.all = calloc(p.n + 1, sizeof(*p.all));
    p.top = calloc(p.n + 1, 1);
    p.args = calloc((size_t)*argc + 1, sizeof(*p.args));
    if (p.all == NULL || p.top == NULL || p.args == NULL) {
        st = sl_error_set(SL_ERR_NOMEM, "flags");
        goto out;
    }
    p.n = 0;
    for (size_t g = 0; g < fs->n_groups_; g++)
        for (size_t i = 0; i < fs->groups_[g].n; i++)
            p.all[p.n++] = &fs->groups_[g].v[i];
    for (size_t i = 0; i < p.n; i++)
        if (p.all[i]->kind == SL_FLAG_LIST)
            *(sl_flag_list *)p.all[i]->target = (sl_flag_list){NULL, 0};

    st = scan_args(&p, argc, argv, mode, &exit_flag);
    if (exit_flag != SIZE_MAX) {
        /* --help and --version work whatever else is wrong. */
        *(bool *)p.all[exit_flag]->target = true;
        st = SL_OK;
        goto out;
    }
    if (st == SL_OK)
        st = read_config(&p);
    for (size_t i = 0; i < p.n && st == SL_OK; i++)
        if (!(p.all[i]->opts & SL_FLAG_EXIT) && env_value(p.all[i]) != NULL)
            raise_top(&p, i, SRC_ENV);
    if (st == SL_OK)
        st = apply(&p);
out:
    sl_conffile_deinit(&p.conf);
    free(p.args);
    free(p.top);
    free(p.all);
    return st;
}

/* ---- --help ------------------------------------------------------------- */

#define HELP_COL 30

static const char *placeholder(const sl_flag *f)
{
    if (f->arg != NULL)
        return f->arg;
    switch (f->kind) {
    case SL_FLAG_INT:
        return "N";
    case SL_FLAG_DURATION:
        return "DUR";
    case SL_FLAG_BOOL:
        return "";
    case SL_FLAG_CHOICE:
        return f->choices != NULL ? f->choices : "WORD";
    case SL_FLAG_STRING:
    case SL_FLAG_LIST:
        break;
    }
    return "VALUE";
}

static void print_flag(FILE *out, const sl_flag *f)
{
    const char *arg = placeholder(f), *h = f->help != NULL ? f->help : "";
    char left[160], extra[300] = "";
    int n;

    if (f->shorthand)
        n = snprintf(left, sizeof(left), "  -%c, --%s%s%s", f->shorthand, f->name, arg[0] ? " " : "", arg);
    else
        n = snprintf(left, sizeof(left), "  --%s%s%s", f->name, arg[0] ? " " : "", arg);
    fputs(left, out);
    if (n >= HELP_COL - 1)
        fprintf(out, "\n%*s", HELP_COL, "");
    else
        fprintf(out, "%*s", HELP_COL - n, "");
    for (const char *nl; (nl = strchr(h, '\n')) != NULL; h = nl + 1)
        fprintf(out, "%.*s\n%*s", (int)(nl - h), h, HELP_COL, "");
    if (f->kind == SL_FLAG_LIST)
        snprintf(extra, sizeof(extra), "repeatable");
    if (f->env != NULL)
        snprintf(extra + strlen(extra), sizeof(extra) - strlen(extra), "%senv %s%s", extra[0] ? "; " : "",
                 f->env, f->kind == SL_FLAG_LIST ? ", ':'-separated" : "");
    if (f->def != NULL && f->kind != SL_FLAG_BOOL)
        snprintf(extra + strlen(extra), sizeof(extra) - strlen(extra), "%sdefault %s", extra[0] ? "; " : "",
                 f->def[0] ? f->def : "\"\"");
    if (extra[0] == '\0')
        fprintf(out, "%s\n", h);
    else if (h[0] == '\0')
        fprintf(out, "(%s)\n", extra);
    else if (h[strlen(h) - 1] == ')' || HELP_COL + strlen(h) + strlen(extra) + 3 > 110)
        fprintf(out, "%s\n%*s(%s)\n", h, HELP_COL, "", extra); /* on a line of its own */
    else
        fprintf(out, "%s (%s)\n", h, extra);
}

void sl_flags_print_help(const sl_flags *fs, FILE *f)
{
    for (size_t g = 0; g < fs->n_groups_; g++) {
        if (fs->groups_[g].n == 0)
            continue;
        if (fs->groups_[g].title != NULL)
            fprintf(f, "\n%s:\n", fs->groups_[g].title);
        for (size_t i = 0; i < fs->groups_[g].n; i++)
            print_flag(f, &fs->groups_[g].v[i]);
    }
}

bool sl_list_has(const char *list, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = list; p && n && (p = strstr(p, name)) != NULL; p += n)
        if ((p == list || p[-1] == ',') && (p[n] == ',' || p[n] == '\0'))
            return true;
    return false;
}
