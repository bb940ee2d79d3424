//! Differential test against Wireshark: tshark and wsprobe run on every capture in `captures/`,
//! in `../shared/captures/public/` (when present) and on the small captures of
//! `wireshark/faults.rs`, and compared per connection (tshark's tcp.stream matched to wsprobe's
//! connection by the 4-tuple): handshakes (request and answer), frame headers in order per
//! direction (opcode, FIN, RSV, MASK, payload length), messages, close codes, unmasked payloads,
//! inflated payloads where tshark inflates, and the RFC violations each tool flags.
//!
//! Every disagreement must be listed in `wireshark/expected.rs`, each pointing at its entry in
//! `docs/wireshark-differences.md` (who is right, with the RFC section). The test fails on a
//! disagreement not listed, and on a listed one that no longer happens (with tshark 4.0; another
//! version only prints those, since it may have fixed the fault).
//!
//! tshark runs with `-o tcp.reassemble_out_of_order:TRUE`, `-d tcp.port==P,http` for the server
//! port of every handshake wsprobe found (tshark maps some ports to other protocols), and the
//! decode-as of `../shared/captures/public/MANIFEST.md` for the mid-stream captures. Skipped,
//! with a note, when tshark is not installed (CI installs it).

#[path = "integration/util.rs"]
mod util;

#[path = "integration/tls_harness.rs"]
mod tls_harness;

#[path = "wireshark/compare.rs"]
mod compare;
#[path = "wireshark/expected.rs"]
mod expected;
#[path = "wireshark/faults.rs"]
mod faults;
#[path = "wireshark/model.rs"]
mod model;
#[path = "wireshark/peers.rs"]
mod peers;
#[path = "wireshark/tshark.rs"]
mod tshark;
#[path = "wireshark/wsprobe.rs"]
mod wsprobe;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use compare::Diff;

/// Decode-as for captures with no handshake, as MANIFEST.md gives them: without it tshark shows
/// them as plain TCP (see W11).
const DECODE_AS: &[(&str, &str)] = &[
    ("ndpi__websocket.pcap", "tcp.port==12345,websocket"),
    (
        "eririmba-socket.io-sample__websocket.pcap",
        "tcp.port==8008,websocket",
    ),
];

fn is_capture(p: &Path) -> bool {
    p.extension()
        .is_some_and(|e| e == "pcap" || e == "pcapng" || e == "dump")
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| is_capture(p))
        .collect();
    files.sort();
    files
}

/// Every capture to compare: (name used in expected.rs, path).
fn all_captures() -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    for p in files_in(&util::captures_dir()) {
        out.push((format!("captures/{}", name(&p)), p));
    }
    match util::public_captures_dir() {
        Some(dir) => {
            for p in files_in(&dir) {
                out.push((format!("public/{}", name(&p)), p));
            }
        }
        None => eprintln!("note: ../shared/captures/public not present; public captures skipped"),
    }
    for (file, bytes) in faults::captures() {
        out.push((format!("synthetic/{file}"), util::temp_file(&bytes, "pcap")));
    }
    out
}

/// The TLS captures of `captures/record/tls_scenarios.py`: a key log beside them, or the keys
/// inside (the Decryption Secrets Block capture).
fn is_tls_capture(p: &Path) -> bool {
    p.with_extension("keys").exists() || name(p) == "wss-dsb.pcapng"
}

fn name(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}

/// tshark's options for a capture: out-of-order reassembly, and decode-as.
fn tshark_options(file: &str, report: &serde_json::Value, path: &Path) -> Vec<String> {
    let mut options = vec!["-o".to_string(), "tcp.reassemble_out_of_order:TRUE".into()];
    // wss captures: tshark decrypts with the same key log (or the keys inside the pcapng).
    let keys = path.with_extension("keys");
    let tls = is_tls_capture(path);
    if keys.exists() {
        options.extend([
            "-o".to_string(),
            format!("tls.keylog_file:{}", keys.display()),
        ]);
    }
    if let Some((_, da)) = DECODE_AS.iter().find(|(f, _)| *f == file) {
        options.extend(["-d".to_string(), da.to_string()]);
        return options;
    }
    let ports: BTreeSet<u64> = report["connections"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| !c["handshake"].is_null())
        .filter_map(|c| c["server"]["port"].as_u64())
        .filter(|p| *p != 80)
        .collect();
    let dissector = if tls { "tls" } else { "http" };
    for port in ports {
        options.extend(["-d".to_string(), format!("tcp.port=={port},{dissector}")]);
    }
    options
}

/// Frames by opcode over a whole capture.
fn opcode_counts(conns: &[model::Conn]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for f in conns.iter().flat_map(|c| c.frames.iter().flatten()) {
        *counts.entry(f.opcode.clone()).or_insert(0) += 1;
    }
    counts
}

/// What one capture gave: the disagreements, a line for the summary table, and (when tshark
/// decodes anything in it) both tools' frame counts by opcode.
struct Outcome {
    diffs: Vec<Diff>,
    line: String,
    counts: Option<(BTreeMap<String, usize>, BTreeMap<String, usize>)>,
}

/// Both tools on one capture.
fn differences(label: &str, path: &Path) -> Outcome {
    let report = wsprobe::report(path);
    let ours = wsprobe::connections(&report);
    let options = tshark_options(&name(path), &report, path);
    let theirs = tshark::connections(&tshark::packets(path, &options));
    let diffs = compare::compare(label, &theirs, &ours);
    let frames = |conns: &[model::Conn]| -> usize {
        conns
            .iter()
            .map(|c| c.frames[0].len() + c.frames[1].len())
            .sum()
    };
    let line = format!(
        "{label:<72} {:>3} conn {:>5} frames (tshark {:>3} conn {:>5} frames) {:>3} differences",
        ours.len(),
        frames(&ours),
        theirs.len(),
        frames(&theirs),
        diffs.len()
    );
    let theirs_counts = opcode_counts(&theirs);
    Outcome {
        diffs,
        line,
        counts: (!theirs_counts.is_empty()).then(|| (theirs_counts, opcode_counts(&ours))),
    }
}

/// Runs `job` over `items` on two threads (the machine is shared), keeping the input order.
fn parallel<T: Sync, R: Send>(items: &[T], job: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let next = AtomicUsize::new(0);
    let results: Mutex<BTreeMap<usize, R>> = Mutex::new(BTreeMap::new());
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(item) = items.get(i) else {
                        break;
                    };
                    let r = job(item);
                    results.lock().unwrap().insert(i, r);
                }
            });
        }
    });
    results.into_inner().unwrap().into_values().collect()
}

fn tshark_or_skip() -> Option<String> {
    let version = tshark::version();
    if version.is_none() {
        eprintln!("note: tshark is not installed; the Wireshark differential test is skipped");
    }
    version
}

#[test]
fn wsprobe_agrees_with_tshark_or_the_difference_is_explained() {
    let Some(version) = tshark_or_skip() else {
        return;
    };
    let strict = version.contains(" 4.0.");
    let captures = all_captures();
    let results = parallel(&captures, |(label, path)| differences(label, path));
    let mut found: BTreeMap<String, Diff> = BTreeMap::new();
    eprintln!("{version}");
    let mut counts_differ = Vec::new();
    for ((label, _), outcome) in captures.iter().zip(results) {
        eprintln!("{}", outcome.line);
        for d in outcome.diffs {
            found.insert(d.key(), d);
        }
        // On every capture tshark decodes, the frame counts by opcode are the same (but where tshark
        // stops at a lost segment, W14).
        let stops_at_gaps = expected::EXPECTED
            .iter()
            .any(|e| e.capture == label && e.doc == "W14");
        if let Some((theirs, ours)) = outcome.counts
            && theirs != ours
            && !stops_at_gaps
        {
            counts_differ.push(format!("{label}: tshark {theirs:?}, wsprobe {ours:?}"));
        }
    }
    assert!(
        counts_differ.is_empty(),
        "frame counts by opcode differ:\n{}",
        counts_differ.join("\n")
    );
    let compared: BTreeSet<&str> = captures.iter().map(|(l, _)| l.as_str()).collect();
    let expected: BTreeMap<String, &expected::Expected> = expected::EXPECTED
        .iter()
        .filter(|e| compared.contains(e.capture))
        .map(|e| (e.key(), e))
        .collect();
    let new: Vec<&Diff> = found
        .iter()
        .filter(|(k, _)| !expected.contains_key(*k))
        .map(|(_, d)| d)
        .collect();
    let gone: Vec<&&expected::Expected> = expected
        .iter()
        .filter(|(k, _)| !found.contains_key(*k))
        .map(|(_, e)| e)
        .collect();
    for (k, d) in &found {
        if let Some(e) = expected.get(k) {
            eprintln!("expected ({}): {d}", e.doc);
        }
    }
    let mut problems = String::new();
    for d in &new {
        problems.push_str(&format!("NEW disagreement (fix wsprobe, or explain it in docs/wireshark-differences.md and wireshark/expected.rs):\n  {d}\n"));
    }
    for e in &gone {
        problems.push_str(&format!(
            "expected difference no longer seen ({}; remove it from expected.rs and the doc if tshark or wsprobe changed):\n  {}\n",
            e.doc,
            e.key()
        ));
    }
    if !strict && new.is_empty() {
        if !gone.is_empty() {
            eprintln!("note: {version} is not tshark 4.0; not failing on:\n{problems}");
        }
        return;
    }
    assert!(problems.is_empty(), "{problems}");
}

/// Every expected difference names an entry of docs/wireshark-differences.md, and every entry of
/// the doc is used by at least one expected difference or demonstrated below.
#[test]
fn expected_differences_point_at_documented_entries() {
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/docs/wireshark-differences.md"
    ))
    .unwrap();
    let headings: BTreeSet<String> = doc
        .lines()
        .filter_map(|l| l.strip_prefix("### "))
        .filter_map(|h| h.split(':').next())
        .map(str::to_string)
        .collect();
    let mut used: BTreeSet<&str> = expected::EXPECTED.iter().map(|e| e.doc).collect();
    used.extend(["W10", "W11"]);
    for id in &used {
        assert!(
            headings.contains(*id),
            "{id} has no `### {id}: ...` entry in the doc"
        );
    }
    for h in headings.iter().filter(|h| h.starts_with('W')) {
        assert!(used.contains(h.as_str()), "doc entry {h} is not used");
    }
    for e in expected::EXPECTED {
        assert!(
            doc.contains(e.capture.rsplit('/').next().unwrap()),
            "{}: the doc does not name capture {}",
            e.doc,
            e.capture
        );
    }
}

/// The faults behind W10 and W11, which the main test avoids with tshark options: shown with
/// the options left out.
#[test]
fn tshark_loses_frames_without_its_options() {
    let Some(version) = tshark_or_skip() else {
        return;
    };
    // Another version may have fixed these: then only say so.
    let fault = |holds: bool, what: &str| {
        if version.contains(" 4.0.") {
            assert!(holds, "{what}");
        } else if !holds {
            eprintln!("note: {version}: {what}");
        }
    };
    let count = |path: &Path, options: &[&str]| -> usize {
        let options: Vec<String> = options.iter().map(|s| s.to_string()).collect();
        tshark::connections(&tshark::packets(path, &options))
            .iter()
            .map(|c| c.frames[0].len() + c.frames[1].len())
            .sum()
    };
    let ours = |path: &Path| -> usize {
        wsprobe::connections(&wsprobe::report(path))
            .iter()
            .map(|c| c.frames[0].len() + c.frames[1].len())
            .sum()
    };
    // W10: reordered segments.
    let reordered = util::temp_file(&faults::reordered(), "pcap");
    assert_eq!(ours(&reordered), 5);
    assert_eq!(
        count(&reordered, &["-o", "tcp.reassemble_out_of_order:TRUE"]),
        5
    );
    // Without it, the 5,000-byte message whose segments came out of order is lost.
    let without = count(&reordered, &["-o", "tcp.reassemble_out_of_order:FALSE"]);
    fault(
        without == 4,
        &format!("W10: tshark found {without} frames without out-of-order reassembly"),
    );
    // W11: no handshake.
    let midstream = util::temp_file(&faults::midstream(), "pcap");
    assert_eq!(ours(&midstream), 6);
    let plain = count(&midstream, &[]);
    fault(
        plain == 0,
        &format!("W11: tshark found {plain} frames without decode-as"),
    );
    assert_eq!(count(&midstream, &["-d", "tcp.port==8080,websocket"]), 6);
    if let Some(dir) = util::public_captures_dir() {
        let ndpi = dir.join("ndpi__websocket.pcap");
        assert_eq!(ours(&ndpi), 5);
        let plain = count(&ndpi, &[]);
        fault(
            plain == 0,
            &format!("W11: tshark found {plain} frames in ndpi__websocket.pcap"),
        );
        assert_eq!(count(&ndpi, &["-d", "tcp.port==12345,websocket"]), 5);
    }
}

/// tshark's view of one TLS connection: decrypted application data per direction, alerts,
/// KeyUpdates and the ServerHello cipher suite.
#[derive(Debug, Default)]
struct TsharkTls {
    client_port: u16,
    plaintext: [Vec<u8>; 2],
    alerts: Vec<(usize, u8)>,
    key_updates: [u64; 2],
    suites: Vec<u16>,
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

fn tshark_tls(path: &Path, port: u16, keys: Option<&Path>) -> Vec<TsharkTls> {
    let mut base = vec![
        "-r".to_string(),
        path.display().to_string(),
        "-o".into(),
        "tcp.reassemble_out_of_order:TRUE".into(),
    ];
    if let Some(k) = keys {
        base.extend(["-o".into(), format!("tls.keylog_file:{}", k.display())]);
    }
    base.extend(["-d".into(), format!("tcp.port=={port},tls")]);
    let run = |extra: &[&str]| -> String {
        let out = std::process::Command::new("tshark")
            .args(&base)
            .args(extra)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "tshark: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let fields = run(&[
        "-T",
        "fields",
        "-E",
        "occurrence=a",
        "-E",
        "aggregator=,",
        "-e",
        "tcp.stream",
        "-e",
        "tcp.srcport",
        "-e",
        "tcp.dstport",
        "-e",
        "tls.handshake.type",
        "-e",
        "tls.alert_message.desc",
        "-e",
        "tls.handshake.ciphersuite",
    ]);
    let mut conns: BTreeMap<usize, TsharkTls> = BTreeMap::new();
    for line in fields.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        let (Ok(stream), Ok(src)) = (f[0].parse::<usize>(), f[1].parse::<u16>()) else {
            continue;
        };
        let dst: u16 = f[2].parse().unwrap();
        let side = usize::from(src == port);
        let c = conns.entry(stream).or_default();
        c.client_port = if side == 0 { src } else { dst };
        for t in f.get(3).unwrap_or(&"").split(',').filter(|t| !t.is_empty()) {
            if t == "24" {
                c.key_updates[side] += 1;
            }
        }
        for d in f.get(4).unwrap_or(&"").split(',').filter(|t| !t.is_empty()) {
            c.alerts.push((side, d.parse().unwrap()));
        }
        for cs in f.get(5).unwrap_or(&"").split(',').filter(|t| !t.is_empty()) {
            let v = u16::from_str_radix(cs.trim_start_matches("0x"), 16).unwrap();
            if side == 1 && !c.suites.contains(&v) {
                c.suites.push(v);
            }
        }
    }
    for (stream, c) in conns.iter_mut() {
        let follow = run(&["-q", "-z", &format!("follow,tls,raw,{stream}")]);
        // "Node 0: ip:port": unindented lines are node 0's, tab-indented ones the other's.
        let node0_port = follow
            .lines()
            .find_map(|l| l.strip_prefix("Node 0: "))
            .and_then(|a| a.rsplit(':').next())
            .and_then(|p| p.parse::<u16>().ok());
        let node0 = usize::from(node0_port == Some(port));
        for l in follow
            .lines()
            .skip_while(|l| !l.starts_with("Node 1"))
            .skip(1)
        {
            if l.starts_with("====") {
                break;
            }
            let (side, hex) = match l.strip_prefix('\t') {
                Some(h) => (1 - node0, h),
                None => (node0, l),
            };
            c.plaintext[side].extend(unhex(hex.trim()));
        }
    }
    conns.into_values().collect()
}

/// The TLS captures decrypted by wsprobe's TLS layer and by tshark with the same key log:
/// identical application-data bytes in both directions, the same alerts, KeyUpdates and
/// cipher suite, for every connection.
#[test]
fn tls_layer_agrees_with_tshark() {
    if tshark_or_skip().is_none() {
        return;
    }
    let mut compared = 0;
    for p in files_in(&util::captures_dir())
        .into_iter()
        .filter(|p| is_tls_capture(p))
    {
        let truth: serde_json::Value = match std::fs::read_to_string(p.with_file_name(format!(
            "{}.truth.json",
            p.file_stem().unwrap().to_string_lossy()
        ))) {
            Ok(t) => serde_json::from_str(&t).unwrap(),
            // wss-dsb.pcapng is wss-py-tls13.pcap with the keys inside.
            Err(_) => serde_json::json!({"recording": {"server_ports": [20443]}}),
        };
        let port = truth["recording"]["server_ports"][0].as_u64().unwrap() as u16;
        let keys = Some(p.with_extension("keys")).filter(|k| k.exists());
        let ours = tls_harness::run_tls(
            &p,
            &[port],
            &keys.iter().map(|k| k.as_path()).collect::<Vec<_>>(),
            None,
        );
        let theirs = tshark_tls(&p, port, keys.as_deref());
        let label = name(&p);
        assert_eq!(ours.len(), theirs.len(), "{label}: connections");
        for t in &theirs {
            let o = ours
                .iter()
                .find(|o| o.client_port == t.client_port)
                .unwrap();
            let l = format!("{label} client port {}", t.client_port);
            assert_eq!(o.plaintext[0], t.plaintext[0], "{l}: client plaintext");
            assert_eq!(o.plaintext[1], t.plaintext[1], "{l}: server plaintext");
            if o.record.client_random.is_none() && t.suites.is_empty() {
                continue; // no TLS on this TCP connection (a refused attempt): nothing to compare
            }
            assert!(
                !t.plaintext[0].is_empty() || !t.plaintext[1].is_empty(),
                "{l}: tshark decrypted nothing"
            );
            let our_alerts: Vec<(usize, String)> = o
                .record
                .alerts
                .iter()
                .map(|a| {
                    (
                        usize::from(a.from == ::wsprobe::diag::Side::Server),
                        a.description.clone().unwrap(),
                    )
                })
                .collect();
            let their_alerts: Vec<(usize, String)> = t
                .alerts
                .iter()
                .map(|(s, d)| (*s, ::wsprobe::stream::tls::suite::alert_name(*d)))
                .collect();
            let sorted = |mut v: Vec<(usize, String)>| {
                v.sort();
                v
            };
            assert_eq!(sorted(our_alerts), sorted(their_alerts), "{l}: alerts");
            assert_eq!(
                [o.record.key_updates.client, o.record.key_updates.server],
                t.key_updates,
                "{l}: KeyUpdates"
            );
            // A HelloRetryRequest and the ServerHello both carry the suite.
            assert_eq!(t.suites.len(), 1, "{l}");
            assert_eq!(
                o.record.cipher_suite.as_deref(),
                Some(::wsprobe::stream::tls::suite::suite_name(t.suites[0]).as_str()),
                "{l}"
            );
            compared += 1;
        }
    }
    assert!(compared >= 16, "compared {compared} TLS connections");
}
