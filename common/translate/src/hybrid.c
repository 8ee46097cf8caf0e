/* hybrid.c - the matched gateways of a hybrid gateway: its own
 * (matchedGateways), or the MatchableHttpGateways and MatchableTcpGateways
 * it delegates to by reference or selector, each with the parent's
 * httpConnectionManagerSettings and sslConfig merged in (Gloo's
 * hybrid_translator.go, gateway_selector.go and merge.go). */
#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "sluice/kinds.h"
#include "translate_internal.h"

#define HY "spec.hybridGateway"

/* Whether selector s (Gloo's Selector: no namespaces is every one)
 * selects entry e. */
static bool selected(const Sluice__V1__GatewaySelector *s, const tr_entry *e)
{
    const Sluice__V1__Metadata *md = sl_kind_metadata(e->msg);
    return tr_ns_selected(e->ns, s->namespaces, s->n_namespaces, NULL) &&
           tr_labels_match(md, s->n_labels, (void *const *)s->labels) &&
           tr_expressions_match(md, s->expressions, s->n_expressions);
}

/* The matcher of a delegated gateway as a hybrid gateway's own. */
static Sluice__V1__GatewayMatcher *matcher_of(tr_ctx *tx, Sluice__V1__CidrRange **ranges, size_t n_ranges,
                                             const Sluice__V1__SslConfig *ssl, char **suites, size_t n_suites)
{
    Sluice__V1__GatewayMatcher *m = TR_NEW(tx, sluice__v1__gateway_matcher);
    m->source_prefix_ranges = ranges;
    m->n_source_prefix_ranges = n_ranges;
    m->ssl_config = (Sluice__V1__SslConfig *)ssl;
    m->passthrough_cipher_suites = suites;
    m->n_passthrough_cipher_suites = n_suites;
    return m;
}

/* Checks the fields of delegated gateway e (kind k) on its own report
 * target (tx->cur); true when it can be served. */
static bool matchable_valid(tr_ctx *tx, const sl_kind *k, const tr_entry *e)
{
    int before = tx->cur->errors;
    if (k == tr_kind.hgw) {
        const Sluice__V1__MatchableHttpGatewaySpec *sp = ((const Sluice__V1__MatchableHttpGateway *)e->msg)->spec;
        if (!sp) {
            tr_error(tx, "spec: required");
            return false;
        }
        if (sp->matcher)
            tr_ranges_valid(tx, sp->matcher->source_prefix_ranges, sp->matcher->n_source_prefix_ranges, "spec");
        if (sp->http_gateway)
            tr_http_gateway_valid(tx, e->ns, sp->http_gateway, "spec.httpGateway");
    } else {
        const Sluice__V1__MatchableTcpGatewaySpec *sp = ((const Sluice__V1__MatchableTcpGateway *)e->msg)->spec;
        if (!sp) {
            tr_error(tx, "spec: required");
            return false;
        }
        if (sp->matcher) {
            tr_ranges_valid(tx, sp->matcher->source_prefix_ranges, sp->matcher->n_source_prefix_ranges, "spec");
            if (sp->matcher->n_passthrough_cipher_suites)
                tr_error(tx, "spec.matcher.passthroughCipherSuites: not supported by Sluice (Gloo Enterprise "
                             "matches TLS passthrough by cipher suite with a filter stock Envoy does not have)");
        }
        if (!sp->tcp_gateway)
            tr_error(tx, "spec.tcpGateway: required");
    }
    return tx->cur->errors == before;
}

/* MatchableHttpGateway spec sp as a matched gateway of parent dh: its
 * httpConnectionManagerSettings and sslConfig merged with the parent's
 * (Gloo's reconcileGatewayLevelHCMConfig and reconcileGatewayLevelSslConfig). */
static Sluice__V1__MatchedGateway *http_matched(tr_ctx *tx, const Sluice__V1__DelegatedHttpGateway *dh,
                                                const Sluice__V1__MatchableHttpGatewaySpec *sp)
{
    Sluice__V1__MatchedGateway *mg = TR_NEW(tx, sluice__v1__matched_gateway);
    Sluice__V1__HttpGateway *hg = TR_NEW(tx, sluice__v1__http_gateway);
    Sluice__V1__HttpListenerOptions *o = TR_NEW(tx, sluice__v1__http_listener_options);
    const Sluice__V1__MatchableHttpGatewaySpec__Matcher *m = sp->matcher;
    const Sluice__V1__SslConfig *ssl = m ? m->ssl_config : NULL;
    bool prevent = dh->prevent_child_overrides;
    if (sp->http_gateway)
        *hg = *sp->http_gateway;
    if (hg->options)
        *o = *hg->options;
    o->http_connection_manager_settings = (Sluice__V1__HttpConnectionManagerSettings *)tr_merge_fields(
        tx, (const ProtobufCMessage *)dh->http_connection_manager_settings,
        (const ProtobufCMessage *)o->http_connection_manager_settings, prevent, true, 0);
    if (o->http_connection_manager_settings || hg->options)
        hg->options = o;
    if (ssl)
        ssl = (const Sluice__V1__SslConfig *)tr_merge_fields(tx, (const ProtobufCMessage *)dh->ssl_config,
                                                             (const ProtobufCMessage *)ssl, prevent, true, 0);
    mg->matcher = matcher_of(tx, m ? m->source_prefix_ranges : NULL, m ? m->n_source_prefix_ranges : 0, ssl, NULL, 0);
    mg->gateway_type_case = SLUICE__V1__MATCHED_GATEWAY__GATEWAY_TYPE_HTTP_GATEWAY;
    mg->http_gateway = hg;
    return mg;
}

/* MatchableTcpGateway spec sp as a matched gateway: the parent gives it
 * nothing (as Gloo). */
static Sluice__V1__MatchedGateway *tcp_matched(tr_ctx *tx, const Sluice__V1__MatchableTcpGatewaySpec *sp)
{
    Sluice__V1__MatchedGateway *mg = TR_NEW(tx, sluice__v1__matched_gateway);
    const Sluice__V1__MatchableTcpGatewaySpec__Matcher *m = sp->matcher;
    mg->matcher = m ? matcher_of(tx, m->source_prefix_ranges, m->n_source_prefix_ranges, m->ssl_config,
                                 m->passthrough_cipher_suites, m->n_passthrough_cipher_suites)
                    : NULL;
    mg->gateway_type_case = SLUICE__V1__MATCHED_GATEWAY__GATEWAY_TYPE_TCP_GATEWAY;
    mg->tcp_gateway = sp->tcp_gateway;
    return mg;
}

/* Whether MatchableHttpGateway e can be taken by dh: Gloo takes only
 * those whose matcher has an sslConfig when dh has one, and only those
 * without when it has none. */
static bool ssl_agrees(const Sluice__V1__DelegatedHttpGateway *dh, const tr_entry *e)
{
    const Sluice__V1__MatchableHttpGatewaySpec *sp = ((const Sluice__V1__MatchableHttpGateway *)e->msg)->spec;
    bool child = sp && sp->matcher && sp->matcher->ssl_config;
    return (dh->ssl_config != NULL) == child;
}

/* Adds entry i of kind k (selected by the Gateway's field p) to v:
 * checked on its own report target, then made a matched gateway. */
static void take(tr_ctx *tx, const tr_gw_item *g, const sl_kind *k, size_t i, tr_matched *v, size_t *n)
{
    const Sluice__V1__HybridGateway *hy = g->gw->spec->hybrid_gateway;
    tr_entry *e = &tr_bucket_of(tx, k)->v[i];
    tr_cur *cur = tr_alloc(tx, sizeof *cur);
    tr_cur *saved = tx->cur;
    uint8_t *fl = tr_flag(tx, k, i);
    bool ok;
    *cur = tr_cur_of(k, e);
    tx->cur = cur;
    ok = matchable_valid(tx, k, e);
    tx->cur = saved;
    *fl |= TR_SEEN | (ok ? 0 : TR_REJECTED);
    if (!ok) {
        tr_warn(tx, "%s: %s %s.%s is rejected; its filter chains are left out", HY, k->kind, e->ns, e->name);
        return;
    }
    v[*n].mg = k == tr_kind.hgw ? http_matched(tx, hy->delegated_http_gateways,
                                               ((const Sluice__V1__MatchableHttpGateway *)e->msg)->spec)
                                : tcp_matched(tx, ((const Sluice__V1__MatchableTcpGateway *)e->msg)->spec);
    v[*n].path = "spec";
    v[*n].ns = e->ns;
    v[*n].cur = cur;
    v[*n].idx = (long)i;
    (*n)++;
}

/* The gateways of kind k that the reference ref or the selector sel
 * (field p of the Gateway) selects, into v; dh: the HTTP delegation, whose
 * sslConfig must agree. */
static void select_kind(tr_ctx *tx, const tr_gw_item *g, const sl_kind *k, const Sluice__V1__ResourceRef *ref,
                        const Sluice__V1__GatewaySelector *sel, const Sluice__V1__DelegatedHttpGateway *dh,
                        const char *p, tr_matched *v, size_t *n)
{
    tr_bucket *b = tr_bucket_of(tx, k);
    if (ref) {
        const char *ns = ref->namespace_ && ref->namespace_[0] ? ref->namespace_ : g->ns;
        long pos = tr_bucket_find(b, ns, ref->name);
        if (pos < 0)
            tr_warn(tx, "%s.ref: %s %s.%s not found", p, k->kind, ns, ref->name);
        else if (dh && !ssl_agrees(dh, &b->v[pos]))
            tr_warn(tx, "%s.ref: %s %s.%s is not taken: its matcher %s sslConfig and delegatedHttpGateways %s (both "
                        "or neither must)",
                    p, k->kind, ns, ref->name, dh->ssl_config ? "has no" : "has an",
                    dh->ssl_config ? "has one" : "has none");
        else
            take(tx, g, k, (size_t)pos, v, n);
        return;
    }
    if (!sel) {
        tr_error(tx, "%s: one of ref and selector is required", p);
        return;
    }
    if (!tr_expressions_valid(tx, sel->expressions, sel->n_expressions, tr_printf(tx, "%s.selector", p)))
        return;
    for (size_t i = 0; i < b->n; i++)
        if (selected(sel, &b->v[i]) && (!dh || ssl_agrees(dh, &b->v[i])))
            take(tx, g, k, i, v, n);
}

size_t tr_hybrid_matched(tr_ctx *tx, const tr_gw_item *g, tr_matched **out)
{
    const Sluice__V1__HybridGateway *hy = g->gw->spec->hybrid_gateway;
    const Sluice__V1__DelegatedHttpGateway *dh = hy->delegated_http_gateways;
    const Sluice__V1__DelegatedTcpGateway *dt = hy->delegated_tcp_gateways;
    tr_matched *v;
    size_t n = 0;
    if (hy->n_matched_gateways) {
        if (dh || dt)
            tr_warn(tx, "%s: delegatedHttpGateways and delegatedTcpGateways are ignored when matchedGateways is set "
                        "(as Gloo)",
                    HY);
        v = tr_alloc(tx, hy->n_matched_gateways * sizeof *v);
        for (size_t i = 0; i < hy->n_matched_gateways; i++) {
            v[i].mg = hy->matched_gateways[i];
            v[i].path = tr_printf(tx, "%s.matchedGateways[%zu]", HY, i);
            v[i].ns = g->ns;
            v[i].cur = NULL;
            v[i].idx = -1;
        }
        *out = v;
        return hy->n_matched_gateways;
    }
    v = tr_alloc(tx, (tr_bucket_of(tx, tr_kind.hgw)->n + tr_bucket_of(tx, tr_kind.tgw)->n + 1) * sizeof *v);
    if (dh)
        select_kind(tx, g, tr_kind.hgw, dh->selection_type_case == SLUICE__V1__DELEGATED_HTTP_GATEWAY__SELECTION_TYPE_REF ? dh->ref : NULL,
                    dh->selection_type_case == SLUICE__V1__DELEGATED_HTTP_GATEWAY__SELECTION_TYPE_SELECTOR ? dh->selector : NULL,
                    dh, HY ".delegatedHttpGateways", v, &n);
    if (dt)
        select_kind(tx, g, tr_kind.tgw, dt->selection_type_case == SLUICE__V1__DELEGATED_TCP_GATEWAY__SELECTION_TYPE_REF ? dt->ref : NULL,
                    dt->selection_type_case == SLUICE__V1__DELEGATED_TCP_GATEWAY__SELECTION_TYPE_SELECTOR ? dt->selector : NULL,
                    NULL, HY ".delegatedTcpGateways", v, &n);
    *out = v;
    return n;
}

void tr_validate_unselected_matchable(tr_ctx *tx)
{
    const sl_kind *ks[] = {tr_kind.hgw, tr_kind.tgw};
    for (size_t k = 0; k < 2; k++) {
        tr_bucket *b = tr_bucket_of(tx, ks[k]);
        for (size_t i = 0; i < b->n; i++) {
            uint8_t *fl = tr_flag(tx, ks[k], i);
            tr_cur cur = tr_cur_of(ks[k], &b->v[i]);
            if (*fl & TR_SEEN)
                continue;
            tx->cur = &cur;
            if (!matchable_valid(tx, ks[k], &b->v[i]))
                *fl |= TR_REJECTED;
        }
    }
    tx->cur = NULL;
}
