/* secrets.h - a directory of PEM files and secret YAML -> Secret resources.
 *
 * What a directory holds (docs/secrets.md):
 *   <name>.crt + <name>.key [+ <name>.ca.crt]  a tls Secret <name>
 *   <name>/tls.crt + tls.key [+ ca.crt]        the same, laid out like a
 *                                              Kubernetes secret mount
 *   *.yaml, *.yml, *.json                      Gloo `kind: Secret` documents
 *                                              (tls, aws or header), either
 *                                              Sluice's `spec: {tls: ...}` or
 *                                              Gloo's top-level `tls: ...`
 * The same documents also come over NATS (sluice.api.secret.apply, the
 * secret-watcher's API): sec_parse_text() and sec_add_message().
 * Names starting with '.' are skipped (editors' temporaries, ..data).
 *
 * Certificates and keys are checked with OpenSSL: every PEM block parses,
 * the key matches the leaf certificate, the CA bundle parses. A problem is
 * an sec_item with an error naming the file and the reason, never the
 * material; the caller keeps the secret it stored before.
 *
 * Nothing here logs, touches NATS or keeps state.
 */
#ifndef SLUICE_SECRETS_H
#define SLUICE_SECRETS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sluice/status.h"
#include "sluice/v1/secret.pb-c.h"

/* Annotation naming the file a secret came from (not secret). */
#define SEC_SOURCE_ANNOTATION "sluice.io/source"
/* Annotation naming the directory, so a watcher only prunes its own. */
#define SEC_DIR_ANNOTATION "sluice.io/source-dir"

typedef struct sec_item {
    char key[400];  /* "Secret.<ns>.<name>" */
    char file[1024]; /* the file (or directory) it came from */
    uint8_t *value; /* packed sluice.v1.Secret; NULL when error is set */
    size_t len;
    char *error; /* "<file>: <reason>", or NULL */
} sec_item;

typedef struct sec_set {
    sec_item *items;
    size_t n, cap;
} sec_set;

void sec_set_init(sec_set *s);
void sec_set_deinit(sec_set *s); /* wipes the values' memory too */

/* The item with this key, or NULL. */
sec_item *sec_set_find(sec_set *s, const char *key);

/* Scans dir, adding what it holds to out; secrets without a namespace go
 * to ns. Problems are items with error set (a file that names no valid
 * secret name gets key ""). SL_ERR_IO only when dir cannot be read. */
sl_status sec_scan_dir(sec_set *out, const char *dir, const char *ns);

/* Where secret documents come from, for sec_parse_text() and
 * sec_add_message(); borrowed for the call. */
typedef struct sec_source {
    const char *label;  /* names the source in errors: a file, "<request>" */
    const char *ns;     /* namespace of secrets that name none */
    const char *dir;    /* SEC_DIR_ANNOTATION value; NULL: no such annotation */
    const char *source; /* SEC_SOURCE_ANNOTATION value (and the items' file) */
    bool only_secrets;  /* other kinds are errors (else skipped) */
} sec_source;

/* Parses the Secret documents of text (YAML or JSON, several documents),
 * in Sluice's layout or Gloo's, checks them and adds them to out as
 * sec_scan_dir() does for a file; errors are items ("<label>:<line>:
 * <reason>", never a value). text is not changed; the caller wipes it.
 * SL_ERR_PARSE only when the text cannot be read at all (an item says so). */
sl_status sec_parse_text(sec_set *out, const char *text, size_t len, const sec_source *src);

/* Checks a decoded Secret (a protobuf request's) and adds it to out, with
 * src's annotations; where names it in errors. */
void sec_add_message(sec_set *out, const Sluice__V1__Secret *s, const char *where, const sec_source *src);

/* Checks the material of a spec as the directory's secrets are checked:
 * tls (sec_check_tls), aws (accessKey and secretKey), header (at least
 * one). On failure writes the reason (never the material) into why. */
sl_status sec_check_spec(const Sluice__V1__SecretSpec *spec, char *why, size_t why_len);

/* Wipes the key material of s (unpacked with the default allocator) and
 * frees it. NULL is fine. */
void sec_secret_free(Sluice__V1__Secret *s);

/* The value of s's annotation key (owned by s), or NULL. */
const char *sec_secret_annotation(const Sluice__V1__Secret *s, const char *key);

/* PEM text of a tls secret read from files; the strings are malloc'd and
 * NUL-terminated, ca NULL when there is none. */
typedef struct sec_tls_text {
    char *cert, *key, *ca;
    size_t cert_len, key_len, ca_len;
} sec_tls_text;

/* Reads the certificate chain file crt, the key file keyf and the CA file
 * caf (NULL: none; with ca_if_exists a missing caf is none too) and checks
 * them (sec_check_tls). On failure *bad is the file at fault, why the
 * reason (never the material), and t holds nothing. */
sl_status sec_tls_read(sec_tls_text *t, const char *crt, const char *keyf, const char *caf, bool ca_if_exists,
                       const char **bad, char *why, size_t why_len);

/* Wipes and frees t's text. */
void sec_tls_text_deinit(sec_tls_text *t);

/* Checks a certificate chain, key and optional CA (PEM text). On failure
 * writes the reason (never the material) into why. */
sl_status sec_check_tls(const char *cert, size_t cert_len, const char *key, size_t key_len, const char *ca,
                        size_t ca_len, char *why, size_t why_len);

/* Zeroes n bytes in a way the compiler keeps. */
void sec_wipe(void *p, size_t n);

#endif
