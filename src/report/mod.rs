//! Reporters: analysis events and finished connection records in (the [`crate::record::Sink`] interface of
//! [`crate::record`]), output for people (table, html), programs (json, jsonl), browsers' devtools
//! (har) and fleets of captures (tables under `--out-dir`) out.

pub mod app_text;
pub mod har;
pub mod html;
pub mod ids;
pub mod json;
pub mod jsonl;
pub mod table;
pub mod tables;
pub mod timefmt;

use crate::capture::InputSummary;
use crate::record::{ConnectionRecord, Event, Finding, OtherConnection, Sink, Summary};

/// Two reporters at once: the `--format` one on standard output and the `--out-dir` tables.
pub struct Tee {
    primary: Box<dyn Sink>,
    tables: tables::TableWriter,
    /// The primary reporter does not list messages (jsonl streams them as events): the record
    /// carries them only for the tables.
    strip_messages: bool,
}

impl Tee {
    /// `primary` and `tables`; `strip_messages` hides the record's message list from `primary`.
    pub fn new(primary: Box<dyn Sink>, tables: tables::TableWriter, strip_messages: bool) -> Self {
        Tee {
            primary,
            tables,
            strip_messages,
        }
    }
}

impl Sink for Tee {
    fn event(&mut self, event: &Event<'_>) {
        self.primary.event(event);
    }

    fn connection(&mut self, mut record: ConnectionRecord) {
        self.tables.write_connection(&record);
        if self.strip_messages {
            record.messages = None;
        }
        self.primary.connection(record);
    }

    fn other_connection(&mut self, connection: &OtherConnection) {
        self.primary.other_connection(connection);
    }

    fn finding_established(&mut self, finding: &Finding) {
        self.primary.finding_established(finding);
    }

    fn findings(&mut self, findings: &[Finding]) {
        self.tables.findings(findings);
        self.primary.findings(findings);
    }

    fn tick(&mut self, now: f64) {
        self.primary.tick(now);
    }

    fn finish(&mut self, inputs: &[InputSummary], summary: &Summary) -> std::io::Result<()> {
        // Both are finished even when one fails; the first error is reported.
        let tables = self.tables.finish(inputs, summary);
        let primary = self.primary.finish(inputs, summary);
        primary.and(tables)
    }

    fn output_failed(&self) -> bool {
        self.primary.output_failed() || self.tables.output_failed()
    }
}

/// Writes and flushes, remembering the first error (a closed pipe ends the run quietly).
pub(crate) struct Output {
    writer: Box<dyn std::io::Write>,
    /// First write error.
    pub error: Option<std::io::Error>,
}

impl Output {
    pub(crate) fn new(writer: Box<dyn std::io::Write>) -> Self {
        Output {
            writer,
            error: None,
        }
    }

    pub(crate) fn write_all(&mut self, bytes: &[u8]) {
        if self.error.is_none()
            && let Err(e) = self.writer.write_all(bytes)
        {
            self.error = Some(e);
        }
    }

    pub(crate) fn flush(&mut self) {
        if self.error.is_none()
            && let Err(e) = self.writer.flush()
        {
            self.error = Some(e);
        }
    }

    pub(crate) fn result(&mut self) -> std::io::Result<()> {
        self.flush();
        match self.error.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Has writing failed (e.g. the reader of a pipe went away)?
    pub(crate) fn failed(&self) -> bool {
        self.error.is_some()
    }
}
