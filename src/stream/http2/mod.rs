//! HTTP/2 (RFC 9113, HPACK RFC 7541) as a stream layer, for the WebSockets it carries (RFC 8441).
//!
//! In: each direction's plaintext bytes (after TLS, or the TCP stream for h2c), the client's
//! starting with the connection preface. Out: the DATA payloads of WebSocket streams (extended
//! CONNECT with `:protocol websocket`), padding removed, as [`Out::Data`] with the stream id as
//! `channel`; and [`Http2Event`]s: settings, the WebSocket handshakes, how each WebSocket stream
//! ended, GOAWAY, PING, ordinary streams (counted) and diagnostics.
//!
//! ```text
//! bytes ─► frames (frame.rs) ─► header blocks ─► HPACK (hpack.rs) ─► heads (streams.rs)
//!                └─► DATA of WebSocket streams ─► Out::Data { channel: stream id }
//! ```
//!
//! A passive observer cannot ask again, so the layer follows what it can:
//! - A capture that starts inside the connection: frames are found by hunting for plausible
//!   headers, HPACK fields that refer to entries never seen are *unknown*, and a stream whose
//!   headers are unreadable is a "probable RFC 8441 WebSocket, handshake not seen" when its
//!   first DATA parses as WebSocket frames masked the way its direction requires.
//! - A capture gap inside a DATA payload keeps frame alignment (the gap goes to the stream as a
//!   [`Chunk::Gap`]); one across a frame boundary starts a hunt, and that direction's HPACK table
//!   is then partly unknown. Every open WebSocket stream of that direction is told `Gap(n)`,
//!   n being an upper bound of its loss (the bytes lost and skipped).
//! - Memory is capped: header blocks ([`MAX_HEADER_BLOCK`]), CONTINUATION runs, the HPACK table
//!   ([`hpack::MAX_TABLE_BYTES`]), tracked streams ([`streams::MAX_STREAMS`]), the hunt window.
//!   A cap reached is a `limit_exceeded` diagnostic.
//! - A frame that no RFC 9113 peer could accept (a connection error) ends decoding of the
//!   connection with an `h2_protocol_error` diagnostic; a header block that does not decode
//!   (`h2_hpack_error`) ends header decoding of that direction only.

mod events;
pub mod flow;
pub mod frame;
mod headers;
pub mod hpack;
mod huffman;
mod recovery;
pub mod streams;
pub mod summary;

#[cfg(test)]
mod tests;

use crate::diag::{Diagnostic, DiagnosticId, Side};
use crate::stream::{Chunk, End, Layer, Out};

use frame::{ErrorCode, Frame, FrameHeader, HEADER_LEN, PREFACE, Setting, flag, kind};
use streams::{Stream, StreamKind, Streams, idx};

pub use events::{Http2Event, SettingsInfo, StreamEnd};
pub use recovery::{looks_like_frames, looks_like_websocket};
pub use streams::{H2RequestHead, H2ResponseHead};

/// Compressed bytes of one header block (HEADERS or PUSH_PROMISE plus CONTINUATIONs) buffered
/// before decoding. Chromium accepts header lists of 256 KiB; compressed blocks are far smaller.
pub const MAX_HEADER_BLOCK: usize = 256 * 1024;

/// CONTINUATION frames in one header block before it counts as a flood (memory is capped by
/// [`MAX_HEADER_BLOCK`] anyway; empty ones only cost time).
pub const MAX_CONTINUATIONS: u32 = 1024;

/// Bytes held while hunting for a frame boundary; frames longer than this cannot anchor a resync.
pub const HUNT_WINDOW: usize = 64 * 1024;

/// Bytes a direction may hunt without finding frames before it is declared not HTTP/2.
pub const HUNT_BUDGET: u64 = 1024 * 1024;

/// The first DATA of a stream whose headers were not readable is buffered up to this size to
/// see whether it holds WebSocket frames.
pub const PROBE_CAP: u32 = 64 * 1024;

/// A flow-control stall this long is a diagnostic (shorter ones are counted on the stream):
/// a sender that waits for credit for half a second delays its messages noticeably.
pub const STALL_REPORTED_SECONDS: f64 = 0.5;

/// GOAWAY debug data kept.
pub const MAX_DEBUG_KEPT: usize = 256;

/// SETTINGS parameters read per frame (real peers send under 10).
const MAX_SETTINGS_KEPT: u32 = 256;

/// Diagnostics of one id raised per connection before the rest are only counted here.
const MAX_DIAGS_PER_ID: u32 = 32;

/// Is this the start of an HTTP/2 client stream? `None`: too few bytes to tell (they are a
/// prefix of the preface); `Some(true)`: the whole 24-byte preface is there.
pub fn is_client_preface(first_bytes: &[u8]) -> Option<bool> {
    let n = first_bytes.len().min(PREFACE.len());
    if first_bytes[..n] != PREFACE[..n] {
        Some(false)
    } else if n < PREFACE.len() {
        None
    } else {
        Some(true)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum How {
    /// Whole payload (its first `keep` bytes) into the direction's buffer, the rest skipped.
    Buffer { keep: u32 },
    /// A header block fragment too large for the block cap: skipped, the block is lost.
    SkipFragment,
    /// DATA streamed through.
    Data {
        pad_pending: bool,
        data_left: u32,
        pad_left: u32,
        forward: bool,
    },
    /// Ignored (unknown frame type).
    Skip,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rx {
    /// Matching the client preface: bytes matched so far.
    Preface(usize),
    /// Reading a 9-byte frame header.
    Header,
    /// Inside a payload: header, bytes left, how.
    Payload(FrameHeader, u32, How),
    /// Looking for a frame boundary.
    Hunt,
    /// Not decoded any more.
    Stopped,
}

/// A header block being assembled.
#[derive(Debug, Clone, Copy)]
struct Block {
    stream_id: u32,
    end_stream: bool,
    promised: Option<u32>,
    overflow: bool,
    continuations: u32,
}

struct Dir {
    side: Side,
    rx: Rx,
    hdr: [u8; HEADER_LEN],
    hdr_have: usize,
    payload: Vec<u8>,
    block: Option<Block>,
    block_buf: Vec<u8>,
    hunt: Vec<u8>,
    hunt_scanned: usize,
    hunt_skipped: u64,
    /// Bytes lost (gaps) and skipped since the last resync, for the streams' Gap.
    lost: u64,
    hunted_total: u64,
    decoder: hpack::Decoder,
    hpack_failed: bool,
    unknown_reported: bool,
    /// SETTINGS_MAX_FRAME_SIZE the receiver of this direction announced.
    max_frame: Option<u32>,
    frame_size_reported: bool,
    /// The first frame header must be a SETTINGS (the server's preface) or the capture started
    /// inside the connection.
    verify_first: bool,
    ended: bool,
}

impl Dir {
    fn new(side: Side, rx: Rx) -> Self {
        Dir {
            side,
            rx,
            hdr: [0; HEADER_LEN],
            hdr_have: 0,
            payload: Vec::new(),
            block: None,
            block_buf: Vec::new(),
            hunt: Vec::new(),
            hunt_scanned: 0,
            hunt_skipped: 0,
            lost: 0,
            hunted_total: 0,
            // Known to be complete once the client preface is seen.
            decoder: hpack::Decoder::with_unknown_history(),
            hpack_failed: false,
            unknown_reported: false,
            max_frame: None,
            frame_size_reported: false,
            verify_first: false,
            ended: false,
        }
    }
}

/// The HTTP/2 layer of one connection.
pub struct Http2Layer {
    dirs: [Dir; 2],
    streams: Streams,
    /// The client preface was seen: nothing came before what we decode.
    from_start: bool,
    /// Lowest stream id each side opened that we saw open (midstream: older ids predate us).
    lowest_opened: [Option<u32>; 2],
    /// The server's SETTINGS were seen; its SETTINGS_ENABLE_CONNECT_PROTOCOL.
    server_settings_seen: bool,
    server_connect_protocol: Option<bool>,
    goaway: Option<(Side, u32, ErrorCode)>,
    stopped: bool,
    /// Both senders' flow-control credit (for stalls of WebSocket streams).
    flow: flow::FlowControl,
    /// Capture time of the last bytes or end pushed.
    last_time: f64,
    diag_counts: std::collections::HashMap<DiagnosticId, u32>,
    stream_cap_reported: bool,
    table_cap_reported: [bool; 2],
    midstream_reported: bool,
}

type Sink<'o> = &'o mut dyn FnMut(Out<'_, Http2Event>);

impl Default for Http2Layer {
    fn default() -> Self {
        Http2Layer::new()
    }
}

impl Http2Layer {
    /// A connection that starts with the client preface (prior knowledge h2c, or TLS with ALPN
    /// h2). When the client's bytes do not start with it, the capture started inside the
    /// connection: frames are hunted for and HPACK history is unknown.
    pub fn new() -> Self {
        Http2Layer {
            dirs: [
                Dir::new(Side::Client, Rx::Preface(0)),
                Dir::new(Side::Server, Rx::Header),
            ],
            streams: Streams::default(),
            from_start: false,
            lowest_opened: [None; 2],
            server_settings_seen: false,
            server_connect_protocol: None,
            goaway: None,
            stopped: false,
            flow: flow::FlowControl::new(false),
            last_time: 0.0,
            diag_counts: Default::default(),
            stream_cap_reported: false,
            table_cap_reported: [false; 2],
            midstream_reported: false,
        }
        .with_server_preface_check()
    }

    fn with_server_preface_check(mut self) -> Self {
        self.dirs[1].verify_first = true;
        self
    }

    /// A connection upgraded from HTTP/1.1 (`Upgrade: h2c`, RFC 7540 §3.2): the layer is given
    /// the bytes after the request head (client, starting with the preface) and after the 101
    /// (server, starting with its SETTINGS). The upgraded request is stream 1, whose client half
    /// is closed; `method` and `path` are the HTTP/1.1 request's.
    pub fn after_h2c_upgrade(method: &str, path: &str) -> Self {
        let mut layer = Http2Layer::new();
        let mut s = Stream::new(StreamKind::Ordinary);
        s.method = Some(method.to_string());
        s.path = Some(path.to_string());
        s.closed[0] = true;
        layer.streams.insert(1, s);
        layer.streams.highest[0] = 1;
        layer.lowest_opened[0] = Some(1);
        layer
    }

    /// A connection whose start was not captured (both directions are hunted, HPACK history is
    /// unknown).
    pub fn midstream() -> Self {
        let mut layer = Http2Layer::new();
        for d in &mut layer.dirs {
            d.rx = Rx::Hunt;
            d.verify_first = false;
        }
        layer
    }

    /// The server's SETTINGS_ENABLE_CONNECT_PROTOCOL, when its SETTINGS were seen.
    pub fn server_enables_connect_protocol(&self) -> Option<bool> {
        self.server_connect_protocol
    }

    /// Decoding stopped on a protocol error.
    pub fn is_stopped(&self) -> bool {
        self.stopped
    }

    /// Bytes held in the layer's buffers and HPACK tables (for the memory bound's tests).
    pub fn buffered_bytes(&self) -> usize {
        self.dirs
            .iter()
            .map(|d| {
                d.payload.capacity()
                    + d.block_buf.capacity()
                    + d.hunt.capacity()
                    + d.decoder.table().size()
            })
            .sum::<usize>()
            + self.streams.len() * std::mem::size_of::<Stream>()
    }

    fn diag(
        &mut self,
        id: DiagnosticId,
        stream_id: Option<u32>,
        from: Option<Side>,
        time: f64,
        message: String,
        out: Sink<'_>,
    ) {
        let n = self.diag_counts.entry(id).or_insert(0);
        *n += 1;
        if *n > MAX_DIAGS_PER_ID {
            return;
        }
        out(Out::Event(Http2Event::Diagnostic {
            stream_id,
            diagnostic: Diagnostic::new(id, from, Some(time), message),
        }));
    }

    /// A connection error: report it and stop decoding both directions.
    /// A WebSocket stream's half (`from`'s; both for a reset or a GOAWAY) ended: the stalls of
    /// the senders that are done are reported first, while the stream's record is open.
    fn stream_ended(&mut self, stream_id: u32, from: Side, how: StreamEnd, out: Sink<'_>) {
        self.stream_ended_half(stream_id, from, from, how, out);
    }

    /// [`Self::stream_ended`] where the half that ended (`half`) is not the side the event
    /// names (`from`: a GOAWAY's sender).
    fn stream_ended_half(
        &mut self,
        stream_id: u32,
        from: Side,
        half: Side,
        how: StreamEnd,
        out: Sink<'_>,
    ) {
        let both = matches!(how, StreamEnd::Reset(_) | StreamEnd::GoAway { .. });
        let done: &[Side] = if both {
            &[Side::Client, Side::Server]
        } else {
            std::slice::from_ref(&half)
        };
        let stalls: Vec<flow::Stall> = done
            .iter()
            .filter_map(|&sender| self.flow.sender_done(stream_id, sender))
            .collect();
        let now = self.last_time;
        self.stalls(stalls, now, out);
        out(Out::Event(Http2Event::StreamEnded {
            stream_id,
            from,
            how,
        }));
    }

    /// Stalls that ended (or were still going on when their stream ended): each is an event;
    /// the long ones are diagnostics of their stream.
    fn stalls(&mut self, stalls: Vec<flow::Stall>, now: f64, out: Sink<'_>) {
        for stall in stalls {
            let seconds = stall.seconds(now);
            out(Out::Event(Http2Event::FlowStall(stall)));
            if seconds < STALL_REPORTED_SECONDS {
                continue;
            }
            let receiver = stall.sender.peer().as_str();
            let window = match stall.window {
                flow::Exhausted::Stream => format!(
                    "the stream's flow-control window ({} bytes) was used up",
                    stall.size
                ),
                flow::Exhausted::Connection => format!(
                    "the connection's flow-control window ({} bytes, shared with every stream) was used up",
                    stall.size
                ),
            };
            let how_long = match stall.until {
                Some(_) => format!(
                    "and the {receiver}'s WINDOW_UPDATE gave credit again {} later",
                    crate::diag::human_seconds(seconds)
                ),
                None => format!(
                    "and the {receiver} gave no credit again in the {} that followed",
                    crate::diag::human_seconds(seconds)
                ),
            };
            self.diag(
                DiagnosticId::H2FlowControlStall,
                Some(stall.stream_id),
                Some(stall.sender),
                stall.since,
                format!(
                    "the {}'s DATA on stream {} waited for flow-control credit: {window}, {how_long}; the {receiver} (or a proxy in front of it) reads slowly, and messages queue behind the window (RFC 9113 §5.2)",
                    stall.sender.as_str(),
                    stall.stream_id
                ),
                out,
            );
        }
    }

    fn fatal(&mut self, s: usize, time: f64, message: String, out: Sink<'_>) {
        // What follows is not seen: no stall can be measured any more.
        self.flow.forget();
        let side = self.dirs[s].side;
        self.diag(
            DiagnosticId::H2ProtocolError,
            None,
            Some(side),
            time,
            format!(
                "{message} (from the {}): HTTP/2 decoding of this connection stops here",
                side.as_str()
            ),
            out,
        );
        self.stopped = true;
        out(Out::Event(Http2Event::DecodingStopped { from: side }));
        for d in &mut self.dirs {
            d.rx = Rx::Stopped;
            d.payload = Vec::new();
            d.block_buf = Vec::new();
            d.hunt = Vec::new();
        }
        for id in self.streams.ids() {
            let Some(st) = self.streams.get(id) else {
                continue;
            };
            if matches!(st.kind, StreamKind::WebSocket { .. }) {
                let open = [Side::Client, Side::Server].map(|side| !st.closed[idx(side)]);
                for side in [Side::Client, Side::Server] {
                    if open[idx(side)] {
                        self.stream_ended(id, side, StreamEnd::Undecodable, out);
                    }
                }
            }
        }
        self.streams = Streams::default();
    }

    fn feed(&mut self, s: usize, time: f64, mut data: &[u8], out: Sink<'_>) {
        while !data.is_empty() {
            match self.dirs[s].rx {
                Rx::Stopped => return,
                Rx::Preface(matched) => {
                    let n = data.len().min(PREFACE.len() - matched);
                    if data[..n] != PREFACE[matched..matched + n] {
                        self.not_preface(s, time, matched, out);
                        continue;
                    }
                    data = &data[n..];
                    if matched + n == PREFACE.len() {
                        self.dirs[s].rx = Rx::Header;
                        self.from_start = true;
                        self.flow = flow::FlowControl::new(true);
                        for d in &mut self.dirs {
                            d.decoder.assume_complete_history();
                        }
                        out(Out::Event(Http2Event::Preface));
                    } else {
                        self.dirs[s].rx = Rx::Preface(matched + n);
                    }
                }
                Rx::Header => {
                    let d = &mut self.dirs[s];
                    let n = data.len().min(HEADER_LEN - d.hdr_have);
                    d.hdr[d.hdr_have..d.hdr_have + n].copy_from_slice(&data[..n]);
                    d.hdr_have += n;
                    data = &data[n..];
                    if d.hdr_have == HEADER_LEN {
                        d.hdr_have = 0;
                        let Some(h) = frame::parse_header(&d.hdr) else {
                            return;
                        };
                        if std::mem::take(&mut d.verify_first)
                            && !self.from_start
                            && !is_settings_start(&h)
                        {
                            let hdr = d.hdr;
                            self.report_midstream(d_side(s), time, out);
                            let d = &mut self.dirs[s];
                            d.hunt.clear();
                            d.hunt.extend_from_slice(&hdr);
                            d.hunt_scanned = 0;
                            d.rx = Rx::Hunt;
                            continue;
                        }
                        self.on_header(s, time, h, out);
                    }
                }
                Rx::Payload(h, left, how) => {
                    let used = self.payload_bytes(s, time, h, left, how, data, out);
                    data = &data[used..];
                }
                Rx::Hunt => {
                    let used = self.hunt(s, time, data, out);
                    data = &data[used..];
                }
            }
        }
    }

    /// The client's bytes are not the preface: the capture started inside the connection.
    fn not_preface(&mut self, s: usize, time: f64, matched: usize, out: Sink<'_>) {
        self.report_midstream(Side::Client, time, out);
        let d = &mut self.dirs[s];
        d.hunt.clear();
        d.hunt.extend_from_slice(&PREFACE[..matched]);
        d.hunt_scanned = 0;
        d.rx = Rx::Hunt;
    }

    fn report_midstream(&mut self, side: Side, time: f64, out: Sink<'_>) {
        if std::mem::replace(&mut self.midstream_reported, true) {
            return;
        }
        let what = match side {
            Side::Client => "the client's bytes do not start with the HTTP/2 connection preface",
            Side::Server => "the server's bytes do not start with its SETTINGS",
        };
        self.diag(
            DiagnosticId::MidstreamStart,
            None,
            Some(side),
            time,
            format!(
                "{what}: the capture started inside the HTTP/2 connection; frames are found by \
                 resynchronising and header fields that refer to earlier HPACK entries are unreadable"
            ),
            out,
        );
    }

    fn on_header(&mut self, s: usize, time: f64, h: FrameHeader, out: Sink<'_>) {
        let side = self.dirs[s].side;
        // RFC 9113 §6.10: a header block is one run of HEADERS/PUSH_PROMISE + CONTINUATION.
        match (self.dirs[s].block, h.kind) {
            (Some(b), kind::CONTINUATION) if b.stream_id == h.stream_id => {}
            (Some(b), k) => {
                return self.fatal(
                    s,
                    time,
                    format!(
                        "{} frame on stream {} inside the header block of stream {} (RFC 9113 §6.10: only CONTINUATION)",
                        frame::kind_name(k),
                        h.stream_id,
                        b.stream_id
                    ),
                    out,
                );
            }
            (None, kind::CONTINUATION) => {
                return self.fatal(
                    s,
                    time,
                    format!(
                        "CONTINUATION frame on stream {} with no header block open (RFC 9113 §6.10)",
                        h.stream_id
                    ),
                    out,
                );
            }
            _ => {}
        }
        if let Err(e) = frame::check_header(&h) {
            return self.fatal(s, time, e.message, out);
        }
        if let Some(max) = self.dirs[s].max_frame
            && h.length > max
            && !self.dirs[s].frame_size_reported
        {
            self.dirs[s].frame_size_reported = true;
            self.diag(
                DiagnosticId::H2ProtocolError,
                None,
                Some(side),
                time,
                format!(
                    "{} frame of {} bytes, above the peer's SETTINGS_MAX_FRAME_SIZE {max} (RFC 9113 §4.2: FRAME_SIZE_ERROR)",
                    frame::kind_name(h.kind),
                    h.length
                ),
                out,
            );
        }
        let how = match h.kind {
            kind::DATA => self.data_how(s, time, &h, out),
            kind::HEADERS | kind::PUSH_PROMISE | kind::CONTINUATION => {
                let room = MAX_HEADER_BLOCK.saturating_sub(self.dirs[s].block_buf.len());
                if h.length as usize > room {
                    How::SkipFragment
                } else {
                    How::Buffer { keep: h.length }
                }
            }
            kind::SETTINGS => How::Buffer {
                keep: h.length.min(MAX_SETTINGS_KEPT * 6),
            },
            kind::GOAWAY => How::Buffer {
                keep: h.length.min(8 + MAX_DEBUG_KEPT as u32),
            },
            kind::PRIORITY | kind::RST_STREAM | kind::PING | kind::WINDOW_UPDATE => {
                How::Buffer { keep: h.length }
            }
            _ => How::Skip,
        };
        self.dirs[s].payload.clear();
        if h.length == 0 {
            self.frame_done(s, time, h, how, out);
        } else {
            self.dirs[s].rx = Rx::Payload(h, h.length, how);
        }
    }

    /// How a DATA frame is read: streamed to a WebSocket stream, buffered to probe a stream of
    /// unknown kind, or streamed past.
    fn data_how(&mut self, s: usize, time: f64, h: &FrameHeader, out: Sink<'_>) -> How {
        let side = self.dirs[s].side;
        let sid = h.stream_id;
        if self.streams.get(sid).is_none() && self.predates_capture(sid) {
            self.open_stream(sid, Stream::new(StreamKind::Unknown), time, out);
        }
        let (forward, probe) = match self.streams.get(sid) {
            Some(st) => (st.forwards(side), st.kind == StreamKind::Unknown),
            None => (false, false),
        };
        if probe && h.length <= PROBE_CAP {
            return How::Buffer { keep: h.length };
        }
        if probe && let Some(st) = self.streams.get_mut(sid) {
            // Too long to probe: not a WebSocket start we can recognise.
            st.kind = StreamKind::Ordinary;
        }
        How::Data {
            pad_pending: h.has(flag::PADDED),
            data_left: if h.has(flag::PADDED) { 0 } else { h.length },
            pad_left: 0,
            forward,
        }
    }

    /// Could stream `id` have been opened before the capture started?
    fn predates_capture(&self, id: u32) -> bool {
        if self.from_start || id == 0 {
            return false;
        }
        let opener = if id % 2 == 1 { 0 } else { 1 };
        self.lowest_opened[opener].is_none_or(|low| id < low)
    }

    fn open_stream(&mut self, id: u32, st: Stream, time: f64, out: Sink<'_>) -> bool {
        if self.streams.insert(id, st) {
            return true;
        }
        if !self.stream_cap_reported {
            self.stream_cap_reported = true;
            self.diag(
                DiagnosticId::LimitExceeded,
                None,
                None,
                time,
                format!(
                    "more than {} HTTP/2 streams open at once: later streams are counted but not followed",
                    streams::MAX_STREAMS
                ),
                out,
            );
        }
        false
    }

    /// Consumes payload bytes; returns how many of `data` were used.
    #[allow(clippy::too_many_arguments)]
    fn payload_bytes(
        &mut self,
        s: usize,
        time: f64,
        h: FrameHeader,
        left: u32,
        how: How,
        data: &[u8],
        out: Sink<'_>,
    ) -> usize {
        let side = self.dirs[s].side;
        let n = data.len().min(left as usize);
        let mut how = how;
        match &mut how {
            How::Buffer { keep } => {
                let done = h.length - left;
                let want = (*keep).saturating_sub(done) as usize;
                let d = &mut self.dirs[s];
                d.payload.extend_from_slice(&data[..n.min(want)]);
            }
            How::SkipFragment | How::Skip => {}
            How::Data {
                pad_pending,
                data_left,
                pad_left,
                forward,
            } => {
                let mut rest = &data[..n];
                if *pad_pending {
                    let pad = u32::from(rest[0]);
                    rest = &rest[1..];
                    *pad_pending = false;
                    if pad > h.length - 1 {
                        self.fatal(
                            s,
                            time,
                            format!(
                                "DATA frame on stream {} with {pad} bytes of padding in a {}-byte payload (RFC 9113 §6.1)",
                                h.stream_id, h.length
                            ),
                            out,
                        );
                        return data.len();
                    }
                    *data_left = h.length - 1 - pad;
                    *pad_left = pad;
                }
                let k = rest.len().min(*data_left as usize);
                if k > 0 {
                    if let Some(st) = self.streams.get_mut(h.stream_id) {
                        st.data_bytes[idx(side)] += k as u64;
                    }
                    if *forward {
                        out(Out::Data {
                            channel: h.stream_id,
                            from: side,
                            chunk: Chunk::Data(&rest[..k]),
                        });
                    }
                    *data_left -= k as u32;
                }
                *pad_left -= (rest.len() - k) as u32;
            }
        }
        let left = left - n as u32;
        if left == 0 {
            self.frame_done(s, time, h, how, out);
        } else if !self.stopped {
            self.dirs[s].rx = Rx::Payload(h, left, how);
        }
        n
    }

    /// A whole frame was read.
    fn frame_done(&mut self, s: usize, time: f64, h: FrameHeader, how: How, out: Sink<'_>) {
        self.dirs[s].rx = Rx::Header;
        let side = self.dirs[s].side;
        match how {
            How::Skip => {}
            How::Data { .. } => {
                let confirmed = self.flow.data(h.stream_id, side, h.length, time);
                self.stalls(confirmed.into_iter().collect(), time, out);
                if h.has(flag::END_STREAM) {
                    self.close_half(h.stream_id, side, time, out);
                }
            }
            How::SkipFragment => self.fragment(s, time, &h, None, out),
            How::Buffer { keep } => {
                let payload = std::mem::take(&mut self.dirs[s].payload);
                let mut hk = h;
                hk.length = keep;
                match frame::parse_payload(&hk, &payload[..keep as usize]) {
                    Err(e) => self.fatal(s, time, e.message, out),
                    Ok(f) => self.on_frame(s, time, &h, f, out),
                }
                let mut payload = payload;
                payload.clear();
                if payload.capacity() <= 64 * 1024 {
                    self.dirs[s].payload = payload;
                }
            }
        }
    }

    fn on_frame(&mut self, s: usize, time: f64, h: &FrameHeader, f: Frame<'_>, out: Sink<'_>) {
        let side = self.dirs[s].side;
        match f {
            Frame::Data {
                stream_id,
                end_stream,
                data,
                ..
            } => {
                // Only DATA on a stream of unknown kind is buffered: probe it.
                let confirmed = self.flow.data(stream_id, side, h.length, time);
                self.stalls(confirmed.into_iter().collect(), time, out);
                self.probe(stream_id, side, time, data, out);
                if end_stream {
                    self.close_half(stream_id, side, time, out);
                }
            }
            Frame::Headers { .. } | Frame::PushPromise { .. } | Frame::Continuation { .. } => {
                self.fragment(s, time, h, Some(f), out);
            }
            Frame::Settings { ack, params } => self.settings(s, time, ack, &params, out),
            Frame::Ping { ack, payload } => out(Out::Event(Http2Event::Ping {
                from: side,
                ack,
                payload,
            })),
            Frame::GoAway {
                last_stream_id,
                error,
                debug,
            } => self.goaway(side, time, last_stream_id, error, debug, out),
            Frame::RstStream { stream_id, error } => self.reset(stream_id, side, time, error, out),
            Frame::WindowUpdate {
                stream_id,
                increment,
            } => {
                let ended = self.flow.window_update(side, stream_id, increment, time);
                self.stalls(ended, time, out);
            }
            Frame::Priority { .. } | Frame::Unknown { .. } => {}
        }
    }

    /// The first DATA of a stream whose headers were not readable.
    fn probe(&mut self, sid: u32, side: Side, time: f64, data: &[u8], out: Sink<'_>) {
        let Some(st) = self.streams.get_mut(sid) else {
            return;
        };
        if st.kind != StreamKind::Unknown {
            return;
        }
        st.data_bytes[idx(side)] += data.len() as u64;
        if data.is_empty() {
            return;
        }
        if !looks_like_websocket(data, side) {
            st.kind = StreamKind::Ordinary;
            return;
        }
        st.kind = StreamKind::WebSocket {
            handshake_seen: false,
            accepted: if st.status.is_some() {
                Some(st.status.is_some_and(|c| (200..300).contains(&c)))
            } else {
                None
            },
        };
        out(Out::Event(Http2Event::ProbableWebSocket {
            stream_id: sid,
            from: side,
        }));
        self.diag(
            DiagnosticId::H2HandshakeNotSeen,
            Some(sid),
            Some(side),
            time,
            format!(
                "stream {sid}: its headers were not readable, but its DATA holds WebSocket frames: \
                 a probable RFC 8441 WebSocket whose extended CONNECT was not captured"
            ),
            out,
        );
        out(Out::Data {
            channel: sid,
            from: side,
            chunk: Chunk::Data(data),
        });
    }

    fn close_half(&mut self, sid: u32, side: Side, time: f64, out: Sink<'_>) {
        let Some(st) = self.streams.get_mut(sid) else {
            return;
        };
        if st.closed[idx(side)] {
            return;
        }
        st.closed[idx(side)] = true;
        let (websocket, closed) = (
            matches!(st.kind, StreamKind::WebSocket { .. }),
            st.is_closed(),
        );
        if websocket {
            self.stream_ended(sid, side, StreamEnd::EndStream, out);
        }
        if closed {
            self.finish_stream(sid, None, out);
        }
        let _ = time;
    }

    fn finish_stream(&mut self, sid: u32, reset: Option<ErrorCode>, out: Sink<'_>) {
        let Some(st) = self.streams.remove(sid) else {
            return;
        };
        let left = self.flow.unfollow(sid);
        let now = self.last_time;
        self.stalls(left, now, out);
        if matches!(st.kind, StreamKind::Ordinary | StreamKind::Unknown) {
            out(Out::Event(Http2Event::OrdinaryStream {
                stream_id: sid,
                method: st.method,
                path: st.path,
                status: st.status,
                pushed: st.pushed,
                reset,
            }));
        }
    }

    fn reset(&mut self, sid: u32, side: Side, time: f64, error: ErrorCode, out: Sink<'_>) {
        let Some(st) = self.streams.get(sid) else {
            return;
        };
        if matches!(st.kind, StreamKind::WebSocket { .. }) {
            // The stream's findings first: its record is finished when it ends.
            if error != ErrorCode::NO_ERROR && error != ErrorCode::CANCEL {
                self.diag(
                    DiagnosticId::H2StreamReset,
                    Some(sid),
                    Some(side),
                    time,
                    format!(
                        "WebSocket stream {sid} reset by the {} ({error})",
                        side.as_str()
                    ),
                    out,
                );
            }
            self.stream_ended(sid, side, StreamEnd::Reset(error), out);
        }
        self.finish_stream(sid, Some(error), out);
    }

    fn goaway(
        &mut self,
        side: Side,
        time: f64,
        last_stream_id: u32,
        error: ErrorCode,
        debug: &[u8],
        out: Sink<'_>,
    ) {
        let debug = String::from_utf8_lossy(&debug[..debug.len().min(MAX_DEBUG_KEPT)]).into_owned();
        out(Out::Event(Http2Event::GoAway {
            from: side,
            last_stream_id,
            error,
            debug: debug.clone(),
        }));
        if error != ErrorCode::NO_ERROR {
            let extra = if debug.is_empty() {
                String::new()
            } else {
                format!(": {debug:?}")
            };
            self.diag(
                DiagnosticId::H2GoawayError,
                None,
                Some(side),
                time,
                format!(
                    "the {} shut the HTTP/2 connection down with GOAWAY {error} (last stream {last_stream_id}){extra}",
                    side.as_str()
                ),
                out,
            );
        }
        self.goaway = Some((side, last_stream_id, error));
        // Streams the GOAWAY's receiver opened above last_stream_id were never processed.
        let receiver_parity = if side == Side::Server { 1 } else { 0 };
        for id in self.streams.ids() {
            if id > last_stream_id && id % 2 == receiver_parity {
                if self
                    .streams
                    .get(id)
                    .is_some_and(|st| matches!(st.kind, StreamKind::WebSocket { .. }))
                {
                    self.stream_ended(
                        id,
                        side,
                        StreamEnd::GoAway {
                            last_stream_id,
                            error,
                        },
                        out,
                    );
                }
                self.finish_stream(id, None, out);
            }
        }
    }

    fn settings(&mut self, s: usize, time: f64, ack: bool, params: &[Setting], out: Sink<'_>) {
        let side = self.dirs[s].side;
        let peer = 1 - s;
        let mut v = SettingsInfo::default();
        for p in params {
            if let Some(problem) = p.problem() {
                self.diag(
                    DiagnosticId::H2ProtocolError,
                    None,
                    Some(side),
                    time,
                    format!("{problem} (RFC 9113 §6.5.2)"),
                    out,
                );
            }
            match *p {
                Setting::HeaderTableSize(n) => {
                    v.header_table_size = Some(n);
                    self.dirs[peer].decoder.set_allowed_size(n as usize);
                }
                Setting::EnablePush(n) => v.enable_push = Some(n == 1),
                Setting::MaxConcurrentStreams(n) => v.max_concurrent_streams = Some(n),
                Setting::InitialWindowSize(n) => {
                    v.initial_window_size = Some(n);
                    if !ack {
                        let ended = self.flow.initial_window(side, n, time);
                        self.stalls(ended, time, out);
                    }
                }
                Setting::MaxFrameSize(n) => {
                    v.max_frame_size = Some(n);
                    self.dirs[peer].max_frame =
                        Some(n.clamp(frame::DEFAULT_MAX_FRAME_SIZE, 16_777_215));
                }
                Setting::MaxHeaderListSize(n) => v.max_header_list_size = Some(n),
                Setting::EnableConnectProtocol(n) => v.enable_connect_protocol = Some(n == 1),
                Setting::NoRfc7540Priorities(_) | Setting::Other(..) => {}
            }
        }
        if ack {
            let ended = self.flow.settings_acknowledged(side, time);
            self.stalls(ended, time, out);
        }
        if !ack && side == Side::Server {
            if self.from_start && !self.server_settings_seen {
                // The receiver's limit before its SETTINGS arrive is the default.
                if self.dirs[0].max_frame.is_none() {
                    self.dirs[0].max_frame = Some(frame::DEFAULT_MAX_FRAME_SIZE);
                }
            }
            self.server_settings_seen = true;
            if let Some(on) = v.enable_connect_protocol {
                if self.server_connect_protocol == Some(true) && !on {
                    self.diag(
                        DiagnosticId::H2ProtocolError,
                        None,
                        Some(side),
                        time,
                        "the server turned SETTINGS_ENABLE_CONNECT_PROTOCOL off after enabling it (RFC 8441 §3: MUST NOT)".into(),
                        out,
                    );
                }
                self.server_connect_protocol = Some(on);
            }
        }
        if !ack && side == Side::Client && self.from_start && self.dirs[1].max_frame.is_none() {
            self.dirs[1].max_frame = Some(frame::DEFAULT_MAX_FRAME_SIZE);
        }
        out(Out::Event(Http2Event::Settings {
            from: side,
            ack,
            values: v,
        }));
    }

    // ---- capture gaps and resynchronisation ----

    fn end_dir(&mut self, s: usize, time: f64, how: End, out: Sink<'_>) {
        let side = self.dirs[s].side;
        if self.dirs[s].ended {
            return;
        }
        self.dirs[s].ended = true;
        let inside = match self.dirs[s].rx {
            Rx::Payload(h, _, _) => Some(frame::kind_name(h.kind)),
            Rx::Header if self.dirs[s].hdr_have > 0 => Some("frame header"),
            Rx::Header if self.dirs[s].block.is_some() => Some("header block"),
            _ => None,
        };
        if let Some(what) = inside {
            self.diag(
                DiagnosticId::CaptureEndedMidFrame,
                None,
                Some(side),
                time,
                format!(
                    "the {}'s HTTP/2 stream ended inside a {what}",
                    side.as_str()
                ),
                out,
            );
        }
        if !self.stopped {
            self.dirs[s].rx = Rx::Stopped;
        }
        self.dirs[s].payload = Vec::new();
        self.dirs[s].hunt = Vec::new();
        self.dirs[s].block_buf = Vec::new();
        let end_how = match self.goaway {
            Some((_, last_stream_id, error)) => StreamEnd::GoAway {
                last_stream_id,
                error,
            },
            None => StreamEnd::Transport(how),
        };
        for id in self.streams.ids() {
            let Some(st) = self.streams.get_mut(id) else {
                continue;
            };
            if st.closed[idx(side)] {
                continue;
            }
            st.closed[idx(side)] = true;
            let (websocket, closed) = (
                matches!(st.kind, StreamKind::WebSocket { .. }),
                st.is_closed(),
            );
            if websocket {
                let from = match end_how {
                    StreamEnd::GoAway { .. } => self.goaway.map_or(side, |g| g.0),
                    _ => side,
                };
                self.stream_ended_half(id, from, side, end_how, out);
            }
            if closed {
                self.finish_stream(id, None, out);
            }
        }
    }
}

/// Do these first bytes of a direction look like an HTTP/2 server's preface, a SETTINGS frame
/// (RFC 9113 §3.4)? A WebSocket stream cannot start this way (`00` would be a non-final
/// continuation frame), nor can HTTP/1.x or TLS.
pub fn is_server_preface(first_bytes: &[u8]) -> bool {
    frame::parse_header(first_bytes).is_some_and(|h| is_settings_start(&h))
}

/// RFC 9113 §3.4: the server's preface is a SETTINGS frame (not an ACK).
fn is_settings_start(h: &FrameHeader) -> bool {
    h.kind == kind::SETTINGS
        && h.stream_id == 0
        && !h.has(flag::ACK)
        && h.length.is_multiple_of(6)
        && h.length <= MAX_SETTINGS_KEPT * 6
}

fn d_side(s: usize) -> Side {
    if s == 0 { Side::Client } else { Side::Server }
}

impl Layer for Http2Layer {
    type Event = Http2Event;

    fn push(
        &mut self,
        from: Side,
        time: f64,
        chunk: Chunk<'_>,
        out: &mut dyn FnMut(Out<'_, Self::Event>),
    ) {
        let s = idx(from);
        self.last_time = self.last_time.max(time);
        if self.stopped || self.dirs[s].ended {
            return;
        }
        match chunk {
            Chunk::Data(data) => self.feed(s, time, data, out),
            Chunk::Gap(0) => {}
            Chunk::Gap(len) => {
                if let Rx::Preface(_) = self.dirs[s].rx {
                    self.not_preface(s, time, 0, out);
                }
                self.gap(s, time, len, out)
            }
        }
    }

    fn end(&mut self, from: Side, time: f64, how: End, out: &mut dyn FnMut(Out<'_, Self::Event>)) {
        self.last_time = self.last_time.max(time);
        self.end_dir(idx(from), time, how, out);
        if self.dirs[0].ended && self.dirs[1].ended {
            for id in self.streams.ids() {
                self.finish_stream(id, None, out);
            }
        }
    }
}
