//! TCP reassembly speed: in-order segments (the zero-copy fast path), reordered pairs, and every
//! segment duplicated (captures that record each packet twice).

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use wsprobe::tcp::reassembly::{
    PacketClock, Reassembler, ReassemblyLimits, SegmentFlags, StreamEvent,
};

const MSS: usize = 1448;
const STREAM: usize = 4 << 20;

fn segments() -> Vec<(u32, Vec<u8>)> {
    let data: Vec<u8> = (0..STREAM).map(|i| (i * 31 % 251) as u8).collect();
    let isn: u32 = 0xFFF0_0000; // crosses the 2^32 wrap inside the stream
    data.chunks(MSS)
        .enumerate()
        .map(|(i, c)| (isn.wrapping_add((i * MSS) as u32), c.to_vec()))
        .collect()
}

fn run(order: &[(u32, Vec<u8>)]) -> u64 {
    let mut r = Reassembler::new(ReassemblyLimits::default());
    let mut delivered = 0u64;
    let mut sink = |e: StreamEvent<'_>| {
        if let StreamEvent::Data(d) = e {
            delivered += d.len() as u64;
        }
    };
    for (i, (seq, payload)) in order.iter().enumerate() {
        // As the connection driver passes it: one packet more, 10 µs later.
        let now = PacketClock {
            packets: i as u64 + 1,
            time: i as f64 * 1e-5,
        };
        r.on_segment(*seq, SegmentFlags::default(), payload, now, &mut sink);
    }
    r.flush(&mut sink);
    delivered
}

fn reassembly(c: &mut Criterion) {
    let in_order = segments();
    let mut swapped = in_order.clone();
    for pair in swapped.chunks_mut(2) {
        pair.reverse();
    }
    let doubled: Vec<(u32, Vec<u8>)> = in_order
        .iter()
        .flat_map(|s| [s.clone(), s.clone()])
        .collect();
    let mut g = c.benchmark_group("reassembly");
    g.throughput(Throughput::Bytes(STREAM as u64));
    g.bench_function("in_order", |b| b.iter(|| black_box(run(&in_order))));
    g.bench_function("pairs_swapped", |b| b.iter(|| black_box(run(&swapped))));
    g.bench_function("every_segment_twice", |b| {
        b.iter(|| black_box(run(&doubled)))
    });
    g.finish();
}

criterion_group!(benches, reassembly);
criterion_main!(benches);
