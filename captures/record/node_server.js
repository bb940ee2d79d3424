'use strict';
// Node `ws` servers used by record.py (one mode per scenario).
// usage: node node_server.js MODE --port P [--host H] --log FILE [--conns N] [--deflate]
// Prints READY once listening; exits after N WebSocket connections have closed.

const http = require('http');
const crypto = require('crypto');
const { WebSocketServer } = require('ws');
const W = require('./wslog');

function args() {
  const a = { mode: process.argv[2], host: '127.0.0.1', conns: 1, deflate: false };
  for (let i = 3; i < process.argv.length; i++) {
    const k = process.argv[i];
    if (k === '--deflate') a.deflate = true;
    else a[k.replace(/^--/, '')] = process.argv[++i];
  }
  a.port = Number(a.port);
  a.conns = Number(a.conns);
  return a;
}

function detBytes(seed, n) {
  const parts = [];
  let len = 0;
  for (let i = 0; len < n; i++) {
    const d = crypto.createHash('sha256').update(`${seed}:${i}`).digest();
    parts.push(d);
    len += d.length;
  }
  return Buffer.concat(parts).subarray(0, n);
}

const A = args();
const log = new W.Log(A.log, 'server');
let finished = 0;
function finish() {
  if (++finished >= A.conns) setTimeout(() => process.exit(0), 200);
}

// Deflate configurations for the deflate-variants capture (port, port+1, port+2).
const DEFLATE_CONFIGS = [
  { threshold: 0 },
  { threshold: 0, clientNoContextTakeover: true, serverNoContextTakeover: true },
  { threshold: 0, serverMaxWindowBits: 10, clientMaxWindowBits: 9 },
];

function accept(wss, onOpen) {
  W.trackHeaders(wss);
  wss.on('connection', (ws, req) => {
    const k = W.connKey(req.socket.remoteAddress, req.socket.remotePort);
    W.instrument(ws, log, k);
    W.logOpen(ws, log, k, req, req._wslogExt);
    ws.on('close', finish);
    onOpen(ws, req);
  });
}

function echo(ws) {
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
}

const ready = [];
function listen(opts, onOpen) {
  const wss = new WebSocketServer(Object.assign({ host: A.host }, opts));
  accept(wss, onOpen);
  ready.push(new Promise((r) => wss.on('listening', r)));
  return wss;
}

switch (A.mode) {
  case 'echo':
    listen({ port: A.port, perMessageDeflate: A.deflate }, echo);
    break;
  case 'noautopong':
    listen({ port: A.port, perMessageDeflate: false, autoPong: false }, echo);
    break;
  case 'mix':
    listen({ port: A.port, perMessageDeflate: false, handleProtocols: (p) => (p.has('wsprobe.test') ? 'wsprobe.test' : false) }, (ws) => {
      ws.on('message', (data, isBinary) => {
        if (!isBinary && data.toString() === 'server: ping me') {
          ws.ping('srv-ping-payload');
          ws.send('pinged you');
        } else if (data.length === 1 << 20) {
          ws.send(detBytes('server-1MiB', 1 << 20), { binary: true });
        } else {
          ws.send(data, { binary: isBinary });
        }
      });
    });
    break;
  case 'deflate':
    DEFLATE_CONFIGS.forEach((cfg, i) => {
      listen({ port: A.port + i, perMessageDeflate: cfg }, (ws) => {
        ws.on('message', (data, isBinary) => {
          let m = null;
          if (!isBinary) {
            try { m = JSON.parse(data.toString()); } catch (e) { m = null; }
          }
          if (m && m.type === 'tick') {
            ws.send(JSON.stringify({ type: 'ack', seq: m.seq, symbol: m.symbol, status: 'ok', server: 'node-ws', config: i }));
          } else {
            ws.send(data, { binary: isBinary });
          }
        });
      });
    });
    break;
  case 'keepalive': {
    const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
    accept(wss, echo);
    const server = http.createServer((req, res) => {
      const body = JSON.stringify({ status: 'ok', service: 'wsprobe-demo' }) + '\n';
      const status = req.url === '/health' ? 200 : 404;
      res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
      res.end(body);
      log.emit('http', W.connKey(req.socket.remoteAddress, req.socket.remotePort), {
        method: req.method, path: req.url, status, body_length: Buffer.byteLength(body),
        local: [req.socket.localAddress, req.socket.localPort],
        remote: [req.socket.remoteAddress, req.socket.remotePort],
      });
    });
    server.on('upgrade', (req, socket, head) => {
      wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
    });
    ready.push(new Promise((r) => server.listen(A.port, A.host, r)));
    break;
  }
  default:
    throw new Error('unknown mode ' + A.mode);
}

Promise.all(ready).then(() => console.log('READY'));
