//! Synthetic WebSocket capture generator with exact ground truth (wsprobe benchmark input).
//!
//! Usage:
//!   cargo run --release --example gen_capture -- --size-mb 200 --mix small --seed 1 --out target/bench/small.pcap
//!   cargo run --release --example gen_capture -- --size-mb 200 --mix large --seed 1 --out target/bench/large.pcap
//!
//! Writes FILE.pcap (classic pcap, Ethernet/IPv4/TCP, microsecond timestamps) and FILE.truth.json
//! (`FILE` = `--out` without its `.pcap` extension). Output is deterministic for a given
//! `--size-mb`/`--mix`/`--seed`. Memory stays bounded (live-connection state only) whatever the size.
//!
//! Traffic: thousands of interleaved connections (pool of up to ~2000 live for `small`, ~200 for
//! `large`) from random 10.0.0.0/8 clients to a few servers on ports 80/443/8080/9000 (plain
//! HTTP, also on 443/9000: tell tshark `-d tcp.port==443,http -d tcp.port==9000,http`). Each
//! connection: 3-way handshake, HTTP/1.1 upgrade with a real Sec-WebSocket-Key/Accept, 101
//! (sometimes coalesced with the first server frame); ~10% negotiate permessage-deflate (context
//! takeover, some with reduced window bits). Client frames masked, segments cut at MSS 1448 (frame
//! headers straddle segments, small frames coalesce), ACKs from the receiver, fragmented messages
//! (some with a ping between fragments), pings answered by pongs, unsolicited pongs. Endings: ~80%
//! clean close handshake (1000/1001/4000, either side initiates) then FIN both ways, ~10% RST
//! without Close ("abnormal"), ~10% left open. All data is flushed before the capture ends, so
//! the truth counts are exact: every frame counted in the truth is complete on the wire.
//!
//! Truth JSON:
//! {"mix","seed","size_mb","connections":N,
//!  "frames":{"text","binary","continuation","close","ping","pong"},   (both directions)
//!  "messages":{"client","server"}, "endings":{"clean","abnormal","open"},
//!  "packets":N, "bytes":N (sum of captured packet lengths), "file_bytes":N (pcap file size),
//!  "by_connection":[{"client":"ip:port","server":"ip:port",
//!     "frames":{"client":{opcode counts},"server":{opcode counts}},
//!     "messages":{"client":n,"server":n}, "ending":"clean"|"abnormal"|"open",
//!     "close_code":1000|null, "initiator":"client"|"server"|null,
//!     "deflate":bool, "subprotocol":"..."|null}, ...]}   (one entry per line, in SYN order)

use std::collections::{HashSet, VecDeque};
use std::error::Error;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use clap::{Parser, ValueEnum};
use flate2::{Compress, Compression, FlushCompress};
use serde_json::json;
use sha1::{Digest, Sha1};

const MSS: usize = 1448;
// RFC 6455 section 1.3 (the test vector in `tests` pins it)
const WS_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
const OPCODE_KEYS: [&str; 6] = ["text", "binary", "continuation", "close", "ping", "pong"];

const TCP_FIN: u8 = 0x01;
const TCP_SYN: u8 = 0x02;
const TCP_RST: u8 = 0x04;
const TCP_PSH: u8 = 0x08;
const TCP_ACK: u8 = 0x10;

const OP_CONT: u8 = 0x0;
const OP_TEXT: u8 = 0x1;
const OP_BINARY: u8 = 0x2;
const OP_CLOSE: u8 = 0x8;
const OP_PING: u8 = 0x9;
const OP_PONG: u8 = 0xA;

const CLIENT: usize = 0;
const SERVER: usize = 1;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Mix {
    /// messages of 2-300 bytes (JSON-like text, some binary), ~2000 live connections
    Small,
    /// messages of 1 KB-1 MB (mostly 16-bit, some 64-bit lengths), ~200 live connections
    Large,
}

#[derive(Parser, Debug)]
#[command(about = "Generate a synthetic WebSocket pcap plus its ground truth JSON")]
struct Args {
    /// approximate size of the pcap file in MB (10^6 bytes)
    #[arg(long, default_value_t = 200.0)]
    size_mb: f64,
    /// traffic mix
    #[arg(long, value_enum, default_value_t = Mix::Small)]
    mix: Mix,
    /// PRNG seed (same seed + size + mix = byte-identical output)
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// output pcap path; the truth goes next to it as <stem>.truth.json
    #[arg(long)]
    out: PathBuf,
    /// override the number of simultaneously live connections
    #[arg(long)]
    pool: Option<usize>,
}

// ---------------------------------------------------------------- PRNG (splitmix64)

struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// uniform in 0..n (n > 0)
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }
    /// uniform in lo..=hi
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }
    fn index(&mut self, n: usize) -> usize {
        self.below(n as u64) as usize
    }
    fn f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
    fn chance(&mut self, p: f64) -> bool {
        self.f64() < p
    }
    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.index(items.len())]
    }
    /// log-uniform in lo..=hi
    fn log_uniform(&mut self, lo: u64, hi: u64) -> u64 {
        let v = (lo as f64) * ((hi as f64) / (lo as f64)).powf(self.f64());
        (v as u64).clamp(lo, hi)
    }
    fn fill(&mut self, buf: &mut [u8]) {
        let mut chunks = buf.chunks_exact_mut(8);
        for c in &mut chunks {
            c.copy_from_slice(&self.next_u64().to_le_bytes());
        }
        let rest = chunks.into_remainder();
        let v = self.next_u64().to_le_bytes();
        let n = rest.len();
        rest.copy_from_slice(&v[..n]);
    }
}

// ---------------------------------------------------------------- pcap output

#[derive(Clone, Copy)]
struct Addr {
    mac: [u8; 6],
    ip: [u8; 4],
    port: u16,
    ttl: u8,
}

fn fmt_addr((ip, port): ([u8; 4], u16)) -> String {
    format!("{}.{}.{}.{}:{}", ip[0], ip[1], ip[2], ip[3], port)
}

fn csum_add(mut sum: u64, data: &[u8]) -> u64 {
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        sum += u64::from(u32::from_be_bytes([c[0], c[1], c[2], c[3]]));
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut w = [0u8; 4];
        w[..rest.len()].copy_from_slice(rest);
        sum += u64::from(u32::from_be_bytes(w));
    }
    sum
}

fn csum_fold(mut sum: u64) -> u16 {
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

struct Pcap {
    w: BufWriter<File>,
    ts_us: u64,
    packets: u64,
    bytes: u64,
    file_bytes: u64,
}

impl Pcap {
    fn create(path: &Path, start_us: u64) -> io::Result<Pcap> {
        let mut w = BufWriter::with_capacity(1 << 20, File::create(path)?);
        let mut h = Vec::with_capacity(24);
        h.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
        h.extend_from_slice(&2u16.to_le_bytes());
        h.extend_from_slice(&4u16.to_le_bytes());
        h.extend_from_slice(&0i32.to_le_bytes()); // thiszone
        h.extend_from_slice(&0u32.to_le_bytes()); // sigfigs
        h.extend_from_slice(&65535u32.to_le_bytes()); // snaplen
        h.extend_from_slice(&1u32.to_le_bytes()); // LINKTYPE_ETHERNET
        w.write_all(&h)?;
        Ok(Pcap {
            w,
            ts_us: start_us,
            packets: 0,
            bytes: 0,
            file_bytes: 24,
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn packet(
        &mut self,
        src: &Addr,
        dst: &Addr,
        ip_id: u16,
        seq: u32,
        ack: u32,
        flags: u8,
        opts: &[u8],
        payload: &[u8],
    ) -> io::Result<()> {
        debug_assert!(opts.len().is_multiple_of(4) && opts.len() <= 40);
        let tcp_len = 20 + opts.len();
        let ip_total = 20 + tcp_len + payload.len();
        let frame_len = 14 + ip_total;
        let mut h = [0u8; 16 + 14 + 20 + 60];
        // pcap record header
        h[0..4].copy_from_slice(&((self.ts_us / 1_000_000) as u32).to_le_bytes());
        h[4..8].copy_from_slice(&((self.ts_us % 1_000_000) as u32).to_le_bytes());
        h[8..12].copy_from_slice(&(frame_len as u32).to_le_bytes());
        h[12..16].copy_from_slice(&(frame_len as u32).to_le_bytes());
        // Ethernet
        h[16..22].copy_from_slice(&dst.mac);
        h[22..28].copy_from_slice(&src.mac);
        h[28..30].copy_from_slice(&0x0800u16.to_be_bytes());
        // IPv4
        let ip = 30;
        h[ip] = 0x45;
        h[ip + 2..ip + 4].copy_from_slice(&(ip_total as u16).to_be_bytes());
        h[ip + 4..ip + 6].copy_from_slice(&ip_id.to_be_bytes());
        h[ip + 6..ip + 8].copy_from_slice(&0x4000u16.to_be_bytes()); // DF
        h[ip + 8] = src.ttl;
        h[ip + 9] = 6;
        h[ip + 12..ip + 16].copy_from_slice(&src.ip);
        h[ip + 16..ip + 20].copy_from_slice(&dst.ip);
        let ipsum = csum_fold(csum_add(0, &h[ip..ip + 20]));
        h[ip + 10..ip + 12].copy_from_slice(&ipsum.to_be_bytes());
        // TCP
        let t = ip + 20;
        h[t..t + 2].copy_from_slice(&src.port.to_be_bytes());
        h[t + 2..t + 4].copy_from_slice(&dst.port.to_be_bytes());
        h[t + 4..t + 8].copy_from_slice(&seq.to_be_bytes());
        let ackv = if flags & TCP_ACK != 0 { ack } else { 0 };
        h[t + 8..t + 12].copy_from_slice(&ackv.to_be_bytes());
        h[t + 12] = ((tcp_len / 4) as u8) << 4;
        h[t + 13] = flags;
        h[t + 14..t + 16].copy_from_slice(&64240u16.to_be_bytes());
        h[t + 20..t + 20 + opts.len()].copy_from_slice(opts);
        let mut pseudo = [0u8; 12];
        pseudo[0..4].copy_from_slice(&src.ip);
        pseudo[4..8].copy_from_slice(&dst.ip);
        pseudo[9] = 6;
        pseudo[10..12].copy_from_slice(&((tcp_len + payload.len()) as u16).to_be_bytes());
        let mut sum = csum_add(0, &pseudo);
        sum = csum_add(sum, &h[t..t + tcp_len]);
        sum = csum_add(sum, payload);
        let tsum = csum_fold(sum);
        h[t + 16..t + 18].copy_from_slice(&tsum.to_be_bytes());
        self.w.write_all(&h[..t + tcp_len])?;
        self.w.write_all(payload)?;
        self.packets += 1;
        self.bytes += frame_len as u64;
        self.file_bytes += 16 + frame_len as u64;
        Ok(())
    }
}

// ---------------------------------------------------------------- traffic model

struct Params {
    pool: usize,
    gap_us: u64,
    max_flight: (u64, u64),
    p_text: f64,
    p_ping: f64,
    p_upong: f64,
    p_frag: f64,
    p_burst: f64,
    p_append: f64,
    p_straddle: f64,
    p_client_msg: f64,
}

impl Params {
    fn new(mix: Mix, target: u64, pool: Option<usize>) -> Params {
        // rough bytes per connection, used to scale the live pool for small targets
        let (max_pool, per_conn, factor) = match mix {
            Mix::Small => (2000u64, 13_000u64, 4u64),
            Mix::Large => (200, 450_000, 2),
        };
        let auto = (target / (per_conn * factor)).clamp(4, max_pool) as usize;
        let pool = pool.unwrap_or(auto).max(1);
        match mix {
            Mix::Small => Params {
                pool,
                gap_us: 200,
                max_flight: (10, 10),
                p_text: 0.85,
                p_ping: 0.04,
                p_upong: 0.005,
                p_frag: 0.03,
                p_burst: 0.15,
                p_append: 0.3,
                p_straddle: 0.01,
                p_client_msg: 0.4,
            },
            Mix::Large => Params {
                pool,
                gap_us: 1000,
                max_flight: (10, 44),
                p_text: 0.5,
                p_ping: 0.1,
                p_upong: 0.01,
                p_frag: 0.08,
                p_burst: 0.0,
                p_append: 0.3,
                p_straddle: 0.2,
                p_client_msg: 0.5,
            },
        }
    }
}

struct Ctx {
    rng: Rng,
    pcap: Pcap,
    mix: Mix,
    prm: Params,
    winddown: bool,
    /// bytes queued in send buffers but not yet on the wire (all live connections)
    pending: u64,
    msg: Vec<u8>,
    zbuf: Vec<u8>,
    /// finished connections' compressors, reset and ready for reuse, keyed by (window bits,
    /// level): allocating a fresh ~300 KB deflate state per connection is slow and fragments
    /// the heap
    comp_pool: Vec<((u8, u32), Compress)>,
}

impl Ctx {
    fn take_compressor(&mut self, bits: u8, level: u32) -> Compress {
        match self.comp_pool.iter().position(|(k, _)| *k == (bits, level)) {
            Some(i) => self.comp_pool.swap_remove(i).1,
            None => Compress::new_with_window_bits(Compression::new(level), false, bits),
        }
    }

    fn recycle_compressor(&mut self, key: (u8, u32), mut c: Compress) {
        if self.comp_pool.len() < 256 {
            c.reset();
            self.comp_pool.push((key, c));
        }
    }

    fn tick(&mut self) {
        self.pcap.ts_us += 1 + self.rng.below(self.prm.gap_us);
    }
}

struct Side {
    addr: Addr,
    seq: u32,
    ip_id: u16,
    buf: Vec<u8>,
    off: usize,
    /// forced segment boundaries (absolute offsets in `buf`, increasing)
    push: VecDeque<usize>,
    frames: [u64; 6],
    msgs: u64,
    /// payloads of pings received from the peer that this side still has to answer
    owed_pongs: Vec<Vec<u8>>,
    comp: Option<Compress>,
}

impl Side {
    fn new(addr: Addr, rng: &mut Rng) -> Side {
        Side {
            addr,
            seq: rng.next_u64() as u32,
            ip_id: rng.next_u64() as u16,
            buf: Vec::new(),
            off: 0,
            push: VecDeque::new(),
            frames: [0; 6],
            msgs: 0,
            owed_pongs: Vec::new(),
            comp: None,
        }
    }
    fn pending(&self) -> usize {
        self.buf.len() - self.off
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Phase {
    Syn,
    SynAck,
    Request,
    Response,
    Open,
    CloseEcho,
    Fin1,
    Fin2,
    Fin3,
    Done,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Ending {
    Clean,
    Abnormal,
    Open,
}

impl Ending {
    fn name(self) -> &'static str {
        match self {
            Ending::Clean => "clean",
            Ending::Abnormal => "abnormal",
            Ending::Open => "open",
        }
    }
}

struct Conn {
    id: usize,
    s: [Side; 2],
    phase: Phase,
    ending: Ending,
    initiator: usize,
    close_code: u16,
    msgs_left: u32,
    /// negotiated permessage-deflate: (server_max_window_bits == client_max_window_bits, level);
    /// window bits 15 means "not specified" in the handshake
    deflate: Option<(u8, u32)>,
    offer_deflate: bool,
    subprotocols: Option<&'static [&'static str]>,
    endpoint: usize,
    split_writes: bool,
    greeting: bool,
}

struct Summary {
    id: usize,
    client: ([u8; 4], u16),
    server: ([u8; 4], u16),
    frames: [[u64; 6]; 2],
    msgs: [u64; 2],
    ending: Ending,
    close_code: Option<u16>,
    initiator: Option<usize>,
    deflate: bool,
    subprotocol: Option<&'static str>,
}

const SERVERS: [([u8; 4], u16, &str); 6] = [
    ([172, 16, 0, 10], 80, "ws.example.com"),
    ([172, 16, 0, 10], 443, "ws.example.com"),
    ([172, 16, 0, 11], 8080, "stream.example.net"),
    ([172, 16, 0, 12], 9000, "api.example.org"),
    ([172, 16, 0, 13], 443, "chat.example.com"),
    ([172, 16, 0, 13], 80, "chat.example.com"),
];
const PATHS: [&str; 7] = [
    "/ws",
    "/socket.io/?EIO=4&transport=websocket",
    "/graphql",
    "/v1/stream",
    "/cable",
    "/live/feed?channel=",
    "/mqtt",
];
const ORIGINS: [&str; 4] = [
    "https://app.example.com",
    "https://www.example.com",
    "https://dashboard.example.net",
    "http://localhost:3000",
];
const USER_AGENTS: [&str; 5] = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
    "okhttp/4.12.0",
    "Python/3.11 websockets/12.0",
];
const SERVER_SW: [&str; 4] = [
    "nginx/1.25.3",
    "envoy",
    "Python/3.11 websockets/12.0",
    "Jetty(11.0.18)",
];
const SUBPROTOCOLS: [&[&str]; 4] = [
    &["graphql-transport-ws", "graphql-ws"],
    &["chat"],
    &["mqtt"],
    &["v12.stomp", "v11.stomp"],
];
const SYMBOLS: [&str; 8] = [
    "BTC-USD", "ETH-USD", "SOL-USD", "AAPL", "MSFT", "EUR-USD", "NVDA", "TSLA",
];
const TYPES: [&str; 10] = [
    "tick",
    "trade",
    "quote",
    "presence",
    "typing",
    "chat",
    "ack",
    "update",
    "heartbeat",
    "notification",
];
const WORDS: [&str; 16] = [
    "lorem", "ipsum", "dolor", "sit", "amet", "stream", "socket", "frame", "hello", "world",
    "update", "status", "ready", "queue", "order", "price",
];
const TINY: [&str; 12] = [
    "ok",
    "hi",
    "{}",
    "[]",
    "ack",
    "yes",
    "no",
    "ping",
    "true",
    "null",
    "42",
    "{\"ok\":1}",
];

fn opcode_index(op: u8) -> usize {
    match op {
        OP_TEXT => 0,
        OP_BINARY => 1,
        OP_CONT => 2,
        OP_CLOSE => 3,
        OP_PING => 4,
        OP_PONG => 5,
        _ => unreachable!("opcode {op}"),
    }
}

/// Append one WebSocket frame to `side`'s send buffer, masking it for the client.
#[allow(clippy::too_many_arguments)]
fn push_frame(
    side: &mut Side,
    rng: &mut Rng,
    masked: bool,
    fin: bool,
    rsv1: bool,
    opcode: u8,
    payload: &[u8],
    split_writes: bool,
    p_straddle: f64,
) {
    let start = side.buf.len();
    let b0 = (u8::from(fin) << 7) | (u8::from(rsv1) << 6) | opcode;
    let mbit = if masked { 0x80 } else { 0 };
    side.buf.push(b0);
    let n = payload.len();
    if n < 126 {
        side.buf.push(mbit | n as u8);
    } else if n <= 0xffff {
        side.buf.push(mbit | 126);
        side.buf.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        side.buf.push(mbit | 127);
        side.buf.extend_from_slice(&(n as u64).to_be_bytes());
    }
    if masked {
        let key = (rng.next_u64() as u32).to_be_bytes();
        side.buf.extend_from_slice(&key);
        let hdr_end = side.buf.len();
        side.buf.extend_from_slice(payload);
        let k8 = u64::from_ne_bytes([
            key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3],
        ]);
        let body = &mut side.buf[hdr_end..];
        let mut chunks = body.chunks_exact_mut(8);
        for c in &mut chunks {
            let v = u64::from_ne_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) ^ k8;
            c.copy_from_slice(&v.to_ne_bytes());
        }
        for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
            *b ^= key[i & 3];
        }
    } else {
        side.buf.extend_from_slice(payload);
    }
    let hdr_len = side.buf.len() - n - start;
    if split_writes {
        // header and payload written with separate send() calls, TCP_NODELAY
        side.push.push_back(start + hdr_len);
        side.push.push_back(side.buf.len());
    } else if rng.chance(p_straddle) {
        // a segment boundary inside this frame header
        side.push
            .push_back(start + rng.range(1, hdr_len as u64 - 1) as usize);
    }
    side.frames[opcode_index(opcode)] += 1;
}

fn gen_text(rng: &mut Rng, out: &mut Vec<u8>, target: usize, large: bool) {
    out.clear();
    if target < 16 {
        let t = TINY.iter().filter(|t| t.len() <= target.max(2)).count();
        out.extend_from_slice(TINY[rng.index(t.max(1))].as_bytes());
        return;
    }
    let mut s = String::with_capacity(target + 64);
    let seq = rng.below(10_000_000);
    if large {
        let _ = write!(s, "{{\"type\":\"snapshot\",\"seq\":{seq},\"rows\":[");
        let mut id = rng.below(1_000_000);
        let mut first = true;
        while s.len() + 2 < target {
            if !first {
                s.push(',');
            }
            first = false;
            id += 1 + rng.below(3);
            let px = rng.below(10_000_000);
            let _ = write!(
                s,
                "{{\"id\":{id},\"sym\":\"{}\",\"px\":{}.{:02},\"qty\":{},\"side\":\"{}\",\"ts\":{},\"note\":\"{} {}\"}}",
                rng.pick(&SYMBOLS),
                px / 100,
                px % 100,
                rng.range(1, 5000),
                if rng.chance(0.5) { "buy" } else { "sell" },
                1_700_000_000_000u64 + rng.below(100_000_000),
                rng.pick(&WORDS),
                rng.pick(&WORDS),
            );
        }
        s.push_str("]}");
    } else {
        let px = rng.below(10_000_000);
        let _ = write!(
            s,
            "{{\"type\":\"{}\",\"seq\":{seq},\"sym\":\"{}\",\"px\":{}.{:02}",
            rng.pick(&TYPES),
            rng.pick(&SYMBOLS),
            px / 100,
            px % 100
        );
        if s.len() + 30 < target {
            let _ = write!(
                s,
                ",\"ts\":{},\"user\":\"u{}\"",
                1_700_000_000_000u64 + rng.below(100_000_000),
                rng.below(100_000)
            );
        }
        if s.len() + 12 < target {
            s.push_str(",\"msg\":\"");
            while s.len() + 2 < target {
                s.push_str(rng.pick(&WORDS));
                s.push(' ');
            }
            s.truncate(target - 2);
            s.push('"');
        }
        s.push('}');
    }
    out.extend_from_slice(s.as_bytes());
}

fn gen_binary(rng: &mut Rng, out: &mut Vec<u8>, len: usize, large: bool) {
    out.clear();
    out.resize(len, 0);
    if large && rng.chance(0.5) {
        // structured telemetry: 16-byte records (id, random-walk sample, timestamp)
        let mut id = rng.next_u64() as u32;
        let mut val = rng.below(1000) as f32;
        let mut ts = 1_700_000_000_000u64 + rng.below(1_000_000);
        for rec in out.chunks_mut(16) {
            let mut r = [0u8; 16];
            r[0..4].copy_from_slice(&id.to_le_bytes());
            r[4..8].copy_from_slice(&val.to_le_bytes());
            r[8..16].copy_from_slice(&ts.to_le_bytes());
            let n = rec.len();
            rec.copy_from_slice(&r[..n]);
            id = id.wrapping_add(1);
            val += (rng.below(200) as f32 - 100.0) * 0.01;
            ts += 10 + rng.below(5);
        }
    } else {
        rng.fill(out);
        if len >= 4 {
            // small type/length header like many binary protocols
            out[0] = rng.below(8) as u8;
            out[1] = 0;
            out[2..4].copy_from_slice(&(len.min(0xffff) as u16).to_be_bytes());
        }
    }
}

/// Raw-deflate `input` with a sync flush and strip the trailing 00 00 ff ff (RFC 7692).
fn deflate_message(c: &mut Compress, input: &[u8], out: &mut Vec<u8>) {
    out.clear();
    let start = c.total_in();
    loop {
        out.reserve(input.len() / 2 + 64);
        let consumed = (c.total_in() - start) as usize;
        c.compress_vec(&input[consumed..], out, FlushCompress::Sync)
            .expect("deflate");
        let consumed = (c.total_in() - start) as usize;
        if consumed == input.len() && out.len() < out.capacity() {
            break;
        }
    }
    assert!(out.ends_with(&[0, 0, 0xff, 0xff]), "sync flush marker");
    out.truncate(out.len() - 4);
}

fn accept_key(key: &str) -> String {
    let mut h = Sha1::new();
    h.update(key.as_bytes());
    h.update(WS_GUID.as_bytes());
    B64.encode(h.finalize())
}

impl Conn {
    fn new(id: usize, ctx: &mut Ctx, used: &mut HashSet<([u8; 4], u16, usize)>) -> Conn {
        let rng = &mut ctx.rng;
        let endpoint = rng.index(SERVERS.len());
        let (cip, cport) = loop {
            let ip = [
                10,
                rng.range(0, 255) as u8,
                rng.range(0, 255) as u8,
                rng.range(1, 254) as u8,
            ];
            let port = rng.range(1024, 65535) as u16;
            if used.insert((ip, port, endpoint)) {
                break (ip, port);
            }
        };
        let (sip, sport, _) = SERVERS[endpoint];
        let client = Addr {
            mac: [0x02, 0x00, 0x5e, 0x00, 0x00, 0x01],
            ip: cip,
            port: cport,
            ttl: rng.range(48, 62) as u8,
        };
        let server = Addr {
            mac: [0x02, 0x00, 0x5e, 0x10, 0x00, sip[3]],
            ip: sip,
            port: sport,
            ttl: 64,
        };
        let ending = match rng.below(100) {
            0..80 => Ending::Clean,
            80..90 => Ending::Abnormal,
            _ => Ending::Open,
        };
        let close_code = match rng.below(100) {
            0..60 => 1000,
            60..85 => 1001,
            _ => 4000,
        };
        let msgs_left = if rng.chance(0.02) {
            0
        } else {
            match ctx.mix {
                Mix::Small => rng.log_uniform(1, 300) as u32,
                Mix::Large => rng.log_uniform(1, 12) as u32,
            }
        };
        let deflate = if rng.chance(0.10) {
            let bits = if rng.chance(0.3) {
                rng.range(10, 14) as u8
            } else {
                15
            };
            Some((bits, rng.pick(&[1u32, 3, 6])))
        } else {
            None
        };
        let offer_deflate = deflate.is_some() || rng.chance(0.5);
        let subprotocols = if rng.chance(0.3) {
            Some(rng.pick(&SUBPROTOCOLS))
        } else {
            None
        };
        let mut s = [Side::new(client, rng), Side::new(server, rng)];
        let initiator = if rng.chance(0.5) { CLIENT } else { SERVER };
        let split_writes = rng.chance(0.03);
        let greeting = rng.chance(0.2);
        if let Some((bits, level)) = deflate {
            for side in &mut s {
                side.comp = Some(ctx.take_compressor(bits, level));
            }
        }
        Conn {
            id,
            s,
            phase: Phase::Syn,
            ending,
            initiator,
            close_code,
            msgs_left,
            deflate,
            offer_deflate,
            subprotocols,
            endpoint,
            split_writes,
            greeting,
        }
    }

    /// Emit one packet from side `d` carrying `buf[range]` (or no payload).
    fn emit(
        &mut self,
        ctx: &mut Ctx,
        d: usize,
        flags: u8,
        opts: &[u8],
        range: Option<(usize, usize)>,
    ) -> io::Result<()> {
        ctx.tick();
        let [c, s] = &mut self.s;
        let (src, dst) = if d == CLIENT { (c, &*s) } else { (s, &*c) };
        let payload: &[u8] = match range {
            Some((a, b)) => &src.buf[a..b],
            None => &[],
        };
        let len = payload.len() as u32;
        ctx.pcap.packet(
            &src.addr, &dst.addr, src.ip_id, src.seq, dst.seq, flags, opts, payload,
        )?;
        let extra = u32::from(flags & (TCP_SYN | TCP_FIN) != 0);
        src.seq = src.seq.wrapping_add(len + extra);
        src.ip_id = src.ip_id.wrapping_add(1);
        Ok(())
    }

    /// Send up to one congestion window of side `d`'s queued bytes, with ACKs from the peer.
    fn flush(&mut self, ctx: &mut Ctx, d: usize) -> io::Result<()> {
        let (lo, hi) = ctx.prm.max_flight;
        let max_segs = ctx.rng.range(lo, hi);
        let mut n = 0;
        while self.s[d].pending() > 0 && n < max_segs {
            let side = &mut self.s[d];
            let off = side.off;
            let mut end = (off + MSS).min(side.buf.len());
            while let Some(&p) = side.push.front() {
                if p <= off {
                    side.push.pop_front();
                    continue;
                }
                end = end.min(p);
                break;
            }
            let psh = end == side.buf.len() || side.push.front() == Some(&end);
            side.off = end;
            let flags = TCP_ACK | if psh { TCP_PSH } else { 0 };
            self.emit(ctx, d, flags, &[], Some((off, end)))?;
            ctx.pending -= (end - off) as u64;
            n += 1;
            if n % 2 == 0 {
                self.emit(ctx, 1 - d, TCP_ACK, &[], None)?;
            }
        }
        if n % 2 == 1 && ctx.rng.chance(0.5) {
            self.emit(ctx, 1 - d, TCP_ACK, &[], None)?;
        }
        let side = &mut self.s[d];
        if side.pending() == 0 {
            side.buf.clear();
            side.off = 0;
            side.push.clear();
            if side.buf.capacity() > 256 * 1024 {
                side.buf.shrink_to(64 * 1024);
            }
        }
        Ok(())
    }

    fn queue_control(&mut self, ctx: &mut Ctx, d: usize, opcode: u8, payload: &[u8]) {
        let before = self.s[d].pending();
        push_frame(
            &mut self.s[d],
            &mut ctx.rng,
            d == CLIENT,
            true,
            false,
            opcode,
            payload,
            self.split_writes,
            ctx.prm.p_straddle,
        );
        ctx.pending += (self.s[d].pending() - before) as u64;
    }

    fn queue_ping(&mut self, ctx: &mut Ctx, d: usize) {
        let mut p = vec![0u8; ctx.rng.range(0, 8) as usize];
        if d == SERVER {
            let v = ctx.pcap.ts_us.to_string();
            let n = p.len();
            p.copy_from_slice(&v.as_bytes()[v.len() - n..]);
        } else {
            ctx.rng.fill(&mut p);
        }
        self.queue_control(ctx, d, OP_PING, &p);
        self.s[1 - d].owed_pongs.push(p);
    }

    /// Queue one data message (possibly compressed and/or fragmented) on side `d`.
    fn queue_message(&mut self, ctx: &mut Ctx, d: usize) {
        self.msgs_left = self.msgs_left.saturating_sub(1);
        let rng = &mut ctx.rng;
        let large = ctx.mix == Mix::Large;
        let text = rng.chance(ctx.prm.p_text);
        let len = match ctx.mix {
            Mix::Small => 2 + (rng.f64().powi(2) * 298.0) as usize,
            Mix::Large => {
                if rng.chance(0.75) {
                    rng.log_uniform(1024, 65535) as usize
                } else {
                    rng.log_uniform(65536, 1 << 20) as usize
                }
            }
        };
        let mut msg = std::mem::take(&mut ctx.msg);
        let mut zbuf = std::mem::take(&mut ctx.zbuf);
        if text {
            gen_text(rng, &mut msg, len, large);
        } else {
            gen_binary(rng, &mut msg, len, large);
        }
        let compressed = match self.s[d].comp.as_mut() {
            Some(c) if msg.len() >= 16 => {
                deflate_message(c, &msg, &mut zbuf);
                true
            }
            _ => false,
        };
        let data: &[u8] = if compressed { &zbuf } else { &msg };
        let nfrag = if data.len() >= 4 && rng.chance(ctx.prm.p_frag) {
            rng.range(2, 4) as usize
        } else {
            1
        };
        let ping_before = if nfrag > 1 && rng.chance(0.3) {
            rng.range(1, nfrag as u64 - 1) as usize
        } else {
            usize::MAX
        };
        let before = self.s[d].pending();
        let mut start = 0;
        for i in 0..nfrag {
            let end = if i + 1 == nfrag {
                data.len()
            } else {
                let room = data.len() - start - (nfrag - 1 - i);
                start + rng.range(1, (room as u64).max(1)).min(room as u64) as usize
            };
            if i == ping_before {
                let mut p = vec![0u8; 4];
                rng.fill(&mut p);
                push_frame(
                    &mut self.s[d],
                    rng,
                    d == CLIENT,
                    true,
                    false,
                    OP_PING,
                    &p,
                    self.split_writes,
                    ctx.prm.p_straddle,
                );
                self.s[1 - d].owed_pongs.push(p);
            }
            let opcode = if i > 0 {
                OP_CONT
            } else if text {
                OP_TEXT
            } else {
                OP_BINARY
            };
            push_frame(
                &mut self.s[d],
                rng,
                d == CLIENT,
                i + 1 == nfrag,
                compressed && i == 0,
                opcode,
                &data[start..end],
                self.split_writes,
                ctx.prm.p_straddle,
            );
            start = end;
        }
        self.s[d].msgs += 1;
        ctx.pending += (self.s[d].pending() - before) as u64;
        ctx.msg = msg;
        ctx.zbuf = zbuf;
    }

    fn queue_request(&mut self, ctx: &mut Ctx) -> String {
        let rng = &mut ctx.rng;
        let mut keyb = [0u8; 16];
        rng.fill(&mut keyb);
        let key = B64.encode(keyb);
        let (_, port, host) = SERVERS[self.endpoint];
        let mut r = String::with_capacity(600);
        let mut path = rng.pick(&PATHS).to_string();
        if path.ends_with('=') {
            let _ = write!(path, "{}", rng.below(1000));
        } else if rng.chance(0.3) {
            let _ = write!(path, "?token={:016x}", rng.next_u64());
        }
        let _ = write!(r, "GET {path} HTTP/1.1\r\n");
        if port == 80 || port == 443 {
            let _ = write!(r, "Host: {host}\r\n");
        } else {
            let _ = write!(r, "Host: {host}:{port}\r\n");
        }
        let ua = rng.pick(&USER_AGENTS);
        let firefox = ua.contains("Firefox");
        r.push_str(if firefox {
            "Connection: keep-alive, Upgrade\r\n"
        } else {
            "Connection: Upgrade\r\n"
        });
        r.push_str("Pragma: no-cache\r\nCache-Control: no-cache\r\n");
        let _ = write!(r, "User-Agent: {ua}\r\n");
        r.push_str("Upgrade: websocket\r\n");
        let _ = write!(r, "Origin: {}\r\n", rng.pick(&ORIGINS));
        r.push_str("Sec-WebSocket-Version: 13\r\n");
        r.push_str("Accept-Encoding: gzip, deflate, br\r\nAccept-Language: en-US,en;q=0.9\r\n");
        let _ = write!(r, "Sec-WebSocket-Key: {key}\r\n");
        if self.offer_deflate {
            r.push_str("Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n");
        }
        if let Some(p) = self.subprotocols {
            let _ = write!(r, "Sec-WebSocket-Protocol: {}\r\n", p.join(", "));
        }
        r.push_str("\r\n");
        let before = self.s[CLIENT].pending();
        self.s[CLIENT].buf.extend_from_slice(r.as_bytes());
        ctx.pending += (self.s[CLIENT].pending() - before) as u64;
        key
    }

    fn queue_response(&mut self, ctx: &mut Ctx, key: &str) {
        let mut r = String::with_capacity(300);
        r.push_str("HTTP/1.1 101 Switching Protocols\r\n");
        let _ = write!(r, "Server: {}\r\n", ctx.rng.pick(&SERVER_SW));
        r.push_str("Upgrade: websocket\r\nConnection: Upgrade\r\n");
        let _ = write!(r, "Sec-WebSocket-Accept: {}\r\n", accept_key(key));
        if let Some(p) = self.subprotocols {
            let _ = write!(r, "Sec-WebSocket-Protocol: {}\r\n", p[0]);
        }
        if let Some((bits, _)) = self.deflate {
            if bits == 15 {
                r.push_str("Sec-WebSocket-Extensions: permessage-deflate\r\n");
            } else {
                let _ = write!(
                    r,
                    "Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits={bits}; client_max_window_bits={bits}\r\n"
                );
            }
        }
        r.push_str("\r\n");
        let before = self.s[SERVER].pending();
        self.s[SERVER].buf.extend_from_slice(r.as_bytes());
        ctx.pending += (self.s[SERVER].pending() - before) as u64;
    }

    /// Advance the connection by one step (a flight of packets). Returns true when finished.
    fn turn(&mut self, ctx: &mut Ctx) -> io::Result<bool> {
        // anything still queued goes first (in every phase)
        if self.phase == Phase::Open {
            for d in [CLIENT, SERVER] {
                if !self.s[d].owed_pongs.is_empty() && self.s[1 - d].pending() == 0 {
                    let pongs = std::mem::take(&mut self.s[d].owed_pongs);
                    for p in &pongs {
                        self.queue_control(ctx, d, OP_PONG, p);
                    }
                }
            }
        }
        let pc = self.s[CLIENT].pending() > 0;
        let ps = self.s[SERVER].pending() > 0;
        if pc || ps {
            let d = if pc && ps {
                ctx.rng.index(2)
            } else if pc {
                CLIENT
            } else {
                SERVER
            };
            if self.phase == Phase::Open
                && self.msgs_left > 0
                && !ctx.winddown
                && self.s[d].pending() < 2 * MSS
                && ctx.rng.chance(ctx.prm.p_append)
            {
                self.queue_message(ctx, d);
            }
            self.flush(ctx, d)?;
            return Ok(false);
        }
        const SYN_OPTS: [u8; 8] = [2, 4, 0x05, 0xb4, 1, 1, 4, 2]; // MSS 1460, NOP, NOP, SACK_PERM
        match self.phase {
            Phase::Syn => {
                self.emit(ctx, CLIENT, TCP_SYN, &SYN_OPTS, None)?;
                self.phase = Phase::SynAck;
            }
            Phase::SynAck => {
                self.emit(ctx, SERVER, TCP_SYN | TCP_ACK, &SYN_OPTS, None)?;
                self.phase = Phase::Request;
            }
            Phase::Request => {
                self.emit(ctx, CLIENT, TCP_ACK, &[], None)?;
                let key = self.queue_request(ctx);
                self.flush(ctx, CLIENT)?;
                // the key is only needed for the response: stash it in the server buffer
                // right away so no per-connection string has to be kept
                self.queue_response(ctx, &key);
                if self.greeting && self.msgs_left > 0 {
                    // first server message coalesced with the 101 response
                    self.queue_message(ctx, SERVER);
                }
                self.phase = Phase::Response;
            }
            // the 101 (and a coalesced greeting) went out through the pending branch
            Phase::Response => self.phase = Phase::Open,
            Phase::Open => {
                if self.msgs_left == 0 || ctx.winddown {
                    match self.ending {
                        Ending::Clean => {
                            let code = self.close_code;
                            let reason: &[u8] = match code {
                                1000 => {
                                    if ctx.rng.chance(0.5) {
                                        b""
                                    } else {
                                        b"normal closure"
                                    }
                                }
                                1001 => b"going away",
                                _ => b"session expired",
                            };
                            let mut p = code.to_be_bytes().to_vec();
                            p.extend_from_slice(reason);
                            let d = self.initiator;
                            self.queue_control(ctx, d, OP_CLOSE, &p);
                            self.flush(ctx, d)?;
                            self.phase = Phase::CloseEcho;
                        }
                        Ending::Abnormal => {
                            let d = ctx.rng.index(2);
                            self.emit(ctx, d, TCP_RST | TCP_ACK, &[], None)?;
                            self.phase = Phase::Done;
                        }
                        Ending::Open => self.phase = Phase::Done,
                    }
                    return Ok(self.phase == Phase::Done);
                }
                let r = ctx.rng.f64();
                if r < ctx.prm.p_ping {
                    let d = if ctx.rng.chance(0.7) { SERVER } else { CLIENT };
                    self.queue_ping(ctx, d);
                    self.flush(ctx, d)?;
                } else if r < ctx.prm.p_ping + ctx.prm.p_upong {
                    let d = ctx.rng.index(2);
                    self.queue_control(ctx, d, OP_PONG, b"");
                    self.flush(ctx, d)?;
                } else {
                    let d = if ctx.rng.chance(ctx.prm.p_client_msg) {
                        CLIENT
                    } else {
                        SERVER
                    };
                    let n = if ctx.rng.chance(ctx.prm.p_burst) {
                        ctx.rng.range(2, 12)
                    } else {
                        1
                    };
                    for _ in 0..n {
                        if self.msgs_left == 0 {
                            break;
                        }
                        self.queue_message(ctx, d);
                    }
                    self.flush(ctx, d)?;
                }
            }
            Phase::CloseEcho => {
                let d = 1 - self.initiator;
                let code = self.close_code.to_be_bytes();
                self.queue_control(ctx, d, OP_CLOSE, &code);
                self.flush(ctx, d)?;
                self.phase = Phase::Fin1;
            }
            Phase::Fin1 => {
                self.emit(ctx, SERVER, TCP_FIN | TCP_ACK, &[], None)?;
                self.phase = Phase::Fin2;
            }
            Phase::Fin2 => {
                self.emit(ctx, CLIENT, TCP_FIN | TCP_ACK, &[], None)?;
                self.phase = Phase::Fin3;
            }
            Phase::Fin3 => {
                self.emit(ctx, SERVER, TCP_ACK, &[], None)?;
                self.phase = Phase::Done;
            }
            Phase::Done => {}
        }
        Ok(self.phase == Phase::Done)
    }

    fn summary(&self) -> Summary {
        let clean = self.ending == Ending::Clean;
        Summary {
            id: self.id,
            client: (self.s[CLIENT].addr.ip, self.s[CLIENT].addr.port),
            server: (self.s[SERVER].addr.ip, self.s[SERVER].addr.port),
            frames: [self.s[CLIENT].frames, self.s[SERVER].frames],
            msgs: [self.s[CLIENT].msgs, self.s[SERVER].msgs],
            ending: self.ending,
            close_code: clean.then_some(self.close_code),
            initiator: clean.then_some(self.initiator),
            deflate: self.deflate.is_some(),
            subprotocol: self.subprotocols.map(|p| p[0]),
        }
    }
}

fn counts_json(c: &[u64; 6]) -> serde_json::Value {
    let mut m = serde_json::Map::new();
    for (k, v) in OPCODE_KEYS.iter().zip(c) {
        m.insert((*k).to_string(), json!(v));
    }
    serde_json::Value::Object(m)
}

fn truth_path(out: &Path) -> PathBuf {
    let stem = if out.extension().is_some_and(|e| e == "pcap") {
        out.with_extension("")
    } else {
        out.to_path_buf()
    };
    let mut s = stem.into_os_string();
    s.push(".truth.json");
    PathBuf::from(s)
}

fn write_truth(path: &Path, args: &Args, ctx: &Ctx, sums: &[Summary]) -> io::Result<()> {
    let mut w = BufWriter::new(File::create(path)?);
    let mut total = [0u64; 6];
    let mut msgs = [0u64; 2];
    let mut endings = [0u64; 3];
    for s in sums {
        for dir in &s.frames {
            for (t, v) in total.iter_mut().zip(dir) {
                *t += v;
            }
        }
        msgs[0] += s.msgs[0];
        msgs[1] += s.msgs[1];
        endings[s.ending as usize] += 1;
    }
    let mix = match args.mix {
        Mix::Small => "small",
        Mix::Large => "large",
    };
    let head = json!({
        "mix": mix,
        "seed": args.seed,
        "size_mb": args.size_mb,
        "connections": sums.len(),
        "frames": counts_json(&total),
        "messages": {"client": msgs[0], "server": msgs[1]},
        "endings": {"clean": endings[0], "abnormal": endings[1], "open": endings[2]},
        "packets": ctx.pcap.packets,
        "bytes": ctx.pcap.bytes,
        "file_bytes": ctx.pcap.file_bytes,
    });
    let head = serde_json::to_string(&head)?;
    // reopen the object to append by_connection, one connection per line
    w.write_all(&head.as_bytes()[..head.len() - 1])?;
    w.write_all(b",\"by_connection\":[\n")?;
    for (i, s) in sums.iter().enumerate() {
        let v = json!({
            "client": fmt_addr(s.client),
            "server": fmt_addr(s.server),
            "frames": {"client": counts_json(&s.frames[0]), "server": counts_json(&s.frames[1])},
            "messages": {"client": s.msgs[0], "server": s.msgs[1]},
            "ending": s.ending.name(),
            "close_code": s.close_code,
            "initiator": s.initiator.map(|d| if d == CLIENT { "client" } else { "server" }),
            "deflate": s.deflate,
            "subprotocol": s.subprotocol,
        });
        serde_json::to_writer(&mut w, &v)?;
        w.write_all(if i + 1 == sums.len() { b"\n" } else { b",\n" })?;
    }
    w.write_all(b"]}\n")?;
    w.flush()
}

fn main() -> Result<(), Box<dyn Error>> {
    let args = Args::parse();
    if args.size_mb.is_nan() || args.size_mb <= 0.0 {
        return Err("--size-mb must be positive".into());
    }
    let started = Instant::now();
    let target = (args.size_mb * 1e6) as u64;
    if let Some(dir) = args.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut rng = Rng(args.seed ^ 0x5753_5052_4f42_4531);
    let start_us = 1_700_000_000_000_000u64 + rng.below(86_400_000_000);
    let mut ctx = Ctx {
        rng,
        pcap: Pcap::create(&args.out, start_us)?,
        mix: args.mix,
        prm: Params::new(args.mix, target, args.pool),
        winddown: false,
        pending: 0,
        msg: Vec::new(),
        zbuf: Vec::new(),
        comp_pool: Vec::new(),
    };
    let pool_size = ctx.prm.pool;
    let ramp_bytes = (target / 20).max(1);
    let mut used = HashSet::new();
    let mut pool: Vec<Conn> = Vec::with_capacity(pool_size);
    let mut sums: Vec<Summary> = Vec::new();
    let mut next_id = 0usize;
    loop {
        if !ctx.winddown && ctx.pcap.file_bytes + ctx.pending + pool.len() as u64 * 400 >= target {
            ctx.winddown = true;
        }
        if !ctx.winddown {
            let want =
                ((pool_size as u64 * ctx.pcap.file_bytes) / ramp_bytes).clamp(1, pool_size as u64);
            if (pool.len() as u64) < want {
                pool.push(Conn::new(next_id, &mut ctx, &mut used));
                next_id += 1;
            }
        }
        if pool.is_empty() {
            break;
        }
        let i = ctx.rng.index(pool.len());
        if pool[i].turn(&mut ctx)? {
            let mut c = pool.swap_remove(i);
            sums.push(c.summary());
            if let Some(key) = c.deflate {
                for side in &mut c.s {
                    if let Some(comp) = side.comp.take() {
                        ctx.recycle_compressor(key, comp);
                    }
                }
            }
        }
    }
    ctx.pcap.w.flush()?;
    sums.sort_by_key(|s| s.id);
    let tp = truth_path(&args.out);
    write_truth(&tp, &args, &ctx, &sums)?;
    eprintln!(
        "wrote {} ({:.1} MB, {} packets, {} connections, pool {}) and {} in {:.2}s",
        args.out.display(),
        ctx.pcap.file_bytes as f64 / 1e6,
        ctx.pcap.packets,
        sums.len(),
        pool_size,
        tp.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_key_rfc6455_example() {
        assert_eq!(
            accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn checksum_matches_rfc1071_example() {
        // RFC 1071 example words 0001 f203 f4f5 f6f7 -> sum ddf2, checksum 220d
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(csum_fold(csum_add(0, &data)), !0xddf2);
        // odd length: pad with zero
        assert_eq!(
            csum_fold(csum_add(0, &[0x12, 0x34, 0x56])),
            !(0x1234u16 + 0x5600)
        );
    }

    #[test]
    fn deflate_strips_sync_marker_and_roundtrips() {
        let mut c = Compress::new(Compression::new(6), false);
        let mut out = Vec::new();
        let msg = b"{\"type\":\"tick\",\"px\":1.00}{\"type\":\"tick\",\"px\":1.00}";
        deflate_message(&mut c, msg, &mut out);
        let mut inflated = Vec::with_capacity(1000);
        let mut d = flate2::Decompress::new(false);
        let mut input = out.clone();
        input.extend_from_slice(&[0, 0, 0xff, 0xff]);
        d.decompress_vec(&input, &mut inflated, flate2::FlushDecompress::Sync)
            .unwrap();
        assert_eq!(&inflated[..], &msg[..]);
    }

    #[test]
    fn masked_frame_layout() {
        let mut rng = Rng(7);
        let addr = Addr {
            mac: [0; 6],
            ip: [10, 0, 0, 1],
            port: 1,
            ttl: 64,
        };
        let mut side = Side::new(addr, &mut rng);
        let payload = vec![0xabu8; 300];
        push_frame(
            &mut side, &mut rng, true, true, false, OP_BINARY, &payload, false, 0.0,
        );
        assert_eq!(side.buf[0], 0x82);
        assert_eq!(side.buf[1], 0x80 | 126);
        assert_eq!(u16::from_be_bytes([side.buf[2], side.buf[3]]), 300);
        let key = [side.buf[4], side.buf[5], side.buf[6], side.buf[7]];
        let body: Vec<u8> = side.buf[8..]
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ key[i % 4])
            .collect();
        assert_eq!(body, payload);
        assert_eq!(side.frames[opcode_index(OP_BINARY)], 1);
    }

    #[test]
    fn rng_is_deterministic() {
        let mut a = Rng(1);
        let mut b = Rng(1);
        for _ in 0..100 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
        for _ in 0..1000 {
            let v = a.range(3, 9);
            assert!((3..=9).contains(&v));
        }
    }
}
