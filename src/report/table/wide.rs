//! `--wide`: every column in full with comfy-table, as wide as it needs (no wrapping, no
//! cutting): for a wide terminal, a file, or a wiki page.

use comfy_table::{Cell, Color, ContentArrangement, Table, presets};

use super::rows::endpoint;
use super::text::bytes;
use crate::analysis::clock;
use crate::analysis::close::human_seconds;
use crate::record::ConnectionRecord;

/// The full table.
pub fn connection_table(records: &[ConnectionRecord], colour: bool) -> Table {
    let mut t = Table::new();
    t.load_style(presets::UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Disabled);
    if colour {
        t.enforce_styling();
    } else {
        t.force_no_tty();
    }
    t.set_header(vec![
        "id",
        "start (UTC)",
        "client → server",
        "path",
        "protocol / extensions",
        "app",
        "duration",
        "msgs c→s",
        "msgs s→c",
        "pings (sent/answered, RTT min/median/max)",
        "ended",
    ]);
    for r in records {
        let hs = r.handshake.as_ref();
        let path = hs.map(|h| h.path.as_str()).unwrap_or("(no handshake)");
        let mut proto = Vec::new();
        if let Some(p) = hs.and_then(|h| h.subprotocol.as_deref()) {
            proto.push(p.to_string());
        }
        if let Some(e) = hs.and_then(|h| h.extensions.as_deref()) {
            proto.push(e.to_string());
        }
        let p = &r.ping;
        let sent = p.client_pings + p.server_pings;
        let mut pings = format!(
            "{sent}/{} (client {}, server {})",
            p.answered, p.client_pings, p.server_pings
        );
        if let (Some(min), Some(med), Some(max)) = (p.rtt_min_ms, p.rtt_median_ms, p.rtt_max_ms) {
            pings.push_str(&format!(" {min}/{med}/{max} ms"));
        }
        let colour_of = match r.close.outcome {
            "clean" => Color::Green,
            "abnormal" => Color::Red,
            "incomplete" | "not_websocket" => Color::Yellow,
            _ => Color::Reset,
        };
        let ended = Cell::new(&r.close.summary);
        t.add_row(vec![
            Cell::new(r.id),
            Cell::new(format!(
                "{} {}",
                super::text::date(r.first_seen),
                clock(r.first_seen)
            )),
            Cell::new(format!("{} → {}", endpoint(&r.client), endpoint(&r.server))),
            Cell::new(path),
            Cell::new(proto.join("; ")),
            Cell::new(crate::report::app_text::app_cell(r.app.as_ref())),
            Cell::new(human_seconds((r.last_seen - r.first_seen).max(0.0))),
            Cell::new(format!(
                "{} / {}",
                r.message_counts.client,
                bytes(r.payload_bytes.client)
            )),
            Cell::new(format!(
                "{} / {}",
                r.message_counts.server,
                bytes(r.payload_bytes.server)
            )),
            Cell::new(pings),
            if colour { ended.fg(colour_of) } else { ended },
        ]);
    }
    t
}
