#!/bin/sh
# Every Envoy bootstrap in deploy/ (deploy/envoy/bootstrap.yaml, the compose
# copy, the Kubernetes ConfigMap) decoded as envoy.config.bootstrap.v3.Bootstrap
# and checked with Envoy's own validation rules (go-control-plane's
# ValidateAll) by test/deploy/bootstrapcheck, plus Sluice's needs (ADS over
# gRPC, LDS/CDS through ADS, node.metadata.role "<ns>~<proxy>", mutual TLS to
# sluice-xds with the proxy's client certificate).
# A bad bootstrap must fail too.
# usage: test_bootstraps.sh SOURCE_DIR BINARY_DIR BOOTSTRAPCHECK
set -u
src=$1 bin=$2 tool=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
/usr/bin/python3 "$src/test/deploy/check_deploy.py" "$src" "$bin" --bootstrap-json "$tmp" >/dev/null || {
  echo "FAIL: check_deploy.py --bootstrap-json exited $?"; exit 1; }
n=$(ls "$tmp"/*.json | wc -l)
[ "$n" -ge 3 ] || { echo "FAIL: expected 3 bootstraps, found $n"; exit 1; }
"$tool" "$tmp"/*.json || exit 1
# negative: a field Envoy does not have, a rule violation (empty cluster
# name), one inside an Any (HTTP/2 max_concurrent_streams 0), plaintext to
# sluice-xds (no transport socket) and TLS without a client certificate
echo '{"node": {"idd": "x"}}' >"$tmp/bad1.json"
sed 's/"cluster_name": "sluice-xds"/"cluster_name": ""/' "$tmp/envoy-bootstrap.json" >"$tmp/bad2.json"
sed 's/"http2_protocol_options": {/"http2_protocol_options": {"max_concurrent_streams": 0, /' "$tmp/envoy-bootstrap.json" >"$tmp/bad3.json"
/usr/bin/python3 - "$tmp" <<'EOF' || { echo "FAIL: cannot make bad4/bad5"; exit 1; }
import json, sys
d = sys.argv[1]
b = json.load(open(f"{d}/envoy-bootstrap.json"))
c = b["static_resources"]["clusters"][0]
ts = c.pop("transport_socket")
json.dump(b, open(f"{d}/bad4.json", "w"))
del ts["typed_config"]["common_tls_context"]["tls_certificates"]
c["transport_socket"] = ts
json.dump(b, open(f"{d}/bad5.json", "w"))
EOF
for b in bad1 bad2 bad3 bad4 bad5; do
  if "$tool" "$tmp/$b.json" >"$tmp/$b.out"; then echo "FAIL: $b.json passed"; exit 1; fi
  echo "ok: $b.json rejected: $(cat "$tmp/$b.out")"
done
echo "$((n + 5)) passed, 0 failed"
