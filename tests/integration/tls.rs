//! TLS: the key-log options, key logs embedded in pcapng, and (with the captures recorded by
//! captures/record/tls_scenarios.py) the TLS layer over real wss traffic.

use predicates::str::contains;

use crate::util::*;

const RANDOM: &str = "cb34ecb1e78163ba1c38c6dacb196a6dffa21a8d9912ec18a2ef6283024dece7";
const SECRET: &str = "b67b7d690cc16c4e75e54213cb2d37b4e9c912bcded9105d42befd59d391ad38";

fn any_capture() -> std::path::PathBuf {
    let mut conv = Conv::new("127.0.0.1:50000", "127.0.0.1:8443");
    conv.tcp_open();
    conv.send(true, b"hello");
    pcap_file(&conv)
}

fn pcap_file(conv: &Conv) -> std::path::PathBuf {
    temp_file(&pcap(conv, Link::Ethernet), "pcap")
}

#[test]
fn an_unreadable_key_log_is_exit_2_with_one_line() {
    let cap = any_capture();
    let out = wsprobe()
        .args(["analyze", "--keylog", "/nonexistent/keys.log"])
        .arg(&cap)
        .assert()
        .code(2)
        .stderr(contains(
            "--keylog /nonexistent/keys.log: cannot read the key log",
        ));
    assert_eq!(
        String::from_utf8_lossy(&out.get_output().stderr)
            .lines()
            .count(),
        1
    );
    wsprobe()
        .args(["analyze"])
        .arg(&cap)
        .env("SSLKEYLOGFILE", "/nonexistent/sslkeys.log")
        .assert()
        .code(2)
        .stderr(contains(
            "SSLKEYLOGFILE /nonexistent/sslkeys.log: cannot read",
        ));
    // --keylog wins over the environment.
    let good = temp_file(
        format!("SERVER_HANDSHAKE_TRAFFIC_SECRET {RANDOM} {SECRET}\n").as_bytes(),
        "log",
    );
    wsprobe()
        .args(["analyze", "--keylog"])
        .arg(&good)
        .arg(&cap)
        .env("SSLKEYLOGFILE", "/nonexistent/sslkeys.log")
        .assert()
        .code(0);
}

#[test]
fn malformed_key_log_lines_are_warnings_naming_file_and_line() {
    let cap = any_capture();
    let log = temp_file(
        format!(
            "# written by a test\nCLIENT_RANDOM {RANDOM}\nSERVER_HANDSHAKE_TRAFFIC_SECRET {RANDOM} {SECRET}\nNOPE {RANDOM} {SECRET}\n"
        )
        .as_bytes(),
        "log",
    );
    let out = wsprobe()
        .args(["analyze", "--format", "json", "--keylog"])
        .arg(&log)
        .arg(&cap)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let name = log.display().to_string();
    assert!(
        stderr.contains(&format!(
            "{name}:2: expected `CLIENT_RANDOM <client random> <secret>`"
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("{name}:4: unknown label \"NOPE\"")),
        "{stderr}"
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let k = &report["summary"]["key_logs"][0];
    assert_eq!(k["source"], name.as_str());
    assert_eq!(
        (
            k["lines"].as_u64(),
            k["secrets"].as_u64(),
            k["malformed"].as_u64()
        ),
        (Some(4), Some(1), Some(2))
    );
    assert_eq!(k["warnings"][1]["line"], 4);
    assert_eq!(report["summary"]["diagnostics"]["keylog_malformed"], 2);
    wsprobe()
        .args(["analyze", "--fail-on", "keylog_malformed", "--keylog"])
        .arg(&log)
        .arg(&cap)
        .assert()
        .code(1);
}

/// pcapng Decryption Secrets Block (type 0x0000000A, secrets type "TLSK"), with the data
/// padded to 32 bits as the format requires.
fn dsb(text: &[u8]) -> Vec<u8> {
    let mut body = 0x544c534bu32.to_le_bytes().to_vec();
    body.extend((text.len() as u32).to_le_bytes());
    body.extend(text);
    while !body.len().is_multiple_of(4) {
        body.push(0);
    }
    let len = (body.len() + 12) as u32;
    let mut block = 0x0000000au32.to_le_bytes().to_vec();
    block.extend(len.to_le_bytes());
    block.extend(body);
    block.extend(len.to_le_bytes());
    block
}

#[test]
fn pcapng_decryption_secrets_blocks_are_read_without_their_padding() {
    let mut conv = Conv::new("127.0.0.1:50000", "127.0.0.1:8443");
    conv.tcp_open();
    conv.send(true, b"hello");
    let ng = pcapng(&conv, &[Link::Ethernet]);
    let shb_len = u32::from_le_bytes(ng[4..8].try_into().unwrap()) as usize;
    // 98 bytes of text (not a multiple of 4): the padding must not become a malformed line.
    let text = format!("SERVER_HANDSHAKE_TRAFFIC_SECRET {RANDOM} {SECRET}\n");
    assert!(!text.len().is_multiple_of(4));
    let mut file = ng[..shb_len].to_vec();
    file.extend(dsb(text.as_bytes()));
    file.extend(&ng[shb_len..]);
    file.extend(dsb(b"garbage line\n"));
    let path = temp_file(&file, "pcapng");
    let out = wsprobe()
        .args(["analyze", "--format", "json"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("Decryption Secrets Block #2") && stderr.contains("comes after packets"),
        "{stderr}"
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let logs = report["summary"]["key_logs"].as_array().unwrap();
    assert_eq!(logs.len(), 2);
    assert!(
        logs[0]["source"]
            .as_str()
            .unwrap()
            .starts_with("pcapng Decryption Secrets Block #1 in ")
    );
    assert_eq!(
        (logs[0]["secrets"].as_u64(), logs[0]["malformed"].as_u64()),
        (Some(1), Some(0))
    );
    assert_eq!(logs[1]["malformed"], 1);
}

// ---- the recorded wss / TLS captures -----------------------------------------------------

use sha2::{Digest, Sha256};
use wsprobe::diag::{DiagnosticId, Side};

use crate::tls_harness::{TlsConn, run_tls};

fn cap(name: &str) -> std::path::PathBuf {
    captures_dir().join(name)
}

fn truth(stem: &str) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(cap(&format!("{stem}.truth.json"))).unwrap())
        .unwrap()
}

fn sha(b: &[u8]) -> String {
    Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

fn side_name(s: Side) -> &'static str {
    s.as_str()
}

/// Every connection's plaintext equals (SHA-256 and length) what its endpoints logged.
fn assert_plaintext_matches_truth(conns: &[TlsConn], truth: &serde_json::Value) {
    let tls = truth["tls"].as_array().unwrap();
    assert_eq!(conns.len(), tls.len(), "connections");
    for t in tls {
        let port = t["client_port"].as_u64().unwrap() as u16;
        let c = conns
            .iter()
            .find(|c| c.client_port == port)
            .unwrap_or_else(|| panic!("no connection from {port}"));
        for side in [Side::Client, Side::Server] {
            let want = &t["plaintext"][side_name(side)];
            let got = c.data(side);
            assert_eq!(
                got.len() as u64,
                want["bytes"].as_u64().unwrap(),
                "{port} {side:?} length; {:?}",
                c.diags
            );
            assert_eq!(
                sha(got),
                want["sha256"].as_str().unwrap(),
                "{port} {side:?} bytes"
            );
            assert!(c.gaps[0].is_empty() && c.gaps[1].is_empty());
        }
        assert!(
            !c.diags.iter().any(|(d, _)| matches!(
                d,
                DiagnosticId::TlsDecryptFailed | DiagnosticId::TlsNoKey | DiagnosticId::TlsResync
            )),
            "{port}: {:?}",
            c.diags
        );
        assert!(
            c.record.decrypted && c.record.decrypt_error.is_none(),
            "{port}: {:?}",
            c.record.decrypt_error
        );
        assert_eq!(c.record.version.as_deref(), t["version"].as_str());
        assert_eq!(c.record.handshake_complete, Some(true));
    }
}

/// OpenSSL's cipher names to IANA's, for the suites in these captures.
fn iana(openssl: &str) -> &str {
    match openssl {
        "ECDHE-ECDSA-AES256-GCM-SHA384" => "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        "ECDHE-ECDSA-AES128-GCM-SHA256" => "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
        "ECDHE-ECDSA-CHACHA20-POLY1305" => "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
        other => other,
    }
}

#[test]
fn python_websockets_tls13_decrypts_to_the_endpoints_plaintext() {
    let t = truth("wss-py-tls13");
    let conns = run_tls(
        &cap("wss-py-tls13.pcap"),
        &[20443],
        &[&cap("wss-py-tls13.keys")],
        None,
    );
    assert_plaintext_matches_truth(&conns, &t);
    let r = &conns[0].record;
    assert_eq!(r.cipher_suite.as_deref(), Some("TLS_AES_256_GCM_SHA384"));
    assert_eq!(r.alpn_offered, vec!["http/1.1"]);
    assert!(
        conns[0]
            .data(Side::Client)
            .starts_with(b"GET /conn/0 HTTP/1.1\r\n")
    );
    assert!(
        conns[0]
            .data(Side::Server)
            .starts_with(b"HTTP/1.1 101 Switching Protocols\r\n")
    );
}

#[test]
fn python_websockets_tls12_three_suites_decrypt() {
    let t = truth("wss-py-tls12");
    let conns = run_tls(
        &cap("wss-py-tls12.pcap"),
        &[20444],
        &[&cap("wss-py-tls12.keys")],
        None,
    );
    assert_plaintext_matches_truth(&conns, &t);
    for (c, tt) in conns.iter().zip(t["tls"].as_array().unwrap()) {
        assert_eq!(
            c.record.cipher_suite.as_deref(),
            Some(iana(tt["cipher"].as_str().unwrap()))
        );
        assert_eq!(c.record.keys_from, Some("client_random"));
    }
}

#[test]
fn node_ws_forced_tls13_suites_and_a_key_log_missing_one_connection() {
    let t = truth("wss-node-suites");
    let conns = run_tls(
        &cap("wss-node-suites.pcap"),
        &[20445],
        &[&cap("wss-node-suites.keys")],
        None,
    );
    assert_plaintext_matches_truth(&conns, &t);
    let suites: Vec<_> = conns
        .iter()
        .map(|c| c.record.cipher_suite.clone().unwrap())
        .collect();
    assert_eq!(
        suites,
        [
            "TLS_AES_256_GCM_SHA384",
            "TLS_CHACHA20_POLY1305_SHA256",
            "TLS_AES_128_GCM_SHA256"
        ]
    );
    for c in &conns {
        assert_eq!(c.record.sni.as_deref(), Some("localhost"));
    }
    // The partial key log lacks the second connection: it alone is reported without keys,
    // with every fact in clear, and the others still decrypt.
    let partial = run_tls(
        &cap("wss-node-suites.pcap"),
        &[20445],
        &[&cap("wss-node-suites.partial.keys")],
        None,
    );
    assert_eq!(partial[0].data(Side::Server), conns[0].data(Side::Server));
    assert_eq!(partial[2].data(Side::Client), conns[2].data(Side::Client));
    let missing = &partial[1];
    assert!(missing.plaintext[0].is_empty() && missing.plaintext[1].is_empty());
    let no_key: Vec<_> = missing
        .diags
        .iter()
        .filter(|(d, _)| *d == DiagnosticId::TlsNoKey)
        .collect();
    assert_eq!(no_key.len(), 1, "{:?}", missing.diags);
    assert!(
        no_key[0]
            .1
            .contains(missing.record.client_random.as_deref().unwrap())
    );
    let r = &missing.record;
    assert!(!r.decrypted);
    assert_eq!(
        r.cipher_suite.as_deref(),
        Some("TLS_CHACHA20_POLY1305_SHA256")
    );
    assert_eq!(r.sni.as_deref(), Some("localhost"));
    let inf = r.inferred.as_ref().unwrap();
    assert_eq!(inf.handshake_complete, Some(true));
    assert!(!partial[0].has(DiagnosticId::TlsNoKey) && !partial[2].has(DiagnosticId::TlsNoKey));
}

#[test]
fn headless_chromium_wss_with_sslkeylogfile() {
    let path = cap("wss-chromium.pcap");
    if !path.exists() {
        eprintln!("wss-chromium.pcap not recorded (optional): skipped");
        return;
    }
    let t = truth("wss-chromium");
    let conns = run_tls(&path, &[20446], &[&cap("wss-chromium.keys")], None);
    assert_plaintext_matches_truth(&conns, &t);
    assert!(
        conns
            .iter()
            .all(|c| c.record.alpn.as_deref() == Some("http/1.1"))
    );
    let ws = conns
        .iter()
        .find(|c| c.data(Side::Client).starts_with(b"GET /ws "))
        .expect("the WebSocket connection");
    assert_eq!(
        ws.record.alpn_offered,
        vec!["http/1.1"],
        "Chromium's dedicated WebSocket connection"
    );
}

#[test]
fn openssl_hello_retry_request_and_key_updates() {
    let t = truth("tls-openssl-hrr-keyupdate");
    let conns = run_tls(
        &cap("tls-openssl-hrr-keyupdate.pcap"),
        &[20447],
        &[&cap("tls-openssl-hrr-keyupdate.keys")],
        None,
    );
    assert_eq!(conns.len(), 1);
    let c = &conns[0];
    let want = &t["tls"][0]["plaintext_text"];
    assert_eq!(
        String::from_utf8_lossy(c.data(Side::Client)),
        want["client"].as_str().unwrap()
    );
    assert_eq!(
        String::from_utf8_lossy(c.data(Side::Server)),
        want["server"].as_str().unwrap()
    );
    let r = &c.record;
    assert!(r.hello_retry_request);
    assert_eq!(r.key_share_group.as_deref(), Some("secp384r1"));
    assert_eq!((r.key_updates.client, r.key_updates.server), (1, 1));
    assert!(r.close_notify.client, "s_client sends close_notify at EOF");
    assert!(c.diags.is_empty(), "{:?}", c.diags);
}

#[test]
fn openssl_resumption_by_session_id_ticket_and_psk() {
    let t = truth("tls-openssl-resume");
    let runs = t["tls"].as_array().unwrap();
    for keys in [
        "tls-openssl-resume.keys",
        "tls-openssl-resume.full-only.keys",
    ] {
        let conns = run_tls(
            &cap("tls-openssl-resume.pcap"),
            &[20448],
            &[&cap(keys)],
            None,
        );
        assert_eq!(conns.len(), runs.len());
        for (c, run) in conns.iter().zip(runs) {
            let label = run["label"].as_str().unwrap();
            assert_eq!(
                c.record.client_random.as_deref(),
                run["client_random"].as_str(),
                "{label}"
            );
            assert_eq!(
                String::from_utf8_lossy(c.data(Side::Client)),
                run["sent"].as_str().unwrap(),
                "{keys} {label}: {:?}",
                c.diags
            );
            assert_eq!(
                c.record.resumed,
                run["reused"].as_bool().unwrap(),
                "{label}"
            );
            let how = match label {
                "tls12-resumed-session-id" => Some("session_id"),
                "tls12-resumed-ticket" => Some("ticket"),
                "tls13-resumed-psk" => Some("psk"),
                _ => None,
            };
            assert_eq!(c.record.resumption, how, "{label}");
            if keys.contains("full-only") && label.starts_with("tls12-resumed") {
                // No CLIENT_RANDOM line: the master secret came from the earlier session.
                assert_eq!(c.record.keys_from, how, "{label}");
            }
        }
    }
}

#[test]
fn pcapng_with_the_keys_in_a_decryption_secrets_block() {
    let t = truth("wss-py-tls13");
    let conns = run_tls(&cap("wss-dsb.pcapng"), &[20443], &[], None);
    assert_plaintext_matches_truth(&conns, &t);
}

#[test]
fn wrong_keys_give_a_diagnostic_and_no_plaintext() {
    let text = std::fs::read_to_string(cap("wss-node-suites.keys")).unwrap();
    // Flip one hex digit of every SERVER_TRAFFIC_SECRET_0: the server's application records
    // must fail authentication; the handshake (other secrets) still decrypts.
    let wrong: String = text
        .lines()
        .map(|l| {
            if l.starts_with("SERVER_TRAFFIC_SECRET_0 ") {
                let mut s = l.to_string();
                let last = s.pop().unwrap();
                s.push(if last == '0' { '1' } else { '0' });
                s
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let keys = temp_file(wrong.as_bytes(), "keys");
    let conns = run_tls(&cap("wss-node-suites.pcap"), &[20445], &[&keys], None);
    for c in &conns {
        assert!(
            c.data(Side::Server).is_empty(),
            "no plaintext from failed records"
        );
        assert!(
            !c.data(Side::Client).is_empty(),
            "the client's keys are right"
        );
        assert!(c.has(DiagnosticId::TlsDecryptFailed), "{:?}", c.diags);
        assert!(
            c.record
                .decrypt_error
                .as_deref()
                .unwrap()
                .contains("server records failed authentication")
        );
    }
}

/// A lost server segment in the middle of the 70000-byte message: the layer reports a hole of
/// exactly the lost plaintext, decrypts again from the next whole record, and everything it
/// hands on is a prefix and a suffix of the real plaintext.
#[test]
fn a_lost_segment_is_a_hole_and_decryption_resumes() {
    let keys = cap("wss-py-tls13.keys");
    let clean = run_tls(&cap("wss-py-tls13.pcap"), &[20443], &[&keys], None);
    let full = clean[0].data(Side::Server).to_vec();
    // Find the largest server->client packet and drop it.
    let mut sizes = Vec::new();
    run_tls(
        &cap("wss-py-tls13.pcap"),
        &[20443],
        &[&keys],
        Some(&mut |i, p: &[u8]| {
            sizes.push((p.len(), i));
            vec![p.to_vec()]
        }),
    );
    let (_, biggest) = *sizes.iter().max().unwrap();
    let lossy = run_tls(
        &cap("wss-py-tls13.pcap"),
        &[20443],
        &[&keys],
        Some(&mut |i, p: &[u8]| {
            if i == biggest {
                vec![]
            } else {
                vec![p.to_vec()]
            }
        }),
    );
    let c = &lossy[0];
    let (got, holes) = if c.gaps[1].is_empty() {
        (c.data(Side::Client), &c.gaps[0])
    } else {
        (c.data(Side::Server), &c.gaps[1])
    };
    let full = if c.gaps[1].is_empty() {
        clean[0].data(Side::Client).to_vec()
    } else {
        full
    };
    assert_eq!(holes.len(), 1, "{:?}", c.diags);
    let hole = holes[0] as usize;
    assert_eq!(
        got.len() + hole,
        full.len(),
        "the hole is exactly the lost plaintext"
    );
    let prefix = (0..got.len())
        .find(|&i| got[i] != full[i])
        .unwrap_or(got.len());
    assert_eq!(
        &got[prefix..],
        &full[prefix + hole..],
        "after the hole the plaintext continues"
    );
    assert!(!c.has(DiagnosticId::TlsDecryptFailed), "{:?}", c.diags);
}

/// Packets reordered (each pair of packets swapped) and duplicated: the reassembler puts them
/// back and the plaintext is unchanged.
#[test]
fn reordered_and_duplicated_segments_give_the_same_plaintext() {
    let keys = cap("wss-node-suites.keys");
    let clean = run_tls(&cap("wss-node-suites.pcap"), &[20445], &[&keys], None);
    let mut held: Option<Vec<u8>> = None;
    let shuffled = run_tls(
        &cap("wss-node-suites.pcap"),
        &[20445],
        &[&keys],
        Some(&mut |i, p: &[u8]| {
            if i % 2 == 0 && i > 3 {
                held = Some(p.to_vec());
                vec![]
            } else if let Some(h) = held.take() {
                vec![p.to_vec(), h.clone(), h]
            } else {
                vec![p.to_vec()]
            }
        }),
    );
    for (a, b) in clean.iter().zip(&shuffled) {
        assert_eq!(a.plaintext, b.plaintext);
        assert!(b.gaps[0].is_empty() && b.gaps[1].is_empty());
    }
}

/// The truth's connection from this client port.
fn truth_conn<'a>(t: &'a serde_json::Value, port: &serde_json::Value) -> &'a serde_json::Value {
    t["connections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["client"]["port"] == *port)
        .unwrap_or_else(|| panic!("no truth for port {port}"))
}

/// The client ports of the connections of the report's one `idle_timeout` finding, and the
/// finding.
fn idle_timeout_ports(report: &serde_json::Value) -> (Vec<u64>, serde_json::Value) {
    let findings: Vec<&serde_json::Value> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["id"] == "idle_timeout")
        .collect();
    assert_eq!(findings.len(), 1, "{:#?}", report["findings"]);
    let conns = report["connections"].as_array().unwrap();
    let mut ports: Vec<u64> = findings[0]["connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|id| {
            conns.iter().find(|c| c["id"] == *id).unwrap()["client"]["port"]
                .as_u64()
                .unwrap()
        })
        .collect();
    ports.sort();
    (ports, findings[0].clone())
}

/// nginx terminating TLS (1.3 and 1.2) ends silent wss connections after proxy_read_timeout
/// (3 s, its configuration) with close_notify. Without keys every connection is reported as
/// likely WebSocket from its records, each silent one's end begins with the server's
/// close_notify (read as an alert record in TLS 1.2, inferred from a record's size in 1.3) 3 s
/// after the last application record, and idle_timeout names exactly the connections nginx's
/// error log says it timed out, with nothing claimed that encryption hides. With the key log
/// the same connections are 1006 and the finding is the same.
#[test]
fn nginx_tls_idle_timeout_is_found_without_keys_and_with_them() {
    let stem = "wss-idle-timeout-nginx";
    let t = truth(stem);
    let timeout = t["incident"]["expected"]["timeout_s"].as_f64().unwrap();
    let mut timed_out: Vec<u64> = t["connections"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["notes"]["nginx_upstream_timed_out"] == true)
        .map(|c| c["client"]["port"].as_u64().unwrap())
        .collect();
    timed_out.sort();
    assert_eq!(timed_out.len(), 5);
    let near = |got: &serde_json::Value, want: f64| {
        got.as_f64()
            .is_some_and(|g| (g - want).abs() <= 0.05 * want)
    };

    let report = report_of(&cap(&format!("{stem}.pcap")), &[]);
    let conns = report["connections"].as_array().unwrap();
    assert_eq!(conns.len(), 8);
    assert_eq!(report["summary"]["other_tcp"]["tls_likely_websocket"], 8);
    for c in conns {
        let port = &c["client"]["port"];
        let truth = truth_conn(&t, port);
        let tls = &c["tls"];
        assert_eq!(tls["decrypted"], false);
        assert_eq!(
            tls["version"], truth["notes"]["client_tls_version"],
            "{port}"
        );
        let likely = &tls["websocket_likely"];
        assert_eq!(likely["likely"], true, "{port}: {likely:#}");
        assert!(!likely["basis"].as_array().unwrap().is_empty());
        // Nothing that encryption hides is claimed.
        assert!(c["handshake"].is_null(), "{port}");
        assert_eq!(c["close"]["outcome"], "encrypted", "{port}");
        assert!(c["close"]["code"].is_null(), "{port}");
        assert!(
            !diag_ids(c).iter().any(|d| d == "abnormal_closure"),
            "{port}"
        );
        let end = &c["close"]["tls_end"];
        assert_eq!(end["from"], "server", "{port}: {:#}", c["close"]);
        assert_eq!(end["alert"], "close_notify");
        assert_eq!(end["inferred"], true);
        if tls["version"] == "TLSv1.2" {
            // The alert record is visible as one; its content is not.
            let first = &tls["alerts"][0];
            assert_eq!(
                (
                    &first["from"],
                    &first["encrypted"],
                    &first["likely_close_notify"]
                ),
                (&"server".into(), &true.into(), &true.into()),
                "{port}"
            );
        }
        let silent = timed_out.contains(&port.as_u64().unwrap());
        if silent {
            // Measured from the last application record, not the close_notify.
            assert!(
                near(&c["close"]["idle_before_end"], timeout),
                "{port}: {:#}",
                c["close"]
            );
            assert_eq!(c["timing"]["ended_by"], "close_notify");
            assert!(
                near(&c["timing"]["idle_by_side"]["client"], timeout),
                "{port}"
            );
            assert_eq!(
                tls["inferred"]["close_frame"],
                serde_json::json!({"client": false, "server": false}),
                "{port}"
            );
        } else {
            // The client's Close 1000 and the server's reply: Close-sized final records.
            assert_eq!(truth["close"]["client_sent"]["code"], 1000);
            assert_eq!(
                tls["inferred"]["close_frame"],
                serde_json::json!({"client": true, "server": true}),
                "{port}"
            );
            assert_eq!(tls["inferred"]["close_frame_first"], "client", "{port}");
        }
    }
    let (ports, finding) = idle_timeout_ports(&report);
    assert_eq!(ports, timed_out, "{finding:#}");
    assert!(
        near(&finding["parameters"]["timeout_s"], timeout),
        "{finding:#}"
    );
    assert_eq!(finding["parameters"]["survivors"], 3, "{finding:#}");
    assert!(
        finding["evidence"]
            .as_str()
            .unwrap()
            .contains("as far as the sizes of the encrypted records tell"),
        "{finding:#}"
    );
    let without_keys = finding["parameters"]["timeout_s"].as_f64().unwrap();

    let keys = cap(&format!("{stem}.keys"));
    let report = report_of(
        &cap(&format!("{stem}.pcap")),
        &["--keylog", keys.to_str().unwrap()],
    );
    for c in report["connections"].as_array().unwrap() {
        let port = &c["client"]["port"];
        let truth = truth_conn(&t, port);
        assert_eq!(c["tls"]["decrypted"], true, "{port}");
        assert_eq!(c["handshake"]["path"], truth["handshake"]["path"]);
        let close = &c["close"];
        if timed_out.contains(&port.as_u64().unwrap()) {
            assert_eq!(close["outcome"], "abnormal", "{port}: {close:#}");
            assert_eq!(close["code"], 1006);
            assert_eq!(
                (&close["tls_end"]["from"], &close["tls_end"]["inferred"]),
                (&"server".into(), &false.into())
            );
            assert!(near(&close["idle_before_end"], timeout), "{close:#}");
        } else {
            assert_eq!(close["outcome"], "clean", "{port}: {close:#}");
            assert_eq!(close["code"], 1000);
            assert_eq!(close["initiator"], "client");
        }
    }
    let (ports, finding) = idle_timeout_ports(&report);
    assert_eq!(ports, timed_out, "{finding:#}");
    let with_keys = finding["parameters"]["timeout_s"].as_f64().unwrap();
    assert!(
        (with_keys - without_keys).abs() < 0.01,
        "{with_keys} {without_keys}"
    );
}
