//! What the layer pushes out: its events.

use super::H2RequestHead;
use super::H2ResponseHead;
use super::frame::ErrorCode;
use crate::diag::{Diagnostic, Side};
use crate::stream::End;

/// SETTINGS values of one frame that the analysis shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SettingsInfo {
    /// SETTINGS_ENABLE_CONNECT_PROTOCOL (RFC 8441), when present.
    pub enable_connect_protocol: Option<bool>,
    /// SETTINGS_HEADER_TABLE_SIZE.
    pub header_table_size: Option<u32>,
    /// SETTINGS_MAX_CONCURRENT_STREAMS.
    pub max_concurrent_streams: Option<u32>,
    /// SETTINGS_INITIAL_WINDOW_SIZE.
    pub initial_window_size: Option<u32>,
    /// SETTINGS_MAX_FRAME_SIZE.
    pub max_frame_size: Option<u32>,
    /// SETTINGS_MAX_HEADER_LIST_SIZE.
    pub max_header_list_size: Option<u32>,
    /// SETTINGS_ENABLE_PUSH.
    pub enable_push: Option<bool>,
}

/// How one side's half of a WebSocket stream ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamEnd {
    /// The side sent END_STREAM (like a FIN: its half is closed).
    EndStream,
    /// The side sent RST_STREAM with this code: both halves are closed (like a TCP RST).
    Reset(ErrorCode),
    /// A GOAWAY ended it: the stream's id was above `last_stream_id` (never processed), or the
    /// connection's transport ended after the GOAWAY with the stream open.
    GoAway {
        /// The GOAWAY's last stream id.
        last_stream_id: u32,
        /// The GOAWAY's error code.
        error: ErrorCode,
    },
    /// The side's transport stream ended (FIN, RST, end of capture) with the stream open.
    Transport(End),
    /// Decoding stopped (`h2_protocol_error`); what followed is unknown.
    Undecodable,
}

impl StreamEnd {
    /// The report contract's `http2.end` value: `end_stream`, `rst_stream CANCEL`, `goaway`;
    /// `None` for an end the stream itself did not say.
    pub fn contract_label(&self) -> Option<String> {
        match self {
            StreamEnd::EndStream => Some("end_stream".into()),
            StreamEnd::Reset(code) => Some(format!("rst_stream {}", code.name())),
            StreamEnd::GoAway { .. } => Some("goaway".into()),
            StreamEnd::Transport(_) | StreamEnd::Undecodable => None,
        }
    }

    /// Words for people: "stream reset by the client (CANCEL)".
    pub fn describe(&self, from: Side) -> String {
        match self {
            StreamEnd::EndStream => format!("the {} ended the stream (END_STREAM)", from.as_str()),
            StreamEnd::Reset(code) => {
                format!("stream reset by the {} ({})", from.as_str(), code.name())
            }
            StreamEnd::GoAway {
                last_stream_id,
                error,
            } => format!(
                "connection shut down by the {} (GOAWAY {}, last stream {last_stream_id})",
                from.as_str(),
                error.name()
            ),
            StreamEnd::Transport(End::Fin) => {
                format!(
                    "the {} closed the TCP connection (FIN) with the stream open",
                    from.as_str()
                )
            }
            StreamEnd::Transport(End::Rst) => {
                "the TCP connection was reset (RST) with the stream open".to_string()
            }
            StreamEnd::Transport(End::CaptureEnd) => {
                "the capture ended with the stream open".into()
            }
            StreamEnd::Undecodable => "HTTP/2 decoding stopped (protocol error)".into(),
        }
    }
}

/// What the HTTP/2 layer tells the analysis.
#[derive(Debug, Clone)]
pub enum Http2Event {
    /// The client's connection preface (the connection is seen from its start).
    Preface,
    /// A SETTINGS frame.
    Settings {
        /// Sender.
        from: Side,
        /// An acknowledgement (no values).
        ack: bool,
        /// The values it carried.
        values: SettingsInfo,
    },
    /// An extended CONNECT for a WebSocket (RFC 8441 §4) on `stream_id`.
    WebSocketRequest {
        /// Stream.
        stream_id: u32,
        /// The request (`head.to_request_head()` converts to the HTTP/1.1 type).
        head: Box<H2RequestHead>,
    },
    /// The server's answer on a WebSocket stream (interim 1xx answers are not reported).
    WebSocketResponse {
        /// Stream.
        stream_id: u32,
        /// The response; a 2xx accepts.
        head: Box<H2ResponseHead>,
    },
    /// DATA of a stream whose headers were not seen (or not readable) parses as WebSocket frames:
    /// a probable RFC 8441 WebSocket, handshake not seen. Its DATA follows as `Out::Data`.
    ProbableWebSocket {
        /// Stream.
        stream_id: u32,
        /// Whose DATA showed it.
        from: Side,
    },
    /// One side's half of a WebSocket stream ended. After `Reset`, `GoAway` (refused stream) and
    /// `Undecodable` nothing more comes on the stream from either side.
    StreamEnded {
        /// Stream.
        stream_id: u32,
        /// The side whose half ended (for Reset and GoAway: the side that sent the frame).
        from: Side,
        /// How.
        how: StreamEnd,
    },
    /// A GOAWAY frame.
    GoAway {
        /// Sender.
        from: Side,
        /// Highest stream the sender may have processed.
        last_stream_id: u32,
        /// Why.
        error: ErrorCode,
        /// Debug data (lossy UTF-8, at most [`MAX_DEBUG_KEPT`](super::MAX_DEBUG_KEPT) bytes).
        debug: String,
    },
    /// A PING frame.
    Ping {
        /// Sender.
        from: Side,
        /// An answer to a PING.
        ack: bool,
        /// Opaque data.
        payload: [u8; 8],
    },
    /// An ordinary (non-WebSocket) stream finished, or was still open at the end.
    OrdinaryStream {
        /// Stream.
        stream_id: u32,
        /// `:method`, when read.
        method: Option<String>,
        /// `:path`, when read.
        path: Option<String>,
        /// Final `:status`, when read.
        status: Option<u16>,
        /// Promised by the server (PUSH_PROMISE).
        pushed: bool,
        /// RST_STREAM code, when reset.
        reset: Option<ErrorCode>,
    },
    /// A frame broke RFC 9113 beyond repair (see the `h2_protocol_error` diagnostic before it):
    /// nothing more is decoded on this connection.
    DecodingStopped {
        /// Whose bytes.
        from: Side,
    },
    /// A sender waited for flow-control credit on a WebSocket stream (every stall, however
    /// short; the long ones are also `h2_flow_control_stall` diagnostics).
    FlowStall(super::flow::Stall),
    /// A finding; `stream_id` names the WebSocket stream it belongs to, `None` the connection.
    Diagnostic {
        /// Stream, when the finding is about one WebSocket stream.
        stream_id: Option<u32>,
        /// The finding.
        diagnostic: Diagnostic,
    },
}
