//! The WebSocket opening handshake (RFC 6455 §4): request and response heads, the
//! `Sec-WebSocket-Accept` check, and the permessage-deflate parameters (RFC 7692 §7.1).

use base64::Engine;
use sha1::{Digest, Sha1};

/// RFC 6455 §1.3: the GUID appended to the key before hashing. (Some texts, our issue tracker
/// included, misquote its tail as `...C5AB0E11DC11`; only this value reproduces the RFC's own
/// example, which the tests check.)
const ACCEPT_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// Headers of a request that matter to a WebSocket upgrade.
#[derive(Debug, Clone, Default)]
pub struct RequestHead {
    /// Method token.
    pub method: String,
    /// Request target.
    pub path: String,
    /// HTTP minor version (1 for HTTP/1.1).
    pub minor_version: u8,
    /// `Host`.
    pub host: Option<String>,
    /// `Origin`.
    pub origin: Option<String>,
    /// `User-Agent`.
    pub user_agent: Option<String>,
    /// `Upgrade`, all values joined.
    pub upgrade: Option<String>,
    /// `Connection`, all values joined.
    pub connection: Option<String>,
    /// `Sec-WebSocket-Key`.
    pub key: Option<String>,
    /// `Sec-WebSocket-Version`.
    pub version: Option<String>,
    /// `Sec-WebSocket-Protocol` values, in order.
    pub protocols: Vec<String>,
    /// `Sec-WebSocket-Extensions`, all values joined with `, `.
    pub extensions: Option<String>,
    /// `Content-Length`.
    pub content_length: Option<u64>,
    /// `Transfer-Encoding: chunked`.
    pub chunked: bool,
    /// Every header line as sent, in order (bounded by [`super::MAX_HEADERS`] and
    /// [`super::MAX_HEAD_BYTES`]).
    pub headers: Vec<(String, String)>,
    /// Bytes of the head, request line to the empty line (0: not known, e.g. HTTP/2).
    pub head_size: usize,
    /// An HTTP/2 extended CONNECT (RFC 8441) read as this head; `headers` are its fields.
    pub http2: bool,
}

/// Headers of a response that matter to a WebSocket upgrade.
#[derive(Debug, Clone, Default)]
pub struct ResponseHead {
    /// Status code.
    pub status: u16,
    /// Reason phrase.
    pub reason: String,
    /// HTTP minor version (1 for HTTP/1.1).
    pub minor_version: u8,
    /// `Upgrade`, all values joined.
    pub upgrade: Option<String>,
    /// `Connection`, all values joined.
    pub connection: Option<String>,
    /// `Sec-WebSocket-Accept`.
    pub accept: Option<String>,
    /// `Sec-WebSocket-Protocol` (the one the server chose).
    pub protocol: Option<String>,
    /// `Sec-WebSocket-Extensions`, all values joined with `, `.
    pub extensions: Option<String>,
    /// `Content-Length`.
    pub content_length: Option<u64>,
    /// `Transfer-Encoding: chunked`.
    pub chunked: bool,
    /// Every header line as sent, in order (bounded like the request's).
    pub headers: Vec<(String, String)>,
    /// Bytes of the head, status line to the empty line (0: not known, e.g. HTTP/2).
    pub head_size: usize,
    /// An HTTP/2 response read as this head.
    pub http2: bool,
}

/// Collects repeated headers (RFC 9110 §5.3: a list header may be split over several lines).
fn join(slot: &mut Option<String>, value: &str) {
    match slot {
        Some(existing) => {
            existing.push_str(", ");
            existing.push_str(value);
        }
        None => *slot = Some(value.to_string()),
    }
}

fn header_value(h: &httparse::Header<'_>) -> String {
    String::from_utf8_lossy(h.value).trim().to_string()
}

/// Is `token` one of the comma-separated, case-insensitive tokens of `list`?
pub fn has_token(list: Option<&str>, token: &str) -> bool {
    list.is_some_and(|l| l.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
}

fn is_chunked(value: &str) -> bool {
    value
        .split(',')
        .next_back()
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("chunked"))
}

impl RequestHead {
    /// Copies the fields wsprobe uses out of a parsed request.
    pub fn from_httparse(req: &httparse::Request<'_, '_>) -> Self {
        let mut head = RequestHead {
            method: req.method.unwrap_or("").to_string(),
            path: req.path.unwrap_or("").to_string(),
            minor_version: req.version.unwrap_or(1),
            ..RequestHead::default()
        };
        head.headers.reserve(req.headers.len());
        for h in req.headers.iter() {
            let value = header_value(h);
            let name = h.name;
            head.headers.push((name.to_string(), value.clone()));
            if name.eq_ignore_ascii_case("host") {
                head.host.get_or_insert(value);
            } else if name.eq_ignore_ascii_case("origin") {
                head.origin.get_or_insert(value);
            } else if name.eq_ignore_ascii_case("user-agent") {
                head.user_agent.get_or_insert(value);
            } else if name.eq_ignore_ascii_case("upgrade") {
                join(&mut head.upgrade, &value);
            } else if name.eq_ignore_ascii_case("connection") {
                join(&mut head.connection, &value);
            } else if name.eq_ignore_ascii_case("sec-websocket-key") {
                head.key.get_or_insert(value);
            } else if name.eq_ignore_ascii_case("sec-websocket-version") {
                head.version.get_or_insert(value);
            } else if name.eq_ignore_ascii_case("sec-websocket-protocol") {
                head.protocols.extend(
                    value
                        .split(',')
                        .map(|p| p.trim().to_string())
                        .filter(|p| !p.is_empty()),
                );
            } else if name.eq_ignore_ascii_case("sec-websocket-extensions") {
                join(&mut head.extensions, &value);
            } else if name.eq_ignore_ascii_case("content-length") {
                head.content_length = value.parse().ok();
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                head.chunked = is_chunked(&value);
            }
        }
        head
    }

    /// Does this request ask for a WebSocket? (`Upgrade: websocket`, or a WebSocket key.)
    pub fn is_websocket_upgrade(&self) -> bool {
        has_token(self.upgrade.as_deref(), "websocket") || self.key.is_some()
    }

    /// Does it carry any `Sec-WebSocket-*` header (a WebSocket client made it, whatever became
    /// of its `Upgrade`)?
    pub fn has_websocket_headers(&self) -> bool {
        self.key.is_some()
            || self.version.is_some()
            || !self.protocols.is_empty()
            || self.extensions.is_some()
    }

    /// The headers an upgrade needs that this request lacks, as they are spelt on the wire.
    pub fn missing_upgrade_headers(&self) -> Vec<&'static str> {
        let mut missing = Vec::new();
        if !has_token(self.upgrade.as_deref(), "websocket") {
            missing.push("Upgrade: websocket");
        }
        if !has_token(self.connection.as_deref(), "upgrade") {
            missing.push("Connection: Upgrade");
        }
        missing
    }

    /// `host/path` without the query string, host in lower case: the endpoint a request is
    /// for, to match requests of other connections to the same WebSocket endpoint.
    pub fn target(&self) -> Option<String> {
        let host = self.host.as_deref()?.trim().to_ascii_lowercase();
        let path = self.path.split(['?', '#']).next().unwrap_or("");
        Some(format!("{host}{path}"))
    }

    /// RFC 6455 §4.1 requirements on the client's handshake that this request breaks.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.method != "GET" {
            problems.push(format!(
                "method is {} (RFC 6455 §4.1: MUST be GET)",
                self.method
            ));
        }
        if self.minor_version < 1 {
            problems.push("HTTP/1.0 request (RFC 6455 §4.1: at least HTTP/1.1)".into());
        }
        if self.host.is_none() {
            problems.push("no Host header".into());
        }
        if !has_token(self.upgrade.as_deref(), "websocket") {
            problems.push("no `Upgrade: websocket` header".into());
        }
        if !has_token(self.connection.as_deref(), "upgrade") {
            problems.push("Connection header lacks the `Upgrade` token".into());
        }
        match &self.key {
            None => problems.push("no Sec-WebSocket-Key header".into()),
            Some(key) => {
                let decoded = base64::engine::general_purpose::STANDARD.decode(key);
                if decoded.map(|d| d.len()) != Ok(16) {
                    problems.push(format!(
                        "Sec-WebSocket-Key {key:?} is not 16 bytes in base64 (RFC 6455 §4.1)"
                    ));
                }
            }
        }
        match self.version.as_deref() {
            Some("13") => {}
            Some(v) => problems.push(format!("Sec-WebSocket-Version is {v}, not 13")),
            None => problems.push("no Sec-WebSocket-Version header".into()),
        }
        problems
    }
}

impl ResponseHead {
    /// Copies the fields wsprobe uses out of a parsed response.
    pub fn from_httparse(resp: &httparse::Response<'_, '_>) -> Self {
        let mut head = ResponseHead {
            status: resp.code.unwrap_or(0),
            reason: resp.reason.unwrap_or("").to_string(),
            minor_version: resp.version.unwrap_or(1),
            ..ResponseHead::default()
        };
        head.headers.reserve(resp.headers.len());
        for h in resp.headers.iter() {
            let value = header_value(h);
            let name = h.name;
            head.headers.push((name.to_string(), value.clone()));
            if name.eq_ignore_ascii_case("upgrade") {
                join(&mut head.upgrade, &value);
            } else if name.eq_ignore_ascii_case("connection") {
                join(&mut head.connection, &value);
            } else if name.eq_ignore_ascii_case("sec-websocket-accept") {
                head.accept.get_or_insert(value);
            } else if name.eq_ignore_ascii_case("sec-websocket-protocol") {
                head.protocol.get_or_insert(value);
            } else if name.eq_ignore_ascii_case("sec-websocket-extensions") {
                join(&mut head.extensions, &value);
            } else if name.eq_ignore_ascii_case("content-length") {
                head.content_length = value.parse().ok();
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                head.chunked = is_chunked(&value);
            }
        }
        head
    }

    /// RFC 6455 §4.1 requirements on the server's 101 that this response breaks (the Accept
    /// value is checked separately, against the key).
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if !has_token(self.upgrade.as_deref(), "websocket") {
            problems.push("101 without `Upgrade: websocket`".into());
        }
        if !has_token(self.connection.as_deref(), "upgrade") {
            problems.push("101 whose Connection header lacks the `Upgrade` token".into());
        }
        if self.accept.is_none() {
            problems.push("101 without Sec-WebSocket-Accept".into());
        }
        problems
    }
}

/// Why a request that did not ask for an upgrade, and its answer, concern a WebSocket
/// endpoint: each sign in words; empty for ordinary web traffic.
pub fn websocket_signs(req: &RequestHead, resp: &ResponseHead) -> Vec<String> {
    let mut signs = Vec::new();
    if resp.status == 426 {
        signs.push(
            format!("the answer is {} {}", resp.status, resp.reason)
                .trim_end()
                .to_string(),
        );
    }
    if has_token(resp.upgrade.as_deref(), "websocket") {
        signs.push("the answer offers `Upgrade: websocket`".to_string());
    }
    if req.has_websocket_headers() {
        signs.push("the request carries Sec-WebSocket-* headers".to_string());
    }
    signs
}

/// RFC 6455 §4.2.2: base64(SHA-1(key + GUID)).
pub fn derive_accept_key(key: &str) -> String {
    let mut sha = Sha1::new();
    sha.update(key.trim().as_bytes());
    sha.update(ACCEPT_GUID.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(sha.finalize())
}

/// permessage-deflate parameters as accepted by the server (RFC 7692 §7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deflate {
    /// The server resets its compressor after each message.
    pub server_no_context_takeover: bool,
    /// The client resets its compressor after each message.
    pub client_no_context_takeover: bool,
    /// LZ77 window the server compresses with (8..=15).
    pub server_max_window_bits: u8,
    /// LZ77 window the client compresses with (8..=15).
    pub client_max_window_bits: u8,
}

/// What the accepted extensions allow on the wire.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Negotiated {
    /// permessage-deflate, when accepted.
    pub deflate: Option<Deflate>,
    /// Accepted extensions wsprobe does not decode (their RSV bits are allowed but their
    /// payloads are shown as sent).
    pub unknown: Vec<String>,
}

impl Negotiated {
    /// Reads the server's `Sec-WebSocket-Extensions` answer. Only the first permessage-deflate
    /// counts (RFC 7692 §5: the server accepts at most one).
    pub fn from_response(extensions: Option<&str>) -> Negotiated {
        let mut negotiated = Negotiated::default();
        let Some(list) = extensions else {
            return negotiated;
        };
        for ext in list.split(',') {
            let mut parts = ext.split(';').map(str::trim);
            let name = parts.next().unwrap_or("");
            if name.is_empty() {
                continue;
            }
            if !name.eq_ignore_ascii_case("permessage-deflate") || negotiated.deflate.is_some() {
                negotiated.unknown.push(name.to_string());
                continue;
            }
            let mut d = Deflate {
                server_no_context_takeover: false,
                client_no_context_takeover: false,
                server_max_window_bits: 15,
                client_max_window_bits: 15,
            };
            for param in parts {
                let (key, value) = match param.split_once('=') {
                    Some((k, v)) => (k.trim(), Some(v.trim().trim_matches('"'))),
                    None => (param, None),
                };
                let bits = value
                    .and_then(|v| v.parse::<u8>().ok())
                    .filter(|b| (8..=15).contains(b));
                match key.to_ascii_lowercase().as_str() {
                    "server_no_context_takeover" => d.server_no_context_takeover = true,
                    "client_no_context_takeover" => d.client_no_context_takeover = true,
                    "server_max_window_bits" => d.server_max_window_bits = bits.unwrap_or(15),
                    "client_max_window_bits" => d.client_max_window_bits = bits.unwrap_or(15),
                    _ => {}
                }
            }
            negotiated.deflate = Some(d);
        }
        negotiated
    }

    /// Extensions that use RSV1 (permessage-deflate, and unknown ones given the benefit of
    /// the doubt) allow it on first data frames.
    pub fn allows_rsv1(&self) -> bool {
        self.deflate.is_some() || !self.unknown.is_empty()
    }

    /// Unknown accepted extensions may define RSV2/RSV3.
    pub fn allows_rsv23(&self) -> bool {
        !self.unknown.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6455_accept_example() {
        // RFC 6455 §1.3.
        assert_eq!(
            derive_accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn deflate_parameters_per_direction() {
        let n = Negotiated::from_response(Some(
            "permessage-deflate; server_max_window_bits=10; client_no_context_takeover; client_max_window_bits=9",
        ));
        assert_eq!(
            n.deflate,
            Some(Deflate {
                server_no_context_takeover: false,
                client_no_context_takeover: true,
                server_max_window_bits: 10,
                client_max_window_bits: 9,
            })
        );
        assert!(Negotiated::from_response(None).deflate.is_none());
        assert!(Negotiated::from_response(Some("x-webkit-deflate-frame")).allows_rsv1());
    }

    #[test]
    fn token_lists_are_case_insensitive() {
        assert!(has_token(Some("keep-alive, Upgrade"), "upgrade"));
        assert!(!has_token(Some("keep-alive"), "upgrade"));
    }
}
