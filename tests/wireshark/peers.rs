//! The public captures' own projects' expectations (Suricata `test.yaml` + `test.rules`, Zeek
//! baselines, nDPI `.out`, Arkime `.test`, evsetool's test), checked against wsprobe with explicit
//! asserts. Which file belongs to which capture: `../shared/captures/public/MANIFEST.md`.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::util::public_captures_dir;
use crate::wsprobe::{payload, report};

fn public() -> Option<PathBuf> {
    let dir = public_captures_dir();
    if dir.is_none() {
        eprintln!("note: ../shared/captures/public not present; peers' expectations skipped");
    }
    dir
}

/// The reported connections that carried WebSocket (an upgrade attempt or frames): TLS
/// connections are listed for their TLS facts even when nothing WebSocket is in them.
fn conns(r: &Value) -> Vec<&Value> {
    r["connections"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| {
            let frames = ["client", "server"].iter().any(|s| {
                c["frames"][s]
                    .as_object()
                    .is_some_and(|o| o.values().any(|n| n.as_u64() != Some(0)))
            });
            c["tls"].is_null() || !c["handshake"].is_null() || frames
        })
        .collect()
}

/// The reported connection whose client uses `port`.
fn by_client_port(r: &Value, port: u64) -> &Value {
    r["connections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["client"]["port"] == port)
        .unwrap_or_else(|| panic!("no connection from client port {port}: {r:#}"))
}

fn frames<'a>(c: &'a Value, from: &str) -> Vec<&'a Value> {
    c["frames_detail"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["from"] == from)
        .collect()
}

fn messages<'a>(c: &'a Value, from: &str) -> Vec<&'a Value> {
    c["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["from"] == from)
        .collect()
}

fn texts(c: &Value, from: &str) -> Vec<String> {
    messages(c, from)
        .iter()
        .filter(|m| m["opcode"] == "text")
        .map(|m| m["text"].as_str().unwrap().to_string())
        .collect()
}

fn ids(c: &Value) -> Vec<String> {
    c["diagnostic_counts"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect()
}

/// Capture time of packet `n` (1-based, as pcap_cnt and Wireshark count) of a pcap or pcapng.
fn packet_time(path: &Path, n: usize) -> f64 {
    let b = std::fs::read(path).unwrap();
    let u32_at = |i: usize, le: bool| {
        let a = [b[i], b[i + 1], b[i + 2], b[i + 3]];
        if le {
            u32::from_le_bytes(a)
        } else {
            u32::from_be_bytes(a)
        }
    };
    match &b[..4] {
        [0x0a, 0x0d, 0x0d, 0x0a] => {
            // pcapng (little-endian here); timestamps in microseconds unless if_tsresol says.
            let mut i = 0;
            let mut count = 0;
            let mut resolution = 1e-6;
            while i + 12 <= b.len() {
                let kind = u32_at(i, true);
                let len = u32_at(i + 4, true) as usize;
                if kind == 1 {
                    let mut o = i + 16;
                    while o + 4 <= i + len - 4 {
                        let code = u16::from_le_bytes([b[o], b[o + 1]]);
                        let olen = u16::from_le_bytes([b[o + 2], b[o + 3]]) as usize;
                        if code == 9 {
                            let r = b[o + 4];
                            resolution = if r & 0x80 == 0 {
                                10f64.powi(-i32::from(r))
                            } else {
                                2f64.powi(-i32::from(r & 0x7f))
                            };
                        }
                        if code == 0 {
                            break;
                        }
                        o += 4 + olen.div_ceil(4) * 4;
                    }
                }
                if kind == 6 {
                    count += 1;
                    if count == n {
                        let ts = (u64::from(u32_at(i + 12, true)) << 32)
                            | u64::from(u32_at(i + 16, true));
                        return ts as f64 * resolution;
                    }
                }
                i += len;
            }
            panic!("no packet {n} in {}", path.display())
        }
        m => {
            let le = m == [0xd4, 0xc3, 0xb2, 0xa1] || m == [0x4d, 0x3c, 0xb2, 0xa1];
            let nanos = m == [0x4d, 0x3c, 0xb2, 0xa1] || m == [0xa1, 0xb2, 0x3c, 0x4d];
            let mut i = 24;
            for k in 1.. {
                let (sec, frac, incl) = (u32_at(i, le), u32_at(i + 4, le), u32_at(i + 8, le));
                if k == n {
                    return f64::from(sec) + f64::from(frac) * if nanos { 1e-9 } else { 1e-6 };
                }
                i += 16 + incl as usize;
            }
            unreachable!()
        }
    }
}

fn near(a: f64, b: f64) -> bool {
    (a - b).abs() < 2e-6
}

/// Suricata `tests/websocket`: rules 1-6 and 21 of `test.rules` with the counts `test.yaml` expects.
#[test]
fn suricata_basic_websockets() {
    let Some(dir) = public() else { return };
    let r = report(&dir.join("suricata-verify__websocket__basic_websockets.pcap"));
    assert_eq!(conns(&r).len(), 1);
    let c = &conns(&r)[0];
    let client = frames(c, "client");
    let server = frames(c, "server");
    // sid 1: one client frame header `81 88` (FIN, text, masked, 8 bytes).
    let sid1 = client
        .iter()
        .filter(|f| {
            f["fin"] == true
                && f["rsv"] == 0
                && f["opcode"] == "text"
                && f["masked"] == true
                && f["payload_length"] == 8
        })
        .count();
    assert_eq!(sid1, 1);
    // sid 2 / 21: one server frame `81 15` whose payload is exactly "version,hybi-draft-13".
    let version: Vec<_> = messages(c, "server")
        .into_iter()
        .filter(|m| m["text"] == "version,hybi-draft-13")
        .collect();
    assert_eq!(version.len(), 1);
    assert_eq!(
        server
            .iter()
            .filter(|f| f["fin"] == true && f["opcode"] == "text" && f["payload_length"] == 21)
            .count(),
        1
    );
    // sid 3: 14 server text frames; sid 4 and 5: 3 client frames, all masked, all FIN.
    assert_eq!(server.iter().filter(|f| f["opcode"] == "text").count(), 14);
    assert_eq!(server.len(), 14);
    assert_eq!(client.len(), 3);
    assert!(
        client
            .iter()
            .all(|f| f["masked"] == true && f["fin"] == true)
    );
    // sid 6: one client payload containing "version,".
    assert_eq!(
        texts(c, "client")
            .iter()
            .filter(|t| t.contains("version,"))
            .count(),
        1
    );
    // Client offered permessage-deflate, the server declined.
    assert!(
        c["handshake"]["offered_extensions"]
            .as_str()
            .unwrap()
            .contains("permessage-deflate")
    );
    assert!(c["handshake"]["extensions"].is_null());
}

/// Suricata `tests/websocket-compressed`: sid 1 matches `TOGGLE=5659131662f54334` in the
/// inflated payload; it is the last of ten compressed server messages.
#[test]
fn suricata_compressed() {
    let Some(dir) = public() else { return };
    let r = report(&dir.join("suricata-verify__websocket-compressed__example_websocket.pcap"));
    let c = &conns(&r)[0];
    let server = texts(c, "server");
    assert_eq!(server.len(), 10);
    assert!(
        messages(c, "server")
            .iter()
            .all(|m| m["compressed"] == true)
    );
    assert!(server[0].starts_with("KEY="), "{server:?}");
    assert!(server[9].contains("TOGGLE=5659131662f54334"), "{server:?}");
    assert_eq!(
        server
            .iter()
            .filter(|t| t.contains("TOGGLE=5659131662f54334"))
            .count(),
        1
    );
    assert!(!ids(c).iter().any(|i| i.starts_with("decompression")));
}

/// Suricata `tests/websocket-control-frag`: the message is reassembled across the injected Ping.
#[test]
fn suricata_control_frag() {
    let Some(dir) = public() else { return };
    let r = report(&dir.join("suricata-verify__websocket-control-frag__input.pcap"));
    let c = &conns(&r)[0];
    let client = messages(c, "client");
    let ops: Vec<&str> = client
        .iter()
        .map(|m| m["opcode"].as_str().unwrap())
        .collect();
    assert_eq!(ops, ["ping", "text"]);
    assert_eq!(
        client[1]["text"],
        "MALWARE_DOWNLOAD cmd.exe /c powershell -enc AAAA"
    );
    assert_eq!(client[1]["fragments"], 2);
    let f: Vec<(&str, bool, u64)> = frames(c, "client")
        .iter()
        .map(|f| {
            (
                f["opcode"].as_str().unwrap(),
                f["fin"].as_bool().unwrap(),
                f["payload_length"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        f,
        [
            ("text", false, 20),
            ("ping", true, 4),
            ("continuation", true, 28)
        ]
    );
    assert_eq!(messages(c, "server")[0]["opcode"], "pong");
    assert!(!ids(c).contains(&"interrupted_fragmented_message".to_string()));
}

/// Suricata `tests/websocket-ping`: one ping (packet 8) and one pong (packet 11).
#[test]
fn suricata_ping() {
    let Some(dir) = public() else { return };
    let path = dir.join("suricata-verify__websocket-ping__input.pcap");
    let r = report(&path);
    let c = &conns(&r)[0];
    let all = c["frames_detail"].as_array().unwrap();
    let pings: Vec<&Value> = all.iter().filter(|f| f["opcode"] == "ping").collect();
    let pongs: Vec<&Value> = all.iter().filter(|f| f["opcode"] == "pong").collect();
    assert_eq!((pings.len(), pongs.len()), (1, 1));
    assert_eq!(pings[0]["from"], "client");
    assert!(near(
        pings[0]["time"].as_f64().unwrap(),
        packet_time(&path, 8)
    ));
    assert!(near(
        pongs[0]["time"].as_f64().unwrap(),
        packet_time(&path, 11)
    ));
    // The client's Ping is not masked (MANIFEST): RFC 6455 §5.1.
    assert_eq!(pings[0]["masked"], false);
    assert!(ids(c).contains(&"unmasked_client_frame".to_string()));
}

/// Zeek's escaping in btest output: `\xNN` for bytes that are not printable.
fn zeek_unescape(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && b.get(i + 1) == Some(&b'x') && i + 4 <= b.len() {
            out.push(u8::from_str_radix(&s[i + 2..i + 4], 16).unwrap());
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

#[derive(Debug, Default)]
struct ZeekFrame {
    orig: bool,
    fin: bool,
    rsv: u64,
    opcode: String,
    len: u64,
    data: Vec<u8>,
    data_len: u64,
}

/// The `websocket_frame`, `websocket_frame_data` and `websocket_close` events of one trace.
fn zeek_events(lines: &[&str]) -> (Vec<ZeekFrame>, Vec<(bool, u64, String)>) {
    let mut frames: Vec<ZeekFrame> = Vec::new();
    let mut closes = Vec::new();
    for line in lines {
        let f: Vec<&str> = line.splitn(7, ", ").collect();
        match f[0] {
            "websocket_frame" => {
                let f: Vec<&str> = line.split(", ").collect();
                frames.push(ZeekFrame {
                    orig: f[2] == "T",
                    fin: f[4] == "T",
                    rsv: f[6].parse().unwrap(),
                    opcode: f[8].to_string(),
                    len: f[10].parse().unwrap(),
                    ..ZeekFrame::default()
                });
            }
            "websocket_frame_data" => {
                let last = frames.last_mut().unwrap();
                last.data_len += f[4].parse::<u64>().unwrap();
                last.data.extend(zeek_unescape(f[6]));
            }
            "websocket_close" => {
                closes.push((f[2] == "T", f[4].parse().unwrap(), f[6].to_string()));
            }
            _ => {}
        }
    }
    (frames, closes)
}

/// Checks one Zeek event trace against wsprobe's frames, messages and closes.
fn check_zeek_trace(dir: &Path, capture: &str, lines: &[&str]) {
    let r = report(&dir.join(capture));
    let ws: Vec<&Value> = conns(&r)
        .into_iter()
        .filter(|c| !c["handshake"].is_null())
        .collect();
    assert_eq!(ws.len(), 1, "{capture}");
    let c = ws[0];
    let (zf, zc) = zeek_events(lines);
    assert!(!zf.is_empty(), "{capture}: no frames in the trace");
    for (side, orig) in [("client", true), ("server", false)] {
        let theirs: Vec<(bool, u64, &str, u64)> = zf
            .iter()
            .filter(|f| f.orig == orig)
            .map(|f| (f.fin, f.rsv, f.opcode.as_str(), f.len))
            .collect();
        let ours: Vec<(bool, u64, &str, u64)> = frames(c, side)
            .iter()
            .map(|f| {
                (
                    f["fin"].as_bool().unwrap(),
                    f["rsv"].as_u64().unwrap(),
                    f["opcode"].as_str().unwrap(),
                    f["payload_length"].as_u64().unwrap(),
                )
            })
            .collect();
        assert_eq!(ours, theirs, "{capture} {side} frames");
        // Messages as Zeek's frames make them (control frames complete before a data message
        // they interrupt), with the payload Zeek printed (its first 120 bytes per frame).
        let mut theirs: Vec<(String, Vec<u8>, bool)> = Vec::new();
        let mut open: Option<(String, Vec<u8>, bool)> = None;
        for f in zf.iter().filter(|f| f.orig == orig) {
            let whole = f.data.len() as u64 == f.len;
            if matches!(f.opcode.as_str(), "close" | "ping" | "pong") {
                theirs.push((f.opcode.clone(), f.data.clone(), whole));
                continue;
            }
            let m = open.get_or_insert_with(|| (f.opcode.clone(), Vec::new(), true));
            if m.2 {
                m.1.extend_from_slice(&f.data);
            }
            m.2 &= whole;
            if f.fin {
                theirs.push(open.take().unwrap());
            }
        }
        let ours = messages(c, side);
        assert_eq!(ours.len(), theirs.len(), "{capture} {side} messages");
        for (m, (op, data, whole)) in ours.iter().zip(&theirs) {
            assert_eq!(m["opcode"], op.as_str(), "{capture} {side}");
            let p = payload(m).unwrap();
            if *whole {
                assert_eq!(&p, data, "{capture} {side} {op} payload");
            } else {
                assert!(
                    p.starts_with(&data[..data.len().min(120)]),
                    "{capture} {side} {op}"
                );
            }
        }
    }
    for (orig, status, reason) in zc {
        let side = if orig { "client" } else { "server" };
        let close = messages(c, side)
            .into_iter()
            .find(|m| m["opcode"] == "close")
            .unwrap_or_else(|| panic!("{capture}: no {side} close"));
        if status == 0 {
            assert_eq!(
                close["wire_length"], 0,
                "{capture} {side}: close without a code"
            );
        } else {
            assert_eq!(close["close_code"], status, "{capture} {side}");
            assert_eq!(close["text"], reason.as_str(), "{capture} {side}");
        }
    }
}

/// Zeek's event traces: `events/out` (five captures) and the coalesced-reply-ping traces.
#[test]
fn zeek_event_traces() {
    let Some(dir) = public() else { return };
    let out = std::fs::read_to_string(dir.join("zeek__baseline__websocket.events__out")).unwrap();
    let mut sections: Vec<(String, Vec<&str>)> = Vec::new();
    for line in out.lines().filter(|l| !l.starts_with('#')) {
        if line.ends_with(".pcap") {
            sections.push((format!("zeek__{line}"), Vec::new()));
        } else if let Some(s) = sections.last_mut() {
            s.1.push(line);
        }
    }
    let names: Vec<&str> = sections.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "zeek__jupyter-websocket.pcap",
            "zeek__wstunnel-http.pcap",
            "zeek__broker-websocket.pcap",
            "zeek__message-too-big-status.pcap",
            "zeek__two-binary-fragments.pcap"
        ]
    );
    for (capture, lines) in &sections {
        check_zeek_trace(&dir, capture, lines);
    }
    for (trace, capture) in [
        ("separate", "zeek__reply-ping-separate.pcap"),
        ("coalesced", "zeek__reply-ping-coalesced.pcap"),
    ] {
        let out = std::fs::read_to_string(dir.join(format!(
            "zeek__baseline__websocket.coalesced-reply-ping__out-{trace}"
        )))
        .unwrap();
        let lines: Vec<&str> = out.lines().filter(|l| !l.starts_with('#')).collect();
        check_zeek_trace(&dir, capture, &lines);
    }
}

/// Zeek's `websocket.log` baselines: the handshake of every connection.
#[test]
fn zeek_websocket_logs() {
    let Some(dir) = public() else { return };
    for (log, capture) in [
        ("http.101-switching-protocols", "zeek__http-websocket.pcap"),
        ("websocket.broker-websocket", "zeek__broker-websocket.pcap"),
        (
            "websocket.jupyter-websocket",
            "zeek__jupyter-websocket.pcap",
        ),
        (
            "websocket.key-accept-wrong",
            "zeek__wrong-accept-header.pcap",
        ),
        ("websocket.wstunnel-http", "zeek__wstunnel-http.pcap"),
        ("websocket.wstunnel-https", "zeek__wstunnel-https.pcap"),
        ("websocket.wstunnel-ssh", "zeek__wstunnel-ssh.pcap"),
    ] {
        let text =
            std::fs::read_to_string(dir.join(format!("zeek__baseline__{log}__websocket.log")))
                .unwrap();
        let r = report(&dir.join(capture));
        let mut rows = 0;
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let f: Vec<&str> = line.split('\t').collect();
            if f.len() < 13 || f[0] == "ts" {
                continue;
            }
            rows += 1;
            let unset = |v: &str| (v != "-").then(|| v.to_string());
            let c = by_client_port(&r, f[3].parse().unwrap());
            let h = &c["handshake"];
            assert_eq!(c["server"]["port"], f[5].parse::<u64>().unwrap(), "{log}");
            assert_eq!(
                h["host"].as_str().map(str::to_string),
                unset(f[6]),
                "{log} host"
            );
            assert_eq!(h["path"], f[7], "{log} uri");
            assert_eq!(
                h["user_agent"].as_str().map(str::to_string),
                unset(f[8]),
                "{log} user_agent"
            );
            assert_eq!(
                h["subprotocol"].as_str().map(str::to_string),
                unset(f[9]),
                "{log} subprotocol"
            );
            let offered: Vec<String> = h["offered_subprotocols"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p.as_str().unwrap().to_string())
                .collect();
            let zeek_offered: Vec<String> = unset(f[10])
                .map(|v| v.split(',').map(str::to_string).collect())
                .unwrap_or_default();
            assert_eq!(offered, zeek_offered, "{log} client_protocols");
            assert_eq!(
                h["extensions"].as_str().map(str::to_string),
                unset(f[11]),
                "{log} server_extensions"
            );
            assert_eq!(
                h["offered_extensions"].as_str().map(str::to_string),
                unset(f[12]),
                "{log} client_extensions"
            );
            assert_eq!(h["status"], 101, "{log}");
        }
        assert!(rows > 0, "{log}: no rows");
        assert_eq!(
            conns(&r)
                .iter()
                .filter(|c| !c["handshake"].is_null())
                .count(),
            rows,
            "{log}: connections with a handshake"
        );
    }
}

/// Zeek's weird logs: the oversized Close (258 bytes: code + 256-byte reason, "Close length: 256"
/// uncapped) and the wrong Sec-WebSocket-Accept (expected and found values).
#[test]
fn zeek_weirds() {
    let Some(dir) = public() else { return };
    let r = report(&dir.join("zeek__oversized-close-frame.pcapng"));
    let c = by_client_port(&r, 40081);
    let close = &messages(c, "server")[0];
    assert_eq!(close["opcode"], "close");
    assert_eq!(close["wire_length"], 258);
    assert_eq!(close["close_code"], 1000);
    assert_eq!(close["text"].as_str().unwrap().len(), 256);
    let uncapped = std::fs::read_to_string(
        dir.join("zeek__baseline__websocket.close-too-large__out-pac-uncapped"),
    )
    .unwrap();
    assert!(uncapped.contains("Close length: 256"));
    let weird = std::fs::read_to_string(
        dir.join("zeek__baseline__websocket.close-too-large__weird-pac.log"),
    )
    .unwrap();
    assert!(weird.contains("websocket_control_frame_size_exceeded\t258 > 125"));
    let too_long: Vec<&Value> = c["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["id"] == "control_frame_too_long")
        .collect();
    assert_eq!(too_long.len(), 1);
    assert!(
        too_long[0]["message"]
            .as_str()
            .unwrap()
            .contains("258 bytes")
    );

    let r = report(&dir.join("zeek__wrong-accept-header.pcap"));
    let c = by_client_port(&r, 53654);
    assert_eq!(c["handshake"]["accept_valid"], false);
    let weird =
        std::fs::read_to_string(dir.join("zeek__baseline__websocket.key-accept-wrong__weird.log"))
            .unwrap();
    let addl = weird
        .lines()
        .find(|l| l.contains("websocket_wrong_accept_header"))
        .unwrap()
        .split('\t')
        .nth(7)
        .unwrap();
    let (expected, found) = addl
        .strip_prefix("expected=")
        .unwrap()
        .split_once(", found=")
        .unwrap();
    let d = c["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == "handshake_accept_mismatch")
        .expect("handshake_accept_mismatch");
    let msg = d["message"].as_str().unwrap();
    assert!(msg.contains(&format!("{found:?}")), "{msg}");
    assert!(msg.contains(&format!("{expected:?}")), "{msg}");
    // Like tshark and Zeek, wsprobe still decodes the frames after the bad answer.
    assert_eq!(c["frames"]["server"]["ping"], 1);
}

/// Zeek `fragmented-http-reply`: the HTTP exchange tunnelled in a binary message of 5 frames.
#[test]
fn zeek_fragmented_http_reply() {
    let Some(dir) = public() else { return };
    let r = report(&dir.join("zeek__fragmented-http-reply.pcap"));
    let c = &conns(&r)[0];
    let bin = |side| -> Vec<String> {
        messages(c, side)
            .iter()
            .filter(|m| m["opcode"] == "binary")
            .map(|m| String::from_utf8_lossy(&payload(m).unwrap()).into_owned())
            .collect()
    };
    let (req, resp) = (bin("client"), bin("server"));
    assert_eq!((req.len(), resp.len()), (1, 1));
    let server_msg = messages(c, "server")
        .into_iter()
        .find(|m| m["opcode"] == "binary")
        .unwrap();
    assert_eq!(server_msg["fragments"], 5);
    let out =
        std::fs::read_to_string(dir.join("zeek__baseline__websocket.fragmented-http-reply__out"))
            .unwrap();
    for line in out.lines().filter(|l| l.starts_with("http_header")) {
        let f: Vec<&str> = line.splitn(4, ", ").collect();
        let text = if f[1] == "T" { &req[0] } else { &resp[0] };
        let want = format!("{}: {}", f[2].to_ascii_lowercase(), f[3]);
        assert!(
            text.to_ascii_lowercase().contains(&want),
            "{want:?} not in {text:?}"
        );
    }
}

/// Arkime's session documents (`websocket.test`, and the WebSocket session of
/// `arkime_synthetic.test`): frame count, masked client frames, payload bytes, text samples,
/// close code and reason.
#[test]
fn arkime_sessions() {
    let Some(dir) = public() else { return };
    for (test, capture) in [
        ("arkime__websocket.test", "arkime__websocket.pcap"),
        (
            "arkime__arkime_synthetic.test",
            "arkime__arkime_synthetic.pcap",
        ),
    ] {
        let doc: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join(test)).unwrap()).unwrap();
        let r = report(&dir.join(capture));
        let sessions: Vec<&Value> = doc["sessions3"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| &s["body"])
            .filter(|b| b.get("websocket").is_some())
            .collect();
        assert_eq!(sessions.len(), 1, "{test}");
        let (b, ws) = (sessions[0], &sessions[0]["websocket"]);
        let c = by_client_port(&r, b["source"]["port"].as_u64().unwrap());
        assert_eq!(c["server"]["port"], b["destination"]["port"], "{test}");
        let all = c["frames_detail"].as_array().unwrap();
        assert_eq!(all.len() as u64, ws["frameCnt"].as_u64().unwrap(), "{test}");
        assert_eq!(
            frames(c, "client")
                .iter()
                .filter(|f| f["masked"] == true)
                .count() as u64,
            ws["maskedFromClient"].as_u64().unwrap(),
            "{test}"
        );
        let bytes: u64 = all
            .iter()
            .map(|f| f["payload_length"].as_u64().unwrap())
            .sum();
        assert_eq!(bytes, ws["payloadBytes"].as_u64().unwrap(), "{test}");
        // Arkime samples the text of each text frame; the messages hold them, in order.
        let mut ours: Vec<String> = [texts(c, "client"), texts(c, "server")].concat();
        ours.sort();
        let joined = ours.concat();
        for sample in ws["textSample"].as_array().unwrap() {
            let s = sample.as_str().unwrap();
            assert!(joined.contains(s), "{test}: {s:?} not in {ours:?}");
        }
        if let Some(code) = ws.get("closeCode") {
            let close = c["messages"]
                .as_array()
                .unwrap()
                .iter()
                .find(|m| m["opcode"] == "close")
                .unwrap();
            assert_eq!(close["close_code"], code[0], "{test}");
            assert_eq!(close["text"], ws["closeReason"][0], "{test}");
        }
        // The other Arkime sessions are other protocols: nothing else is WebSocket.
        assert_eq!(conns(&r).len(), 1, "{test}");
    }
}

/// nDPI's flow reports: the flows it calls WebSocket, or HTTP with a 101 upgrade, are the
/// connections wsprobe reports (with the URL and status nDPI saw).
#[test]
fn ndpi_flows() {
    let Some(dir) = public() else { return };
    for (out, capture, flow, url) in [
        (
            "ndpi__websocket.pcap.out",
            "ndpi__websocket.pcap",
            "192.168.43.135:12345 <-> 192.168.43.1:50999",
            None,
        ),
        (
            "ndpi__http_origin_different_than_host.pcap.out",
            "ndpi__http_origin_different_than_host.pcap",
            "10.140.206.74:34536 <-> 18.135.206.102:80",
            Some("/?topreferer=optawidgets.365scores.com"),
        ),
        (
            "ndpi__false_positives.pcapng.out",
            "ndpi__false_positives.pcapng",
            "10.140.231.26:61202 <-> 159.65.12.169:443",
            Some("/ws"),
        ),
        (
            "ndpi__tls_heur__vmess-websocket.pcapng.out",
            "ndpi__tls_heur__vmess-websocket.pcapng",
            "127.0.0.1:33702 <-> 127.0.0.1:1234",
            Some("/"),
        ),
    ] {
        let text = std::fs::read_to_string(dir.join(out)).unwrap();
        let line = text
            .lines()
            .find(|l| l.contains(flow))
            .unwrap_or_else(|| panic!("{out}: no flow {flow}"));
        let r = report(&dir.join(capture));
        let (a, b) = flow.split_once(" <-> ").unwrap();
        let c = conns(&r)
            .into_iter()
            .find(|c| {
                let ends = [
                    format!(
                        "{}:{}",
                        c["client"]["ip"].as_str().unwrap(),
                        c["client"]["port"]
                    ),
                    format!(
                        "{}:{}",
                        c["server"]["ip"].as_str().unwrap(),
                        c["server"]["port"]
                    ),
                ];
                ends.contains(&a.to_string()) && ends.contains(&b.to_string())
            })
            .unwrap_or_else(|| panic!("{capture}: wsprobe has no connection {flow}"));
        match url {
            None => {
                assert!(line.contains("[proto: 251/WebSocket]"), "{line}");
                assert!(c["frames"]["client"]["text"].as_u64().unwrap() > 0);
            }
            Some(path) => {
                assert_eq!(c["handshake"]["path"], path, "{capture}");
                assert_eq!(c["handshake"]["status"], 101, "{capture}");
                if line.contains("[StatusCode: ") {
                    assert!(line.contains("[StatusCode: 101]"), "{line}");
                }
            }
        }
        if let Some(ua) = line
            .split("[User-Agent: ")
            .nth(1)
            .and_then(|s| s.split(']').next())
        {
            assert_eq!(c["handshake"]["user_agent"], ua, "{capture}");
        }
    }
}

/// evsetool's test: the inflated payloads at frames 25 and 43 (scapy indices 24 and 42).
#[test]
fn evsetool_inflated_payloads() {
    let Some(dir) = public() else { return };
    let path = dir.join("evsetool__cap.pcapng");
    let r = report(&path);
    for (frame, want) in [
        (
            25,
            r#"[3,"bad9a3f6-ca80-4901-bb76-9034b8900b5b",{"status":"Accepted","currentTime":"2024-12-12T12:14:42.958Z","interval":14400}]"#,
        ),
        (43, r#"[3,"cee3e36b-34fb-45a8-a6b8-f5d394f32beb",{}]"#),
    ] {
        let t = packet_time(&path, frame);
        let m = conns(&r)
            .into_iter()
            .flat_map(|c| c["messages"].as_array().unwrap())
            .find(|m| near(m["time"].as_f64().unwrap(), t))
            .unwrap_or_else(|| panic!("no message at frame {frame} ({t})"));
        assert_eq!(m["text"], want, "frame {frame}");
        assert_eq!(m["compressed"], true);
        assert_eq!(m["from"], "server");
    }
    // Both legs of the proxied conversation, each with 8 compressed text messages and Close 1000.
    assert_eq!(conns(&r).len(), 2);
    for c in conns(&r) {
        assert_eq!(c["handshake"]["subprotocol"], "ocpp1.6");
        let compressed = c["messages"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["opcode"] == "text" && m["compressed"] == true && m["length"].is_u64())
            .count();
        assert_eq!(compressed, 8);
        assert_eq!(c["close"]["code"], 1000);
    }
}
