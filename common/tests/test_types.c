/* The descriptor registry finds Envoy's and Sluice's messages by name and
 * by Any type URL, and the status helpers keep error context. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "sluice/status.h"
#include "sluice/types.h"

static void finds_envoy_resources(void **state)
{
    static const char *const names[] = {
        "envoy.config.listener.v3.Listener",
        "envoy.config.route.v3.RouteConfiguration",
        "envoy.config.cluster.v3.Cluster",
        "envoy.config.endpoint.v3.ClusterLoadAssignment",
        "envoy.extensions.transport_sockets.tls.v3.Secret",
        "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "envoy.extensions.filters.http.router.v3.Router",
        "envoy.extensions.filters.http.aws_lambda.v3.Config",
        "envoy.extensions.filters.http.grpc_json_transcoder.v3.GrpcJsonTranscoder",
        "envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
        "envoy.extensions.access_loggers.stream.v3.StdoutAccessLog",
        "envoy.config.trace.v3.ZipkinConfig",
        "envoy.service.discovery.v3.DeltaDiscoveryRequest",
        "google.protobuf.Duration",
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        const ProtobufCMessageDescriptor *d = sl_types_find(names[i]);
        assert_non_null(d);
        assert_string_equal(d->name, names[i]);
    }
    assert_true(sl_types_count() > 500);
}

static void finds_by_type_url(void **state)
{
    const ProtobufCMessageDescriptor *d =
        sl_types_find_url("type.googleapis.com/envoy.config.cluster.v3.Cluster");
    assert_non_null(d);
    assert_string_equal(d->short_name, "Cluster");
    assert_null(sl_types_find_url("type.googleapis.com/envoy.config.cluster.v3.Clustr"));
    assert_null(sl_types_find(""));
}

/* Names sorting before the first, after the last and between two are not
 * found; every prefix of a name is another name or none. */
static void misses_at_both_ends_and_between(void **state)
{
    assert_null(sl_types_find("!"));
    assert_null(sl_types_find("~"));
    assert_null(sl_types_find("envoy.config.cluster.v3.Cluster0"));
    assert_null(sl_types_find("envoy.config.cluster.v3.Clust"));
    assert_null(sl_types_find("google.protobuf.Duration."));
    assert_non_null(sl_types_find("google.protobuf.Any"));
}

static void error_context(void **state)
{
    sl_error_clear();
    assert_string_equal(sl_error_msg(), "");
    assert_int_equal(sl_error_set(SL_ERR_INVALID, "bad port %d", 70000), SL_ERR_INVALID);
    assert_string_equal(sl_error_msg(), "bad port 70000");
    assert_int_equal(sl_error_status(), SL_ERR_INVALID);
    assert_non_null(strstr(sl_error_where(), "test_types.c:"));
    assert_string_equal(sl_status_str(SL_ERR_NOT_FOUND), "not found");
    assert_string_equal(sl_status_str((sl_status)999), "unknown status");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(finds_envoy_resources),
        cmocka_unit_test(finds_by_type_url),
        cmocka_unit_test(misses_at_both_ends_and_between),
        cmocka_unit_test(error_context),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
