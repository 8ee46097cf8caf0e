/* model_render.c - a resource's sluice.v1.Status built from its slots, with
 * the bookkeeping (in `details`) that model_load.c reads back. */
#include "model_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/arena.h"

/* ---- rendering ---------------------------------------------------------- */

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

static const char *type_short(const char *url)
{
    const char *d = strrchr(rep_nz(url), '.');
    return d ? d + 1 : rep_nz(url);
}

static char *slot_reason(sl_arena *a, const rep_slot *s)
{
    if (!s->nacked)
        return (char *)rep_nz(s->reason);
    char buf[2048];
    snprintf(buf, sizeof buf, "rejected by proxy %s (%s%s%s): %s", s->proxy[0] ? s->proxy : "(all)",
             type_short(s->nack_type), s->nack_version && s->nack_version[0] ? " version " : "",
             rep_nz(s->nack_version), rep_nz(s->nack_error));
    return sl_arena_strdup(a, buf);
}

static Sluice__V1__Status__State slot_state(const rep_slot *s)
{
    return s->nacked ? SLUICE__V1__STATUS__STATE__Rejected : s->state;
}

/* The status of one slot; bookkeeping in details when with_details. */
static Sluice__V1__Status *render_slot(sl_arena *a, const rep_slot *s, bool with_details)
{
    Sluice__V1__Status *st = sl_arena_alloc(a, sizeof *st);
    if (!st)
        return NULL;
    sluice__v1__status__init(st);
    st->state = slot_state(s);
    st->reason = slot_reason(a, s);
    st->reported_by = (char *)(s->nacked ? REP_SRC_XDS : s->source);
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
        if (!strcmp(s->source, REP_SRC_CONFIG)) {
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

static Sluice__V1__Status *render_entry(sl_arena *a, const rep_entry *e, bool with_details)
{
    if (e->n_slots == 1 && !e->slots[0].proxy[0])
        return render_slot(a, &e->slots[0], with_details);
    Sluice__V1__Status *st = sl_arena_alloc(a, sizeof *st);
    if (!st)
        return NULL;
    sluice__v1__status__init(st);
    if (e->n_slots == 0) {
        st->reported_by = REP_SRC_REPORTER;
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
        const rep_slot *s = &e->slots[i];
        Sluice__V1__Status__SubresourceStatusesEntry *se = sl_arena_alloc(a, sizeof *se);
        char label[512];
        if (!se)
            return NULL;
        sluice__v1__status__subresource_statuses_entry__init(se);
        rep_slot_label(label, sizeof label, s);
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

sl_status rep_status_pack(uint8_t **out, size_t *len, const Sluice__V1__Status *st)
{
    *len = sluice__v1__status__get_packed_size(st);
    if (!(*out = malloc(*len ? *len : 1)))
        return SL_ERR_NOMEM;
    sluice__v1__status__pack(st, *out);
    return SL_OK;
}

void rep_status_strip(Sluice__V1__Status *st)
{
    st->details = NULL;
    for (size_t i = 0; i < st->n_subresource_statuses; i++)
        if (st->subresource_statuses[i] && st->subresource_statuses[i]->value)
            rep_status_strip(st->subresource_statuses[i]->value);
}

sl_status rep_model_render(rep_model *m, uint8_t **out, size_t *len, bool *changed, const char *key)
{
    rep_entry *e = rep_entry_find(m, key);
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
    if (!st || (rc = rep_status_pack(out, len, st)) != SL_OK)
        goto out;
    rep_status_strip(st);
    if ((rc = rep_status_pack(&pub, &pub_len, st)) != SL_OK)
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
    rep_entry *e = rep_entry_find(m, key);
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
    rep_entry *e = rep_entry_find(m, key);
    return e ? e->rev : 0;
}
