//! What a TLS connection's application records show without keys (research note §9): their
//! sizes, order and times. From them: each side's last application record before the final
//! close_notify-sized one (the idle time before the end is measured from it), the longest
//! silence, and whether the connection looks like WebSocket: an upgrade-sized request, a
//! 101-sized answer, then small records both ways. All of it is inference (record padding,
//! which stacks rarely use, would defeat it), and the report says so.

use std::collections::VecDeque;

use crate::diag::Side;
use crate::record::tls::WebSocketLikely;

/// Records kept at the end, so that the final close_notify-sized ones can be left out of the
/// longest silence between records.
const TAIL: usize = 4;

/// Server records kept from the answer to the request.
const ANSWER: usize = 4;

/// Smallest plaintext of an HTTP/1.1 upgrade request: request line, Host, Upgrade,
/// Connection, a 24-character Sec-WebSocket-Key and Sec-WebSocket-Version (RFC 6455 §4.1)
/// need about 140 bytes; a little less allows short names.
pub const MIN_UPGRADE_REQUEST: u64 = 120;

/// Largest plausible upgrade request: cookies and tokens make them long, not longer than this.
pub const MAX_UPGRADE_REQUEST: u64 = 16 * 1024;

/// Smallest 101 response: status line, Upgrade, Connection and a 28-character
/// Sec-WebSocket-Accept (RFC 6455 §4.2.2) need about 125 bytes.
pub const MIN_UPGRADE_RESPONSE: u64 = 110;

/// Largest plausible 101 response (it has no body).
pub const MAX_UPGRADE_RESPONSE: u64 = 4096;

/// Client records of this many plaintext bytes are WebSocket-frame-sized: a masked frame has
/// at least 6 (2 header + 4 masking key), and no HTTP request is shorter than about 40
/// (`GET / HTTP/1.1`, a Host header and the blank line).
pub const FRAME_SIZED: std::ops::RangeInclusive<u64> = 6..=39;

/// Server records this small before a 101-sized one cannot be an HTTP/1.1 answer: the size of
/// an HTTP/2 SETTINGS frame (9 + 6 per setting) that an h2 server sends first.
pub const SMALLER_THAN_HTTP_ANSWER: u64 = 64;

/// A WebSocket Close frame's plaintext sizes: the server's 2..=127 (a code and up to 123
/// reason bytes, or nothing), the client's 6..=131 (plus the masking key).
pub fn close_sized(side: Side, plain: u64) -> bool {
    match side {
        Side::Server => (2..=127).contains(&plain),
        Side::Client => (6..=131).contains(&plain),
    }
}

/// Seconds between a Close-sized final record and the end (close_notify, FIN, RST) for the
/// record to count as part of a closing handshake: the peer's Close comes back within a round
/// trip and the transport is closed right after (RFC 6455 §7.1.1); an idle timeout ends later.
pub const CLOSE_TO_END_S: f64 = 1.0;

/// One application record (plaintext size estimated from its length).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AppRecord {
    /// Sender.
    pub side: Side,
    /// Capture time.
    pub time: f64,
    /// Plaintext bytes (the record minus tag, explicit nonce, inner type).
    pub plain: u64,
    /// TLS 1.3: exactly close_notify's size (2 alert bytes); only a side's final record of
    /// that size is taken for the alert.
    pub close_notify_sized: bool,
}

/// Accumulates a connection's application records.
#[derive(Debug, Default)]
pub struct RecordPattern {
    tail: VecDeque<AppRecord>,
    /// Longest gap between records that left the tail, and the newest of them.
    longest_silence: Option<f64>,
    last_left: Option<f64>,
    records: [u64; 2],
    request: Option<(f64, u64)>,
    /// Server records before the client's first application record (TLS 1.3 tickets, or a
    /// protocol where the server speaks first), and the smallest of them.
    server_first: u64,
    server_first_smallest: Option<u64>,
    answer: Vec<AppRecord>,
    answer_time: Option<f64>,
    /// A client record after the answer began: the answer is complete.
    answered: bool,
    client_after: u64,
    frame_sized_client: u64,
    server_after: u64,
    echo_pairs: u64,
    previous: Option<AppRecord>,
    /// Each side's last two records (the earlier first).
    last_two: [[Option<AppRecord>; 2]; 2],
}

/// The facts at the end.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PatternFacts {
    /// Each side's last application record, final close_notify-sized ones left out.
    pub last: [Option<AppRecord>; 2],
    /// Each side's final close_notify-sized record (TLS 1.3): its time.
    pub close_notify_sized: [Option<f64>; 2],
    /// Application records per side (close_notify-sized final ones left out).
    pub records: [u64; 2],
    /// Longest silence between two application records.
    pub longest_silence: Option<f64>,
    /// The client's first application record(s) before any answer: time and plaintext size.
    pub request: Option<(f64, u64)>,
    /// Server records before the request, and the smallest.
    pub server_first: u64,
    /// Smallest of them.
    pub server_first_smallest: Option<u64>,
    /// The server's first records after the request (up to 4), and when the first came.
    pub answer: Vec<u64>,
    /// Time of the first.
    pub answer_time: Option<f64>,
    /// Client records after the answer, and how many of them were frame-sized.
    pub client_after: u64,
    /// Of them, frame-sized ([`FRAME_SIZED`]).
    pub frame_sized_client: u64,
    /// Server records after the answer.
    pub server_after: u64,
    /// Server records exactly 4 bytes shorter than the client record right before them.
    pub echo_pairs: u64,
}

fn i(side: Side) -> usize {
    match side {
        Side::Client => 0,
        Side::Server => 1,
    }
}

impl RecordPattern {
    /// The next application record of either side, in capture order.
    pub fn push(&mut self, r: AppRecord) {
        self.records[i(r.side)] += 1;
        match r.side {
            Side::Client => match self.request {
                None => self.request = Some((r.time, r.plain)),
                // A request written in several records, before any answer.
                Some((t, len)) if self.answer.is_empty() => {
                    self.request = Some((t, len + r.plain));
                }
                Some(_) => {
                    self.answered = true;
                    self.client_after += 1;
                    if FRAME_SIZED.contains(&r.plain) {
                        self.frame_sized_client += 1;
                    }
                }
            },
            Side::Server => {
                if self.request.is_none() {
                    self.server_first += 1;
                    self.server_first_smallest = Some(
                        self.server_first_smallest
                            .map_or(r.plain, |s| s.min(r.plain)),
                    );
                } else if !self.answered && self.answer.len() < ANSWER {
                    self.answer_time.get_or_insert(r.time);
                    self.answer.push(r);
                } else {
                    self.answered = true;
                    self.server_after += 1;
                }
                if let Some(p) = self.previous
                    && p.side == Side::Client
                    && self.answered
                    && p.plain >= 6
                    && r.plain + 4 == p.plain
                {
                    self.echo_pairs += 1;
                }
            }
        }
        self.previous = Some(r);
        let two = &mut self.last_two[i(r.side)];
        two[0] = two[1].replace(r);
        self.tail.push_back(r);
        if self.tail.len() > TAIL
            && let Some(old) = self.tail.pop_front()
        {
            self.gap_to(old.time);
        }
    }

    fn gap_to(&mut self, time: f64) {
        if let Some(prev) = self.last_left {
            let gap = (time - prev).max(0.0);
            if gap > self.longest_silence.unwrap_or(0.0) {
                self.longest_silence = Some(gap);
            }
        }
        self.last_left = Some(time);
    }

    /// The facts, with each side's final close_notify-sized record set apart.
    pub fn facts(&self) -> PatternFacts {
        let mut last = [None, None];
        let mut close_notify_sized = [None, None];
        let mut records = self.records;
        for side in 0..2 {
            let [before, final_record] = self.last_two[side];
            match final_record {
                Some(r) if r.close_notify_sized => {
                    close_notify_sized[side] = Some(r.time);
                    records[side] -= 1;
                    last[side] = before;
                }
                other => last[side] = other,
            }
        }
        // The longest silence between application records, the final close_notify-sized ones
        // left out (the silence before them is the idle time before the end).
        let is_final_alert = |r: &AppRecord| {
            close_notify_sized[i(r.side)].is_some() && self.last_two[i(r.side)][1] == Some(*r)
        };
        let mut longest = self.longest_silence;
        let mut prev = self.last_left;
        for r in self.tail.iter().filter(|r| !is_final_alert(r)) {
            if let Some(p) = prev {
                let gap = (r.time - p).max(0.0);
                if gap > longest.unwrap_or(0.0) {
                    longest = Some(gap);
                }
            }
            prev = Some(r.time);
        }
        PatternFacts {
            last,
            close_notify_sized,
            records,
            longest_silence: longest,
            request: self.request,
            server_first: self.server_first,
            server_first_smallest: self.server_first_smallest,
            answer: self
                .answer
                .iter()
                .filter(|r| !is_final_alert(r))
                .map(|r| r.plain)
                .collect(),
            answer_time: self.answer_time,
            client_after: self.client_after,
            frame_sized_client: self.frame_sized_client,
            server_after: self.server_after,
            echo_pairs: self.echo_pairs,
        }
    }
}

/// What else is known about the connection, for [`assess`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Context<'a> {
    /// ALPN protocols the client offered.
    pub alpn_offered: &'a [String],
    /// The protocol the server selected, when visible (TLS 1.2).
    pub alpn_selected: Option<&'a str>,
    /// The server's TCP port.
    pub server_port: Option<u16>,
    /// The handshake completed (as far as can be told).
    pub handshake_complete: bool,
    /// The last records of both sides have a Close frame's size and came right before the
    /// end: (client plaintext, server plaintext).
    pub close_exchange: Option<(u64, u64)>,
}

/// Confidence from which the connection is called likely WebSocket.
pub const LIKELY: f64 = 0.5;

/// Does the connection look like WebSocket? None when there is nothing to judge by (no
/// application record from the client).
pub fn assess(f: &PatternFacts, cx: &Context<'_>) -> Option<WebSocketLikely> {
    let (_, request) = f.request?;
    let mut score: f64 = 0.0;
    let mut basis = Vec::new();
    let mut against = Vec::new();
    let mut ruled_out = false;

    let offered: Vec<&str> = cx.alpn_offered.iter().map(String::as_str).collect();
    match cx.alpn_selected {
        Some("http/1.1") => {
            score += 0.05;
            basis.push("ALPN: the server selected http/1.1".to_string());
        }
        Some("h2") => {
            ruled_out = true;
            against.push(
                "ALPN: the server selected h2 (WebSocket there would be an HTTP/2 stream, RFC 8441, not visible without keys)"
                    .to_string(),
            );
        }
        Some(other) => {
            ruled_out = true;
            against.push(format!("ALPN: the server selected {other}, not HTTP"));
        }
        None => {}
    }
    if offered == ["http/1.1"] && cx.alpn_selected.is_none() {
        score += 0.15;
        basis.push(
            "ALPN: the client offered only http/1.1 (browsers offer h2 too, except on WebSocket connections)"
                .to_string(),
        );
    } else if !offered.is_empty() && !offered.iter().any(|p| p.starts_with("http/") || *p == "h2") {
        ruled_out = true;
        against.push(format!(
            "ALPN: the client offered no HTTP protocol ({})",
            offered.join(", ")
        ));
    }
    if let Some(port) = cx.server_port
        && (port == 443 || port == 8443)
    {
        score += 0.05;
        basis.push(format!("server port {port} (HTTPS)"));
    }

    let h2_offered = offered.contains(&"h2");
    if (MIN_UPGRADE_REQUEST..=MAX_UPGRADE_REQUEST).contains(&request) {
        score += 0.25;
        basis.push(format!(
            "the client's first application data ({request} B) has the size of an HTTP upgrade request"
        ));
    } else {
        ruled_out = true;
        against.push(format!(
            "the client's first application data ({request} B) has not the size of an HTTP upgrade request"
        ));
    }
    if let Some(small) = f.server_first_smallest
        && small < SMALLER_THAN_HTTP_ANSWER
    {
        ruled_out = true;
        against.push(format!(
            "the server sent a {small} B record before the client's first request: it speaks first, as an HTTP/2 server does (SETTINGS)"
        ));
    }
    let answer_101 = f
        .answer
        .iter()
        .position(|&n| (MIN_UPGRADE_RESPONSE..=MAX_UPGRADE_RESPONSE).contains(&n));
    let small_first = f.answer.iter().position(|&n| n < SMALLER_THAN_HTTP_ANSWER);
    match (answer_101, small_first) {
        (_, Some(s)) if answer_101.is_none_or(|a| s < a) => {
            let n = f.answer[s];
            let h2 = if h2_offered {
                ruled_out = true;
                " (an HTTP/2 SETTINGS frame's size, and the client offered h2)"
            } else {
                score -= 0.2;
                ""
            };
            against.push(format!(
                "the server's answer began with a {n} B record, smaller than any 101 response{h2}"
            ));
        }
        (Some(a), _) => {
            score += 0.15;
            basis.push(format!(
                "the server answered with a {} B record, the size of a 101 Switching Protocols response",
                f.answer[a]
            ));
        }
        (None, None) if f.answer.is_empty() => {
            against.push("the server never answered the request".to_string());
        }
        (None, _) => {
            score -= 0.1;
            against.push(format!(
                "the server's answer ({} B) has not the size of a 101 response",
                f.answer
                    .iter()
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join(" + ")
            ));
        }
    }
    if f.frame_sized_client > 0 {
        score += 0.35;
        basis.push(format!(
            "{} client record{} of {}-{} B after the answer: too small for HTTP requests, the size of masked WebSocket frames",
            f.frame_sized_client,
            if f.frame_sized_client == 1 { "" } else { "s" },
            FRAME_SIZED.start(),
            FRAME_SIZED.end()
        ));
    } else if f.client_after == 0 && f.server_after > 0 {
        basis.push(format!(
            "{} server record{} after the answer with nothing from the client: a stream (WebSocket, or HTTP streaming alike)",
            f.server_after,
            if f.server_after == 1 { "" } else { "s" }
        ));
    }
    if f.echo_pairs > 0 {
        score += 0.15;
        basis.push(format!(
            "{} server record{} exactly 4 B shorter than the client record before {}: a masked frame echoed unmasked",
            f.echo_pairs,
            if f.echo_pairs == 1 { "" } else { "s" },
            if f.echo_pairs == 1 { "it" } else { "them" }
        ));
    }
    if let Some((c, s)) = cx.close_exchange {
        score += 0.1;
        basis.push(format!(
            "the final records ({c} B from the client, {s} B from the server) have Close frames' sizes and came right before the end"
        ));
    }
    if !cx.handshake_complete {
        against.push("the TLS handshake did not complete".to_string());
        ruled_out = true;
    }
    let confidence = if ruled_out {
        score.clamp(0.0, LIKELY - 0.05)
    } else {
        score.clamp(0.0, 0.95)
    };
    Some(WebSocketLikely {
        likely: confidence >= LIKELY,
        confidence: (confidence * 100.0).round() / 100.0,
        basis,
        against,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(side: Side, time: f64, plain: u64) -> AppRecord {
        AppRecord {
            side,
            time,
            plain,
            close_notify_sized: plain == 2,
        }
    }

    fn pattern(records: &[(Side, f64, u64)]) -> PatternFacts {
        let mut p = RecordPattern::default();
        for &(side, time, plain) in records {
            p.push(rec(side, time, plain));
        }
        p.facts()
    }

    use Side::{Client as C, Server as S};

    /// wss-py-tls13 as seen on the wire: tickets, upgrade, 101, echoed frames, the closing.
    fn websocket_echo() -> Vec<(Side, f64, u64)> {
        vec![
            (S, 0.0058, 233),
            (S, 0.0058, 233),
            (C, 0.0061, 271),
            (S, 0.0070, 303),
            (C, 0.0091, 22),
            (S, 0.0095, 18),
            (C, 0.0098, 44),
            (S, 0.0101, 40),
            (C, 0.0176, 12),
            (S, 0.0179, 8),
            (S, 0.0187, 2),
            (C, 0.0188, 2),
        ]
    }

    #[test]
    fn final_close_notify_sized_records_are_set_apart_and_the_idle_is_measured_before_them() {
        let mut recs = websocket_echo();
        // A silence before the end, then the server's close_notify.
        recs.truncate(10);
        recs.push((S, 60.0, 2));
        recs.push((C, 60.0002, 2));
        let f = pattern(&recs);
        assert_eq!(f.close_notify_sized, [Some(60.0002), Some(60.0)]);
        assert_eq!(f.last[1].unwrap().time, 0.0179);
        assert_eq!(f.last[0].unwrap().plain, 12);
        assert_eq!(f.records, [4, 6]);
        // The final silence is not the longest one between records.
        assert!(f.longest_silence.unwrap() < 0.01, "{f:?}");
        // A 2-byte record that is not a side's last is an application record.
        let mut mid = websocket_echo();
        mid.insert(8, (S, 0.011, 2));
        let f = pattern(&mid);
        assert_eq!(f.records[1], 7);
    }

    #[test]
    fn an_echoing_websocket_is_likely_and_says_why() {
        let f = pattern(&websocket_echo());
        assert_eq!(f.request, Some((0.0061, 271)));
        assert_eq!((f.server_first, f.answer.clone()), (2, vec![303]));
        assert_eq!((f.frame_sized_client, f.echo_pairs), (2, 3));
        let offered = vec!["http/1.1".to_string()];
        let cx = Context {
            alpn_offered: &offered,
            handshake_complete: true,
            ..Context::default()
        };
        let w = assess(&f, &cx).unwrap();
        assert!(w.likely && w.confidence >= 0.9, "{w:?}");
        assert!(w.basis.iter().any(|b| b.contains("upgrade request")));
        assert!(
            w.basis
                .iter()
                .any(|b| b.contains("masked WebSocket frames"))
        );
        assert!(w.against.is_empty(), "{w:?}");
    }

    #[test]
    fn https_page_loads_and_other_protocols_are_not_websocket() {
        let h2 = vec!["h2".to_string(), "http/1.1".to_string()];
        let cx = Context {
            alpn_offered: &h2,
            handshake_complete: true,
            ..Context::default()
        };
        // A page: request, a big answer, nothing after.
        let page = pattern(&[(C, 0.30, 645), (S, 0.30, 3195), (S, 0.30, 2)]);
        assert!(!assess(&page, &cx).unwrap().likely);
        // A small answer (a 404) is not enough either.
        let favicon = pattern(&[(C, 0.49, 573), (S, 0.51, 190)]);
        let w = assess(&favicon, &cx).unwrap();
        assert!(!w.likely && w.confidence < LIKELY, "{w:?}");
        // HTTP/2: the server's SETTINGS first, then small frames both ways.
        let h2conn = pattern(&[
            (C, 0.0, 300),
            (S, 0.01, 27),
            (S, 0.01, 9),
            (C, 0.02, 9),
            (C, 0.03, 13),
            (S, 0.04, 400),
        ]);
        let w = assess(&h2conn, &cx).unwrap();
        assert!(!w.likely, "{w:?}");
        assert!(w.against.iter().any(|a| a.contains("SETTINGS")));
        // A line protocol (s_client/s_server): no upgrade-sized request.
        let none: Vec<String> = Vec::new();
        let plain = Context {
            alpn_offered: &none,
            handshake_complete: true,
            ..Context::default()
        };
        let lines = pattern(&[(S, 0.007, 249), (C, 0.0073, 15), (S, 0.0076, 20)]);
        assert!(!assess(&lines, &plain).unwrap().likely);
        // ALPN h2 selected (TLS 1.2): not WebSocket over HTTP/1.1 whatever the sizes.
        let h2sel = Context {
            alpn_offered: &h2,
            alpn_selected: Some("h2"),
            handshake_complete: true,
            ..Context::default()
        };
        assert!(!assess(&pattern(&websocket_echo()), &h2sel).unwrap().likely);
        // Nothing from the client: nothing to judge.
        assert!(assess(&pattern(&[(S, 0.0, 200)]), &plain).is_none());
    }
}
