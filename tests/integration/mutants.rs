//! Mutated real captures: every capture in `captures/`, damaged deterministically (bit flips,
//! truncations, insertions, overwrites, absurd length words; a seeded PRNG), through the binary.
//! Each run must end by itself (no hang), without a panic or a signal, with exit 0, 1 or 2;
//! exit 2 comes with exactly one line on stderr, and a json report is valid JSON.
//!
//! 300 mutants by default (about 10 s with the debug binary); `WSPROBE_MUTANTS=3000` for more,
//! `WSPROBE_MUTANT_SEED` for other ones.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::*;

/// An offset, biased to the first 256 bytes (file, section and interface headers) a quarter of
/// the time.
fn offset(rng: &mut Rng, len: usize) -> usize {
    if rng.below(4) == 0 {
        rng.below(len.min(256))
    } else {
        rng.below(len)
    }
}

/// One to three damages; returns what was done, for failure messages.
fn mutate(data: &mut Vec<u8>, rng: &mut Rng) -> String {
    let mut done = Vec::new();
    for _ in 0..1 + rng.below(3) {
        if data.is_empty() {
            break;
        }
        let at = offset(rng, data.len());
        match rng.below(6) {
            0 => {
                let flips = 1 + rng.below(16);
                for _ in 0..flips {
                    let i = offset(rng, data.len());
                    data[i] ^= 1 << rng.below(8);
                }
                done.push(format!("{flips} bit flips"));
            }
            1 => {
                data.truncate(at);
                done.push(format!("truncated at {at}"));
            }
            2 => {
                let n = 1 + rng.below(64);
                let bytes = rng.bytes(n);
                data.splice(at..at, bytes);
                done.push(format!("{n} bytes inserted at {at}"));
            }
            3 => {
                let n = (1 + rng.below(64)).min(data.len() - at);
                let fill = match rng.below(3) {
                    0 => vec![0; n],
                    1 => vec![0xFF; n],
                    _ => rng.bytes(n),
                };
                data[at..at + n].copy_from_slice(&fill);
                done.push(format!("{n} bytes overwritten at {at}"));
            }
            4 => {
                // A length-like word: huge, top bit set, or just past the data.
                let word: u32 = match rng.below(3) {
                    0 => u32::MAX,
                    1 => 0x8000_0000 | rng.next() as u32,
                    _ => data.len() as u32 + 1,
                };
                let n = 4.min(data.len() - at);
                data[at..at + n].copy_from_slice(&word.to_le_bytes()[..n]);
                done.push(format!("length word {word:#x} at {at}"));
            }
            _ => {
                // A chunk repeated in place (duplicated records, repeated frames).
                let n = (1 + rng.below(2000)).min(data.len() - at);
                let chunk = data[at..at + n].to_vec();
                data.splice(at..at, chunk);
                done.push(format!("{n} bytes repeated at {at}"));
            }
        }
    }
    done.join(", ")
}

struct Outcome {
    code: Option<i32>,
    stdout: Vec<u8>,
    stderr: String,
    elapsed: Duration,
}

fn run(path: &std::path::Path, args: &[&str], timeout: Duration) -> Outcome {
    let out = path.with_extension("out");
    let err = path.with_extension("err");
    let mut child = Command::new(env!("CARGO_BIN_EXE_wsprobe"))
        .arg("analyze")
        .args(args)
        .arg(path)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{}: no answer after {timeout:?} ({args:?})", path.display());
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let outcome = Outcome {
        code: status.code(),
        stdout: std::fs::read(&out).unwrap(),
        stderr: std::fs::read_to_string(&err).unwrap(),
        elapsed: started.elapsed(),
    };
    let _ = std::fs::remove_file(&out);
    let _ = std::fs::remove_file(&err);
    outcome
}

#[test]
fn mutated_captures_never_crash_or_hang() {
    let total: usize = std::env::var("WSPROBE_MUTANTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let seed: u64 = std::env::var("WSPROBE_MUTANT_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x5EED_CAFE);
    let mut originals: Vec<(String, Vec<u8>)> = std::fs::read_dir(captures_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "pcap" || e == "pcapng"))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).unwrap())
        })
        .collect();
    originals.sort();
    assert!(originals.len() >= 10, "captures/ is incomplete");
    let jobs: Vec<(usize, &str, &[u8])> = (0..total)
        .map(|i| {
            let (name, bytes) = &originals[i % originals.len()];
            (i, name.as_str(), bytes.as_slice())
        })
        .collect();
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get().min(4));
    let results: Vec<(usize, Option<i32>, Duration)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|w| {
                let jobs = &jobs;
                s.spawn(move || {
                    let mut results = Vec::new();
                    for &(i, name, original) in jobs.iter().skip(w).step_by(workers) {
                        let mut rng =
                            Rng(seed ^ (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
                        let mut data = original.to_vec();
                        let what = mutate(&mut data, &mut rng);
                        let ext = if name.ends_with(".pcapng") {
                            "pcapng"
                        } else {
                            "pcap"
                        };
                        let path: PathBuf = temp_file(&data, ext);
                        let (args, json): (&[&str], bool) = match i % 4 {
                            0 => (
                                &["--format", "json", "--messages", "--payload", "full"],
                                true,
                            ),
                            1 => (&["--format", "jsonl", "--fail-on", "error"], false),
                            2 => (&["--messages", "--fail-on", "warning"], false),
                            _ => (
                                &[
                                    "--format",
                                    "json",
                                    "--max-buffered-bytes",
                                    "4096",
                                    "--max-inflated-bytes",
                                    "1000",
                                    "--max-listed-bytes",
                                    "20000",
                                ],
                                true,
                            ),
                        };
                        let o = run(&path, args, Duration::from_secs(60));
                        let context = format!(
                            "mutant {i} of {name} ({what}), args {args:?}: exit {:?}\nstderr: {}",
                            o.code, o.stderr
                        );
                        assert!(matches!(o.code, Some(0..=2)), "{context}");
                        assert!(!o.stderr.contains("panicked"), "{context}");
                        if o.code == Some(2) {
                            let lines: Vec<&str> = o.stderr.lines().collect();
                            assert_eq!(lines.len(), 1, "{context}");
                            assert!(lines[0].starts_with("wsprobe: "), "{context}");
                        } else if json {
                            let parsed: Result<serde_json::Value, _> =
                                serde_json::from_slice(&o.stdout);
                            assert!(parsed.is_ok(), "{context}: not JSON");
                        }
                        let _ = std::fs::remove_file(&path);
                        results.push((i, o.code, o.elapsed));
                    }
                    results
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    assert_eq!(results.len(), total);
    let count = |c: i32| results.iter().filter(|r| r.1 == Some(c)).count();
    let slowest = results.iter().map(|r| r.2).max().unwrap_or_default();
    eprintln!(
        "{total} mutants of {} captures: exit 0: {}, exit 1: {}, exit 2: {}; slowest {slowest:?}",
        originals.len(),
        count(0),
        count(1),
        count(2)
    );
}
