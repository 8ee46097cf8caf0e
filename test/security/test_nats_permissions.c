/* NATS least privilege against a real nats-server with the configuration
 * Sluice provisions (sluice/natsauth.h, through the test kit as every test
 * runs it): no credentials or an unknown key
 * are refused; each role can do its own work through the real KV code; and
 * each thing a role must not do is refused by the server (a permissions
 * violation reported back on that connection): config-watcher writing
 * sluice_xds, a client reading sluice_secrets, publishing reports, taking
 * the translator lease, subscribing to another service's replies. Users'
 * programs (client, config-writer) are in an account of their own: they
 * reach the apply API and statuses only through what Sluice's account
 * exports, and a request of theirs reaches the API with nats-server's
 * Nats-Request-Info header naming them, whatever headers they sent. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "harness.h"
#include "sluice/envelope.h"
#include "sluice/kv.h"
#include "sluice/lease.h"
#include "sluice/nats.h"
#include "sluice/natsauth.h"
#include "sluice/nkey.h"

static harness_nats *srv;
static const char *dir; /* the harness's role seeds and auth.conf */

static int group_setup(void **state)
{
    (void)state;
    if (harness_nats_start(&srv) != 0)
        return -1;
    dir = harness_auth_dir();
    if (!dir) {
        fprintf(stderr, "authentication is off (SLUICE_TEST_NATS_AUTH=0?): nothing to test\n");
        return -1;
    }
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    harness_nats_free(srv);
    sl_nats_shutdown(5000);
    return 0;
}

/* Connects as a role (its seed, its connection name), or with seed file
 * path when given; fails fast. */
static sl_status connect_as(sl_nats **out, const char *role, const char *path)
{
    sl_nats_settings s;
    char file[256];
    const sl_natsauth_role *r = role ? sl_natsauth_role_find(role) : NULL;
    sl_nats_settings_init(&s);
    sl_nats_settings_set(&s, "nats-url", harness_nats_url(srv));
    if (role) {
        snprintf(file, sizeof file, "%s/%s.nk", dir, role);
        sl_nats_settings_set(&s, "nats-nkey", file);
        if (r && r->conn_name) /* users' programs: the standard _INBOX prefix */
            sl_nats_settings_set(&s, "nats-name", r->conn_name);
    } else if (path) {
        sl_nats_settings_set(&s, "nats-nkey", path);
    }
    s.startup_deadline_ms = 600;
    s.reconnect_min_ms = 50;
    sl_status st = sl_nats_connect(out, &s);
    sl_nats_settings_deinit(&s);
    return st;
}

/* Publishes to subject and waits for the server's answer to a PING after
 * it: a permissions violation arrives before the PONG. 1 when refused. */
static int publish_refused(sl_nats *nc, const char *subject)
{
    const char *text = NULL;
    natsConnection *c = sl_nats_conn(nc);
    assert_int_equal(natsConnection_PublishString(c, subject, "x"), NATS_OK);
    assert_int_equal(natsConnection_FlushTimeout(c, 5000), NATS_OK);
    natsStatus s = natsConnection_GetLastError(c, &text);
    return s == NATS_NOT_PERMITTED && text && strstr(text, subject) != NULL;
}

static int subscribe_refused(sl_nats *nc, const char *subject)
{
    const char *text = NULL;
    natsSubscription *sub = NULL;
    natsConnection *c = sl_nats_conn(nc);
    assert_int_equal(natsConnection_SubscribeSync(&sub, c, subject), NATS_OK);
    assert_int_equal(natsConnection_FlushTimeout(c, 5000), NATS_OK);
    natsStatus s = natsConnection_GetLastError(c, &text);
    natsSubscription_Destroy(sub);
    return s == NATS_NOT_PERMITTED && text && strstr(text, subject) != NULL;
}

static void unauthenticated_refused(void **state)
{
    sl_nats *nc = NULL;
    char path[256], seed[SL_NKEY_SEED_LEN + 1], pub[SL_NKEY_PUBLIC_LEN + 1];
    (void)state;
    assert_int_not_equal(connect_as(&nc, NULL, NULL), SL_OK);
    assert_null(nc);
    /* a well-formed key the server does not know */
    snprintf(path, sizeof path, "%s/stranger.nk", dir);
    assert_int_equal(sl_nkey_generate(seed, pub), SL_OK);
    assert_int_equal(sl_nkey_write_seed(path, seed), SL_OK);
    assert_int_not_equal(connect_as(&nc, NULL, path), SL_OK);
    assert_null(nc);
}

/* Each service's own work, through the same KV code the services run. */
static void roles_do_their_work(void **state)
{
    static const struct {
        const char *role, *bucket, *key;
    } work[] = {
        {"config-watcher", "sluice_config", "Upstream.default.a"},
        {"secret-watcher", "sluice_secrets", "Secret.default.s"},
        {"translator", "sluice_xds", "p.commit"},
        {"xds", "sluice_proxies", "p.node"},
        {"reporter", "sluice_status", "Upstream.default.a"},
        {"translator", SL_LEASES_BUCKET, "translator.sluice_xds"},
        {"config-watcher", SL_SERVICES_BUCKET, "sluice-config-watcher.i1"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof work / sizeof work[0]; i++) {
        sl_nats *nc = NULL;
        sl_kv *kv = NULL;
        sl_kv_config cfg = {.bucket = work[i].bucket};
        sl_kv_entry e;
        uint64_t rev = 0;
        assert_int_equal(connect_as(&nc, work[i].role, NULL), SL_OK);
        if (sl_kv_open(&kv, nc, &cfg) != SL_OK)
            fail_msg("%s opening %s: %s", work[i].role, work[i].bucket, sl_error_msg());
        if (sl_kv_put(&rev, kv, work[i].key, "v", 1) != SL_OK)
            fail_msg("%s writing %s: %s", work[i].role, work[i].bucket, sl_error_msg());
        assert_true(rev > 0);
        if (strcmp(work[i].bucket, SL_SERVICES_BUCKET) != 0) {
            assert_int_equal(sl_kv_get(&e, kv, work[i].key), SL_OK);
            assert_int_equal(e.revision, rev);
            sl_kv_entry_deinit(&e);
        }
        sl_kv_free(kv);
        sl_nats_close(nc, 0);
    }
}

/* What each role must not do is refused by the server. */
static void roles_refused_beyond_their_own(void **state)
{
    static const struct {
        const char *role, *subject;
        int subscribe;
    } refused[] = {
        {"config-watcher", "$KV.sluice_xds.p.commit", 0},     /* inject Envoy config */
        {"config-watcher", "$KV.sluice_leases.translator.sluice_xds", 0}, /* take the lease */
        {"translator", "$KV.sluice_config.Upstream.default.a", 0},        /* change desired config */
        {"translator", "$KV.sluice_secrets.Secret.default.s", 0},
        {"xds", "$KV.sluice_xds.p.commit", 0},
        {"xds", "sluice.report.translator.Upstream.default.a", 0},        /* forge another's report */
        {"client", "$JS.API.STREAM.INFO.KV_sluice_secrets", 0},           /* read secrets */
        {"client", "$JS.API.DIRECT.GET.KV_sluice_secrets.$KV.sluice_secrets.Secret.default.s", 0},
        {"client", SL_NATSAUTH_CLIENT_JS_PREFIX ".STREAM.INFO.KV_sluice_secrets", 0},
        {"client", SL_NATSAUTH_CLIENT_JS_PREFIX ".DIRECT.GET.KV_sluice_secrets.$KV.sluice_secrets.Secret.default.s", 0},
        {"client", SL_NATSAUTH_CLIENT_JS_PREFIX ".CONSUMER.CREATE.KV_sluice_status", 0}, /* a consumer in SLUICE */
        {"config-writer", "$KV.sluice_xds.p.commit", 0},
        {"config-writer", SL_NATSAUTH_CLIENT_JS_PREFIX ".DIRECT.GET.KV_sluice_secrets.$KV.sluice_secrets.Secret.default.s", 0},
        {"config-writer", "sluice.report.config-watcher.Upstream.default.a", 0},
        {"config-writer", "$KV.sluice_leases.translator.sluice_xds", 0},
        {"sluicectl", SL_NATSAUTH_CLIENT_API_PREFIX "apply", 0},         /* pass as a client */
        {"client", SL_NATSAUTH_CLIENT_API_PREFIX "apply", 0},
        {"client", "$KV.sluice_config.Upstream.default.a", 0},            /* bypass the apply API */
        {"client", "sluice.report.xds-server.Proxy.default.p", 0},        /* forge a NACK */
        {"client", "$KV.sluice_leases.translator.sluice_xds", 0},
        {"sluicectl", "$JS.API.DIRECT.GET.KV_sluice_secrets.$KV.sluice_secrets.Secret.default.s", 0},
        {"sluicectl", "$KV.sluice_xds.p.commit", 0},
        {"reporter", "$KV.sluice_config.Upstream.default.a", 0},
        {"secret-watcher", "$KV.sluice_xds.p.commit", 0},
        {"client", "_INBOX_sluice-translator.>", 1},                     /* read others' replies */
        {"config-watcher", "sluice.report.>", 1},
        {"xds", "sluice.api.apply", 1},                                  /* answer applies */
        {"client", "sluice.api.secret.apply", 0},                        /* write secrets */
        {"config-watcher", "sluice.api.secret.apply", 1},                /* see secrets applied */
        {"translator", "sluice.api.secret.delete", 1},
    };
    (void)state;
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        sl_nats *nc = NULL;
        assert_int_equal(connect_as(&nc, refused[i].role, NULL), SL_OK);
        int ok = refused[i].subscribe ? subscribe_refused(nc, refused[i].subject)
                                      : publish_refused(nc, refused[i].subject);
        if (!ok)
            fail_msg("%s was allowed to %s %s", refused[i].role, refused[i].subscribe ? "subscribe to" : "publish to",
                     refused[i].subject);
        sl_nats_close(nc, 0);
    }
}

/* The client role can use the apply API's subjects and read statuses, and
 * the positive control of publish_refused(): an allowed publish is not
 * reported as refused. */
static void client_uses_the_api(void **state)
{
    sl_nats *nc = NULL;
    (void)state;
    assert_int_equal(connect_as(&nc, "client", NULL), SL_OK);
    assert_false(publish_refused(nc, "sluice.api.apply"));
    assert_false(subscribe_refused(nc, "sluice.status.>"));
    sl_nats_close(nc, 0);
}

/* Reads the status the reporter wrote (roles_do_their_work) as the
 * clients do, across the account boundary: a direct get under the
 * clients' JetStream prefix; and a status event reaches them. */
static void client_reads_status(void **state)
{
    sl_nats *cl = NULL, *rep = NULL;
    natsMsg *m = NULL;
    natsSubscription *sub = NULL;
    (void)state;
    assert_int_equal(connect_as(&cl, "client", NULL), SL_OK);
    assert_int_equal(natsConnection_RequestString(&m, sl_nats_conn(cl),
                                                  SL_NATSAUTH_CLIENT_JS_PREFIX
                                                  ".DIRECT.GET.KV_sluice_status.$KV.sluice_status.Upstream.default.a",
                                                  "", 5000),
                     NATS_OK);
    assert_int_equal(natsMsg_GetDataLength(m), 1);
    assert_memory_equal(natsMsg_GetData(m), "v", 1);
    natsMsg_Destroy(m);
    m = NULL;
    assert_int_equal(natsConnection_SubscribeSync(&sub, sl_nats_conn(cl), "sluice.status.>"), NATS_OK);
    assert_int_equal(natsConnection_Flush(sl_nats_conn(cl)), NATS_OK);
    assert_int_equal(harness_connect(&rep, srv), SL_OK); /* admin: as the reporter's bucket republishes */
    assert_int_equal(natsConnection_PublishString(sl_nats_conn(rep), "sluice.status.Upstream.default.a", "s"), NATS_OK);
    assert_int_equal(natsConnection_Flush(sl_nats_conn(rep)), NATS_OK);
    assert_int_equal(natsSubscription_NextMsg(&m, sub, 5000), NATS_OK);
    assert_string_equal(natsMsg_GetSubject(m), "sluice.status.Upstream.default.a");
    natsMsg_Destroy(m);
    natsSubscription_Destroy(sub);
    sl_nats_close(rep, 0);
    sl_nats_close(cl, 0);
}

/* A client's request reaches Sluice's account on the clients' API subject
 * with exactly one Nats-Request-Info, nats-server's, naming the client's
 * account and nkey, whatever the client put in its own headers (one
 * forged: replaced; a lower-case one: left, another key for nats.c). */
static void client_identity_from_the_server(void **state)
{
    sl_nats *cl = NULL, *responder = NULL;
    natsSubscription *sub = NULL;
    natsMsg *req = NULL, *got = NULL, *ignored = NULL;
    const char **vals = NULL;
    int count = 0;
    char path[256], seed[SL_NKEY_SEED_LEN + 1], pub[SL_NKEY_PUBLIC_LEN + 1], want[128], who[128];
    (void)state;

    snprintf(path, sizeof path, "%s/client.nk", dir);
    assert_int_equal(sl_nkey_read_seed(seed, path), SL_OK);
    assert_int_equal(sl_nkey_public(pub, seed), SL_OK);
    snprintf(want, sizeof want, "%s/%s", SL_NATSAUTH_CLIENT_ACCOUNT, pub);

    assert_int_equal(harness_connect(&responder, srv), SL_OK); /* admin, in SLUICE */
    assert_int_equal(natsConnection_SubscribeSync(&sub, sl_nats_conn(responder), SL_NATSAUTH_CLIENT_API_PREFIX "apply"),
                     NATS_OK);
    assert_int_equal(natsConnection_Flush(sl_nats_conn(responder)), NATS_OK);
    assert_int_equal(connect_as(&cl, "client", NULL), SL_OK);
    assert_int_equal(natsMsg_Create(&req, "sluice.api.apply", "_INBOX.id.1", "x", 1), NATS_OK);
    natsMsgHeader_Set(req, SL_NATSAUTH_REQUEST_INFO_HDR, "{\"acc\":\"SLUICE\",\"user\":\"UFORGED\"}");
    natsMsgHeader_Set(req, "nats-request-info", "{\"acc\":\"SLUICE\",\"user\":\"UFORGED\"}");
    natsMsgHeader_Set(req, "Sluice-Client", "someone-else");
    assert_int_equal(natsConnection_PublishMsg(sl_nats_conn(cl), req), NATS_OK);
    assert_int_equal(natsConnection_Flush(sl_nats_conn(cl)), NATS_OK);
    assert_int_equal(natsSubscription_NextMsg(&got, sub, 5000), NATS_OK);
    assert_int_equal(natsMsgHeader_Values(got, SL_NATSAUTH_REQUEST_INFO_HDR, &vals, &count), NATS_OK);
    assert_int_equal(count, 1);
    assert_non_null(strstr(vals[0], pub));
    assert_null(strstr(vals[0], "UFORGED"));
    free((void *)vals);
    assert_int_equal(sl_natsauth_requester(who, sizeof who, got), SL_OK);
    assert_string_equal(who, want);
    natsMsg_Destroy(got);
    got = NULL;

    /* Two of them: one stays, and the request names nobody for sure. */
    natsMsgHeader_Add(req, SL_NATSAUTH_REQUEST_INFO_HDR, "{\"acc\":\"SLUICE\",\"user\":\"UFORGED2\"}");
    assert_int_equal(natsConnection_PublishMsg(sl_nats_conn(cl), req), NATS_OK);
    assert_int_equal(natsConnection_Flush(sl_nats_conn(cl)), NATS_OK);
    assert_int_equal(natsSubscription_NextMsg(&got, sub, 5000), NATS_OK);
    assert_int_not_equal(sl_natsauth_requester(who, sizeof who, got), SL_OK);
    assert_non_null(strstr(sl_error_msg(), "2 Nats-Request-Info headers"));
    natsMsg_Destroy(got);
    got = NULL;

    /* Sluice's own users cannot use that subject (roles_refused_beyond_their_own:
     * sluicectl); what they send on sluice.api.apply never reaches it. */
    assert_int_equal(natsConnection_PublishMsg(sl_nats_conn(responder), req), NATS_OK);
    assert_int_equal(natsConnection_Flush(sl_nats_conn(responder)), NATS_OK);
    assert_int_equal(natsSubscription_NextMsg(&ignored, sub, 300), NATS_TIMEOUT);

    natsMsg_Destroy(req);
    natsSubscription_Destroy(sub);
    sl_nats_close(cl, 0);
    sl_nats_close(responder, 0);
}

static void seed_files_private(void **state)
{
    size_t n;
    const sl_natsauth_role *r = sl_natsauth_roles(&n);
    struct stat sb;
    char path[256];
    (void)state;
    assert_int_equal(stat(dir, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0700);
    for (size_t i = 0; i < n; i++) {
        snprintf(path, sizeof path, "%s/%s.nk", dir, r[i].name);
        assert_int_equal(stat(path, &sb), 0);
        assert_int_equal(sb.st_mode & 0777, 0600);
    }
    snprintf(path, sizeof path, "%s/auth.conf", dir);
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(unauthenticated_refused),
        cmocka_unit_test(roles_do_their_work),
        cmocka_unit_test(roles_refused_beyond_their_own),
        cmocka_unit_test(client_uses_the_api),
        cmocka_unit_test(client_reads_status),
        cmocka_unit_test(client_identity_from_the_server),
        cmocka_unit_test(seed_files_private),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
