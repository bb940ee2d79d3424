//! The capture reader on arbitrary bytes, read at once and trickled in small reads as a pipe
//! delivers them: never a panic, every packet decodes or is skipped, and both ways of reading
//! see the same packets.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wsprobe::capture::file::read_capture;
use wsprobe::decode::decode;
use wsprobe_fuzz::Trickle;

fn read(input: impl std::io::Read + Send) -> Option<(u64, u64, u64, Option<String>)> {
    let mut seen = 0u64;
    let mut sum = 0u64;
    let summary = read_capture(
        input,
        "fuzz",
        |p| {
            seen += 1;
            sum += p.data.len() as u64;
            if let Ok(seg) = decode(p) {
                assert!(seg.payload.len() <= p.data.len());
            }
        },
        |_| {},
    )
    .ok()?;
    assert_eq!(seen + summary.skipped_packets, summary.packets);
    assert!(sum <= summary.bytes);
    Some((summary.packets, seen, summary.bytes, summary.error))
}

fuzz_target!(|data: &[u8]| {
    let whole = read(std::io::Cursor::new(data));
    let chunk = 1 + data.iter().fold(0usize, |a, &b| {
        a.wrapping_mul(31).wrapping_add(usize::from(b))
    }) % 1500;
    let trickled = read(Trickle { data, chunk });
    assert_eq!(
        whole.as_ref().map(|w| (w.0, w.1, w.2)),
        trickled.as_ref().map(|t| (t.0, t.1, t.2)),
        "chunk {chunk}: {whole:?} vs {trickled:?}"
    );
});
