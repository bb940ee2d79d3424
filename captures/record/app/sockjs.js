'use strict';
// SockJS endpoints: the sockjs server (sockjs-node) and sockjs-client in Node, on the
// websocket transport (sockjs-client still asks /info over HTTP first).
// usage: node sockjs.js ROLE MODE --port P --log FILE
//   MODE echo: the server echoes every message (heartbeat_delay 300 ms, so `h` frames flow);
//   the client sends four messages (plain, JSON text, quotes and a newline, non-ASCII), waits
//   for two heartbeats, then asks to be closed and the server closes the session with
//   conn.close(3000, "Go away!") (SockJS's `c[3000,"Go away!"]`, then the WebSocket Close).
// Truth: frames from websocket-driver under faye-websocket (fayelog.js); application facts
// (`ev: "app"`) from the server's conn.on('data') / conn.write / conn.close and the client's
// onopen / send / onmessage / onclose.

const [role, mode] = process.argv.slice(2, 4);
const A = {};
for (let i = 4; i < process.argv.length; i += 2) A[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
if (mode !== 'echo') throw new Error('usage: node sockjs.js server|client echo ...');
const version = require('./hook').version;
const port = Number(A.port);
const key = (addr, p) => require('../wslog').connKey(addr, p);

if (role === 'server') {
  const F = require('./fayelog')(role, A.log, `sockjs ${version('sockjs')} (faye-websocket ${version('faye-websocket')})`);
  const http = require('http');
  const sockjs = require('sockjs');
  const srv = http.createServer();
  const echo = sockjs.createServer({ prefix: '/echo', heartbeat_delay: 300, log: () => {} });
  echo.on('connection', (conn) => {
    const c = key(conn.remoteAddress, conn.remotePort);
    F.app(c, { what: 'connection', transport: conn.protocol, url: conn.url });
    conn.on('data', (msg) => {
      F.app(c, { what: 'data_received', data: msg });
      if (msg === 'close me') {
        conn.close(3000, 'Go away!');
        F.app(c, { what: 'closed_session', code: 3000, reason: 'Go away!' });
        return;
      }
      conn.write(msg);
      F.app(c, { what: 'data_sent', data: msg });
    });
    conn.on('close', () => {
      F.app(c, { what: 'close_event' });
      setTimeout(() => { srv.close(); process.exit(0); }, 300);
    });
  });
  echo.installHandlers(srv);
  srv.listen(port, '127.0.0.1', () => console.log('READY'));
  setTimeout(() => process.exit(1), 15000);
} else {
  const F = require('./fayelog')(role, A.log, `sockjs-client ${version('sockjs-client')} (faye-websocket ${version('faye-websocket')})`);
  let conn = null;
  F.onOpen((ws, c) => { conn = c; });
  const SockJS = require('sockjs-client');
  const sock = new SockJS(`http://127.0.0.1:${port}/echo`, null, { transports: ['websocket'] });
  const messages = ['hello sockjs', '{"kind":"json","n":[1,2,3]}', 'a "quoted" word\nand a second line', 'žluťoučký kůň 🐎'];
  let echoed = 0;
  sock.onopen = () => {
    F.app(conn, { what: 'open', transport: sock.transport, url: sock.url });
    for (const m of messages) {
      sock.send(m);
      F.app(conn, { what: 'sent', data: m });
    }
  };
  sock.onmessage = (e) => {
    F.app(conn, { what: 'message', data: e.data });
    if (++echoed === messages.length) {
      // Two of the server's 300 ms heartbeats, then the server closes the session.
      setTimeout(() => { sock.send('close me'); F.app(conn, { what: 'sent', data: 'close me' }); }, 700);
    }
  };
  sock.onclose = (e) => {
    F.app(conn, { what: 'close', code: e.code, reason: e.reason, was_clean: e.wasClean });
    setTimeout(() => process.exit(0), 300);
  };
  setTimeout(() => process.exit(1), 10000);
}
