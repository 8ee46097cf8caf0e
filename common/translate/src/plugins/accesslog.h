/* accesslog.h - Gloo's accessLoggingService, for plugins/listener.c. */
#ifndef SLUICE_TR_ACCESSLOG_H
#define SLUICE_TR_ACCESSLOG_H

#include "../plugin.h"

/* The access logs of als (at p; Gloo's als plugin: file and gRPC sinks,
 * each with its filter; may be NULL) appended to the repeated field (v, n)
 * of an HttpConnectionManager, a tcp_proxy or a Listener; what is unusable
 * is reported and left out. */
void tr_access_logs(tr_ctx *tx, const Sluice__V1__AccessLoggingService *als, const char *p, void ***v, size_t *n);

#endif
