'use strict';
// Socket.IO endpoints (v4: socket.io / socket.io-client 4; v2: socket.io 2 / socket.io-client 2).
// usage: node socketio.js ROLE MODE --port P --log FILE
//   ROLE server|client; MODE v4 | v4-ping-timeout | v2 | v2-ping-timeout
// Application truth (`ev: "app"`): every event and ack each side's library emitted or
// delivered, connect errors and disconnect reasons as the libraries reported them.

const [role, mode] = process.argv.slice(2, 4);
const A = {};
for (let i = 4; i < process.argv.length; i += 2) A[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
const H = require('./hook')(role, A.log);
const v2 = mode.startsWith('v2');
const timeout = mode.endsWith('ping-timeout');
const port = Number(A.port);
let conn = null;
require('./hook').onOpen = (ws, c) => { conn = c; };
const app = (fields) => H.app(conn, fields);

if (role === 'server') {
  const http = require('http');
  const srv = http.createServer();
  const opts = timeout ? { pingInterval: 300, pingTimeout: 200 } : { pingInterval: 1000, pingTimeout: 500 };
  let io;
  if (v2) {
    require('./hook').impl = 'socket.io ' + require('./hook').version('socket.io-v2');
    io = require('socket.io-v2')(srv, opts);
  } else {
    require('./hook').impl = 'socket.io ' + require('./hook').version('socket.io');
    const { Server } = require('socket.io');
    io = new Server(srv, opts);
  }
  io.of('/admin').use((socket, next) => {
    app({ what: 'connect_refused', nsp: '/admin', message: 'not authorized' });
    const err = new Error('not authorized');
    next(err);
  });
  io.on('connection', (socket) => {
    app({ what: 'connection', nsp: '/', transport: socket.conn.transport.name });
    socket.conn.on('upgrade', (t) => app({ what: 'upgrade', transport: t.name }));
    socket.on('chat', (msg, ack) => {
      app({ what: 'event_received', event: 'chat', args: [msg], with_ack: typeof ack === 'function' });
      if (ack) ack('got ' + msg);
    });
    socket.on('upload', (buf) => {
      app({ what: 'event_received', event: 'upload', binary_length: buf.length });
      socket.emit('stored', { bytes: buf.length });
      app({ what: 'event_sent', event: 'stored' });
    });
    socket.on('bye', () => {
      app({ what: 'event_received', event: 'bye' });
      socket.disconnect(true);
      app({ what: 'server_disconnect' });
    });
    socket.on('disconnect', (reason) => {
      app({ what: 'disconnect', reason });
      setTimeout(() => { srv.close(); process.exit(0); }, 300);
    });
  });
  srv.listen(port, '127.0.0.1', () => console.log('READY'));
} else {
  const url = `http://127.0.0.1:${port}`;
  let io;
  if (v2) {
    require('./hook').impl = 'socket.io-client ' + require('./hook').version('socket.io-client-v2');
    io = require('socket.io-client-v2');
  } else {
    require('./hook').impl = 'socket.io-client ' + require('./hook').version('socket.io-client');
    io = require('socket.io-client').io;
  }
  const socket = io(url, { reconnection: false, transports: timeout ? ['websocket'] : ['polling', 'websocket'] });
  const joinAdmin = () => {
    // Multiplexed on the same Engine.IO connection; refused by the server's middleware.
    const admin = io(url + '/admin', { reconnection: false, transports: ['websocket'] });
    admin.on('connect_error', (e) => app({ what: 'connect_error', nsp: '/admin', message: e.message }));
    admin.on('error', (e) => app({ what: 'connect_error', nsp: '/admin', message: String(e) }));
  };
  socket.on('connect', async () => {
    app({ what: 'connect', nsp: '/' });
    const engine = v2 ? socket.io.engine : socket.io.engine;
    if (timeout) {
      // The client stops answering (v4: pongs) or stops pinging (v2): a frozen client.
      if (v2) {
        setTimeout(() => {
          engine.setPing = () => {};
          engine.onHeartbeat = () => {};
          clearTimeout(engine.pingIntervalTimer);
          clearTimeout(engine.pingTimeoutTimer);
          app({ what: 'stopped_pinging' });
        }, 100);
      } else {
        const send = engine._sendPacket.bind(engine);
        engine._sendPacket = (type, ...rest) => {
          if (type === 'pong' && engine._wsprobeFrozen) { app({ what: 'pong_suppressed' }); return; }
          return send(type, ...rest);
        };
        setTimeout(() => { engine._wsprobeFrozen = true; app({ what: 'stopped_answering_pings' }); }, 500);
      }
      socket.emit('chat', 'before freezing');
      app({ what: 'event_sent', event: 'chat', args: ['before freezing'] });
      return;
    }
    const wait = () => new Promise((r) => (engine.transport.name === 'websocket' ? r() : engine.once('upgrade', () => r())));
    await wait();
    app({ what: 'upgraded', transport: engine.transport.name });
    joinAdmin();
    socket.emit('chat', 'hello', (reply) => {
      app({ what: 'ack_received', event: 'chat', args: [reply] });
      socket.emit('upload', Buffer.from('0123456789abcdef'));
      app({ what: 'event_sent', event: 'upload', binary_length: 16 });
    });
    app({ what: 'event_sent', event: 'chat', args: ['hello'], with_ack: true });
    socket.on('stored', (x) => {
      app({ what: 'event_received', event: 'stored', args: [x] });
      setTimeout(() => { socket.emit('bye'); app({ what: 'event_sent', event: 'bye' }); }, 1200);
    });
  });
  socket.on('disconnect', (reason) => {
    app({ what: 'disconnect', reason });
    setTimeout(() => process.exit(0), 300);
  });
  setTimeout(() => process.exit(0), 8000);
}
