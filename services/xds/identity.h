/* identity.h - who an xDS client is: the proxy its client certificate
 * (SPIFFE URI SAN) or its bearer token names, checked against the proxy it
 * asks for (node.metadata.role). docs/security.md, "xDS clients". */
#ifndef SLUICE_XDS_IDENTITY_H
#define SLUICE_XDS_IDENTITY_H

#include <stdbool.h>

#include <grpc/grpc.h>

#include "sluice/status.h"

typedef struct xds_identity xds_identity;

typedef struct xds_identity_opts {
    /* SPIFFE trust domain of client certificates: a URI SAN
     * spiffe://<trust_domain>/ns/<namespace>/proxy/<name> proves the proxy
     * "<namespace>~<name>". NULL: "sluice". */
    const char *trust_domain;
    bool mtls;              /* client certificates are required (--tls-client-ca) */
    const char *token_file; /* lines "<namespace>~<proxy> <token>"; NULL: no tokens */
} xds_identity_opts;

/* Reads the token file (when given). SL_ERR_IO / SL_ERR_INVALID naming the
 * file and line; tokens themselves never appear in errors or logs. */
sl_status xds_identity_new(xds_identity **out, const xds_identity_opts *o);
void xds_identity_free(xds_identity *id);

/* Whether streams must prove a proxy (mTLS or tokens configured). */
bool xds_identity_required(const xds_identity *id);

/* The proxy a new call proves, from its certificate or its
 * "authorization: Bearer <token>" metadata: a malloc'd "<ns>~<proxy>", or
 * NULL with *why set (static text) when it proves none. */
char *xds_identity_of_call(const xds_identity *id, grpc_call *call, const grpc_metadata_array *md,
                           const char **why);

#endif
