'use strict';
// STOMP over WebSocket: the @stomp/stompjs client against a small STOMP 1.2 server written
// here on ws (no maintained broker library on npm speaks STOMP over ws; this one implements
// CONNECT/CONNECTED with heart-beat negotiation, SUBSCRIBE, SEND -> MESSAGE, receipts, ERROR
// then close, DISCONNECT).
// usage: node stomp.js ROLE MODE --port P --log FILE
//   MODE session | error | heartbeat (the server stops sending heart-beats)

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

function frame(command, headers, body = '') {
  return `${command}\n${Object.entries(headers).map(([k, v]) => `${k}:${v}`).join('\n')}${Object.keys(headers).length ? '\n' : ''}\n${body}\0`;
}

function parseFrames(text) {
  const out = [];
  for (const raw of text.split('\0')) {
    const t = raw.replace(/^[\r\n]+/, '');
    if (!t) continue;
    const [head, ...rest] = t.split('\n\n');
    const lines = head.split('\n');
    const headers = {};
    for (const l of lines.slice(1)) { const i = l.indexOf(':'); if (i > 0 && !(l.slice(0, i) in headers)) headers[l.slice(0, i)] = l.slice(i + 1); }
    out.push({ command: lines[0], headers, body: rest.join('\n\n') });
  }
  return out;
}

if (role === 'server') {
  hook.impl = 'wsprobe STOMP test server';
  const http = require('http');
  const { WebSocketServer } = require('ws');
  const srv = http.createServer();
  const wss = new WebSocketServer({ server: srv, path: '/stomp', handleProtocols: (p) => (p.has('v12.stomp') ? 'v12.stomp' : false) });
  wss.on('connection', (ws) => {
    const subs = new Map();
    let beat = null;
    let seq = 0;
    ws.on('message', (data) => {
      const text = String(data);
      if (/^[\r\n]+$/.test(text)) { app({ what: 'heartbeat_received' }); return; }
      for (const f of parseFrames(text)) {
        app({ what: 'frame_received', command: f.command, headers: f.headers });
        const receipt = () => { if (f.headers.receipt) { ws.send(frame('RECEIPT', { 'receipt-id': f.headers.receipt })); app({ what: 'frame_sent', command: 'RECEIPT', receipt_id: f.headers.receipt }); } };
        if (f.command === 'CONNECT' || f.command === 'STOMP') {
          const [cx, cy] = (f.headers['heart-beat'] || '0,0').split(',').map(Number);
          const sx = 200; const sy = 200;
          ws.send(frame('CONNECTED', { version: '1.2', 'heart-beat': `${sx},${sy}`, server: 'wsprobe-stomp/1', session: 'sess-1' }));
          app({ what: 'frame_sent', command: 'CONNECTED' });
          const every = cy > 0 ? Math.max(sx, cy) : 0;
          if (every) beat = setInterval(() => ws.send('\n'), every);
          if (mode === 'heartbeat') setTimeout(() => { clearInterval(beat); app({ what: 'stopped_heartbeats' }); }, 500);
        } else if (f.command === 'SUBSCRIBE') {
          subs.set(f.headers.id, f.headers.destination);
          receipt();
        } else if (f.command === 'SEND') {
          if (f.headers.destination === '/queue/forbidden') {
            ws.send(frame('ERROR', { message: 'access denied', 'content-type': 'text/plain', ...(f.headers.receipt ? { 'receipt-id': f.headers.receipt } : {}) }, 'you may not send to /queue/forbidden'));
            app({ what: 'frame_sent', command: 'ERROR', message: 'access denied' });
            clearInterval(beat);
            setTimeout(() => ws.close(), 20);
            return;
          }
          for (const [id, dest] of subs) {
            if (dest === f.headers.destination) {
              ws.send(frame('MESSAGE', { subscription: id, 'message-id': `m-${++seq}`, destination: dest, 'content-type': 'text/plain' }, f.body));
              app({ what: 'frame_sent', command: 'MESSAGE', destination: dest });
            }
          }
          receipt();
        } else if (f.command === 'DISCONNECT') {
          receipt();
          clearInterval(beat);
          setTimeout(() => ws.close(), 20);
        } else {
          receipt();
        }
      }
    });
    ws.on('close', (code) => { clearInterval(beat); app({ what: 'closed', code }); setTimeout(() => process.exit(0), 300); });
  });
  srv.listen(port, '127.0.0.1', () => console.log('READY'));
  setTimeout(() => process.exit(0), 10000);
} else {
  hook.impl = '@stomp/stompjs ' + hook.version('@stomp/stompjs');
  const WebSocket = require('ws');
  const { Client } = require('@stomp/stompjs');
  const client = new Client({
    webSocketFactory: () => new WebSocket(`ws://127.0.0.1:${port}/stomp`, ['v12.stomp', 'v11.stomp', 'v10.stomp']),
    heartbeatIncoming: 200,
    heartbeatOutgoing: 200,
    reconnectDelay: 0,
    debug: (s) => { if (/did not receive|Connection closed|Received ERROR/i.test(s)) app({ what: 'debug', text: s.slice(0, 120) }); },
  });
  client.onConnect = async (f) => {
    app({ what: 'connected', version: f.headers.version, heart_beat: f.headers['heart-beat'] });
    client.subscribe('/queue/a', (m) => { app({ what: 'message', destination: m.headers.destination, body: m.body }); m.ack && 0; }, { id: 'sub-0', receipt: 'r-sub' });
    client.watchForReceipt('r-send', () => app({ what: 'receipt', id: 'r-send' }));
    await sleep(50);
    client.publish({ destination: '/queue/a', body: 'hello queue a', headers: { receipt: 'r-send' } });
    app({ what: 'published', destination: '/queue/a' });
    if (mode === 'error') {
      await sleep(100);
      client.publish({ destination: '/queue/forbidden', body: 'nope' });
      app({ what: 'published', destination: '/queue/forbidden' });
      return;
    }
    if (mode === 'heartbeat') return;
    await sleep(700); // heart-beats both ways
    await client.deactivate();
    app({ what: 'deactivated' });
    setTimeout(() => process.exit(0), 300);
  };
  client.onStompError = (f) => app({ what: 'stomp_error', message: f.headers.message, body: f.body });
  client.onWebSocketClose = (e) => { app({ what: 'websocket_close', code: e.code }); client.deactivate(); setTimeout(() => process.exit(0), 300); };
  client.activate();
  setTimeout(() => process.exit(0), 6000);
}
