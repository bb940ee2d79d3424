//! TCP stream reassembly for one direction of one connection: captured segments (`seq`, flags, payload, in capture order) plus the peer's ACKs in, the byte stream out as [`StreamEvent`]s in stream order (`Data` runs and explicit `Gap`s).
//!
//! # Stream offsets
//!
//! Raw 32-bit sequence numbers never leave this file. Each is unwrapped with
//! serial-number arithmetic (RFC 1982) against the sequence number of the next
//! expected byte, giving a `u64` *stream offset*:
//!
//! * with a SYN, offset 0 is the byte at `ISN + 1` (the SYN itself occupies
//!   the ISN, so data carried on the SYN starts at offset 0);
//! * with no SYN (the capture started mid-connection), offset 0 is the first
//!   sequence number of the first segment that occupies sequence space
//!   (payload, SYN or FIN). Pure ACKs never anchor the stream.
//!
//! Bytes a mid-stream capture shows *before* that anchor (a reordered earlier
//! segment) can never be placed; they are dropped and counted as retransmitted.
//!
//! # Policies
//!
//! * **In order, nothing held:** the caller's payload is handed on as
//!   `Data(payload)`, with no copy and no allocation.
//! * **Out of order:** the new bytes are copied once into a `BTreeMap` keyed by
//!   stream offset and delivered when the hole before them is closed.
//! * **Overlaps** (retransmissions, duplicated captures, re-segmentation):
//!   first wins. Bytes already delivered are trimmed without comparison (they
//!   are not kept); bytes overlapping held data are compared and every
//!   differing byte is counted in [`ReassemblyStats::overlap_conflicts`].
//! * **Holes** are closed, emitting one `Gap` per hole, when (a) the peer
//!   acknowledged everything up to the held data after the hole **and** the hole
//!   has been stale for the grace window of [`ReassemblyLimits::late_packets`]
//!   packets and [`ReassemblyLimits::late_seconds`] of capture time (see "Late
//!   data" below), (b) a cap in [`ReassemblyLimits`] would be exceeded (the
//!   earliest hole is skipped; captured bytes are never discarded to make room),
//!   or (c) [`Reassembler::flush`] is called. So two `Gap`s are never adjacent,
//!   except that events after a flush may continue the flush's trailing `Gap`.
//! * **Late data.** Capture points reorder: on multi-queue NICs, `-i any`, SPAN
//!   ports and `mergecap` of two taps, a data segment can appear in the capture
//!   *after* the peer's ACK that covers it. The ACK proves the peer got the
//!   bytes, not that the capture has lost them, so an ACK-covered hole is only
//!   declared a `Gap` once it is stale. A segment that fills it before then is
//!   delivered in order as if nothing happened (counted in
//!   [`ReassemblyStats::late_after_ack_segments`]). Bytes of a hole already
//!   declared a `Gap` that turn up afterwards cannot be reinserted (the layers
//!   above have resynchronised past the hole); they are dropped, counted in
//!   [`ReassemblyStats::late_after_gap_bytes`], and announced with a
//!   [`StreamEvent::LateForGap`] so the caller can say how late they were.
//! * **Garbage:** a segment starting more than 1 GiB (the largest window TCP
//!   can advertise) before or after the next expected byte is dropped and
//!   counted in [`ReassemblyStats::implausible_segments`]: it cannot belong to
//!   this stream, and believing it would create a bogus gap of gigabytes. If 8
//!   such segments with data arrive in a row, all within 1 GiB of each other,
//!   the capture really lost more than a window: the stream is resynchronised
//!   onto the eighth with one `Gap` (its length is the forward distance modulo
//!   2^32, the best estimate a 32-bit sequence space allows).
//! * **Keep-alive probes** (RFC 1122 §4.2.3.6: sequence number one below the
//!   highest byte seen, zero or one garbage byte) are ignored and counted.
//! * **RST:** data carried on an RST is diagnostic text, not stream bytes
//!   (RFC 1122 §4.2.2.12): it is ignored.
//!
//! Memory: held bytes and held segments never exceed the limits (a segment
//! that cannot fit is delivered after a `Gap` straight from the caller's
//! slice). Besides them the reassembler keeps only the last
//! [`MAX_REMEMBERED_GAPS`] gaps it declared (a few ranges each), to recognise
//! their bytes if they turn up late.
//!
//! # The packet clock
//!
//! Staleness is measured on a [`PacketClock`] the caller passes with every
//! segment and ACK: how many packets of the connection it has seen and the
//! capture time. Calls in between (a packet that neither carries this
//! direction's data nor acknowledges it) can pass the clock on with
//! [`Reassembler::tick`], so a hole goes stale on time; without them it goes
//! stale at the next segment or ACK, or at the flush. A tick with a later
//! time and no new packet says the connection is quiet: once it has been quiet
//! for [`ReassemblyLimits::late_seconds`], the packet count is not awaited.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;

/// Default for [`ReassemblyLimits::max_buffered_bytes`]: 4 MiB covers several
/// windows of a fast link while a retransmission is awaited, yet bounds what one
/// hostile flow can pin.
pub const DEFAULT_MAX_BUFFERED_BYTES: usize = 4 << 20;

/// Default for [`ReassemblyLimits::max_buffered_segments`]: bounds the per-entry
/// overhead (map node + `Vec` header) of a flood of tiny out-of-order segments.
pub const DEFAULT_MAX_BUFFERED_SEGMENTS: usize = 4096;

/// Default for [`ReassemblyLimits::late_packets`]. Captures that reorder data
/// after its ACK typically show it 1-6 packets of the connection late (issue 11:
/// a Chromium session, 8-segment swaps on deflate and plain connections), more
/// only on fast flows, where the time condition below is the one that binds; 32
/// is five times the usual distance and twice the 16 the property tests cover.
/// It also keeps a hole open on a capture whose clock stands still (coarse or
/// rewritten timestamps) for a while instead of for no time at all.
pub const DEFAULT_LATE_PACKETS: u64 = 32;

/// Default for [`ReassemblyLimits::late_seconds`]. The displacement is a matter
/// of time at every capture point: the NIC queues or CPUs of a multi-queue NIC
/// and of `-i any` differ by interrupt moderation and NAPI batches (tens of µs
/// to a few ms); a SPAN port by its egress queue (ms); `mergecap` of two taps by
/// the skew of their clocks (µs with PTP, usually under 10 ms with NTP, up to
/// ~100 ms when badly synchronised). Half a second covers all of them with a
/// margin, while a real loss (the capture dropped the packet) is still declared
/// within half a second on a live view; memory stays bounded by the byte and
/// segment caps, which close a hole early on a fast flow.
pub const DEFAULT_LATE_SECONDS: f64 = 0.5;

/// Gaps remembered per direction to recognise their bytes arriving late.
pub const MAX_REMEMBERED_GAPS: usize = 8;

/// Distinct late-arrived ranges tracked per remembered gap (pieces of one gap).
const MAX_ARRIVED_RANGES: usize = 8;

/// Farthest a segment may start from the next expected byte and still belong to
/// this stream. RFC 7323 §2.3: "the maximum scale exponent is limited to 14 for a
/// maximum permissible receive window size of 1 GiB (2^(14+16))", so a sender is
/// never further than that ahead of what its peer acknowledged, and never
/// retransmits further back than that.
const MAX_PLAUSIBLE_DISTANCE: u32 = 1 << 30;

/// Consecutive implausible segments, consistent with each other, after which we
/// believe the capture lost more than a window and resynchronise onto them.
const RESYNC_AFTER_SEGMENTS: u32 = 8;

/// Caps and the late-data grace window for one direction; defaults must be
/// sane for hostile input.
#[derive(Debug, Clone, Copy)]
pub struct ReassemblyLimits {
    /// Most out-of-order bytes held while waiting for a hole to fill. Reaching it
    /// skips the earliest hole (a `Gap`) rather than growing.
    pub max_buffered_bytes: usize,
    /// Most out-of-order segments held. Reaching it skips the earliest hole.
    pub max_buffered_segments: usize,
    /// A hole the peer acknowledged is declared a `Gap` only after this many
    /// further packets of the connection...
    pub late_packets: u64,
    /// ...and this much capture time (seconds), both counted from when the ACK
    /// covered it (or when data after it arrived, if later). 0 and 0 declare it
    /// at the ACK.
    pub late_seconds: f64,
}

impl Default for ReassemblyLimits {
    /// 4 MiB and 4096 segments per direction; 32 packets and 0.5 s of grace.
    fn default() -> Self {
        Self {
            max_buffered_bytes: DEFAULT_MAX_BUFFERED_BYTES,
            max_buffered_segments: DEFAULT_MAX_BUFFERED_SEGMENTS,
            late_packets: DEFAULT_LATE_PACKETS,
            late_seconds: DEFAULT_LATE_SECONDS,
        }
    }
}

/// Where the capture is, for one connection: what the grace window of late data
/// is measured on.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PacketClock {
    /// Packets of the connection seen so far, both directions, the current one
    /// included.
    pub packets: u64,
    /// Capture time of the current packet (seconds). Captures are not always in
    /// time order; the reassembler keeps the highest time it was given.
    pub time: f64,
}

/// TCP flags of one segment that matter to the byte stream.
#[derive(Debug, Clone, Copy, Default)]
pub struct SegmentFlags {
    /// SYN: the sequence number is the ISN; data (if any) starts one after it.
    pub syn: bool,
    /// FIN: the stream ends after this segment's payload.
    pub fin: bool,
    /// RST: any payload is diagnostic text and is not part of the stream.
    pub rst: bool,
}

/// What the reassembler hands on, in stream order.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum StreamEvent<'a> {
    /// The next contiguous bytes of the stream. Borrowed from the caller's
    /// segment when in order (zero copy), else from the reassembler's buffer.
    /// Never empty.
    Data(&'a [u8]),
    /// Bytes `[offset, offset+len)` of the stream (offset relative to the first
    /// byte after the ISN / first seen byte) will never be delivered: lost from
    /// the capture. The stream continues after them. `len` is never 0, and a
    /// `Gap` is always followed by `Data`, except the trailing `Gap` that
    /// [`Reassembler::flush`] may emit last.
    Gap {
        /// Stream offset of the first lost byte.
        offset: u64,
        /// Number of lost bytes.
        len: u64,
    },
    /// Not part of the stream: bytes of the earlier `Gap` at `gap_offset` have
    /// turned up after all, too late (the stream has moved on past it, so they
    /// are not delivered). Emitted whenever more of its bytes arrive; `arrived`
    /// is the total so far, for the caller to amend what it said about the gap.
    LateForGap {
        /// `offset` of the `Gap`.
        gap_offset: u64,
        /// `len` of the `Gap`.
        gap_len: u64,
        /// Distinct bytes of the gap that have arrived so far (at most `gap_len`).
        arrived: u64,
        /// Packets of the connection between the gap's declaration and now.
        packets_late: u64,
        /// Capture seconds between the gap's declaration and now.
        seconds_late: f64,
    },
}

/// Counters for one direction, for diagnostics and memory accounting.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReassemblyStats {
    /// Every segment passed to [`Reassembler::on_segment`], pure ACKs included.
    pub segments: u64,
    /// Segments whose first new byte lay beyond the next expected byte, so they
    /// had to wait for a hole.
    pub out_of_order_segments: u64,
    /// Segments with new bytes the peer had already acknowledged when the
    /// capture showed them (the capture put them after the ACK): used as usual.
    pub late_after_ack_segments: u64,
    /// Segments with payload that was entirely already delivered or held.
    pub retransmitted_segments: u64,
    /// Payload bytes already delivered or held when they arrived again (whole
    /// or partial retransmissions).
    pub retransmitted_bytes: u64,
    /// Segments that brought bytes of a hole already declared a `Gap` (late
    /// beyond the grace window, or after a cap or flush closed it).
    pub late_after_gap_segments: u64,
    /// Distinct bytes of declared gaps that arrived afterwards (not delivered).
    pub late_after_gap_bytes: u64,
    /// Overlapping bytes that differ from the held bytes we kept (first wins).
    /// Overlaps with already delivered bytes cannot be compared and are not
    /// counted here.
    pub overlap_conflicts: u64,
    /// Keep-alive probes ignored: zero or one byte at one below the highest
    /// sequence number seen. (A duplicated one-byte segment looks the same and
    /// is counted here too.)
    pub keepalive_probes: u64,
    /// `Gap` events emitted.
    pub gaps: u64,
    /// Total length of all `Gap` events.
    pub gap_bytes: u64,
    /// Captured bytes discarded because a cap was reached. The reassembler
    /// makes room by skipping the earliest hole instead (counted in `gaps`), so
    /// this stays 0 with the current policy; kept for reporting stability.
    pub dropped_over_limit_bytes: u64,
    /// Of `gaps`, those emitted because a cap in [`ReassemblyLimits`] was
    /// reached: holes given up before the peer's ACK or the end proved them lost.
    pub limit_gaps: u64,
    /// Total length of the `limit_gaps`.
    pub limit_gap_bytes: u64,
    /// Of `gaps`, holes the peer had acknowledged that a cap closed before
    /// their grace window ended (not counted in `limit_gaps`: the ACK proved
    /// the capture lost them, the cap only cut the wait for late data short).
    pub grace_cut_gaps: u64,
    /// Segments dropped as garbage: starting more than 1 GiB (the largest TCP
    /// window) away from the next expected byte.
    pub implausible_segments: u64,
    /// Payload bytes of the implausible segments.
    pub implausible_bytes: u64,
}

/// Out-of-order bytes waiting for the hole before them.
struct Held {
    bytes: Vec<u8>,
    /// When the hole before these bytes became known to the peer: the clock
    /// of the ACK that first covered `key`, or of these bytes' arrival if the
    /// ACK was already past. `None` while the peer has not acknowledged it.
    covered: Option<PacketClock>,
}

/// A `Gap` already emitted, remembered to recognise its bytes arriving late.
struct DeclaredGap {
    offset: u64,
    len: u64,
    at: PacketClock,
    /// Disjoint, sorted, non-adjacent ranges of it that arrived since.
    arrived: Vec<(u64, u64)>,
}

impl DeclaredGap {
    /// Records `[lo, hi)` (inside the gap) as arrived; returns how many of its
    /// bytes had not arrived before. Past [`MAX_ARRIVED_RANGES`] pieces, new
    /// ones are not tracked (so they count as repeats).
    fn add(&mut self, lo: u64, hi: u64) -> u64 {
        let mut fresh = hi - lo;
        for &(a, b) in &self.arrived {
            let (x, y) = (a.max(lo), b.min(hi));
            if x < y {
                fresh -= y - x;
            }
        }
        if fresh == 0 {
            return 0;
        }
        let (mut lo, mut hi) = (lo, hi);
        let before = self.arrived.len();
        self.arrived.retain(|&(a, b)| {
            let touches = b >= lo && a <= hi;
            if touches {
                lo = lo.min(a);
                hi = hi.max(b);
            }
            !touches
        });
        if self.arrived.len() == before && before >= MAX_ARRIVED_RANGES {
            return 0;
        }
        let at = self.arrived.partition_point(|&(a, _)| a < lo);
        self.arrived.insert(at, (lo, hi));
        fresh
    }

    fn arrived_bytes(&self) -> u64 {
        self.arrived.iter().map(|(a, b)| b - a).sum()
    }
}

/// Reassembles ONE direction of one connection into an ordered byte stream.
///
/// Feed it this direction's segments with [`on_segment`](Self::on_segment) and
/// the other direction's acknowledgment numbers with
/// [`on_peer_ack`](Self::on_peer_ack), each with the connection's
/// [`PacketClock`]; pass the clock of other packets with [`tick`](Self::tick);
/// call [`flush`](Self::flush) at the end of the connection or of the capture.
pub struct Reassembler {
    limits: ReassemblyLimits,
    /// Raw sequence number of stream offset 0; `None` until the first segment
    /// that occupies sequence space.
    base: Option<u32>,
    /// The ISN, when a SYN anchored the stream.
    isn: Option<u32>,
    /// Stream offset of the next byte to deliver (delivered + gaps).
    next: u64,
    /// Out-of-order bytes by stream offset. Invariants between calls: entries
    /// do not overlap, every key is > `next`, an entry's `covered` is set iff
    /// its key is <= `acked`, and the first hole is not both covered and stale
    /// (it would have been closed).
    held: BTreeMap<u64, Held>,
    /// Sum of the lengths in `held`.
    held_bytes: usize,
    /// Highest stream offset the peer acknowledged (exclusive), 0 if none. The
    /// ACK of a FIN is one past it, but no data follows a FIN, so this never
    /// closes a hole that is not there.
    acked: u64,
    /// Stream offset of the FIN (= end of data), first FIN wins.
    fin: Option<u64>,
    /// Current run of implausible segments: (first one's sequence number, count).
    resync: Option<(u32, u32)>,
    /// The latest clock the caller gave (highest packet count and time).
    now: PacketClock,
    /// Capture time when the packet count last moved: a [`tick`](Self::tick)
    /// later than this shows the connection has been quiet.
    last_packet_time: f64,
    /// Segments seen ([`ReassemblyStats::segments`]).
    segments: u64,
    /// The other counters and the gaps emitted, made at the first of them: most directions
    /// never reorder, retransmit or lose anything, and every open one would carry 160 bytes.
    rare: Option<Box<Rare>>,
}

/// What a direction that reorders, retransmits or loses bytes also keeps.
#[derive(Default)]
struct Rare {
    /// The counters other than `segments` (that one stays 0 here).
    stats: ReassemblyStats,
    /// The last gaps emitted, oldest first.
    gaps: VecDeque<DeclaredGap>,
}

impl fmt::Debug for Reassembler {
    /// A summary; held bytes are not printed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reassembler")
            .field("base", &self.base)
            .field("isn", &self.isn)
            .field("next", &self.next)
            .field("held_segments", &self.held.len())
            .field("held_bytes", &self.held_bytes)
            .field("acked", &self.acked)
            .field("fin", &self.fin)
            .field("now", &self.now)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl Default for Reassembler {
    /// A reassembler with [`ReassemblyLimits::default`].
    fn default() -> Self {
        Self::new(ReassemblyLimits::default())
    }
}

impl Reassembler {
    /// The connection is idle: give back the gap list's spare capacity.
    pub fn shrink(&mut self) {
        if let Some(rare) = &mut self.rare {
            rare.gaps.shrink_to_fit();
        }
    }

    /// An empty reassembler for one direction, bounded by `limits`.
    pub fn new(limits: ReassemblyLimits) -> Self {
        Self {
            limits,
            base: None,
            isn: None,
            next: 0,
            held: BTreeMap::new(),
            held_bytes: 0,
            acked: 0,
            fin: None,
            resync: None,
            now: PacketClock::default(),
            last_packet_time: 0.0,
            segments: 0,
            rare: None,
        }
    }

    /// Feed one captured segment of this direction, seen at `now`. `out`
    /// receives zero or more events in stream order (and possibly
    /// [`StreamEvent::LateForGap`] notes); holes that went stale are closed
    /// after the segment is placed, so a late segment arriving just as its
    /// grace window ends is still used.
    #[inline]
    pub fn on_segment<F: FnMut(StreamEvent<'_>)>(
        &mut self,
        seq: u32,
        flags: SegmentFlags,
        payload: &[u8],
        now: PacketClock,
        out: &mut F,
    ) {
        self.advance(now);
        self.segment(seq, flags, payload, out);
        if !self.held.is_empty() {
            self.drain(out);
        }
    }

    /// The OTHER direction acknowledged this direction's bytes up to `ack` (the
    /// raw TCP ack number), at `now`. A hole below an acknowledged position was
    /// received by the peer; the capture may still show it late, so it becomes
    /// a `Gap` only once stale (see [`ReassemblyLimits::late_packets`]).
    ///
    /// A hole counts as covered once the ACK covers it entirely; the part of a
    /// hole above the ACK may still arrive in the normal way. An ACK that only
    /// passes the delivered data (no held data after it) is remembered and
    /// reported by [`flush`](Self::flush) if nothing arrives. ACKs before this
    /// direction's first segment, behind the delivered data, or more than 1 GiB
    /// ahead are ignored (the clock still moves).
    pub fn on_peer_ack<F: FnMut(StreamEvent<'_>)>(
        &mut self,
        ack: u32,
        now: PacketClock,
        out: &mut F,
    ) {
        self.advance(now);
        if let Some(base) = self.base {
            let delta = self.delta(base, ack);
            if delta > 0 && delta <= i64::from(MAX_PLAUSIBLE_DISTANCE) {
                let acked = self.next + delta.unsigned_abs();
                if acked > self.acked {
                    let clock = self.now;
                    for (_, held) in self.held.range_mut(self.acked + 1..=acked) {
                        held.covered.get_or_insert(clock);
                    }
                    self.acked = acked;
                }
            }
        }
        if !self.held.is_empty() {
            self.drain(out);
        }
    }

    /// A packet of the connection that is neither this direction's segment nor
    /// the peer's ACK, or a moment without packets (the same packet count, a
    /// later capture time: an idle sweep); moves the clock to `now` and closes
    /// the holes that went stale. A connection quiet for the whole window does
    /// not need its packets to pass. Cheap when nothing is held.
    pub fn tick<F: FnMut(StreamEvent<'_>)>(&mut self, now: PacketClock, out: &mut F) {
        self.advance(now);
        if !self.held.is_empty() {
            self.drain(out);
        }
    }

    /// End of the connection or of the capture: deliver everything held,
    /// emitting a Gap for each hole, whatever its grace window.
    ///
    /// Also reports a trailing hole nothing was held after, up to the later of
    /// the FIN (it proves the bytes before it were sent) and one below the
    /// highest ACK (the last acknowledged position may be a FIN the capture
    /// missed, so only bytes certain to be data are reported).
    /// The reassembler stays usable afterwards.
    pub fn flush<F: FnMut(StreamEvent<'_>)>(&mut self, out: &mut F) {
        self.deliver_all_held(out);
        self.gap_to(self.known_end(), out);
    }

    /// Whether bytes known to exist are still missing, so a late segment could
    /// still change the output: something is held after a hole, or the FIN or
    /// the peer's ACK lies beyond what was delivered. A caller that sees the
    /// TCP connection end (FIN both ways, RST) while this holds can wait the
    /// grace window for late data before it flushes.
    pub fn awaiting_late_data(&self) -> bool {
        !self.held.is_empty() || self.next < self.known_end()
    }

    /// Counters so far.
    pub fn stats(&self) -> ReassemblyStats {
        ReassemblyStats {
            segments: self.segments,
            ..self
                .rare
                .as_ref()
                .map_or_else(Default::default, |r| r.stats)
        }
    }

    /// Gaps emitted so far, and their bytes.
    fn gap_counts(&self) -> (u64, u64) {
        self.rare
            .as_ref()
            .map_or((0, 0), |r| (r.stats.gaps, r.stats.gap_bytes))
    }

    /// The counters, for counting something other than a segment.
    fn count(&mut self) -> &mut ReassemblyStats {
        &mut self.rare.get_or_insert_with(Default::default).stats
    }

    /// Stream offset of the next byte expected (delivered + gaps so far).
    pub fn next_offset(&self) -> u64 {
        self.next
    }

    /// Bytes currently held out of order (for memory accounting).
    pub fn buffered_bytes(&self) -> usize {
        self.held_bytes
    }

    /// Segments currently held out of order (for memory accounting).
    pub fn buffered_segments(&self) -> usize {
        self.held.len()
    }

    /// True once a FIN's sequence position has been reached in order (all data
    /// before the FIN delivered).
    pub fn fin_reached(&self) -> bool {
        self.fin.is_some_and(|fin| self.next >= fin)
    }

    /// Stream offset of the FIN, once a FIN was seen (the total stream length).
    pub fn fin_offset(&self) -> Option<u64> {
        self.fin
    }

    /// The initial sequence number, when a SYN was seen. A later SYN with a
    /// different ISN is a new connection on the same ports (the caller should
    /// start a new reassembler); this one would treat it as a stray segment.
    pub fn isn(&self) -> Option<u32> {
        self.isn
    }

    /// Moves the clock forward (never back: capture times can go backwards).
    #[inline]
    fn advance(&mut self, now: PacketClock) {
        if now.time > self.now.time {
            self.now.time = now.time;
        }
        if now.packets > self.now.packets {
            self.now.packets = now.packets;
            self.last_packet_time = self.now.time;
        }
    }

    /// The grace window since `covered` is over: the time has passed, and so have
    /// the packets, unless the connection has been quiet for that time (a late
    /// segment is displaced by time; a connection that sends nothing for the
    /// whole window will not show it later).
    fn stale(&self, covered: PacketClock) -> bool {
        let late = self.limits.late_seconds;
        let quiet = self.now.time - self.last_packet_time;
        self.now.time - covered.time >= late
            && (self.now.packets.saturating_sub(covered.packets) >= self.limits.late_packets
                || (quiet > 0.0 && quiet >= late))
    }

    /// End of the bytes known to exist: the FIN, else one below the highest ACK.
    fn known_end(&self) -> u64 {
        self.fin.unwrap_or(0).max(self.acked.saturating_sub(1))
    }

    /// [`on_segment`](Self::on_segment) without the clock and the expiry. Its one caller's:
    /// the in-order path must not pay a call.
    #[inline(always)]
    fn segment<F: FnMut(StreamEvent<'_>)>(
        &mut self,
        seq: u32,
        flags: SegmentFlags,
        payload: &[u8],
        out: &mut F,
    ) {
        self.segments += 1;
        // RFC 1122 §4.2.2.12: "A TCP SHOULD allow a received RST segment to
        // include data" -- text explaining the reset, not stream bytes.
        let payload = if flags.rst { &[][..] } else { payload };
        let occupies = !payload.is_empty() || flags.syn || flags.fin;
        // RFC 9293 §3.4: the SYN occupies the ISN; its data starts at ISN + 1.
        let data_seq = if flags.syn { seq.wrapping_add(1) } else { seq };
        let base = match self.base {
            Some(base) => base,
            None if occupies => {
                self.base = Some(data_seq);
                if flags.syn {
                    self.isn = Some(seq);
                }
                data_seq
            }
            None => return,
        };
        let syn_retransmission = flags.syn && self.isn == Some(seq);
        let mut delta = if syn_retransmission {
            // Its data starts at offset 0 however far the stream has moved on
            // (relative arithmetic would wrap after 2 GiB).
            i64::try_from(self.next).map_or(i64::MIN, |next| -next)
        } else {
            self.delta(base, data_seq)
        };

        if !occupies {
            // Pure ACK, window update or zero-length keep-alive probe.
            if !flags.rst && self.is_keepalive(delta) {
                self.count().keepalive_probes += 1;
            }
            return;
        }

        if !syn_retransmission && delta.unsigned_abs() > u64::from(MAX_PLAUSIBLE_DISTANCE) {
            if !self.implausible(base, data_seq, payload, out) {
                return;
            }
            delta = self.delta(base, data_seq);
        } else {
            self.resync = None;
        }

        if flags.syn && self.isn.is_none() && data_seq == base {
            // The SYN of a stream we first anchored on its first data byte.
            self.isn = Some(seq);
        }
        if flags.fin && self.fin.is_none() {
            let fin = i128::from(self.next) + i128::from(delta) + payload.len() as i128;
            self.fin = u64::try_from(fin).ok();
        }
        if payload.len() == 1 && !flags.syn && !flags.fin && self.is_keepalive(delta) {
            // RFC 1122 §4.2.3.6: an implementation "MAY be configurable to send
            // a keep-alive segment containing one garbage octet" (at SND.NXT-1).
            self.count().keepalive_probes += 1;
            return;
        }

        // Trim what lies below the next expected byte: already delivered (or
        // declared lost, or before the stream's anchor).
        let (start, data) = if delta < 0 {
            let behind = delta.unsigned_abs();
            let len = payload.len() as u64;
            let late = if self.rare.as_ref().is_none_or(|r| r.gaps.is_empty()) {
                0
            } else {
                self.late_for_gaps(behind, len, out)
            };
            let count = self.count();
            if behind >= len {
                if late > 0 {
                    count.late_after_gap_segments += 1;
                } else if len > 0 {
                    count.retransmitted_segments += 1;
                }
                count.retransmitted_bytes += len - late;
                return;
            }
            if late > 0 {
                count.late_after_gap_segments += 1;
            }
            count.retransmitted_bytes += behind - late;
            // `behind < len`, so it fits in usize.
            (self.next, &payload[behind as usize..])
        } else {
            (self.next + delta.unsigned_abs(), payload)
        };
        if data.is_empty() {
            return; // SYN or FIN alone
        }

        // Fast path: in order with nothing held. No copy, no allocation.
        if start == self.next && self.held.is_empty() {
            if start < self.acked {
                self.count().late_after_ack_segments += 1;
            }
            self.emit_direct(data, out);
            return;
        }
        self.insert(start, data, out);
    }

    /// Bytes of a segment lying `behind` bytes before `next`, `len` long, that
    /// fall in remembered gaps: records them, tells `out`, and returns how many
    /// had not arrived before.
    fn late_for_gaps<F: FnMut(StreamEvent<'_>)>(
        &mut self,
        behind: u64,
        len: u64,
        out: &mut F,
    ) -> u64 {
        // The segment's part below `next`, in stream offsets (bytes before the
        // stream's anchor have none).
        let lo = self.next.saturating_sub(behind);
        let hi = (i128::from(self.next) - i128::from(behind) + i128::from(len))
            .clamp(0, i128::from(self.next)) as u64;
        let now = self.now;
        let mut fresh_total = 0;
        let Some(rare) = &mut self.rare else {
            return 0;
        };
        for gap in &mut rare.gaps {
            let (a, b) = (lo.max(gap.offset), hi.min(gap.offset + gap.len));
            if a >= b {
                continue;
            }
            let fresh = gap.add(a, b);
            if fresh > 0 {
                fresh_total += fresh;
                out(StreamEvent::LateForGap {
                    gap_offset: gap.offset,
                    gap_len: gap.len,
                    arrived: gap.arrived_bytes(),
                    packets_late: now.packets.saturating_sub(gap.at.packets),
                    seconds_late: (now.time - gap.at.time).max(0.0),
                });
            }
        }
        rare.stats.late_after_gap_bytes += fresh_total;
        fresh_total
    }

    /// Signed distance from the next expected byte to `seq`, RFC 1982 style.
    fn delta(&self, base: u32, seq: u32) -> i64 {
        // Truncating `next` to 32 bits is the point: sequence space is mod 2^32.
        let next_seq = base.wrapping_add(self.next as u32);
        i64::from(seq.wrapping_sub(next_seq) as i32)
    }

    /// Whether a segment starting `delta` from `next` with at most one byte sits
    /// one below the highest byte seen (delivered or held).
    fn is_keepalive(&self, delta: i64) -> bool {
        let high = self
            .held
            .last_key_value()
            .map_or(self.next, |(&k, v)| k + v.bytes.len() as u64);
        high > 0 && i128::from(self.next) + i128::from(delta) + 1 == i128::from(high)
    }

    /// Counts an implausible segment, or resynchronises onto it after a run of
    /// consistent ones. Returns true when the segment should now be processed.
    fn implausible<F: FnMut(StreamEvent<'_>)>(
        &mut self,
        base: u32,
        data_seq: u32,
        payload: &[u8],
        out: &mut F,
    ) -> bool {
        self.count().implausible_segments += 1;
        self.count().implausible_bytes += payload.len() as u64;
        if payload.is_empty() {
            // Only data can prove where the stream went (and a resync Gap must
            // be followed by data).
            return false;
        }
        let (first, count) = match self.resync {
            Some((first, count))
                if (data_seq.wrapping_sub(first) as i32).unsigned_abs()
                    <= MAX_PLAUSIBLE_DISTANCE =>
            {
                (first, count + 1)
            }
            _ => (data_seq, 1),
        };
        if count < RESYNC_AFTER_SEGMENTS {
            self.resync = Some((first, count));
            return false;
        }
        // Resynchronising onto this segment: it is no longer garbage.
        self.count().implausible_segments -= 1;
        self.count().implausible_bytes -= payload.len() as u64;
        self.resync = None;
        let next_seq = base.wrapping_add(self.next as u32);
        let target = self.next + u64::from(data_seq.wrapping_sub(next_seq));
        self.deliver_all_held(out);
        self.gap_to(target, out);
        true
    }

    /// Places an out-of-order (or partly held-overlapping) segment that starts
    /// at or after `next`.
    fn insert<F: FnMut(StreamEvent<'_>)>(&mut self, start: u64, data: &[u8], out: &mut F) {
        let end = start + data.len() as u64;

        // Pass 1, read only: compare with held bytes (first wins).
        let from = match self.held.range(..=start).next_back() {
            Some((&k, v)) if k + v.bytes.len() as u64 > start => k,
            _ => start,
        };
        let mut overlap = 0u64;
        let mut conflicts = 0u64;
        for (&k, v) in self.held.range(from..end) {
            let lo = k.max(start);
            let hi = (k + v.bytes.len() as u64).min(end);
            if lo < hi {
                overlap += hi - lo;
                let kept = &v.bytes[(lo - k) as usize..(hi - k) as usize];
                let new = &data[(lo - start) as usize..(hi - start) as usize];
                if kept != new {
                    conflicts += kept.iter().zip(new).filter(|(a, b)| a != b).count() as u64;
                }
            }
        }
        if overlap > 0 {
            let count = self.count();
            count.retransmitted_bytes += overlap;
            count.overlap_conflicts += conflicts;
        }
        if overlap == data.len() as u64 {
            self.count().retransmitted_segments += 1;
            return;
        }
        if start > self.next {
            self.count().out_of_order_segments += 1;
        }
        if start < self.acked {
            self.count().late_after_ack_segments += 1;
        }

        // Pass 2: place each piece not already held, in stream order. Placing
        // may deliver (and so remove) held data; the free ranges we walk stay
        // free, so re-querying the map each step is consistent.
        let mut cur = start;
        while cur < end {
            if cur < self.next {
                cur = self.next;
                continue;
            }
            if let Some((&k, v)) = self.held.range(..=cur).next_back() {
                let held_end = k + v.bytes.len() as u64;
                if held_end > cur {
                    cur = held_end;
                    continue;
                }
            }
            let piece_end = self
                .held
                .range(cur..)
                .next()
                .map_or(end, |(&k, _)| k.min(end));
            let piece = &data[(cur - start) as usize..(piece_end - start) as usize];
            self.place(cur, piece, out);
            cur = piece_end;
        }
    }

    /// Places new bytes at `pos` (>= `next`) in a range nothing is held in:
    /// delivers them directly if in order, else copies them into `held`, first
    /// skipping holes to respect the caps. Never closes a hole for staleness:
    /// the rest of the segment being placed may fill it.
    fn place<F: FnMut(StreamEvent<'_>)>(&mut self, pos: u64, bytes: &[u8], out: &mut F) {
        loop {
            if pos == self.next {
                self.emit_direct(bytes, out);
                self.deliver_contiguous(out);
                return;
            }
            let fits = self.held.len() < self.limits.max_buffered_segments
                && self.held_bytes.saturating_add(bytes.len()) <= self.limits.max_buffered_bytes;
            if fits {
                let covered = (pos <= self.acked).then_some(self.now);
                self.held.insert(
                    pos,
                    Held {
                        bytes: bytes.to_vec(),
                        covered,
                    },
                );
                self.held_bytes += bytes.len();
                return;
            }
            let (gaps, gap_bytes) = self.gap_counts();
            let hole_end = match self.held.first_key_value() {
                Some((&k, _)) if k < pos => k,
                _ => pos,
            };
            let acknowledged = hole_end <= self.acked;
            // Skip the earliest hole and deliver the run after it (which ends
            // at or before `pos`, in a free range); or, nothing held before
            // `pos`, the hole before these bytes, which are then delivered
            // uncopied on the next turn.
            self.gap_to(hole_end, out);
            self.deliver_contiguous(out);
            let (gaps_after, gap_bytes_after) = self.gap_counts();
            if gaps_after > gaps {
                let count = self.count();
                if acknowledged {
                    count.grace_cut_gaps += gaps_after - gaps;
                } else {
                    count.limit_gaps += gaps_after - gaps;
                    count.limit_gap_bytes += gap_bytes_after - gap_bytes;
                }
            }
        }
    }

    /// Delivers bytes that start exactly at `next`, borrowed.
    fn emit_direct<F: FnMut(StreamEvent<'_>)>(&mut self, bytes: &[u8], out: &mut F) {
        self.next += bytes.len() as u64;
        out(StreamEvent::Data(bytes));
    }

    /// Emits a Gap from `next` up to `to`, if `to` is ahead, and remembers it.
    fn gap_to<F: FnMut(StreamEvent<'_>)>(&mut self, to: u64, out: &mut F) {
        if to > self.next {
            let len = to - self.next;
            out(StreamEvent::Gap {
                offset: self.next,
                len,
            });
            let at = self.now;
            let rare = self.rare.get_or_insert_with(Default::default);
            rare.stats.gaps += 1;
            rare.stats.gap_bytes += len;
            if rare.gaps.len() == MAX_REMEMBERED_GAPS {
                rare.gaps.pop_front();
            }
            rare.gaps.push_back(DeclaredGap {
                offset: self.next,
                len,
                at,
                arrived: Vec::new(),
            });
            self.next = to;
        }
    }

    /// Pops the first held segment and delivers whatever of it lies at or
    /// after `next` (its key must be <= `next`).
    fn deliver_first<F: FnMut(StreamEvent<'_>)>(&mut self, out: &mut F) {
        if let Some((k, v)) = self.held.pop_first() {
            self.held_bytes -= v.bytes.len();
            let end = k + v.bytes.len() as u64;
            if end > self.next {
                let skip = self.next.saturating_sub(k) as usize;
                self.next = end;
                out(StreamEvent::Data(&v.bytes[skip..]));
            }
        }
    }

    /// Delivers held data that became contiguous.
    fn deliver_contiguous<F: FnMut(StreamEvent<'_>)>(&mut self, out: &mut F) {
        while self
            .held
            .first_key_value()
            .is_some_and(|(&k, _)| k <= self.next)
        {
            self.deliver_first(out);
        }
    }

    /// Delivers held data that became contiguous, closing holes the peer
    /// acknowledged entirely once their grace window is over.
    fn drain<F: FnMut(StreamEvent<'_>)>(&mut self, out: &mut F) {
        while let Some((&k, held)) = self.held.first_key_value() {
            if k > self.next {
                let stale = k <= self.acked && held.covered.is_some_and(|c| self.stale(c));
                if !stale {
                    return;
                }
                self.gap_to(k, out);
            }
            self.deliver_first(out);
        }
    }

    /// Delivers everything held, with a Gap before each hole.
    fn deliver_all_held<F: FnMut(StreamEvent<'_>)>(&mut self, out: &mut F) {
        while let Some((&k, _)) = self.held.first_key_value() {
            self.gap_to(k, out);
            self.deliver_first(out);
        }
    }
}

#[cfg(test)]
#[path = "reassembly_test.rs"]
mod tests;
