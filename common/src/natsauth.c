/* natsauth.c - the role table of NATS least privilege, its expansion into
 * JetStream API subjects, and provisioning of seeds and auth.conf. */
#include "sluice/natsauth.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sluice/codec.h"
#include "sluice/nkey.h"
#include "sluice/lease.h"
#include "sluice/resource.h"
#include "sluice/service.h"
#include "sluice/vec.h"

#define R SL_KV_READ
#define W SL_KV_WRITE
#define C SL_KV_CREATE
#define I SL_KV_INFO

/* Every service writes its heartbeat under "<service>.<instance>". */
#define HEARTBEAT(svc) {SL_SERVICES_BUCKET, I | W | C, svc}

static const sl_natsauth_kv kv_config_watcher[] = {
    {"sluice_config", R | W | C, NULL}, HEARTBEAT("sluice-config-watcher"), {NULL, 0, NULL}};
static const char *const pub_config_watcher[] = {"sluice.report.config-watcher.>", NULL};
/* sluice.api.*: operators (sluicectl) in SLUICE; SL_NATSAUTH_CLIENT_API_PREFIX
 * "*": clients, through the account boundary, named by nats-server. */
static const char *const sub_config_watcher[] = {"sluice.api.apply", "sluice.api.delete",
                                                 SL_NATSAUTH_CLIENT_API_PREFIX "apply",
                                                 SL_NATSAUTH_CLIENT_API_PREFIX "delete", NULL};

static const sl_natsauth_kv kv_secret_watcher[] = {
    {"sluice_secrets", R | W | C, NULL}, HEARTBEAT("sluice-secret-watcher"), {NULL, 0, NULL}};
static const char *const pub_secret_watcher[] = {"sluice.report.secret-watcher.>", NULL};
static const char *const sub_secret_watcher[] = {"sluice.api.secret.apply", "sluice.api.secret.delete", NULL};

static const sl_natsauth_kv kv_translator[] = {
    {"sluice_config", R | C, NULL},   {"sluice_secrets", R | C, NULL},
    {"sluice_endpoints", R | C, NULL}, {"sluice_xds", R | W | C, NULL},
    {SL_LEASES_BUCKET, R | W | C, "translator"}, HEARTBEAT("sluice-translator"), {NULL, 0, NULL}};
static const char *const pub_translator[] = {"sluice.report.translator.>", NULL};

static const sl_natsauth_kv kv_xds[] = {
    {"sluice_xds", R | C, NULL}, {"sluice_proxies", R | W | C, NULL}, HEARTBEAT("sluice-xds"), {NULL, 0, NULL}};
static const char *const pub_xds[] = {"sluice.report.xds-server.>", NULL};

static const sl_natsauth_kv kv_endpoint_discovery[] = {
    {"sluice_config", R | C, NULL}, {"sluice_endpoints", R | W | C, NULL},
    {SL_LEASES_BUCKET, R | W | C, "endpoint-discovery"}, HEARTBEAT("sluice-endpoint-discovery"), {NULL, 0, NULL}};
static const char *const pub_endpoint_discovery[] = {"sluice.report.endpoint-discovery.>", NULL};

/* sluice_secrets read only: the credentials an aws Upstream's secretRef
 * names, to list its Lambda functions. */
static const sl_natsauth_kv kv_function_discovery[] = {
    {"sluice_config", R | W, NULL}, {"sluice_endpoints", R, NULL}, {"sluice_secrets", R, NULL},
    {SL_LEASES_BUCKET, R | W | C, "function-discovery"}, HEARTBEAT("sluice-function-discovery"), {NULL, 0, NULL}};
static const char *const pub_function_discovery[] = {"sluice.report.function-discovery.>", NULL};

/* Writes only Upstreams (reads the Settings beside them; creates the bucket
 * when it starts first, as the other readers of sluice_config do); reports
 * only values it quarantines. */
static const sl_natsauth_kv kv_upstream_discovery[] = {
    {"sluice_config", R | W | C, "Upstream"}, {SL_LEASES_BUCKET, R | W | C, "upstream-discovery"},
    HEARTBEAT("sluice-upstream-discovery"), {NULL, 0, NULL}};
static const char *const pub_upstream_discovery[] = {"sluice.report.upstream-discovery.>", NULL};

/* The reporter also consumes the reports stream through a durable push
 * consumer delivering on _SLUICE.reports.<durable>. */
static const sl_natsauth_kv kv_reporter[] = {
    {"sluice_config", R | C, NULL}, {"sluice_status", R | W | C, NULL}, HEARTBEAT("sluice-reporter"), {NULL, 0, NULL}};
static const char *const pub_reporter[] = {
    "$JS.API.STREAM.INFO.SLUICE_REPORTS",       "$JS.API.STREAM.CREATE.SLUICE_REPORTS",
    "$JS.API.STREAM.UPDATE.SLUICE_REPORTS",     "$JS.API.CONSUMER.DURABLE.CREATE.SLUICE_REPORTS.>",
    "$JS.API.CONSUMER.CREATE.SLUICE_REPORTS.>", "$JS.API.CONSUMER.INFO.SLUICE_REPORTS.>",
    "$JS.ACK.SLUICE_REPORTS.>",                 "$JS.FC.SLUICE_REPORTS.>",
    "sluice.report.reporter.>", /* quarantined statuses (sluice/quarantine.h) */
    NULL};
static const char *const sub_reporter[] = {"_SLUICE.reports.>", NULL};

/* Operators: everything but secrets is readable; changes go through the
 * apply API (validated), never straight into a bucket, and secrets
 * through the secret API (sluice.api.secret.*: written, never read back,
 * as sluice.api.> allows). `sluicectl run`
 * creates the reports stream before the services start. */
static const sl_natsauth_kv kv_sluicectl[] = {
    {"sluice_config", R, NULL},   {"sluice_status", R, NULL},   {"sluice_xds", R, NULL},
    {"sluice_proxies", R, NULL},  {"sluice_endpoints", R, NULL}, {SL_LEASES_BUCKET, R, NULL},
    {SL_SERVICES_BUCKET, R, NULL}, {"sluice_secrets", I, NULL},  {NULL, 0, NULL}};
static const char *const pub_sluicectl[] = {
    "sluice.api.>", "$JS.API.STREAM.INFO.SLUICE_REPORTS", "$JS.API.STREAM.CREATE.SLUICE_REPORTS", NULL};
static const char *const sub_sluicectl[] = {"sluice.status.>", "_INBOX_sluicectl-run.>", NULL};

/* Clients in any language, in the CLIENTS account: the apply API and
 * statuses (the status bucket read with gets under the clients' JetStream
 * API prefix); replies on the standard _INBOX prefix of their account. */
static const sl_natsauth_kv kv_client[] = {{"sluice_status", R, NULL}, {NULL, 0, NULL}};
static const char *const pub_client[] = {"sluice.api.apply", "sluice.api.delete", NULL};
static const char *const sub_client[] = {"sluice.status.>", "_INBOX.>", NULL};

/* Programs that write resources straight into the config bucket (the KV
 * config source: sluice-config-watcher validates and reports every such
 * write, and stores nothing it refuses). */
static const sl_natsauth_kv kv_config_writer[] = {
    {"sluice_config", R | W, NULL}, {"sluice_status", R, NULL}, {NULL, 0, NULL}};
static const char *const sub_config_writer[] = {"sluice.status.>", "_INBOX.>", NULL};

static const sl_natsauth_role roles[] = {
    {"config-watcher", "sluice-config-watcher", "config files, the apply API -> sluice_config",
     kv_config_watcher, pub_config_watcher, sub_config_watcher, true, false},
    {"secret-watcher", "sluice-secret-watcher", "secret files, the secret API -> sluice_secrets (the only writer)",
     kv_secret_watcher, pub_secret_watcher, sub_secret_watcher, true, false},
    {"translator", "sluice-translator", "config, secrets, endpoints -> sluice_xds (the only writer)",
     kv_translator, pub_translator, NULL, false, false},
    {"xds", "sluice-xds", "sluice_xds -> Envoy; proxies' state; NACK reports", kv_xds, pub_xds, NULL, false, false},
    {"endpoint-discovery", "sluice-endpoint-discovery", "dns Upstreams -> sluice_endpoints (the only writer)",
     kv_endpoint_discovery, pub_endpoint_discovery, NULL, false, false},
    {"function-discovery", "sluice-function-discovery",
     "Upstreams' OpenAPI documents, gRPC reflection, AWS Lambda -> their functions", kv_function_discovery,
     pub_function_discovery, NULL, false, false},
    {"upstream-discovery", "sluice-upstream-discovery",
     "services in the etcd registry and DNS-SD -> Upstreams in sluice_config", kv_upstream_discovery,
     pub_upstream_discovery, NULL,
     false, false},
    {"reporter", "sluice-reporter", "reports -> sluice_status (the only writer)", kv_reporter, pub_reporter,
     sub_reporter, false, false},
    {"sluicectl", "sluicectl", "operators: read everything but secrets, apply through the API", kv_sluicectl,
     pub_sluicectl, sub_sluicectl, false, false},
    {"client", NULL, "users' programs: the apply API and statuses", kv_client, pub_client, sub_client, false, true},
    {"config-writer", NULL, "users' programs writing the config bucket directly (validated, reported)",
     kv_config_writer, pub_client, sub_config_writer, false, true},
};

const sl_natsauth_role *sl_natsauth_roles(size_t *n)
{
    *n = sizeof roles / sizeof roles[0];
    return roles;
}

const sl_natsauth_role *sl_natsauth_role_find(const char *name)
{
    for (size_t i = 0; i < sizeof roles / sizeof roles[0]; i++)
        if (!strcmp(roles[i].name, name))
            return &roles[i];
    return NULL;
}

/* A growing string; on allocation failure it stays NULL (checked once). */
typedef struct sbuf {
    char *s;
    size_t len, cap;
    int oom;
} sbuf;

static void sb_add(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_add(sbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (b->oom || w < 0 || SL_VEC_RESERVE(b->s, b->cap, b->len + (size_t)w + 1) != SL_OK) {
        b->oom = 1;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    b->len += (size_t)w;
}

static void sb_subject(sbuf *b, int *first, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void sb_subject(sbuf *b, int *first, const char *fmt, ...)
{
    char subj[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(subj, sizeof subj, fmt, ap);
    va_end(ap);
    sb_add(b, "%s\"%s\"", *first ? "" : ", ", subj);
    *first = 0;
}

/* The subjects of a client-account role's bucket access, as named in the
 * CLIENTS account: gets under the clients' JetStream prefix (no watch: a
 * push consumer would deliver in SLUICE's account), writes as named. */
static void client_kv_subjects(sbuf *b, int *first, const sl_natsauth_kv *k)
{
    const char *s = k->bucket;
    if (k->access & R) {
        sb_subject(b, first, SL_NATSAUTH_CLIENT_JS_PREFIX ".STREAM.INFO.KV_%s", s);
        sb_subject(b, first, SL_NATSAUTH_CLIENT_JS_PREFIX ".DIRECT.GET.KV_%s.>", s);
        sb_subject(b, first, SL_NATSAUTH_CLIENT_JS_PREFIX ".STREAM.MSG.GET.KV_%s", s);
    }
    if ((k->access & W) && k->key_prefix)
        sb_subject(b, first, "$KV.%s.%s.>", s, k->key_prefix);
    else if (k->access & W)
        sb_subject(b, first, "$KV.%s.>", s);
}

/* The JetStream API subjects of one bucket access. */
static void kv_subjects(sbuf *b, int *first, const sl_natsauth_kv *k)
{
    const char *s = k->bucket;
    if (k->access & (I | R | C))
        sb_subject(b, first, "$JS.API.STREAM.INFO.KV_%s", s);
    if (k->access & R) {
        sb_subject(b, first, "$JS.API.CONSUMER.CREATE.KV_%s", s);
        sb_subject(b, first, "$JS.API.CONSUMER.CREATE.KV_%s.>", s);
        sb_subject(b, first, "$JS.API.CONSUMER.DELETE.KV_%s.>", s);
        sb_subject(b, first, "$JS.API.CONSUMER.INFO.KV_%s.>", s);
        sb_subject(b, first, "$JS.API.DIRECT.GET.KV_%s.>", s);
        sb_subject(b, first, "$JS.API.STREAM.MSG.GET.KV_%s", s);
        sb_subject(b, first, "$JS.FC.KV_%s.>", s);
    }
    if (k->access & W) {
        if (k->key_prefix)
            sb_subject(b, first, "$KV.%s.%s.>", s, k->key_prefix);
        else
            sb_subject(b, first, "$KV.%s.>", s);
        if (!k->key_prefix)
            sb_subject(b, first, "$JS.API.STREAM.PURGE.KV_%s", s);
    }
    if (k->access & C) {
        sb_subject(b, first, "$JS.API.STREAM.CREATE.KV_%s", s);
        sb_subject(b, first, "$JS.API.STREAM.UPDATE.KV_%s", s);
    }
}

sl_status sl_natsauth_permissions(char **out, const sl_natsauth_role *r)
{
    sbuf b = {0};
    int first = 1;
    sb_add(&b, "{\n      publish: { allow: [");
    if (!r->client_account) {
        /* every service may list streams and read account limits (nats.c's KV bind) */
        sb_subject(&b, &first, "$JS.API.INFO");
        sb_subject(&b, &first, "$JS.API.STREAM.NAMES");
    }
    for (const sl_natsauth_kv *k = r->kv; k && k->bucket; k++) {
        if (r->client_account)
            client_kv_subjects(&b, &first, k);
        else
            kv_subjects(&b, &first, k);
    }
    for (const char *const *p = r->publish; p && *p; p++)
        sb_subject(&b, &first, "%s", *p);
    sb_add(&b, "] }\n      subscribe: { allow: [");
    first = 1;
    if (r->conn_name)
        sb_subject(&b, &first, "_INBOX_%s.>", r->conn_name);
    for (const char *const *p = r->subscribe; p && *p; p++)
        sb_subject(&b, &first, "%s", *p);
    sb_add(&b, "] }\n");
    if (r->allow_responses)
        sb_add(&b, "      allow_responses: true\n");
    sb_add(&b, "    }");
    if (b.oom) {
        free(b.s);
        return sl_error_set(SL_ERR_NOMEM, "nats permissions of %s", r->name);
    }
    *out = b.s;
    return SL_OK;
}

/* dir/<name>.nk: read it, or make it when missing; its public key. */
static sl_status role_key(char pub[SL_NKEY_PUBLIC_LEN + 1], const char *dir, const char *name)
{
    char path[4096], seed[SL_NKEY_SEED_LEN + 1];
    sl_status st;
    snprintf(path, sizeof path, "%s/%s.nk", dir, name);
    if (access(path, F_OK) == 0) {
        if ((st = sl_nkey_read_seed(seed, path)) == SL_OK)
            st = sl_nkey_public(pub, seed);
    } else if ((st = sl_nkey_generate(seed, pub)) == SL_OK) {
        st = sl_nkey_write_seed(path, seed);
    }
    explicit_bzero(seed, sizeof seed);
    return st;
}

static sl_status write_file(const char *path, const char *text)
{
    char tmp[4200];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
        return sl_error_set(SL_ERR_INVALID, "path too long: %s", path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return sl_error_set(SL_ERR_IO, "%s: %s", tmp, strerror(errno));
    int bad = fchmod(fileno(f), 0600) != 0 || fputs(text, f) < 0;
    bad |= fclose(f) != 0;
    if (bad || rename(tmp, path) != 0) {
        unlink(tmp);
        return sl_error_set(SL_ERR_IO, "%s: %s", path, strerror(errno));
    }
    return SL_OK;
}

/* What SLUICE exports and CLIENTS imports: the union over the client
 * roles (sluice/natsauth.h). exported is the subject in SLUICE, local its
 * name in CLIENTS. */
typedef struct boundary {
    char exported[160], local[160];
    bool stream, share;
} boundary;

static sl_status boundary_add(boundary **v, size_t *n, size_t *cap, bool stream, bool share, const char *exported,
                              const char *local)
{
    for (size_t i = 0; i < *n; i++)
        if (!strcmp((*v)[i].exported, exported))
            return SL_OK;
    if (SL_VEC_RESERVE(*v, *cap, *n + 1) != SL_OK)
        return sl_error_set(SL_ERR_NOMEM, "nats account boundary");
    boundary *e = &(*v)[(*n)++];
    snprintf(e->exported, sizeof e->exported, "%s", exported);
    snprintf(e->local, sizeof e->local, "%s", local);
    e->stream = stream;
    e->share = share;
    return SL_OK;
}

static sl_status boundary_of(boundary **v, size_t *n, const sl_natsauth_role *r)
{
    static const char *const gets[] = {"STREAM.INFO.KV_%s", "DIRECT.GET.KV_%s.>", "STREAM.MSG.GET.KV_%s"};
    char ex[160], loc[160], what[120];
    size_t cap = *n;
    sl_status st = SL_OK;

    for (const sl_natsauth_kv *k = r->kv; st == SL_OK && k && k->bucket; k++) {
        for (size_t g = 0; (k->access & R) && st == SL_OK && g < sizeof gets / sizeof gets[0]; g++) {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
            snprintf(what, sizeof what, gets[g], k->bucket);
#pragma GCC diagnostic pop
            snprintf(ex, sizeof ex, "$JS.API.%s", what);
            snprintf(loc, sizeof loc, SL_NATSAUTH_CLIENT_JS_PREFIX ".%s", what);
            st = boundary_add(v, n, &cap, false, false, ex, loc);
        }
        if ((k->access & W) && st == SL_OK) {
            if (k->key_prefix)
                snprintf(ex, sizeof ex, "$KV.%s.%s.>", k->bucket, k->key_prefix);
            else
                snprintf(ex, sizeof ex, "$KV.%s.>", k->bucket);
            st = boundary_add(v, n, &cap, false, false, ex, ex);
        }
    }
    for (const char *const *p = r->publish; st == SL_OK && p && *p; p++) {
        if (strncmp(*p, "sluice.api.", 11) != 0)
            continue;
        snprintf(ex, sizeof ex, SL_NATSAUTH_CLIENT_API_PREFIX "%s", *p + 11);
        st = boundary_add(v, n, &cap, false, true, ex, *p);
    }
    for (const char *const *p = r->subscribe; st == SL_OK && p && *p; p++)
        if (strncmp(*p, "_INBOX", 6) != 0)
            st = boundary_add(v, n, &cap, true, false, *p, *p);
    return st;
}

/* One user line of auth.conf. */
static sl_status add_user(sbuf *b, const char *dir, const char *seed_name, const sl_natsauth_role *r)
{
    char pub[SL_NKEY_PUBLIC_LEN + 1], *perm = NULL;
    sl_status st;
    if ((st = role_key(pub, dir, seed_name)) != SL_OK || (st = sl_natsauth_permissions(&perm, r)) != SL_OK)
        return st;
    sb_add(b, "      # %s: %s\n      { nkey: \"%s\", permissions: %s }\n", seed_name, r->doc, pub, perm);
    free(perm);
    return SL_OK;
}

static bool client_seed_name(const char *name)
{
    size_t n = strlen(name);
    return n >= 1 && n <= 32 && strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789-") == n;
}

/* The users of the client role beyond DIR/client.nk: DIR/client-<name>.nk. */
static sl_status further_clients(sbuf *b, const char *dir, const sl_natsauth_role *client)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    sl_status st = SL_OK;
    char **names = NULL;
    size_t n = 0, cap = 0;

    if (!d)
        return sl_error_set(SL_ERR_IO, "%s: %s", dir, strerror(errno));
    while (st == SL_OK && (e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (strncmp(e->d_name, "client-", 7) != 0 || len < 11 || strcmp(e->d_name + len - 3, ".nk") != 0)
            continue;
        char *name = strndup(e->d_name, len - 3);
        if (!name || SL_VEC_RESERVE(names, cap, n + 1) != SL_OK) {
            free(name);
            st = sl_error_set(SL_ERR_NOMEM, "client seeds of %s", dir);
            break;
        }
        names[n++] = name;
    }
    closedir(d);
    /* a stable order, so auth.conf only changes when the users do */
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
            char *t = names[j];
            names[j] = names[j - 1];
            names[j - 1] = t;
        }
    for (size_t i = 0; i < n; i++) {
        if (st == SL_OK && client_seed_name(names[i] + 7))
            st = add_user(b, dir, names[i], client);
        free(names[i]);
    }
    free(names);
    return st;
}

sl_status sl_natsauth_client_seed(const char *dir, const char *name, bool *created)
{
    char path[4096], seed[SL_NKEY_SEED_LEN + 1], pub[SL_NKEY_PUBLIC_LEN + 1];
    sl_status st;

    *created = false;
    if (!client_seed_name(name))
        return sl_error_set(SL_ERR_INVALID, "client name \"%s\": 1 to 32 of a-z, 0-9 and '-'", name);
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return sl_error_set(SL_ERR_IO, "%s: %s", dir, strerror(errno));
    snprintf(path, sizeof path, "%s/client-%s.nk", dir, name);
    if (access(path, F_OK) == 0)
        return SL_OK;
    if ((st = sl_nkey_generate(seed, pub)) == SL_OK && (st = sl_nkey_write_seed(path, seed)) == SL_OK)
        *created = true;
    explicit_bzero(seed, sizeof seed);
    return st;
}

/* The accounts block: SLUICE's users and exports, CLIENTS' users and imports. */
static sl_status accounts_block(sbuf *b, const char *dir, bool admin)
{
    char pub[SL_NKEY_PUBLIC_LEN + 1];
    boundary *bd = NULL;
    size_t nb = 0, nroles = sizeof roles / sizeof roles[0];
    const sl_natsauth_role *client = sl_natsauth_role_find("client");
    sl_status st = SL_OK;

    for (size_t i = 0; i < nroles && st == SL_OK; i++)
        if (roles[i].client_account)
            st = boundary_of(&bd, &nb, &roles[i]);
    sb_add(b, "accounts {\n  %s: {\n    jetstream: enabled\n    users = [\n", SL_NATSAUTH_ACCOUNT);
    for (size_t i = 0; i < nroles && st == SL_OK; i++)
        if (!roles[i].client_account)
            st = add_user(b, dir, roles[i].name, &roles[i]);
    if (st == SL_OK && admin && (st = role_key(pub, dir, "admin")) == SL_OK)
        sb_add(b, "      # admin: everything (tests, recovery)\n"
                  "      { nkey: \"%s\", permissions: { publish: \">\", subscribe: \">\" } }\n", pub);
    sb_add(b, "    ]\n    # what users' programs in %s may reach\n    exports = [\n", SL_NATSAUTH_CLIENT_ACCOUNT);
    for (size_t i = 0; i < nb; i++)
        sb_add(b, "      { %s: \"%s\", accounts: [%s] }\n", bd[i].stream ? "stream" : "service", bd[i].exported,
               SL_NATSAUTH_CLIENT_ACCOUNT);
    sb_add(b, "    ]\n  }\n  %s: {\n    users = [\n", SL_NATSAUTH_CLIENT_ACCOUNT);
    for (size_t i = 0; i < nroles && st == SL_OK; i++)
        if (roles[i].client_account)
            st = add_user(b, dir, roles[i].name, &roles[i]);
    if (st == SL_OK)
        st = further_clients(b, dir, client);
    sb_add(b, "    ]\n    # share: the requester's account and user in the Nats-Request-Info header\n"
              "    imports = [\n");
    for (size_t i = 0; i < nb; i++) {
        if (bd[i].stream)
            sb_add(b, "      { stream: { account: %s, subject: \"%s\" } }\n", SL_NATSAUTH_ACCOUNT, bd[i].exported);
        else
            sb_add(b, "      { service: { account: %s, subject: \"%s\" }, to: \"%s\"%s }\n", SL_NATSAUTH_ACCOUNT,
                   bd[i].exported, bd[i].local, bd[i].share ? ", share: true" : "");
    }
    sb_add(b, "    ]\n  }\n}\n");
    free(bd);
    return st;
}

sl_status sl_natsauth_provision(const char *dir, bool admin)
{
    char path[4096];
    sl_status st = SL_OK;
    sbuf b = {0};

    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return sl_error_set(SL_ERR_IO, "%s: %s", dir, strerror(errno));
    if (chmod(dir, 0700) != 0)
        return sl_error_set(SL_ERR_IO, "%s: %s", dir, strerror(errno));
    sb_add(&b, "# Generated by Sluice (sluice/natsauth.h): one nkey user per role, least privilege;\n"
               "# Sluice's processes in account %s, users' programs in %s.\n"
               "# Seeds are in this directory (<role>.nk); delete one and provision again to rotate it.\n",
           SL_NATSAUTH_ACCOUNT, SL_NATSAUTH_CLIENT_ACCOUNT);
    st = accounts_block(&b, dir, admin);
    if (st == SL_OK && b.oom)
        st = sl_error_set(SL_ERR_NOMEM, "nats auth config");
    if (st == SL_OK) {
        snprintf(path, sizeof path, "%s/auth.conf", dir);
        st = write_file(path, b.s);
    }
    free(b.s);
    return st;
}

sl_status sl_natsauth_server_conf(const char *path, const char *extra)
{
    char buf[4096];
    size_t n;
    sl_status st = SL_OK;
    FILE *in = NULL, *out = fopen(path, "w");
    if (!out)
        return sl_error_set(SL_ERR_IO, "%s: %s", path, strerror(errno));
    if (extra && !(in = fopen(extra, "r"))) {
        st = sl_error_set(SL_ERR_IO, "%s: %s", extra, strerror(errno));
        goto out;
    }
    fprintf(out, "# The accounts and users (sluice/natsauth.h)%s%s.\ninclude \"auth.conf\"\n", extra ? ", then " : "",
            extra ? extra : "");
    while (in && (n = fread(buf, 1, sizeof buf, in)) > 0)
        if (fwrite(buf, 1, n, out) != n)
            break;
    if (ferror(out) || (in && ferror(in)))
        st = sl_error_set(SL_ERR_IO, "%s: write failed", path);
out:
    if (in)
        fclose(in);
    if (fclose(out) != 0 && st == SL_OK)
        st = sl_error_set(SL_ERR_IO, "%s: %s", path, strerror(errno));
    return st;
}

sl_status sl_natsauth_requester(char *out, size_t n, natsMsg *msg)
{
    const char **values = NULL, *acc, *user;
    int count = 0;
    sl_codec_stream *s = NULL;
    sl_codec_doc *doc = NULL;
    sl_status st;

    out[0] = '\0';
    if (natsMsgHeader_Values(msg, SL_NATSAUTH_REQUEST_INFO_HDR, &values, &count) != NATS_OK || count != 1) {
        free((void *)values);
        return sl_error_set(SL_ERR_INVALID,
                            "%d %s headers where nats-server sets one (is the %s account's import of %s* missing "
                            "share: true?)",
                            count, SL_NATSAUTH_REQUEST_INFO_HDR, SL_NATSAUTH_CLIENT_ACCOUNT,
                            SL_NATSAUTH_CLIENT_API_PREFIX);
    }
    st = sl_codec_stream_new(&s, values[0], strlen(values[0]), SL_NATSAUTH_REQUEST_INFO_HDR);
    if (st == SL_OK && (st = sl_codec_stream_next(s, &doc, NULL)) == SL_OK && doc == NULL)
        st = SL_ERR_PARSE;
    acc = doc ? sl_codec_doc_scalar(doc, "acc") : NULL;
    user = doc ? sl_codec_doc_scalar(doc, "user") : NULL;
    if (st != SL_OK || !acc || !user || !acc[0] || !user[0])
        st = sl_error_set(SL_ERR_INVALID, "%s header without \"acc\" and \"user\" (share: true on the import?)",
                          SL_NATSAUTH_REQUEST_INFO_HDR);
    else if (snprintf(out, n, "%s/%s", acc, user) >= (int)n)
        st = sl_error_set(SL_ERR_INVALID, "%s: account and user longer than %zu bytes", SL_NATSAUTH_REQUEST_INFO_HDR,
                          n - 1);
    if (st != SL_OK)
        out[0] = '\0';
    sl_codec_doc_free(doc);
    sl_codec_stream_free(s);
    free((void *)values);
    return st;
}
