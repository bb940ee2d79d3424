//! Field-by-field comparison of the two tools' views of a capture: every disagreement becomes a
//! [`Diff`] with a stable identity (capture, connection, side, what, where) so it can be matched
//! against the documented expected differences.

use std::fmt;

use crate::model::{Conn, Message, SIDES, Side};

/// One disagreement.
#[derive(Debug, Clone)]
pub struct Diff {
    pub capture: String,
    /// The client's `ip:port` (wsprobe's view when it has the connection).
    pub connection: String,
    pub side: Option<Side>,
    /// What differs: `handshake`, `frames`, `messages`, `payload`, `close_code`,
    /// `inflated_payload`, `tshark_not_inflated`, `tshark_inflate_failed`,
    /// `not_flagged_by_tshark:ID`, `only_flagged_by_tshark:ID`, `only_in_tshark`, `only_in_wsprobe`.
    pub kind: String,
    /// Where: `message N` (per side, in order) or empty.
    pub at: String,
    /// The two values, for people.
    pub detail: String,
}

impl Diff {
    /// The identity matched against the expected differences.
    pub fn key(&self) -> String {
        format!(
            "{} | {} | {} | {} | {}",
            self.capture,
            self.connection,
            self.side.map_or("-", Side::name),
            self.kind,
            self.at
        )
    }
}

impl fmt::Display for Diff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}\n      {}", self.key(), self.detail)
    }
}

/// Pairs tshark's connections with wsprobe's by their two endpoints (in order of appearance when
/// a 4-tuple is reused) and compares each pair.
pub fn compare(capture: &str, tshark: &[Conn], wsprobe: &[Conn]) -> Vec<Diff> {
    let mut diffs = Vec::new();
    let mut used = vec![false; wsprobe.len()];
    for t in tshark {
        let mut key_t = t.ends.clone();
        key_t.sort();
        let found = wsprobe.iter().enumerate().position(|(i, w)| {
            let mut key_w = w.ends.clone();
            key_w.sort();
            !used[i] && key_w == key_t
        });
        match found {
            Some(i) => {
                used[i] = true;
                diffs.extend(pair(capture, t, &wsprobe[i]));
            }
            None => diffs.push(Diff {
                capture: capture.into(),
                connection: t.ends[0].clone(),
                side: None,
                kind: "only_in_tshark".into(),
                at: String::new(),
                detail: format!(
                    "tshark {}: {} + {} frames, handshake {:?}; wsprobe reports no such connection",
                    t.label,
                    t.frames[0].len(),
                    t.frames[1].len(),
                    t.handshake
                ),
            }),
        }
    }
    for (w, _) in wsprobe.iter().zip(&used).filter(|(_, u)| !**u) {
        diffs.push(Diff {
            capture: capture.into(),
            connection: w.ends[0].clone(),
            side: None,
            kind: "only_in_wsprobe".into(),
            at: String::new(),
            detail: format!(
                "wsprobe {}: {} + {} frames, handshake {:?}; tshark shows no WebSocket there",
                w.label,
                w.frames[0].len(),
                w.frames[1].len(),
                w.handshake
            ),
        });
    }
    diffs
}

fn pair(capture: &str, t: &Conn, w: &Conn) -> Vec<Diff> {
    let mut diffs = Vec::new();
    let mut diff = |side: Option<Side>, kind: &str, at: String, detail: String| {
        diffs.push(Diff {
            capture: capture.into(),
            connection: w.ends[0].clone(),
            side,
            kind: kind.into(),
            at,
            detail: format!("tshark {} / wsprobe {}: {detail}", t.label, w.label),
        })
    };
    if t.handshake != w.handshake {
        diff(
            None,
            "handshake",
            String::new(),
            format!(
                "upgrade request and answer: tshark {:?}, wsprobe {:?}",
                t.handshake, w.handshake
            ),
        );
    }
    for side in SIDES {
        // wsprobe's ends are (client, server); tshark's sender of the same endpoint.
        let wi = side.index();
        let Some(ti) = t.end_of(&w.ends[wi]) else {
            continue;
        };
        let (tf, wf) = (&t.frames[ti], &w.frames[wi]);
        if tf != wf {
            let i = tf.iter().zip(wf).take_while(|(a, b)| a == b).count();
            diff(
                Some(side),
                "frames",
                String::new(),
                format!(
                    "{} vs {} frames; first difference at frame {i} of this side: tshark {:?}, wsprobe {:?}",
                    tf.len(),
                    wf.len(),
                    tf.get(i),
                    wf.get(i)
                ),
            );
        }
        let (tm, wm) = (&t.messages[ti], &w.messages[wi]);
        let t_ops: Vec<&str> = tm.iter().map(|m| m.opcode.as_str()).collect();
        let w_ops: Vec<&str> = wm.iter().map(|m| m.opcode.as_str()).collect();
        if t_ops != w_ops {
            diff(
                Some(side),
                "messages",
                String::new(),
                format!("tshark {t_ops:?}, wsprobe {w_ops:?}"),
            );
            continue;
        }
        for (i, (a, b)) in tm.iter().zip(wm).enumerate() {
            for (kind, detail) in message(a, b) {
                diff(Some(side), kind, format!("message {i}"), detail);
            }
        }
    }
    for id in w.violations.difference(&t.violations) {
        diff(
            None,
            &format!("not_flagged_by_tshark:{id}"),
            String::new(),
            format!("wsprobe reports {id}; tshark raises no expert info for it"),
        );
    }
    for id in t.violations.difference(&w.violations) {
        diff(
            None,
            &format!("only_flagged_by_tshark:{id}"),
            String::new(),
            format!("tshark flags {id}; wsprobe does not"),
        );
    }
    diffs
}

fn show(bytes: &Option<Vec<u8>>) -> String {
    match bytes {
        None => "nothing".into(),
        Some(b) => {
            let head = String::from_utf8_lossy(&b[..b.len().min(48)]).into_owned();
            format!(
                "{} bytes {head:?}{}",
                b.len(),
                if b.len() > 48 { "…" } else { "" }
            )
        }
    }
}

/// Differences between tshark's and wsprobe's version of one message.
fn message(t: &Message, w: &Message) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    let both = format!(
        "tshark ({}) {}, wsprobe ({}) {}",
        t.place,
        show(&t.payload),
        w.place,
        show(&w.payload)
    );
    if t.opcode == "close" && t.close_code != w.close_code {
        out.push((
            "close_code",
            format!("tshark {:?}, wsprobe {:?}", t.close_code, w.close_code),
        ));
    }
    if !t.compressed {
        if t.payload != w.payload {
            out.push(("payload", format!("unmasked payloads differ: {both}")));
        }
        return out;
    }
    match &t.payload {
        // tshark shows nothing for the message: its inflating failed.
        None if w.payload.is_some() => out.push((
            "tshark_inflate_failed",
            format!("tshark could not inflate the message: {both}"),
        )),
        None => {}
        // tshark shows the compressed bytes themselves.
        Some(p) if *p == t.wire => out.push((
            "tshark_not_inflated",
            format!(
                "tshark shows the compressed bytes ({} fragment(s)) as the payload: {both}",
                t.fragments
            ),
        )),
        Some(_) if t.payload != w.payload => out.push((
            "inflated_payload",
            format!("inflated payloads differ: {both}"),
        )),
        Some(_) => {}
    }
    out
}
