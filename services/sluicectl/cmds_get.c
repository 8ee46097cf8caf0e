/* cmds_get.c - sluicectl get and status: the config resources with their statuses. */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "ctl.h"
#include "sluice/codec.h"
#include "sluice/config.h"
#include "sluice/kinds.h"
#include "sluice/kv.h"
#include "sluice/resource.h"
#include "sluice/types.h"
#include "sluice/v1/events.pb-c.h"
#include "sluice/v1/gateway.pb-c.h"
#include "sluice/v1/upstream.pb-c.h"
#include "sluice/v1/virtual_service.pb-c.h"

static const char *state_name(int s)
{
    switch (s) {
    case SLUICE__V1__STATUS__STATE__Accepted: return "Accepted";
    case SLUICE__V1__STATUS__STATE__Rejected: return "Rejected";
    case SLUICE__V1__STATUS__STATE__Warning: return "Warning";
    default: return "Pending";
    }
}

/* ---- get ------------------------------------------------------------------ */

static int item_cmp(const void *a, const void *b)
{
    const ctl_item *x = a, *y = b;
    int r = strcmp(x->id.kind, y->id.kind);
    if (!r)
        r = strcmp(x->id.ns, y->id.ns);
    return r ? r : strcmp(x->id.name, y->id.name);
}

void ctl_items_free(ctl_item *it, size_t n)
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
int ctl_load_items(ctl_item **out, size_t *nout, sl_nats *nc, const sl_kind *k, const char *ns,
                   const char *name, bool keep_bad)
{
    sl_kv *kv = NULL, *skv = NULL;
    char **keys = NULL, **skeys = NULL;
    size_t nkeys = 0, nskeys = 0, n = 0;
    ctl_item *items = NULL;

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
        qsort(keys, nkeys, sizeof(*keys), ctl_cmp_str);
    items = calloc(nkeys + nskeys + 1, sizeof(*items));
    for (size_t i = 0; items && i < nkeys; i++) {
        ctl_item *it = &items[n];
        if (!key_wanted(keys[i], &it->id, &it->kind, k, ns, name))
            continue;
        sl_kv_entry e = {0};
        if (sl_kv_get(&e, kv, keys[i]) != SL_OK)
            continue;
        it->msg = ctl_unpack(it->kind->descriptor, e.value, e.len);
        it->rev = e.revision;
        sl_kv_entry_deinit(&e);
        if (!it->msg && !keep_bad)
            continue;
        it->key = strdup(keys[i]);
        if (skv && sl_kv_get(&e, skv, keys[i]) == SL_OK) {
            it->status = ctl_unpack(&sluice__v1__status__descriptor, e.value, e.len);
            sl_kv_entry_deinit(&e);
        }
        n++;
    }
    for (size_t i = 0; items && i < nskeys; i++) {
        ctl_item *it = &items[n];
        sl_kv_entry e = {0};
        if (!key_wanted(skeys[i], &it->id, &it->kind, k, ns, name) ||
            strcmp(it->kind->bucket, SL_BUCKET_CONFIG) != 0 ||
            (nkeys && bsearch(&skeys[i], keys, nkeys, sizeof(*keys), ctl_cmp_str)) ||
            sl_kv_get(&e, skv, skeys[i]) != SL_OK)
            continue;
        it->status = ctl_unpack(&sluice__v1__status__descriptor, e.value, e.len);
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
static void decorate(ctl_item *it)
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
static char *render(ctl_item *it, bool json)
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

static void print_table(ctl_item *items, size_t n, bool all_ns)
{
    const char *last_kind = "";
    for (size_t i = 0; i < n; i++) {
        ctl_item *it = &items[i];
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
            } else if (s && s->upstream_type_case == SLUICE__V1__UPSTREAM_SPEC__UPSTREAM_TYPE_ETCD) {
                type = "etcd";
                snprintf(details, sizeof(details), "prefix: %s/", s->etcd->prefix);
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

/* The options get and status share: -h, -n, -A, -o and up to two
 * positionals (KIND, NAME); -w for status. */
typedef struct list_opts {
    const char *cmd;       /* for the usage errors */
    const char *help;      /* printed for -h */
    const char *out_error; /* the -o usage error */
    bool wide;             /* -o wide is accepted */
    bool watch_ok;         /* -w is accepted */
    const char *ns;        /* -n, or the caller's default */
    bool all;              /* -A given */
    bool all_last;         /* -A given after the last -n */
    const char *out;       /* -o, or "table" */
    bool watch;            /* -w given */
    const char *pos[2];
    int npos;
} list_opts;

/* Parses argv into o. Returns -1 to go on, or the exit code (0 after the
 * help, 1 after a usage error). */
static int list_opts_parse(list_opts *o, int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *v;
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            fputs(o->help, stdout);
            return 0;
        }
        if (ctl_opt(argc, argv, &i, "-n", "--namespace", &v)) {
            if (!v)
                return ctl_usage_error(o->cmd, "flag needs an argument: -n");
            o->ns = v;
            o->all_last = false;
        } else if (ctl_opt(argc, argv, &i, "-o", "--output", &v)) {
            if (!v || (strcmp(v, "table") && strcmp(v, "yaml") && strcmp(v, "json") &&
                       (!o->wide || strcmp(v, "wide"))))
                return ctl_usage_error(o->cmd, "%s", o->out_error);
            o->out = v;
        } else if (strcmp(argv[i], "-A") == 0 || strcmp(argv[i], "--all-namespaces") == 0) {
            o->all = true;
            o->all_last = true;
        } else if (o->watch_ok && (strcmp(argv[i], "-w") == 0 || strcmp(argv[i], "--watch") == 0)) {
            o->watch = true;
        } else if (argv[i][0] == '-') {
            return ctl_usage_error(o->cmd, "unknown flag %s", argv[i]);
        } else if (o->npos < 2) {
            o->pos[o->npos++] = argv[i];
        } else {
            return ctl_usage_error(o->cmd, "too many arguments");
        }
    }
    return -1;
}

/* What get and status list: the connection and the items loaded. */
typedef struct listing {
    sl_nats *nc;
    ctl_item *items;
    size_t n;
} listing;

static void listing_free(listing *l)
{
    ctl_items_free(l->items, l->n);
    ctl_close(l->nc);
}

/* Connects and loads into l (see ctl_load_items()). Returns 0, or 1 with
 * nothing left to free. */
static int listing_load(listing *l, ctl *c, const sl_kind *k, const char *ns, const char *name,
                        bool keep_bad)
{
    if (!(l->nc = ctl_connect(c)))
        return 1;
    if (ctl_load_items(&l->items, &l->n, l->nc, k, ns, name, keep_bad) != 0) {
        listing_free(l);
        return 1;
    }
    return 0;
}

int ctl_cmd_get(ctl *c, int argc, char **argv)
{
    list_opts o = {
        .cmd = "get",
        .help = "Usage: sluicectl get KIND [NAME] [-n NAMESPACE | -A] [-o table|yaml|json]\n"
                "KIND: all, gateway (gw), virtualservice (vs), routetable (rt), upstream (us),\n"
                "upstreamgroup (ug), settings. The namespace defaults to \"default\".\n",
        .out_error = "-o takes table, yaml or json",
        .wide = true,
        .ns = SL_RESOURCE_DEFAULT_NAMESPACE,
        .out = "table",
    };
    int code = list_opts_parse(&o, argc, argv);
    listing l = {0};

    if (code >= 0)
        return code;
    const char *ns = o.ns, *out = o.out, *const *pos = o.pos;
    bool all = o.all;
    if (o.npos < 1)
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
    if (listing_load(&l, c, k, all ? NULL : ns, pos[1], false) != 0)
        return 1;
    code = 0;
    if (pos[1] && l.n == 0) {
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
        for (size_t i = 0; i < l.n; i++) {
            decorate(&l.items[i]);
            char *text = render(&l.items[i], json);
            if (!text) {
                fprintf(stderr, "error: encoding %s: %s\n", l.items[i].key, sl_error_msg());
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
    } else if (l.n == 0) {
        if (all)
            fprintf(stderr, "No resources found\n");
        else
            fprintf(stderr, "No resources found in %s namespace.\n", ns);
    } else {
        print_table(l.items, l.n, all);
    }
out:
    listing_free(&l);
    return code;
}

/* ---- status --------------------------------------------------------------- */

static volatile sig_atomic_t g_interrupted;
static void on_sigint(int s)
{
    (void)s;
    g_interrupted = 1;
}

/* REASON: the status's reason, else its messages (a Warning's warnings),
 * joined with "; " on one line. */
static void print_status_line(const char *kind, const char *ns, const char *name,
                              const Sluice__V1__Status *s)
{
    printf("%-16s %-15s %-28s %-10s %-14s ", kind, ns, name, s ? state_name(s->state) : "Pending",
           s && s->reported_by[0] ? s->reported_by : "-");
    if (s && s->reason[0]) {
        fputs(s->reason, stdout);
    } else {
        for (size_t i = 0; s && i < s->n_messages; i++)
            printf("%s%s", i ? "; " : "", s->messages[i]);
    }
    putchar('\n');
}

/* One resource's status as an object {kind, namespace, name, status}: JSON
 * (compact when one_line, for --watch) or a YAML document. */
static int print_status_doc(const char *kind, const char *ns, const char *name, const Sluice__V1__Status *s,
                            bool json, bool one_line)
{
    Sluice__V1__Status pending = SLUICE__V1__STATUS__INIT;
    sl_codec_options o = {0};
    char *body = NULL;
    size_t len;
    int rc = -1;
    o.resolver = sl_types_find_url;
    if (!s)
        s = &pending;
    if ((json ? sl_codec_encode_json(&body, &len, &s->base, &o) : sl_codec_encode_yaml(&body, &len, &s->base, &o)) !=
        SL_OK) {
        fprintf(stderr, "error: encoding the status of %s.%s.%s: %s\n", kind, ns, name, sl_error_msg());
        return -1;
    }
    if (json) {
        json_t *st = json_loads(body, 0, NULL), *doc = json_object();
        char *text;
        if (st && !json_object_get(st, "state"))
            json_object_set_new(st, "state", json_string(state_name(s->state)));
        json_object_set_new(doc, "kind", json_string(kind));
        json_object_set_new(doc, "namespace", json_string(ns));
        json_object_set_new(doc, "name", json_string(name));
        json_object_set_new(doc, "status", st ? st : json_object());
        text = json_dumps(doc, one_line ? JSON_COMPACT : JSON_INDENT(2));
        if (text) {
            printf("%s\n", text);
            rc = 0;
        }
        free(text);
        json_decref(doc);
    } else {
        printf("kind: %s\nnamespace: %s\nname: %s\nstatus:\n", kind, ns, name);
        if (s->state == SLUICE__V1__STATUS__STATE__Pending)
            printf("  state: Pending\n");
        for (const char *p = body; *p && strcmp(p, "{}\n") != 0;) {
            const char *e = strchr(p, '\n');
            size_t n = e ? (size_t)(e - p) : strlen(p);
            printf("  %.*s\n", (int)n, p);
            p += n + (e ? 1 : 0);
        }
        rc = 0;
    }
    free(body);
    return rc;
}

/* The statuses of items: a table, a JSON array or YAML documents. */
static int print_statuses(const ctl_item *items, size_t n, const char *out)
{
    int rc = 0;
    if (strcmp(out, "table") == 0) {
        printf("%-16s %-15s %-28s %-10s %-14s %s\n", "KIND", "NAMESPACE", "NAME", "STATE", "REPORTED BY",
               "REASON");
        for (size_t i = 0; i < n; i++)
            print_status_line(items[i].id.kind, items[i].id.ns, items[i].id.name, items[i].status);
        return 0;
    }
    if (out[0] == 'j')
        printf("[\n");
    for (size_t i = 0; i < n; i++) {
        if (out[0] == 'y' && i)
            printf("---\n");
        if (out[0] == 'j' && i)
            printf(",\n");
        if (print_status_doc(items[i].id.kind, items[i].id.ns, items[i].id.name, items[i].status, out[0] == 'j',
                             false) != 0)
            rc = -1;
    }
    if (out[0] == 'j')
        printf("]\n");
    return rc;
}

/* --watch: every change of a status matching k/ns/name until interrupted,
 * as table lines, one compact JSON object per line, or YAML documents. */
static int status_watch(sl_nats *nc, const sl_kind *k, const char *ns, const char *name, const char *out)
{
    sl_kv *skv = NULL;
    sl_kv_watch *w = NULL;
    char filter[SL_RESOURCE_KEY_MAX + 8];
    bool initial = true;
    if (sl_kv_bind(&skv, nc, SL_BUCKET_STATUS) != SL_OK) {
        sl_kv_config kc;
        sl_kv_config_init(&kc, SL_BUCKET_STATUS);
        if (sl_kv_open(&skv, nc, &kc) != SL_OK) {
            fprintf(stderr, "error: %s: %s\n", SL_BUCKET_STATUS, sl_error_msg());
            return 1;
        }
    }
    snprintf(filter, sizeof(filter), "%s.%s.%s", k ? k->kind : "*", ns ? ns : "*", name ? name : "*");
    sl_kv_watch_opts wo = {filter, false};
    if (sl_kv_watch_new(&w, skv, &wo) != SL_OK) {
        fprintf(stderr, "error: watch: %s\n", sl_error_msg());
        sl_kv_free(skv);
        return 1;
    }
    signal(SIGINT, on_sigint);
    signal(SIGTERM, on_sigint);
    while (!g_interrupted) {
        sl_kv_entry e = {0};
        bool done = false;
        sl_resource_id id;
        sl_status st = sl_kv_watch_next(&e, &done, w, 200);
        if (st == SL_ERR_TIMEOUT)
            continue;
        if (st != SL_OK)
            break;
        if (done) {
            initial = false;
            continue;
        }
        if (!initial && sl_resource_key_parse(&id, e.key, 1) == SL_OK) {
            Sluice__V1__Status *s = e.op == SL_KV_PUT ? ctl_unpack(&sluice__v1__status__descriptor, e.value, e.len) : NULL;
            if (strcmp(out, "table") == 0) {
                print_status_line(id.kind, id.ns, id.name, s);
            } else {
                if (out[0] == 'y')
                    printf("---\n");
                print_status_doc(id.kind, id.ns, id.name, s, out[0] == 'j', true);
            }
            fflush(stdout);
            if (s)
                sluice__v1__status__free_unpacked(s, NULL);
        }
        sl_kv_entry_deinit(&e);
    }
    sl_kv_watch_free(w);
    sl_kv_free(skv);
    return 0;
}

int ctl_cmd_status(ctl *c, int argc, char **argv)
{
    list_opts o = {
        .cmd = "status",
        .help = "Usage: sluicectl status [KIND [NAME]] [-n NAMESPACE | -A] [-o table|json|yaml] [--watch]\n"
                "Shows the status the reporter stored in the sluice_status KV; REASON is the\n"
                "reason, or a Warning's messages joined with \"; \". -o json: an array of\n"
                "{kind, namespace, name, status}; -o yaml: one such document each.\n"
                "--watch prints every change until interrupted (-o json: one object a line).\n",
        .out_error = "-o takes table, json or yaml",
        .watch_ok = true,
        .out = "table",
    };
    int code = list_opts_parse(&o, argc, argv);
    bool watch = o.watch;
    listing l = {0};

    if (code >= 0)
        return code;
    code = 1;
    /* -A, unless a later -n names one namespace. */
    const char *ns = o.all_last ? NULL : o.ns, *out = o.out, *const *pos = o.pos;
    const sl_kind *k = NULL;
    if (pos[0] && !(k = sl_kind_lookup(pos[0]))) {
        fprintf(stderr, "error: the server doesn't have a resource type \"%s\"\n", pos[0]);
        return 1;
    }
    if (pos[1] && !ns)
        ns = SL_RESOURCE_DEFAULT_NAMESPACE;
    if (listing_load(&l, c, k, ns, pos[1], true) != 0)
        return 1;
    if (pos[1] && l.n == 0) {
        fprintf(stderr, "Error from server (NotFound): %s \"%s\" not found\n", k->plural, pos[1]);
        goto out;
    }
    code = print_statuses(l.items, l.n, out) == 0 ? 0 : 1;
    for (size_t i = 0; pos[1] && i < l.n; i++)
        if (l.items[i].status && l.items[i].status->state == SLUICE__V1__STATUS__STATE__Rejected)
            code = 1;
    fflush(stdout);
    if (watch && status_watch(l.nc, k, ns, pos[1], out) != 0)
        code = 1;
out:
    listing_free(&l);
    return code;
}
