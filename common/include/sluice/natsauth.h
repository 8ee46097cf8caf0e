/* sluice/natsauth.h - NATS least privilege: who may publish and subscribe
 * what (docs/security.md has the same table in prose), and provisioning
 * of each role's nkey and of the nats-server `accounts` block.
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
 * Two NATS accounts. SLUICE holds Sluice's processes and operators (and
 * JetStream). CLIENTS holds the roles of users' programs (client,
 * config-writer): they reach Sluice only through what SLUICE exports and
 * CLIENTS imports, the union of those roles' table entries:
 *   - their API subjects sluice.api.<x> as services arriving in SLUICE on
 *     SL_NATSAUTH_CLIENT_API_PREFIX "<x>" with `share: true`, so nats-server
 *     sets the requester's account and user (its nkey) in the request's
 *     Nats-Request-Info header, replacing one a client sent (within one
 *     account a responder is told nothing of who sent a request; no SLUICE
 *     user may publish on those subjects, so nothing else can forge it);
 *   - their status subjects (sluice.status.>) as a stream;
 *   - reading a bucket: its stream info, direct and message gets (no
 *     watch) under the JetStream API prefix SL_NATSAUTH_CLIENT_JS_PREFIX;
 *     writing one: its $KV.<bucket>.> subjects, as they are named.
 *
 * Provisioned files (the state directory of `sluicectl run`, or what
 * `sluicectl nats-auth DIR` writes for other deployments):
 *   DIR/<role>.nk      the role's user seed, mode 0600 (DIR mode 0700)
 *   DIR/client-<name>.nk  further users of the client role, one per program
 *                      that should have its own identity (its own apply
 *                      rate budget): sl_natsauth_client_seed()
 *   DIR/auth.conf      `accounts { SLUICE {...} CLIENTS {...} }` with every
 *                      user's public key and permissions, the exports and
 *                      imports, for the nats-server config to `include`
 * Seeds that exist are kept (rotation: delete a seed file and provision
 * again, then restart that role's processes and reload nats-server).
 */
#ifndef SLUICE_NATSAUTH_H
#define SLUICE_NATSAUTH_H

#include <stdbool.h>
#include <stddef.h>

#include <nats/nats.h>

#include "sluice/status.h"

/* The accounts of auth.conf. JetStream (every bucket) is in SLUICE's. */
#define SL_NATSAUTH_ACCOUNT "SLUICE"
#define SL_NATSAUTH_CLIENT_ACCOUNT "CLIENTS"

/* JetStream API prefix of the CLIENTS account: $JS.API.<x> of SLUICE's
 * buckets the client roles read (nats.c jsOptions.Prefix, nats.py
 * jetstream(prefix=...), nats.go jetstream.NewWithAPIPrefix). */
#define SL_NATSAUTH_CLIENT_JS_PREFIX "$JS.sluice.API"

/* A client's request on sluice.api.<x> arrives in SLUICE on this prefix
 * followed by <x> ("sluice.clients.api.apply"), with nats-server's
 * Nats-Request-Info header naming the client. */
#define SL_NATSAUTH_CLIENT_API_PREFIX "sluice.clients.api."

/* The header nats-server sets on requests crossing the account boundary
 * (JSON: "acc", and with share: true "user", the user's nkey). */
#define SL_NATSAUTH_REQUEST_INFO_HDR "Nats-Request-Info"

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
    bool client_account;   /* a user of the CLIENTS account (users' programs) */
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
 * user (dir/admin.nk, in SLUICE) allowed everything, for tests and
 * recovery; never in shipped deployments. SL_ERR_IO naming the path on
 * failure. */
sl_status sl_natsauth_provision(const char *dir, bool admin);

/* Makes dir/client-<name>.nk, a further user of the client role, unless it
 * exists (*created says which); sl_natsauth_provision() then adds it.
 * name: 1-32 of [a-z0-9-] (SL_ERR_INVALID naming it otherwise). */
sl_status sl_natsauth_client_seed(const char *dir, const char *name, bool *created);

/* Writes path, a nats-server configuration in a provisioned directory:
 * `include "auth.conf"` and then extra's content when extra is given (a
 * nats-server include cannot take an absolute path, so the file is
 * copied). SL_ERR_IO naming the file on failure. */
sl_status sl_natsauth_server_conf(const char *path, const char *extra);

/* Who sent msg, a request that reached SLUICE through the CLIENTS account's
 * import (SL_NATSAUTH_CLIENT_API_PREFIX subjects): "<account>/<user>" (the
 * user's nkey) into out, from the one Nats-Request-Info header nats-server
 * set (it replaces one of that name a client sent; a client that sends two
 * keeps one of them, so two or more values are refused, as are values
 * without "acc" and "user"). SL_ERR_INVALID naming what is wrong. Only
 * meaningful on subjects no SLUICE user may publish. */
sl_status sl_natsauth_requester(char *out, size_t n, natsMsg *msg);

#endif
