//! The default terminal report: the inputs, one line per WebSocket connection (a second with
//! the full ending when the short one leaves something out), findings grouped by id, totals,
//! and what the capture held besides WebSocket. Every line fits the width given (the
//! terminal's, or COLUMNS, or 100), except with `--wide`, which prints every column in full.
//! With `--messages`, a log per connection like a browser's WebSocket inspector; with
//! `--frames`, a log of frame headers. Colour only on a terminal, and never with NO_COLOR.

mod live;
mod log;
mod rows;
mod summary;
mod text;
mod why;
mod wide;

use std::fmt::Write as _;

use super::Output;
use crate::capture::InputSummary;
use crate::diag::Severity;
use crate::record::{ConnectionRecord, Finding, Summary};
use crate::record::{Event, Sink};

use live::LiveLines;
use text::wrap;

/// Connections listed in full; beyond that only totals (use json for everything).
const MAX_ROWS: usize = 2000;

/// Narrowest layout attempted: below it lines may pass the width.
pub const MIN_WIDTH: usize = 60;

/// How the table report looks.
#[derive(Debug, Clone)]
pub struct TableOptions {
    /// ANSI colours (a terminal, NO_COLOR unset).
    pub colour: bool,
    /// `--messages`: a message log per connection.
    pub messages: bool,
    /// Columns every line fits in.
    pub width: usize,
    /// `--wide`: every column in full, however wide.
    pub wide: bool,
    /// The filters in force, in words (`--address :8080`), for the totals.
    pub filtered: Option<String>,
}

/// Builds the terminal report.
pub struct TableReport {
    out: Output,
    options: TableOptions,
    records: Vec<ConnectionRecord>,
    omitted: u64,
    /// Live capture: one line per event as it happens, before the final report.
    live: Option<LiveLines>,
    /// Findings across connections, for the "Why connections ended" section.
    findings: Vec<Finding>,
}

const RED: &str = "\x1b[31m";
const GREEN: &str = "\x1b[32m";
const YELLOW: &str = "\x1b[33m";
const CYAN: &str = "\x1b[36m";
const BOLD: &str = "\x1b[1m";
const RESET: &str = "\x1b[0m";

impl TableReport {
    /// Writes to `writer`.
    pub fn new(writer: Box<dyn std::io::Write>, options: TableOptions) -> Self {
        TableReport {
            out: Output::new(writer),
            options,
            records: Vec::new(),
            omitted: 0,
            live: None,
            findings: Vec::new(),
        }
    }

    /// Also prints one line per event as it happens (live capture), flushed at once.
    pub fn with_live_events(mut self) -> Self {
        self.live = Some(LiveLines::default());
        self
    }

    fn width(&self) -> usize {
        self.options.width.max(MIN_WIDTH)
    }

    fn colour(&self, code: &str, text: &str) -> String {
        if self.options.colour && !text.is_empty() {
            format!("{code}{text}{RESET}")
        } else {
            text.to_string()
        }
    }

    fn write_line(&mut self, line: &str) {
        self.out.write_all(line.as_bytes());
        self.out.flush();
    }

    /// The inputs, one line each.
    fn inputs(&self, inputs: &[InputSummary], text: &mut String) {
        for input in inputs {
            let mut line = format!(
                "{} ({}, {}): {} packets",
                input.path,
                input.format,
                input.link_types.join("+"),
                input.packets
            );
            if let Some(n) = input.filtered_out {
                let _ = write!(line, ", {} kept by -f", input.packets.saturating_sub(n));
            }
            if let Some(n) = input.dropped_by_kernel {
                let _ = write!(line, ", {n} dropped by the kernel");
            }
            if let Some(e) = &input.error {
                let _ = write!(line, " — DAMAGED: {e}; analysed up to there");
            }
            for l in wrap(&line, self.width(), 4) {
                let _ = writeln!(text, "{l}");
            }
        }
    }

    /// The connection table with its title and legend.
    fn connections(&self, text: &mut String) {
        let max = self.width();
        let records = &self.records;
        let first = records
            .iter()
            .map(|r| r.first_seen)
            .fold(f64::INFINITY, f64::min);
        if self.options.wide {
            let _ = writeln!(
                text,
                "\n{}",
                wide::connection_table(records, self.options.colour)
            );
            return;
        }
        let paint = |s: &str, outcome: &str| match outcome {
            "clean" => self.colour(GREEN, s),
            "abnormal" => self.colour(RED, s),
            "incomplete" | "not_websocket" => self.colour(YELLOW, s),
            _ => s.to_string(),
        };
        let laid = rows::connection_table(records, max, &paint);
        let mut title = format!(
            "{} on {} (times UTC)",
            if records.len() == 1 {
                "1 connection".to_string()
            } else {
                format!("{} connections", records.len())
            },
            text::date(first)
        );
        if let Some(server) = &laid.common_server {
            let _ = write!(title, ", all to {server}");
        }
        text.push('\n');
        for l in wrap(&title, max, 4) {
            let _ = writeln!(text, "{l}");
        }
        let mut lines = laid.lines.into_iter();
        if let Some(header) = lines.next() {
            let _ = writeln!(text, "{}", self.colour(BOLD, &header));
        }
        for l in lines {
            let _ = writeln!(text, "{l}");
        }
        // The legend on one line: the long wording where it fits, else the short one.
        let legend = |long: bool| {
            let mut parts = Vec::new();
            if laid.shown.contains(&"c→s") {
                parts.push(if long {
                    "c→s, s→c: data messages, bytes"
                } else {
                    "c→s/s→c: messages, bytes"
                });
            }
            if laid.shown.contains(&"pings") {
                parts.push(if long {
                    "pings: sent/answered, median RTT"
                } else {
                    "pings: sent/answered, RTT"
                });
            }
            parts.push("cli/srv: client/server");
            format!("({})", parts.join("; "))
        };
        let long = legend(true);
        let legend = if text::width(&long) <= max {
            long
        } else {
            legend(false)
        };
        for l in wrap(&legend, max, 1) {
            let _ = writeln!(text, "{l}");
        }
    }
}

impl Sink for TableReport {
    fn event(&mut self, event: &Event<'_>) {
        let width = self.width();
        let Some(live) = &mut self.live else {
            return;
        };
        if let Some(line) = live.event(event, width) {
            self.write_line(&line);
        }
    }

    fn output_failed(&self) -> bool {
        self.out.failed()
    }

    fn finding_established(&mut self, f: &Finding) {
        let width = self.width();
        let Some(live) = &mut self.live else {
            return;
        };
        if let Some(line) = live.finding(f, width) {
            self.write_line(&line);
        }
    }

    fn findings(&mut self, findings: &[Finding]) {
        self.findings = findings.to_vec();
    }

    fn connection(&mut self, record: ConnectionRecord) {
        let width = self.width();
        if let Some(live) = &mut self.live {
            let line = live.ended(&record, width);
            self.write_line(&line);
        }
        if self.records.len() < MAX_ROWS {
            self.records.push(record);
        } else {
            self.omitted += 1;
        }
    }

    fn finish(&mut self, inputs: &[InputSummary], summary: &Summary) -> std::io::Result<()> {
        self.records.sort_by_key(|r| r.id);
        let max = self.width();
        let mut text = String::new();
        if self.live.is_some() {
            text.push('\n'); // after the event lines
        }
        self.inputs(inputs, &mut text);
        if self.records.is_empty() {
            match &self.options.filtered {
                Some(f) if summary.tcp_connections == 0 => {
                    let _ = writeln!(
                        text,
                        "\nNo TCP connection matches {f} (of {} in the input).",
                        summary.unfiltered_tcp_connections
                    );
                }
                Some(f) => {
                    let _ = writeln!(
                        text,
                        "\nNo WebSocket traffic or upgrade attempts matching {f}."
                    );
                }
                None => text.push_str("\nNo WebSocket traffic or upgrade attempts found.\n"),
            }
        } else {
            self.connections(&mut text);
            if self.omitted > 0 {
                let _ = writeln!(
                    text,
                    "({} more connections not listed: use --format json)",
                    self.omitted
                );
            }
        }
        let log_width = if self.options.wide { usize::MAX } else { max };
        for r in &self.records {
            for l in log::frames(r, log_width) {
                let _ = writeln!(text, "{l}");
            }
        }
        if self.options.messages {
            for r in &self.records {
                for l in log::messages(r, log_width) {
                    let _ = writeln!(text, "{l}");
                }
            }
        }
        let paint = |s: &str, severity: Severity| match severity {
            Severity::Error => self.colour(RED, s),
            Severity::Warning => self.colour(YELLOW, s),
            Severity::Info => self.colour(CYAN, s),
        };
        let sure = |s: &str, confidence: f64| match confidence {
            c if c >= 0.8 => self.colour(GREEN, s),
            c if c >= 0.5 => self.colour(YELLOW, s),
            _ => s.to_string(),
        };
        for l in why::section(&self.findings, summary, log_width, &sure).unwrap_or_default() {
            let _ = writeln!(text, "{l}");
        }
        for l in summary::diagnostics(&self.records, log_width, &paint) {
            let _ = writeln!(text, "{l}");
        }
        text.push('\n');
        let totals = summary::totals(summary, self.options.filtered.as_deref(), max);
        for (i, l) in totals.iter().enumerate() {
            let l = if i == 0 {
                self.colour(BOLD, l)
            } else {
                l.clone()
            };
            let _ = writeln!(text, "{l}");
        }
        self.out.write_all(text.as_bytes());
        self.out.result()
    }
}
