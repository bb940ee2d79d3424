'use strict';
// Node `ws` clients used by record.py (one mode per scenario).
// usage: node node_client.js MODE --url URL --log FILE

const crypto = require('crypto');
const WebSocket = require('ws');
const W = require('./wslog');

function args() {
  const a = { mode: process.argv[2] };
  for (let i = 3; i < process.argv.length; i += 2) a[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
  return a;
}
const A = args();
const log = new W.Log(A.log, 'client');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

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

// ASCII/UTF-8 text of exactly n bytes.
function textOf(n, seed) {
  const unit = `${seed} lorem ipsum dolor sit amet ✓ `;
  const s = unit.repeat(Math.ceil(n / Buffer.byteLength(unit)) + 1);
  let b = Buffer.from(s).subarray(0, n);
  // cut back to a character boundary, pad with ASCII
  while (b.length && (b[b.length - 1] & 0xc0) === 0x80) b = b.subarray(0, b.length - 1);
  if (b.length && b[b.length - 1] >= 0xc0) b = b.subarray(0, b.length - 1);
  return Buffer.concat([b, Buffer.alloc(n - b.length, 'x')]).toString('utf8');
}

// Open a connection, instrument it, return { ws, next } (next() = next message or close).
function open(url, opts, path) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, opts.protocols || [], Object.assign({ maxPayload: 0 }, opts));
    let ext = null;
    ws.on('upgrade', (res) => { ext = res.headers['sec-websocket-extensions'] || null; });
    ws.on('open', () => {
      const k = W.connKey(ws._socket.localAddress, ws._socket.localPort);
      W.instrument(ws, log, k);
      W.logOpen(ws, log, k, { url: path }, ext);
      resolve({ ws, next: W.inbox(ws), key: k });
    });
    ws.on('error', reject);
  });
}

async function echo(c, data, binary) {
  c.ws.send(data, { binary });
  const m = await c.next();
  if (m.type !== 'message' || !m.data.equals(W.toBuf(data))) throw new Error('echo mismatch');
}

const closed = (c) => new Promise((r) => (c.ws.readyState === WebSocket.CLOSED ? r() : c.ws.on('close', r)));

const modes = {
  async mix() {
    const c = await open(A.url, { perMessageDeflate: false, protocols: ['wsprobe.test', 'other'] }, '/mix');
    for (const n of [0, 125, 126, 65535, 65536]) {
      await echo(c, textOf(n, `t${n}`), false);
      await echo(c, detBytes(`b${n}`, n), true);
    }
    // 1 MiB text up (masked, 64-bit length); the server answers with 1 MiB binary.
    c.ws.send(textOf(1 << 20, 'big'), { binary: false });
    const big = await c.next();
    if (!big.isBinary || big.data.length !== 1 << 20) throw new Error('expected 1 MiB binary');
    // Fragmented text message; the 3-byte "✓" is split across fragments 1 and 2,
    // and a ping goes out between fragments 1 and 2.
    const whole = Buffer.from('fragmented: part one ✓ part two ✓ part three', 'utf8');
    const cut1 = whole.indexOf(Buffer.from('✓')) + 1;
    const cut2 = whole.lastIndexOf(Buffer.from('✓')) + 3;
    c.ws.send(whole.subarray(0, cut1), { binary: false, fin: false });
    c.ws.ping('between-fragments');
    c.ws.send(whole.subarray(cut1, cut2), { binary: false, fin: false });
    c.ws.send(whole.subarray(cut2), { binary: false, fin: true });
    const back = await c.next();
    if (!back.data.equals(whole)) throw new Error('fragmented echo mismatch');
    c.ws.ping(Buffer.from('client-ping-payload'));
    await sleep(100);
    c.ws.send('server: ping me');
    const pinged = await c.next();
    if (pinged.data.toString() !== 'pinged you') throw new Error('expected pinged you');
    await sleep(100);
    c.ws.close(1001, 'going away');
    await closed(c);
  },

  async deflate() {
    const base = new URL(A.url);
    const configs = [
      { threshold: 0 },
      { threshold: 0, clientNoContextTakeover: true, serverNoContextTakeover: true },
      { threshold: 0, serverMaxWindowBits: 10, clientMaxWindowBits: 9 },
    ];
    for (let i = 0; i < configs.length; i++) {
      const url = `ws://${base.hostname}:${Number(base.port) + i}/deflate/${i}`;
      const c = await open(url, { perMessageDeflate: configs[i] }, `/deflate/${i}`);
      for (let seq = 0; seq < 20; seq++) {
        c.ws.send(JSON.stringify({ type: 'tick', seq, symbol: 'ACME', price: 100 + seq * 0.25, bid: 99.5 + seq * 0.25, ask: 100.5 + seq * 0.25, tags: ['equity', 'nasdaq', 'demo'] }));
        const m = await c.next();
        if (JSON.parse(m.data.toString()).type !== 'ack') throw new Error('expected ack');
      }
      await echo(c, '', false);
      const rows = [];
      for (let r = 0; Buffer.byteLength(rows.join('\n')) < 200 * 1000; r++) rows.push(JSON.stringify({ row: r, name: 'widget', color: 'blue', qty: r % 7, ok: true }));
      await echo(c, rows.join('\n'), false);
      c.ws.close(1000, 'done');
      await closed(c);
    }
  },

  async closecodes() {
    const base = A.url.replace(/\/$/, '');
    // /auth: server closes 1008 "auth failed"
    let c = await open(base + '/auth', { perMessageDeflate: false }, '/auth');
    c.ws.send('token=bad');
    await closed(c);
    // /crash: server closes 1011 with no reason
    c = await open(base + '/crash', { perMessageDeflate: false }, '/crash');
    c.ws.send('do something');
    await closed(c);
    // /client4000: client closes 4000 with a non-ASCII reason
    c = await open(base + '/client4000', { perMessageDeflate: false }, '/client4000');
    await echo(c, 'hi', false);
    c.ws.close(4000, 'au revoir ✓');
    await closed(c);
    // /empty: client sends a Close frame with no payload (reported as 1005)
    c = await open(base + '/empty', { perMessageDeflate: false }, '/empty');
    await echo(c, 'hi', false);
    c.ws.close();
    await closed(c);
    // /shutdown: server closes 1001
    c = await open(base + '/shutdown', { perMessageDeflate: false }, '/shutdown');
    await closed(c);
  },

  async refused() {
    const base = A.url.replace(/\/$/, '');
    for (const status of [400, 403, 426]) {
      await new Promise((resolve) => {
        const ws = new WebSocket(`${base}/${status}`, { perMessageDeflate: false });
        ws.on('unexpected-response', (req, res) => {
          const k = W.connKey(req.socket.localAddress, req.socket.localPort);
          const chunks = [];
          res.on('data', (d) => chunks.push(d));
          res.on('end', () => {
            log.emit('refused', k, {
              path: `/${status}`, status: res.statusCode,
              body_length: Buffer.concat(chunks).length,
              local: [req.socket.localAddress, req.socket.localPort],
              remote: [req.socket.remoteAddress, req.socket.remotePort],
            });
            req.destroy();
            resolve();
          });
        });
        ws.on('error', () => {});
      });
      await sleep(100);
    }
  },

  // One upgrade attempt to --url, logged as refused when it is not answered 101.
  async refusedonce() {
    await new Promise((resolve) => {
      const path = new URL(A.url).pathname;
      const ws = new WebSocket(A.url, { perMessageDeflate: false });
      ws.on('unexpected-response', (req, res) => {
        const k = W.connKey(req.socket.localAddress, req.socket.localPort);
        const chunks = [];
        res.on('data', (d) => chunks.push(d));
        res.on('end', () => {
          log.emit('refused', k, {
            path, status: res.statusCode,
            body_length: Buffer.concat(chunks).length,
            local: [req.socket.localAddress, req.socket.localPort],
            remote: [req.socket.remoteAddress, req.socket.remotePort],
          });
          req.destroy();
          resolve();
        });
      });
      ws.on('open', () => { ws.close(1000); resolve(); });
      ws.on('error', () => {});
    });
  },

  async killclient() {
    const c = await open(A.url, { perMessageDeflate: false }, '/');
    await echo(c, 'client will be killed', false);
    await echo(c, detBytes('killed-client', 300), true);
    await echo(c, 'last words ✓', false);
    console.log('EXCHANGED');
    await sleep(60000); // SIGKILLed by record.py
  },

  async short() {
    const c = await open(A.url, { perMessageDeflate: false }, '/');
    await echo(c, 'short exchange, cooked v1', false);
    await echo(c, detBytes('sll1', 40), true);
    c.ws.close(1000, 'done');
    await closed(c);
  },
};

modes[A.mode]().then(
  () => setTimeout(() => process.exit(0), 100),
  (e) => { console.error(e); process.exit(1); },
);
