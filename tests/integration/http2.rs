//! The HTTP/2 layer on a recorded h2c capture (captures/h2c-websocket.pcap: Node http2 server and
//! client, two RFC 8441 WebSocket streams and a GET on one connection): the TCP streams are
//! reassembled, run through `Http2Layer`, and each WebSocket stream's DATA is read as RFC 6455
//! frames and compared with what the endpoints logged (captures/h2c-websocket.truth.json).

use std::collections::HashMap;

use serde_json::Value;
use sha2::{Digest, Sha256};
use wsprobe::capture::file::read_capture;
use wsprobe::decode::decode;
use wsprobe::diag::Side;
use wsprobe::stream::http2::summary::Http2Summary;
use wsprobe::stream::http2::{Http2Event, Http2Layer};
use wsprobe::stream::{Chunk, End, Layer, Out};
use wsprobe::tcp::reassembly::{
    PacketClock, Reassembler, ReassemblyLimits, SegmentFlags, StreamEvent,
};
use wsprobe::ws::frame::{HeaderParse, parse_frame_header};
use wsprobe::ws::mask::apply_mask;

const CAPTURE: &str = "captures/h2c-websocket.pcap";
const TRUTH: &str = "captures/h2c-websocket.truth.json";
const SERVER_PORT: u16 = 21080;

/// One reassembled piece: sender, time, bytes or the sender's end.
type Piece = (Side, f64, Option<Vec<u8>>, Option<End>);

/// Reassembled pieces of the one TCP connection, in capture order.
fn tcp_pieces(path: &str) -> Vec<Piece> {
    let file = std::fs::File::open(path).unwrap();
    let mut dirs = [
        Reassembler::new(ReassemblyLimits::default()),
        Reassembler::new(ReassemblyLimits::default()),
    ];
    let mut out = Vec::new();
    let mut packets = 0;
    read_capture(
        file,
        path,
        |p| {
            let Ok(seg) = decode(p) else { return };
            let side = if seg.dst.port == SERVER_PORT {
                Side::Client
            } else {
                Side::Server
            };
            let i = usize::from(side == Side::Server);
            let flags = SegmentFlags {
                syn: seg.syn,
                fin: seg.fin,
                rst: seg.rst,
            };
            packets += 1;
            let clock = PacketClock {
                packets,
                time: p.ts,
            };
            dirs[i].on_segment(seg.seq, flags, seg.payload, clock, &mut |e| match e {
                StreamEvent::Data(d) => out.push((side, p.ts, Some(d.to_vec()), None)),
                StreamEvent::Gap { .. } | StreamEvent::LateForGap { .. } => {
                    panic!("a gap in a loopback capture")
                }
            });
            if seg.fin {
                out.push((side, p.ts, None, Some(End::Fin)));
            }
        },
        |_| {},
    )
    .unwrap();
    out
}

#[derive(Default)]
struct Seen {
    data: HashMap<(u32, Side), Vec<u8>>,
    events: Vec<Http2Event>,
    summary: Http2Summary,
}

fn run_layer(pieces: &[Piece]) -> Seen {
    let mut layer = Http2Layer::new();
    let mut seen = Seen::default();
    for (side, time, bytes, end) in pieces {
        let mut sink = |o: Out<'_, Http2Event>| match o {
            Out::Data {
                channel,
                from,
                chunk: Chunk::Data(d),
            } => seen
                .data
                .entry((channel, from))
                .or_default()
                .extend_from_slice(d),
            Out::Data { .. } => panic!("a gap out of a capture without one"),
            Out::Event(e) => {
                seen.summary.observe(&e, *time);
                seen.events.push(e);
            }
        };
        match (bytes, end) {
            (Some(b), _) => layer.push(*side, *time, Chunk::Data(b), &mut sink),
            (None, Some(how)) => layer.end(*side, *time, *how, &mut sink),
            _ => {}
        }
    }
    seen
}

/// RFC 6455 messages in `bytes`: (opcode name, unmasked payload), fragments joined.
fn ws_messages(mut bytes: &[u8], masked: bool) -> Vec<(&'static str, Vec<u8>)> {
    let mut out = Vec::new();
    let mut partial: Option<(&'static str, Vec<u8>)> = None;
    while !bytes.is_empty() {
        let HeaderParse::Complete(h) = parse_frame_header(bytes) else {
            panic!("DATA that is not WebSocket frames")
        };
        assert_eq!(h.is_masked(), masked);
        let hl = usize::from(h.header_len);
        let mut payload = bytes[hl..hl + h.payload_len as usize].to_vec();
        if let Some(key) = h.mask {
            apply_mask(&mut payload, key, 0);
        }
        bytes = &bytes[hl + h.payload_len as usize..];
        let name = h.opcode.as_str();
        if h.opcode.is_control() {
            out.push((name, payload));
        } else if name == "continuation" {
            let p = partial.as_mut().expect("continuation without a message");
            p.1.extend_from_slice(&payload);
            if h.fin {
                out.push(partial.take().unwrap());
            }
        } else if h.fin {
            out.push((name, payload));
        } else {
            partial = Some((name, payload));
        }
    }
    out
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn h2c_capture_matches_the_endpoints_logs() {
    let truth: Value = serde_json::from_str(&std::fs::read_to_string(TRUTH).unwrap()).unwrap();
    let seen = run_layer(&tcp_pieces(CAPTURE));
    let diags: Vec<String> = seen
        .events
        .iter()
        .filter_map(|e| match e {
            Http2Event::Diagnostic { diagnostic, .. } => Some(diagnostic.message.clone()),
            _ => None,
        })
        .collect();
    assert!(diags.is_empty(), "{diags:?}");
    let streams = truth["connections"][0]["streams"].as_array().unwrap();
    let mut websockets = 0;
    for s in streams {
        let sid = s["stream_id"].as_u64().unwrap() as u32;
        let path = s["path"].as_str().unwrap();
        if s["kind"] == "ordinary" {
            let other = &seen.summary.connection().other;
            assert!(
                other.iter().any(|o| o.stream_id == sid
                    && o.path.as_deref() == Some(path)
                    && o.status == Some(200)),
                "{other:?}"
            );
            assert!(!seen.data.keys().any(|(c, _)| *c == sid));
            continue;
        }
        websockets += 1;
        let req = seen
            .events
            .iter()
            .find_map(|e| match e {
                Http2Event::WebSocketRequest { stream_id, head } if *stream_id == sid => {
                    Some(head.clone())
                }
                _ => None,
            })
            .expect("extended CONNECT");
        assert_eq!(req.path.as_deref(), Some(path));
        assert_eq!(req.version.as_deref(), Some("13"));
        assert!(req.problems().is_empty(), "{:?}", req.problems());
        let resp = seen
            .events
            .iter()
            .find_map(|e| match e {
                Http2Event::WebSocketResponse { stream_id, head } if *stream_id == sid => {
                    Some(head.clone())
                }
                _ => None,
            })
            .expect("response");
        assert_eq!(resp.status, Some(200));
        assert_eq!(resp.protocol.as_deref(), s["subprotocol"].as_str());
        // Every message, in order per direction, byte-exact.
        for (side, name) in [(Side::Client, "client"), (Side::Server, "server")] {
            let got = ws_messages(
                seen.data.get(&(sid, side)).map_or(&[][..], Vec::as_slice),
                side == Side::Client,
            );
            let want: Vec<&Value> = s["messages"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|m| m["from"] == name)
                .collect();
            assert_eq!(got.len(), want.len(), "stream {sid} {name}");
            for ((op, payload), m) in got.iter().zip(&want) {
                assert_eq!(*op, m["opcode"].as_str().unwrap(), "stream {sid} {name}");
                assert_eq!(payload.len() as u64, m["length"].as_u64().unwrap());
                assert_eq!(hex(&Sha256::digest(payload)), m["sha256"].as_str().unwrap());
                assert_eq!(m["delivered"], true);
            }
        }
        let rec = seen.summary.stream(sid).unwrap();
        match s["end"]["kind"].as_str().unwrap() {
            "close_frames" => {
                assert_eq!(rec.end.as_deref(), Some("end_stream"), "stream {sid}");
                assert!(rec.end_stream.client && rec.end_stream.server);
            }
            "rst_stream" => {
                let code = s["end"]["code"].as_str().unwrap();
                assert_eq!(rec.end.as_deref(), Some(&*format!("rst_stream {code}")));
                assert_eq!(rec.end_from, Some(Side::Client));
            }
            other => panic!("{other}"),
        }
    }
    assert_eq!(websockets, 2);
    let c = seen.summary.connection();
    assert_eq!(c.enable_connect_protocol, Some(true));
    assert_eq!(c.websocket_streams, 2);
    assert_eq!(c.other_streams, 1);
    // Node's client says goodbye with a GOAWAY(NO_ERROR) when the session closes.
    assert_eq!(
        c.goaway.as_ref().map(|g| g.error.as_str()),
        Some("NO_ERROR")
    );
}

#[test]
fn h2c_capture_split_anywhere_gives_the_same_streams() {
    let pieces = tcp_pieces(CAPTURE);
    let reference = run_layer(&pieces).data;
    // Re-cut every TCP piece into 7-byte pieces.
    let mut small = Vec::new();
    for (side, t, bytes, end) in &pieces {
        match bytes {
            Some(b) => {
                for c in b.chunks(7) {
                    small.push((*side, *t, Some(c.to_vec()), None));
                }
            }
            None => small.push((*side, *t, None, *end)),
        }
    }
    assert_eq!(run_layer(&small).data, reference);
}

/// The payload a message record shows (`--payload full`), as bytes.
fn record_payload(m: &Value) -> Vec<u8> {
    use base64::Engine;
    match (m["text"].as_str(), m["base64"].as_str()) {
        (Some(t), _) => t.as_bytes().to_vec(),
        (None, Some(b)) => base64::engine::general_purpose::STANDARD.decode(b).unwrap(),
        _ => Vec::new(),
    }
}

/// End to end: `wsprobe analyze` lists one WebSocket connection per extended-CONNECT stream,
/// with its own handshake, messages and ending; the GET is only counted.
#[test]
fn h2c_capture_end_to_end() {
    let truth: Value = serde_json::from_str(&std::fs::read_to_string(TRUTH).unwrap()).unwrap();
    let report = crate::util::report_of(
        std::path::Path::new(CAPTURE),
        &["--messages", "--payload", "full"],
    );
    let conns = report["connections"].as_array().unwrap();
    let streams: Vec<&Value> = truth["connections"][0]["streams"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["kind"] == "websocket")
        .collect();
    assert_eq!(conns.len(), streams.len(), "{conns:#?}");
    assert_eq!(report["summary"]["tcp_connections"], 1);
    for s in streams {
        let sid = &s["stream_id"];
        let c = conns
            .iter()
            .find(|c| &c["http2"]["stream_id"] == sid)
            .unwrap_or_else(|| panic!("no entry for stream {sid}"));
        assert_eq!(c["handshake"]["path"], s["path"]);
        assert_eq!(c["handshake"]["status"], 200);
        assert_eq!(c["handshake"]["accepted"], true);
        assert_eq!(c["handshake"]["subprotocol"], s["subprotocol"]);
        assert_eq!(c["handshake"]["host"], "127.0.0.1:21080");
        assert_eq!(c["server"]["port"], SERVER_PORT);
        // Messages: the truth lists each as sent, in order per side.
        for side in ["client", "server"] {
            let ours: Vec<&Value> = c["messages"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|m| m["from"] == side)
                .collect();
            let want: Vec<&Value> = s["messages"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|m| m["from"] == side)
                .collect();
            assert_eq!(ours.len(), want.len(), "stream {sid} {side}");
            for (o, w) in ours.iter().zip(&want) {
                assert_eq!(o["opcode"], w["opcode"], "stream {sid} {side}");
                assert_eq!(o["complete"], true);
                assert_eq!(o["length"], w["length"]);
                if o["opcode"] != "close" {
                    assert_eq!(
                        hex(&Sha256::digest(record_payload(o))),
                        w["sha256"].as_str().unwrap(),
                        "stream {sid} {side}"
                    );
                }
            }
        }
        let ids: Vec<String> = crate::util::diag_ids(c);
        let h2 = &c["http2"];
        assert_eq!(h2["handshake_seen"], true);
        assert_eq!(h2["connection"]["enable_connect_protocol"], true);
        assert_eq!(h2["connection"]["other_streams"], 1);
        assert_eq!(h2["connection"]["other"][0]["path"], "/index.txt");
        match s["end"]["kind"].as_str().unwrap() {
            "close_frames" => {
                assert_eq!(h2["end"], "end_stream");
                assert_eq!(c["close"]["outcome"], "clean");
                assert_eq!(c["close"]["code"], 1000);
                assert_eq!(c["close"]["reason"], "bye");
                assert!(ids.is_empty(), "{ids:?}");
            }
            "rst_stream" => {
                assert_eq!(h2["end"], "rst_stream CANCEL");
                assert_eq!(h2["end_from"], "client");
                assert_eq!(c["close"]["outcome"], "abnormal");
                assert_eq!(c["close"]["code"], 1006);
                assert_eq!(c["close"]["tcp_end"], "rst");
                let summary = c["close"]["summary"].as_str().unwrap();
                assert!(
                    summary.starts_with("1006 abnormal: stream reset by the client (CANCEL)"),
                    "{summary}"
                );
                assert_eq!(ids, ["abnormal_closure"]);
            }
            other => panic!("{other}"),
        }
    }
}

/// The capture's packets, as (record header + data) byte ranges of the pcap file.
fn pcap_records(bytes: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut pos = 24;
    while pos + 16 <= bytes.len() {
        let incl = u32::from_le_bytes(bytes[pos + 8..pos + 12].try_into().unwrap()) as usize;
        out.push(&bytes[pos..pos + 16 + incl]);
        pos += 16 + incl;
    }
    out
}

/// A pcap of the h2c capture's packets `keep`.
fn cut_capture(keep: std::ops::Range<usize>) -> std::path::PathBuf {
    let bytes = std::fs::read(CAPTURE).unwrap();
    assert_eq!(&bytes[..4], &[0xd4, 0xc3, 0xb2, 0xa1], "little-endian pcap");
    let records = pcap_records(&bytes);
    let mut out = bytes[..24].to_vec();
    let end = keep.end.min(records.len());
    for r in &records[keep.start..end] {
        out.extend_from_slice(r);
    }
    crate::util::temp_file(&out, "pcap")
}

/// A capture that starts after the handshakes (the first 12 packets: TCP handshake, preface,
/// SETTINGS, the GET and both extended CONNECTs and their answers) still finds both WebSocket
/// streams from their DATA, and says the handshake was not seen.
#[test]
fn h2c_capture_started_late() {
    let report = crate::util::report_of(&cut_capture(12..usize::MAX), &["--messages"]);
    let conns = report["connections"].as_array().unwrap();
    assert_eq!(conns.len(), 2, "{conns:#?}");
    for c in conns {
        let h2 = &c["http2"];
        assert_eq!(h2["handshake_seen"], false, "{h2}");
        assert!(c["handshake"].is_null());
        let ids = crate::util::diag_ids(c);
        assert!(
            ids.contains(&"h2_handshake_not_seen".to_string()),
            "{ids:?}"
        );
        assert!(ids.contains(&"midstream_start".to_string()), "{ids:?}");
        assert!(!ids.iter().any(|i| i == "h2_protocol_error"), "{ids:?}");
        let msgs = c["messages"].as_array().unwrap();
        assert!(msgs.len() >= 8, "{msgs:#?}");
        assert!(msgs.iter().all(|m| m["complete"] == true));
    }
    let chat = conns.iter().find(|c| c["http2"]["stream_id"] == 3).unwrap();
    assert_eq!(chat["http2"]["end"], "end_stream");
    assert_eq!(chat["close"]["outcome"], "clean");
    let cancel = conns.iter().find(|c| c["http2"]["stream_id"] == 5).unwrap();
    assert_eq!(cancel["http2"]["end"], "rst_stream CANCEL");
    assert_eq!(cancel["close"]["code"], 1006);
}

/// A capture cut while both WebSockets are open: each entry is still open, and says the
/// capture ended.
#[test]
fn h2c_capture_cut_short() {
    let report = crate::util::report_of(&cut_capture(0..20), &[]);
    let conns = report["connections"].as_array().unwrap();
    assert_eq!(conns.len(), 2, "{conns:#?}");
    for c in conns {
        assert_eq!(c["http2"]["end"], Value::Null);
        assert_eq!(c["close"]["outcome"], "open", "{}", c["close"]);
        assert!(c["handshake"]["accepted"] == true);
    }
}

/// Headless Chromium over TLS with ALPN h2 (captures/h2-chromium.pcapng, keys beside it): the
/// TLS connection is listed for its TLS facts and names the HTTP/2 connection it carried; it is
/// counted once, as the HTTP/2 carrier of the two WebSocket streams, not as a TLS connection
/// without WebSocket, and its entry does not count among the WebSocket endings.
#[test]
fn a_tls_connection_carrying_http2_websockets_is_counted_as_their_carrier() {
    let dir = crate::util::captures_dir();
    let keys = dir.join("h2-chromium.keys");
    let report = crate::util::report_of(
        &dir.join("h2-chromium.pcapng"),
        &["--keylog", keys.to_str().unwrap()],
    );
    let conns = report["connections"].as_array().unwrap();
    let carrier: Vec<&Value> = conns.iter().filter(|c| c["http2"].is_null()).collect();
    assert_eq!(carrier.len(), 1, "{conns:#?}");
    let carrier = carrier[0];
    assert_eq!(carrier["tls"]["decrypted"], true);
    assert_eq!(carrier["tls"]["alpn"], "h2", "{}", carrier["tls"]);
    assert_eq!(carrier["http2_connection"]["websocket_streams"], 2);
    assert_eq!(carrier["http2_connection"]["enable_connect_protocol"], true);
    let streams: Vec<u64> = conns
        .iter()
        .filter_map(|c| c["http2"]["stream_id"].as_u64())
        .collect();
    assert_eq!(streams.len(), 2, "{streams:?}");
    let summary = &report["summary"];
    // The carrier and Chromium's refused first attempt on [::1].
    assert_eq!(summary["tcp_connections"], 2);
    assert_eq!(summary["websocket_connections"], 2);
    assert_eq!(summary["other_tcp"]["http2"], 1);
    assert_eq!(summary["other_tcp"]["tls"], 0);
    assert!(
        summary["outcomes"].get("not_websocket").is_none(),
        "{summary}"
    );
}

/// captures/h2c-flow-stall.pcap: a Node http2 client announces a 16 KiB stream window, sends
/// 60,000 bytes on a WebSocket stream and stops reading for 1.5 s (its log says how long). The
/// server's echo uses the window up and waits for the client's WINDOW_UPDATE: the stream's
/// record counts the stall and says how long the longest was, an h2_flow_control_stall
/// diagnostic names the server as the sender that waited, and the messages are still exact.
#[test]
fn a_receiver_that_stops_reading_stalls_the_senders_websocket_messages() {
    let dir = crate::util::captures_dir();
    let truth: Value =
        serde_json::from_slice(&std::fs::read(dir.join("h2c-flow-stall.truth.json")).unwrap())
            .unwrap();
    let stream = truth["connections"][0]["streams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["kind"] == "websocket")
        .unwrap();
    let paused = stream["client_reader_paused_s"].as_f64().unwrap();
    let report = crate::util::report_of(&dir.join("h2c-flow-stall.pcap"), &["--messages"]);
    let conns = report["connections"].as_array().unwrap();
    assert_eq!(conns.len(), 1, "{conns:#?}");
    let c = &conns[0];
    assert_eq!(c["http2"]["stream_id"], stream["stream_id"]);
    let flow = &c["http2"]["flow_control"];
    assert!(flow["stalls"]["server"].as_u64().unwrap() >= 1, "{flow}");
    assert_eq!(flow["stalls"]["client"], 0, "{flow}");
    assert_eq!(flow["stalled_at_end"], Value::Null);
    // The stall starts when the echo has filled the window, after the reader stopped.
    let longest = flow["longest_s"].as_f64().unwrap();
    assert!(
        longest <= paused + 0.05 && longest >= paused - 0.5,
        "longest stall {longest} s, reader paused {paused} s"
    );
    let stalls: Vec<&Value> = c["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["id"] == "h2_flow_control_stall")
        .collect();
    assert_eq!(stalls.len(), 1, "{:#?}", c["diagnostics"]);
    assert_eq!(stalls[0]["from"], "server");
    assert_eq!(stalls[0]["severity"], "warning");
    let text = stalls[0]["message"].as_str().unwrap();
    assert!(text.contains("16384 bytes"), "{text}");
    assert!(text.contains("client's WINDOW_UPDATE"), "{text}");
    // Every message as the endpoints logged it.
    let messages = |list: &Value| -> Vec<(String, String, u64)> {
        list.as_array()
            .unwrap()
            .iter()
            .map(|m| {
                (
                    m["from"].as_str().unwrap().to_string(),
                    m["opcode"].as_str().unwrap().to_string(),
                    m["length"].as_u64().unwrap(),
                )
            })
            .collect()
    };
    assert_eq!(messages(&c["messages"]), messages(&stream["messages"]));
    assert_eq!(c["close"]["outcome"], "clean");
}

/// On the other HTTP/2 captures every window is followed from the preface and no sender
/// waited long: no stall diagnostic, a flow record with nothing stalled at the end.
#[test]
fn streams_that_never_wait_for_credit_report_no_stall() {
    let dir = crate::util::captures_dir();
    let keys = dir.join("h2-chromium.keys");
    for (capture, args) in [
        ("h2c-websocket.pcap", vec![]),
        (
            "h2-chromium.pcapng",
            vec!["--keylog", keys.to_str().unwrap()],
        ),
    ] {
        let report = crate::util::report_of(&dir.join(capture), &args);
        for c in report["connections"].as_array().unwrap() {
            assert!(
                !crate::util::diag_ids(c).contains(&"h2_flow_control_stall".to_string()),
                "{capture}: {:#?}",
                c["diagnostics"]
            );
            if c["http2"].is_null() {
                continue;
            }
            let flow = &c["http2"]["flow_control"];
            assert!(flow.is_object(), "{capture}: {}", c["http2"]);
            assert_eq!(flow["stalled_at_end"], Value::Null, "{capture}: {flow}");
        }
    }
}
