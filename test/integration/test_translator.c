/* A real nats-server and the real sluice-translator binary: resources put
 * into the config KV become Envoy resources and a commit in sluice_xds,
 * changes move only what changed, removals are deleted after the commit
 * that stops naming them, and reports arrive on
 * sluice.report.translator.<Kind>.<ns>.<name>. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>
#include <pthread.h>
#include <cmocka.h>

#include <jansson.h>

#include "harness.h"
#include "sluice/codec.h"
#include "sluice/envelope.h"
#include "sluice/kinds.h"
#include "sluice/kv.h"
#include "sluice/types.h"
#include "sluice/v1/events.pb-c.h"
#include "sluice/v1/xds.pb-c.h"
#include "sluice/xds.h"
#include "sluice/xds_keys.h"
#include "xds_testkeys.h"

#define PROXY "gloo-system~gateway-proxy"
#define ROUTES "listener-::-8080-routes"

static harness_nats *g_h;
static sl_nats *g_nc;
static sl_kv *g_config, *g_xds, *g_eps;
static pid_t g_pid;

static void put_yaml_to(sl_kv *kv, const char *key_override, const char *kind, const char *ns, const char *name,
                        const char *yaml);

static void put_yaml(const char *kind, const char *ns, const char *name, const char *yaml)
{
    put_yaml_to(g_config, NULL, kind, ns, name, yaml);
}

/* An EndpointSet in the endpoints bucket (key <ns>.<upstream>). */
static void put_endpoints(const char *ns, const char *name, const char *yaml)
{
    char key[512];
    snprintf(key, sizeof key, "%s.%s", ns, name);
    put_yaml_to(g_eps, key, "EndpointSet", ns, name, yaml);
}

static void put_yaml_to(sl_kv *kv, const char *key_override, const char *kind, const char *ns, const char *name,
                        const char *yaml)
{
    const sl_kind *k = sl_kind_by_name(kind);
    static const char *const skip[] = {"apiVersion", "kind", NULL};
    sl_codec_options o = {0};
    char key[512];
    o.resolver = sl_types_find_url;
    o.ignore_keys = skip;
    o.root_name = kind;
    assert_non_null(k);
    if (key_override)
        snprintf(key, sizeof key, "%s", key_override);
    else
        snprintf(key, sizeof key, "%s.%s.%s", kind, ns, name);
    if (harness_kv_put_yaml(kv, key, k->descriptor, yaml, &o) != SL_OK)
        fail_msg("decode or put %s: %s", kind, sl_error_msg());
}

/* The commit (a sluice.v1.XdsCommit) seen as JSON, {"revision": N,
 * "resources": {type: {name: kv revision}}}, from the manifest chunks it
 * names; NULL while a chunk has moved past the named revision. */
static json_t *commit_view(const sl_kv_entry *ce)
{
    Sluice__V1__XdsCommit *c = sluice__v1__xds_commit__unpack(NULL, ce->len, ce->value);
    json_t *j = NULL, *res;
    if (!c)
        fail_msg("the commit does not decode as a sluice.v1.XdsCommit");
    j = json_pack("{s:I, s:{}}", "revision", (json_int_t)c->revision, "resources");
    res = json_object_get(j, "resources");
    for (size_t i = 0; i < c->n_chunks; i++) {
        char key[SL_XDS_KEY_MAX];
        sl_kv_entry e = {0};
        sl_xds_type t;
        assert_int_equal(sl_xds_type_from_token(&t, c->chunks[i]->type), SL_OK);
        assert_int_equal(sl_xds_key_manifest(key, sizeof key, PROXY, t, c->chunks[i]->id), SL_OK);
        if (sl_kv_get(&e, g_xds, key) != SL_OK || e.revision != c->chunks[i]->revision) {
            sl_kv_entry_deinit(&e);
            json_decref(j);
            j = NULL;
            break;
        }
        Sluice__V1__XdsManifest *m = sluice__v1__xds_manifest__unpack(NULL, e.len, e.value);
        assert_non_null(m);
        json_t *names = json_object_get(res, c->chunks[i]->type);
        if (!names)
            json_object_set_new(res, c->chunks[i]->type, names = json_object());
        for (size_t k = 0; k < m->n_entries; k++)
            json_object_set_new(names, m->entries[k]->name, json_integer((json_int_t)m->entries[k]->revision));
        sluice__v1__xds_manifest__free_unpacked(m, NULL);
        sl_kv_entry_deinit(&e);
    }
    sluice__v1__xds_commit__free_unpacked(c, NULL);
    return j;
}

/* Waits until the proxy's commit satisfies pred; returns it (decref). */
static json_t *wait_commit(int (*pred)(json_t *), int64_t timeout_ms)
{
    int64_t end = harness_now_ms() + timeout_ms;
    while (harness_now_ms() < end) {
        sl_kv_entry e = {0};
        if (sl_kv_get(&e, g_xds, tk_key_commit(PROXY)) == SL_OK) {
            json_t *j = commit_view(&e);
            sl_kv_entry_deinit(&e);
            if (j && pred(j))
                return j;
            json_decref(j);
        }
        usleep(50 * 1000);
    }
    fail_msg("no matching commit within %lld ms", (long long)timeout_ms);
    return NULL;
}

static json_t *res_of(json_t *c, const char *type) { return json_object_get(json_object_get(c, "resources"), type); }

static uint64_t rev_in(json_t *c, const char *type, const char *name)
{
    return (uint64_t)json_integer_value(json_object_get(res_of(c, type), name));
}

static uint64_t g_eds_rev; /* the endpoint revision the next commit must exceed */
static int has_eds(json_t *c) { return rev_in(c, "endpoint", "petstore_default") > g_eds_rev; }

static int has_cluster(json_t *c) { return json_object_get(res_of(c, "cluster"), "petstore_default") != NULL; }
static int has_two_clusters(json_t *c) { return json_object_size(res_of(c, "cluster")) == 2; }
static int has_no_other(json_t *c)
{
    return json_object_size(res_of(c, "cluster")) == 1 && json_object_get(res_of(c, "cluster"), "petstore_default");
}

static int has_parts(json_t *c) { return rev_in(c, "route", "default_big-149") > 0; }
static int has_hybrid(json_t *c) { return rev_in(c, "route", "listener-::-9443-routes-0") > 0; }
static int has_defaults_again(json_t *c)
{
    return rev_in(c, "listener", "listener-::-8080") > 0 && rev_in(c, "listener", "listener-::-9443") == 0;
}


/* Every resource and part the commit names is in the KV at exactly that
 * revision (the chunks were checked by commit_view()). */
static void check_commit_parts(json_t *c)
{
    const char *type, *name;
    json_t *names, *rev;
    json_object_foreach(json_object_get(c, "resources"), type, names) {
        json_object_foreach(names, name, rev) {
            sl_kv_entry e = {0};
            const char *key = strcmp(type, "route") == 0 && strcmp(name, ROUTES) != 0 /* a part */
                                  ? tk_key_vhost(PROXY, ROUTES, name)
                                  : tk_key_resource(PROXY, tk_xds_type(type), name);
            if (sl_kv_get(&e, g_xds, key) != SL_OK)
                fail_msg("commit names %s, which is not in the bucket", key);
            assert_int_equal(e.revision, (uint64_t)json_integer_value(rev));
            sl_kv_entry_deinit(&e);
        }
    }
}
static uint64_t g_part_rev; /* big-7's part revision the next commit must exceed */
static int part7_moved(json_t *c) { return rev_in(c, "route", "default_big-7") > g_part_rev; }
static int part9_gone(json_t *c) { return has_parts(c) && !rev_in(c, "route", "default_big-9"); }

/* Every resource the commit names is in the KV at exactly that revision. */
static void check_commit_consistent(json_t *c)
{
    const char *type;
    json_t *names;
    json_object_foreach(json_object_get(c, "resources"), type, names) {
        const char *name;
        json_t *rev;
        json_object_foreach(names, name, rev) {
            sl_kv_entry e = {0};
            const char *key = tk_key_resource(PROXY, tk_xds_type(type), name);
            if (sl_kv_get(&e, g_xds, key) != SL_OK)
                fail_msg("commit names %s, which is not in the bucket", key);
            assert_int_equal(e.revision, (uint64_t)json_integer_value(rev));
            sl_kv_entry_deinit(&e);
        }
    }
}

static const char *UPSTREAM =
    "metadata: {name: petstore, namespace: default}\n"
    "spec: {static: {hosts: [{addr: 10.0.0.5, port: 8080}]}}\n";
static const char *UPSTREAM2 =
    "metadata: {name: other, namespace: default}\n"
    "spec: {static: {hosts: [{addr: 10.0.0.6, port: 8080}]}}\n";
static const char *VS =
    "metadata: {name: petstore, namespace: default}\n"
    "spec:\n"
    "  virtualHost:\n"
    "    domains: ['*']\n"
    "    routes:\n"
    "    - matchers: [{prefix: /}]\n"
    "      routeAction: {single: {upstream: {name: petstore}}}\n";
static const char *VS2 =
    "metadata: {name: petstore, namespace: default}\n"
    "spec:\n"
    "  virtualHost:\n"
    "    domains: ['*']\n"
    "    routes:\n"
    "    - matchers: [{prefix: /api}]\n"
    "      routeAction: {single: {upstream: {name: petstore}}}\n"
    "      options: {timeout: 3s}\n"
    "    - matchers: [{prefix: /other}]\n" /* a proxy gets only the clusters its routes reach */
    "      routeAction: {single: {upstream: {name: other}}}\n";

static void start_translator(void)
{
    const char *bin = getenv("SLUICE_BINARY_DIR");
    char path[1024];
    snprintf(path, sizeof path, "%s/services/translator/sluice-translator", bin ? bin : "build");
    g_pid = fork();
    assert_true(g_pid >= 0);
    if (g_pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        execl(path, path, "--nats-url", harness_nats_url(g_h), "--debounce", "50ms", "--log-level", "warn",
              (char *)NULL);
        _exit(127);
    }
}

static void stop_translator(void)
{
    int st = 0;
    kill(g_pid, SIGTERM);
    waitpid(g_pid, &st, 0);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
}

typedef struct {
    int n;
    char last_subject[256];
    int last_state;
    int hgw_n; /* reports about MatchableHttpGateway default.web */
    int hgw_state;
} report_sink;

static void on_report(sl_subscription *sub, sl_status st, const sl_envelope *env, natsMsg *msg, void *ud)
{
    report_sink *r = ud;
    Sluice__V1__Report *rep;
    (void)sub;
    (void)msg;
    if (st != SL_OK)
        return;
    rep = sluice__v1__report__unpack(NULL, env->len, env->data);
    if (!rep)
        return;
    if (strcmp(rep->resource->kind, "VirtualService") == 0) {
        snprintf(r->last_subject, sizeof r->last_subject, "%s", env->subject);
        r->last_state = rep->state;
        r->n++;
    }
    if (strcmp(env->subject, "sluice.report.translator.MatchableHttpGateway.default.web") == 0) {
        __atomic_store_n(&r->hgw_state, rep->state, __ATOMIC_SEQ_CST);
        __atomic_add_fetch(&r->hgw_n, 1, __ATOMIC_SEQ_CST);
    }
    sluice__v1__report__free_unpacked(rep, NULL);
}

static void *loop_main(void *ud)
{
    sl_loop_run(ud);
    return NULL;
}

/* The values the sluice_xds bucket keeps of key (its history). */
static size_t history_len(const char *key)
{
    kvStore *kv = NULL;
    kvEntryList l;
    size_t n = 0;
    assert_int_equal(js_KeyValue(&kv, sl_nats_js(g_nc), "sluice_xds"), NATS_OK);
    if (kvStore_History(&l, kv, key, NULL) == NATS_OK) {
        n = (size_t)l.Count;
        kvEntryList_Destroy(&l);
    }
    kvStore_Destroy(kv);
    return n;
}

static uint64_t g_secret_rev; /* the secret's revision the next commit must exceed */
static int secret_moved(json_t *c) { return rev_in(c, "secret", "tls-a_default") > g_secret_rev; }

static void put_secret(sl_kv *secrets, const char *key_body)
{
    char yaml[512];
    snprintf(yaml, sizeof yaml,
             "metadata: {name: tls-a, namespace: default}\n"
             "spec:\n  tls:\n    certChain: \"-----BEGIN CERTIFICATE-----\\nMIIB\\n-----END CERTIFICATE-----\\n\"\n"
             "    privateKey: \"-----BEGIN PRIVATE KEY-----\\n%s\\n-----END PRIVATE KEY-----\\n\"\n",
             key_body);
    put_yaml_to(secrets, NULL, "Secret", "default", "tls-a", yaml);
}

/* A rotated private key does not linger in the bucket's history: once the
 * commit naming the new one is written, the older value is purged. */
static void secret_rotation(void)
{
    sl_kv *secrets = NULL;
    sl_kv_config cfg;
    json_t *c;
    sl_kv_config_init(&cfg, "sluice_secrets");
    assert_int_equal(sl_kv_open(&secrets, g_nc, &cfg), SL_OK);
    put_secret(secrets, "KEYONE");
    put_yaml("VirtualService", "default", "tlsvs",
             "metadata: {name: tlsvs, namespace: default}\n"
             "spec:\n  sslConfig:\n    secretRef: {name: tls-a, namespace: default}\n"
             "    sniDomains: [tls.example]\n"
             "  virtualHost:\n    domains: [tls.example]\n    routes:\n    - matchers: [{prefix: /}]\n"
             "      routeAction: {single: {upstream: {name: petstore}}}\n");
    g_secret_rev = 0;
    c = wait_commit(secret_moved, 20000);
    g_secret_rev = rev_in(c, "secret", "tls-a_default");
    json_decref(c);
    put_secret(secrets, "KEYTWO");
    c = wait_commit(secret_moved, 20000);
    json_decref(c);
    assert_int_equal(history_len(tk_key_resource(PROXY, tk_xds_type("secret"), "tls-a_default")), 1);
    sl_kv_free(secrets);
}

/* The next commit with new endpoints (has_eds), consistent, with cluster
 * petstore_default and the route configuration still at their revisions:
 * only the endpoints moved. json_decref it. */
static json_t *eds_commit_keeping(uint64_t cluster_rev, uint64_t route_rev)
{
    json_t *c = wait_commit(has_eds, 10000);
    check_commit_consistent(c);
    assert_int_equal(rev_in(c, "cluster", "petstore_default"), cluster_rev);
    assert_int_equal(rev_in(c, "route", "listener-::-8080-routes"), route_rev);
    return c;
}

/* A hybrid Gateway delegating to a MatchableHttpGateway, both written to
 * the KV as any client would: the listener is served and the delegated
 * gateway gets its own report, Rejected when it goes bad (issue 13). */
static void delegated_hybrid(report_sink *sink)
{
    json_t *c;
    int64_t end;
    put_yaml("Gateway", "gloo-system", "hybrid",
             "metadata: {name: hybrid, namespace: gloo-system}\n"
             "spec:\n  bindPort: 9443\n  hybridGateway:\n    delegatedHttpGateways:\n"
             "      selector: {namespaces: [default], labels: {team: web}}\n");
    put_yaml("MatchableHttpGateway", "default", "web",
             "metadata: {name: web, namespace: default, labels: {team: web}}\n"
             "spec:\n  matcher:\n    sourcePrefixRanges: [{addressPrefix: 10.0.0.0, prefixLen: 8}]\n"
             "  httpGateway: {virtualServices: [{name: petstore}]}\n");
    c = wait_commit(has_hybrid, 20000);
    assert_true(rev_in(c, "listener", "listener-::-9443") > 0);
    json_decref(c);
    end = harness_now_ms() + 10000;
    while (__atomic_load_n(&sink->hgw_state, __ATOMIC_SEQ_CST) != SLUICE__V1__STATUS__STATE__Accepted &&
           harness_now_ms() < end)
        usleep(50 * 1000);
    assert_int_equal(__atomic_load_n(&sink->hgw_state, __ATOMIC_SEQ_CST), SLUICE__V1__STATUS__STATE__Accepted);
    /* a bad source range: the delegated gateway alone is Rejected */
    put_yaml("MatchableHttpGateway", "default", "web",
             "metadata: {name: web, namespace: default, labels: {team: web}}\n"
             "spec:\n  matcher:\n    sourcePrefixRanges: [{addressPrefix: 10.0.0.0, prefixLen: 40}]\n"
             "  httpGateway: {virtualServices: [{name: petstore}]}\n");
    end = harness_now_ms() + 10000;
    while (__atomic_load_n(&sink->hgw_state, __ATOMIC_SEQ_CST) != SLUICE__V1__STATUS__STATE__Rejected &&
           harness_now_ms() < end)
        usleep(50 * 1000);
    assert_int_equal(__atomic_load_n(&sink->hgw_state, __ATOMIC_SEQ_CST), SLUICE__V1__STATUS__STATE__Rejected);
    assert_int_equal(sl_kv_delete(NULL, g_config, "MatchableHttpGateway.default.web", 0), SL_OK);
    assert_int_equal(sl_kv_delete(NULL, g_config, "Gateway.gloo-system.hybrid", 0), SL_OK);
    /* Gloo's default gateways again */
    json_decref(wait_commit(has_defaults_again, 20000));
}

static void end_to_end(void **state)
{
    sl_kv_config cfg;
    json_t *c;
    uint64_t route_rev, listener_rev;
    sl_loop *loop = NULL;
    sl_subscription *sub = NULL;
    report_sink sink = {0};
    pthread_t th;
    (void)state;

    assert_int_equal(harness_nats_start(&g_h), 0);
    assert_int_equal(harness_connect(&g_nc, g_h), SL_OK);
    sl_kv_config_init(&cfg, SL_BUCKET_CONFIG);
    assert_int_equal(sl_kv_open(&g_config, g_nc, &cfg), SL_OK);
    sl_kv_config_init(&cfg, SL_BUCKET_ENDPOINTS);
    assert_int_equal(sl_kv_open(&g_eps, g_nc, &cfg), SL_OK);
    sl_kv_config_init(&cfg, "sluice_xds");
    cfg.history = 5;
    assert_int_equal(sl_kv_open(&g_xds, g_nc, &cfg), SL_OK);
    assert_int_equal(sl_loop_new(&loop), SL_OK);
    assert_int_equal(sl_envelope_subscribe(&sub, g_nc, "sluice.report.translator.>", NULL, loop, on_report, &sink), SL_OK);
    assert_int_equal(pthread_create(&th, NULL, loop_main, loop), 0);

    /* Initial values first, then the translator starts. */
    put_yaml("Upstream", "default", "petstore", UPSTREAM);
    put_yaml("VirtualService", "default", "petstore", VS);
    start_translator();
    c = wait_commit(has_cluster, 20000);
    check_commit_consistent(c);
    assert_non_null(json_object_get(res_of(c, "listener"), "listener-::-8080"));
    assert_non_null(json_object_get(res_of(c, "route"), "listener-::-8080-routes"));
    route_rev = (uint64_t)json_integer_value(json_object_get(res_of(c, "route"), "listener-::-8080-routes"));
    listener_rev = (uint64_t)json_integer_value(json_object_get(res_of(c, "listener"), "listener-::-8080"));
    json_decref(c);

    /* A changed VirtualService moves the route configuration only. */
    put_yaml("VirtualService", "default", "petstore", VS2);
    put_yaml("Upstream", "default", "other", UPSTREAM2);
    c = wait_commit(has_two_clusters, 10000);
    check_commit_consistent(c);
    assert_true((uint64_t)json_integer_value(json_object_get(res_of(c, "route"), "listener-::-8080-routes")) > route_rev);
    assert_int_equal((uint64_t)json_integer_value(json_object_get(res_of(c, "listener"), "listener-::-8080")),
                     listener_rev);
    json_decref(c);

    /* Endpoints: the first endpoint set makes the cluster EDS (a full
     * translation); a change of endpoints then moves only the
     * ClusterLoadAssignment (the incremental path). */
    put_endpoints("default", "petstore", "metadata: {name: petstore, namespace: default}\n"
                                         "spec: {endpoints: [{address: 10.1.0.1, port: 8080}]}\n");
    g_eds_rev = 0;
    c = wait_commit(has_eds, 10000);
    check_commit_consistent(c);
    {
        uint64_t cluster_rev = rev_in(c, "cluster", "petstore_default");
        route_rev = rev_in(c, "route", "listener-::-8080-routes");
        g_eds_rev = rev_in(c, "endpoint", "petstore_default");
        json_decref(c);
        put_endpoints("default", "petstore", "metadata: {name: petstore, namespace: default}\n"
                                             "spec: {endpoints: [{address: 10.1.0.2, port: 8080}]}\n");
        c = eds_commit_keeping(cluster_rev, route_rev);
        assert_int_equal(rev_in(c, "listener", "listener-::-8080"), listener_rev);
        g_eds_rev = rev_in(c, "endpoint", "petstore_default");
        json_decref(c);

        /* Another writer moves the bucket on between two writes: the
         * revisions the pipelined write gave out ahead are not the ones
         * stored, so it writes the proxy again before its commit, which
         * names every resource at its true revision. */
        assert_int_equal(sl_kv_put(NULL, g_xds, "zz.foreign.key", "x", 1), SL_OK);
        put_endpoints("default", "petstore", "metadata: {name: petstore, namespace: default}\n"
                                             "spec: {endpoints: [{address: 10.1.0.3, port: 8080}]}\n");
        json_decref(eds_commit_keeping(cluster_rev, route_rev));
        assert_int_equal(sl_kv_delete(NULL, g_xds, "zz.foreign.key", 0), SL_OK);
    }

    /* A removed upstream (no longer routed to) leaves the commit, then its
     * key is deleted. */
    put_yaml("VirtualService", "default", "petstore", VS);
    assert_int_equal(sl_kv_delete(NULL, g_config, "Upstream.default.other", 0), SL_OK);
    c = wait_commit(has_no_other, 10000);
    check_commit_consistent(c);
    json_decref(c);
    {
        int64_t end = harness_now_ms() + 5000;
        sl_kv_entry e = {0};
        while (sl_kv_get(&e, g_xds, tk_key_resource(PROXY, tk_xds_type("cluster"), "other_default")) == SL_OK && harness_now_ms() < end) {
            sl_kv_entry_deinit(&e);
            usleep(50 * 1000);
        }
        assert_int_not_equal(sl_kv_get(&e, g_xds, tk_key_resource(PROXY, tk_xds_type("cluster"), "other_default")), SL_OK);
    }

    /* Reports arrived for the VirtualService. */
    {
        int64_t end = harness_now_ms() + 5000;
        while (__atomic_load_n(&sink.n, __ATOMIC_SEQ_CST) == 0 && harness_now_ms() < end)
            usleep(50 * 1000);
        assert_true(sink.n > 0);
        assert_string_equal(sink.last_subject, "sluice.report.translator.VirtualService.default.petstore");
        assert_int_equal(sink.last_state, SLUICE__V1__STATUS__STATE__Accepted);
    }

    /* Many virtual services: the route configuration (over 64 kB) is
     * stored in parts; a changed VirtualService moves its part only; a
     * removed one's part key goes after the commit that drops it. */
    {
        char PART7[SL_XDS_KEY_MAX], PART9[SL_XDS_KEY_MAX];
        snprintf(PART7, sizeof PART7, "%s", tk_key_vhost(PROXY, ROUTES, "default_big-7"));
        snprintf(PART9, sizeof PART9, "%s", tk_key_vhost(PROXY, ROUTES, "default_big-9"));
        char name[32], yaml[2048];
        sl_kv_entry e = {0};
        uint64_t rev7, rev8;
        for (int i = 0; i < 150; i++) {
            size_t o;
            snprintf(name, sizeof name, "big-%d", i);
            o = (size_t)snprintf(yaml, sizeof yaml,
                                 "metadata: {name: %s, namespace: default}\n"
                                 "spec:\n  virtualHost:\n    domains: [big-%d.example.com]\n    routes:\n",
                                 name, i);
            for (int r = 0; r < 10; r++)
                o += (size_t)snprintf(yaml + o, sizeof yaml - o,
                                      "    - matchers: [{prefix: /some/longer/api/path/%d/%d}]\n"
                                      "      routeAction: {single: {upstream: {name: petstore}}}\n", i, r);
            put_yaml("VirtualService", "default", name, yaml);
        }
        c = wait_commit(has_parts, 20000);
        rev7 = rev_in(c, "route", "default_big-7");
        rev8 = rev_in(c, "route", "default_big-8");
        assert_true(rev7 > 0 && rev8 > 0);
        json_decref(c);
        assert_int_equal(sl_kv_get(&e, g_xds, PART7), SL_OK);
        assert_int_equal(e.revision, rev7);
        sl_kv_entry_deinit(&e);
        snprintf(yaml, sizeof yaml,
                 "metadata: {name: big-7, namespace: default}\n"
                 "spec:\n  virtualHost:\n    domains: [big-7.example.com]\n    routes:\n"
                 "    - matchers: [{prefix: /changed}]\n"
                 "      routeAction: {single: {upstream: {name: petstore}}}\n");
        put_yaml("VirtualService", "default", "big-7", yaml);
        g_part_rev = rev7;
        c = wait_commit(part7_moved, 10000);
        assert_int_equal(rev_in(c, "route", "default_big-8"), rev8); /* not rewritten */
        json_decref(c);
        assert_int_equal(sl_kv_get(&e, g_xds, PART9), SL_OK);
        sl_kv_entry_deinit(&e);
        assert_int_equal(sl_kv_delete(NULL, g_config, "VirtualService.default.big-9", 0), SL_OK);
        c = wait_commit(part9_gone, 10000);
        json_decref(c);
        int64_t end = harness_now_ms() + 5000;
        while (sl_kv_get(&e, g_xds, PART9) == SL_OK && harness_now_ms() < end) {
            sl_kv_entry_deinit(&e);
            usleep(50 * 1000);
        }
        assert_int_not_equal(sl_kv_get(&e, g_xds, PART9), SL_OK);

        /* kill -9 while it writes: the last commit stays consistent (every
         * chunk, resource and part it names at its revision), and a new
         * translator finishes the change. */
        for (int round = 0; round < 3; round++) {
            snprintf(yaml, sizeof yaml,
                     "metadata: {name: big-7, namespace: default}\n"
                     "spec:\n  virtualHost:\n    domains: [big-7.example.com]\n    routes:\n"
                     "    - matchers: [{prefix: /killed/%d}]\n"
                     "      routeAction: {single: {upstream: {name: petstore}}}\n", round);
            c = wait_commit(has_parts, 10000);
            g_part_rev = rev_in(c, "route", "default_big-7");
            json_decref(c);
            put_yaml("VirtualService", "default", "big-7", yaml);
            usleep((useconds_t)(round * 4000)); /* before, during, after the write */
            kill(g_pid, SIGKILL);
            waitpid(g_pid, NULL, 0);
            c = wait_commit(has_parts, 10000);
            check_commit_parts(c);
            json_decref(c);
            start_translator();
            c = wait_commit(part7_moved, 20000);
            check_commit_parts(c);
            json_decref(c);
        }
    }

    secret_rotation();
    delegated_hybrid(&sink);

    /* Restart: nothing changed, so no resource is rewritten. */
    stop_translator();
    {
        sl_kv_entry e = {0};
        uint64_t before, after;
        assert_int_equal(sl_kv_get(&e, g_xds, tk_key_commit(PROXY)), SL_OK);
        before = e.revision;
        sl_kv_entry_deinit(&e);
        /* A positive signal first: the new process publishes its reports
         * (its cache of them starts empty) after its first translation's
         * writes, so once they arrive, whatever it would write is written. */
        int n0 = __atomic_load_n(&sink.n, __ATOMIC_SEQ_CST);
        start_translator();
        int64_t end = harness_now_ms() + 10000;
        while (__atomic_load_n(&sink.n, __ATOMIC_SEQ_CST) == n0 && harness_now_ms() < end)
            usleep(20 * 1000);
        assert_true(__atomic_load_n(&sink.n, __ATOMIC_SEQ_CST) > n0);
        assert_int_equal(sl_kv_get(&e, g_xds, tk_key_commit(PROXY)), SL_OK);
        after = e.revision;
        sl_kv_entry_deinit(&e);
        assert_int_equal(before, after);
        stop_translator();
    }

    sl_loop_stop(loop);
    pthread_join(th, NULL);
    sl_subscription_free(sub);
    sl_loop_free(loop);
    sl_kv_free(g_config);
    sl_kv_free(g_eps);
    sl_kv_free(g_xds);
    sl_nats_close(g_nc, 1000);
    harness_nats_free(g_h);
    sl_nats_shutdown(2000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(end_to_end)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
