/* sluice/resource.h - resource names, KV keys and NATS subjects.
 *
 * A resource is stored in a KV bucket under the key <Kind>.<namespace>.<name>
 * ("VirtualService.default.petstore"), and events about it travel on
 * subjects that end with the same three tokens
 * ("sluice.status.VirtualService.default.petstore"). Names and namespaces
 * are therefore checked against the rules of both a NATS subject token and a
 * KV key, narrowed to what Kubernetes calls a DNS-1123 label (plus a longer
 * limit for names), which also keeps them free of the '_' that separates the
 * parts of Envoy names (cluster <upstream>_<namespace>):
 *
 *   - lowercase ASCII letters, digits and '-';
 *   - starting and ending with a letter or digit;
 *   - names 1..253 characters, namespaces 1..63.
 *
 * Kinds ("VirtualService") are ASCII letters and digits, starting with a
 * letter, at most 63 characters. The table of known kinds is in
 * sluice/kinds.h; this module only checks the shape of the tokens.
 *
 * Every check that fails returns SL_ERR_INVALID with a message in the error
 * context (sluice/status.h) naming the value and the first bad character and
 * its offset, e.g.
 *   invalid name "my.vs": '.' at offset 2 is not allowed; a name is lowercase
 *   letters, digits and '-', starting and ending with a letter or digit
 * Nothing here allocates or keeps state; all functions are thread safe.
 */
#ifndef SLUICE_RESOURCE_H
#define SLUICE_RESOURCE_H

#include <stddef.h>

#include "sluice/status.h"

#define SL_RESOURCE_NAME_MAX 253
#define SL_RESOURCE_NAMESPACE_MAX 63
#define SL_RESOURCE_KIND_MAX 63

/* The same rule as a regular expression (for JSON Schema and other
 * languages); lengths are checked separately. */
#define SL_RESOURCE_NAME_PATTERN "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"

/* Largest key or subject suffix "<Kind>.<namespace>.<name>", NUL included. */
#define SL_RESOURCE_KEY_MAX (SL_RESOURCE_KIND_MAX + 1 + SL_RESOURCE_NAMESPACE_MAX + 1 + \
                             SL_RESOURCE_NAME_MAX + 1)

/* The namespace a document gets when it names none. */
#define SL_RESOURCE_DEFAULT_NAMESPACE "default"

/* The three tokens of a key, as sl_resource_key_parse() splits it. */
typedef struct sl_resource_id {
    char kind[SL_RESOURCE_KIND_MAX + 1]; /* "" for two-token keys */
    char ns[SL_RESOURCE_NAMESPACE_MAX + 1];
    char name[SL_RESOURCE_NAME_MAX + 1];
} sl_resource_id;

/* Checks a resource name (NULL is invalid). */
sl_status sl_resource_check_name(const char *name);

/* Checks a namespace (NULL is invalid). */
sl_status sl_resource_check_namespace(const char *ns);

/* Checks the shape of a kind token (NULL is invalid). */
sl_status sl_resource_check_kind(const char *kind);

/* Writes the KV key "<kind>.<ns>.<name>" into buf (n bytes, NUL-terminated)
 * after checking all three. kind NULL writes the two-token key "<ns>.<name>"
 * (the sluice_endpoints bucket). SL_ERR_INVALID when a part is invalid or
 * buf is too small (SL_RESOURCE_KEY_MAX always fits); buf is then "". */
sl_status sl_resource_key(char *buf, size_t n, const char *kind, const char *ns,
                          const char *name);

/* Splits and checks a key. with_kind: the key has three tokens
 * (<kind>.<ns>.<name>), else two (<ns>.<name>, out->kind ""). On failure
 * *out is zeroed and the message names the key and the bad part. */
sl_status sl_resource_key_parse(sl_resource_id *out, const char *key, int with_kind);

/* Writes the subject "<prefix>.<kind>.<ns>.<name>" into buf, e.g. prefix
 * "sluice.status" or "sluice.report.translator". The prefix must be
 * non-empty dot-separated tokens without wildcards ('*', '>') or
 * whitespace; the other parts are checked as by sl_resource_key(). */
sl_status sl_resource_subject(char *buf, size_t n, const char *prefix, const char *kind,
                              const char *ns, const char *name);

#endif
