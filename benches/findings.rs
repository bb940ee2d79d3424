//! Findings across connections: drawing them over many finished connections (random, unrelated
//! endings with one planted idle timeout), as at the end of a large capture, and as a live
//! capture does every second.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use wsprobe::diag::Side;
use wsprobe::findings::FindingsEngine;
use wsprobe::findings::ending::{Ending, Host, How, Secs, Seen};
use wsprobe::record::Fingerprint;

struct Rng(u64);

impl Rng {
    fn unit(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn endings(n: usize) -> Vec<Ending> {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let t0 = 1_700_000_000.0;
    (0..n as u64)
        .map(|id| {
            let start = t0 + rng.unit() * 86_400.0;
            let planted = id % 200 == 0;
            let age = if planted {
                90.0
            } else {
                (rng.unit() * 8.0).exp()
            };
            let idle = if planted {
                60.0 + rng.unit() * 0.01
            } else {
                age * rng.unit()
            };
            let client = Host {
                addr: std::net::Ipv4Addr::from(0x0A00_0000 + (id as u32 % 50_000))
                    .to_ipv6_mapped()
                    .octets(),
                port: 1024 + (id % 60_000) as u16,
            };
            let server = Host {
                addr: std::net::Ipv4Addr::new(10, 1, 0, (id % 8) as u8)
                    .to_ipv6_mapped()
                    .octets(),
                port: 443,
            };
            let (how, by) = match (id % 5, planted) {
                (_, true) | (0, _) => (How::Fin, Some(Side::Server)),
                (1, _) => (How::Rst, Some(Side::Client)),
                (2, _) => (
                    How::Close {
                        code: 1001,
                        answered: true,
                    },
                    Some(Side::Server),
                ),
                (3, _) => (
                    How::Close {
                        code: 1000,
                        answered: true,
                    },
                    Some(Side::Client),
                ),
                _ => (How::Open, None),
            };
            let idle32 = Secs::from(Some(idle as f32));
            Ending {
                id,
                client,
                server,
                first_seen: start,
                start,
                end: start + age,
                how,
                by,
                websocket: true,
                idle: idle32,
                idle_by_side: [idle32, idle32],
                longest_silence: Some(((age - idle) / 3.0).max(0.0) as f32).into(),
                age: age as f32,
                messages: [5, 5],
                pings: [0, 0],
                ping_interval: [Secs::NONE; 2],
                unanswered: [0, 0],
                unanswered_for: [Secs::NONE; 2],
                retransmissions_near_end: [0, 0],
                reason: None,
                fingerprint: Fingerprint {
                    key: Some(id.wrapping_mul(0x9E37_79B9_7F4A_7C15)),
                    frames: id,
                    frame_count: 4,
                    masked: 2,
                    varied_masks: true,
                },
                stopped: false,
                rare: None,
                seen: Seen::Plain,
            }
        })
        .collect()
}

fn findings(c: &mut Criterion) {
    let mut group = c.benchmark_group("findings");
    group.sample_size(10);
    for n in [10_000usize, 100_000] {
        let mut engine = FindingsEngine::new();
        for e in endings(n) {
            engine.add(e);
        }
        group.bench_function(BenchmarkId::new("finish", n), |b| {
            b.iter(|| black_box(engine.finish()))
        });
    }
    group.finish();
}

criterion_group!(benches, findings);
criterion_main!(benches);
