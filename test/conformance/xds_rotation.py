#!/usr/bin/python3
"""Certificates rotated under running processes, over mutual TLS: a real xDS
client (grpc-go's resolver, bootstrap channel_creds "tls" with the proxy's
client certificate, re-read every second) and sluice-xds, both started with
certificates of one CA (`sluicectl certs`), are given files of a new CA by
renaming them over the old ones. Neither is restarted. sluice-xds takes up
its new files at the next handshake (the old client certificate is refused
from then on); the client reconnects when sluice-xds ages its connection out
(--max-connection-age) and presents its new certificate, since nothing else
is accepted any more; a route change made after that reaches it."""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import grpc

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "../e2e"))
import xds_python as xp  # noqa: E402  (nats-server, xds-kvtool, back-ends, cleanup)
from xds_tls import ads_first_response, start_xds, started  # noqa: E402
from sluice_system import GoClient, until  # noqa: E402  (the grpc-go client, one call per line)

PROXY = "gloo-system~gateway-proxy"  # sluice-xds' default proxy: the nodes here name no role


def certs(d):
    """A new CA in d, sluice-xds' certificate and the proxy's (sluicectl certs)."""
    p = subprocess.run([os.path.join(xp.BIN, "services/sluicectl/sluicectl"), "certs", d, "--proxy", PROXY],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr


def install(src, dst):
    """The three files of src into dst, each written beside its final name
    and renamed over it, key first (as an operator, or the kubelet, does)."""
    os.makedirs(dst, exist_ok=True)
    for f in ("tls.key", "tls.crt", "ca.crt"):
        shutil.copy(os.path.join(src, f), os.path.join(dst, "." + f + ".new"))
        os.replace(os.path.join(dst, "." + f + ".new"), os.path.join(dst, f))


def tls_channel(port, ca, who):
    """python3-grpcio over TLS with who's certificate (a directory)."""
    creds = grpc.ssl_channel_credentials(root_certificates=open(ca, "rb").read(),
                                         private_key=open(os.path.join(who, "tls.key"), "rb").read(),
                                         certificate_chain=open(os.path.join(who, "tls.crt"), "rb").read())
    return grpc.secure_channel("127.0.0.1:%d" % port, creds, options=(("grpc.ssl_target_name_override", "sluice-xds"),))


def main():
    d = tempfile.mkdtemp(prefix="sluice-xds-rotation-")
    n = 0

    def ok(what):
        nonlocal n
        n += 1
        print("ok %d - %s" % (n, what), flush=True)

    old, new, live = os.path.join(d, "old"), os.path.join(d, "new"), os.path.join(d, "live")
    certs(old)
    certs(new)
    install(os.path.join(old, "xds"), os.path.join(live, "xds"))
    install(os.path.join(old, "proxies", PROXY), os.path.join(live, "proxy"))

    nats_url = xp.start_nats(d)
    servers = {b: xp.backend(b) for b in ("alpha", "beta")}
    ep = {b: "127.0.0.1:%d" % servers[b][1] for b in servers}
    base = ["cluster:c-alpha", "cluster:c-beta", "endpoint:c-alpha:" + ep["alpha"], "endpoint:c-beta:" + ep["beta"]]
    xp.apply(nats_url, "listener:echo:echo-routes", "route:echo-routes:c-alpha", *base)
    lx = os.path.join(live, "xds")
    port = start_xds(nats_url, d, "--tls-cert", os.path.join(lx, "tls.crt"), "--tls-key", os.path.join(lx, "tls.key"),
                     "--tls-client-ca", os.path.join(lx, "ca.crt"),
                     "--max-connection-age", "2s", "--max-connection-age-grace", "1s")
    log = started[-1][1]

    lp = os.path.join(live, "proxy")
    node = "rotation-%d" % os.getpid()
    boot = os.path.join(d, "bootstrap.json")
    with open(boot, "w") as f:
        json.dump({"xds_servers": [{"server_uri": "127.0.0.1:%d" % port, "server_features": ["xds_v3"],
                                    "channel_creds": [{"type": "tls", "config": {
                                        "ca_certificate_file": os.path.join(lp, "ca.crt"),
                                        "certificate_file": os.path.join(lp, "tls.crt"),
                                        "private_key_file": os.path.join(lp, "tls.key"),
                                        "refresh_interval": "1s"}}]}],
                   "node": {"id": node, "locality": {"zone": "local"}}}, f)
    c = GoClient(boot, d)
    until(lambda: c.try_call("echo") == "alpha", "echo -> alpha over mutual TLS (first CA)")
    ok("grpc-go over mutual TLS with the proxy's certificate of the first CA: echo reaches alpha")

    # The new CA's files renamed over the old ones, under both processes.
    install(os.path.join(new, "xds"), lx)
    install(os.path.join(new, "proxies", PROXY), lp)
    old_id, new_id = os.path.join(old, "proxies", PROXY), os.path.join(new, "proxies", PROXY)
    until(lambda: ads_first_response(tls_channel(port, os.path.join(old, "ca.crt"), old_id))
          == grpc.StatusCode.UNAVAILABLE, "the old CA's client refused")
    assert isinstance(ads_first_response(tls_channel(port, os.path.join(new, "ca.crt"), new_id)), bytes)
    ok("sluice-xds took up the new CA's files without a restart: the old certificate is refused, the new one served")

    # The client's second stream opened from now on is on a connection made
    # after sluice-xds took up the new CA (the first might have been set up
    # just before): it presented the new certificate.
    mark = len(open(log, errors="replace").read())
    opened = re.compile(r"stream opened.*node=\"?%s" % re.escape(node))
    t0 = time.time()
    until(lambda: len(opened.findall(open(log, errors="replace").read()[mark:])) >= 2,
          "the client's streams opened again after the rotation", 30)
    ok("the client reconnected with the new CA's certificate, not restarted (%.1f s after the rotation; "
       "sluice-xds ages connections out after 2 s)" % (time.time() - t0))
    xp.apply(nats_url, "listener:echo:echo-routes", "route:echo-routes:c-beta", *base)
    until(lambda: c.try_call("echo") == "beta", "echo -> beta after the rotation")
    ok("a route change after the rotation reaches the client: echo reaches beta")
    c.close()
    xp.stop_all(started)
    for srv, _ in servers.values():
        srv.stop(0)
    ok("sluice-xds stops on SIGTERM: exit 0, no sanitizer report")
    print("1..%d" % n)


if __name__ == "__main__":
    xp.run(main)
