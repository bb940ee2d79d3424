//! `--threads N` (issue 16): the flow-sharded pipeline's report is the single-threaded one, byte
//! for byte (json and jsonl, with messages and frames), with the same diagnostics on standard
//! error and the same exit code: on every capture (ours, the public ones) and on generated ones
//! with thousands of connections open at once, idle sweeps that finish hundreds together, the
//! idle cap, the tables' other caps, and plain requests judged by another connection's upgrade.
//!
//! Each comparison runs the binary once per thread count; two binaries run at a time (CI has two
//! cores). A mismatch names the input, the options, the thread count and the first line that
//! differs (an excerpt: the reports are large); every mismatching case is named, not just the
//! first. The generated captures are in `threads/generated.rs`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use serde_json::Value;

use crate::util::*;

mod generated;

/// Binaries run at once.
const POOL: usize = 2;

/// One `wsprobe analyze` invocation, without its `--threads`.
struct Case {
    /// Input and options, for messages.
    label: String,
    args: Vec<OsString>,
    /// A file fed on standard input (the args then name `-`).
    stdin: Option<PathBuf>,
}

impl Case {
    fn new(label: impl Into<String>, args: &[&str], files: &[&Path]) -> Case {
        let mut all: Vec<OsString> = args.iter().map(OsString::from).collect();
        all.extend(files.iter().map(|f| f.as_os_str().to_owned()));
        Case {
            label: format!("{} [{}]", label.into(), args.join(" ")),
            args: all,
            stdin: None,
        }
    }
}

/// What one run gave.
struct Run {
    code: Option<i32>,
    /// How it ended, for messages ("exit status: 0", "signal: 6 (SIGABRT)").
    status: String,
    /// It was killed after [`RUN_TIMEOUT`].
    hung: bool,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

/// Longest a run may take (debug build, loaded machine; the longest take a few seconds) before
/// it is killed as hung: a deadlocked pipeline must fail the test, not stall it.
const RUN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

fn run(case: &Case, threads: Option<u16>) -> Run {
    let mut cmd = wsprobe();
    cmd.arg("analyze");
    if let Some(n) = threads {
        cmd.args(["--threads", &n.to_string()]);
    }
    cmd.args(&case.args);
    if let Some(path) = &case.stdin {
        cmd.write_stdin(std::fs::read(path).unwrap());
    }
    let started = Instant::now();
    let out = cmd.timeout(RUN_TIMEOUT).output().unwrap();
    Run {
        code: out.status.code(),
        status: out.status.to_string(),
        hung: started.elapsed() >= RUN_TIMEOUT,
        stdout: out.stdout,
        stderr: out.stderr,
    }
}

fn threads_label(threads: Option<u16>) -> String {
    match threads {
        Some(n) => format!("--threads {n}"),
        None => "no --threads (all cores)".to_string(),
    }
}

/// Runs `job` over `items`, [`POOL`] at a time, keeping the input order.
fn parallel<T: Sync, R: Send>(items: &[T], job: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<R>>> = Mutex::new((0..items.len()).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..POOL {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(item) = items.get(i) else {
                        break;
                    };
                    let r = job(item);
                    results.lock().unwrap()[i] = Some(r);
                }
            });
        }
    });
    results
        .into_inner()
        .unwrap()
        .into_iter()
        .map(Option::unwrap)
        .collect()
}

/// A few lines' worth of `line` around byte `at`.
fn excerpt(line: &[u8], at: usize) -> String {
    let start = at.saturating_sub(80);
    let end = (at + 160).min(line.len());
    format!(
        "{}{}{}",
        if start > 0 { "…" } else { "" },
        String::from_utf8_lossy(&line[start..end]),
        if end < line.len() { "…" } else { "" }
    )
}

/// Lines of an output, without the last one's newline.
fn lines(bytes: &[u8]) -> Vec<&[u8]> {
    let mut lines: Vec<&[u8]> = bytes.split(|&b| b == b'\n').collect();
    if lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    lines
}

/// Where `got` first departs from `want`, or `None` when they are the same bytes.
fn first_difference(want: &[u8], got: &[u8], name: &str) -> Option<String> {
    if want == got {
        return None;
    }
    let (want_lines, got_lines) = (lines(want), lines(got));
    let line = (0..)
        .find(|&i| want_lines.get(i) != got_lines.get(i))
        .unwrap();
    let counts = format!(
        "{} lines single-threaded, {} here",
        want_lines.len(),
        got_lines.len()
    );
    Some(match (want_lines.get(line), got_lines.get(line)) {
        (Some(w), Some(g)) => {
            let at = w
                .iter()
                .zip(g.iter())
                .position(|(a, b)| a != b)
                .unwrap_or(w.len().min(g.len()));
            format!(
                "{name} line {} differs at byte {at} ({counts}):\n      single-threaded: {}\n      this run:        {}",
                line + 1,
                excerpt(w, at),
                excerpt(g, at)
            )
        }
        (Some(w), None) => format!(
            "{name} stops after line {line} ({counts}); single-threaded line {} is: {}",
            line + 1,
            excerpt(w, 0)
        ),
        (None, Some(g)) => format!(
            "{name} goes on after line {line} ({counts}); line {} is: {}",
            line + 1,
            excerpt(g, 0)
        ),
        (None, None) => format!("{name} differs only in its final newline ({counts})"),
    })
}

/// A multi-threaded run that differs from the single-threaded one.
struct Mismatch {
    case: String,
    threads: Option<u16>,
    how: String,
}

/// How `other` differs from `reference`, if it does.
fn differences(
    case: &Case,
    threads: Option<u16>,
    reference: &Run,
    other: &Run,
) -> Option<Mismatch> {
    let mut found = Vec::new();
    if other.hung {
        found.push(format!("killed after {} s (hung?)", RUN_TIMEOUT.as_secs()));
    } else if reference.code != other.code {
        found.push(format!(
            "{}, single-threaded {}",
            other.status, reference.status
        ));
    }
    found.extend(first_difference(&reference.stdout, &other.stdout, "stdout"));
    found.extend(first_difference(&reference.stderr, &other.stderr, "stderr"));
    (!found.is_empty()).then(|| Mismatch {
        case: case.label.clone(),
        threads,
        how: found.join("\n    "),
    })
}

/// Mismatches described in full; the others are only named.
const DETAILED: usize = 40;

/// Runs every case with each thread count of `threads` and compares each run with the first
/// count's. Returns what `inspect` makes of each case's reference run (checks that the input
/// was read as generated, so that the comparison is not between two empty reports), and fails
/// naming every mismatching case.
fn assert_same_reports<R: Send>(
    cases: &[Case],
    threads: &[Option<u16>],
    inspect: impl Fn(&Case, &Run) -> R + Sync,
) -> Vec<R> {
    let started = Instant::now();
    let results = parallel(cases, |case| {
        let reference = run(case, threads[0]);
        let mismatches: Vec<Mismatch> = threads[1..]
            .iter()
            .filter_map(|&n| differences(case, n, &reference, &run(case, n)))
            .collect();
        (inspect(case, &reference), mismatches)
    });
    let runs = cases.len() * threads.len();
    eprintln!(
        "{} cases x {} thread counts: {runs} runs in {:.1} s",
        cases.len(),
        threads.len(),
        started.elapsed().as_secs_f64()
    );
    let mut inspected = Vec::new();
    let mut mismatches = Vec::new();
    for (r, m) in results {
        inspected.push(r);
        mismatches.extend(m);
    }
    if mismatches.is_empty() {
        return inspected;
    }
    // Every mismatching case by name, with its thread counts; then the first ones in detail.
    let mut named: Vec<(String, Vec<String>)> = Vec::new();
    for m in &mismatches {
        let n = threads_label(m.threads).replace("--threads ", "");
        match named.last_mut() {
            Some((case, counts)) if *case == m.case => counts.push(n),
            _ => named.push((m.case.clone(), vec![n])),
        }
    }
    let names: Vec<String> = named
        .iter()
        .map(|(case, counts)| format!("{case} (threads {})", counts.join(", ")))
        .collect();
    let details: Vec<String> = mismatches
        .iter()
        .take(DETAILED)
        .map(|m| format!("{} with {}: {}", m.case, threads_label(m.threads), m.how))
        .collect();
    panic!(
        "{} of {} multi-threaded runs ({} of {} cases) differ from the {} one:\n  {}\n\nThe first {}:\n  {}{}",
        mismatches.len(),
        cases.len() * (threads.len() - 1),
        named.len(),
        cases.len(),
        threads_label(threads[0]),
        names.join("\n  "),
        details.len(),
        details.join("\n  "),
        if mismatches.len() > DETAILED {
            format!("\n  ... and {} more", mismatches.len() - DETAILED)
        } else {
            String::new()
        }
    );
}

/// The reference run exited as a report does (0, or 1 for --fail-on) and, for json, its report.
fn json_report(case: &Case, run: &Run) -> Option<Value> {
    assert!(
        matches!(run.code, Some(0) | Some(1)),
        "{}: exit {:?}: {}",
        case.label,
        run.code,
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(!run.stdout.is_empty(), "{}: no output", case.label);
    let json = case
        .args
        .windows(2)
        .any(|w| w[0] == "--format" && w[1] == "json");
    json.then(|| {
        serde_json::from_slice(&run.stdout)
            .unwrap_or_else(|e| panic!("{}: not JSON ({e})", case.label))
    })
}

/// Captures under `dir`, recursively, sorted; not `skip` (the recording scripts' folder).
fn captures_under(dir: &Path, skip: Option<&Path>, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            if Some(path.as_path()) != skip {
                captures_under(&path, skip, out);
            }
        } else if path
            .extension()
            .is_some_and(|e| e == "pcap" || e == "pcapng" || e == "dump")
        {
            out.push(path);
        }
    }
}

/// Key logs recorded with `capture`: `NAME.keys` or `NAME.keylog` (the endpoints' own) first,
/// then variants such as `NAME.partial.keys`.
fn key_logs(capture: &Path) -> Vec<PathBuf> {
    let stem = capture.file_stem().unwrap().to_string_lossy().into_owned();
    let dir = capture.parent().unwrap();
    let mut logs: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            (name.ends_with(".keys") || name.ends_with(".keylog"))
                && name.starts_with(&format!("{stem}."))
        })
        .collect();
    logs.sort_by_key(|p| (p.file_stem().unwrap() != stem.as_str(), p.clone()));
    logs
}

fn name_of(path: &Path) -> String {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    match path.strip_prefix(&root) {
        Ok(rel) => rel.display().to_string(),
        Err(_) => path.file_name().unwrap().to_string_lossy().into_owned(),
    }
}

/// The report options every capture is compared with.
const CAPTURE_FORMATS: [&[&str]; 4] = [
    &["--format", "json"],
    &["--format", "jsonl"],
    &["--format", "json", "--messages", "--frames"],
    &["--format", "jsonl", "--messages", "--frames"],
];

/// Every capture in `captures/` (with its key log, with its other key logs, and TLS ones also
/// without keys) and in the public folder, one by one and all in one run.
#[test]
fn every_capture_gives_the_single_threaded_report_on_any_number_of_threads() {
    let mut ours = Vec::new();
    let root = captures_dir();
    captures_under(&root, Some(&root.join("record")), &mut ours);
    let mut public = Vec::new();
    if let Some(dir) = public_captures_dir() {
        captures_under(&dir, None, &mut public);
    }
    assert!(
        ours.len() >= 50,
        "{} captures in {}",
        ours.len(),
        root.display()
    );
    let mut cases = Vec::new();
    let mut all_keys = Vec::new();
    for capture in ours.iter().chain(&public) {
        let name = name_of(capture);
        let logs = key_logs(capture);
        let main: Vec<&str> = match logs.first() {
            Some(log) => vec!["--keylog", log.to_str().unwrap()],
            None => vec![],
        };
        for format in CAPTURE_FORMATS {
            let args = [format, &main[..]].concat();
            cases.push(Case::new(&name, &args, &[capture]));
        }
        // Other key logs (partial, full handshakes only) and none at all: other paths.
        let mut variants: Vec<Vec<&str>> = logs[1.min(logs.len())..]
            .iter()
            .map(|log| vec!["--keylog", log.to_str().unwrap()])
            .collect();
        if !logs.is_empty() {
            variants.push(vec![]);
        }
        for keys in variants {
            for format in [
                &["--format", "json"][..],
                &["--format", "jsonl", "--messages"],
            ] {
                let args = [format, &keys[..]].concat();
                cases.push(Case::new(&name, &args, &[capture]));
            }
        }
        all_keys.extend(logs.into_iter().take(1));
    }
    // All of ours in one run, with all their key logs: connection ids go on across inputs.
    let files: Vec<&Path> = ours.iter().map(PathBuf::as_path).collect();
    let mut keys: Vec<&str> = Vec::new();
    for log in &all_keys {
        keys.extend(["--keylog", log.to_str().unwrap()]);
    }
    for format in [
        &["--format", "json"][..],
        &["--format", "jsonl", "--messages"],
    ] {
        let args = [format, &keys[..]].concat();
        cases.push(Case::new("captures/* in one run", &args, &files));
    }
    if !public.is_empty() {
        let files: Vec<&Path> = public.iter().map(PathBuf::as_path).collect();
        cases.push(Case::new(
            "public captures in one run",
            &["--format", "jsonl", "--messages"],
            &files,
        ));
    }

    let reports = assert_same_reports(&cases, &[Some(1), Some(2), Some(3)], json_report);
    // Not a comparison of empty reports: the captures' connections were read.
    let connections: u64 = cases
        .iter()
        .zip(&reports)
        .filter(|(case, _)| case.args.len() == 3) // one capture, plain json, no key log
        .filter_map(|(_, r)| r.as_ref())
        .map(|r| r["summary"]["connections"].as_u64().unwrap())
        .sum();
    let one_run = cases
        .iter()
        .zip(&reports)
        .find(|(case, _)| case.label.starts_with("captures/* in one run"))
        .and_then(|(_, r)| r.as_ref())
        .unwrap();
    assert_eq!(
        one_run["inputs"].as_array().unwrap().len(),
        ours.len(),
        "every capture an input"
    );
    assert!(
        one_run["summary"]["connections"].as_u64().unwrap() >= 150,
        "{:#}",
        one_run["summary"]
    );
    eprintln!(
        "{} captures of ours, {} public; {connections} connections in the unkeyed ones",
        ours.len(),
        public.len()
    );
    assert!(connections >= 200, "{connections} connections");
}

/// Odd inputs and runs: no packets, cut short, not a capture, a missing file beside a good one,
/// standard input, more threads than connections, and the default thread count.
#[test]
fn odd_inputs_give_the_single_threaded_report_and_exit_code_on_any_number_of_threads() {
    let concurrent = std::fs::read(captures_dir().join("concurrent-50.pcap")).unwrap();
    let empty = temp_file(&concurrent[..24], "pcap");
    let cut = temp_file(&concurrent[..concurrent.len() * 2 / 3 + 7], "pcap");
    let garbage = temp_file(&Rng(16).bytes(5000), "pcap");
    let missing = std::env::temp_dir().join("wsprobe-threads-test-no-such-file.pcap");
    let good = captures_dir().join("demo.pcap");
    let mut cases = Vec::new();
    for format in ["json", "jsonl"] {
        for (name, files) in [
            ("header only", vec![empty.as_path()]),
            ("cut in a packet", vec![cut.as_path()]),
            ("garbage", vec![garbage.as_path()]),
            ("missing + demo", vec![missing.as_path(), good.as_path()]),
            ("demo", vec![good.as_path()]),
        ] {
            cases.push(Case::new(name, &["--format", format, "--messages"], &files));
        }
        let mut stdin = Case::new("stdin", &["--format", format, "--messages", "-"], &[]);
        stdin.stdin = Some(captures_dir().join("concurrent-50.pcap"));
        cases.push(stdin);
        cases.push(Case::new(
            "fail-on",
            &["--format", format, "--fail-on", "warning"],
            &[&captures_dir().join("refused.pcap")],
        ));
    }
    let threads = [Some(1), Some(2), Some(3), Some(64), None];
    let codes = assert_same_reports(&cases, &threads, |_, run| run.code);
    // The runs did what their names say: --fail-on gives 1, a good capture 0.
    for (case, code) in cases.iter().zip(codes) {
        if case.label.starts_with("fail-on") {
            assert_eq!(code, Some(1), "{}", case.label);
        } else if case.label.starts_with("demo") || case.label.starts_with("stdin") {
            assert_eq!(code, Some(0), "{}", case.label);
        }
    }
}
