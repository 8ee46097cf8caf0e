/* sluice/metrics.h - counters, gauges and histograms, and the HTTP endpoint
 * that exposes them in the Prometheus text format (version 0.0.4).
 *
 * A registry holds metric families; a family has a type, a name, a help
 * text, up to SL_METRICS_MAX_LABELS label names and (histograms) fixed
 * bucket bounds. Each combination of label values is a series. Look a
 * series up once (that takes the family's lock) and keep the pointer:
 * updating a series is lock-free (C11 atomics), cheap enough for hot paths.
 *
 *   sl_metrics *reg;  sl_counter *msgs;  sl_metric_family *by_kind;  sl_counter *ups;
 *   sl_metrics_new(&reg);
 *   sl_metrics_counter(&msgs, reg, "sluice_messages_total", "Messages handled.");
 *   sl_metrics_family_new(&by_kind, reg, SL_METRIC_COUNTER, "sluice_resources_total",
 *                         "Resources seen.", (const char *[]){"kind"}, 1, NULL, 0);
 *   sl_metric_family_counter(&ups, by_kind, (const char *[]){"Upstream"});
 *   sl_counter_inc(msgs);
 *
 * Families, series and their pointers live as long as the registry; the
 * registry is freed with sl_metrics_free() once nothing uses it any more
 * (stop the HTTP server first).
 */
#ifndef SLUICE_METRICS_H
#define SLUICE_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sluice/status.h"

#define SL_METRICS_MAX_LABELS 4
#define SL_METRICS_MAX_BUCKETS 32

typedef enum sl_metric_type {
    SL_METRIC_COUNTER,
    SL_METRIC_GAUGE,
    SL_METRIC_HISTOGRAM,
} sl_metric_type;

typedef struct sl_metrics sl_metrics;
typedef struct sl_metric_family sl_metric_family;
/* Series handles; each is a distinct type so that a counter cannot be
 * observed as a histogram by mistake. */
typedef struct sl_counter sl_counter;
typedef struct sl_gauge sl_gauge;
typedef struct sl_histogram sl_histogram;

/* A new, empty registry. Free with sl_metrics_free(). */
sl_status sl_metrics_new(sl_metrics **out);

/* Frees the registry, its families and series. NULL is a no-op. */
void sl_metrics_free(sl_metrics *reg);

/* Registers a family. name must match [a-zA-Z_:][a-zA-Z0-9_:]*, labels
 * [a-zA-Z_][a-zA-Z0-9_]* (not starting with "__", and not "le" for
 * histograms). Histograms need 1..SL_METRICS_MAX_BUCKETS strictly increasing
 * finite bounds (the +Inf bucket is implicit); other types take none. The
 * strings and arrays are copied. Registering the same name again with the
 * same type, labels and bounds returns the existing family; with anything
 * different it is SL_ERR_EXISTS. */
sl_status sl_metrics_family_new(sl_metric_family **out, sl_metrics *reg, sl_metric_type type,
                                const char *name, const char *help, const char *const *labels,
                                size_t nlabels, const double *bounds, size_t nbounds);

/* The series of a family for these label values (one per label name, in
 * order; any UTF-8 string), created on first use with value 0. Values are
 * copied. SL_ERR_INVALID when the family has another type. */
sl_status sl_metric_family_counter(sl_counter **out, sl_metric_family *f, const char *const *values);
sl_status sl_metric_family_gauge(sl_gauge **out, sl_metric_family *f, const char *const *values);
sl_status sl_metric_family_histogram(sl_histogram **out, sl_metric_family *f,
                                     const char *const *values);

/* Shorthands for a family without labels and its one series. */
sl_status sl_metrics_counter(sl_counter **out, sl_metrics *reg, const char *name, const char *help);
sl_status sl_metrics_gauge(sl_gauge **out, sl_metrics *reg, const char *name, const char *help);
sl_status sl_metrics_histogram(sl_histogram **out, sl_metrics *reg, const char *name,
                               const char *help, const double *bounds, size_t nbounds);

/* Lock-free updates, callable from any thread. */
void sl_counter_inc(sl_counter *c);
void sl_counter_add(sl_counter *c, uint64_t n);
uint64_t sl_counter_get(const sl_counter *c);
void sl_gauge_set(sl_gauge *g, double v);
void sl_gauge_add(sl_gauge *g, double delta); /* negative to decrease */
double sl_gauge_get(const sl_gauge *g);
/* Counts v in the first bucket whose bound is >= v, and in sum and count. */
void sl_histogram_observe(sl_histogram *h, double v);

/* The registry in Prometheus text format: families in registration order,
 * series in creation order. *out is NUL-terminated, *len excludes the NUL;
 * the caller frees *out with free(). */
sl_status sl_metrics_render(char **out, size_t *len, sl_metrics *reg);

/* ---- HTTP endpoint ---------------------------------------------------- */

typedef struct sl_metrics_server sl_metrics_server;

/* Starts a thread serving HTTP/1.1 on addr:
 *   GET /metrics  200, the registry (text/plain; version=0.0.4)
 *   GET /healthz  200 "ok" while the server runs
 *   GET /readyz   200 "ready" after sl_metrics_server_set_ready(true), else 503
 *   anything else 404 (405 for methods other than GET and HEAD)
 * addr is "host:port", "[v6]:port" or ":port" (all interfaces); port 0
 * picks a free port (see sl_metrics_server_port()). One request per
 * connection; a request head over 8 KiB gets 431, a client that has not
 * sent its request within 5 s, or not read its answer within 10 s, is
 * dropped; at most 64 connections at once. reg must outlive the server. */
sl_status sl_metrics_server_start(sl_metrics_server **out, sl_metrics *reg, const char *addr);

/* The bound TCP port. */
int sl_metrics_server_port(const sl_metrics_server *s);

/* Sets what /readyz answers. Any thread. */
void sl_metrics_server_set_ready(sl_metrics_server *s, bool ready);

/* Stops the thread, closes every connection and frees the server. When it
 * returns, nothing reads the registry any more. NULL is a no-op. */
void sl_metrics_server_stop(sl_metrics_server *s);

#endif
