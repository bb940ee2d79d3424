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
    /// What follows comes from this step of the run (a sharded run merges by it).
    fn origin(&mut self, _position: Position) {}
    /// A connection number was handed out (a sharded run renumbers in this order).
    fn id_allocated(&mut self, _id: u64) {}
    /// A refused plain request's record, kept until the end of the capture: reported then
    /// if another connection upgraded its `target` (a sharded run decides this at the merge).
    fn waiting(&mut self, _target: String, _record: ConnectionRecord) {}
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

/// Where the analysis is, in the order a single-threaded run does things: before each packet
/// the idle sweep (if one is due) in stages, then the packet; at the end every connection
/// finishes, then the late records. A sharded run tags what each thread reports with it and
/// merges by it, so that the report is the single-threaded one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    /// The packet's number in the run (from 1); [`Position::END`] after the last.
    pub seq: u64,
    /// The step: one of the `Position::*` stages.
    pub stage: u8,
    /// Within a sweep or end stage, the connection (its id) or rank it is at; 0 for packets.
    pub key: u64,
}

impl Position {
    /// Sweep stage: quiet connections stop waiting for late data.
    pub const TICK: u8 = 0;
    /// Sweep stage: connections idle past their timeout finish.
    pub const EXPIRE: u8 = 1;
    /// Sweep stage: connections whose TCP ended with bytes missing finish.
    pub const LINGER: u8 = 2;
    /// Sweep stage: past `--max-idle-connections`, the longest idle finish (key: their rank).
    pub const IDLE_CAP: u8 = 3;
    /// The packet itself.
    pub const PACKET: u8 = 8;
    /// End of input: every connection finishes, in order of id.
    pub const FINAL: u8 = 9;
    /// End of input: refused plain requests to endpoints upgraded elsewhere (key: their order).
    pub const LATE: u8 = 10;
    /// The `seq` of the end of input.
    pub const END: u64 = (1 << 59) - 1;

    /// The packet numbered `seq`.
    pub fn packet(seq: u64) -> Position {
        Position {
            seq,
            stage: Position::PACKET,
            key: 0,
        }
    }

    /// A stage of the sweep before packet `seq`, or of the end of input.
    pub fn step(seq: u64, stage: u8, key: u64) -> Position {
        Position { seq, stage, key }
    }
}
