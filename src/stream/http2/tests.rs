//! The layer on hand-made conversations: a whole h2c exchange, chunking invariance, late
//! starts, gaps, and hostile input.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::frame::{encode_frame, flag, kind};
use super::summary::Http2Summary;
use super::*;

// ---- building bytes ----

fn int(first_bits: u8, prefix: u8, mut value: usize) -> Vec<u8> {
    let max = (1usize << prefix) - 1;
    if value < max {
        return vec![first_bits | value as u8];
    }
    let mut v = vec![first_bits | max as u8];
    value -= max;
    while value >= 128 {
        v.push((value % 128) as u8 | 0x80);
        value /= 128;
    }
    v.push(value as u8);
    v
}

fn string(s: &[u8]) -> Vec<u8> {
    let mut v = int(0, 7, s.len());
    v.extend_from_slice(s);
    v
}

/// Literal with incremental indexing, new name.
fn lit_idx(name: &str, value: &str) -> Vec<u8> {
    let mut v = vec![0x40];
    v.extend(string(name.as_bytes()));
    v.extend(string(value.as_bytes()));
    v
}

/// Literal with incremental indexing, name from the table.
fn lit_idx_name(index: usize, value: &str) -> Vec<u8> {
    let mut v = int(0x40, 6, index);
    v.extend(string(value.as_bytes()));
    v
}

/// Literal without indexing, new name.
fn lit(name: &str, value: &str) -> Vec<u8> {
    let mut v = vec![0x00];
    v.extend(string(name.as_bytes()));
    v.extend(string(value.as_bytes()));
    v
}

fn indexed(index: usize) -> Vec<u8> {
    int(0x80, 7, index)
}

fn settings(params: &[(u16, u32)]) -> Vec<u8> {
    let mut p = Vec::new();
    for (id, v) in params {
        p.extend_from_slice(&id.to_be_bytes());
        p.extend_from_slice(&v.to_be_bytes());
    }
    encode_frame(kind::SETTINGS, 0, 0, &p)
}

fn ws(opcode: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    crate::ws::frame::encode_frame(true, 0, opcode, mask, payload)
}

const MASK: Option<[u8; 4]> = Some([1, 2, 3, 4]);

fn connect_block(path: &str, authority_ref: Option<usize>) -> Vec<u8> {
    let mut b = lit_idx_name(2, "CONNECT");
    b.extend(lit_idx(":protocol", "websocket"));
    b.extend(indexed(6)); // :scheme http
    b.extend(lit_idx_name(4, path));
    match authority_ref {
        Some(i) => b.extend(indexed(i)),
        None => b.extend(lit_idx_name(1, "localhost:21080")),
    }
    b.extend(lit_idx("sec-websocket-version", "13"));
    b.extend(lit("sec-websocket-protocol", "chat"));
    b.extend(lit("sec-websocket-extensions", "permessage-deflate"));
    b
}

/// A whole h2c conversation as (sender, bytes) in capture order: an ordinary GET on stream 1,
/// a WebSocket on stream 3 (HEADERS with padding and priority, split by a CONTINUATION; DATA
/// with padding) reset by the client, a WebSocket on stream 5 closed by Close frames and
/// END_STREAM both ways, PINGs, a GOAWAY.
fn conversation() -> Vec<(Side, Vec<u8>)> {
    use Side::{Client as C, Server as S};
    let mut m = Vec::new();
    let mut preface = PREFACE.to_vec();
    preface.extend(settings(&[(0x2, 0), (0x4, 1 << 20)]));
    m.push((C, preface));
    let mut srv = settings(&[(0x3, 100), (0x8, 1)]);
    srv.extend(encode_frame(kind::SETTINGS, flag::ACK, 0, &[]));
    m.push((S, srv));
    // Stream 1: GET / with :authority inserted into the client's table (dynamic index 62).
    let mut get = encode_frame(kind::SETTINGS, flag::ACK, 0, &[]);
    let mut block = indexed(2);
    block.extend(indexed(6));
    block.extend(indexed(4));
    block.extend(lit_idx_name(1, "localhost:21080"));
    get.extend(encode_frame(
        kind::HEADERS,
        flag::END_STREAM | flag::END_HEADERS,
        1,
        &block,
    ));
    m.push((C, get));
    let mut resp = encode_frame(kind::HEADERS, flag::END_HEADERS, 1, &indexed(8));
    resp.extend(encode_frame(
        kind::DATA,
        flag::END_STREAM,
        1,
        b"<html></html>",
    ));
    m.push((S, resp));
    // Stream 3: extended CONNECT, PADDED + PRIORITY, then a CONTINUATION.
    let block = connect_block("/chat", Some(62 + 3));
    let (a, b) = block.split_at(7);
    let mut p = vec![3, 0, 0, 0, 0, 200];
    p.extend_from_slice(a);
    p.extend_from_slice(&[0, 0, 0]);
    let mut c3 = encode_frame(kind::HEADERS, flag::PADDED | flag::PRIORITY, 3, &p);
    c3.extend(encode_frame(kind::CONTINUATION, flag::END_HEADERS, 3, b));
    m.push((C, c3));
    let mut r3 = indexed(8);
    r3.extend(lit("sec-websocket-protocol", "chat"));
    m.push((S, encode_frame(kind::HEADERS, flag::END_HEADERS, 3, &r3)));
    let mut d = vec![4];
    d.extend(ws(1, b"hello", MASK));
    d.extend_from_slice(&[0; 4]);
    m.push((C, encode_frame(kind::DATA, flag::PADDED, 3, &d)));
    m.push((S, encode_frame(kind::DATA, 0, 3, &ws(1, b"hello", None))));
    // Stream 5: a second WebSocket; its headers come mostly from the dynamic table.
    let mut b5 = indexed(2 + 61 + 6 - 2); // ":method CONNECT" (inserted first of stream 3's)
    b5.truncate(0);
    b5.extend(lit_idx_name(2, "CONNECT"));
    b5.extend(lit_idx(":protocol", "websocket"));
    b5.extend(indexed(6));
    b5.extend(lit_idx_name(4, "/second"));
    b5.extend(lit_idx_name(1, "localhost:21080"));
    b5.extend(lit("sec-websocket-version", "13"));
    m.push((C, encode_frame(kind::HEADERS, flag::END_HEADERS, 5, &b5)));
    m.push((
        S,
        encode_frame(kind::HEADERS, flag::END_HEADERS, 5, &indexed(8)),
    ));
    let close = [0x03, 0xE8];
    m.push((C, encode_frame(kind::DATA, 0, 5, &ws(8, &close, MASK))));
    m.push((
        S,
        encode_frame(kind::DATA, flag::END_STREAM, 5, &ws(8, &close, None)),
    ));
    m.push((C, encode_frame(kind::DATA, flag::END_STREAM, 5, &[])));
    m.push((C, encode_frame(kind::PING, 0, 0, b"pingpong")));
    m.push((S, encode_frame(kind::PING, flag::ACK, 0, b"pingpong")));
    m.push((C, encode_frame(kind::RST_STREAM, 0, 3, &8u32.to_be_bytes())));
    let mut g = 5u32.to_be_bytes().to_vec();
    g.extend_from_slice(&0u32.to_be_bytes());
    m.push((S, encode_frame(kind::GOAWAY, 0, 0, &g)));
    m
}

// ---- running ----

#[derive(Debug, Clone, PartialEq, Eq)]
enum Item {
    Data(u32, Side, Vec<u8>),
    Gap(u32, Side, u64),
    Event(String),
}

#[derive(Debug, Default)]
struct Run {
    items: Vec<Item>,
    events: Vec<Http2Event>,
    summary: Http2Summary,
}

impl Run {
    fn data(&self, ch: u32, side: Side) -> Vec<u8> {
        let mut v = Vec::new();
        for i in &self.items {
            if let Item::Data(c, s, d) = i
                && *c == ch
                && *s == side
            {
                v.extend_from_slice(d);
            }
        }
        v
    }

    fn diags(&self) -> Vec<(DiagnosticId, Option<u32>, String)> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Http2Event::Diagnostic {
                    stream_id,
                    diagnostic,
                } => Some((diagnostic.id, *stream_id, diagnostic.message.clone())),
                _ => None,
            })
            .collect()
    }

    fn has_diag(&self, id: DiagnosticId) -> bool {
        self.diags().iter().any(|d| d.0 == id)
    }

    fn ends(&self, stream: u32) -> Vec<(Side, StreamEnd)> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Http2Event::StreamEnded {
                    stream_id,
                    from,
                    how,
                } if *stream_id == stream => Some((*from, *how)),
                _ => None,
            })
            .collect()
    }
}

fn collect(run: &mut Run, o: Out<'_, Http2Event>, time: f64) {
    match o {
        Out::Data {
            channel,
            from,
            chunk: Chunk::Data(d),
        } => match run.items.last_mut() {
            Some(Item::Data(c, s, acc)) if *c == channel && *s == from => acc.extend_from_slice(d),
            _ => run.items.push(Item::Data(channel, from, d.to_vec())),
        },
        Out::Data {
            channel,
            from,
            chunk: Chunk::Gap(n),
        } => run.items.push(Item::Gap(channel, from, n)),
        Out::Event(e) => {
            run.summary.observe(&e, time);
            let text = match &e {
                Http2Event::Diagnostic {
                    stream_id,
                    diagnostic,
                } => format!(
                    "diag {stream_id:?} {:?} {}",
                    diagnostic.id, diagnostic.message
                ),
                other => format!("{other:?}"),
            };
            run.items.push(Item::Event(text));
            run.events.push(e);
        }
    }
}

enum Piece<'a> {
    Bytes(Side, &'a [u8]),
    Gap(Side, u64),
    End(Side, End),
}

fn drive(mut layer: Http2Layer, pieces: &[Piece<'_>]) -> Run {
    let mut run = Run::default();
    for (i, p) in pieces.iter().enumerate() {
        let time = i as f64;
        match *p {
            Piece::Bytes(side, b) => layer.push(side, time, Chunk::Data(b), &mut |o| {
                collect(&mut run, o, time)
            }),
            Piece::Gap(side, n) => layer.push(side, time, Chunk::Gap(n), &mut |o| {
                collect(&mut run, o, time)
            }),
            Piece::End(side, how) => {
                layer.end(side, time, how, &mut |o| collect(&mut run, o, time))
            }
        }
    }
    run
}

fn whole(msgs: &[(Side, Vec<u8>)]) -> Vec<Piece<'_>> {
    let mut p: Vec<Piece<'_>> = msgs.iter().map(|(s, b)| Piece::Bytes(*s, b)).collect();
    p.push(Piece::End(Side::Client, End::Fin));
    p.push(Piece::End(Side::Server, End::Fin));
    p
}

// ---- tests ----

#[test]
fn preface_detection() {
    assert_eq!(
        is_client_preface(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0"),
        Some(true)
    );
    assert_eq!(is_client_preface(b"PRI * HT"), None);
    assert_eq!(is_client_preface(b""), None);
    assert_eq!(is_client_preface(b"GET / HTTP/1.1\r\n"), Some(false));
    assert_eq!(is_client_preface(&[0x16, 3, 1]), Some(false));
}

#[test]
fn whole_h2c_conversation() {
    let msgs = conversation();
    let run = drive(Http2Layer::new(), &whole(&msgs));
    assert!(run.diags().is_empty(), "{:?}", run.diags());
    // Only the WebSocket streams' DATA comes out, padding removed.
    assert_eq!(run.data(3, Side::Client), ws(1, b"hello", MASK));
    assert_eq!(run.data(3, Side::Server), ws(1, b"hello", None));
    assert_eq!(run.data(5, Side::Client), ws(8, &[0x03, 0xE8], MASK));
    assert_eq!(run.data(5, Side::Server), ws(8, &[0x03, 0xE8], None));
    assert!(run.data(1, Side::Server).is_empty());
    let reqs: Vec<_> = run
        .events
        .iter()
        .filter_map(|e| match e {
            Http2Event::WebSocketRequest { stream_id, head } => Some((*stream_id, head.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(reqs.len(), 2);
    let (sid, h3) = &reqs[0];
    assert_eq!(*sid, 3);
    assert_eq!(h3.path.as_deref(), Some("/chat"));
    // :authority came from the dynamic table entry stream 1 inserted.
    assert_eq!(h3.authority.as_deref(), Some("localhost:21080"));
    assert_eq!(h3.scheme.as_deref(), Some("http"));
    assert_eq!(h3.protocols, ["chat"]);
    assert_eq!(h3.extensions.as_deref(), Some("permessage-deflate"));
    assert!(h3.problems().is_empty(), "{:?}", h3.problems());
    assert_eq!(reqs[1].1.path.as_deref(), Some("/second"));
    let resp = run
        .events
        .iter()
        .find_map(|e| match e {
            Http2Event::WebSocketResponse { stream_id: 3, head } => Some(head.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(resp.status, Some(200));
    assert_eq!(resp.protocol.as_deref(), Some("chat"));
    // Endings.
    assert_eq!(
        run.ends(3),
        [(Side::Client, StreamEnd::Reset(ErrorCode::CANCEL))]
    );
    assert_eq!(
        run.ends(5),
        [
            (Side::Server, StreamEnd::EndStream),
            (Side::Client, StreamEnd::EndStream)
        ]
    );
    // The summary the report shows.
    let r3 = run.summary.stream(3).unwrap();
    assert_eq!(r3.end.as_deref(), Some("rst_stream CANCEL"));
    assert_eq!(r3.end_from, Some(Side::Client));
    assert!(r3.handshake_seen);
    let r5 = run.summary.stream(5).unwrap();
    assert_eq!(r5.end.as_deref(), Some("end_stream"));
    assert_eq!(r5.end_from, Some(Side::Server));
    assert!(r5.end_stream.client && r5.end_stream.server);
    let c = run.summary.connection();
    assert_eq!(c.enable_connect_protocol, Some(true));
    assert_eq!(c.websocket_streams, 2);
    assert_eq!(c.other_streams, 1);
    assert_eq!(c.other[0].method.as_deref(), Some("GET"));
    assert_eq!(c.other[0].path.as_deref(), Some("/"));
    assert_eq!(c.other[0].status, Some(200));
    assert_eq!(c.goaway.as_ref().unwrap().last_stream_id, 5);
    assert_eq!(c.pings.client, 1);
    assert!(!c.headers_unreadable && !c.decoding_stopped);
    assert_eq!(
        StreamEnd::Reset(ErrorCode::CANCEL).describe(Side::Client),
        "stream reset by the client (CANCEL)"
    );
}

fn split_at_cuts<'a>(msgs: &'a [(Side, Vec<u8>)], cuts: &[usize]) -> Vec<Piece<'a>> {
    let mut pieces = Vec::new();
    let mut k = 0;
    for (side, bytes) in msgs {
        let mut rest = &bytes[..];
        while !rest.is_empty() {
            let c = cuts.get(k).copied().unwrap_or(usize::MAX);
            k += 1;
            let n = (c % (rest.len() + 1)).max(1).min(rest.len());
            pieces.push(Piece::Bytes(*side, &rest[..n]));
            rest = &rest[n..];
        }
    }
    pieces.push(Piece::End(Side::Client, End::Fin));
    pieces.push(Piece::End(Side::Server, End::Fin));
    pieces
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    #[test]
    fn chunking_does_not_change_the_output(cuts in prop::collection::vec(1usize..64, 0..400)) {
        let msgs = conversation();
        let reference = drive(Http2Layer::new(), &whole(&msgs)).items;
        let got = drive(Http2Layer::new(), &split_at_cuts(&msgs, &cuts)).items;
        prop_assert_eq!(got, reference);
    }
}

#[test]
fn byte_by_byte_equals_whole() {
    let msgs = conversation();
    let reference = drive(Http2Layer::new(), &whole(&msgs)).items;
    let got = drive(Http2Layer::new(), &split_at_cuts(&msgs, &[1; 10_000])).items;
    assert_eq!(got, reference);
}

#[test]
fn connect_without_the_setting_is_diagnosed() {
    let mut m = Vec::new();
    let mut c = PREFACE.to_vec();
    c.extend(settings(&[]));
    m.push((Side::Client, c));
    m.push((Side::Server, settings(&[(0x3, 100)])));
    m.push((
        Side::Client,
        encode_frame(
            kind::HEADERS,
            flag::END_HEADERS,
            1,
            &connect_block("/ws", None),
        ),
    ));
    let run = drive(Http2Layer::new(), &whole(&m));
    let d = run.diags();
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!(d[0].0, DiagnosticId::H2ConnectWithoutSetting);
    assert_eq!(d[0].1, Some(1));
    assert!(
        d[0].2
            .contains("do not include SETTINGS_ENABLE_CONNECT_PROTOCOL"),
        "{}",
        d[0].2
    );
    assert_eq!(run.summary.connection().enable_connect_protocol, None);
    // The stream is still a WebSocket stream; TCP's end ends it.
    assert_eq!(
        run.ends(1),
        [
            (Side::Client, StreamEnd::Transport(End::Fin)),
            (Side::Server, StreamEnd::Transport(End::Fin))
        ]
    );
    assert_eq!(run.summary.stream(1).unwrap().end, None);
}

#[test]
fn refused_extended_connect() {
    let mut m = conversation();
    m.truncate(4);
    m.push((
        Side::Client,
        encode_frame(
            kind::HEADERS,
            flag::END_HEADERS,
            3,
            &connect_block("/nope", None),
        ),
    ));
    let mut r = indexed(13); // 404
    r.truncate(0);
    r.extend(lit_idx_name(8, "403"));
    let mut s = encode_frame(kind::HEADERS, flag::END_HEADERS, 3, &r);
    s.extend(encode_frame(kind::DATA, flag::END_STREAM, 3, b"forbidden"));
    m.push((Side::Server, s));
    let run = drive(Http2Layer::new(), &whole(&m));
    let resp = run
        .events
        .iter()
        .find_map(|e| match e {
            Http2Event::WebSocketResponse { head, .. } => Some(head.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(resp.status, Some(403));
    assert!(!resp.is_success());
    // The error body is not WebSocket data.
    assert!(run.data(3, Side::Server).is_empty());
}

#[test]
fn h2c_upgrade_starts_with_stream_one() {
    // After `Upgrade: h2c` + 101: the server's SETTINGS first, then its response on stream 1.
    let mut m = Vec::new();
    let mut s = settings(&[(0x8, 1)]);
    s.extend(encode_frame(
        kind::HEADERS,
        flag::END_HEADERS | flag::END_STREAM,
        1,
        &indexed(8),
    ));
    m.push((Side::Server, s));
    let mut c = PREFACE.to_vec();
    c.extend(settings(&[]));
    c.extend(encode_frame(
        kind::HEADERS,
        flag::END_HEADERS,
        3,
        &connect_block("/ws", None),
    ));
    c.extend(encode_frame(kind::DATA, 0, 3, &ws(2, &[1, 2, 3], MASK)));
    m.push((Side::Client, c));
    let run = drive(Http2Layer::after_h2c_upgrade("GET", "/"), &whole(&m));
    assert!(run.diags().is_empty(), "{:?}", run.diags());
    let c = run.summary.connection();
    assert_eq!(c.other_streams, 1);
    assert_eq!(c.other[0].status, Some(200));
    assert_eq!(c.other[0].path.as_deref(), Some("/"));
    assert_eq!(run.data(3, Side::Client), ws(2, &[1, 2, 3], MASK));
}

/// The conversation's bytes after its first `skip` messages, as a capture that started late.
#[test]
fn late_start_recognises_websocket_streams_by_their_data() {
    let msgs = conversation();
    // Start after stream 3's HEADERS and response: its DATA is the first thing seen.
    let late: Vec<(Side, Vec<u8>)> = msgs[6..].to_vec();
    let run = drive(Http2Layer::new(), &whole(&late));
    let ids: Vec<_> = run.diags().iter().map(|d| d.0).collect();
    assert!(ids.contains(&DiagnosticId::MidstreamStart), "{ids:?}");
    assert!(ids.contains(&DiagnosticId::H2HandshakeNotSeen), "{ids:?}");
    assert!(!ids.contains(&DiagnosticId::H2ProtocolError), "{ids:?}");
    assert!(run.events.iter().any(|e| matches!(
        e,
        Http2Event::ProbableWebSocket {
            stream_id: 3,
            from: Side::Client
        }
    )));
    assert_eq!(run.data(3, Side::Client), ws(1, b"hello", MASK));
    assert_eq!(run.data(3, Side::Server), ws(1, b"hello", None));
    // Stream 5's headers use only the static table and literals: readable.
    assert_eq!(run.data(5, Side::Client), ws(8, &[0x03, 0xE8], MASK));
    let r3 = run.summary.stream(3).unwrap();
    assert!(!r3.handshake_seen);
    assert_eq!(r3.end.as_deref(), Some("rst_stream CANCEL"));
    assert!(run.summary.stream(5).unwrap().handshake_seen);
}

#[test]
fn late_start_with_unknown_table_entries() {
    // A capture starting after the client's table got :authority (index 62): a CONNECT whose
    // :path and :protocol are readable but :authority is not still counts as a WebSocket.
    let mut b = lit_idx_name(2, "CONNECT");
    b.extend(lit_idx(":protocol", "websocket"));
    b.extend(indexed(7));
    b.extend(lit_idx_name(4, "/late"));
    b.extend(indexed(62 + 4)); // refers past the 4 entries inserted in this block
    let m = vec![
        (
            Side::Client,
            encode_frame(kind::HEADERS, flag::END_HEADERS, 7, &b),
        ),
        (
            Side::Server,
            encode_frame(kind::HEADERS, flag::END_HEADERS, 7, &indexed(8)),
        ),
        (
            Side::Client,
            encode_frame(kind::DATA, 0, 7, &ws(1, b"x", MASK)),
        ),
    ];
    let run = drive(Http2Layer::midstream(), &whole(&m));
    let ids: Vec<_> = run.diags().iter().map(|d| d.0).collect();
    assert_eq!(
        ids,
        [
            DiagnosticId::MidstreamStart,
            DiagnosticId::H2HeadersUnreadable
        ],
        "{:?}",
        run.diags()
    );
    let head = run
        .events
        .iter()
        .find_map(|e| match e {
            Http2Event::WebSocketRequest { head, .. } => Some(head.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(head.path.as_deref(), Some("/late"));
    assert_eq!(head.unknown_fields, 1);
    assert_eq!(run.data(7, Side::Client), ws(1, b"x", MASK));
}

#[test]
fn gap_inside_data_keeps_alignment() {
    let msgs = conversation();
    // Cut the server's DATA on stream 3 (9-byte header + 7-byte frame) by a 3-byte hole.
    let i = msgs
        .iter()
        .position(|(s, b)| {
            *s == Side::Server && b == &encode_frame(kind::DATA, 0, 3, &ws(1, b"hello", None))
        })
        .unwrap();
    let mut pieces: Vec<Piece<'_>> = Vec::new();
    for (k, (side, bytes)) in msgs.iter().enumerate() {
        if k == i {
            pieces.push(Piece::Bytes(*side, &bytes[..11]));
            pieces.push(Piece::Gap(*side, 3));
            pieces.push(Piece::Bytes(*side, &bytes[14..]));
        } else {
            pieces.push(Piece::Bytes(*side, bytes));
        }
    }
    let run = drive(Http2Layer::new(), &pieces);
    assert!(run.diags().is_empty(), "{:?}", run.diags());
    assert!(run.items.contains(&Item::Gap(3, Side::Server, 3)));
    let frame = ws(1, b"hello", None);
    let mut want = frame[..2].to_vec();
    want.extend_from_slice(&frame[5..]);
    assert_eq!(run.data(3, Side::Server), want);
    // Later frames are still read: stream 5 closes cleanly.
    assert_eq!(
        run.summary.stream(5).unwrap().end.as_deref(),
        Some("end_stream")
    );
}

#[test]
fn gap_across_frames_resynchronises() {
    let msgs = conversation();
    // The client loses the end of stream 3's DATA frame, stream 5's HEADERS and the start of
    // its first DATA; the conversation keeps its order.
    let data3 = 6;
    assert!(msgs[data3].0 == Side::Client && msgs[data3].1[3] == kind::DATA);
    let close5 = 10;
    assert!(msgs[close5].0 == Side::Client && msgs[close5].1[8] == 5);
    let mut pieces = Vec::new();
    for (k, (side, bytes)) in msgs.iter().enumerate() {
        match k {
            k if k == data3 => {
                pieces.push(Piece::Bytes(*side, &bytes[..20]));
                let mut lost = (bytes.len() - 20) as u64;
                for (s2, b2) in &msgs[k + 1..close5] {
                    if *s2 == Side::Client {
                        lost += b2.len() as u64;
                    }
                }
                lost += 4;
                pieces.push(Piece::Gap(*side, lost));
            }
            k if k > data3 && k < close5 && *side == Side::Client => {}
            k if k == close5 => pieces.push(Piece::Bytes(*side, &bytes[4..])),
            _ => pieces.push(Piece::Bytes(*side, bytes)),
        }
    }
    pieces.push(Piece::End(Side::Client, End::Fin));
    pieces.push(Piece::End(Side::Server, End::Fin));
    let run = drive(Http2Layer::new(), &pieces);
    let ids: Vec<_> = run.diags().iter().map(|d| d.0).collect();
    assert!(
        ids.contains(&DiagnosticId::H2FrameResync),
        "{:?}",
        run.diags()
    );
    assert!(
        !ids.contains(&DiagnosticId::H2ProtocolError),
        "{:?}",
        run.diags()
    );
    // The RST_STREAM after the hole is read again.
    assert_eq!(
        run.summary.stream(3).unwrap().end.as_deref(),
        Some("rst_stream CANCEL")
    );
    // Stream 3's client side was told it lost bytes.
    assert!(
        run.items
            .iter()
            .any(|i| matches!(i, Item::Gap(3, Side::Client, _)))
    );
}

// ---- hostile input ----

fn open_connection() -> Vec<(Side, Vec<u8>)> {
    let mut c = PREFACE.to_vec();
    c.extend(settings(&[]));
    vec![(Side::Client, c), (Side::Server, settings(&[(0x8, 1)]))]
}

#[test]
fn huge_header_block_is_capped() {
    let mut m = open_connection();
    // 1 MiB of header block: HEADERS + 64 CONTINUATIONs of 16 KiB.
    let chunk = vec![0x82u8; 16 * 1024];
    let mut c = encode_frame(kind::HEADERS, 0, 1, &chunk);
    for i in 0..64 {
        let f = if i == 63 { flag::END_HEADERS } else { 0 };
        c.extend(encode_frame(kind::CONTINUATION, f, 1, &chunk));
    }
    // A WebSocket on stream 3 afterwards still works (literal fields only).
    c.extend(encode_frame(
        kind::HEADERS,
        flag::END_HEADERS,
        3,
        &connect_block("/after", None),
    ));
    c.extend(encode_frame(kind::DATA, 0, 3, &ws(1, b"ok", MASK)));
    m.push((Side::Client, c));
    let mut layer = Http2Layer::new();
    let mut run = Run::default();
    for (side, b) in &m {
        layer.push(*side, 0.0, Chunk::Data(b), &mut |o| {
            collect(&mut run, o, 0.0)
        });
        for d in &layer.dirs {
            assert!(d.block_buf.capacity() <= MAX_HEADER_BLOCK + 64 * 1024);
            assert!(d.payload.capacity() <= 64 * 1024 + 16 * 1024);
        }
    }
    let d = run.diags();
    assert!(
        d.iter()
            .any(|d| d.0 == DiagnosticId::LimitExceeded && d.2.contains("larger than 256 KiB")),
        "{d:?}"
    );
    assert!(!run.has_diag(DiagnosticId::H2ProtocolError));
    assert_eq!(run.data(3, Side::Client), ws(1, b"ok", MASK));
}

#[test]
fn endless_continuation_is_capped() {
    let mut m = open_connection();
    let mut c = encode_frame(kind::HEADERS, 0, 1, &[0x82]);
    for _ in 0..5000 {
        c.extend(encode_frame(kind::CONTINUATION, 0, 1, &[]));
    }
    m.push((Side::Client, c));
    let mut layer = Http2Layer::new();
    let mut run = Run::default();
    for (side, b) in &m {
        layer.push(*side, 0.0, Chunk::Data(b), &mut |o| {
            collect(&mut run, o, 0.0)
        });
    }
    assert!(layer.dirs[0].block_buf.capacity() <= 4096);
    layer.end(Side::Client, 1.0, End::Fin, &mut |o| {
        collect(&mut run, o, 1.0)
    });
    let d = run.diags();
    assert!(
        d.iter()
            .any(|d| d.0 == DiagnosticId::LimitExceeded && d.2.contains("CONTINUATION flood")),
        "{d:?}"
    );
    assert!(
        d.iter()
            .any(|d| d.0 == DiagnosticId::CaptureEndedMidFrame && d.2.contains("header block")),
        "{d:?}"
    );
}

#[test]
fn table_size_attack_is_capped() {
    let mut m = open_connection();
    // Size update to 2^32-1 (above the server's default 4096 setting), then 1 MiB of entries.
    let mut block = int(0x20, 5, u32::MAX as usize);
    let value = "v".repeat(1000);
    for i in 0..100 {
        block.extend(lit_idx(&format!("k{i}"), &value));
    }
    let mut c = Vec::new();
    let mut rest = &block[..];
    let mut first = true;
    while !rest.is_empty() {
        let n = rest.len().min(16 * 1024);
        let end = if n == rest.len() {
            flag::END_HEADERS
        } else {
            0
        };
        let k = if first {
            kind::HEADERS
        } else {
            kind::CONTINUATION
        };
        c.extend(encode_frame(
            k,
            end | if first { flag::END_STREAM } else { 0 },
            1,
            &rest[..n],
        ));
        rest = &rest[n..];
        first = false;
    }
    m.push((Side::Client, c));
    let mut layer = Http2Layer::new();
    let mut run = Run::default();
    for (side, b) in &m {
        layer.push(*side, 0.0, Chunk::Data(b), &mut |o| {
            collect(&mut run, o, 0.0)
        });
    }
    assert!(layer.dirs[0].decoder.table().size() <= hpack::MAX_TABLE_BYTES);
    let d = run.diags();
    assert!(
        d.iter().any(|d| d.0 == DiagnosticId::H2HpackError
            && d.2.contains("exceeds the SETTINGS_HEADER_TABLE_SIZE")),
        "{d:?}"
    );
    assert!(
        d.iter()
            .any(|d| d.0 == DiagnosticId::LimitExceeded
                && d.2.contains("HPACK table holds more than")),
        "{d:?}"
    );
}

#[test]
fn malformed_frames_stop_decoding_without_panicking() {
    for (what, bad) in [
        (
            "SETTINGS on a stream",
            encode_frame(kind::SETTINGS, 0, 1, &[]),
        ),
        ("PING of 7 bytes", encode_frame(kind::PING, 0, 0, &[0; 7])),
        ("DATA on stream 0", encode_frame(kind::DATA, 0, 0, b"x")),
        (
            "lone CONTINUATION",
            encode_frame(kind::CONTINUATION, flag::END_HEADERS, 1, &[0x82]),
        ),
        (
            "bad padding",
            encode_frame(kind::DATA, flag::PADDED, 1, &[200, 1]),
        ),
    ] {
        let mut m = open_connection();
        let mut c = encode_frame(
            kind::HEADERS,
            flag::END_HEADERS,
            1,
            &connect_block("/ws", None),
        );
        c.extend(bad);
        c.extend(encode_frame(kind::DATA, 0, 1, &ws(1, b"never", MASK)));
        m.push((Side::Client, c));
        let run = drive(Http2Layer::new(), &whole(&m));
        let d = run.diags();
        assert_eq!(d.len(), 1, "{what}: {d:?}");
        assert_eq!(d[0].0, DiagnosticId::H2ProtocolError, "{what}");
        assert!(d[0].2.contains("stops here"), "{what}: {}", d[0].2);
        assert!(run.data(1, Side::Client).is_empty(), "{what}");
        assert_eq!(
            run.ends(1),
            [
                (Side::Client, StreamEnd::Undecodable),
                (Side::Server, StreamEnd::Undecodable)
            ],
            "{what}"
        );
        assert!(run.summary.connection().decoding_stopped);
    }
}

#[test]
fn bad_hpack_stops_header_decoding_of_that_direction_only() {
    let mut m = open_connection();
    let mut c = encode_frame(
        kind::HEADERS,
        flag::END_HEADERS,
        1,
        &connect_block("/ws", None),
    );
    // Index 200 does not exist.
    c.extend(encode_frame(
        kind::HEADERS,
        flag::END_HEADERS,
        3,
        &indexed(200),
    ));
    c.extend(encode_frame(kind::DATA, 0, 1, &ws(1, b"still", MASK)));
    m.push((Side::Client, c));
    let run = drive(Http2Layer::new(), &whole(&m));
    let d = run.diags();
    assert_eq!(d[0].0, DiagnosticId::H2HpackError, "{d:?}");
    assert!(d[0].2.contains("refers to table index 200"), "{}", d[0].2);
    assert_eq!(run.data(1, Side::Client), ws(1, b"still", MASK));
}

#[test]
fn goaway_refuses_higher_streams() {
    let mut m = open_connection();
    let mut c = encode_frame(
        kind::HEADERS,
        flag::END_HEADERS,
        1,
        &connect_block("/a", None),
    );
    c.extend(encode_frame(
        kind::HEADERS,
        flag::END_HEADERS,
        3,
        &connect_block("/b", None),
    ));
    m.push((Side::Client, c));
    let mut g = 1u32.to_be_bytes().to_vec();
    g.extend_from_slice(&0xbu32.to_be_bytes());
    g.extend_from_slice(b"calm down");
    m.push((Side::Server, encode_frame(kind::GOAWAY, 0, 0, &g)));
    let run = drive(Http2Layer::new(), &whole(&m));
    let goaway = StreamEnd::GoAway {
        last_stream_id: 1,
        error: ErrorCode(0xb),
    };
    assert_eq!(run.ends(3), [(Side::Server, goaway)]);
    // Stream 1 stays open until the transport ends, then the GOAWAY is its cause.
    assert_eq!(
        run.ends(1),
        [(Side::Server, goaway), (Side::Server, goaway)]
    );
    let d = run.diags();
    assert!(
        d.iter().any(|d| d.0 == DiagnosticId::H2GoawayError
            && d.2.contains("ENHANCE_YOUR_CALM")
            && d.2.contains("calm down")),
        "{d:?}"
    );
    assert_eq!(
        run.summary.stream(3).unwrap().end.as_deref(),
        Some("goaway")
    );
}

#[test]
fn stream_reset_with_an_error_code_is_diagnosed() {
    let mut m = open_connection();
    let mut c = encode_frame(
        kind::HEADERS,
        flag::END_HEADERS,
        1,
        &connect_block("/a", None),
    );
    c.extend(encode_frame(kind::RST_STREAM, 0, 1, &2u32.to_be_bytes()));
    m.push((Side::Client, c));
    let run = drive(Http2Layer::new(), &whole(&m));
    let d = run.diags();
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].0, DiagnosticId::H2StreamReset);
    assert_eq!(
        d[0].2,
        "WebSocket stream 1 reset by the client (INTERNAL_ERROR)"
    );
}

#[test]
fn garbage_is_not_http2() {
    let noise: Vec<u8> = (0..3_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let m = [(Side::Client, noise)];
    let mut layer = Http2Layer::new();
    let mut run = Run::default();
    for chunk in m[0].1.chunks(1460) {
        layer.push(Side::Client, 0.0, Chunk::Data(chunk), &mut |o| {
            collect(&mut run, o, 0.0)
        });
        assert!(layer.dirs[0].hunt.len() <= HUNT_WINDOW);
    }
    assert!(layer.is_stopped());
    let d = run.diags();
    assert!(
        d.iter().any(|d| d.2.contains("no HTTP/2 frames found")),
        "{d:?}"
    );
}

#[test]
fn websocket_probe() {
    assert!(looks_like_websocket(&ws(1, b"hello", MASK), Side::Client));
    assert!(!looks_like_websocket(&ws(1, b"hello", MASK), Side::Server));
    assert!(looks_like_websocket(&ws(2, &[0; 300], None), Side::Server));
    // A frame that continues in the next DATA.
    assert!(looks_like_websocket(
        &ws(2, &[0; 300], None)[..100],
        Side::Server
    ));
    let mut two = ws(1, b"a", None);
    two.extend(ws(9, b"p", None));
    assert!(looks_like_websocket(&two, Side::Server));
    for body in [
        &b"<!DOCTYPE html>"[..],
        b"{\"a\":1}",
        &[0x1f, 0x8b, 8, 0],
        b"HTTP/1.1",
    ] {
        assert!(!looks_like_websocket(body, Side::Server), "{body:?}");
        assert!(!looks_like_websocket(body, Side::Client), "{body:?}");
    }
    // A valid first frame followed by bytes that are not frames.
    let mut bad = ws(1, b"a", None);
    bad.extend_from_slice(b"<html>");
    assert!(!looks_like_websocket(&bad, Side::Server));
}

#[test]
fn every_event_has_been_exercised_in_the_summary() {
    // The summary keeps at most MAX_ORDINARY_KEPT ordinary streams but counts them all.
    let mut m = open_connection();
    let mut c = Vec::new();
    for i in 0..100u32 {
        let mut b = indexed(2);
        b.extend(indexed(4));
        c.extend(encode_frame(
            kind::HEADERS,
            flag::END_HEADERS | flag::END_STREAM,
            2 * i + 1,
            &b,
        ));
    }
    m.push((Side::Client, c));
    let run = drive(Http2Layer::new(), &whole(&m));
    let conn = run.summary.connection();
    assert_eq!(conn.other_streams, 100);
    assert_eq!(conn.other.len(), streams::MAX_ORDINARY_KEPT);
    let _ = BTreeMap::<u32, u32>::new();
}
