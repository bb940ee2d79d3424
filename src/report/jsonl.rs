//! `--format jsonl`: one event per line, flushed per line so `| jq` works on a live capture.
//! Each line has `event` (its kind), `connection` (the id) and the event's fields, in that
//! order (`event` first, so that `grep '^{"event":"message"'` picks a kind).

use serde::Serialize;
use serde::ser::SerializeStruct;

use super::Output;
use crate::capture::InputSummary;
use crate::diag::Side;
use crate::record::{ConnectionRecord, Finding, Summary};
use crate::record::{Event, Sink};

/// Streams events.
pub struct JsonlReport {
    out: Output,
    flush_each: bool,
}

/// `{"event": EVENT, "connection": ID, "time": TIME, KEY: VALUE}`, the shape of most lines.
/// Serialized straight to the output: building a `serde_json::Value` first (the `json!`
/// macro) copied every record and message into a tree of maps and doubled the run's time.
struct Line<'a, T, V: ?Sized> {
    event: &'static str,
    connection: u64,
    time: T,
    key: &'static str,
    value: &'a V,
}

impl<T: Serialize, V: Serialize + ?Sized> Serialize for Line<'_, T, V> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // A struct, not a map: its field names are static, and written without a scan.
        let mut line = serializer.serialize_struct("Line", 4)?;
        line.serialize_field("event", self.event)?;
        line.serialize_field("connection", &self.connection)?;
        line.serialize_field("time", &self.time)?;
        line.serialize_field(self.key, self.value)?;
        line.end()
    }
}

#[derive(Serialize)]
struct ConnectionLine<'a> {
    event: &'static str,
    connection: u64,
    time: f64,
    client: &'a crate::record::Address,
    server: &'a crate::record::Address,
}

#[derive(Serialize)]
struct CloseLine<'a> {
    event: &'static str,
    connection: u64,
    time: f64,
    from: Side,
    code: u16,
    reason: &'a str,
}

#[derive(Serialize)]
struct FindingLine<'a> {
    event: &'static str,
    time: Option<f64>,
    #[serde(rename = "final")]
    is_final: bool,
    finding: &'a Finding,
}

#[derive(Serialize)]
struct SummaryLine<'a> {
    event: &'static str,
    inputs: &'a [InputSummary],
    summary: &'a Summary,
}

impl JsonlReport {
    /// Writes to `writer`; `flush_each` flushes after every line (live use).
    pub fn new(writer: Box<dyn std::io::Write>, flush_each: bool) -> Self {
        JsonlReport {
            out: Output::new(writer),
            flush_each,
        }
    }

    fn line<T: Serialize + ?Sized>(&mut self, value: &T) {
        if self.out.failed() {
            return;
        }
        // The only error possible is reading a message spool back, and jsonl has none.
        if let Err(e) = self.out.serialize(value, false) {
            self.out.fail(std::io::Error::other(e));
        }
        self.out.write_all(b"\n");
        if self.flush_each {
            self.out.flush();
        }
    }
}

impl Sink for JsonlReport {
    fn event(&mut self, event: &Event<'_>) {
        match *event {
            Event::ConnectionSeen {
                id,
                time,
                client,
                server,
            } => self.line(&ConnectionLine {
                event: "connection",
                connection: id,
                time,
                client,
                server,
            }),
            Event::Handshake { id, handshake } => self.line(&Line {
                event: "handshake",
                connection: id,
                time: handshake.response_time.or(handshake.request_time),
                key: "handshake",
                value: handshake,
            }),
            Event::Message { id, message } => self.line(&Line {
                event: "message",
                connection: id,
                time: message.time,
                key: "message",
                value: message,
            }),
            Event::Frame { id, frame } => self.line(&Line {
                event: "frame",
                connection: id,
                time: frame.time,
                key: "frame",
                value: frame,
            }),
            Event::Diagnostic { id, diagnostic } => self.line(&Line {
                event: "diagnostic",
                connection: id,
                time: diagnostic.time,
                key: "diagnostic",
                value: diagnostic,
            }),
            Event::Close {
                id,
                time,
                from,
                code,
                reason,
            } => self.line(&CloseLine {
                event: "close",
                connection: id,
                time,
                from,
                code,
                reason,
            }),
        }
    }

    fn connection(&mut self, record: ConnectionRecord) {
        self.line(&Line {
            event: "connection_ended",
            connection: record.id,
            time: record.last_seen,
            key: "record",
            value: &record,
        });
    }

    fn output_failed(&self) -> bool {
        self.out.failed()
    }

    fn finding_established(&mut self, finding: &Finding) {
        self.line(&FindingLine {
            event: "finding",
            time: finding.time,
            is_final: false,
            finding,
        });
    }

    fn findings(&mut self, findings: &[Finding]) {
        for finding in findings {
            self.line(&FindingLine {
                event: "finding",
                time: finding.time,
                is_final: true,
                finding,
            });
        }
    }

    fn finish(&mut self, inputs: &[InputSummary], summary: &Summary) -> std::io::Result<()> {
        self.line(&SummaryLine {
            event: "summary",
            inputs,
            summary,
        });
        self.out.result()
    }
}
