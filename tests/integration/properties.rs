//! End to end property: a random WebSocket conversation (text and binary messages, fragments,
//! pings between fragments, pongs, optional permessage-deflate with or without context takeover)
//! written as a pcap with random segment sizes, reordered and duplicated packets, gives exactly
//! the messages that were sent from `wsprobe analyze --format json --messages --payload full`.
//!
//! Cases: 32 by default; `PROPTEST_CASES=500 cargo test properties` for more.

use base64::Engine;
use flate2::{Compress, Compression, FlushCompress};
use proptest::prelude::*;
use proptest::test_runner::Config;
use wsprobe::ws::frame::encode_frame;

use crate::util::Rng;
use crate::util::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Binary,
    Ping,
    Pong,
}

#[derive(Debug, Clone)]
struct Msg {
    from_server: bool,
    kind: Kind,
    payload: Vec<u8>,
    /// Data messages: how many frames (the payload is cut at random points).
    fragments: usize,
    /// Data messages under permessage-deflate: sent compressed.
    compressed: bool,
    /// Data messages of 2+ fragments: a ping with this payload between the first two.
    ping_inside: Option<Vec<u8>>,
}

/// permessage-deflate as negotiated: (client_no_context_takeover, server_no_context_takeover).
type Deflate = Option<(bool, bool)>;

fn msg() -> impl Strategy<Value = Msg> {
    let payload = prop_oneof![
        6 => "\\PC{0,80}".prop_map(String::into_bytes),
        3 => proptest::collection::vec(any::<u8>(), 0..3000),
        1 => proptest::collection::vec(any::<u8>(), 65_536..70_000),
    ];
    (
        any::<bool>(),
        prop_oneof![4 => Just(Kind::Text), 4 => Just(Kind::Binary), 1 => Just(Kind::Ping), 1 => Just(Kind::Pong)],
        payload,
        1usize..6,
        any::<bool>(),
        proptest::option::weighted(0.3, proptest::collection::vec(any::<u8>(), 0..20)),
    )
        .prop_map(|(from_server, kind, mut payload, fragments, compressed, ping_inside)| {
            match kind {
                // Text must be UTF-8: keep the longest valid prefix of random bytes.
                Kind::Text => {
                    let valid = match std::str::from_utf8(&payload) {
                        Ok(_) => payload.len(),
                        Err(e) => e.valid_up_to(),
                    };
                    payload.truncate(valid);
                }
                Kind::Ping | Kind::Pong => payload.truncate(125),
                Kind::Binary => {}
            }
            Msg {
                from_server,
                kind,
                payload,
                fragments,
                compressed,
                ping_inside,
            }
        })
}

/// RFC 7692 §7.2.1: compress with a sync flush, remove the trailing 00 00 ff ff.
fn deflate(c: &mut Compress, data: &[u8]) -> Vec<u8> {
    let start = c.total_in();
    let mut out = Vec::with_capacity(data.len() + 64);
    loop {
        let done = (c.total_in() - start) as usize;
        out.reserve(4096);
        c.compress_vec(&data[done..], &mut out, FlushCompress::Sync)
            .unwrap();
        if (c.total_in() - start) as usize == data.len() && out.len() < out.capacity() {
            break;
        }
    }
    if out.ends_with(&[0, 0, 0xff, 0xff]) {
        out.truncate(out.len() - 4);
    }
    out
}

/// The frames of one message, as its sender writes them.
fn frames(
    m: &Msg,
    deflate_on: bool,
    z: &mut Compress,
    no_takeover: bool,
    rng: &mut Rng,
) -> Vec<u8> {
    let key = (!m.from_server).then(|| (rng.next() as u32).to_be_bytes());
    let opcode = match m.kind {
        Kind::Text => 1,
        Kind::Binary => 2,
        Kind::Ping => return encode_frame(true, 0, 9, key, &m.payload),
        Kind::Pong => return encode_frame(true, 0, 10, key, &m.payload),
    };
    let compressed = deflate_on && m.compressed;
    let body = if compressed {
        if no_takeover {
            z.reset();
        }
        deflate(z, &m.payload)
    } else {
        m.payload.clone()
    };
    // Cut points, sorted; fragments may be empty.
    let mut cuts: Vec<usize> = (1..m.fragments)
        .map(|_| rng.below(body.len() + 1))
        .collect();
    cuts.sort_unstable();
    cuts.push(body.len());
    let mut out = Vec::new();
    let mut from = 0;
    for (i, &to) in cuts.iter().enumerate() {
        let last = i == cuts.len() - 1;
        let (op, rsv) = if i == 0 {
            (opcode, if compressed { 0b100 } else { 0 })
        } else {
            (0, 0)
        };
        out.extend(encode_frame(last, rsv, op, key, &body[from..to]));
        if i == 0
            && !last
            && let Some(ping) = &m.ping_inside
        {
            out.extend(encode_frame(true, 0, 9, key, ping));
        }
        from = to;
    }
    out
}

/// What the report should list for `m`'s sender: (from, opcode, text or b64:...).
fn expected(m: &Msg) -> Vec<(String, String, String)> {
    let from = if m.from_server { "server" } else { "client" }.to_string();
    let b64 = |b: &[u8]| {
        format!(
            "b64:{}",
            base64::engine::general_purpose::STANDARD.encode(b)
        )
    };
    let mut out = Vec::new();
    if let Some(ping) = &m.ping_inside
        && m.fragments > 1
        && matches!(m.kind, Kind::Text | Kind::Binary)
    {
        out.push((from.clone(), "ping".to_string(), b64(ping)));
    }
    let (opcode, shown) = match m.kind {
        Kind::Text => ("text", String::from_utf8(m.payload.clone()).unwrap()),
        Kind::Binary => ("binary", b64(&m.payload)),
        Kind::Ping => ("ping", b64(&m.payload)),
        Kind::Pong => ("pong", b64(&m.payload)),
    };
    out.push((from, opcode.to_string(), shown));
    out
}

/// Shuffles and duplicates packets within each run of packets from one side (so the peer's
/// acknowledgments still follow the data they acknowledge, as at any capture point), and
/// repeats an earlier data segment late now and then.
fn disorder(packets: &[Pkt], rng: &mut Rng) -> Vec<Pkt> {
    let mut out = Vec::with_capacity(packets.len() * 2);
    let mut i = 0;
    while i < packets.len() {
        let side = packets[i].from_client;
        let mut j = i;
        while j < packets.len() && packets[j].from_client == side {
            j += 1;
        }
        let mut run: Vec<Pkt> = packets[i..j].to_vec();
        // A few swaps within a window of 8, then duplicates placed later in the run.
        for _ in 0..run.len() {
            if rng.below(3) == 0 {
                let a = rng.below(run.len());
                let b = (a + rng.below(8)).min(run.len() - 1);
                run.swap(a, b);
            }
        }
        for _ in 0..run.len() / 4 + 1 {
            if rng.below(2) == 0 {
                let a = rng.below(run.len());
                let at = a + 1 + rng.below(run.len() - a);
                let copy = run[a].clone();
                run.insert(at, copy);
            }
        }
        out.extend(run);
        // Now and then a late retransmission of an earlier data segment.
        if rng.below(5) == 0 {
            let old = &packets[rng.below(j)];
            if !old.syn && !old.payload.is_empty() {
                out.push(old.clone());
            }
        }
        i = j;
    }
    out
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(32)
}

proptest! {
    #![proptest_config(Config { cases: cases(), ..Config::default() })]

    #[test]
    fn any_conversation_survives_segmentation_reordering_and_duplication(
        msgs in proptest::collection::vec(msg(), 1..12),
        deflate_on in proptest::option::of((any::<bool>(), any::<bool>())),
        closed in any::<bool>(),
        seed in any::<u64>(),
    ) {
        let deflate_on: Deflate = deflate_on;
        let mut rng = Rng(seed | 1);
        let mut c = Conv::new("10.0.0.1:50000", "10.0.0.2:8080");
        if rng.below(2) == 0 {
            c = c.near_wrap();
        }
        c.tcp_open();
        let ext = match deflate_on {
            None => String::new(),
            Some((cn, sn)) => format!(
                "Sec-WebSocket-Extensions: permessage-deflate{}{}\r\n",
                if cn { "; client_no_context_takeover" } else { "" },
                if sn { "; server_no_context_takeover" } else { "" },
            ),
        };
        c.mss = 1 + rng.below(1500);
        c.send(true, &upgrade_request("/prop", &ext));
        c.send(false, &upgrade_response(&ext));
        let mut zc = Compress::new(Compression::default(), false);
        let mut zs = Compress::new(Compression::default(), false);
        let mut want = Vec::new();
        let mut pending: [Vec<u8>; 2] = [Vec::new(), Vec::new()];
        for m in &msgs {
            let side = usize::from(m.from_server);
            let (z, no_takeover) = match (m.from_server, deflate_on) {
                (false, Some((cn, _))) => (&mut zc, cn),
                (true, Some((_, sn))) => (&mut zs, sn),
                (false, None) => (&mut zc, false),
                (true, None) => (&mut zs, false),
            };
            pending[side].extend(frames(m, deflate_on.is_some(), z, no_takeover, &mut rng));
            want.extend(expected(m));
            // Sometimes a side writes what it has: frames then share and straddle segments.
            if rng.below(2) == 0 {
                c.mss = 1 + rng.below(3000);
                let bytes = std::mem::take(&mut pending[side]);
                c.send(!m.from_server, &bytes);
            }
        }
        for side in [0, 1] {
            let bytes = std::mem::take(&mut pending[side]);
            c.mss = 1 + rng.below(3000);
            c.send(side == 0, &bytes);
        }
        if closed {
            c.send(true, &client_frame(true, 8, &close_payload(1000, "done")));
            c.send(false, &server_frame(true, 8, &close_payload(1000, "")));
            want.push(("client".into(), "close".into(), "done".into()));
            want.push(("server".into(), "close".into(), "".into()));
            c.fin(false);
            c.fin(true);
        }
        let packets = disorder(&c.packets, &mut rng);
        if let Ok(path) = std::env::var("WSPROBE_PROP_DUMP") {
            std::fs::write(path, pcap_of(&c, &packets, Link::Ethernet)).unwrap();
        }
        let report = report_bytes(
            &pcap_of(&c, &packets, Link::Ethernet),
            &["--messages", "--payload", "full"],
        );
        let conns = report["connections"].as_array().unwrap();
        prop_assert_eq!(conns.len(), 1, "{:#}", report);
        let conn = &conns[0];
        let got = messages(conn);
        for who in ["client", "server"] {
            let g: Vec<_> = got.iter().filter(|m| m.0 == who).collect();
            let w: Vec<_> = want.iter().filter(|m| m.0 == who).collect();
            prop_assert!(g == w, "{} messages differ:\n got {:.3000}\nwant {:.3000}\ndiagnostics {:#}",
                who, format!("{g:?}"), format!("{w:?}"), conn["diagnostics"]);
        }
        for m in conn["messages"].as_array().unwrap() {
            prop_assert_eq!(&m["complete"], true, "{:#}", m);
        }
        let bad: Vec<_> = conn["diagnostics"].as_array().unwrap().iter()
            .filter(|d| d["severity"] == "error" || d["id"] == "tcp_gap" || d["id"] == "limit_exceeded")
            .filter(|d| d["id"] != "abnormal_closure")
            .collect();
        prop_assert!(bad.is_empty(), "{:#?}", bad);
    }
}
