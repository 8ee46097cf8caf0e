/* sluice/service.h - what every Sluice process does the same way:
 * flags (one table, sluice/flags.h), logging set-up, signals, a dispatcher loop, readiness,
 * metrics endpoint, the NATS connection, graceful drain and exit codes.
 *
 * A service's main():
 *
 *   static const sl_service_info info = {"sluice-translator", SLUICE_VERSION,
 *                                        "Translates config into Envoy resources.", NULL};
 *   static int64_t debounce_ms;
 *   static const sl_flag own[] = {{.name = "debounce", .kind = SL_FLAG_DURATION,
 *                                  .target = &debounce_ms, .def = "10ms", .help = "..."}};
 *   int main(int argc, char **argv) {
 *       sl_service_args args;  sl_service *svc = NULL;  sl_nats *nc;  sl_loop *loop = NULL;
 *       int code = SL_EXIT_FAILURE;
 *       sl_service_args_init(&args);
 *       if (sl_service_args_parse(&args, &info, own, 1, argc, argv) != SL_OK) {
 *           code = sl_service_usage_error(&info);
 *           goto out;
 *       }
 *       if (args.exit_now) { code = args.exit_code; goto out; }
 *       if (sl_service_new(&svc, &info, &args) != SL_OK || sl_loop_new(&loop) != SL_OK ||
 *           sl_service_connect(&nc, svc) != SL_OK)
 *           goto out;
 *       ... start KV watches delivering on loop ...
 *       sl_service_set_ready(svc, true);
 *       code = sl_service_run(svc, loop);   // until SIGINT/SIGTERM or request_stop
 *       ... stop watches (no callbacks after that) ...
 *   out:
 *       sl_loop_free(loop);
 *       sl_service_free(svc);              // drains NATS within --drain-timeout
 *       sl_service_args_deinit(&args);
 *       return code;
 *   }
 *
 * Exit codes (documented in docs/common.md):
 *   0  SL_EXIT_OK       clean stop (SIGINT/SIGTERM, or sl_service_request_stop(svc, 0))
 *   1  SL_EXIT_FAILURE  runtime error: could not start, lost something it cannot
 *                       live without, or the drain missed its deadline
 *   2  SL_EXIT_USAGE    bad command line or configuration
 */
#ifndef SLUICE_SERVICE_H
#define SLUICE_SERVICE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "sluice/flags.h"
#include "sluice/log.h"
#include "sluice/metrics.h"
#include "sluice/nats.h"
#include "sluice/status.h"

enum {
    SL_EXIT_OK = 0,
    SL_EXIT_FAILURE = 1,
    SL_EXIT_USAGE = 2,
};

/* Parses a duration: a non-negative integer with a unit, "ms", "s", "m" or
 * "h" ("500ms", "30s", "2m"), or "0". */
sl_status sl_parse_duration_ms(int64_t *out, const char *s);

/* ---- loop: callbacks serialised on one thread ------------------------ */

/* A loop runs posted tasks one after another on the thread that calls
 * sl_loop_run(). Watches and subscriptions deliver to a loop, so a service
 * handles all of its events on one thread and its state needs no locks. */
typedef struct sl_loop sl_loop;
typedef void (*sl_loop_fn)(void *ud);

sl_status sl_loop_new(sl_loop **out);

/* Frees the loop; queued tasks are dropped (their drop function runs).
 * The loop must not be running. NULL is a no-op. */
void sl_loop_free(sl_loop *l);

/* Queues run(ud) (any thread, never blocks). owner tags the task for
 * sl_loop_cancel() and may be NULL. If the task never runs (cancelled, or
 * the loop is freed), drop(ud) runs instead, when not NULL; exactly one of
 * the two is called. SL_ERR_NOMEM only (and then neither is called). */
sl_status sl_loop_post(sl_loop *l, const void *owner, sl_loop_fn run, sl_loop_fn drop, void *ud);

/* Drops every queued task of owner (calling drop) and, when a task of
 * owner is running on another thread, waits until it returns. Called from
 * a task on the loop itself, it does not wait for that task. After it
 * returns, no task of owner runs unless posted again. */
void sl_loop_cancel(sl_loop *l, const void *owner);

/* Runs tasks on the calling thread until sl_loop_stop(). Queued tasks that
 * were not run stay queued. SL_ERR_INVALID if the loop already runs. */
sl_status sl_loop_run(sl_loop *l);

/* Makes sl_loop_run() return after the current task. Any thread. */
void sl_loop_stop(sl_loop *l);

/* True when called from the thread running the loop. */
bool sl_loop_is_current(sl_loop *l);

/* A ticker: fn(ud) posted to a loop every interval_ms, at most one tick
 * queued at a time (a slow loop skips ticks rather than piling them up). */
typedef struct sl_ticker sl_ticker;

/* Starts the ticker's thread. SL_ERR_INVALID for interval_ms <= 0,
 * SL_ERR_INTERNAL when the thread cannot start. */
sl_status sl_ticker_start(sl_ticker **out, sl_loop *l, int64_t interval_ms, sl_loop_fn fn, void *ud);

/* Stops the thread and drops a tick queued; no fn runs after it returns
 * (not from the loop's thread while a tick of it runs). NULL is a no-op. */
void sl_ticker_free(sl_ticker *t);

/* ---- flags ------------------------------------------------------------- */

typedef struct sl_service_info {
    const char *name;    /* "sluice-translator": logs' svc=, NATS connection name */
    const char *version; /* printed by --version */
    const char *summary; /* one line for --help */
    const char *usage;   /* more --help text after the flags (notes), or NULL */
} sl_service_info;

/* The NATS flags as sl_flag entries (sluice/flags.h), for the common flags
 * and for programs that are not services (sluicectl). String values belong
 * to the sl_flags that parsed them. */
typedef struct sl_nats_flags {
    const char *url, *creds, *nkey, *auth_dir, *tls_cert, *tls_key, *tls_ca, *name; /* NULL: not given */
    int64_t connect_timeout_ms; /* -1: not given */
    int kv_replicas;            /* 0: not given */
} sl_nats_flags;

#define SL_NATS_FLAGS_N 10

/* Fills t with the SL_NATS_FLAGS_N entries --nats-url (NATS_URL),
 * --nats-creds (NATS_CREDS), --nats-nkey (NATS_NKEY), --nats-auth-dir
 * (SLUICE_NATS_AUTH_DIR), --nats-tls-cert/-key/-ca (NATS_TLS_*),
 * --nats-name, --nats-connect-timeout (default connect_timeout, e.g.
 * "30s"; NULL: none) and --kv-replicas (SLUICE_KV_REPLICAS, 1..5), writing
 * into v, which is reset to "nothing given". */
void sl_nats_flags_table(sl_flag t[SL_NATS_FLAGS_N], sl_nats_flags *v, const char *connect_timeout);

/* Copies what v holds (given or defaulted) into s. SL_ERR_NOMEM only. */
sl_status sl_nats_flags_apply(sl_nats_settings *s, const sl_nats_flags *v);

#define SL_SERVICE_COMMON_FLAGS (6 + SL_NATS_FLAGS_N)

/* --drain-timeout's default, and the margin past it at which a stop that
 * is stuck anyway ends the process with SL_EXIT_FAILURE. */
#define SL_SERVICE_DRAIN_DEFAULT "5s"
#define SL_SERVICE_DRAIN_DEFAULT_MS 5000
#define SL_SERVICE_EXIT_MARGIN_MS 2000

/* Owned by the caller; the public fields are the common flags' values
 * after sl_service_args_parse(). metrics_addr is a heap copy and nats owns
 * its strings; everything is freed by sl_service_args_deinit(). */
typedef struct sl_service_args {
    sl_log_level log_level; /* --log-level / SLUICE_LOG_LEVEL; applies when log_level_set */
    bool log_level_set;
    char *metrics_addr;       /* --metrics-addr / SLUICE_METRICS_ADDR; NULL = no endpoint */
    int64_t drain_timeout_ms; /* --drain-timeout; default SL_SERVICE_DRAIN_DEFAULT */
    sl_nats_settings nats;    /* --nats-*, --kv-replicas and their variables */
    const char *config_file;  /* the --config file read, or NULL */
    bool exit_now;            /* --help or --version was handled */
    int exit_code;            /* the code to exit with when exit_now */

    /* private: the parser and the common flags' table and raw values */
    sl_flags flags_;
    sl_flag common_[SL_SERVICE_COMMON_FLAGS];
    sl_nats_flags nats_;
    const char *log_level_, *metrics_addr_;
    bool help_, version_;
    char config_env_[128];
    char own_title_[128];
    const sl_service_info *info_;
} sl_service_args;

/* Defaults only (no environment is read before sl_service_args_parse()). */
void sl_service_args_init(sl_service_args *a);

/* Frees the strings: a's, and every string value parse set in own's
 * targets. */
void sl_service_args_deinit(sl_service_args *a);

/* Parses a service's flags: its own table (own, n_own; NULL, 0 for none)
 * and the common flags: --config FILE (env SLUICE_<NAME>_CONFIG, from
 * info->name: sluice-translator reads SLUICE_TRANSLATOR_CONFIG),
 * --log-level, --metrics-addr, --drain-timeout, --nats-*, --kv-replicas,
 * -h/--help, --version. Each flag comes from the command line ("--flag
 * value" or "--flag=value"), else its environment variable, else the
 * config file, else its default (sluice/flags.h). Every argument must be a
 * flag. own's targets are set; its string values stay valid until
 * sl_service_args_deinit(). --help (generated from both tables) and
 * --version print to stdout and set exit_now. SL_ERR_INVALID (a usage
 * error: sl_error_msg() names the flag and the problem), SL_ERR_IO or
 * SL_ERR_PARSE for the config file; exit with sl_service_usage_error().
 * Once per a. */
sl_status sl_service_args_parse(sl_service_args *a, const sl_service_info *info, const sl_flag *own,
                                size_t n_own, int argc, char **argv);

/* Prints --help text to f: the summary, the service's and the common
 * flags, info->usage. After sl_service_args_parse(). */
void sl_service_print_help(FILE *f, const sl_service_args *a);

/* Prints "<name>: <sl_error_msg()>" and a hint to stderr; returns
 * SL_EXIT_USAGE. */
int sl_service_usage_error(const sl_service_info *info);

/* ---- the service ------------------------------------------------------- */

typedef struct sl_service sl_service;

/* Liveness: where services announce themselves (see sl_service_connect()). */
#define SL_SERVICES_BUCKET "sluice_services"
#define SL_SERVICE_HEARTBEAT_MS 5000

/* Called on SIGHUP, on the loop given to sl_service_run() (or on the
 * service's signal thread when there is none). */
typedef void (*sl_service_reload_fn)(sl_service *svc, void *ud);

/* Sets up logging (svc=info->name, SLUICE_LOG_LEVEL then --log-level),
 * installs the SIGINT/SIGTERM/SIGHUP handlers (SIGPIPE is ignored), and
 * starts the metrics endpoint when args->metrics_addr is set. info and
 * args are copied. One service per process: SL_ERR_EXISTS otherwise. */
sl_status sl_service_new(sl_service **out, const sl_service_info *info, const sl_service_args *args);

/* Closes the NATS connection (draining it within what is left of the drain
 * timeout; at once when NATS is unreachable), stops
 * the metrics endpoint, frees the registry and restores the signal
 * handlers. Everything made from the connection must be freed before.
 * NULL is a no-op. */
void sl_service_free(sl_service *svc);

/* Connects to NATS with the service's settings (connection name defaults
 * to the service name). The connection belongs to the service: valid until
 * sl_service_free(). Calling it again returns the same connection.
 *
 * The first successful connect also starts the service's heartbeat: a
 * thread that puts key "<service>.<pid>-<random>" in the KV bucket
 * SL_SERVICES_BUCKET (created if missing, TTL 3 intervals) every
 * SL_SERVICE_HEARTBEAT_MS (SLUICE_HEARTBEAT_INTERVAL overrides, e.g.
 * "1s") and at once when readiness changes. The value is JSON:
 * {"service","instance","version","pid","host","startedAt","updatedAt",
 * "ready","metricsPort","intervalMs"}. sl_service_free() deletes the key;
 * after a crash it expires with its TTL. Failures are logged, never fatal. */
sl_status sl_service_connect(sl_nats **out, sl_service *svc);

/* The service's metrics registry (always present; served when
 * --metrics-addr is set). Valid until sl_service_free(). */
sl_metrics *sl_service_metrics(sl_service *svc);

/* The metrics endpoint's port, or 0 when there is none. */
int sl_service_metrics_port(sl_service *svc);

/* Marks the service ready (/readyz answers 200) or not. Any thread. */
void sl_service_set_ready(sl_service *svc, bool ready);
bool sl_service_is_ready(sl_service *svc);

/* Sets the SIGHUP hook (NULL removes it). */
void sl_service_on_reload(sl_service *svc, sl_service_reload_fn fn, void *ud);

/* Asks the service to stop with this exit code (the first request's code
 * wins), and starts the drain deadline (see sl_service_wait_stop()). Any
 * thread, not from a signal handler. */
void sl_service_request_stop(sl_service *svc, int exit_code);

/* True once a stop was requested (signal or sl_service_request_stop()). */
bool sl_service_stopping(sl_service *svc);

/* Blocks until a stop is requested, then returns the exit code. From the
 * request on the drain deadline runs (bounded stop, docs/operations.md):
 * - the NATS connection gets half of --drain-timeout to be reachable; if it
 *   is not, or in any case shortly before the deadline, it is abandoned
 *   (sl_nats_abandon(): logged with what was still buffered), so every
 *   call blocked on NATS returns and the stop finishes in order;
 * - if the process has not finished sl_service_free() within
 *   --drain-timeout plus SL_SERVICE_EXIT_MARGIN_MS, or a second
 *   SIGINT/SIGTERM arrives, it logs and exits with SL_EXIT_FAILURE.
 * sl_service_connect() gives up (SL_ERR_CLOSED) once a stop is requested. */
int sl_service_wait_stop(sl_service *svc);

/* Runs loop on the calling thread until a stop is requested (SIGHUP hooks
 * run on it too), then returns the exit code as sl_service_wait_stop()
 * does. */
int sl_service_run(sl_service *svc, sl_loop *loop);

/* The exit code so far (SL_EXIT_OK until a stop asks for another). */
int sl_service_exit_code(sl_service *svc);

#endif
