//! `--messages` and `--frames`: a log per connection, like a browser's WebSocket inspector.
//! It starts with the connection's absolute start time, interleaves the handshake, messages,
//! control frames and findings in time order, and ends with how the connection ended and what
//! TCP lost or repeated. Every line fits the width; a cut preview ends with `…`.

use base64::Engine as _;

use super::rows::endpoint;
use super::text::{bytes, cut, duration, wrap};
use crate::analysis::clock;
use crate::diag::{DiagnosticId, Side};
use crate::record::{ConnectionRecord, MessageRecord};

/// A message's payload for people: text quoted, a close frame's code and reason, a ping's or
/// pong's payload as text when it is printable, else base64. `…` after it when the record's
/// payload was cut (preview or size limit).
pub fn preview(m: &MessageRecord) -> String {
    let more = if m.truncated == Some(true) { "…" } else { "" };
    if let Some(code) = m.close_code {
        return match m.text.as_deref() {
            Some(reason) if !reason.is_empty() => format!("{code} {reason:?}{more}"),
            _ => code.to_string(),
        };
    }
    if let Some(t) = &m.text {
        return format!("{t:?}{more}");
    }
    if let Some(b) = &m.base64 {
        if matches!(m.opcode, "ping" | "pong")
            && let Some(text) = printable(b)
        {
            return format!("{text:?}{more}");
        }
        if !b.is_empty() {
            return format!("base64:{b}{more}");
        }
    }
    m.inflate_error
        .as_ref()
        .map(|e| format!("(not inflated: {e})"))
        .unwrap_or_default()
}

/// The base64 payload as text when it is UTF-8 without control characters.
fn printable(b64: &str) -> Option<String> {
    let raw = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
    let text = String::from_utf8(raw).ok()?;
    (!text.is_empty() && !text.chars().any(char::is_control)).then_some(text)
}

/// One line of the log: when (seconds since the connection's first packet) and what.
struct Entry {
    time: f64,
    /// Keeps equal times in the order they were added.
    order: usize,
    text: String,
    /// Printed after every other entry whatever its time: the connection's ending (a frame
    /// may still come after the first FIN, in the half-closed direction).
    last: bool,
}

/// Marks an entry that continues the one before it: printed without its time.
const CONTINUED: &str = "\u{0}";

fn offset(t: f64, origin: f64) -> String {
    format!("+{:.3}s", (t - origin).max(0.0))
}

/// The title of a connection's log: id, absolute start, endpoints.
fn title(r: &ConnectionRecord, what: &str) -> String {
    format!(
        "{what} #{}  {} {} UTC  {} → {}",
        r.id,
        super::text::date(r.first_seen),
        clock(r.first_seen),
        endpoint(&r.client),
        endpoint(&r.server),
    )
}

/// Lines: the title wrapped, entries as `  +T  text` with the text cut (one line each) or,
/// for the ending and findings, wrapped under it.
fn render(
    title_text: String,
    mut entries: Vec<Entry>,
    wrapped_from: usize,
    origin: f64,
    max: usize,
) -> Vec<String> {
    entries.sort_by(|a, b| {
        a.last
            .cmp(&b.last)
            .then(a.time.total_cmp(&b.time))
            .then(a.order.cmp(&b.order))
    });
    let mut lines = vec![String::new()];
    lines.extend(wrap(&title_text, max, 4));
    let tw = entries
        .iter()
        .map(|e| offset(e.time, origin).len())
        .max()
        .unwrap_or(0);
    let indent = 2 + tw + 2;
    for e in entries {
        let (text, head) = match e.text.strip_prefix(CONTINUED) {
            Some(rest) => (rest.to_string(), " ".repeat(indent)),
            None => (e.text, format!("  {:>tw$}  ", offset(e.time, origin))),
        };
        let e = Entry { text, ..e };
        if e.order >= wrapped_from {
            for (i, line) in wrap(&e.text, max.saturating_sub(indent), 0)
                .into_iter()
                .enumerate()
            {
                let lead = if i == 0 {
                    head.clone()
                } else {
                    " ".repeat(indent)
                };
                lines.push(format!("{lead}{line}").trim_end().to_string());
            }
        } else {
            let line = format!("{head}{}", cut(&e.text, max.saturating_sub(indent)));
            lines.push(line.trim_end().to_string());
        }
    }
    lines
}

/// The message log of one connection (`--messages`).
pub fn messages(r: &ConnectionRecord, max: usize) -> Vec<String> {
    let Some(messages) = &r.messages else {
        return Vec::new();
    };
    let mut entries = Vec::new();
    let add = |time: f64, text: String, entries: &mut Vec<Entry>| {
        let order = entries.len();
        entries.push(Entry {
            time,
            order,
            text,
            last: false,
        });
    };
    if let Some(h) = &r.handshake {
        let mut offered = Vec::new();
        if !h.offered_subprotocols.is_empty() {
            offered.push(h.offered_subprotocols.join(", "));
        }
        if let Some(e) = &h.offered_extensions {
            offered.push(e.clone());
        }
        let offered = if offered.is_empty() {
            String::new()
        } else {
            format!(" (offers {})", offered.join("; "))
        };
        if let Some(t) = h.request_time {
            add(
                t,
                format!("→ GET {} upgrade{offered}", h.path),
                &mut entries,
            );
        }
        if let (Some(t), Some(status)) = (h.response_time, h.status) {
            let mut agreed = Vec::new();
            if let Some(p) = &h.subprotocol {
                agreed.push(p.clone());
            }
            if let Some(e) = &h.extensions {
                agreed.push(e.clone());
            }
            let agreed = if agreed.is_empty() {
                String::new()
            } else {
                format!(" ({})", agreed.join("; "))
            };
            let reason = h.reason.as_deref().unwrap_or("");
            add(t, format!("← {status} {reason}{agreed}"), &mut entries);
        }
    }
    for m in messages.held() {
        let arrow = if m.from == Side::Client { "→" } else { "←" };
        let length = m
            .length
            .map(|n| format!("{n} B"))
            .unwrap_or_else(|| format!("? B ({} B on the wire)", m.wire_length));
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
        let flags = if flags.is_empty() {
            String::new()
        } else {
            format!(" [{}]", flags.join(", "))
        };
        // The decoded application packet beside the raw text.
        let app = crate::report::app_text::message_app(m)
            .map(|a| format!("  {a}"))
            .unwrap_or_default();
        add(
            m.time,
            format!(
                "{arrow} {:<6} {length:>8}{flags}  {}{app}",
                m.opcode,
                preview(m)
            ),
            &mut entries,
        );
    }
    let wrapped_from = entries.len();
    findings_and_end(r, &mut entries);
    render(
        title(r, "connection"),
        entries,
        wrapped_from,
        r.first_seen,
        max,
    )
}

/// Findings with a time, in place; then the end of the connection and what TCP lost.
fn findings_and_end(r: &ConnectionRecord, entries: &mut Vec<Entry>) {
    let mut add = |time: f64, text: String| {
        let order = entries.len();
        // The ending block (■ and its TCP line) comes last.
        let last = text.starts_with('■') || text.starts_with(CONTINUED);
        entries.push(Entry {
            time,
            order,
            text,
            last,
        });
    };
    // abnormal_closure says what the ending line says.
    for d in r
        .diagnostics
        .iter()
        .filter(|d| d.id != DiagnosticId::AbnormalClosure)
    {
        let side = d
            .from
            .map(|s| format!(" ({})", s.as_str()))
            .unwrap_or_default();
        add(
            d.time.unwrap_or(r.last_seen),
            format!(
                "! {} {}{side}: {}",
                d.severity.as_str(),
                d.id.as_str(),
                d.message
            ),
        );
    }
    let c = &r.close;
    let end_time = c.tcp_end_time.unwrap_or(r.last_seen);
    add(end_time, format!("■ {}", c.summary));
    let mut tcp = vec![match (c.tcp_end, c.tcp_end_from) {
        (Some(end), Some(side)) => {
            let idle = c
                .idle_before_end
                .map(|i| format!(", {} after the last frame", duration(i)))
                .unwrap_or_default();
            format!(
                "{} {} at {}{idle}",
                side.as_str(),
                end.to_uppercase(),
                clock(end_time)
            )
        }
        _ => format!("no FIN or RST by {}", clock(r.last_seen)),
    }];
    let t = &r.tcp;
    if t.gaps > 0 {
        tcp.push(format!(
            "{} gap{} ({} missing from the capture)",
            t.gaps,
            if t.gaps == 1 { "" } else { "s" },
            bytes(t.gap_bytes)
        ));
    }
    if t.retransmissions > 0 {
        tcp.push(format!("{} retransmitted segments", t.retransmissions));
    }
    if t.out_of_order > 0 {
        tcp.push(format!("{} out of order", t.out_of_order));
    }
    if t.gaps == 0 && t.retransmissions == 0 {
        tcp.push("no gaps, no retransmissions".into());
    }
    if !t.syn_seen {
        tcp.push("no SYN captured (it began before the capture)".into());
    }
    add(end_time, format!("{CONTINUED}TCP: {}", tcp.join("; ")));
}

/// The frame log of one connection (`--frames`).
pub fn frames(r: &ConnectionRecord, max: usize) -> Vec<String> {
    let Some(frames) = &r.frames_detail else {
        return Vec::new();
    };
    let mut entries = Vec::new();
    for f in frames {
        let arrow = if f.from == Side::Client { "→" } else { "←" };
        let order = entries.len();
        entries.push(Entry {
            time: f.time,
            order,
            last: false,
            text: format!(
                "{arrow} {:<12} fin={} rsv={}{}{} {:<8} {:>9} B payload, {} B header",
                f.opcode,
                u8::from(f.fin),
                f.rsv >> 2 & 1,
                f.rsv >> 1 & 1,
                f.rsv & 1,
                if f.masked { "masked" } else { "unmasked" },
                f.payload_length,
                f.header_length
            ),
        });
    }
    let n = entries.len();
    render(
        title(r, "frames of connection"),
        entries,
        n,
        r.first_seen,
        max,
    )
}
