//! The reports that tools ingest: HAR (schema, Chrome's importer rules, payloads equal to the
//! JSON report's), the `--out-dir` dataset tables (their published schemas and SQL, DuckDB
//! reading them, two runs into one directory), the HTML report's embedded data, and the
//! redaction of handshake credentials in every one of them.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use base64::Engine;
use serde_json::{Value, json};

use crate::util::*;

fn run(args: &[&str]) -> std::process::Output {
    let out = wsprobe()
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "wsprobe {args:?}: exit {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn json_of(args: &[&str]) -> Value {
    serde_json::from_slice(&run(args).stdout).expect("JSON output")
}

fn every_capture() -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(captures_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "pcap" || e == "pcapng"))
        .map(|p| format!("captures/{}", p.file_name().unwrap().to_string_lossy()))
        .collect();
    files.sort();
    files
}

fn fresh_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wsprobe-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

// ---------------------------------------------------------------- HAR

fn har_validator() -> jsonschema::Validator {
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/har/har-1.2.schema.json"
        ))
        .unwrap(),
    )
    .unwrap();
    jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .unwrap()
}

/// What Chrome's HAR importer (devtools-frontend `front_end/models/har/Importer.ts`) needs to
/// show an entry's WebSocket messages: `log.pages` to walk, `_resourceType`, and on every
/// message `type` (a WebSocketFrameType), `time`, `opcode` and `data`.
fn check_chrome_importer_rules(har: &Value) {
    let log = &har["log"];
    assert!(log["pages"].is_array(), "log.pages must be present");
    for e in log["entries"].as_array().unwrap() {
        assert_eq!(e["_resourceType"], "websocket");
        for m in e["_webSocketMessages"]
            .as_array()
            .expect("_webSocketMessages")
        {
            assert!(m["type"] == "send" || m["type"] == "receive", "type: {m}");
            assert!(m["time"].is_f64() || m["time"].is_u64(), "time: {m}");
            assert!(m["opcode"].is_i64() || m["opcode"].is_u64(), "opcode: {m}");
            assert!(m["data"].is_string(), "data: {m}");
        }
    }
}

#[test]
fn har_of_every_capture_is_valid_har_1_2_that_chrome_imports() {
    let validator = har_validator();
    let mut files = every_capture();
    if let Some(public) = public_captures_dir() {
        for e in std::fs::read_dir(public).unwrap() {
            let p = e.unwrap().path();
            if p.extension()
                .is_some_and(|e| e == "pcap" || e == "pcapng" || e == "dump")
            {
                files.push(p.to_string_lossy().into_owned());
            }
        }
    }
    for file in &files {
        for extra in [&[][..], &["--payload", "preview"]] {
            let mut args = vec!["analyze", "--format", "har", file.as_str()];
            args.extend_from_slice(extra);
            let har = json_of(&args);
            let errors: Vec<String> = validator
                .iter_errors(&har)
                .map(|e| format!("{e} at {}", e.instance_path()))
                .collect();
            assert!(errors.is_empty(), "{file}: {errors:#?}");
            check_chrome_importer_rules(&har);
            assert_eq!(har["log"]["version"], "1.2");
            let json = json_of(&["analyze", "--format", "json", file.as_str()]);
            // One entry per connection, but those known not to carry WebSocket (decrypted TLS
            // without an upgrade, HTTP/2 connections whose streams are entries), which the log
            // lists apart.
            let not: Vec<u64> = har["log"]["_wsprobe"]["not_entries"]
                .as_array()
                .unwrap()
                .iter()
                .map(|n| n["id"].as_u64().unwrap())
                .collect();
            let conns = json["connections"].as_array().unwrap();
            for c in conns
                .iter()
                .filter(|c| not.contains(&c["id"].as_u64().unwrap()))
            {
                // Never a WebSocket (an upgrade, frames or an RFC 8441 stream); never
                // undecrypted TLS, which may be one.
                assert!(c["handshake"].is_null(), "{file}: {c}");
                assert!(c["http2"].is_null(), "{file}: {c}");
                assert!(
                    c["tls"].is_null() || c["tls"]["decrypted"] == true,
                    "{file}"
                );
            }
            assert_eq!(
                har["log"]["entries"].as_array().unwrap().len() + not.len(),
                conns.len(),
                "{file}: one entry per connection"
            );
            // The findings a connection is part of travel with its entry.
            for e in har["log"]["entries"].as_array().unwrap() {
                let id = e["_wsprobe"]["id"].as_u64().unwrap();
                let want: Vec<&Value> = json["findings"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|f| f["connections"].as_array().unwrap().iter().any(|c| c == id))
                    .collect();
                let got = e["_wsprobe"]["findings"].as_array().unwrap();
                assert_eq!(got.len(), want.len(), "{file} #{id}");
                for (g, w) in got.iter().zip(want) {
                    assert_eq!(g["id"], w["id"]);
                    let index = g["finding"].as_u64().unwrap() as usize;
                    assert_eq!(har["log"]["_wsprobe"]["findings"][index], *w);
                }
            }
        }
    }
}

/// The payload a HAR message carries for a JSON report message (close frames: code + reason).
fn expected_har_data(m: &Value) -> String {
    let b64 = base64::engine::general_purpose::STANDARD;
    let bytes = |m: &Value| -> Vec<u8> {
        match (m["text"].as_str(), m["base64"].as_str()) {
            (Some(t), _) => t.as_bytes().to_vec(),
            (None, Some(b)) => b64.decode(b).unwrap(),
            _ => Vec::new(),
        }
    };
    match m["opcode"].as_str().unwrap() {
        "text" => m["text"]
            .as_str()
            .or(m["base64"].as_str())
            .unwrap_or("")
            .to_string(),
        "close" => {
            let mut p = Vec::new();
            if let Some(code) = m["close_code"].as_u64().filter(|&c| c != 1005) {
                p.extend_from_slice(&(code as u16).to_be_bytes());
            }
            p.extend(bytes(m));
            b64.encode(p)
        }
        _ => b64.encode(bytes(m)),
    }
}

#[test]
fn har_messages_are_the_json_reports_messages() {
    for file in every_capture() {
        let har = json_of(&["analyze", "--format", "har", &file]);
        let json = json_of(&[
            "analyze",
            "--format",
            "json",
            "--messages",
            "--payload",
            "full",
            &file,
        ]);
        let by_id: HashMap<u64, &Value> = json["connections"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| (c["id"].as_u64().unwrap(), c))
            .collect();
        for e in har["log"]["entries"].as_array().unwrap() {
            let c = by_id[&e["_wsprobe"]["id"].as_u64().unwrap()];
            let want = c["messages"].as_array().unwrap();
            let got = e["_webSocketMessages"].as_array().unwrap();
            assert_eq!(got.len(), want.len(), "{file} #{}", c["id"]);
            for (g, w) in got.iter().zip(want) {
                let from = if g["type"] == "send" {
                    "client"
                } else {
                    "server"
                };
                assert_eq!(from, w["from"], "{file}: {g} vs {w}");
                assert_eq!(g["time"], w["time"], "{file}");
                assert_eq!(g["data"], expected_har_data(w), "{file}: {g} vs {w}");
                let opcode = match w["opcode"].as_str().unwrap() {
                    "text" => 1,
                    "binary" => 2,
                    "close" => 8,
                    "ping" => 9,
                    "pong" => 10,
                    other => other.trim_start_matches("reserved-").parse().unwrap(),
                };
                assert_eq!(g["opcode"], opcode);
            }
            // The close analysis travels with the entry.
            assert_eq!(e["_wsprobe"]["close"], c["close"]);
            assert_eq!(e["_wsprobe"]["diagnostics"], c["diagnostics"]);
            if let Some(code) = c["close"]["code"].as_u64() {
                assert_eq!(e["_webSocketClose"]["code"], code);
                assert_eq!(
                    e["_webSocketClose"]["inferred"],
                    c["close"]["outcome"] == "abnormal"
                );
            }
        }
    }
}

#[test]
fn har_entries_carry_the_handshake_and_refused_upgrades() {
    let har = json_of(&["analyze", "--format", "har", "captures/refused.pcap"]);
    let entries = har["log"]["entries"].as_array().unwrap();
    let refused: Vec<&Value> = entries
        .iter()
        .filter(|e| e["response"]["status"] != 101)
        .collect();
    assert!(!refused.is_empty(), "refused.pcap has refused upgrades");
    for e in refused {
        assert!(e["_webSocketMessages"].as_array().unwrap().is_empty());
        assert_eq!(e["_wsprobe"]["close"]["outcome"], "not_websocket");
        assert!(e["request"]["url"].as_str().unwrap().starts_with("ws://"));
    }
    let ok = json_of(&["analyze", "--format", "har", "captures/demo.pcap"]);
    let e = &ok["log"]["entries"][0];
    assert_eq!(e["request"]["method"], "GET");
    assert_eq!(e["response"]["status"], 101);
    assert_eq!(e["response"]["statusText"], "Switching Protocols");
    let names: Vec<&str> = e["request"]["headers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["name"].as_str().unwrap())
        .collect();
    assert!(
        names
            .iter()
            .any(|n| n.eq_ignore_ascii_case("sec-websocket-key")),
        "{names:?}"
    );
    assert!(e["timings"]["wait"].as_f64().unwrap() >= 0.0);
    assert!(e["startedDateTime"].as_str().unwrap().ends_with('Z'));
}

#[test]
fn har_entries_say_wss_http2_the_app_decode_and_the_findings() {
    let h2 = json_of(&[
        "analyze",
        "--format",
        "har",
        "captures/h2-chromium.pcapng",
        "--keylog",
        "captures/h2-chromium.keys",
    ]);
    let entries = h2["log"]["entries"].as_array().unwrap();
    assert_eq!(
        entries.len(),
        2,
        "the two WebSocket streams; the HTTP/2 connection is not one"
    );
    for e in entries {
        let url = e["request"]["url"].as_str().unwrap();
        assert!(url.starts_with("wss://localhost:21443/ws/"), "{url}");
        // What Chrome's exporter writes for h2, and its importer maps back to h2.
        assert_eq!(e["request"]["httpVersion"], "http/2.0");
        assert_eq!(e["response"]["httpVersion"], "http/2.0");
        assert_eq!(e["response"]["status"], 200);
        assert!(e["_wsprobe"]["http2"]["stream_id"].as_u64().unwrap() > 0);
        assert_eq!(e["_wsprobe"]["tls"]["version"], "TLSv1.3");
        assert_eq!(e["_wsprobe"]["tls"]["alpn"], "h2");
    }
    // The TCP connection that carried them is listed apart, saying so.
    let not = &h2["log"]["_wsprobe"]["not_entries"];
    assert_eq!(not.as_array().unwrap().len(), 1, "{not}");
    assert_eq!(not[0]["id"], 1);
    assert_eq!(
        not[0]["why"],
        "HTTP/2 connection: its 2 WebSocket streams are entries of their own"
    );
    // WebSocket over TLS (HTTP/1.1): wss, from the tls record.
    let wss = json_of(&[
        "analyze",
        "--format",
        "har",
        "captures/wss-chromium.pcap",
        "--keylog",
        "captures/wss-chromium.keys",
    ]);
    let e = &wss["log"]["entries"][0];
    assert!(
        e["request"]["url"].as_str().unwrap().starts_with("wss://"),
        "{}",
        e["request"]["url"]
    );
    assert_eq!(e["request"]["httpVersion"], "HTTP/1.1");
    assert_eq!(e["_wsprobe"]["tls"]["decrypted"], true);
    // Without keys: the TLS connection stays an entry (it may be WebSocket), named by SNI or
    // address, with what the record sizes suggest.
    let dark = json_of(&["analyze", "--format", "har", "captures/wss-py-tls13.pcap"]);
    let e = &dark["log"]["entries"][0];
    assert!(e["request"]["url"].as_str().unwrap().starts_with("wss://"));
    assert_eq!(e["_wsprobe"]["tls"]["decrypted"], false);
    // The application protocol's decode travels with the entry.
    let mqtt = json_of(&["analyze", "--format", "har", "captures/app-mqtt.pcap"]);
    let app = &mqtt["log"]["entries"][0]["_wsprobe"]["app"];
    assert_eq!(app["protocol"], "mqtt");
    assert!(
        app["session"]["summary"]
            .as_str()
            .unwrap()
            .contains("CONNACK")
    );
    // Findings: each entry names the findings it is part of.
    let idle = json_of(&[
        "analyze",
        "--format",
        "har",
        "captures/idle-timeout-nginx.pcap",
    ]);
    let with_idle = idle["log"]["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            e["_wsprobe"]["findings"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f["id"] == "idle_timeout")
        })
        .count();
    let f = idle["log"]["_wsprobe"]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == "idle_timeout")
        .unwrap();
    assert_eq!(with_idle, f["connections"].as_array().unwrap().len());
    // --pretty gives the same document.
    let pretty = json_of(&[
        "analyze",
        "--format",
        "har",
        "--pretty",
        "captures/idle-timeout-nginx.pcap",
    ]);
    assert_eq!(pretty["log"]["entries"], idle["log"]["entries"]);
}

// ---------------------------------------------------------------- redaction

const SECRETS: &[&str] = &[
    "s3cr3t-bearer-7f3a",
    "c00kie-val-91b2",
    "srv-c00kie-55aa",
    "qu3ry-t0ken-1234",
    "pr0t0-t0ken-abcd",
    "ap1-k3y-0000",
];

/// A WebSocket conversation whose handshake carries every kind of credential.
fn credential_capture() -> PathBuf {
    let mut c = Conv::new("10.1.1.1:40000", "10.2.2.2:8080");
    c.tcp_open();
    c.send(
        true,
        &upgrade_request(
            "/live?room=7&access_token=qu3ry-t0ken-1234",
            "Authorization: Bearer s3cr3t-bearer-7f3a\r\nCookie: session=c00kie-val-91b2; theme=dark\r\nX-Api-Key: ap1-k3y-0000\r\nSec-WebSocket-Protocol: graphql-transport-ws, authorization.bearer.pr0t0-t0ken-abcd\r\n",
        ),
    );
    c.send(
        false,
        &upgrade_response(
            "Set-Cookie: sid=srv-c00kie-55aa; Path=/; HttpOnly\r\nSec-WebSocket-Protocol: graphql-transport-ws\r\n",
        ),
    );
    c.send(true, &client_frame(true, 1, b"hello"));
    c.send(false, &server_frame(true, 1, b"hello"));
    c.send(true, &client_frame(true, 8, &close_payload(1000, "bye")));
    c.send(false, &server_frame(true, 8, &close_payload(1000, "bye")));
    c.fin(false).fin(true);
    temp_file(&pcap(&c, Link::Ethernet), "pcap")
}

/// Every byte wsprobe writes for `file` in each format, and in the tables (gunzipped).
fn everything_written(file: &Path, extra: &[&str]) -> String {
    let f = file.to_str().unwrap();
    let mut all = String::new();
    for format in ["json", "jsonl", "table", "har"] {
        let mut args = vec!["analyze", "--format", format, "--messages", f];
        args.extend_from_slice(extra);
        all.push_str(&String::from_utf8_lossy(&run(&args).stdout));
    }
    let mut args = vec!["analyze", "--format", "html", f];
    args.extend_from_slice(extra);
    let page = String::from_utf8(run(&args).stdout).unwrap();
    all.push_str(&serde_json::to_string(&html_report_data(&page)).unwrap());
    all.push_str(&page);
    let dir = fresh_dir("redact-tables");
    let d = dir.to_str().unwrap();
    let mut args = vec![
        "analyze",
        "--format",
        "json",
        "--messages",
        "--out-dir",
        d,
        "--compress",
        f,
    ];
    args.extend_from_slice(extra);
    run(&args);
    for path in files_under(&dir) {
        let bytes = std::fs::read(&path).unwrap();
        if path.to_string_lossy().ends_with(".gz") {
            let mut text = String::new();
            flate2::read::GzDecoder::new(&bytes[..])
                .read_to_string(&mut text)
                .unwrap();
            all.push_str(&text);
        } else {
            all.push_str(&String::from_utf8_lossy(&bytes));
        }
    }
    all
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue; // a table with no rows has no directory
        };
        for e in entries {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn handshake_credentials_are_redacted_everywhere_unless_no_redact() {
    let file = credential_capture();
    let redacted = everything_written(&file, &[]);
    for secret in SECRETS {
        assert!(!redacted.contains(secret), "{secret} leaked");
    }
    // What stays: that the credentials were sent, and everything else.
    for kept in [
        "Bearer REDACTED",
        "session=REDACTED",
        "sid=REDACTED",
        "access_token=REDACTED",
        "authorization.bearer.REDACTED",
        "graphql-transport-ws",
        "room=7",
    ] {
        assert!(redacted.contains(kept), "{kept} missing");
    }
    let kept = everything_written(&file, &["--no-redact"]);
    for secret in SECRETS {
        assert!(kept.contains(secret), "{secret} lost with --no-redact");
    }
    // The HAR keeps the request's shape: cookies and query parameters by name.
    let har = json_of(&["analyze", "--format", "har", file.to_str().unwrap()]);
    let req = &har["log"]["entries"][0]["request"];
    assert_eq!(
        req["cookies"],
        json!([{"name": "session", "value": "REDACTED"}, {"name": "theme", "value": "REDACTED"}])
    );
    assert!(
        req["queryString"]
            .as_array()
            .unwrap()
            .contains(&json!({"name": "access_token", "value": "REDACTED"}))
    );
    assert_eq!(
        req["url"],
        "ws://example.test/live?room=7&access_token=REDACTED"
    );
}

/// Credentials that application protocols carry in their messages.
const APP_SECRETS: &[&str] = &[
    "st0mp-l0gin",
    "st0mp-p4ss",
    "st0mp-t0ken",
    "mq7t-us3r",
    "mq7t-p4ss",
    "s10-t0k3n",
    "s10-pa55",
    "gql-b3arer",
    "gql-t3nant",
    "js0n-ap1k",
];

/// One WebSocket connection (subprotocol `proto`, request target `path`) carrying `messages`:
/// (from the client, opcode, payload).
fn app_conversation(
    port: u16,
    path: &str,
    proto: &str,
    messages: &[(bool, u8, Vec<u8>)],
) -> PathBuf {
    let mut c = Conv::new(&format!("10.1.1.1:{port}"), "10.2.2.2:8080");
    c.tcp_open();
    let protocol = |p: &str| {
        if p.is_empty() {
            String::new()
        } else {
            format!("Sec-WebSocket-Protocol: {p}\r\n")
        }
    };
    c.send(true, &upgrade_request(path, &protocol(proto)));
    c.send(false, &upgrade_response(&protocol(proto)));
    for (from_client, opcode, payload) in messages {
        if *from_client {
            c.send(true, &client_frame(true, *opcode, payload));
        } else {
            c.send(false, &server_frame(true, *opcode, payload));
        }
    }
    c.send(true, &client_frame(true, 8, &close_payload(1000, "")));
    c.send(false, &server_frame(true, 8, &close_payload(1000, "")));
    c.fin(false).fin(true);
    temp_file(&pcap(&c, Link::Ethernet), "pcap")
}

/// Captures of STOMP, MQTT (its CONNECT a field per message, as MQTT.js writes it), Socket.IO,
/// graphql-transport-ws and plain JSON sessions that log in.
fn app_credential_captures() -> Vec<PathBuf> {
    let text = |from: bool, s: &str| (from, 1u8, s.as_bytes().to_vec());
    let stomp = app_conversation(
        41000,
        "/stomp",
        "v12.stomp",
        &[
            text(
                true,
                "CONNECT\naccept-version:1.2\nhost:/\nlogin:st0mp-l0gin\npasscode:st0mp-p4ss\nheart-beat:0,0\n\n\0",
            ),
            text(false, "CONNECTED\nversion:1.2\nheart-beat:0,0\n\n\0"),
            text(
                true,
                "SEND\ndestination:/queue/a\nauth-token:st0mp-t0ken\ncontent-length:2\n\nhi\0",
            ),
        ],
    );
    // MQTT 3.1.1 CONNECT: client id "dev-1", user name and password flags, keep-alive 60 s.
    let mut connect = vec![0u8, 4, b'M', b'Q', b'T', b'T', 4, 0xC2, 0, 60];
    let field = |s: &str| {
        let mut v = (s.len() as u16).to_be_bytes().to_vec();
        v.extend_from_slice(s.as_bytes());
        v
    };
    let (id, user, pass) = (field("dev-1"), field("mq7t-us3r"), field("mq7t-p4ss"));
    let remaining = (connect.len() + id.len() + user.len() + pass.len()) as u8;
    let head = vec![0x10, remaining];
    // One write per field, each its own WebSocket message (MQTT.js over websocket-stream).
    let mut mqtt: Vec<(bool, u8, Vec<u8>)> = vec![(true, 2, head)];
    mqtt.push((true, 2, std::mem::take(&mut connect)));
    for f in [&id, &user[..2], &user[2..], &pass[..2], &pass[2..]] {
        mqtt.push((true, 2, f.to_vec()));
    }
    mqtt.push((false, 2, vec![0x20, 2, 0, 0]));
    let mqtt = app_conversation(41001, "/mqtt", "mqtt", &mqtt);
    let socketio = app_conversation(
        41002,
        "/socket.io/?EIO=4&transport=websocket",
        "",
        &[
            text(
                false,
                r#"0{"sid":"abc","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#,
            ),
            text(true, r#"40{"token":"s10-t0k3n"}"#),
            text(false, r#"40{"sid":"def"}"#),
            text(true, r#"42["login",{"user":"ann","password":"s10-pa55"}]"#),
        ],
    );
    let graphql = app_conversation(
        41003,
        "/graphql",
        "graphql-transport-ws",
        &[
            text(
                true,
                r#"{"type":"connection_init","payload":{"Authorization":"Bearer gql-b3arer","tenant":"gql-t3nant"}}"#,
            ),
            text(false, r#"{"type":"connection_ack"}"#),
        ],
    );
    let json = app_conversation(
        41004,
        "/feed",
        "",
        &[
            text(
                true,
                r#"{"op":"auth","apiKey":"js0n-ap1k","channels":["trades"]}"#,
            ),
            text(false, r#"{"op":"auth","ok":true}"#),
        ],
    );
    vec![stomp, mqtt, socketio, graphql, json]
}

#[test]
fn application_credentials_are_redacted_everywhere_unless_no_redact() {
    let files = app_credential_captures();
    let written = |extra: &[&str]| -> String {
        let mut all = String::new();
        for f in &files {
            all.push_str(&everything_written(f, extra));
            let mut args = vec![
                "analyze",
                "--format",
                "json",
                "--messages",
                "--payload",
                "full",
            ];
            args.push(f.to_str().unwrap());
            args.extend_from_slice(extra);
            all.push_str(&String::from_utf8_lossy(&run(&args).stdout));
        }
        all
    };
    let redacted = written(&[]);
    for secret in APP_SECRETS {
        assert!(!redacted.contains(secret), "{secret} leaked");
    }
    // The rest of each message stays, so the session can still be read.
    let mut texts = String::new();
    for f in &files {
        let r = json_of(&[
            "analyze",
            "--format",
            "json",
            "--messages",
            "--payload",
            "full",
            f.to_str().unwrap(),
        ]);
        for m in r["connections"][0]["messages"].as_array().unwrap() {
            texts.push_str(m["text"].as_str().unwrap_or(""));
            texts.push_str(m["app"]["summary"].as_str().unwrap_or(""));
            texts.push('\n');
        }
    }
    for kept in [
        "login:REDACTED",
        "passcode:REDACTED",
        "auth-token:REDACTED",
        "destination:/queue/a",
        r#"40{"token":"REDACTED"}"#,
        r#""user":"ann","password":"REDACTED""#,
        r#""Authorization":"REDACTED","tenant":"REDACTED""#,
        r#""apiKey":"REDACTED","channels":["trades"]"#,
        "user REDACTED password",
        "dev-1",
    ] {
        assert!(texts.contains(kept), "{kept} missing in {texts}");
    }
    // The decodes still see every packet (the application stage reads the wire's bytes).
    let mqtt = json_of(&[
        "analyze",
        "--format",
        "json",
        "--messages",
        files[1].to_str().unwrap(),
    ]);
    let app = &mqtt["connections"][0]["app"];
    assert_eq!(app["protocol"], "mqtt", "{app}");
    assert_eq!(app["session"]["handshake"]["ok"], true, "{app}");
    // The MQTT password is masked byte for byte: lengths and packet structure stay.
    let full = json_of(&[
        "analyze",
        "--format",
        "json",
        "--messages",
        "--payload",
        "full",
        files[1].to_str().unwrap(),
    ]);
    let b64 = base64::engine::general_purpose::STANDARD;
    let payloads: Vec<Vec<u8>> = full["connections"][0]["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["from"] == "client" && m["opcode"] == "binary")
        .map(|m| b64.decode(m["base64"].as_str().unwrap()).unwrap())
        .collect();
    assert_eq!(payloads[3], b"\x00\x09", "the user name's length stays");
    assert_eq!(payloads[4], b"*********");
    assert_eq!(payloads[5], b"\x00\x09");
    assert_eq!(payloads[6], b"*********");
    let kept = written(&["--no-redact"]);
    // (The MQTT password is only in binary payloads, base64 in every report.)
    for secret in APP_SECRETS.iter().filter(|s| **s != "mq7t-p4ss") {
        assert!(kept.contains(secret), "{secret} lost with --no-redact");
    }
    let full = json_of(&[
        "analyze",
        "--format",
        "json",
        "--messages",
        "--payload",
        "full",
        "--no-redact",
        files[1].to_str().unwrap(),
    ]);
    let password = &full["connections"][0]["messages"][6]["base64"];
    assert_eq!(
        b64.decode(password.as_str().unwrap()).unwrap(),
        b"mq7t-p4ss"
    );
}

// ---------------------------------------------------------------- HTML data

/// The JSON report embedded in an HTML report (gzip, base64).
fn html_report_data(page: &str) -> Value {
    let start = page.find("id=\"wsprobe-report\">").expect("data element") + 20;
    let end = start + page[start..].find("</script>").unwrap();
    let gz = base64::engine::general_purpose::STANDARD
        .decode(page[start..end].trim())
        .expect("base64");
    let mut text = String::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_string(&mut text)
        .expect("gzip");
    serde_json::from_str(&text).expect("JSON")
}

#[test]
fn html_embeds_the_json_report_and_a_summary_readable_without_script() {
    let files = every_capture();
    let mut args = vec!["analyze", "--format", "html"];
    args.extend(files.iter().map(String::as_str));
    let page = String::from_utf8(run(&args).stdout).unwrap();
    let data = html_report_data(&page);
    args[2] = "json";
    args.push("--messages");
    let json: Value = serde_json::from_slice(&run(&args).stdout).unwrap();
    assert_eq!(data["connections"], json["connections"]);
    assert_eq!(data["summary"], json["summary"]);
    assert_eq!(data["inputs"], json["inputs"]);
    assert_eq!(data["omitted_connections"], 0);
    // The summary is HTML, not script: counts and every diagnostic id are in the markup.
    let body = &page[page.find("</script>").unwrap()..];
    let markup = &body[..body.find("<script>").unwrap()];
    assert!(markup.contains("id=\"summary\""));
    for (id, _) in json["summary"]["diagnostics"].as_object().unwrap() {
        assert!(markup.contains(&format!("<code>{id}</code>")), "{id}");
    }
    for (outcome, n) in json["summary"]["outcomes"].as_object().unwrap() {
        assert!(
            markup.contains(&format!("{outcome}</th><td>{n}</td>")),
            "{outcome}"
        );
    }
    // "Why connections ended" too: every finding with its confidence, evidence and advice,
    // and links to its connections.
    assert_eq!(data["findings"], json["findings"]);
    let findings = json["findings"].as_array().unwrap();
    assert!(!findings.is_empty(), "the captures hold findings");
    assert!(markup.contains("id=\"summary-findings\""));
    let esc = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
            .replace('\'', "&#39;")
    };
    for f in findings {
        let id = f["id"].as_str().unwrap();
        assert!(
            markup.contains(&format!("<code class=\"fid\">{id}</code>")),
            "{id}"
        );
        assert!(
            markup.contains(&esc(f["evidence"].as_str().unwrap())),
            "{id} evidence"
        );
        assert!(
            markup.contains(&esc(f["advice"].as_str().unwrap())),
            "{id} advice"
        );
        let sure = format!("{:.0} % sure", f["confidence"].as_f64().unwrap() * 100.0);
        assert!(markup.contains(&sure), "{id} {sure}");
        let first = f["connections"][0].as_u64().unwrap();
        assert!(
            markup.contains(&format!("href=\"#conn-{first}\"")),
            "{id} link"
        );
    }
    // Nothing in the page can reach the network.
    assert!(page.contains("Content-Security-Policy\" content=\"default-src 'none'"));
    for banned in ["src=\"http", "href=\"http", "url(http", "@import"] {
        assert!(!page.contains(banned), "{banned}");
    }
}

#[test]
fn html_size_is_bounded_by_the_listing_cap() {
    let file = "captures/concurrent-50.pcap";
    let full = run(&["analyze", "--format", "html", file]).stdout;
    let capped = run(&[
        "analyze",
        "--format",
        "html",
        "--max-listed-bytes",
        "2000",
        file,
    ])
    .stdout;
    let data = html_report_data(&String::from_utf8(capped.clone()).unwrap());
    let listed: usize = data["connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["messages"].as_array().unwrap().len())
        .sum();
    assert!(
        listed < 20,
        "{listed} messages listed under a 2000-byte cap"
    );
    assert!(data["summary"]["diagnostics"]["limit_exceeded"].as_u64() > Some(0));
    assert!(capped.len() < full.len());
}

// ---------------------------------------------------------------- tables

/// `schema/<table>.v1.json` and `schema/sql/*.sql` are what the code generates (re-bless with
/// WSPROBE_BLESS=1 after changing a column).
#[test]
fn table_sql_and_schemas_are_published_as_generated() {
    use wsprobe::report::tables::{columns::TABLES, schema, sql};
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("schema");
    let mut files: Vec<(PathBuf, String)> = TABLES
        .iter()
        .map(|t| {
            (
                root.join(schema::file_name(t)),
                serde_json::to_string_pretty(&schema::json_schema(t)).unwrap() + "\n",
            )
        })
        .collect();
    for (name, text) in sql::all() {
        files.push((root.join("sql").join(name), text));
    }
    for (path, want) in files {
        if std::env::var_os("WSPROBE_BLESS").is_some() {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &want).unwrap();
            continue;
        }
        let got = std::fs::read_to_string(&path)
            .unwrap_or_else(|_| panic!("{} missing: run with WSPROBE_BLESS=1", path.display()));
        assert!(
            got == want,
            "{} differs from the generated text: re-bless with WSPROBE_BLESS=1",
            path.display()
        );
    }
}

/// Reads every JSON Lines row of `table` under `dir`.
fn rows(dir: &Path, table: &str) -> Vec<Value> {
    let mut out = Vec::new();
    for path in files_under(&dir.join(format!("table={table}"))) {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        assert!(!name.starts_with('.'), "a temporary file was left: {name}");
        let bytes = std::fs::read(&path).unwrap();
        let text = if name.ends_with(".gz") {
            let mut t = String::new();
            flate2::read::GzDecoder::new(&bytes[..])
                .read_to_string(&mut t)
                .unwrap();
            t
        } else {
            String::from_utf8(bytes).unwrap()
        };
        for line in text.lines() {
            out.push(serde_json::from_str(line).unwrap());
        }
    }
    out
}

#[test]
fn table_rows_match_their_schemas_and_the_json_report() {
    let validators: HashMap<&str, jsonschema::Validator> =
        ["connections", "messages", "diagnostics", "findings"]
            .iter()
            .map(|t| {
                let text = std::fs::read_to_string(format!(
                    "{}/schema/{t}.v1.json",
                    env!("CARGO_MANIFEST_DIR")
                ))
                .unwrap();
                (
                    *t,
                    jsonschema::validator_for(&serde_json::from_str(&text).unwrap()).unwrap(),
                )
            })
            .collect();
    for file in every_capture() {
        let dir = fresh_dir("tables-schema");
        let d = dir.to_str().unwrap();
        let json = json_of(&[
            "analyze",
            "--format",
            "json",
            "--messages",
            "--out-dir",
            d,
            "--sensor",
            "lab",
            &file,
        ]);
        let conns = json["connections"].as_array().unwrap();
        let tables: HashMap<&str, Vec<Value>> =
            ["connections", "messages", "diagnostics", "findings"]
                .iter()
                .map(|t| (*t, rows(&dir, t)))
                .collect();
        for (t, list) in &tables {
            for row in list {
                let errors: Vec<String> = validators[t]
                    .iter_errors(row)
                    .map(|e| format!("{e} at {}", e.instance_path()))
                    .collect();
                assert!(errors.is_empty(), "{file} {t}: {errors:#?}");
                // Flat: no objects; lists (findings' connections) hold only scalars.
                assert!(
                    row.as_object().unwrap().values().all(|v| !v.is_object()
                        && v.as_array()
                            .is_none_or(|a| a.iter().all(|x| !x.is_object() && !x.is_array()))),
                    "flat"
                );
            }
        }
        assert_eq!(tables["connections"].len(), conns.len(), "{file}");
        let messages: usize = conns
            .iter()
            .map(|c| c["messages"].as_array().unwrap().len())
            .sum();
        assert_eq!(tables["messages"].len(), messages, "{file}");
        let diagnostics: usize = conns
            .iter()
            .map(|c| c["diagnostics"].as_array().unwrap().len())
            .sum();
        assert_eq!(tables["diagnostics"].len(), diagnostics, "{file}");
        let by_id: HashMap<u64, &Value> = tables["connections"]
            .iter()
            .map(|r| (r["wsprobe.connection_id"].as_u64().unwrap(), r))
            .collect();
        for c in conns {
            let r = by_id[&c["id"].as_u64().unwrap()];
            assert_eq!(r["source.ip"], c["client"]["ip"]);
            assert_eq!(r["destination.port"], c["server"]["port"]);
            assert_eq!(r["websocket.close.code"], c["close"]["code"]);
            assert_eq!(r["websocket.close.outcome"], c["close"]["outcome"]);
            assert_eq!(r["ts"], c["first_seen"]);
            assert_eq!(r["sensor"], "lab");
            // What the TLS, HTTP/2, application and timing stages add.
            let tls = &c["tls"];
            assert_eq!(r["tls.cipher"], tls["cipher_suite"], "{file}");
            assert_eq!(r["tls.client.server_name"], tls["sni"], "{file}");
            assert_eq!(r["tls.next_protocol"], tls["alpn"], "{file}");
            assert_eq!(r["wsprobe.tls.decrypted"], tls["decrypted"], "{file}");
            assert_eq!(
                r["tls.version"].as_str(),
                tls["version"]
                    .as_str()
                    .map(|v| v.trim_start_matches("TLSv")),
                "{file}"
            );
            let h2 = c.get("http2").unwrap_or(&Value::Null);
            assert_eq!(r["websocket.http2.stream_id"], h2["stream_id"], "{file}");
            assert_eq!(r["websocket.http2.end"], h2["end"], "{file}");
            assert_eq!(r["websocket.app.protocol"], c["app"]["protocol"], "{file}");
            assert_eq!(r["websocket.timing.ended_by"], c["timing"]["ended_by"]);
            assert_eq!(r["websocket.timing.age_s"], c["timing"]["age"]);
            assert_eq!(
                r["websocket.close.unreachable_since"],
                c["close"]["unreachable"]["since"]
            );
            if c["handshake"].is_object() {
                let tls_or_https = !tls.is_null()
                    || c["handshake"]["request_headers"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|h| h["name"] == ":scheme" && h["value"] == "https");
                assert_eq!(r["url.scheme"], if tls_or_https { "wss" } else { "ws" });
            }
        }
        // One findings row per finding, its connections as arrays of ids and conn_uids, every
        // parameter in its column.
        let findings = json["findings"].as_array().unwrap();
        assert_eq!(tables["findings"].len(), findings.len(), "{file}");
        let mut rows_by_ids: HashMap<String, &Value> = HashMap::new();
        for row in &tables["findings"] {
            let key = format!("{}{}", row["event.code"], row["wsprobe.connection_ids"]);
            rows_by_ids.insert(key, row);
        }
        for f in findings {
            let row = rows_by_ids[&format!("{}{}", f["id"], f["connections"])];
            assert_eq!(row["wsprobe.finding.confidence"], f["confidence"]);
            assert_eq!(row["wsprobe.finding.evidence"], f["evidence"]);
            assert_eq!(row["message"], f["explanation"]);
            assert_eq!(row["wsprobe.finding.advice"], f["advice"]);
            let ids = f["connections"].as_array().unwrap();
            let uids = row["conn_uids"].as_array().unwrap();
            assert_eq!(uids.len(), ids.len());
            for (id, uid) in ids.iter().zip(uids) {
                assert_eq!(by_id[&id.as_u64().unwrap()]["conn_uid"], *uid, "{file}");
            }
            let params: Value =
                serde_json::from_str(row["wsprobe.finding.parameters"].as_str().unwrap()).unwrap();
            assert_eq!(params, f["parameters"]);
            for (k, v) in f["parameters"].as_object().unwrap() {
                let column = |name: &str| &row[format!("wsprobe.finding.parameters.{name}")];
                if k == "spread_s" {
                    assert_eq!(*column("spread_min_s"), v[0], "{file} {k}");
                    assert_eq!(*column("spread_max_s"), v[1], "{file} {k}");
                } else {
                    assert!(
                        row.get(format!("wsprobe.finding.parameters.{k}")).is_some(),
                        "{file}: parameter {k} of {} has no column",
                        f["id"]
                    );
                    assert_eq!(column(k), v, "{file} {k}");
                }
            }
        }
        // Every message and diagnostic row points at a connection row.
        for t in ["messages", "diagnostics"] {
            for row in &tables[t] {
                let id = row["wsprobe.connection_id"].as_u64().unwrap();
                assert_eq!(row["conn_uid"], by_id[&id]["conn_uid"]);
            }
        }
    }
}

/// A capture of the Community ID spec's own example flow: its id must be the spec's.
#[test]
fn community_id_of_a_captured_flow_is_the_specs() {
    let mut c = Conv::new("128.232.110.120:34855", "66.35.250.204:80");
    c.tcp_open();
    c.send(true, &upgrade_request("/", ""));
    c.send(false, &upgrade_response(""));
    c.rst(false);
    let file = temp_file(&pcap(&c, Link::Ethernet), "pcap");
    let dir = fresh_dir("community-id");
    run(&[
        "analyze",
        "--out-dir",
        dir.to_str().unwrap(),
        file.to_str().unwrap(),
    ]);
    let list = rows(&dir, "connections");
    assert_eq!(list.len(), 1);
    // Without --sensor, the sensor is this machine's name, in the row and the partition.
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_eq!(list[0]["sensor"], host.trim(), "the default sensor");
    assert!(
        files_under(&dir)
            .iter()
            .any(|p| p.to_string_lossy().contains("table=connections/date=")
                && p.to_string_lossy()
                    .contains(&format!("/sensor={}/", host.trim()))),
        "a sensor={} partition",
        host.trim()
    );
    assert_eq!(
        list[0]["network.community_id"],
        "1:LQU9qZlK+B5F3KDmev6m5PMibrg="
    );
    let har = json_of(&["analyze", "--format", "har", file.to_str().unwrap()]);
    assert_eq!(
        har["log"]["entries"][0]["_wsprobe"]["community_id"],
        "1:LQU9qZlK+B5F3KDmev6m5PMibrg="
    );
    // Analysed again at the same sensor: the same uid.
    let dir2 = fresh_dir("community-id-2");
    let sensor = list[0]["sensor"].as_str().unwrap();
    run(&[
        "analyze",
        "--out-dir",
        dir2.to_str().unwrap(),
        "--sensor",
        sensor,
        file.to_str().unwrap(),
    ]);
    assert_eq!(
        rows(&dir2, "connections")[0]["conn_uid"],
        list[0]["conn_uid"]
    );
}

/// Python with the `duckdb` package, in a venv under target/ (made once per test run); None
/// when pip cannot reach PyPI.
fn duckdb_python() -> Option<PathBuf> {
    static PYTHON: OnceLock<Option<PathBuf>> = OnceLock::new();
    PYTHON
        .get_or_init(|| {
            let venv = target_dir().join("duckdb-venv");
            let python = venv.join("bin/python");
            let has = |p: &Path| {
                Command::new(p)
                    .args(["-c", "import duckdb"])
                    .output()
                    .is_ok_and(|o| o.status.success())
            };
            if has(&python) {
                return Some(python);
            }
            let made = Command::new("python3")
                .args(["-m", "venv"])
                .arg(&venv)
                .status()
                .is_ok_and(|s| s.success());
            assert!(
                made,
                "python3 -m venv failed (Debian: apt-get install python3-venv)"
            );
            let pip = Command::new(venv.join("bin/pip"))
                .args(["install", "--quiet", "duckdb"])
                .output()
                .unwrap();
            if !pip.status.success() {
                eprintln!(
                    "DuckDB test SKIPPED: pip could not install duckdb (no access to PyPI?): {}",
                    String::from_utf8_lossy(&pip.stderr)
                );
                return None;
            }
            assert!(has(&python), "duckdb installed but does not import");
            Some(python)
        })
        .clone()
}

/// Runs SQL in DuckDB with `cwd` as the current directory; the result as JSON rows.
fn duckdb(python: &Path, cwd: &Path, init: Option<&Path>, sql: &str) -> Vec<Value> {
    let script = r#"
import duckdb, json, sys, datetime, decimal
con = duckdb.connect()
if sys.argv[1]:
    con.execute(open(sys.argv[1]).read())
cur = con.execute(sys.argv[2])
names = [d[0] for d in cur.description]
def plain(v):
    if isinstance(v, (datetime.date, datetime.datetime)): return v.isoformat()
    if isinstance(v, decimal.Decimal): return float(v)
    return v
print(json.dumps([dict(zip(names, map(plain, r))) for r in cur.fetchall()]))
"#;
    let out = Command::new(python)
        .current_dir(cwd)
        .args(["-c", script])
        .arg(
            init.map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default(),
        )
        .arg(sql)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "duckdb: {}\n{sql}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn duckdb_reads_two_runs_from_two_sensors_as_one_table() {
    let Some(python) = duckdb_python() else {
        return;
    };
    let dir = fresh_dir("fleet");
    let d = dir.to_str().unwrap();
    let a = [
        "captures/close-codes.pcap",
        "captures/killed-server.pcap",
        "captures/ping-unanswered.pcap",
    ];
    let b = [
        "captures/refused.pcap",
        "captures/concurrent-50.pcap",
        "captures/demo.pcap",
    ];
    let mut reports = Vec::new();
    for (sensor, files, compress) in [("edge-a", &a, true), ("edge-b", &b, false)] {
        let mut args = vec![
            "analyze",
            "--format",
            "json",
            "--messages",
            "--out-dir",
            d,
            "--sensor",
            sensor,
        ];
        if compress {
            args.push("--compress");
        }
        args.extend_from_slice(files);
        reports.push((sensor, json_of(&args)));
    }
    // As the README does: read_json_auto over the globs, with hive partitions.
    let counted = duckdb(
        &python,
        &dir,
        None,
        "SELECT sensor, count(*) AS n, count(DISTINCT conn_uid) AS uids, \
                count(*) FILTER (WHERE \"websocket.close.code\" = 1006) AS drops \
         FROM read_json_auto('table=connections/**/*.jsonl*', hive_partitioning = true, union_by_name = true) \
         GROUP BY sensor ORDER BY sensor",
    );
    assert_eq!(counted.len(), 2, "{counted:?}");
    for (row, (sensor, report)) in counted.iter().zip(&reports) {
        let conns = report["connections"].as_array().unwrap();
        assert_eq!(row["sensor"], *sensor);
        assert_eq!(row["n"], conns.len());
        assert_eq!(row["uids"], conns.len());
        let drops = conns.iter().filter(|c| c["close"]["code"] == 1006).count();
        assert_eq!(row["drops"], drops);
    }
    // The published views (written into the dataset as _schema/duckdb.sql) type every column.
    let init = dir.join("_schema/duckdb.sql");
    let messages = duckdb(
        &python,
        &dir,
        Some(&init),
        "SELECT count(*) AS n, count(DISTINCT conn_uid) AS conns FROM messages",
    );
    let listed: usize = reports
        .iter()
        .flat_map(|(_, r)| r["connections"].as_array().unwrap())
        .map(|c| c["messages"].as_array().unwrap().len())
        .sum();
    assert_eq!(messages[0]["n"], listed);
    let diagnostics = duckdb(
        &python,
        &dir,
        Some(&init),
        "SELECT \"event.code\" AS id, count(*) AS n FROM diagnostics GROUP BY 1 ORDER BY 1",
    );
    let mut want: HashMap<String, usize> = HashMap::new();
    for (_, r) in &reports {
        for c in r["connections"].as_array().unwrap() {
            for d in c["diagnostics"].as_array().unwrap() {
                *want
                    .entry(d["id"].as_str().unwrap().to_string())
                    .or_default() += 1;
            }
        }
    }
    let got: HashMap<String, usize> = diagnostics
        .iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap().to_string(),
                r["n"].as_u64().unwrap() as usize,
            )
        })
        .collect();
    assert_eq!(got, want);
    // The README's questions run as written.
    for query in readme_duckdb_queries() {
        duckdb(&python, &dir, Some(&init), &query);
    }
    // A join: messages of the connections that dropped with 1006.
    let joined = duckdb(
        &python,
        &dir,
        Some(&init),
        "SELECT c.conn_uid, count(m.conn_uid) AS n FROM connections c LEFT JOIN messages m USING (conn_uid) \
         WHERE c.\"websocket.close.code\" = 1006 GROUP BY 1",
    );
    let drops: usize = reports
        .iter()
        .flat_map(|(_, r)| r["connections"].as_array().unwrap())
        .filter(|c| c["close"]["code"] == 1006)
        .count();
    assert_eq!(joined.len(), drops);
}

/// The captures of issue 13's causes, read back by DuckDB from the findings table: a row per
/// finding, the parameters in typed columns, the join with connections through the conn_uids.
#[test]
fn duckdb_reads_the_findings_table_of_findings_captures() {
    let Some(python) = duckdb_python() else {
        return;
    };
    let dir = fresh_dir("findings");
    let d = dir.to_str().unwrap();
    let files = [
        "captures/idle-timeout-nginx.pcap",
        "captures/restart-reconnect.pcap",
        "captures/graceful-shutdown.pcap",
        "captures/heartbeat-timeout.pcap",
        "captures/peer-unreachable.pcap",
        "captures/max-lifetime.pcap",
    ];
    // Each capture its own run (its own findings), all into one dataset.
    let mut findings: Vec<Value> = Vec::new();
    for (i, file) in files.iter().enumerate() {
        let sensor = format!("s{i}");
        let args = [
            "analyze",
            "--format",
            "json",
            "--messages",
            "--out-dir",
            d,
            "--compress",
            "--sensor",
            &sensor,
            file,
        ];
        let report = json_of(&args);
        let list = report["findings"].as_array().unwrap();
        assert!(!list.is_empty(), "{file} has findings");
        findings.extend(list.iter().cloned());
    }
    let init = dir.join("_schema/duckdb.sql");
    let counts = duckdb(
        &python,
        &dir,
        Some(&init),
        "SELECT \"event.code\" AS id, count(*) AS n FROM findings GROUP BY 1 ORDER BY 1",
    );
    let mut want: HashMap<String, u64> = HashMap::new();
    for f in &findings {
        *want
            .entry(f["id"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    let got: HashMap<String, u64> = counts
        .iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap().to_string(),
                r["n"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(got, want);
    // Typed parameters: the idle timeout, the lifetime, the restart's instant and server.
    let idle = duckdb(
        &python,
        &dir,
        Some(&init),
        "SELECT \"wsprobe.finding.parameters.timeout_s\" AS t, \"wsprobe.finding.parameters.spread_min_s\" AS lo, \
                \"wsprobe.finding.connection_count\" AS n, len(conn_uids) AS uids, \
                \"wsprobe.finding.servers\"[1] AS server \
         FROM findings WHERE \"event.code\" = 'idle_timeout'",
    );
    let f = findings.iter().find(|f| f["id"] == "idle_timeout").unwrap();
    assert_eq!(idle.len(), 1, "{idle:?}");
    assert_eq!(idle[0]["t"], f["parameters"]["timeout_s"]);
    assert_eq!(idle[0]["lo"], f["parameters"]["spread_s"][0]);
    assert_eq!(idle[0]["n"], f["connections"].as_array().unwrap().len());
    assert_eq!(idle[0]["uids"], idle[0]["n"]);
    assert!(
        idle[0]["server"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:")
    );
    let restart = duckdb(
        &python,
        &dir,
        Some(&init),
        "SELECT \"wsprobe.finding.parameters.server\" AS server, \"wsprobe.finding.parameters.time\" AS t, \
                \"wsprobe.finding.parameters.reconnected\" AS back FROM findings WHERE \"event.code\" = 'server_restart'",
    );
    let f = findings
        .iter()
        .find(|f| f["id"] == "server_restart")
        .unwrap();
    assert_eq!(restart[0]["server"], f["parameters"]["server"]);
    assert_eq!(restart[0]["t"], f["parameters"]["time"]);
    assert_eq!(restart[0]["back"], f["parameters"]["reconnected"]);
    let lifetime = duckdb(
        &python,
        &dir,
        Some(&init),
        "SELECT \"wsprobe.finding.parameters.lifetime_s\" AS t FROM findings WHERE \"event.code\" = 'max_lifetime'",
    );
    let f = findings.iter().find(|f| f["id"] == "max_lifetime").unwrap();
    assert_eq!(lifetime[0]["t"], f["parameters"]["lifetime_s"]);
    // Every connection of every finding joins a connections row (the view unnests the lists).
    let joined = duckdb(
        &python,
        &dir,
        Some(&init),
        "SELECT count(*) AS n, count(c.conn_uid) AS matched, \
                count(*) FILTER (WHERE fc.connection_id = c.\"wsprobe.connection_id\") AS same_id \
         FROM finding_connections fc LEFT JOIN connections c USING (conn_uid)",
    );
    let members: usize = findings
        .iter()
        .map(|f| f["connections"].as_array().unwrap().len())
        .sum();
    assert_eq!(joined[0]["n"], members);
    assert_eq!(joined[0]["matched"], members);
    assert_eq!(joined[0]["same_id"], members);
    // The README's questions over findings run as written, on this dataset too.
    for query in readme_duckdb_queries() {
        duckdb(&python, &dir, Some(&init), &query);
    }
    // A run without findings leaves an empty findings part: the views still open.
    let quiet = fresh_dir("no-findings");
    let q = quiet.to_str().unwrap();
    run(&[
        "analyze",
        "--format",
        "json",
        "--messages",
        "--out-dir",
        q,
        "captures/demo.pcap",
    ]);
    let none = duckdb(
        &python,
        &quiet,
        Some(&quiet.join("_schema/duckdb.sql")),
        "SELECT count(*) AS n FROM findings",
    );
    assert_eq!(none[0]["n"], 0);
}

/// The ```sql blocks of the README's DuckDB section.
fn readme_duckdb_queries() -> Vec<String> {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let section = readme
        .split("<!-- duckdb-queries -->")
        .nth(1)
        .expect("README marks its DuckDB queries with <!-- duckdb-queries -->");
    let section = section.split("<!-- /duckdb-queries -->").next().unwrap();
    let queries: Vec<String> = section
        .split("```sql")
        .skip(1)
        .map(|b| b.split("```").next().unwrap().trim().to_string())
        .collect();
    assert!(queries.len() >= 3, "{queries:?}");
    queries
}

/// `--table-format parquet` (feature `parquet`): the same rows as the JSON Lines tables, typed,
/// read by DuckDB. Run with `cargo test --features parquet --test integration parquet`.
#[cfg(feature = "parquet")]
#[test]
fn parquet_tables_hold_the_same_rows_as_json_lines() {
    let Some(python) = duckdb_python() else {
        return;
    };
    let files = every_capture();
    for (format, dir) in [
        ("jsonl", fresh_dir("pq-jsonl")),
        ("parquet", fresh_dir("pq-parquet")),
    ] {
        let mut args = vec![
            "analyze",
            "--messages",
            "--sensor",
            "lab",
            "--out-dir",
            dir.to_str().unwrap(),
            "--table-format",
            format,
        ];
        args.extend(files.iter().map(String::as_str));
        run(&args);
    }
    let root = std::env::temp_dir();
    let pid = std::process::id();
    for table in ["connections", "messages", "diagnostics"] {
        let sql = format!(
            "WITH j AS (SELECT * EXCLUDE (date, sensor, \"table\") REPLACE (\"@timestamp\"::TIMESTAMPTZ AS \"@timestamp\") \
                        FROM read_json('wsprobe-pq-jsonl-{pid}/table={table}/**/*.jsonl', hive_partitioning = true, sample_size = -1)), \
                  p AS (SELECT * EXCLUDE (date, sensor, \"table\") FROM read_parquet('wsprobe-pq-parquet-{pid}/table={table}/**/*.parquet', hive_partitioning = true)) \
             SELECT (SELECT count(*) FROM j) AS j, (SELECT count(*) FROM p) AS p, \
                    (SELECT count(*) FROM (SELECT conn_uid, \"@timestamp\", ts FROM j EXCEPT SELECT conn_uid, \"@timestamp\", ts FROM p)) AS differ"
        );
        let r = duckdb(&python, &root, None, &sql);
        assert_eq!(r[0]["j"], r[0]["p"], "{table}: {r:?}");
        assert!(r[0]["j"].as_u64().unwrap() > 0, "{table}: {r:?}");
        assert_eq!(r[0]["differ"], 0, "{table}: {r:?}");
    }
    let types = duckdb(
        &python,
        &root,
        None,
        &format!(
            "SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM read_parquet('wsprobe-pq-parquet-{pid}/table=connections/**/*.parquet'))"
        ),
    );
    let ty = |name: &str| {
        types
            .iter()
            .find(|r| r["column_name"] == name)
            .map(|r| r["column_type"].as_str().unwrap().to_string())
    };
    assert_eq!(
        ty("@timestamp").as_deref(),
        Some("TIMESTAMP WITH TIME ZONE")
    );
    assert_eq!(ty("destination.port").as_deref(), Some("BIGINT"));
    assert_eq!(ty("websocket.close.inferred").as_deref(), Some("BOOLEAN"));
    assert_eq!(
        ty("websocket.ping.rtt_median_ms").as_deref(),
        Some("DOUBLE")
    );
    // The findings: lists as Parquet LISTs, equal to the JSON Lines' arrays.
    let findings = duckdb(
        &python,
        &root,
        None,
        &format!(
            "WITH j AS (SELECT finding_uid, conn_uids, \"wsprobe.connection_ids\" AS ids, \"wsprobe.finding.parameters.legs\" AS legs, \
                               \"wsprobe.finding.parameters.timeout_s\" AS t \
                        FROM read_json('wsprobe-pq-jsonl-{pid}/table=findings/**/*.jsonl', sample_size = -1)), \
                  p AS (SELECT finding_uid, conn_uids, \"wsprobe.connection_ids\" AS ids, \"wsprobe.finding.parameters.legs\" AS legs, \
                               \"wsprobe.finding.parameters.timeout_s\" AS t \
                        FROM read_parquet('wsprobe-pq-parquet-{pid}/table=findings/**/*.parquet')) \
             SELECT (SELECT count(*) FROM j) AS j, (SELECT count(*) FROM p) AS p, \
                    (SELECT count(*) FROM (SELECT * FROM j EXCEPT SELECT * FROM p)) AS differ, \
                    (SELECT count(*) FROM p WHERE len(conn_uids) = len(ids) AND len(ids) > 0) AS aligned, \
                    (SELECT typeof(conn_uids) FROM p LIMIT 1) AS uid_type, \
                    (SELECT count(*) FROM p WHERE legs IS NULL) AS no_legs"
        ),
    );
    let f = &findings[0];
    assert!(f["j"].as_u64().unwrap() > 0, "{f}");
    assert_eq!(f["j"], f["p"], "{f}");
    assert_eq!(f["differ"], 0, "{f}");
    assert_eq!(f["aligned"], f["p"], "{f}");
    assert_eq!(f["uid_type"], "VARCHAR[]", "{f}");
    assert!(
        f["no_legs"].as_u64().unwrap() > 0,
        "null lists stay null: {f}"
    );
}

/// Without a writable temporary directory json cannot keep listed messages on disk: they are
/// counted, not listed, and each connection says why; the run goes on.
#[test]
fn json_messages_without_a_temporary_directory_are_counted_and_explained() {
    let out = wsprobe()
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("TMPDIR", "/nonexistent/wsprobe-test")
        .args([
            "analyze",
            "--format",
            "json",
            "--messages",
            "captures/demo.pcap",
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let with_messages: Vec<&Value> = report["connections"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["message_counts"]["client"].as_u64().unwrap() > 0)
        .collect();
    assert!(!with_messages.is_empty());
    for c in with_messages {
        let said: Vec<&str> = c["diagnostics"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["id"] == "limit_exceeded")
            .map(|d| d["message"].as_str().unwrap())
            .collect();
        assert!(
            said.iter().any(|m| m.contains("messages not listed")
                && m.contains("/nonexistent/wsprobe-test")
                && m.contains("TMPDIR")),
            "{said:?}"
        );
        let listed = c["messages"].as_array().unwrap().len() as u64;
        let total = c["message_counts"]["client"].as_u64().unwrap()
            + c["message_counts"]["server"].as_u64().unwrap();
        assert!(listed < total, "{listed} of {total} listed");
    }
}
