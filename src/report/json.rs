//! `--format json`: one document. Connections are written as they finish, so memory does not
//! grow with the capture; inputs and summary follow them (JSON objects are unordered).

use super::Output;
use crate::capture::InputSummary;
use crate::record::{ConnectionRecord, Finding, SCHEMA_VERSION, Summary, Tool};
use crate::record::{Event, Sink};

/// Streams the JSON report.
pub struct JsonReport {
    out: Output,
    connections: usize,
    pretty: bool,
    /// The document's opening has been written. It waits for the first connection or the end,
    /// so that a run that fails before either writes nothing at all.
    started: bool,
    findings: Vec<Finding>,
}

impl JsonReport {
    /// Writes to `writer`; `pretty` indents.
    pub fn new(writer: Box<dyn std::io::Write>, pretty: bool) -> Self {
        JsonReport {
            out: Output::new(writer),
            connections: 0,
            pretty,
            started: false,
            findings: Vec::new(),
        }
    }

    fn start(&mut self) {
        if self.started {
            return;
        }
        self.started = true;
        let tool = serde_json::to_string(&Tool::this()).expect("bug: tool serializes");
        self.out.write_all(
            format!("{{\"schema_version\":{SCHEMA_VERSION},\"tool\":{tool},\"connections\":[")
                .as_bytes(),
        );
    }
}

impl Sink for JsonReport {
    fn event(&mut self, _event: &Event<'_>) {}

    fn connection(&mut self, record: ConnectionRecord) {
        self.start();
        if self.connections > 0 {
            self.out.write_all(b",");
        }
        self.connections += 1;
        self.out.write_all(b"\n");
        // Streamed, not built as a string first: a record listing many messages would be held
        // twice. The only error possible is reading the message spool back (its file is gone
        // or the disk failed): the report cannot be whole, so the run fails with the reason.
        if let Err(e) = self.out.serialize(&record, self.pretty) {
            self.out.fail(std::io::Error::other(format!(
                "connection {}: {e}",
                record.id
            )));
        }
    }

    fn output_failed(&self) -> bool {
        self.out.failed()
    }

    fn findings(&mut self, findings: &[Finding]) {
        self.findings = findings.to_vec();
    }

    fn finish(&mut self, inputs: &[InputSummary], summary: &Summary) -> std::io::Result<()> {
        self.start();
        let findings = if self.pretty {
            serde_json::to_string_pretty(&self.findings)
        } else {
            serde_json::to_string(&self.findings)
        }
        .expect("bug: findings serialize");
        let inputs = serde_json::to_string(inputs).expect("bug: inputs serialize");
        let summary = serde_json::to_string(summary).expect("bug: summary serializes");
        self.out.write_all(
            format!(
                "\n],\n\"findings\":{findings},\n\"inputs\":{inputs},\n\"summary\":{summary}\n}}\n"
            )
            .as_bytes(),
        );
        self.out.result()
    }
}
