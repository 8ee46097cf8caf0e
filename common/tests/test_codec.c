/* The config codec decodes YAML and JSON into Envoy's and Sluice's
 * messages by descriptor, and encodes them back: proto3 JSON names and
 * forms, well-known types, maps, oneofs, Any, null, multi-document streams,
 * and round trips that pack to the same bytes. */
#include <float.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "sluice/arena.h"
#include "sluice/codec.h"
#include "sluice/types.h"

#include "envoy/config/cluster/v3/cluster.pb-c.h"
#include "envoy/config/endpoint/v3/endpoint.pb-c.h"
#include "envoy/config/listener/v3/listener.pb-c.h"
#include "envoy/config/route/v3/route.pb-c.h"
#include "envoy/extensions/filters/http/router/v3/router.pb-c.h"
#include "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.pb-c.h"
#include "google/protobuf/duration.pb-c.h"
#include "google/protobuf/struct.pb-c.h"
#include "google/protobuf/timestamp.pb-c.h"
#include "google/protobuf/wrappers.pb-c.h"

#include "test_codec_helpers.h"

typedef Envoy__Config__Listener__V3__Listener Listener;
typedef Envoy__Config__Cluster__V3__Cluster Cluster;
typedef Envoy__Config__Endpoint__V3__ClusterLoadAssignment Cla;
typedef Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpConnectionManager Hcm;
typedef Envoy__Config__Route__V3__RouteConfiguration RouteConfiguration;

#define HCM_URL                                                                               \
    "type.googleapis.com/"                                                                    \
    "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"

/* The value of key in a Struct, or NULL. */
static const Google__Protobuf__Value *struct_get(const Google__Protobuf__Struct *s, const char *key)
{
    for (size_t i = 0; s && i < s->n_fields; i++)
        if (strcmp(s->fields[i]->key, key) == 0)
            return s->fields[i]->value;
    return NULL;
}

static void listener_with_hcm_round_trips(void **state)
{
    Listener *l = (Listener *)decode_file("envoy.config.listener.v3.Listener",
                                          "test/data/codec/listener.yaml");
    Envoy__Config__Listener__V3__Filter *f;
    Hcm *hcm;
    Envoy__Config__Route__V3__VirtualHost *vh;
    Envoy__Config__Route__V3__RouteAction *ra;
    Envoy__Extensions__Filters__Http__Router__V3__Router *router;
    const Google__Protobuf__Struct *meta;
    const Google__Protobuf__Value *v;

    assert_string_equal(l->name, "listener-::-8080");
    assert_string_equal(l->address->socket_address->address, "::");
    assert_int_equal(l->address->socket_address->port_value, 8080);
    assert_true(l->address->socket_address->ipv4_compat);
    assert_int_equal(l->n_filter_chains, 1);
    assert_int_equal(l->filter_chains[0]->n_filters, 1);
    f = l->filter_chains[0]->filters[0];
    assert_string_equal(f->name, "envoy.filters.network.http_connection_manager");
    assert_int_equal(f->config_type_case,
                     ENVOY__CONFIG__LISTENER__V3__FILTER__CONFIG_TYPE_TYPED_CONFIG);
    assert_string_equal(f->typed_config->type_url, HCM_URL);

    /* The Any holds a packed HttpConnectionManager. */
    hcm = (Hcm *)protobuf_c_message_unpack(type_of("envoy.extensions.filters.network."
                                                   "http_connection_manager.v3.HttpConnectionManager"),
                                           NULL, f->typed_config->value.len,
                                           f->typed_config->value.data);
    assert_non_null(hcm);
    assert_string_equal(hcm->stat_prefix, "http");
    assert_non_null(hcm->use_remote_address);
    assert_true(hcm->use_remote_address->value);
    assert_int_equal(hcm->common_http_protocol_options->idle_timeout->seconds, 300);
    assert_int_equal(hcm->route_specifier_case,
                     ENVOY__EXTENSIONS__FILTERS__NETWORK__HTTP_CONNECTION_MANAGER__V3__HTTP_CONNECTION_MANAGER__ROUTE_SPECIFIER_ROUTE_CONFIG);
    assert_string_equal(hcm->route_config->name, "listener-::-8080-routes");
    assert_int_equal(hcm->route_config->n_virtual_hosts, 1);
    vh = hcm->route_config->virtual_hosts[0];
    assert_int_equal(vh->n_domains, 2);
    assert_string_equal(vh->domains[0], "*");
    assert_string_equal(vh->domains[1], "petstore.example.com");
    assert_int_equal(vh->n_routes, 2);
    assert_string_equal(vh->routes[0]->match->prefix, "/api");
    ra = vh->routes[0]->route;
    assert_int_equal(ra->cluster_specifier_case,
                     ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__CLUSTER_SPECIFIER_CLUSTER);
    assert_string_equal(ra->cluster, "petstore_default");
    assert_int_equal(ra->timeout->seconds, 1);
    assert_int_equal(ra->timeout->nanos, 500000000);
    assert_string_equal(vh->routes[1]->match->path, "/health");
    assert_string_equal(vh->routes[1]->match->headers[0]->string_match->exact, "true");
    assert_int_equal(vh->routes[1]->direct_response->status, 200);
    assert_int_equal(vh->request_headers_to_add[0]->append_action,
                     ENVOY__CONFIG__CORE__V3__HEADER_VALUE_OPTION__HEADER_APPEND_ACTION__OVERWRITE_IF_EXISTS_OR_ADD);
    assert_int_equal(hcm->n_http_filters, 1);
    assert_string_equal(hcm->http_filters[0]->typed_config->type_url,
                        "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router");
    router = (Envoy__Extensions__Filters__Http__Router__V3__Router *)protobuf_c_message_unpack(
        &envoy__extensions__filters__http__router__v3__router__descriptor, NULL,
        hcm->http_filters[0]->typed_config->value.len, hcm->http_filters[0]->typed_config->value.data);
    assert_non_null(router);
    assert_true(router->suppress_envoy_headers);
    protobuf_c_message_free_unpacked(&router->base, NULL);
    /* An Any of a message with no fields set packs to nothing. */
    assert_int_equal(hcm->access_log[0]->typed_config->value.len, 0);
    protobuf_c_message_free_unpacked(&hcm->base, NULL);

    /* metadata.filter_metadata: map<string, Struct>, Struct from any YAML. */
    assert_int_equal(l->metadata->n_filter_metadata, 1);
    assert_string_equal(l->metadata->filter_metadata[0]->key, "sluice");
    meta = l->metadata->filter_metadata[0]->value;
    v = struct_get(meta, "proxy");
    assert_int_equal(v->kind_case, GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE);
    assert_string_equal(v->string_value, "gateway-proxy");
    v = struct_get(meta, "replicas");
    assert_int_equal(v->kind_case, GOOGLE__PROTOBUF__VALUE__KIND_NUMBER_VALUE);
    assert_true(v->number_value == 3);
    v = struct_get(meta, "weights");
    assert_int_equal(v->kind_case, GOOGLE__PROTOBUF__VALUE__KIND_LIST_VALUE);
    assert_int_equal(v->list_value->n_values, 3);
    assert_true(v->list_value->values[1]->number_value == 2.5);
    assert_true(v->list_value->values[2]->number_value == -3);
    v = struct_get(meta, "canary");
    assert_int_equal(v->kind_case, GOOGLE__PROTOBUF__VALUE__KIND_BOOL_VALUE);
    assert_false(v->bool_value);
    v = struct_get(meta, "owner");
    assert_int_equal(v->kind_case, GOOGLE__PROTOBUF__VALUE__KIND_NULL_VALUE);
    v = struct_get(struct_get(meta, "labels")->struct_value, "tier.io/name");
    assert_string_equal(v->string_value, "web");

    assert_roundtrip(&l->base);
    protobuf_c_message_free_unpacked(&l->base, NULL);
}

static void cluster_round_trips(void **state)
{
    Cluster *c = (Cluster *)decode_file("envoy.config.cluster.v3.Cluster",
                                        "test/data/codec/cluster.yaml");
    Envoy__Config__Endpoint__V3__LocalityLbEndpoints *loc;

    assert_string_equal(c->name, "petstore_default");
    assert_int_equal(c->cluster_discovery_type_case,
                     ENVOY__CONFIG__CLUSTER__V3__CLUSTER__CLUSTER_DISCOVERY_TYPE_TYPE);
    assert_int_equal(c->type, ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__STATIC);
    assert_int_equal(c->connect_timeout->seconds, 0);
    assert_int_equal(c->connect_timeout->nanos, 250000000);
    assert_int_equal(c->lb_policy, ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_POLICY__LEAST_REQUEST);
    assert_int_equal(c->per_connection_buffer_limit_bytes->value, 32768);
    assert_true(c->common_lb_config->healthy_panic_threshold->value == 50.5);
    assert_int_equal(c->circuit_breakers->thresholds[0]->priority,
                     ENVOY__CONFIG__CORE__V3__ROUTING_PRIORITY__HIGH);
    assert_int_equal(c->circuit_breakers->thresholds[0]->max_retries->value, 3);
    assert_int_equal(c->health_checks[0]->interval->seconds, 10);
    assert_int_equal(c->health_checks[0]->http_health_check->expected_statuses[0]->end, 300);
    assert_string_equal(c->load_assignment->cluster_name, "petstore_default");
    loc = c->load_assignment->endpoints[0];
    assert_string_equal(loc->locality->region, "eu-west-1");
    assert_int_equal(loc->load_balancing_weight->value, 10);
    assert_int_equal(loc->n_lb_endpoints, 2);
    assert_string_equal(loc->lb_endpoints[1]->endpoint->address->socket_address->address,
                        "10.0.0.2");
    assert_string_equal(loc->lb_endpoints[1]->endpoint->hostname, "pet-2");
    assert_int_equal(loc->lb_endpoints[1]->health_status,
                     ENVOY__CONFIG__CORE__V3__HEALTH_STATUS__HEALTHY);
    assert_int_equal(c->load_assignment->policy->overprovisioning_factor->value, 140);

    assert_roundtrip(&c->base);
    protobuf_c_message_free_unpacked(&c->base, NULL);
}

static void cluster_load_assignment_from_json(void **state)
{
    Cla *cla = (Cla *)decode_file("envoy.config.endpoint.v3.ClusterLoadAssignment",
                                  "test/data/codec/cla.json");
    Envoy__Config__Endpoint__V3__LbEndpoint *ep;
    const Google__Protobuf__Struct *lb;

    assert_string_equal(cla->cluster_name, "petstore_default");
    assert_string_equal(cla->endpoints[0]->locality->sub_zone, "rack-7");
    assert_int_equal(cla->endpoints[0]->priority, 1);
    ep = cla->endpoints[0]->lb_endpoints[0];
    assert_int_equal(ep->endpoint->address->socket_address->port_value, 443);
    assert_int_equal(ep->endpoint->health_check_config->port_value, 8443);
    assert_int_equal(ep->load_balancing_weight->value, 3);
    assert_string_equal(ep->metadata->filter_metadata[0]->key, "envoy.lb");
    lb = ep->metadata->filter_metadata[0]->value;
    assert_true(struct_get(lb, "canary")->bool_value);
    assert_string_equal(struct_get(lb, "version")->string_value, "v2");
    ep = cla->endpoints[0]->lb_endpoints[1];
    assert_string_equal(ep->endpoint->address->pipe->path, "/run/pet.sock");
    assert_int_equal(ep->endpoint->address->pipe->mode, 384);
    assert_int_equal(ep->health_status, ENVOY__CONFIG__CORE__V3__HEALTH_STATUS__DRAINING);
    assert_int_equal(cla->policy->drop_overloads[0]->drop_percentage->denominator,
                     ENVOY__TYPE__V3__FRACTIONAL_PERCENT__DENOMINATOR_TYPE__TEN_THOUSAND);

    assert_roundtrip(&cla->base);
    protobuf_c_message_free_unpacked(&cla->base, NULL);
}

static void route_configuration_round_trips(void **state)
{
    RouteConfiguration *rc = (void *)decode_file("envoy.config.route.v3.RouteConfiguration",
                                                 "test/data/codec/route.yaml");
    Envoy__Config__Route__V3__RouteAction *ra;
    char *yaml;

    assert_non_null(rc->validate_clusters);
    assert_false(rc->validate_clusters->value);
    ra = rc->virtual_hosts[0]->routes[0]->route;
    assert_int_equal(ra->cluster_specifier_case,
                     ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__CLUSTER_SPECIFIER_WEIGHTED_CLUSTERS);
    assert_int_equal(ra->weighted_clusters->n_clusters, 2);
    assert_int_equal(ra->weighted_clusters->clusters[0]->weight->value, 90);
    assert_int_equal(ra->retry_policy->per_try_timeout->nanos, 500000000);
    assert_int_equal(ra->retry_policy->retry_back_off->base_interval->nanos, 25000000);
    assert_true(ra->hash_policy[0]->terminal);
    assert_non_null(ra->idle_timeout); /* a zero duration that was written */
    assert_int_equal(rc->virtual_hosts[0]->routes[1]->redirect->response_code,
                     ENVOY__CONFIG__ROUTE__V3__REDIRECT_ACTION__REDIRECT_RESPONSE_CODE__PERMANENT_REDIRECT);
    assert_int_equal(rc->virtual_hosts[0]->routes[1]->n_typed_per_filter_config, 1);
    yaml = encode_yaml(&rc->base);
    assert_non_null(strstr(yaml, "\nvalidateClusters: false\n"));
    assert_non_null(strstr(yaml, "\n      idleTimeout: 0s\n"));
    assert_non_null(strstr(yaml, "\n        allowCredentials: true\n"));
    free(yaml);
    assert_roundtrip(&rc->base);
    protobuf_c_message_free_unpacked(&rc->base, NULL);
}

static void json_surrogate_pairs(void **state)
{
    const char *json = "{\"name\": \"smile \\ud83d\\ude00 \\u00e9\\t\\\"\\\\\\/\"}";
    Cluster *c = (Cluster *)decode_ok("envoy.config.cluster.v3.Cluster", json, strlen(json), true, NULL);

    assert_string_equal(c->name, "smile \xf0\x9f\x98\x80 \xc3\xa9\t\"\\/");
    protobuf_c_message_free_unpacked(&c->base, NULL);
}

static void encodes_proto3_json(void **state)
{
    ProtobufCMessage *m = decode_str("envoy.config.cluster.v3.Cluster",
                                     "name: c1\n"
                                     "connect_timeout: {seconds: 2, nanos: 500000}\n"
                                     "lb_policy: 5\n"
                                     "max_requests_per_connection: 0\n"
                                     "dns_refresh_rate: 60s\n"
                                     "lrs_server: {}\n");
    char *json = encode_json(m, SL_CODEC_JSON_COMPACT);

    /* lowerCamel names, descriptor order, the zero wrapper kept (it is
     * present), enums by name, Duration as seconds with a trimmed fraction,
     * an empty sub-message kept as {}. */
    assert_string_equal(json, "{\"name\":\"c1\",\"connectTimeout\":\"2.0005s\",\"lbPolicy\":"
                              "\"MAGLEV\",\"maxRequestsPerConnection\":0,\"dnsRefreshRate\":\"60s\","
                              "\"lrsServer\":{}}");
    free(json);
    json = encode_json(m, 0);
    assert_string_equal(json, "{\n"
                              "  \"name\": \"c1\",\n"
                              "  \"connectTimeout\": \"2.0005s\",\n"
                              "  \"lbPolicy\": \"MAGLEV\",\n"
                              "  \"maxRequestsPerConnection\": 0,\n"
                              "  \"dnsRefreshRate\": \"60s\",\n"
                              "  \"lrsServer\": {}\n"
                              "}\n");
    free(json);
    json = encode_yaml(m);
    assert_string_equal(json, "name: c1\n"
                              "connectTimeout: 2.0005s\n"
                              "lbPolicy: MAGLEV\n"
                              "maxRequestsPerConnection: 0\n"
                              "dnsRefreshRate: 60s\n"
                              "lrsServer: {}\n");
    free(json);
    protobuf_c_message_free_unpacked(m, NULL);
}

static void names_in_both_spellings(void **state)
{
    Envoy__Config__Core__V3__SocketAddress *a = (void *)decode_str(
        "envoy.config.core.v3.SocketAddress",
        "address: 127.0.0.1\nportValue: 80\nipv4_compat: true\nresolverName: r\n");

    assert_string_equal(a->address, "127.0.0.1");
    assert_int_equal(a->port_value, 80);
    assert_true(a->ipv4_compat);
    assert_string_equal(a->resolver_name, "r");
    protobuf_c_message_free_unpacked(&a->base, NULL);
}

static void scalars_in_every_form(void **state)
{
    /* int64 as number and as string, uint64 at its limit, floats, bools,
     * bytes in both base64 alphabets, enums by name and number. */
    Envoy__Type__V3__Int64Range *r =
        (void *)decode_str("envoy.type.v3.Int64Range", "start: '-9223372036854775808'\nend: 9223372036854775807\n");
    Google__Protobuf__UInt64Value *u;
    Google__Protobuf__DoubleValue *dv;
    Google__Protobuf__FloatValue *fv;
    Google__Protobuf__BytesValue *bv;
    Google__Protobuf__BoolValue *b;
    char *json;

    assert_true(r->start == INT64_MIN);
    assert_true(r->end == INT64_MAX);
    json = encode_json(&r->base, SL_CODEC_JSON_COMPACT);
    assert_string_equal(json, "{\"start\":\"-9223372036854775808\",\"end\":\"9223372036854775807\"}");
    free(json);
    json = encode_yaml(&r->base);
    assert_string_equal(json, "start: -9223372036854775808\nend: 9223372036854775807\n");
    free(json);
    assert_roundtrip(&r->base);
    protobuf_c_message_free_unpacked(&r->base, NULL);

    u = (void *)decode_str("google.protobuf.UInt64Value", "\"18446744073709551615\"");
    assert_true(u->value == UINT64_MAX);
    protobuf_c_message_free_unpacked(&u->base, NULL);
    u = (void *)decode_str("google.protobuf.UInt64Value", "1e3");
    assert_true(u->value == 1000);
    protobuf_c_message_free_unpacked(&u->base, NULL);

    dv = (void *)decode_str("google.protobuf.DoubleValue", "NaN");
    assert_true(isnan(dv->value));
    json = encode_json(&dv->base, 0);
    assert_string_equal(json, "\"NaN\"\n");
    free(json);
    protobuf_c_message_free_unpacked(&dv->base, NULL);
    dv = (void *)decode_str("google.protobuf.DoubleValue", "-.inf");
    assert_true(isinf(dv->value) && dv->value < 0);
    json = encode_json(&dv->base, 0);
    assert_string_equal(json, "\"-Infinity\"\n");
    free(json);
    protobuf_c_message_free_unpacked(&dv->base, NULL);
    dv = (void *)decode_str("google.protobuf.DoubleValue", "\"Infinity\"");
    assert_true(isinf(dv->value) && dv->value > 0);
    json = encode_yaml(&dv->base);
    assert_string_equal(json, ".inf\n");
    free(json);
    protobuf_c_message_free_unpacked(&dv->base, NULL);
    dv = (void *)decode_str("google.protobuf.DoubleValue", "0.1");
    json = encode_json(&dv->base, 0);
    assert_string_equal(json, "0.1\n");
    free(json);
    protobuf_c_message_free_unpacked(&dv->base, NULL);
    fv = (void *)decode_str("google.protobuf.FloatValue", "0.1");
    json = encode_json(&fv->base, 0);
    assert_string_equal(json, "0.1\n");
    free(json);
    protobuf_c_message_free_unpacked(&fv->base, NULL);
    /* FLT_MAX prints as a number slightly above it, which reads back. */
    fv = (void *)decode_str("google.protobuf.FloatValue", "-3.4028235e38");
    assert_true(fv->value == -FLT_MAX);
    json = encode_json(&fv->base, 0);
    assert_string_equal(json, "-3.4028235e+38\n");
    free(json);
    assert_roundtrip(&fv->base);
    protobuf_c_message_free_unpacked(&fv->base, NULL);
    fv = (void *)decode_str("google.protobuf.FloatValue", "1e-46");
    assert_true(fv->value == 0);
    protobuf_c_message_free_unpacked(&fv->base, NULL);

    bv = (void *)decode_str("google.protobuf.BytesValue", "/+8=");
    assert_int_equal(bv->value.len, 2);
    assert_int_equal(bv->value.data[0], 0xff);
    assert_int_equal(bv->value.data[1], 0xef);
    json = encode_json(&bv->base, 0);
    assert_string_equal(json, "\"/+8=\"\n");
    free(json);
    protobuf_c_message_free_unpacked(&bv->base, NULL);
    bv = (void *)decode_str("google.protobuf.BytesValue", "_-8");
    assert_int_equal(bv->value.len, 2);
    assert_int_equal(bv->value.data[0], 0xff);
    protobuf_c_message_free_unpacked(&bv->base, NULL);

    b = (void *)decode_str("google.protobuf.BoolValue", "True");
    assert_true(b->value);
    protobuf_c_message_free_unpacked(&b->base, NULL);

    {
        Cluster *c = (Cluster *)decode_str("envoy.config.cluster.v3.Cluster",
                                           "lbPolicy: 1\ntype: \"EDS\"\n");
        assert_int_equal(c->lb_policy, ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_POLICY__LEAST_REQUEST);
        assert_int_equal(c->type, ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__EDS);
        protobuf_c_message_free_unpacked(&c->base, NULL);
        /* proto3 enums are open: an unnamed number survives a round trip. */
        c = (Cluster *)decode_str("envoy.config.cluster.v3.Cluster", "lbPolicy: 77\n");
        assert_int_equal(c->lb_policy, 77);
        json = encode_json(&c->base, SL_CODEC_JSON_COMPACT);
        assert_string_equal(json, "{\"lbPolicy\":77}");
        free(json);
        assert_roundtrip(&c->base);
        protobuf_c_message_free_unpacked(&c->base, NULL);
    }
}

static void strings_are_quoted_only_when_needed(void **state)
{
    /* YAML plain scalars are strings for string fields; on the way out,
     * strings that YAML would read as something else are quoted. */
    Envoy__Config__Core__V3__Metadata *m = (void *)decode_str(
        "envoy.config.core.v3.Metadata",
        "filter_metadata:\n"
        "  s:\n"
        "    quoted_number: \"8080\"\n"
        "    number: 8080\n"
        "    quoted_bool: 'true'\n"
        "    yes_word: yes\n"
        "    empty: ''\n"
        "    tilde: '~'\n"
        "    text: \"multi\\nline \\\"q\\\" \\u00e9\"\n"
        "    colon: 'a: b'\n");
    const Google__Protobuf__Struct *s = m->filter_metadata[0]->value;
    char *yaml;

    assert_string_equal(struct_get(s, "quoted_number")->string_value, "8080");
    assert_true(struct_get(s, "number")->number_value == 8080);
    assert_string_equal(struct_get(s, "quoted_bool")->string_value, "true");
    assert_string_equal(struct_get(s, "yes_word")->string_value, "yes");
    assert_string_equal(struct_get(s, "empty")->string_value, "");
    assert_string_equal(struct_get(s, "tilde")->string_value, "~");
    assert_string_equal(struct_get(s, "text")->string_value, "multi\nline \"q\" \xc3\xa9");
    yaml = encode_yaml(&m->base);
    assert_string_equal(yaml, "filterMetadata:\n"
                              "  s:\n"
                              "    quoted_number: \"8080\"\n"
                              "    number: 8080\n"
                              "    quoted_bool: \"true\"\n"
                              "    yes_word: \"yes\"\n"
                              "    empty: \"\"\n"
                              "    tilde: \"~\"\n"
                              "    text: \"multi\\nline \\\"q\\\" \xc3\xa9\"\n"
                              "    colon: 'a: b'\n");
    free(yaml);
    assert_roundtrip(&m->base);
    protobuf_c_message_free_unpacked(&m->base, NULL);

    /* A plain scalar for a string field is its text. */
    {
        Envoy__Config__Core__V3__SocketAddress *a = (void *)decode_str(
            "envoy.config.core.v3.SocketAddress", "address: 10\nresolver_name: true\n");
        assert_string_equal(a->address, "10");
        assert_string_equal(a->resolver_name, "true");
        protobuf_c_message_free_unpacked(&a->base, NULL);
    }
}

static void characters_yaml_will_not_take_raw_are_escaped(void **state)
{
    /* C1 controls, DEL, Unicode line breaks and the BOM: YAML folds or
     * refuses them raw, so JSON output escapes them and YAML output puts
     * them in double quotes. */
    Google__Protobuf__Value *v = (void *)decode_str(
        "google.protobuf.Value", "\"a\\x80b\\x7f\\N\\L\\P\\ufeff\\x01\\ue000\"");
    char *json, *yaml;

    assert_string_equal(v->string_value, "a\xc2\x80" "b\x7f\xc2\x85\xe2\x80\xa8\xe2\x80\xa9\xef\xbb\xbf\x01\xee\x80\x80");
    json = encode_json(&v->base, 0);
    assert_string_equal(json, "\"a\\u0080b\\u007f\\u0085\\u2028\\u2029\\ufeff\\u0001\xee\x80\x80\"\n");
    free(json);
    yaml = encode_yaml(&v->base);
    assert_string_equal(yaml, "\"a\\x80b\\x7F\\N\\L\\P\\uFEFF\\x01\xee\x80\x80\"\n");
    free(yaml);
    assert_roundtrip(&v->base);
    protobuf_c_message_free_unpacked(&v->base, NULL);
}

static void wrappers_as_bare_scalars(void **state)
{
    Cluster *c = (Cluster *)decode_str("envoy.config.cluster.v3.Cluster",
                                       "per_connection_buffer_limit_bytes: 0\n"
                                       "respect_dns_ttl: true\n"
                                       "load_assignment: {policy: {overprovisioning_factor: {value: 7}}}\n"
                                       "alt_stat_name: ''\n");
    char *json;

    assert_non_null(c->per_connection_buffer_limit_bytes);
    assert_int_equal(c->per_connection_buffer_limit_bytes->value, 0);
    assert_int_equal(c->load_assignment->policy->overprovisioning_factor->value, 7);
    json = encode_json(&c->base, SL_CODEC_JSON_COMPACT);
    /* Descriptor order is field number order. */
    assert_string_equal(json, "{\"perConnectionBufferLimitBytes\":0,\"loadAssignment\":{\"policy\":"
                              "{\"overprovisioningFactor\":7}},\"respectDnsTtl\":true}");
    free(json);
    assert_roundtrip(&c->base);
    protobuf_c_message_free_unpacked(&c->base, NULL);
}

static void durations_and_timestamps(void **state)
{
    static const struct {
        const char *in;
        int64_t s;
        int32_t n;
        const char *out;
    } durations[] = {
        {"1.5s", 1, 500000000, "1.5s"},
        {"-0.5s", 0, -500000000, "-0.5s"},
        {"0s", 0, 0, "0s"},
        {"3.000000001s", 3, 1, "3.000000001s"},
        {"315576000000s", 315576000000LL, 0, "315576000000s"},
        {"{seconds: -2, nanos: -3000}", -2, -3000, "-2.000003s"},
        {"{seconds: 5}", 5, 0, "5s"},
    };
    static const struct {
        const char *in;
        int64_t s;
        int32_t n;
        const char *out;
    } stamps[] = {
        {"1970-01-01T00:00:00Z", 0, 0, "1970-01-01T00:00:00Z"},
        {"2024-02-29T23:59:59.5Z", 1709251199, 500000000, "2024-02-29T23:59:59.500Z"},
        {"2024-03-01T01:00:00+02:00", 1709247600, 0, "2024-02-29T23:00:00Z"},
        {"0001-01-01T00:00:00Z", -62135596800LL, 0, "0001-01-01T00:00:00Z"},
        {"9999-12-31T23:59:59.999999999z", 253402300799LL, 999999999,
         "9999-12-31T23:59:59.999999999Z"},
        {"1969-12-31t23:59:59.000001-00:30", 1799, 1000, "1970-01-01T00:29:59.000001Z"},
        {"{seconds: 86400}", 86400, 0, "1970-01-02T00:00:00Z"},
    };

    for (size_t i = 0; i < sizeof(durations) / sizeof(durations[0]); i++) {
        Google__Protobuf__Duration *d = (void *)decode_str("google.protobuf.Duration", durations[i].in);
        char *json;
        assert_true(d->seconds == durations[i].s);
        assert_int_equal(d->nanos, durations[i].n);
        json = encode_yaml(&d->base);
        assert_int_equal(strncmp(json, durations[i].out, strlen(durations[i].out)), 0);
        free(json);
        protobuf_c_message_free_unpacked(&d->base, NULL);
    }
    for (size_t i = 0; i < sizeof(stamps) / sizeof(stamps[0]); i++) {
        Google__Protobuf__Timestamp *t = (void *)decode_str("google.protobuf.Timestamp", stamps[i].in);
        char *json, want[64];
        assert_true(t->seconds == stamps[i].s);
        assert_int_equal(t->nanos, stamps[i].n);
        json = encode_json(&t->base, 0);
        snprintf(want, sizeof(want), "\"%s\"\n", stamps[i].out);
        assert_string_equal(json, want);
        free(json);
        protobuf_c_message_free_unpacked(&t->base, NULL);
    }
}

static void struct_value_and_list_value(void **state)
{
    const char *yaml = "a: 1\n"
                       "b: [true, null, \"x\", 1e3, {c: []}]\n"
                       "nested: {deep: {deeper: -0.25}}\n"
                       "str: plain text\n";
    Google__Protobuf__Struct *s = (void *)decode_str("google.protobuf.Struct", yaml);
    const Google__Protobuf__ListValue *l;
    Google__Protobuf__Value *v;
    char *json;

    l = struct_get(s, "b")->list_value;
    assert_int_equal(l->n_values, 5);
    assert_int_equal(l->values[1]->kind_case, GOOGLE__PROTOBUF__VALUE__KIND_NULL_VALUE);
    assert_true(l->values[3]->number_value == 1000);
    assert_int_equal(l->values[4]->struct_value->fields[0]->value->list_value->n_values, 0);
    json = encode_json(&s->base, SL_CODEC_JSON_COMPACT);
    assert_string_equal(json, "{\"a\":1,\"b\":[true,null,\"x\",1000,{\"c\":[]}],"
                              "\"nested\":{\"deep\":{\"deeper\":-0.25}},\"str\":\"plain text\"}");
    free(json);
    assert_roundtrip(&s->base);
    protobuf_c_message_free_unpacked(&s->base, NULL);

    /* A Value is any YAML, including a bare null. */
    v = (void *)decode_str("google.protobuf.Value", "null");
    assert_int_equal(v->kind_case, GOOGLE__PROTOBUF__VALUE__KIND_NULL_VALUE);
    protobuf_c_message_free_unpacked(&v->base, NULL);
    v = (void *)decode_str("google.protobuf.Value", "[1, [2]]");
    assert_int_equal(v->kind_case, GOOGLE__PROTOBUF__VALUE__KIND_LIST_VALUE);
    assert_true(v->list_value->values[1]->list_value->values[0]->number_value == 2);
    protobuf_c_message_free_unpacked(&v->base, NULL);
}

static void any_of_well_known_types_uses_value(void **state)
{
    const char *yaml = "typed_filter_metadata:\n"
                       "  d:\n"
                       "    '@type': type.googleapis.com/google.protobuf.Duration\n"
                       "    value: 2.5s\n"
                       "  s:\n"
                       "    value: {k: [1]}\n"
                       "    '@type': type.googleapis.com/google.protobuf.Struct\n"
                       "  w:\n"
                       "    '@type': type.googleapis.com/google.protobuf.UInt32Value\n"
                       "    value: 9\n"
                       "  nested:\n"
                       "    '@type': type.googleapis.com/google.protobuf.Any\n"
                       "    value:\n"
                       "      '@type': type.googleapis.com/envoy.config.core.v3.Locality\n"
                       "      region: r1\n"
                       "  empty: {}\n"
                       "  no_value:\n"
                       "    '@type': type.googleapis.com/google.protobuf.Value\n"
                       "  zero:\n"
                       "    '@type': type.googleapis.com/google.protobuf.Timestamp\n"
                       "    value: null\n";
    Envoy__Config__Core__V3__Metadata *m = (void *)decode_str("envoy.config.core.v3.Metadata", yaml);
    Google__Protobuf__Duration *d;
    char *json;

    assert_int_equal(m->n_typed_filter_metadata, 7);
    assert_string_equal(m->typed_filter_metadata[0]->value->type_url,
                        "type.googleapis.com/google.protobuf.Duration");
    d = google__protobuf__duration__unpack(NULL, m->typed_filter_metadata[0]->value->value.len,
                                           m->typed_filter_metadata[0]->value->value.data);
    assert_int_equal(d->seconds, 2);
    assert_int_equal(d->nanos, 500000000);
    google__protobuf__duration__free_unpacked(d, NULL);
    assert_string_equal(m->typed_filter_metadata[4]->value->type_url, "");
    json = encode_json(&m->base, SL_CODEC_JSON_COMPACT);
    assert_string_equal(json,
                        "{\"typedFilterMetadata\":{"
                        "\"d\":{\"@type\":\"type.googleapis.com/google.protobuf.Duration\",\"value\":\"2.5s\"},"
                        "\"s\":{\"@type\":\"type.googleapis.com/google.protobuf.Struct\",\"value\":{\"k\":[1]}},"
                        "\"w\":{\"@type\":\"type.googleapis.com/google.protobuf.UInt32Value\",\"value\":9},"
                        "\"nested\":{\"@type\":\"type.googleapis.com/google.protobuf.Any\",\"value\":{"
                        "\"@type\":\"type.googleapis.com/envoy.config.core.v3.Locality\",\"region\":\"r1\"}},"
                        "\"empty\":{},"
                        "\"no_value\":{\"@type\":\"type.googleapis.com/google.protobuf.Value\"},"
                        "\"zero\":{\"@type\":\"type.googleapis.com/google.protobuf.Timestamp\","
                        "\"value\":\"1970-01-01T00:00:00Z\"}}}");
    free(json);
    assert_roundtrip(&m->base);
    protobuf_c_message_free_unpacked(&m->base, NULL);
}

static void null_means_unset(void **state)
{
    Cluster *c = (Cluster *)decode_str("envoy.config.cluster.v3.Cluster",
                                       "name: ~\n"
                                       "connect_timeout: null\n"
                                       "lb_policy: NULL\n"
                                       "load_assignment:\n"
                                       "health_checks: null\n"
                                       "type: null\n"
                                       "cluster_type: {name: x}\n"
                                       "metadata: {filter_metadata: null}\n");
    char *json;

    assert_string_equal(c->name, "");
    assert_null(c->connect_timeout);
    assert_null(c->load_assignment);
    assert_int_equal(c->n_health_checks, 0);
    /* A null oneof member does not take the oneof. */
    assert_int_equal(c->cluster_discovery_type_case,
                     ENVOY__CONFIG__CLUSTER__V3__CLUSTER__CLUSTER_DISCOVERY_TYPE_CLUSTER_TYPE);
    json = encode_json(&c->base, SL_CODEC_JSON_COMPACT);
    assert_string_equal(json, "{\"metadata\":{},\"clusterType\":{\"name\":\"x\"}}");
    free(json);
    protobuf_c_message_free_unpacked(&c->base, NULL);

    /* An empty document is a message with nothing set. */
    c = (Cluster *)decode_str("envoy.config.cluster.v3.Cluster", "# nothing\n");
    json = encode_json(&c->base, SL_CODEC_JSON_COMPACT);
    assert_string_equal(json, "{}");
    free(json);
    protobuf_c_message_free_unpacked(&c->base, NULL);
}

static void oneof_members_keep_zero_values(void **state)
{
    /* A oneof member set to its zero value is still the chosen member. */
    Envoy__Config__Route__V3__RouteAction *ra =
        (void *)decode_str("envoy.config.route.v3.RouteAction", "cluster: ''\n");
    char *json;

    assert_int_equal(ra->cluster_specifier_case,
                     ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__CLUSTER_SPECIFIER_CLUSTER);
    json = encode_json(&ra->base, SL_CODEC_JSON_COMPACT);
    assert_string_equal(json, "{\"cluster\":\"\"}");
    free(json);
    assert_roundtrip(&ra->base);
    protobuf_c_message_free_unpacked(&ra->base, NULL);
}

static void yaml_anchors_and_aliases(void **state)
{
    RouteConfiguration *rc = (void *)decode_str(
        "envoy.config.route.v3.RouteConfiguration",
        "name: rc\n"
        "virtual_hosts:\n"
        "  - name: a\n"
        "    domains: &d [a.example.com, b.example.com]\n"
        "    routes: &r\n"
        "      - match: {prefix: /}\n"
        "        route: {cluster: c}\n"
        "  - name: b\n"
        "    domains: *d\n"
        "    routes: *r\n");

    assert_int_equal(rc->n_virtual_hosts, 2);
    assert_string_equal(rc->virtual_hosts[1]->domains[1], "b.example.com");
    assert_string_equal(rc->virtual_hosts[1]->routes[0]->route->cluster, "c");
    assert_roundtrip(&rc->base);
    protobuf_c_message_free_unpacked(&rc->base, NULL);
}

static void yaml_merge_keys(void **state)
{
    RouteConfiguration *rc = (void *)decode_str(
        "envoy.config.route.v3.RouteConfiguration",
        "virtual_hosts:\n"
        "  - &vh\n"
        "    name: a\n"
        "    domains: [a.example.com]\n"
        "    routes: [{match: {prefix: /}, route: {cluster: c}}]\n"
        "  - <<: *vh\n"
        "    name: b\n"
        "    domains: [b.example.com]\n"
        "  - <<: [*vh, {name: z, include_request_attempt_count: true, <<: {name: y}}]\n"
        "    name: c\n"
        "  - {<<: {name: d}}\n");
    char *yaml;

    assert_int_equal(rc->n_virtual_hosts, 4);
    assert_string_equal(rc->virtual_hosts[1]->name, "b");
    assert_string_equal(rc->virtual_hosts[1]->domains[0], "b.example.com");
    assert_int_equal(rc->virtual_hosts[1]->n_routes, 1);
    assert_string_equal(rc->virtual_hosts[1]->routes[0]->route->cluster, "c");
    assert_string_equal(rc->virtual_hosts[2]->name, "c");
    assert_string_equal(rc->virtual_hosts[2]->domains[0], "a.example.com");
    assert_true(rc->virtual_hosts[2]->include_request_attempt_count);
    assert_string_equal(rc->virtual_hosts[3]->name, "d");
    assert_roundtrip(&rc->base);
    protobuf_c_message_free_unpacked(&rc->base, NULL);

    /* A key that is "<<" as data is quoted on the way out. */
    rc = (void *)decode_str("envoy.config.route.v3.RouteConfiguration",
                            "virtual_hosts: [{typed_per_filter_config: {'<<': {}}}]\n");
    assert_string_equal(rc->virtual_hosts[0]->typed_per_filter_config[0]->key, "<<");
    yaml = encode_yaml(&rc->base);
    assert_non_null(strstr(yaml, "\"<<\": {}"));
    free(yaml);
    assert_roundtrip(&rc->base);
    protobuf_c_message_free_unpacked(&rc->base, NULL);
}

static void multi_document_streams(void **state)
{
    static const char text[] = "# leading comment\n"
                               "kind: Upstream\n"
                               "metadata: {name: one}\n"
                               "name: c1\n"
                               "---\n"
                               "---\n"
                               "kind: Upstream\n"
                               "metadata:\n"
                               "  name: two\n"
                               "name: c2\n"
                               "connect_timeout: 5s\n"
                               "...\n"
                               "--- {kind: Other, name: c3}\n";
    static const char *const ignore[] = {"kind", "metadata", NULL};
    sl_codec_options o = {.ignore_keys = ignore, .root_name = "Upstream"};
    const unsigned lines[] = {2, 5, 6, 13};
    const char *names[] = {"c1", NULL, "c2", "c3"};
    sl_codec_stream *s;
    sl_codec_doc *doc;
    sl_diag d;
    size_t i = 0;

    sl_diag_init(&d);
    assert_int_equal(sl_codec_stream_new(&s, text, strlen(text), "multi.yaml"), SL_OK);
    while (sl_codec_stream_next(s, &doc, &d) == SL_OK && doc) {
        Cluster *c;
        assert_true(i < 4);
        assert_int_equal(sl_codec_doc_line(doc), lines[i]);
        assert_int_equal(sl_codec_doc_empty(doc), names[i] == NULL);
        if (names[i]) {
            assert_int_equal(sl_codec_decode_doc((ProtobufCMessage **)&c,
                                                 type_of("envoy.config.cluster.v3.Cluster"), doc, &o, &d),
                             SL_OK);
            assert_string_equal(c->name, names[i]);
            protobuf_c_message_free_unpacked(&c->base, NULL);
        }
        if (i == 0 || i == 2) {
            assert_string_equal(sl_codec_doc_scalar(doc, "kind"), "Upstream");
            assert_string_equal(sl_codec_doc_scalar(doc, "metadata.name"), i ? "two" : "one");
        }
        assert_null(sl_codec_doc_scalar(doc, "metadata.nope"));
        assert_null(sl_codec_doc_scalar(doc, "name.deeper"));
        sl_codec_doc_free(doc);
        i++;
    }
    assert_int_equal(i, 4);
    assert_int_equal(sl_diag_count(&d), 0);
    /* Further calls keep answering "end". */
    assert_int_equal(sl_codec_stream_next(s, &doc, &d), SL_OK);
    assert_null(doc);
    sl_codec_stream_free(s);
    sl_diag_deinit(&d);
}

/* The config layer's use: read each document's kind, decode it as that
 * resource. */
static void resources_by_kind(void **state)
{
    static const char *const ignore[] = {"apiVersion", "kind", NULL};
    static const struct {
        const char *kind;
        unsigned line;
        const char *name;
    } want[] = {
        {"Upstream", 3, "petstore"},
        {"VirtualService", 18, "petstore"},
        {NULL, 35, NULL},
        {"Upstream", 37, "orders"},
    };
    size_t len, i = 0;
    char *text = read_source("test/data/codec/resources.yaml", &len);
    sl_codec_stream *s;
    sl_codec_doc *doc;
    sl_diag d;

    sl_diag_init(&d);
    assert_int_equal(sl_codec_stream_new(&s, text, len, "resources.yaml"), SL_OK);
    free(text); /* the stream has its own copy */
    while (sl_codec_stream_next(s, &doc, &d) == SL_OK && doc) {
        const char *kind = sl_codec_doc_scalar(doc, "kind");
        ProtobufCMessage *m = NULL;
        char type[64];
        sl_codec_options o = {.ignore_keys = ignore, .root_name = kind, .resolver = sl_types_find_url};

        assert_true(i < 4);
        assert_int_equal(sl_codec_doc_line(doc), want[i].line);
        if (!want[i].kind) {
            assert_true(sl_codec_doc_empty(doc));
            assert_null(kind);
        } else {
            assert_string_equal(kind, want[i].kind);
            assert_string_equal(sl_codec_doc_scalar(doc, "metadata.name"), want[i].name);
            snprintf(type, sizeof(type), "sluice.v1.%s", kind);
            assert_int_equal(sl_codec_decode_doc(&m, type_of(type), doc, &o, &d), SL_OK);
            assert_roundtrip(m);
            protobuf_c_message_free_unpacked(m, NULL);
        }
        sl_codec_doc_free(doc);
        i++;
    }
    assert_int_equal(i, 4);
    assert_int_equal(sl_diag_count(&d), 0);
    sl_codec_stream_free(s);
    sl_diag_deinit(&d);
}

static void stream_goes_on_after_a_broken_document(void **state)
{
    static const char text[] = "name: a\n"
                               "---\n"
                               "name: *nope\n"
                               "---\n"
                               "name: c\n"
                               "---\n"
                               "name: [unclosed\n";
    sl_codec_stream *s;
    sl_codec_doc *doc;
    sl_diag d;
    char line[256];

    sl_diag_init(&d);
    assert_int_equal(sl_codec_stream_new(&s, text, strlen(text), "s.yaml"), SL_OK);
    assert_int_equal(sl_codec_stream_next(s, &doc, &d), SL_OK);
    assert_string_equal(sl_codec_doc_scalar(doc, "name"), "a");
    sl_codec_doc_free(doc);
    assert_int_equal(sl_codec_stream_next(s, &doc, &d), SL_ERR_PARSE);
    assert_null(doc);
    assert_int_equal(sl_codec_stream_next(s, &doc, &d), SL_OK);
    assert_string_equal(sl_codec_doc_scalar(doc, "name"), "c");
    assert_int_equal(sl_codec_doc_line(doc), 4);
    sl_codec_doc_free(doc);
    assert_int_equal(sl_codec_stream_next(s, &doc, &d), SL_ERR_PARSE);
    assert_int_equal(sl_codec_stream_next(s, &doc, &d), SL_OK);
    assert_null(doc);
    assert_int_equal(sl_diag_errors(&d), 2);
    sl_diag_format(line, sizeof(line), sl_diag_get(&d, 0));
    assert_string_equal(line, "s.yaml:3:7: error: unknown alias '*nope'");
    sl_diag_format(line, sizeof(line), sl_diag_get(&d, 1));
    assert_string_equal(line, "s.yaml:8:1: error: syntax error: did not find expected ',' or ']' "
                              "(while parsing a flow sequence at 7:7)");
    sl_codec_stream_free(s);
    sl_diag_deinit(&d);
}

/* sl_codec_doc_nodes(): every scalar (keys too), list and mapping, and an
 * alias as many nodes as its anchor's subtree, so that "billion laughs"
 * shows in the count. */
static void counts_nodes(void **state)
{
    static const char text[] = "a: 1\nb: [x, y]\n"
                               "---\n"
                               "base: &b {x: 1, y: 2}\nuse: *b\nmore: [*b, *b]\n"
                               "---\n"
                               "plain\n";
    const size_t want[] = {7, 1 + 1 + 5 + 1 + 5 + 1 + 1 + 10, 1};
    sl_codec_stream *s;
    sl_codec_doc *doc;
    size_t i = 0;
    (void)state;

    assert_int_equal(sl_codec_stream_new(&s, text, strlen(text), "n.yaml"), SL_OK);
    while (sl_codec_stream_next(s, &doc, NULL) == SL_OK && doc) {
        assert_true(i < 3);
        assert_int_equal(sl_codec_doc_nodes(doc), want[i]);
        sl_codec_doc_free(doc);
        i++;
    }
    assert_int_equal(i, 3);
    sl_codec_stream_free(s);
}

static void sluice_resources_with_ignored_keys(void **state)
{
    static const char *const ignore[] = {"apiVersion", "kind", NULL};
    sl_codec_options o = {.ignore_keys = ignore, .root_name = "VirtualService",
                          .resolver = sl_types_find_url};
    const char *yaml = "apiVersion: gateway.solo.io/v1\n"
                       "kind: VirtualService\n"
                       "metadata:\n"
                       "  name: petstore\n"
                       "  namespace: default\n"
                       "  labels: {app: petstore, team: a}\n"
                       "spec:\n"
                       "  virtualHost:\n"
                       "    domains: ['*']\n"
                       "    routes:\n"
                       "      - matchers: [{prefix: /}]\n"
                       "        options:\n"
                       "          timeout: 10s\n"
                       "          retries: {numRetries: 3}\n";
    ProtobufCMessage *m = decode_ok("sluice.v1.VirtualService", yaml, strlen(yaml), false, &o);
    char *out = encode_yaml(m);

    assert_string_equal(out, "metadata:\n"
                             "  name: petstore\n"
                             "  namespace: default\n"
                             "  labels:\n"
                             "    app: petstore\n"
                             "    team: a\n"
                             "spec:\n"
                             "  virtualHost:\n"
                             "    domains:\n"
                             "    - '*'\n"
                             "    routes:\n"
                             "    - matchers:\n"
                             "      - prefix: /\n"
                             "      options:\n"
                             "        timeout: 10s\n"
                             "        retries:\n"
                             "          numRetries: 3\n");
    free(out);
    assert_roundtrip(m);
    protobuf_c_message_free_unpacked(m, NULL);
}

static void decodes_into_an_arena(void **state)
{
    sl_arena a;
    sl_codec_options o = {.allocator = NULL, .resolver = sl_types_find_url};
    size_t len;
    char *text = read_source("test/data/codec/listener.yaml", &len);
    ProtobufCMessage *m = NULL, *heap;

    sl_arena_init(&a, 0);
    o.allocator = &a.allocator;
    assert_int_equal(sl_codec_decode_yaml(&m, type_of("envoy.config.listener.v3.Listener"), text, len,
                                          &o, NULL),
                     SL_OK);
    assert_true(sl_arena_used(&a) > 1000);
    heap = decode_ok("envoy.config.listener.v3.Listener", text, len, false, NULL);
    assert_same_message(m, heap);
    protobuf_c_message_free_unpacked(heap, NULL);
    /* Nothing to free but the arena (LeakSanitizer checks the rest). */
    sl_arena_deinit(&a);
    free(text);
}

static void helpers(void **state)
{
    char buf[64];

    sl_codec_json_name(buf, sizeof(buf), "per_try_timeout");
    assert_string_equal(buf, "perTryTimeout");
    sl_codec_json_name(buf, sizeof(buf), "ipv4_compat");
    assert_string_equal(buf, "ipv4Compat");
    sl_codec_json_name(buf, sizeof(buf), "a__b_");
    assert_string_equal(buf, "aB");
    sl_codec_json_name(buf, 4, "abcdef");
    assert_string_equal(buf, "abc");
    assert_int_equal(sl_codec_distance("retris", "retries"), 1);
    assert_int_equal(sl_codec_distance("ab", "ba"), 1);
    assert_int_equal(sl_codec_distance("Name", "name"), 0);
    assert_int_equal(sl_codec_distance("", "abc"), 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(listener_with_hcm_round_trips),
        cmocka_unit_test(cluster_round_trips),
        cmocka_unit_test(cluster_load_assignment_from_json),
        cmocka_unit_test(route_configuration_round_trips),
        cmocka_unit_test(json_surrogate_pairs),
        cmocka_unit_test(encodes_proto3_json),
        cmocka_unit_test(names_in_both_spellings),
        cmocka_unit_test(scalars_in_every_form),
        cmocka_unit_test(strings_are_quoted_only_when_needed),
        cmocka_unit_test(characters_yaml_will_not_take_raw_are_escaped),
        cmocka_unit_test(wrappers_as_bare_scalars),
        cmocka_unit_test(durations_and_timestamps),
        cmocka_unit_test(struct_value_and_list_value),
        cmocka_unit_test(any_of_well_known_types_uses_value),
        cmocka_unit_test(null_means_unset),
        cmocka_unit_test(oneof_members_keep_zero_values),
        cmocka_unit_test(yaml_anchors_and_aliases),
        cmocka_unit_test(yaml_merge_keys),
        cmocka_unit_test(multi_document_streams),
        cmocka_unit_test(resources_by_kind),
        cmocka_unit_test(stream_goes_on_after_a_broken_document),
        cmocka_unit_test(counts_nodes),
        cmocka_unit_test(sluice_resources_with_ignored_keys),
        cmocka_unit_test(decodes_into_an_arena),
        cmocka_unit_test(helpers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
