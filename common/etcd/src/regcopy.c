/* regcopy.c - the etcd registry as a sorted array of parsed values (sluice/etcd_follow.h). */
#include "sluice/etcd_follow.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/bsearch.h"
#include "sluice/vec.h"

static int key_cmp(const void *key, const void *elem)
{
    return strcmp(key, ((const sl_etcd_reg_entry *)elem)->key);
}

static void entry_deinit(sl_etcd_reg_entry *e)
{
    free(e->key);
    free(e->error);
    sl_etcd_endpoint_deinit(&e->ep);
}

sl_status sl_etcd_reg_put(sl_etcd_reg *r, const sl_etcd_kv *kv)
{
    bool found;
    size_t at = sl_bsearch_pos(&found, kv->key, r->v, r->n, sizeof *r->v, key_cmp);
    sl_etcd_reg_entry e = {.mod_revision = kv->mod_revision};

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

void sl_etcd_reg_delete(sl_etcd_reg *r, const char *key)
{
    bool found;
    size_t at = sl_bsearch_pos(&found, key, r->v, r->n, sizeof *r->v, key_cmp);
    if (!found)
        return;
    entry_deinit(&r->v[at]);
    memmove(&r->v[at], &r->v[at + 1], (r->n - at - 1) * sizeof *r->v);
    r->n--;
}

size_t sl_etcd_reg_range(const sl_etcd_reg *r, const char *prefix, size_t *first)
{
    size_t at = sl_bsearch_pos(NULL, prefix, r->v, r->n, sizeof *r->v, key_cmp), end = at, len = strlen(prefix);
    while (end < r->n && !strncmp(r->v[end].key, prefix, len))
        end++;
    *first = at;
    return end - at;
}

void sl_etcd_reg_clear(sl_etcd_reg *r)
{
    for (size_t i = 0; i < r->n; i++)
        entry_deinit(&r->v[i]);
    r->n = 0;
}

void sl_etcd_reg_free(sl_etcd_reg *r)
{
    sl_etcd_reg_clear(r);
    free(r->v);
    r->v = NULL;
    r->cap = 0;
}

sl_status sl_etcd_reg_apply(sl_etcd_reg *r, const sl_etcd_batch *b)
{
    sl_status rc = SL_OK;
    switch (b->step) {
    case SL_ETCD_FAILED:
        break;
    case SL_ETCD_RESET:
        sl_etcd_reg_clear(r);
        for (size_t i = 0; i < b->n_kvs; i++)
            if (sl_etcd_reg_put(r, &b->kvs[i]) != SL_OK)
                rc = SL_ERR_NOMEM;
        break;
    case SL_ETCD_EVENTS:
        for (size_t i = 0; i < b->n_events; i++) {
            if (b->events[i].type == SL_ETCD_DELETE)
                sl_etcd_reg_delete(r, b->events[i].kv.key);
            else if (sl_etcd_reg_put(r, &b->events[i].kv) != SL_OK)
                rc = SL_ERR_NOMEM;
        }
        break;
    }
    return rc;
}
