/* libFuzzer target for the OpenAPI/Swagger reader (sluice/openapi.h): any
 * bytes as a JSON or YAML document, with small limits so nesting, size and
 * operation caps are reached.
 * Invariants (abort on violation): no crash or leak; an error leaves the
 * doc zeroed and names a reason; on success functions are sorted with
 * unique names, every function has a method, a path and a pointer starting
 * with "/paths/", every warning starts with '/', the warnings stay within
 * the cap, and the templates and digest can be built for every function. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/openapi.h"

#define FUZZ_MAX_INPUT (256 * 1024)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const sl_openapi_doc *d)
{
    char dg[17];
    if (d->n_warnings > 21)
        abort();
    for (size_t i = 0; i < d->n_warnings; i++)
        if (d->warnings[i][0] != '/')
            abort();
    for (size_t i = 0; i < d->n_functions; i++) {
        const sl_openapi_function *f = &d->functions[i];
        if (!f->name || !f->method[0] || !f->path || strncmp(f->pointer, "/paths/", 7) != 0)
            abort();
        if (i && strcmp(d->functions[i - 1].name, f->name) >= 0)
            abort();
        char *p = sl_openapi_path_template(f), *b = sl_openapi_body_template(f);
        if (!p)
            abort();
        free(p);
        free(b);
    }
    sl_openapi_digest(dg, d);
    if (strlen(dg) != 16)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sl_openapi_doc d;
    sl_openapi_limits lim = {.max_bytes = FUZZ_MAX_INPUT, .max_depth = 32, .max_ref_hops = 8,
                             .max_functions = 200, .max_warnings = 20};
    if (size > FUZZ_MAX_INPUT)
        return 0;
    sl_status rc = sl_openapi_parse(&d, (const char *)data, size, &lim);
    if (rc != SL_OK) {
        if (d.n_functions || d.functions || d.warnings || !sl_error_msg()[0])
            abort();
        return 0;
    }
    check(&d);
    sl_openapi_doc_deinit(&d);
    return 0;
}
