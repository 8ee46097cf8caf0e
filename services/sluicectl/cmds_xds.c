/* cmds_xds.c - sluicectl xds dump: what the sluice_xds bucket holds for a proxy, as sluice-xds serves it. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ctl.h"
#include "envoy/config/core/v3/base.pb-c.h"
#include "sluice/codec.h"
#include "sluice/kv.h"
#include "sluice/types.h"
#include "sluice/v1/xds.pb-c.h"
#include "sluice/xds.h"
#include "sluice/xds_keys.h"

/* ---- xds dump -------------------------------------------------------------- */

/* The type t names on the command line: its token ("cluster"), short name
 * ("cds"), plural ("clusters"), message ("Cluster", or any text holding
 * "envoy.config.cluster.v3.Cluster"); -1 when none. */
static int xds_type_index(const char *t)
{
    for (int i = 0; i < SL_XDS_TYPE_COUNT; i++) {
        const char *tok = sl_xds_type_token((sl_xds_type)i);
        const char *msg = sl_xds_type_url((sl_xds_type)i) + strlen(SL_XDS_TYPE_PREFIX);
        size_t tl = strlen(tok);
        if (strcasecmp(t, tok) == 0 || strcasecmp(t, sl_xds_type_short((sl_xds_type)i)) == 0 ||
            (strncasecmp(t, tok, tl) == 0 && strcasecmp(t + tl, "s") == 0) ||
            strcasecmp(t, strrchr(msg, '.') + 1) == 0 || strstr(t, msg))
            return i;
    }
    return -1;
}

/* ---- redaction ---- */

/* --show-secrets: print key material as stored (off: redacted). */
static bool xds_show_secrets;

#define XDS_REDACTED "[redacted: sluicectl xds dump --show-secrets shows it]"

/* Whether a DataSource field of this name holds key material: a TLS
 * private key (and its password), a generic secret, session ticket keys. */
static bool xds_secret_field(const char *name)
{
    return strcmp(name, "private_key") == 0 || strcmp(name, "password") == 0 || strcmp(name, "secret") == 0 ||
           strcmp(name, "keys") == 0;
}

/* Replaces the inline value of DataSource d (bytes or string) with a
 * placeholder; a file name or environment variable stays. */
static void xds_redact_source(ProtobufCMessage *d)
{
    Envoy__Config__Core__V3__DataSource *ds = (Envoy__Config__Core__V3__DataSource *)d;
    char *placeholder;
    if (ds->specifier_case != ENVOY__CONFIG__CORE__V3__DATA_SOURCE__SPECIFIER_INLINE_BYTES &&
        ds->specifier_case != ENVOY__CONFIG__CORE__V3__DATA_SOURCE__SPECIFIER_INLINE_STRING)
        return;
    if (!(placeholder = strdup(XDS_REDACTED)))
        return; /* cannot show it redacted: dropped instead */
    if (ds->specifier_case == ENVOY__CONFIG__CORE__V3__DATA_SOURCE__SPECIFIER_INLINE_BYTES) {
        if (ds->inline_bytes.data)
            memset(ds->inline_bytes.data, 0, ds->inline_bytes.len);
        free(ds->inline_bytes.data);
        ds->inline_bytes.data = NULL;
        ds->inline_bytes.len = 0;
    } else {
        memset(ds->inline_string, 0, strlen(ds->inline_string));
        free(ds->inline_string);
    }
    ds->specifier_case = ENVOY__CONFIG__CORE__V3__DATA_SOURCE__SPECIFIER_INLINE_STRING;
    ds->inline_string = placeholder;
}

static void xds_redact(ProtobufCMessage *m);

static void xds_redact_field(const ProtobufCFieldDescriptor *f, ProtobufCMessage *sub)
{
    if (!sub)
        return;
    if (sub->descriptor == &envoy__config__core__v3__data_source__descriptor) {
        if (xds_secret_field(f->name))
            xds_redact_source(sub);
        return;
    }
    xds_redact(sub);
}

/* Redacts key material anywhere in m (unpacked with the default
 * allocator): every DataSource named as xds_secret_field() says. Any
 * fields stay packed bytes (Sluice serves keys only in Secrets). */
static void xds_redact(ProtobufCMessage *m)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        char *at = (char *)m + f->offset;
        if (f->type != PROTOBUF_C_TYPE_MESSAGE)
            continue;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(size_t *)(void *)((char *)m + f->quantifier_offset);
            ProtobufCMessage **v = *(ProtobufCMessage ***)(void *)at;
            for (size_t k = 0; k < n; k++)
                xds_redact_field(f, v[k]);
            continue;
        }
        if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) && *(uint32_t *)(void *)((char *)m + f->quantifier_offset) != f->id)
            continue;
        xds_redact_field(f, *(ProtobufCMessage **)(void *)at);
    }
}

/* Prints one resource as `xds dump` shows it (key material redacted
 * unless --show-secrets); 0, or 1 when it does not decode. */
static int xds_print(int ti, const char *label, const char *name, uint64_t version, const uint8_t *data, size_t len,
                     const char *out, size_t *shown)
{
    const char *url = sl_xds_type_url((sl_xds_type)ti), *msg = url + strlen(SL_XDS_TYPE_PREFIX);
    const ProtobufCMessageDescriptor *d = sl_types_find(msg);
    ProtobufCMessage *m = d ? ctl_unpack(d, data, len) : NULL;
    sl_codec_options o = {0};
    char *text = NULL;
    size_t tl;
    int code = 0;
    if (!m) {
        fprintf(stderr, "error: %s: not a valid %s\n", label, msg);
        return 1;
    }
    o.resolver = sl_types_find_url;
    if (!xds_show_secrets)
        xds_redact(m);
    if ((out[0] == 'j' ? sl_codec_encode_json(&text, &tl, m, &o) : sl_codec_encode_yaml(&text, &tl, m, &o)) != SL_OK) {
        fprintf(stderr, "error: %s: %s\n", label, sl_error_msg());
        code = 1;
    } else {
        if (out[0] == 'j')
            printf("%s{\"@type\": \"%s\", \"name\": \"%s\", \"version\": "
                   "\"%" PRIu64 "\", \"resource\": %s}",
                   *shown ? ",\n" : "[\n", url, name, version, text);
        else
            printf("%s# %s %s (version %" PRIu64 ")\n'@type': %s\n%s", *shown ? "---\n" : "",
                   sl_xds_type_token((sl_xds_type)ti), name, version, url, text);
        (*shown)++;
    }
    free(text);
    protobuf_c_message_free_unpacked(m, NULL);
    return code;
}

/* The value of key, which the commit names at rev; NULL (with a message)
 * when it is gone. A newer value is shown with a warning. */
static uint8_t *xds_get(sl_kv *kv, const char *key, uint64_t rev, size_t *len)
{
    sl_kv_entry e = {0};
    uint8_t *v;
    if (sl_kv_get(&e, kv, key) != SL_OK) {
        fprintf(stderr, "error: %s (revision %" PRIu64 ") is gone\n", key, rev);
        return NULL;
    }
    if (e.revision != rev)
        fprintf(stderr, "warning: %s is at revision %" PRIu64 ", the commit names %" PRIu64 " (a newer commit is "
                "coming)\n", key, e.revision, rev);
    if ((v = malloc(e.len ? e.len : 1)))
        memcpy(v, e.value, e.len);
    *len = e.len;
    sl_kv_entry_deinit(&e);
    return v;
}

/* A route stored in parts being assembled by xds_dump_commit(): its head
 * and the parts so far (want of them). */
typedef struct dump_route {
    uint8_t *head, **pv;
    size_t head_len, *pl, np, want;
    uint64_t head_rev;
    char name[SL_XDS_TOKEN_MAX];
} dump_route;

static void dump_route_clear(dump_route *d)
{
    for (size_t q = 0; d->pv && q < d->np; q++)
        free(d->pv[q]);
    free(d->pv);
    free(d->pl);
    free(d->head);
    d->pv = NULL;
    d->pl = NULL;
    d->head = NULL;
    d->np = d->want = 0;
}

/* Entry en of a manifest, a part of route d: fetched, and once the last
 * part is in, the route joined and printed. 0, or 1 on an error. */
static int dump_part(sl_kv *kv, const char *full, dump_route *d, const Sluice__V1__XdsEntry *en, int code,
                     const char *out, size_t *shown)
{
    char key[SL_XDS_KEY_MAX + 32];
    if (sl_xds_key_vhost(key, sizeof key, full, d->name, en->name) != SL_OK) {
        fprintf(stderr, "error: %s\n", sl_error_msg());
        d->pv[d->np] = NULL;
    } else {
        d->pv[d->np] = xds_get(kv, key, en->revision, &d->pl[d->np]);
    }
    if (!d->pv[d->np])
        code = 1;
    if (++d->np < d->want)
        return code;
    uint8_t *whole = NULL;
    size_t wl = 0;
    int ok = !code && d->head;
    for (size_t q = 0; q < d->np && ok; q++)
        ok = d->pv[q] != NULL;
    if (ok && sl_xds_route_join(&whole, &wl, d->head, d->head_len, (const uint8_t *const *)d->pv, d->pl, d->np) ==
                  SL_OK &&
        sl_xds_key_resource(key, SL_XDS_KEY_MAX, full, SL_XDS_ROUTE, d->name) == SL_OK) {
        snprintf(key + strlen(key), 32, " (%zu parts)", d->np);
        code |= xds_print(SL_XDS_ROUTE, key, d->name, d->head_rev, whole, wl, out, shown);
    }
    free(whole);
    dump_route_clear(d);
    return code;
}

/* Dumps what the proxy's commit names (full: the proxy's name), assembling
 * routes stored in parts. -1 when there is no commit that decodes. */
static int xds_dump_commit(sl_kv *kv, const char *full, int tidx, const char *out, size_t *shown)
{
    char key[SL_XDS_KEY_MAX];
    sl_kv_entry ce = {0};
    Sluice__V1__XdsCommit *cm;
    dump_route d = {0};
    int code = 0;
    if (sl_xds_key_commit(key, sizeof key, full) != SL_OK || sl_kv_get(&ce, kv, key) != SL_OK)
        return -1;
    if (!(cm = ctl_unpack(&sluice__v1__xds_commit__descriptor, ce.value, ce.len))) {
        fprintf(stderr, "warning: %s is not a sluice.v1.XdsCommit; showing every key instead\n", key);
        sl_kv_entry_deinit(&ce);
        return -1;
    }
    fprintf(stderr, "# %s commit revision %" PRIu64 " (kv revision %" PRIu64 "): %zu manifest chunks\n", full,
            cm->revision, ce.revision, cm->n_chunks);
    sl_kv_entry_deinit(&ce);
    for (size_t i = 0; i < cm->n_chunks; i++) {
        const Sluice__V1__XdsChunkRef *ref = cm->chunks[i];
        sl_xds_type ti;
        size_t len;
        if (sl_xds_type_from_token(&ti, ref->type) != SL_OK)
            continue;
        uint8_t *v = sl_xds_key_manifest(key, sizeof key, full, ti, ref->id) == SL_OK
                         ? xds_get(kv, key, ref->revision, &len) : NULL;
        Sluice__V1__XdsManifest *m = v ? ctl_unpack(&sluice__v1__xds_manifest__descriptor, v, len) : NULL;
        free(v);
        if (!m) {
            fprintf(stderr, "error: %s: not a sluice.v1.XdsManifest\n", key);
            code = 1;
            continue;
        }
        for (size_t k = 0; k < m->n_entries; k++) {
            const Sluice__V1__XdsEntry *en = m->entries[k];
            if (d.want) { /* a part of d.name */
                code = dump_part(kv, full, &d, en, code, out, shown);
                continue;
            }
            if (tidx >= 0 && (int)ti != tidx)
                continue;
            if (sl_xds_key_resource(key, sizeof key, full, ti, en->name) != SL_OK) {
                fprintf(stderr, "error: %s\n", sl_error_msg());
                code = 1;
                continue;
            }
            if (!(v = xds_get(kv, key, en->revision, &len))) {
                code = 1;
                continue;
            }
            if (en->parts) {
                d.head = v;
                d.head_len = len;
                d.head_rev = en->revision;
                d.want = en->parts;
                snprintf(d.name, sizeof d.name, "%s", en->name);
                d.pv = calloc(d.want, sizeof *d.pv);
                d.pl = calloc(d.want, sizeof *d.pl);
                if (!d.pv || !d.pl)
                    return 1;
                continue;
            }
            code |= xds_print((int)ti, key, en->name, en->revision, v, len, out, shown);
            free(v);
        }
        sluice__v1__xds_manifest__free_unpacked(m, NULL);
    }
    dump_route_clear(&d);
    sluice__v1__xds_commit__free_unpacked(cm, NULL);
    return code;
}

int ctl_cmd_xds(ctl *c, int argc, char **argv)
{
    const char *proxy = NULL, *type = NULL, *out = "yaml", *bucket = "sluice_xds";
    int code = 1, tidx = -1;
    sl_nats *nc = NULL;
    sl_kv *kv = NULL;
    char **keys = NULL;
    size_t nkeys = 0, shown = 0;

    if (argc < 2 || strcmp(argv[1], "dump") != 0) {
        if (argc >= 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
            printf("Usage: sluicectl xds dump --proxy NAMESPACE~PROXY [--type T] [-o yaml|json] [--show-secrets]\n");
            return 0;
        }
        return ctl_usage_error("xds", "usage: sluicectl xds dump --proxy P [--type T]");
    }
    for (int i = 2; i < argc; i++) {
        const char *v;
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            printf("Usage: sluicectl xds dump --proxy NAMESPACE~PROXY [--type T] [-o yaml|json] [--show-secrets]\n"
                   "T: listener (lds), route (rds), cluster (cds), endpoint (eds), secret (sds).\n"
                   "Private keys (and other key material) are shown as " XDS_REDACTED "\n"
                   "unless --show-secrets is given.\n"
                   "Proxy names are \"<namespace>~<proxy>\" (Envoy's node.metadata.role);\n"
                   "a name without '~' means default~NAME.\n");
            return 0;
        }
        if (ctl_opt(argc, argv, &i, "-p", "--proxy", &v) && v)
            proxy = v;
        else if (ctl_opt(argc, argv, &i, "-t", "--type", &v) && v)
            type = v;
        else if (ctl_opt(argc, argv, &i, "-o", "--output", &v) && v)
            out = v;
        else if (ctl_opt(argc, argv, &i, NULL, "--bucket", &v) && v)
            bucket = v;
        else if (strcmp(argv[i], "--show-secrets") == 0)
            xds_show_secrets = true;
        else
            return ctl_usage_error("xds dump", "unknown or incomplete argument \"%s\"", argv[i]);
    }
    if (!proxy)
        return ctl_usage_error("xds dump", "--proxy is required");
    if (type && (tidx = xds_type_index(type)) < 0)
        return ctl_usage_error("xds dump", "unknown type \"%s\" (listener, route, cluster, "
                                           "endpoint, secret)", type);
    if (strcmp(out, "yaml") != 0 && strcmp(out, "json") != 0)
        return ctl_usage_error("xds dump", "-o takes yaml or json");
    char full[512];
    snprintf(full, sizeof(full), "%s%s", strchr(proxy, '~') ? "" : "default~", proxy);
    if (!(nc = ctl_connect(c)))
        return 1;
    if (sl_kv_bind(&kv, nc, bucket) != SL_OK) {
        fprintf(stderr, "error: no %s bucket: has the translator run?\n", bucket);
        goto out;
    }
    /* What the commit names (as sluice-xds serves it); without a commit,
     * every resource key of the proxy. */
    if ((code = xds_dump_commit(kv, full, tidx, out, &shown)) >= 0)
        goto done;
    sl_kv_keys(&keys, &nkeys, kv, 5000);
    qsort(keys, nkeys, sizeof(char *), ctl_cmp_str);
    code = 0;
    for (size_t i = 0; i < nkeys; i++) {
        sl_xds_key k;
        sl_kv_entry e = {0};
        if (sl_xds_key_parse(&k, keys[i]) != SL_OK || k.kind != SL_XDS_KEY_RESOURCE || strcmp(k.proxy, full) != 0)
            continue; /* not a resource of the proxy: the commit, manifest chunks, route parts */
        if (tidx >= 0 && (int)k.type != tidx)
            continue;
        if (sl_kv_get(&e, kv, keys[i]) != SL_OK)
            continue;
        code |= xds_print((int)k.type, keys[i], k.name, e.revision, e.value, e.len, out, &shown);
        sl_kv_entry_deinit(&e);
    }
done:
    if (out[0] == 'j')
        printf("%s]\n", shown ? "\n" : "[");
    if (!shown)
        fprintf(stderr, "No xDS resources for proxy %s%s%s\n", full, type ? " of type " : "",
                type ? type : "");
out:
    sl_kv_keys_free(keys, nkeys);
    sl_kv_free(kv);
    ctl_close(nc);
    return code;
}
