#!/usr/bin/python3
"""Conformance: Debian's python3-grpcio (gRPC core 1.51) as a proxyless xDS
client, making real RPCs to real back-ends on loopback through resources
served by sluice-xds from the sluice_xds KV. Traffic must follow changes in
KV. A listener the client NACKs points at another back-end than the last
good one: traffic must stay where it was, the client's own NACK must reach
sluice-xds (once), and traffic moves only when the fixed listener comes.
Run with /usr/bin/python3 (Debian's grpcio)."""
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent import futures

import grpc

BIN = os.environ.get("SLUICE_BINARY_DIR", os.path.join(os.path.dirname(__file__), "../../build"))
NATS = os.environ.get("SLUICE_NATS_SERVER", "nats-server")
procs = []


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def cleanup():
    for p in procs:
        try:
            p.kill()
            p.wait(5)
        except Exception:
            pass


def start_nats(d):
    port = free_port()
    procs.append(subprocess.Popen([NATS, "-js", "-a", "127.0.0.1", "-p", str(port), "-sd", os.path.join(d, "js")],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return "nats://127.0.0.1:%d" % port
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("nats-server did not start")


SANITIZER = re.compile(r"ERROR: [A-Za-z]+Sanitizer|runtime error:")


def stop_all(started):
    """stop() on every (process, log) of started still running."""
    for p, log in started:
        if p.poll() is None:
            stop(p, log)


def stop(p, log, what="sluice-xds"):
    """Stops p as an orchestrator does (SIGTERM): it must exit 0 within
    10 s with no sanitizer report in its log (an ASan+UBSan build under
    `make asan` reports leaks at exit)."""
    p.send_signal(signal.SIGTERM)
    try:
        code = p.wait(10)
    except subprocess.TimeoutExpired:
        raise AssertionError("%s still running 10 s after SIGTERM" % what) from None
    text = open(log, errors="replace").read()
    assert code == 0, "%s exited %s after SIGTERM:\n%s" % (what, code, text)
    assert not SANITIZER.search(text), "%s: sanitizer report:\n%s" % (what, text)


def start_xds(nats_url, d):
    log = open(os.path.join(d, "xds.log"), "w")
    p = subprocess.Popen([os.path.join(BIN, "services/xds/sluice-xds"), "--nats-url", nats_url, "--listen",
                          "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0"], stdout=subprocess.PIPE, stderr=log)
    procs.append(p)
    m = re.search(rb"listening on port (\d+) metrics port (\d+)", p.stdout.readline())
    return int(m.group(1)), int(m.group(2)), os.path.join(d, "xds.log")


def apply(nats_url, *specs):
    subprocess.run([os.path.join(BIN, "test/tools/xds-kvtool"), "--nats-url", nats_url, "apply", *specs],
                   check=True, stdout=subprocess.DEVNULL)


def metric(port, name, labels):
    text = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5).read().decode()
    m = re.search(r"^%s\{%s\} (\S+)$" % (re.escape(name), re.escape(labels)), text, re.M)
    return float(m.group(1)) if m else 0.0


def log_fields(line):
    """logfmt fields of one line (quotes and escapes removed)."""
    return {m.group(1): json.loads(m.group(2)) if m.group(2).startswith('"') else m.group(2)
            for m in re.finditer(r'(\w+)=("(?:[^"\\]|\\.)*"|\S+)', line)}


def nack_lines(log, mark, node, typ):
    """The NACKs sluice-xds logged (in the file log, after offset mark) from
    node for typ: each a request the client itself sent with error_detail
    (error: the client's own message)."""
    with open(log) as f:
        f.seek(mark)
        lines = [log_fields(l) for l in f if 'msg="NACK"' in l]
    return [x for x in lines if x.get("node") == node and x.get("type") == typ]


def wait_nack(log, mark, node, typ, secs=15):
    end = time.time() + secs
    while True:
        n = nack_lines(log, mark, node, typ)
        if n:
            assert n[0].get("error"), "NACK without the client's error_detail: %s" % n[0]
            return n[0]
        assert time.time() < end, "no NACK from %s for %s" % (node, typ)
        time.sleep(0.05)


def backend(name):
    """A gRPC server answering /sluice.test.Echo/Who with WhoReply{backend=name}."""
    reply = bytes([0x0A, len(name)]) + name.encode()
    handler = grpc.method_handlers_generic_handler("sluice.test.Echo", {
        "Who": grpc.unary_unary_rpc_method_handler(lambda req, ctx: reply)})
    srv = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    srv.add_generic_rpc_handlers((handler,))
    port = srv.add_insecure_port("127.0.0.1:0")
    srv.start()
    return srv, port


def main():
    d = tempfile.mkdtemp(prefix="sluice-xds-py-")
    nats_url = start_nats(d)
    xds_port, metrics_port, log = start_xds(nats_url, d)
    xds_proc = procs[-1]
    boot = os.path.join(d, "bootstrap.json")
    with open(boot, "w") as f:
        json.dump({"xds_servers": [{"server_uri": "127.0.0.1:%d" % xds_port,
                                    "channel_creds": [{"type": "insecure"}], "server_features": ["xds_v3"]}],
                   "node": {"id": "python-%d" % os.getpid(), "locality": {"zone": "local"}}}, f)
    os.environ["GRPC_XDS_BOOTSTRAP"] = boot

    servers = {n: backend(n) for n in ("alpha", "beta")}
    servers["alpha2"] = backend("alpha")  # a second back-end answering "alpha"
    ep = {n: "127.0.0.1:%d" % servers[n][1] for n in servers}
    base = ["cluster:c-alpha", "cluster:c-beta", "endpoint:c-alpha:" + ep["alpha"], "endpoint:c-beta:" + ep["beta"]]
    node_id = "python-%d" % os.getpid()
    apply(nats_url, "listener:echo:echo-routes", "route:echo-routes:c-alpha", *base)

    channel = grpc.insecure_channel("xds:///echo")
    who = channel.unary_unary("/sluice.test.Echo/Who")

    def call():
        r = who(b"", timeout=3)
        return r[2:2 + r[1]].decode()

    def sample(n):
        seen = {}
        for _ in range(n):
            b = call()
            seen[b] = seen.get(b, 0) + 1
        return seen

    def until(pred, what, secs=20):
        end, last = time.time() + secs, None
        while time.time() < end:
            try:
                last = call()
                if pred(last):
                    return last
            except grpc.RpcError as e:
                last = e.details()
            time.sleep(0.1)
        raise AssertionError("timed out waiting for %s; last: %s\n%s" % (what, last, open(log).read()))

    until(lambda b: b == "alpha", "first RPC to alpha")
    print("ok 1 - python routed to alpha")
    apply(nats_url, "listener:echo:echo-routes", "route:echo-routes:c-beta", *base)
    until(lambda b: b == "beta", "route switched")
    assert all(call() == "beta" for _ in range(20))
    print("ok 2 - route switch moves traffic to beta")
    apply(nats_url, "listener:echo:echo-routes", "route:echo-routes:c-alpha=1+c-beta=1", *base)
    seen, end = set(), time.time() + 20
    while len(seen) < 2 and time.time() < end:
        seen.add(call())
    assert seen == {"alpha", "beta"}, seen
    print("ok 3 - weighted clusters split traffic")
    # NACK. Good state: listener echo -> route echo-routes -> c-alpha, and a
    # second route configuration echo-routes-b -> c-beta that nothing uses.
    nack = ["route:echo-routes:c-alpha", "route:echo-routes-b:c-beta", *base]
    apply(nats_url, "listener:echo:echo-routes", *nack)
    until(lambda b: b == "alpha", "back on alpha")
    assert sample(20) == {"alpha": 20}
    # The bad listener (no RDS config source: the client must NACK it)
    # points at echo-routes-b, the beta back-end; nothing else changes.
    n0 = metric(metrics_port, "sluice_xds_nacks_total", 'type="lds"')
    mark = os.path.getsize(log)
    apply(nats_url, "badlistener:echo:echo-routes-b", *nack)
    # The client's own NACK: its ADS request for LDS with error_detail, which
    # sluice-xds logs with the node id and the client's message.
    seen = wait_nack(log, mark, node_id, "lds")
    print("ok 4 - the client NACKed the listener itself: error=%s" % seen["error"])
    s = sample(30)
    assert s == {"alpha": 30}, "traffic left the last good listener while the bad one is pending: %s" % s
    print("ok 5 - the last good listener keeps serving (all on alpha)")
    # No NACK loop: a later commit (c-alpha gains a second alpha back-end)
    # is served and ACKed; by then the listener was neither re-sent nor
    # NACKed again.
    n1 = metric(metrics_port, "sluice_xds_nacks_total", 'type="lds"')
    assert n1 == n0 + 1, (n0, n1)
    a0 = metric(metrics_port, "sluice_xds_acks_total", 'type="eds"')
    apply(nats_url, "badlistener:echo:echo-routes-b", *nack[:4],
          "endpoint:c-alpha:%s+%s" % (ep["alpha"], ep["alpha2"]), "endpoint:c-beta:" + ep["beta"])
    end = time.time() + 15
    while metric(metrics_port, "sluice_xds_acks_total", 'type="eds"') <= a0:
        assert time.time() < end, "the EDS change was not ACKed"
        time.sleep(0.05)
    assert metric(metrics_port, "sluice_xds_nacks_total", 'type="lds"') == n1, "NACK loop"
    assert len(nack_lines(log, mark, node_id, "lds")) == 1, "NACK loop"
    assert sample(20) == {"alpha": 20}
    print("ok 6 - a later commit is ACKed with no second NACK, traffic still on alpha")
    # The fixed listener, pointing at echo-routes-b: now traffic moves.
    apply(nats_url, "listener:echo:echo-routes-b", *nack)
    until(lambda b: b == "beta", "the fixed listener moves traffic to beta")
    assert sample(20) == {"beta": 20}
    print("ok 7 - the fixed listener is accepted and moves traffic to beta")
    channel.close()
    for s, _ in servers.values():
        s.stop(0)
    stop(xds_proc, log)
    print("ok 8 - sluice-xds stops on SIGTERM: exit 0, no sanitizer report")


def run(main_fn):
    """Runs a test's main, its processes cleaned up whatever happens (a
    SIGTERM from ctest's timeout too)."""
    signal.signal(signal.SIGTERM, lambda *a: (cleanup(), sys.exit(1)))
    try:
        main_fn()
    finally:
        cleanup()


if __name__ == "__main__":
    run(main)
