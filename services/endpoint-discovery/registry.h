/* registry.h - sluice-endpoint-discovery's copy of the etcd registry: every key under the watched prefix with
 * its value parsed (sl_etcd_parse_endpoint), sorted by key, so that a service prefix's endpoints are one
 * range. Changed by the watch's batches on the loop's thread only. */
#ifndef ED_REGISTRY_H
#define ED_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

#include "sluice/etcd.h"
#include "sluice/status.h"

typedef struct ed_reg_entry {
    char *key;
    int64_t mod_revision;
    char *error;         /* the value is not an endpoint: why (malloc'd); NULL when ep is valid */
    sl_etcd_endpoint ep; /* the parsed value (valid when error is NULL) */
} ed_reg_entry;

typedef struct ed_registry {
    ed_reg_entry *v;
    size_t n, cap;
} ed_registry;

/* Sets key's value (added or replaced, parsed; a value that does not parse
 * is kept with its error). SL_ERR_NOMEM only. */
sl_status ed_reg_put(ed_registry *r, const sl_etcd_kv *kv);

/* Removes key (nothing when absent). */
void ed_reg_delete(ed_registry *r, const char *key);

/* The entries whose key starts with prefix: *first and the count. */
size_t ed_reg_range(const ed_registry *r, const char *prefix, size_t *first);

/* Empties r (kept usable). */
void ed_reg_clear(ed_registry *r);

/* Empties r and frees its array. */
void ed_reg_free(ed_registry *r);

#endif
