//! Golden outputs: the table (at 80, 100 and 200 columns, and `--wide`), the message log and
//! the JSON reports of recorded captures, compared byte for byte with `tests/golden/`. After
//! an intended change, review the new files as a reader would, then re-bless with
//! `WSPROBE_BLESS=1 cargo test --test integration golden`.
//!
//! Also: no line of the table report passes the width it was given, on every capture.

use std::path::PathBuf;

use unicode_width::UnicodeWidthStr;

use crate::util::{captures_dir, public_captures_dir, wsprobe};

/// Runs wsprobe from the crate root with COLUMNS = `width` (when given).
fn output(args: &[&str], width: Option<usize>) -> String {
    let mut cmd = wsprobe();
    cmd.current_dir(env!("CARGO_MANIFEST_DIR")).args(args);
    if let Some(w) = width {
        cmd.env("COLUMNS", w.to_string());
    }
    let out = cmd.output().unwrap();
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "{args:?}: exit {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn compare(name: &str, got: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("WSPROBE_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, got).unwrap();
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

fn check(name: &str, args: &[&str]) {
    compare(name, &output(args, None));
}

/// Lines wider than `width` columns, with their widths.
fn too_wide(text: &str, width: usize) -> Vec<(usize, String)> {
    text.lines()
        .filter(|l| l.width() > width)
        .map(|l| (l.width(), l.to_string()))
        .collect()
}

/// The table reports, each at three widths.
const TABLES: &[(&str, &[&str])] = &[
    ("demo", &["captures/demo.pcap", "--messages"]),
    ("close-codes", &["captures/close-codes.pcap"]),
    ("refused", &["captures/refused.pcap"]),
    (
        "killed-server",
        &["captures/killed-server.pcap", "--messages"],
    ),
    (
        "ping-unanswered",
        &["captures/ping-unanswered.pcap", "--messages"],
    ),
    (
        "server-restart",
        &["captures/server-restart.pcap", "--messages"],
    ),
    ("concurrent-50", &["captures/concurrent-50.pcap"]),
    (
        "mixed",
        &[
            "captures/deflate-variants.pcapng",
            "captures/ipv6-sll2.pcap",
            "captures/chromium.pcap",
            "captures/killed-client.pcap",
        ],
    ),
];

#[test]
fn golden_tables_at_80_100_and_200_columns() {
    for (name, args) in TABLES {
        for width in [80, 100, 200] {
            let mut all = vec!["analyze"];
            all.extend_from_slice(args);
            let got = output(&all, Some(width));
            let wide = too_wide(&got, width);
            assert!(wide.is_empty(), "{name} at {width}: {wide:#?}");
            compare(&format!("table/{name}.{width}.txt"), &got);
        }
    }
}

#[test]
fn golden_wide_table_is_the_full_table() {
    check(
        "table/server-restart.wide.txt",
        &["analyze", "captures/server-restart.pcap", "--wide"],
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
        "server-restart.json",
        &[
            "analyze",
            "--format",
            "json",
            "--pretty",
            "captures/server-restart.pcap",
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

/// Every capture, ours and the public ones, with the message and frame logs: at 60 (the
/// narrowest layout), 80, 100, 120 and 200 columns no line passes the width; without COLUMNS,
/// piped output is 100 wide.
#[test]
fn no_line_exceeds_the_width_given() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(captures_dir())
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
    files.retain(|p| {
        p.extension()
            .is_some_and(|e| e == "pcap" || e == "pcapng" || e == "dump")
    });
    files.sort();
    assert!(files.len() > 20);
    for file in &files {
        let path = file.to_str().unwrap();
        for width in [60, 80, 100, 120, 200] {
            let got = output(&["analyze", path, "--messages", "--frames"], Some(width));
            let wide = too_wide(&got, width);
            assert!(wide.is_empty(), "{path} at {width}: {wide:#?}");
        }
        let got = output(&["analyze", path], None);
        assert!(too_wide(&got, 100).is_empty(), "{path} without COLUMNS");
    }
}
