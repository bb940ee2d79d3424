//! TLS decryption speed: the TLS layer (record framing, AEAD open, hand-off) on TLS 1.3 and
//! TLS 1.2 application data in 16 KiB records pushed in TCP-sized pieces, for each AEAD. The
//! issue's goal: wss with keys within 1.5x the time of the same traffic over ws://, so the
//! layer must run far above the rest of the pipeline's speed.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use wsprobe::diag::Side;
use wsprobe::stream::tls::decrypt::{Protection, RecordKeys};
use wsprobe::stream::tls::record::ContentType;
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
    for (name, suite, aead, hash) in [
        ("aes128gcm", 0x1301, Aead::Aes128Gcm, HashAlg::Sha256),
        ("aes256gcm", 0x1302, Aead::Aes256Gcm, HashAlg::Sha384),
        (
            "chacha20poly1305",
            0x1303,
            Aead::Chacha20Poly1305,
            HashAlg::Sha256,
        ),
    ] {
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

criterion_group!(benches, decrypt);
criterion_main!(benches);
