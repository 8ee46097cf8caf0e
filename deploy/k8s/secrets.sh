#!/bin/sh
# deploy/k8s/secrets.sh DIR: Sluice's credentials for Kubernetes. Makes (or
# keeps: existing files are not replaced) the NATS role seeds and auth.conf
# (sluicectl nats-auth DIR/nats) and a CA with the certificates of NATS,
# sluice-xds and the gateway-proxy Envoys (sluicectl certs DIR/tls), then
# creates or updates the Secrets deploy/k8s mounts:
#   nats-auth                auth.conf (public keys, permissions)    NATS
#   nats-tls                 tls.crt, tls.key, ca.crt                NATS (clients, routes)
#   sluice-nats-<role>       nats.nk, ca.crt                         each Sluice Deployment
#   sluice-xds-tls           tls.crt, tls.key, ca.crt                sluice-xds (mutual TLS)
#   gateway-proxy-tls        tls.crt, tls.key, ca.crt                Envoy (its client certificate)
# Keep DIR (it holds the CA key and every seed) somewhere safe, or delete
# DIR/tls/ca.key once done. Rotation: docs/operations.md.
# Environment: NAMESPACE (sluice-system), SLUICECTL (sluicectl), KUBECTL (kubectl).
set -eu
dir=${1:?usage: secrets.sh DIR}
ns=${NAMESPACE:-sluice-system}
ctl=${SLUICECTL:-sluicectl}
kc=${KUBECTL:-kubectl}
"$ctl" nats-auth "$dir/nats"
"$ctl" certs "$dir/tls" \
  --server-name "sluice-xds.$ns.svc" --server-name "sluice-xds.$ns.svc.cluster.local" \
  --nats-host nats --nats-host "nats.$ns.svc" --nats-host "nats.$ns.svc.cluster.local" \
  --nats-host nats-0.nats-headless --nats-host nats-1.nats-headless --nats-host nats-2.nats-headless \
  --nats-host localhost \
  --proxy default~gateway-proxy
secret() {
  name=$1
  shift
  "$kc" -n "$ns" create secret generic "$name" "$@" --dry-run=client -o yaml | "$kc" apply -f -
}
secret nats-auth --from-file=auth.conf="$dir/nats/auth.conf"
secret nats-tls --from-file="$dir/tls/nats/"
for role in config-watcher secret-watcher translator reporter xds endpoint-discovery upstream-discovery function-discovery; do
  secret "sluice-nats-$role" --from-file=nats.nk="$dir/nats/$role.nk" --from-file=ca.crt="$dir/tls/ca.crt"
done
secret sluice-xds-tls --from-file="$dir/tls/xds/"
secret gateway-proxy-tls --from-file="$dir/tls/proxies/default~gateway-proxy/"
# sluicectl from a workstation: kubectl -n sluice-system port-forward svc/nats 4222, then
#   sluicectl --nats-url nats://localhost:4222 --nats-nkey DIR/nats/sluicectl.nk \
#             --nats-tls-ca DIR/tls/ca.crt check
