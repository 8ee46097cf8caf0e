"""The whole of Sluice on loopback, for the end-to-end test and bench/e2e:
`sluicectl run` (nats-server with JetStream + every service, supervised) on
free ports in a temporary state directory, real gRPC back-ends, and a real
proxyless gRPC xDS client. By default sluice-xds serves mutual TLS as a
deployment does (`sluicectl certs` makes the CA, the server's certificate
and the proxy's client certificate; `sluicectl run --xds-certs`), and the
client is grpc-go's xDS resolver (test/conformance/grpcgo, `-calls`), whose
bootstrap presents the proxy's certificate ("tls" channel_creds): Debian's
python3-grpcio 1.51 and grpc-js-xds 1.14 only dial an xDS server in
plaintext. With mtls=False (bench/e2e) sluice-xds is plaintext on loopback
and the client is python3-grpcio (run with /usr/bin/python3). Back-ends and
free ports come from the xDS conformance test
(test/conformance/xds_python.py)."""
import base64
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

os.environ.setdefault("GRPC_VERBOSITY", "NONE")  # the client's own error lines; failures say enough
import grpc  # noqa: E402

SRC = os.environ.get("SLUICE_SOURCE_DIR", os.path.join(os.path.dirname(os.path.abspath(__file__)), "../.."))
BIN = os.environ.get("SLUICE_BINARY_DIR", os.path.join(SRC, "build"))
sys.path.insert(0, os.path.join(SRC, "test/conformance"))
from xds_python import backend, free_port  # noqa: E402  (reused, not copied)

SERVICES = ["sluice-config-watcher", "sluice-secret-watcher", "sluice-reporter", "sluice-translator", "sluice-xds"]
PROXY_ROLE = "default~grpc-clients"


def until(pred, what, secs=20.0, every=0.05):
    """Polls pred() until it returns something truthy; fails after secs."""
    end, last = time.time() + secs, None
    while time.time() < end:
        try:
            last = pred()
            if last:
                return last
        except Exception as e:  # noqa: BLE001 - the last error goes in the message
            last = e
        time.sleep(every)
    raise AssertionError("timed out after %.0fs waiting for %s; last: %r" % (secs, what, last))


def alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False


def nkey_sign(seed, nonce):
    """(public key, signature) of a NATS user nkey seed ("SU..."): the seed
    is base32 of 2 prefix bytes, the 32-byte Ed25519 seed and a CRC-16; the
    public key "U..." is base32 of the user prefix, the key and its CRC."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives import serialization
    raw = base64.b32decode(seed + "=" * (-len(seed) % 8))
    key = Ed25519PrivateKey.from_private_bytes(raw[2:34])
    pk = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    body = bytes([20 << 3]) + pk
    crc = 0
    for b in body:
        crc ^= b << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021 if crc & 0x8000 else crc << 1) & 0xFFFF
    pub = base64.b32encode(body + bytes([crc & 0xFF, crc >> 8])).decode().rstrip("=")
    sig = base64.urlsafe_b64encode(key.sign(nonce)).decode().rstrip("=")
    return pub, sig


class System:
    """sluicectl run on free ports. ctl() runs sluicectl against it."""

    def __init__(self, name="e2e", mtls=True):
        self.dir = tempfile.mkdtemp(prefix="sluice-%s-" % name)
        self.certs = os.path.join(self.dir, "certs") if mtls else None
        self.config_dir = os.path.join(self.dir, "config")
        os.mkdir(self.config_dir)
        self.nats_port = free_port()
        self.xds_port = free_port()
        self.url = "nats://127.0.0.1:%d" % self.nats_port
        self.log = os.path.join(self.dir, "run.log")
        self.sluicectl = os.path.join(BIN, "services/sluicectl/sluicectl")
        self.run = None
        self.backends = {}

    def start(self):
        tls = []
        if self.certs:
            # as an operator does: a CA, sluice-xds' certificate, the proxy's
            rc, out = self.ctl("certs", self.certs, "--proxy", PROXY_ROLE)
            assert rc == 0, out
            tls = ["--xds-certs", self.certs]
        # Metrics endpoints off (port 0 base): readiness comes from the
        # heartbeats (sluicectl check), so parallel tests share no port.
        self.run = subprocess.Popen(
            [self.sluicectl, "run", "--state-dir", os.path.join(self.dir, "state"), "--config-dir", self.config_dir,
             "--nats-port", str(self.nats_port), "--nats-monitor-port", str(free_port()), "--metrics-base-port", "0",
             "--xds-listen", "127.0.0.1:%d" % self.xds_port, "--bin-dir", os.path.join(BIN, "services"),
             "--nats-conf", os.path.join(SRC, "deploy/nats/sluice.conf")] + tls +
            (["--nats-server", os.environ["SLUICE_NATS_SERVER"]] if os.environ.get("SLUICE_NATS_SERVER") else []),
            stdout=open(self.log, "ab"), stderr=subprocess.STDOUT, cwd=self.dir)
        self.wait_services()

    def stop(self):
        """SIGTERM to sluicectl run, which stops every service with SIGTERM
        (SIGKILL after 15 s, and then exits 1). Returns what went wrong: a
        non-zero exit, or a sanitizer report (an ASan+UBSan build under
        `make asan` reports leaks at exit) in the services' output."""
        problems = []
        if self.run and self.run.poll() is None:
            self.run.send_signal(signal.SIGTERM)
            try:
                rc = self.run.wait(30)
                if rc != 0:
                    problems.append("sluicectl run exited %d after SIGTERM (a service did not stop with exit "
                                    "status 0, or had to be killed)" % rc)
            except subprocess.TimeoutExpired:
                self.run.kill()
                self.run.wait()
                problems.append("sluicectl run still running 30 s after SIGTERM")
        for srv, _ in self.backends.values():
            srv.stop(0)
        try:
            text = open(self.log, errors="replace").read()
        except OSError:
            text = ""
        # each service's own exit status, as sluicectl run reports it
        for name in SERVICES:
            if not re.search(r"run: %s stopped \(exit status 0\)" % re.escape(name), text):
                problems.append("%s: no clean stop (exit status 0) in sluicectl run's log" % name)
        m = re.search(r"ERROR: [A-Za-z]+Sanitizer|runtime error:", text)
        if m:
            problems.append("sanitizer report in the services' output:\n" + text[max(0, m.start() - 200):m.start() + 3000])
        return problems

    def tail(self, n=60):
        try:
            return "".join(open(self.log, errors="replace").readlines()[-n:])
        except OSError:
            return ""

    def ctl(self, *args, stdin=None):
        """(exit status, stdout + stderr) of sluicectl against this system."""
        # SLUICE_STATE: sluicectl picks up the credentials sluicectl run made there
        env = dict(os.environ, NATS_URL=self.url, SLUICE_STATE=os.path.join(self.dir, "state"))
        env.pop("SLUICE_NATS_AUTH_DIR", None)
        p = subprocess.run([self.sluicectl, *args], input=stdin, capture_output=True, env=env, timeout=60)
        return p.returncode, (p.stdout + p.stderr).decode(errors="replace")

    def services(self):
        """{service: (pid, ready)} from `sluicectl check` (the heartbeats)."""
        _, out = self.ctl("check", "--expect", ",".join(SERVICES))
        found = {}
        for m in re.finditer(r"^(OK|FAIL)\s+service (\S+): (.*)$", out, re.M):
            # A killed instance's heartbeat lives until its TTL: keep the
            # pids of live processes only (they are all ours).
            pids = [int(p) for p in re.findall(r"pid (\d+)", m.group(3)) if alive(int(p))]
            found[m.group(2)] = (pids[-1] if pids else 0, m.group(1) == "OK" and bool(pids))
        return found

    def wait_services(self, not_pids=(), secs=30):
        """Waits until every service is alive and ready, with a pid not in
        not_pids (a restarted one); returns {service: pid}."""
        def ok():
            s = self.services()
            if all(n in s and s[n][1] and s[n][0] not in not_pids for n in SERVICES):
                return {n: s[n][0] for n in SERVICES}
            return None
        try:
            return until(ok, "every service alive and ready", secs, 0.1)
        except AssertionError as e:
            raise AssertionError("%s\n%s" % (e, self.tail())) from None

    def nats_pid(self):
        pids = re.findall(r"nats-server with JetStream on \S+ \(pid (\d+)", open(self.log).read())
        restarted = re.findall(r"restarted nats-server \(pid (\d+)", open(self.log).read())
        return int((restarted or pids)[-1])

    def apply(self, text, name="config.yaml", expect_ok=True):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(text)
        rc, out = self.ctl("apply", "-f", path)
        if expect_ok and rc != 0:
            raise AssertionError("sluicectl apply failed (%d): %s" % (rc, out))
        return rc, out

    def nats_publish(self, subject, payload, role="config-writer"):
        """A plain NATS publish (any client in any language can write the
        KV this way: JetStream stores $KV.<bucket>.<key>), authenticated
        with the nkey sluicectl run made for role (the nonce signed with
        Ed25519, as NATS clients do). Waits for the server's PONG so the
        message is in before returning."""
        s = socket.create_connection(("127.0.0.1", self.nats_port), 5)
        f = s.makefile("rb")
        info = json.loads(f.readline().split(b" ", 1)[1])
        seed_file = os.path.join(self.dir, "state", "nats-auth", role + ".nk")
        pub, sig = nkey_sign(open(seed_file).read().strip(), info["nonce"].encode())
        connect = json.dumps({"verbose": False, "pedantic": False, "nkey": pub, "sig": sig}).encode()
        s.sendall(b"CONNECT %s\r\nPUB %s %d\r\n%s\r\nPING\r\n" % (connect, subject.encode(), len(payload), payload))
        line = f.readline()
        s.close()
        assert line.startswith(b"PONG"), line

    def add_backends(self, *names):
        for n in names:
            self.backends[n] = backend(n)
        return {n: self.backends[n][1] for n in names}

    def proxy_tls(self):
        """(CA, certificate, key) files of the proxy's client identity."""
        d = os.path.join(self.certs, "proxies", PROXY_ROLE)
        return tuple(os.path.join(d, f) for f in ("ca.crt", "tls.crt", "tls.key"))

    def client(self, node_id="e2e"):
        """A gRPC xDS client (bootstrap pointing at sluice-xds with the
        proxy's role and, over mTLS, its certificate); returns
        call(domain) -> back-end name."""
        boot = os.path.join(self.dir, "bootstrap-%s.json" % node_id)
        creds = {"type": "insecure"}
        if self.certs:
            ca, crt, key = self.proxy_tls()
            creds = {"type": "tls", "config": {"ca_certificate_file": ca, "certificate_file": crt,
                                               "private_key_file": key}}
        with open(boot, "w") as f:
            json.dump({"xds_servers": [{"server_uri": "127.0.0.1:%d" % self.xds_port,
                                        "channel_creds": [creds], "server_features": ["xds_v3"]}],
                       "node": {"id": "%s-%d" % (node_id, os.getpid()), "locality": {"zone": "local"},
                                "metadata": {"role": PROXY_ROLE}}}, f)
        if self.certs:
            return GoClient(boot, self.dir)
        os.environ["GRPC_XDS_BOOTSTRAP"] = boot
        return Client()


class Client:
    """python3-grpcio's xDS resolver (bootstrap from GRPC_XDS_BOOTSTRAP)."""

    def __init__(self):
        self.channels = {}

    def call(self, domain, timeout=3):
        if domain not in self.channels:
            ch = grpc.insecure_channel("xds:///" + domain)
            self.channels[domain] = (ch, ch.unary_unary("/sluice.test.Echo/Who"))
        r = self.channels[domain][1](b"", timeout=timeout)
        return r[2:2 + r[1]].decode()

    def try_call(self, domain, timeout=3):
        try:
            return self.call(domain, timeout)
        except grpc.RpcError as e:
            return "error: %s" % e.details()

    def wait_for(self, domain, want, secs=20):
        return until(lambda: self.try_call(domain) == want and want, "%s -> %s" % (domain, want), secs, 0.02)

    def close(self):
        for ch, _ in self.channels.values():
            ch.close()


def go_binary(env, workdir, name, src, pkg="."):
    """A Go test program: $<env> (built by ctest), else built into workdir
    from package pkg of the module at src (relative to the source tree)."""
    path = os.environ.get(env)
    if path:
        return path
    path = os.path.join(workdir, name)
    subprocess.run([os.environ.get("GO", "go"), "build", "-o", path, pkg], check=True, cwd=os.path.join(SRC, src))
    return path


def grpcgo_client(workdir):
    """The grpc-go client binary (test/conformance/grpcgo)."""
    return go_binary("GRPCGO_CLIENT", workdir, "grpcgo-client", "test/conformance/grpcgo")


_n_ok = 0


def ok(msg):
    """One TAP-like line: "ok N - msg"."""
    global _n_ok
    _n_ok += 1
    print("ok %d - %s" % (_n_ok, msg), flush=True)


def oks():
    """How many ok() lines so far."""
    return _n_ok


def run_main(name, run, tail=80):
    """A test's main: run(sy, procs, extras) with a System(name) (run starts
    it). procs: processes the test started (killed at the end if still
    running); extras: (label, obj) of helpers with tail() and stop(). On a
    failure the tails of sluicectl run's log and of each helper's are
    printed. Then the helpers are stopped, the system is stopped (what it
    found wrong fails the test) and the processes killed; last the TAP
    plan."""
    sy = System(name)
    procs, extras = [], []
    try:
        run(sy, procs, extras)
    except BaseException:
        print("# sluicectl run log (tail):\n" + "\n".join("# " + l for l in sy.tail(tail).splitlines()),
              flush=True)
        for label, x in extras:
            print("# %s log (tail):\n" % label + "\n".join("# " + l for l in x.tail().splitlines()), flush=True)
        raise
    finally:
        for _, x in extras:
            x.stop()
        problems = sy.stop()
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert not problems, "\n".join(problems)
    print("ok - every service stopped on SIGTERM, no sanitizer report")
    print("1..%d" % (oks() + 1))


class GoClient(Client):
    """grpc-go's xDS resolver in a child process (grpcgo-client -calls), one
    call per line; its bootstrap may present a client certificate.
    Thread-safe (one call at a time)."""

    def __init__(self, bootstrap, workdir):
        super().__init__()
        self.lock = threading.Lock()
        self.p = subprocess.Popen([grpcgo_client(workdir), "-calls"], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True, bufsize=1,
                                  stderr=open(os.path.join(workdir, "grpcgo-client.log"), "a"),
                                  env=dict(os.environ, GRPC_XDS_BOOTSTRAP=bootstrap))

    def call(self, domain, timeout=3):
        with self.lock:
            self.p.stdin.write("xds:///%s %d\n" % (domain, int(timeout * 1000)))
            line = self.p.stdout.readline().rstrip("\n")
        if not line.startswith("ok "):
            raise RuntimeError(line or "grpcgo-client exited")
        return line[3:]

    def try_call(self, domain, timeout=3):
        try:
            return self.call(domain, timeout)
        except RuntimeError as e:
            return "error: %s" % e

    def close(self):
        self.p.stdin.close()
        self.p.wait(10)


class Traffic(threading.Thread):
    """Calls every domain in a loop (while services are killed, back-ends
    come and go); counts calls, answers per back-end (seen) and failures."""

    def __init__(self, client, domains):
        super().__init__(daemon=True)
        self.client, self.domains = client, domains
        self.stop, self.calls, self.errors, self.last_error = False, 0, 0, None
        self.seen = {}

    def run(self):
        while not self.stop:
            for d in self.domains:
                r = self.client.try_call(d)
                self.calls += 1
                if r.startswith("error"):
                    self.errors += 1
                    self.last_error = r
                else:
                    self.seen[r] = self.seen.get(r, 0) + 1
            time.sleep(0.01)

    def finish(self):
        self.stop = True
        self.join(10)


# ---- config ---------------------------------------------------------------

GATEWAY = """apiVersion: gateway.solo.io/v1
kind: Gateway
metadata: {name: grpc, namespace: default}
spec:
  grpcApiListeners: true
  bindAddress: 127.0.0.1
  bindPort: 10000
  proxyNames: [grpc-clients]
  httpGateway: {}
"""


def upstream(name, port=None, spec=None):
    """An Upstream speaking HTTP/2: a static host 127.0.0.1:port, or the
    given spec lines (e.g. "etcd: {prefix: services/echo}")."""
    spec = spec or "static:\n    hosts:\n    - {addr: 127.0.0.1, port: %d}" % port
    return """---
apiVersion: gloo.solo.io/v1
kind: Upstream
metadata: {name: %s, namespace: default}
spec:
  useHttp2: true
  %s
""" % (name, spec)


def ref(up):
    """An upstream reference: "name" (the VirtualService's namespace) or "namespace/name"."""
    ns, _, n = up.rpartition("/")
    return "{name: %s, namespace: %s}" % (n, ns) if ns else "{name: %s}" % n


def vs(name, domain, *routes):
    """routes: (prefix, upstream) or (prefix, {upstream: weight, ...}); an
    upstream is "name" or "namespace/name"."""
    out = """---
apiVersion: gateway.solo.io/v1
kind: VirtualService
metadata: {name: %s, namespace: default}
spec:
  virtualHost:
    domains: [%s]
    routes:
""" % (name, domain)
    for prefix, dest in routes:
        out += "    - matchers: [{prefix: '%s'}]\n      routeAction:\n" % prefix
        if isinstance(dest, dict):
            out += "        multi:\n          destinations:\n"
            for up, w in dest.items():
                out += "          - {weight: %d, destination: {upstream: %s}}\n" % (w, ref(up))
        else:
            out += "        single: {upstream: %s}\n" % ref(dest)
    return out
