/* model_load.c - the model rebuilt from stored statuses: each slot a status
 * carries in its bookkeeping is merged unless ours is newer. */
#include "model_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/arena.h"

/* ---- loading ------------------------------------------------------------ */

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

static sl_status load_slot(rep_model *m, rep_entry *e, const Sluice__V1__Status *st)
{
    const Google__Protobuf__Struct *d = st->details;
    const char *source = struct_get(d, "source");
    if (!source || !source[0])
        return SL_OK; /* not written by a reporter: nothing to merge */
    const char *px = rep_nz(struct_get(d, "proxy"));
    int64_t t = strtoll(rep_nz(struct_get(d, "time")), NULL, 10);
    const char *xv = rep_nz(struct_get(d, "xdsVersion"));
    if (st->observed_generation < rep_max_generation(e, source))
        return SL_OK;
    rep_slot *s = rep_slot_find(e, source, px);
    if (s && rep_order_cmp(st->observed_generation, xv, t, s->generation, s->xds_version, s->time_ns) < 0)
        return SL_OK;
    bool newer_nack = false;
    const char *nack_err = struct_get(d, "nackError");
    /* nackTime is written with every NACK; nackError only when the client
     * gave a message (an empty error_detail still rejects). */
    bool has_nack = nack_err || struct_get(d, "nackTime");
    int64_t nt = strtoll(rep_nz(struct_get(d, "nackTime")), NULL, 10);
    if (s && !has_nack && s->nacked && s->nack_time_ns >= t)
        newer_nack = true; /* ours is newer than their translation: keep it */
    rep_drop_older_generations(e, source, st->observed_generation);
    if (!(s = rep_slot_find(e, source, px)) && !(s = rep_slot_add(e, source, px)))
        return SL_ERR_NOMEM;

    Sluice__V1__Report r = SLUICE__V1__REPORT__INIT;
    Sluice__V1__Status parts = SLUICE__V1__STATUS__INIT;
    r.state = state_parse(rep_nz(struct_get(d, "sourceState")));
    r.reason = (char *)rep_nz(struct_get(d, "sourceReason"));
    r.generation = st->observed_generation;
    r.xds_version = (char *)xv;
    r.resource_version = (char *)rep_nz(struct_get(d, "configRevision"));
    r.n_warnings = st->n_messages;
    r.warnings = st->messages;
    uint8_t *pb = NULL;
    size_t pl = 0;
    if (st->n_subresource_statuses) {
        parts.n_subresource_statuses = st->n_subresource_statuses;
        parts.subresource_statuses = st->subresource_statuses;
        if (rep_status_pack(&pb, &pl, &parts) != SL_OK)
            return SL_ERR_NOMEM;
    }
    sl_status rc = rep_slot_set_report(s, &r, t, pb, pl);
    if (rc != SL_OK)
        return rc;
    if (has_nack) {
        if (!s->nacked || s->nack_time_ns <= nt)
            rep_slot_set_nack(s, rep_nz(nack_err), struct_get(d, "nackType"), struct_get(d, "nackVersion"),
                              struct_get(d, "nackNode"), nt);
    } else if (!newer_nack) {
        rep_slot_clear_nack(s);
    }
    (void)m;
    return SL_OK;
}

sl_status rep_model_load(rep_model *m, const char *key, const uint8_t *data, size_t len, uint64_t rev)
{
    rep_entry *e;
    sl_status rc = rep_entry_get(&e, m, key);
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
        rep_slot *s = rep_slot_find(e, REP_SRC_XDS, "");
        char pid[SL_RESOURCE_KEY_MAX];
        snprintf(pid, sizeof pid, "%s~%s", e->id.ns, e->id.name);
        rep_proxy *p = rep_proxy_get(m, pid);
        if (s && p && s->time_ns > p->time_ns) {
            rep_proxy_clear(p);
            p->time_ns = s->time_ns;
            if (s->state == SLUICE__V1__STATUS__STATE__Rejected) {
                p->nacked = true;
                p->error = rep_strdup(s->reason);
                p->mode = REP_NARROW_ALL;
            }
        }
    }
    rep_status_strip(st);
    free(e->pub);
    e->has_pub = false;
    if ((rc = rep_status_pack(&e->pub, &e->pub_len, st)) != SL_OK)
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
            rep_mark_dirty(m, e);
    }
out:
    sl_arena_deinit(&a);
    return rc;
}
