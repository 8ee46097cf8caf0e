/* libFuzzer target for a service's --config file (common/src/conffile.c).
 *
 * The input is written to a scratch file and loaded with sl_conffile_load
 * as every service does ("--config FILE" or "--config=FILE", with more
 * flags after it). Invariants (abort on violation):
 *   - on success argv is argv[0], then exactly the flags and values the
 *     file's lines say (one line, one setting, however long the line; the
 *     oracle below reads the format as sluice/conffile.h documents it),
 *     then the rest of the command line, NULL-terminated;
 *   - on failure the error names the file and the line;
 *   - a NUL byte in the file is an error, never a silently cut line.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sluice/conffile.h"

#define FUZZ_MAX_INPUT (16 * 1024)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char path[64];

static void fail(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz_conffile: %s: %s\n", what, detail ? detail : "");
    abort();
}

/* The settings the documented format gives for the text: flags and values
 * in order; *n of them. NULL when the file is invalid. */
static char **oracle(const uint8_t *data, size_t size, int *n)
{
    char **v = calloc(2 * size + 2, sizeof *v);
    size_t at = 0;
    if (!v)
        abort();
    *n = 0;
    if (memchr(data, 0, size))
        goto bad;
    while (at < size) {
        const uint8_t *nl = memchr(data + at, '\n', size - at);
        size_t end = nl ? (size_t)(nl - data) : size;
        char *line = strndup((const char *)data + at, end - at), *p = line, *hash;
        at = end + 1;
        if (!line)
            abort();
        if ((hash = strchr(p, '#')))
            *hash = 0;
        while (isspace((unsigned char)*p))
            p++;
        size_t l = strlen(p);
        while (l && isspace((unsigned char)p[l - 1]))
            p[--l] = 0;
        if (!*p) {
            free(line);
            continue;
        }
        size_t k = strcspn(p, " \t=");
        if (k == 0 || strncmp(p, "--", 2) == 0 || k + 3 > 256 || (k == 6 && !strncmp(p, "config", 6))) {
            free(line);
            goto bad;
        }
        if (asprintf(&v[(*n)++], "--%.*s", (int)k, p) < 0)
            abort();
        char *val = p + k;
        while (isspace((unsigned char)*val))
            val++;
        if (*val == '=') {
            val++;
            while (isspace((unsigned char)*val))
                val++;
        }
        size_t vl = strlen(val);
        if (vl >= 2 && (val[0] == '"' || val[0] == '\'') && val[vl - 1] == val[0]) {
            val++;
            vl -= 2;
        }
        if (*val || p[k] == '=')
            v[(*n)++] = strndup(val, vl);
        free(line);
    }
    return v;
bad:
    for (int i = 0; i < *n; i++)
        free(v[i]);
    free(v);
    return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sl_conffile c;
    char eq[80];
    char *argv[] = {"svc", "--config", path, "--log-level", "debug", NULL};
    char *argv_eq[] = {"svc", eq, "--log-level", "debug", NULL};
    FILE *f;
    int n = 0;
    char **want;
    sl_status rc;

    if (size > FUZZ_MAX_INPUT)
        return 0;
    if (!path[0])
        snprintf(path, sizeof path, "%s/fuzz-conffile-%d.conf", access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp",
                 (int)getpid());
    if (!(f = fopen(path, "wb")) || (size && fwrite(data, 1, size, f) != size) || fclose(f) != 0)
        fail("cannot write", path);
    snprintf(eq, sizeof eq, "--config=%s", path);
    want = oracle(data, size, &n);
    rc = size % 2 ? sl_conffile_load(&c, 5, argv, NULL) : sl_conffile_load(&c, 4, argv_eq, NULL);
    if (rc == SL_OK) {
        if (!want)
            fail("an invalid file was accepted", NULL);
        if (c.argc != n + 3 || c.argv[c.argc] != NULL)
            fail("wrong number of settings", NULL);
        if (strcmp(c.argv[0], "svc") || strcmp(c.argv[n + 1], "--log-level") || strcmp(c.argv[n + 2], "debug"))
            fail("the command line is not around the file's settings", NULL);
        for (int i = 0; i < n; i++)
            if (strcmp(c.argv[i + 1], want[i]) != 0)
                fail("a setting differs from the file's", c.argv[i + 1]);
    } else {
        const char *msg = sl_error_msg();
        if (rc != SL_ERR_PARSE)
            fail("unexpected status", msg);
        if (want)
            fail("a valid file was refused", msg);
        if (strncmp(msg, path, strlen(path)) != 0 || msg[strlen(path)] != ':' ||
            !isdigit((unsigned char)msg[strlen(path) + 1]))
            fail("the error does not name file and line", msg);
    }
    sl_conffile_deinit(&c);
    unlink(path);
    for (int i = 0; want && i < n; i++)
        free(want[i]);
    free(want);
    return 0;
}
