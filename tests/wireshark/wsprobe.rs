//! Runs wsprobe (`analyze --format json --frames --messages --payload full`) and reads its report
//! into [`Conn`]s.

use std::path::Path;
use std::process::Command;

use base64::Engine;
use serde_json::Value;

use crate::model::{Conn, Frame, Handshake, Message};

/// Diagnostic ids that name an RFC 6455 rule a frame or the handshake breaks: what a dissector
/// could flag from the bytes it decodes.
pub const VIOLATIONS: &[&str] = &[
    "handshake_accept_mismatch",
    "handshake_invalid",
    "unmasked_client_frame",
    "masked_server_frame",
    "reserved_bits_set",
    "reserved_opcode",
    "control_frame_fragmented",
    "control_frame_too_long",
    "invalid_close_code",
    "invalid_utf8",
    "unexpected_continuation",
    "interrupted_fragmented_message",
    "non_minimal_length",
    "data_after_close",
];

/// wsprobe's JSON report of `path`, credentials kept (`--no-redact`): the peers' logs show
/// the handshake as sent (Zeek logs wstunnel's bearer token).
pub fn report(path: &Path) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_wsprobe"))
        .args(["analyze", "--format", "json", "--frames", "--messages"])
        .args(["--payload", "full", "--max-message-bytes", "1073741824"])
        .args(
            // wss captures: the key log their endpoints wrote.
            Some(path.with_extension("keys"))
                .filter(|k| k.exists())
                .map(|k| vec!["--keylog".into(), k.into_os_string()])
                .unwrap_or_default(),
        )
        .arg("--no-redact")
        .arg(path)
        .env("NO_COLOR", "1")
        .env_remove("SSLKEYLOGFILE")
        .output()
        .expect("run wsprobe");
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "wsprobe failed on {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("wsprobe JSON")
}

fn endpoint(v: &Value) -> String {
    format!("{}:{}", v["ip"].as_str().unwrap(), v["port"])
}

/// The payload a message record shows (close: code and reason, as on the wire); None when it
/// could not be inflated.
pub fn payload(m: &Value) -> Option<Vec<u8>> {
    if m["length"].is_null() {
        return None;
    }
    let mut bytes = match (m["text"].as_str(), m["base64"].as_str()) {
        (Some(t), _) => t.as_bytes().to_vec(),
        (None, Some(b)) => base64::engine::general_purpose::STANDARD.decode(b).unwrap(),
        _ => Vec::new(),
    };
    // A Close body starts with its 2-byte code (a 1-byte body has none).
    if m["opcode"] == "close"
        && m["wire_length"].as_u64() >= Some(2)
        && let Some(code) = m["close_code"].as_u64()
    {
        let mut with_code = (code as u16).to_be_bytes().to_vec();
        with_code.append(&mut bytes);
        bytes = with_code;
    }
    Some(bytes)
}

/// The connections of a report.
pub fn connections(report: &Value) -> Vec<Conn> {
    report["connections"]
        .as_array()
        .unwrap()
        .iter()
        // TLS connections are listed for their TLS facts even with no WebSocket in them (a
        // page load, or undecrypted); tshark's view has WebSocket connections only.
        .filter(|c| {
            c["tls"].is_null()
                || !c["handshake"].is_null()
                || c["frames"]["client"]
                    .as_object()
                    .unwrap()
                    .values()
                    .chain(c["frames"]["server"].as_object().unwrap().values())
                    .any(|n| n.as_u64() != Some(0))
        })
        .map(|c| {
            let mut conn = Conn {
                ends: [endpoint(&c["client"]), endpoint(&c["server"])],
                label: format!("connection {}", c["id"]),
                handshake: c["handshake"]
                    .as_object()
                    .filter(|h| h["request_time"].is_number())
                    .map(|h| Handshake {
                        status: h["status"].as_u64().map(|s| s as u16),
                    }),
                violations: c["diagnostic_counts"]
                    .as_object()
                    .unwrap()
                    .keys()
                    .filter(|k| VIOLATIONS.contains(&k.as_str()))
                    .cloned()
                    .collect(),
                ..Conn::default()
            };
            for f in c["frames_detail"].as_array().unwrap() {
                let i = usize::from(f["from"] != "client");
                conn.frames[i].push(Frame {
                    opcode: f["opcode"].as_str().unwrap().to_string(),
                    fin: f["fin"].as_bool().unwrap(),
                    rsv: f["rsv"].as_u64().unwrap() as u8,
                    masked: f["masked"].as_bool().unwrap(),
                    payload_length: f["payload_length"].as_u64().unwrap(),
                });
            }
            for m in c["messages"].as_array().unwrap() {
                let i = usize::from(m["from"] != "client");
                let close_code = (m["opcode"] == "close" && m["wire_length"].as_u64() >= Some(2))
                    .then(|| m["close_code"].as_u64().unwrap() as u16);
                conn.messages[i].push(Message {
                    opcode: m["opcode"].as_str().unwrap().to_string(),
                    compressed: m["compressed"].as_bool().unwrap(),
                    fragments: m["fragments"].as_u64().unwrap() as usize,
                    payload: payload(m),
                    wire: Vec::new(),
                    close_code,
                    place: format!("at {:.6}", m["time"].as_f64().unwrap()),
                });
            }
            conn
        })
        .collect()
}
