/* registry.c - the etcd registry as a sorted array of parsed values (registry.h). */
#include "registry.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/bsearch.h"
#include "sluice/vec.h"

static int key_cmp(const void *key, const void *elem)
{
    return strcmp(key, ((const ed_reg_entry *)elem)->key);
}

static void entry_deinit(ed_reg_entry *e)
{
    free(e->key);
    free(e->error);
    sl_etcd_endpoint_deinit(&e->ep);
}

sl_status ed_reg_put(ed_registry *r, const sl_etcd_kv *kv)
{
    bool found;
    size_t at = sl_bsearch_pos(&found, kv->key, r->v, r->n, sizeof *r->v, key_cmp);
    ed_reg_entry e = {.mod_revision = kv->mod_revision};

    if (sl_etcd_parse_endpoint(&e.ep, kv->value, kv->len) != SL_OK && !(e.error = strdup(sl_error_msg())))
        return SL_ERR_NOMEM;
    if (found) {
        e.key = r->v[at].key;
        r->v[at].key = NULL;
        entry_deinit(&r->v[at]);
        r->v[at] = e;
        return SL_OK;
    }
    if (!(e.key = strdup(kv->key)) || SL_VEC_RESERVE(r->v, r->cap, r->n + 1) != SL_OK) {
        entry_deinit(&e);
        return SL_ERR_NOMEM;
    }
    memmove(&r->v[at + 1], &r->v[at], (r->n - at) * sizeof *r->v);
    r->v[at] = e;
    r->n++;
    return SL_OK;
}

void ed_reg_delete(ed_registry *r, const char *key)
{
    bool found;
    size_t at = sl_bsearch_pos(&found, key, r->v, r->n, sizeof *r->v, key_cmp);
    if (!found)
        return;
    entry_deinit(&r->v[at]);
    memmove(&r->v[at], &r->v[at + 1], (r->n - at - 1) * sizeof *r->v);
    r->n--;
}

size_t ed_reg_range(const ed_registry *r, const char *prefix, size_t *first)
{
    size_t at = sl_bsearch_pos(NULL, prefix, r->v, r->n, sizeof *r->v, key_cmp), end = at, len = strlen(prefix);
    while (end < r->n && !strncmp(r->v[end].key, prefix, len))
        end++;
    *first = at;
    return end - at;
}

void ed_reg_clear(ed_registry *r)
{
    for (size_t i = 0; i < r->n; i++)
        entry_deinit(&r->v[i]);
    r->n = 0;
}

void ed_reg_free(ed_registry *r)
{
    ed_reg_clear(r);
    free(r->v);
    r->v = NULL;
    r->cap = 0;
}
