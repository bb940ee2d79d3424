//! The interface between the analysis and the reporters: events pushed as they happen, and
//! finished connection records.

use crate::capture::InputSummary;
use crate::diag::{Diagnostic, Side};
use crate::record::findings::Finding;
use crate::record::model::{
    Address, ConnectionRecord, FrameRecord, HandshakeRecord, MessageRecord, OtherConnection,
    Summary,
};

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
    /// A TCP connection that ended without being worth a record (no upgrade attempt, no
    /// frames): what it carried, for the summary.
    fn other_connection(&mut self, _connection: &OtherConnection) {}
    /// A pattern across connections became established while a live capture runs (`live
    /// --format jsonl`); it is reported again, with its final numbers, by [`Sink::findings`].
    fn finding_established(&mut self, _finding: &Finding) {}
    /// The findings across all connections, once, just before [`Sink::finish`].
    fn findings(&mut self, _findings: &[Finding]) {}
    /// Capture time moved on without a packet (a live capture on a quiet interface).
    fn tick(&mut self, _now: f64) {}
    /// End of all inputs: write what is left.
    fn finish(&mut self, inputs: &[InputSummary], summary: &Summary) -> std::io::Result<()>;
    /// Has writing failed (e.g. the reader of a pipe went away)? A live capture stops then.
    fn output_failed(&self) -> bool {
        false
    }
}
