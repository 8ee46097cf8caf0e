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
#include "translator.h"

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
        sl_tr_result_free(r);
        r = NULL;
        if (sl_tr_translate(&r, st, pass == 0 ? &dry : NULL) != SL_OK)
            goto out;
        check(r);
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
