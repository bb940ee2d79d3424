//! `wsprobe live` on loopback: a real WebSocket server and client (std::net, written here) talk
//! while the binary captures. Needs root (or CAP_NET_RAW) and the `live` feature; skipped with
//! a note otherwise. CI runs as root.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;
use wsprobe::http::derive_accept_key;
use wsprobe::ws::frame::encode_frame;

use crate::util::messages;

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false)
}

fn live_feature(test: &str) -> bool {
    if !cfg!(feature = "live") {
        eprintln!("{test}: skipped: wsprobe built without the `live` feature");
        return false;
    }
    true
}

/// Live capture possible here?
fn can_capture(test: &str) -> bool {
    if !live_feature(test) {
        return false;
    }
    if !is_root() {
        eprintln!("{test}: skipped: live capture needs root (CI runs as root)");
        return false;
    }
    true
}

/// A running `wsprobe live`.
struct Live {
    child: Child,
    spawned: Instant,
    ready: Instant,
    stdout: Receiver<String>,
    stderr: Arc<Mutex<String>>,
}

/// Starts `wsprobe <args>` and waits for its "listening on" line.
fn start_live(args: &[&str]) -> Live {
    let spawned = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_wsprobe"))
        .args(args)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn wsprobe");
    let (out_tx, stdout) = channel();
    let out = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            if out_tx.send(line).is_err() {
                break;
            }
        }
    });
    let stderr = Arc::new(Mutex::new(String::new()));
    let (ready_tx, ready_rx) = channel();
    let err = child.stderr.take().unwrap();
    let log = Arc::clone(&stderr);
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines() {
            let Ok(line) = line else { break };
            if line.contains("listening on") {
                let _ = ready_tx.send(());
            }
            let mut log = log.lock().unwrap();
            log.push_str(&line);
            log.push('\n');
        }
    });
    match ready_rx.recv_timeout(Duration::from_secs(15)) {
        Ok(()) => {}
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "wsprobe live did not get ready; stderr: {}",
                stderr.lock().unwrap()
            );
        }
    }
    Live {
        child,
        spawned,
        ready: Instant::now(),
        stdout,
        stderr,
    }
}

impl Live {
    /// The next stdout line, if one comes within `timeout`.
    fn line(&self, timeout: Duration) -> Option<String> {
        self.stdout.recv_timeout(timeout).ok()
    }

    fn running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Waits (at most `limit`) for the exit; returns the status, the rest of stdout and stderr.
    fn wait(mut self, limit: Duration) -> (ExitStatus, Instant, Vec<String>, String) {
        let end = Instant::now() + limit;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > end {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "wsprobe live still running after {limit:?}; stderr: {}",
                    self.stderr.lock().unwrap()
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let exited = Instant::now();
        let mut rest = Vec::new();
        while let Ok(line) = self.stdout.recv_timeout(Duration::from_secs(5)) {
            rest.push(line);
        }
        // The stderr reader ends with the pipe; give it a moment.
        std::thread::sleep(Duration::from_millis(50));
        let stderr = self.stderr.lock().unwrap().clone();
        (status, exited, rest, stderr)
    }

    fn interrupt(&self) {
        let ok = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -INT failed");
    }
}

// ---- a minimal WebSocket endpoint on std::net -------------------------------------------

fn read_head(s: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut byte).expect("read HTTP head");
        head.push(byte[0]);
    }
    String::from_utf8(head).unwrap()
}

/// Reads one frame: (fin, opcode, unmasked payload).
fn read_frame(s: &mut TcpStream) -> (bool, u8, Vec<u8>) {
    let mut h = [0u8; 2];
    s.read_exact(&mut h).expect("read frame header");
    let mut len = u64::from(h[1] & 0x7f);
    if len == 126 {
        let mut b = [0u8; 2];
        s.read_exact(&mut b).unwrap();
        len = u64::from(u16::from_be_bytes(b));
    } else if len == 127 {
        let mut b = [0u8; 8];
        s.read_exact(&mut b).unwrap();
        len = u64::from_be_bytes(b);
    }
    let mask = if h[1] & 0x80 != 0 {
        let mut m = [0u8; 4];
        s.read_exact(&mut m).unwrap();
        Some(m)
    } else {
        None
    };
    let mut payload = vec![0u8; len as usize];
    s.read_exact(&mut payload).unwrap();
    if let Some(m) = mask {
        for (i, b) in payload.iter_mut().enumerate() {
            *b ^= m[i % 4];
        }
    }
    (h[0] & 0x80 != 0, h[0] & 0x0f, payload)
}

/// Accepts one connection and serves it: answers the upgrade, echoes data messages, answers
/// pings, answers the Close with the same code, then closes TCP.
fn serve_one(listener: TcpListener) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let (mut s, _) = listener.accept().expect("accept");
        let request = read_head(&mut s);
        let key = request
            .lines()
            .find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.eq_ignore_ascii_case("sec-websocket-key")
                    .then(|| value.trim().to_string())
            })
            .expect("Sec-WebSocket-Key");
        let response = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
            derive_accept_key(&key)
        );
        s.write_all(response.as_bytes()).unwrap();
        loop {
            let (_, opcode, payload) = read_frame(&mut s);
            match opcode {
                0x1 | 0x2 => s
                    .write_all(&encode_frame(true, 0, opcode, None, &payload))
                    .unwrap(),
                0x9 => s
                    .write_all(&encode_frame(true, 0, 0xA, None, &payload))
                    .unwrap(),
                0x8 => {
                    s.write_all(&encode_frame(true, 0, 0x8, None, &payload[..2]))
                        .unwrap();
                    break;
                }
                other => panic!("server got opcode {other}"),
            }
        }
        let _ = s.shutdown(std::net::Shutdown::Write);
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest);
    })
}

const MASK: [u8; 4] = [0x11, 0x22, 0x33, 0x44];

/// A client session: upgrade, each text and binary message (each echoed), a ping and its pong,
/// Close 1000 "bye" and the server's answer, then TCP close.
fn client_session(port: u16, texts: &[&str], binaries: &[Vec<u8>]) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let request = format!(
        "GET /live-test HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nUser-Agent: wsprobe-live-test\r\n\r\n"
    );
    s.write_all(request.as_bytes()).unwrap();
    let response = read_head(&mut s);
    assert!(response.starts_with("HTTP/1.1 101"), "{response}");
    for text in texts {
        s.write_all(&encode_frame(true, 0, 0x1, Some(MASK), text.as_bytes()))
            .unwrap();
        let (_, opcode, echo) = read_frame(&mut s);
        assert_eq!((opcode, echo.as_slice()), (0x1, text.as_bytes()));
    }
    for bytes in binaries {
        s.write_all(&encode_frame(true, 0, 0x2, Some(MASK), bytes))
            .unwrap();
        let (_, opcode, echo) = read_frame(&mut s);
        assert_eq!(opcode, 0x2);
        assert!(echo == *bytes);
    }
    s.write_all(&encode_frame(true, 0, 0x9, Some(MASK), b"are you there"))
        .unwrap();
    assert_eq!(read_frame(&mut s).1, 0xA);
    let mut close = 1000u16.to_be_bytes().to_vec();
    close.extend_from_slice(b"bye");
    s.write_all(&encode_frame(true, 0, 0x8, Some(MASK), &close))
        .unwrap();
    let (_, opcode, payload) = read_frame(&mut s);
    assert_eq!(
        (opcode, payload.as_slice()),
        (0x8, &1000u16.to_be_bytes()[..])
    );
    let _ = s.shutdown(std::net::Shutdown::Write);
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
}

fn free_listener() -> (TcpListener, u16) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    (listener, port)
}

fn parse_lines(lines: &[String]) -> Vec<Value> {
    lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

// ---- the tests -------------------------------------------------------------------------

#[test]
fn live_jsonl_streams_events_while_capturing_and_stops_on_time() {
    if !can_capture("live_jsonl_streams_events_while_capturing_and_stops_on_time") {
        return;
    }
    let (listener, port) = free_listener();
    let filter = format!("tcp port {port}");
    let duration = 4.0;
    let mut live = start_live(&[
        "live",
        "-i",
        "lo",
        "-f",
        &filter,
        "--duration",
        "4",
        "--format",
        "jsonl",
    ]);
    let server = serve_one(listener);
    client_session(port, &["hello", "second message", "third ✓"], &[]);
    server.join().unwrap();

    // Events arrive while the capture is still running.
    let mut seen = Vec::new();
    let until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < until {
        let Some(line) = live.line(Duration::from_millis(100)) else {
            continue;
        };
        seen.push(line);
        let events = parse_lines(&seen);
        let has = |kind: &str| events.iter().any(|e| e["event"] == kind);
        if has("handshake") && has("message") && has("connection_ended") {
            break;
        }
    }
    assert!(
        live.running(),
        "wsprobe exited before the end of --duration"
    );
    let events = parse_lines(&seen);
    for kind in [
        "connection",
        "handshake",
        "message",
        "close",
        "connection_ended",
    ] {
        assert!(
            events.iter().any(|e| e["event"] == kind),
            "no {kind} event while capturing; got {seen:#?}"
        );
    }

    let (spawned, ready) = (live.spawned, live.ready);
    let (status, exited, rest, stderr) = live.wait(Duration::from_secs(15));
    assert_eq!(status.code(), Some(0), "stderr: {stderr}");
    // The interface went idle after the exchange; the run still ends on time.
    let total = (exited - spawned).as_secs_f64();
    eprintln!(
        "--duration 4 with traffic then idle: exited {:.3} s after ready, {total:.3} s after spawn",
        (exited - ready).as_secs_f64()
    );
    assert!(total <= duration + 2.0, "ran {total:.3} s");
    assert!((exited - ready).as_secs_f64() >= duration - 0.1);
    seen.extend(rest);
    let events = parse_lines(&seen);

    // Messages: three texts each way, a ping and its pong, and the two closes.
    let msgs: Vec<(&str, &str)> = events
        .iter()
        .filter(|e| e["event"] == "message")
        .map(|e| {
            (
                e["message"]["from"].as_str().unwrap(),
                e["message"]["opcode"].as_str().unwrap(),
            )
        })
        .collect();
    let count = |from: &str, op: &str| msgs.iter().filter(|m| **m == (from, op)).count();
    assert_eq!(count("client", "text"), 3, "{msgs:?}");
    assert_eq!(count("server", "text"), 3, "{msgs:?}");
    assert_eq!(count("client", "ping"), 1, "{msgs:?}");
    assert_eq!(count("server", "pong"), 1, "{msgs:?}");
    let texts: Vec<&str> = events
        .iter()
        .filter(|e| e["event"] == "message" && e["message"]["from"] == "client")
        .filter_map(|e| e["message"]["text"].as_str())
        .collect();
    assert_eq!(texts[..3], ["hello", "second message", "third ✓"]);

    let handshake = events.iter().find(|e| e["event"] == "handshake").unwrap();
    assert_eq!(handshake["handshake"]["status"], 101);
    assert_eq!(handshake["handshake"]["path"], "/live-test");
    assert_eq!(handshake["handshake"]["accept_valid"], true);

    let ended = events
        .iter()
        .find(|e| e["event"] == "connection_ended")
        .unwrap();
    let close = &ended["record"]["close"];
    assert_eq!(close["code"], 1000, "{close}");
    assert_eq!(close["reason"], "bye");
    assert_eq!(close["initiator"], "client");
    assert_eq!(close["outcome"], "clean");

    let summary = events.last().unwrap();
    assert_eq!(summary["event"], "summary", "last line: {summary}");
    assert_eq!(summary["summary"]["outcomes"]["clean"], 1, "{summary}");
    assert_eq!(summary["summary"]["websocket_connections"], 1);
    let input = &summary["inputs"][0];
    assert_eq!(input["path"], "lo");
    assert_eq!(input["format"], "live");
    assert!(input["packets"].as_u64().unwrap() > 10, "{input}");
    assert!(input["dropped_by_kernel"].is_u64(), "{input}");
    assert!(stderr.contains("listening on lo"), "{stderr}");
}

#[test]
fn live_ends_at_duration_on_an_idle_interface() {
    if !can_capture("live_ends_at_duration_on_an_idle_interface") {
        return;
    }
    // A port nobody uses: not one packet matches, so every read would block.
    let (_listener, port) = free_listener();
    let filter = format!("tcp port {port}");
    let live = start_live(&["live", "-i", "lo", "-f", &filter, "--duration", "2"]);
    let (spawned, ready) = (live.spawned, live.ready);
    let (status, exited, out, stderr) = live.wait(Duration::from_secs(10));
    assert_eq!(status.code(), Some(0), "stderr: {stderr}");
    let after_ready = exited - ready;
    let total = exited - spawned;
    eprintln!(
        "idle --duration 2: exited {:.3} s after ready ({:.3} s after spawn)",
        after_ready.as_secs_f64(),
        total.as_secs_f64()
    );
    assert!(
        after_ready >= Duration::from_millis(1900),
        "{after_ready:?}"
    );
    assert!(total <= Duration::from_secs(4), "{total:?}");
    let text = out.join("\n");
    assert!(text.contains("lo (live"), "{text}");
    assert!(stderr.contains("0 packets captured on lo"), "{stderr}");
}

#[test]
fn live_stops_promptly_on_sigint_and_writes_a_pcap_that_analyze_reads_the_same() {
    if !can_capture("live_stops_promptly_on_sigint_and_writes_a_pcap_that_analyze_reads_the_same") {
        return;
    }
    let dir = std::env::temp_dir().join(format!("wsprobe-live-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let base = dir.join("cap.pcap");
    let (listener, port) = free_listener();
    let filter = format!("tcp port {port}");
    let live = start_live(&[
        "live",
        "-i",
        "lo",
        "-f",
        &filter,
        "--format",
        "json",
        "--messages",
        "-w",
        base.to_str().unwrap(),
        "--rotate-mb",
        "1",
        // Room for every packet even on a loaded machine: the comparison needs them all.
        "--buffer-mb",
        "128",
    ]);
    let server = serve_one(listener);
    let big: Vec<Vec<u8>> = (0..2u8)
        .map(|k| (0..1_300_000u32).map(|i| (i % 251) as u8 ^ k).collect())
        .collect();
    client_session(port, &["one", "two"], &big);
    server.join().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let interrupted = Instant::now();
    live.interrupt();
    let (status, exited, out, stderr) = live.wait(Duration::from_secs(10));
    let latency = exited - interrupted;
    eprintln!(
        "SIGINT to exit: {:.1} ms (report included)",
        latency.as_secs_f64() * 1000.0
    );
    assert_eq!(status.code(), Some(0), "stderr: {stderr}");
    assert!(latency < Duration::from_millis(1500), "{latency:?}");
    let live_report: Value = serde_json::from_str(&out.join("\n")).unwrap();
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/schema/report.v1.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&live_report)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "live report vs schema: {errors:#?}");
    assert_eq!(live_report["inputs"][0]["format"], "live");
    assert_eq!(live_report["inputs"][0]["dropped_by_kernel"], 0, "{stderr}");

    let files = rotated_files(&base);
    assert!(
        files.len() >= 3,
        "expected rotation into several files: {files:?}"
    );
    for f in &files[..files.len() - 1] {
        let size = std::fs::metadata(f).unwrap().len();
        assert!(
            ((1 << 20)..(1 << 20) + 300_000).contains(&size),
            "{f:?}: {size}"
        );
    }
    let out = Command::new(env!("CARGO_BIN_EXE_wsprobe"))
        .args(["analyze", "--format", "json", "--messages"])
        .args(&files)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let file_report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let live_conns = live_report["connections"].as_array().unwrap();
    let file_conns = file_report["connections"].as_array().unwrap();
    assert_eq!(live_conns.len(), 1);
    assert_eq!(file_conns.len(), 1);
    let live_msgs = messages(&live_conns[0]);
    assert_eq!(live_msgs.len(), 2 * 2 + 2 * 2 + 2 + 2, "{live_msgs:?}");
    assert_eq!(live_msgs, messages(&file_conns[0]));
    assert_eq!(live_conns[0]["close"], file_conns[0]["close"]);
    assert_eq!(live_conns[0]["close"]["outcome"], "clean");
    assert_eq!(
        live_report["inputs"][0]["packets"].as_u64().unwrap(),
        file_report["inputs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["packets"].as_u64().unwrap())
            .sum::<u64>()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `X.pcap`, `X.1.pcap`, `X.2.pcap`, ... that exist.
fn rotated_files(base: &Path) -> Vec<PathBuf> {
    let mut files = vec![base.to_path_buf()];
    for n in 1.. {
        let f = base.with_file_name(format!("cap.{n}.pcap"));
        if !f.exists() {
            break;
        }
        files.push(f);
    }
    files
}

#[test]
fn live_count_stops_after_n_packets() {
    if !can_capture("live_count_stops_after_n_packets") {
        return;
    }
    let (listener, port) = free_listener();
    let filter = format!("tcp port {port}");
    let live = start_live(&[
        "live",
        "-i",
        "lo",
        "-f",
        &filter,
        "--count",
        "6",
        "--duration",
        "30",
        "--format",
        "json",
    ]);
    let ready = live.ready;
    let server = serve_one(listener);
    client_session(port, &["a", "b", "c"], &[]);
    server.join().unwrap();
    let (status, exited, out, stderr) = live.wait(Duration::from_secs(10));
    assert_eq!(status.code(), Some(0), "stderr: {stderr}");
    assert!(exited - ready < Duration::from_secs(5));
    let report: Value = serde_json::from_str(&out.join("\n")).unwrap();
    assert_eq!(report["inputs"][0]["packets"], 6, "{}", report["inputs"]);
    assert!(stderr.contains("--count reached"), "{stderr}");
}

#[test]
fn live_no_such_interface_exits_2_naming_it() {
    if !live_feature("live_no_such_interface_exits_2_naming_it") {
        return;
    }
    let out = Command::new(env!("CARGO_BIN_EXE_wsprobe"))
        .args(["live", "-i", "no_such_iface0", "--duration", "1"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("no_such_iface0"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    if is_root() {
        assert!(stderr.contains("no such interface"), "{stderr}");
        assert!(
            stderr.contains("lo"),
            "lists interfaces that exist: {stderr}"
        );
    }
}

#[test]
fn live_bad_filter_exits_2_with_libpcaps_message() {
    if !can_capture("live_bad_filter_exits_2_with_libpcaps_message") {
        return;
    }
    let out = Command::new(env!("CARGO_BIN_EXE_wsprobe"))
        .args(["live", "-i", "lo", "-f", "tcp prot 80", "--duration", "1"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("tcp prot 80"), "{stderr}");
    assert!(stderr.contains("does not compile"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
}

#[test]
fn interfaces_lists_loopback() {
    if !live_feature("interfaces_lists_loopback") {
        return;
    }
    let out = Command::new(env!("CARGO_BIN_EXE_wsprobe"))
        .arg("interfaces")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    let lo = text
        .lines()
        .find(|l| l.starts_with("lo "))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(lo.contains("loopback") && lo.contains("127.0.0.1"), "{lo}");
}

/// The server side of one connection: answers the upgrade and echoes one text message.
fn upgrade_and_echo_once(s: &mut TcpStream) {
    let request = read_head(s);
    let key = request
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("sec-websocket-key")
                .then(|| value.trim().to_string())
        })
        .expect("Sec-WebSocket-Key");
    let response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
        derive_accept_key(&key)
    );
    s.write_all(response.as_bytes()).unwrap();
    let (_, opcode, payload) = read_frame(s);
    assert_eq!(opcode, 0x1);
    s.write_all(&encode_frame(true, 0, 0x1, None, &payload))
        .unwrap();
}

/// A client connection: the upgrade (with its own key) and one echoed text message.
fn connect_and_echo_once(port: u16, key: &str, text: &str) -> TcpStream {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let request = format!(
        "GET /restart HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    s.write_all(request.as_bytes()).unwrap();
    assert!(read_head(&mut s).starts_with("HTTP/1.1 101"));
    s.write_all(&encode_frame(true, 0, 0x1, Some(MASK), text.as_bytes()))
        .unwrap();
    assert_eq!(read_frame(&mut s).2, text.as_bytes());
    s
}

/// `live --format jsonl` announces a server restart while it still captures, as soon as the
/// clients are back (a `finding` event with `final: false`), and again, final, at the end.
#[test]
fn live_jsonl_announces_a_restart_as_soon_as_clients_come_back() {
    const TEST: &str = "live_jsonl_announces_a_restart_as_soon_as_clients_come_back";
    if !can_capture(TEST) {
        return;
    }
    // This helper's recording range (25000-25999), always captured with a port filter.
    const PORT: u16 = 25990;
    let Ok(listener) = TcpListener::bind(("127.0.0.1", PORT)) else {
        eprintln!("{TEST}: skipped: port {PORT} is busy");
        return;
    };
    let mut live = start_live(&[
        "live",
        "-i",
        "lo",
        "-f",
        "tcp port 25990",
        "--duration",
        "7",
        "--format",
        "jsonl",
    ]);
    const CLIENTS: usize = 3;
    let server = std::thread::spawn(move || {
        let mut first = Vec::new();
        for _ in 0..CLIENTS {
            let (mut s, _) = listener.accept().unwrap();
            upgrade_and_echo_once(&mut s);
            first.push(s);
        }
        // The "crash": every socket closed at once, no Close frame.
        drop(first);
        let mut again = Vec::new();
        for _ in 0..CLIENTS {
            let (mut s, _) = listener.accept().unwrap();
            upgrade_and_echo_once(&mut s);
            again.push(s);
        }
        for mut s in again {
            let mut rest = Vec::new();
            let _ = s.read_to_end(&mut rest);
        }
    });
    let keys = [
        "AAAAAAAAAAAAAAAAAAAAAA==",
        "BBBBBBBBBBBBBBBBBBBBBB==",
        "CCCCCCCCCCCCCCCCCCCCCC==",
    ];
    let mut clients: Vec<TcpStream> = keys
        .iter()
        .map(|k| connect_and_echo_once(PORT, k, "before"))
        .collect();
    for s in &mut clients {
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest); // the server's FIN
    }
    drop(clients);
    std::thread::sleep(Duration::from_millis(300));
    let again: Vec<TcpStream> = keys
        .iter()
        .map(|k| connect_and_echo_once(PORT, k, "back"))
        .collect();
    let back = Instant::now();

    let mut seen = Vec::new();
    let mut announced = None;
    while Instant::now() < back + Duration::from_secs(4) {
        let Some(line) = live.line(Duration::from_millis(100)) else {
            continue;
        };
        let event: Value = serde_json::from_str(&line).unwrap();
        seen.push(line);
        if event["event"] == "finding" {
            announced = Some((Instant::now(), event));
            break;
        }
    }
    let (at, early) = announced.unwrap_or_else(|| panic!("no finding while capturing: {seen:#?}"));
    assert!(live.running(), "announced only at the end");
    assert_eq!(early["final"], false, "{early}");
    assert_eq!(early["finding"]["id"], "server_restart", "{early}");
    assert_eq!(early["finding"]["parameters"]["server"], "127.0.0.1:25990");
    assert!(
        early["finding"]["parameters"]["reconnected"]
            .as_u64()
            .unwrap()
            >= 1
    );
    eprintln!(
        "{TEST}: announced {:.2} s after the clients came back",
        (at - back).as_secs_f64()
    );
    // The clients leave normally (Close 1000), then the server side closes.
    for mut s in again {
        let mut close = 1000u16.to_be_bytes().to_vec();
        close.extend_from_slice(b"done");
        s.write_all(&encode_frame(true, 0, 0x8, Some(MASK), &close))
            .unwrap();
        let _ = s.shutdown(std::net::Shutdown::Write);
    }
    server.join().unwrap();

    let (status, _, rest, stderr) = live.wait(Duration::from_secs(15));
    assert_eq!(status.code(), Some(0), "stderr: {stderr}");
    seen.extend(rest);
    let events = parse_lines(&seen);
    let last = events.last().unwrap();
    assert_eq!(last["event"], "summary");
    let finals: Vec<&Value> = events
        .iter()
        .filter(|e| e["event"] == "finding" && e["final"] == true)
        .collect();
    assert_eq!(finals.len(), 1, "{finals:#?}");
    assert_eq!(finals[0]["finding"]["id"], "server_restart");
    assert_eq!(finals[0]["finding"]["parameters"]["reconnected"], CLIENTS);
    assert_eq!(finals[0]["finding"]["parameters"]["connections"], CLIENTS);
}

/// `live --keylog FILE` re-reads the key log as it grows: the file is empty when the capture
/// starts, and a real TLS client (Python's ssl, `SSLContext.keylog_filename`) appends its
/// secrets while it talks wss to a server on loopback. The connection is decrypted as it runs:
/// handshake, the texts byte for byte as the client logged them, the Close.
#[test]
fn live_rereads_a_key_log_that_grows_while_capturing() {
    let test = "live_rereads_a_key_log_that_grows_while_capturing";
    if !can_capture(test) {
        return;
    }
    let tools = ["python3", "openssl"];
    if let Some(missing) = tools.iter().find(|t| {
        Command::new(t)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_err()
    }) {
        eprintln!("{test}: skipped: {missing} is not installed");
        return;
    }
    let dir = crate::util::target_dir().join(format!("live-keylog-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key, keylog) = (
        dir.join("cert.pem"),
        dir.join("key.pem"),
        dir.join("keys.log"),
    );
    let made = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args(["-nodes", "-subj", "/CN=localhost", "-days", "2", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(made.success());
    std::fs::write(&keylog, b"").unwrap();
    let (listener, port) = free_listener();
    drop(listener);
    let filter = format!("tcp port {port}");
    let keylog_arg = keylog.to_string_lossy().into_owned();
    let mut live = start_live(&[
        "live",
        "-i",
        "lo",
        "-f",
        &filter,
        "--keylog",
        &keylog_arg,
        "--duration",
        "4",
        "--format",
        "jsonl",
    ]);
    let texts = ["hello over tls", "second ✓"];
    let pair = Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/support/wss_pair.py"
        ))
        .arg(port.to_string())
        .args([&cert, &key, &keylog])
        .args(texts)
        .output()
        .unwrap();
    assert!(
        pair.status.success(),
        "wss_pair.py: {}",
        String::from_utf8_lossy(&pair.stderr)
    );
    let logged = parse_lines(
        &String::from_utf8(pair.stdout)
            .unwrap()
            .lines()
            .map(String::from)
            .collect::<Vec<_>>(),
    );
    let sent: Vec<&str> = logged.iter().filter_map(|l| l["sent"].as_str()).collect();
    assert_eq!(sent, texts);
    assert!(
        std::fs::metadata(&keylog).unwrap().len() > 0,
        "the client wrote no secrets"
    );

    // The messages come out while the capture still runs.
    let mut seen = Vec::new();
    let until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < until {
        let Some(line) = live.line(Duration::from_millis(100)) else {
            continue;
        };
        seen.push(line);
        if parse_lines(&seen)
            .iter()
            .any(|e| e["event"] == "connection_ended")
        {
            break;
        }
    }
    assert!(
        live.running(),
        "wsprobe exited before the end of --duration"
    );
    let (status, _, rest, stderr) = live.wait(Duration::from_secs(15));
    assert_eq!(status.code(), Some(0), "stderr: {stderr}");
    seen.extend(rest);
    let events = parse_lines(&seen);
    let client_texts: Vec<&str> = events
        .iter()
        .filter(|e| e["event"] == "message" && e["message"]["from"] == "client")
        .filter(|e| e["message"]["opcode"] == "text")
        .filter_map(|e| e["message"]["text"].as_str())
        .collect();
    assert_eq!(client_texts, texts, "{seen:#?}\n{stderr}");
    let echoed = events
        .iter()
        .filter(|e| e["event"] == "message" && e["message"]["from"] == "server")
        .filter(|e| e["message"]["opcode"] == "text")
        .count();
    assert_eq!(echoed, texts.len(), "{seen:#?}\n{stderr}");
    let ended = events
        .iter()
        .find(|e| e["event"] == "connection_ended")
        .expect("connection_ended");
    let record = &ended["record"];
    assert_eq!(record["handshake"]["path"], "/over-tls");
    assert_eq!(record["tls"]["decrypted"], true, "{:#}", record["tls"]);
    assert_eq!(
        record["tls"]["version"],
        logged.iter().find_map(|l| l.get("tls")).cloned().unwrap()
    );
    assert_eq!(record["close"]["code"], 1000);
    assert_eq!(record["close"]["outcome"], "clean");
    assert!(
        !diag_ids_of(record).iter().any(|d| d == "tls_no_key"),
        "{:#}",
        record["diagnostics"]
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn diag_ids_of(record: &Value) -> Vec<String> {
    record["diagnostics"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|d| d["id"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}
