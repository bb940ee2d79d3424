// The page: reads the embedded report, lays out the timeline, the plots, the connections that
// need attention and the selected connection's panel, and keeps them in step (the plots follow
// the timeline's zoom; a click anywhere selects a connection; #conn-ID links select one).
// When done, the root element carries data-ready, data-render-ms (performance.now() since the
// navigation started, so parsing the embedded data counts) and data-errors.

WS.attention = function (rows, onPick) {
  const bad = rows.filter((r) => r.outcome === 'abnormal' || r.outcome === 'incomplete' || r.errors || r.outcome === 'not_websocket');
  bad.sort((a, b) => WS.outcomeRank(a) - WS.outcomeRank(b) || a.start - b.start);
  const shown = bad.slice(0, 100);
  const table = WS.el('table', { class: 'grid', id: 'attention-table' },
    WS.el('tr', {}, ...['#', 'outcome', 'code', 'endpoints', 'target', 'what happened'].map((x) => WS.el('th', { text: x }))),
    ...shown.map((r) => {
      const c = r.c;
      const tr = WS.el('tr', { 'data-connection': c.id },
        WS.el('td', {}, WS.el('a', { href: '#conn-' + c.id, text: '#' + c.id })),
        WS.el('td', {}, WS.el('span', { class: 'badge o-' + r.outcome, text: r.outcome })),
        WS.el('td', { text: c.close.code === null ? '' : String(c.close.code) }),
        WS.el('td', { class: 'mono', text: WS.endpoints(c) }),
        WS.el('td', { class: 'mono', text: WS.target(c) }),
        WS.el('td', { text: c.close.summary }));
      tr.addEventListener('click', (e) => { e.preventDefault(); onPick(c.id); });
      return tr;
    }));
  const note = bad.length > shown.length ? WS.el('p', { class: 'dim', text: (bad.length - shown.length) + ' more: use the timeline\'s filter.' }) : null;
  return { count: bad.length, body: bad.length ? [WS.el('div', { class: 'attention' }, table), note]
    : [WS.el('p', { class: 'ok', text: 'Every connection closed cleanly, without an error.' })] };
};

/** The summary's findings (rendered without script) get a button that shows their connections
 * on the timeline, and their connection links open the panel. */
WS.enhanceFindings = function (timeline, onPick) {
  for (const li of document.querySelectorAll('#summary-findings li.finding[data-findings]')) {
    const ks = li.dataset.findings.split(' ').map(Number);
    const button = WS.el('button', { type: 'button', class: 'show', onclick: () => {
      timeline.showFinding(ks.length === 1 ? ks[0] : null);
      if (ks.length > 1) {
        timeline.finding = new Set(ks.flatMap((k) => timeline.findings[k].connections));
        timeline.applyFilter();
      }
      document.getElementById('timeline').scrollIntoView({ block: 'start' });
    } }, 'show on the timeline');
    const head = li.querySelector('.fhead');
    if (head) head.appendChild(button);
  }
  for (const a of document.querySelectorAll('#summary-findings a[data-connection]')) {
    a.addEventListener('click', (e) => {
      e.preventDefault();
      const id = Number(a.dataset.connection);
      history.replaceState(null, '', '#conn-' + id);
      onPick(id);
    });
  }
};

/** The embedded report: JSON, or gzip in base64 inflated by the browser's DecompressionStream. */
WS.loadReport = async function (lap) {
  const data = document.getElementById('wsprobe-report');
  const text = data.textContent;
  if (data.type === 'application/json') return JSON.parse(text);
  let bytes;
  if (typeof Uint8Array.fromBase64 === 'function') bytes = Uint8Array.fromBase64(text.trim());
  else {
    const bin = atob(text.trim());
    bytes = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  }
  lap('decode');
  if (typeof DecompressionStream !== 'function') {
    throw new Error('this browser cannot inflate the embedded report (no DecompressionStream): open the file in a current browser, or use wsprobe --format json');
  }
  const json = await new Response(new Blob([bytes]).stream().pipeThrough(new DecompressionStream('gzip'))).text();
  lap('inflate');
  return JSON.parse(json);
};

/** A link that saves the embedded report as report.json. */
WS.downloadLink = function (report) {
  return WS.el('a', { href: '#', id: 'download-json', onclick: (e) => {
    e.preventDefault();
    const url = URL.createObjectURL(new Blob([JSON.stringify(report)], { type: 'application/json' }));
    const a = WS.el('a', { href: url, download: 'wsprobe-report.json' });
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  } }, 'download the JSON report');
};

WS.main = async function () {
  const phases = {};
  let mark = performance.now();
  phases.start = mark;
  const lap = (name) => { const now = performance.now(); phases[name] = +(now - mark).toFixed(1); mark = now; };
  let report;
  try {
    report = await WS.loadReport(lap);
  } catch (e) {
    document.getElementById('app').appendChild(WS.el('p', { class: 'card warn', text: 'Cannot read the report data: ' + e.message }));
    throw e;
  }
  lap('parse');
  WS.report = report;
  report.findings = report.findings || [];
  // Connection id → the findings (indices) it is part of.
  WS.findingsOf = new Map();
  report.findings.forEach((f, k) => {
    for (const id of f.connections) {
      const list = WS.findingsOf.get(id);
      if (list) list.push(k); else WS.findingsOf.set(id, [k]);
    }
  });
  const app = document.getElementById('app');
  const names = report.inputs.map((i) => i.path).join(', ');
  document.title = 'wsprobe: ' + (names || 'report');
  const rows = WS.buildRows(report);
  lap('rows');
  const byId = new Map(rows.map((r) => [r.c.id, r]));
  const panel = WS.el('div', { id: 'panel' });
  let selected = -1;
  const select = (id, fromTimeline) => {
    const r = byId.get(id);
    if (!r) return;
    selected = id;
    WS.Panel.render(panel, r.c, report.findings);
    if (!fromTimeline) timeline.select(id, false);
    if (location.hash !== '#conn-' + id) history.replaceState(null, '', '#conn-' + id);
  };

  const tlSection = WS.el('section', { class: 'block', id: 'timeline' },
    WS.el('h2', {}, 'Timeline', WS.el('span', { class: 'dim', text: 'one bar per connection, first to last packet, coloured by outcome' })));
  const plotSection = WS.el('section', { class: 'block', id: 'plots' }, WS.el('h2', {}, 'Plots',
    WS.el('span', { class: 'dim', text: 'the time plots follow the timeline\'s range' })));
  const att = WS.attention(rows, (id) => { select(id, false); panel.scrollIntoView({ block: 'start' }); });
  const attSection = WS.el('section', { class: 'block', id: 'attention' },
    WS.el('h2', {}, 'Connections that need attention', WS.el('span', { class: 'dim', text: String(att.count) })), ...att.body);
  const panelSection = WS.el('section', { class: 'block', id: 'connection' },
    WS.el('h2', {}, 'Connection', WS.el('span', { class: 'dim', text: 'click a bar or a row; j/k in the timeline step through them' })), panel);
  app.append(tlSection, plotSection, attSection, panelSection);
  const span = document.querySelector('header.top .span') || document.querySelector('header.top');
  if (span) span.append(' · ', WS.downloadLink(report));
  if (report.omitted_connections) {
    tlSection.appendChild(WS.el('p', { class: 'warn', text: report.omitted_connections +
      ' more connections are counted in the summary but not embedded in this page (--format json lists them all).' }));
  }

  const timeline = new WS.Timeline(tlSection, rows, {
    findings: report.findings,
    onSelect: (id) => select(id, true),
    onView: WS.debounce(() => plots.render(timeline.view), 120),
  });
  WS.timeline = timeline;
  lap('timeline');
  const plots = new WS.Plots(plotSection, report, rows);
  WS.plots = plots;
  plots.render(timeline.view);
  lap('plots');

  const fromHash = () => {
    const m = /^#conn-(\d+)$/.exec(location.hash);
    return m ? Number(m[1]) : null;
  };
  const first = fromHash() ?? (rows.slice().sort((a, b) => WS.outcomeRank(a) - WS.outcomeRank(b) || a.start - b.start)[0] || {}).c?.id;
  if (first !== undefined && first !== null) select(first, false);
  else panel.appendChild(WS.el('p', { class: 'dim', text: 'No connection to show.' }));
  lap('panel');
  window.addEventListener('hashchange', () => {
    const id = fromHash();
    if (id !== null && id !== selected) { select(id, false); panelSection.scrollIntoView({ block: 'start' }); }
  });
  WS.enhanceFindings(timeline, (id) => { select(id, false); panelSection.scrollIntoView({ block: 'start' }); });

  const scheme = window.matchMedia('(prefers-color-scheme: dark)');
  const onTheme = () => { WS.themeChanged(); timeline.draw(); plots.render(timeline.view); plots.renderIdle(); };
  if (scheme.addEventListener) scheme.addEventListener('change', onTheme);

  const root = document.documentElement;
  root.dataset.connections = String(report.connections.length);
  root.dataset.renderMs = performance.now().toFixed(0);
  phases.start = +phases.start.toFixed(1);
  root.dataset.phases = JSON.stringify(phases);
  root.dataset.ready = '1';
};

WS.main();
