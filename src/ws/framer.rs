//! One direction's reassembled stream bytes (plus TCP gaps) -> `FrameEvent`s: headers, unmasked payload
//! chunks, frame ends, and the loss and recovery of frame boundaries.
//!
//! Memory is bounded whatever the input: a 14-byte header buffer, a 64 KiB unmasking scratch buffer, and
//! while hunting for boundaries the hunt's buffer of at most `HUNT_CAP` bytes. Payloads are streamed, never
//! buffered.
//!
//! # Event order
//! - A frame is `Header`, then `Payload`/`PayloadGap` chunks (none for an empty payload), then `End`.
//!   Frames never interleave, and `Payload` chunks concatenate to exactly `payload_len` bytes minus gaps.
//! - `Invalid` comes only where a header was expected; the framer then hunts. Hunting ends with `Resynced`
//!   (followed by frames) or, in `finish()`, with `Unsynced`.
//! - `Truncated` comes only from `finish()`, closing an open frame (no `End` follows) or reporting a header
//!   cut short.
//!
//! # Hunting
//! While boundaries are unknown (a stream picked up mid-way, after a gap outside a payload, after an invalid
//! header) the bytes go to `hunt.rs`, which says where the first provable frame boundary is; the framer then
//! replays the buffered bytes from there as frames and goes on synced.

use std::collections::VecDeque;
use std::fmt;

use crate::ws::frame::{FrameHeader, HeaderError, HeaderParse, MAX_HEADER_LEN, parse_frame_header};
use crate::ws::hunt::Hunt;
use crate::ws::mask::apply_mask;

pub use crate::ws::hunt::HUNT_CAP;

/// Masked payload is unmasked in pieces of at most this many bytes: bounds the one scratch buffer.
const SCRATCH_CHUNK: usize = 64 * 1024;

/// Scratch capacity kept between frames; a larger one (after a large masked payload) is freed.
const KEPT_SCRATCH: usize = 4096;

/// Longest control-frame payload the synced parser follows (RFC 6455 §5.5 allows 125): what a 16-bit length
/// can say. Beyond it the header is taken as a sign of misalignment.
const MAX_FOLLOWED_CONTROL_LEN: u64 = 0xFFFF;

/// One event of the frame stream. Payload slices borrow either the caller's input or the framer's scratch
/// buffer, so they are only valid during the callback.
#[derive(Clone, Copy, Debug, PartialEq)]
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
    /// With `push_at` only: the events that follow come from bytes captured at this time. Sent while frames
    /// found by hunting are replayed from bytes that earlier pushes delivered, and once more with the
    /// current push's time after them; without it every event belongs to the push that caused it.
    At(f64),
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
    /// Made when boundaries are first lost, then kept (its byte statistics judge later hunts): most
    /// streams never lose them, and every open direction would carry its 160 bytes.
    lost: Option<Box<Lost>>,
    expect_masked: Option<bool>,
    /// The capture time of the current push (`push_at`).
    now: Option<f64>,
}

/// What hunting for frame boundaries needs.
struct Lost {
    hunt: Hunt,
    /// The pushes whose bytes the hunt holds: (stream offset where the push started, capture time),
    /// oldest first, at most `MAX_PUSH_TIMES`.
    push_times: VecDeque<(u64, f64)>,
}

/// The hunting state, made at its first use.
fn lost(slot: &mut Option<Box<Lost>>) -> &mut Lost {
    slot.get_or_insert_with(|| {
        Box::new(Lost {
            hunt: Hunt::new(),
            push_times: VecDeque::new(),
        })
    })
}

/// Push times remembered while hunting; beyond, the oldest are forgotten (their bytes then get a later
/// push's time).
const MAX_PUSH_TIMES: usize = 1024;

impl fmt::Debug for Framer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Framer")
            .field("hunting", &self.hunting)
            .field("state", &self.state)
            .field("hdr_len", &self.hdr_len)
            .field("stream_offset", &self.total)
            .field("hunt_buffered", &self.hunt_buffered())
            .field("expect_masked", &self.expect_masked)
            .finish_non_exhaustive()
    }
}

impl Default for Framer {
    fn default() -> Self {
        Self::new_synced()
    }
}

impl Framer {
    fn new(hunting: bool) -> Self {
        Self {
            hunting,
            state: State::Header,
            hdr: [0; MAX_HEADER_LEN],
            hdr_len: 0,
            hdr_start: 0,
            cursor: 0,
            total: 0,
            scratch: Vec::new(),
            lost: None,
            expect_masked: None,
            now: None,
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

    /// Releases the unmasking scratch buffer, which is only used inside `push`, and (when synced) the
    /// spare room of the hunting state; for idle streams.
    pub fn release_buffers(&mut self) {
        self.scratch = Vec::new();
        if !self.hunting
            && let Some(lost) = &mut self.lost
        {
            lost.hunt.release_spare();
            lost.push_times = VecDeque::new();
        }
    }

    fn hunt(&mut self) -> &mut Hunt {
        &mut lost(&mut self.lost).hunt
    }

    fn hunt_buffered(&self) -> usize {
        self.lost.as_ref().map_or(0, |l| l.hunt.buffered())
    }

    fn clear_push_times(&mut self) {
        if let Some(lost) = &mut self.lost {
            lost.push_times.clear();
        }
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
        self.hunt_buffered() + self.hdr_len
    }

    /// Bytes the hunting buffer has allocated.
    #[cfg(test)]
    pub(crate) fn hunt_capacity(&self) -> usize {
        self.lost.as_ref().map_or(0, |l| l.hunt.capacity())
    }

    /// As `push`, for bytes captured at `time`: frames that hunting finds in bytes of earlier pushes are
    /// then preceded by `FrameEvent::At` with those pushes' times.
    pub fn push_at<F: FnMut(FrameEvent<'_>)>(&mut self, data: &[u8], time: f64, out: &mut F) {
        self.now = Some(time);
        if self.hunting && !data.is_empty() {
            self.note_push_time(self.total, time);
        }
        self.push(data, out);
    }

    /// Remembers that the bytes from stream offset `at` on came at `time` (while hunting).
    fn note_push_time(&mut self, at: u64, time: f64) {
        let push_times = &mut lost(&mut self.lost).push_times;
        if push_times.back().is_some_and(|&(_, t)| t == time) {
            return;
        }
        if push_times.len() >= MAX_PUSH_TIMES {
            push_times.pop_front();
        }
        push_times.push_back((at, time));
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
            let n = self.hunt().absorb(input);
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
            let total = self.total;
            let hunt = self.hunt();
            hunt.discard_all();
            hunt.restart(total, true);
            self.clear_push_times();
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
                let partial = self.hdr_len as u64;
                self.hunt().skip(partial);
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
            let skipped = self.lost.as_ref().map_or(0, |l| l.hunt.unaligned());
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
        let total = self.total;
        let hunt = self.hunt();
        hunt.take_skipped();
        hunt.restart(total, false);
        self.clear_push_times();
        self.cursor = self.total;
    }

    fn start_hunting_after_gap(&mut self) {
        self.hunting = true;
        let cursor = self.cursor;
        self.hunt().restart(cursor, true);
        self.clear_push_times();
    }

    /// Switches to hunting at a header that cannot be a frame; `from_hdr_buf`: its bytes were already
    /// consumed into the header buffer and go first into the hunting buffer.
    fn start_hunting_at_header(&mut self, from_hdr_buf: bool) {
        self.hunting = true;
        // While synced no push times are kept: the bytes from here on came with this push (unless this
        // happens while replaying hunted bytes, whose pushes' times are still there).
        if let Some(time) = self.now
            && self.lost.as_ref().is_none_or(|l| l.push_times.is_empty())
        {
            self.note_push_time(self.hdr_start, time);
        }
        let hdr_start = self.hdr_start;
        self.hunt().restart(hdr_start, false);
        if from_hdr_buf {
            let Self {
                lost: slot,
                hdr,
                hdr_len,
                ..
            } = self;
            lost(slot).hunt.append(&hdr[..*hdr_len]);
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
            let expect_masked = self.expect_masked;
            let hunt = self.hunt();
            let Some(at) = hunt.scan(expect_masked, push_end, finishing) else {
                return;
            };
            let (skipped, buf, start) = hunt.take_locked(at);
            out(FrameEvent::Resynced { skipped });
            self.hunting = false;
            self.state = State::Header;
            self.hdr_len = 0;
            self.cursor = at;
            let n = self.replay(&buf[start..], at, out);
            if self.hunting {
                // A bad header further on: the rest goes back into the (restarted) hunting buffer.
                self.hunt().append(&buf[start + n..]);
            } else {
                let cursor = self.cursor;
                self.hunt().restart(cursor, false);
                self.clear_push_times();
                if let Some(time) = self.now {
                    out(FrameEvent::At(time));
                }
            }
            self.hunt().recycle(buf, SCRATCH_CHUNK);
        }
    }

    /// Parses hunted bytes (from stream offset `at`) as frames, each stretch after an `At` with the time
    /// of the push that delivered it. Returns the bytes consumed, as `synced`.
    fn replay<F: FnMut(FrameEvent<'_>)>(&mut self, bytes: &[u8], at: u64, out: &mut F) -> usize {
        let push_times = match &self.lost {
            Some(lost) if !lost.push_times.is_empty() => &lost.push_times,
            _ => return self.synced(bytes, out),
        };
        let end = at + bytes.len() as u64;
        // The push that holds `at` (the last starting at or before it), and those after it.
        let first = push_times
            .iter()
            .rposition(|&(start, _)| start <= at)
            .unwrap_or(0);
        let stretches: Vec<(u64, f64)> = push_times.iter().skip(first).copied().collect();
        let mut done = 0usize;
        for (k, &(start, time)) in stretches.iter().enumerate() {
            let from = start.max(at);
            let to = stretches.get(k + 1).map_or(end, |&(next, _)| next.min(end));
            if to <= from {
                continue;
            }
            out(FrameEvent::At(time));
            let piece = &bytes[(from - at) as usize..(to - at) as usize];
            let n = self.synced(piece, out);
            done += n;
            if self.hunting {
                break;
            }
        }
        done
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
    use crate::ws::opcode::OpCode;
    use crate::ws::testing::*;
    use proptest::prelude::*;
    use proptest::test_runner::Config;

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
    fn hunting_state_is_made_at_the_first_loss_and_its_room_given_back_when_idle() {
        let frames = |n: usize| -> Vec<u8> {
            (0..n)
                .flat_map(|i| {
                    encode_frame(true, 0, 1, None, format!("message {i} after").as_bytes())
                })
                .collect()
        };
        let mut f = Framer::new_synced();
        f.push(&frames(1), &mut |_| {});
        assert!(f.lost.is_none(), "a stream that never lost a boundary");
        // A loss between frames: hunting, then locked again on the frames after it.
        f.gap(5, &mut |_| {});
        let mut resynced = false;
        f.push(&frames(4), &mut |e| {
            resynced |= matches!(e, FrameEvent::Resynced { .. })
        });
        assert!(resynced && !f.is_hunting());
        assert!(
            f.hunt_capacity() > 0,
            "the buffer is kept for the next hunt"
        );
        f.release_buffers();
        assert_eq!(f.hunt_capacity(), 0);
        // The state stays (its statistics judge later hunts) and hunting works again.
        assert!(f.lost.is_some());
        f.gap(3, &mut |_| {});
        let mut headers = 0;
        f.push(&frames(4), &mut |e| {
            headers += usize::from(matches!(e, FrameEvent::Header(_)))
        });
        assert_eq!(headers, 4);
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
