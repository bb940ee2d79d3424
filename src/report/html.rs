//! `--format html`: one self-contained page for a person (a CI artifact, an email attachment):
//!
//! - the report data, exactly the `--format json` document, embedded gzip-compressed and in
//!   base64 in a `<script type="application/x-wsprobe-report+gzip;base64" id="wsprobe-report">`
//!   element, streamed as connections finish (memory does not grow with the capture). The page
//!   inflates it with the browser's own `DecompressionStream` and offers it as a download.
//!   Compressed, because a page of 2,300 connections and 94,000 messages is 28 MB of JSON that
//!   the browser takes 1.6 s just to read, and 3 MB compressed: an email attachment that opens
//!   in a fraction of that (measured; see the README);
//! - a summary rendered here, readable without JavaScript: inputs, counts, endings by outcome,
//!   close codes, diagnostics by severity and id;
//! - the timeline, plots and per-connection panels, drawn from that data by the page's own
//!   script (`html/*.js`, plain JavaScript, no library) on a canvas that stays fast with tens of
//!   thousands of connections.
//!
//! A Content-Security-Policy forbids every network request, so opening the file reaches
//! nothing. Its size is bounded by the listing caps: messages past `--max-listed-bytes` (32 MiB
//! of listed messages by default for html) are counted, not listed, and connections past
//! [`MAX_CONNECTIONS`] are counted in the summary only.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;

use super::Output;
use crate::analysis::close::human_seconds;
use crate::capture::InputSummary;
use crate::diag::{DiagnosticId, Severity};
use crate::record::{
    ConnectionRecord, Event, Finding, FindingId, SCHEMA_VERSION, Sink, Summary, Tool,
};

/// Connection links listed per finding in the summary before "and N more".
const MAX_LINKS: usize = 40;

/// Connections embedded in the page; past it they are counted only (the page stays usable:
/// the timeline is measured fast at 10,000 and still works at this many).
pub const MAX_CONNECTIONS: usize = 50_000;

/// Default of `--max-listed-bytes` for html: about 150,000 messages with 64-byte previews, a
/// page a browser opens in a few seconds.
pub const DEFAULT_MAX_LISTED_BYTES: u64 = 32 << 20;

const STYLE: &str = include_str!("html/style.css");
const SCRIPTS: &[&str] = &[
    include_str!("html/util.js"),
    include_str!("html/timeline.js"),
    include_str!("html/plots.js"),
    include_str!("html/panel.js"),
    include_str!("html/app.js"),
];

/// The `type` of the data element (any type a browser does not run makes a data block).
pub const DATA_TYPE: &str = "application/x-wsprobe-report+gzip;base64";

/// `default-src 'none'`: no fetch, image, font or frame can leave the file.
const CSP: &str =
    "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:";

/// Hands bytes to the report's [`Output`] (which remembers a write error, so this never fails).
struct ToOutput(Output, std::rc::Rc<std::cell::Cell<bool>>);

impl std::io::Write for ToOutput {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write_all(buf);
        if self.0.failed() {
            self.1.set(true);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The embedded report: JSON → gzip → base64 → the page. Base64 has no `<`, so nothing in the
/// data can end its `<script>` element.
/// serde_json writes a record in many small pieces; the buffer hands the compressor large
/// ones (without it, compressing costs five times the analysis).
type DataWriter = std::io::BufWriter<
    flate2::write::GzEncoder<
        base64::write::EncoderWriter<'static, base64::engine::GeneralPurpose, ToOutput>,
    >,
>;

fn data_writer(out: Output, failed: std::rc::Rc<std::cell::Cell<bool>>) -> DataWriter {
    std::io::BufWriter::with_capacity(
        1 << 16,
        flate2::write::GzEncoder::new(
            base64::write::EncoderWriter::new(
                ToOutput(out, failed),
                &base64::engine::general_purpose::STANDARD,
            ),
            // zlib's default level: on these rows a quarter smaller than level 3 for half again
            // its CPU (GNU gzip on 300 MB of message rows: 13.9 MB in 2.0 s against 18.1 MB
            // in 1.4 s).
            flate2::Compression::default(),
        ),
    )
}

/// Text for HTML element content and attribute values.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn bytes(n: u64) -> String {
    match n {
        0..1024 => format!("{n} B"),
        1024..1_048_576 => format!("{:.1} KiB", n as f64 / 1024.0),
        1_048_576..1_073_741_824 => format!("{:.1} MiB", n as f64 / 1_048_576.0),
        _ => format!("{:.2} GiB", n as f64 / 1_073_741_824.0),
    }
}

/// A time span for the page's header: `342 ms`, `12 s`, `2 h 5 min`, `10 d 15 h`.
fn span_words(s: f64) -> String {
    match s {
        s if s < 3600.0 => human_seconds(s),
        s if s < 86_400.0 => format!(
            "{} h {} min",
            (s / 3600.0) as u64,
            (s % 3600.0 / 60.0) as u64
        ),
        s => format!(
            "{} d {} h",
            (s / 86_400.0) as u64,
            (s % 86_400.0 / 3600.0) as u64
        ),
    }
}

/// Builds the HTML report.
pub struct HtmlReport {
    /// The report data while it is written; the page after it ([`HtmlReport::finish`]).
    data: Option<DataWriter>,
    /// Set once the data is complete.
    out: Option<Output>,
    /// Writing the data failed (a closed pipe).
    failed: std::rc::Rc<std::cell::Cell<bool>>,
    embedded: usize,
    omitted: u64,
    /// Close code (or outcome without one) → connections, for the summary.
    close_codes: BTreeMap<(u16, String), u64>,
    /// Time range of all connections.
    span: Option<(f64, f64)>,
    messages_listed: u64,
    findings: Vec<Finding>,
}

impl HtmlReport {
    /// Writes to `writer`.
    pub fn new(writer: Box<dyn std::io::Write>) -> Self {
        let mut out = Output::new(writer);
        let tool = serde_json::to_string(&Tool::this()).expect("bug: tool serializes");
        let mut head = String::new();
        let _ = write!(
            head,
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
             <meta http-equiv=\"Content-Security-Policy\" content=\"{CSP}\">\n\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
             <meta name=\"color-scheme\" content=\"light dark\">\n\
             <meta name=\"generator\" content=\"wsprobe {}\">\n\
             <title>wsprobe report</title>\n<style>\n{STYLE}</style>\n</head>\n<body>\n\
             <script type=\"{DATA_TYPE}\" id=\"wsprobe-report\">",
            env!("CARGO_PKG_VERSION")
        );
        out.write_all(head.as_bytes());
        let failed = std::rc::Rc::new(std::cell::Cell::new(false));
        let mut data = data_writer(out, failed.clone());
        let _ = write!(
            data,
            "{{\"schema_version\":{SCHEMA_VERSION},\"tool\":{tool},\"connections\":["
        );
        HtmlReport {
            data: Some(data),
            out: None,
            failed,
            embedded: 0,
            omitted: 0,
            close_codes: BTreeMap::new(),
            span: None,
            messages_listed: 0,
            findings: Vec::new(),
        }
    }

    fn summary_html(&self, inputs: &[InputSummary], summary: &Summary) -> String {
        let mut h = String::new();
        let names: Vec<String> = inputs.iter().map(|i| esc(&i.path)).collect();
        let _ = write!(
            h,
            "<header class=\"top\"><h1>wsprobe report <span class=\"sub\">{}</span></h1>",
            if names.is_empty() {
                "no input".to_string()
            } else {
                names.join(", ")
            }
        );
        if let Some((a, b)) = self.span {
            let _ = write!(
                h,
                "<p class=\"span\">{} → {} UTC ({} of traffic) · wsprobe {}</p>",
                esc(&super::timefmt::rfc3339_micros(a)[..23]),
                esc(&super::timefmt::rfc3339_micros(b)[11..23]),
                span_words(b - a),
                env!("CARGO_PKG_VERSION")
            );
        }
        h.push_str("</header>\n<section id=\"summary\" class=\"summary\">\n");
        h.push_str(&why_html(&self.findings, summary));

        // Counts.
        h.push_str("<div class=\"card\"><h2>Counts</h2><table class=\"kv\">");
        let rows = [
            ("Connections reported", summary.connections),
            ("WebSocket connections", summary.websocket_connections),
            ("TCP connections seen", summary.tcp_connections),
            ("Data messages", summary.messages),
            ("Control frames", summary.control_frames),
            ("Frames", summary.frames),
            ("Listed in this page", self.messages_listed),
        ];
        for (k, v) in rows {
            let _ = write!(h, "<tr><th>{k}</th><td>{v}</td></tr>");
        }
        // What the TCP connections that are not reported carried.
        let o = &summary.other_tcp;
        let refused: u64 = o.refused.iter().map(|a| a.attempts).sum();
        let unanswered: u64 = o.unanswered.iter().map(|a| a.attempts).sum();
        let other = [
            ("TLS", o.tls),
            ("HTTP", o.http),
            ("HTTP/2", o.http2),
            ("other data", o.other),
            ("no data", o.no_data),
            ("refused (SYN → RST)", refused),
            ("unanswered SYN", unanswered),
        ];
        let parts: Vec<String> = other
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(k, n)| format!("{n} {k}"))
            .collect();
        if !parts.is_empty() {
            let mut names: Vec<(&String, &u64)> = o.tls_server_names.iter().collect();
            names.sort_by(|a, b| b.1.cmp(a.1));
            let sni: Vec<String> = names
                .iter()
                .take(5)
                .map(|(n, c)| format!("{} ({c})", esc(n)))
                .collect();
            let _ = write!(
                h,
                "<tr><th>Not WebSocket</th><td>{}{}</td></tr>",
                parts.join(", "),
                if sni.is_empty() {
                    String::new()
                } else {
                    format!("<br><span class=\"dim\">TLS to {}</span>", sni.join(", "))
                }
            );
        }
        if self.omitted > 0 {
            let _ = write!(
                h,
                "<tr class=\"warn\"><th>Connections not embedded</th><td>{} (past {MAX_CONNECTIONS}; counted above, listed in --format json)</td></tr>",
                self.omitted
            );
        }
        h.push_str("</table></div>\n");

        // Endings.
        h.push_str(
            "<div class=\"card\"><h2>Endings</h2><table class=\"kv\" id=\"summary-outcomes\">",
        );
        for outcome in ["clean", "abnormal", "incomplete", "open", "not_websocket"] {
            if let Some(n) = summary.outcomes.get(outcome) {
                let _ = write!(
                    h,
                    "<tr><th><span class=\"swatch o-{outcome}\"></span>{outcome}</th><td>{n}</td></tr>"
                );
            }
        }
        for (outcome, n) in &summary.outcomes {
            if !["clean", "abnormal", "incomplete", "open", "not_websocket"]
                .contains(&outcome.as_str())
            {
                let _ = write!(h, "<tr><th>{}</th><td>{n}</td></tr>", esc(outcome));
            }
        }
        h.push_str("</table>");
        if !self.close_codes.is_empty() {
            h.push_str("<h3>Close codes</h3><table class=\"kv\">");
            for ((code, meaning), n) in &self.close_codes {
                let _ = write!(
                    h,
                    "<tr><th title=\"{}\">{code}</th><td>{n}</td><td class=\"dim\">{}</td></tr>",
                    esc(meaning),
                    esc(meaning.split(':').next().unwrap_or(""))
                );
            }
            h.push_str("</table>");
        }
        h.push_str("</div>\n");

        // Diagnostics by severity, then id.
        h.push_str("<div class=\"card diagnostics\"><h2>Diagnostics</h2>");
        let mut by_severity: BTreeMap<std::cmp::Reverse<Severity>, Vec<(&str, u64, &str)>> =
            BTreeMap::new();
        for (id, n) in &summary.diagnostics {
            let (severity, what) = DiagnosticId::parse(id)
                .map_or((Severity::Info, ""), |d| (d.severity(), d.description()));
            by_severity
                .entry(std::cmp::Reverse(severity))
                .or_default()
                .push((id.as_str(), *n, what));
        }
        if by_severity.is_empty() {
            h.push_str("<p class=\"ok\">None.</p>");
        } else {
            h.push_str("<table class=\"diag\" id=\"summary-diagnostics\"><tr><th>severity</th><th>id</th><th>count</th><th>when</th></tr>");
            for (std::cmp::Reverse(severity), ids) in &by_severity {
                let total: u64 = ids.iter().map(|i| i.1).sum();
                let _ = write!(
                    h,
                    "<tr class=\"sev-head\"><td><span class=\"badge s-{0}\">{0}</span></td><td></td><td>{total}</td><td></td></tr>",
                    severity.as_str()
                );
                for (id, n, what) in ids {
                    let _ = write!(
                        h,
                        "<tr><td></td><td><code>{}</code></td><td>{n}</td><td class=\"dim\">{}</td></tr>",
                        esc(id),
                        esc(what)
                    );
                }
            }
            h.push_str("</table>");
        }
        h.push_str("</div>\n");

        // Inputs.
        h.push_str("<div class=\"card wide\"><h2>Inputs</h2><table class=\"grid\"><tr><th>file</th><th>format</th><th>link types</th><th>packets</th><th>bytes</th><th>problem</th></tr>");
        for i in inputs {
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"{}\">{}</td></tr>",
                esc(&i.path),
                esc(&i.format),
                esc(&i.link_types.join(", ")),
                i.packets,
                bytes(i.bytes),
                if i.error.is_some() { "warn" } else { "dim" },
                esc(i.error.as_deref().unwrap_or("none"))
            );
        }
        h.push_str("</table></div>\n</section>\n");
        h
    }
}

/// `#3`, linked to the connection's panel.
fn conn_links(ids: &[u64]) -> String {
    let mut out: Vec<String> = ids
        .iter()
        .take(MAX_LINKS)
        .map(|id| format!("<a href=\"#conn-{id}\" data-connection=\"{id}\">#{id}</a>"))
        .collect();
    if ids.len() > MAX_LINKS {
        out.push(format!("and {} more", ids.len() - MAX_LINKS));
    }
    out.join(" ")
}

/// One finding's head: id, confidence, how many connections, when.
fn finding_head(id: &str, confidence: f64, connections: usize, time: Option<f64>) -> String {
    let when = time
        .map(|t| {
            format!(
                " · from {} UTC",
                esc(&super::timefmt::rfc3339_micros(t)[11..23])
            )
        })
        .unwrap_or_default();
    format!(
        "<div class=\"fhead\"><code class=\"fid\">{}</code><span class=\"conf\" title=\"how sure wsprobe is\">{:.0} % sure</span><span class=\"dim\">{connections} connection{}{when}</span></div>",
        esc(id),
        confidence * 100.0,
        if connections == 1 { "" } else { "s" }
    )
}

/// The summary's "Why connections ended": every finding across connections with its
/// confidence, evidence, explanation, advice, the usual suspects and links to its connections
/// (proxy leg pairs through one proxy share an entry). Readable without JavaScript.
fn why_html(findings: &[Finding], summary: &Summary) -> String {
    let mut h = String::from(
        "<div class=\"card wide why\" id=\"summary-findings\"><h2>Why connections ended</h2>",
    );
    if findings.is_empty() {
        h.push_str("<p class=\"ok\">No pattern across connections (idle timeouts, lifetimes, restarts, shutdowns, heartbeat timeouts, unreachable peers, proxy legs); each connection's own ending is in its panel.</p>");
    } else {
        h.push_str("<ol class=\"findings\">");
    }
    // Proxy leg pairs that say the same (same proxy, same explanation and advice) share one.
    type Key<'a> = (String, &'a str, &'a str);
    let mut legs: Vec<(Key<'_>, Vec<(usize, &Finding)>)> = Vec::new();
    for (i, f) in findings.iter().enumerate() {
        if f.id == FindingId::ProxyLegs {
            let proxy = f
                .parameters
                .get("proxy")
                .and_then(|v| v.as_str())
                .unwrap_or("")
                .to_string();
            let key = (proxy, f.explanation.as_str(), f.advice.as_str());
            match legs.iter_mut().find(|(k, _)| *k == key) {
                Some((_, v)) => v.push((i, f)),
                None => legs.push((key, vec![(i, f)])),
            }
            continue;
        }
        let _ = write!(
            h,
            "<li class=\"finding\" id=\"finding-{i}\" data-findings=\"{i}\">{}<p class=\"evidence\">{}</p><p>{}</p><p class=\"advice\"><strong>What to do:</strong> {}</p>",
            finding_head(f.id.as_str(), f.confidence, f.connections.len(), f.time),
            esc(&f.evidence),
            esc(&f.explanation),
            esc(&f.advice)
        );
        if !f.suspects.is_empty() {
            let list: Vec<String> = f
                .suspects
                .iter()
                .map(|s| {
                    format!(
                        "{} <code>{}</code> ({} s)",
                        esc(s.name),
                        esc(s.setting),
                        s.default_s
                    )
                })
                .collect();
            let _ = write!(
                h,
                "<p class=\"suspects\">Defaults that match: {}</p>",
                list.join(", ")
            );
        }
        let _ = write!(
            h,
            "<p class=\"members\">Connections: {}</p></li>",
            conn_links(&f.connections)
        );
    }
    for ((proxy, _, _), pairs) in &legs {
        let ids: Vec<String> = pairs.iter().map(|(i, _)| i.to_string()).collect();
        let first = pairs[0].1;
        let confidence = pairs
            .iter()
            .map(|(_, f)| f.confidence)
            .fold(f64::INFINITY, f64::min);
        let members: Vec<u64> = pairs
            .iter()
            .flat_map(|(_, f)| f.connections.iter().copied())
            .collect();
        let _ = write!(
            h,
            "<li class=\"finding\" id=\"finding-{}\" data-findings=\"{}\">{}<p>{} proxied session{} through <code>{}</code>: each pair of connections carries the same frames.</p><p>{}</p>",
            pairs[0].0,
            ids.join(" "),
            finding_head("proxy_legs", confidence, members.len(), first.time),
            pairs.len(),
            if pairs.len() == 1 { "" } else { "s" },
            esc(proxy),
            esc(&first.explanation)
        );
        h.push_str("<ul class=\"pairs\">");
        for (i, f) in pairs {
            let _ = write!(
                h,
                "<li id=\"finding-{i}\">{}: {}</li>",
                conn_links(&f.connections),
                esc(&f.evidence)
            );
        }
        let _ = write!(
            h,
            "</ul><p class=\"advice\"><strong>What to do:</strong> {}</p></li>",
            esc(&first.advice)
        );
    }
    if !findings.is_empty() {
        h.push_str("</ol>");
    }
    if summary.findings_skipped_connections > 0 {
        let _ = write!(
            h,
            "<p class=\"warn\">{} finished connections were past the findings' memory limit of {} and are not in these patterns.</p>",
            summary.findings_skipped_connections,
            crate::findings::MAX_ENDINGS
        );
    }
    h.push_str("</div>\n");
    h
}

impl Sink for HtmlReport {
    fn event(&mut self, _event: &Event<'_>) {}

    fn findings(&mut self, findings: &[Finding]) {
        self.findings = findings.to_vec();
    }

    fn connection(&mut self, record: ConnectionRecord) {
        let c = &record.close;
        let key = match c.code {
            Some(code) => (code, c.meaning.clone().unwrap_or_default()),
            None => (0, format!("no code: {}", c.outcome)),
        };
        if c.code.is_some() {
            *self.close_codes.entry(key).or_insert(0) += 1;
        }
        self.span = Some(match self.span {
            None => (record.first_seen, record.last_seen),
            Some((a, b)) => (a.min(record.first_seen), b.max(record.last_seen)),
        });
        if self.embedded >= MAX_CONNECTIONS {
            self.omitted += 1;
            return;
        }
        self.messages_listed += record.messages.as_ref().map_or(0, |m| m.len() as u64);
        let Some(data) = &mut self.data else {
            return;
        };
        let first = self.embedded == 0;
        self.embedded += 1;
        let _ = data.write_all(if first { b"\n" } else { b",\n" });
        serde_json::to_writer(data, &record).expect("bug: record serializes");
    }

    fn output_failed(&self) -> bool {
        self.failed.get() || self.out.as_ref().is_some_and(Output::failed)
    }

    fn finish(&mut self, inputs: &[InputSummary], summary: &Summary) -> std::io::Result<()> {
        let tail = serde_json::json!({
            "findings": self.findings,
            "inputs": inputs,
            "summary": summary,
            "omitted_connections": self.omitted,
        });
        let tail = tail.to_string();
        let Some(mut data) = self.data.take() else {
            return Ok(());
        };
        // The tail's object without its braces continues the document's.
        let _ = data.write_all(b"\n],");
        let _ = data.write_all(&tail.as_bytes()[1..tail.len() - 1]);
        let _ = data.write_all(b"}");
        let gzip = data.into_inner().map_err(|e| e.into_error())?;
        let mut base64 = gzip.finish()?;
        let mut out = base64.finish()?.0;
        out.write_all(b"</script>\n");
        let summary_html = self.summary_html(inputs, summary);
        out.write_all(summary_html.as_bytes());
        out.write_all(
            b"<noscript><p class=\"card\">The timeline, the plots and the per-connection panels need JavaScript. \
              The summary above does not, and the whole report is embedded in this file as JSON \
              (gzip and base64 in the <code>script#wsprobe-report</code> element: the same document as <code>--format json</code>).</p></noscript>\n\
              <main id=\"app\"></main>\n<script>\n",
        );
        for script in SCRIPTS {
            out.write_all(script.as_bytes());
            out.write_all(b"\n");
        }
        out.write_all(b"</script>\n</body>\n</html>\n");
        let result = out.result();
        self.out = Some(out);
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_text_is_escaped() {
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }

    #[test]
    fn every_script_is_plain_and_offline() {
        for s in SCRIPTS {
            assert!(!s.contains("</script"), "a script would end its element");
            for banned in [
                "fetch(",
                "XMLHttpRequest",
                "import(",
                "new WebSocket",
                "EventSource",
                "sendBeacon",
                "https://",
            ] {
                assert!(!s.contains(banned), "script reaches out: {banned}");
            }
        }
    }
}
