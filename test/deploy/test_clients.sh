#!/usr/bin/env bash
# The example clients (examples/clients/{python,go,node}) against real
# processes as `make run` starts them: a nats-server with JetStream and
# authentication on a free port (a seed per role and auth.conf in
# <state>/nats-auth, written by `sluicectl nats-auth` as `sluicectl run`
# writes them; the server's config that auth block, then deploy/nats/sluice.conf),
# sluice-config-watcher and sluice-reporter (then sluice-translator), each
# with --nats-auth-dir (its own role). Each client applies its VirtualService
# through sluice.api.apply as the `client` role and must see it accepted and
# a status event on sluice.status.VirtualService.default.<name>:
#   refused: without credentials (none in NATS_NKEY, $SLUICE_STATE or .state)
#           the server refuses the client: Authorization Violation, exit != 0;
#   phase 1 (config-watcher + reporter, NATS_NKEY=<state>/nats-auth/client.nk):
#           the reporter's Pending ("waiting for the translator") is the event;
#   phase 2 (+ translator, --settled, only SLUICE_STATE=<state>): Accepted by
#           the translator;
#   phase 3 (run in the directory holding .state/, no variable): applying
#           the same again is "unchanged" (no event): the client reads the
#           stored status from the sluice_status KV.
# No permissions violation in any log: every process kept to its role.
# Also checks /healthz and /readyz of each service (what the k8s probes use).
#
# usage: test_clients.sh SOURCE_DIR BINARY_DIR   (env SLUICE_NATS_SERVER, GO, NODE)
set -uo pipefail
src=$1 bin=$2
nats_server=${SLUICE_NATS_SERVER:-nats-server}
go=${GO:-go}
node=${NODE:-node}
py=$src/.venv/bin/python
svc=$bin/services

tmp=$(mktemp -d)
pids=() svc_pids=() svc_names=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
  rm -rf "$tmp"
}
trap cleanup EXIT
fails=0 passes=0
ok() { passes=$((passes + 1)); echo "ok: $*"; }
fail() { fails=$((fails + 1)); echo "FAIL: $*"; }
die() { echo "FAIL: $*"; for f in "$tmp"/*.log; do echo "--- $f"; tail -20 "$f"; done; exit 1; }

[ -x "$py" ] || die "$py missing: run scripts/setup (it creates .venv/ from examples/clients/python/requirements.txt)"
free_port() { "$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# The credentials come from the files below only, whatever the caller's
# environment says.
unset NATS_NKEY NATS_CREDS SLUICE_STATE SLUICE_NATS_AUTH_DIR
state=$tmp/.state auth=$tmp/.state/nats-auth
mkdir -p "$state" "$tmp/empty"
sluicectl=$svc/sluicectl/sluicectl
[ -x "$sluicectl" ] || die "$sluicectl not built"
"$sluicectl" nats-auth "$auth" >"$tmp/nats-auth.log" 2>&1 || die "sluicectl nats-auth $auth failed"
[ -f "$auth/client.nk" ] && [ -f "$auth/auth.conf" ] || die "no client.nk or auth.conf in $auth"
# As sluicectl run: the authorization block, then the shipped config (whose
# listen and monitoring addresses the flags replace).
{ echo 'include "auth.conf"'; cat "$src/deploy/nats/sluice.conf"; } >"$auth/nats.conf"

port=$(free_port)
"$nats_server" -c "$auth/nats.conf" -js -a 127.0.0.1 -p "$port" -m "$(free_port)" -sd "$tmp/js" >"$tmp/nats.log" 2>&1 &
pids+=($!)
export NATS_URL=nats://127.0.0.1:$port
for _ in $(seq 100); do grep -q "Server is ready" "$tmp/nats.log" && break; sleep 0.1; done
grep -q "Server is ready" "$tmp/nats.log" || die "nats-server did not start"

# start NAME BINARY [flags]: waits for its "ready" log line and checks the probes.
start() {
  local name=$1 exe=$2
  shift 2
  [ -x "$exe" ] || die "$exe not built"
  "$exe" --metrics-addr 127.0.0.1:0 --nats-connect-timeout 20s --nats-auth-dir "$auth" "$@" >"$tmp/$name.log" 2>&1 &
  pids+=($!)
  svc_pids+=($!) svc_names+=("$name")
  for _ in $(seq 200); do
    grep -q 'msg="ready"' "$tmp/$name.log" && break
    kill -0 "${pids[-1]}" 2>/dev/null || die "$name exited"
    sleep 0.1
  done
  grep -q 'msg="ready"' "$tmp/$name.log" || die "$name not ready within 20s"
  local mport
  mport=$(sed -n 's/.*comp=metrics msg="listening".* port=\([0-9]*\).*/\1/p' "$tmp/$name.log" | head -1)
  for probe in healthz readyz; do
    code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$mport/$probe")
    [ "$code" = 200 ] && ok "$name /$probe 200" || fail "$name /$probe answered $code"
  done
}

start config-watcher "$svc/config-watcher/sluice-config-watcher"
start reporter "$svc/reporter/sluice-reporter"

gobin=$tmp/hello-go
(cd "$src/examples/clients/go" && "$go" build -o "$gobin" .) >"$tmp/go-build.log" 2>&1 || die "go build examples/clients/go"

# run_client LANG NAME [flags]: output in $tmp/out. Runs in $cwd when set,
# else in the client's own directory; the caller's environment (NATS_NKEY,
# SLUICE_STATE) says where its credentials are.
run_client() {
  local lang=$1 name=$2 rc
  shift 2
  local dir=${cwd:-$src/examples/clients/$lang}
  case $lang in
    python) (cd "$dir" && "$py" "$src/examples/clients/python/hello.py" --name "$name" --timeout 15 "$@") ;;
    go) (cd "$dir" && "$gobin" -name "$name" -timeout 15s -proto-dir "$src/proto" \
           -file "$src/examples/clients/hello.yaml" "$@") ;;
    node) (cd "$dir" && NODE_PATH=$src/node_modules "$node" "$src/examples/clients/node/hello.js" \
             --name "$name" --timeout 15 "$@") ;;
  esac >"$tmp/out" 2>&1 && rc=0 || rc=$?
  cat "$tmp/out" >>"$tmp/clients.log"
  return "$rc"
}

# expect LABEL PATTERN...: every pattern is in $tmp/out
expect() {
  local label=$1 p
  shift
  for p in "$@"; do
    if ! grep -Eq -- "$p" "$tmp/out"; then
      fail "$label: no line matching '$p' in:"
      sed 's/^/    /' "$tmp/out"
      return
    fi
  done
  ok "$label"
}

# Refused: no NATS_NKEY, SLUICE_STATE without nats-auth/ (so neither .state
# nor the repository's is looked at): the client connects without
# credentials and the server says no.
for lang in python go node; do
  SLUICE_STATE=$tmp/empty run_client "$lang" "refused-$lang" && rc=0 || rc=$?
  [ "$rc" != 0 ] || fail "$lang client without credentials exited 0"
  expect "$lang: refused without credentials" \
    "^nats: nats://127\.0\.0\.1:$port without credentials$" \
    '[Aa]uthorization [Vv]iolation|AUTHORIZATION_VIOLATION'
done

for lang in python go node; do
  name=hello-$lang
  NATS_NKEY=$auth/client.nk run_client "$lang" "$name" && rc=0 || rc=$?
  [ "$rc" = 0 ] || fail "$lang client exited $rc"
  expect "$lang: applied (NATS_NKEY) and got the reporter's Pending" \
    "^nats: nats://127\.0\.0\.1:$port as the nkey in $auth/client\.nk$" \
    '^apply: accepted=(True|true)$' \
    "^  Upstream default/$name-backend: Accepted resourceVersion=[0-9]+$" \
    "^  VirtualService default/$name: Accepted resourceVersion=[0-9]+$" \
    "^status event on sluice\.status\.VirtualService\.default\.$name$" \
    '^status: Pending reportedBy=reporter reason=.waiting for the translator.$'
done

[ -x "$svc/translator/sluice-translator" ] || fail "sluice-translator is not built"
start translator "$svc/translator/sluice-translator"
for lang in python go node; do
  name=settled-$lang
  flag=--settled
  [ "$lang" = go ] && flag=-settled
  SLUICE_STATE=$state run_client "$lang" "$name" "$flag" && rc=0 || rc=$?
  [ "$rc" = 0 ] || fail "$lang client --settled exited $rc"
  expect "$lang: Accepted by the translator (SLUICE_STATE)" \
    "^nats: nats://127\.0\.0\.1:$port as the nkey in $auth/client\.nk$" \
    "^status event on sluice\.status\.VirtualService\.default\.$name$" \
    '^status: Accepted reportedBy=translator$'
done

for lang in python go node; do
  cwd=$tmp run_client "$lang" "hello-$lang" && rc=0 || rc=$?
  [ "$rc" = 0 ] || fail "$lang client (unchanged) exited $rc"
  expect "$lang: unchanged apply reads the stored status (.state)" \
    "^nats: nats://127\.0\.0\.1:$port as the nkey in \.state/nats-auth/client\.nk$" \
    "^  VirtualService default/hello-$lang: Accepted unchanged$" \
    "^stored status of VirtualService default/hello-$lang$" \
    '^status: (Pending|Accepted) reportedBy='
done

# Every service stops as an orchestrator stops it (SIGTERM, newest first):
# status 0 and no sanitizer report in its log (an ASan+UBSan build under
# `make asan` reports leaks at exit).
for ((i = ${#svc_pids[@]} - 1; i >= 0; i--)); do
  p=${svc_pids[$i]} n=${svc_names[$i]}
  kill -TERM "$p"
  wait "$p" && st=0 || st=$?
  [ "$st" = 0 ] && ok "$n: exit 0 after SIGTERM" || fail "$n exited $st after SIGTERM"
  if grep -qE 'ERROR: [A-Za-z]+Sanitizer|runtime error:' "$tmp/$n.log"; then
    fail "$n: sanitizer report"
    grep -E -A20 'ERROR: [A-Za-z]+Sanitizer|runtime error:' "$tmp/$n.log" | head -40
  fi
done

# Each service kept to its own role, each client to the client role: the
# server logs "Publish Violation" / "Subscription Violation", a client
# "Permissions Violation for ...".
viol='(permissions|publish|subscription) violation'
if grep -Eil "$viol" "$tmp"/*.log; then
  fail "a permissions violation in the logs above"
  grep -Eih "$viol" "$tmp"/*.log | head -20
else
  ok "no permissions violation in the logs of nats-server, the services and the clients"
fi

echo "$passes passed, $fails failed"
[ "$fails" = 0 ]
