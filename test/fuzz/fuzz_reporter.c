/* libFuzzer target for the reporter's model (services/reporter/model.c).
 *
 * The input is a little program of steps, in any order: a report (built
 * field by field from the bytes, or bytes decoded as on_report decodes a
 * message: packed sluice.v1.Report, JSON or YAML), a stored status
 * (arbitrary bytes through rep_model_load, or a status this run rendered,
 * as another replica's write), a config KV change, a forgotten key, a
 * committed write. After every step every known key is rendered.
 * Invariants (abort on violation):
 *   - render never fails for a known key, and its bytes unpack as a Status;
 *   - a status rendered twice without input in between is unchanged;
 *   - after a write is committed, rendering again reports no change;
 *   - a fresh model that loads a rendered status renders the same status
 *     (a restarted or second replica converges on it).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/report_model.h"
#include "sluice/arena.h"
#include "sluice/codec.h"
#include "sluice/types.h"
#include "fuzz_reader.h"

#define FUZZ_MAX_INPUT 8192
#define MAX_STEPS 48

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const sources[] = {"translator", "xds-server", "config-watcher", "secret-watcher"};
static const char *const keys[] = {"VirtualService.default.vs1", "Upstream.default.up1", "Gateway.gloo-system.gw",
                                   "Proxy.gloo-system.gateway-proxy", "Secret.default.tls"};
static const char *const proxies[] = {"", "gloo-system~gateway-proxy", "default~gw"};

static char *rstr(reader *r, char *buf, size_t cap) { return rstr_max(r, buf, cap, 24); }

/* A chunk of the input: a length byte then that many bytes. */
static const uint8_t *chunk(reader *r, size_t *len)
{
    const uint8_t *p;
    size_t n = next(r);
    n = n * 4 + next(r) % 4;
    if (n > r->n)
        n = r->n;
    p = r->p;
    r->p += n;
    r->n -= n;
    *len = n;
    return p;
}

/* FUZZ_VERBOSE=1: a status as JSON on stderr (to read a finding). */
static void dump(const char *what, const uint8_t *p, size_t len)
{
    sl_codec_options o = {.resolver = sl_types_find_url};
    Sluice__V1__Status *st;
    char *text = NULL;
    size_t n;
    if (!getenv("FUZZ_VERBOSE") || !(st = sluice__v1__status__unpack(NULL, len, p)))
        return;
    if (sl_codec_encode_json(&text, &n, &st->base, &o) == SL_OK)
        fprintf(stderr, "%s: %s\n", what, text);
    free(text);
    sluice__v1__status__free_unpacked(st, NULL);
}

static void fail(const char *what, const char *key)
{
    fprintf(stderr, "fuzz_reporter: %s: %s\n", what, key);
    abort();
}

static const char *pick(reader *r, const char *const *v, size_t n, char *buf, size_t cap)
{
    unsigned c = next(r) % (n + 1);
    return c < n ? v[c] : rstr(r, buf, cap);
}

/* A Report field by field; strings live in bufs. */
typedef struct rbufs {
    Sluice__V1__ObjectRef ref;
    Google__Protobuf__Timestamp ts;
    Sluice__V1__Report__SubresourceStatusesEntry sub, *subp;
    Sluice__V1__Status sst;
    char kind[32], ns[32], name[32], src[32], reason[32], warn[32], proxy[32], rv[32], xv[32], subk[32];
    char *warns[1];
} rbufs;

static void build_report(reader *r, Sluice__V1__Report *rep, rbufs *b, const char **subj_src, const char **subj_key)
{
    unsigned f = next(r), g = next(r);
    sluice__v1__report__init(rep);
    if (f & 1) {
        char tmp[40];
        const char *k = pick(r, keys, N(keys), tmp, sizeof tmp);
        sluice__v1__object_ref__init(&b->ref);
        /* "<Kind>.<ns>.<name>" split, or random parts */
        snprintf(b->kind, sizeof b->kind, "%s", k);
        char *d1 = strchr(b->kind, '.'), *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
        if (d1 && d2) {
            *d1 = *d2 = 0;
            snprintf(b->ns, sizeof b->ns, "%s", d1 + 1);
            snprintf(b->name, sizeof b->name, "%s", d2 + 1);
        } else {
            b->ns[0] = b->name[0] = 0;
        }
        b->ref.kind = b->kind;
        b->ref.namespace_ = b->ns;
        b->ref.name = b->name;
        rep->resource = &b->ref;
    } else {
        *subj_key = keys[g % N(keys)];
    }
    if (f & 2)
        rep->source = (char *)pick(r, sources, N(sources), b->src, sizeof b->src);
    else
        *subj_src = sources[(g >> 3) % N(sources)];
    rep->state = (Sluice__V1__Status__State)(next(r) % 5);
    if (f & 4)
        rep->reason = rstr(r, b->reason, sizeof b->reason);
    if (f & 8) {
        b->warns[0] = rstr(r, b->warn, sizeof b->warn);
        rep->n_warnings = 1;
        rep->warnings = b->warns;
    }
    rep->proxy = (char *)pick(r, proxies, N(proxies), b->proxy, sizeof b->proxy);
    if (f & 16)
        snprintf(b->rv, sizeof b->rv, "%u", next(r)), rep->resource_version = b->rv;
    rep->generation = (int64_t)(next(r) % 4) - (g & 64 ? 1 : 0);
    if (f & 32)
        snprintf(b->xv, sizeof b->xv, "%u", next(r) % 8), rep->xds_version = b->xv;
    else if (g & 128)
        rep->xds_version = rstr(r, b->xv, sizeof b->xv);
    if (f & 64) {
        google__protobuf__timestamp__init(&b->ts);
        b->ts.seconds = (int64_t)(next(r) % 8) * (g & 4 ? -1 : 1);
        b->ts.nanos = (int32_t)(next(r) * 3999999);
        rep->time = &b->ts;
    }
    if (f & 128) {
        sluice__v1__report__subresource_statuses_entry__init(&b->sub);
        sluice__v1__status__init(&b->sst);
        b->sst.state = (Sluice__V1__Status__State)(next(r) % 4);
        b->sub.key = rstr(r, b->subk, sizeof b->subk);
        b->sub.value = &b->sst;
        b->subp = &b->sub;
        rep->n_subresource_statuses = 1;
        rep->subresource_statuses = &b->subp;
    }
    rep->withdrawn = (g & 32) && (g & 2);
}

typedef struct fz {
    rep_model *m;
    uint64_t rev;
    /* the config KV as fed to the model */
    struct cfg {
        char key[64];
        bool present;
        uint64_t rev;
    } cfg[16];
    size_t ncfg;
    /* the last rendering of some key, to feed back */
    uint8_t *last;
    size_t last_len;
    char last_key[256];
} fz;

typedef struct each_ctx {
    fz *f;
} each_ctx;

static void render_key(void *ud, const char *key)
{
    fz *f = ud;
    uint8_t *a = NULL, *b = NULL, *c = NULL;
    size_t la, lb, lc;
    bool ch_a, ch_b, ch_c;
    rep_model *fresh = NULL;
    Sluice__V1__Status *st;

    if (rep_model_render(f->m, &a, &la, &ch_a, key) != SL_OK)
        fail("render failed for a known key", key);
    if (!(st = sluice__v1__status__unpack(NULL, la, a)))
        fail("rendered status does not unpack", key);
    sluice__v1__status__free_unpacked(st, NULL);
    if (rep_model_render(f->m, &b, &lb, &ch_b, key) != SL_OK)
        fail("second render failed", key);
    if (la != lb || memcmp(a, b, la) != 0 || ch_a != ch_b)
        fail("two renders without input in between differ", key);

    /* A fresh model loading this status renders it the same. */
    if (rep_model_new(&fresh) != SL_OK)
        abort();
    for (size_t i = 0; i < f->ncfg; i++)
        if (strcmp(f->cfg[i].key, key) == 0)
            rep_model_set_config(fresh, key, f->cfg[i].present, f->cfg[i].rev);
    if (rep_model_load(fresh, key, a, la, 7) != SL_OK)
        fail("a rendered status does not load", key);
    if (rep_model_render(fresh, &c, &lc, &ch_c, key) != SL_OK)
        fail("render after load failed", key);
    if (lc != la || memcmp(a, c, la) != 0) {
        fprintf(stderr, "rendered %zu bytes, after load %zu bytes\n", la, lc);
        dump("rendered", a, la);
        dump("after load", c, lc);
        fail("load of a rendered status renders differently", key);
    }
    rep_model_free(fresh);

    /* Written: rendering again is no change. */
    if (ch_a) {
        rep_model_committed(f->m, key, ++f->rev);
        free(c);
        if (rep_model_render(f->m, &c, &lc, &ch_c, key) != SL_OK)
            fail("render after commit failed", key);
        if (ch_c)
            fail("rendering just written status is a change", key);
    }
    if (strlen(key) < sizeof f->last_key) {
        free(f->last);
        f->last = a;
        f->last_len = la;
        snprintf(f->last_key, sizeof f->last_key, "%s", key);
        a = NULL;
    }
    free(a);
    free(b);
    free(c);
}

static void render_all(fz *f)
{
    char key[512];
    while (rep_model_next_dirty(f->m, key, sizeof key))
        ;
    rep_model_each(f->m, render_key, f);
}

static void report(fz *f, reader *r, sl_arena *a)
{
    unsigned how = next(r) % 4;
    const char *src = NULL, *key = NULL;
    char kbuf[64], sbuf[32];
    rep_result res;
    Sluice__V1__Report rep, *rp = &rep;
    rbufs b;

    if (how == 0 || how == 1) {
        build_report(r, &rep, &b, &src, &key);
    } else {
        /* as on_report decodes a message; the subject's tokens name source and key */
        size_t len;
        const uint8_t *p = chunk(r, &len);
        ProtobufCMessage *pm = NULL;
        sl_status rc;
        src = pick(r, sources, N(sources), sbuf, sizeof sbuf);
        key = pick(r, keys, N(keys), kbuf, sizeof kbuf);
        if (how == 2) {
            rc = sl_arena_unpack(&pm, a, &sluice__v1__report__descriptor, p, len);
        } else {
            sl_codec_options o = {.root_name = "Report", .allocator = &a->allocator, .resolver = sl_types_find_url};
            char *text = malloc(len + 1);
            if (!text)
                abort();
            memcpy(text, p, len);
            text[len] = 0;
            rc = (len && text[0] == '{' ? sl_codec_decode_json : sl_codec_decode_yaml)(
                &pm, &sluice__v1__report__descriptor, text, len, &o, NULL);
            free(text);
        }
        if (rc != SL_OK)
            return;
        rp = (Sluice__V1__Report *)pm;
    }
    (void)rep_model_report(f->m, &res, rp, src, key, 1000000000LL * (int64_t)(f->rev + 1));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    reader r = {data, size};
    fz f;
    sl_arena arena;

    if (size > FUZZ_MAX_INPUT)
        return 0;
    memset(&f, 0, sizeof f);
    if (rep_model_new(&f.m) != SL_OK)
        abort();
    sl_arena_init(&arena, 0);
    if (next(&r) & 1)
        rep_model_set_gating(f.m, false);
    for (int step = 0; step < MAX_STEPS && r.n; step++) {
        char kbuf[64];
        const char *key;
        switch (next(&r) % 8) {
        case 0:
        case 1:
        case 2: report(&f, &r, &arena); break;
        case 3: {
            /* a stored status: arbitrary bytes */
            size_t len;
            key = pick(&r, keys, N(keys), kbuf, sizeof kbuf);
            const uint8_t *p = chunk(&r, &len);
            (void)rep_model_load(f.m, key, p, len, ++f.rev);
            break;
        }
        case 4:
            /* what another replica wrote: the last rendering, under its key or another */
            if (f.last) {
                key = next(&r) % 4 ? f.last_key : pick(&r, keys, N(keys), kbuf, sizeof kbuf);
                (void)rep_model_load(f.m, key, f.last, f.last_len, ++f.rev);
            }
            break;
        case 5: {
            key = pick(&r, keys, N(keys), kbuf, sizeof kbuf);
            bool present = next(&r) % 3 != 0;
            uint64_t rev = next(&r) % 8;
            rep_model_set_config(f.m, key, present, rev);
            if (f.ncfg < N(f.cfg) && strlen(key) < sizeof f.cfg[0].key) {
                snprintf(f.cfg[f.ncfg].key, sizeof f.cfg[0].key, "%s", key);
                f.cfg[f.ncfg].present = present;
                f.cfg[f.ncfg++].rev = rev;
            }
            break;
        }
        case 6:
            key = pick(&r, keys, N(keys), kbuf, sizeof kbuf);
            rep_model_forget(f.m, key);
            break;
        default:
            key = pick(&r, keys, N(keys), kbuf, sizeof kbuf);
            rep_model_committed(f.m, key, next(&r) % 2 ? ++f.rev : 0);
            (void)rep_model_publishable(f.m, key);
            (void)rep_model_revision(f.m, key);
            break;
        }
        sl_arena_reset(&arena);
        render_all(&f);
    }
    free(f.last);
    rep_model_free(f.m);
    sl_arena_deinit(&arena);
    return 0;
}
