//! Statements that read the tables into the engines teams already run, generated from the
//! column lists so that every column is declared with its type (engines that guess types from a
//! sample get them wrong: DuckDB types a column that is null in its first 20,480 rows as NULL
//! and then drops every later value). Published as `schema/sql/<engine>.sql`, and written into
//! every dataset as `DIR/_schema/duckdb.sql`.
//!
//! BigQuery and Hive (under Trino) do not accept `.` in column names, so for them each line is
//! read as one text column and a view extracts the ECS-named fields into `_`-named columns.

use std::fmt::Write as _;

use super::columns::{Column, Kind, TABLES, TableSpec};

/// `source.ip` → `source_ip`, `@timestamp` → `timestamp`: for engines without dotted names.
pub fn plain_name(c: &Column) -> String {
    c.name.trim_start_matches('@').replace('.', "_")
}

fn header(engine: &str, how: &str) -> String {
    format!(
        "-- wsprobe dataset tables in {engine} (tables schema_version {}): {how}\n\
         -- Generated from src/report/tables/columns.rs; `cargo test --test integration table_sql` checks it.\n\
         -- Replace BUCKET/DIR with where `wsprobe analyze --out-dir DIR` wrote (or where it was synced to).\n\n",
        super::columns::TABLES_SCHEMA_VERSION
    )
}

/// DuckDB: one view per table over `table=<name>/**/*.jsonl*` relative to the current
/// directory (run `duckdb -init _schema/duckdb.sql` inside DIR), with every column typed.
pub fn duckdb() -> String {
    let mut s = String::from(
        "-- wsprobe dataset tables as DuckDB views, every column typed (tables schema_version 1).\n\
         -- Run inside the dataset directory: cd DIR && duckdb -init _schema/duckdb.sql\n\
         -- (or replace 'table=' with 'DIR/table=' or 's3://BUCKET/DIR/table=' after LOAD httpfs).\n\
         -- Generated from src/report/tables/columns.rs; `cargo test --test integration table_sql` checks it.\n\n",
    );
    for t in TABLES {
        let _ = writeln!(
            s,
            "CREATE OR REPLACE VIEW {} AS SELECT * FROM read_json('table={}/**/*.jsonl*',\n  format = 'newline_delimited', hive_partitioning = true, union_by_name = true,\n  hive_types = {{'date': DATE, 'sensor': VARCHAR, 'table': VARCHAR}},\n  columns = {{",
            t.name, t.name
        );
        for (i, c) in t.columns.iter().enumerate() {
            let ty = match c.kind {
                Kind::Time => "TIMESTAMPTZ",
                Kind::Bool => "BOOLEAN",
                Kind::Int => "BIGINT",
                Kind::Float => "DOUBLE",
                Kind::Str => "VARCHAR",
                Kind::StrList => "VARCHAR[]",
                Kind::IntList => "BIGINT[]",
            };
            let comma = if i + 1 < t.columns.len() { "," } else { "" };
            let _ = writeln!(s, "    '{}': '{ty}'{comma}", c.name);
        }
        s.push_str("  });\n\n");
    }
    s.push_str(
        "-- One row per (finding, connection it covers): the join of findings with connections.\n\
         CREATE OR REPLACE VIEW finding_connections AS\n\
         SELECT finding_uid, \"event.code\" AS finding, \"wsprobe.finding.confidence\" AS confidence,\n\
         \x20      sensor, unnest(\"wsprobe.connection_ids\") AS connection_id, unnest(conn_uids) AS conn_uid\n\
         FROM findings;\n",
    );
    s
}

/// ClickHouse: MergeTree tables with the ECS names, filled from the files with `s3()` (or
/// `file()`) in JSONEachRow.
pub fn clickhouse() -> String {
    let mut s = header(
        "ClickHouse",
        "CREATE TABLE, then INSERT ... SELECT FROM s3() (file() for a local DIR)",
    );
    s.push_str("CREATE DATABASE IF NOT EXISTS wsprobe;\n\n");
    for t in TABLES {
        let _ = writeln!(s, "CREATE TABLE IF NOT EXISTS wsprobe.{} (", t.name);
        for c in t.columns {
            let base = match c.kind {
                Kind::Time => "DateTime64(6, 'UTC')",
                Kind::Bool => "Bool",
                Kind::Int => "Int64",
                Kind::Float => "Float64",
                Kind::Str => "String",
                Kind::StrList => "Array(String)",
                Kind::IntList => "Array(Int64)",
            };
            // ClickHouse has no Nullable(Array): a null list reads as an empty one
            // (input_format_null_as_default, on by default).
            let list = matches!(c.kind, Kind::StrList | Kind::IntList);
            let ty = if c.required || list {
                base.to_string()
            } else {
                format!("Nullable({base})")
            };
            let _ = writeln!(s, "    `{}` {ty},", c.name);
        }
        let _ = writeln!(
            s,
            ")\nENGINE = ReplacingMergeTree\nPARTITION BY toYYYYMM(`@timestamp`)\nORDER BY ({});\n",
            order_key(t)
        );
        let _ = writeln!(
            s,
            "INSERT INTO wsprobe.{0}\nSELECT * FROM s3('https://BUCKET.s3.amazonaws.com/DIR/table={0}/*/*/*.jsonl.gz', 'JSONEachRow')\nSETTINGS date_time_input_format = 'best_effort', input_format_skip_unknown_fields = 1;\n",
            t.name
        );
    }
    s.push_str(
        "-- A re-loaded run replaces its rows (same key) when ClickHouse merges; query with FINAL\n\
         -- to see them deduplicated at once, e.g. SELECT count() FROM wsprobe.connections FINAL.\n",
    );
    s
}

/// The key rows are unique by (ReplacingMergeTree's sorting key): a re-loaded run dedups.
fn order_key(t: &TableSpec) -> &'static str {
    match t.name {
        "messages" => "conn_uid, `websocket.message.index`",
        "diagnostics" => "conn_uid, `event.code`, `@timestamp`, message",
        "findings" => "finding_uid",
        _ => "conn_uid",
    }
}

/// A view that extracts every field from a one-column table of JSON lines.
fn json_view(
    s: &mut String,
    t: &TableSpec,
    view: &str,
    raw: &str,
    extract: impl Fn(&Column) -> String,
) {
    let _ = writeln!(s, "CREATE OR REPLACE VIEW {view} AS SELECT");
    for c in t.columns {
        let _ = writeln!(s, "  {} AS {},", extract(c), plain_name(c));
    }
    let _ = writeln!(
        s,
        "  \"date\" AS partition_date, sensor AS partition_sensor\nFROM {raw};\n"
    );
}

/// BigQuery: each line loaded as one STRING column (a CSV load with a delimiter and no quote
/// character, so the line is never split), hive partitions from the path, and a view.
pub fn bigquery() -> String {
    let mut s = header(
        "BigQuery",
        "column names cannot hold '.', so each line is loaded as text and a view extracts the fields",
    );
    for t in TABLES {
        let _ = writeln!(
            s,
            "-- bq load --source_format=CSV --field_delimiter=$'\\x1f' --quote='' --max_bad_records=0 \\\n\
             --   --hive_partitioning_mode=CUSTOM \\\n\
             --   --hive_partitioning_source_uri_prefix='gs://BUCKET/DIR/table={0}/{{date:DATE}}/{{sensor:STRING}}' \\\n\
             --   wsprobe.{0}_raw 'gs://BUCKET/DIR/table={0}/*' line:STRING",
            t.name
        );
        json_view(
            &mut s,
            t,
            &format!("wsprobe.{}", t.name),
            &format!("wsprobe.{}_raw", t.name),
            |c| {
                let path = format!("JSON_VALUE(line, '$.\"{}\"')", c.name);
                match c.kind {
                    Kind::Time => {
                        format!("TIMESTAMP({path})")
                    }
                    Kind::Bool => format!("SAFE_CAST({path} AS BOOL)"),
                    Kind::Int => format!("SAFE_CAST({path} AS INT64)"),
                    Kind::Float => format!("SAFE_CAST({path} AS FLOAT64)"),
                    Kind::Str => path,
                    Kind::StrList => format!("JSON_VALUE_ARRAY(line, '$.\"{}\"')", c.name),
                    Kind::IntList => format!(
                        "ARRAY(SELECT SAFE_CAST(x AS INT64) FROM UNNEST(JSON_VALUE_ARRAY(line, '$.\"{}\"')) AS x)",
                        c.name
                    ),
                }
            },
        );
    }
    s
}

/// Trino (Hive connector): a one-column TEXTFILE table per table, partitioned like the files,
/// and a view.
pub fn trino() -> String {
    let mut s = header(
        "Trino (Hive connector)",
        "Hive column names cannot hold '.', so each line is one varchar and a view extracts the fields",
    );
    for t in TABLES {
        let _ = writeln!(
            s,
            "CREATE TABLE IF NOT EXISTS hive.wsprobe.{0}_raw (line varchar, \"date\" varchar, sensor varchar)\n\
             WITH (format = 'TEXTFILE', external_location = 's3://BUCKET/DIR/table={0}/', partitioned_by = ARRAY['date', 'sensor']);\n\
             CALL hive.system.sync_partition_metadata('wsprobe', '{0}_raw', 'ADD');\n",
            t.name
        );
        json_view(
            &mut s,
            t,
            &format!("hive.wsprobe.{}", t.name),
            &format!("hive.wsprobe.{}_raw", t.name),
            |c| {
                let path = format!("json_extract_scalar(line, '$[\"{}\"]')", c.name);
                match c.kind {
                    Kind::Time => {
                        format!("from_iso8601_timestamp({path})")
                    }
                    Kind::Bool => format!("try_cast({path} AS boolean)"),
                    Kind::Int => format!("try_cast({path} AS bigint)"),
                    Kind::Float => format!("try_cast({path} AS double)"),
                    Kind::Str => path,
                    Kind::StrList => format!(
                        "try_cast(json_extract(line, '$[\"{}\"]') AS array(varchar))",
                        c.name
                    ),
                    Kind::IntList => format!(
                        "try_cast(json_extract(line, '$[\"{}\"]') AS array(bigint))",
                        c.name
                    ),
                }
            },
        );
    }
    s
}

/// Spark SQL: JSON tables with the ECS names (Spark accepts them in backticks), partitioned by
/// date and sensor as the paths are.
pub fn spark() -> String {
    let mut s = header(
        "Spark SQL",
        "CREATE TABLE ... USING json over the hive layout, then MSCK REPAIR TABLE",
    );
    for t in TABLES {
        let _ = writeln!(s, "CREATE TABLE IF NOT EXISTS wsprobe_{} (", t.name);
        for c in t.columns.iter().filter(|c| c.name != "sensor") {
            let ty = match c.kind {
                Kind::Time => "TIMESTAMP",
                Kind::Bool => "BOOLEAN",
                Kind::Int => "BIGINT",
                Kind::Float => "DOUBLE",
                Kind::Str => "STRING",
                Kind::StrList => "ARRAY<STRING>",
                Kind::IntList => "ARRAY<BIGINT>",
            };
            let _ = writeln!(s, "  `{}` {ty},", c.name);
        }
        let _ = writeln!(
            s,
            "  `date` DATE,\n  `sensor` STRING\n) USING json\nPARTITIONED BY (`date`, `sensor`)\nLOCATION 's3a://BUCKET/DIR/table={0}/';\nMSCK REPAIR TABLE wsprobe_{0};\n",
            t.name
        );
    }
    s
}

/// Every engine's file: (name under `schema/sql/`, text).
pub fn all() -> Vec<(&'static str, String)> {
    vec![
        ("duckdb.sql", duckdb()),
        ("clickhouse.sql", clickhouse()),
        ("bigquery.sql", bigquery()),
        ("trino.sql", trino()),
        ("spark.sql", spark()),
    ]
}
