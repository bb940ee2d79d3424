//! Recordings cut or holed after the fact (captures/record/scenarios_ws.py): a capture that starts inside
//! a 1 MiB frame, permessage-deflate connections with a lost segment each way, and a mid-stream start of
//! permessage-deflate connections. Checked against the endpoints' own logs: every message reported with
//! its bytes is byte-identical to what the sender sent, in order; a message that cannot be known says so;
//! the messages wholly in the capture are all there.

use serde_json::Value;

use crate::captures::{record_bytes, same_endpoint, sha256_hex};
use crate::util::*;

fn truth_of(name: &str) -> Value {
    let path = captures_dir().join(format!("{name}.truth.json"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Our connection for a truth connection.
fn ours<'a>(report: &'a Value, tc: &Value) -> &'a Value {
    let found: Vec<&Value> = report["connections"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| {
            same_endpoint(&c["client"], &tc["client"]) && same_endpoint(&c["server"], &tc["server"])
        })
        .collect();
    assert_eq!(found.len(), 1, "connection from {}", tc["client"]["port"]);
    found[0]
}

/// How one side's reported messages line up with what the sender logged.
#[derive(Debug, Default)]
struct Side {
    /// Reported with their bytes, each identical to the sender's.
    exact: usize,
    /// Of those, inflated while part of the compression history was unknown.
    after_gap: usize,
    /// Reported with `length: null` because the history they refer to was not captured.
    unknown: usize,
    /// Index (into the side's logged messages) of each exact and unknown message, in order.
    matched: Vec<usize>,
    /// Logged messages wholly in the capture that were not reported, by index.
    missing: Vec<usize>,
}

/// Aligns `side`'s reported messages (data messages and control frames apart: a ping may go out between
/// the fragments of a message) with the logged ones, asserting that nothing is wrong.
fn align(label: &str, conn: &Value, tc: &Value, side: &str) -> Side {
    let empty = vec![];
    let mut out = Side::default();
    let logged: Vec<&Value> = tc["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["from"] == side)
        .collect();
    for control in [false, true] {
        let is_control =
            |m: &Value| matches!(m["opcode"].as_str(), Some("ping" | "pong" | "close"));
        let want: Vec<usize> = (0..logged.len())
            .filter(|&i| is_control(logged[i]) == control)
            .collect();
        let got: Vec<&Value> = conn["messages"]
            .as_array()
            .unwrap_or(&empty)
            .iter()
            .filter(|m| m["from"] == side && is_control(m) == control)
            .collect();
        let mut k = 0; // next logged candidate (index into `want`)
        for g in got {
            if g["complete"] != true {
                // Cut by a gap or by the capture's start: nothing to check but that it says so.
                assert!(
                    g["length"].is_null()
                        || g["opcode"] != "text"
                        || g["truncated"] == true
                        || g["complete"] == false
                );
                continue;
            }
            if g["length"].is_null() {
                // Not inflated: the history it refers to was lost; its length is still told.
                let err = g["inflate_error"].as_str().unwrap_or("");
                assert!(err.starts_with("context lost"), "{label} {side}: {err}");
                let length: u64 = err
                    .split("inflates to ")
                    .nth(1)
                    .and_then(|rest| rest.split(' ').next())
                    .and_then(|n| n.parse().ok())
                    .unwrap_or_else(|| panic!("{label} {side}: no length in {err:?}"));
                // It is the next logged message of that length wholly in the capture (the ones before
                // it were lost).
                let at = (k..want.len())
                    .find(|&j| {
                        logged[want[j]]["length"].as_u64() == Some(length)
                            && logged[want[j]]["in_capture"] == true
                    })
                    .unwrap_or_else(|| panic!("{label} {side}: unknown message of {length} bytes matches nothing logged"));
                out.missing.extend(
                    (k..at)
                        .map(|j| want[j])
                        .filter(|&i| logged[i]["in_capture"] == true),
                );
                out.matched.push(want[at]);
                out.unknown += 1;
                k = at + 1;
                continue;
            }
            let sha = sha256_hex(&record_bytes(g));
            let at = (k..want.len())
                .find(|&j| {
                    logged[want[j]]["opcode"] == g["opcode"] && logged[want[j]]["sha256"] == sha.as_str()
                })
                .unwrap_or_else(|| {
                    panic!(
                        "{label} {side}: reported {} of {} bytes matches no message the {side} sent (wrong bytes): {g:#}",
                        g["opcode"], g["length"]
                    )
                });
            out.missing.extend(
                (k..at)
                    .map(|j| want[j])
                    .filter(|&i| logged[i]["in_capture"] == true),
            );
            out.matched.push(want[at]);
            out.exact += 1;
            out.after_gap += usize::from(g["inflated_after_gap"] == true);
            assert_eq!(
                g["length"].as_u64(),
                logged[want[at]]["length"].as_u64(),
                "{label} {side}"
            );
            k = at + 1;
        }
        out.missing.extend(
            (k..want.len())
                .map(|j| want[j])
                .filter(|&i| logged[i]["in_capture"] == true),
        );
    }
    out.missing.sort_unstable();
    out.matched.sort_unstable();
    out
}

fn report(name: &str) -> Value {
    let capture = captures_dir().join(format!("{name}.pcap"));
    report_of(&capture, &["--messages", "--payload", "full"])
}

#[test]
fn a_capture_started_inside_a_1_mib_frame_finds_both_directions_and_every_later_message() {
    let truth = truth_of("midframe-1mib");
    let report = report("midframe-1mib");
    let tc = &truth["connections"][0];
    let conn = ours(&report, tc);
    let label = "midframe-1mib";
    assert!(conn["handshake"].is_null());
    assert!(
        diag_ids(conn).contains(&"midstream_start".into()),
        "{conn:#}"
    );
    for side in ["client", "server"] {
        let s = align(label, conn, tc, side);
        let logged: Vec<&Value> = tc["messages"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["from"] == side)
            .collect();
        // Nothing reported from before the capture, nothing unknown (no compression).
        assert_eq!(s.unknown, 0);
        assert!(
            s.matched.iter().all(|&i| logged[i]["in_capture"] == true),
            "{label} {side}"
        );
        // The lock is on the first boundary after the cut, or past at most two weak first frames (a
        // short binary or text frame that garbage could have landed on, see ws/hunt.rs): every message
        // after those is there.
        let in_capture: Vec<usize> = (0..logged.len())
            .filter(|&i| logged[i]["in_capture"] == true)
            .collect();
        assert!(
            s.missing.len() <= 2,
            "{label} {side}: missing {:?}",
            s.missing
        );
        assert_eq!(
            &s.missing[..],
            &in_capture[..s.missing.len()],
            "{label} {side}: only the first may be missing"
        );
        assert_eq!(
            s.exact + s.missing.len(),
            in_capture.len(),
            "{label} {side}"
        );
    }
    // Found in time order across the directions: the client's close came first, pings were answered.
    assert_eq!(conn["close"]["outcome"], "clean");
    assert_eq!(conn["close"]["initiator"], "client");
    assert_eq!(conn["close"]["code"], 1000);
    assert_eq!(conn["ping"]["unanswered"], 0, "{:#}", conn["ping"]);
    let errors: Vec<&Value> = conn["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["severity"] == "error")
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    // The skipped bytes: the server's frame's rest (327 KiB: more than the old 256 KiB hunting budget).
    let left = truth["derived"]["frame_bytes_left"]["server"]
        .as_u64()
        .unwrap();
    assert!(left > 256 * 1024);
}

/// The index of the side's first logged message of at least `len` bytes (the fresh 40 KiB).
fn first_long(tc: &Value, side: &str, len: u64) -> usize {
    tc["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["from"] == side)
        .position(|m| m["length"].as_u64().unwrap_or(0) >= len)
        .unwrap()
}

fn takeover(tc: &Value) -> bool {
    !tc["handshake"]["extensions"]["server"]
        .as_str()
        .unwrap_or("")
        .contains("no_context_takeover")
}

/// Both deflate captures: per connection and side, every message exact or unknown (never wrong); without
/// context takeover all exact; with it, all exact after the fresh 40 KiB.
fn check_deflate(name: &str, midstream: bool) {
    let truth = truth_of(name);
    let report = report(name);
    for tc in truth["connections"].as_array().unwrap() {
        let conn = ours(&report, tc);
        let label = format!("{name} :{}", tc["server"]["port"]);
        assert_eq!(conn["close"]["outcome"], "clean", "{label}");
        if midstream {
            assert!(conn["handshake"].is_null(), "{label}");
        } else {
            assert_eq!(
                diag_ids(conn).iter().filter(|d| *d == "tcp_gap").count(),
                2,
                "{label}"
            );
        }
        let mut recovered = 0;
        let mut unrecoverable = 0;
        for side in ["client", "server"] {
            let s = align(&label, conn, tc, side);
            let logged: Vec<&Value> = tc["messages"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|m| m["from"] == side)
                .collect();
            let fresh = first_long(tc, side, 40 * 1024);
            // Every message wholly in the capture is there (exact or unknown).
            assert!(
                s.missing.is_empty(),
                "{label} {side}: missing {:?}",
                s.missing
            );
            if takeover(tc) {
                // After the fresh bytes every message is exact: the window is known again.
                let known_after: usize = s.matched.iter().filter(|&&i| i > fresh).count();
                let after: usize = (fresh + 1..logged.len())
                    .filter(|&i| logged[i]["in_capture"] == true)
                    .count();
                assert_eq!(known_after, after, "{label} {side}");
                assert!(
                    s.unknown > 0,
                    "{label} {side}: the ticks copy from the lost window"
                );
            } else {
                assert_eq!(s.unknown, 0, "{label} {side}");
            }
            if midstream {
                // No handshake: every compressed message was inflated with assumed parameters and the
                // history unknown at first; the exact ones say how.
                assert!(s.after_gap > 0, "{label} {side}");
            } else if !takeover(tc) {
                // Negotiated no_context_takeover: the normal path, nothing to recover.
                assert_eq!(s.after_gap, 0, "{label} {side}");
            } else {
                assert!(s.after_gap > 0, "{label} {side}");
            }
            recovered += s.after_gap;
            unrecoverable += s.unknown;
        }
        // The counts in the record match the messages.
        let counts = &conn["deflate_recovery"];
        if recovered + unrecoverable == 0 {
            assert!(counts.is_null(), "{label}: {counts}");
        } else {
            let total = |k: &str| {
                counts["client"][k].as_u64().unwrap() + counts["server"][k].as_u64().unwrap()
            };
            assert_eq!(total("recovered"), recovered as u64, "{label}");
            assert!(total("unrecoverable") >= unrecoverable as u64, "{label}");
        }
        let errors: Vec<&Value> = conn["diagnostics"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["severity"] == "error")
            .collect();
        assert!(errors.is_empty(), "{label}: {errors:#?}");
    }
}

#[test]
fn deflate_connections_with_a_lost_segment_report_only_exact_bytes() {
    check_deflate("deflate-gap", false);
}

#[test]
fn deflate_connections_captured_mid_stream_report_only_exact_bytes() {
    check_deflate("deflate-midstream", true);
}

/// A classic pcap's global header and its records (header + data each), as stored.
fn pcap_records(bytes: &[u8]) -> (&[u8], Vec<&[u8]>) {
    let little = matches!(
        bytes[..4],
        [0xd4, 0xc3, 0xb2, 0xa1] | [0x4d, 0x3c, 0xb2, 0xa1]
    );
    let word = |at: usize| {
        let b = [bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]];
        if little {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        }
    };
    let mut records = Vec::new();
    let mut at = 24;
    while at + 16 <= bytes.len() {
        let end = at + 16 + word(at + 8) as usize;
        records.push(&bytes[at..end]);
        at = end;
    }
    (&bytes[..24], records)
}

/// A pcap record's capture time, Unix seconds (microsecond or nanosecond files).
fn record_time(header: &[u8], record: &[u8]) -> f64 {
    let little = matches!(
        header[..4],
        [0xd4, 0xc3, 0xb2, 0xa1] | [0x4d, 0x3c, 0xb2, 0xa1]
    );
    let nanos = matches!(
        header[..4],
        [0x4d, 0x3c, 0xb2, 0xa1] | [0xa1, 0xb2, 0x3c, 0x4d]
    );
    let word = |at: usize| {
        let b = [record[at], record[at + 1], record[at + 2], record[at + 3]];
        f64::from(if little {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        })
    };
    word(0) + word(4) / if nanos { 1e9 } else { 1e6 }
}

/// Data messages and control frames the whole capture shows that the cut one should have too but does
/// not, per connection and side: those completed in `wanted` (a time range), less what was reported.
/// (Only for captures without compression, where every message after a loss is decodable.)
fn missing_of(
    whole: &Value,
    cut: &Value,
    wanted: impl Fn(f64) -> bool,
) -> Vec<(String, &'static str, usize)> {
    let mut out = Vec::new();
    for reference in whole["connections"].as_array().unwrap() {
        let found = cut["connections"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| pair(c) == pair(reference));
        for side in ["client", "server"] {
            let want = reference["messages"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|m| m["from"] == side && wanted(m["time"].as_f64().unwrap()))
                .count();
            let got = found.map_or(0, |c| {
                c["messages"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|m| m["from"] == side && m["complete"] == true)
                    .count()
            });
            if want > got {
                out.push((pair(reference).0, side, want - got));
            }
        }
    }
    out
}

/// The endpoints of a connection record, in an order that does not depend on the roles.
fn pair(conn: &Value) -> (String, String) {
    let a = format!("{}:{}", conn["client"]["ip"], conn["client"]["port"]);
    let b = format!("{}:{}", conn["server"]["ip"], conn["server"]["port"]);
    if a < b { (a, b) } else { (b, a) }
}

/// Checks a report of a cut or holed capture against the report of the whole one: every message it
/// gives bytes for is, in order per side, one of the whole capture's messages of that side with the same
/// opcode and bytes. Returns (exact, of which inflated after a loss, unknown).
fn nothing_invented(label: &str, whole: &Value, cut: &Value) -> (usize, usize, usize) {
    let (mut exact, mut recovered, mut unknown) = (0, 0, 0);
    for conn in cut["connections"].as_array().unwrap() {
        let Some(reference) = whole["connections"]
            .as_array()
            .unwrap()
            .iter()
            .find(|w| pair(w) == pair(conn))
        else {
            assert!(
                conn["messages"].as_array().is_none_or(|m| m.is_empty()),
                "{label}: messages on a connection the whole capture does not have: {conn:#}"
            );
            continue;
        };
        for side in ["client", "server"] {
            let theirs: Vec<&Value> = reference["messages"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|m| m["from"] == side)
                .collect();
            let mut k = 0;
            for m in conn["messages"].as_array().unwrap() {
                if m["from"] != side || m["complete"] != true {
                    continue;
                }
                if m["length"].is_null() {
                    assert!(m["inflate_error"].is_string(), "{label}: {m:#}");
                    unknown += 1;
                    continue;
                }
                let bytes = record_bytes(m);
                let at = (k..theirs.len())
                    .find(|&j| theirs[j]["opcode"] == m["opcode"] && record_bytes(theirs[j]) == bytes)
                    .unwrap_or_else(|| {
                        panic!("{label} {side}: a message the whole capture does not have (wrong bytes): {m:#}")
                    });
                k = at + 1;
                exact += 1;
                recovered += usize::from(m["inflated_after_gap"] == true);
            }
        }
    }
    (exact, recovered, unknown)
}

/// Recordings of real endpoints (compressed with and without context takeover, reduced windows,
/// Chromium, plain; ours and third parties'), cut to start at many packets (mid-stream and mid-frame
/// starts) or holed by one lost packet: whatever is reported with bytes is what the whole recording
/// shows, never anything else; without compression, nearly everything after the loss is there.
#[test]
fn cut_and_holed_recordings_report_only_what_the_whole_recording_shows() {
    let mut totals = (0, 0, 0);
    // (capture, cut points: 0 for every packet, compressed). node-ws-mix has frames of 64 KiB and 1 MiB, masked and
    // not, to start inside.
    for (name, cuts, compressed) in [
        ("demo.pcap", 0, true),
        ("ipv6-sll2.pcap", 0, true),
        ("chromium.pcap", 0, true),
        ("close-codes.pcap", 24, false),
        ("sll1.pcap", 0, false),
        ("node-ws-mix.pcap", 8, false),
        // Third parties' recordings (skipped where the shared captures are absent).
        ("public/zeek-pr5646__websocket_compressed.pcap", 0, true),
        (
            "public/suricata-verify__websocket-compressed__example_websocket.pcap",
            0,
            true,
        ),
        ("public/zeek__jupyter-websocket.pcap", 0, false),
        ("public/zeek__broker-websocket.pcap", 0, false),
    ] {
        let path = match name.strip_prefix("public/") {
            Some(file) => match public_captures_dir() {
                Some(dir) => dir.join(file),
                None => continue,
            },
            None => captures_dir().join(name),
        };
        let bytes = std::fs::read(&path).unwrap();
        let whole = report_of(&path, &["--messages", "--payload", "full"]);
        let (header, records) = pcap_records(&bytes);
        let n = records.len();
        let points: Vec<usize> = if cuts == 0 {
            (1..n).collect()
        } else {
            (1..=cuts).map(|i| i * n / (cuts + 1)).collect()
        };
        for &at in &points {
            for holed in [false, true] {
                let kept: Vec<&[u8]> = if holed {
                    records
                        .iter()
                        .enumerate()
                        .filter(|&(i, _)| i != at)
                        .map(|(_, r)| *r)
                        .collect()
                } else {
                    records[at..].to_vec()
                };
                let mut out = header.to_vec();
                for r in kept {
                    out.extend_from_slice(r);
                }
                let cut = report_bytes(&out, &["--messages", "--payload", "full"]);
                let how = if holed {
                    "without packet"
                } else {
                    "from packet"
                };
                let label = format!("{name} {how} {}", at + 1);
                let (e, r, u) = nothing_invented(&label, &whole, &cut);
                totals = (totals.0 + e, totals.1 + r, totals.2 + u);
                if compressed {
                    continue;
                }
                // Without compression every message after the loss is decodable: all are there, but the
                // one the loss cut and up to two weak first frames of each direction (see ws/hunt), and
                // for a hole, those the lost packet completed.
                let t = record_time(header, records[at]);
                let missing = if holed {
                    let in_hole = |m: &Value| (m["time"].as_f64().unwrap() - t).abs() < 1e-6;
                    let lost: usize = whole["connections"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .flat_map(|c| c["messages"].as_array().unwrap())
                        .filter(|m| in_hole(m))
                        .count();
                    missing_of(&whole, &cut, |_| true)
                        .into_iter()
                        .filter(|m| m.2 > 3 + lost)
                        .collect::<Vec<_>>()
                } else {
                    missing_of(&whole, &cut, |time| time >= t - 1e-6)
                        .into_iter()
                        .filter(|m| m.2 > 3)
                        .collect()
                };
                assert!(missing.is_empty(), "{label}: {missing:?}");
            }
        }
    }
    eprintln!(
        "cut recordings: {} messages exact ({} of them inflated after a loss), {} unknown",
        totals.0, totals.1, totals.2
    );
    assert!(totals.0 > 0 && totals.1 > 0, "{totals:?}");
}

/// permessage-deflate as a context-takeover sender does it (RFC 7692 §7.2.1): one raw DEFLATE stream,
/// each message sync-flushed and its 00 00 ff ff tail removed.
fn deflate_messages(messages: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut z = flate2::Compress::new(flate2::Compression::default(), false);
    messages
        .iter()
        .map(|m| {
            let mut out = Vec::with_capacity(m.len() + 1024);
            z.compress_vec(m, &mut out, flate2::FlushCompress::Sync)
                .unwrap();
            assert!(out.ends_with(&[0, 0, 0xff, 0xff]));
            out.truncate(out.len() - 4);
            out
        })
        .collect()
}

/// A capture that starts inside a large compressed frame of a context-takeover direction: the frame
/// after it is found, every later message is either byte-exact or unknown (never guessed), and once
/// fresh output has refilled the window, all are exact.
#[test]
fn a_start_inside_a_large_compressed_frame_gives_exact_or_unknown_messages() {
    let mut rng = Rng(0xDEF1);
    let hex = |rng: &mut Rng, n: usize| -> Vec<u8> {
        rng.bytes(n / 2)
            .iter()
            .flat_map(|b| format!("{b:02x}").into_bytes())
            .collect()
    };
    let tick =
        |i: usize| format!(r#"{{"tick":{i},"status":"ok","load":{}}}"#, i * 7 % 100).into_bytes();
    let mut sent: Vec<Vec<u8>> = (0..8).map(tick).collect();
    let big = sent.len();
    sent.push(hex(&mut rng, 600 * 1024));
    sent.extend((8..20).map(tick));
    let fresh = sent.len();
    sent.push(rng.bytes(40 * 1024));
    sent.extend((20..40).map(tick));
    let wire = deflate_messages(&sent);
    let mut conv = Conv::new("10.9.0.1:41000", "10.9.0.2:8080");
    let mut cut = 0;
    for (i, payload) in wire.iter().enumerate() {
        let opcode = if i == big || i == fresh { 0x2 } else { 0x1 };
        let frame = wsprobe::ws::frame::encode_frame(true, 0b100, opcode, None, payload);
        let before = conv.packets.len();
        conv.send(false, &frame);
        if i == big {
            cut = before + (conv.packets.len() - before) / 2;
        }
        conv.send(
            true,
            &client_frame(true, 0x1, format!("ack {i}").as_bytes()),
        );
        conv.wait(0.01);
    }
    let report = report_bytes(
        &pcap_of(&conv, &conv.packets[cut..], Link::Ethernet),
        &["--messages", "--payload", "full"],
    );
    let conns = report["connections"].as_array().unwrap();
    assert_eq!(conns.len(), 1, "{report:#}");
    let conn = &conns[0];
    assert!(conn["handshake"].is_null());
    assert_eq!(
        conn["client"]["port"], 41000,
        "the masked side is the client"
    );
    let got: Vec<&Value> = conn["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["from"] == "server")
        .collect();
    // Each reported message is the next sent one after the big frame with its bytes, or unknown (then
    // of the next one's length); only the first may come after up to two skipped weak first frames
    // (see ws/hunt).
    let mut k = big + 1;
    let (mut exact, mut unknown, mut after_fresh) = (0, 0, 0);
    for (n, m) in got.iter().enumerate() {
        assert_eq!(m["complete"], true, "{m:#}");
        let fits = |j: usize| -> bool {
            if m["length"].is_null() {
                let err = m["inflate_error"].as_str().unwrap();
                err.starts_with("context lost")
                    && err.contains(&format!("inflates to {} bytes", sent[j].len()))
            } else {
                record_bytes(m) == sent[j]
            }
        };
        let skips = if n == 0 { 2 } else { 0 };
        let j = (k..=(k + skips).min(sent.len() - 1))
            .find(|&j| fits(j))
            .unwrap_or_else(|| panic!("reported message {n} is not sent message {k}: wrong bytes"));
        if m["length"].is_null() {
            assert!(j < fresh, "unknown after the fresh window: message {j}");
            unknown += 1;
        } else {
            assert_eq!(m["inflated_after_gap"] == true, j <= fresh, "message {j}");
            exact += 1;
            after_fresh += usize::from(j > fresh);
        }
        k = j + 1;
    }
    eprintln!(
        "start inside a compressed frame: {exact} exact ({after_fresh} after the fresh window), {unknown} unknown, first reported: message {}",
        k - got.len()
    );
    assert_eq!(k, sent.len(), "every message after the big one is there");
    assert_eq!(after_fresh, sent.len() - fresh - 1);
    assert!(
        unknown > 0 && exact > after_fresh,
        "exact {exact}, unknown {unknown}"
    );
    let recovery = &conn["deflate_recovery"]["server"];
    assert_eq!(recovery["unrecoverable"], unknown as u64);
}

/// Both connections of deflate-gap end with a hole still open, so both stop waiting for late data in
/// the same sweep: they are reported in order of id, run after run (the flow table's order is random).
#[test]
fn connections_finished_in_one_sweep_come_in_order_of_id() {
    for _ in 0..6 {
        let report = report_of(&captures_dir().join("deflate-gap.pcap"), &[]);
        let ids: Vec<u64> = report["connections"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_u64().unwrap())
            .collect();
        assert_eq!(ids, [0, 1]);
    }
}
