'use strict';
// MQTT over WebSocket: the aedes broker (its stream interface fed by ws's createWebSocketStream)
// and the mqtt.js client, plus raw clients for the failure modes.
// usage: node mqtt.js ROLE MODE --port P --log FILE
//   MODE session | refused | keepalive (the client goes silent; the broker drops it)

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

if (role === 'server') {
  hook.impl = 'aedes ' + hook.version('aedes');
  const http = require('http');
  const { WebSocketServer, createWebSocketStream } = require('ws');
  const aedes = require('aedes')();
  aedes.authenticate = (client, username, password, cb) => {
    const ok = mode !== 'refused';
    app({ what: 'authenticate', client_id: client.id, ok });
    if (ok) return cb(null, true);
    const err = new Error('not authorized');
    err.returnCode = 5;
    cb(err, null);
  };
  aedes.on('client', (c) => app({ what: 'client', client_id: c.id }));
  aedes.on('subscribe', (subs, c) => app({ what: 'subscribe', client_id: c && c.id, topics: subs.map((s) => s.topic) }));
  aedes.on('publish', (p, c) => { if (c) app({ what: 'publish', client_id: c.id, topic: p.topic, qos: p.qos }); });
  aedes.on('clientError', (c, e) => app({ what: 'client_error', client_id: c && c.id, message: e.message }));
  aedes.on('keepaliveTimeout', (c) => app({ what: 'keepalive_timeout', client_id: c && c.id }));
  aedes.on('clientDisconnect', (c) => app({ what: 'client_disconnect', client_id: c && c.id }));
  const srv = http.createServer();
  const wss = new WebSocketServer({ server: srv, path: '/mqtt', handleProtocols: (p) => (p.has('mqtt') ? 'mqtt' : false) });
  wss.on('connection', (ws) => {
    aedes.handle(createWebSocketStream(ws));
    ws.on('close', () => setTimeout(() => process.exit(0), 300));
  });
  srv.listen(port, '127.0.0.1', () => console.log('READY'));
  setTimeout(() => process.exit(0), 10000);
} else if (mode === 'keepalive') {
  // A raw client: CONNECT with keep-alive 1 s, one PINGREQ, then silence.
  hook.impl = 'raw client (mqtt-packet ' + hook.version('mqtt-packet') + ')';
  const WebSocket = require('ws');
  const mp = require('mqtt-packet');
  const ws = new WebSocket(`ws://127.0.0.1:${port}/mqtt`, 'mqtt');
  ws.on('open', async () => {
    ws.send(mp.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: 'silent-1', keepalive: 1 }));
    app({ what: 'sent', packet: 'CONNECT keepalive 1' });
    await sleep(300);
    ws.send(mp.generate({ cmd: 'pingreq' }));
    app({ what: 'sent', packet: 'PINGREQ' });
    app({ what: 'silent_from_now' });
  });
  ws.on('message', (d) => app({ what: 'received', bytes: d.length, first: d[0] }));
  ws.on('close', (code) => { app({ what: 'closed', code }); setTimeout(() => process.exit(0), 200); });
} else {
  hook.impl = 'mqtt.js ' + hook.version('mqtt');
  const mqtt = require('mqtt');
  const client = mqtt.connect(`ws://127.0.0.1:${port}/mqtt`, { clientId: 'wsprobe-1', keepalive: 1, reconnectPeriod: 0, protocolVersion: 4 });
  client.on('connect', async (ack) => {
    app({ what: 'connack', code: ack.returnCode });
    client.subscribe('sensors/#', { qos: 1 }, (err, granted) => app({ what: 'suback', granted: granted && granted.map((g) => g.qos) }));
    await sleep(50);
    for (const qos of [0, 1, 2]) {
      client.publish('sensors/temp', `21.${qos}`, { qos }, () => app({ what: 'published', qos }));
    }
    client.on('message', (t, p, packet) => app({ what: 'message', topic: t, payload: String(p), qos: packet.qos }));
    await sleep(1600); // keep-alive 1 s: PINGREQ/PINGRESP
    client.unsubscribe('sensors/#', () => app({ what: 'unsuback' }));
    await sleep(50);
    client.end(false, () => { app({ what: 'ended' }); setTimeout(() => process.exit(0), 200); });
  });
  client.on('error', (e) => { app({ what: 'error', message: e.message, code: e.code }); });
  client.on('close', () => { app({ what: 'close' }); setTimeout(() => process.exit(0), 300); });
  setTimeout(() => process.exit(0), 6000);
}
