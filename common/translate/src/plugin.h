/* plugin.h - the translator's plugin interface and the helpers plugins use.
 *
 * A plugin is one file under plugins/ defining one `const sl_tr_plugin`
 * and one line in plugins/table.c. Each hook is optional; the core calls
 * the hooks of every plugin, in table order, at these points:
 *
 *   listener      after the core built a Gateway's Listener (address, filter
 *                 chains with the HttpConnectionManager, TLS).
 *   tcp_proxy     for every TCP host's tcp_proxy filter (tcpGateway, or a
 *                 hybrid gateway's), after the core set its destination.
 *   http_filters  once per HTTP listener, after its virtual hosts and routes
 *                 were translated: add HTTP filters to the chain (the core
 *                 sorts them by stage and ends the chain with the router)
 *                 and set HttpConnectionManager fields. Add a filter only
 *                 when needed: a plugin marks itself used from its route and
 *                 virtual_host hooks with tr_use(), and checks tr_used() here.
 *   virtual_host  after the core built a VirtualHost (name, domains,
 *                 routes) from a VirtualService.
 *   route         for every Envoy route, after the core set match and
 *                 action (route, redirect or direct response). in->options
 *                 are the route's options merged with what it inherits from
 *                 delegating routes.
 *   weighted_destination
 *                 for every weighted cluster of such a route, with the
 *                 options of the destination it was made of.
 *   cluster       after the core built a Cluster from an Upstream (name,
 *                 discovery type, endpoints or EDS config).
 *   endpoints     for every ClusterLoadAssignment (EDS, and the inline
 *                 load_assignment of STATIC and STRICT_DNS clusters).
 *   server_proxy  once per translation, after every gateway's proxy: the
 *                 resources of a proxy that serves no gateway (the
 *                 rate-limit server's xDS role), reports about the Settings.
 *
 * Every Envoy message a hook creates comes from the translation's arena
 * (TR_NEW, tr_strdup, tr_any, ...): nothing is freed by hand. Problems are
 * reported with tr_error() (the resource is rejected) or tr_warn(); both
 * name the resource being translated, and the message should name the
 * field: tr_error(tx, "%s.retries.retryBackOff: maxInterval is less than
 * baseInterval", in->path).
 *
 * fields lists the option fields a plugin implements, as
 * "<Message>.<proto field>" ("RouteOptions.retries"). An option that is set
 * but that no plugin lists is reported as unsupported (the resource is
 * rejected), so no option is ever silently dropped.
 */
#ifndef SLUICE_TR_PLUGIN_H
#define SLUICE_TR_PLUGIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "envoy/config/cluster/v3/cluster.pb-c.h"
#include "envoy/config/endpoint/v3/endpoint.pb-c.h"
#include "envoy/config/listener/v3/listener.pb-c.h"
#include "envoy/config/route/v3/route.pb-c.h"
#include "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.pb-c.h"
#include "envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy.pb-c.h"
#include "envoy/type/v3/token_bucket.pb-c.h"
#include "envoy/extensions/transport_sockets/tls/v3/secret.pb-c.h"
#include "envoy/extensions/transport_sockets/tls/v3/tls.pb-c.h"
#include "sluice/v1/endpoints.pb-c.h"
#include "sluice/v1/gateway.pb-c.h"
#include "sluice/v1/secret.pb-c.h"
#include "sluice/v1/settings.pb-c.h"
#include "sluice/v1/upstream.pb-c.h"
#include "sluice/v1/virtual_service.pb-c.h"
#include "sluice/kinds.h"
#include "sluice/xds.h"

typedef struct tr_ctx tr_ctx;

typedef Envoy__Config__Listener__V3__Listener tr_listener_t;
typedef Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpConnectionManager tr_hcm_t;
typedef Envoy__Config__Route__V3__VirtualHost tr_vhost_t;
typedef Envoy__Config__Route__V3__Route tr_route_t;
typedef Envoy__Config__Cluster__V3__Cluster tr_cluster_t;
typedef Envoy__Config__Endpoint__V3__ClusterLoadAssignment tr_cla_t;

/* A Gateway being translated for one proxy. */
typedef struct tr_gateway {
    const Sluice__V1__Gateway *gw;
    const char *proxy;         /* "<ns>~<name>" */
    const char *listener_name; /* "listener-::-8080" */
    bool proxyless;            /* also an api_listener per domain (gRPC) */
} tr_gateway;

/* A VirtualService becoming a virtual host of a gateway. */
typedef struct tr_vhost_in {
    const tr_gateway *gw;
    const Sluice__V1__VirtualService *vs;
    const Sluice__V1__VirtualHostOptions *options; /* may be NULL */
    const char *path; /* "spec.virtualHost.options" */
} tr_vhost_in;

/* One Envoy route. */
typedef struct tr_route_in {
    const tr_gateway *gw;
    const Sluice__V1__VirtualService *vs;
    const Sluice__V1__Route *route;          /* the (innermost) route */
    const Sluice__V1__RouteOptions *options; /* merged with inherited; may be NULL */
    const Sluice__V1__Matcher *matcher;      /* the matcher this Envoy route is made of */
    /* For a single destination: the upstream (NULL when missing or not a
     * single destination) and the destination spec (may be NULL). */
    const Sluice__V1__Upstream *upstream;
    const Sluice__V1__DestinationSpec *dest_spec;
    const char *path;       /* "spec.virtualHost.routes[2].options", or inside a RouteTable */
    const char *route_path; /* "spec.virtualHost.routes[2]" */
} tr_route_in;

/* An Upstream becoming a cluster. */
typedef struct tr_upstream_in {
    const Sluice__V1__Upstream *up;
    const Sluice__V1__EndpointSet *eps; /* from the endpoints bucket; may be NULL */
    const char *cluster_name;
    bool proxyless; /* EDS only, as gRPC clients require */
} tr_upstream_in;

/* Order of HTTP filters in the chain (ascending; the router is last). */
enum tr_stage {
    TR_STAGE_COMPRESS = 90, /* compressor: Gloo's fault stage, before fault by name */
    TR_STAGE_FAULT = 100,
    TR_STAGE_CORS = 200,
    TR_STAGE_HEALTH = 250,
    TR_STAGE_AUTHN = 300, /* jwt */
    TR_STAGE_AUTHZ = 400, /* ext_authz */
    TR_STAGE_GRPC_WEB = 450, /* grpc_web: after authz, as Gloo */
    TR_STAGE_RATELIMIT = 500,
    TR_STAGE_TRANSFORM = 600, /* transcoder */
    TR_STAGE_LUA = 650,       /* lua (REST functions' method rewrite) */
    TR_STAGE_UPSTREAM = 700,  /* aws_lambda */
    TR_STAGE_ROUTE = 800,     /* buffer, csrf: Gloo's route stage, in name order */
};

typedef struct tr_filters tr_filters;

typedef struct sl_tr_plugin {
    const char *name;
    const char *const *fields; /* NULL-terminated; may be NULL */
    void (*listener)(tr_ctx *tx, const tr_gateway *gw, tr_listener_t *l);
    void (*http_filters)(tr_ctx *tx, const tr_gateway *gw, tr_hcm_t *hcm, tr_filters *f);
    void (*tcp_proxy)(tr_ctx *tx, const tr_gateway *gw, Envoy__Extensions__Filters__Network__TcpProxy__V3__TcpProxy *tp);
    void (*virtual_host)(tr_ctx *tx, const tr_vhost_in *in, tr_vhost_t *vh);
    void (*route)(tr_ctx *tx, const tr_route_in *in, tr_route_t *r);
    /* For each weighted cluster of the route (multi destinations, upstream
     * groups), after the route hook: o is its destination's options (may be
     * NULL), path names them. */
    void (*weighted_destination)(tr_ctx *tx, const tr_route_in *in, const Sluice__V1__WeightedDestinationOptions *o,
                                 const char *path, Envoy__Config__Route__V3__WeightedCluster__ClusterWeight *cw);
    void (*cluster)(tr_ctx *tx, const tr_upstream_in *in, tr_cluster_t *c);
    void (*endpoints)(tr_ctx *tx, const tr_upstream_in *in, tr_cla_t *cla);
    /* Drops what the virtual host named vhost added to the plugin's state
     * (tr_state) for the listener: the core calls it when that virtual host
     * is left out after it was translated (rejected, or losing a domain or
     * SNI conflict), so a rejected VirtualService never leaves config in
     * the listener. Every plugin with listener state has it. */
    void (*forget)(tr_ctx *tx, const char *vhost);
    /* Adds the resources of a proxy of the plugin's own, which no gateway
     * has (the rate-limit server's configuration), with tr_add_resource(),
     * and returns its name ("<namespace>~<name>", in the arena), or NULL
     * when there is none this time. Reports are about the Settings. A
     * gateway's proxy of the same name is an error on that Gateway, and
     * this proxy is left out. */
    const char *(*server_proxy)(tr_ctx *tx);
} sl_tr_plugin;

/* plugins/table.c */
extern const sl_tr_plugin *const sl_tr_plugins[];
extern const size_t sl_tr_plugin_count;

/* ---- helpers (ctx.c) ---------------------------------------------------- */

/* A new message of type desc, initialised, in the arena (never NULL: an
 * allocation failure aborts the translation with SL_ERR_NOMEM). */
void *tr_new(tr_ctx *tx, const ProtobufCMessageDescriptor *desc);
#define TR_NEW(tx, lower) tr_new((tx), &lower##__descriptor)

void *tr_alloc(tr_ctx *tx, size_t n);
char *tr_strdup(tr_ctx *tx, const char *s);
char *tr_printf(tr_ctx *tx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Appends item to the repeated field (obj)->field, growing it in the arena. */
void tr_push_(tr_ctx *tx, void ***arr, size_t *n, void *item);
#define TR_PUSH(tx, obj, field, item) \
    tr_push_((tx), (void ***)(void *)&(obj)->field, &(obj)->n_##field, (void *)(item))

/* data unpacked as a desc message into the arena; NULL when the bytes are
 * not a valid desc. */
ProtobufCMessage *tr_unpack(tr_ctx *tx, const ProtobufCMessageDescriptor *desc, const void *data, size_t len);

/* Well-known types in the arena. */
Google__Protobuf__UInt32Value *tr_u32(tr_ctx *tx, uint32_t v);
Google__Protobuf__BoolValue *tr_bool(tr_ctx *tx, bool v);
Google__Protobuf__Duration *tr_dur(tr_ctx *tx, const Google__Protobuf__Duration *d);
Google__Protobuf__Duration *tr_dur_ms(tr_ctx *tx, int64_t ms);
/* d in milliseconds (d may be NULL: -1). */
int64_t tr_dur_to_ms(const Google__Protobuf__Duration *d);

/* m packed into a google.protobuf.Any (type URL from its descriptor). */
Google__Protobuf__Any *tr_any(tr_ctx *tx, const ProtobufCMessage *m);

/* A config source "ads: {}" with resource_api_version V3. */
Envoy__Config__Core__V3__ConfigSource *tr_ads(tr_ctx *tx);

/* A RegexMatcher / StringMatcher for an RE2 regex (validated by the caller). */
Envoy__Type__Matcher__V3__RegexMatcher *tr_regex(tr_ctx *tx, const char *re);

/* HTTP/2 protocol options with these flow-control windows (65535 to
 * 2147483647) and streams per connection (1 to 2147483647), each left
 * unset when NULL; a value out of range is reported at p. */
Envoy__Config__Core__V3__Http2ProtocolOptions *tr_http2_options(tr_ctx *tx, const Google__Protobuf__UInt32Value *stream_window,
                                                                const Google__Protobuf__UInt32Value *conn_window,
                                                                const Google__Protobuf__UInt32Value *max_streams,
                                                                const char *p);

/* Envoy's CidrRange of an IPv4 or IPv6 address and prefix length (NULL:
 * the whole address); NULL when either is bad (reported at p). */
Envoy__Config__Core__V3__CidrRange *tr_cidr_range(tr_ctx *tx, const char *address, const Google__Protobuf__UInt32Value *len,
                                                  const char *p);

/* route.c: Envoy's HeaderMatcher of Gloo's (Envoy-shaped) header matcher h
 * at path, its value matched with a StringMatcher; NULL when unusable
 * (reported: a bad name, regex or range, an empty prefix or suffix). */
Envoy__Config__Route__V3__HeaderMatcher *tr_header_matcher(tr_ctx *tx, const Sluice__V1__EnvoyHeaderMatcher *h,
                                                           const char *path);

/* Sets the per-filter config of a route / virtual host / weighted cluster. */
void tr_route_filter_config(tr_ctx *tx, tr_route_t *r, const char *filter, const ProtobufCMessage *m);
void tr_vhost_filter_config(tr_ctx *tx, tr_vhost_t *vh, const char *filter, const ProtobufCMessage *m);
void tr_cluster_weight_filter_config(tr_ctx *tx, Envoy__Config__Route__V3__WeightedCluster__ClusterWeight *cw,
                                     const char *filter, const ProtobufCMessage *m);

/* Adds an HTTP filter to the chain at stage (see enum tr_stage); a filter
 * already added under the same name is not added twice. */
void tr_add_filter(tr_ctx *tx, tr_filters *f, int stage, const char *name, const ProtobufCMessage *config);

/* Marks the filter named name in the chain disabled by default (routes
 * enable it with a FilterConfig in their typed_per_filter_config). */
void tr_disable_filter(tr_filters *f, const char *name);

/* Adds resource m of type t named name to the proxy being built (only from
 * a server_proxy hook); a second one of the same type and name is left out. */
void tr_add_resource(tr_ctx *tx, sl_xds_type t, const char *name, const ProtobufCMessage *m);

/* Marks plugin p used on the HTTP listener being translated. */
void tr_use(tr_ctx *tx, const sl_tr_plugin *p);
bool tr_used(tr_ctx *tx, const sl_tr_plugin *p);

/* State a plugin keeps for the HTTP listener being translated (NULL until
 * set; setting it marks the plugin used). Allocate it with tr_alloc(). */
void *tr_state(tr_ctx *tx, const sl_tr_plugin *p);
void tr_set_state(tr_ctx *tx, const sl_tr_plugin *p, void *state);

/* The virtual host named vhost is left out of the listener: every used
 * plugin forgets what it contributed (sl_tr_plugin.forget). */
void tr_forget_vhost(tr_ctx *tx, const char *vhost);

/* Reports about the resource being translated (tr_cur_* below). */
void tr_error(tr_ctx *tx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void tr_warn(tr_ctx *tx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The translation's settings (never NULL; defaults when none stored). */
const Sluice__V1__SettingsSpec *tr_settings(tr_ctx *tx);
/* The namespace of the Settings ("gloo-system" unless configured). */
const char *tr_settings_namespace(tr_ctx *tx);

/* Lookups in the store: the accepted version to use (current, or last good
 * when the current one was rejected), or NULL. ns NULL or "" is the
 * referrer's namespace given in def_ns. */
const Sluice__V1__Upstream *tr_find_upstream(tr_ctx *tx, const Sluice__V1__ResourceRef *ref,
                                             const char *def_ns);
const Sluice__V1__Secret *tr_find_secret(tr_ctx *tx, const Sluice__V1__ResourceRef *ref,
                                         const char *def_ns);

/* The grant a Secret gives to resources of other namespaces
 * (sl_kind_secret_grants() in sluice/kinds.h). */
#define TR_SECRET_GRANT SL_SECRET_GRANT

/* tr_find_secret() for a resource of namespace def_ns: a Secret of another
 * namespace is used only when its TR_SECRET_GRANT names def_ns (or "*").
 * NULL when missing (*why NULL) or not granted (*why: the reason, naming
 * the secret and the grant, in the arena). */
const Sluice__V1__Secret *tr_find_secret_granted(tr_ctx *tx, const Sluice__V1__ResourceRef *ref,
                                                 const char *def_ns, const char **why);

/* "<name>_<namespace>": the cluster of an upstream, the Envoy secret name. */
char *tr_cluster_name(tr_ctx *tx, const char *name, const char *ns);

/* Adds the Envoy Secret for a Sluice TLS secret to the proxy being
 * translated and returns its SDS config ("<name>_<ns>" over ADS). With
 * validation true it adds the root CA as a validation context secret
 * "<name>_<ns>-ca" instead (NULL when the secret has no rootCa). */
Envoy__Extensions__TransportSockets__Tls__V3__SdsSecretConfig *
tr_sds_secret(tr_ctx *tx, const Sluice__V1__Secret *sec, bool validation);

/* plugins/upstream_ssl.c: the SDS secrets of a Gloo SdsConfig (path names
 * it in reports, e.g. "spec.sslConfig.sds") set in cc: the certificate
 * (certificatesSecretName) and the validation context
 * (validationContextName; with SANs, a combined validation context
 * matching them). The SDS server is cluster clusterName (default
 * "gateway_proxy_sds") over Envoy gRPC, or targetUri over Google gRPC
 * with callCredentials. Returns false (reported) when sds cannot be used. */
bool tr_sds_config(tr_ctx *tx, const Sluice__V1__SdsConfig *sds, const char *path, size_t n_san,
                   char *const *san,
                   Envoy__Extensions__TransportSockets__Tls__V3__CommonTlsContext *cc);

/* plugins/upstream_ssl.c: Gloo's sslConfig.parameters (protocol versions,
 * cipher suites, ECDH curves) as Envoy's TlsParameters, up- and downstream. */
Envoy__Extensions__TransportSockets__Tls__V3__TlsParameters *tr_tls_params(tr_ctx *tx,
                                                                          const Sluice__V1__SslParameters *p);

/* Envoy DataSources: the string s inline, or the file path. */
Envoy__Config__Core__V3__DataSource *tr_inline_string(tr_ctx *tx, const char *s);
Envoy__Config__Core__V3__DataSource *tr_file_source(tr_ctx *tx, const char *path);

/* plugins/upstream_ssl.c: a TLS certificate read from files (certificate
 * chain cert, private key key), and a validation context trusting the CA
 * certificates in file ca; up- and downstream (sslConfig.sslFiles). */
Envoy__Extensions__TransportSockets__Tls__V3__TlsCertificate *tr_tls_cert_files(tr_ctx *tx, const char *cert,
                                                                               const char *key);
Envoy__Extensions__TransportSockets__Tls__V3__CertificateValidationContext *tr_ca_file(tr_ctx *tx, const char *ca);

/* plugins/lua.c: enables Envoy's Lua filter on route r with the Lua source
 * code (an envoy_on_request handler); the filter is added to the listener,
 * disabled by default. Not for routes served to gRPC proxyless clients. */
void tr_lua_route(tr_ctx *tx, tr_route_t *r, const char *code);

/* plugins/lua.c: the per-filter config (a FilterConfig) of a Lua filter
 * that runs code on a route or weighted cluster, or, code NULL, disables
 * the filter there. For lua's own filter (TR_LUA_FILTER), tr_lua_use()
 * adds it to the listener; other Lua filters are added with
 * tr_lua_filter(). */
#define TR_LUA_FILTER "envoy.filters.http.lua"
const ProtobufCMessage *tr_lua_config(tr_ctx *tx, const char *code);
void tr_lua_use(tr_ctx *tx);

/* plugins/lua.c: adds a Lua filter named filter at stage, disabled, whose
 * default source does nothing (routes enable it with tr_lua_config()).
 * The first filter of a name added to a chain is the one it keeps. */
void tr_lua_filter(tr_ctx *tx, tr_filters *f, int stage, const char *filter);

/* plugins/lua.c: the same, with the Lua source code under name in its
 * source_codes, shared by the routes that enable the filter with
 * tr_lua_named_config(name): Envoy loads it once per filter, not once per
 * route (a route tells it what to do through its metadata). */
void tr_lua_filter_shared(tr_ctx *tx, tr_filters *f, int stage, const char *filter, const char *name,
                          const char *code);
const ProtobufCMessage *tr_lua_named_config(tr_ctx *tx, const char *name);

/* Sets key to value in namespace ns of the metadata *md (created when
 * NULL; the namespace's Struct is the metadata's own, never an input's):
 * keys in a namespace stay sorted, so the same values give the same
 * bytes. tr_metadata_put_string() sets a string. */
void tr_metadata_put(tr_ctx *tx, Envoy__Config__Core__V3__Metadata **md, const char *ns, const char *key,
                     Google__Protobuf__Value *value);
void tr_metadata_put_string(tr_ctx *tx, Envoy__Config__Core__V3__Metadata **md, const char *ns, const char *key,
                            const char *value);

/* Metadata {filter_metadata: {"envoy.lb": {keys[i]: values[i]}}}: endpoint
 * labels and route metadata_match of subset load balancing. */
Envoy__Config__Core__V3__Metadata *tr_lb_metadata(tr_ctx *tx, size_t n, const char *const *keys,
                                                  const char *const *values);

/* A local rate limit's token bucket b (at path p; problems reported):
 * maxTokens at least 1, tokensPerFill default 1, fillInterval at least
 * 50ms, default 1s. */
Envoy__Type__V3__TokenBucket *tr_token_bucket(tr_ctx *tx, const Sluice__V1__TokenBucket *b, const char *p);

/* Converts a Sluice header list to Envoy's. */
Envoy__Config__Core__V3__HeaderValueOption *tr_header_option(tr_ctx *tx,
                                                             const Sluice__V1__HeaderValueOption *h);

/* Checks a header name (RFC 7230 token, lowercase recommended; pseudo
 * headers allowed when allow_pseudo). Returns an error text or NULL. */
const char *tr_check_header_name(const char *name, bool allow_pseudo);

/* re2check.c: NULL when re is valid RE2 syntax, else why not (static text
 * or arena string). *groups receives the number of capture groups. */
const char *tr_re2_check(tr_ctx *tx, const char *re, int *groups);

/* Estimated size of the RE2 program of a valid expression (Envoy refuses
 * programs above Settings gloo.regexMaxProgramSize, default 100). */
long tr_re2_program_size(const char *re);

/* Checks a regex for use in Envoy: RE2 syntax, program size. Reports an
 * error (naming what) and returns false when it is unusable; warns when the
 * program may be too large. groups may be NULL. */
bool tr_check_regex(tr_ctx *tx, const char *what, const char *re, int *groups);

#endif
