/* openapi_int.h - private to sluice_openapi: the document loader. */
#ifndef SLUICE_OPENAPI_INT_H
#define SLUICE_OPENAPI_INT_H

#include <jansson.h>

#include "sluice/openapi.h"

/* No limit can raise nesting past this (the YAML loader's stack). */
#define SL_OPENAPI_DEPTH_HARD 256

/* JSON or YAML text -> a jansson tree no deeper than max_depth (new
 * reference in *out). SL_ERR_PARSE with "JSON:line:col" / "YAML:line:col". */
sl_status oa_load(json_t **out, const char *data, size_t len, int max_depth);

#endif
