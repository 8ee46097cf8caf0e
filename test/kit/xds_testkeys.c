/* xds_testkeys.c - see xds_testkeys.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "sluice/xds_keys.h"
#include "xds_testkeys.h"

sl_xds_type tk_xds_type(const char *token)
{
    sl_xds_type t = SL_XDS_CLUSTER;
    assert_int_equal(sl_xds_type_from_token(&t, token), SL_OK);
    return t;
}

const char *tk_key_resource(const char *proxy, sl_xds_type t, const char *name)
{
    static char k[SL_XDS_KEY_MAX];
    assert_int_equal(sl_xds_key_resource(k, sizeof k, proxy, t, name), SL_OK);
    return k;
}

const char *tk_key_vhost(const char *proxy, const char *route, const char *vhost)
{
    static char k[SL_XDS_KEY_MAX];
    assert_int_equal(sl_xds_key_vhost(k, sizeof k, proxy, route, vhost), SL_OK);
    return k;
}

const char *tk_key_manifest(const char *proxy, sl_xds_type t, const char *id)
{
    static char k[SL_XDS_KEY_MAX];
    assert_int_equal(sl_xds_key_manifest(k, sizeof k, proxy, t, id), SL_OK);
    return k;
}

const char *tk_key_commit(const char *proxy)
{
    static char k[SL_XDS_KEY_MAX];
    assert_int_equal(sl_xds_key_commit(k, sizeof k, proxy), SL_OK);
    return k;
}
