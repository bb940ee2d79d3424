//! HTTP/2 frames (RFC 9113 §4 and §6): the 9-byte header and the payload of each frame type.

use nom::IResult;
use nom::Parser;
use nom::bytes::complete::take;
use nom::number::complete::{be_u8, be_u16, be_u24, be_u32};

/// Bytes of a frame header.
pub const HEADER_LEN: usize = 9;

/// SETTINGS_MAX_FRAME_SIZE's initial value (RFC 9113 §6.5.2).
pub const DEFAULT_MAX_FRAME_SIZE: u32 = 16_384;

/// The client connection preface (RFC 9113 §3.4).
pub const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Frame type codes (RFC 9113 §6).
pub mod kind {
    /// DATA.
    pub const DATA: u8 = 0x0;
    /// HEADERS.
    pub const HEADERS: u8 = 0x1;
    /// PRIORITY.
    pub const PRIORITY: u8 = 0x2;
    /// RST_STREAM.
    pub const RST_STREAM: u8 = 0x3;
    /// SETTINGS.
    pub const SETTINGS: u8 = 0x4;
    /// PUSH_PROMISE.
    pub const PUSH_PROMISE: u8 = 0x5;
    /// PING.
    pub const PING: u8 = 0x6;
    /// GOAWAY.
    pub const GOAWAY: u8 = 0x7;
    /// WINDOW_UPDATE.
    pub const WINDOW_UPDATE: u8 = 0x8;
    /// CONTINUATION.
    pub const CONTINUATION: u8 = 0x9;
}

/// Frame flags (RFC 9113 §6).
pub mod flag {
    /// DATA, HEADERS: the sender's last frame on the stream.
    pub const END_STREAM: u8 = 0x1;
    /// SETTINGS, PING: an acknowledgement.
    pub const ACK: u8 = 0x1;
    /// HEADERS, PUSH_PROMISE, CONTINUATION: the header block is complete.
    pub const END_HEADERS: u8 = 0x4;
    /// DATA, HEADERS, PUSH_PROMISE: a pad length octet and padding.
    pub const PADDED: u8 = 0x8;
    /// HEADERS: exclusive flag, stream dependency and weight.
    pub const PRIORITY: u8 = 0x20;
}

/// The name of a frame type, for messages.
pub fn kind_name(kind: u8) -> &'static str {
    match kind {
        kind::DATA => "DATA",
        kind::HEADERS => "HEADERS",
        kind::PRIORITY => "PRIORITY",
        kind::RST_STREAM => "RST_STREAM",
        kind::SETTINGS => "SETTINGS",
        kind::PUSH_PROMISE => "PUSH_PROMISE",
        kind::PING => "PING",
        kind::GOAWAY => "GOAWAY",
        kind::WINDOW_UPDATE => "WINDOW_UPDATE",
        kind::CONTINUATION => "CONTINUATION",
        _ => "unknown",
    }
}

/// An error code of RST_STREAM and GOAWAY (RFC 9113 §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ErrorCode(pub u32);

impl ErrorCode {
    /// NO_ERROR.
    pub const NO_ERROR: ErrorCode = ErrorCode(0x0);
    /// PROTOCOL_ERROR.
    pub const PROTOCOL_ERROR: ErrorCode = ErrorCode(0x1);
    /// CANCEL: the stream is no longer needed (what a browser sends when a page goes away).
    pub const CANCEL: ErrorCode = ErrorCode(0x8);

    /// The registered name, or the number in hex.
    pub fn name(self) -> std::borrow::Cow<'static, str> {
        let name = match self.0 {
            0x0 => "NO_ERROR",
            0x1 => "PROTOCOL_ERROR",
            0x2 => "INTERNAL_ERROR",
            0x3 => "FLOW_CONTROL_ERROR",
            0x4 => "SETTINGS_TIMEOUT",
            0x5 => "STREAM_CLOSED",
            0x6 => "FRAME_SIZE_ERROR",
            0x7 => "REFUSED_STREAM",
            0x8 => "CANCEL",
            0x9 => "COMPRESSION_ERROR",
            0xa => "CONNECT_ERROR",
            0xb => "ENHANCE_YOUR_CALM",
            0xc => "INADEQUATE_SECURITY",
            0xd => "HTTP_1_1_REQUIRED",
            n => return format!("0x{n:x}").into(),
        };
        name.into()
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name())
    }
}

/// A frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// Payload length.
    pub length: u32,
    /// Frame type.
    pub kind: u8,
    /// Flags.
    pub flags: u8,
    /// Stream identifier (the reserved bit cleared).
    pub stream_id: u32,
    /// The reserved bit was set (RFC 9113 §4.1: ignored on receipt).
    pub reserved_bit: bool,
}

impl FrameHeader {
    /// Is `f` set?
    pub fn has(&self, f: u8) -> bool {
        self.flags & f != 0
    }
}

fn header(input: &[u8]) -> IResult<&[u8], FrameHeader> {
    let (rest, (length, kind, flags, sid)) = (be_u24, be_u8, be_u8, be_u32).parse(input)?;
    Ok((
        rest,
        FrameHeader {
            length,
            kind,
            flags,
            stream_id: sid & 0x7FFF_FFFF,
            reserved_bit: sid & 0x8000_0000 != 0,
        },
    ))
}

/// Parses a frame header from the first 9 bytes; `None` when fewer are given.
pub fn parse_header(input: &[u8]) -> Option<FrameHeader> {
    header(input).ok().map(|(_, h)| h)
}

/// Stream dependency and weight (RFC 9113 §5.3.2, deprecated but still sent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Priority {
    /// Exclusive flag.
    pub exclusive: bool,
    /// The stream depended on.
    pub depends_on: u32,
    /// Weight minus one.
    pub weight: u8,
}

/// One SETTINGS parameter (RFC 9113 §6.5.2, RFC 8441 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setting {
    /// SETTINGS_HEADER_TABLE_SIZE (0x1).
    HeaderTableSize(u32),
    /// SETTINGS_ENABLE_PUSH (0x2).
    EnablePush(u32),
    /// SETTINGS_MAX_CONCURRENT_STREAMS (0x3).
    MaxConcurrentStreams(u32),
    /// SETTINGS_INITIAL_WINDOW_SIZE (0x4).
    InitialWindowSize(u32),
    /// SETTINGS_MAX_FRAME_SIZE (0x5).
    MaxFrameSize(u32),
    /// SETTINGS_MAX_HEADER_LIST_SIZE (0x6).
    MaxHeaderListSize(u32),
    /// SETTINGS_ENABLE_CONNECT_PROTOCOL (0x8, RFC 8441).
    EnableConnectProtocol(u32),
    /// SETTINGS_NO_RFC7540_PRIORITIES (0x9, RFC 9218).
    NoRfc7540Priorities(u32),
    /// Anything else (ignored on receipt, RFC 9113 §6.5.2).
    Other(u16, u32),
}

impl Setting {
    fn new(id: u16, value: u32) -> Setting {
        match id {
            0x1 => Setting::HeaderTableSize(value),
            0x2 => Setting::EnablePush(value),
            0x3 => Setting::MaxConcurrentStreams(value),
            0x4 => Setting::InitialWindowSize(value),
            0x5 => Setting::MaxFrameSize(value),
            0x6 => Setting::MaxHeaderListSize(value),
            0x8 => Setting::EnableConnectProtocol(value),
            0x9 => Setting::NoRfc7540Priorities(value),
            _ => Setting::Other(id, value),
        }
    }

    /// A value that RFC 9113 §6.5.2 or RFC 8441 §3 forbids, as a message.
    pub fn problem(&self) -> Option<String> {
        match *self {
            Setting::EnablePush(v) if v > 1 => {
                Some(format!("SETTINGS_ENABLE_PUSH is {v}, not 0 or 1"))
            }
            Setting::InitialWindowSize(v) if v > 0x7FFF_FFFF => Some(format!(
                "SETTINGS_INITIAL_WINDOW_SIZE is {v}, above 2^31-1 (a FLOW_CONTROL_ERROR)"
            )),
            Setting::MaxFrameSize(v) if !(16_384..=16_777_215).contains(&v) => Some(format!(
                "SETTINGS_MAX_FRAME_SIZE is {v}, outside 16384..16777215"
            )),
            Setting::EnableConnectProtocol(v) if v > 1 => Some(format!(
                "SETTINGS_ENABLE_CONNECT_PROTOCOL is {v}, not 0 or 1 (RFC 8441 §3)"
            )),
            _ => None,
        }
    }
}

/// A parsed frame; DATA is streamed by the layer, but parses here too (tests, small frames).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame<'a> {
    /// DATA, padding removed.
    Data {
        /// Stream.
        stream_id: u32,
        /// END_STREAM.
        end_stream: bool,
        /// The data.
        data: &'a [u8],
        /// Padding octets removed (plus the pad length octet when PADDED).
        padding: u32,
    },
    /// HEADERS: a header block fragment, padding and priority removed.
    Headers {
        /// Stream.
        stream_id: u32,
        /// END_STREAM.
        end_stream: bool,
        /// END_HEADERS.
        end_headers: bool,
        /// Priority fields, when the PRIORITY flag is set.
        priority: Option<Priority>,
        /// The fragment.
        fragment: &'a [u8],
    },
    /// PRIORITY.
    Priority {
        /// Stream.
        stream_id: u32,
        /// Its priority.
        priority: Priority,
    },
    /// RST_STREAM.
    RstStream {
        /// Stream.
        stream_id: u32,
        /// Why.
        error: ErrorCode,
    },
    /// SETTINGS.
    Settings {
        /// ACK flag (then no parameters).
        ack: bool,
        /// Parameters, in order.
        params: Vec<Setting>,
    },
    /// PUSH_PROMISE.
    PushPromise {
        /// The stream it belongs to.
        stream_id: u32,
        /// END_HEADERS.
        end_headers: bool,
        /// The stream it reserves.
        promised_id: u32,
        /// Header block fragment.
        fragment: &'a [u8],
    },
    /// PING.
    Ping {
        /// ACK flag.
        ack: bool,
        /// Opaque data.
        payload: [u8; 8],
    },
    /// GOAWAY.
    GoAway {
        /// Highest stream the sender may have processed.
        last_stream_id: u32,
        /// Why.
        error: ErrorCode,
        /// Additional debug data.
        debug: &'a [u8],
    },
    /// WINDOW_UPDATE.
    WindowUpdate {
        /// Stream (0: the connection).
        stream_id: u32,
        /// Window size increment.
        increment: u32,
    },
    /// CONTINUATION.
    Continuation {
        /// Stream.
        stream_id: u32,
        /// END_HEADERS.
        end_headers: bool,
        /// Header block fragment.
        fragment: &'a [u8],
    },
    /// A type this parser does not know (RFC 9113 §4.1: ignored).
    Unknown {
        /// Type code.
        kind: u8,
        /// Stream.
        stream_id: u32,
    },
}

/// A frame that breaks RFC 9113 (a connection error for the receiving peer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameError {
    /// The error code a peer would send: PROTOCOL_ERROR or FRAME_SIZE_ERROR.
    pub code: ErrorCode,
    /// What is wrong.
    pub message: String,
}

fn err(code: u32, message: String) -> FrameError {
    FrameError {
        code: ErrorCode(code),
        message,
    }
}

/// Checks what the header alone can show: the stream identifier each type needs and the fixed
/// payload lengths (RFC 9113 §6).
pub fn check_header(h: &FrameHeader) -> Result<(), FrameError> {
    let name = kind_name(h.kind);
    let on_stream = matches!(
        h.kind,
        kind::DATA
            | kind::HEADERS
            | kind::PRIORITY
            | kind::RST_STREAM
            | kind::PUSH_PROMISE
            | kind::CONTINUATION
    );
    let on_connection = matches!(h.kind, kind::SETTINGS | kind::PING | kind::GOAWAY);
    if on_stream && h.stream_id == 0 {
        return Err(err(1, format!("{name} frame on stream 0")));
    }
    if on_connection && h.stream_id != 0 {
        return Err(err(
            1,
            format!("{name} frame on stream {} (only stream 0)", h.stream_id),
        ));
    }
    let fixed = match h.kind {
        kind::PRIORITY => Some(5),
        kind::RST_STREAM | kind::WINDOW_UPDATE => Some(4),
        kind::PING => Some(8),
        _ => None,
    };
    if let Some(n) = fixed
        && h.length != n
    {
        return Err(err(
            6,
            format!("{name} frame of {} bytes (must be {n})", h.length),
        ));
    }
    if h.kind == kind::SETTINGS {
        if h.has(flag::ACK) && h.length != 0 {
            return Err(err(6, format!("SETTINGS ACK with {} bytes", h.length)));
        }
        if !h.length.is_multiple_of(6) {
            return Err(err(
                6,
                format!("SETTINGS of {} bytes (not a multiple of 6)", h.length),
            ));
        }
    }
    if h.has(flag::PADDED)
        && matches!(h.kind, kind::DATA | kind::HEADERS | kind::PUSH_PROMISE)
        && h.length == 0
    {
        return Err(err(6, format!("padded {name} frame without a pad length")));
    }
    if h.kind == kind::GOAWAY && h.length < 8 {
        return Err(err(6, format!("GOAWAY of {} bytes (at least 8)", h.length)));
    }
    Ok(())
}

/// Strips PADDED padding: returns the content and the bytes of padding (pad length octet
/// included).
fn unpad<'a>(h: &FrameHeader, payload: &'a [u8]) -> Result<(&'a [u8], u32), FrameError> {
    if !h.has(flag::PADDED) {
        return Ok((payload, 0));
    }
    let Some((&pad, rest)) = payload.split_first() else {
        return Err(err(
            6,
            format!("padded {} frame without a pad length", kind_name(h.kind)),
        ));
    };
    if usize::from(pad) > rest.len() {
        return Err(err(
            1,
            format!(
                "{} frame with {pad} bytes of padding in a {}-byte payload",
                kind_name(h.kind),
                payload.len()
            ),
        ));
    }
    Ok((&rest[..rest.len() - usize::from(pad)], u32::from(pad) + 1))
}

fn priority(input: &[u8]) -> IResult<&[u8], Priority> {
    let (rest, (dep, weight)) = (be_u32, be_u8).parse(input)?;
    Ok((
        rest,
        Priority {
            exclusive: dep & 0x8000_0000 != 0,
            depends_on: dep & 0x7FFF_FFFF,
            weight,
        },
    ))
}

/// Parses a whole frame payload (`payload.len() == h.length`).
pub fn parse_payload<'a>(h: &FrameHeader, payload: &'a [u8]) -> Result<Frame<'a>, FrameError> {
    check_header(h)?;
    let short = || err(6, format!("{} frame too short", kind_name(h.kind)));
    let stream_id = h.stream_id;
    Ok(match h.kind {
        kind::DATA => {
            let (data, padding) = unpad(h, payload)?;
            Frame::Data {
                stream_id,
                end_stream: h.has(flag::END_STREAM),
                data,
                padding,
            }
        }
        kind::HEADERS => {
            let (mut fragment, _) = unpad(h, payload)?;
            let mut prio = None;
            if h.has(flag::PRIORITY) {
                let (rest, p) = priority(fragment).map_err(|_| short())?;
                fragment = rest;
                prio = Some(p);
            }
            Frame::Headers {
                stream_id,
                end_stream: h.has(flag::END_STREAM),
                end_headers: h.has(flag::END_HEADERS),
                priority: prio,
                fragment,
            }
        }
        kind::PRIORITY => {
            let (_, priority) = priority(payload).map_err(|_| short())?;
            Frame::Priority {
                stream_id,
                priority,
            }
        }
        kind::RST_STREAM => {
            let (_, code) = be_u32::<_, nom::error::Error<&[u8]>>(payload).map_err(|_| short())?;
            Frame::RstStream {
                stream_id,
                error: ErrorCode(code),
            }
        }
        kind::SETTINGS => {
            let mut params = Vec::with_capacity(payload.len() / 6);
            let mut rest = payload;
            while !rest.is_empty() {
                let (r, (id, value)) = (be_u16::<_, nom::error::Error<&[u8]>>, be_u32)
                    .parse(rest)
                    .map_err(|_| short())?;
                params.push(Setting::new(id, value));
                rest = r;
            }
            Frame::Settings {
                ack: h.has(flag::ACK),
                params,
            }
        }
        kind::PUSH_PROMISE => {
            let (content, _) = unpad(h, payload)?;
            let (fragment, promised) =
                be_u32::<_, nom::error::Error<&[u8]>>(content).map_err(|_| short())?;
            Frame::PushPromise {
                stream_id,
                end_headers: h.has(flag::END_HEADERS),
                promised_id: promised & 0x7FFF_FFFF,
                fragment,
            }
        }
        kind::PING => {
            let (_, data) =
                take::<_, _, nom::error::Error<&[u8]>>(8usize)(payload).map_err(|_| short())?;
            let mut p = [0u8; 8];
            p.copy_from_slice(data);
            Frame::Ping {
                ack: h.has(flag::ACK),
                payload: p,
            }
        }
        kind::GOAWAY => {
            let (debug, (last, code)) = (be_u32::<_, nom::error::Error<&[u8]>>, be_u32)
                .parse(payload)
                .map_err(|_| short())?;
            Frame::GoAway {
                last_stream_id: last & 0x7FFF_FFFF,
                error: ErrorCode(code),
                debug,
            }
        }
        kind::WINDOW_UPDATE => {
            let (_, inc) = be_u32::<_, nom::error::Error<&[u8]>>(payload).map_err(|_| short())?;
            let increment = inc & 0x7FFF_FFFF;
            if increment == 0 {
                return Err(err(1, "WINDOW_UPDATE with an increment of 0".into()));
            }
            Frame::WindowUpdate {
                stream_id,
                increment,
            }
        }
        kind::CONTINUATION => Frame::Continuation {
            stream_id,
            end_headers: h.has(flag::END_HEADERS),
            fragment: payload,
        },
        kind => Frame::Unknown { kind, stream_id },
    })
}

/// Flags each type defines; others must be ignored, but a frame header found while
/// resynchronising that sets them is unlikely to be one.
pub fn defined_flags(kind: u8) -> Option<u8> {
    Some(match kind {
        kind::DATA => flag::END_STREAM | flag::PADDED,
        kind::HEADERS => flag::END_STREAM | flag::END_HEADERS | flag::PADDED | flag::PRIORITY,
        kind::PRIORITY | kind::RST_STREAM | kind::GOAWAY | kind::WINDOW_UPDATE => 0,
        kind::SETTINGS | kind::PING => flag::ACK,
        kind::PUSH_PROMISE => flag::END_HEADERS | flag::PADDED,
        kind::CONTINUATION => flag::END_HEADERS,
        _ => return None,
    })
}

/// Encodes a frame header (tests, fuzz seeds).
pub fn encode_header(length: u32, kind: u8, flags: u8, stream_id: u32) -> [u8; HEADER_LEN] {
    let l = length.to_be_bytes();
    let s = stream_id.to_be_bytes();
    [l[1], l[2], l[3], kind, flags, s[0], s[1], s[2], s[3]]
}

/// Encodes a whole frame (tests, fuzz seeds).
pub fn encode_frame(kind: u8, flags: u8, stream_id: u32, payload: &[u8]) -> Vec<u8> {
    let mut v = encode_header(payload.len() as u32, kind, flags, stream_id).to_vec();
    v.extend_from_slice(payload);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(bytes: &[u8]) -> Result<Frame<'_>, FrameError> {
        let h = parse_header(bytes).unwrap();
        assert_eq!(h.length as usize, bytes.len() - HEADER_LEN);
        parse_payload(&h, &bytes[HEADER_LEN..])
    }

    #[test]
    fn header_fields() {
        let h = parse_header(&[0x00, 0x01, 0x02, 0x01, 0x25, 0x80, 0x00, 0x00, 0x03]).unwrap();
        assert_eq!(
            h,
            FrameHeader {
                length: 258,
                kind: kind::HEADERS,
                flags: 0x25,
                stream_id: 3,
                reserved_bit: true
            }
        );
        assert!(parse_header(&[0; 8]).is_none());
        assert_eq!(encode_header(258, 1, 0x25, 3)[..5], [0, 1, 2, 1, 0x25]);
    }

    #[test]
    fn settings_with_enable_connect_protocol() {
        let mut p = Vec::new();
        for (id, v) in [(0x3u16, 100u32), (0x4, 65535), (0x8, 1), (0xabcd, 7)] {
            p.extend_from_slice(&id.to_be_bytes());
            p.extend_from_slice(&v.to_be_bytes());
        }
        let f = encode_frame(kind::SETTINGS, 0, 0, &p);
        assert_eq!(
            parse(&f).unwrap(),
            Frame::Settings {
                ack: false,
                params: vec![
                    Setting::MaxConcurrentStreams(100),
                    Setting::InitialWindowSize(65535),
                    Setting::EnableConnectProtocol(1),
                    Setting::Other(0xabcd, 7)
                ]
            }
        );
        assert!(parse(&encode_frame(kind::SETTINGS, flag::ACK, 0, &[])).is_ok());
        let e = parse(&encode_frame(kind::SETTINGS, 0, 0, &[0; 5])).unwrap_err();
        assert_eq!(e.code.name(), "FRAME_SIZE_ERROR");
        let e = parse(&encode_frame(kind::SETTINGS, 0, 1, &[])).unwrap_err();
        assert_eq!(e.code, ErrorCode::PROTOCOL_ERROR);
        assert!(Setting::EnableConnectProtocol(2).problem().is_some());
        assert!(Setting::MaxFrameSize(100).problem().is_some());
    }

    #[test]
    fn headers_with_padding_and_priority() {
        // PADDED + PRIORITY: pad length 3, dependency (exclusive) on 1, weight 15, fragment, padding.
        let mut p = vec![3, 0x80, 0, 0, 1, 15];
        p.extend_from_slice(&[0x82, 0x84]);
        p.extend_from_slice(&[0, 0, 0]);
        let f = encode_frame(
            kind::HEADERS,
            flag::PADDED | flag::PRIORITY | flag::END_HEADERS,
            5,
            &p,
        );
        assert_eq!(
            parse(&f).unwrap(),
            Frame::Headers {
                stream_id: 5,
                end_stream: false,
                end_headers: true,
                priority: Some(Priority {
                    exclusive: true,
                    depends_on: 1,
                    weight: 15
                }),
                fragment: &[0x82, 0x84],
            }
        );
        // Padding longer than the payload.
        let f = encode_frame(kind::HEADERS, flag::PADDED, 5, &[9, 0x82]);
        assert_eq!(parse(&f).unwrap_err().code, ErrorCode::PROTOCOL_ERROR);
        // PRIORITY flag without room for its fields.
        let f = encode_frame(kind::HEADERS, flag::PRIORITY, 5, &[0, 0]);
        assert!(parse(&f).is_err());
    }

    #[test]
    fn data_with_padding() {
        let f = encode_frame(
            kind::DATA,
            flag::PADDED | flag::END_STREAM,
            3,
            &[2, b'h', b'i', 0, 0],
        );
        assert_eq!(
            parse(&f).unwrap(),
            Frame::Data {
                stream_id: 3,
                end_stream: true,
                data: b"hi",
                padding: 3
            }
        );
        // All padding, no data: allowed.
        let f = encode_frame(kind::DATA, flag::PADDED, 3, &[1, 0]);
        assert!(matches!(parse(&f).unwrap(), Frame::Data { data: &[], .. }));
        assert!(parse(&encode_frame(kind::DATA, 0, 0, b"x")).is_err());
    }

    #[test]
    fn control_frames() {
        let f = encode_frame(kind::RST_STREAM, 0, 3, &8u32.to_be_bytes());
        assert_eq!(
            parse(&f).unwrap(),
            Frame::RstStream {
                stream_id: 3,
                error: ErrorCode::CANCEL
            }
        );
        assert_eq!(ErrorCode::CANCEL.name(), "CANCEL");
        assert_eq!(ErrorCode(0x42).name(), "0x42");
        let mut g = 0x8000_0005u32.to_be_bytes().to_vec();
        g.extend_from_slice(&0u32.to_be_bytes());
        g.extend_from_slice(b"bye");
        assert_eq!(
            parse(&encode_frame(kind::GOAWAY, 0, 0, &g)).unwrap(),
            Frame::GoAway {
                last_stream_id: 5,
                error: ErrorCode::NO_ERROR,
                debug: b"bye"
            }
        );
        assert!(parse(&encode_frame(kind::GOAWAY, 0, 0, &[0; 7])).is_err());
        assert_eq!(
            parse(&encode_frame(kind::PING, flag::ACK, 0, b"12345678")).unwrap(),
            Frame::Ping {
                ack: true,
                payload: *b"12345678"
            }
        );
        assert!(parse(&encode_frame(kind::PING, 0, 0, b"1234567")).is_err());
        assert_eq!(
            parse(&encode_frame(
                kind::WINDOW_UPDATE,
                0,
                0,
                &0x8000_0100u32.to_be_bytes()
            ))
            .unwrap(),
            Frame::WindowUpdate {
                stream_id: 0,
                increment: 256
            }
        );
        assert!(parse(&encode_frame(kind::WINDOW_UPDATE, 0, 1, &[0; 4])).is_err());
        assert!(matches!(
            parse(&encode_frame(kind::PRIORITY, 0, 3, &[0, 0, 0, 1, 200])).unwrap(),
            Frame::Priority { stream_id: 3, .. }
        ));
        let mut pp = vec![1, 0, 0, 0, 4, 0x82, 0];
        pp[0] = 1;
        assert_eq!(
            parse(&encode_frame(
                kind::PUSH_PROMISE,
                flag::PADDED | flag::END_HEADERS,
                1,
                &pp
            ))
            .unwrap(),
            Frame::PushPromise {
                stream_id: 1,
                end_headers: true,
                promised_id: 4,
                fragment: &[0x82]
            }
        );
        assert_eq!(
            parse(&encode_frame(0xfa, 0xff, 7, b"whatever")).unwrap(),
            Frame::Unknown {
                kind: 0xfa,
                stream_id: 7
            }
        );
    }
}
