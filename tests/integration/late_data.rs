//! Captures that show data after the peer's ACK of it (`captures/late-*`, derived from real
//! recordings by `captures/record/late_data.py`; their truth files are the recordings' endpoint
//! logs, checked message by message in `captures::recorded_captures_match_the_endpoints_ground_truth`).

use serde_json::Value;

use crate::util::*;

fn derived_captures() -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(captures_dir()).unwrap() {
        let path = entry.unwrap().path();
        let Some(name) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".truth.json"))
        else {
            continue;
        };
        let truth: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        // (Captures cut from their recordings, `derived.operation`, are fidelity.rs's.)
        if truth["derived"]["late_after_ack"].is_object() {
            out.push((name.to_string(), truth));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn sent_by(truth: &Value, side: &str) -> u64 {
    truth["connections"][0]["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["from"] == side && matches!(m["opcode"].as_str(), Some("text" | "binary")))
        .count() as u64
}

/// Every message arrives, none is a gap, and each segment the capture shows after its ACK is
/// counted in `tcp.late_after_ack`, as the derivation counted them.
#[test]
fn data_shown_after_its_ack_is_used_and_counted() {
    let captures = derived_captures();
    assert!(captures.len() >= 3, "late-* captures missing");
    for (name, truth) in captures {
        let report = report_of(
            &captures_dir().join(format!("{name}.pcap")),
            &["--messages"],
        );
        let conns = report["connections"].as_array().unwrap();
        assert_eq!(conns.len(), 1, "{name}");
        let conn = &conns[0];
        assert!(
            !diag_ids(conn).contains(&"tcp_gap".into()),
            "{name}: {:#?}",
            conn["diagnostics"]
        );
        assert_eq!(conn["tcp"]["gaps"], 0, "{name}");
        assert_eq!(conn["tcp"]["late_after_gap"], 0, "{name}");
        let late = &truth["derived"]["late_after_ack"];
        let want = late["client"].as_u64().unwrap() + late["server"].as_u64().unwrap();
        assert!(want > 0, "{name}: nothing late in the capture");
        assert_eq!(conn["tcp"]["late_after_ack"].as_u64(), Some(want), "{name}");
        for side in ["client", "server"] {
            assert_eq!(
                conn["message_counts"][side].as_u64(),
                Some(sent_by(&truth, side)),
                "{name}: {side} messages"
            );
        }
        let complete = conn["messages"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["complete"] == true);
        assert!(complete, "{name}: an incomplete message");
        assert_eq!(conn["close"]["outcome"], "clean", "{name}");
    }
}

/// With no grace window (a gap at the ACK, the old behaviour) the moved segments of the deflate
/// capture are gaps, later client messages cannot be inflated, and each gap's diagnostic says
/// that its bytes did arrive, and how late.
#[test]
fn without_a_grace_window_late_bytes_are_said_in_the_gap() {
    for name in ["late-acked-deflate", "late-acked-plain"] {
        let path = captures_dir().join(format!("{name}.pcap"));
        let report = report_of(&path, &["--late-packets", "0", "--late-seconds", "0"]);
        let conn = &report["connections"][0];
        let gaps = conn["tcp"]["gaps"].as_u64().unwrap();
        assert!(
            gaps > 0,
            "{name}: the capture does not exercise the grace window"
        );
        assert!(
            conn["tcp"]["late_after_gap"].as_u64().unwrap() > 0,
            "{name}"
        );
        let texts: Vec<&str> = conn["diagnostics"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["id"] == "tcp_gap")
            .map(|d| d["message"].as_str().unwrap())
            .collect();
        assert_eq!(texts.len() as u64, gaps, "{name}");
        for text in texts {
            assert!(
                text.contains("arrived in the capture")
                    && text.contains("after the gap was declared"),
                "{name}: {text}"
            );
        }
    }
    let report = report_of(
        &captures_dir().join("late-acked-deflate.pcap"),
        &["--late-packets", "0", "--late-seconds", "0"],
    );
    let conn = &report["connections"][0];
    assert!(conn["message_counts"]["client"].as_u64().unwrap() < 12);
}

/// The grace window is an option: a packet count alone still waits (the time condition is 0),
/// and a negative time is refused.
#[test]
fn late_options() {
    let path = captures_dir().join("late-acked-deflate.pcap");
    let report = report_of(&path, &["--late-packets", "8", "--late-seconds", "0"]);
    assert_eq!(report["connections"][0]["tcp"]["gaps"], 0);
    wsprobe()
        .args(["analyze", "--late-seconds=-1"])
        .arg(&path)
        .assert()
        .code(2)
        .stderr(predicates::str::contains("--late-seconds"));
}

/// A conversation that ends with a close handshake and FINs both ways; returns the index of the
/// server's Close frame segment.
fn closing_conversation(conv: &mut Conv) -> usize {
    conv.tcp_open();
    conv.send(true, &upgrade_request("/late", ""));
    conv.send(false, &upgrade_response(""));
    conv.send(true, &client_frame(true, 1, b"hello"));
    conv.send(false, &server_frame(true, 1, b"hello"));
    conv.send(true, &client_frame(true, 8, &close_payload(1000, "bye")));
    conv.send(false, &server_frame(true, 8, &close_payload(1000, "bye")));
    let server_close = conv.packets.len() - 1;
    conv.fin(false);
    conv.fin(true);
    server_close
}

/// The server's Close frame shown after both FINs and the client's ACK of it (a merged or
/// SPAN capture): the connection waits for it instead of ending at the last FIN, and it
/// closes cleanly with no gap.
#[test]
fn a_segment_shown_after_both_fins_is_still_used() {
    let mut conv = Conv::new("10.0.0.1:40000", "10.0.0.2:8080");
    let server_close = closing_conversation(&mut conv);
    let late = conv.packets.remove(server_close);
    conv.packets.push(late);
    let report = report_bytes(&pcap(&conv, Link::Ethernet), &["--messages"]);
    let conn = &report["connections"][0];
    assert!(
        !diag_ids(conn).contains(&"tcp_gap".into()),
        "{:#?}",
        conn["diagnostics"]
    );
    assert_eq!(conn["close"]["outcome"], "clean", "{:#?}", conn["close"]);
    assert_eq!(conn["frames"]["server"]["close"], 1);
    assert_eq!(conn["tcp"]["late_after_ack"], 1);
}

/// The same Close frame lost for good: the connection is finished once the capture has gone on
/// for the grace window without it (not kept until the idle timeout), with the gap reported.
#[test]
fn missing_bytes_after_the_fins_are_a_gap_once_the_window_passes() {
    let mut conv = Conv::new("10.0.0.1:40000", "10.0.0.2:8080");
    let server_close = closing_conversation(&mut conv);
    let lost = conv.packets.remove(server_close);
    // Another connection goes on for a minute of capture time (sweeps run every 10 s).
    let mut other = Conv::new("10.0.0.3:40001", "10.0.0.2:8080");
    other.time = conv.time;
    other.tcp_open();
    other.send(true, &upgrade_request("/other", ""));
    other.send(false, &upgrade_response(""));
    for _ in 0..6 {
        other.wait(10.0);
        other.send(true, &client_frame(true, 1, b"tick"));
    }
    let mut bytes = pcap(&conv, Link::Ethernet);
    let mut others = pcap(&other, Link::Ethernet);
    bytes.extend_from_slice(&others.split_off(24));
    let out = wsprobe()
        .args(["analyze", "--format", "jsonl"])
        .arg(temp_file(&bytes, "pcap"))
        .output()
        .unwrap();
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let ended: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|l| l["event"] == "connection_ended")
        .collect();
    assert_eq!(ended.len(), 2);
    // The first connection ended while the second was still running, on its own terms.
    assert_eq!(ended[0]["connection"], 0);
    let record = &ended[0]["record"];
    let last_seen = ended[0]["time"].as_f64().unwrap();
    let at = lines.iter().position(|l| l == ended[0]).unwrap();
    assert!(
        lines[at..].iter().any(|l| l["event"] == "message"
            && l["connection"] == 1
            && l["time"].as_f64().unwrap() > last_seen + 20.0),
        "finished only at the end of the capture"
    );
    assert_eq!(
        record["tcp"]["gap_bytes"].as_u64(),
        Some(lost.payload.len() as u64)
    );
    let text = serde_json::to_string(&record["close"]).unwrap();
    assert!(!text.contains("tracking stopped"), "{text}");
    assert_eq!(record["close"]["outcome"], "incomplete", "{text}");
}

/// A connection that goes quiet after a loss the peer acknowledged: what it sent after the hole
/// is delivered at the next idle sweep, not held until the end of the capture.
#[test]
fn data_after_a_loss_on_a_quiet_connection_is_not_held_to_the_end() {
    let mut conv = Conv::new("10.0.0.1:40000", "10.0.0.2:8080");
    conv.mss = 40;
    conv.tcp_open();
    conv.send(true, &upgrade_request("/quiet", ""));
    conv.send(false, &upgrade_response(""));
    let first = conv.packets.len();
    conv.send(true, &client_frame(true, 1, &[b'x'; 70]));
    conv.send(true, &client_frame(true, 1, b"after the hole"));
    conv.send(false, &server_frame(true, 1, b"ack"));
    // The capture lost the second segment of the first message (payload only: the framer
    // keeps its place).
    conv.packets.remove(first + 1);
    let mut other = Conv::new("10.0.0.3:40001", "10.0.0.2:8080");
    other.time = conv.time;
    other.tcp_open();
    other.send(true, &upgrade_request("/other", ""));
    other.send(false, &upgrade_response(""));
    for _ in 0..6 {
        other.wait(10.0);
        other.send(true, &client_frame(true, 1, b"tick"));
    }
    let mut bytes = pcap(&conv, Link::Ethernet);
    let mut others = pcap(&other, Link::Ethernet);
    bytes.extend_from_slice(&others.split_off(24));
    let out = wsprobe()
        .args(["analyze", "--format", "jsonl", "--payload", "full"])
        .arg(temp_file(&bytes, "pcap"))
        .output()
        .unwrap();
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let after = lines
        .iter()
        .position(|l| {
            l["event"] == "message"
                && l["connection"] == 0
                && l["message"]["text"] == "after the hole"
        })
        .unwrap_or_else(|| panic!("not delivered: {lines:#?}"));
    let last_tick = lines
        .iter()
        .rposition(|l| l["event"] == "message" && l["connection"] == 1)
        .unwrap();
    assert!(after < last_tick, "held until the end of the capture");
}
