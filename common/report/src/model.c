/* model.c - see model.h. */
#include "sluice/report_model.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/arena.h"
#include "sluice/kinds.h"
#include "sluice/resource.h"
#include "sluice/vec.h"
#include "sluice/v1/core.pb-c.h"

#define SRC_TRANSLATOR "translator"
#define SRC_XDS "xds-server"
#define SRC_REPORTER "reporter"
#define SRC_CONFIG "config-watcher"

typedef struct slot {
    char *source;
    char *proxy; /* "" = every proxy */
    Sluice__V1__Status__State state;
    char *reason;
    char **warnings;
    size_t n_warnings;
    int64_t generation;
    char *xds_version;
    int64_t time_ns;
    uint64_t config_rev; /* config-watcher: the sluice_config revision reported on */
    uint8_t *parts; /* packed Status holding only subresource_statuses */
    size_t parts_len;
    /* NACK overlay (translator slots only) */
    bool nacked;
    char *nack_error, *nack_type, *nack_version, *nack_node;
    int64_t nack_time_ns;
} slot;

typedef struct entry {
    char *key;
    sl_resource_id id;
    bool config_kind; /* its kind lives in sluice_config */
    slot *slots;      /* sorted by label */
    size_t n_slots;
    bool in_config;
    uint64_t config_rev; /* its sluice_config revision, when in_config */
    bool dirty;
    uint8_t *pub; /* last committed status, bookkeeping stripped */
    size_t pub_len;
    bool has_pub;
    uint8_t *pending; /* last rendered, bookkeeping stripped */
    size_t pending_len;
    uint64_t rev;
    struct entry *next;
} entry;

enum { NARROW_ALL, NARROW_KINDS, NARROW_NAMES };

typedef struct proxy_t {
    char *id;
    bool nacked;
    char *error, *type, *version, *node;
    int64_t time_ns; /* of the last NACK or ACK */
    int mode;
    char **names; /* NARROW_NAMES: the keys concerned */
    size_t n_names, cap_names;
    struct proxy_t *next;
} proxy_t;

struct rep_model {
    entry **tab;
    size_t cap, count;
    proxy_t *proxies;
    char **dirty;
    size_t n_dirty, cap_dirty, dirty_head;
    bool no_gate;
};

/* ---- small helpers ------------------------------------------------------ */

static void xfree(char **p)
{
    free(*p);
    *p = NULL;
}

static char *xstrdup(const char *s)
{
    return strdup(s ? s : "");
}

static const char *nz(const char *s)
{
    return s ? s : "";
}

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ULL;
    return h;
}

static int rank(Sluice__V1__Status__State s)
{
    switch (s) {
    case SLUICE__V1__STATUS__STATE__Accepted: return 0;
    case SLUICE__V1__STATUS__STATE__Warning: return 1;
    case SLUICE__V1__STATUS__STATE__Pending: return 2;
    case SLUICE__V1__STATUS__STATE__Rejected: return 3;
    default: return 2;
    }
}

static const char *state_name(Sluice__V1__Status__State s)
{
    switch (s) {
    case SLUICE__V1__STATUS__STATE__Accepted: return "Accepted";
    case SLUICE__V1__STATUS__STATE__Warning: return "Warning";
    case SLUICE__V1__STATUS__STATE__Rejected: return "Rejected";
    default: return "Pending";
    }
}

static Sluice__V1__Status__State state_parse(const char *s)
{
    if (!strcmp(s, "Accepted"))
        return SLUICE__V1__STATUS__STATE__Accepted;
    if (!strcmp(s, "Warning"))
        return SLUICE__V1__STATUS__STATE__Warning;
    if (!strcmp(s, "Rejected"))
        return SLUICE__V1__STATUS__STATE__Rejected;
    return SLUICE__V1__STATUS__STATE__Pending;
}

int rep_version_cmp(const char *a, const char *b)
{
    a = nz(a);
    b = nz(b);
    if (!a[0] || !b[0] || strspn(a, "0123456789") != strlen(a) || strspn(b, "0123456789") != strlen(b))
        return 0;
    while (*a == '0' && a[1])
        a++;
    while (*b == '0' && b[1])
        b++;
    size_t la = strlen(a), lb = strlen(b);
    if (la != lb)
        return la < lb ? -1 : 1;
    int c = strcmp(a, b);
    return c < 0 ? -1 : c > 0;
}

/* ---- slots -------------------------------------------------------------- */

static void slot_clear_nack(slot *s)
{
    s->nacked = false;
    xfree(&s->nack_error);
    xfree(&s->nack_type);
    xfree(&s->nack_version);
    xfree(&s->nack_node);
    s->nack_time_ns = 0;
}

static void slot_clear_report(slot *s)
{
    xfree(&s->reason);
    for (size_t i = 0; i < s->n_warnings; i++)
        free(s->warnings[i]);
    free(s->warnings);
    s->warnings = NULL;
    s->n_warnings = 0;
    xfree(&s->xds_version);
    free(s->parts);
    s->parts = NULL;
    s->parts_len = 0;
}

static void slot_deinit(slot *s)
{
    slot_clear_report(s);
    slot_clear_nack(s);
    xfree(&s->source);
    xfree(&s->proxy);
}

/* The subresource key a slot is shown under. */
static void slot_label(char *buf, size_t n, const slot *s)
{
    if (!strcmp(s->source, SRC_TRANSLATOR))
        snprintf(buf, n, "%s", s->proxy[0] ? s->proxy : "*");
    else if (s->proxy[0])
        snprintf(buf, n, "%s:%s", s->source, s->proxy);
    else
        snprintf(buf, n, "%s", s->source);
}

/* Orders two reports of one slot: generation, xds revision, time. */
static int order_cmp(int64_t ga, const char *va, int64_t ta, int64_t gb, const char *vb, int64_t tb)
{
    if (ga != gb)
        return ga < gb ? -1 : 1;
    int c = rep_version_cmp(va, vb);
    if (c)
        return c;
    if (ta != tb)
        return ta < tb ? -1 : 1;
    return 0;
}

/* ---- entries ------------------------------------------------------------ */

static entry **find_ref(rep_model *m, const char *key)
{
    entry **pp = &m->tab[hash_str(key) & (m->cap - 1)];
    while (*pp && strcmp((*pp)->key, key) != 0)
        pp = &(*pp)->next;
    return pp;
}

static entry *find(rep_model *m, const char *key)
{
    return *find_ref(m, key);
}

static sl_status grow(rep_model *m)
{
    size_t ncap = m->cap * 2;
    entry **nt = calloc(ncap, sizeof *nt);
    if (!nt)
        return SL_ERR_NOMEM;
    for (size_t i = 0; i < m->cap; i++) {
        entry *e = m->tab[i];
        while (e) {
            entry *nx = e->next;
            size_t h = hash_str(e->key) & (ncap - 1);
            e->next = nt[h];
            nt[h] = e;
            e = nx;
        }
    }
    free(m->tab);
    m->tab = nt;
    m->cap = ncap;
    return SL_OK;
}

static sl_status get_entry(entry **out, rep_model *m, const char *key)
{
    entry *e = find(m, key);
    if (e) {
        *out = e;
        return SL_OK;
    }
    sl_resource_id id;
    if (sl_resource_key_parse(&id, key, 1) != SL_OK)
        return SL_ERR_INVALID;
    if (m->count + 1 > m->cap && grow(m) != SL_OK)
        return SL_ERR_NOMEM;
    e = calloc(1, sizeof *e);
    if (!e || !(e->key = strdup(key))) {
        free(e);
        return SL_ERR_NOMEM;
    }
    e->id = id;
    const sl_kind *k = sl_kind_by_name(id.kind);
    e->config_kind = k && !strcmp(k->bucket, SL_BUCKET_CONFIG);
    entry **pp = find_ref(m, key);
    *pp = e;
    m->count++;
    *out = e;
    return SL_OK;
}

static void entry_free(entry *e)
{
    for (size_t i = 0; i < e->n_slots; i++)
        slot_deinit(&e->slots[i]);
    free(e->slots);
    free(e->pub);
    free(e->pending);
    free(e->key);
    free(e);
}

static void mark_dirty(rep_model *m, entry *e)
{
    if (e->dirty)
        return;
    if (m->n_dirty == m->cap_dirty) {
        if (m->dirty_head > 0) {
            memmove(m->dirty, m->dirty + m->dirty_head, (m->n_dirty - m->dirty_head) * sizeof *m->dirty);
            m->n_dirty -= m->dirty_head;
            m->dirty_head = 0;
        }
        if (SL_VEC_RESERVE(m->dirty, m->cap_dirty, m->n_dirty + 1) != SL_OK)
            return;
    }
    char *k = strdup(e->key);
    if (!k)
        return;
    m->dirty[m->n_dirty++] = k;
    e->dirty = true;
}

static slot *find_slot(entry *e, const char *source, const char *proxy)
{
    for (size_t i = 0; i < e->n_slots; i++)
        if (!strcmp(e->slots[i].source, source) && !strcmp(e->slots[i].proxy, proxy))
            return &e->slots[i];
    return NULL;
}

static slot *add_slot(entry *e, const char *source, const char *proxy)
{
    slot *ns = realloc(e->slots, (e->n_slots + 1) * sizeof *ns);
    if (!ns)
        return NULL;
    e->slots = ns;
    slot s = {0};
    s.source = xstrdup(source);
    s.proxy = xstrdup(proxy);
    s.state = SLUICE__V1__STATUS__STATE__Pending;
    if (!s.source || !s.proxy) {
        slot_deinit(&s);
        return NULL;
    }
    /* keep sorted by label, so rendering is deterministic */
    char a[512], b[512];
    slot_label(a, sizeof a, &s);
    size_t at = e->n_slots;
    for (size_t i = 0; i < e->n_slots; i++) {
        slot_label(b, sizeof b, &e->slots[i]);
        if (strcmp(a, b) < 0) {
            at = i;
            break;
        }
    }
    memmove(&e->slots[at + 1], &e->slots[at], (e->n_slots - at) * sizeof *e->slots);
    e->slots[at] = s;
    e->n_slots++;
    return &e->slots[at];
}

static void drop_slot(entry *e, size_t i)
{
    slot_deinit(&e->slots[i]);
    memmove(&e->slots[i], &e->slots[i + 1], (e->n_slots - i - 1) * sizeof *e->slots);
    e->n_slots--;
}

static int64_t max_generation(const entry *e, const char *source)
{
    int64_t g = 0;
    for (size_t i = 0; i < e->n_slots; i++)
        if (!strcmp(e->slots[i].source, source) && e->slots[i].generation > g)
            g = e->slots[i].generation;
    return g;
}

/* A newer generation of a source replaces all of that source's slots of
 * older generations (the resource may have moved between proxies). */
static void drop_older_generations(entry *e, const char *source, int64_t gen)
{
    for (size_t i = e->n_slots; i-- > 0;)
        if (!strcmp(e->slots[i].source, source) && e->slots[i].generation < gen)
            drop_slot(e, i);
}

/* ---- model -------------------------------------------------------------- */

sl_status rep_model_new(rep_model **out)
{
    rep_model *m = calloc(1, sizeof *m);
    if (!m)
        return SL_ERR_NOMEM;
    m->cap = 256;
    if (!(m->tab = calloc(m->cap, sizeof *m->tab))) {
        free(m);
        return SL_ERR_NOMEM;
    }
    *out = m;
    return SL_OK;
}

static void proxy_clear(proxy_t *p)
{
    p->nacked = false;
    xfree(&p->error);
    xfree(&p->type);
    xfree(&p->version);
    xfree(&p->node);
    for (size_t i = 0; i < p->n_names; i++)
        free(p->names[i]);
    free(p->names);
    p->names = NULL;
    p->n_names = p->cap_names = 0;
}

void rep_model_free(rep_model *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->cap; i++) {
        entry *e = m->tab[i];
        while (e) {
            entry *nx = e->next;
            entry_free(e);
            e = nx;
        }
    }
    free(m->tab);
    while (m->proxies) {
        proxy_t *p = m->proxies;
        m->proxies = p->next;
        proxy_clear(p);
        free(p->id);
        free(p);
    }
    for (size_t i = m->dirty_head; i < m->n_dirty; i++)
        free(m->dirty[i]);
    free(m->dirty);
    free(m);
}

static proxy_t *get_proxy(rep_model *m, const char *id)
{
    for (proxy_t *p = m->proxies; p; p = p->next)
        if (!strcmp(p->id, id))
            return p;
    proxy_t *p = calloc(1, sizeof *p);
    if (!p || !(p->id = strdup(id))) {
        free(p);
        return NULL;
    }
    p->next = m->proxies;
    m->proxies = p;
    return p;
}

/* Names Envoy gives what a resource becomes (Gloo's conventions): cluster
 * <upstream>_<ns>, virtual host <ns>_<virtualservice>. */
static bool envoy_name_of(char *buf, size_t n, const entry *e)
{
    if (!strcmp(e->id.kind, "Upstream"))
        return snprintf(buf, n, "%s_%s", e->id.name, e->id.ns) < (int)n;
    if (!strcmp(e->id.kind, "VirtualService"))
        return snprintf(buf, n, "%s_%s", e->id.ns, e->id.name) < (int)n;
    return false;
}

static bool is_name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-' || c == '.';
}

/* text contains word, delimited by non-name characters. */
static bool mentions(const char *text, const char *word)
{
    size_t wl = strlen(word);
    for (const char *p = strstr(text, word); p; p = strstr(p + 1, word)) {
        bool lb = p == text || !is_name_char(p[-1]);
        bool rb = !is_name_char(p[wl]) || (p[wl] == '.' && !is_name_char(p[wl + 1]));
        if (lb && rb)
            return true;
    }
    return false;
}

/* Kinds an Envoy type is built from. */
static bool kind_matches_type(const char *kind, const char *type_url)
{
    if (strstr(type_url, ".route.v3."))
        return !strcmp(kind, "VirtualService") || !strcmp(kind, "RouteTable");
    if (strstr(type_url, ".cluster.v3.") || strstr(type_url, ".endpoint.v3."))
        return !strcmp(kind, "Upstream") || !strcmp(kind, "UpstreamGroup");
    if (strstr(type_url, ".listener.v3."))
        return !strcmp(kind, "Gateway");
    if (strstr(type_url, ".tls.v3.Secret"))
        return !strcmp(kind, "Secret");
    return false;
}

static bool proxy_concerns(const proxy_t *p, const entry *e)
{
    switch (p->mode) {
    case NARROW_NAMES:
        for (size_t i = 0; i < p->n_names; i++)
            if (!strcmp(p->names[i], e->key))
                return true;
        return false;
    case NARROW_KINDS: return kind_matches_type(e->id.kind, nz(p->type));
    default: return true;
    }
}

static bool set_nack(slot *s, const char *error, const char *type, const char *version, const char *node,
                     int64_t t)
{
    if (s->nacked && s->nack_time_ns >= t)
        return false;
    slot_clear_nack(s);
    s->nacked = true;
    s->nack_error = xstrdup(error);
    s->nack_type = xstrdup(type);
    s->nack_version = xstrdup(version);
    s->nack_node = xstrdup(node);
    s->nack_time_ns = t;
    return true;
}

/* Translator slots of a proxy whose report is not newer than t. */
static slot *nackable_slot(entry *e, const char *proxy_id, int64_t t)
{
    slot *s = find_slot(e, SRC_TRANSLATOR, proxy_id);
    if (!s || s->time_ns > t)
        return NULL;
    return s;
}

static sl_status proxy_nack(rep_model *m, rep_result *res, const Sluice__V1__Report *r, const char *pid,
                            int64_t t)
{
    proxy_t *p = get_proxy(m, pid);
    if (!p)
        return SL_ERR_NOMEM;
    if (p->time_ns > t) {
        *res = REP_STALE;
        return SL_OK;
    }
    if (p->nacked && p->time_ns == t && !strcmp(nz(p->error), nz(r->reason))) {
        *res = REP_DUPLICATE;
        return SL_OK;
    }
    proxy_clear(p);
    p->nacked = true;
    p->time_ns = t;
    p->error = xstrdup(r->reason);
    p->type = xstrdup(r->type_url);
    p->version = xstrdup(r->xds_version);
    p->node = xstrdup(r->node_id);

    /* Which resources: those named (Envoy resource names in the report,
     * or their Envoy names in the error), else those of the rejected
     * type, else every resource on the proxy. */
    size_t n_names = 0, n_kind = 0, n_all = 0;
    char en[600];
    for (size_t i = 0; i < m->cap; i++)
        for (entry *e = m->tab[i]; e; e = e->next) {
            if (!nackable_slot(e, pid, t))
                continue;
            n_all++;
            if (kind_matches_type(e->id.kind, nz(r->type_url)))
                n_kind++;
            bool named = false;
            if (envoy_name_of(en, sizeof en, e)) {
                for (size_t j = 0; j < r->n_envoy_resources && !named; j++)
                    named = !strcmp(nz(r->envoy_resources[j]), en);
                named = named || mentions(nz(r->reason), en);
            }
            if (named) {
                if (SL_VEC_RESERVE(p->names, p->cap_names, p->n_names + 1) != SL_OK ||
                    !(p->names[p->n_names] = strdup(e->key)))
                    return SL_ERR_NOMEM;
                p->n_names++;
                n_names++;
            }
        }
    p->mode = n_names ? NARROW_NAMES : n_kind ? NARROW_KINDS : NARROW_ALL;
    *res = n_all ? REP_APPLIED : REP_IGNORED;
    for (size_t i = 0; i < m->cap; i++)
        for (entry *e = m->tab[i]; e; e = e->next) {
            slot *s = nackable_slot(e, pid, t);
            if (s && proxy_concerns(p, e) &&
                set_nack(s, r->reason, r->type_url, r->xds_version, r->node_id, t))
                mark_dirty(m, e);
        }
    return SL_OK;
}

static void proxy_ack(rep_model *m, rep_result *res, const char *pid, int64_t t)
{
    proxy_t *p = get_proxy(m, pid);
    if (!p)
        return;
    if (p->time_ns > t) {
        *res = REP_STALE;
        return;
    }
    proxy_clear(p);
    p->time_ns = t;
    for (size_t i = 0; i < m->cap; i++)
        for (entry *e = m->tab[i]; e; e = e->next) {
            slot *s = find_slot(e, SRC_TRANSLATOR, pid);
            if (s && s->nacked && s->nack_time_ns <= t) {
                slot_clear_nack(s);
                mark_dirty(m, e);
            }
        }
}

static int64_t report_time(const Sluice__V1__Report *r, int64_t recv_ns)
{
    if (r->time && (r->time->seconds || r->time->nanos))
        return r->time->seconds * 1000000000LL + r->time->nanos;
    return recv_ns;
}

static sl_status pack_parts(uint8_t **out, size_t *len, const Sluice__V1__Report *r)
{
    *out = NULL;
    *len = 0;
    if (!r->n_subresource_statuses)
        return SL_OK;
    Sluice__V1__Status st = SLUICE__V1__STATUS__INIT;
    Sluice__V1__Status__SubresourceStatusesEntry *ents = calloc(r->n_subresource_statuses, sizeof *ents);
    Sluice__V1__Status__SubresourceStatusesEntry **ptrs = calloc(r->n_subresource_statuses, sizeof *ptrs);
    sl_status rc = SL_ERR_NOMEM;
    if (!ents || !ptrs)
        goto out;
    for (size_t i = 0; i < r->n_subresource_statuses; i++) {
        sluice__v1__status__subresource_statuses_entry__init(&ents[i]);
        ents[i].key = r->subresource_statuses[i]->key;
        ents[i].value = r->subresource_statuses[i]->value;
        ptrs[i] = &ents[i];
    }
    st.n_subresource_statuses = r->n_subresource_statuses;
    st.subresource_statuses = ptrs;
    *len = sluice__v1__status__get_packed_size(&st);
    if (!(*out = malloc(*len ? *len : 1)))
        goto out;
    sluice__v1__status__pack(&st, *out);
    rc = SL_OK;
out:
    free(ents);
    free(ptrs);
    return rc;
}

static bool same_content(const slot *s, const Sluice__V1__Report *r, const uint8_t *parts, size_t parts_len)
{
    if (s->state != r->state || strcmp(nz(s->reason), nz(r->reason)) || s->n_warnings != r->n_warnings ||
        strcmp(nz(s->xds_version), nz(r->xds_version)) || s->parts_len != parts_len ||
        (parts_len && memcmp(s->parts, parts, parts_len)))
        return false;
    for (size_t i = 0; i < r->n_warnings; i++)
        if (strcmp(s->warnings[i], nz(r->warnings[i])))
            return false;
    return true;
}

/* The sluice_config revision a config-watcher report is about. */
static uint64_t report_config_rev(const Sluice__V1__Report *r)
{
    return strtoull(nz(r->resource_version), NULL, 10);
}

static sl_status slot_set_report(slot *s, const Sluice__V1__Report *r, int64_t t, uint8_t *parts, size_t parts_len)
{
    slot_clear_report(s);
    s->state = r->state;
    s->config_rev = strcmp(s->source, SRC_CONFIG) ? 0 : report_config_rev(r);
    s->generation = r->generation;
    s->time_ns = t;
    s->parts = parts;
    s->parts_len = parts_len;
    if (!(s->reason = xstrdup(r->reason)) || !(s->xds_version = xstrdup(r->xds_version)))
        return SL_ERR_NOMEM;
    if (r->n_warnings) {
        if (!(s->warnings = calloc(r->n_warnings, sizeof *s->warnings)))
            return SL_ERR_NOMEM;
        for (size_t i = 0; i < r->n_warnings; i++) {
            if (!(s->warnings[i] = xstrdup(r->warnings[i])))
                return SL_ERR_NOMEM;
            s->n_warnings++;
        }
    }
    return SL_OK;
}

/* A report from the translator (or any source but the xds-server). */
/* Drops source's slots made at or before t (a withdrawal). True when one
 * was dropped. */
static bool drop_withdrawn(entry *e, const char *source, int64_t t)
{
    bool dropped = false;
    for (size_t i = e->n_slots; i-- > 0;)
        if (!strcmp(e->slots[i].source, source) && e->slots[i].time_ns <= t) {
            drop_slot(e, i);
            dropped = true;
        }
    return dropped;
}

/* Drops the config-watcher slots about a sluice_config revision older than
 * rev, the one stored now. */
static void drop_obsolete_config(entry *e, uint64_t rev)
{
    for (size_t i = e->n_slots; i-- > 0;)
        if (!strcmp(e->slots[i].source, SRC_CONFIG) && e->slots[i].config_rev < rev)
            drop_slot(e, i);
}

static sl_status source_report(rep_model *m, rep_result *res, entry *e, const char *source,
                               const Sluice__V1__Report *r, int64_t t)
{
    const char *px = nz(r->proxy);
    if (r->withdrawn) {
        *res = drop_withdrawn(e, source, t) ? REP_APPLIED : REP_IGNORED;
        if (*res == REP_APPLIED)
            mark_dirty(m, e);
        return SL_OK;
    }
    if (!strcmp(source, SRC_CONFIG) && e->in_config && report_config_rev(r) < e->config_rev) {
        *res = REP_STALE; /* about a revision a newer one replaced */
        return SL_OK;
    }
    if (r->generation < max_generation(e, source)) {
        *res = REP_STALE;
        return SL_OK;
    }
    uint8_t *parts;
    size_t parts_len;
    sl_status rc = pack_parts(&parts, &parts_len, r);
    if (rc != SL_OK)
        return rc;
    slot *s = find_slot(e, source, px);
    if (s) {
        int c = order_cmp(r->generation, r->xds_version, t, s->generation, s->xds_version, s->time_ns);
        if (c < 0 || (c == 0 && same_content(s, r, parts, parts_len))) {
            *res = c < 0 ? REP_STALE : REP_DUPLICATE;
            free(parts);
            return SL_OK;
        }
    }
    drop_older_generations(e, source, r->generation);
    if (!(s = find_slot(e, source, px)) && !(s = add_slot(e, source, px))) {
        free(parts);
        return SL_ERR_NOMEM;
    }
    bool keep_nack = false;
    if ((rc = slot_set_report(s, r, t, parts, parts_len)) != SL_OK)
        return rc;
    /* A new translation replaces the NACK overlay, unless the proxy's
     * NACK is not older than it (the report came late). */
    if (s->nacked && s->nack_time_ns >= t)
        keep_nack = true;
    if (!keep_nack)
        slot_clear_nack(s);
    if (!strcmp(source, SRC_TRANSLATOR) && px[0]) {
        for (proxy_t *p = m->proxies; p; p = p->next)
            if (p->nacked && !strcmp(p->id, px) && p->time_ns >= t && proxy_concerns(p, e))
                set_nack(s, p->error, p->type, p->version, p->node, p->time_ns);
    }
    mark_dirty(m, e);
    *res = REP_APPLIED;
    return SL_OK;
}

/* An xds-server report on a resource (not on a Proxy). */
static sl_status xds_resource_report(rep_model *m, rep_result *res, entry *e, const Sluice__V1__Report *r,
                                     int64_t t)
{
    const char *px = nz(r->proxy);
    bool any = false, applied = false;
    if (px[0] && !find_slot(e, SRC_TRANSLATOR, px) && r->state == SLUICE__V1__STATUS__STATE__Rejected) {
        /* A placeholder of the proxy's current translation: of the newest
         * generation known, or a reload would drop it as older. */
        int64_t gen = max_generation(e, SRC_TRANSLATOR);
        slot *s = add_slot(e, SRC_TRANSLATOR, px);
        if (!s)
            return SL_ERR_NOMEM;
        s->time_ns = 0;
        s->generation = gen;
    }
    for (size_t i = 0; i < e->n_slots; i++) {
        slot *s = &e->slots[i];
        if (strcmp(s->source, SRC_TRANSLATOR) || (px[0] && strcmp(s->proxy, px)))
            continue;
        any = true;
        if (r->state == SLUICE__V1__STATUS__STATE__Rejected) {
            if (s->time_ns <= t && set_nack(s, r->reason, r->type_url, r->xds_version, r->node_id, t))
                applied = true;
        } else if (s->nacked && s->nack_time_ns <= t) {
            slot_clear_nack(s);
            applied = true;
        }
    }
    if (applied)
        mark_dirty(m, e);
    *res = applied ? REP_APPLIED : any ? REP_STALE : REP_IGNORED;
    return SL_OK;
}

sl_status rep_model_report(rep_model *m, rep_result *res, const Sluice__V1__Report *r, const char *src,
                           const char *key, int64_t recv_ns)
{
    char kbuf[SL_RESOURCE_KEY_MAX];
    const char *source = r->source && r->source[0] ? r->source : src;
    *res = REP_IGNORED;
    if (!source || !source[0])
        return sl_error_set(SL_ERR_INVALID, "report names no source");
    if (r->resource && r->resource->kind && r->resource->kind[0]) {
        if (sl_resource_key(kbuf, sizeof kbuf, r->resource->kind, r->resource->namespace_, r->resource->name) !=
            SL_OK)
            return SL_ERR_INVALID;
        key = kbuf;
    } else if (!key) {
        return sl_error_set(SL_ERR_INVALID, "report names no resource");
    }
    if (r->state < SLUICE__V1__STATUS__STATE__Pending || r->state > SLUICE__V1__STATUS__STATE__Warning)
        return sl_error_set(SL_ERR_INVALID, "report has unknown state %d", (int)r->state);
    int64_t t = report_time(r, recv_ns);
    entry *e = NULL;
    if (r->withdrawn && !(e = find(m, key)))
        return SL_OK; /* nothing to take back */
    sl_status rc = r->withdrawn ? SL_OK : get_entry(&e, m, key);
    if (rc != SL_OK)
        return rc == SL_ERR_INVALID ? sl_error_set(rc, "bad resource key %s", key) : rc;

    if (strcmp(source, SRC_XDS) != 0)
        return source_report(m, res, e, source, r, t);
    if (strcmp(e->id.kind, REP_KIND_PROXY) != 0)
        return xds_resource_report(m, res, e, r, t);

    /* A report on a proxy: the proxy's own status, and its NACK (or ACK)
     * overlaid on the resources it serves. */
    char pid[SL_RESOURCE_KEY_MAX];
    if (r->proxy && r->proxy[0])
        snprintf(pid, sizeof pid, "%s", r->proxy);
    else
        snprintf(pid, sizeof pid, "%s~%s", e->id.ns, e->id.name);
    rep_result own;
    Sluice__V1__Report copy = *r;
    copy.proxy = "";
    copy.generation = 0;
    if ((rc = source_report(m, &own, e, SRC_XDS, &copy, t)) != SL_OK)
        return rc;
    if (r->state == SLUICE__V1__STATUS__STATE__Rejected) {
        if ((rc = proxy_nack(m, res, r, pid, t)) != SL_OK)
            return rc;
    } else {
        *res = REP_APPLIED;
        proxy_ack(m, res, pid, t);
    }
    if (*res == REP_IGNORED || *res == REP_DUPLICATE)
        *res = own;
    return SL_OK;
}

/* ---- rendering ---------------------------------------------------------- */

typedef struct kvs {
    const char *k[16];
    const char *v[16];
    size_t n;
} kvs;

static void kv_add(kvs *d, const char *k, const char *v)
{
    if (v && v[0] && d->n < 16) {
        d->k[d->n] = k;
        d->v[d->n] = v;
        d->n++;
    }
}

static Google__Protobuf__Struct *make_struct(sl_arena *a, kvs *d)
{
    /* keys sorted, for deterministic bytes */
    for (size_t i = 1; i < d->n; i++)
        for (size_t j = i; j > 0 && strcmp(d->k[j - 1], d->k[j]) > 0; j--) {
            const char *tk = d->k[j], *tv = d->v[j];
            d->k[j] = d->k[j - 1];
            d->v[j] = d->v[j - 1];
            d->k[j - 1] = tk;
            d->v[j - 1] = tv;
        }
    Google__Protobuf__Struct *st = sl_arena_alloc(a, sizeof *st);
    Google__Protobuf__Struct__FieldsEntry **f = sl_arena_alloc(a, (d->n + 1) * sizeof *f);
    if (!st || !f)
        return NULL;
    google__protobuf__struct__init(st);
    for (size_t i = 0; i < d->n; i++) {
        Google__Protobuf__Struct__FieldsEntry *fe = sl_arena_alloc(a, sizeof *fe);
        Google__Protobuf__Value *v = sl_arena_alloc(a, sizeof *v);
        if (!fe || !v)
            return NULL;
        google__protobuf__struct__fields_entry__init(fe);
        google__protobuf__value__init(v);
        v->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE;
        v->string_value = (char *)d->v[i];
        fe->key = (char *)d->k[i];
        fe->value = v;
        f[i] = fe;
    }
    st->n_fields = d->n;
    st->fields = f;
    return st;
}

static const char *struct_get(const Google__Protobuf__Struct *st, const char *k)
{
    if (!st)
        return NULL;
    for (size_t i = 0; i < st->n_fields; i++)
        if (st->fields[i] && st->fields[i]->key && !strcmp(st->fields[i]->key, k) && st->fields[i]->value &&
            st->fields[i]->value->kind_case == GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE)
            return st->fields[i]->value->string_value;
    return NULL;
}

static const char *type_short(const char *url)
{
    const char *d = strrchr(nz(url), '.');
    return d ? d + 1 : nz(url);
}

static char *slot_reason(sl_arena *a, const slot *s)
{
    if (!s->nacked)
        return (char *)nz(s->reason);
    char buf[2048];
    snprintf(buf, sizeof buf, "rejected by proxy %s (%s%s%s): %s", s->proxy[0] ? s->proxy : "(all)",
             type_short(s->nack_type), s->nack_version && s->nack_version[0] ? " version " : "",
             nz(s->nack_version), nz(s->nack_error));
    return sl_arena_strdup(a, buf);
}

static Sluice__V1__Status__State slot_state(const slot *s)
{
    return s->nacked ? SLUICE__V1__STATUS__STATE__Rejected : s->state;
}

/* The status of one slot; bookkeeping in details when with_details. */
static Sluice__V1__Status *render_slot(sl_arena *a, const slot *s, bool with_details)
{
    Sluice__V1__Status *st = sl_arena_alloc(a, sizeof *st);
    if (!st)
        return NULL;
    sluice__v1__status__init(st);
    st->state = slot_state(s);
    st->reason = slot_reason(a, s);
    st->reported_by = (char *)(s->nacked ? SRC_XDS : s->source);
    st->observed_generation = s->generation;
    st->n_messages = s->n_warnings;
    st->messages = s->warnings;
    if (s->parts_len) {
        ProtobufCMessage *pm;
        if (sl_arena_unpack(&pm, a, &sluice__v1__status__descriptor, s->parts, s->parts_len) == SL_OK) {
            Sluice__V1__Status *ps = (Sluice__V1__Status *)pm;
            st->n_subresource_statuses = ps->n_subresource_statuses;
            st->subresource_statuses = ps->subresource_statuses;
        }
    }
    if (with_details) {
        char *t = sl_arena_alloc(a, 24), *nt = sl_arena_alloc(a, 24);
        if (!t || !nt)
            return NULL;
        snprintf(t, 24, "%" PRId64, s->time_ns);
        snprintf(nt, 24, "%" PRId64, s->nack_time_ns);
        kvs d = {0};
        kv_add(&d, "source", s->source);
        kv_add(&d, "proxy", s->proxy);
        kv_add(&d, "time", t);
        kv_add(&d, "xdsVersion", s->xds_version);
        kv_add(&d, "sourceState", state_name(s->state));
        kv_add(&d, "sourceReason", s->reason);
        if (!strcmp(s->source, SRC_CONFIG)) {
            char *cr = sl_arena_alloc(a, 24);
            if (!cr)
                return NULL;
            snprintf(cr, 24, "%" PRIu64, s->config_rev);
            kv_add(&d, "configRevision", cr);
        }
        if (s->nacked) {
            kv_add(&d, "nackError", s->nack_error);
            kv_add(&d, "nackType", s->nack_type);
            kv_add(&d, "nackVersion", s->nack_version);
            kv_add(&d, "nackNode", s->nack_node);
            kv_add(&d, "nackTime", nt);
        }
        if (!(st->details = make_struct(a, &d)))
            return NULL;
    }
    return st;
}

static Sluice__V1__Status *render_entry(sl_arena *a, const entry *e, bool with_details)
{
    if (e->n_slots == 1 && !e->slots[0].proxy[0])
        return render_slot(a, &e->slots[0], with_details);
    Sluice__V1__Status *st = sl_arena_alloc(a, sizeof *st);
    if (!st)
        return NULL;
    sluice__v1__status__init(st);
    if (e->n_slots == 0) {
        st->reported_by = SRC_REPORTER;
        st->reason = "waiting for the translator";
        return st;
    }
    Sluice__V1__Status__SubresourceStatusesEntry **subs = sl_arena_alloc(a, e->n_slots * sizeof *subs);
    char **msgs = NULL;
    size_t n_msgs = 0, total_w = 0;
    for (size_t i = 0; i < e->n_slots; i++)
        total_w += e->slots[i].n_warnings;
    if (total_w && !(msgs = sl_arena_alloc(a, total_w * sizeof *msgs)))
        return NULL;
    if (!subs)
        return NULL;
    int worst = -1;
    for (size_t i = 0; i < e->n_slots; i++) {
        const slot *s = &e->slots[i];
        Sluice__V1__Status__SubresourceStatusesEntry *se = sl_arena_alloc(a, sizeof *se);
        char label[512];
        if (!se)
            return NULL;
        sluice__v1__status__subresource_statuses_entry__init(se);
        slot_label(label, sizeof label, s);
        se->key = sl_arena_strdup(a, label);
        if (!se->key || !(se->value = render_slot(a, s, with_details)))
            return NULL;
        subs[i] = se;
        int rk = rank(slot_state(s));
        if (rk > worst) {
            worst = rk;
            st->state = slot_state(s);
            st->reported_by = se->value->reported_by;
        }
        if (s->generation > st->observed_generation)
            st->observed_generation = s->generation;
        for (size_t w = 0; w < s->n_warnings; w++) {
            bool dup = false;
            for (size_t k = 0; k < n_msgs && !dup; k++)
                dup = !strcmp(msgs[k], s->warnings[w]);
            if (!dup)
                msgs[n_msgs++] = s->warnings[w];
        }
    }
    st->n_subresource_statuses = e->n_slots;
    st->subresource_statuses = subs;
    st->n_messages = n_msgs;
    st->messages = msgs;
    /* reason: those of the slots in the worst state */
    size_t n_bad = 0;
    for (size_t i = 0; i < e->n_slots; i++)
        if (rank(subs[i]->value->state) == worst && subs[i]->value->reason[0])
            n_bad++;
    if (n_bad == 1 || (n_bad > 1 && worst != 0)) {
        size_t cap = 1;
        for (size_t i = 0; i < e->n_slots; i++)
            if (rank(subs[i]->value->state) == worst)
                cap += strlen(subs[i]->key) + strlen(subs[i]->value->reason) + 4;
        char *r = sl_arena_alloc(a, cap);
        if (!r)
            return NULL;
        r[0] = 0;
        size_t off = 0;
        for (size_t i = 0; i < e->n_slots; i++) {
            if (rank(subs[i]->value->state) != worst || !subs[i]->value->reason[0])
                continue;
            if (n_bad == 1)
                off += (size_t)snprintf(r + off, cap - off, "%s", subs[i]->value->reason);
            else
                off += (size_t)snprintf(r + off, cap - off, "%s%s: %s", off ? "; " : "", subs[i]->key,
                                        subs[i]->value->reason);
        }
        st->reason = r;
    }
    return st;
}

static sl_status pack_alloc(uint8_t **out, size_t *len, const Sluice__V1__Status *st)
{
    *len = sluice__v1__status__get_packed_size(st);
    if (!(*out = malloc(*len ? *len : 1)))
        return SL_ERR_NOMEM;
    sluice__v1__status__pack(st, *out);
    return SL_OK;
}

static void strip_details(Sluice__V1__Status *st)
{
    st->details = NULL;
    for (size_t i = 0; i < st->n_subresource_statuses; i++)
        if (st->subresource_statuses[i] && st->subresource_statuses[i]->value)
            strip_details(st->subresource_statuses[i]->value);
}

sl_status rep_model_render(rep_model *m, uint8_t **out, size_t *len, bool *changed, const char *key)
{
    entry *e = find(m, key);
    *out = NULL;
    *len = 0;
    *changed = false;
    if (!e)
        return SL_ERR_NOT_FOUND;
    sl_arena a;
    sl_arena_init(&a, 0);
    sl_status rc = SL_ERR_NOMEM;
    uint8_t *pub = NULL;
    size_t pub_len;
    Sluice__V1__Status *st = render_entry(&a, e, true);
    if (!st || (rc = pack_alloc(out, len, st)) != SL_OK)
        goto out;
    strip_details(st);
    if ((rc = pack_alloc(&pub, &pub_len, st)) != SL_OK)
        goto out;
    *changed = !e->has_pub || e->pub_len != pub_len || memcmp(e->pub, pub, pub_len) != 0;
    free(e->pending);
    e->pending = pub;
    e->pending_len = pub_len;
    pub = NULL;
out:
    if (rc != SL_OK) {
        free(*out);
        *out = NULL;
    }
    free(pub);
    sl_arena_deinit(&a);
    return rc;
}

void rep_model_committed(rep_model *m, const char *key, uint64_t rev)
{
    entry *e = find(m, key);
    if (!e)
        return;
    e->rev = rev;
    free(e->pub);
    e->pub = NULL;
    e->pub_len = 0;
    e->has_pub = false;
    if (rev && e->pending) {
        e->pub = e->pending;
        e->pub_len = e->pending_len;
        e->has_pub = true;
        e->pending = NULL;
        e->pending_len = 0;
    }
}

uint64_t rep_model_revision(rep_model *m, const char *key)
{
    entry *e = find(m, key);
    return e ? e->rev : 0;
}

/* ---- loading ------------------------------------------------------------ */

static sl_status load_slot(rep_model *m, entry *e, const Sluice__V1__Status *st)
{
    const Google__Protobuf__Struct *d = st->details;
    const char *source = struct_get(d, "source");
    if (!source || !source[0])
        return SL_OK; /* not written by a reporter: nothing to merge */
    const char *px = nz(struct_get(d, "proxy"));
    int64_t t = strtoll(nz(struct_get(d, "time")), NULL, 10);
    const char *xv = nz(struct_get(d, "xdsVersion"));
    if (st->observed_generation < max_generation(e, source))
        return SL_OK;
    slot *s = find_slot(e, source, px);
    if (s && order_cmp(st->observed_generation, xv, t, s->generation, s->xds_version, s->time_ns) < 0)
        return SL_OK;
    bool newer_nack = false;
    const char *nack_err = struct_get(d, "nackError");
    /* nackTime is written with every NACK; nackError only when the client
     * gave a message (an empty error_detail still rejects). */
    bool has_nack = nack_err || struct_get(d, "nackTime");
    int64_t nt = strtoll(nz(struct_get(d, "nackTime")), NULL, 10);
    if (s && !has_nack && s->nacked && s->nack_time_ns >= t)
        newer_nack = true; /* ours is newer than their translation: keep it */
    drop_older_generations(e, source, st->observed_generation);
    if (!(s = find_slot(e, source, px)) && !(s = add_slot(e, source, px)))
        return SL_ERR_NOMEM;

    Sluice__V1__Report r = SLUICE__V1__REPORT__INIT;
    Sluice__V1__Status parts = SLUICE__V1__STATUS__INIT;
    r.state = state_parse(nz(struct_get(d, "sourceState")));
    r.reason = (char *)nz(struct_get(d, "sourceReason"));
    r.generation = st->observed_generation;
    r.xds_version = (char *)xv;
    r.resource_version = (char *)nz(struct_get(d, "configRevision"));
    r.n_warnings = st->n_messages;
    r.warnings = st->messages;
    uint8_t *pb = NULL;
    size_t pl = 0;
    if (st->n_subresource_statuses) {
        parts.n_subresource_statuses = st->n_subresource_statuses;
        parts.subresource_statuses = st->subresource_statuses;
        if (pack_alloc(&pb, &pl, &parts) != SL_OK)
            return SL_ERR_NOMEM;
    }
    sl_status rc = slot_set_report(s, &r, t, pb, pl);
    if (rc != SL_OK)
        return rc;
    if (has_nack) {
        if (!s->nacked || s->nack_time_ns <= nt)
            set_nack(s, nz(nack_err), struct_get(d, "nackType"), struct_get(d, "nackVersion"),
                     struct_get(d, "nackNode"), nt);
    } else if (!newer_nack) {
        slot_clear_nack(s);
    }
    (void)m;
    return SL_OK;
}

sl_status rep_model_load(rep_model *m, const char *key, const uint8_t *data, size_t len, uint64_t rev)
{
    entry *e;
    sl_status rc = get_entry(&e, m, key);
    if (rc != SL_OK)
        return rc == SL_ERR_INVALID ? sl_error_set(rc, "bad status key %s", key) : rc;
    sl_arena a;
    sl_arena_init(&a, 0);
    ProtobufCMessage *pm;
    if ((rc = sl_arena_unpack(&pm, &a, &sluice__v1__status__descriptor, data, len)) != SL_OK)
        goto out;
    Sluice__V1__Status *st = (Sluice__V1__Status *)pm;
    if (struct_get(st->details, "source")) {
        rc = load_slot(m, e, st);
    } else {
        for (size_t i = 0; i < st->n_subresource_statuses && rc == SL_OK; i++)
            if (st->subresource_statuses[i] && st->subresource_statuses[i]->value)
                rc = load_slot(m, e, st->subresource_statuses[i]->value);
    }
    if (rc != SL_OK)
        goto out;
    /* Rebuild the proxy's NACK from its own status. */
    if (!strcmp(e->id.kind, REP_KIND_PROXY)) {
        slot *s = find_slot(e, SRC_XDS, "");
        char pid[SL_RESOURCE_KEY_MAX];
        snprintf(pid, sizeof pid, "%s~%s", e->id.ns, e->id.name);
        proxy_t *p = get_proxy(m, pid);
        if (s && p && s->time_ns > p->time_ns) {
            proxy_clear(p);
            p->time_ns = s->time_ns;
            if (s->state == SLUICE__V1__STATUS__STATE__Rejected) {
                p->nacked = true;
                p->error = xstrdup(s->reason);
                p->mode = NARROW_ALL;
            }
        }
    }
    strip_details(st);
    free(e->pub);
    e->has_pub = false;
    if ((rc = pack_alloc(&e->pub, &e->pub_len, st)) != SL_OK)
        goto out;
    e->has_pub = true;
    e->rev = rev;
    /* Differs from what we would write (a merge happened)? */
    uint8_t *full;
    size_t fl;
    bool changed;
    if (rep_model_render(m, &full, &fl, &changed, key) == SL_OK) {
        free(full);
        if (changed)
            mark_dirty(m, e);
    }
out:
    sl_arena_deinit(&a);
    return rc;
}

/* ---- config presence ---------------------------------------------------- */

static void remove_entry(rep_model *m, const char *key)
{
    entry **pp = find_ref(m, key);
    entry *e = *pp;
    if (!e)
        return;
    *pp = e->next;
    m->count--;
    entry_free(e);
}

sl_status rep_model_set_config(rep_model *m, const char *key, bool present, uint64_t rev)
{
    if (!present) {
        remove_entry(m, key);
        return SL_OK;
    }
    entry *e;
    sl_status rc = get_entry(&e, m, key);
    if (rc != SL_OK)
        return rc == SL_ERR_INVALID ? sl_error_set(rc, "bad config key %s", key) : rc;
    if (!e->in_config || e->config_rev != rev) {
        e->in_config = true;
        e->config_rev = rev;
        drop_obsolete_config(e, rev);
        mark_dirty(m, e);
    }
    return SL_OK;
}

bool rep_model_publishable(rep_model *m, const char *key)
{
    entry *e = find(m, key);
    if (!e)
        return false;
    if (m->no_gate || !e->config_kind || e->in_config)
        return true;
    /* Not stored: a proposal the config-watcher rejected still has one. */
    for (size_t i = 0; i < e->n_slots; i++)
        if (!strcmp(e->slots[i].source, SRC_CONFIG))
            return true;
    return false;
}

void rep_model_set_gating(rep_model *m, bool on)
{
    m->no_gate = !on;
}

void rep_model_forget(rep_model *m, const char *key)
{
    remove_entry(m, key);
}

bool rep_model_next_dirty(rep_model *m, char *buf, size_t n)
{
    while (m->dirty_head < m->n_dirty) {
        char *k = m->dirty[m->dirty_head++];
        entry *e = find(m, k);
        if (m->dirty_head == m->n_dirty)
            m->dirty_head = m->n_dirty = 0;
        if (e && e->dirty) {
            e->dirty = false;
            snprintf(buf, n, "%s", k);
            free(k);
            return true;
        }
        free(k);
    }
    return false;
}

size_t rep_model_count(rep_model *m)
{
    return m->count;
}

void rep_model_each(rep_model *m, void (*fn)(void *ud, const char *key), void *ud)
{
    for (size_t i = 0; i < m->cap; i++)
        for (entry *e = m->tab[i]; e; e = e->next)
            fn(ud, e->key);
}
