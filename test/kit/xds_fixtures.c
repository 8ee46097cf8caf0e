/* xds_fixtures.c - see xds_fixtures.h. */
#include "xds_fixtures.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "envoy/config/cluster/v3/cluster.pb-c.h"
#include "envoy/config/endpoint/v3/endpoint.pb-c.h"
#include "envoy/config/listener/v3/listener.pb-c.h"
#include "envoy/config/route/v3/route.pb-c.h"
#include "envoy/extensions/filters/http/router/v3/router.pb-c.h"
#include "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.pb-c.h"
#include "envoy/extensions/transport_sockets/tls/v3/secret.pb-c.h"
#include "ratelimit/config/ratelimit/v3/rls_conf.pb-c.h"
#include "sluice/wire.h"

static uint8_t *pack(const ProtobufCMessage *m, size_t *len)
{
    size_t n = protobuf_c_message_get_packed_size(m);
    uint8_t *b = malloc(n ? n : 1);
    if (b)
        protobuf_c_message_pack(m, b);
    *len = n;
    return b;
}

/* Packs m into a (caller-freed) Any value. */
static int any_of(Google__Protobuf__Any *any, const ProtobufCMessage *m, char *url, size_t urlcap)
{
    size_t n;
    uint8_t *b = pack(m, &n);
    if (!b)
        return -1;
    snprintf(url, urlcap, "type.googleapis.com/%s", m->descriptor->name);
    any->type_url = url;
    any->value.data = b;
    any->value.len = n;
    return 0;
}

uint8_t *fx_cluster(size_t *len, const char *name, const char *eds_service)
{
    Envoy__Config__Cluster__V3__Cluster c = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__INIT;
    Envoy__Config__Cluster__V3__Cluster__EdsClusterConfig eds = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__EDS_CLUSTER_CONFIG__INIT;
    Envoy__Config__Core__V3__ConfigSource cs = ENVOY__CONFIG__CORE__V3__CONFIG_SOURCE__INIT;
    Envoy__Config__Core__V3__AggregatedConfigSource ads = ENVOY__CONFIG__CORE__V3__AGGREGATED_CONFIG_SOURCE__INIT;
    Google__Protobuf__Duration to = GOOGLE__PROTOBUF__DURATION__INIT;
    c.name = (char *)name;
    c.cluster_discovery_type_case = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__CLUSTER_DISCOVERY_TYPE_TYPE;
    c.type = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__EDS;
    c.lb_policy = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_POLICY__ROUND_ROBIN;
    to.seconds = 5;
    c.connect_timeout = &to;
    cs.config_source_specifier_case = ENVOY__CONFIG__CORE__V3__CONFIG_SOURCE__CONFIG_SOURCE_SPECIFIER_ADS;
    cs.ads = &ads;
    cs.resource_api_version = ENVOY__CONFIG__CORE__V3__API_VERSION__V3;
    eds.eds_config = &cs;
    if (eds_service)
        eds.service_name = (char *)eds_service;
    c.eds_cluster_config = &eds;
    return pack(&c.base, len);
}

uint8_t *fx_cla(size_t *len, const char *name, int n, const char *const *addrs, const unsigned *ports)
{
    Envoy__Config__Endpoint__V3__ClusterLoadAssignment cla = ENVOY__CONFIG__ENDPOINT__V3__CLUSTER_LOAD_ASSIGNMENT__INIT;
    Envoy__Config__Endpoint__V3__LocalityLbEndpoints loc = ENVOY__CONFIG__ENDPOINT__V3__LOCALITY_LB_ENDPOINTS__INIT;
    Envoy__Config__Endpoint__V3__LocalityLbEndpoints *locs[1] = {&loc};
    Envoy__Config__Core__V3__Locality locality = ENVOY__CONFIG__CORE__V3__LOCALITY__INIT;
    Google__Protobuf__UInt32Value w = GOOGLE__PROTOBUF__UINT32_VALUE__INIT;
    Envoy__Config__Endpoint__V3__LbEndpoint lbe[16];
    Envoy__Config__Endpoint__V3__LbEndpoint *lbep[16];
    Envoy__Config__Endpoint__V3__Endpoint ep[16];
    Envoy__Config__Core__V3__Address ad[16];
    Envoy__Config__Core__V3__SocketAddress sa[16];
    if (n > 16)
        n = 16;
    cla.cluster_name = (char *)name;
    locality.region = "local";
    loc.locality = &locality;
    w.value = 1;
    loc.load_balancing_weight = &w;
    for (int i = 0; i < n; i++) {
        envoy__config__endpoint__v3__lb_endpoint__init(&lbe[i]);
        envoy__config__endpoint__v3__endpoint__init(&ep[i]);
        envoy__config__core__v3__address__init(&ad[i]);
        envoy__config__core__v3__socket_address__init(&sa[i]);
        sa[i].address = (char *)addrs[i];
        sa[i].port_specifier_case = ENVOY__CONFIG__CORE__V3__SOCKET_ADDRESS__PORT_SPECIFIER_PORT_VALUE;
        sa[i].port_value = ports[i];
        ad[i].address_case = ENVOY__CONFIG__CORE__V3__ADDRESS__ADDRESS_SOCKET_ADDRESS;
        ad[i].socket_address = &sa[i];
        ep[i].address = &ad[i];
        lbe[i].host_identifier_case = ENVOY__CONFIG__ENDPOINT__V3__LB_ENDPOINT__HOST_IDENTIFIER_ENDPOINT;
        lbe[i].endpoint = &ep[i];
        lbep[i] = &lbe[i];
    }
    loc.n_lb_endpoints = (size_t)n;
    loc.lb_endpoints = lbep;
    cla.n_endpoints = 1;
    cla.endpoints = locs;
    return pack(&cla.base, len);
}

static uint8_t *listener(size_t *len, const char *name, const char *rds_name, int valid)
{
    Envoy__Config__Listener__V3__Listener l = ENVOY__CONFIG__LISTENER__V3__LISTENER__INIT;
    Envoy__Config__Listener__V3__ApiListener al = ENVOY__CONFIG__LISTENER__V3__API_LISTENER__INIT;
    Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpConnectionManager hcm =
        ENVOY__EXTENSIONS__FILTERS__NETWORK__HTTP_CONNECTION_MANAGER__V3__HTTP_CONNECTION_MANAGER__INIT;
    Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__Rds rds =
        ENVOY__EXTENSIONS__FILTERS__NETWORK__HTTP_CONNECTION_MANAGER__V3__RDS__INIT;
    Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpFilter f =
        ENVOY__EXTENSIONS__FILTERS__NETWORK__HTTP_CONNECTION_MANAGER__V3__HTTP_FILTER__INIT;
    Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpFilter *fs[1] = {&f};
    Envoy__Extensions__Filters__Http__Router__V3__Router router = ENVOY__EXTENSIONS__FILTERS__HTTP__ROUTER__V3__ROUTER__INIT;
    Envoy__Config__Core__V3__ConfigSource cs = ENVOY__CONFIG__CORE__V3__CONFIG_SOURCE__INIT;
    Envoy__Config__Core__V3__AggregatedConfigSource ads = ENVOY__CONFIG__CORE__V3__AGGREGATED_CONFIG_SOURCE__INIT;
    Google__Protobuf__Any rany = GOOGLE__PROTOBUF__ANY__INIT, hany = GOOGLE__PROTOBUF__ANY__INIT;
    char u1[128], u2[128];
    uint8_t *out = NULL;

    if (any_of(&rany, &router.base, u1, sizeof u1))
        return NULL;
    f.name = "envoy.filters.http.router";
    f.config_type_case = ENVOY__EXTENSIONS__FILTERS__NETWORK__HTTP_CONNECTION_MANAGER__V3__HTTP_FILTER__CONFIG_TYPE_TYPED_CONFIG;
    f.typed_config = &rany;
    cs.config_source_specifier_case = ENVOY__CONFIG__CORE__V3__CONFIG_SOURCE__CONFIG_SOURCE_SPECIFIER_ADS;
    cs.ads = &ads;
    cs.resource_api_version = ENVOY__CONFIG__CORE__V3__API_VERSION__V3;
    rds.config_source = &cs;
    rds.route_config_name = (char *)rds_name;
    hcm.stat_prefix = "sluice";
    hcm.route_specifier_case = ENVOY__EXTENSIONS__FILTERS__NETWORK__HTTP_CONNECTION_MANAGER__V3__HTTP_CONNECTION_MANAGER__ROUTE_SPECIFIER_RDS;
    hcm.rds = &rds;
    hcm.n_http_filters = 1;
    hcm.http_filters = fs;
    if (!valid) /* RDS config source neither ads nor self */
        cs.config_source_specifier_case = ENVOY__CONFIG__CORE__V3__CONFIG_SOURCE__CONFIG_SOURCE_SPECIFIER__NOT_SET;
    if (any_of(&hany, &hcm.base, u2, sizeof u2))
        goto out;
    al.api_listener = &hany;
    l.name = (char *)name;
    l.api_listener = &al;
    out = pack(&l.base, len);
out:
    free(rany.value.data);
    free(hany.value.data);
    return out;
}

uint8_t *fx_listener(size_t *len, const char *name, const char *rds_name)
{
    return listener(len, name, rds_name, 1);
}

uint8_t *fx_listener_bad(size_t *len, const char *name, const char *rds_name)
{
    return listener(len, name, rds_name, 0);
}

uint8_t *fx_route(size_t *len, const char *name, int n, const char *const *clusters, const unsigned *weights)
{
    Envoy__Config__Route__V3__RouteConfiguration rc = ENVOY__CONFIG__ROUTE__V3__ROUTE_CONFIGURATION__INIT;
    Envoy__Config__Route__V3__VirtualHost vh = ENVOY__CONFIG__ROUTE__V3__VIRTUAL_HOST__INIT;
    Envoy__Config__Route__V3__VirtualHost *vhs[1] = {&vh};
    Envoy__Config__Route__V3__Route r = ENVOY__CONFIG__ROUTE__V3__ROUTE__INIT;
    Envoy__Config__Route__V3__Route *rs[1] = {&r};
    Envoy__Config__Route__V3__RouteMatch m = ENVOY__CONFIG__ROUTE__V3__ROUTE_MATCH__INIT;
    Envoy__Config__Route__V3__RouteAction a = ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__INIT;
    Envoy__Config__Route__V3__WeightedCluster wc = ENVOY__CONFIG__ROUTE__V3__WEIGHTED_CLUSTER__INIT;
    Envoy__Config__Route__V3__WeightedCluster__ClusterWeight cw[8];
    Envoy__Config__Route__V3__WeightedCluster__ClusterWeight *cwp[8];
    Google__Protobuf__UInt32Value wv[8], tw = GOOGLE__PROTOBUF__UINT32_VALUE__INIT;
    char *domains[1] = {"*"};
    if (n > 8)
        n = 8;
    rc.name = (char *)name;
    vh.name = "sluice_vh";
    vh.n_domains = 1;
    vh.domains = domains;
    m.path_specifier_case = ENVOY__CONFIG__ROUTE__V3__ROUTE_MATCH__PATH_SPECIFIER_PREFIX;
    m.prefix = "";
    r.match = &m;
    r.action_case = ENVOY__CONFIG__ROUTE__V3__ROUTE__ACTION_ROUTE;
    r.route = &a;
    if (n == 1) {
        a.cluster_specifier_case = ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__CLUSTER_SPECIFIER_CLUSTER;
        a.cluster = (char *)clusters[0];
    } else {
        for (int i = 0; i < n; i++) {
            envoy__config__route__v3__weighted_cluster__cluster_weight__init(&cw[i]);
            google__protobuf__uint32_value__init(&wv[i]);
            wv[i].value = weights ? weights[i] : 1;
            cw[i].name = (char *)clusters[i];
            cw[i].weight = &wv[i];
            cwp[i] = &cw[i];
        }
        /* gRPC before 1.57 wants the deprecated total_weight (default 100). */
        unsigned sum = 0;
        for (int i = 0; i < n; i++)
            sum += wv[i].value;
        tw.value = sum;
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
        wc.total_weight = &tw;
#pragma GCC diagnostic pop
        wc.n_clusters = (size_t)n;
        wc.clusters = cwp;
        a.cluster_specifier_case = ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__CLUSTER_SPECIFIER_WEIGHTED_CLUSTERS;
        a.weighted_clusters = &wc;
    }
    vh.n_routes = 1;
    vh.routes = rs;
    rc.n_virtual_hosts = 1;
    rc.virtual_hosts = vhs;
    return pack(&rc.base, len);
}

uint8_t *fx_route_many(size_t *len, const char *name, int nroutes, int nclusters)
{
    Envoy__Config__Route__V3__RouteConfiguration rc = ENVOY__CONFIG__ROUTE__V3__ROUTE_CONFIGURATION__INIT;
    Envoy__Config__Route__V3__VirtualHost vh = ENVOY__CONFIG__ROUTE__V3__VIRTUAL_HOST__INIT;
    Envoy__Config__Route__V3__VirtualHost *vhs[1] = {&vh};
    char *domains[1] = {"*"};
    Envoy__Config__Route__V3__Route *r = calloc((size_t)nroutes, sizeof *r);
    Envoy__Config__Route__V3__Route **rp = calloc((size_t)nroutes, sizeof *rp);
    Envoy__Config__Route__V3__RouteMatch *m = calloc((size_t)nroutes, sizeof *m);
    Envoy__Config__Route__V3__RouteAction *a = calloc((size_t)nroutes, sizeof *a);
    char (*pfx)[32] = calloc((size_t)nroutes, sizeof *pfx), (*cl)[32] = calloc((size_t)nroutes, sizeof *cl);
    uint8_t *out = NULL;
    if (!r || !rp || !m || !a || !pfx || !cl)
        goto out;
    for (int i = 0; i < nroutes; i++) {
        envoy__config__route__v3__route__init(&r[i]);
        envoy__config__route__v3__route_match__init(&m[i]);
        envoy__config__route__v3__route_action__init(&a[i]);
        snprintf(pfx[i], sizeof pfx[i], "/r%d/", i);
        snprintf(cl[i], sizeof cl[i], "c%d", nclusters > 0 ? i % nclusters : 0);
        m[i].path_specifier_case = ENVOY__CONFIG__ROUTE__V3__ROUTE_MATCH__PATH_SPECIFIER_PREFIX;
        m[i].prefix = pfx[i];
        a[i].cluster_specifier_case = ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__CLUSTER_SPECIFIER_CLUSTER;
        a[i].cluster = cl[i];
        r[i].match = &m[i];
        r[i].action_case = ENVOY__CONFIG__ROUTE__V3__ROUTE__ACTION_ROUTE;
        r[i].route = &a[i];
        rp[i] = &r[i];
    }
    rc.name = (char *)name;
    vh.name = "sluice_vh";
    vh.n_domains = 1;
    vh.domains = domains;
    vh.n_routes = (size_t)nroutes;
    vh.routes = rp;
    rc.n_virtual_hosts = 1;
    rc.virtual_hosts = vhs;
    out = pack(&rc.base, len);
out:
    free(r);
    free(rp);
    free(m);
    free(a);
    free(pfx);
    free(cl);
    return out;
}

uint8_t *fx_secret(size_t *len, const char *name)
{
    Envoy__Extensions__TransportSockets__Tls__V3__Secret s = ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__SECRET__INIT;
    s.name = (char *)name;
    return pack(&s.base, len);
}

uint8_t *fx_ratelimit(size_t *len, const char *name)
{
    Ratelimit__Config__Ratelimit__V3__RateLimitConfig c = RATELIMIT__CONFIG__RATELIMIT__V3__RATE_LIMIT_CONFIG__INIT;
    c.name = (char *)name;
    c.domain = (char *)name;
    return pack(&c.base, len);
}

sl_xds_res *fx_res(sl_xds_type t, const char *name, const char *ver, const char *arg)
{
    size_t len = 0;
    uint8_t *b = NULL;
    char buf[256];
    sl_xds_res *r = NULL;
    switch (t) {
    case SL_XDS_CLUSTER: b = fx_cluster(&len, name, arg); break;
    case SL_XDS_ENDPOINT: {
        const char *a[1] = {"127.0.0.1"};
        unsigned p[1] = {arg ? (unsigned)atoi(arg) : 8080};
        b = fx_cla(&len, name, 1, a, p);
        break;
    }
    case SL_XDS_LISTENER:
        snprintf(buf, sizeof buf, "%s-routes", name);
        b = fx_listener(&len, name, arg ? arg : buf);
        break;
    case SL_XDS_ROUTE: {
        const char *c[1] = {arg ? arg : "c1"};
        b = fx_route(&len, name, 1, c, NULL);
        break;
    }
    case SL_XDS_SECRET: b = fx_secret(&len, name); break;
    case SL_XDS_RATELIMIT: b = fx_ratelimit(&len, name); break;
    default: break;
    }
    if (!b || sl_xds_res_new(&r, t, name, ver, b, len) != SL_OK) {
        fprintf(stderr, "fx_res: cannot build %s %s\n", sl_xds_type_token(t), name);
        abort();
    }
    free(b);
    return r;
}

void fx_wire_name(const uint8_t *p, size_t n, char *out, size_t cap)
{
    size_t i = 0;
    out[0] = 0;
    while (i < n) {
        uint64_t key, len;
        if (sl_wire_varint_get(&key, p, n, &i) != SL_OK)
            return;
        if (key != (1 << 3 | SL_WIRE_LEN)) {
            if (sl_wire_skip(p, n, &i, (unsigned)(key & 7)) != SL_OK)
                return;
            continue;
        }
        if (sl_wire_varint_get(&len, p, n, &i) != SL_OK)
            return;
        snprintf(out, cap, "%.*s", (int)(len < n - i ? len : n - i), (const char *)p + i);
        return;
    }
}

Envoy__Config__Core__V3__Node *fx_node_init(fx_node *n, const char *id, const char *role)
{
    envoy__config__core__v3__node__init(&n->node);
    google__protobuf__struct__init(&n->md);
    google__protobuf__struct__fields_entry__init(&n->e);
    google__protobuf__value__init(&n->v);
    n->node.id = (char *)id;
    if (role) {
        n->v.kind_case = GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE;
        n->v.string_value = (char *)role;
        n->e.key = "role";
        n->e.value = &n->v;
        n->ep = &n->e;
        n->md.n_fields = 1;
        n->md.fields = &n->ep;
        n->node.metadata = &n->md;
    }
    return &n->node;
}
