//! Endings at one instant: `server_restart` / `mass_disconnect` (FIN or RST without Close) and
//! `graceful_shutdown` (the same Close code from one server), with how fast clients came back.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde_json::json;

use super::Input;
use super::ending::{Ending, Host, How, Start};
use super::stats::{count_confidence, round2, time_bursts};
use super::text::{clock, secs, side_word};
use crate::analysis::ping::median;
use crate::diag::Side;
use crate::record::{Finding, FindingId};

/// Width of "one instant" for abrupt endings: a process's exit closes all its sockets in one
/// pass (the kernel sends their FINs or RSTs within milliseconds); a quarter second holds that
/// for thousands of connections plus capture timestamp jitter, and is short against the gaps of
/// unrelated endings.
pub const BURST_WINDOW_S: f64 = 0.25;

/// Width of "one instant" for a graceful shutdown: servers write a Close to every client
/// concurrently (Python websockets) or in one loop (Node ws `clients.forEach`), milliseconds
/// even for thousands; a second leaves room for a slow loop and is short against the rhythm of
/// ordinary traffic.
pub const SHUTDOWN_WINDOW_S: f64 = 1.0;

/// Share of the open connections a shutdown must close: it closes them all (those that do not
/// answer included); under half is traffic winding down at its own pace (the end of a load
/// test), not one decision.
pub const MIN_SHUTDOWN_SHARE: f64 = 0.5;

/// Connections that make a burst.
pub const MIN_BURST: usize = 3;

/// Share of the connections open to that server at that instant that must be in the burst: a
/// restart ends them all (one crashed worker of several still ends a good share); a few endings
/// among many open connections are a coincidence.
pub const MIN_SHARE: f64 = 0.3;

/// How long after a burst new connections to the same server count as clients coming back:
/// reconnect backoffs start under a second and usually cap at 30-60 s.
pub const RECONNECT_WINDOW_S: f64 = 60.0;

/// Clients coming back after an instant.
struct Comeback {
    /// Delays of the matched new connections, seconds after the burst.
    delays: Vec<f64>,
    /// New connections that were refused (status other than 101).
    refused: usize,
}

/// New connections to `server` within [`RECONNECT_WINDOW_S`] after `t0`, matched one to one to
/// the burst's clients by address.
fn comeback(input: &Input<'_>, server: Host, t0: f64, members: &[&Ending]) -> Comeback {
    // Clients still to come back, per address.
    let mut clients: HashMap<[u8; 16], usize> = HashMap::new();
    for e in members {
        *clients.entry(e.client.addr).or_insert(0) += 1;
    }
    let ids: HashSet<u64> = members.iter().map(|e| e.id).collect();
    let mut later: Vec<&Start> = input
        .starts_of(server)
        .filter(|s| s.time > t0 && s.time <= t0 + RECONNECT_WINDOW_S)
        .filter(|s| !ids.contains(&s.id))
        .collect();
    later.sort_by(|a, b| a.time.total_cmp(&b.time));
    let mut delays = Vec::new();
    let mut refused = 0;
    for s in later {
        let Some(left) = clients.get_mut(&s.client.addr).filter(|n| **n > 0) else {
            continue;
        };
        if s.status.is_some_and(|st| st != 101) {
            refused += 1;
            continue;
        }
        *left -= 1;
        delays.push(s.time - t0);
    }
    Comeback { delays, refused }
}

/// Connections to `server` open at `t` (started before it, ended at or after it).
fn open_at(input: &Input<'_>, server: Host, t: f64) -> usize {
    let ended = input
        .endings_of(server)
        .filter(|e| e.websocket && e.first_seen < t && e.end >= t - 1e-6)
        .count();
    let open = input.open_of(server).filter(|s| s.time < t).count();
    ended + open
}

/// `watched`: seconds the capture went on after the instant.
fn comeback_words(
    c: &Comeback,
    k: usize,
    watched: f64,
) -> (String, serde_json::Map<String, serde_json::Value>) {
    let mut p = serde_json::Map::new();
    p.insert("reconnected".into(), json!(c.delays.len()));
    if c.delays.is_empty() {
        let refused = if c.refused > 0 {
            format!(" ({} attempts were refused)", c.refused)
        } else {
            String::new()
        };
        let within = if watched < RECONNECT_WINDOW_S {
            format!("in the {} the capture went on", secs(watched.max(0.0)))
        } else {
            format!("within {RECONNECT_WINDOW_S} s")
        };
        return (
            format!("no new connection from those clients {within}{refused}"),
            p,
        );
    }
    let first = c.delays[0];
    let med = median(&c.delays).unwrap_or(first);
    let last = c.delays[c.delays.len() - 1];
    p.insert("first_reconnect_s".into(), json!(round3(first)));
    p.insert("median_reconnect_s".into(), json!(round3(med)));
    p.insert("last_reconnect_s".into(), json!(round3(last)));
    let refused = if c.refused > 0 {
        format!("; {} attempts were refused before that", c.refused)
    } else {
        String::new()
    };
    (
        format!(
            "{} of the {k} clients came back: the first after {}, half within {}, the last after {}{refused}",
            c.delays.len(),
            secs(first),
            secs(med),
            secs(last)
        ),
        p,
    )
}

/// `server_restart` and `mass_disconnect` findings.
pub fn restarts(input: &Input<'_>) -> Vec<(Finding, f64)> {
    let mut out = Vec::new();
    for server in input.servers() {
        let group: Vec<&Ending> = input
            .endings_of(server)
            .filter(|e| e.websocket && e.abrupt() && !e.explained_alone())
            .collect();
        let times: Vec<f64> = group.iter().map(|e| e.end).collect();
        for burst in time_bursts(&times, BURST_WINDOW_S, MIN_BURST, input.span()) {
            let members: Vec<&Ending> = burst.members.iter().map(|&i| group[i]).collect();
            let k = members.len();
            let t0 = burst.first;
            let open = open_at(input, server, t0).max(k);
            let share = k as f64 / open as f64;
            if share < MIN_SHARE {
                continue;
            }
            let from_server = members
                .iter()
                .filter(|e| e.by == Some(Side::Server))
                .count();
            let by = if from_server * 2 >= k {
                Side::Server
            } else {
                Side::Client
            };
            let rst = members.iter().filter(|e| e.how == How::Rst).count();
            let tls = members
                .iter()
                .filter(|e| matches!(e.how, How::CloseNotify | How::TlsAlert))
                .count();
            let how = match (rst, tls) {
                (0, 0) => "FIN",
                (r, _) if r == k => "RST",
                (_, t) if t == k => "TLS close_notify",
                (_, 0) => "FIN or RST",
                _ => "TLS close_notify, FIN or RST",
            };
            let back = comeback(input, server, t0, &members);
            let restart = by == Side::Server && !back.delays.is_empty();
            let (back_words, back_params) = comeback_words(&back, k, input.now - t0);
            let spread = burst.last - burst.first;
            let mut clients: Vec<[u8; 16]> = members.iter().map(|e| e.client.addr).collect();
            clients.sort();
            clients.dedup();
            let one_client = clients.len() == 1 && by == Side::Client && k > 1;
            let no_close = if members.iter().any(|e| e.encrypted()) {
                "no Close frame (as far as the sizes of the encrypted records tell)"
            } else {
                "no Close frame"
            };
            let evidence = format!(
                "{k} of the {open} connections open to {server} ended within {} at {} with a {how} from the {} and {no_close}; {back_words}",
                secs(spread),
                clock(t0),
                side_word(by),
            );
            let (id, explanation, advice) = if restart {
                (
                    FindingId::ServerRestart,
                    format!(
                        "The server at {server} (or its process) went away at {} without closing its WebSockets, then came back: a crash, a kill or a restart without a graceful shutdown. Clients saw 1006.",
                        clock(t0)
                    ),
                    "Check the server's logs and supervisor (systemd, Kubernetes) at that time; on planned restarts send Close 1001 or 1012 to every client first, and let clients reconnect with jittered backoff.".to_string(),
                )
            } else if by == Side::Server {
                (
                    FindingId::MassDisconnect,
                    format!(
                        "The server side of {server} dropped these connections at one instant without a Close frame (a crash, a kill, a failover, or a middlebox on the server's side), and the clients did not come back."
                    ),
                    "Check the server's and load balancer's logs at that time; make clients reconnect (with jittered backoff) after a 1006.".to_string(),
                )
            } else {
                (
                    FindingId::MassDisconnect,
                    format!(
                        "The client side ended these connections at one instant without a Close frame{}: a client host, process or network going away, or a middlebox on the clients' side.",
                        if one_client { " (all from one client host)" } else { "" }
                    ),
                    "Look at what happened on the client side (process exit, network change, NAT or proxy on the client's path) at that time.".to_string(),
                )
            };
            let mut parameters = serde_json::Map::new();
            parameters.insert("time".into(), json!(t0));
            parameters.insert("server".into(), json!(server.to_string()));
            parameters.insert("connections".into(), json!(k));
            parameters.insert("open".into(), json!(open));
            parameters.insert("window_s".into(), json!(round6(spread)));
            parameters.insert("ended_by".into(), json!(side_word(by)));
            parameters.insert("how".into(), json!(how.to_lowercase()));
            parameters.extend(back_params);
            let confidence = count_confidence(k) * (0.5 + 0.5 * share);
            out.push((
                Finding {
                    id,
                    confidence: round2(confidence),
                    connections: sorted(members.iter().map(|e| e.id).collect()),
                    parameters,
                    evidence,
                    explanation,
                    advice,
                    suspects: Vec::new(),
                    time: Some(t0),
                },
                burst.p,
            ));
        }
    }
    out
}

/// `graceful_shutdown` findings.
pub fn graceful_shutdowns(input: &Input<'_>) -> Vec<(Finding, f64)> {
    let mut out = Vec::new();
    for server in input.servers() {
        let mut by_code: BTreeMap<u16, Vec<&Ending>> = BTreeMap::new();
        for e in input
            .endings_of(server)
            .filter(|e| e.websocket && e.by == Some(Side::Server) && !e.explained_alone())
        {
            if let How::Close { code, .. } = e.how {
                by_code.entry(code).or_default().push(e);
            }
        }
        for (code, group) in by_code {
            let times: Vec<f64> = group.iter().map(|e| e.end).collect();
            for burst in time_bursts(&times, SHUTDOWN_WINDOW_S, MIN_BURST, input.span()) {
                let members: Vec<&Ending> = burst.members.iter().map(|&i| group[i]).collect();
                let k = members.len();
                let t0 = burst.first;
                let open = open_at(input, server, t0).max(k);
                let share = k as f64 / open as f64;
                if share < MIN_SHUTDOWN_SHARE {
                    continue;
                }
                let unanswered: Vec<u64> = members
                    .iter()
                    .filter(|e| {
                        matches!(
                            e.how,
                            How::Close {
                                answered: false,
                                ..
                            }
                        )
                    })
                    .map(|e| e.id)
                    .collect();
                let reason = most_common(members.iter().filter_map(|e| e.reason.as_deref()));
                let back = comeback(input, server, t0, &members);
                let (back_words, back_params) = comeback_words(&back, k, input.now - t0);
                let name = crate::ws::opcode::close_code_meaning(code);
                let short = name.split(':').next().unwrap_or("").to_string();
                let reason_words = reason.map(|r| format!(" \"{r}\"")).unwrap_or_default();
                let mut evidence = format!(
                    "the server {server} sent Close {code} ({short}){reason_words} to {k} of its {} open connections within {} at {}",
                    open,
                    secs(burst.last - burst.first),
                    clock(t0)
                );
                if !unanswered.is_empty() {
                    evidence.push_str(&format!(
                        "; {} never answered with their Close before TCP ended (#{})",
                        unanswered.len(),
                        unanswered
                            .iter()
                            .map(|i| i.to_string())
                            .collect::<Vec<_>>()
                            .join(", #")
                    ));
                }
                evidence.push_str(&super::ending::protocol_note(&members));
                evidence.push_str(&format!("; {back_words}"));
                let planned = matches!(code, 1001 | 1012);
                let explanation = if planned {
                    format!(
                        "The server at {server} shut down or restarted and said so to its clients ({code} {short}): a deploy, a scale-down or a restart, handled gracefully."
                    )
                } else {
                    format!(
                        "The server at {server} closed many connections at once with the same code {code} ({short}): one decision on the server (shutdown, a configuration or credential change, an overload shedding), not each connection's own fault."
                    )
                };
                let mut advice = if planned {
                    "Nothing is broken if clients reconnect: make them reconnect with jittered backoff on 1001/1012 so a restart does not turn into a thundering herd.".to_string()
                } else {
                    format!(
                        "Look in the server's logs at {} for what closed them all.",
                        clock(t0)
                    )
                };
                if !unanswered.is_empty() {
                    advice.push_str(" Clients that never answer the Close keep the server waiting for its close timeout: check they read the socket.");
                }
                let mut parameters = serde_json::Map::new();
                parameters.insert("time".into(), json!(t0));
                parameters.insert("server".into(), json!(server.to_string()));
                parameters.insert("code".into(), json!(code));
                if let Some(r) = reason {
                    parameters.insert("reason".into(), json!(r));
                }
                parameters.insert("connections".into(), json!(k));
                parameters.insert("open".into(), json!(open));
                parameters.insert("unanswered".into(), json!(unanswered));
                parameters.insert("window_s".into(), json!(round6(burst.last - burst.first)));
                parameters.extend(back_params);
                let mut confidence = count_confidence(k) * (0.5 + 0.5 * share);
                if planned {
                    confidence += (1.0 - confidence) * 0.5;
                }
                out.push((
                    Finding {
                        id: FindingId::GracefulShutdown,
                        confidence: round2(confidence),
                        connections: sorted(members.iter().map(|e| e.id).collect()),
                        parameters,
                        evidence,
                        explanation,
                        advice,
                        suspects: Vec::new(),
                        time: Some(t0),
                    },
                    burst.p,
                ));
            }
        }
    }
    out
}

fn most_common<'a>(items: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for item in items {
        match counts.iter_mut().find(|(k, _)| *k == item) {
            Some((_, n)) => *n += 1,
            None => counts.push((item, 1)),
        }
    }
    counts.into_iter().max_by_key(|(_, n)| *n).map(|(k, _)| k)
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn sorted(mut ids: Vec<u64>) -> Vec<u64> {
    ids.sort_unstable();
    ids
}

fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}
