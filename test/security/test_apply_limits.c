/* test_apply_limits.c - what one request and one client may ask of the
 * apply API (issue 12, item 4; docs/config-watcher.md "Limits"), against a
 * real sluice-config-watcher on a nats-server with authentication: a body
 * over --api-max-body, more documents than --api-max-documents (YAML and
 * protobuf), more YAML nodes than --api-max-nodes (an alias bomb among
 * them) are each refused with a reply naming the limit and its flag, and a
 * well-formed request right after is served; a flood from one client gets
 * "rate limited" replies while another client's request is answered; a
 * flood from many clients gets "busy: N requests pending, retry" replies
 * and every request is answered; each refusal is counted by limit.
 *
 * Clients are users of the CLIENTS account (sluice/natsauth.h), each with
 * its own nkey: client.nk, client-b.nk and client-q<i>.nk. The rate budget
 * is keyed on the identity nats-server gives (Nats-Request-Info): a client
 * that forges Sluice-Client or Nats-Request-Info headers naming another
 * client, or a new name per request, spends its own budget and nobody
 * else's; operators (Sluice's own account) have a bucket of their own
 * whatever their headers say. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "../integration/test_config_watcher_util.h"
#include "harness.h"
#include "sluice/envelope.h"
#include "sluice/natsauth.h"
#include "sluice/nkey.h"
#include "sluice/v1/events.pb-c.h"
#include "sluice/v1/virtual_service.pb-c.h"

#define MAX_BODY 4096
#define MAX_DOCS 3
#define MAX_NODES 200
#define MAX_PENDING 4
#define RATE 10
#define BURST 2
#define QUEUE_CLIENTS 48

static harness_nats *srv;
static sl_nats *nc;          /* admin, in Sluice's account: an operator */
static sl_nats *ca, *cb;     /* client.nk and client-b.nk, in CLIENTS: the rate tests */
static sl_nats *cc;          /* client-c.nk: the other limits' requests */
static char key_a[128], key_b[128], key_v[128]; /* identities as the rate limit names them */
static pid_t cw;
static int metrics_port;
static char log_path[300];

static const char vs_doc[] = "apiVersion: gateway.solo.io/v1\nkind: VirtualService\nmetadata:\n"
                             "  name: %s\nspec:\n  virtualHost:\n    domains: [%s.example.com]\n";

/* The reply of the apply or delete API (both have accepted = 1, results =
 * 2 and error = 3: read as an ApplyResponse). */
typedef struct reply {
    bool accepted;
    size_t n_results;
    char error[1024];
} reply;

static void read_reply(reply *out, natsMsg *m)
{
    Sluice__V1__ApplyResponse *r = sluice__v1__apply_response__unpack(
        NULL, (size_t)natsMsg_GetDataLength(m), (const uint8_t *)natsMsg_GetData(m));
    assert_non_null(r);
    out->accepted = r->accepted;
    out->n_results = r->n_results;
    snprintf(out->error, sizeof out->error, "%s", r->error ? r->error : "");
    sluice__v1__apply_response__free_unpacked(r, NULL);
}

/* A request with a dry-run header and the extra headers hdrs (name, value,
 * ..., NULL: what a client may claim about itself). */
static natsMsg *request_msg(const char *subject, const char *const *hdrs, sl_content_type ct,
                            const void *body, size_t len, const char *reply_to)
{
    natsMsg *req = NULL;
    sl_envelope_opts o = {.reply = reply_to};
    const char *proto = ct != SL_CT_PROTOBUF                             ? NULL
                        : strcmp(subject, "sluice.api.apply") == 0 ? "sluice.v1.ApplyRequest"
                                                                   : "sluice.v1.DeleteRequest";

    assert_int_equal(sl_envelope_msg_new(&req, subject, ct, proto, body, len, &o), SL_OK);
    for (const char *const *h = hdrs; h && h[0]; h += 2)
        assert_int_equal(natsMsgHeader_Add(req, h[0], h[1]), NATS_OK);
    natsMsgHeader_Set(req, "Sluice-Dry-Run", "true");
    return req;
}

/* A request as client c, answered; one refused by the rate limit is sent
 * again after the wait it names (the limit is not what the caller tests). */
static void call_as(reply *out, sl_nats *c, const char *subject, sl_content_type ct, const void *body,
                    size_t len)
{
    for (int attempt = 0;; attempt++) {
        natsMsg *req = request_msg(subject, NULL, ct, body, len, NULL), *rep = NULL;
        assert_int_equal(natsConnection_RequestMsg(&rep, sl_nats_conn(c), req, 10000), NATS_OK);
        natsMsg_Destroy(req);
        read_reply(out, rep);
        natsMsg_Destroy(rep);
        const char *wait = strstr(out->error, "retry in ");
        if (!strstr(out->error, "rate limited: ") || !wait || attempt == 100)
            return;
        usleep((useconds_t)(atoi(wait + 9) + 5) * 1000);
    }
}

static void call(reply *out, const char *subject, sl_content_type ct, const void *body, size_t len)
{
    call_as(out, cc, subject, ct, body, len);
}

static void call_yaml(reply *out, const char *subject, const char *text)
{
    call(out, subject, SL_CT_YAML, text, strlen(text));
}

/* One well-formed VirtualService: accepted (dry run). */
static void assert_served(const char *name)
{
    char text[512];
    reply r;
    snprintf(text, sizeof text, vs_doc, name, name);
    call_yaml(&r, "sluice.api.apply", text);
    if (!r.accepted)
        fail_msg("%s: not accepted: %s", name, r.error);
    assert_int_equal(r.n_results, 1);
}

static void assert_refused(const reply *r, const char *want1, const char *want2)
{
    assert_false(r->accepted);
    assert_int_equal(r->n_results, 0);
    if (!strstr(r->error, want1) || !strstr(r->error, want2))
        fail_msg("error '%s' lacks '%s' or '%s'", r->error, want1, want2);
}

static double refused(const char *limit)
{
    char name[128];
    double v;
    snprintf(name, sizeof name, "sluice_config_watcher_api_refused_total{limit=\"%s\"}", limit);
    assert_int_equal(harness_metric_sum(metrics_port, name, &v), 0);
    return v;
}

/* Connects with the seed DIR/<name>.nk; its identity "CLIENTS/<nkey>" into key. */
static sl_nats *connect_client(const char *name, char *key, size_t key_n)
{
    sl_nats_settings st;
    sl_nats *c = NULL;
    char path[300], seed[SL_NKEY_SEED_LEN + 1], pub[SL_NKEY_PUBLIC_LEN + 1];
    snprintf(path, sizeof path, "%s/%s.nk", harness_auth_dir(), name);
    sl_nats_settings_init(&st);
    sl_nats_settings_set(&st, "nats-url", harness_nats_url(srv));
    sl_nats_settings_set(&st, "nats-nkey", path);
    if (sl_nats_connect(&c, &st) != SL_OK)
        fprintf(stderr, "%s: %s\n", name, sl_error_msg());
    sl_nats_settings_deinit(&st);
    if (key && sl_nkey_read_seed(seed, path) == SL_OK && sl_nkey_public(pub, seed) == SL_OK)
        snprintf(key, key_n, "%s/%s", SL_NATSAUTH_CLIENT_ACCOUNT, pub);
    return c;
}

static int group_setup(void **state)
{
    char exe[512], dir[400], maddr[64], body[16], docs[16], nodes[16], pend[16], rate[16], burst[16], name[16];
    const char *auth = harness_auth_dir();
    bool created;
    (void)state;
    if (!auth) {
        fprintf(stderr, "authentication is off (SLUICE_TEST_NATS_AUTH=0?): no client identities to test\n");
        return -1;
    }
    /* further clients, each its own user (its own rate budget) */
    if (sl_natsauth_client_seed(auth, "b", &created) != SL_OK || sl_natsauth_client_seed(auth, "c", &created) != SL_OK ||
        sl_natsauth_client_seed(auth, "v", &created) != SL_OK)
        return -1;
    for (int i = 0; i < QUEUE_CLIENTS; i++) {
        snprintf(name, sizeof name, "q%d", i);
        if (sl_natsauth_client_seed(auth, name, &created) != SL_OK)
            return -1;
    }
    if (sl_natsauth_provision(auth, true) != SL_OK || harness_up(&srv, &nc) != 0)
        return -1;
    if (!(ca = connect_client("client", key_a, sizeof key_a)) ||
        !(cb = connect_client("client-b", key_b, sizeof key_b)) || !(cc = connect_client("client-c", NULL, 0)))
        return -1;
    sl_nats_close(connect_client("client-v", key_v, sizeof key_v), 0);
    snprintf(dir, sizeof dir, "%s/config", harness_nats_dir(srv));
    snprintf(log_path, sizeof log_path, "%s/config-watcher.log", harness_nats_dir(srv));
    mkdir(dir, 0755);
    bin_path(exe, sizeof exe, "config-watcher", "sluice-config-watcher");
    metrics_port = harness_free_port();
    snprintf(maddr, sizeof maddr, "127.0.0.1:%d", metrics_port);
    snprintf(body, sizeof body, "%d", MAX_BODY);
    snprintf(docs, sizeof docs, "%d", MAX_DOCS);
    snprintf(nodes, sizeof nodes, "%d", MAX_NODES);
    snprintf(pend, sizeof pend, "%d", MAX_PENDING);
    snprintf(rate, sizeof rate, "%d", RATE);
    snprintf(burst, sizeof burst, "%d", BURST);
    const char *args[] = {"--dir", dir, "--metrics-addr", maddr, "--api-max-body", body,
                          "--api-max-documents", docs, "--api-max-nodes", nodes,
                          "--api-max-pending", pend, "--api-rate", rate, "--api-burst", burst,
                          NULL};
    cw = start_proc(exe, args, harness_nats_url(srv), log_path);
    if (cw <= 0)
        return -1;
    /* Ready once the apply API answers. */
    int64_t end = harness_now_ms() + 20000;
    while (harness_now_ms() < end) {
        natsMsg *req = request_msg("sluice.api.apply", NULL, SL_CT_YAML, "", 0, NULL), *rep = NULL;
        natsStatus s = natsConnection_RequestMsg(&rep, sl_nats_conn(cc), req, 1000);
        natsMsg_Destroy(req);
        natsMsg_Destroy(rep);
        if (s == NATS_OK)
            return 0;
        usleep(100000);
    }
    fprintf(stderr, "sluice-config-watcher did not answer (log: %s)\n", log_path);
    return -1;
}

static int group_teardown(void **state)
{
    int rc = 0;
    (void)state;
    if (cw > 0 && stop_proc(cw) != 0)
        rc = -1;
    harness_show_log(log_path);
    sl_nats_close(ca, 0);
    sl_nats_close(cb, 0);
    sl_nats_close(cc, 0);
    harness_down(srv, nc);
    return rc;
}

static void body_size(void **state)
{
    char *big = malloc(MAX_BODY + 200);
    double before = refused("body");
    reply r;
    (void)state;

    assert_non_null(big);
    int n = snprintf(big, MAX_BODY + 200, vs_doc, "padded", "padded");
    memset(big + n, '#', MAX_BODY + 100 - (size_t)n); /* one long comment */
    big[MAX_BODY + 100] = '\n';
    big[MAX_BODY + 101] = '\0';
    call_yaml(&r, "sluice.api.apply", big);
    assert_refused(&r, "over the limit of 4096 bytes", "(--api-max-body)");
    call_yaml(&r, "sluice.api.delete", big);
    assert_refused(&r, "over the limit of 4096 bytes", "(--api-max-body)");
    assert_true(refused("body") >= before + 2);
    free(big);
    assert_served("after-body");
}

static void documents(void **state)
{
    char text[2048] = "", doc[256];
    uint8_t packed[MAX_DOCS + 1][256];
    Google__Protobuf__Any any[MAX_DOCS + 1], *anys[MAX_DOCS + 1];
    Sluice__V1__ApplyRequest req = SLUICE__V1__APPLY_REQUEST__INIT;
    double before = refused("documents");
    reply r;
    (void)state;

    for (int i = 0; i <= MAX_DOCS; i++) {
        char name[16];
        snprintf(name, sizeof name, "doc%d", i);
        snprintf(doc, sizeof doc, vs_doc, name, name);
        strcat(text, "---\n");
        strcat(text, doc);
    }
    call_yaml(&r, "sluice.api.apply", text);
    assert_refused(&r, "more than 3 documents", "(--api-max-documents)");
    call_yaml(&r, "sluice.api.delete", text);
    assert_refused(&r, "more than 3 documents", "(--api-max-documents)");

    /* The same as a protobuf ApplyRequest of four resources. */
    for (int i = 0; i <= MAX_DOCS; i++) {
        Sluice__V1__VirtualService vs = SLUICE__V1__VIRTUAL_SERVICE__INIT;
        Sluice__V1__Metadata md = SLUICE__V1__METADATA__INIT;
        char name[16];
        snprintf(name, sizeof name, "pb%d", i);
        md.name = name;
        vs.metadata = &md;
        google__protobuf__any__init(&any[i]);
        any[i].type_url = "type.googleapis.com/sluice.v1.VirtualService";
        any[i].value.data = packed[i];
        any[i].value.len = sluice__v1__virtual_service__pack(&vs, packed[i]);
        anys[i] = &any[i];
    }
    req.resources = anys;
    req.n_resources = MAX_DOCS + 1;
    req.dry_run = true;
    uint8_t buf[2048];
    size_t len = sluice__v1__apply_request__pack(&req, buf);
    call(&r, "sluice.api.apply", SL_CT_PROTOBUF, buf, len);
    assert_refused(&r, "more than 3 documents", "(--api-max-documents)");
    assert_true(refused("documents") >= before + 3);

    /* Three are fine, in either form. */
    req.n_resources = MAX_DOCS;
    len = sluice__v1__apply_request__pack(&req, buf);
    call(&r, "sluice.api.apply", SL_CT_PROTOBUF, buf, len);
    assert_int_equal(r.error[0], '\0');
    assert_int_equal(r.n_results, MAX_DOCS);
    *strstr(text, "---\napiVersion: gateway.solo.io/v1\nkind: VirtualService\nmetadata:\n  name: doc3") = '\0';
    call_yaml(&r, "sluice.api.apply", text);
    assert_true(r.accepted);
    assert_int_equal(r.n_results, MAX_DOCS);
}

static void nodes(void **state)
{
    char text[3000];
    size_t n;
    double before = refused("nodes");
    reply r;
    (void)state;

    /* 300 domains: over 200 nodes in under 4 KiB. */
    n = (size_t)snprintf(text, sizeof text, "apiVersion: gateway.solo.io/v1\nkind: VirtualService\n"
                                            "metadata:\n  name: wide\nspec:\n  virtualHost:\n    domains: [");
    for (int i = 0; i < 300; i++)
        n += (size_t)snprintf(text + n, sizeof text - n, "%sd%d", i ? "," : "", i);
    snprintf(text + n, sizeof text - n, "]\n");
    assert_true(strlen(text) < MAX_BODY);
    call_yaml(&r, "sluice.api.apply", text);
    assert_refused(&r, "more than 200 YAML/JSON nodes", "(--api-max-nodes)");

    /* 150 bytes of aliases that stand for over a thousand nodes. */
    call_yaml(&r, "sluice.api.apply",
              "a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n"
              "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
              "c: [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n");
    assert_refused(&r, "more than 200 YAML/JSON nodes", "(--api-max-nodes)");
    /* JSON counts the same, for deletes too. */
    n = (size_t)snprintf(text, sizeof text, "{\"apiVersion\": \"gateway.solo.io/v1\", \"kind\": "
                                            "\"VirtualService\", \"metadata\": {\"name\": \"j\"}, "
                                            "\"spec\": {\"virtualHost\": {\"domains\": [");
    for (int i = 0; i < 300; i++)
        n += (size_t)snprintf(text + n, sizeof text - n, "%s\"d%d\"", i ? "," : "", i);
    snprintf(text + n, sizeof text - n, "]}}}");
    call(&r, "sluice.api.delete", SL_CT_JSON, text, strlen(text));
    assert_refused(&r, "more than 200 YAML/JSON nodes", "(--api-max-nodes)");
    assert_true(refused("nodes") >= before + 3);
    assert_served("after-nodes");
}

/* Publishes n apply requests from c with replies on <inbox>.<i>; forge(i,
 * hdrs) may add headers to request i. Subscribes the replies on c. */
typedef void forge_fn(int i, const char **hdrs, char *buf, size_t n);

static natsSubscription *flood(sl_nats *c, const char *inbox, int n, forge_fn *forge)
{
    natsSubscription *sub = NULL;
    char subj[128], text[512], name[32], buf[512];
    snprintf(subj, sizeof subj, "%s.>", inbox);
    assert_int_equal(natsConnection_SubscribeSync(&sub, sl_nats_conn(c), subj), NATS_OK);
    assert_int_equal(natsConnection_Flush(sl_nats_conn(c)), NATS_OK);
    for (int i = 0; i < n; i++) {
        const char *hdrs[9] = {NULL};
        snprintf(subj, sizeof subj, "%s.%d", inbox, i);
        snprintf(name, sizeof name, "flood-%d", i);
        snprintf(text, sizeof text, vs_doc, name, name);
        if (forge)
            forge(i, hdrs, buf, sizeof buf);
        natsMsg *m = request_msg("sluice.api.apply", hdrs, SL_CT_YAML, text, strlen(text), subj);
        assert_int_equal(natsConnection_PublishMsg(sl_nats_conn(c), m), NATS_OK);
        natsMsg_Destroy(m);
    }
    assert_int_equal(natsConnection_Flush(sl_nats_conn(c)), NATS_OK);
    return sub;
}

/* Reads n replies of a flood: how many were accepted, rate limited, busy.
 * Every rate limit refusal must name the client key who (when given). */
static void tally(natsSubscription *sub, int n, const char *who, int *accepted, int *rate, int *busy)
{
    char named[200];
    snprintf(named, sizeof named, "rate limited: client '%s' is over", who ? who : "");
    *accepted = *rate = *busy = 0;
    for (int i = 0; i < n; i++) {
        natsMsg *m = NULL;
        reply r;
        if (natsSubscription_NextMsg(&m, sub, 20000) != NATS_OK)
            fail_msg("only %d of %d requests answered", i, n);
        read_reply(&r, m);
        natsMsg_Destroy(m);
        if (r.accepted)
            (*accepted)++;
        else if (strstr(r.error, "rate limited: client '") && strstr(r.error, "(--api-rate")) {
            if (who && !strstr(r.error, named))
                fail_msg("refused as another client than '%s': %s", who, r.error);
            (*rate)++;
        } else if (strstr(r.error, "busy: ") && strstr(r.error, " requests pending, retry (--api-max-pending 4)"))
            (*busy)++;
        else
            fail_msg("unexpected reply: %s", r.error);
    }
    natsSubscription_Destroy(sub);
    printf("# %d requests: %d accepted, %d rate limited, %d busy\n", n, *accepted, *rate, *busy);
}

/* One request of client c: accepted, or the refusal's text into err. */
static bool served(sl_nats *c, const char *subject, const char *const *hdrs, char *err, size_t n)
{
    char text[512];
    natsMsg *req, *rep = NULL;
    reply r;
    snprintf(text, sizeof text, vs_doc, "calm", "calm");
    req = request_msg(subject, hdrs, SL_CT_YAML, text, strlen(text), NULL);
    assert_int_equal(natsConnection_RequestMsg(&rep, sl_nats_conn(c), req, 10000), NATS_OK);
    natsMsg_Destroy(req);
    read_reply(&r, rep);
    natsMsg_Destroy(rep);
    snprintf(err, n, "%s", r.error);
    return r.accepted;
}

/* Requests that claim to be the client forge_victim names. */
static const char *forge_victim;

static void forge_other(int i, const char **hdrs, char *buf, size_t n)
{
    (void)i;
    snprintf(buf, n, "{\"acc\":\"%s\",\"user\":\"%s\"}", SL_NATSAUTH_CLIENT_ACCOUNT,
             strchr(forge_victim, '/') + 1);
    hdrs[0] = "Sluice-Client", hdrs[1] = forge_victim;
    hdrs[2] = SL_NATSAUTH_REQUEST_INFO_HDR, hdrs[3] = buf;
}

/* A new name per request, in each header a client might think counts
 * (the lower-case one too, which nats-server leaves in place). */
static void forge_fresh(int i, const char **hdrs, char *buf, size_t n)
{
    static char name[32]; /* headers are copied into the request */
    snprintf(name, sizeof name, "fresh-%d", i);
    snprintf(buf, n, "{\"acc\":\"%s\",\"user\":\"%s\"}", SL_NATSAUTH_CLIENT_ACCOUNT, name);
    hdrs[0] = "Sluice-Client", hdrs[1] = name;
    hdrs[2] = SL_NATSAUTH_REQUEST_INFO_HDR, hdrs[3] = buf;
    hdrs[4] = "nats-request-info", hdrs[5] = buf;
}

/* Client A floods; client B, another user, is answered meanwhile: each
 * has its own budget, keyed on the identity nats-server gives. */
static void rate_per_client(void **state)
{
    int accepted, rate, busy;
    double before = refused("rate");
    char err[1024];
    (void)state;

    natsSubscription *sub = flood(ca, "_INBOX.flood", 40, NULL);
    if (!served(cb, "sluice.api.apply", NULL, err, sizeof err))
        fail_msg("the other client was not served: %s", err);
    tally(sub, 40, key_a, &accepted, &rate, &busy);
    assert_int_equal(busy, 0);
    assert_true(accepted >= BURST);
    assert_true(rate >= 40 - BURST - 5); /* a few tokens come back while it floods */
    assert_true(refused("rate") >= before + rate);
    assert_served("after-rate");
}

/* Headers a client sets do not change who it is: A claiming to be B (in
 * Sluice-Client and Nats-Request-Info) is refused as A, and B is served;
 * A naming itself anew in every request is still held to its one budget. */
static void forged_identity(void **state)
{
    int accepted, rate, busy;
    char err[1024];
    (void)state;

    forge_victim = key_b;
    natsSubscription *sub = flood(ca, "_INBOX.forged", 30, forge_other);
    tally(sub, 30, key_a, &accepted, &rate, &busy);
    assert_true(rate >= 30 - BURST - 5);
    if (!served(cb, "sluice.api.apply", NULL, err, sizeof err))
        fail_msg("client B was not served after A spoke in its name: %s", err);

    sub = flood(ca, "_INBOX.fresh", 30, forge_fresh);
    tally(sub, 30, key_a, &accepted, &rate, &busy);
    assert_true(rate >= 30 - BURST - 5);

    /* Two Nats-Request-Info headers: nats-server replaces one, the other
     * stays; the request names nobody for sure and is refused. */
    double before = refused("identity");
    char forged[256];
    snprintf(forged, sizeof forged, "{\"acc\":\"%s\",\"user\":\"%s\"}", SL_NATSAUTH_CLIENT_ACCOUNT,
             strchr(key_b, '/') + 1);
    const char *twice[] = {SL_NATSAUTH_REQUEST_INFO_HDR, forged, SL_NATSAUTH_REQUEST_INFO_HDR, forged, NULL};
    assert_false(served(ca, "sluice.api.apply", twice, err, sizeof err));
    if (!strstr(err, "no client identity: 2 Nats-Request-Info headers"))
        fail_msg("unexpected refusal: %s", err);
    assert_true(refused("identity") >= before + 1);

    /* Operators (Sluice's account) have one bucket whatever they claim;
     * the client they name, unused so far, keeps its whole budget. */
    forge_victim = key_v;
    sub = flood(nc, "_INBOX.operators", 30, forge_other);
    tally(sub, 30, SL_NATSAUTH_ACCOUNT " (operators)", &accepted, &rate, &busy);
    assert_true(rate >= 30 - BURST - 5);
    sl_nats *v = connect_client("client-v", NULL, 0);
    for (int i = 0; i < BURST; i++)
        if (!served(v, "sluice.api.apply", NULL, err, sizeof err))
            fail_msg("client v was not served after operators spoke in its name: %s", err);
    sl_nats_close(v, 0);
}

/* Many clients at once, each within its own budget: past 4 waiting
 * requests, "busy" at once; every request is answered, and the API serves
 * right after. */
static void bounded_queue(void **state)
{
    int accepted, rate, busy;
    double before = refused("pending");
    sl_nats *q[QUEUE_CLIENTS];
    natsSubscription *sub = NULL;
    char text[512], name[32], subj[64];
    (void)state;

    assert_int_equal(natsConnection_SubscribeSync(&sub, sl_nats_conn(ca), "_INBOX.many.>"), NATS_OK);
    assert_int_equal(natsConnection_Flush(sl_nats_conn(ca)), NATS_OK);
    for (int i = 0; i < QUEUE_CLIENTS; i++) {
        snprintf(name, sizeof name, "client-q%d", i);
        assert_non_null(q[i] = connect_client(name, NULL, 0));
    }
    for (int i = 0; i < QUEUE_CLIENTS * BURST; i++) {
        snprintf(name, sizeof name, "many-%d", i);
        snprintf(text, sizeof text, vs_doc, name, name);
        snprintf(subj, sizeof subj, "_INBOX.many.%d", i);
        natsMsg *m = request_msg("sluice.api.apply", NULL, SL_CT_YAML, text, strlen(text), subj);
        assert_int_equal(natsConnection_PublishMsg(sl_nats_conn(q[i % QUEUE_CLIENTS]), m), NATS_OK);
        natsMsg_Destroy(m);
    }
    for (int i = 0; i < QUEUE_CLIENTS; i++)
        assert_int_equal(natsConnection_Flush(sl_nats_conn(q[i])), NATS_OK);
    tally(sub, QUEUE_CLIENTS * BURST, NULL, &accepted, &rate, &busy);
    for (int i = 0; i < QUEUE_CLIENTS; i++)
        sl_nats_close(q[i], 0);
    assert_int_equal(rate, 0);
    assert_true(busy > 0);
    assert_true(accepted >= MAX_PENDING);
    assert_true(refused("pending") >= before + busy);
    assert_served("after-busy");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(body_size),
        cmocka_unit_test(documents),
        cmocka_unit_test(nodes),
        cmocka_unit_test(rate_per_client),
        cmocka_unit_test(forged_identity),
        cmocka_unit_test(bounded_queue),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
