/* natsauth.c - the role table of NATS least privilege, its expansion into
 * JetStream API subjects, and provisioning of seeds and auth.conf. */
#include "sluice/natsauth.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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
static const char *const sub_config_watcher[] = {"sluice.api.apply", "sluice.api.delete", NULL};

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
 * when it starts first, as the other readers of sluice_config do); no reports. */
static const sl_natsauth_kv kv_upstream_discovery[] = {
    {"sluice_config", R | W | C, "Upstream"}, {SL_LEASES_BUCKET, R | W | C, "upstream-discovery"},
    HEARTBEAT("sluice-upstream-discovery"), {NULL, 0, NULL}};

/* The reporter also consumes the reports stream through a durable push
 * consumer delivering on _SLUICE.reports.<durable>. */
static const sl_natsauth_kv kv_reporter[] = {
    {"sluice_config", R | C, NULL}, {"sluice_status", R | W | C, NULL}, HEARTBEAT("sluice-reporter"), {NULL, 0, NULL}};
static const char *const pub_reporter[] = {
    "$JS.API.STREAM.INFO.SLUICE_REPORTS",       "$JS.API.STREAM.CREATE.SLUICE_REPORTS",
    "$JS.API.STREAM.UPDATE.SLUICE_REPORTS",     "$JS.API.CONSUMER.DURABLE.CREATE.SLUICE_REPORTS.>",
    "$JS.API.CONSUMER.CREATE.SLUICE_REPORTS.>", "$JS.API.CONSUMER.INFO.SLUICE_REPORTS.>",
    "$JS.ACK.SLUICE_REPORTS.>",                 "$JS.FC.SLUICE_REPORTS.>",
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

/* Clients in any language: the apply API and statuses; replies on the
 * standard _INBOX prefix (no Sluice process uses it). */
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
     kv_config_watcher, pub_config_watcher, sub_config_watcher, true},
    {"secret-watcher", "sluice-secret-watcher", "secret files, the secret API -> sluice_secrets (the only writer)",
     kv_secret_watcher, pub_secret_watcher, sub_secret_watcher, true},
    {"translator", "sluice-translator", "config, secrets, endpoints -> sluice_xds (the only writer)",
     kv_translator, pub_translator, NULL, false},
    {"xds", "sluice-xds", "sluice_xds -> Envoy; proxies' state; NACK reports", kv_xds, pub_xds, NULL, false},
    {"endpoint-discovery", "sluice-endpoint-discovery", "dns Upstreams -> sluice_endpoints (the only writer)",
     kv_endpoint_discovery, pub_endpoint_discovery, NULL, false},
    {"function-discovery", "sluice-function-discovery",
     "Upstreams' OpenAPI documents, gRPC reflection, AWS Lambda -> their functions", kv_function_discovery,
     pub_function_discovery, NULL, false},
    {"upstream-discovery", "sluice-upstream-discovery",
     "services in the etcd registry and DNS-SD -> Upstreams in sluice_config", kv_upstream_discovery, NULL, NULL,
     false},
    {"reporter", "sluice-reporter", "reports -> sluice_status (the only writer)", kv_reporter, pub_reporter,
     sub_reporter, false},
    {"sluicectl", "sluicectl", "operators: read everything but secrets, apply through the API", kv_sluicectl,
     pub_sluicectl, sub_sluicectl, false},
    {"client", NULL, "users' programs: the apply API and statuses", kv_client, pub_client, sub_client, false},
    {"config-writer", NULL, "users' programs writing the config bucket directly (validated, reported)",
     kv_config_writer, pub_client, sub_config_writer, false},
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
    /* every client may list streams and read account limits (nats.c's KV bind) */
    sb_subject(&b, &first, "$JS.API.INFO");
    sb_subject(&b, &first, "$JS.API.STREAM.NAMES");
    for (const sl_natsauth_kv *k = r->kv; k && k->bucket; k++)
        kv_subjects(&b, &first, k);
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

sl_status sl_natsauth_provision(const char *dir, bool admin)
{
    char pub[SL_NKEY_PUBLIC_LEN + 1], path[4096];
    sl_status st = SL_OK;
    sbuf b = {0};

    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return sl_error_set(SL_ERR_IO, "%s: %s", dir, strerror(errno));
    if (chmod(dir, 0700) != 0)
        return sl_error_set(SL_ERR_IO, "%s: %s", dir, strerror(errno));
    sb_add(&b, "# Generated by Sluice (sluice/natsauth.h): one nkey user per role, least privilege.\n"
               "# Seeds are in this directory (<role>.nk); delete one and provision again to rotate it.\n"
               "authorization {\n  users = [\n");
    for (size_t i = 0; i < sizeof roles / sizeof roles[0] && st == SL_OK; i++) {
        char *perm = NULL;
        if ((st = role_key(pub, dir, roles[i].name)) != SL_OK ||
            (st = sl_natsauth_permissions(&perm, &roles[i])) != SL_OK)
            break;
        sb_add(&b, "    # %s: %s\n    { nkey: \"%s\", permissions: %s }\n", roles[i].name, roles[i].doc, pub, perm);
        free(perm);
    }
    if (st == SL_OK && admin && (st = role_key(pub, dir, "admin")) == SL_OK)
        sb_add(&b, "    # admin: everything (tests, recovery)\n"
                   "    { nkey: \"%s\", permissions: { publish: \">\", subscribe: \">\" } }\n", pub);
    sb_add(&b, "  ]\n}\n");
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
    fprintf(out, "# The authorization block (sluice/natsauth.h)%s%s.\ninclude \"auth.conf\"\n", extra ? ", then " : "",
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
