//! The TLS layer: a connection's two reassembled TCP byte streams in, the decrypted
//! application-data byte streams out (for HTTP/1.1 or HTTP/2 above), plus events: handshake
//! facts, alerts, close_notify, key changes, diagnostics. Without keys it still reads
//! everything TLS shows in clear and counts the records.
//!
//! ```text
//! bytes ─► record (framer) ─► [decrypt] ─► handshake joiner ─► hello/EE/Finished/KeyUpdate ...
//!                                       └► application data ─► Out::Data
//! ```
//!
//! Keys come from a shared [`KeyStore`] (key-log files, pcapng Decryption Secrets Blocks).
//! TLS 1.3 keys switch per direction (RFC 8446 §7.3): handshake keys after the ServerHello,
//! application keys after that side's Finished, the next generation after its KeyUpdate.
//! TLS 1.2 keys start at each side's ChangeCipherSpec.

pub mod decrypt;
pub mod handshake;
pub mod keylog;
mod layer;
pub mod pattern;
pub mod record;
pub mod schedule;
pub mod suite;

pub use keylog::KeyStore;
pub use layer::{TlsEvent, TlsLayer};
pub use record::looks_like_client_hello;

#[cfg(test)]
mod layer_test;
