/* gzip: the Gateway's httpGateway.options.gzip -> Envoy's compressor filter
 * with the gzip library, as Gloo's gzip plugin (same fields, defaults left
 * to Envoy). Gloo writes content length, content types and the ETag and
 * accept-encoding flags into the compressor's fields deprecated since
 * Envoy v3.0; Sluice writes the same values into their replacements
 * (response_direction_config), which Envoy reads the same way. */
#include "../plugin.h"
#include "envoy/extensions/compression/gzip/compressor/v3/gzip.pb-c.h"
#include "envoy/extensions/filters/http/compressor/v3/compressor.pb-c.h"

static const char *const fields[] = {"HttpListenerOptions.gzip", NULL};

typedef Envoy__Extensions__Compression__Gzip__Compressor__V3__Gzip envoy_gzip;

/* The gzip library's settings; false (reported) when a value is out of
 * Envoy's range. */
static bool library(tr_ctx *tx, const Sluice__V1__Gzip *g, const char *p, envoy_gzip *out)
{
    bool ok = true;
    if (g->memory_level) {
        if (g->memory_level->value < 1 || g->memory_level->value > 9) {
            tr_error(tx, "%s.memoryLevel: %u is not between 1 and 9", p, g->memory_level->value);
            ok = false;
        }
        out->memory_level = tr_u32(tx, g->memory_level->value);
    }
    if (g->window_bits) {
        if (g->window_bits->value < 9 || g->window_bits->value > 15) {
            tr_error(tx, "%s.windowBits: %u is not between 9 and 15", p, g->window_bits->value);
            ok = false;
        }
        out->window_bits = tr_u32(tx, g->window_bits->value);
    }
    switch (g->compression_level) {
    case SLUICE__V1__GZIP__COMPRESSION_LEVEL__ENUM__BEST:
        out->compression_level = ENVOY__EXTENSIONS__COMPRESSION__GZIP__COMPRESSOR__V3__GZIP__COMPRESSION_LEVEL__BEST_COMPRESSION;
        break;
    case SLUICE__V1__GZIP__COMPRESSION_LEVEL__ENUM__SPEED:
        out->compression_level = ENVOY__EXTENSIONS__COMPRESSION__GZIP__COMPRESSOR__V3__GZIP__COMPRESSION_LEVEL__BEST_SPEED;
        break;
    default:
        out->compression_level = ENVOY__EXTENSIONS__COMPRESSION__GZIP__COMPRESSOR__V3__GZIP__COMPRESSION_LEVEL__DEFAULT_COMPRESSION;
    }
    switch (g->compression_strategy) {
    case SLUICE__V1__GZIP__COMPRESSION_STRATEGY__FILTERED:
        out->compression_strategy = ENVOY__EXTENSIONS__COMPRESSION__GZIP__COMPRESSOR__V3__GZIP__COMPRESSION_STRATEGY__FILTERED;
        break;
    case SLUICE__V1__GZIP__COMPRESSION_STRATEGY__HUFFMAN:
        out->compression_strategy = ENVOY__EXTENSIONS__COMPRESSION__GZIP__COMPRESSOR__V3__GZIP__COMPRESSION_STRATEGY__HUFFMAN_ONLY;
        break;
    case SLUICE__V1__GZIP__COMPRESSION_STRATEGY__RLE:
        out->compression_strategy = ENVOY__EXTENSIONS__COMPRESSION__GZIP__COMPRESSOR__V3__GZIP__COMPRESSION_STRATEGY__RLE;
        break;
    default:
        out->compression_strategy = ENVOY__EXTENSIONS__COMPRESSION__GZIP__COMPRESSOR__V3__GZIP__COMPRESSION_STRATEGY__DEFAULT_STRATEGY;
    }
    return ok;
}

static void http_filters(tr_ctx *tx, const tr_gateway *gw, tr_hcm_t *hcm, tr_filters *f)
{
    const Sluice__V1__HttpGateway *hg = gw->gw->spec->http_gateway;
    const Sluice__V1__Gzip *g = hg && hg->options ? hg->options->gzip : NULL;
    const char *p = "spec.httpGateway.options.gzip";
    Envoy__Extensions__Filters__Http__Compressor__V3__Compressor *c;
    Envoy__Extensions__Filters__Http__Compressor__V3__Compressor__ResponseDirectionConfig *rd;
    Envoy__Extensions__Filters__Http__Compressor__V3__Compressor__CommonDirectionConfig *cd;
    envoy_gzip *lib;
    (void)hcm;
    if (!g)
        return;
    lib = TR_NEW(tx, envoy__extensions__compression__gzip__compressor__v3__gzip);
    if (!library(tx, g, p, lib))
        return;
    if (g->content_length && g->content_length->value < 30) {
        tr_error(tx, "%s.contentLength: %u is below 30", p, g->content_length->value);
        return;
    }
    if (g->n_content_type > 50) {
        tr_error(tx, "%s.contentType: %zu types, at most 50", p, g->n_content_type);
        return;
    }
    c = TR_NEW(tx, envoy__extensions__filters__http__compressor__v3__compressor);
    c->compressor_library = TR_NEW(tx, envoy__config__core__v3__typed_extension_config);
    c->compressor_library->name = tr_strdup(tx, "envoy.compression.gzip.compressor");
    c->compressor_library->typed_config = tr_any(tx, &lib->base);
    if (g->content_length || g->n_content_type || g->disable_on_etag_header || g->remove_accept_encoding_header) {
        rd = TR_NEW(tx, envoy__extensions__filters__http__compressor__v3__compressor__response_direction_config);
        rd->disable_on_etag_header = g->disable_on_etag_header;
        rd->remove_accept_encoding_header = g->remove_accept_encoding_header;
        if (g->content_length || g->n_content_type) {
            cd = TR_NEW(tx, envoy__extensions__filters__http__compressor__v3__compressor__common_direction_config);
            if (g->content_length)
                cd->min_content_length = tr_u32(tx, g->content_length->value);
            for (size_t i = 0; i < g->n_content_type; i++)
                TR_PUSH(tx, cd, content_type, tr_strdup(tx, g->content_type[i]));
            rd->common_config = cd;
        }
        c->response_direction_config = rd;
    }
    tr_add_filter(tx, f, TR_STAGE_COMPRESS, "envoy.filters.http.compressor", &c->base);
}

const sl_tr_plugin sl_tr_plugin_gzip = {
    .name = "gzip",
    .fields = fields,
    .http_filters = http_filters,
};
