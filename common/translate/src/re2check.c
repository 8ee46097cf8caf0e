/* re2check.c - a syntax check of RE2 regular expressions without RE2.
 *
 * Envoy compiles every safe_regex with RE2 and rejects the whole resource
 * when one does not compile, so a bad regex in one VirtualService would
 * take the route configuration of every other one down with it. This
 * recursive-descent parser follows RE2's parser (re2/parse.cc) closely
 * enough to reject what RE2 rejects: Perl features RE2 lacks (lookaround,
 * backreferences, possessive and doubled repetition operators, \Z, \G),
 * malformed classes and groups, bad escapes, repetition counts above 1000
 * (also when nested). It is conservative: an expression it accepts
 * compiles in RE2. It also counts capture groups (for \N in rewrites) and
 * estimates the size of the compiled program (Envoy refuses programs above
 * its max_program_size, 100 by default).
 */
#include <ctype.h>
#include <string.h>

#include "core.h"

typedef struct re_parser {
    const char *s;   /* next character */
    const char *err; /* first error */
    int groups;
    int depth;
    long size;       /* program size estimate */
    char names[16][64];
    int n_names;
} re_parser;

static const char *const posix_classes[] = {"alnum", "alpha", "ascii", "blank", "cntrl", "digit", "graph",
                                            "lower", "print", "punct", "space", "upper", "word", "xdigit"};

static int fail(re_parser *p, const char *msg)
{
    if (!p->err)
        p->err = msg;
    return -1;
}

static int parse_alt(re_parser *p, long *size);

/* \p{Name} or \pL: Unicode classes. Names are letters and '_' (RE2 knows a
 * fixed table; we only check the shape). */
static int parse_unicode_class(re_parser *p)
{
    if (*p->s == '{') {
        const char *q = ++p->s;
        if (*q == '^')
            q++;
        while (isalpha((unsigned char)*q) || *q == '_')
            q++;
        if (*q != '}' || q == p->s)
            return fail(p, "invalid character class range in \\p{...}");
        p->s = q + 1;
        return 0;
    }
    if (!isalpha((unsigned char)*p->s))
        return fail(p, "invalid character class range after \\p");
    p->s++;
    return 0;
}

/* One escape after the backslash; *lit receives the character for a
 * literal (used for ranges in classes), -1 for a class like \d. */
static int parse_escape(re_parser *p, int in_class, int *lit)
{
    int c = (unsigned char)*p->s;
    *lit = -1;
    if (!c)
        return fail(p, "trailing \\");
    p->s++;
    if (c < 0x80 && !isalnum(c)) {
        *lit = c; /* escaped punctuation */
        return 0;
    }
    switch (c) {
    case 'a': *lit = 7; return 0;
    case 'f': *lit = 12; return 0;
    case 'n': *lit = 10; return 0;
    case 'r': *lit = 13; return 0;
    case 't': *lit = 9; return 0;
    case 'v': *lit = 11; return 0;
    case 'd': case 'D': case 's': case 'S': case 'w': case 'W':
        return 0;
    case 'p': case 'P':
        return parse_unicode_class(p);
    case 'b': case 'B': case 'A': case 'z': case 'C':
        if (in_class)
            return fail(p, "invalid escape sequence in a character class (\\b, \\B, \\A, \\z, \\C)");
        return 0;
    case 'x': {
        int v = 0;
        if (*p->s == '{') {
            const char *q = ++p->s;
            while (isxdigit((unsigned char)*q)) {
                v = v * 16 + (isdigit((unsigned char)*q) ? *q - '0' : (tolower((unsigned char)*q) - 'a' + 10));
                if (v > 0x10FFFF)
                    return fail(p, "invalid escape sequence: \\x{...} above U+10FFFF");
                q++;
            }
            if (*q != '}' || q == p->s)
                return fail(p, "invalid escape sequence: \\x{...}");
            p->s = q + 1;
        } else {
            if (!isxdigit((unsigned char)p->s[0]) || !isxdigit((unsigned char)p->s[1]))
                return fail(p, "invalid escape sequence: \\x needs two hex digits");
            for (int i = 0; i < 2; i++, p->s++)
                v = v * 16 + (isdigit((unsigned char)*p->s) ? *p->s - '0' : (tolower((unsigned char)*p->s) - 'a' + 10));
        }
        *lit = v;
        return 0;
    }
    case '0': case '1': case '2': case '3': case '4': case '5': case '6': case '7': {
        /* A single non-zero digit is a backreference, which RE2 lacks. */
        int v = c - '0';
        if (c != '0' && (*p->s < '0' || *p->s > '7'))
            return fail(p, "invalid escape sequence: backreferences (\\1) are not supported by RE2");
        for (int i = 0; i < 2 && *p->s >= '0' && *p->s <= '7'; i++, p->s++)
            v = v * 8 + (*p->s - '0');
        *lit = v;
        return 0;
    }
    default:
        return fail(p, c == 'Z' ? "invalid escape sequence: \\Z is not supported by RE2 (use \\z)"
                                : "invalid escape sequence");
    }
}

static int parse_class(re_parser *p, long *size)
{
    int first = 1, prev = -1;
    long ranges = 0;
    if (*p->s == '^')
        p->s++;
    for (;;) {
        int lo;
        if (!*p->s)
            return fail(p, "missing closing ]");
        if (*p->s == ']' && !first)
            break;
        first = 0;
        if (p->s[0] == '[' && p->s[1] == ':') {
            const char *q = p->s + 2;
            const char *end = strstr(q, ":]");
            size_t n;
            int ok = 0;
            if (!end)
                return fail(p, "missing closing ]");
            if (*q == '^')
                q++;
            n = (size_t)(end - q);
            for (size_t i = 0; i < sizeof posix_classes / sizeof *posix_classes; i++)
                if (strlen(posix_classes[i]) == n && strncmp(posix_classes[i], q, n) == 0)
                    ok = 1;
            if (!ok)
                return fail(p, "invalid character class range: unknown [:name:]");
            p->s = end + 2;
            ranges += 2;
            prev = -1;
            continue;
        }
        if (*p->s == '\\') {
            p->s++;
            if (parse_escape(p, 1, &lo) < 0)
                return -1;
        } else {
            lo = (unsigned char)*p->s++;
        }
        ranges++;
        if (*p->s == '-' && p->s[1] && p->s[1] != ']') {
            int hi;
            if (lo < 0)
                return fail(p, "invalid character class range: a class (\\d) cannot start a range");
            p->s++;
            if (*p->s == '\\') {
                p->s++;
                if (parse_escape(p, 1, &hi) < 0)
                    return -1;
                if (hi < 0)
                    return fail(p, "invalid character class range: a class (\\d) cannot end a range");
            } else {
                hi = (unsigned char)*p->s++;
            }
            if (hi < lo)
                return fail(p, "invalid character class range: the end is below the start");
        }
        prev = lo;
    }
    (void)prev;
    p->s++; /* ']' */
    *size = ranges + 1;
    return 0;
}

static int parse_group(re_parser *p, long *size)
{
    int capture = 1;
    /* after '(' */
    if (*p->s == '?') {
        p->s++;
        if (*p->s == 'P' || *p->s == '<') {
            const char *q;
            size_t n;
            if (*p->s == 'P') {
                p->s++;
                if (*p->s == '=')
                    return fail(p, "invalid named capture group: backreferences (?P=name) are not supported by RE2");
                if (*p->s != '<')
                    return fail(p, "invalid or unsupported Perl syntax after (?P");
            }
            if (p->s[1] == '=' || p->s[1] == '!')
                return fail(p, "invalid or unsupported Perl syntax: lookbehind (?<= (?<! is not supported by RE2");
            q = ++p->s;
            while (isalnum((unsigned char)*q) || *q == '_')
                q++;
            if (*q != '>' || q == p->s)
                return fail(p, "invalid named capture group");
            n = (size_t)(q - p->s);
            for (int i = 0; i < p->n_names; i++)
                if (strlen(p->names[i]) == n && strncmp(p->names[i], p->s, n) == 0)
                    return fail(p, "duplicate capture group name");
            if (p->n_names < 16 && n < 64) {
                memcpy(p->names[p->n_names], p->s, n);
                p->names[p->n_names++][n] = '\0';
            }
            p->s = q + 1;
        } else if (*p->s == '=' || *p->s == '!') {
            return fail(p, "invalid or unsupported Perl syntax: lookahead (?= (?! is not supported by RE2");
        } else {
            int neg = 0, any = 0;
            for (;; p->s++) {
                char c = *p->s;
                if (c == 'i' || c == 'm' || c == 's' || c == 'U') {
                    any = 1;
                } else if (c == '-') {
                    if (neg)
                        return fail(p, "invalid or unsupported Perl syntax: bad flags");
                    neg = 1;
                    any = 0;
                } else if (c == ')' || c == ':') {
                    if (neg && !any)
                        return fail(p, "invalid or unsupported Perl syntax: bad flags");
                    break;
                } else {
                    return fail(p, "invalid or unsupported Perl syntax after (?");
                }
            }
            if (*p->s == ')') { /* (?i): flags for the rest of the group */
                p->s++;
                *size = 0;
                return 0;
            }
            p->s++; /* ':' */
            capture = 0;
        }
    }
    if (capture)
        p->groups++;
    if (++p->depth > 1000)
        return fail(p, "expression nests too deeply");
    if (parse_alt(p, size) < 0)
        return -1;
    p->depth--;
    if (*p->s != ')')
        return fail(p, "missing closing )");
    p->s++;
    if (capture)
        *size += 2;
    return 0;
}

/* {n}, {n,}, {n,m}: 1 when one was read, 0 when '{' is a literal. */
static int parse_braces(re_parser *p, int *lo, int *hi)
{
    const char *q = p->s + 1;
    long a = 0, b;
    if (!isdigit((unsigned char)*q))
        return 0;
    while (isdigit((unsigned char)*q)) {
        a = a * 10 + (*q++ - '0');
        if (a > 100000)
            a = 100000;
    }
    b = a;
    if (*q == ',') {
        q++;
        if (*q == '}') {
            b = -1;
        } else {
            if (!isdigit((unsigned char)*q))
                return 0;
            b = 0;
            while (isdigit((unsigned char)*q)) {
                b = b * 10 + (*q++ - '0');
                if (b > 100000)
                    b = 100000;
            }
        }
    }
    if (*q != '}')
        return 0;
    p->s = q + 1;
    *lo = (int)a;
    *hi = (int)b;
    return 1;
}

static int parse_concat(re_parser *p, long *size)
{
    int have_atom = 0, last_was_rep = 0;
    long atom = 0;
    *size = 0;
    for (;;) {
        char c = *p->s;
        int lo, hi;
        if (!c || c == '|' || c == ')')
            break;
        if (c == '*' || c == '+' || c == '?' || (c == '{' && parse_braces(p, &lo, &hi))) {
            if (!have_atom)
                return fail(p, "missing argument to repetition operator");
            if (last_was_rep)
                return fail(p, "bad repetition operator: repetition of a repetition (use a group)");
            if (c != '{') {
                p->s++;
                lo = c == '+';
                hi = c == '?' ? 1 : -1;
            } else {
                if (lo > 1000 || hi > 1000)
                    return fail(p, "bad repetition operator: counts above 1000");
                if (hi >= 0 && hi < lo)
                    return fail(p, "bad repetition operator: {n,m} with m < n");
            }
            if (*p->s == '?')
                p->s++; /* non-greedy */
            if (*p->s == '*' || *p->s == '+' || *p->s == '?')
                return fail(p, "bad repetition operator: possessive or doubled operators are not supported by RE2");
            /* Program size: {n,m} copies the atom m (or n+1) times. */
            {
                long copies = hi < 0 ? (lo > 0 ? lo : 1) : hi;
                *size -= atom;
                *size += atom * (copies ? copies : 1) + copies + 1;
            }
            last_was_rep = 1;
            continue;
        }
        last_was_rep = 0;
        have_atom = 1;
        p->s++;
        switch (c) {
        case '(':
            if (parse_group(p, &atom) < 0)
                return -1;
            if (atom == 0 && p->s[-1] == ')' ) /* (?i) */
                have_atom = 0;
            break;
        case '[':
            if (parse_class(p, &atom) < 0)
                return -1;
            break;
        case '\\':
            if (*p->s == 'Q') {
                const char *e = strstr(p->s, "\\E");
                size_t n = e ? (size_t)(e - p->s - 1) : strlen(p->s + 1);
                p->s = e ? e + 2 : p->s + 1 + n;
                atom = (long)n;
                have_atom = n > 0;
                break;
            } else {
                int lit;
                if (parse_escape(p, 0, &lit) < 0)
                    return -1;
                atom = lit >= 0 ? 1 : 3;
            }
            break;
        case '.':
            atom = 4;
            break;
        case '^': case '$':
            atom = 1;
            break;
        default:
            atom = 1;
            break;
        }
        *size += atom;
    }
    return 0;
}

static int parse_alt(re_parser *p, long *size)
{
    long total = 0, part;
    for (;;) {
        if (parse_concat(p, &part) < 0)
            return -1;
        total += part;
        if (*p->s != '|')
            break;
        p->s++;
        total += 1;
    }
    *size = total;
    return 0;
}

/* Nested counted repetitions multiply (RE2 refuses a product above 1000). */
static const char *check_nested_repeats(const char *re)
{
    int stack[128];
    int depth = 0;
    long prod[128];
    prod[0] = 1;
    for (const char *s = re; *s; s++) {
        if (*s == '\\' && s[1]) {
            s++;
            continue;
        }
        if (*s == '[') {
            s++;
            if (*s == '^')
                s++;
            if (*s == ']')
                s++;
            while (*s && *s != ']') {
                if (*s == '\\' && s[1])
                    s++;
                s++;
            }
            if (!*s)
                break;
            continue;
        }
        if (*s == '(' && depth < 127) {
            stack[depth] = 0;
            depth++;
            prod[depth] = prod[depth - 1];
        } else if (*s == ')' && depth > 0) {
            depth--;
            if (s[1] == '{') {
                long n = 0;
                const char *q = s + 2;
                while (isdigit((unsigned char)*q))
                    n = n * 10 + (*q++ - '0');
                if (*q == ',') {
                    q++;
                    if (isdigit((unsigned char)*q)) {
                        n = 0;
                        while (isdigit((unsigned char)*q))
                            n = n * 10 + (*q++ - '0');
                    }
                }
                (void)stack;
                /* the inner repeats count against this one */
                if (n > 0) {
                    /* recompute product of inner group repeats */
                    const char *inner = s - 1;
                    int d = 0;
                    long inner_max = 1;
                    for (; inner > re; inner--) {
                        if (*inner == ')')
                            d++;
                        else if (*inner == '(' && d-- == 0)
                            break;
                        else if (*inner == '}' && d == 0) {
                            const char *b = inner;
                            long v = 0, mul = 1;
                            while (b > re && isdigit((unsigned char)b[-1])) {
                                v += (b[-1] - '0') * mul;
                                mul *= 10;
                                b--;
                            }
                            if (v > inner_max)
                                inner_max = v;
                        }
                    }
                    if (n * inner_max > 1000)
                        return "bad repetition operator: nested repetition counts multiply above 1000";
                }
            }
        }
    }
    return NULL;
}

const char *tr_re2_check(tr_ctx *tx, const char *re, int *groups)
{
    re_parser p;
    long size = 0;
    (void)tx;
    memset(&p, 0, sizeof p);
    p.s = re ? re : "";
    if (groups)
        *groups = 0;
    if (parse_alt(&p, &size) < 0)
        return p.err;
    if (*p.s == ')')
        return "unexpected )";
    if (*p.s)
        return "unexpected character";
    if ((p.err = check_nested_repeats(re)) != NULL)
        return p.err;
    if (groups)
        *groups = p.groups;
    return NULL;
}

/* The estimate of the compiled program's size of a valid expression. */
long tr_re2_program_size(const char *re)
{
    re_parser p;
    long size = 0;
    memset(&p, 0, sizeof p);
    p.s = re ? re : "";
    if (parse_alt(&p, &size) < 0)
        return -1;
    return size + 3;
}

bool tr_check_regex(tr_ctx *tx, const char *what, const char *re, int *groups)
{
    const char *err = tr_re2_check(tx, re, groups);
    long size, max = 100;
    if (err) {
        tr_error(tx, "%s: invalid regex \"%s\": %s", what, re, err);
        return false;
    }
    if (tx->settings->gloo && tx->settings->gloo->regex_max_program_size)
        max = tx->settings->gloo->regex_max_program_size->value;
    size = tr_re2_program_size(re);
    if (size > max)
        tr_warn(tx, "%s: regex \"%s\" may compile to a program larger than %ld (estimated %ld); Envoy refuses those",
                what, re, max, size);
    return true;
}
