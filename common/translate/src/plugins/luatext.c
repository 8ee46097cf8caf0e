/* luatext.c - Lua literals and comments made from user input (luatext.h). */
#include "luatext.h"

#include <ctype.h>
#include <string.h>

const char *tr_lua_quote_n(tr_ctx *tx, const char *s, size_t n)
{
    char *o = tr_alloc(tx, n * 4 + 3), *p = o;
    *p++ = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\')
            *p++ = (char)c;
        else {
            *p++ = '\\';
            *p++ = (char)('0' + c / 100);
            *p++ = (char)('0' + c / 10 % 10);
            *p++ = (char)('0' + c % 10);
        }
    }
    *p++ = '"';
    *p = '\0';
    return o;
}

const char *tr_lua_quote(tr_ctx *tx, const char *s) { return tr_lua_quote_n(tx, s, strlen(s)); }

const char *tr_lua_comment_safe(tr_ctx *tx, const char *s)
{
    char *o = tr_strdup(tx, s);
    for (char *c = o; *c; c++)
        if (!isalnum((unsigned char)*c) && !strchr("_.:/{}-", *c))
            *c = '?';
    return o;
}
