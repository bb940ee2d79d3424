//! Credentials inside message payloads, found as byte ranges of the payload so that every
//! report can show the message with them replaced (`REDACTED` in text, `*` over binary bytes,
//! unless `--no-redact`); the handshake's credentials are `analysis::redact`'s.
//!
//! - any JSON text: the values of keys named like a secret (`password`, `passcode`, `token`,
//!   `secret`, `apikey`, `authorization`, `credentials`, `jwt` ...), wherever they are;
//! - the login messages of application protocols, whose payload is credentials by design:
//!   STOMP `CONNECT`/`STOMP` `login` and `passcode` (and any header named like a secret, in any
//!   frame; inside SockJS frames too), the Socket.IO client `CONNECT` auth object and its
//!   namespace query, the graphql `connection_init` payload (connectionParams), MQTT CONNECT's
//!   user name, password and v5 authentication data, and MQTT v5 AUTH's authentication data.
//!
//! Hand-written scanners rather than parsers: they must work on a cut preview, on JSON inside a
//! JSON string (SockJS) and on an MQTT packet that is still arriving, and say where each value
//! is, which no JSON crate does.

use std::ops::Range;

/// A credential: bytes of a message's payload, and how to replace them in text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Secret {
    /// The bytes.
    pub range: Range<usize>,
    /// A bare JSON number: replaced by `"REDACTED"` (quoted) so the JSON stays JSON; text
    /// values (a JSON string's content, a header value) by `REDACTED`; binary bytes by `*`.
    pub quote: bool,
}

impl Secret {
    fn text(range: Range<usize>) -> Secret {
        Secret {
            range,
            quote: false,
        }
    }
}

/// A name lower-cased with everything but letters and digits removed (`X-Api-Key` →
/// `xapikey`), for matching names of credentials. It runs for every header and every JSON key:
/// kept on the stack (a string per name, and `str::contains`' searcher set up per word, were
/// 8 % of a small-message run), on the heap only past 64 letters.
pub(crate) struct Squashed {
    short: [u8; 64],
    len: usize,
    long: Vec<u8>,
}

impl Squashed {
    pub(crate) fn new(name: &str) -> Self {
        let mut s = Squashed {
            short: [0; 64],
            len: 0,
            long: Vec::new(),
        };
        for b in name.bytes().filter(u8::is_ascii_alphanumeric) {
            let b = b.to_ascii_lowercase();
            if s.len < s.short.len() {
                s.short[s.len] = b;
                s.len += 1;
            } else {
                if s.long.is_empty() {
                    s.long.extend_from_slice(&s.short);
                }
                s.long.push(b);
            }
        }
        s
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        if self.long.is_empty() {
            &self.short[..self.len]
        } else {
            &self.long
        }
    }

    /// Is it one of `words`?
    pub(crate) fn is_any(&self, words: &[&str]) -> bool {
        words.iter().any(|w| w.as_bytes() == self.bytes())
    }

    /// Does it contain one of `words`?
    pub(crate) fn contains_any(&self, words: &[&str]) -> bool {
        let n = self.bytes();
        words.iter().any(|w| {
            let w = w.as_bytes();
            n.len() >= w.len() && n.windows(w.len()).any(|part| part == w)
        })
    }
}

/// A JSON key (or STOMP header) whose value is a credential. Not `session`, `sid` or `key`
/// alone (they name sessions and things far more often), nor `author` (a chat message's).
pub fn secret_key(name: &str) -> bool {
    let n = Squashed::new(name);
    const EXACT: &[&str] = &[
        "auth", "pass", "pwd", "passwd", "pin", "otp", "login", "passcode", "bearer",
    ];
    const PART: &[&str] = &[
        "password",
        "passcode",
        "passphrase",
        "secret",
        "token",
        "apikey",
        "accesskey",
        "privatekey",
        "authorization",
        "authdata",
        "credential",
        "signature",
        "jwt",
        "cookie",
    ];
    n.is_any(EXACT) || n.contains_any(PART)
}

/// A key whose numeric value is a credential too (a PIN, a numeric password); other secret
/// names take only text (`max_tokens: 100` is not one).
fn numeric_secret(name: &str) -> bool {
    let n = Squashed::new(name);
    n.is_any(&["pin", "otp", "code", "passcode"]) || n.contains_any(&["password"])
}

/// Could `s` hold a key that [`secret_key`] accepts? A test of three-letter stems (ASCII case
/// folded) that every such name contains, so that a message without one is not tokenized.
fn may_name_a_secret(s: &[u8]) -> bool {
    // The stems' second letters by first letter, as bits (a = bit 0): most pairs of bytes
    // start no stem, and this one look-up spares them the fifteen comparisons (every message
    // shown is scanned).
    const SECOND: [u32; 26] = {
        let mut bits = [0u32; 26];
        let mut i = 0;
        while i < STEMS.len() {
            let first = ((STEMS[i] >> 16) & 0xff) as usize - b'a' as usize;
            let second = ((STEMS[i] >> 8) & 0xff) - b'a' as u32;
            bits[first] |= 1 << second;
            i += 1;
        }
        bits
    };
    s.windows(3).any(|w| {
        let (first, second) = (w[0] | 0x20, w[1] | 0x20);
        let (Some(first), Some(second)) = (first.checked_sub(b'a'), second.checked_sub(b'a'))
        else {
            return false;
        };
        if first >= 26 || second >= 26 || SECOND[usize::from(first)] & (1 << second) == 0 {
            return false;
        }
        let k = u32::from(w[0] | 0x20) << 16 | u32::from(w[1] | 0x20) << 8 | u32::from(w[2] | 0x20);
        STEMS.contains(&k)
    })
}

/// Three-letter stems (lowercase) that every name [`secret_key`] accepts contains.
const STEMS: [u32; 15] = {
    const fn stem(a: &[u8; 3]) -> u32 {
        (a[0] as u32) << 16 | (a[1] as u32) << 8 | a[2] as u32
    }
    [
        stem(b"aut"),
        stem(b"pas"),
        stem(b"pwd"),
        stem(b"pin"),
        stem(b"otp"),
        stem(b"log"),
        stem(b"bea"),
        stem(b"sec"),
        stem(b"tok"),
        stem(b"key"),
        stem(b"cre"),
        stem(b"sig"),
        stem(b"jwt"),
        stem(b"coo"),
        stem(b"phr"),
    ]
};

/// One JSON token with its byte range.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Tok {
    Str,
    Scalar,
    Open,
    Close,
    Colon,
    Comma,
}

/// The JSON tokens of `s` (a prefix is fine: an unterminated string runs to the end). Bytes
/// that are not JSON end the scan of that stretch quietly (framing around JSON is skipped:
/// `42[...]`, `a[...]`).
fn tokens(s: &[u8]) -> Vec<(Tok, Range<usize>)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < s.len() {
        let b = s[i];
        match b {
            b'"' => {
                let start = i;
                i += 1;
                while i < s.len() && s[i] != b'"' {
                    i += if s[i] == b'\\' { 2 } else { 1 };
                }
                i = (i + 1).min(s.len());
                out.push((Tok::Str, start..i));
            }
            b'{' | b'[' => {
                out.push((Tok::Open, i..i + 1));
                i += 1;
            }
            b'}' | b']' => {
                out.push((Tok::Close, i..i + 1));
                i += 1;
            }
            b':' => {
                out.push((Tok::Colon, i..i + 1));
                i += 1;
            }
            b',' => {
                out.push((Tok::Comma, i..i + 1));
                i += 1;
            }
            b'-' | b'0'..=b'9' | b't' | b'f' | b'n' => {
                let start = i;
                while i < s.len()
                    && (s[i].is_ascii_alphanumeric() || matches!(s[i], b'-' | b'+' | b'.'))
                {
                    i += 1;
                }
                out.push((Tok::Scalar, start..i));
            }
            _ => i += 1,
        }
    }
    out
}

/// The end (token index past it) of the value starting at token `k`.
fn value_end(toks: &[(Tok, Range<usize>)], k: usize) -> usize {
    if toks.get(k).map(|t| t.0) != Some(Tok::Open) {
        return k + 1;
    }
    let mut depth = 0usize;
    for (j, t) in toks.iter().enumerate().skip(k) {
        match t.0 {
            Tok::Open => depth += 1,
            Tok::Close => {
                depth -= 1;
                if depth == 0 {
                    return j + 1;
                }
            }
            _ => {}
        }
    }
    toks.len()
}

/// Text of a string token without its quotes (escapes left as they are: key names rarely
/// have any).
fn str_text<'a>(s: &'a [u8], r: &Range<usize>) -> &'a str {
    let inner = &s[(r.start + 1).min(r.end)..r.end.saturating_sub(1).max(r.start + 1)];
    std::str::from_utf8(inner).unwrap_or("")
}

/// Is token `k` a key (a string followed by a colon)?
fn is_key(toks: &[(Tok, Range<usize>)], k: usize) -> bool {
    toks[k].0 == Tok::Str && toks.get(k + 1).is_some_and(|t| t.0 == Tok::Colon)
}

/// The ranges of the value tokens in toks[from..to] that are not keys: strings always,
/// numbers when `numbers`.
fn leaves(
    s: &[u8],
    toks: &[(Tok, Range<usize>)],
    from: usize,
    to: usize,
    numbers: bool,
) -> Vec<Secret> {
    (from..to.min(toks.len()))
        .filter_map(|k| match toks[k].0 {
            Tok::Str if !is_key(toks, k) => Some(string_secret(s, &toks[k].1)),
            Tok::Scalar if numbers => number_secret(s, &toks[k].1),
            _ => None,
        })
        .collect()
}

/// A JSON string value: its content, without the quotes (a cut one runs to the end).
fn string_secret(s: &[u8], r: &Range<usize>) -> Secret {
    let closed = r.len() >= 2 && s[r.end - 1] == b'"';
    Secret::text(r.start + 1..if closed { r.end - 1 } else { r.end })
}

/// A JSON number value (not `true`, `false`, `null`).
fn number_secret(s: &[u8], r: &Range<usize>) -> Option<Secret> {
    (!matches!(&s[r.clone()], b"null" | b"true" | b"false")).then(|| Secret {
        range: r.clone(),
        quote: true,
    })
}

/// Values of secret-named keys anywhere in JSON text `s` (objects and arrays under such a key:
/// every text leaf in them).
pub fn json_secrets(s: &[u8]) -> Vec<Secret> {
    // Cheap test first: most messages name no secret at all.
    if !may_name_a_secret(s) {
        return Vec::new();
    }
    let toks = tokens(s);
    let mut out = Vec::new();
    let mut k = 0;
    while k < toks.len() {
        if is_key(&toks, k) {
            let name = str_text(s, &toks[k].1);
            let v = k + 2;
            if secret_key(name) && v < toks.len() {
                match toks[v].0 {
                    Tok::Str => out.push(string_secret(s, &toks[v].1)),
                    Tok::Scalar if numeric_secret(name) => {
                        out.extend(number_secret(s, &toks[v].1));
                    }
                    Tok::Open => {
                        let end = value_end(&toks, v);
                        out.extend(leaves(s, &toks, v, end, true));
                        k = end;
                        continue;
                    }
                    _ => {}
                }
            }
        }
        k += 1;
    }
    out
}

/// Every text and number leaf of the JSON value that starts at byte `from` of `s` (an auth
/// object, connectionParams): all of it is credentials by design.
pub fn json_value_leaves(s: &[u8], from: usize) -> Vec<Secret> {
    let Some(rest) = s.get(from..) else {
        return Vec::new();
    };
    let toks = tokens(rest);
    let end = value_end(&toks, 0);
    leaves(rest, &toks, 0, end, true)
        .into_iter()
        .map(|x| Secret {
            range: x.range.start + from..x.range.end + from,
            quote: x.quote,
        })
        .collect()
}

/// The value ranges of secret headers in the STOMP frames of `s`: `login`, `passcode` and any
/// header named like a secret, in the header block of each frame.
pub fn stomp_secrets(s: &[u8]) -> Vec<Secret> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < s.len() {
        // Heart-beats and blank lines between frames.
        while i < s.len() && matches!(s[i], b'\n' | b'\r') {
            i += 1;
        }
        let frame_end = s[i..]
            .iter()
            .position(|&b| b == 0)
            .map_or(s.len(), |p| i + p);
        let mut line_start = i;
        let mut first = true;
        while line_start < frame_end {
            let line_end = s[line_start..frame_end]
                .iter()
                .position(|&b| b == b'\n')
                .map_or(frame_end, |p| line_start + p);
            let line = &s[line_start..line_end];
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.is_empty() {
                break; // the body follows
            }
            if !first && let Some(colon) = line.iter().position(|&b| b == b':') {
                let name = std::str::from_utf8(&line[..colon]).unwrap_or("");
                let value = line_start + colon + 1..line_start + line.len();
                if secret_key(name) && !value.is_empty() {
                    out.push(Secret::text(value));
                }
            }
            first = false;
            line_start = line_end + 1;
        }
        i = frame_end + 1;
    }
    out
}

/// A JSON string's content unescaped, with, for every output byte, the range of input bytes
/// it came from (so ranges found in the content map back to the wire).
fn unescape(s: &[u8]) -> (Vec<u8>, Vec<Range<usize>>) {
    let mut out = Vec::with_capacity(s.len());
    let mut from = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] != b'\\' {
            out.push(s[i]);
            from.push(i..i + 1);
            i += 1;
            continue;
        }
        let Some(&e) = s.get(i + 1) else { break };
        let (bytes, len): (Vec<u8>, usize) = match e {
            b'n' => (vec![b'\n'], 2),
            b'r' => (vec![b'\r'], 2),
            b't' => (vec![b'\t'], 2),
            b'b' => (vec![8], 2),
            b'f' => (vec![12], 2),
            b'u' => {
                let hex = s
                    .get(i + 2..i + 6)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u32::from_str_radix(h, 16).ok());
                match hex.and_then(char::from_u32) {
                    Some(c) => (c.to_string().into_bytes(), 6),
                    // A surrogate half: a placeholder of the same role (not a secret boundary).
                    None => (vec![b'?'], 6),
                }
            }
            other => (vec![other], 2),
        };
        let len = len.min(s.len() - i);
        for b in bytes {
            out.push(b);
            from.push(i..i + len);
        }
        i += len;
    }
    (out, from)
}

/// Ranges found in `inner` (unescaped content) mapped back through `from` to the escaped input,
/// shifted by `base`.
/// Inside a JSON string every replacement is bare text: a quote would end the string.
fn map_back(found: Vec<Secret>, from: &[Range<usize>], base: usize) -> Vec<Secret> {
    found
        .into_iter()
        .map(|x| x.range)
        .filter(|r| r.start < r.end && r.end <= from.len())
        .map(|r| Secret::text(from[r.start].start + base..from[r.end - 1].end + base))
        .collect()
}

/// SockJS frames (`a["…","…"]`, `m"…"`): STOMP headers and JSON secrets inside each string.
pub fn sockjs_secrets(s: &[u8]) -> Vec<Secret> {
    let mut out = Vec::new();
    for (tok, r) in tokens(s) {
        if tok != Tok::Str || r.len() < 2 {
            continue;
        }
        let content = r.start + 1..r.end - 1;
        let (inner, from) = unescape(&s[content.clone()]);
        let mut found = stomp_secrets(&inner);
        found.extend(json_secrets(&inner));
        out.extend(map_back(found, &from, content.start));
    }
    out
}

/// The client's Socket.IO `CONNECT` (`40`, `40/nsp,{auth}`, `40/nsp?token=…,`): every value of
/// the auth object, and the credential parameters of a namespace query (Socket.IO 2).
pub fn socketio_connect_secrets(s: &[u8]) -> Vec<Secret> {
    let Some(rest) = s.strip_prefix(b"40") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut i = 2;
    if rest.first() == Some(&b'/') {
        let end = s[i..]
            .iter()
            .position(|&b| b == b',')
            .map_or(s.len(), |p| i + p);
        if let Some(q) = s[i..end].iter().position(|&b| b == b'?') {
            let mut p = i + q + 1;
            while p < end {
                let pair_end = s[p..end]
                    .iter()
                    .position(|&b| b == b'&')
                    .map_or(end, |x| p + x);
                if let Some(eq) = s[p..pair_end].iter().position(|&b| b == b'=') {
                    let name = std::str::from_utf8(&s[p..p + eq]).unwrap_or("");
                    if crate::analysis::redact::secret_parameter(name) && p + eq + 1 < pair_end {
                        out.push(Secret::text(p + eq + 1..pair_end));
                    }
                }
                p = pair_end + 1;
            }
        }
        i = (end + 1).min(s.len());
    }
    if s.get(i) == Some(&b'{') {
        out.extend(json_value_leaves(s, i));
    }
    out
}

/// graphql `connection_init` (both protocols): every value of its payload (connectionParams).
pub fn graphql_init_secrets(s: &[u8]) -> Vec<Secret> {
    let toks = tokens(s);
    let mut init = false;
    let mut payload = None;
    for k in 0..toks.len() {
        if !is_key(&toks, k) {
            continue;
        }
        let name = str_text(s, &toks[k].1);
        let v = toks.get(k + 2);
        match (name, v) {
            ("type", Some((Tok::Str, r))) => init = str_text(s, r) == "connection_init",
            ("payload", Some((Tok::Open, r))) => payload = Some(r.start),
            _ => {}
        }
    }
    match (init, payload) {
        (true, Some(at)) => json_value_leaves(s, at),
        _ => Vec::new(),
    }
}

/// A little cursor over an MQTT packet that may be cut short.
struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn u8(&mut self) -> Option<u8> {
        let v = *self.b.get(self.i)?;
        self.i += 1;
        Some(v)
    }
    fn u16(&mut self) -> Option<usize> {
        Some(usize::from(u16::from_be_bytes([self.u8()?, self.u8()?])))
    }
    fn varint(&mut self) -> Option<usize> {
        let mut v = 0usize;
        for shift in [0, 7, 14, 21] {
            let b = self.u8()?;
            v |= usize::from(b & 0x7F) << shift;
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }
    /// A length-prefixed field: its content's range (possibly past the bytes present).
    fn field(&mut self) -> Option<Range<usize>> {
        let n = self.u16()?;
        let r = self.i..self.i + n;
        self.i += n;
        Some(r)
    }
    /// MQTT 5 properties: the ranges of Authentication Data (0x16) in them.
    fn properties(&mut self, out: &mut Vec<Range<usize>>) -> Option<()> {
        let n = self.varint()?;
        let end = self.i + n;
        while self.i < end {
            let id = self.varint()?;
            match id {
                0x01 | 0x17 | 0x19 | 0x24 | 0x25 | 0x28 | 0x29 | 0x2A => self.i += 1,
                0x13 | 0x21..=0x23 => self.i += 2,
                0x02 | 0x11 | 0x18 | 0x27 => self.i += 4,
                0x0B => {
                    self.varint()?;
                }
                0x16 => out.push(self.field()?),
                0x26 => {
                    self.field()?;
                    self.field()?;
                }
                0x03 | 0x08 | 0x09 | 0x12 | 0x15 | 0x1A | 0x1C | 0x1F => {
                    self.field()?;
                }
                _ => return None,
            }
            if self.i > self.b.len() {
                return None;
            }
        }
        Some(())
    }
}

/// The credential ranges of an MQTT CONNECT (user name, password, v5 authentication data) or
/// v5 AUTH packet, `packet` starting at its fixed header and possibly cut short (it may still
/// be arriving, a few bytes per WebSocket message); ranges may run past its end. `v5`: the
/// session's level is 5 (AUTH only).
pub fn mqtt_secrets(packet: &[u8], v5: bool) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut c = Cursor { b: packet, i: 0 };
    let (Some(first), Some(_remaining)) = (c.u8(), c.varint()) else {
        return out;
    };
    match first >> 4 {
        1 => {
            let _ = connect(&mut c, &mut out);
        }
        // AUTH: reason code, then properties.
        15 if v5 && c.u8().is_some() => {
            let _ = c.properties(&mut out);
        }
        _ => {}
    }
    out
}

fn connect(c: &mut Cursor<'_>, out: &mut Vec<Range<usize>>) -> Option<()> {
    c.field()?; // protocol name
    let level = c.u8()?;
    let flags = c.u8()?;
    c.u16()?; // keep-alive
    if level == 5 {
        c.properties(out)?;
    }
    c.field()?; // client id
    if flags & 0x04 != 0 {
        if level == 5 {
            let mut ignored = Vec::new();
            c.properties(&mut ignored)?;
        }
        c.field()?; // will topic
        c.field()?; // will payload
    }
    if flags & 0x80 != 0 {
        out.push(c.field()?);
    }
    if flags & 0x40 != 0 {
        out.push(c.field()?);
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redact(s: &str, secrets: Vec<Secret>) -> String {
        let mut out = s.to_string();
        let mut secrets = secrets;
        secrets.sort_by_key(|x| std::cmp::Reverse(x.range.start));
        for x in secrets {
            out.replace_range(x.range, if x.quote { "\"#\"" } else { "#" });
        }
        out
    }

    #[test]
    fn names_are_matched_squashed_also_past_the_stack_buffer() {
        assert!(secret_key("X-Api-Key"));
        assert!(secret_key("access_token"));
        assert!(secret_key("PassCode"));
        assert!(!secret_key("session"));
        assert!(!secret_key("author"));
        // 70 letters before the word: the name no longer fits on the stack.
        let long = format!("{}Password", "x".repeat(70));
        assert!(secret_key(&long));
        assert_eq!(Squashed::new(&long).bytes().len(), 78);
        assert!(!secret_key(&"x".repeat(100)));
        let exact = Squashed::new("P-I-N");
        assert!(exact.is_any(&["pin"]));
        assert!(!Squashed::new("spin").is_any(&["pin"]));
        assert!(numeric_secret("pin") && !numeric_secret("spin"));
    }

    #[test]
    fn json_values_of_secret_keys_are_found_anywhere() {
        let s = r#"42["login",{"user":"ann","password":"hunter2","pin":1234,"max_tokens":100,"token":"abc","author":"Jane","auth":{"bearer":"x","exp":5}}]"#;
        assert_eq!(
            redact(s, json_secrets(s.as_bytes())),
            r##"42["login",{"user":"ann","password":"#","pin":"#","max_tokens":100,"token":"#","author":"Jane","auth":{"bearer":"#","exp":"#"}}]"##
        );
        // A cut preview still gets what is there.
        let cut = r#"{"type":"auth","apiKey":"k-12"#;
        assert_eq!(
            redact(cut, json_secrets(cut.as_bytes())),
            r##"{"type":"auth","apiKey":"#"##
        );
        assert!(json_secrets(b"plain text, no json").is_empty());
    }

    #[test]
    fn stomp_login_and_passcode_are_found_in_each_frame() {
        let s = "\nCONNECT\r\naccept-version:1.2\r\nlogin:guest\r\npasscode:s3cret\r\nhost:/\r\n\r\n\0SEND\ndestination:/q\nAuthorization:Bearer t\n\nbody login:x\0";
        assert_eq!(
            redact(s, stomp_secrets(s.as_bytes())),
            "\nCONNECT\r\naccept-version:1.2\r\nlogin:#\r\npasscode:#\r\nhost:/\r\n\r\n\0SEND\ndestination:/q\nAuthorization:#\n\nbody login:x\0"
        );
    }

    #[test]
    fn sockjs_frames_are_looked_into() {
        let s = r#"a["CONNECT\nlogin:guest\npasscode:p\u0061ss\n\n\u0000","{\"token\":\"t1\"}"]"#;
        assert_eq!(
            redact(s, sockjs_secrets(s.as_bytes())),
            r##"a["CONNECT\nlogin:#\npasscode:#\n\n\u0000","{\"token\":\"#\"}"]"##
        );
    }

    #[test]
    fn socketio_connect_auth_and_namespace_query() {
        let s = r#"40/admin,{"token":"abc","user":{"id":7}}"#;
        assert_eq!(
            redact(s, socketio_connect_secrets(s.as_bytes())),
            r##"40/admin,{"token":"#","user":{"id":"#"}}"##
        );
        let v2 = "40/chat?token=abc&room=1,";
        assert_eq!(
            redact(v2, socketio_connect_secrets(v2.as_bytes())),
            "40/chat?token=#&room=1,"
        );
        assert!(socketio_connect_secrets(b"42[\"ev\",1]").is_empty());
    }

    #[test]
    fn graphql_connection_init_payload_is_all_secret() {
        let s = r#"{"type":"connection_init","payload":{"headers":{"x-tenant":"acme"},"n":1}}"#;
        assert_eq!(
            redact(s, graphql_init_secrets(s.as_bytes())),
            r##"{"type":"connection_init","payload":{"headers":{"x-tenant":"#"},"n":"#"}}"##
        );
        assert!(
            graphql_init_secrets(br#"{"type":"subscribe","payload":{"query":"{x}"}}"#).is_empty()
        );
    }

    #[test]
    fn mqtt_connect_user_and_password_even_when_cut() {
        // MQTT 3.1.1 CONNECT, clean session, user and password: client id "c", user "u1",
        // password "pw3".
        let mut p = vec![0x10, 0];
        p.extend_from_slice(&[0, 4, b'M', b'Q', b'T', b'T', 4, 0xC2, 0, 60]);
        p.extend_from_slice(&[0, 1, b'c', 0, 2, b'u', b'1', 0, 3, b'p', b'w', b'3']);
        p[1] = (p.len() - 2) as u8;
        let found = mqtt_secrets(&p, false);
        assert_eq!(found, vec![17..19, 21..24]);
        assert_eq!(&p[17..19], b"u1");
        assert_eq!(&p[21..24], b"pw3");
        // Cut before the password's bytes: the user name and where the password will be.
        assert_eq!(mqtt_secrets(&p[..21], false), vec![17..19, 21..24]);
        // Cut inside the password's length: the user name only.
        assert_eq!(mqtt_secrets(&p[..20], false), vec![17..19]);
        // Not a CONNECT.
        assert!(mqtt_secrets(&[0x30, 3, 0, 1, b't'], false).is_empty());
    }
}
