//! The end of the table report: findings grouped by id (with the first of each: connection,
//! time, side, message), the totals, and what the capture held besides WebSocket.

use std::collections::BTreeMap;

use super::rows::endpoint;
use super::text::{cut, pad, width, wrap};
use crate::analysis::clock;
use crate::diag::Severity;
use crate::record::{Attempts, ConnectionRecord, Summary};

/// Lines listed per kind of failed attempt before "and N more".
const MAX_ATTEMPT_LINES: usize = 10;

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The findings section: one entry per id, worst first. `paint` colours a severity word.
pub fn diagnostics(
    records: &[ConnectionRecord],
    max: usize,
    paint: &dyn Fn(&str, Severity) -> String,
) -> Vec<String> {
    // id -> (severity, count, first occurrence)
    let mut by_id: BTreeMap<&str, (Severity, u64, String)> = BTreeMap::new();
    for r in records {
        for (id, n) in &r.diagnostic_counts {
            let first = r.diagnostics.iter().find(|d| d.id.as_str() == id);
            let entry = by_id.entry(id.as_str()).or_insert_with(|| {
                let severity = first.map(|d| d.severity).unwrap_or(Severity::Info);
                let text = first
                    .map(|d| {
                        let when = d.time.map(|t| format!(" {}", clock(t))).unwrap_or_default();
                        let side = d
                            .from
                            .map(|s| format!(" {}", s.as_str()))
                            .unwrap_or_default();
                        format!("#{}{when}{side}: {}", r.id, d.message)
                    })
                    .unwrap_or_default();
                (severity, 0, text)
            });
            entry.1 += n;
        }
    }
    if by_id.is_empty() {
        return Vec::new();
    }
    let mut rows: Vec<_> = by_id.into_iter().collect();
    rows.sort_by(|a, b| b.1.0.cmp(&a.1.0).then(a.0.cmp(b.0)));
    let iw = rows
        .iter()
        .map(|(id, _)| width(id))
        .max()
        .unwrap_or(0)
        .max(10);
    let cw = rows
        .iter()
        .map(|(_, (_, n, _))| n.to_string().len())
        .max()
        .unwrap_or(0)
        .max(5);
    let lead = 7 + 2 + iw + 2 + cw + 2;
    let mut lines = vec![
        String::new(),
        cut(
            &format!(
                "{}  {}  {}  first occurrence: connection, time, side",
                pad("finding", 7, true),
                pad("diagnostic", iw, true),
                pad("count", cw, false)
            ),
            max,
        ),
    ];
    for (id, (severity, count, first)) in rows {
        let head = format!(
            "{}  {}  {}  ",
            paint(&pad(severity.as_str(), 7, true), severity),
            pad(id, iw, true),
            pad(&count.to_string(), cw, false)
        );
        if max.saturating_sub(lead) >= 40 {
            // The text in its own column, continued under itself.
            for (i, line) in wrap(&first, max - lead, 0).into_iter().enumerate() {
                let start = if i == 0 {
                    head.clone()
                } else {
                    " ".repeat(lead)
                };
                lines.push(format!("{start}{line}"));
            }
        } else {
            lines.push(head.trim_end().to_string());
            for line in wrap(&first, max.saturating_sub(4), 0) {
                lines.push(format!("    {line}"));
            }
        }
    }
    lines
}

/// The totals, and what was not WebSocket. `filtered` names the filters when there are some.
pub fn totals(summary: &Summary, filtered: Option<&str>, max: usize) -> Vec<String> {
    let mut out = Vec::new();
    let outcomes: Vec<String> = summary
        .outcomes
        .iter()
        .map(|(k, v)| format!("{v} {k}"))
        .collect();
    let matching = filtered
        .map(|f| format!(" matching {f}"))
        .unwrap_or_default();
    let endings = if outcomes.is_empty() {
        String::new()
    } else {
        format!("; endings: {}", outcomes.join(", "))
    };
    out.push(format!(
        "{} of {}{matching}{endings}",
        plural(
            summary.websocket_connections,
            "WebSocket connection",
            "WebSocket connections"
        ),
        plural(summary.tcp_connections, "TCP connection", "TCP connections"),
    ));
    if summary.frames > 0 {
        out.push(format!(
            "{} ({} control), {}",
            plural(summary.frames, "frame", "frames"),
            summary.control_frames,
            plural(summary.messages, "data message", "data messages"),
        ));
    }
    let o = &summary.other_tcp;
    let mut kinds = Vec::new();
    let names: Vec<String> = o
        .tls_server_names
        .iter()
        .map(|(name, n)| {
            if *n == 1 {
                name.clone()
            } else {
                format!("{name} ×{n}")
            }
        })
        .collect();
    let named: u64 = o.tls_server_names.values().sum();
    let mut names = names;
    if named < o.tls {
        names.push(format!("{} without a name", o.tls - named));
    }
    let likely = o.tls_likely_websocket;
    if likely > 0 {
        // Not WebSocket as far as can be seen, but its records say it likely is.
        let named = if likely == o.tls {
            format!("; {}", names.join(", "))
        } else {
            String::new()
        };
        out.push(format!(
            "likely WebSocket, encrypted: {} (inferred from their TLS records; not decrypted{named})",
            plural(likely, "TCP connection", "TCP connections")
        ));
    }
    if o.tls > likely {
        let undecrypted = match o.tls_undecrypted - likely {
            0 => String::new(),
            n if n == o.tls - likely => "not decrypted; ".to_string(),
            n => format!("{n} not decrypted; "),
        };
        if likely == 0 {
            kinds.push(format!(
                "{} TLS with no WebSocket seen ({undecrypted}{})",
                o.tls,
                names.join(", ")
            ));
        } else {
            kinds.push(format!(
                "{} TLS with no WebSocket seen ({})",
                o.tls - likely,
                undecrypted.trim_end_matches("; ")
            ));
        }
    }
    if o.http > 0 {
        kinds.push(format!("{} HTTP without upgrade", o.http));
    }
    if o.http2 > 0 {
        kinds.push(format!(
            "{} HTTP/2 (WebSocket streams listed above)",
            o.http2
        ));
    }
    if o.other > 0 {
        kinds.push(format!("{} other", o.other));
    }
    if o.no_data > 0 {
        kinds.push(format!("{} with no data", o.no_data));
    }
    if !kinds.is_empty() {
        let n = o.tls - likely + o.http + o.http2 + o.other + o.no_data;
        out.push(format!(
            "not WebSocket: {}: {}",
            plural(n, "TCP connection", "TCP connections"),
            kinds.join(", ")
        ));
    }
    if likely > 0 && likely < o.tls {
        out.push(format!("TLS server names (SNI): {}", names.join(", ")));
    }
    attempts(&mut out, "refused (SYN answered by RST)", &o.refused);
    attempts(&mut out, "unanswered SYN", &o.unanswered);
    out.into_iter()
        .flat_map(|line| wrap(&line, max, 4))
        .collect()
}

fn attempts(out: &mut Vec<String>, what: &str, list: &[Attempts]) {
    for a in list.iter().take(MAX_ATTEMPT_LINES) {
        let span = if a.attempts == 1 {
            format!("at {}", clock(a.first))
        } else {
            format!("from {} to {}", clock(a.first), clock(a.last))
        };
        out.push(format!(
            "{what}: {} to {} {span}",
            plural(a.attempts, "attempt", "attempts"),
            endpoint(&a.server)
        ));
    }
    if list.len() > MAX_ATTEMPT_LINES {
        let rest = &list[MAX_ATTEMPT_LINES..];
        let n: u64 = rest.iter().map(|a| a.attempts).sum();
        out.push(format!(
            "{what}: {} to {} more endpoints (--format json lists them)",
            plural(n, "attempt", "attempts"),
            rest.len()
        ));
    }
}
