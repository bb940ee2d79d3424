'use strict';
// WebSocket over HTTP/2 (RFC 8441) endpoints for the h2 captures, on Node's own http2 module
// (no dependencies). The RFC 6455 framing on the CONNECT streams is written here: ~60 lines.
//
//   node h2_endpoints.js server --port P [--tls CERT KEY --page FILE] --log L
//       http2.createServer / createSecureServer with settings.enableConnectProtocol = true.
//       Extended CONNECT :protocol websocket -> 200 (+ sec-websocket-protocol "chat" when
//       offered), then echoes every data message, answers pings, echoes a Close and ends the
//       stream. Other requests: 200 with the page (GET /) or a short text. Exits on SIGTERM.
//   node h2_endpoints.js client --url http://127.0.0.1:P --log L
//       One h2c connection (prior knowledge): GET /, then two WebSocket streams at once:
//       /chat closes with Close frames (1000 "bye") and END_STREAM, /cancel is reset with
//       RST_STREAM(CANCEL) after its messages. Client DATA frames carry maximal padding.
//   node h2_endpoints.js client --url ... --slow-reader --log L
//       One WebSocket stream whose reader stops for 1.5 s (see slowReader): a flow-control stall.
//
// Ground truth: JSON lines, one per event, {ev, t, role, impl, conn, stream, ...}; messages
// as sha256 + length (+ text), like wslog.js.

const crypto = require('crypto');
const fs = require('fs');
const http2 = require('http2');

const args = process.argv.slice(2);
const mode = args[0];
const opt = (name, n = 1) => {
  const i = args.indexOf('--' + name);
  return i < 0 ? null : n === 1 ? args[i + 1] : args.slice(i + 1, i + 1 + n);
};
const IMPL = 'node ' + process.version + ' http2';
const logFd = fs.openSync(opt('log'), 'a');
const now = () => Number(process.hrtime.bigint());
function log(ev, fields) {
  fs.writeSync(logFd, JSON.stringify(Object.assign({ ev, t: now(), role: mode, impl: IMPL }, fields)) + '\n');
}
function describe(opcode, data) {
  const d = { opcode, length: data.length, sha256: crypto.createHash('sha256').update(data).digest('hex') };
  if (opcode === 'text') d.text = Array.from(data.toString('utf8')).slice(0, 64).join('');
  if (opcode === 'ping' || opcode === 'pong' || opcode === 'close') d.payload_hex = data.toString('hex');
  return d;
}
const OPS = { 0: 'continuation', 1: 'text', 2: 'binary', 8: 'close', 9: 'ping', 10: 'pong' };
const CODES = { text: 1, binary: 2, close: 8, ping: 9, pong: 10, continuation: 0 };

// ---- RFC 6455 framing ----
function encodeFrame(fin, opcode, payload, masked) {
  const len = payload.length;
  const head = [(fin ? 0x80 : 0) | opcode];
  const m = masked ? 0x80 : 0;
  if (len < 126) head.push(m | len);
  else if (len < 65536) head.push(m | 126, len >> 8, len & 255);
  else {
    head.push(m | 127, 0, 0, 0, 0);
    head.push((len >>> 24) & 255, (len >>> 16) & 255, (len >>> 8) & 255, len & 255);
  }
  if (!masked) return Buffer.concat([Buffer.from(head), payload]);
  const key = crypto.randomBytes(4);
  const body = Buffer.from(payload);
  for (let i = 0; i < body.length; i++) body[i] ^= key[i & 3];
  return Buffer.concat([Buffer.from(head), key, body]);
}

// Parses frames from a stream's DATA; calls onMessage(opcode, payload) per message/control.
function frameReader(onMessage) {
  let buf = Buffer.alloc(0);
  let parts = null;
  let partOp = null;
  return (chunk) => {
    buf = Buffer.concat([buf, chunk]);
    for (;;) {
      if (buf.length < 2) return;
      const fin = (buf[0] & 0x80) !== 0;
      const op = buf[0] & 15;
      const masked = (buf[1] & 0x80) !== 0;
      let len = buf[1] & 127;
      let off = 2;
      if (len === 126) { if (buf.length < 4) return; len = buf.readUInt16BE(2); off = 4; }
      else if (len === 127) { if (buf.length < 10) return; len = Number(buf.readBigUInt64BE(2)); off = 10; }
      const keyOff = off;
      if (masked) off += 4;
      if (buf.length < off + len) return;
      const payload = Buffer.from(buf.subarray(off, off + len));
      if (masked) for (let i = 0; i < len; i++) payload[i] ^= buf[keyOff + (i & 3)];
      buf = buf.subarray(off + len);
      if (op >= 8) { onMessage(OPS[op], payload); continue; }
      if (op !== 0) { parts = [payload]; partOp = OPS[op]; } else if (parts) parts.push(payload);
      if (fin && parts) { const all = Buffer.concat(parts); parts = null; onMessage(partOp, all); }
    }
  };
}

// ---- server ----
function server() {
  const port = Number(opt('port'));
  const settings = { enableConnectProtocol: true };
  const tls = opt('tls', 2);
  const page = opt('page') ? fs.readFileSync(opt('page')) : null;
  const srv = tls
    ? http2.createSecureServer({ cert: fs.readFileSync(tls[0]), key: fs.readFileSync(tls[1]), settings })
    : http2.createServer({ settings });
  srv.on('stream', (stream, headers) => {
    const sock = stream.session.socket;
    const conn = `${sock.remoteAddress.replace(/^::ffff:/, '')}:${sock.remotePort}`;
    const base = { conn, stream: stream.id, path: headers[':path'] };
    stream.on('close', () => log('stream_closed', Object.assign({ rst_code: stream.rstCode }, base)));
    stream.on('error', () => {});
    if (headers[':method'] === 'CONNECT' && headers[':protocol'] === 'websocket') {
      const offered = (headers['sec-websocket-protocol'] || '').split(',').map((s) => s.trim()).filter(Boolean);
      const resp = { ':status': 200 };
      if (offered.includes('chat')) resp['sec-websocket-protocol'] = 'chat';
      stream.respond(resp);
      log('open', Object.assign({ status: 200, subprotocol: resp['sec-websocket-protocol'] || null,
        extensions: null, offered_extensions: headers['sec-websocket-extensions'] || null }, base));
      let closeSent = false;
      const send = (opcode, payload) => {
        stream.write(encodeFrame(true, CODES[opcode], payload, false));
        log('msg_sent', Object.assign(describe(opcode, payload), base));
      };
      stream.on('data', frameReader((opcode, payload) => {
        log('msg_recv', Object.assign(describe(opcode, payload), base));
        if (opcode === 'text' || opcode === 'binary') send(opcode, payload);
        else if (opcode === 'ping') send('pong', payload);
        else if (opcode === 'close' && !closeSent) {
          closeSent = true;
          send('close', payload.subarray(0, 2));
          stream.end();
        }
      }));
      stream.on('end', () => log('end_stream', base));
      return;
    }
    if (headers[':path'] === '/slow') {
      // Holds the page's load event (and so `chromium --dump-dom`) for 3 s.
      setTimeout(() => {
        if (stream.closed) return;
        stream.respond({ ':status': 200, 'content-type': 'image/gif' });
        stream.end(Buffer.from('R0lGODlhAQABAAAAACwAAAAAAQABAAA=', 'base64'));
        log('http', Object.assign({ method: headers[':method'], status: 200, body_length: 26 }, base));
      }, 3000);
      return;
    }
    const body = headers[':path'] === '/' && page ? page : Buffer.from('hello over h2\n');
    stream.respond({ ':status': 200, 'content-type': headers[':path'] === '/' && page ? 'text/html; charset=utf-8' : 'text/plain' });
    stream.end(body);
    log('http', Object.assign({ method: headers[':method'], status: 200, body_length: body.length }, base));
  });
  srv.on('session', (s) => s.on('error', () => {}));
  srv.listen(port, '127.0.0.1', () => console.log('READY'));
  process.on('SIGTERM', () => { srv.close(); setTimeout(() => process.exit(0), 300); });
}

// ---- client ----
// --slow-reader: the client announces a 16 KiB stream window, sends a 60,000-byte message, and
// stops reading its stream for 1.5 s before the echo comes back: the server's echo uses up the
// window and waits for the client's WINDOW_UPDATE (a flow-control stall, RFC 9113 §5.2).
async function slowReader(session, open, conn) {
  const chat = open('/chat', 'chat');
  await chat.ready;
  const big = Buffer.from(Array.from({ length: 60000 }, (_, i) => (i * 31 + 7) & 255));
  chat.req.pause();
  log('paused', { conn: conn(), stream: chat.req.id, path: '/chat' });
  chat.send('binary', big);
  await new Promise((r) => setTimeout(r, 1500));
  log('resumed', { conn: conn(), stream: chat.req.id, path: '/chat' });
  chat.req.resume();
  await chat.next();
  chat.send('close', Buffer.from([0x03, 0xe8, ...Buffer.from('done')]));
  await chat.next();
  chat.req.end();
  await new Promise((r) => setTimeout(r, 200));
  session.close(() => { log('session_closed', { conn: conn() }); process.exit(0); });
}

async function client() {
  const url = opt('url');
  const slow = args.includes('--slow-reader');
  const session = http2.connect(url, slow
    ? { settings: { initialWindowSize: 16384 } }
    : { paddingStrategy: http2.constants.PADDING_STRATEGY_MAX });
  session.on('error', (e) => { console.error(e); process.exit(1); });
  await new Promise((r) => session.once('remoteSettings', r));
  const connKey = `${session.socket.localAddress}:${session.socket.localPort}`;
  const conn = () => connKey;
  if (!session.remoteSettings.enableConnectProtocol) throw new Error('server did not enable CONNECT');

  // An ordinary request first.
  await new Promise((resolve) => {
    const req = session.request({ ':path': '/index.txt' });
    let n = 0;
    req.on('response', (h) => {
      req.on('data', (d) => (n += d.length));
      req.on('end', () => { log('http', { conn: conn(), stream: req.id, method: 'GET', path: '/index.txt', status: h[':status'], body_length: n }); resolve(); });
    });
    req.end();
  });

  function open(path, protocols) {
    const req = session.request({ ':method': 'CONNECT', ':protocol': 'websocket', ':scheme': 'http',
      ':path': path, 'sec-websocket-version': '13', 'sec-websocket-protocol': protocols,
      origin: url }, { endStream: false });
    const inbox = [];
    let waiter = null;
    const base = () => ({ conn: conn(), stream: req.id, path });
    req.on('data', frameReader((opcode, payload) => {
      log('msg_recv', Object.assign(describe(opcode, payload), base()));
      if (waiter) { const w = waiter; waiter = null; w([opcode, payload]); } else inbox.push([opcode, payload]);
    }));
    req.on('error', () => {});
    req.on('close', () => log('stream_closed', Object.assign({ rst_code: req.rstCode }, base())));
    const ws = {
      req,
      ready: new Promise((r) => req.on('response', (h) => { log('open', Object.assign({ status: h[':status'], subprotocol: h['sec-websocket-protocol'] || null, extensions: null }, base())); r(); })),
      next: () => new Promise((r) => (inbox.length ? r(inbox.shift()) : (waiter = r))),
      send(opcode, payload, fragments = 1) {
        if (fragments === 1) req.write(encodeFrame(true, CODES[opcode], payload, true));
        else {
          const size = Math.ceil(payload.length / fragments);
          for (let i = 0; i < fragments; i++) {
            const part = payload.subarray(i * size, (i + 1) * size);
            req.write(encodeFrame(i === fragments - 1, i === 0 ? CODES[opcode] : 0, part, true));
          }
        }
        log('msg_sent', Object.assign(describe(opcode, payload), base(), { fragments }));
      },
    };
    return ws;
  }

  if (slow) return slowReader(session, open, conn);
  const chat = open('/chat', 'chat, superchat');
  const cancel = open('/cancel?x=1', 'chat');
  await Promise.all([chat.ready, cancel.ready]);
  const plan = [
    ['text', Buffer.from('hello over h2c'), 1],
    ['binary', Buffer.from(Array.from({ length: 300 }, (_, i) => (i * 7) & 255)), 1],
    ['text', Buffer.from('fragmented ✓ message over three frames'), 3],
    ['ping', Buffer.from('are you there'), 1],
    ['binary', Buffer.alloc(20000, 'wsprobe over h2, '), 1],
  ];
  for (const [op, payload, fr] of plan) {
    chat.send(op, payload, fr);
    await chat.next();
    cancel.send('text', Buffer.from(`cancel stream ${op}`), 1);
    await cancel.next();
  }
  // /chat: a clean close handshake, then END_STREAM both ways.
  const closePayload = Buffer.from([0x03, 0xe8, ...Buffer.from('bye')]);
  chat.send('close', closePayload);
  await chat.next();
  chat.req.end();
  // /cancel: no Close frame, RST_STREAM(CANCEL) as a browser does when a page goes away.
  await new Promise((r) => setTimeout(r, 100));
  cancel.req.close(http2.constants.NGHTTP2_CANCEL);
  log('reset_sent', { conn: conn(), stream: cancel.req.id, path: '/cancel?x=1', rst_code: http2.constants.NGHTTP2_CANCEL });
  await new Promise((r) => setTimeout(r, 200));
  session.close(() => { log('session_closed', { conn: conn() }); process.exit(0); });
}

if (mode === 'server') server();
else client().catch((e) => { console.error(e); process.exit(1); });
