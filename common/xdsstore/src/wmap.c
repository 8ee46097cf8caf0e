/* wmap.c - the writer's map of what it wrote: key -> bytes, revision (see writer_internal.h). */
#include <stdlib.h>
#include <string.h>

#include "writer_internal.h"

static size_t hstr(const char *s)
{
    size_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

written *xdsw_map_get(wmap *m, const char *key)
{
    if (!m->cap)
        return NULL;
    for (written *w = m->b[hstr(key) % m->cap]; w; w = w->next)
        if (strcmp(w->key, key) == 0)
            return w;
    return NULL;
}

written *xdsw_map_put(wmap *m, const char *key)
{
    written *w = xdsw_map_get(m, key);
    if (w)
        return w;
    if (m->n + 1 > m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 1024;
        written **b = calloc(cap, sizeof *b);
        if (!b)
            return NULL;
        for (size_t i = 0; i < m->cap; i++)
            for (written *x = m->b[i], *nx; x; x = nx) {
                nx = x->next;
                x->next = b[hstr(x->key) % cap];
                b[hstr(x->key) % cap] = x;
            }
        free(m->b);
        m->b = b;
        m->cap = cap;
    }
    if (!(w = calloc(1, sizeof *w)) || !(w->key = strdup(key))) {
        free(w);
        return NULL;
    }
    w->next = m->b[hstr(key) % m->cap];
    m->b[hstr(key) % m->cap] = w;
    m->n++;
    return w;
}

void xdsw_map_del(wmap *m, const char *key)
{
    written **pp;
    if (!m->cap)
        return;
    for (pp = &m->b[hstr(key) % m->cap]; *pp; pp = &(*pp)->next)
        if (strcmp((*pp)->key, key) == 0) {
            written *w = *pp;
            *pp = w->next;
            free(w->key);
            free(w->data);
            free(w);
            m->n--;
            return;
        }
}

void xdsw_map_free(wmap *m)
{
    for (size_t i = 0; i < m->cap; i++)
        for (written *w = m->b[i], *nx; w; w = nx) {
            nx = w->next;
            free(w->key);
            free(w->data);
            free(w);
        }
    free(m->b);
    memset(m, 0, sizeof *m);
}
