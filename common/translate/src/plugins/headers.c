/* headers: headerManipulation on virtual hosts and routes. (Weighted
 * destinations are handled by the core with the weighted clusters.) */
#include "../plugin.h"

static const char *const fields[] = {"RouteOptions.header_manipulation", "VirtualHostOptions.header_manipulation",
                                     "WeightedDestinationOptions.header_manipulation", NULL};

#define APPLY(tx, obj, h, path)                                                                                \
    do {                                                                                                       \
        for (size_t i_ = 0; i_ < (h)->n_request_headers_to_add; i_++) {                                        \
            const char *e_ = check(h->request_headers_to_add[i_]);                                             \
            if (e_)                                                                                            \
                tr_error(tx, "%s.headerManipulation.requestHeadersToAdd[%zu]: %s", path, i_, e_);              \
            TR_PUSH(tx, obj, request_headers_to_add, tr_header_option(tx, (h)->request_headers_to_add[i_]));   \
        }                                                                                                      \
        for (size_t i_ = 0; i_ < (h)->n_request_headers_to_remove; i_++)                                       \
            TR_PUSH(tx, obj, request_headers_to_remove, tr_strdup(tx, (h)->request_headers_to_remove[i_]));    \
        for (size_t i_ = 0; i_ < (h)->n_response_headers_to_add; i_++) {                                       \
            const char *e_ = check(h->response_headers_to_add[i_]);                                            \
            if (e_)                                                                                            \
                tr_error(tx, "%s.headerManipulation.responseHeadersToAdd[%zu]: %s", path, i_, e_);             \
            TR_PUSH(tx, obj, response_headers_to_add, tr_header_option(tx, (h)->response_headers_to_add[i_])); \
        }                                                                                                      \
        for (size_t i_ = 0; i_ < (h)->n_response_headers_to_remove; i_++)                                      \
            TR_PUSH(tx, obj, response_headers_to_remove, tr_strdup(tx, (h)->response_headers_to_remove[i_]));  \
    } while (0)

static const char *check(const Sluice__V1__HeaderValueOption *h)
{
    if (!h->header)
        return "header is required";
    return tr_check_header_name(h->header->key, false);
}

static void route(tr_ctx *tx, const tr_route_in *in, tr_route_t *r)
{
    if (in->options && in->options->header_manipulation)
        APPLY(tx, r, in->options->header_manipulation, in->path);
}

static void virtual_host(tr_ctx *tx, const tr_vhost_in *in, tr_vhost_t *vh)
{
    if (in->options && in->options->header_manipulation)
        APPLY(tx, vh, in->options->header_manipulation, in->path);
}

const sl_tr_plugin sl_tr_plugin_headers = {
    .name = "headers",
    .fields = fields,
    .virtual_host = virtual_host,
    .route = route,
};
