#!/usr/bin/env python3
"""fieldtable.py - Gloo's v1 fields against Sluice's API: docs/api-fields.md.

Every field a Gloo user can write (test/data/gloo-v1-fields.tsv, extracted
from Gloo's protos by extract.py) is looked up in Sluice's protos (a
descriptor set of proto/sluice/v1, made with protoc) and in the curated
decisions (test/data/gloo-v1-curated.tsv), and comes out supported, differs
or refused:

  fieldtable.py --write   rewrite docs/api-fields.md
  fieldtable.py --check   fail when docs/api-fields.md is stale, when a Gloo
                          field is neither in Sluice's protos nor curated, or
                          when a curated line no longer fits the protos

Options: --source DIR (the checkout, default: this file's), --protoc PROG,
-I DIR (more include directories for protoc), --descriptor-set FILE (use
this instead of running protoc).

Curated lines: STATUS <tab> SELECTOR <tab> REASON.
  SELECTOR  a path (VirtualService.spec.virtualHost.routes.options.waf; []
            and {} may be left out), or MESSAGE:field[.field...] (the field
            of that Gloo message wherever it is reached).
  STATUS    absent   Sluice's API has no such field: refused as unknown (the
                     whole subtree); an error once the protos have it
            refused  Sluice's API has it but the translator refuses it (the
                     whole subtree)
            differs  accepted, behaviour differs (the reason says how)
            note     supported, with a note
            (differs and note decide their own path only; on a field whose
            type differs from Gloo's they say the YAML reads the same)
The deepest selector that matches a path decides it.
"""
import argparse
import difflib
import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import protodesc  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
DOC = "docs/api-fields.md"
FIELDS = "test/data/gloo-v1-fields.tsv"
CURATED = "test/data/gloo-v1-curated.tsv"
STATUSES = ("absent", "refused", "differs", "note")
PLUGINS = "common/translate/src/plugins"
# The option messages whose set fields the translator refuses unless a
# plugin's `fields` table names them (tr_check_fields in cluster.c,
# listener.c, vhost.c, route.c).
CHECKED = ("UpstreamSpec", "ListenerOptions", "HttpListenerOptions", "VirtualHostOptions", "RouteOptions",
           "DestinationSpec")


def plugin_fields(source):
    """<Message>.<proto field> of every CHECKED field a plugin implements: the
    string literals of the plugins' `fields` tables."""
    pat = re.compile(r'"((?:%s)\.[a-z0-9_]+)"' % "|".join(CHECKED))
    out = set()
    d = os.path.join(source, PLUGINS)
    for name in sorted(os.listdir(d)):
        if name.endswith(".c"):
            with open(os.path.join(d, name)) as f:
                out.update(pat.findall(f.read()))
    return out


class Row:
    __slots__ = ("path", "owner", "field", "kind", "flags", "values", "comps", "parent",
                 "status", "note", "rule", "rule_at", "shown")

    def __init__(self, cols):
        self.path, self.owner, self.field, self.kind, self.flags, self.values = cols
        self.comps = self.path.split(".")
        self.parent = ".".join(self.comps[:-1])
        self.status = self.note = ""
        self.rule = None
        self.rule_at = -1
        self.shown = True


def bare(comp):
    return comp[:-2] if comp.endswith("[]") or comp.endswith("{}") else comp


def load_gloo(path):
    header, rows = [], []
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if line.startswith("#"):
                header.append(line[1:].strip())
            elif line:
                rows.append(Row(line.split("\t")))
    return header, rows


class Rule:
    def __init__(self, lineno, status, selector, reason):
        self.lineno, self.status, self.selector, self.reason = lineno, status, selector, reason
        self.used = self.reported = False
        if ":" in selector:
            self.message, rest = selector.split(":", 1)
            self.comps = [bare(c) for c in rest.split(".")]
        else:
            self.message = None
            self.comps = [bare(c) for c in selector.split(".")]


def load_curated(path, errors):
    rules = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line.strip() or line.startswith("#"):
                continue
            cols = line.split("\t")
            if len(cols) != 3 or cols[0] not in STATUSES or not cols[2].strip():
                errors.append("%s:%d: want STATUS<tab>SELECTOR<tab>REASON, STATUS one of %s"
                              % (CURATED, n, ", ".join(STATUSES)))
                continue
            rules.append(Rule(n, cols[0], cols[1], cols[2].strip()))
    return rules


def sluice_descriptors(a):
    if a.descriptor_set:
        return protodesc.DescriptorSet(a.descriptor_set)
    proto = os.path.join(a.source, "proto")
    files = sorted(os.path.join("sluice/v1", f) for f in os.listdir(os.path.join(proto, "sluice/v1"))
                   if f.endswith(".proto"))
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "sluice.desc")
        cmd = [a.protoc, "-I" + proto] + ["-I" + i for i in a.include] + [
            "--include_imports", "--descriptor_set_out=" + out] + files
        subprocess.check_call(cmd)
        return protodesc.DescriptorSet(out)


def compatible(gk, sk):
    """Whether a YAML value Gloo's field takes reads the same in Sluice's."""
    if gk.startswith("message:") and sk.startswith("message:"):
        return True
    if gk.startswith("enum:") and sk.startswith("enum:"):
        return True
    return gk == sk


class Sluice:
    """Looks Gloo's paths up in Sluice's messages."""

    def __init__(self, ds):
        self.ds = ds
        self.cache = {}

    def lookup(self, comps):
        """(state, message, detail, kind, key) for one path: state 'ok'
        (message: Sluice's message for the field's value, or None), 'absent'
        or 'mismatch' (detail: what Sluice has); kind: Sluice's element kind;
        key: <declaring message>.<proto field>, the translator's name for it."""
        key = ".".join(comps)
        if key in self.cache:
            return self.cache[key]
        res = ("absent", None, "", "", "")
        if len(comps) == 1:
            msg = self.ds.messages.get("sluice.v1." + comps[0])
            if msg is not None:
                res = ("ok", msg, "", "message:" + msg.full_name, "")
            self.cache[key] = res
            return res
        state, msg = self.lookup(comps[:-1])[:2]
        if state == "ok" and msg is not None:
            name, suffix = bare(comps[-1]), comps[-1][len(bare(comps[-1])):]
            f = next((x for x in msg.fields if x.json_name == name), None) or \
                next((x for x in msg.fields if x.name == name), None)
            if f is not None:
                k = self.ds.kind(f)
                elem = self.ds.map_value(f) if k == "map" else f
                shape = "{}" if k == "map" else "[]" if f.repeated else ""
                ek = self.ds.kind(elem)
                child = self.ds.messages[ek[8:]] if ek.startswith("message:") else None
                if shape != suffix:
                    res = ("mismatch", None, "Sluice's is %s" % (
                        "a map" if shape == "{}" else "a list" if shape else "a single value"), ek, "")
                else:
                    res = ("ok", child, "", ek, msg.full_name.split(".")[-1] + "." + f.name)
        self.cache[key] = res
        return res


def classify(rows, rules, sl, implemented, errors):
    """Decides every row (status, note); errors get what the test fails on.
    implemented: the translator's plugin field names (<Message>.<field>)."""
    by_path = {r.path: r for r in rows}
    unimplemented = {}
    norm = {}
    for r in rows:
        norm[".".join(bare(c) for c in r.comps)] = r
    path_rules, msg_rules = {}, {}
    for rule in rules:
        if rule.message:
            msg_rules.setdefault((rule.message, rule.comps[0]), []).append(rule)
        else:
            path_rules.setdefault(".".join(rule.comps), []).append(rule)
    # A MESSAGE:field selector matches where the row of a path's prefix (its
    # declaring message) is that message's field.
    for r in rows:
        bcomps = [bare(c) for c in r.comps]
        matches = []  # (depth of the last component matched, selector length, rule)
        for i in range(1, len(r.comps)):
            prefix = ".".join(bcomps[:i + 1])
            for rule in path_rules.get(prefix, ()):
                matches.append((i, i + 1, rule))
            pr = norm.get(prefix)
            for rule in msg_rules.get((pr.owner, bcomps[i]), ()) if pr else ():
                end = i + len(rule.comps) - 1
                if end < len(bcomps) and bcomps[i:end + 1] == rule.comps:
                    matches.append((end, len(rule.comps), rule))
        matches.sort(key=lambda m: (-m[0], -m[1], m[2].lineno))
        last = len(r.comps) - 1
        state, _, detail, sk, key = sl.lookup(r.comps)
        # Absent and refused lines cover a subtree; differs and note decide
        # their own path (and keep the shallower lines off the fields under
        # it); a path Sluice lacks needs absent or refused.
        if state == "absent":
            matches = [m for m in matches if m[2].status in ("absent", "refused")]
        best, best_at = (matches[0][2], matches[0][0]) if matches else (None, -1)
        if best is not None and best_at != last and best.status in ("differs", "note"):
            best, best_at = None, -1
        r.rule, r.rule_at = best, best_at
        here = best is not None and best_at == last
        if state == "ok":
            gk = r.kind[4:-1] if r.kind.startswith("map<") else r.kind
            if not compatible(gk, sk):
                state, detail = "mismatch", "Sluice's is %s" % sk.split(".")[-1]
        if best is not None:
            best.used = True
        if state == "ok":
            if here and best.status == "absent" and not best.reported:
                best.reported = True
                errors.append("%s:%d: %s: Sluice's protos now have %s (change or drop the line)"
                              % (CURATED, best.lineno, best.selector, r.path))
            if here and best.status in ("absent", "refused"):
                r.status, r.note = "refused", best.reason
            elif here and best.status == "differs":
                r.status, r.note = "differs", best.reason
            elif best is not None and best.status == "refused":
                r.status, r.note = "refused", best.reason
            else:
                r.status = "supported"
                r.note = best.reason if here and best.status == "note" else ""
                missing = []
                if r.values and sk.startswith("enum:"):
                    have = set(sl.ds.enums[sk[5:]].values)
                    missing = [v for v in r.values.split(",") if v not in have]
                if missing:
                    r.status = "differs"
                    r.note = ("values Sluice does not take: %s" % ", ".join(missing)
                              + ("; " + r.note if r.note else ""))
            if not here:
                r.rule, r.rule_at = (best, best_at) if r.status == "refused" else (None, -1)
            msg_name = key.split(".")[0]
            if r.status != "refused" and msg_name in CHECKED and key not in implemented:
                r.status = "refused"
                r.note = ("Sluice's API has it but no translator plugin implements it yet "
                          "(an error naming the field)")
                r.rule = unimplemented.setdefault(key, Rule(0, "refused", key, r.note))
        else:
            what = "not in Sluice's protos" if state == "absent" else detail
            if best is None:
                p = by_path.get(r.parent)
                if p is None or p.note != "(undecided)":
                    errors.append("%s: %s, and no line of %s decides it (absent, refused, or for a type "
                                  "that reads the same, differs or note)" % (r.path, what, CURATED))
                r.status, r.note = "refused", "(undecided)"
            elif here and best.status == "note":
                r.status, r.note = "supported", best.reason
            elif here and best.status == "differs":
                r.status, r.note = "differs", best.reason
            else:
                r.status, r.note = "refused", best.reason
    # A refused subtree shows as its root only.
    for r in rows:
        p = by_path.get(r.parent)
        if p is not None and r.status == "refused" and p.status == "refused" and r.rule is not None \
                and r.rule is p.rule:
            r.shown = False
        elif p is not None and not p.shown and r.rule is not None and r.rule is p.rule:
            r.shown = False
    for rule in rules:
        if not rule.used:
            errors.append("%s:%d: %s decides no Gloo field (it matches none, or a more specific or earlier line wins)" % (CURATED, rule.lineno, rule.selector))


def short(full):
    """retries.options.gloo.solo.io.RetryPolicy -> (RetryPolicy, retries.options.gloo.solo.io)
    (nested messages keep their parent: Settings.VaultSecrets)."""
    parts = full.split(".")
    i = next((j for j, p in enumerate(parts) if p[:1].isupper()), len(parts) - 1)
    return ".".join(parts[i:]), ".".join(parts[:i])


def heading(full):
    name, pkg = short(full)
    return "`%s` (%s)" % (name, pkg)


def anchor(full):
    text = heading(full).lower()
    return re.sub(r"[^a-z0-9 _-]", "", text).replace(" ", "-")


def md(s):
    return s.replace("|", "\\|")


def render(header, rows, sl, kinds_order):
    gloo_rev = next((h.split()[1] for h in header if h.startswith("solo-io/gloo ")), "?")
    total = {"supported": 0, "differs": 0, "refused": 0}
    per_kind = {}
    for r in rows:
        total[r.status] += 1
        per_kind.setdefault(r.comps[0], {"supported": 0, "differs": 0, "refused": 0})[r.status] += 1
    # Messages in the order a reader meets them: depth first through the kinds.
    msg_order, msg_rows, msg_paths = [], {}, {}
    for r in rows:
        if not r.shown:
            continue
        if r.owner not in msg_rows:
            msg_order.append(r.owner)
            msg_rows[r.owner] = {}
            msg_paths[r.owner] = []
        if r.parent not in msg_paths[r.owner]:
            msg_paths[r.owner].append(r.parent)
        msg_rows[r.owner].setdefault(r.field, []).append(r)
    out = []
    w = out.append
    w("# Gloo's v1 API, field by field")
    w("")
    w("<!-- Generated by tools/gloo-api/fieldtable.py --write from %s," % FIELDS)
    w("     %s and proto/sluice/v1; test lint_api_fields fails when it is stale. -->" % CURATED)
    w("")
    w("Every field a user can write in Gloo's `gloo.solo.io/v1` and `gateway.solo.io/v1` kinds")
    w("(solo-io/gloo `%s`), recursively through the options messages, and what" % gloo_rev)
    w("Sluice does with it ([api.md](api.md) describes the API as a whole):")
    w("")
    w("- **supported**: Sluice's API takes the field with Gloo's name and type, and a")
    w("  translator plugin serves it. Where [api.md's table](api.md#checked-against-gloos-translator)")
    w("  lists a field, its behaviour was compared with Gloo's plugin case by case; elsewhere")
    w("  \"supported\" says the field is served the way Gloo's API describes it, not that every")
    w("  edge case was compared;")
    w("- **differs**: accepted, but Sluice does something else (the note says what and why);")
    w("- **refused**: a document that sets it is rejected, naming the field: an unknown")
    w("  field when Sluice's API lacks it, a translator error when it has it but cannot serve it.")
    w("")
    w("Paths are Gloo's YAML (`[]` a list, `{}` a map's values); a Secret's fields are at the")
    w("top level in Gloo's file layout, under `spec` in Sluice's, and both are taken. A")
    w("subtree refused whole is one row. Messages are listed in the order the kinds reach")
    w("them; each names the paths it is first met at.")
    w("")
    w("| kind | fields | supported | differs | refused |")
    w("|---|---:|---:|---:|---:|")
    for k in kinds_order:
        c = per_kind.get(k)
        if c:
            w("| %s | %d | %d | %d | %d |" % (k, sum(c.values()), c["supported"], c["differs"], c["refused"]))
    w("| all | %d | %d | %d | %d |" % (sum(total.values()), total["supported"], total["differs"],
                                       total["refused"]))
    w("")
    w("Counts are of paths: a message reached from several places counts at each.")
    w("")
    for m in msg_order:
        w("## " + heading(m))
        w("")
        paths = msg_paths[m]
        more = " and %d more" % (len(paths) - 2) if len(paths) > 2 else ""
        w("At " + ", ".join("`%s`" % p for p in paths[:2]) + more + ".")
        w("")
        w("| field | type | status | note |")
        w("|---|---|---|---|")
        for field, frs in msg_rows[m].items():
            groups = []
            for r in frs:
                key = (r.status, r.note)
                g = next((x for x in groups if x[0] == key), None)
                if g is None:
                    groups.append((key, [r]))
                else:
                    g[1].append(r)
            first = frs[0]
            name = first.comps[-1]
            for (status, note), grs in groups:
                where = ""
                if len(groups) > 1:
                    where = " (at %s)" % ", ".join("`%s`" % x.parent for x in grs[:3])
                    if len(grs) > 3:
                        where = where[:-1] + " and %d more)" % (len(grs) - 3)
                kind = first.kind
                flags = [f for f in first.flags.split(",") if f]
                t = kind
                if kind.startswith("map<"):
                    t = "map<string, %s>" % typename(kind[4:-1], msg_rows)
                else:
                    t = typename(kind, msg_rows)
                if name.endswith("[]"):
                    t = "[]" + t
                if "deprecated" in flags:
                    t += " (deprecated)"
                w("| `%s` | %s | %s | %s |" % (bare(name), t, status, md(note + where).strip()))
        w("")
    # Sluice's own fields (not Gloo's), by kind.
    gloo_paths = {".".join(bare(c) for c in r.comps) for r in rows}
    ext = []
    for k in kinds_order:
        msg = sl.ds.messages.get("sluice.v1." + k)
        if msg is not None:
            sluice_only(sl.ds, msg, k, gloo_paths | {k + ".spec"}, ext, set())
    w("## Sluice's own fields")
    w("")
    w("Fields of Sluice's kinds that Gloo does not have (its extensions; [api.md](api.md)")
    w("says what each is for):")
    w("")
    for p in ext:
        w("- `%s`" % p)
    w("")
    return "\n".join(out)


def typename(kind, msg_rows):
    if kind.startswith("message:"):
        full = kind[8:]
        name = short(full)[0]
        if full in msg_rows:
            return "[%s](#%s)" % (name, anchor(full))
        return name
    if kind.startswith("enum:"):
        return "enum " + short(kind[5:])[0]
    return kind


def sluice_only(ds, msg, prefix, gloo_paths, out, seen):
    if msg.full_name in seen:
        return
    seen = seen | {msg.full_name}
    for f in msg.fields:
        p = prefix + "." + f.json_name
        if prefix.count(".") == 0 and f.json_name in ("metadata", "status"):
            continue
        if p not in gloo_paths:
            out.append(p)
            continue
        k = ds.kind(f)
        elem = ds.map_value(f) if k == "map" else f
        ek = ds.kind(elem)
        if ek.startswith("message:"):
            sluice_only(ds, ds.messages[ek[8:]], p, gloo_paths, out, seen)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--write", action="store_true")
    g.add_argument("--check", action="store_true")
    ap.add_argument("--source", default=os.path.normpath(os.path.join(HERE, "../..")))
    ap.add_argument("--protoc", default="protoc")
    ap.add_argument("-I", dest="include", action="append", default=[])
    ap.add_argument("--descriptor-set")
    a = ap.parse_args()

    errors = []
    header, rows = load_gloo(os.path.join(a.source, FIELDS))
    rules = load_curated(os.path.join(a.source, CURATED), errors)
    sl = Sluice(sluice_descriptors(a))
    classify(rows, rules, sl, plugin_fields(a.source), errors)
    kinds_order = []
    for r in rows:
        if r.comps[0] not in kinds_order:
            kinds_order.append(r.comps[0])
    text = render(header, rows, sl, kinds_order)
    doc = os.path.join(a.source, DOC)
    for e in errors[:40]:
        print("error: " + e, file=sys.stderr)
    if len(errors) > 40:
        print("error: ... and %d more" % (len(errors) - 40), file=sys.stderr)
    if a.write:
        with open(doc, "w") as f:
            f.write(text)
        print("%s: written" % DOC)
        return 1 if errors else 0
    try:
        with open(doc) as f:
            old = f.read()
    except OSError:
        old = ""
    if old != text:
        diff = list(difflib.unified_diff(old.splitlines(), text.splitlines(), DOC + " (committed)",
                                         DOC + " (from the protos)", n=0, lineterm=""))
        print("error: %s is stale (run tools/gloo-api/fieldtable.py --write); first differing rows:"
              % DOC, file=sys.stderr)
        for line in diff[:12]:
            print("  " + line, file=sys.stderr)
        errors.append("stale")
    if errors:
        return 1
    c = {"supported": 0, "differs": 0, "refused": 0}
    for r in rows:
        c[r.status] += 1
    print("%s up to date: %d Gloo fields, %d supported, %d differ, %d refused"
          % (DOC, len(rows), c["supported"], c["differs"], c["refused"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
