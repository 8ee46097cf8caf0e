#!/usr/bin/env python3
"""extract.py - the fields a user can write in Gloo's gloo.solo.io/v1 and
gateway.solo.io/v1 kinds, from Gloo's own protos, as test/data/gloo-v1-fields.tsv.

Run by hand when moving to a newer Gloo (it needs git checkouts; the test that
reads its output needs nothing but the committed file):

  tools/gloo-api/extract.py --gloo GITDIR --solo-kit GITDIR --solo-apis GITDIR \\
      --skv2 GITDIR --protoc-gen-ext GITDIR --validate DIR [--out FILE]

GITDIRs are git directories of solo-io/gloo, solo-kit, solo-apis (branch
gloo-main), skv2 and protoc-gen-ext; --validate is a directory holding
validate/validate.proto (envoyproxy/protoc-gen-validate). protoc writes a
descriptor set of the kinds' files and their imports; every field reachable
from a kind's spec is one line: its path, the message that declares it, what
it holds, flags and enum values.
"""
import argparse
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import protodesc  # noqa: E402

GLOO = "github.com/solo-io/gloo/"
# kind, Gloo message, file
KINDS = [
    ("Gateway", "gateway.solo.io.Gateway", "projects/gateway/api/v1/gateway.proto"),
    ("VirtualService", "gateway.solo.io.VirtualService", "projects/gateway/api/v1/virtual_service.proto"),
    ("RouteTable", "gateway.solo.io.RouteTable", "projects/gateway/api/v1/route_table.proto"),
    ("MatchableHttpGateway", "gateway.solo.io.MatchableHttpGateway",
     "projects/gateway/api/v1/matchable_http_gateway.proto"),
    ("MatchableTcpGateway", "gateway.solo.io.MatchableTcpGateway",
     "projects/gateway/api/v1/matchable_tcp_gateway.proto"),
    ("Upstream", "gloo.solo.io.Upstream", "projects/gloo/api/v1/upstream.proto"),
    ("UpstreamGroup", "gloo.solo.io.UpstreamGroup", "projects/gloo/api/v1/proxy.proto"),
    ("Settings", "gloo.solo.io.Settings", "projects/gloo/api/v1/settings.proto"),
    ("Secret", "gloo.solo.io.Secret", "projects/gloo/api/v1/secret.proto"),
]
# A resource's own fields that are not the user's spec: solo-kit metadata and
# the statuses the control plane writes.
NOT_SPEC = {"metadata", "namespacedStatuses", "status"}


def git_head(gitdir, rev="HEAD"):
    return subprocess.check_output(["git", "--git-dir", gitdir, "rev-parse", rev], text=True).strip()


def unpack(gitdir, rev, paths, dest):
    os.makedirs(dest, exist_ok=True)
    archive = subprocess.Popen(["git", "--git-dir", gitdir, "archive", rev] + paths, stdout=subprocess.PIPE)
    subprocess.check_call(["tar", "-x", "-C", dest], stdin=archive.stdout)
    if archive.wait() != 0:
        sys.exit("git archive failed in " + gitdir)


def rows(ds, kind, msg_name):
    """Every field path of one kind, depth first in declaration order."""
    out = []

    def walk(msg, prefix, stack):
        for f in msg.fields:
            if prefix == kind + ".spec." and f.json_name in NOT_SPEC:
                continue
            k = ds.kind(f)
            flags = []
            oneof = ds.oneof_name(msg, f)
            if oneof:
                flags.append("oneof=" + oneof)
            if f.deprecated:
                flags.append("deprecated")
            elem = f
            if k == "map":
                elem = ds.map_value(f)
                path = prefix + f.json_name + "{}"
                k = "map<%s>" % ds.kind(elem)
            elif f.repeated:
                path = prefix + f.json_name + "[]"
            else:
                path = prefix + f.json_name
            ek = ds.kind(elem)
            values = ""
            if ek.startswith("enum:"):
                values = ",".join(ds.enums[ek[5:]].values)
            child = None
            if ek.startswith("message:"):
                name = ek[8:]
                if name in stack:
                    flags.append("recursive")
                else:
                    child = ds.messages[name]
            out.append((path, msg.full_name, f.name, k, ",".join(flags), values))
            if child is not None:
                walk(child, path + ".", stack + [child.full_name])

    root = ds.messages[msg_name]
    walk(root, kind + ".spec.", [msg_name])
    return out


def main():
    ap = argparse.ArgumentParser()
    for a in ("gloo", "solo-kit", "solo-apis", "skv2", "protoc-gen-ext"):
        ap.add_argument("--" + a, required=True)
    ap.add_argument("--validate", required=True)
    ap.add_argument("--solo-apis-rev", default="gloo-main")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "../../test/data/gloo-v1-fields.tsv"))
    a = ap.parse_args()

    revs = {
        "solo-io/gloo": git_head(a.gloo),
        "solo-io/solo-kit": git_head(a.solo_kit),
        "solo-io/solo-apis": git_head(a.solo_apis, a.solo_apis_rev),
        "solo-io/skv2": git_head(a.skv2),
        "solo-io/protoc-gen-ext": git_head(a.protoc_gen_ext),
    }
    with tempfile.TemporaryDirectory() as tmp:
        inc = os.path.join(tmp, "inc")
        gh = os.path.join(inc, "github.com/solo-io")
        unpack(a.gloo, "HEAD", ["projects/gloo/api", "projects/gateway/api"], os.path.join(gh, "gloo"))
        unpack(a.solo_kit, "HEAD", ["api"], os.path.join(gh, "solo-kit"))
        unpack(a.solo_apis, a.solo_apis_rev, ["api"], os.path.join(gh, "solo-apis"))
        unpack(a.skv2, "HEAD", ["api"], os.path.join(gh, "skv2"))
        unpack(a.protoc_gen_ext, "HEAD", ["extproto"], inc)
        desc = os.path.join(tmp, "gloo.desc")
        subprocess.check_call(
            ["protoc", "-I" + inc, "-I" + os.path.join(gh, "gloo/projects/gloo/api/external"),
             "-I" + os.path.join(gh, "solo-kit/api/external"), "-I" + a.validate,
             "--include_imports", "--descriptor_set_out=" + desc]
            + sorted({GLOO + f for _, _, f in KINDS}),
            stderr=subprocess.DEVNULL)
        ds = protodesc.DescriptorSet(desc)

    lines = [
        "# Every field a user can write in Gloo's v1 kinds (the spec; metadata and",
        "# statuses left out), extracted from Gloo's protos by tools/gloo-api/extract.py.",
        "# Do not edit: re-run the tool on a newer Gloo instead.",
    ]
    lines += ["# %s %s" % (r, c) for r, c in revs.items()]
    lines.append("# columns: path, declaring message, proto field, type, flags, enum values")
    lines.append("# path: <Kind>.spec.<jsonName>..., [] a repeated field, {} a map's values")
    n = 0
    for kind, msg, _ in KINDS:
        for r in rows(ds, kind, msg):
            lines.append("\t".join(r))
            n += 1
    with open(a.out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("%s: %d fields" % (a.out, n))


if __name__ == "__main__":
    main()
