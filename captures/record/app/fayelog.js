'use strict';
// Ground truth for endpoints built on faye-websocket (the sockjs server and sockjs-client in
// Node both are): the same JSON-lines events as ../wslog.js. faye-websocket drives
// websocket-driver's Hybi, so each connection's driver is hooked where faye wires it to its
// socket (API#_configureStream, for server and client alike): `_sendFrame` gives every frame
// written (unmasked payload, header bits; the driver's own pongs and close echo included),
// `_emitFrame` the control frames read and `_emitMessage` each whole data message read.
//
// usage: const F = require('./fayelog')(role, logPath, impl)  -- before the library makes a
// connection; F.app(conn, {...}) logs an application fact, F.onOpen(cb) gives (ws, conn).

const path = require('path');
const W = require('../wslog');

const OPNAMES = { 0: 'cont', 1: 'text', 2: 'binary', 8: 'close', 9: 'ping', 10: 'pong' };

module.exports = function fayelog(role, logPath, impl) {
  const log = new W.Log(logPath, role, impl);
  const API = require(path.join(path.dirname(require.resolve('faye-websocket')), 'websocket', 'api'));
  const openers = [];
  const configure = API.prototype._configureStream;
  API.prototype._configureStream = function () {
    instrument(this);
    return configure.apply(this, arguments);
  };

  function instrument(api) {
    const driver = api._driver;
    const stream = api._stream;
    const state = { seq: 0, sentClose: null, rcvdClose: null, conn: null };
    const conn = () => {
      if (!state.conn && stream && stream.remotePort) {
        state.conn = role === 'client' ? W.connKey(stream.localAddress, stream.localPort) : W.connKey(stream.remoteAddress, stream.remotePort);
      }
      return state.conn;
    };
    const sendFrame = driver._sendFrame;
    driver._sendFrame = function (frame) {
      const op = OPNAMES[frame.opcode] || String(frame.opcode);
      const data = Buffer.from(frame.payload);
      if (op === 'close') state.sentClose = parseClose(data);
      log.emit('msg_sent', conn(), Object.assign({ frame_seq: [state.seq++], compressed: !!frame.rsv1 }, describe(op, data)));
      return sendFrame.apply(this, arguments);
    };
    const emitFrame = driver._emitFrame;
    driver._emitFrame = function (buffer) {
      const frame = this._frame;
      const op = OPNAMES[frame.opcode];
      if (op === 'close' || op === 'ping' || op === 'pong') {
        const copy = Buffer.from(buffer);
        if (frame.masked) for (let i = 0; i < copy.length; i++) copy[i] ^= frame.maskingKey[i % 4];
        if (op === 'close') state.rcvdClose = parseClose(copy);
        log.emit('msg_recv', conn(), describe(op, copy));
      }
      return emitFrame.apply(this, arguments);
    };
    const emitMessage = driver._emitMessage;
    driver._emitMessage = function () {
      const m = this._message;
      if (m) {
        const data = Buffer.concat(m._chunks, m.length);
        log.emit('msg_recv', conn(), describe(OPNAMES[m.opcode], data));
      }
      return emitMessage.apply(this, arguments);
    };
    driver.on('open', () => {
      let p = null;
      if (role === 'server' && driver._request) p = driver._request.url;
      if (role === 'client' && api.url) { const u = new URL(api.url); p = u.pathname + u.search; }
      log.emit('open', conn(), {
        local: [String(stream.localAddress).replace(/^::ffff:/, ''), stream.localPort],
        remote: [String(stream.remoteAddress).replace(/^::ffff:/, ''), stream.remotePort],
        path: p,
        status: 101,
        subprotocol: driver.protocol || null,
        extensions: null,
      });
      for (const cb of openers) cb(api, conn());
    });
    driver.on('close', (e) => {
      log.emit('closed', conn(), { sent: state.sentClose, received: state.rcvdClose, reported: { code: e.code, reason: e.reason || '' } });
    });
  }

  function parseClose(buf) {
    if (buf.length === 0) return { code: null, reason: null };
    return { code: buf.readUInt16BE(0), reason: buf.subarray(2).toString('utf8') };
  }

  function describe(opcode, data) {
    const d = { opcode, length: data.length, sha256: require('crypto').createHash('sha256').update(data).digest('hex') };
    if (opcode === 'text') d.text = Array.from(data.toString('utf8')).slice(0, 64).join('');
    if (opcode === 'ping' || opcode === 'pong' || opcode === 'close') d.payload_hex = data.toString('hex');
    return d;
  }

  return {
    log,
    app: (conn, fields) => log.emit('app', conn, fields),
    onOpen: (cb) => openers.push(cb),
  };
};
