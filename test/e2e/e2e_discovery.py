#!/usr/bin/python3
"""End to end, nothing about a back-end typed by hand: the whole of Sluice
(`sluicectl run`, sluice-xds over mutual TLS), a real etcd-server as the
registry and a real dnsmasq as the DNS server, back-ends that register
themselves in etcd with gRPC-Go's own registry code
(go.etcd.io/etcd/client/v3/naming/endpoints, test/e2e/registered-backend),
and grpc-go's proxyless xDS client making real calls.

A back-end registers, sluice-upstream-discovery makes its Upstream, and the
client is routed to it; three instances share the calls; one
deregisters gracefully (it keeps answering while it drains) and not one
call fails; one is killed and its lease expiry moves the traffic; a DNS
record changes and the traffic follows. Function discovery reads a grpc-go
server's reflection; a route naming the discovered method is accepted and
the client calls it; what the translator makes of the discovered
descriptors passes Envoy's validators. Every wait polls with a deadline.
Run with /usr/bin/python3 (Debian's grpcio)."""
import json
import os
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sluice_system import BIN, GATEWAY, PROXY_ROLE, Traffic, go_binary, ok, run_main, until, upstream, vs  # noqa: E402
from xds_python import free_port  # noqa: E402  (test/conformance, on the path sluice_system set)

def wait_tcp(port, what, secs=20):
    def up():
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) == 0
    until(up, what, secs, 0.05)


class Backend:
    """A registered-backend process answering with its name; registered in
    etcd under service when etcd is given (lease TTL 2 s)."""

    def __init__(self, exe, log, name, listen="127.0.0.1:0", etcd=None, service=None, reflection=False):
        args = [exe, "-name", name, "-listen", listen] + (["-reflection"] if reflection else [])
        if etcd:
            args += ["-etcd", etcd, "-service", service, "-ttl", "2", "-drain", "3s"]
        self.name = name
        self.p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=open(log, "a"), text=True)
        line = self.p.stdout.readline()
        assert line.startswith("serving "), "%s did not start: %r (see %s)" % (name, line, log)
        self.addr = line.split()[1]

    def stop(self, sig=signal.SIGTERM):
        if self.p.poll() is None:
            self.p.send_signal(sig)
        return self.p.wait(20)


FN_ROUTE = """---
apiVersion: gateway.solo.io/v1
kind: VirtualService
metadata: {name: fn, namespace: default}
spec:
  virtualHost:
    domains: [%s]
    routes:
    - matchers: [{prefix: /sluice.test.Echo/Who}]
      routeAction:
        single:
          upstream: {name: fnsvc}
          destinationSpec: {grpc: {package: sluice.test, service: Echo, function: Who}}
"""


def functions(sy, c, exe, log, b, etcd, procs):
    """Function discovery from grpc-go's server reflection, end to end: the
    back-end registers in etcd, its Upstream (type etcd) names the prefix
    and asks for gRPC functions; discovery finds the endpoints in
    sluice_endpoints."""
    b["fn"] = Backend(exe, log, "fn", etcd=etcd, service="services/fn", reflection=True)
    procs.append(b["fn"].p)
    sy.apply(upstream("fnsvc", spec="etcd:\n    prefix: services/fn\n    serviceSpec: {grpc: {}}"))

    def discovered():
        rc, out = sy.ctl("get", "upstream", "fnsvc", "-o", "json")
        assert rc == 0, out
        up = json.loads(out)
        grpc = up["spec"]["etcd"].get("serviceSpec", {}).get("grpc", {})
        return [(s.get("packageName"), s.get("serviceName"), s.get("functionNames")) for s in
                grpc.get("grpcServices", [])] or None
    got = until(discovered, "fnsvc's functions discovered from reflection", 30, 0.2)
    assert got == [("sluice.test", "Echo", ["Who"])], got
    ok("function discovery read grpc-go's server reflection at the endpoint the back-end registered in etcd: "
       "Upstream fnsvc (type etcd) lists sluice.test.Echo/Who (reflection itself left out)")

    # A route naming the discovered method: accepted, and the client calls it.
    sy.apply(FN_ROUTE % "fn.e2e")
    c.wait_for("fn.e2e", "fn", 30)
    rc, out = sy.ctl("status", "vs", "fn")
    assert rc == 0 and "Rejected" not in out, out
    ok("a route naming the discovered function (destinationSpec.grpc sluice.test.Echo/Who) is served; the "
       "proxyless client's calls reach it")

    # What an Envoy proxy would get from the discovered descriptors (the
    # gRPC-JSON transcoder on the route) passes Envoy's own validators: the
    # stored Upstream and the route through sluice-translate (default
    # gateway: an EDS cluster, a listener, a route configuration).
    rc, up_yaml = sy.ctl("get", "upstream", "fnsvc", "-o", "yaml")
    assert rc == 0, up_yaml
    doc = os.path.join(sy.dir, "fn-envoy.yaml")
    with open(doc, "w") as f:
        f.write(up_yaml + "\n" + FN_ROUTE % "'*'")
    tool = os.path.join(BIN, "test/tools/sluice-translate")
    validate = os.path.join(BIN, "test/conformance/xdsvalidate-tool")
    out = subprocess.run([tool, "--any", doc], capture_output=True, timeout=60)
    assert out.returncode == 0, out.stderr.decode()
    v = subprocess.run([validate, "-min", "3"], input=out.stdout, capture_output=True, timeout=60)
    assert v.returncode == 0, (v.stdout + v.stderr).decode()
    assert b"grpc_json_transcoder" in out.stdout, "no transcoder in the translation"
    ok("the translation for an Envoy proxy (the gRPC-JSON transcoder with the discovered descriptors) passes "
       "Envoy's validators (go-control-plane)")


def run(sy, procs, extras):
    log = os.path.join(sy.dir, "backends.log")
    exe = go_binary("REGISTERED_BACKEND", sy.dir, "registered-backend", "test/e2e/registered-backend")

    # etcd (one member, loopback) and dnsmasq (a hosts file, TTL 1 s).
    etcd_port, peer_port = free_port(), free_port()
    curl, purl = "http://127.0.0.1:%d" % etcd_port, "http://127.0.0.1:%d" % peer_port
    procs.append(subprocess.Popen(
        ["etcd", "--name=t", "--data-dir=" + os.path.join(sy.dir, "etcd"), "--listen-client-urls", curl,
         "--advertise-client-urls", curl, "--listen-peer-urls", purl, "--initial-advertise-peer-urls", purl,
         "--initial-cluster=t=" + purl], stdout=open(os.path.join(sy.dir, "etcd.log"), "a"), stderr=subprocess.STDOUT))
    wait_tcp(etcd_port, "etcd")
    dns_port = free_port()
    hosts = os.path.join(sy.dir, "hosts")
    dns_backend_port = free_port()
    with open(hosts, "w") as f:
        f.write("127.0.0.2 dns-echo.test\n")
    dnsmasq = subprocess.Popen(
        ["/usr/sbin/dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", "--pid-file=", "--port=%d" % dns_port,
         "--listen-address=127.0.0.1", "--bind-interfaces", "--no-resolv", "--no-hosts", "--addn-hosts=" + hosts,
         "--user=root", "--group=root", "--local-ttl=1", "--local=/test/"],
        stdout=open(os.path.join(sy.dir, "dnsmasq.log"), "a"), stderr=subprocess.STDOUT)
    procs.append(dnsmasq)
    wait_tcp(dns_port, "dnsmasq")

    # The discovery services (started by sluicectl run) take their sources
    # from the environment: etcd for endpoint and upstream discovery (the
    # registry root services/), the DNS server for endpoint discovery.
    os.environ["SLUICE_ETCD_ENDPOINTS"] = "127.0.0.1:%d" % etcd_port
    os.environ["SLUICE_UDS_ETCD_ROOTS"] = "services/"
    os.environ["SLUICE_DNS_SERVER"] = "127.0.0.1:%d" % dns_port
    sy.start()
    # Routes only: the etcd service's Upstream is sluice-upstream-discovery's
    # (etcd-services-echo in the discovery namespace, gloo-system, as Gloo).
    sy.apply(GATEWAY + vs("echo", "echo.e2e", ("/", "gloo-system/etcd-services-echo")) +
             upstream("dnsecho", spec="dns: {name: dns-echo.test, port: %d}" % dns_backend_port) +
             vs("dnsecho", "dnsecho.e2e", ("/", "dnsecho")))
    c = sy.client()
    etcd = "127.0.0.1:%d" % etcd_port

    # A back-end starts and registers itself: it is reached.
    t0 = time.time()
    b = {"b1": Backend(exe, log, "b1", etcd=etcd, service="services/echo")}
    procs.append(b["b1"].p)
    c.wait_for("echo.e2e", "b1", 30)
    rc, out = sy.ctl("get", "upstream", "etcd-services-echo", "-n", "gloo-system", "-o", "json")
    assert rc == 0 and json.loads(out)["metadata"]["annotations"].get("discovered-by") == "upstream-discovery", out
    ok("b1 registered itself in etcd (naming/endpoints, %s); sluice-upstream-discovery made the Upstream "
       "gloo-system/etcd-services-echo and the proxyless client reaches b1 through it, %.2fs after b1 started; "
       "nothing about the back-end typed by hand" % (b["b1"].addr, time.time() - t0))

    # Scaled to three: the calls spread.
    for n in ("b2", "b3"):
        b[n] = Backend(exe, log, n, etcd=etcd, service="services/echo")
        procs.append(b[n].p)
    seen = {}

    def spread():
        r = c.try_call("echo.e2e")
        seen[r] = seen.get(r, 0) + 1
        return {"b1", "b2", "b3"} <= set(seen)
    until(spread, "calls reaching b1, b2 and b3", 30, 0)
    ok("scaled to three instances: calls spread over them (%s)" % ", ".join(
        "%s %d" % kv for kv in sorted(seen.items())))

    def only(domain, names, n=30):
        """n calls in a row, each answered by one of names."""
        until(lambda: all(c.try_call(domain) in names for _ in range(n)),
              "every call to %s answered by %s" % (domain, "/".join(sorted(names))), 30, 0.05)

    # b2 deregisters gracefully while calls go on: none fails.
    traffic = Traffic(c, ["echo.e2e"])
    traffic.start()
    until(lambda: traffic.calls >= 20, "traffic running", 20, 0.02)
    rc = b["b2"].stop(signal.SIGTERM)
    assert rc == 0, "b2 exited %d" % rc
    calls_at_exit = traffic.calls
    until(lambda: traffic.calls >= calls_at_exit + 30, "calls after b2 stopped", 20, 0.02)
    traffic.finish()
    assert traffic.errors == 0, "calls failed during b2's graceful deregistration: %d of %d (last: %s)" % (
        traffic.errors, traffic.calls, traffic.last_error)
    only("echo.e2e", {"b1", "b3"})
    ok("b2 deregistered gracefully (key deleted, drained, stopped): %d calls, none failed; calls now go to "
       "b1 and b3" % traffic.calls)

    # b3 is killed: the client stops using it (its connection is refused),
    # and when its lease expires (TTL 2 s) etcd deletes its key and the
    # ClusterLoadAssignment the proxies get drops it.
    def served_endpoints():
        rc, out = sy.ctl("xds", "dump", "--proxy", PROXY_ROLE, "--type", "endpoint", "-o", "json")
        assert rc == 0, out
        return out
    assert b["b3"].addr.split(":")[1] in served_endpoints()
    traffic = Traffic(c, ["echo.e2e"])
    traffic.start()
    b["b3"].stop(signal.SIGKILL)
    t0 = time.time()
    only("echo.e2e", {"b1"})
    t_calls = time.time() - t0
    until(lambda: '"portValue": %s' % b["b3"].addr.split(":")[1] not in served_endpoints() and
          '"portValue": %s' % b["b1"].addr.split(":")[1] in served_endpoints(),
          "b3 gone from the served ClusterLoadAssignment", 30, 0.1)
    t_lease = time.time() - t0
    traffic.finish()
    ok("b3 killed: every call goes to b1 %.1fs later; its lease expired and the served endpoints dropped it "
       "%.1fs after the kill (%d calls meanwhile, %d failed)" % (t_calls, t_lease, traffic.calls, traffic.errors))

    # DNS: the name moves from 127.0.0.2 to 127.0.0.3, and the calls follow.
    for n, ip in (("d1", "127.0.0.2"), ("d2", "127.0.0.3")):
        b[n] = Backend(exe, log, n, listen="%s:%d" % (ip, dns_backend_port))
        procs.append(b[n].p)
    only("dnsecho.e2e", {"d1"})
    with open(hosts, "w") as f:
        f.write("127.0.0.3 dns-echo.test\n")
    dnsmasq.send_signal(signal.SIGHUP)
    t0 = time.time()
    only("dnsecho.e2e", {"d2"})
    ok("dns-echo.test moved from 127.0.0.2 to 127.0.0.3 (TTL 1 s): every call goes to the new address %.1fs "
       "later" % (time.time() - t0))

    functions(sy, c, exe, log, b, etcd, procs)

    rc, out = sy.ctl("check")
    assert rc == 0, out
    for n in list(b):
        b[n].stop(signal.SIGTERM)
    c.close()


if __name__ == "__main__":
    run_main("disc", run)
