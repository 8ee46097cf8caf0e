#!/bin/sh
# deploy/ against the binaries: check_deploy.py on the tree must pass, and on
# a copy with a misspelt flag, environment variable and NATS config it must
# fail naming each (so the checker itself is tested).
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
"$py" "$check" "$tmp/src" "$bin" >"$tmp/out" 2>&1 && { echo "FAIL: the mutated copy passed"; exit 1; }
fails=0
for want in \
  'FAIL: deploy/systemd/sluice-config-watcher.service: sluice-config-watcher --resinc is in --help' \
  'FAIL: deploy/k8s/sluice.yaml: Deployment sluice-reporter: sluice-reporter environment SLUICE_LOG_LEVL' \
  'FAIL: deploy/compose/docker-compose.yaml: reporter: sluice-reporter --republsh is in --help' \
  'FAIL: deploy/k8s: ConfigMap nats-config holds deploy/nats/sluice.conf verbatim' \
  'FAIL: compose bootstrap equals deploy/envoy/bootstrap.yaml'; do
  if grep -qF -- "$want" "$tmp/out"; then echo "ok: mutation caught: $want"
  else echo "FAIL: mutation not caught: $want"; fails=$((fails + 1)); fi
done
[ "$fails" = 0 ] || { cat "$tmp/out"; exit 1; }
echo "5 passed, 0 failed"
