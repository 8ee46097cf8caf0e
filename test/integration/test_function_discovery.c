/* sluice-function-discovery end to end: the real binary, a real nats-server (authentication on), a
 * FastAPI application under uvicorn (OpenAPI 3.1) and python's http.server serving the Petstore
 * (Swagger 2.0, JSON and YAML), and a grpcio server with grpcio-reflection.
 *
 * One scenario, in order: Upstreams naming a document (JSON, YAML), one without (probed at the
 * well-known paths: FastAPI's /openapi.json) and one labelled disabled get their functions or
 * none; a person's own function is kept; a gRPC upstream gets its services, methods and descriptors
 * from server reflection (v1alpha, after v1 is refused); a server that never answers is a Warning
 * (timed out) while the others are served; re-checks with nothing changed write nothing (304s);
 * sluicectl shows the functions; the FastAPI document changes (an operation added, one removed)
 * and the functions follow; the Swagger server stops: a Warning, the functions kept; SIGTERM. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"
#include "sluice/kv.h"
#include "sluice/nats.h"
#include "sluice/v1/events.pb-c.h"
#include "sluice/v1/upstream.pb-c.h"

static harness_nats *srv;
static sl_nats *nc;
static sl_kv *config_kv;
static natsSubscription *reports;
static pid_t http_srv = -1, api = -1, grpc_srv = -1, discovery = -1;
static int http_port, api_port, grpc_port, metrics_port, slow_port, slow_fd = -1;
static char dir[256], log_path[300];
static const char *src, *bin_dir;

/* ---- processes ----------------------------------------------------------- */

static pid_t spawn(char *const argv[]) { return harness_spawn((const char *const *)argv, log_path); }

static void wait_http(int port, const char *path)
{
    if (harness_wait_http(port, path, 30000) != 0)
        fail_msg("nothing serves %s on port %d (log %s)", path, port, log_path);
}

static void start_http(void)
{
    char port[16];
    snprintf(port, sizeof port, "%d", http_port);
    char *argv[] = {"/usr/bin/python3", "-m", "http.server", port, "--bind", "127.0.0.1", "--directory", dir, NULL};
    http_srv = spawn(argv);
    wait_http(http_port, "/petstore.json");
}

static void start_api(void)
{
    char py[1024], port[16], app_dir[1024];
    snprintf(py, sizeof py, "%s/.venv/bin/python", src);
    snprintf(port, sizeof port, "%d", api_port);
    snprintf(app_dir, sizeof app_dir, "%s/test/integration/fds", src);
    char *argv[] = {py, "-m", "uvicorn", "bookstore_app:app", "--app-dir", app_dir, "--host", "127.0.0.1",
                    "--port", port, "--log-level", "warning", NULL};
    api = spawn(argv);
    wait_http(api_port, "/openapi.json");
}

/* A server that takes connections and never answers. */
static void start_slow(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t l = sizeof a;
    slow_fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(bind(slow_fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(slow_fd, 64), 0);
    assert_int_equal(getsockname(slow_fd, (struct sockaddr *)&a, &l), 0);
    slow_port = ntohs(a.sin_port);
}

/* grpcio with grpcio-reflection (v1alpha only: discovery falls back to it). */
static void start_grpc(void)
{
    char py[1024], port[16], script[1024];
    snprintf(py, sizeof py, "%s/.venv/bin/python", src);
    snprintf(port, sizeof port, "%d", grpc_port);
    snprintf(script, sizeof script, "%s/test/integration/fds/grpc_server.py", src);
    char *argv[] = {py, script, port, NULL};
    grpc_srv = spawn(argv);
    if (harness_wait_tcp(grpc_port, 30000) != 0)
        fail_msg("the gRPC server did not start (log %s)", log_path);
}

static Sluice__V1__Upstream *get_upstream(const char *name, uint64_t *rev);

/* Waits for the gRPC functions of name: "pkg.Service/Method ..." and the number of descriptor files. */
static void wait_grpc(const char *name, const char *want, size_t files)
{
    char got[2048] = "";
    size_t n_files = 0;
    int64_t end = harness_now_ms() + 20000;
    do {
        Sluice__V1__Upstream *u = get_upstream(name, NULL);
        Sluice__V1__ServiceSpec *ss = u->spec->static_->service_spec;
        size_t k = 0;
        got[0] = 0;
        n_files = 0;
        if (ss && ss->plugin_type_case == SLUICE__V1__SERVICE_SPEC__PLUGIN_TYPE_GRPC) {
            for (size_t i = 0; i < ss->grpc->n_grpc_services && k < sizeof got; i++)
                for (size_t m = 0; m < ss->grpc->grpc_services[i]->n_function_names && k < sizeof got; m++)
                    k += (size_t)snprintf(got + k, sizeof got - k, "%s%s.%s/%s", k ? " " : "",
                                          ss->grpc->grpc_services[i]->package_name,
                                          ss->grpc->grpc_services[i]->service_name,
                                          ss->grpc->grpc_services[i]->function_names[m]);
            /* FileDescriptorSet: count the top-level field-1 entries */
            const uint8_t *p = ss->grpc->descriptors.data;
            size_t len = ss->grpc->descriptors.len, pos = 0;
            while (pos + 2 <= len && p[pos] == 0x0a) {
                uint64_t l = 0;
                int shift = 0;
                pos++;
                while (pos < len && (p[pos] & 0x80))
                    l |= (uint64_t)(p[pos++] & 0x7f) << shift, shift += 7;
                l |= (uint64_t)p[pos++] << shift;
                pos += l;
                n_files++;
            }
        }
        sluice__v1__upstream__free_unpacked(u, NULL);
        if (!strcmp(got, want) && n_files == files)
            return;
        usleep(100 * 1000);
    } while (harness_now_ms() < end);
    fail_msg("%s: want \"%s\" in %zu files, got \"%s\" in %zu (log %s)", name, want, files, got, n_files, log_path);
}

static void start_discovery(void)
{
    char bin[1024], url[256], maddr[64];
    snprintf(bin, sizeof bin, "%s/services/function-discovery/sluice-function-discovery", bin_dir);
    snprintf(url, sizeof url, "%s", harness_nats_url(srv));
    snprintf(maddr, sizeof maddr, "127.0.0.1:%d", metrics_port);
    char *argv[] = {bin, "--nats-url", url, "--metrics-addr", maddr, "--resync", "500ms", "--fetch-timeout", "2s",
                    "--connect-timeout", "1s", "--lease-ttl", "2s", "--log-level", "debug", NULL};
    discovery = spawn(argv);
    char buf[512];
    harness_wait_http(metrics_port, "/readyz", 15000);
    assert_int_equal(harness_http(metrics_port, "GET", "/healthz", buf, sizeof buf), 200);
}

/* ---- resources ------------------------------------------------------------- */

/* A static upstream on 127.0.0.1:port; url: its swaggerInfo.url (NULL: none, probed); label: the
 * function_discovery label (NULL: none); mine: a function of its own ("myFn"); grpc: an empty
 * serviceSpec.grpc instead. */
static void put_upstream(const char *name, int port, const char *url, const char *label, bool mine, bool grpc)
{
    Sluice__V1__Upstream u = SLUICE__V1__UPSTREAM__INIT;
    Sluice__V1__Metadata md = SLUICE__V1__METADATA__INIT;
    Sluice__V1__Metadata__LabelsEntry le = SLUICE__V1__METADATA__LABELS_ENTRY__INIT, *lep = &le;
    Sluice__V1__UpstreamSpec sp = SLUICE__V1__UPSTREAM_SPEC__INIT;
    Sluice__V1__StaticUpstreamSpec st = SLUICE__V1__STATIC_UPSTREAM_SPEC__INIT;
    Sluice__V1__Host h = SLUICE__V1__HOST__INIT, *hp = &h;
    Sluice__V1__ServiceSpec ss = SLUICE__V1__SERVICE_SPEC__INIT;
    Sluice__V1__RestServiceSpec rest = SLUICE__V1__REST_SERVICE_SPEC__INIT;
    Sluice__V1__RestServiceSpec__SwaggerInfo si = SLUICE__V1__REST_SERVICE_SPEC__SWAGGER_INFO__INIT;
    Sluice__V1__RestServiceSpec__TransformationsEntry te = SLUICE__V1__REST_SERVICE_SPEC__TRANSFORMATIONS_ENTRY__INIT,
                                                     *tep = &te;
    Sluice__V1__TransformationTemplate tt = SLUICE__V1__TRANSFORMATION_TEMPLATE__INIT;
    Sluice__V1__GrpcServiceSpec g = SLUICE__V1__GRPC_SERVICE_SPEC__INIT;
    char key[256];
    md.name = (char *)name;
    md.namespace_ = "default";
    if (label) {
        le.key = "discovery.solo.io/function_discovery";
        le.value = (char *)label;
        md.labels = &lep;
        md.n_labels = 1;
    }
    u.metadata = &md;
    u.spec = &sp;
    h.addr = "127.0.0.1";
    h.port = (uint32_t)port;
    st.hosts = &hp;
    st.n_hosts = 1;
    sp.upstream_type_case = SLUICE__V1__UPSTREAM_SPEC__UPSTREAM_TYPE_STATIC;
    sp.static_ = &st;
    if (grpc) {
        st.service_spec = &ss;
        ss.plugin_type_case = SLUICE__V1__SERVICE_SPEC__PLUGIN_TYPE_GRPC;
        ss.grpc = &g;
    } else if (url || mine) {
        st.service_spec = &ss;
        ss.plugin_type_case = SLUICE__V1__SERVICE_SPEC__PLUGIN_TYPE_REST;
        ss.rest = &rest;
    }
    if (url) {
        si.swagger_spec_case = SLUICE__V1__REST_SERVICE_SPEC__SWAGGER_INFO__SWAGGER_SPEC_URL;
        si.url = (char *)url;
        rest.swagger_info = &si;
    }
    if (mine) {
        te.key = "myFn";
        te.value = &tt;
        rest.transformations = &tep;
        rest.n_transformations = 1;
    }
    snprintf(key, sizeof key, "Upstream.default.%s", name);
    assert_int_equal(harness_kv_put_pb(config_kv, key, &u.base), SL_OK);
}

/* The upstream; free with sluice__v1__upstream__free_unpacked(). */
static Sluice__V1__Upstream *get_upstream(const char *name, uint64_t *rev)
{
    char key[256];
    snprintf(key, sizeof key, "Upstream.default.%s", name);
    Sluice__V1__Upstream *u =
        (Sluice__V1__Upstream *)harness_kv_get_pb_rev(config_kv, key, &sluice__v1__upstream__descriptor, rev);
    assert_non_null(u);
    return u;
}

static Sluice__V1__RestServiceSpec *rest_of(Sluice__V1__Upstream *u)
{
    Sluice__V1__ServiceSpec *ss = u->spec->static_->service_spec;
    return ss && ss->plugin_type_case == SLUICE__V1__SERVICE_SPEC__PLUGIN_TYPE_REST ? ss->rest : NULL;
}

/* " name1 name2 ... " of the upstream's functions; its revision in *rev. */
static void functions(char *out, size_t n, const char *name, uint64_t *rev)
{
    Sluice__V1__Upstream *u = get_upstream(name, rev);
    Sluice__V1__RestServiceSpec *r = rest_of(u);
    size_t k = (size_t)snprintf(out, n, " ");
    for (size_t i = 0; r && i < r->n_transformations && k < n; i++)
        k += (size_t)snprintf(out + k, n - k, "%s ", r->transformations[i]->key);
    sluice__v1__upstream__free_unpacked(u, NULL);
}

/* Waits until the functions of name hold every word of want and none of absent (" a b "). */
static uint64_t wait_functions(const char *name, const char *want, const char *absent, size_t count)
{
    char got[8192], w[128];
    uint64_t rev = 0;
    int64_t end = harness_now_ms() + 20000;
    do {
        bool ok = true;
        size_t n = 0;
        functions(got, sizeof got, name, &rev);
        for (const char *p = got; (p = strchr(p + 1, ' '));)
            n++;
        for (const char *p = want; ok && sscanf(p, " %127s", w) == 1; p = strstr(p, w) + strlen(w)) {
            char needle[140];
            snprintf(needle, sizeof needle, " %s ", w);
            ok = strstr(got, needle) != NULL;
        }
        for (const char *p = absent; ok && p && sscanf(p, " %127s", w) == 1; p = strstr(p, w) + strlen(w)) {
            char needle[140];
            snprintf(needle, sizeof needle, " %s ", w);
            ok = strstr(got, needle) == NULL;
        }
        if (ok && (!count || n == count))
            return rev;
        usleep(100 * 1000);
    } while (harness_now_ms() < end);
    fail_msg("%s: want \"%s\" without \"%s\" (%zu), got \"%s\" (log %s)", name, want, absent ? absent : "", count,
             got, log_path);
    return 0;
}

/* The text of header hdr (or "body") of function fn of the upstream. */
static void template_text(char *out, size_t n, const char *name, const char *fn, const char *hdr)
{
    Sluice__V1__Upstream *u = get_upstream(name, NULL);
    Sluice__V1__RestServiceSpec *r = rest_of(u);
    out[0] = 0;
    for (size_t i = 0; r && i < r->n_transformations; i++) {
        Sluice__V1__TransformationTemplate *t = r->transformations[i]->value;
        if (strcmp(r->transformations[i]->key, fn) != 0 || !t)
            continue;
        if (!strcmp(hdr, "body") && t->body_transformation_case ==
                                        SLUICE__V1__TRANSFORMATION_TEMPLATE__BODY_TRANSFORMATION_BODY)
            snprintf(out, n, "%s", t->body->text);
        for (size_t j = 0; j < t->n_headers; j++)
            if (!strcmp(t->headers[j]->key, hdr))
                snprintf(out, n, "%s", t->headers[j]->value->text);
    }
    sluice__v1__upstream__free_unpacked(u, NULL);
}

/* ---- the scenario ------------------------------------------------------------ */

static void check_templates(void)
{
    char t[2048];
    template_text(t, sizeof t, "books", "getBook", ":path");
    assert_string_equal(t, "/books/{{ default(book_id, \"\") }}");
    template_text(t, sizeof t, "books", "listBooks", ":path");
    assert_string_equal(t, "/books?limit={{ default(limit, \"\") }}&author={{ default(author, \"\") }}");
    template_text(t, sizeof t, "books", "listBooks", "x-request-id");
    assert_string_equal(t, "{{ default(x-request-id, \"\") }}");
    template_text(t, sizeof t, "books", "createBook", ":method");
    assert_string_equal(t, "POST");
    template_text(t, sizeof t, "books", "createBook", "body");
    assert_string_equal(t, "{\"author\": \"{{ default(author, \"\") }}\", \"pages\": {{ default(pages, \"\") }}, "
                           "\"title\": \"{{ default(title, \"\") }}\"}");
    template_text(t, sizeof t, "petstore", "findPetsByStatus", ":path");
    assert_string_equal(t, "/v2/pet/findByStatus?status={{ default(status, \"\") }}");
}

static void test_function_discovery(void **state)
{
    (void)state;
    char url_json[256], url_yaml[256], cmd[2048], buf[4096];
    const char *pets = " addPet getPetById deletePet findPetsByStatus uploadFile loginUser ";
    snprintf(url_json, sizeof url_json, "http://127.0.0.1:%d/petstore.json", http_port);
    snprintf(url_yaml, sizeof url_yaml, "http://127.0.0.1:%d/petstore.yaml", http_port);
    start_http();
    start_api();
    start_grpc();
    put_upstream("shop", grpc_port, NULL, NULL, false, true);
    /* a server that never answers holds one worker: the others go on */
    char url_slow[256];
    start_slow();
    snprintf(url_slow, sizeof url_slow, "http://127.0.0.1:%d/openapi.json", slow_port);
    put_upstream("slow", slow_port, url_slow, NULL, false, false);
    assert_int_equal(natsConnection_SubscribeSync(&reports, sl_nats_conn(nc), "sluice.report.function-discovery.>"),
                     NATS_OK);
    put_upstream("petstore", http_port, url_json, NULL, true, false);
    put_upstream("petyaml", http_port, url_yaml, "enabled", false, false);
    put_upstream("books", api_port, NULL, NULL, false, false);
    put_upstream("skipped", http_port, NULL, "disabled", false, false); /* /swagger.json is there */
    start_discovery();

    char want[256];
    snprintf(want, sizeof want, "%s myFn ", pets);
    uint64_t rev_pet = wait_functions("petstore", want, NULL, 21);
    uint64_t rev_yaml = wait_functions("petyaml", pets, NULL, 20);
    uint64_t rev_books =
        wait_functions("books", " listBooks createBook getBook deleteBook health_health_get ", NULL, 5);
    check_templates();
    /* gRPC reflection: the service and its methods, its file and the dependency (empty.proto) */
    wait_grpc("shop", "bookstore.v1.Bookstore/ListShelves bookstore.v1.Bookstore/GetShelf", 2);
    /* found by probing: the URL is recorded, as Gloo does */
    Sluice__V1__Upstream *u = get_upstream("books", NULL);
    snprintf(want, sizeof want, "http://127.0.0.1:%d/openapi.json", api_port);
    assert_string_equal(rest_of(u)->swagger_info->url, want);
    sluice__v1__upstream__free_unpacked(u, NULL);
    u = get_upstream("skipped", NULL);
    assert_null(u->spec->static_->service_spec);
    sluice__v1__upstream__free_unpacked(u, NULL);

    /* Re-checks with nothing changed write nothing; http.server answers 304. */
    int64_t end = harness_now_ms() + 10000;
    while (harness_now_ms() < end && harness_metric(metrics_port, "sluice_fds_not_modified_total") < 4)
        usleep(100 * 1000);
    assert_true(harness_metric(metrics_port, "sluice_fds_not_modified_total") >= 4);
    assert_true(harness_metric(metrics_port, "sluice_fds_unchanged_total") >= 4);
    assert_int_equal(wait_functions("petstore", want[0] ? pets : pets, NULL, 21), rev_pet);
    assert_int_equal(wait_functions("petyaml", pets, NULL, 20), rev_yaml);
    assert_int_equal(wait_functions("books", " getBook ", NULL, 5), rev_books);

    /* sluicectl shows them */
    snprintf(cmd, sizeof cmd, "%s/services/sluicectl/sluicectl get upstream petstore -o yaml 2>&1", bin_dir);
    static char out[262144];
    harness_run_output(cmd, out, sizeof out);
    if (!strstr(out, "getPetById") || !strstr(out, "myFn") || !strstr(out, "/v2/pet/{{ default(petId"))
        fail_msg("sluicectl get upstream petstore -o yaml:\n%s", out);

    /* A route naming a discovered function (a path parameter) is translated, not Rejected. */
    char vs[600], up[600];
    snprintf(up, sizeof up, "%s/petstore-upstream.yaml", dir);
    snprintf(vs, sizeof vs, "%s/vs.yaml", dir);
    FILE *f = fopen(vs, "w");
    assert_non_null(f);
    fputs("apiVersion: gateway.solo.io/v1\nkind: VirtualService\nmetadata: {name: pets, namespace: default}\n"
          "spec:\n  virtualHost:\n    domains: [pets.example.com]\n    routes:\n"
          "    - matchers: [{prefix: /pets/}]\n      routeAction:\n        single:\n"
          "          upstream: {name: petstore, namespace: default}\n"
          "          destinationSpec: {rest: {functionName: getPetById, parameters: {path: \"/pets/{petId}\"}}}\n",
          f);
    fclose(f);
    snprintf(cmd, sizeof cmd, "%s/services/sluicectl/sluicectl get upstream petstore -o yaml > %s", bin_dir, up);
    assert_int_equal(system(cmd), 0);
    snprintf(cmd, sizeof cmd, "%s/test/tools/sluice-translate %s %s 2>&1 >/dev/null", bin_dir, up, vs);
    harness_run_output(cmd, out, sizeof out);
    if (!strstr(out, "Upstream default.petstore: Accepted") || strstr(out, "Rejected") ||
        strstr(out, "VirtualService default.pets: Warning"))
        fail_msg("sluice-translate:\n%s", out);

    /* The FastAPI document changes: archiveBook appears, deleteBook goes. */
    assert_int_equal(harness_http(api_port, "POST", "/_change", buf, sizeof buf), 200);
    wait_functions("books", " listBooks createBook getBook archiveBook health_health_get ", " deleteBook ", 5);

    /* The slow server: a Warning saying it timed out. */
    Sluice__V1__Report *r = harness_next_report(reports, "slow", 15000);
    assert_non_null(r);
    assert_int_equal(r->state, SLUICE__V1__STATUS__STATE__Warning);
    if (!strstr(r->reason, url_slow) || !strstr(r->reason, "timed out"))
        fail_msg("slow: %s", r->reason);
    sluice__v1__report__free_unpacked(r, NULL);

    /* The Swagger server stops: a Warning, the functions kept. */
    harness_stop_pid(&http_srv, SIGTERM);
    for (r = harness_next_report(reports, "petstore", 10000); r && !strstr(r->reason, "kept");
         r = harness_next_report(reports, "petstore", 10000))
        sluice__v1__report__free_unpacked(r, NULL);
    assert_non_null(r);
    assert_string_equal(r->source, "function-discovery");
    assert_non_null(strstr(r->reason, url_json));
    assert_non_null(strstr(r->reason, "the last functions are kept"));
    sluice__v1__report__free_unpacked(r, NULL);
    usleep(1000 * 1000);
    assert_int_equal(wait_functions("petstore", pets, NULL, 21), rev_pet);

    assert_int_equal(harness_stop_pid(&discovery, SIGTERM), 0);
}

static int setup(void **state)
{
    char cmd[1200];
    (void)state;
    src = getenv("SLUICE_SOURCE_DIR") ? getenv("SLUICE_SOURCE_DIR") : ".";
    bin_dir = getenv("SLUICE_BINARY_DIR") ? getenv("SLUICE_BINARY_DIR") : "build";
    if (harness_test_dir(dir, sizeof dir, "fds", log_path, sizeof log_path) != 0)
        return -1;
    snprintf(cmd, sizeof cmd,
             "cp %s/test/data/openapi/petstore-swagger2.json %s/petstore.json && "
             "cp %s/test/data/openapi/petstore-swagger2.yaml %s/petstore.yaml && cp %s/petstore.json %s/swagger.json",
             src, dir, src, dir, dir, dir);
    if (system(cmd) != 0)
        return -1;
    http_port = harness_free_port_both();
    api_port = harness_free_port_both();
    metrics_port = harness_free_port_both();
    grpc_port = harness_free_port_both();
    if (harness_nats_start(&srv) != 0 || harness_connect(&nc, srv) != SL_OK)
        return -1;
    setenv("NATS_URL", harness_nats_url(srv), 1);
    sl_kv_config c;
    sl_kv_config_init(&c, "sluice_config");
    return sl_kv_open(&config_kv, nc, &c) == SL_OK ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    harness_stop_pid(&discovery, SIGKILL);
    harness_stop_pid(&api, SIGTERM);
    harness_stop_pid(&grpc_srv, SIGKILL);
    if (slow_fd >= 0)
        close(slow_fd);
    harness_stop_pid(&http_srv, SIGTERM);
    if (reports)
        natsSubscription_Destroy(reports);
    sl_kv_free(config_kv);
    sl_nats_close(nc, 1000);
    harness_nats_free(srv);
    return harness_remove_test_dir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test_setup_teardown(test_function_discovery, setup, teardown)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
