/* The translator, table-driven: every directory under test/data/translator
 * holds input.yaml (Gloo-style resources) and expected.yaml, the Envoy
 * resources the translation must produce, one section per resource:
 *
 *   # proxy gloo-system~gateway-proxy cluster petstore_default
 *   name: petstore_default
 *   ...
 *
 * Each section is decoded through the codec into the Envoy message of its
 * type and encoded back, and so is the actual resource, so the comparison
 * is field by field and independent of formatting. Every resource of the
 * proxies named in expected.yaml must be listed (nothing extra), unless a
 * line "#! partial" says otherwise. Lines
 *
 *   #! report <Kind> <ns>.<name> <State> [text]
 *
 * check a report: its state, and that text appears in its reason or one
 * of its warnings. SLUICE_UPDATE_GOLDEN=1 rewrites the sections of
 * expected.yaml from the actual output (keeping the #! lines).
 *
 * Further tests below cover what a table cannot: last good versions,
 * dry runs and the RE2 checker. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "sluice/codec.h"
#include "sluice/file.h"
#include "sluice/types.h"
#include "sluice/translate.h"
#include "translate_test.h"

/* The file's text, or NULL (the reason is in sl_error_msg()). */
static char *slurp(const char *path, size_t *len)
{
    char *text = NULL;
    return sl_file_read(&text, len, path) == SL_OK ? text : NULL;
}

static const char *data_dir(void)
{
    static char dir[1024];
    const char *src = getenv("SLUICE_SOURCE_DIR");
    snprintf(dir, sizeof dir, "%s/test/data/translator", src ? src : ".");
    return dir;
}

static sl_tr_result *translate_file(sl_tr_store *st, const char *path)
{
    size_t len = 0;
    char *text = slurp(path, &len);
    sl_diag d;
    sl_tr_result *res = NULL;
    if (!text)
        fail_msg("cannot read %s", path);
    sl_diag_init(&d);
    if (sl_tr_store_load_yaml(st, text, len, path, &d) != SL_OK) {
        sl_diag_print(&d, stderr);
        fail_msg("%s does not decode", path);
    }
    sl_diag_deinit(&d);
    free(text);
    assert_int_equal(sl_tr_translate(&res, st, NULL), SL_OK);
    return res;
}

static char *to_yaml(const ProtobufCMessage *m)
{
    sl_codec_options o = {0};
    char *y = NULL;
    o.resolver = sl_types_find_url;
    if (sl_codec_encode_yaml(&y, NULL, m, &o) != SL_OK)
        fail_msg("encode: %s", sl_error_msg());
    return y;
}

static char *resource_yaml(sl_xds_type t, const sl_tr_resource *r)
{
    ProtobufCMessage *m = protobuf_c_message_unpack(sl_tr_type_descriptor(t), NULL, r->len, r->data);
    char *y;
    assert_non_null(m);
    y = to_yaml(m);
    protobuf_c_message_free_unpacked(m, NULL);
    return y;
}

static char *normalize(sl_xds_type t, const char *text, const char *where)
{
    sl_codec_options o = {0};
    ProtobufCMessage *m = NULL;
    sl_diag d;
    char *y;
    o.resolver = sl_types_find_url;
    o.filename = where;
    sl_diag_init(&d);
    if (sl_codec_decode_yaml(&m, sl_tr_type_descriptor(t), text, strlen(text), &o, &d) != SL_OK) {
        sl_diag_print(&d, stderr);
        fail_msg("%s: expected resource does not decode", where);
    }
    sl_diag_deinit(&d);
    y = to_yaml(m);
    protobuf_c_message_free_unpacked(m, NULL);
    return y;
}

/* A route given in parts has exactly the parts sl_xds_route_split() finds
 * in its whole bytes (so the xds server serves the same after joining). */
static void check_parts(const sl_tr_resource *r, const char *where)
{
    uint8_t *head = NULL;
    sl_xds_part *parts = NULL;
    size_t hl = 0, np = 0;
    if (!r->parts)
        return;
    assert_non_null(r->data);
    if (sl_xds_route_split(&head, &hl, &parts, &np, r->data, r->len) != SL_OK)
        fail_msg("%s: %s does not split", where, r->name);
    if (hl != r->parts->head_len || memcmp(head, r->parts->head, hl) != 0 || np != r->parts->n)
        fail_msg("%s: %s: its parts are not the split of its bytes", where, r->name);
    for (size_t i = 0; i < np; i++)
        if (parts[i].len != r->parts->v[i].len || memcmp(r->data + parts[i].off, r->parts->v[i].data, parts[i].len) ||
            strlen(r->parts->v[i].name) != parts[i].name_len ||
            memcmp(r->parts->v[i].name, parts[i].name, parts[i].name_len) != 0)
            fail_msg("%s: %s: part %zu is not the split's", where, r->name, i);
    free(head);
    free(parts);
}

/* The translator packs with its own packer (pack.c): every resource must be
 * the bytes protobuf-c itself produces for the same message. */
static void check_packing(const sl_tr_result *res, const char *where)
{
    for (size_t p = 0; p < res->n_proxies; p++)
        for (int t = 0; t < SL_XDS_TYPE_COUNT; t++)
            for (size_t i = 0; i < res->proxies[p].n[t]; i++) {
                const sl_tr_resource *r = &res->proxies[p].res[t][i];
                ProtobufCMessage *m = protobuf_c_message_unpack(sl_tr_type_descriptor((sl_xds_type)t), NULL, r->len,
                                                                r->data);
                uint8_t *b;
                size_t n;
                if (!m)
                    fail_msg("%s: %s does not unpack", where, r->name);
                n = protobuf_c_message_get_packed_size(m);
                b = malloc(n ? n : 1);
                assert_non_null(b);
                protobuf_c_message_pack(m, b);
                if (n != r->len || memcmp(b, r->data, n) != 0)
                    fail_msg("%s: %s: the translator's bytes differ from protobuf-c's", where, r->name);
                check_parts(r, where);
                free(b);
                protobuf_c_message_free_unpacked(m, NULL);
            }
}

/* Both results hold the same proxies and resources, byte for byte. */
static void assert_same_result(const sl_tr_result *a, const sl_tr_result *b, const char *where)
{
    if (a->n_proxies != b->n_proxies)
        fail_msg("%s: %zu proxies, then %zu", where, a->n_proxies, b->n_proxies);
    for (size_t p = 0; p < a->n_proxies; p++)
        for (int t = 0; t < SL_XDS_TYPE_COUNT; t++) {
            if (a->proxies[p].n[t] != b->proxies[p].n[t])
                fail_msg("%s: proxy %s: %zu then %zu resources of a type", where, a->proxies[p].name,
                         a->proxies[p].n[t], b->proxies[p].n[t]);
            for (size_t i = 0; i < a->proxies[p].n[t]; i++) {
                const sl_tr_resource *x = &a->proxies[p].res[t][i], *y = &b->proxies[p].res[t][i];
                if (strcmp(x->name, y->name) != 0 || x->len != y->len || memcmp(x->data, y->data, x->len) != 0)
                    fail_msg("%s: proxy %s: %s differs", where, a->proxies[p].name, x->name);
            }
        }
}

/* Both results carry the same reports. */
static void assert_same_reports(const sl_tr_result *a, const sl_tr_result *b, const char *where)
{
    if (a->n_reports != b->n_reports)
        fail_msg("%s: %zu reports, then %zu", where, a->n_reports, b->n_reports);
    for (size_t i = 0; i < a->n_reports; i++) {
        const sl_tr_report *x = &a->reports[i], *y = &b->reports[i];
        if (x->kind != y->kind || strcmp(x->ns, y->ns) != 0 || strcmp(x->name, y->name) != 0 ||
            x->state != y->state || strcmp(x->reason, y->reason) != 0 || x->n_warnings != y->n_warnings)
            fail_msg("%s: report %s %s.%s: %d \"%s\" (%zu warnings), then %d \"%s\" (%zu warnings)", where,
                     x->kind->kind, x->ns, x->name, x->state, x->reason, x->n_warnings, y->state, y->reason,
                     y->n_warnings);
        for (size_t j = 0; j < x->n_warnings; j++)
            if (strcmp(x->warnings[j], y->warnings[j]) != 0)
                fail_msg("%s: report %s %s.%s: warning \"%s\", then \"%s\"", where, x->kind->kind, x->ns,
                         x->name, x->warnings[j], y->warnings[j]);
    }
}

/* Puts the VirtualService documents of the YAML file at path again (every
 * other one): new versions with the same content. */
static void reput_some_virtual_services(sl_tr_store *st, const char *path)
{
    size_t len = 0, k = 0;
    char *text = slurp(path, &len), *doc = text;
    assert_non_null(text);
    while (doc && *doc) {
        char *end = strstr(doc, "\n---");
        if (end)
            *end = '\0';
        if (strstr(doc, "kind: VirtualService") && k++ % 2 == 0) {
            sl_diag d;
            sl_diag_init(&d);
            sl_tr_store_load_yaml(st, doc, strlen(doc), path, &d);
            sl_diag_deinit(&d);
        }
        if (!end)
            break;
        doc = end + 4;
        while (*doc && *doc != '\n')
            doc++; /* the rest of the "---" line */
    }
    free(text);
}

static void update_golden(const char *path, const char *old, const sl_tr_result *res)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    for (const char *line = old; line && *line;) {
        const char *nl = strchr(line, '\n');
        size_t n = nl ? (size_t)(nl - line + 1) : strlen(line);
        if (strncmp(line, "#!", 2) == 0)
            fwrite(line, 1, n, f);
        line += n;
    }
    for (size_t p = 0; p < res->n_proxies; p++)
        for (int t = 0; t < SL_XDS_TYPE_COUNT; t++)
            for (size_t i = 0; i < res->proxies[p].n[t]; i++) {
                char *y = resource_yaml((sl_xds_type)t, &res->proxies[p].res[t][i]);
                fprintf(f, "# proxy %s %s %s\n%s", res->proxies[p].name, sl_xds_type_token((sl_xds_type)t),
                        res->proxies[p].res[t][i].name, y);
                free(y);
            }
    fclose(f);
}

static const char *state_name(int s)
{
    static const char *const n[] = {"Pending", "Accepted", "Rejected", "Warning"};
    return s >= 0 && s < 4 ? n[s] : "?";
}

static void check_report(const sl_tr_result *res, const char *line, const char *where)
{
    char kind[64], nsname[300], state[32], ns[128], name[256];
    const char *text = NULL, *dot;
    const sl_tr_report *r;
    int off = 0;
    if (sscanf(line, "#! report %63s %299s %31s %n", kind, nsname, state, &off) < 3)
        fail_msg("%s: bad line: %s", where, line);
    text = off ? line + off : "";
    dot = strchr(nsname, '.');
    assert_non_null(dot);
    snprintf(ns, sizeof ns, "%.*s", (int)(dot - nsname), nsname);
    snprintf(name, sizeof name, "%s", dot + 1);
    r = sl_tr_result_report(res, kind, ns, name);
    if (!r)
        fail_msg("%s: no report about %s %s", where, kind, nsname);
    if (strcmp(state_name(r->state), state) != 0)
        fail_msg("%s: %s %s is %s (%s), expected %s", where, kind, nsname, state_name(r->state), r->reason, state);
    if (text[0]) {
        bool found = strstr(r->reason, text) != NULL;
        for (size_t i = 0; !found && i < r->n_warnings; i++)
            found = strstr(r->warnings[i], text) != NULL;
        if (!found) {
            for (size_t i = 0; i < r->n_warnings; i++)
                fprintf(stderr, "  warning: %s\n", r->warnings[i]);
            fail_msg("%s: %s %s: \"%s\" is neither in the reason (%s) nor in a warning", where, kind, nsname, text,
                     r->reason);
        }
    }
}

static void run_case(const char *dir)
{
    char in[2300], ex[2300];
    size_t len = 0;
    char *expected, *line, *next;
    sl_tr_store *st;
    sl_tr_result *res;
    bool partial = false;
    char *proxies[16];
    size_t n_proxies = 0, n_sections = 0;

    snprintf(in, sizeof in, "%s/input.yaml", dir);
    snprintf(ex, sizeof ex, "%s/expected.yaml", dir);
    assert_int_equal(sl_tr_store_new(&st), SL_OK);
    res = translate_file(st, in);
    check_packing(res, in);
    {
        /* again, from what the first translation kept (clusters of
         * unchanged upstreams): the same bytes */
        sl_tr_result *again = NULL;
        assert_int_equal(sl_tr_translate(&again, st, NULL), SL_OK);
        assert_same_result(res, again, in);
        assert_same_reports(res, again, in);
        sl_tr_result_free(again);
        /* some virtual services new (translated), the others kept */
        reput_some_virtual_services(st, in);
        assert_int_equal(sl_tr_translate(&again, st, NULL), SL_OK);
        assert_same_result(res, again, in);
        assert_same_reports(res, again, in);
        sl_tr_result_free(again);
    }
    expected = slurp(ex, &len);
    if (!expected)
        fail_msg("cannot read %s", ex);
    if (getenv("SLUICE_UPDATE_GOLDEN")) {
        update_golden(ex, expected, res);
        free(expected);
        expected = slurp(ex, &len);
    }
    for (line = expected; line && *line; line = next) {
        char *nl = strchr(line, '\n');
        next = nl ? nl + 1 : NULL;
        if (nl)
            *nl = '\0';
        if (strcmp(line, "#! partial") == 0) {
            partial = true;
        } else if (strncmp(line, "#! report ", 10) == 0) {
            check_report(res, line, ex);
        } else if (strncmp(line, "# proxy ", 8) == 0) {
            char proxy[256], type[32], name[512], where[3200];
            sl_xds_type t;
            const sl_tr_resource *r;
            char *body = next, *end = next, *want, *got;
            if (sscanf(line, "# proxy %255s %31s %511s", proxy, type, name) != 3 ||
                sl_xds_type_from_token(&t, type) != SL_OK)
                fail_msg("%s: bad section header: %s", ex, line);
            while (end && *end && strncmp(end, "# proxy ", 8) != 0 && strncmp(end, "#!", 2) != 0) {
                char *e2 = strchr(end, '\n');
                end = e2 ? e2 + 1 : end + strlen(end);
            }
            {
                char saved = end ? *end : '\0';
                if (end)
                    *end = '\0';
                snprintf(where, sizeof where, "%s (%s %s %s)", ex, proxy, type, name);
                r = sl_tr_proxy_find(sl_tr_result_proxy(res, proxy), t, name);
                if (!r)
                    fail_msg("%s: not produced", where);
                want = normalize(t, body ? body : "", where);
                got = resource_yaml(t, r);
                if (strcmp(want, got) != 0) {
                    fprintf(stderr, "--- expected %s\n%s--- actual\n%s", where, want, got);
                    fail_msg("%s differs", where);
                }
                free(want);
                free(got);
                if (end)
                    *end = saved;
            }
            n_sections++;
            {
                bool known = false;
                for (size_t i = 0; i < n_proxies; i++)
                    known |= strcmp(proxies[i], proxy) == 0;
                if (!known && n_proxies < 16)
                    proxies[n_proxies++] = strdup(proxy);
            }
            next = end && *end ? end : NULL;
        }
    }
    if (!partial) {
        size_t total = 0;
        for (size_t i = 0; i < n_proxies; i++) {
            const sl_tr_proxy *p = sl_tr_result_proxy(res, proxies[i]);
            for (int t = 0; p && t < SL_XDS_TYPE_COUNT; t++)
                total += p->n[t];
        }
        if (total != n_sections)
            fail_msg("%s: %zu resources produced, %zu expected", ex, total, n_sections);
    }
    for (size_t i = 0; i < n_proxies; i++)
        free(proxies[i]);
    free(expected);
    sl_tr_result_free(res);
    sl_tr_store_free(st);
}

static void table_cases(void **state)
{
    DIR *d = opendir(data_dir());
    struct dirent *e;
    char *names[256];
    size_t n = 0;
    (void)state;
    assert_non_null(d);
    while ((e = readdir(d)) != NULL && n < 256)
        if (e->d_name[0] != '.' && !strchr(e->d_name, '.'))
            names[n++] = strdup(e->d_name);
    closedir(d);
    assert_true(n > 0);
    for (size_t i = 0; i < n; i++) {
        char dir[2200];
        snprintf(dir, sizeof dir, "%s/%s", data_dir(), names[i]);
        print_message("case %s\n", names[i]);
        run_case(dir);
        free(names[i]);
    }
}

/* --- last good versions ------------------------------------------------ */

static const char *BASE =
    "apiVersion: gloo.solo.io/v1\nkind: Upstream\nmetadata: {name: up, namespace: default}\n"
    "spec: {static: {hosts: [{addr: 10.0.0.1, port: 80}]}}\n"
    "---\napiVersion: gateway.solo.io/v1\nkind: VirtualService\nmetadata: {name: a, namespace: default}\n"
    "spec: {virtualHost: {domains: [a.example.com], routes: [{matchers: [{prefix: /a}], routeAction: {single: {upstream: {name: up}}}}]}}\n"
    "---\napiVersion: gateway.solo.io/v1\nkind: VirtualService\nmetadata: {name: b, namespace: default}\n"
    "spec: {virtualHost: {domains: [b.example.com], routes: [{matchers: [{prefix: /b}], routeAction: {single: {upstream: {name: up}}}}]}}\n";

static const char *B_BROKEN =
    "apiVersion: gateway.solo.io/v1\nkind: VirtualService\nmetadata: {name: b, namespace: default}\n"
    "spec: {virtualHost: {domains: [b.example.com], routes: [{matchers: [{regex: '/b(?=x)'}], routeAction: {single: {upstream: {name: up}}}}]}}\n";

static char *route_config_yaml(const sl_tr_result *res)
{
    const sl_tr_resource *r =
        sl_tr_proxy_find(sl_tr_result_proxy(res, "gloo-system~gateway-proxy"), SL_XDS_ROUTE, "listener-::-8080-routes");
    assert_non_null(r);
    return resource_yaml(SL_XDS_ROUTE, r);
}

/* BASE and extra translated, then broken loaded: VirtualService b is
 * Rejected (its reason holds why; RouteTable rt too when rt_rejected), its
 * last good version keeps serving (the route configuration unchanged), a
 * stays Accepted. In a store that never translated the good versions, b
 * is left out. */
static void check_b_keeps_last_good(const char *extra, const char *broken, const char *why, bool rt_rejected)
{
    sl_tr_store *st;
    sl_tr_result *r1, *r2, *r3;
    char *y1, *y2;
    const sl_tr_report *rep;
    assert_int_equal(sl_tr_store_new(&st), SL_OK);
    tr_test_load(st, BASE);
    if (extra)
        tr_test_load(st, extra);
    assert_int_equal(sl_tr_translate(&r1, st, NULL), SL_OK);
    y1 = route_config_yaml(r1);
    assert_non_null(strstr(y1, "prefix: /b"));

    tr_test_load(st, broken);
    assert_int_equal(sl_tr_translate(&r2, st, NULL), SL_OK);
    rep = sl_tr_result_report(r2, "VirtualService", "default", "b");
    assert_non_null(rep);
    assert_int_equal(rep->state, 2);
    assert_true(rep->serving_last_good);
    if (!strstr(rep->reason, why))
        fail_msg("reason \"%s\" lacks \"%s\"", rep->reason, why);
    if (rt_rejected)
        assert_int_equal(sl_tr_result_report(r2, "RouteTable", "default", "rt")->state, 2);
    assert_int_equal(sl_tr_result_report(r2, "VirtualService", "default", "a")->state, 1);
    y2 = route_config_yaml(r2);
    assert_string_equal(y1, y2);
    free(y2);

    sl_tr_store_free(st);
    assert_int_equal(sl_tr_store_new(&st), SL_OK);
    tr_test_load(st, BASE);
    if (extra)
        tr_test_load(st, extra);
    tr_test_load(st, broken);
    assert_int_equal(sl_tr_translate(&r3, st, NULL), SL_OK);
    y2 = route_config_yaml(r3);
    assert_null(strstr(y2, "b.example.com"));
    assert_non_null(strstr(y2, "a.example.com"));
    assert_false(sl_tr_result_report(r3, "VirtualService", "default", "b")->serving_last_good);
    free(y2);

    free(y1);
    sl_tr_result_free(r1);
    sl_tr_result_free(r2);
    sl_tr_result_free(r3);
    sl_tr_store_free(st);
}

static void rejected_resource_keeps_last_good(void **state)
{
    (void)state;
    check_b_keeps_last_good(NULL, B_BROKEN, "lookahead", false);
}

/* A delegation cycle rejects the virtual service (Gloo strips the virtual
 * hosts of sources with errors and keeps the one it served before). */
static const char *B_DELEGATES =
    "apiVersion: gateway.solo.io/v1\nkind: VirtualService\nmetadata: {name: b, namespace: default}\n"
    "spec: {virtualHost: {domains: [b.example.com], routes: [{matchers: [{prefix: /b}], delegateAction: {ref: {name: "
    "rt}}}]}}\n"
    "---\napiVersion: gateway.solo.io/v1\nkind: RouteTable\nmetadata: {name: rt, namespace: default}\n"
    "spec: {routes: [{matchers: [{prefix: /b/x}], routeAction: {single: {upstream: {name: up}}}}]}\n";
static const char *RT_CYCLE =
    "apiVersion: gateway.solo.io/v1\nkind: RouteTable\nmetadata: {name: rt, namespace: default}\n"
    "spec: {routes: [{matchers: [{prefix: /b/x}], delegateAction: {ref: {name: rt}}}]}\n";

/* b -> rt -> rt2; then rt2 delegates back to rt: rt (which starts the
 * cycle), rt2 (which closes it) and b are rejected, and what was served
 * before is served still. */
static const char *B_TWO_TABLES =
    "apiVersion: gateway.solo.io/v1\nkind: VirtualService\nmetadata: {name: b, namespace: default}\n"
    "spec: {virtualHost: {domains: [b.example.com], routes: [{matchers: [{prefix: /b}], delegateAction: {ref: {name: "
    "rt}}}]}}\n"
    "---\napiVersion: gateway.solo.io/v1\nkind: RouteTable\nmetadata: {name: rt, namespace: default}\n"
    "spec: {routes: [{matchers: [{prefix: /b/x}], delegateAction: {ref: {name: rt2}}}]}\n"
    "---\napiVersion: gateway.solo.io/v1\nkind: RouteTable\nmetadata: {name: rt2, namespace: default}\n"
    "spec: {routes: [{matchers: [{prefix: /b/x/y}], routeAction: {single: {upstream: {name: up}}}}]}\n";
static const char *RT2_CYCLE =
    "apiVersion: gateway.solo.io/v1\nkind: RouteTable\nmetadata: {name: rt2, namespace: default}\n"
    "spec: {routes: [{matchers: [{prefix: /b/x/y}], delegateAction: {ref: {name: rt}}}]}\n";

static void delegation_cycle_rejects_virtual_service(void **state)
{
    (void)state;
    check_b_keeps_last_good(B_DELEGATES, RT_CYCLE,
                            "on sub route table default.rt: invalid route: delegation cycle detected: [default.rt] -> "
                            "[default.rt]",
                            true);
    check_b_keeps_last_good(B_TWO_TABLES, RT2_CYCLE,
                            "on sub route table default.rt: invalid route: delegation cycle detected: [default.rt] -> "
                            "[default.rt2] -> [default.rt]",
                            true);
}

static void dry_run_records_nothing(void **state)
{
    sl_tr_store *st;
    sl_tr_result *r;
    sl_tr_options o = {0};
    char *y;
    (void)state;
    o.dry_run = true;
    assert_int_equal(sl_tr_store_new(&st), SL_OK);
    tr_test_load(st, BASE);
    assert_int_equal(sl_tr_translate(&r, st, &o), SL_OK); /* dry run: b not recorded as good */
    sl_tr_result_free(r);
    tr_test_load(st, B_BROKEN);
    assert_int_equal(sl_tr_translate(&r, st, NULL), SL_OK);
    y = route_config_yaml(r);
    assert_null(strstr(y, "b.example.com"));
    free(y);
    sl_tr_result_free(r);
    sl_tr_store_free(st);
}

static void store_replace_and_remove(void **state)
{
    sl_tr_store *st;
    (void)state;
    assert_int_equal(sl_tr_store_new(&st), SL_OK);
    tr_test_load(st, BASE);
    assert_int_equal(sl_tr_store_count(st, sl_kind_by_name("VirtualService")), 2);
    tr_test_load(st, B_BROKEN);
    assert_int_equal(sl_tr_store_count(st, sl_kind_by_name("VirtualService")), 2);
    assert_true(sl_tr_store_remove(st, sl_kind_by_name("VirtualService"), "default", "a"));
    assert_false(sl_tr_store_remove(st, sl_kind_by_name("VirtualService"), "default", "a"));
    assert_int_equal(sl_tr_store_count(st, sl_kind_by_name("VirtualService")), 1);
    assert_int_not_equal(sl_tr_store_put_packed(st, sl_kind_by_name("Upstream"), "\xff\xff", 2, 1), SL_OK);
    sl_tr_store_free(st);
}

/* An endpoint set change through the incremental path gives the same bytes
 * as a full translation; a new endpoint set (the cluster becomes EDS) falls
 * back. */
#define EDS_BASE                                                                                    \
    "apiVersion: gloo.solo.io/v1\nkind: Upstream\nmetadata: {name: d, namespace: default}\n"         \
    "spec: {dns: {name: d.internal, port: 8080}}\n---\n"                                               \
    "apiVersion: gloo.solo.io/v1\nkind: Upstream\nmetadata: {name: e, namespace: default}\n"         \
    "spec: {dns: {name: e.internal, port: 8080}}\n---\n"                                               \
    "apiVersion: gateway.solo.io/v1\nkind: VirtualService\nmetadata: {name: a, namespace: default}\n" \
    "spec: {virtualHost: {routes: [{routeAction: {single: {upstream: {name: d}}}}]}}\n---\n"
#define EPS(addr)                                                                                   \
    "apiVersion: sluice.io/v1\nkind: EndpointSet\nmetadata: {name: d, namespace: default}\n"         \
    "spec: {endpoints: [{address: " addr ", port: 8080}]}\n"

static void endpoints_incremental(void **state)
{
    sl_tr_store *st;
    sl_tr_result *inc, *full;
    const char *ns = "default", *name = "d", *name_e = "e";
    bool done = true;
    size_t changed = 0;
    (void)state;
    assert_int_equal(sl_tr_store_new(&st), SL_OK);
    tr_test_load(st, EDS_BASE EPS("10.0.0.1"));
    assert_int_equal(sl_tr_translate(&inc, st, NULL), SL_OK);
    tr_test_load(st, EPS("10.0.0.2"));
    assert_int_equal(sl_tr_translate_endpoints(inc, st, &ns, &name, 1, NULL, &done, &changed), SL_OK);
    assert_true(done);
    assert_true(changed >= 1);
    assert_int_equal(sl_tr_translate(&full, st, NULL), SL_OK);
    assert_int_equal(inc->n_proxies, full->n_proxies);
    for (size_t p = 0; p < full->n_proxies; p++)
        for (int t = 0; t < SL_XDS_TYPE_COUNT; t++) {
            assert_int_equal(inc->proxies[p].n[t], full->proxies[p].n[t]);
            for (size_t i = 0; i < full->proxies[p].n[t]; i++) {
                assert_string_equal(inc->proxies[p].res[t][i].name, full->proxies[p].res[t][i].name);
                assert_int_equal(inc->proxies[p].res[t][i].len, full->proxies[p].res[t][i].len);
                assert_memory_equal(inc->proxies[p].res[t][i].data, full->proxies[p].res[t][i].data,
                                    full->proxies[p].res[t][i].len);
            }
        }
    sl_tr_result_free(full);
    /* e has no endpoint set: not incremental */
    assert_int_equal(sl_tr_translate_endpoints(inc, st, &ns, &name_e, 1, NULL, &done, NULL), SL_OK);
    assert_false(done);
    /* d's endpoint set goes away: the cluster changes, not incremental */
    assert_true(sl_tr_store_remove(st, sl_kind_by_name("EndpointSet"), "default", "d"));
    assert_int_equal(sl_tr_translate_endpoints(inc, st, &ns, &name, 1, NULL, &done, NULL), SL_OK);
    assert_false(done);
    sl_tr_result_free(inc);
    sl_tr_store_free(st);
}

/* What a translation keeps of each upstream (packed clusters) follows
 * every change it was built from: the upstream, its endpoint set, the
 * Settings, the secrets. After each change, the result equals a
 * translation of a fresh store holding the same resources. */
#define KEEP_UP                                                                                     \
    "apiVersion: gloo.solo.io/v1\nkind: Upstream\nmetadata: {name: d, namespace: default}\n"         \
    "spec: {dns: {name: d.internal, port: 8080}}\n---\n"                                               \
    "apiVersion: gloo.solo.io/v1\nkind: Upstream\nmetadata: {name: s, namespace: default}\n"         \
    "spec: {static: {hosts: [{addr: 10.0.0.7, port: 443}]}, sslConfig: {sni: s.internal}}\n---\n"
#define KEEP_VS                                                                                     \
    "apiVersion: gateway.solo.io/v1\nkind: VirtualService\nmetadata: {name: a, namespace: default}\n" \
    "spec: {virtualHost: {routes: [{routeAction: {single: {upstream: {name: d}}}}]}}\n---\n"
#define KEEP_SETTINGS(n)                                                                            \
    "---\napiVersion: gloo.solo.io/v1\nkind: Settings\nmetadata: {name: default, namespace: gloo-system}\n" \
    "spec: {gloo: {circuitBreakers: {maxConnections: " n "}}}\n---\n"

static void check_against_fresh(sl_tr_store *st, const char *all, const char *what)
{
    sl_tr_store *fresh;
    sl_tr_result *a, *b;
    assert_int_equal(sl_tr_translate(&a, st, NULL), SL_OK);
    assert_int_equal(sl_tr_store_new(&fresh), SL_OK);
    tr_test_load(fresh, all);
    assert_int_equal(sl_tr_translate(&b, fresh, NULL), SL_OK);
    assert_same_result(b, a, what);
    sl_tr_result_free(a);
    sl_tr_result_free(b);
    sl_tr_store_free(fresh);
}

/* A proxy gets the clusters of the upstreams its routes reach and the
 * secrets they name (the secrets-scoped case), every one with Settings
 * allClustersToEveryProxy; kept translations follow a route moving to
 * another upstream and the setting going on and off. */
static void clusters_only_where_referenced(void **state)
{
    static const char *const SETTINGS = "apiVersion: gloo.solo.io/v1\nkind: Settings\n"
                                        "metadata: {name: default, namespace: gloo-system}\nspec: {allClustersToEveryProxy: %s}\n";
    static const char *const MOVE = "apiVersion: gateway.solo.io/v1\nkind: VirtualService\n"
                                    "metadata: {name: a, namespace: team-a, labels: {team: a}}\n"
                                    "spec: {virtualHost: {domains: [a.example.com], routes: [{matchers: [{prefix: /}], "
                                    "routeAction: {single: {upstream: {name: b-svc, namespace: team-b}}}}]}}\n";
    size_t len;
    char *input = slurp("./test/data/translator/secrets-scoped/input.yaml", &len), *all, doc[512];
    sl_tr_store *st;
    sl_tr_result *r;
    const sl_tr_proxy *a;
    (void)state;
    assert_non_null(input);
    assert_int_equal(sl_tr_store_new(&st), SL_OK);
    tr_test_load(st, input);
    assert_int_equal(sl_tr_translate(&r, st, NULL), SL_OK);
    a = sl_tr_result_proxy(r, "gloo-system~proxy-a");
    assert_int_equal(a->n[SL_XDS_CLUSTER], 2);
    assert_null(sl_tr_proxy_find(a, SL_XDS_SECRET, "b-client_team-b"));
    sl_tr_result_free(r);
    for (int on = 1; on >= 0; on--) {
        snprintf(doc, sizeof doc, SETTINGS, on ? "true" : "false");
        tr_test_load(st, doc);
        all = malloc(len + strlen(doc) + 8);
        sprintf(all, "%s\n---\n%s", input, doc);
        check_against_fresh(st, all, on ? "allClustersToEveryProxy on" : "allClustersToEveryProxy off");
        assert_int_equal(sl_tr_translate(&r, st, NULL), SL_OK);
        a = sl_tr_result_proxy(r, "gloo-system~proxy-a");
        assert_int_equal(a->n[SL_XDS_CLUSTER], on ? 5 : 2); /* a-denied rejected: in none */
        assert_true((sl_tr_proxy_find(a, SL_XDS_SECRET, "b-client_team-b") != NULL) == on);
        sl_tr_result_free(r);
        if (!on) { /* proxy-a's route moves to team-b's upstream: its cluster and secret follow */
            tr_test_load(st, MOVE);
            free(all);
            all = malloc(len + strlen(doc) + strlen(MOVE) + 16);
            sprintf(all, "%s\n---\n%s\n---\n%s", input, doc, MOVE);
            check_against_fresh(st, all, "a route moved");
            assert_int_equal(sl_tr_translate(&r, st, NULL), SL_OK);
            a = sl_tr_result_proxy(r, "gloo-system~proxy-a");
            assert_int_equal(a->n[SL_XDS_CLUSTER], 1);
            assert_non_null(sl_tr_proxy_find(a, SL_XDS_SECRET, "b-client_team-b"));
            assert_null(sl_tr_proxy_find(a, SL_XDS_SECRET, "a-client_team-a"));
            sl_tr_result_free(r);
        }
        free(all);
    }
    free(input);
    sl_tr_store_free(st);
}

static void kept_clusters_follow_changes(void **state)
{
    sl_tr_store *st;
    (void)state;
    assert_int_equal(sl_tr_store_new(&st), SL_OK);
    tr_test_load(st, KEEP_UP KEEP_VS EPS("10.0.0.1"));
    check_against_fresh(st, KEEP_UP KEEP_VS EPS("10.0.0.1"), "initial");
    tr_test_load(st, EPS("10.0.0.2"));
    check_against_fresh(st, KEEP_UP KEEP_VS EPS("10.0.0.2"), "endpoint set changed");
    tr_test_load(st, KEEP_SETTINGS("7"));
    check_against_fresh(st, KEEP_UP KEEP_VS EPS("10.0.0.2") KEEP_SETTINGS("7"), "settings added");
    tr_test_load(st, KEEP_SETTINGS("9"));
    check_against_fresh(st, KEEP_UP KEEP_VS EPS("10.0.0.2") KEEP_SETTINGS("9"), "settings changed");
    assert_true(sl_tr_store_remove(st, sl_kind_by_name("EndpointSet"), "default", "d"));
    check_against_fresh(st, KEEP_UP KEEP_VS KEEP_SETTINGS("9"), "endpoint set removed");
    assert_true(sl_tr_store_remove(st, sl_kind_by_name("Settings"), "gloo-system", "default"));
    check_against_fresh(st, KEEP_UP KEEP_VS, "settings removed");
    tr_test_load(st, "apiVersion: gloo.solo.io/v1\nkind: Upstream\nmetadata: {name: s, namespace: default}\n"
             "spec: {static: {hosts: [{addr: 10.0.0.8, port: 443}]}}\n");
    check_against_fresh(st,
                        "apiVersion: gloo.solo.io/v1\nkind: Upstream\nmetadata: {name: d, namespace: default}\n"
                        "spec: {dns: {name: d.internal, port: 8080}}\n---\n"
                        "apiVersion: gloo.solo.io/v1\nkind: Upstream\nmetadata: {name: s, namespace: default}\n"
                        "spec: {static: {hosts: [{addr: 10.0.0.8, port: 443}]}}\n---\n" KEEP_VS,
                        "upstream changed");
    sl_tr_store_free(st);
}

/* --- incremental translation equals a full one --------------------------- */

/* A small world of resources in slots, each absent (0) or at a variant;
 * random changes to it go to two stores alike: one keeps what
 * translations kept (the incremental paths), the other drops all of it
 * before each translation (sl_tr_store_drop_kept: a full translation with
 * the same history of last good versions). Both must give the same bytes
 * for every resource of every proxy and the same reports. */
enum { R_UP = 6, R_VS = 8, R_RT = 3, R_SEC = 2 };

typedef struct rworld {
    int up[R_UP], eps[R_UP], sec[R_SEC], vs[R_VS], rt[R_RT];
    int gw_mode, settings;
} rworld;

static unsigned rnd_state = 12345;
static unsigned rnd(unsigned n)
{
    rnd_state = rnd_state * 1103515245u + 12345u;
    return (rnd_state >> 16) % n;
}

static const char *const DOMAINS[] = {"a.example.com", "b.example.com", "c.example.com",
                                      "d.example.com", "e.example.com", "b.example.com"};

static void rw_doc(char *buf, size_t cap, char kind, int slot, int v, int mode)
{
    switch (kind) {
    case 'u':
        if (slot % 3 == 0)
            snprintf(buf, cap,
                     "apiVersion: gloo.solo.io/v1\nkind: Upstream\nmetadata: {name: up-%d, namespace: default}\n"
                     "spec: {static: {hosts: [{addr: 10.0.%d.%d, port: %d}]}}\n",
                     slot, slot, v, v % 4 == 3 ? 0 : 80);
        else if (slot % 3 == 1)
            snprintf(buf, cap,
                     "apiVersion: gloo.solo.io/v1\nkind: Upstream\nmetadata: {name: up-%d, namespace: default}\n"
                     "spec: {dns: {name: d%d.internal, port: %d}}\n",
                     slot, slot, 8000 + v);
        else
            snprintf(buf, cap,
                     "apiVersion: gloo.solo.io/v1\nkind: Upstream\nmetadata: {name: up-%d, namespace: default}\n"
                     "spec: {static: {hosts: [{addr: 10.1.%d.%d, port: 443}]}%s}\n",
                     slot, slot, v, v % 2 ? ", sslConfig: {secretRef: {name: sec-1, namespace: default}}" : "");
        break;
    case 'e':
        snprintf(buf, cap,
                 "apiVersion: sluice.io/v1\nkind: EndpointSet\nmetadata: {name: up-%d, namespace: default}\n"
                 "spec: {endpoints: [{address: 10.9.%d.%d, port: 8080}]}\n",
                 slot, slot, v);
        break;
    case 's':
        snprintf(buf, cap,
                 "apiVersion: gloo.solo.io/v1\nkind: Secret\nmetadata: {name: sec-%d, namespace: default}\n"
                 "spec: {tls: {certChain: \"cert-%d\", privateKey: \"key-%d\"}}\n",
                 slot, v, v);
        break;
    case 'v': {
        const char *dom = DOMAINS[(slot + v) % 6];
        char ssl[256] = "";
        if (v % 5 == 0)
            snprintf(ssl, sizeof ssl, "  sslConfig: {secretRef: {name: sec-%d, namespace: default}, sniDomains: [%s]}\n",
                     v % 2, dom);
        snprintf(buf, cap,
                 "apiVersion: gateway.solo.io/v1\nkind: VirtualService\n"
                 "metadata: {name: vs-%d, namespace: default, labels: {team: %s}}\n"
                 "spec:\n%s  virtualHost:\n    domains: [%s]\n    routes:\n"
                 "    - matchers: [{%s: '/%d/%d'}]\n      routeAction: {single: {upstream: {name: up-%d}}}\n"
                 "    - matchers: [{prefix: /rt}]\n      delegateAction: {ref: {name: rt-%d}}\n",
                 slot, v % 2 ? "a" : "b", ssl, dom, v % 7 == 0 ? "regex" : "prefix", slot,
                 v % 7 == 0 ? -1 : v, v % R_UP, v % R_RT);
        if (v % 11 == 0) /* the cluster named by a header: the proxy gets every cluster */
            snprintf(buf + strlen(buf), cap - strlen(buf), "    - matchers: [{prefix: /ch}]\n"
                                                           "      routeAction: {clusterHeader: x-cluster}\n");
        if (v % 7 == 0) /* a lookahead: rejected */
            snprintf(buf + strlen(buf) - 0, cap - strlen(buf), "    - matchers: [{regex: '/x(?=y)'}]\n"
                                                               "      directResponseAction: {status: 200}\n");
        break;
    }
    case 'r':
        snprintf(buf, cap,
                 "apiVersion: gateway.solo.io/v1\nkind: RouteTable\nmetadata: {name: rt-%d, namespace: default}\n"
                 "spec: {routes: [{matchers: [{prefix: %s/%d/%d}], routeAction: {single: {upstream: {name: up-%d}}}}]}\n",
                 slot, v % 6 == 0 ? "/elsewhere" : "/rt", slot, v, (v + 1) % R_UP);
        break;
    case 't':
        snprintf(buf, cap,
                 "apiVersion: gloo.solo.io/v1\nkind: Settings\nmetadata: {name: default, namespace: gloo-system}\n"
                 "spec: {allClustersToEveryProxy: %s, gloo: {circuitBreakers: {maxConnections: %d}}}\n",
                 v % 3 == 0 ? "true" : "false", v);
        break;
    case 'g': /* gateway slot for a mode */
        if (mode == 1 && slot == 0)
            snprintf(buf, cap, "apiVersion: gateway.solo.io/v1\nkind: Gateway\nmetadata: {name: gw-a, namespace: default}\n"
                               "spec: {bindPort: 8080, proxyNames: [proxy-a], httpGateway: {virtualServiceSelector: {team: a}}}\n");
        else if (mode == 1 && slot == 1)
            snprintf(buf, cap, "apiVersion: gateway.solo.io/v1\nkind: Gateway\nmetadata: {name: gw-b, namespace: default}\n"
                               "spec: {bindPort: 8081, proxyNames: [proxy-b], httpGateway: {}}\n");
        else if (mode == 1 && slot == 2)
            snprintf(buf, cap, "apiVersion: gateway.solo.io/v1\nkind: Gateway\nmetadata: {name: gw-ssl, namespace: default}\n"
                               "spec: {bindPort: 8443, ssl: true, proxyNames: [proxy-a], httpGateway: {}}\n");
        else if (mode == 2 && slot == 0)
            snprintf(buf, cap, "apiVersion: gateway.solo.io/v1\nkind: Gateway\nmetadata: {name: gw-a, namespace: default}\n"
                               "spec: {bindPort: 8080, proxyNames: [proxy-a], httpGateway: {virtualServiceSelector: {team: b}}}\n");
        else if (mode == 2 && slot == 1)
            snprintf(buf, cap, "apiVersion: gateway.solo.io/v1\nkind: Gateway\nmetadata: {name: gw-b, namespace: default}\n"
                               "spec: {bindPort: 8081, proxyNames: [proxy-b, proxy-a], httpGateway: {virtualServiceNamespaces: [default]}}\n");
        else if (mode == 3 && slot == 0)
            snprintf(buf, cap, "apiVersion: gateway.solo.io/v1\nkind: Gateway\nmetadata: {name: gw-a, namespace: default}\n"
                               "spec: {bindPort: 8080, proxyNames: [proxy-a], httpGateway: {virtualServices: [{name: vs-0}, {name: vs-1}]}}\n");
        else if (mode == 3 && slot == 1)
            snprintf(buf, cap, "apiVersion: gateway.solo.io/v1\nkind: Gateway\nmetadata: {name: gw-b, namespace: default}\n"
                               "spec: {bindPort: 8081, proxyNames: [proxy-g], grpcApiListeners: true, httpGateway: {}}\n");
        else
            buf[0] = '\0';
        break;
    }
}

static const char *rw_kind(char kind)
{
    switch (kind) {
    case 'u': return "Upstream";
    case 'e': return "EndpointSet";
    case 's': return "Secret";
    case 'v': return "VirtualService";
    case 'r': return "RouteTable";
    case 't': return "Settings";
    default: return "Gateway";
    }
}

/* Sets one slot in both stores: the document of variant v, or removal (v 0). */
static void rw_set(sl_tr_store *const *st, char kind, int slot, int v, int mode)
{
    static const char *const gw_names[] = {"gw-a", "gw-b", "gw-ssl"};
    char buf[2048], name[32];
    const char *ns = kind == 't' ? "gloo-system" : "default";
    if (kind == 'g') {
        rw_doc(buf, sizeof buf, 'g', slot, 0, mode);
        snprintf(name, sizeof name, "%s", gw_names[slot]);
        v = buf[0] != '\0';
    } else {
        if (v)
            rw_doc(buf, sizeof buf, kind, slot, v, 0);
        snprintf(name, sizeof name, kind == 'u' || kind == 'e' ? "up-%d" : kind == 's' ? "sec-%d"
                                    : kind == 'v'                  ? "vs-%d"
                                    : kind == 'r'                  ? "rt-%d"
                                                                   : "default",
                 slot);
    }
    for (int i = 0; i < 2; i++) {
        if (v)
            tr_test_load(st[i], buf);
        else
            sl_tr_store_remove(st[i], sl_kind_by_name(rw_kind(kind)), ns, name);
    }
}

static void assert_same_proxies(const sl_tr_result *a, const sl_tr_result *b, const char *where)
{
    assert_same_result(a, b, where);
    for (size_t p = 0; p < a->n_proxies; p++)
        if (strcmp(a->proxies[p].name, b->proxies[p].name) != 0 || a->proxies[p].proxyless != b->proxies[p].proxyless)
            fail_msg("%s: proxy %s, then %s", where, a->proxies[p].name, b->proxies[p].name);
    assert_same_reports(a, b, where);
}

/* steps random changes; op_range 100: any kind, 52: only VirtualServices
 * and RouteTables (what the gateways' memos keep up with). */
static void random_series(int steps, unsigned op_range)
{
    sl_tr_store *st[2];
    sl_tr_result *last = NULL;
    rworld w;
    char where[128], name_buf[32];
    memset(&w, 0, sizeof w);
    assert_int_equal(sl_tr_store_new(&st[0]), SL_OK);
    assert_int_equal(sl_tr_store_new(&st[1]), SL_OK);
    for (int i = 0; i < R_UP; i++) {
        rw_set(st, 'u', i, w.up[i] = 1 + i, 0);
        if (i % 3 == 1)
            rw_set(st, 'e', i, w.eps[i] = 1, 0);
    }
    for (int i = 0; i < R_SEC; i++)
        rw_set(st, 's', i, w.sec[i] = 1, 0);
    for (int i = 0; i < R_RT; i++)
        rw_set(st, 'r', i, w.rt[i] = 1 + i, 0);
    for (int i = 0; i < R_VS; i++)
        rw_set(st, 'v', i, w.vs[i] = 1 + i, 0);
    for (int step = 0; step < steps; step++) {
        unsigned op = rnd(op_range);
        int eps_slot = -1;
        bool dry = false, eps_done = false;
        const char *what;
        sl_tr_result *inc, *full;
        sl_tr_options o = {0};
        if (step == 0) {
            what = "initial";
        } else if (op < 35) { /* a VirtualService edited (rejected, fixed, moved between domains) */
            int k = (int)rnd(R_VS);
            rw_set(st, 'v', k, w.vs[k] = 1 + (int)rnd(40), 0);
            what = "VirtualService edited";
        } else if (op < 42) { /* a VirtualService added or removed */
            int k = (int)rnd(R_VS);
            rw_set(st, 'v', k, w.vs[k] = w.vs[k] ? 0 : 1 + (int)rnd(40), 0);
            what = "VirtualService added or removed";
        } else if (op < 52) {
            int k = (int)rnd(R_RT);
            rw_set(st, 'r', k, w.rt[k] = rnd(5) ? 1 + (int)rnd(20) : 0, 0);
            what = "RouteTable edited";
        } else if (op < 62) {
            int k = (int)rnd(R_UP);
            rw_set(st, 'u', k, w.up[k] = rnd(4) ? 1 + (int)rnd(20) : 0, 0);
            what = "Upstream edited, added or removed";
        } else if (op < 77) {
            int k = 1 + 3 * (int)rnd(R_UP / 3);
            rw_set(st, 'e', k, w.eps[k] = rnd(6) ? 1 + (int)rnd(50) : 0, 0);
            eps_slot = k;
            what = "EndpointSet changed";
        } else if (op < 82) {
            int k = (int)rnd(R_SEC);
            rw_set(st, 's', k, w.sec[k] = rnd(4) ? 1 + (int)rnd(9) : 0, 0);
            what = "Secret changed";
        } else if (op < 90) {
            w.gw_mode = (int)rnd(4);
            for (int g = 0; g < 3; g++)
                rw_set(st, 'g', g, 0, w.gw_mode);
            what = "Gateways changed";
        } else if (op < 95) {
            rw_set(st, 't', 0, w.settings = rnd(3) ? 1 + (int)rnd(9) : 0, 0);
            what = "Settings changed";
        } else {
            dry = true;
            what = "dry run";
        }
        snprintf(where, sizeof where, "step %d: %s", step, what);
        o.dry_run = dry;
        /* the endpoint path on the last result, when it takes the change */
        if (eps_slot >= 0 && last) {
            const char *ns = "default", *nm = name_buf;
            snprintf(name_buf, sizeof name_buf, "up-%d", eps_slot);
            assert_int_equal(sl_tr_translate_endpoints(last, st[0], &ns, &nm, 1, NULL, &eps_done, NULL), SL_OK);
        }
        {
            /* every other step as the service translates: reports
             * deferred, then finished explicitly or (every fourth step) by
             * the next call that changes the store */
            sl_tr_options oi = o;
            oi.defer_reports = step % 2 == 1;
            assert_int_equal(sl_tr_translate(&inc, st[0], &oi), SL_OK);
            if (oi.defer_reports) {
                assert_int_equal(inc->n_reports, 0);
                if (step % 4 == 1)
                    assert_int_equal(sl_tr_result_finish(inc), SL_OK);
                else
                    assert_false(sl_tr_store_remove(st[0], sl_kind_by_name("VirtualService"), "none", "absent"));
                assert_null(inc->pending);
            }
        }
        sl_tr_store_drop_kept(st[1]);
        assert_int_equal(sl_tr_translate(&full, st[1], &o), SL_OK);
        assert_same_proxies(full, inc, where);
        if (eps_done) {
            char w2[160];
            snprintf(w2, sizeof w2, "%s (sl_tr_translate_endpoints)", where);
            assert_same_result(full, last, w2);
        }
        check_packing(inc, where);
        sl_tr_result_free(full);
        if (dry) {
            sl_tr_result_free(inc);
        } else {
            sl_tr_result_free(last);
            last = inc;
        }
    }
    sl_tr_result_free(last);
    sl_tr_store_free(st[0]);
    sl_tr_store_free(st[1]);
}

/* --- a big route configuration in parts (for the writer) ---------------- */

static void load_vs(sl_tr_store *st, int i, const char *prefix)
{
    char yaml[4096];
    size_t o = (size_t)snprintf(yaml, sizeof yaml,
                                "apiVersion: gateway.solo.io/v1\nkind: VirtualService\n"
                                "metadata: {name: vs-%d, namespace: default}\n"
                                "spec:\n  virtualHost:\n    domains: [vs-%d.example.com]\n    routes:\n", i, i);
    for (int r = 0; r < 10; r++)
        o += (size_t)snprintf(yaml + o, sizeof yaml - o,
                              "    - matchers: [{prefix: %s/some/longer/api/path/%d/%d}]\n"
                              "      routeAction: {single: {upstream: {name: up}}}\n", prefix, i, r);
    tr_test_load(st, yaml);
}

static const sl_tr_resource *the_route(const sl_tr_result *res)
{
    const sl_tr_proxy *p = sl_tr_result_proxy(res, "gloo-system~gateway-proxy");
    assert_non_null(p);
    assert_int_equal(p->n[SL_XDS_ROUTE], 1);
    return &p->res[SL_XDS_ROUTE][0];
}

/* The parts of a route configuration are the split of its bytes; a kept
 * virtual host is the same part (pointer) in the next result while the
 * first lives; with route_parts_only a big route comes without its whole,
 * and joins to what a full translation packs. */
static void route_in_parts(void **state)
{
    sl_tr_store *st, *fresh;
    sl_tr_result *a = NULL, *b = NULL, *c = NULL, *f = NULL;
    sl_tr_options o = {0};
    const sl_tr_resource *ra, *rb, *rc, *rf;
    uint8_t *joined = NULL;
    size_t jl = 0, changed = 0;
    (void)state;
    assert_int_equal(sl_tr_store_new(&st), SL_OK);
    assert_int_equal(sl_tr_store_new(&fresh), SL_OK);
    tr_test_load(st, "apiVersion: gloo.solo.io/v1\nkind: Upstream\nmetadata: {name: up, namespace: default}\n"
             "spec: {static: {hosts: [{addr: 10.0.0.1, port: 80}]}}\n");
    tr_test_load(fresh, "apiVersion: gloo.solo.io/v1\nkind: Upstream\nmetadata: {name: up, namespace: default}\n"
                "spec: {static: {hosts: [{addr: 10.0.0.1, port: 80}]}}\n");
    for (int i = 0; i < 150; i++) {
        load_vs(st, i, "");
        load_vs(fresh, i, i == 7 ? "/changed" : "");
    }
    assert_int_equal(sl_tr_translate(&a, st, NULL), SL_OK);
    ra = the_route(a);
    assert_true(ra->len >= SL_XDS_SPLIT_MIN);
    assert_non_null(ra->parts);
    assert_int_equal(ra->parts->n, 150);
    check_packing(a, "whole and parts");

    /* one VirtualService changes; parts only */
    load_vs(st, 7, "/changed");
    o.route_parts_only = true;
    assert_int_equal(sl_tr_translate(&b, st, &o), SL_OK);
    rb = the_route(b);
    assert_null(rb->data);
    assert_non_null(rb->parts);
    assert_int_equal(rb->parts->n, 150);
    for (size_t i = 0; i < 150; i++) {
        bool same = rb->parts->v[i].data == ra->parts->v[i].data;
        assert_string_equal(rb->parts->v[i].name, ra->parts->v[i].name);
        if (same)
            assert_int_equal(rb->parts->v[i].len, ra->parts->v[i].len);
        else
            assert_string_equal(rb->parts->v[i].name, "default_vs-7"); /* the changed one only */
        changed += !same;
    }
    assert_int_equal(changed, 1);

    /* it joins to what a full translation packs (bar the place of
     * virtual_hosts among the fields, as sl_xds_route_join() says) */
    assert_int_equal(sl_tr_translate(&f, fresh, NULL), SL_OK);
    rf = the_route(f);
    {
        const uint8_t **pv = calloc(150, sizeof *pv);
        size_t *pl = calloc(150, sizeof *pl);
        uint8_t *fj = NULL, *fh = NULL;
        sl_xds_part *fp = NULL;
        size_t fjl = 0, fhl = 0, fn = 0;
        for (size_t i = 0; i < 150; i++) {
            pv[i] = rb->parts->v[i].data;
            pl[i] = rb->parts->v[i].len;
        }
        assert_int_equal(sl_xds_route_join(&joined, &jl, rb->parts->head, rb->parts->head_len, pv, pl, 150), SL_OK);
        assert_int_equal(jl, rb->len);
        assert_int_equal(sl_xds_route_split(&fh, &fhl, &fp, &fn, rf->data, rf->len), SL_OK);
        for (size_t i = 0; i < fn; i++) {
            pv[i] = rf->data + fp[i].off;
            pl[i] = fp[i].len;
        }
        assert_int_equal(sl_xds_route_join(&fj, &fjl, fh, fhl, pv, pl, fn), SL_OK);
        assert_int_equal(fjl, jl);
        assert_memory_equal(fj, joined, jl);
        free(fj);
        free(fh);
        free(fp);
        free(pv);
        free(pl);
    }

    /* nothing changed: the same route (the gateway's kept one) */
    assert_int_equal(sl_tr_translate(&c, st, &o), SL_OK);
    rc = the_route(c);
    assert_ptr_equal(rc->parts, rb->parts);
    /* and without route_parts_only, a whole again */
    sl_tr_result_free(c);
    assert_int_equal(sl_tr_translate(&c, st, NULL), SL_OK);
    rc = the_route(c);
    assert_non_null(rc->data);
    assert_int_equal(rc->len, rb->len);
    check_packing(c, "whole again");

    free(joined);
    sl_tr_result_free(a);
    sl_tr_result_free(b);
    sl_tr_result_free(c);
    sl_tr_result_free(f);
    sl_tr_store_free(st);
    sl_tr_store_free(fresh);
}

/* A gateway's route patched from its memo's last one (only the changed
 * virtual services' parts replaced, put in or taken out) equals one packed
 * again from a store that kept nothing: series of one or two changes
 * (edits, removals, additions) over 40 clean virtual services, with and
 * without route_parts_only. */
static void patched_routes_equal_full(void **state)
{
    sl_tr_store *st[2];
    sl_tr_result *last = NULL;
    const sl_kind *kv = sl_kind_by_name("VirtualService");
    (void)state;
    for (int k = 0; k < 2; k++) {
        assert_int_equal(sl_tr_store_new(&st[k]), SL_OK);
        tr_test_load(st[k], "apiVersion: gloo.solo.io/v1\nkind: Upstream\nmetadata: {name: up, namespace: default}\n"
                    "spec: {static: {hosts: [{addr: 10.0.0.1, port: 80}]}}\n");
        for (int i = 0; i < 40; i++)
            load_vs(st[k], i, "/a");
    }
    for (int step = 0; step < 300; step++) {
        sl_tr_result *inc, *full;
        sl_tr_options o = {0};
        const sl_tr_resource *ri, *rf;
        char where[64];
        int n_changes = rnd(4) == 0 ? 2 : 1;
        for (int c = 0; c < n_changes && step > 0; c++) {
            int i = (int)rnd(44), op = (int)rnd(10);
            char prefix[16], name[16];
            snprintf(prefix, sizeof prefix, "/p%u", rnd(1000));
            snprintf(name, sizeof name, "vs-%d", i);
            for (int k = 0; k < 2; k++) {
                if (op == 0 && i > 2)
                    sl_tr_store_remove(st[k], kv, "default", name);
                else
                    load_vs(st[k], i, prefix);
            }
        }
        snprintf(where, sizeof where, "patched step %d", step);
        o.route_parts_only = rnd(2);
        o.defer_reports = rnd(2);
        assert_int_equal(sl_tr_translate(&inc, st[0], &o), SL_OK);
        assert_int_equal(sl_tr_result_finish(inc), SL_OK);
        sl_tr_store_drop_kept(st[1]);
        assert_int_equal(sl_tr_translate(&full, st[1], &o), SL_OK);
        assert_int_equal(sl_tr_result_finish(full), SL_OK);
        ri = the_route(inc);
        rf = the_route(full);
        assert_int_equal(ri->len, rf->len);
        assert_true(!ri->data == !rf->data);
        if (ri->data)
            assert_memory_equal(ri->data, rf->data, ri->len);
        assert_non_null(ri->parts);
        assert_non_null(rf->parts);
        assert_int_equal(ri->parts->n, rf->parts->n);
        assert_int_equal(ri->parts->head_len, rf->parts->head_len);
        assert_memory_equal(ri->parts->head, rf->parts->head, ri->parts->head_len);
        for (size_t k = 0; k < ri->parts->n; k++) {
            assert_int_equal(ri->parts->v[k].len, rf->parts->v[k].len);
            assert_memory_equal(ri->parts->v[k].data, rf->parts->v[k].data, ri->parts->v[k].len);
            assert_string_equal(ri->parts->v[k].name, rf->parts->v[k].name);
        }
        if (!o.route_parts_only)
            assert_same_proxies(full, inc, where);
        sl_tr_result_free(full);
        sl_tr_result_free(last);
        last = inc;
    }
    sl_tr_result_free(last);
    sl_tr_store_free(st[0]);
    sl_tr_store_free(st[1]);
}

static void incremental_equals_full(void **state)
{
    (void)state;
    if (getenv("SLUICE_TEST_SEED")) /* other series */
        rnd_state = (unsigned)strtoul(getenv("SLUICE_TEST_SEED"), NULL, 10);
    random_series(400, 100);
    random_series(300, 52);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(table_cases),
        cmocka_unit_test(rejected_resource_keeps_last_good),
        cmocka_unit_test(delegation_cycle_rejects_virtual_service),
        cmocka_unit_test(dry_run_records_nothing),
        cmocka_unit_test(store_replace_and_remove),
        cmocka_unit_test(endpoints_incremental),
        cmocka_unit_test(kept_clusters_follow_changes),
        cmocka_unit_test(clusters_only_where_referenced),
        cmocka_unit_test(incremental_equals_full),
        cmocka_unit_test(route_in_parts),
        cmocka_unit_test(patched_routes_equal_full),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
