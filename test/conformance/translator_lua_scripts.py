#!/usr/bin/python3
"""Every Lua script in the golden outputs (test/data/translator/*/expected.yaml:
the lua filter's default source and each route's LuaPerRoute) runs in a real
Lua 5.1 interpreter (Envoy's LuaJIT speaks 5.1) against a mock request handle
(translator_lua_mock.lua): it must load and run, and the scripts named in EXPECT must
leave the request with that method, body and headers.

Usage: lua_scripts.py LUA TESTDATA_DIR"""
import os
import re
import subprocess
import sys
import tempfile

import yaml

# function name -> (request path, headers, expected :method, expected body,
# expected headers afterwards)
EXPECT = {
    "findPetById": ("/petstore/findPet/7", {}, "GET", "<none>", ""),
    "addPet": ("/petstore/addPet", {}, "POST", "<none>", ""),
    "updatePet": ("/petstore/update/7?x=1", {"x-user": "bob"}, "PUT",
                  '{"id": 7, "owner": "bob", "note": "50% \\"done\\""}', "x-pet-id=pet-7;x-user=bob"),
}


def scripts(obj):
    if isinstance(obj, dict):
        t = obj.get("@type", "")
        if t.endswith(".LuaPerRoute"):
            yield obj["sourceCode"]["inlineString"]
        elif t.endswith("filters.http.lua.v3.Lua"):
            yield obj["defaultSourceCode"]["inlineString"]
        for v in obj.values():
            yield from scripts(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from scripts(v)


def main():
    lua, data = sys.argv[1], sys.argv[2]
    mock = os.path.join(os.path.dirname(os.path.abspath(__file__)), "translator_lua_mock.lua")
    n, failed, seen = 0, 0, set()
    for case in sorted(os.listdir(data)):
        path = os.path.join(data, case, "expected.yaml")
        if not os.path.exists(path):
            continue
        text = open(path).read()
        for section in re.split(r"^# proxy .*$", text, flags=re.M)[1:]:
            doc = yaml.safe_load(section)
            for code in scripts(doc):
                m = re.match(r"-- Sluice: function (\S+) ", code)
                fn = m.group(1) if m else None
                req, hdrs, want_method, want_body, want_hdrs = EXPECT.get(fn, ("/", {}, None, None, None))
                with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
                    f.write(code)
                try:
                    r = subprocess.run([lua, mock, f.name, req] + ["%s=%s" % kv for kv in hdrs.items()],
                                       capture_output=True, text=True)
                finally:
                    os.unlink(f.name)
                n += 1
                where = "%s: %s" % (case, fn or "default source")
                if r.returncode != 0:
                    print("FAIL %s: %s" % (where, r.stderr.strip()))
                    failed += 1
                    continue
                method, body, got_hdrs = r.stdout.split("\n")[:3]
                if not re.fullmatch(r"[A-Z_-]+", method):
                    print("FAIL %s: :method %r is not a method" % (where, method))
                    failed += 1
                if want_method is not None:
                    seen.add(fn)
                    if (method, body, got_hdrs) != (want_method, want_body, want_hdrs):
                        print("FAIL %s: got %r %r %r, want %r %r %r" %
                              (where, method, body, got_hdrs, want_method, want_body, want_hdrs))
                        failed += 1
    for fn in EXPECT:
        if fn not in seen:
            print("FAIL no script for function %s in the golden outputs" % fn)
            failed += 1
    print("%d scripts run, %d failures" % (n, failed))
    return 1 if failed or n == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
