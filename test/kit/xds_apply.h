/* xds_apply.h - writes a proxy's complete revision (resources + commit) to
 * the sluice_xds bucket, the way the translator does; for tests and
 * xds-kvtool. Unchanged resources keep their KV revision.
 *
 * NAME (and a listener's ROUTE) may be escaped as in KV keys to hold ':'
 * ("listener-=3A=3A-8080").
 * SPEC:
 *   listener:NAME:ROUTE          api_listener, HCM with RDS over ADS, router
 *   badlistener:NAME:ROUTE       RDS config source unset (gRPC NACKs it)
 *   route:NAME:C1[=W1][+C2=W2]   one virtual host "*", prefix "" -> cluster(s)
 *   bigroute:NAME:N:C            N prefix routes "/r<i>/" -> cluster "c<i % C>"
 *   cluster:NAME                 EDS cluster over ADS
 *   endpoint:NAME:H:P[+H:P]      ClusterLoadAssignment, one locality
 *   secret:NAME
 */
#ifndef SLUICE_XDS_APPLY_H
#define SLUICE_XDS_APPLY_H

#include <stddef.h>
#include <stdint.h>

#include "sluice/kv.h"
#include "sluice/xds.h"

/* The packed resource of one spec (malloc'd), its type and name. */
uint8_t *fx_build(const char *spec, sl_xds_type *t, char *name, size_t *len);
/* Writes the manifest (one chunk per type) and the commit of a revision made
 * of n resources already in kv: types[i]/names[i] at KV revision revs[i]. */
sl_status fx_commit(uint64_t *commit_rev, sl_kv *kv, const char *proxy, int n, const sl_xds_type *types,
                    const char *const *names, const uint64_t *revs);
/* Writes every spec, then the commit naming exactly them. */
sl_status fx_apply(uint64_t *commit_rev, sl_kv *kv, const char *proxy, int n, char *const *specs);
/* fx_apply on the sluice_xds bucket of nc, opened (created with default
 * settings when missing) and closed again: a test's setup. */
sl_status fx_apply_nats(sl_nats *nc, const char *proxy, int n, char *const *specs);

#endif
