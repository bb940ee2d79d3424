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

#[derive(Debug)]
struct Outstanding {
    time: f64,
    payload: Vec<u8>,
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
    /// (pong time, who pinged, round trip in seconds).
    rtts: Vec<(f64, Side, f64)>,
    rtt_min: Option<f64>,
    rtt_max: Option<f64>,
    record: PingRecord,
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
        let queue = &mut self.outstanding[index(side)];
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
        queue.push_back(Outstanding {
            time,
            payload: payload.to_vec(),
        });
    }

    /// A pong from `side`.
    pub fn pong(&mut self, side: Side, time: f64, payload: &[u8], out: &mut Vec<Diagnostic>) {
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
            }
        }
    }

    /// The close handshake began or the connection ended (`what`, at `time`): pings still
    /// outstanding never got their pong.
    pub fn settle(&mut self, what: &str, time: f64, out: &mut Vec<Diagnostic>) {
        for side in [Side::Client, Side::Server] {
            let queue = &mut self.outstanding[index(side)];
            while let Some(old) = queue.pop_front() {
                self.record.unanswered += 1;
                out.push(unanswered(
                    side,
                    &old,
                    format!("before {what} at {}", clock(time)),
                ));
            }
        }
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
        if !self.rtts.is_empty() {
            let mut sorted: Vec<f64> = self.rtts.iter().map(|s| s.2).collect();
            sorted.sort_by(f64::total_cmp);
            let mid = sorted.len() / 2;
            let median = if sorted.len().is_multiple_of(2) {
                (sorted[mid - 1] + sorted[mid]) / 2.0
            } else {
                sorted[mid]
            };
            record.rtt_median_ms = Some(ms(median));
        }
        record
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_by_payload_and_reports_the_rest() {
        let mut t = PingTracker::default();
        let mut d = Vec::new();
        t.ping(Side::Client, 10.0, b"a", &mut d);
        t.pong(Side::Server, 10.004, b"a", &mut d);
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
}
