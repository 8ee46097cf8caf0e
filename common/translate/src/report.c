/* report.c - the end of a translation: reports about every resource (shared
 * while unchanged), validation of what no gateway selected, last good versions. */
#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "translate_internal.h"

/* An Accepted report about e, alone in one allocation, with one reference. */
static tr_rblob *accepted_report(const sl_kind *k, const tr_entry *e)
{
    const Sluice__V1__Metadata *md = sl_kind_metadata(e->msg);
    const char *rv = md && md->resource_version ? md->resource_version : "";
    size_t lns = strlen(e->ns) + 1, lname = strlen(e->name) + 1, lrv = strlen(rv) + 1;
    tr_rblob *b = malloc(sizeof *b + lns + lname + lrv + 1);
    char *p;
    if (!b)
        return NULL;
    memset(b, 0, sizeof *b);
    b->refs = 1;
    b->stamp = e->stamp;
    p = b->strings;
    b->rep.kind = k;
    b->rep.ns = memcpy(p, e->ns, lns);
    b->rep.name = memcpy(p += lns, e->name, lname);
    b->rep.resource_version = memcpy(p += lname, rv, lrv);
    b->rep.reason = p += lrv;
    *p = '\0';
    b->rep.warnings = b->no_warnings;
    b->rep.generation = md ? md->generation : 0;
    b->rep.revision = e->rev;
    b->rep.state = SLUICE__V1__STATUS__STATE__Accepted;
    return b;
}

/* Whether report i of r is borrowed from r's list (the list holds its
 * reference), not r's own. */
bool tr_report_borrowed(const sl_tr_result *r, size_t i)
{
    return r->replist && i < r->replist->n && r->reports[i].shared &&
           r->replist->v[i].shared == r->reports[i].shared;
}

/* Makes res's shared reports the store's list of them (tr_replist): the
 * ones res borrowed from its list get a reference from the new one, its
 * own give theirs to it. Not being able to is no failure. */
static void replist_make(tr_ctx *tx, sl_tr_result *res)
{
    size_t n = res->n_reports;
    tr_replist *l = malloc(sizeof *l + (n + 1) * sizeof l->v[0]);
    uint64_t *stamps = calloc(n + 1, sizeof *stamps);
    if (!l || !stamps) {
        free(l);
        free(stamps);
        return;
    }
    l->refs = 1;
    l->n = n;
    l->layout = tx->store->layout;
    l->stamps = stamps;
    for (size_t i = 0; i < n; i++) {
        const sl_tr_report *r = &res->reports[i];
        if (!r->shared) {
            memset(&l->v[i], 0, sizeof l->v[i]);
            continue;
        }
        l->v[i] = *r;
        stamps[i] = r->shared->stamp;
        if (tr_report_borrowed(res, i))
            tr_rblob_ref(r->shared);
    }
    tr_replist_unref(res->replist);
    res->replist = tr_replist_ref(l);
    tr_replist_unref(tx->store->replist);
    tx->store->replist = l;
}

static sl_status finish_reports(tr_ctx *tx, sl_tr_result *res)
{
    const sl_kind *kinds[] = {tr_kind.gateway, tr_kind.vs,  tr_kind.rt,  tr_kind.upstream,
                              tr_kind.ug,      tr_kind.hgw, tr_kind.tgw, tr_kind.settings};
    size_t total = 0, borrowed = 0;
    tr_replist *kept = tx->store->replist;
    for (size_t k = 0; k < sizeof kinds / sizeof *kinds; k++)
        total += tr_bucket_of(tx, kinds[k])->n;
    /* Flag the few resources something was reported about; the others
     * need no look-up. */
    for (size_t i = 0; i < tx->reports.cap; i++) {
        const tr_rep *r = tx->reports.keys[i] ? tx->reports.vals[i] : NULL;
        int ki = r ? tr_kidx(r->kind) : -1;
        long pos = ki >= 0 ? tr_bucket_find(&tx->store->b[ki], r->ns, r->name) : -1;
        if (pos >= 0)
            tx->flags[ki][pos] |= TR_REPORTED;
    }
    res->reports = calloc(total ? total : 1, sizeof *res->reports);
    if (!res->reports)
        return SL_ERR_NOMEM;
    if (kept && (kept->layout != tx->store->layout || kept->n != total))
        kept = NULL; /* positions moved */
    if (kept)
        res->replist = tr_replist_ref(kept);
    for (size_t k = 0; k < sizeof kinds / sizeof *kinds; k++) {
        tr_bucket *b = tr_bucket_of(tx, kinds[k]);
        for (size_t i = 0; i < b->n; i++) {
            tr_entry *e = &b->v[i];
            const Sluice__V1__Metadata *md;
            static const tr_rep none;
            uint8_t fl = *tr_flag(tx, kinds[k], i);
            const tr_rep *r = (fl & TR_REPORTED) ? tr_rep_find(tx, kinds[k], e->ns, e->name) : NULL;
            sl_tr_report *out = &res->reports[res->n_reports++];
            size_t len = 1;
            if ((!r || (!r->n_errors && !r->n_warnings)) && !(fl & TR_REJECTED)) {
                size_t p = res->n_reports - 1;
                if (kept && kept->stamps[p] == e->stamp) { /* the last list's, borrowed */
                    *out = kept->v[p];
                    borrowed++;
                    continue;
                }
                /* Accepted with nothing to say: the same report as last
                 * time while the resource is the same version, shared */
                if (!e->rcache || e->rcache->stamp != e->stamp) {
                    tr_rblob_unref(e->rcache);
                    if (!(e->rcache = accepted_report(kinds[k], e)))
                        return SL_ERR_NOMEM;
                }
                *out = e->rcache->rep;
                out->shared = tr_rblob_ref(e->rcache);
                continue;
            }
            if (!r)
                r = &none;
            md = sl_kind_metadata(e->msg);
            out->kind = kinds[k];
            out->ns = strdup(e->ns);
            out->name = strdup(e->name);
            out->revision = e->rev;
            out->resource_version = strdup(md && md->resource_version ? md->resource_version : "");
            out->generation = md ? md->generation : 0;
            for (size_t j = 0; j < r->n_errors; j++)
                len += strlen(r->errors[j]) + 2;
            out->reason = malloc(len);
            out->warnings = calloc(r->n_warnings + 1, sizeof *out->warnings);
            if (!out->ns || !out->name || !out->resource_version || !out->reason || !out->warnings)
                return SL_ERR_NOMEM;
            out->reason[0] = '\0';
            for (size_t j = 0; j < r->n_errors; j++) {
                if (j)
                    strcat(out->reason, "; ");
                strcat(out->reason, r->errors[j]);
            }
            for (size_t j = 0; j < r->n_warnings; j++) {
                if (!(out->warnings[j] = strdup(r->warnings[j])))
                    return SL_ERR_NOMEM;
                out->n_warnings = j + 1;
            }
            if (r->n_errors || (fl & TR_REJECTED)) {
                out->state = SLUICE__V1__STATUS__STATE__Rejected;
                out->serving_last_good = (fl & TR_USED_GOOD) != 0;
            } else if (r->n_warnings) {
                out->state = SLUICE__V1__STATUS__STATE__Warning;
            } else {
                out->state = SLUICE__V1__STATUS__STATE__Accepted;
            }
        }
    }
    /* Many not borrowed (or no list): this result's shared reports become
     * the list, which takes over their references. */
    if (!kept || (res->n_reports - borrowed) * 8 > res->n_reports + 64)
        replist_make(tx, res);
    return SL_OK;
}

/* Translates, for validation only, the virtual services and route tables
 * no gateway selected, so that their problems are reported too. */
void tr_validate_unselected(tr_ctx *tx)
{
    Sluice__V1__Gateway g = SLUICE__V1__GATEWAY__INIT;
    Sluice__V1__GatewaySpec gs = SLUICE__V1__GATEWAY_SPEC__INIT;
    tr_gateway gw = {&g, "", "validation", false};
    tr_bucket *b = tr_bucket_of(tx, tr_kind.vs);
    g.spec = &gs;
    tr_reset_out(tx);
    for (size_t i = 0; i < b->n; i++) {
        uint8_t *fl = tr_flag(tx, tr_kind.vs, i);
        tr_cur cur = tr_cur_of(tr_kind.vs, &b->v[i]);
        if (*fl & TR_SEEN)
            continue;
        tx->cur = &cur;
        tr_translate_vs(tx, &gw, (const Sluice__V1__VirtualService *)b->v[i].msg);
        if (cur.errors)
            *fl |= TR_REJECTED;
        if (b->v[i].msg->descriptor && ((const Sluice__V1__VirtualService *)b->v[i].msg)->spec &&
            ((const Sluice__V1__VirtualService *)b->v[i].msg)->spec->ssl_config) {
            int before = cur.errors;
            tr_downstream_tls(tx, ((const Sluice__V1__VirtualService *)b->v[i].msg)->spec->ssl_config, b->v[i].ns,
                              "spec.sslConfig");
            if (cur.errors > before)
                *fl |= TR_REJECTED;
        }
    }
    b = tr_bucket_of(tx, tr_kind.rt);
    for (size_t i = 0; i < b->n; i++) {
        uint8_t *fl = tr_flag(tx, tr_kind.rt, i);
        tr_cur cur = tr_cur_of(tr_kind.rt, &b->v[i]);
        const Sluice__V1__RouteTable *rt = (const Sluice__V1__RouteTable *)b->v[i].msg;
        tr_vhost_t *vh = TR_NEW(tx, envoy__config__route__v3__virtual_host);
        tr_route_ctx rc;
        if (*fl & TR_SEEN)
            continue;
        vh->name = "validation";
        memset(&rc, 0, sizeof rc);
        rc.gw = &gw;
        rc.vh = vh;
        rc.owner_ns = b->v[i].ns;
        rc.path = "spec.routes";
        rc.visited_cur[rc.depth] = &cur;
        rc.visited[rc.depth++] = &b->v[i];
        tx->cur = &cur;
        if (rt->spec)
            tr_translate_routes(tx, &rc, rt->spec->routes, rt->spec->n_routes);
        if (cur.errors)
            *fl |= TR_REJECTED;
    }
    tx->cur = NULL;
    tr_validate_unselected_matchable(tx);
}

/* The end of a translation, after its resources: its reports, what no
 * proxy or gateway used let go, accepted resources made the last good
 * versions. Reads the translation's flags and reports (tx), which the
 * store's buckets must still match (no put or removal since). */
sl_status tr_finish(tr_ctx *tx, sl_tr_result *res)
{
    sl_tr_store *s = tx->store;
    sl_status rc;
    if ((rc = finish_reports(tx, res)) != SL_OK)
        return rc;

    /* What no proxy or gateway of this translation used goes (a proxy or
     * gateway gone would keep its lists and route configurations). */
    for (tr_gw_memo **pp = &s->memos; *pp;) {
        tr_gw_memo *m = *pp;
        if (m->seen == s->translations) {
            pp = &m->next;
            continue;
        }
        *pp = m->next;
        m->next = NULL;
        tr_gw_memo_free(m);
    }
    for (tr_sort_cache **pp = &s->sorted; *pp;) {
        tr_sort_cache *sc = *pp;
        if (sc->seen == s->translations) {
            pp = &sc->next;
            continue;
        }
        *pp = sc->next;
        tr_sort_cache_clear(sc);
        free(sc->proxy);
        free(sc);
    }

    /* Accepted resources become the last good versions. */
    if (!tx->opts.dry_run) {
        const sl_kind *kinds[] = {tr_kind.gateway, tr_kind.vs, tr_kind.rt, tr_kind.upstream, tr_kind.ug};
        for (size_t k = 0; k < sizeof kinds / sizeof *kinds; k++) {
            tr_bucket *b = tr_bucket_of(tx, kinds[k]);
            for (size_t i = 0; i < b->n; i++) {
                tr_entry *e = &b->v[i];
                uint8_t fl = *tr_flag(tx, kinds[k], i);
                if ((fl & TR_REJECTED) || e->good == e->msg)
                    continue;
                if (e->good)
                    protobuf_c_message_free_unpacked(e->good, NULL);
                e->good = e->msg;
            }
        }
    }
    return SL_OK;
}

sl_status sl_tr_result_finish(sl_tr_result *r)
{
    tr_ctx *tx = r ? r->pending : NULL;
    volatile sl_status rc = SL_OK;
    if (!tx)
        return SL_OK;
    r->pending = NULL;
    tx->store->pending = NULL;
    if (setjmp(tx->oom))
        rc = sl_error_set(SL_ERR_NOMEM, "out of memory finishing a translation");
    else
        rc = tr_finish(tx, r);
    tr_ctx_free(tx);
    return rc;
}
