//! Findings across connections: why did they drop? Finished connection records (and connection
//! starts) in, patterns over their endings out ([`Finding`]s: idle timeouts, lifetimes,
//! restarts, graceful shutdowns, heartbeat timeouts, unreachable peers, proxy legs), each with a
//! confidence, the connections it covers, the numbers, and what to do.
//!
//! ```text
//! ConnectionRecord ─► Ending (a few hundred bytes) ─┐
//! connection start ─► Start ────────────────────────┴► detectors ─► Finding
//! ```
//!
//! Memory: one [`Ending`] per finished connection, up to [`MAX_ENDINGS`]; past it endings are
//! counted, not kept, and the report says so. The records themselves are never kept. A capture
//! file's endings wait in a temporary file until its end ([`spill`]), so they are not held
//! beside the open connections' state.
//!
//! A pattern needs evidence across connections (at least three sharing a value or an instant,
//! beyond chance: see [`stats`]) or one unambiguous signal (a peer that never acknowledged
//! retransmitted data, a close reason naming a keepalive, one session seen on both sides of a
//! proxy). Single-connection causes that are already clear stay in the connection's record.

pub mod burst;
pub mod chunked;
pub mod ending;
pub mod heartbeat;
pub mod idle;
pub mod legs;
pub mod spill;
pub mod stats;
pub mod suspects;
pub mod text;
pub mod unreachable;

use std::collections::{BTreeMap, HashSet};
use std::hash::Hash;

use crate::record::{Address, ConnectionRecord, Finding, FindingId};
use chunked::Chunked;
use ending::{Ending, Host, Start};
use spill::Endings;

/// Finished connections remembered for the findings: at 200 bytes each (in chunks, so none is
/// wasted by a doubling `Vec`), 200 000 hold 40 MB, enough for a capture of a large incident;
/// past it the rest are counted.
pub const MAX_ENDINGS: usize = 200_000;

/// Capture seconds between two looks for newly established patterns during a live capture.
pub const POLL_EVERY_S: f64 = 1.0;

/// During a live capture, looking for patterns may take at most this share of the time: with
/// hundreds of thousands of connections one look takes seconds, and the next waits.
const POLL_SHARE: f64 = 0.1;

/// What the detectors look at.
pub struct Input<'a> {
    /// Every finished connection kept.
    pub endings: &'a Chunked<Ending>,
    /// Every connection start known (finished or not).
    pub starts: &'a [Start],
    /// Starts of connections not finished yet.
    pub open: &'a [Start],
    /// Proxy leg pairs among `endings`: (front, back, same key, same frames).
    pub pairs: &'a [(usize, usize, bool, bool)],
    /// Capture time now.
    pub now: f64,
    /// The capture is over: nothing more will come.
    pub final_: bool,
    /// Per server: indices into `endings`, `starts` and `open` (every detector works per
    /// server; scanning all endings per server would be quadratic in a capture of many).
    pub by_server: BTreeMap<Host, ServerIndex>,
}

/// One server's share of the detectors' input.
#[derive(Debug, Default)]
pub struct ServerIndex {
    /// Indices into [`Input::endings`].
    pub endings: Vec<usize>,
    /// Indices into [`Input::starts`].
    pub starts: Vec<usize>,
    /// Indices into [`Input::open`].
    pub open: Vec<usize>,
}

impl<'a> Input<'a> {
    /// The index of endings, starts and open connections per server.
    pub fn index(
        endings: &Chunked<Ending>,
        starts: &[Start],
        open: &[Start],
    ) -> BTreeMap<Host, ServerIndex> {
        let mut by: BTreeMap<Host, ServerIndex> = BTreeMap::new();
        for (i, e) in endings.iter().enumerate() {
            by.entry(e.server).or_default().endings.push(i);
        }
        for (i, s) in starts.iter().enumerate() {
            by.entry(s.server).or_default().starts.push(i);
        }
        for (i, s) in open.iter().enumerate() {
            by.entry(s.server).or_default().open.push(i);
        }
        by
    }

    /// The servers of the endings, each once, in order.
    pub fn servers(&self) -> Vec<Host> {
        self.by_server
            .iter()
            .filter(|(_, ix)| !ix.endings.is_empty())
            .map(|(h, _)| *h)
            .collect()
    }

    /// The endings of connections to `server`.
    pub fn endings_of(&self, server: Host) -> impl Iterator<Item = &'a Ending> + '_ {
        let endings = self.endings;
        self.by_server
            .get(&server)
            .into_iter()
            .flat_map(move |ix| ix.endings.iter().map(move |&i| &endings[i]))
    }

    /// The starts of connections to `server`.
    pub fn starts_of(&self, server: Host) -> impl Iterator<Item = &'a Start> + '_ {
        let starts = self.starts;
        self.by_server
            .get(&server)
            .into_iter()
            .flat_map(move |ix| ix.starts.iter().map(move |&i| &starts[i]))
    }

    /// The connections to `server` not finished yet.
    pub fn open_of(&self, server: Host) -> impl Iterator<Item = &'a Start> + '_ {
        let open = self.open;
        self.by_server
            .get(&server)
            .into_iter()
            .flat_map(move |ix| ix.open.iter().map(move |&i| &open[i]))
    }

    /// Seconds from the first start to the last end.
    pub fn span(&self) -> f64 {
        let first = self
            .starts
            .iter()
            .map(|s| s.time)
            .fold(f64::INFINITY, f64::min);
        let last = self.endings.iter().map(|e| e.end).fold(self.now, f64::max);
        if first.is_finite() {
            (last - first).max(0.0)
        } else {
            0.0
        }
    }

    /// How many sessions the connections `ids` are, counting the two legs of a proxied session
    /// once.
    pub fn sessions(&self, ids: &[u64]) -> usize {
        let set: HashSet<u64> = ids.iter().copied().collect();
        let both = self
            .pairs
            .iter()
            .filter(|(a, b, ..)| {
                set.contains(&self.endings[*a].id) && set.contains(&self.endings[*b].id)
            })
            .count();
        ids.len() - both
    }
}

/// How many items of `a` are in `b` (in O(a + b): clusters can hold thousands of connections).
pub fn shared<T: Hash + Eq>(a: &[T], b: &[T]) -> usize {
    let b: HashSet<&T> = b.iter().collect();
    a.iter().filter(|x| b.contains(x)).count()
}

/// Gathers the connections of a run and draws the findings.
#[derive(Debug, Default)]
pub struct FindingsEngine {
    endings: Endings,
    /// Finished connections that were not WebSocket (refused upgrades): attempts to come back.
    refused: Vec<Start>,
    open: BTreeMap<u64, Start>,
    skipped: u64,
    latest: f64,
    /// Keys of the findings already announced during a live capture.
    announced: HashSet<String>,
    last_poll: f64,
    /// Seconds (wall clock) the last look took.
    last_cost: f64,
    changed: bool,
}

impl FindingsEngine {
    /// An engine with nothing seen, that keeps what it is given in memory.
    pub fn new() -> Self {
        Self::default()
    }

    /// An engine that writes the endings out to a temporary file in `dir` as they come and reads
    /// them back for [`FindingsEngine::finish`] (see `spill.rs`): for a run whose findings are
    /// only wanted at its end.
    pub fn spilling(dir: &std::path::Path) -> Self {
        FindingsEngine {
            endings: Endings::spilling(dir),
            ..Self::default()
        }
    }

    /// A connection became worth reporting.
    pub fn connection_seen(&mut self, id: u64, time: f64, client: &Address, server: &Address) {
        self.latest = self.latest.max(time);
        self.open.insert(
            id,
            Start {
                id,
                time,
                client: Host::of(client),
                server: Host::of(server),
                status: None,
            },
        );
        self.changed = true;
    }

    /// A connection's upgrade got its answer.
    pub fn handshake(&mut self, id: u64, status: Option<u16>) {
        if let Some(s) = self.open.get_mut(&id) {
            s.status = status;
        }
    }

    /// A connection finished.
    pub fn connection(&mut self, record: &ConnectionRecord) {
        self.open.remove(&record.id);
        self.latest = self.latest.max(record.last_seen);
        self.changed = true;
        if self.endings.len() + self.refused.len() >= MAX_ENDINGS {
            self.skipped += 1;
            return;
        }
        let ending = Ending::of(record);
        if ending.websocket {
            self.endings.push(ending);
        } else {
            let mut start = ending.start_of();
            start.status = record.handshake.as_ref().and_then(|h| h.status);
            self.refused.push(start);
        }
    }

    /// A finished connection given as its compact summary (synthetic endings: benchmarks,
    /// tests); counted against [`MAX_ENDINGS`] like the others.
    pub fn add(&mut self, ending: Ending) {
        self.latest = self.latest.max(ending.end);
        self.changed = true;
        if self.endings.len() + self.refused.len() >= MAX_ENDINGS {
            self.skipped += 1;
            return;
        }
        self.endings.push(ending);
    }

    /// Finished connections not kept because [`MAX_ENDINGS`] was reached.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    fn detect(&mut self, now: f64, final_: bool) -> Vec<Finding> {
        if let Err(spill::Lost(n)) = self.endings.all() {
            self.skipped += n as u64;
        }
        let endings = self.endings.kept();
        let pairs = legs::pairs(endings);
        let open: Vec<Start> = self.open.values().copied().collect();
        // Every start: of the finished connections, the refused ones and the open ones.
        let mut starts: Vec<Start> = endings.iter().map(Ending::start_of).collect();
        starts.extend(self.refused.iter().copied());
        starts.extend(open.iter().copied());
        let input = Input {
            endings,
            starts: &starts,
            open: &open,
            pairs: &pairs,
            now,
            final_,
            by_server: Input::index(endings, &starts, &open),
        };
        let mut found: Vec<(Finding, f64)> = Vec::new();
        let mut instants = burst::restarts(&input);
        instants.extend(burst::graceful_shutdowns(&input));
        // Live: clients may still come back, and make a mass disconnect a restart.
        let pending = |f: &Finding| {
            !final_
                && f.id == FindingId::MassDisconnect
                && now - f.time.unwrap_or(now) < burst::RECONNECT_WINDOW_S
        };
        let mut durations = idle::idle_timeouts(&input);
        durations.extend(idle::max_lifetimes(&input));
        let (durations, instants) = one_cause(durations, instants);
        found.extend(without_overlaps(durations));
        found.extend(instants.into_iter().filter(|(f, _)| !pending(f)));
        found.extend(heartbeat::heartbeat_timeouts(&input));
        found.extend(unreachable::unreachables(&input));
        found.extend(legs::proxy_legs(&input));
        let mut findings: Vec<Finding> = found.into_iter().map(|(f, _)| f).collect();
        findings.sort_by(|a, b| {
            b.confidence
                .total_cmp(&a.confidence)
                .then(a.time.unwrap_or(0.0).total_cmp(&b.time.unwrap_or(0.0)))
                .then(a.id.cmp(&b.id))
        });
        findings
    }

    /// During a live capture: the patterns that became established since the last call (each
    /// announced once). Looks at most every [`POLL_EVERY_S`] of capture time.
    pub fn poll(&mut self, now: f64) -> Vec<Finding> {
        self.latest = self.latest.max(now);
        let wait = POLL_EVERY_S.max(self.last_cost / POLL_SHARE);
        if !self.changed || now - self.last_poll < wait {
            return Vec::new();
        }
        self.last_poll = now;
        self.changed = false;
        let mut new = Vec::new();
        let started = std::time::Instant::now();
        let found = self.detect(self.latest, false);
        self.last_cost = started.elapsed().as_secs_f64();
        for f in found {
            if self.announced.insert(key(&f)) {
                new.push(f);
            }
        }
        new
    }

    /// The findings over everything seen.
    pub fn finish(&mut self) -> Vec<Finding> {
        self.detect(self.latest, true)
    }
}

/// A finding and the chance that its pattern is luck (smaller: more significant).
type Scored = (Finding, f64);

/// How much tighter a shared duration must be than the instant the same connections ended at
/// for the duration to be the cause: connections cut at a fixed age end as spread out as they
/// began, while a shutdown or a crash ends them all within milliseconds, whatever their age.
const TIGHTER: f64 = 3.0;

/// A duration pattern (idle time, age) and an instant pattern (restart, shutdown) over mostly
/// the same endings are one cause: the tighter one. Connections ended at one instant share
/// their age if they began together; connections cut at one age end together if they began
/// together.
fn one_cause(durations: Vec<Scored>, instants: Vec<Scored>) -> (Vec<Scored>, Vec<Scored>) {
    let overlap = |a: &Finding, b: &Finding| {
        shared(&a.connections, &b.connections) * 2 >= a.connections.len().min(b.connections.len())
    };
    let spread = |f: &Finding, key: &str| {
        let v = f.parameters.get(key);
        match v.and_then(|v| v.as_array()) {
            Some(a) if a.len() == 2 => a[1].as_f64().unwrap_or(0.0) - a[0].as_f64().unwrap_or(0.0),
            _ => v.and_then(|v| v.as_f64()).unwrap_or(0.0),
        }
    };
    let mut drop_instant = vec![false; instants.len()];
    let mut kept_durations = Vec::new();
    for (d, p) in durations {
        let mut keep = true;
        for (j, (i, _)) in instants.iter().enumerate() {
            if !overlap(&d, i) {
                continue;
            }
            if spread(&d, "spread_s") * TIGHTER < spread(i, "window_s") {
                drop_instant[j] = true;
            } else {
                keep = false;
            }
        }
        if keep {
            kept_durations.push((d, p));
        }
    }
    let instants = instants
        .into_iter()
        .zip(drop_instant)
        .filter(|(_, dropped)| !dropped)
        .map(|(i, _)| i)
        .collect();
    (kept_durations, instants)
}

/// Of the idle-time and lifetime patterns covering the same endings, the more significant.
fn without_overlaps(mut found: Vec<(Finding, f64)>) -> Vec<(Finding, f64)> {
    found.sort_by(|a, b| a.1.total_cmp(&b.1));
    let mut kept: Vec<(Finding, f64)> = Vec::new();
    for (f, p) in found {
        let overlaps = kept.iter().any(|(k, _)| {
            k.id != f.id && shared(&f.connections, &k.connections) * 2 >= f.connections.len()
        });
        if !overlaps {
            kept.push((f, p));
        }
    }
    kept
}

/// What makes a finding the same one as it grows: its id and its subject.
fn key(f: &Finding) -> String {
    let p = &f.parameters;
    let get = |k: &str| p.get(k).map(|v| v.to_string()).unwrap_or_default();
    let rounded = |k: &str| {
        p.get(k)
            .and_then(|v| v.as_f64())
            .map(|x| format!("{x:.1e}"))
            .unwrap_or_default()
    };
    match f.id {
        FindingId::IdleTimeout => format!("{}:{}", f.id.as_str(), rounded("timeout_s")),
        FindingId::MaxLifetime => format!("{}:{}", f.id.as_str(), rounded("lifetime_s")),
        FindingId::HeartbeatTimeout => {
            format!("{}:{}:{}", f.id.as_str(), get("side"), rounded("timeout_s"))
        }
        FindingId::ServerRestart | FindingId::MassDisconnect | FindingId::GracefulShutdown => {
            let t = p.get("time").and_then(|v| v.as_f64()).unwrap_or(0.0);
            format!(
                "{}:{}:{}:{}",
                f.id.as_str(),
                get("server"),
                get("code"),
                t.floor()
            )
        }
        FindingId::PeerUnreachable => format!("{}:{}:{}", f.id.as_str(), get("side"), get("host")),
        FindingId::ProxyLegs => format!("{}:{}", f.id.as_str(), get("legs")),
    }
}

#[cfg(test)]
mod tests;
