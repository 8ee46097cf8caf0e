/* Every problem of a document is reported at once, each with
 * file:line:column, the field path as the user wrote it, and what was
 * expected. Also: the diagnostics list itself, encoding errors, and the
 * codec on hand-written descriptors (integer and bool map keys, proto2
 * presence). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "sluice/codec.h"
#include "sluice/diag.h"
#include "sluice/types.h"

#include "envoy/config/cluster/v3/cluster.pb-c.h"
#include "google/protobuf/any.pb-c.h"
#include "google/protobuf/duration.pb-c.h"
#include "google/protobuf/struct.pb-c.h"

#include "test_codec_helpers.h"

#define CLUSTER "envoy.config.cluster.v3.Cluster"
#define LISTENER "envoy.config.listener.v3.Listener"

static void unknown_field_names_the_nearest(void **state)
{
    static const char *const ignore[] = {"apiVersion", "kind", NULL};
    sl_codec_options o = {.ignore_keys = ignore, .root_name = "VirtualService"};
    const char *yaml = "apiVersion: gateway.solo.io/v1\n"
                       "kind: VirtualService\n"
                       "metadata: {name: vs}\n"
                       "spec:\n"
                       "  virtualHost:\n"
                       "    routes:\n"
                       "      - options:\n"
                       "          retris: {numRetries: 3}\n"
                       "          prefix_rewritten: /\n"
                       "          zzzzzzzz: 1\n";
    const char *const want[] = {
        "t.yaml:8:11: error: unknown field 'retris' in "
        "VirtualService.spec.virtualHost.routes[0].options; did you mean 'retries'?",
        "t.yaml:9:11: error: unknown field 'prefix_rewritten' in "
        "VirtualService.spec.virtualHost.routes[0].options; did you mean 'prefix_rewrite'?",
        "t.yaml:10:11: error: unknown field 'zzzzzzzz' in "
        "VirtualService.spec.virtualHost.routes[0].options",
        NULL,
    };
    sl_diag d;
    ProtobufCMessage *m = NULL;

    expect_diags_opts("sluice.v1.VirtualService", false, yaml, &o, false, want);

    /* The item carries the path of the unknown key on its own. */
    sl_diag_init(&d);
    assert_int_equal(sl_codec_decode_yaml(&m, type_of("sluice.v1.VirtualService"), yaml,
                                          strlen(yaml), &o, &d),
                     SL_ERR_PARSE);
    assert_string_equal(sl_diag_get(&d, 0)->path,
                        "VirtualService.spec.virtualHost.routes[0].options.retris");
    assert_int_equal(sl_diag_get(&d, 0)->line, 8);
    assert_int_equal(sl_diag_get(&d, 0)->column, 11);
    sl_diag_deinit(&d);

    /* Without ignore_keys, apiVersion is unknown too. */
    expect_error("sluice.v1.VirtualService", "apiVersion: v1\n",
                 "t.yaml:1:1: error: unknown field 'apiVersion' in VirtualService");
}

static void unknown_fields_as_warnings(void **state)
{
    sl_codec_options o = {.unknown_fields_warn = true};
    const char *const want[] = {
        "t.yaml:2:1: warning: unknown field 'lb_polcy' in Cluster; did you mean 'lb_policy'?",
        "t.yaml:4:4: warning: unknown field 'regoin' in Cluster.loadAssignment.endpoints[0]."
        "locality; did you mean 'region'?",
        NULL,
    };

    expect_diags_opts(CLUSTER, false,
                      "name: c\nlb_polcy: MAGLEV\nloadAssignment: {endpoints: [{locality:\n"
                      "  {regoin: x}}]}\n",
                      &o, true, want);
}

static void type_errors(void **state)
{
    const char *const want[] = {
        "t.yaml:2:18: error: Listener.address.socketAddress: expected a mapping, got \"x\"",
        "t.yaml:3:18: error: Listener.listenerFilters: expected a list of mappings, got \"nope\"",
        "t.yaml:4:32: error: Listener.perConnectionBufferLimitBytes: expected an integer, got \"abc\"",
        "t.yaml:5:7: error: Listener.name: expected a string, got a list",
        "t.yaml:6:14: error: Listener.transparent: expected a boolean, got \"maybe\"",
        "t.yaml:7:12: error: Listener.drainType: expected a value of enum "
        "envoy.config.listener.v3.Listener.DrainType, got a mapping",
        "t.yaml:8:25: error: Listener.listenerFiltersTimeout: expected a duration such as \"1.5s\", "
        "got \"soon\"",
        NULL,
    };

    expect_diags(LISTENER,
                 "address:\n"
                 "  socketAddress: x\n"
                 "listenerFilters: nope\n"
                 "perConnectionBufferLimitBytes: abc\n"
                 "name: [a, b]\n"
                 "transparent: maybe\n"
                 "drainType: {x: 1}\n"
                 "listenerFiltersTimeout: soon\n",
                 want);
}

static void sluice_type_errors(void **state)
{
    sl_codec_options o = {.root_name = "VirtualService"};
    const char *const want[] = {
        "t.yaml:3:16: error: VirtualService.spec.virtualHost.domains: expected a list of strings, "
        "got a mapping",
        NULL,
    };

    expect_diags_opts("sluice.v1.VirtualService", false,
                      "spec:\n"
                      "  virtualHost:\n"
                      "      domains: {a: b}\n",
                      &o, false, want);
}

static void enum_errors(void **state)
{
    expect_error(CLUSTER, "lbPolicy: ROUND_ROBINN\n",
                 "t.yaml:1:11: error: Cluster.lbPolicy: unknown value 'ROUND_ROBINN' for enum "
                 "envoy.config.cluster.v3.Cluster.LbPolicy; did you mean 'ROUND_ROBIN'?");
    expect_error(CLUSTER, "lbPolicy: round_robin\n",
                 "t.yaml:1:11: error: Cluster.lbPolicy: unknown value 'round_robin' for enum "
                 "envoy.config.cluster.v3.Cluster.LbPolicy; did you mean 'ROUND_ROBIN'?");
    expect_error(CLUSTER, "lb_policy: FASTEST\n",
                 "t.yaml:1:12: error: Cluster.lb_policy: unknown value 'FASTEST' for enum "
                 "envoy.config.cluster.v3.Cluster.LbPolicy");
    expect_error(CLUSTER, "lb_policy: 2147483648\n",
                 "t.yaml:1:12: error: Cluster.lb_policy: value 2147483648 is out of range for enum");
}

static void integer_ranges(void **state)
{
    const char *const want[] = {
        "t.yaml:1:38: error: Listener.address.socketAddress.portValue: value 4294967296 is out of "
        "range for uint32",
        "t.yaml:2:32: error: Listener.perConnectionBufferLimitBytes: value -1 is out of range for "
        "uint32",
        "t.yaml:3:66: error: Listener.connectionBalanceConfig.extendBalance.typedConfig: "
        "cannot decode google.protobuf.Any of type 'x': no type resolver",
        NULL,
    };
    sl_codec_options o = {.filename = "t.yaml"};

    expect_diags_opts(LISTENER, false,
                      "address: {socketAddress: {portValue: 4294967296}}\n"
                      "perConnectionBufferLimitBytes: -1\n"
                      "connectionBalanceConfig: {extendBalance: {typedConfig: {'@type': x}}}\n",
                      &o, false, want);
    expect_error("envoy.type.v3.Int64Range", "start: 9223372036854775808\n",
                 "t.yaml:1:8: error: Int64Range.start: value 9223372036854775808 is out of range "
                 "for int64");
    expect_error("envoy.type.v3.Int64Range", "end: 99999999999999999999999\n",
                 "t.yaml:1:6: error: Int64Range.end: value 99999999999999999999999 is out of range "
                 "for int64");
    expect_error("envoy.type.v3.Int32Range", "start: 2147483648\n",
                 "t.yaml:1:8: error: Int32Range.start: value 2147483648 is out of range for int32");
    expect_error("envoy.type.v3.Int32Range", "start: 1.5\n",
                 "t.yaml:1:8: error: Int32Range.start: expected an integer, got \"1.5\"");
    expect_error("google.protobuf.DoubleValue", "1e999\n",
                 "t.yaml:1:1: error: DoubleValue: value 1e999 is out of range for double");
    expect_error("google.protobuf.FloatValue", "1e39\n",
                 "t.yaml:1:1: error: FloatValue: value 1e39 is out of range for float");
    expect_error("google.protobuf.DoubleValue", "0x10\n",
                 "t.yaml:1:1: error: DoubleValue: expected a number, got \"0x10\"");
}

static void duplicates(void **state)
{
    const char *const want[] = {
        "t.yaml:3:1: error: duplicate key 'name' in Cluster (first at 1:1)",
        "t.yaml:4:1: error: duplicate field 'connectTimeout' in Cluster (already set as "
        "'connect_timeout' at 2:1)",
        "t.yaml:6:32: error: duplicate key 'a' in Cluster.metadata.filterMetadata.x (first at 6:26)",
        "t.yaml:6:39: error: duplicate key 'x' in Cluster.metadata.filterMetadata (first at 6:22)",
        NULL,
    };

    expect_diags(CLUSTER,
                 "name: a\n"
                 "connect_timeout: 1s\n"
                 "name: b\n"
                 "connectTimeout: 2s\n"
                 "metadata:\n"
                 "  { filterMetadata: {x: {a: 1, a: 2}, \"x\": {}} }\n",
                 want);
}

static void oneof_conflicts_name_both_members(void **state)
{
    const char *const want[] = {
        "t.yaml:3:3: error: only one of 'cluster' and 'weighted_clusters' may be set in "
        "RouteConfiguration.virtualHosts[0].routes[0].route (members of the same oneof)",
        "t.yaml:5:5: error: only one of 'route' and 'redirect' may be set in "
        "RouteConfiguration.virtualHosts[0].routes[1] (members of the same oneof)",
        NULL,
    };

    expect_diags("envoy.config.route.v3.RouteConfiguration",
                 "virtualHosts: [{routes: [{route: {\n"
                 "  cluster: a,\n"
                 "  weighted_clusters: {clusters: [{name: b}]}}},\n"
                 "  {route: {cluster: a},\n"
                 "    redirect: {host_redirect: h}}]}]\n",
                 want);
}

static void every_error_in_one_pass(void **state)
{
    const char *const want[] = {
        "t.yaml:2:18: error: Cluster.connect_timeout: expected a duration such as \"1.5s\", got "
        "\"fast\"",
        "t.yaml:3:1: error: unknown field 'lb_polcy' in Cluster; did you mean 'lb_policy'?",
        "t.yaml:7:39: error: Cluster.load_assignment.endpoints[0].lb_endpoints[1].endpoint.address."
        "socket_address.port_value: expected an integer, got \"http\"",
        "t.yaml:8:6: error: Cluster.load_assignment.endpoints[1]: expected a mapping, got null",
        NULL,
    };

    expect_diags(CLUSTER,
                 "name: c\n"
                 "connect_timeout: fast\n"
                 "lb_polcy: MAGLEV\n"
                 "load_assignment:\n"
                 "  endpoints:\n"
                 "    - lb_endpoints: [{}, {endpoint: {address: {socket_address:\n"
                 "                         {port_value: http}}}}]\n"
                 "    -\n",
                 want);
}

static void null_in_lists_and_maps(void **state)
{
    const char *const want[] = {
        "t.yaml:1:30: error: RouteConfiguration.virtualHosts[0].domains[1]: expected a string, got "
        "null",
        "t.yaml:2:43: error: RouteConfiguration.virtualHosts[0].typedPerFilterConfig.f: expected a "
        "mapping, got null",
        NULL,
    };

    expect_diags("envoy.config.route.v3.RouteConfiguration",
                 "virtualHosts: [{domains: [a, ~],\n"
                 "                typedPerFilterConfig: {f: }}]\n",
                 want);
}

static void any_errors(void **state)
{
    const char *const want[] = {
        "t.yaml:2:27: error: Listener.filterChains[0].filters[0].typedConfig: unknown type "
        "'type.googleapis.com/envoy.Nope' in '@type'",
        "t.yaml:3:17: error: Listener.filterChains[0].filters[1].typedConfig: missing '@type': a "
        "google.protobuf.Any names the type of its content",
        "t.yaml:4:43: error: Listener.filterChains[0].filters[2].typedConfig.@type: expected a "
        "type URL, got a list",
        "t.yaml:6:5: error: unknown field 'stat_prefx' in "
        "Listener.filterChains[0].filters[3].typedConfig; did you mean 'stat_prefix'?",
        "t.yaml:8:25: error: Listener.filterChains[0].filters[4].typedConfig.value: expected a "
        "duration such as \"1.5s\", got \"x\"",
        "t.yaml:9:5: error: unknown field 'extra' in Listener.filterChains[0].filters[4].typedConfig; "
        "an Any of google.protobuf.Duration holds it in 'value'",
        NULL,
    };

    expect_diags(LISTENER,
                 "filterChains: [{filters: [\n"
                 "  {typedConfig: {'@type': type.googleapis.com/envoy.Nope}},\n"
                 "  {typedConfig: {stat_prefix: x}},\n"
                 "  {typedConfig: {stat_prefix: x, '@type': []}},\n"
                 "  {typedConfig: {'@type': \"" "type.googleapis.com/envoy.extensions.filters.network."
                 "http_connection_manager.v3.HttpConnectionManager\",\n"
                 "    stat_prefx: x}},\n"
                 "  {typedConfig: {'@type': type.googleapis.com/google.protobuf.Duration,\n"
                 "                 value: x,\n"
                 "    extra: 1}}]}]\n",
                 want);
}

static void time_errors(void **state)
{
    expect_error("google.protobuf.Duration", "315576000001s\n",
                 "t.yaml:1:1: error: Duration: duration \"315576000001s\" is out of range (at most "
                 "315576000000s either way)");
    expect_error("google.protobuf.Duration", "1.0000000001s\n",
                 "t.yaml:1:1: error: Duration: expected a duration such as \"1.5s\", got "
                 "\"1.0000000001s\"");
    expect_error("google.protobuf.Duration", "{seconds: 1, nanos: -1}\n",
                 "t.yaml:1:1: error: Duration: invalid duration: seconds must be within "
                 "+-315576000000, nanos within +-999999999, both of the same sign");
    expect_error("google.protobuf.Duration", "[1]\n",
                 "t.yaml:1:1: error: Duration: expected a duration such as \"1.5s\", got a list");
    expect_error("google.protobuf.Timestamp", "2023-02-29T00:00:00Z\n",
                 "t.yaml:1:1: error: Timestamp: expected an RFC 3339 timestamp, got "
                 "\"2023-02-29T00:00:00Z\"");
    expect_error("google.protobuf.Timestamp", "0001-01-01T00:00:00+00:01\n",
                 "t.yaml:1:1: error: Timestamp: timestamp \"0001-01-01T00:00:00+00:01\" is out of "
                 "range (years 0001 to 9999)");
    expect_error("google.protobuf.Timestamp", "{nanos: -1}\n",
                 "t.yaml:1:1: error: Timestamp: invalid timestamp: it must lie in years 0001 to 9999, "
                 "nanos within 0 to 999999999");
}

static void scalar_errors(void **state)
{
    expect_error(CLUSTER, "name: \"a\\0b\"\n",
                 "t.yaml:1:7: error: Cluster.name: strings must not contain NUL characters");
    expect_error("google.protobuf.BytesValue", "'!!'\n",
                 "t.yaml:1:1: error: BytesValue: expected a base64 string, got \"!!\"");
    expect_error("google.protobuf.BytesValue", "QUJDR\n",
                 "t.yaml:1:1: error: BytesValue: expected a base64 string, got \"QUJDR\"");
    expect_error("google.protobuf.Struct", "a: .inf\n",
                 "t.yaml:1:4: error: Struct.a: .inf is not a finite number; "
                 "google.protobuf.Value cannot hold it");
    expect_error(CLUSTER, "? [a]\n: b\n", "t.yaml:1:3: error: Cluster: keys must be strings, got a list");
    /* What was found is shown shortened. */
    expect_error(CLUSTER, "connect_timeout: \"0123456789012345678901234567890123456789012345\"\n",
                 "t.yaml:1:18: error: Cluster.connect_timeout: expected a duration such as "
                 "\"1.5s\", got \"0123456789012345678901234567890123456789...\"");
}

static void yaml_syntax_errors(void **state)
{
    expect_error(CLUSTER, "name: a\n  lb_policy: x\n",
                 "t.yaml:2:12: error: syntax error: mapping values are not allowed in this context");
    expect_error(CLUSTER, "name: [a, b\n",
                 "t.yaml:2:1: error: syntax error: did not find expected ',' or ']' (while parsing "
                 "a flow sequence at 1:7)");
    expect_error(CLUSTER, "name: \"open\n",
                 "t.yaml:2:1: error: syntax error: found unexpected end of stream (while scanning "
                 "a quoted scalar at 1:7)");
    expect_error(CLUSTER, "name: \xff\xfe\n",
                 "t.yaml:1:7: error: invalid input: invalid leading UTF-8 octet (byte 0xff)");
    expect_error(CLUSTER, "name: a\n---\nname: b\n",
                 "t.yaml:2:1: error: expected one document, found another at line 2");
    expect_error(CLUSTER, "name: *x\n", "t.yaml:1:7: error: unknown alias '*x'");
    expect_error(CLUSTER, "<<: 5\n",
                 "t.yaml:1:5: error: the merge key '<<' takes a mapping or a list of mappings");
    expect_error(CLUSTER, "<<: [{name: a}, [b]]\n",
                 "t.yaml:1:17: error: the merge key '<<' takes a mapping or a list of mappings");
    expect_error(CLUSTER, "'<<': {name: a}\n", "t.yaml:1:1: error: unknown field '<<' in Cluster");
    expect_error(CLUSTER, "name: a\n<<: {name: b}\nname: c\n",
                 "t.yaml:3:1: error: duplicate key 'name' in Cluster (first at 1:1)");
    expect_error(CLUSTER, "name: &x [*x]\n", "t.yaml:1:11: error: unknown alias '*x'");
}

static void json_errors(void **state)
{
    sl_codec_options o = {.filename = "c.json"};
    const char *const want[] = {
        "c.json:2:10: error: Cluster.name: expected a string, got an array",
        "c.json:3:20: error: Cluster.connectTimeout: expected a duration such as \"1.5s\", got 5",
        "c.json:4:20: error: Cluster.loadAssignment: expected an object, got true",
        "c.json:5:18: error: Cluster.healthChecks: expected an array of objects, got \"x\"",
        NULL,
    };
    const char *const top[] = {"c.json:1:1: error: Cluster: expected an object, got an array", NULL};
    const char *const empty[] = {"c.json: error: Cluster: expected an object, got an empty document",
                                 NULL};
    const char *const syntax[] = {
        "c.json:1:12: error: syntax error: did not find expected ',' or '}' (while parsing a flow "
        "mapping at 1:1)",
        NULL,
    };

    expect_diags_opts(CLUSTER, true,
                      "{\n"
                      "\t\"name\": [1],\n"
                      "\t\"connectTimeout\": 5,\n"
                      "\t\"loadAssignment\": true,\n"
                      "\t\"healthChecks\": \"x\"\n"
                      "}\n",
                      &o, false, want);
    expect_diags_opts(CLUSTER, true, "[]", &o, false, top);
    /* Columns stay those of the user's text after a surrogate pair escape,
     * which libyaml reads rewritten as a shorter \U escape. */
    {
        const char *const after_pair[] = {
            "c.json:1:38: error: Cluster.lbPolicy: expected a value of enum "
            "envoy.config.cluster.v3.Cluster.LbPolicy, got an array",
            NULL,
        };
        const char *const syntax_after_pairs[] = {
            "c.json:2:57: error: syntax error: did not find expected ',' or '}' (while parsing a "
            "flow mapping at 1:1)",
            NULL,
        };
        expect_diags_opts(CLUSTER, true, "{\"name\": \"\\ud83d\\ude00\", \"lbPolicy\": []}", &o,
                          false, after_pair);
        expect_diags_opts(CLUSTER, true,
                          "{\"name\": \"\\ud83d\\ude00\",\n"
                          " \"altStatName\": \"\\uD83D\\uDE00 \\ud83d\\ude01\\ud83d\\ude02\" \"x\": 1}",
                          &o, false, syntax_after_pairs);
    }
    expect_diags_opts(CLUSTER, true, "  \n", &o, false, empty);
    expect_diags_opts(CLUSTER, true, "{\"a\": 1 \"b\": 2}", &o, false, syntax);
}

static void nesting_and_alias_limits(void **state)
{
    char deep[512] = "a: ";
    const char *const want_deep[] = {"t.yaml:1:103: error: nesting deeper than 100 levels", NULL};
    const char *laughs = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
                         "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
                         "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
                         "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
                         "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
                         "f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
                         "g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\n"
                         "h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g, *g]\n";
    const char *const want_laughs[] = {"t.yaml:6:36: error: aliases expand to more than 1000000 nodes",
                                       NULL};
    char aliased[512], want_aliased_text[512];
    const char *const want_aliased[] = {want_aliased_text, NULL};
    size_t n = strlen(deep);

    for (int i = 0; i < 101; i++)
        deep[n++] = '[';
    for (int i = 0; i < 101; i++)
        deep[n++] = ']';
    deep[n] = '\0';
    expect_diags_opts("google.protobuf.Struct", false, deep, NULL, false, want_deep);
    expect_diags_opts("google.protobuf.Struct", false, laughs, NULL, false, want_laughs);
    /* Aliases are not copied, so the depth limit also holds where a
     * shallow alias points at a deep anchor: 1 + 50 + 60 levels. The error
     * is at the anchored node, with the path through the alias. */
    n = (size_t)sprintf(aliased, "a: &a ");
    for (int i = 0; i < 60; i++)
        aliased[n++] = '[';
    aliased[n++] = '1';
    for (int i = 0; i < 60; i++)
        aliased[n++] = ']';
    n += (size_t)sprintf(aliased + n, "\nb: ");
    for (int i = 0; i < 50; i++)
        aliased[n++] = '[';
    n += (size_t)sprintf(aliased + n, "*a");
    for (int i = 0; i < 50; i++)
        aliased[n++] = ']';
    aliased[n] = '\0';
    n = (size_t)sprintf(want_aliased_text, "t.yaml:1:56: error: Struct.b");
    for (int i = 0; i < 99; i++)
        n += (size_t)sprintf(want_aliased_text + n, "[0]");
    sprintf(want_aliased_text + n, ": nesting deeper than 100 levels");
    expect_diags_opts("google.protobuf.Struct", false, aliased, NULL, false, want_aliased);
}

static void error_count_is_capped(void **state)
{
    char *yaml = malloc(300 * 16);
    size_t n = 0;
    sl_diag d;
    ProtobufCMessage *m;
    char line[256];

    for (int i = 0; i < 300; i++)
        n += (size_t)sprintf(yaml + n, "bad%03d: 1\n", i);
    sl_diag_init(&d);
    assert_int_equal(sl_codec_decode_yaml(&m, type_of(CLUSTER), yaml, n, NULL, &d), SL_ERR_PARSE);
    assert_int_equal(sl_diag_count(&d), SL_CODEC_MAX_ERRORS + 1);
    sl_diag_format(line, sizeof(line), sl_diag_get(&d, SL_CODEC_MAX_ERRORS));
    assert_string_equal(line, "<input>:201:1: error: too many errors (more than 200); stopping");
    sl_diag_deinit(&d);
    free(yaml);
}

static void errors_without_a_diag_list(void **state)
{
    ProtobufCMessage *m = (ProtobufCMessage *)1;
    const char *broken = "lb_policy: X\nname: [";

    assert_int_equal(sl_codec_decode_yaml(&m, type_of(CLUSTER), broken, strlen(broken), NULL, NULL),
                     SL_ERR_PARSE);
    assert_null(m);
    assert_string_equal(sl_error_msg(), "<input>:3:1: error: syntax error: did not find expected "
                                        "node content (while parsing a flow node at 3:1)");
    assert_int_equal(sl_codec_decode_yaml(&m, type_of(CLUSTER), "lb_policy: X\n", 13, NULL, NULL),
                     SL_ERR_PARSE);
    assert_string_equal(sl_error_msg(), "<input>:1:12: error: Cluster.lb_policy: unknown value 'X' "
                                        "for enum envoy.config.cluster.v3.Cluster.LbPolicy");
    assert_int_equal(sl_codec_decode_yaml(&m, NULL, "", 0, NULL, NULL), SL_ERR_INVALID);
    assert_int_equal(sl_codec_decode_yaml(NULL, type_of(CLUSTER), "", 0, NULL, NULL), SL_ERR_INVALID);
    assert_int_equal(sl_codec_decode_json(&m, type_of(CLUSTER), NULL, 3, NULL, NULL), SL_ERR_INVALID);
}

static void encoding_errors(void **state)
{
    Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
    Google__Protobuf__Value value = GOOGLE__PROTOBUF__VALUE__INIT;
    Google__Protobuf__Duration dur = GOOGLE__PROTOBUF__DURATION__INIT;
    Envoy__Config__Cluster__V3__Cluster c = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__INIT;
    sl_codec_options o = {.resolver = sl_types_find_url};
    uint8_t junk[] = {0xff, 0xff};
    char *out = (char *)1;

    any.type_url = "type.googleapis.com/google.protobuf.Duration";
    assert_int_equal(sl_codec_encode_json(&out, NULL, &any.base, NULL), SL_ERR_NOT_FOUND);
    assert_null(out);
    assert_string_equal(sl_error_msg(), "Any: cannot encode google.protobuf.Any of type "
                                        "'type.googleapis.com/google.protobuf.Duration': no type resolver");
    any.type_url = "type.googleapis.com/nope.Nope";
    assert_int_equal(sl_codec_encode_yaml(&out, NULL, &any.base, &o), SL_ERR_NOT_FOUND);
    assert_string_equal(sl_error_msg(), "Any: unknown type 'type.googleapis.com/nope.Nope' in "
                                        "google.protobuf.Any");
    any.type_url = "type.googleapis.com/google.protobuf.Duration";
    any.value.data = junk;
    any.value.len = sizeof(junk);
    assert_int_equal(sl_codec_encode_json(&out, NULL, &any.base, &o), SL_ERR_PARSE);
    assert_string_equal(sl_error_msg(), "Any: the value of google.protobuf.Any is not a valid "
                                        "google.protobuf.Duration: google.protobuf.Duration: invalid field "
                                        "tag at byte 0 (in (top level))");

    assert_int_equal(sl_codec_encode_json(&out, NULL, &value.base, &o), SL_ERR_INVALID);
    assert_string_equal(sl_error_msg(), "Value: google.protobuf.Value has no kind set");
    value.kind_case = GOOGLE__PROTOBUF__VALUE__KIND_NUMBER_VALUE;
    value.number_value = 1.0 / 0.0;
    assert_int_equal(sl_codec_encode_yaml(&out, NULL, &value.base, &o), SL_ERR_INVALID);

    dur.seconds = 1;
    dur.nanos = -1;
    c.connect_timeout = &dur;
    assert_int_equal(sl_codec_encode_json(&out, NULL, &c.base, &o), SL_ERR_INVALID);
    assert_string_equal(sl_error_msg(), "Cluster.connectTimeout: invalid google.protobuf.Duration "
                                        "(seconds 1, nanos -1)");
    assert_int_equal(sl_codec_encode_json(&out, NULL, NULL, &o), SL_ERR_INVALID);
}

static void encoding_cleans_invalid_utf8(void **state)
{
    Envoy__Config__Cluster__V3__Cluster c = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__INIT;
    char name[] = "a\xff" "b\xc3\xa9\x01";
    char *out;

    c.name = name;
    assert_int_equal(sl_codec_encode_json(&out, NULL, &c.base, NULL), SL_OK);
    assert_string_equal(out, "{\n  \"name\": \"a\xef\xbf\xbd" "b\xc3\xa9\\u0001\"\n}\n");
    free(out);
    assert_int_equal(sl_codec_encode_yaml(&out, NULL, &c.base, NULL), SL_OK);
    assert_string_equal(out, "name: \"a\xef\xbf\xbd" "b\xc3\xa9\\x01\"\n");
    free(out);
}

static void diag_list(void **state)
{
    sl_diag d, other;
    const sl_diag_item *it;
    char buf[16], *s;

    sl_diag_init(&d);
    sl_diag_init(&other);
    assert_int_equal(sl_diag_count(&d), 0);
    assert_null(sl_diag_get(&d, 0));
    for (int i = 0; i < 20; i++)
        assert_int_equal(sl_diag_add(&d, i % 2 ? SL_DIAG_WARNING : SL_DIAG_ERROR, "f.yaml", 3, i + 1,
                                     "X.y", "problem %d", i),
                         SL_OK);
    assert_int_equal(sl_diag_count(&d), 20);
    assert_int_equal(sl_diag_errors(&d), 10);
    assert_int_equal(sl_diag_warnings(&d), 10);
    assert_false(sl_diag_incomplete(&d));
    it = sl_diag_get(&d, 1);
    assert_int_equal(it->severity, SL_DIAG_WARNING);
    assert_string_equal(it->path, "X.y");
    s = sl_diag_format_alloc(it);
    assert_string_equal(s, "f.yaml:3:2: warning: problem 1");
    free(s);
    /* Like snprintf: truncated, and the full length returned. */
    assert_int_equal(sl_diag_format(buf, sizeof(buf), it), strlen("f.yaml:3:2: warning: problem 1"));
    assert_string_equal(buf, "f.yaml:3:2: war");

    sl_diag_add(&other, SL_DIAG_ERROR, NULL, 0, 0, NULL, "no position");
    sl_diag_add(&other, SL_DIAG_ERROR, NULL, 7, 0, NULL, "line only");
    sl_diag_add(&other, SL_DIAG_WARNING, "g.json", 0, 0, NULL, "file only");
    s = sl_diag_format_alloc(sl_diag_get(&other, 0));
    assert_string_equal(s, "error: no position");
    free(s);
    s = sl_diag_format_alloc(sl_diag_get(&other, 1));
    assert_string_equal(s, "7: error: line only");
    free(s);
    s = sl_diag_format_alloc(sl_diag_get(&other, 2));
    assert_string_equal(s, "g.json: warning: file only");
    free(s);
    assert_string_equal(sl_diag_get(&other, 0)->file, "");
    assert_string_equal(sl_diag_get(&other, 0)->path, "");

    assert_int_equal(sl_diag_append(&d, &other), SL_OK);
    assert_int_equal(sl_diag_count(&d), 23);
    assert_int_equal(sl_diag_errors(&d), 12);
    assert_string_equal(sl_diag_get(&d, 22)->message, "file only");
    sl_diag_clear(&d);
    assert_int_equal(sl_diag_count(&d), 0);
    assert_int_equal(sl_diag_errors(&d), 0);
    sl_diag_deinit(&d);
    sl_diag_deinit(&other);
}

/* --- A hand-written descriptor: maps with integer and bool keys, proto2
 * optional fields with has_ flags. Nothing in Envoy's or Sluice's API has
 * these, but the codec must handle any descriptor protoc-c can produce. */

typedef struct ById {
    ProtobufCMessage base;
    int32_t key;
    char *value;
} ById;

typedef struct Flags {
    ProtobufCMessage base;
    protobuf_c_boolean key;
    int64_t value;
} Flags;

typedef struct Thing {
    ProtobufCMessage base;
    size_t n_by_id;
    ById **by_id;
    size_t n_flags;
    Flags **flags;
    protobuf_c_boolean has_count;
    int32_t count;
    char *label;
    size_t n_sizes;
    uint64_t *sizes;
} Thing;

extern const ProtobufCMessageDescriptor by_id_desc, flags_desc, thing_desc;

static void by_id_init(ProtobufCMessage *m)
{
    static const ById init = {PROTOBUF_C_MESSAGE_INIT(&by_id_desc), 0, (char *)&protobuf_c_empty_string};
    *(ById *)m = init;
}

static void flags_init(ProtobufCMessage *m)
{
    static const Flags init = {PROTOBUF_C_MESSAGE_INIT(&flags_desc), 0, 0};
    *(Flags *)m = init;
}

static void thing_init(ProtobufCMessage *m)
{
    static const Thing init = {PROTOBUF_C_MESSAGE_INIT(&thing_desc), 0, NULL, 0, NULL, 0, 0, NULL, 0, NULL};
    *(Thing *)m = init;
}

static const ProtobufCFieldDescriptor by_id_fields[] = {
    {"key", 1, PROTOBUF_C_LABEL_NONE, PROTOBUF_C_TYPE_INT32, 0, offsetof(ById, key), NULL, NULL, 0, 0, NULL, NULL},
    {"value", 2, PROTOBUF_C_LABEL_NONE, PROTOBUF_C_TYPE_STRING, 0, offsetof(ById, value), NULL,
     &protobuf_c_empty_string, 0, 0, NULL, NULL},
};
static const ProtobufCFieldDescriptor flags_fields[] = {
    {"key", 1, PROTOBUF_C_LABEL_NONE, PROTOBUF_C_TYPE_BOOL, 0, offsetof(Flags, key), NULL, NULL, 0, 0, NULL, NULL},
    {"value", 2, PROTOBUF_C_LABEL_NONE, PROTOBUF_C_TYPE_SINT64, 0, offsetof(Flags, value), NULL, NULL, 0, 0, NULL, NULL},
};
static const ProtobufCFieldDescriptor thing_fields[] = {
    {"by_id", 1, PROTOBUF_C_LABEL_REPEATED, PROTOBUF_C_TYPE_MESSAGE, offsetof(Thing, n_by_id),
     offsetof(Thing, by_id), &by_id_desc, NULL, 0, 0, NULL, NULL},
    {"flags", 2, PROTOBUF_C_LABEL_REPEATED, PROTOBUF_C_TYPE_MESSAGE, offsetof(Thing, n_flags),
     offsetof(Thing, flags), &flags_desc, NULL, 0, 0, NULL, NULL},
    {"count", 3, PROTOBUF_C_LABEL_OPTIONAL, PROTOBUF_C_TYPE_INT32, offsetof(Thing, has_count),
     offsetof(Thing, count), NULL, NULL, 0, 0, NULL, NULL},
    {"label", 4, PROTOBUF_C_LABEL_OPTIONAL, PROTOBUF_C_TYPE_STRING, 0, offsetof(Thing, label), NULL,
     NULL, 0, 0, NULL, NULL},
    {"sizes", 5, PROTOBUF_C_LABEL_REPEATED, PROTOBUF_C_TYPE_FIXED64, offsetof(Thing, n_sizes),
     offsetof(Thing, sizes), NULL, NULL, PROTOBUF_C_FIELD_FLAG_PACKED, 0, NULL, NULL},
};
static const unsigned kv_by_name[] = {0, 1};
static const unsigned thing_by_name[] = {0, 2, 1, 3, 4};
static const ProtobufCIntRange two_ranges[] = {{1, 0}, {0, 2}};
static const ProtobufCIntRange five_ranges[] = {{1, 0}, {0, 5}};

const ProtobufCMessageDescriptor by_id_desc = {
    PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC, "t.Thing.ByIdEntry", "ByIdEntry", "ById", "t", sizeof(ById),
    2, by_id_fields, kv_by_name, 1, two_ranges, by_id_init, NULL, NULL, NULL};
const ProtobufCMessageDescriptor flags_desc = {
    PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC, "t.Thing.FlagsEntry", "FlagsEntry", "Flags", "t", sizeof(Flags),
    2, flags_fields, kv_by_name, 1, two_ranges, flags_init, NULL, NULL, NULL};
const ProtobufCMessageDescriptor thing_desc = {
    PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC, "t.Thing", "Thing", "Thing", "t", sizeof(Thing),
    5, thing_fields, thing_by_name, 1, five_ranges, thing_init, NULL, NULL, NULL};

static void integer_and_bool_map_keys(void **state)
{
    const char *yaml = "byId: {1: one, '-5': minus five, 2147483647: max}\n"
                       "flags: {true: -1, 'false': 9223372036854775807}\n"
                       "count: 0\n"
                       "label: ''\n"
                       "sizes: [0, '18446744073709551615']\n";
    const char *const bad[] = {
        "t.yaml:1:8: error: Thing.byId.x: expected an integer, got \"x\"",
        "t.yaml:1:14: error: Thing.byId[\"2147483648\"]: value 2147483648 is out of range for int32",
        "t.yaml:2:9: error: Thing.flags.yes: expected a boolean, got \"yes\"",
        "t.yaml:2:26: error: duplicate key 'true' in Thing.flags (first at 2:17)",
        NULL,
    };
    sl_codec_options o = {0};
    ProtobufCMessage *copy;
    Thing *t = NULL;
    sl_diag d;
    char *json;

    sl_diag_init(&d);
    assert_int_equal(sl_codec_decode_yaml((ProtobufCMessage **)&t, &thing_desc, yaml, strlen(yaml), &o,
                                          &d),
                     SL_OK);
    assert_int_equal(sl_diag_count(&d), 0);
    assert_int_equal(t->n_by_id, 3);
    assert_int_equal(t->by_id[1]->key, -5);
    assert_string_equal(t->by_id[1]->value, "minus five");
    assert_int_equal(t->n_flags, 2);
    assert_true(t->flags[0]->key);
    assert_true(t->flags[0]->value == -1);
    assert_false(t->flags[1]->key);
    /* proto2 presence: a zero that was written is still present. */
    assert_true(t->has_count);
    assert_int_equal(t->count, 0);
    assert_string_equal(t->label, "");
    assert_true(t->sizes[1] == UINT64_MAX);

    sl_codec_json_name(NULL, 0, "x"); /* size 0 writes nothing */
    json = NULL;
    assert_int_equal(sl_codec_encode_json(&json, NULL, &t->base, &(sl_codec_options){.flags = SL_CODEC_JSON_COMPACT}),
                     SL_OK);
    assert_string_equal(json, "{\"byId\":{\"1\":\"one\",\"-5\":\"minus five\",\"2147483647\":\"max\"},"
                              "\"flags\":{\"true\":\"-1\",\"false\":\"9223372036854775807\"},"
                              "\"count\":0,\"label\":\"\",\"sizes\":[\"0\",\"18446744073709551615\"]}");
    assert_int_equal(sl_codec_decode_json(&copy, &thing_desc, json, strlen(json), &o, &d), SL_OK);
    assert_same_message(&t->base, copy);
    protobuf_c_message_free_unpacked(copy, NULL);
    free(json);
    assert_int_equal(sl_codec_encode_yaml(&json, NULL, &t->base, &o), SL_OK);
    assert_int_equal(sl_codec_decode_yaml(&copy, &thing_desc, json, strlen(json), &o, &d), SL_OK);
    assert_same_message(&t->base, copy);
    protobuf_c_message_free_unpacked(copy, NULL);
    free(json);
    protobuf_c_message_free_unpacked(&t->base, NULL);
    sl_diag_deinit(&d);

    /* Unset proto2 fields stay unset. */
    assert_int_equal(sl_codec_decode_yaml((ProtobufCMessage **)&t, &thing_desc, "{}", 2, &o, NULL), SL_OK);
    assert_false(t->has_count);
    assert_null(t->label);
    assert_int_equal(sl_codec_encode_json(&json, NULL, &t->base, &o), SL_OK);
    assert_string_equal(json, "{}\n");
    free(json);
    protobuf_c_message_free_unpacked(&t->base, NULL);

    o.filename = "t.yaml";
    expect_diags_desc(&thing_desc, false,
                      "byId: {x: a, 2147483648: b}\nflags: {yes: 1, true: 2, 'true': 3}\n", &o, false,
                      bad);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(unknown_field_names_the_nearest),
        cmocka_unit_test(unknown_fields_as_warnings),
        cmocka_unit_test(type_errors),
        cmocka_unit_test(sluice_type_errors),
        cmocka_unit_test(enum_errors),
        cmocka_unit_test(integer_ranges),
        cmocka_unit_test(duplicates),
        cmocka_unit_test(oneof_conflicts_name_both_members),
        cmocka_unit_test(every_error_in_one_pass),
        cmocka_unit_test(null_in_lists_and_maps),
        cmocka_unit_test(any_errors),
        cmocka_unit_test(time_errors),
        cmocka_unit_test(scalar_errors),
        cmocka_unit_test(yaml_syntax_errors),
        cmocka_unit_test(json_errors),
        cmocka_unit_test(nesting_and_alias_limits),
        cmocka_unit_test(error_count_is_capped),
        cmocka_unit_test(errors_without_a_diag_list),
        cmocka_unit_test(encoding_errors),
        cmocka_unit_test(encoding_cleans_invalid_utf8),
        cmocka_unit_test(diag_list),
        cmocka_unit_test(integer_and_bool_map_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
