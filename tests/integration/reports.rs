//! The reports that tools ingest: HAR (schema, Chrome's importer rules, payloads equal to the
//! JSON report's), the `--out-dir` dataset tables (their published schemas and SQL, DuckDB
//! reading them, two runs into one directory), the HTML report's embedded data, and the
//! redaction of handshake credentials in every one of them.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use base64::Engine;
use serde_json::{Value, json};

use crate::util::*;

fn run(args: &[&str]) -> std::process::Output {
    let out = wsprobe()
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "wsprobe {args:?}: exit {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn json_of(args: &[&str]) -> Value {
    serde_json::from_slice(&run(args).stdout).expect("JSON output")
}

fn every_capture() -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(captures_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "pcap" || e == "pcapng"))
        .map(|p| format!("captures/{}", p.file_name().unwrap().to_string_lossy()))
        .collect();
    files.sort();
    files
}

fn fresh_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wsprobe-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

// ---------------------------------------------------------------- HAR

fn har_validator() -> jsonschema::Validator {
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/har/har-1.2.schema.json"
        ))
        .unwrap(),
    )
    .unwrap();
    jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .unwrap()
}

/// What Chrome's HAR importer (devtools-frontend `front_end/models/har/Importer.ts`) needs to
/// show an entry's WebSocket messages: `log.pages` to walk, `_resourceType`, and on every
/// message `type` (a WebSocketFrameType), `time`, `opcode` and `data`.
fn check_chrome_importer_rules(har: &Value) {
    let log = &har["log"];
    assert!(log["pages"].is_array(), "log.pages must be present");
    for e in log["entries"].as_array().unwrap() {
        assert_eq!(e["_resourceType"], "websocket");
        for m in e["_webSocketMessages"]
            .as_array()
            .expect("_webSocketMessages")
        {
            assert!(m["type"] == "send" || m["type"] == "receive", "type: {m}");
            assert!(m["time"].is_f64() || m["time"].is_u64(), "time: {m}");
            assert!(m["opcode"].is_i64() || m["opcode"].is_u64(), "opcode: {m}");
            assert!(m["data"].is_string(), "data: {m}");
        }
    }
}

#[test]
fn har_of_every_capture_is_valid_har_1_2_that_chrome_imports() {
    let validator = har_validator();
    let mut files = every_capture();
    if let Some(public) = public_captures_dir() {
        for e in std::fs::read_dir(public).unwrap() {
            let p = e.unwrap().path();
            if p.extension()
                .is_some_and(|e| e == "pcap" || e == "pcapng" || e == "dump")
            {
                files.push(p.to_string_lossy().into_owned());
            }
        }
    }
    for file in &files {
        for extra in [&[][..], &["--payload", "preview"]] {
            let mut args = vec!["analyze", "--format", "har", file.as_str()];
            args.extend_from_slice(extra);
            let har = json_of(&args);
            let errors: Vec<String> = validator
                .iter_errors(&har)
                .map(|e| format!("{e} at {}", e.instance_path()))
                .collect();
            assert!(errors.is_empty(), "{file}: {errors:#?}");
            check_chrome_importer_rules(&har);
            assert_eq!(har["log"]["version"], "1.2");
            let json = json_of(&["analyze", "--format", "json", file.as_str()]);
            assert_eq!(
                har["log"]["entries"].as_array().unwrap().len(),
                json["connections"].as_array().unwrap().len(),
                "{file}: one entry per connection"
            );
        }
    }
}

/// The payload a HAR message carries for a JSON report message (close frames: code + reason).
fn expected_har_data(m: &Value) -> String {
    let b64 = base64::engine::general_purpose::STANDARD;
    let bytes = |m: &Value| -> Vec<u8> {
        match (m["text"].as_str(), m["base64"].as_str()) {
            (Some(t), _) => t.as_bytes().to_vec(),
            (None, Some(b)) => b64.decode(b).unwrap(),
            _ => Vec::new(),
        }
    };
    match m["opcode"].as_str().unwrap() {
        "text" => m["text"]
            .as_str()
            .or(m["base64"].as_str())
            .unwrap_or("")
            .to_string(),
        "close" => {
            let mut p = Vec::new();
            if let Some(code) = m["close_code"].as_u64().filter(|&c| c != 1005) {
                p.extend_from_slice(&(code as u16).to_be_bytes());
            }
            p.extend(bytes(m));
            b64.encode(p)
        }
        _ => b64.encode(bytes(m)),
    }
}

#[test]
fn har_messages_are_the_json_reports_messages() {
    for file in every_capture() {
        let har = json_of(&["analyze", "--format", "har", &file]);
        let json = json_of(&[
            "analyze",
            "--format",
            "json",
            "--messages",
            "--payload",
            "full",
            &file,
        ]);
        let by_id: HashMap<u64, &Value> = json["connections"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| (c["id"].as_u64().unwrap(), c))
            .collect();
        for e in har["log"]["entries"].as_array().unwrap() {
            let c = by_id[&e["_wsprobe"]["id"].as_u64().unwrap()];
            let want = c["messages"].as_array().unwrap();
            let got = e["_webSocketMessages"].as_array().unwrap();
            assert_eq!(got.len(), want.len(), "{file} #{}", c["id"]);
            for (g, w) in got.iter().zip(want) {
                let from = if g["type"] == "send" {
                    "client"
                } else {
                    "server"
                };
                assert_eq!(from, w["from"], "{file}: {g} vs {w}");
                assert_eq!(g["time"], w["time"], "{file}");
                assert_eq!(g["data"], expected_har_data(w), "{file}: {g} vs {w}");
                let opcode = match w["opcode"].as_str().unwrap() {
                    "text" => 1,
                    "binary" => 2,
                    "close" => 8,
                    "ping" => 9,
                    "pong" => 10,
                    other => other.trim_start_matches("reserved-").parse().unwrap(),
                };
                assert_eq!(g["opcode"], opcode);
            }
            // The close analysis travels with the entry.
            assert_eq!(e["_wsprobe"]["close"], c["close"]);
            assert_eq!(e["_wsprobe"]["diagnostics"], c["diagnostics"]);
            if let Some(code) = c["close"]["code"].as_u64() {
                assert_eq!(e["_webSocketClose"]["code"], code);
                assert_eq!(
                    e["_webSocketClose"]["inferred"],
                    c["close"]["outcome"] == "abnormal"
                );
            }
        }
    }
}

#[test]
fn har_entries_carry_the_handshake_and_refused_upgrades() {
    let har = json_of(&["analyze", "--format", "har", "captures/refused.pcap"]);
    let entries = har["log"]["entries"].as_array().unwrap();
    let refused: Vec<&Value> = entries
        .iter()
        .filter(|e| e["response"]["status"] != 101)
        .collect();
    assert!(!refused.is_empty(), "refused.pcap has refused upgrades");
    for e in refused {
        assert!(e["_webSocketMessages"].as_array().unwrap().is_empty());
        assert_eq!(e["_wsprobe"]["close"]["outcome"], "not_websocket");
        assert!(e["request"]["url"].as_str().unwrap().starts_with("ws://"));
    }
    let ok = json_of(&["analyze", "--format", "har", "captures/demo.pcap"]);
    let e = &ok["log"]["entries"][0];
    assert_eq!(e["request"]["method"], "GET");
    assert_eq!(e["response"]["status"], 101);
    assert_eq!(e["response"]["statusText"], "Switching Protocols");
    let names: Vec<&str> = e["request"]["headers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["name"].as_str().unwrap())
        .collect();
    assert!(
        names
            .iter()
            .any(|n| n.eq_ignore_ascii_case("sec-websocket-key")),
        "{names:?}"
    );
    assert!(e["timings"]["wait"].as_f64().unwrap() >= 0.0);
    assert!(e["startedDateTime"].as_str().unwrap().ends_with('Z'));
}

// ---------------------------------------------------------------- redaction

const SECRETS: &[&str] = &[
    "s3cr3t-bearer-7f3a",
    "c00kie-val-91b2",
    "srv-c00kie-55aa",
    "qu3ry-t0ken-1234",
    "pr0t0-t0ken-abcd",
    "ap1-k3y-0000",
];

/// A WebSocket conversation whose handshake carries every kind of credential.
fn credential_capture() -> PathBuf {
    let mut c = Conv::new("10.1.1.1:40000", "10.2.2.2:8080");
    c.tcp_open();
    c.send(
        true,
        &upgrade_request(
            "/live?room=7&access_token=qu3ry-t0ken-1234",
            "Authorization: Bearer s3cr3t-bearer-7f3a\r\nCookie: session=c00kie-val-91b2; theme=dark\r\nX-Api-Key: ap1-k3y-0000\r\nSec-WebSocket-Protocol: graphql-transport-ws, authorization.bearer.pr0t0-t0ken-abcd\r\n",
        ),
    );
    c.send(
        false,
        &upgrade_response(
            "Set-Cookie: sid=srv-c00kie-55aa; Path=/; HttpOnly\r\nSec-WebSocket-Protocol: graphql-transport-ws\r\n",
        ),
    );
    c.send(true, &client_frame(true, 1, b"hello"));
    c.send(false, &server_frame(true, 1, b"hello"));
    c.send(true, &client_frame(true, 8, &close_payload(1000, "bye")));
    c.send(false, &server_frame(true, 8, &close_payload(1000, "bye")));
    c.fin(false).fin(true);
    temp_file(&pcap(&c, Link::Ethernet), "pcap")
}

/// Every byte wsprobe writes for `file` in each format, and in the tables (gunzipped).
fn everything_written(file: &Path, extra: &[&str]) -> String {
    let f = file.to_str().unwrap();
    let mut all = String::new();
    for format in ["json", "jsonl", "table", "har"] {
        let mut args = vec!["analyze", "--format", format, "--messages", f];
        args.extend_from_slice(extra);
        all.push_str(&String::from_utf8_lossy(&run(&args).stdout));
    }
    let mut args = vec!["analyze", "--format", "html", f];
    args.extend_from_slice(extra);
    let page = String::from_utf8(run(&args).stdout).unwrap();
    all.push_str(&serde_json::to_string(&html_report_data(&page)).unwrap());
    all.push_str(&page);
    let dir = fresh_dir("redact-tables");
    let d = dir.to_str().unwrap();
    let mut args = vec![
        "analyze",
        "--format",
        "json",
        "--messages",
        "--out-dir",
        d,
        "--compress",
        f,
    ];
    args.extend_from_slice(extra);
    run(&args);
    for path in files_under(&dir) {
        let bytes = std::fs::read(&path).unwrap();
        if path.to_string_lossy().ends_with(".gz") {
            let mut text = String::new();
            flate2::read::GzDecoder::new(&bytes[..])
                .read_to_string(&mut text)
                .unwrap();
            all.push_str(&text);
        } else {
            all.push_str(&String::from_utf8_lossy(&bytes));
        }
    }
    all
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue; // a table with no rows has no directory
        };
        for e in entries {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn handshake_credentials_are_redacted_everywhere_unless_no_redact() {
    let file = credential_capture();
    let redacted = everything_written(&file, &[]);
    for secret in SECRETS {
        assert!(!redacted.contains(secret), "{secret} leaked");
    }
    // What stays: that the credentials were sent, and everything else.
    for kept in [
        "Bearer REDACTED",
        "session=REDACTED",
        "sid=REDACTED",
        "access_token=REDACTED",
        "authorization.bearer.REDACTED",
        "graphql-transport-ws",
        "room=7",
    ] {
        assert!(redacted.contains(kept), "{kept} missing");
    }
    let kept = everything_written(&file, &["--no-redact"]);
    for secret in SECRETS {
        assert!(kept.contains(secret), "{secret} lost with --no-redact");
    }
    // The HAR keeps the request's shape: cookies and query parameters by name.
    let har = json_of(&["analyze", "--format", "har", file.to_str().unwrap()]);
    let req = &har["log"]["entries"][0]["request"];
    assert_eq!(
        req["cookies"],
        json!([{"name": "session", "value": "REDACTED"}, {"name": "theme", "value": "REDACTED"}])
    );
    assert!(
        req["queryString"]
            .as_array()
            .unwrap()
            .contains(&json!({"name": "access_token", "value": "REDACTED"}))
    );
    assert_eq!(
        req["url"],
        "ws://example.test/live?room=7&access_token=REDACTED"
    );
}

// ---------------------------------------------------------------- HTML data

/// The JSON report embedded in an HTML report (gzip, base64).
fn html_report_data(page: &str) -> Value {
    let start = page.find("id=\"wsprobe-report\">").expect("data element") + 20;
    let end = start + page[start..].find("</script>").unwrap();
    let gz = base64::engine::general_purpose::STANDARD
        .decode(page[start..end].trim())
        .expect("base64");
    let mut text = String::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_string(&mut text)
        .expect("gzip");
    serde_json::from_str(&text).expect("JSON")
}

#[test]
fn html_embeds_the_json_report_and_a_summary_readable_without_script() {
    let files = every_capture();
    let mut args = vec!["analyze", "--format", "html"];
    args.extend(files.iter().map(String::as_str));
    let page = String::from_utf8(run(&args).stdout).unwrap();
    let data = html_report_data(&page);
    args[2] = "json";
    args.push("--messages");
    let json: Value = serde_json::from_slice(&run(&args).stdout).unwrap();
    assert_eq!(data["connections"], json["connections"]);
    assert_eq!(data["summary"], json["summary"]);
    assert_eq!(data["inputs"], json["inputs"]);
    assert_eq!(data["omitted_connections"], 0);
    // The summary is HTML, not script: counts and every diagnostic id are in the markup.
    let body = &page[page.find("</script>").unwrap()..];
    let markup = &body[..body.find("<script>").unwrap()];
    assert!(markup.contains("id=\"summary\""));
    for (id, _) in json["summary"]["diagnostics"].as_object().unwrap() {
        assert!(markup.contains(&format!("<code>{id}</code>")), "{id}");
    }
    for (outcome, n) in json["summary"]["outcomes"].as_object().unwrap() {
        assert!(
            markup.contains(&format!("{outcome}</th><td>{n}</td>")),
            "{outcome}"
        );
    }
    // Nothing in the page can reach the network.
    assert!(page.contains("Content-Security-Policy\" content=\"default-src 'none'"));
    for banned in ["src=\"http", "href=\"http", "url(http", "@import"] {
        assert!(!page.contains(banned), "{banned}");
    }
}

#[test]
fn html_size_is_bounded_by_the_listing_cap() {
    let file = "captures/concurrent-50.pcap";
    let full = run(&["analyze", "--format", "html", file]).stdout;
    let capped = run(&[
        "analyze",
        "--format",
        "html",
        "--max-listed-bytes",
        "2000",
        file,
    ])
    .stdout;
    let data = html_report_data(&String::from_utf8(capped.clone()).unwrap());
    let listed: usize = data["connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["messages"].as_array().unwrap().len())
        .sum();
    assert!(
        listed < 20,
        "{listed} messages listed under a 2000-byte cap"
    );
    assert!(data["summary"]["diagnostics"]["limit_exceeded"].as_u64() > Some(0));
    assert!(capped.len() < full.len());
}

// ---------------------------------------------------------------- tables

/// `schema/<table>.v1.json` and `schema/sql/*.sql` are what the code generates (re-bless with
/// WSPROBE_BLESS=1 after changing a column).
#[test]
fn table_sql_and_schemas_are_published_as_generated() {
    use wsprobe::report::tables::{columns::TABLES, schema, sql};
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("schema");
    let mut files: Vec<(PathBuf, String)> = TABLES
        .iter()
        .map(|t| {
            (
                root.join(schema::file_name(t)),
                serde_json::to_string_pretty(&schema::json_schema(t)).unwrap() + "\n",
            )
        })
        .collect();
    for (name, text) in sql::all() {
        files.push((root.join("sql").join(name), text));
    }
    for (path, want) in files {
        if std::env::var_os("WSPROBE_BLESS").is_some() {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &want).unwrap();
            continue;
        }
        let got = std::fs::read_to_string(&path)
            .unwrap_or_else(|_| panic!("{} missing: run with WSPROBE_BLESS=1", path.display()));
        assert!(
            got == want,
            "{} differs from the generated text: re-bless with WSPROBE_BLESS=1",
            path.display()
        );
    }
}

/// Reads every JSON Lines row of `table` under `dir`.
fn rows(dir: &Path, table: &str) -> Vec<Value> {
    let mut out = Vec::new();
    for path in files_under(&dir.join(format!("table={table}"))) {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        assert!(!name.starts_with('.'), "a temporary file was left: {name}");
        let bytes = std::fs::read(&path).unwrap();
        let text = if name.ends_with(".gz") {
            let mut t = String::new();
            flate2::read::GzDecoder::new(&bytes[..])
                .read_to_string(&mut t)
                .unwrap();
            t
        } else {
            String::from_utf8(bytes).unwrap()
        };
        for line in text.lines() {
            out.push(serde_json::from_str(line).unwrap());
        }
    }
    out
}

#[test]
fn table_rows_match_their_schemas_and_the_json_report() {
    let validators: HashMap<&str, jsonschema::Validator> =
        ["connections", "messages", "diagnostics"]
            .iter()
            .map(|t| {
                let text = std::fs::read_to_string(format!(
                    "{}/schema/{t}.v1.json",
                    env!("CARGO_MANIFEST_DIR")
                ))
                .unwrap();
                (
                    *t,
                    jsonschema::validator_for(&serde_json::from_str(&text).unwrap()).unwrap(),
                )
            })
            .collect();
    for file in every_capture() {
        let dir = fresh_dir("tables-schema");
        let d = dir.to_str().unwrap();
        let json = json_of(&[
            "analyze",
            "--format",
            "json",
            "--messages",
            "--out-dir",
            d,
            "--sensor",
            "lab",
            &file,
        ]);
        let conns = json["connections"].as_array().unwrap();
        let tables: HashMap<&str, Vec<Value>> = ["connections", "messages", "diagnostics"]
            .iter()
            .map(|t| (*t, rows(&dir, t)))
            .collect();
        for (t, list) in &tables {
            for row in list {
                let errors: Vec<String> = validators[t]
                    .iter_errors(row)
                    .map(|e| format!("{e} at {}", e.instance_path()))
                    .collect();
                assert!(errors.is_empty(), "{file} {t}: {errors:#?}");
                assert!(
                    row.as_object()
                        .unwrap()
                        .values()
                        .all(|v| !v.is_object() && !v.is_array()),
                    "flat"
                );
            }
        }
        assert_eq!(tables["connections"].len(), conns.len(), "{file}");
        let messages: usize = conns
            .iter()
            .map(|c| c["messages"].as_array().unwrap().len())
            .sum();
        assert_eq!(tables["messages"].len(), messages, "{file}");
        let diagnostics: usize = conns
            .iter()
            .map(|c| c["diagnostics"].as_array().unwrap().len())
            .sum();
        assert_eq!(tables["diagnostics"].len(), diagnostics, "{file}");
        let by_id: HashMap<u64, &Value> = tables["connections"]
            .iter()
            .map(|r| (r["wsprobe.connection_id"].as_u64().unwrap(), r))
            .collect();
        for c in conns {
            let r = by_id[&c["id"].as_u64().unwrap()];
            assert_eq!(r["source.ip"], c["client"]["ip"]);
            assert_eq!(r["destination.port"], c["server"]["port"]);
            assert_eq!(r["websocket.close.code"], c["close"]["code"]);
            assert_eq!(r["websocket.close.outcome"], c["close"]["outcome"]);
            assert_eq!(r["ts"], c["first_seen"]);
            assert_eq!(r["sensor"], "lab");
        }
        // Every message and diagnostic row points at a connection row.
        for t in ["messages", "diagnostics"] {
            for row in &tables[t] {
                let id = row["wsprobe.connection_id"].as_u64().unwrap();
                assert_eq!(row["conn_uid"], by_id[&id]["conn_uid"]);
            }
        }
    }
}

/// A capture of the Community ID spec's own example flow: its id must be the spec's.
#[test]
fn community_id_of_a_captured_flow_is_the_specs() {
    let mut c = Conv::new("128.232.110.120:34855", "66.35.250.204:80");
    c.tcp_open();
    c.send(true, &upgrade_request("/", ""));
    c.send(false, &upgrade_response(""));
    c.rst(false);
    let file = temp_file(&pcap(&c, Link::Ethernet), "pcap");
    let dir = fresh_dir("community-id");
    run(&[
        "analyze",
        "--out-dir",
        dir.to_str().unwrap(),
        file.to_str().unwrap(),
    ]);
    let list = rows(&dir, "connections");
    assert_eq!(list.len(), 1);
    assert_eq!(
        list[0]["network.community_id"],
        "1:LQU9qZlK+B5F3KDmev6m5PMibrg="
    );
    let har = json_of(&["analyze", "--format", "har", file.to_str().unwrap()]);
    assert_eq!(
        har["log"]["entries"][0]["_wsprobe"]["community_id"],
        "1:LQU9qZlK+B5F3KDmev6m5PMibrg="
    );
    // Analysed again at the same sensor: the same uid.
    let dir2 = fresh_dir("community-id-2");
    let sensor = list[0]["sensor"].as_str().unwrap();
    run(&[
        "analyze",
        "--out-dir",
        dir2.to_str().unwrap(),
        "--sensor",
        sensor,
        file.to_str().unwrap(),
    ]);
    assert_eq!(
        rows(&dir2, "connections")[0]["conn_uid"],
        list[0]["conn_uid"]
    );
}

/// Python with the `duckdb` package, in a venv under target/ (made once per test run); None
/// when pip cannot reach PyPI.
fn duckdb_python() -> Option<PathBuf> {
    static PYTHON: OnceLock<Option<PathBuf>> = OnceLock::new();
    PYTHON
        .get_or_init(|| {
            let venv = target_dir().join("duckdb-venv");
            let python = venv.join("bin/python");
            let has = |p: &Path| {
                Command::new(p)
                    .args(["-c", "import duckdb"])
                    .output()
                    .is_ok_and(|o| o.status.success())
            };
            if has(&python) {
                return Some(python);
            }
            let made = Command::new("python3")
                .args(["-m", "venv"])
                .arg(&venv)
                .status()
                .is_ok_and(|s| s.success());
            assert!(
                made,
                "python3 -m venv failed (Debian: apt-get install python3-venv)"
            );
            let pip = Command::new(venv.join("bin/pip"))
                .args(["install", "--quiet", "duckdb"])
                .output()
                .unwrap();
            if !pip.status.success() {
                eprintln!(
                    "DuckDB test SKIPPED: pip could not install duckdb (no access to PyPI?): {}",
                    String::from_utf8_lossy(&pip.stderr)
                );
                return None;
            }
            assert!(has(&python), "duckdb installed but does not import");
            Some(python)
        })
        .clone()
}

/// Runs SQL in DuckDB with `cwd` as the current directory; the result as JSON rows.
fn duckdb(python: &Path, cwd: &Path, init: Option<&Path>, sql: &str) -> Vec<Value> {
    let script = r#"
import duckdb, json, sys, datetime, decimal
con = duckdb.connect()
if sys.argv[1]:
    con.execute(open(sys.argv[1]).read())
cur = con.execute(sys.argv[2])
names = [d[0] for d in cur.description]
def plain(v):
    if isinstance(v, (datetime.date, datetime.datetime)): return v.isoformat()
    if isinstance(v, decimal.Decimal): return float(v)
    return v
print(json.dumps([dict(zip(names, map(plain, r))) for r in cur.fetchall()]))
"#;
    let out = Command::new(python)
        .current_dir(cwd)
        .args(["-c", script])
        .arg(
            init.map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default(),
        )
        .arg(sql)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "duckdb: {}\n{sql}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn duckdb_reads_two_runs_from_two_sensors_as_one_table() {
    let Some(python) = duckdb_python() else {
        return;
    };
    let dir = fresh_dir("fleet");
    let d = dir.to_str().unwrap();
    let a = [
        "captures/close-codes.pcap",
        "captures/killed-server.pcap",
        "captures/ping-unanswered.pcap",
    ];
    let b = [
        "captures/refused.pcap",
        "captures/concurrent-50.pcap",
        "captures/demo.pcap",
    ];
    let mut reports = Vec::new();
    for (sensor, files, compress) in [("edge-a", &a, true), ("edge-b", &b, false)] {
        let mut args = vec![
            "analyze",
            "--format",
            "json",
            "--messages",
            "--out-dir",
            d,
            "--sensor",
            sensor,
        ];
        if compress {
            args.push("--compress");
        }
        args.extend_from_slice(files);
        reports.push((sensor, json_of(&args)));
    }
    // As the README does: read_json_auto over the globs, with hive partitions.
    let counted = duckdb(
        &python,
        &dir,
        None,
        "SELECT sensor, count(*) AS n, count(DISTINCT conn_uid) AS uids, \
                count(*) FILTER (WHERE \"websocket.close.code\" = 1006) AS drops \
         FROM read_json_auto('table=connections/**/*.jsonl*', hive_partitioning = true, union_by_name = true) \
         GROUP BY sensor ORDER BY sensor",
    );
    assert_eq!(counted.len(), 2, "{counted:?}");
    for (row, (sensor, report)) in counted.iter().zip(&reports) {
        let conns = report["connections"].as_array().unwrap();
        assert_eq!(row["sensor"], *sensor);
        assert_eq!(row["n"], conns.len());
        assert_eq!(row["uids"], conns.len());
        let drops = conns.iter().filter(|c| c["close"]["code"] == 1006).count();
        assert_eq!(row["drops"], drops);
    }
    // The published views (written into the dataset as _schema/duckdb.sql) type every column.
    let init = dir.join("_schema/duckdb.sql");
    let messages = duckdb(
        &python,
        &dir,
        Some(&init),
        "SELECT count(*) AS n, count(DISTINCT conn_uid) AS conns FROM messages",
    );
    let listed: usize = reports
        .iter()
        .flat_map(|(_, r)| r["connections"].as_array().unwrap())
        .map(|c| c["messages"].as_array().unwrap().len())
        .sum();
    assert_eq!(messages[0]["n"], listed);
    let diagnostics = duckdb(
        &python,
        &dir,
        Some(&init),
        "SELECT \"event.code\" AS id, count(*) AS n FROM diagnostics GROUP BY 1 ORDER BY 1",
    );
    let mut want: HashMap<String, usize> = HashMap::new();
    for (_, r) in &reports {
        for c in r["connections"].as_array().unwrap() {
            for d in c["diagnostics"].as_array().unwrap() {
                *want
                    .entry(d["id"].as_str().unwrap().to_string())
                    .or_default() += 1;
            }
        }
    }
    let got: HashMap<String, usize> = diagnostics
        .iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap().to_string(),
                r["n"].as_u64().unwrap() as usize,
            )
        })
        .collect();
    assert_eq!(got, want);
    // The README's questions run as written.
    for query in readme_duckdb_queries() {
        duckdb(&python, &dir, Some(&init), &query);
    }
    // A join: messages of the connections that dropped with 1006.
    let joined = duckdb(
        &python,
        &dir,
        Some(&init),
        "SELECT c.conn_uid, count(m.conn_uid) AS n FROM connections c LEFT JOIN messages m USING (conn_uid) \
         WHERE c.\"websocket.close.code\" = 1006 GROUP BY 1",
    );
    let drops: usize = reports
        .iter()
        .flat_map(|(_, r)| r["connections"].as_array().unwrap())
        .filter(|c| c["close"]["code"] == 1006)
        .count();
    assert_eq!(joined.len(), drops);
}

/// The ```sql blocks of the README's DuckDB section.
fn readme_duckdb_queries() -> Vec<String> {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let section = readme
        .split("<!-- duckdb-queries -->")
        .nth(1)
        .expect("README marks its DuckDB queries with <!-- duckdb-queries -->");
    let section = section.split("<!-- /duckdb-queries -->").next().unwrap();
    let queries: Vec<String> = section
        .split("```sql")
        .skip(1)
        .map(|b| b.split("```").next().unwrap().trim().to_string())
        .collect();
    assert!(queries.len() >= 3, "{queries:?}");
    queries
}

/// `--table-format parquet` (feature `parquet`): the same rows as the JSON Lines tables, typed,
/// read by DuckDB. Run with `cargo test --features parquet --test integration parquet`.
#[cfg(feature = "parquet")]
#[test]
fn parquet_tables_hold_the_same_rows_as_json_lines() {
    let Some(python) = duckdb_python() else {
        return;
    };
    let files = every_capture();
    for (format, dir) in [
        ("jsonl", fresh_dir("pq-jsonl")),
        ("parquet", fresh_dir("pq-parquet")),
    ] {
        let mut args = vec![
            "analyze",
            "--messages",
            "--sensor",
            "lab",
            "--out-dir",
            dir.to_str().unwrap(),
            "--table-format",
            format,
        ];
        args.extend(files.iter().map(String::as_str));
        run(&args);
    }
    let root = std::env::temp_dir();
    let pid = std::process::id();
    for table in ["connections", "messages", "diagnostics"] {
        let sql = format!(
            "WITH j AS (SELECT * EXCLUDE (date, sensor, \"table\") REPLACE (\"@timestamp\"::TIMESTAMPTZ AS \"@timestamp\") \
                        FROM read_json('wsprobe-pq-jsonl-{pid}/table={table}/**/*.jsonl', hive_partitioning = true, sample_size = -1)), \
                  p AS (SELECT * EXCLUDE (date, sensor, \"table\") FROM read_parquet('wsprobe-pq-parquet-{pid}/table={table}/**/*.parquet', hive_partitioning = true)) \
             SELECT (SELECT count(*) FROM j) AS j, (SELECT count(*) FROM p) AS p, \
                    (SELECT count(*) FROM (SELECT conn_uid, \"@timestamp\", ts FROM j EXCEPT SELECT conn_uid, \"@timestamp\", ts FROM p)) AS differ"
        );
        let r = duckdb(&python, &root, None, &sql);
        assert_eq!(r[0]["j"], r[0]["p"], "{table}: {r:?}");
        assert!(r[0]["j"].as_u64().unwrap() > 0, "{table}: {r:?}");
        assert_eq!(r[0]["differ"], 0, "{table}: {r:?}");
    }
    let types = duckdb(
        &python,
        &root,
        None,
        &format!(
            "SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM read_parquet('wsprobe-pq-parquet-{pid}/table=connections/**/*.parquet'))"
        ),
    );
    let ty = |name: &str| {
        types
            .iter()
            .find(|r| r["column_name"] == name)
            .map(|r| r["column_type"].as_str().unwrap().to_string())
    };
    assert_eq!(
        ty("@timestamp").as_deref(),
        Some("TIMESTAMP WITH TIME ZONE")
    );
    assert_eq!(ty("destination.port").as_deref(), Some("BIGINT"));
    assert_eq!(ty("websocket.close.inferred").as_deref(), Some("BOOLEAN"));
    assert_eq!(
        ty("websocket.ping.rtt_median_ms").as_deref(),
        Some("DOUBLE")
    );
}
