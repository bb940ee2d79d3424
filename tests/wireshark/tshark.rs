//! Runs tshark on a capture and reads its JSON (`-T json -x`) into [`Conn`]s: one per TCP stream
//! with WebSocket frames or an upgrade request.
//!
//! What is read, per `websocket` PDU: `fin`, `rsv`, `opcode`, `mask`, the length (the
//! `payload_length` field says 126/127 for extended lengths: the real one is in
//! `payload_length_ext_16/_64`), the unmasked payload (`websocket.payload_raw`, before inflating),
//! the close status code, and what tshark shows as the message: the `text` sub-field of the
//! message's last frame (reassembled and, when tshark managed, inflated) or the `data` that a
//! binary message's last frame hands on. Per HTTP message: upgrade requests and the status of the
//! response that names them in `http.request_in`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::model::{Conn, Frame, Handshake, Message, opcode_name};

/// `tshark --version`'s first line, or None when tshark cannot be run.
pub fn version() -> Option<String> {
    let out = Command::new("tshark").arg("--version").output().ok()?;
    if !out.status.success() {
        return None;
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .map(str::to_string)
}

/// Runs tshark with `options` (preferences, decode-as) and returns the packets it shows.
pub fn packets(path: &Path, options: &[String]) -> Vec<Value> {
    let out = Command::new("tshark")
        .arg("-r")
        .arg(path)
        .args(options)
        .args([
            "-Y",
            "websocket || http",
            "-T",
            "json",
            "--no-duplicate-keys",
        ])
        .args(["-x", "-J", "frame ip ipv6 tcp http websocket"])
        .output()
        .expect("run tshark");
    assert!(
        out.status.success(),
        "tshark failed on {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.stdout.iter().all(u8::is_ascii_whitespace) {
        return Vec::new();
    }
    serde_json::from_slice::<Value>(&out.stdout)
        .expect("tshark JSON")
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// A value or, with `--no-duplicate-keys`, the array a repeated key became.
fn each(v: Option<&Value>) -> Vec<&Value> {
    match v {
        None => Vec::new(),
        Some(Value::Array(items)) => items.iter().collect(),
        Some(other) => vec![other],
    }
}

/// A `_raw` field (`[hex, offset, length, bitmask, type]`) or the array of them.
fn raws(v: Option<&Value>) -> Vec<Vec<u8>> {
    match v {
        Some(Value::Array(items)) if items.first().is_some_and(Value::is_string) => {
            vec![hex(items[0].as_str().unwrap())]
        }
        Some(Value::Array(items)) => items.iter().flat_map(|i| raws(Some(i))).collect(),
        _ => Vec::new(),
    }
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).expect("hex"))
        .collect()
}

/// First value of `key` anywhere under `v`.
fn find<'v>(v: &'v Value, key: &str) -> Option<&'v Value> {
    match v {
        Value::Object(map) => map
            .get(key)
            .or_else(|| map.values().find_map(|x| find(x, key))),
        Value::Array(items) => items.iter().find_map(|x| find(x, key)),
        _ => None,
    }
}

fn text<'v>(v: &'v Value, key: &str) -> Option<&'v str> {
    match find(v, key)? {
        Value::String(s) => Some(s),
        Value::Array(a) => a.first()?.as_str(),
        _ => None,
    }
}

fn number(v: &Value, key: &str) -> Option<u64> {
    let s = text(v, key)?;
    match s.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
}

struct TsFrame {
    number: u64,
    frame: Frame,
    payload: Vec<u8>,
    /// `websocket.payload.text` of this PDU (tshark's message text, on the last frame).
    text: Option<Vec<u8>>,
    close_code: Option<u16>,
}

#[derive(Default)]
struct Stream {
    ends: Vec<String>,
    upgrade_request: Option<(u64, String)>,
    responses: Vec<(u64, u16)>,
    /// Frames per sender endpoint.
    frames: BTreeMap<String, Vec<TsFrame>>,
    violations: BTreeSet<String>,
}

/// The connections tshark shows WebSocket traffic or an upgrade request in, by tcp.stream.
pub fn connections(packets: &[Value]) -> Vec<Conn> {
    let mut streams: BTreeMap<u64, Stream> = BTreeMap::new();
    // `data` a packet hands on, per frame number (binary messages' payloads, in order).
    let mut data: BTreeMap<u64, Vec<Vec<u8>>> = BTreeMap::new();
    for p in packets {
        let layers = &p["_source"]["layers"];
        let frame_no = number(&layers["frame"], "frame.number").expect("frame.number");
        let Some(ip) = each(layers.get("ip").or_else(|| layers.get("ipv6")))
            .last()
            .copied()
        else {
            continue;
        };
        let Some(tcp) = each(layers.get("tcp")).last().copied() else {
            continue;
        };
        let src_ip = text(ip, "ip.src").or_else(|| text(ip, "ipv6.src"));
        let dst_ip = text(ip, "ip.dst").or_else(|| text(ip, "ipv6.dst"));
        let (Some(src_ip), Some(dst_ip)) = (src_ip, dst_ip) else {
            continue;
        };
        let stream_id = number(tcp, "tcp.stream").expect("tcp.stream");
        let src = format!("{src_ip}:{}", number(tcp, "tcp.srcport").unwrap());
        let dst = format!("{dst_ip}:{}", number(tcp, "tcp.dstport").unwrap());
        let stream = streams.entry(stream_id).or_default();
        if stream.ends.is_empty() {
            stream.ends = vec![src.clone(), dst.clone()];
        }
        for http in each(layers.get("http")) {
            let upgrade = text(http, "http.upgrade")
                .is_some_and(|u| u.to_ascii_lowercase().contains("websocket"));
            if find(http, "http.request.method").is_some()
                && upgrade
                && stream.upgrade_request.is_none()
            {
                stream.upgrade_request = Some((frame_no, src.clone()));
            }
            if let (Some(code), Some(request_in)) = (
                number(http, "http.response.code"),
                number(http, "http.request_in"),
            ) {
                stream.responses.push((request_in, code as u16));
            }
        }
        data.insert(frame_no, raws(layers.get("data_raw")));
        for ws in each(layers.get("websocket")) {
            let mut len = number(ws, "websocket.payload_length").expect("payload_length");
            if len == 126 {
                len = number(ws, "websocket.payload_length_ext_16").expect("ext_16");
            } else if len == 127 {
                len = number(ws, "websocket.payload_length_ext_64").expect("ext_64");
            }
            let opcode = number(ws, "websocket.opcode").expect("opcode") as u8;
            if find(ws, "websocket.payload.unknown.expert").is_some() {
                stream.violations.insert("reserved_opcode".into());
            }
            let payload = raws(ws.get("websocket.payload_raw"))
                .into_iter()
                .next()
                .unwrap_or_default();
            let text = ws
                .get("websocket.payload")
                .and_then(|p| raws(p.get("websocket.payload.text_raw")).into_iter().next());
            stream.frames.entry(src.clone()).or_default().push(TsFrame {
                number: frame_no,
                frame: Frame {
                    opcode: opcode_name(opcode),
                    fin: text_is(ws, "websocket.fin", "1"),
                    rsv: number(ws, "websocket.rsv").expect("rsv") as u8,
                    masked: text_is(ws, "websocket.mask", "1"),
                    payload_length: len,
                },
                payload,
                text,
                close_code: number(ws, "websocket.payload.close.status_code").map(|c| c as u16),
            });
        }
    }
    streams
        .into_iter()
        .filter(|(_, s)| s.upgrade_request.is_some() || !s.frames.is_empty())
        .map(|(id, s)| to_conn(id, s, &mut data))
        .collect()
}

fn text_is(v: &Value, key: &str, want: &str) -> bool {
    text(v, key) == Some(want)
}

fn to_conn(id: u64, s: Stream, data: &mut BTreeMap<u64, Vec<Vec<u8>>>) -> Conn {
    // The requester is the client; without a request, the side whose frames are masked.
    let client = match &s.upgrade_request {
        Some((_, from)) => from.clone(),
        None => s
            .frames
            .iter()
            .find(|(_, f)| f.iter().any(|f| f.frame.masked))
            .map(|(e, _)| e.clone())
            .unwrap_or_else(|| s.ends[0].clone()),
    };
    let server = s
        .ends
        .iter()
        .find(|e| **e != client)
        .cloned()
        .unwrap_or_default();
    let handshake = s.upgrade_request.as_ref().map(|(n, _)| Handshake {
        status: s
            .responses
            .iter()
            .find(|(req, _)| req == n)
            .map(|(_, code)| *code),
    });
    let mut conn = Conn {
        ends: [client, server],
        label: format!("tcp.stream {id}"),
        handshake,
        violations: s.violations,
        ..Conn::default()
    };
    let mut frames = s.frames;
    for i in 0..2 {
        let sent = frames.remove(&conn.ends[i]).unwrap_or_default();
        conn.frames[i] = sent.iter().map(|f| f.frame.clone()).collect();
        conn.messages[i] = messages(&sent, data);
    }
    conn
}

/// Data messages (first frame to FIN, control frames passing between) and control frames, as
/// tshark shows them.
fn messages(frames: &[TsFrame], data: &mut BTreeMap<u64, Vec<Vec<u8>>>) -> Vec<Message> {
    let mut out = Vec::new();
    let mut current: Option<(Message, Vec<u64>)> = None;
    for f in frames {
        let h = &f.frame;
        if matches!(h.opcode.as_str(), "close" | "ping" | "pong")
            || h.opcode.starts_with("reserved")
        {
            out.push(Message {
                opcode: h.opcode.clone(),
                compressed: h.rsv & 4 != 0,
                fragments: 1,
                payload: Some(f.payload.clone()),
                wire: f.payload.clone(),
                close_code: f.close_code,
                place: format!("frame {}", f.number),
            });
            continue;
        }
        if h.opcode != "continuation" {
            current = Some((
                Message {
                    opcode: h.opcode.clone(),
                    compressed: h.rsv & 4 != 0,
                    fragments: 0,
                    payload: None,
                    wire: Vec::new(),
                    close_code: None,
                    place: String::new(),
                },
                Vec::new(),
            ));
        }
        let Some((m, numbers)) = current.as_mut() else {
            continue;
        };
        m.fragments += 1;
        m.wire.extend_from_slice(&f.payload);
        numbers.push(f.number);
        if !h.fin {
            continue;
        }
        let (mut m, numbers) = current.take().unwrap();
        m.place = format!(
            "frame{} {}",
            if numbers.len() > 1 { "s" } else { "" },
            numbers
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(",")
        );
        m.payload = if !m.compressed {
            Some(m.wire.clone())
        } else if m.opcode == "text" {
            f.text.clone()
        } else {
            // A binary message's payload is the next `data` its last frame's packet handed on.
            data.get_mut(&f.number)
                .filter(|d| !d.is_empty())
                .map(|d| d.remove(0))
        };
        out.push(m);
    }
    out
}
