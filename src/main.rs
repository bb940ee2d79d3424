//! The `wsprobe` binary: parses arguments, runs, maps the result to an exit status
//! (0 analysed, 1 `--fail-on` matched, 2 could not do the job).

use std::process::ExitCode;

use clap::Parser;

use wsprobe::cli::{Cli, Command};
use wsprobe::diag::DiagnosticId;
use wsprobe::run::{Outcome, RunOptions, analyze};

/// See Cargo.toml: keeps resident memory close to the live heap.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
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
            match analyze(&args.files, &options, !args.no_progress) {
                Ok((_, errors)) if !errors.is_empty() => ExitCode::from(2),
                Ok((Outcome::Matched, _)) => ExitCode::from(1),
                Ok((Outcome::Clean, _)) => ExitCode::SUCCESS,
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
