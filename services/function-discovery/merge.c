/* merge.c - discovered functions into an Upstream's serviceSpec.rest, a person's own functions kept. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fds.h"
#include "sluice/lambda.h"
#include "sluice/config.h"
#include "sluice/flags.h"
#include "sluice/kinds.h"
#include "sluice/upstreams.h"
#include "sluice/vec.h"

static sl_status add_header(Sluice__V1__TransformationTemplate *t, size_t *cap, const char *key, const char *text)
{
    Sluice__V1__TransformationTemplate__HeadersEntry *e = malloc(sizeof *e);
    Sluice__V1__InjaTemplate *v = malloc(sizeof *v);
    if (!e || !v || SL_VEC_RESERVE(t->headers, *cap, t->n_headers + 1) != SL_OK)
        goto nomem;
    sluice__v1__transformation_template__headers_entry__init(e);
    sluice__v1__inja_template__init(v);
    e->key = strdup(key);
    v->text = strdup(text);
    e->value = v;
    t->headers[t->n_headers++] = e;
    if (!e->key || !v->text)
        return sl_error_set(SL_ERR_NOMEM, "out of memory");
    return SL_OK;
nomem:
    free(e);
    free(v);
    return sl_error_set(SL_ERR_NOMEM, "out of memory");
}

/* Gloo's request template for one function. */
static Sluice__V1__TransformationTemplate *mk_template(const sl_openapi_function *f)
{
    Sluice__V1__TransformationTemplate *t = malloc(sizeof *t);
    size_t cap = 0;
    char *path = sl_openapi_path_template(f), *body = sl_openapi_body_template(f), def[300];
    sl_status rc = SL_OK;
    if (!t || !path || (f->body_object && !body)) {
        free(t);
        t = NULL;
        goto out;
    }
    sluice__v1__transformation_template__init(t);
    /* headers in name order: ":method", ":path", then the rest */
    rc = add_header(t, &cap, ":method", f->method);
    if (rc == SL_OK)
        rc = add_header(t, &cap, ":path", path);
    if (rc == SL_OK && body)
        rc = add_header(t, &cap, "content-type", "application/json");
    for (size_t i = 0; i < f->n_params && rc == SL_OK; i++)
        if (f->params[i].in == SL_OPENAPI_IN_HEADER && strcasecmp(f->params[i].name, "content-type") != 0) {
            snprintf(def, sizeof def, "{{ default(%s, \"\") }}", f->params[i].name);
            rc = add_header(t, &cap, f->params[i].name, def);
        }
    if (rc == SL_OK && body) {
        Sluice__V1__InjaTemplate *b = malloc(sizeof *b);
        if (b) {
            sluice__v1__inja_template__init(b);
            b->text = body;
            body = NULL;
            t->body_transformation_case = SLUICE__V1__TRANSFORMATION_TEMPLATE__BODY_TRANSFORMATION_BODY;
            t->body = b;
        } else
            rc = SL_ERR_NOMEM;
    } else if (rc == SL_OK) {
        Sluice__V1__Passthrough *p = malloc(sizeof *p);
        if (p) {
            sluice__v1__passthrough__init(p);
            t->body_transformation_case = SLUICE__V1__TRANSFORMATION_TEMPLATE__BODY_TRANSFORMATION_PASSTHROUGH;
            t->passthrough = p;
        } else
            rc = SL_ERR_NOMEM;
    }
    if (rc != SL_OK) {
        protobuf_c_message_free_unpacked(&t->base, NULL);
        t = NULL;
    }
out:
    free(path);
    free(body);
    return t;
}

/* The rest spec of u, created when missing; NULL with an error when the
 * upstream has no place for one or serves gRPC. */
static Sluice__V1__RestServiceSpec *rest_of(Sluice__V1__Upstream *u)
{
    Sluice__V1__ServiceSpec **slot = sl_upstream_service_spec_slot(u);
    if (!slot) {
        sl_error_set(SL_ERR_UNSUPPORTED, "only static and dns upstreams have REST functions");
        return NULL;
    }
    if (!*slot) {
        if (!(*slot = malloc(sizeof **slot)))
            goto nomem;
        sluice__v1__service_spec__init(*slot);
    }
    if ((*slot)->plugin_type_case == SLUICE__V1__SERVICE_SPEC__PLUGIN_TYPE__NOT_SET) {
        Sluice__V1__RestServiceSpec *r = malloc(sizeof *r);
        if (!r)
            goto nomem;
        sluice__v1__rest_service_spec__init(r);
        (*slot)->plugin_type_case = SLUICE__V1__SERVICE_SPEC__PLUGIN_TYPE_REST;
        (*slot)->rest = r;
    }
    if ((*slot)->plugin_type_case != SLUICE__V1__SERVICE_SPEC__PLUGIN_TYPE_REST) {
        sl_error_set(SL_ERR_UNSUPPORTED, "serviceSpec is not rest");
        return NULL;
    }
    return (*slot)->rest;
nomem:
    sl_error_set(SL_ERR_NOMEM, "out of memory");
    return NULL;
}

static sl_status set_url(Sluice__V1__RestServiceSpec *r, const char *url)
{
    if (!url || (r->swagger_info && r->swagger_info->swagger_spec_case !=
                                        SLUICE__V1__REST_SERVICE_SPEC__SWAGGER_INFO__SWAGGER_SPEC__NOT_SET))
        return SL_OK;
    if (!r->swagger_info) {
        if (!(r->swagger_info = malloc(sizeof *r->swagger_info)))
            return sl_error_set(SL_ERR_NOMEM, "out of memory");
        sluice__v1__rest_service_spec__swagger_info__init(r->swagger_info);
    }
    if (!(r->swagger_info->url = strdup(url)))
        return sl_error_set(SL_ERR_NOMEM, "out of memory");
    r->swagger_info->swagger_spec_case = SLUICE__V1__REST_SERVICE_SPEC__SWAGGER_INFO__SWAGGER_SPEC_URL;
    return SL_OK;
}

static void list_add(char **list, size_t *len, size_t *cap, const char *name)
{
    size_t n = strlen(name);
    if (SL_VEC_RESERVE(*list, *cap, *len + n + 2) != SL_OK)
        return;
    if (*len)
        (*list)[(*len)++] = ',';
    memcpy(*list + *len, name, n + 1);
    *len += n;
}

sl_status fd_merge(Sluice__V1__Upstream *u, const sl_openapi_doc *doc, const char *url, const char *source,
                   char **clashes)
{
    Sluice__V1__RestServiceSpec *r = rest_of(u);
    Sluice__V1__Metadata *md = u->metadata;
    char *owned_list = NULL, *clash = NULL;
    size_t n_owned = 0, cap_owned = 0, n_clash = 0, cap_clash = 0, cap = 0, n = 0;
    Sluice__V1__RestServiceSpec__TransformationsEntry **v = NULL;
    sl_status rc = SL_OK;

    *clashes = NULL;
    if (!r || !md)
        return r ? sl_error_set(SL_ERR_INVALID, "the upstream has no metadata") : SL_ERR_UNSUPPORTED;
    const char *owned = sl_kind_annotation(md, FD_ANN_FUNCTIONS);
    /* a person's functions first, in their order */
    for (size_t i = 0; i < r->n_transformations; i++) {
        Sluice__V1__RestServiceSpec__TransformationsEntry *e = r->transformations[i];
        if (owned && sl_list_has(owned, e->key)) {
            protobuf_c_message_free_unpacked(&e->base, NULL);
            continue;
        }
        if (SL_VEC_RESERVE(v, cap, n + 1) != SL_OK) {
            protobuf_c_message_free_unpacked(&e->base, NULL);
            rc = SL_ERR_NOMEM;
            continue;
        }
        v[n++] = e;
    }
    size_t n_person = n;
    for (size_t i = 0; i < doc->n_functions && rc == SL_OK; i++) {
        const sl_openapi_function *f = &doc->functions[i];
        bool mine = true;
        for (size_t j = 0; j < n_person && mine; j++)
            mine = strcmp(v[j]->key, f->name) != 0;
        if (!mine) {
            list_add(&clash, &n_clash, &cap_clash, f->name);
            continue;
        }
        Sluice__V1__RestServiceSpec__TransformationsEntry *e = malloc(sizeof *e);
        if (!e || SL_VEC_RESERVE(v, cap, n + 1) != SL_OK) {
            free(e);
            rc = SL_ERR_NOMEM;
            break;
        }
        sluice__v1__rest_service_spec__transformations_entry__init(e);
        e->key = strdup(f->name);
        e->value = mk_template(f);
        v[n++] = e;
        if (!e->key || !e->value) {
            rc = SL_ERR_NOMEM;
            break;
        }
        list_add(&owned_list, &n_owned, &cap_owned, f->name);
    }
    free(r->transformations);
    r->transformations = v;
    r->n_transformations = n;
    if (rc == SL_OK)
        rc = sl_cfg_set_annotation(md, FD_ANN_FUNCTIONS, owned_list ? owned_list : "");
    if (rc == SL_OK)
        rc = sl_cfg_set_annotation(md, FD_ANN_SOURCE, source);
    if (rc == SL_OK)
        rc = set_url(r, url);
    free(owned_list);
    if (rc != SL_OK) {
        free(clash);
        return rc == SL_ERR_NOMEM ? sl_error_set(SL_ERR_NOMEM, "out of memory") : rc;
    }
    *clashes = clash;
    return SL_OK;
}

static Sluice__V1__GrpcServiceSpec__GrpcService *mk_grpc_service(const sl_reflect_service *rs)
{
    Sluice__V1__GrpcServiceSpec__GrpcService *g = malloc(sizeof *g);
    if (!g)
        return NULL;
    sluice__v1__grpc_service_spec__grpc_service__init(g);
    g->package_name = strdup(rs->package);
    g->service_name = strdup(rs->name);
    g->function_names = calloc(rs->n_methods + 1, sizeof *g->function_names);
    if (!g->package_name || !g->service_name || !g->function_names) {
        protobuf_c_message_free_unpacked(&g->base, NULL);
        return NULL;
    }
    for (size_t m = 0; m < rs->n_methods; m++)
        if ((g->function_names[g->n_function_names] = strdup(rs->methods[m])))
            g->n_function_names++;
    return g;
}

sl_status fd_merge_grpc(Sluice__V1__Upstream *u, const sl_reflect_result *res, const char *source)
{
    Sluice__V1__ServiceSpec **slot = sl_upstream_service_spec_slot(u);
    char *names = NULL;
    size_t n_names = 0, cap_names = 0;
    if (!slot || !u->metadata)
        return sl_error_set(SL_ERR_UNSUPPORTED, "only static and dns upstreams have gRPC functions");
    if (!*slot) {
        if (!(*slot = malloc(sizeof **slot)))
            return sl_error_set(SL_ERR_NOMEM, "out of memory");
        sluice__v1__service_spec__init(*slot);
    }
    Sluice__V1__ServiceSpec *ss = *slot;
    if (ss->plugin_type_case == SLUICE__V1__SERVICE_SPEC__PLUGIN_TYPE__NOT_SET) {
        if (!(ss->grpc = malloc(sizeof *ss->grpc)))
            return sl_error_set(SL_ERR_NOMEM, "out of memory");
        sluice__v1__grpc_service_spec__init(ss->grpc);
        ss->plugin_type_case = SLUICE__V1__SERVICE_SPEC__PLUGIN_TYPE_GRPC;
    }
    if (ss->plugin_type_case != SLUICE__V1__SERVICE_SPEC__PLUGIN_TYPE_GRPC)
        return sl_error_set(SL_ERR_UNSUPPORTED, "serviceSpec is not grpc");
    Sluice__V1__GrpcServiceSpec *g = ss->grpc;
    for (size_t i = 0; i < g->n_grpc_services; i++)
        protobuf_c_message_free_unpacked(&g->grpc_services[i]->base, NULL);
    free(g->grpc_services);
    free(g->descriptors.data);
    g->descriptors.data = malloc(res->len ? res->len : 1);
    g->grpc_services = calloc(res->n_services + 1, sizeof *g->grpc_services);
    g->n_grpc_services = 0;
    g->descriptors.len = 0;
    if (!g->descriptors.data || !g->grpc_services)
        return sl_error_set(SL_ERR_NOMEM, "out of memory");
    memcpy(g->descriptors.data, res->descriptors, res->len);
    g->descriptors.len = res->len;
    for (size_t i = 0; i < res->n_services; i++) {
        if (!(g->grpc_services[i] = mk_grpc_service(&res->services[i])))
            return sl_error_set(SL_ERR_NOMEM, "out of memory");
        g->n_grpc_services++;
        char full[600];
        snprintf(full, sizeof full, "%s%s%s", res->services[i].package, res->services[i].package[0] ? "." : "",
                 res->services[i].name);
        list_add(&names, &n_names, &cap_names, full);
    }
    sl_status rc = sl_cfg_set_annotation(u->metadata, FD_ANN_FUNCTIONS, names ? names : "");
    if (rc == SL_OK)
        rc = sl_cfg_set_annotation(u->metadata, FD_ANN_SOURCE, source);
    free(names);
    return rc;
}

/* Gloo's naming (projects/discovery/pkg/fds/discoveries/aws): "<name>" for
 * $LATEST, "<name>:<version>" for a published version. */
static char *lambda_logical_name(const sl_lambda_fn *f)
{
    size_t n = strlen(f->name) + strlen(f->version) + 2;
    char *s = malloc(n);
    if (s)
        snprintf(s, n, !strcmp(f->version, "$LATEST") ? "%s" : "%s:%s", f->name, f->version);
    return s;
}

static int cmp_lambda(const void *a, const void *b)
{
    const Sluice__V1__LambdaFunctionSpec *x = *(Sluice__V1__LambdaFunctionSpec *const *)a,
                                         *y = *(Sluice__V1__LambdaFunctionSpec *const *)b;
    return strcmp(x->logical_name, y->logical_name);
}

/* The name routes use for f (the translator's rule: logicalName, else the function's name). */
static const char *lambda_route_name(const Sluice__V1__LambdaFunctionSpec *f)
{
    return f->logical_name[0] ? f->logical_name : f->lambda_function_name;
}

sl_status fd_merge_lambda(Sluice__V1__Upstream *u, const sl_lambda_list *l, const char *source, char **clashes)
{
    Sluice__V1__AwsUpstreamSpec *aws =
        u->spec && u->spec->upstream_type_case == SLUICE__V1__UPSTREAM_SPEC__UPSTREAM_TYPE_AWS ? u->spec->aws : NULL;
    Sluice__V1__LambdaFunctionSpec **v = NULL;
    char *owned_list = NULL, *clash = NULL;
    size_t n = 0, cap = 0, n_owned = 0, cap_owned = 0, n_clash = 0, cap_clash = 0;
    sl_status rc = SL_OK;

    *clashes = NULL;
    if (!aws || !u->metadata)
        return sl_error_set(SL_ERR_UNSUPPORTED, "only aws upstreams have Lambda functions");
    const char *owned = sl_kind_annotation(u->metadata, FD_ANN_FUNCTIONS);
    /* a person's functions first, in their order */
    for (size_t i = 0; i < aws->n_lambda_functions; i++) {
        Sluice__V1__LambdaFunctionSpec *f = aws->lambda_functions[i];
        if (owned && sl_list_has(owned, lambda_route_name(f))) {
            protobuf_c_message_free_unpacked(&f->base, NULL);
            continue;
        }
        if (SL_VEC_RESERVE(v, cap, n + 1) != SL_OK) {
            protobuf_c_message_free_unpacked(&f->base, NULL);
            rc = SL_ERR_NOMEM;
            continue;
        }
        v[n++] = f;
    }
    size_t n_person = n;
    for (size_t i = 0; i < l->n && rc == SL_OK; i++) {
        Sluice__V1__LambdaFunctionSpec *f = malloc(sizeof *f);
        if (!f || SL_VEC_RESERVE(v, cap, n + 1) != SL_OK) {
            free(f);
            rc = SL_ERR_NOMEM;
            break;
        }
        sluice__v1__lambda_function_spec__init(f);
        f->logical_name = lambda_logical_name(&l->fns[i]);
        f->lambda_function_name = strdup(l->fns[i].name);
        f->qualifier = strdup(l->fns[i].version);
        if (!f->logical_name || !f->lambda_function_name || !f->qualifier) {
            free(f->logical_name);
            free(f->lambda_function_name);
            free(f->qualifier);
            free(f);
            rc = SL_ERR_NOMEM;
            break;
        }
        bool mine = true;
        for (size_t j = 0; j < n_person && mine; j++)
            mine = strcmp(lambda_route_name(v[j]), f->logical_name) != 0;
        if (!mine) {
            list_add(&clash, &n_clash, &cap_clash, f->logical_name);
            protobuf_c_message_free_unpacked(&f->base, NULL);
            continue;
        }
        v[n++] = f;
    }
    /* the discovered ones sorted by logical name, as Gloo writes them: a listing in another order is no change */
    if (n > n_person)
        qsort(v + n_person, n - n_person, sizeof *v, cmp_lambda);
    for (size_t i = n_person; i < n; i++)
        list_add(&owned_list, &n_owned, &cap_owned, v[i]->logical_name);
    free(aws->lambda_functions);
    aws->lambda_functions = v;
    aws->n_lambda_functions = n;
    if (rc == SL_OK)
        rc = sl_cfg_set_annotation(u->metadata, FD_ANN_FUNCTIONS, owned_list ? owned_list : "");
    if (rc == SL_OK)
        rc = sl_cfg_set_annotation(u->metadata, FD_ANN_SOURCE, source);
    free(owned_list);
    if (rc != SL_OK) {
        free(clash);
        return rc == SL_ERR_NOMEM ? sl_error_set(SL_ERR_NOMEM, "out of memory") : rc;
    }
    *clashes = clash;
    return SL_OK;
}
