//! `--out-dir DIR`: dataset tables for fleets of captures. Every finished connection becomes one
//! `connections` row, its listed diagnostics `diagnostics` rows and (with `--messages`) its
//! listed messages `messages` rows, written as flat JSON Lines (gzip with `--compress`, or
//! Parquet with the `parquet` feature) under hive-style partitions:
//!
//! ```text
//! DIR/table=connections/date=2026-12-01/sensor=edge-1/part-20261201T102030Z-3f9a1c2e-0000.jsonl.gz
//! DIR/_manifests/20261201T102030Z-3f9a1c2e.json      (one per run: inputs, row counts, files)
//! ```
//!
//! File names are unique per run, files are written under a hidden temporary name and renamed
//! when complete, and never appended to afterwards, so many runs on many machines can share one
//! bucket and readers never see half a file. The columns are in [`columns`]; the JSON Schemas in
//! `schema/<table>.v1.json` are generated from them ([`schema::json_schema`]), and so are the
//! engines' statements in `schema/sql/` ([`sql`]).
//!
//! The `findings` table has one row per finding across connections, written when the findings
//! come ([`Sink::findings`], after every connection): the connections it covers as arrays (their
//! ids, `conn_uid`s and Community IDs, in one order), the servers, confidence, evidence,
//! explanation, advice and suspects, every parameter in a typed column of its own
//! (`wsprobe.finding.parameters.timeout_s` ...) and the whole parameter map as JSON text (no
//! map with changing keys in a row). Arrays, not joined text: DuckDB, ClickHouse, BigQuery,
//! Trino, Spark and Elasticsearch all read a JSON array of strings as a native array (and
//! Parquet has LIST), so the join with `connections` is `list_contains`/`has`/`IN UNNEST`
//! instead of splitting text; joined text would also break on a separator inside a value.
//! The `conn_uid`s come from a small map of connection id to its keys that
//! [`TableWriter::write_connection`] fills (at most [`crate::findings::MAX_ENDINGS`] entries:
//! past that the findings do not consider connections either).

pub mod columns;
#[cfg(feature = "parquet")]
mod parquet;
pub mod schema;
pub mod sql;

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use serde_json::json;

use crate::capture::InputSummary;
use crate::record::{ConnectionRecord, Event, Finding, Sink, Summary};
use crate::report::timefmt;
use columns::{Cell, ConnectionKeys, TableSpec};

/// File format of the tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    /// JSON Lines.
    Jsonl,
    /// Apache Parquet (feature `parquet`).
    Parquet,
}

impl FileFormat {
    /// Is this format compiled in?
    pub fn available(self) -> bool {
        match self {
            FileFormat::Jsonl => true,
            FileFormat::Parquet => cfg!(feature = "parquet"),
        }
    }
}

/// What `--out-dir` and its options asked for.
#[derive(Debug, Clone)]
pub struct TablesConfig {
    /// Root of the dataset.
    pub dir: PathBuf,
    /// Gzip the JSON Lines.
    pub compress: bool,
    /// JSON Lines or Parquet.
    pub format: FileFormat,
    /// Capture point name (already [`sanitize_sensor`]d).
    pub sensor: String,
    /// Write the `messages` table.
    pub messages: bool,
}

/// A part file is closed and a new one started after this many rows...
const ROTATE_ROWS: u64 = 1_000_000;
/// ...or after this many seconds of wall time (a long `live` run keeps publishing files).
const ROTATE_SECONDS: u64 = 3600;

/// The name of this machine: the default `--sensor`.
pub fn host_name() -> String {
    let from_file = |p: &str| {
        std::fs::read_to_string(p)
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    };
    from_file("/proc/sys/kernel/hostname")
        .or_else(|| from_file("/etc/hostname"))
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|s| !s.is_empty()))
        .or_else(|| std::env::var("COMPUTERNAME").ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "unknown".to_string())
}

/// A sensor name that is safe as a path segment and a hive partition value: letters, digits,
/// `.`, `-` and `_`; anything else becomes `_`.
pub fn sanitize_sensor(name: &str) -> String {
    let s: String = name
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let s = s.trim_start_matches('.').to_string();
    if s.is_empty() { "unknown".into() } else { s }
}

/// One row of a table written to one file.
trait PartWriter {
    fn write_row(&mut self, cells: &[Cell]) -> std::io::Result<()>;
    fn finish(self: Box<Self>) -> std::io::Result<()>;
}

/// Where a JSON Lines part goes.
enum Target {
    Plain(BufWriter<File>),
    /// Lines are gathered into 64 KiB before each compression call.
    Gzip(Box<BufWriter<flate2::write::GzEncoder<BufWriter<File>>>>),
}

/// JSON Lines, plain or gzip.
struct JsonlPart {
    spec: &'static TableSpec,
    out: Target,
    line: Vec<u8>,
}

impl JsonlPart {
    fn create(path: &Path, spec: &'static TableSpec, compress: bool) -> std::io::Result<Self> {
        let file = BufWriter::with_capacity(1 << 16, File::create(path)?);
        let out = if compress {
            // zlib's default level: for a bucket that keeps them, a quarter smaller than
            // level 3 for half again its CPU (GNU gzip on 300 MB of the benchmark's message
            // rows: 13.9 MB in 2.0 s against 18.1 MB in 1.4 s).
            Target::Gzip(Box::new(BufWriter::with_capacity(
                1 << 16,
                flate2::write::GzEncoder::new(file, flate2::Compression::default()),
            )))
        } else {
            Target::Plain(file)
        };
        Ok(JsonlPart {
            spec,
            out,
            line: Vec::with_capacity(1024),
        })
    }
}

/// Appends one row as a JSON object with the spec's names, in column order.
pub fn encode_row(spec: &TableSpec, cells: &[Cell], line: &mut Vec<u8>) {
    line.push(b'{');
    for (i, (column, cell)) in spec.columns.iter().zip(cells).enumerate() {
        if i > 0 {
            line.push(b',');
        }
        serde_json::to_writer(&mut *line, column.name).expect("bug: a name serializes");
        line.push(b':');
        match cell {
            Cell::Null => line.extend_from_slice(b"null"),
            Cell::Bool(b) => line.extend_from_slice(if *b { b"true" } else { b"false" }),
            Cell::Int(n) => line.extend_from_slice(n.to_string().as_bytes()),
            Cell::Float(f) => {
                serde_json::to_writer(&mut *line, f).expect("bug: a finite float serializes")
            }
            Cell::Str(s) => serde_json::to_writer(&mut *line, s).expect("bug: text serializes"),
            Cell::Time(t) => {
                line.push(b'"');
                line.extend_from_slice(timefmt::rfc3339_micros(*t).as_bytes());
                line.push(b'"');
            }
            Cell::StrList(v) => serde_json::to_writer(&mut *line, v).expect("bug: texts serialize"),
            Cell::IntList(v) => {
                serde_json::to_writer(&mut *line, v).expect("bug: numbers serialize")
            }
        }
    }
    line.extend_from_slice(b"}\n");
}

impl PartWriter for JsonlPart {
    fn write_row(&mut self, cells: &[Cell]) -> std::io::Result<()> {
        self.line.clear();
        encode_row(self.spec, cells, &mut self.line);
        match &mut self.out {
            Target::Plain(w) => w.write_all(&self.line),
            Target::Gzip(w) => w.write_all(&self.line),
        }
    }

    fn finish(self: Box<Self>) -> std::io::Result<()> {
        match self.out {
            Target::Plain(mut w) => w.flush(),
            Target::Gzip(w) => w
                .into_inner()
                .map_err(|e| e.into_error())?
                .finish()?
                .flush(),
        }
    }
}

/// An open part file: written under `temp`, renamed to `path` when finished.
struct Part {
    writer: Box<dyn PartWriter>,
    temp: PathBuf,
    path: PathBuf,
    rows: u64,
    opened: Instant,
}

/// Writes the tables of one run.
pub struct TableWriter {
    config: TablesConfig,
    run_id: String,
    started: SystemTime,
    /// Open parts by (table, date).
    parts: HashMap<(&'static str, String), Part>,
    next_seq: u32,
    rows: BTreeMap<&'static str, u64>,
    files: Vec<String>,
    error: Option<std::io::Error>,
    /// Connection id → what the findings rows need of it.
    members: HashMap<u64, Kept>,
    /// The earliest first packet of the connections written.
    first_time: Option<f64>,
    /// Tables that got a part in this run.
    opened: std::collections::HashSet<&'static str>,
}

/// A connection's keys, kept compactly until the findings come (about 100 bytes each).
struct Kept {
    /// `conn_uid` without its leading `W`.
    uid: [u8; 16],
    client: std::net::SocketAddr,
    server: std::net::SocketAddr,
    first_seen: f64,
}

impl Kept {
    fn of(record: &ConnectionRecord, conn_uid: &str) -> Option<Kept> {
        let uid: [u8; 16] = conn_uid.as_bytes().get(1..17)?.try_into().ok()?;
        let ip = |ip: &str| ip.parse::<std::net::IpAddr>().ok();
        Some(Kept {
            uid,
            client: (ip(&record.client.ip)?, record.client.port).into(),
            server: (ip(&record.server.ip)?, record.server.port).into(),
            first_seen: record.first_seen,
        })
    }

    fn keys(&self) -> columns::MemberKeys {
        let ip = |a: std::net::SocketAddr| a.ip().to_string();
        columns::MemberKeys {
            conn_uid: format!("W{}", String::from_utf8_lossy(&self.uid)),
            community_id: crate::report::ids::community_id(
                crate::report::ids::PROTO_TCP,
                (self.client.ip(), self.client.port()),
                (self.server.ip(), self.server.port()),
                0,
            ),
            server: Some(columns::endpoint(&ip(self.server), self.server.port())),
            first_seen: Some(self.first_seen),
        }
    }
}

/// `20261201T102030Z-3f9a1c2e`: the run's start (wall clock, UTC) and 32 random bits, so runs
/// started in the same second on the same sensor do not collide.
fn run_id(now: SystemTime) -> String {
    use std::hash::{BuildHasher, Hasher};
    let secs = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64().floor());
    let stamp = timefmt::rfc3339_micros(secs);
    let compact: String = stamp[..19]
        .chars()
        .filter(|c| *c != '-' && *c != ':')
        .collect();
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    hasher.write_u128(
        now.duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    format!("{compact}Z-{:08x}", hasher.finish() as u32)
}

impl TableWriter {
    /// Creates `DIR` (and checks that it can be written) for a run.
    pub fn create(config: TablesConfig) -> std::io::Result<Self> {
        std::fs::create_dir_all(&config.dir)?;
        let started = SystemTime::now();
        Ok(TableWriter {
            run_id: run_id(started),
            config,
            started,
            parts: HashMap::new(),
            next_seq: 0,
            rows: BTreeMap::new(),
            files: Vec::new(),
            error: None,
            members: HashMap::new(),
            first_time: None,
            opened: std::collections::HashSet::new(),
        })
    }

    /// The run's id, part of every file name.
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    fn extension(&self) -> &'static str {
        match (self.config.format, self.config.compress) {
            (FileFormat::Parquet, _) => "parquet",
            (FileFormat::Jsonl, true) => "jsonl.gz",
            (FileFormat::Jsonl, false) => "jsonl",
        }
    }

    fn open(&mut self, spec: &'static TableSpec, date: &str) -> std::io::Result<Part> {
        let dir = self
            .config
            .dir
            .join(format!("table={}", spec.name))
            .join(format!("date={date}"))
            .join(format!("sensor={}", self.config.sensor));
        std::fs::create_dir_all(&dir)?;
        self.opened.insert(spec.name);
        let name = format!(
            "part-{}-{:04}.{}",
            self.run_id,
            self.next_seq,
            self.extension()
        );
        self.next_seq += 1;
        let path = dir.join(&name);
        // Hidden while written: globs (`*.jsonl.gz`) and hive readers skip dot files.
        let temp = dir.join(format!(".{name}.tmp"));
        let writer: Box<dyn PartWriter> = match self.config.format {
            FileFormat::Jsonl => Box::new(JsonlPart::create(&temp, spec, self.config.compress)?),
            #[cfg(feature = "parquet")]
            FileFormat::Parquet => Box::new(parquet::ParquetPart::create(&temp, spec)?),
            #[cfg(not(feature = "parquet"))]
            FileFormat::Parquet => {
                return Err(std::io::Error::other(
                    "this wsprobe was built without the `parquet` feature",
                ));
            }
        };
        Ok(Part {
            writer,
            temp,
            path,
            rows: 0,
            opened: Instant::now(),
        })
    }

    fn close(&mut self, part: Part) -> std::io::Result<()> {
        part.writer.finish()?;
        std::fs::rename(&part.temp, &part.path)?;
        let relative = part
            .path
            .strip_prefix(&self.config.dir)
            .unwrap_or(&part.path);
        self.files.push(relative.to_string_lossy().into_owned());
        Ok(())
    }

    fn write(&mut self, spec: &'static TableSpec, time: f64, cells: &[Cell]) {
        if self.error.is_some() {
            return;
        }
        if let Err(e) = self.try_write(spec, time, cells) {
            self.error = Some(e);
        }
    }

    fn try_write(
        &mut self,
        spec: &'static TableSpec,
        time: f64,
        cells: &[Cell],
    ) -> std::io::Result<()> {
        let key = (spec.name, timefmt::date(time));
        let full = self.parts.get(&key).is_some_and(|p| {
            p.rows >= ROTATE_ROWS || p.opened.elapsed().as_secs() >= ROTATE_SECONDS
        });
        if full && let Some(old) = self.parts.remove(&key) {
            self.close(old)?;
        }
        if !self.parts.contains_key(&key) {
            let part = self.open(spec, &key.1)?;
            self.parts.insert(key.clone(), part);
        }
        let part = self.parts.get_mut(&key).expect("bug: part just opened");
        part.writer.write_row(cells)?;
        part.rows += 1;
        *self.rows.entry(spec.name).or_insert(0) += 1;
        Ok(())
    }

    /// Writes the rows of one finished connection.
    pub fn write_connection(&mut self, record: &ConnectionRecord) {
        let keys = ConnectionKeys::of(record, &self.config.sensor);
        self.first_time = Some(
            self.first_time
                .map_or(record.first_seen, |t| t.min(record.first_seen)),
        );
        if self.members.len() < crate::findings::MAX_ENDINGS
            && let Some(kept) = Kept::of(record, &keys.conn_uid)
        {
            self.members.insert(record.id, kept);
        }
        let row = columns::connection_row(record, &keys);
        self.write(&columns::CONNECTIONS, record.first_seen, &row);
        for d in &record.diagnostics {
            let row = columns::diagnostic_row(record, &keys, d);
            self.write(
                &columns::DIAGNOSTICS,
                d.time.unwrap_or(record.first_seen),
                &row,
            );
        }
        if self.config.messages
            && let Some(messages) = &record.messages
        {
            for (i, m) in messages.held().iter().enumerate() {
                let row = columns::message_row(record, &keys, i, m);
                self.write(&columns::MESSAGES, m.time, &row);
            }
        }
    }

    /// Writes one `findings` row per finding.
    pub fn write_findings(&mut self, findings: &[Finding]) {
        for f in findings {
            let members: Vec<columns::MemberKeys> = f
                .connections
                .iter()
                .map(|id| self.members.get(id).map(Kept::keys).unwrap_or_default())
                .collect();
            let row = columns::finding_row(f, &members, &self.config.sensor);
            let time = match &row[columns::FINDINGS_TS_INDEX] {
                Cell::Float(t) => *t,
                _ => 0.0,
            };
            self.write(&columns::FINDINGS, time, &row);
        }
        self.members.clear();
    }

    /// `DIR/_schema/`: the tables' JSON Schemas and DuckDB views, so a dataset (a bucket)
    /// describes itself. Every run writes the same bytes for the same version.
    fn write_schemas(&self) -> std::io::Result<()> {
        let dir = self.config.dir.join("_schema");
        std::fs::create_dir_all(&dir)?;
        let mut files = vec![("duckdb.sql".to_string(), sql::duckdb().into_bytes())];
        for spec in columns::TABLES {
            let text = serde_json::to_vec_pretty(&schema::json_schema(spec))
                .expect("bug: schema serializes");
            files.push((schema::file_name(spec), text));
        }
        for (name, bytes) in files {
            let path = dir.join(&name);
            if std::fs::read(&path).is_ok_and(|old| old == bytes) {
                continue;
            }
            let temp = dir.join(format!(".{name}.{}.tmp", self.run_id));
            std::fs::write(&temp, bytes)?;
            std::fs::rename(&temp, &path)?;
        }
        Ok(())
    }

    fn write_manifest(&self, inputs: &[InputSummary], summary: &Summary) -> std::io::Result<()> {
        let dir = self.config.dir.join("_manifests");
        std::fs::create_dir_all(&dir)?;
        let secs = |t: SystemTime| {
            t.duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64())
        };
        let manifest = json!({
            "run_id": self.run_id,
            "tool": crate::record::Tool::this(),
            "tables_schema_version": columns::TABLES_SCHEMA_VERSION,
            "sensor": self.config.sensor,
            "started": timefmt::rfc3339_micros(secs(self.started)),
            "finished": timefmt::rfc3339_micros(secs(SystemTime::now())),
            "format": self.extension(),
            "inputs": inputs,
            "summary": summary,
            "rows": self.rows,
            "files": self.files,
        });
        let path = dir.join(format!("{}.json", self.run_id));
        let temp = dir.join(format!(".{}.json.tmp", self.run_id));
        let text = serde_json::to_vec_pretty(&manifest).expect("bug: manifest serializes");
        std::fs::write(&temp, text)?;
        std::fs::rename(&temp, &path)
    }

    /// Opens an empty part for each table of the run that got no row (a run without findings,
    /// a clean capture without diagnostics): the dataset then says "none" rather than "not
    /// looked for", and readers that declare every table (the DuckDB views) find a file.
    fn open_empty_tables(&mut self) -> std::io::Result<()> {
        let time = self.first_time.unwrap_or_else(|| {
            self.started
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64())
        });
        for spec in columns::TABLES {
            if (spec.name == columns::MESSAGES.name && !self.config.messages)
                || self.opened.contains(spec.name)
            {
                continue;
            }
            let key = (spec.name, timefmt::date(time));
            let part = self.open(spec, &key.1)?;
            self.parts.insert(key, part);
            self.rows.entry(spec.name).or_insert(0);
        }
        Ok(())
    }

    fn close_all(&mut self) -> std::io::Result<()> {
        let mut parts: Vec<_> = self.parts.drain().collect();
        parts.sort_by(|a, b| a.0.cmp(&b.0));
        let mut first_error = None;
        for (_, part) in parts {
            if let Err(e) = self.close(part) {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

impl Sink for TableWriter {
    fn event(&mut self, _event: &Event<'_>) {}

    fn connection(&mut self, record: ConnectionRecord) {
        self.write_connection(&record);
    }

    fn findings(&mut self, findings: &[Finding]) {
        self.write_findings(findings);
    }

    fn finish(&mut self, inputs: &[InputSummary], summary: &Summary) -> std::io::Result<()> {
        if self.error.is_none()
            && let Err(e) = self.open_empty_tables()
        {
            self.error = Some(e);
        }
        let closed = self.close_all();
        if let Some(e) = self.error.take() {
            return Err(tables_error(&self.config.dir, e));
        }
        closed.map_err(|e| tables_error(&self.config.dir, e))?;
        self.write_schemas()
            .map_err(|e| tables_error(&self.config.dir, e))?;
        self.write_manifest(inputs, summary)
            .map_err(|e| tables_error(&self.config.dir, e))
    }

    fn output_failed(&self) -> bool {
        self.error.is_some()
    }
}

fn tables_error(dir: &Path, e: std::io::Error) -> std::io::Error {
    std::io::Error::new(
        e.kind(),
        format!("writing tables under {}: {e}", dir.display()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sensor_names_become_safe_partition_values() {
        assert_eq!(sanitize_sensor("edge-1.eu"), "edge-1.eu");
        assert_eq!(sanitize_sensor("a/b=c d"), "a_b_c_d");
        assert_eq!(sanitize_sensor(".."), "unknown");
        assert_eq!(sanitize_sensor(""), "unknown");
    }

    #[test]
    fn run_ids_differ_and_sort_by_time() {
        let now = SystemTime::now();
        let a = run_id(now);
        let b = run_id(now);
        assert_ne!(a, b);
        assert_eq!(a.len(), "20261201T102030Z-3f9a1c2e".len());
        assert!(a.as_bytes()[8] == b'T' && a.as_bytes()[15] == b'Z');
    }
}
