//! What a passive observer does when bytes are missing: capture gaps (inside a DATA payload the
//! frame stays aligned; across frames a hunt for a plausible frame header), and recognising a
//! WebSocket stream from its DATA when its headers were not seen.

use super::frame::{self, FrameHeader, HEADER_LEN, flag, kind};
use super::streams::{StreamKind, idx};
use super::*;
use crate::ws::frame::{HeaderParse, parse_frame_header};
use crate::ws::opcode::OpCode;

impl Http2Layer {
    pub(super) fn gap(&mut self, s: usize, time: f64, len: u64, out: Sink<'_>) {
        let side = self.dirs[s].side;
        match self.dirs[s].rx {
            Rx::Stopped => {}
            Rx::Payload(h, left, how) if len < u64::from(left) => {
                // Still aligned: the frame continues after the hole.
                let len32 = len as u32;
                let mut how = how;
                match &mut how {
                    How::Data {
                        pad_pending,
                        data_left,
                        pad_left,
                        forward,
                    } => {
                        if *pad_pending {
                            // The pad length is lost: what remains is taken as data.
                            *pad_pending = false;
                            *pad_left = 0;
                            *data_left = left - 1;
                            let lost = len32 - 1;
                            self.forward_gap(h.stream_id, side, *forward, u64::from(lost), out);
                            *data_left -= lost;
                        } else {
                            let in_data = len32.min(*data_left);
                            self.forward_gap(h.stream_id, side, *forward, u64::from(in_data), out);
                            *data_left -= in_data;
                            *pad_left -= len32 - in_data;
                        }
                    }
                    How::Buffer { .. } if h.kind == kind::DATA => {
                        // A probe frame with a hole: the stream stays undecided.
                        if let Some(st) = self.streams.get_mut(h.stream_id) {
                            st.kind = StreamKind::Ordinary;
                        }
                        how = How::Skip;
                    }
                    How::Buffer { .. }
                        if matches!(
                            h.kind,
                            kind::HEADERS | kind::PUSH_PROMISE | kind::CONTINUATION
                        ) =>
                    {
                        how = How::SkipFragment;
                    }
                    How::Buffer { .. } => how = How::Skip,
                    How::SkipFragment | How::Skip => {}
                }
                self.dirs[s].rx = Rx::Payload(h, left - len32, how);
            }
            Rx::Payload(
                h,
                left,
                How::Data {
                    pad_pending: false,
                    data_left,
                    forward,
                    ..
                },
            ) => {
                // The hole runs past this frame: its data part is lost, then alignment.
                self.forward_gap(h.stream_id, side, forward, u64::from(data_left), out);
                self.start_hunt(s, time, len - u64::from(left), out);
            }
            _ => self.start_hunt(s, time, len, out),
        }
    }

    pub(super) fn forward_gap(
        &mut self,
        sid: u32,
        side: Side,
        forward: bool,
        len: u64,
        out: Sink<'_>,
    ) {
        if forward && len > 0 {
            out(Out::Data {
                channel: sid,
                from: side,
                chunk: Chunk::Gap(len),
            });
        }
    }

    pub(super) fn start_hunt(&mut self, s: usize, time: f64, lost: u64, out: Sink<'_>) {
        let _ = time;
        let _ = out;
        // A frame of unknown kind was lost: the windows can no longer be followed.
        self.flow.forget();
        let d = &mut self.dirs[s];
        if d.rx != Rx::Hunt {
            d.hunt.clear();
            d.hunt_scanned = 0;
        } else {
            // What was held before the hole cannot join what follows it.
            d.hunt_skipped += d.hunt.len() as u64;
            d.hunt.clear();
            d.hunt_scanned = 0;
        }
        d.lost += lost;
        d.hdr_have = 0;
        d.block = None;
        d.block_buf.clear();
        d.rx = Rx::Hunt;
    }

    /// Hunting: returns the bytes of `data` used.
    pub(super) fn hunt(&mut self, s: usize, time: f64, data: &[u8], out: Sink<'_>) -> usize {
        let d = &mut self.dirs[s];
        let room = HUNT_WINDOW - d.hunt.len();
        let n = room.min(data.len());
        d.hunt.extend_from_slice(&data[..n]);
        let max_frame = d.max_frame.unwrap_or(HUNT_WINDOW as u32);
        let (found, scanned) = scan(&d.hunt, d.hunt_scanned, max_frame);
        d.hunt_scanned = scanned;
        if let Some(at) = found {
            let buf = std::mem::take(&mut d.hunt);
            d.hunt_scanned = 0;
            let skipped = d.hunt_skipped + at as u64;
            let lost = d.lost;
            d.hunt_skipped = 0;
            d.lost = 0;
            d.hunted_total += skipped;
            d.rx = Rx::Header;
            if !self.from_start {
                self.report_midstream(self.dirs[s].side, time, out);
            }
            self.resynced(s, time, skipped, lost, out);
            self.feed(s, time, &buf[at..], out);
            return n;
        }
        if d.hunt.len() == HUNT_WINDOW {
            // Keep the tail that may still hold the start of a frame header.
            let drop = HUNT_WINDOW / 2;
            d.hunt.drain(..drop);
            d.hunt_scanned = d.hunt_scanned.saturating_sub(drop);
            d.hunt_skipped += drop as u64;
            if d.hunted_total + d.hunt_skipped > HUNT_BUDGET {
                let total = d.hunted_total + d.hunt_skipped;
                self.fatal(
                    s,
                    time,
                    format!("no HTTP/2 frames found in {total} bytes"),
                    out,
                );
            }
        }
        n
    }

    pub(super) fn resynced(&mut self, s: usize, time: f64, skipped: u64, lost: u64, out: Sink<'_>) {
        let side = self.dirs[s].side;
        let first = self.dirs[s].hunted_total == skipped && lost == 0 && !self.from_start;
        if lost > 0 || skipped > 0 {
            if !first {
                self.diag(
                    DiagnosticId::H2FrameResync,
                    None,
                    Some(side),
                    time,
                    format!(
                        "the {}'s HTTP/2 frames are found again after {} (the frames in between are lost; the {}'s HPACK table is partly unknown from here)",
                        side.as_str(),
                        match (lost, skipped) {
                            (0, k) => format!("{k} bytes that are not frames"),
                            (l, 0) => format!("a capture gap of {l} bytes"),
                            (l, k) => format!("a capture gap of {l} bytes and {k} skipped bytes"),
                        },
                        side.as_str()
                    ),
                    out,
                );
            }
            self.dirs[s].decoder.lose_history();
            self.dirs[s].unknown_reported = false;
            // Any WebSocket stream of this direction may have lost DATA in the hole.
            let bound = lost + skipped;
            for id in self.streams.ids() {
                if let Some(st) = self.streams.get(id)
                    && st.forwards(side)
                    && !st.closed[idx(side)]
                {
                    out(Out::Data {
                        channel: id,
                        from: side,
                        chunk: Chunk::Gap(bound),
                    });
                }
            }
        }
    }
}

/// Does `data` (a whole DATA payload, or its first [`PROBE_CAP`] bytes) start with WebSocket
/// frames as `side` sends them? The first frame must be a plausible opening frame (data or
/// control opcode, masked exactly when the client sends, RSV2/3 clear, minimal length,
/// control frames final and short); further frames inside the payload must parse too.
pub fn looks_like_websocket(data: &[u8], side: Side) -> bool {
    let mut rest = data;
    let mut frames = 0;
    while !rest.is_empty() && frames < 16 {
        let h = match parse_frame_header(rest) {
            HeaderParse::Complete(h) => h,
            HeaderParse::Incomplete { .. } => return frames > 0,
            HeaderParse::Invalid(_) => return false,
        };
        let control = h.opcode.is_control();
        let ok = !h.opcode.is_reserved()
            && (frames > 0 || h.opcode != OpCode::Continuation)
            && h.is_masked() == (side == Side::Client)
            && h.rsv & 0b011 == 0
            && !(control && (h.rsv != 0 || !h.fin || h.payload_len > 125))
            && h.minimal_length;
        if !ok {
            return false;
        }
        frames += 1;
        let len = h.frame_len();
        if len >= rest.len() as u64 {
            return true;
        }
        rest = &rest[len as usize..];
    }
    frames > 0
}

/// Looks for a frame boundary in `buf` from `from`: a plausible header whose successor (when
/// in the buffer) is plausible too. Returns the boundary, and where the next scan starts.
pub(super) fn scan(buf: &[u8], from: usize, max_frame: u32) -> (Option<usize>, usize) {
    let mut i = from;
    while i + HEADER_LEN <= buf.len() {
        let Some(h) = frame::parse_header(&buf[i..]) else {
            break;
        };
        if plausible(&h, max_frame) {
            let next = i + HEADER_LEN + h.length as usize;
            if next + HEADER_LEN <= buf.len() {
                if frame::parse_header(&buf[next..])
                    .is_some_and(|n| plausible_next(&h, &n, max_frame))
                {
                    return (Some(i), i);
                }
            } else if next + HEADER_LEN - i <= HUNT_WINDOW {
                // Cannot check the successor yet: wait here.
                return (None, i);
            }
        }
        i += 1;
    }
    (None, i)
}

pub(super) fn plausible(h: &FrameHeader, max_frame: u32) -> bool {
    !h.reserved_bit
        && h.length <= max_frame
        && h.kind != kind::CONTINUATION
        && frame::defined_flags(h.kind).is_some_and(|f| h.flags & !f == 0)
        && frame::check_header(h).is_ok()
        && (h.stream_id == 0 || h.stream_id < 1 << 24)
}

pub(super) fn plausible_next(prev: &FrameHeader, next: &FrameHeader, max_frame: u32) -> bool {
    let continues = (prev.kind == kind::HEADERS || prev.kind == kind::PUSH_PROMISE)
        && !prev.has(flag::END_HEADERS);
    if continues {
        next.kind == kind::CONTINUATION && next.stream_id == prev.stream_id && !next.reserved_bit
    } else {
        plausible(next, max_frame)
    }
}

/// Do these first bytes of a direction look like HTTP/2 frames (a capture that starts inside an
/// HTTP/2 connection)? The first frame header must be plausible, and so must the next one when
/// the bytes hold it; or the frame must fill the bytes exactly. HTTP/1.x, TLS records and
/// WebSocket frames do not pass: their first bytes read as lengths past 64 KiB, or as reserved
/// flags and types.
pub fn looks_like_frames(first_bytes: &[u8]) -> bool {
    let Some(h) = frame::parse_header(first_bytes) else {
        return false;
    };
    if !plausible(&h, HUNT_WINDOW as u32) {
        return false;
    }
    let next = HEADER_LEN + h.length as usize;
    if next == first_bytes.len() {
        return true;
    }
    matches!(scan(first_bytes, 0, HUNT_WINDOW as u32), (Some(0), _))
}
