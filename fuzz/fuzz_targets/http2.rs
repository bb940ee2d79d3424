//! The HTTP/2 layer and the HPACK decoder. Input: mode, then records `[head, len_lo, len_hi]`
//! + bytes: head bit 0 is the side (client, server), bit 1 makes the record a gap of `len`
//! bytes (no bytes follow). Mode bits 0-1 pick the constructor (new, midstream, after an h2c
//! upgrade); bit 2 also decodes the rest of the input as one HPACK block, with and without
//! history. Checks: never a panic; bounded buffers; WebSocket DATA only on channels the layer
//! announced; and, without gaps, the same output when every record is pushed byte by byte.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wsprobe::diag::Side;
use wsprobe::stream::http2::{Http2Event, Http2Layer, hpack};
use wsprobe::stream::{Chunk, End, Layer, Out};
use wsprobe_fuzz::Choices;

enum Rec<'a> {
    Bytes(Side, &'a [u8]),
    Gap(Side, u64),
}

fn records<'a>(c: &mut Choices<'a>) -> Vec<Rec<'a>> {
    let mut recs = Vec::new();
    while !c.is_empty() {
        let head = c.byte();
        let len = usize::from(c.u16());
        let side = if head & 1 == 0 { Side::Client } else { Side::Server };
        if head & 2 != 0 {
            recs.push(Rec::Gap(side, len as u64 + 1));
        } else {
            recs.push(Rec::Bytes(side, c.take(len)));
        }
    }
    recs
}

fn layer(mode: u8) -> Http2Layer {
    match mode & 3 {
        1 => Http2Layer::midstream(),
        2 => Http2Layer::after_h2c_upgrade("GET", "/"),
        _ => Http2Layer::new(),
    }
}

#[derive(Debug, PartialEq)]
enum Item {
    Data(u32, Side, Vec<u8>),
    Gap(u32, Side, u64),
    Event(String),
}

fn run(mode: u8, recs: &[Rec<'_>], byte_by_byte: bool) -> Vec<Item> {
    let mut l = layer(mode);
    let mut items: Vec<Item> = Vec::new();
    let mut channels = std::collections::HashSet::new();
    let mut collect = |o: Out<'_, Http2Event>, items: &mut Vec<Item>| match o {
        Out::Data { channel, from, chunk } => {
            assert!(channels.contains(&channel), "DATA on unannounced stream {channel}");
            match chunk {
                Chunk::Data(d) => match items.last_mut() {
                    Some(Item::Data(c, s, acc)) if *c == channel && *s == from => {
                        acc.extend_from_slice(d)
                    }
                    _ => items.push(Item::Data(channel, from, d.to_vec())),
                },
                Chunk::Gap(n) => items.push(Item::Gap(channel, from, n)),
            }
        }
        Out::Event(e) => {
            match &e {
                Http2Event::WebSocketRequest { stream_id, .. }
                | Http2Event::ProbableWebSocket { stream_id, .. } => {
                    channels.insert(*stream_id);
                }
                _ => {}
            }
            let text = match &e {
                Http2Event::Diagnostic { stream_id, diagnostic } => {
                    format!("{stream_id:?} {:?} {}", diagnostic.id, diagnostic.message)
                }
                other => format!("{other:?}"),
            };
            items.push(Item::Event(text));
        }
    };
    for r in recs {
        match *r {
            Rec::Bytes(side, bytes) if byte_by_byte => {
                for b in bytes.chunks(1) {
                    l.push(side, 0.0, Chunk::Data(b), &mut |o| collect(o, &mut items));
                }
            }
            Rec::Bytes(side, bytes) => {
                l.push(side, 0.0, Chunk::Data(bytes), &mut |o| collect(o, &mut items))
            }
            Rec::Gap(side, n) => l.push(side, 0.0, Chunk::Gap(n), &mut |o| collect(o, &mut items)),
        }
        assert!(l.buffered_bytes() <= 2 * 1024 * 1024, "{}", l.buffered_bytes());
    }
    l.end(Side::Client, 1.0, End::Fin, &mut |o| collect(o, &mut items));
    l.end(Side::Server, 1.0, End::Rst, &mut |o| collect(o, &mut items));
    items
}

fuzz_target!(|data: &[u8]| {
    let mut c = Choices::new(data);
    let mode = c.byte();
    let rest = c.rest();
    if mode & 4 != 0 {
        for mut d in [hpack::Decoder::new(), hpack::Decoder::with_unknown_history()] {
            d.set_allowed_size(4096);
            let mut n = 0u64;
            let _ = d.decode(rest, |f| {
                n += 1;
                let _ = (f.name.map(<[u8]>::len), f.value.map(<[u8]>::len));
            });
            assert!(d.table().size() <= hpack::MAX_TABLE_BYTES);
            assert!(n <= rest.len() as u64);
        }
    }
    let mut c = Choices::new(rest);
    let recs = records(&mut c);
    let whole = run(mode, &recs, false);
    if !recs.iter().any(|r| matches!(r, Rec::Gap(..))) && rest.len() < 4096 {
        // The framing of DATA chunks differs, the merged content and the events do not.
        assert_eq!(run(mode, &recs, true), whole);
    }
});
