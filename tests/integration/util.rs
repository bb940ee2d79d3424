//! Test harness: builds synthetic captures from TCP conversations and runs the wsprobe binary.

#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use etherparse::PacketBuilder;
use serde_json::Value;

/// One packet of a conversation.
#[derive(Clone, Debug)]
pub struct Pkt {
    pub ts: f64,
    pub from_client: bool,
    pub syn: bool,
    pub ack: bool,
    pub fin: bool,
    pub rst: bool,
    pub seq: u32,
    pub ack_no: u32,
    pub payload: Vec<u8>,
}

/// A TCP conversation between a client and a server, tracking sequence numbers.
pub struct Conv {
    pub client: (std::net::IpAddr, u16),
    pub server: (std::net::IpAddr, u16),
    pub client_next: u32,
    pub server_next: u32,
    pub time: f64,
    pub mss: usize,
    pub packets: Vec<Pkt>,
}

impl Conv {
    pub fn new(client: &str, server: &str) -> Conv {
        let c: std::net::SocketAddr = client.parse().unwrap();
        let s: std::net::SocketAddr = server.parse().unwrap();
        Conv {
            client: (c.ip(), c.port()),
            server: (s.ip(), s.port()),
            client_next: 1000,
            server_next: 5000,
            time: 1_700_000_000.0,
            mss: 1448,
            packets: Vec::new(),
        }
    }

    /// Starts both sequence spaces near the top of u32 so the streams wrap.
    pub fn near_wrap(mut self) -> Conv {
        self.client_next = u32::MAX - 700;
        self.server_next = u32::MAX - 3000;
        self
    }

    fn push(&mut self, from_client: bool, syn: bool, fin: bool, rst: bool, payload: &[u8]) {
        self.time += 0.001;
        let (seq, ack_no) = if from_client {
            (self.client_next, self.server_next)
        } else {
            (self.server_next, self.client_next)
        };
        let ack = !(syn && from_client);
        self.packets.push(Pkt {
            ts: self.time,
            from_client,
            syn,
            ack,
            fin,
            rst,
            seq,
            ack_no: if ack { ack_no } else { 0 },
            payload: payload.to_vec(),
        });
        let advance = payload.len() as u32 + u32::from(syn) + u32::from(fin);
        if from_client {
            self.client_next = self.client_next.wrapping_add(advance);
        } else {
            self.server_next = self.server_next.wrapping_add(advance);
        }
    }

    pub fn tcp_open(&mut self) -> &mut Self {
        self.push(true, true, false, false, &[]);
        self.push(false, true, false, false, &[]);
        self.push(true, false, false, false, &[]);
        self
    }

    /// Sends bytes, cut into MSS-sized segments.
    pub fn send(&mut self, from_client: bool, bytes: &[u8]) -> &mut Self {
        for chunk in bytes.chunks(self.mss.max(1)) {
            self.push(from_client, false, false, false, chunk);
        }
        self
    }

    pub fn wait(&mut self, seconds: f64) -> &mut Self {
        self.time += seconds;
        self
    }

    pub fn fin(&mut self, from_client: bool) -> &mut Self {
        self.push(from_client, false, true, false, &[]);
        self
    }

    pub fn rst(&mut self, from_client: bool) -> &mut Self {
        self.push(from_client, false, false, true, &[]);
        self
    }
}

/// RFC 6455 §1.3 sample key and its accept value.
pub const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
pub const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

pub fn upgrade_request(path: &str, extra: &str) -> Vec<u8> {
    format!(
        "GET {path} HTTP/1.1\r\nHost: example.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\nOrigin: http://example.test\r\n{extra}\r\n"
    )
    .into_bytes()
}

pub fn upgrade_response(extra: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {ACCEPT}\r\n{extra}\r\n"
    )
    .into_bytes()
}

/// A frame as a client sends it (masked with a fixed key).
pub fn client_frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    wsprobe::ws::frame::encode_frame(fin, 0, opcode, Some([0x37, 0xfa, 0x21, 0x3d]), payload)
}

/// A frame as a server sends it.
pub fn server_frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    wsprobe::ws::frame::encode_frame(fin, 0, opcode, None, payload)
}

pub fn close_payload(code: u16, reason: &str) -> Vec<u8> {
    let mut p = code.to_be_bytes().to_vec();
    p.extend_from_slice(reason.as_bytes());
    p
}

/// Link-layer framings a capture can use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Link {
    Ethernet,
    Vlan,
    Sll,
    Sll2,
    Null,
    Raw,
}

impl Link {
    fn linktype(self) -> u32 {
        match self {
            Link::Ethernet | Link::Vlan => 1,
            Link::Sll => 113,
            Link::Sll2 => 276,
            Link::Null => 0,
            Link::Raw => 101,
        }
    }
}

/// Link header + IP + TCP bytes of one packet.
pub fn frame_bytes(conv: &Conv, p: &Pkt, link: Link) -> Vec<u8> {
    let (src, dst) = if p.from_client {
        (conv.client, conv.server)
    } else {
        (conv.server, conv.client)
    };
    let builder = match (src.0, dst.0) {
        (std::net::IpAddr::V4(s), std::net::IpAddr::V4(d)) => {
            PacketBuilder::ipv4(s.octets(), d.octets(), 64)
        }
        (std::net::IpAddr::V6(s), std::net::IpAddr::V6(d)) => {
            PacketBuilder::ipv6(s.octets(), d.octets(), 64)
        }
        _ => panic!("mixed address families"),
    };
    let mut tcp = builder.tcp(src.1, dst.1, p.seq, 65535);
    if p.syn {
        tcp = tcp.syn();
    }
    if p.ack {
        tcp = tcp.ack(p.ack_no);
    }
    if p.fin {
        tcp = tcp.fin();
    }
    if p.rst {
        tcp = tcp.rst();
    }
    let mut ip = Vec::new();
    tcp.write(&mut ip, &p.payload).unwrap();
    let v6 = matches!(src.0, std::net::IpAddr::V6(_));
    let ethertype: u16 = if v6 { 0x86dd } else { 0x0800 };
    let mut out = Vec::new();
    match link {
        Link::Ethernet | Link::Vlan => {
            out.extend_from_slice(&[2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1]);
            if link == Link::Vlan {
                out.extend_from_slice(&[0x81, 0x00, 0x00, 42]);
            }
            out.extend_from_slice(&ethertype.to_be_bytes());
        }
        Link::Sll => {
            out.extend_from_slice(&[0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0]);
            out.extend_from_slice(&ethertype.to_be_bytes());
        }
        Link::Sll2 => {
            out.extend_from_slice(&ethertype.to_be_bytes());
            out.extend_from_slice(&[0, 0, 0, 0, 0, 1, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0]);
        }
        Link::Null => out.extend_from_slice(&(if v6 { 30u32 } else { 2u32 }).to_le_bytes()),
        Link::Raw => {}
    }
    out.extend_from_slice(&ip);
    if matches!(link, Link::Ethernet | Link::Vlan) && out.len() < 60 {
        out.resize(60, 0); // Ethernet padding: must not be read as TCP payload
    }
    out
}

/// A classic pcap (microseconds, little-endian).
pub fn pcap(conv: &Conv, link: Link) -> Vec<u8> {
    pcap_of(conv, &conv.packets, link)
}

pub fn pcap_of(conv: &Conv, packets: &[Pkt], link: Link) -> Vec<u8> {
    let mut out = pcap_header(link);
    for p in packets {
        pcap_record(&mut out, conv, p, link);
    }
    out
}

/// One classic pcap of many conversations, their packets interleaved by time. At equal times
/// (µs), packets keep the order of `convs`, then their order within the conversation.
pub fn pcap_merged(convs: &[Conv], link: Link) -> Vec<u8> {
    let mut order: Vec<(f64, usize, usize)> = convs
        .iter()
        .enumerate()
        .flat_map(|(c, conv)| (0..conv.packets.len()).map(move |p| (conv.packets[p].ts, c, p)))
        .collect();
    order.sort_by_key(|&(ts, c, p)| (pcap_time(ts), c, p));
    let mut out = pcap_header(link);
    for (_, c, p) in order {
        pcap_record(&mut out, &convs[c], &convs[c].packets[p], link);
    }
    out
}

fn pcap_header(link: Link) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&0xa1b2c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&262144u32.to_le_bytes());
    out.extend_from_slice(&link.linktype().to_le_bytes());
    out
}

/// A packet time as a pcap record writes it: seconds and microseconds.
fn pcap_time(ts: f64) -> (u32, u32) {
    let secs = ts.floor();
    match ((ts - secs) * 1e6).round() as u32 {
        1_000_000 => (secs as u32 + 1, 0), // rounded up to the next second
        micros => (secs as u32, micros),
    }
}

fn pcap_record(out: &mut Vec<u8>, conv: &Conv, p: &Pkt, link: Link) {
    let data = frame_bytes(conv, p, link);
    let (secs, micros) = pcap_time(p.ts);
    out.extend_from_slice(&secs.to_le_bytes());
    out.extend_from_slice(&micros.to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out.extend_from_slice(&data);
}

fn pcapng_block(out: &mut Vec<u8>, kind: u32, body: &[u8]) {
    let mut body = body.to_vec();
    while !body.len().is_multiple_of(4) {
        body.push(0);
    }
    let len = (body.len() + 12) as u32;
    out.extend_from_slice(&kind.to_le_bytes());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&body);
    out.extend_from_slice(&len.to_le_bytes());
}

/// A pcapng with one interface per entry of `links` (the first with nanosecond resolution);
/// client packets go on interface 0, server packets on the last interface.
pub fn pcapng(conv: &Conv, links: &[Link]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut shb = Vec::new();
    shb.extend_from_slice(&0x1a2b3c4du32.to_le_bytes());
    shb.extend_from_slice(&1u16.to_le_bytes());
    shb.extend_from_slice(&0u16.to_le_bytes());
    shb.extend_from_slice(&(-1i64).to_le_bytes());
    pcapng_block(&mut out, 0x0a0d0d0a, &shb);
    for (i, link) in links.iter().enumerate() {
        let mut idb = Vec::new();
        idb.extend_from_slice(&(link.linktype() as u16).to_le_bytes());
        idb.extend_from_slice(&0u16.to_le_bytes());
        idb.extend_from_slice(&262144u32.to_le_bytes());
        if i == 0 {
            // if_tsresol = 9: nanoseconds.
            idb.extend_from_slice(&9u16.to_le_bytes());
            idb.extend_from_slice(&1u16.to_le_bytes());
            idb.extend_from_slice(&[9, 0, 0, 0]);
            idb.extend_from_slice(&[0, 0, 0, 0]);
        }
        pcapng_block(&mut out, 1, &idb);
    }
    for p in &conv.packets {
        let iface = if p.from_client { 0 } else { links.len() - 1 };
        let data = frame_bytes(conv, p, links[iface]);
        let units = if iface == 0 { 1e9 } else { 1e6 };
        let ts = (p.ts * units).round() as u64;
        let mut epb = Vec::new();
        epb.extend_from_slice(&(iface as u32).to_le_bytes());
        epb.extend_from_slice(&((ts >> 32) as u32).to_le_bytes());
        epb.extend_from_slice(&(ts as u32).to_le_bytes());
        epb.extend_from_slice(&(data.len() as u32).to_le_bytes());
        epb.extend_from_slice(&(data.len() as u32).to_le_bytes());
        epb.extend_from_slice(&data);
        pcapng_block(&mut out, 6, &epb);
    }
    out
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Writes bytes to a fresh temporary file.
pub fn temp_file(bytes: &[u8], ext: &str) -> PathBuf {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("wsprobe-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("t{n}.{ext}"));
    std::fs::write(&path, bytes).unwrap();
    path
}

/// The binary, without colour and without the caller's COLUMNS (tables are 100 wide then,
/// the default when standard output is not a terminal; tests that care set COLUMNS).
pub fn wsprobe() -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::cargo_bin("wsprobe").unwrap();
    cmd.env("NO_COLOR", "1");
    cmd.env_remove("COLUMNS");
    // A key log set for a browser on the test machine must not change the results.
    cmd.env_remove("SSLKEYLOGFILE");
    cmd
}

/// Runs `wsprobe analyze --format json <args> FILE` and parses the report (exit 0 or 1).
pub fn report_of(path: &std::path::Path, args: &[&str]) -> Value {
    let out = wsprobe()
        .arg("analyze")
        .arg("--format")
        .arg("json")
        .args(args)
        .arg(path)
        .output()
        .unwrap();
    assert!(
        matches!(out.status.code(), Some(0) | Some(1)),
        "exit {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

/// The report of a synthetic capture.
pub fn report_bytes(bytes: &[u8], args: &[&str]) -> Value {
    report_of(&temp_file(bytes, "pcap"), args)
}

/// Diagnostic ids of a connection.
pub fn diag_ids(conn: &Value) -> Vec<String> {
    conn["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap().to_string())
        .collect()
}

/// Messages of a connection as (from, opcode, text-or-base64).
pub fn messages(conn: &Value) -> Vec<(String, String, String)> {
    conn["messages"]
        .as_array()
        .expect("run with --messages")
        .iter()
        .map(|m| {
            let payload = m["text"]
                .as_str()
                .map(|s| s.to_string())
                .or_else(|| m["base64"].as_str().map(|s| format!("b64:{s}")))
                .unwrap_or_default();
            (
                m["from"].as_str().unwrap().to_string(),
                m["opcode"].as_str().unwrap().to_string(),
                payload,
            )
        })
        .collect()
}

/// Public captures from other projects, when the shared folder is present: `../shared` beside
/// the checkout, or (for a git worktree one level deeper) `../../shared`.
pub fn public_captures_dir() -> Option<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    ["../shared/captures/public", "../../shared/captures/public"]
        .iter()
        .map(|rel| root.join(rel))
        .find(|dir| dir.is_dir())
}

pub fn captures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("captures")
}

/// xorshift64*: deterministic choices for mutants and for what proptest need not shrink.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// Cargo's target directory, wherever it is (CARGO_TARGET_DIR, a configured target-dir, or
/// ./target): the parent of the directory cargo gives integration tests for their files.
pub fn target_dir() -> PathBuf {
    let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    tmp.parent().map(PathBuf::from).unwrap_or(tmp)
}
