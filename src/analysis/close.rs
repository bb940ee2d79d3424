//! How a connection ended: Close frames and TCP FIN/RST in, a [`CloseRecord`] out, with the
//! 1006 inference (TCP ended with no Close frame) that endpoints only ever report vaguely.

use super::clock;
use crate::diag::{Diagnostic, DiagnosticId, Side};
use crate::record::CloseRecord;
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
        let idle = match (tcp, ctx.last_frame_time.or(ctx.started)) {
            (Some(end), Some(last)) => Some(round3((end.time - last).max(0.0))),
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
            idle_before_end: idle,
            last_message: ctx.last_message.clone(),
            summary: String::new(),
        };
        if let Some(status) = &ctx.refused {
            record.outcome = "not_websocket";
            record.summary = format!("upgrade refused: {status}");
            return record;
        }
        let tcp_words = |t: TcpEnd| {
            let mut s = match &self.end_words {
                Some(words) => words.clone(),
                None => format!(
                    "{} sent {}",
                    t.side.as_str(),
                    if t.rst { "RST" } else { "FIN" }
                ),
            };
            if let Some(idle) = idle {
                s.push_str(&format!(" after {} idle", human_seconds(idle)));
            }
            s
        };
        match (&self.first, &self.reply) {
            (Some(first), reply) => {
                record.code = Some(first.code);
                record.reason = Some(first.reason.clone()).filter(|r| !r.is_empty());
                record.initiator = Some(first.side);
                record.meaning = Some(close_code_meaning(first.code));
                let reason = if first.reason.is_empty() {
                    String::new()
                } else {
                    format!(" \"{}\"", first.reason)
                };
                let name = close_code_meaning(first.code);
                let short = name.split(':').next().unwrap_or("").to_string();
                if reply.is_some() {
                    record.outcome = "clean";
                    record.summary = format!(
                        "{} {short}{reason}, closed by {}",
                        first.code,
                        first.side.as_str()
                    );
                } else if let Some(t) = tcp {
                    record.outcome = "incomplete";
                    record.summary = format!(
                        "{} {short}{reason} from {}; no Close in reply before {}",
                        first.code,
                        first.side.as_str(),
                        tcp_words(t)
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
                            tcp_words(t),
                            clock(t.time)
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
            (None, _) => match tcp {
                Some(t) => {
                    record.code = Some(1006);
                    record.initiator = Some(t.side);
                    record.outcome = "abnormal";
                    record.meaning = Some(close_code_meaning(1006));
                    let after = ctx
                        .last_message
                        .as_ref()
                        .map(|m| format!("; last message: {m}"))
                        .unwrap_or_default();
                    record.summary = format!("1006 abnormal: {}{after}", tcp_words(t));
                    out.push(Diagnostic::new(
                        DiagnosticId::AbnormalClosure,
                        Some(t.side),
                        Some(t.time),
                        format!("no Close frame: {}{after} (1006)", tcp_words(t)),
                    ));
                }
                None => {
                    record.summary = format!(
                        "still open: {}",
                        ctx.stopped.as_deref().unwrap_or("the capture ended")
                    )
                }
            },
        }
        record
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// `62 s`, `1.5 s`, `250 ms`.
pub fn human_seconds(s: f64) -> String {
    if s >= 10.0 {
        format!("{s:.0} s")
    } else if s >= 1.0 {
        format!("{s:.1} s")
    } else {
        format!("{:.0} ms", s * 1000.0)
    }
}

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
