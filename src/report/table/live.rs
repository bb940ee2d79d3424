//! Live capture: one line per event as it happens (time UTC, connection, endpoints, what
//! happened), each cut to the output's width.

use std::collections::HashMap;
use std::fmt::Write as _;

use super::text::cut;
use crate::analysis::clock;
use crate::diag::Side;
use crate::record::{Address, ConnectionRecord, Event, Finding, MessageRecord};

/// What the live event lines need to remember per open connection.
#[derive(Default)]
pub struct LiveLines {
    /// id → (`client → server`, who sent the first Close).
    open: HashMap<u64, (String, Option<Side>)>,
    /// Time of the latest event, for events that carry none.
    last_time: f64,
}

fn ends(client: &Address, server: &Address) -> String {
    format!(
        "{} → {}",
        super::rows::endpoint(client),
        super::rows::endpoint(server)
    )
}

/// A message as a live line: direction, opcode, length, a short preview.
fn live_message(m: &MessageRecord) -> String {
    let arrow = match m.from {
        Side::Client => "client→server",
        Side::Server => "server→client",
    };
    let length = m
        .length
        .map(|n| format!("{n} B"))
        .unwrap_or_else(|| format!("? B ({} on the wire)", m.wire_length));
    let mut what = format!("{arrow} {} {length}", m.opcode);
    if m.compressed {
        what.push_str(" deflate");
    }
    if m.fragments > 1 {
        let _ = write!(what, " {} fragments", m.fragments);
    }
    if !m.complete {
        what.push_str(" INCOMPLETE");
    }
    let preview = super::log::preview(m);
    if !preview.is_empty() {
        let _ = write!(what, " {preview}");
    }
    if let Some(app) = crate::report::app_text::message_app(m) {
        let _ = write!(what, " {app}");
    }
    what
}

impl LiveLines {
    /// The line for one event, if it makes one.
    pub fn event(&mut self, event: &Event<'_>, width: usize) -> Option<String> {
        let (id, time, what) = match event {
            Event::ConnectionSeen {
                id,
                time,
                client,
                server,
            } => {
                self.open.insert(*id, (ends(client, server), None));
                (*id, Some(*time), "connection seen".to_string())
            }
            Event::Handshake { id, handshake: h } => {
                let mut what = match h.status {
                    Some(status) => format!(
                        "handshake {status} {} GET {}",
                        h.reason.as_deref().unwrap_or(""),
                        h.path
                    ),
                    None => format!("handshake (no answer) GET {}", h.path),
                };
                if let Some(p) = &h.subprotocol {
                    let _ = write!(what, " subprotocol {p}");
                }
                if let Some(e) = &h.extensions {
                    let _ = write!(what, " extensions {e}");
                }
                if h.accept_valid == Some(false) {
                    what.push_str(" (Sec-WebSocket-Accept does not match)");
                }
                (*id, h.response_time.or(h.request_time), what)
            }
            // Close frames get their own line from Event::Close.
            Event::Message { message, .. } if message.opcode == "close" => return None,
            Event::Message { id, message } => (*id, Some(message.time), live_message(message)),
            Event::Frame { id, frame } => {
                let what = format!(
                    "frame {} {}{}{} rsv={} {} B",
                    if frame.from == Side::Client {
                        "→"
                    } else {
                        "←"
                    },
                    frame.opcode,
                    if frame.fin { "" } else { " fin=0" },
                    if frame.masked { " masked" } else { "" },
                    frame.rsv,
                    frame.payload_length
                );
                (*id, Some(frame.time), what)
            }
            Event::Close {
                id,
                time,
                from,
                code,
                reason,
            } => {
                let first = match self.open.get_mut(id) {
                    Some((_, closer @ None)) => {
                        *closer = Some(*from);
                        true
                    }
                    Some(_) => false,
                    None => true,
                };
                let reason = if reason.is_empty() {
                    String::new()
                } else {
                    format!(" {reason:?}")
                };
                let what = format!(
                    "close {code}{reason} from {} ({})",
                    from.as_str(),
                    if first { "initiator" } else { "reply" }
                );
                (*id, Some(*time), what)
            }
            Event::Diagnostic { id, diagnostic: d } => {
                let what = format!("{} {}: {}", d.severity.as_str(), d.id.as_str(), d.message);
                (*id, d.time, what)
            }
        };
        Some(self.line(id, time, &what, width))
    }

    /// The line for a connection's end; forgets the connection.
    pub fn ended(&mut self, record: &ConnectionRecord, width: usize) -> String {
        self.open
            .entry(record.id)
            .or_insert_with(|| (ends(&record.client, &record.server), None));
        let line = self.line(
            record.id,
            Some(record.last_seen),
            &format!("ended: {}", record.close.summary),
            width,
        );
        self.open.remove(&record.id);
        line
    }

    /// The line for a pattern across connections established while capturing.
    pub fn finding(&mut self, f: &Finding, width: usize) -> Option<String> {
        let time = f.time.unwrap_or(self.last_time);
        let mut line = cut(
            &format!(
                "{} pattern {} ({:.0} % sure): {}",
                clock(time),
                f.id.as_str(),
                f.confidence * 100.0,
                f.evidence
            ),
            width,
        );
        line.push('\n');
        Some(line)
    }

    /// Time, connection, endpoints, what happened.
    fn line(&mut self, id: u64, time: Option<f64>, what: &str, width: usize) -> String {
        let time = time.unwrap_or(self.last_time);
        self.last_time = self.last_time.max(time);
        let ends = self.open.get(&id).map(|(e, _)| e.as_str()).unwrap_or("");
        let mut line = cut(&format!("{} #{id} {ends} {what}", clock(time)), width);
        line.push('\n');
        line
    }
}
