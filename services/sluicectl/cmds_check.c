/* cmds_check.c - sluicectl check: NATS, buckets, services, leases, resources and proxies. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "ctl.h"
#include "sluice/envelope.h"
#include "sluice/flags.h"
#include "sluice/kv.h"
#include "sluice/lease.h"
#include "sluice/resource.h"
#include "sluice/service.h"
#include "sluice/v1/events.pb-c.h"
#include "sluice/v1/xds.pb-c.h"
#include "sluice/xds_keys.h"

/* ---- check ------------------------------------------------------------------ */

/* Services sluicectl check expects alive and ready (--expect overrides). */
static const char default_expected[] =
    "sluice-config-watcher,sluice-secret-watcher,sluice-reporter,sluice-translator,sluice-xds";
/* Services a deployment may run or not (discovery): listed when they send
 * heartbeats, a failure only when alive and not ready. */
static const char optional_services[] = "sluice-endpoint-discovery,sluice-upstream-discovery,sluice-function-discovery";

/* Liveness from the heartbeats in SL_SERVICES_BUCKET (sluice/service.h).
 * An entry older than 3 of its intervals is stale (a bucket made without
 * TTL keeps entries of crashed instances). The expected services must be
 * alive and ready; the optional ones (those not expected) are listed when
 * alive. Returns the number of failures. */
static int check_services(sl_nats *nc, const char *expect, const char *optional)
{
    sl_kv *kv = NULL;
    char **keys = NULL, *list = NULL, *save = NULL;
    size_t nkeys = 0;
    int fails = 0;
    struct timespec now;

    clock_gettime(CLOCK_REALTIME, &now);
    if (asprintf(&list, "%s,%s", expect, optional) < 0)
        list = NULL;
    if (sl_kv_bind(&kv, nc, SL_SERVICES_BUCKET) != SL_OK ||
        sl_kv_keys(&keys, &nkeys, kv, 3000) != SL_OK) {
        printf("FAIL  services: no heartbeats (bucket %s: %s): is any service running?\n",
               SL_SERVICES_BUCKET, sl_error_msg());
        fails++;
        goto out;
    }
    for (char *svc = list ? strtok_r(list, ",", &save) : NULL; svc; svc = strtok_r(NULL, ",", &save)) {
        int alive = 0, ready = 0;
        char info[512] = "";
        size_t sl = strlen(svc);
        bool required = svc < list + strlen(expect);
        if (!required && sl_list_has(expect, svc))
            continue; /* expected, checked already */
        for (size_t i = 0; i < nkeys; i++) {
            sl_kv_entry e = {0};
            if (strncmp(keys[i], svc, sl) != 0 || keys[i][sl] != '.' || sl_kv_get(&e, kv, keys[i]) != SL_OK)
                continue;
            json_t *o = json_loadb((const char *)e.value, e.len, 0, NULL);
            json_int_t iv = o ? json_integer_value(json_object_get(o, "intervalMs")) : 0;
            int64_t age_ms = ((int64_t)now.tv_sec * 1000000000 + now.tv_nsec - e.created_ns) / 1000000;
            if (o && (iv <= 0 || age_ms <= 3 * iv)) {
                bool r = json_is_true(json_object_get(o, "ready"));
                alive++;
                ready += r;
                size_t used = strlen(info);
                snprintf(info + used, sizeof(info) - used, "%spid %d on %s%s, started %s", used ? "; " : "",
                         (int)json_integer_value(json_object_get(o, "pid")),
                         json_string_value(json_object_get(o, "host")) ?: "?", r ? "" : " (not ready)",
                         json_string_value(json_object_get(o, "startedAt")) ?: "?");
            }
            json_decref(o);
            sl_kv_entry_deinit(&e);
        }
        if (alive == 0 && !required) {
            printf("--    service %s: not running (optional)\n", svc);
        } else if (alive == 0) {
            printf("FAIL  service %s: no heartbeat (not running, or not connected to this NATS)\n", svc);
            fails++;
        } else if (ready == 0) {
            printf("FAIL  service %s: alive, not ready (%s)\n", svc, info);
            fails++;
        } else {
            printf("OK    service %s: %d alive, %d ready (%s)\n", svc, alive, ready, info);
        }
    }
out:
    free(list);
    sl_kv_keys_free(keys, nkeys);
    sl_kv_free(kv);
    return fails;
}

/* Who holds each lease (sluice/lease.h), for information: a service
 * whose replicas take turns shows which one works. Never fails. */
static void check_leases(sl_nats *nc)
{
    sl_kv *kv = NULL;
    char **keys = NULL;
    size_t nkeys = 0;
    if (sl_kv_bind(&kv, nc, SL_LEASES_BUCKET) != SL_OK)
        return;
    if (sl_kv_keys(&keys, &nkeys, kv, 3000) == SL_OK)
        for (size_t i = 0; i < nkeys; i++) {
            sl_kv_entry e = {0};
            if (sl_kv_get(&e, kv, keys[i]) != SL_OK)
                continue;
            json_error_t err;
            json_t *o = json_loadb((const char *)e.value, e.len, 0, &err);
            printf("OK    lease %s: held by %s pid %lld on %s\n", keys[i],
                   o && json_string_value(json_object_get(o, "service")) ? json_string_value(json_object_get(o, "service"))
                                                                         : "?",
                   o ? (long long)json_integer_value(json_object_get(o, "pid")) : 0LL,
                   o && json_string_value(json_object_get(o, "host")) ? json_string_value(json_object_get(o, "host")) : "?");
            json_decref(o);
            sl_kv_entry_deinit(&e);
        }
    sl_kv_keys_free(keys, nkeys);
    sl_kv_free(kv);
}

/* The revision of proxy's latest commit in sluice_xds (its "revision",
 * else the key's KV revision, as sluice-xds reads it); 0 when none. */
static uint64_t latest_commit(sl_kv *xds, const char *proxy)
{
    char key[SL_XDS_KEY_MAX];
    sl_kv_entry e = {0};
    uint64_t rev = 0;
    if (!xds || sl_xds_key_commit(key, sizeof key, proxy) != SL_OK)
        return 0;
    if (sl_kv_get(&e, xds, key) != SL_OK)
        return 0;
    Sluice__V1__XdsCommit *cm = sluice__v1__xds_commit__unpack(NULL, e.len, e.value);
    rev = cm && cm->revision ? cm->revision : e.revision;
    sluice__v1__xds_commit__free_unpacked(cm, NULL);
    sl_kv_entry_deinit(&e);
    return rev;
}

/* Every connected proxy on the latest revision: the per-proxy state each
 * sluice-xds publishes in KV sluice_proxies (services/xds/proxies.h)
 * against the latest commit in sluice_xds. A NACK fails, a stream behind
 * warns (it may be catching up). Returns the number of failures. */
static int check_proxies(sl_nats *nc)
{
    sl_kv *kv = NULL, *xds = NULL;
    char **keys = NULL;
    size_t nkeys = 0, shown = 0;
    int fails = 0;

    if (sl_kv_bind(&kv, nc, "sluice_proxies") != SL_OK) {
        printf("OK    proxies: no proxies connected (no sluice-xds has published state: bucket "
               "sluice_proxies missing)\n");
        goto out;
    }
    if (sl_kv_keys(&keys, &nkeys, kv, 3000) != SL_OK) {
        printf("FAIL  proxies: cannot list sluice_proxies: %s\n", sl_error_msg());
        fails++;
        goto out;
    }
    if (sl_kv_bind(&xds, nc, "sluice_xds") != SL_OK)
        xds = NULL;
    for (size_t i = 0; i < nkeys; i++) {
        sl_kv_entry e = {0};
        if (sl_kv_get(&e, kv, keys[i]) != SL_OK)
            continue; /* gone since listed */
        json_t *o = json_loadb((const char *)e.value, e.len, 0, NULL);
        const char *proxy = json_string_value(json_object_get(o, "proxy"));
        const char *inst = json_string_value(json_object_get(o, "instance"));
        json_t *streams = json_object_get(o, "streams"), *st;
        size_t k;
        if (!proxy || !json_is_array(streams)) {
            printf("WARN  proxies: %s: value does not decode\n", keys[i]);
            json_decref(o);
            sl_kv_entry_deinit(&e);
            continue;
        }
        uint64_t latest = latest_commit(xds, proxy);
        uint64_t served = (uint64_t)json_integer_value(json_object_get(o, "commit_revision_served"));
        char behind[1024] = "", nacks[1024] = "";
        size_t nbehind = 0, nnack = 0, n = json_array_size(streams);
        json_array_foreach(streams, k, st)
        {
            const char *node = json_string_value(json_object_get(st, "node_id"));
            uint64_t acked = (uint64_t)json_integer_value(json_object_get(st, "acked_revision"));
            node = node && node[0] ? node : "(no node id)";
            if (json_is_true(json_object_get(st, "nacked"))) {
                size_t u = strlen(nacks);
                snprintf(nacks + u, sizeof nacks - u, "%s%s NACKed: %s (on revision %" PRIu64 ")", nnack ? "; " : "",
                         node, json_string_value(json_object_get(st, "last_error")) ?: "", acked);
                nnack++;
            } else if (acked != latest) {
                size_t u = strlen(behind);
                snprintf(behind + u, sizeof behind - u, "%s%s on revision %" PRIu64, nbehind ? ", " : "", node,
                         acked);
                nbehind++;
            }
        }
        if (nnack) {
            printf("FAIL  proxy %s (xds %s): %s; latest revision %" PRIu64 "\n", proxy, inst ?: "?", nacks, latest);
            fails++;
        } else if (nbehind) {
            printf("WARN  proxy %s (xds %s): %zu of %zu streams behind the latest revision %" PRIu64
                   " (served %" PRIu64 "): %s\n", proxy, inst ?: "?", nbehind, n, latest, served, behind);
        } else {
            printf("OK    proxy %s (xds %s): %zu stream%s on the latest revision %" PRIu64 "\n", proxy,
                   inst ?: "?", n, n == 1 ? "" : "s", latest);
        }
        shown++;
        json_decref(o);
        sl_kv_entry_deinit(&e);
    }
    if (!shown)
        printf("OK    proxies: no proxies connected\n");
out:
    sl_kv_keys_free(keys, nkeys);
    sl_kv_free(xds);
    sl_kv_free(kv);
    return fails;
}

int ctl_cmd_check(ctl *c, int argc, char **argv)
{
    int fails = 0;
    sl_nats *nc = NULL;
    ctl_item *items = NULL;
    size_t n = 0;
    static const char *const buckets[] = {SL_BUCKET_CONFIG, SL_BUCKET_STATUS, "sluice_xds",
                                          SL_BUCKET_SECRETS, SL_BUCKET_ENDPOINTS};

    const char *expect = default_expected;

    for (int i = 1; i < argc; i++) {
        const char *v = NULL;
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            printf("Usage: sluicectl check [--expect SVC,SVC...]\n"
                   "Checks that NATS answers, the buckets exist, every expected service is alive\n"
                   "and ready (heartbeats in KV %s), the apply and secret APIs answer, every resource\n"
                   "is Accepted and every connected proxy is on the latest revision (KV\n"
                   "sluice_proxies). Exit status 1 when something is wrong.\n"
                   "  --expect LIST   services that must run (default %s);\n"
                   "                  %s are listed when they run\n",
                   SL_SERVICES_BUCKET, default_expected, optional_services);
            return 0;
        }
        if (ctl_opt(argc, argv, &i, NULL, "--expect", &v) && v) {
            expect = v;
            continue;
        }
        return ctl_usage_error("check", "unknown argument \"%s\"", argv[i]);
    }
    if (!(nc = ctl_connect(c))) {
        printf("FAIL  nats: unreachable\n");
        return 1;
    }
    printf("OK    nats: connected to %s\n", c->nats.urls ? c->nats.urls : SL_NATS_DEFAULT_URL);
    for (size_t i = 0; i < sizeof(buckets) / sizeof(buckets[0]); i++) {
        sl_kv *kv = NULL;
        if (sl_kv_bind(&kv, nc, buckets[i]) == SL_OK) {
            printf("OK    bucket %s\n", buckets[i]);
            sl_kv_free(kv);
        } else {
            bool required = i < 1;
            printf("%s  bucket %s: missing (%s)\n", required ? "FAIL" : "WARN", buckets[i],
                   i == 0 ? "is sluice-config-watcher running?"
                   : i == 1 ? "no status yet: is sluice-reporter running?"
                   : i == 2 ? "nothing translated yet: is sluice-translator running?"
                            : "not created yet");
            fails += required;
        }
    }
    fails += check_services(nc, expect, optional_services);
    check_leases(nc);
    /* The APIs answer: an empty dry run to each. */
    static const struct {
        const char *subject, *what, *who;
    } apis[] = {{"sluice.api.apply", "apply API", "sluice-config-watcher"},
                {"sluice.api.secret.apply", "secret API", "sluice-secret-watcher"}};
    for (size_t i = 0; i < sizeof apis / sizeof apis[0]; i++) {
        Sluice__V1__ApplyRequest req = SLUICE__V1__APPLY_REQUEST__INIT;
        natsMsg *reply = NULL;
        req.dry_run = true;
        req.source = "sluicectl-check";
        if (sl_envelope_request_pb(&reply, nc, apis[i].subject, &req.base, NULL, 3000) == SL_OK) {
            printf("OK    %s answers (%s)\n", apis[i].what, apis[i].who);
            natsMsg_Destroy(reply);
        } else {
            printf("FAIL  %s (%s, %s): %s\n", apis[i].what, apis[i].subject, apis[i].who, sl_error_msg());
            fails++;
        }
    }
    if (ctl_load_items(&items, &n, nc, NULL, NULL, NULL, true) == 0) {
        size_t bad = 0, pending = 0;
        for (size_t i = 0; i < n; i++) {
            const Sluice__V1__Status *s = items[i].status;
            if (!s || s->state == SLUICE__V1__STATUS__STATE__Pending)
                pending++;
            else if (s->state == SLUICE__V1__STATUS__STATE__Rejected) {
                bad++;
                printf("FAIL  %s %s/%s: Rejected: %s\n", items[i].id.kind, items[i].id.ns,
                       items[i].id.name, s->reason);
            }
        }
        if (!bad && !pending)
            printf("OK    %zu resources, all Accepted\n", n);
        else if (pending)
            printf("WARN  %zu of %zu resources have no status yet (Pending)\n", pending, n);
        fails += bad != 0;
    }
    fails += check_proxies(nc);
    ctl_items_free(items, n);
    ctl_close(nc);
    return fails ? 1 : 0;
}
