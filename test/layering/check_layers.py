#!/usr/bin/env python3
"""check_layers.py - the layering rules of docs/architecture.md, checked.

usage: check_layers.py SOURCE_DIR [BUILD_DIR]

  1. A service (services/<svc>/) includes only its own headers, public
     library headers ("sluice/..."), generated protobuf headers and system
     headers; its CMakeLists.txt names no other services/ path and no
     library's private src/.
  2. A library (common/<lib>/, or the core: common/{include,src,types,tests})
     includes only its own files, public library headers, generated headers
     and system headers: never a service, never another library's src/.
  3. Tests, tools and benchmarks (test/, bench/) never include a service's
     header; only the fuzz target of the config-watcher compiles service
     sources (listed below, with the reason).
  4. With BUILD_DIR: no object of a service defines a global symbol named
     sl_* (that prefix marks library symbols; a service's own carry its
     prefix).
Every violation is printed as file:line: what; exit status 1 when any.
"""
import json
import os
import re
import subprocess
import sys

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')
# test/ files allowed to compile a service's sources, and why.
ALLOWED_SERVICE_SOURCES = {
    # the apply API and KV validation handlers run offline under libFuzzer
    "test/fuzz/CMakeLists.txt": "services/config-watcher",
    "test/fuzz/fuzz_config_watcher.c": "services/config-watcher",
}


def public_headers(src):
    found = set()
    for root, _dirs, files in os.walk(os.path.join(src, "common")):
        if os.path.basename(root) == "sluice" and os.path.basename(os.path.dirname(root)) == "include":
            found.update("sluice/" + f for f in files if f.endswith(".h"))
    return found


def owner(src, path):
    """The unit a file belongs to: ('service', name), ('lib', name) or ('other', top)."""
    rel = os.path.relpath(path, src).split(os.sep)
    if rel[0] == "services" and len(rel) > 2:
        return ("service", rel[1])
    if rel[0] == "common":
        if len(rel) > 2 and rel[1] not in ("include", "src", "types", "tests"):
            return ("lib", rel[1])
        return ("lib", "core")
    return ("other", rel[0])


def sources(src, top):
    for root, dirs, files in os.walk(os.path.join(src, top)):
        dirs[:] = [d for d in dirs if d not in ("node_modules",)]
        for f in sorted(files):
            if f.endswith((".c", ".h")) or f == "CMakeLists.txt":
                yield os.path.join(root, f)


def check_includes(src, path, pub, errors):
    me = owner(src, path)
    with open(path, encoding="utf-8", errors="replace") as fh:
        for n, line in enumerate(fh, 1):
            m = INCLUDE.match(line)
            if not m:
                continue
            inc = m.group(1)
            where = "%s:%d" % (os.path.relpath(path, src), n)
            if inc.endswith(".pb-c.h"):
                continue  # generated from proto/ or Envoy's protos
            if inc.startswith("sluice/"):
                if inc not in pub:
                    errors.append("%s: includes %s, which no library publishes" % (where, inc))
                continue
            target = os.path.normpath(os.path.join(os.path.dirname(path), inc))
            if not os.path.exists(target):
                # found through an include path: allowed only for tests'
                # and benchmarks' own headers (the test kit's among them), a
                # library's own src/ in its unit tests, and the listed exception
                rel = os.path.relpath(path, src)
                if me[0] == "other" and any(os.path.exists(os.path.join(src, d, inc))
                                            for d in ("test/kit", os.path.dirname(rel), "bench/translate")):
                    continue
                allowed = ALLOWED_SERVICE_SOURCES.get(rel)
                if allowed and os.path.exists(os.path.join(src, allowed, inc)):
                    continue
                if me[0] == "lib" and "/tests/" in path:
                    continue
                errors.append("%s: includes \"%s\", not found beside it (only sluice/*.h and generated headers "
                              "come from elsewhere)" % (where, inc))
                continue
            them = owner(src, target)
            if them[0] == "service" and them != me:
                errors.append("%s: includes %s, a header of service %s" %
                              (where, os.path.relpath(target, src), them[1]))
            elif me[0] == "lib" and them[0] == "service":
                errors.append("%s: library %s includes %s of a service" % (where, me[1], os.path.relpath(target, src)))
            elif them[0] == "lib" and them != me and me[0] != "other":
                errors.append("%s: includes %s, private to library %s (use its include/sluice/ header)" %
                              (where, os.path.relpath(target, src), them[1]))


def check_cmake(src, path, errors):
    me = owner(src, path)
    rel = os.path.relpath(path, src)
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            code = line.split("#", 1)[0]
            where = "%s:%d" % (rel, n)
            for m in re.finditer(r"services/([A-Za-z0-9_-]+)", code):
                svc = m.group(1)
                if me == ("service", svc):
                    continue
                if ALLOWED_SERVICE_SOURCES.get(rel) == "services/" + svc:
                    continue
                errors.append("%s: names services/%s (a service is not a library: move shared code to common/)" %
                              (where, svc))
            if me[0] == "service" and re.search(r"common/[A-Za-z0-9_]+/src|common/src", code):
                errors.append("%s: names a library's private sources" % where)
            if me[0] == "service" and "../" in code:
                errors.append("%s: reaches outside its directory (../)" % where)


def check_symbols(src, build, errors):
    """Service objects as the build compiles them now (compile_commands.json)."""
    try:
        with open(os.path.join(build, "compile_commands.json"), encoding="utf-8") as fh:
            cmds = json.load(fh)
    except (OSError, ValueError) as e:
        errors.append("%s: compile_commands.json: %s" % (build, e))
        return
    objs = []
    for c in cmds:
        f = os.path.relpath(os.path.join(c["directory"], c["file"]), src)
        out = c.get("output")
        if not out:
            m = re.search(r"\s-o\s+(\S+)", c.get("command", ""))
            out = m.group(1) if m else None
        if f.startswith("services" + os.sep) and out:
            objs.append(os.path.join(c["directory"], out))
    if not objs:
        errors.append("%s: no service objects in compile_commands.json" % build)
    for obj in objs:
        out = subprocess.run(["nm", "-g", "--defined-only", obj], capture_output=True, text=True)
        if out.returncode != 0:
            errors.append("%s: nm failed (build first): %s" % (obj, out.stderr.strip()))
            continue
        for line in out.stdout.splitlines():
            parts = line.split()
            if len(parts) == 3 and parts[2].startswith("sl_"):
                errors.append("%s: defines %s: sl_ marks library symbols; name it with the service's prefix" %
                              (os.path.relpath(obj, build), parts[2]))


def main():
    if len(sys.argv) not in (2, 3):
        sys.stderr.write(__doc__)
        return 2
    src = os.path.abspath(sys.argv[1])
    pub = public_headers(src)
    errors = []
    n = 0
    for top in ("services", "common", "test", "bench"):
        for path in sources(src, top):
            n += 1
            if path.endswith("CMakeLists.txt"):
                check_cmake(src, path, errors)
            else:
                check_includes(src, path, pub, errors)
    if len(sys.argv) == 3:
        check_symbols(src, os.path.abspath(sys.argv[2]), errors)
    for e in errors:
        print(e)
    print("check_layers: %d files, %d violations" % (n, len(errors)))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
