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

#include <stddef.h>
#include <stdint.h>

#include "sluice/status.h"

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

/* Checks a certificate chain, key and optional CA (PEM text). On failure
 * writes the reason (never the material) into why. */
sl_status sec_check_tls(const char *cert, size_t cert_len, const char *key, size_t key_len, const char *ca,
                        size_t ca_len, char *why, size_t why_len);

/* Zeroes n bytes in a way the compiler keeps. */
void sec_wipe(void *p, size_t n);

#endif
