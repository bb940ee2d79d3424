//! `heartbeat_timeout`: heartbeats (WebSocket pings, or the application protocol's own: Engine.IO
//! ping/pong, MQTT PINGREQ, STOMP heart-beats ...) stopped being answered or stopped coming, then
//! the side waiting for them ended the connection after a consistent delay (its configured
//! timeout).

use serde_json::json;

use super::Input;
use super::ending::{Ending, How, idx};
use super::idle::MIN_MEMBERS;
use super::stats::{count_confidence, round2, value_clusters};
use super::text::{clock, secs, secs_range, side_word};
use crate::analysis::ping::median;
use crate::diag::Side;
use crate::record::{Finding, FindingId};

/// Words in a Close reason that name a heartbeat failure on their own ("keepalive ping
/// timeout" is Python websockets'): one such connection is an unambiguous signal.
const HEARTBEAT_WORDS: &[&str] = &[
    "ping",
    "pong",
    "heartbeat",
    "keepalive",
    "keep-alive",
    "keep alive",
];

/// Shortest delay after an unanswered ping that counts: below it the "timeout" is the round trip
/// of a ping sent just before an unrelated end.
const MIN_DELAY_S: f64 = 0.05;

/// How close the inferred timeout must be to the limit the application protocol announced
/// (pingTimeout, 1.5 x keep-alive ...) for the configuration to confirm it: the timers fire on
/// an event loop's schedule, a little late.
const LIMIT_TOLERANCE: f64 = 0.1;

/// Which heartbeats timed out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    /// WebSocket pings (RFC 6455 §5.5.2).
    WebSocket,
    /// The application protocol's (its heartbeat kind), by the decoder's reading of its rules.
    App {
        kind: &'static str,
        ping_unanswered: bool,
    },
}

impl Level {
    fn name(self) -> &'static str {
        match self {
            Level::WebSocket => "websocket ping/pong",
            Level::App { kind, .. } => kind,
        }
    }

    /// The ender's pings went unanswered (else the silent side's own beats stopped).
    fn unanswered(self) -> bool {
        match self {
            Level::WebSocket => true,
            Level::App {
                ping_unanswered, ..
            } => ping_unanswered,
        }
    }
}

/// One connection ended by a heartbeat timeout.
#[derive(Clone, Copy)]
struct Candidate<'a> {
    e: &'a Ending,
    /// The side that gave up.
    ender: Side,
    level: Level,
    /// Seconds from the oldest unanswered ping (or the last beat) to the end.
    delay: f64,
    /// The configured limit, when the protocol announced one.
    limit: Option<f64>,
}

impl Candidate<'_> {
    /// The side that sent the heartbeats that were missed: the ender for pings unanswered, the
    /// silent side for beats that stopped.
    fn pinger(&self) -> Side {
        if self.level.unanswered() {
            self.ender
        } else {
            self.ender.peer()
        }
    }

    /// When the wait began.
    fn since(&self) -> f64 {
        self.e.end - self.delay
    }

    /// The pinger's heartbeat interval.
    fn interval(&self) -> Option<f64> {
        match self.level {
            Level::WebSocket => self.e.ping_interval[idx(self.ender)].get().map(f64::from),
            Level::App { .. } => self.e.app()?.interval.map(f64::from),
        }
    }
}

/// The heartbeat timeout that ended `e`: the application protocol's when its decoder found one,
/// else the WebSocket pings of the side that ended it, still unanswered.
fn candidate(e: &Ending) -> Option<Candidate<'_>> {
    if !e.websocket || !e.ended() {
        return None;
    }
    if let Some(t) = e.app_timeout() {
        let delay = f64::from(t.waited);
        return (delay >= MIN_DELAY_S).then_some(Candidate {
            e,
            ender: t.ended_by,
            level: Level::App {
                kind: e.app().map_or("application heartbeats", |a| a.kind),
                ping_unanswered: t.ping_unanswered,
            },
            delay,
            limit: t.limit.map(f64::from),
        });
    }
    let by = e.by?;
    let delay = f64::from(e.unanswered_for[idx(by)].get()?);
    (e.unanswered[idx(by)] > 0 && delay >= MIN_DELAY_S).then_some(Candidate {
        e,
        ender: by,
        level: Level::WebSocket,
        delay,
        limit: None,
    })
}

/// Does the close reason name a heartbeat failure? Not for a Normal Closure (1000): that is the
/// application's own decision, whatever it says.
fn says_heartbeat(e: &Ending) -> bool {
    if matches!(e.how, How::Close { code: 1000, .. }) {
        return false;
    }
    e.reason.as_deref().is_some_and(|r| {
        let r = r.to_ascii_lowercase();
        HEARTBEAT_WORDS.iter().any(|w| r.contains(w))
    })
}

/// `heartbeat_timeout` findings.
pub fn heartbeat_timeouts(input: &Input<'_>) -> Vec<(Finding, f64)> {
    let all: Vec<Candidate<'_>> = input.endings.iter().filter_map(candidate).collect();
    // One group per side that gave up and kind of heartbeat: their timeouts are set apart.
    let mut groups: Vec<(Side, Level)> = Vec::new();
    for c in &all {
        if !groups.contains(&(c.ender, c.level)) {
            groups.push((c.ender, c.level));
        }
    }
    groups.sort_by_key(|(s, l)| (*s != Side::Server, l.name()));
    let mut out = Vec::new();
    for (ender, level) in groups {
        let candidates: Vec<Candidate<'_>> = all
            .iter()
            .copied()
            .filter(|c| c.ender == ender && c.level == level)
            .collect();
        let delays: Vec<f64> = candidates.iter().map(|c| c.delay).collect();
        let mut used = vec![false; candidates.len()];
        for cluster in value_clusters(&delays, MIN_MEMBERS) {
            cluster.members.iter().for_each(|&i| used[i] = true);
            let members: Vec<Candidate<'_>> =
                cluster.members.iter().map(|&i| candidates[i]).collect();
            out.push((finding(&members, false), cluster.p));
        }
        // A close reason that says it, alone.
        let explicit: Vec<Candidate<'_>> = candidates
            .iter()
            .zip(&used)
            .filter(|(c, used)| !**used && says_heartbeat(c.e))
            .map(|(c, _)| *c)
            .collect();
        if !explicit.is_empty() {
            out.push((finding(&explicit, true), 1e-6));
        }
    }
    out
}

fn finding(members: &[Candidate<'_>], by_reason: bool) -> Finding {
    let first = members[0];
    let (ender, level) = (first.ender, first.level);
    let silent = ender.peer();
    let pinger = first.pinger();
    let k = members.len();
    let delays: Vec<f64> = members.iter().map(|m| m.delay).collect();
    let timeout = median(&delays).unwrap_or(delays[0]);
    let (dmin, dmax) = delays
        .iter()
        .fold((f64::INFINITY, 0.0f64), |(a, b), &x| (a.min(x), b.max(x)));
    let intervals: Vec<f64> = members.iter().filter_map(Candidate::interval).collect();
    let interval = median(&intervals);
    let limits: Vec<f64> = members.iter().filter_map(|m| m.limit).collect();
    let limit = median(&limits);
    // The protocol's own configuration agrees with the delays.
    let confirmed = limit
        .filter(|l| limits.len() == k && (timeout - l).abs() <= LIMIT_TOLERANCE * l + MIN_DELAY_S);
    let since = members
        .iter()
        .map(Candidate::since)
        .fold(f64::INFINITY, f64::min);
    let how = match first.e.how {
        How::Close { code, .. } => {
            let reason = first
                .e
                .reason
                .as_deref()
                .map(|r| format!(" \"{r}\""))
                .unwrap_or_default();
            format!("Close {code}{reason}")
        }
        How::Rst => "RST".into(),
        How::Fin => "FIN".into(),
        How::CloseNotify => "TLS close_notify".into(),
        How::TlsAlert => "TLS alert".into(),
        How::Open => "nothing".into(),
    };
    let unreachable = members
        .iter()
        .filter(|m| m.e.unreachable().is_some_and(|u| u.0 == silent))
        .count();
    let servers: Vec<String> = {
        let mut s: Vec<String> = members.iter().map(|m| m.e.server.to_string()).collect();
        s.sort();
        s.dedup();
        s
    };
    let every = interval
        .map(|i| format!(" every {}", secs(i)))
        .unwrap_or_default();
    let (what, config) = match level {
        Level::WebSocket => ("pings".to_string(), String::new()),
        Level::App { kind, .. } => (
            format!("{kind} heartbeats"),
            confirmed
                .map(|l| format!(", matching its configured limit of {}", secs(l)))
                .unwrap_or_default(),
        ),
    };
    let mut evidence = if level.unanswered() {
        format!(
            "on {k} connection(s) to {} the {} sent {what}{every}, the {silent} stopped answering (first unanswered ping at {}), and the {ender} ended each {} after its oldest unanswered ping ({}) with a {how}{config}",
            servers.join(", "),
            side_word(pinger),
            clock(since),
            secs(timeout),
            secs_range(dmin, dmax),
            silent = side_word(silent),
            ender = side_word(ender),
        )
    } else {
        format!(
            "on {k} connection(s) to {} the {silent} sent {what}{every}, then stopped (first silence from {}), and the {ender} ended each {} after the {silent}'s last one ({}) with a {how}{config}",
            servers.join(", "),
            clock(since),
            secs(timeout),
            secs_range(dmin, dmax),
            silent = side_word(silent),
            ender = side_word(ender),
        )
    };
    if unreachable > 0 {
        evidence.push_str(&format!(
            "; on {unreachable} of them the {} was unreachable at the TCP level too (see peer_unreachable)",
            side_word(silent)
        ));
    }
    let settings = match level {
        Level::WebSocket => interval
            .map(|i| {
                format!(
                    " (pings every {}; Python websockets calls these ping_interval and ping_timeout)",
                    secs(i)
                )
            })
            .unwrap_or_default(),
        Level::App { kind, .. } => format!(" ({})", app_settings(kind)),
    };
    let explanation = if level.unanswered() {
        format!(
            "The {ender}'s keepalive gave up: its {what} got no answer for {}, its configured timeout{settings}, so it ended the connection. The {silent} was connected but not answering: its event loop was blocked, it was suspended, or it does not answer (and TCP still acknowledged).",
            secs(timeout),
            ender = side_word(ender),
            silent = side_word(silent),
        )
    } else {
        format!(
            "The {ender} stopped hearing the {silent}'s {what} and gave up after {}, its configured timeout{settings}. The {silent} was connected but had stopped sending them: its event loop was blocked, it was suspended, or its heartbeat timer stopped (and TCP still acknowledged).",
            secs(timeout),
            ender = side_word(ender),
            silent = side_word(silent),
        )
    };
    let advice = format!(
        "Find out why the {silent} stops {} (a blocked or busy event loop, a long synchronous task, a suspended tab or device); if it is only slow, raise the {ender}'s timeout above {}.",
        if level.unanswered() {
            "answering heartbeats"
        } else {
            "sending heartbeats"
        },
        secs(timeout),
        silent = side_word(silent),
        ender = side_word(ender),
    );
    let mut parameters = serde_json::Map::new();
    // The configured timeout: the protocol's own when the delays confirm it (they run a few
    // ms late on a busy event loop), else the delays' median.
    parameters.insert(
        "timeout_s".into(),
        json!(round3(confirmed.unwrap_or(timeout))),
    );
    parameters.insert("observed_timeout_s".into(), json!(round3(timeout)));
    parameters.insert("side".into(), json!(side_word(silent)));
    parameters.insert("pinging_side".into(), json!(side_word(pinger)));
    parameters.insert("ended_by".into(), json!(side_word(ender)));
    parameters.insert("heartbeat".into(), json!(level.name()));
    if let Some(i) = interval {
        parameters.insert("ping_interval_s".into(), json!(round3(i)));
    }
    if let Some(l) = limit {
        parameters.insert("configured_timeout_s".into(), json!(round3(l)));
    }
    parameters.insert("since".into(), json!(since));
    parameters.insert("spread_s".into(), json!([round3(dmin), round3(dmax)]));
    let mut confidence = if by_reason {
        0.7 + 0.3 * count_confidence(k)
    } else {
        count_confidence(k)
    };
    if !by_reason && (members.iter().any(|m| says_heartbeat(m.e)) || confirmed.is_some()) {
        confidence += (1.0 - confidence) * 0.5;
    }
    let mut ids: Vec<u64> = members.iter().map(|m| m.e.id).collect();
    ids.sort_unstable();
    Finding {
        id: FindingId::HeartbeatTimeout,
        confidence: round2(confidence),
        connections: ids,
        parameters,
        evidence,
        explanation,
        advice,
        suspects: Vec::new(),
        time: Some(since),
    }
}

/// Where each application protocol sets its heartbeat, for the explanation.
fn app_settings(kind: &str) -> &'static str {
    match kind {
        "engine.io ping/pong" => {
            "Socket.IO's server options pingInterval and pingTimeout; Engine.IO 3 clients ping and the server waits pingInterval + pingTimeout"
        }
        "MQTT PINGREQ/PINGRESP" => {
            "the CONNECT keep-alive: brokers drop a client silent for 1.5 x keep-alive, clients give up on a missing PINGRESP"
        }
        "STOMP heart-beat" => {
            "the CONNECT/CONNECTED heart-beat header; stomp.js gives up after twice the negotiated interval"
        }
        "ActionCable ping" => "ActionCable pings every 3 s; its client's staleThreshold is 6 s",
        "graphql ping/pong" => "graphql-ws keepAlive and the client's ping timeout",
        "phoenix heartbeat" => "the Phoenix client's heartbeatIntervalMs",
        "SignalR Ping" => "SignalR's KeepAliveInterval and ServerTimeout / ClientTimeoutInterval",
        _ => "the application protocol's heartbeat settings",
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}
