/* libFuzzer target for the config-watcher's network and stored input
 * (services/config-watcher/watcher.c), without NATS (cw_init_offline).
 *
 * The input is a little program of steps:
 *   - a value written directly into the config KV (key + bytes, or a
 *     delete) through cw_on_kv_entry's validation: arbitrary bytes, or a
 *     document of the input decoded and packed as the key's kind;
 *   - an apply request (sluice.api.apply) through cw_on_apply: a natsMsg
 *     with Content-Type (protobuf with or without proto=, JSON, YAML, none,
 *     garbage), Sluice-Filename and Sluice-Dry-Run headers, parsed by
 *     sl_envelope_parse as the subscription does; the body is arbitrary
 *     bytes, YAML/JSON text, or an ApplyRequest whose Any resources are
 *     the input's documents packed;
 *   - a delete request (sluice.api.delete) the same way.
 * With the first byte's low bit set, applies are also dry-run translated
 * (cw_translator_dry_run, as the service does). Writes land in the offline
 * cache, so later requests see them.
 * Invariants on every reply (abort on violation): a request-level error
 * means not accepted and no results; a result is Rejected exactly when it
 * has errors, and the reply is accepted exactly when none is; no error is
 * empty; every error about a document of a YAML/JSON body names the
 * body's file name (what and where).
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nats/nats.h>

#include "dryrun.h"
#include "sluice/codec.h"
#include "sluice/envelope.h"
#include "sluice/log.h"
#include "sluice/metrics.h"
#include "sluice/types.h"
#include "sluice/v1/events.pb-c.h"
#include "watcher.h"
#include "fuzz_reader.h"

#define FUZZ_MAX_INPUT (16 * 1024)
#define MAX_STEPS 24

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const keys[] = {"VirtualService.default.vs1", "Upstream.default.up1", "Gateway.default.gw",
                                   "RouteTable.default.rt1",     "UpstreamGroup.default.ug", "Secret.default.tls",
                                   "MatchableHttpGateway.default.hgw"};
static const char *const kinds[] = {"VirtualService", "Upstream", "Gateway",            "RouteTable",
                                    "Settings",       "Nope",     "MatchableTcpGateway"};

/* A chunk: two length bytes (little endian), then the bytes; NUL-terminated copy. */
static char *chunk(reader *r, size_t *len)
{
    size_t n = next(r);
    n |= (size_t)next(r) << 8;
    if (n > r->n)
        n = r->n;
    char *c = malloc(n + 1);
    if (!c)
        abort();
    memcpy(c, r->p, n);
    c[n] = 0;
    r->p += n;
    r->n -= n;
    *len = n;
    return c;
}

static char *rstr(reader *r, char *buf, size_t cap) { return rstr_max(r, buf, cap, 24); }

static void fail(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz_config_watcher: %s: %s\n", what, detail ? detail : "");
    abort();
}

/* What the reply hook checks the next reply against. */
static struct expect {
    int apply;           /* 1 apply, 0 delete */
    const char *fname;   /* YAML/JSON body: the file name errors must name */
    int replies;
} expect;

static void check_result(const Sluice__V1__ResourceResult *rr, int *rejected)
{
    if (!rr)
        fail("a NULL result", NULL);
    if ((rr->state == SLUICE__V1__STATUS__STATE__Rejected) != (rr->n_errors > 0))
        fail("a result is Rejected without errors, or has errors and is not Rejected", NULL);
    for (size_t j = 0; j < rr->n_errors; j++) {
        if (!rr->errors[j] || !rr->errors[j][0])
            fail("an empty error", NULL);
        if (expect.fname && strncmp(rr->errors[j], expect.fname, strlen(expect.fname)) != 0)
            fail("an error about a document does not name the file", rr->errors[j]);
    }
    *rejected |= rr->n_errors > 0;
}

static void on_reply(cw *w, const ProtobufCMessage *m)
{
    (void)w;
    expect.replies++;
    if (getenv("FUZZ_VERBOSE")) {
        sl_codec_options o = {.resolver = sl_types_find_url, .flags = SL_CODEC_JSON_COMPACT};
        char *text = NULL;
        size_t n;
        if (sl_codec_encode_json(&text, &n, m, &o) == SL_OK)
            fprintf(stderr, "reply: %s\n", text);
        free(text);
    }
    if (expect.apply) {
        const Sluice__V1__ApplyResponse *r = (const Sluice__V1__ApplyResponse *)m;
        int rejected = 0;
        if (m->descriptor != &sluice__v1__apply_response__descriptor)
            fail("apply answered with another message", m->descriptor->name);
        if (r->error && r->error[0]) {
            if (r->accepted || r->n_results)
                fail("a request-level error with results or accepted", r->error);
            return;
        }
        for (size_t i = 0; i < r->n_results; i++)
            check_result(r->results[i], &rejected);
        if (r->accepted == rejected)
            fail("accepted does not match the results", NULL);
    } else {
        const Sluice__V1__DeleteResponse *r = (const Sluice__V1__DeleteResponse *)m;
        int rejected = 0;
        if (m->descriptor != &sluice__v1__delete_response__descriptor)
            fail("delete answered with another message", m->descriptor->name);
        if (r->error && r->error[0]) {
            if (r->accepted || r->n_results)
                fail("a request-level error with results or accepted", r->error);
            return;
        }
        expect.fname = NULL; /* delete errors name resources, not lines */
        for (size_t i = 0; i < r->n_results; i++)
            check_result(r->results[i], &rejected);
        if (r->accepted == rejected)
            fail("accepted does not match the results", NULL);
    }
}

/* The documents of text packed as Any (type URL of their kind). */
static uint8_t *pack_apply(const char *text, size_t len, size_t *out_len, unsigned flags)
{
    Sluice__V1__ApplyRequest req = SLUICE__V1__APPLY_REQUEST__INIT;
    Google__Protobuf__Any any[8], *anyp[8];
    char url[8][128];
    uint8_t *bufs[8] = {0}, *out;
    sl_cfg_set set;
    size_t n = 0;

    sl_cfg_set_init(&set);
    sl_cfg_set_decode_text(&set, text, len, "body.yaml");
    for (size_t i = 0; i < set.n && n < 8; i++) {
        const sl_cfg_res *r = &set.items[i];
        size_t pl;
        if (!r->msg)
            continue;
        google__protobuf__any__init(&any[n]);
        pl = protobuf_c_message_get_packed_size(r->msg);
        if (!(bufs[n] = malloc(pl ? pl : 1)))
            abort();
        protobuf_c_message_pack(r->msg, bufs[n]);
        /* now and then a wrong type URL */
        snprintf(url[n], sizeof url[n], "type.googleapis.com/%s",
                 flags & 4 && n == 0 ? "sluice.v1.Nope" : r->msg->descriptor->name);
        any[n].type_url = url[n];
        any[n].value.data = bufs[n];
        any[n].value.len = pl;
        anyp[n] = &any[n];
        n++;
    }
    req.n_resources = n;
    req.resources = anyp;
    req.dry_run = flags & 8;
    req.source = flags & 16 ? "fuzz" : "";
    *out_len = sluice__v1__apply_request__get_packed_size(&req);
    if (!(out = malloc(*out_len ? *out_len : 1)))
        abort();
    sluice__v1__apply_request__pack(&req, out);
    for (size_t i = 0; i < n; i++)
        free(bufs[i]);
    sl_cfg_set_deinit(&set);
    return out;
}

static uint8_t *pack_delete(reader *r, size_t *out_len)
{
    Sluice__V1__DeleteRequest req = SLUICE__V1__DELETE_REQUEST__INIT;
    Sluice__V1__ObjectRef refs[4], *refp[4];
    char names[4][32], nss[4][32];
    size_t n = next(r) % 5;
    uint8_t *out;
    for (size_t i = 0; i < n && i < 4; i++) {
        unsigned c = next(r);
        sluice__v1__object_ref__init(&refs[i]);
        refs[i].kind = (char *)kinds[c % N(kinds)];
        refs[i].namespace_ = c & 8 ? rstr(r, nss[i], sizeof nss[i]) : c & 16 ? "default" : "";
        if (c & 32)
            refs[i].name = rstr(r, names[i], sizeof names[i]);
        else
            refs[i].name = (char *)(c & 64 ? "vs1" : c & 128 ? "up1" : "rt1");
        refp[i] = &refs[i];
    }
    req.n_resources = n > 4 ? 4 : n;
    req.resources = refp;
    req.dry_run = next(r) & 1;
    *out_len = sluice__v1__delete_request__get_packed_size(&req);
    if (!(out = malloc(*out_len ? *out_len : 1)))
        abort();
    sluice__v1__delete_request__pack(&req, out);
    return out;
}

static void kv_entry(cw *w, reader *r)
{
    unsigned c = next(r);
    char kbuf[64];
    const char *key = c % 8 < N(keys) ? keys[c % 8] : rstr(r, kbuf, sizeof kbuf);
    sl_kv_entry e = {0};
    size_t len;
    char *text = chunk(r, &len);
    uint8_t *packed = NULL;

    e.key = key;
    e.revision = ++w->offline_rev;
    e.op = c & 8 ? SL_KV_PUT : (c & 16 ? SL_KV_DELETE : SL_KV_PUT);
    if (e.op == SL_KV_PUT) {
        if (c & 32) {
            /* a document of the input, packed as whatever it decoded to */
            sl_cfg_set set;
            sl_cfg_set_init(&set);
            sl_cfg_set_decode_text(&set, text, len, "kv.yaml");
            if (set.n && set.items[0].msg) {
                size_t pl = protobuf_c_message_get_packed_size(set.items[0].msg);
                if (!(packed = malloc(pl ? pl : 1)))
                    abort();
                protobuf_c_message_pack(set.items[0].msg, packed);
                e.value = packed;
                e.len = pl;
            }
            sl_cfg_set_deinit(&set);
        } else {
            e.value = len ? (const uint8_t *)text : NULL;
            e.len = len;
        }
    }
    cw_on_kv_entry(NULL, &e, w);
    free(packed);
    free(text);
}

static void request(cw *w, reader *r, int apply)
{
    static const char *const cts[] = {"application/x-protobuf; proto=sluice.v1.ApplyRequest",
                                      "application/x-protobuf; proto=sluice.v1.DeleteRequest",
                                      "application/x-protobuf",
                                      NULL,
                                      "application/json",
                                      "application/yaml",
                                      "APPLICATION/YAML; charset=utf-8",
                                      ""};
    unsigned c = next(r), f = next(r);
    const char *ct = cts[c % N(cts)];
    char ctbuf[48], fnbuf[48];
    natsMsg *msg = NULL;
    sl_envelope env;
    sl_status st;
    size_t len, blen;
    char *text = chunk(r, &len);
    uint8_t *body = (uint8_t *)text, *packed = NULL;
    const char *fname = NULL;

    blen = len;
    if (c & 8)
        ct = rstr(r, ctbuf, sizeof ctbuf);
    else if (ct && !strncmp(ct, "application/x-protobuf", 22) && (f & 1)) {
        /* a well-formed protobuf body built from the text */
        packed = apply ? pack_apply(text, len, &blen, f) : pack_delete(r, &blen);
        body = packed;
    }
    if (f & 32)
        fname = f & 64 ? rstr(r, fnbuf, sizeof fnbuf) : "vs.yaml";
    if (natsMsg_Create(&msg, apply ? "sluice.api.apply" : "sluice.api.delete", NULL, (const char *)body,
                       (int)blen) != NATS_OK)
        abort();
    if (ct)
        natsMsgHeader_Set(msg, SL_HDR_CONTENT_TYPE, ct);
    if (fname)
        natsMsgHeader_Set(msg, CW_HDR_FILENAME, fname);
    if (f & 128)
        natsMsgHeader_Set(msg, CW_HDR_DRY_RUN, "true");
    if (f & 2)
        natsMsgHeader_Set(msg, SL_HDR_SOURCE, "fuzz");
    st = sl_envelope_parse(&env, msg);
    memset(&expect, 0, sizeof expect);
    expect.apply = apply;
    if (st == SL_OK && (env.content_type == SL_CT_YAML || env.content_type == SL_CT_JSON))
        expect.fname = fname && fname[0] ? fname : "<request>";
    if (apply)
        cw_on_apply(NULL, st, &env, msg, w);
    else
        cw_on_delete(NULL, st, &env, msg, w);
    if (expect.replies != 1)
        fail("a request was not answered exactly once", NULL);
    natsMsg_Destroy(msg);
    free(packed);
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static sl_metrics *metrics;
    reader r = {data, size};
    cw w;

    if (size > FUZZ_MAX_INPUT)
        return 0;
    if (!metrics) {
        /* the service logs every rejected request: not wanted here */
        int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
        if (devnull >= 0)
            sl_log_set_fd(devnull);
        sl_log_set_level(SL_LOG_ERROR);
        if (nats_Open(-1) != NATS_OK) /* natsMsg needs the library's globals */
            abort();
        if (sl_metrics_new(&metrics) != SL_OK)
            abort();
    }
    if (cw_init_offline(&w, metrics) != SL_OK)
        abort();
    w.reply_hook = on_reply;
    if (next(&r) & 1)
        w.dry_run = cw_translator_dry_run;
    for (int step = 0; step < MAX_STEPS && r.n; step++) {
        switch (next(&r) % 4) {
        case 0: kv_entry(&w, &r); break;
        case 1:
        case 2: request(&w, &r, 1); break;
        default: request(&w, &r, 0); break;
        }
    }
    cw_deinit(&w);
    return 0;
}
