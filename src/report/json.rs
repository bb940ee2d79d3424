//! `--format json`: one document. Connections are written as they finish, so memory does not
//! grow with the capture; inputs and summary follow them (JSON objects are unordered).

use super::Output;
use crate::capture::InputSummary;
use crate::record::{ConnectionRecord, Finding, SCHEMA_VERSION, Summary, Tool};
use crate::record::{Event, Sink};

/// Lets serde_json write into the report's output. Write errors are remembered by [`Output`]
/// (and end the run quietly for a closed pipe), so they never fail the serialization.
struct Stream<'a>(&'a mut Output);

impl std::io::Write for Stream<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write_all(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

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
        // twice.
        let mut stream = Stream(&mut self.out);
        if self.pretty {
            serde_json::to_writer_pretty(&mut stream, &record)
        } else {
            serde_json::to_writer(&mut stream, &record)
        }
        .expect("bug: record serializes");
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
