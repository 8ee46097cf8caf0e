#!/usr/bin/python3
"""sluice-xds over TLS and mutual TLS, with Debian's python3-grpcio as the
client: certificates made at test time with the openssl command; an ADS
stream over a verified TLS channel gets the clusters in KV; a plaintext
client, a client that does not trust the server's CA, a mutual-TLS server
without a client certificate, or with one from another CA, get nothing."""
import os
import re
import subprocess
import sys
import tempfile

import grpc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import xds_python as xp  # noqa: E402  (nats-server, kvtool and cleanup helpers)

CDS = b"type.googleapis.com/envoy.config.cluster.v3.Cluster"
ADS = "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources"


def ld(field, data):
    """A length-delimited protobuf field (lengths below 128 here)."""
    assert len(data) < 128
    return bytes([field << 3 | 2, len(data)]) + data


# DiscoveryRequest{node{id}, type_url}: a legacy-wildcard CDS request.
REQUEST = ld(2, ld(1, b"tls-node")) + ld(4, CDS)


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def make_ca(d, name):
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", name + ".key", "-out", name + ".crt",
            "-subj", "/CN=" + name, "-days", "1", cwd=d)


def make_cert(d, name, ca, san):
    with open(os.path.join(d, name + ".ext"), "w") as f:
        f.write("subjectAltName=%s\n" % san)
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", name + ".key", "-out", name + ".csr",
            "-subj", "/CN=" + name, cwd=d)
    openssl("x509", "-req", "-in", name + ".csr", "-CA", ca + ".crt", "-CAkey", ca + ".key", "-CAcreateserial",
            "-out", name + ".crt", "-days", "1", "-extfile", name + ".ext", cwd=d)


def read(d, name):
    with open(os.path.join(d, name), "rb") as f:
        return f.read()


started = []  # (process, log path) of every sluice-xds


def start_xds(nats_url, d, *tls):
    path = os.path.join(d, "xds-%d.log" % len(xp.procs))
    log = open(path, "w")
    p = subprocess.Popen([os.path.join(xp.BIN, "services/xds/sluice-xds"), "--nats-url", nats_url, "--listen",
                          "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0", *tls], stdout=subprocess.PIPE, stderr=log)
    xp.procs.append(p)
    started.append((p, path))
    m = re.search(rb"listening on port (\d+)", p.stdout.readline())
    assert m, "sluice-xds did not start"
    return int(m.group(1))


def ads_first_response(channel):
    """Sends one CDS request on an ADS stream; returns the first response's
    bytes, or the gRPC status code when the call fails."""
    call = channel.stream_stream(ADS)(iter([REQUEST]), timeout=5)
    try:
        return next(call)
    except grpc.RpcError as e:
        return e.code()
    finally:
        call.cancel()


def main():
    d = tempfile.mkdtemp(prefix="sluice-xds-tls-")
    make_ca(d, "ca")
    make_ca(d, "other-ca")
    make_cert(d, "server", "ca", "DNS:localhost,IP:127.0.0.1")
    # the client proves the proxy it asks for (sluice-xds --tls-client-ca): the default one
    make_cert(d, "client", "ca", "DNS:client,URI:spiffe://sluice/ns/gloo-system/proxy/gateway-proxy")
    make_cert(d, "stranger", "other-ca", "DNS:stranger")
    nats_url = xp.start_nats(d)
    xp.apply(nats_url, "cluster:c-tls", "endpoint:c-tls:127.0.0.1:1")
    ca = read(d, "ca.crt")
    opts = (("grpc.ssl_target_name_override", "localhost"),)

    def tls_channel(port, root, who=None):
        key = read(d, who + ".key") if who else None
        crt = read(d, who + ".crt") if who else None
        creds = grpc.ssl_channel_credentials(root_certificates=root, private_key=key, certificate_chain=crt)
        return grpc.secure_channel("127.0.0.1:%d" % port, creds, options=opts)

    n = 0

    def ok(what):
        nonlocal n
        n += 1
        print("ok %d - %s" % (n, what))

    # TLS: the server's certificate, no client certificate asked for.
    port = start_xds(nats_url, d, "--tls-cert", os.path.join(d, "server.crt"),
                     "--tls-key", os.path.join(d, "server.key"))
    r = ads_first_response(tls_channel(port, ca))
    assert isinstance(r, bytes) and CDS in r and b"c-tls" in r, r
    ok("TLS: an ADS stream over a verified channel gets cluster c-tls")
    r = ads_first_response(grpc.insecure_channel("127.0.0.1:%d" % port))
    assert r == grpc.StatusCode.UNAVAILABLE, r
    ok("TLS: a plaintext client gets nothing (UNAVAILABLE)")
    r = ads_first_response(tls_channel(port, read(d, "other-ca.crt")))
    assert r == grpc.StatusCode.UNAVAILABLE, r
    ok("TLS: a client that does not trust the server's CA gets nothing")

    # Mutual TLS: client certificates signed by ca are required.
    port = start_xds(nats_url, d, "--tls-cert", os.path.join(d, "server.crt"),
                     "--tls-key", os.path.join(d, "server.key"), "--tls-client-ca", os.path.join(d, "ca.crt"))
    r = ads_first_response(tls_channel(port, ca, "client"))
    assert isinstance(r, bytes) and b"c-tls" in r, r
    ok("mTLS: a client certificate from the CA gets cluster c-tls")
    r = ads_first_response(tls_channel(port, ca))
    assert r == grpc.StatusCode.UNAVAILABLE, r
    ok("mTLS: no client certificate, nothing")
    r = ads_first_response(tls_channel(port, ca, "stranger"))
    assert r == grpc.StatusCode.UNAVAILABLE, r
    ok("mTLS: a client certificate from another CA, nothing")
    xp.stop_all(started)
    ok("every sluice-xds stops on SIGTERM: exit 0, no sanitizer report")
    print("1..%d" % n)


if __name__ == "__main__":
    xp.run(main)
