/* ctl.h - shared pieces of the sluicectl commands. */
#ifndef SLUICE_CTL_H
#define SLUICE_CTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sluice/envelope.h"
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

/* Sends one body to subject (headers Sluice-Filename when fname is not
 * NULL, Sluice-Dry-Run when dry_run) and returns the reply, or NULL after
 * printing why. Free the reply with natsMsg_Destroy(). */
natsMsg *ctl_api_request(ctl *c, sl_nats *nc, const char *subject, sl_content_type ct, const char *proto,
                         const void *data, size_t len, const char *fname, bool dry_run);

/* Prints an ApplyResponse reply (fname names the request in errors) and
 * destroys it: 0, or 1 when the request failed or a resource was rejected. */
int ctl_apply_reply(natsMsg *reply, const char *fname, bool dry_run);

/* Prints a DeleteResponse reply (not destroyed): 0, or 1 when the request
 * failed or a resource could not be deleted. */
int ctl_delete_reply(natsMsg *reply, bool dry_run);

/* Sends a DeleteRequest of n refs (borrowed) to subject: the reply as
 * ctl_api_request() returns it. */
natsMsg *ctl_delete_request(ctl *c, sl_nats *nc, const char *subject, Sluice__V1__ObjectRef **refs, size_t n,
                            bool dry_run);

/* Prints kubectl-style lines for an apply or delete reply's results, each
 * followed by its warnings; returns the number rejected. */
int ctl_print_results(Sluice__V1__ResourceResult **rs, size_t n, bool dry_run, bool deleting);

/* cmds_secret.c: Secrets through the secret-watcher's API. */
/* The Secret documents of a file's text and the rest, each as a copy of
 * text with the other documents' lines blanked (line numbers stay). */
typedef struct ctl_split {
    char *secrets; /* NULL: no Secret document */
    char *config;  /* NULL: nothing but Secrets */
    size_t len;    /* of both */
} ctl_split;
/* Splits text (YAML or JSON). When it does not parse, all of it is config. */
sl_status ctl_split_secrets(ctl_split *out, const char *text, size_t len, const char *fname);
/* Wipes and frees the copies. */
void ctl_split_deinit(ctl_split *s);
/* Wipes n bytes at p (what may hold key material) and frees p. */
void ctl_wipe_free(void *p, size_t n);
/* Applies secrets text (YAML or JSON, ct) through sluice.api.secret.apply
 * and prints the results; 0, or 1 when any was rejected or the request
 * failed. */
int ctl_apply_secret_text(ctl *c, sl_nats *nc, const char *text, size_t len, sl_content_type ct, const char *fname,
                          bool dry_run);
/* The secret-watcher's delete subject. */
#define CTL_SECRET_DELETE "sluice.api.secret.delete"
/* delete -f: deletes the Secret documents of text (YAML or JSON) by name
 * through the secret-watcher (no material is sent); 0, or 1. */
int ctl_delete_secret_docs(ctl *c, sl_nats *nc, const char *text, size_t len, const char *fname, bool dry_run);
int ctl_cmd_create(ctl *c, int argc, char **argv);

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
