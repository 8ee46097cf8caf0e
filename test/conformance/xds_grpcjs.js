// Conformance: grpc-js-xds, a real proxyless xDS client, makes real RPCs to
// real back-ends on loopback through resources served by sluice-xds from
// the sluice_xds KV. Changes in KV (route switch, weights, endpoints) must
// move the traffic; a resource the client NACKs must be counted and
// reported, and the client must keep using the last good config.
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

  // Two back-ends.
  const backends = {};
  for (const name of ['alpha', 'beta']) {
    const srv = new grpc.Server();
    srv.addService(def.Echo.service, { Who: (call, cb) => cb(null, { backend: name }) });
    const port = await new Promise((res, rej) => srv.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(),
                                                              (e, p) => (e ? rej(e) : res(p))));
    backends[name] = port;
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

  // A listener the client must NACK: no router filter.
  let m0 = await env.metrics(xds.metricsPort);
  const nacks0 = env.metric(m0, 'sluice_xds_nacks_total', 'type="lds"');
  env.apply(natsUrl, ['badlistener:echo:echo-routes', 'route:echo-routes:c-alpha', 'cluster:c-alpha',
                      `endpoint:c-alpha:${ep('alpha')}`]);
  let nacks = nacks0;
  for (let i = 0; i < 100 && nacks === nacks0; i++) {
    await env.sleep(100);
    nacks = env.metric(await env.metrics(xds.metricsPort), 'sluice_xds_nacks_total', 'type="lds"');
  }
  assert.ok(nacks > nacks0, 'NACK counted');
  assert.ok(/msg="NACK".*type=lds/.test(xds.log()), 'NACK logged');
  // Keeps the last good listener (and its routes): traffic still flows.
  s = await sample(10);
  assert.ok(Object.keys(s).length > 0);
  await env.sleep(1000);
  const nacksLater = env.metric(await env.metrics(xds.metricsPort), 'sluice_xds_nacks_total', 'type="lds"');
  assert.strictEqual(nacksLater, nacks, 'no NACK loop');
  console.log(`ok 5 - NACK counted (${nacks}), no NACK loop, client keeps serving`);

  env.apply(natsUrl, ['listener:echo:echo-routes', 'route:echo-routes:c-alpha', 'cluster:c-alpha',
                      `endpoint:c-alpha:${ep('alpha')}`]);
  await until((b) => b === 'alpha', 'recovery after the fix');
  console.log('ok 6 - fixed config is accepted');
  const mt = await env.metrics(xds.metricsPort);
  assert.ok(env.metric(mt, 'sluice_xds_acks_total', 'type="cds"') > 0);
  assert.ok(env.metric(mt, 'sluice_xds_streams', 'service="ads",protocol="sotw"') >= 1);
  console.log('ok 7 - metrics: acks and streams');
  client.close();
  process.exit(0);
}

main().catch((e) => { console.error('FAIL', e); process.exit(1); });
