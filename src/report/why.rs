//! The table report's "Why connections ended" section: one row per finding across connections
//! (what, how sure, which connections, the evidence, what to do). Self-contained: the table
//! reporter hands it the findings and prints what it returns before the diagnostics.

use comfy_table::{Cell, Color, ContentArrangement, Table, presets};

use crate::record::{Finding, FindingId, Summary};

/// Connection ids shown per finding before "… (N)".
const MAX_IDS_SHOWN: usize = 8;

/// Columns the section is wrapped to when the output is not a terminal.
const WIDTH_WITHOUT_TERMINAL: u16 = 140;

/// The section, or None when there is nothing to say.
pub fn section(findings: &[Finding], summary: &Summary, colour: bool) -> Option<String> {
    if findings.is_empty() && summary.findings_skipped_connections == 0 {
        return None;
    }
    let mut text = String::from("\nWhy connections ended\n");
    if !findings.is_empty() {
        let mut t = Table::new();
        t.load_style(presets::UTF8_FULL_CONDENSED)
            .set_content_arrangement(ContentArrangement::Dynamic);
        if colour {
            t.enforce_styling();
        } else {
            t.force_no_tty();
        }
        if t.width().is_none() {
            // Not a terminal: wrap the long evidence anyway, so the section stays readable.
            t.set_width(WIDTH_WITHOUT_TERMINAL);
        }
        t.set_header(vec![
            "finding",
            "sure",
            "connections",
            "evidence",
            "what to do",
        ]);
        for row in rows(findings) {
            let sure = Cell::new(format!("{:.0} %", row.confidence * 100.0));
            let sure = if colour {
                sure.fg(if row.confidence >= 0.8 {
                    Color::Green
                } else if row.confidence >= 0.5 {
                    Color::Yellow
                } else {
                    Color::Reset
                })
            } else {
                sure
            };
            t.add_row(vec![
                Cell::new(row.id),
                sure,
                Cell::new(ids(&row.connections)),
                Cell::new(row.evidence),
                Cell::new(row.advice),
            ]);
        }
        text.push_str(&format!("{t}\n"));
    }
    if summary.findings_skipped_connections > 0 {
        text.push_str(&format!(
            "({} finished connections were past the findings' memory limit of {} and are not in these patterns)\n",
            summary.findings_skipped_connections,
            crate::findings::MAX_ENDINGS
        ));
    }
    Some(text)
}

struct Row {
    id: &'static str,
    confidence: f64,
    connections: Vec<u64>,
    evidence: String,
    advice: String,
}

/// One row per finding, except proxy leg pairs through the same proxy ending the same way,
/// which share one row.
fn rows(findings: &[Finding]) -> Vec<Row> {
    let mut out: Vec<Row> = Vec::new();
    let mut legs: Vec<(String, Vec<&Finding>)> = Vec::new();
    for f in findings {
        if f.id == FindingId::ProxyLegs {
            let key = format!(
                "{} {}",
                f.parameters
                    .get("proxy")
                    .map(|v| v.to_string())
                    .unwrap_or_default(),
                pattern(&f.evidence)
            );
            match legs.iter_mut().find(|(k, _)| *k == key) {
                Some((_, v)) => v.push(f),
                None => legs.push((key, vec![f])),
            }
            continue;
        }
        out.push(Row {
            id: f.id.as_str(),
            confidence: f.confidence,
            connections: f.connections.clone(),
            evidence: f.evidence.clone(),
            advice: f.advice.clone(),
        });
    }
    for (_, group) in legs {
        let first = group[0];
        let mut evidence = first.evidence.clone();
        if group.len() > 1 {
            evidence.push_str(&format!(
                " (and {} more pairs like it: {})",
                group.len() - 1,
                group[1..]
                    .iter()
                    .take(MAX_IDS_SHOWN)
                    .map(|f| format!("#{}/#{}", f.connections[0], f.connections[1]))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        out.push(Row {
            id: first.id.as_str(),
            confidence: group.iter().map(|f| f.confidence).fold(1.0, f64::min),
            connections: group
                .iter()
                .flat_map(|f| f.connections.iter().copied())
                .collect(),
            evidence,
            advice: first.advice.clone(),
        });
    }
    out
}

/// The part of a proxy-legs evidence that says how the session ended, with the numbers taken out.
fn pattern(evidence: &str) -> String {
    let tail = evidence
        .split("one proxied session; ")
        .nth(1)
        .unwrap_or(evidence);
    tail.chars()
        .filter(|c| !c.is_ascii_digit() && *c != '.')
        .collect()
}

fn ids(ids: &[u64]) -> String {
    let mut shown: Vec<String> = ids
        .iter()
        .take(MAX_IDS_SHOWN)
        .map(|i| format!("#{i}"))
        .collect();
    if ids.len() > MAX_IDS_SHOWN {
        shown.push(format!("… ({})", ids.len()));
    }
    shown.join(" ")
}
