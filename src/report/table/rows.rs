//! The connection table for an 80-120 column terminal: one line per connection where it fits,
//! and a second line with the full ending when the short one leaves something out.
//!
//! Laid out by hand rather than with comfy-table: comfy-table fits a table to a width by
//! wrapping cells onto more lines (a connection became 6-11 lines, endpoints broken mid-token),
//! while a terminal reader wants the opposite: every cell on one line in a shorter form
//! (`1006 srv FIN 3.0s idle`), cells cut only as a last resort and marked with `…`, a detail
//! line spanning the whole width, empty columns left out, and an exact bound on line width.
//! Each cell therefore offers renderings from fullest to shortest, and the columns step down
//! through them in a fixed order of what matters least until the table fits.

use super::text::{bytes, cut, duration, pad, rtt, width, wrap};
use crate::analysis::clock;
use crate::diag::Side;
use crate::record::{Address, ConnectionRecord};

/// Spaces between columns.
const GAP: usize = 2;

/// Lines a detail (the full ending) takes at most; a longer one (a long close reason) is cut.
const MAX_DETAIL_LINES: usize = 3;

/// `10.0.0.1:80`, `[::1]:8080`.
pub fn endpoint(a: &Address) -> String {
    if a.ip.contains(':') {
        format!("[{}]:{}", a.ip, a.port)
    } else {
        format!("{}:{}", a.ip, a.port)
    }
}

fn who(side: Option<Side>) -> &'static str {
    match side {
        Some(Side::Client) => "cli",
        Some(Side::Server) => "srv",
        None => "?",
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Key {
    Id,
    Start,
    Ends,
    Path,
    Proto,
    App,
    Duration,
    ClientToServer,
    ServerToClient,
    Pings,
    Ending,
}

/// One rendering of a cell; `lossy` when it leaves out something the detail line should say.
#[derive(Clone)]
struct Form {
    text: String,
    lossy: bool,
}

fn exact(text: impl Into<String>) -> Form {
    Form {
        text: text.into(),
        lossy: false,
    }
}

fn lossy(text: impl Into<String>) -> Form {
    Form {
        text: text.into(),
        lossy: true,
    }
}

struct Column {
    key: Key,
    header: &'static str,
    right: bool,
    /// Per row, the renderings from fullest to shortest.
    cells: Vec<Vec<Form>>,
    /// Width a rendering may take: each row shows its fullest one that fits (rows that are
    /// short anyway keep their full text).
    budget: Option<usize>,
    cut_to: Option<usize>,
    dropped: bool,
}

impl Column {
    fn new(key: Key, header: &'static str, right: bool) -> Column {
        Column {
            key,
            header,
            right,
            cells: Vec::new(),
            budget: None,
            cut_to: None,
            dropped: false,
        }
    }

    fn form(&self, row: usize) -> &Form {
        let forms = &self.cells[row];
        let last = &forms[forms.len() - 1];
        match self.budget {
            None => &forms[0],
            Some(b) => forms.iter().find(|f| width(&f.text) <= b).unwrap_or(last),
        }
    }

    /// The width the column takes when every row is at most at `level`.
    fn level_width(&self, level: usize) -> usize {
        self.cells
            .iter()
            .map(|forms| width(&forms[level.min(forms.len() - 1)].text))
            .chain([width(self.header)])
            .max()
            .unwrap_or(0)
    }

    fn natural(&self) -> usize {
        (0..self.cells.len())
            .map(|r| width(&self.form(r).text))
            .chain([width(self.header)])
            .max()
            .unwrap_or(0)
    }

    fn width(&self) -> usize {
        let natural = self.natural();
        self.cut_to.map_or(natural, |c| c.min(natural))
    }
}

/// How the table was laid out, for the lines around it.
pub struct Laid {
    /// The table's lines.
    pub lines: Vec<String>,
    /// The columns shown, for the legend.
    pub shown: Vec<&'static str>,
    /// The server every connection went to, when there is one (then not in the rows).
    pub common_server: Option<String>,
}

/// Lays out `records` in `max` columns. `paint` colours an ending by outcome (identity when
/// colour is off); it is applied after padding, so escapes never count as width.
pub fn connection_table(
    records: &[ConnectionRecord],
    max: usize,
    paint: &dyn Fn(&str, &str) -> String,
) -> Laid {
    let common_server = records
        .first()
        .map(|r| &r.server)
        .filter(|s| records.iter().all(|r| &r.server == *s));
    let common_ip = records.first().map(|r| &r.server.ip).filter(|ip| {
        records
            .iter()
            .all(|r| &r.client.ip == *ip && &r.server.ip == *ip)
    });

    let mut columns = vec![
        Column::new(Key::Id, "id", true),
        Column::new(Key::Start, "start", false),
        Column::new(
            Key::Ends,
            if common_server.is_some() {
                "client"
            } else {
                "client → server"
            },
            false,
        ),
        Column::new(Key::Path, "path", false),
        Column::new(Key::Proto, "protocol", false),
        Column::new(Key::App, "app", false),
        Column::new(Key::Duration, "lasted", true),
        Column::new(Key::ClientToServer, "c→s", false),
        Column::new(Key::ServerToClient, "s→c", false),
        Column::new(Key::Pings, "pings", false),
        Column::new(Key::Ending, "ended", false),
    ];
    let counts = |side: Side| -> Vec<(String, String)> {
        records
            .iter()
            .map(|r| {
                let n = *r.message_counts.get(side);
                let b = *r.payload_bytes.get(side);
                (n.to_string(), if n > 0 { bytes(b) } else { String::new() })
            })
            .collect()
    };
    let directions = [counts(Side::Client), counts(Side::Server)];
    for r in records {
        for c in &mut columns {
            let forms = match c.key {
                Key::Id => vec![exact(r.id.to_string())],
                Key::Start => vec![
                    exact(clock(r.first_seen)),
                    exact(clock(r.first_seen)[..8].to_string()),
                ],
                Key::Ends => ends_forms(r, common_server.is_some(), common_ip.is_some()),
                Key::Path => match (&r.handshake, &r.tls) {
                    (Some(h), _) => vec![exact(h.path.clone())],
                    // TLS with nothing readable inside: what the ClientHello named.
                    // "wss?": not decrypted, but its records look like WebSocket (inferred).
                    (None, Some(tls)) => {
                        let kind = if tls.websocket_likely.as_ref().is_some_and(|w| w.likely) {
                            "wss?"
                        } else {
                            "tls"
                        };
                        match &tls.sni {
                            Some(sni) => {
                                vec![exact(format!("({kind} {sni})")), lossy(format!("({kind})"))]
                            }
                            None => vec![exact(format!("({kind})"))],
                        }
                    }
                    (None, None) => vec![exact("(midstream)")],
                },
                Key::Proto => proto_forms(r),
                Key::App => app_forms(r),
                Key::Duration => vec![exact(duration(r.last_seen - r.first_seen))],
                Key::ClientToServer | Key::ServerToClient => Vec::new(), // below
                Key::Pings => pings(r),
                Key::Ending => ending_forms(r),
            };
            c.cells.push(forms);
        }
    }
    for (key, counts) in [
        (Key::ClientToServer, &directions[0]),
        (Key::ServerToClient, &directions[1]),
    ] {
        let nw = counts.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
        let bw = counts.iter().map(|(_, b)| b.len()).max().unwrap_or(0);
        let column = columns
            .iter_mut()
            .find(|c| c.key == key)
            .expect("bug: column");
        column.cells = counts
            .iter()
            .map(|(n, b)| vec![exact(format!("{n:>nw$} {b:>bw$}").trim_end().to_string())])
            .collect();
    }
    for c in columns
        .iter_mut()
        .filter(|c| matches!(c.key, Key::Proto | Key::App))
    {
        c.dropped = c.cells.iter().all(|f| f[0].text.is_empty());
    }

    let detached = fit(&mut columns, max);

    let shown: Vec<&Column> = columns.iter().filter(|c| !c.dropped).collect();
    let widths: Vec<usize> = shown.iter().map(|c| c.width()).collect();
    let mut lines = Vec::new();
    let header: Vec<String> = shown
        .iter()
        .zip(&widths)
        .map(|(c, &w)| pad(c.header, w, !c.right))
        .collect();
    lines.push(header.join(&" ".repeat(GAP)).trim_end().to_string());
    let indent = widths[0] + GAP;
    let mut last_date = records.first().map(|r| super::text::date(r.first_seen));
    for (row, r) in records.iter().enumerate() {
        let date = super::text::date(r.first_seen);
        if last_date.as_deref() != Some(&date) {
            lines.push(format!("-- {date} --"));
            last_date = Some(date);
        }
        let mut cells = Vec::new();
        let mut detail = None;
        for (c, &w) in shown.iter().zip(&widths) {
            let form = c.form(row);
            let text = cut(&form.text, w);
            if c.key == Key::Ending {
                if form.lossy || text != form.text {
                    detail = Some(r.close.summary.clone());
                }
                // Last column: no padding after it.
                cells.push(paint(&text, r.close.outcome));
            } else {
                cells.push(pad(&text, w, !c.right));
            }
        }
        lines.push(cells.join(&" ".repeat(GAP)).trim_end().to_string());
        if detached {
            detail = Some(r.close.summary.clone());
        }
        if let Some(detail) = detail {
            let room = max.saturating_sub(indent);
            let mut wrapped = wrap(&format!("↳ {detail}"), room, 2);
            if wrapped.len() > MAX_DETAIL_LINES {
                wrapped.truncate(MAX_DETAIL_LINES);
                let last = wrapped.pop().unwrap_or_default();
                wrapped.push(cut(&format!("{last} …"), room));
            }
            for line in wrapped {
                lines.push(format!("{}{line}", " ".repeat(indent)));
            }
        }
    }
    Laid {
        lines,
        shown: shown.iter().map(|c| c.header).collect(),
        common_server: common_server.map(endpoint),
    }
}

/// Steps columns down until the table fits: shorter forms first, then cuts, then dropping the
/// least needed columns, in the order of what a reader misses least. When even that leaves
/// the ending too little room, the layout starts over with the ending on a line of its own
/// under each row. Returns whether the ending was moved there.
fn fit(columns: &mut [Column], max: usize) -> bool {
    if plan(columns, max, false) {
        return false;
    }
    for c in columns.iter_mut() {
        c.budget = None;
        c.cut_to = None;
        c.dropped |= c.key == Key::Ending;
    }
    plan(columns, max, true);
    true
}

fn total(columns: &[Column]) -> usize {
    let shown: Vec<usize> = columns
        .iter()
        .filter(|c| !c.dropped)
        .map(Column::width)
        .collect();
    shown.iter().sum::<usize>() + GAP * shown.len().saturating_sub(1)
}

/// Runs the steps until the table fits; `last_resort` allows the cuts that hurt (endpoints).
fn plan(columns: &mut [Column], max: usize, last_resort: bool) -> bool {
    enum Step {
        Level(Key, usize),
        Cut(Key, usize),
        Drop(Key),
    }
    use Key::*;
    use Step::*;
    let steps = [
        Level(Proto, 1),
        Level(Ending, 1),
        Level(Ends, 1),
        Level(Start, 1),
        Cut(Path, 24),
        Level(Ending, 2),
        Cut(Proto, 14),
        Level(App, 1),
        Level(Ends, 2),
        Cut(Path, 16),
        Drop(Proto),
        Drop(App),
        Cut(Path, 12),
        Drop(Start),
        Level(Pings, 1),
        Level(Ending, 3),
        Cut(Path, 8),
        Cut(Ending, 20),
    ];
    let desperate = [Cut(Path, 6), Cut(Ends, 16), Drop(Pings), Cut(Ends, 12)];
    let steps = steps
        .into_iter()
        .chain(desperate.into_iter().filter(|_| last_resort));
    for step in steps {
        let over = total(columns).saturating_sub(max);
        if over == 0 {
            return true;
        }
        let key = match step {
            Level(k, _) | Cut(k, _) | Drop(k) => k,
        };
        let Some(c) = columns.iter_mut().find(|c| c.key == key && !c.dropped) else {
            continue;
        };
        match step {
            Level(_, level) => {
                let w = c.level_width(level);
                if w < c.width() {
                    c.budget = Some(w);
                }
            }
            Cut(_, min) => {
                let w = c.width();
                if w > min {
                    c.cut_to = Some(w.saturating_sub(over).max(min));
                }
            }
            Drop(_) => c.dropped = true,
        }
    }
    total(columns) <= max
}

fn ends_forms(r: &ConnectionRecord, common_server: bool, common_ip: bool) -> Vec<Form> {
    let client = endpoint(&r.client);
    let bare_client = format!(":{}", r.client.port);
    let bare_server = format!(":{}", r.server.port);
    // Level 1 leaves out the server's IP when it is the client's, level 2 the client's IP when
    // every endpoint has the same one (the title says which).
    if common_server {
        let mut forms = vec![exact(client.clone()), exact(client)];
        if common_ip {
            forms.push(exact(bare_client));
        }
        return forms;
    }
    let server = endpoint(&r.server);
    let same_ip = r.client.ip == r.server.ip;
    let mut forms = vec![exact(format!("{client} → {server}"))];
    forms.push(exact(if same_ip {
        format!("{client} → {bare_server}")
    } else {
        format!("{client} → {server}")
    }));
    if common_ip {
        forms.push(exact(format!("{bare_client} → {bare_server}")));
    }
    forms
}

/// The application protocol (`socket.io 4 refused`), then its name alone.
fn app_forms(r: &ConnectionRecord) -> Vec<Form> {
    let full = crate::report::app_text::app_cell(r.app.as_ref());
    let name = r
        .app
        .as_ref()
        .map(|a| a.protocol.clone())
        .unwrap_or_default();
    if full == name {
        vec![exact(full)]
    } else {
        vec![exact(full), lossy(name)]
    }
}

fn proto_forms(r: &ConnectionRecord) -> Vec<Form> {
    let Some(h) = &r.handshake else {
        return vec![exact("")];
    };
    let mut full = Vec::new();
    let mut short = Vec::new();
    if let Some(p) = &h.subprotocol {
        full.push(p.clone());
        short.push(p.clone());
    }
    if let Some(e) = &h.extensions {
        full.push(e.clone());
        for ext in e.split(',') {
            let name = ext.split(';').next().unwrap_or("").trim();
            short.push(name.strip_prefix("permessage-").unwrap_or(name).to_string());
        }
    }
    vec![exact(full.join("; ")), exact(short.join("+"))]
}

/// `sent/answered median-RTT`, then without the RTT; `0` when none.
fn pings(r: &ConnectionRecord) -> Vec<Form> {
    let p = &r.ping;
    let sent = p.client_pings + p.server_pings;
    if sent == 0 {
        return vec![exact("0")];
    }
    let counts = format!("{sent}/{}", p.answered);
    match p.rtt_median_ms {
        Some(ms) => vec![exact(format!("{counts} {}", rtt(ms))), exact(counts)],
        None => vec![exact(counts)],
    }
}

/// The ending, fullest first: the record's own summary, then shorter forms.
fn ending_forms(r: &ConnectionRecord) -> Vec<Form> {
    let c = &r.close;
    let mut forms = vec![exact(c.summary.clone())];
    let reason = c
        .reason
        .as_deref()
        .map(|r| format!(" {r:?}"))
        .unwrap_or_default();
    // What began the end: a TLS alert before FIN/RST ("srv close_notify"; "srv alert" when
    // only inferred from an encrypted record), else FIN or RST.
    let began = match &c.tls_end {
        Some(t) if t.inferred => Some(format!("{} alert", who(Some(t.from)))),
        Some(t) => Some(format!("{} {}", who(Some(t.from)), t.alert)),
        None => c
            .tcp_end
            .map(|end| format!("{} {}", who(c.tcp_end_from), end.to_uppercase())),
    };
    let tcp = began.clone().map(|mut s| {
        if let Some(idle) = c.idle_before_end {
            s.push_str(&format!(" {} idle", duration(idle)));
        }
        s
    });
    let code = c.code.map(|n| n.to_string()).unwrap_or_default();
    match c.outcome {
        "clean" => {
            let name = c
                .meaning
                .as_deref()
                .and_then(|m| m.split(':').next())
                .unwrap_or("");
            forms.push(exact(format!("{code} {} {name}{reason}", who(c.initiator))));
            forms.push(exact(format!("{code} {}{reason}", who(c.initiator))));
            forms.push(Form {
                text: format!("{code} {}", who(c.initiator)),
                lossy: !reason.is_empty(),
            });
        }
        "abnormal" => {
            let tcp = tcp.unwrap_or_default();
            forms.push(lossy(format!("1006 {tcp}")));
            forms.push(lossy(format!("1006 {}", began.unwrap_or_default())));
        }
        "incomplete" => {
            let tcp = tcp.unwrap_or_default();
            forms.push(lossy(format!(
                "{code} {}{reason}, no reply; {tcp}",
                who(c.initiator)
            )));
            forms.push(lossy(format!(
                "{code} {}, no reply; {tcp}",
                who(c.initiator)
            )));
            forms.push(lossy(format!("{code} {} no reply", who(c.initiator))));
        }
        "open" => {
            let stopped = !c.summary.ends_with("the capture ended")
                && !c.summary.ends_with("the capture ended before the reply");
            let open = if stopped { "open, untracked" } else { "open" };
            if c.code.is_some() {
                forms.push(lossy(format!(
                    "{code} {}{reason}; {open}",
                    who(c.initiator)
                )));
                forms.push(lossy(format!("{code} {}; {open}", who(c.initiator))));
            } else if stopped {
                forms.push(lossy(open));
            } else {
                forms.push(exact("open at capture end"));
                forms.push(exact("open"));
            }
        }
        "not_websocket" => {
            if let Some(status) = r.handshake.as_ref().and_then(|h| h.status) {
                forms.push(exact(format!("refused {status}")));
            } else if let Some(h2) = &r.http2_connection {
                let n = h2.websocket_streams;
                let streams = if n == 1 { "stream" } else { "streams" };
                forms.push(lossy(format!("HTTP/2: {n} WebSocket {streams}")));
                forms.push(lossy(format!("HTTP/2, {n} WS")));
            } else if r.tls.is_some() {
                forms.push(lossy("no WebSocket in TLS"));
            }
        }
        "encrypted" => {
            // Nothing WebSocket can be said: how TCP ended, and that it was not decrypted.
            if let Some(tcp) = tcp {
                forms.push(lossy(format!("encrypted; {tcp}")));
            }
            forms.push(lossy(format!(
                "encrypted {}",
                began.unwrap_or_else(|| "open".to_string())
            )));
            forms.push(lossy("encrypted"));
        }
        _ => {}
    }
    forms
}
