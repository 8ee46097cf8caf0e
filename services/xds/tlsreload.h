/* tlsreload.h - sluice-xds's TLS files, read again when they change: new
 * handshakes get the new certificate, streams already open keep theirs. */
#ifndef SLUICE_XDS_TLSRELOAD_H
#define SLUICE_XDS_TLSRELOAD_H

#include <grpc/grpc_security.h>

#include "sluice/status.h"

typedef struct xds_tls xds_tls;

/* Reads cert and key (PEM) and, when ca is not NULL, the client CA (mutual
 * TLS: client certificates required and verified). Paths are copied.
 * SL_ERR_IO naming the file, SL_ERR_INVALID for unusable PEM. */
sl_status xds_tls_new(xds_tls **out, const char *cert, const char *key, const char *ca);

/* Server credentials that ask t for the certificate at each handshake; t
 * checks the files' modification times at most once a second and, when
 * one changed and all three read and load, serves the new ones (a file
 * that fails to load keeps the old ones, logged). t must outlive the
 * credentials and the server using them. NULL when gRPC refuses. */
grpc_server_credentials *xds_tls_credentials(xds_tls *t);

/* Number of times new files were taken up (for tests and logs). */
unsigned xds_tls_reloads(const xds_tls *t);

void xds_tls_free(xds_tls *t);

#endif
