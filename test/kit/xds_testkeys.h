/* xds_testkeys.h - the keys of a proxy in the sluice_xds bucket, built by
 * sluice/xds_keys.h, for tests: each in a static buffer of its own
 * function, valid until that function's next call. A key that cannot be
 * built (or a type token that is not one) fails the running test. */
#ifndef SLUICE_XDS_TESTKEYS_H
#define SLUICE_XDS_TESTKEYS_H

#include "sluice/xds.h"

/* The type of a token ("cluster", "endpoint", ...). */
sl_xds_type tk_xds_type(const char *token);
const char *tk_key_resource(const char *proxy, sl_xds_type t, const char *name);
const char *tk_key_vhost(const char *proxy, const char *route, const char *vhost);
const char *tk_key_manifest(const char *proxy, sl_xds_type t, const char *id);
const char *tk_key_commit(const char *proxy);

#endif
