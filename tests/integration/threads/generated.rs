//! `--threads N` on generated captures with thousands of connections: interleaved packet by
//! packet and open at once, finished together by idle sweeps and the tables' caps, and plain
//! requests judged by another connection's upgrade (each checked against what was generated).

use std::path::Path;
use std::time::Instant;

use flate2::{Compress, Compression, FlushCompress};
use serde_json::Value;
use wsprobe::ws::frame::encode_frame;

use super::{Case, assert_same_reports, json_report};
use crate::util::*;

const T0: f64 = 1_700_000_000.0;

/// permessage-deflate as its sender writes it (RFC 7692 §7.2.1): a sync flush, without the
/// trailing 00 00 ff ff.
fn deflate(z: &mut Compress, data: &[u8]) -> Vec<u8> {
    if data.is_empty() {
        // A flush after a flush writes nothing; an empty stored block is the empty message
        // (RFC 7692 §7.2.3.6).
        return vec![0];
    }
    let start = z.total_in();
    let mut out = Vec::with_capacity(data.len() + 64);
    loop {
        out.reserve(1024);
        let done = (z.total_in() - start) as usize;
        z.compress_vec(&data[done..], &mut out, FlushCompress::Sync)
            .unwrap();
        if (z.total_in() - start) as usize == data.len() && out.len() < out.capacity() {
            break;
        }
    }
    assert!(out.ends_with(&[0, 0, 0xff, 0xff]));
    out.truncate(out.len() - 4);
    out
}

/// One direction's permessage-deflate compressor.
struct Deflater {
    z: Compress,
    /// `*_no_context_takeover`: a fresh window for each message.
    reset_each: bool,
}

impl Deflater {
    fn new(reset_each: bool) -> Deflater {
        Deflater {
            z: Compress::new(Compression::fast(), false),
            reset_each,
        }
    }
}

/// A WebSocket endpoint pair's state while a conversation is generated.
struct Ws<'a> {
    c: &'a mut Conv,
    rng: &'a mut Rng,
    /// (client's, server's) compressors when permessage-deflate was negotiated.
    deflate: Option<(Deflater, Deflater)>,
    /// Compressed data messages sent.
    compressed: usize,
    /// Data messages sent.
    messages: usize,
}

impl Ws<'_> {
    /// A data message, compressed at random when deflate is on, cut into 1-3 frames.
    fn message(&mut self, from_client: bool, text: bool, payload: &[u8]) {
        let compress = self.deflate.is_some() && self.rng.below(4) != 0;
        let body = match &mut self.deflate {
            Some((client, server)) if compress => {
                let d = if from_client { client } else { server };
                if d.reset_each {
                    d.z.reset();
                }
                deflate(&mut d.z, payload)
            }
            _ => payload.to_vec(),
        };
        let pieces = 1 + self.rng.below(3);
        let cut: Vec<usize> = {
            let mut cut: Vec<usize> = (1..pieces)
                .map(|_| self.rng.below(body.len() + 1))
                .collect();
            cut.sort_unstable();
            cut.push(body.len());
            cut
        };
        let mut bytes = Vec::new();
        let mut from = 0;
        for (k, &to) in cut.iter().enumerate() {
            let (opcode, rsv) = match k {
                0 => (if text { 1 } else { 2 }, if compress { 0b100 } else { 0 }),
                _ => (0, 0),
            };
            let mask = from_client.then(|| (self.rng.next() as u32).to_be_bytes());
            bytes.extend(encode_frame(
                k == cut.len() - 1,
                rsv,
                opcode,
                mask,
                &body[from..to],
            ));
            from = to;
        }
        self.c.send(from_client, &bytes);
        self.messages += 1;
        self.compressed += usize::from(compress);
    }

    fn control(&mut self, from_client: bool, opcode: u8, payload: &[u8]) {
        let mask = from_client.then(|| (self.rng.next() as u32).to_be_bytes());
        self.c
            .send(from_client, &encode_frame(true, 0, opcode, mask, payload));
    }

    /// `n` random steps: text and binary messages both ways, pings answered, short pauses.
    fn chat(&mut self, id: usize, n: usize) {
        for step in 0..n {
            let from_client = self.rng.below(2) == 0;
            match self.rng.below(10) {
                0 => {
                    let payload = format!("ping {id}.{step}");
                    self.control(from_client, 9, payload.as_bytes());
                    self.control(!from_client, 10, payload.as_bytes());
                }
                1..=6 => {
                    // Now and then one of many segments.
                    let repeat = match self.rng.below(15) {
                        0 => 200 + self.rng.below(800),
                        _ => self.rng.below(40),
                    };
                    let fill = "abcdefgh".repeat(repeat);
                    let text = format!("{{\"conn\":{id},\"step\":{step},\"fill\":\"{fill}\"}}");
                    self.message(from_client, true, text.as_bytes());
                }
                _ => {
                    let len = self.rng.below(400);
                    let payload = self.rng.bytes(len);
                    self.message(from_client, false, &payload);
                }
            }
            let pause = self.rng.below(1500) as f64 * 1e-3;
            self.c.wait(pause);
        }
    }

    fn close(&mut self, from_client: bool, code: u16) {
        let payload = close_payload(code, "bye");
        self.control(from_client, 8, &payload);
        self.control(!from_client, 8, &payload);
        self.c.fin(!from_client);
        self.c.fin(from_client);
    }
}

/// Upgrade request and 101, with permessage-deflate when `deflate` is `Some(no_takeover)`.
fn upgrade(c: &mut Conv, path: &str, deflate: Option<bool>) {
    let (offer, answer) = match deflate {
        None => (String::new(), String::new()),
        Some(false) => (
            "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n".into(),
            "Sec-WebSocket-Extensions: permessage-deflate\r\n".into(),
        ),
        Some(true) => (
            "Sec-WebSocket-Extensions: permessage-deflate\r\n".into(),
            "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover\r\n".into(),
        ),
    };
    c.send(true, &upgrade_request(path, &offer));
    c.send(false, &upgrade_response(&answer));
}

/// What a generated capture holds, checked against its single-threaded report.
#[derive(Debug, Default)]
struct Expected {
    /// Connections reported.
    connections: u64,
    /// Of them, upgraded.
    websocket: u64,
    /// Of them, with permessage-deflate.
    deflate: u64,
    /// Data messages sent, and of them compressed, on connections with no lost segment.
    messages: u64,
    compressed: u64,
    /// Plain HTTP connections (not reported).
    http: u64,
}

/// Moves one data packet after the next (keeping the times in order) or drops one: TCP work
/// for the reassembler. Only after the handshake's packets (`from`).
fn disorder(c: &mut Conv, rng: &mut Rng, from: usize, drop: bool) -> bool {
    let data: Vec<usize> = (from..c.packets.len().saturating_sub(1))
        .filter(|&k| !c.packets[k].payload.is_empty())
        .collect();
    if data.is_empty() {
        return false;
    }
    let k = data[rng.below(data.len())];
    if drop {
        c.packets.remove(k);
    } else {
        let (t0, t1) = (c.packets[k].ts, c.packets[k + 1].ts);
        c.packets.swap(k, k + 1);
        c.packets[k].ts = t0;
        c.packets[k + 1].ts = t1;
    }
    true
}

/// `n` WebSocket connections, in threes that start at the same microsecond, a third with
/// permessage-deflate (with and without context takeover), over a thousand open at once (each
/// lives a few seconds, one starts every 3 ms), ending by Close, RST, FIN or not at all; some
/// pause past the hibernation delay, some lose or reorder a segment, some 4-tuples are reused,
/// plus plain HTTP and refused upgrades among them. Packets interleave by time.
fn busy_capture(n: usize) -> (Vec<u8>, Expected) {
    let mut rng = Rng(0x7468_7265_6164_7331);
    let servers = [
        "10.0.0.2:80",
        "10.0.0.2:8080",
        "10.0.0.3:443",
        "192.168.7.9:9001",
    ];
    let mut convs = Vec::new();
    let mut want = Expected::default();
    for i in 0..n {
        let port = 1024 + rng.below(60_000);
        let (client, server) = if i % 16 == 5 {
            (
                format!("[fd00::{i:x}]:{port}"),
                "[fd00::2]:8080".to_string(),
            )
        } else {
            (
                format!(
                    "10.{}.{}.{}:{port}",
                    20 + (i >> 16),
                    (i >> 8) & 255,
                    i & 255
                ),
                servers[i % servers.len()].to_string(),
            )
        };
        let mut c = Conv::new(&client, &server);
        c.time = T0 + (i / 3) as f64 * 0.009;
        c.client_next = rng.next() as u32;
        c.server_next = rng.next() as u32;
        c.mss = [1448, 1448, 536, 160][rng.below(4)];
        c.tcp_open();
        match rng.below(25) {
            0 => {
                // Ordinary web traffic: counted, not reported.
                c.send(
                    true,
                    b"GET /index.html HTTP/1.1\r\nHost: example.test\r\n\r\n",
                );
                c.send(
                    false,
                    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/html\r\n\r\nhello",
                );
                c.fin(true).fin(false);
                want.http += 1;
                convs.push(c);
                continue;
            }
            1 => {
                c.send(true, &upgrade_request(&format!("/ws/{}", i % 7), ""));
                c.send(
                    false,
                    b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n",
                );
                c.fin(false).fin(true);
                want.connections += 1;
                convs.push(c);
                continue;
            }
            _ => {}
        }
        let deflate = match rng.below(6) {
            0 | 1 => Some(false),
            2 => Some(true),
            _ => None,
        };
        upgrade(&mut c, &format!("/ws/{}", i % 7), deflate);
        let handshake_packets = c.packets.len();
        let mut ws = Ws {
            c: &mut c,
            rng: &mut rng,
            deflate: deflate
                .map(|no_takeover| (Deflater::new(no_takeover), Deflater::new(no_takeover))),
            compressed: 0,
            messages: 0,
        };
        let steps = 2 + ws.rng.below(6);
        ws.chat(i, steps);
        if ws.rng.below(20) == 0 {
            // Quiet past the hibernation delay (packed decoders under pressure), then more.
            ws.c.wait(6.0 + ws.rng.below(3000) as f64 * 1e-3);
            ws.chat(i, 3);
        }
        let ending = ws.rng.below(20);
        let from_client = ws.rng.below(2) == 0;
        match ending {
            0..=8 => ws.close(from_client, [1000, 1001, 1008, 4000][ending % 4]),
            9..=12 => {
                ws.c.rst(from_client);
            }
            13..=15 => {} // still open at the end of the capture
            _ => {
                ws.c.fin(from_client).fin(!from_client);
            }
        }
        let (messages, compressed) = (ws.messages, ws.compressed);
        let lost = match rng.below(12) {
            0 => disorder(&mut c, &mut rng, handshake_packets, true),
            1 => {
                disorder(&mut c, &mut rng, handshake_packets, false);
                false
            }
            _ => false,
        };
        if !lost {
            want.messages += messages as u64;
            want.compressed += compressed as u64;
        }
        want.connections += 1;
        want.websocket += 1;
        want.deflate += u64::from(deflate.is_some());
        let reuse = ending <= 8 && i % 10 == 0;
        let end = c.time;
        convs.push(c);
        if reuse {
            // The same 4-tuple again, after a clean end: a new connection.
            let mut again = Conv::new(&client, &server);
            again.time = end + 0.5;
            again.client_next = rng.next() as u32;
            again.server_next = rng.next() as u32;
            again.tcp_open();
            upgrade(&mut again, "/again", None);
            let mut ws = Ws {
                c: &mut again,
                rng: &mut rng,
                deflate: None,
                compressed: 0,
                messages: 0,
            };
            ws.chat(i, 2);
            ws.close(true, 1000);
            want.messages += ws.messages as u64;
            want.connections += 1;
            want.websocket += 1;
            convs.push(again);
        }
    }
    (pcap_merged(&convs, Link::Ethernet), want)
}

/// Checks the report of a generated capture against what was generated.
fn check_counts(label: &str, report: &Value, want: &Expected) {
    let summary = &report["summary"];
    let conns = report["connections"].as_array().unwrap();
    assert_eq!(
        summary["connections"], want.connections,
        "{label}: {summary:#}"
    );
    assert_eq!(conns.len() as u64, want.connections, "{label}");
    assert_eq!(summary["websocket_connections"], want.websocket, "{label}");
    assert_eq!(summary["other_tcp"]["http"], want.http, "{label}");
    let deflate = conns
        .iter()
        .filter(|c| {
            c["handshake"]["extensions"]
                .as_str()
                .is_some_and(|e| e.contains("permessage-deflate"))
        })
        .count() as u64;
    assert_eq!(deflate, want.deflate, "{label}: connections with deflate");
    let ids: Vec<u64> = conns.iter().map(|c| c["id"].as_u64().unwrap()).collect();
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), ids.len(), "{label}: ids are unique");
}

/// Data messages listed with --messages, and of them the compressed ones inflated to text.
fn listed_messages(report: &Value) -> (u64, u64) {
    let mut all = 0;
    let mut inflated = 0;
    for conn in report["connections"].as_array().unwrap() {
        for m in conn["messages"].as_array().into_iter().flatten() {
            if m["opcode"] == "text" || m["opcode"] == "binary" {
                all += 1;
                if m["compressed"] == true
                    && m["text"].as_str().is_some_and(|t| t.contains("\"conn\""))
                {
                    inflated += 1;
                }
            }
        }
    }
    (all, inflated)
}

fn generated_cases(label: &str, path: &Path, options: &[&[&str]]) -> Vec<Case> {
    let mut cases = Vec::new();
    for format in ["json", "jsonl"] {
        for extra in options {
            let args = [&["--format", format][..], extra].concat();
            cases.push(Case::new(label, &args, &[path]));
        }
    }
    cases
}

const GENERATED_THREADS: [Option<u16>; 3] = [Some(1), Some(2), Some(4)];

#[test]
fn thousands_of_interleaved_connections_give_the_single_threaded_report_on_any_number_of_threads() {
    let started = Instant::now();
    let (bytes, want) = busy_capture(3000);
    let path = temp_file(&bytes, "pcap");
    eprintln!(
        "busy capture: {} bytes, {want:?}, built in {:.1} s",
        bytes.len(),
        started.elapsed().as_secs_f64()
    );
    let label = "3,000 interleaved connections";
    let cases: Vec<Case> = [
        &["--format", "json"][..],
        &["--format", "json", "--messages"],
        &["--format", "jsonl"],
        &["--format", "jsonl", "--messages", "--frames"],
        // The cap on idle connections (applied across the workers, in order) and a filter:
        // what they cut or keep must not depend on which thread a connection was on.
        &[
            "--format",
            "json",
            "--messages",
            "--max-idle-connections",
            "20",
            "--fail-on",
            "warning",
        ],
        &[
            "--format",
            "jsonl",
            "--messages",
            "--address",
            "10.0.0.3:443",
        ],
    ]
    .iter()
    .map(|args| Case::new(label, args, &[&path]))
    .collect();
    let inspected = assert_same_reports(&cases, &GENERATED_THREADS, |case, run| {
        let lines = run.stdout.split(|&b| b == b'\n');
        let servers = lines
            .filter(|l| l.starts_with(b"{\"event\":\"connection\","))
            .map(|l| serde_json::from_slice::<Value>(l).unwrap()["server"]["port"].clone())
            .collect::<Vec<Value>>();
        (json_report(case, run), run.code, servers)
    });
    let reports: Vec<&Option<Value>> = inspected.iter().map(|i| &i.0).collect();
    let plain = reports[0].as_ref().unwrap();
    check_counts("busy", plain, &want);
    assert!(
        plain["summary"]["messages"].as_u64().unwrap() >= want.messages,
        "{:#}",
        plain["summary"]
    );
    let (listed, inflated) = listed_messages(reports[1].as_ref().unwrap());
    eprintln!("busy: {listed} data messages listed, {inflated} compressed texts inflated");
    assert!(listed >= want.messages, "{listed} listed, {want:?}");
    assert!(
        inflated * 3 >= want.compressed,
        "{inflated} compressed texts inflated, {want:?}"
    );
    // The caps did cut something (else those cases compare nothing new).
    let capped = reports[4].as_ref().unwrap().to_string();
    assert!(capped.contains("--max-idle-connections"), "no idle cap");
    assert_eq!(inspected[4].1, Some(1), "--fail-on warning");
    // jsonl `connection` events (first line of each connection) of the one server filtered.
    let servers = &inspected[5].2;
    assert!(
        servers.len() > 100 && servers.iter().all(|p| *p == 443),
        "--address: {} connections",
        servers.len()
    );
    shared_caps_are_said(&path);
    eprintln!("busy: {:.1} s in all", started.elapsed().as_secs_f64());
}

/// The memory caps are budgets the workers share: once one is reached, what it stops depends
/// on their timing (src/pipeline/sharded.rs). Exact on one thread; on several, the run still
/// covers every connection, keeps within the caps, and says that it reached them.
fn shared_caps_are_said(path: &Path) {
    let caps = [
        "--max-connections",
        "1000",
        "--max-inflaters",
        "40",
        "--max-listed-bytes",
        "400000",
    ];
    for threads in ["1", "2"] {
        let out = wsprobe()
            .args([
                "analyze",
                "--format",
                "json",
                "--messages",
                "--threads",
                threads,
            ])
            .args(caps)
            .arg(path)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "--threads {threads}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        let text = report.to_string();
        assert!(
            text.contains("--max-connections"),
            "--threads {threads}: no cut"
        );
        assert!(
            report["summary"]["tcp_connections"].as_u64().unwrap() >= 3000,
            "--threads {threads}"
        );
        if threads == "1" {
            assert!(stderr.is_empty(), "{stderr}");
        } else {
            assert!(
                stderr.contains(
                    "--max-connections, --max-inflaters, --max-listed-bytes reached with 2 threads"
                ),
                "{stderr}"
            );
        }
    }
}

/// 2,000 upgraded connections in bursts of 200 that start at the same microsecond and go silent
/// (a quarter with deflate), beside two that ping every second until the end so that sweeps
/// run: idle sweeps finish a burst at once, and with `--max-idle-connections 100` the idle cap
/// cuts hundreds at each sweep, ties broken by id. A late packet on one connection per burst,
/// after it was stopped, starts a new (mid-stream) connection.
fn silent_capture(bursts: usize, per_burst: usize) -> (Vec<u8>, u64) {
    let mut rng = Rng(0x5153);
    let mut convs = Vec::new();
    let end = T0 + bursts as f64 * 12.0 + 60.0;
    for b in 0..bursts {
        for j in 0..per_burst {
            let mut c = Conv::new(
                &format!("10.40.{b}.{}:{}", j % 250, 30000 + j),
                "10.0.0.9:8080",
            );
            c.time = T0 + b as f64 * 12.0;
            c.tcp_open();
            let deflate = (j % 4 == 0).then_some(false);
            upgrade(&mut c, &format!("/quiet/{b}"), deflate);
            let mut ws = Ws {
                c: &mut c,
                rng: &mut rng,
                deflate: deflate.map(|t| (Deflater::new(t), Deflater::new(t))),
                compressed: 0,
                messages: 0,
            };
            ws.message(true, true, format!("hello {b}.{j}").as_bytes());
            ws.message(false, true, format!("welcome {b}.{j}").as_bytes());
            if j == 0 {
                ws.c.time = end - 2.0;
                ws.message(false, true, b"late");
            }
            convs.push(c);
        }
    }
    for h in 0..2 {
        let mut c = Conv::new(&format!("10.41.0.{h}:5000"), "10.0.0.9:8080");
        c.time = T0 - 1.0;
        c.tcp_open();
        upgrade(&mut c, "/heartbeat", None);
        let mut ws = Ws {
            c: &mut c,
            rng: &mut rng,
            deflate: None,
            compressed: 0,
            messages: 0,
        };
        while ws.c.time < end {
            ws.control(true, 9, b"hb");
            ws.control(false, 10, b"hb");
            ws.c.wait(1.0);
        }
        ws.close(true, 1000);
        convs.push(c);
    }
    let reported = (bursts * per_burst + 2 + bursts) as u64;
    (pcap_merged(&convs, Link::Ethernet), reported)
}

#[test]
fn connections_finished_together_by_idle_sweeps_and_the_idle_cap_give_the_single_threaded_report() {
    let started = Instant::now();
    let (bytes, reported) = silent_capture(10, 200);
    let path = temp_file(&bytes, "pcap");
    let idle = ["--idle-timeout", "30"];
    let capped = ["--idle-timeout", "30", "--max-idle-connections", "100"];
    let cases: Vec<Case> = [&idle[..], &capped[..]]
        .iter()
        .flat_map(|limits| {
            [
                &["--format", "json"][..],
                &["--format", "json", "--messages"],
                &["--format", "jsonl", "--messages"],
            ]
            .map(|format| {
                Case::new(
                    "2,000 silent connections",
                    &[format, limits].concat(),
                    &[&path],
                )
            })
        })
        .collect();
    let reports = assert_same_reports(&cases, &GENERATED_THREADS, json_report);
    for (k, cap) in [(0, false), (3, true)] {
        let report = reports[k].as_ref().unwrap();
        let conns = report["connections"].as_array().unwrap();
        assert_eq!(conns.len() as u64, reported, "{}", report["summary"]);
        let stopped = conns
            .iter()
            .filter(|c| c["timing"]["ended_by"] == "stopped")
            .count();
        assert!(stopped >= 2000, "{stopped} stopped");
        let text = report.to_string();
        let by_cap = text.matches("--max-idle-connections").count();
        if cap {
            assert!(by_cap >= 1000, "{by_cap} cut by the idle cap");
        } else {
            assert_eq!(by_cap, 0);
            assert!(text.matches("(--idle-timeout)").count() >= 2000);
        }
    }
    eprintln!("silent: {:.1} s in all", started.elapsed().as_secs_f64());
}

/// A plain GET exchange on its own connection.
fn plain_get(client: &str, start: f64, path: &str, answer: &str) -> Conv {
    let mut c = Conv::new(client, "10.0.0.5:80");
    c.time = start;
    c.tcp_open();
    c.send(
        true,
        format!("GET {path} HTTP/1.1\r\nHost: example.test\r\nAccept: */*\r\n\r\n").as_bytes(),
    );
    c.send(false, answer.as_bytes());
    c.fin(true).fin(false);
    c
}

const NOT_FOUND: &str = "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
const FORBIDDEN: &str = "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n";
const UPGRADE_REQUIRED: &str = "HTTP/1.1 426 Upgrade Required\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nContent-Length: 0\r\n\r\n";
const OK: &str = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

/// Plain GETs whose report depends on other connections (`src/connection/http1.rs`): a refusal
/// (404, 403) of a host/path that another connection upgrades earlier is reported at once, one
/// that another connection upgrades later is reported at the end of the capture, one of a path
/// never upgraded is not reported; a 426 (proxy-strips-upgrade.pcap's story) is reported either
/// way. Among 400 other WebSocket connections.
fn cross_connection_capture() -> (Vec<u8>, u64, u64) {
    let mut rng = Rng(0x426);
    let mut convs = Vec::new();
    let mut reported = 0;
    let mut refused_reported = 0;
    for i in 0..400 {
        let mut c = Conv::new(
            &format!("10.50.{}.{}:{}", i >> 8, i & 255, 20000 + i),
            "10.0.0.5:80",
        );
        c.time = T0 + i as f64 * 0.05;
        c.tcp_open();
        upgrade(&mut c, &format!("/bg/{}", i % 50), None);
        let mut ws = Ws {
            c: &mut c,
            rng: &mut rng,
            deflate: None,
            compressed: 0,
            messages: 0,
        };
        ws.chat(i, 3);
        ws.close(i % 2 == 0, 1000);
        convs.push(c);
        reported += 1;
    }
    for k in 0..30 {
        let t = T0 + 1.0 + k as f64 * 0.5;
        let client = |n: usize| format!("10.51.{n}.{k}:{}", 40000 + k);
        // Upgraded first, refused after.
        let mut up = Conv::new(&client(0), "10.0.0.5:80");
        up.time = t;
        up.tcp_open();
        upgrade(&mut up, &format!("/early/{k}"), None);
        up.send(true, &client_frame(true, 1, b"subscribe"));
        up.wait(20.0);
        up.send(false, &server_frame(true, 1, b"event"));
        up.fin(true).fin(false);
        convs.push(up);
        convs.push(plain_get(
            &client(1),
            t + 2.0,
            &format!("/early/{k}?token=1"),
            NOT_FOUND,
        ));
        convs.push(plain_get(
            &client(2),
            t + 3.0,
            &format!("/early/{k}"),
            UPGRADE_REQUIRED,
        ));
        // Refused first, upgraded after (the refused one then ends long before).
        convs.push(plain_get(&client(3), t, &format!("/late/{k}"), FORBIDDEN));
        convs.push(plain_get(
            &client(4),
            t + 0.1,
            &format!("/late/{k}"),
            UPGRADE_REQUIRED,
        ));
        let mut up = Conv::new(&client(5), "10.0.0.5:80");
        up.time = t + 10.0;
        up.tcp_open();
        upgrade(&mut up, &format!("/late/{k}"), None);
        up.send(true, &client_frame(true, 1, b"hi"));
        up.send(true, &client_frame(true, 8, &close_payload(1000, "")));
        up.send(false, &server_frame(true, 8, &close_payload(1000, "")));
        up.fin(false).fin(true);
        convs.push(up);
        // Never upgraded, or not refused: web traffic, not reported.
        convs.push(plain_get(
            &client(6),
            t + 1.0,
            &format!("/never/{k}"),
            FORBIDDEN,
        ));
        convs.push(plain_get(&client(7), t + 1.0, &format!("/late/{k}"), OK));
        reported += 6;
        refused_reported += 4;
    }
    (
        pcap_merged(&convs, Link::Ethernet),
        reported,
        refused_reported,
    )
}

#[test]
fn refused_requests_judged_by_another_connections_upgrade_give_the_single_threaded_report() {
    let started = Instant::now();
    let (bytes, reported, refused) = cross_connection_capture();
    let path = temp_file(&bytes, "pcap");
    let cases = generated_cases("refused beside upgraded", &path, &[&[], &["--messages"]]);
    let reports = assert_same_reports(&cases, &GENERATED_THREADS, json_report);
    let report = reports[0].as_ref().unwrap();
    let conns = report["connections"].as_array().unwrap();
    assert_eq!(conns.len() as u64, reported, "{:#}", report["summary"]);
    let not_websocket: Vec<&str> = conns
        .iter()
        .filter(|c| c["close"]["outcome"] == "not_websocket")
        .map(|c| c["handshake"]["path"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(not_websocket.len() as u64, refused, "{not_websocket:?}");
    assert!(
        not_websocket.iter().all(|p| !p.starts_with("/never/")),
        "{not_websocket:?}"
    );
    for prefix in ["/early/", "/late/"] {
        assert_eq!(
            not_websocket
                .iter()
                .filter(|p| p.starts_with(prefix))
                .count(),
            60,
            "{prefix}: {not_websocket:?}"
        );
    }
    eprintln!(
        "cross-connection: {:.1} s in all",
        started.elapsed().as_secs_f64()
    );
}
