//! Writes the seed corpus `fuzz/seeds/<target>/` from the recorded captures in `captures/`
//! (whole and cut-down files, the HTTP heads and frame streams of their connections) and from a
//! few synthetic frames and compressed messages.
//!
//! `cargo run --manifest-path fuzz/Cargo.toml --example make_seeds` (rewrites the seeds).

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use flate2::{Compress, Compression, FlushCompress};
use wsprobe::capture::file::read_capture;
use wsprobe::decode::decode;
use wsprobe::tcp::FlowKey;
use wsprobe::ws::frame::encode_frame;
use wsprobe_fuzz::encode_records;

/// Largest seed: the fuzz runs use `-max_len` about this size.
const MAX_SEED: usize = 16 * 1024;

struct Seeds {
    root: PathBuf,
    seen: HashSet<(String, u64)>,
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

impl Seeds {
    fn write(&mut self, target: &str, name: &str, bytes: &[u8]) {
        let bytes = &bytes[..bytes.len().min(MAX_SEED)];
        if !self.seen.insert((target.to_string(), fnv(bytes))) {
            return;
        }
        let dir = self.root.join(target);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}

/// One TCP segment of a flow, in capture order.
struct Seg {
    from_client: bool,
    syn: bool,
    fin: bool,
    rst: bool,
    payload: Vec<u8>,
}

fn flows(path: &Path) -> Vec<Vec<Seg>> {
    let file = std::fs::File::open(path).unwrap();
    let mut order: Vec<FlowKey> = Vec::new();
    let mut by_key: BTreeMap<usize, (Vec<Seg>, [u8; 16], u16)> = BTreeMap::new();
    read_capture(
        file,
        &path.display().to_string(),
        |p| {
            let Ok(s) = decode(p) else { return };
            let (key, _) = FlowKey::new(&s.src, &s.dst);
            let i = match order.iter().position(|k| *k == key) {
                Some(i) => i,
                None => {
                    order.push(key);
                    order.len() - 1
                }
            };
            let entry = by_key.entry(i).or_insert_with(|| {
                // The first packet's sender is the client unless it is a SYN-ACK.
                if s.syn && s.ack_flag {
                    (Vec::new(), s.dst.addr, s.dst.port)
                } else {
                    (Vec::new(), s.src.addr, s.src.port)
                }
            });
            let from_client = s.src.addr == entry.1 && s.src.port == entry.2;
            entry.0.push(Seg {
                from_client,
                syn: s.syn,
                fin: s.fin,
                rst: s.rst,
                payload: s.payload.to_vec(),
            });
        },
        |_| {},
    )
    .unwrap();
    by_key.into_values().map(|(segs, _, _)| segs).collect()
}

fn stream(segs: &[Seg], from_client: bool) -> Vec<u8> {
    segs.iter()
        .filter(|s| s.from_client == from_client)
        .flat_map(|s| s.payload.iter().copied())
        .take(MAX_SEED)
        .collect()
}

fn after_head(bytes: &[u8]) -> Option<&[u8]> {
    let end = bytes.windows(4).position(|w| w == b"\r\n\r\n")?;
    Some(&bytes[end + 4..])
}

/// A raw-DEFLATE message as permessage-deflate sends it (sync flush, tail removed).
fn deflate(c: &mut Compress, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 64);
    c.compress_vec(data, &mut out, FlushCompress::Sync).unwrap();
    assert!(out.ends_with(&[0, 0, 0xff, 0xff]));
    out.truncate(out.len() - 4);
    out
}

fn main() {
    let fuzz = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let captures = fuzz.join("../captures");
    let root = fuzz.join("seeds");
    let _ = std::fs::remove_dir_all(&root);
    let mut seeds = Seeds {
        root,
        seen: HashSet::new(),
    };
    let mut names: Vec<PathBuf> = std::fs::read_dir(&captures)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "pcap" || e == "pcapng"))
        .collect();
    names.sort();
    for path in &names {
        let name = path.file_stem().unwrap().to_str().unwrap();
        let bytes = std::fs::read(path).unwrap();
        // Capture reader and whole pipeline: the file (cut to MAX_SEED: a truncated record).
        seeds.write("capture", name, &bytes);
        seeds.write(
            "pipeline",
            &format!("{name}-file"),
            &[&[0u8, 1][..], &bytes].concat(),
        );
        if !path.extension().is_some_and(|e| e == "pcapng") {
            let link = u32::from_le_bytes([bytes[20], bytes[21], bytes[22], bytes[23]]);
            let index = [1u32, 101, 113, 276, 0, 228, 229, 108]
                .iter()
                .position(|&l| l == link)
                .unwrap_or(0) as u8;
            seeds.write(
                "pipeline",
                &format!("{name}-body"),
                &[&[1 | index << 1, 2][..], &bytes[24..]].concat(),
            );
        }
        for (i, segs) in flows(path).iter().enumerate().take(2) {
            let client = stream(segs, true);
            let server = stream(segs, false);
            for (role, bytes, who) in [(0u8, &client, "client"), (1, &server, "server")] {
                if bytes.is_empty() {
                    continue;
                }
                let head_len =
                    after_head(bytes).map_or(bytes.len(), |rest| bytes.len() - rest.len());
                seeds.write(
                    "http",
                    &format!("{name}-{i}-{who}"),
                    &[&[role, 0][..], &bytes[..head_len.min(4096)]].concat(),
                );
                if let Some(frames) = after_head(bytes) {
                    if frames.is_empty() {
                        continue;
                    }
                    let expect = if role == 0 { 1u8 } else { 2 } << 1;
                    let cut = frames.len().min(2048);
                    seeds.write(
                        "frame",
                        &format!("{name}-{i}-{who}"),
                        &[&[expect, 0][..], &frames[..cut]].concat(),
                    );
                    let from = 7.min(cut);
                    seeds.write(
                        "frame",
                        &format!("{name}-{i}-{who}-hunting"),
                        &[&[1 | expect, 0][..], &frames[from..cut]].concat(),
                    );
                }
            }
            // The connection target with the capture's own heads (choice 6: after a SYN exchange).
            let mut input = vec![6u8, 1];
            for s in segs.iter().filter(|s| !s.syn) {
                if !s.payload.is_empty() {
                    encode_records(&mut input, !s.from_client, &s.payload);
                }
                if s.fin || s.rst {
                    input.push(u8::from(!s.from_client) << 7 | 3 << 5);
                    input.push(u8::from(s.rst));
                }
                if input.len() > MAX_SEED {
                    break;
                }
            }
            seeds.write("connection", &format!("{name}-{i}"), &input);
        }
    }
    synthetic(&mut seeds);
}

/// Frames and compressed messages no capture has: the extreme lengths, every control opcode,
/// fragments, and permessage-deflate with and without context takeover.
fn synthetic(seeds: &mut Seeds) {
    let key = Some([0x37, 0xfa, 0x21, 0x3d]);
    let mut frames = Vec::new();
    frames.extend(encode_frame(true, 0, 1, key, b"Hello"));
    frames.extend(encode_frame(false, 0, 1, key, b"Hel"));
    frames.extend(encode_frame(true, 0, 9, key, b"ping"));
    frames.extend(encode_frame(true, 0, 0, key, b"lo"));
    frames.extend(encode_frame(true, 0, 2, key, &[7; 300]));
    frames.extend(encode_frame(true, 0, 10, key, b""));
    frames.extend(encode_frame(true, 0, 8, key, &[0x03, 0xe8, b'o', b'k']));
    seeds.write(
        "frame",
        "synthetic-client",
        &[&[1 << 1, 0][..], &frames].concat(),
    );
    // Two splits (7 and 300 bytes) and a gap of 9 bytes after the first piece.
    seeds.write(
        "frame",
        "synthetic-client-split",
        &[&[0x10 | 1 << 1, 2, 7, 0, 19, 44, 1, 0][..], &frames].concat(),
    );
    let max = [
        0x82, 0x7F, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 1, 2, 3,
    ];
    seeds.write(
        "frame",
        "length-2-63-minus-1",
        &[&[0u8, 0][..], &max].concat(),
    );
    let top = [0x82, 0x7F, 0x80, 0, 0, 0, 0, 0, 0, 5, 1, 2, 3, 4, 5];
    let after = encode_frame(true, 0, 1, None, b"after the bad header");
    seeds.write(
        "frame",
        "length-top-bit",
        &[&[0u8, 0][..], &top, &after, &after, &after].concat(),
    );
    let control64 = [0x89, 0x7F, 0, 0, 0, 0, 0, 0, 0, 2, 1, 2];
    seeds.write(
        "frame",
        "control-64-bit",
        &[&[0u8, 0][..], &control64].concat(),
    );

    // Connection target: permessage-deflate (choices 1-3) with compressed messages both ways.
    for (choice, takeover) in [(1u8, true), (2, false), (3, true)] {
        let mut input = vec![choice, 2];
        let mut client = Compress::new(Compression::default(), false);
        let mut server = Compress::new(Compression::default(), false);
        for i in 0..3 {
            if !takeover {
                client.reset();
                server.reset();
            }
            let text = format!("{{\"message\":{i},\"text\":\"hello hello hello\"}}");
            let c = deflate(&mut client, text.as_bytes());
            let s = deflate(&mut server, text.as_bytes());
            // The client's message in two fragments; the server's in one frame.
            let (a, b) = c.split_at(c.len() / 2);
            let mut cf = encode_frame(false, 0b100, 1, key, a);
            cf.extend(encode_frame(true, 0, 0, key, b));
            encode_records(&mut input, false, &cf);
            encode_records(&mut input, true, &encode_frame(true, 0b100, 1, None, &s));
        }
        encode_records(
            &mut input,
            false,
            &encode_frame(true, 0, 8, key, &[0x03, 0xe8]),
        );
        encode_records(
            &mut input,
            true,
            &encode_frame(true, 0, 8, None, &[0x03, 0xe8]),
        );
        seeds.write("connection", &format!("deflate-{choice}"), &input);
    }
    // An HTTP exchange before the upgrade: bodies by length and chunked.
    let mut req = b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello".to_vec();
    req.extend_from_slice(
        b"POST /b HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    );
    req.extend_from_slice(b"GET /chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n");
    seeds.write(
        "http",
        "keep-alive-then-upgrade",
        &[&[0u8, 1, 40, 0, 0][..], &req].concat(),
    );
    let resp = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_max_window_bits=10\r\n\r\n\x81\x02hi";
    seeds.write(
        "http",
        "continue-then-101",
        &[&[1u8, 0][..], &resp[..]].concat(),
    );
}
