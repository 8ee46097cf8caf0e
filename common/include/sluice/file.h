/* sluice/file.h - reading a whole file. */
#ifndef SLUICE_FILE_H
#define SLUICE_FILE_H

#include <stddef.h>

#include "sluice/status.h"

/* Reads the file at path ("-": standard input) into *out, a malloc'd
 * buffer with a NUL after the last byte (the caller frees it); *len (may be
 * NULL) is its length. On failure *out is NULL and the error context names
 * the path: SL_ERR_IO with the system's reason, SL_ERR_NOMEM. */
sl_status sl_file_read(char **out, size_t *len, const char *path);

#endif
