// The timeline: one bar per connection from its first to its last packet, coloured by outcome,
// with marks for the handshake, Close frames (with codes), unanswered pings, TCP gaps, protocol
// errors, the time a peer went silent and the end (FIN or RST, and who sent it); findings
// across connections as bands at their instant (a restart, a shutdown) and a stripe on the rows
// they cover, with a filter to show one finding's connections. Drawn on a canvas, only the rows
// in view (a tall spacer gives the scrollbar), so 10,000 connections cost what the visible
// ones cost.

/** The timeline's rows and marks, from the report's connections. */
WS.buildRows = function (report) {
  const rows = [];
  const conns = report.connections;
  for (let i = 0; i < conns.length; i++) {
    const c = conns[i];
    const h = c.handshake;
    const marks = [];
    if (h) {
      if (h.response_time !== null && h.response_time !== undefined) {
        marks.push({ t: h.response_time, kind: 'handshake', side: 'server',
          text: 'handshake: ' + (h.status || '') + ' ' + (h.reason || '') +
            (h.accept_valid === false ? ' (Sec-WebSocket-Accept mismatch)' : '') });
      } else if (h.request_time !== null && h.request_time !== undefined) {
        marks.push({ t: h.request_time, kind: 'handshake', side: 'client', text: 'upgrade request, no answer captured' });
      }
    }
    let closes = 0;
    if (c.messages) {
      for (const m of c.messages) {
        if (m.opcode !== 'close') continue;
        closes++;
        const reason = m.text ? ' "' + m.text + '"' : '';
        marks.push({ t: m.time, kind: 'close', side: m.from, code: m.close_code,
          text: 'Close ' + (m.close_code === undefined ? '' : m.close_code) + reason + ' from ' + m.from });
      }
    }
    const cl = c.close;
    if (!closes && cl.time !== null && cl.time !== undefined && cl.outcome !== 'abnormal') {
      marks.push({ t: cl.time, kind: 'close', side: cl.initiator, code: cl.code,
        text: 'Close ' + cl.code + (cl.reason ? ' "' + cl.reason + '"' : '') + ' from ' + cl.initiator });
    }
    for (const d of c.diagnostics) {
      if (d.time === null || d.time === undefined) continue;
      if (d.id === 'ping_unanswered') marks.push({ t: d.time, kind: 'ping', side: d.from, text: d.message });
      else if (d.id === 'tcp_gap') marks.push({ t: d.time, kind: 'gap', side: d.from, text: d.message });
      else if (d.severity === 'error' && d.id !== 'abnormal_closure') {
        marks.push({ t: d.time, kind: 'error', side: d.from, text: d.id + ': ' + d.message });
      }
    }
    const u = cl.unreachable;
    if (u) {
      marks.push({ t: u.since, t2: Math.max(u.since, c.last_seen), kind: 'unreachable', side: u.side,
        text: 'the ' + u.side + ' went silent: ' + u.retransmissions + ' retransmissions unacknowledged for ' + WS.dur(u.retransmitting_for) });
    }
    if (cl.tcp_end_time !== null && cl.tcp_end_time !== undefined) {
      marks.push({ t: cl.tcp_end_time, kind: 'end', side: cl.tcp_end_from, rst: cl.tcp_end === 'rst',
        text: (cl.tcp_end || '').toUpperCase() + ' from ' + cl.tcp_end_from +
          (cl.idle_before_end !== null && cl.idle_before_end !== undefined ? ' after ' + WS.dur(cl.idle_before_end) + ' idle' : '') });
    }
    marks.sort((a, b) => a.t - b.t);
    const server = (c.server.ip.indexOf(':') >= 0 ? '[' + c.server.ip + ']' : c.server.ip) + ':' + c.server.port;
    const label = '#' + c.id + ' ' + (h ? h.path : server) + ' ← ' + c.client.ip + ':' + c.client.port;
    const findings = WS.findingsOf.get(c.id) || [];
    const extra = [c.app ? c.app.protocol : '', c.tls ? 'tls ' + (c.tls.sni || '') : '', c.http2 || c.http2_connection ? 'http2' : '',
      ...findings.map((k) => report.findings[k].id)].join(' ');
    rows.push({
      c, i, start: c.first_seen, end: Math.max(c.last_seen, c.first_seen), outcome: cl.outcome, marks, label, findings,
      errors: c.diagnostics.some((d) => d.severity === 'error'),
      search: (label + ' ' + WS.endpoints(c) + ' ' + (h && h.host ? h.host : '') + ' ' + cl.outcome + ' ' + (cl.code || '') + ' ' +
        Object.keys(c.diagnostic_counts).join(' ') + ' ' + extra).toLowerCase(),
    });
  }
  return rows;
};

WS.SORTS = {
  start: { text: 'first packet', cmp: (a, b) => a.start - b.start || a.c.id - b.c.id },
  duration: { text: 'duration', cmp: (a, b) => (b.end - b.start) - (a.end - a.start) },
  outcome: { text: 'outcome (problems first)', cmp: (a, b) => WS.outcomeRank(a) - WS.outcomeRank(b) || a.start - b.start },
  idle: { text: 'idle before the end', cmp: (a, b) => (b.c.close.idle_before_end || -1) - (a.c.close.idle_before_end || -1) },
  server: { text: 'server', cmp: (a, b) => (a.c.server.ip + ':' + a.c.server.port).localeCompare(b.c.server.ip + ':' + b.c.server.port) || a.start - b.start },
  messages: { text: 'messages', cmp: (a, b) => (b.c.message_counts.client + b.c.message_counts.server) - (a.c.message_counts.client + a.c.message_counts.server) },
};
WS.outcomeRank = function (r) {
  return { abnormal: 0, incomplete: 1, not_websocket: 2, open: 3, clean: 4 }[r.outcome] ?? 5;
};

/** Findings that happened at an instant, as bands on the timeline: [{a, b, i, label}]. */
WS.findingBands = function (findings) {
  const bands = [];
  (findings || []).forEach((f, i) => {
    const p = f.parameters || {};
    if (f.id === 'server_restart' || f.id === 'mass_disconnect' || f.id === 'graceful_shutdown') {
      const a = typeof p.time === 'number' ? p.time : f.time;
      if (typeof a !== 'number') return;
      const label = f.id === 'graceful_shutdown' ? 'shutdown ' + (p.code || '') : f.id === 'server_restart' ? 'restart' : 'mass disconnect';
      bands.push({ a, b: a + (p.window_s || 0), i, label, text: f.id + ' at ' + WS.clock(a) + ': ' + f.evidence });
    } else if (f.id === 'peer_unreachable' && typeof p.since === 'number') {
      bands.push({ a: p.since, b: p.since, i, label: 'silent ' + (p.side || ''), text: f.id + ' since ' + WS.clock(p.since) + ': ' + f.evidence });
    } else if (f.id === 'heartbeat_timeout' && typeof p.since === 'number') {
      bands.push({ a: p.since, b: p.since, i, label: 'pings unanswered', text: f.id + ' since ' + WS.clock(p.since) + ': ' + f.evidence });
    }
  });
  return bands;
};

WS.Timeline = class {
  constructor(container, rows, options) {
    this.rows = rows;
    this.findings = options.findings || [];
    this.bands = WS.findingBands(this.findings);
    this.finding = null;
    this.onSelect = options.onSelect || (() => {});
    this.onView = options.onView || (() => {});
    this.gutter = 200;
    this.rightPad = 16;
    this.density = rows.length > 400 ? 'compact' : 'comfortable';
    this.sort = 'start';
    this.outcomes = new Set(WS.OUTCOMES);
    this.query = '';
    this.onlyProblems = false;
    this.selected = -1;
    this.hover = -1;
    let lo = Infinity, hi = -Infinity;
    for (const r of rows) { lo = Math.min(lo, r.start); hi = Math.max(hi, r.end); }
    if (!isFinite(lo)) { lo = 0; hi = 1; }
    if (hi - lo < 1e-3) { lo -= 0.5; hi += 0.5; }
    const pad = (hi - lo) * 0.01;
    this.full = [lo - pad, hi + pad];
    this.view = this.full.slice();
    this.build(container);
    this.applyFilter();
    const redraw = WS.throttle(() => this.draw());
    this.redraw = redraw;
    window.addEventListener('resize', WS.debounce(() => this.layout(), 100));
    this.layout();
  }

  build(container) {
    const sortSel = WS.el('select', { 'aria-label': 'sort rows by', onchange: (e) => { this.sort = e.target.value; this.applyFilter(); } },
      ...Object.keys(WS.SORTS).map((k) => WS.el('option', { value: k, text: WS.SORTS[k].text })));
    const densSel = WS.el('select', { 'aria-label': 'row height', onchange: (e) => { this.density = e.target.value; this.layout(); } },
      WS.el('option', { value: 'comfortable', text: 'rows: comfortable' }),
      WS.el('option', { value: 'compact', text: 'rows: compact' }),
      WS.el('option', { value: 'fit', text: 'rows: fit all' }));
    densSel.value = this.density;
    const legend = WS.OUTCOMES.map((o) => {
      const n = this.rows.filter((r) => r.outcome === o).length;
      if (!n) return null;
      const box = WS.el('input', { type: 'checkbox', checked: true, onchange: (e) => {
        if (e.target.checked) this.outcomes.add(o); else this.outcomes.delete(o);
        this.applyFilter();
      } });
      return WS.el('label', { title: WS.OUTCOME_TEXT[o] }, box, WS.el('span', { class: 'swatch o-' + o }), o + ' ' + n);
    });
    const search = WS.el('input', { type: 'search', placeholder: 'filter: ip, port, path, code, diagnostic…', 'aria-label': 'filter connections',
      oninput: WS.debounce(() => { this.query = search.value.trim().toLowerCase(); this.applyFilter(); }, 120) });
    const problems = WS.el('label', { title: 'only connections with an error diagnostic or an abnormal/incomplete end' },
      WS.el('input', { type: 'checkbox', onchange: (e) => { this.onlyProblems = e.target.checked; this.applyFilter(); } }), 'problems only');
    this.countEl = WS.el('span', { class: 'dim' });
    this.findingSel = this.findings.length ? WS.el('select', { 'aria-label': 'only the connections of a finding', id: 'timeline-finding',
      onchange: (e) => this.showFinding(e.target.value === '' ? null : Number(e.target.value)) },
      WS.el('option', { value: '', text: 'all connections' }),
      ...this.findings.map((f, i) => WS.el('option', { value: String(i), text: 'finding: ' + f.id + ' (' + f.connections.length + ')' }))) : null;
    const toolbar = WS.el('div', { class: 'toolbar' },
      WS.el('button', { type: 'button', title: 'zoom in (+)', onclick: () => this.zoom(0.5) }, '+'),
      WS.el('button', { type: 'button', title: 'zoom out (−)', onclick: () => this.zoom(2) }, '–'),
      WS.el('button', { type: 'button', title: 'whole capture (0 or double-click)', onclick: () => this.setView(this.full[0], this.full[1]) }, 'fit'),
      sortSel, densSel, ...legend, problems, this.findingSel, search, this.countEl);
    this.overview = WS.el('canvas', { class: 'overview', 'aria-label': 'overview: drag to choose the time range' });
    this.axis = WS.el('canvas', { class: 'axis', 'aria-label': 'time axis: wheel to zoom, drag to pan' });
    this.canvas = WS.el('canvas', { class: 'rows', id: 'timeline-canvas', role: 'img',
      'aria-label': 'one bar per connection from its first to its last packet' });
    this.spacer = WS.el('div');
    this.scroller = WS.el('div', { class: 'scroller' }, this.canvas, this.spacer);
    this.box = WS.el('div', { class: 'tl', tabindex: '0' }, this.overview, this.axis, this.scroller);
    this.tip = WS.el('div', { class: 'tip', role: 'tooltip' });
    const help = WS.el('p', { class: 'legend-help' },
      'Drag to pan · Ctrl/⌘/Shift + wheel, or the wheel over the time axis, to zoom · drag on the overview to pick a range · ' +
      'double-click or 0 to fit · click a bar for its details (j/k: next/previous). Marks: ▏handshake answer, ▼ Close (code; blue client, ' +
      'purple server), ○ unanswered ping, ▮ TCP gap, ◆ protocol error, ▁ a peer gone silent (retransmissions unacknowledged), ┃ end of TCP (red: RST) ' +
      'with who ended it. Shaded bands: findings at an instant (restart, shutdown, a peer gone silent); a stripe left of a row: the connection is part of a finding.');
    container.append(toolbar, this.box, help);
    document.body.appendChild(this.tip);
    this.bindEvents();
  }

  /** Shows only the connections of finding `i` (null: all), and zooms to them. */
  showFinding(i) {
    const f = i === null || i === undefined ? null : this.findings[i];
    this.finding = f ? new Set(f.connections) : null;
    if (this.findingSel) this.findingSel.value = f ? String(i) : '';
    this.applyFilter();
    if (f && this.visible.length) {
      let lo = Infinity, hi = -Infinity;
      for (const r of this.visible) { lo = Math.min(lo, r.start); hi = Math.max(hi, r.end); }
      const pad = Math.max((hi - lo) * 0.05, 1e-3);
      this.setView(lo - pad, hi + pad);
    }
  }

  applyFilter() {
    const q = this.query;
    this.visible = this.rows.filter((r) => this.outcomes.has(r.outcome) &&
      (!q || r.search.indexOf(q) >= 0) &&
      (!this.finding || this.finding.has(r.c.id)) &&
      (!this.onlyProblems || r.errors || r.outcome === 'abnormal' || r.outcome === 'incomplete'));
    this.visible.sort(WS.SORTS[this.sort].cmp);
    this.countEl.textContent = this.visible.length === this.rows.length
      ? this.rows.length + ' connections' : this.visible.length + ' of ' + this.rows.length + ' connections';
    this.layout();
  }

  layout() {
    const n = this.visible.length;
    const viewport = Math.min(640, Math.max(160, window.innerHeight * 0.62));
    if (this.density === 'fit') {
      this.rowH = n ? Math.min(18, viewport / n) : 18;
      this.height = n ? Math.max(60, Math.min(viewport, n * this.rowH)) : 60;
    } else {
      this.rowH = this.density === 'compact' ? 7 : 18;
      this.height = Math.max(60, Math.min(viewport, n * this.rowH));
    }
    this.scroller.style.height = this.height + 'px';
    this.spacer.style.height = Math.max(0, n * this.rowH - this.height) + 'px';
    const dpr = window.devicePixelRatio || 1;
    this.width = Math.max(300, this.box.clientWidth);
    for (const [c, h] of [[this.overview, 44], [this.axis, 26], [this.canvas, this.height]]) {
      c.width = Math.round(this.width * dpr);
      c.height = Math.round(h * dpr);
      c.style.height = h + 'px';
      c.getContext('2d').setTransform(dpr, 0, 0, dpr, 0, 0);
    }
    this.canvas.dataset.bars = String(this.rows.length);
    let sum = 0;
    for (const r of this.rows) sum += r.c.id;
    this.canvas.dataset.barIdSum = String(sum);
    this.draw();
  }

  x(t) {
    return this.gutter + ((t - this.view[0]) / (this.view[1] - this.view[0])) * (this.width - this.gutter - this.rightPad);
  }
  t(x) {
    return this.view[0] + ((x - this.gutter) / (this.width - this.gutter - this.rightPad)) * (this.view[1] - this.view[0]);
  }

  setView(a, b) {
    const minSpan = 1e-6;
    const fullSpan = (this.full[1] - this.full[0]) * 4;
    let span = Math.min(Math.max(b - a, minSpan), fullSpan);
    const mid = (a + b) / 2;
    this.view = [mid - span / 2, mid + span / 2];
    this.draw();
    this.onView(this.view);
  }
  zoom(factor, atX) {
    const x = atX === undefined ? (this.gutter + this.width - this.rightPad) / 2 : atX;
    const t = this.t(Math.max(this.gutter, x));
    const a = t - (t - this.view[0]) * factor, b = t + (this.view[1] - t) * factor;
    this.setView(a, b);
  }
  pan(dx) {
    const dt = (dx / (this.width - this.gutter - this.rightPad)) * (this.view[1] - this.view[0]);
    this.setView(this.view[0] - dt, this.view[1] - dt);
  }

  rowAt(y) {
    const i = Math.floor((y + this.scroller.scrollTop) / this.rowH);
    return i >= 0 && i < this.visible.length ? i : -1;
  }

  bindEvents() {
    this.scroller.addEventListener('scroll', () => this.redraw());
    let drag = null;
    const down = (e, area) => {
      drag = { x: e.clientX, view: this.view.slice(), moved: false, area };
      if (area === 'rows') this.canvas.classList.add('dragging');
    };
    this.canvas.addEventListener('mousedown', (e) => down(e, 'rows'));
    this.axis.addEventListener('mousedown', (e) => down(e, 'axis'));
    window.addEventListener('mousemove', (e) => {
      if (drag && drag.area !== 'overview') {
        const dx = e.clientX - drag.x;
        if (Math.abs(dx) > 3) drag.moved = true;
        if (drag.moved) {
          const span = drag.view[1] - drag.view[0];
          const dt = (dx / (this.width - this.gutter - this.rightPad)) * span;
          this.view = [drag.view[0] - dt, drag.view[1] - dt];
          this.redraw();
        }
      }
    });
    window.addEventListener('mouseup', (e) => {
      if (!drag) return;
      const d = drag;
      drag = null;
      this.canvas.classList.remove('dragging');
      if (d.area === 'overview') return;
      if (d.moved) { this.onView(this.view); return; }
      if (d.area === 'rows' && e.target === this.canvas) {
        const rect = this.canvas.getBoundingClientRect();
        const i = this.rowAt(e.clientY - rect.top);
        if (i >= 0) this.select(this.visible[i].c.id, true);
      }
    });
    const wheel = (e, always) => {
      if (!(always || e.ctrlKey || e.metaKey || e.shiftKey || e.altKey)) return;
      e.preventDefault();
      const rect = e.target.getBoundingClientRect();
      const delta = e.deltaY || e.deltaX;
      this.zoom(Math.pow(1.0015, delta), e.clientX - rect.left);
    };
    this.canvas.addEventListener('wheel', (e) => wheel(e, false), { passive: false });
    this.axis.addEventListener('wheel', (e) => wheel(e, true), { passive: false });
    this.overview.addEventListener('wheel', (e) => wheel(e, true), { passive: false });
    this.box.addEventListener('dblclick', () => this.setView(this.full[0], this.full[1]));
    this.canvas.addEventListener('mousemove', (e) => this.hoverAt(e));
    this.canvas.addEventListener('mouseleave', () => { this.hover = -1; this.tip.style.display = 'none'; this.redraw(); });
    // The overview: drag to choose a range, click to centre the view there.
    let brush = null;
    this.overview.addEventListener('mousedown', (e) => {
      const rect = this.overview.getBoundingClientRect();
      brush = { x0: e.clientX - rect.left, x1: e.clientX - rect.left };
      drag = { area: 'overview' };
      e.preventDefault();
    });
    window.addEventListener('mousemove', (e) => {
      if (!brush) return;
      const rect = this.overview.getBoundingClientRect();
      brush.x1 = Math.min(Math.max(e.clientX - rect.left, this.gutter), this.width - this.rightPad);
      this.brush = brush;
      this.drawOverview();
    });
    window.addEventListener('mouseup', () => {
      if (!brush) return;
      const b = brush;
      brush = null;
      this.brush = null;
      const ft = (x) => this.full[0] + ((x - this.gutter) / (this.width - this.gutter - this.rightPad)) * (this.full[1] - this.full[0]);
      if (Math.abs(b.x1 - b.x0) > 3) this.setView(ft(Math.min(b.x0, b.x1)), ft(Math.max(b.x0, b.x1)));
      else {
        const t = ft(b.x0), half = (this.view[1] - this.view[0]) / 2;
        this.setView(t - half, t + half);
      }
    });
    this.box.addEventListener('keydown', (e) => {
      const k = e.key;
      if (k === '+' || k === '=') this.zoom(0.5);
      else if (k === '-' || k === '_') this.zoom(2);
      else if (k === '0') this.setView(this.full[0], this.full[1]);
      else if (k === 'ArrowLeft') this.pan(this.width / 6);
      else if (k === 'ArrowRight') this.pan(-this.width / 6);
      else if (k === 'j' || k === 'ArrowDown') this.step(1);
      else if (k === 'k' || k === 'ArrowUp') this.step(-1);
      else return;
      e.preventDefault();
    });
  }

  step(d) {
    if (!this.visible.length) return;
    let i = this.visible.findIndex((r) => r.c.id === this.selected);
    i = i < 0 ? 0 : Math.min(this.visible.length - 1, Math.max(0, i + d));
    this.select(this.visible[i].c.id, true);
  }

  /** Selects a connection by id; `notify` tells the page (which opens its panel). */
  select(id, notify) {
    this.selected = id;
    const i = this.visible.findIndex((r) => r.c.id === id);
    if (i >= 0) {
      const top = i * this.rowH, st = this.scroller.scrollTop;
      if (top < st || top + this.rowH > st + this.height) this.scroller.scrollTop = Math.max(0, top - this.height / 3);
    }
    this.redraw();
    if (notify) this.onSelect(id);
  }

  hoverAt(e) {
    const rect = this.canvas.getBoundingClientRect();
    const x = e.clientX - rect.left, y = e.clientY - rect.top;
    const i = this.rowAt(y);
    if (i !== this.hover) { this.hover = i; this.redraw(); }
    if (i < 0) { this.tip.style.display = 'none'; return; }
    const r = this.visible[i], c = r.c, cl = c.close;
    const lines = ['#' + c.id + ' ' + WS.endpoints(c) + ' ' + WS.target(c), cl.outcome + (cl.code ? ' · ' + cl.code : '') + ' · ' + cl.summary,
      'from ' + WS.clock(r.start) + ' for ' + WS.dur(r.end - r.start) + ' · ' +
      (c.message_counts.client + c.message_counts.server) + ' messages'];
    const near = r.marks.filter((m) => Math.abs(this.x(m.t) - x) <= 5);
    for (const m of near.slice(0, 6)) lines.push('• ' + WS.clock(m.t) + ' ' + m.text);
    for (const k of r.findings.slice(0, 3)) {
      const f = this.findings[k];
      lines.push('◆ part of ' + f.id + ' (' + Math.round(f.confidence * 100) + ' % sure)');
    }
    for (const b of this.bands) {
      if (Math.abs(this.x(b.a) - x) <= 5 || (x >= this.x(b.a) && x <= this.x(b.b))) lines.push('▒ ' + b.text.slice(0, 200));
    }
    this.tip.textContent = lines.join('\n');
    this.tip.style.display = 'block';
    const tx = Math.min(e.clientX + 14, window.innerWidth - 470);
    this.tip.style.left = Math.max(4, tx) + 'px';
    this.tip.style.top = (e.clientY + 16) + 'px';
  }

  draw() {
    const began = performance.now();
    this.drawOverview();
    this.drawAxis();
    const g = this.canvas.getContext('2d');
    const W = this.width, H = this.height, rh = this.rowH;
    g.clearRect(0, 0, W, H);
    const col = {};
    for (const o of WS.OUTCOMES) col[o] = WS.col(o);
    const mark = WS.col('mark'), grid = WS.col('grid'), fg = WS.col('fg'), dim = WS.col('dim');
    const sideCol = { client: WS.col('client'), server: WS.col('server') };
    const warn = WS.col('warn'), err = WS.col('error'), gap = WS.col('gap');
    const hoverBg = WS.col('hover'), selBg = WS.col('select');
    // vertical grid from the axis ticks
    g.fillStyle = grid;
    for (const t of this.ticks) g.fillRect(Math.round(this.x(t)), 0, 1, H);
    // findings at an instant, across every row
    const bandCol = WS.col('band'), findingCol = WS.col('finding');
    g.fillStyle = bandCol;
    for (const b of this.bands) {
      const a = this.x(b.a), w = Math.max(3, this.x(b.b) - a);
      if (a + w >= this.gutter && a <= W - this.rightPad) g.fillRect(Math.max(this.gutter, a - 1), 0, w, H);
    }
    const first = Math.max(0, Math.floor(this.scroller.scrollTop / rh));
    const last = Math.min(this.visible.length, Math.ceil((this.scroller.scrollTop + H) / rh) + 1);
    const x0 = this.gutter, x1 = W - this.rightPad;
    const labels = rh >= 10, marksOn = rh >= 6;
    g.font = Math.min(12, rh - 5) + 'px system-ui, sans-serif';
    g.textBaseline = 'middle';
    let drawn = 0;
    // Without marks (dense rows), bars are batched into one path per colour: a canvas state
    // change per bar would cost more than the bars.
    const batch = marksOn ? null : {};
    for (let i = first; i < last; i++) {
      const r = this.visible[i];
      const y = i * rh - this.scroller.scrollTop;
      if (r.c.id === this.selected) { g.fillStyle = selBg; g.fillRect(0, y, W, Math.max(1, rh)); }
      else if (i === this.hover) { g.fillStyle = hoverBg; g.fillRect(0, y, W, Math.max(1, rh)); }
      const bh = rh >= 4 ? Math.max(2, rh - (rh >= 10 ? 6 : 2)) : Math.max(0.6, rh);
      const by = y + (rh - bh) / 2;
      let a = this.x(r.start), b = this.x(r.end);
      if (b >= x0 && a <= x1) {
        a = Math.max(a, x0 - 2); b = Math.min(b, x1 + 2);
        if (batch) {
          const p = batch[r.outcome] || (batch[r.outcome] = new Path2D());
          p.rect(a, by, Math.max(2, b - a), bh);
        } else {
          g.fillStyle = col[r.outcome] || dim;
          g.fillRect(a, by, Math.max(2, b - a), bh);
        }
        drawn++;
      }
      if (r.findings.length) { g.fillStyle = findingCol; g.fillRect(0, y + (rh >= 4 ? 1 : 0), 3, Math.max(1, rh - (rh >= 4 ? 2 : 0))); }
      if (labels) {
        g.fillStyle = r.c.id === this.selected ? fg : dim;
        g.save();
        g.beginPath(); g.rect(0, y, x0 - 6, rh); g.clip();
        g.fillText(r.label, 6, y + rh / 2);
        g.restore();
      }
      if (!marksOn) continue;
      const mid = y + rh / 2;
      let lastTextEnd = -Infinity;
      for (const m of r.marks) {
        const mx = this.x(m.t);
        if (mx < x0 - 4 || mx > x1 + 4) continue;
        if (m.kind === 'handshake') {
          g.fillStyle = mark; g.globalAlpha = 0.75; g.fillRect(mx - 0.5, by - 1, 1.5, bh + 2); g.globalAlpha = 1;
        } else if (m.kind === 'unreachable') {
          const b2 = Math.min(this.x(m.t2), x1);
          g.fillStyle = warn;
          g.fillRect(mx, by + bh - 1, Math.max(2, b2 - mx), Math.max(1.5, Math.min(3, bh / 3)));
        } else if (m.kind === 'gap') {
          g.fillStyle = gap; g.fillRect(mx - 1.5, by - 1, 3, bh + 2);
        } else if (m.kind === 'ping') {
          g.strokeStyle = warn; g.lineWidth = 1.5;
          g.beginPath(); g.arc(mx, mid, Math.max(2, Math.min(4, bh / 2)), 0, 2 * Math.PI); g.stroke();
        } else if (m.kind === 'error') {
          const s = Math.max(2.5, Math.min(4, bh / 2));
          g.fillStyle = err;
          g.beginPath(); g.moveTo(mx, mid - s); g.lineTo(mx + s, mid); g.lineTo(mx, mid + s); g.lineTo(mx - s, mid); g.fill();
        } else if (m.kind === 'close') {
          const s = Math.max(3, Math.min(5, rh / 3));
          g.fillStyle = sideCol[m.side] || mark;
          g.beginPath(); g.moveTo(mx - s, by - 1); g.lineTo(mx + s, by - 1); g.lineTo(mx, by + s * 1.4); g.fill();
          if (labels && m.code !== undefined && m.code !== null && mx + 8 > lastTextEnd) {
            const text = String(m.code);
            g.fillStyle = fg;
            g.fillText(text, mx + s + 2, mid);
            lastTextEnd = mx + s + 4 + g.measureText(text).width;
          }
        } else if (m.kind === 'end') {
          g.fillStyle = m.rst ? err : mark;
          g.fillRect(mx - 1, y + 1, 2.5, Math.max(1, rh - 2));
          if (labels && mx + 6 > lastTextEnd) {
            const text = (m.rst ? 'RST ' : 'FIN ') + (m.side === 'client' ? 'client' : m.side === 'server' ? 'server' : '');
            const w = g.measureText(text).width;
            g.fillStyle = m.rst ? err : dim;
            // At the right edge the label goes before the mark.
            g.fillText(text, mx + 4 + w > W ? mx - 4 - w : mx + 4, mid);
            lastTextEnd = mx + 6 + w;
          }
        }
      }
    }
    if (batch) {
      for (const o of Object.keys(batch)) { g.fillStyle = col[o] || dim; g.fill(batch[o]); }
    }
    // the gutter's edge
    g.fillStyle = grid;
    g.fillRect(x0 - 3, 0, 1, H);
    const ms = performance.now() - began;
    this.canvas.dataset.visibleBars = String(drawn);
    this.canvas.dataset.drawMs = ms.toFixed(2);
    this.lastDrawMs = ms;
  }

  drawAxis() {
    const g = this.axis.getContext('2d');
    const W = this.width;
    g.clearRect(0, 0, W, 26);
    const span = this.view[1] - this.view[0];
    const step = WS.timeStep(span, Math.max(2, (W - this.gutter) / 110));
    const first = Math.ceil(this.view[0] / step) * step;
    this.ticks = [];
    g.fillStyle = WS.col('dim');
    g.font = '11px system-ui, sans-serif';
    g.textBaseline = 'middle';
    for (let t = first; t <= this.view[1] && this.ticks.length < 200; t += step) {
      const x = this.x(t);
      if (x < this.gutter || x > W - this.rightPad) continue;
      this.ticks.push(t);
      g.fillRect(Math.round(x), 18, 1, 8);
      const label = WS.tickLabel(t, step);
      const w = g.measureText(label).width;
      g.fillText(label, Math.min(x - w / 2, W - w - 2), 10);
    }
    // the findings' bands, labelled where they fit
    g.fillStyle = WS.col('finding');
    let lastEnd = -Infinity;
    for (const b of this.bands) {
      const x = this.x(b.a);
      if (x < this.gutter || x > W - this.rightPad) continue;
      g.fillRect(Math.round(x), 0, 2, 26);
      if (x > lastEnd) {
        const w = g.measureText(b.label).width;
        g.fillText(b.label, Math.min(x + 4, W - w - 2), 22);
        lastEnd = x + w + 8;
      }
    }
    g.fillStyle = WS.col('fg');
    g.fillText(WS.date(this.view[0]) + ' UTC', 4, 8);
    g.fillStyle = WS.col('dim');
    g.fillText('view ' + WS.dur(span), 4, 20);
  }

  drawOverview() {
    const g = this.overview.getContext('2d');
    const W = this.width, H = 44, x0 = this.gutter, x1 = W - this.rightPad;
    g.clearRect(0, 0, W, H);
    // Open connections over the whole capture, per pixel column, as a silhouette.
    const cols = Math.max(1, Math.floor(x1 - x0));
    if (!this.silhouette || this.silhouette.cols !== cols) {
      const open = new Float64Array(cols + 1), bad = new Float64Array(cols + 1);
      const span = this.full[1] - this.full[0];
      for (const r of this.rows) {
        const a = Math.max(0, Math.floor(((r.start - this.full[0]) / span) * cols));
        const b = Math.min(cols, Math.floor(((r.end - this.full[0]) / span) * cols) + 1);
        open[a] += 1; open[b] -= 1;
        if (r.outcome === 'abnormal' || r.outcome === 'incomplete') { bad[a] += 1; bad[b] -= 1; }
      }
      let run = 0, runBad = 0, max = 1;
      for (let i = 0; i <= cols; i++) { run += open[i]; runBad += bad[i]; open[i] = run; bad[i] = runBad; max = Math.max(max, run); }
      this.silhouette = { cols, open, bad, max };
    }
    const d = this.silhouette;
    g.fillStyle = WS.col('open');
    g.globalAlpha = 0.55;
    for (let i = 0; i < d.cols; i++) {
      const h = (d.open[i] / d.max) * (H - 6);
      if (h > 0) g.fillRect(x0 + i, H - h, 1, h);
    }
    g.fillStyle = WS.col('abnormal');
    for (let i = 0; i < d.cols; i++) {
      const h = (d.bad[i] / d.max) * (H - 6);
      if (h > 0) g.fillRect(x0 + i, H - h, 1, h);
    }
    g.globalAlpha = 1;
    const fx = (t) => x0 + ((t - this.full[0]) / (this.full[1] - this.full[0])) * (x1 - x0);
    g.fillStyle = WS.col('finding');
    for (const band of this.bands) g.fillRect(Math.round(fx(band.a)), 0, 2, H);
    const a = fx(this.view[0]), b = fx(this.view[1]);
    g.strokeStyle = WS.col('accent');
    g.lineWidth = 1.5;
    g.strokeRect(Math.max(x0, a), 1, Math.max(2, Math.min(x1, b) - Math.max(x0, a)), H - 2);
    if (this.brush) {
      g.fillStyle = WS.col('select');
      g.fillRect(Math.min(this.brush.x0, this.brush.x1), 0, Math.abs(this.brush.x1 - this.brush.x0), H);
    }
    g.fillStyle = WS.col('dim');
    g.font = '11px system-ui, sans-serif';
    g.textBaseline = 'middle';
    g.fillText('open connections', 4, 14);
    g.fillText('(red: ended badly)', 4, 30);
  }
};
