//! Wiring of `wsprobe live` and `wsprobe interfaces`: a libpcap capture
//! ([`crate::capture::live`]) through the same [`Session`] and [`Pipeline`] as `analyze`,
//! stopped by Ctrl-C, SIGTERM, `--duration` or `--count`, then the same final report.
//!
//! Without the `live` feature both commands fail with a message saying how to get it.

use crate::cli::LiveArgs;
use crate::error::{Error, Result};
use crate::run::{Outcome, RunOptions};

/// What `live` needs beyond the report options, validated.
fn check_args(args: &LiveArgs) -> std::result::Result<(), String> {
    if let Some(d) = args.duration
        && !(d.is_finite() && d > 0.0)
    {
        return Err(format!(
            "--duration must be a positive number of seconds, not {d}"
        ));
    }
    if args.count == Some(0) {
        return Err("--count must be at least 1".into());
    }
    if args.snaplen == 0 {
        return Err("--snaplen must be at least 1".into());
    }
    if args.buffer_mb == 0 || args.buffer_mb > 2047 {
        return Err("--buffer-mb must be between 1 and 2047".into());
    }
    if args.rotate_mb == Some(0) {
        return Err("--rotate-mb must be at least 1".into());
    }
    Ok(())
}

#[cfg(not(feature = "live"))]
const NO_LIVE: &str = "this wsprobe was built without live capture (libpcap); install libpcap-dev and rebuild with `cargo build --features live`, or capture with tcpdump and use `wsprobe analyze`";

/// `wsprobe live`: captures until stopped, printing events as they happen, then the report.
#[cfg(not(feature = "live"))]
pub fn live(args: &LiveArgs, _options: &RunOptions) -> Result<Outcome> {
    check_args(args).map_err(Error::Live)?;
    Err(Error::Live(NO_LIVE.into()))
}

/// `wsprobe interfaces`: the capture devices, one a line.
#[cfg(not(feature = "live"))]
pub fn interfaces() -> Result<()> {
    Err(Error::Live(NO_LIVE.into()))
}

/// `wsprobe interfaces`: the capture devices, one a line.
#[cfg(feature = "live")]
pub fn interfaces() -> Result<()> {
    use std::io::Write as _;
    let list = crate::capture::live::interfaces()?;
    let rows: Vec<[String; 4]> = list
        .iter()
        .map(|i| {
            let mut flags = vec![if i.up { "up" } else { "down" }];
            if i.running {
                flags.push("running");
            }
            if i.loopback {
                flags.push("loopback");
            }
            if i.wireless {
                flags.push("wireless");
            }
            let addresses = if i.addresses.is_empty() {
                "-".to_string()
            } else {
                i.addresses.join(", ")
            };
            [
                i.name.clone(),
                flags.join(","),
                addresses,
                i.description.clone().unwrap_or_default(),
            ]
        })
        .collect();
    let header = ["name", "flags", "addresses", "description"].map(String::from);
    let width = |k: usize| {
        std::iter::once(&header)
            .chain(&rows)
            .map(|r| r[k].chars().count())
            .max()
            .unwrap_or(0)
    };
    let (w0, w1, w2) = (width(0), width(1), width(2));
    let mut text = String::new();
    for r in std::iter::once(&header).chain(&rows) {
        let line = format!("{:<w0$}  {:<w1$}  {:<w2$}  {}", r[0], r[1], r[2], r[3]);
        text.push_str(line.trim_end());
        text.push('\n');
    }
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(Error::Output)
}

/// `wsprobe live`: captures until stopped, printing events as they happen, then the report.
#[cfg(feature = "live")]
pub fn live(args: &LiveArgs, options: &RunOptions) -> Result<Outcome> {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::{Duration, Instant};

    use crate::capture::InputSummary;
    use crate::capture::live::{Control, LiveCapture, LiveOptions, StopReason};
    use crate::pipeline::Pipeline;
    use crate::run::Session;

    check_args(args).map_err(Error::Live)?;
    let live_options = LiveOptions {
        interface: args.interface.clone(),
        filter: args.filter.clone().filter(|f| !f.trim().is_empty()),
        snaplen: args.snaplen,
        promisc: args.promisc,
        buffer_mb: args.buffer_mb,
        // Too far to represent: no deadline at all.
        duration: args
            .duration
            .and_then(|d| Duration::try_from_secs_f64(d).ok()),
        count: args.count,
        write: args.write.clone(),
        rotate_mb: args.rotate_mb,
    };
    let mut capture = LiveCapture::open(&live_options)?;

    // Ctrl-C, SIGTERM, SIGHUP: stop and report; a second one quits at once.
    let stop = capture.stop_handle();
    let presses = AtomicU32::new(0);
    let _ = ctrlc::set_handler(move || {
        if presses.fetch_add(1, Ordering::SeqCst) > 0 {
            eprintln!("wsprobe: interrupted again; quitting without the report");
            std::process::exit(130);
        }
        stop.stop();
    });

    let link = capture.link();
    let mut listening = format!(
        "wsprobe: listening on {} ({}, snaplen {}",
        args.interface,
        link.name(),
        args.snaplen
    );
    if let Some(f) = &live_options.filter {
        listening.push_str(&format!(", filter '{f}'"));
    }
    listening.push(')');
    if let Some(d) = args.duration {
        listening.push_str(&format!(" for {d} s"));
    }
    if let Some(n) = args.count {
        listening.push_str(&format!(", up to {n} packets"));
    }
    listening.push_str("; Ctrl-C to stop and report");
    eprintln!("{listening}");

    let mut reporter = options.reporter()?;
    let mut session = Session::new(reporter.as_mut(), options);
    let started = Instant::now();
    let mut skipped = 0u64;
    let (stats, summary) = {
        let mut pipeline = Pipeline::new(session.sink(), options.connection, options.table);
        pipeline.set_keys(options.keys.clone());
        let stats = {
            let pipeline = std::cell::RefCell::new(&mut pipeline);
            capture.run(
                |packet| {
                    let mut p = pipeline.borrow_mut();
                    if p.packet(packet).is_err() {
                        skipped += 1;
                    }
                    if p.output_failed() {
                        Control::Stop
                    } else {
                        Control::Continue
                    }
                },
                |now| {
                    let mut p = pipeline.borrow_mut();
                    p.sweep_now(now);
                    if p.output_failed() {
                        Control::Stop
                    } else {
                        Control::Continue
                    }
                },
            )
        };
        (stats, pipeline.finish_all())
    };
    let elapsed = started.elapsed().as_secs_f64();

    let mut input = InputSummary {
        path: args.interface.clone(),
        format: "live".into(),
        packets: stats.packets,
        bytes: stats.bytes,
        skipped_packets: skipped,
        error: stats.error.clone(),
        dropped_by_kernel: stats.dropped_by_kernel,
        ..InputSummary::default()
    };
    input.saw_link(link);

    let why = match stats.reason {
        StopReason::Stopped => "stopped",
        StopReason::Duration => "--duration reached",
        StopReason::Count => "--count reached",
        StopReason::Callback => "output closed",
        StopReason::Error => "capture failed",
    };
    let dropped = stats
        .dropped_by_kernel
        .map_or("unknown".to_string(), |n| n.to_string());
    eprintln!(
        "wsprobe: {why} after {elapsed:.1} s: {} packets captured on {}, {dropped} dropped by the kernel",
        stats.packets, args.interface
    );
    if let Some(e) = &stats.error {
        eprintln!("wsprobe: {e}; the report covers what came before");
    }
    if let Some(e) = &stats.write_error {
        eprintln!("wsprobe: warning: {e}; the saved capture is incomplete");
    }
    if let Some(n) = stats.dropped_by_kernel.filter(|&n| n > 0) {
        eprintln!(
            "wsprobe: warning: the kernel dropped {n} packets (capture buffer full): connections may show gaps; raise --buffer-mb, narrow -f, or lower --snaplen"
        );
    }
    if let Some(n) = stats.dropped_by_interface.filter(|&n| n > 0) {
        eprintln!("wsprobe: warning: the interface or its driver dropped {n} packets");
    }
    if stats.files_written.len() > 1 {
        eprintln!(
            "wsprobe: wrote {} files: {}",
            stats.files_written.len(),
            stats
                .files_written
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }

    let mut summary = summary;
    let keylog_matched = crate::run::add_key_logs(&mut summary, &options.keys, &options.fail_on);
    let outcome = session.finish(&[input], &summary)?;
    Ok(if keylog_matched {
        Outcome::Matched
    } else {
        outcome
    })
}
