//! What the report says about WebSocket over HTTP/2 (RFC 8441): the stream a WebSocket
//! connection entry rides on (contract field `http2`: `stream_id`, `end`), and the facts of the
//! HTTP/2 connection that carries it.

use serde::Serialize;

use super::model::PerSide;
use crate::diag::Side;

/// The HTTP/2 stream of one WebSocket connection entry.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Http2StreamRecord {
    /// HTTP/2 stream identifier.
    pub stream_id: u32,
    /// How the stream ended: `end_stream`, `rst_stream CODE` (the RST_STREAM error code's name,
    /// e.g. `rst_stream CANCEL`), `goaway`, or null (open, or the transport ended under it).
    pub end: Option<String>,
    /// Who ended it: the first END_STREAM's sender, or the RST_STREAM's or GOAWAY's.
    pub end_from: Option<Side>,
    /// When.
    pub end_time: Option<f64>,
    /// END_STREAM seen from each side.
    pub end_stream: PerSide<bool>,
    /// The extended CONNECT was read; false when the stream was recognised from its DATA
    /// (a probable RFC 8441 WebSocket, handshake not seen).
    pub handshake_seen: bool,
    /// Flow-control stalls (RFC 9113 §5.2): a sender's credit used up and its DATA waiting
    /// for a WINDOW_UPDATE. Null when the windows could not be followed (the connection was
    /// not seen from its preface, or bytes were lost).
    pub flow_control: Option<Http2FlowRecord>,
    /// The HTTP/2 connection it rides on.
    pub connection: Http2ConnectionRecord,
}

/// How long each sender of a WebSocket stream waited for flow-control credit.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Http2FlowRecord {
    /// Times each side's credit ran out (however briefly).
    pub stalls: PerSide<u64>,
    /// Seconds each side waited in all.
    pub stalled_s: PerSide<f64>,
    /// The longest wait, seconds.
    pub longest_s: f64,
    /// A side still waiting for credit when its half of the stream, or the capture, ended.
    pub stalled_at_end: Option<Side>,
}

/// One HTTP/2 connection's facts.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Http2ConnectionRecord {
    /// SETTINGS_ENABLE_CONNECT_PROTOCOL from the server; null when its SETTINGS were not seen
    /// or did not carry it.
    pub enable_connect_protocol: Option<bool>,
    /// The server's SETTINGS were captured.
    pub server_settings_seen: bool,
    /// WebSocket streams (extended CONNECT, or recognised from their DATA).
    pub websocket_streams: u64,
    /// Other streams (ordinary requests and pushes).
    pub other_streams: u64,
    /// The first of those, as `GET /index.html 200`.
    pub other: Vec<Http2OtherStream>,
    /// The first GOAWAY.
    pub goaway: Option<Http2GoAwayRecord>,
    /// PING frames (not acknowledgements) by sender.
    pub pings: PerSide<u64>,
    /// Some header fields were unreadable (HPACK state missing: capture started late or lost
    /// bytes, or a block past a limit).
    pub headers_unreadable: bool,
    /// Decoding stopped on a protocol error.
    pub decoding_stopped: bool,
}

/// An ordinary stream on an HTTP/2 connection.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Http2OtherStream {
    /// Stream identifier.
    pub stream_id: u32,
    /// `:method`.
    pub method: Option<String>,
    /// `:path`.
    pub path: Option<String>,
    /// Final `:status`.
    pub status: Option<u16>,
    /// Promised by the server.
    pub pushed: bool,
    /// RST_STREAM error code name, when reset.
    pub reset: Option<String>,
}

/// A GOAWAY.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Http2GoAwayRecord {
    /// Sender.
    pub from: Option<Side>,
    /// Capture time.
    pub time: f64,
    /// Highest stream the sender may have processed.
    pub last_stream_id: u32,
    /// Error code name (`NO_ERROR`, ...).
    pub error: String,
    /// Debug data (lossy UTF-8, cut).
    pub debug: String,
}
