//! One TCP connection driven segment by segment after a chosen handshake (none, plain,
//! permessage-deflate with and without context takeover or with small windows, an unknown
//! extension): reassembly with holes and retransmissions, HTTP, frames, messages, inflating,
//! analysis and the record, without the fuzzer having to find a valid capture first.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| wsprobe_fuzz::run_connection(data));
