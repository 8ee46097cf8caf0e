#!/bin/sh
# deploy/ against the binaries: check_deploy.py on the tree must pass, and on
# a copy with a misspelt flag, environment variable and NATS config, and with
# each security property broken once (sluice-xds without client
# certificates, a service given another role's NATS seed, unauthenticated
# NATS routes, a NATS TLS block nats-server refuses, Envoy's SDS file for its
# certificate missing from the Kubernetes projected volume), it must fail
# naming each (so the checker itself is tested).
# usage: test_deploy_flags.sh SOURCE_DIR BINARY_DIR
set -u
src=$1 bin=$2
py=/usr/bin/python3
check=$src/test/deploy/check_deploy.py
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

"$py" "$check" "$src" "$bin" || exit 1

mkdir -p "$tmp/src"
cp -r "$src/deploy" "$src/docs" "$src/examples" "$tmp/src/"
sed -i 's/--resync 60s/--resinc 60s/' "$tmp/src/deploy/systemd/env/config-watcher.env"
sed -i 's/SLUICE_LOG_LEVEL: info/SLUICE_LOG_LEVL: info/' "$tmp/src/deploy/k8s/config.yaml"
sed -i 's/"--republish", "auto"/"--republsh", "auto"/' "$tmp/src/deploy/compose/docker-compose.yaml"
sed -i 's/max_payload: 8MB/max_payload: 1MB/' "$tmp/src/deploy/nats/sluice.conf"
sed -i 's/port_value: 9977/port_value: 9978/' "$tmp/src/deploy/compose/envoy-bootstrap.yaml"
sed -i '/"--tls-client-ca", "\/etc\/sluice\/creds\/ca.crt",/d' "$tmp/src/deploy/compose/docker-compose.yaml"
sed -i 's#/etc/sluice/nats/translator.nk#/etc/sluice/nats/xds.nk#' "$tmp/src/deploy/systemd/env/translator.env"
sed -i '/authorization { user: "sluice-nats-route" }/d' "$tmp/src/deploy/k8s/nats.yaml"
sed -i 's/secretName: sluice-nats-reporter/secretName: sluice-nats-translator/' "$tmp/src/deploy/k8s/sluice.yaml"
sed -i 's/cert_file:/cert_fil:/' "$tmp/src/deploy/compose/nats.conf"
sed -i '/{key: xds-client-cert.yaml, path: sds\/xds-client-cert.yaml}/d' "$tmp/src/deploy/k8s/envoy.yaml"
"$py" "$check" "$tmp/src" "$bin" >"$tmp/out" 2>&1 && { echo "FAIL: the mutated copy passed"; exit 1; }
fails=0
for want in \
  'FAIL: deploy/systemd/sluice-config-watcher.service: sluice-config-watcher --resinc is in --help' \
  'FAIL: deploy/k8s/sluice.yaml: Deployment sluice-reporter: sluice-reporter environment SLUICE_LOG_LEVL' \
  'FAIL: deploy/compose/docker-compose.yaml: reporter: sluice-reporter --republsh is in --help' \
  'FAIL: deploy/k8s: ConfigMap nats-config holds deploy/nats/sluice.conf verbatim' \
  'FAIL: compose bootstrap equals deploy/envoy/bootstrap.yaml' \
  'FAIL: deploy/compose/docker-compose.yaml: sluice-xds: sluice-xds uses mutual TLS' \
  'FAIL: deploy/systemd/sluice-translator.service: NATS_NKEY is the seed of its role translator' \
  'FAIL: deploy/k8s: nats.conf cluster routes have tls and authorization' \
  'FAIL: deploy/k8s/sluice.yaml: Deployment sluice-reporter: NATS with its own role' \
  'FAIL: compose: the NATS configuration passes nats-server -t' \
  'FAIL: k8s: every SDS file the bootstrap names is there'; do
  if grep -qF -- "$want" "$tmp/out"; then echo "ok: mutation caught: $want"
  else echo "FAIL: mutation not caught: $want"; fails=$((fails + 1)); fi
done
[ "$fails" = 0 ] || { cat "$tmp/out"; exit 1; }
echo "11 passed, 0 failed"
