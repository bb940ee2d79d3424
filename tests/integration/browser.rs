//! The HTML report in a real browser: Debian's Chromium driven through chromedriver by the
//! small WebDriver client in `webdriver.rs`. Each test opens a report, waits for the page's
//! `data-ready`, reads the browser's console log (any entry fails the test: the page logs
//! nothing, so an entry is a script error or a blocked network request), checks the timeline,
//! panels and plots against the JSON report of the same input, and saves a screenshot under
//! `browser/` in cargo's target directory. The tests assert what the page shows, never how
//! fast: their waits are hang guards of minutes, since CI runs them on two cores beside the
//! other tests; `cargo bench --bench html_render` measures the render time.
//!
//! Chromium and chromedriver come from the packages `chromium` and `chromium-driver`
//! (scripts/test.sh installs them). Without them the tests fail and say so; set
//! WSPROBE_NO_BROWSER=1 to skip them on purpose.

use std::path::PathBuf;

use serde_json::Value;

use crate::util::{captures_dir, target_dir, wsprobe};
use crate::webdriver::{Browser, HANG_GUARD, benchmark_capture};

/// Saves a screenshot of the window as TARGET/browser/NAME.
fn screenshot(b: &Browser, name: &str) -> PathBuf {
    let path = target_dir().join("browser").join(name);
    b.screenshot(&path);
    path
}

/// Writes `wsprobe analyze --format html ARGS` to TARGET/browser/NAME and returns its path
/// and the `--format json --messages` report of the same input.
fn html_and_json(name: &str, args: &[&str]) -> (PathBuf, Value) {
    let dir = target_dir().join("browser");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    let out = wsprobe()
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["analyze", "--format", "html"])
        .args(args)
        .output()
        .unwrap();
    assert!(matches!(out.status.code(), Some(0 | 1)), "{out:?}");
    std::fs::write(&path, &out.stdout).unwrap();
    let json = wsprobe()
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["analyze", "--format", "json", "--messages"])
        .args(args)
        .output()
        .unwrap();
    (path, serde_json::from_slice(&json.stdout).unwrap())
}

fn every_capture() -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(captures_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "pcap" || e == "pcapng"))
        .map(|p| format!("captures/{}", p.file_name().unwrap().to_string_lossy()))
        .collect();
    files.sort();
    files
}

/// Checks a rendered report against the JSON report of the same input.
fn check_page(b: &Browser, json: &Value) -> Value {
    let d = b.wait_ready();
    let console = b.console();
    assert!(console.is_empty(), "console entries: {console:#?}");
    assert_eq!(d["errors"], "0", "script errors: {d}");
    let conns = json["connections"].as_array().unwrap();
    let ids: u64 = conns.iter().map(|c| c["id"].as_u64().unwrap()).sum();
    let canvas = b.eval(
        "const c = document.getElementById('timeline-canvas'); \
         return {bars: c.dataset.bars, sum: c.dataset.barIdSum, rows: WS.timeline.rows.length, \
                 unique: new Set(WS.timeline.rows.map(r => r.c.id)).size, width: c.width}",
    );
    assert_eq!(canvas["bars"], conns.len().to_string(), "{canvas}");
    assert_eq!(canvas["sum"], ids.to_string(), "{canvas}");
    assert_eq!(
        canvas["rows"],
        conns.len(),
        "one bar per connection: {canvas}"
    );
    assert_eq!(canvas["unique"], conns.len(), "{canvas}");
    let findings = json["findings"].as_array().map_or(0, Vec::len);
    let why = b.eval("return document.querySelectorAll('#summary-findings li.finding').length");
    assert_eq!(
        why.as_u64().unwrap() > 0,
        findings > 0,
        "Why connections ended: {why}"
    );
    let present = b.eval(
        "const q = (s) => !!document.querySelector(s); \
         return {summary: q('#summary-outcomes'), panel: q('#panel .panel'), handshake: q('#panel pre'), \
                 log: q('#panel-log'), diagnostics: q('#panel-diagnostics'), \
                 plots: ['messages','bytes','rtt','open','idle'].filter(p => q('#plot-' + p + ' svg')).length, \
                 attention: q('#attention')}",
    );
    for key in [
        "summary",
        "panel",
        "handshake",
        "log",
        "diagnostics",
        "attention",
    ] {
        assert_eq!(present[key], true, "{key} missing: {present}");
    }
    assert_eq!(present["plots"], 5, "{present}");
    d
}

#[test]
fn html_report_renders_in_chromium_with_one_bar_per_connection() {
    let files = every_capture();
    let args: Vec<&str> = files.iter().map(String::as_str).collect();
    let (page, json) = html_and_json("captures.html", &args);
    let Some(b) = Browser::start((1400, 2600), &[]) else {
        return;
    };
    b.open(&page);
    check_page(&b, &json);
    let shot = screenshot(&b, "html-report.png");
    assert!(std::fs::metadata(&shot).unwrap().len() > 10_000);
    // Selecting another connection (a click on its row in the attention list) opens its panel.
    let picked = b.eval(
        "const rows = document.querySelectorAll('#attention-table tr[data-connection]'); \
         const last = rows[rows.length - 1]; last.click(); \
         return [last.dataset.connection, document.querySelector('#panel .panel').dataset.connection]",
    );
    assert_eq!(picked[0], picked[1], "{picked}");
    // The timeline zooms: the view narrows and the time plots follow it.
    let zoom = b.eval(
        "const t = WS.timeline; const before = t.view[1] - t.view[0]; t.zoom(0.25); \
         return [before, t.view[1] - t.view[0]]",
    );
    let (before, after) = (zoom[0].as_f64().unwrap(), zoom[1].as_f64().unwrap());
    assert!((after / before - 0.25).abs() < 1e-6, "{zoom}");
    assert!(b.console().is_empty());
}

/// The panel of connection `id`, opened as a link to it does, as the titles of its cards.
fn open_panel(b: &Browser, id: u64) -> Vec<String> {
    b.eval(&format!("location.hash = '#conn-{id}'; return 0"));
    b.wait_for(
        &format!("the panel of connection {id}"),
        "const p = document.querySelector('#panel .panel'); return p ? p.dataset.connection : null",
        HANG_GUARD,
        |shown| shown.as_str().and_then(|s| s.parse::<u64>().ok()) == Some(id),
    );
    let titles =
        b.eval("return [...document.querySelectorAll('#panel .card h2')].map(h => h.textContent)");
    titles
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_string())
        .collect()
}

/// Findings across connections, TLS, HTTP/2 and application protocols, in the page: the summary
/// lists the findings and can show each one's connections on the timeline, instants are bands,
/// the idle timeout is marked on the silence plot, and the panels show the new stages' facts.
#[test]
fn html_report_shows_findings_tls_http2_and_app_sessions() {
    let (page, json) = html_and_json(
        "findings.html",
        &[
            "captures/idle-timeout-nginx.pcap",
            "captures/restart-reconnect.pcap",
            "captures/peer-unreachable.pcap",
            "captures/h2-chromium.pcapng",
            "captures/app-mqtt.pcap",
            "--keylog",
            "captures/h2-chromium.keys",
        ],
    );
    let Some(b) = Browser::start((1400, 2400), &[]) else {
        return;
    };
    b.open(&page);
    check_page(&b, &json);
    let findings = json["findings"].as_array().unwrap();
    let ids: Vec<&str> = findings.iter().map(|f| f["id"].as_str().unwrap()).collect();
    for want in [
        "idle_timeout",
        "server_restart",
        "peer_unreachable",
        "proxy_legs",
    ] {
        assert!(ids.contains(&want), "{want} in {ids:?}");
    }
    let page_state = b.eval(
        "return {bands: WS.timeline.bands.map(b => b.label), buttons: document.querySelectorAll('#summary-findings button.show').length, \
                 items: document.querySelectorAll('#summary-findings li.finding').length, \
                 idleLine: document.querySelectorAll('#plot-idle .finding-line').length, \
                 idleNote: [...document.querySelectorAll('#plot-idle .note.finding')].map(n => n.textContent)}",
    );
    assert_eq!(page_state["buttons"], page_state["items"], "{page_state}");
    let bands = page_state["bands"].as_array().unwrap();
    assert!(bands.iter().any(|b| b == "restart"), "{page_state}");
    assert!(
        bands
            .iter()
            .any(|b| b.as_str().unwrap().starts_with("silent")),
        "{page_state}"
    );
    assert_eq!(page_state["idleLine"], 1, "{page_state}");
    assert!(
        page_state["idleNote"][0]
            .as_str()
            .unwrap()
            .starts_with("idle_timeout"),
        "{page_state}"
    );
    // The timeline shows one finding's connections, then all again.
    let k = ids.iter().position(|id| *id == "server_restart").unwrap();
    let members = findings[k]["connections"].as_array().unwrap().len();
    let shown = b.eval(&format!(
        "WS.timeline.showFinding({k}); const n = WS.timeline.visible.length; WS.timeline.showFinding(null); \
         return [n, WS.timeline.visible.length]"
    ));
    assert_eq!(shown[0], members, "{shown}");
    assert_eq!(
        shown[1],
        json["connections"].as_array().unwrap().len(),
        "{shown}"
    );
    // The summary's button does the same.
    let clicked = b.eval(
        "document.querySelector('#summary-findings li.finding button.show').click(); return WS.timeline.visible.length",
    );
    assert!(clicked.as_u64().unwrap() < json["connections"].as_array().unwrap().len() as u64);
    let conns = json["connections"].as_array().unwrap();
    // A connection that is part of a finding says so in its panel.
    let member = findings[k]["connections"][0].as_u64().unwrap();
    let titles = open_panel(&b, member);
    assert!(titles.iter().any(|t| t == "Part of"), "{titles:?}");
    assert!(
        titles.iter().any(|t| t == "Timing of the end"),
        "{titles:?}"
    );
    // A WebSocket over HTTP/2 over TLS: TLS and the stream.
    let h2 = conns.iter().find(|c| c["http2"].is_object()).unwrap()["id"]
        .as_u64()
        .unwrap();
    let titles = open_panel(&b, h2);
    for want in ["TLS", "HTTP/2 stream"] {
        assert!(titles.iter().any(|t| t == want), "{want} in {titles:?}");
    }
    let tls = b.eval("return document.querySelector('#panel').textContent");
    assert!(tls.as_str().unwrap().contains("TLS_AES_256_GCM_SHA384"));
    // The TCP connection that carried the streams: the HTTP/2 connection, linking to them.
    let carrier = conns
        .iter()
        .find(|c| c["http2_connection"].is_object())
        .unwrap();
    let titles = open_panel(&b, carrier["id"].as_u64().unwrap());
    assert!(
        titles.iter().any(|t| t == "HTTP/2 connection"),
        "{titles:?}"
    );
    let mut links: Vec<u64> = b
        .eval("return [...document.querySelectorAll('#panel .card a[href^=\"#conn-\"]')].map(a => Number(a.getAttribute('href').slice(6)))")
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    links.sort_unstable();
    links.dedup();
    let mut streams: Vec<u64> = conns
        .iter()
        .filter(|c| {
            c["http2"].is_object()
                && c["client"] == carrier["client"]
                && c["server"] == carrier["server"]
        })
        .map(|c| c["id"].as_u64().unwrap())
        .collect();
    streams.sort_unstable();
    assert_eq!(streams.len(), 2, "{streams:?}");
    for s in &streams {
        assert!(links.contains(s), "stream #{s} linked: {links:?}");
    }
    // MQTT: the session, and the decoded packets beside the raw messages.
    let mqtt = conns
        .iter()
        .find(|c| c["app"]["protocol"] == "mqtt")
        .unwrap()["id"]
        .as_u64()
        .unwrap();
    let titles = open_panel(&b, mqtt);
    assert!(
        titles.iter().any(|t| t == "Application protocol"),
        "{titles:?}"
    );
    let decoded = b.eval(
        "return [...document.querySelectorAll('#panel-log td.app')].map(td => td.textContent).filter(t => t.includes('CONNACK')).length",
    );
    assert!(decoded.as_u64().unwrap() >= 1, "{decoded}");
    // The unreachable peer: its time on the bar, its facts in the panel.
    let silent = conns
        .iter()
        .find(|c| c["close"]["unreachable"].is_object())
        .unwrap()["id"]
        .as_u64()
        .unwrap();
    open_panel(&b, silent);
    let text = b.eval("return document.querySelector('#panel').textContent");
    assert!(
        text.as_str().unwrap().contains("peer unreachable"),
        "{text}"
    );
    let marks = b.eval(&format!(
        "return WS.timeline.rows.find(r => r.c.id === {silent}).marks.filter(m => m.kind === 'unreachable').length"
    ));
    assert_eq!(marks, 1);
    assert!(b.console().is_empty(), "{:?}", b.console());
    screenshot(&b, "html-report-findings.png");
}

#[test]
fn html_report_follows_a_dark_system_theme() {
    let (page, json) = html_and_json(
        "dark.html",
        &["captures/close-codes.pcap", "captures/killed-server.pcap"],
    );
    let Some(b) = Browser::start((1400, 1800), &["--force-dark-mode"]) else {
        return;
    };
    b.open(&page);
    check_page(&b, &json);
    let colours = b.eval(
        "return [matchMedia('(prefers-color-scheme: dark)').matches, getComputedStyle(document.body).backgroundColor]",
    );
    assert_eq!(colours[0], true, "{colours}");
    assert_eq!(colours[1], "rgb(19, 22, 27)", "{colours}");
    screenshot(&b, "html-report-dark.png");
}

/// The benchmark generator's capture (benches/compare.sh's traffic at 20 MB: 2,292 connections,
/// 94,451 messages, a page of 6.6 MB embedding 28 MB of JSON) renders completely: every
/// connection a row and a bar of the timeline, the plots, the first panel with its message log,
/// no script error and nothing in the console. How fast it renders is measured by
/// `cargo bench --bench html_render` (a timed test fails whenever the machine is busy); here the
/// page has as long as it needs, up to the hang guard.
#[test]
fn html_report_of_the_benchmark_capture_renders_completely() {
    let pcap = benchmark_capture(&target_dir(), 20, false);
    let pcap_arg = pcap.to_string_lossy().into_owned();
    let (page, json) = html_and_json("benchmark.html", &[pcap_arg.as_str()]);
    let conns = json["connections"].as_array().unwrap();
    assert!(conns.len() >= 2000, "{} connections", conns.len());
    let Some(b) = Browser::start((1400, 1600), &[]) else {
        return;
    };
    b.open(&page);
    let d = check_page(&b, &json);
    assert_eq!(d["connections"], conns.len().to_string(), "{d}");
    // Every connection is drawn when the timeline shows the whole capture with all rows at once
    // ("rows: fit all"), and the panel's message log lists the shown connection's messages.
    let fit = b.eval(
        "const t = WS.timeline; t.density = 'fit'; t.setView(t.full[0], t.full[1]); t.layout(); \
         return {rows: t.rows.length, drawn: Number(document.getElementById('timeline-canvas').dataset.visibleBars), \
                 log: document.querySelectorAll('#panel-log tr').length, \
                 shown: Number(document.querySelector('#panel .panel').dataset.connection)}",
    );
    assert_eq!(fit["rows"], conns.len(), "{fit}");
    assert_eq!(fit["drawn"], conns.len(), "{fit}");
    let first = conns
        .iter()
        .find(|c| c["id"] == fit["shown"])
        .unwrap_or_else(|| panic!("the panel shows a connection of the report: {fit}"));
    // A head row, then the first 300 messages (a button shows more).
    let messages = first["messages"].as_array().map_or(0, Vec::len);
    assert_eq!(
        fit["log"],
        1 + messages.min(300),
        "the log of #{}: {fit}",
        first["id"]
    );
    assert!(b.console().is_empty(), "{:?}", b.console());
    screenshot(&b, "html-report-benchmark.png");
}
