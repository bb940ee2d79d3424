//! The frame layer: `parse_frame_header` on the input, and a `Framer` (synced or hunting, any
//! expected masking) fed the input split at fuzzer-chosen points with fuzzer-chosen TCP gaps.
//! Checks the event contract, the memory bound, that a parsed header re-encodes to the same
//! bytes, and that a synced framer gives the same events however the stream is split.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wsprobe::ws::frame::{HeaderParse, MAX_HEADER_LEN, encode_frame, parse_frame_header};
use wsprobe::ws::framer::{FrameEvent, Framer, HUNT_CAP};
use wsprobe_fuzz::{Choices, FrameContract, split};

#[derive(Debug, PartialEq, Eq)]
enum Ev {
    Header(wsprobe::ws::FrameHeader),
    Payload(Vec<u8>),
    Other(String),
}

fn record(evs: &mut Vec<Ev>, e: &FrameEvent<'_>) {
    match (evs.last_mut(), e) {
        (Some(Ev::Payload(acc)), FrameEvent::Payload(p)) => acc.extend_from_slice(p),
        (_, FrameEvent::Header(h)) => evs.push(Ev::Header(*h)),
        (_, FrameEvent::Payload(p)) => evs.push(Ev::Payload(p.to_vec())),
        (_, other) => evs.push(Ev::Other(format!("{other:?}"))),
    }
}

fn check_header(bytes: &[u8]) {
    match parse_frame_header(bytes) {
        HeaderParse::Complete(h) => {
            let hl = usize::from(h.header_len);
            assert!(hl <= bytes.len() && hl <= MAX_HEADER_LEN);
            assert_eq!(h.fin, bytes[0] & 0x80 != 0);
            assert_eq!(h.rsv, (bytes[0] >> 4) & 7);
            assert_eq!(h.mask.is_some(), bytes[1] & 0x80 != 0);
            // A minimal header re-encodes to the same bytes.
            if h.minimal_length && h.payload_len <= 70_000 {
                let payload = vec![0u8; h.payload_len as usize];
                let wire = encode_frame(h.fin, h.rsv, bytes[0] & 0x0F, h.mask, &payload);
                assert_eq!(&wire[..hl], &bytes[..hl]);
            }
        }
        HeaderParse::Incomplete { needed } => {
            assert!(
                needed >= 1 && bytes.len() + needed <= MAX_HEADER_LEN,
                "{needed}"
            );
        }
        HeaderParse::Invalid(_) => assert!(bytes.len() >= 10),
    }
}

fuzz_target!(|data: &[u8]| {
    let mut c = Choices::new(data);
    let mode = c.byte();
    let pieces = split(&mut c, mode & 0x10 != 0);
    let stream: Vec<u8> = pieces
        .iter()
        .flat_map(|p| p.bytes.iter().copied())
        .collect();
    check_header(&stream);
    for p in &pieces {
        check_header(p.bytes);
    }
    let expect = match (mode >> 1) & 3 {
        1 => Some(true),
        2 => Some(false),
        _ => None,
    };
    let new = || {
        let mut f = if mode & 1 == 1 {
            Framer::new_hunting()
        } else {
            Framer::new_synced()
        };
        f.set_expect_masked(expect);
        f
    };

    let mut split_events = Vec::new();
    let mut contract = FrameContract::default();
    let mut f = new();
    for p in &pieces {
        f.push(p.bytes, &mut |e| {
            contract.check(&e);
            record(&mut split_events, &e);
        });
        assert!(f.buffered() <= HUNT_CAP + MAX_HEADER_LEN);
        if p.gap > 0 {
            f.gap(p.gap, &mut |e| {
                contract.check(&e);
                record(&mut split_events, &e);
            });
        }
    }
    f.finish(&mut |e| {
        contract.check(&e);
        record(&mut split_events, &e);
    });
    assert!(f.buffered() == 0);

    // A synced framer that never lost the frame boundaries does not depend on the splits.
    if mode & 1 == 0 && pieces.iter().all(|p| p.gap == 0) {
        let mut whole = Vec::new();
        let mut f = new();
        f.push(&stream, &mut |e| record(&mut whole, &e));
        f.finish(&mut |e| record(&mut whole, &e));
        let lost_sync = whole
            .iter()
            .any(|e| matches!(e, Ev::Other(s) if s.starts_with("Invalid")));
        if !lost_sync {
            assert_eq!(whole, split_events);
        }
    }
});
