//! Findings: RFC violations, abnormal endings, capture damage. They are values pushed as they
//! happen, never errors: no stage stops because a peer broke a rule it can step past.
//! The ids are the report contract's (`REPORT-CONTRACT.md`); the extra ones are marked.

use serde::{Serialize, Serializer};

/// Which end of a WebSocket connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// The side that sent the upgrade request (without one: the side whose frames are masked).
    Client,
    /// The other side.
    Server,
}

impl Side {
    /// The other side.
    pub fn peer(self) -> Side {
        match self {
            Side::Client => Side::Server,
            Side::Server => Side::Client,
        }
    }

    /// `client` or `server`.
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Client => "client",
            Side::Server => "server",
        }
    }
}

impl Serialize for Side {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// How bad a finding is. Ordered: `Info < Warning < Error`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// Worth knowing; not a fault.
    Info,
    /// Suspicious or lossy, but allowed.
    Warning,
    /// A protocol violation or a broken connection.
    Error,
}

impl Severity {
    /// `info`, `warning` or `error`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }

    /// Parses the words used by `--fail-on`.
    pub fn parse(word: &str) -> Option<Severity> {
        match word {
            "info" => Some(Severity::Info),
            "warning" => Some(Severity::Warning),
            "error" => Some(Severity::Error),
            _ => None,
        }
    }
}

impl Serialize for Severity {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

macro_rules! diagnostic_ids {
    ($($variant:ident = $name:literal, $severity:ident, $what:literal;)*) => {
        /// A diagnostic's stable id, as used in reports and by `--fail-on`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum DiagnosticId {
            $(#[doc = $what] $variant,)*
        }

        impl DiagnosticId {
            /// Every id, for `--fail-on` validation and documentation.
            pub const ALL: &'static [DiagnosticId] = &[$(DiagnosticId::$variant,)*];

            /// The snake_case id.
            pub fn as_str(self) -> &'static str {
                match self { $(DiagnosticId::$variant => $name,)* }
            }

            /// The id's fixed severity.
            pub fn severity(self) -> Severity {
                match self { $(DiagnosticId::$variant => Severity::$severity,)* }
            }

            /// One line saying when the id is raised.
            pub fn description(self) -> &'static str {
                match self { $(DiagnosticId::$variant => $what,)* }
            }

            /// Looks an id up by name.
            pub fn parse(name: &str) -> Option<DiagnosticId> {
                DiagnosticId::ALL.iter().copied().find(|id| id.as_str() == name)
            }
        }
    };
}

diagnostic_ids! {
    AbnormalClosure = "abnormal_closure", Error, "TCP ended (FIN/RST) with no Close frame: a 1006";
    CloseHandshakeIncomplete = "close_handshake_incomplete", Warning, "one side sent Close, the other never answered before TCP ended";
    HandshakeRejected = "handshake_rejected", Warning, "the upgrade request got a non-101 answer";
    HandshakeAcceptMismatch = "handshake_accept_mismatch", Error, "Sec-WebSocket-Accept does not match the key";
    HandshakeInvalid = "handshake_invalid", Error, "a required handshake header is missing or wrong";
    UnmaskedClientFrame = "unmasked_client_frame", Error, "client-to-server frame without the mask bit";
    MaskedServerFrame = "masked_server_frame", Error, "server-to-client frame with the mask bit";
    ReservedBitsSet = "reserved_bits_set", Error, "RSV1/2/3 set without a negotiated extension that defines it";
    ReservedOpcode = "reserved_opcode", Error, "opcode 3-7 or 0xB-0xF";
    ControlFrameFragmented = "control_frame_fragmented", Error, "a control frame with FIN=0";
    ControlFrameTooLong = "control_frame_too_long", Error, "a control frame payload over 125 bytes";
    InvalidUtf8 = "invalid_utf8", Error, "a text message or close reason that is not valid UTF-8";
    InvalidCloseCode = "invalid_close_code", Error, "a close code that must not be sent, or a 1-byte close payload";
    UnexpectedContinuation = "unexpected_continuation", Error, "a continuation frame with no message in progress";
    InterruptedFragmentedMessage = "interrupted_fragmented_message", Error, "a new data frame before the fragmented message finished";
    NonMinimalLength = "non_minimal_length", Warning, "a length encoded in more bytes than needed";
    DataAfterClose = "data_after_close", Error, "a frame after that side's Close";
    DecompressionFailed = "decompression_failed", Error, "a compressed message that does not inflate";
    PingUnanswered = "ping_unanswered", Warning, "a ping with no pong before the next ping, the close, or the end";
    UnsolicitedPong = "unsolicited_pong", Info, "a pong that answers no ping (allowed as a heartbeat)";
    TcpGap = "tcp_gap", Warning, "bytes missing from the capture; the affected messages are marked complete: false";
    MidstreamStart = "midstream_start", Info, "the capture starts after the handshake; frames found by resynchronising";
    // Beyond the contract's floor:
    InvalidFrameLength = "invalid_frame_length", Error, "a 64-bit payload length with its most significant bit set (RFC 6455 §5.2)";
    FrameResync = "frame_resync", Warning, "bytes that are not frames were skipped until frame boundaries were found again";
    DecompressionUnavailable = "decompression_unavailable", Warning, "a compressed message that cannot be inflated because earlier compressed data was not captured";
    LimitExceeded = "limit_exceeded", Warning, "a configured size limit was reached; the excess was counted, not kept";
    CaptureEndedMidFrame = "capture_ended_mid_frame", Info, "the capture ended inside a frame";
    TcpOverlapConflict = "tcp_overlap_conflict", Warning, "retransmitted TCP bytes differ from the bytes first seen";
    HandshakeUnanswered = "handshake_unanswered", Info, "an upgrade request with no captured answer";
    // HTTP/2 (RFC 9113, RFC 7541) and WebSocket over HTTP/2 (RFC 8441):
    H2ProtocolError = "h2_protocol_error", Error, "an HTTP/2 frame breaks RFC 9113 (a connection error): decoding of that connection stops, or, for a bad SETTINGS value or frame size, the frame is noted and decoding goes on";
    H2HpackError = "h2_hpack_error", Error, "an HTTP/2 header block that does not decode (RFC 7541; a COMPRESSION_ERROR), or an HPACK table size update above the peer's setting";
    H2HeadersUnreadable = "h2_headers_unreadable", Warning, "HTTP/2 header fields refer to HPACK table entries the capture never showed (started late, or bytes lost): those fields are unreadable";
    H2HandshakeNotSeen = "h2_handshake_not_seen", Info, "an HTTP/2 stream whose headers were not readable carries WebSocket frames: a probable RFC 8441 WebSocket, handshake not seen";
    H2ConnectWithoutSetting = "h2_connect_without_setting", Error, "an extended CONNECT (RFC 8441) although the server never sent SETTINGS_ENABLE_CONNECT_PROTOCOL = 1";
    H2StreamReset = "h2_stream_reset", Warning, "a WebSocket stream reset by RST_STREAM with an error code (not NO_ERROR or CANCEL)";
    H2GoawayError = "h2_goaway_error", Warning, "an HTTP/2 connection shut down by a GOAWAY with an error code";
    H2FlowControlStall = "h2_flow_control_stall", Warning, "a sender's DATA on a WebSocket stream waited half a second or more for HTTP/2 flow-control credit (its window used up, no WINDOW_UPDATE): a slow receiver holds messages back";
    H2FrameResync = "h2_frame_resync", Warning, "HTTP/2 frame boundaries found again after a capture gap or bytes that are not frames";
    // TLS (issue 12):
    TlsNoKey = "tls_no_key", Info, "a TLS connection whose keys are in no key log (or no key log was given): only what is in clear is reported";
    TlsDecryptFailed = "tls_decrypt_failed", Error, "a TLS record failed authentication with the logged key (wrong key or damaged capture); no plaintext is output for it";
    TlsUnsupportedCipher = "tls_unsupported_cipher", Warning, "the negotiated cipher suite is not one wsprobe decrypts (CBC, CCM, ...): records are counted, not decrypted";
    TlsAlert = "tls_alert", Error, "a fatal TLS alert (its name in the message)";
    TlsWarningAlert = "tls_warning_alert", Warning, "a warning-level TLS alert other than close_notify, e.g. user_canceled";
    TlsHandshakeFailed = "tls_handshake_failed", Error, "the TLS handshake did not complete before the connection ended";
    TlsNoCloseNotify = "tls_no_close_notify", Info, "a side ended the TCP connection without a TLS close_notify (where that is visible)";
    TlsResync = "tls_resync", Warning, "TLS record boundaries or sequence numbers were lost (capture gap, or bytes that are not records) and found again; the records between are lost";
    TlsEarlyDataSkipped = "tls_early_data_skipped", Warning, "0-RTT early data that was not decrypted (rejected by the server, or no CLIENT_EARLY_TRAFFIC_SECRET)";
    TlsRenegotiation = "tls_renegotiation", Warning, "a TLS 1.2 renegotiation: records under the renegotiated keys are not decrypted";
    KeylogMalformed = "keylog_malformed", Warning, "a key-log line that is not in NSS key-log format (file and line in the message); the rest of the file is used";
    PongLate = "pong_late", Info, "a pong that answers its ping only after a later ping of the same side or after that side's Close";
    // Application protocols inside the messages (src/app):
    AppHeartbeatTimeout = "app_heartbeat_timeout", Warning, "an application heartbeat went unanswered (or stopped) past the protocol's timeout, and the waiting side ended the connection";
    AppInitTimeout = "app_init_timeout", Warning, "the server closed because the protocol's opening message (graphql connection_init, SignalR handshake) did not come in time";
    AppError = "app_error", Warning, "the application protocol reported an error (STOMP ERROR, JSON-RPC error, graphql error, SignalR completion error or close error)";
    AppRequestUnanswered = "app_request_unanswered", Warning, "an application request or operation got no answer before the connection ended";
    AppProtocolViolation = "app_protocol_violation", Error, "a message that is malformed for the recognised application protocol";
    AppConnectRefused = "app_connect_refused", Warning, "the application protocol refused the session (MQTT CONNACK not 0, SignalR handshake error, STOMP ERROR to CONNECT, Socket.IO CONNECT_ERROR)";
    SubprotocolNotSelected = "subprotocol_not_selected", Warning, "the client offered subprotocols and the server's 101 selected none";
}

impl Serialize for DiagnosticId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// One finding, with where and when it happened.
#[derive(Debug, Clone, Serialize)]
pub struct Diagnostic {
    /// Stable id.
    pub id: DiagnosticId,
    /// The id's severity.
    pub severity: Severity,
    /// The side whose bytes show the problem, when it is one side's.
    pub from: Option<Side>,
    /// Capture time of the packet that showed it, Unix seconds.
    pub time: Option<f64>,
    /// What happened, for a person.
    pub message: String,
}

impl Diagnostic {
    /// A finding with the id's own severity.
    pub fn new(id: DiagnosticId, from: Option<Side>, time: Option<f64>, message: String) -> Self {
        Diagnostic {
            id,
            severity: id.severity(),
            from,
            time,
            message,
        }
    }
}

/// Durations in diagnostics' words: `62 s`, `1.5 s`, `250 ms`.
pub fn human_seconds(s: f64) -> String {
    if s >= 10.0 {
        format!("{s:.0} s")
    } else if s >= 1.0 {
        format!("{s:.1} s")
    } else {
        format!("{:.0} ms", s * 1000.0)
    }
}
