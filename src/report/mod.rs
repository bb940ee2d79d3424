//! Reporters: analysis events and finished connection records in, output for people (table)
//! or programs (json, jsonl) out. Each reporter is a [`Sink`]; `model.rs` holds the wire types.

pub mod json;
pub mod jsonl;
pub mod model;
pub mod table;

use crate::capture::InputSummary;
use crate::diag::{Diagnostic, Side};
use model::{Address, ConnectionRecord, FrameRecord, HandshakeRecord, MessageRecord, Summary};

/// Something that happened, pushed as soon as it is known (for live use).
#[derive(Debug)]
pub enum Event<'a> {
    /// A connection became worth reporting (upgrade attempt or frames).
    ConnectionSeen {
        /// Connection id.
        id: u64,
        /// Time of its first packet.
        time: f64,
        /// Client end.
        client: &'a Address,
        /// Server end.
        server: &'a Address,
    },
    /// The upgrade got its answer.
    Handshake {
        /// Connection id.
        id: u64,
        /// The handshake so far.
        handshake: &'a HandshakeRecord,
    },
    /// A data message or control frame.
    Message {
        /// Connection id.
        id: u64,
        /// The message.
        message: &'a MessageRecord,
    },
    /// A frame header (with `--frames`).
    Frame {
        /// Connection id.
        id: u64,
        /// The frame.
        frame: &'a FrameRecord,
    },
    /// A finding.
    Diagnostic {
        /// Connection id.
        id: u64,
        /// The finding.
        diagnostic: &'a Diagnostic,
    },
    /// A Close frame.
    Close {
        /// Connection id.
        id: u64,
        /// When.
        time: f64,
        /// Sender.
        from: Side,
        /// Status code (1005 when absent).
        code: u16,
        /// Reason.
        reason: &'a str,
    },
}

/// Receives what the analysis finds. Output errors are remembered by the sink and reported by
/// [`Sink::finish`], so the hot path does not thread `Result`s.
pub trait Sink {
    /// An event as it happens.
    fn event(&mut self, event: &Event<'_>);
    /// A connection's final record.
    fn connection(&mut self, record: ConnectionRecord);
    /// End of all inputs: write what is left.
    fn finish(&mut self, inputs: &[InputSummary], summary: &Summary) -> std::io::Result<()>;
    /// Has writing failed (e.g. the reader of a pipe went away)? A live capture stops then.
    fn output_failed(&self) -> bool {
        false
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
