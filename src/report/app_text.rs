//! The application protocol in the table report, kept apart from the table layout: the `app`
//! cell of a connection row and the decoded packet shown beside a message's raw text.

use crate::record::{AppRecord, MessageRecord};

/// `socket.io 4`, `mqtt 3.1.1 refused`, `graphql-transport-ws`; empty when none.
pub fn app_cell(app: Option<&AppRecord>) -> String {
    let Some(app) = app else {
        return String::new();
    };
    let mut cell = app.protocol.clone();
    if let Some(v) = &app.version {
        cell.push(' ');
        cell.push_str(v);
    }
    if app.session.handshake.as_ref().is_some_and(|h| !h.ok) {
        cell.push_str(" refused");
    }
    cell
}

/// The decoded packet(s) of a message, for the `--messages` log: `⇒ socket.io event "chat" ack 3 ns /`.
pub fn message_app(m: &MessageRecord) -> Option<String> {
    m.app.as_ref().map(|a| format!("⇒ {}", a.summary))
}
