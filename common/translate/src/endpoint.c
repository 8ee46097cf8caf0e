/* endpoint.c - ClusterLoadAssignments: from endpoint sets and static hosts,
 * and EDS-only changes applied to a translation's result. */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "translate_internal.h"

static bool is_ip(const char *s, bool *v6)
{
    unsigned char buf[16];
    *v6 = false;
    if (inet_pton(AF_INET, s, buf) == 1)
        return true;
    if (inet_pton(AF_INET6, s, buf) == 1) {
        *v6 = true;
        return true;
    }
    return false;
}

static Envoy__Config__Endpoint__V3__LbEndpoint *lb_endpoint(tr_ctx *tx, const char *addr, uint32_t port,
                                                            const char *hostname, uint32_t weight)
{
    Envoy__Config__Endpoint__V3__LbEndpoint *le = TR_NEW(tx, envoy__config__endpoint__v3__lb_endpoint);
    Envoy__Config__Endpoint__V3__Endpoint *ep = TR_NEW(tx, envoy__config__endpoint__v3__endpoint);
    ep->address = TR_NEW(tx, envoy__config__core__v3__address);
    ep->address->address_case = ENVOY__CONFIG__CORE__V3__ADDRESS__ADDRESS_SOCKET_ADDRESS;
    ep->address->socket_address = TR_NEW(tx, envoy__config__core__v3__socket_address);
    ep->address->socket_address->address = tr_strdup(tx, addr);
    ep->address->socket_address->port_specifier_case = ENVOY__CONFIG__CORE__V3__SOCKET_ADDRESS__PORT_SPECIFIER_PORT_VALUE;
    ep->address->socket_address->port_value = port;
    if (hostname && hostname[0])
        ep->hostname = tr_strdup(tx, hostname);
    le->host_identifier_case = ENVOY__CONFIG__ENDPOINT__V3__LB_ENDPOINT__HOST_IDENTIFIER_ENDPOINT;
    le->endpoint = ep;
    if (weight)
        le->load_balancing_weight = tr_u32(tx, weight);
    return le;
}

/* The locality group of a CLA (created on first use). */
static Envoy__Config__Endpoint__V3__LocalityLbEndpoints *locality(tr_ctx *tx, tr_cla_t *cla,
                                                                  const Sluice__V1__Locality *loc, uint32_t priority)
{
    const char *r = loc ? loc->region : "", *z = loc ? loc->zone : "", *s = loc ? loc->sub_zone : "";
    Envoy__Config__Endpoint__V3__LocalityLbEndpoints *lle;
    for (size_t i = 0; i < cla->n_endpoints; i++) {
        lle = cla->endpoints[i];
        if (lle->priority == priority && strcmp(lle->locality ? lle->locality->region : "", r) == 0 &&
            strcmp(lle->locality ? lle->locality->zone : "", z) == 0 &&
            strcmp(lle->locality ? lle->locality->sub_zone : "", s) == 0)
            return lle;
    }
    lle = TR_NEW(tx, envoy__config__endpoint__v3__locality_lb_endpoints);
    lle->priority = priority;
    lle->load_balancing_weight = tr_u32(tx, 1);
    /* Always present, empty when unknown: gRPC's xDS clients (python3-grpcio
     * 1.51) NACK an EDS locality group without one ("endpoints[0].locality
     * field not present"); Envoy takes an empty Locality as none. */
    lle->locality = TR_NEW(tx, envoy__config__core__v3__locality);
    lle->locality->region = tr_strdup(tx, r);
    lle->locality->zone = tr_strdup(tx, z);
    lle->locality->sub_zone = tr_strdup(tx, s);
    TR_PUSH(tx, cla, endpoints, lle);
    return lle;
}

static bool cla_has(const tr_cla_t *cla, const char *addr, uint32_t port)
{
    for (size_t i = 0; i < cla->n_endpoints; i++)
        for (size_t j = 0; j < cla->endpoints[i]->n_lb_endpoints; j++) {
            const Envoy__Config__Core__V3__SocketAddress *sa =
                cla->endpoints[i]->lb_endpoints[j]->endpoint->address->socket_address;
            if (sa->port_value == port && strcmp(sa->address, addr) == 0)
                return true;
        }
    return false;
}

void tr_cla_from_endpoint_set(tr_ctx *tx, tr_cla_t *cla, const Sluice__V1__EndpointSet *eps,
                              const Sluice__V1__UpstreamSpec *spec, const char *ns, const char *name)
{
    for (size_t i = 0; eps && eps->spec && i < eps->spec->n_endpoints; i++) {
        const Sluice__V1__Endpoint *e = eps->spec->endpoints[i];
        bool v6;
        Envoy__Config__Endpoint__V3__LbEndpoint *le;
        if (!is_ip(e->address, &v6) || e->port == 0 || e->port > 65535) {
            tr_warn(tx, "EndpointSet %s.%s: endpoint %s:%u is not an IP address and port; left out", ns, name,
                    e->address, e->port);
            continue;
        }
        if (cla_has(cla, e->address, e->port))
            continue;
        le = lb_endpoint(tx, e->address, e->port, e->hostname, e->weight ? (e->weight->value ? e->weight->value : 1) : 0);
        if (spec->subset_spec && e->n_labels) {
            const char **k = tr_alloc(tx, e->n_labels * sizeof *k), **v = tr_alloc(tx, e->n_labels * sizeof *v);
            for (size_t j = 0; j < e->n_labels; j++) {
                k[j] = e->labels[j]->key;
                v[j] = e->labels[j]->value;
            }
            le->metadata = tr_lb_metadata(tx, e->n_labels, k, v);
        }
        switch (e->health_status) {
        case SLUICE__V1__ENDPOINT__HEALTH_STATUS__HEALTHY:
            le->health_status = ENVOY__CONFIG__CORE__V3__HEALTH_STATUS__HEALTHY;
            break;
        case SLUICE__V1__ENDPOINT__HEALTH_STATUS__UNHEALTHY:
            le->health_status = ENVOY__CONFIG__CORE__V3__HEALTH_STATUS__UNHEALTHY;
            break;
        case SLUICE__V1__ENDPOINT__HEALTH_STATUS__DRAINING:
            le->health_status = ENVOY__CONFIG__CORE__V3__HEALTH_STATUS__DRAINING;
            break;
        default:
            break;
        }
        TR_PUSH(tx, locality(tx, cla, e->locality, e->priority), lb_endpoints, le);
    }
}

/* A static host's metadata as the endpoint's, as Gloo's static plugin
 * copies hosts[].metadata (filter name -> Struct; "envoy.lb" is what subset
 * load balancing matches), sorted by filter name for stable bytes. Gloo's
 * reserved keys are skipped (Gloo logs them; Sluice warns). NULL when none. */
static Envoy__Config__Core__V3__Metadata *host_metadata(tr_ctx *tx, const Sluice__V1__Host *h, size_t i)
{
    Envoy__Config__Core__V3__Metadata *md = NULL;
    for (size_t k = 0; k < h->n_metadata; k++) {
        const char *key = h->metadata[k]->key;
        Envoy__Config__Core__V3__Metadata__FilterMetadataEntry *fe;
        size_t at;
        if (strcmp(key, "envoy.transport_socket_match") == 0 || strcmp(key, "io.solo.health_checkers.advanced_http") == 0) {
            tr_warn(tx, "spec.static.hosts[%zu].metadata[%s]: reserved by Gloo for its own use; ignored", i, key);
            continue;
        }
        if (!md)
            md = TR_NEW(tx, envoy__config__core__v3__metadata);
        fe = TR_NEW(tx, envoy__config__core__v3__metadata__filter_metadata_entry);
        fe->key = tr_strdup(tx, key);
        fe->value = h->metadata[k]->value ? h->metadata[k]->value : TR_NEW(tx, google__protobuf__struct);
        TR_PUSH(tx, md, filter_metadata, fe);
        for (at = md->n_filter_metadata - 1; at > 0 && strcmp(md->filter_metadata[at - 1]->key, key) > 0; at--)
            md->filter_metadata[at] = md->filter_metadata[at - 1];
        md->filter_metadata[at] = fe;
    }
    return md;
}

bool tr_cla_from_static(tr_ctx *tx, tr_cla_t *cla, const Sluice__V1__StaticUpstreamSpec *st)
{
    bool dns = false;
    Envoy__Config__Endpoint__V3__LbEndpoint *le;
    if (st->n_hosts == 0)
        tr_error(tx, "spec.static.hosts: at least one host is required");
    for (size_t i = 0; i < st->n_hosts; i++) {
        const Sluice__V1__Host *h = st->hosts[i];
        bool v6;
        if (!h->addr[0] || h->port == 0 || h->port > 65535) {
            tr_error(tx, "spec.static.hosts[%zu]: addr and a port (1-65535) are required", i);
            continue;
        }
        if (h->health_check_config)
            tr_error(tx, "spec.static.hosts[%zu].healthCheckConfig: not supported by Sluice yet", i);
        if (!is_ip(h->addr, &v6)) {
            for (const char *p = h->addr; *p; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '-' ||
                      *p == '.'))
                    tr_error(tx, "spec.static.hosts[%zu].addr: \"%s\" is neither an IP address nor a host name", i,
                             h->addr);
            dns = true;
        }
        if (cla_has(cla, h->addr, h->port)) {
            tr_warn(tx, "spec.static.hosts[%zu]: %s:%u is listed twice", i, h->addr, h->port);
            continue;
        }
        le = lb_endpoint(tx, h->addr, h->port, NULL,
                         h->load_balancing_weight ? (h->load_balancing_weight->value ? h->load_balancing_weight->value : 1)
                                                  : 0);
        le->metadata = host_metadata(tx, h, i);
        TR_PUSH(tx, locality(tx, cla, NULL, 0), lb_endpoints, le);
    }
    return dns;
}

void tr_cla_ip_only(tr_cla_t *cla)
{
    for (size_t i = 0; i < cla->n_endpoints; i++) {
        size_t k = 0;
        for (size_t j = 0; j < cla->endpoints[i]->n_lb_endpoints; j++) {
            bool v6;
            Envoy__Config__Endpoint__V3__LbEndpoint *le = cla->endpoints[i]->lb_endpoints[j];
            if (is_ip(le->endpoint->address->socket_address->address, &v6))
                cla->endpoints[i]->lb_endpoints[k++] = le;
        }
        cla->endpoints[i]->n_lb_endpoints = k;
    }
}

void tr_cla_drop_empty(tr_cla_t *cla)
{
    size_t k = 0;
    for (size_t i = 0; i < cla->n_endpoints; i++)
        if (cla->endpoints[i]->n_lb_endpoints)
            cla->endpoints[k++] = cla->endpoints[i];
    cla->n_endpoints = k;
}

/* The resource of type t named name in p, a proxy of a result being
 * patched (ours to change). */
static sl_tr_resource *proxy_find_mut(sl_tr_proxy *p, sl_xds_type t, const char *name)
{
    return (sl_tr_resource *)sl_tr_proxy_find(p, t, name);
}

/* Packs m into a malloc'ed buffer (the arena holds m). */
static uint8_t *pack_heap(const ProtobufCMessage *m, size_t *len) { return tr_pack_heap(m, len); }

/* The new CLA bytes of upstream ns/name for each proxy of res serving it
 * (data[p], lens[p]), when only its endpoints changed: the upstream and
 * its endpoint set exist, it was accepted, and each proxy's cluster comes
 * out the same, byte for byte. *possible false: a full translation is
 * needed. */
static sl_status cla_bytes(tr_ctx *tx, sl_tr_result *res, const char *ns, const char *name, uint8_t **data,
                           size_t *lens, bool *possible)
{
    long pos = tr_bucket_find(tr_bucket_of(tx, tr_kind.upstream), ns, name);
    const Sluice__V1__EndpointSet *eps = tr_endpoint_set(tx, ns, name);
    const tr_entry *e;
    const char *cname;
    *possible = false;
    if (pos < 0 || !eps)
        return SL_OK; /* an upstream or endpoint set that does not exist */
    e = &tr_bucket_of(tx, tr_kind.upstream)->v[pos];
    if (e->good != e->msg)
        return SL_OK; /* rejected or never translated */
    cname = tr_cluster_name(tx, e->name, e->ns);
    for (int proxyless = 0; proxyless < 2; proxyless++) {
        tr_cur cur = tr_cur_of(tr_kind.upstream, e);
        tr_up_out uo = {0};
        bool built = false;
        for (size_t p = 0; p < res->n_proxies; p++) {
            sl_tr_proxy *pr = &res->proxies[p];
            sl_tr_resource *c, *cla;
            size_t clen;
            uint8_t *cb;
            if (pr->proxyless != (bool)proxyless)
                continue;
            c = proxy_find_mut(pr, SL_XDS_CLUSTER, cname);
            cla = proxy_find_mut(pr, SL_XDS_ENDPOINT, cname);
            if (!c && !cla)
                continue; /* not served by this proxy */
            if (!c || !cla)
                return SL_OK;
            if (!built) {
                tr_reset_out(tx);
                tx->cur = &cur;
                uo = tr_build_upstream(tx, (const Sluice__V1__Upstream *)e->msg, eps, proxyless);
                tx->cur = NULL;
                built = true;
                if (cur.errors || !uo.cluster || !uo.cla)
                    return SL_OK;
            }
            if (!(cb = pack_heap(&uo.cluster->base, &clen)))
                return SL_ERR_NOMEM;
            if (clen != c->len || memcmp(cb, c->data, clen) != 0) {
                free(cb);
                return SL_OK;
            }
            free(cb);
            if (!(data[p] = pack_heap(&uo.cla->base, &lens[p])))
                return SL_ERR_NOMEM;
        }
    }
    *possible = true;
    return SL_OK;
}

/* A proxy whose endpoints change (data[i * np + p] for change i) and
 * shares its endpoint list gets a copy of it (its entries still the
 * list's), changed instead. */
static sl_status endpoints_unshare(sl_tr_result *res, uint8_t *const *data, size_t n)
{
    size_t np = res->n_proxies;
    for (size_t p = 0; p < np; p++) {
        sl_tr_proxy *pr = &res->proxies[p];
        bool touched = false;
        for (size_t i = 0; i < n && !touched; i++)
            touched = data[i * np + p] != NULL;
        if (touched && pr->lists[SL_XDS_ENDPOINT] && pr->res[SL_XDS_ENDPOINT] == pr->lists[SL_XDS_ENDPOINT]->v) {
            size_t ne = pr->n[SL_XDS_ENDPOINT];
            sl_tr_resource *copy = malloc((ne + 1) * sizeof *copy);
            if (!copy)
                return SL_ERR_NOMEM;
            memcpy(copy, pr->res[SL_XDS_ENDPOINT], ne * sizeof *copy);
            pr->res[SL_XDS_ENDPOINT] = copy;
        }
    }
    return SL_OK;
}

/* Replaces the CLAs of the n upstreams ns[i]/names[i] with data (taken;
 * entries set NULL). Returns how many CLAs changed. */
static size_t endpoints_apply(tr_ctx *tx, sl_tr_result *res, const char *const *ns, const char *const *names,
                              size_t n, uint8_t **data, const size_t *lens)
{
    size_t np = res->n_proxies, n_changed = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t p = 0; p < np; p++) {
            uint8_t *d = data[i * np + p];
            sl_tr_resource *cla;
            sl_tr_proxy *pr = &res->proxies[p];
            if (!d)
                continue;
            cla = proxy_find_mut(pr, SL_XDS_ENDPOINT, tr_cluster_name(tx, names[i], ns[i]));
            if (cla->len != lens[i * np + p] || memcmp(cla->data, d, cla->len) != 0)
                n_changed++;
            if (!cla->shared || cla->data != cla->shared->data)
                free(cla->data); /* else the blob keeps it, and the name */
            cla->data = d;
            cla->len = lens[i * np + p];
            data[i * np + p] = NULL;
        }
    return n_changed;
}

sl_status sl_tr_translate_endpoints(sl_tr_result *res, sl_tr_store *s, const char *const *ns,
                                    const char *const *names, size_t n, const sl_tr_options *opts, bool *done,
                                    size_t *changed)
{
    tr_ctx *tx = calloc(1, sizeof *tx);
    volatile sl_status rc = SL_OK;
    /* new CLA bytes per (change, proxy), applied only when all are possible */
    uint8_t **volatile data = NULL;
    size_t *volatile lens = NULL;
    size_t np = res->n_proxies, n_changed;
    bool possible = true;

    tr_store_settle(s); /* before the store's positions are read */

    *done = false;
    if (changed)
        *changed = 0;
    if (!tx)
        return SL_ERR_NOMEM;
    data = calloc(n * np + 1, sizeof *data);
    lens = calloc(n * np + 1, sizeof *lens);
    if (!data || !lens) {
        rc = SL_ERR_NOMEM;
        goto out;
    }
    tr_init_kinds();
    sl_arena_init(&tx->arena, 16 * 1024);
    if (setjmp(tx->oom)) {
        rc = sl_error_set(SL_ERR_NOMEM, "out of memory translating endpoints");
        goto out;
    }
    tr_ctx_setup(tx, s, opts);
    for (size_t i = 0; i < n && possible; i++)
        if ((rc = cla_bytes(tx, res, ns[i], names[i], data + i * np, lens + i * np, &possible)) != SL_OK)
            goto out;
    if (!possible) /* a full translation */
        goto out;
    if ((rc = endpoints_unshare(res, data, n)) != SL_OK)
        goto out;
    n_changed = endpoints_apply(tx, res, ns, names, n, data, lens);
    *done = true;
    if (changed)
        *changed = n_changed;
out:
    if (data)
        for (size_t i = 0; i < n * np; i++)
            free(data[i]);
    free(data);
    free(lens);
    sl_arena_deinit(&tx->arena);
    free(tx);
    return rc;
}
