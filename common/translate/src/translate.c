/* translate.c - the translation core: Gateways -> Listeners and
 * RouteConfigurations, VirtualServices and RouteTables -> virtual hosts and
 * routes, Upstreams -> Clusters and ClusterLoadAssignments, with the
 * plugins' hooks at each step, validation, reports and the last good
 * version of every rejected resource. docs/translator.md is the map. */
#include <arpa/inet.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "envoy/extensions/filters/http/router/v3/router.pb-c.h"
#include "envoy/extensions/filters/listener/tls_inspector/v3/tls_inspector.pb-c.h"
#include "envoy/extensions/transport_sockets/tls/v3/tls.pb-c.h"
#include "sluice/codec.h"

#define DEFAULT_SETTINGS_NS "gloo-system"
#define DEFAULT_PROXY "gateway-proxy"
#define INVALID_ROUTE_BODY \
    "Gloo Gateway has invalid configuration. Administrators should run `glooctl check` to find and fix config errors."

static const sl_kind *K_GATEWAY, *K_VS, *K_RT, *K_UPSTREAM, *K_UG, *K_SECRET, *K_SETTINGS, *K_EPS;

/* ------------------------------------------------------------------------ */
/* small helpers                                                            */

/* Store indices of the kinds above, filled by init_kinds(): kidx() is in
 * every flag() and bucket(), so it compares pointers, not names. */
static struct {
    const sl_kind *k;
    int idx;
} kind_idx[8];

static int kidx(const sl_kind *k)
{
    for (size_t i = 0; i < sizeof kind_idx / sizeof *kind_idx; i++)
        if (kind_idx[i].k == k)
            return kind_idx[i].idx;
    return tr_kind_index(k);
}

static tr_bucket *bucket(tr_ctx *tx, const sl_kind *k) { return &tx->store->b[kidx(k)]; }

static uint8_t *flag(tr_ctx *tx, const sl_kind *k, size_t i) { return &tx->flags[kidx(k)][i]; }

static const char *md_ns(const Sluice__V1__Metadata *md)
{
    return md && md->namespace_ && md->namespace_[0] ? md->namespace_ : "default";
}

static const char *label(const Sluice__V1__Metadata *md, const char *key)
{
    if (!md)
        return NULL;
    for (size_t i = 0; i < md->n_labels; i++)
        if (strcmp(md->labels[i]->key, key) == 0)
            return md->labels[i]->value;
    return NULL;
}

static const char *annotation(const Sluice__V1__Metadata *md, const char *key)
{
    if (!md)
        return NULL;
    for (size_t i = 0; i < md->n_annotations; i++)
        if (strcmp(md->annotations[i]->key, key) == 0)
            return md->annotations[i]->value;
    return NULL;
}

static bool expressions_match(const Sluice__V1__Metadata *md, Sluice__V1__LabelExpression *const *ex, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const char *v = label(md, ex[i]->key);
        const char *want = ex[i]->n_values ? ex[i]->values[0] : "";
        bool in = false;
        for (size_t j = 0; v && j < ex[i]->n_values; j++)
            if (strcmp(v, ex[i]->values[j]) == 0)
                in = true;
        switch (ex[i]->operator_) {
        case SLUICE__V1__LABEL_EXPRESSION__OPERATOR__Equals:
        case SLUICE__V1__LABEL_EXPRESSION__OPERATOR__DoubleEquals:
            if (!v || strcmp(v, want) != 0)
                return false;
            break;
        case SLUICE__V1__LABEL_EXPRESSION__OPERATOR__NotEquals:
            if (v && strcmp(v, want) == 0)
                return false;
            break;
        case SLUICE__V1__LABEL_EXPRESSION__OPERATOR__In:
            if (!in)
                return false;
            break;
        case SLUICE__V1__LABEL_EXPRESSION__OPERATOR__NotIn:
            if (in)
                return false;
            break;
        case SLUICE__V1__LABEL_EXPRESSION__OPERATOR__Exists:
            if (!v)
                return false;
            break;
        case SLUICE__V1__LABEL_EXPRESSION__OPERATOR__DoesNotExist:
            if (v)
                return false;
            break;
        case SLUICE__V1__LABEL_EXPRESSION__OPERATOR__GreaterThan:
            if (!v || atol(v) <= atol(want))
                return false;
            break;
        case SLUICE__V1__LABEL_EXPRESSION__OPERATOR__LessThan:
            if (!v || atol(v) >= atol(want))
                return false;
            break;
        default:
            return false;
        }
    }
    return true;
}

static bool labels_match(const Sluice__V1__Metadata *md, size_t n, void *const *entries)
{
    /* entries are map entries {key, value} of the same layout for every
     * map<string,string> field protobuf-c generates. */
    typedef struct {
        ProtobufCMessage base;
        char *key;
        char *value;
    } kv;
    for (size_t i = 0; i < n; i++) {
        const kv *e = entries[i];
        const char *v = label(md, e->key);
        if (!v || strcmp(v, e->value) != 0)
            return false;
    }
    return true;
}

static bool ns_selected(const char *ns, char *const *nss, size_t n, const char *def)
{
    if (n == 0)
        return def == NULL || strcmp(ns, def) == 0;
    for (size_t i = 0; i < n; i++)
        if (strcmp(nss[i], "*") == 0 || strcmp(nss[i], ns) == 0)
            return true;
    return false;
}

bool tr_check_regex(tr_ctx *tx, const char *what, const char *re, int *groups)
{
    const char *err = tr_re2_check(tx, re, groups);
    long size, max = 100;
    if (err) {
        tr_error(tx, "%s: invalid regex \"%s\": %s", what, re, err);
        return false;
    }
    if (tx->settings->gloo && tx->settings->gloo->regex_max_program_size)
        max = tx->settings->gloo->regex_max_program_size->value;
    size = tr_re2_program_size(re);
    if (size > max)
        tr_warn(tx, "%s: regex \"%s\" may compile to a program larger than %ld (estimated %ld); Envoy refuses those",
                what, re, max, size);
    return true;
}

/* ------------------------------------------------------------------------ */
/* unsupported fields                                                       */

static bool field_is_set(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
    const char *base = (const char *)m;
    if (f->label == PROTOBUF_C_LABEL_REPEATED)
        return *(const size_t *)(base + f->quantifier_offset) != 0;
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
        return *(const uint32_t *)(base + f->quantifier_offset) == f->id;
    switch (f->type) {
    case PROTOBUF_C_TYPE_MESSAGE:
        return *(void *const *)(base + f->offset) != NULL;
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)(base + f->offset);
        return s && s[0];
    }
    case PROTOBUF_C_TYPE_BYTES:
        return ((const ProtobufCBinaryData *)(base + f->offset))->len != 0;
    case PROTOBUF_C_TYPE_BOOL:
        return *(const protobuf_c_boolean *)(base + f->offset) != 0;
    case PROTOBUF_C_TYPE_INT64: case PROTOBUF_C_TYPE_UINT64: case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_FIXED64: case PROTOBUF_C_TYPE_SFIXED64: case PROTOBUF_C_TYPE_DOUBLE:
        return *(const uint64_t *)(base + f->offset) != 0;
    default:
        return *(const uint32_t *)(base + f->offset) != 0;
    }
}

/* Reports every set field of m that no plugin implements. */
static void check_fields(tr_ctx *tx, tr_map *supported, const ProtobufCMessage *m, const char *path)
{
    const ProtobufCMessageDescriptor *d;
    if (!m)
        return;
    d = m->descriptor;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        char key[256], json[128];
        if (!field_is_set(m, f))
            continue;
        snprintf(key, sizeof key, "%s.%s", d->short_name, f->name);
        if (tr_map_get(supported, key))
            continue;
        sl_codec_json_name(json, sizeof json, f->name);
        tr_error(tx, "%s.%s: not supported by Sluice (no plugin implements %s)", path, json, key);
    }
}

/* ------------------------------------------------------------------------ */
/* option inheritance: child fields win, unset ones come from the parent    */

static const ProtobufCMessage *merge_options(tr_ctx *tx, const ProtobufCMessage *parent,
                                             const ProtobufCMessage *child)
{
    const ProtobufCMessageDescriptor *d;
    char *out;
    if (!parent)
        return child;
    if (!child)
        return parent;
    d = child->descriptor;
    out = tr_alloc(tx, d->sizeof_message);
    memcpy(out, child, d->sizeof_message);
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            uint32_t *cc = (uint32_t *)(out + f->quantifier_offset);
            const uint32_t *pc = (const uint32_t *)((const char *)parent + f->quantifier_offset);
            if (*cc == 0 && *pc == f->id) {
                *cc = *pc;
                memcpy(out + f->offset, (const char *)parent + f->offset, sizeof(void *) > 8 ? 16 : 8);
            }
            continue;
        }
        if (field_is_set(child, f) || !field_is_set(parent, f))
            continue;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            memcpy(out + f->quantifier_offset, (const char *)parent + f->quantifier_offset, sizeof(size_t));
            memcpy(out + f->offset, (const char *)parent + f->offset, sizeof(void *));
        } else {
            size_t sz = f->type == PROTOBUF_C_TYPE_MESSAGE || f->type == PROTOBUF_C_TYPE_STRING ? sizeof(void *)
                        : f->type == PROTOBUF_C_TYPE_BYTES                                       ? sizeof(ProtobufCBinaryData)
                        : (f->type == PROTOBUF_C_TYPE_INT64 || f->type == PROTOBUF_C_TYPE_UINT64 ||
                           f->type == PROTOBUF_C_TYPE_DOUBLE || f->type == PROTOBUF_C_TYPE_SINT64 ||
                           f->type == PROTOBUF_C_TYPE_FIXED64 || f->type == PROTOBUF_C_TYPE_SFIXED64)
                            ? 8
                            : 4;
            memcpy(out + f->offset, (const char *)parent + f->offset, sz);
        }
    }
    return (const ProtobufCMessage *)out;
}

/* ------------------------------------------------------------------------ */
/* matchers                                                                 */

static Envoy__Type__Matcher__V3__StringMatcher *string_matcher(tr_ctx *tx, const char *value, bool regex)
{
    Envoy__Type__Matcher__V3__StringMatcher *sm = TR_NEW(tx, envoy__type__matcher__v3__string_matcher);
    if (regex) {
        sm->match_pattern_case = ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_SAFE_REGEX;
        sm->safe_regex = tr_regex(tx, value);
    } else {
        sm->match_pattern_case = ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_EXACT;
        sm->exact = tr_strdup(tx, value);
    }
    return sm;
}

static void add_header_matchers(tr_ctx *tx, Envoy__Config__Route__V3__RouteMatch *rm, const Sluice__V1__Matcher *m,
                                const char *path)
{
    for (size_t i = 0; i < m->n_headers; i++) {
        const Sluice__V1__HeaderMatcher *h = m->headers[i];
        Envoy__Config__Route__V3__HeaderMatcher *hm = TR_NEW(tx, envoy__config__route__v3__header_matcher);
        const char *err = tr_check_header_name(h->name, true);
        if (err) {
            tr_error(tx, "%s.headers[%zu].name: %s", path, i, err);
            continue;
        }
        hm->name = tr_strdup(tx, h->name);
        hm->invert_match = h->invert_match;
        if (!h->value || !h->value[0]) {
            if (h->regex)
                tr_error(tx, "%s.headers[%zu]: regex needs a value", path, i);
            hm->header_match_specifier_case = ENVOY__CONFIG__ROUTE__V3__HEADER_MATCHER__HEADER_MATCH_SPECIFIER_PRESENT_MATCH;
            hm->present_match = 1;
        } else {
            if (h->regex &&
                !tr_check_regex(tx, tr_printf(tx, "%s.headers[%zu].value", path, i), h->value, NULL))
                continue;
            hm->header_match_specifier_case = ENVOY__CONFIG__ROUTE__V3__HEADER_MATCHER__HEADER_MATCH_SPECIFIER_STRING_MATCH;
            hm->string_match = string_matcher(tx, h->value, h->regex);
        }
        TR_PUSH(tx, rm, headers, hm);
    }
    for (size_t i = 0; i < m->n_query_parameters; i++) {
        const Sluice__V1__QueryParameterMatcher *q = m->query_parameters[i];
        Envoy__Config__Route__V3__QueryParameterMatcher *qm = TR_NEW(tx, envoy__config__route__v3__query_parameter_matcher);
        if (!q->name || !q->name[0]) {
            tr_error(tx, "%s.queryParameters[%zu].name: required", path, i);
            continue;
        }
        qm->name = tr_strdup(tx, q->name);
        if (!q->value || !q->value[0]) {
            qm->query_parameter_match_specifier_case =
                ENVOY__CONFIG__ROUTE__V3__QUERY_PARAMETER_MATCHER__QUERY_PARAMETER_MATCH_SPECIFIER_PRESENT_MATCH;
            qm->present_match = 1;
        } else {
            if (q->regex &&
                !tr_check_regex(tx, tr_printf(tx, "%s.queryParameters[%zu].value", path, i), q->value, NULL))
                continue;
            qm->query_parameter_match_specifier_case =
                ENVOY__CONFIG__ROUTE__V3__QUERY_PARAMETER_MATCHER__QUERY_PARAMETER_MATCH_SPECIFIER_STRING_MATCH;
            qm->string_match = string_matcher(tx, q->value, q->regex);
        }
        TR_PUSH(tx, rm, query_parameters, qm);
    }
    if (m->n_methods) {
        Envoy__Config__Route__V3__HeaderMatcher *hm = TR_NEW(tx, envoy__config__route__v3__header_matcher);
        char *re = tr_strdup(tx, "");
        for (size_t i = 0; i < m->n_methods; i++) {
            const char *meth = m->methods[i];
            for (const char *c = meth; *c; c++)
                if (!((*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') || *c == '-' || *c == '_')) {
                    tr_error(tx, "%s.methods[%zu]: \"%s\" is not an HTTP method", path, i, meth);
                    return;
                }
            if (!meth[0]) {
                tr_error(tx, "%s.methods[%zu]: empty", path, i);
                return;
            }
            re = tr_printf(tx, "%s%s%s", re, i ? "|" : "", meth);
        }
        hm->name = tr_strdup(tx, ":method");
        hm->header_match_specifier_case = ENVOY__CONFIG__ROUTE__V3__HEADER_MATCHER__HEADER_MATCH_SPECIFIER_STRING_MATCH;
        hm->string_match = string_matcher(tx, m->n_methods == 1 ? m->methods[0] : re, m->n_methods > 1);
        TR_PUSH(tx, rm, headers, hm);
    }
}

/* ------------------------------------------------------------------------ */
/* route actions                                                            */

typedef struct route_ctx {
    const tr_gateway *gw;
    const Sluice__V1__VirtualService *vs;
    tr_vhost_t *vh;
    const char *prefix;                       /* parent prefix (delegated routes) */
    const Sluice__V1__Matcher *parent_matcher; /* for inheritable matchers */
    bool inherit_matchers, inherit_path;
    const Sluice__V1__RouteOptions *options; /* inherited */
    const char *owner_ns;
    const char *path;
    const tr_entry *visited[32];
    int depth;
} route_ctx;

static void invalid_route(tr_ctx *tx, tr_route_t *r)
{
    const Sluice__V1__GlooOptions__InvalidConfigPolicy *p =
        tx->settings->gloo ? tx->settings->gloo->invalid_config_policy : NULL;
    Envoy__Config__Route__V3__DirectResponseAction *d = TR_NEW(tx, envoy__config__route__v3__direct_response_action);
    d->status = p && p->invalid_route_response_code ? p->invalid_route_response_code : 404;
    d->body = TR_NEW(tx, envoy__config__core__v3__data_source);
    d->body->specifier_case = ENVOY__CONFIG__CORE__V3__DATA_SOURCE__SPECIFIER_INLINE_STRING;
    d->body->inline_string =
        tr_strdup(tx, p && p->invalid_route_response_body && p->invalid_route_response_body[0]
                          ? p->invalid_route_response_body
                          : INVALID_ROUTE_BODY);
    r->action_case = ENVOY__CONFIG__ROUTE__V3__ROUTE__ACTION_DIRECT_RESPONSE;
    r->direct_response = d;
}

/* Resolves a destination's upstream; warns and returns NULL when missing. */
static const Sluice__V1__Upstream *dest_upstream(tr_ctx *tx, const Sluice__V1__Destination *d, const char *def_ns,
                                                 const char *path)
{
    const Sluice__V1__Upstream *up;
    if (!d || d->destination_type_case != SLUICE__V1__DESTINATION__DESTINATION_TYPE_UPSTREAM || !d->upstream ||
        !d->upstream->name || !d->upstream->name[0]) {
        tr_error(tx, "%s: a destination needs upstream.name", path);
        return NULL;
    }
    up = tr_find_upstream(tx, d->upstream, def_ns);
    if (!up)
        tr_warn(tx, "Route Warning: InvalidDestinationWarning. Reason: Upstream %s.%s not found",
                d->upstream->namespace_ && d->upstream->namespace_[0] ? d->upstream->namespace_ : def_ns,
                d->upstream->name);
    return up;
}

static int cmp_cstr(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

/* The metadata_match of a destination's subset (NULL without one): the
 * endpoints whose labels have these values, among the upstream's
 * subsetSpec selectors. */
static Envoy__Config__Core__V3__Metadata *subset_match(tr_ctx *tx, const Sluice__V1__Destination *d,
                                                       const Sluice__V1__Upstream *up, const char *path)
{
    const Sluice__V1__Subset *sub = d ? d->subset : NULL;
    const Sluice__V1__SubsetSpec *spec = up && up->spec ? up->spec->subset_spec : NULL;
    const char **keys, **vals;
    bool matches = false;
    if (!sub)
        return NULL;
    if (!sub->n_values) {
        tr_error(tx, "%s.subset.values: at least one label is required", path);
        return NULL;
    }
    keys = tr_alloc(tx, sub->n_values * sizeof *keys);
    vals = tr_alloc(tx, sub->n_values * sizeof *vals);
    for (size_t i = 0; i < sub->n_values; i++) {
        keys[i] = sub->values[i]->key;
        vals[i] = sub->values[i]->value;
    }
    if (!spec) {
        tr_warn(tx, "%s.subset: upstream %s.%s has no subsetSpec; Envoy sends to any endpoint", path,
                md_ns(up->metadata), up->metadata->name);
    } else {
        /* a selector with exactly these keys */
        const char **sorted = tr_alloc(tx, sub->n_values * sizeof *sorted);
        memcpy(sorted, keys, sub->n_values * sizeof *sorted);
        qsort(sorted, sub->n_values, sizeof *sorted, cmp_cstr);
        for (size_t i = 0; i < spec->n_selectors && !matches; i++) {
            const Sluice__V1__SubsetSpec__Selector *sel = spec->selectors[i];
            size_t found = 0;
            if (sel->n_keys != sub->n_values)
                continue;
            for (size_t k = 0; k < sel->n_keys; k++)
                found += bsearch(&sel->keys[k], sorted, sub->n_values, sizeof *sorted, cmp_cstr) != NULL;
            matches = found == sel->n_keys;
        }
        if (!matches)
            tr_warn(tx, "%s.subset.values: no selector of upstream %s.%s subsetSpec has exactly these keys; Envoy "
                        "sends to any endpoint", path, md_ns(up->metadata), up->metadata->name);
    }
    return tr_lb_metadata(tx, sub->n_values, keys, vals);
}

static Envoy__Config__Route__V3__WeightedCluster *weighted(tr_ctx *tx, Sluice__V1__WeightedDestination *const *ds,
                                                          size_t n, const char *def_ns, const char *path, bool *missing)
{
    Envoy__Config__Route__V3__WeightedCluster *wc = TR_NEW(tx, envoy__config__route__v3__weighted_cluster);
    uint64_t total = 0;
    if (n == 0) {
        tr_error(tx, "%s: at least one destination is required", path);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        const char *p = tr_printf(tx, "%s[%zu].destination", path, i);
        const Sluice__V1__Upstream *up = dest_upstream(tx, ds[i]->destination, def_ns, p);
        Envoy__Config__Route__V3__WeightedCluster__ClusterWeight *cw =
            TR_NEW(tx, envoy__config__route__v3__weighted_cluster__cluster_weight);
        uint32_t w = ds[i]->weight ? ds[i]->weight->value : 0;
        if (!up) {
            *missing = true;
            continue;
        }
        if (ds[i]->destination && ds[i]->destination->destination_spec)
            tr_error(tx, "%s.destinationSpec: functions on weighted destinations are not supported by Sluice", p);
        cw->name = tr_cluster_name(tx, up->metadata->name, md_ns(up->metadata));
        cw->weight = tr_u32(tx, w);
        cw->metadata_match = subset_match(tx, ds[i]->destination, up, p);
        total += w;
        if (ds[i]->options) {
            const Sluice__V1__WeightedDestinationOptions *o = ds[i]->options;
            if (o->header_manipulation) {
                const Sluice__V1__HeaderManipulation *h = o->header_manipulation;
                for (size_t j = 0; j < h->n_request_headers_to_add; j++)
                    TR_PUSH(tx, cw, request_headers_to_add, tr_header_option(tx, h->request_headers_to_add[j]));
                for (size_t j = 0; j < h->n_request_headers_to_remove; j++)
                    TR_PUSH(tx, cw, request_headers_to_remove, tr_strdup(tx, h->request_headers_to_remove[j]));
                for (size_t j = 0; j < h->n_response_headers_to_add; j++)
                    TR_PUSH(tx, cw, response_headers_to_add, tr_header_option(tx, h->response_headers_to_add[j]));
                for (size_t j = 0; j < h->n_response_headers_to_remove; j++)
                    TR_PUSH(tx, cw, response_headers_to_remove, tr_strdup(tx, h->response_headers_to_remove[j]));
            }
            if (o->extauth)
                tr_error(tx, "%s[%zu].options.extauth: not supported by Sluice on weighted destinations", path, i);
        }
        TR_PUSH(tx, wc, clusters, cw);
    }
    if (!*missing && total == 0) {
        tr_error(tx, "%s: at least one destination needs a weight above zero", path);
        return NULL;
    }
    if (total > 0xffffffffULL) {
        tr_error(tx, "%s: the weights add up to more than 4294967295", path);
        return NULL;
    }
    /* Deprecated in Envoy (which derives the sum) but read by gRPC 1.51's
     * xDS client, which otherwise expects the weights to add up to 100. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    if (total > 0)
        wc->total_weight = tr_u32(tx, (uint32_t)total);
#pragma GCC diagnostic pop
    return wc;
}

/* Sets r's action from a Sluice route action; returns the single
 * destination's upstream for the plugins. *invalid: replaced by the
 * invalid-route response. */
static const Sluice__V1__Upstream *route_action(tr_ctx *tx, const route_ctx *rc, const Sluice__V1__RouteAction *a,
                                                tr_route_t *r, const char *path, bool *invalid)
{
    Envoy__Config__Route__V3__RouteAction *ra = TR_NEW(tx, envoy__config__route__v3__route_action);
    const Sluice__V1__Upstream *single = NULL;
    bool missing = false;
    switch (a->destination_case) {
    case SLUICE__V1__ROUTE_ACTION__DESTINATION_SINGLE:
        single = dest_upstream(tx, a->single, rc->owner_ns, tr_printf(tx, "%s.routeAction.single", path));
        if (!single) {
            missing = true;
            break;
        }
        ra->cluster_specifier_case = ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__CLUSTER_SPECIFIER_CLUSTER;
        ra->cluster = tr_cluster_name(tx, single->metadata->name, md_ns(single->metadata));
        ra->metadata_match = subset_match(tx, a->single, single, tr_printf(tx, "%s.routeAction.single", path));
        break;
    case SLUICE__V1__ROUTE_ACTION__DESTINATION_MULTI:
        ra->weighted_clusters = weighted(tx, a->multi ? a->multi->destinations : NULL, a->multi ? a->multi->n_destinations : 0,
                                         rc->owner_ns, tr_printf(tx, "%s.routeAction.multi.destinations", path), &missing);
        ra->cluster_specifier_case = ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__CLUSTER_SPECIFIER_WEIGHTED_CLUSTERS;
        if (!ra->weighted_clusters)
            missing = true;
        break;
    case SLUICE__V1__ROUTE_ACTION__DESTINATION_UPSTREAM_GROUP: {
        const Sluice__V1__ResourceRef *ref = a->upstream_group;
        const char *ns = ref->namespace_ && ref->namespace_[0] ? ref->namespace_ : rc->owner_ns;
        long pos = tr_bucket_find(bucket(tx, K_UG), ns, ref->name ? ref->name : "");
        const Sluice__V1__UpstreamGroup *ug;
        if (pos < 0) {
            tr_warn(tx, "Route Warning: InvalidDestinationWarning. Reason: UpstreamGroup %s.%s not found", ns,
                    ref->name ? ref->name : "");
            missing = true;
            break;
        }
        ug = (const Sluice__V1__UpstreamGroup *)bucket(tx, K_UG)->v[pos].msg;
        ra->weighted_clusters =
            weighted(tx, ug->spec ? ug->spec->destinations : NULL, ug->spec ? ug->spec->n_destinations : 0, ns,
                     tr_printf(tx, "%s.routeAction.upstreamGroup(%s.%s).destinations", path, ns, ref->name), &missing);
        ra->cluster_specifier_case = ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__CLUSTER_SPECIFIER_WEIGHTED_CLUSTERS;
        if (!ra->weighted_clusters)
            missing = true;
        break;
    }
    case SLUICE__V1__ROUTE_ACTION__DESTINATION_CLUSTER_HEADER: {
        const char *err = tr_check_header_name(a->cluster_header, false);
        if (err) {
            tr_error(tx, "%s.routeAction.clusterHeader: %s", path, err);
            missing = true;
            break;
        }
        ra->cluster_specifier_case = ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__CLUSTER_SPECIFIER_CLUSTER_HEADER;
        ra->cluster_header = tr_strdup(tx, a->cluster_header);
        break;
    }
    default:
        tr_error(tx, "%s.routeAction: a destination (single, multi, upstreamGroup or clusterHeader) is required", path);
        missing = true;
    }
    if (missing) {
        invalid_route(tx, r);
        *invalid = true;
        return NULL;
    }
    r->action_case = ENVOY__CONFIG__ROUTE__V3__ROUTE__ACTION_ROUTE;
    r->route = ra;
    return single;
}

static void redirect_action(tr_ctx *tx, const Sluice__V1__RedirectAction *a, tr_route_t *r, const char *path)
{
    Envoy__Config__Route__V3__RedirectAction *ra = TR_NEW(tx, envoy__config__route__v3__redirect_action);
    ra->host_redirect = tr_strdup(tx, a->host_redirect);
    ra->response_code = (Envoy__Config__Route__V3__RedirectAction__RedirectResponseCode)a->response_code;
    ra->strip_query = a->strip_query;
    if (a->https_redirect) {
        ra->scheme_rewrite_specifier_case = ENVOY__CONFIG__ROUTE__V3__REDIRECT_ACTION__SCHEME_REWRITE_SPECIFIER_HTTPS_REDIRECT;
        ra->https_redirect = 1;
    }
    if (a->port_redirect) {
        if (a->port_redirect->value > 65535)
            tr_error(tx, "%s.redirectAction.portRedirect: %u is not a port", path, a->port_redirect->value);
        ra->port_redirect = a->port_redirect->value;
    }
    switch (a->path_rewrite_specifier_case) {
    case SLUICE__V1__REDIRECT_ACTION__PATH_REWRITE_SPECIFIER_PATH_REDIRECT:
        ra->path_rewrite_specifier_case = ENVOY__CONFIG__ROUTE__V3__REDIRECT_ACTION__PATH_REWRITE_SPECIFIER_PATH_REDIRECT;
        ra->path_redirect = tr_strdup(tx, a->path_redirect);
        break;
    case SLUICE__V1__REDIRECT_ACTION__PATH_REWRITE_SPECIFIER_PREFIX_REWRITE:
        ra->path_rewrite_specifier_case = ENVOY__CONFIG__ROUTE__V3__REDIRECT_ACTION__PATH_REWRITE_SPECIFIER_PREFIX_REWRITE;
        ra->prefix_rewrite = tr_strdup(tx, a->prefix_rewrite);
        break;
    case SLUICE__V1__REDIRECT_ACTION__PATH_REWRITE_SPECIFIER_REGEX_REWRITE: {
        const Sluice__V1__RegexMatchAndSubstitute *rr = a->regex_rewrite;
        if (!rr->pattern || !rr->pattern->regex ||
            !tr_check_regex(tx, tr_printf(tx, "%s.redirectAction.regexRewrite.pattern", path), rr->pattern->regex, NULL))
            break;
        ra->path_rewrite_specifier_case = ENVOY__CONFIG__ROUTE__V3__REDIRECT_ACTION__PATH_REWRITE_SPECIFIER_REGEX_REWRITE;
        ra->regex_rewrite = TR_NEW(tx, envoy__type__matcher__v3__regex_match_and_substitute);
        ra->regex_rewrite->pattern = tr_regex(tx, rr->pattern->regex);
        ra->regex_rewrite->substitution = tr_strdup(tx, rr->substitution);
        break;
    }
    default:
        break;
    }
    for (const char *c = a->host_redirect; c && *c; c++)
        if (*c == '/' || *c == ' ') {
            tr_error(tx, "%s.redirectAction.hostRedirect: \"%s\" is not a host", path, a->host_redirect);
            break;
        }
    r->action_case = ENVOY__CONFIG__ROUTE__V3__ROUTE__ACTION_REDIRECT;
    r->redirect = ra;
}

static void direct_action(tr_ctx *tx, const Sluice__V1__DirectResponseAction *a, tr_route_t *r, const char *path)
{
    Envoy__Config__Route__V3__DirectResponseAction *d = TR_NEW(tx, envoy__config__route__v3__direct_response_action);
    if (a->status < 200 || a->status > 599)
        tr_error(tx, "%s.directResponseAction.status: %u is not an HTTP status Envoy can answer with (200-599)", path,
                 a->status);
    d->status = a->status;
    if (a->body && a->body[0]) {
        d->body = TR_NEW(tx, envoy__config__core__v3__data_source);
        d->body->specifier_case = ENVOY__CONFIG__CORE__V3__DATA_SOURCE__SPECIFIER_INLINE_STRING;
        d->body->inline_string = tr_strdup(tx, a->body);
    }
    r->action_case = ENVOY__CONFIG__ROUTE__V3__ROUTE__ACTION_DIRECT_RESPONSE;
    r->direct_response = d;
}

/* ------------------------------------------------------------------------ */
/* routes and delegation                                                    */

static void translate_routes(tr_ctx *tx, route_ctx *rc, Sluice__V1__Route *const *routes, size_t n);

static bool starts_with(const char *s, const char *p) { return strncmp(s, p, strlen(p)) == 0; }

static void delegate(tr_ctx *tx, route_ctx *rc, const Sluice__V1__Route *route, const char *path,
                     const Sluice__V1__RouteOptions *opts)
{
    const Sluice__V1__DelegateAction *da = route->delegate_action;
    Sluice__V1__Matcher def = SLUICE__V1__MATCHER__INIT;
    const Sluice__V1__Matcher *const *ms;
    size_t nm;
    const tr_entry *tables[256];
    size_t nt = 0;
    tr_bucket *b = bucket(tx, K_RT);
    const Sluice__V1__Matcher *defp = &def;

    def.path_specifier_case = SLUICE__V1__MATCHER__PATH_SPECIFIER_PREFIX;
    def.prefix = (char *)(rc->prefix ? rc->prefix : "/");
    ms = route->n_matchers ? (const Sluice__V1__Matcher *const *)route->matchers : &defp;
    nm = route->n_matchers ? route->n_matchers : 1;

    /* Which route tables. */
    if (da->delegation_type_case == SLUICE__V1__DELEGATE_ACTION__DELEGATION_TYPE_SELECTOR) {
        const Sluice__V1__RouteTableSelector *sel = da->selector;
        for (size_t i = 0; i < b->n && nt < 256; i++) {
            const Sluice__V1__RouteTable *rt = (const Sluice__V1__RouteTable *)b->v[i].msg;
            if (!ns_selected(b->v[i].ns, sel->namespaces, sel->n_namespaces, rc->owner_ns) ||
                !labels_match(rt->metadata, sel->n_labels, (void *const *)sel->labels) ||
                !expressions_match(rt->metadata, sel->expressions, sel->n_expressions))
                continue;
            tables[nt++] = &b->v[i];
        }
        /* by weight, then namespace and name (the bucket order) */
        for (size_t i = 1; i < nt; i++)
            for (size_t j = i; j > 0; j--) {
                const Sluice__V1__RouteTable *x = (const Sluice__V1__RouteTable *)tables[j - 1]->msg;
                const Sluice__V1__RouteTable *y = (const Sluice__V1__RouteTable *)tables[j]->msg;
                int wx = x->spec && x->spec->weight ? x->spec->weight->value : 0;
                int wy = y->spec && y->spec->weight ? y->spec->weight->value : 0;
                if (wx <= wy)
                    break;
                const tr_entry *t = tables[j - 1];
                tables[j - 1] = tables[j];
                tables[j] = t;
            }
        if (nt == 0)
            tr_warn(tx, "Route Warning: InvalidDelegationWarning. Reason: %s.delegateAction.selector matches no RouteTable",
                    path);
    } else {
        const char *name = NULL, *ns = NULL;
        long pos;
        if (da->delegation_type_case == SLUICE__V1__DELEGATE_ACTION__DELEGATION_TYPE_REF && da->ref) {
            name = da->ref->name;
            ns = da->ref->namespace_;
        } else {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
            name = da->name;
            ns = da->namespace_;
#pragma GCC diagnostic pop
        }
        if (!ns || !ns[0])
            ns = rc->owner_ns;
        if (!name || !name[0]) {
            tr_error(tx, "%s.delegateAction: ref.name or selector is required", path);
        } else if ((pos = tr_bucket_find(b, ns, name)) < 0) {
            tr_warn(tx, "Route Warning: InvalidDelegationWarning. Reason: RouteTable %s.%s not found", ns, name);
        } else {
            tables[nt++] = &b->v[pos];
        }
    }

    for (size_t j = 0; j < nm; j++) {
        const Sluice__V1__Matcher *m = ms[j];
        const char *mpath = tr_printf(tx, "%s.matchers[%zu]", path, j);
        if (m->path_specifier_case != SLUICE__V1__MATCHER__PATH_SPECIFIER_PREFIX &&
            m->path_specifier_case != SLUICE__V1__MATCHER__PATH_SPECIFIER__NOT_SET) {
            tr_error(tx, "%s: a delegating route may use only prefix matchers", mpath);
            continue;
        }
        const char *prefix = m->path_specifier_case == SLUICE__V1__MATCHER__PATH_SPECIFIER_PREFIX ? m->prefix : "/";
        if (rc->prefix && !starts_with(prefix, rc->prefix)) {
            tr_error(tx, "%s.prefix: \"%s\" does not start with the delegating route's prefix \"%s\"", mpath, prefix,
                     rc->prefix);
            continue;
        }
        if (nt == 0) {
            /* Nothing to delegate to: the invalid-route response, so that
             * the prefix does not fall through to later routes. */
            tr_route_t *r = TR_NEW(tx, envoy__config__route__v3__route);
            r->match = TR_NEW(tx, envoy__config__route__v3__route_match);
            r->match->path_specifier_case = ENVOY__CONFIG__ROUTE__V3__ROUTE_MATCH__PATH_SPECIFIER_PREFIX;
            r->match->prefix = tr_strdup(tx, prefix);
            r->name = tr_printf(tx, "%s-route-%zu", rc->vh->name, rc->vh->n_routes);
            invalid_route(tx, r);
            TR_PUSH(tx, rc->vh, routes, r);
        }
        for (size_t t = 0; t < nt; t++) {
            const tr_entry *e = tables[t];
            uint8_t *fl = flag(tx, K_RT, (size_t)(e - b->v));
            bool cycle = false;
            for (int d = 0; d < rc->depth; d++)
                if (rc->visited[d] == e)
                    cycle = true;
            if (cycle || rc->depth >= 31) {
                char chain[1024] = "";
                size_t off = 0;
                for (int d = 0; d < rc->depth && off < sizeof chain; d++)
                    off += (size_t)snprintf(chain + off, sizeof chain - off, "%s.%s -> ", rc->visited[d]->ns,
                                            rc->visited[d]->name);
                tr_error(tx, "%s.delegateAction: delegation cycle: %s%s.%s", path, chain, e->ns, e->name);
                continue;
            }
            route_ctx child = *rc;
            tr_cur cur = {K_RT, e->ns, e->name, 0};
            tr_cur *saved = tx->cur;
            size_t before = rc->vh->n_routes;
            const Sluice__V1__RouteTable *rt = (const Sluice__V1__RouteTable *)e->msg;

            child.prefix = prefix;
            child.parent_matcher = m;
            child.inherit_matchers = route->inheritable_matchers ? route->inheritable_matchers->value : rc->inherit_matchers;
            child.inherit_path =
                route->inheritable_path_matchers ? route->inheritable_path_matchers->value : rc->inherit_path;
            child.options = opts;
            child.owner_ns = e->ns;
            child.path = "spec.routes";
            child.visited[child.depth++] = e;
            *fl |= TR_SEEN;
            if (*fl & TR_REJECTED) {
                /* Already found bad on this translation: use its last good
                 * version quietly, or leave it out. */
                rt = (*fl & TR_USED_GOOD) ? (const Sluice__V1__RouteTable *)e->good : NULL;
                tx->cur = NULL;
            } else {
                tx->cur = &cur;
            }
            if (rt && rt->spec)
                translate_routes(tx, &child, rt->spec->routes, rt->spec->n_routes);
            if (tx->cur == &cur && cur.errors) {
                rc->vh->n_routes = before;
                *fl |= TR_REJECTED;
                if (e->good && e->good != e->msg) {
                    *fl |= TR_USED_GOOD;
                    tx->cur = NULL;
                    rt = (const Sluice__V1__RouteTable *)e->good;
                    cur.errors = 0;
                    translate_routes(tx, &child, rt->spec->routes, rt->spec->n_routes);
                }
            }
            tx->cur = saved;
            tr_rec_rt(tx, (long)(e - b->v), *fl);
            /* A rejected table's errors are reported by the first route
             * reaching it in this translation (the others use it quietly),
             * and what it gives depends on that: not replayable. */
            if ((*fl & TR_REJECTED) && tx->rec)
                tx->rec->stateful = true;
            if (*fl & TR_REJECTED)
                tr_warn(tx, "Route Warning: InvalidDelegationWarning. Reason: RouteTable %s.%s is rejected; %s", e->ns,
                        e->name, (*fl & TR_USED_GOOD) ? "its last accepted version is served" : "its routes are left out");
        }
    }
}

static void translate_route(tr_ctx *tx, route_ctx *rc, const Sluice__V1__Route *route, size_t idx)
{
    const char *path = tr_printf(tx, "%s[%zu]", rc->path, idx);
    const Sluice__V1__RouteOptions *opts =
        (const Sluice__V1__RouteOptions *)merge_options(tx, (const ProtobufCMessage *)rc->options,
                                                        (const ProtobufCMessage *)route->options);
    Sluice__V1__Matcher def = SLUICE__V1__MATCHER__INIT;
    const Sluice__V1__Matcher *defp = &def;
    const Sluice__V1__Matcher *const *ms;
    size_t nm;

    if (route->options)
        check_fields(tx, &tx->supported, &route->options->base, tr_printf(tx, "%s.options", path));
    if (route->action_case == SLUICE__V1__ROUTE__ACTION_DELEGATE_ACTION) {
        delegate(tx, rc, route, path, opts);
        return;
    }
    def.path_specifier_case = SLUICE__V1__MATCHER__PATH_SPECIFIER_PREFIX;
    def.prefix = "/";
    if (!route->n_matchers && rc->parent_matcher)
        defp = rc->parent_matcher; /* a delegated route without matchers takes its parent's */
    ms = route->n_matchers ? (const Sluice__V1__Matcher *const *)route->matchers : &defp;
    nm = route->n_matchers ? route->n_matchers : 1;
    if (route->action_case == SLUICE__V1__ROUTE__ACTION__NOT_SET) {
        tr_error(tx, "%s: an action (routeAction, redirectAction, directResponseAction or delegateAction) is required",
                 path);
        return;
    }
    for (size_t j = 0; j < nm; j++) {
        const Sluice__V1__Matcher *m = ms[j];
        const char *mpath = tr_printf(tx, "%s.matchers[%zu]", path, j);
        tr_route_t *r = TR_NEW(tx, envoy__config__route__v3__route);
        Envoy__Config__Route__V3__RouteMatch *rm = TR_NEW(tx, envoy__config__route__v3__route_match);
        const Sluice__V1__Upstream *up = NULL;
        bool invalid = false;
        int errors_before = tx->cur ? tx->cur->errors : 0;

        r->match = rm;
        switch (m->path_specifier_case) {
        case SLUICE__V1__MATCHER__PATH_SPECIFIER_EXACT:
            if (!m->exact[0] || m->exact[0] != '/')
                tr_error(tx, "%s.exact: \"%s\" must start with '/'", mpath, m->exact);
            rm->path_specifier_case = ENVOY__CONFIG__ROUTE__V3__ROUTE_MATCH__PATH_SPECIFIER_PATH;
            rm->path = tr_strdup(tx, m->exact);
            break;
        case SLUICE__V1__MATCHER__PATH_SPECIFIER_REGEX:
            if (!tr_check_regex(tx, tr_printf(tx, "%s.regex", mpath), m->regex, NULL))
                continue;
            rm->path_specifier_case = ENVOY__CONFIG__ROUTE__V3__ROUTE_MATCH__PATH_SPECIFIER_SAFE_REGEX;
            rm->safe_regex = tr_regex(tx, m->regex);
            break;
        case SLUICE__V1__MATCHER__PATH_SPECIFIER_PREFIX:
            if (m->prefix[0] && m->prefix[0] != '/')
                tr_error(tx, "%s.prefix: \"%s\" must start with '/'", mpath, m->prefix);
            /* fallthrough */
        default:
            rm->path_specifier_case = ENVOY__CONFIG__ROUTE__V3__ROUTE_MATCH__PATH_SPECIFIER_PREFIX;
            rm->prefix = tr_strdup(tx, m->path_specifier_case == SLUICE__V1__MATCHER__PATH_SPECIFIER_PREFIX && m->prefix[0]
                                           ? m->prefix
                                           : "/");
            break;
        }
        if (rc->prefix) {
            const char *p = rm->path_specifier_case == ENVOY__CONFIG__ROUTE__V3__ROUTE_MATCH__PATH_SPECIFIER_SAFE_REGEX
                                ? rm->safe_regex->regex
                                : rm->prefix;
            if (rm->path_specifier_case == ENVOY__CONFIG__ROUTE__V3__ROUTE_MATCH__PATH_SPECIFIER_PATH)
                p = rm->path;
            if (!starts_with(p, rc->prefix))
                tr_error(tx, "%s: the path \"%s\" does not start with the delegating route's prefix \"%s\"", mpath, p,
                         rc->prefix);
        }
        if (m->case_sensitive)
            rm->case_sensitive = tr_bool(tx, m->case_sensitive->value);
        add_header_matchers(tx, rm, m, mpath);
        if (rc->inherit_matchers && rc->parent_matcher && rc->parent_matcher != m)
            add_header_matchers(tx, rm, rc->parent_matcher, tr_printf(tx, "%s (inherited)", mpath));

        switch (route->action_case) {
        case SLUICE__V1__ROUTE__ACTION_ROUTE_ACTION:
            up = route_action(tx, rc, route->route_action, r, path, &invalid);
            break;
        case SLUICE__V1__ROUTE__ACTION_REDIRECT_ACTION:
            redirect_action(tx, route->redirect_action, r, path);
            break;
        case SLUICE__V1__ROUTE__ACTION_DIRECT_RESPONSE_ACTION:
            direct_action(tx, route->direct_response_action, r, path);
            break;
        default:
            break;
        }
        if (route->name && route->name[0])
            r->name = nm > 1 ? tr_printf(tx, "%s-%zu", route->name, j) : tr_strdup(tx, route->name);
        else
            r->name = tr_printf(tx, "%s-route-%zu", rc->vh->name, rc->vh->n_routes);
        if (!invalid) {
            tr_route_in in = {0};
            in.gw = rc->gw;
            in.vs = rc->vs;
            in.route = route;
            in.options = opts;
            in.matcher = m;
            in.upstream = up;
            in.dest_spec = route->action_case == SLUICE__V1__ROUTE__ACTION_ROUTE_ACTION &&
                                   route->route_action->destination_case == SLUICE__V1__ROUTE_ACTION__DESTINATION_SINGLE
                               ? route->route_action->single->destination_spec
                               : NULL;
            in.path = tr_printf(tx, "%s.options", path);
            in.route_path = path;
            if (in.dest_spec && j == 0)
                check_fields(tx, &tx->supported, &in.dest_spec->base,
                             tr_printf(tx, "%s.routeAction.single.destinationSpec", path));
            for (size_t p = 0; p < sl_tr_plugin_count; p++)
                if (sl_tr_plugins[p]->route)
                    sl_tr_plugins[p]->route(tx, &in, r);
        }
        if (tx->cur && tx->cur->errors > errors_before)
            continue;
        TR_PUSH(tx, rc->vh, routes, r);
    }
}

static void translate_routes(tr_ctx *tx, route_ctx *rc, Sluice__V1__Route *const *routes, size_t n)
{
    for (size_t i = 0; i < n; i++)
        translate_route(tx, rc, routes[i], i);
}

/* ------------------------------------------------------------------------ */
/* virtual services                                                         */

static bool domain_ok(const char *d)
{
    if (!d || !d[0])
        return false;
    for (const char *c = d; *c; c++)
        if ((unsigned char)*c <= 32 || *c == '/' || (unsigned char)*c >= 127)
            return false;
    /* a wildcard is '*' alone, or at the start or end */
    for (const char *c = d + 1; c[0] && c[1]; c++)
        if (*c == '*')
            return false;
    return true;
}

static tr_vhost_t *translate_vs(tr_ctx *tx, const tr_gateway *gw, const Sluice__V1__VirtualService *vs)
{
    tr_vhost_t *vh = TR_NEW(tx, envoy__config__route__v3__virtual_host);
    const Sluice__V1__VirtualHost *in = vs->spec ? vs->spec->virtual_host : NULL;
    route_ctx rc;
    const char *ns = md_ns(vs->metadata);

    vh->name = tr_printf(tx, "%s_%s", ns, vs->metadata->name);
    for (char *c = vh->name; *c; c++)
        if (*c == '.')
            *c = '_';
    if (!in) {
        tr_error(tx, "spec.virtualHost: required");
        return vh;
    }
    if (in->n_domains == 0)
        TR_PUSH(tx, vh, domains, tr_strdup(tx, "*"));
    for (size_t i = 0; i < in->n_domains; i++) {
        bool dup = false;
        if (!domain_ok(in->domains[i])) {
            tr_error(tx, "spec.virtualHost.domains[%zu]: \"%s\" is not a domain (a host name, optionally with a port; "
                     "'*' only as a whole label at the start or end)", i, in->domains[i]);
            continue;
        }
        for (size_t j = 0; j < vh->n_domains; j++)
            if (strcmp(vh->domains[j], in->domains[i]) == 0)
                dup = true;
        if (dup) {
            tr_error(tx, "spec.virtualHost.domains[%zu]: \"%s\" is listed twice", i, in->domains[i]);
            continue;
        }
        TR_PUSH(tx, vh, domains, tr_strdup(tx, in->domains[i]));
    }
    memset(&rc, 0, sizeof rc);
    rc.gw = gw;
    rc.vs = vs;
    rc.vh = vh;
    rc.owner_ns = ns;
    rc.path = "spec.virtualHost.routes";
    translate_routes(tx, &rc, in->routes, in->n_routes);
    if (in->options)
        check_fields(tx, &tx->supported, &in->options->base, "spec.virtualHost.options");
    {
        tr_vhost_in vin = {gw, vs, in->options, "spec.virtualHost.options"};
        for (size_t p = 0; p < sl_tr_plugin_count; p++)
            if (sl_tr_plugins[p]->virtual_host)
                sl_tr_plugins[p]->virtual_host(tx, &vin, vh);
    }
    return vh;
}

/* ------------------------------------------------------------------------ */
/* gateways                                                                 */

typedef struct gw_item {
    const Sluice__V1__Gateway *gw;
    const char *ns;
    const char *name;
    long idx; /* in the Gateway bucket; -1 for a default gateway */
    uint64_t rev;
} gw_item;

typedef struct vs_item {
    long idx;
    const Sluice__V1__VirtualService *vs; /* the version used */
    tr_vhost_t *vh;
    bool dropped;
} vs_item;

/* ---- virtual hosts kept between translations (tr_vh_cache) ---- */

static size_t bytes_slot(const tr_bytes_map *m, const void *k)
{
    size_t i = (((uintptr_t)k >> 4) * 0x9E3779B97F4A7C15ull) & (m->cap - 1);
    while (m->keys[i] && m->keys[i] != k)
        i = (i + 1) & (m->cap - 1);
    return i;
}

/* Room for n entries in m without growing. */
static void bytes_reserve(tr_ctx *tx, tr_bytes_map *m, size_t n)
{
    size_t cap = m->cap ? m->cap : 256;
    while (n * 2 > cap)
        cap *= 2;
    if (cap > m->cap) {
        tr_bytes_map bigger = {0};
        bigger.cap = cap;
        bigger.keys = tr_alloc(tx, bigger.cap * sizeof *bigger.keys);
        bigger.data = tr_alloc(tx, bigger.cap * sizeof *bigger.data);
        bigger.len = tr_alloc(tx, bigger.cap * sizeof *bigger.len);
        memset(bigger.keys, 0, bigger.cap * sizeof *bigger.keys);
        for (size_t j = 0; j < m->cap; j++)
            if (m->keys[j]) {
                size_t s = bytes_slot(&bigger, m->keys[j]);
                bigger.keys[s] = m->keys[j];
                bigger.data[s] = m->data[j];
                bigger.len[s] = m->len[j];
                bigger.n++;
            }
        *m = bigger;
    }
}

static void bytes_put(tr_ctx *tx, tr_bytes_map *m, const void *k, const uint8_t *d, size_t len)
{
    size_t i;
    if ((m->n + 1) * 2 > m->cap)
        bytes_reserve(tx, m, m->n + 1);
    i = bytes_slot(m, k);
    if (!m->keys[i])
        m->n++;
    m->keys[i] = k;
    m->data[i] = d;
    m->len[i] = len;
}

static const uint8_t *bytes_get(const tr_bytes_map *m, const void *k, size_t *len)
{
    size_t i;
    if (!m->cap)
        return NULL;
    i = bytes_slot(m, k);
    if (!m->keys[i])
        return NULL;
    *len = m->len[i];
    return m->data[i];
}

static bool vh_cache_matches(const tr_ctx *tx, const tr_entry *e, const tr_gateway *gw, const tr_vh_cache *c)
{
    return c->vs_stamp == e->stamp && c->world == tx->store->world &&
           strcmp(c->settings_ns, tx->opts.settings_namespace) == 0 && strcmp(c->proxy, gw->proxy) == 0 &&
           strcmp(c->listener, gw->listener_name) == 0;
}

/* The virtual host of e for gw from an earlier translation, replayed (its
 * reports, plugins and route table flags), or NULL. The VirtualHost
 * returned holds only the name and domains; its packed bytes are spliced
 * into the route configuration. */
static tr_vhost_t *vh_cached(tr_ctx *tx, const tr_entry *e, const tr_gateway *gw, const tr_vh_cache **used)
{
    const tr_vh_cache *c = e->vcache;
    tr_vhost_t *vh;
    while (c && !vh_cache_matches(tx, e, gw, c))
        c = c->next;
    if (!c)
        return NULL;
    /* kept only when every route table it reached was accepted; one found
     * rejected earlier in this translation would be used quietly (last good
     * version or nothing) instead: translate it again */
    for (size_t i = 0; i < c->n_rt; i++)
        if (c->rt_idx[i] >= 0 && (size_t)c->rt_idx[i] < bucket(tx, K_RT)->n &&
            (*flag(tx, K_RT, (size_t)c->rt_idx[i]) & TR_REJECTED))
            return NULL;
    vh = TR_NEW(tx, envoy__config__route__v3__virtual_host);
    vh->name = tr_strdup(tx, c->name);
    for (size_t i = 0; i < c->n_domains; i++)
        TR_PUSH(tx, vh, domains, tr_strdup(tx, c->domains[i]));
    for (size_t i = 0; i < c->n_used; i++)
        tr_use(tx, c->used[i]);
    for (size_t i = 0; i < c->n_reps; i++) {
        const tr_vh_rep *r = &c->reps[i];
        tr_rep_add(tx, tr_rep_get(tx, sl_kind_at((size_t)r->kind), r->ns, r->name), r->error, r->msg);
    }
    for (size_t i = 0; i < c->n_rt; i++)
        if (c->rt_idx[i] >= 0 && (size_t)c->rt_idx[i] < bucket(tx, K_RT)->n)
            *flag(tx, K_RT, (size_t)c->rt_idx[i]) |= c->rt_flags[i];
    bytes_put(tx, &tx->vh_bytes, vh, c->bytes, c->len);
    *used = c;
    return vh;
}

static char *xstrdup(tr_ctx *tx, const char *s)
{
    char *p = strdup(s ? s : "");
    if (!p)
        longjmp(tx->oom, 1);
    return p;
}

static void *xcalloc(tr_ctx *tx, size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size);
    if (!p)
        longjmp(tx->oom, 1);
    return p;
}

/* Keeps what translating e for gw gave (vh, and what rec recorded) for the
 * next translation, replacing what was kept for the same proxy and
 * listener, and registers vh's packed bytes for this one. */
static const tr_vh_cache *vh_keep(tr_ctx *tx, tr_entry *e, const tr_gateway *gw, const tr_vhost_t *vh,
                                  const tr_rec *rec)
{
    tr_vh_cache *c = xcalloc(tx, 1, sizeof *c), **pp;
    /* linked first, so a failure below frees it with the entry; its stamps
     * stay 0 (never matching) until it is complete */
    c->next = e->vcache;
    e->vcache = c;
    c->settings_ns = xstrdup(tx, tx->opts.settings_namespace);
    c->proxy = xstrdup(tx, gw->proxy);
    c->listener = xstrdup(tx, gw->listener_name);
    c->name = xstrdup(tx, vh->name);
    c->domains = xcalloc(tx, vh->n_domains, sizeof *c->domains);
    for (; c->n_domains < vh->n_domains; c->n_domains++)
        c->domains[c->n_domains] = xstrdup(tx, vh->domains[c->n_domains]);
    c->used = xcalloc(tx, rec->n_used, sizeof *c->used);
    for (; c->n_used < rec->n_used; c->n_used++)
        c->used[c->n_used] = rec->used[c->n_used];
    c->reps = xcalloc(tx, rec->n_reps, sizeof *c->reps);
    for (; c->n_reps < rec->n_reps; c->n_reps++) {
        tr_vh_rep *r = &c->reps[c->n_reps];
        r->kind = rec->reps[c->n_reps].kind;
        r->error = rec->reps[c->n_reps].error;
        r->ns = xstrdup(tx, rec->reps[c->n_reps].ns);
        r->name = xstrdup(tx, rec->reps[c->n_reps].name);
        r->msg = xstrdup(tx, rec->reps[c->n_reps].msg);
    }
    c->rt_idx = xcalloc(tx, rec->n_rt, sizeof *c->rt_idx);
    c->rt_flags = xcalloc(tx, rec->n_rt, sizeof *c->rt_flags);
    for (; c->n_rt < rec->n_rt; c->n_rt++) {
        c->rt_idx[c->n_rt] = rec->rt_idx[c->n_rt];
        c->rt_flags[c->n_rt] = rec->rt_flags[c->n_rt];
    }
    if (!(c->blob = tr_blob_pack(&vh->base, vh->name ? vh->name : "")))
        longjmp(tx->oom, 1);
    c->bytes = c->blob->data; /* vh_bytes holds blobs' bytes only (pack_route_config) */
    c->len = c->blob->len;
    c->vs_stamp = e->stamp;
    c->world = tx->store->world;
    /* drop what was kept for the same proxy and listener (and stale ones) */
    for (pp = &c->next; *pp;) {
        tr_vh_cache *o = *pp;
        if (o->vs_stamp != c->vs_stamp || o->world != c->world ||
            (strcmp(o->proxy, c->proxy) == 0 && strcmp(o->listener, c->listener) == 0)) {
            *pp = o->next;
            o->next = NULL;
            tr_vh_cache_free(o);
        } else {
            pp = &o->next;
        }
    }
    bytes_put(tx, &tx->vh_bytes, vh, c->bytes, c->len);
    return c;
}

/* A RouteConfiguration packed with its virtual hosts' bytes spliced in
 * (kept or packed now): the same bytes as packing it whole, as field 2
 * (virtual_hosts) comes right after the name. A new blob named name, with
 * one reference, carrying the same bytes in parts (tr_rparts: the head and
 * a reference to each virtual host's blob, so a kept virtual host is the
 * same part in every route spliced from it); NULL: no memory. */
/* The blob of a route configuration from its parts: rp with v[], vh[] and
 * pub.n set (taken: owned by the blob, or freed on failure), and rest, the
 * route packed without its virtual hosts (taken too). The whole is spliced
 * (field 2 follows the name), or with options.route_parts_only only its
 * length kept. NULL when out of memory. */
static tr_blob *route_blob(tr_ctx *tx, tr_rparts *rp, uint8_t *rest, size_t rest_len, const char *name)
{
    tr_blob *b = NULL;
    size_t nlen = strlen(name) + 1, head = 0, total = rest_len, n = rp->pub.n, o;
    uint8_t *out;
    for (size_t i = 0; i < n; i++)
        total += 1 + 10 + rp->v[i].len;
    /* field 1 (name), when set, is first: tag 0x0a, length, bytes */
    if (rest_len && rest[0] == 0x0a) {
        size_t l = 0;
        int shift = 0;
        head = 1;
        while (head < rest_len && (rest[head] & 0x80)) {
            l |= (size_t)(rest[head++] & 0x7f) << shift;
            shift += 7;
        }
        if (head < rest_len)
            l |= (size_t)rest[head++] << shift;
        head += l;
    }
    if (tx->opts.route_parts_only && n >= 2) {
        /* The writer stores it in parts (SL_XDS_SPLIT_MIN and up): no
         * whole bytes, only their length, unless a part has no name (the
         * writer keeps such a route whole). */
        size_t whole = rest_len;
        bool named = true;
        for (size_t i = 0; i < n; i++) {
            size_t v = rp->v[i].len;
            whole += 2 + rp->v[i].len;
            while (v >= 0x80) {
                whole++;
                v >>= 7;
            }
            named = named && rp->v[i].name[0];
        }
        if (named && whole >= SL_XDS_SPLIT_MIN) {
            if (!(b = malloc(offsetof(tr_blob, data) + nlen)))
                goto done;
            b->refs = 1;
            b->len = whole;
            b->name = (char *)b->data;
            memcpy(b->name, name, nlen);
            rp->no_whole = true;
            goto parts;
        }
    }
    if (!(b = malloc(offsetof(tr_blob, data) + total + nlen)))
        goto done;
    out = b->data;
    memcpy(out, rest, head);
    o = head;
    for (size_t i = 0; i < n; i++) {
        size_t v = rp->v[i].len;
        out[o++] = 0x12; /* field 2, length-delimited */
        while (v >= 0x80) {
            out[o++] = (uint8_t)(v | 0x80);
            v >>= 7;
        }
        out[o++] = (uint8_t)v;
        memcpy(out + o, rp->v[i].data, rp->v[i].len);
        o += rp->v[i].len;
    }
    memcpy(out + o, rest + head, rest_len - head);
    b->refs = 1;
    b->len = o + rest_len - head;
    b->name = (char *)b->data + total; /* after the bytes (total bounds them) */
    memcpy(b->name, name, nlen);
parts:
    /* the head is every field but the virtual hosts, in order: rest */
    rp->head = rest;
    rp->pub.head = rest;
    rp->pub.head_len = rest_len;
    rp->pub.v = rp->v;
    b->parts = rp;
    rest = NULL;
    rp = NULL;
done:
    tr_rparts_free(rp);
    free(rest);
    return b;
}

/* One more part of a route in parts: vb (a reference taken) at rp->pub.n. */
static void rparts_push(tr_rparts *rp, tr_blob *vb)
{
    size_t i = rp->pub.n;
    rp->vh[i] = tr_blob_ref(vb);
    rp->v[i].data = vb->data;
    rp->v[i].len = vb->len;
    rp->v[i].name = vb->name;
    rp->pub.n = i + 1; /* freed with rp from here */
}

/* The packed virtual host vh as a blob (a new reference): its kept bytes'
 * blob (vh_bytes holds blobs' bytes only, vh_keep), or packed now. NULL
 * when out of memory. */
static tr_blob *vh_blob(tr_ctx *tx, const tr_vhost_t *vh)
{
    size_t len = 0;
    const uint8_t *kept = bytes_get(&tx->vh_bytes, vh, &len);
    if (kept)
        return tr_blob_ref(tr_blob_of(kept));
    return tr_blob_pack(&vh->base, vh->name ? vh->name : "");
}

static tr_blob *pack_route_config(tr_ctx *tx, const Envoy__Config__Route__V3__RouteConfiguration *rc,
                                  const char *name)
{
    Envoy__Config__Route__V3__RouteConfiguration copy = *rc;
    size_t rest_len, n = rc->n_virtual_hosts;
    tr_rparts *rp = calloc(1, sizeof *rp);
    uint8_t *rest = NULL;
    if (!rp || !(rp->v = calloc(n ? n : 1, sizeof *rp->v)) || !(rp->vh = calloc(n ? n : 1, sizeof *rp->vh)))
        goto fail;
    copy.n_virtual_hosts = 0;
    copy.virtual_hosts = NULL;
    if (!(rest = tr_pack_heap(&copy.base, &rest_len)))
        goto fail;
    /* The kept virtual hosts' blobs first, each asked for ahead (thousands
     * of them, scattered: one cache miss at a time would be most of the
     * cost). */
    for (size_t i = 0; i < n; i++) {
        size_t len = 0;
        const uint8_t *kept = bytes_get(&tx->vh_bytes, rc->virtual_hosts[i], &len);
        if (kept)
            __builtin_prefetch(tr_blob_of(kept), 1);
    }
    for (size_t i = 0; i < n; i++) {
        tr_blob *vb = vh_blob(tx, rc->virtual_hosts[i]);
        if (!vb)
            goto fail;
        rparts_push(rp, vb);
        tr_blob_unref(vb);
    }
    return route_blob(tx, rp, rest, rest_len, name);
fail:
    tr_rparts_free(rp);
    free(rest);
    return NULL;
}

typedef struct rev_order {
    uint64_t rev;
    long idx;
    size_t item;
} rev_order;

static int cmp_rev_order(const void *a, const void *b)
{
    const rev_order *x = a, *y = b;
    if (x->rev != y->rev)
        return x->rev < y->rev ? -1 : 1;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static bool vs_selected(const Sluice__V1__HttpGateway *hg, const char *gw_ns, const tr_entry *e)
{
    const Sluice__V1__VirtualService *vs = (const Sluice__V1__VirtualService *)e->msg;
    if (!hg)
        return true;
    if (hg->n_virtual_services) {
        for (size_t i = 0; i < hg->n_virtual_services; i++) {
            const Sluice__V1__ResourceRef *r = hg->virtual_services[i];
            const char *ns = r->namespace_ && r->namespace_[0] ? r->namespace_ : gw_ns;
            if (strcmp(ns, e->ns) == 0 && strcmp(r->name, e->name) == 0)
                return true;
        }
        return false;
    }
    if (!ns_selected(e->ns, hg->virtual_service_namespaces, hg->n_virtual_service_namespaces, NULL))
        return false;
    if (hg->n_virtual_service_selector &&
        !labels_match(vs->metadata, hg->n_virtual_service_selector, (void *const *)hg->virtual_service_selector))
        return false;
    if (hg->virtual_service_expressions &&
        !expressions_match(vs->metadata, hg->virtual_service_expressions->expressions,
                           hg->virtual_service_expressions->n_expressions))
        return false;
    return true;
}

static tr_cur cur_of(const sl_kind *k, const tr_entry *e)
{
    tr_cur c = {k, e->ns, e->name, 0};
    return c;
}

static int cmp_strp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* The SNI set of an ssl virtual service, sorted and joined: the key of its
 * filter chain. */
static const char *sni_key(tr_ctx *tx, const Sluice__V1__SslConfig *ssl)
{
    char **v = tr_alloc(tx, (ssl->n_sni_domains + 1) * sizeof *v);
    char *key = tr_strdup(tx, "");
    if (ssl->n_sni_domains) {
        memcpy(v, ssl->sni_domains, ssl->n_sni_domains * sizeof *v);
        qsort(v, ssl->n_sni_domains, sizeof *v, cmp_strp);
    }
    for (size_t i = 0; i < ssl->n_sni_domains; i++)
        key = tr_printf(tx, "%s%s%s", key, i ? "," : "", v[i]);
    return key;
}

static const char *ssl_identity(tr_ctx *tx, const Sluice__V1__SslConfig *ssl)
{
    uint8_t *buf;
    size_t len = protobuf_c_message_get_packed_size(&ssl->base);
    char *hex;
    /* two configs are the same when they pack to the same bytes */
    buf = tr_alloc(tx, len + 1);
    protobuf_c_message_pack(&ssl->base, buf);
    hex = tr_alloc(tx, len * 2 + 1);
    for (size_t i = 0; i < len; i++)
        sprintf(hex + 2 * i, "%02x", buf[i]);
    hex[len * 2] = '\0';
    return hex;
}

static Envoy__Config__Core__V3__TransportSocket *downstream_tls(tr_ctx *tx, const Sluice__V1__SslConfig *ssl,
                                                                const char *def_ns)
{
    Envoy__Extensions__TransportSockets__Tls__V3__DownstreamTlsContext *dc =
        TR_NEW(tx, envoy__extensions__transport_sockets__tls__v3__downstream_tls_context);
    Envoy__Extensions__TransportSockets__Tls__V3__CommonTlsContext *cc =
        TR_NEW(tx, envoy__extensions__transport_sockets__tls__v3__common_tls_context);
    Envoy__Config__Core__V3__TransportSocket *ts = TR_NEW(tx, envoy__config__core__v3__transport_socket);
    dc->common_tls_context = cc;
    switch (ssl->ssl_secrets_case) {
    case SLUICE__V1__SSL_CONFIG__SSL_SECRETS_SECRET_REF: {
        const Sluice__V1__Secret *sec = tr_find_secret(tx, ssl->secret_ref, def_ns);
        const char *sns = ssl->secret_ref->namespace_ && ssl->secret_ref->namespace_[0] ? ssl->secret_ref->namespace_ : def_ns;
        bool warn = tx->settings->gateway && tx->settings->gateway->validation &&
                    tx->settings->gateway->validation->warn_missing_tls_secret &&
                    tx->settings->gateway->validation->warn_missing_tls_secret->value;
        if (!sec) {
            if (warn)
                tr_warn(tx, "spec.sslConfig.secretRef: Secret %s.%s not found", sns, ssl->secret_ref->name);
            else
                tr_error(tx, "spec.sslConfig.secretRef: Secret %s.%s not found", sns, ssl->secret_ref->name);
            return NULL;
        }
        if (sec->spec->kind_case != SLUICE__V1__SECRET_SPEC__KIND_TLS || !sec->spec->tls->cert_chain[0] ||
            !sec->spec->tls->private_key[0]) {
            tr_error(tx, "spec.sslConfig.secretRef: Secret %s.%s is not a TLS secret with certChain and privateKey", sns,
                     ssl->secret_ref->name);
            return NULL;
        }
        TR_PUSH(tx, cc, tls_certificate_sds_secret_configs, tr_sds_secret(tx, sec, false));
        if (sec->spec->tls->root_ca[0]) {
            cc->validation_context_type_case =
                ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__COMMON_TLS_CONTEXT__VALIDATION_CONTEXT_TYPE_VALIDATION_CONTEXT_SDS_SECRET_CONFIG;
            cc->validation_context_sds_secret_config = tr_sds_secret(tx, sec, true);
            if (!(ssl->one_way_tls && ssl->one_way_tls->value))
                dc->require_client_certificate = tr_bool(tx, true);
        }
        break;
    }
    case SLUICE__V1__SSL_CONFIG__SSL_SECRETS_SSL_FILES: {
        Envoy__Extensions__TransportSockets__Tls__V3__TlsCertificate *c =
            TR_NEW(tx, envoy__extensions__transport_sockets__tls__v3__tls_certificate);
        const Sluice__V1__SslFiles *f = ssl->ssl_files;
        if (!f->tls_cert[0] || !f->tls_key[0]) {
            tr_error(tx, "spec.sslConfig.sslFiles: tlsCert and tlsKey are required");
            return NULL;
        }
        c->certificate_chain = TR_NEW(tx, envoy__config__core__v3__data_source);
        c->certificate_chain->specifier_case = ENVOY__CONFIG__CORE__V3__DATA_SOURCE__SPECIFIER_FILENAME;
        c->certificate_chain->filename = tr_strdup(tx, f->tls_cert);
        c->private_key = TR_NEW(tx, envoy__config__core__v3__data_source);
        c->private_key->specifier_case = ENVOY__CONFIG__CORE__V3__DATA_SOURCE__SPECIFIER_FILENAME;
        c->private_key->filename = tr_strdup(tx, f->tls_key);
        TR_PUSH(tx, cc, tls_certificates, c);
        if (f->root_ca[0]) {
            Envoy__Extensions__TransportSockets__Tls__V3__CertificateValidationContext *vc =
                TR_NEW(tx, envoy__extensions__transport_sockets__tls__v3__certificate_validation_context);
            vc->trusted_ca = TR_NEW(tx, envoy__config__core__v3__data_source);
            vc->trusted_ca->specifier_case = ENVOY__CONFIG__CORE__V3__DATA_SOURCE__SPECIFIER_FILENAME;
            vc->trusted_ca->filename = tr_strdup(tx, f->root_ca);
            cc->validation_context_type_case =
                ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__COMMON_TLS_CONTEXT__VALIDATION_CONTEXT_TYPE_VALIDATION_CONTEXT;
            cc->validation_context = vc;
            if (!(ssl->one_way_tls && ssl->one_way_tls->value))
                dc->require_client_certificate = tr_bool(tx, true);
        }
        break;
    }
    case SLUICE__V1__SSL_CONFIG__SSL_SECRETS_SDS: /* plugins/upstream_ssl.c */
        if (!ssl->sds->certificates_secret_name[0]) {
            tr_error(tx, "spec.sslConfig.sds.certificatesSecretName: required (the listener's certificate)");
            return NULL;
        }
        if (!tr_sds_config(tx, ssl->sds, "spec.sslConfig.sds", ssl->n_verify_subject_alt_name,
                           ssl->verify_subject_alt_name, cc))
            return NULL;
        if (ssl->sds->validation_context_name[0] && !(ssl->one_way_tls && ssl->one_way_tls->value))
            dc->require_client_certificate = tr_bool(tx, true);
        break;
    default:
        tr_error(tx, "spec.sslConfig: secretRef or sslFiles is required");
        return NULL;
    }
    if (ssl->n_verify_subject_alt_name && ssl->ssl_secrets_case != SLUICE__V1__SSL_CONFIG__SSL_SECRETS_SDS)
        tr_error(tx, "spec.sslConfig.verifySubjectAltName: not supported by Sluice yet (only with sds)");
    if (ssl->transport_socket_connect_timeout)
        tr_error(tx, "spec.sslConfig.transportSocketConnectTimeout: not supported by Sluice yet");
    if (ssl->parameters)
        cc->tls_params = tr_tls_params(tx, ssl->parameters);
    if (ssl->n_alpn_protocols) {
        for (size_t i = 0; i < ssl->n_alpn_protocols; i++)
            TR_PUSH(tx, cc, alpn_protocols, tr_strdup(tx, ssl->alpn_protocols[i]));
    } else {
        TR_PUSH(tx, cc, alpn_protocols, tr_strdup(tx, "h2"));
        TR_PUSH(tx, cc, alpn_protocols, tr_strdup(tx, "http/1.1"));
    }
    if (ssl->disable_tls_session_resumption && ssl->disable_tls_session_resumption->value) {
        dc->session_ticket_keys_type_case =
            ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__DOWNSTREAM_TLS_CONTEXT__SESSION_TICKET_KEYS_TYPE_DISABLE_STATELESS_SESSION_RESUMPTION;
        dc->disable_stateless_session_resumption = 1;
    }
    dc->ocsp_staple_policy = (Envoy__Extensions__TransportSockets__Tls__V3__DownstreamTlsContext__OcspStaplePolicy)
                                 ssl->ocsp_staple_policy;
    ts->name = tr_strdup(tx, "envoy.transport_sockets.tls");
    ts->config_type_case = ENVOY__CONFIG__CORE__V3__TRANSPORT_SOCKET__CONFIG_TYPE_TYPED_CONFIG;
    ts->typed_config = tr_any(tx, &dc->base);
    return ts;
}

static Envoy__Config__Listener__V3__Filter *hcm_filter(tr_ctx *tx, tr_hcm_t *hcm)
{
    Envoy__Config__Listener__V3__Filter *f = TR_NEW(tx, envoy__config__listener__v3__filter);
    f->name = tr_strdup(tx, "envoy.filters.network.http_connection_manager");
    f->config_type_case = ENVOY__CONFIG__LISTENER__V3__FILTER__CONFIG_TYPE_TYPED_CONFIG;
    f->typed_config = tr_any(tx, &hcm->base);
    return f;
}

static tr_hcm_t *new_hcm(tr_ctx *tx, const char *stat_prefix, const char *route_name)
{
    tr_hcm_t *hcm = TR_NEW(tx, envoy__extensions__filters__network__http_connection_manager__v3__http_connection_manager);
    hcm->stat_prefix = tr_strdup(tx, stat_prefix);
    hcm->route_specifier_case =
        ENVOY__EXTENSIONS__FILTERS__NETWORK__HTTP_CONNECTION_MANAGER__V3__HTTP_CONNECTION_MANAGER__ROUTE_SPECIFIER_RDS;
    hcm->rds = TR_NEW(tx, envoy__extensions__filters__network__http_connection_manager__v3__rds);
    hcm->rds->config_source = tr_ads(tx);
    hcm->rds->route_config_name = tr_strdup(tx, route_name);
    return hcm;
}

static void add_router(tr_ctx *tx, tr_hcm_t *hcm)
{
    Envoy__Extensions__Filters__Http__Router__V3__Router *router = TR_NEW(tx, envoy__extensions__filters__http__router__v3__router);
    Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpFilter *hf =
        TR_NEW(tx, envoy__extensions__filters__network__http_connection_manager__v3__http_filter);
    hf->name = tr_strdup(tx, "envoy.filters.http.router");
    hf->config_type_case =
        ENVOY__EXTENSIONS__FILTERS__NETWORK__HTTP_CONNECTION_MANAGER__V3__HTTP_FILTER__CONFIG_TYPE_TYPED_CONFIG;
    hf->typed_config = tr_any(tx, &router->base);
    TR_PUSH(tx, hcm, http_filters, hf);
}

static int cmp_vhost(const void *a, const void *b)
{
    const vs_item *x = a, *y = b;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* spec.grpcApiListeners: the gateway also serves gRPC proxyless clients. */
static bool gw_proxyless(const Sluice__V1__Gateway *g)
{
    return g->spec && g->spec->grpc_api_listeners && g->spec->grpc_api_listeners->value;
}

/* ---- a gateway's virtual services kept between translations (tr_gw_memo) ---- */

static uint64_t dom_hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h ? h : 1; /* 0 marks a free slot */
}

static tr_gw_memo *memo_find(tr_ctx *tx, const char *proxy, const char *listener)
{
    for (tr_gw_memo *m = tx->store->memos; m; m = m->next)
        if (strcmp(m->proxy, proxy) == 0 && strcmp(m->listener, listener) == 0) {
            m->seen = tx->store->translations;
            return m;
        }
    return NULL;
}

/* Forgets m (unlinks and frees it). */
static void memo_drop(tr_ctx *tx, tr_gw_memo *m)
{
    for (tr_gw_memo **pp = &tx->store->memos; *pp; pp = &(*pp)->next)
        if (*pp == m) {
            *pp = m->next;
            m->next = NULL;
            tr_gw_memo_free(m);
            return;
        }
}

/* Whether m holds for this translation: only VirtualServices changed
 * since (changed[i], filled here), none that m serves is rejected by now
 * (another gateway found it bad), and no route table they reached is. */
static bool memo_usable(tr_ctx *tx, const tr_gw_memo *m, bool *changed)
{
    const tr_bucket *vb = bucket(tx, K_VS);
    if (m->world != tx->store->world || m->vs_layout != tx->store->vs_layout || m->n != vb->n ||
        strcmp(m->settings_ns, tx->opts.settings_namespace) != 0)
        return false;
    for (size_t i = 0; i < vb->n; i++) {
        changed[i] = m->stamps[i] != vb->v[i].stamp;
        if (!changed[i] && m->c[i] && (*flag(tx, K_VS, i) & TR_REJECTED))
            return false;
    }
    for (size_t k = 0; k < m->n_con; k++)
        if (m->con[k].rt >= 0 && !changed[m->con[k].vs] &&
            (*flag(tx, K_RT, (size_t)m->con[k].rt) & TR_REJECTED))
            return false;
    return true;
}

static bool dom_add(tr_gw_memo *m, const char *d, uint32_t vs)
{
    size_t i;
    if ((m->n_dom + 1) * 2 > m->cap_dom) {
        size_t cap = m->cap_dom ? m->cap_dom * 2 : 64;
        tr_gw_dom *v = calloc(cap, sizeof *v);
        if (!v)
            return false;
        for (size_t j = 0; j < m->cap_dom; j++)
            if (m->dom[j].h) {
                for (i = m->dom[j].h & (cap - 1); v[i].h; i = (i + 1) & (cap - 1))
                    ;
                v[i] = m->dom[j];
            }
        free(m->dom);
        m->dom = v;
        m->cap_dom = cap;
    }
    for (i = dom_hash(d) & (m->cap_dom - 1); m->dom[i].h; i = (i + 1) & (m->cap_dom - 1))
        if (m->dom[i].h == dom_hash(d) && m->dom[i].vs == vs)
            return true; /* there already */
    m->dom[i].h = dom_hash(d);
    m->dom[i].vs = vs;
    m->n_dom++;
    return true;
}

/* Records what VirtualService i's kept virtual host c does besides its
 * bytes (plugins used, route table flags) and its domains. */
static bool memo_add(tr_gw_memo *m, size_t i, const tr_vh_cache *c)
{
    size_t need = m->n_con + c->n_used + c->n_rt;
    m->c[i] = c;
    m->vh[i].bytes = c->bytes;
    m->vh[i].len = c->len;
    m->vh[i].name = c->name;
    m->vh[i].domains = c->domains;
    m->vh[i].n_domains = c->n_domains;
    if (need > m->cap_con) {
        size_t cap = m->cap_con ? m->cap_con : 16;
        tr_gw_contrib *v;
        while (cap < need)
            cap *= 2;
        if (!(v = realloc(m->con, cap * sizeof *v)))
            return false;
        m->con = v;
        m->cap_con = cap;
    }
    for (size_t k = 0; k < c->n_used; k++) {
        tr_gw_contrib x = {(uint32_t)i, -1, 0, c->used[k]};
        m->con[m->n_con++] = x;
    }
    for (size_t k = 0; k < c->n_rt; k++) {
        tr_gw_contrib x = {(uint32_t)i, c->rt_idx[k], c->rt_flags[k], NULL};
        m->con[m->n_con++] = x;
    }
    for (size_t k = 0; k < c->n_domains; k++)
        if (!dom_add(m, c->domains[k], (uint32_t)i))
            return false;
    return true;
}

/* Keeps (or brings up to date) the memo of the gateway being translated.
 * got[i]: the kept virtual host VirtualService i was served from; served[i]:
 * 1 served from got[i] without reports, 2 served otherwise (or left out
 * when selected), 0 not selected. changed: the VirtualServices translated
 * over the memo m, or NULL (m NULL: made anew). */
static void memo_keep(tr_ctx *tx, tr_gw_memo *m, const tr_gateway *gw, const tr_vh_cache *const *got,
                      const uint8_t *served, const bool *changed, bool dropped)
{
    const tr_bucket *vb = bucket(tx, K_VS);
    bool ok = !dropped;
    for (size_t i = 0; i < vb->n && ok; i++)
        ok = (!changed || changed[i]) && served[i] == 2 ? false : ok;
    if (!ok) {
        if (m)
            memo_drop(tx, m);
        return;
    }
    if (m && changed) { /* the changed ones only */
        size_t k = 0;
        for (size_t i = 0; i < vb->n && m->rcfg; i++)
            if (changed[i] && (m->c[i] || served[i])) { /* other virtual hosts */
                tr_blob_unref(m->rcfg);
                m->rcfg = NULL;
            }
        for (size_t j = 0; j < m->n_con; j++)
            if (!changed[m->con[j].vs])
                m->con[k++] = m->con[j];
        m->n_con = k;
        for (size_t i = 0; i < vb->n; i++) {
            if (!changed[i])
                continue;
            m->stamps[i] = vb->v[i].stamp;
            m->c[i] = NULL;
            if (served[i] == 1 && !memo_add(m, i, got[i])) {
                memo_drop(tx, m);
                return;
            }
        }
        /* stale domains (of versions gone) are skipped when looked up; let
         * them not pile up */
        if (m->n_dom > 4 * (vb->n + 16)) {
            free(m->dom);
            m->dom = NULL;
            m->n_dom = m->cap_dom = 0;
            for (size_t i = 0; i < vb->n; i++)
                for (size_t d = 0; m->c[i] && d < m->c[i]->n_domains; d++)
                    if (!dom_add(m, m->c[i]->domains[d], (uint32_t)i)) {
                        memo_drop(tx, m);
                        return;
                    }
        }
        return;
    }
    if (m)
        memo_drop(tx, m);
    if (!(m = calloc(1, sizeof *m)))
        return;
    m->next = tx->store->memos;
    tx->store->memos = m; /* linked first: freed with the store whatever happens */
    m->seen = tx->store->translations;
    if (!(m->proxy = strdup(gw->proxy)) || !(m->listener = strdup(gw->listener_name)) ||
        !(m->settings_ns = strdup(tx->opts.settings_namespace)) ||
        !(m->stamps = calloc(vb->n + 1, sizeof *m->stamps)) || !(m->c = calloc(vb->n + 1, sizeof *m->c)) ||
        !(m->vh = calloc(vb->n + 1, sizeof *m->vh))) {
        memo_drop(tx, m);
        return;
    }
    m->world = tx->store->world;
    m->vs_layout = tx->store->vs_layout;
    m->n = vb->n;
    for (size_t i = 0; i < vb->n; i++) {
        m->stamps[i] = vb->v[i].stamp;
        if (served[i] == 1 && !memo_add(m, i, got[i])) {
            memo_drop(tx, m);
            return;
        }
    }
}

/* Whether a changed virtual service's domain may be contested: one of the
 * unchanged ones m serves, or another changed one, has it. */
static bool memo_contested(const tr_gw_memo *m, const bool *changed, const vs_item *items, size_t n_items)
{
    size_t n_changed = 0;
    for (size_t k = 0; k < n_items; k++)
        n_changed += changed[items[k].idx];
    if (n_changed > 64)
        return true; /* not worth it: look at all of them */
    for (size_t k = 0; k < n_items; k++) {
        const tr_vhost_t *vh = items[k].vh;
        if (!changed[items[k].idx])
            continue;
        for (size_t d = 0; d < vh->n_domains; d++) {
            uint64_t h = dom_hash(vh->domains[d]);
            for (size_t i = h & (m->cap_dom - 1); m->cap_dom && m->dom[i].h; i = (i + 1) & (m->cap_dom - 1)) {
                const tr_vh_cache *c = m->c[m->dom[i].vs];
                if (m->dom[i].h != h || changed[m->dom[i].vs] || !c)
                    continue;
                for (size_t j = 0; j < c->n_domains; j++)
                    if (strcmp(c->domains[j], vh->domains[d]) == 0)
                        return true;
            }
            for (size_t o = 0; o < n_items; o++)
                if (o != k && changed[items[o].idx])
                    for (size_t j = 0; j < items[o].vh->n_domains; j++)
                        if (strcmp(items[o].vh->domains[j], vh->domains[d]) == 0)
                            return true;
        }
    }
    return false;
}

/* The virtual host of a kept one the memo serves (its bytes are spliced),
 * from the memo's copy of what it needs (not the kept one: one cache miss
 * less for each of thousands). */
static tr_vhost_t *vh_of_kept(tr_ctx *tx, const struct tr_gw_vh *k)
{
    tr_vhost_t *vh = TR_NEW(tx, envoy__config__route__v3__virtual_host);
    vh->name = k->name;
    vh->domains = k->domains; /* the kept strings: read only, valid through this translation */
    vh->n_domains = k->n_domains;
    bytes_put(tx, &tx->vh_bytes, vh, k->bytes, k->len);
    return vh;
}

/* Holds a reference to b until the translation ends (tr_ctx_free). */
static bool tr_hold(tr_ctx *tx, tr_blob *b)
{
    if (tx->n_held == tx->cap_held) {
        size_t cap = tx->cap_held ? tx->cap_held * 2 : 8;
        tr_blob **v = realloc(tx->held, cap * sizeof *v);
        if (!v)
            return false;
        tx->held = v;
        tx->cap_held = cap;
    }
    tx->held[tx->n_held++] = b;
    return true;
}

/* The unchanged virtual services' virtual hosts, when translate_gateway()
 * left them out (items[k].vh NULL: the route was to be patched). */
static void vh_materialize(tr_ctx *tx, const tr_gw_memo *m, vs_item *items, size_t n_items)
{
    bytes_reserve(tx, &tx->vh_bytes, tx->vh_bytes.n + n_items);
    for (size_t k = 0; k < n_items; k++)
        if (!items[k].vh)
            items[k].vh = vh_of_kept(tx, &m->vh[items[k].idx]);
}

/* The gateway's route configuration as the memo's last one (m->rcfg, in
 * parts) with only the changed virtual services' parts replaced, taken
 * out or put in: the same bytes as packing items (in order, none dropped)
 * again, without visiting the unchanged ones' virtual hosts. items[k].vh
 * is NULL for an unchanged one, which the memo serves. Called before the
 * memo is brought up to date (m->c and m->vh as the last route had them).
 * A new reference, held by tx until the translation ends; NULL when the
 * last route is not what the memo says (every part is checked by pointer),
 * or out of memory: then pack items as usual. */
static tr_blob *route_patched(tr_ctx *tx, const tr_gw_memo *m, const bool *changed, const vs_item *items,
                              size_t n_items, const char *rname)
{
    const tr_blob *old = m->rcfg;
    const tr_rparts *op = old->parts;
    const tr_bucket *vb = bucket(tx, K_VS);
    size_t *cold, n_cold = 0, ci = 0, k = 0, moved = 0, n_new = 0;
    tr_rparts *rp = NULL;
    uint8_t *rest = NULL;
    tr_blob *b = NULL;

    if (!op || strcmp(old->name, rname) != 0)
        return NULL;
    /* the changed ones the last route served (their parts go or are replaced) */
    cold = tr_alloc(tx, 65 * sizeof *cold);
    for (size_t i = 0; i < vb->n; i++)
        if (changed[i] && m->c[i]) {
            if (n_cold == 64)
                return NULL;
            cold[n_cold++] = i;
        }
    for (size_t j = 0; j < n_items; j++) {
        if (items[j].dropped)
            return NULL;
        if (items[j].vh)
            moved++;
    }
    n_new = n_items;
    if (!(rp = calloc(1, sizeof *rp)) || !(rp->v = calloc(n_new + 1, sizeof *rp->v)) ||
        !(rp->vh = calloc(n_new + 1, sizeof *rp->vh)))
        goto fail;
    for (size_t j = 0; j < n_items; j++) {
        size_t x = (size_t)items[j].idx;
        tr_blob *vh;
        while (ci < n_cold && cold[ci] <= x) { /* a changed one's old part: gone or replaced */
            if (k >= op->pub.n || op->v[k].data != m->vh[cold[ci]].bytes)
                goto fail;
            k++;
            ci++;
        }
        if (items[j].vh) { /* changed: its virtual host now */
            if (!(vh = vh_blob(tx, items[j].vh)))
                goto fail;
            rparts_push(rp, vh);
            tr_blob_unref(vh);
            continue;
        }
        if (k + 8 < op->pub.n)
            __builtin_prefetch(op->vh[k + 8], 1);
        if (changed[x] || k >= op->pub.n || op->v[k].data != m->vh[x].bytes)
            goto fail; /* not the part the memo says */
        rparts_push(rp, op->vh[k++]);
    }
    for (; ci < n_cold; ci++, k++)
        if (k >= op->pub.n || op->v[k].data != m->vh[cold[ci]].bytes)
            goto fail;
    if (k != op->pub.n)
        goto fail;
    if (!moved && !n_cold && (tx->opts.route_parts_only || !op->no_whole)) {
        /* nothing of it changed: the last one itself */
        tr_rparts_free(rp);
        b = tr_blob_ref((tr_blob *)old);
    } else {
        if (!(rest = malloc(op->pub.head_len ? op->pub.head_len : 1)))
            goto fail;
        memcpy(rest, op->pub.head, op->pub.head_len);
        b = route_blob(tx, rp, rest, op->pub.head_len, rname); /* takes rp and rest */
    }
    rp = NULL;
    if (b && !tr_hold(tx, b)) {
        tr_blob_unref(b);
        b = NULL;
    }
    return b;
fail:
    tr_rparts_free(rp);
    return NULL;
}

static void translate_gateway(tr_ctx *tx, const gw_item *g, const char *proxy, tr_map *ports)
{
    const Sluice__V1__GatewaySpec *spec = g->gw->spec;
    tr_gateway gw = {0};
    tr_cur gcur = {K_GATEWAY, g->ns, g->name, 0};
    tr_cur *saved = tx->cur;
    const char *bind = spec->bind_address && spec->bind_address[0] ? spec->bind_address : "::";
    const char *lname = tr_printf(tx, "listener-%s-%u", bind, spec->bind_port);
    const char *rname = tr_printf(tx, "%s-routes", lname);
    bool grpc = gw_proxyless(g->gw);
    tr_bucket *vb = bucket(tx, K_VS);
    vs_item *items = tr_alloc(tx, (vb->n + 1) * sizeof *items);
    size_t n_items = 0;
    tr_map domains = {0};
    Envoy__Config__Route__V3__RouteConfiguration *rcfg;
    tr_listener_t *l;
    tr_hcm_t *hcm;
    tr_filters filters = {0};
    unsigned char addr[16];
    const tr_vh_cache **got;
    uint8_t *served;
    tr_gw_memo *memo;
    bool *changed = NULL;
    bool lazy = false, contested;
    tr_blob *patched = NULL;

    tx->cur = g->idx >= 0 ? &gcur : NULL;
    gw.gw = g->gw;
    gw.proxy = proxy;
    gw.listener_name = lname;
    gw.proxyless = grpc;
    if (annotation(g->gw->metadata, "sluice.io/grpc-api-listeners"))
        tr_warn(tx, "metadata.annotations[sluice.io/grpc-api-listeners]: ignored; set spec.grpcApiListeners: true");

    if (spec->bind_port == 0 || spec->bind_port > 65535) {
        tr_error(tx, "spec.bindPort: %u is not a port (1-65535)", spec->bind_port);
        goto out;
    }
    if (inet_pton(AF_INET6, bind, addr) != 1 && inet_pton(AF_INET, bind, addr) != 1) {
        tr_error(tx, "spec.bindAddress: \"%s\" is not an IP address", bind);
        goto out;
    }
    if (spec->gateway_type_case != SLUICE__V1__GATEWAY_SPEC__GATEWAY_TYPE_HTTP_GATEWAY) {
        tr_error(tx, "spec.httpGateway: required (the only gateway type Sluice supports)");
        goto out;
    }
    {
        const char *port_key = tr_printf(tx, "%u", spec->bind_port);
        const gw_item *other = tr_map_get(ports, port_key);
        if (other) {
            tr_error(tx, "spec.bindPort: port %u of proxy %s is already used by Gateway %s.%s", spec->bind_port, proxy,
                     other->ns, other->name);
            goto out;
        }
        tr_map_put(tx, ports, port_key, (void *)g);
    }
    /* spec.useProxyProto: plugins/listener.c */
    if (spec->options)
        check_fields(tx, &tx->supported, &spec->options->base, "spec.options");
    if (spec->http_gateway->options)
        check_fields(tx, &tx->supported, &spec->http_gateway->options->base, "spec.httpGateway.options");
    {
        const Sluice__V1__HttpGateway *hg = spec->http_gateway;
        int ways = (hg->n_virtual_services > 0) + (hg->n_virtual_service_selector > 0) +
                   (hg->virtual_service_expressions != NULL);
        if (ways > 1)
            tr_error(tx, "spec.httpGateway: use at most one of virtualServices, virtualServiceSelector and "
                         "virtualServiceExpressions");
        for (size_t i = 0; i < hg->n_virtual_services; i++) {
            const Sluice__V1__ResourceRef *r = hg->virtual_services[i];
            const char *ns = r->namespace_ && r->namespace_[0] ? r->namespace_ : g->ns;
            if (tr_bucket_find(vb, ns, r->name) < 0)
                tr_warn(tx, "spec.httpGateway.virtualServices[%zu]: VirtualService %s.%s not found", i, ns, r->name);
        }
    }
    if (gcur.errors)
        goto out;

    /* Virtual services -> virtual hosts: the unchanged ones from the
     * gateway's memo when only virtual services changed since. */
    tx->n_used = 0;
    got = tr_alloc(tx, (vb->n + 1) * sizeof *got);
    served = tr_alloc(tx, vb->n + 1);
    memset(got, 0, (vb->n + 1) * sizeof *got);
    memset(served, 0, vb->n + 1);
    if ((memo = memo_find(tx, proxy, lname)) != NULL) {
        changed = tr_alloc(tx, (vb->n + 1) * sizeof *changed);
        if (!memo_usable(tx, memo, changed))
            changed = NULL;
    }
    /* The route patched from the memo's last one (route_patched): the
     * unchanged ones' virtual hosts are not even made, unless needed. */
    lazy = changed && !spec->ssl && !grpc && memo->rcfg && memo->rcfg->parts;
    if (changed && !lazy) /* the kept bytes of every one */
        bytes_reserve(tx, &tx->vh_bytes, tx->vh_bytes.n + vb->n);
    if (changed) /* what the unchanged ones do besides */
        for (size_t k = 0; k < memo->n_con; k++) {
            const tr_gw_contrib *x = &memo->con[k];
            if (changed[x->vs])
                continue;
            if (x->use)
                tr_use(tx, x->use);
            else
                *flag(tx, K_RT, (size_t)x->rt) |= x->flags;
        }
    for (size_t i = 0; i < vb->n; i++) {
        const tr_entry *e = &vb->v[i];
        const Sluice__V1__VirtualService *vs = (const Sluice__V1__VirtualService *)e->msg;
        uint8_t *fl = flag(tx, K_VS, i);
        tr_cur vcur = cur_of(K_VS, e);
        tr_vhost_t *vh;
        bool has_ssl;
        if (changed && !changed[i]) {
            if (!(got[i] = memo->c[i]))
                continue;
            *fl |= TR_SEEN;
            served[i] = 1;
            items[n_items].idx = (long)i;
            items[n_items].vs = vs;
            items[n_items].vh = lazy ? NULL : vh_of_kept(tx, &memo->vh[i]);
            items[n_items].dropped = false;
            n_items++;
            continue;
        }
        has_ssl = vs->spec && vs->spec->ssl_config;
        if (!vs_selected(spec->http_gateway, g->ns, e))
            continue;
        if (has_ssl != (bool)spec->ssl)
            continue;
        *fl |= TR_SEEN;
        served[i] = 2;
        if (*fl & TR_REJECTED) {
            if (!(*fl & TR_USED_GOOD))
                continue;
            vs = (const Sluice__V1__VirtualService *)e->good;
            if ((vs->spec && vs->spec->ssl_config) != (bool)spec->ssl)
                continue; /* the version served is not for this gateway */
            tx->cur = NULL;
            vh = translate_vs(tx, &gw, vs);
        } else if ((vh = vh_cached(tx, e, &gw, &got[i])) != NULL) {
            /* unchanged since an earlier translation: replayed */
            served[i] = got[i]->n_reps ? 2 : 1;
        } else {
            tr_rec rec;
            memset(&rec, 0, sizeof rec);
            tx->cur = &vcur;
            tx->rec = &rec;
            vh = translate_vs(tx, &gw, vs);
            tx->rec = NULL;
            if (!vcur.errors && !rec.stateful) {
                got[i] = vh_keep(tx, (tr_entry *)e, &gw, vh, &rec);
                served[i] = rec.n_reps ? 2 : 1;
            }
            if (vcur.errors) {
                *fl |= TR_REJECTED;
                if (vh)
                    tr_forget_vhost(tx, vh->name);
                vh = NULL;
                if (e->good && e->good != e->msg) {
                    *fl |= TR_USED_GOOD;
                    vs = (const Sluice__V1__VirtualService *)e->good;
                    tx->cur = NULL; /* its problems were reported when it was current */
                    if ((vs->spec && vs->spec->ssl_config) == (bool)spec->ssl)
                        vh = translate_vs(tx, &gw, vs);
                }
            }
        }
        if (!vh)
            continue;
        items[n_items].idx = (long)i;
        items[n_items].vs = vs;
        items[n_items].vh = vh;
        items[n_items].dropped = false;
        n_items++;
    }
    tx->cur = NULL;

    /* Domains are unique per gateway: the older virtual service keeps a
     * contested domain, the newer one is rejected. None are contested when
     * the memo's were not and no changed one's are. */
    contested = !changed || memo_contested(memo, changed, items, n_items);
    if (lazy && (contested || n_items < 2)) {
        vh_materialize(tx, memo, items, n_items);
        lazy = false;
    }
    if (contested) {
        /* oldest first: (KV revision, position) */
        rev_order *order = tr_alloc(tx, (n_items + 1) * sizeof *order);
        for (size_t i = 0; i < n_items; i++) {
            order[i].rev = vb->v[items[i].idx].rev;
            order[i].idx = items[i].idx;
            order[i].item = i;
        }
        qsort(order, n_items, sizeof *order, cmp_rev_order);
        for (size_t k = 0; k < n_items; k++) {
            vs_item *it = &items[order[k].item];
            const tr_entry *e = &vb->v[it->idx];
            const char *conflict = NULL, *with = NULL;
            for (size_t d = 0; d < it->vh->n_domains && !conflict; d++) {
                const vs_item *o = tr_map_get(&domains, it->vh->domains[d]);
                if (o) {
                    conflict = it->vh->domains[d];
                    with = tr_printf(tx, "%s.%s", vb->v[o->idx].ns, vb->v[o->idx].name);
                }
            }
            if (conflict) {
                tr_cur vcur = cur_of(K_VS, e);
                tx->cur = &vcur;
                tr_error(tx, "domain conflict: the domain \"%s\" is present in other virtual services that belong to "
                             "the same Gateway as this one (%s.%s): [%s]",
                         conflict, g->ns, g->name, with);
                tx->cur = NULL;
                *flag(tx, K_VS, (size_t)it->idx) |= TR_REJECTED;
                it->dropped = true;
                tr_forget_vhost(tx, it->vh->name);
                continue;
            }
            for (size_t d = 0; d < it->vh->n_domains; d++)
                tr_map_put(tx, &domains, it->vh->domains[d], it);
        }
    }
    if (lazy && !(patched = route_patched(tx, memo, changed, items, n_items, rname))) {
        vh_materialize(tx, memo, items, n_items);
        lazy = false;
    }
    {
        bool dropped = false;
        for (size_t k = 0; k < n_items && !dropped; k++)
            dropped = items[k].dropped;
        memo_keep(tx, changed ? memo : memo_find(tx, proxy, lname), &gw, got, served, changed, dropped);
    }

    /* TLS: one filter chain per SNI set; the same set with another
     * certificate is a conflict (the older virtual service keeps it). */
    typedef struct chain_item {
        const char *sni;
        const char *identity;
        const vs_item *owner;
        Envoy__Config__Listener__V3__FilterChain *fc;
    } chain_item;
    tr_map chains = {0};
    chain_item **chain_list = tr_alloc(tx, (n_items + 1) * sizeof *chain_list);
    size_t n_chains = 0;
    if (spec->ssl) {
        for (size_t k = 0; k < n_items; k++) {
            vs_item *it = &items[k];
            const Sluice__V1__SslConfig *ssl = it->vs->spec->ssl_config;
            const char *key, *id;
            chain_item *ci;
            tr_cur vcur = cur_of(K_VS, &vb->v[it->idx]);
            if (it->dropped)
                continue;
            key = sni_key(tx, ssl);
            id = ssl_identity(tx, ssl);
            ci = tr_map_get(&chains, key);
            tx->cur = (*flag(tx, K_VS, (size_t)it->idx) & TR_REJECTED) ? NULL : &vcur;
            if (ci) {
                if (strcmp(ci->identity, id) != 0) {
                    const tr_entry *o = &vb->v[ci->owner->idx];
                    tr_error(tx, "spec.sslConfig: the SNI domains [%s] of Gateway %s.%s are already served with another "
                                 "TLS configuration by VirtualService %s.%s",
                             key, g->ns, g->name, o->ns, o->name);
                    *flag(tx, K_VS, (size_t)it->idx) |= TR_REJECTED;
                    it->dropped = true;
                    tr_forget_vhost(tx, it->vh->name);
                }
                tx->cur = NULL;
                continue;
            }
            ci = tr_alloc(tx, sizeof *ci);
            ci->sni = key;
            ci->identity = id;
            ci->owner = it;
            ci->fc = TR_NEW(tx, envoy__config__listener__v3__filter_chain);
            {
                int before = vcur.errors;
                ci->fc->transport_socket = downstream_tls(tx, ssl, md_ns(it->vs->metadata));
                if (!ci->fc->transport_socket) {
                    if (tx->cur && vcur.errors > before)
                        *flag(tx, K_VS, (size_t)it->idx) |= TR_REJECTED;
                    it->dropped = true;
                    tr_forget_vhost(tx, it->vh->name);
                    tx->cur = NULL;
                    continue;
                }
            }
            if (ssl->n_sni_domains) {
                ci->fc->filter_chain_match = TR_NEW(tx, envoy__config__listener__v3__filter_chain_match);
                for (size_t d = 0; d < ssl->n_sni_domains; d++)
                    TR_PUSH(tx, ci->fc->filter_chain_match, server_names, tr_strdup(tx, ssl->sni_domains[d]));
            }
            ci->fc->name = tr_printf(tx, "%s-%zu", lname, n_chains);
            tr_map_put(tx, &chains, key, ci);
            chain_list[n_chains++] = ci;
            tx->cur = NULL;
        }
    }

    /* The route configuration. */
    rcfg = TR_NEW(tx, envoy__config__route__v3__route_configuration);
    rcfg->name = tr_strdup(tx, rname);
    {
        size_t k = 1;
        while (k < n_items && cmp_vhost(&items[k - 1], &items[k]) <= 0)
            k++;
        if (k < n_items) /* usually in order already */
            qsort(items, n_items, sizeof *items, cmp_vhost);
    }
    for (size_t k = 0; k < n_items && !patched; k++)
        if (!items[k].dropped)
            TR_PUSH(tx, rcfg, virtual_hosts, items[k].vh);
    if (!patched && rcfg->n_virtual_hosts == 0 &&
        !(tx->settings->gateway && tx->settings->gateway->translate_empty_gateways &&
          tx->settings->gateway->translate_empty_gateways->value))
        goto out; /* as Gloo: no virtual service, no listener */
    if (spec->ssl && n_chains == 0)
        goto out;
    /* the same virtual hosts as the memo's route configuration: its bytes */
    memo = changed ? memo_find(tx, proxy, lname) : NULL;
    if (patched) {
        if (tr_out_add_shared(tx, SL_XDS_ROUTE, patched) && memo)
            tx->out[SL_XDS_ROUTE][tx->n_out[SL_XDS_ROUTE] - 1]->keep_in = memo;
    } else if (memo && memo->rcfg && strcmp(memo->rcfg->name, rname) == 0 &&
        (tx->opts.route_parts_only || !memo->rcfg->parts || !memo->rcfg->parts->no_whole)) {
        tr_out_add_shared(tx, SL_XDS_ROUTE, memo->rcfg);
    } else if (tr_out_add(tx, SL_XDS_ROUTE, rname, &rcfg->base) &&
               (memo = memo_find(tx, proxy, lname)) != NULL) {
        tx->out[SL_XDS_ROUTE][tx->n_out[SL_XDS_ROUTE] - 1]->keep_in = memo;
    }

    /* The HTTP connection manager and its filters. */
    tx->cur = g->idx >= 0 ? &gcur : NULL;
    hcm = new_hcm(tx, "http", rname);
    {
        for (size_t p = 0; p < sl_tr_plugin_count; p++)
            if (sl_tr_plugins[p]->http_filters)
                sl_tr_plugins[p]->http_filters(tx, &gw, hcm, &filters);
        for (size_t i = 1; i < filters.n; i++) /* stable insertion sort by stage */
            for (size_t j = i; j > 0 && filters.v[j - 1].stage > filters.v[j].stage; j--) {
                struct tr_filter_item t = filters.v[j - 1];
                filters.v[j - 1] = filters.v[j];
                filters.v[j] = t;
            }
        for (size_t i = 0; i < filters.n; i++)
            TR_PUSH(tx, hcm, http_filters, filters.v[i].f);
    }
    add_router(tx, hcm);

    /* The listener. */
    l = TR_NEW(tx, envoy__config__listener__v3__listener);
    l->name = tr_strdup(tx, lname);
    l->address = TR_NEW(tx, envoy__config__core__v3__address);
    l->address->address_case = ENVOY__CONFIG__CORE__V3__ADDRESS__ADDRESS_SOCKET_ADDRESS;
    l->address->socket_address = TR_NEW(tx, envoy__config__core__v3__socket_address);
    l->address->socket_address->address = tr_strdup(tx, bind);
    l->address->socket_address->port_specifier_case = ENVOY__CONFIG__CORE__V3__SOCKET_ADDRESS__PORT_SPECIFIER_PORT_VALUE;
    l->address->socket_address->port_value = spec->bind_port;
    if (strcmp(bind, "::") == 0)
        l->address->socket_address->ipv4_compat = 1;
    if (spec->ssl) {
        Envoy__Config__Listener__V3__ListenerFilter *lf = TR_NEW(tx, envoy__config__listener__v3__listener_filter);
        Envoy__Extensions__Filters__Listener__TlsInspector__V3__TlsInspector *ti =
            TR_NEW(tx, envoy__extensions__filters__listener__tls_inspector__v3__tls_inspector);
        Envoy__Config__Listener__V3__Filter *f = hcm_filter(tx, hcm);
        lf->name = tr_strdup(tx, "envoy.filters.listener.tls_inspector");
        lf->config_type_case = ENVOY__CONFIG__LISTENER__V3__LISTENER_FILTER__CONFIG_TYPE_TYPED_CONFIG;
        lf->typed_config = tr_any(tx, &ti->base);
        TR_PUSH(tx, l, listener_filters, lf);
        for (size_t c = 0; c < n_chains; c++) {
            TR_PUSH(tx, chain_list[c]->fc, filters, f);
            TR_PUSH(tx, l, filter_chains, chain_list[c]->fc);
        }
    } else {
        Envoy__Config__Listener__V3__FilterChain *fc = TR_NEW(tx, envoy__config__listener__v3__filter_chain);
        TR_PUSH(tx, fc, filters, hcm_filter(tx, hcm));
        TR_PUSH(tx, l, filter_chains, fc);
    }
    for (size_t p = 0; p < sl_tr_plugin_count; p++)
        if (sl_tr_plugins[p]->listener)
            sl_tr_plugins[p]->listener(tx, &gw, l);
    if (!tr_out_add(tx, SL_XDS_LISTENER, lname, &l->base))
        tr_error(tx, "listener %s of proxy %s is defined twice", lname, proxy);

    /* gRPC proxyless clients: a listener named as each domain, holding an
     * api_listener HTTP connection manager with only the router. */
    if (gw.proxyless) {
        tr_hcm_t *ah = new_hcm(tx, tr_printf(tx, "grpc-%s", lname), rname);
        add_router(tx, ah);
        for (size_t k = 0; k < n_items; k++) {
            if (items[k].dropped)
                continue;
            for (size_t d = 0; d < items[k].vh->n_domains; d++) {
                const char *dom = items[k].vh->domains[d];
                tr_listener_t *al;
                if (strchr(dom, '*'))
                    continue;
                al = TR_NEW(tx, envoy__config__listener__v3__listener);
                al->name = tr_strdup(tx, dom);
                al->api_listener = TR_NEW(tx, envoy__config__listener__v3__api_listener);
                al->api_listener->api_listener = tr_any(tx, &ah->base);
                if (!tr_out_add(tx, SL_XDS_LISTENER, dom, &al->base))
                    tr_warn(tx, "gRPC listener %s is defined by more than one gateway of proxy %s; the first is served",
                            dom, proxy);
            }
        }
    }
out:
    tx->cur = saved;
}

/* ------------------------------------------------------------------------ */
/* upstreams                                                                */

static bool is_ip(const char *s, bool *v6)
{
    unsigned char buf[16];
    *v6 = false;
    if (inet_pton(AF_INET, s, buf) == 1)
        return true;
    if (inet_pton(AF_INET6, s, buf) == 1) {
        *v6 = true;
        return true;
    }
    return false;
}

static Envoy__Config__Endpoint__V3__LbEndpoint *lb_endpoint(tr_ctx *tx, const char *addr, uint32_t port,
                                                            const char *hostname, uint32_t weight)
{
    Envoy__Config__Endpoint__V3__LbEndpoint *le = TR_NEW(tx, envoy__config__endpoint__v3__lb_endpoint);
    Envoy__Config__Endpoint__V3__Endpoint *ep = TR_NEW(tx, envoy__config__endpoint__v3__endpoint);
    ep->address = TR_NEW(tx, envoy__config__core__v3__address);
    ep->address->address_case = ENVOY__CONFIG__CORE__V3__ADDRESS__ADDRESS_SOCKET_ADDRESS;
    ep->address->socket_address = TR_NEW(tx, envoy__config__core__v3__socket_address);
    ep->address->socket_address->address = tr_strdup(tx, addr);
    ep->address->socket_address->port_specifier_case = ENVOY__CONFIG__CORE__V3__SOCKET_ADDRESS__PORT_SPECIFIER_PORT_VALUE;
    ep->address->socket_address->port_value = port;
    if (hostname && hostname[0])
        ep->hostname = tr_strdup(tx, hostname);
    le->host_identifier_case = ENVOY__CONFIG__ENDPOINT__V3__LB_ENDPOINT__HOST_IDENTIFIER_ENDPOINT;
    le->endpoint = ep;
    if (weight)
        le->load_balancing_weight = tr_u32(tx, weight);
    return le;
}

/* The locality group of a CLA (created on first use). */
static Envoy__Config__Endpoint__V3__LocalityLbEndpoints *locality(tr_ctx *tx, tr_cla_t *cla,
                                                                  const Sluice__V1__Locality *loc, uint32_t priority)
{
    const char *r = loc ? loc->region : "", *z = loc ? loc->zone : "", *s = loc ? loc->sub_zone : "";
    Envoy__Config__Endpoint__V3__LocalityLbEndpoints *lle;
    for (size_t i = 0; i < cla->n_endpoints; i++) {
        lle = cla->endpoints[i];
        if (lle->priority == priority && strcmp(lle->locality ? lle->locality->region : "", r) == 0 &&
            strcmp(lle->locality ? lle->locality->zone : "", z) == 0 &&
            strcmp(lle->locality ? lle->locality->sub_zone : "", s) == 0)
            return lle;
    }
    lle = TR_NEW(tx, envoy__config__endpoint__v3__locality_lb_endpoints);
    lle->priority = priority;
    lle->load_balancing_weight = tr_u32(tx, 1);
    /* Always present, empty when unknown: gRPC's xDS clients (python3-grpcio
     * 1.51) NACK an EDS locality group without one ("endpoints[0].locality
     * field not present"); Envoy takes an empty Locality as none. */
    lle->locality = TR_NEW(tx, envoy__config__core__v3__locality);
    lle->locality->region = tr_strdup(tx, r);
    lle->locality->zone = tr_strdup(tx, z);
    lle->locality->sub_zone = tr_strdup(tx, s);
    TR_PUSH(tx, cla, endpoints, lle);
    return lle;
}

static bool cla_has(const tr_cla_t *cla, const char *addr, uint32_t port)
{
    for (size_t i = 0; i < cla->n_endpoints; i++)
        for (size_t j = 0; j < cla->endpoints[i]->n_lb_endpoints; j++) {
            const Envoy__Config__Core__V3__SocketAddress *sa =
                cla->endpoints[i]->lb_endpoints[j]->endpoint->address->socket_address;
            if (sa->port_value == port && strcmp(sa->address, addr) == 0)
                return true;
        }
    return false;
}

typedef struct up_out {
    tr_cluster_t *cluster;
    tr_cla_t *cla; /* EDS only */
    /* Secrets the cluster refers to over SDS (upstream TLS), to add to
     * every proxy the cluster is part of. */
    tr_out **secrets;
    size_t n_secrets;
    /* Or the packed bytes kept from an earlier translation (cluster NULL). */
    const tr_up_cache *cached;
    const char *cluster_name;
} up_out;

/* Builds the cluster (and its CLA when EDS) of an upstream. */
static up_out build_upstream(tr_ctx *tx, const Sluice__V1__Upstream *up, const Sluice__V1__EndpointSet *eps,
                             bool proxyless)
{
    up_out o = {0};
    const Sluice__V1__UpstreamSpec *spec = up->spec;
    const char *ns = md_ns(up->metadata);
    tr_cluster_t *c = TR_NEW(tx, envoy__config__cluster__v3__cluster);
    tr_cla_t *cla = TR_NEW(tx, envoy__config__endpoint__v3__cluster_load_assignment);
    tr_upstream_in in = {0};
    bool eds = false;

    c->name = tr_cluster_name(tx, up->metadata->name, ns);
    c->connect_timeout = tr_dur_ms(tx, 5000);
    c->cluster_discovery_type_case = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__CLUSTER_DISCOVERY_TYPE_TYPE;
    c->type = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__STATIC;
    cla->cluster_name = tr_strdup(tx, c->name);
    in.up = up;
    in.eps = eps;
    in.cluster_name = c->name;
    in.proxyless = proxyless;
    if (!spec) {
        tr_error(tx, "spec: required");
        return o;
    }
    check_fields(tx, &tx->supported, &spec->base, "spec");

    if (eps || spec->upstream_type_case == SLUICE__V1__UPSTREAM_SPEC__UPSTREAM_TYPE_DNS) {
        eds = true;
        for (size_t i = 0; eps && eps->spec && i < eps->spec->n_endpoints; i++) {
            const Sluice__V1__Endpoint *e = eps->spec->endpoints[i];
            bool v6;
            Envoy__Config__Endpoint__V3__LbEndpoint *le;
            if (!is_ip(e->address, &v6) || e->port == 0 || e->port > 65535) {
                tr_warn(tx, "EndpointSet %s.%s: endpoint %s:%u is not an IP address and port; left out", ns,
                        up->metadata->name, e->address, e->port);
                continue;
            }
            if (cla_has(cla, e->address, e->port))
                continue;
            le = lb_endpoint(tx, e->address, e->port, e->hostname, e->weight ? (e->weight->value ? e->weight->value : 1) : 0);
            if (spec->subset_spec && e->n_labels) {
                const char **k = tr_alloc(tx, e->n_labels * sizeof *k), **v = tr_alloc(tx, e->n_labels * sizeof *v);
                for (size_t j = 0; j < e->n_labels; j++) {
                    k[j] = e->labels[j]->key;
                    v[j] = e->labels[j]->value;
                }
                le->metadata = tr_lb_metadata(tx, e->n_labels, k, v);
            }
            switch (e->health_status) {
            case SLUICE__V1__ENDPOINT__HEALTH_STATUS__HEALTHY:
                le->health_status = ENVOY__CONFIG__CORE__V3__HEALTH_STATUS__HEALTHY;
                break;
            case SLUICE__V1__ENDPOINT__HEALTH_STATUS__UNHEALTHY:
                le->health_status = ENVOY__CONFIG__CORE__V3__HEALTH_STATUS__UNHEALTHY;
                break;
            case SLUICE__V1__ENDPOINT__HEALTH_STATUS__DRAINING:
                le->health_status = ENVOY__CONFIG__CORE__V3__HEALTH_STATUS__DRAINING;
                break;
            default:
                break;
            }
            TR_PUSH(tx, locality(tx, cla, e->locality, e->priority), lb_endpoints, le);
        }
    } else if (spec->upstream_type_case == SLUICE__V1__UPSTREAM_SPEC__UPSTREAM_TYPE_STATIC) {
        const Sluice__V1__StaticUpstreamSpec *st = spec->static_;
        bool dns = false;
        if (st->n_hosts == 0)
            tr_error(tx, "spec.static.hosts: at least one host is required");
        for (size_t i = 0; i < st->n_hosts; i++) {
            const Sluice__V1__Host *h = st->hosts[i];
            bool v6;
            if (!h->addr[0] || h->port == 0 || h->port > 65535) {
                tr_error(tx, "spec.static.hosts[%zu]: addr and a port (1-65535) are required", i);
                continue;
            }
            if (h->health_check_config)
                tr_error(tx, "spec.static.hosts[%zu].healthCheckConfig: not supported by Sluice yet", i);
            if (!is_ip(h->addr, &v6)) {
                for (const char *p = h->addr; *p; p++)
                    if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                          *p == '-' || *p == '.'))
                        tr_error(tx, "spec.static.hosts[%zu].addr: \"%s\" is neither an IP address nor a host name", i,
                                 h->addr);
                dns = true;
            }
            if (cla_has(cla, h->addr, h->port)) {
                tr_warn(tx, "spec.static.hosts[%zu]: %s:%u is listed twice", i, h->addr, h->port);
                continue;
            }
            TR_PUSH(tx, locality(tx, cla, NULL, 0), lb_endpoints,
                    lb_endpoint(tx, h->addr, h->port, NULL,
                                h->load_balancing_weight ? (h->load_balancing_weight->value ? h->load_balancing_weight->value : 1) : 0));
        }
        if (proxyless) {
            if (dns) {
                tr_warn(tx, "spec.static.hosts: host names cannot be sent to gRPC proxyless clients (EDS needs IP "
                            "addresses); the cluster has no endpoints for them");
                for (size_t i = 0; i < cla->n_endpoints; i++) {
                    size_t k = 0;
                    for (size_t j = 0; j < cla->endpoints[i]->n_lb_endpoints; j++) {
                        bool v6;
                        Envoy__Config__Endpoint__V3__LbEndpoint *le = cla->endpoints[i]->lb_endpoints[j];
                        if (is_ip(le->endpoint->address->socket_address->address, &v6))
                            cla->endpoints[i]->lb_endpoints[k++] = le;
                    }
                    cla->endpoints[i]->n_lb_endpoints = k;
                }
            }
            eds = true;
        } else {
            c->type = dns ? ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__STRICT_DNS
                          : ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__STATIC;
            c->load_assignment = cla;
        }
    } else if (spec->upstream_type_case == SLUICE__V1__UPSTREAM_SPEC__UPSTREAM_TYPE__NOT_SET) {
        tr_error(tx, "spec: one of static, dns or aws is required");
    }
    /* aws: the aws plugin sets the cluster up */
    if (eds) {
        c->type = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__EDS;
        c->eds_cluster_config = TR_NEW(tx, envoy__config__cluster__v3__cluster__eds_cluster_config);
        c->eds_cluster_config->eds_config = tr_ads(tx);
        c->load_assignment = NULL;
        /* drop empty locality groups */
        {
            size_t k = 0;
            for (size_t i = 0; i < cla->n_endpoints; i++)
                if (cla->endpoints[i]->n_lb_endpoints)
                    cla->endpoints[k++] = cla->endpoints[i];
            cla->n_endpoints = k;
        }
        o.cla = cla;
    }
    for (size_t p = 0; p < sl_tr_plugin_count; p++)
        if (sl_tr_plugins[p]->cluster)
            sl_tr_plugins[p]->cluster(tx, &in, c);
    for (size_t p = 0; p < sl_tr_plugin_count; p++)
        if (sl_tr_plugins[p]->endpoints && (o.cla || c->load_assignment))
            sl_tr_plugins[p]->endpoints(tx, &in, o.cla ? o.cla : c->load_assignment);
    if (proxyless && c->type != ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__EDS &&
        c->type != ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__LOGICAL_DNS)
        tr_warn(tx, "the cluster cannot be served to gRPC proxyless clients (they accept EDS and LOGICAL_DNS only)");
    o.cluster = c;
    return o;
}

static const Sluice__V1__EndpointSet *endpoint_set(tr_ctx *tx, const char *ns, const char *name)
{
    long pos = tr_bucket_find(bucket(tx, K_EPS), ns, name);
    return pos < 0 ? NULL : (const Sluice__V1__EndpointSet *)bucket(tx, K_EPS)->v[pos].msg;
}

/* ------------------------------------------------------------------------ */
/* the translation                                                          */

/* ---- upstreams built by earlier translations ---- */

static uint64_t entry_stamp(tr_ctx *tx, const sl_kind *k, const char *ns, const char *name)
{
    long pos = tr_bucket_find(bucket(tx, k), ns, name);
    return pos < 0 ? 0 : bucket(tx, k)->v[pos].stamp;
}

/* The stamps an upstream's kept build depends on, besides its own: its
 * endpoint set's (0 when none) and the Settings' (once per translation).
 * Both buckets are sorted by (namespace, name), so walking the upstreams
 * in order finds each endpoint set by advancing a cursor, not by a search
 * (called for upstreams in order, not necessarily for each). */
typedef struct up_stamps {
    uint64_t settings;
    size_t eps_pos; /* cursor in the endpoint sets */
} up_stamps;

static uint64_t eps_stamp_next(tr_ctx *tx, up_stamps *st, const tr_entry *e)
{
    const tr_bucket *b = bucket(tx, K_EPS);
    while (st->eps_pos < b->n) {
        const tr_entry *x = &b->v[st->eps_pos];
        int c = strcmp(x->ns, e->ns);
        if (!c)
            c = strcmp(x->name, e->name);
        if (c > 0)
            return 0;
        if (!c)
            return x->stamp;
        st->eps_pos++;
    }
    return 0;
}

/* Whether the kept build c of upstream e is still what building it would
 * give. Its endpoint set is looked up only when some endpoint set changed
 * since c was last checked (the store's eps_gen): usually none did. */
static bool cache_valid(tr_ctx *tx, const tr_entry *e, tr_up_cache *c, up_stamps *st)
{
    if (!c || c->up_stamp != e->stamp || c->settings_stamp != st->settings ||
        c->secret_gen != tx->store->secret_gen || strcmp(c->settings_ns, tx->opts.settings_namespace) != 0)
        return false;
    if (c->eps_gen != tx->store->eps_gen) {
        if (c->eps_stamp != eps_stamp_next(tx, st, e))
            return false;
        c->eps_gen = tx->store->eps_gen;
    }
    return true;
}

/* The upstream's cluster from an earlier translation, when nothing it was
 * built from changed: its packed bytes are used as they are. */
static bool upstream_cached(tr_ctx *tx, tr_entry *e, up_out *o, up_stamps *st)
{
    if (!cache_valid(tx, e, e->cache, st))
        return false;
    memset(o, 0, sizeof *o);
    o->cached = e->cache;
    o->cluster_name = e->cache->cluster->name;
    return true;
}

/* Keeps a clean build of the upstream for the next translation, and uses
 * its packed bytes in this one. */
static sl_status upstream_cache_put(tr_ctx *tx, tr_entry *e, up_out *o, up_stamps *st)
{
    tr_up_cache *c = calloc(1, sizeof *c);
    if (!c || !(c->settings_ns = strdup(tx->opts.settings_namespace)) ||
        !(c->cluster = tr_blob_pack(&o->cluster->base, o->cluster->name)) ||
        (o->cla && !(c->cla = tr_blob_pack(&o->cla->base, o->cla->cluster_name)))) {
        tr_up_cache_free(c);
        return SL_ERR_NOMEM;
    }
    c->up_stamp = e->stamp;
    c->eps_stamp = eps_stamp_next(tx, st, e);
    c->eps_gen = tx->store->eps_gen;
    c->settings_stamp = st->settings;
    c->secret_gen = tx->store->secret_gen;
    tr_up_cache_free(e->cache);
    e->cache = c;
    o->cached = c;
    o->cluster_name = o->cluster->name;
    return SL_OK;
}

static int cmp_out(const void *a, const void *b)
{
    return strcmp((*(tr_out *const *)a)->name, (*(tr_out *const *)b)->name);
}

static int cmp_proxy(const void *a, const void *b)
{
    return strcmp(((const sl_tr_proxy *)a)->name, ((const sl_tr_proxy *)b)->name);
}

/* Kept clusters and endpoints are added without a look-up by name
 * (tr_out_add_blob): a name given twice keeps the first one added, here,
 * after sorting by name and then by order added. */
static int cmp_out_seq(const void *a, const void *b)
{
    const tr_out *x = *(tr_out *const *)a, *y = *(tr_out *const *)b;
    int c = strcmp(x->name, y->name);
    return c ? c : (x->seq > y->seq) - (x->seq < y->seq);
}

/* Marks sc, just made (or found again) from every resource of its type of
 * a proxy, as that proxy's whole list (whole_list()). Its list, when made
 * already, still holds: it is made of in[] in the order perm, which were
 * found the same. */
static tr_sort_cache *keep_whole(tr_ctx *tx, tr_sort_cache *sc, bool proxyless)
{
    if (!sc->settings_ns || strcmp(sc->settings_ns, tx->opts.settings_namespace) != 0) {
        free(sc->settings_ns);
        sc->settings_ns = strdup(tx->opts.settings_namespace);
    }
    sc->up_world = tx->store->up_world;
    sc->proxyless = proxyless;
    return sc->settings_ns ? sc : NULL;
}

/* p's resources of type t are sc's whole list, shared (made on first use). */
static sl_status use_list(tr_sort_cache *sc, sl_tr_proxy *p, int t)
{
    if (!sc->list) {
        tr_rlist *l = malloc(sizeof *l + (sc->n_perm + 1) * sizeof l->v[0]);
        if (!l)
            return SL_ERR_NOMEM;
        l->refs = 1;
        l->n = sc->n_perm;
        for (size_t i = 0; i < sc->n_perm; i++) {
            sl_tr_resource *r = &l->v[i];
            r->shared = tr_blob_ref(sc->in[sc->perm[i]]);
            r->data = r->shared->data;
            r->len = r->shared->len;
            r->name = r->shared->name;
            r->parts = NULL;
        }
        sc->list = l;
    }
    p->lists[t] = tr_rlist_ref(sc->list);
    p->res[t] = sc->list->v;
    p->n[t] = sc->list->n;
    return SL_OK;
}

/* The proxy's resources of type t in name order, duplicates left out:
 * *n_out of them in v. When every one is kept in the store and they are
 * the ones of the last translation in the same order (the same blobs),
 * the order is the one kept with them (tr_sort_cache), not sorted again. */
static tr_out **sorted_out(tr_ctx *tx, const char *proxy, bool proxyless, sl_xds_type t, size_t *n_out,
                           tr_sort_cache **whole)
{
    size_t n = tx->n_out[t], k = 0;
    tr_out **in = tx->out[t], **v;
    tr_sort_cache *sc;
    bool all_kept = true;

    if (t != SL_XDS_CLUSTER && t != SL_XDS_ENDPOINT) { /* unique names (tr_out_add) */
        if (n > 1)
            qsort(in, n, sizeof *in, cmp_out);
        *n_out = n;
        return in;
    }
    for (sc = tx->store->sorted; sc; sc = sc->next)
        if (sc->type == (int)t && strcmp(sc->proxy, proxy) == 0) {
            sc->seen = tx->store->translations;
            break;
        }
    for (size_t i = 0; i < n && all_kept; i++)
        all_kept = in[i]->blob != NULL;
    if (sc && all_kept && sc->n_in == n) {
        size_t i = 0;
        while (i < n && sc->in[i] == in[i]->blob)
            i++;
        if (i == n) {
            v = tr_alloc(tx, (sc->n_perm + 1) * sizeof *v);
            for (size_t j = 0; j < sc->n_perm; j++)
                v[j] = in[sc->perm[j]];
            *n_out = sc->n_perm;
            *whole = keep_whole(tx, sc, proxyless);
            return v;
        }
    }
    v = tr_alloc(tx, (n + 1) * sizeof *v);
    if (n)
        memcpy(v, in, n * sizeof *v);
    if (n > 1)
        qsort(v, n, sizeof *v, cmp_out_seq);
    for (size_t i = 0; i < n; i++)
        if (!k || strcmp(v[k - 1]->name, v[i]->name) != 0)
            v[k++] = v[i];
    *n_out = k;
    /* keep the order for the next translation (only an order of kept
     * blobs: their references keep the comparison by pointer sound) */
    if (sc) {
        tr_sort_cache_clear(sc);
    } else if (all_kept && (sc = calloc(1, sizeof *sc)) != NULL) {
        if (!(sc->proxy = strdup(proxy))) {
            free(sc);
            return v;
        }
        sc->type = (int)t;
        sc->seen = tx->store->translations;
        sc->next = tx->store->sorted;
        tx->store->sorted = sc;
    }
    if (sc && all_kept) {
        sc->in = malloc((n + 1) * sizeof *sc->in);
        sc->perm = malloc((k + 1) * sizeof *sc->perm);
        if (!sc->in || !sc->perm) {
            tr_sort_cache_clear(sc);
            return v;
        }
        for (size_t i = 0; i < n; i++)
            sc->in[i] = tr_blob_ref(in[i]->blob);
        for (size_t i = 0; i < k; i++)
            sc->perm[i] = v[i]->seq;
        sc->n_in = n;
        sc->n_perm = k;
        *whole = keep_whole(tx, sc, proxyless);
    }
    return v;
}

/* The kept whole list of the proxy's resources of type t (clusters or
 * endpoints), when the translation that made it saw what this one sees:
 * no Upstream, EndpointSet, Settings or Secret changed since, the same
 * settings namespace, and the proxy as proxyless as it was. Only the
 * upstreams add clusters and endpoints, so that list is what visiting
 * them again would give. */
static tr_sort_cache *whole_list(tr_ctx *tx, const char *proxy, bool proxyless, sl_xds_type t)
{
    for (tr_sort_cache *sc = tx->store->sorted; sc; sc = sc->next) {
        if (sc->type != (int)t || strcmp(sc->proxy, proxy) != 0)
            continue;
        sc->seen = tx->store->translations;
        return sc->settings_ns && sc->up_world == tx->store->up_world && sc->proxyless == proxyless &&
                       strcmp(sc->settings_ns, tx->opts.settings_namespace) == 0
                   ? sc
                   : NULL;
    }
    return NULL;
}

/* memo: packed bytes by message, within one translation: every proxy shares
 * the clusters and endpoints built once per upstream, so each is packed once. */
static sl_status pack_proxy(tr_ctx *tx, sl_tr_proxy *p, tr_bytes_map *memo, tr_sort_cache *const *whole)
{
    for (int t = 0; t < SL_XDS_TYPE_COUNT; t++) {
        size_t n;
        tr_out **outs;
        tr_sort_cache *now = NULL;
        if (whole[t]) { /* the kept whole list, shared as it is */
            if (use_list(whole[t], p, t) != SL_OK)
                return SL_ERR_NOMEM;
            continue;
        }
        outs = sorted_out(tx, p->name, p->proxyless, (sl_xds_type)t, &n, &now);
        if (now) { /* every one kept: share the list from now on */
            if (use_list(now, p, t) != SL_OK)
                return SL_ERR_NOMEM;
            continue;
        }
        p->res[t] = calloc(n ? n : 1, sizeof *p->res[t]);
        if (!p->res[t])
            return SL_ERR_NOMEM;
        for (size_t i = 0; i < n; i++) {
            sl_tr_resource *r = &p->res[t][i];
            const tr_out *o = outs[i];
            const ProtobufCMessage *m = o->msg;
            size_t known_len = 0;
            const uint8_t *known = m ? bytes_get(memo, m, &known_len) : NULL;
            if (!m && o->blob) { /* kept in the store: shared, not copied */
                r->shared = tr_blob_ref(o->blob);
                r->data = r->shared->parts && r->shared->parts->no_whole ? NULL : r->shared->data;
                r->len = r->shared->len;
                r->name = r->shared->name;
                r->parts = r->shared->parts ? &r->shared->parts->pub : NULL;
                if (o->keep_in) { /* a patched route (route_patched) */
                    tr_blob *was = o->keep_in->rcfg;
                    o->keep_in->rcfg = tr_blob_ref(o->blob);
                    tr_blob_unref(was);
                }
            } else if (!(r->name = strdup(o->name))) {
                /* out of memory: below */
            } else if (!m) { /* packed already (a kept virtual host's bytes) */
                r->len = o->len;
                if ((r->data = malloc(r->len ? r->len : 1)) != NULL)
                    memcpy(r->data, o->bytes, r->len);
            } else if (t == SL_XDS_ROUTE) { /* a blob: the gateway's memo may keep it too */
                tr_blob *b = pack_route_config(tx, (const Envoy__Config__Route__V3__RouteConfiguration *)m, o->name);
                if (b) {
                    free(r->name);
                    r->shared = b;
                    r->name = b->name;
                    r->data = b->parts->no_whole ? NULL : b->data;
                    r->len = b->len;
                    r->parts = &b->parts->pub;
                    if (o->keep_in) {
                        tr_blob_unref(o->keep_in->rcfg);
                        o->keep_in->rcfg = tr_blob_ref(b);
                    }
                }
            } else if (known) {
                r->len = known_len;
                if ((r->data = malloc(r->len ? r->len : 1)) != NULL)
                    memcpy(r->data, known, r->len);
            } else {
                r->data = tr_pack_heap(m, &r->len);
                if (r->data && (t == SL_XDS_CLUSTER || t == SL_XDS_ENDPOINT))
                    bytes_put(tx, memo, m, r->data, r->len);
            }
            p->n[t] = i + 1; /* freed with the result, even when incomplete */
            if (!r->name || (!r->data && !r->parts))
                return SL_ERR_NOMEM;
        }
    }
    return SL_OK;
}

static void reset_out(tr_ctx *tx)
{
    memset(tx->out_names, 0, sizeof tx->out_names);
    memset(tx->out, 0, sizeof tx->out);
    memset(tx->n_out, 0, sizeof tx->n_out);
}

static void init_kinds(void)
{
    if (K_GATEWAY)
        return;
    K_VS = sl_kind_by_name("VirtualService");
    K_RT = sl_kind_by_name("RouteTable");
    K_UPSTREAM = sl_kind_by_name("Upstream");
    K_UG = sl_kind_by_name("UpstreamGroup");
    K_SECRET = sl_kind_by_name("Secret");
    K_SETTINGS = sl_kind_by_name("Settings");
    K_EPS = sl_kind_by_name("EndpointSet");
    {
        const sl_kind *ks[] = {K_VS, K_RT, K_UPSTREAM, K_UG, K_SECRET, K_SETTINGS, K_EPS,
                               sl_kind_by_name("Gateway")};
        for (size_t i = 0; i < sizeof ks / sizeof *ks; i++) {
            kind_idx[i].k = ks[i];
            kind_idx[i].idx = tr_kind_index(ks[i]);
        }
    }
    K_GATEWAY = sl_kind_by_name("Gateway"); /* last: init_kinds() is done */
}

/* An Accepted report about e, alone in one allocation, with one reference. */
static tr_rblob *accepted_report(const sl_kind *k, const tr_entry *e)
{
    const Sluice__V1__Metadata *md = sl_kind_metadata(e->msg);
    const char *rv = md && md->resource_version ? md->resource_version : "";
    size_t lns = strlen(e->ns) + 1, lname = strlen(e->name) + 1, lrv = strlen(rv) + 1;
    tr_rblob *b = malloc(sizeof *b + lns + lname + lrv + 1);
    char *p;
    if (!b)
        return NULL;
    memset(b, 0, sizeof *b);
    b->refs = 1;
    b->stamp = e->stamp;
    p = b->strings;
    b->rep.kind = k;
    b->rep.ns = memcpy(p, e->ns, lns);
    b->rep.name = memcpy(p += lns, e->name, lname);
    b->rep.resource_version = memcpy(p += lname, rv, lrv);
    b->rep.reason = p += lrv;
    *p = '\0';
    b->rep.warnings = b->no_warnings;
    b->rep.generation = md ? md->generation : 0;
    b->rep.revision = e->rev;
    b->rep.state = SLUICE__V1__STATUS__STATE__Accepted;
    return b;
}

/* Whether report i of r is borrowed from r's list (the list holds its
 * reference), not r's own. */
static bool report_borrowed(const sl_tr_result *r, size_t i)
{
    return r->replist && i < r->replist->n && r->reports[i].shared &&
           r->replist->v[i].shared == r->reports[i].shared;
}

/* Makes res's shared reports the store's list of them (tr_replist): the
 * ones res borrowed from its list get a reference from the new one, its
 * own give theirs to it. Not being able to is no failure. */
static void replist_make(tr_ctx *tx, sl_tr_result *res)
{
    size_t n = res->n_reports;
    tr_replist *l = malloc(sizeof *l + (n + 1) * sizeof l->v[0]);
    uint64_t *stamps = calloc(n + 1, sizeof *stamps);
    if (!l || !stamps) {
        free(l);
        free(stamps);
        return;
    }
    l->refs = 1;
    l->n = n;
    l->layout = tx->store->layout;
    l->stamps = stamps;
    for (size_t i = 0; i < n; i++) {
        const sl_tr_report *r = &res->reports[i];
        if (!r->shared) {
            memset(&l->v[i], 0, sizeof l->v[i]);
            continue;
        }
        l->v[i] = *r;
        stamps[i] = r->shared->stamp;
        if (report_borrowed(res, i))
            tr_rblob_ref(r->shared);
    }
    tr_replist_unref(res->replist);
    res->replist = tr_replist_ref(l);
    tr_replist_unref(tx->store->replist);
    tx->store->replist = l;
}

static sl_status finish_reports(tr_ctx *tx, sl_tr_result *res)
{
    const sl_kind *kinds[] = {K_GATEWAY, K_VS, K_RT, K_UPSTREAM, K_UG, K_SETTINGS};
    size_t total = 0, borrowed = 0;
    tr_replist *kept = tx->store->replist;
    for (size_t k = 0; k < sizeof kinds / sizeof *kinds; k++)
        total += bucket(tx, kinds[k])->n;
    /* Flag the few resources something was reported about; the others
     * need no look-up. */
    for (size_t i = 0; i < tx->reports.cap; i++) {
        const tr_rep *r = tx->reports.keys[i] ? tx->reports.vals[i] : NULL;
        int ki = r ? kidx(r->kind) : -1;
        long pos = ki >= 0 ? tr_bucket_find(&tx->store->b[ki], r->ns, r->name) : -1;
        if (pos >= 0)
            tx->flags[ki][pos] |= TR_REPORTED;
    }
    res->reports = calloc(total ? total : 1, sizeof *res->reports);
    if (!res->reports)
        return SL_ERR_NOMEM;
    if (kept && (kept->layout != tx->store->layout || kept->n != total))
        kept = NULL; /* positions moved */
    if (kept)
        res->replist = tr_replist_ref(kept);
    for (size_t k = 0; k < sizeof kinds / sizeof *kinds; k++) {
        tr_bucket *b = bucket(tx, kinds[k]);
        for (size_t i = 0; i < b->n; i++) {
            tr_entry *e = &b->v[i];
            const Sluice__V1__Metadata *md;
            static const tr_rep none;
            uint8_t fl = *flag(tx, kinds[k], i);
            const tr_rep *r = (fl & TR_REPORTED) ? tr_rep_find(tx, kinds[k], e->ns, e->name) : NULL;
            sl_tr_report *out = &res->reports[res->n_reports++];
            size_t len = 1;
            if ((!r || (!r->n_errors && !r->n_warnings)) && !(fl & TR_REJECTED)) {
                size_t p = res->n_reports - 1;
                if (kept && kept->stamps[p] == e->stamp) { /* the last list's, borrowed */
                    *out = kept->v[p];
                    borrowed++;
                    continue;
                }
                /* Accepted with nothing to say: the same report as last
                 * time while the resource is the same version, shared */
                if (!e->rcache || e->rcache->stamp != e->stamp) {
                    tr_rblob_unref(e->rcache);
                    if (!(e->rcache = accepted_report(kinds[k], e)))
                        return SL_ERR_NOMEM;
                }
                *out = e->rcache->rep;
                out->shared = tr_rblob_ref(e->rcache);
                continue;
            }
            if (!r)
                r = &none;
            md = sl_kind_metadata(e->msg);
            out->kind = kinds[k];
            out->ns = strdup(e->ns);
            out->name = strdup(e->name);
            out->revision = e->rev;
            out->resource_version = strdup(md && md->resource_version ? md->resource_version : "");
            out->generation = md ? md->generation : 0;
            for (size_t j = 0; j < r->n_errors; j++)
                len += strlen(r->errors[j]) + 2;
            out->reason = malloc(len);
            out->warnings = calloc(r->n_warnings + 1, sizeof *out->warnings);
            if (!out->ns || !out->name || !out->resource_version || !out->reason || !out->warnings)
                return SL_ERR_NOMEM;
            out->reason[0] = '\0';
            for (size_t j = 0; j < r->n_errors; j++) {
                if (j)
                    strcat(out->reason, "; ");
                strcat(out->reason, r->errors[j]);
            }
            for (size_t j = 0; j < r->n_warnings; j++) {
                if (!(out->warnings[j] = strdup(r->warnings[j])))
                    return SL_ERR_NOMEM;
                out->n_warnings = j + 1;
            }
            if (r->n_errors || (fl & TR_REJECTED)) {
                out->state = SLUICE__V1__STATUS__STATE__Rejected;
                out->serving_last_good = (fl & TR_USED_GOOD) != 0;
            } else if (r->n_warnings) {
                out->state = SLUICE__V1__STATUS__STATE__Warning;
            } else {
                out->state = SLUICE__V1__STATUS__STATE__Accepted;
            }
        }
    }
    /* Many not borrowed (or no list): this result's shared reports become
     * the list, which takes over their references. */
    if (!kept || (res->n_reports - borrowed) * 8 > res->n_reports + 64)
        replist_make(tx, res);
    return SL_OK;
}

/* Translates, for validation only, the virtual services and route tables
 * no gateway selected, so that their problems are reported too. */
static void validate_unselected(tr_ctx *tx)
{
    Sluice__V1__Gateway g = SLUICE__V1__GATEWAY__INIT;
    Sluice__V1__GatewaySpec gs = SLUICE__V1__GATEWAY_SPEC__INIT;
    tr_gateway gw = {&g, "", "validation", false};
    tr_bucket *b = bucket(tx, K_VS);
    g.spec = &gs;
    reset_out(tx);
    for (size_t i = 0; i < b->n; i++) {
        uint8_t *fl = flag(tx, K_VS, i);
        tr_cur cur = cur_of(K_VS, &b->v[i]);
        if (*fl & TR_SEEN)
            continue;
        tx->cur = &cur;
        translate_vs(tx, &gw, (const Sluice__V1__VirtualService *)b->v[i].msg);
        if (cur.errors)
            *fl |= TR_REJECTED;
        if (b->v[i].msg->descriptor && ((const Sluice__V1__VirtualService *)b->v[i].msg)->spec &&
            ((const Sluice__V1__VirtualService *)b->v[i].msg)->spec->ssl_config) {
            int before = cur.errors;
            downstream_tls(tx, ((const Sluice__V1__VirtualService *)b->v[i].msg)->spec->ssl_config, b->v[i].ns);
            if (cur.errors > before)
                *fl |= TR_REJECTED;
        }
    }
    b = bucket(tx, K_RT);
    for (size_t i = 0; i < b->n; i++) {
        uint8_t *fl = flag(tx, K_RT, i);
        tr_cur cur = cur_of(K_RT, &b->v[i]);
        const Sluice__V1__RouteTable *rt = (const Sluice__V1__RouteTable *)b->v[i].msg;
        tr_vhost_t *vh = TR_NEW(tx, envoy__config__route__v3__virtual_host);
        route_ctx rc;
        if (*fl & TR_SEEN)
            continue;
        vh->name = "validation";
        memset(&rc, 0, sizeof rc);
        rc.gw = &gw;
        rc.vh = vh;
        rc.owner_ns = b->v[i].ns;
        rc.path = "spec.routes";
        rc.visited[rc.depth++] = &b->v[i];
        tx->cur = &cur;
        if (rt->spec)
            translate_routes(tx, &rc, rt->spec->routes, rt->spec->n_routes);
        if (cur.errors)
            *fl |= TR_REJECTED;
    }
    tx->cur = NULL;
}

/* The end of a translation, after its resources: its reports, what no
 * proxy or gateway used let go, accepted resources made the last good
 * versions. Reads the translation's flags and reports (tx), which the
 * store's buckets must still match (no put or removal since). */
static sl_status tr_finish(tr_ctx *tx, sl_tr_result *res)
{
    sl_tr_store *s = tx->store;
    sl_status rc;
    if ((rc = finish_reports(tx, res)) != SL_OK)
        return rc;

    /* What no proxy or gateway of this translation used goes (a proxy or
     * gateway gone would keep its lists and route configurations). */
    for (tr_gw_memo **pp = &s->memos; *pp;) {
        tr_gw_memo *m = *pp;
        if (m->seen == s->translations) {
            pp = &m->next;
            continue;
        }
        *pp = m->next;
        m->next = NULL;
        tr_gw_memo_free(m);
    }
    for (tr_sort_cache **pp = &s->sorted; *pp;) {
        tr_sort_cache *sc = *pp;
        if (sc->seen == s->translations) {
            pp = &sc->next;
            continue;
        }
        *pp = sc->next;
        tr_sort_cache_clear(sc);
        free(sc->proxy);
        free(sc);
    }

    /* Accepted resources become the last good versions. */
    if (!tx->opts.dry_run) {
        const sl_kind *kinds[] = {K_GATEWAY, K_VS, K_RT, K_UPSTREAM, K_UG};
        for (size_t k = 0; k < sizeof kinds / sizeof *kinds; k++) {
            tr_bucket *b = bucket(tx, kinds[k]);
            for (size_t i = 0; i < b->n; i++) {
                tr_entry *e = &b->v[i];
                uint8_t fl = *flag(tx, kinds[k], i);
                if ((fl & TR_REJECTED) || e->good == e->msg)
                    continue;
                if (e->good)
                    protobuf_c_message_free_unpacked(e->good, NULL);
                e->good = e->msg;
            }
        }
    }
    return SL_OK;
}

/* Frees a translation's context: its arena and what it held. */
static void tr_ctx_free(tr_ctx *tx)
{
    for (size_t i = 0; i < tx->n_held; i++)
        tr_blob_unref(tx->held[i]);
    free(tx->held);
    sl_arena_deinit(&tx->arena);
    free(tx);
}

sl_status sl_tr_result_finish(sl_tr_result *r)
{
    tr_ctx *tx = r ? r->pending : NULL;
    volatile sl_status rc = SL_OK;
    if (!tx)
        return SL_OK;
    r->pending = NULL;
    tx->store->pending = NULL;
    if (setjmp(tx->oom))
        rc = sl_error_set(SL_ERR_NOMEM, "out of memory finishing a translation");
    else
        rc = tr_finish(tx, r);
    tr_ctx_free(tx);
    return rc;
}

/* A translation's context over store s (after its arena and out-of-memory
 * jump are set): options, per-entry flags, the supported fields of every
 * plugin, the Settings. Returns the Settings' position in its bucket, or -1
 * when the defaults apply. */
static long ctx_setup(tr_ctx *tx, sl_tr_store *s, const sl_tr_options *opts)
{
    static const Sluice__V1__SettingsSpec default_settings = SLUICE__V1__SETTINGS_SPEC__INIT;
    tx->store = s;
    if (opts)
        tx->opts = *opts;
    if (!tx->opts.settings_namespace)
        tx->opts.settings_namespace = DEFAULT_SETTINGS_NS;
    for (size_t k = 0; k < sl_kind_count() && k < TR_MAX_KINDS; k++) {
        tx->flags[k] = tr_alloc(tx, s->b[k].n + 1);
        memset(tx->flags[k], 0, s->b[k].n + 1);
    }
    for (size_t p = 0; p < sl_tr_plugin_count; p++)
        for (const char *const *f = sl_tr_plugins[p]->fields; f && *f; f++)
            tr_map_put(tx, &tx->supported, *f, (void *)sl_tr_plugins[p]);
    long pos = tr_bucket_find(bucket(tx, K_SETTINGS), tx->opts.settings_namespace, "default");
    const Sluice__V1__Settings *st = pos >= 0 ? (const Sluice__V1__Settings *)bucket(tx, K_SETTINGS)->v[pos].msg : NULL;
    tx->settings = st && st->spec ? st->spec : &default_settings;
    return pos;
}

sl_status sl_tr_translate(sl_tr_result **out, sl_tr_store *s, const sl_tr_options *opts)
{
    tr_ctx *tx = calloc(1, sizeof *tx);
    sl_tr_result *res = calloc(1, sizeof *res);
    volatile sl_status rc = SL_OK;
    up_out *volatile built = NULL;
    volatile bool up_fast = false;

    *out = NULL;
    if (!tx || !res) {
        free(tx);
        free(res);
        return SL_ERR_NOMEM;
    }
    tr_store_settle(s); /* the last one finished first: it reads the store as it was */
    init_kinds();
    sl_arena_init(&tx->arena, 64 * 1024);
    if (setjmp(tx->oom)) {
        rc = sl_error_set(SL_ERR_NOMEM, "out of memory translating");
        goto out;
    }
    s->translations++;
    {
        long pos = ctx_setup(tx, s, opts);
        if (pos >= 0)
            *flag(tx, K_SETTINGS, (size_t)pos) |= TR_SEEN;
    }

    /* Upstreams first: routes need to know which ones are usable. Their
     * clusters are kept for every proxy that is not proxyless. */
    built = tr_alloc(tx, (bucket(tx, K_UPSTREAM)->n + 1) * sizeof *built);
    up_fast = s->up_clean && s->up_clean_world == s->up_world && s->up_clean_ns &&
              strcmp(s->up_clean_ns, tx->opts.settings_namespace) == 0;
    if (up_fast) {
        /* nothing an upstream is built from changed since every one was
         * found kept and clean: each is accepted, its kept build valid */
        tr_bucket *b = bucket(tx, K_UPSTREAM);
        for (size_t i = 0; i < b->n; i++)
            *flag(tx, K_UPSTREAM, i) |= TR_SEEN;
    } else {
        tr_bucket *b = bucket(tx, K_UPSTREAM);
        up_stamps stamps = {entry_stamp(tx, K_SETTINGS, tx->opts.settings_namespace, "default"), 0};
        bool clean = true;
        s->up_clean = false;
        for (size_t i = 0; i < b->n; i++) {
            const tr_entry *e = &b->v[i];
            tr_cur cur = cur_of(K_UPSTREAM, e);
            uint8_t *fl = flag(tx, K_UPSTREAM, i);
            tx->cur = &cur;
            *fl |= TR_SEEN;
            if (upstream_cached(tx, (tr_entry *)e, &built[i], &stamps))
                continue;
            reset_out(tx);
            built[i] = build_upstream(tx, (const Sluice__V1__Upstream *)e->msg, endpoint_set(tx, e->ns, e->name), false);
            built[i].secrets = tx->out[SL_XDS_SECRET];
            built[i].n_secrets = tx->n_out[SL_XDS_SECRET];
            if (!cur.errors && !tr_rep_get(tx, K_UPSTREAM, e->ns, e->name)->n_warnings && !built[i].n_secrets &&
                built[i].cluster) {
                if (upstream_cache_put(tx, (tr_entry *)e, &built[i], &stamps) != SL_OK) {
                    rc = SL_ERR_NOMEM;
                    goto out;
                }
            } else {
                clean = false; /* built again next time */
            }
            if (cur.errors) {
                *fl |= TR_REJECTED;
                if (e->good && e->good != e->msg)
                    *fl |= TR_USED_GOOD;
            }
        }
        tx->cur = NULL;
        reset_out(tx);
        if (clean && (!s->up_clean_ns || strcmp(s->up_clean_ns, tx->opts.settings_namespace) != 0)) {
            free(s->up_clean_ns);
            s->up_clean_ns = strdup(tx->opts.settings_namespace);
        }
        s->up_clean = clean && s->up_clean_ns;
        s->up_clean_world = s->up_world;
    }
    /* Upstream groups: their destinations must exist. */
    {
        tr_bucket *b = bucket(tx, K_UG);
        for (size_t i = 0; i < b->n; i++) {
            const Sluice__V1__UpstreamGroup *ug = (const Sluice__V1__UpstreamGroup *)b->v[i].msg;
            tr_cur cur = cur_of(K_UG, &b->v[i]);
            bool missing = false;
            tx->cur = &cur;
            weighted(tx, ug->spec ? ug->spec->destinations : NULL, ug->spec ? ug->spec->n_destinations : 0, b->v[i].ns,
                     "spec.destinations", &missing);
            *flag(tx, K_UG, i) |= TR_SEEN | (cur.errors ? TR_REJECTED : 0);
        }
        tx->cur = NULL;
    }

    /* Gateways, grouped by proxy. */
    {
        tr_bucket *b = bucket(tx, K_GATEWAY);
        gw_item *gws;
        size_t n_gws = 0;
        tr_map proxies = {0};
        tr_bytes_map memo = {0};
        char **pnames;
        size_t n_p = 0;
        static Sluice__V1__GatewaySpec dspec[2];
        static Sluice__V1__HttpGateway dhttp[2];
        static Sluice__V1__Metadata dmd[2];
        static Sluice__V1__Gateway dgw[2];

        gws = tr_alloc(tx, (b->n + 2) * sizeof *gws);
        for (size_t i = 0; i < b->n; i++) {
            gws[n_gws].gw = (const Sluice__V1__Gateway *)b->v[i].msg;
            gws[n_gws].ns = b->v[i].ns;
            gws[n_gws].name = b->v[i].name;
            gws[n_gws].idx = (long)i;
            gws[n_gws].rev = b->v[i].rev;
            *flag(tx, K_GATEWAY, i) |= TR_SEEN;
            if (!gws[n_gws].gw->spec) {
                tr_cur cur = cur_of(K_GATEWAY, &b->v[i]);
                tx->cur = &cur;
                tr_error(tx, "spec: required");
                tx->cur = NULL;
                *flag(tx, K_GATEWAY, i) |= TR_REJECTED;
                continue;
            }
            n_gws++;
        }
        if (b->n == 0) {
            /* Gloo's default gateways. */
            for (int d = 0; d < 2; d++) {
                Sluice__V1__GatewaySpec sp = SLUICE__V1__GATEWAY_SPEC__INIT;
                Sluice__V1__HttpGateway hg = SLUICE__V1__HTTP_GATEWAY__INIT;
                Sluice__V1__Metadata md = SLUICE__V1__METADATA__INIT;
                Sluice__V1__Gateway g = SLUICE__V1__GATEWAY__INIT;
                dspec[d] = sp;
                dhttp[d] = hg;
                dmd[d] = md;
                dgw[d] = g;
                dmd[d].name = d ? "gateway-proxy-ssl" : "gateway-proxy";
                dmd[d].namespace_ = (char *)tx->opts.settings_namespace;
                dspec[d].bind_address = "::";
                dspec[d].bind_port = d ? 8443 : 8080;
                dspec[d].ssl = d == 1;
                dspec[d].gateway_type_case = SLUICE__V1__GATEWAY_SPEC__GATEWAY_TYPE_HTTP_GATEWAY;
                dspec[d].http_gateway = &dhttp[d];
                dgw[d].metadata = &dmd[d];
                dgw[d].spec = &dspec[d];
                gws[n_gws].gw = &dgw[d];
                gws[n_gws].ns = tx->opts.settings_namespace;
                gws[n_gws].name = dmd[d].name;
                gws[n_gws].idx = -1;
                gws[n_gws].rev = 0;
                n_gws++;
            }
        }
        pnames = tr_alloc(tx, (n_gws * 8 + 1) * sizeof *pnames);
        for (size_t i = 0; i < n_gws; i++) {
            const Sluice__V1__GatewaySpec *sp = gws[i].gw->spec;
            size_t np = sp->n_proxy_names ? sp->n_proxy_names : 1;
            for (size_t j = 0; j < np; j++) {
                const char *pn = sp->n_proxy_names ? sp->proxy_names[j] : DEFAULT_PROXY;
                char *key = tr_printf(tx, "%s~%s", gws[i].ns, pn);
                if (!tr_map_get(&proxies, key)) {
                    tr_map_put(tx, &proxies, key, key);
                    if (n_p < n_gws * 8)
                        pnames[n_p++] = key;
                }
            }
        }
        res->proxies = calloc(n_p ? n_p : 1, sizeof *res->proxies);
        if (!res->proxies) {
            rc = SL_ERR_NOMEM;
            goto out;
        }
        for (size_t p = 0; p < n_p; p++) {
            tr_sort_cache *whole[SL_XDS_TYPE_COUNT];
            const char *proxy = pnames[p];
            tr_map ports = {0};
            bool proxyless = false;
            sl_tr_proxy *op = &res->proxies[res->n_proxies++];
            reset_out(tx);
            if (!(op->name = strdup(proxy))) {
                rc = SL_ERR_NOMEM;
                goto out;
            }
            for (size_t i = 0; i < n_gws; i++) {
                const Sluice__V1__GatewaySpec *sp = gws[i].gw->spec;
                size_t np = sp->n_proxy_names ? sp->n_proxy_names : 1;
                bool mine = false;
                for (size_t j = 0; j < np; j++) {
                    const char *pn = sp->n_proxy_names ? sp->proxy_names[j] : DEFAULT_PROXY;
                    if (strlen(proxy) == strlen(gws[i].ns) + 1 + strlen(pn) && strncmp(proxy, gws[i].ns, strlen(gws[i].ns)) == 0 &&
                        proxy[strlen(gws[i].ns)] == '~' && strcmp(proxy + strlen(gws[i].ns) + 1, pn) == 0)
                        mine = true;
                }
                if (!mine)
                    continue;
                if (gw_proxyless(gws[i].gw))
                    proxyless = true;
                translate_gateway(tx, &gws[i], proxy, &ports);
                if (gws[i].idx >= 0 && tr_rep_get(tx, K_GATEWAY, gws[i].ns, gws[i].name)->n_errors)
                    *flag(tx, K_GATEWAY, (size_t)gws[i].idx) |= TR_REJECTED;
            }
            /* Every usable upstream becomes a cluster of the proxy: the
             * kept lists as they are when nothing they came from changed */
            memset(whole, 0, sizeof whole);
            if (!tx->n_out[SL_XDS_CLUSTER] && !tx->n_out[SL_XDS_ENDPOINT] &&
                (whole[SL_XDS_CLUSTER] = whole_list(tx, proxy, proxyless, SL_XDS_CLUSTER)) != NULL &&
                !(whole[SL_XDS_ENDPOINT] = whole_list(tx, proxy, proxyless, SL_XDS_ENDPOINT)))
                whole[SL_XDS_CLUSTER] = NULL;
            if (!whole[SL_XDS_CLUSTER]) {
                tr_bucket *ub = bucket(tx, K_UPSTREAM);
                tr_cur *saved = tx->cur;
                for (size_t i = 0; i < ub->n; i++) {
                    uint8_t fl = *flag(tx, K_UPSTREAM, i);
                    const Sluice__V1__Upstream *up = (const Sluice__V1__Upstream *)ub->v[i].msg;
                    tr_cur cur = cur_of(K_UPSTREAM, &ub->v[i]);
                    up_out uo;
                    if (fl & TR_REJECTED) {
                        if (!(fl & TR_USED_GOOD))
                            continue;
                        up = (const Sluice__V1__Upstream *)ub->v[i].good;
                    }
                    /* reports of the proxyless build only (the plain one was reported above) */
                    tx->cur = proxyless && !(fl & TR_REJECTED) ? &cur : NULL;
                    if (!proxyless && up_fast) {
                        memset(&uo, 0, sizeof uo);
                        uo.cached = ub->v[i].cache;
                    } else if (!proxyless && !(fl & TR_REJECTED))
                        uo = built[i];
                    else
                        uo = build_upstream(tx, up, endpoint_set(tx, ub->v[i].ns, ub->v[i].name), proxyless);
                    if (proxyless && cur.errors)
                        continue;
                    if (uo.cached) {
                        tr_out_add_blob(tx, SL_XDS_CLUSTER, uo.cached->cluster);
                        if (uo.cached->cla)
                            tr_out_add_blob(tx, SL_XDS_ENDPOINT, uo.cached->cla);
                        continue;
                    }
                    if (uo.cluster)
                        tr_out_add(tx, SL_XDS_CLUSTER, uo.cluster->name, &uo.cluster->base);
                    for (size_t k = 0; uo.cluster && k < uo.n_secrets; k++)
                        tr_out_add(tx, SL_XDS_SECRET, uo.secrets[k]->name, uo.secrets[k]->msg);
                    if (uo.cla)
                        tr_out_add(tx, SL_XDS_ENDPOINT, uo.cla->cluster_name, &uo.cla->base);
                }
                tx->cur = saved;
            }
            op->proxyless = proxyless;
            if ((rc = pack_proxy(tx, op, &memo, whole)) != SL_OK)
                goto out;
        }
        qsort(res->proxies, res->n_proxies, sizeof *res->proxies, cmp_proxy);
    }
    validate_unselected(tx);
    if (tx->opts.defer_reports) { /* finished by sl_tr_result_finish() */
        res->pending = tx;
        s->pending = res;
        *out = res;
        return SL_OK;
    }
    rc = tr_finish(tx, res);
out:
    tr_ctx_free(tx);
    if (rc != SL_OK) {
        sl_tr_result_free(res);
        return rc;
    }
    *out = res;
    return SL_OK;
}

static sl_tr_resource *proxy_find_mut(sl_tr_proxy *p, sl_xds_type t, const char *name)
{
    size_t lo = 0, hi = p->n[t];
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(p->res[t][mid].name, name);
        if (c == 0)
            return &p->res[t][mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* Frees (or, when shared, lets go of) a resource's name and bytes. A
 * shared resource's name is the blob's, and so are its bytes unless
 * sl_tr_translate_endpoints() replaced them. */
static void resource_data_free(sl_tr_resource *r)
{
    if (r->shared) {
        if (r->data != r->shared->data)
            free(r->data);
        tr_blob_unref(r->shared);
    } else {
        free(r->name);
        free(r->data);
    }
    r->shared = NULL;
    r->name = NULL;
    r->data = NULL;
}

/* Packs m into a malloc'ed buffer (the arena holds m). */
static uint8_t *pack_heap(const ProtobufCMessage *m, size_t *len) { return tr_pack_heap(m, len); }

sl_status sl_tr_translate_endpoints(sl_tr_result *res, sl_tr_store *s, const char *const *ns,
                                    const char *const *names, size_t n, const sl_tr_options *opts, bool *done,
                                    size_t *changed)
{
    tr_ctx *tx = calloc(1, sizeof *tx);
    volatile sl_status rc = SL_OK;
    /* new CLA bytes per (change, proxy), applied only when all are possible */
    uint8_t **volatile data = NULL;
    size_t *volatile lens = NULL;
    size_t np = res->n_proxies;
    volatile size_t n_changed = 0;

    tr_store_settle(s); /* before the store's positions are read */

    *done = false;
    if (changed)
        *changed = 0;
    if (!tx)
        return SL_ERR_NOMEM;
    data = calloc(n * np + 1, sizeof *data);
    lens = calloc(n * np + 1, sizeof *lens);
    if (!data || !lens) {
        rc = SL_ERR_NOMEM;
        goto out;
    }
    init_kinds();
    sl_arena_init(&tx->arena, 16 * 1024);
    if (setjmp(tx->oom)) {
        rc = sl_error_set(SL_ERR_NOMEM, "out of memory translating endpoints");
        goto out;
    }
    ctx_setup(tx, s, opts);
    for (size_t i = 0; i < n; i++) {
        long pos = tr_bucket_find(bucket(tx, K_UPSTREAM), ns[i], names[i]);
        const tr_entry *e;
        const Sluice__V1__EndpointSet *eps = endpoint_set(tx, ns[i], names[i]);
        const char *cname;
        if (pos < 0 || !eps)
            goto out; /* an upstream or endpoint set that does not exist: full */
        e = &bucket(tx, K_UPSTREAM)->v[pos];
        if (e->good != e->msg)
            goto out; /* rejected or never translated: full */
        cname = tr_cluster_name(tx, e->name, e->ns);
        for (int proxyless = 0; proxyless < 2; proxyless++) {
            tr_cur cur = cur_of(K_UPSTREAM, e);
            up_out uo = {0};
            bool built = false;
            for (size_t p = 0; p < np; p++) {
                sl_tr_proxy *pr = &res->proxies[p];
                sl_tr_resource *c, *cla;
                size_t clen;
                uint8_t *cb;
                if (pr->proxyless != (bool)proxyless)
                    continue;
                c = proxy_find_mut(pr, SL_XDS_CLUSTER, cname);
                cla = proxy_find_mut(pr, SL_XDS_ENDPOINT, cname);
                if (!c && !cla)
                    continue; /* not served by this proxy */
                if (!c || !cla)
                    goto out;
                if (!built) {
                    reset_out(tx);
                    tx->cur = &cur;
                    uo = build_upstream(tx, (const Sluice__V1__Upstream *)e->msg, eps, proxyless);
                    tx->cur = NULL;
                    built = true;
                    if (cur.errors || !uo.cluster || !uo.cla)
                        goto out;
                }
                /* the cluster must be the same, byte for byte */
                if (!(cb = pack_heap(&uo.cluster->base, &clen))) {
                    rc = SL_ERR_NOMEM;
                    goto out;
                }
                if (clen != c->len || memcmp(cb, c->data, clen) != 0) {
                    free(cb);
                    goto out;
                }
                free(cb);
                if (!(data[i * np + p] = pack_heap(&uo.cla->base, (size_t *)&lens[i * np + p]))) {
                    rc = SL_ERR_NOMEM;
                    goto out;
                }
            }
        }
    }
    /* every change is possible: a proxy's shared endpoint list is changed
     * in a copy (its entries still the list's), made first */
    for (size_t p = 0; p < np; p++) {
        sl_tr_proxy *pr = &res->proxies[p];
        bool touched = false;
        for (size_t i = 0; i < n && !touched; i++)
            touched = data[i * np + p] != NULL;
        if (touched && pr->lists[SL_XDS_ENDPOINT] && pr->res[SL_XDS_ENDPOINT] == pr->lists[SL_XDS_ENDPOINT]->v) {
            size_t ne = pr->n[SL_XDS_ENDPOINT];
            sl_tr_resource *copy = malloc((ne + 1) * sizeof *copy);
            if (!copy) {
                rc = SL_ERR_NOMEM;
                goto out;
            }
            memcpy(copy, pr->res[SL_XDS_ENDPOINT], ne * sizeof *copy);
            pr->res[SL_XDS_ENDPOINT] = copy;
        }
    }
    /* then apply */
    for (size_t i = 0; i < n; i++)
        for (size_t p = 0; p < np; p++) {
            uint8_t *d = data[i * np + p];
            sl_tr_resource *cla;
            sl_tr_proxy *pr = &res->proxies[p];
            if (!d)
                continue;
            cla = proxy_find_mut(pr, SL_XDS_ENDPOINT, tr_cluster_name(tx, names[i], ns[i]));
            if (cla->len != lens[i * np + p] || memcmp(cla->data, d, cla->len) != 0)
                n_changed++;
            if (!cla->shared || cla->data != cla->shared->data)
                free(cla->data); /* else the blob keeps it, and the name */
            cla->data = d;
            cla->len = lens[i * np + p];
            data[i * np + p] = NULL;
        }
    *done = true;
    if (changed)
        *changed = n_changed;
out:
    if (data)
        for (size_t i = 0; i < n * np; i++)
            free(data[i]);
    free(data);
    free(lens);
    sl_arena_deinit(&tx->arena);
    free(tx);
    return rc;
}

void sl_tr_result_free(sl_tr_result *r)
{
    if (!r)
        return;
    sl_tr_result_finish(r); /* a pending one: what it decided about the store still applies */
    for (size_t i = 0; i < r->n_proxies; i++) {
        sl_tr_proxy *p = &r->proxies[i];
        for (int t = 0; t < SL_XDS_TYPE_COUNT; t++) {
            if (p->lists[t]) { /* the list owns the resources, bar bytes replaced in a copy */
                if (p->res[t] != p->lists[t]->v) {
                    for (size_t j = 0; j < p->n[t]; j++)
                        if (p->res[t][j].data != p->res[t][j].shared->data)
                            free(p->res[t][j].data);
                    free(p->res[t]);
                }
                tr_rlist_unref(p->lists[t]);
                continue;
            }
            for (size_t j = 0; j < p->n[t]; j++)
                resource_data_free(&p->res[t][j]);
            free(p->res[t]);
        }
        free(p->name);
    }
    free(r->proxies);
    for (size_t i = 0; i < r->n_reports; i++) {
        sl_tr_report *rp = &r->reports[i];
        if (rp->shared) {
            if (!report_borrowed(r, i))
                tr_rblob_unref(rp->shared);
            continue;
        }
        free(rp->ns);
        free(rp->name);
        free(rp->reason);
        free(rp->resource_version);
        for (size_t j = 0; j < rp->n_warnings; j++)
            free(rp->warnings[j]);
        free(rp->warnings);
    }
    free(r->reports);
    tr_replist_unref(r->replist);
    free(r);
}

const sl_tr_proxy *sl_tr_result_proxy(const sl_tr_result *r, const char *name)
{
    for (size_t i = 0; i < r->n_proxies; i++)
        if (strcmp(r->proxies[i].name, name) == 0)
            return &r->proxies[i];
    return NULL;
}

bool sl_tr_proxy_list_shared(const sl_tr_proxy *p, sl_xds_type t)
{
    return (unsigned)t < SL_XDS_TYPE_COUNT && p->lists[t] && p->res[t] == p->lists[t]->v;
}

const sl_tr_resource *sl_tr_proxy_find(const sl_tr_proxy *p, sl_xds_type t, const char *name)
{
    for (size_t i = 0; p && i < p->n[t]; i++)
        if (strcmp(p->res[t][i].name, name) == 0)
            return &p->res[t][i];
    return NULL;
}

const sl_tr_report *sl_tr_result_report(const sl_tr_result *r, const char *kind, const char *ns, const char *name)
{
    for (size_t i = 0; i < r->n_reports; i++)
        if (strcmp(r->reports[i].kind->kind, kind) == 0 && strcmp(r->reports[i].ns, ns) == 0 &&
            strcmp(r->reports[i].name, name) == 0)
            return &r->reports[i];
    return NULL;
}

const ProtobufCMessageDescriptor *sl_tr_type_descriptor(sl_xds_type t)
{
    switch (t) {
    case SL_XDS_SECRET:
        return &envoy__extensions__transport_sockets__tls__v3__secret__descriptor;
    case SL_XDS_CLUSTER:
        return &envoy__config__cluster__v3__cluster__descriptor;
    case SL_XDS_ENDPOINT:
        return &envoy__config__endpoint__v3__cluster_load_assignment__descriptor;
    case SL_XDS_LISTENER:
        return &envoy__config__listener__v3__listener__descriptor;
    case SL_XDS_ROUTE:
        return &envoy__config__route__v3__route_configuration__descriptor;
    default:
        return NULL;
    }
}
