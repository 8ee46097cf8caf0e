/* cluster.c - Upstreams -> Clusters: built once per translation (or kept), then
 * added to every proxy that refers to them (built again for proxyless ones). */
#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "sluice/upstreams.h"
#include "translate_internal.h"

/* Builds the cluster (and its CLA when EDS) of an upstream. */
tr_up_out tr_build_upstream(tr_ctx *tx, const Sluice__V1__Upstream *up, const Sluice__V1__EndpointSet *eps,
                             bool proxyless)
{
    tr_up_out o = {0};
    const Sluice__V1__UpstreamSpec *spec = up->spec;
    const char *ns = tr_md_ns(up->metadata);
    tr_cluster_t *c = TR_NEW(tx, envoy__config__cluster__v3__cluster);
    tr_cla_t *cla = TR_NEW(tx, envoy__config__endpoint__v3__cluster_load_assignment);
    tr_upstream_in in = {0};
    bool eds = false;

    c->name = tr_cluster_name(tx, up->metadata->name, ns);
    c->connect_timeout = tr_dur_ms(tx, 5000);
    c->cluster_discovery_type_case = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__CLUSTER_DISCOVERY_TYPE_TYPE;
    c->type = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__STATIC;
    cla->cluster_name = tr_strdup(tx, c->name);
    in.up = up;
    in.eps = eps;
    in.cluster_name = c->name;
    in.proxyless = proxyless;
    if (!spec) {
        tr_error(tx, "spec: required");
        return o;
    }
    tr_check_fields(tx, &tx->supported, &spec->base, "spec");

    if (spec->upstream_type_case == SLUICE__V1__UPSTREAM_SPEC__UPSTREAM_TYPE_ETCD &&
        (!spec->etcd->prefix[0] || spec->etcd->prefix[strlen(spec->etcd->prefix) - 1] == '/'))
        tr_error(tx, "spec.etcd.prefix: the key prefix the service's endpoints register under is required, "
                     "without a trailing \"/\" (\"%s\")",
                 spec->etcd->prefix);
    if (eps || sl_upstream_spec_discovered(spec)) {
        eds = true;
        tr_cla_from_endpoint_set(tx, cla, eps, spec, ns, up->metadata->name);
    } else if (spec->upstream_type_case == SLUICE__V1__UPSTREAM_SPEC__UPSTREAM_TYPE_STATIC) {
        bool dns = tr_cla_from_static(tx, cla, spec->static_);
        if (proxyless) {
            if (dns) {
                tr_warn(tx, "spec.static.hosts: host names cannot be sent to gRPC proxyless clients (EDS needs IP "
                            "addresses); the cluster has no endpoints for them");
                tr_cla_ip_only(cla);
            }
            eds = true;
        } else {
            c->type = dns ? ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__STRICT_DNS
                          : ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__STATIC;
            c->load_assignment = cla;
        }
    } else if (spec->upstream_type_case == SLUICE__V1__UPSTREAM_SPEC__UPSTREAM_TYPE__NOT_SET) {
        tr_error(tx, "spec: one of static, dns, etcd or aws is required");
    }
    /* aws: the aws plugin sets the cluster up */
    if (eds) {
        c->type = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__EDS;
        c->eds_cluster_config = TR_NEW(tx, envoy__config__cluster__v3__cluster__eds_cluster_config);
        c->eds_cluster_config->eds_config = tr_ads(tx);
        c->load_assignment = NULL;
        tr_cla_drop_empty(cla);
        o.cla = cla;
    }
    for (size_t p = 0; p < sl_tr_plugin_count; p++)
        if (sl_tr_plugins[p]->cluster)
            sl_tr_plugins[p]->cluster(tx, &in, c);
    for (size_t p = 0; p < sl_tr_plugin_count; p++)
        if (sl_tr_plugins[p]->endpoints && (o.cla || c->load_assignment))
            sl_tr_plugins[p]->endpoints(tx, &in, o.cla ? o.cla : c->load_assignment);
    if (proxyless && c->type != ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__EDS &&
        c->type != ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__LOGICAL_DNS)
        tr_warn(tx, "the cluster cannot be served to gRPC proxyless clients (they accept EDS and LOGICAL_DNS only)");
    o.cluster = c;
    return o;
}

const Sluice__V1__EndpointSet *tr_endpoint_set(tr_ctx *tx, const char *ns, const char *name)
{
    long pos = tr_bucket_find(tr_bucket_of(tx, tr_kind.eps), ns, name);
    return pos < 0 ? NULL : (const Sluice__V1__EndpointSet *)tr_bucket_of(tx, tr_kind.eps)->v[pos].msg;
}

/* Builds upstream i (e) into *o, or takes its kept build; a clean build
 * is kept for the next translation. *clean: cleared when this one is not
 * kept (built again next time). */
static sl_status translate_upstream(tr_ctx *tx, size_t i, tr_up_out *o, tr_up_stamps *stamps, bool *clean)
{
    const tr_entry *e = &tr_bucket_of(tx, tr_kind.upstream)->v[i];
    tr_cur cur = tr_cur_of(tr_kind.upstream, e);
    uint8_t *fl = tr_flag(tx, tr_kind.upstream, i);
    tx->cur = &cur;
    *fl |= TR_SEEN;
    if (tr_upstream_cached(tx, (tr_entry *)e, o, stamps)) {
        tx->cur = NULL;
        return SL_OK;
    }
    tr_reset_out(tx);
    *o = tr_build_upstream(tx, (const Sluice__V1__Upstream *)e->msg, tr_endpoint_set(tx, e->ns, e->name), false);
    o->secrets = tx->out[SL_XDS_SECRET];
    o->n_secrets = tx->n_out[SL_XDS_SECRET];
    if (!cur.errors && !tr_rep_get(tx, tr_kind.upstream, e->ns, e->name)->n_warnings && !o->n_secrets && o->cluster) {
        if (tr_upstream_cache_put(tx, (tr_entry *)e, o, stamps) != SL_OK)
            return SL_ERR_NOMEM;
    } else {
        *clean = false;
    }
    if (cur.errors) {
        *fl |= TR_REJECTED;
        if (e->good && e->good != e->msg)
            *fl |= TR_USED_GOOD;
    }
    tx->cur = NULL;
    return SL_OK;
}

sl_status tr_translate_upstreams(tr_ctx *tx, tr_up_out *built, bool *up_fast)
{
    sl_tr_store *s = tx->store;
    tr_bucket *b = tr_bucket_of(tx, tr_kind.upstream);
    tr_up_stamps stamps = {0, 0};
    bool clean = true;
    *up_fast = s->up_clean && s->up_clean_world == s->up_world && s->up_clean_ns &&
               strcmp(s->up_clean_ns, tx->opts.settings_namespace) == 0;
    if (*up_fast) {
        /* nothing an upstream is built from changed since every one was
         * found kept and clean: each is accepted, its kept build valid */
        for (size_t i = 0; i < b->n; i++)
            *tr_flag(tx, tr_kind.upstream, i) |= TR_SEEN;
        return SL_OK;
    }
    stamps.settings = tr_entry_stamp(tx, tr_kind.settings, tx->opts.settings_namespace, "default");
    s->up_clean = false;
    for (size_t i = 0; i < b->n; i++)
        if (translate_upstream(tx, i, &built[i], &stamps, &clean) != SL_OK)
            return SL_ERR_NOMEM;
    tx->cur = NULL;
    tr_reset_out(tx);
    if (clean && (!s->up_clean_ns || strcmp(s->up_clean_ns, tx->opts.settings_namespace) != 0)) {
        free(s->up_clean_ns);
        s->up_clean_ns = strdup(tx->opts.settings_namespace);
    }
    s->up_clean = clean && s->up_clean_ns;
    s->up_clean_world = s->up_world;
    return SL_OK;
}

void tr_proxy_clusters(tr_ctx *tx, bool proxyless, const tr_up_out *built, bool up_fast, const uint8_t *reach)
{
    tr_bucket *ub = tr_bucket_of(tx, tr_kind.upstream);
    tr_cur *saved = tx->cur;
    for (size_t i = 0; i < ub->n; i++) {
        uint8_t fl = *tr_flag(tx, tr_kind.upstream, i);
        const Sluice__V1__Upstream *up = (const Sluice__V1__Upstream *)ub->v[i].msg;
        tr_cur cur = tr_cur_of(tr_kind.upstream, &ub->v[i]);
        tr_up_out uo;
        if (!reach[i])
            continue; /* nothing of this proxy's refers to it */
        if (fl & TR_REJECTED) {
            if (!(fl & TR_USED_GOOD))
                continue;
            up = (const Sluice__V1__Upstream *)ub->v[i].good;
        }
        /* reports of the proxyless build only (the plain one was reported by
         * tr_translate_upstreams()) */
        tx->cur = proxyless && !(fl & TR_REJECTED) ? &cur : NULL;
        if (!proxyless && up_fast) {
            memset(&uo, 0, sizeof uo);
            uo.cached = ub->v[i].cache;
        } else if (!proxyless && !(fl & TR_REJECTED))
            uo = built[i];
        else
            uo = tr_build_upstream(tx, up, tr_endpoint_set(tx, ub->v[i].ns, ub->v[i].name), proxyless);
        if (proxyless && cur.errors)
            continue;
        if (uo.cached) {
            tr_out_add_blob(tx, SL_XDS_CLUSTER, uo.cached->cluster);
            if (uo.cached->cla)
                tr_out_add_blob(tx, SL_XDS_ENDPOINT, uo.cached->cla);
            continue;
        }
        if (uo.cluster)
            tr_out_add(tx, SL_XDS_CLUSTER, uo.cluster->name, &uo.cluster->base);
        for (size_t k = 0; uo.cluster && k < uo.n_secrets; k++)
            tr_out_add(tx, SL_XDS_SECRET, uo.secrets[k]->name, uo.secrets[k]->msg);
        if (uo.cla)
            tr_out_add(tx, SL_XDS_ENDPOINT, uo.cla->cluster_name, &uo.cla->base);
    }
    tx->cur = saved;
}
