/* xds_client.h - a small synchronous xDS protocol client on gRPC core, for
 * the integration tests: open a stream on any discovery method, send
 * (Delta)DiscoveryRequests, receive responses with a timeout, read the
 * final status. One thread. */
#ifndef SLUICE_XDS_CLIENT_H
#define SLUICE_XDS_CLIENT_H

#include <grpc/grpc.h>
#include <stddef.h>
#include <stdint.h>

typedef struct xc xc;

/* Starts the batch every xDS stream opens with: its initial metadata sent,
 * the server's received into md; tag completes it. */
grpc_call_error xc_start_metadata(grpc_call *call, grpc_metadata_array *md, void *tag);

/* Opens a stream on method ("/envoy.service.discovery.v3.Aggregated...")
 * of 127.0.0.1:port. NULL on failure. */
xc *xc_open(int port, const char *method);
/* Sends raw message bytes. 0 on success. */
int xc_send(xc *c, const void *data, size_t len);
/* Receives one message (malloc'd, *len set): NULL on timeout (*ended 0) or
 * when the stream ended (*ended 1). */
uint8_t *xc_recv(xc *c, int timeout_ms, size_t *len, int *ended);
/* Half-closes and returns the final status (details copied to msg). */
grpc_status_code xc_status(xc *c, char *msg, size_t cap, int timeout_ms);
void xc_close(xc *c);

/* Sends a DiscoveryRequest for type_url naming names (n of them; 0: a
 * wildcard), acknowledging nonce (NULL: none), from a node of id node_id
 * whose metadata role is role. 0 on success. */
int xc_request(xc *c, const char *node_id, const char *role, const char *type_url, const char *nonce, size_t n,
               char **names);

/* Opens a stream on method of 127.0.0.1:port, sends one DiscoveryRequest
 * for type_url and no names, and waits up to timeout_ms for the first
 * response: its bytes (malloc'd, *len set), or NULL. Closes the stream. */
uint8_t *xc_ask(int port, const char *method, const char *type_url, int timeout_ms, size_t *len);

#endif
