// The panel of one connection: how it ended, the handshake (request and response heads), ping
// round trips, TCP facts and frame counts, its diagnostics, and the message log laid out like a
// browser's WebSocket inspector (direction, opcode, sizes, payload preview; a row opens the
// whole payload as text or a hex dump).

WS.kv = function (pairs) {
  return WS.el('table', { class: 'kv' }, ...pairs.filter((p) => p && p[1] !== undefined && p[1] !== null && p[1] !== '')
    .map(([k, v]) => WS.el('tr', {}, WS.el('th', { text: k }), WS.el('td', {}, v))));
};

WS.card = function (title, ...children) {
  return WS.el('div', { class: 'card' }, WS.el('h2', { text: title }), ...children);
};

WS.Panel = {
  /** Replaces `container`'s content with the panel of connection `c`. */
  render(container, c) {
    const cl = c.close, h = c.handshake;
    const head = WS.el('div', { class: 'head' },
      WS.el('h2', { text: 'Connection #' + c.id }),
      WS.el('span', { class: 'badge o-' + cl.outcome, text: cl.outcome }),
      cl.code !== null ? WS.el('strong', { text: String(cl.code) }) : null,
      WS.el('span', { class: 'mono', text: WS.endpoints(c) }),
      WS.el('span', { class: 'mono dim', text: WS.target(c) }),
      WS.el('span', { class: 'dim', text: WS.clock(c.first_seen, 6) + ' UTC, ' + WS.dur(c.last_seen - c.first_seen) }));
    const summary = WS.el('p', { text: cl.summary });
    const cols = WS.el('div', { class: 'cols' },
      this.ending(c), this.handshake(h), this.ping(c), this.tcp(c));
    const diags = this.diagnostics(c);
    const log = this.messages(c);
    container.replaceChildren(WS.el('div', { class: 'card panel', id: 'panel-' + c.id, 'data-connection': c.id },
      head, summary, cols, diags, log));
  },

  ending(c) {
    const cl = c.close;
    return WS.card('How it ended', WS.kv([
      ['close code', cl.code !== null ? cl.code + (cl.outcome === 'abnormal' ? ' (inferred: no Close frame)' : '') : 'none'],
      ['meaning', cl.meaning],
      ['reason', cl.reason],
      ['first Close from', cl.initiator],
      ['answered with', cl.reply_code],
      ['Close at', cl.time !== null ? WS.clock(cl.time, 6) : null],
      ['TCP end', cl.tcp_end ? cl.tcp_end.toUpperCase() + ' from ' + cl.tcp_end_from + ' at ' + WS.clock(cl.tcp_end_time, 6) : 'still open'],
      ['silence before the end', cl.idle_before_end !== null ? WS.dur(cl.idle_before_end) : null],
      ['last message', cl.last_message],
    ]));
  },

  headers(list) {
    if (!list || !list.length) return WS.el('p', { class: 'dim', text: 'no headers captured' });
    return WS.el('table', { class: 'heads' }, ...list.map((x) =>
      WS.el('tr', {}, WS.el('td', { text: x.name + ':' }), WS.el('td', { text: x.value }))));
  },

  handshake(h) {
    if (!h) return WS.card('Handshake', WS.el('p', { class: 'dim', text: 'Not captured: the capture starts after the upgrade; frames were found by resynchronising.' }));
    const checks = [];
    if (h.accept_valid === false) checks.push(WS.el('p', { class: 'warn', text: 'Sec-WebSocket-Accept does not match the key.' }));
    const latency = h.response_time !== null && h.request_time !== null ? WS.dur(h.response_time - h.request_time) : null;
    return WS.card('Handshake',
      WS.el('pre', { text: (h.method || 'GET') + ' ' + h.path + ' ' + (h.http_version || '') }),
      this.headers(h.request_headers),
      WS.el('pre', { text: h.status !== null ? (h.response_http_version || '') + ' ' + h.status + ' ' + (h.reason || '') : '(no answer captured)' }),
      this.headers(h.response_headers),
      ...checks,
      WS.kv([
        ['answered after', latency],
        ['subprotocol', h.subprotocol || (h.offered_subprotocols.length ? 'none of ' + h.offered_subprotocols.join(', ') : null)],
        ['extensions', h.extensions || (h.offered_extensions ? 'offered: ' + h.offered_extensions : null)],
        ['accept key', h.accept_valid === null ? 'not checked' : h.accept_valid ? 'valid' : 'MISMATCH'],
      ]));
  },

  ping(c) {
    const p = c.ping;
    const samples = p.rtt_samples || [];
    let chart = null;
    if (samples.length > 1) {
      const a = samples[0].time, b = samples[samples.length - 1].time;
      let max = 0;
      for (const s of samples) max = Math.max(max, s.rtt_ms);
      const f = WS.frame({ title: 'round trips', x: [a, Math.max(b, a + 1e-3)], y: [0, max * 1.1 || 1], xTime: true, yLabel: 'ms' });
      const d = samples.map((s, i) => (i ? 'L' : 'M') + f.x(s.time).toFixed(1) + ' ' + f.y(s.rtt_ms).toFixed(1)).join('');
      f.svg.appendChild(WS.svg('path', { d, fill: 'none', stroke: WS.col('accent'), 'stroke-width': 1.5 }));
      chart = WS.el('div', { class: 'plot', id: 'panel-rtt' }, f.svg);
    }
    return WS.card('Ping / pong', WS.kv([
      ['pings', p.client_pings + ' from the client, ' + p.server_pings + ' from the server'],
      ['answered', p.answered],
      ['unanswered', p.unanswered],
      ['unsolicited pongs', p.unsolicited_pongs],
      ['round trip', p.rtt_median_ms !== null ? 'min ' + p.rtt_min_ms + ' · median ' + p.rtt_median_ms + ' · max ' + p.rtt_max_ms + ' ms' : null],
    ]), chart);
  },

  tcp(c) {
    const t = c.tcp;
    const ops = ['text', 'binary', 'continuation', 'close', 'ping', 'pong', 'other'];
    const frames = WS.el('table', { class: 'grid' },
      WS.el('tr', {}, WS.el('th', { text: 'frames' }), ...ops.map((o) => WS.el('th', { text: o }))),
      ...['client', 'server'].map((s) => WS.el('tr', {}, WS.el('td', { text: s }), ...ops.map((o) => WS.el('td', { text: String(c.frames[s][o]) })))));
    return WS.card('TCP and frames', WS.kv([
      ['SYN captured', t.syn_seen ? 'yes' : 'no (mid-connection start)'],
      ['gaps', t.gaps ? t.gaps + ' (' + WS.bytes(t.gap_bytes) + ' missing)' : '0'],
      ['retransmissions', t.retransmissions],
      ['out of order', t.out_of_order],
      ['HTTP/2 stream', c.http2 ? c.http2.stream_id + (c.http2.end ? ', ended by ' + c.http2.end + (c.http2.end_from ? ' from the ' + c.http2.end_from : '') : '') : null],
      ['messages', c.message_counts.client + ' from the client (' + WS.bytes(c.payload_bytes.client) + '), ' +
        c.message_counts.server + ' from the server (' + WS.bytes(c.payload_bytes.server) + ')'],
    ]), frames);
  },

  diagnostics(c) {
    const list = c.diagnostics;
    const total = Object.values(c.diagnostic_counts).reduce((s, x) => s + x, 0);
    const body = list.length
      ? WS.el('table', { class: 'diag' },
        WS.el('tr', {}, ...['severity', 'id', 'time', 'from', 'what'].map((x) => WS.el('th', { text: x }))),
        ...list.map((d) => WS.el('tr', {},
          WS.el('td', {}, WS.el('span', { class: 'badge s-' + d.severity, text: d.severity })),
          WS.el('td', {}, WS.el('code', { text: d.id })),
          WS.el('td', { class: 'mono', text: d.time !== null ? WS.clock(d.time, 6) : '' }),
          WS.el('td', { text: d.from || '' }),
          WS.el('td', { text: d.message }))))
      : WS.el('p', { class: 'ok', text: 'No diagnostics.' });
    return WS.el('details', { open: true, id: 'panel-diagnostics' },
      WS.el('summary', { text: 'Diagnostics (' + total + (total > list.length ? ', ' + list.length + ' listed' : '') + ')' }), body);
  },

  messages(c) {
    const all = c.messages || [];
    const total = c.message_counts.client + c.message_counts.server;
    const controls = ['client', 'server'].reduce((s, k) => s + c.frames[k].close + c.frames[k].ping + c.frames[k].pong, 0);
    const state = { query: '', control: true, hex: false, shown: 300 };
    const table = WS.el('table', { class: 'log', id: 'panel-log' });
    const wrap = WS.el('div', { class: 'log-wrap' }, table);
    const more = WS.el('button', { type: 'button', class: 'more', onclick: () => { state.shown += 2000; fill(); } });
    const countEl = WS.el('span', { class: 'dim' });
    const t0 = c.first_seen;
    const preview = (m) => {
      if (typeof m.text === 'string') return m.text;
      if (typeof m.base64 === 'string') return state.hex ? WS.hexdump(WS.payloadBytes(m), 32).split('\n')[0] : m.base64;
      return '';
    };
    const fill = () => {
      const q = state.query;
      const rows = [];
      let matched = 0;
      for (let i = 0; i < all.length; i++) {
        const m = all[i];
        const control = m.opcode !== 'text' && m.opcode !== 'binary';
        if (control && !state.control) continue;
        if (q && preview(m).toLowerCase().indexOf(q) < 0 && m.opcode.indexOf(q) < 0) continue;
        matched++;
        if (rows.length >= state.shown) continue;
        const size = m.length === null ? '? (' + m.wire_length + ' on the wire)'
          : String(m.length) + (m.wire_length !== m.length ? ' / ' + m.wire_length : '');
        const flags = [];
        if (m.compressed) flags.push('deflate');
        if (m.fragments > 1) flags.push(m.fragments + ' frames');
        if (m.truncated) flags.push('cut');
        if (m.inflate_error) flags.push('inflate failed');
        if (m.inflated_after_gap) flags.push('inflated after gap');
        const data = (m.opcode === 'close' && m.close_code !== undefined ? m.close_code + ' ' : '') + preview(m);
        const tr = WS.el('tr', { class: m.from + (control ? ' control' : '') + (m.opcode === 'close' ? ' close' : '') + (m.complete ? '' : ' incomplete'),
          title: WS.clock(m.time, 6) + ' UTC' },
          WS.el('td', { class: 'dim', text: String(i) }),
          WS.el('td', { text: '+' + WS.dur(m.time - t0) }),
          WS.el('td', { class: 'dir', text: m.from === 'client' ? '↑' : '↓' }),
          WS.el('td', { text: m.opcode }),
          WS.el('td', { text: size }, ...flags.map((f) => WS.el('span', { class: 'tag', text: f }))),
          WS.el('td', { class: 'data', text: data.length > 300 ? data.slice(0, 300) + '…' : data }));
        tr.addEventListener('click', () => {
          const next = tr.nextSibling;
          if (next && next.classList && next.classList.contains('open-row')) { next.remove(); return; }
          const bytes = WS.payloadBytes(m);
          const text = typeof m.text === 'string' && !state.hex ? m.text : WS.hexdump(bytes, 65536);
          tr.after(WS.el('tr', { class: 'open-row' }, WS.el('td', { colspan: '6' },
            WS.el('pre', { text: text + (m.truncated ? '\n(payload cut: --payload full keeps it all, up to --max-message-bytes)' : '') }))));
        });
        rows.push(tr);
      }
      table.replaceChildren(WS.el('tr', {}, ...['#', 'time', '', 'opcode', 'length', 'data'].map((x) => WS.el('th', { text: x }))), ...rows);
      countEl.textContent = Math.min(matched, state.shown) + ' shown' + (q || !state.control ? ', ' + matched + ' match' : '') + ', of ' + all.length + ' listed';
      more.textContent = 'show more (' + Math.max(0, matched - state.shown) + ' left)';
      more.style.display = matched > state.shown ? '' : 'none';
    };
    const filter = WS.el('input', { type: 'search', placeholder: 'filter payloads…', 'aria-label': 'filter messages' });
    filter.addEventListener('input', WS.debounce(() => { state.query = filter.value.toLowerCase(); state.shown = 300; fill(); }, 120));
    const tools = WS.el('div', { class: 'toolbar' }, filter,
      WS.el('label', {}, WS.el('input', { type: 'checkbox', checked: true, onchange: (e) => { state.control = e.target.checked; fill(); } }), 'control frames'),
      WS.el('label', {}, WS.el('input', { type: 'checkbox', onchange: (e) => { state.hex = e.target.checked; fill(); } }), 'hex'),
      countEl);
    fill();
    const unlisted = total + controls - all.length;
    const note = all.length ? null : WS.el('p', { class: 'dim',
      text: c.messages ? 'No messages.' : 'Messages are not listed in this report.' });
    if (!all.length) wrap.style.display = 'none';
    return WS.el('details', { open: true, id: 'panel-messages' },
      WS.el('summary', { text: 'Messages (' + all.length + ' listed' + (unlisted > 0 ? ', ' + unlisted + ' more counted' : '') + ')' }),
      tools, note, wrap, more);
  },
};
