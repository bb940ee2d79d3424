//! Recognition from the handshake: the selected subprotocol first, then one offered but not
//! selected, then the URL; and the short message previews that content recognition cites as
//! its evidence.

use super::{HandshakeInfo, Input, Protocol, sockjs};

/// A short rendering of a message for the recognition evidence.
pub(super) fn preview(m: &Input<'_>) -> String {
    let bytes = &m.payload[..m.payload.len().min(24)];
    let side = m.from.as_str();
    match std::str::from_utf8(bytes) {
        Ok(s) if !m.binary => format!("{side} {:?}", s),
        _ => {
            let hex: String = bytes.iter().take(8).map(|b| format!("{b:02x}")).collect();
            format!("{side} binary {hex}")
        }
    }
}

/// Recognition from the handshake: the selected subprotocol first, then the URL.
pub(super) fn recognise_handshake(hs: &HandshakeInfo) -> Option<(Protocol, &'static str, String)> {
    if let Some(sub) = &hs.selected {
        let lower = sub.to_ascii_lowercase();
        let p = match lower.as_str() {
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
            let p = match sub.to_ascii_lowercase().as_str() {
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
    let lower = path.to_ascii_lowercase();
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
