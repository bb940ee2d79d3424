//! Recognition from the handshake: the selected subprotocol first, then one offered but not
//! selected, then the URL; and the short message previews that content recognition cites as
//! its evidence.

use super::{HandshakeInfo, Input, Protocol, sockjs};

/// Bytes of a message quoted in the recognition evidence.
const PREVIEW_BYTES: usize = 24;

/// The start of a message, kept while recognition is undecided and rendered only when a
/// protocol wins (most connections are decided without one, or never).
#[derive(Debug, Clone, Copy)]
pub(super) struct Preview {
    from: crate::diag::Side,
    binary: bool,
    len: u8,
    bytes: [u8; PREVIEW_BYTES],
}

impl Preview {
    pub(super) fn of(m: &Input<'_>) -> Preview {
        let n = m.payload.len().min(PREVIEW_BYTES);
        let mut bytes = [0; PREVIEW_BYTES];
        bytes[..n].copy_from_slice(&m.payload[..n]);
        Preview {
            from: m.from,
            binary: m.binary,
            len: n as u8,
            bytes,
        }
    }
}

impl std::fmt::Display for Preview {
    /// `client "42[\"chat\""`, `server binary 10200004`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let bytes = &self.bytes[..usize::from(self.len)];
        let side = self.from.as_str();
        match std::str::from_utf8(bytes) {
            Ok(s) if !self.binary => write!(f, "{side} {s:?}"),
            _ => {
                write!(f, "{side} binary ")?;
                bytes.iter().take(8).try_for_each(|b| write!(f, "{b:02x}"))
            }
        }
    }
}

/// `s` in lower case, copied only when it has upper-case letters (they rarely do).
fn lowercase(s: &str) -> std::borrow::Cow<'_, str> {
    if s.bytes().any(|b| b.is_ascii_uppercase()) {
        std::borrow::Cow::Owned(s.to_ascii_lowercase())
    } else {
        std::borrow::Cow::Borrowed(s)
    }
}

/// Recognition from the handshake: the selected subprotocol first, then the URL.
pub(super) fn recognise_handshake(hs: &HandshakeInfo) -> Option<(Protocol, &'static str, String)> {
    if let Some(sub) = &hs.selected {
        let lower = lowercase(sub);
        let p = match lower.as_ref() {
            "graphql-transport-ws" | "graphql-ws" | "graphql-subscriptions" => {
                Some(Protocol::Graphql)
            }
            "v10.stomp" | "v11.stomp" | "v12.stomp" | "stomp" => Some(Protocol::Stomp),
            "mqtt" | "mqttv3.1" | "mqttv3.1.1" | "mqttv5" => Some(Protocol::Mqtt),
            "actioncable-v1-json" | "actioncable-unsupported" => Some(Protocol::ActionCable),
            "phoenix" => Some(Protocol::Phoenix),
            "jsonrpc" | "json-rpc" | "jsonrpc-2.0" => Some(Protocol::JsonRpc),
            "binary" | "base64" | "chisel-v3" | "v1" => Some(Protocol::Tunnel),
            _ => None,
        };
        if let Some(p) = p {
            return Some((p, "subprotocol", format!("Sec-WebSocket-Protocol: {sub}")));
        }
    }
    if hs.selected.is_none() {
        // Offered but not selected: weaker, but it names what the client speaks.
        for sub in &hs.offered {
            let p = match lowercase(sub).as_ref() {
                "graphql-transport-ws" | "graphql-ws" | "graphql-subscriptions" => {
                    Protocol::Graphql
                }
                "v10.stomp" | "v11.stomp" | "v12.stomp" => Protocol::Stomp,
                "mqtt" | "mqttv3.1" => Protocol::Mqtt,
                "actioncable-v1-json" => Protocol::ActionCable,
                _ => continue,
            };
            return Some((
                p,
                "subprotocol",
                format!("offered Sec-WebSocket-Protocol: {sub} (the server selected none)"),
            ));
        }
    }
    let path = hs.path_only();
    let lower = lowercase(path);
    let last = lower.trim_end_matches('/').rsplit('/').next().unwrap_or("");
    let evidence = || format!("path {}", hs.path);
    if lower.contains("/socket.io") || hs.query("EIO").is_some() {
        return Some((Protocol::SocketIo, "path", evidence()));
    }
    if hs.query("vsn").is_some() && last == "websocket" {
        return Some((Protocol::Phoenix, "path", evidence()));
    }
    if sockjs::is_sockjs_path(path) {
        return Some((Protocol::SockJs, "path", evidence()));
    }
    if last == "cable" {
        return Some((Protocol::ActionCable, "path", evidence()));
    }
    if last == "mqtt" {
        return Some((Protocol::Mqtt, "path", evidence()));
    }
    if (hs.query("id").is_some() && lower.contains("hub")) || hs.query("asrs.op").is_some() {
        return Some((Protocol::SignalR, "path", evidence()));
    }
    None
}
