#!/usr/bin/env node
// Apply a VirtualService through Sluice's NATS API and print its status.
//
//   npm ci                    # at the repository root: nats, protobufjs
//   node hello.js [--nats-url URL] [--name NAME] [--namespace NS]
//
// 1. Subscribes to sluice.status.VirtualService.<ns>.<name> (a packed
//    sluice.v1.Status, published by sluice-reporter on every change).
// 2. Sends ../hello.yaml to sluice.api.apply (request/reply, Content-Type
//    application/yaml) and prints the ApplyResponse (protobuf).
// 3. Prints the first status event; when the apply changed nothing (so no new
//    status is published) it reads the current one from the KV bucket
//    sluice_status instead. With --settled, a Pending status (the reporter's
//    "waiting for the translator") is followed until the next one.
//
// Credentials: the NATS user nkey seed file in env NATS_NKEY; without it,
// <state>/nats-auth/client.nk when that file exists, <state> being
// $SLUICE_STATE, else .state in the current directory or the repository's
// (where `make run` provisions it: the `client` role, in the NATS account
// CLIENTS, may request sluice.api.apply / sluice.api.delete, subscribe to
// sluice.status.> and _INBOX.> and read the sluice_status bucket through the
// JetStream API prefix $JS.sluice.API); with none, no credentials (a NATS
// without authentication).
//
// protobufjs reads proto/sluice/v1/*.proto directly: no generated code, no
// protoc. Exit status 0 when the apply was accepted and a status was seen
// (with --settled: a status other than Pending).
'use strict';
const fs = require('fs');
const path = require('path');
const { parseArgs } = require('util');
const { connect, headers, nkeyAuthenticator } = require('nats');
const protobuf = require('protobufjs');

const { values: a } = parseArgs({
  options: {
    'nats-url': { type: 'string', default: process.env.NATS_URL || 'nats://127.0.0.1:4222' },
    name: { type: 'string', default: 'hello-node' },
    namespace: { type: 'string', default: 'default' },
    timeout: { type: 'string', default: '10' }, // seconds
    settled: { type: 'boolean', default: false }, // after a Pending status, wait for the next one
    'proto-dir': { type: 'string', default: path.join(__dirname, '..', '..', '..', 'proto') },
  },
});
const timeoutMs = Number(a.timeout) * 1000;

function loadMessages(protoDir) {
  const root = new protobuf.Root();
  root.resolvePath = (origin, target) =>
    target.startsWith('google/protobuf/') ? target : path.join(protoDir, target); // well-known types are built in
  root.loadSync('sluice/v1/events.proto', { keepCase: false });
  return { ApplyResponse: root.lookupType('sluice.v1.ApplyResponse'), Status: root.lookupType('sluice.v1.Status') };
}

// The seed file to authenticate with (see the top of this file), or null.
function nkeySeedFile() {
  if (process.env.NATS_NKEY) return process.env.NATS_NKEY;
  const dirs = process.env.SLUICE_STATE ? [process.env.SLUICE_STATE]
    : ['.state', path.join(__dirname, '..', '..', '..', '.state')];
  for (const d of dirs) {
    const f = path.join(d, 'nats-auth', 'client.nk');
    if (fs.statSync(f, { throwIfNoEntry: false })?.isFile()) return f;
  }
  return null;
}

function showStatus(Status, data) {
  const st = Status.toObject(Status.decode(data), { enums: String, longs: String, defaults: true });
  console.log(`status: ${st.state} reportedBy=${st.reportedBy || '-'}` + (st.reason ? ` reason=${JSON.stringify(st.reason)}` : ''));
  console.log('  ' + JSON.stringify(st));
  return st;
}

async function main() {
  const m = loadMessages(a['proto-dir']);
  const doc = fs.readFileSync(path.join(__dirname, '..', 'hello.yaml'), 'utf8')
    .replaceAll('NAMESPACE', a.namespace).replaceAll('NAME', a.name);

  const seed = nkeySeedFile();
  const opts = { servers: a['nats-url'] };
  if (seed) {
    console.error(`nats: ${a['nats-url']} as the nkey in ${seed}`);
    opts.authenticator = nkeyAuthenticator(new TextEncoder().encode(fs.readFileSync(seed, 'utf8').trim()));
  } else {
    console.error(`nats: ${a['nats-url']} without credentials`);
  }
  let nc;
  try {
    nc = await connect(opts);
  } catch (err) {
    console.error(`error: cannot connect to ${a['nats-url']}: ${err.message}`);
    return 1;
  }
  try {
    const sub = nc.subscribe(`sluice.status.VirtualService.${a.namespace}.${a.name}`); // before applying

    const h = headers();
    h.set('Content-Type', 'application/yaml');
    h.set('Sluice-Filename', 'hello.yaml');
    h.set('Sluice-Source', 'example-node');
    const reply = await nc.request('sluice.api.apply', new TextEncoder().encode(doc), { timeout: timeoutMs, headers: h });
    const resp = m.ApplyResponse.toObject(m.ApplyResponse.decode(reply.data), { enums: String, longs: String, defaults: true });
    console.log(`apply: accepted=${resp.accepted}` + (resp.error ? ` error=${JSON.stringify(resp.error)}` : ''));
    for (const r of resp.results) {
      const what = r.unchanged ? 'unchanged' : `resourceVersion=${r.resourceVersion}`;
      console.log(`  ${r.resource.kind} ${r.resource.namespace}/${r.resource.name}: ${r.state} ${what}`);
      for (const e of [...r.errors, ...r.warnings]) console.log(`    ${e}`);
    }
    if (!resp.accepted) return 1;

    // A deleted status is an event without body: nextEvent skips it.
    const deadline = Date.now() + timeoutMs;
    const events = sub[Symbol.asyncIterator]();
    const nextEvent = async () => {
      const timer = setTimeout(() => sub.unsubscribe(), Math.max(deadline - Date.now(), 1));
      try {
        for (let r = await events.next(); !r.done; r = await events.next()) {
          if (r.value.data.length === 0) continue;
          console.log(`status event on ${r.value.subject}`);
          return showStatus(m.Status, r.value.data);
        }
        return null;
      } finally {
        clearTimeout(timer);
      }
    };
    let st = null;
    if (!resp.results.every((r) => r.unchanged)) st = await nextEvent();
    if (!st) {
      // Nothing changed, so no new status is published: read the stored one.
      // Sluice's JetStream API as the clients' NATS account imports it
      // (sluice/natsauth.h); without credentials, the standard one.
      const js = nc.jetstream(seed ? { apiPrefix: '$JS.sluice.API', checkAPI: false } : {});
      const kv = await js.views.kv('sluice_status', { bindOnly: true });
      const e = await kv.get(`VirtualService.${a.namespace}.${a.name}`);
      if (!e || e.operation !== 'PUT') {
        console.error(`no status for VirtualService ${a.namespace}/${a.name} within ${a.timeout}s (is sluice-reporter running?)`);
        return 1;
      }
      console.log(`stored status of VirtualService ${a.namespace}/${a.name}`);
      st = showStatus(m.Status, e.value);
    }
    while (a.settled && st.state === 'Pending') { // wait for the translator's verdict
      if (!(st = await nextEvent())) {
        console.error(`no settled status for VirtualService ${a.namespace}/${a.name} within ${a.timeout}s (is sluice-translator running?)`);
        return 1;
      }
    }
    return 0;
  } finally {
    await nc.close();
  }
}

main().then((code) => process.exit(code), (err) => { console.error('error:', err.message); process.exit(1); });
