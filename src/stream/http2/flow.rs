//! HTTP/2 flow control as a passive observer can follow it (RFC 9113 §5.2, §6.9): the credit
//! each sender has on the connection and on each WebSocket stream.
//!
//! A WebSocket over HTTP/2 shares its connection's window with every other stream, and its
//! receiver grants credit with WINDOW_UPDATE. A receiver that reads slowly (a busy page, a
//! proxy's full buffer) or a connection window eaten by a download holds the WebSocket's
//! messages back without a sign in the WebSocket frames themselves: the sender's credit runs
//! out and its next DATA waits for a WINDOW_UPDATE. That wait is what this module measures.
//!
//! The windows are known only when the connection is seen from its preface (both start at
//! 65,535 bytes). Where the capture and the sender may disagree, the larger window is assumed,
//! so that a stall is never claimed for a sender that still had credit: a larger
//! SETTINGS_INITIAL_WINDOW_SIZE counts from when it is seen, a smaller one from when the
//! sender acknowledges it, and a WINDOW_UPDATE from when it is seen.
//!
//! A sender is *blocked* on a stream when its credit there (the lesser of the stream's and the
//! connection's window) is used up to zero by its DATA on that stream: an RFC 9113 sender sends
//! what its window allows, so a window used exactly to its end means it had more to send. When
//! another stream used the connection's window up, a WebSocket stream may have had nothing to
//! send: its wait counts only if its next DATA follows the credit at once
//! ([`CONFIRM_SECONDS`]).

use std::collections::HashMap;

use crate::diag::Side;

use super::streams::idx;

/// Both windows' size before any SETTINGS or WINDOW_UPDATE (RFC 9113 §6.9.2).
pub const DEFAULT_WINDOW: i64 = 65_535;

/// A WebSocket stream held up by another stream's use of the connection window waited only if
/// its next DATA comes this soon after the connection's credit is back.
pub const CONFIRM_SECONDS: f64 = 0.25;

/// WebSocket streams followed at once (more are not measured).
const MAX_FOLLOWED: usize = 1024;

/// Which window ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exhausted {
    /// The stream's own window.
    Stream,
    /// The connection's window, shared by all streams.
    Connection,
}

/// A sender that waited for credit on a WebSocket stream.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stall {
    /// Stream.
    pub stream_id: u32,
    /// The side whose DATA waited.
    pub sender: Side,
    /// When its credit ran out.
    pub since: f64,
    /// When a WINDOW_UPDATE gave credit again (`None`: never, by the end).
    pub until: Option<f64>,
    /// Which window ran out.
    pub window: Exhausted,
    /// The window's size when it ran out is zero; this is what it had been opened to last
    /// (the initial window, or after the last WINDOW_UPDATE), for the text.
    pub size: i64,
}

impl Stall {
    /// Seconds the sender waited (to `end` when it never got credit again).
    pub fn seconds(&self, end: f64) -> f64 {
        (self.until.unwrap_or(end) - self.since).max(0.0)
    }
}

#[derive(Debug, Clone, Copy)]
struct Blocked {
    since: f64,
    window: Exhausted,
    size: i64,
    /// The stream's own DATA used the credit up (it had more to send).
    certain: bool,
}

impl Blocked {
    /// The wait of sender `s` (its index) on `stream_id`, over at `until`.
    fn stall(self, stream_id: u32, s: usize, until: Option<f64>) -> Stall {
        Stall {
            stream_id,
            sender: if s == 0 { Side::Client } else { Side::Server },
            since: self.since,
            until,
            window: self.window,
            size: self.size,
        }
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct StreamWindows {
    /// Per sender (client, server).
    window: [i64; 2],
    /// Per sender: out of credit.
    blocked: [Option<Blocked>; 2],
    /// Per sender: an uncertain wait that ended, counted if the next DATA follows at once.
    tentative: [Option<Stall>; 2],
}

/// The credit of both senders on one HTTP/2 connection.
#[derive(Debug, Clone)]
pub struct FlowControl {
    known: bool,
    /// Per sender: the connection's window, and what it was last opened to.
    connection: [i64; 2],
    connection_opened: [i64; 2],
    /// Per sender: the initial window of its streams (set by the receiver's SETTINGS).
    initial: [i64; 2],
    /// Per sender: a smaller initial window the receiver asked for, in effect once the
    /// sender acknowledges the receiver's SETTINGS.
    pending_initial: [Option<i64>; 2],
    streams: HashMap<u32, StreamWindows>,
}

impl FlowControl {
    /// `known`: the connection is seen from its preface.
    pub fn new(known: bool) -> Self {
        FlowControl {
            known,
            connection: [DEFAULT_WINDOW; 2],
            connection_opened: [DEFAULT_WINDOW; 2],
            initial: [DEFAULT_WINDOW; 2],
            pending_initial: [None; 2],
            streams: HashMap::new(),
        }
    }

    /// The windows can no longer be followed (bytes lost, decoding stopped).
    pub fn forget(&mut self) {
        self.known = false;
        self.streams.clear();
    }

    /// A WebSocket stream opened: its windows start at the initial size.
    pub fn follow(&mut self, stream_id: u32) {
        if !self.known || self.streams.len() >= MAX_FOLLOWED {
            return;
        }
        let initial = self.initial;
        self.streams.entry(stream_id).or_insert(StreamWindows {
            window: initial,
            blocked: [None; 2],
            tentative: [None; 2],
        });
    }

    /// A stream ended: what was still blocked on it is given back.
    pub fn unfollow(&mut self, stream_id: u32) -> Vec<Stall> {
        let Some(w) = self.streams.remove(&stream_id) else {
            return Vec::new();
        };
        blocked_stalls(stream_id, &w)
    }

    /// `sender` will send no more DATA on the stream (its half ended): a stall still going on
    /// is over, unresolved.
    pub fn sender_done(&mut self, stream_id: u32, sender: Side) -> Option<Stall> {
        let w = self.streams.get_mut(&stream_id)?;
        let s = idx(sender);
        w.tentative[s] = None;
        let b = w.blocked[s].take()?;
        // No more DATA will come: its window no longer matters.
        w.window[s] = i64::MAX;
        b.certain.then(|| b.stall(stream_id, s, None))
    }

    /// `receiver` sent SETTINGS_INITIAL_WINDOW_SIZE = `size`: the stream windows of the other
    /// side (the sender towards `receiver`) change by the difference (RFC 9113 §6.9.2).
    pub fn initial_window(&mut self, receiver: Side, size: u32, time: f64) -> Vec<Stall> {
        let s = idx(receiver.peer());
        let size = i64::from(size);
        if size >= self.initial[s] {
            self.pending_initial[s] = None;
            self.set_initial(s, size, time)
        } else {
            self.pending_initial[s] = Some(size);
            Vec::new()
        }
    }

    /// `from` acknowledged its peer's SETTINGS: a smaller initial window is in effect for it.
    pub fn settings_acknowledged(&mut self, from: Side, time: f64) -> Vec<Stall> {
        let s = idx(from);
        match self.pending_initial[s].take() {
            Some(size) => self.set_initial(s, size, time),
            None => Vec::new(),
        }
    }

    fn set_initial(&mut self, s: usize, size: i64, time: f64) -> Vec<Stall> {
        let delta = size - self.initial[s];
        self.initial[s] = size;
        let mut ended = Vec::new();
        for (&id, w) in &mut self.streams {
            w.window[s] = w.window[s].saturating_add(delta);
            if let Some(stall) = reopened(id, w, s, self.connection[s], time) {
                ended.push(stall);
            }
        }
        ended
    }

    /// `sender` sent a DATA frame of `length` bytes (padding included: it counts, §6.9.1) on
    /// `stream_id`. Marks the stream blocked when its credit is used up; returns an uncertain
    /// wait of this stream that this DATA confirms.
    pub fn data(&mut self, stream_id: u32, sender: Side, length: u32, time: f64) -> Option<Stall> {
        if !self.known {
            return None;
        }
        let s = idx(sender);
        let mut confirmed = None;
        if let Some(w) = self.streams.get_mut(&stream_id)
            && let Some(t) = w.tentative[s].take()
            && t.until.is_some_and(|until| time - until <= CONFIRM_SECONDS)
        {
            confirmed = Some(t);
        }
        if length == 0 {
            return confirmed;
        }
        let length = i64::from(length);
        self.connection[s] = self.connection[s].saturating_sub(length);
        let connection = self.connection[s];
        let opened = self.connection_opened[s];
        let initial = self.initial[s];
        if let Some(w) = self.streams.get_mut(&stream_id) {
            w.window[s] = w.window[s].saturating_sub(length);
            if w.blocked[s].is_none_or(|b| !b.certain) {
                let (window, size) = if w.window[s] <= 0 {
                    (Exhausted::Stream, initial)
                } else {
                    (Exhausted::Connection, opened)
                };
                if w.window[s] <= 0 || connection <= 0 {
                    w.blocked[s] = Some(Blocked {
                        since: time,
                        window,
                        size,
                        certain: true,
                    });
                }
            }
        }
        if connection <= 0 {
            // The other WebSocket streams of this sender wait for the connection's credit too,
            // if they have anything to send.
            for (&id, w) in &mut self.streams {
                if id != stream_id && w.blocked[s].is_none() && w.window[s] > 0 {
                    w.blocked[s] = Some(Blocked {
                        since: time,
                        window: Exhausted::Connection,
                        size: opened,
                        certain: false,
                    });
                }
            }
        }
        confirmed
    }

    /// `receiver` sent WINDOW_UPDATE of `increment` on `stream_id` (0: the connection).
    /// Returns the stalls it ended.
    pub fn window_update(
        &mut self,
        receiver: Side,
        stream_id: u32,
        increment: u32,
        time: f64,
    ) -> Vec<Stall> {
        if !self.known {
            return Vec::new();
        }
        let s = idx(receiver.peer());
        let increment = i64::from(increment);
        let mut ended = Vec::new();
        if stream_id == 0 {
            // Saturating: a hostile peer may send WINDOW_UPDATEs without end.
            self.connection[s] = self.connection[s].saturating_add(increment);
            self.connection_opened[s] = self.connection[s];
            for (&id, w) in &mut self.streams {
                if let Some(stall) = reopened(id, w, s, self.connection[s], time) {
                    ended.push(stall);
                }
            }
        } else if let Some(w) = self.streams.get_mut(&stream_id) {
            w.window[s] = w.window[s].saturating_add(increment);
            if let Some(stall) = reopened(stream_id, w, s, self.connection[s], time) {
                ended.push(stall);
            }
        }
        ended.sort_by_key(|st| st.stream_id);
        ended
    }

    /// The end: the stalls still going on, per stream.
    pub fn finish(&mut self) -> Vec<Stall> {
        let mut ids: Vec<u32> = self.streams.keys().copied().collect();
        ids.sort_unstable();
        ids.into_iter().flat_map(|id| self.unfollow(id)).collect()
    }
}

/// A blocked sender whose credit is back (both windows open) ends its stall.
fn reopened(
    stream_id: u32,
    w: &mut StreamWindows,
    s: usize,
    connection: i64,
    time: f64,
) -> Option<Stall> {
    let b = w.blocked[s]?;
    if w.window[s] <= 0 || connection <= 0 {
        return None;
    }
    w.blocked[s] = None;
    let stall = b.stall(stream_id, s, Some(time));
    if b.certain {
        Some(stall)
    } else {
        w.tentative[s] = Some(stall);
        None
    }
}

fn blocked_stalls(stream_id: u32, w: &StreamWindows) -> Vec<Stall> {
    (0..2)
        .filter_map(|s| {
            let b = w.blocked[s].filter(|b| b.certain)?;
            Some(b.stall(stream_id, s, None))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_window_used_up_waits_for_its_window_update() {
        let mut f = FlowControl::new(true);
        f.follow(1);
        f.data(1, Side::Server, 16_384, 1.0);
        f.data(1, Side::Server, 16_384, 1.0);
        f.data(1, Side::Server, 16_384, 1.0);
        assert!(f.window_update(Side::Client, 0, 100_000, 1.1).is_empty());
        f.data(1, Side::Server, 16_383, 1.2);
        // 65,535 used: blocked on the stream's window (the connection's was opened).
        assert!(f.window_update(Side::Client, 3, 10, 1.5).is_empty());
        let ended = f.window_update(Side::Client, 1, 32_768, 3.2);
        assert_eq!(ended.len(), 1);
        let st = ended[0];
        assert_eq!(
            (st.stream_id, st.sender, st.window),
            (1, Side::Server, Exhausted::Stream)
        );
        assert_eq!((st.since, st.until), (1.2, Some(3.2)));
        assert!((st.seconds(9.0) - 2.0).abs() < 1e-9);
        assert!(f.finish().is_empty());
    }

    #[test]
    fn the_connection_window_eaten_by_another_stream_blocks_the_websocket() {
        let mut f = FlowControl::new(true);
        f.follow(1);
        f.initial_window(Side::Client, 1 << 20, 0.0);
        // A download on stream 3 uses the connection's 65,535 bytes.
        f.data(3, Side::Server, 65_535, 1.0);
        assert!(f.window_update(Side::Client, 1, 1000, 1.5).is_empty());
        // The WebSocket may have had nothing to send: its next DATA, at once, says it had.
        assert!(f.window_update(Side::Client, 0, 65_535, 4.0).is_empty());
        let stall = f.data(1, Side::Server, 100, 4.01).unwrap();
        assert_eq!(stall.window, Exhausted::Connection);
        assert_eq!((stall.since, stall.until), (1.0, Some(4.0)));
    }

    #[test]
    fn an_idle_websocket_is_not_held_up_by_another_streams_download() {
        let mut f = FlowControl::new(true);
        f.follow(1);
        f.data(3, Side::Server, 65_535, 1.0);
        assert!(f.window_update(Side::Client, 0, 65_535, 4.0).is_empty());
        // Its next message comes long after the credit: it was not waiting.
        assert!(f.data(1, Side::Server, 100, 9.0).is_none());
        assert!(f.finish().is_empty());
        // Still out of credit at the end, and nothing of its own was waiting: not claimed.
        let mut f = FlowControl::new(true);
        f.follow(1);
        f.data(3, Side::Server, 65_535, 1.0);
        assert!(f.finish().is_empty());
    }

    #[test]
    fn a_smaller_initial_window_counts_from_the_senders_acknowledgement() {
        let mut f = FlowControl::new(true);
        f.follow(1);
        f.initial_window(Side::Client, 1000, 0.0);
        // Not acknowledged yet: the server may still use the default window.
        f.data(1, Side::Server, 1000, 0.1);
        assert!(f.finish().is_empty());
        let mut f = FlowControl::new(true);
        f.follow(1);
        f.initial_window(Side::Client, 1000, 0.0);
        f.settings_acknowledged(Side::Server, 0.05);
        f.data(1, Side::Server, 1000, 0.1);
        let left = f.finish();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].until, None);
        assert_eq!(left[0].size, 1000);
    }

    #[test]
    fn a_larger_initial_window_reopens_a_blocked_stream() {
        let mut f = FlowControl::new(true);
        f.follow(1);
        f.data(1, Side::Client, 65_535, 1.0);
        let ended = f.initial_window(Side::Server, 131_070, 2.0);
        // The connection's window is still used up: the stall goes on.
        assert!(ended.is_empty());
        let ended = f.window_update(Side::Server, 0, 65_535, 2.5);
        assert_eq!(ended.len(), 1);
        assert_eq!(ended[0].until, Some(2.5));
    }

    #[test]
    fn nothing_is_claimed_for_a_connection_seen_from_its_middle() {
        let mut f = FlowControl::new(false);
        f.follow(1);
        f.data(1, Side::Server, 70_000, 1.0);
        assert!(f.window_update(Side::Client, 1, 1, 2.0).is_empty());
        assert!(f.finish().is_empty());
    }
}
