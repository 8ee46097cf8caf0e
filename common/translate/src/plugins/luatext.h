/* luatext.h - Lua source text the translator writes into Envoy's Lua filter
 * (plugins/functions.c, plugins/transformation.c): literals and comments
 * that no input can turn into code. Strings are in the translation's arena. */
#ifndef SLUICE_TR_LUATEXT_H
#define SLUICE_TR_LUATEXT_H

#include <stddef.h>

#include "../plugin.h"

/* s[0..n) as a Lua string literal: quotes, backslashes and anything but
 * printable ASCII as a \ddd escape, so no input can end the literal. */
const char *tr_lua_quote_n(tr_ctx *tx, const char *s, size_t n);
const char *tr_lua_quote(tr_ctx *tx, const char *s);

/* s with every character outside [A-Za-z0-9_.:/{}-] replaced by '?', for
 * Lua comments. */
const char *tr_lua_comment_safe(tr_ctx *tx, const char *s);

#endif
