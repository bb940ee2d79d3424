//! Delivery of one direction as the capture saw it: this side's segments (sequence number, length,
//! SYN/FIN) and the peer's acknowledgement numbers in; when data went unacknowledged, how often
//! it was retransmitted (especially just before the end) and how many bytes were never
//! acknowledged out.
//!
//! Kept apart from [`super::reassembly`] on purpose: the reassembler decides which bytes the
//! layers above see; this only watches sequence and acknowledgement numbers, so that the
//! analysis can tell "the peer went silent while this side kept retransmitting" (a vanished host,
//! a black-holing middlebox) from an ordinary end. It keeps a few numbers and two small bounded
//! queues per direction, never payload.
//!
//! Sequence numbers are unwrapped as in the reassembler (RFC 1982 serial arithmetic against the
//! highest sequence number seen), giving `u64` offsets from the first segment that occupied
//! sequence space.

use std::collections::VecDeque;

use crate::record::DeliveryRecord;

/// The window before the end of a connection in which retransmissions count as "near the end":
/// Linux starts the retransmission timeout at 200 ms and doubles it (RFC 6298 §5.5), so ten
/// seconds hold the first five or six retransmissions of a segment into the void, and an
/// ordinary loss long before the end falls outside.
pub const NEAR_END_SECONDS: f64 = 10.0;

/// Retransmission times kept (the newest), enough for [`NEAR_END_SECONDS`] of backed-off
/// retransmissions of several segments; older ones are only counted.
const MAX_RETRANSMISSION_TIMES: usize = 64;

/// Segments with data in flight remembered with their send time; when full, the newest entry is
/// extended, so the oldest unacknowledged byte keeps its true first-send time.
const MAX_IN_FLIGHT: usize = 64;

/// A segment at most this far before the highest sequence number seen is a retransmission;
/// further back it cannot belong to this stream (the reassembler's plausibility bound: the
/// largest TCP window, RFC 7323 §2.3).
const MAX_PLAUSIBLE_DISTANCE: i64 = 1 << 30;

/// What one direction's delivery looked like at the end.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct DeliveryStats {
    /// Time of the last segment this side sent (any flags).
    pub last_packet: Option<f64>,
    /// Time of the last segment that carried bytes not sent before.
    pub last_new_data: Option<f64>,
    /// Segments that repeated sequence space already sent (payload, SYN or FIN), in all.
    pub retransmissions: u64,
    /// Of those, how many were sent within [`NEAR_END_SECONDS`] before `end`.
    pub retransmissions_near_end: u64,
    /// Of those, how many were sent at or after `unacked_since` (into the silence).
    pub retransmissions_unacked: u64,
    /// Time of the last retransmission.
    pub last_retransmission: Option<f64>,
    /// Payload bytes sent that the peer never acknowledged in the capture.
    pub unacked_bytes: u64,
    /// First-send time of the oldest byte (or FIN) still unacknowledged at the end.
    pub unacked_since: Option<f64>,
    /// Time the peer last acknowledged new sequence space of this side.
    pub last_ack: Option<f64>,
}

/// Watches one direction of one connection.
#[derive(Debug, Default)]
pub struct Delivery {
    /// Raw sequence number at offset `high`, once anchored.
    high_seq: Option<u32>,
    /// Offset just past the highest sequence space sent (payload, SYN, FIN).
    high: u64,
    /// Offset just past the highest payload byte sent.
    high_data: u64,
    /// Highest offset the peer acknowledged.
    acked: u64,
    /// The peer acknowledged something at least once (before that, nothing is "unacknowledged":
    /// a capture that starts mid-connection sees data before it sees ACKs).
    ack_seen: bool,
    /// (end offset, first-send time) of sequence space in flight, oldest first.
    in_flight: VecDeque<(u64, f64)>,
    /// Newest retransmission times.
    retransmission_times: VecDeque<f64>,
    retransmissions: u64,
    last_packet: Option<f64>,
    last_new_data: Option<f64>,
    last_ack: Option<f64>,
}

impl Delivery {
    /// A direction with nothing seen.
    pub fn new() -> Self {
        Self::default()
    }

    /// The connection is idle: give back the queues' spare capacity.
    pub fn shrink(&mut self) {
        self.in_flight.shrink_to_fit();
        self.retransmission_times.shrink_to_fit();
    }

    /// Signed distance from the highest sequence number seen to `seq`.
    fn delta(&self, seq: u32) -> Option<i64> {
        self.high_seq
            .map(|high| i64::from(seq.wrapping_sub(high) as i32))
    }

    /// One segment this side sent: `len` payload bytes from `seq`.
    pub fn on_segment(&mut self, seq: u32, len: usize, syn: bool, fin: bool, rst: bool, time: f64) {
        self.last_packet = Some(time);
        if rst {
            return; // RST occupies no sequence space and is never retransmitted
        }
        let len = len as u64;
        let space = len + u64::from(syn) + u64::from(fin);
        if space == 0 {
            return; // pure ACK or window update
        }
        let Some(delta) = self.delta(seq) else {
            self.high_seq = Some(seq.wrapping_add(space as u32));
            self.high = space;
            self.high_data = len + u64::from(syn);
            self.record_new(space, time);
            return;
        };
        if delta.abs() > MAX_PLAUSIBLE_DISTANCE {
            return; // garbage or another connection on the same ports
        }
        let start = self.high as i64 + delta;
        let end = start + space as i64;
        let high = self.high as i64;
        if start < high {
            // RFC 1122 §4.2.3.6 keep-alive: at most one byte at one below the highest sent,
            // which the peer already acknowledged.
            let keepalive =
                len <= 1 && !syn && !fin && start == high - 1 && start < self.acked as i64;
            if !keepalive {
                self.retransmissions += 1;
                if self.retransmission_times.len() == MAX_RETRANSMISSION_TIMES {
                    self.retransmission_times.pop_front();
                }
                self.retransmission_times.push_back(time);
            }
        }
        if end > high {
            let new_end = end as u64;
            self.high_seq = Some(seq.wrapping_add(space as u32));
            self.high = new_end;
            // A segment reaching back before the first one seen starts at offset 0 at the
            // earliest.
            let data_end = (start + i64::from(syn)).max(0) as u64 + len;
            self.high_data = self.high_data.max(data_end);
            self.record_new(new_end, time);
        }
    }

    fn record_new(&mut self, end: u64, time: f64) {
        self.last_new_data = Some(time);
        if self.in_flight.len() == MAX_IN_FLIGHT
            && let Some(last) = self.in_flight.back_mut()
        {
            last.0 = end;
            return;
        }
        self.in_flight.push_back((end, time));
    }

    /// An acknowledgement number the peer sent.
    pub fn on_peer_ack(&mut self, ack: u32, time: f64) {
        let Some(delta) = self.delta(ack) else {
            return;
        };
        if delta.abs() > MAX_PLAUSIBLE_DISTANCE {
            return;
        }
        let acked = self.high as i64 + delta;
        if acked < 0 {
            return;
        }
        let acked = acked as u64;
        if !self.ack_seen || acked > self.acked {
            self.ack_seen = true;
            if acked > self.acked {
                self.last_ack = Some(time);
            }
            self.acked = self.acked.max(acked);
            if acked > self.high {
                // The capture missed segments the peer received.
                self.high = acked;
                self.high_seq = Some(ack);
            }
            while self.in_flight.front().is_some_and(|&(end, _)| end <= acked) {
                self.in_flight.pop_front();
            }
        }
    }

    /// The state at the end, as the connection record carries it.
    pub fn record(&self, end: f64) -> DeliveryRecord {
        let d = self.stats(end);
        DeliveryRecord {
            last_packet: d.last_packet,
            last_new_data: d.last_new_data,
            retransmissions: d.retransmissions,
            retransmissions_near_end: d.retransmissions_near_end,
            last_retransmission: d.last_retransmission,
            unacked_bytes: d.unacked_bytes,
            unacked_since: d.unacked_since,
            retransmissions_unacked: d.retransmissions_unacked,
            last_ack: d.last_ack,
        }
    }

    /// The state at the end; `end` is the time the connection ended (or the capture did).
    pub fn stats(&self, end: f64) -> DeliveryStats {
        let count_since = |t: f64| {
            self.retransmission_times
                .iter()
                .filter(|&&r| r >= t)
                .count() as u64
        };
        let unacked_bytes = if self.ack_seen {
            self.high_data.saturating_sub(self.acked)
        } else {
            0
        };
        // A last FIN whose ACK came after the connection was finished (or was not captured) is
        // not "unacknowledged" unless it had to be sent again.
        let unacked_since = self
            .in_flight
            .front()
            .map(|&(_, t)| t)
            .filter(|&t| self.ack_seen && (unacked_bytes > 0 || count_since(t) > 0));
        DeliveryStats {
            last_packet: self.last_packet,
            last_new_data: self.last_new_data,
            retransmissions: self.retransmissions,
            retransmissions_near_end: count_since(end - NEAR_END_SECONDS),
            retransmissions_unacked: unacked_since.map_or(0, count_since),
            last_retransmission: self.retransmission_times.back().copied(),
            unacked_bytes,
            unacked_since,
            last_ack: self.last_ack,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acknowledged_data_leaves_nothing_unacked() {
        let mut d = Delivery::new();
        d.on_segment(100, 0, true, false, false, 1.0);
        d.on_peer_ack(101, 1.001);
        d.on_segment(101, 50, false, false, false, 2.0);
        d.on_peer_ack(151, 2.001);
        let s = d.stats(3.0);
        assert_eq!((s.unacked_bytes, s.unacked_since), (0, None));
        assert_eq!(s.retransmissions, 0);
        assert_eq!(s.last_ack, Some(2.001));
    }

    #[test]
    fn retransmissions_into_silence_are_counted_from_the_first_unacked_send() {
        let mut d = Delivery::new();
        d.on_segment(1000, 10, false, false, false, 1.0);
        d.on_peer_ack(1010, 1.01);
        // New data at 5.0, never acknowledged, retransmitted with backoff; more data queued.
        d.on_segment(1010, 20, false, false, false, 5.0);
        d.on_segment(1030, 5, false, false, false, 5.1);
        for t in [5.2, 5.6, 6.4, 8.0, 11.2] {
            d.on_segment(1010, 20, false, false, false, t);
        }
        let s = d.stats(12.0);
        assert_eq!(s.unacked_bytes, 25);
        assert_eq!(s.unacked_since, Some(5.0));
        assert_eq!(s.retransmissions, 5);
        assert_eq!(s.retransmissions_unacked, 5);
        assert_eq!(s.retransmissions_near_end, 5);
        assert_eq!(s.last_retransmission, Some(11.2));
        assert_eq!(s.last_ack, Some(1.01));
        // Only those within NEAR_END_SECONDS of a later end.
        assert_eq!(d.stats(17.0).retransmissions_near_end, 2);
    }

    #[test]
    fn partial_acks_move_the_oldest_unacked_send_time() {
        let mut d = Delivery::new();
        d.on_segment(0, 10, false, false, false, 1.0);
        d.on_peer_ack(0, 1.0);
        d.on_segment(10, 10, false, false, false, 2.0);
        d.on_segment(20, 10, false, false, false, 3.0);
        d.on_peer_ack(20, 3.5);
        let s = d.stats(4.0);
        assert_eq!((s.unacked_bytes, s.unacked_since), (10, Some(3.0)));
    }

    #[test]
    fn keepalive_probes_and_pure_acks_are_not_retransmissions() {
        let mut d = Delivery::new();
        d.on_segment(500, 100, false, false, false, 1.0);
        d.on_peer_ack(600, 1.1);
        d.on_segment(600, 0, false, false, false, 2.0); // pure ACK
        d.on_segment(599, 1, false, false, false, 30.0); // keep-alive with one garbage byte
        d.on_segment(599, 0, false, false, false, 60.0); // keep-alive without
        let s = d.stats(61.0);
        assert_eq!(s.retransmissions, 0);
        assert_eq!(s.unacked_bytes, 0);
        assert_eq!(s.last_packet, Some(60.0));
        assert_eq!(s.last_new_data, Some(1.0));
    }

    #[test]
    fn a_retransmitted_fin_counts_and_stays_unacked() {
        let mut d = Delivery::new();
        d.on_segment(u32::MAX - 5, 10, false, false, false, 1.0); // wraps
        d.on_peer_ack(4, 1.1);
        d.on_segment(4, 0, false, true, false, 2.0);
        d.on_segment(4, 0, false, true, false, 2.4);
        let s = d.stats(3.0);
        assert_eq!(s.retransmissions, 1);
        assert_eq!(s.unacked_since, Some(2.0));
        assert_eq!(s.unacked_bytes, 0, "a FIN is not payload");
        // Sent once and not (yet) acknowledged: the normal last packet of a connection.
        let mut once = Delivery::new();
        once.on_segment(4, 10, false, false, false, 1.0);
        once.on_peer_ack(14, 1.1);
        once.on_segment(14, 0, false, true, false, 2.0);
        assert_eq!(once.stats(2.0).unacked_since, None);
    }

    #[test]
    fn before_any_ack_nothing_is_called_unacknowledged() {
        let mut d = Delivery::new();
        d.on_segment(7, 100, false, false, false, 1.0);
        let s = d.stats(2.0);
        assert_eq!((s.unacked_bytes, s.unacked_since), (0, None));
    }

    #[test]
    fn a_segment_from_before_the_first_one_seen_does_not_overflow() {
        let mut d = Delivery::new();
        d.on_segment(1000, 10, false, false, false, 1.0);
        // Starts 100 bytes before the anchor and reaches past it (a reordered, longer copy).
        d.on_segment(910, 65_000, true, false, false, 1.1);
        d.on_peer_ack(900, 1.2);
        let s = d.stats(2.0);
        assert_eq!(s.retransmissions, 1);
        assert!(s.unacked_bytes <= 65_000);
    }

    #[test]
    fn in_flight_memory_is_bounded() {
        let mut d = Delivery::new();
        d.on_segment(0, 1, false, false, false, 0.0);
        d.on_peer_ack(1, 0.0);
        for i in 0..10_000u32 {
            d.on_segment(1 + i, 1, false, false, false, 1.0 + f64::from(i));
            d.on_segment(1 + i, 1, false, false, false, 1.5 + f64::from(i));
        }
        assert!(d.in_flight.len() <= MAX_IN_FLIGHT);
        assert!(d.retransmission_times.len() <= MAX_RETRANSMISSION_TIMES);
        let s = d.stats(20_000.0);
        assert_eq!(s.unacked_since, Some(1.0));
        assert_eq!(s.unacked_bytes, 10_000);
        assert_eq!(s.retransmissions, 10_000);
    }
}
