/* sluice/grpc_reflect.h - gRPC services of a server from its reflection service (function discovery).
 *
 * Asks grpc.reflection.v1 (else v1alpha) ServerReflection for the services
 * a server offers and the file descriptors that define them, with their
 * dependencies, over gRPC core:
 *
 *   sl_reflect_result r;
 *   if (sl_reflect_discover(&r, "127.0.0.1:9000", 5000, NULL) != SL_OK) ... sl_error_msg() ...
 *   ... r.services, r.descriptors (a packed google.protobuf.FileDescriptorSet) ...
 *   sl_reflect_result_deinit(&r);
 *
 * The message codec (requests, responses, descriptor sets) is public for
 * tests and fuzzing. Ownership: a result owns every string and buffer in
 * it; a decoded response points into the bytes it was decoded from. gRPC
 * core must be initialised (grpc_init()) by the caller.
 */
#ifndef SLUICE_GRPC_REFLECT_H
#define SLUICE_GRPC_REFLECT_H

#include <stddef.h>
#include <stdint.h>

#include "sluice/status.h"

/* One service (reflection's and health's are left out). */
typedef struct sl_reflect_service {
    char *package; /* "bookstore.v1", "" when none */
    char *name;    /* "Bookstore" */
    char **methods; /* in the order of the file */
    size_t n_methods;
} sl_reflect_service;

typedef struct sl_reflect_result {
    sl_reflect_service *services; /* sorted by package, then name */
    size_t n_services;
    uint8_t *descriptors; /* packed FileDescriptorSet: the services' files and their dependencies */
    size_t len;
    size_t n_files;
    const char *version; /* "v1" or "v1alpha": what answered (static) */
} sl_reflect_result;

void sl_reflect_result_deinit(sl_reflect_result *r);

/* Bounds: files and bytes of descriptors collected from one server. */
#define SL_REFLECT_MAX_FILES 512
#define SL_REFLECT_MAX_BYTES (16u << 20)

/* TLS towards the server; strings (PEM) belong to the caller. */
typedef struct sl_reflect_tls {
    const char *root_ca;                  /* CAs that verify the server; NULL: gRPC's default roots */
    const char *cert_chain, *private_key; /* a client certificate, both or neither (NULL) */
    const char *server_name;              /* sent as SNI and checked in the certificate; NULL: target's host */
} sl_reflect_tls;

/* Asks the server at target ("host:port") within timeout_ms per call, in
 * plaintext (tls NULL) or over TLS. SL_ERR_IO (unreachable, a failed
 * handshake, no reflection service: the message has the gRPC status and
 * its details), SL_ERR_PARSE (a malformed answer), SL_ERR_INVALID (over a
 * bound, a dependency the server does not have), SL_ERR_NOMEM. On error
 * *out is zeroed. */
sl_status sl_reflect_discover(sl_reflect_result *out, const char *target, int64_t timeout_ms,
                              const sl_reflect_tls *tls);

/* ---- the codec ---------------------------------------------------------- */

/* ServerReflectionRequest fields */
enum {
    SL_REFLECT_REQ_FILE_BY_NAME = 3,
    SL_REFLECT_REQ_SYMBOL = 4,
    SL_REFLECT_REQ_LIST_SERVICES = 7,
};

/* Packs a request asking what (one of the fields above) about arg ("*"
 * for the list). *out is malloc'd. */
sl_status sl_reflect_request_encode(uint8_t **out, size_t *len, int what, const char *arg);

typedef struct sl_reflect_bytes {
    const uint8_t *data;
    size_t len;
} sl_reflect_bytes;

typedef enum sl_reflect_kind {
    SL_REFLECT_NONE,
    SL_REFLECT_LIST,  /* items: service names */
    SL_REFLECT_FILES, /* items: FileDescriptorProto bytes */
    SL_REFLECT_ERROR, /* error_code, error_message */
} sl_reflect_kind;

/* A decoded ServerReflectionResponse; items and error_message point into
 * the bytes decoded. */
typedef struct sl_reflect_response {
    sl_reflect_kind kind;
    sl_reflect_bytes *items; /* malloc'd array */
    size_t n_items;
    int64_t error_code;
    sl_reflect_bytes error_message;
} sl_reflect_response;

/* SL_ERR_PARSE for malformed bytes (with the field), SL_ERR_NOMEM. */
sl_status sl_reflect_response_decode(sl_reflect_response *out, const uint8_t *data, size_t len);
void sl_reflect_response_deinit(sl_reflect_response *r);

/* A set of file descriptors being collected: add files, ask what is
 * missing, build the result. Caller storage; sl_reflect_files_deinit()
 * frees it. */
typedef struct sl_reflect_files {
    char **names;      /* file names, as declared in each FileDescriptorProto */
    uint8_t **data;    /* copies of their bytes */
    size_t *len;
    size_t n, cap, total;
} sl_reflect_files;

void sl_reflect_files_init(sl_reflect_files *f);
void sl_reflect_files_deinit(sl_reflect_files *f);

/* Adds one FileDescriptorProto (a file already present is skipped).
 * SL_ERR_PARSE when it is not one, SL_ERR_INVALID over the bounds. */
sl_status sl_reflect_files_add(sl_reflect_files *f, const uint8_t *data, size_t len);

/* The first dependency of a file that is not in the set, or NULL. Valid
 * until the set changes. */
const char *sl_reflect_files_missing(const sl_reflect_files *f);

/* The services of the set's files and the packed FileDescriptorSet. */
sl_status sl_reflect_files_result(sl_reflect_result *out, const sl_reflect_files *f);

#endif
