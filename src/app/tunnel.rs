//! Another protocol tunnelled through WebSocket messages (websockify/noVNC, chisel, wstunnel):
//! named from the first payloads: SSH (`SSH-2.0-`), VNC (`RFB 003.00x`), TLS (a handshake
//! record: ClientHello, with its SNI, or ServerHello) or HTTP (a request or status line).
//! What is inside is not decoded further.

use serde_json::Value;

use crate::diag::{Diagnostic, Side};
use crate::record::AppSessionRecord;

use super::{Decoded, Decoder, End, Finish, Fit, HandshakeInfo, Input, Packet, cut, human};

/// What a payload's start shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inside {
    /// SSH, with the identification line.
    Ssh(String),
    /// VNC / RFB, with the version.
    Rfb(String),
    /// TLS: ClientHello (with SNI) or another handshake message.
    Tls(String),
    /// HTTP/1.x: the request or status line.
    Http(String),
}

impl Inside {
    fn name(&self) -> &'static str {
        match self {
            Inside::Ssh(_) => "ssh",
            Inside::Rfb(_) => "rfb",
            Inside::Tls(_) => "tls",
            Inside::Http(_) => "http",
        }
    }

    fn detail(&self) -> &str {
        match self {
            Inside::Ssh(s) | Inside::Rfb(s) | Inside::Tls(s) | Inside::Http(s) => s,
        }
    }
}

fn first_line(b: &[u8]) -> String {
    let end = b
        .iter()
        .position(|&c| c == b'\r' || c == b'\n')
        .unwrap_or(b.len())
        .min(120);
    String::from_utf8_lossy(&b[..end]).into_owned()
}

/// The SNI of a ClientHello whose record starts `b`, if it is there in full.
fn sni(b: &[u8]) -> Option<String> {
    // record(5) handshake header(4) version(2) random(32)
    let mut i = 5 + 4 + 2 + 32;
    let sid = *b.get(i)? as usize;
    i += 1 + sid;
    let suites = u16::from_be_bytes([*b.get(i)?, *b.get(i + 1)?]) as usize;
    i += 2 + suites;
    let comp = *b.get(i)? as usize;
    i += 1 + comp;
    let ext_len = u16::from_be_bytes([*b.get(i)?, *b.get(i + 1)?]) as usize;
    i += 2;
    let end = (i + ext_len).min(b.len());
    while i + 4 <= end {
        let kind = u16::from_be_bytes([b[i], b[i + 1]]);
        let len = u16::from_be_bytes([b[i + 2], b[i + 3]]) as usize;
        let body = b.get(i + 4..i + 4 + len)?;
        if kind == 0 && body.len() > 5 && body[2] == 0 {
            let n = u16::from_be_bytes([body[3], body[4]]) as usize;
            return body
                .get(5..5 + n)
                .map(|h| String::from_utf8_lossy(h).into_owned());
        }
        i += 4 + len;
    }
    None
}

/// What `b` starts like, if anything known.
pub fn sniff(b: &[u8]) -> Option<Inside> {
    if b.starts_with(b"SSH-2.0-") || b.starts_with(b"SSH-1.99-") {
        return Some(Inside::Ssh(first_line(b)));
    }
    if b.len() >= 12 && b.starts_with(b"RFB 00") && b[11] == b'\n' {
        return Some(Inside::Rfb(first_line(b)));
    }
    if b.len() >= 6 && b[0] == 0x16 && b[1] == 3 && b[2] <= 4 {
        return Some(Inside::Tls(match b[5] {
            1 => format!(
                "ClientHello{}",
                sni(b).map(|s| format!(" SNI {s}")).unwrap_or_default()
            ),
            2 => "ServerHello".into(),
            t => format!("handshake message {t}"),
        }));
    }
    let line = first_line(b);
    let is_request = [
        "GET ", "POST ", "PUT ", "HEAD ", "CONNECT ", "OPTIONS ", "DELETE ", "PATCH ",
    ]
    .iter()
    .any(|m| line.starts_with(m))
        && (line.ends_with(" HTTP/1.1") || line.ends_with(" HTTP/1.0"));
    if is_request || line.starts_with("HTTP/1.1 ") || line.starts_with("HTTP/1.0 ") {
        return Some(Inside::Http(line));
    }
    None
}

/// One connection's tunnel.
pub struct Tunnel {
    inside: Option<Inside>,
    banners: [Option<String>; 2],
    bytes: [u64; 2],
    messages: [u64; 2],
    subprotocol: Option<String>,
}

impl Tunnel {
    /// A tunnel; the subprotocol (`binary`, `chisel-v3`) is remembered for the evidence.
    pub fn new(hs: &HandshakeInfo) -> Self {
        Tunnel {
            inside: None,
            banners: [None, None],
            bytes: [0; 2],
            messages: [0; 2],
            subprotocol: hs.selected.clone(),
        }
    }
}

impl Decoder for Tunnel {
    fn name(&self) -> String {
        match &self.inside {
            Some(i) => format!("tunnel:{}", i.name()),
            None => "tunnel".into(),
        }
    }

    fn note(&self) -> Option<String> {
        Some(match (&self.inside, &self.subprotocol) {
            (Some(i), _) => format!(
                "{} inside WebSocket messages: {}",
                i.name().to_uppercase(),
                i.detail()
            ),
            (None, Some(s)) => format!("subprotocol {s}: contents not recognised"),
            (None, None) => "contents not recognised".into(),
        })
    }

    fn fit(&self, m: &Input<'_>) -> Fit {
        match sniff(m.payload) {
            Some(i)
                if self
                    .inside
                    .as_ref()
                    .is_none_or(|have| have.name() == i.name()) =>
            {
                Fit::Strong
            }
            Some(_) => Fit::No,
            None if self.inside.is_some() && m.binary => Fit::Neutral,
            None if self
                .inside
                .as_ref()
                .is_some_and(|i| matches!(i, Inside::Ssh(_) | Inside::Http(_))) =>
            {
                Fit::Neutral
            }
            None => Fit::No,
        }
    }

    fn message(&mut self, m: &Input<'_>, out: &mut Decoded) {
        let side = m.from as usize;
        self.bytes[side] += m.length;
        self.messages[side] += 1;
        let found = if self.banners[side].is_none() {
            sniff(m.payload)
        } else {
            None
        };
        match found {
            Some(i) => {
                let name = i.name().to_string();
                self.banners[side] = Some(i.detail().to_string());
                let summary = format!("tunnel {name} {}", cut(i.detail(), 80));
                if self.inside.is_none() {
                    self.inside = Some(i.clone());
                }
                out.push(
                    Packet::new("banner", summary)
                        .with("inside", name)
                        .with("banner", i.detail().to_string()),
                );
            }
            None => {
                let inside = self.inside.as_ref().map_or("tunnel", Inside::name);
                out.push(
                    Packet::new("data", format!("tunnel {inside} data {} B", m.length))
                        .with("length", m.length),
                );
            }
        }
    }

    fn finish(&mut self, end: &End, _out: &mut Vec<Diagnostic>) -> Finish {
        let mut session = AppSessionRecord::default();
        for (side, name) in [
            (Side::Client, "client_banner"),
            (Side::Server, "server_banner"),
        ] {
            if let Some(b) = &self.banners[side as usize] {
                session.details.insert(name.into(), Value::from(b.clone()));
            }
        }
        session.details.insert(
            "bytes".into(),
            serde_json::json!({"client": self.bytes[0], "server": self.bytes[1]}),
        );
        let idle = end.first().map(|(_, t)| t);
        session.summary = format!(
            "{} tunnelled: {} B client→server in {} messages, {} B server→client in {}; no application heartbeat (idle tunnels are what proxies kill){}",
            self.inside
                .as_ref()
                .map_or("unknown protocol".to_string(), |i| i.name().to_uppercase()),
            self.bytes[0],
            self.messages[0],
            self.bytes[1],
            self.messages[1],
            idle.map(|t| format!("; ended {}", human((end.last_seen - t).max(0.0))))
                .map(|_| String::new())
                .unwrap_or_default()
        );
        Finish {
            session,
            close_meaning: None,
            end_reason: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn banners_name_what_is_inside() {
        assert_eq!(
            sniff(b"SSH-2.0-OpenSSH_9.2p1\r\n"),
            Some(Inside::Ssh("SSH-2.0-OpenSSH_9.2p1".into()))
        );
        assert_eq!(
            sniff(b"RFB 003.008\n"),
            Some(Inside::Rfb("RFB 003.008".into()))
        );
        assert_eq!(
            sniff(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
            Some(Inside::Http("GET / HTTP/1.1".into()))
        );
        assert_eq!(sniff(b"hello"), None);
        // A ClientHello with SNI example.com.
        let mut hello = vec![0x16, 3, 1, 0, 0, 1, 0, 0, 0, 3, 3];
        hello.extend([0u8; 32]);
        hello.extend([0, 0, 2, 0x13, 1, 1, 0]);
        let name = b"example.com";
        let mut sni_ext = vec![0, 0];
        let list_len = (3 + name.len()) as u16;
        let ext_len = list_len + 2;
        sni_ext.extend(ext_len.to_be_bytes());
        sni_ext.extend(list_len.to_be_bytes());
        sni_ext.push(0);
        sni_ext.extend((name.len() as u16).to_be_bytes());
        sni_ext.extend(name);
        hello.extend((sni_ext.len() as u16).to_be_bytes());
        hello.extend(sni_ext);
        assert_eq!(
            sniff(&hello),
            Some(Inside::Tls("ClientHello SNI example.com".into()))
        );
        // Cut anywhere: never a panic.
        for n in 0..hello.len() {
            let _ = sniff(&hello[..n]);
        }
    }
}
