//! `peer_unreachable`: one side kept retransmitting data that was never acknowledged and no FIN
//! or RST came from the other (per connection this is one unambiguous signal; connections to the
//! same silent host are grouped).

use serde_json::json;

use super::Input;
use super::ending::{Ending, Host};
use super::stats::round2;
use super::text::{clock, secs, side_word};
use crate::diag::Side;
use crate::record::{Finding, FindingId};

/// Retransmissions into the silence that make a single connection's signal strong: five take
/// Linux at least 6 s of backoff, far beyond any ordinary loss.
const STRONG_RETRANSMISSIONS: u32 = 5;

/// Connections to one silent host that went silent within this many seconds of each other
/// vanished together (the host or its network), which is more certain than one alone.
const TOGETHER_S: f64 = 2.0;

/// `peer_unreachable` findings, one per silent host.
pub fn unreachables(input: &Input<'_>) -> Vec<(Finding, f64)> {
    let mut groups: std::collections::BTreeMap<(u8, Host), Vec<&Ending>> = Default::default();
    for e in input.endings.iter().filter(|e| e.unreachable().is_some()) {
        let (side, ..) = e.unreachable().expect("filtered");
        // A silent client is one host (any port); a silent server is one service.
        let host = match side {
            Side::Client => Host {
                addr: e.client.addr,
                port: 0,
            },
            Side::Server => e.server,
        };
        groups
            .entry((u8::from(side == Side::Server), host))
            .or_default()
            .push(e);
    }
    groups
        .into_iter()
        .map(|((side, host), members)| {
            let side = if side == 1 {
                Side::Server
            } else {
                Side::Client
            };
            (finding(side, host, &members), 1e-6)
        })
        .collect()
}

fn finding(silent: Side, host: Host, members: &[&Ending]) -> Finding {
    let other = silent.peer();
    let k = members.len();
    let facts: Vec<(f64, u32, f32)> = members
        .iter()
        .filter_map(|e| {
            let (_, since) = e.unreachable_since()?;
            e.unreachable().map(|u| (since, u.2, u.3))
        })
        .collect();
    let since = facts.iter().map(|f| f.0).fold(f64::INFINITY, f64::min);
    let last_since = facts.iter().map(|f| f.0).fold(f64::NEG_INFINITY, f64::max);
    let retransmissions: u64 = facts.iter().map(|f| u64::from(f.1)).sum();
    let longest = facts.iter().map(|f| f64::from(f.2)).fold(0.0, f64::max);
    let strongest = facts.iter().map(|f| f.1).max().unwrap_or(0);
    let place = match silent {
        Side::Client => host.ip().to_string(),
        Side::Server => host.to_string(),
    };
    let ended: usize = members.iter().filter(|e| e.ended()).count();
    let evidence = format!(
        "{k} connection(s): from {} on, nothing more came from the {} {place}; the {} retransmitted {retransmissions} time(s) in all (up to {} per connection, for up to {}) with no acknowledgement, and no FIN or RST from the {} reached the capture{}",
        clock(since),
        side_word(silent),
        side_word(other),
        strongest,
        secs(longest),
        side_word(silent),
        if ended > 0 {
            format!(
                "; {ended} of them were then ended by the {} itself (it gave up)",
                side_word(other)
            )
        } else {
            "; the connections were still open when the capture ended".to_string()
        }
    );
    let explanation = format!(
        "The {} at {place} stopped answering at the TCP level around {}: it vanished (crash, power loss, sleep) or the network between dropped everything (a cut link, a firewall or NAT that forgot the connection). TCP alone takes minutes to notice (Linux retries for about 15 min by default).",
        side_word(silent),
        clock(since)
    );
    let advice = format!(
        "Let the {} ping with a timeout (a WebSocket ping every 10-30 s, give up after one or two missed pongs) so a vanished peer is noticed in seconds; check the {}'s host and the network path at {}.",
        side_word(other),
        side_word(silent),
        clock(since)
    );
    let mut confidence = if strongest >= STRONG_RETRANSMISSIONS {
        0.85
    } else {
        0.7
    };
    if k >= 2 && last_since - since <= TOGETHER_S {
        confidence = 0.95;
    }
    let mut parameters = serde_json::Map::new();
    parameters.insert("side".into(), json!(side_word(silent)));
    parameters.insert("since".into(), json!(since));
    parameters.insert("host".into(), json!(place));
    parameters.insert("retransmissions".into(), json!(retransmissions));
    parameters.insert(
        "retransmitting_s".into(),
        json!((longest * 1000.0).round() / 1000.0),
    );
    let mut ids: Vec<u64> = members.iter().map(|e| e.id).collect();
    ids.sort_unstable();
    Finding {
        id: FindingId::PeerUnreachable,
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
