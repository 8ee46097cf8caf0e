/* model.c - the reporter's state: resources and their slots, proxies, the
 * dirty queue, config presence. See sluice/report_model.h. */
#include "model_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/kinds.h"
#include "sluice/vec.h"

/* ---- small helpers ------------------------------------------------------ */

static void xfree(char **p)
{
    free(*p);
    *p = NULL;
}

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ULL;
    return h;
}

int rep_version_cmp(const char *a, const char *b)
{
    a = rep_nz(a);
    b = rep_nz(b);
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

void rep_slot_clear_nack(rep_slot *s)
{
    s->nacked = false;
    xfree(&s->nack_error);
    xfree(&s->nack_type);
    xfree(&s->nack_version);
    xfree(&s->nack_node);
    s->nack_time_ns = 0;
}

static void slot_clear_report(rep_slot *s)
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

static void slot_deinit(rep_slot *s)
{
    slot_clear_report(s);
    rep_slot_clear_nack(s);
    xfree(&s->source);
    xfree(&s->proxy);
}

/* The subresource key a slot is shown under. */
void rep_slot_label(char *buf, size_t n, const rep_slot *s)
{
    if (!strcmp(s->source, REP_SRC_TRANSLATOR))
        snprintf(buf, n, "%s", s->proxy[0] ? s->proxy : "*");
    else if (s->proxy[0])
        snprintf(buf, n, "%s:%s", s->source, s->proxy);
    else
        snprintf(buf, n, "%s", s->source);
}

/* Orders two reports of one slot: generation, xds revision, time. */
int rep_order_cmp(int64_t ga, const char *va, int64_t ta, int64_t gb, const char *vb, int64_t tb)
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

static rep_entry **find_ref(rep_model *m, const char *key)
{
    rep_entry **pp = &m->tab[hash_str(key) & (m->cap - 1)];
    while (*pp && strcmp((*pp)->key, key) != 0)
        pp = &(*pp)->next;
    return pp;
}

rep_entry *rep_entry_find(rep_model *m, const char *key)
{
    return *find_ref(m, key);
}

static sl_status grow(rep_model *m)
{
    size_t ncap = m->cap * 2;
    rep_entry **nt = calloc(ncap, sizeof *nt);
    if (!nt)
        return SL_ERR_NOMEM;
    for (size_t i = 0; i < m->cap; i++) {
        rep_entry *e = m->tab[i];
        while (e) {
            rep_entry *nx = e->next;
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

sl_status rep_entry_get(rep_entry **out, rep_model *m, const char *key)
{
    rep_entry *e = rep_entry_find(m, key);
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
    rep_entry **pp = find_ref(m, key);
    *pp = e;
    m->count++;
    *out = e;
    return SL_OK;
}

static void entry_free(rep_entry *e)
{
    for (size_t i = 0; i < e->n_slots; i++)
        slot_deinit(&e->slots[i]);
    free(e->slots);
    free(e->pub);
    free(e->pending);
    free(e->key);
    free(e);
}

void rep_mark_dirty(rep_model *m, rep_entry *e)
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

rep_slot *rep_slot_find(rep_entry *e, const char *source, const char *proxy)
{
    for (size_t i = 0; i < e->n_slots; i++)
        if (!strcmp(e->slots[i].source, source) && !strcmp(e->slots[i].proxy, proxy))
            return &e->slots[i];
    return NULL;
}

rep_slot *rep_slot_add(rep_entry *e, const char *source, const char *proxy)
{
    rep_slot *ns = realloc(e->slots, (e->n_slots + 1) * sizeof *ns);
    if (!ns)
        return NULL;
    e->slots = ns;
    rep_slot s = {0};
    s.source = rep_strdup(source);
    s.proxy = rep_strdup(proxy);
    s.state = SLUICE__V1__STATUS__STATE__Pending;
    if (!s.source || !s.proxy) {
        slot_deinit(&s);
        return NULL;
    }
    /* keep sorted by label, so rendering is deterministic */
    char a[512], b[512];
    rep_slot_label(a, sizeof a, &s);
    size_t at = e->n_slots;
    for (size_t i = 0; i < e->n_slots; i++) {
        rep_slot_label(b, sizeof b, &e->slots[i]);
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

void rep_slot_drop(rep_entry *e, size_t i)
{
    slot_deinit(&e->slots[i]);
    memmove(&e->slots[i], &e->slots[i + 1], (e->n_slots - i - 1) * sizeof *e->slots);
    e->n_slots--;
}

int64_t rep_max_generation(const rep_entry *e, const char *source)
{
    int64_t g = 0;
    for (size_t i = 0; i < e->n_slots; i++)
        if (!strcmp(e->slots[i].source, source) && e->slots[i].generation > g)
            g = e->slots[i].generation;
    return g;
}

/* A newer generation of a source replaces all of that source's slots of
 * older generations (the resource may have moved between proxies). */
void rep_drop_older_generations(rep_entry *e, const char *source, int64_t gen)
{
    for (size_t i = e->n_slots; i-- > 0;)
        if (!strcmp(e->slots[i].source, source) && e->slots[i].generation < gen)
            rep_slot_drop(e, i);
}

/* ---- a slot's report and NACK ------------------------------------------- */

bool rep_slot_set_nack(rep_slot *s, const char *error, const char *type, const char *version,
                       const char *node, int64_t t)
{
    if (s->nacked && s->nack_time_ns >= t)
        return false;
    rep_slot_clear_nack(s);
    s->nacked = true;
    s->nack_error = rep_strdup(error);
    s->nack_type = rep_strdup(type);
    s->nack_version = rep_strdup(version);
    s->nack_node = rep_strdup(node);
    s->nack_time_ns = t;
    return true;
}

/* The sluice_config revision a config-watcher report is about. */
uint64_t rep_report_config_rev(const Sluice__V1__Report *r)
{
    return strtoull(rep_nz(r->resource_version), NULL, 10);
}

sl_status rep_slot_set_report(rep_slot *s, const Sluice__V1__Report *r, int64_t t, uint8_t *parts,
                              size_t parts_len)
{
    slot_clear_report(s);
    s->state = r->state;
    s->config_rev = strcmp(s->source, REP_SRC_CONFIG) ? 0 : rep_report_config_rev(r);
    s->generation = r->generation;
    s->time_ns = t;
    s->parts = parts;
    s->parts_len = parts_len;
    if (!(s->reason = rep_strdup(r->reason)) || !(s->xds_version = rep_strdup(r->xds_version)))
        return SL_ERR_NOMEM;
    if (r->n_warnings) {
        if (!(s->warnings = calloc(r->n_warnings, sizeof *s->warnings)))
            return SL_ERR_NOMEM;
        for (size_t i = 0; i < r->n_warnings; i++) {
            if (!(s->warnings[i] = rep_strdup(r->warnings[i])))
                return SL_ERR_NOMEM;
            s->n_warnings++;
        }
    }
    return SL_OK;
}

/* Drops the config-watcher slots about a sluice_config revision older than
 * rev, the one stored now. */
static void drop_obsolete_config(rep_entry *e, uint64_t rev)
{
    for (size_t i = e->n_slots; i-- > 0;)
        if (!strcmp(e->slots[i].source, REP_SRC_CONFIG) && e->slots[i].config_rev < rev)
            rep_slot_drop(e, i);
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

void rep_proxy_clear(rep_proxy *p)
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
        rep_entry *e = m->tab[i];
        while (e) {
            rep_entry *nx = e->next;
            entry_free(e);
            e = nx;
        }
    }
    free(m->tab);
    while (m->proxies) {
        rep_proxy *p = m->proxies;
        m->proxies = p->next;
        rep_proxy_clear(p);
        free(p->id);
        free(p);
    }
    for (size_t i = m->dirty_head; i < m->n_dirty; i++)
        free(m->dirty[i]);
    free(m->dirty);
    free(m);
}

rep_proxy *rep_proxy_get(rep_model *m, const char *id)
{
    for (rep_proxy *p = m->proxies; p; p = p->next)
        if (!strcmp(p->id, id))
            return p;
    rep_proxy *p = calloc(1, sizeof *p);
    if (!p || !(p->id = strdup(id))) {
        free(p);
        return NULL;
    }
    p->next = m->proxies;
    m->proxies = p;
    return p;
}

/* ---- config presence ---------------------------------------------------- */

static void remove_entry(rep_model *m, const char *key)
{
    rep_entry **pp = find_ref(m, key);
    rep_entry *e = *pp;
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
    rep_entry *e;
    sl_status rc = rep_entry_get(&e, m, key);
    if (rc != SL_OK)
        return rc == SL_ERR_INVALID ? sl_error_set(rc, "bad config key %s", key) : rc;
    if (!e->in_config || e->config_rev != rev) {
        e->in_config = true;
        e->config_rev = rev;
        drop_obsolete_config(e, rev);
        rep_mark_dirty(m, e);
    }
    return SL_OK;
}

bool rep_model_publishable(rep_model *m, const char *key)
{
    rep_entry *e = rep_entry_find(m, key);
    if (!e)
        return false;
    if (m->no_gate || !e->config_kind || e->in_config)
        return true;
    /* Not stored: a proposal the config-watcher rejected still has one. */
    for (size_t i = 0; i < e->n_slots; i++)
        if (!strcmp(e->slots[i].source, REP_SRC_CONFIG))
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
        rep_entry *e = rep_entry_find(m, k);
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
        for (rep_entry *e = m->tab[i]; e; e = e->next)
            fn(ud, e->key);
}
