//! Synthetic captures built in code: every link type, TCP damage, and every RFC 6455 violation.

use std::io::Write;

use serde_json::Value;

use crate::util::*;

/// A clean exchange: handshake, text both ways, a fragmented message with a ping between the
/// fragments, a 70,000-byte binary (64-bit length), close 1000 both ways, FIN both ways.
fn clean_conversation(client: &str, server: &str) -> Conv {
    let mut c = Conv::new(client, server);
    c.tcp_open();
    c.send(
        true,
        &upgrade_request("/chat", "Sec-WebSocket-Protocol: chat.v1, chat.v2\r\n"),
    );
    c.send(
        false,
        &upgrade_response("Sec-WebSocket-Protocol: chat.v1\r\n"),
    );
    c.send(true, &client_frame(true, 1, b"hello"));
    c.send(false, &server_frame(true, 1, "héllo ✓".as_bytes()));
    let mut frag = client_frame(false, 1, b"part one, ");
    frag.extend(client_frame(true, 9, b"p1"));
    frag.extend(client_frame(true, 0, b"part two"));
    c.send(true, &frag);
    c.send(false, &server_frame(true, 10, b"p1"));
    let big: Vec<u8> = (0..70_000u32).map(|i| (i % 251) as u8).collect();
    c.send(false, &server_frame(true, 2, &big));
    c.send(true, &client_frame(true, 8, &close_payload(1000, "bye")));
    c.send(false, &server_frame(true, 8, &close_payload(1000, "")));
    c.fin(false);
    c.fin(true);
    c
}

fn expected_messages() -> Vec<(String, String, String)> {
    let big: Vec<u8> = (0..70_000u32).map(|i| (i % 251) as u8).collect();
    use base64::Engine;
    let big64 = base64::engine::general_purpose::STANDARD.encode(&big);
    [
        ("client", "text", "hello".to_string()),
        ("server", "text", "héllo ✓".to_string()),
        ("client", "ping", "b64:cDE=".to_string()),
        ("client", "text", "part one, part two".to_string()),
        ("server", "pong", "b64:cDE=".to_string()),
        ("server", "binary", format!("b64:{big64}")),
        ("client", "close", "bye".to_string()),
        ("server", "close", "".to_string()),
    ]
    .into_iter()
    .map(|(a, b, c)| (a.to_string(), b.to_string(), c))
    .collect()
}

fn only_connection(report: &Value) -> &Value {
    let conns = report["connections"].as_array().unwrap();
    assert_eq!(conns.len(), 1, "{report:#}");
    &conns[0]
}

/// Messages of one side, in order (across sides, capture order may differ after reordering).
fn side(messages: Vec<(String, String, String)>, who: &str) -> Vec<(String, String, String)> {
    messages.into_iter().filter(|m| m.0 == who).collect()
}

fn assert_clean(report: &Value) {
    let conn = only_connection(report);
    for who in ["client", "server"] {
        let (got, want) = (side(messages(conn), who), side(expected_messages(), who));
        assert!(
            got == want,
            "{who} messages differ: {} vs {} (first 200 chars: {:.200})",
            got.len(),
            want.len(),
            format!("{got:?}")
        );
    }
    assert_eq!(conn["close"]["outcome"], "clean");
    assert_eq!(conn["close"]["code"], 1000);
    assert_eq!(conn["close"]["initiator"], "client");
    assert_eq!(conn["handshake"]["accept_valid"], true);
    assert_eq!(conn["handshake"]["subprotocol"], "chat.v1");
    assert_eq!(conn["frames"]["client"]["continuation"], 1);
    assert_eq!(conn["ping"]["answered"], 1);
    let errors: Vec<_> = conn["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["severity"] != "info")
        .collect();
    assert!(errors.is_empty(), "unexpected diagnostics: {errors:#?}");
}

#[test]
fn every_link_type_gives_the_same_messages() {
    for link in [
        Link::Ethernet,
        Link::Vlan,
        Link::Sll,
        Link::Sll2,
        Link::Null,
        Link::Raw,
    ] {
        let c = clean_conversation("10.0.0.1:50000", "10.0.0.2:8080");
        let report = report_bytes(&pcap(&c, link), &["--messages", "--payload", "full"]);
        assert_clean(&report);
        assert_eq!(
            report["inputs"][0]["packets"].as_u64().unwrap(),
            c.packets.len() as u64,
            "{link:?}"
        );
    }
}

#[test]
fn ipv6_and_pcapng_with_two_link_types() {
    let c = clean_conversation("[fd00::1]:50000", "[fd00::2]:9001");
    let report = report_bytes(
        &pcap(&c, Link::Ethernet),
        &["--messages", "--payload", "full"],
    );
    assert_clean(&report);
    assert_eq!(only_connection(&report)["client"]["ip"], "fd00::1");

    let report = report_bytes(
        &pcapng(&c, &[Link::Ethernet, Link::Sll2]),
        &["--messages", "--payload", "full"],
    );
    assert_clean(&report);
    assert_eq!(report["inputs"][0]["format"], "pcapng");
    assert_eq!(
        report["inputs"][0]["link_types"],
        serde_json::json!(["ethernet", "linux-sll2"])
    );
    // Interface 0 has nanosecond timestamps: the first packet's time survives exactly.
    let first = only_connection(&report)["first_seen"].as_f64().unwrap();
    assert!(
        (first - c.packets[0].ts).abs() < 1e-6,
        "{first} vs {}",
        c.packets[0].ts
    );
}

#[test]
fn reordered_duplicated_and_wrapping_streams_reassemble() {
    let mut c = clean_conversation("10.0.0.1:50000", "10.0.0.2:8080");
    // Sequence numbers that cross 2^32 in both directions.
    let wrapped = {
        let mut w = Conv::new("10.0.0.1:50000", "10.0.0.2:8080").near_wrap();
        let base = clean_conversation("10.0.0.1:50000", "10.0.0.2:8080");
        w.tcp_open();
        for p in base.packets.iter().skip(3) {
            if p.fin {
                w.fin(p.from_client);
            } else {
                w.send(p.from_client, &p.payload);
            }
        }
        w
    };
    assert_clean(&report_bytes(
        &pcap(&wrapped, Link::Ethernet),
        &["--messages", "--payload", "full"],
    ));

    // Every packet twice (as some capture setups record), and data segments swapped in pairs.
    let mut packets = Vec::new();
    for p in &c.packets {
        packets.push(p.clone());
        packets.push(p.clone());
    }
    let n = packets.len();
    let mut i = 8;
    while i + 3 < n - 6 {
        packets.swap(i, i + 2);
        i += 4;
    }
    c.packets = packets;
    let report = report_bytes(
        &pcap(&c, Link::Ethernet),
        &["--messages", "--payload", "full"],
    );
    assert_clean(&report);
    assert!(
        only_connection(&report)["tcp"]["retransmissions"]
            .as_u64()
            .unwrap()
            > 0
    );
}

#[test]
fn a_lost_segment_is_a_gap_and_the_rest_still_decodes() {
    let mut c = Conv::new("10.0.0.1:50000", "10.0.0.2:8080");
    c.tcp_open();
    c.send(true, &upgrade_request("/", ""));
    c.send(false, &upgrade_response(""));
    let big = vec![b'x'; 5000];
    c.send(false, &server_frame(true, 1, &big));
    c.send(false, &server_frame(true, 1, b"after the gap"));
    c.send(true, &client_frame(true, 1, b"still here"));
    c.fin(true);
    c.fin(false);
    // Drop the second segment of the 5000-byte message.
    let lost = c
        .packets
        .iter()
        .position(|p| !p.from_client && p.payload.len() == 1448)
        .unwrap()
        + 1;
    c.packets.remove(lost);
    let report = report_bytes(&pcap(&c, Link::Ethernet), &["--messages"]);
    let conn = only_connection(&report);
    assert!(diag_ids(conn).contains(&"tcp_gap".to_string()));
    let all = conn["messages"].as_array().unwrap();
    let server: Vec<&Value> = all.iter().filter(|m| m["from"] == "server").collect();
    assert_eq!(server[0]["complete"], false);
    assert_eq!(server[0]["wire_length"], 5000);
    assert_eq!(server[1]["text"], "after the gap");
    assert_eq!(server[1]["complete"], true);
    let client: Vec<&Value> = all.iter().filter(|m| m["from"] == "client").collect();
    assert_eq!(client[0]["text"], "still here");
    assert_eq!(conn["tcp"]["gap_bytes"], 1448);
}

/// A client message, 62 s of silence, then the server's RST: the proxy-idle-timeout story.
fn idle_then_rst() -> Conv {
    let mut c = Conv::new("10.0.0.1:50000", "10.0.0.2:8080");
    c.tcp_open();
    c.send(true, &upgrade_request("/live", ""));
    c.send(false, &upgrade_response(""));
    c.send(true, &client_frame(true, 1, b"are you there"));
    c.wait(62.0);
    c.rst(false);
    c
}

#[test]
fn rst_without_close_is_abnormal_1006_and_fails_the_gate() {
    let path = temp_file(&pcap(&idle_then_rst(), Link::Ethernet), "pcap");
    let report = report_of(&path, &[]);
    let conn = only_connection(&report);
    assert_eq!(conn["close"]["code"], 1006);
    assert_eq!(conn["close"]["outcome"], "abnormal");
    assert_eq!(conn["close"]["initiator"], "server");
    assert_eq!(conn["close"]["tcp_end"], "rst");
    let summary = conn["close"]["summary"].as_str().unwrap();
    assert!(
        summary.contains("server sent RST after 62 s idle"),
        "{summary}"
    );
    assert!(summary.contains("client text 13 B"), "{summary}");
    assert!(diag_ids(conn).contains(&"abnormal_closure".into()));

    wsprobe()
        .args(["analyze", "--fail-on", "abnormal_closure"])
        .arg(&path)
        .assert()
        .code(1);
    wsprobe()
        .args(["analyze", "--fail-on", "error"])
        .arg(&path)
        .assert()
        .code(1);
    wsprobe()
        .args(["analyze", "--fail-on", "invalid_utf8"])
        .arg(&path)
        .assert()
        .code(0);
}

fn violation_report(client_bytes: &[u8], server_bytes: &[u8], extensions: &str) -> Value {
    let mut c = Conv::new("10.0.0.1:50000", "10.0.0.2:8080");
    c.tcp_open();
    c.send(true, &upgrade_request("/", ""));
    c.send(false, &upgrade_response(extensions));
    if !client_bytes.is_empty() {
        c.send(true, client_bytes);
    }
    if !server_bytes.is_empty() {
        c.send(false, server_bytes);
    }
    report_bytes(&pcap(&c, Link::Ethernet), &["--messages"])
}

#[test]
fn every_rfc6455_violation_is_reported() {
    use wsprobe::ws::frame::encode_frame;
    let mask = Some([1, 2, 3, 4]);
    let cases: Vec<(&str, Vec<u8>, Vec<u8>)> = vec![
        (
            "unmasked_client_frame",
            encode_frame(true, 0, 1, None, b"hi"),
            vec![],
        ),
        (
            "masked_server_frame",
            vec![],
            encode_frame(true, 0, 1, mask, b"hi"),
        ),
        (
            "reserved_bits_set",
            encode_frame(true, 0b010, 1, mask, b"hi"),
            vec![],
        ),
        (
            "reserved_bits_set",
            encode_frame(true, 0b100, 1, mask, b"hi"),
            vec![],
        ),
        (
            "reserved_opcode",
            encode_frame(true, 0, 3, mask, b"hi"),
            vec![],
        ),
        (
            "reserved_opcode",
            vec![],
            encode_frame(true, 0, 0xB, None, b""),
        ),
        (
            "control_frame_fragmented",
            encode_frame(false, 0, 9, mask, b"p"),
            vec![],
        ),
        (
            "control_frame_too_long",
            encode_frame(true, 0, 9, mask, &[7; 126]),
            vec![],
        ),
        (
            "invalid_utf8",
            encode_frame(true, 0, 1, mask, &[0xc3, 0x28]),
            vec![],
        ),
        (
            "invalid_utf8",
            encode_frame(true, 0, 8, mask, &[0x03, 0xe8, 0xff]),
            vec![],
        ),
        (
            "invalid_close_code",
            encode_frame(true, 0, 8, mask, &close_payload(1005, "")),
            vec![],
        ),
        (
            "invalid_close_code",
            vec![],
            encode_frame(true, 0, 8, None, &close_payload(1006, "")),
        ),
        (
            "invalid_close_code",
            encode_frame(true, 0, 8, mask, &close_payload(999, "")),
            vec![],
        ),
        (
            "invalid_close_code",
            encode_frame(true, 0, 8, mask, &[0x03]),
            vec![],
        ),
        (
            "unexpected_continuation",
            encode_frame(true, 0, 0, mask, b"orphan"),
            vec![],
        ),
        (
            "interrupted_fragmented_message",
            [
                encode_frame(false, 0, 1, mask, b"a"),
                encode_frame(true, 0, 2, mask, b"b"),
            ]
            .concat(),
            vec![],
        ),
        (
            "non_minimal_length",
            vec![],
            // 5 bytes announced with a 16-bit length.
            [vec![0x81, 126, 0, 5], b"hello".to_vec()].concat(),
        ),
        (
            "data_after_close",
            [
                encode_frame(true, 0, 8, mask, &close_payload(1000, "")),
                encode_frame(true, 0, 1, mask, b"late"),
            ]
            .concat(),
            vec![],
        ),
        (
            "invalid_frame_length",
            vec![],
            vec![0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 1, 0xaa],
        ),
    ];
    for (id, client, server) in cases {
        let report = violation_report(&client, &server, "");
        let conn = only_connection(&report);
        let ids = diag_ids(conn);
        assert!(ids.contains(&id.to_string()), "{id} not in {ids:?}");
        let severity = conn["diagnostics"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["id"] == id)
            .unwrap()["severity"]
            .clone();
        assert!(
            severity == "error" || severity == "warning",
            "{id}: {severity}"
        );
    }
}

#[test]
fn clean_frames_raise_no_violation() {
    let report = violation_report(
        &[
            client_frame(false, 1, "caf".as_bytes()),
            client_frame(true, 0, "é ok".as_bytes()),
        ]
        .concat(),
        &server_frame(true, 2, &[0, 1, 2]),
        "",
    );
    let conn = only_connection(&report);
    assert!(diag_ids(conn).is_empty(), "{:?}", diag_ids(conn));
    assert_eq!(messages(conn)[0].2, "café ok");
}

#[test]
fn permessage_deflate_with_context_takeover_inflates() {
    use flate2::{Compress, Compression, FlushCompress};
    let mut compressor = Compress::new(Compression::default(), false);
    let mut deflate = |text: &str| {
        let mut out = Vec::with_capacity(text.len() + 64);
        compressor
            .compress_vec(text.as_bytes(), &mut out, FlushCompress::Sync)
            .unwrap();
        assert!(out.ends_with(&[0, 0, 0xff, 0xff]));
        out.truncate(out.len() - 4);
        out
    };
    let texts = [
        r#"{"type":"update","symbol":"ABC","price":101.25}"#,
        r#"{"type":"update","symbol":"ABC","price":101.50}"#,
        r#"{"type":"update","symbol":"ABC","price":101.75}"#,
    ];
    let mut server = Vec::new();
    for t in texts {
        server.extend(wsprobe::ws::frame::encode_frame(
            true,
            0b100,
            1,
            None,
            &deflate(t),
        ));
    }
    let report = violation_report(
        &[],
        &server,
        "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits=15\r\n",
    );
    let conn = only_connection(&report);
    let got: Vec<String> = messages(conn).into_iter().map(|m| m.2).collect();
    let want: Vec<String> = texts
        .iter()
        .map(|t| t[..64.min(t.len())].to_string())
        .collect();
    assert_eq!(got, want);
    assert_eq!(conn["messages"][2]["compressed"], true);
    assert!(
        conn["messages"][2]["wire_length"].as_u64().unwrap() < 20,
        "context takeover shrinks repeats"
    );
    assert!(diag_ids(conn).is_empty(), "{:?}", diag_ids(conn));
}

#[test]
fn refused_upgrade_and_wrong_accept() {
    let mut c = Conv::new("10.0.0.1:50000", "10.0.0.2:80");
    c.tcp_open();
    c.send(true, &upgrade_request("/admin", ""));
    c.send(
        false,
        b"HTTP/1.1 403 Forbidden\r\nContent-Length: 9\r\n\r\nforbidden",
    );
    c.fin(false);
    c.fin(true);
    let report = report_bytes(&pcap(&c, Link::Ethernet), &[]);
    let conn = only_connection(&report);
    assert_eq!(conn["handshake"]["status"], 403);
    assert_eq!(conn["handshake"]["accepted"], false);
    assert_eq!(conn["close"]["outcome"], "not_websocket");
    assert!(diag_ids(conn).contains(&"handshake_rejected".into()));

    let mut c = Conv::new("10.0.0.1:50000", "10.0.0.2:80");
    c.tcp_open();
    c.send(true, &upgrade_request("/", ""));
    c.send(
        false,
        &upgrade_response("")
            .iter()
            .copied()
            .map(|b| if b == b's' { b'S' } else { b })
            .collect::<Vec<_>>(),
    );
    let report = report_bytes(&pcap(&c, Link::Ethernet), &[]);
    let conn = only_connection(&report);
    assert_eq!(conn["handshake"]["accept_valid"], false);
    assert!(diag_ids(conn).contains(&"handshake_accept_mismatch".into()));
}

#[test]
fn keep_alive_request_before_the_upgrade() {
    let mut c = Conv::new("10.0.0.1:50000", "10.0.0.2:18080");
    c.tcp_open();
    c.send(true, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n");
    c.send(false, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    c.send(true, &upgrade_request("/ws", ""));
    // The 101 and the first frame share one segment.
    c.send(
        false,
        &[upgrade_response(""), server_frame(true, 1, b"welcome")].concat(),
    );
    let report = report_bytes(&pcap(&c, Link::Ethernet), &["--messages"]);
    let conn = only_connection(&report);
    assert_eq!(conn["handshake"]["path"], "/ws");
    assert_eq!(messages(conn)[0].2, "welcome");
}

#[test]
fn no_handshake_frames_are_found_by_resynchronising() {
    let mut c = Conv::new("192.168.1.5:40000", "192.168.1.9:12345");
    for i in 0..3 {
        c.send(
            false,
            &server_frame(true, 1, format!("server {i}").as_bytes()),
        );
        c.send(
            true,
            &client_frame(true, 1, format!("client {i}").as_bytes()),
        );
    }
    let report = report_bytes(&pcap(&c, Link::Ethernet), &["--messages"]);
    let conn = only_connection(&report);
    assert!(conn["handshake"].is_null());
    assert!(diag_ids(conn).contains(&"midstream_start".into()));
    assert_eq!(
        conn["client"]["port"], 40000,
        "the masked side is the client"
    );
    assert_eq!(conn["frames"]["client"]["text"], 3);
    assert_eq!(conn["frames"]["server"]["text"], 3);
}

#[test]
fn non_websocket_tcp_is_not_reported() {
    let mut c = Conv::new("10.0.0.1:50000", "10.0.0.2:443");
    c.tcp_open();
    c.send(
        true,
        &[
            0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03,
        ],
    );
    c.send(
        false,
        &(0..4000u32)
            .map(|i| (i * 7 % 256) as u8)
            .collect::<Vec<_>>(),
    );
    c.send(true, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    let report = report_bytes(&pcap(&c, Link::Ethernet), &[]);
    // It starts like a ClientHello: every TLS connection is listed (issue 12), with what TLS
    // shows and no WebSocket fact that encryption would hide (no 1006).
    let conns = report["connections"].as_array().unwrap();
    assert_eq!(conns.len(), 1, "{report:#}");
    assert!(conns[0]["handshake"].is_null());
    assert_eq!(conns[0]["close"]["outcome"], "encrypted");
    assert!(!diag_ids(&conns[0]).contains(&"abnormal_closure".to_string()));
    assert_eq!(conns[0]["tls"]["decrypted"], false);
    assert_eq!(report["summary"]["tcp_connections"], 1);

    // Bytes that are neither TLS, HTTP nor WebSocket: not reported.
    let mut c = Conv::new("10.0.0.1:50001", "10.0.0.2:5432");
    c.tcp_open();
    c.send(true, &[0x00, 0x00, 0x00, 0x08, 0x04, 0xd2, 0x16, 0x2f]);
    c.send(
        false,
        &(0..4000u32)
            .map(|i| (i * 7 % 256) as u8)
            .collect::<Vec<_>>(),
    );
    let report = report_bytes(&pcap(&c, Link::Ethernet), &[]);
    assert_eq!(
        report["connections"].as_array().unwrap().len(),
        0,
        "{report:#}"
    );
}

#[test]
fn truncated_file_gives_a_partial_report() {
    let c = clean_conversation("10.0.0.1:50000", "10.0.0.2:8080");
    let mut bytes = pcap(&c, Link::Ethernet);
    bytes.truncate(bytes.len() - 30);
    let path = temp_file(&bytes, "pcap");
    let out = wsprobe()
        .args(["analyze", "--format", "json"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let error = report["inputs"][0]["error"].as_str().unwrap();
    assert!(error.contains("truncated"), "{error}");
    assert_eq!(report["connections"].as_array().unwrap().len(), 1);
    assert!(String::from_utf8_lossy(&out.stderr).contains("truncated"));
}

#[test]
fn standard_input_is_read() {
    let c = clean_conversation("10.0.0.1:50000", "10.0.0.2:8080");
    let out = wsprobe()
        .args(["analyze", "--format", "json", "-"])
        .write_stdin(pcap(&c, Link::Ethernet))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["inputs"][0]["path"], "-");
    assert_eq!(report["summary"]["websocket_connections"], 1);
}

#[test]
fn jsonl_events_come_in_order() {
    let c = clean_conversation("10.0.0.1:50000", "10.0.0.2:8080");
    let path = temp_file(&pcap(&c, Link::Ethernet), "pcap");
    let out = wsprobe()
        .args(["analyze", "--format", "jsonl"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let kinds: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["event"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(kinds.first().map(String::as_str), Some("connection"));
    assert_eq!(kinds[1], "handshake");
    assert_eq!(kinds.iter().filter(|k| *k == "message").count(), 8);
    assert_eq!(kinds.iter().filter(|k| *k == "close").count(), 2);
    assert_eq!(kinds[kinds.len() - 2], "connection_ended");
    assert_eq!(kinds.last().map(String::as_str), Some("summary"));
}

#[test]
fn closed_output_pipe_is_not_a_crash() {
    let c = clean_conversation("10.0.0.1:50000", "10.0.0.2:8080");
    let path = temp_file(&pcap(&c, Link::Ethernet), "pcap");
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("wsprobe"))
        .args(["analyze", "--format", "jsonl", "--messages"])
        .arg(&path)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_ne!(out.status.code(), Some(101));
    let _ = std::io::stderr().flush();
}

#[test]
fn idle_timeout_stops_following_a_silent_connection_and_says_so() {
    let path = temp_file(&pcap(&idle_then_rst(), Link::Ethernet), "pcap");
    // Default: a 62 s idle is followed, and the RST after it is the diagnosis.
    assert_eq!(
        only_connection(&report_of(&path, &[]))["close"]["outcome"],
        "abnormal"
    );
    // With a shorter timeout the connection is reported open, with the reason.
    let report = report_of(&path, &["--idle-timeout", "30"]);
    let conn = only_connection(&report);
    assert_eq!(conn["close"]["outcome"], "open");
    let summary = conn["close"]["summary"].as_str().unwrap();
    assert!(
        summary.contains("no packets for 62 s") && summary.contains("--idle-timeout"),
        "{summary}"
    );
}

/// `--frames`: one record per frame header, in order, with the extended lengths resolved; in
/// jsonl one `frame` event per frame; nothing without the flag.
#[test]
fn frames_flag_lists_every_frame_header() {
    let c = clean_conversation("10.0.0.1:40000", "10.0.0.2:80");
    let bytes = pcap(&c, Link::Ethernet);
    let report = report_bytes(&bytes, &["--frames"]);
    let conn = only_connection(&report);
    let got: Vec<(String, String, bool, u64, bool, u64, u64)> = conn["frames_detail"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["from"].as_str().unwrap().to_string(),
                f["opcode"].as_str().unwrap().to_string(),
                f["fin"].as_bool().unwrap(),
                f["rsv"].as_u64().unwrap(),
                f["masked"].as_bool().unwrap(),
                f["payload_length"].as_u64().unwrap(),
                f["header_length"].as_u64().unwrap(),
            )
        })
        .collect();
    let want = [
        ("client", "text", true, 0, true, 5, 6),
        ("server", "text", true, 0, false, "héllo ✓".len() as u64, 2),
        ("client", "text", false, 0, true, 10, 6),
        ("client", "ping", true, 0, true, 2, 6),
        ("client", "continuation", true, 0, true, 8, 6),
        ("server", "pong", true, 0, false, 2, 2),
        ("server", "binary", true, 0, false, 70_000, 10),
        ("client", "close", true, 0, true, 5, 6),
        ("server", "close", true, 0, false, 2, 2),
    ]
    .map(|(a, b, c, d, e, f, g)| (a.to_string(), b.to_string(), c, d, e, f, g));
    assert_eq!(got, want);
    assert!(conn["frames_detail"][0]["time"].as_f64().unwrap() > 1.7e9);
    assert!(
        only_connection(&report_bytes(&bytes, &[]))
            .get("frames_detail")
            .is_none()
    );

    let out = wsprobe()
        .args(["analyze", "--format", "jsonl", "--frames"])
        .arg(temp_file(&bytes, "pcap"))
        .output()
        .unwrap();
    let frames: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["event"] == "frame")
        .collect();
    assert_eq!(frames.len(), want.len());
    assert_eq!(frames[6]["frame"]["payload_length"], 70_000);
    assert_eq!(frames[6]["connection"], 0);
}

/// Regression: at the end of the capture every WebSocket direction is finished, so a frame cut
/// by the capture's end, a fragmented message that never got its last fragment, and a lone
/// frame of a connection picked up mid-stream are all reported (they were silently dropped).
#[test]
fn the_capture_end_finishes_open_frames_messages_and_hunts() {
    let mut c = Conv::new("10.0.0.1:40000", "10.0.0.2:80");
    c.tcp_open();
    c.send(true, &upgrade_request("/", ""));
    c.send(false, &upgrade_response(""));
    c.send(false, &server_frame(false, 1, b"first fragment, "));
    let cut = client_frame(true, 2, &[9; 100]);
    c.send(true, &cut[..50]);
    let report = report_bytes(&pcap(&c, Link::Ethernet), &["--messages"]);
    let conn = only_connection(&report);
    let ids = diag_ids(conn);
    assert!(
        ids.contains(&"capture_ended_mid_frame".to_string()),
        "{ids:?}"
    );
    let msgs = conn["messages"].as_array().unwrap();
    assert_eq!(msgs.len(), 2, "{msgs:#?}");
    for m in msgs {
        assert_eq!(m["complete"], false, "{m}");
    }

    // Mid-stream: one masked text frame and nothing else (no SYN, no handshake).
    let mut c = Conv::new("127.0.0.1:62866", "127.0.0.1:8008");
    c.send(true, &client_frame(true, 1, b"hi!!"));
    let report = report_bytes(&pcap(&c, Link::Null), &["--frames"]);
    let conn = only_connection(&report);
    assert_eq!(conn["frames"]["client"]["text"], 1, "{conn:#}");
    assert_eq!(conn["client"]["port"], 62866);
    assert_eq!(conn["frames_detail"][0]["payload_length"], 4);
}

/// Regression: a Close of 258 bytes written with the 64-bit length form (Zeek's
/// oversized-close-frame trace) is a frame to count and decode, with its violations flagged; it
/// used to be taken for misalignment and dropped.
#[test]
fn oversized_close_in_the_64_bit_form_is_decoded_and_flagged() {
    let mut c = Conv::new("10.0.0.1:40081", "10.0.0.2:80");
    c.tcp_open();
    c.send(true, &upgrade_request("/", ""));
    c.send(false, &upgrade_response(""));
    let reason = "x".repeat(256);
    let mut close = vec![0x88, 0x7F];
    close.extend_from_slice(&258u64.to_be_bytes());
    close.extend_from_slice(&close_payload(1000, &reason));
    c.send(false, &close);
    c.fin(false);
    c.fin(true);
    let report = report_bytes(&pcap(&c, Link::Ethernet), &["--messages", "--frames"]);
    let conn = only_connection(&report);
    assert_eq!(conn["frames"]["server"]["close"], 1);
    assert_eq!(conn["frames_detail"][0]["payload_length"], 258);
    assert_eq!(conn["frames_detail"][0]["header_length"], 10);
    assert_eq!(conn["close"]["code"], 1000);
    assert_eq!(conn["close"]["reason"], reason.as_str());
    let ids = diag_ids(conn);
    for id in ["control_frame_too_long", "non_minimal_length"] {
        assert!(ids.contains(&id.to_string()), "{ids:?}");
    }
}

/// A lone frame in a segment its receiver refused (RST without ACK, RFC 793 §3.4: no such
/// connection) is not taken for a WebSocket connection: the bytes reached no endpoint, and one
/// frame with no handshake is weak evidence (onewesong's capture starts with such a segment).
#[test]
fn a_lone_frame_refused_with_rst_is_not_a_connection() {
    let mut c = Conv::new("127.0.0.1:64739", "127.0.0.1:8765");
    c.send(true, &client_frame(true, 1, b"\n"));
    c.rst(false);
    c.packets.last_mut().unwrap().ack = false;
    let report = report_bytes(&pcap(&c, Link::Null), &[]);
    assert_eq!(
        report["connections"].as_array().unwrap().len(),
        0,
        "{report:#}"
    );
    assert_eq!(report["summary"]["tcp_connections"], 1);
}

/// Pings are paired on their whole payload, not on the preview shown in records.
#[test]
fn pings_that_differ_after_the_preview_pair_correctly() {
    let mut c = Conv::new("10.0.0.1:50000", "10.0.0.2:8080");
    c.tcp_open();
    c.send(true, &upgrade_request("/", ""));
    c.send(false, &upgrade_response(""));
    let prefix = "p".repeat(64);
    c.send(
        true,
        &client_frame(true, 9, format!("{prefix}A").as_bytes()),
    );
    c.send(
        true,
        &client_frame(true, 9, format!("{prefix}B").as_bytes()),
    );
    c.send(
        false,
        &server_frame(true, 10, format!("{prefix}B").as_bytes()),
    );
    c.send(true, &client_frame(true, 8, &close_payload(1000, "")));
    c.send(false, &server_frame(true, 8, &close_payload(1000, "")));
    let report = report_bytes(&pcap(&c, Link::Ethernet), &["--messages"]);
    let conn = only_connection(&report);
    assert_eq!(conn["ping"]["answered"], 1);
    assert_eq!(
        conn["ping"]["rtt_min_ms"], 1.0,
        "the pong answers the second ping"
    );
    // Pairing on the 64-byte preview would match the pong to the first ping (2 ms) and leave
    // the second unanswered; answering only the latest ping supersedes the first (§5.5.3).
    assert!(
        !diag_ids(conn).contains(&"ping_unanswered".to_string()),
        "{:?}",
        diag_ids(conn)
    );
    // The record still shows only the preview.
    assert_eq!(conn["messages"][0]["truncated"], true);
}

/// Each finding names the side whose frame, head or packet it is about, and its time, in its
/// fields and, where the text refers to a moment, in its words.
#[test]
fn findings_name_their_side_and_time() {
    let mut c = Conv::new("10.0.0.1:50000", "10.0.0.2:8080");
    c.tcp_open();
    c.send(true, &upgrade_request("/", ""));
    c.send(false, &upgrade_response(""));
    c.send(false, &server_frame(true, 9, b"srv-ping")); // never answered
    let ping_time = c.packets.last().unwrap().ts;
    c.wait(1.0);
    c.send(false, &server_frame(true, 8, &close_payload(1001, "bye")));
    let close_time = c.packets.last().unwrap().ts;
    c.wait(0.5);
    c.fin(true); // the client never answers the Close
    c.fin(false);
    let report = report_bytes(&pcap(&c, Link::Ethernet), &[]);
    let conn = only_connection(&report);
    // pcap keeps microseconds.
    let at = |d: &Value, t: f64| (d["time"].as_f64().unwrap() - t).abs() < 1e-5;
    let find = |id: &str| {
        conn["diagnostics"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["id"] == id)
            .unwrap_or_else(|| panic!("no {id}: {conn:#}"))
            .clone()
    };
    let ping = find("ping_unanswered");
    assert_eq!(ping["from"], "server", "the ping's sender");
    assert!(at(&ping, ping_time), "{ping}");
    let text = ping["message"].as_str().unwrap();
    assert!(
        text.starts_with("server ping \"srv-ping\" sent at ")
            && text.contains("got no pong from the client before the connection ended at")
            && text.ends_with("(the server had sent its Close)"),
        "{text}"
    );
    let close = find("close_handshake_incomplete");
    assert_eq!(close["from"], "server", "the unanswered Close's sender");
    assert!(at(&close, close_time), "{close}");
    assert!(
        close["message"].as_str().unwrap().contains(" at "),
        "{close}"
    );

    // An upgrade request that gets no answer: the request's side and time.
    let mut c = Conv::new("10.0.0.1:50001", "10.0.0.2:8080");
    c.tcp_open();
    c.send(true, &upgrade_request("/", ""));
    let asked = c.packets.last().unwrap().ts;
    let report = report_bytes(&pcap(&c, Link::Ethernet), &[]);
    let conn = only_connection(&report);
    let d = conn["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == "handshake_unanswered")
        .unwrap();
    assert_eq!(d["from"], "client");
    assert!(at(d, asked), "{d}");
}
