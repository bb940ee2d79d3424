//! Findings across connections on real captures: each recorded cause (captures/record/
//! findings_scenarios.py, truth in NAME.truth.json's `incident`) is found with the parameters the
//! configuration and the endpoints' logs say, alone and mixed with the others in one run; the
//! captures where nothing went wrong give no pattern; `--fail-on`, jsonl and the table show them.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::Value;

use crate::util::*;

fn truth(stem: &str) -> Value {
    let path = captures_dir().join(format!("{stem}.truth.json"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn capture(stem: &str) -> PathBuf {
    captures_dir().join(format!("{stem}.pcap"))
}

/// The recorded causes: (capture stem, incident).
fn incidents() -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(captures_dir()).unwrap() {
        let path = entry.unwrap().path();
        let Some(stem) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".truth.json"))
        else {
            continue;
        };
        let t = truth(stem);
        if !t["incident"].is_null() {
            out.push((stem.to_string(), t["incident"].clone()));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn findings(report: &Value) -> &Vec<Value> {
    report["findings"].as_array().expect("findings")
}

fn ids(report: &Value) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for f in findings(report) {
        *m.entry(f["id"].as_str().unwrap().to_string()).or_insert(0) += 1;
    }
    m
}

fn param(f: &Value, name: &str) -> f64 {
    f["parameters"][name]
        .as_f64()
        .unwrap_or_else(|| panic!("{} has no {name}: {f:#}", f["id"]))
}

fn near(got: f64, want: f64, relative: f64) -> bool {
    (got - want).abs() <= relative * want.abs()
}

/// The connection of `report` with this client port.
fn conn_by_client_port(report: &Value, port: u64) -> &Value {
    report["connections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["client"]["port"].as_u64() == Some(port))
        .unwrap_or_else(|| panic!("no connection from port {port}"))
}

/// The request paths of the finding's connections; an encrypted connection's (no key log) from
/// the truth, by its client port.
fn paths_of(stem: &str, report: &Value, f: &Value) -> Vec<String> {
    let truth = truth(stem);
    let logged_path = |port: &Value| {
        truth["connections"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["client"]["port"] == *port)
            .and_then(|t| t["handshake"]["path"].as_str())
            .unwrap_or("")
            .to_string()
    };
    f["connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|id| {
            let c = report["connections"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["id"] == *id)
                .unwrap();
            match c["handshake"]["path"].as_str() {
                Some(path) => path.to_string(),
                None => logged_path(&c["client"]["port"]),
            }
        })
        .collect()
}

/// Checks the finding of one cause in `report` against its incident; `alone`: the report is of
/// that capture only (connection ids and paths are then checked too).
fn check_cause(stem: &str, incident: &Value, report: &Value, alone: bool) {
    let cause = incident["cause"].as_str().unwrap();
    let expected = &incident["expected"];
    // Heartbeat timeouts of different kinds of heartbeat are findings of their own.
    let heartbeat = expected["heartbeat"]
        .as_str()
        .unwrap_or("websocket ping/pong");
    // Analysed together, two captures of one cause are told apart by their timeouts.
    let of_this_capture = |f: &Value| {
        alone
            || cause != "idle_timeout"
            || near(
                param(f, "timeout_s"),
                expected["timeout_s"].as_f64().unwrap(),
                0.05,
            )
    };
    let of_cause: Vec<&Value> = findings(report)
        .iter()
        .filter(|f| f["id"] == cause && of_this_capture(f))
        .filter(|f| cause != "heartbeat_timeout" || f["parameters"]["heartbeat"] == heartbeat)
        .collect();
    assert_eq!(
        of_cause.len(),
        1,
        "{stem}: {cause}: {:#?}",
        findings(report)
    );
    let f = of_cause[0];
    let n = f["connections"].as_array().unwrap().len() as u64;
    assert_eq!(
        Some(n),
        expected["connections"].as_u64(),
        "{stem}: connections {f:#}"
    );
    let c = f["confidence"].as_f64().unwrap();
    assert!((0.5..=1.0).contains(&c), "{stem}: confidence {c}");
    match cause {
        "idle_timeout" => {
            let want = expected["timeout_s"].as_f64().unwrap();
            assert!(
                near(param(f, "timeout_s"), want, 0.05),
                "{stem}: timeout {f:#}"
            );
            if alone {
                // Both legs of the silent sessions (the pinging ones survived), and nginx's
                // error log names each of them.
                let timed_out: Vec<&str> = incident["nginx"]["timed_out"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|p| p.as_str().unwrap())
                    .collect();
                assert_eq!(timed_out.len(), 5);
                for path in paths_of(stem, report, f) {
                    assert!(timed_out.contains(&path.as_str()), "{stem}: {path} cut?");
                }
                // Both legs captured (ws://): the proxy is named; the TLS capture has the
                // client's leg only.
                if expected["proxy_legs"].as_u64() > Some(0) {
                    assert!(
                        f["evidence"]
                            .as_str()
                            .unwrap()
                            .contains("the proxy at 127.0.0.1:25080 closed both legs"),
                        "{f:#}"
                    );
                }
            }
            // Together, the totals are checked by the caller.
            if alone {
                let legs = findings(report)
                    .iter()
                    .filter(|f| f["id"] == "proxy_legs")
                    .count() as u64;
                assert_eq!(Some(legs), expected["proxy_legs"].as_u64(), "{stem}");
            }
        }
        "max_lifetime" => {
            let want = expected["lifetime_s"].as_f64().unwrap();
            assert!(
                near(param(f, "lifetime_s"), want, 0.05),
                "{stem}: lifetime {f:#}"
            );
        }
        "server_restart" | "graceful_shutdown" => {
            let want = expected["time"].as_f64().unwrap();
            let got = param(f, "time");
            assert!(
                (got - want).abs() <= 0.05,
                "{stem}: {cause} at {got}, truth {want}"
            );
            assert_eq!(f["parameters"]["server"], expected["server"], "{stem}");
            if cause == "server_restart" {
                assert_eq!(
                    f["parameters"]["reconnected"], expected["reconnected"],
                    "{stem}"
                );
            } else {
                assert_eq!(f["parameters"]["code"], expected["code"], "{stem}");
                let unanswered = f["parameters"]["unanswered"].as_array().unwrap();
                assert_eq!(
                    Some(unanswered.len() as u64),
                    expected["unanswered"].as_u64()
                );
                if alone {
                    // Exactly the clients whose event loop hung.
                    for hung in incident["hung_clients"].as_array().unwrap() {
                        let port: u64 = hung
                            .as_str()
                            .unwrap()
                            .rsplit(':')
                            .next()
                            .unwrap()
                            .parse()
                            .unwrap();
                        let id = &conn_by_client_port(report, port)["id"];
                        assert!(unanswered.contains(id), "{stem}: {hung} not unanswered");
                    }
                }
            }
        }
        "heartbeat_timeout" => {
            let want = expected["timeout_s"].as_f64().unwrap();
            assert!(
                near(param(f, "timeout_s"), want, 0.05),
                "{stem}: timeout {f:#}"
            );
            assert_eq!(f["parameters"]["side"], expected["side"], "{stem}");
            let interval = expected["ping_interval_s"].as_f64().unwrap();
            assert!(near(param(f, "ping_interval_s"), interval, 0.05), "{f:#}");
            if alone {
                let prefix = incident["path_prefix"].as_str().unwrap_or("/stuck/");
                for path in paths_of(stem, report, f) {
                    assert!(path.starts_with(prefix), "{stem}: {path}");
                }
            }
        }
        "peer_unreachable" => {
            assert_eq!(f["parameters"]["side"], expected["side"], "{stem}");
            let want = expected["since"].as_f64().unwrap();
            let got = param(f, "since");
            assert!(
                (got - want).abs() <= 0.05,
                "{stem}: since {got}, the server's last message {want}"
            );
            assert_eq!(f["parameters"]["host"], expected["host"]);
            if alone {
                for conn in report["connections"].as_array().unwrap() {
                    assert_eq!(conn["close"]["outcome"], "open");
                    assert_eq!(conn["close"]["unreachable"]["side"], "client");
                    let summary = conn["close"]["summary"].as_str().unwrap();
                    assert!(
                        summary.starts_with("client unreachable since "),
                        "{summary}"
                    );
                    assert!(!summary.contains("still open"), "{summary}");
                    assert!(
                        conn["close"]["unreachable"]["retransmissions"]
                            .as_u64()
                            .unwrap()
                            >= 3
                    );
                }
            }
        }
        other => panic!("{stem}: no check for {other}"),
    }
}

/// The ids a capture of this cause may show: its own, and proxy_legs where both legs of a
/// proxied session were captured.
fn allowed(cause: &str) -> Vec<&str> {
    match cause {
        "idle_timeout" => vec!["idle_timeout", "proxy_legs"],
        c => vec![c],
    }
}

#[test]
fn each_recorded_cause_is_found_with_the_parameters_of_its_truth() {
    let all = incidents();
    assert!(all.len() >= 6, "only {} findings captures", all.len());
    for (stem, incident) in &all {
        let report = report_of(&capture(stem), &[]);
        check_cause(stem, incident, &report, true);
        let cause = incident["cause"].as_str().unwrap();
        for id in ids(&report).keys() {
            assert!(allowed(cause).contains(&id.as_str()), "{stem}: {id}");
        }
    }
}

#[test]
fn every_cause_is_found_when_the_captures_are_analysed_together() {
    let all = incidents();
    let files: Vec<PathBuf> = all.iter().map(|(stem, _)| capture(stem)).collect();
    let out = wsprobe()
        .args(["analyze", "--format", "json"])
        .args(&files)
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut want: BTreeMap<String, usize> = BTreeMap::new();
    for (stem, incident) in &all {
        check_cause(stem, incident, &report, false);
        *want
            .entry(incident["cause"].as_str().unwrap().to_string())
            .or_insert(0) += 1;
        if let Some(legs) = incident["expected"]["proxy_legs"].as_u64() {
            *want.entry("proxy_legs".into()).or_insert(0) += legs as usize;
        }
    }
    assert_eq!(ids(&report), want, "{:#?}", findings(&report));
    assert_eq!(
        report["summary"]["findings"].as_object().unwrap().len(),
        want.len()
    );
}

#[test]
fn captures_where_nothing_went_wrong_show_no_pattern() {
    let mut checked = 0;
    for entry in std::fs::read_dir(captures_dir()).unwrap() {
        let path = entry.unwrap().path();
        let Some(stem) = path.file_name().and_then(|n| n.to_str()).and_then(|n| {
            n.strip_suffix(".pcap")
                .or_else(|| n.strip_suffix(".pcapng"))
        }) else {
            continue;
        };
        let truth_path = captures_dir().join(format!("{stem}.truth.json"));
        // Derived captures (wss-dsb.pcapng) have no truth of their own.
        if !truth_path.exists() || !truth(stem)["incident"].is_null() {
            continue;
        }
        // wss captures are read with their key log.
        let keys = captures_dir().join(format!("{stem}.keys"));
        let keys = keys.to_string_lossy().into_owned();
        let args: &[&str] = if std::path::Path::new(&keys).exists() {
            &["--keylog", &keys]
        } else {
            &[]
        };
        let report = report_of(&path, args);
        assert!(
            findings(&report).is_empty(),
            "{stem}: {:#?}",
            findings(&report)
        );
        checked += 1;
    }
    assert!(checked >= 12, "{checked}");
}

#[test]
fn fail_on_takes_finding_ids() {
    wsprobe()
        .args(["analyze", "--fail-on", "server_restart"])
        .arg(capture("restart-reconnect"))
        .assert()
        .code(1);
    wsprobe()
        .args(["analyze", "--fail-on", "idle_timeout,heartbeat_timeout"])
        .arg(capture("restart-reconnect"))
        .arg(captures_dir().join("demo.pcap"))
        .assert()
        .code(0);
    wsprobe()
        .args(["analyze", "--fail-on", "no_such_thing"])
        .arg(capture("restart-reconnect"))
        .assert()
        .code(2)
        .stderr(predicates::str::contains("finding id"));
}

#[test]
fn jsonl_ends_with_the_findings_then_the_summary() {
    let out = wsprobe()
        .args(["analyze", "--format", "jsonl"])
        .arg(capture("graceful-shutdown"))
        .output()
        .unwrap();
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let n = lines.len();
    assert_eq!(lines[n - 1]["event"], "summary");
    assert_eq!(lines[n - 1]["summary"]["findings"]["graceful_shutdown"], 1);
    assert_eq!(lines[n - 2]["event"], "finding");
    assert_eq!(lines[n - 2]["final"], true);
    assert_eq!(lines[n - 2]["finding"]["id"], "graceful_shutdown");
    assert_eq!(lines[n - 2]["time"], lines[n - 2]["finding"]["time"]);
    let first_finding = lines.iter().position(|l| l["event"] == "finding").unwrap();
    assert!(
        lines[first_finding..n - 1]
            .iter()
            .all(|l| l["event"] == "finding"),
        "findings come after every connection"
    );
}

#[test]
fn the_table_says_why_connections_ended_before_the_diagnostics() {
    let out = wsprobe()
        .arg("analyze")
        .arg(capture("heartbeat-timeout"))
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let why = text.find("Why connections ended").expect("section");
    let diagnostics = text.find("\nfinding  diagnostic").expect("diagnostics");
    assert!(why < diagnostics);
    let section = &text[why..diagnostics];
    assert!(section.contains("heartbeat_timeout"), "{section}");
    assert!(section.contains("keepalive"), "{section}");
    assert!(section.contains("#0 #2 #3"), "{section}");
    // No section when there is nothing to say.
    let out = wsprobe()
        .arg("analyze")
        .arg(captures_dir().join("demo.pcap"))
        .output()
        .unwrap();
    assert!(
        !String::from_utf8(out.stdout)
            .unwrap()
            .contains("Why connections ended")
    );
}

#[test]
fn timing_facts_are_in_every_record() {
    let report = report_of(&capture("heartbeat-timeout"), &[]);
    for c in report["connections"].as_array().unwrap() {
        let t = &c["timing"];
        assert!(t["end_time"].as_f64().unwrap() >= c["first_seen"].as_f64().unwrap());
        let path = c["handshake"]["path"].as_str().unwrap();
        if path.starts_with("/stuck/") {
            // The server's Close began the end; its ping had waited ~1 s for a pong.
            assert_eq!(
                (t["ended_by"].as_str(), t["ended_from"].as_str()),
                (Some("close"), Some("server"))
            );
            assert_eq!(t["unanswered_pings_at_end"]["server"], 1);
            let waited = t["end_time"].as_f64().unwrap()
                - t["first_unanswered_ping"]["server"].as_f64().unwrap();
            assert!(near(waited, 1.0, 0.05), "{waited}");
            // The median of two intervals: one scheduling hiccup of the event loop shows.
            assert!(near(
                t["ping_interval"]["server"].as_f64().unwrap(),
                0.5,
                0.1
            ));
            assert_eq!(t["last_frame"]["server"]["opcode"], "close");
            assert!(near(
                t["since_last_ping"]["server"].as_f64().unwrap(),
                1.0,
                0.05
            ));
        }
        let d = &c["tcp"]["delivery"];
        for side in ["client", "server"] {
            assert_eq!(d[side]["retransmissions_near_end"], 0, "loopback: no loss");
        }
    }
    // On the cut path the server's data went unacknowledged and was retransmitted.
    let report = report_of(&capture("peer-unreachable"), &[]);
    for c in report["connections"].as_array().unwrap() {
        let s = &c["tcp"]["delivery"]["server"];
        assert!(s["unacked_bytes"].as_u64().unwrap() > 0);
        assert!(s["retransmissions_near_end"].as_u64().unwrap() >= 3);
        assert_eq!(c["timing"]["ended_by"], "none");
        assert!(c["timing"]["idle_by_side"]["client"].as_f64().unwrap() > 3.0);
    }
}

#[test]
fn application_heartbeat_timeouts_are_in_the_endings_and_explain_them() {
    // One connection each: the protocol's heartbeat timeout is recorded with who gave up, who
    // went silent and how long it waited; alone it is the connection's own cause, no pattern.
    let cases = [
        // (capture, kind, silent, ended by, configured limit in ms)
        (
            "app-socketio4-ping-timeout",
            "ping_unanswered",
            "client",
            "server",
            200.0,
        ),
        (
            "app-socketio2-ping-timeout",
            "beats_stopped",
            "client",
            "server",
            500.0,
        ),
        (
            "app-mqtt-keepalive",
            "beats_stopped",
            "client",
            "server",
            1500.0,
        ),
    ];
    for (stem, kind, silent, ended_by, limit) in cases {
        let report = report_of(&capture(stem), &[]);
        assert!(
            findings(&report).is_empty(),
            "{stem}: {:#?}",
            findings(&report)
        );
        let c = &report["connections"][0];
        let t = &c["app"]["session"]["heartbeat"]["timed_out"];
        assert_eq!(t["kind"], kind, "{stem}: {t}");
        assert_eq!(t["silent"], silent, "{stem}");
        assert_eq!(t["ended_by"], ended_by, "{stem}");
        assert_eq!(t["limit_ms"], limit, "{stem}");
        let waited = t["waited_ms"].as_f64().unwrap();
        assert!(
            waited >= 0.9 * limit && waited <= 1.3 * limit,
            "{stem}: waited {waited} ms, limit {limit}"
        );
        // The wait ends where the connection's end began.
        let since = t["since"].as_f64().unwrap();
        let end = c["timing"]["end_time"].as_f64().unwrap();
        assert!(((end - since) * 1000.0 - waited).abs() < 1.0, "{stem}");
        assert_eq!(c["timing"]["ended_from"], ended_by, "{stem}");
    }
    // The same three together: three different timeouts are no pattern either.
    let files: Vec<PathBuf> = cases.iter().map(|c| capture(c.0)).collect();
    let out = wsprobe()
        .args(["analyze", "--format", "json"])
        .args(&files)
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(findings(&report).is_empty(), "{:#?}", findings(&report));
}

#[test]
fn engine_io_ping_timeouts_across_connections_are_one_heartbeat_timeout() {
    let stem = "app-socketio4-ping-timeouts";
    let report = report_of(&capture(stem), &[]);
    let f = findings(&report)
        .iter()
        .find(|f| f["id"] == "heartbeat_timeout")
        .expect("heartbeat_timeout");
    assert_eq!(f["parameters"]["heartbeat"], "engine.io ping/pong");
    assert_eq!(f["parameters"]["pinging_side"], "server");
    assert_eq!(f["parameters"]["ended_by"], "server");
    assert_eq!(f["parameters"]["configured_timeout_s"], 0.2);
    let evidence = f["evidence"].as_str().unwrap();
    assert!(
        evidence.contains("matching its configured limit of 0.20 s"),
        "{evidence}"
    );
    assert!(
        f["explanation"].as_str().unwrap().contains("pingTimeout"),
        "{f:#}"
    );
    // The four the server's socket.io reported as "ping timeout", exactly.
    let truth = truth(stem);
    let mut stuck: Vec<u64> = truth["connections"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| {
            c["app"].as_array().unwrap().iter().any(|e| {
                e["role"] == "server" && e["what"] == "disconnect" && e["reason"] == "ping timeout"
            })
        })
        .map(|c| {
            let port = c["client"]["port"].as_u64().unwrap();
            conn_by_client_port(&report, port)["id"].as_u64().unwrap()
        })
        .collect();
    stuck.sort_unstable();
    let ids: Vec<u64> = f["connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    assert_eq!(ids, stuck);
}
