/* subset: subset load balancing (Upstream subsetSpec, destination subset).
 *
 * The cluster gets lb_subset_config with one selector per subsetSpec
 * selector (fallback: any endpoint, as Gloo does); the core labels each
 * endpoint of the endpoint set (metadata "envoy.lb") and sets a
 * destination's subset.values as the route's (or weighted cluster's)
 * metadata_match. Static hosts are matched by their hosts[].metadata
 * "envoy.lb" (endpoint.c), as in Gloo. */
#include <string.h>

#include "../plugin.h"

static const char *const fields[] = {"UpstreamSpec.subset_spec", NULL};

/* Some static host of up carries subset values (metadata "envoy.lb"). */
static bool static_labelled(const Sluice__V1__Upstream *up)
{
    const Sluice__V1__StaticUpstreamSpec *st =
        up->spec->upstream_type_case == SLUICE__V1__UPSTREAM_SPEC__UPSTREAM_TYPE_STATIC ? up->spec->static_ : NULL;
    for (size_t i = 0; st && i < st->n_hosts; i++)
        for (size_t k = 0; k < st->hosts[i]->n_metadata; k++)
            if (strcmp(st->hosts[i]->metadata[k]->key, "envoy.lb") == 0)
                return true;
    return false;
}

static void cluster(tr_ctx *tx, const tr_upstream_in *in, tr_cluster_t *c)
{
    const Sluice__V1__SubsetSpec *spec = in->up->spec->subset_spec;
    Envoy__Config__Cluster__V3__Cluster__LbSubsetConfig *lsc;
    if (!spec)
        return;
    if (!spec->n_selectors) {
        tr_error(tx, "spec.subsetSpec.selectors: at least one selector is required");
        return;
    }
    if (!in->eps && !static_labelled(in->up))
        tr_warn(tx, "spec.subsetSpec: the upstream has no endpoint set and no static host with metadata \"envoy.lb\"; "
                    "every subset falls back to any endpoint");
    lsc = TR_NEW(tx, envoy__config__cluster__v3__cluster__lb_subset_config);
    lsc->fallback_policy = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_SUBSET_CONFIG__LB_SUBSET_FALLBACK_POLICY__ANY_ENDPOINT;
    for (size_t i = 0; i < spec->n_selectors; i++) {
        Envoy__Config__Cluster__V3__Cluster__LbSubsetConfig__LbSubsetSelector *sel =
            TR_NEW(tx, envoy__config__cluster__v3__cluster__lb_subset_config__lb_subset_selector);
        if (!spec->selectors[i]->n_keys) {
            tr_error(tx, "spec.subsetSpec.selectors[%zu].keys: at least one key is required", i);
            continue;
        }
        for (size_t k = 0; k < spec->selectors[i]->n_keys; k++)
            TR_PUSH(tx, sel, keys, tr_strdup(tx, spec->selectors[i]->keys[k]));
        TR_PUSH(tx, lsc, subset_selectors, sel);
    }
    c->lb_subset_config = lsc;
}

const sl_tr_plugin sl_tr_plugin_subset = {
    .name = "subset",
    .fields = fields,
    .cluster = cluster,
};
