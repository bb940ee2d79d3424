'use strict';
// Node `ws` over TLS (wss://) for tls_scenarios.py, with TLS 1.3 cipher suites forced per
// connection. Key log: run node with --tls-keylog=FILE.
//   node tls_node.js server --port P --cert C --key K --log FILE --conns N
//   node tls_node.js client --url wss://... --ca C --log FILE --suites A,B,C
// The client also logs its TLS plaintext streams (every byte written into TLS and delivered
// by it, HTTP upgrade included) as `note` events: SHA-256 and length per direction, taken at
// the TLS socket, plus the negotiated version and cipher.

const crypto = require('crypto');
const fs = require('fs');
const https = require('https');
const net = require('net');
const tls = require('tls');
const WebSocket = require('ws');
const W = require('./wslog');

function args() {
  const a = { mode: process.argv[2] };
  for (let i = 3; i < process.argv.length; i += 2) a[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
  return a;
}
const A = args();

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

function server() {
  const log = new W.Log(A.log, 'server');
  const conns = Number(A.conns || 1);
  let finished = 0;
  const srv = https.createServer({ key: fs.readFileSync(A.key), cert: fs.readFileSync(A.cert),
                                   minVersion: 'TLSv1.3' });
  const wss = new WebSocket.WebSocketServer({ server: srv, perMessageDeflate: false });
  W.trackHeaders(wss);
  wss.on('connection', (ws, req) => {
    const k = W.connKey(req.socket.remoteAddress, req.socket.remotePort);
    W.instrument(ws, log, k);
    W.logOpen(ws, log, k, req, req._wslogExt);
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
    ws.on('close', () => {
      if (++finished >= conns) setTimeout(() => process.exit(0), 300);
    });
  });
  srv.listen(Number(A.port), '127.0.0.1', () => console.log('READY'));
}

function tapped(log) {
  return (opts) => {
    // ws's own tlsConnect, plus the tap.
    opts.path = undefined;
    if (!opts.servername && opts.servername !== '') opts.servername = net.isIP(opts.host) ? '' : opts.host;
    const s = tls.connect(opts);
    const sent = crypto.createHash('sha256');
    const recv = crypto.createHash('sha256');
    let sentN = 0;
    let recvN = 0;
    const write = s.write.bind(s);
    s.write = (chunk, enc, cb) => {
      const b = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk, typeof enc === 'string' ? enc : 'utf8');
      sent.update(b);
      sentN += b.length;
      return write(chunk, enc, cb);
    };
    s.on('data', (d) => { recv.update(d); recvN += d.length; });
    let key = null;
    s.on('secureConnect', () => { key = W.connKey(s.localAddress, s.localPort); });
    s.on('close', () => {
      log.emit('note', key, {
        client_plaintext_sent_bytes: sentN,
        client_plaintext_sent_sha256: sent.digest('hex'),
        client_plaintext_received_bytes: recvN,
        client_plaintext_received_sha256: recv.digest('hex'),
        client_tls_version: s._tlsVersion || null,
        client_tls_cipher: s._tlsCipher || null,
      });
    });
    s.on('secureConnect', () => { s._tlsVersion = s.getProtocol(); s._tlsCipher = s.getCipher().standardName; });
    return s;
  };
}

async function client() {
  const log = new W.Log(A.log, 'client');
  const suites = A.suites.split(',');
  for (let i = 0; i < suites.length; i++) {
    const path = `/suite/${suites[i]}`;
    const ws = new WebSocket(A.url + path, [], {
      ca: fs.readFileSync(A.ca), ciphers: suites[i], minVersion: 'TLSv1.3', maxPayload: 0,
      perMessageDeflate: false, createConnection: tapped(log),
    });
    await new Promise((resolve, reject) => {
      ws.on('open', () => {
        const k = W.connKey(ws._socket.localAddress, ws._socket.localPort);
        W.instrument(ws, log, k);
        W.logOpen(ws, log, k, { url: path }, null);
        resolve();
      });
      ws.on('error', reject);
    });
    const next = W.inbox(ws);
    for (const [data, binary] of [[`hello with ${suites[i]}`, false], [detBytes(suites[i], 20000), true],
                                  ['{"op":"done"}', false]]) {
      ws.send(data, { binary });
      const m = await next();
      if (m.type !== 'message' || !m.data.equals(W.toBuf(data))) throw new Error('echo mismatch');
    }
    ws.close(1000, 'suite done');
    await new Promise((r) => ws.on('close', r));
    await new Promise((r) => setTimeout(r, 150));
  }
}

if (A.mode === 'server') server();
else client().catch((e) => { console.error(e); process.exit(1); });
