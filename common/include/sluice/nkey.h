/* sluice/nkey.h - NATS user nkeys (Ed25519) made and read by Sluice, so that
 * `sluicectl run` and `sluicectl nats-auth` give every service credentials of
 * its own without NATS's own tools.
 *
 * An nkey seed is "SU" + base32 of the 32-byte Ed25519 seed with its prefix
 * and a CRC-16 (58 characters); its public key "U" + base32 (56 characters)
 * is what nats-server's `users = [ { nkey: U... } ]` lists (in auth.conf's accounts).
 * The seed is a secret: seed files are written with mode 0600, and nothing
 * here logs one.
 */
#ifndef SLUICE_NKEY_H
#define SLUICE_NKEY_H

#include <stddef.h>

#include "sluice/status.h"

#define SL_NKEY_SEED_LEN 58
#define SL_NKEY_PUBLIC_LEN 56

/* A new user nkey from the system's random source: seed and public key,
 * NUL terminated. SL_ERR_INTERNAL when OpenSSL fails. */
sl_status sl_nkey_generate(char seed[SL_NKEY_SEED_LEN + 1], char pub[SL_NKEY_PUBLIC_LEN + 1]);

/* The public key of a user seed. SL_ERR_INVALID (without quoting the seed)
 * when it is not a well-formed user seed (prefix, length, base32, CRC). */
sl_status sl_nkey_public(char pub[SL_NKEY_PUBLIC_LEN + 1], const char *seed);

/* Whether pub is a well-formed user public key (prefix, length, CRC). */
int sl_nkey_public_valid(const char *pub);

/* Writes seed and a newline to path, created with mode 0600 (replaced
 * atomically when it exists). SL_ERR_IO with the path and errno. */
sl_status sl_nkey_write_seed(const char *path, const char *seed);

/* Reads the first line starting with "SU" from path into seed (the file may
 * hold comments, like a NATS creds file). SL_ERR_IO, or SL_ERR_INVALID when
 * no valid user seed is in it; a file readable by others than its owner is
 * refused (SL_ERR_INVALID naming the mode). */
sl_status sl_nkey_read_seed(char seed[SL_NKEY_SEED_LEN + 1], const char *path);

#endif
