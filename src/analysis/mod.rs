//! Connection analysis: handshake heads, frames, messages and findings of one connection in,
//! its [`ConnectionRecord`] out; events are pushed to the [`Sink`] as they happen.

pub mod close;
mod packed;
pub mod ping;
pub mod redact;
pub mod timing;

use std::collections::{BTreeMap, VecDeque};

use crate::app::{AppSelection, AppSession, Decoded, Input};
use crate::diag::{Diagnostic, DiagnosticId, Side};
use crate::http::{Negotiated, RequestHead, ResponseHead, derive_accept_key};
use crate::record::spool::{Spool, SpooledMessages};
use crate::record::{
    Address, ConnectionRecord, DeflateRecoveryRecord, FrameRecord, HandshakeRecord, Header,
    MessageRecord, OpcodeCounts, PerSide, TcpRecord, TimingRecord,
};
use crate::record::{Event, MessageList, Sink};
use crate::ws::frame::FrameHeader;
use crate::ws::message::{Message, PayloadMode};
use crate::ws::opcode::OpCode;
use std::sync::Arc;

use close::{CloseTracker, EndContext};
use packed::StoredHandshake;
use ping::PingTracker;
use timing::{TimingTracker, round6};

/// Diagnostics listed per id and connection; the rest are only counted, so a storm of
/// violations cannot grow memory.
pub const MAX_DIAGNOSTICS_PER_ID: u64 = 20;

/// Messages kept in memory per connection for `--messages` (table, html, har; json keeps them
/// in the message spool, all of them).
pub const MAX_MESSAGES_KEPT: usize = 100_000;

/// Frame headers kept per connection for `--frames` in the json and table reports.
pub const MAX_FRAMES_KEPT: usize = 100_000;

/// What the analysis needs from the command line.
#[derive(Debug, Clone, Copy)]
pub struct AnalysisOptions {
    /// Keep every message in the connection record (`--messages`, json/table).
    pub keep_messages: bool,
    /// Push a message event for every message (jsonl).
    pub message_events: bool,
    /// How much payload message records carry.
    pub payload: PayloadMode,
    /// Keep every frame header in the connection record (`--frames`, json/table).
    pub keep_frames: bool,
    /// Push a frame event for every frame header (`--frames`, jsonl).
    pub frame_events: bool,
    /// Application protocols to recognise (`--app`).
    pub app: AppSelection,
    /// Replace credentials in the handshake by `REDACTED` ([`redact`]); `--no-redact` clears it.
    pub redact: bool,
}

/// Records (and control frames between them) held back while the application protocol is
/// being recognised from their content; past this the recognition gives up.
const MAX_HELD: usize = 64;

/// A message record waiting for the application protocol's decision.
struct Held {
    record: Option<MessageRecord>,
    listed: bool,
    data: bool,
    /// Credentials found in its payload before the application stage looked (JSON keys).
    secrets: Vec<crate::app::secrets::Secret>,
}

/// The messages a connection lists (`--messages`).
enum Listing {
    /// In memory, at most [`MAX_MESSAGES_KEPT`].
    Held(Vec<MessageRecord>),
    /// In the message spool, as many as there are.
    Spooled(Box<SpooledListing>),
}

struct SpooledListing {
    messages: SpooledMessages,
    /// Records the spool could not take, and why.
    refused: u64,
    why: Option<String>,
}

/// Pings outstanding per side (client, server): how many, and since when.
type Outstanding = [(u64, Option<f64>); 2];

/// One connection's running analysis.
pub struct Analysis {
    id: u64,
    options: AnalysisOptions,
    /// The connection carried an upgrade attempt or frames, so it is reported.
    interesting: bool,
    /// Packed while the connection is idle (see [`packed`]).
    handshake: StoredHandshake,
    key: Option<String>,
    /// The subprotocols offered, as sent (the record may hold them redacted).
    offered_protocols: Vec<String>,
    /// Upgrade headers the request lacked (`Upgrade: websocket`, `Connection: Upgrade`).
    request_missing: Vec<&'static str>,
    refused: Option<String>,
    frames: PerSide<OpcodeCounts>,
    message_counts: PerSide<u64>,
    payload_bytes: PerSide<u64>,
    deflate_recovery: PerSide<DeflateRecoveryRecord>,
    messages: Listing,
    messages_dropped: u64,
    frames_detail: Vec<FrameRecord>,
    frames_dropped: u64,
    /// Made at the first Close frame or at the end, like `ping`: an open connection is not
    /// closing.
    close: Option<Box<CloseTracker>>,
    /// Made at the first ping, pong or close: most connections never send one, and an idle
    /// connection should not carry the tracker's 360 bytes.
    ping: Option<Box<PingTracker>>,
    timing: TimingTracker,
    /// Pings outstanding per side (client, server) when the close handshake began.
    pings_at_close: Option<Box<Outstanding>>,
    diagnostics: Vec<Diagnostic>,
    counts: BTreeMap<DiagnosticId, u64>,
    last_frame_time: Option<f64>,
    last_message: Option<LastMessage>,
    started: Option<f64>,
    /// Set for TLS connections only (boxed: most connections are plain, and every open one
    /// pays for what is inline).
    transport: Option<Box<TransportEnd>>,
    scratch: Vec<Diagnostic>,
    app: AppSession,
    held: VecDeque<Held>,
}

/// What the transport below WebSocket (TLS) says about the end, set by the connection driver.
#[derive(Debug, Clone, Default)]
pub struct TransportEnd {
    /// The WebSocket layer is not visible (TLS that was not decrypted): why. The close record
    /// then says `encrypted` instead of inferring WebSocket facts that encryption hides.
    pub opaque: Option<String>,
    /// Decrypted TLS that carried no WebSocket (no upgrade attempt, no frames): why; the close
    /// record then says `not_websocket` rather than 1006.
    pub no_websocket: Option<String>,
    /// A sentence appended to the close summary (close_notify, alerts, record-size hints).
    pub note: Option<String>,
    /// Time of the last bytes carried, for the idle time before the end when no frame is seen.
    pub last_activity: Option<f64>,
    /// What TLS saw of the end: the close_notify or alert that began it, and (not decrypted)
    /// the application records the idle time is measured from.
    pub tls: Option<crate::record::tls::TlsEnding>,
}

impl Analysis {
    /// The connection is idle: give back spare capacity (scratch space, held records).
    pub fn shrink(&mut self) {
        self.handshake.pack();
        self.scratch.shrink_to_fit();
        self.held.shrink_to_fit();
        self.diagnostics.shrink_to_fit();
    }

    /// A connection numbered `id`.
    pub fn new(id: u64, options: AnalysisOptions) -> Self {
        Analysis {
            id,
            options,
            interesting: false,
            handshake: StoredHandshake::default(),
            key: None,
            offered_protocols: Vec::new(),
            request_missing: Vec::new(),
            refused: None,
            frames: PerSide::default(),
            message_counts: PerSide::default(),
            payload_bytes: PerSide::default(),
            deflate_recovery: PerSide::default(),
            messages: Listing::Held(Vec::new()),
            messages_dropped: 0,
            frames_detail: Vec::new(),
            frames_dropped: 0,
            close: None,
            ping: None,
            timing: TimingTracker::default(),
            pings_at_close: None,
            diagnostics: Vec::new(),
            counts: BTreeMap::new(),
            last_frame_time: None,
            last_message: None,
            started: None,
            transport: None,
            scratch: Vec::new(),
            app: AppSession::new(options.app, options.keep_messages)
                .with_redaction(options.redact)
                .with_payload_secrets(
                    options.redact
                        && (options.keep_messages || options.message_events)
                        && options.payload != PayloadMode::None,
                ),
            held: VecDeque::new(),
        }
    }

    /// What the transport below says about the end (see [`TransportEnd`]).
    pub fn set_transport_end(&mut self, transport: TransportEnd) {
        self.transport = Some(Box::new(transport));
    }

    /// Did the connection show WebSocket: an upgrade attempt or frames?
    pub fn carries_websocket(&self) -> bool {
        self.handshake.is_some() || self.frames.client.total() + self.frames.server.total() > 0
    }

    /// Is the connection reported?
    pub fn is_interesting(&self) -> bool {
        self.interesting
    }

    /// Marks the connection as reported; the first time, announces it and replays the
    /// findings gathered before (such as TCP gaps).
    pub fn make_interesting(
        &mut self,
        time: f64,
        client: &Address,
        server: &Address,
        sink: &mut dyn Sink,
    ) {
        if self.interesting {
            return;
        }
        self.interesting = true;
        sink.event(&Event::ConnectionSeen {
            id: self.id,
            time,
            client,
            server,
        });
        for d in &self.diagnostics {
            sink.event(&Event::Diagnostic {
                id: self.id,
                diagnostic: d,
            });
        }
    }

    /// Records a finding.
    pub fn diag(&mut self, d: Diagnostic, sink: &mut dyn Sink) {
        let count = self.counts.entry(d.id).or_insert(0);
        *count += 1;
        if *count > MAX_DIAGNOSTICS_PER_ID {
            return;
        }
        if self.interesting {
            sink.event(&Event::Diagnostic {
                id: self.id,
                diagnostic: &d,
            });
        }
        self.diagnostics.push(d);
    }

    /// The last listed finding that `matches`, to amend it with what was learnt later (the
    /// bytes of a TCP gap turning up late). Events already streamed keep the first text; the
    /// connection's record has the amended one. None when it was not listed (over the per-id cap).
    pub fn last_diag_mut(
        &mut self,
        matches: impl Fn(&Diagnostic) -> bool,
    ) -> Option<&mut Diagnostic> {
        self.diagnostics.iter_mut().rev().find(|d| matches(d))
    }

    fn drain_scratch(&mut self, sink: &mut dyn Sink) {
        let found = std::mem::take(&mut self.scratch);
        for d in found {
            self.diag(d, sink);
        }
    }

    /// An upgrade request.
    pub fn handshake_request(&mut self, req: &RequestHead, time: f64, sink: &mut dyn Sink) {
        let problems = req.problems();
        self.key = req.key.clone();
        self.offered_protocols = req.protocols.clone();
        self.request_missing = req.missing_upgrade_headers();
        self.app.handshake_request(&req.path, &req.protocols);
        self.timing.handshake(Side::Client, time);
        if let Some(key) = &req.key {
            self.timing.key(key);
        }
        self.handshake
            .set(request_record(req, time, self.options.redact));
        if !problems.is_empty() {
            self.diag(
                Diagnostic::new(
                    DiagnosticId::HandshakeInvalid,
                    Some(Side::Client),
                    Some(time),
                    format!("upgrade request: {}", problems.join("; ")),
                ),
                sink,
            );
        }
    }

    /// The answer to the upgrade request. Returns the negotiated extensions when it is a 101.
    pub fn handshake_response(
        &mut self,
        resp: &ResponseHead,
        time: f64,
        sink: &mut dyn Sink,
    ) -> Option<Negotiated> {
        let handshake = self.handshake.get_or_default();
        add_response(handshake, resp, time, self.options.redact);
        self.app.handshake_response(
            resp.status,
            resp.status == 101,
            resp.protocol.as_deref(),
            time,
        );
        if resp.status != 101 {
            self.refused = Some(
                format!("{} {}", resp.status, resp.reason)
                    .trim_end()
                    .to_string(),
            );
            let path = handshake.path.clone();
            let status = format!("{} {}", resp.status, resp.reason);
            let mut message = format!("upgrade of {path} refused: {}", status.trim_end());
            if !self.request_missing.is_empty() {
                message.push_str(&format!(
                    "; the request reached the server without `{}`: something in the path (a proxy that does not forward them, e.g. nginx without `proxy_set_header Upgrade $http_upgrade` and `Connection \"upgrade\"`) strips them, or the client never sent them",
                    self.request_missing.join("` and `")
                ));
            } else if resp.status == 426 {
                message.push_str("; the request asked for the upgrade correctly, so a proxy between it and the WebSocket server may have dropped its `Upgrade`/`Connection` headers on the next hop");
            }
            self.diag(
                Diagnostic::new(
                    DiagnosticId::HandshakeRejected,
                    Some(Side::Server),
                    Some(time),
                    message,
                ),
                sink,
            );
            self.emit_handshake(sink);
            return None;
        }
        handshake.accepted =
            crate::http::handshake::has_token(resp.upgrade.as_deref(), "websocket");
        self.timing.handshake(Side::Server, time);
        handshake.subprotocol = match &resp.protocol {
            Some(p) if self.options.redact => {
                Some(redact::chosen_subprotocol(p, &self.offered_protocols))
            }
            other => other.clone(),
        };
        handshake.extensions = resp.extensions.clone();
        handshake.accept_valid = match (&self.key, &resp.accept) {
            (Some(key), Some(accept)) => Some(derive_accept_key(key) == accept.trim()),
            _ => None,
        };
        self.started = Some(time);
        // An earlier attempt on this connection may have been refused; this one switched.
        self.refused = None;
        if handshake.accept_valid == Some(false) {
            let expected = derive_accept_key(self.key.as_deref().unwrap_or(""));
            let got = resp.accept.clone().unwrap_or_default();
            self.diag(
                Diagnostic::new(
                    DiagnosticId::HandshakeAcceptMismatch,
                    Some(Side::Server),
                    Some(time),
                    format!("Sec-WebSocket-Accept is {got:?}, expected {expected:?} for the client's key (RFC 6455 §4.2.2)"),
                ),
                sink,
            );
        }
        let problems = resp.problems();
        if !problems.is_empty() {
            self.diag(
                Diagnostic::new(
                    DiagnosticId::HandshakeInvalid,
                    Some(Side::Server),
                    Some(time),
                    problems.join("; "),
                ),
                sink,
            );
        }
        self.emit_handshake(sink);
        Some(Negotiated::from_response(resp.extensions.as_deref()))
    }

    /// A request that did not ask for an upgrade, and its answer, that concern a WebSocket
    /// endpoint anyway (`signs` says why): reported as a refused upgrade, saying which upgrade
    /// headers never reached the server.
    pub fn plain_exchange(
        &mut self,
        req: &RequestHead,
        resp: &ResponseHead,
        times: (f64, f64),
        signs: &[String],
        sink: &mut dyn Sink,
    ) {
        let mut handshake = request_record(req, times.0, self.options.redact);
        add_response(&mut handshake, resp, times.1, self.options.redact);
        let path = handshake.path.clone();
        self.handshake.set(handshake);
        let status = format!("{} {}", resp.status, resp.reason);
        let status = status.trim_end();
        self.refused = Some(status.to_string());
        let missing = req.missing_upgrade_headers();
        let message = format!(
            "{} {} was not an upgrade request (no `{}`) and was answered {status} ({}): it reached the server without its upgrade headers; something in the path (a proxy that does not forward them, e.g. nginx without `proxy_set_header Upgrade $http_upgrade` and `Connection \"upgrade\"`) strips them, or the client never sent them",
            req.method,
            path,
            missing.join("`, no `"),
            signs.join("; "),
        );
        self.diag(
            Diagnostic::new(
                DiagnosticId::HandshakeRejected,
                Some(Side::Server),
                Some(times.1),
                message,
            ),
            sink,
        );
        self.emit_handshake(sink);
    }

    fn emit_handshake(&mut self, sink: &mut dyn Sink) {
        if let Some(h) = self.handshake.get_mut() {
            sink.event(&Event::Handshake {
                id: self.id,
                handshake: h,
            });
        }
    }

    /// An RFC 8441 extended CONNECT on an HTTP/2 stream: the WebSocket handshake over HTTP/2
    /// (no key, no Accept; RFC 8441 §4-§5 rules instead of RFC 6455 §4.1's).
    pub fn handshake_request_h2(
        &mut self,
        req: &crate::stream::http2::H2RequestHead,
        time: f64,
        sink: &mut dyn Sink,
    ) {
        self.offered_protocols = req.protocols.clone();
        self.handshake.set(request_record(
            &req.to_request_head(),
            time,
            self.options.redact,
        ));
        self.app
            .handshake_request(req.path.as_deref().unwrap_or(""), &req.protocols);
        let problems = req.problems();
        if !problems.is_empty() {
            self.diag(
                Diagnostic::new(
                    DiagnosticId::HandshakeInvalid,
                    Some(Side::Client),
                    Some(time),
                    format!("extended CONNECT: {}", problems.join("; ")),
                ),
                sink,
            );
        }
    }

    /// The answer to an extended CONNECT: a 2xx opens the WebSocket (returns what it
    /// negotiated), anything else refuses it.
    pub fn handshake_response_h2(
        &mut self,
        resp: &crate::stream::http2::H2ResponseHead,
        time: f64,
        sink: &mut dyn Sink,
    ) -> Option<Negotiated> {
        let handshake = self.handshake.get_or_default();
        add_response(
            handshake,
            &resp.to_response_head(),
            time,
            self.options.redact,
        );
        handshake.status = resp.status;
        if let Some(status) = resp.status {
            self.app
                .handshake_response(status, resp.is_success(), resp.protocol.as_deref(), time);
        }
        let status = resp
            .status
            .map_or_else(|| "unreadable :status".to_string(), |s| s.to_string());
        if !resp.is_success() && resp.status.is_some() {
            self.refused = Some(status.clone());
            let path = handshake.path.clone();
            self.diag(
                Diagnostic::new(
                    DiagnosticId::HandshakeRejected,
                    Some(Side::Server),
                    Some(time),
                    format!("extended CONNECT of {path} refused: :status {status}"),
                ),
                sink,
            );
            self.emit_handshake(sink);
            return None;
        }
        handshake.accepted = true;
        handshake.subprotocol = match &resp.protocol {
            Some(p) if self.options.redact => {
                Some(redact::chosen_subprotocol(p, &self.offered_protocols))
            }
            other => other.clone(),
        };
        handshake.extensions = resp.extensions.clone();
        handshake.accept_valid = None;
        self.started = Some(time);
        if !resp.malformed.is_empty() {
            self.diag(
                Diagnostic::new(
                    DiagnosticId::HandshakeInvalid,
                    Some(Side::Server),
                    Some(time),
                    format!(
                        "answer to the extended CONNECT: {}",
                        resp.malformed.join("; ")
                    ),
                ),
                sink,
            );
        }
        self.emit_handshake(sink);
        Some(Negotiated::from_response(resp.extensions.as_deref()))
    }

    /// The transport end given to [`Analysis::finish`] is an HTTP/2 stream's, in `words`.
    pub fn set_end_words(&mut self, words: String) {
        self.close
            .get_or_insert_with(Default::default)
            .set_end_words(words);
    }

    /// The endpoint (`host/path`, no query) of an accepted upgrade.
    pub fn upgraded_target(&self) -> Option<String> {
        self.handshake
            .read(|h| {
                let host = h.host.as_deref().filter(|_| h.accepted)?;
                let path = h.path.split(['?', '#']).next().unwrap_or("");
                Some(format!("{}{path}", host.trim().to_ascii_lowercase()))
            })
            .flatten()
    }

    /// Does the application stage still need message payloads?
    pub fn app_wants_payload(&self) -> bool {
        self.app.wants_payload()
    }

    /// Is there an upgrade request without an answer yet?
    pub fn has_handshake(&self) -> bool {
        self.handshake.is_some()
    }

    /// When the upgrade request was captured.
    pub fn request_time(&self) -> Option<f64> {
        self.handshake.read(|h| h.request_time).flatten()
    }

    /// A frame header from `side`, seen in a packet captured at `time`.
    pub fn frame(&mut self, side: Side, h: &FrameHeader, time: f64, sink: &mut dyn Sink) {
        let counts = self.frames.get_mut(side);
        match h.opcode {
            OpCode::Text => counts.text += 1,
            OpCode::Binary => counts.binary += 1,
            OpCode::Continuation => counts.continuation += 1,
            OpCode::Close => counts.close += 1,
            OpCode::Ping => counts.ping += 1,
            OpCode::Pong => counts.pong += 1,
            OpCode::Reserved(_) => counts.other += 1,
        }
        self.last_frame_time = Some(time);
        self.started.get_or_insert(time);
        self.timing.frame(side, h, time);
        if !(self.options.keep_frames || self.options.frame_events) {
            return;
        }
        let record = FrameRecord {
            time,
            from: side,
            fin: h.fin,
            rsv: h.rsv,
            opcode: h.opcode.as_str(),
            masked: h.is_masked(),
            payload_length: h.payload_len,
            header_length: h.header_len,
        };
        if self.options.frame_events && self.interesting {
            sink.event(&Event::Frame {
                id: self.id,
                frame: &record,
            });
        }
        if self.options.keep_frames {
            if self.frames_detail.len() < MAX_FRAMES_KEPT {
                self.frames_detail.push(record);
            } else {
                self.frames_dropped += 1;
            }
        }
    }

    /// A finished message or control frame; `listed`: keep it in the record's message list
    /// (the caller's memory budget may say no; it is still counted and analysed).
    pub fn message(&mut self, m: &Message, listed: bool, sink: &mut dyn Sink) {
        let side = m.from;
        let mut rtt = None;
        let mut released = Vec::new();
        match m.opcode {
            OpCode::Ping => self.ping.get_or_insert_with(Default::default).ping(
                side,
                m.time,
                &m.payload,
                &mut self.scratch,
            ),
            OpCode::Pong => {
                rtt = self.ping.get_or_insert_with(Default::default).pong(
                    side,
                    m.time,
                    &m.payload,
                    &mut self.scratch,
                )
            }
            OpCode::Close => {
                if let Some((code, reason)) = &m.close {
                    if !self.close.as_ref().is_some_and(|c| c.closing()) {
                        // What was still unanswered when the close began (a pong may still
                        // come after the Close: such answers are late, RFC 6455 §5.5.1).
                        self.pings_at_close = Some(Box::new([
                            self.ping
                                .get_or_insert_with(Default::default)
                                .outstanding(Side::Client),
                            self.ping
                                .get_or_insert_with(Default::default)
                                .outstanding(Side::Server),
                        ]));
                    }
                    self.ping
                        .get_or_insert_with(Default::default)
                        .close_sent(side);
                    self.close
                        .get_or_insert_with(Default::default)
                        .close_frame(side, m.time, *code, reason);
                    released = self.app.close_frame(side, m.time, *code, reason);
                    if self.interesting {
                        sink.event(&Event::Close {
                            id: self.id,
                            time: m.time,
                            from: side,
                            code: *code,
                            reason: &String::from_utf8_lossy(reason),
                        });
                    }
                }
            }
            OpCode::Text | OpCode::Binary => {
                *self.message_counts.get_mut(side) += 1;
                *self.payload_bytes.get_mut(side) += m.length.unwrap_or(m.wire_length);
                let recovery = self.deflate_recovery.get_mut(side);
                recovery.recovered += u64::from(m.inflated_after_gap);
                recovery.unrecoverable += u64::from(m.history_lost);
                self.last_message = Some(LastMessage {
                    side,
                    opcode: m.opcode,
                    length: m.length.unwrap_or(m.wire_length),
                    time: m.time,
                });
            }
            _ => {}
        }
        self.drain_scratch(sink);
        let record = (self.options.keep_messages || self.options.message_events).then(|| {
            let mut r = message_record(m, self.options.payload);
            r.rtt_ms = rtt.map(|s| (s * 1e6).round() / 1e3);
            r
        });
        if !released.is_empty() {
            self.release(released, sink);
        }
        if matches!(m.opcode, OpCode::Text | OpCode::Binary) {
            let input = Input {
                from: side,
                time: m.time,
                binary: m.opcode == OpCode::Binary,
                payload: &m.payload,
                length: m.length.unwrap_or(m.wire_length),
                complete: m.complete
                    && !m.payload_truncated
                    && m.length == Some(m.payload.len() as u64),
            };
            let secrets = if self.options.redact && record.is_some() && m.opcode == OpCode::Text {
                crate::app::secrets::json_secrets(&m.payload)
            } else {
                Vec::new()
            };
            let decodes = self.app.message(&input);
            self.held.push_back(Held {
                record,
                listed,
                data: true,
                secrets,
            });
            if !decodes.is_empty() {
                self.release(decodes, sink);
            } else if self.held.len() >= MAX_HELD {
                let released = self.app.stop_recognising();
                self.release(released, sink);
            }
            return;
        }
        if self.app.holding() && !self.held.is_empty() {
            self.held.push_back(Held {
                record,
                listed,
                data: false,
                secrets: Vec::new(),
            });
            if self.held.len() >= MAX_HELD {
                let released = self.app.stop_recognising();
                self.release(released, sink);
            }
            return;
        }
        if let Some(r) = record {
            self.emit(r, listed, sink);
        }
    }

    /// Emits the held records, giving the data messages their decodes in order.
    fn release(&mut self, decodes: Vec<Option<Decoded>>, sink: &mut dyn Sink) {
        let mut decodes = decodes.into_iter();
        while let Some(held) = self.held.pop_front() {
            let decode = if held.data {
                decodes.next().flatten()
            } else {
                None
            };
            let mut record = held.record;
            let mut secrets = held.secrets;
            if let Some(d) = decode {
                if let Some(r) = record.as_mut() {
                    r.app = d.record();
                }
                secrets.extend(d.secrets);
                for diag in d.diagnostics {
                    self.diag(diag, sink);
                }
            }
            if self.options.redact
                && !secrets.is_empty()
                && let Some(r) = record.as_mut()
            {
                redact::payload(r, secrets);
            }
            if let Some(r) = record {
                self.emit(r, held.listed, sink);
            }
        }
    }

    /// Lists messages in `spool` from now on, not in memory (before the first is listed).
    pub fn spool_messages(&mut self, spool: &Arc<Spool>) {
        if let Listing::Held(held) = &self.messages
            && held.is_empty()
        {
            self.messages = Listing::Spooled(Box::new(SpooledListing {
                messages: SpooledMessages::start(spool.clone()),
                refused: 0,
                why: None,
            }));
        }
    }

    fn emit(&mut self, record: MessageRecord, listed: bool, sink: &mut dyn Sink) {
        if self.options.message_events && self.interesting {
            sink.event(&Event::Message {
                id: self.id,
                message: &record,
            });
        }
        if self.options.keep_messages && listed {
            match &mut self.messages {
                Listing::Held(held) if held.len() < MAX_MESSAGES_KEPT => held.push(record),
                Listing::Held(_) => self.messages_dropped += 1,
                Listing::Spooled(spooled) => {
                    if let Err(why) = spooled.messages.append(&record) {
                        spooled.refused += 1;
                        spooled.why = Some(why);
                    }
                }
            }
        }
    }

    /// Builds the final record. `tcp_end` is the first FIN or RST: (side, time, is_rst).
    #[allow(clippy::too_many_arguments)]
    pub fn finish(
        mut self,
        client: Address,
        server: Address,
        first_seen: f64,
        last_seen: f64,
        tcp_end: Option<(Side, f64, bool)>,
        tcp: TcpRecord,
        stopped: Option<String>,
        sink: &mut dyn Sink,
    ) -> ConnectionRecord {
        if let Some((side, time, rst)) = tcp_end {
            self.close
                .get_or_insert_with(Default::default)
                .tcp_end(side, time, rst);
        }
        let (ending, at) = match tcp_end {
            Some((_, time, _)) => ("the connection ended", time),
            None => ("the capture ended", last_seen),
        };
        let pings_at_end = self.pings_at_close.as_deref().copied().unwrap_or([
            self.ping
                .get_or_insert_with(Default::default)
                .outstanding(Side::Client),
            self.ping
                .get_or_insert_with(Default::default)
                .outstanding(Side::Server),
        ]);
        self.ping
            .get_or_insert_with(Default::default)
            .settle(ending, at, &mut self.scratch);
        self.drain_scratch(sink);
        let app = self.app.finish(tcp_end, last_seen);
        self.release(app.released, sink);
        for d in app.diagnostics {
            self.diag(d, sink);
        }
        if self.messages_dropped > 0 {
            let dropped = self.messages_dropped;
            self.diag(
                Diagnostic::new(
                    DiagnosticId::LimitExceeded,
                    None,
                    Some(last_seen),
                    format!("{dropped} messages not listed: more than {MAX_MESSAGES_KEPT} in one connection (use --format jsonl to stream them all)"),
                ),
                sink,
            );
        }
        if let Listing::Spooled(spooled) = &mut self.messages
            && let Some(why) = spooled.why.take()
        {
            let refused = spooled.refused;
            self.diag(
                Diagnostic::new(
                    DiagnosticId::LimitExceeded,
                    None,
                    Some(last_seen),
                    format!("{refused} messages not listed: {why}"),
                ),
                sink,
            );
        }
        if self.frames_dropped > 0 {
            let dropped = self.frames_dropped;
            self.diag(
                Diagnostic::new(
                    DiagnosticId::LimitExceeded,
                    None,
                    Some(last_seen),
                    format!("{dropped} frames not listed in frames_detail: more than {MAX_FRAMES_KEPT} in one connection (use --format jsonl to stream them all)"),
                ),
                sink,
            );
        }
        let unreachable = close::unreachable(&tcp, tcp_end);
        let tracking_stopped = stopped.is_some();
        let ctx = EndContext {
            refused: self.refused.clone(),
            last_frame_time: self.last_frame_time,
            last_message: self.last_message.map(|l| l.describe()),
            started: self.started,
            stopped,
            transport: self.transport.as_deref().cloned().unwrap_or_default(),
            app_meaning: app.close_meaning,
            app_reason: app.end_reason,
            app_heartbeat: app.last_heartbeat,
            unreachable,
        };
        let close = self
            .close
            .get_or_insert_with(Default::default)
            .record(&ctx, &mut self.scratch);
        self.drain_scratch(sink);
        let mut timing = self.timing_record(first_seen, last_seen, tcp_end, pings_at_end);
        if tracking_stopped && timing.ended_by == "none" {
            timing.ended_by = "stopped";
        }
        ConnectionRecord {
            id: self.id,
            client,
            server,
            first_seen,
            last_seen,
            handshake: self.handshake.take(),
            frames: self.frames,
            message_counts: self.message_counts,
            payload_bytes: self.payload_bytes,
            messages: self.options.keep_messages.then(|| match self.messages {
                Listing::Held(held) => MessageList::Held(held),
                Listing::Spooled(spooled) => MessageList::Spooled(spooled.messages),
            }),
            frames_detail: self.options.keep_frames.then_some(self.frames_detail),
            close,
            ping: self.ping.get_or_insert_with(Default::default).record(),
            app: app.record,
            tcp,
            deflate_recovery: (self.deflate_recovery != PerSide::default())
                .then_some(self.deflate_recovery),
            http2: None,
            http2_connection: None,
            timing,
            fingerprint: self.timing.fingerprint(),
            diagnostics: self.diagnostics,
            diagnostic_counts: self
                .counts
                .iter()
                .map(|(id, n)| (id.as_str().to_string(), *n))
                .collect(),
            tls: None,
        }
    }
}

impl Analysis {
    /// When and how the end began, each side's last activity, the pings at the end.
    fn timing_record(
        &self,
        first_seen: f64,
        last_seen: f64,
        tcp_end: Option<(Side, f64, bool)>,
        pings_at_end: [(u64, Option<f64>); 2],
    ) -> TimingRecord {
        let close = self.close.as_ref().and_then(|c| c.first_close());
        let tls = self.transport.as_ref().and_then(|t| t.tls.as_ref());
        // A TLS close_notify or alert may begin the end before FIN or RST (and after the last
        // frame: an alert the sender followed with data did not end anything).
        let began = tls.and_then(|t| t.began.as_ref()).map(|b| {
            let what = if b.alert == "close_notify" {
                "close_notify"
            } else {
                "tls_alert"
            };
            (b.time, what, b.side)
        });
        let mut candidates: Vec<(f64, &'static str, Side)> = Vec::with_capacity(3);
        candidates.extend(close.map(|(side, t)| (t, "close", side)));
        candidates.extend(began);
        candidates.extend(tcp_end.map(|(side, t, rst)| (t, if rst { "rst" } else { "fin" }, side)));
        // The earliest; on a tie the Close, then the alert, then TCP (in that order above).
        let first = candidates
            .iter()
            .copied()
            .reduce(|a, b| if b.0 < a.0 { b } else { a });
        let (end_time, ended_by, ended_from) = match first {
            Some((t, what, side)) => (t, what, Some(side)),
            None => (last_seen, "none", None),
        };
        let opaque = self.transport.as_ref().is_some_and(|t| t.opaque.is_some())
            && !self.carries_websocket();
        // Encrypted, likely WebSocket: its age runs from the 101-sized answer.
        let started = self.started.or_else(|| {
            tls.filter(|t| opaque && t.websocket_likely)
                .and_then(|t| t.started)
        });
        let mut record = TimingRecord {
            end_time,
            ended_by,
            ended_from,
            age: round6((end_time - started.unwrap_or(first_seen)).max(0.0)),
            ..TimingRecord::default()
        };
        self.timing.fill(end_time, &mut record);
        if opaque && let Some(t) = tls {
            // No frames to time: the application records stand for them.
            let last = t.last_record.map(|r| r.map(|(time, _)| time));
            timing::fill_from_records(end_time, last, t.longest_silence, &mut record);
        }
        for (i, side) in [Side::Client, Side::Server].into_iter().enumerate() {
            let (ping, pong) = self
                .ping
                .as_deref()
                .map_or((None, None), |p| p.last_ping_pong(side));
            *record.last_ping.get_mut(side) = ping;
            *record.last_pong.get_mut(side) = pong;
            *record.since_last_ping.get_mut(side) = ping.map(|t| round6((end_time - t).max(0.0)));
            *record.ping_interval.get_mut(side) = self
                .ping
                .as_deref()
                .and_then(|p| p.interval(side))
                .map(round6);
            *record.unanswered_pings_at_end.get_mut(side) = pings_at_end[i].0;
            *record.first_unanswered_ping.get_mut(side) = pings_at_end[i].1;
        }
        record
    }
}

/// The last data message, kept as facts (formatting it per message would cost more than the
/// rest of the message's analysis).
#[derive(Debug, Clone, Copy)]
struct LastMessage {
    side: Side,
    opcode: OpCode,
    length: u64,
    time: f64,
}

impl LastMessage {
    /// `client text 18 B at 12:00:03.120`.
    fn describe(self) -> String {
        format!(
            "{} {} {} B at {}",
            self.side.as_str(),
            self.opcode.as_str(),
            self.length,
            clock(self.time)
        )
    }
}

/// `HH:MM:SS.mmm` UTC of a capture time.
pub fn clock(t: f64) -> String {
    let ms = (t * 1000.0).round() as i64;
    let day_ms = ms.rem_euclid(86_400_000);
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        day_ms / 3_600_000,
        day_ms / 60_000 % 60,
        day_ms / 1000 % 60,
        day_ms % 1000
    )
}

/// `HTTP/1.x`, or `HTTP/2` for a stream of an HTTP/2 connection.
fn http_version(minor: u8, http2: bool) -> String {
    if http2 {
        "HTTP/2".to_string()
    } else {
        format!("HTTP/1.{minor}")
    }
}

fn header_list(headers: &[(String, String)], redact: bool) -> Vec<Header> {
    headers
        .iter()
        .map(|(name, value)| Header {
            name: name.clone(),
            value: if redact {
                redact::header(name, value)
            } else {
                value.clone()
            },
        })
        .collect()
}

/// The request's part of the handshake record.
fn request_record(req: &RequestHead, time: f64, redact: bool) -> HandshakeRecord {
    HandshakeRecord {
        method: req.method.clone(),
        http_version: http_version(req.minor_version, req.http2),
        path: if redact {
            redact::target(&req.path).into_owned()
        } else {
            req.path.clone()
        },
        host: req.host.clone(),
        origin: req.origin.clone(),
        user_agent: req.user_agent.clone(),
        version: req.version.clone(),
        offered_subprotocols: if redact {
            redact::subprotocols(&req.protocols)
        } else {
            req.protocols.clone()
        },
        offered_extensions: req.extensions.clone(),
        request_time: Some(time),
        request_headers: header_list(&req.headers, redact),
        request_head_bytes: (req.head_size > 0).then_some(req.head_size as u64),
        ..HandshakeRecord::default()
    }
}

/// The answer's part of the handshake record.
fn add_response(h: &mut HandshakeRecord, resp: &ResponseHead, time: f64, redact: bool) {
    h.status = Some(resp.status);
    h.reason = Some(resp.reason.clone());
    h.response_time = Some(time);
    h.response_headers = header_list(&resp.headers, redact);
    h.response_head_bytes = (resp.head_size > 0).then_some(resp.head_size as u64);
    h.response_http_version = Some(http_version(resp.minor_version, resp.http2));
}

fn message_record(m: &Message, payload: PayloadMode) -> MessageRecord {
    let (text, base64, cut) = match payload {
        PayloadMode::None => (None, None, false),
        PayloadMode::Preview(n) => m.render_payload(Some(n)),
        PayloadMode::Full => m.render_payload(None),
    };
    MessageRecord {
        time: m.time,
        from: m.from,
        opcode: m.opcode.as_str(),
        length: m.length,
        wire_length: m.wire_length,
        fragments: m.fragments,
        compressed: m.compressed,
        complete: m.complete,
        close_code: m.close.as_ref().map(|(code, _)| *code),
        text,
        base64,
        truncated: (m.payload_truncated || cut).then_some(true),
        inflate_error: m.inflate_error.clone(),
        inflated_after_gap: m.inflated_after_gap.then_some(true),
        rtt_ms: None,
        app: None,
    }
}
