//! Wiring: validated options in, a pipeline from capture source to reporter, an exit status
//! out. `main.rs` only parses arguments and calls this.

use std::collections::HashSet;
use std::io::IsTerminal;

use crate::analysis::AnalysisOptions;
use crate::capture::{InputSummary, file::read_capture};
use crate::cli::{Format, PayloadArg, ReportArgs};
use crate::connection::ConnectionConfig;
use crate::diag::{DiagnosticId, Severity};
use crate::error::{Error, Result};
use crate::pipeline::{Pipeline, TableLimits};
use crate::record::{ConnectionRecord, Summary};
use crate::record::{Event, Sink};
use crate::report::json::JsonReport;
use crate::report::jsonl::JsonlReport;
use crate::report::table::TableReport;
use crate::tcp::reassembly::ReassemblyLimits;
use crate::ws::message::{MessageLimits, PayloadMode};

/// How a run ended, as an exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Analysed; nothing matched `--fail-on`.
    Clean,
    /// Something matched `--fail-on`.
    Matched,
}

/// `--fail-on` parsed: ids, and a severity threshold.
#[derive(Debug, Clone, Default)]
pub struct FailOn {
    ids: HashSet<DiagnosticId>,
    severity: Option<Severity>,
}

impl FailOn {
    /// Parses the words; an unknown one is a usage error.
    pub fn parse(words: &[String]) -> std::result::Result<FailOn, String> {
        let mut fail = FailOn::default();
        for word in words.iter().map(|w| w.trim()).filter(|w| !w.is_empty()) {
            if let Some(s) = Severity::parse(word) {
                fail.severity = Some(fail.severity.map_or(s, |t| t.min(s)));
            } else if let Some(id) = DiagnosticId::parse(word) {
                fail.ids.insert(id);
            } else {
                return Err(format!(
                    "--fail-on: unknown diagnostic id or severity {word:?} (see `wsprobe diagnostics`)"
                ));
            }
        }
        Ok(fail)
    }

    fn matches(&self, record: &ConnectionRecord) -> bool {
        record.diagnostic_counts.keys().any(|name| {
            DiagnosticId::parse(name).is_some_and(|id| {
                self.ids.contains(&id) || self.severity.is_some_and(|s| id.severity() >= s)
            })
        })
    }
}

/// Passes on only the chosen connections and notes whether any matched `--fail-on`.
struct Gate<'a> {
    inner: &'a mut dyn Sink,
    connection: Option<u64>,
    address: Option<String>,
    admitted: HashSet<u64>,
    fail_on: FailOn,
    matched: bool,
}

impl Gate<'_> {
    fn admits_address(&self, ip: &str, port: u16) -> bool {
        match &self.address {
            None => true,
            Some(want) => {
                let want = want.trim_start_matches('[');
                want == ip || *want == format!("{ip}:{port}") || *want == format!("{ip}]:{port}")
            }
        }
    }

    fn admits(&self, id: u64) -> bool {
        self.connection.is_none_or(|c| c == id)
            && (self.address.is_none() || self.admitted.contains(&id))
    }
}

impl Sink for Gate<'_> {
    fn event(&mut self, event: &Event<'_>) {
        let id = match event {
            Event::ConnectionSeen {
                id, client, server, ..
            } => {
                if self.admits_address(&client.ip, client.port)
                    || self.admits_address(&server.ip, server.port)
                {
                    self.admitted.insert(*id);
                }
                *id
            }
            Event::Handshake { id, .. }
            | Event::Message { id, .. }
            | Event::Frame { id, .. }
            | Event::Diagnostic { id, .. }
            | Event::Close { id, .. } => *id,
        };
        if self.admits(id) {
            self.inner.event(event);
        }
    }

    fn connection(&mut self, record: ConnectionRecord) {
        let by_address = self.admits_address(&record.client.ip, record.client.port)
            || self.admits_address(&record.server.ip, record.server.port);
        self.admitted.remove(&record.id);
        if self.connection.is_some_and(|c| c != record.id) || !by_address {
            return;
        }
        self.matched |= self.fail_on.matches(&record);
        self.inner.connection(record);
    }

    fn finish(&mut self, inputs: &[InputSummary], summary: &Summary) -> std::io::Result<()> {
        self.inner.finish(inputs, summary)
    }

    fn output_failed(&self) -> bool {
        self.inner.output_failed()
    }
}

/// Options for one run, validated.
pub struct RunOptions {
    /// Output format.
    pub format: Format,
    /// Show messages.
    pub messages: bool,
    /// Settings for every connection.
    pub connection: ConnectionConfig,
    /// Flow-table limits.
    pub table: TableLimits,
    /// `--fail-on`.
    pub fail_on: FailOn,
    /// `--connection`.
    pub only_connection: Option<u64>,
    /// `--address`.
    pub only_address: Option<String>,
    /// Indent JSON.
    pub pretty: bool,
    /// Flush every JSON line (live).
    pub flush_each_line: bool,
    /// Print a line per event in the table format as it happens (live).
    pub live_events: bool,
}

impl RunOptions {
    /// Validates report arguments.
    pub fn from_args(args: &ReportArgs, live: bool) -> std::result::Result<RunOptions, String> {
        let keep_messages = args.messages && args.format != Format::Jsonl;
        // Live table output prints every message as it happens.
        let message_events = args.format == Format::Jsonl || (live && args.format == Format::Table);
        let payload = match args.payload {
            // Without message records nobody reads payloads: do not copy them.
            _ if !(keep_messages || message_events) => PayloadMode::None,
            PayloadArg::None => PayloadMode::None,
            PayloadArg::Preview => PayloadMode::Preview(args.preview_bytes),
            PayloadArg::Full => PayloadMode::Full,
        };
        let fail_on = FailOn::parse(&args.fail_on)?;
        let message_limits = MessageLimits {
            max_kept_bytes: args.max_message_bytes,
            max_inflated_bytes: args.max_inflated_bytes,
            max_inflaters: args.max_inflaters,
        };
        Ok(RunOptions {
            format: args.format,
            messages: args.messages,
            connection: ConnectionConfig {
                analysis: AnalysisOptions {
                    keep_messages,
                    message_events,
                    keep_frames: args.frames && args.format != Format::Jsonl,
                    frame_events: args.frames
                        && (args.format == Format::Jsonl || (live && args.format == Format::Table)),
                    payload,
                },
                payload,
                message_limits,
                reassembly: ReassemblyLimits {
                    max_buffered_bytes: args.max_buffered_bytes,
                    ..ReassemblyLimits::default()
                },
                max_listed_bytes: args.max_listed_bytes,
                // The table report keeps every record until the end.
                listed_freed_on_finish: args.format != Format::Table,
            },
            table: TableLimits {
                max_connections: args.max_connections.max(1),
                websocket_idle_timeout: args.idle_timeout.max(1.0),
                max_idle_connections: args.max_idle_connections,
                ..TableLimits::default()
            },
            fail_on,
            only_connection: args.connection,
            only_address: args.address.clone(),
            pretty: args.pretty,
            flush_each_line: live,
            live_events: live && args.format == Format::Table,
        })
    }

    /// The reporter for the chosen format, writing to standard output.
    pub fn reporter(&self) -> Box<dyn Sink> {
        let stdout = Box::new(std::io::BufWriter::with_capacity(
            1 << 16,
            std::io::stdout(),
        ));
        match self.format {
            Format::Json => Box::new(JsonReport::new(stdout, self.pretty)),
            Format::Jsonl => Box::new(JsonlReport::new(stdout, self.flush_each_line)),
            Format::Table => {
                let colour = std::io::stdout().is_terminal()
                    && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
                let table = TableReport::new(stdout, colour, self.messages);
                if self.live_events {
                    Box::new(table.with_live_events())
                } else {
                    Box::new(table)
                }
            }
        }
    }
}

/// Feeds one packet source through a pipeline; used by `analyze` and `live`.
pub struct Session<'a> {
    gate: Gate<'a>,
}

impl<'a> Session<'a> {
    /// A session writing to `sink` through the filters and `--fail-on` of `options`.
    pub fn new(sink: &'a mut dyn Sink, options: &RunOptions) -> Self {
        Session {
            gate: Gate {
                inner: sink,
                connection: options.only_connection,
                address: options.only_address.clone(),
                admitted: HashSet::new(),
                fail_on: options.fail_on.clone(),
                matched: false,
            },
        }
    }

    /// The sink to build a pipeline on.
    pub fn sink(&mut self) -> &mut dyn Sink {
        &mut self.gate
    }

    /// Did anything match `--fail-on`?
    pub fn matched(&self) -> bool {
        self.gate.matched
    }
}

/// `wsprobe analyze`: every file through one pipeline (connections may span files).
/// Returns the outcome and the fatal errors met (each file is still tried).
pub fn analyze(
    files: &[String],
    options: &RunOptions,
    progress: bool,
) -> Result<(Outcome, Vec<Error>)> {
    let mut reporter = options.reporter();
    let mut session = Session::new(reporter.as_mut(), options);
    let mut inputs = Vec::new();
    let mut errors = Vec::new();
    let summary;
    {
        let mut pipeline = Pipeline::new(session.sink(), options.connection, options.table);
        for path in files {
            match analyze_one(path, &mut pipeline, progress) {
                Ok(summary) => {
                    if let Some(e) = &summary.error {
                        eprintln!("wsprobe: {path}: {e}; the report covers what came before");
                    }
                    inputs.push(summary);
                }
                Err(e) => {
                    eprintln!("wsprobe: {e}");
                    errors.push(e);
                }
            }
        }
        summary = pipeline.finish_all();
    }
    let matched = session.matched();
    session
        .sink()
        .finish(&inputs, &summary)
        .map_err(Error::Output)?;
    Ok((
        if matched {
            Outcome::Matched
        } else {
            Outcome::Clean
        },
        errors,
    ))
}

fn analyze_one(path: &str, pipeline: &mut Pipeline<'_>, progress: bool) -> Result<InputSummary> {
    let (reader, size): (Box<dyn std::io::Read + Send>, Option<u64>) = if path == "-" {
        (Box::new(std::io::stdin()), None)
    } else {
        let file = std::fs::File::open(path).map_err(|source| Error::Open {
            path: path.into(),
            source,
        })?;
        let size = file.metadata().ok().map(|m| m.len());
        if file.metadata().is_ok_and(|m| m.is_dir()) {
            return Err(Error::Open {
                path: path.into(),
                source: std::io::Error::other("is a directory"),
            });
        }
        (Box::new(file), size)
    };
    let bar = progress_bar(path, size, progress);
    let mut skipped = 0u64;
    let mut summary = read_capture(
        reader,
        path,
        |packet| {
            if pipeline.packet(packet).is_err() {
                skipped += 1;
            }
        },
        |position| {
            if let Some(bar) = &bar {
                bar.set_position(position);
            }
        },
    )?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    summary.skipped_packets += skipped;
    Ok(summary)
}

/// A progress bar on stderr for large files on a terminal; none otherwise.
fn progress_bar(path: &str, size: Option<u64>, wanted: bool) -> Option<indicatif::ProgressBar> {
    let size = size?;
    if !wanted || size < (32 << 20) || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(size);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{msg} {wide_bar} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar.set_message(path.to_string());
    Some(bar)
}
