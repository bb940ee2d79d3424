//! Wire types of the JSON report, schema_version 1 (`schema/report.v1.json`). The only file that
//! spells JSON field names: the contract's names are the floor, extra fields sit beside them.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::capture::InputSummary;
use crate::diag::{Diagnostic, Side};
use crate::record::app::{AppMessageRecord, AppRecord};

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

/// Totals over all inputs (over what the filters let through, in reports).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    /// Connections reported.
    pub connections: u64,
    /// Connections whose upgrade was accepted or that carried frames.
    pub websocket_connections: u64,
    /// Data messages (text and binary), both directions. Control frames are not messages:
    /// they are counted in `control_frames`.
    pub messages: u64,
    /// Control frames (close, ping, pong), both directions.
    pub control_frames: u64,
    /// Frames of every opcode.
    pub frames: u64,
    /// Diagnostic count per id.
    pub diagnostics: BTreeMap<String, u64>,
    /// TCP connections seen, reported or not.
    pub tcp_connections: u64,
    /// Outcome count (`clean`, `abnormal`, ...).
    pub outcomes: BTreeMap<String, u64>,
    /// The TCP connections not reported (no upgrade attempt, no frames), by what they carried.
    pub other_tcp: OtherTcp,
    /// TCP connections in the inputs before the filters (`--connection`, `--address`), for
    /// the table's "of N"; equal to `tcp_connections` without filters.
    #[serde(skip)]
    pub unfiltered_tcp_connections: u64,
    /// What each TLS key log (file or pcapng block) gave; absent when none was used.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub key_logs: Vec<crate::record::tls::KeyLogSummary>,
    /// Finding count per id (`findings` in the report).
    pub findings: BTreeMap<String, u64>,
    /// Finished connections the findings could not consider: past their memory cap
    /// (`findings::MAX_ENDINGS`); 0 normally.
    pub findings_skipped_connections: u64,
}

impl Summary {
    /// Counts a reported connection.
    pub fn add_connection(&mut self, record: &ConnectionRecord) {
        // An HTTP/2 connection's WebSocket streams share its TCP connection, counted once
        // (as not WebSocket itself) when it finishes.
        if record.http2.is_none() {
            self.tcp_connections += 1;
        }
        self.add_record(record);
    }

    /// Counts a record that was first counted as a plain HTTP connection: a refused request
    /// that turned out, at the end of the capture, to be for a WebSocket endpoint.
    pub fn add_late_record(&mut self, record: &ConnectionRecord) {
        self.other_tcp.http = self.other_tcp.http.saturating_sub(1);
        self.add_record(record);
    }

    fn add_record(&mut self, record: &ConnectionRecord) {
        self.connections += 1;
        let frames = record.frames.client.total() + record.frames.server.total();
        let websocket = record.handshake.as_ref().is_some_and(|h| h.accepted) || frames > 0;
        self.websocket_connections += u64::from(websocket);
        let carrier = record.http2_connection.is_some() && !websocket;
        if carrier {
            // An HTTP/2 connection whose WebSocket streams are counted as connections of
            // their own.
            self.other_tcp.http2 += 1;
        } else if let Some(tls) = record.tls.as_ref().filter(|_| !websocket) {
            // Listed (every TLS connection is), but not WebSocket as far as can be seen.
            self.other_tcp.tls += 1;
            if !tls.decrypted {
                self.other_tcp.tls_undecrypted += 1;
                if tls.websocket_likely.as_ref().is_some_and(|w| w.likely) {
                    self.other_tcp.tls_likely_websocket += 1;
                }
            }
            if let Some(name) = &tls.sni {
                *self
                    .other_tcp
                    .tls_server_names
                    .entry(name.clone())
                    .or_insert(0) += 1;
            }
        }
        self.frames += frames;
        self.messages += record.message_counts.client + record.message_counts.server;
        self.control_frames += [record.frames.client, record.frames.server]
            .iter()
            .map(|f| f.close + f.ping + f.pong)
            .sum::<u64>();
        for (id, n) in &record.diagnostic_counts {
            *self.diagnostics.entry(id.clone()).or_insert(0) += n;
        }
        if !carrier {
            *self
                .outcomes
                .entry(record.close.outcome.to_string())
                .or_insert(0) += 1;
        }
    }

    /// Counts a connection that is not reported.
    pub fn add_other(&mut self, c: &OtherConnection) {
        self.tcp_connections += 1;
        let o = &mut self.other_tcp;
        match &c.kind {
            OtherKind::Tls { server_name } => {
                o.tls += 1;
                if let Some(name) = server_name {
                    *o.tls_server_names.entry(name.clone()).or_insert(0) += 1;
                }
            }
            OtherKind::Http => o.http += 1,
            OtherKind::Http2 => o.http2 += 1,
            OtherKind::Other => o.other += 1,
            OtherKind::NoData => o.no_data += 1,
            OtherKind::Refused => add_attempt(&mut o.refused, c),
            OtherKind::Unanswered => add_attempt(&mut o.unanswered, c),
        }
    }
}

fn add_attempt(list: &mut Vec<Attempts>, c: &OtherConnection) {
    match list.iter_mut().find(|a| a.server == c.server) {
        Some(a) => {
            a.attempts += 1;
            a.first = a.first.min(c.first_seen);
            a.last = a.last.max(c.last_seen);
        }
        None => list.push(Attempts {
            server: c.server.clone(),
            attempts: 1,
            first: c.first_seen,
            last: c.last_seen,
        }),
    }
}

/// TCP connections that carried no WebSocket and no upgrade attempt.
#[derive(Debug, Clone, Default, Serialize)]
pub struct OtherTcp {
    /// TLS connections with no WebSocket seen in them (they are listed as connections, with
    /// their `tls` record); inside an undecrypted one may be anything, WebSocket too.
    pub tls: u64,
    /// Of those, the ones that could not be decrypted.
    pub tls_undecrypted: u64,
    /// Of those, the ones whose records look like WebSocket (`tls.websocket_likely`: an
    /// inference from ALPN, port and record sizes).
    pub tls_likely_websocket: u64,
    /// The ClientHellos' server names (SNI), with how many connections named each.
    pub tls_server_names: BTreeMap<String, u64>,
    /// HTTP requests without an upgrade.
    pub http: u64,
    /// HTTP/2 connections; their WebSocket streams (RFC 8441) are reported as connections of
    /// their own.
    pub http2: u64,
    /// Data that is neither.
    pub other: u64,
    /// Established, but no data either way.
    pub no_data: u64,
    /// Refused attempts: a SYN answered by RST, per server endpoint, in order of first attempt.
    pub refused: Vec<Attempts>,
    /// Attempts whose SYN got no answer in the capture, per server endpoint.
    pub unanswered: Vec<Attempts>,
}

/// Connection attempts to one server endpoint.
#[derive(Debug, Clone, Serialize)]
pub struct Attempts {
    /// Where they went.
    pub server: Address,
    /// How many.
    pub attempts: u64,
    /// Time of the first one's first packet.
    pub first: f64,
    /// Time of the last one's last packet.
    pub last: f64,
}

/// A TCP connection that is not reported, as the summary counts it.
#[derive(Debug, Clone)]
pub struct OtherConnection {
    /// Connection number (shared with reported connections).
    pub id: u64,
    /// The side that sent the SYN (else the guess: the higher port).
    pub client: Address,
    /// The other side.
    pub server: Address,
    /// First packet's time.
    pub first_seen: f64,
    /// Last packet's time.
    pub last_seen: f64,
    /// What it carried.
    pub kind: OtherKind,
}

/// What an unreported TCP connection was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OtherKind {
    /// TLS, with the ClientHello's server name when it had one.
    Tls {
        /// SNI.
        server_name: Option<String>,
    },
    /// HTTP without an upgrade.
    Http,
    /// HTTP/2 (its WebSocket streams are reported on their own).
    Http2,
    /// Some other data.
    Other,
    /// No data.
    NoData,
    /// The SYN was answered by RST.
    Refused,
    /// The SYN got no answer.
    Unanswered,
}

/// One end of a connection.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Address {
    /// IP address, IPv4 unmapped.
    pub ip: String,
    /// TCP port.
    pub port: u16,
}

/// One header line of a handshake head.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Header {
    /// Field name as sent.
    pub name: String,
    /// Field value (credentials replaced by `REDACTED` unless `--no-redact`).
    pub value: String,
}

/// The opening handshake.
#[derive(Debug, Clone, Default, Serialize)]
pub struct HandshakeRecord {
    /// Request method (`GET` for an upgrade).
    pub method: String,
    /// `HTTP/1.1` (or `HTTP/1.0`) of the request.
    pub http_version: String,
    /// Request target (credentials in the query replaced by `REDACTED` unless `--no-redact`).
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
    /// Every request header in order (credentials redacted unless `--no-redact`).
    pub request_headers: Vec<Header>,
    /// Every response header in order, when an answer was captured.
    pub response_headers: Vec<Header>,
    /// Bytes of the request head; null when unknown.
    pub request_head_bytes: Option<u64>,
    /// Bytes of the response head; null when no answer was captured.
    pub response_head_bytes: Option<u64>,
    /// `HTTP/1.1` of the answer, when captured.
    pub response_http_version: Option<String>,
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

    /// Both values through `f`.
    pub fn map<U>(self, mut f: impl FnMut(T) -> U) -> PerSide<U> {
        PerSide {
            client: f(self.client),
            server: f(self.server),
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
    /// Pongs: milliseconds since the ping they answer (paired by payload, RFC 6455 §5.5.3).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rtt_ms: Option<f64>,
    /// The application protocol's reading of the message (null when none was recognised).
    pub app: Option<AppMessageRecord>,
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
    /// A TLS close_notify or alert that came before any FIN or RST and after its sender's
    /// last application data: the end began there (a TLS-terminating proxy's idle timeout
    /// sends close_notify, then the client's FIN follows). Null otherwise.
    pub tls_end: Option<TlsEndRecord>,
    /// Seconds between the last WebSocket frame (encrypted: the last application record
    /// before the final alert) and the start of the end (`tls_end`, else FIN or RST).
    pub idle_before_end: Option<f64>,
    /// The last message before the end, as `client text 18 B`.
    pub last_message: Option<String>,
    /// One side went silent: the other kept retransmitting data it never acknowledged (no FIN or
    /// RST from it reached the capture). Null otherwise.
    pub unreachable: Option<UnreachableRecord>,
    /// One line for people: what happened.
    pub summary: String,
}

/// The TLS alert that began a connection's end.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TlsEndRecord {
    /// Its sender.
    pub from: Side,
    /// Capture time.
    pub time: f64,
    /// `close_notify`, or another alert's name.
    pub alert: String,
    /// Inferred, not read: a TLS 1.2 alert record that was not decrypted (likely close_notify),
    /// or a close_notify-sized final TLS 1.3 record.
    pub inferred: bool,
}

/// A side that stopped answering at the TCP level (network loss, a vanished host).
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct UnreachableRecord {
    /// The side that went silent.
    pub side: Side,
    /// When: first-send time of the oldest byte it never acknowledged.
    pub since: f64,
    /// Retransmissions of the other side from then on.
    pub retransmissions: u64,
    /// Seconds from `since` to the other side's last retransmission.
    pub retransmitting_for: f64,
    /// Payload bytes the other side sent that were never acknowledged.
    pub unacked_bytes: u64,
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
    /// Pongs that came after a later ping of the same side or after its Close (counted in
    /// `answered` too).
    pub answered_late: u64,
    /// Smallest round trip, milliseconds.
    pub rtt_min_ms: Option<f64>,
    /// Median round trip, milliseconds.
    pub rtt_median_ms: Option<f64>,
    /// Largest round trip, milliseconds.
    pub rtt_max_ms: Option<f64>,
    /// Each answered ping in order (at most [`crate::analysis::ping::MAX_SAMPLES`]): when its
    /// pong came, who pinged, the round trip.
    pub rtt_samples: Vec<RttSample>,
}

/// One answered ping.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct RttSample {
    /// Capture time of the pong.
    pub time: f64,
    /// The side that sent the ping.
    pub from: Side,
    /// Round trip, milliseconds.
    pub rtt_ms: f64,
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
    /// Data segments the capture showed after the peer's ACK that covered them (reordering by
    /// the capture point: multi-queue NICs, `-i any`, merged taps, SPAN ports); they arrived
    /// within the grace window (`--late-packets`, `--late-seconds`) and were used as usual.
    pub late_after_ack: u64,
    /// Segments that brought bytes of a hole already reported as a gap (later than the grace
    /// window, or after a limit or the end closed it); not used, and said in the `tcp_gap`
    /// diagnostic.
    pub late_after_gap: u64,
    /// Per direction: acknowledgements and retransmissions, especially at the end.
    pub delivery: PerSide<DeliveryRecord>,
}

/// One direction's delivery at the end of the connection (or of the capture).
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct DeliveryRecord {
    /// Time of this side's last packet.
    pub last_packet: Option<f64>,
    /// Time of its last packet that carried new bytes.
    pub last_new_data: Option<f64>,
    /// Segments that repeated sequence space already sent (payload, SYN or FIN).
    pub retransmissions: u64,
    /// Of those, how many came in the last 10 s before the end (`tcp::delivery::NEAR_END_SECONDS`).
    pub retransmissions_near_end: u64,
    /// Time of the last retransmission.
    pub last_retransmission: Option<f64>,
    /// Payload bytes sent that the peer never acknowledged.
    pub unacked_bytes: u64,
    /// First-send time of the oldest byte (or FIN) still unacknowledged at the end.
    pub unacked_since: Option<f64>,
    /// Retransmissions from `unacked_since` on (into the silence).
    pub retransmissions_unacked: u64,
    /// Time the peer last acknowledged new data of this side.
    pub last_ack: Option<f64>,
}

/// The last frame of one direction.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct LastFrameRecord {
    /// Capture time of the packet that completed its header.
    pub time: f64,
    /// `text`, `binary`, `continuation`, `close`, `ping`, `pong` or `reserved-N`.
    pub opcode: &'static str,
    /// Payload length from its header.
    pub length: u64,
}

/// Timing facts about how the connection ended, for people and for the findings across
/// connections (`findings` in the report).
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct TimingRecord {
    /// When the end began: the first Close frame, FIN or RST, whichever came first; the last
    /// packet when the connection was still open.
    pub end_time: f64,
    /// What began the end: `close`, `fin`, `rst`; `none` when the connection was still open at
    /// the end of the capture, `stopped` when wsprobe stopped following it (`--idle-timeout`,
    /// table limits).
    pub ended_by: &'static str,
    /// Who began it (the Close's, FIN's or RST's sender); null when still open.
    pub ended_from: Option<Side>,
    /// Seconds from the start of the WebSocket (the 101, else the first frame, else the first
    /// packet) to `end_time`.
    pub age: f64,
    /// Seconds with nothing from either side before `end_time` (frames, the upgrade request and
    /// answer; the Close that began the end is not counted).
    pub idle: Option<f64>,
    /// The same per direction: seconds since that side last sent something.
    pub idle_by_side: PerSide<Option<f64>>,
    /// The longest silence (nothing either way) between the start and the end, in seconds:
    /// a connection that survived a silence longer than a suspected idle timeout disproves it.
    pub longest_silence: Option<f64>,
    /// The last frame of each direction (any opcode).
    pub last_frame: PerSide<Option<LastFrameRecord>>,
    /// Time of each side's last ping.
    pub last_ping: PerSide<Option<f64>>,
    /// Seconds from each side's last ping to `end_time`.
    pub since_last_ping: PerSide<Option<f64>>,
    /// Median seconds between each side's pings (two pings or more).
    pub ping_interval: PerSide<Option<f64>>,
    /// Pings of each side still waiting for their pong when the end began.
    pub unanswered_pings_at_end: PerSide<u64>,
    /// Send time of the oldest of those.
    pub first_unanswered_ping: PerSide<Option<f64>>,
    /// Time of the last pong each side sent.
    pub last_pong: PerSide<Option<f64>>,
}

/// A compact digest of a connection's opening, kept for pairing the two legs of a proxied
/// session (same Sec-WebSocket-Key, same frames with the same masking keys). Not in the report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Fingerprint {
    /// Hash of the Sec-WebSocket-Key the client sent.
    pub key: Option<u64>,
    /// Hash of the first frames' headers (direction, FIN, RSV, opcode, length, masking key).
    pub frames: u64,
    /// Frames in that hash (at most `analysis::FINGERPRINT_FRAMES`).
    pub frame_count: u8,
    /// Of them, frames with a masking key.
    pub masked: u8,
    /// Those masking keys were not all the same (a client that always uses one key, or zero,
    /// makes frames of unrelated connections look alike).
    pub varied_masks: bool,
}

/// A connection's listed messages: in memory, or in the message spool (`--format json`, where
/// they are read back as the record is written).
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum MessageList {
    /// The records.
    Held(Vec<MessageRecord>),
    /// Their JSON in the spool.
    Spooled(super::spool::SpooledMessages),
}

impl MessageList {
    /// Messages listed.
    pub fn len(&self) -> usize {
        match self {
            MessageList::Held(v) => v.len(),
            MessageList::Spooled(s) => s.len() as usize,
        }
    }

    /// None listed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The records held in memory. Only the JSON report spools its lists, and it reads
    /// them whole; every other reader gets them held.
    pub fn held(&self) -> &[MessageRecord] {
        match self {
            MessageList::Held(v) => v,
            MessageList::Spooled(_) => {
                debug_assert!(false, "bug: a spooled message list read as records");
                &[]
            }
        }
    }
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
    pub messages: Option<MessageList>,
    /// Every frame header in capture order, with `--frames` (at most
    /// [`crate::analysis::MAX_FRAMES_KEPT`]; `frames` counts them all).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frames_detail: Option<Vec<FrameRecord>>,
    /// How it ended.
    pub close: CloseRecord,
    /// Ping/pong pairing.
    pub ping: PingRecord,
    /// The application protocol inside the messages; null when none was recognised.
    pub app: Option<AppRecord>,
    /// TCP facts.
    pub tcp: TcpRecord,
    /// Compressed messages after lost compression history, by direction; present when a direction
    /// had any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deflate_recovery: Option<PerSide<DeflateRecoveryRecord>>,
    /// The HTTP/2 stream this WebSocket rides on (RFC 8441); null for WebSocket over TCP.
    pub http2: Option<super::http2::Http2StreamRecord>,
    /// The HTTP/2 connection this TCP connection carried, when its WebSocket streams are
    /// listed as entries of their own (this entry is listed for its TLS facts).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http2_connection: Option<super::http2::Http2ConnectionRecord>,
    /// How the end came, in time.
    pub timing: TimingRecord,
    /// For pairing proxy legs (not serialized).
    #[serde(skip)]
    pub fingerprint: Fingerprint,
    /// Findings (at most [`crate::analysis::MAX_DIAGNOSTICS_PER_ID`] per id; counts are exact).
    pub diagnostics: Vec<Diagnostic>,
    /// Exact count per diagnostic id, including those not listed.
    pub diagnostic_counts: BTreeMap<String, u64>,
    /// TLS facts (`null` for a plain TCP connection).
    pub tls: Option<crate::record::tls::TlsRecord>,
}
