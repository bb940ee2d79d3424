//! One direction's reassembled stream bytes (plus TCP gaps) -> `FrameEvent`s: headers, unmasked payload
//! chunks, frame ends, and the loss and recovery of frame boundaries.
//!
//! Memory is bounded whatever the input: a 14-byte header buffer, a 64 KiB unmasking scratch buffer, and
//! while hunting for boundaries a buffer of at most `HUNT_CAP` bytes. Payloads are streamed, never buffered.
//!
//! # Event order
//! - A frame is `Header`, then `Payload`/`PayloadGap` chunks (none for an empty payload), then `End`.
//!   Frames never interleave, and `Payload` chunks concatenate to exactly `payload_len` bytes minus gaps.
//! - `Invalid` comes only where a header was expected; the framer then hunts. Hunting ends with `Resynced`
//!   (followed by frames) or, in `finish()`, with `Unsynced`.
//! - `Truncated` comes only from `finish()`, closing an open frame (no `End` follows) or reporting a header
//!   cut short.
//!
//! # Hunting ("never invent": a doubtful resynchronisation is skipped, not reported)
//! Every offset is a candidate, oldest first. It locks when the headers from there form a chain of plausible
//! frames: known opcode; RSV 0, or RSV1 on the first frame of a data message; control frames with FIN set
//! and at most 125 bytes; minimal lengths; one mask bit for the whole chain (and the expected one, if set);
//! continuation frames only inside a fragmented message, and never empty unless final (`00 00` is what zero
//! runs look like); text that is valid UTF-8 (zero bytes earn no evidence) and close frames with a code in
//! 1000..=4999 (first 64 payload bytes checked); each length landing exactly on the next header.
//! The chain must be long enough:
//! - at the hunting origin (stream start under `new_hunting`, or the first byte after a gap): >= 3 frames;
//!   or >= 2 frames ending exactly at the end of a push; or in `finish()`/`gap()`, >= 1 frame ending exactly
//!   at the end of the data (a chain ending inside a fragmented message does not count as ending there:
//!   length-prefixed protocols end their records at the end of a push too);
//! - anywhere else, the same frame counts and also `LOCK_BITS` of evidence (see `Walk`). If the chain's
//!   first frame is weak evidence on its own and the rest of the chain qualifies without it, it is skipped:
//!   it may be garbage whose length happens to land on a real frame.
//!
//! Guarantee on random input: a lock needs a chain that uniformly random bytes pass with probability at
//! most about 2^-11 at the origin (once per hunt) and 2^-30 at any other offset. Measured: 0 of 20,000
//! random inputs of up to 4 KiB locked (0.9% with the frame-count rules alone); 0 of 20 random MiB.
//! Work is bounded per byte (at most `MAX_CHAIN` headers and `CHECK_BYTES` per frame per evaluation, at
//! most `MAX_PENDING` undecided candidates), and so is memory (`HUNT_CAP`).

use std::collections::VecDeque;
use std::fmt;

use crate::ws::frame::{FrameHeader, HeaderError, HeaderParse, MAX_HEADER_LEN, parse_frame_header};
use crate::ws::mask::apply_mask;
use crate::ws::opcode::OpCode;

/// Masked payload is unmasked in pieces of at most this many bytes: bounds the one scratch buffer.
const SCRATCH_CHUNK: usize = 64 * 1024;

/// Scratch capacity kept between frames; a larger one (after a large masked payload) is freed.
const KEPT_SCRATCH: usize = 4096;

/// Most bytes the hunting buffer may allocate: hunting must not grow with garbage.
pub const HUNT_CAP: usize = 256 * 1024;

/// Longest stretch, from a candidate offset, a chain may need before it is decided (3/4 of `HUNT_CAP`, so
/// compaction always frees at least a quarter of the buffer). Longer chains are rejected: they cannot be
/// verified within the cap.
const HUNT_WINDOW: usize = HUNT_CAP / 4 * 3;

/// Undecided candidates remembered at once; beyond it the oldest is given up (bounded work and memory).
const MAX_PENDING: usize = 64;

/// Most frames followed from one candidate (evidence passes `LOCK_BITS` well before).
const MAX_CHAIN: usize = 12;

/// Longest control-frame payload the synced parser follows (RFC 6455 §5.5 allows 125): what a 16-bit length
/// can say. Beyond it the header is taken as a sign of misalignment.
const MAX_FOLLOWED_CONTROL_LEN: u64 = 0xFFFF;

/// Payload bytes inspected per chained frame (UTF-8 of text, close code): bounds the work per offset.
const CHECK_BYTES: usize = 64;

/// Evidence (in bits: -log2 of the chance that random bytes pass the same checks) a chain needs to lock at an
/// offset that is not the hunting origin. Offsets are tried one by one, so this must beat the number tried.
const LOCK_BITS: f32 = 30.0;

/// Evidence needed at the hunting origin, a natural boundary tried once (any chain meeting the frame-count
/// rules reaches it).
const ORIGIN_LOCK_BITS: f32 = 11.0;

/// Evidence a chain's first frame needs on its own to be kept when the rest of the chain would lock
/// without it.
const FIRST_FRAME_BITS: f32 = 12.0;

/// One event of the frame stream. Payload slices borrow either the caller's input or the framer's scratch
/// buffer, so they are only valid during the callback.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameEvent<'a> {
    /// A frame starts (header fully parsed). Headers that break RFC rules but still describe a frame are
    /// delivered as is; judging them is the caller's job.
    Header(FrameHeader),
    /// Next chunk of that frame's payload, already unmasked; large payloads arrive in several chunks.
    Payload(&'a [u8]),
    /// Bytes of the current payload lost in a TCP gap (the frame stays aligned; the unmask phase advances).
    PayloadGap {
        /// Payload bytes lost.
        len: u64,
    },
    /// The current frame's payload is complete.
    End,
    /// A header that cannot be a frame; the framer now hunts for frame boundaries.
    Invalid {
        /// What is wrong with the header.
        error: HeaderError,
        /// Stream offset of the header's first byte.
        at: u64,
    },
    /// Frame boundaries found again; `skipped` bytes were discarded without being reported as frames (bytes
    /// lost in gaps are not counted: the caller reported those).
    Resynced {
        /// Stream bytes received and discarded since boundaries were lost.
        skipped: u64,
    },
    /// `finish()`: the stream ended inside a frame (header or payload); `missing` payload bytes never came
    /// (for a cut-short header: its payload length if the header got that far, else 0).
    Truncated {
        /// Payload bytes that never arrived.
        missing: u64,
    },
    /// `finish()`: the stream ended while hunting; `skipped` bytes received since boundaries were lost were
    /// never aligned to frames.
    Unsynced {
        /// Stream bytes received and discarded since boundaries were lost.
        skipped: u64,
    },
}

/// Where the synced framer stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Expecting (the rest of) a header; partial bytes are in `Framer::hdr`.
    Header,
    /// Inside a payload.
    Payload {
        /// Payload bytes still to come (never 0).
        remaining: u64,
        /// The masking key, if masked.
        mask: Option<[u8; 4]>,
        /// Key index of the next payload byte.
        phase: usize,
    },
}

/// A candidate offset that could not be decided yet.
#[derive(Clone, Copy, Debug)]
struct PendingCandidate {
    /// Stream offset of the candidate.
    at: u64,
    /// Stream offset the data must reach before re-evaluating it changes anything.
    decide_at: u64,
}

/// The hunting state: buffered bytes from the oldest undecided candidate on.
#[derive(Default)]
struct Hunt {
    buf: Vec<u8>,
    /// Index in `buf` of the oldest byte still needed (`front`).
    start: usize,
    /// Stream offset of `buf[start]`.
    front: u64,
    /// Candidates below this stream offset were evaluated (rejected, or listed in `pending`).
    scanned: u64,
    pending: VecDeque<PendingCandidate>,
    /// Stream offset of the hunting origin (a natural boundary) while it is still a candidate.
    origin: Option<u64>,
}

impl Hunt {
    fn view(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    fn end(&self) -> u64 {
        self.front + self.view().len() as u64
    }

    /// Forgets everything before stream offset `to`; returns how many bytes that discarded.
    fn drop_to(&mut self, to: u64) -> u64 {
        let n = to.saturating_sub(self.front).min(self.view().len() as u64);
        self.start += n as usize;
        self.front += n;
        self.scanned = self.scanned.max(self.front);
        if self.origin.is_some_and(|o| o < self.front) {
            self.origin = None;
        }
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
        n
    }

    /// Appends stream bytes; the allocation never exceeds `HUNT_CAP` (callers keep `buf.len() + data.len()`
    /// within it).
    fn append(&mut self, data: &[u8]) {
        let need = self.buf.len() + data.len();
        if need > self.buf.capacity() {
            let target = need
                .max(self.buf.capacity() * 2)
                .clamp(4096, HUNT_CAP.max(need));
            self.buf.reserve_exact(target - self.buf.len());
        }
        self.buf.extend_from_slice(data);
    }

    fn compact(&mut self) {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
    }

    /// Starts over at stream offset `at` with no data.
    fn restart(&mut self, at: u64, origin: bool) {
        self.buf.clear();
        self.start = 0;
        self.front = at;
        self.scanned = at;
        self.pending.clear();
        self.origin = origin.then_some(at);
    }
}

/// Streaming frame splitter for one direction of one connection.
pub struct Framer {
    hunting: bool,
    state: State,
    hdr: [u8; MAX_HEADER_LEN],
    hdr_len: usize,
    /// Stream offset of the header being parsed.
    hdr_start: u64,
    /// Stream offset of the next byte for the synced parser.
    cursor: u64,
    /// Bytes pushed plus bytes lost in gaps.
    total: u64,
    scratch: Vec<u8>,
    hunt: Hunt,
    /// Bytes discarded since boundaries were lost.
    skipped: u64,
    expect_masked: Option<bool>,
}

impl fmt::Debug for Framer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Framer")
            .field("hunting", &self.hunting)
            .field("state", &self.state)
            .field("hdr_len", &self.hdr_len)
            .field("stream_offset", &self.total)
            .field("hunt_buffered", &self.hunt.view().len())
            .field("skipped", &self.skipped)
            .field("expect_masked", &self.expect_masked)
            .finish_non_exhaustive()
    }
}

/// What the candidate evaluation concluded.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Verdict {
    /// Cannot be a frame boundary (or cannot be verified within the cap).
    Reject,
    /// Not decidable until the data reaches this stream offset.
    Pending(u64),
    /// Lock at this stream offset.
    Lock(u64),
}

/// How the chain walk stopped.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Outcome {
    /// Frame count and evidence are enough to lock.
    Qualified,
    /// An implausible header where the chain needed one.
    Broken,
    /// Needs the data up to this view index.
    NeedMore(usize),
    /// The last frame ends exactly at the end of the data.
    EndsAtEnd,
    /// Would need more than `HUNT_WINDOW` bytes from the candidate.
    TooFar,
}

/// Result of following the chain of frames from one candidate offset.
///
/// Evidence is counted in bits, -log2 of the chance that random bytes pass the same checks: the first
/// byte being one of the plausible values (about 4.5 bits; 8 when it repeats the previous frame's first
/// byte, as real streams do), the mask bit matching (1 bit), a close code in 1000..=4999 (4 bits) or an
/// empty close (7 bits), valid UTF-8 text (half a bit per byte checked), and, for a chain that ends exactly
/// at the end of the data, the last length field having exactly that value (7 bits, or 23 for the 16-bit
/// form).
#[derive(Clone, Copy, Debug)]
struct Walk {
    frames: usize,
    bits: f32,
    first_bits: f32,
    second_start: Option<usize>,
    end_bits: f32,
    /// The chain's last frame leaves a fragmented data message open.
    ends_open: bool,
    outcome: Outcome,
}

/// Running state of a chain walk.
struct Chain {
    /// A fragmented data message is open (a continuation must follow before a new data frame).
    open: bool,
    prev_b0: Option<u8>,
    mask_bit: Option<bool>,
}

/// Is `b0` (FIN, RSV, opcode) plausible as the next frame's first byte?
fn b0_plausible(b0: u8, open: bool) -> bool {
    let fin = b0 & 0x80 != 0;
    let rsv = (b0 >> 4) & 0b111;
    match b0 & 0x0F {
        // RFC 7692 §6: "the "Per-Message Compressed" bit ... RSV1 ... set on the first frame of a message";
        // any other RSV bit needs an extension nobody uses: "MUST be 0 unless an extension is negotiated".
        // RFC 6455 §5.4: a new data message cannot start while a fragmented one is open.
        0x1 | 0x2 => !open && (rsv == 0 || rsv == 0b100),
        // RFC 6455 §5.4: continuation frames only inside a fragmented message; RFC 7692 §6.1: RSV1 is not
        // set on them.
        0x0 => open && rsv == 0,
        // RFC 6455 §5.5: "All control frames ... MUST NOT be fragmented."
        0x8..=0xA => fin && rsv == 0,
        // Reserved opcodes: "If an unknown opcode is received, the receiving endpoint MUST _Fail the
        // WebSocket Connection_", so a live stream does not carry them.
        _ => false,
    }
}

/// `b0_plausible(b, false)` for every byte: which first bytes can start a chain.
static CHAIN_START: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        let fin = b & 0x80 != 0;
        let rsv = (b >> 4) & 0b111;
        t[b] = match b & 0x0F {
            0x1 | 0x2 => rsv == 0 || rsv == 0b100,
            0x8..=0xA => fin && rsv == 0,
            _ => false,
        };
        b += 1;
    }
    t
};

/// Bits of evidence from the first byte and the mask bit of a plausible header.
fn header_bits(b0: u8, chain: &Chain) -> f32 {
    // log2(256 / 11) with no message open (text/binary x FIN x RSV1, close, ping, pong);
    // log2(256 / 5) inside a fragmented message (continuation x FIN, close, ping, pong).
    // A repeated first byte is strong evidence (real streams repeat `0x81`), except a zero byte: runs of
    // zeros are the commonest thing in other protocols' binary fields.
    let base = if chain.prev_b0 == Some(b0) && b0 != 0 {
        8.0
    } else if chain.open {
        5.68
    } else {
        4.54
    };
    base + if chain.mask_bit.is_some() { 1.0 } else { 0.0 }
}

/// UTF-8 check of (part of) a text payload: `Some(bits)` when valid so far, `None` when invalid. Zero bytes
/// are valid UTF-8 but earn nothing: binary records full of zeros pass as "text" otherwise.
fn text_bits(bytes: &[u8], whole_message: bool) -> Option<f32> {
    let valid = match simdutf8::compat::from_utf8(bytes) {
        Ok(_) => bytes.len(),
        Err(e) if e.error_len().is_none() && !whole_message => e.valid_up_to(),
        Err(_) => return None,
    };
    let zeros = bytes[..valid].iter().filter(|&&b| b == 0).count();
    Some((valid - zeros) as f32 / 2.0)
}

/// Checks the inspected start of a payload; `None` means implausible.
fn payload_bits(h: &FrameHeader, seen: &[u8]) -> Option<f32> {
    let mut buf = [0u8; CHECK_BYTES];
    let data = &mut buf[..seen.len()];
    data.copy_from_slice(seen);
    if let Some(key) = h.mask {
        apply_mask(data, key, 0);
    }
    let complete = seen.len() as u64 == h.payload_len;
    match h.opcode {
        OpCode::Text if !h.rsv1() => text_bits(data, complete && h.fin),
        OpCode::Close => match h.payload_len {
            // P(random length byte = 0) = 1/128.
            0 => Some(7.0),
            // RFC 6455 §5.5.1: "If there is a body, the first two bytes of the body MUST be a 2-byte unsigned
            // integer ... representing a status code".
            1 => None,
            _ if data.len() < 2 => Some(0.0),
            _ => {
                let code = u16::from_be_bytes([data[0], data[1]]);
                if !(1000..=4999).contains(&code) {
                    return None;
                }
                // RFC 6455 §5.5.1: the reason "MUST be" UTF-8.
                Some(4.0 + text_bits(&data[2..], complete)?)
            }
        },
        _ => Some(0.0),
    }
}

/// Length-field evidence for a chain that ends exactly at the end of the data.
fn end_bits(h: &FrameHeader) -> f32 {
    let mask = if h.is_masked() { 4 } else { 0 };
    match usize::from(h.header_len) - mask {
        2 => 7.0,
        4 => 23.0,
        _ => 71.0,
    }
}

/// Follows the chain of frames starting at `view[start..]`.
fn walk(view: &[u8], start: usize, expect_masked: Option<bool>, finishing: bool) -> Walk {
    let mut w = Walk {
        frames: 0,
        bits: 0.0,
        first_bits: 0.0,
        second_start: None,
        end_bits: 0.0,
        ends_open: false,
        outcome: Outcome::Broken,
    };
    let mut chain = Chain {
        open: false,
        prev_b0: None,
        mask_bit: expect_masked,
    };
    let mut pos = start;
    loop {
        if pos == view.len() && w.frames > 0 {
            w.outcome = Outcome::EndsAtEnd;
            return w;
        }
        if pos + 2 - start > HUNT_WINDOW {
            w.outcome = Outcome::TooFar;
            return w;
        }
        let Some(&b0) = view.get(pos) else {
            w.outcome = Outcome::NeedMore(pos + 2);
            return w;
        };
        if !b0_plausible(b0, chain.open) {
            w.outcome = Outcome::Broken;
            return w;
        }
        let h = match parse_frame_header(&view[pos..]) {
            HeaderParse::Complete(h) => h,
            HeaderParse::Incomplete { needed } => {
                w.outcome = Outcome::NeedMore(view.len() + needed);
                return w;
            }
            HeaderParse::Invalid(_) => return w,
        };
        // RFC 6455 §5.2: "the minimal number of bytes MUST be used to encode the length".
        // RFC 6455 §5.5: "All control frames MUST have a payload length of 125 bytes or less".
        // RFC 6455 §5.1: every frame of one direction is masked (client) or not (server).
        // An empty non-final continuation carries nothing and no sender needs one, but it is what runs of
        // zero bytes look like (`00 00`): zero-filled fields of other protocols (TLS, SMB, TDS, Diameter)
        // otherwise chain up as "frames" whose repeated first byte counts as strong evidence.
        if !h.minimal_length
            || (h.opcode.is_control() && h.payload_len > 125)
            || chain.mask_bit.is_some_and(|m| m != h.is_masked())
            || (h.opcode == OpCode::Continuation && !h.fin && h.payload_len == 0)
        {
            return w;
        }
        let payload_start = pos + usize::from(h.header_len);
        let check_len = h.payload_len.min(CHECK_BYTES as u64) as usize;
        let check_end = payload_start + check_len;
        if check_end > view.len() && !finishing {
            w.outcome = Outcome::NeedMore(check_end);
            return w;
        }
        let seen = &view[payload_start..check_end.min(view.len())];
        let Some(pbits) = payload_bits(&h, seen) else {
            return w;
        };
        let bits = header_bits(b0, &chain) + pbits;
        if w.frames == 0 {
            w.first_bits = bits;
        } else if w.frames == 1 {
            w.second_start = Some(pos);
        }
        w.frames += 1;
        w.bits += bits;
        w.end_bits = end_bits(&h);
        chain.prev_b0 = Some(b0);
        chain.mask_bit = Some(h.is_masked());
        match h.opcode {
            OpCode::Text | OpCode::Binary | OpCode::Continuation => chain.open = !h.fin,
            _ => {}
        }
        w.ends_open = chain.open;
        if w.frames >= 3 && w.bits >= LOCK_BITS {
            w.outcome = Outcome::Qualified;
            return w;
        }
        if w.frames >= MAX_CHAIN {
            return w;
        }
        let next = (payload_start as u64).saturating_add(h.payload_len);
        if next.saturating_add(2) - start as u64 > HUNT_WINDOW as u64 {
            w.outcome = Outcome::TooFar;
            return w;
        }
        pos = next as usize;
    }
}

/// Turns a walk into a verdict for the candidate at view index `start`.
fn judge(
    w: &Walk,
    view_len: usize,
    at_origin: bool,
    push_end: bool,
    finishing: bool,
) -> VerdictRel {
    let need = if at_origin {
        ORIGIN_LOCK_BITS
    } else {
        LOCK_BITS
    };
    match w.outcome {
        Outcome::Qualified => VerdictRel::Lock,
        _ if w.frames >= 3 && w.bits >= need => VerdictRel::Lock,
        // A chain that stops inside a fragmented message proves nothing by ending where the data does:
        // length-prefixed protocols (Modbus/TCP: `02 02 00 00 | 00 06 ...`) end their records there too.
        Outcome::EndsAtEnd if w.ends_open => {
            if finishing {
                VerdictRel::Reject
            } else {
                VerdictRel::Pending(view_len + 2)
            }
        }
        Outcome::EndsAtEnd => {
            let bits = w.bits + w.end_bits;
            let two_at_push_end = (push_end || finishing) && w.frames >= 2 && bits >= need;
            let one_at_origin = finishing && at_origin && w.frames >= 1 && bits >= ORIGIN_LOCK_BITS;
            if two_at_push_end || one_at_origin {
                VerdictRel::Lock
            } else if finishing {
                VerdictRel::Reject
            } else {
                // The next header's first two bytes decide.
                VerdictRel::Pending(view_len + 2)
            }
        }
        Outcome::NeedMore(_) if finishing => VerdictRel::Reject,
        Outcome::NeedMore(need_end) => VerdictRel::Pending(need_end),
        Outcome::Broken | Outcome::TooFar => VerdictRel::Reject,
    }
}

/// `Verdict` with view-relative positions.
#[derive(Clone, Copy, Debug, PartialEq)]
enum VerdictRel {
    Reject,
    Pending(usize),
    Lock,
}

/// Evaluates the candidate at view index `start`; `Lock(i)` may move past a doubtful first frame.
fn evaluate(
    view: &[u8],
    start: usize,
    expect_masked: Option<bool>,
    at_origin: bool,
    push_end: bool,
    finishing: bool,
) -> (VerdictRel, usize) {
    let w = walk(view, start, expect_masked, finishing);
    let v = judge(&w, view.len(), at_origin, push_end, finishing);
    if v != VerdictRel::Lock || at_origin || w.first_bits >= FIRST_FRAME_BITS {
        return (v, start);
    }
    let Some(second) = w.second_start else {
        return (v, start);
    };
    // The first frame is weak evidence: if the rest of the chain locks on its own, the first frame may be
    // garbage whose length happens to land on a real frame. Skip it.
    let w2 = walk(view, second, expect_masked, finishing);
    match judge(&w2, view.len(), false, push_end, finishing) {
        VerdictRel::Lock => (VerdictRel::Lock, second),
        VerdictRel::Pending(p) => (VerdictRel::Pending(p), start),
        VerdictRel::Reject => (VerdictRel::Lock, start),
    }
}

impl Default for Framer {
    fn default() -> Self {
        Self::new_synced()
    }
}

impl Framer {
    fn new(hunting: bool) -> Self {
        let mut hunt = Hunt::default();
        hunt.restart(0, true);
        Self {
            hunting,
            state: State::Header,
            hdr: [0; MAX_HEADER_LEN],
            hdr_len: 0,
            hdr_start: 0,
            cursor: 0,
            total: 0,
            scratch: Vec::new(),
            hunt,
            skipped: 0,
            expect_masked: None,
        }
    }

    /// A framer whose stream starts at a frame boundary (the bytes right after the HTTP 101).
    pub fn new_synced() -> Self {
        Self::new(false)
    }

    /// A framer for a stream picked up mid-way (no handshake seen): boundaries are unknown and must be found.
    pub fn new_hunting() -> Self {
        Self::new(true)
    }

    /// Masking expected in this direction when known (Some(true) client->server, Some(false)
    /// server->client); hunting then rejects candidates with the other mask bit. Violations in synced mode
    /// are still delivered (the caller reports them).
    pub fn set_expect_masked(&mut self, expect: Option<bool>) {
        self.expect_masked = expect;
    }

    /// Releases the unmasking scratch buffer, which is only used inside `push`; for idle streams.
    pub fn release_buffers(&mut self) {
        self.scratch = Vec::new();
    }

    /// True while frame boundaries are unknown.
    pub fn is_hunting(&self) -> bool {
        self.hunting
    }

    /// Bytes consumed so far, including bytes lost in gaps.
    pub fn stream_offset(&self) -> u64 {
        self.total
    }

    /// Bytes the framer is holding (hunting buffer plus a partial header): at most `HUNT_CAP` + 14.
    pub fn buffered(&self) -> usize {
        self.hunt.view().len() + self.hdr_len
    }

    /// Feeds the next bytes of the stream; events go to `out` as they are found.
    pub fn push<F: FnMut(FrameEvent<'_>)>(&mut self, data: &[u8], out: &mut F) {
        self.total += data.len() as u64;
        let mut input = data;
        loop {
            if !self.hunting {
                let n = self.synced(input, out);
                input = &input[n..];
                if !self.hunting {
                    return;
                }
            }
            if input.is_empty() {
                return;
            }
            if self.hunt.view().len() >= HUNT_WINDOW {
                // Safety net: the oldest candidate cannot be decided within the window; give it up.
                if self
                    .hunt
                    .pending
                    .front()
                    .is_some_and(|p| p.at == self.hunt.front)
                {
                    self.hunt.pending.pop_front();
                }
                let keep = self
                    .hunt
                    .pending
                    .front()
                    .map_or(self.hunt.scanned, |p| p.at);
                self.skipped += self.hunt.drop_to(keep.max(self.hunt.front + 1));
            }
            if self.hunt.buf.len() >= HUNT_CAP {
                self.hunt.compact();
            }
            let room = (HUNT_WINDOW - self.hunt.view().len()).min(HUNT_CAP - self.hunt.buf.len());
            let n = room.min(input.len());
            self.hunt.append(&input[..n]);
            input = &input[n..];
            self.scan_and_lock(input.is_empty(), false, out);
        }
    }

    /// `len` bytes of the stream are lost. Inside the current payload: PayloadGap and stay aligned.
    /// Otherwise start hunting.
    pub fn gap<F: FnMut(FrameEvent<'_>)>(&mut self, len: u64, out: &mut F) {
        if len == 0 {
            return;
        }
        if self.hunting {
            // The data before the gap ends here: decide what it can tell.
            self.scan_and_lock(true, true, out);
        }
        self.total += len;
        if self.hunting {
            self.skipped += self.hunt.view().len() as u64;
            self.hunt.restart(self.total, true);
            return;
        }
        match self.state {
            State::Payload {
                remaining,
                mask,
                phase,
            } if len < remaining => {
                out(FrameEvent::PayloadGap { len });
                let phase = (phase + (len % 4) as usize) % 4;
                self.state = State::Payload {
                    remaining: remaining - len,
                    mask,
                    phase,
                };
                self.cursor += len;
            }
            State::Payload { remaining, .. } => {
                out(FrameEvent::PayloadGap { len: remaining });
                out(FrameEvent::End);
                self.state = State::Header;
                self.cursor += len;
                if len > remaining {
                    self.start_hunting_after_gap();
                }
            }
            State::Header => {
                // Where the next header starts is unknown: a partial header is lost with the gap.
                self.skipped += self.hdr_len as u64;
                self.hdr_len = 0;
                self.cursor += len;
                self.start_hunting_after_gap();
            }
        }
    }

    /// The stream ended: reports an open frame as `Truncated`, and decides what hunting can still tell
    /// (`Resynced` + frames, then `Unsynced` for what stays unaligned). The framer is then empty and hunting.
    pub fn finish<F: FnMut(FrameEvent<'_>)>(&mut self, out: &mut F) {
        if self.hunting {
            self.scan_and_lock(true, true, out);
        }
        if self.hunting {
            let skipped = self.skipped + self.hunt.view().len() as u64;
            if skipped > 0 {
                out(FrameEvent::Unsynced { skipped });
            }
        } else {
            match self.state {
                State::Payload { remaining, .. } => {
                    out(FrameEvent::Truncated { missing: remaining })
                }
                State::Header if self.hdr_len > 0 => out(FrameEvent::Truncated {
                    missing: partial_payload_len(&self.hdr[..self.hdr_len]),
                }),
                State::Header => {}
            }
        }
        self.hunting = true;
        self.state = State::Header;
        self.hdr_len = 0;
        self.skipped = 0;
        self.hunt.restart(self.total, false);
        self.cursor = self.total;
    }

    fn start_hunting_after_gap(&mut self) {
        self.hunting = true;
        self.hunt.restart(self.cursor, true);
    }

    /// Switches to hunting at a header that cannot be a frame; `from_hdr_buf`: its bytes were already
    /// consumed into the header buffer and go first into the hunting buffer.
    fn start_hunting_at_header(&mut self, from_hdr_buf: bool) {
        self.hunting = true;
        self.hunt.restart(self.hdr_start, false);
        if from_hdr_buf {
            let Self {
                hunt, hdr, hdr_len, ..
            } = self;
            hunt.append(&hdr[..*hdr_len]);
        }
        self.hdr_len = 0;
        self.state = State::Header;
    }

    /// Parses frames from `input` while synced. Returns the bytes consumed: all of `input`, or (when a bad
    /// header switched to hunting) up to where the hunting buffer must continue.
    fn synced<F: FnMut(FrameEvent<'_>)>(&mut self, input: &[u8], out: &mut F) -> usize {
        let mut pos = 0;
        while pos < input.len() {
            match self.state {
                State::Payload {
                    remaining,
                    mask,
                    phase,
                } => {
                    let n = remaining.min((input.len() - pos) as u64) as usize;
                    let chunk = &input[pos..pos + n];
                    match mask {
                        // Unmasked payload: the caller's bytes, zero copy.
                        None => out(FrameEvent::Payload(chunk)),
                        Some(key) => {
                            let mut ph = phase;
                            if self.scratch.capacity() < chunk.len().min(SCRATCH_CHUNK) {
                                self.scratch.reserve_exact(chunk.len().min(SCRATCH_CHUNK));
                            }
                            for piece in chunk.chunks(SCRATCH_CHUNK) {
                                self.scratch.clear();
                                self.scratch.extend_from_slice(piece);
                                apply_mask(&mut self.scratch, key, ph);
                                ph = (ph + piece.len()) % 4;
                                out(FrameEvent::Payload(&self.scratch));
                            }
                        }
                    }
                    pos += n;
                    self.cursor += n as u64;
                    let remaining = remaining - n as u64;
                    if remaining == 0 {
                        self.state = State::Header;
                        if self.scratch.capacity() > KEPT_SCRATCH {
                            // Do not pin 64 KiB per idle direction after one large masked frame.
                            self.scratch = Vec::new();
                        }
                        out(FrameEvent::End);
                    } else {
                        self.state = State::Payload {
                            remaining,
                            mask,
                            phase: (phase + n) % 4,
                        };
                    }
                }
                State::Header if self.hdr_len == 0 => {
                    self.hdr_start = self.cursor;
                    match parse_frame_header(&input[pos..]) {
                        HeaderParse::Complete(h) => {
                            let hl = usize::from(h.header_len);
                            if !self.start_frame(h, out) {
                                self.start_hunting_at_header(false);
                                return pos;
                            }
                            pos += hl;
                            self.cursor += hl as u64;
                        }
                        HeaderParse::Incomplete { .. } => {
                            let rest = &input[pos..];
                            self.hdr[..rest.len()].copy_from_slice(rest);
                            self.hdr_len = rest.len();
                            self.cursor += rest.len() as u64;
                            pos = input.len();
                        }
                        HeaderParse::Invalid(error) => {
                            out(FrameEvent::Invalid {
                                error,
                                at: self.hdr_start,
                            });
                            self.start_hunting_at_header(false);
                            return pos;
                        }
                    }
                }
                State::Header => loop {
                    match parse_frame_header(&self.hdr[..self.hdr_len]) {
                        HeaderParse::Incomplete { needed } => {
                            if pos == input.len() {
                                break;
                            }
                            // Copy only what the header still needs: payload bytes stay in `input`.
                            let n = needed
                                .min(input.len() - pos)
                                .min(MAX_HEADER_LEN - self.hdr_len);
                            self.hdr[self.hdr_len..self.hdr_len + n]
                                .copy_from_slice(&input[pos..pos + n]);
                            self.hdr_len += n;
                            pos += n;
                            self.cursor += n as u64;
                        }
                        HeaderParse::Complete(h) => {
                            if !self.start_frame(h, out) {
                                self.start_hunting_at_header(true);
                                return pos;
                            }
                            self.hdr_len = 0;
                            break;
                        }
                        HeaderParse::Invalid(error) => {
                            out(FrameEvent::Invalid {
                                error,
                                at: self.hdr_start,
                            });
                            self.start_hunting_at_header(true);
                            return pos;
                        }
                    }
                },
            }
        }
        pos
    }

    /// Emits a parsed header and enters its payload; false (after emitting `Invalid`) for a header the
    /// framer refuses to follow.
    fn start_frame<F: FnMut(FrameEvent<'_>)>(&mut self, h: FrameHeader, out: &mut F) -> bool {
        // RFC 6455 §5.5: "All control frames MUST have a payload length of 125 bytes or less". A length a
        // 16-bit field can hold may be a buggy peer that really sends the bytes (Zeek's oversized-close
        // trace: a Close of 258 bytes in the 64-bit form, which tshark and Zeek both decode); it is delivered
        // and the caller reports the violation. A longer one means we are misaligned, and following it could
        // swallow the rest of the connection as "payload".
        if h.opcode.is_control() && h.payload_len > MAX_FOLLOWED_CONTROL_LEN {
            out(FrameEvent::Invalid {
                error: HeaderError::ControlFrameTooLong,
                at: self.hdr_start,
            });
            return false;
        }
        out(FrameEvent::Header(h));
        if h.payload_len == 0 {
            out(FrameEvent::End);
        } else {
            self.state = State::Payload {
                remaining: h.payload_len,
                mask: h.mask,
                phase: 0,
            };
        }
        true
    }

    /// Looks for a lock in the hunting buffer; on a lock, replays the buffered bytes as frames. `push_end`:
    /// the buffered data ends where the caller's push ended; `finishing`: no more data will follow it.
    fn scan_and_lock<F: FnMut(FrameEvent<'_>)>(
        &mut self,
        push_end: bool,
        finishing: bool,
        out: &mut F,
    ) {
        while self.hunting {
            let Some(at) = self.scan(push_end, finishing) else {
                return;
            };
            self.skipped += self.hunt.drop_to(at);
            out(FrameEvent::Resynced {
                skipped: self.skipped,
            });
            self.skipped = 0;
            self.hunting = false;
            self.state = State::Header;
            self.hdr_len = 0;
            self.cursor = at;
            let mut buf = std::mem::take(&mut self.hunt.buf);
            let start = self.hunt.start;
            self.hunt.start = 0;
            let n = self.synced(&buf[start..], out);
            if self.hunting {
                // A bad header further on: the rest goes back into the (restarted) hunting buffer.
                self.hunt.append(&buf[start + n..]);
            } else {
                buf.clear();
                if buf.capacity() > SCRATCH_CHUNK {
                    buf = Vec::new();
                }
                self.hunt.buf = buf;
                self.hunt.restart(self.cursor, false);
            }
        }
    }

    /// Evaluates candidates (pending ones that can now be decided, then new offsets) and drops rejected
    /// bytes. Returns the stream offset to lock at.
    fn scan(&mut self, push_end: bool, finishing: bool) -> Option<u64> {
        let expect = self.expect_masked;
        let end = self.hunt.end();
        let mut i = 0;
        while i < self.hunt.pending.len() {
            let p = self.hunt.pending[i];
            if !finishing && p.decide_at > end {
                i += 1;
                continue;
            }
            match self.judge_at(p.at, expect, push_end, finishing) {
                Verdict::Lock(at) => return Some(at),
                Verdict::Pending(d) => {
                    self.hunt.pending[i].decide_at = d;
                    i += 1;
                }
                Verdict::Reject => {
                    self.hunt.pending.remove(i);
                }
            }
        }
        while self.hunt.scanned < end {
            // Fast path: most offsets of garbage fail on their first byte; skip to the next that does not.
            let from = (self.hunt.scanned - self.hunt.front) as usize;
            let Some(skip) = self.hunt.view()[from..]
                .iter()
                .position(|&b| CHAIN_START[usize::from(b)])
            else {
                self.hunt.scanned = end;
                break;
            };
            let at = self.hunt.scanned + skip as u64;
            self.hunt.scanned = at + 1;
            match self.judge_at(at, expect, push_end, finishing) {
                Verdict::Lock(at) => return Some(at),
                Verdict::Pending(decide_at) => {
                    if self.hunt.pending.len() >= MAX_PENDING {
                        self.hunt.pending.pop_front();
                    }
                    self.hunt
                        .pending
                        .push_back(PendingCandidate { at, decide_at });
                }
                Verdict::Reject => {}
            }
        }
        let keep = self
            .hunt
            .pending
            .front()
            .map_or(self.hunt.scanned, |p| p.at);
        self.skipped += self.hunt.drop_to(keep);
        None
    }

    fn judge_at(&self, at: u64, expect: Option<bool>, push_end: bool, finishing: bool) -> Verdict {
        let view = self.hunt.view();
        let rel = (at - self.hunt.front) as usize;
        let at_origin = self.hunt.origin == Some(at);
        match evaluate(view, rel, expect, at_origin, push_end, finishing) {
            (VerdictRel::Reject, _) => Verdict::Reject,
            (VerdictRel::Pending(p), _) => Verdict::Pending(self.hunt.front + p as u64),
            (VerdictRel::Lock, i) => Verdict::Lock(self.hunt.front + i as u64),
        }
    }
}

/// Payload length announced by a cut-short header, if it got that far (0 otherwise).
fn partial_payload_len(hdr: &[u8]) -> u64 {
    let Some(&b1) = hdr.get(1) else {
        return 0;
    };
    let ext = &hdr[2..];
    match b1 & 0x7F {
        126 if ext.len() >= 2 => u64::from(u16::from_be_bytes([ext[0], ext[1]])),
        127 if ext.len() >= 8 => u64::from_be_bytes([
            ext[0], ext[1], ext[2], ext[3], ext[4], ext[5], ext[6], ext[7],
        ]),
        126 | 127 => 0,
        n => u64::from(n),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ws::frame::encode_frame;
    use proptest::prelude::*;
    use proptest::test_runner::{Config, RngSeed};
    use std::time::Instant;

    /// Owned copy of a `FrameEvent` for comparisons.
    #[derive(Clone, Debug, PartialEq, Eq)]
    enum Ev {
        Header(FrameHeader),
        Payload(Vec<u8>),
        PayloadGap(u64),
        End,
        Invalid(HeaderError, u64),
        Resynced(u64),
        Truncated(u64),
        Unsynced(u64),
    }

    fn own(e: FrameEvent<'_>) -> Ev {
        match e {
            FrameEvent::Header(h) => Ev::Header(h),
            FrameEvent::Payload(p) => Ev::Payload(p.to_vec()),
            FrameEvent::PayloadGap { len } => Ev::PayloadGap(len),
            FrameEvent::End => Ev::End,
            FrameEvent::Invalid { error, at } => Ev::Invalid(error, at),
            FrameEvent::Resynced { skipped } => Ev::Resynced(skipped),
            FrameEvent::Truncated { missing } => Ev::Truncated(missing),
            FrameEvent::Unsynced { skipped } => Ev::Unsynced(skipped),
        }
    }

    /// Joins consecutive payload chunks, so event lists can be compared across different push splits.
    fn normalize(evs: Vec<Ev>) -> Vec<Ev> {
        let mut out: Vec<Ev> = Vec::new();
        for e in evs {
            match (out.last_mut(), e) {
                (Some(Ev::Payload(acc)), Ev::Payload(p)) => acc.extend_from_slice(&p),
                (_, e) => out.push(e),
            }
        }
        out
    }

    /// Runs `pieces` (Ok = bytes, Err = gap length) through `f`, then `finish`.
    fn run(mut f: Framer, pieces: &[Result<&[u8], u64>]) -> Vec<Ev> {
        let mut evs = Vec::new();
        for p in pieces {
            match p {
                Ok(b) => f.push(b, &mut |e| evs.push(own(e))),
                Err(n) => f.gap(*n, &mut |e| evs.push(own(e))),
            }
            assert!(f.buffered() <= HUNT_CAP + MAX_HEADER_LEN);
        }
        f.finish(&mut |e| evs.push(own(e)));
        evs
    }

    fn synced(bytes: &[u8]) -> Vec<Ev> {
        normalize(run(Framer::new_synced(), &[Ok(bytes)]))
    }

    fn hdr(bytes: &[u8]) -> FrameHeader {
        match parse_frame_header(bytes) {
            HeaderParse::Complete(h) => h,
            other => panic!("{other:?}"),
        }
    }

    /// Deterministic xorshift64* generator for test data.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        fn bytes(&mut self, n: usize) -> Vec<u8> {
            (0..n).map(|_| self.next() as u8).collect()
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    #[test]
    fn rfc6455_5_7_examples() {
        // RFC 6455 §5.7: single-frame unmasked text.
        let wire = [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
        assert_eq!(
            synced(&wire),
            vec![
                Ev::Header(hdr(&wire)),
                Ev::Payload(b"Hello".to_vec()),
                Ev::End
            ]
        );
        // Single-frame masked text: the payload arrives unmasked.
        let wire = [
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ];
        assert_eq!(
            synced(&wire),
            vec![
                Ev::Header(hdr(&wire)),
                Ev::Payload(b"Hello".to_vec()),
                Ev::End
            ]
        );
        // Fragmented unmasked text "Hel" + "lo".
        let wire = [0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f];
        assert_eq!(
            synced(&wire),
            vec![
                Ev::Header(hdr(&wire[..5])),
                Ev::Payload(b"Hel".to_vec()),
                Ev::End,
                Ev::Header(hdr(&wire[5..])),
                Ev::Payload(b"lo".to_vec()),
                Ev::End
            ]
        );
        // Unmasked ping and masked pong.
        let ping = [0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
        let pong = [
            0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ];
        let both = [&ping[..], &pong[..]].concat();
        assert_eq!(
            synced(&both),
            vec![
                Ev::Header(hdr(&ping)),
                Ev::Payload(b"Hello".to_vec()),
                Ev::End,
                Ev::Header(hdr(&pong)),
                Ev::Payload(b"Hello".to_vec()),
                Ev::End
            ]
        );
        // 256 bytes binary, 16-bit length: 0x82 0x7E 0x0100.
        let body: Vec<u8> = (0..=255u8).collect();
        let wire = [&[0x82, 0x7E, 0x01, 0x00][..], &body].concat();
        assert_eq!(
            synced(&wire),
            vec![Ev::Header(hdr(&wire)), Ev::Payload(body.clone()), Ev::End]
        );
        // 64 KiB binary, 64-bit length: 0x82 0x7F 0x0000000000010000.
        let body: Vec<u8> = (0..65536u32).map(|i| (i % 251) as u8).collect();
        let wire = [&[0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0][..], &body].concat();
        let evs = synced(&wire);
        assert_eq!(
            evs,
            vec![Ev::Header(hdr(&wire)), Ev::Payload(body), Ev::End]
        );
        let Ev::Header(h) = evs[0] else {
            unreachable!()
        };
        assert_eq!((h.payload_len, h.header_len), (65536, 10));
    }

    /// Small frames of every kind, including rule-breaking ones that synced mode must still deliver.
    fn small_stream() -> Vec<u8> {
        let k = Some([0xA1, 0xB2, 0xC3, 0xD4]);
        let mut s = Vec::new();
        s.extend(encode_frame(true, 0, 1, None, b"Hello"));
        s.extend(encode_frame(
            true,
            0,
            1,
            k,
            "h\u{e9}llo \u{20ac}".as_bytes(),
        ));
        s.extend(encode_frame(false, 0b100, 1, k, b"Hel"));
        s.extend(encode_frame(true, 0, 9, k, b"ping!"));
        s.extend(encode_frame(true, 0, 0, k, b"lo"));
        s.extend(encode_frame(true, 0, 2, None, b""));
        s.extend(encode_frame(true, 0, 2, k, &[0x5A; 300]));
        s.extend(encode_frame(true, 0, 0xA, None, b""));
        // Non-minimal 16-bit length for 3 bytes, a reserved opcode, RSV2+RSV3.
        s.extend([0x82, 0x7E, 0x00, 0x03, 1, 2, 3]);
        s.extend(encode_frame(true, 0, 0x3, None, b"rsv"));
        s.extend(encode_frame(true, 0b011, 2, None, b"x"));
        s.extend(encode_frame(true, 0, 8, k, &[0x03, 0xE8, b'b', b'y', b'e']));
        s
    }

    #[test]
    fn synced_delivers_rule_breakers() {
        let evs = synced(&small_stream());
        let headers: Vec<FrameHeader> = evs
            .iter()
            .filter_map(|e| {
                if let Ev::Header(h) = e {
                    Some(*h)
                } else {
                    None
                }
            })
            .collect();
        assert_eq!(headers.len(), 12);
        assert!(!headers[8].minimal_length);
        assert_eq!(headers[9].opcode, OpCode::Reserved(3));
        assert_eq!(headers[10].rsv, 0b011);
        assert_eq!(evs.iter().filter(|e| **e == Ev::End).count(), 12);
        assert_eq!(
            evs[evs.len() - 2],
            Ev::Payload(vec![0x03, 0xE8, b'b', b'y', b'e'])
        );
    }

    #[test]
    fn split_at_every_offset_gives_identical_events() {
        let s = small_stream();
        let whole = synced(&s);
        // One byte at a time.
        let bytes: Vec<Result<&[u8], u64>> = s.chunks(1).map(Ok).collect();
        assert_eq!(normalize(run(Framer::new_synced(), &bytes)), whole);
        // Two pushes cut at every offset, and three pushes cut at every pair of offsets 7 apart.
        for i in 0..=s.len() {
            assert_eq!(
                normalize(run(Framer::new_synced(), &[Ok(&s[..i]), Ok(&s[i..])])),
                whole,
                "cut {i}"
            );
            let j = (i + 7).min(s.len());
            let three = [Ok(&s[..i]), Ok(&s[i..j]), Ok(&s[j..])];
            assert_eq!(
                normalize(run(Framer::new_synced(), &three)),
                whole,
                "cut {i} {j}"
            );
        }
    }

    #[test]
    fn big_payloads_stream_in_bounded_chunks() {
        let k = Some([1, 2, 3, 4]);
        let a: Vec<u8> = (0..200_000u32).map(|i| (i * 7) as u8).collect();
        let mut s = encode_frame(true, 0, 2, k, &a);
        s.extend(encode_frame(true, 0, 2, None, &a[..70_000]));
        s.extend(encode_frame(true, 0, 1, k, b"tail"));
        let whole = synced(&s);
        assert_eq!(whole.len(), 9);
        assert_eq!(whole[1], Ev::Payload(a.clone()));
        let mut rng = Rng(7);
        for _ in 0..20 {
            let mut pieces = Vec::new();
            let mut at = 0;
            while at < s.len() {
                let n = (1 + rng.below(5000) as usize).min(s.len() - at);
                pieces.push(Ok(&s[at..at + n]));
                at += n;
            }
            assert_eq!(normalize(run(Framer::new_synced(), &pieces)), whole);
        }
        // Chunks of a masked payload never exceed the scratch size; unmasked ones borrow the input.
        let mut f = Framer::new_synced();
        let (mut biggest, mut borrowed) = (0, 0);
        let range = s.as_ptr_range();
        f.push(&s, &mut |e| {
            if let FrameEvent::Payload(p) = e {
                if range.contains(&p.as_ptr()) {
                    borrowed += p.len();
                } else {
                    biggest = biggest.max(p.len());
                }
            }
        });
        assert!(biggest <= SCRATCH_CHUNK);
        assert_eq!(borrowed, 70_000);
    }

    #[test]
    fn unmasking_scratch_is_freed_after_a_large_frame() {
        let key = Some([1, 2, 3, 4]);
        let mut f = Framer::new_synced();
        let big = encode_frame(true, 0, 2, key, &vec![9u8; 200_000]);
        for piece in big.chunks(70_000) {
            f.push(piece, &mut |_| {});
        }
        assert_eq!(f.scratch.capacity(), 0);
        // Small frames keep theirs (no allocation per frame).
        f.push(&encode_frame(true, 0, 1, key, b"small"), &mut |_| {});
        let kept = f.scratch.capacity();
        assert!(kept > 0 && kept <= KEPT_SCRATCH);
    }

    #[test]
    fn length_top_bit_set_is_invalid_then_hunts() {
        let good = encode_frame(true, 0, 1, None, b"before");
        let bad = [0x82, 0x7F, 0x80, 0, 0, 0, 0, 0, 0, 5, 1, 2, 3, 4, 5];
        let mut after = Vec::new();
        for i in 0..4 {
            after.extend(encode_frame(
                true,
                0,
                1,
                None,
                format!("message number {i} after").as_bytes(),
            ));
        }
        let s = [&good[..], &bad, &after].concat();
        let evs = synced(&s);
        assert_eq!(
            evs[3],
            Ev::Invalid(HeaderError::LengthTopBitSet, good.len() as u64)
        );
        // The 15 bad bytes are skipped, then all four text frames are found.
        assert_eq!(evs[4], Ev::Resynced(bad.len() as u64));
        assert_eq!(evs.iter().filter(|e| matches!(e, Ev::Header(_))).count(), 5);
        // Same result at every split point.
        for i in 0..=s.len() {
            assert_eq!(
                normalize(run(Framer::new_synced(), &[Ok(&s[..i]), Ok(&s[i..])])),
                evs,
                "cut {i}"
            );
        }
    }

    #[test]
    fn control_frame_longer_than_a_16_bit_length_is_invalid() {
        let s = [
            0x89, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0, b'H', b'e', b'l', b'l', b'o',
        ];
        let evs = synced(&s);
        assert_eq!(evs[0], Ev::Invalid(HeaderError::ControlFrameTooLong, 0));
        assert_eq!(evs.last(), Some(&Ev::Unsynced(s.len() as u64)));
        // The 64-bit form with a length a 16-bit field could hold is delivered, like Zeek's oversized
        // Close of 258 bytes (the caller reports the non-minimal length and the size).
        let s = [
            &[0x88, 0x7F, 0, 0, 0, 0, 0, 0, 1, 2, 0x03, 0xE8][..],
            &[b'x'; 256],
        ]
        .concat();
        let evs = synced(&s);
        assert!(
            matches!(evs[0], Ev::Header(h) if h.payload_len == 258 && !h.minimal_length),
            "{evs:?}"
        );
        assert_eq!(evs.last(), Some(&Ev::End));
        // A 16-bit length on a control frame is delivered (the caller reports the violation).
        let s = [&[0x88, 0x7E, 0x00, 0x80][..], &[0x20; 128]].concat();
        assert!(matches!(synced(&s)[0], Ev::Header(h) if h.payload_len == 128));
    }

    #[test]
    fn huge_64_bit_length_streams_without_allocating() {
        let len = 1u64 << 62;
        let mut f = Framer::new_synced();
        let mut evs = Vec::new();
        f.push(&[0x82, 0x7F, 0x40, 0, 0, 0, 0, 0, 0, 0], &mut |e| {
            evs.push(own(e))
        });
        let chunk = vec![0u8; 1 << 20];
        let mut seen = 0u64;
        for _ in 0..4 {
            f.push(&chunk, &mut |e| {
                if let FrameEvent::Payload(p) = e {
                    seen += p.len() as u64;
                }
            });
            assert!(f.buffered() == 0);
        }
        f.finish(&mut |e| evs.push(own(e)));
        assert_eq!(seen, 4 << 20);
        assert!(matches!(evs[0], Ev::Header(h) if h.payload_len == len));
        assert_eq!(evs[1], Ev::Truncated(len - (4 << 20)));
        // 2^63 - 1 is accepted, 2^63 is not.
        let max = synced(&[0x82, 0x7F, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]);
        assert_eq!(max[1], Ev::Truncated((1u64 << 63) - 1));
    }

    #[test]
    fn truncated_headers_and_payloads() {
        assert_eq!(synced(&[0x82]), vec![Ev::Truncated(0)]);
        assert_eq!(
            synced(&[0x82, 0x05, 1, 2]),
            vec![
                Ev::Header(hdr(&[0x82, 0x05])),
                Ev::Payload(vec![1, 2]),
                Ev::Truncated(3)
            ]
        );
        assert_eq!(synced(&[0x82, 0x85, 1, 2]), vec![Ev::Truncated(5)]);
        assert_eq!(synced(&[0x82, 0x7E, 0x01]), vec![Ev::Truncated(0)]);
        assert_eq!(
            synced(&[0x82, 0x7E, 0x01, 0x00]),
            vec![
                Ev::Header(hdr(&[0x82, 0x7E, 0x01, 0x00])),
                Ev::Truncated(256)
            ]
        );
        assert_eq!(
            synced(&[0x82, 0xFE, 0x01, 0x00, 9]),
            vec![Ev::Truncated(256)]
        );
        assert_eq!(synced(&[]), vec![]);
    }

    #[test]
    fn gap_inside_payload_stays_aligned_and_keeps_the_mask_phase() {
        let key = [0x11, 0x22, 0x33, 0x44];
        let body: Vec<u8> = (0..100u8).collect();
        let mut s = encode_frame(true, 0, 2, Some(key), &body);
        let next = encode_frame(true, 0, 1, Some(key), b"next");
        s.extend(&next);
        let hl = 6;
        for gap_at in [0usize, 1, 30, 99] {
            for gap_len in [1usize, 2, 3, 5] {
                let gap_len = gap_len.min(100 - gap_at);
                let a = &s[..hl + gap_at];
                let b = &s[hl + gap_at + gap_len..];
                let evs = normalize(run(
                    Framer::new_synced(),
                    &[Ok(a), Err(gap_len as u64), Ok(b)],
                ));
                let mut expected = vec![Ev::Header(hdr(&s))];
                if gap_at > 0 {
                    expected.push(Ev::Payload(body[..gap_at].to_vec()));
                }
                expected.push(Ev::PayloadGap(gap_len as u64));
                if gap_at + gap_len < 100 {
                    expected.push(Ev::Payload(body[gap_at + gap_len..].to_vec()));
                }
                expected.extend([
                    Ev::End,
                    Ev::Header(hdr(&next)),
                    Ev::Payload(b"next".to_vec()),
                    Ev::End,
                ]);
                assert_eq!(evs, expected, "gap at {gap_at} len {gap_len}");
            }
        }
    }

    #[test]
    fn gap_past_the_payload_or_between_frames_hunts_then_relocks_at_the_origin() {
        let a = encode_frame(true, 0, 2, None, &[7; 10]);
        let lost = encode_frame(true, 0, 2, None, &[8; 20]);
        let b = encode_frame(true, 0, 2, None, &[9; 30]);
        let c = encode_frame(true, 0, 2, None, &[6; 40]);
        // The gap eats the last 4 payload bytes of `a` and all of `lost`; `b` and `c` arrive in one push.
        let evs = normalize(run(
            Framer::new_synced(),
            &[
                Ok(&a[..a.len() - 4]),
                Err(4 + lost.len() as u64),
                Ok(&[&b[..], &c[..]].concat()),
            ],
        ));
        assert_eq!(
            evs,
            vec![
                Ev::Header(hdr(&a)),
                Ev::Payload(vec![7; 6]),
                Ev::PayloadGap(4),
                Ev::End,
                Ev::Resynced(0),
                Ev::Header(hdr(&b)),
                Ev::Payload(vec![9; 30]),
                Ev::End,
                Ev::Header(hdr(&c)),
                Ev::Payload(vec![6; 40]),
                Ev::End
            ]
        );
        // A gap exactly at a frame boundary; one frame after it, at the end of the stream.
        let evs = normalize(run(
            Framer::new_synced(),
            &[Ok(&a), Err(lost.len() as u64), Ok(&b)],
        ));
        assert_eq!(
            &evs[3..],
            &[
                Ev::Resynced(0),
                Ev::Header(hdr(&b)),
                Ev::Payload(vec![9; 30]),
                Ev::End
            ]
        );
        // A partial header before the gap is skipped.
        let evs = normalize(run(
            Framer::new_synced(),
            &[Ok(&a), Ok(&lost[..1]), Err(lost.len() as u64 - 1), Ok(&b)],
        ));
        assert_eq!(
            &evs[3..],
            &[
                Ev::Resynced(1),
                Ev::Header(hdr(&b)),
                Ev::Payload(vec![9; 30]),
                Ev::End
            ]
        );
    }

    /// Realistic client traffic: masked JSON text frames and some binary and control frames.
    fn client_frames(rng: &mut Rng, n: usize) -> Vec<Vec<u8>> {
        (0..n)
            .map(|i| {
                let key = (rng.next() as u32).to_be_bytes();
                match i % 5 {
                    3 => {
                        let n = 20 + rng.below(200) as usize;
                        encode_frame(true, 0, 2, Some(key), &rng.bytes(n))
                    }
                    4 if i % 2 == 0 => encode_frame(true, 0, 9, Some(key), b""),
                    _ => encode_frame(
                        true,
                        0,
                        1,
                        Some(key),
                        format!(
                            r#"{{"op":"subscribe","id":{i},"topic":"trades.{}"}}"#,
                            rng.below(1000)
                        )
                        .as_bytes(),
                    ),
                }
            })
            .collect()
    }

    fn headers_of(evs: &[Ev]) -> Vec<FrameHeader> {
        evs.iter()
            .filter_map(|e| {
                if let Ev::Header(h) = e {
                    Some(*h)
                } else {
                    None
                }
            })
            .collect()
    }

    #[test]
    fn hunting_finds_frames_after_random_garbage() {
        for seed in 1..=40u64 {
            let mut rng = Rng(seed);
            let frames = client_frames(&mut rng, 12);
            let garbage = rng.bytes(1000);
            let stream = [garbage.clone(), frames.concat()].concat();
            let real: Vec<FrameHeader> = frames.iter().map(|f| hdr(f)).collect();
            for expect in [None, Some(true)] {
                // One push, and TCP-sized pushes.
                for seg in [stream.len(), 1448, 97] {
                    let mut f = Framer::new_hunting();
                    f.set_expect_masked(expect);
                    let pieces: Vec<Result<&[u8], u64>> = stream.chunks(seg).map(Ok).collect();
                    let evs = normalize(run(f, &pieces));
                    let found = headers_of(&evs);
                    // Never invents: the frames found are the last ones sent, in order.
                    assert!(
                        found.len() >= 9,
                        "seed {seed} seg {seg}: only {} frames: {evs:?}",
                        found.len()
                    );
                    assert_eq!(
                        &found[..],
                        &real[real.len() - found.len()..],
                        "seed {seed} seg {seg}"
                    );
                    let skipped_frames: usize = frames[..real.len() - found.len()]
                        .iter()
                        .map(Vec::len)
                        .sum();
                    assert_eq!(
                        evs[0],
                        Ev::Resynced((garbage.len() + skipped_frames) as u64),
                        "seed {seed}"
                    );
                    assert_eq!(
                        evs.iter().filter(|e| matches!(e, Ev::Resynced(_))).count(),
                        1
                    );
                }
            }
        }
    }

    #[test]
    fn hunting_after_a_gap_in_the_middle_of_frames() {
        let mut rng = Rng(99);
        let frames = client_frames(&mut rng, 30);
        let s = frames.concat();
        // Lose 50 bytes somewhere inside frame 10's payload region.
        let cut: usize = frames[..10].iter().map(Vec::len).sum::<usize>() + 3;
        let evs = normalize(run(
            Framer::new_synced(),
            &[Ok(&s[..cut]), Err(50), Ok(&s[cut + 50..])],
        ));
        let found = headers_of(&evs);
        let real: Vec<FrameHeader> = frames.iter().map(|f| hdr(f)).collect();
        assert_eq!(&found[..10], &real[..10]);
        assert!(found.len() >= 25, "{}", found.len());
        assert_eq!(&found[10..], &real[real.len() - (found.len() - 10)..]);
    }

    #[test]
    fn expected_mask_bit_is_enforced_while_hunting() {
        let mut frames = Vec::new();
        for i in 0..6 {
            frames.extend(encode_frame(
                true,
                0,
                1,
                None,
                format!("server says {i}").as_bytes(),
            ));
        }
        let mut f = Framer::new_hunting();
        f.set_expect_masked(Some(true));
        let evs = run(f, &[Ok(&frames)]);
        assert_eq!(evs, vec![Ev::Unsynced(frames.len() as u64)]);
        let mut f = Framer::new_hunting();
        f.set_expect_masked(Some(false));
        assert_eq!(headers_of(&run(f, &[Ok(&frames)])).len(), 6);
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// Regression: records of other protocols that used to lock (the non-WebSocket sessions of
    /// Arkime's `arkime_synthetic.pcap`): zero runs read as empty continuation frames, length-prefixed
    /// records ending where the data ends, and NUL-filled fields passing as UTF-8 text.
    #[test]
    fn other_protocols_records_do_not_lock() {
        let zeros = |n| "00".repeat(n);
        let cases: Vec<(&str, Vec<Vec<u8>>)> = vec![
            // Modbus/TCP request and answer: `02 02` + `00 06` + 6 bytes "ends at the end".
            ("modbus", vec![hex("020200000006010400100002")]),
            ("modbus answer", vec![hex("020100000003018302")]),
            // TDS pre-login-like: `01 00` then zeros.
            (
                "zeros",
                vec![hex(&format!("02000200000001000000{}", zeros(200)))],
            ),
            // TLS ClientHello with a zero random.
            (
                "tls",
                vec![hex(&format!(
                    "16030100450100004103030{}02c02f010000160000000e000c000009746573742e636f6d",
                    zeros(31) + "0"
                ))],
            ),
            // EtherNet/IP ListIdentity answer: NUL-padded ASCII after `01 14`.
            (
                "enip",
                vec![hex(&format!(
                    "04001a0078563412{}01000001140001002000436f6d6d756e69636174696f6e73000063003300785634120000{}01000c002d0001000002af120a28010a{}01000c00590001020000bebafeca0b313735362d454e32542f4203",
                    zeros(16),
                    zeros(14),
                    zeros(8)
                ))],
            ),
            // DNS over TCP.
            ("dns", vec![hex("0011222201000001000000000000020001")]),
        ];
        for (name, segments) in cases {
            for mask in [None, Some(false), Some(true)] {
                let mut f = Framer::new_hunting();
                f.set_expect_masked(mask);
                let pieces: Vec<Result<&[u8], u64>> = segments.iter().map(|s| Ok(&s[..])).collect();
                let evs = normalize(run(f, &pieces));
                assert!(headers_of(&evs).is_empty(), "{name} {mask:?}: {evs:?}");
            }
        }
    }

    #[test]
    fn finish_locks_a_single_frame_at_the_origin() {
        let one = encode_frame(true, 0, 2, None, &[1, 2, 3]);
        assert_eq!(
            normalize(run(Framer::new_hunting(), &[Ok(&one)])),
            vec![
                Ev::Resynced(0),
                Ev::Header(hdr(&one)),
                Ev::Payload(vec![1, 2, 3]),
                Ev::End
            ]
        );
        // Not if it does not end exactly at the end of the data.
        let evs = run(Framer::new_hunting(), &[Ok(&one[..one.len() - 1])]);
        assert_eq!(evs, vec![Ev::Unsynced(one.len() as u64 - 1)]);
    }

    #[test]
    fn does_not_lock_on_random_bytes_statistically() {
        // Property: for uniformly random input, a lock needs a chain that random bytes pass with probability
        // about 2^-11 at the hunting origin and 2^-30 per other offset; 3000 random inputs of up to 4 KiB
        // should see at most a handful.
        let mut rng = Rng(0xDEC0DE);
        let mut locked = 0;
        for _ in 0..3000 {
            let n = rng.below(4096) as usize;
            let data = rng.bytes(n);
            let mut f = Framer::new_hunting();
            if rng.below(2) == 0 {
                f.set_expect_masked(Some(rng.below(2) == 0));
            }
            let seg = 1 + rng.below(1500) as usize;
            let pieces: Vec<Result<&[u8], u64>> = data.chunks(seg).map(Ok).collect();
            if run(f, &pieces).iter().any(|e| matches!(e, Ev::Header(_))) {
                locked += 1;
            }
        }
        assert!(locked <= 6, "{locked} of 3000 random inputs locked");
    }

    #[test]
    fn bounded_memory_and_work_on_garbage() {
        // 4 MiB of random bytes, and 2 MiB of a pattern where every 4th offset is a plausible header
        // announcing 65535 bytes (every candidate stays undecided as long as possible).
        let mut rng = Rng(5);
        let random = rng.bytes(4 << 20);
        let pattern: Vec<u8> = [0x82u8, 0x7E, 0xFF, 0xFF]
            .iter()
            .copied()
            .cycle()
            .take(2 << 20)
            .collect();
        for data in [&random, &pattern] {
            let started = Instant::now();
            let mut f = Framer::new_hunting();
            let mut headers = 0;
            for seg in data.chunks(1448) {
                f.push(seg, &mut |e| {
                    headers += usize::from(matches!(e, FrameEvent::Header(_)))
                });
                assert!(f.buffered() <= HUNT_CAP);
                assert!(f.hunt.buf.capacity() <= HUNT_CAP);
            }
            let mut unsynced = 0;
            f.finish(&mut |e| {
                if let FrameEvent::Unsynced { skipped } = e {
                    unsynced = skipped;
                }
            });
            assert_eq!(headers, 0);
            assert_eq!(unsynced, data.len() as u64);
            assert!(started.elapsed().as_secs() < 30, "{:?}", started.elapsed());
        }
    }

    #[test]
    fn chain_start_table_matches_the_rule() {
        for b in 0..=255u8 {
            assert_eq!(
                CHAIN_START[usize::from(b)],
                b0_plausible(b, false),
                "{b:#04x}"
            );
        }
        assert_eq!(CHAIN_START.iter().filter(|&&ok| ok).count(), 11);
    }

    #[test]
    fn stream_offset_counts_pushes_and_gaps() {
        let mut f = Framer::new_synced();
        f.push(&[0x82, 0x03, 1], &mut |_| {});
        f.gap(10, &mut |_| {});
        f.push(&[0x82], &mut |_| {});
        assert_eq!(f.stream_offset(), 14);
        assert!(f.is_hunting());
    }

    /// One frame's fields for `encode_frame`: FIN, RSV, opcode, mask, payload. Control frames
    /// keep to 125 bytes (a 64-bit length on one is refused, not round-tripped).
    fn frame_fields() -> impl Strategy<Value = (bool, u8, u8, Option<[u8; 4]>, Vec<u8>)> {
        let payload = prop_oneof![
            6 => proptest::collection::vec(any::<u8>(), 0..130),
            3 => proptest::collection::vec(any::<u8>(), 126..400),
            1 => prop_oneof![Just(vec![0x5Au8; 65_535]), Just(vec![0xA5u8; 65_536])],
        ];
        (
            any::<bool>(),
            0u8..8,
            0u8..16,
            proptest::option::of(any::<[u8; 4]>()),
            payload,
        )
            .prop_map(|(fin, rsv, op, mask, mut payload)| {
                if op >= 8 {
                    payload.truncate(125);
                }
                (fin, rsv, op, mask, payload)
            })
    }

    proptest! {
        #![proptest_config(Config { cases: 128, ..Config::default() })]

        /// encode_frame then parse: every field and the unmasked payload come back, from
        /// `parse_frame_header` alone and from a synced framer whatever the split points (every
        /// point for small streams, random ones for large).
        #[test]
        fn prop_encode_then_parse_round_trips_at_every_split(
            frames in proptest::collection::vec(frame_fields(), 1..6),
            seed in any::<u64>(),
        ) {
            let mut wire = Vec::new();
            let mut expected = Vec::new();
            for (fin, rsv, op, mask, payload) in &frames {
                let bytes = encode_frame(*fin, *rsv, *op, *mask, payload);
                let h = hdr(&bytes);
                prop_assert_eq!((h.fin, h.rsv, h.opcode, h.mask), (*fin, *rsv, OpCode::from_u4(*op), *mask));
                prop_assert_eq!(h.payload_len, payload.len() as u64);
                prop_assert!(h.minimal_length);
                prop_assert_eq!(usize::from(h.header_len) + payload.len(), bytes.len());
                expected.push(Ev::Header(h));
                if !payload.is_empty() {
                    expected.push(Ev::Payload(payload.clone()));
                }
                expected.push(Ev::End);
                wire.extend(bytes);
            }
            prop_assert_eq!(synced(&wire), expected.clone());
            if wire.len() <= 3000 {
                for i in 0..=wire.len() {
                    let two = [Ok(&wire[..i]), Ok(&wire[i..])];
                    prop_assert_eq!(normalize(run(Framer::new_synced(), &two)), expected.clone(), "cut {}", i);
                }
            } else {
                let mut rng = Rng(seed | 1);
                for _ in 0..20 {
                    let mut cuts: Vec<usize> = (0..4).map(|_| rng.below(wire.len() as u64 + 1) as usize).collect();
                    cuts.sort_unstable();
                    let pieces = [Ok(&wire[..cuts[0]]), Ok(&wire[cuts[0]..cuts[1]]), Ok(&wire[cuts[1]..cuts[2]]),
                                  Ok(&wire[cuts[2]..cuts[3]]), Ok(&wire[cuts[3]..])];
                    prop_assert_eq!(normalize(run(Framer::new_synced(), &pieces)), expected.clone(), "cuts {:?}", cuts);
                }
            }
        }
    }

    proptest! {
        #![proptest_config(Config { cases: 256, rng_seed: RngSeed::Fixed(0x5EED), ..Config::default() })]

        /// Deterministic (fixed seed) companion of `does_not_lock_on_random_bytes_statistically`.
        #[test]
        fn prop_random_bytes_do_not_lock(data in proptest::collection::vec(any::<u8>(), 0..4096),
                                         seg in 1usize..2000, expect in proptest::option::of(any::<bool>())) {
            let mut f = Framer::new_hunting();
            f.set_expect_masked(expect);
            let pieces: Vec<Result<&[u8], u64>> = data.chunks(seg).map(Ok).collect();
            let evs = run(f, &pieces);
            prop_assert!(!evs.iter().any(|e| matches!(e, Ev::Header(_))), "{:?}", evs);
        }
    }

    proptest! {
        #![proptest_config(Config { cases: 512, ..Config::default() })]

        /// Any bytes, any splits, gaps and modes: no panic, bounded memory, and payload accounting holds.
        #[test]
        fn prop_never_panics(chunks in proptest::collection::vec(
                                 (proptest::collection::vec(any::<u8>(), 0..300), 0u64..50, any::<bool>()), 0..20),
                             hunting in any::<bool>(), frames in proptest::collection::vec(
                                 (any::<bool>(), 0u8..16, proptest::option::of(any::<[u8; 4]>()),
                                  proptest::collection::vec(any::<u8>(), 0..200)), 0..8)) {
            let mut f = if hunting { Framer::new_hunting() } else { Framer::new_synced() };
            let mut open: Option<u64> = None;
            let mut check = |e: FrameEvent<'_>| match e {
                FrameEvent::Header(h) => { assert!(open.is_none()); open = Some(h.payload_len); }
                FrameEvent::Payload(p) => { let r = open.as_mut().unwrap(); *r -= p.len() as u64; }
                FrameEvent::PayloadGap { len } => { let r = open.as_mut().unwrap(); *r -= len; }
                FrameEvent::End => { assert_eq!(open.take(), Some(0)); }
                FrameEvent::Truncated { .. } => { open = None; }
                _ => assert!(open.is_none()),
            };
            // Real frames mixed with random bytes and gaps.
            for (fin, op, mask, body) in &frames {
                f.push(&encode_frame(*fin, 0, *op, *mask, body), &mut check);
            }
            for (bytes, gap, do_gap) in &chunks {
                f.push(bytes, &mut check);
                if *do_gap { f.gap(*gap, &mut check); }
                prop_assert!(f.buffered() <= HUNT_CAP + MAX_HEADER_LEN);
            }
            f.finish(&mut check);
        }
    }
}
