/* delegation.c - delegating routes: the route tables they reach (by
 * reference or selector, by weight), their prefixes, cycles, and rejected
 * tables' last good versions. */
#include <stdio.h>

#include "core.h"
#include "translate_internal.h"

#define MAX_TABLES 256

/* The route tables selector sel reaches from rc, into tables (at most
 * MAX_TABLES), by weight, then namespace and name (the bucket order). */
static size_t tables_selected(tr_ctx *tx, const tr_route_ctx *rc, const Sluice__V1__RouteTableSelector *sel,
                              const tr_entry **tables)
{
    tr_bucket *b = tr_bucket_of(tx, tr_kind.rt);
    size_t nt = 0;
    for (size_t i = 0; i < b->n && nt < MAX_TABLES; i++) {
        const Sluice__V1__RouteTable *rt = (const Sluice__V1__RouteTable *)b->v[i].msg;
        if (!tr_ns_selected(b->v[i].ns, sel->namespaces, sel->n_namespaces, rc->owner_ns) ||
            !tr_labels_match(rt->metadata, sel->n_labels, (void *const *)sel->labels) ||
            !tr_expressions_match(rt->metadata, sel->expressions, sel->n_expressions))
            continue;
        tables[nt++] = &b->v[i];
    }
    for (size_t i = 1; i < nt; i++)
        for (size_t j = i; j > 0; j--) {
            const Sluice__V1__RouteTable *x = (const Sluice__V1__RouteTable *)tables[j - 1]->msg;
            const Sluice__V1__RouteTable *y = (const Sluice__V1__RouteTable *)tables[j]->msg;
            int wx = x->spec && x->spec->weight ? x->spec->weight->value : 0;
            int wy = y->spec && y->spec->weight ? y->spec->weight->value : 0;
            if (wx <= wy)
                break;
            const tr_entry *t = tables[j - 1];
            tables[j - 1] = tables[j];
            tables[j] = t;
        }
    return nt;
}

/* The route tables delegate action da (of the route at path) reaches
 * from rc, into tables: the one it names, or the ones it selects. */
static size_t tables_of(tr_ctx *tx, const tr_route_ctx *rc, const Sluice__V1__DelegateAction *da, const char *path,
                        const tr_entry **tables)
{
    tr_bucket *b = tr_bucket_of(tx, tr_kind.rt);
    const char *name = NULL, *ns = NULL;
    long pos;
    if (da->delegation_type_case == SLUICE__V1__DELEGATE_ACTION__DELEGATION_TYPE_SELECTOR) {
        size_t nt = tables_selected(tx, rc, da->selector, tables);
        if (nt == 0)
            tr_warn(tx, "Route Warning: InvalidDelegationWarning. Reason: %s.delegateAction.selector matches no RouteTable",
                    path);
        return nt;
    }
    if (da->delegation_type_case == SLUICE__V1__DELEGATE_ACTION__DELEGATION_TYPE_REF && da->ref) {
        name = da->ref->name;
        ns = da->ref->namespace_;
    } else {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
        name = da->name;
        ns = da->namespace_;
#pragma GCC diagnostic pop
    }
    if (!ns || !ns[0])
        ns = rc->owner_ns;
    if (!name || !name[0]) {
        tr_error(tx, "%s.delegateAction: ref.name or selector is required", path);
    } else if ((pos = tr_bucket_find(b, ns, name)) < 0) {
        tr_warn(tx, "Route Warning: InvalidDelegationWarning. Reason: RouteTable %s.%s not found", ns, name);
    } else {
        tables[0] = &b->v[pos];
        return 1;
    }
    return 0;
}

/* err about table e, reported on it through c (NULL: quietly) and, as
 * Gloo's TopLevelVirtualResourceErr, on the virtual service: both are then
 * rejected (the virtual service's last good version is served, or none). */
static void cycle_error(tr_ctx *tx, const tr_route_ctx *rc, tr_cur *c, const tr_entry *e, const char *err)
{
    tr_cur *saved = tx->cur;
    tx->cur = c;
    tr_error(tx, "%s", err);
    if (rc->vs_cur) {
        tx->cur = rc->vs_cur;
        tr_error(tx, "on sub route table %s.%s: %s", e->ns, e->name, err);
    }
    tx->cur = saved;
}

/* Whether reaching route table e from rc closes a cycle (or goes too
 * deep): reported, as Gloo's checkForCycles, on the table that starts
 * the cycle ("[ns.a] -> [ns.b] -> [ns.a]") and on the virtual service. */
static bool delegation_cycle(tr_ctx *tx, const tr_route_ctx *rc, const tr_entry *e, const char *path)
{
    char chain[1024] = "";
    size_t off = 0;
    int at = -1;
    for (int d = 0; d < rc->depth; d++)
        if (rc->visited[d] == e)
            at = d;
    if (at < 0 && rc->depth < 31)
        return false;
    for (int d = 0; d < rc->depth && off < sizeof chain; d++)
        off += (size_t)snprintf(chain + off, sizeof chain - off, "[%s.%s] -> ", rc->visited[d]->ns,
                                rc->visited[d]->name);
    if (at < 0) {
        tr_error(tx, "%s.delegateAction: delegation deeper than 31 route tables: %s[%s.%s]", path, chain, e->ns,
                 e->name);
        return true;
    }
    if (!tx->cur) /* a last good version translated quietly */
        return true;
    const char *cyc = tr_printf(tx, "%s[%s.%s]", chain, e->ns, e->name);
    cycle_error(tx, rc, rc->visited_cur[at], e, tr_printf(tx, "invalid route: delegation cycle detected: %s", cyc));
    /* Sluice also rejects the table whose route closes the cycle (Gloo
     * accepts it, but its validation webhook refuses the change that made
     * the cycle): the apply API refuses it too, and its last good version,
     * without the cycle, keeps serving */
    if (tx->cur != rc->visited_cur[at])
        tr_error(tx, "%s.delegateAction: closes the delegation cycle %s", path, cyc);
    return true;
}

/* The routes of route table e under matcher m (prefix) of the delegating
 * route: reported about e, or quietly its last good version when e is
 * rejected (now, or earlier in this translation). */
static void delegate_to(tr_ctx *tx, tr_route_ctx *rc, const Sluice__V1__Route *route, const Sluice__V1__Matcher *m,
                        const char *prefix, const tr_entry *e, const Sluice__V1__RouteOptions *opts)
{
    tr_bucket *b = tr_bucket_of(tx, tr_kind.rt);
    uint8_t *fl = tr_flag(tx, tr_kind.rt, (size_t)(e - b->v));
    tr_route_ctx child = *rc;
    tr_cur cur = {tr_kind.rt, e->ns, e->name, 0};
    tr_cur *saved = tx->cur;
    size_t before = rc->vh->n_routes;
    const Sluice__V1__RouteTable *rt = (const Sluice__V1__RouteTable *)e->msg;

    child.prefix = prefix;
    child.parent_matcher = m;
    child.inherit_matchers = route->inheritable_matchers ? route->inheritable_matchers->value : rc->inherit_matchers;
    child.inherit_path = route->inheritable_path_matchers ? route->inheritable_path_matchers->value : rc->inherit_path;
    child.options = opts;
    child.owner_ns = e->ns;
    child.path = "spec.routes";
    *fl |= TR_SEEN;
    if (*fl & TR_REJECTED) {
        /* Already found bad on this translation: use its last good
         * version quietly, or leave it out. */
        rt = (*fl & TR_USED_GOOD) ? (const Sluice__V1__RouteTable *)e->good : NULL;
        tx->cur = NULL;
    } else {
        tx->cur = &cur;
    }
    child.visited_cur[child.depth] = tx->cur;
    child.visited[child.depth++] = e;
    if (rt && rt->spec)
        tr_translate_routes(tx, &child, rt->spec->routes, rt->spec->n_routes);
    if (tx->cur == &cur && cur.errors) {
        rc->vh->n_routes = before;
        *fl |= TR_REJECTED;
        /* the last good version may be this one, rejected now for what it
         * reaches (a delegation cycle): served quietly all the same */
        if (e->good) {
            *fl |= TR_USED_GOOD;
            tx->cur = NULL;
            rt = (const Sluice__V1__RouteTable *)e->good;
            cur.errors = 0;
            tr_translate_routes(tx, &child, rt->spec->routes, rt->spec->n_routes);
        }
    }
    tx->cur = saved;
    tr_rec_rt(tx, (long)(e - b->v), *fl);
    /* A rejected table's errors are reported by the first route reaching
     * it in this translation (the others use it quietly), and what it
     * gives depends on that: not replayable. */
    if ((*fl & TR_REJECTED) && tx->rec)
        tx->rec->stateful = true;
    if (*fl & TR_REJECTED)
        tr_warn(tx, "Route Warning: InvalidDelegationWarning. Reason: RouteTable %s.%s is rejected; %s", e->ns, e->name,
                (*fl & TR_USED_GOOD) ? "its last accepted version is served" : "its routes are left out");
}

void tr_delegate(tr_ctx *tx, tr_route_ctx *rc, const Sluice__V1__Route *route, const char *path,
                 const Sluice__V1__RouteOptions *opts)
{
    Sluice__V1__Matcher def = SLUICE__V1__MATCHER__INIT;
    const Sluice__V1__Matcher *defp = &def;
    const Sluice__V1__Matcher *const *ms;
    const tr_entry *tables[MAX_TABLES];
    size_t nm, nt;

    def.path_specifier_case = SLUICE__V1__MATCHER__PATH_SPECIFIER_PREFIX;
    def.prefix = (char *)(rc->prefix ? rc->prefix : "/");
    ms = route->n_matchers ? (const Sluice__V1__Matcher *const *)route->matchers : &defp;
    nm = route->n_matchers ? route->n_matchers : 1;
    nt = tables_of(tx, rc, route->delegate_action, path, tables);
    for (size_t j = 0; j < nm; j++) {
        const Sluice__V1__Matcher *m = ms[j];
        const char *mpath = tr_printf(tx, "%s.matchers[%zu]", path, j);
        const char *prefix;
        if (m->path_specifier_case != SLUICE__V1__MATCHER__PATH_SPECIFIER_PREFIX &&
            m->path_specifier_case != SLUICE__V1__MATCHER__PATH_SPECIFIER__NOT_SET) {
            tr_error(tx, "%s: a delegating route may use only prefix matchers", mpath);
            continue;
        }
        /* outside the parent's prefix: left out by translate_route() */
        prefix = m->path_specifier_case == SLUICE__V1__MATCHER__PATH_SPECIFIER_PREFIX ? m->prefix : "/";
        /* nothing to delegate to (warned): no route, as Gloo's converter */
        for (size_t t = 0; t < nt; t++)
            if (!delegation_cycle(tx, rc, tables[t], path))
                delegate_to(tx, rc, route, m, prefix, tables[t], opts);
    }
}
