/* model_internal.h - what the status model's files share: the model's
 * structures and the functions one file calls in another. Private to
 * common/report/src/model*.c:
 *   model.c         resources and their slots, proxies, the dirty queue,
 *                   config presence
 *   model_report.c  folding a report in (source reports, NACK/ACK overlay)
 *   model_render.c  a resource's status built from its slots
 *   model_load.c    the model rebuilt from stored statuses */
#ifndef SLUICE_REPORT_MODEL_INTERNAL_H
#define SLUICE_REPORT_MODEL_INTERNAL_H

#include "sluice/report_model.h"

#include <string.h>

#include "sluice/resource.h"
#include "sluice/v1/core.pb-c.h"

/* Sources with a part of their own in the model. */
#define REP_SRC_TRANSLATOR "translator"
#define REP_SRC_XDS "xds-server"
#define REP_SRC_REPORTER "reporter"
#define REP_SRC_CONFIG "config-watcher"

/* What one (source, proxy) last reported on a resource. Every string is
 * malloc'd and owned by the slot. */
typedef struct rep_slot {
    char *source;
    char *proxy; /* "" = every proxy */
    Sluice__V1__Status__State state;
    char *reason;
    char **warnings;
    size_t n_warnings;
    int64_t generation;
    char *xds_version;
    int64_t time_ns;
    uint64_t config_rev; /* config-watcher: the sluice_config revision reported on */
    uint8_t *parts; /* packed Status holding only subresource_statuses */
    size_t parts_len;
    /* NACK overlay (translator slots only) */
    bool nacked;
    char *nack_error, *nack_type, *nack_version, *nack_node;
    int64_t nack_time_ns;
} rep_slot;

/* One resource (status key) of the model. */
typedef struct rep_entry {
    char *key;
    sl_resource_id id;
    bool config_kind; /* its kind lives in sluice_config */
    rep_slot *slots;  /* sorted by label */
    size_t n_slots;
    bool in_config;
    uint64_t config_rev; /* its sluice_config revision, when in_config */
    bool dirty;
    uint8_t *pub; /* last committed status, bookkeeping stripped */
    size_t pub_len;
    bool has_pub;
    uint8_t *pending; /* last rendered, bookkeeping stripped */
    size_t pending_len;
    uint64_t rev;
    struct rep_entry *next;
} rep_entry;

/* Which resources of a proxy its NACK concerns. */
enum { REP_NARROW_ALL, REP_NARROW_KINDS, REP_NARROW_NAMES };

/* A proxy's last NACK (or ACK), as the xds-server reported it. */
typedef struct rep_proxy {
    char *id;
    bool nacked;
    char *error, *type, *version, *node;
    int64_t time_ns; /* of the last NACK or ACK */
    int mode;
    char **names; /* REP_NARROW_NAMES: the keys concerned */
    size_t n_names, cap_names;
    struct rep_proxy *next;
} rep_proxy;

struct rep_model {
    rep_entry **tab; /* hash table of cap chains */
    size_t cap, count;
    rep_proxy *proxies;
    char **dirty;
    size_t n_dirty, cap_dirty, dirty_head;
    bool no_gate;
};

static inline const char *rep_nz(const char *s)
{
    return s ? s : "";
}

/* strdup of s, "" for NULL; NULL when out of memory. */
static inline char *rep_strdup(const char *s)
{
    return strdup(s ? s : "");
}

/* --- model.c ---------------------------------------------------------------- */

/* The subresource key a slot is shown under. */
void rep_slot_label(char *buf, size_t n, const rep_slot *s);

/* Orders two reports of one slot: generation, xds revision, time. */
int rep_order_cmp(int64_t ga, const char *va, int64_t ta, int64_t gb, const char *vb, int64_t tb);

/* The entry of key, or NULL. */
rep_entry *rep_entry_find(rep_model *m, const char *key);

/* The entry of key, made when new; SL_ERR_INVALID for a key that does not
 * parse, SL_ERR_NOMEM. */
sl_status rep_entry_get(rep_entry **out, rep_model *m, const char *key);

/* Queues e's key for rep_model_next_dirty (once until popped). */
void rep_mark_dirty(rep_model *m, rep_entry *e);

/* e's slot of (source, proxy): found, added in label order (NULL when out
 * of memory), dropped (index i). */
rep_slot *rep_slot_find(rep_entry *e, const char *source, const char *proxy);
rep_slot *rep_slot_add(rep_entry *e, const char *source, const char *proxy);
void rep_slot_drop(rep_entry *e, size_t i);

/* The newest generation source reported on e (0: none). */
int64_t rep_max_generation(const rep_entry *e, const char *source);

/* A newer generation of a source replaces all of that source's slots of
 * older generations (the resource may have moved between proxies). */
void rep_drop_older_generations(rep_entry *e, const char *source, int64_t gen);

/* The proxy of id, made when new (NULL when out of memory); forgetting its
 * NACK. */
rep_proxy *rep_proxy_get(rep_model *m, const char *id);
void rep_proxy_clear(rep_proxy *p);

/* Overlays a NACK on s unless s has one not older than t; true when set. */
bool rep_slot_set_nack(rep_slot *s, const char *error, const char *type, const char *version,
                       const char *node, int64_t t);
void rep_slot_clear_nack(rep_slot *s);

/* The sluice_config revision a config-watcher report is about. */
uint64_t rep_report_config_rev(const Sluice__V1__Report *r);

/* Replaces s's report with r made at t; s takes parts (malloc'd). */
sl_status rep_slot_set_report(rep_slot *s, const Sluice__V1__Report *r, int64_t t, uint8_t *parts,
                              size_t parts_len);

/* --- model_render.c --------------------------------------------------------- */

/* Packs st into *out (malloc'd). */
sl_status rep_status_pack(uint8_t **out, size_t *len, const Sluice__V1__Status *st);

/* Removes the bookkeeping (details) from st and its subresource statuses. */
void rep_status_strip(Sluice__V1__Status *st);

#endif
