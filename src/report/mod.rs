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
    /// What [`Output::serialize`] has formatted and not yet written.
    staging: Vec<u8>,
}

/// Bytes [`Output::serialize`] gathers before writing them.
const STAGING: usize = 64 << 10;

impl Output {
    pub(crate) fn new(writer: Box<dyn std::io::Write>) -> Self {
        Output {
            writer,
            error: None,
            staging: Vec::new(),
        }
    }

    /// Writes `value` as JSON. serde_json writes token by token (a key, a colon, a number):
    /// they gather in a small buffer of ours, not one by one through the `dyn Write` (that
    /// cost more than the formatting: a quarter of a small-message run's instructions), and
    /// the buffer stays small, unlike a string of a whole record listing many messages.
    pub(crate) fn serialize<T: serde::Serialize + ?Sized>(
        &mut self,
        value: &T,
        pretty: bool,
    ) -> serde_json::Result<()> {
        let mut staged = Staged(self);
        let result = if pretty {
            serde_json::to_writer_pretty(&mut staged, value)
        } else {
            crate::record::compact_json::write(&mut staged, value)
        };
        staged.drain();
        result
    }

    pub(crate) fn write_all(&mut self, bytes: &[u8]) {
        if self.error.is_none()
            && let Err(e) = self.writer.write_all(bytes)
        {
            self.error = Some(e);
        }
    }

    pub(crate) fn flush(&mut self) {
        debug_assert!(self.staging.is_empty(), "bug: staged bytes left behind");
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

    /// Makes the output fail with `error` (unless it already failed).
    pub(crate) fn fail(&mut self, error: std::io::Error) {
        self.error.get_or_insert(error);
    }

    /// Has writing failed (e.g. the reader of a pipe went away)?
    pub(crate) fn failed(&self) -> bool {
        self.error.is_some()
    }
}

/// [`Output::serialize`]'s writer: errors are remembered by the output, never returned.
struct Staged<'a>(&'a mut Output);

impl Staged<'_> {
    fn drain(&mut self) {
        let mut staging = std::mem::take(&mut self.0.staging);
        self.0.write_all(&staging);
        staging.clear();
        self.0.staging = staging;
    }
}

impl crate::record::compact_json::JsonOut for Staged<'_> {
    #[inline]
    fn put(&mut self, piece: &[u8]) {
        if self.0.staging.len() + piece.len() > STAGING {
            self.drain();
        }
        if piece.len() >= STAGING {
            self.0.write_all(piece);
        } else {
            self.0.staging.extend_from_slice(piece);
        }
    }

    #[inline]
    fn buffer(&mut self, n: usize) -> Option<&mut Vec<u8>> {
        if n > STAGING {
            return None;
        }
        if self.0.staging.len() + n > STAGING {
            self.drain();
        }
        Some(&mut self.0.staging)
    }

    #[inline]
    fn put_quoted(&mut self, text: &[u8]) {
        if self.0.staging.len() + text.len() + 2 > STAGING {
            self.put(b"\"");
            self.put(text);
            self.put(b"\"");
            return;
        }
        let staging = &mut self.0.staging;
        staging.push(b'"');
        staging.extend_from_slice(text);
        staging.push(b'"');
    }
}

impl std::io::Write for Staged<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        crate::record::compact_json::JsonOut::put(self, buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// A writer whose bytes the test reads back.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn serialized_values_come_out_whole_and_in_order_around_the_staging_buffer() {
        let written = Shared::default();
        let mut out = Output::new(Box::new(written.clone()));
        // Small tokens, a string longer than the staging buffer, a string that does not fit
        // in what is left of it, then small tokens again.
        let value = serde_json::json!({
            "a": (0..5000).collect::<Vec<u32>>(),
            "long": "x".repeat(3 * STAGING),
            "almost": "y".repeat(STAGING - 10),
            "tail": ["é\"\n", 1.5, null],
        });
        out.serialize(&value, false).unwrap();
        out.write_all(b"\n");
        out.serialize(&value, true).unwrap();
        out.result().unwrap();
        let text = String::from_utf8(written.0.lock().unwrap().clone()).unwrap();
        let (compact, pretty) = text.split_once('\n').unwrap();
        assert_eq!(compact, serde_json::to_string(&value).unwrap());
        assert_eq!(pretty, serde_json::to_string_pretty(&value).unwrap());
    }
}
