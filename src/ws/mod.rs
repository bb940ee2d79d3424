//! WebSocket frame layer (RFC 6455 §5, §7.4; RFC 7692): one direction's reassembled bytes -> frame events,
//! unmasked payload chunks, inflated messages and UTF-8 verdicts.
//!
//! Stages, each in its own file:
//! - `opcode`: wire opcode and close code values -> meaning;
//! - `frame`: bytes -> one `FrameHeader` (nom streaming parser) and the encoder used by tests;
//! - `mask`: masked payload -> unmasked payload, word at a time, resumable at any key phase;
//! - `framer`: one direction's stream (with TCP gaps) -> `FrameEvent`s, while frame boundaries are known;
//! - `hunt`: resynchronisation, where boundaries are unknown -> the offset of the first provable boundary;
//! - `deflate`: compressed message payloads -> inflated bytes (permessage-deflate, bounded output);
//! - `utf8`: text payload chunks -> valid / invalid, across any split;
//! - `message`: frame events -> data messages and control frames, with every RFC 6455 / RFC 7692 rule a
//!   frame can break reported on the way (uses `deflate` and `utf8`).
//!
//! The module depends on std, nom, flate2, simdutf8 and base64, and on `crate::diag` and `crate::http`'s
//! negotiated parameters (for `message`).

pub mod deflate;
pub mod frame;
pub mod framer;
mod hunt;
pub mod mask;
pub mod message;
pub mod opcode;
pub mod utf8;

pub use deflate::{InflateError, InflateParams, Inflater};
pub use frame::{FrameHeader, HeaderError, HeaderParse, encode_frame, parse_frame_header};
pub use framer::{FrameEvent, Framer};
pub use mask::apply_mask;
pub use opcode::{OpCode, close_code_allowed_on_wire, close_code_meaning};
pub use utf8::Utf8Validator;

#[cfg(test)]
pub(crate) mod testing;
