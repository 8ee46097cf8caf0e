/* harness.h - a real nats-server for one integration test process.
 *
 *   harness_nats *h;
 *   assert_int_equal(harness_nats_start(&h), 0);
 *   ... connect to harness_nats_url(h) ...
 *   harness_nats_restart(h);        // same port and store: state survives
 *   harness_nats_free(h);           // stop, remove the temp dir
 *
 * The server runs `nats-server -js -a 127.0.0.1 -p <free port> -sd <tmp>/js`
 * from $SLUICE_NATS_SERVER (else nats-server on PATH), with `-c
 * $SLUICE_NATS_CONFIG` when that is set (e.g. max_payload), logging to
 * <tmp>/nats.log. It is killed if the test process dies
 * (PR_SET_PDEATHSIG; start it from the main thread, which outlives it).
 *
 * A cluster of n such servers (each with its own port, store and temp dir,
 * plus --server_name sluice-test-<i>, --cluster_name sluice-test, its own
 * cluster port and --routes to all):
 *
 *   harness_cluster *c;
 *   harness_cluster_start(&c, 3);   // waits for the JetStream meta leader
 *   ... NATS_URL = harness_cluster_urls(c) ...
 *   harness_nats_kill(harness_cluster_node(c, 1));        // kill -9
 *   harness_nats_start_again(harness_cluster_node(c, 1)); // same ports, store
 *   harness_cluster_free(c);
 */
#ifndef SLUICE_TEST_HARNESS_H
#define SLUICE_TEST_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include <protobuf-c/protobuf-c.h>

#include "sluice/codec.h"
#include "sluice/kv.h"
#include "sluice/nats.h"
#include "sluice/v1/events.pb-c.h"

typedef struct harness_nats harness_nats;

/* Starts a server on a free loopback port with a fresh store, and waits
 * until it accepts clients. 0 on success, -1 on failure (printed). */
int harness_nats_start(harness_nats **out);

/* Stops the server (SIGTERM, then SIGKILL after 5 s), removes its temp
 * dir and frees h. NULL is a no-op. */
void harness_nats_free(harness_nats *h);

/* Stops the server, keeping port and store. 0 on success. */
int harness_nats_stop(harness_nats *h);

/* Starts it again on the same port and store; waits until it accepts
 * clients. 0 on success. */
int harness_nats_start_again(harness_nats *h);

/* Stop, then start again. 0 on success. */
int harness_nats_restart(harness_nats *h);

/* "nats://127.0.0.1:<port>" (valid while h lives). */
const char *harness_nats_url(const harness_nats *h);
int harness_nats_port(const harness_nats *h);

/* The server's temp dir (valid while h lives). */
const char *harness_nats_dir(const harness_nats *h);

/* Kills the server with SIGKILL (no clean shutdown), keeping port and
 * store. 0 on success. */
int harness_nats_kill(harness_nats *h);

/* A cluster node's --server_name ("" for a single server). */
const char *harness_nats_server_name(const harness_nats *h);

#define HARNESS_CLUSTER_MAX 5

typedef struct harness_cluster harness_cluster;

/* Starts n (1..HARNESS_CLUSTER_MAX) clustered servers with JetStream on
 * free loopback ports and waits until a stream with n replicas can be
 * created (meta leader elected, every server known). 0 or -1 (printed). */
int harness_cluster_start(harness_cluster **out, int n);

/* Stops every server, removes their temp dirs, frees c. NULL is a no-op. */
void harness_cluster_free(harness_cluster *c);

/* Waits until the running servers can create a stream with one replica
 * per running server. 0, or -1 after timeout_ms. */
int harness_cluster_wait_js(harness_cluster *c, int64_t timeout_ms);

/* Every server's URL, comma separated, for NATS_URL (valid while c lives). */
const char *harness_cluster_urls(const harness_cluster *c);

/* Node i (owned by c; use the harness_nats_* calls on it), or NULL. */
harness_nats *harness_cluster_node(const harness_cluster *c, int i);

/* The index of the node with this --server_name, or -1. */
int harness_cluster_find(const harness_cluster *c, const char *server_name);

/* Authentication is on, as in the shipped deployments (unless the
 * environment has SLUICE_TEST_NATS_AUTH=0): the first server started
 * provisions a directory of role seeds and auth.conf (sluice/natsauth.h,
 * with an "admin" user allowed everything) and exports it as
 * SLUICE_NATS_AUTH_DIR, so every service a test starts connects with its
 * own role's least privilege, and the test itself as admin. The directory
 * (or NULL when auth is off) lives until the process exits. */
const char *harness_auth_dir(void);

/* Sets url and the test's own credentials (admin) in s. */
sl_status harness_settings(sl_nats_settings *s, const char *url);

/* Connects to the harness server with a short start-up deadline, as admin. */
sl_status harness_connect(sl_nats **out, const harness_nats *h);

/* A test's setup: starts a server (*srv) and connects to it (*nc, as
 * harness_connect). 0, or -1 (printed). */
int harness_up(harness_nats **srv, sl_nats **nc);

/* Undoes harness_up: closes nc (NULL: none), stops and frees srv, and shuts
 * the NATS library down. */
void harness_down(harness_nats *srv, sl_nats *nc);

/* Starts $SLUICE_BINARY_DIR/services/xds/sluice-xds (else build/...) on h
 * with --nats-url, --listen 127.0.0.1:0, --metrics-addr 127.0.0.1:0 and
 * args (NULL terminated; may be NULL), and reads the "listening on port P
 * metrics port M" line it prints. The pid (the process dies with the test),
 * or -1 (printed): check it before kill(), since kill(-1, ...) as root
 * signals every process of the machine. port and metrics_port may be NULL. */
pid_t harness_start_xds(const harness_nats *h, const char *const *args, int *port, int *metrics_port);

/* Writes $SLUICE_BINARY_DIR/rel (else build/rel) to buf: a program of the
 * build tree, e.g. "services/reporter/sluice-reporter". */
void harness_binary(char *buf, size_t cap, const char *rel);

/* Starts argv[0] (looked up on PATH when it has no '/') with argv (NULL terminated), its stdout and stderr
 * appended to log (inherited when log is NULL); the child is killed if the
 * test process dies. The pid, or -1: check it before kill(). */
pid_t harness_spawn(const char *const *argv, const char *log);

/* Starts argv[0] as harness_spawn does, with env ("K=V", NULL terminated;
 * may be NULL) added to its environment and its stdout on a pipe: *out
 * reads it (close it with fclose; NULL on failure). The pid, or -1. */
pid_t harness_spawn_piped(const char *const *argv, const char *const *env, FILE **out);

/* When $SLUICE_TEST_SHOW_LOGS is set, copies the file at path to stderr
 * (a service's log, for a failing test). */
void harness_show_log(const char *path);

/* Whether a line of the file at path contains needle (false when the file
 * cannot be read). */
bool harness_log_has(const char *path, const char *needle);

/* Unless $SLUICE_KEEP_TEST_DIR is set, removes dir and everything in it
 * (a test's temp dir, in its teardown). 0, or -1. */
int harness_remove_test_dir(const char *dir);

/* Starts dnsmasq (/usr/sbin/dnsmasq, else on PATH) in the foreground on
 * 127.0.0.1:port (UDP and TCP) as the current user, with no configuration
 * but the hosts file hosts_path and args (NULL terminated; may be NULL),
 * its output appended to log, and waits up to 10 s until it answers on
 * TCP. The pid, or -1 (stopped again when it did not answer): check it
 * before kill(). */
pid_t harness_start_dnsmasq(int port, const char *hosts_path, const char *const *args, const char *log);

/* A loopback TCP port the kernel just handed out, or -1. */
int harness_free_port(void);

/* A loopback port free for both UDP and TCP (a DNS server's), or -1. */
int harness_free_port_both(void);

/* The HTTP status code of GET path on 127.0.0.1:port, or -1 when the port
 * does not answer; body (when not NULL) gets the response, cut at cap. */
int harness_http_get(int port, const char *path, char *body, size_t cap);

/* An HTTP/1.1 request without a body to 127.0.0.1:port: the status code,
 * or -1 when the port does not answer; the response (status line, headers
 * and body) in buf, cut at n. */
int harness_http(int port, const char *method, const char *path, char *buf, size_t n);

/* Starts etcd (Debian's etcd-server) as a one-member cluster on loopback:
 * clients on client_port, peers on peer_port, its data in data_dir (a
 * restart on the same dir keeps keys and revisions), output appended to
 * log, and waits up to 20 s until it accepts TCP. The pid, or -1 (stopped
 * again when it did not come up): check it before kill(). */
pid_t harness_start_etcd(int client_port, int peer_port, const char *data_dir, const char *log);

/* Waits up to ms until GET path on 127.0.0.1:port answers 200 (a
 * service's /readyz, a test server's document): 0, or -1. */
int harness_wait_http(int port, const char *path, int64_t ms);

/* Runs cmd with /bin/sh, its standard output into out (cut at cap bytes,
 * NUL-terminated; the rest is read and dropped).
 * The exit status as pclose() gives it, or -1 when cmd could not start. */
int harness_run_output(const char *cmd, char *out, size_t cap);

/* Waits up to ms for 127.0.0.1:port to accept TCP connections: 0, or -1. */
int harness_wait_tcp(int port, int64_t ms);

/* Packs m and puts it at key of kv. */
sl_status harness_kv_put_pb(sl_kv *kv, const char *key, const ProtobufCMessage *m);

/* The next Report on sub about the resource named name within ms (others
 * are skipped), or NULL. Free it with sluice__v1__report__free_unpacked(). */
Sluice__V1__Report *harness_next_report(natsSubscription *sub, const char *name, int64_t ms);

/* The value at key of kv decoded as desc (free it with
 * protobuf_c_message_free_unpacked), or NULL when there is none or it does
 * not decode. */
ProtobufCMessage *harness_kv_get_pb(sl_kv *kv, const char *key, const ProtobufCMessageDescriptor *desc);

/* harness_kv_get_pb(), and the value's revision in *rev (may be NULL). */
ProtobufCMessage *harness_kv_get_pb_rev(sl_kv *kv, const char *key, const ProtobufCMessageDescriptor *desc,
                                        uint64_t *rev);

/* Decodes yaml as desc (with o; NULL: the defaults), packs it and puts it
 * at key of kv. */
sl_status harness_kv_put_yaml(sl_kv *kv, const char *key, const ProtobufCMessageDescriptor *desc, const char *yaml,
                              const sl_codec_options *o);

/* Sends sig to pid and waits for it to end: its wait status, or -1 without
 * signalling anything when pid <= 0 (a failed start; kill(-1, ...) as root
 * would signal every process of the machine) or the wait fails. */
int harness_stop(pid_t pid, int sig);

/* harness_stop(*pid, sig), then *pid = -1 (forgotten): the wait status, 0
 * when nothing ran. */
int harness_stop_pid(pid_t *pid, int sig);

/* Monotonic milliseconds, for deadlines in tests. */
int64_t harness_now_ms(void);

/* Fetches http://127.0.0.1:<metrics_port>/metrics and sets *sum to the sum
 * of every series of the metric name (0 when there is none). 0, or -1 when
 * the endpoint could not be reached. */
int harness_metric_sum(int metrics_port, const char *name, double *sum);

/* The value of the first series of metric name ("name value" or
 * "name{...} value") at http://127.0.0.1:<metrics_port>/metrics, or -1 when
 * there is none or the endpoint does not answer. */
double harness_metric(int metrics_port, const char *name);

/* The resident set size of process pid in kB (VmRSS of /proc/<pid>/status),
 * or -1 when it cannot be read. */
long harness_rss_kb(pid_t pid);

/* The CPU seconds (user + system) process pid used so far, or -1 when
 * /proc/<pid>/stat cannot be read. */
double harness_cpu_seconds(pid_t pid);

/* The peak resident set size of process pid in kB (VmHWM), or -1. */
long harness_peak_rss_kb(pid_t pid);

/* Writes text as <dir>/nats.conf and sets SLUICE_NATS_CONFIG to it, for the
 * servers started after (e.g. "max_payload: 8MB\n" as Sluice ships it). 0, or -1. */
int harness_nats_config(const char *dir, const char *text);

/* A test's temp dir /tmp/sluice-<name>-XXXXXX into dir, and the log its
 * processes share, <dir>/processes.log, into log (both caller storage). 0,
 * or -1. */
int harness_test_dir(char *dir, size_t cap, const char *name, char *log, size_t log_cap);

/* Opens (creating it when missing, with the defaults) the KV bucket named
 * bucket into *out. */
sl_status harness_open_kv(sl_kv **out, sl_nats *nc, const char *bucket);

/* Destroys the n subscriptions of subs that are not NULL, and NULLs them. */
void harness_subs_free(natsSubscription **subs, size_t n);

/* A benchmark's start: SIGPIPE ignored, a fresh directory
 * /tmp/sluice-bench-<name>-XXXXXX (mode 0755) in dir, and its nats.conf with
 * the limits Sluice ships (max_payload 8MB, max_pending 64MB) for the servers
 * started after. 0, or -1 (printed). */
int harness_bench_setup(char *dir, size_t cap, const char *name);

#endif
