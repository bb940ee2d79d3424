//! The whole pipeline on raw bytes: a whole capture file, or a pcap body after a fixed header
//! (the first input byte chooses, and the link type), through every stage to a reporter, with
//! default or tiny limits (second byte).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| wsprobe_fuzz::run_pipeline(data));
