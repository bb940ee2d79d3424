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
