/* nkey.c - NATS user nkeys: Ed25519 keys from OpenSSL, NATS's encoding
 * (prefix byte, CRC-16/XMODEM little endian, base32 without padding). */
#include "sluice/nkey.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nats/nats.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#define PREFIX_SEED (18u << 3) /* 'S' */
#define PREFIX_USER (20u << 3) /* 'U' */
#define RAW_KEY 32

static const char B32[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/* nats.c must initialise OpenSSL before anyone else in the process does:
 * its exit handler frees OpenSSL state that OpenSSL's own (registered
 * first when we go first) then frees again, a crash at exit of any process
 * that also uses NATS over TLS. nats_Open() is a no-op when done. */
static void crypto_init(void)
{
    nats_Open(-1);
}

static uint16_t crc16(const uint8_t *p, size_t n)
{
    uint16_t crc = 0;
    for (size_t i = 0; i < n; i++) {
        crc ^= (uint16_t)(p[i] << 8);
        for (int b = 0; b < 8; b++)
            crc = (uint16_t)(crc & 0x8000 ? (crc << 1) ^ 0x1021 : crc << 1);
    }
    return crc;
}

/* base32 of n bytes into out (room for (n*8+4)/5 + 1). */
static void b32_encode(char *out, const uint8_t *p, size_t n)
{
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        acc = (acc << 8) | p[i];
        bits += 8;
        while (bits >= 5) {
            *out++ = B32[(acc >> (bits - 5)) & 31];
            bits -= 5;
        }
    }
    if (bits > 0)
        *out++ = B32[(acc << (5 - bits)) & 31];
    *out = '\0';
}

/* Decodes exactly len characters of s into out (cap bytes); the number of
 * bytes, or -1 on a character outside the alphabet or an overflow. */
static long b32_decode(uint8_t *out, size_t cap, const char *s, size_t len)
{
    uint32_t acc = 0;
    int bits = 0;
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        const char *c = memchr(B32, s[i], 32);
        if (!c || !s[i])
            return -1;
        acc = (acc << 5) | (uint32_t)(c - B32);
        bits += 5;
        if (bits >= 8) {
            if (n == cap)
                return -1;
            out[n++] = (uint8_t)(acc >> (bits - 8));
            bits -= 8;
        }
    }
    return (long)n;
}

/* prefix bytes + key + CRC, base32: the NATS text form. */
static void encode(char *out, const uint8_t *prefix, size_t np, const uint8_t key[RAW_KEY])
{
    uint8_t raw[2 + RAW_KEY + 2];
    memcpy(raw, prefix, np);
    memcpy(raw + np, key, RAW_KEY);
    uint16_t c = crc16(raw, np + RAW_KEY);
    raw[np + RAW_KEY] = (uint8_t)(c & 0xff);
    raw[np + RAW_KEY + 1] = (uint8_t)(c >> 8);
    b32_encode(out, raw, np + RAW_KEY + 2);
}

/* The raw Ed25519 seed of a user seed string; 0 when malformed. */
static int decode_seed(uint8_t key[RAW_KEY], const char *seed)
{
    uint8_t raw[2 + RAW_KEY + 2];
    if (!seed || strlen(seed) != SL_NKEY_SEED_LEN || b32_decode(raw, sizeof raw, seed, SL_NKEY_SEED_LEN) != (long)sizeof raw)
        return 0;
    uint16_t c = (uint16_t)(raw[2 + RAW_KEY] | raw[2 + RAW_KEY + 1] << 8);
    if (crc16(raw, 2 + RAW_KEY) != c || (raw[0] & 0xf8) != PREFIX_SEED ||
        (uint8_t)((raw[0] & 7) << 5 | raw[1] >> 3) != PREFIX_USER)
        return 0;
    memcpy(key, raw + 2, RAW_KEY);
    OPENSSL_cleanse(raw, sizeof raw);
    return 1;
}

static sl_status public_of(char pub[SL_NKEY_PUBLIC_LEN + 1], const uint8_t key[RAW_KEY])
{
    sl_status st = SL_OK;
    uint8_t pk[RAW_KEY], prefix = PREFIX_USER;
    size_t pklen = sizeof pk;
    crypto_init();
    EVP_PKEY *k = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, key, RAW_KEY);
    if (!k || EVP_PKEY_get_raw_public_key(k, pk, &pklen) != 1 || pklen != RAW_KEY)
        st = sl_error_set(SL_ERR_INTERNAL, "Ed25519 public key derivation failed");
    else
        encode(pub, &prefix, 1, pk);
    EVP_PKEY_free(k);
    return st;
}

sl_status sl_nkey_generate(char seed[SL_NKEY_SEED_LEN + 1], char pub[SL_NKEY_PUBLIC_LEN + 1])
{
    uint8_t key[RAW_KEY];
    const uint8_t prefix[2] = {(uint8_t)(PREFIX_SEED | PREFIX_USER >> 5), (uint8_t)((PREFIX_USER & 31) << 3)};
    sl_status st;
    crypto_init();
    if (RAND_bytes(key, sizeof key) != 1)
        return sl_error_set(SL_ERR_INTERNAL, "no random bytes for an nkey");
    encode(seed, prefix, 2, key);
    st = public_of(pub, key);
    OPENSSL_cleanse(key, sizeof key);
    return st;
}

sl_status sl_nkey_public(char pub[SL_NKEY_PUBLIC_LEN + 1], const char *seed)
{
    uint8_t key[RAW_KEY];
    sl_status st;
    if (!decode_seed(key, seed))
        return sl_error_set(SL_ERR_INVALID, "not a NATS user nkey seed (want %d characters starting with SU, "
                            "base32 with a valid checksum)", SL_NKEY_SEED_LEN);
    st = public_of(pub, key);
    OPENSSL_cleanse(key, sizeof key);
    return st;
}

int sl_nkey_public_valid(const char *pub)
{
    uint8_t raw[1 + RAW_KEY + 2];
    if (!pub || strlen(pub) != SL_NKEY_PUBLIC_LEN || b32_decode(raw, sizeof raw, pub, SL_NKEY_PUBLIC_LEN) != (long)sizeof raw)
        return 0;
    return raw[0] == PREFIX_USER && crc16(raw, 1 + RAW_KEY) == (uint16_t)(raw[1 + RAW_KEY] | raw[2 + RAW_KEY] << 8);
}

sl_status sl_nkey_write_seed(const char *path, const char *seed)
{
    char tmp[4096];
    sl_status st = SL_OK;
    int fd = -1;
    if (snprintf(tmp, sizeof tmp, "%s.tmp%ld", path, (long)getpid()) >= (int)sizeof tmp)
        return sl_error_set(SL_ERR_INVALID, "nkey path too long: %s", path);
    if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0) {
        st = sl_error_set(SL_ERR_IO, "%s: %s", tmp, strerror(errno));
        goto out;
    }
    size_t n = strlen(seed);
    if (write(fd, seed, n) != (ssize_t)n || write(fd, "\n", 1) != 1 || fsync(fd) != 0) {
        st = sl_error_set(SL_ERR_IO, "%s: %s", tmp, strerror(errno));
        goto out;
    }
    if (close(fd) != 0) {
        fd = -1;
        st = sl_error_set(SL_ERR_IO, "%s: %s", tmp, strerror(errno));
        goto out;
    }
    fd = -1;
    if (rename(tmp, path) != 0)
        st = sl_error_set(SL_ERR_IO, "%s: %s", path, strerror(errno));
out:
    if (fd >= 0)
        close(fd);
    if (st != SL_OK)
        unlink(tmp);
    return st;
}

sl_status sl_nkey_read_seed(char seed[SL_NKEY_SEED_LEN + 1], const char *path)
{
    char line[256];
    struct stat sb;
    sl_status st = SL_ERR_INVALID;
    FILE *f = fopen(path, "re");
    if (!f)
        return sl_error_set(SL_ERR_IO, "nkey seed file %s: %s", path, strerror(errno));
    if (fstat(fileno(f), &sb) == 0 && (sb.st_mode & 077)) {
        st = sl_error_set(SL_ERR_INVALID, "nkey seed file %s is readable by others (mode %03o): chmod 600 it",
                          path, (unsigned)(sb.st_mode & 0777));
        goto out;
    }
    while (fgets(line, sizeof line, f)) {
        char *s = line;
        while (*s == ' ' || *s == '\t')
            s++;
        if (strncmp(s, "SU", 2) != 0)
            continue;
        s[strcspn(s, " \t\r\n")] = '\0';
        uint8_t key[RAW_KEY];
        if (decode_seed(key, s)) {
            OPENSSL_cleanse(key, sizeof key);
            memcpy(seed, s, SL_NKEY_SEED_LEN + 1);
            st = SL_OK;
            break;
        }
    }
    OPENSSL_cleanse(line, sizeof line);
    if (st != SL_OK)
        st = sl_error_set(SL_ERR_INVALID, "nkey seed file %s holds no valid user seed (a line starting with SU)",
                          path);
out:
    fclose(f);
    return st;
}
