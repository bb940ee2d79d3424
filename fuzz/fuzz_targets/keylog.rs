//! The NSS key-log parser: every line of the input through `parse_line`, the whole input into
//! a `KeyStore` (as a pcapng Decryption Secrets Block would be), and the counts it reports.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wsprobe::stream::tls::KeyStore;
use wsprobe::stream::tls::keylog::{MAX_WARNINGS, parse_line};

fuzz_target!(|data: &[u8]| {
    for line in data.split(|b| *b == b'\n' || *b == b'\r') {
        let _ = parse_line(line);
    }
    let store = KeyStore::new(false);
    let s = store.add_text("fuzz", data);
    assert!(s.secrets + s.malformed <= s.lines);
    assert!(s.warnings.len() <= MAX_WARNINGS);
    assert!(s.warnings.iter().all(|w| w.line >= 1 && w.line <= s.lines));
    // Lookups on whatever was stored never panic.
    let _ = store.tls13(&[0; 32]);
    let _ = store.master_secret(&[0; 32], data.get(..8).unwrap_or_default(), Some(data));
});
