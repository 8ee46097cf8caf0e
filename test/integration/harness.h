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
 */
#ifndef SLUICE_TEST_HARNESS_H
#define SLUICE_TEST_HARNESS_H

#include <stdint.h>

#include "sluice/nats.h"

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

/* Connects to the harness server with a short start-up deadline. */
sl_status harness_connect(sl_nats **out, const harness_nats *h);

/* Monotonic milliseconds, for deadlines in tests. */
int64_t harness_now_ms(void);

#endif
