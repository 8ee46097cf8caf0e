/* cmds.c - sluicectl apply, delete, get, status, xds dump, check. */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <jansson.h>

#include "sluice/config.h"
#include "ctl.h"
#include "sluice/codec.h"
#include "sluice/envelope.h"
#include "sluice/file.h"
#include "sluice/kinds.h"
#include "sluice/kv.h"
#include "sluice/lease.h"
#include "sluice/resource.h"
#include "sluice/service.h"
#include "sluice/types.h"
#include "sluice/v1/events.pb-c.h"
#include "sluice/v1/gateway.pb-c.h"
#include "sluice/v1/upstream.pb-c.h"
#include "sluice/v1/virtual_service.pb-c.h"
#include "sluice/v1/xds.pb-c.h"
#include "sluice/xds.h"

#define HDR_FILENAME "Sluice-Filename"
#define HDR_DRY_RUN "Sluice-Dry-Run"

static const char *state_name(int s)
{
    switch (s) {
    case SLUICE__V1__STATUS__STATE__Accepted: return "Accepted";
    case SLUICE__V1__STATUS__STATE__Rejected: return "Rejected";
    case SLUICE__V1__STATUS__STATE__Warning: return "Warning";
    default: return "Pending";
    }
}

/* ---- apply / delete ------------------------------------------------------ */

static bool is_config_file(const char *n)
{
    size_t l = strlen(n);
    return n[0] != '.' && ((l > 5 && strcmp(n + l - 5, ".yaml") == 0) ||
                           (l > 4 && strcmp(n + l - 4, ".yml") == 0) ||
                           (l > 5 && strcmp(n + l - 5, ".json") == 0));
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Expands -f arguments (files, directories, "-") into a sorted list. */
static int expand_paths(char ***out, size_t *n, char **args, size_t nargs)
{
    *out = NULL;
    *n = 0;
    for (size_t i = 0; i < nargs; i++) {
        struct stat sb;
        if (strcmp(args[i], "-") != 0 && stat(args[i], &sb) != 0) {
            fprintf(stderr, "error: the path \"%s\" does not exist\n", args[i]);
            return -1;
        }
        size_t first = *n;
        if (strcmp(args[i], "-") != 0 && S_ISDIR(sb.st_mode)) {
            DIR *d = opendir(args[i]);
            for (struct dirent *de; d && (de = readdir(d));) {
                if (!is_config_file(de->d_name))
                    continue;
                char **p = realloc(*out, (*n + 1) * sizeof(*p));
                size_t l = strlen(args[i]) + strlen(de->d_name) + 2;
                if (!p)
                    return -1;
                *out = p;
                (*out)[*n] = malloc(l);
                snprintf((*out)[*n], l, "%s/%s", args[i], de->d_name);
                (*n)++;
            }
            if (d)
                closedir(d);
            qsort(*out + first, *n - first, sizeof(char *), cmp_str);
        } else {
            char **p = realloc(*out, (*n + 1) * sizeof(*p));
            if (!p)
                return -1;
            *out = p;
            (*out)[(*n)++] = strdup(args[i]);
        }
    }
    return 0;
}

static void free_paths(char **p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(p[i]);
    free(p);
}

/* Sends one body to subject and returns the reply (or NULL, printed). */
static natsMsg *api_request(ctl *c, sl_nats *nc, const char *subject, sl_content_type ct,
                            const char *proto, const void *data, size_t len, const char *fname,
                            bool dry_run)
{
    natsMsg *m = NULL, *reply = NULL;
    sl_envelope_opts eo = {NULL, "sluicectl", NULL};
    if (sl_envelope_msg_new(&m, subject, ct, proto, data, len, &eo) != SL_OK) {
        fprintf(stderr, "error: %s\n", sl_error_msg());
        return NULL;
    }
    if (fname)
        natsMsgHeader_Set(m, HDR_FILENAME, fname);
    if (dry_run)
        natsMsgHeader_Set(m, HDR_DRY_RUN, "true");
    natsStatus s = natsConnection_RequestMsg(&reply, sl_nats_conn(nc), m, c->timeout_ms);
    natsMsg_Destroy(m);
    if (s == NATS_NO_RESPONDERS) {
        fprintf(stderr, "error: nothing answers on %s: is sluice-config-watcher running?\n", subject);
        return NULL;
    }
    if (s != NATS_OK) {
        fprintf(stderr, "error: %s: %s\n", subject, natsStatus_GetText(s));
        return NULL;
    }
    return reply;
}

/* Prints kubectl-style lines for the results; returns the number rejected. */
static int print_results(Sluice__V1__ResourceResult **rs, size_t n, bool dry_run, bool deleting)
{
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        const Sluice__V1__ResourceResult *r = rs[i];
        char kref[128];
        const Sluice__V1__ObjectRef *o = r->resource;
        ctl_kind_ref(kref, sizeof(kref), o && o->kind[0] ? o->kind : "unknown");
        const char *ns = o ? o->namespace_ : "", *name = o && o->name[0] ? o->name : "(unnamed)";
        for (size_t j = 0; j < r->n_warnings; j++)
            fprintf(stderr, "Warning: %s\n", r->warnings[j]);
        if (r->state == SLUICE__V1__STATUS__STATE__Rejected) {
            bad++;
            fprintf(stderr, "error: %s/%s/%s %s:\n", kref, ns, name,
                    deleting ? "could not be deleted" : "is invalid");
            for (size_t j = 0; j < r->n_errors; j++)
                fprintf(stderr, "  %s\n", r->errors[j]);
            continue;
        }
        const char *verb = deleting       ? "deleted"
                           : r->unchanged ? "unchanged"
                           : r->created   ? "created"
                                          : "configured";
        printf("%s/%s/%s %s%s\n", kref, ns, name, verb, dry_run ? " (server dry run)" : "");
    }
    return bad;
}

int ctl_cmd_apply(ctl *c, int argc, char **argv)
{
    char **files = NULL, **paths = NULL;
    size_t nfiles = 0, npaths = 0;
    bool dry_run = false;
    int code = 1;
    sl_nats *nc = NULL;

    files = calloc((size_t)argc, sizeof(char *));
    for (int i = 1; i < argc; i++) {
        const char *v;
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            printf("Usage: sluicectl apply -f FILE|DIR|- [-f ...] [--dry-run]\n"
                   "Creates or updates the resources in YAML/JSON files through the apply API\n"
                   "(sluice.api.apply). A directory applies every *.yaml, *.yml, *.json in it.\n");
            free(files);
            return 0;
        }
        if (ctl_opt(argc, argv, &i, "-f", "--filename", &v)) {
            if (!v) {
                free(files);
                return ctl_usage_error("apply", "flag needs an argument: -f");
            }
            files[nfiles++] = (char *)v;
        } else if (strcmp(argv[i], "--dry-run") == 0 || strcmp(argv[i], "--dry-run=server") == 0) {
            dry_run = true;
        } else {
            free(files);
            return ctl_usage_error("apply", "unknown argument \"%s\"", argv[i]);
        }
    }
    if (nfiles == 0) {
        free(files);
        return ctl_usage_error("apply", "must specify -f");
    }
    if (expand_paths(&paths, &npaths, files, nfiles) != 0)
        goto out;
    if (!(nc = ctl_connect(c)))
        goto out;
    code = 0;
    for (size_t i = 0; i < npaths; i++) {
        size_t len;
        char *text;
        if (sl_file_read(&text, &len, paths[i]) != SL_OK) {
            fprintf(stderr, "error: %s\n", sl_error_msg());
            code = 1;
            continue;
        }
        size_t pl = strlen(paths[i]);
        sl_content_type ct = pl > 5 && strcmp(paths[i] + pl - 5, ".json") == 0 ? SL_CT_JSON
                                                                                : SL_CT_YAML;
        const char *fname = strcmp(paths[i], "-") == 0 ? "<stdin>" : paths[i];
        natsMsg *reply = api_request(c, nc, "sluice.api.apply", ct, NULL, text, len, fname, dry_run);
        free(text);
        if (!reply) {
            code = 1;
            break;
        }
        Sluice__V1__ApplyResponse *resp = sluice__v1__apply_response__unpack(
            NULL, (size_t)natsMsg_GetDataLength(reply), (const uint8_t *)natsMsg_GetData(reply));
        natsMsg_Destroy(reply);
        if (!resp) {
            fprintf(stderr, "error: %s: the reply is not an ApplyResponse\n", fname);
            code = 1;
            continue;
        }
        if (resp->error[0]) {
            fprintf(stderr, "error: %s\n", resp->error);
            code = 1;
        }
        if (print_results(resp->results, resp->n_results, dry_run, false))
            code = 1;
        sluice__v1__apply_response__free_unpacked(resp, NULL);
    }
out:
    free_paths(paths, npaths);
    free(files);
    ctl_close(nc);
    return code;
}

static int delete_reply(natsMsg *reply, bool dry_run)
{
    int code = 0;
    Sluice__V1__DeleteResponse *resp = sluice__v1__delete_response__unpack(
        NULL, (size_t)natsMsg_GetDataLength(reply), (const uint8_t *)natsMsg_GetData(reply));
    if (!resp) {
        fprintf(stderr, "error: the reply is not a DeleteResponse\n");
        return 1;
    }
    if (resp->error[0]) {
        fprintf(stderr, "error: %s\n", resp->error);
        code = 1;
    }
    if (print_results(resp->results, resp->n_results, dry_run, true))
        code = 1;
    sluice__v1__delete_response__free_unpacked(resp, NULL);
    return code;
}

int ctl_cmd_delete(ctl *c, int argc, char **argv)
{
    const char *file = NULL, *ns = NULL, *pos[2] = {NULL, NULL};
    int npos = 0, code = 1;
    bool dry_run = false;
    sl_nats *nc = NULL;
    natsMsg *reply = NULL;

    for (int i = 1; i < argc; i++) {
        const char *v;
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            printf("Usage: sluicectl delete KIND NAME [-n NAMESPACE] [--dry-run]\n"
                   "       sluicectl delete -f FILE [--dry-run]\n");
            return 0;
        }
        if (ctl_opt(argc, argv, &i, "-f", "--filename", &v)) {
            if (!v)
                return ctl_usage_error("delete", "flag needs an argument: -f");
            file = v;
        } else if (ctl_opt(argc, argv, &i, "-n", "--namespace", &v)) {
            if (!v)
                return ctl_usage_error("delete", "flag needs an argument: -n");
            ns = v;
        } else if (strcmp(argv[i], "--dry-run") == 0) {
            dry_run = true;
        } else if (argv[i][0] == '-') {
            return ctl_usage_error("delete", "unknown flag %s", argv[i]);
        } else if (npos < 2) {
            pos[npos++] = argv[i];
        } else {
            return ctl_usage_error("delete", "too many arguments");
        }
    }
    if (!file && npos != 2)
        return ctl_usage_error("delete", "give KIND NAME or -f FILE");
    const sl_kind *k = NULL;
    if (!file && !(k = sl_kind_lookup(pos[0]))) {
        fprintf(stderr, "error: the server doesn't have a resource type \"%s\"\n", pos[0]);
        return 1;
    }
    if (!(nc = ctl_connect(c)))
        return 1;
    if (file) {
        size_t len;
        char *text;
        if (sl_file_read(&text, &len, file) != SL_OK) {
            fprintf(stderr, "error: %s\n", sl_error_msg());
            goto out;
        }
        size_t fl = strlen(file);
        reply = api_request(c, nc, "sluice.api.delete",
                            fl > 5 && strcmp(file + fl - 5, ".json") == 0 ? SL_CT_JSON : SL_CT_YAML,
                            NULL, text, len, file, dry_run);
        free(text);
    } else {
        Sluice__V1__DeleteRequest req = SLUICE__V1__DELETE_REQUEST__INIT;
        Sluice__V1__ObjectRef o = SLUICE__V1__OBJECT_REF__INIT;
        Sluice__V1__ObjectRef *ro[] = {&o};
        o.kind = (char *)k->kind;
        o.namespace_ = (char *)(ns ? ns : SL_RESOURCE_DEFAULT_NAMESPACE);
        o.name = (char *)pos[1];
        req.resources = ro;
        req.n_resources = 1;
        req.dry_run = dry_run;
        req.source = "sluicectl";
        size_t len = sluice__v1__delete_request__get_packed_size(&req);
        uint8_t *buf = malloc(len ? len : 1);
        sluice__v1__delete_request__pack(&req, buf);
        reply = api_request(c, nc, "sluice.api.delete", SL_CT_PROTOBUF,
                            sluice__v1__delete_request__descriptor.name, buf, len, NULL, dry_run);
        free(buf);
    }
    if (reply)
        code = delete_reply(reply, dry_run);
out:
    natsMsg_Destroy(reply);
    ctl_close(nc);
    return code;
}

/* ---- get ------------------------------------------------------------------ */

typedef struct item {
    char *key;
    sl_resource_id id;
    const sl_kind *kind;
    ProtobufCMessage *msg;
    uint64_t rev;
    Sluice__V1__Status *status; /* NULL when none */
} item;

static int item_cmp(const void *a, const void *b)
{
    const item *x = a, *y = b;
    int r = strcmp(x->id.kind, y->id.kind);
    if (!r)
        r = strcmp(x->id.ns, y->id.ns);
    return r ? r : strcmp(x->id.name, y->id.name);
}

static void items_free(item *it, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(it[i].key);
        if (it[i].msg)
            protobuf_c_message_free_unpacked(it[i].msg, NULL);
        if (it[i].status)
            sluice__v1__status__free_unpacked(it[i].status, NULL);
    }
    free(it);
}

static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Whether key names a resource of kind k (NULL: any config kind) in
 * namespace ns and named name (NULL: any); fills id and *kind. */
static bool key_wanted(const char *key, sl_resource_id *id, const sl_kind **kind, const sl_kind *k,
                       const char *ns, const char *name)
{
    if (sl_resource_key_parse(id, key, 1) != SL_OK || !(*kind = sl_kind_by_name(id->kind)))
        return false;
    return (!k || *kind == k) && (!ns || strcmp(ns, id->ns) == 0) && (!name || strcmp(name, id->name) == 0);
}

/* Loads the config resources of kind k (NULL: all), namespace ns (NULL:
 * all), name (NULL: all), with their statuses.
 * keep_bad, for status and check: also list values that do not decode as
 * their kind (msg NULL): any client may write the KV, and the status of
 * such a value (Rejected, by the config-watcher) must show; and resources
 * that have a status but were never stored (msg NULL): a proposal the
 * apply API or a file rejected. */
static int load_items(item **out, size_t *nout, sl_nats *nc, const sl_kind *k, const char *ns,
                      const char *name, bool keep_bad)
{
    sl_kv *kv = NULL, *skv = NULL;
    char **keys = NULL, **skeys = NULL;
    size_t nkeys = 0, nskeys = 0, n = 0;
    item *items = NULL;

    *out = NULL;
    *nout = 0;
    if (sl_kv_bind(&kv, nc, SL_BUCKET_CONFIG) != SL_OK) {
        /* No bucket: nothing was ever stored. */
        return 0;
    }
    sl_kv_bind(&skv, nc, SL_BUCKET_STATUS);
    if (sl_kv_keys(&keys, &nkeys, kv, 5000) != SL_OK && nkeys == 0) {
        if (sl_error_status() != SL_ERR_NOT_FOUND && sl_error_status() != SL_OK) {
            fprintf(stderr, "error: listing %s: %s\n", SL_BUCKET_CONFIG, sl_error_msg());
            sl_kv_free(kv);
            sl_kv_free(skv);
            return -1;
        }
    }
    if (keep_bad && skv && sl_kv_keys(&skeys, &nskeys, skv, 5000) != SL_OK)
        nskeys = 0;
    if (nkeys)
        qsort(keys, nkeys, sizeof(*keys), str_cmp);
    items = calloc(nkeys + nskeys + 1, sizeof(*items));
    for (size_t i = 0; items && i < nkeys; i++) {
        item *it = &items[n];
        if (!key_wanted(keys[i], &it->id, &it->kind, k, ns, name))
            continue;
        sl_kv_entry e = {0};
        if (sl_kv_get(&e, kv, keys[i]) != SL_OK)
            continue;
        it->msg = protobuf_c_message_unpack(it->kind->descriptor, NULL, e.len, e.value);
        it->rev = e.revision;
        sl_kv_entry_deinit(&e);
        if (!it->msg && !keep_bad)
            continue;
        it->key = strdup(keys[i]);
        if (skv && sl_kv_get(&e, skv, keys[i]) == SL_OK) {
            it->status = sluice__v1__status__unpack(NULL, e.len, e.value);
            sl_kv_entry_deinit(&e);
        }
        n++;
    }
    for (size_t i = 0; items && i < nskeys; i++) {
        item *it = &items[n];
        sl_kv_entry e = {0};
        if (!key_wanted(skeys[i], &it->id, &it->kind, k, ns, name) ||
            strcmp(it->kind->bucket, SL_BUCKET_CONFIG) != 0 ||
            (nkeys && bsearch(&skeys[i], keys, nkeys, sizeof(*keys), str_cmp)) ||
            sl_kv_get(&e, skv, skeys[i]) != SL_OK)
            continue;
        it->status = sluice__v1__status__unpack(NULL, e.len, e.value);
        sl_kv_entry_deinit(&e);
        if (!it->status)
            continue;
        it->key = strdup(skeys[i]);
        n++;
    }
    sl_kv_keys_free(keys, nkeys);
    sl_kv_keys_free(skeys, nskeys);
    sl_kv_free(kv);
    sl_kv_free(skv);
    if (items)
        qsort(items, n, sizeof(*items), item_cmp);
    *out = items;
    *nout = n;
    return 0;
}

/* Fills metadata.resourceVersion and status for output. The status is
 * moved into the message (it->status becomes NULL). */
static void decorate(item *it)
{
    Sluice__V1__Metadata *md = (Sluice__V1__Metadata *)sl_kind_metadata(it->msg);
    char v[32];
    snprintf(v, sizeof(v), "%" PRIu64, it->rev);
    if (md)
        sl_cfg_set_string(&md->resource_version, v);
    const ProtobufCFieldDescriptor *f =
        protobuf_c_message_descriptor_get_field(it->msg->descriptor, SL_KIND_FIELD_STATUS);
    if (f && it->status) {
        ProtobufCMessage **slot = (ProtobufCMessage **)((char *)it->msg + f->offset);
        if (*slot)
            protobuf_c_message_free_unpacked(*slot, NULL);
        *slot = &it->status->base;
        it->status = NULL;
    }
}

/* The resource as YAML or JSON with apiVersion and kind first. */
static char *render(item *it, bool json)
{
    sl_codec_options o = {0};
    char *body = NULL, *out = NULL;
    size_t len;
    o.resolver = sl_types_find_url;
    if ((json ? sl_codec_encode_json(&body, &len, it->msg, &o)
              : sl_codec_encode_yaml(&body, &len, it->msg, &o)) != SL_OK)
        return NULL;
    size_t n = len + 256;
    out = malloc(n);
    if (out) {
        if (json) {
            const char *p = strchr(body, '{');
            snprintf(out, n, "{\n  \"apiVersion\": \"%s\",\n  \"kind\": \"%s\",%s%s",
                     it->kind->api_version, it->kind->kind, p && p[1] == '}' ? "" : "",
                     p ? p + 1 : "}\n");
        } else {
            snprintf(out, n, "apiVersion: %s\nkind: %s\n%s", it->kind->api_version,
                     it->kind->kind, body);
        }
    }
    free(body);
    return out;
}

static void join_domains(char *buf, size_t n, const Sluice__V1__VirtualHost *vh)
{
    size_t off = 0;
    buf[0] = '\0';
    for (size_t i = 0; vh && i < vh->n_domains && off < n; i++)
        off += (size_t)snprintf(buf + off, n - off, "%s%s", i ? "," : "", vh->domains[i]);
    if (!buf[0])
        snprintf(buf, n, "-");
}

static void print_table(item *items, size_t n, bool all_ns)
{
    const char *last_kind = "";
    for (size_t i = 0; i < n; i++) {
        item *it = &items[i];
        const char *st = it->status ? state_name(it->status->state) : "Pending";
        bool head = strcmp(last_kind, it->id.kind) != 0;
        char nsname[SL_RESOURCE_KEY_MAX];
        if (head && i)
            printf("\n");
        last_kind = it->id.kind;
        snprintf(nsname, sizeof(nsname), "%s", it->id.name);
        const ProtobufCMessage *spec = sl_kind_spec(it->msg);
        if (strcmp(it->id.kind, "VirtualService") == 0) {
            const Sluice__V1__VirtualServiceSpec *s = (const void *)spec;
            char doms[256];
            join_domains(doms, sizeof(doms), s ? s->virtual_host : NULL);
            if (head)
                printf("%s%-28s %-20s %-36s %-5s %-10s %s\n", all_ns ? "NAMESPACE       " : "",
                       "VIRTUAL SERVICE", "DISPLAY NAME", "DOMAINS", "SSL", "STATUS", "ROUTES");
            if (all_ns)
                printf("%-15s ", it->id.ns);
            printf("%-28s %-20s %-36s %-5s %-10s %zu\n", nsname,
                   s && s->display_name[0] ? s->display_name : "-", doms,
                   s && s->ssl_config ? "yes" : "none", st,
                   s && s->virtual_host ? s->virtual_host->n_routes : 0);
        } else if (strcmp(it->id.kind, "Upstream") == 0) {
            const Sluice__V1__UpstreamSpec *s = (const void *)spec;
            const char *type = "-";
            char details[256] = "-";
            if (s && s->upstream_type_case == SLUICE__V1__UPSTREAM_SPEC__UPSTREAM_TYPE_STATIC) {
                type = "Static";
                size_t off = 0;
                details[0] = '\0';
                for (size_t h = 0; s->static_ && h < s->static_->n_hosts && off < sizeof(details); h++)
                    off += (size_t)snprintf(details + off, sizeof(details) - off, "%s%s:%u",
                                            h ? "," : "hosts: ", s->static_->hosts[h]->addr,
                                            s->static_->hosts[h]->port);
            } else if (s && s->upstream_type_case == SLUICE__V1__UPSTREAM_SPEC__UPSTREAM_TYPE_DNS) {
                type = "DNS";
                snprintf(details, sizeof(details), "name: %s:%u", s->dns->name, s->dns->port);
            } else if (s && s->upstream_type_case == SLUICE__V1__UPSTREAM_SPEC__UPSTREAM_TYPE_AWS) {
                type = "AWS";
                snprintf(details, sizeof(details), "region: %s", s->aws->region);
            }
            if (head)
                printf("%s%-28s %-8s %-10s %s\n", all_ns ? "NAMESPACE       " : "", "UPSTREAM",
                       "TYPE", "STATUS", "DETAILS");
            if (all_ns)
                printf("%-15s ", it->id.ns);
            printf("%-28s %-8s %-10s %s\n", nsname, type, st, details);
        } else if (strcmp(it->id.kind, "Gateway") == 0) {
            const Sluice__V1__GatewaySpec *s = (const void *)spec;
            if (head)
                printf("%s%-28s %-24s %-6s %-10s %s\n", all_ns ? "NAMESPACE       " : "",
                       "GATEWAY", "BIND", "SSL", "STATUS", "PROXIES");
            if (all_ns)
                printf("%-15s ", it->id.ns);
            char bind[96];
            snprintf(bind, sizeof(bind), "%s:%u", s && s->bind_address[0] ? s->bind_address : "::",
                     s ? s->bind_port : 0);
            printf("%-28s %-24s %-6s %-10s %s\n", nsname, bind, s && s->ssl ? "yes" : "no", st,
                   s && s->n_proxy_names ? s->proxy_names[0] : "gateway-proxy");
        } else {
            char upper[80];
            size_t j;
            for (j = 0; it->id.kind[j] && j + 1 < sizeof(upper); j++)
                upper[j] = (char)(it->id.kind[j] >= 'a' && it->id.kind[j] <= 'z'
                                      ? it->id.kind[j] - 32
                                      : it->id.kind[j]);
            upper[j] = '\0';
            if (head)
                printf("%s%-28s %s\n", all_ns ? "NAMESPACE       " : "", upper, "STATUS");
            if (all_ns)
                printf("%-15s ", it->id.ns);
            printf("%-28s %s\n", nsname, st);
        }
    }
}

int ctl_cmd_get(ctl *c, int argc, char **argv)
{
    const char *ns = SL_RESOURCE_DEFAULT_NAMESPACE, *out = "table", *pos[2] = {NULL, NULL};
    bool all = false;
    int npos = 0, code = 1;
    sl_nats *nc = NULL;
    item *items = NULL;
    size_t n = 0;

    for (int i = 1; i < argc; i++) {
        const char *v;
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            printf("Usage: sluicectl get KIND [NAME] [-n NAMESPACE | -A] [-o table|yaml|json]\n"
                   "KIND: all, gateway (gw), virtualservice (vs), routetable (rt), upstream (us),\n"
                   "upstreamgroup (ug), settings. The namespace defaults to \"default\".\n");
            return 0;
        }
        if (ctl_opt(argc, argv, &i, "-n", "--namespace", &v)) {
            if (!v)
                return ctl_usage_error("get", "flag needs an argument: -n");
            ns = v;
        } else if (ctl_opt(argc, argv, &i, "-o", "--output", &v)) {
            if (!v || (strcmp(v, "table") && strcmp(v, "yaml") && strcmp(v, "json") &&
                       strcmp(v, "wide")))
                return ctl_usage_error("get", "-o takes table, yaml or json");
            out = v;
        } else if (strcmp(argv[i], "-A") == 0 || strcmp(argv[i], "--all-namespaces") == 0) {
            all = true;
        } else if (argv[i][0] == '-') {
            return ctl_usage_error("get", "unknown flag %s", argv[i]);
        } else if (npos < 2) {
            pos[npos++] = argv[i];
        } else {
            return ctl_usage_error("get", "too many arguments");
        }
    }
    if (npos < 1)
        return ctl_usage_error("get", "you must specify the type of resource to get");
    const sl_kind *k = NULL;
    if (strcmp(pos[0], "all") != 0 && !(k = sl_kind_lookup(pos[0]))) {
        fprintf(stderr, "error: the server doesn't have a resource type \"%s\"\n", pos[0]);
        return 1;
    }
    if (k && strcmp(k->bucket, SL_BUCKET_CONFIG) != 0) {
        fprintf(stderr, "error: %s resources are not readable through sluicectl (bucket %s)\n",
                k->kind, k->bucket);
        return 1;
    }
    if (!(nc = ctl_connect(c)))
        return 1;
    if (load_items(&items, &n, nc, k, all ? NULL : ns, pos[1], false) != 0)
        goto out;
    code = 0;
    if (pos[1] && n == 0) {
        fprintf(stderr, "Error from server (NotFound): %s \"%s\" not found\n",
                k ? k->plural : "resources", pos[1]);
        code = 1;
        goto out;
    }
    if (strcmp(out, "yaml") == 0 || strcmp(out, "json") == 0) {
        bool json = out[0] == 'j';
        bool list = json && !pos[1];
        if (list)
            printf("{\n\"apiVersion\": \"v1\",\n\"kind\": \"List\",\n\"items\": [\n");
        for (size_t i = 0; i < n; i++) {
            decorate(&items[i]);
            char *text = render(&items[i], json);
            if (!text) {
                fprintf(stderr, "error: encoding %s: %s\n", items[i].key, sl_error_msg());
                code = 1;
                continue;
            }
            if (!json && i)
                printf("---\n");
            if (list && i)
                printf(",\n");
            size_t tl = strlen(text);
            if (list && tl && text[tl - 1] == '\n')
                text[tl - 1] = '\0';
            fputs(text, stdout);
            free(text);
        }
        if (list)
            printf("\n]\n}\n");
    } else if (n == 0) {
        if (all)
            fprintf(stderr, "No resources found\n");
        else
            fprintf(stderr, "No resources found in %s namespace.\n", ns);
    } else {
        print_table(items, n, all);
    }
out:
    items_free(items, n);
    ctl_close(nc);
    return code;
}

/* ---- status --------------------------------------------------------------- */

static volatile sig_atomic_t g_interrupted;
static void on_sigint(int s)
{
    (void)s;
    g_interrupted = 1;
}

static void print_status_line(const char *kind, const char *ns, const char *name,
                              const Sluice__V1__Status *s)
{
    printf("%-16s %-15s %-28s %-10s %-14s %s\n", kind, ns, name,
           s ? state_name(s->state) : "Pending", s && s->reported_by[0] ? s->reported_by : "-",
           s && s->reason[0] ? s->reason : "");
}

int ctl_cmd_status(ctl *c, int argc, char **argv)
{
    const char *ns = NULL, *pos[2] = {NULL, NULL};
    bool watch = false;
    int npos = 0, code = 1;
    sl_nats *nc = NULL;
    item *items = NULL;
    size_t n = 0;

    for (int i = 1; i < argc; i++) {
        const char *v;
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            printf("Usage: sluicectl status [KIND [NAME]] [-n NAMESPACE | -A] [--watch]\n"
                   "Shows the status the reporter stored in the sluice_status KV;\n"
                   "--watch prints every change until interrupted.\n");
            return 0;
        }
        if (ctl_opt(argc, argv, &i, "-n", "--namespace", &v)) {
            if (!v)
                return ctl_usage_error("status", "flag needs an argument: -n");
            ns = v;
        } else if (strcmp(argv[i], "-A") == 0 || strcmp(argv[i], "--all-namespaces") == 0) {
            ns = NULL;
        } else if (strcmp(argv[i], "-w") == 0 || strcmp(argv[i], "--watch") == 0) {
            watch = true;
        } else if (argv[i][0] == '-') {
            return ctl_usage_error("status", "unknown flag %s", argv[i]);
        } else if (npos < 2) {
            pos[npos++] = argv[i];
        } else {
            return ctl_usage_error("status", "too many arguments");
        }
    }
    const sl_kind *k = NULL;
    if (pos[0] && !(k = sl_kind_lookup(pos[0]))) {
        fprintf(stderr, "error: the server doesn't have a resource type \"%s\"\n", pos[0]);
        return 1;
    }
    if (pos[1] && !ns)
        ns = SL_RESOURCE_DEFAULT_NAMESPACE;
    if (!(nc = ctl_connect(c)))
        return 1;
    if (load_items(&items, &n, nc, k, ns, pos[1], true) != 0)
        goto out;
    if (pos[1] && n == 0) {
        fprintf(stderr, "Error from server (NotFound): %s \"%s\" not found\n", k->plural, pos[1]);
        goto out;
    }
    code = 0;
    printf("%-16s %-15s %-28s %-10s %-14s %s\n", "KIND", "NAMESPACE", "NAME", "STATE",
           "REPORTED BY", "REASON");
    for (size_t i = 0; i < n; i++) {
        print_status_line(items[i].id.kind, items[i].id.ns, items[i].id.name, items[i].status);
        if (items[i].status && items[i].status->state == SLUICE__V1__STATUS__STATE__Rejected)
            code = pos[1] ? 1 : code;
    }
    fflush(stdout);
    if (watch) {
        sl_kv *skv = NULL;
        sl_kv_watch *w = NULL;
        char filter[SL_RESOURCE_KEY_MAX + 8];
        if (sl_kv_bind(&skv, nc, SL_BUCKET_STATUS) != SL_OK) {
            sl_kv_config kc;
            sl_kv_config_init(&kc, SL_BUCKET_STATUS);
            if (sl_kv_open(&skv, nc, &kc) != SL_OK) {
                fprintf(stderr, "error: %s: %s\n", SL_BUCKET_STATUS, sl_error_msg());
                code = 1;
                goto out;
            }
        }
        snprintf(filter, sizeof(filter), "%s.%s.%s", k ? k->kind : "*", ns ? ns : "*",
                 pos[1] ? pos[1] : "*");
        sl_kv_watch_opts wo = {filter, false};
        if (sl_kv_watch_new(&w, skv, &wo) != SL_OK) {
            fprintf(stderr, "error: watch: %s\n", sl_error_msg());
            sl_kv_free(skv);
            code = 1;
            goto out;
        }
        signal(SIGINT, on_sigint);
        signal(SIGTERM, on_sigint);
        bool initial = true;
        while (!g_interrupted) {
            sl_kv_entry e = {0};
            bool done = false;
            sl_status st = sl_kv_watch_next(&e, &done, w, 200);
            if (st == SL_ERR_TIMEOUT)
                continue;
            if (st != SL_OK)
                break;
            if (done) {
                initial = false;
                continue;
            }
            if (!initial) {
                sl_resource_id id;
                if (sl_resource_key_parse(&id, e.key, 1) == SL_OK) {
                    Sluice__V1__Status *s =
                        e.op == SL_KV_PUT ? sluice__v1__status__unpack(NULL, e.len, e.value) : NULL;
                    print_status_line(id.kind, id.ns, id.name, s);
                    fflush(stdout);
                    if (s)
                        sluice__v1__status__free_unpacked(s, NULL);
                }
            }
            sl_kv_entry_deinit(&e);
        }
        sl_kv_watch_free(w);
        sl_kv_free(skv);
    }
out:
    items_free(items, n);
    ctl_close(nc);
    return code;
}

/* ---- xds dump -------------------------------------------------------------- */

static const struct {
    const char *token;
    const char *message;
} xds_types[] = {
    {"secret", "envoy.extensions.transport_sockets.tls.v3.Secret"},
    {"cluster", "envoy.config.cluster.v3.Cluster"},
    {"endpoint", "envoy.config.endpoint.v3.ClusterLoadAssignment"},
    {"listener", "envoy.config.listener.v3.Listener"},
    {"route", "envoy.config.route.v3.RouteConfiguration"},
};

static int xds_type_index(const char *t)
{
    static const char *aliases[][3] = {{"sds", "secrets", "Secret"},
                                       {"cds", "clusters", "Cluster"},
                                       {"eds", "endpoints", "ClusterLoadAssignment"},
                                       {"lds", "listeners", "Listener"},
                                       {"rds", "routes", "RouteConfiguration"}};
    for (int i = 0; i < 5; i++)
        if (strcasecmp(t, xds_types[i].token) == 0 || strcasecmp(t, aliases[i][0]) == 0 ||
            strcasecmp(t, aliases[i][1]) == 0 || strcasecmp(t, aliases[i][2]) == 0 ||
            strstr(t, xds_types[i].message))
            return i;
    return -1;
}

/* sluice_xds key escaping (services/xds/xds.h): bytes outside [-_a-zA-Z0-9]
 * become "=XX". */
static void xds_escape(char *out, size_t cap, const char *s)
{
    size_t o = 0;
    for (; *s && o + 4 < cap; s++) {
        unsigned char ch = (unsigned char)*s;
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
            ch == '-' || ch == '_')
            out[o++] = (char)ch;
        else
            o += (size_t)snprintf(out + o, cap - o, "=%02X", ch);
    }
    out[o] = '\0';
}

static void xds_unescape(char *out, size_t cap, const char *s)
{
    size_t o = 0;
    for (; *s && o + 1 < cap; s++) {
        unsigned v;
        if (*s == '=' && s[1] && s[2] && sscanf(s + 1, "%2X", &v) == 1) {
            out[o++] = (char)v;
            s += 2;
        } else {
            out[o++] = *s;
        }
    }
    out[o] = '\0';
}

/* Prints one resource as `xds dump` shows it; 0, or 1 when it does not
 * decode. */
static int xds_print(int ti, const char *label, const char *name, uint64_t version, const uint8_t *data, size_t len,
                     const char *out, size_t *shown)
{
    const ProtobufCMessageDescriptor *d = sl_types_find(xds_types[ti].message);
    ProtobufCMessage *m = d ? protobuf_c_message_unpack(d, NULL, len, data) : NULL;
    sl_codec_options o = {0};
    char *text = NULL;
    size_t tl;
    int code = 0;
    if (!m) {
        fprintf(stderr, "error: %s: not a valid %s\n", label, xds_types[ti].message);
        return 1;
    }
    o.resolver = sl_types_find_url;
    if ((out[0] == 'j' ? sl_codec_encode_json(&text, &tl, m, &o) : sl_codec_encode_yaml(&text, &tl, m, &o)) != SL_OK) {
        fprintf(stderr, "error: %s: %s\n", label, sl_error_msg());
        code = 1;
    } else {
        if (out[0] == 'j')
            printf("%s{\"@type\": \"type.googleapis.com/%s\", \"name\": \"%s\", \"version\": "
                   "\"%" PRIu64 "\", \"resource\": %s}",
                   *shown ? ",\n" : "[\n", xds_types[ti].message, name, version, text);
        else
            printf("%s# %s %s (version %" PRIu64 ")\n'@type': type.googleapis.com/%s\n%s", *shown ? "---\n" : "",
                   xds_types[ti].token, name, version, xds_types[ti].message, text);
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

/* Dumps what the proxy's commit names (esc: the escaped proxy), assembling
 * routes stored in parts. -1 when there is no commit that decodes. */
static int xds_dump_commit(sl_kv *kv, const char *full, const char *esc, int tidx, const char *out, size_t *shown)
{
    char key[4200], rtok[1024], vtok[1024];
    sl_kv_entry ce = {0};
    Sluice__V1__XdsCommit *cm;
    int code = 0;
    snprintf(key, sizeof key, "%s.commit", esc);
    if (sl_kv_get(&ce, kv, key) != SL_OK)
        return -1;
    if (!(cm = sluice__v1__xds_commit__unpack(NULL, ce.len, ce.value))) {
        fprintf(stderr, "warning: %s is not a sluice.v1.XdsCommit; showing every key instead\n", key);
        sl_kv_entry_deinit(&ce);
        return -1;
    }
    fprintf(stderr, "# %s commit revision %" PRIu64 " (kv revision %" PRIu64 "): %zu manifest chunks\n", full,
            cm->revision, ce.revision, cm->n_chunks);
    sl_kv_entry_deinit(&ce);
    /* A split route being assembled: its head and parts so far. */
    uint8_t *head = NULL, **pv = NULL;
    size_t head_len = 0, *pl = NULL, np = 0, want = 0;
    uint64_t head_rev = 0;
    char rname[1024] = "";
    for (size_t i = 0; i < cm->n_chunks; i++) {
        const Sluice__V1__XdsChunkRef *ref = cm->chunks[i];
        int ti = xds_type_index(ref->type);
        size_t len;
        if (ti < 0)
            continue;
        snprintf(key, sizeof key, "%s.manifest.%s.%s", esc, ref->type, ref->id);
        uint8_t *v = xds_get(kv, key, ref->revision, &len);
        Sluice__V1__XdsManifest *m = v ? sluice__v1__xds_manifest__unpack(NULL, len, v) : NULL;
        free(v);
        if (!m) {
            fprintf(stderr, "error: %s: not a sluice.v1.XdsManifest\n", key);
            code = 1;
            continue;
        }
        for (size_t k = 0; k < m->n_entries; k++) {
            const Sluice__V1__XdsEntry *en = m->entries[k];
            if (want) { /* a part of rname */
                xds_escape(rtok, sizeof rtok, rname);
                xds_escape(vtok, sizeof vtok, en->name);
                snprintf(key, sizeof key, "%s.vhost.%s.%s", esc, rtok, vtok);
                pv[np] = xds_get(kv, key, en->revision, &pl[np]);
                if (!pv[np])
                    code = 1;
                np++;
                if (np == want) {
                    uint8_t *whole = NULL;
                    size_t wl = 0;
                    int ok = !code && head;
                    for (size_t q = 0; q < np && ok; q++)
                        ok = pv[q] != NULL;
                    if (ok && sl_xds_route_join(&whole, &wl, head, head_len, (const uint8_t *const *)pv, pl, np) ==
                                  SL_OK) {
                        snprintf(key, sizeof key, "%s.route.%s (%zu parts)", esc, rtok, np);
                        code |= xds_print(ti, key, rname, head_rev, whole, wl, out, shown);
                    }
                    free(whole);
                    for (size_t q = 0; q < np; q++)
                        free(pv[q]);
                    free(pv);
                    free(pl);
                    free(head);
                    pv = NULL;
                    pl = NULL;
                    head = NULL;
                    np = want = 0;
                }
                continue;
            }
            if (tidx >= 0 && ti != tidx)
                continue;
            xds_escape(rtok, sizeof rtok, en->name);
            snprintf(key, sizeof key, "%s.%s.%s", esc, ref->type, rtok);
            v = xds_get(kv, key, en->revision, &len);
            if (!v) {
                code = 1;
                continue;
            }
            if (en->parts) {
                head = v;
                head_len = len;
                head_rev = en->revision;
                want = en->parts;
                snprintf(rname, sizeof rname, "%s", en->name);
                pv = calloc(want, sizeof *pv);
                pl = calloc(want, sizeof *pl);
                if (!pv || !pl)
                    return 1;
                continue;
            }
            code |= xds_print(ti, key, en->name, en->revision, v, len, out, shown);
            free(v);
        }
        sluice__v1__xds_manifest__free_unpacked(m, NULL);
    }
    free(head);
    free(pv);
    free(pl);
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
            printf("Usage: sluicectl xds dump --proxy NAMESPACE~PROXY [--type T] [-o yaml|json]\n");
            return 0;
        }
        return ctl_usage_error("xds", "usage: sluicectl xds dump --proxy P [--type T]");
    }
    for (int i = 2; i < argc; i++) {
        const char *v;
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            printf("Usage: sluicectl xds dump --proxy NAMESPACE~PROXY [--type T] [-o yaml|json]\n"
                   "T: listener (lds), route (rds), cluster (cds), endpoint (eds), secret (sds).\n"
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
    char full[512], esc[1600], prefix[1700];
    snprintf(full, sizeof(full), "%s%s", strchr(proxy, '~') ? "" : "default~", proxy);
    xds_escape(esc, sizeof(esc), full);
    snprintf(prefix, sizeof(prefix), "%s.", esc);
    if (!(nc = ctl_connect(c)))
        return 1;
    if (sl_kv_bind(&kv, nc, bucket) != SL_OK) {
        fprintf(stderr, "error: no %s bucket: has the translator run?\n", bucket);
        goto out;
    }
    /* What the commit names (as sluice-xds serves it); without a commit,
     * every resource key of the proxy. */
    if ((code = xds_dump_commit(kv, full, esc, tidx, out, &shown)) >= 0)
        goto done;
    sl_kv_keys(&keys, &nkeys, kv, 5000);
    qsort(keys, nkeys, sizeof(char *), cmp_str);
    code = 0;
    for (size_t i = 0; i < nkeys; i++) {
        if (strncmp(keys[i], prefix, strlen(prefix)) != 0)
            continue;
        const char *rest = keys[i] + strlen(prefix);
        sl_kv_entry e = {0};
        const char *dot = strchr(rest, '.');
        if (!dot || strchr(dot + 1, '.'))
            continue; /* the commit, manifest chunks, route parts */
        char tok[32];
        snprintf(tok, sizeof(tok), "%.*s", (int)(dot - rest), rest);
        int ti = xds_type_index(tok);
        if (ti < 0 || (tidx >= 0 && ti != tidx))
            continue;
        char name[1024];
        xds_unescape(name, sizeof(name), dot + 1);
        if (sl_kv_get(&e, kv, keys[i]) != SL_OK)
            continue;
        code |= xds_print(ti, keys[i], name, e.revision, e.value, e.len, out, &shown);
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

/* ---- check ------------------------------------------------------------------ */

/* Services sluicectl check expects alive and ready (--expect overrides). */
static const char default_expected[] =
    "sluice-config-watcher,sluice-secret-watcher,sluice-reporter,sluice-translator,sluice-xds";

/* Liveness from the heartbeats in SL_SERVICES_BUCKET (sluice/service.h).
 * An entry older than 3 of its intervals is stale (a bucket made without
 * TTL keeps entries of crashed instances). Returns the number of failures. */
static int check_services(sl_nats *nc, const char *expect)
{
    sl_kv *kv = NULL;
    char **keys = NULL, *list = strdup(expect), *save = NULL;
    size_t nkeys = 0;
    int fails = 0;
    struct timespec now;

    clock_gettime(CLOCK_REALTIME, &now);
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
        if (alive == 0) {
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
    char esc[768], key[800];
    sl_kv_entry e = {0};
    uint64_t rev = 0;
    if (!xds || sl_xds_key_escape(esc, sizeof esc, proxy) != SL_OK)
        return 0;
    snprintf(key, sizeof key, "%s.commit", esc);
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
    item *items = NULL;
    size_t n = 0;
    static const char *const buckets[] = {SL_BUCKET_CONFIG, SL_BUCKET_STATUS, "sluice_xds",
                                          SL_BUCKET_SECRETS, SL_BUCKET_ENDPOINTS};

    const char *expect = default_expected;

    for (int i = 1; i < argc; i++) {
        const char *v = NULL;
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            printf("Usage: sluicectl check [--expect SVC,SVC...]\n"
                   "Checks that NATS answers, the buckets exist, every expected service is alive\n"
                   "and ready (heartbeats in KV %s), the apply API answers, every resource\n"
                   "is Accepted and every connected proxy is on the latest revision (KV\n"
                   "sluice_proxies). Exit status 1 when something is wrong.\n"
                   "  --expect LIST   services that must run (default %s)\n",
                   SL_SERVICES_BUCKET, default_expected);
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
    fails += check_services(nc, expect);
    check_leases(nc);
    {
        Sluice__V1__ApplyRequest req = SLUICE__V1__APPLY_REQUEST__INIT;
        natsMsg *reply = NULL;
        req.dry_run = true;
        req.source = "sluicectl-check";
        if (sl_envelope_request_pb(&reply, nc, "sluice.api.apply", &req.base, NULL, 3000) == SL_OK) {
            printf("OK    apply API answers (sluice-config-watcher)\n");
            natsMsg_Destroy(reply);
        } else {
            printf("FAIL  apply API: %s\n", sl_error_msg());
            fails++;
        }
    }
    if (load_items(&items, &n, nc, NULL, NULL, NULL, true) == 0) {
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
    items_free(items, n);
    ctl_close(nc);
    return fails ? 1 : 0;
}
