//! How a connection ended: Close frames and TCP FIN/RST in, a [`CloseRecord`] out, with the
//! 1006 inference (TCP ended with no Close frame) that endpoints only ever report vaguely.

use super::clock;
use crate::diag::{Diagnostic, DiagnosticId, Side};
use crate::record::{CloseRecord, TcpRecord, TlsEndRecord, UnreachableRecord};
use crate::ws::opcode::close_code_meaning;

/// A Close frame as seen.
#[derive(Debug, Clone)]
struct CloseFrame {
    side: Side,
    time: f64,
    code: u16,
    reason: String,
}

/// The end of TCP as seen.
#[derive(Debug, Clone, Copy)]
struct TcpEnd {
    side: Side,
    time: f64,
    rst: bool,
}

/// Tracks one connection's closing.
#[derive(Debug, Default)]
pub struct CloseTracker {
    first: Option<CloseFrame>,
    reply: Option<CloseFrame>,
    tcp_end: Option<TcpEnd>,
    /// What ended the transport, in words, when it is not TCP (an HTTP/2 stream's
    /// RST_STREAM: "stream reset by the client (CANCEL)").
    end_words: Option<String>,
}

/// What the rest of the analysis knows when the record is built.
#[derive(Debug, Clone, Default)]
pub struct EndContext {
    /// The upgrade was refused: its status line (`403 Forbidden`).
    pub refused: Option<String>,
    /// Time of the last WebSocket frame.
    pub last_frame_time: Option<f64>,
    /// The last message, as `client text 18 B`.
    pub last_message: Option<String>,
    /// Time the WebSocket began (101 or first frame).
    pub started: Option<f64>,
    /// Set when analysis stopped following a connection that was still open: why.
    pub stopped: Option<String>,
    /// What TLS (when present) says about the end.
    pub transport: super::TransportEnd,
    /// The close code's meaning under the application protocol (graphql-ws 4408 ...).
    pub app_meaning: Option<String>,
    /// The application protocol's account of the ending (`engine.io ping timeout ...`).
    pub app_reason: Option<String>,
    /// The last application heartbeat, as `application heartbeat pong from the client at ...`.
    /// Heartbeats are data frames, so they already end the idle time the WebSocket sees; this
    /// says which of the last frames were only heartbeats.
    pub app_heartbeat: Option<String>,
    /// One side went silent (see [`unreachable`]).
    pub unreachable: Option<UnreachableRecord>,
}

/// Retransmissions into silence that make a peer "unreachable": Linux's first retransmission
/// timeout is 200 ms and doubles, so three take at least 1.4 s; one or two are ordinary loss.
pub const MIN_UNREACHABLE_RETRANSMISSIONS: u64 = 3;

/// Seconds the peer must have been silent while the other side retransmitted: shorter silences
/// are a slow ACK, not a vanished peer.
pub const MIN_UNREACHABLE_SILENCE_S: f64 = 1.0;

/// A side that went silent while the other kept retransmitting data it never acknowledged,
/// and sent no FIN or RST of its own: network loss or a vanished host (RFC 9293 §3.8.3: the
/// sender retransmits with backoff until it gives up).
pub fn unreachable(
    tcp: &TcpRecord,
    tcp_end: Option<(Side, f64, bool)>,
) -> Option<UnreachableRecord> {
    [Side::Client, Side::Server].into_iter().find_map(|sender| {
        let silent = sender.peer();
        if tcp_end.is_some_and(|(side, _, _)| side == silent) {
            return None; // it ended the connection itself: it was there
        }
        let d = tcp.delivery.get(sender);
        let since = d.unacked_since?;
        let last_retransmission = d.last_retransmission?;
        if d.retransmissions_unacked < MIN_UNREACHABLE_RETRANSMISSIONS {
            return None;
        }
        let heard = tcp
            .delivery
            .get(silent)
            .last_packet
            .unwrap_or(f64::NEG_INFINITY);
        if last_retransmission - heard.max(since) < MIN_UNREACHABLE_SILENCE_S {
            return None;
        }
        Some(UnreachableRecord {
            side: silent,
            since,
            retransmissions: d.retransmissions_unacked,
            retransmitting_for: ((last_retransmission - since).max(0.0) * 1000.0).round() / 1000.0,
            unacked_bytes: d.unacked_bytes,
        })
    })
}

impl CloseTracker {
    /// A Close frame from `side`.
    pub fn close_frame(&mut self, side: Side, time: f64, code: u16, reason: &[u8]) {
        let frame = CloseFrame {
            side,
            time,
            code,
            reason: String::from_utf8_lossy(reason).into_owned(),
        };
        match &self.first {
            None => self.first = Some(frame),
            Some(first) if first.side != side && self.reply.is_none() => self.reply = Some(frame),
            Some(_) => {}
        }
    }

    /// Was a Close frame seen from either side?
    pub fn closing(&self) -> bool {
        self.first.is_some()
    }

    /// The first Close frame: its sender and time.
    pub fn first_close(&self) -> Option<(Side, f64)> {
        self.first.as_ref().map(|f| (f.side, f.time))
    }

    /// A FIN or RST from `side`; only the first counts.
    pub fn tcp_end(&mut self, side: Side, time: f64, rst: bool) {
        if self.tcp_end.is_none() {
            self.tcp_end = Some(TcpEnd { side, time, rst });
        }
    }

    /// The end given to [`CloseTracker::tcp_end`] is an HTTP/2 stream's, described by `words`.
    pub fn set_end_words(&mut self, words: String) {
        self.end_words = Some(words);
    }

    /// Builds the record, pushing `abnormal_closure` or `close_handshake_incomplete`.
    pub fn record(&self, ctx: &EndContext, out: &mut Vec<Diagnostic>) -> CloseRecord {
        let tcp = self.tcp_end;
        let tls = ctx.transport.tls.as_ref();
        let opaque = ctx.transport.opaque.is_some();
        // A TLS close_notify or alert before FIN/RST began the end (nginx's idle timeout
        // sends close_notify and waits for the client's FIN).
        let began = tls
            .and_then(|t| t.began.clone())
            .filter(|b| tcp.is_none_or(|t| b.time <= t.time));
        let end_start = began
            .as_ref()
            .map(|b| (b.side, b.time))
            .or(tcp.map(|t| (t.side, t.time)));
        // Encrypted: the last application record (not the final close_notify-sized one).
        let last_record = tls.filter(|_| opaque).and_then(|t| {
            [Side::Client, Side::Server]
                .into_iter()
                .filter_map(|side| (*t.last_record.get(side)).map(|(time, len)| (side, time, len)))
                .max_by(|a, b| a.1.total_cmp(&b.1))
        });
        let last = if opaque {
            last_record
                .map(|(_, t, _)| t)
                .or(ctx.transport.last_activity)
        } else {
            ctx.last_frame_time
                .or(ctx.started)
                .or(ctx.transport.last_activity)
        };
        let idle = match (end_start, last) {
            (Some((_, end)), Some(last)) => Some(round3((end - last).max(0.0))),
            _ => None,
        };
        let mut record = CloseRecord {
            code: None,
            reason: None,
            initiator: None,
            outcome: "open",
            meaning: None,
            reply_code: self.reply.as_ref().map(|r| r.code),
            time: self.first.as_ref().map(|f| f.time),
            tcp_end: tcp.map(|t| if t.rst { "rst" } else { "fin" }),
            tcp_end_from: tcp.map(|t| t.side),
            tcp_end_time: tcp.map(|t| t.time),
            tls_end: began.as_ref().map(|b| TlsEndRecord {
                from: b.side,
                time: b.time,
                alert: b.alert.clone(),
                inferred: b.inferred,
            }),
            idle_before_end: idle,
            last_message: ctx.last_message.clone(),
            unreachable: ctx.unreachable,
            summary: String::new(),
        };
        if let Some(status) = &ctx.refused {
            record.outcome = "not_websocket";
            record.summary = format!("upgrade refused: {status}");
            return record;
        }
        let note = ctx
            .transport
            .note
            .as_ref()
            .map(|n| format!("; {n}"))
            .unwrap_or_default();
        // How the end began, in words: "server sent FIN after 62 s idle", "server sent TLS
        // close_notify after 2.0 s idle, then client sent FIN".
        let end_words = || -> Option<String> {
            let mut s = match (&began, tcp) {
                (Some(b), _) => format!("{} sent {}", b.side.as_str(), b.words),
                (None, Some(t)) => match &self.end_words {
                    Some(words) => words.clone(),
                    None => format!(
                        "{} sent {}",
                        t.side.as_str(),
                        if t.rst { "RST" } else { "FIN" }
                    ),
                },
                (None, None) => return None,
            };
            if let Some(idle) = idle {
                s.push_str(&format!(" after {} idle", human_seconds(idle)));
                if let Some((side, time, len)) = last_record {
                    s.push_str(&format!(
                        " (last record: {} {len} B at {})",
                        side.as_str(),
                        clock(time)
                    ));
                }
            }
            if let (Some(b), Some(t)) = (&began, tcp) {
                let who = if t.side == b.side {
                    "its"
                } else {
                    t.side.as_str()
                };
                s.push_str(&format!(
                    ", then {who} {}",
                    if t.rst { "RST" } else { "FIN" }
                ));
            }
            Some(s)
        };
        if let Some(why) = &ctx.transport.no_websocket {
            record.outcome = "not_websocket";
            record.initiator = end_start.map(|(side, _)| side);
            record.summary = match end_words() {
                Some(w) => format!("{why}: {w}{note}"),
                None => format!("{why}{note}"),
            };
            return record;
        }
        if let Some(why) = &ctx.transport.opaque {
            // Encrypted and not decrypted: no WebSocket fact can be claimed (no 1006 either).
            record.outcome = "encrypted";
            record.initiator = end_start.map(|(side, _)| side);
            let likely = if tls.is_some_and(|t| t.websocket_likely) {
                ", likely WebSocket (inferred)"
            } else {
                ""
            };
            record.summary = match end_words() {
                Some(w) => format!("encrypted ({why}){likely}: {w}{note}"),
                None => format!(
                    "encrypted ({why}){likely}: still open, {}{note}",
                    ctx.stopped.as_deref().unwrap_or("the capture ended")
                ),
            };
            return record;
        }
        match (&self.first, &self.reply) {
            (Some(first), reply) => {
                record.code = Some(first.code);
                record.reason = Some(first.reason.clone()).filter(|r| !r.is_empty());
                record.initiator = Some(first.side);
                let name = ctx
                    .app_meaning
                    .clone()
                    .unwrap_or_else(|| close_code_meaning(first.code));
                record.meaning = Some(name.clone());
                let reason = if first.reason.is_empty() {
                    String::new()
                } else {
                    format!(" \"{}\"", first.reason)
                };
                // An application meaning reads `4408 (graphql-transport-ws): Connection ...`.
                let short = name
                    .split_once("): ")
                    .map_or(name.as_str(), |(_, rest)| rest)
                    .split(':')
                    .next()
                    .unwrap_or("")
                    .to_string();
                if reply.is_some() {
                    record.outcome = "clean";
                    record.summary = format!(
                        "{} {short}{reason}, closed by {}",
                        first.code,
                        first.side.as_str()
                    );
                } else if let (Some(words), Some((_, end_time))) = (end_words(), end_start) {
                    record.outcome = "incomplete";
                    record.summary = format!(
                        "{} {short}{reason} from {}; no Close in reply before {}",
                        first.code,
                        first.side.as_str(),
                        words
                    );
                    // The finding is the unanswered Close's: its sender, its time.
                    out.push(Diagnostic::new(
                        DiagnosticId::CloseHandshakeIncomplete,
                        Some(first.side),
                        Some(first.time),
                        format!(
                            "{} sent Close {} at {}; the {} never answered with a Close before TCP ended ({} at {})",
                            first.side.as_str(),
                            first.code,
                            clock(first.time),
                            first.side.peer().as_str(),
                            words,
                            clock(end_time)
                        ),
                    ));
                } else {
                    record.outcome = "open";
                    record.summary = format!(
                        "{} {short}{reason} from {}; {} before the reply",
                        first.code,
                        first.side.as_str(),
                        ctx.stopped.as_deref().unwrap_or("the capture ended")
                    );
                }
            }
            (None, _) => match (end_start, end_words()) {
                (Some((side, time)), Some(words)) => {
                    record.code = Some(1006);
                    record.initiator = Some(side);
                    record.outcome = "abnormal";
                    record.meaning = Some(close_code_meaning(1006));
                    let mut after = ctx
                        .last_message
                        .as_ref()
                        .map(|m| format!("; last message: {m}"))
                        .unwrap_or_default();
                    if let Some(hb) = &ctx.app_heartbeat {
                        after.push_str(&format!("; last {hb}"));
                    }
                    record.summary = format!("1006 abnormal: {words}{after}");
                    out.push(Diagnostic::new(
                        DiagnosticId::AbnormalClosure,
                        Some(side),
                        Some(time),
                        format!("no Close frame: {words}{after} (1006)"),
                    ));
                }
                _ => {
                    record.summary = format!(
                        "still open: {}",
                        ctx.stopped.as_deref().unwrap_or("the capture ended")
                    )
                }
            },
        }
        if let Some(u) = ctx.unreachable {
            let words = format!(
                "{} unreachable since {}: the {} retransmitted {} times over {} with no ACK",
                u.side.as_str(),
                super::clock(u.since),
                u.side.peer().as_str(),
                u.retransmissions,
                human_seconds(u.retransmitting_for)
            );
            if record.outcome == "open" && self.first.is_none() {
                record.summary = format!(
                    "{words}; no FIN or RST from the {} reached the capture",
                    u.side.as_str()
                );
            } else {
                record.summary = format!("{}; {words}", record.summary);
            }
        }
        if let Some(reason) = &ctx.app_reason {
            record.summary.push_str(&format!("; {reason}"));
        }
        record.summary.push_str(&note);
        record
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

pub use crate::diag::human_seconds;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rst_without_close_is_1006_from_the_rst_sender() {
        let mut t = CloseTracker::default();
        t.tcp_end(Side::Server, 100.0, true);
        let ctx = EndContext {
            last_frame_time: Some(38.0),
            last_message: Some("client text 5 B".into()),
            ..EndContext::default()
        };
        let mut d = Vec::new();
        let r = t.record(&ctx, &mut d);
        assert_eq!(
            (r.code, r.outcome, r.initiator),
            (Some(1006), "abnormal", Some(Side::Server))
        );
        assert_eq!(
            r.summary,
            "1006 abnormal: server sent RST after 62 s idle; last message: client text 5 B"
        );
        assert_eq!(d[0].id, DiagnosticId::AbnormalClosure);
    }

    #[test]
    fn a_stream_reset_is_described_as_such() {
        let mut t = CloseTracker::default();
        t.tcp_end(Side::Client, 10.0, true);
        t.set_end_words("stream reset by the client (CANCEL)".into());
        let ctx = EndContext {
            last_frame_time: Some(9.75),
            ..EndContext::default()
        };
        let mut d = Vec::new();
        let r = t.record(&ctx, &mut d);
        assert_eq!(
            r.summary,
            "1006 abnormal: stream reset by the client (CANCEL) after 250 ms idle"
        );
        assert_eq!(d[0].id, DiagnosticId::AbnormalClosure);
    }

    #[test]
    fn a_silent_peer_is_unreachable_not_still_open() {
        use crate::record::{DeliveryRecord, PerSide};
        let tcp = TcpRecord {
            delivery: PerSide {
                client: DeliveryRecord {
                    last_packet: Some(10.2),
                    ..DeliveryRecord::default()
                },
                server: DeliveryRecord {
                    last_packet: Some(16.4),
                    unacked_since: Some(10.4),
                    last_retransmission: Some(16.4),
                    retransmissions_unacked: 5,
                    unacked_bytes: 42,
                    ..DeliveryRecord::default()
                },
            },
            ..TcpRecord::default()
        };
        let u = unreachable(&tcp, None).expect("unreachable");
        assert_eq!(
            (u.side, u.since, u.retransmissions),
            (Side::Client, 10.4, 5)
        );
        assert_eq!(u.retransmitting_for, 6.0);
        let ctx = EndContext {
            unreachable: Some(u),
            ..EndContext::default()
        };
        let r = CloseTracker::default().record(&ctx, &mut Vec::new());
        assert_eq!(r.outcome, "open");
        assert_eq!(
            r.summary,
            "client unreachable since 00:00:10.400: the server retransmitted 5 times over 6.0 s with no ACK; no FIN or RST from the client reached the capture"
        );
        // The silent side's own FIN says it was there after all; so do packets from it during
        // the retransmissions, and so do too few retransmissions.
        assert!(unreachable(&tcp, Some((Side::Client, 17.0, false))).is_none());
        let mut heard = tcp;
        heard.delivery.client.last_packet = Some(16.0);
        assert!(unreachable(&heard, None).is_none());
        let mut few = tcp;
        few.delivery.server.retransmissions_unacked = 2;
        assert!(unreachable(&few, None).is_none());
    }

    #[test]
    fn both_closes_are_clean_one_is_incomplete() {
        let mut t = CloseTracker::default();
        t.close_frame(Side::Client, 1.0, 1000, b"bye");
        t.close_frame(Side::Server, 1.1, 1000, b"");
        let mut d = Vec::new();
        let r = t.record(&EndContext::default(), &mut d);
        assert_eq!((r.outcome, r.reason.as_deref()), ("clean", Some("bye")));
        assert!(d.is_empty());

        let mut t = CloseTracker::default();
        t.close_frame(Side::Server, 1.0, 1011, b"");
        t.tcp_end(Side::Server, 2.0, false);
        let r = t.record(&EndContext::default(), &mut d);
        assert_eq!(r.outcome, "incomplete");
        assert_eq!(d[0].id, DiagnosticId::CloseHandshakeIncomplete);
    }
}
