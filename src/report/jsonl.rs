//! `--format jsonl`: one event per line, flushed per line so `| jq` works on a live capture.
//! Each line has `event` (its kind), `connection` (the id) and the event's fields.

use serde::Serialize;
use serde_json::json;

use super::Output;
use crate::capture::InputSummary;
use crate::record::{ConnectionRecord, Finding, Summary};
use crate::record::{Event, Sink};

/// Streams events.
pub struct JsonlReport {
    out: Output,
    flush_each: bool,
}

impl JsonlReport {
    /// Writes to `writer`; `flush_each` flushes after every line (live use).
    pub fn new(writer: Box<dyn std::io::Write>, flush_each: bool) -> Self {
        JsonlReport {
            out: Output::new(writer),
            flush_each,
        }
    }

    fn line<T: Serialize>(&mut self, value: &T) {
        if self.out.failed() {
            return;
        }
        let mut text = serde_json::to_string(value).expect("bug: event serializes");
        text.push('\n');
        self.out.write_all(text.as_bytes());
        if self.flush_each {
            self.out.flush();
        }
    }
}

impl Sink for JsonlReport {
    fn event(&mut self, event: &Event<'_>) {
        let value = match event {
            Event::ConnectionSeen {
                id,
                time,
                client,
                server,
            } => {
                json!({"event": "connection", "connection": id, "time": time, "client": client, "server": server})
            }
            Event::Handshake { id, handshake } => {
                json!({"event": "handshake", "connection": id, "time": handshake.response_time.or(handshake.request_time), "handshake": handshake})
            }
            Event::Message { id, message } => {
                json!({"event": "message", "connection": id, "time": message.time, "message": message})
            }
            Event::Frame { id, frame } => {
                json!({"event": "frame", "connection": id, "time": frame.time, "frame": frame})
            }
            Event::Diagnostic { id, diagnostic } => {
                json!({"event": "diagnostic", "connection": id, "time": diagnostic.time, "diagnostic": diagnostic})
            }
            Event::Close {
                id,
                time,
                from,
                code,
                reason,
            } => {
                json!({"event": "close", "connection": id, "time": time, "from": from, "code": code, "reason": reason})
            }
        };
        self.line(&value);
    }

    fn connection(&mut self, record: ConnectionRecord) {
        let value = json!({"event": "connection_ended", "connection": record.id, "time": record.last_seen, "record": record});
        self.line(&value);
    }

    fn output_failed(&self) -> bool {
        self.out.failed()
    }

    fn finding_established(&mut self, finding: &Finding) {
        let value =
            json!({"event": "finding", "time": finding.time, "final": false, "finding": finding});
        self.line(&value);
    }

    fn findings(&mut self, findings: &[Finding]) {
        for finding in findings {
            let value = json!({"event": "finding", "time": finding.time, "final": true, "finding": finding});
            self.line(&value);
        }
    }

    fn finish(&mut self, inputs: &[InputSummary], summary: &Summary) -> std::io::Result<()> {
        let value = json!({"event": "summary", "inputs": inputs, "summary": summary});
        self.line(&value);
        self.out.result()
    }
}
