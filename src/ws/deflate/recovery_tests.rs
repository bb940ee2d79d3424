//! The inflater after a loss under context takeover (see the module docs): every message is either exact
//! or reported unknown (with only a known prefix passed on), whatever the sender's window bits, and the
//! window becomes whole again after a window of known output.

use super::tests::{deflate_messages, deflate_sync};
use super::*;
use flate2::{Compress, Compression};
use proptest::prelude::*;

/// What the inflater made of one message: the bytes it passed on and its result.
#[derive(Debug)]
struct Outcome {
    passed: Vec<u8>,
    result: Result<u64, InflateError>,
    after_loss: bool,
}

fn run(inf: &mut Inflater, wire: &[u8], pieces: usize) -> Outcome {
    let mut passed = Vec::new();
    inf.begin_message();
    let step = wire.len().div_ceil(pieces.max(1)).max(1);
    let mut result = Ok(0);
    for chunk in wire.chunks(step) {
        if let Err(e) = inf.push(chunk, &mut |d: &[u8]| passed.extend_from_slice(d)) {
            result = Err(e);
        }
    }
    let end = inf.end_message(&mut |d: &[u8]| passed.extend_from_slice(d));
    Outcome {
        passed,
        result: result.and(end),
        after_loss: inf.last_message_after_loss(),
    }
}

/// Checks the contract for one message after a loss: exact, or unknown with a true prefix and the true
/// length. Returns whether it was exact.
fn check(i: usize, o: &Outcome, truth: &[u8]) -> bool {
    match &o.result {
        Ok(n) => {
            assert_eq!(*n, truth.len() as u64, "message {i}: length");
            assert!(
                o.passed == truth,
                "message {i}: inflated bytes differ from the sender's"
            );
            true
        }
        Err(InflateError::UnknownHistory { exact, length }) => {
            assert_eq!(*length, truth.len() as u64, "message {i}: length");
            assert_eq!(
                o.passed.len() as u64,
                *exact,
                "message {i}: only the known prefix"
            );
            assert!(truth.starts_with(&o.passed), "message {i}: prefix differs");
            false
        }
        Err(e) => panic!("message {i}: {e}"),
    }
}

/// JSON-ish messages sharing most of their text, as real traffic does.
fn ticks(n: usize, from: usize) -> Vec<Vec<u8>> {
    (from..from + n)
        .map(|i| {
            format!(
                r#"{{"type":"tick","seq":{i},"symbol":"ACME","price":{}.{:02},"tags":["equity","demo"]}}"#,
                100 + i * 3 % 17,
                i * 7 % 100
            )
            .into_bytes()
        })
        .collect()
}

/// Pseudo-random bytes (incompressible: all literals).
fn noise(seed: u64, n: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[test]
fn a_dropped_message_leaves_every_later_one_exact_or_unknown_and_the_window_recovers() {
    // Ticks, one lost, more ticks, then 40 KiB of fresh bytes, then ticks again: before the fresh bytes
    // the ticks copy their common text from the lost window (unknown, however much output passes: see
    // the module docs); the fresh bytes are literals, known, and after a window of them every tick is
    // exact and the second decoder is gone.
    let mut msgs = ticks(20, 0);
    msgs.extend(ticks(60, 20));
    msgs.push(noise(7, 40 * 1024));
    msgs.extend(ticks(30, 80));
    for bits in [9u8, 12, 15] {
        let wire = deflate_messages(&msgs, bits, true);
        let mut inf = Inflater::new(InflateParams::default(), 1 << 20);
        for (w, m) in wire.iter().zip(&msgs).take(19) {
            assert!(check(0, &run(&mut inf, w, 1), m));
        }
        // Message 19 is lost: the connection tells the inflater, as after a gap.
        inf.lose_context();
        let mut exact_before_noise = 0;
        for (i, (w, m)) in wire.iter().zip(&msgs).enumerate().skip(20) {
            let o = run(&mut inf, w, 3);
            let exact = check(i, &o, m);
            if i < 80 {
                exact_before_noise += usize::from(exact);
                assert!(o.after_loss);
            } else if i > 80 {
                assert!(
                    exact,
                    "bits {bits}: message {i} after a window of known output"
                );
                assert!(
                    !inf.is_recovering(),
                    "bits {bits}: the window is known again"
                );
            }
        }
        // With a small window the ticks lose the lost text sooner.
        assert!(
            exact_before_noise < 60,
            "bits {bits}: {exact_before_noise} exact"
        );
    }
}

#[test]
fn the_window_is_not_whole_after_a_window_of_output_if_that_output_is_copied_from_the_unknown() {
    // The claim "2^window_bits bytes after the damage, everything is exact" is false: 60 ticks are more
    // than 4 KiB of output, yet with a 12-bit window they are all still unknown, each copying its common
    // text from the previous one, back to the lost message.
    let msgs = ticks(80, 0);
    let wire = deflate_messages(&msgs, 12, true);
    let mut inf = Inflater::new(InflateParams::default(), 1 << 20);
    for (w, m) in wire.iter().zip(&msgs).take(10) {
        check(0, &run(&mut inf, w, 1), m);
    }
    inf.lose_context();
    let mut output = 0;
    for (i, (w, m)) in wire.iter().zip(&msgs).enumerate().skip(11) {
        let o = run(&mut inf, w, 1);
        assert!(!check(i, &o, m), "message {i} exact");
        output += m.len();
    }
    assert!(output > 1 << 12 && inf.is_recovering());
}

#[test]
fn no_context_takeover_messages_are_exact_after_a_loss_and_without_a_handshake() {
    let msgs = ticks(30, 0);
    for bits in [9u8, 15] {
        let wire = deflate_messages(&msgs, bits, false);
        // Negotiated: every message after the loss is exact, by the normal path.
        let mut inf = Inflater::new(
            InflateParams {
                no_context_takeover: true,
                max_window_bits: bits,
            },
            1 << 20,
        );
        inf.lose_context();
        for (i, (w, m)) in wire.iter().zip(&msgs).enumerate().skip(3) {
            let o = run(&mut inf, w, 2);
            assert!(check(i, &o, m) && !o.after_loss);
        }
        // No handshake seen: context takeover and 15 bits assumed, the history unknown. Each message
        // refers to nothing before it, so each is proven exact.
        let mut inf = Inflater::new(InflateParams::default(), 1 << 20);
        inf.lose_context();
        for (i, (w, m)) in wire.iter().zip(&msgs).enumerate().skip(3) {
            let o = run(&mut inf, w, 2);
            assert!(check(i, &o, m) && o.after_loss, "message {i}");
        }
    }
}

#[test]
fn recovery_takes_a_second_decoder_from_the_budget_and_gives_it_back() {
    let mut msgs = ticks(5, 0);
    msgs.push(noise(3, 40 * 1024));
    msgs.extend(ticks(5, 5));
    let wire = deflate_messages(&msgs, 15, true);
    // One decoder only: no recovery, and the message says why.
    let budget = DecoderBudget::new(1);
    let mut inf = Inflater::with_budget(InflateParams::default(), 1 << 20, budget.clone());
    run(&mut inf, &wire[0], 1);
    inf.lose_context();
    let o = run(&mut inf, &wire[2], 1);
    assert_eq!(o.result, Err(InflateError::DecoderLimit { limit: 1 }));
    assert!(budget.live() <= 1 && inf.is_context_lost());
    drop(inf);
    // Two: recovery runs on two, and drops to one once the window is known.
    let budget = DecoderBudget::new(2);
    let mut inf = Inflater::with_budget(InflateParams::default(), 1 << 20, budget.clone());
    run(&mut inf, &wire[0], 1);
    assert_eq!(budget.live(), 1);
    inf.lose_context();
    run(&mut inf, &wire[2], 1);
    assert_eq!((budget.live(), inf.is_recovering()), (2, true));
    for (i, (w, m)) in wire.iter().zip(&msgs).enumerate().skip(3) {
        check(i, &run(&mut inf, w, 1), m);
    }
    assert_eq!((budget.live(), inf.is_recovering()), (1, false));
    // Hibernating during a recovery gives both back; the next message takes both again.
    inf.lose_context();
    run(&mut inf, &wire[7], 1);
    inf.hibernate();
    assert_eq!(budget.live(), 0);
    check(8, &run(&mut inf, &wire[8], 1), &msgs[8]);
    assert_eq!((budget.live(), inf.is_recovering()), (2, true));
    drop(inf);
    assert_eq!(budget.live(), 0);
}

#[test]
fn hibernating_during_a_recovery_changes_nothing() {
    let mut msgs = ticks(10, 0);
    msgs.push(noise(5, 20 * 1024));
    msgs.extend(ticks(40, 10));
    let wire = deflate_messages(&msgs, 15, true);
    let outcomes = |hibernate: bool| {
        let mut inf = Inflater::new(InflateParams::default(), 1 << 20);
        inf.lose_context();
        wire.iter()
            .skip(2)
            .enumerate()
            .map(|(i, w)| {
                if hibernate && i % 3 == 0 {
                    inf.hibernate();
                }
                let o = run(&mut inf, w, 1);
                (o.passed, o.result)
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(outcomes(false), outcomes(true));
}

#[test]
fn a_new_deflate_stream_after_bfinal_keeps_the_unknown_tracked() {
    // RFC 7692 §7.2.3.4: a message may end with a BFINAL block; the next starts a new DEFLATE stream that
    // still refers to the same window. After a loss, the recovery carries over to the new stream.
    let mut c = Compress::new(Compression::default(), false);
    let first = ticks(6, 0);
    let mut wire: Vec<Vec<u8>> = first
        .iter()
        .map(|m| {
            let mut w = deflate_sync(&mut c, m);
            w.truncate(w.len() - 4);
            w
        })
        .collect();
    // The last message of the first stream ends with BFINAL.
    let last = ticks(1, 6).remove(0);
    let mut end = Vec::with_capacity(last.len() + 64);
    c.compress_vec(&last, &mut end, flate2::FlushCompress::Finish)
        .unwrap();
    assert!(!end.is_empty() && c.total_in() as usize == first.concat().len() + last.len());
    wire.push(end);
    let mut history: Vec<u8> = first.concat();
    history.extend_from_slice(&last);
    // The second stream, primed with the same window.
    let mut c2 = Compress::new(Compression::default(), false);
    c2.set_dictionary(&history[history.len().saturating_sub(WINDOW)..])
        .unwrap();
    let second = ticks(6, 7);
    for m in &second {
        let mut w = deflate_sync(&mut c2, m);
        w.truncate(w.len() - 4);
        wire.push(w);
    }
    let msgs: Vec<Vec<u8>> = first.into_iter().chain([last]).chain(second).collect();
    let mut inf = Inflater::new(InflateParams::default(), 1 << 20);
    inf.lose_context();
    for (i, (w, m)) in wire.iter().zip(&msgs).enumerate().skip(2) {
        check(i, &run(&mut inf, w, 1), m);
    }
    assert!(inf.is_recovering());
}

/// Messages for the property: fresh bytes, words from a small vocabulary, and repeats of earlier ones.
fn message_strategy() -> impl Strategy<Value = Vec<Vec<u8>>> {
    let one = prop_oneof![
        3 => (any::<u64>(), 0usize..3000).prop_map(|(s, n)| noise(s, n)),
        4 => proptest::collection::vec(0usize..8, 1..400).prop_map(|ws| {
            const WORDS: [&str; 8] = ["alpha ", "beta ", "gamma ", "{\"id\":", "42,", "\"x\"}", "\n", "zeta "];
            ws.iter().flat_map(|&w| WORDS[w].bytes()).collect()
        }),
        2 => Just(Vec::new()),
    ];
    proptest::collection::vec(one, 4..24)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Synthetic permessage-deflate streams (context takeover, window bits 9-15) with one message dropped
    /// (or cut): every message after it is byte-exact or reported unknown with a true prefix and its true
    /// length; once 2^bits bytes of fresh (incompressible) output have passed, every message after is
    /// exact.
    #[test]
    fn prop_after_a_drop_messages_are_exact_or_unknown(
        mut msgs in message_strategy(),
        bits in 9u8..=15,
        drop_at in any::<proptest::sample::Index>(),
        cut in any::<bool>(),
        pieces in 1usize..4,
        seed in any::<u64>(),
    ) {
        let window = 1usize << bits;
        // A window of fresh output near the end, then messages that copy from everything before.
        let fresh_at = msgs.len() - 2;
        msgs.insert(fresh_at, noise(seed, window + 64));
        let tail: Vec<Vec<u8>> = msgs[..fresh_at].iter().rev().take(3).cloned().collect();
        msgs.extend(tail);
        let wire = deflate_messages(&msgs, bits, true);
        let dropped = drop_at.index(fresh_at);
        let mut inf = Inflater::new(InflateParams { no_context_takeover: false, max_window_bits: bits }, 1 << 20);
        for (i, (w, m)) in wire.iter().zip(&msgs).enumerate() {
            if i < dropped {
                let o = run(&mut inf, w, pieces);
                prop_assert!(check(i, &o, m) && !o.after_loss);
            } else if i == dropped {
                if cut && w.len() > 1 {
                    // The message starts, its end is lost in a gap.
                    inf.begin_message();
                    let _ = inf.push(&w[..w.len() / 2], &mut |_: &[u8]| {});
                }
                inf.lose_context();
            } else {
                let o = run(&mut inf, w, pieces);
                let exact = check(i, &o, m);
                if i > fresh_at {
                    prop_assert!(exact, "message {} after a window of fresh output", i);
                }
            }
        }
    }
}

#[test]
fn the_output_limit_holds_during_a_recovery() {
    // A message past the per-message limit while the window is partly unknown: stopped at the limit,
    // only a true prefix passed on, and the next message is still judged (found by the mutants test:
    // the two decoders' outputs were compared past the limit).
    let mut msgs = ticks(4, 0);
    msgs.push(noise(9, 5000));
    msgs.push([ticks(1, 4)[0].clone(), noise(10, 3000)].concat());
    msgs.extend(ticks(3, 5));
    let wire = deflate_messages(&msgs, 15, true);
    let mut inf = Inflater::new(InflateParams::default(), 1000);
    check(0, &run(&mut inf, &wire[0], 1), &msgs[0]);
    inf.lose_context();
    for (i, (w, m)) in wire.iter().zip(&msgs).enumerate().skip(2) {
        let o = run(&mut inf, w, 3);
        if m.len() > 1000 {
            assert_eq!(
                o.result,
                Err(InflateError::OutputLimit { limit: 1000 }),
                "message {i}"
            );
            assert!(
                o.passed.len() <= 1000 && m.starts_with(&o.passed),
                "message {i}"
            );
        } else {
            match o.result {
                Ok(_) | Err(InflateError::UnknownHistory { .. }) => {
                    assert!(m.starts_with(&o.passed))
                }
                Err(e) => panic!("message {i}: {e}"),
            }
        }
    }
}
