/* sluice-xds: the Envoy v3 xDS gRPC server, fed from the sluice_xds KV.
 * See docs/xds.md. */
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "proxies.h"
#include "server.h"
#include "sluice/envelope.h"
#include "sluice/kv.h"
#include "sluice/log.h"
#include "sluice/report.h"
#include "sluice/resource.h"
#include "sluice/service.h"
#include "sluice/v1/events.pb-c.h"
#include "sluice/xds_source.h"

static const sl_service_info info = {"sluice-xds", "0.1.0",
                                     "Envoy v3 xDS server (ADS, SotW and incremental) fed from NATS KV.", NULL};

static _Atomic(xds_server *) g_server;
static sl_nats *g_nc;
static sl_service *g_svc;
static char g_reporter[128];

static void on_commit(void *ud, const char *proxy)
{
    (void)ud;
    xds_server *s = atomic_load(&g_server);
    if (s)
        xds_server_notify(s, proxy);
}

static void on_ready(void *ud)
{
    (void)ud;
    sl_service_set_ready(g_svc, true);
}

/* Every NACK becomes a sluice.v1.Report on
 * sluice.report.xds-server.Proxy.<namespace>.<proxy>. */
static void on_nack(void *ud, const xds_nack *n)
{
    (void)ud;
    char ns[128] = "default", name[256], subject[512];
    const char *tilde = strchr(n->proxy, '~');
    if (tilde) {
        snprintf(ns, sizeof ns, "%.*s", (int)(tilde - n->proxy), n->proxy);
        snprintf(name, sizeof name, "%s", tilde + 1);
    } else {
        snprintf(name, sizeof name, "%s", n->proxy);
    }
    if (sl_resource_subject(subject, sizeof subject, "sluice.report.xds-server", "Proxy", ns, name) != SL_OK)
        snprintf(subject, sizeof subject, "sluice.report.xds-server.Proxy.invalid.invalid");

    rep_report rr;
    Sluice__V1__Report *r =
        rep_report_init(&rr, "xds-server", "Proxy", ns, name, SLUICE__V1__STATUS__STATE__Rejected, n->error);
    r->proxy = (char *)n->proxy;
    r->xds_version = (char *)n->version;
    r->type_url = (char *)sl_xds_type_url(n->type);
    r->node_id = (char *)n->node_id;
    r->reporter_id = g_reporter;
    sl_envelope_opts eo = {NULL, "sluice-xds", NULL};
    if (sl_envelope_publish_pb(g_nc, subject, &r->base, &eo) != SL_OK)
        sl_log_warn("report", "publish failed", "subject=%s err=%s", subject, sl_log_q(sl_error_msg()));
}

/* Whether addr ("host:port", "[v6]:port") is a loopback address. */
static bool xds_listen_loopback(const char *addr)
{
    return !strncmp(addr, "127.", 4) || !strncmp(addr, "[::1]:", 6) || !strncmp(addr, "localhost:", 10);
}

int main(int argc, char **argv)
{
    sl_service_args args;
    sl_loop *loop = NULL;
    sl_xds_cache *cache = NULL;
    sl_xds_watch *watch = NULL;
    xds_server *server = NULL;
    xds_proxies *proxies = NULL;
    int code = SL_EXIT_FAILURE;
    const char *listen = NULL, *def = NULL, *bucket = NULL;
    const char *cert = NULL, *key = NULL, *ca = NULL, *trust_domain = NULL, *tokens = NULL;
    bool insecure = false;
    xds_limits limits;
    xds_identity *identity = NULL;
    int workers = 0;
    const sl_flag own[] = {
        {.name = "listen", .kind = SL_FLAG_STRING, .target = &listen, .def = "127.0.0.1:9977", .arg = "ADDR",
         .help = "gRPC address"},
        {.name = "default-proxy", .kind = SL_FLAG_STRING, .target = &def, .def = SL_XDS_DEFAULT_PROXY,
         .arg = "NAME", .help = "proxy of nodes without metadata.role"},
        {.name = "bucket", .kind = SL_FLAG_STRING, .target = &bucket, .def = "sluice_xds", .arg = "NAME",
         .help = "KV bucket to serve"},
        {.name = "workers", .kind = SL_FLAG_INT, .target = &workers, .def = "2", .min = 1, .max = 64,
         .help = "gRPC completion-queue threads"},
        {.name = "tls-cert", .kind = SL_FLAG_STRING, .target = &cert, .arg = "FILE",
         .help = "server certificate (PEM); with --tls-key enables TLS"},
        {.name = "tls-key", .kind = SL_FLAG_STRING, .target = &key, .arg = "FILE", .help = "server key (PEM)"},
        {.name = "tls-client-ca", .kind = SL_FLAG_STRING, .target = &ca, .arg = "FILE",
         .help = "require client certificates signed by this CA (mutual TLS); each must name its\n"
                 "proxy in a URI SAN spiffe://<trust domain>/ns/<namespace>/proxy/<name>"},
        {.name = "trust-domain", .kind = SL_FLAG_STRING, .target = &trust_domain, .def = "sluice", .arg = "NAME",
         .help = "SPIFFE trust domain of client certificates"},
        {.name = "tokens", .kind = SL_FLAG_STRING, .target = &tokens, .arg = "FILE", .env = "SLUICE_XDS_TOKENS",
         .help = "per-proxy bearer tokens, lines '<namespace>~<proxy> <token>' (Envoy sends\n"
                 "'authorization: Bearer <token>' with initial_metadata)"},
        {.name = "insecure", .kind = SL_FLAG_BOOL, .target = &insecure,
         .help = "serve clients that prove no identity on an address that is not loopback"},
    };
    enum { NOWN = sizeof(own) / sizeof(own[0]) };
    sl_flag flags[NOWN + XDS_LIMITS_NFLAGS];
    memcpy(flags, own, sizeof own);
    xds_limits_flags(flags + NOWN, &limits);

    sl_service_args_init(&args);
    if (sl_service_args_parse(&args, &info, flags, NOWN + XDS_LIMITS_NFLAGS, argc, argv) != SL_OK) {
        code = sl_service_usage_error(&info);
        goto out;
    }
    if (args.exit_now) {
        code = args.exit_code;
        goto out;
    }
    if ((cert == NULL) != (key == NULL) || (ca && !cert)) {
        sl_error_set(SL_ERR_INVALID, "--tls-cert and --tls-key go together; --tls-client-ca needs them");
        code = sl_service_usage_error(&info);
        goto out;
    }
    if (!ca && !tokens && !insecure && !xds_listen_loopback(listen)) {
        sl_error_set(SL_ERR_INVALID, "--listen %s is not a loopback address: clients must prove who they are "
                     "(--tls-client-ca or --tokens), or say --insecure", listen);
        code = sl_service_usage_error(&info);
        goto out;
    }
    xds_identity_opts io = {.trust_domain = trust_domain, .mtls = ca != NULL, .token_file = tokens};
    if (xds_identity_new(&identity, &io) != SL_OK) {
        code = sl_service_usage_error(&info);
        goto out;
    }
    char host[64] = "";
    gethostname(host, sizeof host - 1);
    snprintf(g_reporter, sizeof g_reporter, "%s:%d", host, (int)getpid());

    if (sl_service_new(&g_svc, &info, &args) != SL_OK || sl_loop_new(&loop) != SL_OK ||
        sl_service_connect(&g_nc, g_svc) != SL_OK || sl_xds_cache_new(&cache, on_commit, NULL) != SL_OK) {
        sl_log_error("main", "start failed", "err=%s", sl_log_q(sl_error_msg()));
        goto out;
    }
    xds_server_opts so = {.listen = listen,
                          .default_proxy = def,
                          .workers = workers,
                          .tls_cert = cert,
                          .tls_key = key,
                          .tls_client_ca = ca,
                          .identity = identity,
                          .cache = cache,
                          .metrics = sl_service_metrics(g_svc),
                          .limits = &limits,
                          .on_nack = on_nack};
    if (xds_server_start(&server, &so) != SL_OK) {
        sl_log_error("main", "cannot start the gRPC server", "err=%s", sl_log_q(sl_error_msg()));
        goto out;
    }
    atomic_store(&g_server, server);
    /* Per-proxy state for `sluicectl check`; instance = host-pid (the
     * reporter id). Not fatal: serving matters more than reporting. */
    char instance[128];
    snprintf(instance, sizeof instance, "%s-%d", host, (int)getpid());
    if (xds_proxies_start(&proxies, g_nc, server, cache, instance, 5000) != SL_OK)
        sl_log_warn("main", "no per-proxy state", "bucket=" XDS_PROXIES_BUCKET " err=%s",
                    sl_log_q(sl_error_msg()));
    sl_quarantine q = {g_nc, "xds-server", sl_service_metrics(g_svc)};
    if (sl_xds_watch_start(&watch, g_nc, loop, bucket, cache, &q, on_ready, NULL) != SL_OK) {
        sl_log_error("main", "cannot watch the xds bucket", "bucket=%s err=%s", bucket, sl_log_q(sl_error_msg()));
        goto out;
    }
    /* For tests and scripts: the bound port on stdout. */
    printf("sluice-xds listening on port %d metrics port %d\n", xds_server_port(server),
           sl_service_metrics_port(g_svc));
    fflush(stdout);
    code = sl_service_run(g_svc, loop);
out:
    xds_proxies_stop(proxies); /* deletes this instance's keys */
    sl_xds_watch_free(watch);
    atomic_store(&g_server, NULL);
    xds_server_stop(server);
    xds_identity_free(identity);
    sl_xds_cache_free(cache);
    sl_loop_free(loop);
    sl_service_free(g_svc);
    sl_service_args_deinit(&args);
    return code;
}
