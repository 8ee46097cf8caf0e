/* file.c - see sluice/file.h. Reads in chunks rather than by the size
 * stat() reports, so pipes, standard input and files that grow while being
 * read all work. */
#include "sluice/file.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/vec.h"

sl_status sl_file_read(char **out, size_t *len, const char *path)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    char *buf = NULL;
    size_t cap = 0, n = 0;
    sl_status rc = SL_OK;

    *out = NULL;
    if (!f)
        return sl_error_set(SL_ERR_IO, "%s: %s", path, strerror(errno));
    for (;;) {
        /* room for 64 KiB more and the NUL */
        if (SL_VEC_RESERVE(buf, cap, n + 65536 + 1) != SL_OK) {
            rc = sl_error_set(SL_ERR_NOMEM, "%s: out of memory", path);
            goto out;
        }
        size_t r = fread(buf + n, 1, cap - 1 - n, f);
        n += r;
        if (r == 0)
            break;
    }
    if (ferror(f)) {
        rc = sl_error_set(SL_ERR_IO, "%s: read error", path);
        goto out;
    }
    buf[n] = '\0';
    *out = buf;
    buf = NULL;
    if (len)
        *len = n;
out:
    free(buf);
    if (f != stdin)
        fclose(f);
    return rc;
}
