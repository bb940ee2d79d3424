//! Wire types of the JSON report, schema_version 1 (`schema/report.v1.json`). The only file that
//! spells JSON field names: the contract's names are the floor, extra fields sit beside them.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::capture::InputSummary;
use crate::diag::{Diagnostic, Side};

/// Bumped when a contract field is renamed or removed.
pub const SCHEMA_VERSION: u32 = 1;

/// The whole `--format json` document.
#[derive(Debug, Serialize)]
pub struct Report<'a> {
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Producer.
    pub tool: Tool,
    /// One entry per input file or interface.
    pub inputs: &'a [InputSummary],
    /// Totals.
    pub summary: &'a Summary,
    /// Connections that carried an upgrade attempt or WebSocket frames.
    pub connections: &'a [ConnectionRecord],
}

/// Producer of the report.
#[derive(Debug, Clone, Serialize)]
pub struct Tool {
    /// `wsprobe`.
    pub name: &'static str,
    /// Crate version.
    pub version: &'static str,
}

impl Tool {
    /// This build.
    pub fn this() -> Tool {
        Tool {
            name: "wsprobe",
            version: env!("CARGO_PKG_VERSION"),
        }
    }
}

/// Totals over all inputs.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    /// Connections reported.
    pub connections: u64,
    /// Connections whose upgrade was accepted or that carried frames.
    pub websocket_connections: u64,
    /// Data messages plus control frames.
    pub messages: u64,
    /// Frames of every opcode.
    pub frames: u64,
    /// Diagnostic count per id.
    pub diagnostics: BTreeMap<String, u64>,
    /// TCP connections seen, reported or not.
    pub tcp_connections: u64,
    /// Outcome count (`clean`, `abnormal`, ...).
    pub outcomes: BTreeMap<String, u64>,
}

/// One end of a connection.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Address {
    /// IP address, IPv4 unmapped.
    pub ip: String,
    /// TCP port.
    pub port: u16,
}

/// The opening handshake.
#[derive(Debug, Clone, Default, Serialize)]
pub struct HandshakeRecord {
    /// Request target.
    pub path: String,
    /// `Host`.
    pub host: Option<String>,
    /// `Origin`.
    pub origin: Option<String>,
    /// `User-Agent`.
    pub user_agent: Option<String>,
    /// `Sec-WebSocket-Version` offered.
    pub version: Option<String>,
    /// Status of the answer; null if none was captured.
    pub status: Option<u16>,
    /// Reason phrase of the answer.
    pub reason: Option<String>,
    /// 101 with `Upgrade: websocket`.
    pub accepted: bool,
    /// `Sec-WebSocket-Accept` matches the key; null when it could not be checked.
    pub accept_valid: Option<bool>,
    /// Subprotocol chosen by the server.
    pub subprotocol: Option<String>,
    /// Subprotocols the client offered.
    pub offered_subprotocols: Vec<String>,
    /// Extensions accepted by the server.
    pub extensions: Option<String>,
    /// Extensions the client offered.
    pub offered_extensions: Option<String>,
    /// Capture time of the request.
    pub request_time: Option<f64>,
    /// Capture time of the answer.
    pub response_time: Option<f64>,
}

/// Frames of one direction by opcode.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct OpcodeCounts {
    /// Text first frames.
    pub text: u64,
    /// Binary first frames.
    pub binary: u64,
    /// Continuation frames.
    pub continuation: u64,
    /// Close frames.
    pub close: u64,
    /// Ping frames.
    pub ping: u64,
    /// Pong frames.
    pub pong: u64,
    /// Reserved opcodes.
    pub other: u64,
}

impl OpcodeCounts {
    /// All frames.
    pub fn total(&self) -> u64 {
        self.text
            + self.binary
            + self.continuation
            + self.close
            + self.ping
            + self.pong
            + self.other
    }
}

/// Per-direction pair of values.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct PerSide<T> {
    /// Client to server.
    pub client: T,
    /// Server to client.
    pub server: T,
}

impl<T> PerSide<T> {
    /// The value for one side.
    pub fn get(&self, side: Side) -> &T {
        match side {
            Side::Client => &self.client,
            Side::Server => &self.server,
        }
    }

    /// The value for one side, mutably.
    pub fn get_mut(&mut self, side: Side) -> &mut T {
        match side {
            Side::Client => &mut self.client,
            Side::Server => &mut self.server,
        }
    }
}

/// One data message or control frame.
#[derive(Debug, Clone, Serialize)]
pub struct MessageRecord {
    /// Time of the frame that completed it.
    pub time: f64,
    /// Sender.
    pub from: Side,
    /// `text`, `binary`, `close`, `ping`, `pong` or `reserved-N`.
    pub opcode: &'static str,
    /// Payload bytes after unmasking and inflating; null when it could not be inflated.
    pub length: Option<u64>,
    /// Payload bytes on the wire, all fragments.
    pub wire_length: u64,
    /// Frames that carried it.
    pub fragments: u64,
    /// RSV1 (permessage-deflate) on its first frame.
    pub compressed: bool,
    /// False when a TCP gap or the capture's end cut it.
    pub complete: bool,
    /// Close frames: the status code (1005 when absent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub close_code: Option<u16>,
    /// Payload (close: the reason) that is valid UTF-8.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Any other payload, base64.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base64: Option<String>,
    /// Present and true when the payload shown was cut (preview or size limit).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub truncated: Option<bool>,
    /// Why the payload could not be inflated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inflate_error: Option<String>,
    /// Present and true when the payload was inflated while part of the compression history was not
    /// captured (after a TCP gap, or in a capture that started mid-stream), and proven not to depend on
    /// it: exact, by another path than the normal one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inflated_after_gap: Option<bool>,
}

/// One direction's compressed messages after compression history was lost (a TCP gap, or a capture
/// that started mid-stream).
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct DeflateRecoveryRecord {
    /// Messages inflated exactly although part of the history was unknown (`inflated_after_gap`).
    pub recovered: u64,
    /// Messages not inflated because their compressed bytes, or the history they refer to, were not
    /// captured (`length: null`).
    pub unrecoverable: u64,
}

/// One frame header, with `--frames`.
#[derive(Debug, Clone, Serialize)]
pub struct FrameRecord {
    /// Capture time of the packet that completed the header.
    pub time: f64,
    /// Sender.
    pub from: Side,
    /// FIN bit.
    pub fin: bool,
    /// RSV1..RSV3 as a 3-bit number: 4 = RSV1, 2 = RSV2, 1 = RSV3.
    pub rsv: u8,
    /// `text`, `binary`, `continuation`, `close`, `ping`, `pong` or `reserved-N`.
    pub opcode: &'static str,
    /// MASK bit.
    pub masked: bool,
    /// Payload length from the header (the 16- or 64-bit extended length when used).
    pub payload_length: u64,
    /// Header bytes, 2..=14: fixed part, extended length and masking key.
    pub header_length: u8,
}

/// How the connection ended.
#[derive(Debug, Clone, Serialize)]
pub struct CloseRecord {
    /// First Close frame's code; 1005 for an empty Close; 1006 when TCP ended with no Close.
    pub code: Option<u16>,
    /// Close reason.
    pub reason: Option<String>,
    /// Who sent the first Close (for 1006: whose FIN/RST came first).
    pub initiator: Option<Side>,
    /// `clean`, `abnormal`, `incomplete`, `open` or `not_websocket`.
    pub outcome: &'static str,
    /// The code's registered name and usual cause.
    pub meaning: Option<String>,
    /// Code the other side answered with.
    pub reply_code: Option<u16>,
    /// Time of the first Close frame.
    pub time: Option<f64>,
    /// How TCP ended: `fin`, `rst` or null (still open).
    pub tcp_end: Option<&'static str>,
    /// Whose FIN or RST came first.
    pub tcp_end_from: Option<Side>,
    /// Time of that FIN or RST.
    pub tcp_end_time: Option<f64>,
    /// Seconds between the last WebSocket frame and the end of TCP.
    pub idle_before_end: Option<f64>,
    /// The last message before the end, as `client text 18 B`.
    pub last_message: Option<String>,
    /// One line for people: what happened.
    pub summary: String,
}

/// Ping/pong statistics.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PingRecord {
    /// Pings sent by the client.
    pub client_pings: u64,
    /// Pings sent by the server.
    pub server_pings: u64,
    /// Pongs that answered a ping.
    pub answered: u64,
    /// Pings with no answer.
    pub unanswered: u64,
    /// Pongs that answered nothing.
    pub unsolicited_pongs: u64,
    /// Smallest round trip, milliseconds.
    pub rtt_min_ms: Option<f64>,
    /// Median round trip, milliseconds.
    pub rtt_median_ms: Option<f64>,
    /// Largest round trip, milliseconds.
    pub rtt_max_ms: Option<f64>,
}

/// TCP facts that bear on the WebSocket analysis.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct TcpRecord {
    /// A SYN was captured (else the capture started mid-connection).
    pub syn_seen: bool,
    /// Holes in the byte streams.
    pub gaps: u64,
    /// Bytes in those holes.
    pub gap_bytes: u64,
    /// Segments that repeated bytes already seen.
    pub retransmissions: u64,
    /// Segments that arrived ahead of a hole.
    pub out_of_order: u64,
}

/// One connection's analysis.
#[derive(Debug, Clone, Serialize)]
pub struct ConnectionRecord {
    /// Connection number, in order of first packet.
    pub id: u64,
    /// The side that sent the upgrade request (else the side whose frames are masked).
    pub client: Address,
    /// The other side.
    pub server: Address,
    /// First packet's time.
    pub first_seen: f64,
    /// Last packet's time.
    pub last_seen: f64,
    /// The opening handshake, when captured.
    pub handshake: Option<HandshakeRecord>,
    /// Frames by opcode and direction.
    pub frames: PerSide<OpcodeCounts>,
    /// Data messages by direction.
    pub message_counts: PerSide<u64>,
    /// Payload bytes after inflating, by direction.
    pub payload_bytes: PerSide<u64>,
    /// Every message and control frame, with `--messages`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub messages: Option<Vec<MessageRecord>>,
    /// Every frame header in capture order, with `--frames` (at most
    /// [`crate::analysis::MAX_FRAMES_KEPT`]; `frames` counts them all).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frames_detail: Option<Vec<FrameRecord>>,
    /// How it ended.
    pub close: CloseRecord,
    /// Ping/pong pairing.
    pub ping: PingRecord,
    /// TCP facts.
    pub tcp: TcpRecord,
    /// Compressed messages after lost compression history, by direction; present when a direction
    /// had any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deflate_recovery: Option<PerSide<DeflateRecoveryRecord>>,
    /// Findings (at most [`crate::analysis::MAX_DIAGNOSTICS_PER_ID`] per id; counts are exact).
    pub diagnostics: Vec<Diagnostic>,
    /// Exact count per diagnostic id, including those not listed.
    pub diagnostic_counts: BTreeMap<String, u64>,
}
