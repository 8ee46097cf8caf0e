/* sluice/openapi.h - OpenAPI/Swagger documents to REST functions (function discovery).
 *
 * Reads a Swagger 2.0 or OpenAPI 3.0/3.1 document, JSON or YAML, resolves
 * its local $refs ("#/..."), and lists every operation as a function: name,
 * method, path template, path/query/header parameters, request body. What
 * cannot be mapped (a formData or cookie parameter, a non-JSON body, a $ref
 * to another file, a value of the wrong type) is a warning naming its JSON
 * pointer; nothing is dropped silently. Whole-document problems (not
 * YAML/JSON, no version, over a limit, a $ref cycle in what must be read)
 * are errors.
 *
 *   sl_openapi_doc d;
 *   if (sl_openapi_parse(&d, text, len, NULL) != SL_OK) ... sl_error_msg() ...
 *   for (size_t i = 0; i < d.n_functions; i++) ... d.functions[i] ...
 *   sl_openapi_doc_deinit(&d);
 *
 * Ownership: a doc owns every string and array in it (malloc'd); nothing
 * points into the input. Thread safe (no global state).
 */
#ifndef SLUICE_OPENAPI_H
#define SLUICE_OPENAPI_H

#include <stdbool.h>
#include <stddef.h>

#include "sluice/status.h"

/* Where a parameter goes. */
typedef enum sl_openapi_in {
    SL_OPENAPI_IN_PATH,
    SL_OPENAPI_IN_QUERY,
    SL_OPENAPI_IN_HEADER,
    SL_OPENAPI_IN_BODY, /* a top-level property of the JSON request body */
} sl_openapi_in;

typedef struct sl_openapi_param {
    char *name;
    sl_openapi_in in;
    bool required;
    char *type; /* JSON Schema type ("string", "integer", "object", ...); "" when unknown */
} sl_openapi_param;

/* One operation. */
typedef struct sl_openapi_function {
    char *name;    /* operationId, else Gloo's rule: lower-case method + the path with '/' -> '.' */
    char *method;  /* "GET", "POST", ... */
    char *path;    /* base path + the path template, "/api/pets/{id}" */
    char *pointer; /* JSON pointer of the operation, "/paths/~1pets~1{id}/get" */
    sl_openapi_param *params; /* path, query, header, then body properties, each in document order */
    size_t n_params;
    bool has_body;     /* takes a JSON request body */
    bool body_object;  /* ... whose schema is an object with properties (params hold them) */
} sl_openapi_function;

typedef struct sl_openapi_doc {
    int major;              /* 2 (Swagger) or 3 (OpenAPI) */
    char *version;          /* "2.0", "3.0.3", "3.1.0" */
    char *title;            /* info.title, "" when none */
    sl_openapi_function *functions; /* sorted by name, names unique */
    size_t n_functions;
    char **warnings;        /* "<JSON pointer>: <what was not mapped and why>" */
    size_t n_warnings;
} sl_openapi_doc;

/* Bounds on hostile documents; 0 in a field means its default. */
typedef struct sl_openapi_limits {
    size_t max_bytes;     /* input size; default 8 MiB */
    int max_depth;        /* nesting of objects and arrays; default 64 */
    int max_ref_hops;     /* $refs followed to reach one value; default 16 */
    size_t max_functions; /* operations; default 5000 */
    size_t max_warnings;  /* kept (one more says how many were left out); default 100 */
} sl_openapi_limits;

/* Parses len bytes (JSON when the first non-blank byte is '{', else YAML;
 * YAML anchors and aliases are refused) into *out. lim may be NULL.
 * SL_ERR_PARSE (not JSON/YAML, nesting over max_depth), SL_ERR_INVALID
 * (not an OpenAPI/Swagger document, wrong types where the document's
 * shape is needed, over max_bytes or max_functions), SL_ERR_UNSUPPORTED
 * (another version), SL_ERR_NOMEM; the message says where. On error *out
 * is zeroed (nothing to free). */
sl_status sl_openapi_parse(sl_openapi_doc *out, const char *data, size_t len, const sl_openapi_limits *lim);

/* Frees everything the doc owns and zeroes it. Safe on a zeroed doc. */
void sl_openapi_doc_deinit(sl_openapi_doc *d);

/* Gloo's request templates for f (Inja text, as Gloo's swagger discovery
 * writes them): the ":path" value (path parameters as
 * {{ default(p, "") }}, query parameters appended), and the JSON body
 * ("{\"name\": \"{{ default(name, \"\") }}\", ...}", strings quoted), NULL
 * when f has no object body. malloc'd; the caller frees them. NULL on
 * allocation failure (path) too. */
char *sl_openapi_path_template(const sl_openapi_function *f);
char *sl_openapi_body_template(const sl_openapi_function *f);

/* A stable digest of the functions (names, methods, paths, parameters),
 * to tell whether a document's functions changed: 16 hex digits + NUL. */
void sl_openapi_digest(char out[17], const sl_openapi_doc *d);

#endif
