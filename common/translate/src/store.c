/* store.c - the translator's input: sluice.v1 resources by kind, kept
 * sorted by (namespace, name) so lookups are binary searches and
 * translation order is deterministic. */
#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "sluice/pbcheck.h"
#include "sluice/bsearch.h"
#include "sluice/codec.h"
#include "sluice/resource.h"
#include "sluice/types.h"
#include "sluice/vec.h"

int tr_kind_index(const sl_kind *k)
{
    for (size_t i = 0; i < sl_kind_count() && i < TR_MAX_KINDS; i++)
        if (sl_kind_at(i) == k)
            return (int)i;
    return -1;
}

typedef struct entry_key {
    const char *ns, *name;
} entry_key;

/* Orders an entry_key against a tr_entry by (namespace, name). */
static int cmp_entry(const void *key, const void *elem)
{
    const entry_key *k = key;
    const tr_entry *e = elem;
    int c = strcmp(k->ns, e->ns);
    return c ? c : strcmp(k->name, e->name);
}

/* Position of ns/name in b (*found) or where it goes. */
static size_t entry_pos(bool *found, const tr_bucket *b, const char *ns, const char *name)
{
    entry_key k = {ns, name};
    return sl_bsearch_pos(found, &k, b->v, b->n, sizeof *b->v, cmp_entry);
}

long tr_bucket_find(const tr_bucket *b, const char *ns, const char *name)
{
    bool found;
    size_t pos = entry_pos(&found, b, ns, name);
    return found ? (long)pos : -1;
}

/* Records the change of a resource of kind k (stamped s->seq) in the
 * store-wide stamps that tell translations what they may keep; layout:
 * it was added or removed (positions moved). */
static void note_change(sl_tr_store *s, const sl_kind *k, bool layout)
{
    bool secret = strcmp(k->kind, "Secret") == 0, eps = strcmp(k->kind, "EndpointSet") == 0;
    if (secret)
        s->secret_gen = s->seq;
    if (eps)
        s->eps_gen = s->seq;
    if (strcmp(k->kind, "VirtualService") != 0)
        s->world = s->seq;
    else if (layout)
        s->vs_layout = s->seq;
    if (layout)
        s->layout = s->seq;
    if (secret || eps || strcmp(k->kind, "Upstream") == 0 || strcmp(k->kind, "Settings") == 0)
        s->up_world = s->seq;
}

sl_status sl_tr_store_new(sl_tr_store **out)
{
    *out = calloc(1, sizeof **out);
    return *out ? SL_OK : SL_ERR_NOMEM;
}

void tr_up_cache_free(tr_up_cache *c)
{
    if (!c)
        return;
    free(c->settings_ns);
    tr_blob_unref(c->cluster);
    tr_blob_unref(c->cla);
    free(c);
}

void tr_vh_cache_free(tr_vh_cache *c)
{
    while (c) {
        tr_vh_cache *next = c->next;
        free(c->settings_ns);
        free(c->proxy);
        free(c->listener);
        tr_blob_unref(c->blob);
        free(c->name);
        for (size_t i = 0; i < c->n_domains; i++)
            free(c->domains[i]);
        free(c->domains);
        free(c->used);
        for (size_t i = 0; i < c->n_reps; i++) {
            free(c->reps[i].ns);
            free(c->reps[i].name);
            free(c->reps[i].msg);
        }
        free(c->reps);
        free(c->rt_idx);
        free(c->rt_flags);
        free(c->up_idx);
        free(c);
        c = next;
    }
}

tr_rblob *tr_rblob_ref(tr_rblob *b)
{
    b->refs++;
    return b;
}

void tr_rblob_unref(tr_rblob *b)
{
    if (b && --b->refs == 0)
        free(b);
}

tr_replist *tr_replist_ref(tr_replist *l)
{
    l->refs++;
    return l;
}

void tr_replist_unref(tr_replist *l)
{
    if (!l || --l->refs)
        return;
    for (size_t i = 0; i < l->n; i++)
        tr_rblob_unref(l->v[i].shared);
    free(l->stamps);
    free(l);
}

static void entry_free(tr_entry *e)
{
    tr_rblob_unref(e->rcache);
    tr_up_cache_free(e->cache);
    tr_vh_cache_free(e->vcache);
    if (e->good && e->good != e->msg)
        protobuf_c_message_free_unpacked(e->good, NULL);
    if (e->msg)
        protobuf_c_message_free_unpacked(e->msg, NULL);
    free(e->ns);
    free(e->name);
}

tr_rlist *tr_rlist_ref(tr_rlist *l)
{
    l->refs++;
    return l;
}

void tr_rlist_unref(tr_rlist *l)
{
    if (!l || --l->refs)
        return;
    for (size_t i = 0; i < l->n; i++)
        tr_blob_unref(l->v[i].shared);
    free(l);
}

void tr_sort_cache_clear(tr_sort_cache *c)
{
    free(c->settings_ns);
    c->settings_ns = NULL;
    tr_rlist_unref(c->list);
    c->list = NULL;
    for (size_t i = 0; i < c->n_in; i++)
        tr_blob_unref(c->in[i]);
    free(c->in);
    free(c->perm);
    c->in = NULL;
    c->perm = NULL;
    c->n_in = c->n_perm = 0;
    free(c->reach);
    c->reach = NULL;
    c->n_reach = 0;
}

void tr_gw_memo_free(tr_gw_memo *m)
{
    while (m) {
        tr_gw_memo *next = m->next;
        free(m->proxy);
        free(m->listener);
        free(m->settings_ns);
        free(m->stamps);
        free(m->c);
        free(m->vh);
        free(m->con);
        free(m->dom);
        tr_blob_unref(m->rcfg);
        free(m);
        m = next;
    }
}

void sl_tr_store_drop_kept(sl_tr_store *s)
{
    tr_store_settle(s);
    tr_gw_memo_free(s->memos);
    s->memos = NULL;
    tr_replist_unref(s->replist);
    s->replist = NULL;
    free(s->up_clean_ns);
    s->up_clean_ns = NULL;
    s->up_clean = false;
    while (s->sorted) {
        tr_sort_cache *next = s->sorted->next;
        tr_sort_cache_clear(s->sorted);
        free(s->sorted->proxy);
        free(s->sorted);
        s->sorted = next;
    }
    for (int k = 0; k < TR_MAX_KINDS; k++)
        for (size_t i = 0; i < s->b[k].n; i++) {
            tr_entry *e = &s->b[k].v[i];
            tr_rblob_unref(e->rcache);
            tr_up_cache_free(e->cache);
            tr_vh_cache_free(e->vcache);
            e->rcache = NULL;
            e->cache = NULL;
            e->vcache = NULL;
        }
}

void sl_tr_store_free(sl_tr_store *s)
{
    if (!s)
        return;
    sl_tr_store_drop_kept(s);
    for (int k = 0; k < TR_MAX_KINDS; k++) {
        for (size_t i = 0; i < s->b[k].n; i++)
            entry_free(&s->b[k].v[i]);
        free(s->b[k].v);
    }
    free(s);
}

sl_status sl_tr_store_put(sl_tr_store *s, const sl_kind *k, ProtobufCMessage *msg, uint64_t revision)
{
    sl_status rc = SL_OK;
    int ki = k ? tr_kind_index(k) : -1;
    const Sluice__V1__Metadata *md = msg ? sl_kind_metadata(msg) : NULL;
    tr_bucket *b;
    const char *ns;
    size_t pos;
    bool found;

    tr_store_settle(s); /* a pending translation reads the buckets as they are */

    if (ki < 0 || !md || !md->name) {
        rc = sl_error_set(SL_ERR_INVALID, "resource without kind or metadata");
        goto err;
    }
    ns = md->namespace_ && md->namespace_[0] ? md->namespace_ : SL_RESOURCE_DEFAULT_NAMESPACE;
    if ((rc = sl_resource_check_name(md->name)) != SL_OK ||
        (rc = sl_resource_check_namespace(ns)) != SL_OK)
        goto err;
    b = &s->b[ki];
    pos = entry_pos(&found, b, ns, md->name);
    if (found) {
        tr_entry *e = &b->v[pos];
        if (e->msg && e->msg != e->good)
            protobuf_c_message_free_unpacked(e->msg, NULL);
        e->msg = msg;
        e->rev = revision;
        e->stamp = ++s->seq;
        tr_up_cache_free(e->cache);
        e->cache = NULL;
        tr_vh_cache_free(e->vcache);
        e->vcache = NULL;
        note_change(s, k, false);
        return SL_OK;
    }
    if ((rc = SL_VEC_RESERVE(b->v, b->cap, b->n + 1)) != SL_OK)
        goto err;
    {
        tr_entry e = {0};
        if (!(e.ns = strdup(ns)) || !(e.name = strdup(md->name))) {
            free(e.ns);
            free(e.name);
            rc = SL_ERR_NOMEM;
            goto err;
        }
        e.msg = msg;
        e.rev = revision;
        e.stamp = ++s->seq;
        note_change(s, k, true);
        memmove(&b->v[pos + 1], &b->v[pos], (b->n - pos) * sizeof *b->v);
        b->v[pos] = e;
        b->n++;
    }
    return SL_OK;
err:
    if (msg)
        protobuf_c_message_free_unpacked(msg, NULL);
    return rc;
}

sl_status sl_tr_store_put_packed(sl_tr_store *s, const sl_kind *k, const void *data, size_t len,
                                 uint64_t revision)
{
    ProtobufCMessage *m = NULL;
    if (!k)
        return sl_error_set(SL_ERR_INVALID, "no kind");
    if (sl_pb_unpack(&m, k->descriptor, NULL, data, len) != SL_OK)
        return sl_error_set(SL_ERR_PARSE, "bytes are not a valid %s: %s", k->descriptor->name, sl_error_msg());
    return sl_tr_store_put(s, k, m, revision);
}

bool sl_tr_store_remove(sl_tr_store *s, const sl_kind *k, const char *ns, const char *name)
{
    int ki = k ? tr_kind_index(k) : -1;
    tr_bucket *b;
    long pos;
    tr_store_settle(s); /* a pending translation reads the buckets as they are */
    if (ki < 0)
        return false;
    b = &s->b[ki];
    if ((pos = tr_bucket_find(b, ns, name)) < 0)
        return false;
    entry_free(&b->v[pos]);
    memmove(&b->v[pos], &b->v[pos + 1], (b->n - (size_t)pos - 1) * sizeof *b->v);
    b->n--;
    /* whatever was built with it (an endpoint set, Settings) is rebuilt:
     * stamps of what remains cannot tell its absence apart */
    ++s->seq;
    note_change(s, k, true);
    return true;
}

size_t sl_tr_store_count(const sl_tr_store *s, const sl_kind *k)
{
    int ki = k ? tr_kind_index(k) : -1;
    return ki < 0 ? 0 : s->b[ki].n;
}

sl_status sl_tr_store_load_yaml(sl_tr_store *s, const char *text, size_t len, const char *filename,
                                sl_diag *diag)
{
    static const char *const skip[] = {"apiVersion", "kind", NULL};
    sl_codec_options opts = {0};
    sl_codec_stream *st = NULL;
    sl_codec_doc *doc = NULL;
    sl_status rc = SL_OK, r;
    int failures = 0;

    opts.resolver = sl_types_find_url;
    opts.ignore_keys = skip;
    if ((r = sl_codec_stream_new(&st, text, len, filename)) != SL_OK)
        return r;
    for (;;) {
        const sl_kind *k = NULL;
        ProtobufCMessage *msg = NULL;

        r = sl_codec_stream_next(st, &doc, diag);
        if (r != SL_OK) {
            rc = SL_ERR_PARSE;
            if (++failures > SL_CODEC_MAX_ERRORS)
                break;
            continue;
        }
        if (!doc)
            break;
        if (sl_codec_doc_empty(doc))
            goto next;
        if (sl_kind_resolve(&k, sl_codec_doc_scalar(doc, "apiVersion"), sl_codec_doc_scalar(doc, "kind")) !=
            SL_OK) {
            if (diag)
                sl_diag_add(diag, SL_DIAG_ERROR, filename, sl_codec_doc_line(doc), 0, NULL, "%s",
                            sl_error_msg());
            rc = SL_ERR_PARSE;
            goto next;
        }
        opts.root_name = k->kind;
        if (sl_codec_decode_doc(&msg, k->descriptor, doc, &opts, diag) != SL_OK) {
            rc = SL_ERR_PARSE;
            goto next;
        }
        if (sl_tr_store_put(s, k, msg, 0) != SL_OK) {
            if (diag)
                sl_diag_add(diag, SL_DIAG_ERROR, filename, sl_codec_doc_line(doc), 0, NULL, "%s",
                            sl_error_msg());
            rc = SL_ERR_PARSE;
        }
    next:
        sl_codec_doc_free(doc);
        doc = NULL;
    }
    sl_codec_stream_free(st);
    return rc;
}
