/* lua: Envoy's stock Lua filter, for what only code can do with stock
 * Envoy: REST functions (plugins/functions.c sets a LuaPerRoute on the
 * route that replaces :method and renders a body template over the
 * route's parameters) and transformations (plugins/transformation.c, which
 * also adds a second Lua filter for Gloo's early stage with the helpers
 * here). The filter is added only to listeners where some
 * route uses it, disabled by default, with a default source that defines
 * no handler (a no-op); routes enable it with their own code. Never on
 * routes served to gRPC proxyless clients (they run no HTTP filters). */
#include "../plugin.h"
#include "envoy/extensions/filters/http/lua/v3/lua.pb-c.h"


const sl_tr_plugin sl_tr_plugin_lua;

const ProtobufCMessage *tr_lua_named_config(tr_ctx *tx, const char *name)
{
    Envoy__Extensions__Filters__Http__Lua__V3__LuaPerRoute *pr =
        TR_NEW(tx, envoy__extensions__filters__http__lua__v3__lua_per_route);
    Envoy__Config__Route__V3__FilterConfig *fc = TR_NEW(tx, envoy__config__route__v3__filter_config);
    pr->override_case = ENVOY__EXTENSIONS__FILTERS__HTTP__LUA__V3__LUA_PER_ROUTE__OVERRIDE_NAME;
    pr->name = tr_strdup(tx, name);
    fc->config = tr_any(tx, &pr->base);
    return &fc->base;
}

const ProtobufCMessage *tr_lua_config(tr_ctx *tx, const char *code)
{
    Envoy__Extensions__Filters__Http__Lua__V3__LuaPerRoute *pr =
        TR_NEW(tx, envoy__extensions__filters__http__lua__v3__lua_per_route);
    Envoy__Config__Route__V3__FilterConfig *fc = TR_NEW(tx, envoy__config__route__v3__filter_config);
    if (code) {
        pr->override_case = ENVOY__EXTENSIONS__FILTERS__HTTP__LUA__V3__LUA_PER_ROUTE__OVERRIDE_SOURCE_CODE;
        pr->source_code = tr_inline_string(tx, code);
    } else {
        pr->override_case = ENVOY__EXTENSIONS__FILTERS__HTTP__LUA__V3__LUA_PER_ROUTE__OVERRIDE_DISABLED;
        pr->disabled = 1;
    }
    fc->config = tr_any(tx, &pr->base);
    return &fc->base;
}

void tr_lua_use(tr_ctx *tx) { tr_use(tx, &sl_tr_plugin_lua); }

void tr_lua_route(tr_ctx *tx, tr_route_t *r, const char *code)
{
    tr_route_filter_config(tx, r, TR_LUA_FILTER, tr_lua_config(tx, code));
    tr_lua_use(tx);
}

void tr_lua_filter_shared(tr_ctx *tx, tr_filters *f, int stage, const char *filter, const char *name,
                          const char *code)
{
    Envoy__Extensions__Filters__Http__Lua__V3__Lua *lua = TR_NEW(tx, envoy__extensions__filters__http__lua__v3__lua);
    lua->default_source_code = tr_inline_string(tx, "-- Sluice: routes enable this filter with their own code\n");
    if (name) {
        Envoy__Extensions__Filters__Http__Lua__V3__Lua__SourceCodesEntry *e =
            TR_NEW(tx, envoy__extensions__filters__http__lua__v3__lua__source_codes_entry);
        e->key = tr_strdup(tx, name);
        e->value = tr_inline_string(tx, code);
        TR_PUSH(tx, lua, source_codes, e);
    }
    tr_add_filter(tx, f, stage, filter, &lua->base);
    tr_disable_filter(f, filter);
}

void tr_lua_filter(tr_ctx *tx, tr_filters *f, int stage, const char *filter)
{
    tr_lua_filter_shared(tx, f, stage, filter, NULL, NULL);
}

static void http_filters(tr_ctx *tx, const tr_gateway *gw, tr_hcm_t *hcm, tr_filters *f)
{
    (void)gw;
    (void)hcm;
    if (tr_used(tx, &sl_tr_plugin_lua))
        tr_lua_filter(tx, f, TR_STAGE_LUA, TR_LUA_FILTER);
}

const sl_tr_plugin sl_tr_plugin_lua = {
    .name = "lua",
    .http_filters = http_filters,
};
