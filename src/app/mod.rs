//! Application protocols inside WebSocket messages: complete (inflated) messages and the
//! handshake in, decoded packets, session diagnostics and a per-connection summary out.
//!
//! Recognition, in order of trust: the negotiated `Sec-WebSocket-Protocol`, the URL, then the
//! first data messages (at least two consistent ones, see [`Fit`]). While the content decides,
//! every candidate decoder is fed the same messages, so the winner has already decoded them and
//! nothing needs to be replayed; the analysis holds those few message records back until then.
//! Recognition must stay cheap, since most traffic is no known protocol: the candidates are
//! only the protocols whose first bytes the first message can start with ([`admits`]), their
//! `fit` rejects with typed probes that skip what they do not need, and a handshake's claim
//! that its content does not honour ends the decoding after a few messages.
//!
//! Each protocol is one module behind the [`Decoder`] trait; the session pieces they share
//! (heartbeat pairing, request pairing) are in [`session`].

pub mod actioncable;
pub mod engineio;
pub mod graphql;
pub mod jsonrpc;
pub mod mqtt;
pub mod phoenix;
mod recognise;
pub mod secrets;
pub mod session;
pub mod signalr;
pub mod sockjs;
pub mod stomp;
pub mod tunnel;

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::diag::{Diagnostic, DiagnosticId, Side};
use crate::record::{
    AppHeartbeatRecord, AppMessageRecord, AppPacketRecord, AppRecord, AppSessionRecord,
};

use recognise::{Preview, recognise_handshake};

/// Bytes of each message kept for decoding: the assembler keeps at least this much of every
/// message while application decoding is on (the records still show only the preview).
pub const APP_MAX_BYTES: usize = 1 << 20;
/// Data messages examined for content recognition before giving up.
const MAX_SNIFF_MESSAGES: usize = 8;
/// Messages quoted in the evidence of a content recognition.
const EVIDENCE_MESSAGES: usize = 3;

/// A cheap necessary condition for a fresh `p` decoder's [`Decoder::fit`] not to be
/// [`Fit::No`] on a connection's first data message, from its first and last bytes: only the
/// protocols it admits are built and tried (most content rules out all of them at once).
fn admits(p: Protocol, m: &Input<'_>) -> bool {
    let b = m.payload;
    let first = b.first().copied();
    let opening = || b.trim_ascii_start().first().copied();
    match p {
        // Binary attachments are neutral; text packets start with their type digit.
        Protocol::SocketIo => m.binary || matches!(first, Some(b'0'..=b'6')),
        Protocol::Graphql | Protocol::ActionCable => !m.binary && opening() == Some(b'{'),
        Protocol::JsonRpc => !m.binary && matches!(opening(), Some(b'{' | b'[')),
        Protocol::Phoenix => {
            if m.binary {
                matches!(first, Some(0..=2))
            } else {
                matches!(opening(), Some(b'{' | b'['))
            }
        }
        Protocol::SockJs => {
            !m.binary
                && match m.from {
                    Side::Server => matches!(first, Some(b'o' | b'h' | b'a' | b'c')),
                    Side::Client => first == Some(b'['),
                }
        }
        // A command line, or a heart-beat's end-of-line.
        Protocol::Stomp => {
            if m.binary {
                b.starts_with(b"CONNECT")
            } else {
                matches!(first, Some(b'A'..=b'Z' | b'\n' | b'\r'))
            }
        }
        // MessagePack is only known from the handshake; JSON records end with 0x1E.
        Protocol::SignalR => !m.binary && b.last() == Some(&signalr::RS),
        Protocol::Mqtt => m.binary,
        Protocol::Tunnel => {
            b.starts_with(b"SSH-")
                || b.starts_with(b"RFB ")
                || b.starts_with(&[0x16, 3])
                || matches!(first, Some(b'A'..=b'Z'))
        }
    }
}
/// Byte-stream packets listed per connection without `--messages` (with it: every packet of a
/// listed message, within the listing budget).
pub const PACKETS_LISTED_BRIEF: usize = 100;
/// Byte-stream packets listed per connection with `--messages`.
pub const PACKETS_LISTED_MAX: usize = 100_000;

/// The application protocols wsprobe decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    /// Engine.IO v3/v4 and Socket.IO on top.
    SocketIo,
    /// graphql-transport-ws (the graphql-ws library) and subscriptions-transport-ws.
    Graphql,
    /// STOMP 1.0-1.2 in plain WebSocket messages.
    Stomp,
    /// SockJS framing (`o`, `h`, `a[...]`, `c[...]`), usually with STOMP inside.
    SockJs,
    /// MQTT 3.1.1 and 5 as a byte stream.
    Mqtt,
    /// SignalR hub protocol (JSON; MessagePack recognised, not decoded).
    SignalR,
    /// JSON-RPC 2.0.
    JsonRpc,
    /// Phoenix Channels v1 (objects) and v2 (arrays).
    Phoenix,
    /// Rails ActionCable.
    ActionCable,
    /// Another protocol tunnelled in binary messages: SSH, VNC (RFB), TLS, HTTP.
    Tunnel,
}

impl Protocol {
    /// Every protocol, in the order content recognition prefers on a tie.
    pub const ALL: [Protocol; 10] = [
        Protocol::SocketIo,
        Protocol::Graphql,
        Protocol::SockJs,
        Protocol::Stomp,
        Protocol::SignalR,
        Protocol::JsonRpc,
        Protocol::Phoenix,
        Protocol::ActionCable,
        Protocol::Mqtt,
        Protocol::Tunnel,
    ];

    /// The `--app` name.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::SocketIo => "socket.io",
            Protocol::Graphql => "graphql",
            Protocol::Stomp => "stomp",
            Protocol::SockJs => "sockjs",
            Protocol::Mqtt => "mqtt",
            Protocol::SignalR => "signalr",
            Protocol::JsonRpc => "json-rpc",
            Protocol::Phoenix => "phoenix",
            Protocol::ActionCable => "actioncable",
            Protocol::Tunnel => "tunnel",
        }
    }

    fn bit(self) -> u16 {
        1 << (self as u16)
    }

    fn decoder(self, hs: &HandshakeInfo, flavour: Option<graphql::Flavour>) -> Box<dyn Decoder> {
        match self {
            Protocol::SocketIo => Box::new(engineio::EngineIo::new(hs)),
            Protocol::Graphql => Box::new(graphql::Graphql::new(hs, flavour)),
            Protocol::Stomp => Box::new(stomp::Stomp::new(hs)),
            Protocol::SockJs => Box::new(sockjs::SockJs::new(hs)),
            Protocol::Mqtt => Box::new(mqtt::Mqtt::new(hs)),
            Protocol::SignalR => Box::new(signalr::SignalR::new()),
            Protocol::JsonRpc => Box::new(jsonrpc::JsonRpc::new()),
            Protocol::Phoenix => Box::new(phoenix::Phoenix::new(hs)),
            Protocol::ActionCable => Box::new(actioncable::ActionCable::new()),
            Protocol::Tunnel => Box::new(tunnel::Tunnel::new(hs)),
        }
    }
}

/// `--app`: which protocols to look for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppSelection {
    /// Decoding is off (`--app none`).
    off: bool,
    /// Allowed protocols (bit per [`Protocol`]); all of them for `auto`.
    set: u16,
    /// Exactly one protocol named: decode with it whatever the evidence.
    forced: Option<Protocol>,
    /// `--app graphql-transport-ws` / `subscriptions-transport-ws`.
    flavour: Option<graphql::Flavour>,
}

impl Default for AppSelection {
    fn default() -> Self {
        AppSelection::auto()
    }
}

impl AppSelection {
    /// Recognise any protocol (the default).
    pub fn auto() -> Self {
        AppSelection {
            off: false,
            set: u16::MAX,
            forced: None,
            flavour: None,
        }
    }

    /// No application decoding.
    pub fn none() -> Self {
        AppSelection {
            off: true,
            set: 0,
            forced: None,
            flavour: None,
        }
    }

    /// Is decoding on?
    pub fn enabled(&self) -> bool {
        !self.off
    }

    /// Parses `auto`, `none` or a comma-separated list of names.
    pub fn parse(words: &[String]) -> Result<AppSelection, String> {
        let words: Vec<&str> = words
            .iter()
            .map(|w| w.trim())
            .filter(|w| !w.is_empty())
            .collect();
        match words.as_slice() {
            [] | ["auto"] => return Ok(AppSelection::auto()),
            ["none"] => return Ok(AppSelection::none()),
            _ => {}
        }
        let mut sel = AppSelection {
            off: false,
            set: 0,
            forced: None,
            flavour: None,
        };
        let mut named = Vec::new();
        for word in words {
            let lower = word.to_ascii_lowercase();
            let (proto, flavour) = match lower.as_str() {
                "socket.io" | "socketio" | "engine.io" | "engineio" => (Protocol::SocketIo, None),
                "graphql" => (Protocol::Graphql, None),
                "graphql-transport-ws" => (Protocol::Graphql, Some(graphql::Flavour::TransportWs)),
                "subscriptions-transport-ws" | "graphql-ws-legacy" => {
                    (Protocol::Graphql, Some(graphql::Flavour::Legacy))
                }
                "stomp" => (Protocol::Stomp, None),
                "sockjs" => (Protocol::SockJs, None),
                "mqtt" => (Protocol::Mqtt, None),
                "signalr" => (Protocol::SignalR, None),
                "json-rpc" | "jsonrpc" => (Protocol::JsonRpc, None),
                "phoenix" => (Protocol::Phoenix, None),
                "actioncable" | "action-cable" => (Protocol::ActionCable, None),
                "tunnel" | "ssh" | "vnc" | "rfb" | "tls" | "http" => (Protocol::Tunnel, None),
                "auto" | "none" => {
                    return Err(format!(
                        "--app: {lower:?} cannot be combined with protocol names"
                    ));
                }
                "graphql-ws" => {
                    return Err("--app: \"graphql-ws\" is ambiguous: the graphql-ws library speaks graphql-transport-ws, while the subprotocol named graphql-ws is the legacy subscriptions-transport-ws; name one of those (or \"graphql\" for either)".into());
                }
                _ => {
                    return Err(format!(
                        "--app: unknown protocol {word:?} (auto, none, or: socket.io, graphql, graphql-transport-ws, subscriptions-transport-ws, stomp, sockjs, mqtt, signalr, json-rpc, phoenix, actioncable, tunnel)"
                    ));
                }
            };
            sel.set |= proto.bit();
            if flavour.is_some() {
                sel.flavour = flavour;
            }
            if !named.contains(&proto) {
                named.push(proto);
            }
        }
        if let [only] = named.as_slice() {
            sel.forced = Some(*only);
        }
        Ok(sel)
    }

    fn allows(&self, p: Protocol) -> bool {
        !self.off && self.set & p.bit() != 0
    }
}

/// What the upgrade said, for recognition and for the decoders' defaults.
#[derive(Debug, Clone, Default)]
pub struct HandshakeInfo {
    /// Request target (path and query).
    pub path: String,
    /// Subprotocols the client offered.
    pub offered: Vec<String>,
    /// Subprotocol the server selected.
    pub selected: Option<String>,
    /// Status of the answer.
    pub status: Option<u16>,
    /// When the answer came.
    pub response_time: Option<f64>,
    /// Credentials are to be redacted (not `--no-redact`): decoders leave them out of their
    /// fields and summaries.
    pub redact: bool,
}

impl HandshakeInfo {
    /// The value of query parameter `name`.
    pub fn query(&self, name: &str) -> Option<&str> {
        let query = self.path.split_once('?')?.1;
        query.split('&').find_map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (k == name).then_some(v)
        })
    }

    /// The path without the query.
    pub fn path_only(&self) -> &str {
        self.path.split('?').next().unwrap_or("")
    }
}

/// One data message for a decoder.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    /// Sender.
    pub from: Side,
    /// Capture time of the frame that completed it.
    pub time: f64,
    /// A binary (not text) message.
    pub binary: bool,
    /// The payload kept (all of it when `complete`).
    pub payload: &'a [u8],
    /// The message's whole length.
    pub length: u64,
    /// Nothing was lost and `payload` is all of it.
    pub complete: bool,
}

/// How well a message fits a protocol, for content recognition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fit {
    /// It cannot be this protocol's.
    No,
    /// Allowed, but says nothing (`2`, `\n`, `h`).
    Neutral,
    /// Well-formed for the protocol but not distinctive.
    Weak,
    /// Distinctive (`0{"sid":`, `CONNECT\n`, an MQTT CONNECT ...).
    Strong,
}

impl Fit {
    fn score(self) -> u32 {
        match self {
            Fit::No | Fit::Neutral => 0,
            Fit::Weak => 1,
            Fit::Strong => 2,
        }
    }
}

/// One decoded application packet.
#[derive(Debug, Clone)]
pub struct Packet {
    /// Its type as the protocol spells it.
    pub kind: String,
    /// Its own fields.
    pub fields: Map<String, Value>,
    /// One line for people.
    pub summary: String,
}

impl Packet {
    /// A packet of `kind` described by `summary`.
    pub fn new(kind: impl Into<String>, summary: impl Into<String>) -> Packet {
        Packet {
            kind: kind.into(),
            fields: Map::new(),
            summary: summary.into(),
        }
    }

    /// Adds a field.
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Packet {
        self.fields.insert(key.to_string(), value.into());
        self
    }

    /// Adds a field when there is a value.
    pub fn with_opt<T: Into<Value>>(self, key: &str, value: Option<T>) -> Packet {
        match value {
            Some(v) => self.with(key, v),
            None => self,
        }
    }

    fn record(&self, from: Option<Side>, time: Option<f64>) -> AppPacketRecord {
        AppPacketRecord {
            from,
            time,
            kind: self.kind.clone(),
            fields: self.fields.clone(),
            summary: self.summary.clone(),
        }
    }
}

/// What a decoder made of one message.
#[derive(Debug, Default)]
pub struct Decoded {
    /// Packets the message held (or completed, for byte streams).
    pub packets: Vec<Packet>,
    /// It was an application heartbeat (or only heartbeats).
    pub heartbeat: bool,
    /// Byte streams: the message ends inside a packet.
    pub continued: bool,
    /// Findings.
    pub diagnostics: Vec<Diagnostic>,
    /// Byte ranges of the message's payload that hold credentials ([`secrets`]); the analysis
    /// replaces them in the record unless `--no-redact`.
    pub secrets: Vec<secrets::Secret>,
}

impl Decoded {
    /// Adds a packet.
    pub fn push(&mut self, p: Packet) {
        self.packets.push(p);
    }

    /// A malformed message: an `app_protocol_violation` and an `invalid` packet saying why.
    pub fn violation(&mut self, protocol: &str, m: &Input<'_>, why: impl Into<String>) {
        let why = why.into();
        self.packets
            .push(Packet::new("invalid", format!("{protocol} invalid: {why}")));
        self.diag(
            DiagnosticId::AppProtocolViolation,
            m.from,
            m.time,
            format!("{protocol}: {why}"),
        );
    }

    /// Adds a finding.
    pub fn diag(&mut self, id: DiagnosticId, from: Side, time: f64, message: String) {
        self.diagnostics
            .push(Diagnostic::new(id, Some(from), Some(time), message));
    }

    /// The per-message record.
    pub fn record(&self) -> Option<AppMessageRecord> {
        let first = self.packets.first()?;
        let summary = self
            .packets
            .iter()
            .map(|p| p.summary.as_str())
            .collect::<Vec<_>>()
            .join("; ");
        Some(AppMessageRecord {
            kind: first.kind.clone(),
            fields: first.fields.clone(),
            summary,
            packets: (self.packets.len() > 1)
                .then(|| self.packets.iter().map(|p| p.record(None, None)).collect()),
            continued: self.continued.then_some(true),
        })
    }
}

/// A Close frame as the session saw it.
#[derive(Debug, Clone)]
pub struct CloseSeen {
    /// Sender.
    pub from: Side,
    /// When.
    pub time: f64,
    /// Status code (1005 when absent).
    pub code: u16,
    /// Reason.
    pub reason: String,
}

/// How the connection ended, for the decoders' final reasoning.
#[derive(Debug, Clone, Default)]
pub struct End {
    /// The first Close frame.
    pub close: Option<CloseSeen>,
    /// The other side's Close.
    pub reply: Option<CloseSeen>,
    /// First FIN or RST: (side, time, is_rst).
    pub tcp_end: Option<(Side, f64, bool)>,
    /// Last packet of the connection.
    pub last_seen: f64,
}

impl End {
    /// Who ended it first and when: the first Close frame, else the first FIN/RST.
    pub fn first(&self) -> Option<(Side, f64)> {
        match (&self.close, self.tcp_end) {
            (Some(c), Some((s, t, _))) if t < c.time => Some((s, t)),
            (Some(c), _) => Some((c.from, c.time)),
            (None, Some((s, t, _))) => Some((s, t)),
            (None, None) => None,
        }
    }

    /// `the server closed (Close 1005)`, `the client closed TCP (FIN, no Close frame)`.
    pub fn describe(&self) -> String {
        match (&self.close, self.tcp_end) {
            (Some(c), Some((s, t, rst))) if t < c.time => tcp_words(s, rst),
            (Some(c), _) => {
                let reason = if c.reason.is_empty() {
                    String::new()
                } else {
                    format!(" \"{}\"", c.reason)
                };
                format!("the {} closed (Close {}{reason})", c.from.as_str(), c.code)
            }
            (None, Some((s, _, rst))) => tcp_words(s, rst),
            (None, None) => "the capture ended".into(),
        }
    }

    /// The time the connection ended, or the last packet.
    pub fn time(&self) -> f64 {
        self.first().map_or(self.last_seen, |(_, t)| t)
    }
}

fn tcp_words(side: Side, rst: bool) -> String {
    format!(
        "the {} closed TCP ({}, no Close frame)",
        side.as_str(),
        if rst { "RST" } else { "FIN" }
    )
}

/// What a decoder says at the end.
#[derive(Debug, Default)]
pub struct Finish {
    /// The session summary.
    pub session: AppSessionRecord,
    /// The WebSocket close code's meaning under this protocol (graphql-ws 4408 ...).
    pub close_meaning: Option<String>,
    /// The protocol's reason for the ending, for the close summary (`engine.io ping timeout`).
    pub end_reason: Option<String>,
    /// The heartbeat timeout behind an `app_heartbeat_timeout` at the end, for the findings.
    pub heartbeat_timeout: Option<crate::record::AppHeartbeatTimeoutRecord>,
}

/// One protocol's decoder, with its per-connection session state.
pub trait Decoder {
    /// The record's `protocol` (may depend on what was seen: `socket.io` or `engine.io`).
    fn name(&self) -> String;
    /// The protocol's version, when known.
    fn version(&self) -> Option<String> {
        None
    }
    /// A remark about naming, for the record.
    fn note(&self) -> Option<String> {
        None
    }
    /// How well `m` fits, given what was seen before (for content recognition).
    fn fit(&self, m: &Input<'_>) -> Fit;
    /// Decodes one data message.
    fn message(&mut self, m: &Input<'_>, out: &mut Decoded);
    /// A WebSocket Close frame.
    fn close_frame(&mut self, _close: &CloseSeen) {}
    /// The connection ended: final reasoning and the summary.
    fn finish(&mut self, end: &End, out: &mut Vec<Diagnostic>) -> Finish;
    /// Packets are a byte stream, listed at connection level (MQTT).
    fn byte_stream(&self) -> bool {
        false
    }
    /// Credentials in `m`'s payload that this protocol puts there by design (login messages):
    /// byte ranges of the payload ([`secrets`]). Stateful decoders (MQTT's byte stream) add
    /// them to [`Decoded::secrets`] in [`Decoder::message`] instead.
    fn secrets(&self, _m: &Input<'_>) -> Vec<secrets::Secret> {
        Vec::new()
    }
}

struct Candidate {
    decoder: Box<dyn Decoder>,
    score: u32,
    consistent: u32,
    outputs: Vec<Decoded>,
}

struct Active {
    decoder: Box<dyn Decoder>,
    recognised_by: &'static str,
    evidence: String,
    /// Messages with a violation and no valid packet; when they are most of them, decoding stops
    /// at [`MAX_BAD_MESSAGES`] (the content is not this protocol's: no need to say so each time).
    bad: u32,
    good: u32,
    stopped: bool,
    /// The violations of the messages so far while none was well-formed: said when one is (the
    /// protocol is right and those messages were broken) or at the end, and summed up in one
    /// diagnostic when decoding stops.
    deferred: Vec<Diagnostic>,
}

/// Malformed messages (and at most half as many well-formed ones) after which a decoder stops: a handshake that
/// names a protocol its content does not follow (a path that happens to end in `/cable`, a
/// subprotocol chosen for its name) shows it in the first messages, and a real session starts
/// with a well-formed opening. Four leave room for a capture that starts inside a broken burst.
const MAX_BAD_MESSAGES: u32 = 4;

impl Active {
    fn new(decoder: Box<dyn Decoder>, recognised_by: &'static str, evidence: String) -> Active {
        Active {
            decoder,
            recognised_by,
            evidence,
            bad: 0,
            good: 0,
            stopped: false,
            deferred: Vec::new(),
        }
    }
}

/// The stage's progress. The recognition and the decoder are boxed: most connections carry no
/// application protocol, and every open one pays for what is inline.
enum State {
    Off,
    Waiting,
    Sniffing(Box<Sniffing>),
    Decoding(Box<Active>),
    GaveUp,
}

/// Content recognition under way.
struct Sniffing {
    candidates: Vec<Candidate>,
    /// Sender and time of each message held.
    seen: Vec<(Side, f64)>,
    /// The first few of them, as the recognition's evidence.
    previews: Vec<Preview>,
}

/// One connection's application-protocol stage.
pub struct AppSession {
    selection: AppSelection,
    handshake: HandshakeInfo,
    state: State,
    counts: BTreeMap<String, u64>,
    packets: Vec<AppPacketRecord>,
    packets_not_listed: u64,
    keep_packets: bool,
    last_data: Option<f64>,
    last_heartbeat: Option<(Side, f64, String)>,
    /// The first Close frame and the other side's (boxed: seen once, at the end).
    close: Option<Box<CloseSeen>>,
    reply: Option<Box<CloseSeen>>,
    client_data: u64,
    /// Find the credentials in each message's payload, for records that show it (nothing
    /// else reads them: a megabyte STOMP body was scanned for nothing).
    payload_secrets: bool,
}

/// What the session hands back at the end.
#[derive(Debug, Default)]
pub struct AppEnding {
    /// The connection's `app` object.
    pub record: Option<AppRecord>,
    /// Decodes of messages still held for recognition.
    pub released: Vec<Option<Decoded>>,
    /// Findings of the final reasoning.
    pub diagnostics: Vec<Diagnostic>,
    /// The WebSocket close code's meaning under the protocol.
    pub close_meaning: Option<String>,
    /// The protocol's reason for the ending.
    pub end_reason: Option<String>,
    /// The last application heartbeat, for the idle explanation.
    pub last_heartbeat: Option<String>,
}

impl AppSession {
    /// A session; `keep_packets`: list every byte-stream packet (`--messages`).
    pub fn new(selection: AppSelection, keep_packets: bool) -> Self {
        AppSession {
            selection,
            handshake: HandshakeInfo::default(),
            state: if selection.enabled() {
                State::Waiting
            } else {
                State::Off
            },
            counts: BTreeMap::new(),
            packets: Vec::new(),
            packets_not_listed: 0,
            keep_packets,
            last_data: None,
            last_heartbeat: None,
            close: None,
            reply: None,
            client_data: 0,
            payload_secrets: true,
        }
    }

    /// Credentials stay out of decoded fields and summaries (the default of the analysis;
    /// `--no-redact` turns it off).
    pub fn with_redaction(mut self, redact: bool) -> Self {
        self.handshake.redact = redact;
        self
    }

    /// Whether [`Decoded::secrets`] is wanted: only message records with payloads, redacted,
    /// use it (the decoders' own fields are redacted whatever this says).
    pub fn with_payload_secrets(mut self, wanted: bool) -> Self {
        self.payload_secrets = wanted;
        self
    }

    /// The upgrade request.
    pub fn handshake_request(&mut self, path: &str, offered: &[String]) {
        self.handshake.path = path.to_string();
        self.handshake.offered = offered.to_vec();
    }

    /// The answer to it; `accepted`: it opened the WebSocket (a 101, or an HTTP/2 2xx).
    pub fn handshake_response(
        &mut self,
        status: u16,
        accepted: bool,
        selected: Option<&str>,
        time: f64,
    ) {
        self.handshake.status = Some(status);
        self.handshake.selected = selected.map(str::to_string);
        self.handshake.response_time = Some(time);
        if accepted {
            // Decided now when the handshake says enough: a session with no message at all
            // (graphql-ws closing 4408) still gets its protocol's reading of the close.
            self.start_from_handshake();
        }
    }

    fn start_from_handshake(&mut self) -> bool {
        if !matches!(self.state, State::Waiting) {
            return true;
        }
        let sel = self.selection;
        let found = match sel.forced {
            Some(p) => Some((p, "forced", format!("--app {}", p.name()))),
            None => recognise_handshake(&self.handshake).filter(|(p, _, _)| sel.allows(*p)),
        };
        let Some((p, by, evidence)) = found else {
            return false;
        };
        self.state = State::Decoding(Box::new(Active::new(
            p.decoder(&self.handshake, sel.flavour),
            by,
            evidence,
        )));
        true
    }

    /// Does the stage still read payloads (recognising or decoding)? Once it gave up (or is
    /// off) the assembler need keep only what the records show.
    pub fn wants_payload(&self) -> bool {
        match &self.state {
            State::Waiting | State::Sniffing(_) => true,
            State::Decoding(active) => !active.stopped,
            State::Off | State::GaveUp => false,
        }
    }

    /// Are messages being held for recognition?
    pub fn holding(&self) -> bool {
        matches!(self.state, State::Sniffing(_))
    }

    /// Decides from the handshake, once, at the first message.
    fn start(&mut self) {
        if !matches!(self.state, State::Waiting) {
            return;
        }
        if self.start_from_handshake() {
            return;
        }
        // The candidates are built at the first message, from those it admits.
        self.state = State::Sniffing(Box::new(Sniffing {
            candidates: Vec::new(),
            seen: Vec::new(),
            previews: Vec::new(),
        }));
    }

    /// One data message. Returns the decodes of the messages it releases, in order: this one
    /// alone when the protocol is known (None: no protocol), several when recognition just
    /// decided (the held ones, then this one), none when it is held.
    pub fn message(&mut self, m: &Input<'_>) -> Vec<Option<Decoded>> {
        if m.from == Side::Client {
            self.client_data += 1;
        }
        self.start();
        match &mut self.state {
            State::Off | State::GaveUp | State::Waiting => vec![None],
            State::Decoding(active) if active.stopped => vec![None],
            State::Decoding(active) => {
                let mut out = Decoded::default();
                active.decoder.message(m, &mut out);
                if self.payload_secrets {
                    out.secrets.extend(active.decoder.secrets(m));
                }
                let invalid = out.packets.iter().any(|p| p.kind == "invalid");
                if invalid {
                    active.bad += 1;
                } else if !out.packets.is_empty() {
                    active.good += 1;
                }
                // Mostly malformed: a few well-formed ones among them are chance.
                if active.bad >= MAX_BAD_MESSAGES && active.bad > 2 * active.good {
                    active.stopped = true;
                }
                if active.good == 0 || active.stopped {
                    let (violations, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut out.diagnostics)
                        .into_iter()
                        .partition(|d| d.id == DiagnosticId::AppProtocolViolation);
                    out.diagnostics = rest;
                    active.deferred.extend(violations);
                    if active.stopped {
                        let first = active
                            .deferred
                            .first()
                            .map(|d| format!(" (the first: {})", d.message))
                            .unwrap_or_default();
                        active.deferred.clear();
                        let name = active.decoder.name();
                        out.diag(
                            DiagnosticId::AppProtocolViolation,
                            m.from,
                            m.time,
                            format!(
                                "{name}: {} of the first {} messages are malformed{first}: the content is not {name} whatever the {} says; decoding stopped",
                                active.bad,
                                active.bad + active.good,
                                active.recognised_by
                            ),
                        );
                    }
                } else if !active.deferred.is_empty() {
                    // The protocol is right after all: those messages were broken.
                    let mut all = std::mem::take(&mut active.deferred);
                    all.append(&mut out.diagnostics);
                    out.diagnostics = all;
                }
                let byte_stream = active.decoder.byte_stream();
                self.account(m, &out, byte_stream);
                vec![Some(out)]
            }
            State::Sniffing(sniffing) => {
                let Sniffing {
                    candidates,
                    seen,
                    previews,
                } = &mut **sniffing;
                if seen.is_empty() {
                    let sel = self.selection;
                    *candidates = Protocol::ALL
                        .iter()
                        .filter(|&&p| sel.allows(p) && admits(p, m))
                        .map(|&p| Candidate {
                            decoder: p.decoder(&self.handshake, sel.flavour),
                            score: 0,
                            consistent: 0,
                            outputs: Vec::new(),
                        })
                        .collect();
                }
                seen.push((m.from, m.time));
                let payload_secrets = self.payload_secrets;
                if previews.len() < EVIDENCE_MESSAGES {
                    previews.push(Preview::of(m));
                }
                candidates.retain_mut(|c| {
                    let fit = c.decoder.fit(m);
                    if fit == Fit::No {
                        return false;
                    }
                    c.score += fit.score();
                    c.consistent += 1;
                    let mut out = Decoded::default();
                    c.decoder.message(m, &mut out);
                    if payload_secrets {
                        out.secrets.extend(c.decoder.secrets(m));
                    }
                    c.outputs.push(out);
                    true
                });
                let winner = candidates
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| c.consistent >= 2 && c.score >= 3)
                    .max_by(|(i, a), (j, b)| a.score.cmp(&b.score).then(j.cmp(i)))
                    .map(|(i, _)| i);
                if let Some(i) = winner {
                    let c = candidates.swap_remove(i);
                    let evidence = format!(
                        "{} consistent messages: {}",
                        c.consistent,
                        previews
                            .iter()
                            .map(Preview::to_string)
                            .collect::<Vec<_>>()
                            .join(", ")
                    );
                    let byte_stream = c.decoder.byte_stream();
                    let senders = std::mem::take(seen);
                    self.state =
                        State::Decoding(Box::new(Active::new(c.decoder, "content", evidence)));
                    let outputs = c.outputs;
                    // The held messages are accounted now.
                    let mut released = Vec::with_capacity(outputs.len());
                    for (out, (from, time)) in outputs.into_iter().zip(senders) {
                        self.account_decoded(&out, byte_stream, from, Some(time));
                        released.push(Some(out));
                    }
                    return released;
                }
                if candidates.is_empty() || seen.len() >= MAX_SNIFF_MESSAGES {
                    let n = seen.len();
                    self.state = State::GaveUp;
                    return (0..n).map(|_| None).collect();
                }
                Vec::new()
            }
        }
    }

    fn account(&mut self, m: &Input<'_>, out: &Decoded, byte_stream: bool) {
        self.account_decoded(out, byte_stream, m.from, Some(m.time));
    }

    fn account_decoded(&mut self, out: &Decoded, byte_stream: bool, from: Side, time: Option<f64>) {
        let time = time.unwrap_or(0.0);
        for p in &out.packets {
            match self.counts.get_mut(&p.kind) {
                Some(n) => *n += 1,
                None => {
                    self.counts.insert(p.kind.clone(), 1);
                }
            }
            if byte_stream {
                let cap = if self.keep_packets {
                    PACKETS_LISTED_MAX
                } else {
                    PACKETS_LISTED_BRIEF
                };
                if self.packets.len() < cap {
                    self.packets.push(p.record(Some(from), Some(time)));
                } else {
                    self.packets_not_listed += 1;
                }
            }
        }
        if out.heartbeat {
            let kind = out.packets.first().map_or("heartbeat", |p| p.kind.as_str());
            self.last_heartbeat = Some((from, time, kind.to_string()));
        } else if !out.packets.is_empty() {
            self.last_data = Some(time);
        }
    }

    /// A Close frame: recognition stops waiting (the held messages are released, undecided when
    /// the evidence was not enough).
    pub fn close_frame(
        &mut self,
        from: Side,
        time: f64,
        code: u16,
        reason: &[u8],
    ) -> Vec<Option<Decoded>> {
        let seen = CloseSeen {
            from,
            time,
            code,
            reason: String::from_utf8_lossy(reason).into_owned(),
        };
        if self.close.is_none() {
            self.close = Some(Box::new(seen.clone()));
        } else if self.reply.is_none() && self.close.as_ref().is_some_and(|c| c.from != from) {
            self.reply = Some(Box::new(seen.clone()));
        }
        let released = self.give_up();
        if let State::Decoding(active) = &mut self.state {
            active.decoder.close_frame(&seen);
        }
        released
    }

    /// Stops content recognition (too many records held): the held messages are released
    /// undecided.
    pub fn stop_recognising(&mut self) -> Vec<Option<Decoded>> {
        self.give_up()
    }

    fn give_up(&mut self) -> Vec<Option<Decoded>> {
        if let State::Sniffing(sniffing) = &self.state {
            let n = sniffing.seen.len();
            self.state = State::GaveUp;
            return (0..n).map(|_| None).collect();
        }
        Vec::new()
    }

    /// The connection ended.
    pub fn finish(&mut self, tcp_end: Option<(Side, f64, bool)>, last_seen: f64) -> AppEnding {
        let mut ending = AppEnding {
            released: self.give_up(),
            ..AppEnding::default()
        };
        let end = End {
            close: self.close.as_deref().cloned(),
            reply: self.reply.as_deref().cloned(),
            tcp_end,
            last_seen,
        };
        self.subprotocol_check(&end, &mut ending.diagnostics);
        ending.last_heartbeat = self.last_heartbeat.as_ref().map(|(side, t, kind)| {
            format!(
                "{} {kind} from the {} at {} ({} before the end)",
                "application heartbeat",
                side.as_str(),
                crate::analysis::clock(*t),
                crate::analysis::close::human_seconds((end.time() - t).max(0.0))
            )
        });
        let State::Decoding(active) = &mut self.state else {
            return ending;
        };
        // Too few messages to call the protocol wrong: their violations stand.
        ending.diagnostics.append(&mut active.deferred);
        let fin = active.decoder.finish(&end, &mut ending.diagnostics);
        let mut session = fin.session;
        if let Some(t) = fin.heartbeat_timeout {
            session
                .heartbeat
                .get_or_insert_with(|| AppHeartbeatRecord {
                    kind: format!("{} heartbeats", active.decoder.name()),
                    ..AppHeartbeatRecord::default()
                })
                .timed_out = Some(t);
        }
        session.packet_counts = std::mem::take(&mut self.counts);
        session.idle_before_end = self
            .last_data
            .map(|t| ((end.time() - t).max(0.0) * 1000.0).round() / 1000.0);
        let byte_stream = active.decoder.byte_stream();
        ending.close_meaning = fin.close_meaning;
        ending.end_reason = fin.end_reason;
        ending.record = Some(AppRecord {
            protocol: active.decoder.name(),
            version: active.decoder.version(),
            recognised_by: active.recognised_by,
            evidence: active.evidence.clone(),
            note: if active.stopped {
                Some(format!(
                    "decoding stopped after {} malformed messages (of {}): the content does not follow the protocol the {} named",
                    active.bad,
                    active.bad + active.good,
                    active.recognised_by
                ))
            } else {
                active.decoder.note()
            },
            session,
            packets: byte_stream.then(|| std::mem::take(&mut self.packets)),
            packets_not_listed: self.packets_not_listed,
        });
        ending
    }

    /// `subprotocol_not_selected`: the client offered subprotocols and the 101 selected none.
    fn subprotocol_check(&self, end: &End, out: &mut Vec<Diagnostic>) {
        let hs = &self.handshake;
        if hs.offered.is_empty() || hs.selected.is_some() || hs.status != Some(101) {
            return;
        }
        let offered = hs.offered.join(", ");
        let mut message = format!(
            "the client offered Sec-WebSocket-Protocol {offered}; the server's 101 selected none (RFC 6455 §4.2.2)"
        );
        // The client gave up: it ended the connection (Close or FIN/RST) without a message.
        let client_end = match (&end.close, end.tcp_end) {
            (Some(c), _) if c.from == Side::Client => Some(c.time),
            (_, Some((Side::Client, t, _))) => Some(t),
            _ => None,
        };
        let gave_up = client_end.filter(|_| self.client_data == 0);
        if let Some(t) = gave_up {
            let after = hs
                .response_time
                .map(|r| {
                    format!(
                        " {} after the 101",
                        crate::analysis::close::human_seconds((t - r).max(0.0))
                    )
                })
                .unwrap_or_default();
            message.push_str(&format!(
                "; the client gave up{after} without sending a message: {} (clients such as ws and browsers fail the connection when a requested subprotocol is not selected)",
                match (&end.close, end.tcp_end) {
                    (Some(c), _) if c.from == Side::Client => format!("it sent Close {}", c.code),
                    (_, Some((_, _, rst))) => format!("it closed TCP ({}) without a Close frame", if rst { "RST" } else { "FIN" }),
                    _ => String::new(),
                }
            ));
        }
        out.push(Diagnostic::new(
            DiagnosticId::SubprotocolNotSelected,
            Some(Side::Server),
            hs.response_time,
            message,
        ));
    }
}

/// Parses JSON, naming the problem for a violation.
pub fn parse_json(bytes: &[u8]) -> Result<Value, String> {
    serde_json::from_slice(bytes).map_err(|e| format!("not JSON ({e})"))
}

/// A value as short text for summaries: strings quoted, cut at 40 characters.
pub fn short(v: &Value) -> String {
    let s = match v {
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    };
    cut(&s, 40)
}

/// Cuts `s` to `max` characters, marking the cut.
pub fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// Milliseconds, rounded to the microsecond.
pub fn ms(seconds: f64) -> f64 {
    (seconds * 1e6).round() / 1e3
}

/// `201 ms`, `1.5 s`.
pub fn human(seconds: f64) -> String {
    crate::analysis::close::human_seconds(seconds)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn input(from: Side, time: f64, text: &str) -> Input<'_> {
        Input {
            from,
            time,
            binary: false,
            payload: text.as_bytes(),
            length: text.len() as u64,
            complete: true,
        }
    }

    #[test]
    fn selection_parses_names_and_rejects_the_ambiguous_one() {
        assert!(AppSelection::parse(&[]).unwrap().enabled());
        assert!(!AppSelection::parse(&["none".into()]).unwrap().enabled());
        let s = AppSelection::parse(&["mqtt".into()]).unwrap();
        assert_eq!(s.forced, Some(Protocol::Mqtt));
        let s = AppSelection::parse(&["mqtt".into(), "stomp".into()]).unwrap();
        assert_eq!(s.forced, None);
        assert!(s.allows(Protocol::Stomp) && !s.allows(Protocol::SocketIo));
        let e = AppSelection::parse(&["graphql-ws".into()]).unwrap_err();
        assert!(e.contains("ambiguous"), "{e}");
        assert!(AppSelection::parse(&["nope".into()]).is_err());
    }

    #[test]
    fn handshake_recognition_prefers_the_subprotocol_then_the_path() {
        let hs = HandshakeInfo {
            path: "/socket.io/?EIO=4&transport=websocket".into(),
            selected: Some("graphql-transport-ws".into()),
            ..HandshakeInfo::default()
        };
        assert_eq!(recognise_handshake(&hs).unwrap().0, Protocol::Graphql);
        let hs = HandshakeInfo {
            path: "/socket.io/?EIO=4&transport=websocket".into(),
            ..HandshakeInfo::default()
        };
        assert_eq!(recognise_handshake(&hs).unwrap().1, "path");
        let hs = HandshakeInfo {
            path: "/socket/websocket?vsn=2.0.0".into(),
            ..HandshakeInfo::default()
        };
        assert_eq!(recognise_handshake(&hs).unwrap().0, Protocol::Phoenix);
        let hs = HandshakeInfo {
            path: "/stomp/123/abcdefgh/websocket".into(),
            ..HandshakeInfo::default()
        };
        assert_eq!(recognise_handshake(&hs).unwrap().0, Protocol::SockJs);
        let hs = HandshakeInfo {
            path: "/chat".into(),
            ..HandshakeInfo::default()
        };
        assert!(recognise_handshake(&hs).is_none());
    }

    #[test]
    fn content_needs_two_consistent_messages_and_holds_them_until_then() {
        let mut s = AppSession::new(AppSelection::auto(), false);
        let first = s.message(&input(
            Side::Client,
            1.0,
            r#"{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber"}"#,
        ));
        assert!(first.is_empty(), "held");
        let second = s.message(&input(
            Side::Server,
            1.1,
            r#"{"jsonrpc":"2.0","id":1,"result":"0x10"}"#,
        ));
        assert_eq!(second.len(), 2);
        let end = s.finish(None, 2.0);
        let record = end.record.unwrap();
        assert_eq!(
            (record.protocol.as_str(), record.recognised_by),
            ("json-rpc", "content")
        );
        assert_eq!(record.session.requests.unwrap().answered, 1);
    }

    #[test]
    fn a_midstream_capture_is_recognised_from_what_its_messages_allow() {
        // No handshake: Socket.IO events and Engine.IO heartbeats.
        let mut s = AppSession::new(AppSelection::auto(), false);
        assert!(s.message(&input(Side::Server, 1.0, "2")).is_empty());
        assert!(s.message(&input(Side::Client, 1.0, "3")).is_empty());
        assert!(
            s.message(&input(Side::Client, 1.1, r#"42["chat","a"]"#))
                .is_empty()
        );
        let released = s.message(&input(Side::Server, 1.2, r#"42["chat","b"]"#));
        assert_eq!(released.len(), 4);
        assert!(
            released[0].as_ref().unwrap().heartbeat,
            "the held ping decoded too"
        );
        let r = s.finish(None, 2.0).record.unwrap();
        assert_eq!(
            (r.protocol.as_str(), r.recognised_by),
            ("socket.io", "content")
        );
        // MQTT mid-stream: well-formed packets, none distinctive alone.
        let mut s = AppSession::new(AppSelection::auto(), false);
        let bin = |from, t, b: &'static [u8]| Input {
            from,
            time: t,
            binary: true,
            payload: b,
            length: b.len() as u64,
            complete: true,
        };
        assert!(
            s.message(&bin(Side::Client, 1.0, &[0x32, 6, 0, 1, b'x', 0, 5, b'!']))
                .is_empty()
        );
        assert!(
            s.message(&bin(Side::Server, 1.1, &[0x40, 2, 0, 5]))
                .is_empty()
        );
        assert_eq!(s.message(&bin(Side::Client, 1.2, &[0xC0, 0])).len(), 3);
        let r = s.finish(None, 2.0).record.unwrap();
        assert_eq!(r.protocol, "mqtt");
        assert_eq!(r.packets.unwrap().len(), 3);
    }

    #[test]
    fn a_decoder_fed_only_garbage_stops_and_says_so_once() {
        let mut s = AppSession::new(AppSelection::parse(&["mqtt".into()]).unwrap(), false);
        let mut violations = 0;
        for i in 0..30 {
            for d in s
                .message(&input(Side::Client, i as f64, "not mqtt"))
                .into_iter()
                .flatten()
            {
                violations += d.diagnostics.len();
            }
        }
        // Said once, when decoding stops, naming the first problem.
        assert_eq!(violations, 1);
        assert!(!s.wants_payload());
        let r = s.finish(None, 31.0).record.unwrap();
        assert!(
            r.note
                .unwrap()
                .starts_with("decoding stopped after 4 malformed messages (of 4)")
        );
    }

    #[test]
    fn violations_before_the_first_good_message_are_said_when_it_comes() {
        let mut s = AppSession::new(AppSelection::parse(&["stomp".into()]).unwrap(), false);
        let mut diags = Vec::new();
        for (i, text) in ["NOPE\n\n\0", "CONNECTED\nversion:1.2\n\n\0"]
            .iter()
            .enumerate()
        {
            for d in s
                .message(&input(Side::Server, i as f64, text))
                .into_iter()
                .flatten()
            {
                diags.extend(d.diagnostics);
            }
        }
        assert_eq!(diags.len(), 1, "{diags:?}");
        assert_eq!(diags[0].id, DiagnosticId::AppProtocolViolation);
        assert_eq!(diags[0].time, Some(0.0));
        // And at the end when no good message came.
        let mut s = AppSession::new(AppSelection::parse(&["stomp".into()]).unwrap(), false);
        let out = s.message(&input(Side::Server, 1.0, "NOPE\n\n\0"));
        assert!(out[0].as_ref().unwrap().diagnostics.is_empty());
        let end = s.finish(None, 2.0);
        assert!(
            end.diagnostics
                .iter()
                .any(|d| d.id == DiagnosticId::AppProtocolViolation)
        );
    }

    #[test]
    fn the_first_byte_prefilter_never_rules_out_a_protocol_that_fits() {
        let texts: &[&str] = &[
            "0{\"sid\":\"a\",\"pingInterval\":25000,\"pingTimeout\":20000}",
            "2",
            "3probe",
            "42[\"chat\",\"a\"]",
            "40",
            "{\"type\":\"connection_init\"}",
            "{\"type\":\"welcome\"}",
            " {\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"m\"}",
            "[{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":2}]",
            "[\"1\",\"1\",\"room:lobby\",\"phx_join\",{}]",
            "{\"topic\":\"phoenix\",\"event\":\"heartbeat\",\"payload\":{},\"ref\":\"1\"}",
            "o",
            "h",
            "a[\"x\"]",
            "c[3000,\"Go away!\"]",
            "[\"CONNECT\\n\\n\\u0000\"]",
            "CONNECT\naccept-version:1.2\n\n\0",
            "\n",
            "{\"protocol\":\"json\",\"version\":1}\u{1e}",
            "{\"type\":1,\"target\":\"x\",\"arguments\":[]}\u{1e}",
            "GET / HTTP/1.1\r\nHost: x\r\n\r\n",
            "SSH-2.0-OpenSSH_9.2\r\n",
            "{\"type\":\"tick\",\"seq\":1}",
            "hello there",
            "",
            "  ",
            "9",
        ];
        let binaries: &[&[u8]] = &[
            &[0x10, 12, 0, 4, b'M', b'Q', b'T', b'T', 4, 2, 0, 60, 0, 0],
            &[0x20, 2, 0, 0],
            &[0xC0, 0],
            &[4, 1, 2, 3],
            &[0, 1, 2],
            &[0x16, 3, 1, 0, 5, 1, 0, 0, 1, 0],
            b"SSH-2.0-x\r\n",
            b"RFB 003.008\n",
            b"CONNECT\n\n\0",
            &[0xff, 0xfe],
            &[],
        ];
        let mut inputs: Vec<Input<'_>> = Vec::new();
        for from in [Side::Client, Side::Server] {
            for t in texts {
                inputs.push(Input {
                    from,
                    ..input(from, 1.0, t)
                });
            }
            for b in binaries {
                inputs.push(Input {
                    from,
                    time: 1.0,
                    binary: true,
                    payload: b,
                    length: b.len() as u64,
                    complete: true,
                });
            }
        }
        let hs = HandshakeInfo::default();
        for p in Protocol::ALL {
            for m in &inputs {
                if !admits(p, m) {
                    let fit = p.decoder(&hs, None).fit(m);
                    assert_eq!(fit, Fit::No, "{} ruled out {:?}", p.name(), m);
                }
            }
        }
    }

    #[test]
    fn unrecognised_content_is_released_undecoded() {
        let mut s = AppSession::new(AppSelection::auto(), false);
        let mut released = 0;
        for i in 0..MAX_SNIFF_MESSAGES {
            released += s
                .message(&input(Side::Client, i as f64, "hello there"))
                .len();
        }
        assert_eq!(released, MAX_SNIFF_MESSAGES);
        assert!(s.finish(None, 9.0).record.is_none());
    }

    #[test]
    fn a_close_releases_held_messages() {
        let mut s = AppSession::new(AppSelection::auto(), false);
        assert!(
            s.message(&input(
                Side::Client,
                1.0,
                "CONNECT\naccept-version:1.2\nhost:x\n\n\0"
            ))
            .is_empty()
        );
        let r = s.close_frame(Side::Server, 1.5, 1000, b"");
        assert_eq!(r.len(), 1);
        assert!(r[0].is_none());
    }

    #[test]
    fn subprotocol_offered_but_not_selected_then_the_client_gives_up() {
        let mut s = AppSession::new(AppSelection::auto(), false);
        s.handshake_request("/graphql", &["graphql-transport-ws".into()]);
        s.handshake_response(101, true, None, 1.0);
        let end = s.finish(Some((Side::Client, 1.003, false)), 1.004);
        let d = &end.diagnostics[0];
        assert_eq!(d.id, DiagnosticId::SubprotocolNotSelected);
        assert!(
            d.message.contains("gave up 3 ms after the 101"),
            "{}",
            d.message
        );
    }
}
