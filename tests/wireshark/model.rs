//! What both tools say about one connection, in one shape, so they can be compared field by field.

use std::collections::BTreeSet;

/// Which end sent a frame or message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Side {
    Client,
    Server,
}

impl Side {
    pub fn name(self) -> &'static str {
        match self {
            Side::Client => "client",
            Side::Server => "server",
        }
    }

    pub fn index(self) -> usize {
        match self {
            Side::Client => 0,
            Side::Server => 1,
        }
    }
}

pub const SIDES: [Side; 2] = [Side::Client, Side::Server];

/// The opening handshake as seen: an upgrade request, and the status of its answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handshake {
    pub status: Option<u16>,
}

/// One frame header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub opcode: String,
    pub fin: bool,
    pub rsv: u8,
    pub masked: bool,
    pub payload_length: u64,
}

/// One data message or control frame.
#[derive(Debug, Clone)]
pub struct Message {
    pub opcode: String,
    /// RSV1 on the first frame.
    pub compressed: bool,
    pub fragments: usize,
    /// The payload the tool shows: unmasked, reassembled and (if compressed and it could)
    /// inflated; None when it shows none (inflating failed).
    pub payload: Option<Vec<u8>>,
    /// tshark only: the unmasked wire payload of all fragments (before inflating).
    pub wire: Vec<u8>,
    /// Close frames: the status code (None: no code in the body).
    pub close_code: Option<u16>,
    /// Where it is, for people: tshark frame numbers or the wsprobe time.
    pub place: String,
}

/// One TCP connection's WebSocket view.
#[derive(Debug, Clone, Default)]
pub struct Conn {
    /// `ip:port` of each end; the client first when the tool knows which it is.
    pub ends: [String; 2],
    /// How the tool names it (tcp.stream N, connection N).
    pub label: String,
    pub handshake: Option<Handshake>,
    /// Frames sent by `ends[0]` and by `ends[1]`.
    pub frames: [Vec<Frame>; 2],
    pub messages: [Vec<Message>; 2],
    /// RFC violations the tool flags (wsprobe diagnostic ids; tshark expert infos mapped to them).
    pub violations: BTreeSet<String>,
}

impl Conn {
    /// Index in `ends` of the sender `ip:port`.
    pub fn end_of(&self, endpoint: &str) -> Option<usize> {
        self.ends.iter().position(|e| e == endpoint)
    }
}

pub fn opcode_name(op: u8) -> String {
    match op {
        0 => "continuation".into(),
        1 => "text".into(),
        2 => "binary".into(),
        8 => "close".into(),
        9 => "ping".into(),
        10 => "pong".into(),
        n => format!("reserved-{n}"),
    }
}
