//! What the fuzz targets share: reading the fuzzer's choices from the front of an input, the
//! frame-event contract, and the runners of the pipeline and connection targets (also used by
//! `examples/make_seeds.rs` to write inputs in the same format).
//!
//! Input formats (every byte string is valid; missing choice bytes read as 0):
//! - `frame`:      mode, nsplits, nsplits x (u16 size, flags), stream bytes.
//! - `http`:       role, nsplits, nsplits x (u16 size, flags), stream bytes.
//! - `capture`:    the capture file, as is.
//! - `pipeline`:   mode, config, then a whole capture file (mode bit 0 clear) or a pcap body
//!   after a fixed 24-byte header whose link type the mode chooses (bit 0 set).
//! - `connection`: handshake, config, then records `[head, len]` + bytes, see [`run_connection`].

use std::io::Read;

use wsprobe::analysis::AnalysisOptions;
use wsprobe::capture::file::read_capture;
use wsprobe::connection::{Connection, ConnectionConfig, Context, DEFAULT_MAX_LISTED_BYTES};
use wsprobe::decode::{Endpoint, Segment};
use wsprobe::ws::message::{MessageLimits, PayloadMode};
use wsprobe::pipeline::{Pipeline, TableLimits};
use wsprobe::record::Sink;
use wsprobe::report::json::JsonReport;
use wsprobe::report::jsonl::JsonlReport;
use wsprobe::report::table::{TableOptions, TableReport};
use wsprobe::tcp::reassembly::ReassemblyLimits;
use wsprobe::ws::framer::FrameEvent;

/// The fuzzer's choices at the front of an input; reads past the end give zeros.
pub struct Choices<'a> {
    data: &'a [u8],
}

impl<'a> Choices<'a> {
    /// Choices read from the front of `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Choices { data }
    }

    /// The next byte (0 past the end).
    pub fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    /// The next little-endian u16.
    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.byte(), self.byte()])
    }

    /// Up to `n` next bytes.
    pub fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.data.split_at(n.min(self.data.len()));
        self.data = rest;
        head
    }

    /// Nothing left to read.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Everything not read yet.
    pub fn rest(self) -> &'a [u8] {
        self.data
    }
}

/// One piece of a split stream: bytes, then optionally a gap of lost bytes.
#[derive(Debug, Clone, Copy)]
pub struct Piece<'a> {
    /// Bytes pushed.
    pub bytes: &'a [u8],
    /// Bytes lost after them (0: none).
    pub gap: u64,
}

/// Reads `nsplits` and the split table, then cuts the rest of the input into pieces: the last
/// piece is whatever the table did not claim. Gap lengths come from the flags byte: 0 none,
/// 0xFF a huge gap (2^40 bytes), else `flags >> 1` when bit 0 is set.
pub fn split<'a>(c: &mut Choices<'a>, allow_gaps: bool) -> Vec<Piece<'a>> {
    let n = usize::from(c.byte() % 16);
    let mut table = Vec::with_capacity(n);
    for _ in 0..n {
        let size = usize::from(c.u16());
        let flags = c.byte();
        let gap = match flags {
            _ if !allow_gaps => 0,
            0xFF => 1 << 40,
            f if f & 1 == 1 => u64::from(f >> 1),
            _ => 0,
        };
        table.push((size, gap));
    }
    let mut data = std::mem::replace(c, Choices::new(&[])).rest();
    let mut pieces = Vec::with_capacity(n + 1);
    for (size, gap) in table {
        let (bytes, rest) = data.split_at(size.min(data.len()));
        data = rest;
        pieces.push(Piece { bytes, gap });
    }
    pieces.push(Piece {
        bytes: data,
        gap: 0,
    });
    pieces
}

/// The framer's event contract (see `wsprobe::ws::framer`): a frame is `Header`, payload chunks
/// and gaps adding up to exactly its length, then `End`; frames never nest; `Invalid`,
/// `Resynced` and `Unsynced` only come between frames; `Truncated` closes an open frame.
#[derive(Debug, Default)]
pub struct FrameContract {
    open: Option<u64>,
    /// Headers seen.
    pub headers: u64,
}

impl FrameContract {
    /// Checks one event; panics when the contract is broken.
    pub fn check(&mut self, e: &FrameEvent<'_>) {
        match *e {
            FrameEvent::Header(h) => {
                assert!(self.open.is_none(), "header inside a frame: {h:?}");
                assert!(
                    h.payload_len < 1 << 63,
                    "length with the top bit set: {h:?}"
                );
                assert!((2..=14).contains(&h.header_len), "{h:?}");
                self.open = Some(h.payload_len);
                self.headers += 1;
            }
            FrameEvent::Payload(p) => {
                let left = self.open.as_mut().expect("payload outside a frame");
                *left = left
                    .checked_sub(p.len() as u64)
                    .expect("payload longer than the frame");
            }
            FrameEvent::PayloadGap { len } => {
                let left = self.open.as_mut().expect("payload gap outside a frame");
                *left = left
                    .checked_sub(len)
                    .expect("payload gap longer than the frame");
            }
            FrameEvent::End => assert_eq!(self.open.take(), Some(0), "End before the payload"),
            FrameEvent::Truncated { .. } => self.open = None,
            // Capture times of replayed bytes: anywhere, even inside a frame.
            FrameEvent::At(_) => {}
            FrameEvent::Invalid { .. }
            | FrameEvent::Resynced { .. }
            | FrameEvent::Unsynced { .. } => {
                assert!(self.open.is_none(), "{e:?} inside a frame")
            }
        }
    }
}

/// Analysis settings chosen by one byte: payload mode (bits 0-1), messages kept in the record
/// or streamed as events (bit 2), tiny limits (bit 3) so that every limit is hit.
pub fn config_from(flags: u8) -> ConnectionConfig {
    let payload = match flags & 3 {
        0 => PayloadMode::None,
        1 => PayloadMode::Preview(64),
        2 => PayloadMode::Full,
        _ => PayloadMode::Preview(0),
    };
    let tiny = flags & 8 != 0;
    ConnectionConfig {
        analysis: AnalysisOptions {
            keep_messages: flags & 4 == 0,
            message_events: flags & 4 != 0,
            keep_frames: flags & 16 != 0,
            frame_events: flags & 16 != 0,
            payload,
            app: wsprobe::app::AppSelection::auto(),
            redact: flags & 32 == 0,
        },
        payload,
        message_limits: if tiny {
            MessageLimits {
                max_kept_bytes: 100,
                max_inflated_bytes: 1000,
                max_inflaters: 1,
            }
        } else {
            MessageLimits::default()
        },
        reassembly: if tiny {
            ReassemblyLimits {
                max_buffered_bytes: 256,
                max_buffered_segments: 4,
                // A short grace window, so the late-data paths are reached.
                late_packets: 2,
                late_seconds: 0.001,
            }
        } else {
            ReassemblyLimits::default()
        },
        max_listed_bytes: if tiny { 1000 } else { DEFAULT_MAX_LISTED_BYTES },
        listed_freed_on_finish: flags & 0x80 == 0,
        // No spool: it stores the records the analysis made (its own tests cover it), and
        // fuzzing runs would only make temporary files.
        spool: None,
    }
}

/// A reporter writing nowhere: json, jsonl or table by `which` (the table at a width and
/// layout `which` also picks, so that every fitting step of the layout is exercised).
pub fn null_sink(which: u8) -> Box<dyn Sink> {
    let out = Box::new(std::io::sink());
    match which % 3 {
        0 => Box::new(JsonReport::new(out, false)),
        1 => Box::new(JsonlReport::new(out, false)),
        _ => Box::new(TableReport::new(
            out,
            TableOptions {
                colour: which & 0x80 != 0,
                messages: true,
                width: 20 + usize::from(which) * 7 % 200,
                wide: which & 0x40 != 0,
                filtered: None,
            },
        )),
    }
}

/// Link types for the pipeline target's body mode.
const LINKS: [u32; 8] = [1, 101, 113, 276, 0, 228, 229, 108];

/// A classic pcap header (little-endian, microseconds) for `link`.
pub fn pcap_header(link: u32) -> [u8; 24] {
    let mut h = [0u8; 24];
    h[..4].copy_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    h[4..6].copy_from_slice(&2u16.to_le_bytes());
    h[6..8].copy_from_slice(&4u16.to_le_bytes());
    h[16..20].copy_from_slice(&262_144u32.to_le_bytes());
    h[20..24].copy_from_slice(&link.to_le_bytes());
    h
}

/// The whole pipeline (capture reader, decode, flow table, every stage, a reporter) on one input.
pub fn run_pipeline(data: &[u8]) {
    let mut c = Choices::new(data);
    let mode = c.byte();
    let flags = c.byte();
    let rest = c.rest();
    let file: Vec<u8> = if mode & 1 == 0 {
        rest.to_vec()
    } else {
        let link = LINKS[usize::from(mode >> 1) % LINKS.len()];
        [&pcap_header(link)[..], rest].concat()
    };
    let config = config_from(flags);
    let table = TableLimits {
        max_connections: if flags & 0x10 != 0 { 2 } else { 100_000 },
        ..TableLimits::default()
    };
    let mut sink = null_sink(flags >> 5);
    let (inputs, summary) = {
        let mut pipeline = Pipeline::new(sink.as_mut(), config, table);
        let result = read_capture(
            std::io::Cursor::new(&file[..]),
            "fuzz",
            |p| {
                let _ = pipeline.packet(p);
            },
            |_| {},
        );
        let summary = pipeline.finish_all();
        (result.ok().into_iter().collect::<Vec<_>>(), summary)
    };
    sink.finish(&inputs, &summary).expect("writing to io::sink");
}

/// Reads a capture in pieces of at most `chunk` bytes, as a pipe would deliver it.
pub struct Trickle<'a> {
    /// What is left.
    pub data: &'a [u8],
    /// Largest read.
    pub chunk: usize,
}

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(self.chunk).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

/// The handshakes `run_connection` can start with (input byte 0, modulo the count).
pub const HANDSHAKES: [&str; 5] = [
    "",
    "permessage-deflate",
    "permessage-deflate; client_no_context_takeover; server_no_context_takeover",
    "permessage-deflate; client_max_window_bits=9; server_max_window_bits=10",
    "x-unknown-extension",
];

/// Handshake choices: 0..5 the `HANDSHAKES` (after a SYN exchange), 5 none (a mid-stream
/// capture), 6 none after a SYN exchange (the records carry their own heads).
pub const HANDSHAKE_CHOICES: u8 = 7;

/// One record of the connection target: `head` bit 7 = from the server; bits 5-6 = kind
/// (0 data, 1 a hole of `len` bytes, 2 a retransmission of the direction's last segment,
/// 3 FIN, or RST when `len` is odd); `len` = (head & 0x1F) << 8 | next byte.
pub fn encode_records(out: &mut Vec<u8>, from_server: bool, bytes: &[u8]) {
    for chunk in bytes.chunks(0x1FFF) {
        let len = chunk.len();
        out.push(u8::from(from_server) << 7 | (len >> 8) as u8);
        out.push(len as u8);
        out.extend_from_slice(chunk);
    }
}

/// One TCP connection (client 10.0.0.1:50000, server 10.0.0.2:80) driven segment by segment:
/// every stage from reassembly to the record, with handshakes the fuzzer need not find.
pub fn run_connection(data: &[u8]) {
    let mut c = Choices::new(data);
    let handshake = c.byte() % HANDSHAKE_CHOICES;
    let flags = c.byte();
    let config = config_from(flags);
    let endpoint = |last: u8, port: u16| {
        let mut addr = [0u8; 16];
        addr[10] = 0xFF;
        addr[11] = 0xFF;
        addr[12..].copy_from_slice(&[10, 0, 0, last]);
        Endpoint { addr, port }
    };
    let client = endpoint(1, 50_000);
    let server = endpoint(2, 80);
    let mut sink = null_sink(flags >> 5);
    let record = {
        let mut ctx = Context::new(sink.as_mut(), config);
        let mut conn = Connection::new(0, client, server, 1.0, &config);
        let mut tcp = Tcp {
            next: [1000, 5000],
            last: [Vec::new(), Vec::new()],
            time: 1.0,
            client,
            server,
        };
        if handshake != 5 {
            tcp.send(&mut conn, &mut ctx, false, Flags::Syn, &[]);
            tcp.send(&mut conn, &mut ctx, true, Flags::Syn, &[]);
        }
        if let Some(ext) = HANDSHAKES.get(usize::from(handshake)) {
            let offer = if ext.is_empty() {
                String::new()
            } else {
                format!("Sec-WebSocket-Extensions: {ext}\r\n")
            };
            let request = format!(
                "GET /fuzz HTTP/1.1\r\nHost: fuzz\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{offer}\r\n"
            );
            let response = format!(
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n{offer}\r\n"
            );
            tcp.send(&mut conn, &mut ctx, false, Flags::None, request.as_bytes());
            tcp.send(&mut conn, &mut ctx, true, Flags::None, response.as_bytes());
        }
        while !c.is_empty() {
            let head = c.byte();
            let len_lo = c.byte();
            let len = usize::from(head & 0x1F) << 8 | usize::from(len_lo);
            let from_server = head & 0x80 != 0;
            let dir = usize::from(from_server);
            match (head >> 5) & 3 {
                0 => {
                    let bytes = c.take(len);
                    if bytes.is_empty() {
                        continue;
                    }
                    tcp.send(&mut conn, &mut ctx, from_server, Flags::None, bytes);
                }
                1 => tcp.next[dir] = tcp.next[dir].wrapping_add(len as u32),
                2 => {
                    let last = std::mem::take(&mut tcp.last[dir]);
                    let seq = tcp.next[dir].wrapping_sub(last.len() as u32);
                    tcp.segment(&mut conn, &mut ctx, from_server, seq, Flags::None, &last);
                    tcp.last[dir] = last;
                }
                _ => {
                    let flag = if len & 1 == 1 { Flags::Rst } else { Flags::Fin };
                    tcp.send(&mut conn, &mut ctx, from_server, flag, &[]);
                    if conn.ended() {
                        // The flow table would start a new connection for what follows.
                        break;
                    }
                }
            }
        }
        conn.finish(None, &mut ctx)
    };
    if let Some(record) = record {
        serde_json::to_string(&record).expect("a record serializes");
        sink.connection(record);
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Flags {
    None,
    Syn,
    Fin,
    Rst,
}

struct Tcp {
    next: [u32; 2],
    last: [Vec<u8>; 2],
    time: f64,
    client: Endpoint,
    server: Endpoint,
}

impl Tcp {
    fn send(
        &mut self,
        conn: &mut Connection,
        ctx: &mut Context<'_>,
        from_server: bool,
        flags: Flags,
        payload: &[u8],
    ) {
        let dir = usize::from(from_server);
        let seq = if flags == Flags::Syn {
            self.next[dir].wrapping_sub(1)
        } else {
            self.next[dir]
        };
        self.segment(conn, ctx, from_server, seq, flags, payload);
        self.next[dir] = self.next[dir]
            .wrapping_add(payload.len() as u32)
            .wrapping_add(u32::from(flags == Flags::Fin));
        self.last[dir] = payload.to_vec();
    }

    fn segment(
        &mut self,
        conn: &mut Connection,
        ctx: &mut Context<'_>,
        from_server: bool,
        seq: u32,
        flags: Flags,
        payload: &[u8],
    ) {
        self.time += 0.001;
        let dir = usize::from(from_server);
        let (src, dst) = if from_server {
            (self.server, self.client)
        } else {
            (self.client, self.server)
        };
        let syn = flags == Flags::Syn;
        let seg = Segment {
            src,
            dst,
            seq,
            ack: self.next[1 - dir],
            // The client's SYN carries no ACK.
            ack_flag: !(syn && !from_server),
            syn,
            fin: flags == Flags::Fin,
            rst: flags == Flags::Rst,
            payload,
        };
        conn.on_segment(&seg, !from_server, self.time, ctx);
    }
}

/// The `app` target: the application-protocol stage fed hostile messages. Input: a protocol
/// choice byte (auto, or one forced decoder), a handshake choice byte (selected subprotocol /
/// URL hints), then records `[head, len]` + `len` bytes: head bit 0 = from the server, bit 1 =
/// binary, bit 2 = a Close frame instead (its code from the payload), bit 3 = incomplete.
pub fn run_app(data: &[u8]) {
    use wsprobe::app::{AppSelection, AppSession, Input};
    use wsprobe::diag::Side;

    const NAMES: [&str; 12] = [
        "auto", "socket.io", "graphql-transport-ws", "subscriptions-transport-ws", "stomp",
        "sockjs", "mqtt", "signalr", "json-rpc", "phoenix", "actioncable", "tunnel",
    ];
    const HANDSHAKES: [(&str, Option<&str>); 6] = [
        ("/", None),
        ("/socket.io/?EIO=4&transport=websocket", None),
        ("/socket.io/?EIO=3&transport=websocket", None),
        ("/graphql", Some("graphql-ws")),
        ("/socket/websocket?vsn=2.0.0", None),
        ("/stomp/123/abc/websocket", Some("v12.stomp")),
    ];
    let mut c = Choices::new(data);
    let name = NAMES[c.byte() as usize % NAMES.len()];
    let selection = AppSelection::parse(&[name.to_string()]).expect("bug: fuzz names parse");
    let mut session = AppSession::new(selection, true);
    let (path, sub) = HANDSHAKES[c.byte() as usize % HANDSHAKES.len()];
    session.handshake_request(path, &sub.map(|s| vec![s.to_string()]).unwrap_or_default());
    session.handshake_response(101, true, sub, 0.0);
    let mut time = 0.0;
    while !c.is_empty() {
        let head = c.byte();
        let len = c.byte() as usize * 4;
        let payload = c.take(len);
        time += 0.25;
        let from = if head & 1 != 0 { Side::Server } else { Side::Client };
        if head & 4 != 0 {
            let code = u16::from_be_bytes([*payload.first().unwrap_or(&3), *payload.get(1).unwrap_or(&232)]);
            let _ = session.close_frame(from, time, code, payload.get(2..).unwrap_or(&[]));
            continue;
        }
        let complete = head & 8 == 0;
        let input = Input {
            from,
            time,
            binary: head & 2 != 0,
            payload,
            length: payload.len() as u64 + if complete { 0 } else { u64::from(head >> 4) * 1000 },
            complete,
        };
        for decoded in session.message(&input).into_iter().flatten() {
            let _ = decoded.record();
            let _ = serde_json::to_string(&decoded.record()).expect("bug: app record serializes");
        }
    }
    let end = session.finish(Some((Side::Server, time + 1.0, false)), time + 1.0);
    if let Some(record) = end.record {
        serde_json::to_string(&record).expect("bug: app record serializes");
    }
}
