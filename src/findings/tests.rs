//! The detectors on synthetic endings: planted patterns among random, unrelated endings are found
//! with the right parameters and connections; pure noise gives nothing; the thresholds hold.

use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};

use super::burst::{BURST_WINDOW_S, MIN_SHARE};
use super::ending::{Ending, Host, How, Secs, Seen};
use super::idle::{MIN_IDLE_S, MIN_MEMBERS};
use super::stats::VALUE_TOLERANCE;
use super::*;
use crate::diag::Side;
use crate::record::Fingerprint;

/// A small deterministic generator (xorshift64*), so every case is reproducible from its seed.
pub(super) struct Rng(u64);

impl Rng {
    pub(super) fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }
    fn log_range(&mut self, lo: f64, hi: f64) -> f64 {
        (lo.ln() + (hi.ln() - lo.ln()) * self.unit()).exp()
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn host(last: u8, port: u16) -> Host {
    Host {
        addr: std::net::Ipv4Addr::new(10, 0, 0, last)
            .to_ipv6_mapped()
            .octets(),
        port,
    }
}

/// A connection from client `client` to `server`, started at `start`, ended at `end` by `how`
/// from `by`, silent for `idle` seconds before the end.
#[allow(clippy::too_many_arguments)]
fn ending(
    id: u64,
    client: Host,
    server: Host,
    start: f64,
    end: f64,
    how: How,
    by: Option<Side>,
    idle: f64,
) -> Ending {
    let idle32 = Secs::from(Some(idle as f32));
    Ending {
        id,
        client,
        server,
        first_seen: start - 0.001,
        start,
        end,
        how,
        by,
        websocket: true,
        idle: idle32,
        idle_by_side: [idle32, idle32],
        longest_silence: Some(((end - start - idle).max(0.0) / 4.0) as f32).into(),
        age: (end - start) as f32,
        messages: [3, 3],
        pings: [0, 0],
        ping_interval: [Secs::NONE; 2],
        unanswered: [0, 0],
        unanswered_for: [Secs::NONE; 2],
        retransmissions_near_end: [0, 0],
        reason: None,
        fingerprint: Fingerprint {
            key: Some(id.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xABCD),
            frames: id.wrapping_mul(31),
            frame_count: 3,
            masked: 1,
            varied_masks: false,
        },
        stopped: false,
        rare: None,
        seen: Seen::Plain,
    }
}

const T0: f64 = 1_700_000_000.0;

/// Random, unrelated endings: random servers, times, ages, silences and ways of ending.
/// `quiet_below`: on server port 443 (where patterns are planted), no silence reaches it
/// (a timeout on that path would have cut it).
pub(super) fn noise(
    rng: &mut Rng,
    n: usize,
    first_id: u64,
    quiet_below: Option<f64>,
) -> Vec<Ending> {
    (0..n)
        .map(|i| {
            let id = first_id + i as u64;
            let port = [443, 8080, 9000][rng.below(3) as usize];
            let start = T0 + rng.range(0.0, 3600.0);
            let mut age = rng.log_range(0.2, 3000.0);
            let mut idle = age * rng.unit();
            if let (443, Some(q)) = (port, quiet_below)
                && idle > 0.9 * q
            {
                idle = q * rng.range(0.0, 0.9);
                age = age.max(idle);
            }
            let (how, by) = match rng.below(7) {
                0 => (
                    How::Close {
                        code: 1000,
                        answered: true,
                    },
                    Some(Side::Client),
                ),
                1 => (
                    How::Close {
                        code: 1001,
                        answered: true,
                    },
                    Some(Side::Server),
                ),
                2 => (
                    How::Close {
                        code: 1011,
                        answered: rng.below(2) == 0,
                    },
                    Some(Side::Server),
                ),
                3 => (How::Fin, Some(Side::Server)),
                4 => (How::Fin, Some(Side::Client)),
                5 => (How::Rst, Some(Side::Server)),
                _ => (How::Rst, Some(Side::Client)),
            };
            let client = host((rng.below(200) + 20) as u8, 40_000 + (id % 20_000) as u16);
            let mut e = ending(id, client, host(1, port), start, start + age, how, by, idle);
            if let (443, Some(q)) = (port, quiet_below) {
                e.longest_silence = Some((q * rng.range(0.0, 0.9)) as f32).into();
            }
            e
        })
        .collect()
}

pub(super) fn detect(endings: Vec<Ending>) -> Vec<Finding> {
    let mut engine = FindingsEngine::new();
    for e in &endings {
        engine.latest = engine.latest.max(e.end);
    }
    engine.endings = endings.into_iter().collect();
    engine.finish()
}

pub(super) fn ids(findings: &[Finding]) -> Vec<&'static str> {
    findings.iter().map(|f| f.id.as_str()).collect()
}

/// An idle timeout of `t` cutting `k` connections to 10.0.0.1:443 (FIN from the server), with a
/// few pinging connections that outlive it.
pub(super) fn plant_idle(rng: &mut Rng, t: f64, k: usize, first_id: u64) -> Vec<Ending> {
    let mut out = Vec::new();
    for i in 0..k {
        let id = first_id + i as u64;
        let start = T0 + rng.range(0.0, 3000.0);
        let active = rng.log_range(0.5, 600.0);
        // Timers fire within a millisecond or so; the capture adds a round trip.
        let idle = t * (1.0 + rng.range(0.0, 0.001)) + rng.range(0.0, 0.005);
        let client = host((i % 200) as u8 + 20, 50_000 + i as u16);
        let mut e = ending(
            id,
            client,
            host(1, 443),
            start,
            start + active + idle,
            How::Fin,
            Some(Side::Server),
            idle,
        );
        e.longest_silence = Some((t * rng.range(0.0, 0.8)) as f32).into();
        out.push(e);
    }
    for i in 0..3 {
        let id = first_id + k as u64 + i;
        let start = T0 + rng.range(0.0, 1000.0);
        let age = t * rng.range(3.0, 10.0);
        let client = host(250, 60_000 + i as u16);
        let mut e = ending(
            id,
            client,
            host(1, 443),
            start,
            start + age,
            How::Close {
                code: 1000,
                answered: true,
            },
            Some(Side::Client),
            t * 0.1,
        );
        e.pings = [10, 0];
        e.ping_interval = Secs::pair([Some((t / 3.0) as f32), None]);
        e.longest_silence = Some((t / 3.0) as f32).into();
        out.push(e);
    }
    out
}

/// A restart of 10.0.0.1:443 at `t0`: `k` connections end within 5 ms with a FIN or RST from
/// the server, and their clients reconnect within a few seconds.
fn plant_restart(rng: &mut Rng, t0: f64, k: usize, first_id: u64) -> Vec<Ending> {
    let mut out = Vec::new();
    for i in 0..k {
        let id = first_id + i as u64;
        let start = t0 - rng.range(5.0, 3000.0);
        let end = t0 + rng.range(0.0, 0.005);
        let how = if rng.below(2) == 0 {
            How::Fin
        } else {
            How::Rst
        };
        let client = host(100 + (i % 100) as u8, 30_000 + i as u16);
        out.push(ending(
            id,
            client,
            host(1, 443),
            start,
            end,
            how,
            Some(Side::Server),
            rng.range(0.0, 30.0),
        ));
        // The same client back after its backoff, still open at the end.
        let back = t0 + rng.range(0.3, 5.0);
        let mut again = ending(
            id + 10_000,
            host(100 + (i % 100) as u8, 31_000 + i as u16),
            host(1, 443),
            back,
            back + 2000.0,
            How::Open,
            None,
            1.0,
        );
        again.how = How::Open;
        out.push(again);
    }
    out
}

fn config(cases: u32, seed: u64) -> Config {
    Config {
        cases,
        rng_seed: RngSeed::Fixed(seed),
        failure_persistence: None,
        ..Config::default()
    }
}

proptest! {
    #![proptest_config(config(48, 13))]

    #[test]
    fn a_planted_idle_timeout_is_found_among_noise(
        seed in any::<u64>(),
        t in 5.0f64..600.0,
        k in 5usize..20,
        n in 20usize..300,
    ) {
        let mut rng = Rng::new(seed);
        let mut endings = noise(&mut rng, n, 0, Some(t));
        let planted = plant_idle(&mut rng, t, k, 100_000);
        let want: Vec<u64> = planted[..k].iter().map(|e| e.id).collect();
        endings.extend(planted);
        let found = detect(endings);
        let idle: Vec<&Finding> = found.iter().filter(|f| f.id == FindingId::IdleTimeout).collect();
        prop_assert_eq!(idle.len(), 1, "{:?}", ids(&found));
        let got = idle[0].parameters["timeout_s"].as_f64().unwrap();
        prop_assert!((got - t).abs() / t < 0.05, "T {} found {}", t, got);
        for id in &want {
            prop_assert!(idle[0].connections.contains(id), "planted #{} missing", id);
        }
        prop_assert!(idle[0].connections.len() <= k + 2, "{} connections for {} planted", idle[0].connections.len(), k);
        prop_assert!(idle[0].parameters["survivors"].as_u64().unwrap() >= 3);
        let others: Vec<&str> = found.iter().filter(|f| f.id != FindingId::IdleTimeout).map(|f| f.id.as_str()).collect();
        prop_assert!(others.is_empty(), "{:?}", others);
    }

    #[test]
    fn a_planted_restart_is_found_among_noise(
        seed in any::<u64>(),
        k in 5usize..40,
        n in 20usize..300,
    ) {
        let mut rng = Rng::new(seed);
        let t0 = T0 + rng.range(3000.0, 3400.0);
        // Noise on 10.0.0.1:443 never spans the restart: it would have ended too.
        let mut endings: Vec<Ending> = noise(&mut rng, n, 0, None)
            .into_iter()
            .filter(|e| e.server.port != 443 || e.end < t0 - 1.0 || e.start > t0 + 1.0)
            .collect();
        let planted = plant_restart(&mut rng, t0, k, 100_000);
        let want: Vec<u64> = planted.iter().filter(|e| e.ended()).map(|e| e.id).collect();
        endings.extend(planted);
        let found = detect(endings);
        let restart: Vec<&Finding> = found.iter().filter(|f| f.id == FindingId::ServerRestart).collect();
        prop_assert_eq!(restart.len(), 1, "{:?}", ids(&found));
        let time = restart[0].parameters["time"].as_f64().unwrap();
        prop_assert!((time - t0).abs() <= 0.05, "restart at {} found at {}", t0, time);
        prop_assert_eq!(&restart[0].connections, &want);
        prop_assert_eq!(restart[0].parameters["reconnected"].as_u64(), Some(k as u64));
        prop_assert_eq!(restart[0].parameters["server"].as_str(), Some("10.0.0.1:443"));
        let others: Vec<&str> = found.iter().filter(|f| f.id != FindingId::ServerRestart).map(|f| f.id.as_str()).collect();
        prop_assert!(others.is_empty(), "{:?}", others);
    }
}

#[test]
fn pure_noise_gives_no_pattern() {
    for seed in 0..300u64 {
        let mut rng = Rng::new(seed);
        let n = 10 + rng.below(600) as usize;
        let found = detect(noise(&mut rng, n, 0, None));
        assert!(found.is_empty(), "seed {seed}, {n} endings: {:#?}", found);
    }
}

#[test]
fn two_connections_never_make_a_pattern() {
    assert_eq!(MIN_MEMBERS, 3);
    let mut endings = Vec::new();
    for i in 0..2 {
        let start = T0 + 100.0 * i as f64;
        endings.push(ending(
            i,
            host(20 + i as u8, 40_000),
            host(1, 443),
            start,
            start + 70.0,
            How::Fin,
            Some(Side::Server),
            60.0,
        ));
    }
    assert!(detect(endings.clone()).is_empty());
    let start = T0 + 300.0;
    endings.push(ending(
        2,
        host(30, 40_000),
        host(1, 443),
        start,
        start + 75.0,
        How::Fin,
        Some(Side::Server),
        60.01,
    ));
    let found = detect(endings);
    assert_eq!(ids(&found), ["idle_timeout"]);
    assert_eq!(found[0].parameters["timeout_s"], 60.0);
    let names: Vec<&str> = found[0].suspects.iter().map(|s| s.name).collect();
    assert!(
        names.contains(&"nginx") && names.contains(&"AWS Application Load Balancer"),
        "{names:?}"
    );
}

#[test]
fn the_same_duration_means_within_the_tolerance() {
    assert_eq!(VALUE_TOLERANCE, 0.02);
    let run = |spread: f64| {
        let endings: Vec<Ending> = (0..4)
            .map(|i| {
                let idle = 30.0 * (1.0 + spread * i as f64);
                let start = T0 + 500.0 * i as f64;
                ending(
                    i,
                    host(20 + i as u8, 40_000),
                    host(1, 443),
                    start,
                    start + idle + 5.0,
                    How::Rst,
                    Some(Side::Server),
                    idle,
                )
            })
            .collect();
        detect(endings)
    };
    assert_eq!(
        ids(&run(0.003)),
        ["idle_timeout"],
        "1 % apart in all: the same"
    );
    assert!(run(0.03).is_empty(), "3 % steps: different durations");
}

#[test]
fn short_silences_are_not_timeouts() {
    assert_eq!(MIN_IDLE_S, 0.5);
    let endings: Vec<Ending> = (0..6)
        .map(|i| {
            let start = T0 + 10.0 * i as f64;
            let age = 3.0 * 1.3f64.powi(i as i32);
            ending(
                i,
                host(20 + i as u8, 40_000),
                host(1, 443),
                start,
                start + age,
                How::Fin,
                Some(Side::Server),
                0.3,
            )
        })
        .collect();
    assert!(detect(endings).is_empty());
}

#[test]
fn connections_silent_longer_on_the_same_path_refute_an_idle_timeout() {
    let mut endings: Vec<Ending> = (0..3)
        .map(|i| {
            let start = T0 + 10.0 * i as f64;
            ending(
                i,
                host(20 + i as u8, 40_000),
                host(1, 443),
                start,
                start + 65.0,
                How::Fin,
                Some(Side::Server),
                60.0,
            )
        })
        .collect();
    for i in 3..6 {
        let start = T0 + 10.0 * i as f64;
        let mut e = ending(
            i,
            host(20 + i as u8, 40_000),
            host(1, 443),
            start,
            start + 500.0,
            How::Close {
                code: 1000,
                answered: true,
            },
            Some(Side::Client),
            1.0,
        );
        e.longest_silence = Some(200.0).into();
        endings.push(e);
    }
    let found = detect(endings);
    assert!(found.is_empty(), "{found:#?}");
}

#[test]
fn one_instant_means_within_the_burst_window_and_most_of_the_open_connections() {
    assert_eq!(BURST_WINDOW_S, 0.25);
    assert_eq!(MIN_SHARE, 0.3);
    let burst = |step: f64, others_open: usize| {
        let mut endings: Vec<Ending> = (0..4)
            .map(|i| {
                let end = T0 + 1000.0 + step * i as f64;
                let idle = 3.0 * 1.5f64.powi(i as i32);
                let start = T0 + 97.0 * i as f64;
                ending(
                    i,
                    host(20 + i as u8, 40_000),
                    host(1, 443),
                    start,
                    end,
                    How::Rst,
                    Some(Side::Server),
                    idle,
                )
            })
            .collect();
        for i in 0..others_open {
            let id = 100 + i as u64;
            endings.push(ending(
                id,
                host(90, 41_000 + i as u16),
                host(1, 443),
                T0,
                T0 + 5000.0,
                How::Open,
                None,
                1.0,
            ));
        }
        detect(endings)
    };
    assert_eq!(ids(&burst(0.01, 0)), ["mass_disconnect"]);
    let spread = burst(0.2, 0);
    assert!(
        spread.is_empty(),
        "0.6 s from first to last: not one instant: {spread:#?}"
    );
    assert_eq!(ids(&burst(0.01, 9)), ["mass_disconnect"], "4 of 13 open");
    assert!(burst(0.01, 10).is_empty(), "4 of 14 open: under 30 %");
}

#[test]
fn a_graceful_shutdown_names_the_code_and_those_that_did_not_answer() {
    let mut endings = Vec::new();
    for i in 0..6u64 {
        let end = T0 + 100.0 + 0.002 * i as f64;
        let answered = i % 3 != 0;
        let mut e = ending(
            i,
            host(20 + i as u8, 40_000),
            host(1, 443),
            T0 + 7.0 * i as f64,
            end,
            How::Close {
                code: 1001,
                answered,
            },
            Some(Side::Server),
            4.0 + 1.7 * i as f64,
        );
        e.reason = Some("going away".into());
        endings.push(e);
    }
    let found = detect(endings);
    assert_eq!(ids(&found), ["graceful_shutdown"]);
    let p = &found[0].parameters;
    assert_eq!(p["code"], 1001);
    assert_eq!(p["unanswered"], serde_json::json!([0, 3]));
    assert_eq!(p["server"], "10.0.0.1:443");
    assert!((p["time"].as_f64().unwrap() - (T0 + 100.0)).abs() < 1e-6);
}

#[test]
fn unanswered_pings_then_a_consistent_delay_is_a_heartbeat_timeout() {
    let mut endings = Vec::new();
    for i in 0..4u64 {
        let start = T0 + 17.0 * i as f64;
        let first = start + 30.0;
        let end = first + 20.0 + 0.01 * i as f64;
        let mut e = ending(
            i,
            host(20 + i as u8, 40_000),
            host(1, 443),
            start,
            end,
            How::Close {
                code: 1011,
                answered: false,
            },
            Some(Side::Client),
            20.0,
        );
        e.pings = [3, 0];
        e.ping_interval = Secs::pair([Some(20.0), None]);
        e.unanswered = [1, 0];
        e.unanswered_for = Secs::pair([Some((end - first) as f32), None]);
        endings.push(e);
    }
    // And one with a healthy heartbeat that ended for another reason.
    let mut ok = ending(
        9,
        host(99, 40_000),
        host(1, 443),
        T0,
        T0 + 400.0,
        How::Close {
            code: 1000,
            answered: true,
        },
        Some(Side::Client),
        3.0,
    );
    ok.pings = [19, 0];
    endings.push(ok);
    let found = detect(endings);
    assert_eq!(ids(&found), ["heartbeat_timeout"]);
    let p = &found[0].parameters;
    assert_eq!(p["side"], "server", "the side that stopped answering");
    assert_eq!(p["pinging_side"], "client");
    assert!((p["timeout_s"].as_f64().unwrap() - 20.0).abs() < 0.05);
    assert_eq!(p["ping_interval_s"], 20.0);
    assert_eq!(found[0].connections, [0, 1, 2, 3]);
}

/// Application heartbeats: `timed_out` (ended_by, ping_unanswered, waited, limit) when the
/// decoder found their timeout.
fn app_beats(
    kind: &'static str,
    interval: f32,
    timed_out: Option<(Side, bool, f32, Option<f32>)>,
) -> Option<ending::AppBeats> {
    Some(ending::AppBeats {
        kind,
        sent: [5, 5],
        unanswered: u32::from(timed_out.is_some_and(|t| t.1)),
        interval: Some(interval),
        since_last: Some(timed_out.map_or(0.1, |t| t.2)),
        timed_out: timed_out.map(
            |(ended_by, ping_unanswered, waited, limit)| ending::AppTimeout {
                ended_by,
                silent: ended_by.peer(),
                ping_unanswered,
                waited,
                limit,
            },
        ),
    })
}

#[test]
fn application_ping_timeouts_are_heartbeat_timeouts_with_their_configuration() {
    // Engine.IO 4: the server pings every 300 ms, the clients stopped answering, the server
    // dropped each after pingTimeout 200 ms, with an empty Close; WebSocket pings: none.
    let mut rng = Rng::new(7);
    let mut endings = noise(&mut rng, 60, 100, None);
    for i in 0..4u64 {
        let start = T0 + 5.0 * i as f64;
        let end = start + 1.0 + 0.6 * i as f64;
        let mut e = ending(
            i,
            host(20 + i as u8, 40_000),
            host(1, 3000),
            start,
            end,
            How::Close {
                code: 1005,
                answered: true,
            },
            Some(Side::Server),
            0.2,
        );
        let waited = 0.2 + 0.002 * i as f32;
        e.rare_mut().app = app_beats(
            "engine.io ping/pong",
            0.3,
            Some((Side::Server, true, waited, Some(0.2))),
        );
        endings.push(e);
    }
    let found = detect(endings);
    let hb: Vec<&Finding> = found
        .iter()
        .filter(|f| f.id == FindingId::HeartbeatTimeout)
        .collect();
    assert_eq!(hb.len(), 1, "{found:#?}");
    let f = hb[0];
    assert_eq!(f.connections, [0, 1, 2, 3]);
    let p = &f.parameters;
    assert_eq!(p["side"], "client");
    assert_eq!(p["pinging_side"], "server");
    assert_eq!(p["ended_by"], "server");
    assert_eq!(p["heartbeat"], "engine.io ping/pong");
    assert_eq!(
        p["timeout_s"], 0.2,
        "the configured limit the delays confirm"
    );
    assert!(
        (p["observed_timeout_s"].as_f64().unwrap() - 0.2).abs() < 0.01,
        "{p:?}"
    );
    assert_eq!(p["ping_interval_s"], 0.3);
    assert_eq!(p["configured_timeout_s"], 0.2);
    assert!(
        f.evidence
            .contains("engine.io ping/pong heartbeats every 0.30 s"),
        "{}",
        f.evidence
    );
    assert!(
        f.evidence
            .contains("with a Close 1005, matching its configured limit of 0.20 s"),
        "{}",
        f.evidence
    );
    assert!(f.explanation.contains("pingTimeout"), "{}", f.explanation);
    // The configuration confirms it: surer than the delays alone.
    assert!(f.confidence > stats::count_confidence(4));
    // Explained by their own heartbeats: no idle timeout, no shutdown from the same endings.
    assert!(
        found
            .iter()
            .filter(|g| g.id != FindingId::HeartbeatTimeout)
            .all(|g| g.connections.iter().all(|id| *id >= 100)),
        "{found:#?}"
    );
}

#[test]
fn heartbeats_that_stop_coming_are_timeouts_of_the_waiting_side() {
    // MQTT: clients stopped sending (keep-alive 1 s); the broker dropped each after 1.5 s.
    let mut endings = Vec::new();
    for i in 0..3u64 {
        let start = T0 + 10.0 * i as f64;
        let end = start + 1.8 + 0.01 * i as f64;
        let mut e = ending(
            i,
            host(20 + i as u8, 40_000),
            host(1, 1883),
            start,
            end,
            How::Fin,
            Some(Side::Server),
            1.5,
        );
        e.rare_mut().app = app_beats(
            "MQTT PINGREQ/PINGRESP",
            1.0,
            Some((Side::Server, false, 1.5 + 0.01 * i as f32, Some(1.5))),
        );
        endings.push(e);
    }
    let found = detect(endings);
    assert_eq!(ids(&found), ["heartbeat_timeout"], "{found:#?}");
    let p = &found[0].parameters;
    assert_eq!(p["side"], "client", "the silent side");
    assert_eq!(p["pinging_side"], "client", "whose heartbeats stopped");
    assert_eq!(p["ended_by"], "server");
    assert_eq!(
        p["timeout_s"], 1.5,
        "1.5 x keep-alive, confirmed by the delays"
    );
    assert!((p["observed_timeout_s"].as_f64().unwrap() - 1.51).abs() < 0.01);
    assert!(
        found[0].evidence.contains("then stopped"),
        "{}",
        found[0].evidence
    );
    assert!(found[0].explanation.contains("1.5 x keep-alive"));
}

#[test]
fn application_heartbeats_keep_a_connection_alive_and_are_named_among_the_survivors() {
    // Five silent connections cut after 2 s by the server; three that exchanged STOMP
    // heart-beats lived on, and did not end with them.
    let mut endings = Vec::new();
    for i in 0..5u64 {
        let start = T0 + 3.0 * i as f64;
        endings.push(ending(
            i,
            host(20 + i as u8, 40_000),
            host(1, 61613),
            start,
            start + 2.0 + 0.005 * i as f64,
            How::Fin,
            Some(Side::Server),
            2.0 - 0.01,
        ));
    }
    for i in 5..8u64 {
        let start = T0 + 3.0 * i as f64;
        let mut e = ending(
            i,
            host(20 + i as u8, 40_000),
            host(1, 61613),
            start,
            start + 30.0,
            How::Close {
                code: 1000,
                answered: true,
            },
            Some(Side::Client),
            0.1,
        );
        e.longest_silence = Some(0.3).into();
        e.rare_mut().app = app_beats("STOMP heart-beat", 0.2, None);
        endings.push(e);
    }
    let found = detect(endings);
    assert_eq!(ids(&found), ["idle_timeout"], "{found:#?}");
    assert_eq!(found[0].connections, [0, 1, 2, 3, 4]);
    assert!(
        found[0]
            .evidence
            .contains("3 connection(s) that kept sending (application heartbeats) lived longer"),
        "{}",
        found[0].evidence
    );
}

#[test]
fn a_close_reason_naming_the_keepalive_is_enough_alone() {
    let mut e = ending(
        0,
        host(20, 40_000),
        host(1, 443),
        T0,
        T0 + 31.0,
        How::Close {
            code: 1011,
            answered: false,
        },
        Some(Side::Server),
        10.0,
    );
    e.pings = [0, 2];
    e.unanswered = [0, 1];
    e.unanswered_for = Secs::pair([None, Some(20.0)]);
    e.reason = Some("keepalive ping timeout".into());
    let found = detect(vec![e]);
    assert_eq!(ids(&found), ["heartbeat_timeout"]);
    assert_eq!(found[0].parameters["side"], "client");
    assert_eq!(found[0].parameters["timeout_s"], 20.0);
}

#[test]
fn unreachable_peers_are_grouped_by_host() {
    let mut endings = Vec::new();
    for i in 0..3u64 {
        let mut e = ending(
            i,
            host(7, 40_000 + i as u16),
            host(1, 443),
            T0,
            T0 + 500.0,
            How::Open,
            None,
            12.0,
        );
        e.rare_mut().unreachable = Some((Side::Client, (12.0 - 0.1 * i as f64) as f32, 6, 11.0));
        endings.push(e);
    }
    let mut other = ending(
        5,
        host(8, 40_000),
        host(1, 443),
        T0,
        T0 + 90.0,
        How::Rst,
        Some(Side::Server),
        15.0,
    );
    other.rare_mut().unreachable = Some((Side::Client, 15.0, 3, 14.0));
    endings.push(other);
    let found = detect(endings);
    assert_eq!(ids(&found), ["peer_unreachable", "peer_unreachable"]);
    assert_eq!(found[0].connections, [0, 1, 2]);
    assert_eq!(found[0].parameters["side"], "client");
    assert_eq!(found[0].parameters["since"], T0 + 488.0);
    assert_eq!(found[0].confidence, 0.95);
    assert_eq!(found[1].connections, [5]);
}

#[test]
fn two_legs_of_one_session_are_paired_and_the_closer_named() {
    let proxy = host(5, 8080);
    let upstream = host(6, 9000);
    let mut front = ending(
        0,
        host(20, 40_000),
        proxy,
        T0,
        T0 + 63.0,
        How::Fin,
        Some(Side::Server),
        60.0,
    );
    let mut back = ending(
        1,
        host(5, 51_000),
        upstream,
        T0 + 0.002,
        T0 + 63.0002,
        How::Fin,
        Some(Side::Client),
        60.0,
    );
    front.fingerprint = Fingerprint {
        key: Some(42),
        frames: 7,
        frame_count: 4,
        masked: 2,
        varied_masks: true,
    };
    back.fingerprint = front.fingerprint;
    let found = detect(vec![front, back]);
    assert_eq!(ids(&found), ["proxy_legs"]);
    let p = &found[0].parameters;
    assert_eq!(p["legs"], serde_json::json!([0, 1]));
    assert_eq!(p["proxy"], "10.0.0.5:8080");
    assert!(
        found[0].evidence.contains(
            "the proxy at 10.0.0.5:8080 closed both legs 0.20 ms apart after 60.0 s idle"
        ),
        "{}",
        found[0].evidence
    );
}

#[test]
fn live_announces_each_pattern_once_and_mass_disconnects_after_the_reconnect_window() {
    let mut engine = FindingsEngine::new();
    for i in 0..5u64 {
        let idle = 3.0 * 1.5f64.powi(i as i32);
        let e = ending(
            i,
            host(20 + i as u8, 40_000),
            host(1, 443),
            T0,
            T0 + 100.0 + 0.001 * i as f64,
            How::Rst,
            Some(Side::Server),
            idle,
        );
        engine.endings.push(e);
    }
    engine.changed = true;
    let early = engine.poll(T0 + 101.0);
    assert!(early.is_empty(), "clients may still come back: {early:#?}");
    engine.changed = true;
    let now = T0 + 100.0 + burst::RECONNECT_WINDOW_S + 1.0;
    assert_eq!(ids(&engine.poll(now)), ["mass_disconnect"]);
    engine.changed = true;
    assert!(engine.poll(now + 5.0).is_empty(), "announced once");
    assert_eq!(ids(&engine.finish()), ["mass_disconnect"]);
}

#[test]
fn endings_past_the_cap_are_counted_not_kept() {
    let mut engine = FindingsEngine::new();
    let one = ending(
        0,
        host(1, 1),
        host(2, 2),
        T0,
        T0 + 1.0,
        How::Fin,
        Some(Side::Server),
        0.0,
    );
    engine.endings = std::iter::repeat_n(one, MAX_ENDINGS).collect();
    let report = crate::record::ConnectionRecord { ..sample_record() };
    engine.connection(&report);
    assert_eq!(engine.skipped(), 1);
    assert_eq!(engine.endings.len(), MAX_ENDINGS);
}

fn sample_record() -> crate::record::ConnectionRecord {
    use crate::record::*;
    ConnectionRecord {
        id: 9,
        client: Address {
            ip: "10.0.0.9".into(),
            port: 1,
        },
        server: Address {
            ip: "10.0.0.1".into(),
            port: 443,
        },
        first_seen: T0,
        last_seen: T0 + 1.0,
        handshake: None,
        frames: PerSide::default(),
        message_counts: PerSide::default(),
        payload_bytes: PerSide::default(),
        messages: None,
        frames_detail: None,
        close: CloseRecord {
            code: None,
            reason: None,
            initiator: None,
            outcome: "open",
            meaning: None,
            reply_code: None,
            time: None,
            tcp_end: None,
            tcp_end_from: None,
            tcp_end_time: None,
            tls_end: None,
            idle_before_end: None,
            last_message: None,
            unreachable: None,
            summary: String::new(),
        },
        ping: PingRecord::default(),
        app: None,
        tcp: TcpRecord::default(),
        deflate_recovery: None,
        tls: None,
        http2: None,
        http2_connection: None,
        timing: TimingRecord::default(),
        fingerprint: Fingerprint::default(),
        diagnostics: Vec::new(),
        diagnostic_counts: Default::default(),
    }
}

#[test]
fn a_fixed_lifetime_is_not_a_shutdown_even_when_the_closes_are_close_together() {
    // Six chatty connections opened 0.3 s apart, each closed by the server 3 s later: their
    // closes fall within the shutdown window, but their ages are far tighter.
    let endings: Vec<Ending> = (0..6u64)
        .map(|i| {
            let start = T0 + 0.3 * i as f64;
            let end = start + 3.0 + 0.001 * (i % 2) as f64;
            let mut e = ending(
                i,
                host(20 + i as u8, 40_000),
                host(1, 443),
                start,
                end,
                How::Close {
                    code: 1000,
                    answered: true,
                },
                Some(Side::Server),
                0.05 + 0.03 * i as f64,
            );
            e.longest_silence = Some(0.2).into();
            e
        })
        .collect();
    let found = detect(endings);
    assert_eq!(ids(&found), ["max_lifetime"]);
    assert!((found[0].parameters["lifetime_s"].as_f64().unwrap() - 3.0).abs() < 0.01);
}

#[test]
fn look_alike_connections_to_one_server_are_not_proxy_legs() {
    // Same key and frames (a client with a fixed key and a fixed mask), but both to the same
    // server, or the second opened after the first ended: not one session seen twice.
    let fp = Fingerprint {
        key: Some(7),
        frames: 9,
        frame_count: 3,
        masked: 2,
        varied_masks: false,
    };
    let mut a = ending(
        0,
        host(20, 40_000),
        host(1, 443),
        T0,
        T0 + 5.0,
        How::Fin,
        Some(Side::Server),
        1.0,
    );
    let mut b = ending(
        1,
        host(20, 40_002),
        host(1, 443),
        T0 + 0.01,
        T0 + 5.0,
        How::Fin,
        Some(Side::Server),
        1.0,
    );
    a.fingerprint = fp;
    b.fingerprint = fp;
    assert!(detect(vec![a.clone(), b.clone()]).is_empty());
    let mut later = b.clone();
    later.server = host(2, 9000);
    later.first_seen = T0 + 20.0;
    later.start = T0 + 20.0;
    later.end = T0 + 25.0;
    assert!(detect(vec![a.clone(), later]).is_empty(), "a reconnection");
    // Frames alone, with one fixed mask: not enough.
    let mut c = b;
    c.server = host(2, 9000);
    c.fingerprint.key = None;
    a.fingerprint.key = None;
    assert!(detect(vec![a, c]).is_empty());
}

#[test]
fn a_sub_protocol_close_code_is_explained() {
    // graphql-transport-ws servers close with 4408 when connection_init does not come in time:
    // at the same age for every connection.
    let endings: Vec<Ending> = (0..4u64)
        .map(|i| {
            let start = T0 + 40.0 * i as f64;
            let mut e = ending(
                i,
                host(20 + i as u8, 40_000),
                host(1, 443),
                start,
                start + 3.0 + 0.001 * i as f64,
                How::Close {
                    code: 4408,
                    answered: true,
                },
                Some(Side::Server),
                0.2,
            );
            e.rare_mut().protocol_meaning =
                super::ending::subprotocol_close_meaning("graphql-transport-ws", 4408);
            e
        })
        .collect();
    let found = detect(endings);
    assert_eq!(ids(&found), ["max_lifetime"]);
    assert!(
        found[0]
            .evidence
            .contains("connection initialisation timeout"),
        "{}",
        found[0].evidence
    );
}

#[test]
fn a_shutdown_closes_most_of_the_open_connections_within_a_second() {
    assert_eq!(burst::SHUTDOWN_WINDOW_S, 1.0);
    assert_eq!(burst::MIN_SHUTDOWN_SHARE, 0.5);
    let run = |closed: usize, others_open: usize, step: f64| {
        let mut endings: Vec<Ending> = (0..closed as u64)
            .map(|i| {
                let start = T0 + 11.0 * i as f64;
                let end = T0 + 1000.0 + step * i as f64;
                ending(
                    i,
                    host(20 + i as u8, 40_000),
                    host(1, 443),
                    start,
                    end,
                    How::Close {
                        code: 1001,
                        answered: true,
                    },
                    Some(Side::Server),
                    1.0 + 0.7 * i as f64,
                )
            })
            .collect();
        for i in 0..others_open {
            let id = 100 + i as u64;
            endings.push(ending(
                id,
                host(90, 41_000 + i as u16),
                host(1, 443),
                T0 + 3.0 * i as f64,
                T0 + 5000.0,
                How::Open,
                None,
                1.0,
            ));
        }
        ids(&detect(endings))
    };
    assert_eq!(run(6, 6, 0.001), ["graceful_shutdown"], "6 of 12");
    assert!(run(6, 7, 0.001).is_empty(), "6 of 13: under half");
    assert!(run(6, 0, 0.6).is_empty(), "at most two within any second");
}
