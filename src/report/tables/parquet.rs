//! `--table-format parquet` (cargo feature `parquet`): the same rows as Parquet files, written
//! with the parquet crate's low-level column writer (no arrow: a fifth of the build time).
//! Rows are buffered per row group, then written column by column with definition levels for
//! the nullable ones; instants are UTC microsecond timestamps, text is UTF-8 (`String`).

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use parquet::basic::{Compression, LogicalType, Repetition, TimeUnit, Type as Physical};
use parquet::column::writer::ColumnWriter;
use parquet::data_type::ByteArray;
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::Type;

use super::PartWriter;
use super::columns::{Cell, Kind, TableSpec};

/// Rows per row group: a few MB of buffered rows at most, large enough for column statistics
/// and compression to work.
const ROW_GROUP_ROWS: usize = 16_384;

fn io(e: parquet::errors::ParquetError) -> std::io::Error {
    std::io::Error::other(e)
}

/// The Parquet schema of a table.
fn schema(spec: &TableSpec) -> parquet::errors::Result<Type> {
    let fields = spec
        .columns
        .iter()
        .map(|c| {
            let (physical, logical) = match c.kind {
                Kind::Bool => (Physical::BOOLEAN, None),
                Kind::Int | Kind::IntList => (Physical::INT64, None),
                Kind::Float => (Physical::DOUBLE, None),
                Kind::Str | Kind::StrList => (Physical::BYTE_ARRAY, Some(LogicalType::String)),
                Kind::Time => (
                    Physical::INT64,
                    Some(LogicalType::timestamp(true, TimeUnit::MICROS)),
                ),
            };
            let repetition = if c.required {
                Repetition::REQUIRED
            } else {
                Repetition::OPTIONAL
            };
            if !is_list(c.kind) {
                return Type::primitive_type_builder(c.name, physical)
                    .with_repetition(repetition)
                    .with_logical_type(logical)
                    .build()
                    .map(Arc::new);
            }
            // The standard three-level LIST (parquet-format LogicalTypes.md).
            let element = Type::primitive_type_builder("element", physical)
                .with_repetition(Repetition::REQUIRED)
                .with_logical_type(logical)
                .build()?;
            let list = Type::group_type_builder("list")
                .with_repetition(Repetition::REPEATED)
                .with_fields(vec![Arc::new(element)])
                .build()?;
            Type::group_type_builder(c.name)
                .with_repetition(repetition)
                .with_logical_type(Some(LogicalType::List))
                .with_fields(vec![Arc::new(list)])
                .build()
                .map(Arc::new)
        })
        .collect::<parquet::errors::Result<Vec<_>>>()?;
    Type::group_type_builder("schema")
        .with_fields(fields)
        .build()
}

/// One Parquet part file.
pub struct ParquetPart {
    spec: &'static TableSpec,
    writer: SerializedFileWriter<File>,
    rows: Vec<Vec<Cell>>,
}

impl ParquetPart {
    /// Creates `path` for rows of `spec`.
    pub fn create(path: &Path, spec: &'static TableSpec) -> std::io::Result<Self> {
        let file = File::create(path)?;
        let props = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_created_by(format!("wsprobe {}", env!("CARGO_PKG_VERSION")))
            .build();
        let writer =
            SerializedFileWriter::new(file, Arc::new(schema(spec).map_err(io)?), Arc::new(props))
                .map_err(io)?;
        Ok(ParquetPart {
            spec,
            writer,
            rows: Vec::with_capacity(ROW_GROUP_ROWS),
        })
    }

    fn flush_group(&mut self) -> std::io::Result<()> {
        if self.rows.is_empty() {
            return Ok(());
        }
        let mut group = self.writer.next_row_group().map_err(io)?;
        let mut index = 0;
        while let Some(mut column) = group.next_column().map_err(io)? {
            let spec = &self.spec.columns[index];
            let cells = self.rows.iter().map(|r| &r[index]);
            if is_list(spec.kind) {
                write_list(column.untyped(), cells, spec.required)?;
                column.close().map_err(io)?;
                index += 1;
                continue;
            }
            let defs: Vec<i16> = cells.clone().map(|c| i16::from(*c != Cell::Null)).collect();
            let defs = (!spec.required).then_some(&defs[..]);
            match column.untyped() {
                ColumnWriter::BoolColumnWriter(w) => {
                    let v: Vec<bool> = cells
                        .filter_map(|c| match c {
                            Cell::Bool(b) => Some(*b),
                            _ => None,
                        })
                        .collect();
                    w.write_batch(&v, defs, None).map_err(io)?;
                }
                ColumnWriter::Int64ColumnWriter(w) => {
                    let v: Vec<i64> = cells
                        .filter_map(|c| match c {
                            Cell::Int(n) => Some(*n),
                            Cell::Time(t) => Some((t * 1e6).round() as i64),
                            _ => None,
                        })
                        .collect();
                    w.write_batch(&v, defs, None).map_err(io)?;
                }
                ColumnWriter::DoubleColumnWriter(w) => {
                    let v: Vec<f64> = cells
                        .filter_map(|c| match c {
                            Cell::Float(f) => Some(*f),
                            _ => None,
                        })
                        .collect();
                    w.write_batch(&v, defs, None).map_err(io)?;
                }
                ColumnWriter::ByteArrayColumnWriter(w) => {
                    let v: Vec<ByteArray> = cells
                        .filter_map(|c| match c {
                            Cell::Str(s) => Some(ByteArray::from(s.as_str())),
                            _ => None,
                        })
                        .collect();
                    w.write_batch(&v, defs, None).map_err(io)?;
                }
                _ => {
                    return Err(std::io::Error::other(
                        "bug: a column type the schema has not",
                    ));
                }
            }
            column.close().map_err(io)?;
            index += 1;
        }
        group.close().map_err(io)?;
        self.rows.clear();
        Ok(())
    }
}

fn is_list(kind: Kind) -> bool {
    matches!(kind, Kind::StrList | Kind::IntList)
}

/// One LIST column: an element per value with its definition level (the list's maximum) and
/// repetition level (0 starts a row, 1 continues it); an empty list is one level entry without
/// a value at the list's own definition level, a null list one at 0.
fn write_list<'a>(
    writer: &mut ColumnWriter<'_>,
    cells: impl Iterator<Item = &'a Cell>,
    required: bool,
) -> std::io::Result<()> {
    let full: i16 = if required { 1 } else { 2 };
    let (mut defs, mut reps) = (Vec::new(), Vec::new());
    let (mut texts, mut ints): (Vec<ByteArray>, Vec<i64>) = (Vec::new(), Vec::new());
    for cell in cells {
        let n = match cell {
            Cell::StrList(v) => {
                texts.extend(v.iter().map(|s| ByteArray::from(s.as_str())));
                v.len()
            }
            Cell::IntList(v) => {
                ints.extend_from_slice(v);
                v.len()
            }
            _ => {
                defs.push(0);
                reps.push(0);
                continue;
            }
        };
        if n == 0 {
            defs.push(full - 1);
            reps.push(0);
        }
        for i in 0..n {
            defs.push(full);
            reps.push(i16::from(i > 0));
        }
    }
    match writer {
        ColumnWriter::ByteArrayColumnWriter(w) => {
            w.write_batch(&texts, Some(&defs), Some(&reps))
                .map_err(io)?;
        }
        ColumnWriter::Int64ColumnWriter(w) => {
            w.write_batch(&ints, Some(&defs), Some(&reps)).map_err(io)?;
        }
        _ => return Err(std::io::Error::other("bug: a list type the schema has not")),
    }
    Ok(())
}

impl PartWriter for ParquetPart {
    fn write_row(&mut self, cells: &[Cell]) -> std::io::Result<()> {
        self.rows.push(cells.to_vec());
        if self.rows.len() >= ROW_GROUP_ROWS {
            self.flush_group()?;
        }
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> std::io::Result<()> {
        self.flush_group()?;
        self.writer.close().map_err(io)?;
        Ok(())
    }
}
