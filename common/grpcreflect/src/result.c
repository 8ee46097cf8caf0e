/* result.c - the services of a set of file descriptors, and the packed FileDescriptorSet. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "google/protobuf/descriptor.pb-c.h"
#include "sluice/grpc_reflect.h"
#include "sluice/pbcheck.h"
#include "sluice/vec.h"
#include "sluice/wire.h"

void sl_reflect_result_deinit(sl_reflect_result *r)
{
    for (size_t i = 0; i < r->n_services; i++) {
        for (size_t m = 0; m < r->services[i].n_methods; m++)
            free(r->services[i].methods[m]);
        free(r->services[i].methods);
        free(r->services[i].package);
        free(r->services[i].name);
    }
    free(r->services);
    free(r->descriptors);
    memset(r, 0, sizeof *r);
}

/* Reflection and health are the server's plumbing, not its functions. */
static bool plumbing(const char *package)
{
    return !strncmp(package, "grpc.reflection.", 16) || !strcmp(package, "grpc.health.v1");
}

static int svc_cmp(const void *a, const void *b)
{
    const sl_reflect_service *x = a, *y = b;
    int c = strcmp(x->package, y->package);
    return c ? c : strcmp(x->name, y->name);
}

static sl_status add_service(sl_reflect_result *out, size_t *cap, const char *package,
                             const Google__Protobuf__ServiceDescriptorProto *sd)
{
    if (SL_VEC_RESERVE(out->services, *cap, out->n_services + 1) != SL_OK)
        return SL_ERR_NOMEM;
    sl_reflect_service *s = &out->services[out->n_services++];
    memset(s, 0, sizeof *s);
    s->package = strdup(package);
    s->name = strdup(sd->name ? sd->name : "");
    s->methods = calloc(sd->n_method + 1, sizeof *s->methods);
    if (!s->package || !s->name || !s->methods)
        return SL_ERR_NOMEM;
    for (size_t m = 0; m < sd->n_method; m++) {
        if (!(s->methods[m] = strdup(sd->method[m]->name ? sd->method[m]->name : "")))
            return SL_ERR_NOMEM;
        s->n_methods++;
    }
    return SL_OK;
}

sl_status sl_reflect_files_result(sl_reflect_result *out, const sl_reflect_files *f)
{
    size_t cap = 0, total = 0;
    sl_status rc = SL_OK;
    memset(out, 0, sizeof *out);
    for (size_t i = 0; i < f->n && rc == SL_OK; i++) {
        ProtobufCMessage *m = NULL;
        if (sl_pb_unpack(&m, &google__protobuf__file_descriptor_proto__descriptor, NULL, f->data[i], f->len[i]) !=
            SL_OK)
            continue; /* checked when added */
        const Google__Protobuf__FileDescriptorProto *fd = (const Google__Protobuf__FileDescriptorProto *)m;
        const char *pkg = fd->package ? fd->package : "";
        for (size_t s = 0; s < fd->n_service && rc == SL_OK && !plumbing(pkg); s++)
            rc = add_service(out, &cap, pkg, fd->service[s]);
        protobuf_c_message_free_unpacked(m, NULL);
        total += sl_wire_ld_len(f->len[i]) + 8;
    }
    if (rc == SL_OK && !(out->descriptors = malloc(total ? total : 1)))
        rc = SL_ERR_NOMEM;
    if (rc != SL_OK) {
        sl_reflect_result_deinit(out);
        return sl_error_set(SL_ERR_NOMEM, "out of memory");
    }
    /* FileDescriptorSet { repeated FileDescriptorProto file = 1; } */
    uint8_t *p = out->descriptors;
    for (size_t i = 0; i < f->n; i++)
        p = sl_wire_ld(p, 1, f->data[i], f->len[i]);
    out->len = (size_t)(p - out->descriptors);
    out->n_files = f->n;
    if (out->n_services > 1)
        qsort(out->services, out->n_services, sizeof *out->services, svc_cmp);
    return SL_OK;
}
