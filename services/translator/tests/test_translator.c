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
#include "translator.h"

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

static void load(sl_tr_store *st, const char *yaml)
{
    sl_diag d;
    sl_diag_init(&d);
    if (sl_tr_store_load_yaml(st, yaml, strlen(yaml), "<test>", &d) != SL_OK) {
        sl_diag_print(&d, stderr);
        fail_msg("does not decode");
    }
    sl_diag_deinit(&d);
}

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

static void rejected_resource_keeps_last_good(void **state)
{
    sl_tr_store *st;
    sl_tr_result *r1, *r2, *r3;
    char *y1, *y2;
    const sl_tr_report *rep;
    (void)state;
    assert_int_equal(sl_tr_store_new(&st), SL_OK);
    load(st, BASE);
    assert_int_equal(sl_tr_translate(&r1, st, NULL), SL_OK);
    y1 = route_config_yaml(r1);
    assert_non_null(strstr(y1, "prefix: /b"));

    /* b breaks: it is rejected, and its last good version keeps serving;
     * a is untouched. */
    load(st, B_BROKEN);
    assert_int_equal(sl_tr_translate(&r2, st, NULL), SL_OK);
    rep = sl_tr_result_report(r2, "VirtualService", "default", "b");
    assert_non_null(rep);
    assert_int_equal(rep->state, 2);
    assert_true(rep->serving_last_good);
    assert_non_null(strstr(rep->reason, "lookahead"));
    assert_int_equal(sl_tr_result_report(r2, "VirtualService", "default", "a")->state, 1);
    y2 = route_config_yaml(r2);
    assert_string_equal(y1, y2);
    free(y2);

    /* Without a last good version a broken resource is left out. */
    sl_tr_store_free(st);
    assert_int_equal(sl_tr_store_new(&st), SL_OK);
    load(st, BASE);
    load(st, B_BROKEN);
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

static void dry_run_records_nothing(void **state)
{
    sl_tr_store *st;
    sl_tr_result *r;
    sl_tr_options o = {0};
    char *y;
    (void)state;
    o.dry_run = true;
    assert_int_equal(sl_tr_store_new(&st), SL_OK);
    load(st, BASE);
    assert_int_equal(sl_tr_translate(&r, st, &o), SL_OK); /* dry run: b not recorded as good */
    sl_tr_result_free(r);
    load(st, B_BROKEN);
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
    load(st, BASE);
    assert_int_equal(sl_tr_store_count(st, sl_kind_by_name("VirtualService")), 2);
    load(st, B_BROKEN);
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
    load(st, EDS_BASE EPS("10.0.0.1"));
    assert_int_equal(sl_tr_translate(&inc, st, NULL), SL_OK);
    load(st, EPS("10.0.0.2"));
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
    load(fresh, all);
    assert_int_equal(sl_tr_translate(&b, fresh, NULL), SL_OK);
    assert_same_result(b, a, what);
    sl_tr_result_free(a);
    sl_tr_result_free(b);
    sl_tr_store_free(fresh);
}

static void kept_clusters_follow_changes(void **state)
{
    sl_tr_store *st;
    (void)state;
    assert_int_equal(sl_tr_store_new(&st), SL_OK);
    load(st, KEEP_UP KEEP_VS EPS("10.0.0.1"));
    check_against_fresh(st, KEEP_UP KEEP_VS EPS("10.0.0.1"), "initial");
    load(st, EPS("10.0.0.2"));
    check_against_fresh(st, KEEP_UP KEEP_VS EPS("10.0.0.2"), "endpoint set changed");
    load(st, KEEP_SETTINGS("7"));
    check_against_fresh(st, KEEP_UP KEEP_VS EPS("10.0.0.2") KEEP_SETTINGS("7"), "settings added");
    load(st, KEEP_SETTINGS("9"));
    check_against_fresh(st, KEEP_UP KEEP_VS EPS("10.0.0.2") KEEP_SETTINGS("9"), "settings changed");
    assert_true(sl_tr_store_remove(st, sl_kind_by_name("EndpointSet"), "default", "d"));
    check_against_fresh(st, KEEP_UP KEEP_VS KEEP_SETTINGS("9"), "endpoint set removed");
    assert_true(sl_tr_store_remove(st, sl_kind_by_name("Settings"), "gloo-system", "default"));
    check_against_fresh(st, KEEP_UP KEEP_VS, "settings removed");
    load(st, "apiVersion: gloo.solo.io/v1\nkind: Upstream\nmetadata: {name: s, namespace: default}\n"
             "spec: {static: {hosts: [{addr: 10.0.0.8, port: 443}]}}\n");
    check_against_fresh(st,
                        "apiVersion: gloo.solo.io/v1\nkind: Upstream\nmetadata: {name: d, namespace: default}\n"
                        "spec: {dns: {name: d.internal, port: 8080}}\n---\n"
                        "apiVersion: gloo.solo.io/v1\nkind: Upstream\nmetadata: {name: s, namespace: default}\n"
                        "spec: {static: {hosts: [{addr: 10.0.0.8, port: 443}]}}\n---\n" KEEP_VS,
                        "upstream changed");
    sl_tr_store_free(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(table_cases),
        cmocka_unit_test(rejected_resource_keeps_last_good),
        cmocka_unit_test(dry_run_records_nothing),
        cmocka_unit_test(store_replace_and_remove),
        cmocka_unit_test(endpoints_incremental),
        cmocka_unit_test(kept_clusters_follow_changes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
