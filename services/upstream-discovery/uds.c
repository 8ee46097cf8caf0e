/* uds.c - services found (etcd registry prefixes, DNS-SD instances) -> Upstreams in sluice_config: created
 * once, never written over a person's, left alone once a person takes them over, removed a grace period
 * after their service is gone (docs/discovery.md, "sluice-upstream-discovery"). */
#include "uds.h"

#include <inttypes.h>
#include <pthread.h>
#include <search.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "sluice/arena.h"
#include "sluice/bsearch.h"
#include "sluice/etcd_follow.h"
#include "sluice/kinds.h"
#include "sluice/kv.h"
#include "sluice/log.h"
#include "sluice/quarantine.h"
#include "sluice/metrics.h"
#include "sluice/resource.h"
#include "sluice/upstreams.h"
#include "sluice/v1/settings.pb-c.h"
#include "sluice/v1/upstream.pb-c.h"
#include "sluice/vec.h"

#define COMP "uds"
#define DEFAULT_NAMESPACE "gloo-system" /* Gloo's discoveryNamespace default (its write namespace) */

/* The sources, and what each writes into an Upstream. */
typedef enum ud_src { UD_ETCD = 0, UD_DNSSD = 1, UD_NSRC } ud_src;
static const char *const src_name[UD_NSRC] = {"etcd", "dnssd"};
static const char *const src_label[UD_NSRC] = {"etcdplugin", "dnssdplugin"};

/* An Upstream in the config bucket, as discovery sees it. */
typedef struct ud_stored {
    char *key; /* "<ns>.<name>" */
    char ns[SL_RESOURCE_NAMESPACE_MAX + 1], name[SL_RESOURCE_NAME_MAX + 1];
    uint64_t rev;
    bool ours;       /* annotated discovered-by: upstream-discovery, for a source and service */
    int src;         /* ours: the source (-1 unknown) */
    char *id;        /* ours: the service */
    bool taken_over; /* ours, but its spec is not what discovery wrote: a person's now */
    bool wanted;     /* a service found now has it (set by each reconcile) */
    bool noted;      /* left alone: said once */
    int64_t gone_ms; /* monotonic: when its service was found gone (0: not gone) */
} ud_stored;

/* One registry root followed in etcd. */
typedef struct ud_root {
    ud_service *s;
    char *root;
    sl_etcd_follow *follow;
    sl_etcd_reg reg;
    bool synced, failed;
} ud_root;

/* A service found now, and the Upstream name it gets. */
typedef struct ud_found {
    int src;
    const char *id;
    char name[SL_RESOURCE_NAME_MAX + 1];
} ud_found;

struct ud_service {
    sl_service *svc;
    sl_nats *nc;
    sl_loop *loop;
    ud_opts o;
    sl_kv *kv;
    sl_kv_watch *w_upstreams, *w_settings;
    int initial_pending;
    bool loaded;
    sl_arena arena;
    ud_stored **st; /* sorted by key */
    size_t n_st, cap_st;
    /* Settings */
    bool enabled;
    char settings_ns[SL_RESOURCE_NAMESPACE_MAX + 1]; /* Settings.discoveryNamespace ("" unset) */
    char **watch_keys, **watch_values;
    size_t n_watch;
    /* sources */
    char *roots_copy;
    ud_root *roots;
    size_t n_roots;
    ud_dnssd *dnssd;
    bool dnssd_seen;   /* a browse came: dnssd_names holds what is known */
    bool dnssd_synced; /* a complete browse came: an instance not found is gone */
    bool dnssd_failed; /* the last browse was incomplete */
    char **dnssd_names;
    size_t n_dnssd_names;
    bool dirty;
    sl_ticker *ticker;
    atomic_bool stop;
    /* metrics */
    sl_counter *c_creates, *c_deletes, *c_errors, *c_source_failures, *c_passes;
    sl_gauge *g_services, *g_owned, *g_left_alone, *g_pending_removal;
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *discovery_ns(const ud_service *s)
{
    if (s->o.namespace_ && s->o.namespace_[0])
        return s->o.namespace_;
    return s->settings_ns[0] ? s->settings_ns : DEFAULT_NAMESPACE;
}

/* ---- the stored Upstreams -------------------------------------------------- */

static int stored_cmp(const void *key, const void *elem)
{
    return strcmp(key, (*(ud_stored *const *)elem)->key);
}

static ud_stored *stored_find(ud_service *s, const char *ns, const char *name)
{
    char key[SL_RESOURCE_KEY_MAX];
    bool found;
    snprintf(key, sizeof key, "%s.%s", ns, name);
    size_t at = sl_bsearch_pos(&found, key, s->st, s->n_st, sizeof *s->st, stored_cmp);
    return found ? s->st[at] : NULL;
}

static void stored_free(ud_stored *e)
{
    if (!e)
        return;
    free(e->key);
    free(e->id);
    free(e);
}

static void stored_remove(ud_service *s, const char *key)
{
    bool found;
    size_t at = sl_bsearch_pos(&found, key, s->st, s->n_st, sizeof *s->st, stored_cmp);
    if (!found)
        return;
    stored_free(s->st[at]);
    memmove(&s->st[at], &s->st[at + 1], (s->n_st - at - 1) * sizeof *s->st);
    s->n_st--;
}

static sl_status stored_put(ud_service *s, ud_stored *e)
{
    bool found;
    size_t at = sl_bsearch_pos(&found, e->key, s->st, s->n_st, sizeof *s->st, stored_cmp);
    if (found) {
        e->gone_ms = s->st[at]->gone_ms; /* a grace already running keeps running */
        e->noted = s->st[at]->noted;
        stored_free(s->st[at]);
        s->st[at] = e;
        return SL_OK;
    }
    if (SL_VEC_RESERVE(s->st, s->cap_st, s->n_st + 1) != SL_OK)
        return SL_ERR_NOMEM;
    memmove(&s->st[at + 1], &s->st[at], (s->n_st - at) * sizeof *s->st);
    s->st[at] = e;
    s->n_st++;
    return SL_OK;
}

/* The spec discovery writes for service id of source src (pointers into
 * the caller's storage). */
typedef struct spec_store {
    Sluice__V1__UpstreamSpec spec;
    Sluice__V1__EtcdUpstreamSpec etcd;
    Sluice__V1__DnsUpstreamSpec dns;
} spec_store;

static Sluice__V1__UpstreamSpec *spec_of(spec_store *m, int src, const char *id)
{
    sluice__v1__upstream_spec__init(&m->spec);
    if (src == UD_ETCD) {
        sluice__v1__etcd_upstream_spec__init(&m->etcd);
        m->etcd.prefix = (char *)id;
        m->spec.upstream_type_case = SLUICE__V1__UPSTREAM_SPEC__UPSTREAM_TYPE_ETCD;
        m->spec.etcd = &m->etcd;
    } else {
        sluice__v1__dns_upstream_spec__init(&m->dns);
        m->dns.name = (char *)id;
        m->dns.srv = true;
        m->spec.upstream_type_case = SLUICE__V1__UPSTREAM_SPEC__UPSTREAM_TYPE_DNS;
        m->spec.dns = &m->dns;
    }
    return &m->spec;
}

/* Whether u's spec is what discovery wrote for its service: equal bytes,
 * leaving aside the functions (serviceSpec), which function discovery
 * writes into discovered Upstreams. */
static bool spec_is_discovery(Sluice__V1__Upstream *u, int src, const char *id)
{
    spec_store want;
    Sluice__V1__ServiceSpec **slot = sl_upstream_service_spec_slot(u);
    if (!u->spec)
        return false;
    if (slot)
        *slot = NULL; /* u is the arena's copy: changed in place */
    const ProtobufCMessage *a = &u->spec->base, *b = &spec_of(&want, src, id)->base;
    size_t la = protobuf_c_message_get_packed_size(a), lb = protobuf_c_message_get_packed_size(b);
    if (la != lb || la > 65536)
        return false;
    uint8_t *pa = malloc(la + 1), *pb = malloc(lb + 1);
    bool same = pa && pb && protobuf_c_message_pack(a, pa) == la && protobuf_c_message_pack(b, pb) == lb &&
                !memcmp(pa, pb, la);
    free(pa);
    free(pb);
    return same;
}

static int src_of(const char *name)
{
    for (int i = 0; name && i < UD_NSRC; i++)
        if (!strcmp(name, src_name[i]))
            return i;
    return -1;
}

/* A value of the config bucket that does not decode (sluice/quarantine.h). */
static void quarantine(ud_service *s, const sl_kv_entry *ke)
{
    sl_quarantine q = {s->nc, "upstream-discovery", sl_service_metrics(s->svc)};
    sl_quarantine_value(&q, SL_BUCKET_CONFIG, ke->key, ke->revision, sl_error_msg());
}

static void on_upstream(ud_service *s, const sl_kv_entry *ke)
{
    sl_resource_id id;
    ProtobufCMessage *pm = NULL;
    if (sl_resource_key_parse(&id, ke->key, 1) != SL_OK)
        return;
    char key[SL_RESOURCE_KEY_MAX];
    snprintf(key, sizeof key, "%s.%s", id.ns, id.name);
    s->dirty = true;
    if (ke->op != SL_KV_PUT) {
        stored_remove(s, key);
        return;
    }
    ud_stored *e = calloc(1, sizeof *e);
    if (!e || !(e->key = strdup(key))) {
        free(e);
        sl_log_error(COMP, "out of memory", "key=%s", ke->key);
        return;
    }
    snprintf(e->ns, sizeof e->ns, "%s", id.ns);
    snprintf(e->name, sizeof e->name, "%s", id.name);
    e->rev = ke->revision;
    e->src = -1;
    if (sl_arena_unpack(&pm, &s->arena, &sluice__v1__upstream__descriptor, ke->value, ke->len) == SL_OK) {
        Sluice__V1__Upstream *u = (Sluice__V1__Upstream *)pm;
        const char *by = sl_kind_annotation(u->metadata, UD_ANN_BY);
        const char *svc = sl_kind_annotation(u->metadata, UD_ANN_SERVICE);
        e->src = src_of(sl_kind_annotation(u->metadata, UD_ANN_SOURCE));
        e->ours = by && !strcmp(by, UD_ANN_BY_VALUE) && svc && e->src >= 0;
        if (e->ours && !(e->id = strdup(svc)))
            e->ours = false;
        e->taken_over = e->ours && !spec_is_discovery(u, e->src, e->id);
    } else {
        quarantine(s, ke); /* nobody's to touch: not ours */
    }
    sl_arena_reset(&s->arena);
    if (stored_put(s, e) != SL_OK) {
        stored_free(e);
        sl_log_error(COMP, "out of memory", "key=%s", ke->key);
    }
}

static void on_settings(ud_service *s, const sl_kv_entry *ke)
{
    ProtobufCMessage *pm = NULL;
    bool enabled = true;
    const char *ns = "";
    Sluice__V1__DiscoveryOptions__UdsOptions *uo = NULL;

    if (ke->op == SL_KV_PUT &&
        sl_arena_unpack(&pm, &s->arena, &sluice__v1__settings__descriptor, ke->value, ke->len) != SL_OK) {
        /* the last good settings stay in use */
        quarantine(s, ke);
        sl_arena_reset(&s->arena);
        return;
    }
    for (size_t i = 0; i < s->n_watch; i++) {
        free(s->watch_keys[i]);
        free(s->watch_values[i]);
    }
    free(s->watch_keys);
    free(s->watch_values);
    s->watch_keys = s->watch_values = NULL;
    s->n_watch = 0;
    if (pm) {
        const Sluice__V1__Settings *st = (const Sluice__V1__Settings *)pm;
        if (st->spec && st->spec->discovery_namespace)
            ns = st->spec->discovery_namespace;
        uo = st->spec && st->spec->discovery ? st->spec->discovery->uds_options : NULL;
        if (uo && uo->enabled)
            enabled = uo->enabled->value;
        size_t n = uo ? uo->n_watch_labels : 0;
        if (n && (s->watch_keys = calloc(n, sizeof *s->watch_keys)) &&
            (s->watch_values = calloc(n, sizeof *s->watch_values))) {
            for (size_t i = 0; i < n; i++) {
                s->watch_keys[s->n_watch] = strdup(uo->watch_labels[i]->key);
                s->watch_values[s->n_watch] = strdup(uo->watch_labels[i]->value);
                if (s->watch_keys[s->n_watch] && s->watch_values[s->n_watch])
                    s->n_watch++;
            }
        }
    }
    if (sl_resource_check_namespace(ns) != SL_OK) {
        if (ns[0])
            sl_log_warn(COMP, "Settings.discoveryNamespace is not a namespace; the default is used", "ns=%s",
                        sl_log_q(ns));
        ns = "";
    }
    snprintf(s->settings_ns, sizeof s->settings_ns, "%s", ns);
    if (enabled != s->enabled)
        sl_log_info(COMP, enabled ? "enabled (Settings.discovery.udsOptions.enabled)"
                                  : "disabled (Settings.discovery.udsOptions.enabled false): nothing is written",
                    "");
    s->enabled = enabled;
    sl_arena_reset(&s->arena);
    sl_log_info(COMP, "settings", "enabled=%d namespace=%s watch_labels=%zu", enabled, discovery_ns(s), s->n_watch);
    s->dirty = true;
}

/* ---- reconciling ------------------------------------------------------------- */

static bool may_write(ud_service *s)
{
    if (!s->o.may_write || s->o.may_write(s->o.may_write_ud))
        return true;
    sl_log_error(COMP, "not writing: this replica does not hold the lease", "");
    return false;
}

/* Whether an etcd endpoint carries every watch label (Settings.discovery.udsOptions.watchLabels). */
static bool labels_match(const ud_service *s, const sl_etcd_endpoint *ep)
{
    for (size_t i = 0; i < s->n_watch; i++) {
        bool ok = false;
        for (size_t k = 0; k < ep->n_labels && !ok; k++)
            ok = !strcmp(ep->label_keys[k], s->watch_keys[i]) && !strcmp(ep->label_values[k], s->watch_values[i]);
        if (!ok)
            return false;
    }
    return true;
}

static int found_cmp(const void *a, const void *b)
{
    const ud_found *x = a, *y = b;
    return x->src != y->src ? x->src - y->src : strcmp(x->id, y->id);
}

/* Every service the sources hold now, sorted by source and id, without
 * duplicates; ids point into the sources' state (valid until it changes). */
static sl_status found_now(ud_service *s, ud_found **out, size_t *n_out, char **ids_owned, size_t *n_owned)
{
    ud_found *v = NULL;
    size_t n = 0, cap = 0;
    char svc[1024];
    *n_owned = 0;
    for (size_t r = 0; r < s->n_roots; r++) {
        const ud_root *rt = &s->roots[r];
        for (size_t i = 0; rt->synced && i < rt->reg.n; i++) {
            const sl_etcd_reg_entry *e = &rt->reg.v[i];
            if (e->error || !sl_upstream_etcd_service(svc, sizeof svc, rt->root, e->key) || !labels_match(s, &e->ep))
                continue;
            if (n && v[n - 1].src == UD_ETCD && !strcmp(v[n - 1].id, svc))
                continue; /* the same service as the key before */
            if (SL_VEC_RESERVE(v, cap, n + 1) != SL_OK || !(ids_owned[*n_owned] = strdup(svc)))
                goto nomem;
            v[n++] = (ud_found){.src = UD_ETCD, .id = ids_owned[(*n_owned)++]};
        }
    }
    /* DNS-SD instances carry no labels: with watch labels set, none is discovered. */
    for (size_t i = 0; s->dnssd_seen && !s->n_watch && i < s->n_dnssd_names; i++) {
        if (SL_VEC_RESERVE(v, cap, n + 1) != SL_OK)
            goto nomem;
        v[n++] = (ud_found){.src = UD_DNSSD, .id = s->dnssd_names[i]};
    }
    if (n)
        qsort(v, n, sizeof *v, found_cmp);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (!k || found_cmp(&v[i], &v[k - 1]))
            v[k++] = v[i];
    *out = v;
    *n_out = k;
    return SL_OK;
nomem:
    free(v);
    return SL_ERR_NOMEM;
}

static void no_free(void *p)
{
    (void)p; /* the names belong to the found services */
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(a, b);
}

/* Names every service found: the name its discovered Upstream already has
 * keeps it; otherwise the plain name, unless another service holds it (a
 * discovered Upstream of another service, or a service named before in
 * this pass): then the suffixed one. */
static void assign_names(ud_service *s, ud_found *v, size_t n, const char *ns)
{
    void *claimed = NULL;
    char plain[SL_RESOURCE_NAME_MAX + 1];
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < n; i++) {
            if (v[i].name[0])
                continue;
            if (sl_upstream_discovered_name(plain, src_name[v[i].src], v[i].id, false) != SL_OK) {
                if (pass == 1)
                    sl_log_debug(COMP, "no Upstream name can be made of this service", "source=%s service=%s",
                                 src_name[v[i].src], sl_log_q(v[i].id));
                continue;
            }
            ud_stored *e = stored_find(s, ns, plain);
            bool mine = e && e->ours && e->src == v[i].src && !strcmp(e->id, v[i].id);
            if (pass == 0 && !mine) {
                char suffixed[SL_RESOURCE_NAME_MAX + 1];
                ud_stored *f = sl_upstream_discovered_name(suffixed, src_name[v[i].src], v[i].id, true) == SL_OK
                                   ? stored_find(s, ns, suffixed)
                                   : NULL;
                if (f && f->ours && f->src == v[i].src && !strcmp(f->id, v[i].id)) {
                    memcpy(v[i].name, suffixed, sizeof suffixed);
                    tsearch(v[i].name, &claimed, name_cmp);
                }
                continue;
            }
            bool other = (e && e->ours && !mine) || tfind(plain, &claimed, name_cmp);
            if (other)
                sl_upstream_discovered_name(v[i].name, src_name[v[i].src], v[i].id, true);
            else
                memcpy(v[i].name, plain, sizeof plain);
            tsearch(v[i].name, &claimed, name_cmp);
        }
    }
    tdestroy(claimed, no_free);
}

/* Creates the Upstream of a service found (only where nothing is stored). */
static void create_upstream(ud_service *s, const ud_found *f, const char *ns)
{
    Sluice__V1__Upstream u = SLUICE__V1__UPSTREAM__INIT;
    Sluice__V1__Metadata md = SLUICE__V1__METADATA__INIT;
    Sluice__V1__Metadata__LabelsEntry label = SLUICE__V1__METADATA__LABELS_ENTRY__INIT, *labels[1] = {&label};
    Sluice__V1__Metadata__AnnotationsEntry ann[3], *anns[3];
    spec_store spec;
    char key[SL_RESOURCE_KEY_MAX];
    uint64_t rev = 0;

    if (!s->enabled || sl_resource_key(key, sizeof key, "Upstream", ns, f->name) != SL_OK || !may_write(s))
        return;
    /* Annotations sorted by key, as a map is packed from YAML. */
    const char *ak[3] = {UD_ANN_BY, UD_ANN_SERVICE, UD_ANN_SOURCE};
    const char *av[3] = {UD_ANN_BY_VALUE, f->id, src_name[f->src]};
    for (int i = 0; i < 3; i++) {
        sluice__v1__metadata__annotations_entry__init(&ann[i]);
        ann[i].key = (char *)ak[i];
        ann[i].value = (char *)av[i];
        anns[i] = &ann[i];
    }
    label.key = UD_LABEL_BY;
    label.value = (char *)src_label[f->src];
    md.name = (char *)f->name;
    md.namespace_ = (char *)ns;
    md.n_labels = 1;
    md.labels = labels;
    md.n_annotations = 3;
    md.annotations = anns;
    md.generation = 1;
    u.metadata = &md;
    u.spec = spec_of(&spec, f->src, f->id);
    size_t len = protobuf_c_message_get_packed_size(&u.base);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf)
        return;
    protobuf_c_message_pack(&u.base, buf);
    sl_status rc = sl_kv_create(&rev, s->kv, key, buf, len);
    free(buf);
    if (rc == SL_ERR_EXISTS) {
        sl_log_info(COMP, "someone wrote it first; looking again", "key=%s", key);
        return; /* the watch brings it: the next pass decides */
    }
    if (rc != SL_OK) {
        sl_counter_inc(s->c_errors);
        sl_log_warn(COMP, "create failed", "key=%s err=%s", key, sl_log_q(sl_error_msg()));
        return;
    }
    sl_counter_inc(s->c_creates);
    sl_log_info(COMP, "upstream created", "key=%s source=%s service=%s rev=%" PRIu64, key, src_name[f->src],
                sl_log_q(f->id), rev);
}

static void delete_upstream(ud_service *s, ud_stored *e)
{
    char key[SL_RESOURCE_KEY_MAX];
    if (!s->enabled || sl_resource_key(key, sizeof key, "Upstream", e->ns, e->name) != SL_OK || !may_write(s))
        return;
    sl_status rc = sl_kv_delete(NULL, s->kv, key, e->rev);
    if (rc == SL_ERR_CONFLICT) {
        sl_log_info(COMP, "changed meanwhile; looking again", "key=%s", key);
        return;
    }
    if (rc != SL_OK && rc != SL_ERR_NOT_FOUND) {
        sl_counter_inc(s->c_errors);
        sl_log_warn(COMP, "delete failed", "key=%s err=%s", key, sl_log_q(sl_error_msg()));
        return;
    }
    sl_counter_inc(s->c_deletes);
    sl_log_info(COMP, "upstream removed: its service is gone", "key=%s source=%s service=%s", key,
                src_name[e->src], sl_log_q(e->id));
    e->gone_ms = 0;
}

/* Whether source src can say now that a service is gone: configured,
 * read at least once, and answering. */
static bool source_knows(const ud_service *s, int src)
{
    if (src == UD_ETCD) {
        for (size_t r = 0; r < s->n_roots; r++)
            if (!s->roots[r].synced || s->roots[r].failed)
                return false;
        return true; /* no roots: nothing is found, so everything is gone */
    }
    return s->dnssd ? s->dnssd_synced : true; /* what failed since is kept in dnssd_names */
}

/* Services found -> Upstreams created; discovered Upstreams whose service
 * is gone -> removed once the grace period has passed. */
static void reconcile(ud_service *s)
{
    ud_found *v = NULL;
    size_t n = 0, n_owned = 0, left_alone = 0, owned = 0, pending = 0;
    size_t n_keys = 0;
    for (size_t r = 0; r < s->n_roots; r++)
        n_keys += s->roots[r].reg.n;
    char **ids = calloc(n_keys ? n_keys : 1, sizeof *ids);
    const char *ns = discovery_ns(s);
    int64_t now = mono_ms();

    if (!ids || found_now(s, &v, &n, ids, &n_owned) != SL_OK) {
        sl_log_error(COMP, "out of memory", "");
        goto out;
    }
    assign_names(s, v, n, ns);
    for (size_t i = 0; i < s->n_st; i++)
        s->st[i]->wanted = false;
    for (size_t i = 0; i < n; i++) {
        if (!v[i].name[0])
            continue; /* no name can be made of it: no letter or digit (assign_names said so) */
        ud_stored *e = stored_find(s, ns, v[i].name);
        if (!e) {
            create_upstream(s, &v[i], ns);
            continue;
        }
        e->wanted = true;
        if (!e->ours || e->taken_over) {
            left_alone++;
            if (!e->noted)
                sl_log_info(COMP, e->ours ? "upstream taken over by a person: left alone"
                                          : "an upstream of that name was written by a person: left alone",
                            "key=%s source=%s service=%s", e->key, src_name[v[i].src], sl_log_q(v[i].id));
            e->noted = true;
            continue;
        }
        if (e->gone_ms)
            sl_log_info(COMP, "service back: upstream kept", "key=%s", e->key);
        e->gone_ms = 0;
    }
    for (size_t i = 0; i < s->n_st; i++) {
        ud_stored *e = s->st[i];
        if (!e->ours || e->taken_over)
            continue;
        owned++;
        if (e->wanted)
            continue;
        if (!source_knows(s, e->src)) {
            e->gone_ms = 0; /* a source that cannot answer removes nothing; the grace starts again */
            continue;
        }
        if (!e->gone_ms) {
            e->gone_ms = now;
            sl_log_info(COMP, "service gone: upstream removed after the grace period", "key=%s grace_ms=%lld",
                        e->key, (long long)s->o.grace_ms);
        }
        if (now - e->gone_ms >= s->o.grace_ms)
            delete_upstream(s, e);
        else
            pending++;
    }
    sl_counter_inc(s->c_passes);
    sl_gauge_set(s->g_services, (double)n);
    sl_gauge_set(s->g_owned, (double)owned);
    sl_gauge_set(s->g_left_alone, (double)left_alone);
    sl_gauge_set(s->g_pending_removal, (double)pending);
out:
    for (size_t i = 0; i < n_owned; i++)
        free(ids[i]);
    free(ids);
    free(v);
}

/* On the loop, every tick: changes, and graces running out. */
static void tick(void *ud)
{
    ud_service *s = ud;
    bool pending = false;
    if (!s->loaded)
        return; /* disabled: reconciled all the same (the gauges), nothing written */
    for (size_t i = 0; i < s->n_st && !pending; i++)
        pending = s->st[i]->gone_ms != 0;
    if (!s->dirty && !pending)
        return;
    s->dirty = false;
    reconcile(s);
}

/* ---- sources ------------------------------------------------------------------ */

/* On the loop: a step of one root's registry. */
static void apply_etcd(void *ud)
{
    sl_etcd_batch *b = ud;
    ud_root *rt = b->owner;
    ud_service *s = rt->s;
    if (b->step == SL_ETCD_FAILED) {
        sl_counter_inc(s->c_source_failures);
        sl_log_warn(COMP, "etcd failed: its upstreams are kept", "root=%s server=%s err=%s", sl_log_q(rt->root),
                    b->server, sl_log_q(b->error));
        rt->failed = true;
    } else {
        if (sl_etcd_reg_apply(&rt->reg, b) != SL_OK)
            sl_log_error(COMP, "out of memory applying the registry", "root=%s", sl_log_q(rt->root));
        if (b->step == SL_ETCD_RESET)
            rt->synced = true;
        rt->failed = false;
    }
    s->dirty = true;
    sl_etcd_batch_free(b);
}

static void drop_etcd(void *ud)
{
    sl_etcd_batch_free(ud);
}

static void on_etcd(sl_etcd_batch *b, void *ud)
{
    ud_root *rt = ud;
    b->owner = rt;
    if (atomic_load(&rt->s->stop) || sl_loop_post(rt->s->loop, rt->s, apply_etcd, drop_etcd, b) != SL_OK)
        sl_etcd_batch_free(b);
}

/* Whether instance lies under a PTR query that failed: its type's
 * ("<instance>.<type>.<domain>"), or its domain's enumeration. */
static bool under_failed(const char *instance, const ud_dnssd_result *r)
{
    static const char enumeration[] = "_services._dns-sd._udp.";
    size_t ln = strlen(instance);
    for (size_t i = 0; i < r->n_failed; i++) {
        const char *zone = r->failed[i];
        if (!strncasecmp(zone, enumeration, sizeof enumeration - 1))
            zone += sizeof enumeration - 1;
        size_t lz = strlen(zone);
        if (ln > lz + 1 && instance[ln - lz - 1] == '.' && !strcasecmp(instance + ln - lz, zone))
            return true;
    }
    return false;
}

/* On the loop: a DNS-SD browse ended. What the queries that failed would
 * have said is taken from the browse before, so that the answered part is
 * followed (and its instances gone are removed) while the rest is kept. */
static void apply_dnssd(void *ud)
{
    ud_dnssd_result *r = ud;
    ud_service *s = r->owner;
    if (r->n_failed) {
        size_t cap = r->n; /* at least */
        for (size_t i = 0; i < s->n_dnssd_names; i++) {
            if (!under_failed(s->dnssd_names[i], r))
                continue;
            char *keep = strdup(s->dnssd_names[i]);
            if (!keep || SL_VEC_RESERVE(r->names, cap, r->n + 1) != SL_OK) {
                free(keep); /* out of memory: the browse is not used */
                ud_dnssd_result_free(r);
                return;
            }
            r->names[r->n++] = keep;
        }
        sl_dns_names_sort(r->names, &r->n);
        if (!s->dnssd_failed) {
            sl_counter_inc(s->c_source_failures);
            sl_log_warn(COMP, "DNS-SD failed: the instances of what did not answer are kept",
                        "failed_queries=%zu err=%s", r->n_failed, sl_log_q(r->error));
        }
        s->dnssd_failed = true;
    } else if (s->dnssd_failed) {
        sl_log_info(COMP, "DNS-SD answers again", "");
        s->dnssd_failed = false;
    }
    bool same = s->dnssd_seen && r->n == s->n_dnssd_names;
    for (size_t i = 0; same && i < r->n; i++)
        same = !strcmp(r->names[i], s->dnssd_names[i]);
    if (!same) {
        sl_dns_names_free(s->dnssd_names, s->n_dnssd_names);
        s->dnssd_names = r->names;
        s->n_dnssd_names = r->n;
        r->names = NULL;
        r->n = 0;
        sl_log_info(COMP, "DNS-SD instances", "count=%zu", s->n_dnssd_names);
        s->dirty = true;
    }
    s->dnssd_seen = true;
    if (!r->n_failed && !s->dnssd_synced) {
        s->dnssd_synced = true; /* from now on, an instance not found is gone */
        s->dirty = true;
    }
    ud_dnssd_result_free(r);
}

static void drop_dnssd(void *ud)
{
    ud_dnssd_result_free(ud);
}

static void on_dnssd(ud_dnssd_result *r, void *ud)
{
    ud_service *s = ud;
    r->owner = s;
    if (atomic_load(&s->stop) || sl_loop_post(s->loop, s, apply_dnssd, drop_dnssd, r) != SL_OK)
        ud_dnssd_result_free(r);
}

/* ---- the config bucket ---------------------------------------------------------- */

static void on_upstream_entry(sl_kv_watch *w, const sl_kv_entry *ke, void *ud)
{
    (void)w;
    on_upstream(ud, ke);
}

static void on_settings_entry(sl_kv_watch *w, const sl_kv_entry *ke, void *ud)
{
    (void)w;
    on_settings(ud, ke);
}

static void on_initial(sl_kv_watch *w, void *ud)
{
    ud_service *s = ud;
    (void)w;
    if (--s->initial_pending > 0)
        return;
    s->loaded = true;
    s->dirty = true;
    size_t ours = 0;
    for (size_t i = 0; i < s->n_st; i++)
        ours += s->st[i]->ours && !s->st[i]->taken_over;
    sl_log_info(COMP, "initial values loaded", "upstreams=%zu discovered=%zu namespace=%s", s->n_st, ours,
                discovery_ns(s));
    sl_service_set_ready(s->svc, true);
}

static void on_watch_failed(sl_kv_watch *w, sl_status st, const char *msg, void *ud)
{
    ud_service *s = ud;
    (void)w;
    sl_log_error(COMP, "watch failed", "err=%s status=%s", sl_log_q(msg), sl_status_str(st));
    sl_service_request_stop(s->svc, SL_EXIT_FAILURE);
}

/* ---- start and stop --------------------------------------------------------------- */

static sl_status register_metrics(ud_service *s)
{
    sl_metrics *reg = sl_service_metrics(s->svc);
    sl_status rc;
    if ((rc = sl_metrics_counter(&s->c_creates, reg, "sluice_upstream_discovery_creates_total",
                                 "Upstreams created for services found.")) != SL_OK ||
        (rc = sl_metrics_counter(&s->c_deletes, reg, "sluice_upstream_discovery_deletes_total",
                                 "Discovered Upstreams removed after their service was gone for the grace "
                                 "period.")) != SL_OK ||
        (rc = sl_metrics_counter(&s->c_errors, reg, "sluice_upstream_discovery_write_errors_total",
                                 "Failed KV writes and deletes.")) != SL_OK ||
        (rc = sl_metrics_counter(&s->c_source_failures, reg, "sluice_upstream_discovery_source_failures_total",
                                 "Times a source (etcd, DNS-SD) failed (its Upstreams kept).")) != SL_OK ||
        (rc = sl_metrics_counter(&s->c_passes, reg, "sluice_upstream_discovery_passes_total",
                                 "Passes over what the sources hold and the Upstreams stored (after a change, "
                                 "and while a grace runs).")) != SL_OK ||
        (rc = sl_metrics_gauge(&s->g_services, reg, "sluice_upstream_discovery_services",
                               "Services the sources hold now.")) != SL_OK ||
        (rc = sl_metrics_gauge(&s->g_owned, reg, "sluice_upstream_discovery_upstreams",
                               "Upstreams discovery owns (annotated, not taken over).")) != SL_OK ||
        (rc = sl_metrics_gauge(&s->g_left_alone, reg, "sluice_upstream_discovery_left_alone",
                               "Services whose Upstream a person wrote or took over.")) != SL_OK ||
        (rc = sl_metrics_gauge(&s->g_pending_removal, reg, "sluice_upstream_discovery_pending_removal",
                               "Discovered Upstreams whose service is gone, within the grace period.")) != SL_OK)
        return rc;
    return SL_OK;
}

static sl_status start_sources(ud_service *s)
{
    sl_status rc;
    if (s->o.etcd_endpoints && s->o.etcd_endpoints[0]) {
        char *save = NULL;
        if (!(s->roots_copy = strdup(s->o.etcd_roots && s->o.etcd_roots[0] ? s->o.etcd_roots : "")) ||
            !(s->roots = calloc(strlen(s->roots_copy) / 2 + 2, sizeof *s->roots)))
            return sl_error_set(SL_ERR_NOMEM, "out of memory");
        for (char *t = strtok_r(s->roots_copy, ",", &save); t; t = strtok_r(NULL, ",", &save))
            s->roots[s->n_roots++] = (ud_root){.s = s, .root = t};
        if (!s->n_roots) /* no root given: the whole keyspace */
            s->roots[s->n_roots++] = (ud_root){.s = s, .root = s->roots_copy};
        for (size_t i = 0; i < s->n_roots; i++) {
            sl_etcd_follow_opts eo = {.endpoints = s->o.etcd_endpoints, .prefix = s->roots[i].root,
                                      .timeout_ms = s->o.etcd_timeout_ms, .retry_ms = s->o.retry_ms,
                                      .cb = on_etcd, .ud = &s->roots[i]};
            if ((rc = sl_etcd_follow_start(&s->roots[i].follow, &eo)) != SL_OK)
                return rc;
        }
    }
    if (s->o.dnssd_domains && s->o.dnssd_domains[0]) {
        ud_dnssd_opts dopts = {.dns = s->o.dns, .domains = s->o.dnssd_domains, .types = s->o.dnssd_types,
                               .refresh_ms = s->o.dnssd_refresh_ms, .retry_ms = s->o.retry_ms, .cb = on_dnssd,
                               .ud = s};
        if ((rc = ud_dnssd_start(&s->dnssd, &dopts)) != SL_OK)
            return rc;
    }
    return SL_OK;
}

sl_status ud_service_start(ud_service **out, sl_service *svc, sl_nats *nc, sl_loop *loop, const ud_opts *o)
{
    ud_service *s = calloc(1, sizeof *s);
    sl_kv_config cfg;
    sl_status rc;
    char settings_key[SL_RESOURCE_KEY_MAX];
    sl_kv_watch_handlers hu = {.entry = on_upstream_entry, .initial_done = on_initial, .failed = on_watch_failed};
    sl_kv_watch_handlers hs = {.entry = on_settings_entry, .initial_done = on_initial, .failed = on_watch_failed};
    sl_kv_watch_opts wu = {.keys = "Upstream.>"}, ws = {.keys = settings_key};

    *out = NULL;
    if (!s)
        return SL_ERR_NOMEM;
    s->svc = svc;
    s->nc = nc;
    s->loop = loop;
    s->o = *o;
    s->enabled = true;
    if (s->o.tick_ms <= 0)
        s->o.tick_ms = 200;
    sl_arena_init(&s->arena, 0);
    if ((rc = sl_resource_key(settings_key, sizeof settings_key, "Settings", o->settings_ns, o->settings_name)) !=
            SL_OK ||
        (rc = register_metrics(s)) != SL_OK)
        goto err;
    sl_kv_config_init(&cfg, s->o.config_bucket);
    if ((rc = sl_kv_open(&s->kv, nc, &cfg)) != SL_OK)
        goto err;
    s->initial_pending = 2;
    if ((rc = sl_kv_watch_start(&s->w_settings, s->kv, &ws, loop, &hs, s)) != SL_OK ||
        (rc = sl_kv_watch_start(&s->w_upstreams, s->kv, &wu, loop, &hu, s)) != SL_OK ||
        (rc = start_sources(s)) != SL_OK)
        goto err;
    if ((rc = sl_ticker_start(&s->ticker, loop, s->o.tick_ms, tick, s)) != SL_OK)
        goto err;
    *out = s;
    return SL_OK;
err:
    ud_service_free(s);
    return rc;
}

void ud_service_free(ud_service *s)
{
    if (!s)
        return;
    atomic_store(&s->stop, true);
    sl_ticker_free(s->ticker);
    for (size_t i = 0; i < s->n_roots; i++)
        sl_etcd_follow_free(s->roots[i].follow); /* steps not applied are dropped (stop is set) */
    ud_dnssd_free(s->dnssd);
    sl_kv_watch_free(s->w_upstreams);
    sl_kv_watch_free(s->w_settings);
    sl_loop_cancel(s->loop, s);
    sl_kv_free(s->kv);
    for (size_t i = 0; i < s->n_roots; i++)
        sl_etcd_reg_free(&s->roots[i].reg);
    free(s->roots);
    free(s->roots_copy);
    for (size_t i = 0; i < s->n_st; i++)
        stored_free(s->st[i]);
    free(s->st);
    for (size_t i = 0; i < s->n_watch; i++) {
        free(s->watch_keys[i]);
        free(s->watch_values[i]);
    }
    free(s->watch_keys);
    free(s->watch_values);
    sl_dns_names_free(s->dnssd_names, s->n_dnssd_names);
    sl_arena_deinit(&s->arena);
    free(s);
}
