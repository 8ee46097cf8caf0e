/* sluice-config-watcher against a real nats-server: a directory (create,
 * modify, delete files and documents; an invalid file is reported and the
 * rest applies), ownership rebuilt from the KV after a restart, direct KV
 * writes validated, and the apply API with YAML and protobuf bodies. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "harness.h"
#include "sluice/envelope.h"
#include "sluice/kinds.h"
#include "sluice/kv.h"
#include "sluice/v1/events.pb-c.h"
#include "sluice/v1/virtual_service.pb-c.h"
#include "test_config_watcher_util.h"

static harness_nats *srv;
static sl_nats *nc;
static sl_kv *kv;
static char dir[256], exe[512], log_path[300];
static pid_t cw;

static const char upstream_doc[] =
    "apiVersion: gloo.solo.io/v1\nkind: Upstream\nmetadata:\n  name: u1\nspec:\n"
    "  static:\n    hosts:\n    - addr: 127.0.0.1\n      port: 8080\n";

static const char vs1_doc[] =
    "apiVersion: gateway.solo.io/v1\nkind: VirtualService\nmetadata:\n  name: v1\nspec:\n"
    "  virtualHost:\n    domains: [one.example.com]\n    routes:\n    - matchers:\n"
    "      - prefix: /\n      routeAction:\n        single:\n          upstream:\n"
    "            name: u1\n";

static pid_t start_cw(void)
{
    const char *args[] = {"--dir", dir, "--debounce", "50ms", "--metrics-addr", "127.0.0.1:0",
                          "--log-level", "debug", NULL};
    return start_proc(exe, args, harness_nats_url(srv), log_path);
}

/* A positive signal before a "nothing changed" check: a probe file is
 * applied by a pass that started after every earlier write, and its
 * removal by a later pass, so every earlier file event has been handled. */
static void settle(void)
{
    char p[400];
    snprintf(p, sizeof p, "%s/zz-probe.yaml", dir);
    write_file(p, "apiVersion: gateway.solo.io/v1\nkind: VirtualService\nmetadata:\n  name: probe\nspec:\n"
                  "  virtualHost:\n    domains: [probe.example.com]\n");
    assert_true(wait_key(kv, "VirtualService.default.probe", true, 0, 5000) > 0);
    unlink(p);
    assert_int_equal(wait_key(kv, "VirtualService.default.probe", false, 0, 5000), 1);
}

static int group_setup(void **state)
{
    (void)state;
    if (harness_nats_start(&srv) != 0 || harness_connect(&nc, srv) != SL_OK)
        return -1;
    snprintf(dir, sizeof(dir), "%s/config", harness_nats_dir(srv));
    snprintf(log_path, sizeof(log_path), "%s/config-watcher.log", harness_nats_dir(srv));
    mkdir(dir, 0755);
    bin_path(exe, sizeof(exe), "config-watcher", "sluice-config-watcher");
    char a[400], b[400];
    snprintf(a, sizeof(a), "%s/a.yaml", dir);
    snprintf(b, sizeof(b), "%s/b.yaml", dir);
    char text[2048];
    snprintf(text, sizeof(text), "%s---\n%s", upstream_doc, vs1_doc);
    write_file(a, text);
    write_file(b, "apiVersion: gateway.solo.io/v1\nkind: VirtualService\nmetadata:\n  name: v2\n"
                  "  namespace: team\nspec:\n  virtualHost:\n    domains: [two.example.com]\n");
    cw = start_cw();
    kv = open_bucket(nc, SL_BUCKET_CONFIG);
    return kv ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    if (cw > 0)
        stop_proc(cw);
    sl_kv_free(kv);
    sl_nats_close(nc, 1000);
    char *out = NULL;
    if (getenv("SLUICE_TEST_KEEP_LOGS") == NULL) {
        run_cmd(&out, "tail -n 40 %s", log_path);
        free(out);
    }
    harness_nats_free(srv);
    sl_nats_shutdown(5000);
    return 0;
}

static Sluice__V1__VirtualService *get_vs(const char *key)
{
    return (Sluice__V1__VirtualService *)harness_kv_get_pb(kv, key, &sluice__v1__virtual_service__descriptor);
}

/* Files -> KV: create, modify, remove a document, delete a file. */
static void directory_sync(void **state)
{
    (void)state;
    char b[400], a[400], text[2048];
    snprintf(a, sizeof(a), "%s/a.yaml", dir);
    snprintf(b, sizeof(b), "%s/b.yaml", dir);
    assert_true(wait_key(kv, "Upstream.default.u1", true, 0, 10000) > 0);
    uint64_t r1 = wait_key(kv, "VirtualService.default.v1", true, 0, 5000);
    uint64_t r2 = wait_key(kv, "VirtualService.team.v2", true, 0, 5000);
    assert_true(r1 > 0 && r2 > 0);

    Sluice__V1__VirtualService *vs = get_vs("VirtualService.default.v1");
    assert_non_null(vs);
    assert_string_equal(vs->metadata->namespace_, "default");
    assert_int_equal(vs->metadata->generation, 1);
    bool found = false;
    for (size_t i = 0; i < vs->metadata->n_annotations; i++)
        if (strcmp(vs->metadata->annotations[i]->key, "sluice.io/source") == 0) {
            assert_true(strstr(vs->metadata->annotations[i]->value, "file:") ==
                        vs->metadata->annotations[i]->value);
            assert_non_null(strstr(vs->metadata->annotations[i]->value, "/a.yaml"));
            found = true;
        }
    assert_true(found);
    sluice__v1__virtual_service__free_unpacked(vs, NULL);

    /* Modify b.yaml: a new revision with the new domain, generation 2. */
    write_file(b, "apiVersion: gateway.solo.io/v1\nkind: VirtualService\nmetadata:\n  name: v2\n"
                  "  namespace: team\nspec:\n  virtualHost:\n    domains: [new.example.com]\n");
    uint64_t r2b = wait_key(kv, "VirtualService.team.v2", true, r2, 5000);
    assert_true(r2b > r2);
    vs = get_vs("VirtualService.team.v2");
    assert_non_null(vs);
    assert_string_equal(vs->spec->virtual_host->domains[0], "new.example.com");
    assert_int_equal(vs->metadata->generation, 2);
    sluice__v1__virtual_service__free_unpacked(vs, NULL);

    /* Touching a file without changing it writes nothing. */
    write_file(b, "apiVersion: gateway.solo.io/v1\nkind: VirtualService\nmetadata:\n  name: v2\n"
                  "  namespace: team\nspec:\n  virtualHost:\n    domains: [new.example.com]\n");
    settle();
    assert_int_equal(wait_key(kv, "VirtualService.team.v2", true, r2b, 0), 0);

    /* Remove the VirtualService document from a.yaml: it is deleted, the
     * Upstream stays. */
    snprintf(text, sizeof(text), "%s", upstream_doc);
    write_file(a, text);
    assert_int_equal(wait_key(kv, "VirtualService.default.v1", false, 0, 5000), 1);
    assert_true(wait_key(kv, "Upstream.default.u1", true, 0, 1000) > 0);

    /* Delete b.yaml: its resource goes. */
    unlink(b);
    assert_int_equal(wait_key(kv, "VirtualService.team.v2", false, 0, 5000), 1);
}

/* The next report on subject within 5 s (others skipped); NULL when none. */
static Sluice__V1__Report *next_report(natsSubscription *sub, const char *subject)
{
    natsMsg *m = NULL;
    int64_t end = harness_now_ms() + 5000;
    while (harness_now_ms() < end && natsSubscription_NextMsg(&m, sub, 1000) == NATS_OK) {
        Sluice__V1__Report *r = NULL;
        if (strcmp(natsMsg_GetSubject(m), subject) == 0)
            r = sluice__v1__report__unpack(NULL, (size_t)natsMsg_GetDataLength(m),
                                           (const uint8_t *)natsMsg_GetData(m));
        natsMsg_Destroy(m);
        if (r)
            return r;
    }
    return NULL;
}

/* An invalid document is reported (file:line:col) and the rest applies;
 * a broken file keeps what it stored before. */
static void invalid_file_reported(void **state)
{
    (void)state;
    natsSubscription *sub = NULL;
    natsMsg *m = NULL;
    char c[400];
    assert_int_equal(natsConnection_SubscribeSync(&sub, sl_nats_conn(nc),
                                                  "sluice.report.config-watcher.>"),
                     NATS_OK);
    snprintf(c, sizeof(c), "%s/c.yaml", dir);
    write_file(c, "apiVersion: gateway.solo.io/v1\nkind: VirtualService\nmetadata:\n  name: bad\n"
                  "spec:\n  virtualHost:\n    domains: ['*']\n    retris: 3\n---\n"
                  "apiVersion: gateway.solo.io/v1\nkind: VirtualService\nmetadata:\n"
                  "  name: fine\nspec:\n  virtualHost:\n    domains: [fine]\n");
    assert_true(wait_key(kv, "VirtualService.default.fine", true, 0, 5000) > 0);
    assert_int_equal(wait_key(kv, "VirtualService.default.bad", false, 0, 100), 1);
    bool seen = false;
    int64_t end = harness_now_ms() + 5000;
    while (!seen && harness_now_ms() < end &&
           natsSubscription_NextMsg(&m, sub, 1000) == NATS_OK) {
        if (strcmp(natsMsg_GetSubject(m), "sluice.report.config-watcher.VirtualService.default.bad") == 0) {
            Sluice__V1__Report *r = sluice__v1__report__unpack(
                NULL, (size_t)natsMsg_GetDataLength(m), (const uint8_t *)natsMsg_GetData(m));
            assert_non_null(r);
            assert_int_equal(r->state, SLUICE__V1__STATUS__STATE__Rejected);
            assert_non_null(strstr(r->reason, "c.yaml:8:5"));
            assert_non_null(strstr(r->reason, "retris"));
            sluice__v1__report__free_unpacked(r, NULL);
            seen = true;
        }
        natsMsg_Destroy(m);
    }
    assert_true(seen);

    /* Break the whole file: syntax error; "fine" stays stored. */
    uint64_t rev = wait_key(kv, "VirtualService.default.fine", true, 0, 100);
    write_file(c, "apiVersion: [\n");
    settle();
    assert_int_equal(wait_key(kv, "VirtualService.default.fine", true, 0, 100), rev);
    unlink(c);
    assert_int_equal(wait_key(kv, "VirtualService.default.fine", false, 0, 5000), 1);
    /* The file is gone: its rejection of "bad" is withdrawn. */
    Sluice__V1__Report *r = next_report(sub, "sluice.report.config-watcher.VirtualService.default.bad");
    assert_non_null(r);
    assert_true(r->withdrawn);
    sluice__v1__report__free_unpacked(r, NULL);
    natsSubscription_Destroy(sub);
}

/* A file deleted while the service is down: its resources go on restart
 * (ownership comes from the KV, not from memory). */
static void restart_stateless(void **state)
{
    (void)state;
    char d[400];
    snprintf(d, sizeof(d), "%s/d.yaml", dir);
    write_file(d, "apiVersion: gloo.solo.io/v1\nkind: Upstream\nmetadata:\n  name: ud\nspec:\n"
                  "  static:\n    hosts:\n    - addr: 10.0.0.1\n      port: 80\n");
    assert_true(wait_key(kv, "Upstream.default.ud", true, 0, 5000) > 0);
    assert_int_equal(stop_proc(cw), 0); /* graceful SIGTERM: exit 0 */
    unlink(d);
    cw = start_cw();
    assert_int_equal(wait_key(kv, "Upstream.default.ud", false, 0, 10000), 1);
    assert_true(wait_key(kv, "Upstream.default.u1", true, 0, 1000) > 0);
}

/* Someone writes garbage straight into the KV: reported as Rejected. */
static void direct_kv_write_validated(void **state)
{
    (void)state;
    natsSubscription *sub = NULL;
    natsMsg *m = NULL;
    assert_int_equal(natsConnection_SubscribeSync(
                         &sub, sl_nats_conn(nc),
                         "sluice.report.config-watcher.VirtualService.default.junk"),
                     NATS_OK);
    assert_int_equal(sl_kv_put(NULL, kv, "VirtualService.default.junk", "\xff\xff\xff", 3), SL_OK);
    assert_int_equal(natsSubscription_NextMsg(&m, sub, 5000), NATS_OK);
    Sluice__V1__Report *r = sluice__v1__report__unpack(NULL, (size_t)natsMsg_GetDataLength(m),
                                                       (const uint8_t *)natsMsg_GetData(m));
    assert_non_null(r);
    assert_int_equal(r->state, SLUICE__V1__STATUS__STATE__Rejected);
    assert_non_null(strstr(r->reason, "not a packed sluice.v1.VirtualService"));
    sluice__v1__report__free_unpacked(r, NULL);
    natsMsg_Destroy(m);
    natsSubscription_Destroy(sub);
    sl_kv_delete(NULL, kv, "VirtualService.default.junk", 0);
}

static Sluice__V1__ApplyResponse *apply_yaml(const char *text, bool dry_run)
{
    natsMsg *req = NULL, *reply = NULL;
    assert_int_equal(sl_envelope_msg_new(&req, "sluice.api.apply", SL_CT_YAML, NULL, text,
                                         strlen(text), NULL),
                     SL_OK);
    natsMsgHeader_Set(req, "Sluice-Filename", "req.yaml");
    if (dry_run)
        natsMsgHeader_Set(req, "Sluice-Dry-Run", "true");
    assert_int_equal(natsConnection_RequestMsg(&reply, sl_nats_conn(nc), req, 5000), NATS_OK);
    natsMsg_Destroy(req);
    Sluice__V1__ApplyResponse *r = sluice__v1__apply_response__unpack(
        NULL, (size_t)natsMsg_GetDataLength(reply), (const uint8_t *)natsMsg_GetData(reply));
    natsMsg_Destroy(reply);
    assert_non_null(r);
    return r;
}

/* The apply API: YAML body (accept, reject with position, dry run) and a
 * protobuf ApplyRequest. */
static void apply_api(void **state)
{
    (void)state;
    Sluice__V1__ApplyResponse *r = apply_yaml(
        "apiVersion: gateway.solo.io/v1\nkind: VirtualService\nmetadata:\n  name: api1\nspec:\n"
        "  virtualHost:\n    domains: [api1]\n",
        true);
    assert_true(r->accepted);
    assert_int_equal(r->n_results, 1);
    assert_int_equal(r->results[0]->state, SLUICE__V1__STATUS__STATE__Accepted);
    sluice__v1__apply_response__free_unpacked(r, NULL);
    assert_int_equal(wait_key(kv, "VirtualService.default.api1", false, 0, 100), 1);

    r = apply_yaml("apiVersion: gateway.solo.io/v1\nkind: VirtualService\nmetadata:\n"
                   "  name: api1\nspec:\n  virtualHost:\n    domains: [api1]\n---\n"
                   "apiVersion: gateway.solo.io/v1\nkind: VirtualSrvice\nmetadata:\n  name: x\n",
                   false);
    assert_false(r->accepted);
    assert_int_equal(r->n_results, 2);
    assert_int_equal(r->results[0]->state, SLUICE__V1__STATUS__STATE__Accepted);
    assert_true(r->results[0]->resource_version[0] != '\0');
    assert_int_equal(r->results[1]->state, SLUICE__V1__STATUS__STATE__Rejected);
    assert_non_null(strstr(r->results[1]->errors[0], "req.yaml:"));
    assert_non_null(strstr(r->results[1]->errors[0], "did you mean \"VirtualService\""));
    sluice__v1__apply_response__free_unpacked(r, NULL);
    assert_true(wait_key(kv, "VirtualService.default.api1", true, 0, 100) > 0);

    /* Protobuf: an ApplyRequest with an Any; bad name rejected. */
    Sluice__V1__VirtualService vs = SLUICE__V1__VIRTUAL_SERVICE__INIT;
    Sluice__V1__Metadata md = SLUICE__V1__METADATA__INIT;
    Sluice__V1__VirtualServiceSpec spec = SLUICE__V1__VIRTUAL_SERVICE_SPEC__INIT;
    md.name = "Bad_Name";
    vs.metadata = &md;
    vs.spec = &spec;
    uint8_t buf[256];
    size_t len = sluice__v1__virtual_service__pack(&vs, buf);
    Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
    Google__Protobuf__Any *anys[] = {&any};
    any.type_url = "type.googleapis.com/sluice.v1.VirtualService";
    any.value.data = buf;
    any.value.len = len;
    Sluice__V1__ApplyRequest req = SLUICE__V1__APPLY_REQUEST__INIT;
    req.resources = anys;
    req.n_resources = 1;
    req.source = "test";
    natsMsg *reply = NULL;
    assert_int_equal(sl_envelope_request_pb(&reply, nc, "sluice.api.apply", &req.base, NULL, 5000),
                     SL_OK);
    r = sluice__v1__apply_response__unpack(NULL, (size_t)natsMsg_GetDataLength(reply),
                                           (const uint8_t *)natsMsg_GetData(reply));
    natsMsg_Destroy(reply);
    assert_non_null(r);
    assert_false(r->accepted);
    assert_int_equal(r->results[0]->state, SLUICE__V1__STATUS__STATE__Rejected);
    assert_non_null(strstr(r->results[0]->errors[0], "metadata.name"));
    sluice__v1__apply_response__free_unpacked(r, NULL);
}

/* The apply API judges by a dry-run translation with what is stored: a
 * VirtualService claiming a domain another one holds, or with a regex RE2
 * refuses, is Rejected with the translator's reason; nothing is written. */
static void apply_dry_run_translation(void **state)
{
    (void)state;
    Sluice__V1__ApplyResponse *r = apply_yaml(
        "apiVersion: gateway.solo.io/v1\nkind: VirtualService\nmetadata:\n  name: owner\nspec:\n"
        "  virtualHost:\n    domains: [shared.example.com]\n",
        false);
    assert_true(r->accepted);
    sluice__v1__apply_response__free_unpacked(r, NULL);
    assert_true(wait_key(kv, "VirtualService.default.owner", true, 0, 100) > 0);

    r = apply_yaml("apiVersion: gateway.solo.io/v1\nkind: VirtualService\nmetadata:\n  name: thief\nspec:\n"
                   "  virtualHost:\n    domains: [shared.example.com]\n---\n"
                   "apiVersion: gateway.solo.io/v1\nkind: VirtualService\nmetadata:\n  name: badre\nspec:\n"
                   "  virtualHost:\n    domains: [re.example.com]\n    routes:\n"
                   "    - matchers: [{regex: '/(?<=x)'}]\n      directResponseAction: {status: 200}\n---\n"
                   "apiVersion: gateway.solo.io/v1\nkind: VirtualService\nmetadata:\n  name: fine\nspec:\n"
                   "  virtualHost:\n    domains: [fine.example.com]\n",
                   false);
    assert_false(r->accepted);
    assert_int_equal(r->n_results, 3);
    assert_int_equal(r->results[0]->state, SLUICE__V1__STATUS__STATE__Rejected);
    assert_true(r->results[0]->n_errors > 0);
    assert_non_null(strstr(r->results[0]->errors[0], "domain conflict"));
    assert_non_null(strstr(r->results[0]->errors[0], "shared.example.com"));
    assert_int_equal(r->results[1]->state, SLUICE__V1__STATUS__STATE__Rejected);
    assert_non_null(strstr(r->results[1]->errors[0], "regex"));
    assert_int_equal(r->results[2]->state, SLUICE__V1__STATUS__STATE__Accepted);
    sluice__v1__apply_response__free_unpacked(r, NULL);
    assert_int_equal(wait_key(kv, "VirtualService.default.thief", false, 0, 100), 1);
    assert_int_equal(wait_key(kv, "VirtualService.default.badre", false, 0, 100), 1);
    assert_true(wait_key(kv, "VirtualService.default.fine", true, 0, 100) > 0);

    /* A change that makes a delegation cycle is refused (as Gloo's webhook
     * refuses it): the table closing it is Rejected; what was stored stays */
    r = apply_yaml("apiVersion: gateway.solo.io/v1\nkind: VirtualService\nmetadata:\n  name: deleg\nspec:\n"
                   "  virtualHost:\n    domains: [deleg.example.com]\n    routes:\n"
                   "    - matchers: [{prefix: /a}]\n      delegateAction: {ref: {name: rt-a}}\n---\n"
                   "apiVersion: gateway.solo.io/v1\nkind: RouteTable\nmetadata:\n  name: rt-a\nspec:\n  routes:\n"
                   "  - matchers: [{prefix: /a/b}]\n    delegateAction: {ref: {name: rt-b}}\n---\n"
                   "apiVersion: gateway.solo.io/v1\nkind: RouteTable\nmetadata:\n  name: rt-b\nspec:\n  routes:\n"
                   "  - matchers: [{prefix: /a/b/c}]\n    directResponseAction: {status: 200}\n",
                   false);
    assert_true(r->accepted);
    sluice__v1__apply_response__free_unpacked(r, NULL);
    assert_true(wait_key(kv, "RouteTable.default.rt-b", true, 0, 100) > 0);
    uint64_t rev_b = wait_key(kv, "RouteTable.default.rt-b", true, 0, 100);
    r = apply_yaml("apiVersion: gateway.solo.io/v1\nkind: RouteTable\nmetadata:\n  name: rt-b\nspec:\n  routes:\n"
                   "  - matchers: [{prefix: /a/b/c}]\n    delegateAction: {ref: {name: rt-a}}\n",
                   false);
    assert_false(r->accepted);
    assert_int_equal(r->results[0]->state, SLUICE__V1__STATUS__STATE__Rejected);
    assert_non_null(strstr(r->results[0]->errors[0],
                           "closes the delegation cycle [default.rt-a] -> [default.rt-b] -> [default.rt-a]"));
    sluice__v1__apply_response__free_unpacked(r, NULL);
    assert_int_equal(wait_key(kv, "RouteTable.default.rt-b", true, rev_b, 200), 0); /* not rewritten */
}

/* A proposal the apply API rejects is reported (the reporter shows it as
 * the resource's status) with the stored revision it failed to replace;
 * applying the stored version again, or deleting a resource never stored,
 * withdraws it. */
static void rejected_proposals_reported(void **state)
{
    (void)state;
    const char *subj = "sluice.report.config-watcher.VirtualService.default.prop";
    const char *good = "apiVersion: gateway.solo.io/v1\nkind: VirtualService\nmetadata:\n  name: prop\nspec:\n"
                       "  virtualHost:\n    domains: [prop.example.com]\n";
    const char *bad = "apiVersion: gateway.solo.io/v1\nkind: VirtualService\nmetadata:\n  name: prop\nspec:\n"
                      "  virtualHost:\n    domains: [prop.example.com]\n    routes:\n"
                      "    - matchers: [{regex: '/(?<=x)'}]\n      directResponseAction: {status: 200}\n";
    natsSubscription *sub = NULL;
    assert_int_equal(natsConnection_SubscribeSync(&sub, sl_nats_conn(nc), "sluice.report.config-watcher.>"),
                     NATS_OK);

    /* Never stored. */
    Sluice__V1__ApplyResponse *a = apply_yaml(bad, false);
    assert_false(a->accepted);
    sluice__v1__apply_response__free_unpacked(a, NULL);
    Sluice__V1__Report *r = next_report(sub, subj);
    assert_non_null(r);
    assert_int_equal(r->state, SLUICE__V1__STATUS__STATE__Rejected);
    assert_string_equal(r->resource_version, "0");
    assert_non_null(strstr(r->reason, "regex"));
    assert_false(r->withdrawn);
    sluice__v1__report__free_unpacked(r, NULL);

    /* Stored, then an update rejected: it names the revision serving. */
    a = apply_yaml(good, false);
    assert_true(a->accepted);
    char rv[32];
    snprintf(rv, sizeof rv, "%s", a->results[0]->resource_version);
    sluice__v1__apply_response__free_unpacked(a, NULL);
    a = apply_yaml(bad, false);
    assert_false(a->accepted);
    sluice__v1__apply_response__free_unpacked(a, NULL);
    r = next_report(sub, subj);
    assert_non_null(r);
    assert_int_equal(r->state, SLUICE__V1__STATUS__STATE__Rejected);
    assert_string_equal(r->resource_version, rv);
    assert_non_null(strstr(r->reason, "keeps serving"));
    sluice__v1__report__free_unpacked(r, NULL);

    /* The stored version applied again: withdrawn. A dry run reports nothing. */
    a = apply_yaml(bad, true);
    sluice__v1__apply_response__free_unpacked(a, NULL);
    a = apply_yaml(good, false);
    assert_true(a->accepted);
    assert_true(a->results[0]->unchanged);
    sluice__v1__apply_response__free_unpacked(a, NULL);
    r = next_report(sub, subj);
    assert_non_null(r);
    assert_true(r->withdrawn);
    sluice__v1__report__free_unpacked(r, NULL);

    /* Deleting a resource that was never stored withdraws its rejection. */
    natsMsg *req = NULL, *reply = NULL;
    const char *del = "apiVersion: gateway.solo.io/v1\nkind: VirtualService\nmetadata:\n  name: ghost\n";
    assert_int_equal(sl_envelope_msg_new(&req, "sluice.api.delete", SL_CT_YAML, NULL, del, strlen(del), NULL),
                     SL_OK);
    assert_int_equal(natsConnection_RequestMsg(&reply, sl_nats_conn(nc), req, 5000), NATS_OK);
    natsMsg_Destroy(req);
    natsMsg_Destroy(reply);
    r = next_report(sub, "sluice.report.config-watcher.VirtualService.default.ghost");
    assert_non_null(r);
    assert_true(r->withdrawn);
    sluice__v1__report__free_unpacked(r, NULL);
    natsSubscription_Destroy(sub);
}

static bool log_contains(const char *needle)
{
    char *text = NULL;
    size_t n = 0;
    FILE *f = fopen(log_path, "r");
    bool found = false;
    if (f && getdelim(&text, &n, '\0', f) > 0)
        found = strstr(text, needle) != NULL;
    free(text);
    if (f)
        fclose(f);
    return found;
}

/* Waits until key holds a value containing needle. */
static bool wait_value(const char *key, const char *needle, int64_t timeout_ms)
{
    int64_t end = harness_now_ms() + timeout_ms;
    do {
        sl_kv_entry e = {0};
        bool ok = false;
        if (sl_kv_get(&e, kv, key) == SL_OK) {
            ok = e.value && memmem(e.value, e.len, needle, strlen(needle)) != NULL;
            sl_kv_entry_deinit(&e);
        }
        if (ok)
            return true;
        usleep(50000);
    } while (harness_now_ms() < end);
    return false;
}

/* Nothing lost (issue 12, item 5): files that change while NATS is down
 * are not marked synced; the sync is retried with backoff and every edit
 * (a change, a new file, a removed file) lands once NATS is back. */
static void edits_during_nats_outage_land(void **state)
{
    (void)state;
    char c[400], d[400], e[400];
    snprintf(c, sizeof c, "%s/outage-c.yaml", dir);
    snprintf(d, sizeof d, "%s/outage-d.yaml", dir);
    snprintf(e, sizeof e, "%s/outage-e.yaml", dir);
    write_file(c, "apiVersion: gateway.solo.io/v1\nkind: VirtualService\nmetadata:\n  name: oc\nspec:\n"
                  "  virtualHost:\n    domains: [before.example.com]\n");
    write_file(e, "apiVersion: gateway.solo.io/v1\nkind: VirtualService\nmetadata:\n  name: oe\nspec:\n"
                  "  virtualHost:\n    domains: [e.example.com]\n");
    assert_true(wait_value("VirtualService.default.oc", "before.example.com", 5000));
    assert_true(wait_key(kv, "VirtualService.default.oe", true, 0, 5000) > 0);

    assert_int_equal(harness_nats_stop(srv), 0);
    write_file(c, "apiVersion: gateway.solo.io/v1\nkind: VirtualService\nmetadata:\n  name: oc\nspec:\n"
                  "  virtualHost:\n    domains: [after.example.com]\n");
    write_file(d, "apiVersion: gateway.solo.io/v1\nkind: VirtualService\nmetadata:\n  name: od\nspec:\n"
                  "  virtualHost:\n    domains: [d.example.com]\n");
    unlink(e);
    /* The watcher saw the edits and could not store them. */
    int64_t end = harness_now_ms() + 10000;
    while (!log_contains("sync incomplete: retrying") && harness_now_ms() < end)
        usleep(50000);
    assert_true(log_contains("sync incomplete: retrying"));
    assert_int_equal(harness_nats_start_again(srv), 0);

    assert_true(wait_value("VirtualService.default.oc", "after.example.com", 20000));
    assert_true(wait_value("VirtualService.default.od", "d.example.com", 20000));
    assert_int_equal(wait_key(kv, "VirtualService.default.oe", false, 0, 20000), 1);
    unlink(c);
    unlink(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(directory_sync),
        cmocka_unit_test(invalid_file_reported),
        cmocka_unit_test(restart_stateless),
        cmocka_unit_test(direct_kv_write_validated),
        cmocka_unit_test(apply_api),
        cmocka_unit_test(apply_dry_run_translation),
        cmocka_unit_test(rejected_proposals_reported),
        cmocka_unit_test(edits_during_nats_outage_land),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
