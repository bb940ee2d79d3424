'use strict';
// Endpoint-side ground-truth logging for Node `ws` endpoints (same JSON-lines
// events as wslog.py). Sent frames are hooked on the connection's Sender
// (`send`, `ping`, `pong`, `close` give the unmasked, uncompressed payload,
// including the automatic pongs and close echoes that ws writes by itself;
// `sendFrame` gives the header byte actually written, for RSV1). Received
// messages come from the 'message' / 'ping' / 'pong' / 'close' events.

const crypto = require('crypto');
const fs = require('fs');
const WS_IMPL = 'node-ws ' + require('ws/package.json').version;

const now = () => Number(process.hrtime.bigint()); // CLOCK_MONOTONIC ns

function connKey(addr, port) {
  addr = String(addr).replace(/^::ffff:/, '');
  return addr.includes(':') ? `[${addr}]:${port}` : `${addr}:${port}`;
}

function toBuf(data) {
  if (data === undefined || data === null) return Buffer.alloc(0);
  if (Buffer.isBuffer(data)) return data;
  if (typeof data === 'string') return Buffer.from(data, 'utf8');
  if (Array.isArray(data)) return Buffer.concat(data);
  if (data instanceof ArrayBuffer) return Buffer.from(data);
  if (ArrayBuffer.isView(data)) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  return Buffer.from(String(data));
}

function parseClose(buf) {
  if (buf.length === 0) return { code: null, reason: null };
  return { code: buf.readUInt16BE(0), reason: buf.subarray(2).toString('utf8') };
}

function describe(opcode, data) {
  const d = {
    opcode,
    length: data.length,
    sha256: crypto.createHash('sha256').update(data).digest('hex'),
  };
  if (opcode === 'text') d.text = Array.from(data.toString('utf8')).slice(0, 64).join('');
  if (opcode === 'ping' || opcode === 'pong' || opcode === 'close') d.payload_hex = data.toString('hex');
  return d;
}

class Log {
  constructor(path, role, impl) {
    this.fd = fs.openSync(path, 'a');
    this.role = role;
    this.impl = impl || WS_IMPL;
  }
  emit(ev, conn, fields) {
    const rec = Object.assign({ ev, t: now(), role: this.role, impl: this.impl, conn }, fields || {});
    fs.writeSync(this.fd, JSON.stringify(rec) + '\n');
  }
}

// Hook an open ws WebSocket (server side: in 'connection'; client side: in 'open').
function instrument(ws, log, conn) {
  const s = ws._sender;
  const pending = []; // logical frames awaiting their sendFrame()
  let seq = 0;
  let cur = null;
  const state = { sentClose: null, rcvdClose: null };

  const emitFrame = (f, rsv1) => {
    if (f.opcode === 'text' || f.opcode === 'binary') {
      cur = { opcode: f.opcode, chunks: [f.data], seqs: [f.seq], rsv1, t: f.t };
    } else if (f.opcode === 'cont') {
      if (!cur) return;
      cur.chunks.push(f.data);
      cur.seqs.push(f.seq);
    } else {
      if (f.opcode === 'close') state.sentClose = parseClose(f.data);
      log.emit('msg_sent', conn, Object.assign({ t: f.t, frame_seq: [f.seq], compressed: rsv1 }, describe(f.opcode, f.data)));
      return;
    }
    if (f.fin) {
      const c = cur;
      cur = null;
      log.emit('msg_sent', conn, Object.assign({ t: c.t, frame_seq: c.seqs, compressed: c.rsv1 }, describe(c.opcode, Buffer.concat(c.chunks))));
    }
  };
  const push = (opcode, fin, data) => pending.push({ opcode, fin, data: Buffer.from(toBuf(data)), seq: seq++, t: now() });

  const oSend = s.send.bind(s);
  s.send = (data, options, cb) => {
    const op = s._firstFragment ? (options.binary ? 'binary' : 'text') : 'cont';
    push(op, !!options.fin, data);
    return oSend(data, options, cb);
  };
  const oPing = s.ping.bind(s);
  s.ping = (data, mask, cb) => { push('ping', true, data); return oPing(data, mask, cb); };
  const oPong = s.pong.bind(s);
  s.pong = (data, mask, cb) => { push('pong', true, data); return oPong(data, mask, cb); };
  const oClose = s.close.bind(s);
  s.close = (code, data, mask, cb) => {
    let buf = Buffer.alloc(0);
    if (code !== undefined) {
      buf = Buffer.alloc(2);
      buf.writeUInt16BE(code, 0);
      if (data !== undefined && data.length) buf = Buffer.concat([buf, toBuf(data)]);
    }
    push('close', true, buf);
    return oClose(code, data, mask, cb);
  };
  const oSendFrame = s.sendFrame.bind(s);
  s.sendFrame = (list, cb) => {
    const f = pending.shift();
    if (f) emitFrame(f, (list[0][0] & 0x40) !== 0);
    return oSendFrame(list, cb);
  };

  ws.on('message', (data, isBinary) => {
    log.emit('msg_recv', conn, describe(isBinary ? 'binary' : 'text', toBuf(data)));
  });
  ws.on('ping', (data) => log.emit('msg_recv', conn, describe('ping', toBuf(data))));
  ws.on('pong', (data) => log.emit('msg_recv', conn, describe('pong', toBuf(data))));
  ws.on('close', (code, reason) => {
    if (ws._closeFrameReceived) {
      const buf = code === 1005 ? Buffer.alloc(0) : Buffer.concat([Buffer.from([code >> 8, code & 255]), toBuf(reason)]);
      state.rcvdClose = parseClose(buf);
      log.emit('msg_recv', conn, describe('close', buf));
    }
    log.emit('closed', conn, {
      sent: state.sentClose,
      received: state.rcvdClose,
      reported: { code, reason: toBuf(reason).toString('utf8') },
    });
  });
  return state;
}

function logOpen(ws, log, conn, req, extensionsHeader) {
  const sock = ws._socket;
  log.emit('open', conn, {
    local: [String(sock.localAddress).replace(/^::ffff:/, ''), sock.localPort],
    remote: [String(sock.remoteAddress).replace(/^::ffff:/, ''), sock.remotePort],
    path: req ? req.url : null,
    status: 101,
    subprotocol: ws.protocol || null,
    extensions: extensionsHeader || null,
  });
}

// Server helper: remember the Sec-WebSocket-Extensions header ws answers with.
function trackHeaders(wss) {
  wss.on('headers', (headers, req) => {
    const h = headers.find((l) => /^sec-websocket-extensions:/i.test(l));
    req._wslogExt = h ? h.slice(h.indexOf(':') + 1).trim() : null;
  });
}

// Promise-based receive queue for scripted clients/servers.
function inbox(ws) {
  const q = [];
  const waiters = [];
  const put = (m) => { const w = waiters.shift(); if (w) w(m); else q.push(m); };
  ws.on('message', (data, isBinary) => put({ type: 'message', data: toBuf(data), isBinary }));
  ws.on('close', (code) => put({ type: 'close', code }));
  return () => new Promise((resolve) => { const m = q.shift(); if (m) resolve(m); else waiters.push(resolve); });
}

module.exports = { Log, instrument, logOpen, trackHeaders, inbox, connKey, toBuf, WS_IMPL, now };
