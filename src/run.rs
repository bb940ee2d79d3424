//! Wiring: validated options in, a pipeline from capture source to reporter, an exit status
//! out. `main.rs` only parses arguments and calls this.

use std::collections::HashSet;
use std::io::IsTerminal;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

use crate::analysis::AnalysisOptions;
use crate::app::{APP_MAX_BYTES, AppSelection};
use crate::capture::InputSummary;
use crate::capture::file::{read_capture_file, read_capture_with_secrets};
use crate::capture::filter::PacketFilter;
use crate::cli::{Format, PayloadArg, ReportArgs, TableFormat};
use crate::connection::ConnectionConfig;
use crate::diag::{DiagnosticId, Severity};
use crate::error::{Error, Result};
use crate::findings::FindingsEngine;
use crate::pipeline::{PacketInput, Pipeline, TableLimits, sharded};
use crate::record::spool::SpoolFormat;
use crate::record::{Address, ConnectionRecord, Finding, FindingId, OtherConnection, Summary};
use crate::record::{Event, Sink};
use crate::report::har::HarReport;
use crate::report::html::HtmlReport;
use crate::report::json::JsonReport;
use crate::report::jsonl::JsonlReport;
use crate::report::table::{TableOptions, TableReport};
use crate::report::tables::{FileFormat, TableWriter, TablesConfig};
use crate::stream::tls::KeyStore;
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

/// `--fail-on` parsed: diagnostic ids, finding ids, and a severity threshold.
#[derive(Debug, Clone, Default)]
pub struct FailOn {
    ids: HashSet<DiagnosticId>,
    findings: HashSet<FindingId>,
    severity: Option<Severity>,
}

impl FailOn {
    /// Parses the words; an unknown one is a usage error (with the nearest id, if one is near).
    pub fn parse(words: &[String]) -> std::result::Result<FailOn, String> {
        let mut fail = FailOn::default();
        for word in words.iter().map(|w| w.trim()).filter(|w| !w.is_empty()) {
            if let Some(s) = Severity::parse(word) {
                fail.severity = Some(fail.severity.map_or(s, |t| t.min(s)));
            } else if let Some(id) = DiagnosticId::parse(word) {
                fail.ids.insert(id);
            } else if let Some(id) = FindingId::parse(word) {
                fail.findings.insert(id);
            } else {
                let known = DiagnosticId::ALL
                    .iter()
                    .map(|id| id.as_str())
                    .chain(["error", "warning", "info"]);
                let hint = match did_you_mean(word, known) {
                    Some(near) => format!("; did you mean {near:?}?"),
                    None => String::new(),
                };
                return Err(format!(
                    "--fail-on: unknown diagnostic id, finding id or severity {word:?}{hint} (`wsprobe diagnostics` lists them)"
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

    fn matches_finding(&self, finding: &Finding) -> bool {
        self.findings.contains(&finding.id)
    }
}

/// The known word nearest to `word`, when it is near enough to be a slip (the measure and
/// threshold clap uses for its own suggestions).
pub fn did_you_mean<'k>(word: &str, known: impl Iterator<Item = &'k str>) -> Option<&'k str> {
    known
        .map(|k| (strsim::jaro_winkler(word, k), k))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| k)
}

/// `--address`: an endpoint kept on either side of a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressFilter {
    ip: Option<IpAddr>,
    port: Option<u16>,
}

/// The forms `--address` takes, for its error message.
const ADDRESS_FORMS: &str = "IP, IP:PORT, [IPv6]:PORT, :PORT or PORT (e.g. 10.0.0.5, 10.0.0.5:443, [::1]:8080, :8080, 8080; host names are not looked up)";

impl AddressFilter {
    /// Parses IP, IP:PORT, [IPv6]:PORT, [IPv6], :PORT or PORT.
    pub fn parse(text: &str) -> std::result::Result<AddressFilter, String> {
        let t = text.trim();
        let bad = |why: &str| format!("--address {t:?}: {why}; use {ADDRESS_FORMS}");
        let port = |p: &str| -> std::result::Result<u16, String> {
            if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad(&format!("{p:?} is not a port number")));
            }
            p.parse::<u16>()
                .map_err(|_| bad(&format!("port {p} is out of range (0-65535)")))
        };
        let ip = |a: &str| -> std::result::Result<IpAddr, String> {
            a.parse::<IpAddr>()
                .map(|ip| ip.to_canonical())
                .map_err(|_| bad(&format!("{a:?} is not an IP address")))
        };
        if t.is_empty() {
            return Err(bad("empty"));
        }
        if let Some(p) = t.strip_prefix(':')
            && !p.contains(':')
        {
            return Ok(AddressFilter {
                ip: None,
                port: Some(port(p)?),
            });
        }
        if t.bytes().all(|b| b.is_ascii_digit()) {
            return Ok(AddressFilter {
                ip: None,
                port: Some(port(t)?),
            });
        }
        if let Some(rest) = t.strip_prefix('[') {
            let Some((inside, after)) = rest.split_once(']') else {
                return Err(bad("no closing ']'"));
            };
            let ip = Some(ip(inside)?);
            return match after {
                "" => Ok(AddressFilter { ip, port: None }),
                _ => match after.strip_prefix(':') {
                    Some(p) => Ok(AddressFilter {
                        ip,
                        port: Some(port(p)?),
                    }),
                    None => Err(bad(&format!("{after:?} after ']'"))),
                },
            };
        }
        // One colon: IPv4:PORT. More: a bare IPv6 address (its port needs brackets).
        match t.matches(':').count() {
            1 => {
                let (a, p) = t.split_once(':').expect("bug: one colon");
                Ok(AddressFilter {
                    ip: Some(ip(a)?),
                    port: Some(port(p)?),
                })
            }
            _ => Ok(AddressFilter {
                ip: Some(ip(t)?),
                port: None,
            }),
        }
    }

    /// Is `a` this endpoint?
    pub fn matches(&self, a: &Address) -> bool {
        self.port.is_none_or(|p| p == a.port)
            && self.ip.is_none_or(|want| {
                a.ip.parse::<IpAddr>()
                    .is_ok_and(|ip| ip.to_canonical() == want)
            })
    }

    /// Does either end of a connection match?
    pub fn matches_either(&self, client: &Address, server: &Address) -> bool {
        self.matches(client) || self.matches(server)
    }
}

impl std::fmt::Display for AddressFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.ip, self.port) {
            (Some(IpAddr::V6(ip)), Some(p)) => write!(f, "[{ip}]:{p}"),
            (Some(ip), Some(p)) => write!(f, "{ip}:{p}"),
            (Some(ip), None) => write!(f, "{ip}"),
            (None, Some(p)) => write!(f, ":{p}"),
            (None, None) => write!(f, "any"),
        }
    }
}

/// Passes on only the chosen connections, counts the totals of what passes, gathers them for
/// the findings across connections, and notes whether anything matched `--fail-on`.
struct Gate<'a> {
    inner: &'a mut dyn Sink,
    connection: Option<u64>,
    address: Option<AddressFilter>,
    /// Connections admitted by `--address` (decided when they are first seen, for their events).
    admitted: HashSet<u64>,
    fail_on: FailOn,
    matched: bool,
    /// Totals of what passed.
    summary: Summary,
    /// Smallest and largest connection id seen, for "no connection N".
    ids: Option<(u64, u64)>,
    findings: FindingsEngine,
    /// A live capture: announce patterns as soon as they are established.
    live_findings: bool,
}

impl Gate<'_> {
    fn admits_ends(&self, id: u64, client: &Address, server: &Address) -> bool {
        self.connection.is_none_or(|c| c == id)
            && self
                .address
                .as_ref()
                .is_none_or(|a| a.matches_either(client, server))
    }

    fn admits(&self, id: u64) -> bool {
        self.connection.is_none_or(|c| c == id)
            && (self.address.is_none() || self.admitted.contains(&id))
    }

    fn saw_id(&mut self, id: u64) {
        self.ids = Some(
            self.ids
                .map_or((id, id), |(lo, hi)| (lo.min(id), hi.max(id))),
        );
    }

    /// The filters are on and matched no TCP connection at all.
    fn nothing_matched(&self) -> Option<String> {
        let id = self.connection?;
        if self.summary.tcp_connections > 0 {
            return None;
        }
        let ids = match self.ids {
            Some((lo, hi)) if lo == hi => format!("the only id is {lo}"),
            Some((lo, hi)) => format!("ids {lo}-{hi}"),
            None => "no TCP connections were seen".into(),
        };
        Some(match &self.address {
            Some(a) if self.ids.is_some_and(|(lo, hi)| (lo..=hi).contains(&id)) => {
                format!("connection {id} does not have endpoint {a} (--address)")
            }
            _ => format!("no connection {id} ({ids})"),
        })
    }

    /// Live: passes on the patterns that became established by `now`.
    fn announce(&mut self, now: f64) {
        if !self.live_findings {
            return;
        }
        for f in self.findings.poll(now) {
            self.inner.finding_established(&f);
        }
    }
}

impl Sink for Gate<'_> {
    fn event(&mut self, event: &Event<'_>) {
        let id = match event {
            Event::ConnectionSeen {
                id, client, server, ..
            } => {
                if self.admits_ends(*id, client, server) {
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
            match event {
                Event::ConnectionSeen {
                    id,
                    time,
                    client,
                    server,
                } => self.findings.connection_seen(*id, *time, client, server),
                Event::Handshake { id, handshake } => {
                    self.findings.handshake(*id, handshake.status)
                }
                _ => {}
            }
            self.inner.event(event);
        }
    }

    fn connection(&mut self, record: ConnectionRecord) {
        self.saw_id(record.id);
        self.admitted.remove(&record.id);
        if !self.admits_ends(record.id, &record.client, &record.server) {
            return;
        }
        self.matched |= self.fail_on.matches(&record);
        self.summary.add_connection(&record);
        self.findings.connection(&record);
        let now = record.last_seen;
        self.inner.connection(record);
        self.announce(now);
    }

    fn tick(&mut self, now: f64) {
        self.announce(now);
        self.inner.tick(now);
    }

    fn other_connection(&mut self, connection: &OtherConnection) {
        self.saw_id(connection.id);
        if self.admits_ends(connection.id, &connection.client, &connection.server) {
            self.summary.add_other(connection);
            self.inner.other_connection(connection);
        }
    }

    fn finish(&mut self, inputs: &[InputSummary], unfiltered: &Summary) -> std::io::Result<()> {
        let findings = self.findings.finish();
        self.matched |= findings.iter().any(|f| self.fail_on.matches_finding(f));
        for f in &findings {
            *self
                .summary
                .findings
                .entry(f.id.as_str().to_string())
                .or_insert(0) += 1;
        }
        self.summary.findings_skipped_connections = self.findings.skipped();
        self.inner.findings(&findings);
        self.summary.unfiltered_tcp_connections = unfiltered.tcp_connections;
        // Key logs belong to the run, not to a connection: they pass every filter.
        self.summary.key_logs = unfiltered.key_logs.clone();
        let malformed = DiagnosticId::KeylogMalformed.as_str();
        if let Some(&n) = unfiltered.diagnostics.get(malformed) {
            self.summary.diagnostics.insert(malformed.to_string(), n);
        }
        self.inner.finish(inputs, &self.summary)
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
    pub only_address: Option<AddressFilter>,
    /// `--wide`.
    pub wide: bool,
    /// Columns the table fits in (COLUMNS, else the terminal's, else 100).
    pub width: usize,
    /// Indent JSON.
    pub pretty: bool,
    /// Flush every JSON line (live).
    pub flush_each_line: bool,
    /// Print a line per event in the table format as it happens (live).
    pub live_events: bool,
    /// TLS keys: `--keylog` files (or `$SSLKEYLOGFILE`) and pcapng Decryption Secrets Blocks.
    pub keys: Arc<KeyStore>,
    /// Announce findings across connections as soon as they are established (live).
    pub live_findings: bool,
    /// `--out-dir` and its options.
    pub tables: Option<TablesConfig>,
    /// Worker threads for files (`--threads`; 1: the single-threaded pipeline).
    pub threads: usize,
}

/// Where `--out-dir` goes and how, validated; None without `--out-dir`.
fn tables_config(args: &ReportArgs) -> std::result::Result<Option<TablesConfig>, String> {
    let o = &args.output;
    let Some(dir) = &o.out_dir else {
        return Ok(None);
    };
    let format = match o.table_format {
        TableFormat::Jsonl => FileFormat::Jsonl,
        TableFormat::Parquet => FileFormat::Parquet,
    };
    if !format.available() {
        return Err("--table-format parquet: this wsprobe was built without the `parquet` feature; rebuild with `cargo install --path . --features parquet`, or write jsonl and convert with `duckdb -c \"COPY (FROM read_json('DIR/table=connections/**/*.jsonl.gz')) TO 'connections.parquet'\"`".into());
    }
    if format == FileFormat::Parquet && o.compress {
        return Err(
            "--compress is for jsonl tables; parquet files are always compressed (snappy)".into(),
        );
    }
    let sensor = o
        .sensor
        .clone()
        .unwrap_or_else(crate::report::tables::host_name);
    Ok(Some(TablesConfig {
        dir: dir.clone(),
        compress: o.compress,
        format,
        sensor: crate::report::tables::sanitize_sensor(&sensor),
        messages: args.messages,
    }))
}

impl RunOptions {
    /// Validates report arguments.
    pub fn from_args(args: &ReportArgs, live: bool) -> std::result::Result<RunOptions, String> {
        let tables = tables_config(args)?;
        // html and har show every message; the tables list them with --messages.
        let keep_messages = matches!(args.format, Format::Html | Format::Har)
            || (args.messages && (args.format != Format::Jsonl || tables.is_some()));
        // Live table output prints every message as it happens.
        let message_events = args.format == Format::Jsonl || (live && args.format == Format::Table);
        let payload_arg = args.payload.unwrap_or(if args.format == Format::Har {
            PayloadArg::Full
        } else {
            PayloadArg::Preview
        });
        // The json report reads a connection's listed messages back from a spool file as it
        // writes the connection: they hold no memory, so by default there is no cap (the spool
        // holds what the connections still open have listed). The tables read records, so
        // with them the messages stay in memory.
        let spool = (keep_messages && args.format == Format::Json && tables.is_none()).then_some(
            SpoolFormat {
                pretty: args.pretty,
            },
        );
        let max_listed_bytes = args.max_listed_bytes.unwrap_or(match args.format {
            Format::Html => crate::report::html::DEFAULT_MAX_LISTED_BYTES,
            _ if spool.is_some() => u64::MAX,
            _ => crate::connection::DEFAULT_MAX_LISTED_BYTES,
        });
        let payload = match payload_arg {
            // Without message records nobody reads payloads: do not copy them.
            _ if !(keep_messages || message_events) => PayloadMode::None,
            PayloadArg::None => PayloadMode::None,
            PayloadArg::Preview => PayloadMode::Preview(args.preview_bytes),
            PayloadArg::Full => PayloadMode::Full,
        };
        let fail_on = FailOn::parse(&args.fail_on)?;
        if args.late_seconds.is_nan() || args.late_seconds < 0.0 {
            return Err(format!(
                "--late-seconds {}: expected a number of seconds, 0 or more",
                args.late_seconds
            ));
        }
        let only_address = args
            .address
            .as_deref()
            .map(AddressFilter::parse)
            .transpose()?;
        let keys = load_key_logs(&args.keylog, live)?;
        let app = AppSelection::parse(&args.app)?;
        // The application decoders need the payload whatever the records show: the assembler
        // keeps at least APP_MAX_BYTES of every message; records are still cut to `payload`.
        let kept = match payload {
            _ if !app.enabled() => payload,
            PayloadMode::Full => PayloadMode::Full,
            PayloadMode::Preview(n) => PayloadMode::Preview(n.max(APP_MAX_BYTES)),
            PayloadMode::None => PayloadMode::Preview(APP_MAX_BYTES),
        };
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
                    app,
                    redact: !args.output.no_redact,
                },
                payload: kept,
                message_limits,
                reassembly: ReassemblyLimits {
                    max_buffered_bytes: args.max_buffered_bytes,
                    late_packets: args.late_packets,
                    late_seconds: args.late_seconds,
                    ..ReassemblyLimits::default()
                },
                max_listed_bytes,
                // The table report keeps every record until the end; html and har write them
                // as they come, but the budget then bounds the size of the whole file.
                spool,
                listed_freed_on_finish: !matches!(
                    args.format,
                    Format::Table | Format::Html | Format::Har
                ),
            },
            table: TableLimits {
                max_connections: args.max_connections.max(1),
                websocket_idle_timeout: args.idle_timeout.max(1.0),
                max_idle_connections: args.max_idle_connections,
                ..TableLimits::default()
            },
            fail_on,
            only_connection: args.connection,
            only_address,
            wide: args.wide,
            width: output_width(),
            pretty: args.pretty,
            flush_each_line: live,
            live_events: live && args.format == Format::Table,
            keys,
            live_findings: live,
            tables,
            threads: match args.threads {
                Some(n) => usize::from(n),
                None => std::thread::available_parallelism().map_or(1, |n| n.get()),
            },
        })
    }

    /// The reporter for the chosen format, writing to standard output, and the `--out-dir`
    /// tables beside it.
    pub fn reporter(&self) -> Result<Box<dyn Sink>> {
        let primary = self.primary_reporter();
        let Some(config) = &self.tables else {
            return Ok(primary);
        };
        let writer = TableWriter::create(config.clone()).map_err(|source| Error::Open {
            path: config.dir.clone(),
            source,
        })?;
        Ok(Box::new(crate::report::Tee::new(
            primary,
            writer,
            self.format == Format::Jsonl,
        )))
    }

    fn primary_reporter(&self) -> Box<dyn Sink> {
        let stdout = Box::new(std::io::BufWriter::with_capacity(
            1 << 16,
            std::io::stdout(),
        ));
        match self.format {
            Format::Html => Box::new(HtmlReport::new(stdout)),
            Format::Har => Box::new(HarReport::new(stdout, self.pretty)),
            Format::Json => Box::new(JsonReport::new(stdout, self.pretty)),
            Format::Jsonl => Box::new(JsonlReport::new(stdout, self.flush_each_line)),
            Format::Table => {
                let colour = std::io::stdout().is_terminal()
                    && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
                let table = TableReport::new(
                    stdout,
                    TableOptions {
                        colour,
                        messages: self.messages,
                        width: self.width,
                        wide: self.wide,
                        filtered: self.filter_words(),
                    },
                );
                if self.live_events {
                    Box::new(table.with_live_events())
                } else {
                    Box::new(table)
                }
            }
        }
    }
}

impl RunOptions {
    /// The filters in words, for the report's totals; None without filters.
    fn filter_words(&self) -> Option<String> {
        let mut words = Vec::new();
        if let Some(id) = self.only_connection {
            words.push(format!("--connection {id}"));
        }
        if let Some(a) = &self.only_address {
            words.push(format!("--address {a}"));
        }
        (!words.is_empty()).then(|| words.join(" "))
    }
}

/// The default table width when standard output is not a terminal and COLUMNS is unset: one
/// line per connection fits at 100 with most endpoints, and 100 columns show whole in CI logs,
/// pagers and code blocks of issue trackers, where 120 often scrolls.
pub const DEFAULT_WIDTH: usize = 100;

/// COLUMNS when it is a number (also when piped: `COLUMNS=80 wsprobe ... | less`), else the
/// terminal's width, else [`DEFAULT_WIDTH`].
fn output_width() -> usize {
    if let Some(n) = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<usize>().ok())
        .filter(|&n| n > 0)
    {
        return n;
    }
    console::Term::stdout()
        .size_checked()
        .map(|(_, cols)| usize::from(cols))
        .filter(|&n| n > 0)
        .unwrap_or(DEFAULT_WIDTH)
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
                summary: Summary::default(),
                ids: None,
                // Findings wanted only at the end: the endings wait in a temporary file.
                findings: if options.live_findings {
                    FindingsEngine::new()
                } else {
                    FindingsEngine::spilling(&std::env::temp_dir())
                },
                live_findings: options.live_findings,
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

    /// End of input: the report's last part, and the outcome. `--connection` with no such
    /// connection is an error, and then nothing is written (nothing was before: no event or
    /// record passed).
    pub fn finish(&mut self, inputs: &[InputSummary], summary: &Summary) -> Result<Outcome> {
        if let Some(message) = self.gate.nothing_matched() {
            return Err(Error::NotFound(message));
        }
        self.gate.finish(inputs, summary).map_err(Error::Output)?;
        Ok(if self.gate.matched {
            Outcome::Matched
        } else {
            Outcome::Clean
        })
    }
}

/// `wsprobe analyze`: every file through one pipeline (connections may span files).
///
/// A file that cannot be opened or is not a capture stops the command before anything is
/// analysed (the error, one line; nothing on standard output). Standard input is checked as it
/// is read: when it is not a capture, no report is written either.
pub fn analyze(
    files: &[String],
    filter: Option<&str>,
    options: &RunOptions,
    progress: bool,
) -> Result<Outcome> {
    for path in files.iter().filter(|p| *p != "-") {
        crate::capture::file::check_file(path)?;
    }
    let filter_text = filter;
    let mut filter = filter
        .map(PacketFilter::new)
        .transpose()
        .map_err(Error::Usage)?;
    let mut reporter = options.reporter()?;
    let mut session = Session::new(reporter.as_mut(), options);
    // Standard input is read once, as it comes: one thread (see `--threads`).
    let workers = if files.iter().any(|p| p == "-") {
        1
    } else {
        options.threads
    };
    let read = |pipeline: &mut dyn PacketInput, mut filter: Option<PacketFilter>| {
        let mut inputs = Vec::new();
        for path in files {
            let summary = analyze_one(path, pipeline, filter.as_mut(), &options.keys, progress)?;
            if let Some(e) = &summary.error {
                eprintln!("wsprobe: {path}: {e}; the report covers what came before");
            }
            inputs.push(summary);
        }
        Ok::<_, Error>(inputs)
    };
    let (inputs, summary) = if workers > 1 {
        // The filter's compiled programs stay on the thread that made them: the reader
        // makes its own.
        let expression = filter.take().map(|_| filter_text.unwrap_or_default());
        let (inputs, summary) = sharded::run(
            session.sink(),
            options.connection,
            options.table,
            options.keys.clone(),
            workers,
            |router| {
                let filter = expression
                    .map(|e| PacketFilter::new(e).expect("bug: the filter compiled before"));
                read(router, filter)
            },
        );
        (inputs?, summary)
    } else {
        let mut pipeline = Pipeline::new(session.sink(), options.connection, options.table);
        pipeline.set_keys(options.keys.clone());
        let inputs = read(&mut pipeline, filter)?;
        (inputs, pipeline.finish_all())
    };
    let mut summary = summary;
    let keylog_matched = add_key_logs(&mut summary, &options.keys, &options.fail_on);
    let outcome = session.finish(&inputs, &summary)?;
    Ok(if keylog_matched {
        Outcome::Matched
    } else {
        outcome
    })
}

fn analyze_one(
    path: &str,
    pipeline: &mut dyn PacketInput,
    mut filter: Option<&mut PacketFilter>,
    keys: &KeyStore,
    progress: bool,
) -> Result<InputSummary> {
    let size = (path != "-")
        .then(|| std::fs::metadata(path).ok().map(|m| m.len()))
        .flatten();
    let bar = progress_bar(path, size, progress);
    let mut skipped = 0u64;
    let mut filtered = 0u64;
    // Packets and key blocks both go to the pipeline (keys after packets wait for them).
    let pipeline = std::cell::RefCell::new(pipeline);
    let on_packet = |packet: &crate::capture::Packet<'_>| {
        if let Some(f) = filter.as_deref_mut()
            && !f.matches(packet)
        {
            filtered += 1;
            return;
        }
        if pipeline.borrow_mut().packet(packet).is_err() {
            skipped += 1;
        }
    };
    let on_secrets = |secrets: crate::capture::file::TlsSecrets<'_>| {
        let name = format!(
            "pcapng Decryption Secrets Block #{} in {path}",
            secrets.index
        );
        pipeline.borrow_mut().before_keys();
        let loaded = keys.add_text(&name, secrets.text);
        print_key_log_warnings(&loaded);
        if secrets.after_packets {
            eprintln!(
                "wsprobe: {name} comes after packets: its keys only decrypt connections whose handshake follows it"
            );
        }
    };
    let on_progress = |position| {
        if let Some(bar) = &bar {
            bar.set_position(position);
        }
    };
    // A file is memory-mapped (read in place); standard input is streamed.
    let mut summary = if path == "-" {
        read_capture_with_secrets(std::io::stdin(), path, on_packet, on_secrets, on_progress)?
    } else {
        let on_map = |map: &crate::capture::file::MappedFile| pipeline.borrow_mut().mapped(map);
        read_capture_file(path, on_map, on_packet, on_secrets, on_progress)?
    };
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    summary.skipped_packets += skipped;
    summary.filtered_out = filter.is_some().then_some(filtered);
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

/// Loads the key logs: `--keylog` files, else `$SSLKEYLOGFILE` when set. A file that cannot
/// be read is a usage error (exit 2); malformed lines are warnings on stderr (and in the
/// report's `summary.key_logs`). `live`: the files are followed as they grow.
pub fn load_key_logs(paths: &[PathBuf], live: bool) -> std::result::Result<Arc<KeyStore>, String> {
    let keys = KeyStore::new(live);
    let (paths, from_env): (Vec<PathBuf>, bool) = if paths.is_empty() {
        match std::env::var_os("SSLKEYLOGFILE").filter(|v| !v.is_empty()) {
            Some(p) => (vec![PathBuf::from(p)], true),
            None => (Vec::new(), false),
        }
    } else {
        (paths.to_vec(), false)
    };
    for path in &paths {
        let option = if from_env {
            "SSLKEYLOGFILE"
        } else {
            "--keylog"
        };
        match keys.load_file(path) {
            Ok(summary) => print_key_log_warnings(&summary),
            Err(e) => {
                let hint = if live && e.kind() == std::io::ErrorKind::NotFound {
                    " (create it first, e.g. `touch FILE`, if the browser will write it later)"
                } else {
                    ""
                };
                return Err(format!(
                    "{option} {}: cannot read the key log: {e}{hint}",
                    path.display()
                ));
            }
        }
    }
    Ok(Arc::new(keys))
}

fn print_key_log_warnings(summary: &crate::record::tls::KeyLogSummary) {
    for w in &summary.warnings {
        eprintln!(
            "wsprobe: {}:{}: {} (line ignored)",
            summary.source, w.line, w.message
        );
    }
    let more = summary
        .malformed
        .saturating_sub(summary.warnings.len() as u64);
    if more > 0 {
        eprintln!(
            "wsprobe: {}: {more} more malformed lines ignored",
            summary.source
        );
    }
}

/// Puts the key-log summaries into the report summary and counts `keylog_malformed`;
/// returns whether that matches `--fail-on`.
pub fn add_key_logs(summary: &mut Summary, keys: &KeyStore, fail_on: &FailOn) -> bool {
    summary.key_logs = keys.summaries();
    let malformed: u64 = summary.key_logs.iter().map(|k| k.malformed).sum();
    if malformed == 0 {
        return false;
    }
    let id = DiagnosticId::KeylogMalformed;
    *summary
        .diagnostics
        .entry(id.as_str().to_string())
        .or_default() += malformed;
    fail_on.ids.contains(&id) || fail_on.severity.is_some_and(|s| id.severity() >= s)
}
