#!/usr/bin/env bash
# Every resource shape the xDS tests serve passes Envoy's own validation
# rules (go-control-plane ValidateAll); the deliberately bad listener fails.
# The producer's exit status is checked and the validator gets the exact
# record count, so a kvtool that crashes or writes nothing fails the test.
# usage: xds_validate.sh <xds-kvtool> <xdsvalidate>
set -euo pipefail
kvtool=$1
validate=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

specs=(listener:echo:echo-routes listener:listener-=3A=3A-8080:listener-=3A=3A-8080-routes
       route:echo-routes:c-alpha route:echo-routes-w:c-alpha=1+c-beta=3
       cluster:c-alpha cluster:c-beta endpoint:c-alpha:127.0.0.1:5001
       endpoint:c-beta:127.0.0.1:5002+127.0.0.1:5003 secret:s1)
st=0; "$kvtool" dump "${specs[@]}" >"$tmp/good" || st=$?
[ "$st" -eq 0 ] || { echo "FAIL: $kvtool dump exited $st" >&2; exit 1; }
"$validate" -want "${#specs[@]}" <"$tmp/good" || {
    echo "FAIL: served resources violate Envoy's validation (or not ${#specs[@]} records)" >&2; exit 1; }

# The bad listener must be dumped (exit 0, one record) and then rejected for
# a rule violation, not for a missing or short record.
st=0; "$kvtool" dump badlistener:echo:echo-routes >"$tmp/bad" || st=$?
[ "$st" -eq 0 ] || { echo "FAIL: $kvtool dump of the bad listener exited $st" >&2; exit 1; }
if "$validate" -want 1 <"$tmp/bad" >"$tmp/bad.out" 2>&1; then
    echo "FAIL: the bad listener passed validation" >&2
    exit 1
fi
grep -q '^0 type.googleapis.com/envoy.config.listener.v3.Listener' "$tmp/bad.out" || {
    echo "FAIL: the bad listener was rejected, but not for a listener rule:" >&2; cat "$tmp/bad.out" >&2; exit 1; }
echo "ok: ${#specs[@]} served resources pass Envoy's validation; the bad one is caught"
