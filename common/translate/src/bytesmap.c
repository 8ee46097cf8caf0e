/* bytesmap.c - packed bytes by message within one translation (tr_bytes_map):
 * kept virtual hosts' bytes to splice, and each cluster and endpoint packed
 * once for every proxy. An open-addressing table in the arena. */
#include <string.h>

#include "core.h"
#include "translate_internal.h"

static size_t bytes_slot(const tr_bytes_map *m, const void *k)
{
    size_t i = (((uintptr_t)k >> 4) * 0x9E3779B97F4A7C15ull) & (m->cap - 1);
    while (m->keys[i] && m->keys[i] != k)
        i = (i + 1) & (m->cap - 1);
    return i;
}

/* Room for n entries in m without growing. */
void tr_bytes_reserve(tr_ctx *tx, tr_bytes_map *m, size_t n)
{
    size_t cap = m->cap ? m->cap : 256;
    while (n * 2 > cap)
        cap *= 2;
    if (cap > m->cap) {
        tr_bytes_map bigger = {0};
        bigger.cap = cap;
        bigger.keys = tr_alloc(tx, bigger.cap * sizeof *bigger.keys);
        bigger.data = tr_alloc(tx, bigger.cap * sizeof *bigger.data);
        bigger.len = tr_alloc(tx, bigger.cap * sizeof *bigger.len);
        memset(bigger.keys, 0, bigger.cap * sizeof *bigger.keys);
        for (size_t j = 0; j < m->cap; j++)
            if (m->keys[j]) {
                size_t s = bytes_slot(&bigger, m->keys[j]);
                bigger.keys[s] = m->keys[j];
                bigger.data[s] = m->data[j];
                bigger.len[s] = m->len[j];
                bigger.n++;
            }
        *m = bigger;
    }
}

void tr_bytes_put(tr_ctx *tx, tr_bytes_map *m, const void *k, const uint8_t *d, size_t len)
{
    size_t i;
    if ((m->n + 1) * 2 > m->cap)
        tr_bytes_reserve(tx, m, m->n + 1);
    i = bytes_slot(m, k);
    if (!m->keys[i])
        m->n++;
    m->keys[i] = k;
    m->data[i] = d;
    m->len[i] = len;
}

const uint8_t *tr_bytes_get(const tr_bytes_map *m, const void *k, size_t *len)
{
    size_t i;
    if (!m->cap)
        return NULL;
    i = bytes_slot(m, k);
    if (!m->keys[i])
        return NULL;
    *len = m->len[i];
    return m->data[i];
}
