//! The table report's "Why connections ended" section: one entry per finding across
//! connections (what, how sure, which connections, the evidence, what to do), laid out to the
//! table's width like the rest of the report.

use super::text::wrap;
use crate::record::{Finding, FindingId, Summary};

/// Connection ids shown per finding before "… (N)".
const MAX_IDS_SHOWN: usize = 8;

/// The section's lines (at most `max` columns each), or None when there is nothing to say.
pub fn section(
    findings: &[Finding],
    summary: &Summary,
    max: usize,
    paint: &dyn Fn(&str, f64) -> String,
) -> Option<Vec<String>> {
    if findings.is_empty() && summary.findings_skipped_connections == 0 {
        return None;
    }
    let mut lines = vec![String::new(), "Why connections ended".to_string()];
    for row in rows(findings) {
        let sure = format!("{:.0} % sure", row.confidence * 100.0);
        let head = format!("{}  {}  {}", row.id, sure, ids(&row.connections));
        let mut first = wrap(&head, max, 4);
        if let Some(line) = first.first_mut() {
            *line = line.replacen(&sure, &paint(&sure, row.confidence), 1);
        }
        lines.extend(first);
        lines.extend(indented(&row.evidence, max, 4));
        lines.extend(indented(&format!("what to do: {}", row.advice), max, 4));
    }
    if summary.findings_skipped_connections > 0 {
        lines.extend(wrap(
            &format!(
                "({} finished connections were past the findings' memory limit of {} and are not in these patterns)",
                summary.findings_skipped_connections,
                crate::findings::MAX_ENDINGS
            ),
            max,
            1,
        ));
    }
    Some(lines)
}

/// `text` wrapped to `max` columns, every line after `indent` spaces.
fn indented(text: &str, max: usize, indent: usize) -> Vec<String> {
    wrap(text, max.saturating_sub(indent), 0)
        .into_iter()
        .map(|l| format!("{}{l}", " ".repeat(indent)))
        .collect()
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
