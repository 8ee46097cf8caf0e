/* client.c - ServerReflectionInfo calls over gRPC core: one request per call, v1 then v1alpha. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>

#include "sluice/grpc_reflect.h"
#include "sluice/grpc_unary.h"

static const char *const methods[] = {"/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
                                      "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"};
static const char *const versions[] = {"v1", "v1alpha"};

typedef struct rclient {
    grpc_channel *ch;
    grpc_completion_queue *cq;
    int64_t timeout_ms;
    int method; /* index in methods */
} rclient;

/* One call: sends req, half-closes, receives one answer (malloc'd in
 * *out) and the status. SL_ERR_UNSUPPORTED when the method is not
 * implemented (try the other version). */
static sl_status call_once(rclient *c, const uint8_t *req, size_t len, uint8_t **out, size_t *out_len)
{
    gpr_timespec deadline = gpr_time_add(gpr_now(GPR_CLOCK_REALTIME),
                                         gpr_time_from_millis(c->timeout_ms, GPR_TIMESPAN));
    grpc_byte_buffer *bb = sl_grpc_buffer(req, len);
    sl_grpc_reply r;
    sl_status rc = SL_OK;
    *out = NULL;
    *out_len = 0;
    if (sl_grpc_unary(&r, c->ch, c->cq, methods[c->method], bb, deadline) != SL_OK) {
        rc = sl_error_set(SL_ERR_IO, "cannot start a reflection call");
        goto out;
    }
    if (r.status == GRPC_STATUS_UNIMPLEMENTED) {
        rc = SL_ERR_UNSUPPORTED;
    } else if (r.status != GRPC_STATUS_OK || !r.has_answer) {
        rc = sl_error_set(SL_ERR_IO, "%s: gRPC status %d%s%s", methods[c->method], (int)r.status,
                          r.details[0] ? ": " : "", r.details);
    } else {
        *out_len = GRPC_SLICE_LENGTH(r.answer);
        if ((*out = malloc(*out_len ? *out_len : 1)))
            memcpy(*out, GRPC_SLICE_START_PTR(r.answer), *out_len);
        else
            rc = sl_error_set(SL_ERR_NOMEM, "out of memory");
    }
    sl_grpc_reply_deinit(&r);
out:
    grpc_byte_buffer_destroy(bb);
    return rc;
}

/* Asks one question; *resp points into *buf (free it after). */
static sl_status ask(rclient *c, int what, const char *arg, sl_reflect_response *resp, uint8_t **buf)
{
    uint8_t *req;
    size_t len, n;
    sl_status rc = sl_reflect_request_encode(&req, &len, what, arg);
    if (rc != SL_OK)
        return rc;
    rc = call_once(c, req, len, buf, &n);
    if (rc == SL_ERR_UNSUPPORTED && c->method == 0) {
        c->method = 1; /* an older server: v1alpha */
        rc = call_once(c, req, len, buf, &n);
    }
    free(req);
    if (rc == SL_ERR_UNSUPPORTED)
        return sl_error_set(SL_ERR_IO, "the server has no reflection service (v1 or v1alpha)");
    if (rc != SL_OK)
        return rc;
    if ((rc = sl_reflect_response_decode(resp, *buf, n)) != SL_OK)
        return rc;
    if (resp->kind == SL_REFLECT_ERROR)
        return sl_error_set(SL_ERR_INVALID, "reflection about %s: error %lld: %.*s", arg, (long long)resp->error_code,
                            (int)resp->error_message.len, (const char *)resp->error_message.data);
    return SL_OK;
}

/* Adds the files of one answer about arg. */
static sl_status collect(rclient *c, sl_reflect_files *files, int what, const char *arg)
{
    sl_reflect_response r = {0};
    uint8_t *buf = NULL;
    sl_status rc = ask(c, what, arg, &r, &buf);
    if (rc == SL_OK && r.kind != SL_REFLECT_FILES)
        rc = sl_error_set(SL_ERR_PARSE, "reflection about %s: no file descriptors in the answer", arg);
    for (size_t i = 0; rc == SL_OK && i < r.n_items; i++)
        rc = sl_reflect_files_add(files, r.items[i].data, r.items[i].len);
    sl_reflect_response_deinit(&r);
    free(buf);
    return rc;
}

static sl_status run(rclient *c, sl_reflect_result *out)
{
    sl_reflect_response list = {0};
    sl_reflect_files files;
    uint8_t *buf = NULL;
    char name[1024];
    const char *dep;
    sl_status rc = ask(c, SL_REFLECT_REQ_LIST_SERVICES, "*", &list, &buf);
    if (rc != SL_OK) {
        sl_reflect_response_deinit(&list);
        free(buf);
        return rc;
    }
    sl_reflect_files_init(&files);
    if (list.kind != SL_REFLECT_LIST)
        rc = sl_error_set(SL_ERR_PARSE, "list_services: no service list in the answer");
    for (size_t i = 0; rc == SL_OK && i < list.n_items; i++) {
        snprintf(name, sizeof name, "%.*s", (int)list.items[i].len, (const char *)list.items[i].data);
        if (strncmp(name, "grpc.reflection.", 16) != 0 && strncmp(name, "grpc.health.", 12) != 0)
            rc = collect(c, &files, SL_REFLECT_REQ_SYMBOL, name);
    }
    while (rc == SL_OK && (dep = sl_reflect_files_missing(&files))) {
        snprintf(name, sizeof name, "%s", dep);
        rc = collect(c, &files, SL_REFLECT_REQ_FILE_BY_NAME, name);
        if (rc == SL_OK && sl_reflect_files_missing(&files) && !strcmp(sl_reflect_files_missing(&files), name))
            rc = sl_error_set(SL_ERR_INVALID, "the server does not have the dependency %s", name);
    }
    if (rc == SL_OK)
        rc = sl_reflect_files_result(out, &files);
    if (rc == SL_OK)
        out->version = versions[c->method];
    sl_reflect_response_deinit(&list);
    free(buf);
    sl_reflect_files_deinit(&files);
    return rc;
}

/* Plaintext, or TLS with the caller's roots, key pair and name. */
static grpc_channel_credentials *credentials(const sl_reflect_tls *tls)
{
    if (!tls)
        return grpc_insecure_credentials_create();
    grpc_ssl_pem_key_cert_pair kp = {.private_key = tls->private_key, .cert_chain = tls->cert_chain};
    return grpc_ssl_credentials_create(tls->root_ca, tls->cert_chain && tls->private_key ? &kp : NULL, NULL, NULL);
}

sl_status sl_reflect_discover(sl_reflect_result *out, const char *target, int64_t timeout_ms,
                              const sl_reflect_tls *tls)
{
    rclient c = {.timeout_ms = timeout_ms > 0 ? timeout_ms : 5000};
    memset(out, 0, sizeof *out);
    grpc_channel_credentials *cr = credentials(tls);
    grpc_arg args[2] = {{.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH,
                         .value.integer = (int)SL_REFLECT_MAX_BYTES}};
    grpc_channel_args ca = {.num_args = 1, .args = args};
    if (tls && tls->server_name && tls->server_name[0]) {
        args[1] = (grpc_arg){.type = GRPC_ARG_STRING, .key = GRPC_SSL_TARGET_NAME_OVERRIDE_ARG,
                             .value.string = (char *)tls->server_name};
        ca.num_args = 2;
    }
    c.ch = cr ? grpc_channel_create(target, cr, &ca) : NULL;
    if (cr)
        grpc_channel_credentials_release(cr);
    c.cq = grpc_completion_queue_create_for_pluck(NULL);
    sl_status rc = c.ch && c.cq ? run(&c, out) : sl_error_set(SL_ERR_NOMEM, "cannot create a gRPC channel");
    if (c.cq) {
        grpc_completion_queue_shutdown(c.cq);
        grpc_completion_queue_destroy(c.cq);
    }
    if (c.ch)
        grpc_channel_destroy(c.ch);
    if (rc != SL_OK)
        sl_reflect_result_deinit(out);
    return rc;
}
