//! The tables' columns: one static list per table (name, type, meaning) that the rows, the
//! JSON Schemas in `schema/` and the Parquet schema all come from, and the functions that turn a
//! connection record into rows. Names follow the Elastic Common Schema where it has one
//! (`source.ip`, `event.start`, `network.community_id`, ...); WebSocket facts live under
//! `websocket.*`, TCP facts under `tcp.*`, as Arkime does. Every row is flat and every column is
//! always present (null when unknown), so engines that infer a schema from a sample see them all.

use crate::diag::{Diagnostic, Severity, Side};
use crate::record::{ConnectionRecord, Finding, MessageRecord, OpcodeCounts};
use crate::report::ids;

/// Version of the table layouts (`schema/<table>.v1.json`); bumped when a column is renamed or
/// removed, not when one is added.
pub const TABLES_SCHEMA_VERSION: i64 = 1;

/// A column's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// true/false.
    Bool,
    /// 64-bit integer.
    Int,
    /// 64-bit float.
    Float,
    /// UTF-8 text.
    Str,
    /// An instant: RFC 3339 text with microseconds in JSON, a UTC microsecond timestamp in
    /// Parquet.
    Time,
    /// A list of UTF-8 texts: a JSON array, a Parquet LIST; every engine the README names reads
    /// it as an array of strings (DuckDB `VARCHAR[]`, ClickHouse `Array(String)`, BigQuery
    /// `ARRAY<STRING>`, Trino `array(varchar)`, Spark `ARRAY<STRING>`, Elasticsearch a
    /// multi-valued keyword).
    StrList,
    /// A list of 64-bit integers (as [`Kind::StrList`]).
    IntList,
}

/// One column of a table.
#[derive(Debug, Clone, Copy)]
pub struct Column {
    /// Field name, dotted as ECS spells it.
    pub name: &'static str,
    /// Type.
    pub kind: Kind,
    /// Never null.
    pub required: bool,
    /// What it holds, for the JSON Schema.
    pub doc: &'static str,
}

/// One value.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// Unknown or not applicable.
    Null,
    /// [`Kind::Bool`].
    Bool(bool),
    /// [`Kind::Int`].
    Int(i64),
    /// [`Kind::Float`].
    Float(f64),
    /// [`Kind::Str`].
    Str(String),
    /// [`Kind::Time`]: Unix seconds.
    Time(f64),
    /// [`Kind::StrList`].
    StrList(Vec<String>),
    /// [`Kind::IntList`].
    IntList(Vec<i64>),
}

impl From<bool> for Cell {
    fn from(v: bool) -> Cell {
        Cell::Bool(v)
    }
}
impl From<u64> for Cell {
    fn from(v: u64) -> Cell {
        Cell::Int(i64::try_from(v).unwrap_or(i64::MAX))
    }
}
impl From<u16> for Cell {
    fn from(v: u16) -> Cell {
        Cell::Int(i64::from(v))
    }
}
impl From<i64> for Cell {
    fn from(v: i64) -> Cell {
        Cell::Int(v)
    }
}
impl From<f64> for Cell {
    fn from(v: f64) -> Cell {
        if v.is_finite() {
            Cell::Float(v)
        } else {
            Cell::Null
        }
    }
}
impl From<&str> for Cell {
    fn from(v: &str) -> Cell {
        Cell::Str(v.to_string())
    }
}
impl From<String> for Cell {
    fn from(v: String) -> Cell {
        Cell::Str(v)
    }
}
impl<T: Into<Cell>> From<Option<T>> for Cell {
    fn from(v: Option<T>) -> Cell {
        v.map_or(Cell::Null, Into::into)
    }
}

/// A table: its name (the `table=` partition) and columns.
#[derive(Debug, Clone, Copy)]
pub struct TableSpec {
    /// `connections`, `messages`, `diagnostics`.
    pub name: &'static str,
    /// What one row is.
    pub row: &'static str,
    /// Columns in order.
    pub columns: &'static [Column],
}

macro_rules! columns {
    ($($name:literal : $kind:ident $(, $req:ident)? = $doc:literal;)*) => {
        &[$(Column {
            name: $name,
            kind: Kind::$kind,
            required: columns!(@req $($req)?),
            doc: $doc,
        },)*]
    };
    (@req required) => { true };
    (@req) => { false };
}

/// Columns every table starts with: the keys and the context of the row.
macro_rules! common_columns {
    ($($rest:tt)*) => {
        columns! {
            "schema_version": Int, required = "Version of this table's layout (schema/<table>.v1.json).";
            "conn_uid": Str, required = "wsprobe's connection uid: W + 16 base32 characters of SHA-1(sensor, Community ID, first packet time); the same for the same capture at the same sensor.";
            "network.community_id": Str, required = "Community ID v1 of the TCP flow (seed 0): joins Zeek conn.log, Suricata flow events, Arkime sessions.";
            "sensor": Str, required = "The capture point (--sensor, default the host name); also the sensor= partition.";
            "observer.name": Str, required = "ECS name of the capture point (the same as sensor).";
            "agent.version": Str, required = "wsprobe version that wrote the row.";
            "@timestamp": Time, required = "When the row's event happened, RFC 3339 UTC with microseconds.";
            "ts": Float, required = "The same instant as Unix seconds.";
            "event.dataset": Str, required = "wsprobe.<table>.";
            "event.module": Str, required = "wsprobe.";
            "event.kind": Str, required = "ECS event kind: event.";
            "wsprobe.connection_id": Int, required = "The connection's number within its run (the json report's connections[].id).";
            $($rest)*
        }
    };
}

/// One row per connection that carried an upgrade attempt or WebSocket frames.
pub const CONNECTIONS: TableSpec = TableSpec {
    name: "connections",
    row: "one connection that carried an HTTP upgrade attempt or WebSocket frames",
    columns: common_columns! {
        "event.category": Str, required = "network.";
        "event.type": Str, required = "connection.";
        "event.start": Time, required = "First packet, RFC 3339 UTC.";
        "event.end": Time, required = "Last packet, RFC 3339 UTC.";
        "event.duration": Int, required = "Last minus first packet, nanoseconds.";
        "event.outcome": Str, required = "success (clean close), failure (abnormal, incomplete, refused) or unknown (still open).";
        "event.reason": Str, required = "How it ended, in one sentence.";
        "source.ip": Str, required = "The client: the side that sent the upgrade request (else the side whose frames are masked).";
        "source.port": Int, required = "The client's port.";
        "destination.ip": Str, required = "The server.";
        "destination.port": Int, required = "The server's port.";
        "client.ip": Str, required = "Same as source.ip (ECS client/server view).";
        "client.port": Int, required = "Same as source.port.";
        "server.ip": Str, required = "Same as destination.ip.";
        "server.port": Int, required = "Same as destination.port.";
        "network.transport": Str, required = "tcp.";
        "network.type": Str, required = "ipv4 or ipv6.";
        "network.protocol": Str, required = "websocket when the upgrade was accepted or frames were seen, else http.";
        "url.domain": Str = "Host header without its port.";
        "url.port": Int = "Port of the Host header, when it names one.";
        "url.path": Str = "Request target without the query.";
        "url.query": Str = "Query string without the '?' (credentials REDACTED unless --no-redact).";
        "url.original": Str = "The request target as sent (credentials REDACTED unless --no-redact).";
        "url.scheme": Str = "wss over TLS (or for an HTTP/2 :scheme of https), else ws; null without a handshake.";
        "user_agent.original": Str = "User-Agent header.";
        "http.request.method": Str = "Request method (GET for an upgrade).";
        "http.version": Str = "HTTP version of the request: 1.1 or 1.0.";
        "http.response.status_code": Int = "Status of the answer (101 for an upgrade); null when none was captured.";
        "websocket.handshake.reason": Str = "Reason phrase of the answer.";
        "websocket.handshake.origin": Str = "Origin header.";
        "websocket.handshake.accepted": Bool = "The answer was 101 with Upgrade: websocket.";
        "websocket.handshake.accept_valid": Bool = "Sec-WebSocket-Accept matches the key; null when it could not be checked.";
        "websocket.handshake.version": Str = "Sec-WebSocket-Version offered.";
        "websocket.handshake.request_time": Float = "Capture time of the upgrade request, Unix seconds.";
        "websocket.handshake.response_time": Float = "Capture time of the answer, Unix seconds.";
        "websocket.handshake.latency_ms": Float = "Answer time minus request time, milliseconds.";
        "websocket.subprotocol": Str = "Subprotocol chosen by the server.";
        "websocket.offered_subprotocols": Str = "Subprotocols the client offered, comma-separated (tokens REDACTED unless --no-redact).";
        "websocket.extensions": Str = "Extensions accepted by the server.";
        "websocket.offered_extensions": Str = "Extensions the client offered.";
        "websocket.http2.stream_id": Int = "WebSocket over HTTP/2 (RFC 8441): the stream it rides on; null over HTTP/1.1.";
        "websocket.http2.end": Str = "How that stream ended: end_stream, rst_stream CODE, goaway; null while open.";
        "websocket.http2.end_from": Str = "client or server: who ended that stream (its first END_STREAM, RST_STREAM or GOAWAY).";
        "tls.version_protocol": Str = "tls for a TLS connection (ECS); null for plain TCP.";
        "tls.version": Str = "Negotiated TLS version, ECS style: 1.3, 1.2 ...; null for plain TCP or before a ServerHello.";
        "tls.cipher": Str = "Negotiated cipher suite, IANA name (TLS_AES_256_GCM_SHA384).";
        "tls.client.server_name": Str = "server_name (SNI) of the ClientHello.";
        "tls.next_protocol": Str = "ALPN protocol the server selected (h2, http/1.1); null in TLS 1.3 without keys (it is encrypted there).";
        "tls.resumed": Bool = "The session was resumed (session id, ticket or PSK).";
        "tls.established": Bool = "Both Finished messages were seen; null when that cannot be told (TLS 1.3 without keys).";
        "wsprobe.tls.decrypted": Bool = "Records were decrypted with keys from a key log (--keylog, SSLKEYLOGFILE, pcapng DSB); null for plain TCP.";
        "wsprobe.tls.decrypt_error": Str = "Why (some) records could not be decrypted: no key log given, no key for this connection, tag failure ...";
        "websocket.app.protocol": Str = "Application protocol inside the messages: socket.io, engine.io, graphql-transport-ws, stomp, mqtt, signalr, json-rpc, phoenix, actioncable, tunnel:ssh ...; null when none was recognised.";
        "websocket.app.version": Str = "That protocol's own version (4, 3.1.1, 1.2 ...).";
        "websocket.app.recognised_by": Str = "subprotocol, path, content or forced (--app NAME).";
        "websocket.app.handshake_ok": Bool = "The protocol's own opening was accepted (Engine.IO open, CONNACK 0, connection_ack, CONNECTED ...); null when none was seen.";
        "websocket.app.session_id": Str = "Session id the protocol announced (Engine.IO sid, MQTT client id, STOMP session).";
        "websocket.app.heartbeat_interval_ms": Float = "Application heartbeat interval announced or negotiated, milliseconds.";
        "websocket.app.heartbeat_unanswered": Int = "Application pings never answered.";
        "websocket.app.requests_unanswered": Int = "Requests or operations never answered before the end (JSON-RPC ids, graphql operations, STOMP receipts, MQTT packet ids).";
        "websocket.app.close_code": Int = "The protocol's own close code (graphql close code, SockJS code, MQTT reason code).";
        "websocket.app.close_meaning": Str = "The protocol's account of the end.";
        "websocket.app.summary": Str = "What the session did, in one line.";
        "websocket.close.code": Int = "First Close frame's code; 1005 for an empty Close; 1006 when TCP ended with no Close frame.";
        "websocket.close.reason": Str = "Close reason.";
        "websocket.close.initiator": Str = "client or server: who sent the first Close (for 1006: whose FIN/RST came first).";
        "websocket.close.outcome": Str, required = "clean, abnormal, incomplete, open or not_websocket.";
        "websocket.close.inferred": Bool, required = "The code was inferred by wsprobe (1006: no Close frame on the wire).";
        "websocket.close.meaning": Str = "The code's registered name and usual cause.";
        "websocket.close.reply_code": Int = "Code the other side answered with.";
        "websocket.close.time": Float = "Time of the first Close frame, Unix seconds.";
        "websocket.close.tcp_end": Str = "How TCP ended: fin or rst; null while open.";
        "websocket.close.tcp_end_from": Str = "client or server: whose FIN or RST came first.";
        "websocket.close.tcp_end_time": Float = "Time of that FIN or RST, Unix seconds.";
        "websocket.close.idle_before_end_s": Float = "Seconds between the last WebSocket frame and the end of TCP: a cluster at one value is an idle timeout.";
        "websocket.close.last_message": Str = "The last data message before the end.";
        "websocket.close.unreachable_side": Str = "client or server: the side that went silent (the other kept retransmitting data it never acknowledged, and no FIN or RST from it reached the capture); null otherwise.";
        "websocket.close.unreachable_since": Float = "When it went silent: first-send time of the oldest byte it never acknowledged, Unix seconds.";
        "websocket.close.unreachable_retransmissions": Int = "Retransmissions of the other side from then on.";
        "websocket.close.unreachable_unacked_bytes": Int = "Payload bytes the other side sent that were never acknowledged.";
        "websocket.timing.ended_by": Str, required = "What began the end: close, fin, rst; none when still open at the end of the capture, stopped when wsprobe stopped following it.";
        "websocket.timing.ended_from": Str = "client or server: who began the end.";
        "websocket.timing.end_time": Float, required = "When the end began (the first Close, FIN or RST; the last packet when still open), Unix seconds.";
        "websocket.timing.age_s": Float, required = "Seconds from the start of the WebSocket (the 101, else the first frame) to the end: a cluster at one value is a maximum lifetime.";
        "websocket.timing.idle_s": Float = "Seconds with nothing from either side before the end (the findings' idle time).";
        "websocket.timing.idle_client_s": Float = "Seconds since the client last sent something, at the end.";
        "websocket.timing.idle_server_s": Float = "Seconds since the server last sent something, at the end.";
        "websocket.timing.longest_silence_s": Float = "The longest silence between the start and the end, seconds: a connection that survived a silence longer than a suspected idle timeout disproves it.";
        "websocket.timing.unanswered_pings_at_end": Int, required = "Pings (both sides) still waiting for their pong when the end began.";
        "websocket.messages.client": Int, required = "Data messages sent by the client.";
        "websocket.messages.server": Int, required = "Data messages sent by the server.";
        "websocket.payload_bytes.client": Int, required = "Payload bytes the client sent, after inflating.";
        "websocket.payload_bytes.server": Int, required = "Payload bytes the server sent, after inflating.";
        "websocket.frames.client.text": Int, required = "Client text frames.";
        "websocket.frames.client.binary": Int, required = "Client binary frames.";
        "websocket.frames.client.continuation": Int, required = "Client continuation frames.";
        "websocket.frames.client.close": Int, required = "Client close frames.";
        "websocket.frames.client.ping": Int, required = "Client ping frames.";
        "websocket.frames.client.pong": Int, required = "Client pong frames.";
        "websocket.frames.client.other": Int, required = "Client frames with reserved opcodes.";
        "websocket.frames.server.text": Int, required = "Server text frames.";
        "websocket.frames.server.binary": Int, required = "Server binary frames.";
        "websocket.frames.server.continuation": Int, required = "Server continuation frames.";
        "websocket.frames.server.close": Int, required = "Server close frames.";
        "websocket.frames.server.ping": Int, required = "Server ping frames.";
        "websocket.frames.server.pong": Int, required = "Server pong frames.";
        "websocket.frames.server.other": Int, required = "Server frames with reserved opcodes.";
        "websocket.ping.client_pings": Int, required = "Pings sent by the client.";
        "websocket.ping.server_pings": Int, required = "Pings sent by the server.";
        "websocket.ping.answered": Int, required = "Pings answered by a pong.";
        "websocket.ping.unanswered": Int, required = "Pings never answered.";
        "websocket.ping.unsolicited_pongs": Int, required = "Pongs that answered no ping.";
        "websocket.ping.rtt_min_ms": Float = "Smallest ping round trip, milliseconds.";
        "websocket.ping.rtt_median_ms": Float = "Median ping round trip, milliseconds.";
        "websocket.ping.rtt_max_ms": Float = "Largest ping round trip, milliseconds.";
        "tcp.syn_seen": Bool, required = "The SYN was captured (else the capture started mid-connection).";
        "tcp.gaps": Int, required = "Holes in the captured byte streams.";
        "tcp.gap_bytes": Int, required = "Bytes in those holes.";
        "tcp.retransmissions": Int, required = "Segments that repeated bytes already seen.";
        "tcp.out_of_order": Int, required = "Segments that arrived ahead of a hole.";
        "websocket.diagnostics.total": Int, required = "Diagnostics of the connection, all ids (exact, including those not listed).";
        "websocket.diagnostics.errors": Int, required = "Of which of severity error.";
        "websocket.diagnostics.warnings": Int, required = "Of which of severity warning.";
        "websocket.diagnostics.info": Int, required = "Of which of severity info.";
        "websocket.diagnostics.ids": Str, required = "Diagnostic ids present, sorted, comma-separated (empty when none).";
    },
};

/// One row per listed message and control frame (with --messages).
pub const MESSAGES: TableSpec = TableSpec {
    name: "messages",
    row: "one WebSocket data message or control frame (written with --messages)",
    columns: common_columns! {
        "source.ip": Str, required = "Sender's address.";
        "source.port": Int, required = "Sender's port.";
        "destination.ip": Str, required = "Receiver's address.";
        "destination.port": Int, required = "Receiver's port.";
        "websocket.message.index": Int, required = "Position among the connection's listed messages, from 0.";
        "websocket.message.from": Str, required = "client or server.";
        "websocket.message.opcode": Str, required = "text, binary, close, ping, pong or reserved-N.";
        "websocket.message.length": Int = "Payload bytes after unmasking and inflating; null when it could not be inflated.";
        "websocket.message.wire_length": Int, required = "Payload bytes on the wire, all fragments.";
        "websocket.message.fragments": Int, required = "Frames that carried it.";
        "websocket.message.compressed": Bool, required = "permessage-deflate (RSV1) on its first frame.";
        "websocket.message.complete": Bool, required = "False when a TCP gap or the capture's end cut it.";
        "websocket.message.close_code": Int = "Close frames: the status code (1005 when absent).";
        "websocket.message.text": Str = "Payload (close: the reason) that is valid UTF-8, as far as --payload keeps it.";
        "websocket.message.base64": Str = "Any other payload, base64, as far as --payload keeps it.";
        "websocket.message.truncated": Bool, required = "The payload shown was cut (--payload preview or a size limit).";
        "websocket.message.inflate_error": Str = "Why the payload could not be inflated.";
        "websocket.message.app.type": Str = "The application protocol's type of the message's (first) packet (socket.io EVENT, graphql next, STOMP SEND, MQTT PUBLISH ...); null when none was recognised.";
        "websocket.message.app.summary": Str = "The decoded packet(s), in one line (credentials REDACTED unless --no-redact).";
    },
};

/// One row per listed diagnostic.
pub const DIAGNOSTICS: TableSpec = TableSpec {
    name: "diagnostics",
    row: "one diagnostic of a connection (at most 20 per id and connection; the connections table counts them all)",
    columns: common_columns! {
        "event.code": Str, required = "Diagnostic id (wsprobe diagnostics lists them).";
        "log.level": Str, required = "Severity: error, warning or info.";
        "message": Str, required = "What happened, for a person.";
        "websocket.diagnostic.from": Str = "client or server: whose bytes show it, when it is one side's.";
        "websocket.diagnostic.time": Float = "Capture time of the packet that showed it, Unix seconds; null when it concerns the whole connection.";
    },
};

/// Position of `ts` in a `findings` row.
pub const FINDINGS_TS_INDEX: usize = 6;

/// The prefix of the columns that hold a finding's parameters: `timeout_s` of the json
/// report's `findings[].parameters` is `wsprobe.finding.parameters.timeout_s`.
pub const PARAMETER_PREFIX: &str = "wsprobe.finding.parameters.";

/// One row per finding across connections.
pub const FINDINGS: TableSpec = TableSpec {
    name: "findings",
    row: "one finding across connections (why connections ended: idle_timeout, max_lifetime, server_restart, mass_disconnect, graceful_shutdown, heartbeat_timeout, peer_unreachable, proxy_legs)",
    columns: columns! {
        "schema_version": Int, required = "Version of this table's layout (schema/<table>.v1.json).";
        "finding_uid": Str, required = "wsprobe's finding uid: F + 16 base32 characters of SHA-1(sensor, finding id, the conn_uids it covers); the same for the same capture at the same sensor.";
        "sensor": Str, required = "The capture point (--sensor, default the host name); also the sensor= partition.";
        "observer.name": Str, required = "ECS name of the capture point (the same as sensor).";
        "agent.version": Str, required = "wsprobe version that wrote the row.";
        "@timestamp": Time, required = "When the pattern happened (its first ending; the first packet of its first connection when that is not known), RFC 3339 UTC with microseconds.";
        "ts": Float, required = "The same instant as Unix seconds.";
        "event.dataset": Str, required = "wsprobe.findings.";
        "event.module": Str, required = "wsprobe.";
        "event.kind": Str, required = "ECS event kind: event.";
        "event.code": Str, required = "The finding's id: idle_timeout, max_lifetime, server_restart, mass_disconnect, graceful_shutdown, heartbeat_timeout, peer_unreachable or proxy_legs (--fail-on takes them).";
        "wsprobe.finding.confidence": Float, required = "How sure wsprobe is, 0 to 1.";
        "wsprobe.finding.connection_count": Int, required = "How many connections it covers.";
        "wsprobe.connection_ids": IntList, required = "The connections it covers, by their number within the run (wsprobe.connection_id of the other tables, the json report's connections[].id), ascending.";
        "conn_uids": StrList, required = "Their conn_uid, in the same order: the join key with the other tables (DuckDB list_contains, ClickHouse has, BigQuery IN UNNEST); empty text for a connection past the findings' memory cap.";
        "network.community_ids": StrList, required = "Their Community IDs, in the same order (joins Zeek conn.log, Suricata flows, Arkime sessions).";
        "wsprobe.finding.servers": StrList, required = "The server endpoints (ip:port) of those connections, distinct, sorted: unnest it to count per server.";
        "message": Str, required = "What it means, in plain words.";
        "wsprobe.finding.evidence": Str, required = "The evidence, in numbers.";
        "wsprobe.finding.advice": Str, required = "What to do.";
        "wsprobe.finding.suspects": StrList, required = "Known components whose default matches the parameter (idle_timeout, max_lifetime), as 'NAME SETTING (default N s)'; empty when none.";
        "wsprobe.finding.time": Float = "When the pattern happened (its first ending), Unix seconds; null when not known.";
        "wsprobe.finding.parameters": Str, required = "All the parameters as JSON text (the json report's findings[].parameters), with any that a later wsprobe adds before they get a column of their own.";
        "wsprobe.finding.parameters.timeout_s": Float = "idle_timeout: the idle time after which the connections ended; heartbeat_timeout: the pinging side's ping timeout, inferred. Seconds.";
        "wsprobe.finding.parameters.lifetime_s": Float = "max_lifetime: the connection age at which they ended, seconds.";
        "wsprobe.finding.parameters.measured_on": Str = "idle_timeout: the silence it was measured on: both (nothing either way), client_to_server or server_to_client.";
        "wsprobe.finding.parameters.servers": StrList = "idle_timeout, max_lifetime: the server endpoints concerned.";
        "wsprobe.finding.parameters.ended_by": Str = "idle_timeout, max_lifetime: how the connections ended (FIN from the server, Close 1000 from the server ...); server_restart, mass_disconnect: the side that ended them.";
        "wsprobe.finding.parameters.spread_min_s": Float = "idle_timeout, max_lifetime, heartbeat_timeout: the smallest value among the connections (spread_s[0]), seconds.";
        "wsprobe.finding.parameters.spread_max_s": Float = "The largest (spread_s[1]), seconds.";
        "wsprobe.finding.parameters.survivors": Int = "idle_timeout: connections that kept pinging and outlived the timeout.";
        "wsprobe.finding.parameters.contradictions": Int = "idle_timeout, max_lifetime: connections to the same server that were silent (or lived) longer without being cut.";
        "wsprobe.finding.parameters.time": Float = "server_restart, mass_disconnect, graceful_shutdown: the instant (first ending), Unix seconds.";
        "wsprobe.finding.parameters.server": Str = "server_restart, mass_disconnect, graceful_shutdown: the server endpoint (ip:port).";
        "wsprobe.finding.parameters.connections": Int = "server_restart, mass_disconnect, graceful_shutdown: connections that ended at that instant.";
        "wsprobe.finding.parameters.open": Int = "server_restart, mass_disconnect, graceful_shutdown: connections to the server open just before it.";
        "wsprobe.finding.parameters.window_s": Float = "server_restart, mass_disconnect, graceful_shutdown: seconds from the first ending to the last.";
        "wsprobe.finding.parameters.how": Str = "server_restart, mass_disconnect: fin or rst.";
        "wsprobe.finding.parameters.code": Int = "graceful_shutdown: the Close code (1001, 1012 ...).";
        "wsprobe.finding.parameters.reason": Str = "graceful_shutdown: the Close reason.";
        "wsprobe.finding.parameters.unanswered": IntList = "graceful_shutdown: the connections (ids) that never answered the Close.";
        "wsprobe.finding.parameters.reconnected": Int = "server_restart, mass_disconnect, graceful_shutdown: clients that came back.";
        "wsprobe.finding.parameters.first_reconnect_s": Float = "Seconds after the instant until the first client came back.";
        "wsprobe.finding.parameters.median_reconnect_s": Float = "The median of those delays, seconds.";
        "wsprobe.finding.parameters.last_reconnect_s": Float = "The longest of those delays, seconds.";
        "wsprobe.finding.parameters.side": Str = "heartbeat_timeout: the side that stopped answering pings; peer_unreachable: the side that went silent.";
        "wsprobe.finding.parameters.pinging_side": Str = "heartbeat_timeout: the side whose pings went unanswered.";
        "wsprobe.finding.parameters.ping_interval_s": Float = "heartbeat_timeout: the pinging side's interval, seconds.";
        "wsprobe.finding.parameters.since": Float = "heartbeat_timeout: when pings stopped being answered; peer_unreachable: when acknowledgements stopped. Unix seconds.";
        "wsprobe.finding.parameters.host": Str = "peer_unreachable: the host that went silent.";
        "wsprobe.finding.parameters.retransmissions": Int = "peer_unreachable: retransmissions into the silence, all connections.";
        "wsprobe.finding.parameters.retransmitting_s": Float = "peer_unreachable: the longest a connection kept retransmitting, seconds.";
        "wsprobe.finding.parameters.legs": IntList = "proxy_legs: the two connections (ids), front leg first.";
        "wsprobe.finding.parameters.front": Int = "proxy_legs: the client-side leg (id).";
        "wsprobe.finding.parameters.back": Int = "proxy_legs: the upstream leg (id).";
        "wsprobe.finding.parameters.proxy": Str = "proxy_legs: the proxy's endpoint.";
        "wsprobe.finding.parameters.upstream": Str = "proxy_legs: the upstream server's endpoint.";
        "wsprobe.finding.parameters.first_ended": Str = "proxy_legs: front or back: the leg that ended first.";
        "wsprobe.finding.parameters.gap_s": Float = "proxy_legs: seconds between the two legs' ends.";
    },
};

/// Every table, in the order they are documented.
pub const TABLES: &[TableSpec] = &[CONNECTIONS, MESSAGES, DIAGNOSTICS, FINDINGS];

/// Builds one row in its table's column order (checked in debug builds, so a column added to
/// the spec but not to the builder, or the other way round, fails every test that writes rows).
pub struct RowBuilder {
    spec: &'static TableSpec,
    /// The cells in column order.
    pub cells: Vec<Cell>,
}

impl RowBuilder {
    fn new(spec: &'static TableSpec) -> Self {
        RowBuilder {
            spec,
            cells: Vec::with_capacity(spec.columns.len()),
        }
    }

    fn put(&mut self, name: &'static str, cell: impl Into<Cell>) -> &mut Self {
        let cell = cell.into();
        debug_assert!(
            self.spec
                .columns
                .get(self.cells.len())
                .is_some_and(|c| c.name == name
                    && match &cell {
                        Cell::Null => !c.required,
                        Cell::Bool(_) => c.kind == Kind::Bool,
                        Cell::Int(_) => c.kind == Kind::Int,
                        Cell::Float(_) => c.kind == Kind::Float,
                        Cell::Str(_) => c.kind == Kind::Str,
                        Cell::Time(_) => c.kind == Kind::Time,
                        Cell::StrList(_) => c.kind == Kind::StrList,
                        Cell::IntList(_) => c.kind == Kind::IntList,
                    }),
            "bug: column {name} at position {} of {} does not match the spec ({:?})",
            self.cells.len(),
            self.spec.name,
            self.spec.columns.get(self.cells.len()).map(|c| c.name)
        );
        self.cells.push(cell);
        self
    }

    fn done(self) -> Vec<Cell> {
        debug_assert_eq!(
            self.cells.len(),
            self.spec.columns.len(),
            "bug: {} row is missing columns",
            self.spec.name
        );
        self.cells
    }
}

/// What every row of one connection shares.
pub struct ConnectionKeys {
    /// [`ids::conn_uid`].
    pub conn_uid: String,
    /// Community ID v1.
    pub community_id: String,
    /// `--sensor`.
    pub sensor: String,
    /// The record's id.
    pub connection_id: u64,
}

impl ConnectionKeys {
    /// The keys of `record` seen at `sensor`.
    pub fn of(record: &ConnectionRecord, sensor: &str) -> Self {
        let community_id = ids::tcp_community_id(
            (&record.client.ip, record.client.port),
            (&record.server.ip, record.server.port),
        )
        .unwrap_or_default();
        ConnectionKeys {
            conn_uid: ids::conn_uid(sensor, &community_id, record.first_seen),
            community_id,
            sensor: sensor.to_string(),
            connection_id: record.id,
        }
    }

    fn start(&self, spec: &'static TableSpec, time: f64) -> RowBuilder {
        let mut row = RowBuilder::new(spec);
        row.put("schema_version", TABLES_SCHEMA_VERSION)
            .put("conn_uid", self.conn_uid.as_str())
            .put("network.community_id", self.community_id.as_str())
            .put("sensor", self.sensor.as_str())
            .put("observer.name", self.sensor.as_str())
            .put("agent.version", env!("CARGO_PKG_VERSION"))
            .put("@timestamp", Cell::Time(time))
            .put("ts", time)
            .put("event.dataset", format!("wsprobe.{}", spec.name))
            .put("event.module", "wsprobe")
            .put("event.kind", "event")
            .put("wsprobe.connection_id", self.connection_id);
        row
    }
}

/// `host[:port]` split; IPv6 literals keep their brackets off.
fn split_host(host: &str) -> (String, Option<u16>) {
    let host = host.trim();
    if let Some(rest) = host.strip_prefix('[')
        && let Some((addr, after)) = rest.split_once(']')
    {
        return (
            addr.to_string(),
            after.strip_prefix(':').and_then(|p| p.parse().ok()),
        );
    }
    match host.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => match p.parse() {
            Ok(port) => (h.to_string(), Some(port)),
            Err(_) => (host.to_string(), None),
        },
        _ => (host.to_string(), None),
    }
}

/// `wss` when the upgrade went over TLS (or an HTTP/2 extended CONNECT said `:scheme: https`),
/// else `ws`.
pub fn url_scheme(r: &ConnectionRecord, h: &crate::record::HandshakeRecord) -> &'static str {
    let https = h
        .request_headers
        .iter()
        .any(|x| x.name == ":scheme" && x.value.eq_ignore_ascii_case("https"));
    if r.tls.is_some() || https {
        "wss"
    } else {
        "ws"
    }
}

/// ECS spells `tls.version` without the protocol: `TLSv1.3` → `1.3` (`SSLv3` → `3.0`).
fn ecs_tls_version(v: &str) -> String {
    if let Some(n) = v.strip_prefix("TLSv") {
        return n.to_string();
    }
    match v.strip_prefix("SSLv") {
        Some(n) if !n.contains('.') => format!("{n}.0"),
        Some(n) => n.to_string(),
        None => v.to_string(),
    }
}

fn side(s: Option<Side>) -> Option<&'static str> {
    s.map(Side::as_str)
}

fn frames(row: &mut RowBuilder, names: [&'static str; 7], f: &OpcodeCounts) {
    let values = [
        f.text,
        f.binary,
        f.continuation,
        f.close,
        f.ping,
        f.pong,
        f.other,
    ];
    for (name, value) in names.into_iter().zip(values) {
        row.put(name, value);
    }
}

/// The `connections` row of a record.
pub fn connection_row(r: &ConnectionRecord, keys: &ConnectionKeys) -> Vec<Cell> {
    let mut row = keys.start(&CONNECTIONS, r.first_seen);
    let h = r.handshake.as_ref();
    let websocket =
        h.is_some_and(|h| h.accepted) || r.frames.client.total() + r.frames.server.total() > 0;
    let outcome = match r.close.outcome {
        "clean" => "success",
        "open" => "unknown",
        _ => "failure",
    };
    row.put("event.category", "network")
        .put("event.type", "connection")
        .put("event.start", Cell::Time(r.first_seen))
        .put("event.end", Cell::Time(r.last_seen))
        .put(
            "event.duration",
            ((r.last_seen - r.first_seen).max(0.0) * 1e9).round() as i64,
        )
        .put("event.outcome", outcome)
        .put("event.reason", r.close.summary.as_str())
        .put("source.ip", r.client.ip.as_str())
        .put("source.port", r.client.port)
        .put("destination.ip", r.server.ip.as_str())
        .put("destination.port", r.server.port)
        .put("client.ip", r.client.ip.as_str())
        .put("client.port", r.client.port)
        .put("server.ip", r.server.ip.as_str())
        .put("server.port", r.server.port)
        .put("network.transport", "tcp")
        .put(
            "network.type",
            if r.server.ip.contains(':') {
                "ipv6"
            } else {
                "ipv4"
            },
        )
        .put(
            "network.protocol",
            if websocket { "websocket" } else { "http" },
        );
    let (domain, port) = match h.and_then(|h| h.host.as_deref()) {
        Some(host) => {
            let (d, p) = split_host(host);
            (Some(d), p)
        }
        None => (None, None),
    };
    let (path, query) = match h {
        Some(h) => match h.path.split_once('?') {
            Some((p, q)) => (Some(p.to_string()), Some(q.to_string())),
            None => (Some(h.path.clone()), None),
        },
        None => (None, None),
    };
    let latency = h.and_then(|h| Some((h.response_time? - h.request_time?) * 1e3));
    row.put("url.domain", domain)
        .put("url.port", port)
        .put("url.path", path)
        .put("url.query", query)
        .put("url.original", h.map(|h| h.path.as_str()))
        .put("url.scheme", h.map(|h| url_scheme(r, h)))
        .put(
            "user_agent.original",
            h.and_then(|h| h.user_agent.as_deref()),
        )
        .put(
            "http.request.method",
            h.map(|h| h.method.as_str()).filter(|m| !m.is_empty()),
        )
        .put(
            "http.version",
            h.and_then(|h| h.http_version.strip_prefix("HTTP/")),
        )
        .put("http.response.status_code", h.and_then(|h| h.status))
        .put(
            "websocket.handshake.reason",
            h.and_then(|h| h.reason.as_deref()),
        )
        .put(
            "websocket.handshake.origin",
            h.and_then(|h| h.origin.as_deref()),
        )
        .put("websocket.handshake.accepted", h.map(|h| h.accepted))
        .put(
            "websocket.handshake.accept_valid",
            h.and_then(|h| h.accept_valid),
        )
        .put(
            "websocket.handshake.version",
            h.and_then(|h| h.version.as_deref()),
        )
        .put(
            "websocket.handshake.request_time",
            h.and_then(|h| h.request_time),
        )
        .put(
            "websocket.handshake.response_time",
            h.and_then(|h| h.response_time),
        )
        .put("websocket.handshake.latency_ms", latency)
        .put(
            "websocket.subprotocol",
            h.and_then(|h| h.subprotocol.as_deref()),
        )
        .put(
            "websocket.offered_subprotocols",
            h.filter(|h| !h.offered_subprotocols.is_empty())
                .map(|h| h.offered_subprotocols.join(", ")),
        )
        .put(
            "websocket.extensions",
            h.and_then(|h| h.extensions.as_deref()),
        )
        .put(
            "websocket.offered_extensions",
            h.and_then(|h| h.offered_extensions.as_deref()),
        )
        .put(
            "websocket.http2.stream_id",
            r.http2.as_ref().map(|s| u64::from(s.stream_id)),
        )
        .put(
            "websocket.http2.end",
            r.http2.as_ref().and_then(|s| s.end.as_deref()),
        )
        .put(
            "websocket.http2.end_from",
            side(r.http2.as_ref().and_then(|s| s.end_from)),
        );
    let tls = r.tls.as_ref();
    row.put(
        "tls.version_protocol",
        tls.map(|t| match t.version.as_deref() {
            Some(v) if v.starts_with("SSL") => "ssl",
            _ => "tls",
        }),
    )
    .put(
        "tls.version",
        tls.and_then(|t| t.version.as_deref()).map(ecs_tls_version),
    )
    .put("tls.cipher", tls.and_then(|t| t.cipher_suite.as_deref()))
    .put("tls.client.server_name", tls.and_then(|t| t.sni.as_deref()))
    .put("tls.next_protocol", tls.and_then(|t| t.alpn.as_deref()))
    .put("tls.resumed", tls.map(|t| t.resumed))
    .put("tls.established", tls.and_then(|t| t.handshake_complete))
    .put("wsprobe.tls.decrypted", tls.map(|t| t.decrypted))
    .put(
        "wsprobe.tls.decrypt_error",
        tls.and_then(|t| t.decrypt_error.as_deref()),
    );
    let app = r.app.as_ref();
    let session = app.map(|a| &a.session);
    row.put("websocket.app.protocol", app.map(|a| a.protocol.as_str()))
        .put(
            "websocket.app.version",
            app.and_then(|a| a.version.as_deref()),
        )
        .put("websocket.app.recognised_by", app.map(|a| a.recognised_by))
        .put(
            "websocket.app.handshake_ok",
            session.and_then(|s| s.handshake.as_ref()).map(|h| h.ok),
        )
        .put(
            "websocket.app.session_id",
            session.and_then(|s| s.session_id.as_deref()),
        )
        .put(
            "websocket.app.heartbeat_interval_ms",
            session
                .and_then(|s| s.heartbeat.as_ref())
                .and_then(|h| h.interval_ms),
        )
        .put(
            "websocket.app.heartbeat_unanswered",
            session
                .and_then(|s| s.heartbeat.as_ref())
                .map(|h| h.unanswered),
        )
        .put(
            "websocket.app.requests_unanswered",
            session
                .and_then(|s| s.requests.as_ref())
                .map(|q| q.unanswered),
        )
        .put(
            "websocket.app.close_code",
            session.and_then(|s| s.close.as_ref()).and_then(|c| c.code),
        )
        .put(
            "websocket.app.close_meaning",
            session
                .and_then(|s| s.close.as_ref())
                .map(|c| c.meaning.as_str()),
        )
        .put(
            "websocket.app.summary",
            session
                .map(|s| s.summary.as_str())
                .filter(|s| !s.is_empty()),
        );
    let c = &r.close;
    row.put("websocket.close.code", c.code)
        .put("websocket.close.reason", c.reason.as_deref())
        .put("websocket.close.initiator", side(c.initiator))
        .put("websocket.close.outcome", c.outcome)
        .put("websocket.close.inferred", c.outcome == "abnormal")
        .put("websocket.close.meaning", c.meaning.as_deref())
        .put("websocket.close.reply_code", c.reply_code)
        .put("websocket.close.time", c.time)
        .put("websocket.close.tcp_end", c.tcp_end)
        .put("websocket.close.tcp_end_from", side(c.tcp_end_from))
        .put("websocket.close.tcp_end_time", c.tcp_end_time)
        .put("websocket.close.idle_before_end_s", c.idle_before_end)
        .put("websocket.close.last_message", c.last_message.as_deref())
        .put(
            "websocket.close.unreachable_side",
            side(c.unreachable.map(|u| u.side)),
        )
        .put(
            "websocket.close.unreachable_since",
            c.unreachable.map(|u| u.since),
        )
        .put(
            "websocket.close.unreachable_retransmissions",
            c.unreachable.map(|u| u.retransmissions),
        )
        .put(
            "websocket.close.unreachable_unacked_bytes",
            c.unreachable.map(|u| u.unacked_bytes),
        );
    let t = &r.timing;
    row.put("websocket.timing.ended_by", t.ended_by)
        .put("websocket.timing.ended_from", side(t.ended_from))
        .put("websocket.timing.end_time", t.end_time)
        .put("websocket.timing.age_s", t.age)
        .put("websocket.timing.idle_s", t.idle)
        .put("websocket.timing.idle_client_s", t.idle_by_side.client)
        .put("websocket.timing.idle_server_s", t.idle_by_side.server)
        .put("websocket.timing.longest_silence_s", t.longest_silence)
        .put(
            "websocket.timing.unanswered_pings_at_end",
            t.unanswered_pings_at_end.client + t.unanswered_pings_at_end.server,
        )
        .put("websocket.messages.client", r.message_counts.client)
        .put("websocket.messages.server", r.message_counts.server)
        .put("websocket.payload_bytes.client", r.payload_bytes.client)
        .put("websocket.payload_bytes.server", r.payload_bytes.server);
    frames(
        &mut row,
        [
            "websocket.frames.client.text",
            "websocket.frames.client.binary",
            "websocket.frames.client.continuation",
            "websocket.frames.client.close",
            "websocket.frames.client.ping",
            "websocket.frames.client.pong",
            "websocket.frames.client.other",
        ],
        &r.frames.client,
    );
    frames(
        &mut row,
        [
            "websocket.frames.server.text",
            "websocket.frames.server.binary",
            "websocket.frames.server.continuation",
            "websocket.frames.server.close",
            "websocket.frames.server.ping",
            "websocket.frames.server.pong",
            "websocket.frames.server.other",
        ],
        &r.frames.server,
    );
    let p = &r.ping;
    row.put("websocket.ping.client_pings", p.client_pings)
        .put("websocket.ping.server_pings", p.server_pings)
        .put("websocket.ping.answered", p.answered)
        .put("websocket.ping.unanswered", p.unanswered)
        .put("websocket.ping.unsolicited_pongs", p.unsolicited_pongs)
        .put("websocket.ping.rtt_min_ms", p.rtt_min_ms)
        .put("websocket.ping.rtt_median_ms", p.rtt_median_ms)
        .put("websocket.ping.rtt_max_ms", p.rtt_max_ms)
        .put("tcp.syn_seen", r.tcp.syn_seen)
        .put("tcp.gaps", r.tcp.gaps)
        .put("tcp.gap_bytes", r.tcp.gap_bytes)
        .put("tcp.retransmissions", r.tcp.retransmissions)
        .put("tcp.out_of_order", r.tcp.out_of_order);
    let mut by_severity = [0u64; 3];
    for (id, n) in &r.diagnostic_counts {
        let severity =
            crate::diag::DiagnosticId::parse(id).map_or(Severity::Info, |d| d.severity());
        by_severity[severity as usize] += n;
    }
    row.put(
        "websocket.diagnostics.total",
        by_severity.iter().sum::<u64>(),
    )
    .put(
        "websocket.diagnostics.errors",
        by_severity[Severity::Error as usize],
    )
    .put(
        "websocket.diagnostics.warnings",
        by_severity[Severity::Warning as usize],
    )
    .put(
        "websocket.diagnostics.info",
        by_severity[Severity::Info as usize],
    )
    .put(
        "websocket.diagnostics.ids",
        r.diagnostic_counts
            .keys()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join(","),
    );
    row.done()
}

/// The `messages` row of the `index`-th listed message of a connection.
pub fn message_row(
    r: &ConnectionRecord,
    keys: &ConnectionKeys,
    index: usize,
    m: &MessageRecord,
) -> Vec<Cell> {
    let (from, to) = match m.from {
        Side::Client => (&r.client, &r.server),
        Side::Server => (&r.server, &r.client),
    };
    let mut row = keys.start(&MESSAGES, m.time);
    row.put("source.ip", from.ip.as_str())
        .put("source.port", from.port)
        .put("destination.ip", to.ip.as_str())
        .put("destination.port", to.port)
        .put("websocket.message.index", index as u64)
        .put("websocket.message.from", m.from.as_str())
        .put("websocket.message.opcode", m.opcode)
        .put("websocket.message.length", m.length)
        .put("websocket.message.wire_length", m.wire_length)
        .put("websocket.message.fragments", m.fragments)
        .put("websocket.message.compressed", m.compressed)
        .put("websocket.message.complete", m.complete)
        .put("websocket.message.close_code", m.close_code)
        .put("websocket.message.text", m.text.as_deref())
        .put("websocket.message.base64", m.base64.as_deref())
        .put("websocket.message.truncated", m.truncated.unwrap_or(false))
        .put(
            "websocket.message.inflate_error",
            m.inflate_error.as_deref(),
        )
        .put(
            "websocket.message.app.type",
            m.app.as_ref().map(|a| a.kind.as_str()),
        )
        .put(
            "websocket.message.app.summary",
            m.app.as_ref().map(|a| a.summary.as_str()),
        );
    row.done()
}

/// The `diagnostics` row of one listed diagnostic.
pub fn diagnostic_row(r: &ConnectionRecord, keys: &ConnectionKeys, d: &Diagnostic) -> Vec<Cell> {
    let mut row = keys.start(&DIAGNOSTICS, d.time.unwrap_or(r.first_seen));
    row.put("event.code", d.id.as_str())
        .put("log.level", d.severity.as_str())
        .put("message", d.message.as_str())
        .put("websocket.diagnostic.from", side(d.from))
        .put("websocket.diagnostic.time", d.time);
    row.done()
}

/// What the `findings` row needs of each connection a finding covers (kept by the writer from
/// the connection's own row, since findings come after all connections).
#[derive(Debug, Clone, Default)]
pub struct MemberKeys {
    /// Its `conn_uid`; empty when not kept.
    pub conn_uid: String,
    /// Its Community ID; empty when not kept.
    pub community_id: String,
    /// Its server, `ip:port` (`[ip]:port` for IPv6).
    pub server: Option<String>,
    /// Its first packet.
    pub first_seen: Option<f64>,
}

/// `ip:port`, `[ip]:port` for IPv6: how the findings name endpoints.
pub fn endpoint(ip: &str, port: u16) -> String {
    if ip.contains(':') {
        format!("[{ip}]:{port}")
    } else {
        format!("{ip}:{port}")
    }
}

/// A parameter of a finding as the cell of a column of `kind` (null when absent or of another
/// shape: a later wsprobe's value still reaches `wsprobe.finding.parameters`).
fn parameter_cell(value: Option<&serde_json::Value>, kind: Kind) -> Cell {
    use serde_json::Value;
    let Some(v) = value else {
        return Cell::Null;
    };
    match kind {
        Kind::Float => v.as_f64().map_or(Cell::Null, Cell::from),
        Kind::Int => v
            .as_i64()
            .or_else(|| v.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
            .map_or(Cell::Null, Cell::Int),
        Kind::Bool => v.as_bool().map_or(Cell::Null, Cell::Bool),
        Kind::Str => match v {
            Value::String(s) => Cell::Str(s.clone()),
            Value::Null => Cell::Null,
            other => Cell::Str(other.to_string()),
        },
        Kind::Time => v.as_f64().map_or(Cell::Null, Cell::Time),
        Kind::StrList => match v {
            Value::Array(a) => Cell::StrList(
                a.iter()
                    .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_string))
                    .collect(),
            ),
            _ => Cell::Null,
        },
        Kind::IntList => match v {
            Value::Array(a) => {
                Cell::IntList(a.iter().filter_map(serde_json::Value::as_i64).collect())
            }
            _ => Cell::Null,
        },
    }
}

/// The `findings` row of one finding; `members` are the keys of its connections, in the order
/// of `f.connections`.
pub fn finding_row(f: &Finding, members: &[MemberKeys], sensor: &str) -> Vec<Cell> {
    let uids: Vec<String> = members.iter().map(|m| m.conn_uid.clone()).collect();
    let time = f.time.filter(|t| t.is_finite()).unwrap_or_else(|| {
        members
            .iter()
            .filter_map(|m| m.first_seen)
            .fold(f64::INFINITY, f64::min)
    });
    let time = if time.is_finite() { time } else { 0.0 };
    let mut servers: Vec<String> = members.iter().filter_map(|m| m.server.clone()).collect();
    servers.sort();
    servers.dedup();
    let mut row = RowBuilder::new(&FINDINGS);
    row.put("schema_version", TABLES_SCHEMA_VERSION)
        .put(
            "finding_uid",
            ids::finding_uid(sensor, f.id.as_str(), uids.iter().map(String::as_str)),
        )
        .put("sensor", sensor)
        .put("observer.name", sensor)
        .put("agent.version", env!("CARGO_PKG_VERSION"))
        .put("@timestamp", Cell::Time(time))
        .put("ts", time)
        .put("event.dataset", "wsprobe.findings")
        .put("event.module", "wsprobe")
        .put("event.kind", "event")
        .put("event.code", f.id.as_str())
        .put("wsprobe.finding.confidence", f.confidence)
        .put(
            "wsprobe.finding.connection_count",
            f.connections.len() as u64,
        )
        .put(
            "wsprobe.connection_ids",
            Cell::IntList(
                f.connections
                    .iter()
                    .map(|&id| i64::try_from(id).unwrap_or(i64::MAX))
                    .collect(),
            ),
        )
        .put("conn_uids", Cell::StrList(uids))
        .put(
            "network.community_ids",
            Cell::StrList(members.iter().map(|m| m.community_id.clone()).collect()),
        )
        .put("wsprobe.finding.servers", Cell::StrList(servers))
        .put("message", f.explanation.as_str())
        .put("wsprobe.finding.evidence", f.evidence.as_str())
        .put("wsprobe.finding.advice", f.advice.as_str())
        .put(
            "wsprobe.finding.suspects",
            Cell::StrList(
                f.suspects
                    .iter()
                    .map(|s| format!("{} {} (default {} s)", s.name, s.setting, s.default_s))
                    .collect(),
            ),
        )
        .put("wsprobe.finding.time", f.time)
        .put(
            "wsprobe.finding.parameters",
            serde_json::Value::Object(f.parameters.clone()).to_string(),
        );
    let spread = f.parameters.get("spread_s").and_then(|v| v.as_array());
    for c in FINDINGS.columns {
        let Some(name) = c.name.strip_prefix(PARAMETER_PREFIX) else {
            continue;
        };
        let cell = match name {
            "spread_min_s" => parameter_cell(spread.and_then(|a| a.first()), c.kind),
            "spread_max_s" => parameter_cell(spread.and_then(|a| a.get(1)), c.kind),
            _ => parameter_cell(f.parameters.get(name), c.kind),
        };
        row.put(c.name, cell);
    }
    row.done()
}

/// The column that holds parameter `name` of a finding (`spread_s` is split in two), if any.
pub fn parameter_columns(name: &str) -> Vec<&'static str> {
    let wanted: Vec<String> = match name {
        "spread_s" => vec![
            format!("{PARAMETER_PREFIX}spread_min_s"),
            format!("{PARAMETER_PREFIX}spread_max_s"),
        ],
        other => vec![format!("{PARAMETER_PREFIX}{other}")],
    };
    FINDINGS
        .columns
        .iter()
        .filter(|c| wanted.iter().any(|w| w == c.name))
        .map(|c| c.name)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_and_port_split() {
        assert_eq!(
            split_host("example.test:8080"),
            ("example.test".into(), Some(8080))
        );
        assert_eq!(split_host("example.test"), ("example.test".into(), None));
        assert_eq!(split_host("[::1]:9000"), ("::1".into(), Some(9000)));
        assert_eq!(split_host("[::1]"), ("::1".into(), None));
    }

    #[test]
    fn findings_ts_index_is_ts() {
        assert_eq!(FINDINGS.columns[FINDINGS_TS_INDEX].name, "ts");
    }

    #[test]
    fn column_names_are_unique_per_table() {
        for t in TABLES {
            let mut names: Vec<_> = t.columns.iter().map(|c| c.name).collect();
            names.sort();
            let n = names.len();
            names.dedup();
            assert_eq!(n, names.len(), "{} has a duplicate column", t.name);
        }
    }
}
