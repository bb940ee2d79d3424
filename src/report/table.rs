//! The default terminal report (comfy-table): one row per WebSocket connection, then findings
//! grouped by id, then totals; with `--messages`, a log per connection like a browser's
//! WebSocket inspector; with `--frames`, a log of frame headers per connection. Colour only on a terminal, and never with NO_COLOR.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use comfy_table::{Attribute, Cell, Color, ContentArrangement, Table, presets};

use super::Output;
use crate::analysis::clock;
use crate::analysis::close::human_seconds;
use crate::capture::InputSummary;
use crate::diag::{Severity, Side};
use crate::record::{ConnectionRecord, MessageRecord, Summary};
use crate::record::{Event, Sink};

/// Connections listed in full; beyond that only totals (use json for everything).
const MAX_ROWS: usize = 2000;

/// Builds the terminal report.
pub struct TableReport {
    out: Output,
    colour: bool,
    show_messages: bool,
    records: Vec<ConnectionRecord>,
    omitted: u64,
    /// Live capture: one line per event as it happens, before the final report.
    live: Option<LiveLines>,
}

/// What the live event lines need to remember per open connection.
#[derive(Default)]
struct LiveLines {
    /// id → (`client → server`, who sent the first Close).
    open: HashMap<u64, (String, Option<Side>)>,
    /// Time of the latest event, for events that carry none.
    last_time: f64,
}

/// Cuts `s` to `max` characters, marking the cut.
fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

fn bytes(n: u64) -> String {
    match n {
        0..1024 => format!("{n} B"),
        1024..1_048_576 => format!("{:.1} KiB", n as f64 / 1024.0),
        _ => format!("{:.1} MiB", n as f64 / 1_048_576.0),
    }
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
    match (&m.text, &m.base64) {
        (Some(t), _) if !t.is_empty() => {
            let _ = write!(what, " {:?}", cut(t, 60));
        }
        (None, Some(b)) if !b.is_empty() => {
            let _ = write!(what, " base64:{}", cut(b, 60));
        }
        _ => {}
    }
    what
}

impl TableReport {
    /// Writes to `writer`; `colour` when it is a terminal and NO_COLOR is unset.
    pub fn new(writer: Box<dyn std::io::Write>, colour: bool, show_messages: bool) -> Self {
        TableReport {
            out: Output::new(writer),
            colour,
            show_messages,
            records: Vec::new(),
            omitted: 0,
            live: None,
        }
    }

    /// Also prints one line per event as it happens (live capture), flushed at once.
    pub fn with_live_events(mut self) -> Self {
        self.live = Some(LiveLines::default());
        self
    }

    /// Writes one live line: time, connection, endpoints, what happened.
    fn live_line(&mut self, id: u64, time: Option<f64>, what: &str) {
        let Some(live) = &mut self.live else {
            return;
        };
        let time = time.unwrap_or(live.last_time);
        live.last_time = live.last_time.max(time);
        let ends = live
            .open
            .get(&id)
            .map(|(ends, _)| ends.as_str())
            .unwrap_or("");
        let line = format!("{} #{id} {ends} {what}\n", clock(time));
        self.out.write_all(line.as_bytes());
        self.out.flush();
    }

    fn table(&self) -> Table {
        let mut t = Table::new();
        t.load_style(presets::UTF8_FULL_CONDENSED)
            .set_content_arrangement(ContentArrangement::Dynamic);
        if self.colour {
            t.enforce_styling();
        } else {
            t.force_no_tty();
        }
        t
    }

    fn paint(&self, cell: Cell, colour: Color) -> Cell {
        if self.colour { cell.fg(colour) } else { cell }
    }

    fn connections_table(&self) -> Table {
        let mut t = self.table();
        t.set_header(vec![
            "id",
            "client → server",
            "path",
            "protocol / extensions",
            "duration",
            "msgs c→s",
            "msgs s→c",
            "ended",
        ]);
        for r in &self.records {
            let hs = r.handshake.as_ref();
            let path = hs.map(|h| h.path.as_str()).unwrap_or("(no handshake)");
            let mut proto = Vec::new();
            if let Some(p) = hs.and_then(|h| h.subprotocol.as_deref()) {
                proto.push(p.to_string());
            }
            if let Some(e) = hs.and_then(|h| h.extensions.as_deref()) {
                proto.push(e.to_string());
            }
            let ended = &r.close.summary;
            let colour = match r.close.outcome {
                "clean" => Color::Green,
                "abnormal" => Color::Red,
                "incomplete" | "not_websocket" => Color::Yellow,
                _ => Color::Reset,
            };
            t.add_row(vec![
                Cell::new(r.id),
                Cell::new(format!(
                    "{}:{} → {}:{}",
                    r.client.ip, r.client.port, r.server.ip, r.server.port
                )),
                Cell::new(cut(path, 40)),
                Cell::new(cut(&proto.join("; "), 40)),
                Cell::new(human_seconds((r.last_seen - r.first_seen).max(0.0))),
                Cell::new(format!(
                    "{} / {}",
                    r.message_counts.client,
                    bytes(r.payload_bytes.client)
                )),
                Cell::new(format!(
                    "{} / {}",
                    r.message_counts.server,
                    bytes(r.payload_bytes.server)
                )),
                self.paint(Cell::new(cut(ended, 90)), colour),
            ]);
        }
        t
    }

    fn diagnostics_table(&self) -> Option<Table> {
        // id -> (severity, count, first occurrence)
        let mut by_id: BTreeMap<&str, (Severity, u64, String)> = BTreeMap::new();
        for r in &self.records {
            for (id, n) in &r.diagnostic_counts {
                let first = r.diagnostics.iter().find(|d| d.id.as_str() == id);
                let entry = by_id.entry(id.as_str()).or_insert_with(|| {
                    let severity = first.map(|d| d.severity).unwrap_or(Severity::Info);
                    let text = first
                        .map(|d| format!("#{}: {}", r.id, d.message))
                        .unwrap_or_default();
                    (severity, 0, text)
                });
                entry.1 += n;
            }
        }
        if by_id.is_empty() {
            return None;
        }
        let mut rows: Vec<_> = by_id.into_iter().collect();
        rows.sort_by(|a, b| b.1.0.cmp(&a.1.0).then(a.0.cmp(b.0)));
        let mut t = self.table();
        t.set_header(vec!["diagnostic", "severity", "count", "first occurrence"]);
        for (id, (severity, count, first)) in rows {
            let colour = match severity {
                Severity::Error => Color::Red,
                Severity::Warning => Color::Yellow,
                Severity::Info => Color::Cyan,
            };
            t.add_row(vec![
                Cell::new(id),
                self.paint(Cell::new(severity.as_str()), colour),
                Cell::new(count),
                Cell::new(cut(&first, 110)),
            ]);
        }
        Some(t)
    }

    fn frames_log(&self, r: &ConnectionRecord, text: &mut String) {
        let Some(frames) = &r.frames_detail else {
            return;
        };
        let _ = writeln!(
            text,
            "\nframes of connection #{} {}:{} → {}:{}",
            r.id, r.client.ip, r.client.port, r.server.ip, r.server.port
        );
        for f in frames {
            let arrow = if f.from == crate::diag::Side::Client {
                "→"
            } else {
                "←"
            };
            let _ = writeln!(
                text,
                "  {:>10.3}s {arrow} {:<12} fin={} rsv={}{}{} {:<8} {:>9} B payload, {} B header",
                f.time - r.first_seen,
                f.opcode,
                u8::from(f.fin),
                f.rsv >> 2 & 1,
                f.rsv >> 1 & 1,
                f.rsv & 1,
                if f.masked { "masked" } else { "unmasked" },
                f.payload_length,
                f.header_length
            );
        }
    }

    fn messages_log(&self, r: &ConnectionRecord, text: &mut String) {
        let Some(messages) = &r.messages else {
            return;
        };
        let _ = writeln!(
            text,
            "\nconnection #{} {}:{} → {}:{} {}",
            r.id,
            r.client.ip,
            r.client.port,
            r.server.ip,
            r.server.port,
            r.handshake.as_ref().map(|h| h.path.as_str()).unwrap_or("")
        );
        let origin = r.first_seen;
        for m in messages {
            let arrow = if m.from == crate::diag::Side::Client {
                "→"
            } else {
                "←"
            };
            let length = m
                .length
                .map(|n| format!("{n} B"))
                .unwrap_or_else(|| format!("? B ({} on the wire)", m.wire_length));
            let mut flags = Vec::new();
            if m.compressed {
                flags.push("deflate".to_string());
            }
            if m.inflated_after_gap == Some(true) {
                flags.push("inflated after gap".into());
            }
            if m.fragments > 1 {
                flags.push(format!("{} fragments", m.fragments));
            }
            if !m.complete {
                flags.push("INCOMPLETE".into());
            }
            let preview = match (&m.close_code, &m.text, &m.base64) {
                (Some(code), reason, _) => format!("{code} {}", reason.as_deref().unwrap_or("")),
                (None, Some(t), _) => format!("{:?}", cut(t, 80)),
                (None, None, Some(b)) => format!("base64:{}", cut(b, 80)),
                _ => m.inflate_error.clone().unwrap_or_default(),
            };
            let _ = writeln!(
                text,
                "  {:>10.3}s {arrow} {:<6} {:>9} {:<20} {}",
                m.time - origin,
                m.opcode,
                length,
                flags.join(","),
                preview
            );
        }
    }
}

impl Sink for TableReport {
    fn event(&mut self, event: &Event<'_>) {
        let Some(live) = &mut self.live else {
            return;
        };
        match event {
            Event::ConnectionSeen {
                id,
                time,
                client,
                server,
            } => {
                let ends = format!(
                    "{}:{} → {}:{}",
                    client.ip, client.port, server.ip, server.port
                );
                live.open.insert(*id, (ends, None));
                self.live_line(*id, Some(*time), "connection seen");
            }
            Event::Handshake { id, handshake: h } => {
                let mut what = match h.status {
                    Some(status) => format!(
                        "handshake {status} {} GET {}",
                        h.reason.as_deref().unwrap_or(""),
                        cut(&h.path, 60)
                    ),
                    None => format!("handshake (no answer) GET {}", cut(&h.path, 60)),
                };
                if let Some(p) = &h.subprotocol {
                    let _ = write!(what, " subprotocol {p}");
                }
                if let Some(e) = &h.extensions {
                    let _ = write!(what, " extensions {}", cut(e, 60));
                }
                if h.accept_valid == Some(false) {
                    what.push_str(" (Sec-WebSocket-Accept does not match)");
                }
                self.live_line(*id, h.response_time.or(h.request_time), &what);
            }
            Event::Message { id, message } => {
                if message.opcode != "close" {
                    // Close frames get their own line from Event::Close.
                    let what = live_message(message);
                    self.live_line(*id, Some(message.time), &what);
                }
            }
            Event::Frame { id, frame } => {
                let what = format!(
                    "frame {} {}{}{} rsv={} {} B",
                    if frame.from == crate::diag::Side::Client {
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
                self.live_line(*id, Some(frame.time), &what);
            }
            Event::Close {
                id,
                time,
                from,
                code,
                reason,
            } => {
                let first = match live.open.get_mut(id) {
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
                    format!(" {:?}", cut(reason, 60))
                };
                let what = format!(
                    "close {code}{reason} from {} ({})",
                    from.as_str(),
                    if first { "initiator" } else { "reply" }
                );
                self.live_line(*id, Some(*time), &what);
            }
            Event::Diagnostic { id, diagnostic: d } => {
                let what = format!(
                    "{} {}: {}",
                    d.severity.as_str(),
                    d.id.as_str(),
                    cut(&d.message, 160)
                );
                self.live_line(*id, d.time, &what);
            }
        }
    }

    fn output_failed(&self) -> bool {
        self.out.failed()
    }

    fn connection(&mut self, record: ConnectionRecord) {
        if self.live.is_some() {
            let what = format!("ended: {}", record.close.summary);
            if let Some(live) = &mut self.live
                && !live.open.contains_key(&record.id)
            {
                let ends = format!(
                    "{}:{} → {}:{}",
                    record.client.ip, record.client.port, record.server.ip, record.server.port
                );
                live.open.insert(record.id, (ends, None));
            }
            self.live_line(record.id, Some(record.last_seen), &what);
            if let Some(live) = &mut self.live {
                live.open.remove(&record.id);
            }
        }
        if self.records.len() < MAX_ROWS {
            self.records.push(record);
        } else {
            self.omitted += 1;
        }
    }

    fn finish(&mut self, inputs: &[InputSummary], summary: &Summary) -> std::io::Result<()> {
        self.records.sort_by_key(|r| r.id);
        let mut text = String::new();
        if self.live.is_some() {
            text.push('\n'); // after the event lines
        }
        for input in inputs {
            let _ = write!(
                text,
                "{} ({}, {}): {} packets",
                input.path,
                input.format,
                input.link_types.join("+"),
                input.packets
            );
            if let Some(n) = input.dropped_by_kernel {
                let _ = write!(text, ", {n} dropped by the kernel");
            }
            if let Some(e) = &input.error {
                let _ = write!(text, " — DAMAGED: {e}; analysed up to there");
            }
            text.push('\n');
        }
        if self.records.is_empty() {
            text.push_str("\nNo WebSocket traffic or upgrade attempts found.\n");
        } else {
            let _ = writeln!(text, "\n{}", self.connections_table());
            if self.omitted > 0 {
                let _ = writeln!(
                    text,
                    "({} more connections not listed: use --format json)",
                    self.omitted
                );
            }
        }
        for r in &self.records {
            self.frames_log(r, &mut text);
        }
        if self.show_messages {
            for r in &self.records {
                self.messages_log(r, &mut text);
            }
        }
        if let Some(t) = self.diagnostics_table() {
            let _ = writeln!(text, "\n{t}");
        }
        let outcomes: Vec<String> = summary
            .outcomes
            .iter()
            .map(|(k, v)| format!("{v} {k}"))
            .collect();
        let totals = format!(
            "\n{} WebSocket connection(s) of {} TCP; {} frames, {} messages; endings: {}\n",
            summary.websocket_connections,
            summary.tcp_connections,
            summary.frames,
            summary.messages,
            if outcomes.is_empty() {
                "none".into()
            } else {
                outcomes.join(", ")
            }
        );
        if self.colour {
            let _ = write!(
                text,
                "{}",
                Cell::new(totals).add_attribute(Attribute::Bold).content()
            );
        } else {
            text.push_str(&totals);
        }
        self.out.write_all(text.as_bytes());
        self.out.result()
    }
}
