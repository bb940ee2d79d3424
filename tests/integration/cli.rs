//! Command line: exit codes, messages for bad input, the schema, the diagnostics list.

use predicates::str::contains;

use crate::util::*;

#[test]
fn missing_empty_and_non_capture_files_exit_2_with_a_message() {
    wsprobe()
        .args(["analyze", "/nonexistent/x.pcap"])
        .assert()
        .code(2)
        .stderr(contains("/nonexistent/x.pcap: cannot open"));
    let empty = temp_file(b"", "pcap");
    wsprobe()
        .arg("analyze")
        .arg(&empty)
        .assert()
        .code(2)
        .stderr(contains("empty"));
    let text = temp_file(b"this is not a capture at all, just text\n", "pcap");
    wsprobe()
        .arg("analyze")
        .arg(&text)
        .assert()
        .code(2)
        .stderr(contains("not a pcap or pcapng"));
}

#[test]
fn usage_errors_exit_2() {
    wsprobe().args(["analyze"]).assert().code(2);
    wsprobe()
        .args(["analyze", "--format", "xml", "x.pcap"])
        .assert()
        .code(2);
    wsprobe()
        .args(["analyze", "--fail-on", "no_such_id", "x.pcap"])
        .assert()
        .code(2)
        .stderr(contains("no_such_id"));
}

#[test]
fn diagnostics_lists_every_contract_id() {
    let out = wsprobe().arg("diagnostics").output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    for id in [
        "abnormal_closure",
        "close_handshake_incomplete",
        "handshake_rejected",
        "handshake_accept_mismatch",
        "handshake_invalid",
        "unmasked_client_frame",
        "masked_server_frame",
        "reserved_bits_set",
        "reserved_opcode",
        "control_frame_fragmented",
        "control_frame_too_long",
        "invalid_utf8",
        "invalid_close_code",
        "unexpected_continuation",
        "interrupted_fragmented_message",
        "non_minimal_length",
        "data_after_close",
        "decompression_failed",
        "ping_unanswered",
        "unsolicited_pong",
        "tcp_gap",
        "midstream_start",
    ] {
        assert!(text.contains(id), "{id} missing");
    }
}

/// Real output of every capture in captures/ (and the public ones) validates against the
/// published schema.
#[test]
fn json_output_matches_the_published_schema() {
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/schema/report.v1.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(captures_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "pcap" || e == "pcapng"))
        .collect();
    if let Some(public) = public_captures_dir() {
        files.extend(
            std::fs::read_dir(public)
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| {
                    p.extension()
                        .is_some_and(|e| e == "pcap" || e == "pcapng" || e == "dump")
                }),
        );
    }
    assert!(!files.is_empty());
    for file in files {
        for args in [
            &["--messages"][..],
            &["--messages", "--payload", "full"],
            &["--frames"],
            &[],
        ] {
            let report = report_of(&file, args);
            let errors: Vec<String> = validator
                .iter_errors(&report)
                .map(|e| format!("{} at {}", e, e.instance_path()))
                .collect();
            assert!(errors.is_empty(), "{}: {errors:#?}", file.display());
        }
    }
}
