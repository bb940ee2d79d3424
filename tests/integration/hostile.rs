//! Crafted attacks on the analyser: absurd frame lengths, a decompression bomb, fragment and
//! control-frame storms, garbage after an upgrade, a SYN flood, a head that never ends. Each
//! runs the binary under a deadline and checks: exit 0 or 1 (no panic, no signal), the time,
//! the child's peak RSS (`wait4`'s rusage, so only that child is measured) below 512 MiB, and
//! that the report says what happened.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::*;

/// Peak RSS every attack must stay under.
const MAX_RSS_KIB: i64 = 512 * 1024;

/// What one run of the binary did.
pub struct Run {
    pub code: Option<i32>,
    pub signal: Option<i32>,
    /// Peak RSS of the wsprobe process (KiB), plus at most the few MiB of the probe that
    /// started it.
    pub max_rss_kib: i64,
    pub elapsed: Duration,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

/// Environment variable that turns `rss_probe` into the measuring parent (see `run_measured`).
const PROBE_ENV: &str = "WSPROBE_RSS_PROBE";

/// Runs `wsprobe analyze ARGS FILE` and measures its peak RSS and time.
///
/// A child's `ru_maxrss` starts from the RSS of the process that spawned it (Linux records the
/// old address space's high-water mark at exec, and `posix_spawn` shares the parent's until
/// then), so measuring from this test process would add its own memory. Instead this test
/// binary is started again, running only `rss_probe`, which spawns wsprobe, waits with `wait4`
/// (that child's rusage alone), kills it past the deadline, and prints one line of results.
pub fn run_measured(path: &Path, args: &[&str], timeout: Duration) -> Run {
    let out_path = path.with_extension("stdout");
    let err_path = path.with_extension("stderr");
    let mut command = vec![
        format!("{}", timeout.as_millis()),
        out_path.display().to_string(),
        err_path.display().to_string(),
        "analyze".to_string(),
    ];
    command.extend(args.iter().map(|a| a.to_string()));
    command.push(path.display().to_string());
    let probe = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "hostile::rss_probe",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(PROBE_ENV, command.join("\u{1f}"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&probe.stdout);
    let line = text
        .lines()
        .find_map(|l| l.split_once("rss-probe ").map(|(_, rest)| rest))
        .unwrap_or_else(|| {
            panic!(
                "no probe result: {text} {}",
                String::from_utf8_lossy(&probe.stderr)
            )
        });
    let fields: Vec<i64> = line.split(' ').map(|f| f.parse().unwrap()).collect();
    let [status, max_rss_kib, micros, timed_out] = fields[..] else {
        panic!("bad probe line {line:?}")
    };
    assert_eq!(
        timed_out,
        0,
        "{}: still running after {timeout:?} (args {args:?})",
        path.display()
    );
    let status = status as libc::c_int;
    let run = Run {
        code: libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status)),
        signal: libc::WIFSIGNALED(status).then(|| libc::WTERMSIG(status)),
        max_rss_kib,
        elapsed: Duration::from_micros(micros as u64),
        stdout: std::fs::read(&out_path).unwrap(),
        stderr: std::fs::read_to_string(&err_path).unwrap(),
    };
    let _ = std::fs::remove_file(&out_path);
    let _ = std::fs::remove_file(&err_path);
    run
}

/// The measuring parent of `run_measured`; does nothing in a normal test run.
#[test]
// The child is reaped by `wait4`, which also gives its rusage.
#[allow(clippy::zombie_processes)]
fn rss_probe() {
    let Ok(spec) = std::env::var(PROBE_ENV) else {
        return;
    };
    let mut parts = spec.split('\u{1f}');
    let timeout = Duration::from_millis(parts.next().unwrap().parse().unwrap());
    let stdout = std::fs::File::create(parts.next().unwrap()).unwrap();
    let stderr = std::fs::File::create(parts.next().unwrap()).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_wsprobe"))
        .args(parts)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .spawn()
        .unwrap();
    let pid = child.id() as libc::pid_t;
    let started = Instant::now();
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain data; all-zero is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let mut timed_out = 0;
    loop {
        // SAFETY: waits for our own child; status and usage are valid for writes.
        let r = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        if r == pid {
            break;
        }
        assert_eq!(r, 0, "wait4 failed");
        if started.elapsed() > timeout {
            timed_out = 1;
            let _ = child.kill();
            // SAFETY: as above, blocking this time.
            unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    println!(
        "rss-probe {status} {} {} {timed_out}",
        usage.ru_maxrss,
        started.elapsed().as_micros()
    );
}

/// Runs an attack capture with `--format json` plus `args`; checks exit, time and memory, prints
/// the measurements (`cargo test -- --nocapture` shows them) and returns the report.
fn attack(name: &str, capture: &[u8], args: &[&str], timeout: Duration) -> Value {
    let path = temp_file(capture, "pcap");
    if let Ok(dir) = std::env::var("WSPROBE_ATTACK_DIR") {
        // Keep the capture to look at it by hand.
        let name: String = name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        std::fs::write(Path::new(&dir).join(format!("{name}.pcap")), capture).unwrap();
    }
    let mut all = vec!["--format", "json"];
    all.extend_from_slice(args);
    let run = run_measured(&path, &all, timeout);
    let _ = std::fs::remove_file(&path);
    eprintln!(
        "attack {name}: capture {} KiB, exit {:?}, {:.2} s, peak RSS {} MiB",
        capture.len() / 1024,
        run.code,
        run.elapsed.as_secs_f64(),
        run.max_rss_kib / 1024
    );
    assert!(
        matches!(run.code, Some(0 | 1)),
        "{name}: exit {:?} signal {:?}: {}",
        run.code,
        run.signal,
        run.stderr
    );
    assert!(
        run.max_rss_kib < MAX_RSS_KIB,
        "{name}: peak RSS {} MiB",
        run.max_rss_kib / 1024
    );
    serde_json::from_slice(&run.stdout).unwrap_or_else(|e| {
        panic!(
            "{name}: not JSON ({e}): {:.300}",
            String::from_utf8_lossy(&run.stdout)
        )
    })
}

fn connections(report: &Value) -> &Vec<Value> {
    report["connections"].as_array().unwrap()
}

fn only(report: &Value) -> &Value {
    let conns = connections(report);
    assert_eq!(conns.len(), 1, "{:.2000}", report.to_string());
    &conns[0]
}

fn count(conn: &Value, id: &str) -> u64 {
    conn["diagnostic_counts"][id].as_u64().unwrap_or(0)
}

fn diag_messages<'a>(conn: &'a Value, id: &str) -> Vec<&'a str> {
    conn["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["id"] == id)
        .filter_map(|d| d["message"].as_str())
        .collect()
}

fn diag_message<'a>(conn: &'a Value, id: &str) -> &'a str {
    conn["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == id)
        .and_then(|d| d["message"].as_str())
        .unwrap_or_else(|| panic!("no {id} in {:#}", conn["diagnostics"]))
}

/// A connection up to the 101, with `extensions` negotiated (empty: none).
fn upgraded(extensions: &str) -> Conv {
    let mut c = Conv::new("10.0.0.1:50000", "10.0.0.2:8080");
    c.tcp_open();
    let ext = if extensions.is_empty() {
        String::new()
    } else {
        format!("Sec-WebSocket-Extensions: {extensions}\r\n")
    };
    c.send(true, &upgrade_request("/attack", &ext));
    c.send(false, &upgrade_response(&ext));
    c
}

/// Deterministic bytes (xorshift64*).
fn noise(seed: u64, n: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8
        })
        .collect()
}

const SECS_60: Duration = Duration::from_secs(60);

#[test]
fn frame_length_of_2_pow_63_minus_1() {
    let mut c = upgraded("");
    c.send(true, &client_frame(true, 1, b"before"));
    // Both sides announce the largest legal length, then send 200 KB and end.
    let key = [1, 2, 3, 4];
    let mut client = vec![0x82, 0xFF, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF];
    client.extend_from_slice(&key);
    client.extend(noise(1, 200_000));
    c.send(true, &client);
    let mut server = vec![0x82, 0x7F, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF];
    server.extend(noise(2, 200_000));
    c.send(false, &server);
    c.fin(true);
    c.fin(false);
    let report = attack(
        "length 2^63-1",
        &pcap(&c, Link::Ethernet),
        &["--messages", "--payload", "full"],
        SECS_60,
    );
    let conn = only(&report);
    assert_eq!(count(conn, "capture_ended_mid_frame"), 2, "{conn:#}");
    let msgs = conn["messages"].as_array().unwrap();
    let big: Vec<&Value> = msgs.iter().filter(|m| m["opcode"] == "binary").collect();
    assert_eq!(big.len(), 2);
    for m in big {
        assert_eq!(m["complete"], false);
        assert_eq!(m["wire_length"], 200_000);
    }
    assert_eq!(messages(conn)[0].2, "before");
}

#[test]
fn frame_length_with_the_top_bit_set() {
    let mut c = upgraded("");
    c.send(true, &client_frame(true, 1, b"before"));
    // 0x80.. as a 64-bit length: RFC 6455 §5.2 says the top bit MUST be 0.
    let mut bad = vec![0x81, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 5, 1, 2, 3, 4];
    bad.extend_from_slice(b"xxxxx");
    c.send(true, &bad);
    for i in 0..5 {
        c.send(
            true,
            &client_frame(true, 1, format!("after {i}").as_bytes()),
        );
    }
    c.send(false, &server_frame(true, 1, b"server"));
    // The server's own bad header: all bits set.
    c.send(
        false,
        &[0x82, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF],
    );
    c.fin(true);
    c.fin(false);
    let report = attack(
        "length top bit set",
        &pcap(&c, Link::Ethernet),
        &["--messages", "--payload", "full"],
        SECS_60,
    );
    let conn = only(&report);
    assert_eq!(count(conn, "invalid_frame_length"), 2, "{conn:#}");
    assert!(diag_message(conn, "invalid_frame_length").contains("most significant bit"));
    // Frames after the bad header are found again.
    let client: Vec<String> = messages(conn)
        .into_iter()
        .filter(|m| m.0 == "client" && m.1 == "text")
        .map(|m| m.2)
        .collect();
    assert_eq!(client.first().map(String::as_str), Some("before"));
    assert!(client.iter().any(|t| t == "after 4"), "{client:?}");
}

/// A raw-DEFLATE message that inflates to 1 GiB + 32 KiB of zeros, about 1 MB long: 32 KiB of
/// history, then one sync-flushed chunk of 1 MiB of zeros repeated 1024 times (its matches only
/// reach back into zeros, so every copy is valid after the first).
fn gigabyte_bomb() -> Vec<u8> {
    use flate2::{Compress, Compression, FlushCompress};
    let mut z = Compress::new(Compression::best(), false);
    let mut head = Vec::with_capacity(1 << 16);
    z.compress_vec(&[0u8; 32 << 10], &mut head, FlushCompress::Sync)
        .unwrap();
    let mut chunk = Vec::with_capacity(1 << 16);
    z.compress_vec(&vec![0u8; 1 << 20], &mut chunk, FlushCompress::Sync)
        .unwrap();
    assert!(chunk.ends_with(&[0, 0, 0xff, 0xff]), "sync flush marker");
    let mut bomb = head;
    for _ in 0..1024 {
        bomb.extend_from_slice(&chunk);
    }
    // RFC 7692 §7.2.1: the sender removes the trailing 00 00 ff ff.
    bomb.truncate(bomb.len() - 4);
    bomb
}

#[test]
fn one_gibibyte_deflate_bomb() {
    let bomb = gigabyte_bomb();
    assert!(bomb.len() < 2 << 20, "{} bytes", bomb.len());
    let mut c = upgraded("permessage-deflate");
    c.send(true, &client_frame(true, 1, b"hello"));
    c.send(
        false,
        &wsprobe::ws::frame::encode_frame(true, 0b100, 2, None, &bomb),
    );
    c.send(false, &server_frame(true, 1, b"after the bomb"));
    c.send(true, &client_frame(true, 8, &close_payload(1000, "")));
    c.send(false, &server_frame(true, 8, &close_payload(1000, "")));
    c.fin(false);
    c.fin(true);
    let capture = pcap(&c, Link::Ethernet);
    for args in [
        &["--messages", "--payload", "full"][..],
        &["--messages", "--max-inflated-bytes", "2000000000"][..],
    ] {
        let report = attack("1 GiB deflate bomb", &capture, args, SECS_60 * 3);
        let conn = only(&report);
        let msgs = conn["messages"].as_array().unwrap();
        let bomb_msg = msgs
            .iter()
            .find(|m| m["opcode"] == "binary")
            .expect("the bomb's message");
        assert_eq!(bomb_msg["wire_length"], bomb.len() as u64);
        if args.contains(&"full") {
            // Stopped at the default 64 MiB (and kept 16 MiB of it): said so, and the rest of
            // the connection is read.
            assert_eq!(count(conn, "limit_exceeded"), 2, "{conn:#}");
            let said = diag_messages(conn, "limit_exceeded");
            assert!(
                said.iter().any(|m| m.contains("passed 67108864 bytes")),
                "{said:?}"
            );
            assert!(
                said.iter().any(|m| m.contains("--max-message-bytes")),
                "{said:?}"
            );
            assert!(bomb_msg["length"].is_null());
            assert!(
                bomb_msg["inflate_error"]
                    .as_str()
                    .unwrap()
                    .contains("output limit")
            );
        } else {
            // With the limit raised it inflates all of it, streaming, in bounded memory.
            assert_eq!(bomb_msg["length"], (1u64 << 30) + (32 << 10));
            assert_eq!(count(conn, "limit_exceeded"), 0, "{conn:#}");
        }
        assert_eq!(conn["close"]["outcome"], "clean");
        assert!(
            messages(conn)
                .iter()
                .any(|m| m.0 == "server" && m.2 == "after the bomb")
        );
    }
}

#[test]
fn ten_thousand_fragments_of_one_message() {
    let mut c = upgraded("");
    let mut frames = client_frame(false, 1, b"a");
    for i in 1..10_000 {
        frames.extend(client_frame(i == 9_999, 0, b"a"));
    }
    c.send(true, &frames);
    c.send(true, &client_frame(true, 1, b"next"));
    c.fin(true);
    c.fin(false);
    let report = attack(
        "10,000 fragments",
        &pcap(&c, Link::Ethernet),
        &["--messages", "--payload", "full"],
        SECS_60,
    );
    let conn = only(&report);
    let msgs = conn["messages"].as_array().unwrap();
    assert_eq!(msgs[0]["fragments"], 10_000);
    assert_eq!(msgs[0]["length"], 10_000);
    assert_eq!(msgs[0]["complete"], true);
    assert_eq!(msgs[0]["text"].as_str().unwrap().len(), 10_000);
    assert_eq!(msgs[1]["text"], "next");
    assert_eq!(conn["frames"]["client"]["continuation"], 9_999);
}

#[test]
fn megabytes_of_garbage_after_the_upgrade() {
    let mut c = upgraded("permessage-deflate");
    c.send(true, &client_frame(true, 1, b"before"));
    c.send(true, &noise(3, 4 << 20));
    c.send(false, &noise(4, 4 << 20));
    c.fin(true);
    c.fin(false);
    let report = attack(
        "8 MiB of garbage after the upgrade",
        &pcap(&c, Link::Ethernet),
        &["--messages"],
        SECS_60 * 2,
    );
    let conn = only(&report);
    assert_eq!(messages(conn)[0].2, "before");
    // The garbage is called what it is: frames no endpoint may send, or bytes skipped.
    let said: u64 = [
        "frame_resync",
        "invalid_frame_length",
        "reserved_opcode",
        "reserved_bits_set",
        "control_frame_too_long",
        "capture_ended_mid_frame",
    ]
    .iter()
    .map(|id| count(conn, id))
    .sum();
    assert!(said > 0, "{:#}", conn["diagnostic_counts"]);
}

#[test]
fn garbage_that_keeps_the_framer_hunting() {
    // A bad header makes the client direction hunt for frame boundaries; then 8 MiB where every
    // 4th offset is a plausible header announcing 65,535 bytes (each candidate stays undecided as
    // long as possible), and 8 MiB where every 2nd byte starts a plausible empty frame.
    let mut c = upgraded("");
    c.send(true, &client_frame(true, 1, b"before"));
    c.send(true, &[0x81, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 1]);
    let pending: Vec<u8> = [0x82u8, 0xFE, 0xFF, 0xFF]
        .iter()
        .copied()
        .cycle()
        .take(8 << 20)
        .collect();
    c.send(true, &pending);
    let chains: Vec<u8> = [0x89u8, 0x80, 0x81, 0x80]
        .iter()
        .copied()
        .cycle()
        .take(8 << 20)
        .collect();
    c.send(true, &chains);
    for i in 0..5 {
        c.send(
            true,
            &client_frame(true, 1, format!("after {i}").as_bytes()),
        );
    }
    c.fin(true);
    c.fin(false);
    let report = attack(
        "16 MiB that keeps the framer hunting",
        &pcap(&c, Link::Ethernet),
        &["--messages"],
        SECS_60 * 2,
    );
    let conn = only(&report);
    assert_eq!(
        count(conn, "invalid_frame_length"),
        1,
        "{:#}",
        conn["diagnostic_counts"]
    );
    assert!(count(conn, "frame_resync") >= 1);
    assert_eq!(messages(conn)[0].2, "before");
}

#[test]
fn storm_of_100_000_control_frames() {
    let mut c = upgraded("");
    let mut pings = Vec::new();
    for i in 0..100_000u32 {
        pings.extend(client_frame(true, 9, &i.to_be_bytes()));
    }
    c.send(true, &pings);
    // The server answers only the last one (allowed by RFC 6455 §5.5.3).
    c.send(false, &server_frame(true, 10, &99_999u32.to_be_bytes()));
    c.fin(true);
    c.fin(false);
    let report = attack(
        "100,000 control frames",
        &pcap(&c, Link::Ethernet),
        &["--messages"],
        SECS_60,
    );
    let conn = only(&report);
    assert_eq!(conn["frames"]["client"]["ping"], 100_000);
    assert_eq!(conn["ping"]["client_pings"], 100_000);
    assert_eq!(conn["ping"]["answered"], 1);
    // Listed up to the cap, counted exactly.
    let listed = conn["messages"].as_array().unwrap().len();
    assert!(listed <= 100_001, "{listed}");
    assert!(conn["diagnostics"].as_array().unwrap().len() <= 200);
}

/// A SYN from `10.1.x.y:port` to the server, and nothing more.
fn lone_syn(i: u32) -> Vec<u8> {
    let c = Conv::new(
        &format!("10.1.{}.{}:{}", (i >> 8) & 0xFF, i & 0xFF, 1024 + (i >> 16)),
        "10.0.0.2:8080",
    );
    let syn = Pkt {
        ts: c.time + f64::from(i) * 1e-4,
        from_client: true,
        syn: true,
        ack: false,
        fin: false,
        rst: false,
        seq: i.wrapping_mul(2_654_435_761),
        ack_no: 0,
        payload: Vec::new(),
    };
    pcap_of(&c, &[syn], Link::Ethernet)[24..].to_vec()
}

#[test]
fn syn_flood_of_100_000_connections() {
    // One real WebSocket connection, after the flood, must still be analysed.
    let mut ws = upgraded("");
    ws.time += 20.0;
    ws.send(true, &client_frame(true, 1, b"still here"));
    ws.send(true, &client_frame(true, 8, &close_payload(1000, "")));
    ws.send(false, &server_frame(true, 8, &close_payload(1000, "")));
    ws.fin(true);
    ws.fin(false);
    let ws = pcap(&ws, Link::Ethernet);
    let mut capture = ws[..24].to_vec();
    for i in 0..100_000u32 {
        capture.extend(lone_syn(i));
    }
    capture.extend_from_slice(&ws[24..]);
    for args in [&[][..], &["--max-connections", "1000"][..]] {
        let mut all = vec!["--messages"];
        all.extend_from_slice(args);
        let report = attack("SYN flood of 100,000 connections", &capture, &all, SECS_60);
        assert_eq!(report["summary"]["tcp_connections"], 100_001);
        let conn = only(&report);
        assert_eq!(messages(conn)[0].2, "still here");
        assert_eq!(conn["close"]["outcome"], "clean");
    }
}

#[test]
fn out_of_order_flood_past_the_reassembly_limit() {
    // The client's first data segment after the upgrade is never captured and nothing
    // acknowledges past it: 8 MiB queue up behind the hole until --max-buffered-bytes (4 MiB).
    let mut c = upgraded("");
    let first = c.packets.len();
    let mut frames = Vec::new();
    let mut i = 0u32;
    while frames.len() < 8 << 20 {
        frames.extend(client_frame(true, 2, &[i as u8; 1000]));
        i += 1;
    }
    c.send(true, &frames);
    c.fin(true);
    let mut packets = c.packets.clone();
    packets.remove(first);
    // No ACK from the server covers the hole: it sends nothing more.
    let capture = pcap_of(&c, &packets, Link::Ethernet);
    let report = attack(
        "8 MiB behind a hole",
        &capture,
        &["--max-buffered-bytes", "4194304"],
        SECS_60,
    );
    let conn = only(&report);
    let said = diag_message(conn, "limit_exceeded");
    assert!(said.contains("--max-buffered-bytes"), "{said}");
    assert!(count(conn, "tcp_gap") >= 1);
    // Frames are found again after the hole.
    assert!(conn["frames"]["client"]["binary"].as_u64().unwrap() > 8000);
}

#[test]
fn flow_table_full_finishes_the_idlest_connection_and_says_so() {
    // Three WebSocket connections open at once, --max-connections 2.
    let mut capture = Vec::new();
    let mut convs: Vec<Conv> = (0..3)
        .map(|n| {
            let mut c = Conv::new(&format!("10.0.3.{n}:40000"), "10.0.0.2:8080");
            c.time += f64::from(n);
            c
        })
        .collect();
    for c in &mut convs {
        c.tcp_open();
        c.send(true, &upgrade_request("/full", ""));
        c.send(false, &upgrade_response(""));
        c.send(true, &client_frame(true, 1, b"hello"));
        let file = pcap(c, Link::Ethernet);
        if capture.is_empty() {
            capture.extend_from_slice(&file[..24]);
        }
        capture.extend_from_slice(&file[24..]);
    }
    let report = attack(
        "3 connections, --max-connections 2",
        &capture,
        // Which connection a cap stops is exact on one thread; with more, the cap is a
        // budget the threads share (src/pipeline/sharded.rs).
        &["--messages", "--max-connections", "2", "--threads", "1"],
        SECS_60,
    );
    let conns = connections(&report);
    assert_eq!(conns.len(), 3);
    let evicted: Vec<&Value> = conns
        .iter()
        .filter(|c| count(c, "limit_exceeded") == 1)
        .collect();
    assert_eq!(evicted.len(), 1);
    assert_eq!(evicted[0]["client"]["ip"], "10.0.3.0");
    assert!(diag_message(evicted[0], "limit_exceeded").contains("--max-connections"));
    for c in conns {
        assert_eq!(messages(c)[0].2, "hello");
    }
}

#[test]
fn http_head_that_never_ends() {
    // One header line that never ends, and header lines without end.
    for (line, want) in [
        (
            &b"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"[..],
            "65536 bytes",
        ),
        (
            b"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\nX-Padding: ",
            "128 header lines",
        ),
    ] {
        let mut c = Conv::new("10.0.0.1:50000", "10.0.0.2:8080");
        c.tcp_open();
        let mut head = b"GET /chat HTTP/1.1\r\nHost: example.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nX-Padding: ".to_vec();
        while head.len() < 4 << 20 {
            head.extend_from_slice(line);
        }
        c.send(true, &head);
        c.fin(true);
        c.fin(false);
        let report = attack(
            "HTTP head that never ends",
            &pcap(&c, Link::Ethernet),
            &[],
            SECS_60,
        );
        let conn = only(&report);
        let said = diag_message(conn, "limit_exceeded");
        assert!(
            said.starts_with("HTTP head from the client") && said.contains(want),
            "{said}"
        );
    }
}

#[test]
fn deflate_bombs_listed_in_full() {
    use flate2::{Compress, Compression, FlushCompress};
    // 8 messages of 20 MiB of 'a', about 20 KB compressed each; listing them in full holds 16 MiB
    // (--max-message-bytes) of each, so the listing budget (50 MB here, 256 MiB by default)
    // stops it. (At the default budget, 40 such messages peaked at 1.3 GiB before it existed.)
    let mut z = Compress::new(Compression::best(), false);
    let mut one = Vec::with_capacity(1 << 16);
    z.compress_vec(&vec![b'a'; 20 << 20], &mut one, FlushCompress::Sync)
        .unwrap();
    one.truncate(one.len() - 4);
    let mut c = upgraded("permessage-deflate; server_no_context_takeover");
    for _ in 0..8 {
        c.send(
            false,
            &wsprobe::ws::frame::encode_frame(true, 0b100, 1, None, &one),
        );
    }
    c.fin(false);
    c.fin(true);
    let report = attack(
        "8 bombs listed in full",
        &pcap(&c, Link::Ethernet),
        &[
            "--messages",
            "--payload",
            "full",
            "--max-listed-bytes",
            "50000000",
        ],
        SECS_60 * 3,
    );
    let conn = only(&report);
    assert_eq!(conn["message_counts"]["server"], 8);
    assert_eq!(conn["payload_bytes"]["server"], 8 * (20 << 20));
    assert_eq!(conn["messages"].as_array().unwrap().len(), 2);
    let said = diag_messages(conn, "limit_exceeded");
    assert!(
        said.iter()
            .any(|m| m.starts_with("6 messages not listed") && m.contains("--max-listed-bytes")),
        "{said:?}"
    );
    assert!(
        said.iter().any(|m| m.contains("--max-message-bytes")),
        "{said:?}"
    );
}

#[test]
fn many_connections_with_many_messages() {
    // 40 connections open at once, each with 5,000 small messages: 200,000 listed records
    // against a budget of 10 MB (256 MiB by default: 100 x 20,000 peaked at 337 MiB before it).
    let mut capture = Vec::new();
    let mut frames = Vec::new();
    for i in 0..5_000u32 {
        frames.extend(server_frame(true, 2, &i.to_be_bytes()[2..]));
    }
    for n in 0..40 {
        let mut c = Conv::new(&format!("10.0.1.{n}:40000"), "10.0.0.2:8080");
        c.tcp_open();
        c.send(true, &upgrade_request("/many", ""));
        c.send(false, &upgrade_response(""));
        c.send(false, &frames);
        let file = pcap(&c, Link::Ethernet);
        if capture.is_empty() {
            capture.extend_from_slice(&file[..24]);
        }
        capture.extend_from_slice(&file[24..]);
    }
    let report = attack(
        "40 connections x 5,000 messages",
        &capture,
        &["--messages", "--max-listed-bytes", "10000000"],
        SECS_60 * 3,
    );
    let conns = connections(&report);
    assert_eq!(conns.len(), 40);
    let listed: usize = conns
        .iter()
        .map(|c| c["messages"].as_array().unwrap().len())
        .sum();
    assert!((40_000..60_000).contains(&listed), "{listed}");
    for c in conns {
        assert_eq!(c["message_counts"]["server"], 5_000);
    }
    let limited = conns
        .iter()
        .filter(|c| count(c, "limit_exceeded") == 1)
        .count();
    assert!(limited >= 30, "{limited}");
}

#[test]
fn json_lists_every_message_of_a_long_connection() {
    // More messages than a connection may hold in memory (MAX_MESSAGES_KEPT): json keeps them
    // in its spool file, so all are listed, in order, however many there are.
    const MESSAGES: u32 = 120_000;
    let mut frames = Vec::new();
    for i in 0..MESSAGES {
        frames.extend(server_frame(true, 2, &i.to_be_bytes()[1..]));
    }
    let mut c = Conv::new("10.0.1.1:40000", "10.0.0.2:8080");
    c.tcp_open();
    c.send(true, &upgrade_request("/long", ""));
    c.send(false, &upgrade_response(""));
    c.send(false, &frames);
    let capture = pcap(&c, Link::Ethernet);
    for pretty in [&[][..], &["--pretty"][..]] {
        let mut args = vec!["--messages"];
        args.extend_from_slice(pretty);
        let report = attack(
            "one connection, 120,000 messages",
            &capture,
            &args,
            SECS_60 * 3,
        );
        let conn = only(&report);
        let messages = conn["messages"].as_array().unwrap();
        assert_eq!(messages.len(), MESSAGES as usize, "{pretty:?}");
        use base64::Engine;
        for (i, m) in messages.iter().enumerate() {
            let payload = &(i as u32).to_be_bytes()[1..];
            let shown = base64::engine::general_purpose::STANDARD.encode(payload);
            assert_eq!(m["base64"], shown.as_str(), "message {i}");
        }
        assert_eq!(count(conn, "limit_exceeded"), 0, "{pretty:?}");
    }
}

#[test]
fn thousands_of_compressed_connections() {
    use flate2::{Compress, Compression, FlushCompress};
    let mut msg = Vec::with_capacity(256);
    Compress::new(Compression::default(), false)
        .compress_vec(b"hello hello hello", &mut msg, FlushCompress::Sync)
        .unwrap();
    msg.truncate(msg.len() - 4);
    let key = Some([1, 2, 3, 4]);
    let n = 5_000u32;
    // 5,000 connections open at once negotiate permessage-deflate (context takeover); then the
    // same with one compressed message each way, so that every direction needs a decoder.
    for with_messages in [false, true] {
        let mut capture = Vec::new();
        for i in 0..n {
            let mut c = Conv::new(
                &format!("10.2.{}.{}:40000", i >> 8, i & 0xFF),
                "10.0.0.2:8080",
            );
            c.time += f64::from(i) * 1e-3;
            c.tcp_open();
            let ext = "Sec-WebSocket-Extensions: permessage-deflate\r\n";
            c.send(true, &upgrade_request("/z", ext));
            c.send(false, &upgrade_response(ext));
            if with_messages {
                c.send(
                    true,
                    &wsprobe::ws::frame::encode_frame(true, 0b100, 1, key, &msg),
                );
                c.send(
                    false,
                    &wsprobe::ws::frame::encode_frame(true, 0b100, 1, None, &msg),
                );
            }
            let file = pcap(&c, Link::Ethernet);
            if capture.is_empty() {
                capture.extend_from_slice(&file[..24]);
            }
            capture.extend_from_slice(&file[24..]);
        }
        let name = if with_messages {
            "5,000 compressed connections, messages both ways"
        } else {
            "5,000 compressed connections, no messages"
        };
        // The exact count of decoders per connection is one thread's (see above).
        let report = attack(
            name,
            &capture,
            &["--messages", "--threads", "1"],
            SECS_60 * 3,
        );
        let conns = connections(&report);
        assert_eq!(conns.len(), n as usize);
        let limited = conns
            .iter()
            .filter(|c| count(c, "limit_exceeded") > 0)
            .count();
        if with_messages {
            // 4,096 directions (the default --max-inflaters) inflate; the others say why not.
            let inflated: usize = conns
                .iter()
                .flat_map(|c| c["messages"].as_array().unwrap())
                .filter(|m| m["text"] == "hello hello hello")
                .count();
            assert_eq!(inflated, 4096);
            assert_eq!(limited, n as usize - 4096 / 2);
            let said = diag_message(&conns[n as usize - 1], "limit_exceeded");
            assert!(said.contains("--max-inflaters"), "{said}");
        } else {
            assert_eq!(limited, 0);
        }
    }
}
