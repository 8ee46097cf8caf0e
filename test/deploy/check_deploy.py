#!/usr/bin/python3
"""Checks that deploy/ matches the binaries it runs.

usage: check_deploy.py SOURCE_DIR BINARY_DIR [--bootstrap-json OUT_DIR]

Every command line of a Sluice binary (sluice-*, sluicectl) and of
nats-server in deploy/ -- systemd ExecStart (with the $VARS of its
EnvironmentFile expanded), compose command/entrypoint, Kubernetes
command/args -- is taken apart, and every flag it uses must appear in that
binary's --help (sluicectl: in the help of its subcommand). Every environment
variable given to a Sluice service (systemd env files, compose environment,
Kubernetes env and the ConfigMaps of envFrom) must appear in its --help or in
docs/*.md (not operations.md, which describes deploy/ itself). Then consistency: one systemd unit, compose service and Kubernetes
Deployment per service; metrics ports and probes (/healthz, /readyz) agree
with --metrics-addr; the NATS config and Envoy bootstrap copies match their
sources; units restart always and carry the hardening options;
systemd-analyze verify (when present) finds nothing but the missing
binaries. Security: every Sluice service logs in to NATS with the nkey seed
of its own role; NATS includes the auth.conf of `sluicectl nats-auth`, and in
compose and Kubernetes requires TLS (Kubernetes: cluster routes with TLS and
authorization); sluice-xds runs with mutual TLS (--tls-cert, --tls-key,
--tls-client-ca, never --insecure); each deployment's NATS configuration,
with the files `sluicectl nats-auth` and `sluicectl certs` make, passes
`nats-server -t`. Envoy's certificate for sluice-xds comes through file-based
SDS: every SDS file a bootstrap names is there in its deployment
(deploy/envoy/sds/, mounted by compose, in the Kubernetes ConfigMap and its
projected volume). With --bootstrap-json, every Envoy bootstrap found (file
or ConfigMap) and its SDS files are also written there as JSON
(<label>-bootstrap.json, <label>-sds-<name>.json) for
test/deploy/bootstrapcheck.

Runs with Debian's python3 and python3-yaml. Prints one line per check and
"N passed, N failed" last; exit status 1 on any failure.
"""
import copy
import glob
import json
import os
import re
import shlex
import shutil
import subprocess
import sys

import yaml

SERVICES = ["config-watcher", "secret-watcher", "translator", "reporter", "xds", "endpoint-discovery",
            "upstream-discovery", "function-discovery"]
XDS_MTLS = ["--tls-cert", "--tls-key", "--tls-client-ca"]
HARDENING = ["NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes",
             "PrivateDevices=yes", "CapabilityBoundingSet=", "RestrictAddressFamilies=AF_",
             "SystemCallFilter=@system-service", "MemoryDenyWriteExecute=yes", "RestrictNamespaces=yes"]


def sds_paths(tree):
    """The path of every path_config_source in a bootstrap (a YAML tree)."""
    todo = [tree]
    while todo:
        node = todo.pop()
        if isinstance(node, list):
            todo.extend(node)
        elif isinstance(node, dict):
            pcs = node.get("path_config_source")
            if isinstance(pcs, dict) and "path" in pcs:
                yield pcs["path"]
            todo.extend(node.values())


class Checker:
    def __init__(self, src, bindir):
        self.src, self.bindir = src, bindir
        self.passed = self.failed = 0
        self.helps = {}
        # docs/operations.md describes deploy/ itself: it does not count as proof
        self.docs = "".join(open(p).read() for p in sorted(glob.glob(os.path.join(src, "docs", "*.md")))
                            if os.path.basename(p) != "operations.md")
        self.bootstraps = {}  # label -> dict
        self.sds = {}  # label -> {path in the Envoy container: dict}
        self.nats_confs = {}  # label -> (directory of the main file, main file name, {file: text})

    def ok(self, cond, what, detail=""):
        if cond:
            self.passed += 1
            print(f"ok: {what}")
        else:
            self.failed += 1
            print(f"FAIL: {what}" + (f": {detail}" if detail else ""))
        return cond

    def rel(self, p):
        return os.path.relpath(p, self.src)

    # ---- binaries ---------------------------------------------------------
    def binary(self, name):
        if name == "nats-server":
            return shutil.which("nats-server") or shutil.which("nats-server", path="/usr/sbin:/usr/bin")
        hits = glob.glob(os.path.join(self.bindir, "services", "*", name))
        return hits[0] if hits else None

    def help(self, name, sub=None):
        key = (name, sub)
        if key not in self.helps:
            exe = self.binary(name)
            if not exe:
                self.helps[key] = None
            else:
                argv = [exe] + ([sub] if sub else []) + ["--help"]
                p = subprocess.run(argv, capture_output=True, text=True, timeout=30)
                self.helps[key] = p.stdout + p.stderr
        return self.helps[key]

    # ---- one command line ---------------------------------------------------
    def check_command(self, where, argv, env):
        """argv: the command line; env: names of environment variables given."""
        prog = os.path.basename(argv[0])
        if not (prog.startswith("sluice-") or prog in ("sluicectl", "nats-server")):
            return None
        text = self.help(prog)
        if not self.ok(text is not None, f"{where}: {prog} is built", f"no {prog} under {self.bindir}/services"):
            return None
        args = argv[1:]
        if prog == "sluicectl" and args and not args[0].startswith("-"):
            sub = self.help(prog, args[0]) or ""
            self.ok(args[0] in text, f"{where}: sluicectl has the command {args[0]}")
            text += sub
        flags = []
        for a in args:
            if re.match(r"^--?[A-Za-z]", a):
                flags.append(a.split("=", 1)[0])
        for f in flags:
            pat = r"(?<![\w-])" + re.escape(f) + r"(?![\w-])"
            self.ok(re.search(pat, text) is not None, f"{where}: {prog} {f} is in --help")
        if prog == "sluice-xds":
            self.ok(all(f in flags for f in XDS_MTLS) and "--insecure" not in flags,
                    f"{where}: sluice-xds uses mutual TLS ({', '.join(XDS_MTLS)}, no --insecure)", " ".join(args))
        if prog != "nats-server":
            for name in sorted(env):
                self.ok(name in text or name in self.docs,
                        f"{where}: {prog} environment {name} is in --help or docs/")
        return prog, args

    # ---- systemd ------------------------------------------------------------
    def systemd(self):
        d = os.path.join(self.src, "deploy", "systemd")
        units = {}
        for path in sorted(glob.glob(os.path.join(d, "*.service"))):
            kv = {}
            for line in open(path):
                line = line.strip()
                if line and not line.startswith(("#", "[")) and "=" in line:
                    k, v = line.split("=", 1)
                    kv.setdefault(k, []).append(v)
            name = os.path.basename(path)[: -len(".service")]
            units[name] = kv
            where = self.rel(path)
            self.ok(kv.get("Restart") == ["always"], f"{where}: Restart=always")
            for h in HARDENING:
                k, v = h.split("=", 1)
                self.ok(any(x.startswith(v) if v else x == "" for x in kv.get(k, [])), f"{where}: {h}")
            envfiles = kv.get("EnvironmentFile", [])
            short = name[len("sluice-"):]
            self.ok(envfiles == [f"/etc/sluice/{short}.env"], f"{where}: EnvironmentFile=/etc/sluice/{short}.env",
                    str(envfiles))
            local = os.path.join(d, "env", f"{short}.env")
            if not self.ok(os.path.exists(local), f"{where}: example {self.rel(local)} exists"):
                continue
            envvars, mentioned = {}, set()
            for line in open(local):
                m = re.match(r"^\s*(#)?\s*([A-Z][A-Z0-9_]*)=(.*)$", line)
                if m:
                    mentioned.add(m.group(2))
                    if not m.group(1):
                        envvars[m.group(2)] = m.group(3)
            execs = kv.get("ExecStart", [])
            self.ok(len(execs) == 1, f"{where}: one ExecStart")
            for ex in execs:
                used = set(re.findall(r"\$\{?([A-Z_][A-Z0-9_]*)\}?", ex))
                for u in sorted(used):
                    self.ok(u in envvars, f"{where}: ${u} is set in {self.rel(local)}")
                line = re.sub(r"\$\{?([A-Z_][A-Z0-9_]*)\}?", lambda m: envvars.get(m.group(1), ""), ex)
                argv = shlex.split(line)
                # variables only expanded into the command line are not the service's environment
                self.check_command(where, argv, mentioned - used)
                if argv and os.path.basename(argv[0]).startswith("sluice-"):
                    self.metrics_port(where, argv, envvars.get("SLUICE_METRICS_ADDR"))
                    self.ok(envvars.get("NATS_NKEY") == f"/etc/sluice/nats/{short}.nk",
                            f"{where}: NATS_NKEY is the seed of its role {short}", str(envvars.get("NATS_NKEY")))
                if argv and os.path.basename(argv[0]) == "nats-server":
                    conf = argv[argv.index("-c") + 1] if "-c" in argv else ""
                    self.ok(conf == "/etc/sluice/nats-server.conf", f"{where}: nats-server -c /etc/sluice/nats-server.conf")
        text = open(os.path.join(d, "nats-server.conf")).read()
        self.ok('include "nats.conf"' in text and 'include "nats/auth.conf"' in text,
                "deploy/systemd/nats-server.conf: includes nats.conf and nats/auth.conf")
        self.nats_confs["systemd"] = ("/etc/sluice", {"nats-server.conf": text,
                                      "nats.conf": open(os.path.join(self.src, "deploy", "nats", "sluice.conf")).read()},
                                      "nats", None)
        for s in SERVICES:
            self.ok(f"sluice-{s}" in units, f"systemd: a unit for sluice-{s}")
        self.ok("sluice-nats" in units, "systemd: a unit for nats-server")
        target = open(os.path.join(d, "sluice.target")).read()
        for u in units:
            self.ok(f"{u}.service" in target, f"systemd: sluice.target wants {u}.service")
        analyze = shutil.which("systemd-analyze")
        if analyze:
            for path in sorted(glob.glob(os.path.join(d, "*.service")) + [os.path.join(d, "sluice.target")]):
                p = subprocess.run([analyze, "verify", path], capture_output=True, text=True, cwd="/", timeout=60)
                bad = [l for l in (p.stdout + p.stderr).splitlines()
                       if l.strip() and "is not executable" not in l and "/usr/local/bin/" not in l]
                self.ok(not bad, f"{self.rel(path)}: systemd-analyze verify", "; ".join(bad))
        else:
            print("note: systemd-analyze not found; unit syntax not verified")

    def metrics_port(self, where, argv, env_addr):
        addr = env_addr
        for i, a in enumerate(argv):
            if a == "--metrics-addr" and i + 1 < len(argv):
                addr = argv[i + 1]
            elif a.startswith("--metrics-addr="):
                addr = a.split("=", 1)[1]
        self.ok(addr is not None and re.search(r":\d+$", addr or ""), f"{where}: has a metrics address", str(addr))
        return int(addr.rsplit(":", 1)[1]) if addr and re.search(r":\d+$", addr) else None

    # ---- compose --------------------------------------------------------------
    def compose(self):
        path = os.path.join(self.src, "deploy", "compose", "docker-compose.yaml")
        where0 = self.rel(path)
        doc = yaml.safe_load(open(path))
        seen = set()
        for name, svc in doc.get("services", {}).items():
            argv = list(svc.get("entrypoint") or []) + list(svc.get("command") or [])
            if isinstance(svc.get("command"), str):
                argv = list(svc.get("entrypoint") or []) + shlex.split(svc["command"])
            env = svc.get("environment") or {}
            env = set(env) if isinstance(env, dict) else {e.split("=", 1)[0] for e in env}
            where = f"{where0}: {name}"
            r = self.check_command(where, argv, env)
            if not r:
                continue
            prog, args = r
            if prog.startswith("sluice-"):
                seen.add(prog)
                role = prog[len("sluice-"):]
                envd = svc.get("environment") or {}
                nk, ca = envd.get("NATS_NKEY"), envd.get("NATS_TLS_CA")
                vols = [str(v) for v in svc.get("volumes", [])]
                self.ok(nk and ca and any(v == f"creds-{role}:{os.path.dirname(nk)}:ro" for v in vols)
                        and os.path.dirname(ca) == os.path.dirname(nk),
                        f"{where}: NATS_NKEY and NATS_TLS_CA in its own volume creds-{role}", f"{nk} {ca} {vols}")
                port = self.metrics_port(where, argv, None)
                hc = " ".join(svc.get("healthcheck", {}).get("test", []))
                self.ok(f"127.0.0.1:{port}/readyz" in hc, f"{where}: healthcheck on /readyz of port {port}", hc)
                self.ok(any(str(p).endswith(f":{port}") for p in svc.get("ports", [])),
                        f"{where}: metrics port {port} published")
            if prog == "nats-server":
                self.ok(any(v.endswith(":/etc/nats/sluice.conf:ro") and v.startswith("../nats/sluice.conf")
                            for v in svc.get("volumes", [])), f"{where}: mounts the shipped deploy/nats/sluice.conf")
                self.ok("-c" in args and args[args.index("-c") + 1] == "/etc/nats/nats.conf" and
                        "./nats.conf:/etc/nats/nats.conf:ro" in svc.get("volumes", []),
                        f"{where}: runs deploy/compose/nats.conf")
                self.ok("creds-nats:/etc/nats/creds:ro" in svc.get("volumes", []), f"{where}: mounts creds-nats")
        init = doc.get("services", {}).get("sluice-init", {})
        script = "\n".join(str(x) for x in init.get("command") or [])
        for line in script.splitlines():
            if line.strip().startswith("sluicectl "):
                self.check_command(f"{where0}: sluice-init", shlex.split(line.strip()), set())
        self.ok(re.search(r"^sluicectl nats-auth /creds/nats$", script, re.M) and
                re.search(r"^sluicectl certs /creds/tls .*--proxy default~gateway-proxy", script, re.M),
                f"{where0}: sluice-init runs sluicectl nats-auth and sluicectl certs")
        for role in SERVICES:
            self.ok(f"creds-{role}:/out/{role}" in init.get("volumes", []) and re.search(rf"\b{role}\b", script),
                    f"{where0}: sluice-init writes the seed of {role} into creds-{role}")
        conf = open(os.path.join(self.src, "deploy", "compose", "nats.conf")).read()
        self.ok('include "sluice.conf"' in conf and 'include "creds/auth.conf"' in conf and
                re.search(r"^tls \{", conf, re.M), "deploy/compose/nats.conf: users (auth.conf) and TLS")
        self.nats_confs["compose"] = ("/etc/nats", {"nats.conf": conf,
                                      "sluice.conf": open(os.path.join(self.src, "deploy", "nats", "sluice.conf")).read()},
                                      "creds", "creds")
        for s in SERVICES:
            self.ok(f"sluice-{s}" in seen, f"{where0}: runs sluice-{s}")
        bpath = os.path.join(self.src, "deploy", "compose", "envoy-bootstrap.yaml")
        self.bootstraps["compose"] = yaml.safe_load(open(bpath))
        envoy = [s for s in doc["services"].values() if "envoy" in str(s.get("image", ""))]
        self.ok(envoy and any(v.startswith("./envoy-bootstrap.yaml:") for v in envoy[0].get("volumes", [])),
                f"{where0}: Envoy mounts envoy-bootstrap.yaml")
        if self.ok(envoy and any(v.startswith("../envoy/sds:/etc/envoy/sds") for v in envoy[0].get("volumes", [])),
                   f"{where0}: Envoy mounts deploy/envoy/sds at /etc/envoy/sds"):
            self.sds["compose"] = self.sds_files()

    # ---- kubernetes -----------------------------------------------------------
    def k8s(self):
        docs = []
        for path in sorted(glob.glob(os.path.join(self.src, "deploy", "k8s", "*.yaml"))):
            for d in yaml.safe_load_all(open(path)):
                if d:
                    docs.append((self.rel(path), d))
        cms = {d["metadata"]["name"]: d for _, d in docs if d.get("kind") == "ConfigMap"}
        seen = set()
        for where0, d in docs:
            if d.get("kind") not in ("Deployment", "StatefulSet"):
                continue
            pod = d["spec"]["template"]["spec"]
            for c in pod.get("containers", []):
                where = f"{where0}: {d['kind']} {d['metadata']['name']}"
                env = {e["name"] for e in c.get("env", [])}
                for ef in c.get("envFrom", []):
                    ref = ef.get("configMapRef", {}).get("name")
                    self.ok(ref in cms, f"{where}: envFrom ConfigMap {ref} exists")
                    env |= set((cms.get(ref) or {}).get("data", {}))
                argv = list(c.get("command") or []) + [str(a) for a in c.get("args") or []]
                # $(VAR) in args is Kubernetes' own expansion: not the program's environment
                kexp = set(re.findall(r"\$\(([A-Z_][A-Z0-9_]*)\)", " ".join(argv)))
                for v in kexp:
                    self.ok(v in env, f"{where}: $({v}) is defined in env")
                r = self.check_command(where, argv, env - kexp)
                if not r:
                    continue
                prog, args = r
                if not prog.startswith("sluice-"):
                    continue
                seen.add(prog)
                role = prog[len("sluice-"):]
                secrets = {v.get("secret", {}).get("secretName") for v in pod.get("volumes", [])}
                mounts = {m["name"]: m["mountPath"] for m in c.get("volumeMounts", [])}
                self.ok(f"sluice-nats-{role}" in secrets and "NATS_NKEY" in env and "NATS_TLS_CA" in env
                        and "nats-creds" in mounts and pod.get("initContainers"),
                        f"{where}: NATS with its own role's seed (Secret sluice-nats-{role}) and TLS", str(secrets))
                port = self.metrics_port(where, argv, None)
                cport = {p.get("name"): p["containerPort"] for p in c.get("ports", [])}
                self.ok(cport.get("metrics") == port, f"{where}: containerPort metrics is {port}", str(cport))
                for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz"),
                                    ("startupProbe", "/healthz")):
                    g = c.get(probe, {}).get("httpGet", {})
                    self.ok(g.get("path") == path and g.get("port") in ("metrics", port),
                            f"{where}: {probe} on {path} of the metrics port", str(g))
        for s in SERVICES:
            self.ok(f"sluice-{s}" in seen, f"deploy/k8s: a Deployment runs sluice-{s}")
        conf = open(os.path.join(self.src, "deploy", "nats", "sluice.conf")).read()
        self.ok(cms.get("nats-config", {}).get("data", {}).get("sluice.conf") == conf,
                "deploy/k8s: ConfigMap nats-config holds deploy/nats/sluice.conf verbatim")
        nconf = cms.get("nats-config", {}).get("data", {}).get("nats.conf", "")
        self.ok('include "sluice.conf"' in nconf and 'include "auth.conf"' in nconf and re.search(r"^tls \{", nconf, re.M),
                "deploy/k8s: nats.conf has users (auth.conf) and TLS for clients")
        cl = re.search(r"^cluster \{(.*)^\}", nconf, re.M | re.S)
        self.ok(cl and re.search(r"^\s+tls \{[^}]*verify_and_map: true", cl.group(1), re.M) and
                re.search(r'^\s+authorization \{ user: "sluice-nats-route" \}', cl.group(1), re.M),
                "deploy/k8s: nats.conf cluster routes have tls and authorization")
        self.nats_confs["k8s"] = ("/etc/nats", {"nats.conf": nconf, "sluice.conf": conf}, ".", "tls")
        script = open(os.path.join(self.src, "deploy", "k8s", "secrets.sh")).read()
        for where0, d in docs:
            for v in d.get("spec", {}).get("template", {}).get("spec", {}).get("volumes", []):
                names = [v.get("secret", {}).get("secretName")] + [
                    src.get("secret", {}).get("name") for src in v.get("projected", {}).get("sources", [])]
                for n in names:
                    if n and n != "gateway-tls":
                        made = re.search(rf'secret "?{re.escape(n)}"? ', script) or (
                            n.startswith("sluice-nats-") and 'secret "sluice-nats-$role"' in script
                            and re.search(rf"for role in [^;]*\b{re.escape(n[len('sluice-nats-'):])}\b", script))
                        self.ok(made, f"{where0}: Secret {n} is made by deploy/k8s/secrets.sh")
        gw = open(os.path.join(self.src, "examples", "gateway.yaml")).read()
        self.ok(cms.get("sluice-config", {}).get("data", {}).get("gateway.yaml") == gw,
                "deploy/k8s: ConfigMap sluice-config holds examples/gateway.yaml verbatim")
        b = cms.get("envoy-bootstrap", {}).get("data", {}).get("bootstrap.yaml")
        if self.ok(b is not None, "deploy/k8s: ConfigMap envoy-bootstrap has bootstrap.yaml"):
            self.bootstraps["k8s"] = yaml.safe_load(b)
        # the ConfigMap's keys where the Envoy Deployment's projected volume puts them
        self.sds["k8s"] = {}
        for _, d in docs:
            for v in d.get("spec", {}).get("template", {}).get("spec", {}).get("volumes", []):
                for src in v.get("projected", {}).get("sources", []):
                    if src.get("configMap", {}).get("name") != "envoy-bootstrap":
                        continue
                    data = cms.get("envoy-bootstrap", {}).get("data", {})
                    for it in src["configMap"].get("items", []):
                        if it["path"].startswith("sds/") and it["key"] in data:
                            self.sds["k8s"]["/etc/envoy/" + it["path"]] = yaml.safe_load(data[it["key"]])
        self.network_policies(docs)
        kust = yaml.safe_load(open(os.path.join(self.src, "deploy", "k8s", "kustomization.yaml")))
        files = {os.path.basename(p) for p in glob.glob(os.path.join(self.src, "deploy", "k8s", "*.yaml"))}
        self.ok(set(kust.get("resources", [])) == files - {"kustomization.yaml"},
                "deploy/k8s: kustomization.yaml lists every manifest")

    def network_policies(self, docs):
        """Ingress is denied by default; every port a pod of the namespace
        exposes is let in by one policy, and only the gateway's listener
        from anywhere (NATS and sluice-xds from Sluice's pods or opted-in
        namespaces, metrics from a monitoring namespace)."""
        pols = [d for _, d in docs if d.get("kind") == "NetworkPolicy"]
        self.ok(any(p["spec"].get("podSelector") == {} and p["spec"].get("policyTypes") == ["Ingress"]
                    and not p["spec"].get("ingress") for p in pols),
                "deploy/k8s: a NetworkPolicy denies all ingress by default")

        def selects(pol, labels):
            sel = pol["spec"].get("podSelector", {})
            if any(labels.get(k) != v for k, v in sel.get("matchLabels", {}).items()):
                return False
            return all(labels.get(e["key"]) in e["values"] for e in sel.get("matchExpressions", [])
                       if e["operator"] == "In")

        for where0, d in docs:
            if d.get("kind") not in ("Deployment", "StatefulSet"):
                continue
            labels = d["spec"]["template"]["metadata"].get("labels", {})
            for c in d["spec"]["template"]["spec"].get("containers", []):
                for port in c.get("ports", []):
                    rules = [(p, r) for p in pols if selects(p, labels) for r in p["spec"].get("ingress", [])
                             if any(rp.get("port") in (port["containerPort"], port.get("name"))
                                    for rp in r.get("ports", []))]
                    open_to_all = any(not r.get("from") for _, r in rules)
                    public = labels.get("app.kubernetes.io/name") == "gateway-proxy" and port.get("name") == "http"
                    self.ok(rules and (public or not open_to_all) or (not rules and port.get("name") == "admin"),
                            f"{where0}: {d['kind']} {d['metadata']['name']} port {port.get('name')} "
                            f"({port['containerPort']}): {'let in by ' + ', '.join(p['metadata']['name'] for p, _ in rules) if rules else 'not reachable'}"
                            f"{' from anywhere' if open_to_all else ''}")

    # ---- NATS configurations against nats-server -t ------------------------------
    def nats_test(self, tmp):
        """Each deployment's NATS configuration, its absolute paths moved under
        a scratch directory holding what sluicectl nats-auth and certs make,
        must pass nats-server -t (parses, includes resolve, TLS files load)."""
        ctl, nats = self.binary("sluicectl"), self.binary("nats-server")
        if not self.ok(ctl and nats, "sluicectl and nats-server are there for nats-server -t"):
            return
        for label, (root, files, authdir, tlsdir) in self.nats_confs.items():
            d = os.path.join(tmp, label)
            base = d + root
            os.makedirs(base, exist_ok=True)
            for name, text in files.items():
                with open(os.path.join(base, name), "w") as f:
                    f.write(text.replace(root + "/", base + "/"))
            p = subprocess.run([ctl, "nats-auth", os.path.join(base, authdir)], capture_output=True, text=True)
            if tlsdir:
                q = subprocess.run([ctl, "certs", os.path.join(d, "certs"), "--nats-host", "nats"],
                                   capture_output=True, text=True)
                os.makedirs(os.path.join(base, tlsdir), exist_ok=True)
                for f in ("tls.crt", "tls.key", "ca.crt"):
                    shutil.copy(os.path.join(d, "certs", "nats", f), os.path.join(base, tlsdir, f))
                p = q if q.returncode else p
            main = os.path.join(base, next(iter(files)))
            t = subprocess.run([nats, "-c", main, "-t"], capture_output=True, text=True, timeout=30)
            self.ok(p.returncode == 0 and t.returncode == 0,
                    f"{label}: the NATS configuration passes nats-server -t with sluicectl's files",
                    (p.stderr + t.stdout + t.stderr).strip()[-400:])

    # ---- Envoy bootstraps -------------------------------------------------------
    def sds_files(self):
        """deploy/envoy/sds/*.yaml as installed: /etc/envoy/sds/<name> -> dict."""
        return {"/etc/envoy/sds/" + os.path.basename(p): yaml.safe_load(open(p))
                for p in sorted(glob.glob(os.path.join(self.src, "deploy", "envoy", "sds", "*.yaml")))}

    def bootstrap_copies(self):
        main = yaml.safe_load(open(os.path.join(self.src, "deploy", "envoy", "bootstrap.yaml")))
        self.bootstraps = {"envoy": main, **self.bootstraps}
        self.sds["envoy"] = self.sds_files()
        for label, b in self.bootstraps.items():
            paths = set(sds_paths(b))
            have = set(self.sds.get(label, {}))
            self.ok(paths and paths <= have, f"{label}: every SDS file the bootstrap names is there",
                    f"named {sorted(paths)}, there {sorted(have)}")

        def strip(b):
            b = copy.deepcopy(b)
            sa = b["static_resources"]["clusters"][0]["load_assignment"]["endpoints"][0]["lb_endpoints"][0]
            sa["endpoint"]["address"]["socket_address"]["address"] = "XDS"
            b["admin"]["address"]["socket_address"]["address"] = "ADMIN"
            return b
        for label, b in self.bootstraps.items():
            if label == "envoy":
                continue
            try:
                same = strip(b) == strip(main)
            except (KeyError, IndexError, TypeError) as e:
                same, e2 = False, e
            self.ok(same, f"{label} bootstrap equals deploy/envoy/bootstrap.yaml but for the xDS and admin addresses")


def main():
    args = sys.argv[1:]
    out = None
    if "--bootstrap-json" in args:
        i = args.index("--bootstrap-json")
        out = args[i + 1]
        del args[i:i + 2]
    if len(args) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    c = Checker(os.path.abspath(args[0]), os.path.abspath(args[1]))
    c.systemd()
    c.compose()
    c.k8s()
    c.bootstrap_copies()
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        c.nats_test(tmp)
    if out:
        os.makedirs(out, exist_ok=True)
        for label, b in c.bootstraps.items():
            with open(os.path.join(out, f"{label}-bootstrap.json"), "w") as f:
                json.dump(b, f)
            for path, sds in c.sds.get(label, {}).items():
                name = os.path.splitext(os.path.basename(path))[0]
                with open(os.path.join(out, f"{label}-sds-{name}.json"), "w") as f:
                    json.dump(sds, f)
    print(f"{c.passed} passed, {c.failed} failed")
    return 1 if c.failed else 0


if __name__ == "__main__":
    sys.exit(main())
