//! Golden outputs: the table and JSON reports of recorded captures, compared byte for byte with
//! `tests/golden/`. After an intended change, review and re-bless with
//! `WSPROBE_BLESS=1 cargo test --test integration golden`.

use std::path::PathBuf;

use crate::util::wsprobe;

fn check(name: &str, args: &[&str]) {
    let out = wsprobe()
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "{name}: exit {:?}",
        out.status.code()
    );
    let got = String::from_utf8(out.stdout).unwrap();
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("WSPROBE_BLESS").is_some() {
        std::fs::write(&path, &got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|_| panic!("{} missing: run with WSPROBE_BLESS=1", path.display()));
    if got != want {
        let line = got
            .lines()
            .zip(want.lines())
            .position(|(g, w)| g != w)
            .unwrap_or(got.lines().count().min(want.lines().count()));
        panic!(
            "{name} differs from the golden file at line {}:\n  got:  {:?}\n  want: {:?}\n(re-bless with WSPROBE_BLESS=1 if intended)",
            line + 1,
            got.lines().nth(line).unwrap_or("<end>"),
            want.lines().nth(line).unwrap_or("<end>")
        );
    }
}

#[test]
fn golden_table_demo_with_messages() {
    check(
        "demo.table.txt",
        &["analyze", "captures/demo.pcap", "--messages"],
    );
}

#[test]
fn golden_table_close_codes_refused_killed() {
    check(
        "close-codes.table.txt",
        &["analyze", "captures/close-codes.pcap"],
    );
    check("refused.table.txt", &["analyze", "captures/refused.pcap"]);
    check(
        "killed-server.table.txt",
        &["analyze", "captures/killed-server.pcap"],
    );
    check(
        "ping-unanswered.table.txt",
        &["analyze", "captures/ping-unanswered.pcap", "--messages"],
    );
}

#[test]
fn golden_json() {
    check(
        "killed-server.json",
        &[
            "analyze",
            "--format",
            "json",
            "--pretty",
            "--messages",
            "captures/killed-server.pcap",
        ],
    );
    check(
        "close-codes.json",
        &[
            "analyze",
            "--format",
            "json",
            "--pretty",
            "captures/close-codes.pcap",
        ],
    );
    check(
        "ping-unanswered.jsonl",
        &[
            "analyze",
            "--format",
            "jsonl",
            "captures/ping-unanswered.pcap",
        ],
    );
}
