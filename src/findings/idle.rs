//! `idle_timeout` (endings after nearly the same silence) and `max_lifetime` (endings at nearly
//! the same age whatever the traffic).

use std::collections::HashSet;

use serde_json::json;

use super::Input;
use super::ending::{Ending, Host, How, idx};
use super::stats::{
    Cluster, VALUE_SLACK_S, VALUE_TOLERANCE, count_confidence, round2, value_clusters,
};
use super::suspects::{IDLE_TIMEOUTS, LIFETIMES, matching};
use super::text::{hosts, secs, secs_range, side_word};
use crate::diag::Side;
use crate::record::{Finding, FindingId};

/// Shortest idle timeout looked for: nobody configures one under half a second, and below it the
/// gaps of chatty connections would crowd out real patterns.
pub const MIN_IDLE_S: f64 = 0.5;

/// Shortest lifetime looked for, for the same reason.
pub const MIN_LIFETIME_S: f64 = 1.0;

/// Connections that make a pattern: two can share a duration by chance or by design (one test
/// script); three that also pass the significance test rarely do.
pub const MIN_MEMBERS: usize = 3;

/// Share of a lifetime cluster that must have had traffic in the second half of its life: if
/// they were silent, an idle timeout explains the same endings.
pub const MIN_ACTIVE_SHARE: f64 = 0.5;

/// Whose silence a duration measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Measure {
    /// Nothing from either side.
    Both,
    /// Nothing from this side (the other may have sent).
    From(Side),
}

impl Measure {
    fn idle(self, e: &Ending) -> Option<f64> {
        match self {
            Measure::Both => e.idle.get(),
            Measure::From(side) => e.idle_by_side[idx(side)].get(),
        }
        .map(f64::from)
    }

    fn name(self) -> &'static str {
        match self {
            Measure::Both => "both",
            Measure::From(Side::Client) => "client_to_server",
            Measure::From(Side::Server) => "server_to_client",
        }
    }

    fn words(self) -> &'static str {
        match self {
            Measure::Both => "of silence",
            Measure::From(Side::Client) => "without a byte from the client",
            Measure::From(Side::Server) => "without a byte from the server",
        }
    }
}

/// Can this ending be a timeout's doing?
fn imposed(e: &Ending) -> bool {
    e.websocket && e.ended() && !e.normal_client_leave() && !e.explained_alone()
}

fn hi(t: f64) -> f64 {
    t * (1.0 + VALUE_TOLERANCE) + VALUE_SLACK_S
}

fn lo(t: f64) -> f64 {
    (t - VALUE_SLACK_S) / (1.0 + VALUE_TOLERANCE)
}

/// How the members ended, in words and as a parameter: "a FIN from the server".
fn how_words(members: &[&Ending]) -> (String, String) {
    let mut kinds: Vec<(String, usize)> = Vec::new();
    for e in members {
        let how = match e.how {
            How::Fin => "FIN".to_string(),
            How::Rst => "RST".to_string(),
            How::CloseNotify => "TLS close_notify".to_string(),
            How::TlsAlert => "TLS alert".to_string(),
            How::Close { code, .. } => format!("Close {code}"),
            How::Open => "nothing".to_string(),
        };
        let what = format!("{how} from the {}", e.by.map_or("?", side_word));
        match kinds.iter_mut().find(|(k, _)| *k == what) {
            Some((_, n)) => *n += 1,
            None => kinds.push((what, 1)),
        }
    }
    kinds.sort_by_key(|k| std::cmp::Reverse(k.1));
    let words = if kinds.len() == 1 {
        format!("each by a {}", kinds[0].0)
    } else {
        kinds
            .iter()
            .map(|(k, n)| format!("{n} by a {k}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    (words, kinds[0].0.clone())
}

/// The servers the members talked to.
fn servers_of(members: &[&Ending]) -> Vec<Host> {
    let mut s: Vec<Host> = members.iter().map(|e| e.server).collect();
    s.sort();
    s.dedup();
    s
}

/// Clusters of `values` (one per candidate) over all candidates and per server: a timeout sits
/// on a path, so one server's endings are tested alone too (their background is that server's
/// own endings), with the chance multiplied by the servers tried.
fn per_path_clusters(candidates: &[&Ending], values: &[f64]) -> Vec<Cluster> {
    let mut found = value_clusters(values, MIN_MEMBERS);
    let mut servers: std::collections::BTreeMap<Host, Vec<usize>> = Default::default();
    for (i, e) in candidates.iter().enumerate() {
        servers.entry(e.server).or_default().push(i);
    }
    if servers.len() > 1 {
        let tried = servers.len() as f64;
        for (_, index) in servers {
            if index.len() < MIN_MEMBERS {
                continue;
            }
            let sub: Vec<f64> = index.iter().map(|&i| values[i]).collect();
            for mut c in value_clusters(&sub, MIN_MEMBERS) {
                c.p *= tried;
                if c.p >= super::stats::SIGNIFICANCE {
                    continue;
                }
                c.members = c.members.iter().map(|&m| index[m]).collect();
                found.push(c);
            }
        }
    }
    // Largest first; a cluster mostly inside a larger one is the same pattern.
    found.sort_by(|a, b| {
        b.members
            .len()
            .cmp(&a.members.len())
            .then(a.p.total_cmp(&b.p))
    });
    let mut kept: Vec<Cluster> = Vec::new();
    for c in found {
        if !kept
            .iter()
            .any(|k| super::shared(&c.members, &k.members) * 2 >= c.members.len())
        {
            kept.push(c);
        }
    }
    kept
}

/// `idle_timeout` findings.
pub fn idle_timeouts(input: &Input<'_>) -> Vec<(Finding, f64)> {
    let candidates: Vec<&Ending> = input
        .endings
        .iter()
        .filter(|e| imposed(e) && e.idle.get().is_some_and(|i| f64::from(i) >= MIN_IDLE_S))
        .collect();
    let measures = [
        Measure::Both,
        Measure::From(Side::Server),
        Measure::From(Side::Client),
    ];
    let mut clusters: Vec<(Measure, Cluster)> = Vec::new();
    for m in measures {
        let values: Vec<f64> = candidates
            .iter()
            .map(|e| m.idle(e).filter(|&v| v >= MIN_IDLE_S).unwrap_or(f64::NAN))
            .collect();
        clusters.extend(
            per_path_clusters(&candidates, &values)
                .into_iter()
                .map(|c| (m, c)),
        );
    }
    // Larger first; among equals the both-ways measure (it explains more).
    clusters.sort_by(|a, b| {
        b.1.members
            .len()
            .cmp(&a.1.members.len())
            .then(a.1.p.total_cmp(&b.1.p))
    });
    let mut accepted: Vec<Vec<u64>> = Vec::new();
    let mut out = Vec::new();
    for (measure, cluster) in clusters {
        let members: Vec<&Ending> = cluster.members.iter().map(|&i| candidates[i]).collect();
        let ids: Vec<u64> = members.iter().map(|e| e.id).collect();
        if accepted
            .iter()
            .any(|a| super::shared(&ids, a) * 2 >= ids.len())
        {
            continue; // the same endings, seen through another measure
        }
        if let Some(f) = idle_finding(input, measure, &cluster, &members) {
            accepted.push(ids);
            out.push((f, cluster.p));
        }
    }
    out
}

/// Keeps the members on paths the other connections do not refute: a path where `refutes`
/// holds for at least as many other connections as there are members on it has no such
/// timeout (its members only happen to share the value). Returns the kept members and the
/// refutations left on their paths.
fn on_unrefuted_paths<'a>(
    input: &Input<'a>,
    members: &[&'a Ending],
    refutes: impl Fn(&Ending) -> bool,
) -> (Vec<&'a Ending>, usize) {
    let ids: HashSet<u64> = members.iter().map(|e| e.id).collect();
    let mut kept = Vec::new();
    let mut refutations = 0;
    for server in servers_of(members) {
        let on: Vec<&Ending> = members
            .iter()
            .copied()
            .filter(|e| e.server == server)
            .collect();
        let against = input
            .endings_of(server)
            .filter(|e| e.websocket && !ids.contains(&e.id))
            .filter(|e| refutes(e))
            .count();
        if against < on.len() {
            kept.extend(on);
            refutations += against;
        }
    }
    (kept, refutations)
}

fn idle_finding(
    input: &Input<'_>,
    measure: Measure,
    cluster: &Cluster,
    members: &[&Ending],
) -> Option<Finding> {
    // Were that silent for longer without being cut: on their path, a timeout of T would have
    // ended them. (A silence both ways is a silence of each side too.)
    let refutes = |t: f64| {
        move |e: &Ending| {
            e.longest_silence.get().map_or(0.0, f64::from) > hi(t)
                || measure.idle(e).unwrap_or(0.0) > hi(t)
        }
    };
    let (members, contradictions) = on_unrefuted_paths(input, members, refutes(cluster.value));
    let k = members.len();
    if k < MIN_MEMBERS {
        return None;
    }
    let values: Vec<f64> = members.iter().filter_map(|e| measure.idle(e)).collect();
    let t = crate::analysis::ping::median(&values).unwrap_or(cluster.value);
    let (vmin, vmax) = values
        .iter()
        .fold((f64::INFINITY, 0.0f64), |(a, b), &x| (a.min(x), b.max(x)));
    let members = &members[..];
    let servers = servers_of(members);
    let member_ids: Vec<u64> = members.iter().map(|e| e.id).collect();
    let member_set: HashSet<u64> = member_ids.iter().copied().collect();
    let others: Vec<&Ending> = servers
        .iter()
        .flat_map(|&s| input.endings_of(s))
        .filter(|e| e.websocket && !member_set.contains(&e.id))
        .collect();
    // Lived past T while never that silent: traffic kept them alive.
    let survivors: Vec<&&Ending> = others
        .iter()
        .filter(|e| {
            f64::from(e.age) > hi(t)
                && e.longest_silence.get().map_or(0.0, f64::from) < lo(t)
                && measure.idle(e).unwrap_or(0.0) < lo(t)
        })
        .collect();
    let silent_from_start = members
        .iter()
        .filter(|e| f64::from(e.age) <= hi(f64::from(e.idle.get().unwrap_or(0.0))))
        .count();
    let mut confidence = count_confidence(k) * k as f64 / (k + 2 * contradictions) as f64;
    if !survivors.is_empty() {
        confidence += (1.0 - confidence) * 0.3;
    } else if silent_from_start == k {
        confidence *= 0.8; // a lifetime limit would look the same
    }
    // All ended at one instant too: one event ending them all (a process exiting) would look
    // the same, since they also fell silent together.
    let ends = members.iter().map(|e| e.end);
    let together = ends.clone().fold(f64::NEG_INFINITY, f64::max)
        - ends.fold(f64::INFINITY, f64::min)
        <= super::burst::BURST_WINDOW_S;
    if together {
        confidence *= 0.6;
    }
    let (how, how_param) = how_words(members);
    let suspects = matching(IDLE_TIMEOUTS, t);
    let pinging = survivors
        .iter()
        .filter(|e| e.pings[0] + e.pings[1] > 0)
        .count();
    let app_beating = survivors.iter().filter(|e| e.app_beats()).count();
    let sessions = input.sessions(&member_ids);
    let count = if sessions < k {
        format!("{k} connections ({sessions} proxied sessions, both legs)")
    } else {
        format!("{k} connections")
    };
    let mut evidence = format!(
        "{count} to {} ended after {} {} ({}), {how}",
        hosts(&servers),
        secs(t),
        measure.words(),
        secs_range(vmin, vmax),
    );
    if !matches!(how_param.split(' ').next(), Some("Close")) {
        evidence.push_str(if members.iter().any(|e| e.encrypted()) {
            ", no Close frame (as far as the sizes of the encrypted records tell)"
        } else {
            ", no Close frame"
        });
    }
    if !survivors.is_empty() {
        let ages: Vec<f64> = survivors.iter().map(|e| f64::from(e.age)).collect();
        let max_age = ages.iter().copied().fold(0.0, f64::max);
        let kept = match (pinging > 0, app_beating > 0) {
            (true, true) => " (pings, application heartbeats)",
            (true, false) => " (pings)",
            (false, true) => " (application heartbeats)",
            (false, false) => "",
        };
        evidence.push_str(&format!(
            "; {} connection(s) that kept sending{kept} lived longer (up to {})",
            survivors.len(),
            secs(max_age)
        ));
    }
    if contradictions > 0 {
        evidence.push_str(&format!(
            "; {contradictions} connection(s) to the same server were silent longer without being cut"
        ));
    }
    if silent_from_start == k {
        evidence.push_str("; all of them fell silent right after opening");
    }
    if together {
        evidence.push_str(&format!(
            "; they all ended within {} of each other, so one event ending them all would look the same",
            secs(super::burst::BURST_WINDOW_S)
        ));
    }
    // Proxied sessions whose two legs the proxy closed itself: the proxy's own timeout.
    let mut proxies: Vec<Host> = input
        .pairs
        .iter()
        .map(|&(a, b, ..)| (&input.endings[a], &input.endings[b]))
        .filter(|(f, b)| member_set.contains(&f.id) && member_set.contains(&b.id))
        .filter(|(f, b)| f.by == Some(Side::Server) && b.by == Some(Side::Client))
        .map(|(f, _)| f.server)
        .collect();
    proxies.sort();
    proxies.dedup();
    if !proxies.is_empty() {
        evidence.push_str(&format!(
            "; the proxy at {} closed both legs of each proxied session",
            hosts(&proxies)
        ));
    }
    let who = match members.iter().filter_map(|e| e.by).collect::<Vec<_>>() {
        v if v.iter().all(|&s| s == Side::Server) => "the server's side",
        v if v.iter().all(|&s| s == Side::Client) => "the client's side",
        _ => "both sides",
    };
    let mut explanation = if proxies.is_empty() {
        format!(
            "Something on the path closes connections that carry no data for about {}: an idle timeout of a proxy, load balancer or the server itself, acting from {who}.",
            secs(t)
        )
    } else {
        format!(
            "The proxy at {} closes sessions that carry no data for about {}: its own idle timeout (nginx: proxy_read_timeout), not the client's or the server's doing.",
            hosts(&proxies),
            secs(t)
        )
    };
    if !survivors.is_empty() {
        explanation
            .push_str(" Connections that kept sending survived, so the timer resets on traffic.");
    }
    if let Measure::From(side) = measure {
        explanation.push_str(&format!(
            " Only the {} direction's silence counts: traffic from the {} alone did not keep them open.",
            side_word(side),
            side_word(side.peer())
        ));
    }
    if !suspects.is_empty() {
        explanation.push_str(&format!(
            " {} matches the default of: {}.",
            secs(t),
            suspects
                .iter()
                .map(|s| format!("{} ({} {} s)", s.name, s.setting, s.default_s))
                .collect::<Vec<_>>()
                .join("; ")
        ));
    }
    let advice = format!(
        "Send a ping (or any message) more often than every {} (T/2) on these connections, or raise the idle timeout{}.",
        secs(t / 2.0),
        if !proxies.is_empty() && suspects.is_empty() {
            format!(
                " of the proxy at {} (nginx proxy_read_timeout, HAProxy timeout tunnel)",
                hosts(&proxies)
            )
        } else if suspects.is_empty() {
            format!(
                " of whatever sits in front of {} (nginx proxy_read_timeout, HAProxy timeout tunnel, a cloud load balancer's idle timeout)",
                hosts(&servers)
            )
        } else {
            format!(
                ": {}",
                suspects
                    .iter()
                    .map(|s| format!("{} {}", s.name, s.setting))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
    );
    let mut parameters = serde_json::Map::new();
    parameters.insert("timeout_s".into(), json!(round3(t)));
    parameters.insert("measured_on".into(), json!(measure.name()));
    parameters.insert(
        "servers".into(),
        json!(servers.iter().map(|h| h.to_string()).collect::<Vec<_>>()),
    );
    parameters.insert("ended_by".into(), json!(how_param));
    parameters.insert("spread_s".into(), json!([round3(vmin), round3(vmax)]));
    parameters.insert("survivors".into(), json!(survivors.len()));
    parameters.insert("contradictions".into(), json!(contradictions));
    let time = members.iter().map(|e| e.end).fold(f64::INFINITY, f64::min);
    Some(Finding {
        id: FindingId::IdleTimeout,
        confidence: round2(confidence),
        connections: sorted(member_ids),
        parameters,
        evidence,
        explanation,
        advice,
        suspects,
        time: Some(time),
    })
}

/// `max_lifetime` findings.
pub fn max_lifetimes(input: &Input<'_>) -> Vec<(Finding, f64)> {
    let candidates: Vec<&Ending> = input
        .endings
        .iter()
        .filter(|e| imposed(e) && f64::from(e.age) >= MIN_LIFETIME_S)
        .collect();
    let ages: Vec<f64> = candidates.iter().map(|e| f64::from(e.age)).collect();
    let mut out = Vec::new();
    for cluster in per_path_clusters(&candidates, &ages) {
        let members: Vec<&Ending> = cluster.members.iter().map(|&i| candidates[i]).collect();
        // Older than T on the same path and not cut at T.
        let t0 = cluster.value;
        let (members, contradictions) = on_unrefuted_paths(input, &members, |e| {
            f64::from(e.age) > hi(t0) && !e.normal_client_leave()
        });
        let k = members.len();
        if k < MIN_MEMBERS {
            continue;
        }
        let ages: Vec<f64> = members.iter().map(|e| f64::from(e.age)).collect();
        let t = crate::analysis::ping::median(&ages).unwrap_or(t0);
        let (amin, amax) = ages
            .iter()
            .fold((f64::INFINITY, 0.0f64), |(a, b), &x| (a.min(x), b.max(x)));
        let active = members
            .iter()
            .filter(|e| e.idle.get().map_or(0.0, f64::from) < 0.5 * f64::from(e.age))
            .count();
        if (active as f64) < MIN_ACTIVE_SHARE * k as f64 {
            continue; // silent ones: an idle timeout says the same
        }
        let servers = servers_of(&members);
        let ids: Vec<u64> = members.iter().map(|e| e.id).collect();
        let confidence = count_confidence(k) * k as f64 / (k + 2 * contradictions) as f64
            * (0.5 + 0.5 * active as f64 / k as f64);
        let (how, how_param) = how_words(&members);
        let suspects = matching(LIFETIMES, t);
        let idles: Vec<f64> = members
            .iter()
            .map(|e| e.idle.get().map_or(0.0, f64::from))
            .collect();
        let (idle_min, idle_max) = idles
            .iter()
            .fold((f64::INFINITY, 0.0f64), |(a, b), &x| (a.min(x), b.max(x)));
        let mut evidence = format!(
            "{k} connections to {} ended at the age of {} ({}), {how}, although their last traffic was {} to {} before the end",
            hosts(&servers),
            secs(t),
            secs_range(amin, amax),
            secs(idle_min),
            secs(idle_max)
        );
        if contradictions > 0 {
            evidence.push_str(&format!(
                "; {contradictions} connection(s) to the same server lived longer"
            ));
        }
        evidence.push_str(&super::ending::protocol_note(&members));
        let mut explanation = format!(
            "Something on the path ends connections {} after they open, whatever they carry: a maximum connection lifetime (a load balancer's or gateway's limit, or a server that recycles connections).",
            secs(t)
        );
        if !suspects.is_empty() {
            explanation.push_str(&format!(
                " {} matches: {}.",
                secs(t),
                suspects
                    .iter()
                    .map(|s| format!("{} ({} {} s)", s.name, s.setting, s.default_s))
                    .collect::<Vec<_>>()
                    .join("; ")
            ));
        }
        let advice = format!(
            "Pings do not help against a lifetime limit: raise it{}, or make clients reconnect smoothly before {} (resume state, stagger reconnections).",
            if suspects.is_empty() {
                String::new()
            } else {
                format!(
                    " ({})",
                    suspects
                        .iter()
                        .map(|s| format!("{} {}", s.name, s.setting))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            },
            secs(t)
        );
        let mut parameters = serde_json::Map::new();
        parameters.insert("lifetime_s".into(), json!(round3(t)));
        parameters.insert(
            "servers".into(),
            json!(servers.iter().map(|h| h.to_string()).collect::<Vec<_>>()),
        );
        parameters.insert("ended_by".into(), json!(how_param));
        parameters.insert("spread_s".into(), json!([round3(amin), round3(amax)]));
        parameters.insert("contradictions".into(), json!(contradictions));
        let time = members.iter().map(|e| e.end).fold(f64::INFINITY, f64::min);
        out.push((
            Finding {
                id: FindingId::MaxLifetime,
                confidence: round2(confidence),
                connections: sorted(ids),
                parameters,
                evidence,
                explanation,
                advice,
                suspects,
                time: Some(time),
            },
            cluster.p,
        ));
    }
    out
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn sorted(mut ids: Vec<u64>) -> Vec<u64> {
    ids.sort_unstable();
    ids
}
