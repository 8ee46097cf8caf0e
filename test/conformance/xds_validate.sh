#!/bin/sh
# Every resource shape the xDS tests serve passes Envoy's own validation
# rules (go-control-plane ValidateAll); the deliberately bad listener fails.
# usage: xds_validate.sh <xds-kvtool> <xdsvalidate>
set -eu
kvtool=$1
validate=$2
"$kvtool" dump listener:echo:echo-routes listener:listener-=3A=3A-8080:listener-=3A=3A-8080-routes \
    route:echo-routes:c-alpha route:echo-routes-w:c-alpha=1+c-beta=3 \
    cluster:c-alpha cluster:c-beta endpoint:c-alpha:127.0.0.1:5001 \
    endpoint:c-beta:127.0.0.1:5002+127.0.0.1:5003 secret:s1 | "$validate"
if "$kvtool" dump badlistener:echo:echo-routes | "$validate" 2>/dev/null; then
    echo "FAIL: the bad listener passed validation" >&2
    exit 1
fi
echo "ok: served resources pass Envoy's validation; the bad one is caught"
