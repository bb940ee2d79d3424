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

fn run(args: &[&str]) -> std::process::Output {
    wsprobe()
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(args)
        .output()
        .unwrap()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A fatal error: exit 2, nothing on standard output, one line on standard error.
fn assert_fatal(args: &[&str], wanted: &[&str]) {
    let out = run(args);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    assert!(
        out.stdout.is_empty(),
        "{args:?}: stdout: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
    assert!(err.starts_with("wsprobe: "), "{args:?}: {err}");
    for w in wanted {
        assert!(err.contains(w), "{args:?}: {w:?} not in {err}");
    }
}

fn json(args: &[&str]) -> serde_json::Value {
    let out = run(&[&["analyze", "--format", "json"], args].concat());
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "{args:?}: {}",
        stderr(&out)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn ids(report: &serde_json::Value) -> Vec<u64> {
    report["connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_u64().unwrap())
        .collect()
}

const RESTART: &str = "captures/server-restart.pcap";

#[test]
fn a_bad_address_is_a_usage_error_listing_the_accepted_forms() {
    for bad in [
        "foo",
        "8881x",
        "127.0.0.1:99999",
        "[::1",
        "[::1]8080",
        "1.2.3:80",
        ":",
        "",
    ] {
        assert_fatal(
            &["analyze", RESTART, "--address", bad],
            &["--address", "IP, IP:PORT, [IPv6]:PORT, :PORT or PORT"],
        );
    }
    assert_fatal(
        &["analyze", RESTART, "--address", "127.0.0.1:99999"],
        &["port 99999 is out of range"],
    );
}

#[test]
fn every_address_form_selects_its_connections_and_the_totals_follow() {
    let all = json(&[RESTART]);
    // 0 is the TLS connection: listed (every TLS connection is), not WebSocket.
    assert_eq!(ids(&all), [0, 2, 11]);
    assert_eq!(all["summary"]["tcp_connections"], 12);
    // The WebSocket server's port, in all its forms: both WebSocket connections, the HTTP
    // one and the refused attempts, not the TLS connection.
    for form in [
        "26030",
        ":26030",
        "127.0.0.1:26030",
        "[::ffff:127.0.0.1]:26030",
    ] {
        let r = json(&[RESTART, "--address", form]);
        assert_eq!(ids(&r), [2, 11], "{form}");
        let s = &r["summary"];
        assert_eq!(s["tcp_connections"], 11, "{form}");
        assert_eq!(s["other_tcp"]["tls"], 0, "{form}");
        assert_eq!(s["other_tcp"]["http"], 1, "{form}");
        assert_eq!(s["other_tcp"]["refused"][0]["attempts"], 8, "{form}");
    }
    // The TLS server: listed, no WebSocket, one TLS connection in the totals.
    let r = json(&[RESTART, "--address", ":26443"]);
    assert_eq!(ids(&r), [0]);
    assert_eq!(r["summary"]["tcp_connections"], 1);
    assert_eq!(
        r["summary"]["other_tcp"]["tls_server_names"]["wsprobe.test"],
        1
    );
    assert_eq!(r["summary"]["websocket_connections"], 0);
    // One client endpoint: only its connection.
    let r = json(&[RESTART, "--address", "127.0.0.1:60529"]);
    assert_eq!(ids(&r), [11]);
    assert_eq!(r["summary"]["tcp_connections"], 1);
    assert_eq!(r["summary"]["messages"], 2);
    // A bare IP: everything; IPv6 forms on an IPv6 capture.
    assert_eq!(ids(&json(&[RESTART, "--address", "127.0.0.1"])), [0, 2, 11]);
    for form in ["::1", "[::1]", "[::1]:8766"] {
        assert_eq!(
            ids(&json(&["captures/ipv6-sll2.pcap", "--address", form])),
            [0],
            "{form}"
        );
    }
    // Nothing matches: an empty report that says so (exit 0: no traffic is an answer).
    let out = run(&["analyze", RESTART, "--address", ":9"]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("No TCP connection matches --address :9 (of 12 in the input)"),
        "{text}"
    );
}

#[test]
fn a_connection_that_is_not_there_is_an_error_naming_the_ids() {
    for format in ["table", "json", "jsonl"] {
        assert_fatal(
            &[
                "analyze",
                RESTART,
                "--connection",
                "999",
                "--format",
                format,
            ],
            &["no connection 999 (ids 0-11)"],
        );
    }
    // One that is there but is not WebSocket (TLS, not decrypted): the totals say what it was.
    let r = json(&[RESTART, "--connection", "0"]);
    assert_eq!(ids(&r), [0]);
    assert_eq!(r["summary"]["tcp_connections"], 1);
    assert_eq!(r["summary"]["other_tcp"]["tls"], 1);
    let r = json(&[RESTART, "--connection", "11"]);
    assert_eq!(ids(&r), [11]);
    assert_eq!(r["summary"]["outcomes"]["clean"], 1);
    assert!(r["summary"]["outcomes"].get("abnormal").is_none());
    // Both filters: the connection must have the endpoint.
    assert_fatal(
        &[
            "analyze",
            RESTART,
            "--connection",
            "11",
            "--address",
            ":26443",
        ],
        &["connection 11 does not have endpoint :26443"],
    );
}

#[cfg(feature = "live")]
#[test]
fn bpf_filters_keep_what_tcpdump_would() {
    let tls = json(&[RESTART, "-f", "tcp port 26443"]);
    assert_eq!(ids(&tls), [0]);
    assert_eq!(tls["summary"]["tcp_connections"], 1);
    assert_eq!(tls["summary"]["other_tcp"]["tls"], 1);
    // `tcpdump -r captures/server-restart.pcap 'tcp port 26443'` keeps 15 of the 70 packets.
    assert_eq!(tls["inputs"][0]["filtered_out"], 70 - 15);
    let no_rst = "tcp port 26030 and not tcp[tcpflags] & tcp-rst != 0";
    for (expr, kept) in [("tcp port 26443", 15), (no_rst, 47), ("tcp port 26030", 55)] {
        let r = json(&[RESTART, "-f", expr]);
        assert_eq!(r["inputs"][0]["filtered_out"], 70 - kept, "{expr}");
        // tcpdump itself, when it is installed, agrees.
        if let Ok(out) = std::process::Command::new("tcpdump")
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(["-n", "-r", RESTART, expr])
            .output()
        {
            assert_eq!(
                String::from_utf8_lossy(&out.stdout).lines().count(),
                kept,
                "{expr}"
            );
        }
    }
    // Ids number what is analysed: as for a file tcpdump wrote with the filter.
    let ws = json(&[RESTART, "--filter", no_rst]);
    assert_eq!(ids(&ws), [1, 10]);
    // Without the RSTs the attempts are unanswered SYNs.
    assert!(
        ws["summary"]["other_tcp"]["refused"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert_eq!(ws["summary"]["other_tcp"]["unanswered"][0]["attempts"], 8);
    assert_fatal(
        &["analyze", RESTART, "-f", "tcp prt 80"],
        &["-f \"tcp prt 80\"", "syntax error"],
    );
}

#[test]
fn fatal_errors_print_nothing_on_standard_output() {
    for format in ["table", "json", "jsonl"] {
        // A missing file after a good one: nothing is analysed, nothing reported.
        assert_fatal(
            &[
                "analyze",
                "captures/demo.pcap",
                "/nonexistent/x.pcap",
                "--format",
                format,
            ],
            &["/nonexistent/x.pcap: cannot open"],
        );
        assert_fatal(
            &["analyze", "captures", "--format", format],
            &["is a directory"],
        );
    }
    let text = temp_file(b"not a capture", "pcap");
    assert_fatal(
        &["analyze", "captures/demo.pcap", text.to_str().unwrap()],
        &["not a pcap or pcapng"],
    );
    // Standard input that is not a capture: no report either.
    let out = wsprobe()
        .args(["analyze", "-", "--format", "json"])
        .write_stdin("hello")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
}

#[test]
fn misspellings_get_a_did_you_mean() {
    assert_fatal(
        &["analyze", "--mesages", "x.pcap"],
        &[
            "unexpected argument '--mesages'",
            "did you mean '--messages'?",
        ],
    );
    assert_fatal(&["analyse", "x.pcap"], &["did you mean 'analyze'?"]);
    assert_fatal(
        &["analyze", "--payload", "ful", "x.pcap"],
        &["did you mean 'full'?", "wsprobe analyze --help"],
    );
    assert_fatal(
        &["analyze", "--fail-on", "abnormal_closre", "x.pcap"],
        &["did you mean \"abnormal_closure\"?"],
    );
    // Nothing near: no guess, and not clap's "-- --bogus" tip (no value starts with a dash).
    let out = run(&["analyze", "--bogus", "x.pcap"]);
    let err = stderr(&out);
    assert!(
        !err.contains("did you mean") && !err.contains("-- --bogus"),
        "{err}"
    );
    assert_fatal(
        &["analyze", "--bogus", "x.pcap"],
        &["wsprobe analyze --help"],
    );
    assert_fatal(&["analyze"], &["<FILE>", "usage: wsprobe analyze"]);
}

#[test]
fn columns_is_honoured_when_piped_and_wide_prints_in_full() {
    let lines = |args: &[&str], columns: Option<&str>| -> Vec<String> {
        let mut cmd = wsprobe();
        cmd.current_dir(env!("CARGO_MANIFEST_DIR")).args(args);
        if let Some(c) = columns {
            cmd.env("COLUMNS", c);
        }
        let out = cmd.output().unwrap();
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(String::from)
            .collect()
    };
    let width = |ls: &[String]| ls.iter().map(|l| l.chars().count()).max().unwrap();
    let args = ["analyze", "captures/server-restart.pcap"];
    assert!(width(&lines(&args, Some("80"))) <= 80);
    assert!(
        width(&lines(&args, Some("200"))) > 100,
        "a wide terminal is used"
    );
    assert!(width(&lines(&args, None)) <= 100, "piped, no COLUMNS: 100");
    assert!(width(&lines(&args, Some("junk"))) <= 100);
    let wide = lines(
        &["analyze", "captures/server-restart.pcap", "--wide"],
        Some("80"),
    );
    assert!(wide.iter().any(|l| l.contains(
        "1006 abnormal: server sent FIN after 380 ms idle; last message: server binary 100 B at 21:58:25.471"
    )));
}

#[test]
fn messages_mean_data_messages_and_control_frames_are_counted_apart() {
    let s = &json(&["captures/demo.pcap"])["summary"];
    assert_eq!(s["messages"], 20);
    assert_eq!(s["control_frames"], 4);
    // 20 data messages in 23 frames (one in 4 fragments), and 4 control frames.
    assert_eq!(s["frames"], 27);
    let out = run(&["analyze", "captures/demo.pcap"]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("27 frames (4 control), 20 data messages"),
        "{text}"
    );
}

/// Start times are UTC with the date in the title, and a line marks each new date.
#[test]
fn a_new_date_is_marked_between_rows() {
    let conversation = |client: &str, start: f64| {
        let mut c = Conv::new(client, "10.0.0.2:8080");
        c.time = start;
        c.tcp_open();
        c.send(true, &upgrade_request("/", ""));
        c.send(false, &upgrade_response(""));
        c.send(true, &client_frame(true, 8, &close_payload(1000, "")));
        c.send(false, &server_frame(true, 8, &close_payload(1000, "")));
        temp_file(&pcap(&c, Link::Ethernet), "pcap")
    };
    // 2023-11-14 23:59:59 and, a minute later, 2023-11-15 00:00:59 UTC.
    let a = conversation("10.0.0.1:50000", 1_700_006_399.0);
    let b = conversation("10.0.0.1:50001", 1_700_006_459.0);
    let out = wsprobe().arg("analyze").arg(&a).arg(&b).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let title = lines
        .iter()
        .position(|l| l.contains("on 2023-11-14 (times UTC)"));
    let marker = lines.iter().position(|l| *l == "-- 2023-11-15 --");
    assert!(title.is_some() && marker.is_some(), "{text}");
    assert!(lines[marker.unwrap() - 1].contains("23:59:59"), "{text}");
    assert!(lines[marker.unwrap() + 1].contains("00:00:59"), "{text}");
}

/// `--threads N` is the report contract's option: refused for 0 with exit 2 and one line (that
/// any N ≥ 1 gives the single-threaded report is tests/integration/threads.rs).
#[test]
fn threads_zero_is_a_usage_error() {
    let path = captures_dir().join("concurrent-50.pcap");
    let zero = wsprobe()
        .args(["analyze", "--threads", "0"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(zero.status.code(), Some(2));
    assert!(zero.stdout.is_empty());
    assert_eq!(String::from_utf8_lossy(&zero.stderr).lines().count(), 1);
}

/// With several threads the safety caps are budgets the threads share: the run keeps memory
/// bounded, and when a cap is reached it says that the report may differ from one thread's.
#[test]
fn a_cap_reached_by_several_threads_is_said() {
    let path = captures_dir().join("concurrent-50.pcap");
    let out = wsprobe()
        .args([
            "analyze",
            "--format",
            "json",
            "--threads",
            "2",
            "--max-connections",
            "3",
        ])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--max-connections reached with 2 threads"),
        "{stderr}"
    );
    // Stopped connections' later packets start (mid-stream) ones: at least the 50.
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(report["summary"]["tcp_connections"].as_u64().unwrap() >= 50);
    let one = wsprobe()
        .args(["analyze", "--format", "json", "--threads", "2"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        one.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&one.stderr)
    );
}
