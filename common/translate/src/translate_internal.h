/* translate_internal.h - private to the translation rules, split by what
 * they produce: listener.c, vhost.c, route.c, delegation.c, tls.c,
 * cluster.c, endpoint.c, rcfg.c, result.c, report.c, translate.c, their
 * selectors (select.c) and option fields (options.c), and
 * the caches between translations (vhcache.c, memo.c, upcache.c) and the
 * bytes packed within one (bytesmap.c). */
#ifndef SLUICE_TR_TRANSLATE_INTERNAL_H
#define SLUICE_TR_TRANSLATE_INTERNAL_H

#include <string.h>

#include "core.h"

/* ---- kinds and per-translation flags (translate.c) ---- */

/* The kinds the rules read, filled by tr_init_kinds(). */
extern struct tr_kinds {
    const sl_kind *gateway, *vs, *rt, *upstream, *ug, *secret, *settings, *eps, *hgw, *tgw;
} tr_kind;

/* Store indices of the kinds above: tr_kidx() is in every tr_flag() and
 * tr_bucket_of(), so it compares pointers, not names. */
extern struct tr_kind_idx {
    const sl_kind *k;
    int idx;
} tr_kind_idx[10];

/* Fills tr_kind and tr_kind_idx (once). */
void tr_init_kinds(void);

/* Index of kind k in the store. */
static inline int tr_kidx(const sl_kind *k)
{
    for (size_t i = 0; i < sizeof tr_kind_idx / sizeof *tr_kind_idx; i++)
        if (tr_kind_idx[i].k == k)
            return tr_kind_idx[i].idx;
    return tr_kind_index(k);
}

/* The store's bucket of kind k. */
static inline tr_bucket *tr_bucket_of(tr_ctx *tx, const sl_kind *k) { return &tx->store->b[tr_kidx(k)]; }

/* This translation's flags (TR_SEEN, ...) of entry i of kind k. */
static inline uint8_t *tr_flag(tr_ctx *tx, const sl_kind *k, size_t i) { return &tx->flags[tr_kidx(k)][i]; }

/* A report target for entry e of kind k, no errors yet. */
static inline tr_cur tr_cur_of(const sl_kind *k, const tr_entry *e)
{
    tr_cur c = {k, e->ns, e->name, 0};
    return c;
}

/* The namespace of metadata ("default" when unset). */
static inline const char *tr_md_ns(const Sluice__V1__Metadata *md)
{
    return md && md->namespace_ && md->namespace_[0] ? md->namespace_ : "default";
}

static inline bool tr_starts_with(const char *s, const char *p) { return strncmp(s, p, strlen(p)) == 0; }

/* qsort()/bsearch() comparison of two strings by pointer (char **):
 * strcmp() order. */
static inline int tr_cmp_strp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* A translation's context over store s (after its arena and out-of-memory
 * jump are set). Returns the Settings' position in its bucket, or -1. */
long tr_ctx_setup(tr_ctx *tx, sl_tr_store *s, const sl_tr_options *opts);
/* Frees a translation's context: its arena and what it held. */
void tr_ctx_free(tr_ctx *tx);

/* ---- selectors (select.c) ---- */

/* Whether metadata md's labels satisfy every expression of ex. */
bool tr_expressions_match(const Sluice__V1__Metadata *md, Sluice__V1__LabelExpression *const *ex, size_t n);
/* Whether md has every label of the n map entries {key, value}. */
bool tr_labels_match(const Sluice__V1__Metadata *md, size_t n, void *const *entries);
/* Reports (errors) the expressions ex[0..n) at path p that select
 * nothing sensible: as Kubernetes' label requirements, In and NotIn need
 * values, Exists and DoesNotExist none, the others one (an integer for
 * GreaterThan and LessThan). Returns whether all are valid. */
bool tr_expressions_valid(tr_ctx *tx, Sluice__V1__LabelExpression *const *ex, size_t n, const char *p);
/* Whether ns is among nss ("*" is any); none listed: only def (NULL: any). */
bool tr_ns_selected(const char *ns, char *const *nss, size_t n, const char *def);
/* Whether the HTTP gateway hg (of namespace gw_ns) serves VirtualService e. */
bool tr_vs_selected(const Sluice__V1__HttpGateway *hg, const char *gw_ns, const tr_entry *e);

/* ---- option fields (options.c) ---- */

/* Reports every set field of m that no plugin implements (supported). */
void tr_check_fields(tr_ctx *tx, tr_map *supported, const ProtobufCMessage *m, const char *path);
/* child with its unset fields taken from parent (either may be NULL). */
const ProtobufCMessage *tr_merge_options(tr_ctx *tx, const ProtobufCMessage *parent, const ProtobufCMessage *child);
/* The same, and with parent_wins the fields set in parent replace the
 * child's; deep: message fields set in both (not wrappers, durations or
 * references) merge the same way, field by field (Gloo's mergo merge of
 * a delegating hybrid gateway's settings into its children's). The
 * result is in the arena and may share parts with both. */
const ProtobufCMessage *tr_merge_fields(tr_ctx *tx, const ProtobufCMessage *parent, const ProtobufCMessage *child,
                                        bool parent_wins, bool deep, int depth);

/* ---- routes (route.c) and delegation (delegation.c) ---- */

/* Where the routes being translated go, and what they inherit. */
typedef struct tr_route_ctx {
    const tr_gateway *gw;
    const Sluice__V1__VirtualService *vs;
    tr_vhost_t *vh;
    const char *prefix;                       /* parent prefix (delegated routes) */
    const Sluice__V1__Matcher *parent_matcher; /* for inheritable matchers */
    bool inherit_matchers, inherit_path;
    const Sluice__V1__RouteOptions *options; /* inherited */
    const char *owner_ns;
    const char *path;
    const tr_entry *visited[32];
    /* what reports about visited[d] while its routes are translated (NULL:
     * quietly, a last good version), and about the virtual service (NULL:
     * none, or quietly): a delegation cycle is reported on the table that
     * starts it and on the virtual service, as Gloo does */
    tr_cur *visited_cur[32];
    tr_cur *vs_cur;
    int depth;
} tr_route_ctx;

/* Translates routes into rc->vh's routes. */
void tr_translate_routes(tr_ctx *tx, tr_route_ctx *rc, Sluice__V1__Route *const *routes, size_t n);
/* Makes r answer with the Settings' invalid-route response. */
void tr_invalid_route(tr_ctx *tx, tr_route_t *r);
/* The weighted clusters of n destinations (NULL when unusable); *missing
 * set when one's upstream is not found or a destination names none. A
 * missing upstream keeps its cluster name and weight (Envoy answers its
 * share 503, as in Gloo): reported as a route's InvalidDestinationWarning,
 * or with group (an UpstreamGroup's own check) as Gloo's error. */
Envoy__Config__Route__V3__WeightedCluster *tr_weighted(tr_ctx *tx, Sluice__V1__WeightedDestination *const *ds, size_t n,
                                                       const char *def_ns, const char *path, bool group, bool *missing);
/* Checks every UpstreamGroup's destinations (flags and reports them). */
void tr_check_upstream_groups(tr_ctx *tx);
/* A delegating route (at path, its options merged opts): the routes of the
 * route tables it reaches, into rc->vh. */
void tr_delegate(tr_ctx *tx, tr_route_ctx *rc, const Sluice__V1__Route *route, const char *path,
                 const Sluice__V1__RouteOptions *opts);

/* ---- gateways and virtual hosts (listener.c, vhost.c, tls.c) ---- */

/* A Gateway to translate (stored, or one of Gloo's defaults). */
typedef struct tr_gw_item {
    const Sluice__V1__Gateway *gw;
    const char *ns;
    const char *name;
    long idx; /* in the Gateway bucket; -1 for a default gateway */
    uint64_t rev;
} tr_gw_item;

/* A VirtualService served by the gateway being translated. */
typedef struct tr_vs_item {
    long idx;
    const Sluice__V1__VirtualService *vs; /* the version used */
    tr_vhost_t *vh;
    bool dropped;
} tr_vs_item;

/* What the virtual services of the gateway being translated gave. */
typedef struct tr_gw_vhosts {
    tr_vs_item *items; /* in bucket order */
    size_t n_items;
    const tr_vh_cache **got; /* per VirtualService: the kept virtual host served, or NULL */
    uint8_t *served;         /* per VirtualService: see tr_memo_keep() */
    tr_gw_memo *memo;        /* the gateway's memo, or NULL */
    bool *changed;           /* per VirtualService: translated over the memo; NULL: memo not used */
    bool lazy;               /* unchanged ones' virtual hosts not made (items[k].vh NULL) */
} tr_gw_vhosts;

/* The Gateways of the store (flagged seen; without spec rejected), or
 * Gloo's two defaults when there are none; *n of them. */
tr_gw_item *tr_gateways(tr_ctx *tx, size_t *n);
/* Translates gateway g for proxy: its listener, route configuration and
 * what they refer to. ports: the proxy's ports in use, by number. */
void tr_translate_gateway(tr_ctx *tx, const tr_gw_item *g, const char *proxy, tr_map *ports);
/* spec.grpcApiListeners: the gateway also serves gRPC proxyless clients. */
bool tr_gw_proxyless(const Sluice__V1__Gateway *g);

/* VirtualService vs as a virtual host of gw. */
tr_vhost_t *tr_translate_vs(tr_ctx *tx, const tr_gateway *gw, const Sluice__V1__VirtualService *vs);
/* The virtual hosts of the virtual services gateway g (gw) serves into v. */
void tr_gateway_vhosts(tr_ctx *tx, const tr_gw_item *g, const tr_gateway *gw, tr_gw_vhosts *v);
/* Rejects the newer virtual service of each contested domain of v's
 * (marked dropped). */
void tr_domain_conflicts(tr_ctx *tx, const tr_gw_item *g, tr_gw_vhosts *v);

/* ssl (at path p) as a downstream TLS transport socket (def_ns: its
 * secrets' namespace); NULL when unusable (reported). */
Envoy__Config__Core__V3__TransportSocket *tr_downstream_tls(tr_ctx *tx, const Sluice__V1__SslConfig *ssl,
                                                            const char *def_ns, const char *p);
/* ssl's transportSocketConnectTimeout on filter chain fc (terminating
 * TLS with it). */
void tr_tls_chain_timeout(tr_ctx *tx, const Sluice__V1__SslConfig *ssl, Envoy__Config__Listener__V3__FilterChain *fc);
/* One filter chain per SNI set of the ssl gateway g's virtual services
 * (those that cannot have one dropped; each sslConfig completed by dflt,
 * a hybrid matcher's, or NULL), named after lname, into *chains; returns
 * how many. */
size_t tr_sni_chains(tr_ctx *tx, const tr_gw_item *g, const char *lname, const Sluice__V1__SslConfig *dflt,
                     tr_gw_vhosts *v, Envoy__Config__Listener__V3__FilterChain ***chains);
/* A listener's network filter name with typed config m. */
Envoy__Config__Listener__V3__Filter *tr_network_filter(tr_ctx *tx, const char *name, const ProtobufCMessage *m);
/* tcp.c: one filter chain per host of TCP gateway tg (at path p) of
 * gateway g (gw for the plugins' tcp_proxy hooks), those that cannot be served left out (reported); msl: a
 * hybrid matcher's sslConfig (its sniDomains for hosts without), or NULL.
 * *inspect set when a host needs the tls_inspector. Returns how many. */
/* Checks HTTP gateway hg (at path p; references default to namespace ns). */
void tr_http_gateway_valid(tr_ctx *tx, const char *ns, const Sluice__V1__HttpGateway *hg, const char *p);
/* Checks a matcher's sourcePrefixRanges ranges[0..n) (the matcher at p). */
void tr_ranges_valid(tr_ctx *tx, Sluice__V1__CidrRange *const *ranges, size_t n, const char *p);

/* A matched gateway of a hybrid gateway: one of its matchedGateways, or a
 * MatchableHttpGateway or MatchableTcpGateway it delegates to, then with
 * the parent's settings merged in (hybrid.c). */
typedef struct tr_matched {
    const Sluice__V1__MatchedGateway *mg;
    const char *path; /* of the matched gateway's fields in its resource */
    const char *ns;   /* namespace its references default to */
    tr_cur *cur;      /* a delegated one's report target; NULL: the Gateway */
    long idx;         /* a delegated one's position in its bucket */
} tr_matched;

/* The matched gateways of hybrid gateway g, in order, into *out (arena):
 * its matchedGateways, else the MatchableHttpGateways and then the
 * MatchableTcpGateways its delegatedHttpGateways and delegatedTcpGateways
 * select. Problems of the selection are reported on the Gateway (tx->cur),
 * a delegated gateway's own on it. */
size_t tr_hybrid_matched(tr_ctx *tx, const tr_gw_item *g, tr_matched **out);

/* Validation only, with their own reports, of the MatchableHttpGateways
 * and MatchableTcpGateways no Gateway selected. */
void tr_validate_unselected_matchable(tr_ctx *tx);

size_t tr_tcp_chains(tr_ctx *tx, const tr_gw_item *g, const tr_gateway *gw, const Sluice__V1__TcpGateway *tg,
                     const Sluice__V1__SslConfig *msl, const char *p, Envoy__Config__Listener__V3__FilterChain ***chains,
                     bool *inspect);

/* ---- caches: between translations (vhcache.c, memo.c, upcache.c), within one (bytesmap.c) ---- */

/* Room for n entries in m without growing. */
void tr_bytes_reserve(tr_ctx *tx, tr_bytes_map *m, size_t n);
/* Maps message k to its packed bytes d (len), in the arena. */
void tr_bytes_put(tr_ctx *tx, tr_bytes_map *m, const void *k, const uint8_t *d, size_t len);
/* The packed bytes of message k (*len), or NULL. */
const uint8_t *tr_bytes_get(const tr_bytes_map *m, const void *k, size_t *len);

/* The virtual host of e for gw kept from an earlier translation, replayed
 * (reports, plugins, route table flags; *used: the kept one), or NULL. */
tr_vhost_t *tr_vh_cached(tr_ctx *tx, const tr_entry *e, const tr_gateway *gw, const tr_vh_cache **used);
/* Keeps vh (translated from e for gw, rec recorded) for the next
 * translation and registers its packed bytes for this one. */
const tr_vh_cache *tr_vh_keep(tr_ctx *tx, tr_entry *e, const tr_gateway *gw, const tr_vhost_t *vh, const tr_rec *rec);

/* The memo of proxy's listener (marked used by this translation), or NULL. */
tr_gw_memo *tr_memo_find(tr_ctx *tx, const char *proxy, const char *listener);
/* Whether m holds for this translation; fills changed[] (per VirtualService). */
bool tr_memo_usable(tr_ctx *tx, const tr_gw_memo *m, bool *changed);
/* Keeps (or brings up to date) memo m of gateway gw: see memo.c. */
void tr_memo_keep(tr_ctx *tx, tr_gw_memo *m, const tr_gateway *gw, const tr_vh_cache *const *got,
                  const uint8_t *served, const bool *changed, bool dropped);
/* Whether a changed virtual service's domain may be contested. */
bool tr_memo_contested(const tr_gw_memo *m, const bool *changed, const tr_vs_item *items, size_t n_items);
/* Replays what the unchanged VirtualServices m serves do besides their
 * bytes: the plugins they use, the route table flags they set. */
void tr_memo_replay(tr_ctx *tx, const tr_gw_memo *m, const bool *changed);
/* The kept virtual host m serves for VirtualService i, or NULL: none. */
const tr_vh_cache *tr_memo_served(const tr_gw_memo *m, size_t i);
/* The virtual host m serves for VirtualService i (its bytes spliced). */
tr_vhost_t *tr_vh_of_kept(tr_ctx *tx, const tr_gw_memo *m, size_t i);
/* Whether m's last route configuration is in parts (tr_route_patched). */
bool tr_memo_patchable(const tr_gw_memo *m);
/* m's last route configuration when named rname and servable as it is
 * (whole bytes unless options.route_parts_only), or NULL (m may be NULL). */
tr_blob *tr_memo_route(tr_ctx *tx, const tr_gw_memo *m, const char *rname);
/* Makes the virtual hosts items left out (vh NULL) from m. */
void tr_vh_materialize(tr_ctx *tx, const tr_gw_memo *m, tr_vs_item *items, size_t n_items);

/* The stamps an upstream's kept build depends on besides its own, with a
 * cursor over the endpoint sets (upstreams are visited in order). */
typedef struct tr_up_stamps {
    uint64_t settings;
    size_t eps_pos; /* cursor in the endpoint sets */
} tr_up_stamps;

/* What building an upstream gave. */
typedef struct tr_up_out {
    tr_cluster_t *cluster;
    tr_cla_t *cla; /* EDS only */
    /* Secrets the cluster refers to over SDS (upstream TLS), to add to
     * every proxy the cluster is part of. */
    tr_out **secrets;
    size_t n_secrets;
    /* Or the packed bytes kept from an earlier translation (cluster NULL). */
    const tr_up_cache *cached;
    const char *cluster_name;
} tr_up_out;

/* The stamp of entry ns/name of kind k, or 0. */
uint64_t tr_entry_stamp(tr_ctx *tx, const sl_kind *k, const char *ns, const char *name);
/* Upstream e's kept build into *o when still valid. */
bool tr_upstream_cached(tr_ctx *tx, tr_entry *e, tr_up_out *o, tr_up_stamps *st);
/* Keeps the clean build *o of upstream e, and uses its packed bytes. */
sl_status tr_upstream_cache_put(tr_ctx *tx, tr_entry *e, tr_up_out *o, tr_up_stamps *st);

/* ---- route configurations (rcfg.c) ---- */

/* rc packed, its virtual hosts' bytes spliced (a new blob, one reference;
 * NULL when out of memory). */
tr_blob *tr_pack_route_config(tr_ctx *tx, const Envoy__Config__Route__V3__RouteConfiguration *rc, const char *name);
/* The route configuration of memo m patched with the changed virtual
 * services' parts (held by tx), or NULL: pack items as usual. */
tr_blob *tr_route_patched(tr_ctx *tx, const tr_gw_memo *m, const bool *changed, const tr_vs_item *items,
                          size_t n_items, const char *rname);

/* ---- clusters (cluster.c) and endpoints (endpoint.c) ---- */

/* The cluster (and CLA when EDS) of upstream up with endpoint set eps. */
tr_up_out tr_build_upstream(tr_ctx *tx, const Sluice__V1__Upstream *up, const Sluice__V1__EndpointSet *eps,
                            bool proxyless);
/* The EndpointSet ns/name, or NULL. */
const Sluice__V1__EndpointSet *tr_endpoint_set(tr_ctx *tx, const char *ns, const char *name);
/* Builds every upstream once (kept ones from the cache) into built[];
 * *up_fast: none changed since all were kept clean (built[] not filled). */
sl_status tr_translate_upstreams(tr_ctx *tx, tr_up_out *built, bool *up_fast);
/* Adds the cluster (endpoints, secrets) of every usable upstream reach
 * marks to the proxy being built;
 * proxyless ones are built again for it. */
void tr_proxy_clusters(tr_ctx *tx, bool proxyless, const tr_up_out *built, bool up_fast, const uint8_t *reach);

/* The endpoints of endpoint set eps (of upstream ns/name) into cla. */
void tr_cla_from_endpoint_set(tr_ctx *tx, tr_cla_t *cla, const Sluice__V1__EndpointSet *eps,
                              const Sluice__V1__UpstreamSpec *spec, const char *ns, const char *name);
/* The static hosts st into cla; returns whether one is a host name. */
bool tr_cla_from_static(tr_ctx *tx, tr_cla_t *cla, const Sluice__V1__StaticUpstreamSpec *st);
/* Leaves out cla's endpoints that are not IP addresses. */
void tr_cla_ip_only(tr_cla_t *cla);
/* Leaves out cla's empty locality groups. */
void tr_cla_drop_empty(tr_cla_t *cla);

/* ---- results (result.c) and reports (report.c) ---- */

/* Forgets the proxy being built's resources. */
void tr_reset_out(tr_ctx *tx);
/* The kept whole list of proxy's type t, when still what visiting the
 * upstreams would give, or NULL. */
tr_sort_cache *tr_whole_list(tr_ctx *tx, const char *proxy, bool proxyless, sl_xds_type t);
/* Packs the proxy being built into p (whole[t]: a kept list to share). */
sl_status tr_pack_proxy(tr_ctx *tx, sl_tr_proxy *p, tr_bytes_map *memo, tr_sort_cache *const *whole);
/* Sorts res's proxies by name. */
void tr_sort_proxies(sl_tr_result *res);
/* Whether report i of r is borrowed from r's list (not r's own). */
bool tr_report_borrowed(const sl_tr_result *r, size_t i);
/* Validates what no gateway selected (virtual services, route tables). */
void tr_validate_unselected(tr_ctx *tx);
/* The end of a translation: reports, caches not used let go, last good
 * versions. */
sl_status tr_finish(tr_ctx *tx, sl_tr_result *res);

#endif
