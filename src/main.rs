//! The `wsprobe` binary: parses arguments, runs, maps the result to an exit status
//! (0 analysed, 1 `--fail-on` matched, 2 could not do the job).

use std::process::ExitCode;

use clap::Parser;
use clap::error::{ContextKind, ContextValue, ErrorKind};

use wsprobe::cli::{Cli, Command};
use wsprobe::diag::DiagnosticId;
use wsprobe::run::{Outcome, RunOptions, analyze};

/// See Cargo.toml: keeps resident memory close to the live heap.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay` (mimalloc.h: `mi_option_e`; the Rust bindings do not
/// name it).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

fn main() -> ExitCode {
    // Freed memory goes back to the kernel after 1 s instead of 10 ms: a capture's
    // connections come and go (each compressed one takes ~56 KiB of decoders), and memory
    // given back and asked for again came back as fresh pages the kernel zeroes, 10 % of the
    // run on the small-message benchmark (1.93 s instead of 2.15 s, +3 MiB RSS).
    // mimalloc's own MIMALLOC_PURGE_DELAY still decides where it is set.
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets one of mimalloc's options; any value is valid for this one.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 1000) };
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e)
            if e.use_stderr()
                && e.kind() != ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand =>
        {
            eprintln!("wsprobe: {}", usage_error(&e));
            return ExitCode::from(2);
        }
        Err(e) => {
            // --help, --version, or no arguments at all: clap's own text.
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    match cli.command {
        Command::Diagnostics => {
            for id in DiagnosticId::ALL {
                println!(
                    "{:<32} {:<8} {}",
                    id.as_str(),
                    id.severity().as_str(),
                    id.description()
                );
            }
            println!("\nfindings across connections (also for --fail-on):");
            for id in wsprobe::record::FindingId::ALL {
                println!("{:<32} {:<8} {}", id.as_str(), "finding", id.description());
            }
            ExitCode::SUCCESS
        }
        Command::Interfaces => match wsprobe::live::interfaces() {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => exit_for(e),
        },
        Command::Live(args) => {
            let options = match RunOptions::from_args(&args.report, true) {
                Ok(o) => o,
                Err(message) => {
                    eprintln!("wsprobe: {message}");
                    return ExitCode::from(2);
                }
            };
            match wsprobe::live::live(&args, &options) {
                Ok(Outcome::Matched) => ExitCode::from(1),
                Ok(Outcome::Clean) => ExitCode::SUCCESS,
                Err(e) => exit_for(e),
            }
        }
        Command::Analyze(args) => {
            let options = match RunOptions::from_args(&args.report, false) {
                Ok(o) => o,
                Err(message) => {
                    eprintln!("wsprobe: {message}");
                    return ExitCode::from(2);
                }
            };
            match analyze(
                &args.files,
                args.filter.as_deref(),
                &options,
                !args.no_progress,
            ) {
                Ok(Outcome::Matched) => ExitCode::from(1),
                Ok(Outcome::Clean) => ExitCode::SUCCESS,
                Err(e) => exit_for(e),
            }
        }
    }
}

/// A closed output pipe (`wsprobe ... | head`) is a normal end; anything else is exit 2.
fn exit_for(e: wsprobe::error::Error) -> ExitCode {
    if let wsprobe::error::Error::Output(io) = &e
        && io.kind() == std::io::ErrorKind::BrokenPipe
    {
        return ExitCode::SUCCESS;
    }
    eprintln!("wsprobe: {e}");
    ExitCode::from(2)
}

/// A usage error as one line: what is wrong, clap's "did you mean" when it has one, and where
/// to look. (clap's tip "to pass '--x' as a value, use '-- --x'" is left out: no wsprobe value
/// starts with a dash, so it only misleads.)
fn usage_error(e: &clap::Error) -> String {
    let text = e.to_string();
    let mut lines = text.lines();
    let mut message = lines
        .next()
        .unwrap_or_default()
        .trim_start_matches("error: ")
        .trim_end_matches(" found")
        .to_string();
    // The indented lines right under the first belong to it ("  <FILE>...", "  [possible ...]").
    for line in lines.take_while(|l| l.starts_with("  ") && !l.trim_start().starts_with("tip:")) {
        message.push(' ');
        message.push_str(line.trim());
    }
    let mut suggestions = Vec::new();
    for kind in [
        ContextKind::SuggestedArg,
        ContextKind::SuggestedSubcommand,
        ContextKind::SuggestedValue,
    ] {
        match e.get(kind) {
            Some(ContextValue::String(s)) => suggestions.push(format!("'{s}'")),
            Some(ContextValue::Strings(v)) => {
                suggestions.extend(v.iter().map(|s| format!("'{s}'")))
            }
            _ => {}
        }
    }
    if !suggestions.is_empty() {
        message.push_str(&format!("; did you mean {}?", suggestions.join(" or ")));
    }
    let usage = text.lines().find_map(|l| l.strip_prefix("Usage: "));
    // The subcommand from the usage line, else from the arguments (a bad value has no usage).
    let subcommand = std::env::args()
        .nth(1)
        .filter(|a| ["analyze", "live", "interfaces", "diagnostics"].contains(&a.as_str()));
    let command = match usage {
        Some(u) => u
            .split_whitespace()
            .take_while(|w| !w.starts_with(['[', '<', '-']))
            .collect::<Vec<_>>()
            .join(" "),
        None => match subcommand {
            Some(sub) => format!("wsprobe {sub}"),
            None => "wsprobe".into(),
        },
    };
    match e.kind() {
        ErrorKind::MissingRequiredArgument | ErrorKind::MissingSubcommand => {
            format!("{message} (usage: {})", usage.unwrap_or(&command))
        }
        _ => format!("{message} (see `{command} --help`)"),
    }
}
