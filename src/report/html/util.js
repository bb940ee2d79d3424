// wsprobe HTML report: shared helpers. Plain JavaScript, no library; the other scripts add
// their parts to the WS namespace. Errors are counted on the root element (data-errors) so a
// test, and a person opening the devtools, sees them.
'use strict';
const WS = {};
(function () {
  let errors = 0;
  const root = document.documentElement;
  root.dataset.errors = '0';
  window.addEventListener('error', (e) => {
    errors += 1;
    root.dataset.errors = String(errors);
    root.dataset.lastError = String((e && e.message) || e);
  });
  window.addEventListener('unhandledrejection', (e) => {
    errors += 1;
    root.dataset.errors = String(errors);
    root.dataset.lastError = String(e && e.reason);
  });
})();

WS.OUTCOMES = ['clean', 'abnormal', 'incomplete', 'open', 'not_websocket'];
WS.OUTCOME_TEXT = {
  clean: 'clean: both Close frames',
  abnormal: 'abnormal: TCP ended with no Close (1006)',
  incomplete: 'incomplete: a Close never answered',
  open: 'open when the capture ended',
  not_websocket: 'refused upgrade',
};
WS.SVG_NS = 'http://www.w3.org/2000/svg';

/** el('div', {class: 'x', onclick: f}, child, 'text', ...) */
WS.el = function (tag, attrs, ...children) {
  const e = document.createElement(tag);
  WS.fill(e, attrs, children);
  return e;
};
WS.svg = function (tag, attrs, ...children) {
  const e = document.createElementNS(WS.SVG_NS, tag);
  WS.fill(e, attrs, children);
  return e;
};
WS.fill = function (e, attrs, children) {
  if (attrs) {
    for (const k of Object.keys(attrs)) {
      const v = attrs[k];
      if (v === undefined || v === null || v === false) continue;
      if (k.startsWith('on') && typeof v === 'function') e.addEventListener(k.slice(2), v);
      else if (k === 'text') e.textContent = v;
      else e.setAttribute(k, v === true ? '' : String(v));
    }
  }
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    e.appendChild(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c);
  }
  return e;
};

WS.css = function (name) {
  return getComputedStyle(document.documentElement).getPropertyValue('--' + name).trim() || '#888';
};
/** A theme colour, cached until the theme changes (WS.themeChanged). */
WS.cache = {};
WS.col = function (name) {
  let v = WS.cache[name];
  if (v === undefined) v = WS.cache[name] = WS.css(name);
  return v;
};
WS.themeChanged = function () {
  WS.cache = {};
};

WS.bytes = function (n) {
  if (n === null || n === undefined) return '?';
  if (n < 1024) return n + ' B';
  if (n < 1048576) return (n / 1024).toFixed(1) + ' KiB';
  if (n < 1073741824) return (n / 1048576).toFixed(1) + ' MiB';
  return (n / 1073741824).toFixed(2) + ' GiB';
};

/** Seconds for people: 340 µs, 12 ms, 1.5 s, 2 min 5 s, 3 h 10 min. */
WS.dur = function (s) {
  if (s === null || s === undefined || !isFinite(s)) return '?';
  const a = Math.abs(s);
  if (a < 0.001) return (s * 1e6).toFixed(0) + ' µs';
  if (a < 1) return (s * 1e3).toFixed(a < 0.01 ? 2 : 1) + ' ms';
  if (a < 60) return s.toFixed(a < 10 ? 2 : 1) + ' s';
  if (a < 3600) return Math.floor(s / 60) + ' min ' + Math.round(s % 60) + ' s';
  return Math.floor(s / 3600) + ' h ' + Math.round((s % 3600) / 60) + ' min';
};

/** A capture time as UTC wall clock, HH:MM:SS.mmm (digits: 0-6 after the point). */
WS.clock = function (t, digits) {
  if (t === null || t === undefined) return '?';
  const d = digits === undefined ? 3 : digits;
  const day = ((t % 86400) + 86400) % 86400;
  const h = Math.floor(day / 3600), m = Math.floor((day % 3600) / 60);
  const sec = day % 60;
  const pad = (x) => String(x).padStart(2, '0');
  let s = sec.toFixed(d);
  if (sec < 10) s = '0' + s;
  return pad(h) + ':' + pad(m) + ':' + s;
};
WS.date = function (t) {
  return new Date(t * 1000).toISOString().slice(0, 10);
};

/** A "nice" step (1, 2, 5 × 10^k) so that `range` holds about `count` steps. */
WS.niceStep = function (range, count) {
  const raw = range / Math.max(1, count);
  const p = Math.pow(10, Math.floor(Math.log10(raw)));
  for (const m of [1, 2, 5, 10]) if (m * p >= raw) return m * p;
  return 10 * p;
};
/** Nice steps for time axes, in seconds, so ticks land on round clock values. */
WS.TIME_STEPS = [1e-6, 2e-6, 5e-6, 1e-5, 2e-5, 5e-5, 1e-4, 2e-4, 5e-4, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05,
  0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400];
WS.timeStep = function (range, count) {
  const raw = range / Math.max(1, count);
  for (const s of WS.TIME_STEPS) if (s >= raw) return s;
  return WS.niceStep(range, count);
};
/** Label of a tick at time t with step `step`: wall clock to the precision the step needs. */
WS.tickLabel = function (t, step) {
  const digits = step >= 1 ? 0 : Math.min(6, Math.ceil(-Math.log10(step) - 1e-9));
  const s = WS.clock(t, digits);
  return step >= 60 ? s.slice(0, 5) : s;
};
WS.numLabel = function (v) {
  const a = Math.abs(v);
  if (a >= 1e9) return (v / 1e9).toFixed(a >= 1e10 ? 0 : 1) + 'G';
  if (a >= 1e6) return (v / 1e6).toFixed(a >= 1e7 ? 0 : 1) + 'M';
  if (a >= 1e3) return (v / 1e3).toFixed(a >= 1e4 ? 0 : 1) + 'k';
  if (a === 0 || a >= 1) return String(Math.round(v * 100) / 100);
  return v.toPrecision(2);
};

/** Calls f at most once per animation frame. */
WS.throttle = function (f) {
  let queued = false;
  return function () {
    if (queued) return;
    queued = true;
    requestAnimationFrame(() => { queued = false; f(); });
  };
};
/** Calls f `ms` after the last call. */
WS.debounce = function (f, ms) {
  let timer = 0;
  return function () {
    clearTimeout(timer);
    timer = setTimeout(f, ms);
  };
};

/** Payload of a message record as bytes (text as UTF-8, base64 decoded). */
WS.payloadBytes = function (m) {
  if (typeof m.text === 'string') return new TextEncoder().encode(m.text);
  if (typeof m.base64 === 'string') {
    const bin = atob(m.base64);
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }
  return new Uint8Array(0);
};
/** Classic hex dump: offset, 16 bytes in hex, the printable ones. */
WS.hexdump = function (bytes, max) {
  const n = Math.min(bytes.length, max || 4096);
  const lines = [];
  for (let off = 0; off < n; off += 16) {
    let hex = '', asc = '';
    for (let i = 0; i < 16; i++) {
      if (off + i < n) {
        const b = bytes[off + i];
        hex += b.toString(16).padStart(2, '0') + (i === 7 ? '  ' : ' ');
        asc += b >= 32 && b < 127 ? String.fromCharCode(b) : '.';
      } else hex += i === 7 ? '    ' : '   ';
    }
    lines.push(off.toString(16).padStart(6, '0') + '  ' + hex + ' ' + asc);
  }
  if (bytes.length > n) lines.push('… ' + (bytes.length - n) + ' more bytes');
  return lines.join('\n');
};

/** The connection's endpoints as people read them. */
WS.endpoints = function (c) {
  const a = (x) => (x.ip.indexOf(':') >= 0 ? '[' + x.ip + ']' : x.ip) + ':' + x.port;
  return a(c.client) + ' → ' + a(c.server);
};
WS.target = function (c) {
  const h = c.handshake;
  if (!h) return '(no handshake captured)';
  return (h.host || '') + (h.path || '');
};
