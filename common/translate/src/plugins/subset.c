/* subset: subset load balancing (Upstream subsetSpec, destination subset).
 *
 * The cluster gets lb_subset_config with one selector per subsetSpec
 * selector (fallback: any endpoint, as Gloo does); the core labels each
 * endpoint of the endpoint set (metadata "envoy.lb") and sets a
 * destination's subset.values as the route's (or weighted cluster's)
 * metadata_match. Static hosts have no labels: only endpoint sets
 * (EDS) can be selected. */
#include "../plugin.h"

static const char *const fields[] = {"UpstreamSpec.subset_spec", NULL};

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
    if (!in->eps)
        tr_warn(tx, "spec.subsetSpec: the upstream has no endpoint set (static hosts have no labels); every subset "
                    "falls back to any endpoint");
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
