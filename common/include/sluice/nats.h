/* sluice/nats.h - one NATS connection from standard settings.
 *
 * Settings come from defaults, then the environment, then command-line
 * flags (later wins):
 *
 *   env            flag               meaning
 *   NATS_URL       --nats-url         server URL(s), comma separated
 *   NATS_CREDS     --nats-creds       credentials file (user JWT + seed)
 *   NATS_NKEY      --nats-nkey        user nkey seed file, mode 0600 (sluice/nkey.h);
 *                                     its replies come on _INBOX_<name>.> (the
 *                                     connection name), so permissions can be per user
 *   SLUICE_NATS_AUTH_DIR --nats-auth-dir  a directory of role seeds (sluice/natsauth.h):
 *                                     without --nats-nkey, the seed of the role whose
 *                                     processes use this connection name
 *   NATS_TLS_CERT  --nats-tls-cert    client certificate (PEM)
 *   NATS_TLS_KEY   --nats-tls-key     client key (PEM)
 *   NATS_TLS_CA    --nats-tls-ca      CA bundle to verify the server (PEM)
 *                  --nats-name        connection name (default: service name)
 *                  --nats-connect-timeout  start-up deadline, e.g. 30s, 500ms, 0 (try once)
 *   SLUICE_KV_REPLICAS --kv-replicas  replicas (1..5) of the KV buckets and
 *                                     streams Sluice creates (kv.h)
 *
 * sl_nats_connect() retries (with backoff) until the start-up deadline, then
 * the connection reconnects forever with jittered exponential backoff.
 * Disconnects, reconnects and asynchronous errors are logged.
 */
#ifndef SLUICE_NATS_H
#define SLUICE_NATS_H

#include <stdbool.h>
#include <stdint.h>

#include <nats/nats.h>

#include "sluice/status.h"

#define SL_NATS_DEFAULT_URL "nats://127.0.0.1:4222"

/* --kv-replicas: a JetStream stream has at most 5 replicas. */
#define SL_KV_REPLICAS_MAX 5

typedef enum sl_nats_event {
    SL_NATS_DISCONNECTED,
    SL_NATS_RECONNECTED,
    SL_NATS_CLOSED,
} sl_nats_event;

typedef struct sl_nats sl_nats;

/* Called on a nats.c thread after the event was logged. It must return
 * quickly and must not free the connection. */
typedef void (*sl_nats_event_cb)(sl_nats *nc, sl_nats_event ev, void *ud);

/* Every string is owned by the settings (heap copies; NULL = unset) and
 * freed by sl_nats_settings_deinit(). */
typedef struct sl_nats_settings {
    char *urls;       /* default SL_NATS_DEFAULT_URL */
    char *creds_file;
    char *nkey_file;  /* --nats-nkey: a user seed; sign the server's nonce with it */
    char *auth_dir;   /* --nats-auth-dir: role seeds, <dir>/<role>.nk picked by name */
    char *tls_cert;
    char *tls_key;
    char *tls_ca;
    char *name;
    int64_t connect_timeout_ms;  /* one TCP/TLS attempt; default 2000 */
    int64_t startup_deadline_ms; /* sl_nats_connect() retries this long; default 30000, 0 = once */
    int64_t reconnect_min_ms;    /* first backoff step; default 100 */
    int64_t reconnect_max_ms;    /* backoff cap; default 2000 */
    /* --kv-replicas / SLUICE_KV_REPLICAS, 1..SL_KV_REPLICAS_MAX; 0 = not
     * set: buckets and streams are created with 1 replica and existing
     * ones are left as they are. When set, existing ones are scaled to it
     * (see sl_kv_open()). */
    int kv_replicas;
    sl_nats_event_cb on_event;   /* optional */
    void *on_event_ud;
    /* Optional: polled by sl_nats_connect() between start-up attempts (at
     * least every 100 ms); when it returns true the connect gives up with
     * SL_ERR_CLOSED (a service stopping before NATS was ever reached). */
    bool (*cancelled)(void *ud);
    void *cancelled_ud;
} sl_nats_settings;

/* Fills s with the defaults (no allocation). */
void sl_nats_settings_init(sl_nats_settings *s);

/* Frees the strings and resets s to the defaults. */
void sl_nats_settings_deinit(sl_nats_settings *s);

/* Deep-copies src into dst (dst's previous contents are not freed). On
 * error dst is left deinitialised. SL_ERR_NOMEM only. */
sl_status sl_nats_settings_copy(sl_nats_settings *dst, const sl_nats_settings *src);

/* Overrides s with the NATS_* environment variables (and
 * SLUICE_KV_REPLICAS) that are set and not empty. SL_ERR_INVALID for a bad
 * SLUICE_KV_REPLICAS (error context names it and the value; the other
 * variables are applied all the same), SL_ERR_NOMEM. */
sl_status sl_nats_settings_from_env(sl_nats_settings *s);

/* Sets one setting by its flag name without the leading "--" ("nats-url",
 * "nats-creds", ..., "kv-replicas"). SL_ERR_NOT_FOUND when name is not a NATS flag,
 * SL_ERR_INVALID for a bad value (error context names the flag). */
sl_status sl_nats_settings_set(sl_nats_settings *s, const char *name, const char *value);

/* Recognises argv[*i] as a NATS flag ("--nats-url=X" or "--nats-url X";
 * also "--kv-replicas"),
 * applies it and advances *i past what it consumed (1 or 2 arguments).
 * *matched is false (and *i unchanged) when argv[*i] is not a NATS flag.
 * SL_ERR_INVALID when the flag has no value or a bad one. For services'
 * own option loops; sl_service_args_parse() already calls it. */
sl_status sl_nats_settings_parse_arg(bool *matched, sl_nats_settings *s, int argc, char **argv,
                                     int *i);

/* Help text for the NATS flags (static string, one flag per line). */
const char *sl_nats_settings_usage(void);

/* Connects with s (copied: s may be freed afterwards), retrying until the
 * start-up deadline, and opens a JetStream context. SL_ERR_TIMEOUT when the
 * deadline passed without a connection, SL_ERR_INVALID for unusable TLS or
 * credential files, SL_ERR_NATS otherwise. On success free *out with
 * sl_nats_close(). */
sl_status sl_nats_connect(sl_nats **out, const sl_nats_settings *s);

/* Drains subscriptions and pending publishes for up to timeout_ms, then
 * closes and frees the connection. Every subscription, KV bucket, watch
 * and JetStream object made from it must be freed before. NULL is a no-op. */
void sl_nats_close(sl_nats *nc, int64_t drain_timeout_ms);

/* Gives up on NATS while stopping: logs what is still buffered and closes
 * the connection, so every call blocked on it (a KV write, a JetStream
 * request, a reconnect) returns SL_ERR_CLOSED at once and later ones fail
 * at once. nc stays valid until sl_nats_close(), which must still be
 * called. Any thread, while nc lives; idempotent. */
void sl_nats_abandon(sl_nats *nc, const char *why);

/* True once sl_nats_abandon() ran. */
bool sl_nats_abandoned(const sl_nats *nc);

/* The prefix of this connection's reply subjects: "_INBOX", or
 * "_INBOX_<name>" with --nats-nkey (what its NATS user may subscribe to).
 * Valid while nc lives. */
const char *sl_nats_inbox_prefix(const sl_nats *nc);

/* The underlying nats.c connection and JetStream context; both belong to
 * nc and stay valid until sl_nats_close(). */
natsConnection *sl_nats_conn(sl_nats *nc);
jsCtx *sl_nats_js(sl_nats *nc);

/* True while connected (not reconnecting, not closed). */
bool sl_nats_is_connected(sl_nats *nc);

/* The connection's --kv-replicas (0 when not set). */
int sl_nats_kv_replicas(const sl_nats *nc);

/* The server's max_payload in bytes (0 when unknown). */
int64_t sl_nats_max_payload(sl_nats *nc);

/* Maps a nats.c status to an sl_status and records the error context with
 * nats.c's last error text: `return sl_nats_error(s, "kv put %s", key);`.
 * NATS_TIMEOUT -> SL_ERR_TIMEOUT, NATS_NOT_FOUND -> SL_ERR_NOT_FOUND,
 * NATS_CONNECTION_CLOSED -> SL_ERR_CLOSED, NATS_NO_MEMORY -> SL_ERR_NOMEM,
 * NATS_INVALID_ARG -> SL_ERR_INVALID, others -> SL_ERR_NATS. */
sl_status sl_nats_error_(natsStatus s, const char *file, const char *func, int line,
                         const char *fmt, ...) __attribute__((format(printf, 5, 6)));
#define sl_nats_error(s, ...) sl_nats_error_((s), __FILE__, __func__, __LINE__, __VA_ARGS__)

/* Frees nats.c's global resources (threads, SSL) at process exit; waits up
 * to timeout_ms for its threads. Call once, last, after every connection
 * was closed. */
void sl_nats_shutdown(int64_t timeout_ms);

#endif
