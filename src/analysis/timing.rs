//! When things happened, for the end of a connection: each side's last frame and last activity,
//! the longest silence, and a compact fingerprint of the opening frames (to pair the two legs of a
//! proxied session). Frame headers in, [`TimingRecord`] fields and a [`Fingerprint`] out; a few
//! numbers per connection, never payload.

use std::hash::{DefaultHasher, Hash, Hasher};

use crate::diag::Side;
use crate::record::{Fingerprint, LastFrameRecord, PerSide, TimingRecord};
use crate::ws::frame::FrameHeader;
use crate::ws::opcode::OpCode;

/// Frames hashed into [`Fingerprint::frames`]: two legs of one proxied session carry the same
/// bytes, and eight frames with their random 32-bit masking keys cannot match by chance.
pub const FINGERPRINT_FRAMES: u8 = 8;

/// Tracks one connection's timing.
#[derive(Debug, Default)]
pub struct TimingTracker {
    /// Last frame of each side, any opcode.
    last_frame: PerSide<Option<LastFrameRecord>>,
    /// Last time each side sent something before the end began (frames other than Close, the
    /// upgrade request or its answer).
    last_activity: PerSide<Option<f64>>,
    /// Latest activity of either side, and the longest gap between two activities.
    last_any: Option<f64>,
    longest_silence: Option<f64>,
    /// The end has begun (a Close frame was seen): activity stops counting.
    closing: bool,
    fingerprint: Fingerprint,
    hasher: Option<DefaultHasher>,
    first_mask: Option<[u8; 4]>,
}

/// The sample key of RFC 6455 §1.3, which test clients and hand-written ones send verbatim:
/// shared by unrelated connections, it cannot pair proxy legs.
const SAMPLE_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

impl TimingTracker {
    /// `side` sent something at `time` that shows it was alive.
    fn activity(&mut self, side: Side, time: f64) {
        if self.closing {
            return;
        }
        let last = self.last_activity.get_mut(side);
        *last = Some(last.map_or(time, |t: f64| t.max(time)));
        if let Some(prev) = self.last_any {
            let gap = time - prev;
            if gap > self.longest_silence.unwrap_or(0.0) {
                self.longest_silence = Some(gap);
            }
        }
        self.last_any = Some(self.last_any.map_or(time, |t| t.max(time)));
    }

    /// The upgrade request (client) or its answer (server).
    pub fn handshake(&mut self, side: Side, time: f64) {
        self.activity(side, time);
    }

    /// The Sec-WebSocket-Key of the upgrade request.
    pub fn key(&mut self, key: &str) {
        if key.trim() == SAMPLE_KEY {
            return;
        }
        let mut h = DefaultHasher::new();
        key.trim().hash(&mut h);
        self.fingerprint.key = Some(h.finish());
    }

    /// A frame header from `side`.
    pub fn frame(&mut self, side: Side, h: &FrameHeader, time: f64) {
        *self.last_frame.get_mut(side) = Some(LastFrameRecord {
            time,
            opcode: h.opcode.as_str(),
            length: h.payload_len,
        });
        if h.opcode == OpCode::Close {
            self.closing = true;
        } else {
            self.activity(side, time);
        }
        if self.fingerprint.frame_count < FINGERPRINT_FRAMES {
            let hasher = self.hasher.get_or_insert_with(DefaultHasher::new);
            (side == Side::Client).hash(hasher);
            (h.fin, h.rsv, h.opcode.as_str(), h.payload_len, h.mask).hash(hasher);
            self.fingerprint.frame_count += 1;
            self.fingerprint.masked += u8::from(h.mask.is_some());
            if let Some(mask) = h.mask {
                match self.first_mask {
                    None => self.first_mask = Some(mask),
                    Some(first) => self.fingerprint.varied_masks |= first != mask,
                }
            }
            self.fingerprint.frames = hasher.clone().finish();
        }
    }

    /// The fingerprint so far.
    pub fn fingerprint(&self) -> Fingerprint {
        self.fingerprint
    }

    /// Fills the timing fields this tracker knows, for an end that began at `end_time`.
    pub fn fill(&self, end_time: f64, record: &mut TimingRecord) {
        let since = |t: Option<f64>| t.map(|t| round6((end_time - t).max(0.0)));
        record.last_frame = self.last_frame;
        record.idle_by_side = PerSide {
            client: since(self.last_activity.client),
            server: since(self.last_activity.server),
        };
        record.idle = since(self.last_any);
        record.longest_silence = self.longest_silence.map(round6);
    }
}

/// The timing fields of an encrypted connection (no frames seen) from its application records:
/// each side's last one before the end (the final close_notify-sized or alert record left
/// out) and the longest silence between them.
pub fn fill_from_records(
    end_time: f64,
    last: PerSide<Option<f64>>,
    longest_silence: Option<f64>,
    record: &mut TimingRecord,
) {
    let since = |t: Option<f64>| t.map(|t| round6((end_time - t).max(0.0)));
    record.idle_by_side = PerSide {
        client: since(last.client),
        server: since(last.server),
    };
    let any = match (last.client, last.server) {
        (Some(c), Some(s)) => Some(c.max(s)),
        (c, s) => c.or(s),
    };
    record.idle = since(any);
    record.longest_silence = longest_silence.map(round6);
}

/// Microsecond precision: captures carry no more.
pub fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(opcode: OpCode, mask: Option<[u8; 4]>, len: u64) -> FrameHeader {
        FrameHeader {
            fin: true,
            rsv: 0,
            opcode,
            mask,
            payload_len: len,
            header_len: 2,
            minimal_length: true,
        }
    }

    #[test]
    fn idle_is_measured_from_the_last_activity_before_the_close() {
        let mut t = TimingTracker::default();
        t.handshake(Side::Client, 1.0);
        t.handshake(Side::Server, 1.01);
        t.frame(
            Side::Client,
            &header(OpCode::Text, Some([1, 2, 3, 4]), 5),
            2.0,
        );
        t.frame(Side::Server, &header(OpCode::Text, None, 5), 12.0);
        t.frame(Side::Server, &header(OpCode::Close, None, 2), 72.0);
        t.frame(
            Side::Client,
            &header(OpCode::Close, Some([9, 9, 9, 9]), 2),
            72.1,
        );
        let mut r = TimingRecord::default();
        t.fill(72.0, &mut r);
        assert_eq!(r.idle, Some(60.0));
        assert_eq!(r.idle_by_side.client, Some(70.0));
        assert_eq!(r.idle_by_side.server, Some(60.0));
        assert_eq!(r.longest_silence, Some(10.0));
        assert_eq!(r.last_frame.client.unwrap().opcode, "close");
        assert_eq!(r.last_frame.server.unwrap().time, 72.0);
    }

    #[test]
    fn legs_with_the_same_frames_share_a_fingerprint_and_others_do_not() {
        let frames = [
            (Side::Client, header(OpCode::Text, Some([1, 2, 3, 4]), 5)),
            (Side::Server, header(OpCode::Text, None, 5)),
            (Side::Client, header(OpCode::Ping, Some([7, 7, 0, 1]), 0)),
        ];
        let run = |frames: &[(Side, FrameHeader)], t0: f64| {
            let mut t = TimingTracker::default();
            t.key("x3JJHMbDL1EzLkh9GBhXDw==");
            for (i, (side, h)) in frames.iter().enumerate() {
                t.frame(*side, h, t0 + i as f64);
            }
            t.fingerprint()
        };
        let a = run(&frames, 0.0);
        let b = run(&frames, 0.0002);
        assert_eq!(a, b);
        assert_eq!((a.frame_count, a.masked, a.varied_masks), (3, 2, true));
        assert!(a.key.is_some());
        let mut other = frames;
        other[0].1.mask = Some([1, 2, 3, 5]);
        assert_ne!(run(&other, 0.0).frames, a.frames);
        // The RFC's sample key is everybody's: it pairs nothing.
        let mut t = TimingTracker::default();
        t.key("dGhlIHNhbXBsZSBub25jZQ==");
        assert_eq!(t.fingerprint().key, None);
    }
}
