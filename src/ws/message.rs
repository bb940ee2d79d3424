//! Message assembly for one direction: frame events in (already unmasked), data messages and
//! control frames out, with every RFC 6455 / RFC 7692 rule a frame can break reported on the way.
//! Payload is streamed: only what the report shows (a preview or, if asked, the whole payload up
//! to a cap) and control-frame bodies are kept.

use base64::Engine;

use crate::diag::{Diagnostic, DiagnosticId, Side};
use crate::http::Negotiated;
use crate::ws::deflate::{DecoderBudget, InflateError, InflateParams, Inflater};
use crate::ws::frame::{FrameHeader, HeaderError};
use crate::ws::framer::FrameEvent;
use crate::ws::opcode::{OpCode, close_code_allowed_on_wire};
use crate::ws::utf8::Utf8Validator;

/// How much payload message records carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadMode {
    /// None.
    None,
    /// The first N bytes.
    Preview(usize),
    /// All of it, up to the message-size limit.
    Full,
}

/// Caps that keep memory bounded on hostile input.
#[derive(Debug, Clone, Copy)]
pub struct MessageLimits {
    /// Largest payload kept per message with `--payload full`.
    pub max_kept_bytes: usize,
    /// Largest inflated size per message; inflating stops there (decompression bombs).
    pub max_inflated_bytes: u64,
    /// permessage-deflate decoders alive at once, across all connections (each holds up to
    /// ~85 KiB; a direction holds one, two while it recovers from lost history; see
    /// [`DecoderBudget`]).
    pub max_inflaters: usize,
}

impl Default for MessageLimits {
    fn default() -> Self {
        MessageLimits {
            max_kept_bytes: 16 << 20,
            max_inflated_bytes: 64 << 20,
            max_inflaters: DEFAULT_MAX_INFLATERS,
        }
    }
}

/// Default for [`MessageLimits::max_inflaters`]: at most about 350 MiB of decoders.
pub const DEFAULT_MAX_INFLATERS: usize = 4096;

/// Control-frame bodies are kept whole up to this size: 125 is the legal maximum, the slack
/// lets an oversized Close still show its code and reason.
const MAX_CONTROL_KEPT: usize = 4096;

/// A finished data message or a control frame.
#[derive(Debug, Clone)]
pub struct Message {
    /// Time of the frame that completed it.
    pub time: f64,
    /// Sender.
    pub from: Side,
    /// Opcode of its first frame.
    pub opcode: OpCode,
    /// Bytes after inflating; None when it could not be inflated.
    pub length: Option<u64>,
    /// Bytes on the wire.
    pub wire_length: u64,
    /// Frames.
    pub fragments: u64,
    /// RSV1 on the first frame.
    pub compressed: bool,
    /// Nothing was lost.
    pub complete: bool,
    /// Close frames: code (1005 when absent) and reason bytes.
    pub close: Option<(u16, Vec<u8>)>,
    /// Text messages: valid UTF-8 throughout.
    pub utf8_valid: bool,
    /// Payload kept for the report (control frames: the whole body).
    pub payload: Vec<u8>,
    /// `payload` is shorter than the message.
    pub payload_truncated: bool,
    /// Why it could not be inflated.
    pub inflate_error: Option<String>,
    /// Compressed, and inflated while part of the compression history was unknown (after a TCP gap, or
    /// in a capture that started mid-stream): its bytes were proven not to depend on that history (see
    /// `ws::deflate`).
    pub inflated_after_gap: bool,
    /// Compressed, and not inflated because compressed bytes or the history it refers to were not
    /// captured (not for a corrupt message or a limit).
    pub history_lost: bool,
}

impl Message {
    /// `text`/`base64` rendering of the kept payload: text when valid UTF-8 for text messages
    /// and close reasons, base64 otherwise. Returns (text, base64).
    /// `limit` cuts what is shown (the preview); the third value says whether it did.
    pub fn render_payload(&self, limit: Option<usize>) -> (Option<String>, Option<String>, bool) {
        let whole: &[u8] = match &self.close {
            Some((_, reason)) => reason,
            None => &self.payload,
        };
        let bytes = &whole[..whole.len().min(limit.unwrap_or(usize::MAX))];
        let cut = bytes.len() < whole.len();
        let textual = matches!(self.opcode, OpCode::Text | OpCode::Close);
        if textual && let Some(text) = utf8_prefix(bytes, self.payload_truncated || cut) {
            return (Some(text), None, cut);
        }
        (
            None,
            Some(base64::engine::general_purpose::STANDARD.encode(bytes)),
            cut,
        )
    }
}

/// The longest valid UTF-8 text of `bytes`; a code point cut by truncation is dropped.
fn utf8_prefix(bytes: &[u8], truncated: bool) -> Option<String> {
    match std::str::from_utf8(bytes) {
        Ok(s) => Some(s.to_string()),
        Err(e) if truncated && e.error_len().is_none() => {
            Some(String::from_utf8_lossy(&bytes[..e.valid_up_to()]).into_owned())
        }
        Err(_) => None,
    }
}

/// What the assembler produced for one frame event.
#[derive(Debug)]
pub enum Output {
    /// A frame header was seen (for counting by opcode), at this capture time (that of its bytes: for
    /// frames found by hunting, earlier than the packet that made them known).
    Frame(FrameHeader, f64),
    /// A message or control frame finished.
    Message(Box<Message>),
    /// A finding.
    Diagnostic(Diagnostic),
}

struct Current {
    header: FrameHeader,
    /// Control frame body (capped).
    control: Vec<u8>,
    /// The payload belongs to the message in progress.
    data: bool,
    /// Payload bytes are not shown or inflated (a stray continuation).
    discard: bool,
    seen: u64,
    lost: bool,
}

struct InProgress {
    opcode: OpCode,
    compressed: bool,
    fragments: u64,
    wire_length: u64,
    length: u64,
    utf8: Utf8Validator,
    kept: Vec<u8>,
    truncated: bool,
    complete: bool,
    /// Why inflating stopped for this message (error, limit, lost bytes); None while it goes on.
    not_inflated: Option<NotInflated>,
    /// Decoded while part of the history was unknown.
    after_gap: bool,
}

/// Why a compressed message was not inflated.
#[derive(Debug, Clone)]
enum NotInflated {
    /// The inflater's verdict.
    Inflater(InflateError),
    /// Compressed bytes of the message itself were lost in a TCP gap.
    BytesLost,
    /// RSV1 without permessage-deflate.
    NotNegotiated,
}

impl NotInflated {
    /// Bytes or history were not captured (as opposed to a corrupt message or a limit).
    fn is_loss(&self) -> bool {
        matches!(
            self,
            NotInflated::BytesLost
                | NotInflated::Inflater(
                    InflateError::ContextLost | InflateError::UnknownHistory { .. }
                )
        )
    }

    fn describe(&self) -> String {
        match self {
            NotInflated::BytesLost => "compressed bytes lost in a TCP gap".into(),
            NotInflated::NotNegotiated => "RSV1 set but permessage-deflate was not negotiated".into(),
            NotInflated::Inflater(e) => match e {
                InflateError::Corrupt(msg) => format!("inflate failed: {msg}"),
                InflateError::OutputLimit { limit } => {
                    format!("output limit: inflated size passed {limit} bytes; inflating stopped")
                }
                InflateError::ContextLost => {
                    "context lost: earlier compressed data was not captured (mid-stream start or TCP gap) and context takeover is on".into()
                }
                InflateError::UnknownHistory { exact, length } => format!(
                    "context lost: refers to compressed data that was not captured (mid-stream start or TCP gap); inflates to {length} bytes, only the first {exact} known"
                ),
                InflateError::DecoderLimit { limit } => format!(
                    "decoder limit: more than {limit} decoders were in use at once (--max-inflaters); not inflated"
                ),
            },
        }
    }

    fn diagnostic_id(&self) -> DiagnosticId {
        match self {
            _ if self.is_loss() => DiagnosticId::DecompressionUnavailable,
            NotInflated::Inflater(
                InflateError::OutputLimit { .. } | InflateError::DecoderLimit { .. },
            ) => DiagnosticId::LimitExceeded,
            _ => DiagnosticId::DecompressionFailed,
        }
    }
}

/// One direction's message assembler.
pub struct Assembler {
    side: Side,
    payload: PayloadMode,
    limits: MessageLimits,
    negotiated: Option<Negotiated>,
    /// Boxed: uncompressed directions (most) should not carry its 288 bytes.
    inflater: Option<Box<Inflater>>,
    budget: DecoderBudget,
    /// Whether this direction's frames must be masked; None until roles are known.
    expect_masked: Option<bool>,
    current: Option<Current>,
    message: Option<InProgress>,
    close_sent: bool,
    /// Frame boundaries were found by resynchronising: the first continuation frames may
    /// belong to a message whose start was not captured.
    resynced: bool,
    compressed_context_unknown: bool,
    reported_context_unknown: bool,
    reported_data_after_close: bool,
    frames_seen: u64,
    time: f64,
}

impl Assembler {
    /// An assembler for `side`. `negotiated` is None when the handshake was not captured.
    /// Decoders for permessage-deflate come from `budget` (shared by all connections).
    pub fn new(
        side: Side,
        negotiated: Option<Negotiated>,
        payload: PayloadMode,
        limits: MessageLimits,
        budget: DecoderBudget,
    ) -> Self {
        let inflater = negotiated.as_ref().and_then(|n| n.deflate).map(|d| {
            let (no_context_takeover, bits) = match side {
                Side::Client => (d.client_no_context_takeover, d.client_max_window_bits),
                Side::Server => (d.server_no_context_takeover, d.server_max_window_bits),
            };
            Box::new(Inflater::with_budget(
                InflateParams {
                    no_context_takeover,
                    max_window_bits: bits,
                },
                limits.max_inflated_bytes,
                budget.clone(),
            ))
        });
        Assembler {
            side,
            payload,
            limits,
            compressed_context_unknown: negotiated.is_none(),
            negotiated,
            inflater,
            budget,
            expect_masked: None,
            current: None,
            message: None,
            close_sent: false,
            resynced: false,
            reported_context_unknown: false,
            reported_data_after_close: false,
            frames_seen: 0,
            time: 0.0,
        }
    }

    /// How much payload later messages keep (the application stage stopped needing more).
    pub fn set_payload(&mut self, payload: PayloadMode) {
        self.payload = payload;
    }

    /// The direction's role was decided after the assembler was made (mid-stream capture).
    pub fn set_side(&mut self, side: Side) {
        self.side = side;
    }

    /// The side's role is known: its frames must (client) or must not (server) be masked.
    pub fn set_expect_masked(&mut self, expect: Option<bool>) {
        self.expect_masked = expect;
    }

    /// The direction is idle: release what can be rebuilt (the inflater's zlib state).
    pub fn hibernate(&mut self) {
        if let Some(inflater) = self.inflater.as_mut() {
            inflater.hibernate();
        }
    }

    /// Has this side sent a Close frame?
    pub fn close_sent(&self) -> bool {
        self.close_sent
    }

    /// Bytes of this direction were lost before frames could be read again: the deflate
    /// history is gone (the inflater tracks what of it later messages need, see `ws::deflate`).
    pub fn lose_context(&mut self) {
        if let Some(inflater) = self.inflater.as_mut() {
            inflater.lose_context();
            self.reported_context_unknown = false;
        }
    }

    fn diag(&self, out: &mut Vec<Output>, id: DiagnosticId, message: String) {
        out.push(Output::Diagnostic(Diagnostic::new(
            id,
            Some(self.side),
            Some(self.time),
            message,
        )));
    }

    /// Consumes one frame event seen at capture time `time`.
    pub fn on_event(&mut self, event: FrameEvent<'_>, time: f64, out: &mut Vec<Output>) {
        self.time = time;
        match event {
            FrameEvent::Header(h) => self.on_header(h, out),
            FrameEvent::Payload(chunk) => self.on_payload(chunk),
            FrameEvent::PayloadGap { len } => self.on_payload_gap(len),
            FrameEvent::End => self.on_end(out),
            FrameEvent::Invalid { error, at } => {
                let (id, what) = match error {
                    HeaderError::LengthTopBitSet => (
                        DiagnosticId::InvalidFrameLength,
                        "64-bit payload length with the most significant bit set (RFC 6455 §5.2: MUST be 0)",
                    ),
                    HeaderError::ControlFrameTooLong => (
                        DiagnosticId::ControlFrameTooLong,
                        "control frame claiming more than 65535 bytes (RFC 6455 §5.5: at most 125 bytes)",
                    ),
                };
                self.diag(
                    out,
                    id,
                    format!("{what} at stream byte {at}; looking for the next frame"),
                );
                self.abandon_message();
            }
            FrameEvent::Resynced { skipped } => {
                self.resynced = true;
                if skipped > 0 {
                    self.diag(
                        out,
                        DiagnosticId::FrameResync,
                        format!("skipped {skipped} bytes that were not frames, then found frame boundaries again"),
                    );
                }
            }
            FrameEvent::Unsynced { skipped } => {
                if self.frames_seen > 0 && skipped > 0 {
                    self.diag(
                        out,
                        DiagnosticId::FrameResync,
                        format!("the last {skipped} bytes could not be aligned to frames after the stream lost sync"),
                    );
                }
            }
            // The caller passes the time on (see `Framer::push_at`).
            FrameEvent::At(_) => {}
            FrameEvent::Truncated { missing } => {
                if let Some(cur) = self.current.as_mut() {
                    cur.lost = true;
                }
                self.diag(
                    out,
                    DiagnosticId::CaptureEndedMidFrame,
                    format!("the stream ended inside a frame; {missing} payload bytes never came"),
                );
                self.on_end(out);
                self.finish(out);
            }
        }
    }

    fn abandon_message(&mut self) {
        self.current = None;
        if let Some(m) = self.message.as_mut() {
            m.complete = false;
        }
    }

    fn on_header(&mut self, h: FrameHeader, out: &mut Vec<Output>) {
        self.frames_seen += 1;
        out.push(Output::Frame(h, self.time));
        let name = h.opcode.as_str();
        if self.close_sent && !self.reported_data_after_close {
            self.reported_data_after_close = true;
            self.diag(
                out,
                DiagnosticId::DataAfterClose,
                format!("{name} frame after this side's Close (RFC 6455 §5.5.1: no more data frames after Close)"),
            );
        }
        match (self.expect_masked, h.mask.is_some()) {
            (Some(true), false) => self.diag(
                out,
                DiagnosticId::UnmaskedClientFrame,
                format!(
                    "unmasked client {name} frame (RFC 6455 §5.1: a client MUST mask all frames)"
                ),
            ),
            (Some(false), true) => self.diag(
                out,
                DiagnosticId::MaskedServerFrame,
                format!("masked server {name} frame (RFC 6455 §5.1: a server MUST NOT mask)"),
            ),
            _ => {}
        }
        if !h.minimal_length {
            self.diag(
                out,
                DiagnosticId::NonMinimalLength,
                format!("{name} frame length {} encoded in more bytes than needed (RFC 6455 §5.2: the minimal number of bytes MUST be used)", h.payload_len),
            );
        }
        if h.opcode.is_reserved() {
            self.diag(
                out,
                DiagnosticId::ReservedOpcode,
                format!(
                    "frame with reserved opcode {:#x} (RFC 6455 §5.2)",
                    opcode_number(h.opcode)
                ),
            );
        }
        self.check_rsv(&h, out);

        let mut cur = Current {
            header: h,
            control: Vec::new(),
            data: false,
            discard: false,
            seen: 0,
            lost: false,
        };
        if h.opcode.is_control() {
            if !h.fin {
                self.diag(
                    out,
                    DiagnosticId::ControlFrameFragmented,
                    format!("{name} frame with FIN=0 (RFC 6455 §5.5: control frames MUST NOT be fragmented)"),
                );
            }
            if h.payload_len > 125 {
                self.diag(
                    out,
                    DiagnosticId::ControlFrameTooLong,
                    format!(
                        "{name} frame of {} bytes (RFC 6455 §5.5: at most 125)",
                        h.payload_len
                    ),
                );
            }
        } else if h.opcode == OpCode::Continuation {
            match self.message.as_mut() {
                Some(m) => {
                    m.fragments += 1;
                    cur.data = true;
                }
                None => {
                    cur.discard = true;
                    if !self.resynced {
                        self.diag(
                            out,
                            DiagnosticId::UnexpectedContinuation,
                            "continuation frame with no message in progress (RFC 6455 §5.4)".into(),
                        );
                    }
                }
            }
        } else if matches!(h.opcode, OpCode::Text | OpCode::Binary) {
            if self.message.is_some() {
                self.diag(
                    out,
                    DiagnosticId::InterruptedFragmentedMessage,
                    format!(
                        "new {name} message before the fragmented message finished (RFC 6455 §5.4)"
                    ),
                );
                self.finish_message(out, false);
            }
            let compressed = h.rsv & 0b100 != 0;
            self.message = Some(InProgress {
                opcode: h.opcode,
                compressed,
                fragments: 1,
                wire_length: 0,
                length: 0,
                utf8: Utf8Validator::new(),
                kept: Vec::new(),
                truncated: false,
                complete: true,
                not_inflated: None,
                after_gap: false,
            });
            if compressed {
                self.begin_compressed();
            }
            cur.data = true;
        } else {
            // Reserved data opcodes (3-7): their payload is skipped.
            cur.discard = true;
        }
        self.resynced = self.resynced && cur.discard;
        self.current = Some(cur);
    }

    fn check_rsv(&mut self, h: &FrameHeader, out: &mut Vec<Output>) {
        let name = h.opcode.as_str();
        let allows_rsv1 = self.negotiated.as_ref().map(Negotiated::allows_rsv1);
        let allows_rsv23 = self
            .negotiated
            .as_ref()
            .is_some_and(Negotiated::allows_rsv23);
        if h.rsv & 0b011 != 0 && !allows_rsv23 && self.negotiated.is_some() {
            self.diag(
                out,
                DiagnosticId::ReservedBitsSet,
                format!("{name} frame with RSV2/RSV3 set and no extension negotiated that defines them (RFC 6455 §5.2)"),
            );
        }
        if h.rsv & 0b100 == 0 {
            return;
        }
        let first_data_frame = matches!(h.opcode, OpCode::Text | OpCode::Binary);
        match allows_rsv1 {
            Some(false) => self.diag(
                out,
                DiagnosticId::ReservedBitsSet,
                format!("{name} frame with RSV1 set but no extension negotiated (RFC 6455 §5.2)"),
            ),
            Some(true) if !first_data_frame && self.negotiated.as_ref().is_some_and(|n| n.deflate.is_some()) => {
                self.diag(
                    out,
                    DiagnosticId::ReservedBitsSet,
                    format!("RSV1 set on a {name} frame (RFC 7692 §6.1: only the first frame of a data message may carry it)"),
                )
            }
            _ => {}
        }
    }

    fn begin_compressed(&mut self) {
        if self.inflater.is_none() && self.compressed_context_unknown {
            // No handshake: assume permessage-deflate with context takeover and a 15-bit window, the
            // history unknown. A message that needs earlier history is reported unknown; one that does
            // not (every one, under no_context_takeover) is proven exact.
            let mut inflater = Inflater::with_budget(
                InflateParams {
                    no_context_takeover: false,
                    max_window_bits: 15,
                },
                self.limits.max_inflated_bytes,
                self.budget.clone(),
            );
            inflater.lose_context();
            self.inflater = Some(Box::new(inflater));
        }
        match self.inflater.as_mut() {
            Some(inflater) => inflater.begin_message(),
            None => {
                // RSV1 without permessage-deflate (already reported, or an unknown extension).
                if let Some(m) = self.message.as_mut() {
                    m.not_inflated = Some(NotInflated::NotNegotiated);
                }
            }
        }
    }

    fn on_payload(&mut self, chunk: &[u8]) {
        let Some(cur) = self.current.as_mut() else {
            return;
        };
        cur.seen += chunk.len() as u64;
        if cur.header.opcode.is_control() {
            let room = MAX_CONTROL_KEPT.saturating_sub(cur.control.len());
            cur.control
                .extend_from_slice(&chunk[..chunk.len().min(room)]);
            return;
        }
        if cur.discard || !cur.data {
            return;
        }
        let Some(m) = self.message.as_mut() else {
            return;
        };
        m.wire_length += chunk.len() as u64;
        if !m.compressed {
            if m.kept.capacity() == 0 {
                // The frame's length is known: one allocation instead of a doubling series
                // (each copy of a large message touched fresh pages).
                let rest = cur.header.payload_len.saturating_sub(cur.seen) + chunk.len() as u64;
                let cap = kept_cap(self.payload, self.limits) as u64;
                m.kept.reserve(rest.min(cap) as usize);
            }
            absorb(m, chunk, self.payload, self.limits);
            return;
        }
        if m.not_inflated.is_some() {
            return;
        }
        let Some(inflater) = self.inflater.as_mut() else {
            return;
        };
        let (payload, limits) = (self.payload, self.limits);
        let result = inflater.push(chunk, &mut |bytes: &[u8]| absorb(m, bytes, payload, limits));
        if let Err(e) = result {
            fail_inflate(m, e);
        }
    }

    fn on_payload_gap(&mut self, len: u64) {
        let Some(cur) = self.current.as_mut() else {
            return;
        };
        cur.seen = cur.seen.saturating_add(len);
        cur.lost = true;
        if cur.data
            && let Some(m) = self.message.as_mut()
        {
            m.complete = false;
            m.wire_length = m.wire_length.saturating_add(len);
            if m.compressed && m.not_inflated.is_none() {
                m.not_inflated = Some(NotInflated::BytesLost);
                if let Some(inflater) = self.inflater.as_mut() {
                    inflater.lose_context();
                    self.reported_context_unknown = false;
                }
            }
        }
    }

    fn on_end(&mut self, out: &mut Vec<Output>) {
        let Some(cur) = self.current.take() else {
            return;
        };
        let h = cur.header;
        if h.opcode.is_control() {
            self.finish_control(cur, out);
            return;
        }
        if cur.lost
            && let Some(m) = self.message.as_mut()
        {
            m.complete = false;
        }
        if cur.data && h.fin {
            self.finish_message(out, true);
        }
    }

    fn finish_control(&mut self, cur: Current, out: &mut Vec<Output>) {
        let h = cur.header;
        let mut close = None;
        let mut utf8_valid = true;
        if h.opcode == OpCode::Close && !cur.lost {
            let body = &cur.control;
            let (code, reason) = match body.len() {
                0 => (1005, Vec::new()),
                1 => {
                    self.diag(
                        out,
                        DiagnosticId::InvalidCloseCode,
                        "Close frame with a 1-byte body (RFC 6455 §5.5.1: a body starts with a 2-byte code)".into(),
                    );
                    (1005, body.clone())
                }
                _ => (u16::from_be_bytes([body[0], body[1]]), body[2..].to_vec()),
            };
            if body.len() >= 2 && !close_code_allowed_on_wire(code) {
                self.diag(
                    out,
                    DiagnosticId::InvalidCloseCode,
                    format!("close code {code} must not be sent in a Close frame (RFC 6455 §7.4)"),
                );
            }
            if std::str::from_utf8(&reason).is_err() {
                utf8_valid = false;
                self.diag(
                    out,
                    DiagnosticId::InvalidUtf8,
                    "close reason is not valid UTF-8 (RFC 6455 §5.5.1)".into(),
                );
            }
            close = Some((code, reason));
        }
        if h.opcode == OpCode::Close {
            self.close_sent = true;
        }
        // Control bodies are kept whole (they are small, and ping/pong pairing compares them);
        // records cut them to the preview when rendered.
        let payload_truncated = cur.control.len() as u64 != h.payload_len;
        let payload = cur.control;
        out.push(Output::Message(Box::new(Message {
            time: self.time,
            from: self.side,
            opcode: h.opcode,
            length: Some(h.payload_len),
            wire_length: h.payload_len,
            fragments: 1,
            compressed: h.rsv & 0b100 != 0,
            complete: !cur.lost,
            close,
            utf8_valid,
            payload_truncated,
            payload,
            inflate_error: None,
            inflated_after_gap: false,
            history_lost: false,
        })));
    }

    fn finish_message(&mut self, out: &mut Vec<Output>, ended_by_fin: bool) {
        let Some(mut m) = self.message.take() else {
            return;
        };
        if !ended_by_fin {
            m.complete = false;
        }
        if m.compressed
            && m.not_inflated.is_none()
            && m.complete
            && let Some(inflater) = self.inflater.as_mut()
        {
            let (payload, limits) = (self.payload, self.limits);
            let result =
                inflater.end_message(&mut |bytes: &[u8]| absorb(&mut m, bytes, payload, limits));
            m.after_gap = inflater.last_message_after_loss();
            if let Err(e) = result {
                fail_inflate(&mut m, e);
            }
        }
        let inflated = !m.compressed || m.not_inflated.is_none();
        if m.compressed
            && let Some(why) = m.not_inflated.clone()
        {
            let id = why.diagnostic_id();
            let unavailable = id == DiagnosticId::DecompressionUnavailable;
            // A limit is reported even on an incomplete message: it was really hit. Lost history once
            // per loss: every message of a direction that lost its context would say the same.
            let report = if unavailable {
                !self.reported_context_unknown && m.complete
            } else {
                m.complete || id == DiagnosticId::LimitExceeded
            };
            if report {
                self.reported_context_unknown |= unavailable;
                let err = why.describe();
                self.diag(out, id, format!("{} message: {err}", m.opcode.as_str()));
            }
        }
        if m.truncated && self.payload == PayloadMode::Full {
            self.diag(
                out,
                DiagnosticId::LimitExceeded,
                format!(
                    "{} message longer than {1} bytes: only the first {1} kept for the report (--max-message-bytes)",
                    m.opcode.as_str(),
                    self.limits.max_kept_bytes
                ),
            );
        }
        let utf8_valid = if m.opcode == OpCode::Text && inflated && m.complete {
            let valid = m.utf8.finish();
            if !valid {
                self.diag(
                    out,
                    DiagnosticId::InvalidUtf8,
                    "text message is not valid UTF-8 (RFC 6455 §8.1)".into(),
                );
            }
            valid
        } else {
            true
        };
        let history_lost = m.not_inflated.as_ref().is_some_and(NotInflated::is_loss);
        out.push(Output::Message(Box::new(Message {
            time: self.time,
            from: self.side,
            opcode: m.opcode,
            length: inflated.then_some(m.length),
            wire_length: m.wire_length,
            fragments: m.fragments,
            compressed: m.compressed,
            complete: m.complete,
            close: None,
            utf8_valid,
            // When inflating stopped, what was kept is the part inflated before: a prefix.
            payload_truncated: m.truncated || (!inflated && !m.kept.is_empty()),
            payload: m.kept,
            inflate_error: m.not_inflated.as_ref().map(NotInflated::describe),
            inflated_after_gap: m.compressed && inflated && m.after_gap,
            history_lost: m.compressed && history_lost,
        })));
    }

    /// End of the stream: a message still in progress is reported as incomplete.
    pub fn finish(&mut self, out: &mut Vec<Output>) {
        if let Some(mut cur) = self.current.take()
            && cur.header.opcode.is_control()
        {
            cur.lost = true;
            self.finish_control(cur, out);
        }
        if self.message.is_some() {
            self.finish_message(out, false);
        }
    }
}

/// Counts, validates and keeps (within limits) a piece of a message's final payload.
fn absorb(m: &mut InProgress, bytes: &[u8], payload: PayloadMode, limits: MessageLimits) {
    m.length += bytes.len() as u64;
    if m.opcode == OpCode::Text {
        m.utf8.push(bytes);
    }
    let room = kept_cap(payload, limits).saturating_sub(m.kept.len());
    if bytes.len() > room {
        m.truncated = true;
    }
    m.kept.extend_from_slice(&bytes[..bytes.len().min(room)]);
}

/// Bytes of a message's payload kept.
fn kept_cap(payload: PayloadMode, limits: MessageLimits) -> usize {
    match payload {
        PayloadMode::None => 0,
        PayloadMode::Preview(n) => n,
        PayloadMode::Full => limits.max_kept_bytes,
    }
}

fn fail_inflate(m: &mut InProgress, e: InflateError) {
    m.not_inflated = Some(NotInflated::Inflater(e));
}

fn opcode_number(op: OpCode) -> u8 {
    match op {
        OpCode::Continuation => 0,
        OpCode::Text => 1,
        OpCode::Binary => 2,
        OpCode::Close => 8,
        OpCode::Ping => 9,
        OpCode::Pong => 10,
        OpCode::Reserved(n) => n,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{Compress, Compression, FlushCompress};

    /// RFC 7692 sender: each message sync-flushed, the `00 00 ff ff` tail removed.
    fn compress_all(msgs: &[Vec<u8>]) -> Vec<Vec<u8>> {
        let mut c = Compress::new(Compression::default(), false);
        msgs.iter()
            .map(|m| {
                let mut out = Vec::with_capacity(m.len() + 64);
                c.compress_vec(m, &mut out, FlushCompress::Sync).unwrap();
                out.truncate(out.len() - 4);
                out
            })
            .collect()
    }

    fn assembler(negotiated: Option<Negotiated>) -> Assembler {
        Assembler::new(
            Side::Server,
            negotiated,
            PayloadMode::Full,
            MessageLimits::default(),
            DecoderBudget::unlimited(),
        )
    }

    /// One compressed text frame through the assembler: the message it makes, and diagnostics.
    fn frame(asm: &mut Assembler, payload: &[u8]) -> (Message, Vec<DiagnosticId>) {
        let mut out = Vec::new();
        let wire = crate::ws::frame::encode_frame(true, 0b100, 1, None, payload);
        let h = match crate::ws::frame::parse_frame_header(&wire) {
            crate::ws::frame::HeaderParse::Complete(h) => h,
            other => panic!("{other:?}"),
        };
        asm.on_event(FrameEvent::Header(h), 1.0, &mut out);
        if !payload.is_empty() {
            asm.on_event(FrameEvent::Payload(payload), 1.0, &mut out);
        }
        asm.on_event(FrameEvent::End, 1.0, &mut out);
        let mut message = None;
        let mut diags = Vec::new();
        for o in out {
            match o {
                Output::Message(m) => message = Some(*m),
                Output::Diagnostic(d) => diags.push(d.id),
                Output::Frame(..) => {}
            }
        }
        (message.expect("a message"), diags)
    }

    fn deflate_negotiated() -> Negotiated {
        Negotiated::from_response(Some("permessage-deflate"))
    }

    #[test]
    fn after_a_gap_messages_are_exact_and_flagged_or_unknown_and_counted() {
        let msgs: Vec<Vec<u8>> = vec![
            b"{\"type\":\"hello\",\"user\":\"ada\"}".to_vec(),
            b"{\"type\":\"hello\",\"user\":\"bob\"}".to_vec(),
            // Nothing in it appears before: exact after the gap.
            b"zqxj 0123456789 plain words vwk".to_vec(),
            // Copies "type" etc. from the lost message: unknown.
            b"{\"type\":\"hello\",\"user\":\"eve\"}".to_vec(),
        ];
        let wire = compress_all(&msgs);
        let mut asm = assembler(Some(deflate_negotiated()));
        let (m, _) = frame(&mut asm, &wire[0]);
        assert_eq!(m.payload, msgs[0]);
        assert!(!m.inflated_after_gap);
        // Message 1 is lost in a gap the framer could not stay aligned across.
        asm.lose_context();
        let (m, diags) = frame(&mut asm, &wire[2]);
        assert_eq!(
            (m.length, &m.payload),
            (Some(msgs[2].len() as u64), &msgs[2])
        );
        assert!(m.inflated_after_gap && !m.history_lost && m.inflate_error.is_none());
        assert!(diags.is_empty(), "{diags:?}");
        let (m, diags) = frame(&mut asm, &wire[3]);
        assert_eq!(m.length, None);
        assert!(m.history_lost && !m.inflated_after_gap && m.complete);
        assert!(msgs[3].starts_with(&m.payload));
        assert_eq!(m.payload_truncated, !m.payload.is_empty());
        let err = m.inflate_error.unwrap();
        assert!(
            err.starts_with("context lost")
                && err.contains(&format!("inflates to {} bytes", msgs[3].len())),
            "{err}"
        );
        assert_eq!(diags, vec![DiagnosticId::DecompressionUnavailable]);
    }

    #[test]
    fn without_a_handshake_rsv1_messages_are_inflated_when_they_stand_alone() {
        let msgs: Vec<Vec<u8>> = (0..4)
            .map(|i| format!("message {i}: stand-alone text of its own").into_bytes())
            .collect();
        // A no_context_takeover sender: every message compressed from an empty window.
        let wire: Vec<Vec<u8>> = msgs
            .iter()
            .flat_map(|m| compress_all(std::slice::from_ref(m)))
            .collect();
        let mut asm = assembler(None);
        for (w, m) in wire.iter().zip(&msgs) {
            let (got, diags) = frame(&mut asm, w);
            assert_eq!(got.payload, *m);
            assert!(got.inflated_after_gap && diags.is_empty());
        }
    }

    #[test]
    fn compressed_bytes_lost_in_a_gap_spoil_that_message_only() {
        let msgs: Vec<Vec<u8>> = vec![
            b"first message, all literal".to_vec(),
            b"second message is cut by a gap".to_vec(),
            b"0123456789 qwerty zxcv".to_vec(),
        ];
        let wire = compress_all(&msgs);
        let mut asm = assembler(Some(deflate_negotiated()));
        frame(&mut asm, &wire[0]);
        let mut out = Vec::new();
        let w = crate::ws::frame::encode_frame(true, 0b100, 1, None, &wire[1]);
        let h = match crate::ws::frame::parse_frame_header(&w) {
            crate::ws::frame::HeaderParse::Complete(h) => h,
            other => panic!("{other:?}"),
        };
        asm.on_event(FrameEvent::Header(h), 1.0, &mut out);
        asm.on_event(FrameEvent::Payload(&wire[1][..3]), 1.0, &mut out);
        asm.on_event(
            FrameEvent::PayloadGap {
                len: wire[1].len() as u64 - 3,
            },
            1.0,
            &mut out,
        );
        asm.on_event(FrameEvent::End, 1.0, &mut out);
        let cut = out
            .iter()
            .find_map(|o| match o {
                Output::Message(m) => Some(m),
                _ => None,
            })
            .unwrap();
        assert!(cut.history_lost && !cut.complete && cut.length.is_none());
        let (m, _) = frame(&mut asm, &wire[2]);
        assert_eq!(m.payload, msgs[2]);
        assert!(m.inflated_after_gap);
    }
}
