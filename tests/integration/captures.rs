//! Real captures: ours (recorded from real clients and servers, ground truth from the
//! endpoints) and other projects' public ones.

use crate::util::*;

#[test]
fn every_public_capture_gives_a_report() {
    let Some(dir) = public_captures_dir() else {
        eprintln!("../shared/captures/public not present; skipped");
        return;
    };
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if !path
            .extension()
            .is_some_and(|e| e == "pcap" || e == "pcapng" || e == "dump")
        {
            continue;
        }
        let report = report_of(&path, &["--messages"]);
        assert!(
            report["inputs"][0]["error"].is_null(),
            "{}: {}",
            path.display(),
            report["inputs"][0]["error"]
        );
        // The table renders too.
        wsprobe().arg("analyze").arg(&path).assert().success();
    }
}

use base64::Engine;
use serde_json::Value;
use sha2::{Digest, Sha256};

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The payload bytes a message record stands for (close: code + reason, as on the wire).
pub(crate) fn record_bytes(m: &Value) -> Vec<u8> {
    let mut bytes = match (m["text"].as_str(), m["base64"].as_str()) {
        (Some(t), _) => t.as_bytes().to_vec(),
        (None, Some(b)) => base64::engine::general_purpose::STANDARD.decode(b).unwrap(),
        _ => Vec::new(),
    };
    if m["opcode"] == "close" && m["wire_length"].as_u64() != Some(0) {
        let code = m["close_code"].as_u64().unwrap() as u16;
        let mut with_code = code.to_be_bytes().to_vec();
        with_code.append(&mut bytes);
        bytes = with_code;
    }
    bytes
}

pub(crate) fn same_endpoint(ours: &Value, truth: &Value) -> bool {
    ours["port"] == truth["port"]
        && ours["ip"]
            .as_str()
            .map(|ip| ip.trim_start_matches("::ffff:"))
            == truth["addr"].as_str()
}

/// Every recorded capture against what its endpoints logged: each message and control frame
/// byte-exact (sha256) and in order per side, frame counts, handshake status, close codes,
/// outcomes and who ended the connection.
#[test]
fn recorded_captures_match_the_endpoints_ground_truth() {
    let mut checked = 0;
    for entry in std::fs::read_dir(captures_dir()).unwrap() {
        let truth_path = entry.unwrap().path();
        let Some(name) = truth_path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".truth.json"))
        else {
            continue;
        };
        let truth: Value =
            serde_json::from_str(&std::fs::read_to_string(&truth_path).unwrap()).unwrap();
        if truth["schema"] != "wsprobe-truth/1" {
            // Another truth model (HTTP/2 streams: tests/integration/http2.rs).
            continue;
        }
        if truth["derived"]["operation"].is_string() {
            // Cut or holed recordings (messages missing from the capture): checked by fidelity.rs.
            continue;
        }
        let capture = ["pcap", "pcapng"]
            .iter()
            .map(|ext| captures_dir().join(format!("{name}.{ext}")))
            .find(|p| p.exists())
            .unwrap_or_else(|| panic!("no capture for {name}"));
        // wss captures (tls_scenarios.py) are decrypted with the key log their endpoints wrote.
        let keys = captures_dir().join(format!("{name}.keys"));
        let keys = keys.to_string_lossy().into_owned();
        let mut args = vec!["--messages", "--payload", "full"];
        if std::path::Path::new(&keys).exists() {
            args.extend(["--keylog", keys.as_str()]);
        }
        let report = report_of(&capture, &args);
        let ours = report["connections"].as_array().unwrap();
        for tc in truth["connections"].as_array().unwrap() {
            let label = format!("{name} connection {} ({})", tc["id"], tc["client"]["port"]);
            let found: Vec<&Value> = ours
                .iter()
                .filter(|c| {
                    same_endpoint(&c["client"], &tc["client"])
                        && same_endpoint(&c["server"], &tc["server"])
                })
                .collect();
            let kind = tc["end"]["kind"].as_str().unwrap();
            if kind == "http_only" && truth.get("tls").is_some() {
                // Every TLS connection is listed: this one with no WebSocket in it.
                assert_eq!(found.len(), 1, "{label}: TLS connection not listed");
                assert!(found[0]["handshake"].is_null(), "{label}");
                assert_eq!(found[0]["close"]["outcome"], "not_websocket", "{label}");
                assert_eq!(found[0]["tls"]["decrypted"], true, "{label}");
                continue;
            }
            if kind == "tls" {
                // A TLS connection without its keys: listed with what TLS shows in clear.
                assert_eq!(found.len(), 1, "{label}: TLS connection not listed");
                assert!(found[0]["handshake"].is_null(), "{label}");
                assert_eq!(found[0]["close"]["outcome"], "encrypted", "{label}");
                assert_eq!(
                    found[0]["tls"]["sni"], tc["notes"]["server_name"],
                    "{label}"
                );
                continue;
            }
            if matches!(kind, "http_only" | "connect_refused") {
                assert!(found.is_empty(), "{label}: {kind} reported as WebSocket");
                continue;
            }
            assert_eq!(found.len(), 1, "{label}: found {} connections", found.len());
            let conn = found[0];
            checked += 1;
            if let Some(status) = tc["handshake"]["status"].as_u64() {
                assert_eq!(
                    conn["handshake"]["status"].as_u64(),
                    Some(status),
                    "{label}"
                );
                assert_eq!(
                    conn["handshake"]["path"], tc["handshake"]["path"],
                    "{label}"
                );
            }
            if kind == "refused" {
                assert_eq!(conn["close"]["outcome"], "not_websocket", "{label}");
                continue;
            }
            // Messages, per side, in order, byte-exact.
            let empty = vec![];
            let our_msgs = conn["messages"].as_array().unwrap_or(&empty);
            for side in ["client", "server"] {
                // Data messages and control frames are compared as two sequences: a ping sent
                // between the fragments of a message completes before it.
                let is_control =
                    |m: &&Value| matches!(m["opcode"].as_str(), Some("ping" | "pong" | "close"));
                let mut want: Vec<&Value> = tc["messages"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|m| m["from"] == side)
                    .collect();
                let mut got: Vec<&Value> = our_msgs.iter().filter(|m| m["from"] == side).collect();
                want.sort_by_key(|m| is_control(m));
                got.sort_by_key(|m| is_control(m));
                assert_eq!(got.len(), want.len(), "{label}: {side} message count");
                for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                    assert_eq!(g["opcode"], w["opcode"], "{label}: {side} message {i}");
                    assert_eq!(g["complete"], true, "{label}: {side} message {i}");
                    assert_eq!(
                        g["length"].as_u64(),
                        w["length"].as_u64(),
                        "{label}: {side} message {i} length"
                    );
                    if let Some(sha) = w["sha256"].as_str() {
                        assert_eq!(
                            sha256_hex(&record_bytes(g)),
                            sha,
                            "{label}: {side} message {i} bytes"
                        );
                    }
                    if let Some(seq) = w["frame_seq"].as_array() {
                        assert_eq!(
                            g["fragments"].as_u64(),
                            Some(seq.len() as u64),
                            "{label}: {side} message {i} fragments"
                        );
                    }
                    if let Some(compressed) = w["compressed"].as_bool() {
                        assert_eq!(
                            g["compressed"].as_bool(),
                            Some(compressed),
                            "{label}: {side} message {i} compressed"
                        );
                    }
                }
            }
            match kind {
                "clean" => {
                    assert_eq!(conn["close"]["outcome"], "clean", "{label}");
                    let sent: Vec<Option<u64>> = ["client_sent", "server_sent"]
                        .iter()
                        .map(|k| tc["close"][k]["code"].as_u64().or(Some(1005)))
                        .collect();
                    assert!(
                        sent.contains(&conn["close"]["code"].as_u64()),
                        "{label}: code {}",
                        conn["close"]["code"]
                    );
                    let errors: Vec<&Value> = conn["diagnostics"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .filter(|d| d["severity"] == "error")
                        .collect();
                    assert!(
                        errors.is_empty(),
                        "{label}: errors on clean traffic: {errors:#?}"
                    );
                }
                "killed" => {
                    assert_eq!(conn["close"]["outcome"], "abnormal", "{label}");
                    assert_eq!(conn["close"]["code"], 1006, "{label}");
                    assert_eq!(
                        conn["close"]["initiator"], tc["end"]["killed_side"],
                        "{label}"
                    );
                    assert!(
                        diag_ids(conn).contains(&"abnormal_closure".into()),
                        "{label}"
                    );
                }
                _ => {}
            }
        }
    }
    assert!(checked >= 60, "only {checked} connections checked");
}

/// The summary's account of what was not WebSocket, against what the endpoints logged: the
/// plain HTTP connections, the TLS ones with their server names, and the refused attempts per
/// server endpoint.
#[test]
fn the_summary_of_what_was_not_websocket_matches_the_ground_truth() {
    let mut checked = 0;
    for entry in std::fs::read_dir(captures_dir()).unwrap() {
        let truth_path = entry.unwrap().path();
        let Some(name) = truth_path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".truth.json"))
        else {
            continue;
        };
        let truth: Value =
            serde_json::from_str(&std::fs::read_to_string(&truth_path).unwrap()).unwrap();
        if truth["schema"] != "wsprobe-truth/1" {
            continue; // other schemas (HTTP/2) have tests of their own
        }
        let capture = ["pcap", "pcapng"]
            .iter()
            .map(|ext| captures_dir().join(format!("{name}.{ext}")))
            .find(|p| p.exists())
            .unwrap();
        // wss captures are read with their key log: inside, they are WebSocket.
        let keys = captures_dir().join(format!("{name}.keys"));
        let keys = keys.to_string_lossy().into_owned();
        let args: &[&str] = if std::path::Path::new(&keys).exists() {
            &["--keylog", &keys]
        } else {
            &[]
        };
        let report = report_of(&capture, args);
        let other = &report["summary"]["other_tcp"];
        let conns = truth["connections"].as_array().unwrap();
        let kind = |k: &str| {
            conns
                .iter()
                .filter(|c| c["end"]["kind"] == k)
                .collect::<Vec<_>>()
        };
        // Application-protocol and findings captures log other things (the libraries' own
        // events, the incident), not every connection attempt (Engine.IO long-polling, clients
        // retrying a server that is down).
        let app = conns
            .iter()
            .any(|c| c["app"].as_array().is_some_and(|a| !a.is_empty()));
        if app || !truth["incident"].is_null() {
            continue;
        }
        // In the TLS captures (truth with "tls"), "http_only" is HTTP inside TLS: those count
        // as TLS connections without WebSocket, as do TLS sessions that carry no HTTP at all
        // (OpenSSL s_client/s_server: TLS entries but no connection entries).
        let (http, tls_http) = match truth["tls"].as_array() {
            Some(tls) if conns.is_empty() => (0, tls.len()),
            Some(_) => (0, kind("http_only").len()),
            None => (kind("http_only").len(), 0),
        };
        assert_eq!(other["http"], http, "{name}: http");
        let tls = kind("tls");
        assert_eq!(other["tls"], tls.len() + tls_http, "{name}: tls");
        for c in &tls {
            let sni = c["notes"]["server_name"].as_str().unwrap();
            assert_eq!(other["tls_server_names"][sni], 1, "{name}: SNI {sni}");
        }
        let refused = kind("connect_refused");
        let listed = other["refused"].as_array().unwrap();
        assert_eq!(
            listed
                .iter()
                .map(|a| a["attempts"].as_u64().unwrap())
                .sum::<u64>(),
            refused.len() as u64,
            "{name}: refused attempts"
        );
        for c in &refused {
            assert!(
                listed
                    .iter()
                    .any(|a| a["server"]["port"] == c["server"]["port"]
                        && a["server"]["ip"] == c["server"]["addr"]),
                "{name}: no refused attempts listed for {}",
                c["server"]
            );
        }
        if !refused.is_empty() {
            let a = &listed[0];
            assert!(
                a["first"].as_f64() < a["last"].as_f64(),
                "{name}: time span"
            );
        }
        assert_eq!(other["other"], 0, "{name}: nothing unexplained");
        checked += tls.len() + refused.len() + kind("http_only").len();
    }
    assert!(checked >= 10, "only {checked} checked");
}

/// On every capture, ours and the public ones, every finding carries its time.
#[test]
fn every_finding_has_a_time() {
    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(captures_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    if let Some(public) = public_captures_dir() {
        files.extend(
            std::fs::read_dir(public)
                .unwrap()
                .map(|e| e.unwrap().path()),
        );
    }
    let mut seen = 0;
    for path in files.iter().filter(|p| {
        p.extension()
            .is_some_and(|e| e == "pcap" || e == "pcapng" || e == "dump")
    }) {
        let report = report_of(path, &[]);
        for conn in report["connections"].as_array().unwrap() {
            for d in conn["diagnostics"].as_array().unwrap() {
                assert!(d["time"].is_f64(), "{}: {d}", path.display());
                assert!(
                    !d["message"].as_str().unwrap().contains("at this time"),
                    "{d}"
                );
                seen += 1;
            }
        }
    }
    assert!(seen > 10, "{seen}");
}

#[test]
fn unanswered_pings_are_flagged() {
    let report = report_of(&captures_dir().join("ping-unanswered.pcap"), &[]);
    let conn = &report["connections"][0];
    assert!(
        diag_ids(conn).contains(&"ping_unanswered".into()),
        "{:?}",
        diag_ids(conn)
    );
    assert_eq!(conn["ping"]["unanswered"], 2);
    assert_eq!(conn["close"]["outcome"], "clean");
}

#[test]
fn killed_server_fails_the_gate_and_a_clean_capture_does_not() {
    wsprobe()
        .args(["analyze", "--fail-on", "abnormal_closure"])
        .arg(captures_dir().join("killed-server.pcap"))
        .assert()
        .code(1);
    wsprobe()
        .args(["analyze", "--fail-on", "abnormal_closure,error"])
        .arg(captures_dir().join("demo.pcap"))
        .assert()
        .code(0);
}

/// nginx without `proxy_set_header Upgrade` between a client and a WebSocket server: both legs
/// are refused upgrades, and each says what happened on its hop.
#[test]
fn a_proxy_that_strips_upgrade_is_named_on_both_legs() {
    let report = report_of(&captures_dir().join("proxy-strips-upgrade.pcap"), &[]);
    let conns = report["connections"].as_array().unwrap();
    assert_eq!(conns.len(), 2);
    let rejected = |port: u64| -> String {
        let c = conns
            .iter()
            .find(|c| c["server"]["port"] == port)
            .unwrap_or_else(|| panic!("no connection to :{port}"));
        assert_eq!(c["close"]["outcome"], "not_websocket");
        assert_eq!(c["handshake"]["status"], 426);
        let d = c["diagnostics"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["id"] == "handshake_rejected")
            .expect("handshake_rejected");
        d["message"].as_str().unwrap().to_string()
    };
    // The client asked correctly; the proxy's next hop dropped the headers.
    assert!(
        rejected(27000).contains("a proxy between"),
        "{}",
        rejected(27000)
    );
    // What reached the server lacked them.
    let server_leg = rejected(27001);
    assert!(
        server_leg
            .contains("reached the server without `Upgrade: websocket` and `Connection: Upgrade`"),
        "{server_leg}"
    );
}
