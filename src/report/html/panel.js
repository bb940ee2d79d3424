// The panel of one connection: the findings it is part of, how it ended and the timing of the
// end (idle times, last frames and pings, a peer gone silent), the handshake (request and
// response heads), TLS, the HTTP/2 stream, the application protocol's session, ping round
// trips, TCP facts and frame counts, its diagnostics, and the message log laid out like a
// browser's WebSocket inspector (direction, opcode, sizes, payload preview, the decoded
// application packets; a row opens the whole payload as text or a hex dump).

WS.kv = function (pairs) {
  return WS.el('table', { class: 'kv' }, ...pairs.filter((p) => p && p[1] !== undefined && p[1] !== null && p[1] !== '')
    .map(([k, v]) => WS.el('tr', {}, WS.el('th', { text: k }), WS.el('td', {}, v))));
};

WS.card = function (title, ...children) {
  return WS.el('div', { class: 'card' }, WS.el('h2', { text: title }), ...children);
};

WS.Panel = {
  /** Replaces `container`'s content with the panel of connection `c`. */
  render(container, c, findings) {
    const cl = c.close, h = c.handshake;
    const head = WS.el('div', { class: 'head' },
      WS.el('h2', { text: 'Connection #' + c.id }),
      WS.el('span', { class: 'badge o-' + cl.outcome, text: cl.outcome }),
      cl.code !== null ? WS.el('strong', { text: String(cl.code) }) : null,
      WS.el('span', { class: 'mono', text: WS.endpoints(c) }),
      WS.el('span', { class: 'mono dim', text: WS.target(c) }),
      WS.el('span', { class: 'dim', text: WS.clock(c.first_seen, 6) + ' UTC, ' + WS.dur(c.last_seen - c.first_seen) }));
    const summary = WS.el('p', { text: cl.summary });
    const part = this.findings(c, findings || []);
    const cols = WS.el('div', { class: 'cols' },
      this.ending(c), this.timing(c), this.handshake(h), this.tls(c), this.http2(c), this.app(c), this.ping(c), this.tcp(c));
    const diags = this.diagnostics(c);
    const log = this.messages(c);
    container.replaceChildren(WS.el('div', { class: 'card panel', id: 'panel-' + c.id, 'data-connection': c.id },
      head, summary, part, cols, diags, log));
  },

  /** The findings across connections that this one is part of. */
  findings(c, findings) {
    const mine = (WS.findingsOf && WS.findingsOf.get(c.id)) || [];
    if (!mine.length) return null;
    const link = (id) => WS.el('a', { href: '#conn-' + id, text: '#' + id });
    return WS.el('div', { class: 'card part', id: 'panel-findings' }, WS.el('h2', { text: 'Part of' }),
      ...mine.map((k) => {
        const f = findings[k];
        const others = f.connections.filter((id) => id !== c.id);
        const with_ = others.length && others.length <= 12
          ? WS.el('span', { class: 'dim' }, ' · with ', ...others.flatMap((id, i) => (i ? [' ', link(id)] : [link(id)])))
          : others.length ? WS.el('span', { class: 'dim', text: ' · with ' + others.length + ' other connections' }) : null;
        return WS.el('div', { class: 'finding' },
          WS.el('div', { class: 'fhead' }, WS.el('a', { href: '#finding-' + k }, WS.el('code', { class: 'fid', text: f.id })),
            WS.el('span', { class: 'conf', text: Math.round(f.confidence * 100) + ' % sure' }), with_),
          WS.el('p', { class: 'evidence', text: f.evidence }),
          WS.el('p', { class: 'advice' }, WS.el('strong', { text: 'What to do: ' }), f.advice));
      }));
  },

  timing(c) {
    const t = c.timing;
    if (!t) return null;
    const side = (p, f) => ['client', 'server'].filter((s) => p[s] !== null && p[s] !== undefined && p[s] !== 0)
      .map((s) => s + ' ' + f(p[s])).join(', ');
    const frame = (x) => x.opcode + ' ' + x.length + ' B at ' + WS.clock(x.time, 6);
    const u = c.close.unreachable;
    const d = c.tcp.delivery || {};
    const retrans = ['client', 'server'].filter((s) => d[s] && d[s].retransmissions)
      .map((s) => s + ' ' + d[s].retransmissions + (d[s].retransmissions_near_end ? ' (' + d[s].retransmissions_near_end + ' in the last 10 s)' : '')).join(', ');
    const unacked = ['client', 'server'].filter((s) => d[s] && d[s].unacked_bytes)
      .map((s) => s + ' ' + WS.bytes(d[s].unacked_bytes) + (d[s].unacked_since ? ' since ' + WS.clock(d[s].unacked_since, 6) : '')).join(', ');
    return WS.card('Timing of the end', WS.kv([
      ['end began', t.ended_by === 'none' ? 'still open when the capture ended' : t.ended_by === 'stopped' ? 'no longer followed (a limit)'
        : t.ended_by + (t.ended_from ? ' from the ' + t.ended_from : '') + ' at ' + WS.clock(t.end_time, 6)],
      ['age', WS.dur(t.age)],
      ['silence before', t.idle !== null ? WS.dur(t.idle) : null],
      ['since each side last sent', side(t.idle_by_side, WS.dur)],
      ['longest silence', t.longest_silence !== null ? WS.dur(t.longest_silence) : null],
      ['last frames', side(t.last_frame, frame)],
      ['since the last ping', side(t.since_last_ping, WS.dur)],
      ['ping interval', side(t.ping_interval, WS.dur)],
      ['pings unanswered at the end', side(t.unanswered_pings_at_end, String)],
      ['peer unreachable', u ? 'the ' + u.side + ' since ' + WS.clock(u.since, 6) + ': ' + u.retransmissions + ' retransmissions over ' +
        WS.dur(u.retransmitting_for) + ', ' + WS.bytes(u.unacked_bytes) + ' never acknowledged' : null],
      ['TCP retransmissions', retrans],
      ['unacknowledged at the end', unacked],
    ]));
  },

  tls(c) {
    const t = c.tls;
    if (!t) return null;
    const alerts = (t.alerts || []).map((a) => (a.description || (a.encrypted ? 'encrypted alert' + (a.likely_close_notify ? ' (close_notify size)' : '') : '?')) +
      ' from the ' + a.from + ' at ' + WS.clock(a.time, 6));
    const inf = t.inferred;
    const sides = (p) => ['client', 'server'].filter((s) => p[s]).join(' and ');
    return WS.card('TLS', WS.kv([
      ['version', t.version],
      ['cipher suite', t.cipher_suite],
      ['server name (SNI)', t.sni],
      ['ALPN', t.alpn ? t.alpn + (t.alpn_offered.length ? ' (offered ' + t.alpn_offered.join(', ') + ')' : '')
        : t.alpn_offered.length ? 'offered ' + t.alpn_offered.join(', ') : null],
      ['key exchange', t.key_share_group],
      ['resumed', t.resumed ? 'yes (' + t.resumption + ')' : 'no'],
      ['HelloRetryRequest', t.hello_retry_request ? 'yes' : null],
      ['ECH offered', t.ech_offered ? 'yes' : null],
      ['handshake complete', t.handshake_complete === null ? null : t.handshake_complete ? 'yes' : 'no'],
      ['decrypted', t.decrypted ? 'yes' + (t.keys_from ? ' (keys by ' + t.keys_from + ')' : '') : 'no' + (t.decrypt_error ? ': ' + t.decrypt_error : '')],
      ['undecrypted records', (t.undecrypted_records.client + t.undecrypted_records.server) || null],
      ['0-RTT', t.early_data && t.early_data.offered ? 'offered' + (t.early_data.accepted === true ? ', accepted' : t.early_data.accepted === false ? ', rejected' : '') : null],
      ['alerts', alerts.join('; ')],
      ['close_notify', sides(t.close_notify) || null],
      ['records', t.records.client + ' from the client (' + WS.bytes(t.bytes.client) + '), ' + t.records.server + ' from the server (' + WS.bytes(t.bytes.server) + ')'],
      ['inferred from sizes', inf ? [inf.handshake_complete === false ? 'handshake not completed' : null,
        sides(inf.close_frame) ? 'a Close-sized last record from the ' + sides(inf.close_frame) : null,
        sides(inf.close_notify) ? 'close_notify-sized from the ' + sides(inf.close_notify) : null].filter(Boolean).join('; ') || null : null],
    ]));
  },

  http2(c) {
    const s = c.http2;
    // The TCP connection under RFC 8441 streams: the HTTP/2 connection's facts and its streams.
    const carrier = !s && c.http2_connection;
    if (!s && !carrier) return null;
    const k = (s ? s.connection : c.http2_connection) || {};
    const g = k.goaway;
    const same = (a, b) => a.ip === b.ip && a.port === b.port;
    const streams = carrier ? ((WS.report && WS.report.connections) || [])
      .filter((x) => x.http2 && same(x.client, c.client) && same(x.server, c.server)) : [];
    const links = streams.length ? WS.el('span', {}, ...streams.flatMap((x, i) => [i ? ', ' : '',
      WS.el('a', { href: '#conn-' + x.id, text: '#' + x.id }), ' (stream ' + x.http2.stream_id + ')'])) : null;
    return WS.card(carrier ? 'HTTP/2 connection' : 'HTTP/2 stream', WS.kv([
      ['stream', s ? s.stream_id + (s.handshake_seen ? '' : ' (recognised from its DATA: the extended CONNECT was not captured)') : null],
      ['WebSocket streams', links],
      ['ended', s ? (s.end ? s.end + (s.end_from ? ' from the ' + s.end_from : '') + (s.end_time ? ' at ' + WS.clock(s.end_time, 6) : '') : 'open') : null],
      ['END_STREAM', s ? ['client', 'server'].filter((x) => s.end_stream[x]).join(', ') || null : null],
      ['ENABLE_CONNECT_PROTOCOL', k.enable_connect_protocol === null || k.enable_connect_protocol === undefined ? null : k.enable_connect_protocol ? 'yes' : 'no'],
      ['streams on the connection', (k.websocket_streams || 0) + ' WebSocket, ' + (k.other_streams || 0) + ' other'],
      ['other streams', (k.other || []).slice(0, 5).map((o) => (o.method || '') + ' ' + (o.path || '') + ' ' + (o.status || o.reset || '')).join('; ') || null],
      ['GOAWAY', g ? g.error + ' from the ' + g.from + ' at ' + WS.clock(g.time, 6) + ', last stream ' + g.last_stream_id + (g.debug ? ' "' + g.debug + '"' : '') : null],
      ['PINGs', k.pings ? k.pings.client + ' from the client, ' + k.pings.server + ' from the server' : null],
      ['header blocks', k.headers_unreadable ? 'some unreadable (HPACK state missing)' : null],
      ['decoding', k.decoding_stopped ? 'stopped on a protocol error' : null],
    ]));
  },

  app(c) {
    const a = c.app;
    if (!a) return null;
    const s = a.session || {};
    const hb = s.heartbeat, rq = s.requests, cl = s.close, hs = s.handshake;
    const ms = (v) => (v === null || v === undefined ? null : WS.dur(v / 1000));
    const counts = Object.entries(s.packet_counts || {}).map(([k, n]) => k + ' ' + n).join(', ');
    const packets = a.packets && a.packets.length ? WS.el('details', { class: 'packets' },
      WS.el('summary', { text: a.packets.length + ' packets' + (a.packets_not_listed ? ' (' + a.packets_not_listed + ' more not listed)' : '') }),
      WS.el('table', { class: 'grid' }, ...a.packets.slice(0, 500).map((p) => WS.el('tr', {},
        WS.el('td', { class: 'mono', text: p.time ? WS.clock(p.time, 6) : '' }),
        WS.el('td', { text: p.from === 'client' ? '↑' : p.from === 'server' ? '↓' : '' }),
        WS.el('td', { class: 'mono', text: p.summary }))))) : null;
    return WS.card('Application protocol', WS.kv([
      ['protocol', a.protocol + (a.version ? ' ' + a.version : '')],
      ['recognised by', a.recognised_by + (a.evidence ? ': ' + a.evidence : '')],
      ['note', a.note],
      ['session', s.summary],
      ['opening', hs ? (hs.ok ? 'accepted' : 'REFUSED') + ': ' + hs.detail : null],
      ['session id', s.session_id],
      ['heartbeat', hb ? hb.kind + (hb.interval_ms ? ' every ' + ms(hb.interval_ms) : '') + (hb.timeout_ms ? ', timeout ' + ms(hb.timeout_ms) : '') +
        ' · ' + hb.answered + ' answered, ' + hb.unanswered + ' unanswered' + (hb.rtt_median_ms != null ? ', median ' + ms(hb.rtt_median_ms) : '') : null],
      ['requests', rq ? rq.kind + ': ' + rq.sent + ' sent, ' + rq.answered + ' answered, ' + rq.errors + ' errors, ' + rq.unanswered + ' unanswered' +
        (rq.latency_median_ms != null ? ', median ' + ms(rq.latency_median_ms) : '') + (rq.pending && rq.pending.length ? ' (' + rq.pending.slice(0, 5).join('; ') + ')' : '') : null],
      ['close', cl ? (cl.from ? 'from the ' + cl.from + ': ' : '') + (cl.code !== null && cl.code !== undefined ? cl.code + ' ' : '') + cl.meaning + (cl.reason ? ' "' + cl.reason + '"' : '') : null],
      ['idle before the end', s.idle_before_end !== null && s.idle_before_end !== undefined ? WS.dur(s.idle_before_end) : null],
      ['packets', counts || null],
    ]), packets);
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
    // The application protocol's decode of each message, in a column of its own.
    const hasApp = !!c.app && all.some((m) => m.app);
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
        if (q && preview(m).toLowerCase().indexOf(q) < 0 && m.opcode.indexOf(q) < 0 &&
          !(m.app && m.app.summary.toLowerCase().indexOf(q) >= 0)) continue;
        matched++;
        if (rows.length >= state.shown) continue;
        const size = m.length === null ? '? (' + m.wire_length + ' on the wire)'
          : String(m.length) + (m.wire_length !== m.length ? ' / ' + m.wire_length : '');
        const flags = [];
        if (m.compressed) flags.push('deflate');
        if (m.fragments > 1) flags.push(m.fragments + ' frames');
        if (m.truncated) flags.push('cut');
        if (m.inflate_error) flags.push('inflate failed');
        const data = (m.opcode === 'close' && m.close_code !== undefined ? m.close_code + ' ' : '') + preview(m);
        const tr = WS.el('tr', { class: m.from + (control ? ' control' : '') + (m.opcode === 'close' ? ' close' : '') + (m.complete ? '' : ' incomplete'),
          title: WS.clock(m.time, 6) + ' UTC' },
          WS.el('td', { class: 'dim', text: String(i) }),
          WS.el('td', { text: '+' + WS.dur(m.time - t0) }),
          WS.el('td', { class: 'dir', text: m.from === 'client' ? '↑' : '↓' }),
          WS.el('td', { text: m.opcode }),
          WS.el('td', { text: size }, ...flags.map((f) => WS.el('span', { class: 'tag', text: f }))),
          WS.el('td', { class: 'data', text: data.length > 300 ? data.slice(0, 300) + '…' : data }),
          hasApp ? WS.el('td', { class: 'app', text: m.app ? (m.app.summary.length > 200 ? m.app.summary.slice(0, 200) + '…' : m.app.summary) : '' }) : null);
        tr.addEventListener('click', () => {
          const next = tr.nextSibling;
          if (next && next.classList && next.classList.contains('open-row')) { next.remove(); return; }
          const bytes = WS.payloadBytes(m);
          const text = typeof m.text === 'string' && !state.hex ? m.text : WS.hexdump(bytes, 65536);
          tr.after(WS.el('tr', { class: 'open-row' }, WS.el('td', { colspan: hasApp ? '7' : '6' },
            WS.el('pre', { text: text + (m.truncated ? '\n(payload cut: --payload full keeps it all, up to --max-message-bytes)' : '') +
              (m.app ? '\n\n' + c.app.protocol + ' ⇒ ' + JSON.stringify(m.app, null, 1) : '') }))));
        });
        rows.push(tr);
      }
      const heads = ['#', 'time', '', 'opcode', 'length', 'data'].concat(hasApp ? [c.app.protocol] : []);
      table.replaceChildren(WS.el('tr', {}, ...heads.map((x) => WS.el('th', { text: x }))), ...rows);
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
