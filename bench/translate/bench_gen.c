/* bench_gen.c - see bench_gen.h. */
#include "bench_gen.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/v1/endpoints.pb-c.h"
#include "sluice/v1/upstream.pb-c.h"
#include "sluice/v1/virtual_service.pb-c.h"

static Sluice__V1__Metadata *md(const char *name)
{
    Sluice__V1__Metadata *m = malloc(sizeof *m);
    sluice__v1__metadata__init(m);
    m->name = strdup(name);
    m->namespace_ = strdup("default");
    return m;
}

ProtobufCMessage *bench_gen_upstream(int i)
{
    char name[64];
    Sluice__V1__Upstream *u = malloc(sizeof *u);
    sluice__v1__upstream__init(u);
    snprintf(name, sizeof name, "up-%d", i);
    u->metadata = md(name);
    u->spec = malloc(sizeof *u->spec);
    sluice__v1__upstream_spec__init(u->spec);
    u->spec->upstream_type_case = SLUICE__V1__UPSTREAM_SPEC__UPSTREAM_TYPE_DNS;
    u->spec->dns = malloc(sizeof *u->spec->dns);
    sluice__v1__dns_upstream_spec__init(u->spec->dns);
    u->spec->dns->name = strdup("svc.internal");
    u->spec->dns->port = 8080;
    return &u->base;
}

ProtobufCMessage *bench_gen_endpoints(int i, int salt)
{
    char name[64];
    Sluice__V1__EndpointSet *e = malloc(sizeof *e);
    sluice__v1__endpoint_set__init(e);
    snprintf(name, sizeof name, "up-%d", i);
    e->metadata = md(name);
    e->spec = malloc(sizeof *e->spec);
    sluice__v1__endpoint_set_spec__init(e->spec);
    e->spec->n_endpoints = 10;
    e->spec->endpoints = malloc(10 * sizeof *e->spec->endpoints);
    for (int j = 0; j < 10; j++) {
        char addr[32];
        Sluice__V1__Endpoint *ep = malloc(sizeof *ep);
        sluice__v1__endpoint__init(ep);
        snprintf(addr, sizeof addr, "10.%d.%d.%d", (i >> 8) & 255, i & 255, j + 1 + salt);
        ep->address = strdup(addr);
        ep->port = 8080;
        e->spec->endpoints[j] = ep;
    }
    return &e->base;
}

ProtobufCMessage *bench_gen_vs(int i, int n_up, const char *prefix)
{
    char name[64], dom[96];
    Sluice__V1__VirtualService *v = malloc(sizeof *v);
    sluice__v1__virtual_service__init(v);
    snprintf(name, sizeof name, "vs-%d", i);
    v->metadata = md(name);
    v->spec = malloc(sizeof *v->spec);
    sluice__v1__virtual_service_spec__init(v->spec);
    v->spec->virtual_host = malloc(sizeof *v->spec->virtual_host);
    sluice__v1__virtual_host__init(v->spec->virtual_host);
    snprintf(dom, sizeof dom, "vs-%d.example.com", i);
    v->spec->virtual_host->n_domains = 1;
    v->spec->virtual_host->domains = malloc(sizeof(char *));
    v->spec->virtual_host->domains[0] = strdup(dom);
    v->spec->virtual_host->n_routes = 10;
    v->spec->virtual_host->routes = malloc(10 * sizeof(void *));
    for (int r = 0; r < 10; r++) {
        Sluice__V1__Route *rt = malloc(sizeof *rt);
        Sluice__V1__Matcher *m = malloc(sizeof *m);
        char p[64], up[64];
        sluice__v1__route__init(rt);
        sluice__v1__matcher__init(m);
        snprintf(p, sizeof p, "%s/%d", prefix, r);
        m->path_specifier_case = SLUICE__V1__MATCHER__PATH_SPECIFIER_PREFIX;
        m->prefix = strdup(p);
        rt->n_matchers = 1;
        rt->matchers = malloc(sizeof(void *));
        rt->matchers[0] = m;
        rt->action_case = SLUICE__V1__ROUTE__ACTION_ROUTE_ACTION;
        rt->route_action = malloc(sizeof *rt->route_action);
        sluice__v1__route_action__init(rt->route_action);
        rt->route_action->destination_case = SLUICE__V1__ROUTE_ACTION__DESTINATION_SINGLE;
        rt->route_action->single = malloc(sizeof *rt->route_action->single);
        sluice__v1__destination__init(rt->route_action->single);
        rt->route_action->single->destination_type_case = SLUICE__V1__DESTINATION__DESTINATION_TYPE_UPSTREAM;
        rt->route_action->single->upstream = malloc(sizeof(Sluice__V1__ResourceRef));
        sluice__v1__resource_ref__init(rt->route_action->single->upstream);
        snprintf(up, sizeof up, "up-%d", (i * 10 + r) % n_up);
        rt->route_action->single->upstream->name = strdup(up);
        rt->route_action->single->upstream->namespace_ = strdup("");
        v->spec->virtual_host->routes[r] = rt;
    }
    return &v->base;
}
