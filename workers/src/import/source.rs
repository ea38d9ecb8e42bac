//! Reading an import file row by row: CSV with a header line, or NDJSON (one
//! JSON object per line). Each row becomes a payload map, or the reasons it
//! cannot be one; only unreadable input stops the import.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use gad_shared::error_body::FieldError;
use serde_json::{Map, Value};

use super::error::ImportError;
use super::kind::{CellType, Column, ImportKind};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Csv,
    Ndjson,
}

impl Format {
    /// `.csv`; `.ndjson`, `.jsonl` or `.json`.
    pub fn from_extension(path: &Path) -> Option<Format> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "csv" => Some(Format::Csv),
            "ndjson" | "jsonl" | "json" => Some(Format::Ndjson),
            _ => None,
        }
    }
}

/// One row of the file.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceRow {
    /// Line of the file where the row starts (1 = the first line).
    pub line: u64,
    /// The row as the file has it, for the rejects file.
    pub raw: String,
    pub payload: Result<Map<String, Value>, Vec<FieldError>>,
}

pub struct Source {
    path: PathBuf,
    columns: &'static [Column],
    inner: Inner,
}

enum Inner {
    Csv {
        reader: csv::Reader<BufReader<File>>,
        /// The column of each header position.
        header: Vec<Column>,
        record: csv::ByteRecord,
    },
    Ndjson {
        reader: BufReader<File>,
        line: u64,
        buf: Vec<u8>,
    },
}

/// Files are read in blocks this large.
const READ_BUFFER: usize = 256 * 1024;

impl Source {
    /// Opens `path`; a CSV header must name known columns, each once, and
    /// every column the kind requires.
    pub fn open(path: &Path, format: Format, kind: ImportKind) -> Result<Source, ImportError> {
        let file = File::open(path).map_err(ImportError::io(path))?;
        let reader = BufReader::with_capacity(READ_BUFFER, file);
        let columns = kind.columns();
        let inner = match format {
            Format::Ndjson => Inner::Ndjson {
                reader,
                line: 0,
                buf: Vec::new(),
            },
            Format::Csv => {
                let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(reader);
                let names = reader.byte_headers().map_err(|source| ImportError::Csv {
                    path: path.to_path_buf(),
                    source,
                })?;
                let header = header(names, columns).map_err(|reason| ImportError::BadHeader {
                    path: path.to_path_buf(),
                    reason,
                })?;
                Inner::Csv {
                    reader,
                    header,
                    record: csv::ByteRecord::new(),
                }
            }
        };
        Ok(Source {
            path: path.to_path_buf(),
            columns,
            inner,
        })
    }

    /// The next row; `None` at the end of the file.
    pub fn next_row(&mut self) -> Result<Option<SourceRow>, ImportError> {
        match &mut self.inner {
            Inner::Csv { reader, header, record } => {
                let more = reader.read_byte_record(record).map_err(|source| ImportError::Csv {
                    path: self.path.clone(),
                    source,
                })?;
                if !more {
                    return Ok(None);
                }
                let line = record.position().map_or(0, |p| p.line());
                Ok(Some(SourceRow {
                    line,
                    raw: csv_line(record),
                    payload: csv_payload(header, record),
                }))
            }
            Inner::Ndjson { reader, line, buf } => loop {
                buf.clear();
                let n = reader.read_until(b'\n', buf).map_err(ImportError::io(&self.path))?;
                if n == 0 {
                    return Ok(None);
                }
                *line += 1;
                let text = String::from_utf8_lossy(buf);
                let text = text.trim_end_matches(['\n', '\r']);
                if text.trim().is_empty() {
                    continue;
                }
                let payload = if std::str::from_utf8(buf).is_err() {
                    Err(vec![row_error("not_utf8", "the line is not UTF-8")])
                } else {
                    json_payload(self.columns, text)
                };
                return Ok(Some(SourceRow {
                    line: *line,
                    raw: text.to_string(),
                    payload,
                }));
            },
        }
    }
}

/// A reason about the row as a whole rather than one field.
fn row_error(code: &str, message: impl Into<String>) -> FieldError {
    FieldError::new("row", code, message)
}

fn header(names: &csv::ByteRecord, columns: &'static [Column]) -> Result<Vec<Column>, String> {
    let mut header: Vec<Column> = Vec::with_capacity(names.len());
    for (i, raw) in names.iter().enumerate() {
        // Spreadsheets put a byte-order mark before the first name.
        let raw = if i == 0 {
            raw.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(raw)
        } else {
            raw
        };
        let name = std::str::from_utf8(raw)
            .map_err(|_| format!("column {} is not UTF-8", i + 1))?
            .trim();
        let column = columns.iter().find(|c| c.name == name).ok_or_else(|| {
            let known: Vec<&str> = columns.iter().map(|c| c.name).collect();
            format!("unknown column {name:?} (known: {})", known.join(", "))
        })?;
        if header.iter().any(|c| c.name == name) {
            return Err(format!("column {name:?} appears twice"));
        }
        header.push(*column);
    }
    let missing: Vec<&str> = columns
        .iter()
        .filter(|c| c.required && !header.iter().any(|h| h.name == c.name))
        .map(|c| c.name)
        .collect();
    if !missing.is_empty() {
        return Err(format!("missing column(s) {}", missing.join(", ")));
    }
    Ok(header)
}

fn csv_payload(header: &[Column], record: &csv::ByteRecord) -> Result<Map<String, Value>, Vec<FieldError>> {
    if record.len() != header.len() {
        return Err(vec![row_error(
            "column_count",
            format!("{} cells for {} columns", record.len(), header.len()),
        )]);
    }
    let mut map = Map::new();
    let mut errors = Vec::new();
    for (column, cell) in header.iter().zip(record.iter()) {
        let Ok(cell) = std::str::from_utf8(cell) else {
            errors.push(FieldError::new(
                column.name,
                "not_utf8",
                format!("{} is not UTF-8", column.name),
            ));
            continue;
        };
        if cell.trim().is_empty() {
            continue;
        }
        match cell_value(column, cell) {
            Ok(v) => {
                map.insert(column.name.to_string(), v);
            }
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() { Ok(map) } else { Err(errors) }
}

/// A cell as the payload value of its column.
fn cell_value(column: &Column, cell: &str) -> Result<Value, FieldError> {
    let name = column.name;
    match column.ty {
        CellType::Text => Ok(Value::String(cell.to_string())),
        CellType::Number => cell
            .trim()
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .ok_or_else(|| FieldError::new(name, "invalid_number", format!("{name} must be a number"))),
        CellType::Integer => cell
            .trim()
            .parse::<i64>()
            .map(Value::from)
            .map_err(|_| FieldError::new(name, "invalid_integer", format!("{name} must be a whole number"))),
    }
}

fn json_payload(columns: &[Column], text: &str) -> Result<Map<String, Value>, Vec<FieldError>> {
    let value: Value =
        serde_json::from_str(text).map_err(|e| vec![row_error("invalid_json", format!("not JSON: {e}"))])?;
    let Value::Object(map) = value else {
        return Err(vec![row_error("invalid_json", "the line must hold a JSON object")]);
    };
    let unknown: Vec<FieldError> = map
        .keys()
        .filter(|k| !columns.iter().any(|c| c.name == k.as_str()))
        .map(|k| FieldError::new(k, "unknown_field", format!("{k} is not a field of this import")))
        .collect();
    if !unknown.is_empty() {
        return Err(unknown);
    }
    // A null is an absent value, as an empty CSV cell is.
    Ok(map.into_iter().filter(|(_, v)| !v.is_null()).collect())
}

/// The record written back as one CSV line (without its line break).
fn csv_line(record: &csv::ByteRecord) -> String {
    let mut writer = csv::WriterBuilder::new().flexible(true).from_writer(Vec::new());
    let bytes = match writer.write_byte_record(record) {
        Ok(()) => writer.into_inner().unwrap_or_default(),
        Err(_) => Vec::new(),
    };
    String::from_utf8_lossy(&bytes)
        .trim_end_matches(['\n', '\r'])
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(kind: ImportKind, format: Format, text: &str) -> Result<Vec<SourceRow>, ImportError> {
        let dir = std::env::temp_dir().join(format!("gad-source-{:016x}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir).map_err(ImportError::io(&dir))?;
        let path = dir.join("rows");
        std::fs::write(&path, text).map_err(ImportError::io(&path))?;
        let mut source = Source::open(&path, format, kind)?;
        let mut out = Vec::new();
        while let Some(row) = source.next_row()? {
            out.push(row);
        }
        let _ = std::fs::remove_dir_all(&dir);
        Ok(out)
    }

    #[test]
    fn csv_cells_become_typed_values_and_bad_cells_are_named() -> Result<(), ImportError> {
        let text = "\u{feff}codigo_interno,lat,lng,recorded_at,accuracy_m\n\
                    EF-1,-34.6,-58.4,2026-01-01T00:00:00Z,\n\
                    \"EF-2\",abc,-58.4,2026-01-01T00:00:00Z,5\n\
                    EF-3,1\n";
        let got = rows(ImportKind::Locations, Format::Csv, text)?;
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].line, 2);
        let first = got[0].payload.clone().unwrap_or_default();
        assert_eq!(first.get("lat"), Some(&serde_json::json!(-34.6)));
        assert!(!first.contains_key("accuracy_m"), "an empty cell is absent");
        let Err(bad) = &got[1].payload else {
            panic!("expected a rejected row")
        };
        assert_eq!((bad[0].field.as_str(), bad[0].code.as_str()), ("lat", "invalid_number"));
        assert_eq!(got[1].raw, "EF-2,abc,-58.4,2026-01-01T00:00:00Z,5");
        let Err(short) = &got[2].payload else {
            panic!("expected a rejected row")
        };
        assert_eq!(short[0].code, "column_count");
        assert_eq!(got[2].line, 4);
        Ok(())
    }

    #[test]
    fn a_bad_header_refuses_the_file() {
        let unknown = rows(
            ImportKind::Locations,
            Format::Csv,
            "codigo_interno,lat,lng,recorded_at,color\n",
        );
        assert!(matches!(unknown, Err(ImportError::BadHeader { ref reason, .. }) if reason.contains("color")));
        let missing = rows(ImportKind::Locations, Format::Csv, "codigo_interno,lat\n");
        assert!(
            matches!(missing, Err(ImportError::BadHeader { ref reason, .. }) if reason.contains("lng, recorded_at"))
        );
    }

    #[test]
    fn ndjson_lines_keep_their_numbers_and_unknown_keys_are_rejected() -> Result<(), ImportError> {
        let text = "{\"codigo_interno\":\"EF-1\",\"rango\":null}\n\n[1]\n{\"codigo_interno\":\"EF-2\",\"color\":1}\nnot json\n";
        let got = rows(ImportKind::Efectivos, Format::Ndjson, text)?;
        let lines: Vec<u64> = got.iter().map(|r| r.line).collect();
        assert_eq!(lines, [1, 3, 4, 5]);
        assert_eq!(got[0].payload.as_ref().map(|m| m.len()), Ok(1), "null is absent");
        let codes: Vec<String> = got[1..]
            .iter()
            .filter_map(|r| r.payload.as_ref().err().map(|e| e[0].code.clone()))
            .collect();
        assert_eq!(codes, ["invalid_json", "unknown_field", "invalid_json"]);
        Ok(())
    }
}
