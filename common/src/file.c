/* file.c - see sluice/file.h. Reads in chunks rather than by the size
 * stat() reports, so pipes, standard input and files that grow while being
 * read all work. */
#include "sluice/file.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
        if (n + 65536 > cap) {
            char *p;
            cap = cap ? cap * 2 : 65536;
            if (!(p = realloc(buf, cap + 1))) {
                rc = sl_error_set(SL_ERR_NOMEM, "%s: out of memory", path);
                goto out;
            }
            buf = p;
        }
        size_t r = fread(buf + n, 1, cap - n, f);
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
