// Conformance: grpc-go's xDS resolver (test/conformance/grpcgo, built by the
// build as grpcgo-client) making real RPCs to real back-ends through
// resources served by sluice-xds. Same walk as the grpc-js test: route
// switch, weights, endpoint change, a NACKed listener, recovery.
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
  for (const name of ['alpha', 'beta']) {
    const srv = new grpc.Server();
    srv.addService(def.Echo.service, { Who: (call, cb) => cb(null, { backend: name }) });
    backends[name] = await new Promise((res, rej) => srv.bindAsync('127.0.0.1:0',
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
  const n0 = env.metric(await env.metrics(xds.metricsPort), 'sluice_xds_nacks_total', 'type="lds"');
  env.apply(natsUrl, ['badlistener:echo:echo-routes', 'route:echo-routes:c-alpha', ...base]);
  let n1 = n0;
  for (let i = 0; i < 100 && n1 === n0; i++) {
    await env.sleep(100);
    n1 = env.metric(await env.metrics(xds.metricsPort), 'sluice_xds_nacks_total', 'type="lds"');
  }
  assert.ok(n1 > n0, 'NACK counted');
  const c = await calls(10);
  assert.ok(!Object.keys(c).some((k) => k.startsWith('error')), `last good config serves: ${JSON.stringify(c)}`);
  console.log('ok 4 - NACK counted, last good config serves');
  env.apply(natsUrl, ['listener:echo:echo-routes', 'route:echo-routes:c-alpha', ...base]);
  await until((x) => x.alpha === 5, 'recovery');
  console.log('ok 5 - fixed config accepted');
  go.stdin.end();
  process.exit(0);
}

main().catch((e) => { console.error('FAIL', e); process.exit(1); });
