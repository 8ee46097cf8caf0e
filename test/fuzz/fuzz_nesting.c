/* fuzz_nesting.c - deeply nested messages on every protobuf entry point.
 *
 * protobuf-c unpacks recursively with no depth limit (issue 12: a
 * DiscoveryRequest whose node.metadata holds google.protobuf.Value lists
 * nested 10,000 deep overflows sluice-xds's stack). This target builds
 * such nesting, a Value of list_value / struct_value levels, and places it
 * at the shortest field path to a Struct, Value or ListValue inside the
 * message each entry point decodes (found from the descriptors, so a new
 * field or kind is covered without editing this file):
 *
 *   xds-sotw, xds-delta  a (Delta)DiscoveryRequest unpacked as
 *                        services/xds/server.c on_request() does (keep in
 *                        step with it)
 *   pb-unpack            a DiscoveryRequest through sl_pb_unpack(), the
 *                        bounded decode (sluice/pbcheck.h)
 *   envelope <msg>       sl_arena_unpack() of what NATS messages and config
 *                        KV values carry: Report, ApplyRequest,
 *                        DeleteRequest, every kind's resource message
 *   translator <kind>    sl_tr_store_put_packed(): the translator's KV values
 *   xds-kv <type>        sl_xds_res_new(): sluice-xds's KV resources
 *
 * Input: byte 0 picks the entry point, bytes 1-2 (little endian) the number
 * of nesting levels, each further bit the shape of one level (0: a
 * ListValue, 1: a Struct entry; cycling over the bytes). Beyond "no crash,
 * no leak": the bounded decoders (pb-unpack, envelope) accept a message
 * nested at most 60 deep and refuse one nested 70 or more deep
 * (SL_PB_MAX_DEPTH is 64).
 *
 * Every entry point decodes through the bounded check now, so the
 * committed seeds include the 10,000-deep request of issue 12 on each of
 * them (entryNN-depth10000.bin), replayed by ctest in every build.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_reader.h"

#include "envoy/config/cluster/v3/cluster.pb-c.h"
#include "envoy/config/endpoint/v3/endpoint.pb-c.h"
#include "envoy/config/listener/v3/listener.pb-c.h"
#include "envoy/config/route/v3/route.pb-c.h"
#include "envoy/extensions/transport_sockets/tls/v3/secret.pb-c.h"
#include "envoy/service/discovery/v3/discovery.pb-c.h"
#include "ratelimit/config/ratelimit/v3/rls_conf.pb-c.h"
#include "sluice/arena.h"
#include "sluice/kinds.h"
#include "sluice/log.h"
#include "sluice/pbcheck.h"
#include "sluice/translate.h"
#include "sluice/v1/events.pb-c.h"
#include "sluice/xds.h"
#include "sluice/xds_cache.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum entry_kind { E_XDS_SOTW, E_XDS_DELTA, E_PB_UNPACK, E_ENVELOPE, E_TRANSLATOR, E_XDS_KV };

typedef struct entry {
    enum entry_kind kind;
    const ProtobufCMessageDescriptor *desc;
    const sl_kind *k;  /* E_TRANSLATOR */
    sl_xds_type type;  /* E_XDS_KV */
    /* The shortest path from desc to a Struct, Value or ListValue field. */
    const ProtobufCFieldDescriptor *path[32];
    size_t n_path;
} entry;

#define MAX_ENTRIES 64
static entry entries[MAX_ENTRIES];
static size_t n_entries;

static int is_nestable(const ProtobufCMessageDescriptor *d)
{
    return !strcmp(d->name, "google.protobuf.Value") || !strcmp(d->name, "google.protobuf.Struct") ||
           !strcmp(d->name, "google.protobuf.ListValue");
}

/* Breadth-first over message-typed fields from root: the shortest field
 * path to a nestable message in e->path. 0 when there is none. */
static int find_path(entry *e)
{
    enum { CAP = 4096 };
    static const ProtobufCMessageDescriptor *q[CAP];
    static int parent[CAP];
    static const ProtobufCFieldDescriptor *via[CAP];
    size_t head = 0, tail = 0;

    q[tail] = e->desc, parent[tail] = -1, via[tail++] = NULL;
    while (head < tail) {
        size_t cur = head++;
        const ProtobufCMessageDescriptor *d = q[cur];
        for (unsigned i = 0; i < d->n_fields; i++) {
            const ProtobufCFieldDescriptor *f = &d->fields[i];
            const ProtobufCMessageDescriptor *sub;
            size_t j;
            if (f->type != PROTOBUF_C_TYPE_MESSAGE)
                continue;
            sub = f->descriptor;
            if (is_nestable(sub)) {
                size_t n = 1;
                for (int p = (int)cur; parent[p] >= 0; p = parent[p])
                    n++;
                if (n > N(e->path))
                    return 0;
                e->n_path = n;
                e->path[--n] = f;
                for (int p = (int)cur; parent[p] >= 0; p = parent[p])
                    e->path[--n] = via[p];
                return 1;
            }
            for (j = 0; j < tail && q[j] != sub; j++)
                ;
            if (j == tail && tail < CAP)
                q[tail] = sub, parent[tail] = (int)cur, via[tail++] = f;
        }
    }
    return 0;
}

static void add(enum entry_kind kind, const ProtobufCMessageDescriptor *desc, const sl_kind *k, sl_xds_type t)
{
    entry *e = &entries[n_entries];
    if (n_entries == MAX_ENTRIES)
        abort();
    *e = (entry){.kind = kind, .desc = desc, .k = k, .type = t};
    if (find_path(e))
        n_entries++;
}

static const ProtobufCMessageDescriptor *xds_desc(sl_xds_type t)
{
    switch (t) {
    case SL_XDS_CLUSTER: return &envoy__config__cluster__v3__cluster__descriptor;
    case SL_XDS_ENDPOINT: return &envoy__config__endpoint__v3__cluster_load_assignment__descriptor;
    case SL_XDS_LISTENER: return &envoy__config__listener__v3__listener__descriptor;
    case SL_XDS_ROUTE: return &envoy__config__route__v3__route_configuration__descriptor;
    case SL_XDS_SECRET: return &envoy__extensions__transport_sockets__tls__v3__secret__descriptor;
    case SL_XDS_RATELIMIT: return &ratelimit__config__ratelimit__v3__rate_limit_config__descriptor;
    default: return NULL;
    }
}

static void init(void)
{
    add(E_XDS_SOTW, &envoy__service__discovery__v3__discovery_request__descriptor, NULL, 0);
    add(E_XDS_DELTA, &envoy__service__discovery__v3__delta_discovery_request__descriptor, NULL, 0);
    add(E_PB_UNPACK, &envoy__service__discovery__v3__discovery_request__descriptor, NULL, 0);
    add(E_ENVELOPE, &sluice__v1__report__descriptor, NULL, 0);
    add(E_ENVELOPE, &sluice__v1__apply_request__descriptor, NULL, 0);
    add(E_ENVELOPE, &sluice__v1__delete_request__descriptor, NULL, 0);
    for (size_t i = 0; i < sl_kind_count(); i++) {
        add(E_ENVELOPE, sl_kind_at(i)->descriptor, NULL, 0);
        add(E_TRANSLATOR, sl_kind_at(i)->descriptor, sl_kind_at(i), 0);
    }
    for (int t = 0; t < SL_XDS_TYPE_COUNT; t++)
        if (xds_desc((sl_xds_type)t))
            add(E_XDS_KV, xds_desc((sl_xds_type)t), NULL, (sl_xds_type)t);
    if (getenv("FUZZ_VERBOSE"))
        for (size_t i = 0; i < n_entries; i++) {
            fprintf(stderr, "entry %zu: kind %d %s:", i, entries[i].kind, entries[i].desc->name);
            for (size_t j = 0; j < entries[i].n_path; j++)
                fprintf(stderr, " %s", entries[i].path[j]->name);
            fprintf(stderr, "\n");
        }
}

/* Bytes written from the end of buf towards its start. */
typedef struct wbuf {
    uint8_t *buf;
    size_t cap, start; /* the message is buf[start..cap) */
} wbuf;

static void put(wbuf *w, const void *p, size_t n)
{
    if (n > w->start)
        abort(); /* sized in advance: cannot happen */
    w->start -= n;
    memcpy(w->buf + w->start, p, n);
}

static void put_varint(wbuf *w, uint64_t v)
{
    uint8_t tmp[10];
    size_t n = 0;
    do {
        tmp[n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
    put(w, tmp, n);
}

/* Makes everything from `from` to the end the body of field id
 * (length-delimited). */
static void wrap(wbuf *w, size_t from, uint32_t id)
{
    put_varint(w, from - w->start);
    put_varint(w, (uint64_t)id << 3 | 2);
}

static size_t len(const wbuf *w) { return w->cap - w->start; }

/* A Struct field (map entry {key "k", value}) around the Value at the end. */
static void wrap_struct_entry(wbuf *w)
{
    size_t end = w->cap;
    wrap(w, end, 2);                  /* FieldsEntry.value */
    put(w, "\x0a\x01k", 3);           /* FieldsEntry.key = "k" */
    wrap(w, end, 1);                  /* Struct.fields */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    wbuf w;
    unsigned levels, depth;
    const entry *e;

    if (!ready) {
        sl_log_set_level(SL_LOG_ERROR);
        init();
        ready = 1;
    }
    if (size < 3 || !n_entries)
        return 0;
    e = &entries[data[0] % n_entries];
    levels = data[1] | (unsigned)data[2] << 8;
    data += 3, size -= 3;

    /* At most 1 + 3 levels of 4 bytes plus the path: 16 bytes a level. */
    w.cap = 64 + 16 * ((size_t)levels + e->n_path);
    w.start = w.cap;
    if (!(w.buf = malloc(w.cap)))
        return 0;

    /* The innermost Value (bool_value true), then each level: a Value whose
     * list_value holds it, or whose struct_value has it as field "k". */
    put(&w, "\x20\x01", 2);
    depth = 1;
    for (unsigned i = 0; i < levels; i++) {
        int as_struct = size ? (data[(i / 8) % size] >> (i % 8)) & 1 : 0;
        if (as_struct) {
            wrap_struct_entry(&w);
            wrap(&w, w.cap, 5); /* Value.struct_value */
            depth += 3;
        } else {
            wrap(&w, w.cap, 1); /* ListValue.values */
            wrap(&w, w.cap, 6); /* Value.list_value */
            depth += 2;
        }
    }
    /* Into the nestable field the path ends at, then out to the root. */
    const ProtobufCMessageDescriptor *last = e->path[e->n_path - 1]->descriptor;
    if (!strcmp(last->name, "google.protobuf.Struct")) {
        wrap_struct_entry(&w);
        depth += 2;
    } else if (!strcmp(last->name, "google.protobuf.ListValue")) {
        wrap(&w, w.cap, 1);
        depth += 1;
    }
    for (size_t i = e->n_path; i-- > 0;) {
        wrap(&w, w.cap, e->path[i]->id);
        depth++;
    }

    const uint8_t *p = w.buf + w.start;
    size_t n = len(&w);
    switch (e->kind) {
    case E_XDS_SOTW:
    case E_XDS_DELTA: {
        /* as on_request(): the bounded check first, then protobuf-c */
        const ProtobufCMessageDescriptor *d = e->kind == E_XDS_DELTA
                                                  ? &envoy__service__discovery__v3__delta_discovery_request__descriptor
                                                  : &envoy__service__discovery__v3__discovery_request__descriptor;
        if (sl_pb_check(d, p, n, SL_PB_MAX_DEPTH) != SL_OK)
            break;
        ProtobufCMessage *m = protobuf_c_message_unpack(d, NULL, n, p);
        if (m)
            protobuf_c_message_free_unpacked(m, NULL);
        break;
    }
    case E_PB_UNPACK:
    case E_ENVELOPE: {
        ProtobufCMessage *m = NULL;
        sl_arena a;
        sl_status st;
        sl_arena_init(&a, 0);
        if (e->kind == E_PB_UNPACK) {
            st = sl_pb_unpack(&m, e->desc, NULL, p, n);
            if (m)
                protobuf_c_message_free_unpacked(m, NULL);
        } else {
            st = sl_arena_unpack(&m, &a, e->desc, p, n);
        }
        sl_arena_deinit(&a);
        if ((depth <= 60 && st != SL_OK) || (depth >= 70 && st == SL_OK)) {
            fprintf(stderr, "%s nested %u deep: %s (%s)\n", e->desc->name, depth,
                    st == SL_OK ? "accepted" : "refused", st == SL_OK ? "" : sl_error_msg());
            abort();
        }
        break;
    }
    case E_TRANSLATOR: {
        sl_tr_store *s = NULL;
        if (sl_tr_store_new(&s) != SL_OK)
            break;
        (void)sl_tr_store_put_packed(s, e->k, p, n, 1);
        sl_tr_store_free(s);
        break;
    }
    case E_XDS_KV: {
        sl_xds_res *r = NULL;
        if (sl_xds_res_new(&r, e->type, "x", "1", p, n) == SL_OK)
            sl_xds_res_unref(r);
        break;
    }
    }
    free(w.buf);
    return 0;
}
