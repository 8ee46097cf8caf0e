/* YAML (and JSON) text to a tree of nodes that keep their line:column.
 *
 * libyaml's event parser drives an explicit stack, so nesting costs heap,
 * not C stack; the depth is still capped so that the decoder's recursion
 * is bounded. Aliases point at the anchored node (no copy); the total size
 * they add is capped too, so that a "billion laughs" document is an error
 * instead of an hour of decoding. */
#include "codec_internal.h"

#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "sluice/bsearch.h"
#include "sluice/vec.h"

/* Nodes aliases may add to one document, counted with their subtrees. */
#define ALIAS_BUDGET ((size_t)1000000)
#define ANCHOR_BUCKETS 256

typedef struct frame {
    codec_node *node;
    codec_node **items; /* children so far (malloc'd) */
    size_t n;
    size_t cap;
    char *anchor; /* registered when the collection ends */
} frame;

/* A JSON surrogate pair escape (\ud83d\ude00, 12 characters) rewritten for
 * libyaml as \U0001F600 (10): columns after `col` on `line` of the
 * rewritten text are 2 further right in the user's text. */
typedef struct fixup {
    unsigned line;
    unsigned col;
} fixup;

typedef struct anchor {
    struct anchor *next;
    char *name;
    codec_node *node;
} anchor;

struct sl_codec_stream {
    yaml_parser_t parser;
    char *data;
    size_t len;
    char *filename;
    bool json;
    fixup *fixups; /* sorted by line, then column */
    size_t n_fixups;
    bool done; /* the stream ended, or libyaml failed */
    bool nomem;
    /* the document being built */
    sl_codec_doc *doc;
    bool failed; /* it is broken; skip to its end */
    frame *frames;
    size_t depth;
    size_t frames_cap;
    anchor *anchors[ANCHOR_BUCKETS];
    size_t alias_weight;
};

bool codec_is_null(const codec_node *n)
{
    if (!n || n->kind != CODEC_SCALAR || n->quoted)
        return false;
    return n->n == 0 || strcmp(n->text, "~") == 0 || strcmp(n->text, "null") == 0 ||
           strcmp(n->text, "Null") == 0 || strcmp(n->text, "NULL") == 0;
}

static void add_error(sl_codec_stream *s, sl_diag *diag, unsigned line, unsigned col,
                      const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void add_error(sl_codec_stream *s, sl_diag *diag, unsigned line, unsigned col,
                      const char *fmt, ...)
{
    va_list ap;

    if (!diag)
        return;
    va_start(ap, fmt);
    sl_diag_addv(diag, SL_DIAG_ERROR, s->filename, line, col, "", fmt, ap);
    va_end(ap);
}

/* Orders a position (a fixup as key) against a fixup. */
static int cmp_fixup(const void *key, const void *elem)
{
    const fixup *k = key, *f = elem;
    if (k->line != f->line)
        return k->line < f->line ? -1 : 1;
    return (k->col > f->col) - (k->col < f->col);
}

/* Fixups before (line, col). */
static size_t rank(const sl_codec_stream *s, unsigned line, unsigned col)
{
    fixup at = {line, col};
    return sl_bsearch_pos(NULL, &at, s->fixups, s->n_fixups, sizeof *s->fixups, cmp_fixup);
}

/* The 1-based position of a mark in the user's text. */
static void where(const sl_codec_stream *s, const yaml_mark_t *m, unsigned *line, unsigned *col)
{
    *line = (unsigned)m->line + 1;
    *col = (unsigned)m->column + 1;
    if (s->n_fixups)
        *col += 2 * (unsigned)(rank(s, *line, *col + 1) - rank(s, *line, 0));
}

/* --- Building one document ------------------------------------------------ */

static void drop_frames(sl_codec_stream *s)
{
    for (size_t i = 0; i < s->depth; i++) {
        free(s->frames[i].items);
        free(s->frames[i].anchor);
    }
    s->depth = 0;
}

static void drop_doc(sl_codec_stream *s)
{
    drop_frames(s);
    sl_codec_doc_free(s->doc);
    s->doc = NULL;
    s->failed = false;
}

static bool begin_doc(sl_codec_stream *s, const yaml_mark_t *mark)
{
    sl_codec_doc *doc = calloc(1, sizeof(*doc));

    if (!doc)
        goto nomem;
    sl_arena_init(&doc->arena, 0);
    doc->line = (unsigned)mark->line + 1;
    doc->json = s->json;
    doc->filename = strdup(s->filename);
    if (!doc->filename)
        goto nomem;
    s->doc = doc;
    s->failed = false;
    s->alias_weight = 0;
    memset(s->anchors, 0, sizeof(s->anchors));
    return true;
nomem:
    sl_codec_doc_free(doc);
    s->nomem = true;
    return false;
}

/* Marks the document broken: its events are read but not kept. */
static void fail_doc(sl_codec_stream *s)
{
    drop_frames(s);
    s->failed = true;
}

static codec_node *new_node(sl_codec_stream *s, codec_kind kind, const yaml_mark_t *mark)
{
    codec_node *n = sl_arena_alloc(&s->doc->arena, sizeof(*n));

    if (!n) {
        s->nomem = true;
        return NULL;
    }
    memset(n, 0, sizeof(*n));
    n->kind = kind;
    where(s, mark, &n->line, &n->col);
    n->weight = 1;
    return n;
}

static size_t add_weight(size_t a, size_t b)
{
    return a > SIZE_MAX - b ? SIZE_MAX : a + b;
}

static unsigned hash(const char *s)
{
    unsigned h = 2166136261u;

    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h % ANCHOR_BUCKETS;
}

static bool add_anchor(sl_codec_stream *s, const char *name, codec_node *node)
{
    unsigned h = hash(name);
    anchor *a = sl_arena_alloc(&s->doc->arena, sizeof(*a));
    char *copy = sl_arena_strdup(&s->doc->arena, name);

    if (!a || !copy) {
        s->nomem = true;
        return false;
    }
    a->name = copy;
    a->node = node;
    a->next = s->anchors[h]; /* a redefined anchor shadows the old one */
    s->anchors[h] = a;
    return true;
}

static codec_node *find_anchor(sl_codec_stream *s, const char *name)
{
    for (anchor *a = s->anchors[hash(name)]; a; a = a->next)
        if (strcmp(a->name, name) == 0)
            return a->node;
    return NULL;
}

/* Hangs a finished node under the open collection (or makes it the root). */
static bool attach(sl_codec_stream *s, codec_node *n)
{
    frame *f;

    if (s->depth == 0) {
        s->doc->root = n;
        return true;
    }
    f = &s->frames[s->depth - 1];
    if (SL_VEC_RESERVE(f->items, f->cap, f->n + 1) != SL_OK) {
        s->nomem = true;
        return false;
    }
    f->items[f->n++] = n;
    f->node->weight = add_weight(f->node->weight, n->weight);
    return true;
}

static bool on_scalar(sl_codec_stream *s, const yaml_event_t *ev)
{
    const char *tag = (const char *)ev->data.scalar.tag;
    codec_node *n = new_node(s, CODEC_SCALAR, &ev->start_mark);

    if (!n)
        return false;
    n->n = ev->data.scalar.length;
    n->text = sl_arena_alloc(&s->doc->arena, n->n + 1);
    if (!n->text) {
        s->nomem = true;
        return false;
    }
    memcpy(n->text, ev->data.scalar.value, n->n);
    n->text[n->n] = '\0';
    /* Tags are not data: only !!str (and the non-specific "!") change how
     * a scalar reads, making it a string. */
    n->quoted = ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE ||
                (tag && (strcmp(tag, YAML_STR_TAG) == 0 || strcmp(tag, "!") == 0));
    if (ev->data.scalar.anchor && !add_anchor(s, (const char *)ev->data.scalar.anchor, n))
        return false;
    return attach(s, n);
}

static bool on_start(sl_codec_stream *s, const yaml_event_t *ev, codec_kind kind, sl_diag *diag)
{
    const yaml_char_t *anchor_name = kind == CODEC_MAP ? ev->data.mapping_start.anchor
                                                       : ev->data.sequence_start.anchor;
    unsigned line, col;
    frame *f;

    if (s->depth >= SL_CODEC_MAX_DEPTH) {
        where(s, &ev->start_mark, &line, &col);
        add_error(s, diag, line, col, "nesting deeper than %d levels", SL_CODEC_MAX_DEPTH);
        fail_doc(s);
        return true;
    }
    if (SL_VEC_RESERVE(s->frames, s->frames_cap, s->depth + 1) != SL_OK) {
        s->nomem = true;
        return false;
    }
    f = &s->frames[s->depth];
    memset(f, 0, sizeof(*f));
    f->node = new_node(s, kind, &ev->start_mark);
    if (!f->node)
        return false;
    if (anchor_name) {
        f->anchor = strdup((const char *)anchor_name);
        if (!f->anchor) {
            s->nomem = true;
            return false;
        }
    }
    s->depth++;
    return true;
}

typedef struct key_ref {
    const codec_node *key;
    size_t pair;
} key_ref;

/* Scalar keys by their text: bytes, then length; 0 when the same. */
static int cmp_key_text(const codec_node *a, const codec_node *b)
{
    size_t n = a->n < b->n ? a->n : b->n;
    int c = memcmp(a->text, b->text, n);

    if (c)
        return c;
    if (a->n != b->n)
        return a->n < b->n ? -1 : 1;
    return 0;
}

static int cmp_key(const void *a, const void *b)
{
    const key_ref *x = a, *y = b;
    int c = cmp_key_text(x->key, y->key);

    if (c)
        return c;
    return x->pair < y->pair ? -1 : x->pair > y->pair;
}

/* Marks every pair whose scalar key repeats an earlier key. Sorting keeps
 * this O(n log n) for large mappings. */
static bool find_dups(sl_codec_stream *s, codec_node *m)
{
    key_ref *refs;
    size_t n = 0;
    bool ok = true;

    if (m->n < 2)
        return true;
    refs = malloc(m->n * sizeof(*refs));
    if (!refs)
        goto nomem;
    for (size_t i = 0; i < m->n; i++)
        if (m->items[2 * i]->kind == CODEC_SCALAR)
            refs[n++] = (key_ref){m->items[2 * i], i};
    qsort(refs, n, sizeof(*refs), cmp_key);
    for (size_t i = 1; i < n; i++) {
        size_t first = i - 1;
        if (cmp_key_text(refs[i].key, refs[first].key) != 0)
            continue;
        if (!m->dups) {
            m->dups = sl_arena_alloc(&s->doc->arena, m->n * sizeof(*m->dups));
            if (!m->dups)
                goto nomem;
            memset(m->dups, 0, m->n * sizeof(*m->dups));
        }
        /* Equal keys are sorted by position: point each at the first. */
        m->dups[refs[i].pair] = m->dups[refs[first].pair] ? m->dups[refs[first].pair]
                                                           : refs[first].key;
    }
    goto out;
nomem:
    s->nomem = true;
    ok = false;
out:
    free(refs);
    return ok;
}

/* YAML's merge key: a plain "<<" whose value is a mapping or a list of
 * mappings. */
static bool is_merge_key(const codec_node *k)
{
    return k->kind == CODEC_SCALAR && !k->quoted && strcmp(k->text, "<<") == 0;
}

typedef struct merge_ref {
    const codec_node *key;
    const codec_node *value;
    size_t prio; /* 0: the mapping's own key; then merged sources in order */
    size_t seq;  /* position in the merged result */
    bool keep;
} merge_ref;

static bool same_key(const merge_ref *x, const merge_ref *y)
{
    return x->key->kind == CODEC_SCALAR && y->key->kind == CODEC_SCALAR &&
           cmp_key_text(x->key, y->key) == 0;
}

/* Scalar keys by text, then precedence; other keys last. */
static int cmp_merge(const void *a, const void *b)
{
    const merge_ref *x = a, *y = b;
    bool xs = x->key->kind == CODEC_SCALAR, ys = y->key->kind == CODEC_SCALAR;

    if (xs != ys)
        return xs ? -1 : 1;
    if (xs) {
        int c = cmp_key_text(x->key, y->key);
        if (c)
            return c;
        if (x->prio != y->prio)
            return x->prio < y->prio ? -1 : 1;
    }
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int cmp_seq(const void *a, const void *b)
{
    const merge_ref *x = a, *y = b;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Appends the pairs of merged mapping m (its first occurrence of each key). */
static void merge_source(merge_ref *refs, size_t *k, const codec_node *m, size_t prio)
{
    for (size_t j = 0; j < m->n; j++) {
        if ((m->dups && m->dups[j]) || is_merge_key(m->items[2 * j]))
            continue;
        refs[*k] = (merge_ref){m->items[2 * j], m->items[2 * j + 1], prio, *k, true};
        (*k)++;
    }
}

/* Is v a mapping or a non-empty list of mappings? Adds their pairs to
 * *pairs; *bad is the node to blame when not. */
static bool merge_value_ok(const codec_node *v, size_t *pairs, const codec_node **bad)
{
    *bad = v;
    if (v->kind == CODEC_MAP) {
        *pairs += v->n;
        return true;
    }
    if (v->kind != CODEC_SEQ || v->n == 0)
        return false;
    for (size_t j = 0; j < v->n; j++) {
        if (v->items[j]->kind != CODEC_MAP) {
            *bad = v->items[j];
            return false;
        }
        *pairs += v->items[j]->n;
    }
    return true;
}

/* Applies merge keys to the pairs of the mapping being closed: the pairs
 * of merged mappings whose keys the mapping lacks are added after its own
 * (earlier sources win). Keys that repeat among the mapping's own pairs
 * are kept, so that they are still reported as duplicates. A bad merge
 * value fails the document. */
static bool merge_keys(sl_codec_stream *s, frame *f, sl_diag *diag)
{
    size_t pairs = f->n / 2, total = 0, k = 0, prio = 0, out = 0, i;
    merge_ref *refs = NULL;
    codec_node **items = NULL;
    bool ok = true, any = false;

    for (i = 0; i < pairs; i++) {
        const codec_node *bad;
        if (!is_merge_key(f->items[2 * i]))
            continue;
        any = true;
        if (!merge_value_ok(f->items[2 * i + 1], &total, &bad)) {
            add_error(s, diag, bad->line, bad->col,
                      "the merge key '<<' takes a mapping or a list of mappings");
            fail_doc(s);
            goto out;
        }
    }
    if (!any)
        goto out;
    refs = malloc((pairs + total + 1) * sizeof(*refs));
    items = malloc(2 * (pairs + total + 1) * sizeof(*items));
    if (!refs || !items)
        goto nomem;
    for (i = 0; i < pairs; i++) {
        if (is_merge_key(f->items[2 * i]))
            continue;
        refs[k] = (merge_ref){f->items[2 * i], f->items[2 * i + 1], 0, k, true};
        k++;
    }
    for (i = 0; i < pairs; i++) {
        const codec_node *v = f->items[2 * i + 1];
        if (!is_merge_key(f->items[2 * i]))
            continue;
        if (v->kind == CODEC_MAP)
            merge_source(refs, &k, v, ++prio);
        else
            for (size_t j = 0; j < v->n; j++)
                merge_source(refs, &k, v->items[j], ++prio);
    }
    /* Sorted by key, then precedence: in each run of equal scalar keys, a
     * merged pair survives only if it comes first (no own pair and no
     * earlier source has the key). */
    qsort(refs, k, sizeof(*refs), cmp_merge);
    for (i = 1; i < k; i++)
        if (refs[i].prio > 0 && same_key(&refs[i - 1], &refs[i]))
            refs[i].keep = false;
    qsort(refs, k, sizeof(*refs), cmp_seq);
    for (i = 0; i < k; i++) {
        if (!refs[i].keep)
            continue;
        items[out++] = (codec_node *)refs[i].key;
        items[out++] = (codec_node *)refs[i].value;
    }
    free(f->items);
    f->items = items;
    f->n = f->cap = out;
    items = NULL;
    f->node->weight = 1;
    for (i = 0; i < out; i++)
        f->node->weight = add_weight(f->node->weight, f->items[i]->weight);
    goto out;
nomem:
    s->nomem = true;
    ok = false;
out:
    free(refs);
    free(items);
    return ok;
}

static bool on_end(sl_codec_stream *s, sl_diag *diag)
{
    frame *f = &s->frames[s->depth - 1];
    codec_node *n = f->node;
    bool ok = false;

    if (n->kind == CODEC_MAP && !merge_keys(s, f, diag))
        goto out;
    if (s->failed) /* a bad merge key: the frames are gone */
        return true;
    if (f->n) {
        n->items = sl_arena_alloc(&s->doc->arena, f->n * sizeof(*n->items));
        if (!n->items) {
            s->nomem = true;
            goto out;
        }
        memcpy(n->items, f->items, f->n * sizeof(*n->items));
    }
    n->n = n->kind == CODEC_MAP ? f->n / 2 : f->n;
    if (n->kind == CODEC_MAP && !find_dups(s, n))
        goto out;
    /* An anchor names its node once the node is complete, so an alias
     * inside it is unknown rather than a cycle. */
    if (f->anchor && !add_anchor(s, f->anchor, n))
        goto out;
    ok = true;
out:
    free(f->items);
    free(f->anchor);
    s->depth--;
    return ok && attach(s, n);
}

static bool on_alias(sl_codec_stream *s, const yaml_event_t *ev, sl_diag *diag)
{
    const char *name = (const char *)ev->data.alias.anchor;
    codec_node *target = find_anchor(s, name);
    unsigned line, col;

    where(s, &ev->start_mark, &line, &col);
    if (!target) {
        add_error(s, diag, line, col, "unknown alias '*%s'", name);
        fail_doc(s);
        return true;
    }
    s->alias_weight = add_weight(s->alias_weight, target->weight);
    if (s->alias_weight > ALIAS_BUDGET) {
        add_error(s, diag, line, col, "aliases expand to more than %zu nodes", ALIAS_BUDGET);
        fail_doc(s);
        return true;
    }
    return attach(s, target);
}

/* --- libyaml's errors ------------------------------------------------------- */

static void report_yaml_error(sl_codec_stream *s, sl_diag *diag)
{
    const yaml_parser_t *p = &s->parser;
    const char *problem = p->problem ? p->problem : "unknown problem";

    if (p->error == YAML_MEMORY_ERROR) {
        s->nomem = true;
    } else if (p->error == YAML_READER_ERROR) {
        /* Reader errors carry a byte offset, not a mark. */
        unsigned line = 1, col = 1;
        for (size_t i = 0; i < p->problem_offset && i < s->len; i++) {
            unsigned char c = (unsigned char)s->data[i];
            if (c == '\n') {
                line++;
                col = 1;
            } else if ((c & 0xc0) != 0x80) {
                col++;
            }
        }
        if (p->problem_value >= 0)
            add_error(s, diag, line, col, "invalid input: %s (byte 0x%02x)", problem,
                      (unsigned)p->problem_value & 0xffu);
        else
            add_error(s, diag, line, col, "invalid input: %s", problem);
    } else {
        unsigned line, col, cline, ccol;
        where(s, &p->problem_mark, &line, &col);
        where(s, &p->context_mark, &cline, &ccol);
        if (p->context)
            add_error(s, diag, line, col, "syntax error: %s (%s at %u:%u)", problem, p->context,
                      cline, ccol);
        else
            add_error(s, diag, line, col, "syntax error: %s", problem);
    }
}

/* --- Streams ---------------------------------------------------------------- */

/* Four hex digits at p (n bytes available). */
static bool hex4(const char *p, size_t n, unsigned *v)
{
    *v = 0;
    if (n < 4)
        return false;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        unsigned d = c >= '0' && c <= '9'   ? (unsigned)(c - '0')
                     : c >= 'a' && c <= 'f' ? (unsigned)(c - 'a' + 10)
                     : c >= 'A' && c <= 'F' ? (unsigned)(c - 'A' + 10)
                                            : 16u;
        if (d > 15)
            return false;
        *v = *v * 16 + d;
    }
    return true;
}

/* Bytes of the line break at p as libyaml counts them (CRLF, CR, LF, NEL,
 * LS, PS), or 0. */
static size_t line_break(const char *p, size_t n)
{
    const unsigned char *u = (const unsigned char *)p;

    if (u[0] == '\r')
        return n > 1 && u[1] == '\n' ? 2 : 1;
    if (u[0] == '\n')
        return 1;
    if (n > 1 && u[0] == 0xc2 && u[1] == 0x85)
        return 2;
    if (n > 2 && u[0] == 0xe2 && u[1] == 0x80 && (u[2] == 0xa8 || u[2] == 0xa9))
        return 3;
    return 0;
}

/* Makes JSON text readable by libyaml, in place, keeping positions:
 * tabs between tokens (JSON allows them, YAML not where it expects
 * indentation) become spaces, and surrogate pair escapes, which YAML lacks,
 * become \U escapes, remembered as fixups for the columns after them. */
static bool json_prepare(sl_codec_stream *s)
{
    char *p = s->data;
    size_t r = 0, w = 0, len = s->len, cap = 0;
    unsigned line = 1, col = 1;
    bool in_string = false;

    while (r < len) {
        size_t br = line_break(p + r, len - r);
        unsigned hi, lo;
        if (br) {
            memmove(p + w, p + r, br);
            w += br;
            r += br;
            line++;
            col = 1;
            continue;
        }
        if (in_string && p[r] == '\\' && r + 1 < len && p[r + 1] == 'u' &&
            hex4(p + r + 2, len - r - 2, &hi) && hi >= 0xd800 && hi <= 0xdbff && r + 12 <= len &&
            p[r + 6] == '\\' && p[r + 7] == 'u' && hex4(p + r + 8, len - r - 8, &lo) &&
            lo >= 0xdc00 && lo <= 0xdfff) {
            char esc[11];
            snprintf(esc, sizeof(esc), "\\U%08X", 0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00));
            memcpy(p + w, esc, 10);
            w += 10;
            r += 12;
            col += 10;
            if (SL_VEC_RESERVE(s->fixups, cap, s->n_fixups + 1) != SL_OK)
                return false;
            s->fixups[s->n_fixups++] = (fixup){line, col};
            continue;
        }
        if (in_string && p[r] == '\\' && r + 1 < len && !line_break(p + r + 1, len - r - 1)) {
            p[w++] = p[r++]; /* the escaped character cannot end the string */
            col++;
        } else if (p[r] == '"') {
            in_string = !in_string;
        } else if (p[r] == '\t' && !in_string) {
            p[r] = ' ';
        }
        if (((unsigned char)p[r] & 0xc0) != 0x80)
            col++;
        p[w++] = p[r++];
    }
    s->len = w;
    p[w] = '\0';
    return true;
}

static sl_status stream_open(sl_codec_stream **out, const char *data, size_t len,
                             const char *filename, bool json)
{
    sl_codec_stream *s = NULL;
    sl_status st = SL_OK;

    *out = NULL;
    if (!data && len)
        return sl_error_set(SL_ERR_INVALID, "codec: NULL data with length %zu", len);
    s = calloc(1, sizeof(*s));
    if (!s)
        goto nomem;
    s->data = malloc(len + 1);
    s->filename = strdup(filename ? filename : "<input>");
    if (!s->data || !s->filename)
        goto nomem;
    if (len)
        memcpy(s->data, data, len);
    s->data[len] = '\0';
    s->len = len;
    s->json = json;
    if (json && !json_prepare(s))
        goto nomem;
    if (!yaml_parser_initialize(&s->parser))
        goto nomem;
    yaml_parser_set_input_string(&s->parser, (const unsigned char *)s->data, s->len);
    *out = s;
    goto out;
nomem:
    if (s) {
        free(s->data);
        free(s->filename);
        free(s->fixups);
        free(s);
    }
    st = sl_error_set(SL_ERR_NOMEM, "codec: out of memory opening a stream");
out:
    return st;
}

sl_status sl_codec_stream_new(sl_codec_stream **out, const char *data, size_t len,
                              const char *filename)
{
    return stream_open(out, data, len, filename, false);
}

void sl_codec_stream_free(sl_codec_stream *s)
{
    if (!s)
        return;
    drop_doc(s);
    free(s->frames);
    yaml_parser_delete(&s->parser);
    free(s->data);
    free(s->filename);
    free(s->fixups);
    free(s);
}

/* One event. Sets *finished when a document (or the stream) is complete. */
static bool on_event(sl_codec_stream *s, const yaml_event_t *ev, sl_diag *diag, bool *finished)
{
    bool building = s->doc && !s->failed;

    switch (ev->type) {
    case YAML_STREAM_END_EVENT:
        s->done = true;
        *finished = true;
        return true;
    case YAML_DOCUMENT_START_EVENT:
        return begin_doc(s, &ev->start_mark);
    case YAML_DOCUMENT_END_EVENT:
        *finished = true;
        return true;
    case YAML_SCALAR_EVENT:
        return !building || on_scalar(s, ev);
    case YAML_SEQUENCE_START_EVENT:
        return !building || on_start(s, ev, CODEC_SEQ, diag);
    case YAML_MAPPING_START_EVENT:
        return !building || on_start(s, ev, CODEC_MAP, diag);
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT:
        return !building || on_end(s, diag);
    case YAML_ALIAS_EVENT:
        return !building || on_alias(s, ev, diag);
    default:
        return true;
    }
}

sl_status sl_codec_stream_next(sl_codec_stream *s, sl_codec_doc **doc, sl_diag *diag)
{
    sl_status st = SL_OK;
    bool finished = false;

    *doc = NULL;
    while (!s->done && !finished) {
        yaml_event_t ev;
        bool ok;

        if (!yaml_parser_parse(&s->parser, &ev)) {
            report_yaml_error(s, diag);
            s->done = true;
            drop_doc(s);
            st = s->nomem ? SL_ERR_NOMEM : SL_ERR_PARSE;
            goto out;
        }
        ok = on_event(s, &ev, diag, &finished);
        yaml_event_delete(&ev);
        if (!ok || s->nomem) {
            s->done = true;
            drop_doc(s);
            st = SL_ERR_NOMEM;
            goto out;
        }
    }
    if (s->doc && s->failed) {
        drop_doc(s);
        st = SL_ERR_PARSE;
    } else if (s->doc) {
        *doc = s->doc;
        s->doc = NULL;
    }
out:
    if (st == SL_ERR_NOMEM)
        sl_error_set(st, "codec: out of memory parsing %s", s->filename);
    else if (st != SL_OK)
        sl_error_set(st, "codec: %s could not be parsed", s->filename);
    return st;
}

/* --- Documents -------------------------------------------------------------- */

unsigned sl_codec_doc_line(const sl_codec_doc *doc)
{
    return doc->line;
}

bool sl_codec_doc_empty(const sl_codec_doc *doc)
{
    return !doc->root || codec_is_null(doc->root);
}

size_t sl_codec_doc_nodes(const sl_codec_doc *doc)
{
    return doc->root ? doc->root->weight : 0;
}

const char *sl_codec_doc_scalar(const sl_codec_doc *doc, const char *dotted_path)
{
    const codec_node *n = doc->root;
    const char *seg = dotted_path;

    while (n && *seg) {
        const char *dot = strchr(seg, '.');
        size_t len = dot ? (size_t)(dot - seg) : strlen(seg);
        const codec_node *next = NULL;

        if (n->kind != CODEC_MAP)
            return NULL;
        for (size_t i = 0; i < n->n && !next; i++) {
            const codec_node *k = n->items[2 * i];
            if (k->kind == CODEC_SCALAR && k->n == len && memcmp(k->text, seg, len) == 0)
                next = n->items[2 * i + 1];
        }
        n = next;
        seg = dot ? dot + 1 : seg + len;
    }
    if (!n || n->kind != CODEC_SCALAR || codec_is_null(n))
        return NULL;
    return n->text;
}

void sl_codec_doc_free(sl_codec_doc *doc)
{
    if (!doc)
        return;
    sl_arena_deinit(&doc->arena);
    free(doc->filename);
    free(doc);
}

sl_status codec_parse_one(sl_codec_doc **doc, const char *data, size_t len, const char *filename,
                          bool json, sl_diag *diag)
{
    sl_codec_stream *s = NULL;
    sl_codec_doc *first = NULL, *second = NULL;
    sl_status st;

    *doc = NULL;
    st = stream_open(&s, data, len, filename, json);
    if (st != SL_OK)
        goto out;
    st = sl_codec_stream_next(s, &first, diag);
    if (st != SL_OK || !first)
        goto out;
    st = sl_codec_stream_next(s, &second, diag);
    if (st != SL_OK)
        goto out;
    if (second) {
        add_error(s, diag, second->line, 1, "expected one document, found another at line %u",
                  second->line);
        st = sl_error_set(SL_ERR_PARSE, "codec: %s has more than one document", s->filename);
        goto out;
    }
    *doc = first;
    first = NULL;
out:
    sl_codec_doc_free(first);
    sl_codec_doc_free(second);
    sl_codec_stream_free(s);
    return st;
}
