//! Frame layer speed: header parsing, unmasking, and framer throughput on typical and worst-case streams.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use wsprobe::ws::{FrameEvent, Framer, apply_mask, encode_frame, parse_frame_header};

/// TCP-sized pushes, as the reassembler delivers them.
const SEGMENT: usize = 1448;

fn headers(c: &mut Criterion) {
    let cases: [(&str, Vec<u8>); 4] = [
        ("7bit", vec![0x81, 0x05]),
        ("7bit_masked", vec![0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d]),
        ("16bit", vec![0x82, 0x7E, 0x01, 0x00]),
        (
            "64bit_masked",
            vec![0x82, 0xFF, 0, 0, 0, 0, 0, 1, 0, 0, 1, 2, 3, 4],
        ),
    ];
    let mut g = c.benchmark_group("parse_frame_header");
    for (name, bytes) in &cases {
        g.bench_with_input(BenchmarkId::from_parameter(name), bytes, |b, bytes| {
            b.iter(|| parse_frame_header(black_box(bytes)))
        });
    }
    g.finish();
}

fn mask(c: &mut Criterion) {
    let mut g = c.benchmark_group("apply_mask");
    for size in [16usize, 1024, 64 * 1024] {
        let mut buf = vec![0xA5u8; size];
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_function(BenchmarkId::from_parameter(size), |b| {
            b.iter(|| apply_mask(black_box(&mut buf), [0x37, 0xfa, 0x21, 0x3d], 1))
        });
    }
    g.finish();
}

/// Pushes `stream` through a framer in TCP-sized pieces, consuming every payload byte.
fn run_framer(stream: &[u8], hunting: bool) -> u64 {
    let mut f = if hunting {
        Framer::new_hunting()
    } else {
        Framer::new_synced()
    };
    let mut seen = 0u64;
    let mut sink = |e: FrameEvent<'_>| {
        if let FrameEvent::Payload(p) = e {
            seen += u64::from(black_box(p)[0]) + p.len() as u64;
        }
    };
    for seg in stream.chunks(SEGMENT) {
        f.push(seg, &mut sink);
    }
    f.finish(&mut sink);
    seen
}

fn framer(c: &mut Criterion) {
    // 10,000 masked JSON text frames of 40-140 bytes (client traffic).
    let mut small = Vec::new();
    for i in 0..10_000u32 {
        let pad = "x".repeat((i % 100) as usize);
        let body = format!(r#"{{"op":"update","seq":{i},"data":"{pad}"}}"#);
        small.extend(encode_frame(
            true,
            0,
            1,
            Some(i.to_be_bytes()),
            body.as_bytes(),
        ));
    }
    // 64 frames of 64 KiB, masked and unmasked.
    let body: Vec<u8> = (0..65536u32).map(|i| i as u8).collect();
    let mut big_masked = Vec::new();
    let mut big_plain = Vec::new();
    for i in 0..64u32 {
        big_masked.extend(encode_frame(true, 0, 2, Some(i.to_be_bytes()), &body));
        big_plain.extend(encode_frame(true, 0, 2, None, &body));
    }
    // 1 MiB of random bytes through a hunting framer (the worst case: nothing ever locks).
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let garbage: Vec<u8> = (0..1 << 20)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();

    let mut g = c.benchmark_group("framer");
    for (name, stream, hunting) in [
        ("small_masked_frames", &small, false),
        ("64KiB_masked_frames", &big_masked, false),
        ("64KiB_unmasked_frames", &big_plain, false),
        ("hunting_small_masked_frames", &small, true),
        ("hunting_random_garbage", &garbage, true),
    ] {
        g.throughput(Throughput::Bytes(stream.len() as u64));
        g.bench_function(name, |b| b.iter(|| run_framer(black_box(stream), hunting)));
    }
    g.finish();
}

criterion_group!(benches, headers, mask, framer);
criterion_main!(benches);
