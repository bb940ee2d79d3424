//! The JSON Schema of each table, generated from its column list so that the published files
//! (`schema/<table>.v1.json`) cannot drift from what is written; a test compares them.

use serde_json::{Map, Value, json};

use super::columns::{Kind, TABLES_SCHEMA_VERSION, TableSpec};

/// `schema/<table>.v<version>.json`.
pub fn file_name(spec: &TableSpec) -> String {
    format!("{}.v{TABLES_SCHEMA_VERSION}.json", spec.name)
}

/// JSON Schema (2020-12) of one row of `spec`.
pub fn json_schema(spec: &TableSpec) -> Value {
    let mut properties = Map::new();
    for c in spec.columns {
        let (base, items) = match c.kind {
            Kind::Bool => ("boolean", None),
            Kind::Int => ("integer", None),
            Kind::Float => ("number", None),
            Kind::Str | Kind::Time => ("string", None),
            Kind::StrList => ("array", Some("string")),
            Kind::IntList => ("array", Some("integer")),
        };
        let types = if c.required {
            json!(base)
        } else {
            json!([base, "null"])
        };
        let mut p = json!({"type": types, "description": c.doc});
        if let Some(items) = items {
            p["items"] = json!({"type": items});
        }
        if c.kind == Kind::Time {
            p["format"] = json!("date-time");
        }
        if c.name == "schema_version" {
            p = json!({"const": TABLES_SCHEMA_VERSION, "description": c.doc});
        }
        properties.insert(c.name.to_string(), p);
    }
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": format!("https://wsprobe.invalid/schema/{}", file_name(spec)),
        "title": format!("wsprobe dataset table `{}`, schema_version {TABLES_SCHEMA_VERSION}", spec.name),
        "description": format!(
            "One line of DIR/table={}/date=YYYY-MM-DD/sensor=NAME/part-*.jsonl[.gz] written by `wsprobe analyze --out-dir DIR`: {}. Every column is present in every row (null when unknown); columns may be added within a schema_version, never renamed or removed. Generated from src/report/tables/columns.rs.",
            spec.name, spec.row
        ),
        "type": "object",
        "additionalProperties": false,
        "required": spec.columns.iter().map(|c| c.name).collect::<Vec<_>>(),
        "properties": properties,
    })
}
