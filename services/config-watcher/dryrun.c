/* dryrun.c - the apply API's dry run through the translator library. */
#include <stdlib.h>
#include <string.h>

#include "dryrun.h"
#include "sluice/log.h"
#include "sluice/translate.h"

/* Problems about secrets cannot be judged here (see dryrun.h). */
static bool about_missing_secret(const char *msg)
{
    return strstr(msg, "Secret") && (strstr(msg, "not found") || strstr(msg, "does not exist"));
}

/* Adds each "; "-joined error of reason to d. */
static void add_errors(sl_diag *d, const sl_cfg_res *r, const char *reason)
{
    char *copy = strdup(reason ? reason : ""), *p, *next;
    if (!copy)
        return;
    for (p = copy; p && *p; p = next) {
        char *sep = strstr(p, "; ");
        next = sep ? sep + 2 : NULL;
        if (sep)
            *sep = '\0';
        sl_diag_add(d, about_missing_secret(p) ? SL_DIAG_WARNING : SL_DIAG_ERROR, r->file, r->line, 0, NULL,
                    "%s", p);
    }
    free(copy);
}

typedef struct load_ctx {
    sl_tr_store *st;
    uint64_t max_rev;
} load_ctx;

static void load_one(const char *key, const uint8_t *val, size_t len, uint64_t rev, void *ud)
{
    load_ctx *lc = ud;
    sl_resource_id id;
    const sl_kind *k;
    if (sl_resource_key_parse(&id, key, true) != SL_OK || !(k = sl_kind_by_name(id.kind)))
        return;
    if (sl_tr_store_put_packed(lc->st, k, val, len, rev) != SL_OK)
        return; /* the watcher reports undecodable values itself */
    if (rev > lc->max_rev)
        lc->max_rev = rev;
}

void cw_translator_dry_run(cw *w, sl_cfg_set *set, void *ud)
{
    sl_tr_store *st = NULL;
    sl_tr_result *res = NULL;
    sl_tr_options o = {0};
    uint64_t max_rev = 0;
    size_t proposed = 0;
    (void)ud;

    for (size_t i = 0; i < set->n; i++)
        proposed += set->items[i].msg && set->items[i].kind && sl_diag_errors(&set->items[i].diag) == 0;
    if (!proposed)
        return;
    if (sl_tr_store_new(&st) != SL_OK)
        goto fail;
    /* the stored configuration */
    {
        load_ctx lc = {st, 0};
        cw_cache_foreach(w, load_one, &lc);
        max_rev = lc.max_rev;
    }
    /* the proposed resources replace theirs, as the newest (they lose a
     * conflict with what is stored, as they would once written) */
    for (size_t i = 0; i < set->n; i++) {
        sl_cfg_res *r = &set->items[i];
        size_t len;
        uint8_t *buf;
        if (!r->msg || !r->kind || sl_diag_errors(&r->diag))
            continue;
        len = protobuf_c_message_get_packed_size(r->msg);
        if (!(buf = malloc(len ? len : 1)))
            goto fail;
        protobuf_c_message_pack(r->msg, buf);
        if (sl_tr_store_put_packed(st, r->kind, buf, len, max_rev + 1 + i) != SL_OK)
            sl_diag_add(&r->diag, SL_DIAG_ERROR, r->file, r->line, 0, NULL, "the translator cannot read it: %s",
                        sl_error_msg());
        free(buf);
    }
    o.dry_run = true;
    if (sl_tr_translate(&res, st, &o) != SL_OK)
        goto fail;
    for (size_t i = 0; i < set->n; i++) {
        sl_cfg_res *r = &set->items[i];
        const sl_tr_report *rep;
        if (!r->msg || !r->kind || sl_diag_errors(&r->diag))
            continue;
        if (!(rep = sl_tr_result_report(res, r->kind->kind, r->ns, r->name)))
            continue; /* a kind the translator does not judge (Secret, EndpointSet) */
        if (rep->state == SLUICE__V1__STATUS__STATE__Rejected)
            add_errors(&r->diag, r, rep->reason);
        for (size_t j = 0; j < rep->n_warnings; j++)
            sl_diag_add(&r->diag, SL_DIAG_WARNING, r->file, r->line, 0, NULL, "%s", rep->warnings[j]);
    }
    goto out;
fail:
    /* the apply goes on without the dry run rather than refusing everything */
    sl_log_warn("config-watcher", "dry-run translation failed; applying without it", "err=%s",
                sl_log_q(sl_error_msg()));
out:
    sl_tr_result_free(res);
    sl_tr_store_free(st);
}
