/* api_limits.h - what one request and one client may ask of the apply API
 * (issue 12, item 4; docs/config-watcher.md "Limits").
 *
 * Every request of sluice.api.apply and sluice.api.delete passes, in order:
 *
 *   on nats.c's delivery thread, before it is queued for the loop
 *     body size      --api-max-body bytes;
 *     queue          at most --api-max-pending requests (apply and delete
 *                    together) wait for the loop; more are answered
 *                    "busy: N requests pending, retry" at once;
 *     identity       a client's request names its sender (below);
 *     rate           a token bucket per client (--api-rate per second,
 *                    --api-burst at once);
 *   on the loop, before anything is decoded into resources
 *     documents      --api-max-documents per request (YAML/JSON documents,
 *                    or the resources of a protobuf request);
 *     nodes          --api-max-nodes YAML/JSON nodes per request, aliases
 *                    counted as what they stand for.
 *
 * A refused request gets the API's usual error reply (ApplyResponse or
 * DeleteResponse, accepted false, error naming the limit and its flag) and
 * counts in sluice_config_watcher_api_refused_total{limit=...}. A limit of
 * 0 is off.
 *
 * The client of a request is who nats-server says sent it, never what the
 * request says. Users' programs are in the CLIENTS account
 * (sluice/natsauth.h): their sluice.api.apply and sluice.api.delete arrive
 * on SL_NATSAUTH_CLIENT_API_PREFIX "apply" / "delete" with nats-server's
 * Nats-Request-Info header, and the client is "<account>/<user nkey>" (a
 * request without exactly one such header naming both is refused,
 * limit "identity"). Headers a client sets (Sluice-Client, its own
 * Nats-Request-Info, its reply inbox) play no part. Requests on
 * sluice.api.apply and sluice.api.delete come from Sluice's own account,
 * where only operators (the sluicectl role) may send them: they share one
 * bucket.
 */
#ifndef SLUICE_CW_LIMITS_H
#define SLUICE_CW_LIMITS_H

#include "sluice/envelope.h"
#include "sluice/metrics.h"
#include "sluice/status.h"
#include "watcher.h"

/* Clients tracked at once; more share the bucket of requests without one. */
#define CW_LIMITS_CLIENTS 256

/* The flags' values (0: that limit is off). */
typedef struct cw_limits_config {
    int max_body;      /* bytes of a request body */
    int max_documents; /* documents (resources) per request */
    int max_nodes;     /* YAML/JSON nodes per request */
    int max_pending;   /* requests waiting for the loop */
    int rate;          /* requests per second per client */
    int burst;         /* requests at once per client */
} cw_limits_config;

typedef struct cw_limits cw_limits;

/* The limits of w's apply API, with their metric in m. Free with
 * cw_limits_free() after the subscriptions. */
sl_status cw_limits_new(cw_limits **out, const cw_limits_config *c, cw *w, sl_metrics *m);
void cw_limits_free(cw_limits *l);

/* The subscriptions of cw_limits_subscribe(). */
#define CW_LIMITS_SUBS 4

/* Subscribes sluice.api.apply and sluice.api.delete, and the clients'
 * SL_NATSAUTH_CLIENT_API_PREFIX "apply" and "delete" (queue group queue),
 * to w's handlers behind the limits; on error none is subscribed. Free the
 * subscriptions with sl_subscription_free() before l. */
sl_status cw_limits_subscribe(cw_limits *l, sl_subscription *subs[CW_LIMITS_SUBS], const char *queue);

#endif
