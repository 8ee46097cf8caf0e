/* xds_keys.h - the keys of the sluice_xds KV bucket: builders, the parser.
 *
 * The one place that knows the key layout (docs/xds.md, "KV layout"):
 *   <proxy>.<type>.<name>          a packed Envoy resource (a split route's head)
 *   <proxy>.vhost.<route>.<vhost>  one part of a route stored in parts
 *   <proxy>.manifest.<type>.<id>   a manifest chunk (sluice.v1.XdsManifest)
 *   <proxy>.commit                 the proxy's commit (sluice.v1.XdsCommit)
 * <proxy>, <name>, <route>, <vhost> and <id> are each one key token, escaped
 * with sl_xds_key_escape() (sluice/xds.h); <type> is sl_xds_type_token().
 * The builders take unescaped names and escape them; the parser undoes it.
 * Every token, escaped, is shorter than SL_XDS_TOKEN_MAX bytes.
 */
#ifndef SLUICE_XDS_KEYS_H
#define SLUICE_XDS_KEYS_H

#include <stddef.h>

#include "sluice/status.h"
#include "sluice/xds.h"

/* The longest escaped token, NUL included; a name that escapes longer is
 * SL_ERR_INVALID. */
#define SL_XDS_TOKEN_MAX 1024

/* Room for any key the builders make, NUL included. */
#define SL_XDS_KEY_MAX (3 * SL_XDS_TOKEN_MAX + 16)

typedef enum sl_xds_key_kind {
    SL_XDS_KEY_RESOURCE = 0, /* <proxy>.<type>.<name> */
    SL_XDS_KEY_VHOST,        /* <proxy>.vhost.<route>.<vhost> */
    SL_XDS_KEY_MANIFEST,     /* <proxy>.manifest.<type>.<id> */
    SL_XDS_KEY_COMMIT,       /* <proxy>.commit */
} sl_xds_key_kind;

/* Each builder writes the key into out (cap bytes, NUL included) and
 * returns SL_OK, or SL_ERR_INVALID (out undefined) when a name is "" or too
 * long for a token, or the key does not fit. */
sl_status sl_xds_key_commit(char *out, size_t cap, const char *proxy);
sl_status sl_xds_key_manifest(char *out, size_t cap, const char *proxy, sl_xds_type t, const char *chunk_id);
sl_status sl_xds_key_vhost(char *out, size_t cap, const char *proxy, const char *route, const char *vhost);
sl_status sl_xds_key_resource(char *out, size_t cap, const char *proxy, sl_xds_type t, const char *name);

/* A key taken apart by sl_xds_key_parse(): the names unescaped. */
typedef struct sl_xds_key {
    sl_xds_key_kind kind;
    sl_xds_type type;              /* RESOURCE, MANIFEST */
    size_t proxy_token_len;        /* the escaped proxy is the key's first proxy_token_len bytes */
    char proxy[SL_XDS_TOKEN_MAX];
    char name[SL_XDS_TOKEN_MAX];   /* RESOURCE: its name; VHOST: the virtual host; MANIFEST: the chunk id */
    char route[SL_XDS_TOKEN_MAX];  /* VHOST: the route configuration; else "" */
} sl_xds_key;

/* Parses key into *out. SL_ERR_INVALID (with a message) when it is not a
 * sluice_xds key: a wrong number of tokens, an unknown type token, a token
 * that is not as sl_xds_key_escape() makes it (a bad or needless "=XX", a
 * lower-case hex digit) or too long. For every key it accepts, the builder
 * of its kind given its parts makes the same key again. */
sl_status sl_xds_key_parse(sl_xds_key *out, const char *key);

/* Whether key is a commit key (a cheaper sl_xds_key_parse() for that kind;
 * proxy token not checked). */
int sl_xds_key_is_commit(const char *key);

#endif
