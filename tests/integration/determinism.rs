//! The report is the same bytes on every run: connections finished together (by the idle
//! sweep) come out in order of id, whatever the flow table's hash order, which changes from
//! run to run.

use crate::util::*;

/// `n` upgraded connections with a message each, all going silent, then one packet much later
/// so that one sweep finishes them all as idle.
fn silent_connections(n: u32) -> Vec<u8> {
    let mut capture = Vec::new();
    for i in 0..n {
        let mut c = Conv::new(
            &format!("10.3.{}.{}:{}", i >> 8, i & 0xFF, 40000 + i % 1000),
            "10.0.0.2:8080",
        );
        c.time += f64::from(i) * 1e-3;
        c.tcp_open();
        c.send(true, &upgrade_request("/quiet", ""));
        c.send(false, &upgrade_response(""));
        c.send(
            true,
            &client_frame(true, 1, format!("hello {i}").as_bytes()),
        );
        if i == n - 1 {
            c.wait(120.0);
            c.send(false, &server_frame(true, 1, b"late"));
        }
        let file = pcap(&c, Link::Ethernet);
        if capture.is_empty() {
            capture.extend_from_slice(&file[..24]);
        }
        capture.extend_from_slice(&file[24..]);
    }
    capture
}

fn run(path: &std::path::Path, format: &str) -> Vec<u8> {
    let out = wsprobe()
        .args([
            "analyze",
            "--format",
            format,
            "--messages",
            "--idle-timeout",
            "30",
        ])
        .arg(path)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[test]
fn connections_finished_by_one_sweep_come_out_in_order_and_alike_on_every_run() {
    let path = temp_file(&silent_connections(2000), "pcap");
    for format in ["json", "jsonl"] {
        let first = run(&path, format);
        for _ in 0..2 {
            assert!(run(&path, format) == first, "{format}: a run differed");
        }
    }
    let report: serde_json::Value = serde_json::from_slice(&run(&path, "json")).unwrap();
    let ids: Vec<u64> = report["connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_u64().unwrap())
        .collect();
    // 2,000, and the last one's late packet starts one more (mid-stream) after it expired.
    assert_eq!(ids.len(), 2001, "{:#}", report["summary"]);
    let stopped = report["connections"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["timing"]["ended_by"] == "stopped")
        .count();
    assert!(stopped >= 1999, "{stopped} stopped by the idle timeout");
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "in order of id: {ids:?}"
    );
}
