//! `proxy_legs`: two connections carrying the same session (the same Sec-WebSocket-Key, the same
//! frames with the same masking keys) are the client-side and server-side legs of one proxied
//! WebSocket; say which leg ended first and who ended it.

use std::collections::HashMap;

use serde_json::json;

use super::Input;
use super::chunked::Chunked;
use super::ending::{Ending, How};
use super::stats::round2;
use super::text::{secs, side_word};
use crate::analysis::timing::FINGERPRINT_FRAMES;
use crate::diag::Side;
use crate::record::{Finding, FindingId};

/// Seconds between the two legs' first packets: a proxy opens the upstream leg as soon as the
/// request arrives.
const MAX_START_GAP_S: f64 = 30.0;

/// Fewest frames for frames alone to pair two legs (no Sec-WebSocket-Key in common): with
/// varied masking keys, two masked frames already carry 64 random bits.
const MIN_FRAMES: u8 = 2;

/// The pairs (front leg index, back leg index) among `endings`: front is the one that started
/// first (the client's connection to the proxy).
pub fn pairs(endings: &Chunked<Ending>) -> Vec<(usize, usize, bool, bool)> {
    // (index, matched by key, matched by frames)
    let mut by_key: HashMap<u64, Vec<usize>> = HashMap::new();
    let mut by_frames: HashMap<(u64, u8), Vec<usize>> = HashMap::new();
    for (i, e) in endings.iter().enumerate() {
        if let Some(k) = e.fingerprint.key {
            by_key.entry(k).or_default().push(i);
        }
        let f = e.fingerprint;
        if f.frame_count >= MIN_FRAMES.min(FINGERPRINT_FRAMES) && f.varied_masks {
            by_frames
                .entry((f.frames, f.frame_count))
                .or_default()
                .push(i);
        }
    }
    let mut found: HashMap<(usize, usize), (bool, bool)> = HashMap::new();
    let mut add = |group: &Vec<usize>, key: bool| {
        let mut g = group.clone();
        g.sort_by(|&a, &b| endings[a].first_seen.total_cmp(&endings[b].first_seen));
        for w in g.windows(2) {
            let (a, b) = (w[0], w[1]);
            let (ea, eb) = (&endings[a], &endings[b]);
            // Two legs lead to different servers (the proxy, then the upstream), and the
            // upstream leg opens while the client's is open (a reconnection with the same key
            // is a new session, not a leg).
            if ea.server == eb.server
                || (eb.first_seen - ea.first_seen).abs() > MAX_START_GAP_S
                || eb.first_seen > ea.end.max(ea.first_seen) + 1.0
            {
                continue;
            }
            let p = found.entry((a, b)).or_default();
            p.0 |= key;
            p.1 |= !key;
        }
    };
    for g in by_key.values().filter(|g| g.len() >= 2) {
        add(g, true);
    }
    for g in by_frames.values().filter(|g| g.len() >= 2) {
        add(g, false);
    }
    let mut found: Vec<(usize, usize, bool, bool)> = found
        .into_iter()
        .map(|((a, b), (key, frames))| (a, b, key, frames))
        .collect();
    found.sort();
    found
}

fn how(e: &Ending) -> String {
    let what = match e.how {
        How::Close { code, .. } => format!("Close {code}"),
        How::Fin => "FIN".into(),
        How::Rst => "RST".into(),
        How::CloseNotify => "TLS close_notify".into(),
        How::TlsAlert => "TLS alert".into(),
        How::Open => return "still open".into(),
    };
    format!("{what} from the {}", e.by.map_or("?", side_word))
}

/// `proxy_legs` findings, one per pair.
pub fn proxy_legs(input: &Input<'_>) -> Vec<(Finding, f64)> {
    input
        .pairs
        .iter()
        .map(|&(a, b, by_key, by_frames)| {
            let front = &input.endings[a];
            let back = &input.endings[b];
            let proxy = front.server;
            let gap = (front.end - back.end).abs();
            let idle = front.idle.get().zip(back.idle.get()).map(|(x, y)| f64::from(x.min(y)));
            let idle_words = idle.map(|i| format!(" after {} idle", secs(i))).unwrap_or_default();
            let (first, summary) = match (front.ended(), back.ended()) {
                (false, false) => ("none", "both legs were still open when the capture ended".to_string()),
                _ if front.by == Some(Side::Server) && back.by == Some(Side::Client) && front.ended() && back.ended() => (
                    if front.end <= back.end { "front" } else { "back" },
                    format!("the proxy at {proxy} closed both legs {} apart{idle_words} ({} to the client, {} to the upstream)", secs(gap), how(front), how(back)),
                ),
                _ if back.ended() && back.by == Some(Side::Server) && (!front.ended() || back.end <= front.end) => (
                    "back",
                    format!(
                        "the upstream server {} ended first ({}); the proxy passed it on to the client {} later ({})",
                        back.server,
                        how(back),
                        secs(gap),
                        how(front)
                    ),
                ),
                _ if front.ended() && front.by == Some(Side::Client) && (!back.ended() || front.end <= back.end) => (
                    "front",
                    format!(
                        "the client {} ended first ({}); the proxy passed it on to the upstream {} later ({})",
                        front.client,
                        how(front),
                        secs(gap),
                        how(back)
                    ),
                ),
                _ => {
                    let front_first = front.ended() && (!back.ended() || front.end <= back.end);
                    (
                        if front_first { "front" } else { "back" },
                        format!(
                            "the {} leg ended first: client leg {}, upstream leg {}, {} apart",
                            if front_first { "client" } else { "upstream" },
                            how(front),
                            how(back),
                            secs(gap)
                        ),
                    )
                }
            };
            let matched = match (by_key, by_frames) {
                (true, true) => "the same Sec-WebSocket-Key and the same first frames (with their masking keys)",
                (true, false) => "the same Sec-WebSocket-Key",
                _ => "the same first frames with the same masking keys",
            };
            let evidence = format!(
                "#{} ({} → {}) and #{} ({} → {}) carry {matched}: one proxied session; {summary}",
                front.id, front.client, front.server, back.id, back.client, back.server
            );
            let explanation = format!(
                "A proxy at {proxy} relays this WebSocket to {}: the capture saw both legs. {}",
                back.server,
                match first {
                    "front" | "back" if summary.starts_with("the proxy") => "The proxy itself ended the session (its timeout or its decision), not the client or the server.",
                    "back" => "The server side ended it; the client only saw it second-hand through the proxy.",
                    "front" => "The client side ended it; the server only saw it second-hand through the proxy.",
                    _ => "",
                }
            );
            let advice = if summary.starts_with("the proxy") {
                format!("Look at the proxy at {proxy}: its timeouts (for nginx proxy_read_timeout / proxy_send_timeout) and its logs at that time.")
            } else {
                "Analyse the leg that ended first: its end is the cause, the other leg's is the consequence.".to_string()
            };
            let confidence = match (by_key, by_frames) {
                (true, true) => 0.99,
                (true, false) => 0.95,
                _ if front.fingerprint.masked >= 2 => 0.9,
                _ => 0.8,
            };
            let mut parameters = serde_json::Map::new();
            parameters.insert("legs".into(), json!([front.id, back.id]));
            parameters.insert("front".into(), json!(front.id));
            parameters.insert("back".into(), json!(back.id));
            parameters.insert("proxy".into(), json!(proxy.to_string()));
            parameters.insert("upstream".into(), json!(back.server.to_string()));
            parameters.insert("first_ended".into(), json!(first));
            parameters.insert("gap_s".into(), json!((gap * 1e6).round() / 1e6));
            (
                Finding {
                    id: FindingId::ProxyLegs,
                    confidence: round2(confidence),
                    connections: vec![front.id, back.id],
                    parameters,
                    evidence,
                    explanation,
                    advice,
                    suspects: Vec::new(),
                    time: Some(front.end.min(back.end)),
                },
                1e-9,
            )
        })
        .collect()
}
