#!/usr/bin/python3
"""xDS clients bound to their proxy (issue 12), against the real sluice-xds
with Debian's python3-grpcio as the client and certificates made by the
openssl command:

- mutual TLS: a client certificate with the URI SAN
  spiffe://sluice/ns/<namespace>/proxy/<name> gets that proxy's clusters;
  asking for another proxy (node.metadata.role) is PERMISSION_DENIED; a
  certificate of the right CA without such a SAN, or from another trust
  domain, is UNAUTHENTICATED; no certificate gets nothing;
- bearer tokens (Envoy's initial_metadata "authorization: Bearer ..."): the
  right token gets its proxy's clusters, another proxy's role with it is
  PERMISSION_DENIED, a wrong or missing token UNAUTHENTICATED;
- plaintext without a way to prove identity is refused at start on an
  address that is not loopback (exit 2, the reason said), unless --insecure.
"""
import os
import re
import subprocess
import sys
import tempfile
import threading
import time

import grpc

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "../conformance"))
import xds_python as xp  # noqa: E402  (nats-server, kvtool and cleanup helpers)
import xds_tls as xt  # noqa: E402  (openssl helpers)

CDS = b"type.googleapis.com/envoy.config.cluster.v3.Cluster"
ADS = "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources"
TOKEN_A = "token-for-proxy-a-0123456789"


def ld(field, data):
    """A length-delimited protobuf field (lengths below 128 here)."""
    assert len(data) < 128
    return bytes([field << 3 | 2, len(data)]) + data


def request(role):
    """DiscoveryRequest{node{id, metadata{role}}, type_url=CDS}."""
    value = ld(3, role.encode())  # Value.string_value
    entry = ld(1, b"role") + ld(2, value)
    node = ld(1, b"node-1") + ld(3, ld(1, entry))  # Node.metadata = Struct{fields: [entry]}
    return ld(2, node) + ld(4, CDS)


def first(channel, role, metadata=None):
    """The first response's bytes, or the status code and details. The
    request stream stays open until then: a client that half-closes at once
    may see the server end the stream (OK, no response) before answering."""
    done = threading.Event()

    def requests():
        yield request(role)
        done.wait(10)

    call = channel.stream_stream(ADS)(requests(), timeout=5, metadata=metadata)
    try:
        return next(call)
    except grpc.RpcError as e:
        return (e.code(), e.details())
    finally:
        done.set()
        call.cancel()


def kvtool(nats_url, proxy, *specs):
    subprocess.run([os.path.join(xp.BIN, "test/tools/xds-kvtool"), "--nats-url", nats_url, "--proxy", proxy,
                    "apply", *specs], check=True, stdout=subprocess.DEVNULL)


def iter_then_block(msg):
    """One request, then the stream stays open (ACKs are not needed here)."""
    yield msg
    threading.Event().wait()


def server_subject(port, d):
    """The subject of the certificate sluice-xds presents to a new handshake."""
    p = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, "-CAfile", os.path.join(d, "ca.crt"),
                        "-cert", os.path.join(d, "proxy-a.crt"), "-key", os.path.join(d, "proxy-a.key"),
                        "-alpn", "h2"], input=b"", capture_output=True, timeout=10)
    m = re.search(r"^subject=(.*)$", p.stdout.decode(errors="replace"), re.M)
    return m.group(1) if m else ""


started = []  # (process, log path) of every sluice-xds that started serving


def start_xds(nats_url, d, *args, expect_port=True):
    path = os.path.join(d, "xds-%d.log" % len(xp.procs))
    log = open(path, "w")
    p = subprocess.Popen([os.path.join(xp.BIN, "services/xds/sluice-xds"), "--nats-url", nats_url,
                          "--metrics-addr", "127.0.0.1:0", *args], stdout=subprocess.PIPE, stderr=log)
    xp.procs.append(p)
    if expect_port:
        started.append((p, path))
    if not expect_port:
        return p
    m = re.search(rb"listening on port (\d+)", p.stdout.readline())
    assert m, "sluice-xds did not start"
    return int(m.group(1))


def main():
    d = tempfile.mkdtemp(prefix="sluice-xds-identity-")
    xt.make_ca(d, "ca")
    xt.make_cert(d, "server", "ca", "DNS:localhost,IP:127.0.0.1")
    xt.make_cert(d, "proxy-a", "ca", "URI:spiffe://sluice/ns/edge/proxy/a")
    xt.make_cert(d, "plain", "ca", "DNS:plain")
    xt.make_cert(d, "foreign", "ca", "URI:spiffe://elsewhere/ns/edge/proxy/a")
    nats_url = xp.start_nats(d)
    for proxy, c, port in (("edge~a", "c-a", 1), ("edge~b", "c-b", 2)):
        kvtool(nats_url, proxy, "cluster:" + c, "endpoint:%s:127.0.0.1:%d" % (c, port))
    ca = xt.read(d, "ca.crt")
    opts = (("grpc.ssl_target_name_override", "localhost"),)
    n = 0

    def ok(what):
        nonlocal n
        n += 1
        print("ok %d - %s" % (n, what))

    def mtls(port, who):
        creds = grpc.ssl_channel_credentials(root_certificates=ca, private_key=xt.read(d, who + ".key"),
                                             certificate_chain=xt.read(d, who + ".crt"))
        return grpc.secure_channel("127.0.0.1:%d" % port, creds, options=opts)

    port = start_xds(nats_url, d, "--listen", "0.0.0.0:0", "--tls-cert", os.path.join(d, "server.crt"),
                     "--tls-key", os.path.join(d, "server.key"), "--tls-client-ca", os.path.join(d, "ca.crt"))
    r = first(mtls(port, "proxy-a"), "edge~a")
    assert isinstance(r, bytes) and b"c-a" in r and b"c-b" not in r, r
    ok("mTLS: spiffe://sluice/ns/edge/proxy/a gets proxy edge~a's cluster")
    r = first(mtls(port, "proxy-a"), "edge~b")
    assert r[0] == grpc.StatusCode.PERMISSION_DENIED and "edge~b" in r[1] and "edge~a" in r[1], r
    ok("mTLS: the same client asking for edge~b: PERMISSION_DENIED, naming both")
    r = first(mtls(port, "plain"), "edge~a")
    assert r[0] == grpc.StatusCode.UNAUTHENTICATED and "spiffe://" in r[1], r
    ok("mTLS: a certificate of the CA without a SPIFFE SAN: UNAUTHENTICATED")
    r = first(mtls(port, "foreign"), "edge~a")
    assert r[0] == grpc.StatusCode.UNAUTHENTICATED, r
    ok("mTLS: a SPIFFE id of another trust domain: UNAUTHENTICATED")
    # Certificate rotation: new handshakes get the new server certificate,
    # a stream opened before keeps going (it gets the next change).
    old_call = mtls(port, "proxy-a").stream_stream(ADS)(iter_then_block(request("edge~a")), timeout=30)
    first_old = next(old_call)
    assert b"c-a" in first_old, first_old
    xt.make_cert(d, "server-2", "ca", "DNS:localhost,IP:127.0.0.1")
    for ext in ("crt", "key"):
        os.replace(os.path.join(d, "server-2." + ext), os.path.join(d, "server." + ext))
    deadline = time.time() + 10
    while time.time() < deadline and "CN = server-2" not in server_subject(port, d):
        time.sleep(0.2)
    assert "CN = server-2" in server_subject(port, d), server_subject(port, d)
    ok("mTLS: new server certificate files are served to new handshakes without a restart")
    kvtool(nats_url, "edge~a", "cluster:c-a", "cluster:c-a2", "endpoint:c-a:127.0.0.1:1")
    r = next(old_call)
    assert b"c-a2" in r, r
    old_call.cancel()
    ok("mTLS: a stream opened before the rotation still gets the next change")

    anon = grpc.secure_channel("127.0.0.1:%d" % port, grpc.ssl_channel_credentials(root_certificates=ca),
                               options=opts)
    r = first(anon, "edge~a")
    assert r[0] == grpc.StatusCode.UNAVAILABLE, r
    ok("mTLS: no client certificate: nothing")

    tokens = os.path.join(d, "tokens")
    with open(tokens, "w") as f:
        f.write("# proxy token\nedge~a %s\n" % TOKEN_A)
    port = start_xds(nats_url, d, "--listen", "127.0.0.1:0", "--tokens", tokens)
    plain = grpc.insecure_channel("127.0.0.1:%d" % port)
    r = first(plain, "edge~a", (("authorization", "Bearer " + TOKEN_A),))
    assert isinstance(r, bytes) and b"c-a" in r, r
    ok("token: the right bearer token gets proxy edge~a's cluster")
    r = first(plain, "edge~b", (("authorization", "Bearer " + TOKEN_A),))
    assert r[0] == grpc.StatusCode.PERMISSION_DENIED, r
    ok("token: edge~a's token asking for edge~b: PERMISSION_DENIED")
    r = first(plain, "edge~a", (("authorization", "Bearer " + TOKEN_A[:-1] + "X"),))
    assert r[0] == grpc.StatusCode.UNAUTHENTICATED and TOKEN_A not in r[1], r
    ok("token: a wrong token: UNAUTHENTICATED (the token not echoed)")
    r = first(plain, "edge~a")
    assert r[0] == grpc.StatusCode.UNAUTHENTICATED, r
    ok("token: no token: UNAUTHENTICATED")

    p = start_xds(nats_url, d, "--listen", "0.0.0.0:0", expect_port=False)
    rc = p.wait(timeout=10)
    with open(os.path.join(d, "xds-%d.log" % (len(xp.procs) - 1))) as f:
        log = f.read()
    assert rc == 2 and "not a loopback address" in log, (rc, log)
    ok("plaintext on 0.0.0.0 without identity or --insecure: refused at start (exit 2)")
    port = start_xds(nats_url, d, "--listen", "0.0.0.0:0", "--insecure")
    r = first(grpc.insecure_channel("127.0.0.1:%d" % port), "edge~b")
    assert isinstance(r, bytes) and b"c-b" in r, r
    ok("--insecure: served as asked")
    # after refused streams, rotations and bad clients: each stops cleanly
    xp.stop_all(started)
    ok("every sluice-xds exits 0 on SIGTERM with no sanitizer report")
    print("1..%d" % n)


if __name__ == "__main__":
    xp.run(main)
