#!/usr/bin/env python3
"""Apply a VirtualService through Sluice's NATS API and print its status.

    pip install -r requirements.txt          # nats-py, nkeys, protobuf
    python3 hello.py [--nats-url URL] [--name NAME] [--namespace NS]

Credentials: the NATS user nkey seed file in env NATS_NKEY; without it,
<state>/nats-auth/client.nk when that file exists, <state> being
$SLUICE_STATE, else .state in the current directory or the repository's
(where `make run` provisions it: the `client` role, in the NATS account
CLIENTS, may request sluice.api.apply / sluice.api.delete, subscribe to
sluice.status.> and _INBOX.> and read the sluice_status bucket through the
JetStream API prefix $JS.sluice.API); with none, no credentials
(a NATS without authentication).

1. Subscribes to sluice.status.VirtualService.<ns>.<name> (a packed
   sluice.v1.Status, published by sluice-reporter on every change).
2. Sends ../hello.yaml to sluice.api.apply (request/reply, Content-Type
   application/yaml) and prints the ApplyResponse (protobuf).
3. Prints the first status event; when the apply changed nothing (so no new
   status is published) it reads the current one from the KV bucket
   sluice_status instead. With --settled, a Pending status (the reporter's
   "waiting for the translator") is followed until the next one.

Protobuf decoding without generated code: protoc (Debian protobuf-compiler)
turns proto/sluice/v1/*.proto into a descriptor set, and the protobuf runtime
builds message classes from it. Exit status 0 when the apply was accepted and
a status was seen (with --settled: a status other than Pending).
"""
import argparse
import asyncio
import os
import subprocess
import sys
import tempfile

import nats
from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory

HERE = os.path.dirname(os.path.abspath(__file__))
STATES = {0: "Pending", 1: "Accepted", 2: "Rejected", 3: "Warning"}


def load_messages(proto_dir):
    """sluice.v1 message classes from the .proto files, through protoc."""
    with tempfile.NamedTemporaryFile(suffix=".pb") as f:
        subprocess.run([os.environ.get("PROTOC", "protoc"), "-I", proto_dir, "--include_imports",
                        "--descriptor_set_out=" + f.name, "sluice/v1/events.proto"], check=True)
        fds = descriptor_pb2.FileDescriptorSet.FromString(f.read())
    pool = descriptor_pool.DescriptorPool()
    for fd in fds.file:
        pool.Add(fd)
    return {n: message_factory.GetMessageClass(pool.FindMessageTypeByName("sluice.v1." + n))
            for n in ("ApplyResponse", "Status")}


# Sluice's JetStream API as the clients' NATS account imports it
# (sluice/natsauth.h, SL_NATSAUTH_CLIENT_JS_PREFIX); a NATS without
# authentication has no accounts and the standard prefix.
JS_PREFIX = "$JS.sluice.API"


def nkey_seed_file():
    """The seed file to authenticate with (module docstring), or None."""
    if os.environ.get("NATS_NKEY"):
        return os.environ["NATS_NKEY"]
    state = os.environ.get("SLUICE_STATE")
    dirs = [state] if state else [".state", os.path.join(HERE, "..", "..", "..", ".state")]
    for d in dirs:
        path = os.path.join(d, "nats-auth", "client.nk")
        if os.path.isfile(path):
            return path
    return None


def show_status(Status, data):
    st = Status.FromString(data)
    print(f"status: {STATES.get(st.state, st.state)} reportedBy={st.reported_by or '-'}"
          + (f" reason={st.reason!r}" if st.reason else ""))
    print("  " + json_format.MessageToJson(st, indent=None, always_print_fields_with_no_presence=True))
    return st


async def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nats-url", default=os.environ.get("NATS_URL", "nats://127.0.0.1:4222"))
    ap.add_argument("--name", default="hello-python")
    ap.add_argument("--namespace", default="default")
    ap.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for the reply and the status")
    ap.add_argument("--settled", action="store_true",
                    help="after a Pending status, wait for the next one (Accepted, Warning or Rejected)")
    ap.add_argument("--proto-dir", default=os.path.join(HERE, "..", "..", "..", "proto"))
    a = ap.parse_args()
    msgs = load_messages(a.proto_dir)

    with open(os.path.join(HERE, "..", "hello.yaml")) as f:
        doc = f.read().replace("NAMESPACE", a.namespace).replace("NAME", a.name)

    seed = nkey_seed_file()
    if seed and not os.path.isfile(seed):
        print(f"error: NATS_NKEY={seed}: no such file", file=sys.stderr)
        return 1
    print(f"nats: {a.nats_url} " + (f"as the nkey in {seed}" if seed else "without credentials"), file=sys.stderr)
    async def nats_error(e):  # each error nats-py meets (refused, permissions...): one line, no traceback
        print("nats: " + str(e).removeprefix("nats: "), file=sys.stderr)

    try:
        # A server that refuses us (its 'Authorization Violation') or is not
        # there is an error within seconds, not minutes of retries: no
        # reconnecting, one more try (after 2 s) when the connection fails.
        nc = await nats.connect(a.nats_url, nkeys_seed=seed, error_cb=nats_error,
                                allow_reconnect=False, max_reconnect_attempts=1)
    except (OSError, asyncio.TimeoutError, nats.errors.Error) as e:
        print(f"error: cannot connect to {a.nats_url}: {e}", file=sys.stderr)
        return 1
    try:
        subject = f"sluice.status.VirtualService.{a.namespace}.{a.name}"
        sub = await nc.subscribe(subject)  # before applying, so no event is missed

        reply = await nc.request("sluice.api.apply", doc.encode(), timeout=a.timeout,
                                 headers={"Content-Type": "application/yaml",
                                          "Sluice-Filename": "hello.yaml", "Sluice-Source": "example-python"})
        resp = msgs["ApplyResponse"].FromString(reply.data)
        print(f"apply: accepted={resp.accepted}" + (f" error={resp.error!r}" if resp.error else ""))
        for r in resp.results:
            what = "unchanged" if r.unchanged else f"resourceVersion={r.resource_version}"
            print(f"  {r.resource.kind} {r.resource.namespace}/{r.resource.name}: "
                  f"{STATES.get(r.state, r.state)} {what}")
            for e in list(r.errors) + list(r.warnings):
                print(f"    {e}")
        if not resp.accepted:
            return 1

        loop = asyncio.get_running_loop()
        deadline = loop.time() + a.timeout

        async def next_event():
            while True:  # a deleted status is an event without body: skip it
                msg = await sub.next_msg(timeout=max(deadline - loop.time(), 0.001))
                if msg.data:
                    print(f"status event on {msg.subject}")
                    return show_status(msgs["Status"], msg.data)

        st = None
        try:
            if not all(r.unchanged for r in resp.results):
                st = await next_event()
            if st is None:
                # Nothing changed, so no new status is published: read the stored one.
                kv = await nc.jetstream(prefix=JS_PREFIX if seed else "$JS.API").key_value("sluice_status")
                entry = await kv.get(f"VirtualService.{a.namespace}.{a.name}")
                print(f"stored status of VirtualService {a.namespace}/{a.name}")
                st = show_status(msgs["Status"], entry.value)
            while a.settled and st.state == 0:  # Pending: wait for the translator's verdict
                st = await next_event()
        except (nats.errors.TimeoutError, nats.js.errors.KeyNotFoundError):
            print(f"no {'settled ' if a.settled else ''}status for VirtualService {a.namespace}/{a.name} "
                  f"within {a.timeout}s (are sluice-reporter and sluice-translator running?)", file=sys.stderr)
            return 1
        return 0
    finally:
        await nc.close()


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
