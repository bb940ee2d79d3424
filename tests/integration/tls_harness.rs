//! Runs wsprobe's TLS layer over the reassembled TCP streams of a capture (library API: capture
//! reader, decoder, reassembler, `TlsLayer`), without the connection driver: one `TlsLayer` per
//! TCP connection, the client being the side that talks to a server port.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use wsprobe::capture::file::read_capture_with_secrets;
use wsprobe::decode::decode;
use wsprobe::diag::{DiagnosticId, Side};
use wsprobe::record::tls::TlsRecord;
use wsprobe::stream::tls::{KeyStore, TlsEvent, TlsLayer};
use wsprobe::stream::{Chunk, End, Layer, Out};
use wsprobe::tcp::reassembly::{
    PacketClock, Reassembler, ReassemblyLimits, SegmentFlags, StreamEvent,
};

/// What the TLS layer made of one TCP connection.
#[derive(Debug)]
pub struct TlsConn {
    /// Client port.
    pub client_port: u16,
    /// Plaintext out, per side, with holes as `None` pieces' lengths.
    pub plaintext: [Vec<u8>; 2],
    /// Holes handed on, per side.
    pub gaps: [Vec<u64>; 2],
    /// Diagnostics (id, message).
    pub diags: Vec<(DiagnosticId, String)>,
    /// Other events, debug-printed.
    pub events: Vec<String>,
    /// The final record.
    pub record: TlsRecord,
}

#[allow(dead_code)] // not every test binary that includes this file uses every helper
impl TlsConn {
    /// Plaintext of a side.
    pub fn data(&self, side: Side) -> &[u8] {
        &self.plaintext[side_idx(side)]
    }
    /// Was this id raised?
    pub fn has(&self, id: DiagnosticId) -> bool {
        self.diags.iter().any(|(d, _)| *d == id)
    }
}

fn side_idx(side: Side) -> usize {
    match side {
        Side::Client => 0,
        Side::Server => 1,
    }
}

struct Flow {
    layer: TlsLayer,
    reasm: [Reassembler; 2],
    ended: [bool; 2],
    out: TlsConn,
}

fn sink<'a>(o: &'a mut TlsConn) -> impl FnMut(Out<'_, TlsEvent>) + 'a {
    move |ev| match ev {
        Out::Data {
            from,
            chunk: Chunk::Data(d),
            ..
        } => o.plaintext[side_idx(from)].extend_from_slice(d),
        Out::Data {
            from,
            chunk: Chunk::Gap(n),
            ..
        } => o.gaps[side_idx(from)].push(n),
        Out::Event(TlsEvent::Diagnostic(d)) => o.diags.push((d.id, d.message)),
        Out::Event(e) => o.events.push(format!("{e:?}")),
    }
}

/// How to treat the capture's packets before reassembly (tests of loss and reordering).
pub type Mangle<'m> = &'m mut dyn FnMut(usize, &[u8]) -> Vec<Vec<u8>>;

/// Runs the TLS layer over every TCP connection to one of `server_ports` in `capture`, with keys
/// from `keylogs` and from the capture's Decryption Secrets Blocks. `mangle` may drop, repeat
/// or hold back packets: it gets (index, packet bytes) and returns the packets to feed now.
pub fn run_tls(
    capture: &Path,
    server_ports: &[u16],
    keylogs: &[&Path],
    mangle: Option<Mangle<'_>>,
) -> Vec<TlsConn> {
    let keys = KeyStore::new(false);
    for k in keylogs {
        let s = keys
            .load_file(k)
            .unwrap_or_else(|e| panic!("{}: {e}", k.display()));
        assert_eq!(s.malformed, 0, "{:?}", s.warnings);
    }
    let keys = Arc::new(keys);
    let mut flows: HashMap<(u16, u16), Flow> = HashMap::new();
    let mut order: Vec<(u16, u16)> = Vec::new();
    let mut packets: Vec<(f64, wsprobe::capture::LinkType, Vec<u8>, u32)> = Vec::new();
    let file = std::fs::File::open(capture).unwrap();
    read_capture_with_secrets(
        file,
        &capture.display().to_string(),
        |p| packets.push((p.ts, p.link, p.data.to_vec(), p.orig_len)),
        |s| {
            keys.add_text("dsb", s.text);
        },
        |_| {},
    )
    .unwrap();
    let mut mangle = mangle;
    let mut feed: Vec<(f64, wsprobe::capture::LinkType, Vec<u8>, u32)> = Vec::new();
    for (i, (ts, link, data, orig)) in packets.into_iter().enumerate() {
        match mangle.as_mut() {
            Some(m) => {
                for d in m(i, &data) {
                    let len = d.len() as u32;
                    feed.push((ts, link, d, len));
                }
            }
            None => feed.push((ts, link, data, orig)),
        }
    }
    for (n, (ts, link, data, orig_len)) in feed.iter().enumerate() {
        let clock = PacketClock {
            packets: n as u64 + 1,
            time: *ts,
        };
        let packet = wsprobe::capture::Packet {
            ts: *ts,
            link: *link,
            data: &data[..],
            orig_len: *orig_len,
        };
        let Ok(seg) = decode(&packet) else { continue };
        let (client, server, side) = if server_ports.contains(&seg.dst.port) {
            (seg.src.port, seg.dst.port, Side::Client)
        } else if server_ports.contains(&seg.src.port) {
            (seg.dst.port, seg.src.port, Side::Server)
        } else {
            continue;
        };
        let key = (client, server);
        let flow = flows.entry(key).or_insert_with(|| {
            order.push(key);
            Flow {
                layer: TlsLayer::new(keys.clone()),
                reasm: [
                    Reassembler::new(ReassemblyLimits::default()),
                    Reassembler::new(ReassemblyLimits::default()),
                ],
                ended: [false; 2],
                out: TlsConn {
                    client_port: client,
                    plaintext: [Vec::new(), Vec::new()],
                    gaps: [Vec::new(), Vec::new()],
                    diags: Vec::new(),
                    events: Vec::new(),
                    record: TlsRecord::default(),
                },
            }
        });
        let d = side_idx(side);
        let flags = SegmentFlags {
            syn: seg.syn,
            fin: seg.fin,
            rst: seg.rst,
        };
        let Flow {
            layer,
            reasm,
            ended,
            out,
        } = flow;
        let mut s = sink(out);
        reasm[d].on_segment(seg.seq, flags, seg.payload, clock, &mut |ev| match ev {
            StreamEvent::Data(b) => layer.push(side, *ts, Chunk::Data(b), &mut s),
            StreamEvent::Gap { len, .. } => layer.push(side, *ts, Chunk::Gap(len), &mut s),
            StreamEvent::LateForGap { .. } => {}
        });
        if seg.rst {
            for (i, who) in [Side::Client, Side::Server].into_iter().enumerate() {
                if !ended[i] {
                    ended[i] = true;
                    layer.end(who, *ts, End::Rst, &mut s);
                }
            }
        } else if reasm[d].fin_reached() && !ended[d] {
            ended[d] = true;
            layer.end(side, *ts, End::Fin, &mut s);
        }
    }
    order
        .into_iter()
        .map(|key| {
            let mut flow = flows.remove(&key).unwrap();
            let Flow {
                layer,
                reasm,
                ended,
                out,
            } = &mut flow;
            let mut s = sink(out);
            for (i, who) in [Side::Client, Side::Server].into_iter().enumerate() {
                reasm[i].flush(&mut |ev| match ev {
                    StreamEvent::Data(b) => layer.push(who, 0.0, Chunk::Data(b), &mut s),
                    StreamEvent::Gap { len, .. } => layer.push(who, 0.0, Chunk::Gap(len), &mut s),
                    StreamEvent::LateForGap { .. } => {}
                });
                if !ended[i] {
                    layer.end(who, 0.0, End::CaptureEnd, &mut s);
                }
            }
            drop(s);
            flow.out.record = flow.layer.record();
            flow.out
        })
        .collect()
}
