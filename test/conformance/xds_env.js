// Shared set-up of the xDS conformance tests: a real nats-server with
// JetStream, the real sluice-xds, xds-kvtool to write resources, and gRPC
// back-ends on loopback. Every process is killed on exit.
'use strict';
const { spawn, execFileSync } = require('child_process');
const net = require('net');
const fs = require('fs');
const os = require('os');
const path = require('path');
const http = require('http');

const BIN = process.env.SLUICE_BINARY_DIR || path.resolve(__dirname, '../../build');
const SRC = process.env.SLUICE_SOURCE_DIR || path.resolve(__dirname, '../..');
const NATS = process.env.SLUICE_NATS_SERVER || 'nats-server';
const children = [];

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)); });
    s.on('error', reject);
  });
}

function sleep(ms) { return new Promise((r) => setTimeout(r, ms)); }

function cleanup() {
  for (const c of children) { try { c.kill('SIGKILL'); } catch (e) { /* gone */ } }
}
process.on('exit', cleanup);
process.on('SIGINT', () => { cleanup(); process.exit(130); });

async function startNats(dir) {
  const port = await freePort();
  const c = spawn(NATS, ['-js', '-a', '127.0.0.1', '-p', String(port), '-sd', path.join(dir, 'js')],
                  { stdio: ['ignore', 'ignore', 'pipe'] });
  children.push(c);
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise((r) => {
      const s = net.connect(port, '127.0.0.1', () => { s.end(); r(true); });
      s.on('error', () => r(false));
    });
    if (ok) return `nats://127.0.0.1:${port}`;
    await sleep(50);
  }
  throw new Error('nats-server did not start');
}

async function startXds(natsUrl, extra = []) {
  const bin = path.join(BIN, 'services/xds/sluice-xds');
  const c = spawn(bin, ['--nats-url', natsUrl, '--listen', '127.0.0.1:0', '--metrics-addr', '127.0.0.1:0', ...extra],
                  { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(c);
  let log = '';
  c.stderr.on('data', (d) => { log += d; if (process.env.XDS_VERBOSE) process.stderr.write(d); });
  const line = await new Promise((resolve, reject) => {
    let out = '';
    c.stdout.on('data', (d) => {
      out += d;
      const m = /listening on port (\d+) metrics port (\d+)/.exec(out);
      if (m) resolve(m);
    });
    c.on('exit', (code) => reject(new Error(`sluice-xds exited ${code}: ${log}`)));
  });
  let exited = null;
  c.on('exit', (code, signal) => { exited = { code, signal }; });
  return { proc: c, port: Number(line[1]), metricsPort: Number(line[2]), log: () => log, exited: () => exited };
}

// A sanitizer's report in a process's output (an ASan+UBSan build under
// `make asan`: leaks are reported at exit).
const SANITIZER = /ERROR: [A-Za-z]+Sanitizer|runtime error:/;

// Stops sluice-xds as an orchestrator does (SIGTERM): it must exit 0
// within 10 s, with no sanitizer report in its output (issue 14).
async function stopXds(xds) {
  xds.proc.kill('SIGTERM');
  for (let i = 0; i < 200 && !xds.exited(); i++) await sleep(50);
  const e = xds.exited();
  if (!e) throw new Error(`sluice-xds still running 10 s after SIGTERM\n${xds.log()}`);
  if (e.code !== 0) throw new Error(`sluice-xds exited ${e.code ?? e.signal} after SIGTERM\n${xds.log()}`);
  if (SANITIZER.test(xds.log())) throw new Error(`sluice-xds: sanitizer report\n${xds.log()}`);
}

function apply(natsUrl, specs, proxy) {
  const args = ['--nats-url', natsUrl];
  if (proxy) args.push('--proxy', proxy);
  return execFileSync(path.join(BIN, 'test/tools/xds-kvtool'), [...args, 'apply', ...specs]).toString();
}

function metrics(port) {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path: '/metrics' }, (res) => {
      let b = '';
      res.on('data', (d) => { b += d; });
      res.on('end', () => resolve(b));
    }).on('error', reject);
  });
}

function metric(text, name, labels) {
  const re = new RegExp(`^${name}\\{${labels}\\} (\\S+)$`, 'm');
  const m = re.exec(text);
  return m ? Number(m[1]) : 0;
}

function bootstrap(dir, xdsPort, role) {
  const f = path.join(dir, 'bootstrap.json');
  const node = { id: nodeId(), locality: { zone: 'local' } };
  if (role) node.metadata = { role };
  fs.writeFileSync(f, JSON.stringify({
    xds_servers: [{ server_uri: `127.0.0.1:${xdsPort}`, channel_creds: [{ type: 'insecure' }],
                    server_features: ['xds_v3'] }],
    node,
  }));
  return f;
}

// The node id env.bootstrap() gives this process's clients.
function nodeId() { return `conformance-${process.pid}`; }

// logfmt fields of one line: key -> value (quotes and escapes removed).
function logFields(line) {
  const f = {};
  for (const m of line.matchAll(/(\w+)=("(?:[^"\\]|\\.)*"|\S+)/g)) {
    f[m[1]] = m[2].startsWith('"') ? JSON.parse(m[2]) : m[2];
  }
  return f;
}

// The NACKs sluice-xds logged in log (its stderr) from node for type: each
// is a request the client itself sent with error_detail set; the fields
// (error: the client's own message, version: the version it still holds).
function nackLines(log, node, type) {
  return log.split('\n').filter((l) => l.includes('msg="NACK"')).map(logFields)
    .filter((f) => f.node === node && f.type === type);
}

// Waits for the first NACK of node for type logged after offset mark.
async function waitNack(xds, mark, node, type, ms = 15000) {
  const end = Date.now() + ms;
  for (;;) {
    const n = nackLines(xds.log().slice(mark), node, type);
    if (n.length) {
      if (!n[0].error) throw new Error(`NACK without the client's error_detail: ${JSON.stringify(n[0])}`);
      return n[0];
    }
    if (Date.now() > end) throw new Error(`no NACK from ${node} for ${type}\n${xds.log().slice(mark)}`);
    await sleep(50);
  }
}

// Waits until pred(value of metric name{labels}) holds.
async function waitMetric(xds, name, labels, pred, what, ms = 15000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = metric(await metrics(xds.metricsPort), name, labels);
    if (pred(v)) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what} (${name}{${labels}} = ${v})`);
    await sleep(50);
  }
}

function tmpdir() { return fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-xds-conf-')); }

module.exports = { freePort, sleep, startNats, startXds, stopXds, apply, metrics, metric, bootstrap, tmpdir, nodeId, nackLines,
                   waitNack, waitMetric, SRC, BIN };
