/* model_report.c - folding a report into the model: a source's report
 * replaces its slot, an xds-server NACK or ACK is overlaid on the slots of
 * the proxy it names. */
#include "model_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/vec.h"

/* Names Envoy gives what a resource becomes (Gloo's conventions): cluster
 * <upstream>_<ns>, virtual host <ns>_<virtualservice>. */
static bool envoy_name_of(char *buf, size_t n, const rep_entry *e)
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
    if (strstr(type_url, ".listener.v3.")) /* delegated gateways are filter chains of it */
        return !strcmp(kind, "Gateway") || !strcmp(kind, "MatchableHttpGateway") ||
               !strcmp(kind, "MatchableTcpGateway");
    if (strstr(type_url, ".tls.v3.Secret"))
        return !strcmp(kind, "Secret");
    return false;
}

static bool proxy_concerns(const rep_proxy *p, const rep_entry *e)
{
    switch (p->mode) {
    case REP_NARROW_NAMES:
        for (size_t i = 0; i < p->n_names; i++)
            if (!strcmp(p->names[i], e->key))
                return true;
        return false;
    case REP_NARROW_KINDS: return kind_matches_type(e->id.kind, rep_nz(p->type));
    default: return true;
    }
}

/* Translator slots of a proxy whose report is not newer than t. */
static rep_slot *nackable_slot(rep_entry *e, const char *proxy_id, int64_t t)
{
    rep_slot *s = rep_slot_find(e, REP_SRC_TRANSLATOR, proxy_id);
    if (!s || s->time_ns > t)
        return NULL;
    return s;
}

static sl_status proxy_nack(rep_model *m, rep_result *res, const Sluice__V1__Report *r, const char *pid,
                            int64_t t)
{
    rep_proxy *p = rep_proxy_get(m, pid);
    if (!p)
        return SL_ERR_NOMEM;
    if (p->time_ns > t) {
        *res = REP_STALE;
        return SL_OK;
    }
    if (p->nacked && p->time_ns == t && !strcmp(rep_nz(p->error), rep_nz(r->reason))) {
        *res = REP_DUPLICATE;
        return SL_OK;
    }
    rep_proxy_clear(p);
    p->nacked = true;
    p->time_ns = t;
    p->error = rep_strdup(r->reason);
    p->type = rep_strdup(r->type_url);
    p->version = rep_strdup(r->xds_version);
    p->node = rep_strdup(r->node_id);

    /* Which resources: those named (Envoy resource names in the report,
     * or their Envoy names in the error), else those of the rejected
     * type, else every resource on the proxy. */
    size_t n_names = 0, n_kind = 0, n_all = 0;
    char en[600];
    for (size_t i = 0; i < m->cap; i++)
        for (rep_entry *e = m->tab[i]; e; e = e->next) {
            if (!nackable_slot(e, pid, t))
                continue;
            n_all++;
            if (kind_matches_type(e->id.kind, rep_nz(r->type_url)))
                n_kind++;
            bool named = false;
            if (envoy_name_of(en, sizeof en, e)) {
                for (size_t j = 0; j < r->n_envoy_resources && !named; j++)
                    named = !strcmp(rep_nz(r->envoy_resources[j]), en);
                named = named || mentions(rep_nz(r->reason), en);
            }
            if (named) {
                if (SL_VEC_RESERVE(p->names, p->cap_names, p->n_names + 1) != SL_OK ||
                    !(p->names[p->n_names] = strdup(e->key)))
                    return SL_ERR_NOMEM;
                p->n_names++;
                n_names++;
            }
        }
    p->mode = n_names ? REP_NARROW_NAMES : n_kind ? REP_NARROW_KINDS : REP_NARROW_ALL;
    *res = n_all ? REP_APPLIED : REP_IGNORED;
    for (size_t i = 0; i < m->cap; i++)
        for (rep_entry *e = m->tab[i]; e; e = e->next) {
            rep_slot *s = nackable_slot(e, pid, t);
            if (s && proxy_concerns(p, e) &&
                rep_slot_set_nack(s, r->reason, r->type_url, r->xds_version, r->node_id, t))
                rep_mark_dirty(m, e);
        }
    return SL_OK;
}

static void proxy_ack(rep_model *m, rep_result *res, const char *pid, int64_t t)
{
    rep_proxy *p = rep_proxy_get(m, pid);
    if (!p)
        return;
    if (p->time_ns > t) {
        *res = REP_STALE;
        return;
    }
    rep_proxy_clear(p);
    p->time_ns = t;
    for (size_t i = 0; i < m->cap; i++)
        for (rep_entry *e = m->tab[i]; e; e = e->next) {
            rep_slot *s = rep_slot_find(e, REP_SRC_TRANSLATOR, pid);
            if (s && s->nacked && s->nack_time_ns <= t) {
                rep_slot_clear_nack(s);
                rep_mark_dirty(m, e);
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

static bool same_content(const rep_slot *s, const Sluice__V1__Report *r, const uint8_t *parts, size_t parts_len)
{
    if (s->state != r->state || strcmp(rep_nz(s->reason), rep_nz(r->reason)) || s->n_warnings != r->n_warnings ||
        strcmp(rep_nz(s->xds_version), rep_nz(r->xds_version)) || s->parts_len != parts_len ||
        (parts_len && memcmp(s->parts, parts, parts_len)))
        return false;
    for (size_t i = 0; i < r->n_warnings; i++)
        if (strcmp(s->warnings[i], rep_nz(r->warnings[i])))
            return false;
    return true;
}

/* Drops source's slots made at or before t (a withdrawal). True when one
 * was dropped. */
static bool drop_withdrawn(rep_entry *e, const char *source, int64_t t)
{
    bool dropped = false;
    for (size_t i = e->n_slots; i-- > 0;)
        if (!strcmp(e->slots[i].source, source) && e->slots[i].time_ns <= t) {
            rep_slot_drop(e, i);
            dropped = true;
        }
    return dropped;
}

/* A report from the translator (or any source but the xds-server). */
static sl_status source_report(rep_model *m, rep_result *res, rep_entry *e, const char *source,
                               const Sluice__V1__Report *r, int64_t t)
{
    const char *px = rep_nz(r->proxy);
    if (r->withdrawn) {
        *res = drop_withdrawn(e, source, t) ? REP_APPLIED : REP_IGNORED;
        if (*res == REP_APPLIED)
            rep_mark_dirty(m, e);
        return SL_OK;
    }
    if (!strcmp(source, REP_SRC_CONFIG) && e->in_config && rep_report_config_rev(r) < e->config_rev) {
        *res = REP_STALE; /* about a revision a newer one replaced */
        return SL_OK;
    }
    if (r->generation < rep_max_generation(e, source)) {
        *res = REP_STALE;
        return SL_OK;
    }
    uint8_t *parts;
    size_t parts_len;
    sl_status rc = pack_parts(&parts, &parts_len, r);
    if (rc != SL_OK)
        return rc;
    rep_slot *s = rep_slot_find(e, source, px);
    if (s) {
        int c = rep_order_cmp(r->generation, r->xds_version, t, s->generation, s->xds_version, s->time_ns);
        if (c < 0 || (c == 0 && same_content(s, r, parts, parts_len))) {
            *res = c < 0 ? REP_STALE : REP_DUPLICATE;
            free(parts);
            return SL_OK;
        }
    }
    rep_drop_older_generations(e, source, r->generation);
    if (!(s = rep_slot_find(e, source, px)) && !(s = rep_slot_add(e, source, px))) {
        free(parts);
        return SL_ERR_NOMEM;
    }
    bool keep_nack = false;
    if ((rc = rep_slot_set_report(s, r, t, parts, parts_len)) != SL_OK)
        return rc;
    /* A new translation replaces the NACK overlay, unless the proxy's
     * NACK is not older than it (the report came late). */
    if (s->nacked && s->nack_time_ns >= t)
        keep_nack = true;
    if (!keep_nack)
        rep_slot_clear_nack(s);
    if (!strcmp(source, REP_SRC_TRANSLATOR) && px[0]) {
        for (rep_proxy *p = m->proxies; p; p = p->next)
            if (p->nacked && !strcmp(p->id, px) && p->time_ns >= t && proxy_concerns(p, e))
                rep_slot_set_nack(s, p->error, p->type, p->version, p->node, p->time_ns);
    }
    rep_mark_dirty(m, e);
    *res = REP_APPLIED;
    return SL_OK;
}

/* An xds-server report on a resource (not on a Proxy). */
static sl_status xds_resource_report(rep_model *m, rep_result *res, rep_entry *e, const Sluice__V1__Report *r,
                                     int64_t t)
{
    const char *px = rep_nz(r->proxy);
    bool any = false, applied = false;
    if (px[0] && !rep_slot_find(e, REP_SRC_TRANSLATOR, px) && r->state == SLUICE__V1__STATUS__STATE__Rejected) {
        /* A placeholder of the proxy's current translation: of the newest
         * generation known, or a reload would drop it as older. */
        int64_t gen = rep_max_generation(e, REP_SRC_TRANSLATOR);
        rep_slot *s = rep_slot_add(e, REP_SRC_TRANSLATOR, px);
        if (!s)
            return SL_ERR_NOMEM;
        s->time_ns = 0;
        s->generation = gen;
    }
    for (size_t i = 0; i < e->n_slots; i++) {
        rep_slot *s = &e->slots[i];
        if (strcmp(s->source, REP_SRC_TRANSLATOR) || (px[0] && strcmp(s->proxy, px)))
            continue;
        any = true;
        if (r->state == SLUICE__V1__STATUS__STATE__Rejected) {
            if (s->time_ns <= t && rep_slot_set_nack(s, r->reason, r->type_url, r->xds_version, r->node_id, t))
                applied = true;
        } else if (s->nacked && s->nack_time_ns <= t) {
            rep_slot_clear_nack(s);
            applied = true;
        }
    }
    if (applied)
        rep_mark_dirty(m, e);
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
    rep_entry *e = NULL;
    if (r->withdrawn && !(e = rep_entry_find(m, key)))
        return SL_OK; /* nothing to take back */
    sl_status rc = r->withdrawn ? SL_OK : rep_entry_get(&e, m, key);
    if (rc != SL_OK)
        return rc == SL_ERR_INVALID ? sl_error_set(rc, "bad resource key %s", key) : rc;

    if (strcmp(source, REP_SRC_XDS) != 0)
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
    if ((rc = source_report(m, &own, e, REP_SRC_XDS, &copy, t)) != SL_OK)
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
