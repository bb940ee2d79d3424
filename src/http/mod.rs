//! HTTP/1.1 before the upgrade: one direction's bytes in, request or response heads out.
//! Bodies (Content-Length or chunked) are skipped so keep-alive requests before the upgrade
//! are stepped over; the bytes after a `101` head are handed back to the caller untouched.

pub mod handshake;
pub mod layer;

pub use handshake::{Deflate, Negotiated, RequestHead, ResponseHead, derive_accept_key};

/// Largest message head buffered across segments: real upgrade heads are under 8 KiB; a larger
/// one is not HTTP we can use, and buffering it would let garbage grow memory.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;

/// Headers read per message head before giving up.
pub const MAX_HEADERS: usize = 128;

/// A complete message head.
#[derive(Debug, Clone)]
pub enum HttpEvent {
    /// A request (client to server).
    Request(RequestHead),
    /// A response (server to client).
    Response(ResponseHead),
}

/// Why a direction is not (or no longer) HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotHttp {
    /// The bytes are not an HTTP/1.x message head.
    Garbage,
    /// A head larger than [`MAX_HEAD_BYTES`].
    HeadTooLarge,
    /// A head with more than [`MAX_HEADERS`] header lines.
    TooManyHeaders,
}

/// What the direction carries: requests or responses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Requests.
    Requests,
    /// Responses.
    Responses,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Body {
    None,
    Length(u64),
    /// Chunked transfer coding: reading a chunk-size line.
    ChunkSize,
    /// Inside a chunk's data (then its CRLF).
    ChunkData(u64),
    /// The trailer section after the last chunk, until an empty line.
    Trailers,
    /// A response without a length: everything until the connection closes.
    UntilClose,
}

/// One direction of HTTP/1.1.
#[derive(Debug)]
pub struct HttpStream {
    role: Role,
    head: Vec<u8>,
    line: Vec<u8>,
    body: Body,
}

impl HttpStream {
    /// A direction that carries `role` messages.
    pub fn new(role: Role) -> Self {
        HttpStream {
            role,
            head: Vec::new(),
            line: Vec::new(),
            body: Body::None,
        }
    }

    /// Gives back the spare room of the buffers of a head or line cut across segments.
    pub fn shrink(&mut self) {
        self.head.shrink_to_fit();
        self.line.shrink_to_fit();
    }

    /// Consumes `data` as HTTP until the end of the next complete head. Returns that head and
    /// how many bytes of `data` were used, or `None` when all of `data` was used and more is
    /// needed. The caller decides whether what follows a head is still HTTP.
    pub fn push(&mut self, data: &[u8]) -> Result<Option<(HttpEvent, usize)>, NotHttp> {
        let used = self.skip_body(data);
        if used == data.len() || self.body != Body::None {
            return Ok(None);
        }
        let rest = &data[used..];
        if self.head.is_empty() {
            // Fast path: the whole head is in this segment, nothing is copied.
            if let Some((event, n)) = self.parse_head(rest)? {
                return Ok(Some((event, used + n)));
            }
            self.buffer_head(rest)?;
            return Ok(None);
        }
        let before = self.head.len();
        self.buffer_head(rest)?;
        let head = std::mem::take(&mut self.head);
        match self.parse_head(&head)? {
            // `n` counts buffered bytes too; only bytes past `before` came from `data`.
            Some((event, n)) => Ok(Some((event, used + n.saturating_sub(before)))),
            None => {
                self.head = head;
                Ok(None)
            }
        }
    }

    fn buffer_head(&mut self, bytes: &[u8]) -> Result<(), NotHttp> {
        if self.head.len() + bytes.len() > MAX_HEAD_BYTES {
            return Err(NotHttp::HeadTooLarge);
        }
        self.head.extend_from_slice(bytes);
        Ok(())
    }

    /// Parses one head at the start of `buf`; `Ok(None)` means it is incomplete but plausible.
    fn parse_head(&mut self, buf: &[u8]) -> Result<Option<(HttpEvent, usize)>, NotHttp> {
        // Tolerate stray CRLFs between messages (RFC 9112 §2.2).
        let skip = buf
            .iter()
            .take_while(|&&b| b == b'\r' || b == b'\n')
            .count();
        let buf_after = &buf[skip..];
        if buf_after.is_empty() {
            return Ok(None);
        }
        if !plausible_start(buf_after, self.role) {
            return Err(NotHttp::Garbage);
        }
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let parsed = match self.role {
            Role::Requests => {
                let mut req = httparse::Request::new(&mut headers);
                match req.parse(buf_after) {
                    Ok(httparse::Status::Complete(n)) => {
                        let mut head = RequestHead::from_httparse(&req);
                        head.head_size = n;
                        self.body = request_body(&head);
                        Some((HttpEvent::Request(head), n))
                    }
                    Ok(httparse::Status::Partial) => None,
                    Err(e) => return Err(not_http(e)),
                }
            }
            Role::Responses => {
                let mut resp = httparse::Response::new(&mut headers);
                match resp.parse(buf_after) {
                    Ok(httparse::Status::Complete(n)) => {
                        let mut head = ResponseHead::from_httparse(&resp);
                        head.head_size = n;
                        self.body = response_body(&head);
                        Some((HttpEvent::Response(head), n))
                    }
                    Ok(httparse::Status::Partial) => None,
                    Err(e) => return Err(not_http(e)),
                }
            }
        };
        Ok(parsed.map(|(event, n)| (event, skip + n)))
    }

    /// Skips body bytes at the start of `data`; returns how many were skipped.
    fn skip_body(&mut self, data: &[u8]) -> usize {
        let mut used = 0;
        while used < data.len() {
            let rest = &data[used..];
            match self.body {
                Body::None => break,
                Body::UntilClose => return data.len(),
                Body::Length(left) => {
                    let n = left.min(rest.len() as u64);
                    used += n as usize;
                    self.body = if left == n {
                        Body::None
                    } else {
                        Body::Length(left - n)
                    };
                }
                Body::ChunkData(left) => {
                    // Chunk data is followed by CRLF: counted in `left` (+2 when entering).
                    let n = left.min(rest.len() as u64);
                    used += n as usize;
                    self.body = if left == n {
                        Body::ChunkSize
                    } else {
                        Body::ChunkData(left - n)
                    };
                }
                Body::ChunkSize | Body::Trailers => {
                    let Some(pos) = rest.iter().position(|&b| b == b'\n') else {
                        self.take_line_bytes(rest);
                        return data.len();
                    };
                    self.take_line_bytes(&rest[..pos]);
                    used += pos + 1;
                    let line = std::mem::take(&mut self.line);
                    let line = trim_ascii(&line);
                    if self.body == Body::Trailers {
                        if line.is_empty() {
                            self.body = Body::None;
                        }
                        continue;
                    }
                    let hex: Vec<u8> = line
                        .iter()
                        .copied()
                        .take_while(|b| b.is_ascii_hexdigit())
                        .collect();
                    let size = std::str::from_utf8(&hex)
                        .ok()
                        .and_then(|h| u64::from_str_radix(h, 16).ok());
                    self.body = match size {
                        Some(0) => Body::Trailers,
                        Some(n) => Body::ChunkData(n.saturating_add(2)),
                        // Not chunked after all: treat the rest as opaque body.
                        None => Body::UntilClose,
                    };
                }
            }
        }
        used
    }

    fn take_line_bytes(&mut self, bytes: &[u8]) {
        // A chunk-size line is short; cap it so garbage cannot grow memory.
        let room = 1024usize.saturating_sub(self.line.len());
        self.line.extend_from_slice(&bytes[..bytes.len().min(room)]);
    }
}

fn not_http(e: httparse::Error) -> NotHttp {
    match e {
        httparse::Error::TooManyHeaders => NotHttp::TooManyHeaders,
        _ => NotHttp::Garbage,
    }
}

fn trim_ascii(b: &[u8]) -> &[u8] {
    let start = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    let end = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &b[start..end.max(start)]
}

/// A cheap check before httparse: a request starts with an upper-case method token and a
/// space, a response with `HTTP/`. Keeps binary streams from being buffered as heads.
pub fn plausible_start(buf: &[u8], role: Role) -> bool {
    match role {
        Role::Responses => {
            let n = buf.len().min(5);
            buf[..n] == b"HTTP/"[..n]
        }
        Role::Requests => {
            let token_len = buf.iter().take_while(|b| b.is_ascii_uppercase()).count();
            if token_len == buf.len() {
                return token_len > 0 && token_len <= 16;
            }
            (1..=16).contains(&token_len) && buf[token_len] == b' '
        }
    }
}

fn request_body(head: &RequestHead) -> Body {
    if head.chunked {
        Body::ChunkSize
    } else {
        match head.content_length {
            Some(n) if n > 0 => Body::Length(n),
            _ => Body::None,
        }
    }
}

fn response_body(head: &ResponseHead) -> Body {
    // RFC 9112 §6.3: 1xx, 204 and 304 have no body; 101 hands the connection over.
    if head.status < 200 || head.status == 204 || head.status == 304 {
        return Body::None;
    }
    if head.chunked {
        Body::ChunkSize
    } else {
        match head.content_length {
            Some(0) => Body::None,
            Some(n) => Body::Length(n),
            None => Body::UntilClose,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UPGRADE: &[u8] = b"GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

    fn requests(stream: &[u8], cut: usize) -> Vec<(String, usize)> {
        let mut http = HttpStream::new(Role::Requests);
        let mut out = Vec::new();
        let mut offset = 0;
        'parts: for part in [&stream[..cut], &stream[cut..]] {
            let mut rest = part;
            while let Some((HttpEvent::Request(r), used)) = http.push(rest).unwrap() {
                offset += used;
                out.push((r.path.clone(), offset));
                rest = &rest[used..];
                if r.is_websocket_upgrade() {
                    // What follows the upgrade is the caller's business, not HTTP.
                    break 'parts;
                }
            }
            offset += rest.len();
        }
        out
    }

    #[test]
    fn keep_alive_requests_with_bodies_then_upgrade_at_every_split() {
        let mut stream = b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello".to_vec();
        stream.extend_from_slice(
            b"POST /b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n0\r\nX-T: 1\r\n\r\n",
        );
        stream.extend_from_slice(UPGRADE);
        let end = stream.len();
        stream.extend_from_slice(&[0x81, 0x80, 1, 2, 3, 4]);
        for cut in 0..=stream.len() {
            let got = requests(&stream, cut);
            let paths: Vec<_> = got.iter().map(|(p, _)| p.as_str()).collect();
            assert_eq!(paths, ["/a", "/b", "/chat"], "cut at {cut}");
            // The upgrade head ends exactly where the frames begin.
            assert_eq!(got[2].1, end, "cut at {cut}");
        }
    }

    #[test]
    fn response_101_followed_by_a_frame_in_the_same_segment() {
        let mut data = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n".to_vec();
        let head_len = data.len();
        data.extend_from_slice(&[0x81, 0x02, b'h', b'i']);
        let mut http = HttpStream::new(Role::Responses);
        let (event, used) = http.push(&data).unwrap().unwrap();
        assert_eq!(used, head_len);
        let HttpEvent::Response(r) = event else {
            panic!("not a response")
        };
        assert_eq!(r.status, 101);
    }

    #[test]
    fn binary_is_not_http() {
        let mut http = HttpStream::new(Role::Requests);
        assert_eq!(
            http.push(&[0x16, 0x03, 0x01, 0x00]).unwrap_err(),
            NotHttp::Garbage
        );
        let mut http = HttpStream::new(Role::Responses);
        assert_eq!(http.push(b"SSH-2.0-OpenSSH").unwrap_err(), NotHttp::Garbage);
    }

    #[test]
    fn huge_declared_body_lengths_are_skipped_not_buffered() {
        // Content-Length near 2^64, and a chunk size past 2^64 (not a number: the rest is body).
        for head in [
            &b"POST / HTTP/1.1\r\nContent-Length: 18446744073709551615\r\n\r\n"[..],
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffffffff\r\n",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffff0\r\n",
        ] {
            let mut http = HttpStream::new(Role::Requests);
            let (_, used) = http.push(head).unwrap().unwrap();
            assert!(http.push(&head[used..]).unwrap().is_none());
            for _ in 0..64 {
                assert!(http.push(&[b'x'; 65536]).unwrap().is_none());
            }
            assert!(http.head.capacity() == 0 && http.line.capacity() <= 1024);
        }
    }

    #[test]
    fn endless_head_is_capped() {
        let mut http = HttpStream::new(Role::Requests);
        assert!(http.push(b"GET / HTTP/1.1\r\n").unwrap().is_none());
        let filler = vec![b'a'; 4096];
        let mut result = Ok(None);
        for _ in 0..20 {
            result = http.push(&filler);
            if result.is_err() {
                break;
            }
        }
        assert_eq!(result.unwrap_err(), NotHttp::HeadTooLarge);
    }
}
