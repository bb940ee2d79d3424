//! Tests for the TCP reassembler: unit cases for each policy and split-point tests, with the
//! harness they share with the properties (`reassembly_properties.rs`).

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
    // Nothing but segments to count: the other counters and the gap list are not made.
    assert!(r.rare.is_none());
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
    assert!(h.r.rare.is_some());
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

// Properties (random scenarios, conversations with late data) are in a file of their own.
#[path = "reassembly_properties.rs"]
mod properties;
