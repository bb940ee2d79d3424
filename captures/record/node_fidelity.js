'use strict';
// Node `ws` endpoints for the fidelity captures (captures/record/scenarios_ws.py): a busy conversation in
// which a 1 MiB binary frame from the server crosses a stream of 4 KiB messages (one of 100 KiB) from the
// client, and permessage-deflate conversations (context takeover, and
// no_context_takeover) that the scenarios then cut or punch holes in.
// usage: node node_fidelity.js MODE --port P --log FILE [--conns N]
//   MODE: server-midframe | client-midframe | server-deflate | client-deflate
// Servers print READY once listening and exit after --conns connections closed.

const crypto = require('crypto');
const WebSocket = require('ws');
const { WebSocketServer } = require('ws');
const W = require('./wslog');

function args() {
  const a = { mode: process.argv[2], conns: 1 };
  for (let i = 3; i < process.argv.length; i += 2) a[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
  a.port = Number(a.port);
  a.conns = Number(a.conns);
  return a;
}
const A = args();
const role = A.mode.startsWith('server') ? 'server' : 'client';
const log = new W.Log(A.log, role);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Deterministic incompressible bytes (sha256 chain).
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

const BIG = 1 << 20;
// While the server's 1 MiB is on the wire the client streams messages of STREAM_LEN bytes, and one of
// STRADDLING_LEN.
const STREAM_LEN = 4 * 1024;
const STRADDLING_LEN = 100 * 1024;
const FRESH = 40 * 1024;
// permessage-deflate configurations, one per port (port, port + 1).
const DEFLATE = [
  { threshold: 0 },
  { threshold: 0, clientNoContextTakeover: true, serverNoContextTakeover: true },
];

function tick(seq) {
  return JSON.stringify({ type: 'tick', seq, symbol: 'ACME', price: 100 + seq * 0.25, bid: 99.5 + seq * 0.25, ask: 100.5 + seq * 0.25, tags: ['equity', 'nasdaq', 'demo'] });
}

// ---------------------------------------------------------------- servers

function serve(opts, onOpen) {
  const wss = new WebSocketServer(Object.assign({ host: '127.0.0.1' }, opts));
  W.trackHeaders(wss);
  wss.on('connection', (ws, req) => {
    const k = W.connKey(req.socket.remoteAddress, req.socket.remotePort);
    ws._wslogConn = k;
    W.instrument(ws, log, k);
    W.logOpen(ws, log, k, req, req._wslogExt);
    ws.on('close', () => {
      if (++closed >= A.conns) setTimeout(() => process.exit(0), 200);
    });
    onOpen(ws);
  });
  return new Promise((r) => wss.on('listening', r));
}
let closed = 0;

// One unmasked binary frame with `payload`, written to the socket 64 KiB every 10 ms (ws's own sender
// writes a frame at once, and loopback moves a MiB in a millisecond): so the client's messages cross it
// on the wire. Logged like ws's own sends (frame_seq unknown: it bypasses the hooked sender).
function sendPaced(ws, payload) {
  const header = Buffer.alloc(10);
  header[0] = 0x82;
  header[1] = 127;
  header.writeBigUInt64BE(BigInt(payload.length), 2);
  const wire = Buffer.concat([header, payload]);
  log.emit('msg_sent', ws._wslogConn, Object.assign({ t: W.now(), frame_seq: null, compressed: false }, describeBinary(payload)));
  return new Promise((resolve) => {
    let at = 0;
    const next = () => {
      if (at >= wire.length) return resolve();
      ws._socket.write(wire.subarray(at, at + 64 * 1024));
      at += 64 * 1024;
      setTimeout(next, 10);
    };
    next();
  });
}

function describeBinary(data) {
  return { opcode: 'binary', length: data.length, sha256: crypto.createHash('sha256').update(data).digest('hex') };
}

const servers = {
  'server-midframe': () => serve({ port: A.port, perMessageDeflate: false }, (ws) => {
    let streaming = false;
    let streamed = 0;
    ws.on('message', (data, isBinary) => {
      if (!isBinary && data.toString() === 'go') {
        streaming = true;
        sendPaced(ws, detBytes('server-big', BIG)).then(() => {
          streaming = false;
          ws.send(`got ${streamed} messages`);
        });
      } else if (streaming && isBinary && (data.length === STREAM_LEN || data.length === STRADDLING_LEN)) {
        // Nothing may be written while the large frame is (it would land inside it): counted, answered after.
        streamed++;
      } else {
        ws.send(data, { binary: isBinary });
      }
    });
  }),
  'server-deflate': () => Promise.all(DEFLATE.map((cfg, i) => serve({ port: A.port + i, perMessageDeflate: cfg }, (ws) => {
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
  }))),
};

// ---------------------------------------------------------------- clients

function open(url, opts) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, [], Object.assign({ maxPayload: 0 }, opts));
    let ext = null;
    ws.on('upgrade', (res) => { ext = res.headers['sec-websocket-extensions'] || null; });
    ws.on('open', () => {
      const k = W.connKey(ws._socket.localAddress, ws._socket.localPort);
      W.instrument(ws, log, k);
      W.logOpen(ws, log, k, { url: new URL(url).pathname }, ext);
      resolve({ ws, next: W.inbox(ws) });
    });
    ws.on('error', reject);
  });
}

async function echo(c, data, binary) {
  c.ws.send(data, { binary });
  const m = await c.next();
  if (m.type !== 'message' || !m.data.equals(W.toBuf(data))) throw new Error('echo mismatch');
}

const closedP = (c) => new Promise((r) => (c.ws.readyState === WebSocket.CLOSED ? r() : c.ws.on('close', r)));

const clients = {
  async 'client-midframe'() {
    const c = await open(`ws://127.0.0.1:${A.port}/busy`, { perMessageDeflate: false });
    for (let i = 0; i < 10; i++) await echo(c, tick(i), false);
    // The server answers "go" with a 1 MiB frame, paced; meanwhile the client streams 4 KiB messages, one
    // every 4 ms, and once 700 KiB of the server's frame arrived, one of 100 KiB (more than a loopback
    // segment): both directions have a frame in flight at once near the end of the server's.
    let arrived = 0;
    const onData = (chunk) => { arrived += chunk.length; };
    c.ws._socket.on('data', onData);
    c.ws.send('go');
    let sent = 0;
    let straddled = false;
    while (arrived < BIG) {
      const big = !straddled && arrived >= 700 * 1024;
      straddled = straddled || big;
      c.ws.send(detBytes(`stream-${sent}`, big ? STRADDLING_LEN : STREAM_LEN), { binary: true });
      sent++;
      await sleep(4);
    }
    c.ws._socket.off('data', onData);
    // The server's 1 MiB and its count of the streamed messages.
    const got = [await c.next(), await c.next()];
    if (!got.some((m) => m.isBinary && m.data.length === BIG)) throw new Error('expected 1 MiB');
    if (!got.some((m) => !m.isBinary && m.data.toString() === `got ${sent} messages`)) throw new Error('expected the count');
    // After the large messages: small ones both ways, pings among them.
    for (let i = 10; i < 30; i++) {
      if (i % 5 === 0) c.ws.ping(Buffer.from(`ping ${i}`));
      if (i % 7 === 0) await echo(c, detBytes(`small-${i}`, 40 + i), true);
      else await echo(c, tick(i), false);
    }
    await sleep(50);
    c.ws.close(1000, 'done');
    await closedP(c);
  },
  async 'client-deflate'() {
    for (let i = 0; i < DEFLATE.length; i++) {
      const c = await open(`ws://127.0.0.1:${A.port + i}/deflate/${i}`, { perMessageDeflate: DEFLATE[i] });
      let seq = 0;
      for (; seq < 30; seq++) {
        c.ws.send(tick(seq));
        const m = await c.next();
        if (JSON.parse(m.data.toString()).type !== 'ack') throw new Error('expected ack');
      }
      // Fresh bytes both ways (the echo): a window of output that copies nothing from before.
      await echo(c, detBytes(`fresh-${i}`, FRESH), true);
      for (; seq < 50; seq++) {
        c.ws.send(tick(seq));
        await c.next();
      }
      c.ws.close(1000, 'done');
      await closedP(c);
    }
  },
};

if (role === 'server') servers[A.mode]().then(() => console.log('READY'));
else clients[A.mode]().then(() => setTimeout(() => process.exit(0), 100), (e) => { console.error(e); process.exit(1); });
