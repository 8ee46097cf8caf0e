/* table.c - every plugin, in the order their hooks run. Adding a plugin:
 * write plugins/<name>.c defining `const sl_tr_plugin sl_tr_plugin_<name>`,
 * and add it to both lists below. */
#include "../plugin.h"

/* Fields the core itself implements (cluster.c, endpoint.c). */
static const char *const core_fields[] = {
    "UpstreamSpec.static", "UpstreamSpec.dns", "UpstreamSpec.etcd", "UpstreamSpec.discovery_metadata", NULL,
};
static const sl_tr_plugin core = {.name = "core", .fields = core_fields};

extern const sl_tr_plugin sl_tr_plugin_route_basic;
extern const sl_tr_plugin sl_tr_plugin_headers;
extern const sl_tr_plugin sl_tr_plugin_cors;
extern const sl_tr_plugin sl_tr_plugin_faults;
extern const sl_tr_plugin sl_tr_plugin_traffic;
extern const sl_tr_plugin sl_tr_plugin_upstream;
extern const sl_tr_plugin sl_tr_plugin_upstream_ssl;
extern const sl_tr_plugin sl_tr_plugin_listener;
extern const sl_tr_plugin sl_tr_plugin_ratelimit;
extern const sl_tr_plugin sl_tr_plugin_ratelimit_global;
extern const sl_tr_plugin sl_tr_plugin_aws_lambda;
extern const sl_tr_plugin sl_tr_plugin_transcoder;
extern const sl_tr_plugin sl_tr_plugin_jwt;
extern const sl_tr_plugin sl_tr_plugin_functions;
extern const sl_tr_plugin sl_tr_plugin_extauth;
extern const sl_tr_plugin sl_tr_plugin_subset;
extern const sl_tr_plugin sl_tr_plugin_grpc_web;
extern const sl_tr_plugin sl_tr_plugin_transformation_regular;
extern const sl_tr_plugin sl_tr_plugin_lua;
extern const sl_tr_plugin sl_tr_plugin_gzip;
extern const sl_tr_plugin sl_tr_plugin_buffer;
extern const sl_tr_plugin sl_tr_plugin_csrf;
extern const sl_tr_plugin sl_tr_plugin_transformation;

const sl_tr_plugin *const sl_tr_plugins[] = {
    &core,
    &sl_tr_plugin_route_basic,
    &sl_tr_plugin_headers,
    &sl_tr_plugin_cors,
    &sl_tr_plugin_faults,
    &sl_tr_plugin_traffic,
    &sl_tr_plugin_upstream,
    &sl_tr_plugin_upstream_ssl,
    &sl_tr_plugin_listener,
    &sl_tr_plugin_ratelimit,
    &sl_tr_plugin_ratelimit_global,
    &sl_tr_plugin_aws_lambda,
    &sl_tr_plugin_transcoder,
    &sl_tr_plugin_jwt,
    &sl_tr_plugin_functions,
    &sl_tr_plugin_extauth,
    &sl_tr_plugin_subset,
    &sl_tr_plugin_grpc_web,
    &sl_tr_plugin_transformation_regular,
    &sl_tr_plugin_lua,
    &sl_tr_plugin_gzip,
    &sl_tr_plugin_buffer,
    &sl_tr_plugin_csrf,
    &sl_tr_plugin_transformation,
};
const size_t sl_tr_plugin_count = sizeof sl_tr_plugins / sizeof sl_tr_plugins[0];
