#!/usr/bin/python3
"""Every Lua script in the golden outputs (test/data/translator/*/expected.yaml:
the Lua filters' default and shared sources, each route's LuaPerRoute, and
each route's program in the shared source it names) runs in a real
Lua 5.1 interpreter (Envoy's LuaJIT speaks 5.1) against mock request and
response handles (translator_lua_mock.lua): it must load and run, the
scripts of REST functions named in EXPECT must leave the request with that
method, body and headers, and the transformation scripts of the routes named
in TRANSFORM must give, for each request (and response), what is listed.

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

# route name ("early <name>" for the early stage's script) -> [(mock
# arguments, what the mock prints, or a regular expression it matches)]: the
# transformations golden case, Gloo's documented examples.
TRANSFORM = {
    # extract_query_params: the virtual host's extractors; a missing one
    # renders empty, which removes the header
    "default_httpbin-route-0": [
        (["/get?foo=1&bar=two"], "GET\n<none>\nbar=two;foo=1\n/get?foo=1&bar=two\n"),
        (["/get?foo=only"], "GET\n<none>\nfoo=only\n/get?foo=only\n"),
    ],
    # update_request_uri: {% if header("foo") == "bar" %}
    "default_httpbin-route-1": [
        (["/uri/x", "foo=bar"], "POST\n<none>\nfoo=bar\n/post\n"),
        (["/uri/x", "foo=baz"], "GET\n<none>\nfoo=baz\n/uri/x\n"),
    ],
    # change_response_status: the JSON response body decides :status
    "default_httpbin-route-2": [
        (["/status", "--response", "200", "--body", '{"data": {"error": {"message": "boom"}}}'],
         'GET\n<none>\n\n/status\n400\n{"data": {"error": {"message": "boom"}}}\n\n'),
        (["/status", "--response", "201", "--body", '{"data": {}}'],
         'GET\n<none>\n\n/status\n201\n{"data": {}}\n\n'),
    ],
    # a body template over the JSON request body, upper(), env(), exists();
    # a body that is not JSON is Gloo's 400
    "default_httpbin-route-4": [
        (["/body", "--body", '{"user": {"name": "ann", "vip": true, "address": {"city": "Oslo"}}}'],
         'GET\n{"name": "ann", "city": "Oslo", "vip": true}\nx-region=eu-west;x-user=ANN\n/body\n'),
        (["/body", "--body", '{"user": {"name": "bo\\"b"}}'],
         'GET\n{"name": "bo\"b", "city": "none"}\nx-region=eu-west;x-user=BO"B\n/body\n'),
        (["/body", "--body", "not json"],
         "GET\nnot json\n\n/body\nrespond 400 invalid JSON body: unexpected character at byte 1\n"),
    ],
    # mergeExtractorsToBody: body and header extractors, dotted names nest
    "default_httpbin-route-5": [
        (["/merge", "content-type=text/plain", "--body", "order-42;qty=3"],
         'GET\n{"order":{"id":"42","qty":"3"},"type":"text"}\ncontent-type=text/plain\n/merge\n'),
        (["/merge", "--body", "no order"], 'GET\n{"order":{"id":"","qty":""},"type":""}\n\n/merge\n'),
    ],
    # the docs' extractor modes: SINGLE_REPLACE of a body subgroup (unchanged
    # without a match), REPLACE_ALL in a header; base64, substring, and
    # replace_with_random (a regular expression: the value is random)
    "default_httpbin-route-6": [
        (["/replace", "x-words=foo, food, fo", "x-user=ann", "x-b64=Ym9iYnk=", "--body",
          "Fruits: [apple, pear, banana, pineapple]"],
         re.compile(r"GET\nFruits: \[apple, pear, orange, pineapple\]\n"
                    r"x-b64=Ym9iYnk=;x-token=YW5u;"
                    r"x-trace=([A-Za-z0-9+/]{22})\.\1\.Y;"  # one random value for the pattern
                    r"x-user=ann;x-user-prefix=bob;x-words=bar, bard, fo\n/replace\n")),
        (["/replace", "--body", "no fruit"],
         re.compile(r"GET\nno fruit\nx-trace=([A-Za-z0-9+/]{22})\.\1\.Y\n/replace\n")),
    ],
    # advancedTemplates: extraction(), JSON pointer variables; dynamic
    # metadata in Gloo's namespace and, parsed as JSON, in another
    "default_httpbin-route-7": [
        (["/meta", "x-user=user-ann", "--body", '{"address": {"city": "Oslo"}, "order": {"id": 12}}'],
         'GET\n{"address": {"city": "Oslo"}, "order": {"id": 12}}\nx-city=Oslo;x-user=user-ann;x-user-id=ann\n'
         '/meta\nmetadata io.solo.transformation user=ann\nmetadata sluice.test order={id:12,tags:{1:a}}\n'),
    ],
    # mergeJsonKeys: renderings that parse as JSON are JSON, others strings,
    # empty ones only with overrideEmpty; the (non-advanced) extractor is in
    # the body too, as Gloo's context
    "default_httpbin-route-8": [
        (["/merge-keys", "x-user=bob", 'x-note={"a": 1}', "--body", '{"items": [1, 2, 3], "gone": 5, "keep": true}'],
         'GET\n{"count":3,"fromHeader":"bob","gone":"","items":[1,2,3],"keep":true,"note":{"a":1},"user":"bob"}\n'
         'x-note={"a": 1};x-user=bob\n/merge-keys\n'),
    ],
    # headerBodyTransform: with addRequestMetadata on the request (query
    # parameters percent-decoded, repeated ones in the multi-value map),
    # without on the response
    "default_header-body-route-0": [
        (["/x/y?a=1&b=%20two&a=3&flag", "x-multi=v1", "--body", "raw body", "--response", "200", "server=s",
          "--body", "resp"],
         'GET\n{"body":"raw body","headers":{":method":"GET",":path":"/x/y?a=1&b=%20two&a=3&flag","x-multi":"v1"},'
         '"httpMethod":"GET","multiValueHeaders":{},"multiValueQueryStringParameters":{"a":["1","3"]},'
         '"path":"/x/y","queryString":"a=1&b=%20two&a=3&flag","queryStringParameters":{"a":"3","b":" two",'
         '"flag":""}}\ncontent-type=application/json;x-multi=v1\n/x/y?a=1&b=%20two&a=3&flag\n'
         '200\n{"body":"resp","headers":{":status":"200","server":"s"}}\ncontent-type=application/json;server=s\n'),
    ],
    # a regex that backtracks exponentially ((a*)*b on 40 a's: 2^40 ways)
    # gives up after its step budget: no match, at once
    "default_httpbin-route-10": [
        (["/budget", "x-slow=" + "a" * 40], "GET\n<none>\nx-slow=%s;x-slow-result=none\n/budget\n" % ("a" * 40)),
        (["/budget", "x-slow=aab"], "GET\n<none>\nx-slow=aab;x-slow-result=noneaa\n/budget\n"),
    ],
    # a weighted destination's own transformations replace its route's (its
    # script on the weighted cluster); the other destination gets the
    # route's, now a script too (header mutation would reach every one)
    "spec.virtualHost.routes?11?-httpbin_default": [
        (["/weighted", "x-a=1"], "GET\n<none>\nx-a=1;x-destination=one-a\n/weighted\n"),
        (["/weighted"], "GET\n<none>\nx-destination=one\n/weighted\n"),
    ],
    "early spec.virtualHost.routes?11?-httpbin2_default": [
        (["/weighted"], "GET\n<none>\nx-destination=two\n/weighted\n"),
    ],
    "default_httpbin-route-11": [
        (["/weighted", "x-destination=client"], "GET\n<none>\nx-destination=route\n/weighted\n"),
    ],
    # the early stage's script (its own Lua filter, first in the chain) and
    # the regular stage's, which sees what the early one set
    "early default_early-route-0": [
        (["/x", ":method=POST"], "POST\n<none>\nx-early=POST\n/x\n"),
    ],
    "default_early-route-0": [
        (["/x", "x-early=POST"], "GET\n<none>\nx-early=POST;x-regular=early was POST\n/x\n"),
    ],
    # stagedTransformations: the first request match applies with its
    # response transformation (request_header() sees the transformed
    # request); otherwise the inherited virtual host's, and the response
    # match on :status
    "default_httpbin-route-9": [
        (["/staged/json/1", ":method=POST", "content-type=application/json", "--body", '{"order": {"id": "o-7"}}',
          "--response", "200", "server=x"],
         'POST\n{"order": {"id": "o-7"}}\ncontent-type=application/json;x-order=o-7\n/staged/json/1\n'
         '200\n<none>\nserver=x;x-order-echo=order o-7\n'),
        (["/staged/other?foo=9", "--response", "404"],
         'GET\n<none>\nfoo=9\n/staged/other?foo=9\n404\n{"error": "not found", "path": "/staged/other?foo=9"}\n'
         'content-type=application/json\n'),
        (["/staged/other", "--response", "200"], "GET\n<none>\n\n/staged/other\n200\n<none>\n\n"),
    ],
}


def run(lua, mock, code, args, program=None):
    files = []
    for text in (code, program):
        if text is not None:
            with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
                f.write(text)
            files.append(f.name)
    env = dict(os.environ, SLUICE_TEST_REGION="eu-west")
    if program is not None:
        env["SLUICE_LUA_PROGRAM"] = files[1]
    try:
        return subprocess.run([lua, mock, files[0]] + args, capture_output=True, text=True, env=env)
    finally:
        for name in files:
            os.unlink(name)


def walk(obj):
    if isinstance(obj, dict):
        yield obj
        for v in obj.values():
            yield from walk(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from walk(v)


def scripts(docs):
    """(code, program) for every script of a golden output's resources
    (docs: (proxy, resource) pairs): a LuaPerRoute's own source code
    (program None); for a LuaPerRoute naming a source its Lua filter shares
    (on the proxy's listeners), that source and the route's program (its
    metadata in the filter's namespace); each Lua filter's default source,
    and each source it shares, run without a program."""
    shared = {}  # (proxy, filter name, source name) -> code
    for proxy, doc in docs:
        for o in walk(doc):
            t = o.get("typedConfig", {}).get("@type", "")
            if t.endswith("filters.http.lua.v3.Lua"):
                yield o["typedConfig"]["defaultSourceCode"]["inlineString"], None
                for name, src in o["typedConfig"].get("sourceCodes", {}).items():
                    code = src["inlineString"]
                    if shared.setdefault((proxy, o["name"], name), code) != code:
                        raise SystemExit("FAIL proxy %s: two sources %s of filter %s differ" % (proxy, name, o["name"]))
                    yield code, None
    for proxy, doc in docs:
        for o in walk(doc):
            for filt, fc in o.get("typedPerFilterConfig", {}).items():
                c = fc.get("config", fc)
                if not c.get("@type", "").endswith(".LuaPerRoute"):
                    continue
                if "sourceCode" in c:
                    yield c["sourceCode"]["inlineString"], None
                elif "name" in c:
                    code = shared.get((proxy, filt, c["name"]))
                    program = o.get("metadata", {}).get("filterMetadata", {}).get(filt, {}).get("program")
                    if code is None or program is None:
                        raise SystemExit("FAIL proxy %s: route %s names source %s of filter %s without %s" %
                                         (proxy, o.get("name"), c["name"], filt,
                                          "that source" if code is None else "a program in its metadata"))
                    yield code, program


def main():
    lua, data = sys.argv[1], sys.argv[2]
    mock = os.path.join(os.path.dirname(os.path.abspath(__file__)), "translator_lua_mock.lua")
    n, failed, seen = 0, 0, set()
    for case in sorted(os.listdir(data)):
        path = os.path.join(data, case, "expected.yaml")
        if not os.path.exists(path):
            continue
        text = open(path).read()
        parts = re.split(r"^# proxy (\S+) .*$", text, flags=re.M)[1:]
        docs = [(parts[i], yaml.safe_load(parts[i + 1])) for i in range(0, len(parts), 2)]
        for code, program in scripts(docs):
            t = re.match(r"-- Sluice: ((?:early )?)transformations of route (\S+)", program or code)
            if t:
                key = t.group(1) + t.group(2)
                for args, want in TRANSFORM.get(key, [(["/"], None)]):
                    r = run(lua, mock, code, args, program)
                    n += 1
                    got = r.stdout if r.returncode == 0 else "error: " + r.stderr.strip()
                    if isinstance(want, re.Pattern):
                        bad = not want.fullmatch(got)
                    else:
                        bad = (want is None and r.returncode != 0) or (want is not None and got != want)
                    if bad:
                        print("FAIL %s: route %s %s: got %r, want %r" % (case, key, args, got, want))
                        failed += 1
                    seen.add(key)
                continue
            m = re.match(r"-- Sluice: function (\S+) ", code)
            fn = m.group(1) if m else None
            req, hdrs, want_method, want_body, want_hdrs = EXPECT.get(fn, ("/", {}, None, None, None))
            r = run(lua, mock, code, [req] + ["%s=%s" % kv for kv in hdrs.items()])
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
    for fn in list(EXPECT) + list(TRANSFORM):
        if fn not in seen:
            print("FAIL no script for function %s in the golden outputs" % fn)
            failed += 1
    print("%d scripts run, %d failures" % (n, failed))
    return 1 if failed or n == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
