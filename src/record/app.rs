//! Wire types of the application-protocol parts of the report (`app` of a connection and of a
//! message; `REPORT-CONTRACT.md` "Additions"). Field names are spelled here only.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::diag::Side;

/// The application protocol of one connection and what its session did.
#[derive(Debug, Clone, Serialize)]
pub struct AppRecord {
    /// `socket.io`, `engine.io`, `graphql-transport-ws`, `subscriptions-transport-ws`, `stomp`,
    /// `sockjs`, `mqtt`, `signalr`, `json-rpc`, `phoenix`, `actioncable`, `tunnel:ssh`, ...
    pub protocol: String,
    /// The protocol's own version when known (`4` for Engine.IO 4, `3.1.1`, `5`, `1.2`, `2.0.0`).
    pub version: Option<String>,
    /// `subprotocol`, `path`, `content` or `forced` (`--app NAME`).
    pub recognised_by: &'static str,
    /// What the recognition rests on, for people.
    pub evidence: String,
    /// A remark about the naming (`graphql-ws` is the legacy protocol's subprotocol name, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// What the session did.
    pub session: AppSessionRecord,
    /// Byte-stream protocols (MQTT): every packet in order, up to the listing cap.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub packets: Option<Vec<AppPacketRecord>>,
    /// Packets not listed in `packets` (past the cap); they are counted in `session.packet_counts`.
    #[serde(skip_serializing_if = "is_zero")]
    pub packets_not_listed: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The session summary of one connection.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AppSessionRecord {
    /// One line for people.
    pub summary: String,
    /// Packets by type, as the protocol spells it.
    pub packet_counts: BTreeMap<String, u64>,
    /// The protocol's own opening (Engine.IO open, CONNACK, connection_ack, SignalR handshake ...).
    pub handshake: Option<AppHandshakeRecord>,
    /// Session id the protocol announced (Engine.IO `sid`, MQTT client id, STOMP session ...).
    pub session_id: Option<String>,
    /// Application heartbeats.
    pub heartbeat: Option<AppHeartbeatRecord>,
    /// Requests or operations paired with their answers.
    pub requests: Option<AppRequestsRecord>,
    /// The protocol's own close (Socket.IO disconnect, MQTT DISCONNECT, SockJS `c[...]`, graphql
    /// close code meaning ...).
    pub close: Option<AppCloseRecord>,
    /// Seconds between the last application message that was not a heartbeat and the end of the
    /// connection (or of the capture).
    pub idle_before_end: Option<f64>,
    /// Protocol-specific facts (namespaces, subscriptions, topics, negotiated heart-beats ...).
    #[serde(skip_serializing_if = "Map::is_empty")]
    pub details: Map<String, Value>,
}

/// The protocol-level opening of a session.
#[derive(Debug, Clone, Serialize)]
pub struct AppHandshakeRecord {
    /// It was accepted.
    pub ok: bool,
    /// When the answer came.
    pub time: Option<f64>,
    /// What was said (`CONNACK 0 accepted`, `open sid=... pingInterval 25000 ms`).
    pub detail: String,
}

/// Application heartbeats of a session.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AppHeartbeatRecord {
    /// What beats (`engine.io ping/pong`, `STOMP heart-beat`, `MQTT PINGREQ/PINGRESP`).
    pub kind: String,
    /// Interval announced or negotiated, milliseconds.
    pub interval_ms: Option<f64>,
    /// Timeout announced or negotiated, milliseconds.
    pub timeout_ms: Option<f64>,
    /// Where the interval comes from (`open packet`, `CONNECT keep-alive`, `library default`).
    pub configured_by: Option<String>,
    /// Heartbeats (pings or one-way beats) each side sent.
    pub sent: crate::record::PerSide<u64>,
    /// Pings answered.
    pub answered: u64,
    /// Pings never answered.
    pub unanswered: u64,
    /// Median ping-to-pong time, milliseconds.
    pub rtt_median_ms: Option<f64>,
    /// Largest round trip, milliseconds.
    pub rtt_max_ms: Option<f64>,
    /// Largest gap between one side's heartbeats, milliseconds.
    pub max_gap_ms: crate::record::PerSide<Option<f64>>,
    /// Time of the last heartbeat from either side.
    pub last: Option<f64>,
}

/// Requests or operations of a session, paired with their answers.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AppRequestsRecord {
    /// What is paired (`JSON-RPC id`, `graphql operation`, `STOMP receipt`, `MQTT packet id`).
    pub kind: String,
    /// Requests sent.
    pub sent: u64,
    /// Answered.
    pub answered: u64,
    /// Answered with an error.
    pub errors: u64,
    /// Never answered before the end.
    pub unanswered: u64,
    /// Median request-to-answer time, milliseconds.
    pub latency_median_ms: Option<f64>,
    /// Largest request-to-answer time, milliseconds.
    pub latency_max_ms: Option<f64>,
    /// Up to 20 of the unanswered ones, for people (`id 7 eth_call at 12:00:01.250`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pending: Vec<String>,
}

/// The protocol's own account of the end.
#[derive(Debug, Clone, Serialize)]
pub struct AppCloseRecord {
    /// Who said it.
    pub from: Option<Side>,
    /// When.
    pub time: Option<f64>,
    /// The protocol's code (graphql close code, SockJS code, MQTT reason code ...).
    pub code: Option<i64>,
    /// The protocol's reason text.
    pub reason: Option<String>,
    /// What it means.
    pub meaning: String,
}

/// One application packet in a connection's `packets` list, or in a message's when it held more
/// than one.
#[derive(Debug, Clone, Serialize)]
pub struct AppPacketRecord {
    /// Sender (connection-level lists only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<Side>,
    /// Time of the message that completed it (connection-level lists only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time: Option<f64>,
    /// The packet's type as the protocol spells it.
    #[serde(rename = "type")]
    pub kind: String,
    /// Its own fields (event, id, topic, namespace, ack, qos ...).
    #[serde(flatten)]
    pub fields: Map<String, Value>,
    /// One line for people: `socket.io event "chat" ack 3 ns /`.
    pub summary: String,
}

/// The `app` object of one message: its (first) packet's type and fields, and every packet when
/// the message held more than one.
#[derive(Debug, Clone, Serialize)]
pub struct AppMessageRecord {
    /// The (first) packet's type as the protocol spells it.
    #[serde(rename = "type")]
    pub kind: String,
    /// The (first) packet's own fields.
    #[serde(flatten)]
    pub fields: Map<String, Value>,
    /// One line for people, all packets.
    pub summary: String,
    /// Every packet, when the message held more than one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub packets: Option<Vec<AppPacketRecord>>,
    /// Byte streams (MQTT): the message ends inside a packet that the next message continues.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub continued: Option<bool>,
}
