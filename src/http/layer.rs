//! The HTTP/1.1 layer of a connection: both directions' bytes in; request and response heads,
//! the upgrade's outcome and, once a direction carries WebSocket frames, its bytes out.
//!
//! ```text
//! Http ─(upgrade request)─► AwaitUpgrade ─(101)─► Frames (synced)
//!   │                           └─(refused)─► Http (the client may try again)
//!   ├─(101 from the server)─────────────────────► Frames (synced)
//!   ├─(Upgrade: h2c, then its 101)──────────────► Handover (HTTP/2 bytes, RFC 7540 §3.2)
//!   └─(not HTTP at its first byte: mid-stream capture)──► Frames (hunting)
//! ```
//!
//! Bytes the client sends after its upgrade request are held until the answer is seen, so that
//! a refusal does not turn them into frames.

use std::collections::VecDeque;

use super::{
    HttpEvent, HttpStream, MAX_HEAD_BYTES, MAX_HEADERS, Negotiated, NotHttp, RequestHead,
    ResponseHead, Role,
};
use crate::diag::Side;
use crate::stream::{Chunk, End, Layer, Out};

/// Client bytes held while the upgrade's answer is awaited.
pub const MAX_HELD_BYTES: usize = 256 * 1024;

/// What the HTTP/1.1 layer tells the analysis.
#[derive(Debug)]
pub enum Http1Event {
    /// A request head. `upgrade`: it asks for a WebSocket.
    Request {
        /// The head.
        head: RequestHead,
        /// It asks for a WebSocket (`Upgrade: websocket` or a `Sec-WebSocket-Key`).
        upgrade: bool,
    },
    /// A final response head. `to_upgrade`: it answers an upgrade request (None when the
    /// request was not captured).
    Response {
        /// The head.
        head: ResponseHead,
        /// What it answers.
        to_upgrade: Option<bool>,
    },
    /// The 101 that switched the connection to WebSocket, with what it negotiated.
    Upgraded(Negotiated),
    /// From now on `from`'s bytes are WebSocket frames; `synced`: they start at a frame
    /// boundary (after a handshake), else their boundaries must be hunted for.
    Frames {
        /// The direction.
        from: Side,
        /// Starts at a frame boundary.
        synced: bool,
    },
    /// A head passed the limits ([`MAX_HEAD_BYTES`], [`MAX_HEADERS`]): `what` says which; the
    /// rest of the direction is not read.
    HeadLimit {
        /// The direction.
        from: Side,
        /// `passed 65536 bytes without ending`.
        what: String,
    },
    /// The upgrade request got no answer before the stream ended.
    Unanswered,
    /// A `101` answered an `Upgrade: h2c` request (RFC 7540 §3.2): from now on both directions'
    /// bytes are HTTP/2, the server's starting with its SETTINGS, the client's with the
    /// preface; the request itself is HTTP/2 stream 1.
    SwitchedToHttp2 {
        /// The upgraded request's method.
        method: String,
        /// Its target.
        path: String,
    },
}

/// What a request awaiting its answer asked for.
enum Pending {
    Plain,
    WebSocket,
    /// An `Upgrade: h2c` request's method and target (boxed: rare, and the queue's every slot
    /// would be as large).
    H2c(Box<(String, String)>),
}

enum Phase {
    /// Nothing seen yet in this direction.
    Idle,
    Http {
        /// Boxed: after the upgrade both directions carry frames, and the phases stay in every
        /// open connection.
        stream: Box<HttpStream>,
        heads: u32,
    },
    AwaitUpgrade {
        held: Vec<(f64, Vec<u8>)>,
        bytes: usize,
    },
    /// WebSocket frames: bytes pass through.
    Frames,
    /// Another protocol took over after a 101 (HTTP/2 after `Upgrade: h2c`): bytes pass through.
    Handover,
    Opaque,
}

type Sink<'o> = &'o mut dyn for<'a> FnMut(Out<'a, Http1Event>);

/// HTTP/1.1 before (and the hand-over at) the upgrade. Made once the roles are known.
pub struct Http1Layer {
    phases: [Phase; 2],
    /// Requests awaiting their answer, and what each asked for.
    pending: VecDeque<Pending>,
    upgraded: bool,
    /// An upgrade request was seen (a later hole is then capture loss, not a mid-stream start).
    upgrade_requested: bool,
}

impl Default for Http1Layer {
    fn default() -> Self {
        Self::new()
    }
}

fn index(side: Side) -> usize {
    match side {
        Side::Client => 0,
        Side::Server => 1,
    }
}

impl Http1Layer {
    /// A layer with both directions still to come.
    pub fn new() -> Self {
        Http1Layer {
            phases: [Phase::Idle, Phase::Idle],
            pending: VecDeque::new(),
            upgraded: false,
            upgrade_requested: false,
        }
    }

    /// The connection is idle: give back spare room (the queue of requests awaiting answers,
    /// head buffers).
    pub fn shrink(&mut self) {
        self.pending.shrink_to_fit();
        for phase in &mut self.phases {
            match phase {
                Phase::Http { stream, .. } => stream.shrink(),
                Phase::AwaitUpgrade { held, .. } => held.shrink_to_fit(),
                _ => {}
            }
        }
    }

    /// Has the connection been switched to WebSocket by a 101?
    pub fn upgraded(&self) -> bool {
        self.upgraded
    }

    /// Does `from` carry WebSocket frames now?
    pub fn carries_frames(&self, from: Side) -> bool {
        matches!(self.phases[index(from)], Phase::Frames)
    }

    fn frames(&mut self, from: Side, synced: bool, out: Sink<'_>) {
        self.phases[index(from)] = Phase::Frames;
        out(Out::Event(Http1Event::Frames { from, synced }));
    }

    fn pass(from: Side, chunk: Chunk<'_>, out: Sink<'_>) {
        out(Out::Data {
            channel: 0,
            from,
            chunk,
        });
    }

    /// Leaves `AwaitUpgrade` (for `Opaque`, until the caller decides) and returns the bytes
    /// held; any other phase is left as it is.
    fn take_held(&mut self, from: Side) -> Option<Vec<(f64, Vec<u8>)>> {
        let phase = &mut self.phases[index(from)];
        match phase {
            Phase::AwaitUpgrade { held, .. } => {
                let held = std::mem::take(held);
                *phase = Phase::Opaque;
                Some(held)
            }
            _ => None,
        }
    }

    fn replay(&mut self, from: Side, held: Vec<(f64, Vec<u8>)>, out: Sink<'_>) {
        for (t, bytes) in held {
            self.data(from, t, &bytes, out);
        }
    }

    fn data(&mut self, from: Side, time: f64, data: &[u8], out: Sink<'_>) {
        if data.is_empty() {
            return;
        }
        let i = index(from);
        match &mut self.phases[i] {
            Phase::Opaque => {}
            Phase::Frames | Phase::Handover => Self::pass(from, Chunk::Data(data), out),
            Phase::Idle => {
                let role = match from {
                    Side::Client => Role::Requests,
                    Side::Server => Role::Responses,
                };
                self.phases[i] = Phase::Http {
                    stream: Box::new(HttpStream::new(role)),
                    heads: 0,
                };
                self.data(from, time, data, out);
            }
            Phase::Http { stream, heads } => match stream.push(data) {
                Ok(None) => {}
                Ok(Some((event, used))) => {
                    *heads += 1;
                    match event {
                        HttpEvent::Request(head) => self.request(from, head, out),
                        HttpEvent::Response(head) => self.response(head, out),
                    }
                    self.data(from, time, &data[used..], out);
                }
                Err(e @ (NotHttp::HeadTooLarge | NotHttp::TooManyHeaders)) => {
                    self.phases[i] = Phase::Opaque;
                    let what = if e == NotHttp::HeadTooLarge {
                        format!("passed {MAX_HEAD_BYTES} bytes without ending")
                    } else {
                        format!("has more than {MAX_HEADERS} header lines")
                    };
                    out(Out::Event(Http1Event::HeadLimit { from, what }));
                }
                Err(NotHttp::Garbage) => {
                    if *heads == 0 && !self.upgrade_requested && !self.upgraded {
                        // Looked like HTTP but is not: maybe frames of a mid-stream capture.
                        self.frames(from, false, out);
                        Self::pass(from, Chunk::Data(data), out);
                    } else {
                        self.phases[i] = Phase::Opaque;
                    }
                }
            },
            Phase::AwaitUpgrade { held, bytes } => {
                if *bytes + data.len() <= MAX_HELD_BYTES {
                    *bytes += data.len();
                    held.push((time, data.to_vec()));
                } else {
                    // No answer while the client goes on sending: take its bytes as frames.
                    let held = std::mem::take(held);
                    self.frames(from, true, out);
                    self.replay(from, held, out);
                    Self::pass(from, Chunk::Data(data), out);
                }
            }
        }
    }

    fn request(&mut self, from: Side, head: RequestHead, out: Sink<'_>) {
        let upgrade = head.is_websocket_upgrade();
        let h2c = !upgrade && super::handshake::has_token(head.upgrade.as_deref(), "h2c");
        let pending = if h2c {
            Pending::H2c(Box::new((head.method.clone(), head.path.clone())))
        } else {
            Pending::Plain
        };
        out(Out::Event(Http1Event::Request { head, upgrade }));
        if !upgrade {
            if h2c && !self.upgraded {
                // Its answer decides what the client's next bytes are: hold them until then.
                self.phases[index(from)] = Phase::AwaitUpgrade {
                    held: Vec::new(),
                    bytes: 0,
                };
            }
            self.pending.push_back(pending);
            return;
        }
        self.upgrade_requested = true;
        if self.upgraded {
            // The 101 was processed first (capture order across directions can differ).
            self.frames(from, true, out);
        } else {
            self.pending.push_back(Pending::WebSocket);
            self.phases[index(from)] = Phase::AwaitUpgrade {
                held: Vec::new(),
                bytes: 0,
            };
        }
    }

    fn response(&mut self, head: ResponseHead, out: Sink<'_>) {
        if (100..200).contains(&head.status) && head.status != 101 {
            return; // interim response; the final one follows
        }
        let pending = self.pending.pop_front();
        if let Some(Pending::H2c(request)) = pending {
            let (method, path) = *request;
            self.h2c_answer(head, method, path, out);
            return;
        }
        let to_upgrade = pending.map(|p| matches!(p, Pending::WebSocket));
        let switches = to_upgrade != Some(false) && head.status == 101;
        let negotiated = switches.then(|| Negotiated::from_response(head.extensions.as_deref()));
        out(Out::Event(Http1Event::Response { head, to_upgrade }));
        if to_upgrade != Some(true) && !switches {
            return;
        }
        let client = Side::Client;
        match negotiated {
            Some(negotiated) => {
                self.upgraded = true;
                out(Out::Event(Http1Event::Upgraded(negotiated)));
                self.frames(Side::Server, true, out);
                if let Some(held) = self.take_held(client) {
                    self.frames(client, true, out);
                    self.replay(client, held, out);
                } else if matches!(self.phases[index(client)], Phase::Opaque) {
                    // The request has not been processed yet; it will switch the direction.
                    self.phases[index(client)] = Phase::Idle;
                }
            }
            None => {
                // Refused: the client may try again on the same connection.
                if let Some(held) = self.take_held(client) {
                    self.phases[index(client)] = Phase::Http {
                        stream: Box::new(HttpStream::new(Role::Requests)),
                        heads: 1,
                    };
                    self.replay(client, held, out);
                }
            }
        }
    }

    /// The answer to an `Upgrade: h2c` request: a 101 hands both directions to HTTP/2; anything
    /// else leaves the connection HTTP/1.1 (the server may ignore the upgrade, RFC 9110 §7.8).
    fn h2c_answer(&mut self, head: ResponseHead, method: String, path: String, out: Sink<'_>) {
        let switched =
            head.status == 101 && super::handshake::has_token(head.upgrade.as_deref(), "h2c");
        out(Out::Event(Http1Event::Response {
            head,
            to_upgrade: Some(false),
        }));
        let client = Side::Client;
        let held = self.take_held(client);
        if !switched {
            if let Some(held) = held {
                self.phases[index(client)] = Phase::Http {
                    stream: Box::new(HttpStream::new(Role::Requests)),
                    heads: 1,
                };
                self.replay(client, held, out);
            }
            return;
        }
        out(Out::Event(Http1Event::SwitchedToHttp2 { method, path }));
        self.phases = [Phase::Handover, Phase::Handover];
        if let Some(held) = held {
            self.replay(client, held, out);
        }
    }

    fn gap(&mut self, from: Side, len: u64, out: Sink<'_>) {
        let i = index(from);
        match std::mem::replace(&mut self.phases[i], Phase::Opaque) {
            Phase::Frames => {
                self.phases[i] = Phase::Frames;
                Self::pass(from, Chunk::Gap(len), out);
            }
            Phase::Handover => {
                self.phases[i] = Phase::Handover;
                Self::pass(from, Chunk::Gap(len), out);
            }
            Phase::AwaitUpgrade { held, .. } => {
                // The answer is still to come; frames after the hole are found by hunting.
                self.frames(from, true, out);
                self.replay(from, held, out);
                Self::pass(from, Chunk::Gap(len), out);
            }
            Phase::Opaque => {}
            Phase::Idle | Phase::Http { .. } => {
                if self.upgraded || !self.upgrade_requested {
                    self.frames(from, false, out);
                }
            }
        }
    }
}

impl Layer for Http1Layer {
    type Event = Http1Event;

    fn push(
        &mut self,
        from: Side,
        time: f64,
        chunk: Chunk<'_>,
        out: &mut dyn FnMut(Out<'_, Http1Event>),
    ) {
        match chunk {
            Chunk::Data(data) => self.data(from, time, data, out),
            Chunk::Gap(len) => self.gap(from, len, out),
        }
    }

    fn end(&mut self, from: Side, _time: f64, _how: End, out: &mut dyn FnMut(Out<'_, Http1Event>)) {
        let websocket = matches!(self.pending.front(), Some(Pending::WebSocket));
        if let Some(held) = self.take_held(from) {
            if !websocket {
                return; // an `Upgrade: h2c` left unanswered: nothing WebSocket to say
            }
            out(Out::Event(Http1Event::Unanswered));
            if !held.is_empty() {
                self.frames(from, true, out);
                self.replay(from, held, out);
            }
        }
    }
}
