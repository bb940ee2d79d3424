//! A WebDriver client of a few dozen lines for Debian's Chromium and chromedriver (HTTP/1.1 to
//! chromedriver on loopback), so no browser-automation package is needed. Shared by the browser
//! tests (`tests/integration/browser.rs`) and the render benchmark (`benches/html_render.rs`),
//! each of which uses part of it.
//!
//! Made to hold on a loaded machine: chromedriver picks its own free port (`--port=0`, the
//! port read from what it prints, so two test processes never race for one), one browser runs
//! at a time per process (tests run in parallel threads; several Chromiums on two cores only
//! slow each other down), and every wait is a hang guard of minutes, never a speed limit:
//! how fast the page is is measured by the benchmark.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// How long a page may take to load and render before a test calls it hung (the 2,000-connection
/// page takes a few seconds; under a load average of 10 some tens).
pub const HANG_GUARD: Duration = Duration::from_secs(300);

/// One browser at a time in this process.
static ONE_BROWSER: Mutex<()> = Mutex::new(());

/// chromedriver and one browser session; both end when dropped.
pub struct Browser {
    driver: Child,
    port: u16,
    session: String,
    profile: PathBuf,
    // Last, so that it is released after the browser has ended (fields drop after `drop`).
    _turn: MutexGuard<'static, ()>,
}

fn http(port: u16, method: &str, path: &str, body: Option<&Value>) -> std::io::Result<Value> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    // A navigation answers when the page has loaded: longer than the page-load timeout below.
    stream.set_read_timeout(Some(HANG_GUARD + Duration::from_secs(30)))?;
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

/// Starts chromedriver on a port of its choosing and returns it with the port it printed.
fn start_driver() -> (Child, u16) {
    let mut driver = Command::new(CHROMEDRIVER)
        .arg("--port=0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let stdout = driver.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    // Reads "ChromeDriver was started successfully on port N.", then keeps draining stdout.
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        for line in lines.by_ref() {
            let Ok(line) = line else { return };
            if let Some(rest) = line.split(" on port ").nth(1)
                && line.contains("started successfully")
            {
                let _ = tx.send(rest.trim_end_matches('.').trim().parse::<u16>().ok());
                break;
            }
        }
        for _ in lines {}
    });
    match rx.recv_timeout(Duration::from_secs(120)) {
        Ok(Some(port)) => (driver, port),
        other => {
            let _ = driver.kill();
            let _ = driver.wait();
            panic!("chromedriver did not say which port it listens on: {other:?}");
        }
    }
}

impl Browser {
    /// Starts chromedriver and a headless Chromium session with the flags this machine needs
    /// (no sandbox as root, no background networking). None when WSPROBE_NO_BROWSER is set;
    /// panics, saying what to install, when Chromium or chromedriver is missing.
    pub fn start(window: (u32, u32), extra_args: &[&str]) -> Option<Browser> {
        if std::env::var_os("WSPROBE_NO_BROWSER").is_some() {
            eprintln!("browser test skipped: WSPROBE_NO_BROWSER is set");
            return None;
        }
        assert!(
            Path::new(CHROMIUM).exists() && Path::new(CHROMEDRIVER).exists(),
            "{CHROMIUM} and {CHROMEDRIVER} are needed: apt-get install chromium chromium-driver \
             (scripts/test.sh installs them), or set WSPROBE_NO_BROWSER=1 to skip the browser tests"
        );
        // A test that failed while holding the turn poisons the lock; the next may still run.
        let turn = ONE_BROWSER.lock().unwrap_or_else(|e| e.into_inner());
        let (driver, port) = start_driver();
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
            // A page in the background of a busy machine must not be slowed down on purpose.
            "--disable-background-timer-throttling",
            "--disable-renderer-backgrounding",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.push(format!("--user-data-dir={}", profile.display()));
        args.push(format!("--window-size={},{}", window.0, window.1));
        args.extend(extra_args.iter().map(|s| s.to_string()));
        let guard_ms = HANG_GUARD.as_millis() as u64;
        let caps = json!({"capabilities": {"alwaysMatch": {
            "goog:chromeOptions": {"binary": CHROMIUM, "args": args},
            "goog:loggingPrefs": {"browser": "ALL"},
            "timeouts": {"script": guard_ms, "pageLoad": guard_ms, "implicit": 0},
        }}});
        // From here the driver is ended by Drop, whatever fails.
        let mut browser = Browser {
            driver,
            port,
            session: String::new(),
            profile,
            _turn: turn,
        };
        let started = Instant::now();
        while http(port, "GET", "/status", None).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "chromedriver did not answer on port {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        // Chromium that starts too slowly for chromedriver (a loaded machine) gets a second go.
        let mut answers = Vec::new();
        for _ in 0..3 {
            let answer = http(port, "POST", "/session", Some(&caps)).expect("new session");
            if let Some(id) = answer["value"]["sessionId"].as_str() {
                browser.session = id.to_string();
                return Some(browser);
            }
            answers.push(answer);
        }
        panic!("no browser session: {answers:#?}");
    }

    fn call(&self, method: &str, what: &str, body: Option<Value>) -> Value {
        let path = format!("/session/{}/{what}", self.session);
        let answer = http(self.port, method, &path, body.as_ref())
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        if let Some(error) = answer["value"]["error"].as_str() {
            panic!("{method} {path}: {error}: {}", answer["value"]["message"]);
        }
        answer["value"].clone()
    }

    /// Navigates to a file; answers when the page has loaded (its scripts may still be working:
    /// `wait_ready` waits for them).
    pub fn open(&self, file: &Path) {
        let url = format!("file://{}", file.canonicalize().unwrap().display());
        self.call("POST", "url", Some(json!({"url": url})));
    }

    pub fn eval(&self, script: &str) -> Value {
        self.call(
            "POST",
            "execute/sync",
            Some(json!({"script": script, "args": []})),
        )
    }

    /// Polls `script` until it returns something `done` accepts; panics with the last value
    /// after `guard`.
    pub fn wait_for(
        &self,
        what: &str,
        script: &str,
        guard: Duration,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let started = Instant::now();
        loop {
            let v = self.eval(script);
            if done(&v) {
                return v;
            }
            assert!(
                started.elapsed() < guard,
                "{what} not within {guard:?}: {v}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits for the page's `data-ready` (or an error it counted); returns the root's dataset.
    pub fn wait_ready(&self) -> Value {
        self.wait_for(
            "the page's data-ready",
            "return Object.assign({}, document.documentElement.dataset)",
            HANG_GUARD,
            |d| d["ready"] == "1" || d["errors"].as_str().is_some_and(|e| e != "0"),
        )
    }

    /// Console entries since the last call (errors, warnings, logs, CSP violations).
    pub fn console(&self) -> Vec<Value> {
        self.call("POST", "se/log", Some(json!({"type": "browser"})))
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// A PNG of the window, written to `path`.
    pub fn screenshot(&self, path: &Path) {
        let b64 = self.call("GET", "screenshot", None);
        let png = base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().expect("screenshot data"))
            .unwrap();
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::write(path, png).unwrap();
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
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// The benchmark generator's capture (`examples/gen_capture`, the "small" mix, seed 1) of about
/// `size_mb` MB, where benches/compare.sh keeps it: `TARGET/bench/small-<N>mb-s1.pcap` (and
/// its `.truth.json`), generated when missing with `cargo run [--release] --example gen_capture`.
/// Written under a temporary name and renamed, so a process that finds the file finds it whole.
pub fn benchmark_capture(target: &Path, size_mb: u32, release: bool) -> PathBuf {
    let dir = target.join("bench");
    let pcap = dir.join(format!("small-{size_mb}mb-s1.pcap"));
    if pcap.exists() {
        return pcap;
    }
    std::fs::create_dir_all(&dir).unwrap();
    let tmp = dir.join(format!(
        "small-{size_mb}mb-s1.tmp-{}.pcap",
        std::process::id()
    ));
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(&cargo);
    command
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["run", "--quiet"]);
    if release {
        command.arg("--release");
    }
    let status = command
        .args(["--example", "gen_capture", "--"])
        .args([
            "--size-mb",
            &size_mb.to_string(),
            "--mix",
            "small",
            "--seed",
            "1",
            "--out",
        ])
        .arg(&tmp)
        .status()
        .unwrap();
    assert!(status.success(), "gen_capture failed");
    let truth = |p: &Path| p.with_extension("truth.json");
    let _ = std::fs::rename(truth(&tmp), truth(&pcap));
    std::fs::rename(&tmp, &pcap).unwrap();
    pcap
}
