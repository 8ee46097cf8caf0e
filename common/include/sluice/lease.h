/* sluice/lease.h - one holder at a time among the replicas of a service
 * (leader election over a NATS KV bucket).
 *
 * A lease is the key <name> in the bucket SL_LEASES_BUCKET, whose values
 * live for the lease's TTL (the bucket's max age). A replica takes it with
 * a create (only when no live value is there), keeps it by updating it with
 * the revision it last wrote every TTL/3, and gives it back by deleting it.
 * When the holder dies, its value expires after at most TTL and a waiting
 * replica takes over (waiters poll every TTL/4 and watch the key, so a
 * release is taken over at once). A holder that cannot renew for a whole
 * TTL, or finds the key changed by someone else, has lost the lease.
 *
 * A value left by a process of this host that no longer runs (its pid is
 * gone, or belongs to a process that started at another time: a restart
 * after kill -9 under systemd, `sluicectl run` or in the same container)
 * is taken over at once instead of after the TTL. The value is JSON:
 * {"host","instance","pid","processStart","service"}.
 *
 *   sl_lease_opts o = {.name = "translator.sluice_xds", .ttl_ms = 10000,
 *                      .on_acquired = start, .on_lost = stop, .ud = x};
 *   sl_lease_start(&l, nc, &o);   ... callbacks run on the lease thread ...
 *   sl_lease_free(l);             (releases it when held)
 */
#ifndef SLUICE_LEASE_H
#define SLUICE_LEASE_H

#include <stdbool.h>
#include <stdint.h>

#include "sluice/nats.h"
#include "sluice/status.h"

#define SL_LEASES_BUCKET "sluice_leases"

typedef struct sl_lease sl_lease;
struct sl_service;
struct sl_service_info;
struct sl_flag;
struct sl_loop;

typedef struct sl_lease_opts {
    const char *name;    /* the key: a valid KV key, e.g. "translator.sluice_xds" */
    const char *service; /* recorded in the value (may be NULL) */
    int64_t ttl_ms;      /* > 0; the bucket's max age when this creates it (when
                          * the bucket exists with a shorter one, that counts) */
    /* Called on the lease's thread when the lease is taken, and when it is
     * lost (never after sl_lease_free() began). Keep them short: post work
     * to the service's loop. */
    void (*on_acquired)(void *ud);
    void (*on_lost)(void *ud);
    void *ud;
} sl_lease_opts;

/* Opens (or creates) the bucket and starts the thread that takes and keeps
 * the lease. The strings of o are copied. */
sl_status sl_lease_start(sl_lease **out, sl_nats *nc, const sl_lease_opts *o);

/* How a service with one writer among its replicas starts: with
 * o->ttl_ms > 0, sl_lease_start() and svc marked ready while it waits (a
 * waiting replica is healthy, so a rolling update can start the next one
 * before the holder stops), logged under comp; with 0 (one replica, no
 * lease), o->on_acquired(o->ud) at once and *out NULL. */
sl_status sl_lease_start_service(sl_lease **out, sl_nats *nc, struct sl_service *svc, const char *comp,
                                 const sl_lease_opts *o);

/* True while held and renewed within the TTL. Any thread. */
bool sl_lease_held(sl_lease *l);

/* Stops the thread and deletes the key when held (the next replica takes
 * over at once). NULL is a no-op. */
void sl_lease_free(sl_lease *l);

/* ---- the main of a service whose replicas take turns ------------------- */

/* What sl_lease_main() hands the work it starts. */
typedef struct sl_leased_ctx {
    struct sl_service *svc;
    sl_nats *nc;
    struct sl_loop *loop;
    /* Fencing: true while this replica may write (the lease held and
     * renewed within its TTL, or no lease). Any thread. */
    bool (*may_write)(void *ud);
    void *may_write_ud;
} sl_leased_ctx;

/* A service with one writer among its replicas, as sl_lease_main() runs
 * it. Pointers are the caller's and outlive the call. */
typedef struct sl_leased {
    const struct sl_service_info *info;
    const struct sl_flag *flags; /* the service's own flags */
    size_t n_flags;
    const char *comp;               /* log component */
    const char *lease_prefix;       /* the lease is "<lease_prefix>.<*lease_bucket>" */
    const char *const *lease_bucket; /* a flag's target, read once the flags are parsed */
    const int64_t *lease_ttl_ms;    /* the --lease-ttl flag's target (0: no lease; else >= 1 s) */
    const char *leader_metric, *leader_help; /* the gauge, 1 while holding the lease */
    /* After the flags are parsed: checks the table cannot make; an error
     * (with its message) is a usage error (exit 2). NULL: none. */
    sl_status (*check)(void);
    /* On the loop once the lease is held: starts the work into *work. An
     * error stops the process (exit 1). */
    sl_status (*start)(void **work, const sl_leased_ctx *ctx);
    /* Stops and frees the work, before the lease is given back. */
    void (*stop)(void *work);
} sl_leased;

/* The whole main of such a service: flags (--help, exit 2 on a usage
 * error), the service and its NATS connection, the leader gauge, the lease
 * (d->start on the loop once held; losing it stops the process, exit 1,
 * for a supervisor to restart it waiting), the loop until a signal, then
 * d->stop and the lease given back. Returns the exit code. */
int sl_lease_main(const sl_leased *d, int argc, char **argv);

#endif
