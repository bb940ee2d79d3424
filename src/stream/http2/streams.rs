//! Per-stream state and what header blocks say: requests, responses, and the extended CONNECT
//! of RFC 8441 that opens a WebSocket on a stream.

use std::collections::HashMap;

use super::hpack::Field;
use crate::diag::Side;
use crate::http::{RequestHead, ResponseHead};

/// Bytes kept of one header value; longer ones are cut (they are only shown).
pub const MAX_VALUE_KEPT: usize = 4096;

/// Fields of one header block kept for the handshake record (as many as an HTTP/1.1 head may
/// have lines, [`crate::http::MAX_HEADERS`]).
pub const MAX_FIELDS_KEPT: usize = crate::http::MAX_HEADERS;

/// Streams tracked at once per connection. Browsers allow 100 concurrent streams (Chromium
/// announces SETTINGS_MAX_CONCURRENT_STREAMS 1000 as a server would); past this cap new streams
/// are counted but not followed.
pub const MAX_STREAMS: usize = 1024;

/// Ordinary (non-WebSocket) streams whose method, path and status are kept per connection.
pub const MAX_ORDINARY_KEPT: usize = 64;

/// A request header block, as far as the analysis uses it (RFC 9113 §8.3.1, RFC 8441 §4).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct H2RequestHead {
    /// `:method`.
    pub method: Option<String>,
    /// `:protocol` (extended CONNECT).
    pub protocol: Option<String>,
    /// `:scheme`.
    pub scheme: Option<String>,
    /// `:path`.
    pub path: Option<String>,
    /// `:authority`.
    pub authority: Option<String>,
    /// `host` (allowed beside `:authority`).
    pub host: Option<String>,
    /// `origin`.
    pub origin: Option<String>,
    /// `user-agent`.
    pub user_agent: Option<String>,
    /// `sec-websocket-version`.
    pub version: Option<String>,
    /// `sec-websocket-protocol` values, in order.
    pub protocols: Vec<String>,
    /// `sec-websocket-extensions`, all values joined with `, `.
    pub extensions: Option<String>,
    /// `sec-websocket-key` (not used over HTTP/2, RFC 8441 §5).
    pub key: Option<String>,
    /// Fields that referred to HPACK table entries the capture never showed.
    pub unknown_fields: u32,
    /// RFC 9113 §8.2/§8.3 rules the block breaks (a malformed request).
    pub malformed: Vec<String>,
    /// Every field as decoded, pseudo-headers included, in order (at most
    /// [`MAX_FIELDS_KEPT`], values cut at [`MAX_VALUE_KEPT`]): the handshake record's headers.
    pub fields: Vec<(String, String)>,
}

/// A response header block (RFC 9113 §8.3.2).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct H2ResponseHead {
    /// `:status`.
    pub status: Option<u16>,
    /// `sec-websocket-protocol` (the subprotocol the server chose).
    pub protocol: Option<String>,
    /// `sec-websocket-extensions`, all values joined with `, `.
    pub extensions: Option<String>,
    /// Fields that referred to HPACK table entries the capture never showed.
    pub unknown_fields: u32,
    /// RFC 9113 §8.2/§8.3 rules the block breaks.
    pub malformed: Vec<String>,
    /// Every field as decoded, in order (bounded like the request's).
    pub fields: Vec<(String, String)>,
}

fn text(v: &[u8]) -> String {
    let v = &v[..v.len().min(MAX_VALUE_KEPT)];
    String::from_utf8_lossy(v).trim().to_string()
}

fn join(slot: &mut Option<String>, value: String) {
    match slot {
        Some(s) if s.len() < MAX_VALUE_KEPT => {
            s.push_str(", ");
            s.push_str(&value);
        }
        Some(_) => {}
        None => *slot = Some(value),
    }
}

/// RFC 9113 §8.2.2: fields that are connection-specific in HTTP/1.1 make an HTTP/2 message
/// malformed (`te` only with `trailers`).
fn connection_specific(name: &[u8], value: &[u8]) -> bool {
    matches!(
        name,
        b"connection" | b"upgrade" | b"keep-alive" | b"proxy-connection" | b"transfer-encoding"
    ) || (name == b"te" && !value.eq_ignore_ascii_case(b"trailers"))
}

/// Collects one header block's fields into the head of whichever kind it turns out to be.
#[derive(Debug, Default)]
pub struct BlockReader {
    req: H2RequestHead,
    status: Option<String>,
    regular_seen: bool,
    pseudo: u32,
    malformed: Vec<String>,
    unknown: u32,
}

impl BlockReader {
    /// Takes one field.
    pub fn field(&mut self, f: Field<'_>) {
        let (Some(name), value) = (f.name, f.value) else {
            self.unknown += 1;
            return;
        };
        let Some(value) = value else {
            self.unknown += 1;
            return;
        };
        if self.req.fields.len() < MAX_FIELDS_KEPT {
            self.req.fields.push((text(name), text(value)));
        }
        if name.iter().any(u8::is_ascii_uppercase) && self.malformed.len() < 8 {
            self.malformed.push(format!(
                "field name {:?} has upper-case letters (RFC 9113 §8.2.1)",
                text(name)
            ));
        }
        if let Some(pseudo) = name.strip_prefix(b":") {
            self.pseudo += 1;
            if self.regular_seen && self.malformed.len() < 8 {
                self.malformed.push(format!(
                    "pseudo-header :{} after a regular field (RFC 9113 §8.3)",
                    text(pseudo)
                ));
            }
            let slot = match pseudo {
                b"method" => &mut self.req.method,
                b"scheme" => &mut self.req.scheme,
                b"path" => &mut self.req.path,
                b"authority" => &mut self.req.authority,
                b"protocol" => &mut self.req.protocol,
                b"status" => &mut self.status,
                _ => {
                    if self.malformed.len() < 8 {
                        self.malformed.push(format!(
                            "unknown pseudo-header :{} (RFC 9113 §8.3)",
                            text(pseudo)
                        ));
                    }
                    return;
                }
            };
            if slot.is_some() {
                if self.malformed.len() < 8 {
                    self.malformed.push(format!(
                        "pseudo-header :{} repeated (RFC 9113 §8.3)",
                        text(pseudo)
                    ));
                }
                return;
            }
            *slot = Some(text(value));
            return;
        }
        self.regular_seen = true;
        if connection_specific(name, value) && self.malformed.len() < 8 {
            self.malformed.push(format!(
                "connection-specific field {:?} (RFC 9113 §8.2.2)",
                text(name)
            ));
        }
        let r = &mut self.req;
        match name {
            b"host" => {
                r.host.get_or_insert_with(|| text(value));
            }
            b"origin" => {
                r.origin.get_or_insert_with(|| text(value));
            }
            b"user-agent" => {
                r.user_agent.get_or_insert_with(|| text(value));
            }
            b"sec-websocket-version" => {
                r.version.get_or_insert_with(|| text(value));
            }
            b"sec-websocket-key" => {
                r.key.get_or_insert_with(|| text(value));
            }
            b"sec-websocket-protocol" if r.protocols.len() < 64 => {
                r.protocols.extend(
                    text(value)
                        .split(',')
                        .map(|p| p.trim().to_string())
                        .filter(|p| !p.is_empty()),
                );
            }
            b"sec-websocket-extensions" => join(&mut r.extensions, text(value)),
            _ => {}
        }
    }

    /// Fields that could not be read.
    pub fn unknown_fields(&self) -> u32 {
        self.unknown
    }

    /// Did the block carry `:status` (a response)?
    pub fn is_response(&self) -> bool {
        self.status.is_some()
    }

    /// The block as a request head.
    pub fn into_request(mut self) -> H2RequestHead {
        if self.status.is_some() && self.malformed.len() < 8 {
            self.malformed
                .push(":status in a request (RFC 9113 §8.3.2)".into());
        }
        self.req.unknown_fields = self.unknown;
        self.req.malformed = self.malformed;
        self.req
    }

    /// The block as a response head.
    pub fn into_response(mut self) -> H2ResponseHead {
        let r = &self.req;
        if (r.method.is_some() || r.path.is_some() || r.scheme.is_some() || r.protocol.is_some())
            && self.malformed.len() < 8
        {
            self.malformed
                .push("request pseudo-headers in a response (RFC 9113 §8.3)".into());
        }
        // The response's sec-websocket-protocol is one value (the chosen subprotocol).
        let protocol = (!self.req.protocols.is_empty()).then(|| self.req.protocols.join(", "));
        H2ResponseHead {
            status: self.status.as_deref().and_then(|s| s.parse().ok()),
            protocol,
            extensions: self.req.extensions.take(),
            unknown_fields: self.unknown,
            malformed: self.malformed,
            fields: std::mem::take(&mut self.req.fields),
        }
    }
}

impl H2RequestHead {
    /// An extended CONNECT for WebSocket (RFC 8441 §4): `:method CONNECT` with
    /// `:protocol websocket`.
    pub fn is_websocket_connect(&self) -> bool {
        self.method
            .as_deref()
            .is_some_and(|m| m.eq_ignore_ascii_case("CONNECT"))
            && self
                .protocol
                .as_deref()
                .is_some_and(|p| p.eq_ignore_ascii_case("websocket"))
    }

    /// RFC 8441 §4-§5 and RFC 9113 §8 requirements this extended CONNECT breaks.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = self.malformed.clone();
        if self.method.as_deref() != Some("CONNECT") {
            problems.push(format!(
                ":method is {}, not CONNECT (RFC 8441 §4)",
                self.method.as_deref().unwrap_or("missing")
            ));
        }
        if self.protocol.as_deref() != Some("websocket") {
            problems.push(format!(
                ":protocol is {:?}, not \"websocket\" (RFC 8441 §5)",
                self.protocol.as_deref().unwrap_or("")
            ));
        }
        for (name, v) in [
            (":scheme", &self.scheme),
            (":path", &self.path),
            (":authority", &self.authority),
        ] {
            if v.is_none() && self.unknown_fields == 0 {
                problems.push(format!(
                    "no {name} pseudo-header (RFC 8441 §4: required with :protocol)"
                ));
            }
        }
        match self.version.as_deref() {
            Some("13") => {}
            Some(v) => problems.push(format!("sec-websocket-version is {v}, not 13")),
            None if self.unknown_fields == 0 => {
                problems.push("no sec-websocket-version field (RFC 8441 §5)".into())
            }
            None => {}
        }
        problems
    }

    /// The same facts in the HTTP/1.1 head type the analysis knows. `:authority` (else `host`)
    /// becomes `host`, `:protocol` becomes `upgrade`; `minor_version` is 0 (HTTP/2.0). Its
    /// HTTP/1.1 `problems()` do not apply: use [`H2RequestHead::problems`].
    pub fn to_request_head(&self) -> RequestHead {
        RequestHead {
            method: self.method.clone().unwrap_or_default(),
            path: self.path.clone().unwrap_or_default(),
            minor_version: 0,
            host: self.authority.clone().or_else(|| self.host.clone()),
            origin: self.origin.clone(),
            user_agent: self.user_agent.clone(),
            upgrade: self.protocol.clone(),
            connection: None,
            key: self.key.clone(),
            version: self.version.clone(),
            protocols: self.protocols.clone(),
            extensions: self.extensions.clone(),
            content_length: None,
            chunked: false,
            headers: self.fields.clone(),
            head_size: 0,
            http2: true,
        }
    }
}

impl H2ResponseHead {
    /// A 2xx answer opens the tunnel (RFC 9113 §8.5; RFC 8441 §5 uses 200).
    pub fn is_success(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }

    /// An interim (1xx) response; the final one follows.
    pub fn is_interim(&self) -> bool {
        self.status.is_some_and(|s| (100..200).contains(&s))
    }

    /// The same facts in the HTTP/1.1 head type the analysis knows (`reason` is empty: HTTP/2
    /// has none; `upgrade` is `websocket` for a 2xx so the head reads as an accepted upgrade).
    pub fn to_response_head(&self) -> ResponseHead {
        ResponseHead {
            status: self.status.unwrap_or(0),
            reason: String::new(),
            upgrade: self.is_success().then(|| "websocket".to_string()),
            connection: None,
            accept: None,
            protocol: self.protocol.clone(),
            extensions: self.extensions.clone(),
            content_length: None,
            chunked: false,
            headers: self.fields.clone(),
            head_size: 0,
            minor_version: 0,
            http2: true,
        }
    }
}

/// What a stream carries, as far as known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    /// Opened by frames whose headers could not be read: decided by its first DATA.
    Unknown,
    /// An ordinary request (or push).
    Ordinary,
    /// An RFC 8441 WebSocket.
    WebSocket {
        /// The extended CONNECT was read (false: recognised from its DATA).
        handshake_seen: bool,
        /// The server answered 2xx (`None`: no final answer yet).
        accepted: Option<bool>,
    },
}

/// One stream.
#[derive(Debug, Clone)]
pub struct Stream {
    /// What it carries.
    pub kind: StreamKind,
    /// END_STREAM (or RST_STREAM) seen from each side: client, server.
    pub closed: [bool; 2],
    /// `:method` and `:path` of an ordinary request.
    pub method: Option<String>,
    /// `:path`.
    pub path: Option<String>,
    /// Final `:status`.
    pub status: Option<u16>,
    /// DATA bytes (padding excluded) per side.
    pub data_bytes: [u64; 2],
    /// Pushed by the server (PUSH_PROMISE).
    pub pushed: bool,
}

impl Stream {
    /// A new stream of `kind`.
    pub fn new(kind: StreamKind) -> Self {
        Stream {
            kind,
            closed: [false; 2],
            method: None,
            path: None,
            status: None,
            data_bytes: [0; 2],
            pushed: false,
        }
    }

    /// Is it a WebSocket whose DATA goes to the framer?
    pub fn forwards(&self, from: Side) -> bool {
        match self.kind {
            // After a refusal the server's DATA is an error body, not frames.
            StreamKind::WebSocket { accepted, .. } => {
                !(from == Side::Server && accepted == Some(false))
            }
            _ => false,
        }
    }

    /// Both sides are done.
    pub fn is_closed(&self) -> bool {
        self.closed[0] && self.closed[1]
    }
}

/// Index of a side in per-side arrays.
pub fn idx(side: Side) -> usize {
    match side {
        Side::Client => 0,
        Side::Server => 1,
    }
}

/// The live streams of one connection, capped at [`MAX_STREAMS`].
#[derive(Debug, Default)]
pub struct Streams {
    map: HashMap<u32, Stream>,
    /// Highest stream id opened by each side.
    pub highest: [u32; 2],
}

impl Streams {
    /// The stream, when tracked.
    pub fn get(&self, id: u32) -> Option<&Stream> {
        self.map.get(&id)
    }

    /// The stream, when tracked.
    pub fn get_mut(&mut self, id: u32) -> Option<&mut Stream> {
        self.map.get_mut(&id)
    }

    /// Starts tracking a stream; `false` when the cap is reached.
    pub fn insert(&mut self, id: u32, stream: Stream) -> bool {
        if self.map.len() >= MAX_STREAMS && !self.map.contains_key(&id) {
            return false;
        }
        self.map.insert(id, stream);
        true
    }

    /// Stops tracking a stream.
    pub fn remove(&mut self, id: u32) -> Option<Stream> {
        self.map.remove(&id)
    }

    /// Tracked streams, in id order.
    pub fn ids(&self) -> Vec<u32> {
        let mut ids: Vec<u32> = self.map.keys().copied().collect();
        ids.sort_unstable();
        ids
    }

    /// Streams tracked.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// No stream tracked.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(fields: &[(&str, &str)]) -> BlockReader {
        let mut r = BlockReader::default();
        for (n, v) in fields {
            r.field(Field {
                name: Some(n.as_bytes()),
                value: Some(v.as_bytes()),
            });
        }
        r
    }

    #[test]
    fn chromium_extended_connect() {
        let r = read(&[
            (":method", "CONNECT"),
            (":authority", "localhost:21443"),
            (":scheme", "https"),
            (":path", "/ws?room=1"),
            (":protocol", "websocket"),
            ("origin", "https://localhost:21443"),
            ("sec-websocket-version", "13"),
            (
                "sec-websocket-extensions",
                "permessage-deflate; client_max_window_bits",
            ),
            ("sec-websocket-protocol", "chat, superchat"),
            ("user-agent", "Mozilla/5.0"),
        ]);
        assert!(!r.is_response());
        let head = r.into_request();
        assert!(head.is_websocket_connect());
        assert!(head.problems().is_empty(), "{:?}", head.problems());
        let h1 = head.to_request_head();
        assert_eq!(h1.method, "CONNECT");
        assert_eq!(h1.path, "/ws?room=1");
        assert_eq!(h1.host.as_deref(), Some("localhost:21443"));
        assert_eq!(h1.protocols, ["chat", "superchat"]);
        assert_eq!(
            h1.extensions.as_deref(),
            Some("permessage-deflate; client_max_window_bits")
        );
    }

    #[test]
    fn malformed_requests_are_described() {
        let head = read(&[
            (":method", "CONNECT"),
            (":protocol", "websocket"),
            ("connection", "upgrade"),
            (":path", "/"),
            ("Sec-WebSocket-Version", "8"),
        ])
        .into_request();
        let p = head.problems().join("; ");
        assert!(
            p.contains("connection-specific field \"connection\""),
            "{p}"
        );
        assert!(
            p.contains("pseudo-header :path after a regular field"),
            "{p}"
        );
        assert!(p.contains("upper-case"), "{p}");
        assert!(p.contains("no :scheme"), "{p}");
        assert!(p.contains("no :authority"), "{p}");
        assert!(p.contains("no sec-websocket-version"), "{p}");
        // GET is not extended CONNECT.
        assert!(
            !read(&[(":method", "GET"), (":protocol", "websocket")])
                .into_request()
                .is_websocket_connect()
        );
    }

    #[test]
    fn responses() {
        let r = read(&[
            (":status", "200"),
            ("sec-websocket-protocol", "chat"),
            ("sec-websocket-extensions", "permessage-deflate"),
        ]);
        assert!(r.is_response());
        let head = r.into_response();
        assert!(head.is_success());
        let h1 = head.to_response_head();
        assert_eq!(h1.status, 200);
        assert_eq!(h1.protocol.as_deref(), Some("chat"));
        assert_eq!(h1.upgrade.as_deref(), Some("websocket"));
        let refused = read(&[(":status", "403")]).into_response();
        assert!(!refused.is_success() && !refused.is_interim());
        assert!(read(&[(":status", "100")]).into_response().is_interim());
    }

    #[test]
    fn unknown_fields_are_counted_not_guessed() {
        let mut r = BlockReader::default();
        r.field(Field {
            name: None,
            value: None,
        });
        r.field(Field {
            name: Some(b":method"),
            value: Some(b"CONNECT"),
        });
        let head = r.into_request();
        assert_eq!(head.unknown_fields, 1);
        assert!(!head.is_websocket_connect());
        // Missing pseudo-headers are not blamed when some fields were unreadable.
        assert!(!head.problems().iter().any(|p| p.contains(":scheme")));
    }
}
