/* sluice/natsauth.h - NATS least privilege: who may publish and subscribe
 * what (docs/security.md has the same table in prose), and provisioning
 * of each role's nkey and of the nats-server `authorization` block.
 *
 * One role per Sluice process kind (config-watcher, secret-watcher,
 * translator, xds, reporter, discovery services), one for operators
 * (sluicectl: reads every bucket but the secrets, uses the apply API) and
 * one for clients in any language (the apply API and statuses only). Each
 * role's access to a KV bucket is expanded into the JetStream API subjects
 * nats.c uses for it (stream info, consumer create/delete for watches,
 * direct and stream gets, flow control, puts on $KV.<bucket>.<prefix>...);
 * replies come on `_INBOX_<connection name>.>` (sluice/nats.h), so a user
 * subscribes to its own replies only.
 *
 * Provisioned files (the state directory of `sluicectl run`, or what
 * `sluicectl nats-auth DIR` writes for other deployments):
 *   DIR/<role>.nk      the role's user seed, mode 0600 (DIR mode 0700)
 *   DIR/auth.conf      `authorization { users = [...] }` with every role's
 *                      public key and permissions, for the nats-server
 *                      config to `include`
 * Seeds that exist are kept (rotation: delete a seed file and provision
 * again, then restart that role's processes and reload nats-server).
 */
#ifndef SLUICE_NATSAUTH_H
#define SLUICE_NATSAUTH_H

#include <stdbool.h>
#include <stddef.h>

#include "sluice/status.h"

/* Access of a role to one KV bucket (bits). */
enum {
    SL_KV_INFO = 1,    /* stream info only (sluicectl check) */
    SL_KV_READ = 2,    /* info, get, watch */
    SL_KV_WRITE = 4,   /* put, delete, purge (under key_prefix when set) */
    SL_KV_CREATE = 8,  /* create and update the bucket */
};

typedef struct sl_natsauth_kv {
    const char *bucket;
    unsigned access;
    const char *key_prefix; /* writes limited to keys "<prefix>.>" (NULL: any key) */
} sl_natsauth_kv;

typedef struct sl_natsauth_role {
    const char *name;      /* the role, and its seed file DIR/<name>.nk */
    const char *conn_name; /* the NATS connection name its processes use (inbox prefix) */
    const char *doc;       /* one line: what the role is for */
    const sl_natsauth_kv *kv; /* terminated by a NULL bucket */
    const char *const *publish;   /* further subjects, NULL terminated */
    const char *const *subscribe; /* further subjects, NULL terminated */
    bool allow_responses;  /* may answer requests it received */
} sl_natsauth_role;

/* The roles, in a fixed order; *n their count. Static. */
const sl_natsauth_role *sl_natsauth_roles(size_t *n);

/* The role named name, or NULL. */
const sl_natsauth_role *sl_natsauth_role_find(const char *name);

/* Appends to *out (malloc'd, caller frees) the nats-server permissions
 * block of r: `{ publish: { allow: [...] }, subscribe: { allow: [...] },
 * allow_responses: ... }`. SL_ERR_NOMEM only. */
sl_status sl_natsauth_permissions(char **out, const sl_natsauth_role *r);

/* Provisions dir as described above. With admin, also a role-less "admin"
 * user (dir/admin.nk) allowed everything, for tests and recovery; never in
 * shipped deployments. SL_ERR_IO naming the path on failure. */
sl_status sl_natsauth_provision(const char *dir, bool admin);

/* Writes path, a nats-server configuration in a provisioned directory:
 * `include "auth.conf"` and then extra's content when extra is given (a
 * nats-server include cannot take an absolute path, so the file is
 * copied). SL_ERR_IO naming the file on failure. */
sl_status sl_natsauth_server_conf(const char *path, const char *extra);

#endif
