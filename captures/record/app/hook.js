'use strict';
// Ground truth for application-protocol endpoints: every copy of the `ws` library that the
// libraries load (Socket.IO 2 brings ws 7, Socket.IO 4 ws 8 ...) is hooked where a WebSocket
// gets its socket (`setSocket`, for client and server alike), so the frames each side writes and
// the messages it receives are logged exactly as for the plain ws endpoints (../wslog.js). The
// application-level facts (events, acks, errors, what the library reported) are logged by the
// scripts with `app(...)`.
//
// usage: const H = require('./hook')(role, logPath)  -- before requiring any library.

const Module = require('module');
const path = require('path');
const W = require('../wslog');

module.exports = function hook(role, logPath) {
  const log = new W.Log(logPath, role);
  const patched = new Set();
  const origLoad = Module._load;
  Module._load = function (request, parent, isMain) {
    const exp = origLoad.apply(this, arguments);
    if (request === 'ws' || /[\\/]ws[\\/]lib[\\/]websocket(\.js)?$/.test(request)) {
      // Servers: remember each upgrade's request target on its socket, for the open event.
      const Srv = exp && (exp.WebSocketServer || exp.Server);
      if (Srv && Srv.prototype && Srv.prototype.handleUpgrade && !patched.has(Srv.prototype)) {
        patched.add(Srv.prototype);
        const handle = Srv.prototype.handleUpgrade;
        Srv.prototype.handleUpgrade = function (req, socket) {
          socket._wsprobePath = req.url;
          return handle.apply(this, arguments);
        };
      }
      const WS = exp && (exp.WebSocket || exp);
      const proto = WS && WS.prototype;
      if (proto && proto.setSocket && !patched.has(proto)) {
        patched.add(proto);
        let version = '?';
        try {
          const file = Module._resolveFilename(request, parent);
          let dir = path.dirname(file);
          while (!require('fs').existsSync(path.join(dir, 'package.json'))) dir = path.dirname(dir);
          version = require(path.join(dir, 'package.json')).version;
        } catch (e) { /* unknown */ }
        const orig = proto.setSocket;
        proto.setSocket = function (socket) {
          // setSocket emits 'open' itself, and handlers send at once (Engine.IO's 2probe):
          // instrument just before that emission.
          let done = false;
          const instrumentNow = () => {
            if (done) return;
            done = true;
            try {
              const sock = this._socket;
              const client = role === 'client';
              const conn = client ? W.connKey(sock.localAddress, sock.localPort) : W.connKey(sock.remoteAddress, sock.remotePort);
              this._wsprobeConn = conn;
              log.impl = `${module.exports.impl || 'app'} over node-ws ${version}`;
              W.instrument(this, log, conn);
              let p = null;
              const url = this.url || this._url;
              if (client && url) { const u = new URL(url); p = u.pathname + u.search; }
              if (!client && sock._wsprobePath) p = sock._wsprobePath;
              log.emit('open', conn, {
                local: [String(sock.localAddress).replace(/^::ffff:/, ''), sock.localPort],
                remote: [String(sock.remoteAddress).replace(/^::ffff:/, ''), sock.remotePort],
                path: p,
                status: 101,
                subprotocol: this.protocol || null,
                extensions: this.extensions || null,
              });
              (module.exports.onOpen || (() => {}))(this, conn);
            } catch (e) {
              process.stderr.write('hook: ' + e.stack + '\n');
            }
          };
          const emit = this.emit;
          this.emit = function (ev, ...rest) {
            if (ev === 'open') instrumentNow();
            return emit.call(this, ev, ...rest);
          };
          const r = orig.apply(this, arguments);
          this.emit = emit;
          instrumentNow();
          return r;
        };
      }
    }
    return exp;
  };
  // Application facts: app(conn, {what: ..., ...}).
  const app = (conn, fields) => log.emit('app', conn, fields);
  return { log, app, W };
};

// The installed version of package `name` (package.json may not be exported).
module.exports.version = (name) => {
  const fs = require('fs');
  for (const dir of (process.env.NODE_PATH || '').split(path.delimiter)) {
    const p = path.join(dir, name, 'package.json');
    if (fs.existsSync(p)) return JSON.parse(fs.readFileSync(p, 'utf8')).version;
  }
  return '?';
};
