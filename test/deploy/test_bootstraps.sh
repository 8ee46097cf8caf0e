#!/bin/sh
# Every Envoy bootstrap in deploy/ (deploy/envoy/bootstrap.yaml, the compose
# copy, the Kubernetes ConfigMap) decoded as envoy.config.bootstrap.v3.Bootstrap
# and checked with Envoy's own validation rules (go-control-plane's
# ValidateAll) by test/deploy/bootstrapcheck, plus Sluice's needs (ADS over
# gRPC, LDS/CDS through ADS, node.metadata.role "<ns>~<proxy>", mutual TLS to
# sluice-xds with the proxy's client certificate and CA from file-based SDS,
# so that Envoy takes up rotated files without a restart), and each
# deployment's SDS files (one Secret each, its files in a watched directory).
# A bad bootstrap must fail too.
# usage: test_bootstraps.sh SOURCE_DIR BINARY_DIR BOOTSTRAPCHECK
set -u
src=$1 bin=$2 tool=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
/usr/bin/python3 "$src/test/deploy/check_deploy.py" "$src" "$bin" --bootstrap-json "$tmp" >/dev/null || {
  echo "FAIL: check_deploy.py --bootstrap-json exited $?"; exit 1; }
n=$(ls "$tmp"/*.json | wc -l)
[ "$(ls "$tmp"/*-bootstrap.json | wc -l)" -ge 3 ] || { echo "FAIL: expected 3 bootstraps"; exit 1; }
[ "$(ls "$tmp"/*-sds-*.json | wc -l)" -ge 6 ] || { echo "FAIL: expected 2 SDS files per bootstrap"; exit 1; }
"$tool" "$tmp"/*.json || exit 1
# negative: a field Envoy does not have, a rule violation (empty cluster
# name), one inside an Any (HTTP/2 max_concurrent_streams 0), plaintext to
# sluice-xds (no transport socket), TLS without a client certificate, the
# certificate and CA given statically (read once: no rotation without a
# restart), and an SDS file whose files are not watched
echo '{"node": {"idd": "x"}}' >"$tmp/bad1.json"
sed 's/"cluster_name": "sluice-xds"/"cluster_name": ""/' "$tmp/envoy-bootstrap.json" >"$tmp/bad2.json"
sed 's/"http2_protocol_options": {/"http2_protocol_options": {"max_concurrent_streams": 0, /' "$tmp/envoy-bootstrap.json" >"$tmp/bad3.json"
/usr/bin/python3 - "$tmp" <<'EOF' || { echo "FAIL: cannot make bad4 to bad7"; exit 1; }
import json, sys
d = sys.argv[1]
b = json.load(open(f"{d}/envoy-bootstrap.json"))
c = b["static_resources"]["clusters"][0]
ts = c.pop("transport_socket")
json.dump(b, open(f"{d}/bad4.json", "w"))
ctx = ts["typed_config"]["common_tls_context"]
sds = ctx.pop("tls_certificate_sds_secret_configs")
c["transport_socket"] = ts
json.dump(b, open(f"{d}/bad5.json", "w"))
ctx["tls_certificates"] = [{"certificate_chain": {"filename": "/etc/envoy/tls/tls.crt"},
                            "private_key": {"filename": "/etc/envoy/tls/tls.key"}}]
del ctx["combined_validation_context"]
ctx["validation_context"] = {"trusted_ca": {"filename": "/etc/envoy/tls/ca.crt"}}
json.dump(b, open(f"{d}/bad6.json", "w"))
s = json.load(open(f"{d}/envoy-sds-xds-client-cert.json"))
del s["resources"][0]["tls_certificate"]["watched_directory"]
json.dump(s, open(f"{d}/bad7-sds-unwatched.json", "w"))
EOF
for b in bad1 bad2 bad3 bad4 bad5 bad6 bad7-sds-unwatched; do
  if "$tool" "$tmp/$b.json" >"$tmp/$b.out"; then echo "FAIL: $b.json passed"; exit 1; fi
  echo "ok: $b.json rejected: $(cat "$tmp/$b.out")"
done
echo "$((n + 7)) passed, 0 failed"
