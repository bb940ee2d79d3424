//! `heartbeat_timeout`: pings went unanswered, then the pinging side ended the connection after
//! a consistent delay (its configured timeout).

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

/// (pinging side, delay from the oldest unanswered ping to the end) of a candidate.
fn candidate(e: &Ending) -> Option<(Side, f64)> {
    if !e.websocket || !e.ended() {
        return None;
    }
    let by = e.by?;
    let delay = f64::from(e.unanswered_for[idx(by)]?);
    (e.unanswered[idx(by)] > 0 && delay >= MIN_DELAY_S).then_some((by, delay))
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
    let mut out = Vec::new();
    for pinger in [Side::Server, Side::Client] {
        let candidates: Vec<(&Ending, f64)> = input
            .endings
            .iter()
            .filter_map(|e| candidate(e).filter(|c| c.0 == pinger).map(|c| (e, c.1)))
            .collect();
        let delays: Vec<f64> = candidates.iter().map(|c| c.1).collect();
        let mut used = vec![false; candidates.len()];
        for cluster in value_clusters(&delays, MIN_MEMBERS) {
            cluster.members.iter().for_each(|&i| used[i] = true);
            let members: Vec<(&Ending, f64)> =
                cluster.members.iter().map(|&i| candidates[i]).collect();
            out.push((finding(pinger, &members, false), cluster.p));
        }
        // A close reason that says it, alone.
        let explicit: Vec<(&Ending, f64)> = candidates
            .iter()
            .zip(&used)
            .filter(|(c, used)| !**used && says_heartbeat(c.0))
            .map(|(c, _)| *c)
            .collect();
        if !explicit.is_empty() {
            out.push((finding(pinger, &explicit, true), 1e-6));
        }
    }
    out
}

fn finding(pinger: Side, members: &[(&Ending, f64)], by_reason: bool) -> Finding {
    let silent = pinger.peer();
    let k = members.len();
    let delays: Vec<f64> = members.iter().map(|m| m.1).collect();
    let timeout = median(&delays).unwrap_or(delays[0]);
    let (dmin, dmax) = delays
        .iter()
        .fold((f64::INFINITY, 0.0f64), |(a, b), &x| (a.min(x), b.max(x)));
    let intervals: Vec<f64> = members
        .iter()
        .filter_map(|m| m.0.ping_interval[idx(pinger)].map(f64::from))
        .collect();
    let interval = median(&intervals);
    let since = members
        .iter()
        .filter_map(|m| m.0.first_unanswered(pinger))
        .fold(f64::INFINITY, f64::min);
    let how = match members[0].0.how {
        How::Close { code, .. } => {
            let reason = members[0]
                .0
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
        .filter(|m| m.0.unreachable.is_some_and(|u| u.0 == silent))
        .count();
    let servers: Vec<String> = {
        let mut s: Vec<String> = members.iter().map(|m| m.0.server.to_string()).collect();
        s.sort();
        s.dedup();
        s
    };
    let mut evidence = format!(
        "on {k} connection(s) to {} the {} pinged{}, the {silent} stopped answering (first unanswered ping at {}), and the {pinger} ended each {} after its oldest unanswered ping ({}) with a {how}",
        servers.join(", "),
        side_word(pinger),
        interval
            .map(|i| format!(" every {}", secs(i)))
            .unwrap_or_default(),
        clock(since),
        secs(timeout),
        secs_range(dmin, dmax),
        silent = side_word(silent),
        pinger = side_word(pinger),
    );
    if unreachable > 0 {
        evidence.push_str(&format!(
            "; on {unreachable} of them the {} was unreachable at the TCP level too (see peer_unreachable)",
            side_word(silent)
        ));
    }
    let explanation = format!(
        "The {pinger}'s keepalive gave up: its pings got no pong for {}, its configured timeout{}, so it ended the connection. The {silent} was connected but not answering pings: its event loop was blocked, it was suspended, or it does not answer pings (and TCP still acknowledged).",
        secs(timeout),
        interval
            .map(|i| format!(
                " (pings every {}; Python websockets calls these ping_interval and ping_timeout)",
                secs(i)
            ))
            .unwrap_or_default(),
        pinger = side_word(pinger),
        silent = side_word(silent),
    );
    let advice = format!(
        "Find out why the {silent} stops answering pings (a blocked or busy event loop, a long synchronous task, a suspended tab or device); if it is only slow, raise the {pinger}'s ping timeout above {}.",
        secs(timeout),
        silent = side_word(silent),
        pinger = side_word(pinger),
    );
    let mut parameters = serde_json::Map::new();
    parameters.insert(
        "timeout_s".into(),
        json!((timeout * 1000.0).round() / 1000.0),
    );
    parameters.insert("side".into(), json!(side_word(silent)));
    parameters.insert("pinging_side".into(), json!(side_word(pinger)));
    if let Some(i) = interval {
        parameters.insert(
            "ping_interval_s".into(),
            json!((i * 1000.0).round() / 1000.0),
        );
    }
    parameters.insert("since".into(), json!(since));
    parameters.insert(
        "spread_s".into(),
        json!([
            (dmin * 1000.0).round() / 1000.0,
            (dmax * 1000.0).round() / 1000.0
        ]),
    );
    let mut confidence = if by_reason {
        0.7 + 0.3 * count_confidence(k)
    } else {
        count_confidence(k)
    };
    if !by_reason && members.iter().any(|m| says_heartbeat(m.0)) {
        confidence += (1.0 - confidence) * 0.5;
    }
    let mut ids: Vec<u64> = members.iter().map(|m| m.0.id).collect();
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
