//! Connection analysis: handshake heads, frames, messages and findings of one connection in,
//! its [`ConnectionRecord`] out; events are pushed to the [`Sink`] as they happen.

pub mod close;
pub mod ping;

use std::collections::BTreeMap;

use crate::diag::{Diagnostic, DiagnosticId, Side};
use crate::http::{Negotiated, RequestHead, ResponseHead, derive_accept_key};
use crate::record::{
    Address, ConnectionRecord, DeflateRecoveryRecord, FrameRecord, HandshakeRecord, MessageRecord,
    OpcodeCounts, PerSide, TcpRecord,
};
use crate::record::{Event, Sink};
use crate::ws::frame::FrameHeader;
use crate::ws::message::{Message, PayloadMode};
use crate::ws::opcode::OpCode;

use close::{CloseTracker, EndContext};
use ping::PingTracker;

/// Diagnostics listed per id and connection; the rest are only counted, so a storm of
/// violations cannot grow memory.
pub const MAX_DIAGNOSTICS_PER_ID: u64 = 20;

/// Messages kept per connection for `--messages` in the json and table reports.
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
}

/// One connection's running analysis.
pub struct Analysis {
    id: u64,
    options: AnalysisOptions,
    /// The connection carried an upgrade attempt or frames, so it is reported.
    interesting: bool,
    handshake: Option<HandshakeRecord>,
    key: Option<String>,
    refused: Option<String>,
    frames: PerSide<OpcodeCounts>,
    message_counts: PerSide<u64>,
    payload_bytes: PerSide<u64>,
    deflate_recovery: PerSide<DeflateRecoveryRecord>,
    messages: Vec<MessageRecord>,
    messages_dropped: u64,
    frames_detail: Vec<FrameRecord>,
    frames_dropped: u64,
    close: CloseTracker,
    ping: PingTracker,
    diagnostics: Vec<Diagnostic>,
    counts: BTreeMap<DiagnosticId, u64>,
    last_frame_time: Option<f64>,
    last_message: Option<LastMessage>,
    started: Option<f64>,
    scratch: Vec<Diagnostic>,
}

impl Analysis {
    /// A connection numbered `id`.
    pub fn new(id: u64, options: AnalysisOptions) -> Self {
        Analysis {
            id,
            options,
            interesting: false,
            handshake: None,
            key: None,
            refused: None,
            frames: PerSide::default(),
            message_counts: PerSide::default(),
            payload_bytes: PerSide::default(),
            deflate_recovery: PerSide::default(),
            messages: Vec::new(),
            messages_dropped: 0,
            frames_detail: Vec::new(),
            frames_dropped: 0,
            close: CloseTracker::default(),
            ping: PingTracker::default(),
            diagnostics: Vec::new(),
            counts: BTreeMap::new(),
            last_frame_time: None,
            last_message: None,
            started: None,
            scratch: Vec::new(),
        }
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
        self.handshake = Some(HandshakeRecord {
            path: req.path.clone(),
            host: req.host.clone(),
            origin: req.origin.clone(),
            user_agent: req.user_agent.clone(),
            version: req.version.clone(),
            offered_subprotocols: req.protocols.clone(),
            offered_extensions: req.extensions.clone(),
            request_time: Some(time),
            ..HandshakeRecord::default()
        });
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
        let handshake = self.handshake.get_or_insert_with(HandshakeRecord::default);
        handshake.status = Some(resp.status);
        handshake.reason = Some(resp.reason.clone());
        handshake.response_time = Some(time);
        if resp.status != 101 {
            self.refused = Some(
                format!("{} {}", resp.status, resp.reason)
                    .trim_end()
                    .to_string(),
            );
            let path = handshake.path.clone();
            self.diag(
                Diagnostic::new(
                    DiagnosticId::HandshakeRejected,
                    Some(Side::Server),
                    Some(time),
                    format!("upgrade of {path} refused: {} {}", resp.status, resp.reason),
                ),
                sink,
            );
            self.emit_handshake(sink);
            return None;
        }
        handshake.accepted =
            crate::http::handshake::has_token(resp.upgrade.as_deref(), "websocket");
        handshake.subprotocol = resp.protocol.clone();
        handshake.extensions = resp.extensions.clone();
        handshake.accept_valid = match (&self.key, &resp.accept) {
            (Some(key), Some(accept)) => Some(derive_accept_key(key) == accept.trim()),
            _ => None,
        };
        self.started = Some(time);
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

    fn emit_handshake(&mut self, sink: &mut dyn Sink) {
        if let Some(h) = &self.handshake {
            sink.event(&Event::Handshake {
                id: self.id,
                handshake: h,
            });
        }
    }

    /// Is there an upgrade request without an answer yet?
    pub fn has_handshake(&self) -> bool {
        self.handshake.is_some()
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
        match m.opcode {
            OpCode::Ping => self.ping.ping(side, m.time, &m.payload, &mut self.scratch),
            OpCode::Pong => self.ping.pong(side, m.time, &m.payload, &mut self.scratch),
            OpCode::Close => {
                if let Some((code, reason)) = &m.close {
                    if !self.close.closing() {
                        self.ping.settle("the close handshake", &mut self.scratch);
                    }
                    self.close.close_frame(side, m.time, *code, reason);
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
        if !(self.options.keep_messages || self.options.message_events) {
            return;
        }
        let record = message_record(m, self.options.payload);
        if self.options.message_events && self.interesting {
            sink.event(&Event::Message {
                id: self.id,
                message: &record,
            });
        }
        if self.options.keep_messages && listed {
            if self.messages.len() < MAX_MESSAGES_KEPT {
                self.messages.push(record);
            } else {
                self.messages_dropped += 1;
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
            self.close.tcp_end(side, time, rst);
        }
        let ending = if tcp_end.is_some() {
            "the connection ended"
        } else {
            "the capture ended"
        };
        self.ping.settle(ending, &mut self.scratch);
        self.drain_scratch(sink);
        if self.messages_dropped > 0 {
            let dropped = self.messages_dropped;
            self.diag(
                Diagnostic::new(
                    DiagnosticId::LimitExceeded,
                    None,
                    None,
                    format!("{dropped} messages not listed: more than {MAX_MESSAGES_KEPT} in one connection (use --format jsonl to stream them all)"),
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
                    None,
                    format!("{dropped} frames not listed in frames_detail: more than {MAX_FRAMES_KEPT} in one connection (use --format jsonl to stream them all)"),
                ),
                sink,
            );
        }
        let ctx = EndContext {
            refused: self.refused.clone(),
            last_frame_time: self.last_frame_time,
            last_message: self.last_message.map(|l| l.describe()),
            started: self.started,
            stopped,
        };
        let close = self.close.record(&ctx, &mut self.scratch);
        self.drain_scratch(sink);
        ConnectionRecord {
            id: self.id,
            client,
            server,
            first_seen,
            last_seen,
            handshake: self.handshake,
            frames: self.frames,
            message_counts: self.message_counts,
            payload_bytes: self.payload_bytes,
            messages: self.options.keep_messages.then_some(self.messages),
            frames_detail: self.options.keep_frames.then_some(self.frames_detail),
            close,
            ping: self.ping.record(),
            tcp,
            deflate_recovery: (self.deflate_recovery != PerSide::default())
                .then_some(self.deflate_recovery),
            diagnostics: self.diagnostics,
            diagnostic_counts: self
                .counts
                .iter()
                .map(|(id, n)| (id.as_str().to_string(), *n))
                .collect(),
        }
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
    }
}
