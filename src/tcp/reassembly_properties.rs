//! Properties of the TCP reassembler: shuffled, duplicated and overlapping segments, dropped
//! segments as exact gaps, tiny caps, arbitrary garbage, and two-way conversations whose data
//! the capture shows after its ACK. The unit tests' harness is the parent module's.

use super::*;

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
