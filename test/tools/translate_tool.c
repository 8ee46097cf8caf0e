/* sluice-translate: translate YAML files offline (tests and debugging).
 *
 *   sluice-translate [--any] [--proxy NAME] file.yaml...
 *
 * Prints every resource of every proxy as YAML (the default), or with --any
 * writes each as a varint-length-delimited google.protobuf.Any to stdout
 * (the input of test/conformance/xdsvalidate). Reports go to stderr.
 * Exit status 1 when a file does not decode. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/codec.h"
#include "sluice/file.h"
#include "sluice/types.h"
#include "sluice/translate.h"

/* The file's text, or NULL (the reason is in sl_error_msg()). */
static char *slurp(const char *path, size_t *len)
{
    char *text = NULL;
    return sl_file_read(&text, len, path) == SL_OK ? text : NULL;
}

static void put_varint(uint64_t v)
{
    while (v >= 0x80) {
        putchar((int)(v & 0x7f) | 0x80);
        v >>= 7;
    }
    putchar((int)v);
}

static void write_any(sl_xds_type t, const sl_tr_resource *r)
{
    const char *url = sl_xds_type_url(t);
    size_t ul = strlen(url);
    /* Any { string type_url = 1; bytes value = 2; } */
    size_t inner = 1 + 1 + ul + 1 + 10 + r->len;
    uint8_t *buf = malloc(inner + 16);
    size_t n = 0;
    buf[n++] = 0x0a;
    for (uint64_t v = ul; ; v >>= 7) {
        buf[n++] = (uint8_t)((v & 0x7f) | (v >= 0x80 ? 0x80 : 0));
        if (v < 0x80)
            break;
    }
    memcpy(buf + n, url, ul);
    n += ul;
    buf[n++] = 0x12;
    for (uint64_t v = r->len; ; v >>= 7) {
        buf[n++] = (uint8_t)((v & 0x7f) | (v >= 0x80 ? 0x80 : 0));
        if (v < 0x80)
            break;
    }
    memcpy(buf + n, r->data, r->len);
    n += r->len;
    put_varint(n);
    fwrite(buf, 1, n, stdout);
    free(buf);
}

int main(int argc, char **argv)
{
    sl_tr_store *st = NULL;
    sl_tr_result *res = NULL;
    sl_diag diag;
    int any = 0, rc = 0;
    const char *only = NULL;
    sl_codec_options eo = {0};

    eo.resolver = sl_types_find_url;
    sl_diag_init(&diag);
    if (sl_tr_store_new(&st) != SL_OK)
        return 1;
    for (int i = 1; i < argc; i++) {
        size_t len = 0;
        char *text;
        if (strcmp(argv[i], "--any") == 0) {
            any = 1;
            continue;
        }
        if (strcmp(argv[i], "--proxy") == 0 && i + 1 < argc) {
            only = argv[++i];
            continue;
        }
        if (!(text = slurp(argv[i], &len))) {
            fprintf(stderr, "%s: cannot read\n", argv[i]);
            rc = 1;
            continue;
        }
        if (sl_tr_store_load_yaml(st, text, len, argv[i], &diag) != SL_OK)
            rc = 1;
        free(text);
    }
    sl_diag_print(&diag, stderr);
    if (sl_tr_translate(&res, st, NULL) != SL_OK) {
        fprintf(stderr, "translate: %s\n", sl_error_msg());
        return 1;
    }
    for (size_t i = 0; i < res->n_reports; i++) {
        const sl_tr_report *r = &res->reports[i];
        static const char *states[] = {"Pending", "Accepted", "Rejected", "Warning"};
        fprintf(stderr, "%s %s.%s: %s%s%s\n", r->kind->kind, r->ns, r->name, states[r->state & 3],
                r->reason[0] ? ": " : "", r->reason);
        for (size_t w = 0; w < r->n_warnings; w++)
            fprintf(stderr, "  warning: %s\n", r->warnings[w]);
    }
    for (size_t p = 0; p < res->n_proxies; p++) {
        const sl_tr_proxy *px = &res->proxies[p];
        if (only && strcmp(only, px->name) != 0)
            continue;
        for (int t = 0; t < SL_XDS_TYPE_COUNT; t++)
            for (size_t j = 0; j < px->n[t]; j++) {
                const sl_tr_resource *r = &px->res[t][j];
                if (any) {
                    write_any((sl_xds_type)t, r);
                } else {
                    ProtobufCMessage *m = protobuf_c_message_unpack(sl_tr_type_descriptor((sl_xds_type)t), NULL,
                                                                    r->len, r->data);
                    char *y = NULL;
                    if (m && sl_codec_encode_yaml(&y, NULL, m, &eo) == SL_OK)
                        printf("# proxy %s %s %s\n%s---\n", px->name, sl_xds_type_token((sl_xds_type)t), r->name, y);
                    free(y);
                    if (m)
                        protobuf_c_message_free_unpacked(m, NULL);
                }
            }
    }
    sl_tr_result_free(res);
    sl_tr_store_free(st);
    sl_diag_deinit(&diag);
    return rc;
}
