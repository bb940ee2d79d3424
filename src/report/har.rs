//! `--format har`: an HTTP Archive 1.2 that Chrome DevTools (Network → Import HAR) and HTTP
//! Toolkit open, one entry per connection (refused upgrades too), in the shape Chrome writes
//! (devtools-frontend `front_end/models/har/HARLog.ts`):
//!
//! - `_resourceType: "websocket"`;
//! - `_webSocketMessages: [{type: "send"|"receive", time, opcode, data}]`, `time` in Unix
//!   seconds, `data` the text for opcode 1 and base64 for every other opcode: the messages
//!   after unmasking, reassembly and inflation, which is what the endpoints' code saw. Chrome's
//!   importer (`Importer.ts`) skips a message that lacks any of the four fields;
//! - `_webSocketClose: {code, reason, time, from, inferred}` (HTTP Toolkit's field, plus who
//!   closed and whether wsprobe inferred a 1006);
//! - `_wsprobe`: the close analysis, ping statistics, TCP and TLS facts, the HTTP/2 stream, the
//!   application protocol's decode, the timing of the end, diagnostics, and the findings across
//!   connections that the connection is part of (`findings`: index into `log._wsprobe.findings`,
//!   id, confidence).
//!
//! URLs are `wss://` for TLS connections (from the `tls` record) and for HTTP/2 extended
//! CONNECTs with `:scheme: https`; HTTP/2 streams (RFC 8441) say `httpVersion: "http/2.0"`,
//! which is what Chrome's exporter writes and what its importer maps back to `h2`.
//! Connections known not to carry WebSocket (a decrypted TLS connection, or an HTTP/2
//! connection whose WebSocket streams are entries of their own, without an upgrade or a frame)
//! are not entries: `log._wsprobe.not_entries` lists them.
//!
//! Entries wait in a temporary file (memory, when none can be made) until the findings come at
//! the end, so each can name its findings; memory holds one offset per entry. Payloads are full
//! by default (HAR viewers show them), each bounded by `--max-message-bytes`, and all of them
//! together by `--max-listed-bytes`; credentials are already redacted in the record.

use std::collections::HashMap;
use std::io::{BufRead, Read, Seek, Write};

use base64::Engine;
use serde_json::{Value, json};

use super::Output;
use super::ids;
use super::timefmt;
use crate::capture::InputSummary;
use crate::diag::Side;
use crate::record::{ConnectionRecord, Event, Finding, HandshakeRecord, Header, MessageRecord};
use crate::record::{Sink, Summary, Tool};

/// Where entries wait for the findings.
enum Spool {
    File(std::io::BufWriter<std::fs::File>),
    Memory(Vec<u8>),
}

impl Spool {
    /// An unlinked temporary file (nothing is left behind, whatever happens), else memory.
    fn new() -> Spool {
        match crate::record::spool::unlinked_file(&std::env::temp_dir(), ".wsprobe-har") {
            Ok(f) => Spool::File(std::io::BufWriter::with_capacity(1 << 16, f)),
            Err(_) => Spool::Memory(Vec::new()),
        }
    }

    fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            Spool::File(w) => w.write_all(bytes),
            Spool::Memory(v) => {
                v.extend_from_slice(bytes);
                Ok(())
            }
        }
    }

    /// Everything written, from the start.
    fn reader(self) -> std::io::Result<Box<dyn BufRead>> {
        Ok(match self {
            Spool::File(w) => {
                let mut f = w.into_inner().map_err(|e| e.into_error())?;
                f.rewind()?;
                Box::new(std::io::BufReader::with_capacity(1 << 16, f))
            }
            Spool::Memory(v) => Box::new(std::io::Cursor::new(v)),
        })
    }
}

/// Builds the HAR document.
pub struct HarReport {
    out: Output,
    pretty: bool,
    spool: Option<Spool>,
    /// Per spooled entry: its connection id and length.
    entries: Vec<(u64, usize)>,
    /// The first spool error (reported at the end).
    spool_error: Option<std::io::Error>,
    findings: Vec<Finding>,
    /// Records that are not entries: `{id, why}`.
    not_entries: Vec<Value>,
}

impl HarReport {
    /// Writes to `writer`; `pretty` indents entries.
    pub fn new(writer: Box<dyn std::io::Write>, pretty: bool) -> Self {
        HarReport {
            out: Output::new(writer),
            pretty,
            spool: Some(Spool::new()),
            entries: Vec::new(),
            spool_error: None,
            findings: Vec::new(),
            not_entries: Vec::new(),
        }
    }
}

/// Why a record is not a HAR entry (it is known not to carry WebSocket), or None.
fn not_an_entry(r: &ConnectionRecord) -> Option<String> {
    let frames = r.frames.client.total() + r.frames.server.total();
    if r.handshake.is_some() || frames > 0 {
        return None;
    }
    // The TCP connection under RFC 8441 streams: they are the entries.
    if let Some(h2) = &r.http2_connection {
        let streams = match h2.websocket_streams {
            1 => "its WebSocket stream is an entry of its own".to_string(),
            n => format!("its {n} WebSocket streams are entries of their own"),
        };
        return Some(format!("HTTP/2 connection: {streams}"));
    }
    match &r.tls {
        Some(t) if t.decrypted => {
            Some("TLS connection, decrypted: no WebSocket upgrade or frame in it".to_string())
        }
        // Undecrypted TLS may be WebSocket: it stays, with what its sizes suggest.
        Some(_) => None,
        None => Some("no WebSocket upgrade or frame".to_string()),
    }
}

/// The numeric opcode of a record's opcode name.
pub fn opcode_number(name: &str) -> i64 {
    match name {
        "continuation" => 0,
        "text" => 1,
        "binary" => 2,
        "close" => 8,
        "ping" => 9,
        "pong" => 10,
        other => other
            .strip_prefix("reserved-")
            .and_then(|n| n.parse().ok())
            .unwrap_or(-1),
    }
}

/// The payload bytes of a record (close frames: the reason; see [`har_message`]).
fn payload_bytes(m: &MessageRecord) -> Vec<u8> {
    match (&m.text, &m.base64) {
        (Some(t), _) => t.as_bytes().to_vec(),
        (None, Some(b)) => base64::engine::general_purpose::STANDARD
            .decode(b)
            .unwrap_or_default(),
        (None, None) => Vec::new(),
    }
}

/// One `_webSocketMessages` item, as Chrome writes it, plus `_`-fields only where something is
/// unusual (Chrome's importer reads the four fields and ignores the rest).
pub fn har_message(m: &MessageRecord) -> Value {
    let opcode = opcode_number(m.opcode);
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    let mut invalid_utf8 = false;
    let data = match m.opcode {
        "text" => match (&m.text, &m.base64) {
            (Some(t), _) => t.clone(),
            (None, Some(b)) => {
                invalid_utf8 = true;
                b.clone()
            }
            (None, None) => String::new(),
        },
        "close" => {
            // The wire payload: the 2-byte code, then the reason (none at all for 1005).
            let mut bytes = Vec::new();
            if let Some(code) = m.close_code.filter(|&c| c != 1005) {
                bytes.extend_from_slice(&code.to_be_bytes());
            }
            bytes.extend_from_slice(&payload_bytes(m));
            b64(&bytes)
        }
        _ => match (&m.base64, &m.text) {
            (Some(b), _) => b.clone(),
            (None, Some(t)) => b64(t.as_bytes()),
            (None, None) => String::new(),
        },
    };
    let mut item = json!({
        "type": match m.from { Side::Client => "send", Side::Server => "receive" },
        "time": m.time,
        "opcode": opcode,
        "data": data,
    });
    let extra = item.as_object_mut().expect("bug: an object");
    if invalid_utf8 {
        extra.insert("_invalid_utf8".into(), Value::Bool(true));
    }
    if m.truncated == Some(true) || (m.text.is_none() && m.base64.is_none() && m.wire_length > 0) {
        extra.insert("_truncated".into(), Value::Bool(true));
    }
    if !m.complete {
        extra.insert("_incomplete".into(), Value::Bool(true));
    }
    if let Some(code) = m.close_code {
        extra.insert("_close_code".into(), json!(code));
    }
    item
}

fn headers(list: &[Header]) -> Value {
    Value::Array(
        list.iter()
            .map(|h| json!({"name": h.name, "value": h.value}))
            .collect(),
    )
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: Option<&u8>| b.and_then(|&b| (b as char).to_digit(16));
        match (bytes[i], hex(bytes.get(i + 1)), hex(bytes.get(i + 2))) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b'+', _, _) => {
                out.push(b' ');
                i += 1;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn query_string(path: &str) -> Value {
    let query = path
        .split_once('?')
        .map(|(_, q)| q.split('#').next().unwrap_or(""))
        .unwrap_or("");
    Value::Array(
        query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (n, v) = p.split_once('=').unwrap_or((p, ""));
                json!({"name": percent_decode(n), "value": percent_decode(v)})
            })
            .collect(),
    )
}

/// `Cookie: a=1; b=2` headers as HAR cookies.
fn request_cookies(list: &[Header]) -> Value {
    let mut cookies = Vec::new();
    for h in list
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("cookie"))
    {
        for pair in h.value.split(';') {
            if let Some((n, v)) = pair.trim().split_once('=') {
                cookies.push(json!({"name": n.trim(), "value": v.trim()}));
            }
        }
    }
    Value::Array(cookies)
}

/// `Set-Cookie` headers as HAR cookies (`expires` left out: it is an HTTP date, HAR wants
/// ISO 8601, and the header keeps it).
fn response_cookies(list: &[Header]) -> Value {
    let mut cookies = Vec::new();
    for h in list
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("set-cookie"))
    {
        let mut parts = h.value.split(';');
        let Some((n, v)) = parts.next().and_then(|p| p.trim().split_once('=')) else {
            continue;
        };
        let mut cookie = json!({"name": n.trim(), "value": v.trim()});
        let c = cookie.as_object_mut().expect("bug: an object");
        for attribute in parts {
            let (k, v) = attribute
                .trim()
                .split_once('=')
                .unwrap_or((attribute.trim(), ""));
            match k.to_ascii_lowercase().as_str() {
                "path" => {
                    c.insert("path".into(), json!(v));
                }
                "domain" => {
                    c.insert("domain".into(), json!(v));
                }
                "httponly" => {
                    c.insert("httpOnly".into(), json!(true));
                }
                "secure" => {
                    c.insert("secure".into(), json!(true));
                }
                _ => {}
            }
        }
        cookies.push(cookie);
    }
    Value::Array(cookies)
}

/// `ws://host/path?query`, `wss://` over TLS: the URL a browser would show for the connection.
fn url(r: &ConnectionRecord, h: Option<&HandshakeRecord>) -> String {
    let server = if r.server.ip.contains(':') {
        format!("[{}]:{}", r.server.ip, r.server.port)
    } else {
        format!("{}:{}", r.server.ip, r.server.port)
    };
    let Some(h) = h else {
        // Without a handshake (TLS not decrypted): the name the ClientHello asked for.
        return match r.tls.as_ref().and_then(|t| t.sni.as_deref()) {
            Some(sni) if !sni.contains(['/', ' ', '@', ':']) => {
                format!("wss://{sni}:{}/", r.server.port)
            }
            _ if r.tls.is_some() => format!("wss://{server}/"),
            _ => format!("ws://{server}/"),
        };
    };
    // An absolute-form target (through a forward proxy) already names scheme and host.
    for (from, to) in [("http://", "ws://"), ("https://", "wss://")] {
        if let Some(rest) = h.path.strip_prefix(from) {
            return format!("{to}{rest}");
        }
    }
    if h.path.starts_with("ws://") || h.path.starts_with("wss://") {
        return h.path.clone();
    }
    // TLS (the `tls` record), or an HTTP/2 extended CONNECT (RFC 8441) that says https.
    let scheme = super::tables::columns::url_scheme(r, h);
    let host = h
        .host
        .as_deref()
        .map(str::trim)
        .filter(|h| !h.is_empty() && !h.contains(['/', ' ', '@']))
        .map_or(server, str::to_string);
    let path = if h.path.starts_with('/') {
        h.path.clone()
    } else {
        format!("/{}", h.path)
    };
    // Characters a URI may not hold as they are (RFC 3986); HAR viewers parse the URL.
    let path: String = path
        .chars()
        .map(|c| match c {
            ' ' | '"' | '<' | '>' | '\\' | '^' | '`' | '{' | '|' | '}' => {
                format!("%{:02X}", c as u32)
            }
            c if c.is_control() => format!("%{:02X}", c as u32 & 0xff),
            c => c.to_string(),
        })
        .collect();
    format!("{scheme}://{host}{path}")
}

/// HAR's `httpVersion`: HTTP/2 as Chrome's exporter writes it (`http/2.0`, which its importer
/// maps back to `h2`), the others as the record has them.
fn http_version(v: Option<&str>) -> Option<&str> {
    match v? {
        "" => None,
        "HTTP/2" | "HTTP/2.0" | "h2" | "h2c" => Some("http/2.0"),
        other => Some(other),
    }
}

/// One HAR entry for a connection (`_wsprobe.findings` empty: [`HarReport`] fills it in).
pub fn entry(r: &ConnectionRecord) -> Value {
    let h = r.handshake.as_ref();
    let started = h.and_then(|h| h.request_time).unwrap_or(r.first_seen);
    let wait = h
        .and_then(|h| Some(((h.response_time? - h.request_time?) * 1e3).max(0.0)))
        .unwrap_or(0.0);
    let wait = (wait * 1e3).round() / 1e3;
    let request = json!({
        "method": h.map(|h| h.method.as_str()).filter(|m| !m.is_empty()).unwrap_or("GET"),
        "url": url(r, h),
        "httpVersion": http_version(h.map(|h| h.http_version.as_str())).unwrap_or("HTTP/1.1"),
        "cookies": request_cookies(h.map_or(&[][..], |h| &h.request_headers)),
        "headers": headers(h.map_or(&[][..], |h| &h.request_headers)),
        "queryString": query_string(h.map_or("", |h| h.path.as_str())),
        "headersSize": h.and_then(|h| h.request_head_bytes).map_or(-1, |n| n as i64),
        "bodySize": 0,
    });
    let status = h.and_then(|h| h.status);
    let response_headers = h.map_or(&[][..], |h| &h.response_headers);
    let location = response_headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("location"))
        .map_or("", |h| h.value.as_str());
    let response = json!({
        // 0 is what browsers record for a request that got no answer.
        "status": status.unwrap_or(0),
        "statusText": h.and_then(|h| h.reason.as_deref()).unwrap_or(""),
        "httpVersion": http_version(h.and_then(|h| h.response_http_version.as_deref())).unwrap_or(""),
        "cookies": response_cookies(response_headers),
        "headers": headers(response_headers),
        "content": {"size": 0, "mimeType": "x-unknown"},
        "redirectURL": location,
        "headersSize": h.and_then(|h| h.response_head_bytes).map_or(-1, |n| n as i64),
        // An accepted upgrade (101, or an HTTP/2 200) has no body; other answers' bodies
        // are skipped, not measured.
        "bodySize": if h.is_some_and(|h| h.accepted) || status == Some(101) { 0 } else { -1 },
    });
    let messages: Vec<Value> = r
        .messages
        .as_ref()
        .map_or(&[][..], |m| m.held())
        .iter()
        .map(har_message)
        .collect();
    let c = &r.close;
    let community_id =
        ids::tcp_community_id((&r.client.ip, r.client.port), (&r.server.ip, r.server.port));
    let mut e = json!({
        "startedDateTime": timefmt::iso8601_millis(started),
        "time": wait,
        "request": request,
        "response": response,
        "cache": {},
        "timings": {"blocked": -1, "dns": -1, "ssl": -1, "connect": -1, "send": 0, "wait": wait, "receive": 0},
        "serverIPAddress": r.server.ip,
        "connection": r.id.to_string(),
        "_resourceType": "websocket",
        "_webSocketMessages": messages,
        "_wsprobe": {
            "id": r.id,
            "community_id": community_id,
            "client": r.client,
            "server": r.server,
            "first_seen": r.first_seen,
            "last_seen": r.last_seen,
            "handshake_captured": h.is_some(),
            "accepted": h.is_some_and(|h| h.accepted),
            "accept_valid": h.and_then(|h| h.accept_valid),
            "subprotocol": h.and_then(|h| h.subprotocol.as_deref()),
            "extensions": h.and_then(|h| h.extensions.as_deref()),
            "close": c,
            "ping": r.ping,
            "tcp": r.tcp,
            "frames": r.frames,
            "message_counts": r.message_counts,
            "payload_bytes": r.payload_bytes,
            "messages_listed": r.messages.as_ref().map_or(0, |m| m.len()),
            "diagnostics": r.diagnostics,
            "diagnostic_counts": r.diagnostic_counts,
            "http2": r.http2,
            "tls": r.tls,
            "app": r.app,
            "timing": r.timing,
            "findings": [],
        },
    });
    if let Some(code) = c.code {
        e.as_object_mut().expect("bug: an object").insert(
            "_webSocketClose".into(),
            json!({
                "code": code,
                "reason": c.reason.as_deref().unwrap_or(""),
                "time": c.time.or(c.tcp_end_time),
                "from": c.initiator,
                "inferred": c.outcome == "abnormal",
            }),
        );
    }
    e
}

impl HarReport {
    /// Copies the spooled entries to the output, each with its findings.
    fn write_entries(&mut self) -> std::io::Result<()> {
        let Some(spool) = self.spool.take() else {
            return Ok(());
        };
        let mut of: HashMap<u64, Vec<Value>> = HashMap::new();
        for (i, f) in self.findings.iter().enumerate() {
            for &id in &f.connections {
                of.entry(id).or_default().push(json!({
                    "finding": i,
                    "id": f.id,
                    "confidence": f.confidence,
                }));
            }
        }
        let mut reader = spool.reader()?;
        let mut buf = Vec::new();
        for (n, &(id, len)) in self.entries.iter().enumerate() {
            buf.resize(len, 0);
            reader.read_exact(&mut buf)?;
            self.out.write_all(if n == 0 { b"\n" } else { b",\n" });
            let findings = of.remove(&id);
            if findings.is_none() && !self.pretty {
                self.out.write_all(&buf);
                continue;
            }
            let mut value: Value = serde_json::from_slice(&buf).map_err(std::io::Error::other)?;
            if let Some(f) = findings {
                value["_wsprobe"]["findings"] = Value::Array(f);
            }
            self.out
                .serialize(&value, self.pretty)
                .expect("bug: a HAR entry serializes");
            if self.out.failed() {
                break;
            }
        }
        Ok(())
    }
}

impl Sink for HarReport {
    fn event(&mut self, _event: &Event<'_>) {}

    fn connection(&mut self, record: ConnectionRecord) {
        if let Some(why) = not_an_entry(&record) {
            self.not_entries.push(json!({"id": record.id, "why": why}));
            return;
        }
        let Some(spool) = &mut self.spool else {
            return;
        };
        if self.spool_error.is_some() {
            return;
        }
        let bytes = serde_json::to_vec(&entry(&record)).expect("bug: a HAR entry serializes");
        match spool.write(&bytes) {
            Ok(()) => self.entries.push((record.id, bytes.len())),
            Err(e) => self.spool_error = Some(e),
        }
    }

    fn findings(&mut self, findings: &[Finding]) {
        self.findings = findings.to_vec();
    }

    fn output_failed(&self) -> bool {
        self.out.failed()
    }

    fn finish(&mut self, inputs: &[InputSummary], summary: &Summary) -> std::io::Result<()> {
        if let Some(e) = self.spool_error.take() {
            return Err(std::io::Error::new(
                e.kind(),
                format!("keeping HAR entries in a temporary file: {e}"),
            ));
        }
        let creator = json!({"name": "wsprobe", "version": Tool::this().version});
        self.out.write_all(
            format!(
                "{{\"log\":{{\"version\":\"1.2\",\"creator\":{creator},\"pages\":[],\"entries\":["
            )
            .as_bytes(),
        );
        self.write_entries()?;
        let names: Vec<&str> = inputs.iter().map(|i| i.path.as_str()).collect();
        let comment = format!("wsprobe analysis of {}", names.join(", "));
        let tail = json!({
            "inputs": inputs,
            "summary": summary,
            "findings": self.findings,
            "not_entries": self.not_entries,
        });
        self.out.write_all(
            format!(
                "\n],\n\"comment\":{},\n\"_wsprobe\":{tail}\n}}}}\n",
                Value::String(comment)
            )
            .as_bytes(),
        );
        self.out.result()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(opcode: &'static str, text: Option<&str>, b64: Option<&str>) -> MessageRecord {
        MessageRecord {
            time: 1.5,
            from: Side::Client,
            opcode,
            length: Some(2),
            wire_length: 2,
            fragments: 1,
            compressed: false,
            complete: true,
            close_code: None,
            text: text.map(str::to_string),
            base64: b64.map(str::to_string),
            truncated: None,
            inflate_error: None,
            inflated_after_gap: None,
            rtt_ms: None,
            app: None,
        }
    }

    #[test]
    fn messages_take_chromes_shape() {
        let m = har_message(&message("text", Some("hi"), None));
        assert_eq!(
            m,
            json!({"type": "send", "time": 1.5, "opcode": 1, "data": "hi"})
        );
        let m = har_message(&message("binary", None, Some("AAE=")));
        assert_eq!(m["opcode"], 2);
        assert_eq!(m["data"], "AAE=");
        // A ping whose payload happens to be text is still base64 (CDP's payloadData rule).
        let m = har_message(&message("ping", Some("hi"), None));
        assert_eq!(
            (m["opcode"].as_i64(), m["data"].as_str()),
            (Some(9), Some("aGk="))
        );
        let mut close = message("close", Some("bye"), None);
        close.close_code = Some(1000);
        let m = har_message(&close);
        assert_eq!(m["data"], "A+hieWU=", "0x03e8 then 'bye'");
        let mut empty = message("close", None, None);
        empty.close_code = Some(1005);
        empty.wire_length = 0;
        assert_eq!(har_message(&empty)["data"], "");
        assert_eq!(opcode_number("reserved-3"), 3);
    }

    #[test]
    fn query_strings_and_cookies_are_split() {
        assert_eq!(
            query_string("/ws?a=1&b=x%20y&c"),
            json!([{"name": "a", "value": "1"}, {"name": "b", "value": "x y"}, {"name": "c", "value": ""}])
        );
        let h = vec![Header {
            name: "Set-Cookie".into(),
            value: "sid=REDACTED; Path=/; HttpOnly; Secure".into(),
        }];
        assert_eq!(
            response_cookies(&h),
            json!([{"name": "sid", "value": "REDACTED", "path": "/", "httpOnly": true, "secure": true}])
        );
    }
}
