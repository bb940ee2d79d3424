//! Bytes per idle open connection, by kind: builds N connections of each kind in memory, feeds
//! them through the pipeline (null reporter), and prints what each one holds once idle: heap
//! bytes (a counting allocator: exact) and resident memory (RSS growth: what the OS charges,
//! allocator overhead included).
//!
//! `cargo bench --bench memory [-- N]` (default N = 20,000 connections per kind).
//! Kinds: bare TCP (SYN, SYN-ACK, ACK, no bytes), in handshake (upgrade request, no answer),
//! plain WebSocket (upgraded, a message each way), compressed (permessage-deflate with context
//! takeover, a compressed message each way, so both directions hold a decoder), and each
//! WebSocket kind again after the idle sweep hibernated it.

use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicIsize, Ordering};

use wsprobe::capture::{InputSummary, LinkType, Packet};
use wsprobe::pipeline::{Pipeline, TableLimits};
use wsprobe::record::{ConnectionRecord, Event, Sink, Summary};

struct Counting;

static HEAP: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        HEAP.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { mimalloc::MiMalloc.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        HEAP.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { mimalloc::MiMalloc.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        HEAP.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        unsafe { mimalloc::MiMalloc.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn rss_bytes() -> isize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: isize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

struct Null;

impl Sink for Null {
    fn event(&mut self, _: &Event<'_>) {}
    fn connection(&mut self, _: ConnectionRecord) {}
    fn finish(&mut self, _: &[InputSummary], _: &Summary) -> std::io::Result<()> {
        Ok(())
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    BareTcp,
    InHandshake,
    Plain,
    Compressed,
}

/// One connection's packets (raw IPv4), client 10.x.y.z:port to 10.0.0.2:8080.
fn packets(kind: Kind, i: u32, deflated: &[u8]) -> Vec<Vec<u8>> {
    let client = [10, 1 + (i >> 16) as u8, (i >> 8) as u8, i as u8];
    let server = [10, 0, 0, 2];
    let (mut cseq, mut sseq) = (1000u32, 5000u32);
    let mut out = Vec::new();
    let mut seg = |from_client: bool, syn: bool, payload: &[u8], cseq: &mut u32, sseq: &mut u32| {
        let (src, dst, sp, dp) = if from_client {
            (client, server, 40000, 8080)
        } else {
            (server, client, 8080, 40000)
        };
        let (seq, ack) = if from_client {
            (*cseq, *sseq)
        } else {
            (*sseq, *cseq)
        };
        let mut b = etherparse::PacketBuilder::ipv4(src, dst, 64).tcp(sp, dp, seq, 65535);
        b = if syn && from_client {
            b.syn()
        } else if syn {
            b.syn().ack(ack)
        } else {
            b.ack(ack)
        };
        let mut p = Vec::new();
        b.write(&mut p, payload).expect("packet");
        out.push(p);
        let advance = payload.len() as u32 + u32::from(syn);
        if from_client {
            *cseq = cseq.wrapping_add(advance);
        } else {
            *sseq = sseq.wrapping_add(advance);
        }
    };
    seg(true, true, b"", &mut cseq, &mut sseq);
    seg(false, true, b"", &mut cseq, &mut sseq);
    seg(true, false, b"", &mut cseq, &mut sseq);
    if kind == Kind::BareTcp {
        return out;
    }
    let ext = if kind == Kind::Compressed {
        "Sec-WebSocket-Extensions: permessage-deflate\r\n"
    } else {
        ""
    };
    let request = format!(
        "GET /chat HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{ext}\r\n"
    );
    seg(true, false, request.as_bytes(), &mut cseq, &mut sseq);
    if kind == Kind::InHandshake {
        return out;
    }
    let response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n{ext}\r\n"
    );
    seg(false, false, response.as_bytes(), &mut cseq, &mut sseq);
    let (rsv, payload): (u8, &[u8]) = if kind == Kind::Compressed {
        (0b100, deflated)
    } else {
        (0, b"{\"type\":\"hello\",\"value\":42}")
    };
    let key = Some([1, 2, 3, 4]);
    let c = wsprobe::ws::frame::encode_frame(true, rsv, 1, key, payload);
    seg(true, false, &c, &mut cseq, &mut sseq);
    let s = wsprobe::ws::frame::encode_frame(true, rsv, 1, None, payload);
    seg(false, false, &s, &mut cseq, &mut sseq);
    out
}

fn deflated_message() -> Vec<u8> {
    use flate2::{Compress, Compression, FlushCompress};
    let mut msg = Vec::with_capacity(256);
    Compress::new(Compression::default(), false)
        .compress_vec(
            b"{\"type\":\"hello\",\"value\":42}",
            &mut msg,
            FlushCompress::Sync,
        )
        .expect("deflate");
    msg.truncate(msg.len() - 4);
    msg
}

fn config() -> wsprobe::connection::ConnectionConfig {
    let cli = <wsprobe::cli::Cli as clap::Parser>::parse_from(["wsprobe", "analyze", "x.pcap"]);
    let wsprobe::cli::Command::Analyze(args) = cli.command else {
        unreachable!("analyze")
    };
    wsprobe::run::RunOptions::from_args(&args.report, false)
        .expect("options")
        .connection
}

/// Opens `n` connections of `kind`; returns heap and RSS bytes per connection while active
/// and, for WebSocket kinds, after the idle sweep.
fn measure(kind: Kind, n: u32) -> ((f64, f64), Option<(f64, f64)>) {
    let deflated = deflated_message();
    let mut config = config();
    // Every direction gets a decoder: the default cap would leave most without one.
    config.message_limits.max_inflaters = 2 * n as usize + 16;
    let limits = TableLimits {
        max_connections: 10 * n as usize,
        max_idle_connections: 10 * n as usize,
        ..TableLimits::default()
    };
    let mut sink = Null;
    let mut pipeline = Pipeline::new(&mut sink, config, limits);
    let t0 = 1_700_000_000.0;
    // Warm the table to its final size so that growth is not charged to the connections.
    let (heap0, rss0) = (HEAP.load(Ordering::Relaxed), rss_bytes());
    let mut steps = [0isize; 8];
    for i in 0..n {
        for (j, data) in packets(kind, i, &deflated).iter().enumerate() {
            let before = HEAP.load(Ordering::Relaxed);
            let packet = Packet {
                ts: t0 + f64::from(i) * 1e-5 + j as f64 * 1e-6,
                link: LinkType::RAW,
                data,
                orig_len: data.len() as u32,
            };
            let _ = pipeline.packet(&packet);
            steps[j] += HEAP.load(Ordering::Relaxed) - before;
        }
    }
    assert_eq!(
        pipeline.live_connections(),
        n as usize,
        "every connection open"
    );
    let per = |heap0: isize, rss0: isize| {
        // What mimalloc has freed but still holds (it gives it back later, on its own clock)
        // is not the connections' cost: hibernation frees most of what an active one held.
        // SAFETY: mi_collect has no preconditions; it only returns free pages to the OS.
        unsafe { libmimalloc_sys::mi_collect(true) };
        (
            (HEAP.load(Ordering::Relaxed) - heap0) as f64 / f64::from(n),
            (rss_bytes() - rss0) as f64 / f64::from(n),
        )
    };
    let active = per(heap0, rss0);
    if std::env::var_os("WSPROBE_MEMORY_STEPS").is_some() {
        let steps: Vec<isize> = steps.iter().map(|s| s / n as isize).collect();
        eprintln!(
            "  heap per packet (SYN, SYN-ACK, ACK, request, response, client msg, server msg): {steps:?}"
        );
    }
    let idle = (kind == Kind::Plain || kind == Kind::Compressed).then(|| {
        pipeline.sweep_now(t0 + 30.0);
        assert_eq!(
            pipeline.live_connections(),
            n as usize,
            "still open when idle"
        );
        per(heap0, rss0)
    });
    drop(pipeline);
    (active, idle)
}

fn main() {
    if std::env::var_os("WSPROBE_MEMORY_STEPS").is_some() {
        let sizes: Vec<String> = wsprobe::connection::layout_sizes()
            .into_iter()
            .map(|(name, size)| format!("{name} {size}"))
            .collect();
        eprintln!("size_of: {}", sizes.join(", "));
    }
    let n: u32 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(20_000);
    println!("bytes per open connection ({n} connections per kind; heap: counted, RSS: growth)");
    println!("{:<34} {:>10} {:>10}", "kind", "heap", "RSS");
    let kinds = [
        (Kind::BareTcp, "bare TCP (no bytes)", ""),
        (Kind::InHandshake, "in handshake (request, no answer)", ""),
        (
            Kind::Plain,
            "plain WebSocket, active",
            "plain WebSocket, idle (hibernated)",
        ),
        (
            Kind::Compressed,
            "compressed, active",
            "compressed, idle (hibernated)",
        ),
    ];
    for (kind, name, idle_name) in kinds {
        let (active, idle) = measure(kind, n);
        println!("{name:<34} {:>10.0} {:>10.0}", active.0, active.1);
        if let Some(idle) = idle {
            println!("{idle_name:<34} {:>10.0} {:>10.0}", idle.0, idle.1);
        }
    }
}
