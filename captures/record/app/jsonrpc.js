'use strict';
// JSON-RPC 2.0 over WebSocket: rpc-websockets server and client.
// usage: node jsonrpc.js ROLE MODE --port P --log FILE   (MODE session)
// The client calls sum (answered), nope (error -32601 Method not found), subscribes to the event
// tick (rpc.on, then notifications), sends a notification, and calls never (the server's
// handler never resolves) and closes while it is pending.

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
void mode;

hook.impl = 'rpc-websockets ' + hook.version('rpc-websockets');
const { Server, Client } = require('rpc-websockets');
if (role === 'server') {
  const server = new Server({ port, host: '127.0.0.1' });
  server.register('sum', (params) => { app({ what: 'call', method: 'sum', params }); return params[0] + params[1]; });
  server.register('never', () => { app({ what: 'call', method: 'never' }); return new Promise(() => {}); });
  server.register('log', (params) => { app({ what: 'notification_received', method: 'log', params }); });
  server.event('tick');
  server.on('listening', () => console.log('READY'));
  server.on('connection', (socket) => {
    socket.on('close', () => { app({ what: 'closed' }); setTimeout(() => process.exit(0), 300); });
    setTimeout(() => { server.emit('tick', { n: 1 }); app({ what: 'event_sent', event: 'tick' }); }, 150);
  });
  setTimeout(() => process.exit(0), 10000);
} else {
  const client = new Client(`ws://127.0.0.1:${port}`, { autoconnect: true, reconnect: false });
  client.on('open', async () => {
    app({ what: 'open' });
    app({ what: 'result', method: 'sum', result: await client.call('sum', [1, 2]) });
    try { await client.call('nope', []); } catch (e) { app({ what: 'error', method: 'nope', code: e.code, message: e.message }); }
    client.on('tick', (x) => app({ what: 'event_received', event: 'tick', params: x }));
    app({ what: 'subscribed', result: await client.subscribe('tick') });
    await client.notify('log', ['hello']);
    app({ what: 'notified', method: 'log' });
    client.call('never', [], 10000).catch((e) => app({ what: 'never_failed', message: String(e.message || e) }));
    app({ what: 'called', method: 'never' });
    await sleep(400);
    client.close();
    app({ what: 'closed_with_pending', method: 'never' });
    setTimeout(() => process.exit(0), 300);
  });
  setTimeout(() => process.exit(0), 6000);
}
