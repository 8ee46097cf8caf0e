// Conformance: grpc-go's xDS resolver (test/conformance/grpcgo, built by the
// build as grpcgo-client) making real RPCs to real back-ends through
// resources served by sluice-xds. Same walk as the grpc-js test: route
// switch, weights, a NACKed listener pointing at another back-end (traffic
// stays, grpc-go's own NACK seen once), the fixed listener moving traffic.
'use strict';
const path = require('path');
const assert = require('assert');
const readline = require('readline');
const { spawn } = require('child_process');
const env = require('./xds_env');

async function main() {
  const dir = env.tmpdir();
  const natsUrl = await env.startNats(dir);
  const xds = await env.startXds(natsUrl);
  const boot = env.bootstrap(dir, xds.port);

  const grpc = require('@grpc/grpc-js');
  const loader = require('@grpc/proto-loader');
  const def = grpc.loadPackageDefinition(loader.loadSync(path.join(__dirname, 'echo.proto'))).sluice.test;
  const backends = {};
  // Two back-ends, and a second one answering "alpha".
  for (const [id, name] of [['alpha', 'alpha'], ['beta', 'beta'], ['alpha2', 'alpha']]) {
    const srv = new grpc.Server();
    srv.addService(def.Echo.service, { Who: (call, cb) => cb(null, { backend: name }) });
    backends[id] = await new Promise((res, rej) => srv.bindAsync('127.0.0.1:0',
      grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))));
  }
  const ep = (n) => `127.0.0.1:${backends[n]}`;
  const base = ['cluster:c-alpha', 'cluster:c-beta', `endpoint:c-alpha:${ep('alpha')}`, `endpoint:c-beta:${ep('beta')}`];
  env.apply(natsUrl, ['listener:echo:echo-routes', 'route:echo-routes:c-alpha', ...base]);

  const bin = process.env.GRPCGO_CLIENT || path.join(env.BIN, 'test/conformance/grpcgo-client');
  const go = spawn(bin, ['-target', 'xds:///echo'], { env: { ...process.env, GRPC_XDS_BOOTSTRAP: boot },
                                                     stdio: ['pipe', 'pipe', 'inherit'] });
  process.on('exit', () => go.kill('SIGKILL'));
  const lines = readline.createInterface({ input: go.stdout });
  const queue = [];
  let waiter = null;
  lines.on('line', (l) => { if (waiter) { const w = waiter; waiter = null; w(l); } else queue.push(l); });
  const calls = (n) => new Promise((res) => {
    go.stdin.write(`${n}\n`);
    const take = (l) => res(JSON.parse(l));
    if (queue.length) take(queue.shift()); else waiter = take;
  });
  async function until(pred, what, ms = 20000) {
    const end = Date.now() + ms;
    let last;
    while (Date.now() < end) {
      last = await calls(5);
      if (pred(last)) return last;
      await env.sleep(100);
    }
    throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(last)}\n${xds.log()}`);
  }

  await until((c) => c.alpha === 5, 'first RPCs to alpha');
  console.log('ok 1 - grpc-go routed to alpha');
  env.apply(natsUrl, ['listener:echo:echo-routes', 'route:echo-routes:c-beta', ...base]);
  await until((c) => c.beta === 5, 'route switch');
  console.log('ok 2 - route switch moves traffic to beta');
  env.apply(natsUrl, ['listener:echo:echo-routes', 'route:echo-routes:c-alpha=1+c-beta=1', ...base]);
  await until((c) => c.alpha > 0 && c.beta > 0, 'weighted split');
  console.log('ok 3 - weighted clusters split traffic');
  // NACK. Good state: listener echo -> route echo-routes -> c-alpha, and a
  // second route configuration echo-routes-b -> c-beta that nothing uses.
  const nack = ['route:echo-routes:c-alpha', 'route:echo-routes-b:c-beta', ...base];
  env.apply(natsUrl, ['listener:echo:echo-routes', ...nack]);
  await until((c) => c.alpha === 5, 'back on alpha');
  // The bad listener (no RDS config source: the client must NACK it) points
  // at echo-routes-b, the beta back-end; nothing else changes.
  const n0 = env.metric(await env.metrics(xds.metricsPort), 'sluice_xds_nacks_total', 'type="lds"');
  const mark = xds.log().length;
  env.apply(natsUrl, ['badlistener:echo:echo-routes-b', ...nack]);
  // grpc-go's own NACK (its ADS request with error_detail), as sluice-xds
  // logs it with the node id and the client's message.
  const seen = await env.waitNack(xds, mark, env.nodeId(), 'lds');
  console.log(`ok 4 - grpc-go NACKed the listener itself: error=${seen.error}`);
  let c = await calls(30);
  assert.deepStrictEqual(c, { alpha: 30 }, `traffic stays on the last good listener while the bad one is pending: ${JSON.stringify(c)}`);
  console.log('ok 5 - the last good listener keeps serving (all on alpha)');
  // No NACK loop: a later commit (c-alpha gains a second alpha back-end) is
  // served and ACKed; by then the listener was neither re-sent nor NACKed.
  const n1 = env.metric(await env.metrics(xds.metricsPort), 'sluice_xds_nacks_total', 'type="lds"');
  assert.strictEqual(n1, n0 + 1, 'one NACK');
  const a0 = env.metric(await env.metrics(xds.metricsPort), 'sluice_xds_acks_total', 'type="eds"');
  env.apply(natsUrl, ['badlistener:echo:echo-routes-b', ...nack.slice(0, 4),
                      `endpoint:c-alpha:${ep('alpha')}+${ep('alpha2')}`, `endpoint:c-beta:${ep('beta')}`]);
  await env.waitMetric(xds, 'sluice_xds_acks_total', 'type="eds"', (v) => v > a0, 'the EDS change ACKed');
  assert.strictEqual(env.metric(await env.metrics(xds.metricsPort), 'sluice_xds_nacks_total', 'type="lds"'), n1,
                     'no NACK loop');
  assert.strictEqual(env.nackLines(xds.log().slice(mark), env.nodeId(), 'lds').length, 1, 'one NACK logged');
  c = await calls(20);
  assert.deepStrictEqual(c, { alpha: 20 }, JSON.stringify(c));
  console.log('ok 6 - a later commit is ACKed with no second NACK, traffic still on alpha');
  // The fixed listener, pointing at echo-routes-b: now traffic moves.
  env.apply(natsUrl, ['listener:echo:echo-routes-b', ...nack]);
  await until((x) => x.beta === 5, 'the fixed listener moves traffic to beta');
  c = await calls(20);
  assert.deepStrictEqual(c, { beta: 20 }, JSON.stringify(c));
  console.log('ok 7 - the fixed listener is accepted and moves traffic to beta');
  go.stdin.end();
  await env.stopXds(xds);
  console.log('ok 8 - sluice-xds stops on SIGTERM: exit 0, no sanitizer report');
  process.exit(0);
}

main().catch((e) => { console.error('FAIL', e); process.exit(1); });
