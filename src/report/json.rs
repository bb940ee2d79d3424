//! `--format json`: one document. Connections are written as they finish, so memory does not
//! grow with the capture; inputs and summary follow them (JSON objects are unordered).

use super::model::{ConnectionRecord, SCHEMA_VERSION, Summary, Tool};
use super::{Event, Output, Sink};
use crate::capture::InputSummary;

/// Streams the JSON report.
pub struct JsonReport {
    out: Output,
    connections: usize,
    pretty: bool,
}

impl JsonReport {
    /// Writes to `writer`; `pretty` indents.
    pub fn new(writer: Box<dyn std::io::Write>, pretty: bool) -> Self {
        let mut out = Output::new(writer);
        let tool = serde_json::to_string(&Tool::this()).expect("bug: tool serializes");
        out.write_all(
            format!("{{\"schema_version\":{SCHEMA_VERSION},\"tool\":{tool},\"connections\":[")
                .as_bytes(),
        );
        JsonReport {
            out,
            connections: 0,
            pretty,
        }
    }
}

impl Sink for JsonReport {
    fn event(&mut self, _event: &Event<'_>) {}

    fn connection(&mut self, record: ConnectionRecord) {
        if self.connections > 0 {
            self.out.write_all(b",");
        }
        self.connections += 1;
        let text = if self.pretty {
            serde_json::to_string_pretty(&record)
        } else {
            serde_json::to_string(&record)
        }
        .expect("bug: record serializes");
        self.out.write_all(b"\n");
        self.out.write_all(text.as_bytes());
    }

    fn output_failed(&self) -> bool {
        self.out.failed()
    }

    fn finish(&mut self, inputs: &[InputSummary], summary: &Summary) -> std::io::Result<()> {
        let inputs = serde_json::to_string(inputs).expect("bug: inputs serialize");
        let summary = serde_json::to_string(summary).expect("bug: summary serializes");
        self.out.write_all(
            format!("\n],\n\"inputs\":{inputs},\n\"summary\":{summary}\n}}\n").as_bytes(),
        );
        self.out.result()
    }
}
