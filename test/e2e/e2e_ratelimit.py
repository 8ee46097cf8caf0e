#!/usr/bin/python3
"""Global rate limiting end to end (issue 13 item 5): the whole of Sluice
(`sluicectl run`: nats-server with authentication, every service,
sluice-xds over mutual TLS), a real redis-server and the real
envoyproxy/ratelimit server (built from its Go module,
test/tools/ratelimit) started with CONFIG_TYPE=GRPC_XDS_SOTW: it proves the
xDS role gloo-system~ratelimit with the client certificate `sluicectl
certs --proxy gloo-system~ratelimit` made, asks sluice-xds for its
RateLimitConfig and gets the descriptors and limits of Settings
ratelimit. Gloo YAML is applied with sluicectl (Settings ratelimitServer
and descriptors, the server's Upstream, a VirtualService with rateLimits);
the descriptors Envoy would send are computed from the route
configuration sluice-xds serves the gateway proxy (its rate_limits
actions against a request's headers), and sent to the server's
ShouldRateLimit (test/tools/ratelimit/rlclient): the first N answers are
OK, then OVER_LIMIT; a descriptor no limit names is never limited; a new
limit applied to Sluice reaches the running server over xDS and is the
one enforced. Every wait polls with a deadline. Run with /usr/bin/python3."""
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sluice_system import go_binary, ok, run_main, until  # noqa: E402
from xds_python import free_port  # noqa: E402  (test/conformance, on the path sluice_system set)

ROLE = "gloo-system~ratelimit"
GATEWAY_PROXY = "gloo-system~gateway-proxy"


def settings(counter_limit, per_key_limit=2):
    return """apiVersion: gloo.solo.io/v1
kind: Settings
metadata: {name: default, namespace: gloo-system}
spec:
  ratelimitServer:
    ratelimitServerRef: {name: rate-limiter, namespace: gloo-system}
    requestTimeout: 0.5s
  ratelimit:
    descriptors:
    - key: generic_key
      value: counter
      rateLimit: {requestsPerUnit: %d, unit: DAY}
    - key: api_key
      rateLimit: {requestsPerUnit: %d, unit: DAY}
""" % (counter_limit, per_key_limit)


def config(grpc_port):
    return """---
apiVersion: gloo.solo.io/v1
kind: Upstream
metadata: {name: rate-limiter, namespace: gloo-system}
spec:
  useHttp2: true
  static: {hosts: [{addr: 127.0.0.1, port: %d}]}
---
apiVersion: gloo.solo.io/v1
kind: Upstream
metadata: {name: app, namespace: default}
spec: {static: {hosts: [{addr: 127.0.0.1, port: 9}]}}
---
apiVersion: gateway.solo.io/v1
kind: VirtualService
metadata: {name: limited, namespace: default}
spec:
  virtualHost:
    domains: [limited.example.com]
    options:
      ratelimit:
        rateLimits:
        - actions: [{genericKey: {descriptorValue: counter}}]
        - actions: [{requestHeaders: {headerName: x-api-key, descriptorKey: api_key}}]
    routes:
    - matchers: [{prefix: /other}]
      routeAction: {single: {upstream: {name: app}}}
      options:
        ratelimit:
          rateLimits:
          - actions: [{genericKey: {descriptorValue: unlimited}}]
    - routeAction: {single: {upstream: {name: app}}}
""" % grpc_port


def wait_tcp(port, what, secs=30):
    def up():
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) == 0
    until(up, what, secs, 0.05)


def dump(sy, proxy, typ=None):
    """What sluice-xds would serve proxy: [(type URL, name, resource)]."""
    args = ["xds", "dump", "--proxy", proxy, "-o", "json"] + (["--type", typ] if typ else [])
    env = dict(os.environ, NATS_URL=sy.url, SLUICE_STATE=os.path.join(sy.dir, "state"))
    env.pop("SLUICE_NATS_AUTH_DIR", None)
    p = subprocess.run([sy.sluicectl, *args], capture_output=True, env=env, timeout=60, text=True)
    if p.returncode != 0:  # nothing of that type (or no proxy)
        assert "No xDS resources" in p.stderr, p.stderr
        return []
    try:
        return [(r["@type"], r["name"], r["resource"]) for r in json.loads(p.stdout)]
    except ValueError as e:
        raise AssertionError("sluicectl xds dump %s: not JSON (%s):\n%s" % (proxy, e, p.stdout)) from None


def envoy_descriptors(route_cfg, path, headers):
    """The descriptors Envoy's ratelimit filter sends for a request (path,
    headers) on the route configuration: the matching route's rate_limits
    (and the virtual host's, unless the route has its own and does not
    include them), each a descriptor of its actions' entries, left out when
    an action finds nothing (genericKey and requestHeaders: what the
    VirtualService uses)."""
    vh = route_cfg["virtualHosts"][0]
    route = next(r for r in vh["routes"] if path.startswith(r["match"]["prefix"]))
    limits = route["route"].get("rateLimits", [])
    if not limits or route["route"].get("includeVhRateLimits"):
        limits = limits + vh.get("rateLimits", [])
    out = []
    for rl in limits:
        d = []
        for a in rl["actions"]:
            if "genericKey" in a:
                d.append(("generic_key", a["genericKey"]["descriptorValue"]))
            elif "requestHeaders" in a:
                h = a["requestHeaders"]
                if h["headerName"] not in headers:
                    d = None
                    break
                d.append((h["descriptorKey"], headers[h["headerName"]]))
            else:
                raise AssertionError("action the test does not emulate: %r" % a)
        if d:
            out.append(d)
    return out


class RateLimitServer:
    """envoyproxy/ratelimit with CONFIG_TYPE=GRPC_XDS_SOTW against sluice-xds
    (mutual TLS with the role's certificate), Redis on loopback."""

    def __init__(self, exe, sy, redis_port, log):
        self.grpc_port, self.debug_port = free_port(), free_port()
        d = os.path.join(sy.certs, "proxies", ROLE)
        env = dict(os.environ,
                   LOG_LEVEL="info", LOG_FORMAT="text", USE_STATSD="false",
                   HOST="127.0.0.1", PORT=str(free_port()), GRPC_HOST="127.0.0.1", GRPC_PORT=str(self.grpc_port),
                   DEBUG_HOST="127.0.0.1", DEBUG_PORT=str(self.debug_port),
                   BACKEND_TYPE="redis", REDIS_SOCKET_TYPE="tcp", REDIS_URL="127.0.0.1:%d" % redis_port,
                   CONFIG_TYPE="GRPC_XDS_SOTW",
                   CONFIG_GRPC_XDS_SERVER_URL="127.0.0.1:%d" % sy.xds_port,
                   CONFIG_GRPC_XDS_NODE_ID="ratelimit-e2e",
                   CONFIG_GRPC_XDS_NODE_METADATA="role=" + ROLE,
                   CONFIG_GRPC_XDS_SERVER_USE_TLS="true",
                   CONFIG_GRPC_XDS_CLIENT_TLS_CERT=os.path.join(d, "tls.crt"),
                   CONFIG_GRPC_XDS_CLIENT_TLS_KEY=os.path.join(d, "tls.key"),
                   CONFIG_GRPC_XDS_SERVER_TLS_CACERT=os.path.join(d, "ca.crt"),
                   XDS_CLIENT_BACKOFF_INITIAL_INTERVAL="1s", XDS_CLIENT_BACKOFF_MAX_INTERVAL="2s")
        self.p = subprocess.Popen([exe], env=env, stdout=open(log, "ab"), stderr=subprocess.STDOUT)
        self.log = log

    def loaded(self):
        """The configuration it loaded (its /rlconfig debug page)."""
        with urllib.request.urlopen("http://127.0.0.1:%d/rlconfig" % self.debug_port, timeout=2) as r:
            return r.read().decode()

    def wait_config(self, line, secs=30):
        try:
            return until(lambda: line in self.loaded(), "the rate-limit server to load '%s'" % line, secs, 0.1)
        except AssertionError as e:
            raise AssertionError("%s\nlast /rlconfig:\n%s\nserver log tail:\n%s" % (e, self.safe_loaded(),
                                                                                  self.tail())) from None

    def safe_loaded(self):
        try:
            return self.loaded()
        except OSError as e:
            return str(e)

    def tail(self, n=40):
        try:
            return "".join(open(self.log, errors="replace").readlines()[-n:])
        except OSError:
            return ""

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(15)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()


def should_rate_limit(client, port, descriptors, n=1):
    """n calls to ShouldRateLimit (domain custom) with these descriptors:
    the overall code of each."""
    args = [client, "-addr", "127.0.0.1:%d" % port, "-domain", "custom", "-n", str(n)]
    for d in descriptors:
        args += ["-d", ",".join("%s=%s" % kv for kv in d)]
    out = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


def run(sy, procs, extras):
    server_exe = go_binary("RATELIMIT_SERVER", sy.dir, "ratelimit-server", "test/tools/ratelimit",
                           "github.com/envoyproxy/ratelimit/src/service_cmd")
    client = go_binary("RLCLIENT", sy.dir, "rlclient", "test/tools/ratelimit", "./rlclient")
    sy.start()
    # The rate-limit server's client certificate, as for any proxy.
    rc, out = sy.ctl("certs", sy.certs, "--proxy", ROLE)
    assert rc == 0, out

    redis_port = free_port()
    procs.append(subprocess.Popen(
        [os.environ.get("REDIS_SERVER", "redis-server"), "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", sy.dir], stdout=open(os.path.join(sy.dir, "redis.log"), "ab"), stderr=subprocess.STDOUT))
    wait_tcp(redis_port, "redis-server")

    # It serves nothing until its first configuration arrives.
    rls = RateLimitServer(server_exe, sy, redis_port, os.path.join(sy.dir, "ratelimit.log"))
    procs.append(rls.p)
    extras.append(("rate-limit server", rls))
    sy.apply(settings(3) + config(rls.grpc_port))
    wait_tcp(rls.grpc_port, "the rate-limit server's gRPC port")
    rls.wait_config("custom.generic_key_counter: unit=DAY requests_per_unit=3")
    rls.wait_config("custom.api_key: unit=DAY requests_per_unit=2")
    ok("envoyproxy/ratelimit (CONFIG_TYPE=GRPC_XDS_SOTW, mutual TLS as %s) loaded the RateLimitConfig "
       "sluice-xds serves from Settings ratelimit.descriptors (domain custom)" % ROLE)

    # What the rate-limit server's role is served: its configuration only.
    served = dump(sy, ROLE)
    assert [(t.rsplit("/", 1)[1], n) for t, n, _ in served] == \
        [("ratelimit.config.ratelimit.v3.RateLimitConfig", "custom")], served
    assert served[0][2]["domain"] == "custom", served
    for t in ("secret", "cluster", "listener", "route", "endpoint"):
        assert not dump(sy, ROLE, t), "%s has %s resources" % (ROLE, t)
    ok("the role %s is served one resource, RateLimitConfig custom: no listener, route, cluster, endpoint "
       "or secret" % ROLE)

    # What the gateway proxy (Envoy) is served: the ratelimit filter calling
    # the server's cluster, and the route's rate_limits.
    def gateway_route():
        rs = dump(sy, GATEWAY_PROXY, "route")
        return rs[0][2] if rs and "rateLimits" in json.dumps(rs[0][2]) else None
    route_cfg = until(gateway_route, "the gateway's route configuration with rate_limits", 30, 0.2)
    listener = json.dumps(dump(sy, GATEWAY_PROXY, "listener"))
    assert "envoy.filters.http.ratelimit" in listener and "rate-limiter_gloo-system" in listener, listener
    assert any(n == "rate-limiter_gloo-system" for _, n, _ in dump(sy, GATEWAY_PROXY, "cluster"))
    ok("the gateway proxy gets envoy.filters.http.ratelimit (domain custom) calling cluster "
       "rate-limiter_gloo-system, and the virtual host's rate_limits")

    # A request as Envoy would describe it: the counter limit (3 a day).
    alice = envoy_descriptors(route_cfg, "/", {"x-api-key": "alice"})
    assert alice == [[("generic_key", "counter")], [("api_key", "alice")]], alice
    counter = envoy_descriptors(route_cfg, "/", {})
    assert counter == [[("generic_key", "counter")]], counter
    got = should_rate_limit(client, rls.grpc_port, counter, 4)
    assert got == ["OK", "OK", "OK", "OVER_LIMIT"], got
    ok("descriptors Envoy sends for GET / (generic_key counter): 3 OK, the 4th OVER_LIMIT (limit 3/day)")

    # Per value: api_key limits each key on its own (2 a day).
    for key, want in (("bob", ["OK", "OK", "OVER_LIMIT"]), ("carol", ["OK", "OK", "OVER_LIMIT"])):
        d = [x for x in envoy_descriptors(route_cfg, "/", {"x-api-key": key}) if x[0][0] == "api_key"]
        got = should_rate_limit(client, rls.grpc_port, d, 3)
        assert got == want, (key, got)
    ok("api_key (no value: one limit per value): bob and carol 2 OK each, then OVER_LIMIT, independently")

    # A descriptor no limit names is not limited.
    other = envoy_descriptors(route_cfg, "/other", {})
    assert other == [[("generic_key", "unlimited")]], other
    got = should_rate_limit(client, rls.grpc_port, other, 10)
    assert got == ["OK"] * 10, got
    ok("GET /other (generic_key unlimited, which no descriptor names): 10 of 10 OK")

    # A new limit in Sluice reaches the running server over xDS.
    pid = rls.p.pid
    sy.apply(settings(6), "settings-6.yaml")
    rls.wait_config("custom.generic_key_counter: unit=DAY requests_per_unit=6")
    assert rls.p.poll() is None and rls.p.pid == pid
    got = should_rate_limit(client, rls.grpc_port, counter, 3)
    # 4 hits counted so far (the refused one too): the 5th and 6th pass now
    assert got == ["OK", "OK", "OVER_LIMIT"], got
    ok("Settings changed to 6/day: served over xDS to the same server (pid %d, not restarted); the counter "
       "that was over its limit of 3 takes hits 5 and 6, then OVER_LIMIT" % pid)

    # An invalid descriptor is refused at apply; the served limit stays.
    rc, out = sy.apply(settings(6).replace("unit: DAY}\n    - key: api_key", "}\n    - key: api_key"),
                       "settings-bad.yaml", expect_ok=False)
    assert rc != 0 and "rateLimit.unit: required" in out, out
    time.sleep(1)
    assert "custom.generic_key_counter: unit=DAY requests_per_unit=6" in rls.loaded()
    ok("a descriptor without unit is refused by sluicectl apply (%s); the server keeps 6/day" %
       out[out.index("spec.ratelimit"):].splitlines()[0][:100])


if __name__ == "__main__":
    run_main("ratelimit", run, tail=60)
