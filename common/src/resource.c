#include "sluice/resource.h"

#include <stdio.h>
#include <string.h>

/* A readable rendering of one byte for error messages: 'x', "space",
 * "tab", or "byte 0xNN" for anything not printable ASCII (the first byte of
 * a UTF-8 sequence included: names are ASCII). */
static const char *describe_byte(char *buf, size_t n, unsigned char c)
{
    if (c == ' ')
        snprintf(buf, n, "a space");
    else if (c == '\t')
        snprintf(buf, n, "a tab");
    else if (c == '\n' || c == '\r')
        snprintf(buf, n, "a line break");
    else if (c >= 0x21 && c <= 0x7e)
        snprintf(buf, n, "'%c'", c);
    else
        snprintf(buf, n, "byte 0x%02x", c);
    return buf;
}

/* Why c is not allowed in a name, for the cases users hit most. */
static const char *why_not(unsigned char c)
{
    switch (c) {
    case '.':
        return " ('.' separates the tokens of keys and subjects)";
    case '*':
    case '>':
        return " (a NATS wildcard)";
    case '_':
        return " ('_' separates the parts of Envoy names)";
    default:
        break;
    }
    if (c >= 'A' && c <= 'Z')
        return " (uppercase)";
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r')
        return " (whitespace)";
    return "";
}

static int is_lower_alnum(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* DNS-1123 label rule with a length limit; what is "name" or "namespace". */
static sl_status check_label(const char *what, const char *s, size_t max)
{
    char b[16];
    size_t len, i;

    if (!s)
        return sl_error_set(SL_ERR_INVALID, "%s is missing", what);
    len = strlen(s);
    if (len == 0)
        return sl_error_set(SL_ERR_INVALID, "%s is empty", what);
    if (len > max)
        return sl_error_set(SL_ERR_INVALID, "invalid %s \"%.40s...\": %zu characters long, at most %zu",
                            what, s, len, max);
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (is_lower_alnum(c) || c == '-')
            continue;
        return sl_error_set(SL_ERR_INVALID,
                            "invalid %s \"%s\": %s at offset %zu is not allowed%s; a %s is "
                            "lowercase letters, digits and '-', starting and ending with a "
                            "letter or digit",
                            what, s, describe_byte(b, sizeof(b), c), i, why_not(c), what);
    }
    if (s[0] == '-' || s[len - 1] == '-')
        return sl_error_set(SL_ERR_INVALID,
                            "invalid %s \"%s\": '-' at offset %zu is not allowed; a %s starts "
                            "and ends with a letter or digit",
                            what, s, s[0] == '-' ? (size_t)0 : len - 1, what);
    return SL_OK;
}

sl_status sl_resource_check_name(const char *name)
{
    return check_label("name", name, SL_RESOURCE_NAME_MAX);
}

sl_status sl_resource_check_namespace(const char *ns)
{
    return check_label("namespace", ns, SL_RESOURCE_NAMESPACE_MAX);
}

sl_status sl_resource_check_kind(const char *kind)
{
    char b[16];
    size_t len, i;

    if (!kind)
        return sl_error_set(SL_ERR_INVALID, "kind is missing");
    len = strlen(kind);
    if (len == 0)
        return sl_error_set(SL_ERR_INVALID, "kind is empty");
    if (len > SL_RESOURCE_KIND_MAX)
        return sl_error_set(SL_ERR_INVALID, "invalid kind \"%.40s...\": %zu characters long, at most %d",
                            kind, len, SL_RESOURCE_KIND_MAX);
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)kind[i];
        int letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
        if (letter || (i > 0 && c >= '0' && c <= '9'))
            continue;
        return sl_error_set(SL_ERR_INVALID,
                            "invalid kind \"%s\": %s at offset %zu is not allowed; a kind is "
                            "ASCII letters and digits, starting with a letter",
                            kind, describe_byte(b, sizeof(b), c), i);
    }
    return SL_OK;
}

static sl_status check_parts(const char *kind, const char *ns, const char *name)
{
    sl_status s = SL_OK;

    if (kind && (s = sl_resource_check_kind(kind)) != SL_OK)
        return s;
    if ((s = sl_resource_check_namespace(ns)) != SL_OK)
        return s;
    return sl_resource_check_name(name);
}

sl_status sl_resource_key(char *buf, size_t n, const char *kind, const char *ns,
                          const char *name)
{
    sl_status s;
    int w;

    if (!buf || n == 0)
        return sl_error_set(SL_ERR_INVALID, "no buffer for the key");
    buf[0] = '\0';
    if ((s = check_parts(kind, ns, name)) != SL_OK)
        return s;
    if (kind)
        w = snprintf(buf, n, "%s.%s.%s", kind, ns, name);
    else
        w = snprintf(buf, n, "%s.%s", ns, name);
    if (w < 0 || (size_t)w >= n) {
        buf[0] = '\0';
        return sl_error_set(SL_ERR_INVALID, "key buffer of %zu bytes is too small for %d", n, w + 1);
    }
    return SL_OK;
}

/* Copies the token of s up to the next '.' (or the end) into dst (cap
 * bytes); returns the position after the token or NULL when it is too long. */
static const char *take_token(char *dst, size_t cap, const char *s)
{
    size_t len = strcspn(s, ".");

    if (len >= cap)
        return NULL;
    memcpy(dst, s, len);
    dst[len] = '\0';
    return s + len;
}

sl_status sl_resource_key_parse(sl_resource_id *out, const char *key, int with_kind)
{
    sl_status s = SL_ERR_INVALID;
    const char *p = key;
    size_t dots = 0;
    const char *what = "";

    if (!out)
        return sl_error_set(SL_ERR_INVALID, "no output for the key");
    memset(out, 0, sizeof(*out));
    if (!key) {
        s = sl_error_set(SL_ERR_INVALID, "key is missing");
        goto err;
    }
    for (const char *c = key; *c; c++)
        dots += *c == '.';
    if (dots != (with_kind ? 2u : 1u)) {
        s = sl_error_set(SL_ERR_INVALID, "invalid key \"%s\": expected %s, got %zu token%s", key,
                         with_kind ? "<kind>.<namespace>.<name>" : "<namespace>.<name>",
                         dots + 1, dots ? "s" : "");
        goto err;
    }
    if (with_kind) {
        what = "kind";
        if (!(p = take_token(out->kind, sizeof(out->kind), p)))
            goto too_long;
        p++;
    }
    what = "namespace";
    if (!(p = take_token(out->ns, sizeof(out->ns), p)))
        goto too_long;
    p++;
    what = "name";
    if (!(p = take_token(out->name, sizeof(out->name), p)))
        goto too_long;
    if ((s = check_parts(with_kind ? out->kind : NULL, out->ns, out->name)) != SL_OK) {
        char inner[512];
        snprintf(inner, sizeof(inner), "%s", sl_error_msg());
        s = sl_error_set(s, "invalid key \"%s\": %s", key, inner);
        goto err;
    }
    return SL_OK;

too_long:
    s = sl_error_set(SL_ERR_INVALID, "invalid key \"%.80s\": the %s is too long", key, what);
err:
    memset(out, 0, sizeof(*out));
    return s;
}

static sl_status check_prefix(const char *prefix)
{
    char b[16];
    size_t i, tok = 0;

    if (!prefix || !*prefix)
        return sl_error_set(SL_ERR_INVALID, "subject prefix is empty");
    for (i = 0; prefix[i]; i++) {
        unsigned char c = (unsigned char)prefix[i];
        if (c == '.') {
            if (tok == 0)
                break;
            tok = 0;
            continue;
        }
        if (c == '*' || c == '>' || c <= 0x20 || c == 0x7f)
            return sl_error_set(SL_ERR_INVALID,
                                "invalid subject prefix \"%s\": %s at offset %zu is not allowed",
                                prefix, describe_byte(b, sizeof(b), c), i);
        tok++;
    }
    if (prefix[i] == '.' || tok == 0)
        return sl_error_set(SL_ERR_INVALID, "invalid subject prefix \"%s\": empty token", prefix);
    return SL_OK;
}

sl_status sl_resource_subject(char *buf, size_t n, const char *prefix, const char *kind,
                              const char *ns, const char *name)
{
    sl_status s;
    int w;

    if (!buf || n == 0)
        return sl_error_set(SL_ERR_INVALID, "no buffer for the subject");
    buf[0] = '\0';
    if ((s = check_prefix(prefix)) != SL_OK)
        return s;
    if (!kind)
        return sl_error_set(SL_ERR_INVALID, "kind is missing");
    if ((s = check_parts(kind, ns, name)) != SL_OK)
        return s;
    w = snprintf(buf, n, "%s.%s.%s.%s", prefix, kind, ns, name);
    if (w < 0 || (size_t)w >= n) {
        buf[0] = '\0';
        return sl_error_set(SL_ERR_INVALID, "subject buffer of %zu bytes is too small for %d", n,
                            w + 1);
    }
    return SL_OK;
}
