//! How fast the HTML report opens. The benchmark generator's capture (benches/compare.sh's
//! "small" traffic, 20 MB by default: 2,292 connections, 94,451 messages) becomes a
//! `--format html` page, which headless Chromium (Debian's `chromium` and `chromium-driver`)
//! opens again and again. Printed per run: the time from the start of navigation until the
//! page is ready (`performance.now()` at `data-ready`: reading the file, inflating and parsing
//! the embedded JSON, the rows, the timeline, the plots and the first panel) and its phases;
//! then the first run (a browser just started, what a person opening the file from an email
//! sees) apart from the others, and the timeline's redraw time with the rows in view and with
//! every row on screen ("rows: fit all").
//!
//! ```text
//! cargo bench --bench html_render                        # 20 MB, 5 runs
//! cargo bench --bench html_render -- --size-mb 200 --runs 3
//! ```
//!
//! The browser tests check that the page renders completely; this is where its speed is
//! measured (a timed test fails whenever the machine is busy). The load average is printed
//! with the figures: compare runs on a quiet machine. Run by `cargo test --all-targets`
//! (without cargo bench's `--bench`), it makes one run on `captures/demo.pcap`, a smoke test
//! of itself that costs seconds (and skips when WSPROBE_NO_BROWSER is set).

#[path = "../tests/integration/webdriver.rs"]
mod webdriver;

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;
use webdriver::{Browser, benchmark_capture};

fn main() {
    let benching = std::env::args().any(|a| a == "--bench");
    let (mut size_mb, mut runs) = (20u32, if benching { 5 } else { 1 });
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or_else(|| panic!("{name} needs a number"))
        };
        match arg.as_str() {
            "--size-mb" => size_mb = value("--size-mb") as u32,
            "--runs" => runs = (value("--runs") as usize).max(1),
            // What cargo bench passes to every benchmark.
            "--bench" => {}
            // What cargo test passes to a target it runs (a filter, libtest's options).
            _ if !benching => {}
            other => panic!("unknown argument {other}: use --size-mb N --runs N"),
        }
    }
    if !benching && std::env::var_os("WSPROBE_NO_BROWSER").is_some() {
        eprintln!("html_render skipped: WSPROBE_NO_BROWSER is set");
        return;
    }
    let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let target = tmp.parent().map(PathBuf::from).unwrap_or(tmp);
    let pcap = if benching {
        benchmark_capture(&target, size_mb, true)
    } else {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("captures/demo.pcap")
    };
    let page = target
        .join("bench/html")
        .join(pcap.with_extension("html").file_name().unwrap());
    std::fs::create_dir_all(page.parent().unwrap()).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_wsprobe"))
        .args(["analyze", "--format", "html"])
        .arg(&pcap)
        .output()
        .unwrap();
    assert!(matches!(out.status.code(), Some(0 | 1)), "{out:?}");
    std::fs::write(&page, &out.stdout).unwrap();
    let Some(b) = Browser::start((1400, 1600), &[]) else {
        if benching {
            eprintln!("html_render needs Chromium: unset WSPROBE_NO_BROWSER");
            std::process::exit(2);
        }
        return;
    };
    println!(
        "html_render: {} ({} bytes), {} runs, load average {}",
        page.display(),
        out.stdout.len(),
        runs,
        load_average()
    );
    let mut times = Vec::new();
    for run in 1..=runs {
        b.open(&page);
        let d = b.wait_ready();
        assert_eq!(d["errors"], "0", "script errors: {d}");
        let ms: f64 = d["renderMs"].as_str().unwrap().parse().unwrap();
        println!(
            "  run {run}: ready after {ms:.0} ms ({} connections), phases {}",
            d["connections"].as_str().unwrap_or("?"),
            d["phases"].as_str().unwrap_or("?")
        );
        times.push(ms);
    }
    let console = b.console();
    assert!(console.is_empty(), "console entries: {console:#?}");
    println!("  first run (browser just started): {:.0} ms", times[0]);
    if times.len() > 1 {
        let mut warm = times[1..].to_vec();
        warm.sort_by(f64::total_cmp);
        println!(
            "  later runs: min {:.0} ms, median {:.0} ms, max {:.0} ms",
            warm[0],
            warm[warm.len() / 2],
            warm[warm.len() - 1]
        );
    }
    // The timeline's redraw (every frame of a pan or zoom): median of 21 draws.
    let redraw = |density: &str| -> Value {
        b.eval(&format!(
            "const t = WS.timeline; t.density = '{density}'; t.setView(t.full[0], t.full[1]); t.layout(); \
             const ms = []; for (let i = 0; i < 21; i++) {{ const a = performance.now(); t.draw(); ms.push(performance.now() - a); }} \
             ms.sort((x, y) => x - y); \
             return {{ms: ms[10], bars: Number(document.getElementById('timeline-canvas').dataset.visibleBars)}}"
        ))
    };
    for (density, what) in [
        ("comfortable", "rows in view"),
        ("fit", "every row on screen"),
    ] {
        let r = redraw(density);
        println!(
            "  timeline redraw, {what} ({} bars): {:.2} ms",
            r["bars"],
            r["ms"].as_f64().unwrap_or(f64::NAN)
        );
    }
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}
