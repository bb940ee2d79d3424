//! The HTML report in a real browser: Debian's Chromium driven through chromedriver by a
//! WebDriver client of a few dozen lines (HTTP/1.1 over a loopback socket on a port in
//! 27000-27999), so no browser-automation package is needed. Each test opens a report, waits
//! for the page's `data-ready`, reads the browser's console log (any entry fails the test:
//! the page logs nothing, so an entry is a script error or a blocked network request), checks
//! the timeline, panels and plots, and saves a screenshot under `browser/` in cargo's target
//! directory.
//!
//! Chromium and chromedriver come from the packages `chromium` and `chromium-driver`
//! (scripts/test.sh installs them). Without them the tests fail and say so; set
//! WSPROBE_NO_BROWSER=1 to skip them on purpose.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};

use crate::util::{captures_dir, target_dir, wsprobe};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// chromedriver and one browser session; both end when dropped.
struct Browser {
    driver: Child,
    port: u16,
    session: String,
    _profile: PathBuf,
}

fn http(port: u16, method: &str, path: &str, body: Option<&Value>) -> std::io::Result<Value> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(90)))?;
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    // chromedriver keeps the connection open: read the head, then exactly the body.
    let mut raw = Vec::new();
    let mut buf = [0u8; 65536];
    let split = loop {
        if let Some(i) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Err(std::io::Error::other("connection closed before the head"));
        }
        raw.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    let mut payload = raw[split + 4..].to_vec();
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok());
    let chunked = head.contains("transfer-encoding: chunked");
    let complete = |p: &[u8]| match length {
        Some(n) => p.len() >= n,
        None if chunked => p.windows(5).any(|w| w == b"0\r\n\r\n"),
        None => false,
    };
    while !complete(&payload) {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        payload.extend_from_slice(&buf[..n]);
    }
    if chunked {
        let mut out = Vec::new();
        let mut rest = &payload[..];
        while let Some(eol) = rest.windows(2).position(|w| w == b"\r\n") {
            let size = usize::from_str_radix(String::from_utf8_lossy(&rest[..eol]).trim(), 16)
                .map_err(std::io::Error::other)?;
            if size == 0 {
                break;
            }
            out.extend_from_slice(&rest[eol + 2..eol + 2 + size]);
            rest = &rest[eol + 2 + size + 2..];
        }
        payload = out;
    }
    serde_json::from_slice(&payload).map_err(std::io::Error::other)
}

impl Browser {
    /// Starts chromedriver on a free port in 27400-27599 and a headless Chromium session with
    /// the flags this machine needs (no sandbox as root, no background networking).
    fn start(window: (u32, u32), extra_args: &[&str]) -> Option<Browser> {
        if std::env::var_os("WSPROBE_NO_BROWSER").is_some() {
            eprintln!("browser test skipped: WSPROBE_NO_BROWSER is set");
            return None;
        }
        assert!(
            Path::new(CHROMIUM).exists() && Path::new(CHROMEDRIVER).exists(),
            "{CHROMIUM} and {CHROMEDRIVER} are needed: apt-get install chromium chromium-driver \
             (scripts/test.sh installs them), or set WSPROBE_NO_BROWSER=1 to skip the browser tests"
        );
        // Tests run in parallel (and test binaries may too): each start takes its own
        // candidate, spread by the process id, and the first of them that is free.
        static NEXT: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(0);
        let offset = (std::process::id() % 50) as u16 * 4
            + NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let port = (0..200)
            .map(|i| 27400 + (offset + i) % 200)
            .find(|p| std::net::TcpListener::bind(("127.0.0.1", *p)).is_ok())
            .expect("a free port in 27400-27599");
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let profile =
            std::env::temp_dir().join(format!("wsprobe-chromium-{}-{port}", std::process::id()));
        let mut args: Vec<String> = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.push(format!("--user-data-dir={}", profile.display()));
        args.push(format!("--window-size={},{}", window.0, window.1));
        args.extend(extra_args.iter().map(|s| s.to_string()));
        let caps = json!({"capabilities": {"alwaysMatch": {
            "goog:chromeOptions": {"binary": CHROMIUM, "args": args},
            "goog:loggingPrefs": {"browser": "ALL"},
        }}});
        // From here the driver is ended by Drop, whatever fails.
        let mut browser = Browser {
            driver,
            port,
            session: String::new(),
            _profile: profile,
        };
        let started = Instant::now();
        while http(port, "GET", "/status", None).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "chromedriver did not answer on port {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let answer = http(port, "POST", "/session", Some(&caps)).expect("new session");
        browser.session = answer["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {answer}"))
            .to_string();
        Some(browser)
    }

    fn call(&self, method: &str, what: &str, body: Option<Value>) -> Value {
        let path = format!("/session/{}/{what}", self.session);
        let answer = http(self.port, method, &path, body.as_ref())
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        answer["value"].clone()
    }

    fn open(&self, file: &Path) {
        let url = format!("file://{}", file.canonicalize().unwrap().display());
        self.call("POST", "url", Some(json!({"url": url})));
    }

    fn eval(&self, script: &str) -> Value {
        self.call(
            "POST",
            "execute/sync",
            Some(json!({"script": script, "args": []})),
        )
    }

    /// Waits for the page's `data-ready` (or an error it counted); returns the root's dataset.
    fn wait_ready(&self) -> Value {
        let started = Instant::now();
        loop {
            let d = self.eval("return Object.assign({}, document.documentElement.dataset)");
            if d["ready"] == "1" || d["errors"].as_str().is_some_and(|e| e != "0") {
                return d;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "the page never became ready: {d}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Console entries since the last call (errors, warnings, logs, CSP violations).
    fn console(&self) -> Vec<Value> {
        self.call("POST", "se/log", Some(json!({"type": "browser"})))
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    fn screenshot(&self, name: &str) -> PathBuf {
        let b64 = self.call("GET", "screenshot", None);
        let png = base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().expect("screenshot data"))
            .unwrap();
        let dir = target_dir().join("browser");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, png).unwrap();
        path
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = http(
                self.port,
                "DELETE",
                &format!("/session/{}", self.session),
                None,
            );
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        let _ = std::fs::remove_dir_all(&self._profile);
    }
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
    let shot = b.screenshot("html-report.png");
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
    b.screenshot("html-report-dark.png");
}

/// The benchmark generator's capture (benches/compare.sh's traffic at 20 MB: 2,292 connections,
/// 94,451 messages), as an HTML report, opens and renders in under 3 s, measured in the page:
/// `performance.now()` when the page is ready, which counts from the start of navigation, so
/// reading the file, inflating and parsing the embedded data, the timeline, the plots and the
/// first panel are all inside it.
#[test]
fn html_report_of_the_benchmark_capture_renders_in_under_3_s() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    // Where benches/compare.sh keeps its captures too.
    let pcap = target_dir().join("bench/small-20mb-s1.pcap");
    if !pcap.exists() {
        std::fs::create_dir_all(pcap.parent().unwrap()).unwrap();
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(&cargo)
            .current_dir(&root)
            .args(["run", "--quiet", "--example", "gen_capture", "--"])
            .args(["--size-mb", "20", "--mix", "small", "--seed", "1", "--out"])
            .arg(&pcap)
            .status()
            .unwrap();
        assert!(status.success(), "gen_capture failed");
    }
    let pcap_arg = pcap.to_string_lossy().into_owned();
    let (page, json) = html_and_json("benchmark.html", &[pcap_arg.as_str()]);
    assert!(json["connections"].as_array().unwrap().len() >= 2000);
    let Some(b) = Browser::start((1400, 1600), &[]) else {
        return;
    };
    // Twice: cold (the browser just started), then warm (a browser already running).
    let mut times = Vec::new();
    for _ in 0..2 {
        b.open(&page);
        let d = check_page(&b, &json);
        let ms: f64 = d["renderMs"].as_str().unwrap().parse().unwrap();
        eprintln!(
            "benchmark report ({} bytes): ready after {ms} ms, phases {}",
            std::fs::metadata(&page).unwrap().len(),
            d["phases"]
        );
        times.push(ms);
    }
    // Both: the first (a browser just started, its caches cold) is what a person opening
    // the file from an email sees.
    assert!(
        times.iter().all(|&ms| ms < 3000.0),
        "the report took {times:?} ms to render"
    );
    b.screenshot("html-report-benchmark.png");
}
