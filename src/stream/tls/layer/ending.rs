//! The connection's TLS record and how its end looked: close_notify and alerts where visible,
//! and without keys what the records' sizes and times suggest (labelled as inferred), including
//! whether the connection looks like WebSocket.

use super::*;
use crate::record::tls::{TlsEndBegan, TlsEnding, TlsInferred};
use crate::stream::tls::pattern::{self, PatternFacts};

/// "both sides", "the client", "the server" for the sides where `f` holds.
fn sides(f: &dyn Fn(Side) -> bool) -> Option<&'static str> {
    match (f(Side::Client), f(Side::Server)) {
        (true, true) => Some("both sides"),
        (true, false) => Some("the client"),
        (false, true) => Some("the server"),
        (false, false) => None,
    }
}

impl TlsLayer {
    /// The connection's TLS facts so far (final after both `end`s).
    pub fn record(&self) -> TlsRecord {
        let mut r = self.record.clone();
        for side in [Side::Client, Side::Server] {
            let d = &self.dirs[idx(side)];
            *r.records.get_mut(side) = d.records;
            *r.bytes.get_mut(side) = d.bytes;
            *r.application_bytes.get_mut(side) = d.app_bytes;
            *r.undecrypted_records.get_mut(side) = d.undecrypted;
            *r.close_notify.get_mut(side) = d.close_notify;
            *r.key_updates.get_mut(side) = d.key_updates;
        }
        let is13 = self.version == Some(0x0304);
        let c = &self.dirs[0];
        let s = &self.dirs[1];
        if c.finished && s.finished {
            r.handshake_complete = Some(true);
        } else if r.handshake_complete.is_none() && (c.ended && s.ended) && (!is13 || r.decrypted) {
            r.handshake_complete = Some(false);
        }
        if !r.decrypted && self.version.is_some() {
            let facts = self.pattern.facts();
            let inferred = self.inferred(&facts);
            let close_exchange = match (
                inferred.close_frame.client,
                inferred.close_frame.server,
                inferred.last_application_length.client,
                inferred.last_application_length.server,
            ) {
                (true, true, Some(c), Some(s)) => Some((c, s)),
                _ => None,
            };
            let cx = pattern::Context {
                alpn_offered: &r.alpn_offered,
                alpn_selected: r.alpn.as_deref(),
                server_port: self.server_port,
                handshake_complete: self.handshake_done(),
                close_exchange,
            };
            r.websocket_likely = pattern::assess(&facts, &cx);
            r.inferred = Some(inferred);
        }
        r
    }

    /// Is the connection likely WebSocket (not decrypted, by its records)?
    fn likely_websocket(r: &TlsRecord) -> bool {
        r.websocket_likely.as_ref().is_some_and(|w| w.likely)
    }

    /// How TLS saw the end, for the ending analysis: the close_notify or alert that began it,
    /// and without keys the records the idle time is measured from.
    pub fn ending(&self) -> TlsEnding {
        let r = self.record();
        let facts = self.pattern.facts();
        let mut ending = TlsEnding {
            began: self.began(&r, &facts),
            websocket_likely: Self::likely_websocket(&r),
            ..TlsEnding::default()
        };
        if !r.decrypted {
            for side in [Side::Client, Side::Server] {
                *ending.last_record.get_mut(side) =
                    facts.last[idx(side)].map(|a| (a.time, a.plain));
            }
            ending.longest_silence = facts.longest_silence;
            ending.started = facts.answer_time;
        }
        ending
    }

    /// The first alert after which its sender sent no application data: the end's start at
    /// the TLS level.
    fn began(&self, r: &TlsRecord, facts: &PatternFacts) -> Option<TlsEndBegan> {
        let final_after =
            |side: Side, time: f64| facts.last[idx(side)].is_none_or(|a| a.time <= time);
        let seen = r
            .alerts
            .iter()
            .find(|a| final_after(a.from, a.time))
            .map(|a| match a.description.as_deref() {
                Some(name) => TlsEndBegan {
                    side: a.from,
                    time: a.time,
                    alert: name.to_string(),
                    words: if name == "close_notify" {
                        "TLS close_notify".to_string()
                    } else {
                        format!("TLS alert {name}")
                    },
                    inferred: false,
                },
                None => TlsEndBegan {
                    side: a.from,
                    time: a.time,
                    alert: "close_notify".to_string(),
                    words: "an encrypted alert (likely close_notify)".to_string(),
                    inferred: true,
                },
            });
        let sized = (!r.decrypted && self.is13())
            .then(|| {
                [Side::Client, Side::Server]
                    .into_iter()
                    .filter_map(|side| facts.close_notify_sized[idx(side)].map(|t| (side, t)))
                    .min_by(|a, b| a.1.total_cmp(&b.1))
            })
            .flatten()
            .map(|(side, time)| TlsEndBegan {
                side,
                time,
                alert: "close_notify".to_string(),
                words: "a close_notify-sized record (inferred)".to_string(),
                inferred: true,
            });
        match (seen, sized) {
            (Some(a), Some(b)) => Some(if b.time < a.time { b } else { a }),
            (a, b) => a.or(b),
        }
    }

    /// A sentence on how TLS ended, for the connection's close summary: close_notify and
    /// alerts where visible (the one that began the end is told by the summary itself), else
    /// what record sizes suggest (said to be inferred).
    pub fn ending_note(&self) -> Option<String> {
        let r = self.record();
        self.client_hello.as_ref()?;
        let facts = self.pattern.facts();
        let began = self.began(&r, &facts);
        let mut parts = Vec::new();
        if r.handshake_complete == Some(false)
            || r.inferred.as_ref().and_then(|i| i.handshake_complete) == Some(false)
        {
            parts.push("the TLS handshake did not complete".to_string());
        }
        for a in r.alerts.iter().filter(|a| {
            a.description
                .as_deref()
                .is_some_and(|d| d != "close_notify")
                && began
                    .as_ref()
                    .is_none_or(|b| b.time != a.time || b.side != a.from)
        }) {
            parts.push(format!(
                "TLS alert {} from the {}",
                a.description.as_deref().unwrap_or_default(),
                a.from.as_str()
            ));
        }
        let visible = (self.is13() && r.decrypted) || (!self.is13() && self.version.is_some());
        let inf = r.inferred.as_ref();
        // Who sent a close_notify (read, or an encrypted TLS 1.2 alert record, or a final
        // close_notify-sized TLS 1.3 record).
        let (notify, what): (Box<dyn Fn(Side) -> bool>, &str) = if visible {
            let alerts = r.alerts.clone();
            let read = r.close_notify;
            let encrypted = !r.decrypted;
            (
                Box::new(move |side: Side| {
                    *read.get(side)
                        || alerts
                            .iter()
                            .any(|a| a.from == side && a.likely_close_notify == Some(true))
                }),
                if encrypted {
                    "an encrypted alert (likely close_notify)"
                } else {
                    "TLS close_notify"
                },
            )
        } else if let Some(inf) = inf {
            let sized = inf.close_notify;
            (
                Box::new(move |side: Side| *sized.get(side)),
                "a close_notify-sized final record (inferred)",
            )
        } else {
            (Box::new(|_| false), "")
        };
        if visible || inf.is_some() {
            match &began {
                Some(b) if b.alert == "close_notify" => {
                    let other = b.side.peer();
                    let (a, what) = if r.decrypted {
                        ("a", "close_notify")
                    } else if visible {
                        ("an", "encrypted alert")
                    } else {
                        ("a", "close_notify-sized record")
                    };
                    if notify(other) {
                        parts.push(format!("{a} {what} from the {} too", other.as_str()));
                    } else {
                        parts.push(format!("no {what} from the {}", other.as_str()));
                    }
                }
                Some(_) => {}
                None => match sides(&*notify) {
                    Some(who) => parts.push(format!("{what} from {who}")),
                    None if r.handshake_complete != Some(false) => parts.push(if visible {
                        "no TLS close_notify".to_string()
                    } else {
                        "no close_notify-sized final record (inferred)".to_string()
                    }),
                    None => {}
                },
            }
        }
        if let Some(inf) = inf
            && Self::likely_websocket(&r)
        {
            let close = |side: Side| *inf.close_frame.get(side);
            parts.push(match sides(&close) {
                Some("both sides") => {
                    "Close-sized final records both ways right before the end (inferred: a closing handshake, code unknown)".to_string()
                }
                Some(who) => format!(
                    "a Close-sized final record from {who} only, right before the end (inferred)"
                ),
                None => "no Close-sized final record (inferred)".to_string(),
            });
        }
        (!parts.is_empty()).then(|| parts.join("; "))
    }

    fn inferred(&self, facts: &PatternFacts) -> TlsInferred {
        let is13 = self.version == Some(0x0304);
        let aead = self.suite.and_then(|s| s.aead);
        let mut inf = TlsInferred {
            basis: "record sizes",
            ..TlsInferred::default()
        };
        // When the end began: the first alert-looking record or FIN/RST.
        let end_start = self
            .end_time
            .iter()
            .flatten()
            .copied()
            .chain(self.record.alerts.iter().map(|a| a.time))
            .chain(facts.close_notify_sized.iter().flatten().copied())
            .reduce(f64::min);
        let mut first_close: Option<(Side, f64)> = None;
        for side in [Side::Client, Side::Server] {
            let d = &self.dirs[idx(side)];
            let notify = if is13 {
                facts.close_notify_sized[idx(side)].is_some()
            } else {
                d.last.is_some_and(|(t, len)| {
                    t == ContentType::Alert
                        && match aead {
                            Some(Aead::Chacha20Poly1305) => usize::from(len) == 2 + TAG_LEN,
                            Some(_) => usize::from(len) == 2 + 8 + TAG_LEN,
                            None => true,
                        }
                })
            };
            *inf.close_notify.get_mut(side) = notify;
            let last = facts.last[idx(side)];
            *inf.last_application_length.get_mut(side) = last.map(|a| a.plain);
            *inf.last_application_time.get_mut(side) = last.map(|a| a.time);
            let close = last.is_some_and(|a| {
                pattern::close_sized(side, a.plain)
                    && end_start.is_some_and(|e| e - a.time <= pattern::CLOSE_TO_END_S)
            });
            *inf.close_frame.get_mut(side) = close;
            if close
                && let Some(a) = last
                && first_close.is_none_or(|(_, t)| a.time < t)
            {
                first_close = Some((side, a.time));
            }
            *inf.application_records.get_mut(side) = facts.records[idx(side)];
        }
        inf.close_frame_first = first_close.map(|(side, _)| side);
        inf.first_request_length = facts.request.map(|(_, len)| len);
        inf.answer_lengths = facts.answer.clone();
        inf.frame_sized_client_records = facts.frame_sized_client;
        if is13 {
            let client_sent = self.dirs[0].encrypted_records > self.early_records();
            inf.handshake_complete = if client_sent && self.dirs[1].encrypted_records > 0 {
                Some(true)
            } else if self.dirs[0].ended || self.dirs[1].ended {
                Some(false)
            } else {
                None
            };
        }
        inf
    }
}
