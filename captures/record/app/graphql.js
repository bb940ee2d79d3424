'use strict';
// GraphQL over WebSocket endpoints: graphql-ws (graphql-transport-ws) and the legacy
// subscriptions-transport-ws (subprotocol "graphql-ws").
// usage: node graphql.js ROLE MODE --port P --log FILE
//   MODE transport | init-timeout | legacy | mismatch (a legacy client against a graphql-ws server)

const [role, mode] = process.argv.slice(2, 4);
const A = {};
for (let i = 4; i < process.argv.length; i += 2) A[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
const H = require('./hook')(role, A.log);
const hook = require('./hook');
let conn = null;
hook.onOpen = (ws, c) => { conn = c; };
const app = (fields) => H.app(conn, fields);
const port = Number(A.port);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const { buildSchema, execute, subscribe, parse } = require('graphql');
const schema = buildSchema(`
  type Query { hello: String, fail: String }
  type Subscription { greetings: String }
`);
const roots = {
  hello: () => 'world',
  fail: () => { throw new Error('resolver exploded'); },
  greetings: async function* () { for (const hi of ['Hi', 'Bonjour', 'Hola']) { await sleep(30); yield { greetings: hi }; } },
};

if (role === 'server') {
  const http = require('http');
  const { WebSocketServer } = require('ws');
  const srv = http.createServer();
  if (mode === 'legacy') {
    hook.impl = 'subscriptions-transport-ws ' + hook.version('subscriptions-transport-ws');
    const { SubscriptionServer } = require('subscriptions-transport-ws');
    SubscriptionServer.create({
      schema, execute, subscribe, rootValue: roots, keepAlive: 200,
      onConnect: (params) => { app({ what: 'connect', params }); return true; },
      onOperation: (msg, params) => { app({ what: 'operation', id: msg.id, type: msg.type }); return params; },
      onOperationComplete: (ws, id) => app({ what: 'operation_complete', id }),
      onDisconnect: () => { app({ what: 'disconnect' }); setTimeout(() => process.exit(0), 300); },
    }, { server: srv, path: '/graphql' });
  } else {
    hook.impl = 'graphql-ws ' + hook.version('graphql-ws');
    const { useServer } = require('graphql-ws/use/ws');
    const wss = new WebSocketServer({ server: srv, path: '/graphql' });
    useServer({
      schema, roots: { query: roots, subscription: { greetings: roots.greetings } }, rootValue: roots,
      connectionInitWaitTimeout: 300,
      onConnect: () => { app({ what: 'connect' }); return true; },
      onSubscribe: (ctx, id, payload) => app({ what: 'subscribe', id, query: payload.query }),
      onNext: (ctx, id) => app({ what: 'next', id }),
      onError: (ctx, id, payload, errors) => app({ what: 'error', id, errors: errors.map((e) => e.message) }),
      onComplete: (ctx, id) => app({ what: 'complete', id }),
      onClose: (ctx, code, reason) => { app({ what: 'close', code, reason: String(reason) }); },
    }, wss);
    wss.on('connection', (ws) => ws.on('close', (code, reason) => {
      app({ what: 'closed', code, reason: String(reason) });
      setTimeout(() => process.exit(0), 300);
    }));
  }
  srv.listen(port, '127.0.0.1', () => console.log('READY'));
  setTimeout(() => process.exit(0), 10000);
} else {
  const WebSocket = require('ws');
  const url = `ws://127.0.0.1:${port}/graphql`;
  if (mode === 'init-timeout') {
    // A client that opens the socket and never sends connection_init.
    hook.impl = 'node-ws client (no connection_init)';
    const ws = new WebSocket(url, 'graphql-transport-ws');
    ws.on('close', (code, reason) => { app({ what: 'closed', code, reason: String(reason) }); setTimeout(() => process.exit(0), 200); });
  } else if (mode === 'legacy' || mode === 'mismatch') {
    hook.impl = 'subscriptions-transport-ws ' + hook.version('subscriptions-transport-ws');
    const { SubscriptionClient } = require('subscriptions-transport-ws');
    const client = new SubscriptionClient(url, { reconnect: false, timeout: 5000 }, WebSocket);
    client.onConnected(() => app({ what: 'connected' }));
    client.onDisconnected(() => { app({ what: 'disconnected' }); setTimeout(() => process.exit(0), 300); });
    client.onError((e) => app({ what: 'error', message: e.message || String(e) }));
    if (mode === 'legacy') {
      const seen = [];
      client.request({ query: 'subscription { greetings }' }).subscribe({
        next: (r) => { seen.push(r.data.greetings); app({ what: 'next', data: r.data }); },
        complete: async () => {
          app({ what: 'complete', seen });
          client.request({ query: '{ fail }' }).subscribe({
            next: (r) => app({ what: 'next', errors: (r.errors || []).map((e) => e.message) }),
            complete: async () => { await sleep(500); client.close(); },
          });
        },
      });
    }
    setTimeout(() => process.exit(0), 5000);
  } else {
    hook.impl = 'graphql-ws ' + hook.version('graphql-ws');
    const { createClient } = require('graphql-ws');
    const client = createClient({ url, webSocketImpl: WebSocket, retryAttempts: 0, lazy: false });
    client.on('connected', () => app({ what: 'connected' }));
    client.on('closed', (e) => { app({ what: 'closed', code: e.code, reason: String(e.reason) }); });
    (async () => {
      const seen = [];
      for await (const r of client.iterate({ query: 'subscription { greetings }' })) { seen.push(r.data.greetings); }
      app({ what: 'subscription_done', seen });
      const q = await client.iterate({ query: '{ hello }' }).next();
      app({ what: 'query_result', data: q.value.data });
      const f = await client.iterate({ query: '{ fail }' }).next();
      app({ what: 'query_result', errors: (f.value.errors || []).map((e) => e.message) });
      try {
        for await (const r of client.iterate({ query: '{ nope }' })) { app({ what: 'unexpected', r }); }
      } catch (e) { app({ what: 'operation_error', errors: (Array.isArray(e) ? e : [e]).map((x) => x.message) }); }
      await client.dispose();
      setTimeout(() => process.exit(0), 300);
    })().catch((e) => { app({ what: 'failed', message: String(e) }); process.exit(0); });
  }
}
