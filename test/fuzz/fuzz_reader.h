/* fuzz_reader.h - reading a fuzz input as a sequence of choices, shared by
 * the targets that build structured input (reporter, xds stream, config
 * watcher). Past the end every byte reads as 0. */
#ifndef SLUICE_FUZZ_READER_H
#define SLUICE_FUZZ_READER_H

#include <stddef.h>
#include <stdint.h>

#define N(a) (sizeof(a) / sizeof((a)[0]))

typedef struct reader {
    const uint8_t *p;
    size_t n;
} reader;

/* The next byte, 0 once the input is used up. */
static inline unsigned next(reader *r)
{
    if (!r->n)
        return 0;
    r->n--;
    return *r->p++;
}

/* A string of fewer than max bytes from the input (a length byte, then the
 * bytes; NUL bytes read as '.'), in buf (cap bytes). */
static inline char *rstr_max(reader *r, char *buf, size_t cap, size_t max)
{
    size_t len = next(r) % max, i = 0;
    while (i < len && i + 1 < cap && r->n) {
        char c = (char)next(r);
        buf[i++] = c ? c : '.';
    }
    buf[i] = 0;
    return buf;
}

#endif
