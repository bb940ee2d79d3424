//! Ping/pong pairing: pings and pongs in, round-trip times and unanswered/unsolicited counts out.
//! A pong answers the oldest outstanding ping of the other side with the same payload
//! (RFC 6455 §5.5.3: the pong echoes the ping's application data).

use std::collections::VecDeque;

use super::clock;
use crate::diag::{Diagnostic, DiagnosticId, Side};
use crate::record::{PingRecord, RttSample};

/// Outstanding pings kept per side; a peer that pings without end cannot grow memory.
const MAX_OUTSTANDING: usize = 64;
/// Round-trip samples kept for the median and the record.
pub const MAX_SAMPLES: usize = 4096;
/// Intervals between one side's pings kept for their median (a heartbeat's period shows in the
/// first few).
const MAX_INTERVALS: usize = 64;

#[derive(Debug)]
struct Outstanding {
    time: f64,
    payload: Vec<u8>,
    /// The same side pinged again before the pong came.
    later_ping: bool,
    /// The pinging side sent its Close before the pong came.
    after_close: bool,
}

/// Seconds to milliseconds, rounded to the microsecond.
fn ms(s: f64) -> f64 {
    (s * 1e6).round() / 1e3
}

/// `ping_unanswered` for a ping `side` sent: the finding is the ping's (its sender, its time).
fn unanswered(side: Side, ping: &Outstanding, until: String) -> Diagnostic {
    let payload = std::str::from_utf8(&ping.payload)
        .ok()
        .filter(|t| !t.is_empty() && t.len() <= 40 && !t.chars().any(char::is_control))
        .map(|t| format!(" {t:?}"))
        .unwrap_or_else(|| format!(" of {} B", ping.payload.len()));
    Diagnostic::new(
        DiagnosticId::PingUnanswered,
        Some(side),
        Some(ping.time),
        format!(
            "{} ping{payload} sent at {} got no pong from the {} {until}",
            side.as_str(),
            clock(ping.time),
            side.peer().as_str()
        ),
    )
}

/// Pairs one connection's pings and pongs.
#[derive(Debug, Default)]
pub struct PingTracker {
    outstanding: [VecDeque<Outstanding>; 2],
    closed: [bool; 2],
    /// (pong time, who pinged, round trip in seconds).
    rtts: Vec<(f64, Side, f64)>,
    rtt_min: Option<f64>,
    rtt_max: Option<f64>,
    record: PingRecord,
    /// Per side (client, server): time of the last ping and pong sent, intervals between pings.
    last_ping: [Option<f64>; 2],
    last_pong: [Option<f64>; 2],
    intervals: [Vec<f64>; 2],
}

fn index(side: Side) -> usize {
    match side {
        Side::Client => 0,
        Side::Server => 1,
    }
}

impl PingTracker {
    /// A ping from `side`. Earlier pings still outstanding stay matchable: a peer may answer
    /// them in order, late, or (RFC 6455 §5.5.3) only answer the latest.
    pub fn ping(&mut self, side: Side, time: f64, payload: &[u8], out: &mut Vec<Diagnostic>) {
        match side {
            Side::Client => self.record.client_pings += 1,
            Side::Server => self.record.server_pings += 1,
        }
        let i = index(side);
        if let Some(prev) = self.last_ping[i]
            && self.intervals[i].len() < MAX_INTERVALS
        {
            self.intervals[i].push((time - prev).max(0.0));
        }
        self.last_ping[i] = Some(time);
        let queue = &mut self.outstanding[i];
        if queue.len() == MAX_OUTSTANDING
            && let Some(old) = queue.pop_front()
        {
            self.record.unanswered += 1;
            out.push(unanswered(
                side,
                &old,
                format!("while {MAX_OUTSTANDING} later pings were sent"),
            ));
        }
        for p in queue.iter_mut() {
            p.later_ping = true;
        }
        queue.push_back(Outstanding {
            time,
            payload: payload.to_vec(),
            later_ping: false,
            after_close: self.closed[index(side)],
        });
    }

    /// `side` sent its Close: its pings still outstanding can still be answered (a pong may
    /// follow a Close, RFC 6455 §5.5.1), but such an answer is late.
    pub fn close_sent(&mut self, side: Side) {
        self.closed[index(side)] = true;
        for p in self.outstanding[index(side)].iter_mut() {
            p.after_close = true;
        }
    }

    /// A pong from `side`: it answers the peer's oldest outstanding ping whose payload it
    /// echoes, however late. Returns the round trip.
    pub fn pong(
        &mut self,
        side: Side,
        time: f64,
        payload: &[u8],
        out: &mut Vec<Diagnostic>,
    ) -> Option<f64> {
        self.last_pong[index(side)] = Some(time);
        let queue = &mut self.outstanding[index(side.peer())];
        let matched = queue.iter().position(|p| p.payload == payload);
        match matched {
            Some(i) => {
                let ping = queue.remove(i).expect("bug: index from position");
                // Pings before the answered one are superseded, not lost: §5.5.3 allows
                // answering only the most recent.
                queue.drain(..i);
                let rtt = (time - ping.time).max(0.0);
                self.record.answered += 1;
                self.rtt_min = Some(self.rtt_min.map_or(rtt, |m| m.min(rtt)));
                self.rtt_max = Some(self.rtt_max.map_or(rtt, |m| m.max(rtt)));
                if self.rtts.len() < MAX_SAMPLES {
                    self.rtts.push((time, side.peer(), rtt));
                }
                // A pong after the next ping matters when it is slow enough to be a missed
                // heartbeat; after the pinger's Close it always does (the close analysis).
                if (ping.later_ping && rtt >= 1.0) || ping.after_close {
                    self.record.answered_late += 1;
                    let pinger = side.peer().as_str();
                    let after = match (ping.later_ping, ping.after_close) {
                        (true, true) => format!("after the {pinger}'s next ping and its Close"),
                        (true, false) => format!("after the {pinger}'s next ping"),
                        _ => format!("after the {pinger}'s Close"),
                    };
                    out.push(Diagnostic::new(
                        DiagnosticId::PongLate,
                        Some(side),
                        Some(time),
                        format!(
                            "{pinger} ping sent at {} answered late (after {}), {after}",
                            crate::analysis::clock(ping.time),
                            crate::analysis::close::human_seconds(rtt)
                        ),
                    ));
                }
                Some(rtt)
            }
            None => {
                self.record.unsolicited_pongs += 1;
                out.push(Diagnostic::new(
                    DiagnosticId::UnsolicitedPong,
                    Some(side),
                    Some(time),
                    format!(
                        "{} pong that answers no ping (allowed as a heartbeat)",
                        side.as_str()
                    ),
                ));
                None
            }
        }
    }

    /// The connection (or the capture) ended (`what`, at `time`): pings still outstanding never
    /// got their pong.
    pub fn settle(&mut self, what: &str, time: f64, out: &mut Vec<Diagnostic>) {
        for side in [Side::Client, Side::Server] {
            let queue = &mut self.outstanding[index(side)];
            while let Some(old) = queue.pop_front() {
                self.record.unanswered += 1;
                let context = if old.after_close {
                    format!(" (the {} had sent its Close)", side.as_str())
                } else {
                    String::new()
                };
                out.push(unanswered(
                    side,
                    &old,
                    format!("before {what} at {}{context}", clock(time)),
                ));
            }
        }
    }

    /// `side`'s pings still waiting for a pong: how many, and when the oldest was sent.
    pub fn outstanding(&self, side: Side) -> (u64, Option<f64>) {
        let queue = &self.outstanding[index(side)];
        (queue.len() as u64, queue.front().map(|p| p.time))
    }

    /// Time of `side`'s last ping and last pong.
    pub fn last_ping_pong(&self, side: Side) -> (Option<f64>, Option<f64>) {
        (self.last_ping[index(side)], self.last_pong[index(side)])
    }

    /// Median seconds between `side`'s pings, when it sent two or more.
    pub fn interval(&self, side: Side) -> Option<f64> {
        median(&self.intervals[index(side)])
    }

    /// The statistics so far.
    pub fn record(&self) -> PingRecord {
        let mut record = self.record.clone();
        record.rtt_min_ms = self.rtt_min.map(ms);
        record.rtt_max_ms = self.rtt_max.map(ms);
        record.rtt_samples = self
            .rtts
            .iter()
            .map(|&(time, from, rtt)| RttSample {
                time,
                from,
                rtt_ms: ms(rtt),
            })
            .collect();
        let rtts: Vec<f64> = self.rtts.iter().map(|s| s.2).collect();
        record.rtt_median_ms = median(&rtts).map(ms);
        record
    }
}

/// The median of some samples; None for none.
pub fn median(samples: &[f64]) -> Option<f64> {
    if samples.is_empty() {
        return None;
    }
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    Some(if sorted.len().is_multiple_of(2) {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    } else {
        sorted[mid]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_by_payload_and_reports_the_rest() {
        let mut t = PingTracker::default();
        let mut d = Vec::new();
        t.ping(Side::Client, 10.0, b"a", &mut d);
        assert!(t.pong(Side::Server, 10.004, b"a", &mut d).is_some());
        t.ping(Side::Client, 20.0, b"b", &mut d);
        t.pong(Side::Server, 20.010, b"zz", &mut d);
        t.ping(Side::Client, 30.0, b"c", &mut d);
        t.settle("the close", 31.0, &mut d);
        let ids: Vec<_> = d.iter().map(|x| x.id).collect();
        // The finding is the ping's: its sender and its time, both in the text.
        assert_eq!((d[1].from, d[1].time), (Some(Side::Client), Some(20.0)));
        assert_eq!(
            d[1].message,
            "client ping \"b\" sent at 00:00:20.000 got no pong from the server before the close at 00:00:31.000"
        );
        assert_eq!(
            ids,
            [
                DiagnosticId::UnsolicitedPong,
                DiagnosticId::PingUnanswered,
                DiagnosticId::PingUnanswered
            ]
        );
        let r = t.record();
        assert_eq!(
            (
                r.client_pings,
                r.answered,
                r.unanswered,
                r.unsolicited_pongs
            ),
            (3, 1, 2, 1)
        );
        assert_eq!(r.rtt_min_ms, Some(4.0));
    }

    #[test]
    fn heartbeat_period_and_the_pings_left_unanswered() {
        let mut t = PingTracker::default();
        let mut d = Vec::new();
        for (i, answered) in [true, true, false, false].into_iter().enumerate() {
            let at = 10.0 + 0.5 * i as f64;
            t.ping(Side::Server, at, &[i as u8], &mut d);
            if answered {
                t.pong(Side::Client, at + 0.001, &[i as u8], &mut d);
            }
        }
        assert_eq!(t.interval(Side::Server), Some(0.5));
        assert_eq!(t.interval(Side::Client), None);
        assert_eq!(t.outstanding(Side::Server), (2, Some(11.0)));
        assert_eq!(t.last_ping_pong(Side::Server).0, Some(11.5));
        assert_eq!(t.last_ping_pong(Side::Client).1, Some(10.501));
    }

    #[test]
    fn two_pings_in_flight_answered_in_order_are_both_answered() {
        let mut t = PingTracker::default();
        let mut d = Vec::new();
        t.ping(Side::Server, 1.0, b"1", &mut d);
        t.ping(Side::Server, 1.1, b"2", &mut d);
        t.pong(Side::Client, 1.2, b"1", &mut d);
        t.pong(Side::Client, 1.3, b"2", &mut d);
        t.settle("the end", 2.0, &mut d);
        assert!(d.is_empty(), "{d:?}");
        assert_eq!(t.record().answered, 2);
    }

    #[test]
    fn answering_only_the_latest_ping_is_allowed() {
        let mut t = PingTracker::default();
        let mut d = Vec::new();
        t.ping(Side::Client, 1.0, b"1", &mut d);
        t.ping(Side::Client, 2.0, b"2", &mut d);
        t.pong(Side::Server, 2.1, b"2", &mut d);
        t.settle("the end", 2.0, &mut d);
        assert!(d.is_empty(), "{d:?}");
        assert_eq!(t.record().unanswered, 0);
    }

    #[test]
    fn a_pong_after_the_next_ping_answers_its_own_ping_late() {
        let mut t = PingTracker::default();
        let mut d = Vec::new();
        t.ping(Side::Client, 1.0, b"1", &mut d);
        t.ping(Side::Client, 2.0, b"2", &mut d);
        let rtt = t.pong(Side::Server, 3.0, b"1", &mut d);
        assert_eq!(rtt, Some(2.0));
        assert_eq!(d[0].id, DiagnosticId::PongLate);
        assert!(
            d[0].message
                .contains("answered late (after 2.0 s), after the client's next ping"),
            "{}",
            d[0].message
        );
        t.pong(Side::Server, 3.1, b"2", &mut d);
        t.settle("the end", 2.0, &mut d);
        let r = t.record();
        assert_eq!(
            (
                r.answered,
                r.answered_late,
                r.unanswered,
                r.unsolicited_pongs
            ),
            (2, 1, 0, 0)
        );
    }

    #[test]
    fn a_pong_after_the_pinging_sides_close_still_answers_it() {
        // graphql-ws: the server pings, closes 4408 0.5 ms later, the client's pong follows.
        let mut t = PingTracker::default();
        let mut d = Vec::new();
        t.ping(Side::Server, 1.0, b"", &mut d);
        t.close_sent(Side::Server);
        assert!(t.pong(Side::Client, 1.0015, b"", &mut d).is_some());
        t.settle("the end", 2.0, &mut d);
        let ids: Vec<_> = d.iter().map(|x| x.id).collect();
        assert_eq!(ids, [DiagnosticId::PongLate]);
        assert!(
            d[0].message.ends_with("after the server's Close"),
            "{}",
            d[0].message
        );
        assert_eq!(t.record().unanswered, 0);
    }

    #[test]
    fn a_ping_never_answered_is_reported_at_the_end_with_its_close() {
        let mut t = PingTracker::default();
        let mut d = Vec::new();
        t.ping(Side::Client, 1.0, b"x", &mut d);
        t.close_sent(Side::Client);
        t.settle("the connection ended", 2.0, &mut d);
        assert_eq!(d[0].id, DiagnosticId::PingUnanswered);
        assert!(
            d[0].message.ends_with(
                "before the connection ended at 00:00:02.000 (the client had sent its Close)"
            ),
            "{}",
            d[0].message
        );
    }
}
