/* ctl.h - shared pieces of the sluicectl commands. */
#ifndef SLUICE_CTL_H
#define SLUICE_CTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sluice/kinds.h"
#include "sluice/nats.h"
#include "sluice/pbcheck.h"
#include "sluice/resource.h"
#include "sluice/v1/events.pb-c.h"

#define CTL_VERSION "0.1.0"

typedef struct ctl {
    sl_nats_settings nats;
    int64_t timeout_ms; /* --request-timeout */
    const char *argv0;
} ctl;

/* Connects with c->nats, or prints an error and returns NULL. */
sl_nats *ctl_connect(ctl *c);
/* Closes what ctl_connect() opened, without a drain. NULL is fine. */
void ctl_close(sl_nats *nc);

/* "virtualservice.gateway.solo.io" for a kind. */
void ctl_kind_ref(char *buf, size_t n, const char *kind);

/* Prints "error: ..." and the command's usage hint; returns 1. */
int ctl_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Shared option scanning: matches "-x VALUE", "--long VALUE", "--long=VALUE". */
bool ctl_opt(int argc, char **argv, int *i, const char *shrt, const char *lng, const char **val);

/* qsort/bsearch comparator of an array of C strings. */
int ctl_cmp_str(const void *a, const void *b);

/* A config resource as sluicectl get, status and check list it. */
typedef struct ctl_item {
    char *key;
    sl_resource_id id;
    const sl_kind *kind;
    ProtobufCMessage *msg;
    uint64_t rev;
    Sluice__V1__Status *status; /* NULL when none */
} ctl_item;

/* Loads the config resources of kind k (NULL: all), namespace ns (NULL:
 * all), name (NULL: all), with their statuses, sorted, into *out (free with
 * ctl_items_free()). keep_bad: also values that do not decode (msg NULL)
 * and statuses of resources never stored. 0, or -1 after printing an error. */
int ctl_load_items(ctl_item **out, size_t *nout, sl_nats *nc, const sl_kind *k, const char *ns, const char *name,
                   bool keep_bad);
/* Frees what ctl_load_items() returned. */
void ctl_items_free(ctl_item *it, size_t n);

int ctl_cmd_apply(ctl *c, int argc, char **argv);
int ctl_cmd_delete(ctl *c, int argc, char **argv);
int ctl_cmd_get(ctl *c, int argc, char **argv);
int ctl_cmd_status(ctl *c, int argc, char **argv);
int ctl_cmd_xds(ctl *c, int argc, char **argv);
int ctl_cmd_check(ctl *c, int argc, char **argv);
int ctl_cmd_run(ctl *c, int argc, char **argv);
/* cmds_auth.c: NATS credentials and TLS certificates for deployments. */
int ctl_cmd_nats_auth(ctl *c, int argc, char **argv);
int ctl_cmd_certs(ctl *c, int argc, char **argv);

/* data (len bytes, a packed desc, from NATS) decoded with the nesting
 * bound of sluice/pbcheck.h; NULL when it does not decode. */
static inline void *ctl_unpack(const ProtobufCMessageDescriptor *desc, const void *data, size_t len)
{
    ProtobufCMessage *m = NULL;
    return sl_pb_unpack(&m, desc, NULL, data, len) == SL_OK ? m : NULL;
}

#endif
