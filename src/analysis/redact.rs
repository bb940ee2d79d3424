//! Credentials in the opening handshake, replaced by `REDACTED` before any record holds them
//! (so every report, dataset and HAR file is safe to attach to a ticket): `Authorization`,
//! `Cookie`, `Set-Cookie` and other token headers, credential parameters of the query string,
//! and bearer tokens smuggled in `Sec-WebSocket-Protocol` (browsers cannot set headers on a
//! WebSocket, so Kubernetes, wstunnel, Hasura and others put them there). Names are kept, values
//! go: the report still says that a cookie or a token was sent. `--no-redact` turns this off.
//!
//! Message payloads get the same treatment ([`payload`]) at the byte ranges that
//! [`crate::app::secrets`] finds: values of secret-named JSON keys in any text message, and the
//! credentials of application protocols' login messages (STOMP, Socket.IO, graphql, MQTT).

use std::borrow::Cow;

use crate::app::secrets::Squashed;

/// What replaces a secret.
pub const REDACTED: &str = "REDACTED";

/// A header whose whole value is a credential.
fn secret_header(name: &str) -> bool {
    let n = Squashed::new(name);
    if n.is_any(&["wwwauthenticate", "proxyauthenticate", "secwebsocketkey"]) {
        return false; // challenges and the handshake nonce, not credentials
    }
    n.contains_any(&[
        "token",
        "secret",
        "password",
        "apikey",
        "auth",
        "session",
        "signature",
        "credential",
    ])
}

/// A query parameter that carries a credential (OAuth, signed URLs, API keys, sessions).
pub fn secret_parameter(name: &str) -> bool {
    let n = Squashed::new(&percent_decode(name));
    // Not `session_id` or `sid`: Jupyter's and Engine.IO's name sessions, not credentials
    // (Zeek's jupyter baseline logs them as they are); PHP's and Java's session ids are.
    const EXACT: &[&str] = &[
        "auth",
        "key",
        "code",
        "sig",
        "jwt",
        "pass",
        "pwd",
        "passwd",
        "ticket",
        "bearer",
        "phpsessid",
        "jsessionid",
        "otp",
    ];
    n.is_any(EXACT)
        || n.contains_any(&[
            "token",
            "secret",
            "password",
            "signature",
            "credential",
            "apikey",
            "authorization",
        ])
}

/// Does `value` look like a JSON Web Token (`eyJ….….…`)?
fn looks_like_jwt(value: &str) -> bool {
    value.starts_with("eyJ")
        && value.split('.').count() == 3
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'='))
}

/// A long opaque base64-ish string: a token, not a protocol name (those have words and dots).
fn looks_opaque(value: &str) -> bool {
    value.len() >= 32
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'+' | b'/' | b'='))
        && value.bytes().any(|b| b.is_ascii_digit())
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(h), Some(l)) = (
                bytes.get(i + 1).and_then(|&b| hex(b)),
                bytes.get(i + 2).and_then(|&b| hex(b)),
            )
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A request target (or any URL) with credential parameters of its query replaced.
pub fn target(path: &str) -> Cow<'_, str> {
    let Some((before, query)) = path.split_once('?') else {
        return Cow::Borrowed(path);
    };
    let (query, fragment) = match query.split_once('#') {
        Some((q, f)) => (q, Some(f)),
        None => (query, None),
    };
    let mut changed = false;
    let pairs: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, value))
                if !value.is_empty()
                    && value != REDACTED
                    && (secret_parameter(name) || looks_like_jwt(&percent_decode(value))) =>
            {
                changed = true;
                format!("{name}={REDACTED}")
            }
            _ => pair.to_string(),
        })
        .collect();
    if !changed {
        return Cow::Borrowed(path);
    }
    let mut out = format!("{before}?{}", pairs.join("&"));
    if let Some(f) = fragment {
        out.push('#');
        out.push_str(f);
    }
    Cow::Owned(out)
}

/// Subprotocol prefixes after which the rest is a token (Kubernetes, wstunnel, generic).
const TOKEN_PREFIXES: &[&str] = &[
    "base64url.bearer.authorization.k8s.io.",
    "authorization.bearer.",
    "bearer.",
    "access_token.",
    "token.",
];

/// Offered subprotocols that announce that the next one is a token (`access_token, <jwt>`).
const TOKEN_MARKERS: &[&str] = &[
    "access_token",
    "bearer",
    "token",
    "authorization",
    "auth",
    "jwt",
];

/// One subprotocol value; `after_marker`: the previous value announced a token.
fn subprotocol_value(value: &str, after_marker: bool) -> Cow<'_, str> {
    let lower = value.to_ascii_lowercase();
    for prefix in TOKEN_PREFIXES {
        if lower.starts_with(prefix) && value.len() > prefix.len() {
            return Cow::Owned(format!("{}{REDACTED}", &value[..prefix.len()]));
        }
    }
    if after_marker || looks_like_jwt(value) || looks_opaque(value) {
        return Cow::Borrowed(REDACTED);
    }
    Cow::Borrowed(value)
}

/// The subprotocols a client offered, tokens replaced.
pub fn subprotocols(offered: &[String]) -> Vec<String> {
    let mut after_marker = false;
    offered
        .iter()
        .map(|p| {
            let out = subprotocol_value(p, after_marker).into_owned();
            after_marker = TOKEN_MARKERS.iter().any(|m| p.eq_ignore_ascii_case(m));
            out
        })
        .collect()
}

/// The subprotocol a server chose; `offered` are the raw offered values (a server that echoes a
/// token the client offered echoes a secret).
pub fn chosen_subprotocol(chosen: &str, offered: &[String]) -> String {
    let redacted = subprotocols(offered);
    if let Some(i) = offered.iter().position(|p| p == chosen.trim()) {
        return redacted[i].clone();
    }
    subprotocol_value(chosen, false).into_owned()
}

/// A header value with any credential replaced; `name` decides how.
pub fn header(name: &str, value: &str) -> String {
    // HTTP/2 pseudo-headers: only `:path` can carry one (in its query).
    if let Some(pseudo) = name.strip_prefix(':') {
        return if pseudo.eq_ignore_ascii_case("path") {
            target(value).into_owned()
        } else {
            value.to_string()
        };
    }
    if name.eq_ignore_ascii_case("cookie") {
        return value
            .split(';')
            .map(|c| match c.trim().split_once('=') {
                Some((n, _)) => format!("{n}={REDACTED}"),
                None => c.trim().to_string(),
            })
            .collect::<Vec<_>>()
            .join("; ");
    }
    if name.eq_ignore_ascii_case("set-cookie") {
        let (first, attributes) = value.split_once(';').unwrap_or((value, ""));
        let first = match first.split_once('=') {
            Some((n, _)) => format!("{}={REDACTED}", n.trim()),
            None => REDACTED.to_string(),
        };
        return if attributes.is_empty() {
            first
        } else {
            format!("{first};{attributes}")
        };
    }
    if name.eq_ignore_ascii_case("sec-websocket-protocol") {
        let offered: Vec<String> = value.split(',').map(|p| p.trim().to_string()).collect();
        return subprotocols(&offered).join(", ");
    }
    if name.eq_ignore_ascii_case("referer") || name.eq_ignore_ascii_case("location") {
        return target(value).into_owned();
    }
    if secret_header(name) {
        // Keep the scheme (`Bearer`, `Basic`): it says what kind of credential was sent.
        return match value.split_once(' ') {
            Some((scheme, _))
                if !scheme.is_empty() && scheme.bytes().all(|b| b.is_ascii_alphanumeric()) =>
            {
                format!("{scheme} {REDACTED}")
            }
            _ => REDACTED.to_string(),
        };
    }
    value.to_string()
}

/// Replaces credentials in a message record's payload (its text or base64, which may be a
/// prefix of the payload the ranges were found in): text ranges by `REDACTED` (`"REDACTED"`
/// for a bare JSON number, so JSON stays JSON), binary bytes by `*` (so lengths, and the packet
/// structure of a byte protocol, stay as on the wire). `length` and `wire_length` keep the
/// message's real sizes.
pub fn payload(
    record: &mut crate::record::MessageRecord,
    mut secrets: Vec<crate::app::secrets::Secret>,
) {
    use base64::Engine;
    secrets.retain(|s| s.range.start < s.range.end);
    secrets.sort_by_key(|s| (s.range.start, s.range.end));
    // Overlapping finds (a JSON key inside a STOMP body ...) become one.
    let mut merged: Vec<crate::app::secrets::Secret> = Vec::new();
    for s in secrets {
        match merged.last_mut() {
            Some(last) if s.range.start <= last.range.end => {
                last.range.end = last.range.end.max(s.range.end);
                last.quote &= s.quote;
            }
            _ => merged.push(s),
        }
    }
    if let Some(text) = record.text.as_mut() {
        for s in merged.iter().rev() {
            let mut a = s.range.start.min(text.len());
            let mut b = s.range.end.min(text.len());
            while !text.is_char_boundary(a) {
                a -= 1;
            }
            while !text.is_char_boundary(b) {
                b += 1;
            }
            if a >= b || &text[a..b] == REDACTED {
                continue;
            }
            text.replace_range(a..b, if s.quote { "\"REDACTED\"" } else { REDACTED });
        }
    } else if let Some(b64) = record.base64.as_mut() {
        let engine = &base64::engine::general_purpose::STANDARD;
        let Ok(mut bytes) = engine.decode(b64.as_bytes()) else {
            return;
        };
        let mut changed = false;
        for s in &merged {
            let a = s.range.start.min(bytes.len());
            let b = s.range.end.min(bytes.len());
            for x in &mut bytes[a..b] {
                *x = b'*';
                changed = true;
            }
        }
        if changed {
            *b64 = engine.encode(&bytes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_headers_keep_their_names_and_schemes() {
        assert_eq!(header("Authorization", "Bearer abc.def"), "Bearer REDACTED");
        assert_eq!(header("authorization", "abcdef"), "REDACTED");
        assert_eq!(header("X-Api-Key", "k-123"), "REDACTED");
        assert_eq!(
            header("Cookie", "sid=123; theme=dark"),
            "sid=REDACTED; theme=REDACTED"
        );
        assert_eq!(
            header("Set-Cookie", "sid=123; Path=/; HttpOnly"),
            "sid=REDACTED; Path=/; HttpOnly"
        );
        assert_eq!(
            header("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
            "dGhlIHNhbXBsZSBub25jZQ=="
        );
        assert_eq!(header("Host", "example.test"), "example.test");
        assert_eq!(header(":authority", "example.test"), "example.test");
        assert_eq!(header(":path", "/ws?token=abc"), "/ws?token=REDACTED");
        assert_eq!(
            header("WWW-Authenticate", "Bearer realm=\"x\""),
            "Bearer realm=\"x\""
        );
    }

    #[test]
    fn query_credentials_go_other_parameters_stay() {
        assert_eq!(
            target("/ws?EIO=4&transport=websocket&token=s3cr3t"),
            "/ws?EIO=4&transport=websocket&token=REDACTED"
        );
        assert_eq!(
            target("/ws?access_token=a&api_key=b&X-Amz-Signature=c&room=7"),
            "/ws?access_token=REDACTED&api_key=REDACTED&X-Amz-Signature=REDACTED&room=7"
        );
        assert_eq!(
            target("/ws?x=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln"),
            "/ws?x=REDACTED"
        );
        assert!(matches!(target("/ws?room=7"), Cow::Borrowed(_)));
        assert!(matches!(
            target("/api/kernels/1/channels?session_id=deeecee7"),
            Cow::Borrowed(_)
        ));
        assert_eq!(target("/app?PHPSESSID=x1"), "/app?PHPSESSID=REDACTED");
        assert!(matches!(target("/plain"), Cow::Borrowed(_)));
    }

    #[test]
    fn tokens_in_subprotocols_are_found_by_prefix_marker_or_shape() {
        let offered: Vec<String> = [
            "base64url.bearer.authorization.k8s.io.c2VjcmV0",
            "authorization.bearer.tok",
            "access_token",
            "opaque-but-short",
            "graphql-transport-ws",
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(
            subprotocols(&offered),
            [
                "base64url.bearer.authorization.k8s.io.REDACTED",
                "authorization.bearer.REDACTED",
                "access_token",
                "REDACTED",
                "graphql-transport-ws",
                "REDACTED",
            ]
        );
        assert_eq!(chosen_subprotocol("access_token", &offered), "access_token");
        assert_eq!(
            chosen_subprotocol("authorization.bearer.tok", &offered),
            "authorization.bearer.REDACTED"
        );
        assert_eq!(
            chosen_subprotocol("graphql-transport-ws", &offered),
            "graphql-transport-ws"
        );
    }
}
