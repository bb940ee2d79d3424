//! Test helpers shared by the framer's and the hunt's tests: owned frame events, a driver that runs
//! pieces and gaps through a `Framer`, and a deterministic generator of test data.

use crate::ws::frame::{
    FrameHeader, HeaderError, HeaderParse, MAX_HEADER_LEN, encode_frame, parse_frame_header,
};
use crate::ws::framer::{FrameEvent, Framer};
use crate::ws::hunt::HUNT_CAP;

/// Owned copy of a `FrameEvent` for comparisons.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Ev {
    Header(FrameHeader),
    Payload(Vec<u8>),
    PayloadGap(u64),
    End,
    Invalid(HeaderError, u64),
    Resynced(u64),
    Truncated(u64),
    Unsynced(u64),
    /// `FrameEvent::At`, the time's bits.
    At(u64),
}

pub(crate) fn own(e: FrameEvent<'_>) -> Ev {
    match e {
        FrameEvent::Header(h) => Ev::Header(h),
        FrameEvent::Payload(p) => Ev::Payload(p.to_vec()),
        FrameEvent::PayloadGap { len } => Ev::PayloadGap(len),
        FrameEvent::End => Ev::End,
        FrameEvent::Invalid { error, at } => Ev::Invalid(error, at),
        FrameEvent::Resynced { skipped } => Ev::Resynced(skipped),
        FrameEvent::Truncated { missing } => Ev::Truncated(missing),
        FrameEvent::Unsynced { skipped } => Ev::Unsynced(skipped),
        FrameEvent::At(time) => Ev::At(time.to_bits()),
    }
}

/// Joins consecutive payload chunks, so event lists can be compared across different push splits.
pub(crate) fn normalize(evs: Vec<Ev>) -> Vec<Ev> {
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
pub(crate) fn run(mut f: Framer, pieces: &[Result<&[u8], u64>]) -> Vec<Ev> {
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

pub(crate) fn synced(bytes: &[u8]) -> Vec<Ev> {
    normalize(run(Framer::new_synced(), &[Ok(bytes)]))
}

pub(crate) fn hdr(bytes: &[u8]) -> FrameHeader {
    match parse_frame_header(bytes) {
        HeaderParse::Complete(h) => h,
        other => panic!("{other:?}"),
    }
}

/// Deterministic xorshift64* generator for test data.
pub(crate) struct Rng(pub(crate) u64);
impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub(crate) fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Realistic client traffic: masked JSON text frames and some binary and control frames.
pub(crate) fn client_frames(rng: &mut Rng, n: usize) -> Vec<Vec<u8>> {
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

pub(crate) fn headers_of(evs: &[Ev]) -> Vec<FrameHeader> {
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
