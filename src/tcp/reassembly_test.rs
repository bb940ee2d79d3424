//! Tests for the TCP reassembler: unit cases for each policy, split-point
//! tests, and properties (shuffled/duplicated/overlapping segments, dropped
//! segments as exact gaps, tiny caps, arbitrary garbage).

use super::*;
use proptest::prelude::*;

const NONE: SegmentFlags = SegmentFlags {
    syn: false,
    fin: false,
    rst: false,
};
const SYN: SegmentFlags = SegmentFlags {
    syn: true,
    fin: false,
    rst: false,
};
const FIN: SegmentFlags = SegmentFlags {
    syn: false,
    fin: true,
    rst: false,
};
const RST: SegmentFlags = SegmentFlags {
    syn: false,
    fin: false,
    rst: true,
};

/// An owned stream event.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Ev {
    Data(Vec<u8>),
    Gap { offset: u64, len: u64 },
}

fn data(bytes: &[u8]) -> Ev {
    Ev::Data(bytes.to_vec())
}

fn gap(offset: u64, len: u64) -> Ev {
    Ev::Gap { offset, len }
}

/// `n` bytes that differ from their neighbours, so misplaced bytes show.
fn stream(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 + i / 251) as u8).collect()
}

/// A [`StreamEvent::LateForGap`] note, owned.
#[derive(Debug, Clone, PartialEq)]
struct Late {
    gap_offset: u64,
    gap_len: u64,
    arrived: u64,
    packets_late: u64,
}

/// Records events and checks the output contract on every call: Data never
/// empty, Gap never empty, never two Gaps in a row (except right after the
/// trailing Gap of a flush), offsets contiguous and equal to `next_offset()`,
/// held memory within the limits.
struct Harness {
    r: Reassembler,
    limits: ReassemblyLimits,
    raw: Vec<Ev>,
    late: Vec<Late>,
    pos: u64,
    /// The last event was a Gap, and it was the trailing Gap of a flush.
    after_flush_gap: bool,
    /// The last event was a Gap (`raw` may have been drained by `take`).
    last_was_gap: bool,
    /// The clock of the last call; every call is one more packet, `step` later.
    clock: PacketClock,
    step: f64,
}

struct Recorder<'h> {
    raw: &'h mut Vec<Ev>,
    late: &'h mut Vec<Late>,
    pos: &'h mut u64,
    after_flush_gap: &'h mut bool,
    last_was_gap: &'h mut bool,
}

impl Recorder<'_> {
    fn record(&mut self, e: StreamEvent<'_>) {
        match e {
            StreamEvent::Data(d) => {
                assert!(!d.is_empty(), "empty Data");
                *self.pos += d.len() as u64;
                self.raw.push(Ev::Data(d.to_vec()));
                *self.last_was_gap = false;
            }
            StreamEvent::Gap { offset, len } => {
                assert!(len > 0, "empty Gap");
                assert_eq!(offset, *self.pos, "Gap offset not contiguous");
                assert!(
                    !*self.last_was_gap || *self.after_flush_gap,
                    "two adjacent Gaps, the second {offset}+{len}"
                );
                *self.pos += len;
                self.raw.push(Ev::Gap { offset, len });
                *self.last_was_gap = true;
            }
            StreamEvent::LateForGap {
                gap_offset,
                gap_len,
                arrived,
                packets_late,
                seconds_late,
            } => {
                assert!(
                    arrived > 0 && arrived <= gap_len,
                    "arrived {arrived} of {gap_len}"
                );
                assert!(
                    gap_offset + gap_len <= *self.pos,
                    "late note for a gap not emitted"
                );
                assert!(seconds_late >= 0.0);
                self.late.push(Late {
                    gap_offset,
                    gap_len,
                    arrived,
                    packets_late,
                });
                return;
            }
        }
        *self.after_flush_gap = false;
    }
}

/// Limits with no grace window: an ACK-covered hole is a gap at once.
const NO_GRACE: ReassemblyLimits = ReassemblyLimits {
    max_buffered_bytes: DEFAULT_MAX_BUFFERED_BYTES,
    max_buffered_segments: DEFAULT_MAX_BUFFERED_SEGMENTS,
    late_packets: 0,
    late_seconds: 0.0,
};

impl Harness {
    fn new() -> Self {
        Self::with_limits(ReassemblyLimits::default())
    }

    /// ACK-covered holes become gaps at once (tests about other policies).
    fn no_grace() -> Self {
        Self::with_limits(NO_GRACE)
    }

    fn with_limits(limits: ReassemblyLimits) -> Self {
        Self {
            r: Reassembler::new(limits),
            limits,
            raw: Vec::new(),
            late: Vec::new(),
            pos: 0,
            after_flush_gap: false,
            last_was_gap: false,
            clock: PacketClock::default(),
            step: 0.001,
        }
    }

    fn check(&self) {
        assert_eq!(self.pos, self.r.next_offset(), "next_offset drift");
        assert!(self.r.buffered_bytes() <= self.limits.max_buffered_bytes);
        assert!(self.r.buffered_segments() <= self.limits.max_buffered_segments);
    }

    /// The clock of the next packet.
    fn tick_clock(&mut self) -> PacketClock {
        self.clock.packets += 1;
        self.clock.time += self.step;
        self.clock
    }

    /// Splits the borrow: the reassembler, and a recorder for its events.
    fn parts(&mut self) -> (&mut Reassembler, Recorder<'_>) {
        let Self {
            r,
            raw,
            late,
            pos,
            after_flush_gap,
            last_was_gap,
            ..
        } = self;
        let rec = Recorder {
            raw,
            late,
            pos,
            after_flush_gap,
            last_was_gap,
        };
        (r, rec)
    }

    fn seg_flags(&mut self, seq: u32, flags: SegmentFlags, payload: &[u8]) {
        let now = self.tick_clock();
        let (r, mut rec) = self.parts();
        r.on_segment(seq, flags, payload, now, &mut |e| rec.record(e));
        self.check();
    }

    fn seg(&mut self, seq: u32, payload: &[u8]) {
        self.seg_flags(seq, NONE, payload);
    }

    fn ack(&mut self, ack: u32) {
        let now = self.tick_clock();
        let (r, mut rec) = self.parts();
        r.on_peer_ack(ack, now, &mut |e| rec.record(e));
        self.check();
    }

    /// `packets` packets that are neither segments nor ACKs of this
    /// direction, `seconds` apart in all.
    fn wait(&mut self, packets: u64, seconds: f64) {
        let start = self.clock.time;
        for i in 1..=packets.max(1) {
            let mut now = self.tick_clock();
            now.time = start + seconds * i as f64 / packets.max(1) as f64;
            self.clock = now;
            let (r, mut rec) = self.parts();
            r.tick(now, &mut |e| rec.record(e));
            self.check();
        }
    }

    /// A moment `seconds` later with no packet (an idle sweep).
    fn quiet(&mut self, seconds: f64) {
        self.clock.time += seconds;
        let now = self.clock;
        let (r, mut rec) = self.parts();
        r.tick(now, &mut |e| rec.record(e));
        self.check();
    }

    /// Long enough for any hole covered so far to go stale.
    fn wait_grace(&mut self) {
        self.wait(self.limits.late_packets, self.limits.late_seconds);
    }

    fn flush(&mut self) {
        let (r, mut rec) = self.parts();
        r.flush(&mut |e| rec.record(e));
        self.after_flush_gap = self.last_was_gap;
        self.check();
    }

    /// Events since the last call, consecutive Data merged.
    fn take(&mut self) -> Vec<Ev> {
        normalize(std::mem::take(&mut self.raw))
    }

    fn stats(&self) -> ReassemblyStats {
        self.r.stats()
    }
}

fn normalize(raw: Vec<Ev>) -> Vec<Ev> {
    let mut out: Vec<Ev> = Vec::new();
    for e in raw {
        match (out.last_mut(), e) {
            (Some(Ev::Data(acc)), Ev::Data(d)) => acc.extend_from_slice(&d),
            (_, e) => out.push(e),
        }
    }
    out
}

// ---------------------------------------------------------------- unit tests

#[test]
fn in_order_is_zero_copy() {
    let mut r = Reassembler::default();
    let segs: [&[u8]; 3] = [b"GET / HTTP/1.1\r\n", b"Host: x\r\n", b"\r\n"];
    r.on_segment(1000, SYN, &[], PacketClock::default(), &mut |e| {
        panic!("SYN emitted {e:?}")
    });
    let mut seq = 1001u32;
    for p in segs {
        let mut n = 0;
        r.on_segment(seq, NONE, p, PacketClock::default(), &mut |e| match e {
            // Same address and length: the caller's slice, not a copy.
            StreamEvent::Data(d) => {
                assert!(std::ptr::eq(d, p));
                n += 1;
            }
            other => panic!("unexpected {other:?}"),
        });
        assert_eq!(n, 1);
        seq += p.len() as u32;
    }
    assert_eq!(r.next_offset(), 27);
    assert_eq!(r.buffered_bytes(), 0);
    let s = r.stats();
    assert_eq!(s.segments, 4);
    assert_eq!(s.out_of_order_segments, 0);
    assert_eq!(s.retransmitted_segments, 0);
}

#[test]
fn reversed_order() {
    let input = stream(100);
    let mut h = Harness::new();
    h.seg_flags(41, SYN, &[]);
    for i in (1..10).rev() {
        h.seg(42 + i as u32 * 10, &input[i * 10..i * 10 + 10]);
        assert_eq!(h.take(), vec![], "delivered before the hole filled");
        assert_eq!(h.r.buffered_bytes(), (10 - i) * 10);
    }
    h.seg(42, &input[..10]);
    assert_eq!(h.take(), vec![data(&input)]);
    assert_eq!(h.r.buffered_bytes(), 0);
    assert_eq!(h.r.buffered_segments(), 0);
    assert_eq!(h.stats().out_of_order_segments, 9);
    assert_eq!(h.stats().gaps, 0);
}

#[test]
fn duplicates_of_every_segment() {
    let input = stream(300);
    let mut h = Harness::new();
    h.seg_flags(7, SYN, &[]);
    h.seg_flags(7, SYN, &[]); // SYN retransmission: harmless
    // Every segment twice, in order...
    for i in 0..10 {
        let p = &input[i * 30..i * 30 + 30];
        h.seg(8 + i as u32 * 30, p);
        h.seg(8 + i as u32 * 30, p);
    }
    // ...then the whole stream replayed out of order, twice.
    for _ in 0..2 {
        for i in [9, 3, 0, 5] {
            h.seg(8 + i as u32 * 30, &input[i * 30..i * 30 + 30]);
        }
    }
    assert_eq!(h.take(), vec![data(&input)]);
    let s = h.stats();
    assert_eq!(s.retransmitted_segments, 18);
    assert_eq!(s.retransmitted_bytes, 18 * 30);
    assert_eq!(s.overlap_conflicts, 0);
    assert_eq!(s.out_of_order_segments, 0);

    // Duplicates of a held segment are dropped too.
    h.seg(8 + 400, b"later");
    h.seg(8 + 400, b"later");
    assert_eq!(h.r.buffered_bytes(), 5);
    assert_eq!(h.r.buffered_segments(), 1);
    assert_eq!(h.stats().retransmitted_segments, 19);
}

#[test]
fn overlaps_with_identical_bytes() {
    let input = stream(100);
    let mut h = Harness::new();
    h.seg(0, &input[0..10]); // mid-stream anchor at seq 0
    h.seg(5, &input[5..20]); // overlaps delivered [5,10)
    assert_eq!(h.stats().retransmitted_bytes, 5);
    h.seg(40, &input[40..50]); // held
    h.seg(60, &input[60..70]); // held
    h.seg(30, &input[30..65]); // spans held [40,50) and [60,65), fills [30,40), [50,60)
    assert_eq!(h.stats().retransmitted_bytes, 5 + 15);
    assert_eq!(h.r.buffered_bytes(), 40); // [30, 70)
    h.seg(45, &input[45..47]); // inside held: a pure retransmission
    assert_eq!(h.stats().retransmitted_segments, 1);
    h.seg(15, &input[15..35]); // overlaps delivered and held; fills the hole
    assert_eq!(h.take(), vec![data(&input[..70])]);
    h.seg(0, &input[0..100]); // everything re-sent in one segment
    assert_eq!(h.take(), vec![data(&input[70..])]);
    let s = h.stats();
    assert_eq!(s.overlap_conflicts, 0);
    assert_eq!(s.retransmitted_bytes, 5 + 15 + 2 + 10 + 70);
    assert_eq!(h.r.next_offset(), 100);
}

#[test]
fn overlaps_with_different_bytes_first_wins() {
    let mut h = Harness::new();
    h.seg(100, &[0x00; 5]); // offsets [0,5)
    h.seg(110, &[0xaa; 10]); // held [10,20)
    h.seg(105, &[0xbb; 20]); // [5,25): [10,20) overlaps and differs
    assert_eq!(h.stats().overlap_conflicts, 10);
    let mut want = vec![0x00; 5];
    want.extend([0xbb; 5]);
    want.extend([0xaa; 10]); // the first-seen bytes are kept
    want.extend([0xbb; 5]);
    assert_eq!(h.take(), vec![Ev::Data(want)]);

    // Only differing bytes count: 3 of 6 differ.
    h.seg(140, &[1, 2, 3, 4, 5, 6]);
    h.seg(140, &[1, 0, 3, 0, 5, 0]);
    assert_eq!(h.stats().overlap_conflicts, 13);
    // Delivered bytes are not kept, so a conflicting re-send of them is
    // trimmed without being counted.
    h.seg(100, &[0xff; 25]);
    assert_eq!(h.stats().overlap_conflicts, 13);
    assert_eq!(h.take(), vec![]);
}

#[test]
fn keepalive_probes_ignored_and_counted() {
    let mut h = Harness::new();
    h.seg_flags(999, SYN, &[]);
    h.seg(1000, b"0123456789");
    h.take();
    h.seg(1009, &[]); // zero-length probe at SND.NXT-1 (Linux)
    h.seg(1009, &[0x00]); // one garbage byte at SND.NXT-1 (Windows)
    assert_eq!(h.take(), vec![], "a probe must not deliver anything");
    assert_eq!(h.stats().keepalive_probes, 2);
    h.seg(1010, &[]); // a pure ACK: not a probe
    assert_eq!(h.stats().keepalive_probes, 2);
    h.seg(1010, b"ab");
    assert_eq!(h.take(), vec![data(b"ab")]);
    // With held data the probe sits below the highest byte seen.
    h.seg(1020, b"xyz");
    h.seg(1022, &[0x00]);
    h.seg(1022, &[]);
    assert_eq!(h.stats().keepalive_probes, 4);
    assert_eq!(h.stats().overlap_conflicts, 0);
    assert_eq!(h.r.buffered_bytes(), 3);
    assert_eq!(h.stats().retransmitted_segments, 0);
}

#[test]
fn wraparound_with_syn() {
    let input = stream(1024);
    let isn = 0xFFFF_FF00u32;
    // In order across zero.
    let mut h = Harness::new();
    h.seg_flags(isn, SYN, &[]);
    for i in 0..16 {
        let seq = isn.wrapping_add(1 + i * 64);
        h.seg(seq, &input[i as usize * 64..][..64]);
    }
    assert_eq!(h.take(), vec![data(&input)]);
    assert_eq!(h.r.isn(), Some(isn));

    // Shuffled across zero, with a hole straddling zero closed by an ACK that
    // itself has wrapped.
    let mut h = Harness::new();
    h.seg_flags(isn, SYN, &[]);
    for i in [15u32, 2, 9, 5, 1, 0, 14, 4] {
        let seq = isn.wrapping_add(1 + i * 64);
        h.seg(seq, &input[i as usize * 64..][..64]);
    }
    // Offsets [192, 256) (seq 0xFFFF_FFC1..=0) are missing.
    assert_eq!(h.take(), vec![data(&input[..192])]);
    h.ack(isn.wrapping_add(1 + 256)); // = 1: the ACK has wrapped too
    assert_eq!(h.take(), vec![], "waits for the hole's late data");
    h.wait_grace();
    assert_eq!(
        h.take(),
        vec![gap(192, 64), data(&input[256..384])],
        "hole across zero"
    );
    for i in [6u32, 7, 8, 10, 11, 12, 13] {
        let seq = isn.wrapping_add(1 + i * 64);
        h.seg(seq, &input[i as usize * 64..][..64]);
    }
    assert_eq!(h.take(), vec![data(&input[384..])]);
    assert_eq!(h.r.next_offset(), 1024);
}

#[test]
fn wraparound_mid_stream() {
    let input = stream(64);
    let mut h = Harness::new();
    h.seg(0xFFFF_FFF0, &input[..8]);
    h.seg(0x0000_0008, &input[24..]); // far side of zero, held
    h.seg(0xFFFF_FFF8, &input[8..24]); // straddles zero, fills the hole
    assert_eq!(h.take(), vec![data(&input)]);
    assert_eq!(h.r.isn(), None);
}

#[test]
fn syn_with_data() {
    let mut h = Harness::new();
    h.seg_flags(5000, SYN, b"hello"); // TCP Fast Open style
    assert_eq!(h.take(), vec![data(b"hello")]);
    h.seg(5006, b" world");
    assert_eq!(h.take(), vec![data(b" world")]);
    h.seg_flags(5000, SYN, b"hello"); // retransmitted SYN with its data
    assert_eq!(h.take(), vec![]);
    assert_eq!(h.stats().retransmitted_segments, 1);
    assert_eq!(h.r.isn(), Some(5000));
    assert_eq!(h.r.next_offset(), 11);
}

#[test]
fn syn_retransmission_after_the_stream_moved_on() {
    let mut h = Harness::no_grace();
    h.seg_flags(0x8000_0000, SYN, &[]);
    // Pretend 3 GiB went by: gaps via ACKs in 1 GiB steps.
    let mut next = 0x8000_0001u32;
    for _ in 0..3 {
        next = next.wrapping_add(1 << 30);
        h.seg(next, b"x");
        h.ack(next);
        next = next.wrapping_add(1);
    }
    assert_eq!(h.r.next_offset(), 3 * (1 << 30) + 3);
    h.seg_flags(0x8000_0000, SYN, &[]);
    h.seg_flags(0x8000_0000, SYN, b"a"); // data at offset 0, in the first gap
    let s = h.stats();
    assert_eq!(s.implausible_segments, 0);
    assert_eq!((s.late_after_gap_segments, s.late_after_gap_bytes), (1, 1));
    assert_eq!(h.late[0].gap_offset, 0);
}

#[test]
fn mid_stream_start() {
    let mut h = Harness::new();
    h.seg(1234, &[]); // a pure ACK does not anchor the stream
    h.ack(99); // nor does the peer's ACK before anything was seen
    h.seg(5000, b"abcdef");
    assert_eq!(h.take(), vec![data(b"abcdef")]);
    assert_eq!(h.r.next_offset(), 6);
    // A reordered segment from before the anchor cannot be placed.
    h.seg(4990, b"0123456789");
    assert_eq!(h.take(), vec![]);
    assert_eq!(h.stats().retransmitted_segments, 1);
    // One that reaches past the anchor contributes only its new bytes.
    h.seg(4998, b"89abcdefgh");
    assert_eq!(h.take(), vec![data(b"gh")]);
    assert_eq!(h.r.isn(), None);
    assert_eq!(h.stats().gaps, 0);
}

#[test]
fn late_syn_records_isn_of_a_stream_anchored_on_data() {
    let mut h = Harness::new();
    h.seg(101, b"abc");
    h.seg_flags(100, SYN, &[]);
    assert_eq!(h.r.isn(), Some(100));
    assert_eq!(h.take(), vec![data(b"abc")]);
}

#[test]
fn hole_filled_later() {
    let input = stream(30);
    let mut h = Harness::new();
    h.seg_flags(0, SYN, &[]);
    h.seg(1, &input[..10]);
    h.seg(21, &input[20..]);
    assert_eq!(h.take(), vec![data(&input[..10])]);
    assert_eq!(h.r.buffered_bytes(), 10);
    h.seg(11, &input[10..20]);
    assert_eq!(h.take(), vec![data(&input[10..])]);
    assert_eq!(h.r.buffered_bytes(), 0);
    assert_eq!(h.stats().gaps, 0);
    h.flush();
    assert_eq!(h.take(), vec![]);
}

#[test]
fn hole_declared_by_peer_ack_once_stale() {
    let input = stream(60);
    let mut h = Harness::new();
    h.seg_flags(999, SYN, &[]);
    h.seg(1000, &input[..10]);
    h.seg(1020, &input[20..30]);
    h.seg(1040, &input[40..50]);
    h.take();
    h.ack(1000); // behind: nothing
    h.ack(1015); // covers only part of the hole: it may still arrive
    h.wait_grace();
    assert_eq!(h.take(), vec![], "a partly covered hole is not a gap");
    h.ack(1020); // covers the whole hole [10, 20): stale only after the grace window
    assert!(h.r.awaiting_late_data());
    // One packet short of the window, then the time short of it: still waiting.
    h.wait(DEFAULT_LATE_PACKETS - 1, 1.0);
    assert_eq!(h.take(), vec![]);
    let mut h2 = Harness::new();
    h2.seg(1000, &input[..10]);
    h2.seg(1020, &input[20..30]);
    h2.ack(1020);
    h2.wait(1000, DEFAULT_LATE_SECONDS * 0.9);
    assert_eq!(
        h2.take(),
        vec![data(&input[..10])],
        "time short of the window"
    );
    h.wait(1, 0.0);
    assert_eq!(h.take(), vec![gap(10, 10), data(&input[20..30])]);
    h.ack(1045); // covers [30, 40) and more
    h.wait_grace();
    assert_eq!(h.take(), vec![gap(30, 10), data(&input[40..50])]);
    let s = h.stats();
    assert_eq!(
        (s.gaps, s.gap_bytes, s.limit_gaps, s.grace_cut_gaps),
        (2, 20, 0, 0)
    );

    // The lost bytes turning up after all are noted against their gap, not
    // delivered, and not counted as retransmissions.
    h.seg(1010, &input[10..15]);
    h.seg(1010, &input[10..15]); // a repeat adds nothing
    h.seg(1013, &input[13..20]);
    assert_eq!(h.take(), vec![]);
    let late: Vec<(u64, u64, u64)> = h
        .late
        .iter()
        .map(|l| (l.gap_offset, l.gap_len, l.arrived))
        .collect();
    assert_eq!(late, [(10, 10, 5), (10, 10, 10)]);
    assert!(h.late[0].packets_late > DEFAULT_LATE_PACKETS);
    let s = h.stats();
    assert_eq!((s.late_after_gap_segments, s.late_after_gap_bytes), (2, 10));
    assert_eq!(
        (s.retransmitted_segments, s.retransmitted_bytes),
        (1, 5 + 2)
    );

    // A segment the ACK passes (the capture lost [50,55)) waits too, then is
    // delivered after the gap.
    h.ack(1060);
    h.seg(1055, &input[55..60]);
    assert_eq!(h.take(), vec![]);
    h.wait_grace();
    assert_eq!(h.take(), vec![gap(50, 5), data(&input[55..60])]);
    assert_eq!(h.r.buffered_bytes(), 0);
    assert!(!h.r.awaiting_late_data());
}

#[test]
fn a_quiet_connection_does_not_wait_for_packets() {
    let input = stream(30);
    let mut h = Harness::new();
    h.seg(0, &input[..10]);
    h.seg(20, &input[20..]);
    h.ack(30);
    // Packets keep coming, but not enough of them: still waiting, however long.
    h.wait(3, 5.0);
    assert_eq!(h.take(), vec![data(&input[..10])]);
    // Then nothing for less than the window: waiting.
    h.quiet(DEFAULT_LATE_SECONDS * 0.5);
    assert_eq!(h.take(), vec![]);
    // Quiet for the whole window: the late data is not coming.
    h.quiet(DEFAULT_LATE_SECONDS * 0.6);
    assert_eq!(h.take(), vec![gap(10, 10), data(&input[20..])]);

    // A quiet spell right after the ACK also needs the time since the ACK.
    let mut h = Harness::new();
    h.seg(0, &input[..10]);
    h.seg(20, &input[20..]);
    h.ack(30);
    h.quiet(DEFAULT_LATE_SECONDS * 0.9);
    assert_eq!(h.take(), vec![data(&input[..10])]);
    h.quiet(DEFAULT_LATE_SECONDS * 0.2);
    assert_eq!(h.take(), vec![gap(10, 10), data(&input[20..])]);
}

#[test]
fn a_window_of_packets_only() {
    let limits = ReassemblyLimits {
        late_packets: 4,
        late_seconds: 0.0,
        ..ReassemblyLimits::default()
    };
    let input = stream(30);
    let mut h = Harness::with_limits(limits);
    h.step = 0.0; // a capture whose clock stands still
    h.seg(0, &input[..10]);
    h.seg(20, &input[20..]);
    h.ack(30);
    h.wait(3, 0.0);
    assert_eq!(h.take(), vec![data(&input[..10])]);
    h.wait(1, 0.0);
    assert_eq!(h.take(), vec![gap(10, 10), data(&input[20..])]);
}

#[test]
fn late_segment_after_its_ack_is_delivered_in_order() {
    let input = stream(40);
    let mut h = Harness::new();
    h.seg_flags(99, SYN, &[]);
    h.seg(100, &input[..10]);
    // The capture shows the peer's ACK of everything, then [20,40), then [10,20).
    h.ack(140);
    h.seg(120, &input[20..40]);
    h.wait(5, 0.01);
    assert_eq!(h.take(), vec![data(&input[..10])]);
    h.seg(110, &input[10..20]);
    assert_eq!(h.take(), vec![data(&input[10..])]);
    let s = h.stats();
    assert_eq!(s.gaps, 0);
    assert_eq!(s.late_after_ack_segments, 2);
    assert_eq!(s.out_of_order_segments, 1);
    assert!(h.late.is_empty());

    // The first data segment of a stream shown after its ACK: in order, late.
    let mut h = Harness::new();
    h.seg_flags(99, SYN, &[]);
    h.ack(110);
    h.seg(100, &input[..10]);
    assert_eq!(h.take(), vec![data(&input[..10])]);
    assert_eq!(h.stats().late_after_ack_segments, 1);
}

#[test]
fn the_first_bytes_after_a_syn_shown_late_wait_the_whole_window() {
    // The stream's first segment shown after its ACK and after the data that
    // follows it, on a slow clock (the packet count binds), with sequence
    // numbers crossing 2^31: it is used up to the last packet of the window,
    // and is a gap one packet later.
    let input = stream(40);
    let isn = 0x7fff_fff0u32;
    for (waited, used) in [
        (DEFAULT_LATE_PACKETS - 1, true),
        (DEFAULT_LATE_PACKETS, false),
    ] {
        let mut h = Harness::new();
        h.step = 0.05;
        h.seg_flags(isn, SYN, &[]);
        h.ack(isn.wrapping_add(41));
        h.seg(isn.wrapping_add(11), &input[10..]); // covered from here
        h.wait(waited, waited as f64 * 0.05);
        h.seg(isn.wrapping_add(1), &input[..10]);
        if used {
            assert_eq!(h.take(), vec![data(&input)]);
            assert_eq!(h.stats().gaps, 0);
            assert!(h.late.is_empty());
        } else {
            assert_eq!(h.take(), vec![gap(0, 10), data(&input[10..])]);
            assert_eq!(h.late.len(), 1);
            assert_eq!((h.late[0].gap_offset, h.late[0].arrived), (0, 10));
        }
    }
}

#[test]
fn a_late_segment_arriving_as_the_window_ends_is_used() {
    let input = stream(30);
    let mut h = Harness::new();
    h.seg(0, &input[..10]);
    h.seg(20, &input[20..]);
    h.ack(30);
    h.wait(DEFAULT_LATE_PACKETS - 2, DEFAULT_LATE_SECONDS);
    // This packet would make the hole stale; it fills it first.
    h.seg(10, &input[10..20]);
    assert_eq!(h.take(), vec![data(&input)]);
    assert_eq!(h.stats().gaps, 0);
}

#[test]
fn retransmissions_and_overlaps_of_delivered_data_around_late_data() {
    let input = stream(60);
    let mut h = Harness::new();
    h.seg(0, &input[..20]);
    h.seg(0, &input[..20]); // a retransmission of delivered bytes
    h.ack(60);
    h.seg(40, &input[40..60]); // waits for [20, 40)
    h.seg(10, &input[10..30]); // late, overlapping delivered [10, 20)
    assert_eq!(h.take(), vec![data(&input[..30])]);
    h.seg(25, &input[25..45]); // late, overlapping delivered and held bytes
    assert_eq!(h.take(), vec![data(&input[30..])]);
    let s = h.stats();
    assert_eq!(s.gaps, 0);
    assert_eq!(s.retransmitted_segments, 1);
    assert_eq!(s.retransmitted_bytes, 20 + 10 + 5 + 5);
    assert_eq!(s.overlap_conflicts, 0);
    assert_eq!(s.late_after_ack_segments, 3);
}

#[test]
fn fin_and_rst_after_a_hole() {
    let input = stream(30);
    // FIN after a hole: the FIN's position proves [10, 20) was sent. The stream
    // waits for it, and the flush declares it.
    let mut h = Harness::new();
    h.seg(0, &input[..10]);
    h.seg_flags(20, FIN, &input[20..]);
    h.ack(31);
    assert!(h.r.awaiting_late_data());
    h.seg(10, &input[10..20]); // late, but within the window
    assert_eq!(h.take(), vec![data(&input)]);
    assert!(h.r.fin_reached());
    assert!(!h.r.awaiting_late_data());

    let mut h = Harness::new();
    h.seg(0, &input[..10]);
    h.seg_flags(20, FIN, &input[20..]);
    h.flush();
    assert_eq!(
        h.take(),
        vec![data(&input[..10]), gap(10, 10), data(&input[20..])]
    );
    assert!(h.r.fin_reached());
    // Its bytes arriving after the flush are noted.
    h.seg(10, &input[10..20]);
    assert_eq!(h.late.len(), 1);

    // A bare FIN whose data before it never came: awaiting until the flush.
    let mut h = Harness::new();
    h.seg(0, &input[..10]);
    h.seg_flags(30, FIN, &[]);
    assert!(h.r.awaiting_late_data());
    h.wait_grace();
    assert_eq!(h.take(), vec![data(&input[..10])]);
    h.flush();
    assert_eq!(h.take(), vec![gap(10, 20)]);

    // RST after a hole: its payload is not data, and the hole stays a hole
    // (the flush at the end of the connection declares it).
    let mut h = Harness::new();
    h.seg(0, &input[..10]);
    h.seg(20, &input[20..]);
    h.seg_flags(30, RST, b"reset");
    assert_eq!(h.take(), vec![data(&input[..10])]);
    h.flush();
    assert_eq!(h.take(), vec![gap(10, 10), data(&input[20..])]);
}

#[test]
fn grace_cut_short_by_the_byte_limit() {
    let limits = ReassemblyLimits {
        max_buffered_bytes: 20,
        ..ReassemblyLimits::default()
    };
    let input = stream(60);
    let mut h = Harness::with_limits(limits);
    h.seg(0, &input[..10]);
    h.ack(60);
    h.seg(20, &input[20..40]); // held: 20 bytes
    h.seg(40, &input[40..50]); // over the cap: the acknowledged hole is given up
    assert_eq!(
        h.take(),
        vec![data(&input[..10]), gap(10, 10), data(&input[20..50])]
    );
    let s = h.stats();
    assert_eq!((s.gaps, s.grace_cut_gaps, s.limit_gaps), (1, 1, 0));
    // And its bytes arriving afterwards are noted against it.
    h.seg(10, &input[10..20]);
    assert_eq!(h.late.len(), 1);
    assert_eq!(h.late[0].arrived, 10);
}

#[test]
fn remembered_gaps_are_bounded() {
    let input = stream(2000);
    let mut h = Harness::no_grace();
    h.seg(0, &input[..10]);
    // 20 holes of 10 bytes, each declared at once.
    for i in 0..20usize {
        let lo = 20 + i * 20;
        h.ack(lo as u32 + 10);
        h.seg(lo as u32, &input[lo..lo + 10]);
    }
    assert_eq!(h.stats().gaps, 20);
    // The bytes of every hole arrive: only the last MAX_REMEMBERED_GAPS are
    // recognised, the older ones count as retransmissions.
    for i in 0..20usize {
        let lo = 10 + i * 20;
        h.seg(lo as u32, &input[lo..lo + 10]);
    }
    assert_eq!(h.late.len(), MAX_REMEMBERED_GAPS);
    let s = h.stats();
    assert_eq!(s.late_after_gap_segments, MAX_REMEMBERED_GAPS as u64);
    assert_eq!(s.retransmitted_segments, 20 - MAX_REMEMBERED_GAPS as u64);
    // Many pieces of one gap: tracked up to a bound, never over-counted.
    let mut h = Harness::no_grace();
    h.seg(0, &input[..10]);
    h.ack(1010);
    h.seg(1010, &input[1010..1020]);
    for i in (0..50usize).rev() {
        let lo = 10 + i * 20;
        h.seg(lo as u32, &input[lo..lo + 10]);
        h.seg(lo as u32, &input[lo..lo + 10]);
    }
    let arrived = h.late.last().unwrap().arrived;
    assert!((80..=1000).contains(&arrived), "{arrived}");
    assert!(h.late.iter().all(|l| l.gap_len == 1000));
}

#[test]
fn ack_of_fin_is_not_a_gap() {
    let mut h = Harness::new();
    h.seg_flags(10, SYN, &[]);
    h.seg_flags(11, FIN, b"bye");
    assert!(h.r.fin_reached());
    h.ack(15); // acknowledges the FIN (14) too
    h.flush();
    assert_eq!(h.take(), vec![data(b"bye")]);
    assert_eq!(h.stats().gaps, 0);
    assert_eq!(h.r.fin_offset(), Some(3));
}

#[test]
fn trailing_acked_bytes_reported_at_flush() {
    // FIN seen: everything before it was sent.
    let mut h = Harness::new();
    h.seg_flags(10, SYN, &[]);
    h.seg(11, b"abc");
    h.seg_flags(21, FIN, &[]);
    assert!(!h.r.fin_reached());
    h.flush();
    assert_eq!(h.take(), vec![data(b"abc"), gap(3, 7)]);
    assert!(h.r.fin_reached());

    // No FIN seen: up to one below the ACK (which may be a lost FIN's).
    let mut h = Harness::new();
    h.seg_flags(10, SYN, &[]);
    h.seg(11, b"abc");
    h.ack(22);
    assert_eq!(h.take(), vec![data(b"abc")]);
    h.flush();
    assert_eq!(h.take(), vec![gap(3, 7)]);
    h.flush(); // idempotent
    assert_eq!(h.take(), vec![]);

    // A lost FIN alone is not reported as data loss.
    let mut h = Harness::new();
    h.seg_flags(10, SYN, &[]);
    h.seg(11, b"abc");
    h.ack(15);
    h.flush();
    assert_eq!(h.take(), vec![data(b"abc")]);
}

#[test]
fn hole_declared_by_byte_limit() {
    let limits = ReassemblyLimits {
        max_buffered_bytes: 30,
        max_buffered_segments: 100,
        ..ReassemblyLimits::default()
    };
    let input = stream(100);
    let mut h = Harness::with_limits(limits);
    h.seg(0, &input[..10]);
    for lo in [20usize, 40, 60] {
        h.seg(lo as u32, &input[lo..lo + 10]);
    }
    assert_eq!(h.r.buffered_bytes(), 30);
    assert_eq!(h.take(), vec![data(&input[..10])]);
    h.seg(80, &input[80..90]); // 40 > 30: skip the earliest hole
    assert_eq!(h.take(), vec![gap(10, 10), data(&input[20..30])]);
    assert_eq!(h.r.buffered_bytes(), 30);
    // A segment before all held data that does not fit: the earliest hole is
    // the one before it; it is delivered uncopied, with what follows it.
    h.seg(35, &input[35..40]);
    assert_eq!(h.take(), vec![gap(30, 5), data(&input[35..50])]);
    assert_eq!(h.r.buffered_bytes(), 20);
    let s = h.stats();
    assert_eq!(
        (s.gaps, s.gap_bytes, s.dropped_over_limit_bytes),
        (2, 15, 0)
    );
    // Both holes were given up because of the cap, and are counted as such.
    assert_eq!((s.limit_gaps, s.limit_gap_bytes), (2, 15));
    // A hole the peer's ACK declares is capture loss, not the limit.
    h.seg(70, &input[70..75]);
    h.ack(60);
    h.wait_grace();
    let s = h.stats();
    assert_eq!((s.gaps, s.limit_gaps), (3, 2));
}

#[test]
fn hole_declared_by_segment_limit() {
    let limits = ReassemblyLimits {
        max_buffered_bytes: 1 << 20,
        max_buffered_segments: 2,
        ..ReassemblyLimits::default()
    };
    let input = stream(100);
    let mut h = Harness::with_limits(limits);
    h.seg(0, &input[..10]);
    h.seg(20, &input[20..30]);
    h.seg(40, &input[40..50]);
    h.take();
    h.seg(60, &input[60..70]);
    assert_eq!(h.take(), vec![gap(10, 10), data(&input[20..30])]);
    assert_eq!(h.r.buffered_segments(), 2);
    // One segment spanning holes and held data, needing three more slots.
    h.seg(35, &input[35..75]);
    assert_eq!(h.take(), vec![gap(30, 5), data(&input[35..75])]);
    assert_eq!(h.r.buffered_segments(), 0);
    assert_eq!(h.stats().overlap_conflicts, 0);
}

#[test]
fn segment_larger_than_the_byte_limit() {
    let limits = ReassemblyLimits {
        max_buffered_bytes: 8,
        max_buffered_segments: 8,
        ..ReassemblyLimits::default()
    };
    let input = stream(64);
    let mut h = Harness::with_limits(limits);
    h.seg(0, &input[..4]);
    let big = &input[16..64];
    let mut events = Vec::new();
    h.r.on_segment(16, NONE, big, PacketClock::default(), &mut |e| match e {
        StreamEvent::Data(d) => {
            assert!(std::ptr::eq(d, big), "should be delivered uncopied");
            events.push(data(d));
        }
        StreamEvent::Gap { offset, len } => events.push(gap(offset, len)),
        late => panic!("{late:?}"),
    });
    assert_eq!(events, vec![gap(4, 12), data(big)]);
    assert_eq!(h.r.buffered_bytes(), 0);
}

#[test]
fn zero_limits_never_hold() {
    let limits = ReassemblyLimits {
        max_buffered_bytes: 0,
        max_buffered_segments: 0,
        ..ReassemblyLimits::default()
    };
    let input = stream(30);
    let mut h = Harness::with_limits(limits);
    h.seg(0, &input[..10]);
    h.seg(20, &input[20..]);
    h.seg(10, &input[10..20]);
    assert_eq!(
        h.take(),
        vec![data(&input[..10]), gap(10, 10), data(&input[20..])]
    );
}

#[test]
fn flush_with_holes() {
    let input = stream(80);
    let mut h = Harness::new();
    h.seg_flags(0xFFFF_FFFF, SYN, &[]); // data starts at seq 0
    h.seg(0, &input[..10]);
    h.seg(20, &input[20..30]);
    h.seg(50, &input[50..60]);
    h.seg(52, &input[52..58]); // duplicate inside held
    h.seg_flags(80, FIN, &[]);
    assert_eq!(h.take(), vec![data(&input[..10])]);
    assert!(!h.r.fin_reached());
    h.flush();
    assert_eq!(
        h.take(),
        vec![
            gap(10, 10),
            data(&input[20..30]),
            gap(30, 20),
            data(&input[50..60]),
            gap(60, 20),
        ]
    );
    assert!(h.r.fin_reached());
    assert_eq!(h.r.next_offset(), 80);
    assert_eq!(h.r.buffered_bytes(), 0);
    let s = h.stats();
    assert_eq!((s.gaps, s.gap_bytes), (3, 50));
}

#[test]
fn fin_reached_only_in_order() {
    let mut h = Harness::new();
    h.seg_flags(0, SYN, &[]);
    h.seg_flags(6, FIN, b"fgh"); // offsets [5, 8), FIN at 8
    assert!(!h.r.fin_reached());
    h.seg(1, b"abc");
    assert!(!h.r.fin_reached());
    h.seg(4, b"d"); // the hole is now [4, 5)
    h.seg(4, b"d");
    assert!(!h.r.fin_reached());
    // The FIN is re-sent alone: still one FIN position.
    h.seg_flags(9, FIN, &[]);
    assert_eq!(h.r.fin_offset(), Some(8));
    assert_eq!(h.take(), vec![data(b"abcd")]);
    h.seg(5, b"e");
    assert!(h.r.fin_reached());
    assert_eq!(h.take(), vec![data(b"efgh")]);
}

#[test]
fn rst_payload_and_pure_acks_are_not_stream_data() {
    let mut h = Harness::new();
    h.seg_flags(50, RST, b"reset by peer"); // does not anchor, delivers nothing
    for _ in 0..100 {
        h.seg(50, &[]);
    }
    assert_eq!(h.take(), vec![]);
    h.seg(60, b"data");
    h.seg_flags(64, RST, b"diagnostic");
    assert_eq!(h.take(), vec![data(b"data")]);
    let s = h.stats();
    assert_eq!(
        s,
        ReassemblyStats {
            segments: 103,
            ..ReassemblyStats::default()
        }
    );
}

#[test]
fn implausible_segments_are_dropped() {
    let mut h = Harness::new();
    h.seg_flags(0, SYN, &[]);
    h.seg(1, b"abc"); // next_offset 3, next seq 4
    h.seg(4 + (1 << 30) + 1, b"far"); // 1 GiB + 1 ahead
    h.seg(4u32.wrapping_sub((1 << 30) + 1), b"far"); // 1 GiB + 1 behind
    h.seg_flags(4 + 0x9000_0000, FIN, &[]); // a FIN out there is ignored too
    assert_eq!(h.r.buffered_bytes(), 0);
    assert_eq!(h.stats().implausible_segments, 3);
    assert_eq!(h.stats().implausible_bytes, 6);
    assert_eq!(h.r.fin_offset(), None);
    h.ack(4 + (1 << 30) + 1); // an implausible ACK is ignored
    h.flush();
    assert_eq!(h.take(), vec![data(b"abc")]);
    // Exactly 1 GiB ahead is still plausible: held.
    h.seg(4 + (1 << 30), b"edge");
    assert_eq!(h.r.buffered_bytes(), 4);
    assert_eq!(h.stats().implausible_segments, 3);
}

#[test]
fn resync_after_a_run_of_consistent_far_segments() {
    let mut h = Harness::new();
    h.seg_flags(0, SYN, &[]);
    h.seg(1, b"abc"); // next seq 4
    h.seg(10, b"held"); // offset 9, held
    let far: u32 = 4 + (1 << 30) + 16; // just implausible, and more so as it goes on
    // Interleaved garbage elsewhere and a plausible segment reset the run.
    for i in 0..7u32 {
        h.seg(far.wrapping_add(i * 10), b"0123456789");
    }
    // Also implausible (1 GiB + 16 behind) but 2 GiB - 32 from the run.
    h.seg(4u32.wrapping_sub((1 << 30) + 16), b"elsewhere");
    for i in 0..7u32 {
        h.seg(far.wrapping_add(i * 10), b"0123456789");
    }
    assert_eq!(h.stats().implausible_segments, 15);
    h.seg(4, b"d"); // plausible: resets the run
    assert_eq!(h.take(), vec![data(b"abcd")]);
    // Now 8 in a row, close to each other.
    for i in 0..7u32 {
        h.seg(far.wrapping_add(i * 10), b"0123456789");
    }
    assert_eq!(h.take(), vec![]);
    h.seg(far.wrapping_add(70), b"0123456789");
    // Offset of `far + 70`: next seq 5 is offset 4.
    let target = 4 + u64::from(far.wrapping_add(70).wrapping_sub(5));
    assert_eq!(
        h.take(),
        vec![
            gap(4, 5),
            data(b"held"),
            gap(13, target - 13),
            data(b"0123456789"),
        ]
    );
    assert_eq!(h.stats().implausible_segments, 22);
    // The stream goes on from there.
    h.seg(far.wrapping_add(80), b"!");
    assert_eq!(h.take(), vec![data(b"!")]);
}

/// Split-point test: the same bytes cut at every offset, in both orders, and
/// one byte at a time in reverse, give the same stream.
#[test]
fn every_split_point() {
    let input = stream(64);
    for isn in [0u32, 0xFFFF_FFE0, 0x7FFF_FFF0] {
        for cut in 1..64 {
            for reverse in [false, true] {
                let mut h = Harness::new();
                h.seg_flags(isn, SYN, &[]);
                let a = (isn.wrapping_add(1), &input[..cut]);
                let b = (isn.wrapping_add(1 + cut as u32), &input[cut..]);
                let order = if reverse { [b, a] } else { [a, b] };
                for (seq, p) in order {
                    h.seg(seq, p);
                }
                assert_eq!(h.take(), vec![data(&input)], "cut {cut} rev {reverse}");
            }
        }
        let mut h = Harness::new();
        h.seg_flags(isn, SYN, &[]);
        for i in (0..64).rev() {
            h.seg(isn.wrapping_add(1 + i as u32), &input[i..i + 1]);
        }
        assert_eq!(h.take(), vec![data(&input)]);
    }
}

// ---------------------------------------------------------------- properties

/// splitmix64: the scenario is derived from a seed proptest chooses (and shrinks).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

/// One captured segment of a scenario: bytes `[lo, hi)` of the input.
#[derive(Debug, Clone, Copy)]
struct Feed {
    lo: usize,
    hi: usize,
    flags: SegmentFlags,
    /// Index of the original segment this exactly re-sends, if any.
    primary: Option<usize>,
}

struct Scenario {
    /// The original cut of the input: `(lo, hi, dropped from the capture)`.
    primaries: Vec<(usize, usize, bool)>,
    /// What the capture shows, in capture order (the anchor first).
    feeds: Vec<Feed>,
    /// Sequence number of the SYN, or of offset 0 without SYN.
    isn: u32,
    syn: bool,
}

impl Scenario {
    fn seq_of(&self, offset: usize) -> u32 {
        let base = if self.syn {
            self.isn.wrapping_add(1)
        } else {
            self.isn
        };
        base.wrapping_add(offset as u32)
    }
}

/// Cuts `len` bytes into segments, drops `drop_percent` of them (never the
/// anchor), duplicates some, adds overlapping re-sends of bytes the capture
/// has (never bridging a dropped segment), a bare FIN at the end, and shuffles
/// everything after the anchor.
fn scenario(len: usize, isn: u32, syn: bool, seed: u64, drop_percent: usize) -> Scenario {
    let mut rng = Rng(seed);
    let mut primaries = Vec::new();
    let mut pos = 0;
    while pos < len {
        let size = if rng.chance(30) {
            1 + rng.below(8)
        } else {
            1 + rng.below(1500)
        };
        let hi = (pos + size).min(len);
        primaries.push((pos, hi, rng.chance(drop_percent)));
        pos = hi;
    }
    let syn_carries_data = syn && !primaries.is_empty() && rng.chance(50);
    let anchor_is_primary = !primaries.is_empty() && (syn_carries_data || !syn);
    if anchor_is_primary {
        primaries[0].2 = false;
    }
    let fin = Feed {
        lo: len,
        hi: len,
        flags: FIN,
        primary: None,
    };
    let mut rest = Vec::new();
    for (i, &(lo, hi, dropped)) in primaries.iter().enumerate() {
        if dropped || (anchor_is_primary && i == 0) {
            continue;
        }
        let feed = Feed {
            lo,
            hi,
            flags: NONE,
            primary: Some(i),
        };
        rest.push(feed);
        if rng.chance(25) {
            rest.push(feed);
        }
    }
    if anchor_is_primary && rng.chance(25) {
        let (lo, hi, _) = primaries[0];
        rest.push(Feed {
            lo,
            hi,
            flags: NONE,
            primary: Some(0),
        });
    }
    // Overlapping re-sends inside runs of kept segments.
    if !primaries.is_empty() {
        for _ in 0..rng.below(len / 500 + 3) {
            let i = rng.below(primaries.len());
            if primaries[i].2 {
                continue;
            }
            let (mut a, mut b) = (i, i);
            while a > 0 && !primaries[a - 1].2 {
                a -= 1;
            }
            while b + 1 < primaries.len() && !primaries[b + 1].2 {
                b += 1;
            }
            let (run_lo, run_hi) = (primaries[a].0, primaries[b].1);
            let lo = run_lo + rng.below(run_hi - run_lo);
            let hi = lo + 1 + rng.below((run_hi - lo).min(3000));
            rest.push(Feed {
                lo,
                hi,
                flags: NONE,
                primary: None,
            });
        }
    }
    let mut feeds = Vec::new();
    if syn {
        let hi = if syn_carries_data { primaries[0].1 } else { 0 };
        feeds.push(Feed {
            lo: 0,
            hi,
            flags: SYN,
            primary: syn_carries_data.then_some(0),
        });
        rest.push(fin);
    } else if anchor_is_primary {
        let (lo, hi, _) = primaries[0];
        feeds.push(Feed {
            lo,
            hi,
            flags: NONE,
            primary: Some(0),
        });
        rest.push(fin);
    } else {
        feeds.push(fin); // empty stream, mid-stream: the FIN anchors it
    }
    for i in (1..rest.len()).rev() {
        let j = rng.below(i + 1);
        rest.swap(i, j);
    }
    feeds.extend(rest);
    Scenario {
        primaries,
        feeds,
        isn,
        syn,
    }
}

/// Feeds a scenario (with realistic peer ACKs if `acks`: never beyond what the
/// capture has fully seen or lost for good), flushes, and returns the
/// normalized output and the final reassembler.
fn run(sc: &Scenario, input: &[u8], limits: ReassemblyLimits, acks: bool, seed: u64) -> Harness {
    let mut rng = Rng(seed ^ 0xA5A5);
    let mut h = Harness::with_limits(limits);
    let mut seen = vec![false; sc.primaries.len()];
    let mut fin_fed = false;
    let mut prefix_idx = 0; // primaries [0, prefix_idx) are seen or dropped
    for f in &sc.feeds {
        let seq = if f.flags.syn { sc.isn } else { sc.seq_of(f.lo) };
        h.seg_flags(seq, f.flags, &input[f.lo..f.hi]);
        if let Some(i) = f.primary {
            seen[i] = true;
        }
        fin_fed |= f.flags.fin;
        if acks && rng.chance(30) {
            while prefix_idx < sc.primaries.len()
                && (seen[prefix_idx] || sc.primaries[prefix_idx].2)
            {
                prefix_idx += 1;
            }
            let prefix_end = sc.primaries.get(prefix_idx).map_or(input.len(), |p| p.0);
            let mut ack = rng.below(prefix_end + 1);
            if prefix_end == input.len() && fin_fed && rng.chance(50) {
                ack = input.len() + 1; // the ACK of the FIN
            }
            h.ack(sc.seq_of(ack));
        }
    }
    h.flush();
    h
}

/// The expected output: kept segments as data, dropped runs as one gap each.
fn expected(sc: &Scenario, input: &[u8]) -> Vec<Ev> {
    let mut raw = Vec::new();
    for &(lo, hi, dropped) in &sc.primaries {
        if dropped {
            match raw.last_mut() {
                Some(Ev::Gap { len, .. }) => *len += (hi - lo) as u64,
                _ => raw.push(gap(lo as u64, (hi - lo) as u64)),
            }
        } else {
            raw.push(data(&input[lo..hi]));
        }
    }
    normalize(raw)
}

fn isn_strategy() -> impl Strategy<Value = u32> {
    prop_oneof![
        any::<u32>(),
        (0u32..30_000).prop_map(|d| u32::MAX - d),
        (0u32..30_000).prop_map(|d| 0x8000_0000 - d),
    ]
}

const LARGE: ReassemblyLimits = ReassemblyLimits {
    max_buffered_bytes: 1 << 30,
    max_buffered_segments: 1 << 20,
    late_packets: DEFAULT_LATE_PACKETS,
    late_seconds: DEFAULT_LATE_SECONDS,
};

proptest! {
    /// Shuffled, duplicated and overlapping segments reassemble to the input,
    /// with no gap, for any ISN (wraparound included), with or without SYN.
    #[test]
    fn shuffled_segments_reassemble_exactly(
        input in proptest::collection::vec(any::<u8>(), 0..20_000),
        isn in isn_strategy(),
        syn in any::<bool>(),
        acks in any::<bool>(),
        seed in any::<u64>(),
    ) {
        let sc = scenario(input.len(), isn, syn, seed, 0);
        let mut h = run(&sc, &input, LARGE, acks, seed);
        let want = if input.is_empty() { vec![] } else { vec![data(&input)] };
        prop_assert_eq!(h.take(), want);
        let s = h.stats();
        prop_assert_eq!(s.gaps, 0);
        prop_assert_eq!(s.overlap_conflicts, 0);
        prop_assert_eq!(s.implausible_segments, 0);
        prop_assert_eq!(h.r.next_offset(), input.len() as u64);
        prop_assert_eq!(h.r.buffered_bytes(), 0);
        prop_assert!(h.r.fin_reached());
    }

    /// Segments the capture lost come out as Gaps of exactly their ranges
    /// (adjacent losses merged), whether closed by ACKs or by the flush.
    #[test]
    fn dropped_segments_become_exact_gaps(
        input in proptest::collection::vec(any::<u8>(), 1..20_000),
        isn in isn_strategy(),
        syn in any::<bool>(),
        acks in any::<bool>(),
        drop_percent in 5usize..60,
        seed in any::<u64>(),
    ) {
        let sc = scenario(input.len(), isn, syn, seed, drop_percent);
        let mut h = run(&sc, &input, LARGE, acks, seed);
        let want = expected(&sc, &input);
        let gaps = want.iter().filter(|e| matches!(e, Ev::Gap { .. })).count() as u64;
        prop_assert_eq!(h.take(), want);
        prop_assert_eq!(h.stats().gaps, gaps);
        prop_assert_eq!(h.r.next_offset(), input.len() as u64);
        prop_assert!(h.r.fin_reached());
    }

    /// With tiny caps, holes get skipped early, but every delivered byte is the
    /// input's byte at that offset, memory stays within the caps (checked on
    /// every call by the harness) and the stream ends exactly at the FIN.
    #[test]
    fn tiny_limits_stay_consistent(
        input in proptest::collection::vec(any::<u8>(), 1..8_000),
        isn in isn_strategy(),
        syn in any::<bool>(),
        acks in any::<bool>(),
        drop_percent in 0usize..40,
        max_bytes in 0usize..3_000,
        max_segments in 0usize..6,
        seed in any::<u64>(),
    ) {
        let sc = scenario(input.len(), isn, syn, seed, drop_percent);
        let limits = ReassemblyLimits { max_buffered_bytes: max_bytes, max_buffered_segments: max_segments, ..ReassemblyLimits::default() };
        let mut h = run(&sc, &input, limits, acks, seed);
        let mut pos = 0usize;
        for e in h.take() {
            match e {
                Ev::Data(d) => {
                    prop_assert_eq!(&d[..], &input[pos..pos + d.len()]);
                    pos += d.len();
                }
                Ev::Gap { len, .. } => pos += len as usize,
            }
        }
        prop_assert_eq!(pos, input.len());
        prop_assert_eq!(h.r.next_offset(), input.len() as u64);
        prop_assert_eq!(h.r.buffered_bytes(), 0);
    }

    /// Arbitrary segments, ACKs and flushes never panic and never break the
    /// output contract or the caps.
    #[test]
    fn arbitrary_input_never_breaks_the_contract(
        base in any::<u32>(),
        max_bytes in 0usize..2_000,
        max_segments in 0usize..6,
        late_packets in 0u64..5,
        late_ms in 0u32..4,
        ops in proptest::collection::vec(
            (0u8..10, any::<u32>(), -200i32..5_000, any::<(bool, bool, bool)>(),
             proptest::collection::vec(any::<u8>(), 0..300)),
            0..60,
        ),
    ) {
        let limits = ReassemblyLimits {
            max_buffered_bytes: max_bytes,
            max_buffered_segments: max_segments,
            late_packets,
            late_seconds: late_ms as f64 / 1000.0,
        };
        let mut h = Harness::with_limits(limits);
        for (kind, wild, near, (syn, fin, rst), payload) in ops {
            let seq = if kind % 3 == 0 { wild } else { base.wrapping_add(near as u32) };
            match kind {
                0..=6 => h.seg_flags(seq, SegmentFlags { syn, fin, rst }, &payload),
                7 => h.ack(seq),
                8 => {
                    h.ack(seq);
                    h.wait(1, 0.001);
                }
                _ => h.flush(),
            }
        }
        h.flush();
        prop_assert_eq!(h.r.buffered_bytes(), 0);
    }
}

// ------------------------------------------- conversations with late data

/// One packet of a two-way conversation, in stream offsets of its direction.
#[derive(Debug, Clone, Copy)]
struct Pkt {
    from: usize,
    /// Data `[lo, hi)` of `from`'s stream (empty for pure ACKs, SYN, FIN).
    lo: usize,
    hi: usize,
    flags: SegmentFlags,
    /// Acknowledges the peer's stream up to this offset (the FIN counts one).
    ack: Option<usize>,
}

/// Two directions of one connection, as the capture shows them.
struct Conversation {
    inputs: [Vec<u8>; 2],
    isn: [u32; 2],
    syn: bool,
    /// Capture order.
    packets: Vec<Pkt>,
    /// Data segments that were not captured: `(dir, lo, hi)`.
    dropped: Vec<(usize, usize, usize)>,
}

impl Conversation {
    /// A conversation in its true order: both sides send data in segments of
    /// random sizes, each packet acknowledging all the peer sent before it
    /// (some pure ACKs too), then a FIN each way; with a handshake if `syn`.
    fn new(inputs: [Vec<u8>; 2], isn: [u32; 2], syn: bool, rng: &mut Rng) -> Self {
        let mut packets = Vec::new();
        let (mut sent, mut fin) = ([0usize; 2], [false; 2]);
        let acked_of =
            |sent: &[usize; 2], fin: &[bool; 2], d: usize| sent[1 - d] + usize::from(fin[1 - d]);
        if syn {
            let syn_flags = SYN;
            packets.push(Pkt {
                from: 0,
                lo: 0,
                hi: 0,
                flags: syn_flags,
                ack: None,
            });
            packets.push(Pkt {
                from: 1,
                lo: 0,
                hi: 0,
                flags: syn_flags,
                ack: Some(0),
            });
            packets.push(Pkt {
                from: 0,
                lo: 0,
                hi: 0,
                flags: NONE,
                ack: Some(0),
            });
        }
        while !(fin[0] && fin[1]) {
            let d = rng.below(2);
            if fin[d] {
                continue;
            }
            let ack = Some(acked_of(&sent, &fin, d));
            if sent[d] < inputs[d].len() {
                let size = if rng.chance(20) {
                    1 + rng.below(10)
                } else {
                    1 + rng.below(1448)
                };
                let hi = (sent[d] + size).min(inputs[d].len());
                packets.push(Pkt {
                    from: d,
                    lo: sent[d],
                    hi,
                    flags: NONE,
                    ack,
                });
                sent[d] = hi;
            } else {
                let end = inputs[d].len();
                packets.push(Pkt {
                    from: d,
                    lo: end,
                    hi: end,
                    flags: FIN,
                    ack,
                });
                fin[d] = true;
            }
            if rng.chance(30) {
                let ack = Some(acked_of(&sent, &fin, 1 - d));
                packets.push(Pkt {
                    from: 1 - d,
                    lo: 0,
                    hi: 0,
                    flags: NONE,
                    ack,
                });
            }
        }
        let ack = Some(acked_of(&sent, &fin, 0));
        packets.push(Pkt {
            from: 0,
            lo: 0,
            hi: 0,
            flags: NONE,
            ack,
        });
        Conversation {
            inputs,
            isn,
            syn,
            packets,
            dropped: Vec::new(),
        }
    }

    /// Data packets that may be moved or dropped: not the first data segment
    /// of a direction without a SYN (it anchors the stream).
    fn movable(&self) -> Vec<usize> {
        let mut first = [None; 2];
        let mut out = Vec::new();
        for (i, p) in self.packets.iter().enumerate() {
            if p.hi > p.lo {
                if first[p.from].is_none() {
                    first[p.from] = Some(i);
                    if !self.syn {
                        continue;
                    }
                }
                out.push(i);
            }
        }
        out
    }

    /// Index of the first packet of the capture whose ACK covers packet `i`'s
    /// data: the earliest proof that the peer has it, and so the latest point
    /// where the reassembler's grace window for it can start. It comes before
    /// `i` only once `i` has been moved past it (moves never put a packet
    /// ahead of one it followed, except the moved packet itself).
    fn covering_ack(&self, i: usize) -> Option<usize> {
        let p = self.packets[i];
        self.packets
            .iter()
            .position(|q| q.from != p.from && q.ack.is_some_and(|a| a >= p.hi))
    }

    /// Moves up to `count` data segments to `1..=max_distance` packets after
    /// the first ACK that covers them; returns how many distinct segments were
    /// moved. A segment picked twice is placed again after that same first
    /// ACK, not after a later one, so it never drifts further from it. Each
    /// later move can still put one more packet between a segment and its
    /// ACK, so no segment ends up more than `max_distance + count - 1` packets
    /// after its first covering ACK.
    fn move_after_acks(&mut self, count: usize, max_distance: usize, rng: &mut Rng) -> usize {
        let mut moved = std::collections::HashSet::new();
        for _ in 0..count {
            let candidates = self.movable();
            if candidates.is_empty() {
                break;
            }
            let i = candidates[rng.below(candidates.len())];
            let Some(cover) = self.covering_ack(i) else {
                continue;
            };
            let p = self.packets.remove(i);
            let cover = if cover > i { cover - 1 } else { cover };
            let to = (cover + 1 + rng.below(max_distance)).min(self.packets.len());
            self.packets.insert(to, p);
            moved.insert((p.from, p.lo));
        }
        moved.len()
    }

    /// The most packets by which a data segment follows the first ACK that
    /// covers it (0 if none does).
    fn most_packets_after_ack(&self) -> usize {
        (0..self.packets.len())
            .filter(|&i| self.packets[i].hi > self.packets[i].lo)
            .filter_map(|i| self.covering_ack(i).filter(|&a| a < i).map(|a| i - a))
            .max()
            .unwrap_or(0)
    }

    /// Drops `percent` of the movable data segments from the capture.
    fn drop_segments(&mut self, percent: usize, rng: &mut Rng) {
        let victims: Vec<usize> = self
            .movable()
            .into_iter()
            .filter(|_| rng.chance(percent))
            .collect();
        for &i in victims.iter().rev() {
            let p = self.packets.remove(i);
            self.dropped.push((p.from, p.lo, p.hi));
        }
    }

    fn seq(&self, d: usize, offset: usize) -> u32 {
        let base = if self.syn {
            self.isn[d].wrapping_add(1)
        } else {
            self.isn[d]
        };
        base.wrapping_add(offset as u32)
    }
}

/// What one direction's reassembler emitted, with the packet count at each.
#[derive(Default)]
struct DirOutput {
    events: Vec<(Ev, u64)>,
    late: usize,
    pos: u64,
}

impl DirOutput {
    fn record(&mut self, e: StreamEvent<'_>, packets: u64) {
        match e {
            StreamEvent::Data(d) => {
                assert!(!d.is_empty());
                self.pos += d.len() as u64;
                self.events.push((data(d), packets));
            }
            StreamEvent::Gap { offset, len } => {
                assert!(len > 0);
                assert_eq!(offset, self.pos, "gap not contiguous");
                self.pos += len;
                self.events.push((gap(offset, len), packets));
            }
            StreamEvent::LateForGap { .. } => self.late += 1,
        }
    }

    fn stream(&self) -> Vec<Ev> {
        normalize(self.events.iter().map(|(e, _)| e.clone()).collect())
    }
}

/// Feeds the capture to two reassemblers the way the connection driver does
/// (segment or tick for the sender's direction, ACK or tick for the other),
/// one packet every `dt` seconds, checking the caps after every call; flushes.
fn feed(c: &Conversation, limits: ReassemblyLimits, dt: f64) -> ([Reassembler; 2], [DirOutput; 2]) {
    let mut r = [Reassembler::new(limits), Reassembler::new(limits)];
    let mut out = [DirOutput::default(), DirOutput::default()];
    for (i, p) in c.packets.iter().enumerate() {
        let now = PacketClock {
            packets: i as u64 + 1,
            time: i as f64 * dt,
        };
        let d = p.from;
        let [r0, r1] = &mut r;
        let [o0, o1] = &mut out;
        let ((this, this_out), (other, other_out)) = if d == 0 {
            ((r0, o0), (r1, o1))
        } else {
            ((r1, o1), (r0, o0))
        };
        if p.hi > p.lo || p.flags.syn || p.flags.fin {
            let seq = if p.flags.syn {
                c.isn[d]
            } else {
                c.seq(d, p.lo)
            };
            let payload = &c.inputs[d][p.lo..p.hi];
            this.on_segment(seq, p.flags, payload, now, &mut |e| {
                this_out.record(e, now.packets)
            });
        } else {
            this.tick(now, &mut |e| this_out.record(e, now.packets));
        }
        match p.ack {
            Some(a) => {
                let raw = c.seq(1 - d, a);
                other.on_peer_ack(raw, now, &mut |e| other_out.record(e, now.packets));
            }
            None => other.tick(now, &mut |e| other_out.record(e, now.packets)),
        }
        for x in &r {
            assert!(x.buffered_bytes() <= limits.max_buffered_bytes);
            assert!(x.buffered_segments() <= limits.max_buffered_segments);
        }
    }
    for d in 0..2 {
        let o = &mut out[d];
        let end = c.packets.len() as u64 + 1;
        r[d].flush(&mut |e| o.record(e, end));
    }
    (r, out)
}

/// Segments of `d` that the capture shows after an ACK of the peer that
/// passed their first byte (what `late_after_ack_segments` must count).
fn expected_late_after_ack(c: &Conversation, d: usize) -> u64 {
    let mut acked = 0usize;
    let mut anchored = c.syn;
    let mut late = 0;
    for p in &c.packets {
        if p.from == d {
            if p.hi > p.lo {
                anchored = true;
                late += u64::from(p.lo < acked);
            }
        } else if anchored && let Some(a) = p.ack {
            acked = acked.max(a);
        }
    }
    late
}

fn conversation_inputs() -> impl Strategy<Value = [Vec<u8>; 2]> {
    (
        proptest::collection::vec(any::<u8>(), 0..12_000),
        proptest::collection::vec(any::<u8>(), 0..12_000),
    )
        .prop_map(|(a, b)| [a, b])
}

proptest! {
    /// Data segments that the capture shows 1-16 packets after the first ACK
    /// that covers them (up to 7 more when other moved segments land in
    /// between), in both directions, are rebuilt exactly with the default
    /// grace window, and counted as late; nothing is a gap.
    #[test]
    fn data_after_its_ack_is_rebuilt_exactly(
        inputs in conversation_inputs(),
        isn in (isn_strategy(), isn_strategy()),
        syn in any::<bool>(),
        moves in 1usize..9,
        slow_clock in any::<bool>(),
        seed in any::<u64>(),
    ) {
        let mut rng = Rng(seed);
        let mut c = Conversation::new(inputs, [isn.0, isn.1], syn, &mut rng);
        let moved = c.move_after_acks(moves, 16, &mut rng);
        // The premise: every segment arrives within the packet count of the
        // grace window after its first covering ACK (its hole's window starts
        // there or later), so the window holds the hole open whatever the clock.
        let most = c.most_packets_after_ack();
        prop_assert!(
            most < 16 + moves && most as u64 <= DEFAULT_LATE_PACKETS,
            "a segment {} packets after its ACK ({} moves)", most, moves
        );
        // Slow: 0.5 s pass in 10 packets, so the packet count is what holds the
        // hole open; fast: the time does.
        let dt = if slow_clock { 0.05 } else { 0.0001 };
        let (r, out) = feed(&c, ReassemblyLimits::default(), dt);
        for d in 0..2 {
            let want = if c.inputs[d].is_empty() { vec![] } else { vec![data(&c.inputs[d])] };
            prop_assert_eq!(out[d].stream(), want, "direction {}", d);
            let s = r[d].stats();
            prop_assert_eq!(s.gaps, 0);
            prop_assert_eq!(out[d].late, 0);
            prop_assert_eq!(s.late_after_ack_segments, expected_late_after_ack(&c, d));
            prop_assert_eq!(s.retransmitted_segments, 0);
            prop_assert!(r[d].fin_reached());
            prop_assert_eq!(r[d].buffered_bytes(), 0);
        }
        // The last segment moved follows an ACK of it (the scenario is not
        // vacuous; earlier ones may have been overtaken by their ACK's own move).
        let late: u64 = r.iter().map(|x| x.stats().late_after_ack_segments).sum();
        prop_assert!(moved == 0 || late > 0, "{} late, {} moved", late, moved);
    }

    /// Segments the capture really lost become gaps of exactly their ranges, and
    /// each gap is declared once its grace window has passed: never earlier, and
    /// not later than the window after the hole was covered.
    #[test]
    fn real_loss_becomes_a_gap_within_the_grace_window(
        inputs in conversation_inputs(),
        isn in (isn_strategy(), isn_strategy()),
        syn in any::<bool>(),
        drop_percent in 5usize..40,
        slow_clock in any::<bool>(),
        late_packets in 1u64..40,
        seed in any::<u64>(),
    ) {
        let mut rng = Rng(seed);
        let mut c = Conversation::new(inputs, [isn.0, isn.1], syn, &mut rng);
        c.drop_segments(drop_percent, &mut rng);
        let dt = if slow_clock { 0.05 } else { 0.001 };
        let limits = ReassemblyLimits { late_packets, late_seconds: 0.2, ..LARGE };
        let (_, out) = feed(&c, limits, dt);
        let end = c.packets.len() as u64 + 1;
        // Packets after which both conditions hold.
        let window = late_packets.max((0.2 / dt).ceil() as u64 + 1);
        for (d, out) in out.iter().enumerate() {
            let mut raw = Vec::new();
            let mut lo = 0;
            let mut dropped: Vec<(usize, usize)> =
                c.dropped.iter().filter(|x| x.0 == d).map(|x| (x.1, x.2)).collect();
            dropped.sort_unstable();
            for &(a, b) in &dropped {
                if a > lo {
                    raw.push(data(&c.inputs[d][lo..a]));
                }
                raw.push(gap(a as u64, (b - a) as u64));
                lo = b;
            }
            if lo < c.inputs[d].len() {
                raw.push(data(&c.inputs[d][lo..]));
            }
            let want = normalize(merge_gaps(raw));
            prop_assert_eq!(out.stream(), want, "direction {}", d);
            // When each hole was covered: its end acknowledged and data after it
            // seen (packet numbers count from 1).
            let first_seen_after = |pos: usize| {
                c.packets.iter().position(|p| p.from == d && p.hi > p.lo && p.lo >= pos)
            };
            let acked_at = |pos: usize| {
                c.packets.iter().position(|p| p.from != d && p.ack.is_some_and(|a| a >= pos))
            };
            let mut latest_cover = 0u64;
            for (e, emitted) in &out.events {
                let Ev::Gap { offset, len } = e else { continue };
                let hole_end = (offset + len) as usize;
                let (Some(seen), Some(acked)) = (first_seen_after(hole_end), acked_at(hole_end)) else {
                    prop_assert_eq!(*emitted, end, "a hole nothing proves is only closed by the flush");
                    continue;
                };
                let covered = seen.max(acked) as u64 + 1;
                latest_cover = latest_cover.max(covered);
                if *emitted < end {
                    // Not the flush: the window was respected.
                    prop_assert!(*emitted >= covered + late_packets, "gap at {} covered at {}", emitted, covered);
                    prop_assert!((*emitted - covered) as f64 * dt >= 0.2 - 1e-9);
                }
                if latest_cover + window < end {
                    prop_assert!(*emitted <= latest_cover + window, "gap at {} covered at {} (window {})", emitted, latest_cover, window);
                }
            }
        }
    }

    /// With tiny caps and data moved after its ACKs, every delivered byte is the
    /// input's byte at its offset, memory stays within the caps (checked after
    /// every call), and the stream ends exactly at the FIN.
    #[test]
    fn late_data_within_tiny_caps_stays_consistent(
        inputs in conversation_inputs(),
        isn in (isn_strategy(), isn_strategy()),
        syn in any::<bool>(),
        moves in 1usize..9,
        drop_percent in 0usize..20,
        max_bytes in 0usize..4_000,
        max_segments in 0usize..5,
        seed in any::<u64>(),
    ) {
        let mut rng = Rng(seed);
        let mut c = Conversation::new(inputs, [isn.0, isn.1], syn, &mut rng);
        c.move_after_acks(moves, 16, &mut rng);
        c.drop_segments(drop_percent, &mut rng);
        let limits = ReassemblyLimits { max_buffered_bytes: max_bytes, max_buffered_segments: max_segments, ..ReassemblyLimits::default() };
        let (r, out) = feed(&c, limits, 0.01);
        for d in 0..2 {
            let mut pos = 0usize;
            for e in out[d].stream() {
                match e {
                    Ev::Data(bytes) => {
                        prop_assert_eq!(&bytes[..], &c.inputs[d][pos..pos + bytes.len()]);
                        pos += bytes.len();
                    }
                    Ev::Gap { len, .. } => pos += len as usize,
                }
            }
            prop_assert_eq!(pos, c.inputs[d].len());
            prop_assert!(r[d].fin_reached());
            prop_assert_eq!(r[d].buffered_bytes(), 0);
        }
    }
}

/// Adjacent gaps merged into one (a run of dropped segments is one hole).
fn merge_gaps(raw: Vec<Ev>) -> Vec<Ev> {
    let mut out: Vec<Ev> = Vec::new();
    for e in raw {
        match (out.last_mut(), e) {
            (Some(Ev::Gap { len, .. }), Ev::Gap { len: more, .. }) => *len += more,
            (_, e) => out.push(e),
        }
    }
    out
}
