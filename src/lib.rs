//! wsprobe: WebSocket traffic analysis from packet captures.
//!
//! One pass, data flowing one way:
//!
//! ```text
//! capture (file | live) ─► decode (link, IP, TCP) ─► tcp::reassembly (per direction)
//!   ─► http (upgrade handshake) ─► ws::framer / ws::hunt (frames, unmasking, resynchronisation)
//!   ─► ws::message (fragments, inflate, UTF-8, RFC rules) ─► analysis (close, ping/pong, timing)
//!   ─► findings (patterns across connections) ─► report (table | json | jsonl)
//! ```
//!
//! `connection` owns one connection's stage objects; `pipeline` owns the flow table.
#![deny(missing_docs)]

pub mod analysis;
pub mod app;
pub mod capture;
pub mod cli;
pub mod connection;
pub mod decode;
pub mod diag;
pub mod error;
pub mod findings;
pub mod http;
pub mod live;
pub mod pack;
pub mod pipeline;
pub mod record;
pub mod report;
pub mod run;
pub mod sniff;
pub mod stream;
pub mod tcp;
pub mod ws;
