/* keys.c - the sluice_xds key layout: builders and parser (see sluice/xds_keys.h). */
#include "sluice/xds_keys.h"

#include <string.h>

/* Appends the escaped name at out[*o]. */
static sl_status put_tok(char *out, size_t cap, size_t *o, const char *name)
{
    size_t room = cap - *o;
    sl_status rc = sl_xds_key_escape(out + *o, room < SL_XDS_TOKEN_MAX ? room : SL_XDS_TOKEN_MAX, name);
    if (rc == SL_OK)
        *o += strlen(out + *o);
    return rc;
}

/* Appends a literal ("." and the kind or type tokens). */
static sl_status put_lit(char *out, size_t cap, size_t *o, const char *lit)
{
    size_t n = strlen(lit);
    if (n >= cap - *o)
        return sl_error_set(SL_ERR_INVALID, "sluice_xds key too long");
    memcpy(out + *o, lit, n + 1);
    *o += n;
    return SL_OK;
}

sl_status sl_xds_key_commit(char *out, size_t cap, const char *proxy)
{
    size_t o = 0;
    sl_status rc;
    if ((rc = put_tok(out, cap, &o, proxy)) == SL_OK)
        rc = put_lit(out, cap, &o, ".commit");
    return rc;
}

/* <proxy><mid><type>.<name>: a resource (mid ".") or a manifest chunk. */
static sl_status typed_key(char *out, size_t cap, const char *proxy, const char *mid, sl_xds_type t,
                           const char *name)
{
    size_t o = 0;
    sl_status rc;
    if ((rc = put_tok(out, cap, &o, proxy)) != SL_OK || (rc = put_lit(out, cap, &o, mid)) != SL_OK ||
        (rc = put_lit(out, cap, &o, sl_xds_type_token(t))) != SL_OK || (rc = put_lit(out, cap, &o, ".")) != SL_OK)
        return rc;
    return put_tok(out, cap, &o, name);
}

sl_status sl_xds_key_manifest(char *out, size_t cap, const char *proxy, sl_xds_type t, const char *chunk_id)
{
    return typed_key(out, cap, proxy, ".manifest.", t, chunk_id);
}

sl_status sl_xds_key_vhost(char *out, size_t cap, const char *proxy, const char *route, const char *vhost)
{
    size_t o = 0;
    sl_status rc;
    if ((rc = put_tok(out, cap, &o, proxy)) != SL_OK || (rc = put_lit(out, cap, &o, ".vhost.")) != SL_OK ||
        (rc = put_tok(out, cap, &o, route)) != SL_OK || (rc = put_lit(out, cap, &o, ".")) != SL_OK)
        return rc;
    return put_tok(out, cap, &o, vhost);
}

sl_status sl_xds_key_resource(char *out, size_t cap, const char *proxy, sl_xds_type t, const char *name)
{
    return typed_key(out, cap, proxy, ".", t, name);
}

static int plain(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

static int uhex(char c) { return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1; }

/* Whether tok[0, len) is exactly what sl_xds_key_escape() makes of some
 * name: only the bytes it keeps, and "=XX" (upper-case hex) of the others. */
static int canonical(const char *tok, size_t len)
{
    if (!len || len >= SL_XDS_TOKEN_MAX)
        return 0;
    for (size_t i = 0; i < len; i++) {
        if (plain((unsigned char)tok[i]))
            continue;
        if (tok[i] != '=' || len - i < 3)
            return 0;
        int h = uhex(tok[i + 1]), l = h < 0 ? -1 : uhex(tok[i + 2]);
        if (l < 0 || (h | l) == 0 || plain((unsigned char)(h * 16 + l)))
            return 0;
        i += 2;
    }
    return 1;
}

/* Unescapes the token tok[0, len) into out (SL_XDS_TOKEN_MAX bytes). */
static sl_status untok(char *out, const char *tok, size_t len, const char *key)
{
    char buf[SL_XDS_TOKEN_MAX];
    if (!canonical(tok, len))
        return sl_error_set(SL_ERR_INVALID, "\"%.200s\": a token is not a sluice_xds key token", key);
    memcpy(buf, tok, len);
    buf[len] = 0;
    return sl_xds_key_unescape(out, SL_XDS_TOKEN_MAX, buf);
}

static int tok_is(const char *tok, size_t len, const char *lit) { return strlen(lit) == len && !memcmp(tok, lit, len); }

sl_status sl_xds_key_parse(sl_xds_key *out, const char *key)
{
    const char *tok[4];
    size_t len[4], n = 0;
    const char *p = key;
    sl_status rc;
    char tt[16];

    for (;;) { /* up to 4 tokens */
        const char *dot = strchr(p, '.');
        if (n == 4)
            goto bad;
        tok[n] = p;
        len[n] = dot ? (size_t)(dot - p) : strlen(p);
        n++;
        if (!dot)
            break;
        p = dot + 1;
    }
    out->route[0] = 0;
    out->name[0] = 0;
    out->proxy_token_len = len[0];
    out->type = SL_XDS_TYPE_COUNT;
    if (n < 2)
        goto bad;
    if ((rc = untok(out->proxy, tok[0], len[0], key)) != SL_OK)
        return rc;
    if (n == 2) {
        if (!tok_is(tok[1], len[1], "commit"))
            goto bad;
        out->kind = SL_XDS_KEY_COMMIT;
        return SL_OK;
    }
    if (n == 4 && tok_is(tok[1], len[1], "vhost")) {
        out->kind = SL_XDS_KEY_VHOST;
        if ((rc = untok(out->route, tok[2], len[2], key)) != SL_OK)
            return rc;
        return untok(out->name, tok[3], len[3], key);
    }
    if (n == 4 && !tok_is(tok[1], len[1], "manifest"))
        goto bad;
    out->kind = n == 4 ? SL_XDS_KEY_MANIFEST : SL_XDS_KEY_RESOURCE;
    {
        size_t ti = n == 4 ? 2 : 1;
        if (len[ti] >= sizeof tt)
            goto bad;
        memcpy(tt, tok[ti], len[ti]);
        tt[len[ti]] = 0;
        if (sl_xds_type_from_token(&out->type, tt) != SL_OK)
            return sl_error_set(SL_ERR_INVALID, "\"%.200s\": unknown xDS type token \"%s\"", key, tt);
    }
    return untok(out->name, tok[n - 1], len[n - 1], key);
bad:
    return sl_error_set(SL_ERR_INVALID, "\"%.200s\" is not a sluice_xds key", key);
}

int sl_xds_key_is_commit(const char *key)
{
    const char *dot = strchr(key, '.');
    return dot && dot != key && strcmp(dot + 1, "commit") == 0;
}
