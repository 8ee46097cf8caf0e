/* libFuzzer target for the translator.
 *
 * The input is a multi-document YAML stream of Gloo-style resources (the
 * seeds are the translator's golden inputs, so mutations stay close to
 * valid-shaped configuration). Whatever decodes goes into a store and is
 * translated three times: a dry run, a real one (recording last good
 * versions) and again (serving them), then every endpoint set goes through
 * the incremental path. Every emitted resource must unpack as its Envoy
 * type and pack back to the same number of bytes; every report must name a
 * state. Any crash, sanitizer report, leak or abort() is a finding.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/kinds.h"
#include "sluice/translate.h"

#define FUZZ_MAX_INPUT (64 * 1024)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const sl_tr_result *r)
{
    for (size_t p = 0; p < r->n_proxies; p++)
        for (int t = 0; t < SL_XDS_TYPE_COUNT; t++)
            for (size_t i = 0; i < r->proxies[p].n[t]; i++) {
                const sl_tr_resource *res = &r->proxies[p].res[t][i];
                const ProtobufCMessageDescriptor *d = sl_tr_type_descriptor((sl_xds_type)t);
                ProtobufCMessage *m = protobuf_c_message_unpack(d, NULL, res->len, res->data);
                if (!m) {
                    fprintf(stderr, "proxy %s: %s %s does not unpack\n", r->proxies[p].name, d->name, res->name);
                    abort();
                }
                if (protobuf_c_message_get_packed_size(m) != res->len) {
                    fprintf(stderr, "proxy %s: %s %s repacks to another size\n", r->proxies[p].name, d->name,
                            res->name);
                    abort();
                }
                protobuf_c_message_free_unpacked(m, NULL);
            }
    for (size_t i = 0; i < r->n_reports; i++)
        if (r->reports[i].state < 1 || r->reports[i].state > 3 || !r->reports[i].reason)
            abort();
}

/* Two translations of unchanged input (the second replays what the first
 * kept) must give the same bytes and report states. */
static void same(const sl_tr_result *a, const sl_tr_result *b)
{
    if (a->n_proxies != b->n_proxies || a->n_reports != b->n_reports)
        abort();
    for (size_t p = 0; p < a->n_proxies; p++)
        for (int t = 0; t < SL_XDS_TYPE_COUNT; t++) {
            if (a->proxies[p].n[t] != b->proxies[p].n[t])
                abort();
            for (size_t i = 0; i < a->proxies[p].n[t]; i++) {
                const sl_tr_resource *x = &a->proxies[p].res[t][i], *y = &b->proxies[p].res[t][i];
                if (strcmp(x->name, y->name) != 0 || x->len != y->len || memcmp(x->data, y->data, x->len) != 0) {
                    fprintf(stderr, "proxy %s: %s differs between two translations of the same input\n",
                            a->proxies[p].name, x->name);
                    abort();
                }
            }
        }
    for (size_t i = 0; i < a->n_reports; i++)
        if (a->reports[i].state != b->reports[i].state || strcmp(a->reports[i].reason, b->reports[i].reason) != 0 ||
            a->reports[i].n_warnings != b->reports[i].n_warnings) {
            fprintf(stderr, "report %s.%s differs between two translations of the same input\n", a->reports[i].ns,
                    a->reports[i].name);
            abort();
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sl_tr_store *st;
    sl_tr_result *r = NULL;
    sl_tr_options dry = {0};
    const sl_kind *ke = sl_kind_by_name("EndpointSet");
    if (size > FUZZ_MAX_INPUT || sl_tr_store_new(&st) != SL_OK)
        return 0;
    sl_tr_store_load_yaml(st, (const char *)data, size, "fuzz.yaml", NULL);
    dry.dry_run = true;
    for (int pass = 0; pass < 3; pass++) {
        sl_tr_result *prev = r;
        r = NULL;
        if (sl_tr_translate(&r, st, pass == 0 ? &dry : NULL) != SL_OK) {
            sl_tr_result_free(prev);
            goto out;
        }
        check(r);
        if (pass == 2)
            same(prev, r); /* passes 1 and 2: nothing changed in between */
        sl_tr_result_free(prev);
    }
    /* the incremental path over every upstream name the reports mention */
    for (size_t i = 0; i < r->n_reports && ke; i++) {
        const char *ns = r->reports[i].ns, *name = r->reports[i].name;
        bool done = false;
        if (strcmp(r->reports[i].kind->kind, "Upstream") != 0)
            continue;
        if (sl_tr_translate_endpoints(r, st, &ns, &name, 1, NULL, &done, NULL) != SL_OK)
            break;
        check(r);
    }
out:
    sl_tr_result_free(r);
    sl_tr_store_free(st);
    return 0;
}
