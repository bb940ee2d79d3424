//! Session pieces the protocols share: application heartbeats (paired pings or one-way beats)
//! and requests paired with their answers. Both are bounded: a peer that never answers cannot
//! grow memory.

use std::collections::VecDeque;

use crate::diag::{Diagnostic, DiagnosticId, Side};
use crate::record::{AppHeartbeatRecord, AppRequestsRecord, PerSide};

use super::{End, human, ms};

/// Round-trip samples kept for the median.
const MAX_SAMPLES: usize = 4096;
/// Requests awaiting an answer kept per connection; the oldest is given up past it.
const MAX_PENDING: usize = 1024;
/// Unanswered requests named in the record.
const MAX_NAMED: usize = 20;

fn median(samples: &[f64]) -> Option<f64> {
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

fn index(side: Side) -> usize {
    match side {
        Side::Client => 0,
        Side::Server => 1,
    }
}

/// Application heartbeats of one connection.
#[derive(Debug, Default)]
pub struct Heartbeat {
    /// What beats, for the record.
    pub kind: String,
    /// Interval announced or negotiated, seconds.
    pub interval: Option<f64>,
    /// Timeout announced or negotiated, seconds.
    pub timeout: Option<f64>,
    /// Where those come from.
    pub configured_by: Option<String>,
    sent: [u64; 2],
    last: [Option<f64>; 2],
    max_gap: [Option<f64>; 2],
    /// The latest ping of each side still waiting for its pong.
    outstanding: [Option<f64>; 2],
    answered: u64,
    unanswered: u64,
    rtts: Vec<f64>,
    rtt_max: Option<f64>,
}

impl Heartbeat {
    /// A tracker for `kind` heartbeats.
    pub fn new(kind: &str) -> Heartbeat {
        Heartbeat {
            kind: kind.to_string(),
            ..Heartbeat::default()
        }
    }

    /// A one-way beat from `side` (STOMP heart-beat, ActionCable ping).
    pub fn beat(&mut self, side: Side, time: f64) {
        let i = index(side);
        self.sent[i] += 1;
        if let Some(prev) = self.last[i] {
            let gap = (time - prev).max(0.0);
            self.max_gap[i] = Some(self.max_gap[i].map_or(gap, |g: f64| g.max(gap)));
        }
        self.last[i] = Some(time);
    }

    /// A ping from `side`; an earlier one still unanswered is counted as never answered (the
    /// protocols answer every ping before the next one is due).
    pub fn ping(&mut self, side: Side, time: f64) {
        self.beat(side, time);
        if self.outstanding[index(side)].replace(time).is_some() {
            self.unanswered += 1;
        }
    }

    /// A pong from `side`, answering the peer's latest ping; returns the round trip.
    pub fn pong(&mut self, side: Side, time: f64) -> Option<f64> {
        let ping = self.outstanding[index(side.peer())].take()?;
        let rtt = (time - ping).max(0.0);
        self.answered += 1;
        self.rtt_max = Some(self.rtt_max.map_or(rtt, |m| m.max(rtt)));
        if self.rtts.len() < MAX_SAMPLES {
            self.rtts.push(rtt);
        }
        self.last[index(side)] = Some(time);
        Some(rtt)
    }

    /// The time of `side`'s ping still waiting for its pong.
    pub fn pending(&self, side: Side) -> Option<f64> {
        self.outstanding[index(side)]
    }

    /// The time of `side`'s last heartbeat (ping, pong or beat).
    pub fn last(&self, side: Side) -> Option<f64> {
        self.last[index(side)]
    }

    /// Heartbeats `side` sent.
    pub fn sent(&self, side: Side) -> u64 {
        self.sent[index(side)]
    }

    /// Has anything beaten?
    pub fn any(&self) -> bool {
        self.sent != [0, 0] || self.answered > 0
    }

    /// The record; pings still outstanding count as unanswered.
    pub fn record(&self) -> AppHeartbeatRecord {
        let pending = self.outstanding.iter().filter(|o| o.is_some()).count() as u64;
        AppHeartbeatRecord {
            kind: self.kind.clone(),
            interval_ms: self.interval.map(ms),
            timeout_ms: self.timeout.map(ms),
            configured_by: self.configured_by.clone(),
            sent: PerSide {
                client: self.sent[0],
                server: self.sent[1],
            },
            answered: self.answered,
            unanswered: self.unanswered + pending,
            rtt_median_ms: median(&self.rtts).map(ms),
            rtt_max_ms: self.rtt_max.map(ms),
            max_gap_ms: PerSide {
                client: self.max_gap[0].map(ms),
                server: self.max_gap[1].map(ms),
            },
            last: self.last.iter().flatten().copied().reduce(f64::max),
        }
    }

    /// The heartbeat timeout at the end, if the evidence shows one: `pinger`'s last ping
    /// unanswered and the connection ended by the pinger at least `timeout` later (or, with
    /// `by_peer`, by either side).
    pub fn timeout_at_end(&self, pinger: Side, end: &End) -> Option<(f64, Side, f64)> {
        let ping = self.pending(pinger)?;
        let (closer, t) = end.first()?;
        let waited = (t - ping).max(0.0);
        Some((waited, closer, ping))
    }
}

struct Pending {
    key: String,
    what: String,
    from: Side,
    time: f64,
}

/// Requests paired with their answers by key.
#[derive(Default)]
pub struct Requests {
    /// What is paired, for the record.
    pub kind: String,
    pending: VecDeque<Pending>,
    sent: u64,
    answered: u64,
    errors: u64,
    given_up: u64,
    latencies: Vec<f64>,
    latency_max: Option<f64>,
}

impl Requests {
    /// A tracker for `kind`.
    pub fn new(kind: &str) -> Requests {
        Requests {
            kind: kind.to_string(),
            ..Requests::default()
        }
    }

    /// A request from `from` with `key`, described as `what` (`eth_call`, `subscription ...`).
    pub fn open(&mut self, key: String, what: String, from: Side, time: f64) {
        self.sent += 1;
        if self.pending.len() == MAX_PENDING {
            self.pending.pop_front();
            self.given_up += 1;
        }
        self.pending.push_back(Pending {
            key,
            what,
            from,
            time,
        });
    }

    /// Is `key` waiting for an answer?
    pub fn is_open(&self, key: &str) -> bool {
        self.pending.iter().any(|p| p.key == key)
    }

    /// The answer to `key`; returns (latency, what was asked) when it was pending.
    pub fn answer(&mut self, key: &str, time: f64, error: bool) -> Option<(f64, String)> {
        let i = self.pending.iter().position(|p| p.key == key)?;
        let p = self.pending.remove(i)?;
        let latency = (time - p.time).max(0.0);
        self.answered += 1;
        if error {
            self.errors += 1;
        }
        self.latency_max = Some(self.latency_max.map_or(latency, |m| m.max(latency)));
        if self.latencies.len() < MAX_SAMPLES {
            self.latencies.push(latency);
        }
        Some((latency, p.what))
    }

    /// Anything sent at all?
    pub fn any(&self) -> bool {
        self.sent > 0
    }

    /// The record and an `app_request_unanswered` per request still pending at `end`.
    pub fn finish(
        &mut self,
        protocol: &str,
        end: &End,
        out: &mut Vec<Diagnostic>,
    ) -> AppRequestsRecord {
        let end_time = end.time();
        let mut named = Vec::new();
        for p in &self.pending {
            let waited = (end_time - p.time).max(0.0);
            // Keys carry the asking side (`client:4`) to pair per direction; people see the id.
            let shown = p
                .key
                .strip_prefix("client:")
                .or_else(|| p.key.strip_prefix("server:"))
                .unwrap_or(&p.key);
            if named.len() < MAX_NAMED {
                named.push(format!(
                    "{} {} at {}",
                    shown,
                    p.what,
                    crate::analysis::clock(p.time)
                ));
            }
            out.push(Diagnostic::new(
                DiagnosticId::AppRequestUnanswered,
                Some(p.from.peer()),
                Some(p.time),
                format!(
                    "{protocol}: {} {} {} from the {} got no answer in {} before {}",
                    self.kind,
                    shown,
                    p.what,
                    p.from.as_str(),
                    human(waited),
                    end.describe()
                ),
            ));
        }
        let unanswered = self.pending.len() as u64 + self.given_up;
        self.pending.clear();
        AppRequestsRecord {
            kind: self.kind.clone(),
            sent: self.sent,
            answered: self.answered,
            errors: self.errors,
            unanswered,
            latency_median_ms: median(&self.latencies).map(ms),
            latency_max_ms: self.latency_max.map(ms),
            pending: named,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pings_pair_with_the_peers_pongs_and_missed_ones_count() {
        let mut h = Heartbeat::new("test");
        h.ping(Side::Server, 1.0);
        assert!((h.pong(Side::Client, 1.002).unwrap() - 0.002).abs() < 1e-9);
        h.ping(Side::Server, 2.0);
        h.ping(Side::Server, 3.0);
        assert!(
            h.pong(Side::Server, 3.1).is_none(),
            "a pong answers the peer"
        );
        let r = h.record();
        assert_eq!((r.answered, r.unanswered), (1, 2));
        assert_eq!(r.max_gap_ms.server, Some(1000.0));
    }

    #[test]
    fn requests_pair_by_key_and_the_rest_are_reported() {
        let mut q = Requests::new("id");
        q.open("1".into(), "a".into(), Side::Client, 1.0);
        q.open("2".into(), "b".into(), Side::Client, 1.0);
        assert!(q.answer("1", 1.5, true).is_some());
        assert!(q.answer("1", 1.6, false).is_none());
        let end = End {
            last_seen: 5.0,
            ..End::default()
        };
        let mut d = Vec::new();
        let r = q.finish("x", &end, &mut d);
        assert_eq!((r.sent, r.answered, r.errors, r.unanswered), (2, 1, 1, 1));
        assert_eq!(d[0].id, DiagnosticId::AppRequestUnanswered);
        assert!(d[0].message.contains("in 4.0 s"), "{}", d[0].message);
    }
}
