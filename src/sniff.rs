//! What a TCP connection that carried no WebSocket was, for the summary of the rest of the
//! capture: the first bytes of each direction in, a [`Carried`] out (TLS with its server name,
//! HTTP, other, nothing). Bounded: a direction keeps at most [`MAX_KEPT`] bytes, and only while
//! a TLS ClientHello or an HTTP request line is still arriving; any other start is decided by
//! its first bytes.
//!
//! The server name is read here with a minimal, bounded walk of the ClientHello (RFC 8446
//! §4.1.2, RFC 6066 §3) because that is all the summary needs; decrypting and reading TLS in
//! full is the TLS layer's job.

use crate::http::{Role, plausible_start};

/// Bytes of a ClientHello kept to find its server name: more than a typical hello (about 1.8
/// KiB with a post-quantum key share); the name is looked for in what fits.
pub const MAX_KEPT: usize = 2048;

/// What the first bytes of a connection's client side said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Carried {
    /// A TLS ClientHello; its server_name, when it has one.
    Tls(Option<String>),
    /// An HTTP request.
    Http,
    /// Bytes of something else.
    Other,
    /// No bytes at all.
    Nothing,
}

#[derive(Debug, Default)]
enum Start {
    /// No byte yet.
    #[default]
    Empty,
    /// A TLS handshake record, still arriving.
    Hello(Vec<u8>),
    /// What may be an HTTP request line, still arriving.
    Line(Vec<u8>),
    /// Decided.
    Done(Carried),
}

/// The first bytes of one direction.
#[derive(Debug, Default)]
pub struct FirstBytes {
    start: Start,
}

impl FirstBytes {
    /// Has the start been decided (later bytes are not needed)?
    pub fn decided(&self) -> bool {
        matches!(self.start, Start::Done(_))
    }

    /// The next bytes of the direction, in stream order.
    pub fn push(&mut self, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        match &mut self.start {
            Start::Done(_) => {}
            Start::Empty => {
                self.start = if looks_like_tls_handshake(data) {
                    Start::Hello(Vec::new())
                } else if plausible_start(data, Role::Requests) {
                    Start::Line(Vec::new())
                } else {
                    Start::Done(Carried::Other)
                };
                self.push(data);
            }
            Start::Line(kept) => {
                let room = MAX_LINE - kept.len();
                kept.extend_from_slice(&data[..data.len().min(room)]);
                if let Some(end) = kept.iter().position(|&b| b == b'\n') {
                    let http = is_request_line(&kept[..end]);
                    self.start = Start::Done(if http { Carried::Http } else { Carried::Other });
                } else if kept.len() == MAX_LINE {
                    self.start = Start::Done(Carried::Other);
                }
            }
            Start::Hello(kept) => {
                let room = MAX_KEPT - kept.len();
                kept.extend_from_slice(&data[..data.len().min(room)]);
                if !looks_like_tls_handshake(kept) {
                    self.start = Start::Done(Carried::Other);
                } else if let Some(name) = server_name(kept) {
                    self.start = Start::Done(Carried::Tls(name));
                } else if kept.len() == MAX_KEPT {
                    self.start = Start::Done(Carried::Tls(None));
                }
            }
        }
    }

    /// What the direction carried.
    pub fn carried(&self) -> Carried {
        match &self.start {
            Start::Empty => Carried::Nothing,
            Start::Hello(_) => Carried::Tls(None),
            // Cut before its end: judged on what came.
            Start::Line(kept) if is_request_line(kept) => Carried::Http,
            Start::Line(_) => Carried::Other,
            Start::Done(c) => c.clone(),
        }
    }
}

/// Longest request line looked at: an HTTP request line is longer only with a huge target.
const MAX_LINE: usize = 1024;

/// `METHOD target HTTP/x` (RFC 9112 §3), so that the commands of other text protocols that
/// also start with an upper-case word (SMTP's `EHLO x`, IRC's `NICK x`) are not taken for HTTP.
fn is_request_line(line: &[u8]) -> bool {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let mut parts = line.split(|&b| b == b' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    (1..=16).contains(&method.len())
        && method.iter().all(u8::is_ascii_uppercase)
        && !target.is_empty()
        && version.starts_with(b"HTTP/")
}

/// A TLS record header of type handshake (22), version 3.x, whose first handshake message is a
/// ClientHello (1); a shorter start is judged on what is there (and again as bytes come).
fn looks_like_tls_handshake(data: &[u8]) -> bool {
    let want: [fn(u8) -> bool; 6] = [
        |b| b == 0x16,
        |b| b == 0x03,
        |b| b <= 0x04,
        |_| true,
        |_| true,
        |b| b == 0x01,
    ];
    data.iter().zip(want).all(|(&b, ok)| ok(b))
}

/// The server name of a ClientHello: `Some(Some(name))`, `Some(None)` when the hello has been
/// read through and has none, `None` when more bytes are needed.
fn server_name(record: &[u8]) -> Option<Option<String>> {
    let mut r = Reader(record);
    r.skip(5)?; // record header
    r.skip(4)?; // handshake type and length
    r.skip(2 + 32)?; // legacy_version, random
    let n = r.u8()?;
    r.skip(n.into())?; // legacy_session_id
    let n = r.u16()?;
    r.skip(n.into())?; // cipher_suites
    let n = r.u8()?;
    r.skip(n.into())?; // legacy_compression_methods
    if r.0.is_empty() {
        return Some(None); // no extensions at all
    }
    let mut extensions = Reader(r.vector()?);
    while !extensions.0.is_empty() {
        let kind = extensions.u16()?;
        let body = extensions.vector()?;
        if kind == 0 {
            // server_name: a list of (name_type, name); type 0 is a host name.
            let mut list = Reader(body);
            let mut names = Reader(list.vector().unwrap_or_default());
            while let (Some(name_type), Some(len)) = (names.u8(), names.u16()) {
                let name = names.take(len.into())?;
                if name_type == 0 {
                    return Some(Some(String::from_utf8_lossy(name).into_owned()));
                }
            }
            return Some(None);
        }
    }
    Some(None)
}

/// Reads big-endian fields; `None` when the bytes run out.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    fn skip(&mut self, n: usize) -> Option<()> {
        self.take(n).map(|_| ())
    }

    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }

    /// A vector with a 2-byte length.
    fn vector(&mut self) -> Option<&'a [u8]> {
        let n = self.u16()?;
        self.take(n.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ClientHello record with these extensions (type, body).
    fn client_hello(extensions: &[(u16, Vec<u8>)]) -> Vec<u8> {
        let mut ext = Vec::new();
        for (kind, body) in extensions {
            ext.extend_from_slice(&kind.to_be_bytes());
            ext.extend_from_slice(&(body.len() as u16).to_be_bytes());
            ext.extend_from_slice(body);
        }
        let mut hello = vec![0x03, 0x03];
        hello.extend_from_slice(&[7; 32]);
        hello.push(32);
        hello.extend_from_slice(&[9; 32]);
        hello.extend_from_slice(&[0, 4, 0x13, 0x01, 0x13, 0x02]);
        hello.extend_from_slice(&[1, 0]);
        hello.extend_from_slice(&(ext.len() as u16).to_be_bytes());
        hello.extend_from_slice(&ext);
        let mut handshake = vec![1];
        handshake.extend_from_slice(&(hello.len() as u32).to_be_bytes()[1..]);
        handshake.extend_from_slice(&hello);
        let mut record = vec![0x16, 0x03, 0x01];
        record.extend_from_slice(&(handshake.len() as u16).to_be_bytes());
        record.extend_from_slice(&handshake);
        record
    }

    fn sni(name: &str) -> (u16, Vec<u8>) {
        let mut entry = vec![0];
        entry.extend_from_slice(&(name.len() as u16).to_be_bytes());
        entry.extend_from_slice(name.as_bytes());
        let mut body = (entry.len() as u16).to_be_bytes().to_vec();
        body.extend_from_slice(&entry);
        (0, body)
    }

    #[test]
    fn finds_the_server_name_across_segments() {
        let record = client_hello(&[
            (10, vec![0, 2, 0, 29]),
            sni("example.com"),
            (43, vec![2, 3, 4]),
        ]);
        for cut in [1, 3, 6, 50, record.len() - 1] {
            let mut first = FirstBytes::default();
            first.push(&record[..cut]);
            assert!(!first.decided(), "cut {cut}");
            first.push(&record[cut..]);
            assert_eq!(
                first.carried(),
                Carried::Tls(Some("example.com".into())),
                "cut {cut}"
            );
        }
    }

    #[test]
    fn a_hello_without_a_name_or_cut_short_is_tls_without_one() {
        let mut first = FirstBytes::default();
        first.push(&client_hello(&[(10, vec![0, 2, 0, 29])]));
        assert_eq!(first.carried(), Carried::Tls(None));
        let mut first = FirstBytes::default();
        first.push(&client_hello(&[sni("example.com")])[..40]);
        assert_eq!(first.carried(), Carried::Tls(None));
        // A hello longer than what is kept: decided at the cap, memory stays bounded.
        let mut first = FirstBytes::default();
        first.push(&client_hello(&[(21, vec![0; 3000]), sni("late.example")]));
        assert!(first.decided());
        assert_eq!(first.carried(), Carried::Tls(None));
    }

    #[test]
    fn http_other_and_nothing() {
        let mut first = FirstBytes::default();
        first.push(b"GET /health HTTP/1.1\r\n");
        assert_eq!(first.carried(), Carried::Http);
        let mut first = FirstBytes::default();
        first.push(b"GET /heal");
        assert!(!first.decided());
        first.push(b"th HTTP/1.1\r\nHost: x\r\n");
        assert_eq!(first.carried(), Carried::Http);
        let mut first = FirstBytes::default();
        first.push(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
        assert_eq!(first.carried(), Carried::Http);
        for other in [&b"EHLO mail.example\r\n"[..], b"NICK wsprobe\r\n"] {
            let mut first = FirstBytes::default();
            first.push(other);
            assert_eq!(first.carried(), Carried::Other);
        }
        let mut first = FirstBytes::default();
        first.push(b"SSH-2.0-OpenSSH_9.2\r\n");
        assert_eq!(first.carried(), Carried::Other);
        let mut first = FirstBytes::default();
        first.push(&[0x16, 0x03, 0x01, 0x00, 0x10, 0x02]); // a ServerHello first: not a client
        assert_eq!(first.carried(), Carried::Other);
        let mut first = FirstBytes::default();
        first.push(&[0x16]);
        first.push(b"abcdef");
        assert_eq!(first.carried(), Carried::Other);
        assert_eq!(FirstBytes::default().carried(), Carried::Nothing);
    }

    #[test]
    fn garbage_that_looks_like_a_hello_never_panics() {
        let mut record = client_hello(&[sni("example.com")]);
        for i in 5..record.len() {
            let saved = record[i];
            for b in [0x00, 0x7F, 0xFF] {
                record[i] = b;
                let mut first = FirstBytes::default();
                first.push(&record);
                let _ = first.carried();
            }
            record[i] = saved;
        }
    }
}
