/* Sluice's API: the generated sluice.v1 messages, the kind table
 * (sluice/kinds.h) and the rules for names, keys and subjects
 * (sluice/resource.h). */
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
#include "sluice/diag.h"
#include "sluice/kinds.h"
#include "sluice/resource.h"
#include "sluice/status.h"
#include "sluice/types.h"
#include "sluice/v1/events.pb-c.h"
#include "sluice/v1/upstream.pb-c.h"
#include "sluice/v1/virtual_service.pb-c.h"

extern const ProtobufCMessageDescriptor *const sl_api_descriptors[];
extern const size_t sl_api_descriptors_count;

/* --- the generated messages ------------------------------------------- */

/* A Gloo-style VirtualService built in C:
 *   virtualHost: {domains: [petstore.example.com],
 *     routes: [{matchers: [{prefix: /api}],
 *               routeAction: {single: {upstream: {name: petstore, namespace: gloo-system}}},
 *               options: {timeout: 10s, prefixRewrite: /,
 *                         retries: {retryOn: 5xx, numRetries: 3, perTryTimeout: 2s}}}]} */
static void virtual_service_round_trip(void **state)
{
    Sluice__V1__VirtualService vs = SLUICE__V1__VIRTUAL_SERVICE__INIT;
    Sluice__V1__Metadata md = SLUICE__V1__METADATA__INIT;
    Sluice__V1__Metadata__LabelsEntry label = SLUICE__V1__METADATA__LABELS_ENTRY__INIT;
    Sluice__V1__Metadata__LabelsEntry *labels[] = {&label};
    Sluice__V1__VirtualServiceSpec spec = SLUICE__V1__VIRTUAL_SERVICE_SPEC__INIT;
    Sluice__V1__VirtualHost vh = SLUICE__V1__VIRTUAL_HOST__INIT;
    char *domains[] = {"petstore.example.com"};
    Sluice__V1__Route route = SLUICE__V1__ROUTE__INIT;
    Sluice__V1__Route *routes[] = {&route};
    Sluice__V1__Matcher m = SLUICE__V1__MATCHER__INIT;
    Sluice__V1__Matcher *matchers[] = {&m};
    Sluice__V1__RouteAction ra = SLUICE__V1__ROUTE_ACTION__INIT;
    Sluice__V1__Destination dest = SLUICE__V1__DESTINATION__INIT;
    Sluice__V1__ResourceRef up = SLUICE__V1__RESOURCE_REF__INIT;
    Sluice__V1__RouteOptions opts = SLUICE__V1__ROUTE_OPTIONS__INIT;
    Google__Protobuf__Duration timeout = GOOGLE__PROTOBUF__DURATION__INIT;
    Google__Protobuf__Duration per_try = GOOGLE__PROTOBUF__DURATION__INIT;
    Google__Protobuf__StringValue rewrite = GOOGLE__PROTOBUF__STRING_VALUE__INIT;
    Sluice__V1__RetryPolicy retries = SLUICE__V1__RETRY_POLICY__INIT;
    Sluice__V1__VirtualService *back;
    uint8_t *buf;
    size_t len;

    md.name = "petstore";
    md.namespace_ = "default";
    label.key = "team";
    label.value = "pets";
    md.n_labels = 1;
    md.labels = labels;
    m.path_specifier_case = SLUICE__V1__MATCHER__PATH_SPECIFIER_PREFIX;
    m.prefix = "/api";
    up.name = "petstore";
    up.namespace_ = "gloo-system";
    dest.destination_type_case = SLUICE__V1__DESTINATION__DESTINATION_TYPE_UPSTREAM;
    dest.upstream = &up;
    ra.destination_case = SLUICE__V1__ROUTE_ACTION__DESTINATION_SINGLE;
    ra.single = &dest;
    timeout.seconds = 10;
    per_try.seconds = 2;
    rewrite.value = "/";
    retries.retry_on = "5xx";
    retries.num_retries = 3;
    retries.per_try_timeout = &per_try;
    opts.timeout = &timeout;
    opts.prefix_rewrite = &rewrite;
    opts.retries = &retries;
    route.n_matchers = 1;
    route.matchers = matchers;
    route.action_case = SLUICE__V1__ROUTE__ACTION_ROUTE_ACTION;
    route.route_action = &ra;
    route.options = &opts;
    vh.n_domains = 1;
    vh.domains = domains;
    vh.n_routes = 1;
    vh.routes = routes;
    spec.virtual_host = &vh;
    vs.metadata = &md;
    vs.spec = &spec;

    len = protobuf_c_message_get_packed_size(&vs.base);
    buf = malloc(len);
    assert_non_null(buf);
    assert_int_equal(protobuf_c_message_pack(&vs.base, buf), len);
    back = sluice__v1__virtual_service__unpack(NULL, len, buf);
    free(buf);
    assert_non_null(back);

    assert_string_equal(back->metadata->name, "petstore");
    assert_string_equal(back->metadata->namespace_, "default");
    assert_int_equal(back->metadata->n_labels, 1);
    assert_string_equal(back->metadata->labels[0]->value, "pets");
    assert_int_equal(back->spec->virtual_host->n_domains, 1);
    assert_string_equal(back->spec->virtual_host->domains[0], "petstore.example.com");
    assert_int_equal(back->spec->virtual_host->n_routes, 1);
    {
        const Sluice__V1__Route *r = back->spec->virtual_host->routes[0];
        assert_int_equal(r->matchers[0]->path_specifier_case,
                         SLUICE__V1__MATCHER__PATH_SPECIFIER_PREFIX);
        assert_string_equal(r->matchers[0]->prefix, "/api");
        assert_int_equal(r->action_case, SLUICE__V1__ROUTE__ACTION_ROUTE_ACTION);
        assert_int_equal(r->route_action->destination_case,
                         SLUICE__V1__ROUTE_ACTION__DESTINATION_SINGLE);
        assert_string_equal(r->route_action->single->upstream->name, "petstore");
        assert_string_equal(r->route_action->single->upstream->namespace_, "gloo-system");
        assert_int_equal(r->options->timeout->seconds, 10);
        assert_string_equal(r->options->prefix_rewrite->value, "/");
        assert_string_equal(r->options->retries->retry_on, "5xx");
        assert_int_equal(r->options->retries->num_retries, 3);
        assert_int_equal(r->options->retries->per_try_timeout->seconds, 2);
    }
    assert_null(back->status);

    /* The kind helpers see the same fields. */
    assert_ptr_equal(sl_kind_metadata(&back->base), back->metadata);
    assert_ptr_equal(sl_kind_spec(&back->base), &back->spec->base);
    assert_null(sl_kind_status(&back->base));
    assert_null(sl_kind_metadata(&back->spec->base)); /* a spec is not a resource */
    assert_null(sl_kind_metadata(NULL));
    sluice__v1__virtual_service__free_unpacked(back, NULL);
}

/* Labels and annotations by key, from a message or none. */
static void metadata_labels_and_annotations(void **state)
{
    Sluice__V1__Metadata md = SLUICE__V1__METADATA__INIT;
    Sluice__V1__Metadata__LabelsEntry l1 = SLUICE__V1__METADATA__LABELS_ENTRY__INIT,
                                      l2 = SLUICE__V1__METADATA__LABELS_ENTRY__INIT;
    Sluice__V1__Metadata__AnnotationsEntry a1 = SLUICE__V1__METADATA__ANNOTATIONS_ENTRY__INIT,
                                           a2 = SLUICE__V1__METADATA__ANNOTATIONS_ENTRY__INIT;
    Sluice__V1__Metadata__LabelsEntry *labels[] = {&l1, &l2};
    Sluice__V1__Metadata__AnnotationsEntry *annotations[] = {&a1, &a2};
    l1.key = "app";
    l1.value = "pets";
    l2.key = NULL; /* built by hand: skipped, not a crash */
    a1.key = "sluice.io/source";
    a1.value = "file:a.yaml";
    a2.key = "app";
    a2.value = "annotated";
    md.labels = labels;
    md.n_labels = 2;
    md.annotations = annotations;
    md.n_annotations = 2;

    assert_string_equal(sl_kind_label(&md, "app"), "pets");
    assert_null(sl_kind_label(&md, "sluice.io/source"));
    assert_string_equal(sl_kind_annotation(&md, "sluice.io/source"), "file:a.yaml");
    assert_string_equal(sl_kind_annotation(&md, "app"), "annotated");
    assert_null(sl_kind_annotation(&md, "missing"));
    assert_null(sl_kind_label(NULL, "app"));
    assert_null(sl_kind_annotation(NULL, "app"));
}

/* Gloo's upstream type "static" is a C keyword: protoc-c names the member
 * static_ and keeps "static" in the descriptor, which is what YAML uses. */
static void keyword_fields_keep_their_names(void **state)
{
    Sluice__V1__UpstreamSpec spec = SLUICE__V1__UPSTREAM_SPEC__INIT;
    Sluice__V1__StaticUpstreamSpec st = SLUICE__V1__STATIC_UPSTREAM_SPEC__INIT;
    const ProtobufCFieldDescriptor *f;

    spec.upstream_type_case = SLUICE__V1__UPSTREAM_SPEC__UPSTREAM_TYPE_STATIC;
    spec.static_ = &st;
    f = protobuf_c_message_descriptor_get_field_by_name(&sluice__v1__upstream_spec__descriptor,
                                                        "static");
    assert_non_null(f);
    assert_int_equal(f->offset, offsetof(Sluice__V1__UpstreamSpec, static_));
    assert_true(f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF);
    assert_int_equal(f->quantifier_offset, offsetof(Sluice__V1__UpstreamSpec, upstream_type_case));
    assert_int_equal(spec.upstream_type_case, f->id);
    assert_ptr_equal(spec.static_, &st);
    f = protobuf_c_message_descriptor_get_field_by_name(&sluice__v1__resource_ref__descriptor,
                                                        "namespace");
    assert_non_null(f);
    assert_int_equal(f->offset, offsetof(Sluice__V1__ResourceRef, namespace_));
}

/* protoc's json_name rule, as the codec applies it. */
static void json_name(char *out, size_t n, const char *name)
{
    size_t j = 0;
    int up = 0;

    for (const char *c = name; *c && j + 1 < n; c++) {
        if (*c == '_') {
            up = 1;
            continue;
        }
        out[j++] = up && *c >= 'a' && *c <= 'z' ? (char)(*c - 'a' + 'A') : *c;
        up = 0;
    }
    out[j] = '\0';
}

/* No message has two fields that read the same in YAML (either spelling),
 * and the registry finds every Sluice message by name. */
static void field_names_are_unambiguous(void **state)
{
    assert_true(sl_api_descriptors_count > 50);
    for (size_t i = 0; i < sl_api_descriptors_count; i++) {
        const ProtobufCMessageDescriptor *d = sl_api_descriptors[i];
        assert_ptr_equal(sl_types_find(d->name), d);
        for (unsigned a = 0; a < d->n_fields; a++) {
            char ja[128], jb[128];
            json_name(ja, sizeof(ja), d->fields[a].name);
            for (unsigned b = 0; b < d->n_fields; b++) {
                if (a == b)
                    continue;
                json_name(jb, sizeof(jb), d->fields[b].name);
                if (strcmp(ja, jb) == 0 || strcmp(ja, d->fields[b].name) == 0)
                    fail_msg("%s: fields %s and %s collide", d->name, d->fields[a].name,
                             d->fields[b].name);
            }
        }
    }
    assert_non_null(sl_types_find_url("type.googleapis.com/sluice.v1.VirtualService"));
    assert_non_null(sl_types_find("sluice.v1.Report"));
    assert_non_null(sl_types_find("sluice.v1.ApplyRequest"));
}

static void report_round_trip(void **state)
{
    Sluice__V1__Report r = SLUICE__V1__REPORT__INIT;
    Sluice__V1__ObjectRef ref = SLUICE__V1__OBJECT_REF__INIT;
    Sluice__V1__Report *back;
    uint8_t buf[256];
    size_t len;

    ref.kind = "VirtualService";
    ref.namespace_ = "default";
    ref.name = "petstore";
    r.resource = &ref;
    r.source = "xds-server";
    r.state = SLUICE__V1__STATUS__STATE__Rejected;
    r.reason = "route has no cluster";
    r.node_id = "envoy-1";
    len = protobuf_c_message_get_packed_size(&r.base);
    assert_true(len < sizeof(buf));
    protobuf_c_message_pack(&r.base, buf);
    back = sluice__v1__report__unpack(NULL, len, buf);
    assert_non_null(back);
    assert_string_equal(back->resource->kind, "VirtualService");
    assert_int_equal(back->state, SLUICE__V1__STATUS__STATE__Rejected);
    assert_string_equal(back->node_id, "envoy-1");
    sluice__v1__report__free_unpacked(back, NULL);
}

/* --- the kind table ---------------------------------------------------- */

static void kind_table(void **state)
{
    static const struct {
        const char *api_version, *kind, *message, *bucket;
    } want[] = {
        {"gateway.solo.io/v1", "Gateway", "sluice.v1.Gateway", "sluice_config"},
        {"gateway.solo.io/v1", "VirtualService", "sluice.v1.VirtualService", "sluice_config"},
        {"gateway.solo.io/v1", "RouteTable", "sluice.v1.RouteTable", "sluice_config"},
        {"gateway.solo.io/v1", "MatchableHttpGateway", "sluice.v1.MatchableHttpGateway", "sluice_config"},
        {"gateway.solo.io/v1", "MatchableTcpGateway", "sluice.v1.MatchableTcpGateway", "sluice_config"},
        {"gloo.solo.io/v1", "Upstream", "sluice.v1.Upstream", "sluice_config"},
        {"gloo.solo.io/v1", "UpstreamGroup", "sluice.v1.UpstreamGroup", "sluice_config"},
        {"gloo.solo.io/v1", "Settings", "sluice.v1.Settings", "sluice_config"},
        {"gloo.solo.io/v1", "Secret", "sluice.v1.Secret", "sluice_secrets"},
        {"sluice.io/v1", "EndpointSet", "sluice.v1.EndpointSet", "sluice_endpoints"},
    };

    assert_int_equal(sl_kind_count(), sizeof(want) / sizeof(want[0]));
    assert_null(sl_kind_at(sl_kind_count()));
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        const sl_kind *k = sl_kind_find(want[i].api_version, want[i].kind);
        const ProtobufCFieldDescriptor *f;
        assert_non_null(k);
        assert_ptr_equal(k, sl_kind_at(i));
        assert_ptr_equal(k, sl_kind_by_name(want[i].kind));
        assert_string_equal(k->descriptor->name, want[i].message);
        assert_string_equal(k->bucket, want[i].bucket);
        assert_true(k->namespaced);
        assert_ptr_equal(sl_kind_by_descriptor(k->descriptor), k);
        assert_ptr_equal(sl_kind_by_descriptor(k->spec_descriptor), k);
        assert_ptr_equal(sl_kind_lookup(k->short_name), k);
        assert_ptr_equal(sl_kind_lookup(k->plural), k);
        /* Every resource is { metadata = 1; spec = 2; status = 3 }. */
        f = protobuf_c_message_descriptor_get_field(k->descriptor, SL_KIND_FIELD_METADATA);
        assert_non_null(f);
        assert_string_equal(f->name, "metadata");
        assert_ptr_equal(f->descriptor, &sluice__v1__metadata__descriptor);
        f = protobuf_c_message_descriptor_get_field(k->descriptor, SL_KIND_FIELD_SPEC);
        assert_non_null(f);
        assert_string_equal(f->name, "spec");
        assert_ptr_equal(f->descriptor, k->spec_descriptor);
        f = protobuf_c_message_descriptor_get_field(k->descriptor, SL_KIND_FIELD_STATUS);
        assert_non_null(f);
        assert_string_equal(f->name, "status");
        assert_ptr_equal(f->descriptor, &sluice__v1__status__descriptor);
        assert_int_equal(k->descriptor->n_fields, 3);
        /* Its key prefix is its kind, or nothing. */
        if (k->key_prefix)
            assert_string_equal(k->key_prefix, k->kind);
    }
    assert_null(sl_kind_find("gloo.solo.io/v1", "VirtualService"));
    assert_null(sl_kind_find("gateway.solo.io/v1", "virtualservice"));
    assert_null(sl_kind_find(NULL, "VirtualService"));
    assert_null(sl_kind_by_name("Proxy"));
    assert_null(sl_kind_by_name(NULL));
    assert_ptr_equal(sl_kind_lookup("VIRTUALSERVICE"), sl_kind_by_name("VirtualService"));
    assert_ptr_equal(sl_kind_lookup("us"), sl_kind_by_name("Upstream"));
    assert_null(sl_kind_lookup("nope"));
    assert_null(sl_kind_by_descriptor(&sluice__v1__route__descriptor));
}

static void kind_resolve_explains(void **state)
{
    const sl_kind *k = (const sl_kind *)1;

    assert_int_equal(sl_kind_resolve(&k, "gateway.solo.io/v1", "VirtualService"), SL_OK);
    assert_string_equal(k->kind, "VirtualService");

    assert_int_equal(sl_kind_resolve(&k, "gateway.solo.io/v1", "VirtualServce"), SL_ERR_NOT_FOUND);
    assert_null(k);
    assert_string_equal(sl_error_msg(), "unknown kind \"VirtualServce\"; did you mean \"VirtualService\"?");

    assert_int_equal(sl_kind_resolve(&k, "gateway.solo.io/v1", "Proxy"), SL_ERR_NOT_FOUND);
    assert_non_null(strstr(sl_error_msg(), "known kinds: Gateway, VirtualService"));

    assert_int_equal(sl_kind_resolve(&k, "gloo.solo.io/v1", "VirtualService"), SL_ERR_INVALID);
    assert_string_equal(sl_error_msg(),
                        "kind VirtualService has apiVersion gateway.solo.io/v1, not gloo.solo.io/v1");

    assert_int_equal(sl_kind_resolve(&k, NULL, "Upstream"), SL_ERR_INVALID);
    assert_string_equal(sl_error_msg(),
                        "the Upstream document has no apiVersion (expected gloo.solo.io/v1)");
    assert_int_equal(sl_kind_resolve(&k, "gloo.solo.io/v1", ""), SL_ERR_INVALID);
    assert_string_equal(sl_error_msg(), "the document has no kind");
}

static void kind_keys(void **state)
{
    char key[SL_RESOURCE_KEY_MAX];

    assert_int_equal(sl_kind_key(key, sizeof(key), sl_kind_by_name("VirtualService"), "default",
                                 "petstore"),
                     SL_OK);
    assert_string_equal(key, "VirtualService.default.petstore");
    assert_int_equal(sl_kind_key(key, sizeof(key), sl_kind_by_name("Secret"), "gloo-system", "tls"),
                     SL_OK);
    assert_string_equal(key, "Secret.gloo-system.tls");
    /* Endpoint sets: <namespace>.<upstream>. */
    assert_int_equal(sl_kind_key(key, sizeof(key), sl_kind_by_name("EndpointSet"), "gloo-system",
                                 "petstore"),
                     SL_OK);
    assert_string_equal(key, "gloo-system.petstore");
    assert_int_equal(sl_kind_key(key, sizeof(key), NULL, "default", "x"), SL_ERR_INVALID);
    assert_string_equal(key, "");
    assert_int_equal(sl_kind_key(key, sizeof(key), sl_kind_by_name("Upstream"), "default", "a.b"),
                     SL_ERR_INVALID);
}

/* --- Gloo-style documents ---------------------------------------------- */

static char *slurp(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    char *p;
    long n;

    assert_non_null(fp);
    assert_int_equal(fseek(fp, 0, SEEK_END), 0);
    n = ftell(fp);
    assert_true(n >= 0);
    rewind(fp);
    p = malloc((size_t)n + 1);
    assert_non_null(p);
    assert_int_equal(fread(p, 1, (size_t)n, fp), (size_t)n);
    p[n] = '\0';
    fclose(fp);
    *len = (size_t)n;
    return p;
}

/* Decodes one YAML file of Sluice documents the way the config layer does
 * (kind table, then the codec); returns the number of documents. */
static size_t decode_file(const char *path)
{
    static const char *const skip[] = {"apiVersion", "kind", NULL};
    sl_codec_options opts = {0};
    sl_codec_stream *st = NULL;
    sl_codec_doc *doc = NULL;
    sl_diag diag;
    size_t len, n = 0;
    char *text = slurp(path, &len);

    opts.resolver = sl_types_find_url;
    opts.ignore_keys = skip;
    sl_diag_init(&diag);
    assert_int_equal(sl_codec_stream_new(&st, text, len, path), SL_OK);
    while (sl_codec_stream_next(st, &doc, &diag) == SL_OK && doc) {
        const sl_kind *k = NULL;
        ProtobufCMessage *msg = NULL;
        const Sluice__V1__Metadata *md;
        char key[SL_RESOURCE_KEY_MAX];

        if (sl_codec_doc_empty(doc)) {
            sl_codec_doc_free(doc);
            continue;
        }
        if (sl_kind_resolve(&k, sl_codec_doc_scalar(doc, "apiVersion"),
                            sl_codec_doc_scalar(doc, "kind")) != SL_OK)
            fail_msg("%s:%u: %s", path, sl_codec_doc_line(doc), sl_error_msg());
        opts.root_name = k->kind;
        if (sl_codec_decode_doc(&msg, k->descriptor, doc, &opts, &diag) != SL_OK) {
            char line[1024];
            for (size_t i = 0; i < sl_diag_count(&diag); i++) {
                sl_diag_format(line, sizeof(line), sl_diag_get(&diag, i));
                print_error("%s\n", line);
            }
            fail_msg("%s:%u: %s does not decode", path, sl_codec_doc_line(doc), k->kind);
        }
        if (sl_diag_count(&diag) != 0)
            fail_msg("%s:%u: warnings decoding %s", path, sl_codec_doc_line(doc), k->kind);
        md = sl_kind_metadata(msg);
        assert_non_null(md);
        assert_non_null(sl_kind_spec(msg));
        assert_int_equal(sl_kind_key(key, sizeof(key), k, md->namespace_, md->name), SL_OK);
        protobuf_c_message_free_unpacked(msg, NULL);
        sl_codec_doc_free(doc);
        n++;
    }
    assert_int_equal(sl_diag_errors(&diag), 0);
    sl_codec_stream_free(st);
    sl_diag_deinit(&diag);
    free(text);
    return n;
}

/* The Gloo-style examples that pass the JSON Schemas decode without a
 * warning into the messages, so protos, schemas and codec agree. */
static void gloo_documents_decode(void **state)
{
    const char *src = getenv("SLUICE_SOURCE_DIR");
    char dir[2048], path[2400];
    DIR *dp;
    struct dirent *de;
    size_t docs = 0;

    snprintf(dir, sizeof(dir), "%s/test/data/api/valid", src ? src : ".");
    dp = opendir(dir);
    assert_non_null(dp);
    while ((de = readdir(dp))) {
        size_t n = strlen(de->d_name);
        if (n < 5 || strcmp(de->d_name + n - 5, ".yaml") != 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        docs += decode_file(path);
    }
    closedir(dp);
    assert_true(docs >= 10);
}

/* A decoded VirtualService keeps Gloo's nesting. */
static void gloo_yaml_reads_as_expected(void **state)
{
    static const char doc[] =
        "metadata: {name: vs, namespace: default}\n"
        "spec:\n"
        "  virtualHost:\n"
        "    domains: ['*']\n"
        "    routes:\n"
        "    - matchers: [{prefix: /}]\n"
        "      routeAction: {single: {upstream: {name: petstore, namespace: gloo-system},\n"
        "                             destinationSpec: {rest: {functionName: findPetById}}}}\n"
        "      options: {timeout: 1.5s, retries: {retryOn: 5xx, numRetries: 2}}\n"
        "  sslConfig: {secretRef: {name: tls}}\n";
    Sluice__V1__VirtualService *vs = NULL;
    const Sluice__V1__Route *r;

    assert_int_equal(sl_codec_decode_yaml((ProtobufCMessage **)&vs,
                                          &sluice__v1__virtual_service__descriptor, doc,
                                          sizeof(doc) - 1, NULL, NULL),
                     SL_OK);
    r = vs->spec->virtual_host->routes[0];
    assert_string_equal(vs->spec->virtual_host->domains[0], "*");
    assert_string_equal(r->matchers[0]->prefix, "/");
    assert_string_equal(r->route_action->single->upstream->name, "petstore");
    assert_int_equal(r->route_action->single->destination_spec->destination_type_case,
                     SLUICE__V1__DESTINATION_SPEC__DESTINATION_TYPE_REST);
    assert_string_equal(r->route_action->single->destination_spec->rest->function_name,
                        "findPetById");
    assert_int_equal(r->options->timeout->seconds, 1);
    assert_int_equal(r->options->timeout->nanos, 500000000);
    assert_int_equal(r->options->retries->num_retries, 2);
    assert_string_equal(vs->spec->ssl_config->secret_ref->name, "tls");
    protobuf_c_message_free_unpacked(&vs->base, NULL);
}

/* --- names, keys and subjects ----------------------------------------- */

static void valid_names(void **state)
{
    char longest[SL_RESOURCE_NAME_MAX + 1];

    memset(longest, 'a', SL_RESOURCE_NAME_MAX);
    longest[SL_RESOURCE_NAME_MAX] = '\0';
    assert_int_equal(sl_resource_check_name("petstore"), SL_OK);
    assert_int_equal(sl_resource_check_name("a"), SL_OK);
    assert_int_equal(sl_resource_check_name("0"), SL_OK);
    assert_int_equal(sl_resource_check_name("default-petstore-8080"), SL_OK);
    assert_int_equal(sl_resource_check_name(longest), SL_OK);
    assert_int_equal(sl_resource_check_namespace("gloo-system"), SL_OK);
    assert_int_equal(sl_resource_check_kind("VirtualService"), SL_OK);
    assert_int_equal(sl_resource_check_kind("V1Thing"), SL_OK);
}

static void invalid_names_name_the_character(void **state)
{
    static const struct {
        const char *name, *msg;
    } cases[] = {
        {"my.vs", "invalid name \"my.vs\": '.' at offset 2 is not allowed ('.' separates the "
                  "tokens of keys and subjects); a name is lowercase letters, digits and '-', "
                  "starting and ending with a letter or digit"},
        {"a*", "invalid name \"a*\": '*' at offset 1 is not allowed (a NATS wildcard)"},
        {"a>b", "invalid name \"a>b\": '>' at offset 1 is not allowed (a NATS wildcard)"},
        {"pet store", "invalid name \"pet store\": a space at offset 3 is not allowed (whitespace)"},
        {"pet\tstore", "a tab at offset 3 is not allowed (whitespace)"},
        {"pet\nstore", "a line break at offset 3 is not allowed (whitespace)"},
        {"PetStore", "invalid name \"PetStore\": 'P' at offset 0 is not allowed (uppercase)"},
        {"pet_store", "'_' at offset 3 is not allowed ('_' separates the parts of Envoy names)"},
        {"caf\xc3\xa9", "byte 0xc3 at offset 3 is not allowed"},
        {"-pet", "invalid name \"-pet\": '-' at offset 0 is not allowed; a name starts and ends "
                 "with a letter or digit"},
        {"pet-", "'-' at offset 3 is not allowed"},
        {"", "name is empty"},
    };
    char toolong[SL_RESOURCE_NAME_MAX + 2];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        sl_error_clear();
        assert_int_equal(sl_resource_check_name(cases[i].name), SL_ERR_INVALID);
        if (!strstr(sl_error_msg(), cases[i].msg))
            fail_msg("name \"%s\": got \"%s\", want \"%s\"", cases[i].name, sl_error_msg(),
                     cases[i].msg);
    }
    assert_int_equal(sl_resource_check_name(NULL), SL_ERR_INVALID);
    assert_string_equal(sl_error_msg(), "name is missing");

    memset(toolong, 'a', sizeof(toolong) - 1);
    toolong[sizeof(toolong) - 1] = '\0';
    assert_int_equal(sl_resource_check_name(toolong), SL_ERR_INVALID);
    assert_non_null(strstr(sl_error_msg(), "254 characters long, at most 253"));
    toolong[64] = '\0';
    assert_int_equal(sl_resource_check_namespace(toolong), SL_ERR_INVALID);
    assert_non_null(strstr(sl_error_msg(), "invalid namespace"));
    assert_non_null(strstr(sl_error_msg(), "64 characters long, at most 63"));
    assert_int_equal(sl_resource_check_namespace("kube.system"), SL_ERR_INVALID);
    assert_non_null(strstr(sl_error_msg(), "a namespace is lowercase letters"));

    assert_int_equal(sl_resource_check_kind("Virtual.Service"), SL_ERR_INVALID);
    assert_non_null(strstr(sl_error_msg(), "'.' at offset 7"));
    assert_int_equal(sl_resource_check_kind("1Kind"), SL_ERR_INVALID);
    assert_int_equal(sl_resource_check_kind(""), SL_ERR_INVALID);
}

static void keys(void **state)
{
    char key[SL_RESOURCE_KEY_MAX];
    char small[8];
    sl_resource_id id;

    assert_int_equal(sl_resource_key(key, sizeof(key), "Upstream", "gloo-system", "petstore"), SL_OK);
    assert_string_equal(key, "Upstream.gloo-system.petstore");
    assert_int_equal(sl_resource_key(key, sizeof(key), NULL, "gloo-system", "petstore"), SL_OK);
    assert_string_equal(key, "gloo-system.petstore");

    assert_int_equal(sl_resource_key(key, sizeof(key), "Upstream", "gloo-system", "pet.store"),
                     SL_ERR_INVALID);
    assert_string_equal(key, "");
    assert_non_null(strstr(sl_error_msg(), "invalid name \"pet.store\""));
    assert_int_equal(sl_resource_key(key, sizeof(key), "Upstream", "Gloo", "petstore"),
                     SL_ERR_INVALID);
    assert_non_null(strstr(sl_error_msg(), "invalid namespace \"Gloo\""));
    assert_int_equal(sl_resource_key(key, sizeof(key), "Up>stream", "gloo", "petstore"),
                     SL_ERR_INVALID);
    assert_non_null(strstr(sl_error_msg(), "invalid kind"));
    assert_int_equal(sl_resource_key(small, sizeof(small), "Upstream", "gloo", "petstore"),
                     SL_ERR_INVALID);
    assert_string_equal(small, "");
    assert_non_null(strstr(sl_error_msg(), "too small"));

    assert_int_equal(sl_resource_key_parse(&id, "VirtualService.default.petstore", 1), SL_OK);
    assert_string_equal(id.kind, "VirtualService");
    assert_string_equal(id.ns, "default");
    assert_string_equal(id.name, "petstore");
    assert_int_equal(sl_resource_key_parse(&id, "gloo-system.petstore", 0), SL_OK);
    assert_string_equal(id.kind, "");
    assert_string_equal(id.ns, "gloo-system");
    assert_string_equal(id.name, "petstore");

    assert_int_equal(sl_resource_key_parse(&id, "default.petstore", 1), SL_ERR_INVALID);
    assert_string_equal(sl_error_msg(), "invalid key \"default.petstore\": expected "
                                        "<kind>.<namespace>.<name>, got 2 tokens");
    assert_string_equal(id.ns, "");
    assert_int_equal(sl_resource_key_parse(&id, "VirtualService..petstore", 1), SL_ERR_INVALID);
    assert_non_null(strstr(sl_error_msg(), "namespace is empty"));
    assert_int_equal(sl_resource_key_parse(&id, "VirtualService.default.Pet", 1), SL_ERR_INVALID);
    assert_non_null(strstr(sl_error_msg(), "invalid key \"VirtualService.default.Pet\": invalid name"));
    assert_int_equal(sl_resource_key_parse(&id, "x", 0), SL_ERR_INVALID);
    assert_non_null(strstr(sl_error_msg(), "got 1 token"));
    assert_int_equal(sl_resource_key_parse(&id, NULL, 0), SL_ERR_INVALID);
    {
        char longkey[400];
        memset(longkey, 'a', sizeof(longkey) - 1);
        longkey[sizeof(longkey) - 1] = '\0';
        longkey[3] = '.';
        longkey[10] = '.';
        assert_int_equal(sl_resource_key_parse(&id, longkey, 1), SL_ERR_INVALID);
        assert_non_null(strstr(sl_error_msg(), "the name is too long"));
    }
}

static void subjects(void **state)
{
    char subj[128];

    assert_int_equal(sl_resource_subject(subj, sizeof(subj), "sluice.status", "VirtualService",
                                         "default", "petstore"),
                     SL_OK);
    assert_string_equal(subj, "sluice.status.VirtualService.default.petstore");
    assert_int_equal(sl_resource_subject(subj, sizeof(subj), "sluice.report.xds-server",
                                         "Upstream", "gloo-system", "petstore"),
                     SL_OK);
    assert_string_equal(subj, "sluice.report.xds-server.Upstream.gloo-system.petstore");

    assert_int_equal(sl_resource_subject(subj, sizeof(subj), "sluice.*", "Upstream", "a", "b"),
                     SL_ERR_INVALID);
    assert_non_null(strstr(sl_error_msg(), "'*' at offset 7"));
    assert_int_equal(sl_resource_subject(subj, sizeof(subj), "sluice..status", "Upstream", "a",
                                         "b"),
                     SL_ERR_INVALID);
    assert_non_null(strstr(sl_error_msg(), "empty token"));
    assert_int_equal(sl_resource_subject(subj, sizeof(subj), "sluice.", "Upstream", "a", "b"),
                     SL_ERR_INVALID);
    assert_int_equal(sl_resource_subject(subj, sizeof(subj), "", "Upstream", "a", "b"),
                     SL_ERR_INVALID);
    assert_int_equal(sl_resource_subject(subj, sizeof(subj), "sluice status", "Upstream", "a",
                                         "b"),
                     SL_ERR_INVALID);
    assert_int_equal(sl_resource_subject(subj, sizeof(subj), "sluice.status", NULL, "a", "b"),
                     SL_ERR_INVALID);
    assert_int_equal(sl_resource_subject(subj, sizeof(subj), "sluice.status", "Upstream", "a",
                                         "b>"),
                     SL_ERR_INVALID);
    assert_string_equal(subj, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(virtual_service_round_trip),
        cmocka_unit_test(metadata_labels_and_annotations),
        cmocka_unit_test(keyword_fields_keep_their_names),
        cmocka_unit_test(field_names_are_unambiguous),
        cmocka_unit_test(report_round_trip),
        cmocka_unit_test(kind_table),
        cmocka_unit_test(kind_resolve_explains),
        cmocka_unit_test(kind_keys),
        cmocka_unit_test(gloo_documents_decode),
        cmocka_unit_test(gloo_yaml_reads_as_expected),
        cmocka_unit_test(valid_names),
        cmocka_unit_test(invalid_names_name_the_character),
        cmocka_unit_test(keys),
        cmocka_unit_test(subjects),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
