// Plots, as inline SVG: messages and payload bytes per second, ping round trips and open
// connections over the timeline's time range (they follow its zoom), and the silence before
// the end across connections, the chart on which an idle timeout stands out as one spike.

WS.CHART = { w: 600, h: 200, l: 48, r: 10, t: 8, b: 24 };

/** An SVG chart frame with axes; returns {svg, x(v), y(v)} for drawing into it. */
WS.frame = function (opt) {
  const C = WS.CHART;
  const svg = WS.svg('svg', { viewBox: '0 0 ' + C.w + ' ' + C.h, role: 'img', 'aria-label': opt.title || '' });
  const [xa, xb] = opt.x, [ya, yb] = opt.y;
  const xlog = !!opt.xLog, ylog = !!opt.yLog;
  const fx = (v) => (xlog ? Math.log10(Math.max(v, xa)) : v);
  const fy = (v) => (ylog ? Math.log10(Math.max(v, ya)) : v);
  const X0 = fx(xa), X1 = fx(xb), Y0 = fy(ya), Y1 = fy(yb);
  const x = (v) => C.l + ((fx(v) - X0) / (X1 - X0 || 1)) * (C.w - C.l - C.r);
  const y = (v) => C.h - C.b - ((fy(v) - Y0) / (Y1 - Y0 || 1)) * (C.h - C.t - C.b);
  // y ticks
  const yt = [];
  if (ylog) {
    for (let e = Math.floor(Y0); e <= Math.ceil(Y1); e++) { const v = Math.pow(10, e); if (v >= ya && v <= yb) yt.push(v); }
  } else {
    const s = WS.niceStep(yb - ya || 1, 4);
    for (let v = Math.ceil(ya / s) * s; v <= yb + 1e-9; v += s) yt.push(v);
  }
  for (const v of yt) {
    svg.appendChild(WS.svg('line', { class: 'gridline', x1: C.l, x2: C.w - C.r, y1: y(v), y2: y(v) }));
    svg.appendChild(WS.svg('text', { x: C.l - 4, y: y(v) + 4, 'text-anchor': 'end' }, WS.numLabel(v)));
  }
  // x ticks
  const xt = [];
  if (opt.xTime) {
    const s = WS.timeStep(xb - xa, 5);
    for (let v = Math.ceil(xa / s) * s; v <= xb && xt.length < 12; v += s) xt.push([v, WS.tickLabel(v, s)]);
  } else if (xlog) {
    for (let e = Math.ceil(X0); e <= Math.floor(X1); e++) xt.push([Math.pow(10, e), WS.dur(Math.pow(10, e))]);
  } else {
    const s = WS.niceStep(xb - xa || 1, 6);
    for (let v = Math.ceil(xa / s) * s; v <= xb + 1e-9; v += s) xt.push([v, opt.xFmt ? opt.xFmt(v) : WS.numLabel(v)]);
  }
  for (const [v, label] of xt) {
    svg.appendChild(WS.svg('line', { class: 'axisline', x1: x(v), x2: x(v), y1: C.h - C.b, y2: C.h - C.b + 4 }));
    svg.appendChild(WS.svg('text', { x: x(v), y: C.h - 6, 'text-anchor': 'middle' }, label));
  }
  svg.appendChild(WS.svg('line', { class: 'axisline', x1: C.l, x2: C.w - C.r, y1: C.h - C.b, y2: C.h - C.b }));
  if (opt.yLabel) svg.appendChild(WS.svg('text', { x: 4, y: C.t + 4 }, opt.yLabel));
  return { svg, x, y };
};

/** One plot card: title, chart, notes. */
WS.plotCard = function (id, title, svg, notes) {
  return WS.el('div', { class: 'plot', id },
    WS.el('h3', { text: title }), svg,
    ...(notes || []).filter(Boolean).map((n) => WS.el('p', { class: 'note' + (n.finding ? ' finding' : ''), text: n.text || n })));
};

/** Lower bound: first index with a[i] >= v in a sorted array. */
WS.lower = function (a, v) {
  let lo = 0, hi = a.length;
  while (lo < hi) { const mid = (lo + hi) >> 1; if (a[mid] < v) lo = mid + 1; else hi = mid; }
  return lo;
};

WS.Plots = class {
  constructor(container, report, rows) {
    this.report = report;
    this.container = container;
    // Every listed data message, as columns.
    let n = 0;
    for (const c of report.connections) if (c.messages) n += c.messages.length;
    const t = new Float64Array(n), bytes = new Float64Array(n), side = new Uint8Array(n), data = new Uint8Array(n);
    const rtt = [];
    let k = 0;
    for (const c of report.connections) {
      if (c.messages) {
        for (const m of c.messages) {
          t[k] = m.time;
          bytes[k] = m.length === null || m.length === undefined ? m.wire_length : m.length;
          side[k] = m.from === 'client' ? 0 : 1;
          data[k] = m.opcode === 'text' || m.opcode === 'binary' ? 1 : 0;
          k++;
        }
      }
      for (const s of c.ping.rtt_samples || []) rtt.push([s.time, s.rtt_ms, s.from === 'client' ? 0 : 1]);
    }
    this.msg = { t, bytes, side, data, n };
    rtt.sort((a, b) => a[0] - b[0]);
    this.rtt = rtt;
    this.rttTimes = Float64Array.from(rtt, (r) => r[0]);
    this.starts = Float64Array.from(rows, (r) => r.start).sort();
    this.ends = Float64Array.from(rows, (r) => r.end).sort();
    this.listed = n;
    this.grid = WS.el('div', { class: 'plots' });
    container.append(this.grid);
    this.timeCards = [];
    this.renderIdle();
  }

  /** The time-based plots over [a, b] (the timeline's view). */
  render(view) {
    const [a, b] = view;
    const step = WS.timeStep(b - a, 120);
    const first = Math.floor(a / step) * step;
    const bins = Math.max(1, Math.ceil((b - first) / step));
    const count = [new Float64Array(bins), new Float64Array(bins)];
    const vol = [new Float64Array(bins), new Float64Array(bins)];
    const M = this.msg;
    let inView = 0;
    for (let i = 0; i < M.n; i++) {
      if (!M.data[i]) continue;
      const j = Math.floor((M.t[i] - first) / step);
      if (j < 0 || j >= bins) continue;
      count[M.side[i]][j] += 1;
      vol[M.side[i]][j] += M.bytes[i];
      inView++;
    }
    const per = (arr) => Array.from(arr, (v, j) => [first + (j + 0.5) * step, v / step]);
    const cards = [];
    const sideColor = [WS.col('client'), WS.col('server')];
    const sum = this.report.summary;
    const all = (sum.messages || 0) + (sum.control_frames || 0);
    const listedNote = this.listed < all
      ? 'From the ' + this.listed + ' messages and control frames listed in this page, of ' + all +
        ' (--max-listed-bytes bounds what a page lists).' : null;
    for (const [id, title, series, unit] of [
      ['plot-messages', 'Messages per second', count, 'msg/s'],
      ['plot-bytes', 'Payload bytes per second', vol, 'B/s'],
    ]) {
      const pts = [per(series[0]), per(series[1])];
      let max = 1;
      for (const p of pts) for (const q of p) max = Math.max(max, q[1]);
      const f = WS.frame({ title, x: [a, b], y: [0, max * 1.08], xTime: true, yLabel: unit });
      pts.forEach((p, s) => {
        const d = p.map((q, i) => (i ? 'L' : 'M') + f.x(q[0]).toFixed(1) + ' ' + f.y(q[1]).toFixed(1)).join('');
        f.svg.appendChild(WS.svg('path', { d, fill: 'none', stroke: sideColor[s], 'stroke-width': 1.5 }));
      });
      cards.push(WS.plotCard(id, title, f.svg, [
        'Client → server in blue, server → client in purple; ' + WS.dur(step) + ' bins; ' + inView + ' data messages in view.',
        listedNote]));
    }
    // Ping round trips.
    {
      const lo = WS.lower(this.rttTimes, a), hi = WS.lower(this.rttTimes, b + 1e-9);
      const pts = this.rtt.slice(lo, hi);
      let min = Infinity, max = 0;
      for (const p of pts) { min = Math.min(min, p[1]); max = Math.max(max, p[1]); }
      const log = pts.length && max / Math.max(min, 1e-3) > 50;
      const yLo = log ? Math.max(1e-3, min / 1.5) : 0;
      const f = WS.frame({ title: 'Ping round trips', x: [a, b], y: [yLo, Math.max(max * 1.1, 1)], yLog: log, xTime: true, yLabel: 'ms' });
      const d = ['', ''];
      const stride = Math.max(1, Math.floor(pts.length / 6000));
      for (let i = 0; i < pts.length; i += stride) {
        const p = pts[i];
        d[p[2]] += 'M' + (f.x(p[0]) - 1.5).toFixed(1) + ' ' + (f.y(p[1]) - 1.5).toFixed(1) + 'h3v3h-3z';
      }
      d.forEach((path, s) => { if (path) f.svg.appendChild(WS.svg('path', { d: path, fill: sideColor[s] })); });
      const sorted = pts.map((p) => p[1]).sort((x, y) => x - y);
      const q = (p) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
      cards.push(WS.plotCard('plot-rtt', 'Ping round trips', f.svg, [
        pts.length ? pts.length + ' answered pings in view (blue: client pinged, purple: server pinged); median ' +
          q(0.5).toFixed(2) + ' ms, p99 ' + q(0.99).toFixed(2) + ' ms.' : 'No answered ping in view.']));
    }
    // Open connections.
    {
      const pts = [];
      let max = 1;
      for (let j = 0; j <= bins; j++) {
        const tt = first + j * step;
        const open = WS.lower(this.starts, tt + 1e-12) - WS.lower(this.ends, tt);
        pts.push([tt, open]);
        max = Math.max(max, open);
      }
      const f = WS.frame({ title: 'Open connections', x: [a, b], y: [0, max * 1.08], xTime: true, yLabel: 'connections' });
      const d = pts.map((p, i) => (i ? 'H' + f.x(p[0]).toFixed(1) + 'V' : 'M' + f.x(p[0]).toFixed(1) + ' ') + f.y(p[1]).toFixed(1)).join('');
      f.svg.appendChild(WS.svg('path', { d, fill: 'none', stroke: WS.col('open'), 'stroke-width': 1.5 }));
      cards.push(WS.plotCard('plot-open', 'Open connections', f.svg, ['Connections between their first and last packet.']));
    }
    this.timeCards = cards;
    this.grid.replaceChildren(...cards, this.idleCard);
  }

  /** Silence before the end: a histogram across connections, stacked by outcome, with the
   * idle_timeout findings marked (the timeout as a line, the connections' spread as a band). */
  renderIdle() {
    const idle = (this.report.findings || []).filter((f) => f.id === 'idle_timeout');
    // The silence the (first) finding measured: both ways, or one direction's.
    const measure = idle.length ? (idle[0].parameters.measured_on || 'both') : 'both';
    const silence = (c) => {
      const t = c.timing;
      if (!t) return c.close.idle_before_end;
      if (measure === 'client_to_server') return t.idle_by_side.client;
      if (measure === 'server_to_client') return t.idle_by_side.server;
      return t.idle;
    };
    const vals = [];
    for (const c of this.report.connections) {
      const ended = c.timing ? c.timing.ended_by !== 'none' && c.timing.ended_by !== 'stopped' : c.close.tcp_end_time !== null;
      const v = silence(c);
      if (ended && v !== null && v !== undefined) vals.push([Math.max(v, 0), c.close.outcome]);
    }
    const title = 'Silence before the end';
    if (!vals.length) {
      this.idleCard = WS.plotCard('plot-idle', title, WS.frame({ x: [0, 1], y: [0, 1] }).svg,
        ['No connection ended (Close, FIN or RST) in the capture.']);
      this.grid.replaceChildren(...this.timeCards, this.idleCard);
      return;
    }
    let lo = Infinity, hi = 0.001;
    for (const [v] of vals) { if (v > 0) lo = Math.min(lo, v); hi = Math.max(hi, v); }
    for (const f of idle) hi = Math.max(hi, f.parameters.timeout_s || 0);
    if (!isFinite(lo)) lo = 0.001;
    const log = hi / Math.max(lo, 1e-4) > 100;
    let edges = [];
    const nb = 40;
    if (log) {
      lo = Math.max(1e-4, lo / 1.2);
      const a = Math.log10(lo), b = Math.log10(hi * 1.05);
      for (let i = 0; i <= nb; i++) edges.push(Math.pow(10, a + ((b - a) * i) / nb));
    } else {
      lo = 0;
      for (let i = 0; i <= nb; i++) edges.push((hi * 1.05 * i) / nb);
    }
    const counts = edges.slice(0, -1).map(() => ({}));
    for (const [v, o] of vals) {
      let j = 0;
      while (j < nb - 1 && v >= edges[j + 1]) j++;
      counts[j][o] = (counts[j][o] || 0) + 1;
    }
    let max = 1;
    for (const c of counts) max = Math.max(max, Object.values(c).reduce((s, x) => s + x, 0));
    const f = WS.frame({ title, x: [edges[0], edges[nb]], y: [0, max * 1.1], xLog: log,
      xFmt: (v) => WS.dur(v), yLabel: 'connections' });
    counts.forEach((c, j) => {
      let base = 0;
      for (const o of WS.OUTCOMES) {
        const n = c[o];
        if (!n) continue;
        const x0 = f.x(edges[j]), x1 = f.x(edges[j + 1]);
        f.svg.appendChild(WS.svg('rect', { x: x0 + 0.5, width: Math.max(1, x1 - x0 - 1), y: f.y(base + n), height: f.y(base) - f.y(base + n),
          fill: WS.col(o) }, WS.svg('title', {}, n + ' ' + o + ', ' + WS.dur(edges[j]) + '–' + WS.dur(edges[j + 1]))));
        base += n;
      }
    });
    const words = { both: 'nothing either way', client_to_server: 'nothing from the client', server_to_client: 'nothing from the server' };
    const notes = [vals.length + ' connections ended; seconds with ' + words[measure] + ' before the end began (the first Close, FIN or RST), coloured by outcome.'];
    this.idleFindings = [];
    const C = WS.CHART;
    for (const fi of idle) {
      const p = fi.parameters;
      const t = p.timeout_s;
      if (typeof t !== 'number') continue;
      const spread = Array.isArray(p.spread_s) ? p.spread_s : [t, t];
      const clamp = (v) => Math.min(Math.max(v, edges[0]), edges[nb]);
      const x0 = f.x(clamp(spread[0])), x1 = f.x(clamp(spread[1])), xt = f.x(clamp(t));
      f.svg.insertBefore(WS.svg('rect', { class: 'finding-band', x: x0 - 2, width: x1 - x0 + 4, y: C.t, height: C.h - C.t - C.b,
        fill: WS.col('select') }), f.svg.firstChild);
      f.svg.appendChild(WS.svg('line', { class: 'finding-line', x1: xt, x2: xt, y1: C.t, y2: C.h - C.b,
        stroke: WS.col('finding'), 'stroke-width': 1.5, 'stroke-dasharray': '4 3' }));
      f.svg.appendChild(WS.svg('text', { class: 'finding-label', x: Math.min(xt + 4, C.w - 120), y: C.t + 12 },
        'idle timeout ≈ ' + WS.dur(t)));
      this.idleFindings.push(t);
      notes.push({ text: 'idle_timeout (' + Math.round(fi.confidence * 100) + ' % sure): ' + fi.evidence, finding: true });
    }
    this.idleCard = WS.plotCard('plot-idle', title, f.svg, notes);
    this.grid.replaceChildren(...this.timeCards, this.idleCard);
  }
};
