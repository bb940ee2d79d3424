//! TLS decryption speed: the TLS layer (record framing, AEAD open, hand-off) on TLS 1.3
//! application data in 16 KiB records pushed in TCP-sized pieces (assembled by the framer and
//! decrypted in place) and pushed whole (copied once), for each AEAD, beside the floor of ring
//! alone. The goal: wss with keys within 1.5x the time of the same traffic over ws://,
//! so the layer must run far above the rest of the pipeline's speed.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use wsprobe::diag::Side;
use wsprobe::stream::tls::decrypt::{Protection, RecordKeys};
use wsprobe::stream::tls::record::{ContentType, parse_header};
use wsprobe::stream::tls::schedule::tls13_traffic_keys;
use wsprobe::stream::tls::suite::{Aead, HashAlg};
use wsprobe::stream::tls::{KeyStore, TlsLayer};
use wsprobe::stream::{Chunk, Layer, Out};

/// TCP-sized pushes, as the reassembler delivers them.
const SEGMENT: usize = 1448;
/// Application data per direction.
const TOTAL: usize = 8 << 20;

fn hs(t: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![t];
    v.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    v.extend_from_slice(body);
    v
}

fn record(t: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![t, 3, 3];
    v.extend_from_slice(&(body.len() as u16).to_be_bytes());
    v.extend_from_slice(body);
    v
}

fn ext(t: u16, data: &[u8]) -> Vec<u8> {
    let mut v = t.to_be_bytes().to_vec();
    v.extend_from_slice(&(data.len() as u16).to_be_bytes());
    v.extend_from_slice(data);
    v
}

fn hello(t: u8, random: [u8; 32], suite: u16, exts: &[Vec<u8>]) -> Vec<u8> {
    let mut b = vec![3, 3];
    b.extend(random);
    b.push(0);
    if t == 1 {
        b.extend([0, 2]);
    }
    b.extend(suite.to_be_bytes());
    b.extend(if t == 1 { vec![1, 0] } else { vec![0] });
    let e: Vec<u8> = exts.concat();
    b.extend((e.len() as u16).to_be_bytes());
    b.extend(e);
    record(22, &hs(t, &b))
}

/// A TLS 1.3 connection whose server sends `TOTAL` bytes in full records: (keys, client
/// stream, server stream).
fn tls13(suite: u16, aead: Aead, hash: HashAlg) -> (Arc<KeyStore>, Vec<u8>, Vec<u8>) {
    let n = hash.len();
    let secret = |k: u8| vec![k; n];
    let random = [0x42u8; 32];
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let r = hex(&random);
    let log = format!(
        "CLIENT_HANDSHAKE_TRAFFIC_SECRET {r} {}\nSERVER_HANDSHAKE_TRAFFIC_SECRET {r} {}\nCLIENT_TRAFFIC_SECRET_0 {r} {}\nSERVER_TRAFFIC_SECRET_0 {r} {}\n",
        hex(&secret(1)),
        hex(&secret(2)),
        hex(&secret(3)),
        hex(&secret(4))
    );
    let keys = KeyStore::new(false);
    keys.add_text("bench", log.as_bytes());
    let sealer =
        |s: &[u8]| RecordKeys::new(aead, &tls13_traffic_keys(aead, hash, s), Protection::Tls13);
    let client = [
        hello(1, random, suite, &[ext(43, &[2, 3, 4])]),
        sealer(&secret(1)).seal_record(0, ContentType::Handshake, &hs(20, &vec![0; n])),
    ]
    .concat();
    let s_hs = sealer(&secret(2));
    let s_app = sealer(&secret(4));
    let mut server = hello(2, [0x24; 32], suite, &[ext(43, &[3, 4])]);
    server.extend(s_hs.seal_record(
        0,
        ContentType::Handshake,
        &[hs(8, &[0, 0]), hs(20, &vec![0; n])].concat(),
    ));
    let chunk = vec![0x5au8; 16384];
    for seq in 0..(TOTAL / chunk.len()) as u64 {
        server.extend(s_app.seal_record(seq, ContentType::ApplicationData, &chunk));
    }
    (Arc::new(keys), client, server)
}

fn decrypt(c: &mut Criterion) {
    let mut g = c.benchmark_group("tls13_decrypt");
    g.sample_size(10);
    for (name, suite, aead, hash) in SUITES {
        let (keys, client, server) = tls13(suite, aead, hash);
        g.throughput(Throughput::Bytes(server.len() as u64));
        g.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| {
                let mut layer = TlsLayer::new(keys.clone());
                let mut out_bytes = 0usize;
                let mut out = |o: Out<'_, _>| {
                    if let Out::Data {
                        chunk: Chunk::Data(d),
                        ..
                    } = o
                    {
                        out_bytes += d.len();
                    }
                };
                layer.push(Side::Client, 0.0, Chunk::Data(&client), &mut out);
                for piece in server.chunks(SEGMENT) {
                    layer.push(Side::Server, 0.0, Chunk::Data(black_box(piece)), &mut out);
                }
                assert_eq!(out_bytes, TOTAL);
            })
        });
    }
    g.finish();
}

/// The same server records pushed whole (one push per record, as with loopback or GRO segments):
/// the records are not assembled, so they are copied once, into the decryption buffer.
fn decrypt_whole_records(c: &mut Criterion) {
    let mut g = c.benchmark_group("tls13_decrypt_whole_records");
    g.sample_size(10);
    for (name, suite, aead, hash) in SUITES {
        let (keys, client, server) = tls13(suite, aead, hash);
        let records = split_records(&server);
        g.throughput(Throughput::Bytes(server.len() as u64));
        g.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| {
                let mut layer = TlsLayer::new(keys.clone());
                let mut out_bytes = 0usize;
                let mut out = |o: Out<'_, _>| {
                    if let Out::Data {
                        chunk: Chunk::Data(d),
                        ..
                    } = o
                    {
                        out_bytes += d.len();
                    }
                };
                layer.push(Side::Client, 0.0, Chunk::Data(&client), &mut out);
                for r in &records {
                    layer.push(Side::Server, 0.0, Chunk::Data(black_box(r)), &mut out);
                }
                assert_eq!(out_bytes, TOTAL);
            })
        });
    }
    g.finish();
}

/// The floor: ring alone opening the application records in place, after one copy of the
/// ciphertext (as the layer needs one to own it). The layer's cost is what it adds to this.
fn ring_floor(c: &mut Criterion) {
    let mut g = c.benchmark_group("tls13_ring_floor");
    g.sample_size(10);
    for (name, _, aead, hash) in SUITES {
        let keys = RecordKeys::new(
            aead,
            &tls13_traffic_keys(aead, hash, &vec![4; hash.len()]),
            Protection::Tls13,
        );
        let chunk = vec![0x5au8; 16384];
        let sealed: Vec<Vec<u8>> = (0..(TOTAL / chunk.len()) as u64)
            .map(|seq| keys.seal_record(seq, ContentType::ApplicationData, &chunk))
            .collect();
        g.throughput(Throughput::Bytes(
            sealed.iter().map(Vec::len).sum::<usize>() as u64,
        ));
        let mut buf = vec![0u8; sealed[0].len()];
        g.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| {
                let mut out_bytes = 0usize;
                for (seq, rec) in sealed.iter().enumerate() {
                    buf.copy_from_slice(black_box(rec));
                    let (head, frag) = buf.split_at_mut(5);
                    let header = parse_header(head).unwrap().1;
                    let o = keys.open_in_place(seq as u64, &header, frag).unwrap();
                    out_bytes += o.len;
                }
                assert_eq!(out_bytes, TOTAL);
            })
        });
    }
    g.finish();
}

const SUITES: [(&str, u16, Aead, HashAlg); 3] = [
    ("aes128gcm", 0x1301, Aead::Aes128Gcm, HashAlg::Sha256),
    ("aes256gcm", 0x1302, Aead::Aes256Gcm, HashAlg::Sha384),
    (
        "chacha20poly1305",
        0x1303,
        Aead::Chacha20Poly1305,
        HashAlg::Sha256,
    ),
];

/// A stream cut at its record boundaries.
fn split_records(stream: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = stream;
    while rest.len() >= 5 {
        let len = 5 + usize::from(u16::from_be_bytes([rest[3], rest[4]]));
        out.push(&rest[..len]);
        rest = &rest[len..];
    }
    out
}

criterion_group!(benches, decrypt, decrypt_whole_records, ring_floor);
criterion_main!(benches);
