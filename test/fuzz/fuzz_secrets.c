/* libFuzzer target for the secret-watcher's file decoding
 * (services/secret-watcher/secrets.c: PEM certificate/key pairs and secret
 * YAML), through sec_scan_dir() on a scratch directory.
 *
 * Input: a layout byte, a secret name, then up to three files separated
 * by 0xff bytes (0xff never occurs in PEM or UTF-8 YAML):
 *   layout 0: <name>.crt, <name>.key, <name>.ca.crt
 *   layout 1: <name>/tls.crt, <name>/tls.key, <name>/ca.crt (Kubernetes mount)
 *   layout 2: <name>.yaml holding the first file
 *   layout 3: <name>.yaml, a tls Secret whose certChain is the first file
 *             and privateKey the second (Sluice's spec or Gloo's layout)
 * Invariants (abort on violation): no crash; every problem is an item
 * whose error starts with the path of the file it is about; every good
 * item is a packed sluice.v1.Secret under a "Secret." key; and no error
 * ever quotes the private key: no run of 16 base64 characters of the key
 * file (or privateKey value) that occurs nowhere else in the input shows
 * up in an error message.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sluice/secrets.h"
#include "sluice/v1/secret.pb-c.h"

#define FUZZ_MAX_INPUT (16 * 1024)
#define RUN 16

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[64];

static void fail(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz_secrets: %s: %s\n", what, detail ? detail : "");
    abort();
}

static void remove_dir(void)
{
    rmdir(dir);
}

static void scratch_dir(void)
{
    if (dir[0])
        return;
    snprintf(dir, sizeof dir, "%s/fuzz-secrets-XXXXXX", access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
    if (!mkdtemp(dir))
        fail("mkdtemp", dir);
    atexit(remove_dir);
}

static void put(const char *path, const uint8_t *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        fail("cannot write", path);
    if (n && fwrite(p, 1, n, f) != n)
        fail("short write", path);
    fclose(f);
}

static int b64(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/';
}

static int contains(const uint8_t *hay, size_t n, const uint8_t *needle, size_t m)
{
    for (size_t i = 0; i + m <= n; i++)
        if (memcmp(hay + i, needle, m) == 0)
            return 1;
    return 0;
}

/* Aborts when err holds a RUN-byte base64 window of key that occurs
 * nowhere in the rest of the input (other: the non-secret parts). */
static void no_key_in(const char *err, const uint8_t *key, size_t klen, const uint8_t *other, size_t olen)
{
    size_t elen = strlen(err);
    for (size_t i = 0; i + RUN <= klen; i++) {
        size_t j = 0;
        while (j < RUN && b64(key[i + j]))
            j++;
        if (j < RUN) {
            i += j; /* skip past the non-base64 byte */
            continue;
        }
        if (contains((const uint8_t *)err, elen, key + i, RUN) && !contains(other, olen, key + i, RUN) &&
            !contains((const uint8_t *)dir, strlen(dir), key + i, RUN)) {
            fprintf(stderr, "key material: %.*s\n", RUN, (const char *)key + i);
            fail("an error message quotes the private key", err);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *part[4] = {0};
    size_t plen[4] = {0}, np = 0;
    char name[48], path[4][176], sub[160]; /* path: sub and a file name */
    unsigned layout;
    uint8_t *yaml = NULL, *other = NULL;
    size_t ylen = 0, olen = 0;
    const uint8_t *key = NULL;
    size_t klen = 0;
    sec_set set;

    if (size < 1 || size > FUZZ_MAX_INPUT)
        return 0;
    scratch_dir();
    layout = data[0] % 4;
    /* name, then the files */
    part[0] = data + 1;
    for (size_t i = 1; i < size && np < 3; i++)
        if (data[i] == 0xff) {
            plen[np] = (size_t)(data + i - part[np]);
            part[++np] = data + i + 1;
        }
    plen[np] = (size_t)(data + size - part[np]);
    for (size_t i = np + 1; i < 4; i++)
        part[i] = data + size;
    /* a file name the layouts can use: no '/', NUL or leading '.' */
    size_t nl = 0;
    for (size_t i = 0; i < plen[0] && nl + 1 < sizeof name && nl < 40; i++) {
        char c = (char)part[0][i];
        name[nl++] = c == '/' || c == 0 || c == '\n' ? '_' : c;
    }
    name[nl] = 0;
    if (!nl || name[0] == '.')
        snprintf(name, sizeof name, "tls");

    switch (layout) {
    case 0:
        snprintf(path[0], sizeof path[0], "%s/%s.crt", dir, name);
        snprintf(path[1], sizeof path[1], "%s/%s.key", dir, name);
        snprintf(path[2], sizeof path[2], "%s/%s.ca.crt", dir, name);
        put(path[0], part[1], plen[1]);
        put(path[1], part[2], plen[2]);
        if (np >= 3)
            put(path[2], part[3], plen[3]);
        key = part[2], klen = plen[2];
        break;
    case 1:
        snprintf(sub, sizeof sub, "%s/%s", dir, name);
        if (mkdir(sub, 0700) != 0)
            fail("mkdir", sub);
        snprintf(path[0], sizeof path[0], "%s/tls.crt", sub);
        snprintf(path[1], sizeof path[1], "%s/tls.key", sub);
        snprintf(path[2], sizeof path[2], "%s/ca.crt", sub);
        put(path[0], part[1], plen[1]);
        if (np >= 2)
            put(path[1], part[2], plen[2]);
        if (np >= 3)
            put(path[2], part[3], plen[3]);
        key = part[2], klen = plen[2];
        break;
    case 2:
        snprintf(path[0], sizeof path[0], "%s/%s.yaml", dir, name);
        put(path[0], part[1], plen[1]);
        break;
    default: {
        /* privateKey last, as a plain scalar running to the end: all of it is key */
        static const char head_spec[] = "apiVersion: gloo.solo.io/v1\nkind: Secret\nmetadata:\n  name: %s\n"
                                        "spec:\n  tls:\n    certChain: ";
        static const char head_gloo[] = "apiVersion: gloo.solo.io/v1\nkind: Secret\nmetadata:\n  name: %s\n"
                                        "tls:\n  certChain: ";
        const char *mid = np >= 3 && plen[3] % 2 ? "\n  privateKey: " : "\n    privateKey: ";
        char head[512];
        int hl = snprintf(head, sizeof head, np >= 3 && plen[3] % 2 ? head_gloo : head_spec, name);
        ylen = (size_t)hl + plen[1] + strlen(mid) + plen[2];
        if (!(yaml = malloc(ylen + 1)))
            abort();
        memcpy(yaml, head, (size_t)hl);
        memcpy(yaml + hl, part[1], plen[1]);
        memcpy(yaml + hl + plen[1], mid, strlen(mid));
        memcpy(yaml + hl + plen[1] + strlen(mid), part[2], plen[2]);
        snprintf(path[0], sizeof path[0], "%s/%s.yaml", dir, name);
        put(path[0], yaml, ylen);
        key = part[2], klen = plen[2];
        break;
    }
    }
    /* what is not key material: the name, the other files, the paths */
    olen = plen[0] + plen[1] + plen[3] + 4 * 161;
    if (!(other = calloc(1, olen)))
        abort();
    memcpy(other, part[0], plen[0]);
    memcpy(other + plen[0], part[1], plen[1]);
    memcpy(other + plen[0] + plen[1], part[3], plen[3]);
    for (int i = 0; i < 3; i++)
        if (layout < 2 || i == 0)
            memcpy(other + plen[0] + plen[1] + plen[3] + 161 * (size_t)i, path[i], strlen(path[i]));

    sec_set_init(&set);
    if (sec_scan_dir(&set, dir, "default") != SL_OK)
        fail("scan failed", dir);
    for (size_t i = 0; i < set.n; i++) {
        const sec_item *it = &set.items[i];
        if (getenv("FUZZ_VERBOSE"))
            fprintf(stderr, "item %s: %s\n", it->key, it->error ? it->error : "ok");
        if (it->error) {
            size_t dl = strlen(dir);
            if (strncmp(it->error, dir, dl) != 0 || it->error[dl] != '/')
                fail("error does not start with the file's path", it->error);
            if (it->value)
                fail("an item with both an error and a value", it->error);
            if (key)
                no_key_in(it->error, key, klen, other, olen);
        } else {
            Sluice__V1__Secret *s = sluice__v1__secret__unpack(NULL, it->len, it->value);
            if (!s || !s->metadata || !s->spec)
                fail("a good item is not a packed Secret", it->key);
            if (strncmp(it->key, "Secret.", 7) != 0)
                fail("a good item's key", it->key);
            sluice__v1__secret__free_unpacked(s, NULL);
        }
    }
    sec_set_deinit(&set);

    for (int i = 0; i < 3; i++)
        if (path[0][0] && layout != 2 && layout != 3)
            unlink(path[i]);
    if (layout >= 2)
        unlink(path[0]);
    if (layout == 1)
        rmdir(sub);
    free(yaml);
    free(other);
    return 0;
}
