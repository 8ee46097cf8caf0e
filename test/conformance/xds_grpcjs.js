// Conformance: grpc-js-xds, a real proxyless xDS client, makes real RPCs to
// real back-ends on loopback through resources served by sluice-xds from
// the sluice_xds KV. Changes in KV (route switch, weights, endpoints) must
// move the traffic. A listener the client NACKs points at another back-end
// than the last good one: traffic must stay where it was, the client's own
// NACK must reach sluice-xds (once), and traffic moves only when the fixed
// listener comes.
'use strict';
const path = require('path');
const assert = require('assert');
const env = require('./xds_env');

async function main() {
  const dir = env.tmpdir();
  const natsUrl = await env.startNats(dir);
  const xds = await env.startXds(natsUrl);
  process.env.GRPC_XDS_BOOTSTRAP = env.bootstrap(dir, xds.port);

  const grpc = require('@grpc/grpc-js');
  const loader = require('@grpc/proto-loader');
  require('@grpc/grpc-js-xds').register();
  const def = grpc.loadPackageDefinition(loader.loadSync(path.join(__dirname, 'echo.proto'))).sluice.test;

  // Two back-ends, and a second one answering "alpha".
  const backends = {};
  for (const [id, name] of [['alpha', 'alpha'], ['beta', 'beta'], ['alpha2', 'alpha']]) {
    const srv = new grpc.Server();
    srv.addService(def.Echo.service, { Who: (call, cb) => cb(null, { backend: name }) });
    const port = await new Promise((res, rej) => srv.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(),
                                                              (e, p) => (e ? rej(e) : res(p))));
    backends[id] = port;
  }
  const ep = (name) => `127.0.0.1:${backends[name]}`;

  env.apply(natsUrl, ['listener:echo:echo-routes', 'route:echo-routes:c-alpha', 'cluster:c-alpha', 'cluster:c-beta',
                      `endpoint:c-alpha:${ep('alpha')}`, `endpoint:c-beta:${ep('beta')}`]);
  const client = new def.Echo('xds:///echo', grpc.credentials.createInsecure());
  const who = () => new Promise((res, rej) => client.Who({}, { deadline: Date.now() + 3000 },
                                                        (e, r) => (e ? rej(e) : res(r.backend))));

  async function until(pred, what, ms = 15000) {
    const end = Date.now() + ms;
    let last;
    while (Date.now() < end) {
      try { last = await who(); if (pred(last)) return last; } catch (e) { last = e.message; }
      await env.sleep(100);
    }
    throw new Error(`timed out waiting for ${what}; last: ${last}\n${xds.log()}`);
  }
  async function sample(n) {
    const seen = {};
    for (let i = 0; i < n; i++) { const b = await who(); seen[b] = (seen[b] || 0) + 1; }
    return seen;
  }

  await until((b) => b === 'alpha', 'first RPC to alpha');
  console.log('ok 1 - routed to alpha');

  env.apply(natsUrl, ['listener:echo:echo-routes', 'route:echo-routes:c-beta', 'cluster:c-alpha', 'cluster:c-beta',
                      `endpoint:c-alpha:${ep('alpha')}`, `endpoint:c-beta:${ep('beta')}`]);
  await until((b) => b === 'beta', 'route switched to beta');
  let s = await sample(20);
  assert.deepStrictEqual(s, { beta: 20 });
  console.log('ok 2 - route switch moves traffic to beta');

  env.apply(natsUrl, ['listener:echo:echo-routes', 'route:echo-routes:c-alpha=1+c-beta=1', 'cluster:c-alpha',
                      'cluster:c-beta', `endpoint:c-alpha:${ep('alpha')}`, `endpoint:c-beta:${ep('beta')}`]);
  await until(() => true, 'any');
  const end = Date.now() + 15000;
  do { s = await sample(40); } while (!(s.alpha && s.beta) && Date.now() < end);
  assert.ok(s.alpha > 0 && s.beta > 0, `weighted split: ${JSON.stringify(s)}`);
  console.log(`ok 3 - weighted clusters split traffic ${JSON.stringify(s)}`);

  // Endpoints move: cluster c-alpha now points at the beta back-end.
  env.apply(natsUrl, ['listener:echo:echo-routes', 'route:echo-routes:c-alpha', 'cluster:c-alpha',
                      `endpoint:c-alpha:${ep('beta')}`]);
  await until((b) => b === 'beta', 'endpoint change');
  s = await sample(20);
  assert.deepStrictEqual(s, { beta: 20 });
  console.log('ok 4 - endpoint change and cluster removal followed');

  // NACK. Good state: listener echo -> route echo-routes -> c-alpha, and a
  // second route configuration echo-routes-b -> c-beta that nothing uses.
  const nack = ['route:echo-routes:c-alpha', 'route:echo-routes-b:c-beta', 'cluster:c-alpha', 'cluster:c-beta',
                `endpoint:c-alpha:${ep('alpha')}`, `endpoint:c-beta:${ep('beta')}`];
  env.apply(natsUrl, ['listener:echo:echo-routes', ...nack]);
  await until((b) => b === 'alpha', 'back on alpha');
  assert.deepStrictEqual(await sample(20), { alpha: 20 });
  // The bad listener (no RDS config source: the client must NACK it) points
  // at echo-routes-b, the beta back-end; nothing else changes. Traffic moves
  // only if the client took the bad listener.
  const nacks0 = env.metric(await env.metrics(xds.metricsPort), 'sluice_xds_nacks_total', 'type="lds"');
  const mark = xds.log().length;
  env.apply(natsUrl, ['badlistener:echo:echo-routes-b', ...nack]);
  // The client's own NACK: its ADS request for LDS with error_detail, which
  // sluice-xds logs with the node id and the client's message.
  const seen = await env.waitNack(xds, mark, env.nodeId(), 'lds');
  console.log(`ok 5 - the client NACKed the listener itself: error=${seen.error}`);
  s = await sample(30);
  assert.deepStrictEqual(s, { alpha: 30 }, `traffic stays on the last good listener while the bad one is pending: ${JSON.stringify(s)}`);
  console.log('ok 6 - the last good listener keeps serving (all on alpha)');
  // No NACK loop: a later commit (c-alpha gains a second alpha back-end) is
  // served and ACKed; by then the listener was neither re-sent nor NACKed.
  const nacks1 = env.metric(await env.metrics(xds.metricsPort), 'sluice_xds_nacks_total', 'type="lds"');
  assert.strictEqual(nacks1, nacks0 + 1, 'one NACK');
  const acks0 = env.metric(await env.metrics(xds.metricsPort), 'sluice_xds_acks_total', 'type="eds"');
  env.apply(natsUrl, ['badlistener:echo:echo-routes-b', ...nack.slice(0, 4),
                      `endpoint:c-alpha:${ep('alpha')}+${ep('alpha2')}`, `endpoint:c-beta:${ep('beta')}`]);
  await env.waitMetric(xds, 'sluice_xds_acks_total', 'type="eds"', (v) => v > acks0, 'the EDS change ACKed');
  assert.strictEqual(env.metric(await env.metrics(xds.metricsPort), 'sluice_xds_nacks_total', 'type="lds"'), nacks1,
                     'no NACK loop');
  assert.strictEqual(env.nackLines(xds.log().slice(mark), env.nodeId(), 'lds').length, 1, 'one NACK logged');
  assert.deepStrictEqual(await sample(20), { alpha: 20 });
  console.log(`ok 7 - a later commit is ACKed with no second NACK (${nacks1}), traffic still on alpha`);

  // The fixed listener, pointing at echo-routes-b: now traffic moves.
  env.apply(natsUrl, ['listener:echo:echo-routes-b', ...nack]);
  await until((b) => b === 'beta', 'the fixed listener moves traffic to beta');
  assert.deepStrictEqual(await sample(20), { beta: 20 });
  console.log('ok 8 - the fixed listener is accepted and moves traffic to beta');
  const mt = await env.metrics(xds.metricsPort);
  assert.ok(env.metric(mt, 'sluice_xds_acks_total', 'type="cds"') > 0);
  assert.ok(env.metric(mt, 'sluice_xds_streams', 'service="ads",protocol="sotw"') >= 1);
  console.log('ok 9 - metrics: acks and streams');
  client.close();
  await env.stopXds(xds);
  console.log('ok 10 - sluice-xds stops on SIGTERM: exit 0, no sanitizer report');
  process.exit(0);
}

main().catch((e) => { console.error('FAIL', e); process.exit(1); });
